/* vz_zconf: Zuul's configuration language. A layout is built from configuration sources in tenant
 * order (config projects first, then untrusted projects, each branch's in-repo files in Zuul's
 * order); jobs inherit and take variants as Zuul's do, and a project's pipeline freezes into the
 * job graph Zuul would run for an item. Every configuration error reads `FILE:LINE:COL: message`.
 * The scheduler feeds it the merger's speculative files (vz_spec_read_config) per item later. */
#ifndef VZ_ZCONF_H
#define VZ_ZCONF_H

#include <jansson.h>
#include <stddef.h>

#include "vz_err.h"

/* Object types a source may load (a tenant's include/exclude). */
enum {
	VZ_ZC_PIPELINE = 1u << 0,
	VZ_ZC_JOB = 1u << 1,
	VZ_ZC_PROJECT = 1u << 2,
	VZ_ZC_PROJECT_TEMPLATE = 1u << 3,
	VZ_ZC_NODESET = 1u << 4,
	VZ_ZC_SECRET = 1u << 5,
	VZ_ZC_SEMAPHORE = 1u << 6,
	VZ_ZC_QUEUE = 1u << 7,
	VZ_ZC_PRAGMA = 1u << 8,
	VZ_ZC_ALL = (1u << 9) - 1,
};

/* One configuration source: the files of one branch of one project. */
typedef struct vz_zconf_source {
	const char *project; /* canonical name, e.g. "opendev.org/openstack/nova" */
	const char *branch;  /* e.g. "master" */
	int trusted;         /* 1 for a config project */
	const json_t *files; /* {path: content} in Zuul's order (vz_spec_read_config); borrowed */
	const char *prefix;  /* put in front of each path in messages (e.g. a work tree's "DIR/"); may be NULL */
	unsigned types;      /* VZ_ZC_* loaded from this source; 0 means all */
	const char *connection; /* the project's connection (its secrets key is per connection and
				 * project); may be NULL when no key source is given */
} vz_zconf_source;

typedef struct vz_zconf vz_zconf;

/* Error messages kept (the rest are counted). */
#define VZ_ZCONF_MAX_ERRORS 200

/* Builds a layout from srcs in order. Returns 0 with *out set when the configuration is valid;
 * VZ_EINVAL with *out still set when configuration errors were found (every one is listed by
 * vz_zconf_error, sorted by file and position; an object with an error is left out of the layout,
 * as Zuul leaves it out); VZ_ENOMEM, or VZ_EINVAL with *out NULL for a bad argument. The layout
 * copies what it needs from srcs. *out freed with vz_zconf_free. */
int vz_zconf_load(vz_zconf **out, const vz_zconf_source *srcs, size_t n, vz_err *e);

struct vz_secrets_key;

/* Finds the private key of a project's secrets (vz_secrets_key_lookup is one). project is the
 * source's canonical name; a key store keyed by the name on the connection strips the
 * connection's hostname first (cli/cmd-config.c does). Returns 0 with *out
 * set (the layout frees it), VZ_ENOTFOUND when the project has no key (its secrets are then checked
 * for structure only and stay encrypted), or another code with a message (a configuration error
 * at the secret). */
typedef int (*vz_zconf_key_fn)(struct vz_secrets_key **out, void *ctx, const char *connection, const char *project,
			       vz_err *e);

typedef struct vz_zconf_options {
	vz_zconf_key_fn key_fn; /* NULL: secrets are not decrypted, only checked */
	void *key_ctx;
} vz_zconf_options;

/* vz_zconf_load with options (o may be NULL). With a key source, every `!encrypted/pkcs1-oaep`
 * value in a secret's data is decrypted with the key of the project defining the secret; a value
 * that does not decrypt is a configuration error at its FILE:LINE:COL naming the secret. Decrypted
 * values stay inside the layout: vz_zconf_freeze never shows them; vz_zconf_job_secrets gives them
 * for a frozen job's playbooks. */
int vz_zconf_load_opts(vz_zconf **out, const vz_zconf_source *srcs, size_t n, const vz_zconf_options *o,
		       vz_err *e);

void vz_zconf_free(vz_zconf *z); /* accepts NULL; clears decrypted values before freeing them */

/* Number of configuration errors found (may exceed VZ_ZCONF_MAX_ERRORS). */
size_t vz_zconf_nerrors(const vz_zconf *z);
/* Error i as "FILE:LINE:COL: message (project P, branch B)"; NULL past the kept ones. Borrowed. */
const char *vz_zconf_error(const vz_zconf *z, size_t i);

/* Freezes every project stanza's pipelines on every branch the layout knows (no file filter), as
 * Zuul would when an item arrives, and adds what fails (abstract job run directly, final job
 * modified, protected job inherited, dependency cycle, unknown dependency...) to the errors,
 * positioned at the project's job entry. Returns the number of errors now recorded. */
size_t vz_zconf_check(vz_zconf *z);

/* An item to freeze a job graph for. */
typedef struct vz_zconf_item {
	const char *project;      /* canonical or short name (without the hostname) */
	const char *branch;
	const char *pipeline;
	const char *const *files; /* files the change touches (may include "/COMMIT_MSG"); */
	size_t nfiles;            /* files == NULL: no file information, every file matcher passes */
} vz_zconf_item;

/* The frozen job graph of item, as JSON:
 *   {"project","branch","pipeline","fail-fast","debug","queue","vars",
 *    "jobs": [{"name","dependencies":[{"name","soft"}],"variants":[...],
 *              "attributes":{...},"from":{attr: "FILE:LINE" | [contributors...]},
 *              "nodeset":{...}|null,
 *              "playbooks":{"pre-run":[{"path","project","branch","trusted","roles","secrets","from"}],
 *                           "run":[...],"post-run":[...],"cleanup-run":[...]}}],
 *    "skipped": [{"name","reason"}]}
 * Jobs in Zuul's order (templates first, then the project's own list). Secret values never appear:
 * a playbook's "secrets" lists the names it binds, and "secret-refs" (only when it has secrets)
 * maps each name to the secret object ({NAME: SECRET}).
 * Returns 0; VZ_ENOTFOUND when no project stanza names the project or it has no such pipeline;
 * VZ_EINVAL when freezing fails (message "FILE:LINE:COL: ..."); VZ_ENOMEM. New reference. */
int vz_zconf_freeze(json_t **out, const vz_zconf *z, const vz_zconf_item *item, vz_err *e);

/* The decrypted secrets each playbook of a frozen job gets, as Zuul gives them (the secret's data
 * under the name the job binds it to): for job, one element of a graph's "jobs" from
 * vz_zconf_freeze on the same layout,
 *   {"pre-run": [{NAME: data, ...} per playbook, in the graph's order], "run": [...],
 *    "post-run": [...], "cleanup-run": [...]}
 * A playbook gets the secrets of the job definition that added it (and pass-to-parent secrets of
 * the definitions after it), nothing else. Never log or print the result; build a redactor from
 * it (vz_redactor_new). Returns 0; VZ_ENOTFOUND when a secret was not decrypted (the
 * layout was loaded without its project's key); VZ_EINVAL when job is not a frozen job; VZ_ENOMEM.
 * New reference. */
int vz_zconf_job_secrets(json_t **out, const vz_zconf *z, const json_t *job, vz_err *e);

/* Names of the pipelines, in definition order. New reference. */
json_t *vz_zconf_pipelines(const vz_zconf *z);

#endif
