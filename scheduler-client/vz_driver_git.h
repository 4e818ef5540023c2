/* vz_driver_git: the plain-git driver. A connection names a base path or URL; a project's
 * repository is BASEURL/PROJECT (or PROJECT.git); a change is a ref plus an id given at enqueue,
 * resolved to a commit when it is enqueued so every attempt of a build tests the same commit. */
#ifndef VZ_DRIVER_GIT_H
#define VZ_DRIVER_GIT_H

#include "vz_config.h"
#include "vz_err.h"

/* The repository URL or path of project on connection c. Caller frees. */
char *vz_git_repo_url(const vz_conf_connection *c, const char *project);

/* Resolves ref (a full ref like refs/changes/1, a branch name, or a 40-hex commit id) on the
 * repository at url to a commit id (41 bytes with NUL). VZ_ENOTFOUND when the ref does not exist,
 * VZ_ECONNECT when the repository cannot be read. libgit2 errors are translated here. */
int vz_git_resolve_ref(const char *url, const char *ref, char out[41], vz_err *e);

#endif
