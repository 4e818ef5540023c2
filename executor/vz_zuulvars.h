/* vz_zuulvars: the variables a build's playbooks receive, shaped as Zuul gives them: `zuul` (the
 * build, its job, pipeline, tenant, project and projects with their src_dir, the change, the
 * items it is tested with, the executor's directories) and `nodepool` per host. */
#ifndef VZ_ZUULVARS_H
#define VZ_ZUULVARS_H

#include <jansson.h>

#include "vz_prepare.h"

typedef struct vz_zuulvars_dirs {
	const char *work_root; /* the build's work dir on the executor (holds src/, logs/) */
	const char *log_root;  /* where logs are collected on the executor */
	const char *hostname;  /* the executor's host name */
} vz_zuulvars_dirs;

/* The `zuul` dict for the build request req (a decoded "build" body) whose workspaces are
 * prepared in p. Keys follow Zuul's documentation: build, buildset, job, pipeline, tenant, voting,
 * timeout, attempts, max_attempts, ref, branch, change, patchset, message, project {name,
 * short_name, canonical_hostname, canonical_name, src_dir}, projects {canonical_name: {the same,
 * required, checkout, commit}}, items [{project, branch, change, patchset, ref}], child_jobs,
 * executor {hostname, src_root, log_root, work_root, result_data_file, inventory_file},
 * post_review. src_dir is "src/<canonical_name>" (relative to the work dir, as in Zuul). A new
 * reference; never NULL. */
json_t *vz_zuulvars_zuul(const json_t *req, const vz_prepared *p, const vz_zuulvars_dirs *dirs);

/* The `nodepool` dict of a host from the request's node object: label, interface_ip,
 * public_ipv4 / public_ipv6 / private_ipv4 (from the address), host_id, provider, region, az,
 * cloud (empty strings when unknown, as Zuul's static nodes have them). A new reference. */
json_t *vz_zuulvars_nodepool(const json_t *node);

#endif
