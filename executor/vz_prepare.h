/* vz_prepare: a build's repositories on the executor. Every project the build needs is brought
 * into its cache (fetching only what is missing), the speculative state of the items the build
 * tests (the items ahead of it in the queue, then its own) is built with vz_spec, and each project
 * gets a workspace at BUILD_DIR/src/<canonical name>: its speculative commit checked out, local
 * branches at their speculative heads, objects shared with the cache, no remote. */
#ifndef VZ_PREPARE_H
#define VZ_PREPARE_H

#include <stddef.h>

#include <jansson.h>

#include "vz_config.h"
#include "vz_err.h"

typedef struct vz_prepared_project {
	char *project;    /* name as in the request */
	char *canonical;  /* canonical name; the workspace is src/<canonical> */
	char *dir;        /* the workspace (absolute) */
	char *branch;     /* branch checked out, or NULL when detached */
	char commit[41];  /* commit checked out */
	int own;          /* the project of the build's own item */
} vz_prepared_project;

typedef struct vz_prepared {
	vz_prepared_project *projects; /* the build's own project first */
	size_t nprojects;
	char commit[41];  /* the build's own speculative commit */
	json_t *state;    /* the repo state the build sees: {canonical: {branch: commit}} */
	char *conflict;   /* why the build's own item does not merge (with VZ_ECONFLICT) */
} vz_prepared;

/* Called with each line worth a place in the build log. */
typedef void (*vz_prepare_log_fn)(void *ctx, const char *line);

/* Prepares the workspaces for the build request req (a decoded "build" body; docs/protocol.md:
 * `items`, `repo_state`, `projects`, or the single change in `repo`/`ref`/`commit`/`branch`).
 * Credentials of each connection come from site (may be NULL). Returns 0; VZ_ECONFLICT when the
 * build's own item does not merge onto the state ahead of it (out->conflict says where; the
 * workspaces are not made); the errors of vz_workspace_fetch (VZ_ENOTFOUND, VZ_ECONNECT,
 * VZ_EHOSTKEY, VZ_EAUTH, VZ_EINVAL, VZ_EIO) naming the project; VZ_EINVAL for a malformed request.
 * out is always initialised; clear it with vz_prepared_clear. */
int vz_prepare_workspace(vz_prepared *out, const json_t *req, const char *build_dir, const char *cache_root,
			 const vz_config *site, vz_prepare_log_fn log, void *ctx, vz_err *e);
void vz_prepared_clear(vz_prepared *p);

#endif
