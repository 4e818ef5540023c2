/* vz_workspace: bare caches and per-build checkouts with libgit2; see vz_workspace.h. */
#include "vz_workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "vz_util.h"

/* The one place libgit2 errors become vz errors in the executor. */
static int git_fail(vz_err *e, int code, const char *fmt, const char *arg)
{
	const git_error *ge = git_error_last();
	char what[600];
	snprintf(what, sizeof(what), fmt, arg);
	return vz_err_set(e, code, "git: %s: %s", what, ge && ge->message ? ge->message : "unknown error");
}

int vz_workspace_global_init(vz_err *e)
{
	if (git_libgit2_init() < 0)
		return git_fail(e, VZ_EIO, "%s", "cannot initialise libgit2");
	/* builds are isolated by the per-repository lock; libgit2's own owner checks would refuse
	 * caches made by another user of a shared work dir */
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	return 0;
}

void vz_workspace_global_cleanup(void)
{
	git_libgit2_shutdown();
}

/* Cache directory name: the URL with every character outside [A-Za-z0-9._-] replaced. */
static char *cache_path(const char *root, const char *repo)
{
	char name[512];
	size_t j = 0;
	for (const char *p = repo; *p && j < sizeof(name) - 5; p++) {
		char c = *p;
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
		name[j++] = ok ? c : '_';
	}
	memcpy(name + j, ".git", 5);
	return vz_path_join(root, name);
}

static int lock_cache(const char *cache, int *fd_out, vz_err *e)
{
	size_t n = strlen(cache) + 8;
	char *lp = malloc(n);
	if (!lp)
		abort();
	snprintf(lp, n, "%s.lock", cache);
	int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	free(lp);
	if (fd < 0)
		return vz_err_set(e, VZ_EIO, "cannot create the lock for cache %s: %s", cache, strerror(errno));
	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			close(fd);
			return vz_err_set(e, VZ_EIO, "cannot lock cache %s: %s", cache, strerror(errno));
		}
	}
	*fd_out = fd;
	return 0;
}

static int have_commit(git_repository *r, const char *hex, git_oid *oid)
{
	if (!hex || strlen(hex) != 40 || git_oid_fromstr(oid, hex) < 0)
		return 0;
	git_commit *c = NULL;
	if (git_commit_lookup(&c, r, oid) < 0)
		return 0;
	git_commit_free(c);
	return 1;
}

static int update_cache(const vz_checkout_req *req, const char *cache, git_oid *oid, vz_err *e)
{
	git_repository *r = NULL;
	git_remote *remote = NULL;
	int rc = 0;
	if (git_repository_open_bare(&r, cache) < 0) {
		if (git_repository_init(&r, cache, 1) < 0) {
			rc = git_fail(e, VZ_EIO, "cannot create cache %s", cache);
			goto out;
		}
	}
	if (have_commit(r, req->commit, oid))
		goto out;
	/* url.*.insteadOf is not applied: the repository URL comes from the site config as it is.
	 * (It also avoids a per-call pcre2 leak in libgit2 1.5's insteadOf matching.) */
	git_remote_create_options ro = GIT_REMOTE_CREATE_OPTIONS_INIT;
	ro.repository = r;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
	if (git_remote_create_with_opts(&remote, req->repo, &ro) < 0) {
		rc = git_fail(e, VZ_ECONNECT, "cannot use repository %s", req->repo);
		goto out;
	}
	char spec[1200];
	snprintf(spec, sizeof(spec), "+%s:refs/vinz/fetch", req->ref);
	char *specs[] = { spec };
	git_strarray refspecs = { specs, 1 };
	git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
	fo.update_fetchhead = 0;
	if (git_remote_fetch(remote, &refspecs, &fo, NULL) < 0) {
		rc = git_fail(e, VZ_ECONNECT, "cannot fetch from %s", req->repo);
		goto out;
	}
	if (req->commit && *req->commit) {
		if (!have_commit(r, req->commit, oid))
			rc = vz_err_set(e, VZ_ENOTFOUND, "commit %s is not reachable from %s in %s; was the ref rewritten?",
					req->commit, req->ref, req->repo);
	} else if (git_reference_name_to_id(oid, r, "refs/vinz/fetch") < 0) {
		rc = git_fail(e, VZ_ENOTFOUND, "ref %s not found", req->ref);
	}
out:
	git_remote_free(remote);
	git_repository_free(r);
	return rc;
}

int vz_workspace_checkout(const vz_checkout_req *req, char out_commit[41], vz_err *e)
{
	int rc, lockfd = -1;
	git_repository *w = NULL;
	git_commit *c = NULL;
	git_reference *br = NULL;
	char *objects = NULL, *alt = NULL;
	git_oid oid;
	char *cache = cache_path(req->cache_root, req->repo);
	if ((rc = vz_mkdir_p(req->cache_root, 0755, e)) || (rc = lock_cache(cache, &lockfd, e)))
		goto out;
	rc = update_cache(req, cache, &oid, e);
	close(lockfd);
	if (rc)
		goto out;
	if (git_repository_init(&w, req->dest, 0) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot create checkout %s", req->dest);
		goto out;
	}
	/* share the cache's objects instead of copying them */
	objects = vz_path_join(cache, "objects");
	char *gitdir = vz_path_join(req->dest, ".git/objects/info/alternates");
	size_t n = strlen(objects) + 2;
	alt = malloc(n);
	if (!alt)
		abort();
	snprintf(alt, n, "%s\n", objects);
	rc = vz_write_file_atomic(gitdir, alt, strlen(alt), 0644, e);
	free(gitdir);
	if (rc)
		goto out;
	git_repository_free(w);
	w = NULL;
	if (git_repository_open(&w, req->dest) < 0 || git_commit_lookup(&c, w, &oid) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot read the commit in checkout %s", req->dest);
		goto out;
	}
	git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
	co.checkout_strategy = GIT_CHECKOUT_FORCE;
	if (git_checkout_tree(w, (git_object *)c, &co) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot check out %s", req->dest);
		goto out;
	}
	if (req->branch && *req->branch) {
		char refname[600];
		snprintf(refname, sizeof(refname), "refs/heads/%s", req->branch);
		if (git_reference_create(&br, w, refname, &oid, 1, "vinz: speculative head") < 0 ||
		    git_repository_set_head(w, refname) < 0) {
			rc = git_fail(e, VZ_EIO, "cannot create branch %s", req->branch);
			goto out;
		}
	} else if (git_repository_set_head_detached(w, &oid) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot set HEAD in %s", req->dest);
		goto out;
	}
	git_oid_tostr(out_commit, 41, &oid);
out:
	git_reference_free(br);
	git_commit_free(c);
	git_repository_free(w);
	free(objects);
	free(alt);
	free(cache);
	return rc;
}
