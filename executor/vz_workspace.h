/* vz_workspace: the executor's repository cache and build checkouts (libgit2). One bare cache per
 * repository under the executor's work dir, updated under a per-repository lock by fetching only
 * what a build needs; a checkout per build whose object store points at the cache (alternates), so
 * creating it copies no objects. The full speculative merger replaces the "check out the change"
 * step here; the cache and checkout stay. */
#ifndef VZ_WORKSPACE_H
#define VZ_WORKSPACE_H

#include "vz_err.h"

/* Process-wide libgit2 init; call once from main. */
int vz_workspace_global_init(vz_err *e);
void vz_workspace_global_cleanup(void);

typedef struct vz_checkout_req {
	const char *cache_root; /* directory holding the bare caches */
	const char *repo;       /* repository path or URL */
	const char *ref;        /* ref to fetch when commit is not in the cache */
	const char *commit;     /* 40-hex commit to check out; NULL or "": whatever ref points at */
	const char *branch;     /* local branch created at the commit and checked out; NULL: detached */
	const char *dest;       /* new directory for the checkout (must not exist) */
} vz_checkout_req;

/* Fetches as needed and checks out. out_commit (41 bytes) gets the commit checked out.
 * VZ_ENOTFOUND when the ref or commit does not exist in the repository, VZ_ECONNECT when the
 * repository cannot be read, VZ_EIO for local failures. */
int vz_workspace_checkout(const vz_checkout_req *req, char out_commit[41], vz_err *e);

#endif
