/* vz_workspace: the executor's repository cache and build checkouts (libgit2). One bare cache per
 * repository under the executor's work dir, updated under a per-repository lock by fetching only
 * what a build needs; a checkout per build whose object store points at the cache (alternates), so
 * creating it copies no objects. The full speculative merger replaces the "check out the change"
 * step here; the cache and checkout stay. */
#ifndef VZ_WORKSPACE_H
#define VZ_WORKSPACE_H

#include "vz_err.h"
#include "vz_gitcred.h"

/* Process-wide libgit2 init: the first call initialises, later ones do nothing (thread-safe),
 * so a build can call it on its way in. Cleanup undoes it once, at exit. */
int vz_workspace_global_init(vz_err *e);
void vz_workspace_global_cleanup(void);

/* The cache repository of repo (a URL or path) under root: ROOT/NAME.git, NAME the URL with every
 * character outside [A-Za-z0-9._-] replaced by '_'. Caller frees. */
char *vz_workspace_cache_path(const char *root, const char *repo);

typedef struct vz_checkout_req {
	const char *cache_root; /* directory holding the bare caches */
	const char *repo;       /* repository path or URL */
	const char *ref;        /* ref to fetch when commit is not in the cache */
	const char *commit;     /* 40-hex commit to check out; NULL or "": whatever ref points at */
	const char *branch;     /* local branch created at the commit and checked out; NULL: detached */
	const char *dest;       /* new directory for the checkout (must not exist) */
	const vz_repo_cred *cred; /* optional: the connection's credentials (ssh key, known_hosts,
				   * user and password, CA file); required for ssh:// repositories */
} vz_checkout_req;

/* Fetches as needed and checks out. out_commit (41 bytes) gets the commit checked out.
 * Repositories: paths, file://, ssh:// or scp-like user@host:path, https://. A commit already in
 * the cache needs no network at all; otherwise only req->ref is fetched, and every ref only when
 * the commit is not reachable from it.
 * VZ_ENOTFOUND when the ref or commit does not exist in the repository, VZ_ECONNECT when the
 * repository cannot be reached or read, VZ_EHOSTKEY when the server's ssh host key is unknown or
 * changed or its TLS certificate is not trusted, VZ_EAUTH when it refuses the credentials,
 * VZ_EINVAL when the credentials are incomplete, VZ_EIO for local failures. */
int vz_workspace_checkout(const vz_checkout_req *req, char out_commit[41], vz_err *e);

/* Brings req->ref / req->commit into the cache (as vz_workspace_checkout does, with the same
 * errors) without checking anything out (dest and branch are ignored). *out_gitdir gets the
 * cache's path (caller frees), out_commit (41 bytes) the commit: req->commit, or what req->ref
 * points at. The cache may be written concurrently by other builds (objects only; refs under the
 * cache's lock). */
int vz_workspace_fetch(const vz_checkout_req *req, char **out_gitdir, char out_commit[41], vz_err *e);

#endif
