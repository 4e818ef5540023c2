/* vz_workspace: bare caches and per-build checkouts with libgit2; see vz_workspace.h. */
#include "vz_workspace.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vz_log.h"
#include "vz_util.h"

/* The one place libgit2 errors become vz errors in the executor. */
static int git_fail(vz_err *e, int code, const char *fmt, const char *arg)
{
	const git_error *ge = git_error_last();
	char what[600];
	snprintf(what, sizeof(what), fmt, arg);
	return vz_err_set(e, code, "git: %s: %s", what, ge && ge->message ? ge->message : "unknown error");
}

static pthread_mutex_t g_init_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_inited;

int vz_workspace_global_init(vz_err *e)
{
	int rc = 0;
	pthread_mutex_lock(&g_init_mu);
	if (!g_inited) {
		if (git_libgit2_init() < 0) {
			rc = git_fail(e, VZ_EIO, "%s", "cannot initialise libgit2");
		} else {
			/* builds are isolated by the per-repository lock; libgit2's own owner checks
			 * would refuse caches made by another user of a shared work dir */
			git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
			g_inited = 1;
		}
	}
	pthread_mutex_unlock(&g_init_mu);
	return rc;
}

void vz_workspace_global_cleanup(void)
{
	pthread_mutex_lock(&g_init_mu);
	if (g_inited)
		git_libgit2_shutdown();
	g_inited = 0;
	pthread_mutex_unlock(&g_init_mu);
}

char *vz_workspace_cache_path(const char *root, const char *repo)
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

/* Removes *.lock files under dir (depth-limited). Called with the cache's flock held: no other
 * vinz process writes the cache then, so any lock file is left over from a killed process. */
static void remove_stale_locks(const char *dir, int depth)
{
	if (depth > 8)
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (depth == 0 && strcmp(de->d_name, "objects") == 0)
			continue; /* only refs, config and HEAD take locks */
		char *p = vz_path_join(dir, de->d_name);
		size_t n = strlen(de->d_name);
		struct stat st;
		if (lstat(p, &st) == 0) {
			if (S_ISDIR(st.st_mode))
				remove_stale_locks(p, depth + 1);
			else if (n > 5 && strcmp(de->d_name + n - 5, ".lock") == 0 && unlink(p) == 0)
				vz_warn("cache: removed stale lock %s", p);
		}
		free(p);
	}
	closedir(d);
}

/* A new bare cache, made in a temporary directory and renamed into place, so a process killed
 * half-way never leaves a half-made cache behind. */
static int create_cache(const char *cache, git_repository **out, vz_err *e)
{
	size_t n = strlen(cache) + 8;
	char *tmp = malloc(n);
	if (!tmp)
		abort();
	snprintf(tmp, n, "%s.tmp", cache);
	int rc = 0;
	git_repository *r = NULL;
	vz_rm_rf(tmp, NULL);
	if (git_repository_init(&r, tmp, 1) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot create cache %s", tmp);
		goto out;
	}
	git_repository_free(r);
	r = NULL;
	if (rename(tmp, cache) != 0) {
		rc = vz_err_set(e, VZ_EIO, "cannot move cache %s into place: %s", cache, strerror(errno));
		goto out;
	}
	if (git_repository_open_bare(out, cache) < 0)
		rc = git_fail(e, VZ_EIO, "cannot open the new cache %s", cache);
out:
	if (rc)
		vz_rm_rf(tmp, NULL);
	free(tmp);
	return rc;
}

static int open_cache(const char *cache, git_repository **out, vz_err *e)
{
	struct stat st;
	if (stat(cache, &st) != 0)
		return create_cache(cache, out, e);
	remove_stale_locks(cache, 0);
	if (git_repository_open_bare(out, cache) == 0)
		return 0;
	const git_error *ge = git_error_last();
	vz_warn("cache %s cannot be opened (%s); rebuilding it", cache, ge && ge->message ? ge->message : "?");
	if (vz_rm_rf(cache, e))
		return VZ_EIO;
	return create_cache(cache, out, e);
}

/* Fetches one refspec over the connected remote. VZ_ENOTFOUND (message left to the caller)
 * when the remote has no ref matching it; otherwise the failure as vz_gitcred_fail says. */
static int fetch_spec(git_remote *remote, vz_gitcred *gc, const char *spec, const char *repo, vz_err *e)
{
	char *specs[] = { (char *)spec };
	git_strarray refspecs = { specs, 1 };
	git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
	char what[1400];
	fo.update_fetchhead = 0;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE; /* only what the build needs */
	vz_gitcred_callbacks(gc, &fo.callbacks);
	int grc = git_remote_fetch(remote, &refspecs, &fo, NULL);
	if (grc == 0)
		return 0;
	const git_error *ge = git_error_last();
	if (ge && ge->message && strstr(ge->message, "no match for"))
		return VZ_ENOTFOUND;
	/* a transfer or credential failure is the server's; anything else is the cache's (VZ_EIO:
	 * the caller rebuilds it) */
	snprintf(what, sizeof(what), "cannot fetch %s from %s into the cache", spec, repo);
	return vz_gitcred_fail(gc, grc, VZ_EIO, e, what);
}

/* The commit a fetched ref points at, peeling an annotated tag. */
static int fetched_commit(git_repository *r, const char *refname, git_oid *oid)
{
	git_reference *ref = NULL;
	git_object *obj = NULL;
	int ok = git_reference_lookup(&ref, r, refname) == 0 && git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) == 0;
	if (ok)
		git_oid_cpy(oid, git_object_id(obj));
	git_object_free(obj);
	git_reference_free(ref);
	return ok;
}

/* Brings the commit (or the ref) into the cache, touching the network only when the commit is
 * not there yet: first just req->ref (narrow refspec), then every ref when the commit is not
 * reachable from it. VZ_ECONNECT: the repository could not be reached or read, VZ_EHOSTKEY,
 * VZ_EAUTH, VZ_EINVAL: see vz_workspace_checkout (the cache is fine in all these);
 * VZ_ENOTFOUND: it has no such ref or commit; VZ_EIO: the cache failed (the caller rebuilds it). */
static int update_cache(const vz_checkout_req *req, const char *cache, git_oid *oid, vz_err *e)
{
	git_repository *r = NULL;
	git_remote *remote = NULL;
	vz_gitcred *gc = NULL;
	char what[1200];
	int want_commit = req->commit && *req->commit, grc;
	int rc = open_cache(cache, &r, e);
	if (rc)
		goto out;
	if (have_commit(r, req->commit, oid))
		goto out; /* no network at all */
	if (!(req->ref && *req->ref) && !want_commit) {
		rc = vz_err_set(e, VZ_EINVAL, "nothing to check out from %s: neither a ref nor a commit", req->repo);
		goto out;
	}
	if ((rc = vz_gitcred_new(&gc, req->repo, req->cred, e)))
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
	/* proxy options stay at libgit2's default: no proxy */
	git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
	vz_gitcred_callbacks(gc, &cb);
	if ((grc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL)) < 0) {
		snprintf(what, sizeof(what), "cannot read repository %s", req->repo);
		rc = vz_gitcred_fail(gc, grc, VZ_ECONNECT, e, what);
		goto out;
	}
	/* a fetch whose refspec matches nothing succeeds and changes nothing: never let the ref of
	 * an earlier fetch stand in for this one */
	git_reference *stale = NULL;
	if (git_reference_lookup(&stale, r, "refs/vinz/fetch") == 0) {
		git_reference_delete(stale);
		git_reference_free(stale);
	}
	if (req->ref && *req->ref) {
		char spec[1200];
		snprintf(spec, sizeof(spec), "+%s:refs/vinz/fetch", req->ref);
		rc = fetch_spec(remote, gc, spec, req->repo, e);
		if (rc == VZ_ENOTFOUND)
			rc = vz_err_set(e, VZ_ENOTFOUND, "ref %s not found in %s", req->ref, req->repo);
		if (rc)
			goto out;
		if (!want_commit) {
			if (!fetched_commit(r, "refs/vinz/fetch", oid))
				rc = vz_err_set(e, VZ_ENOTFOUND, "ref %s not found in %s", req->ref, req->repo);
			goto out;
		}
		if (have_commit(r, req->commit, oid))
			goto out;
		vz_info("cache: commit %s is not reachable from %s in %s; fetching every ref", req->commit, req->ref,
			req->repo);
	}
	/* the commit is on some other ref (or no ref was given): every ref, kept under
	 * refs/vinz/all/ so later fetches negotiate from them */
	rc = fetch_spec(remote, gc, "+refs/*:refs/vinz/all/*", req->repo, e);
	if (rc == VZ_ENOTFOUND)
		rc = 0; /* an empty repository: reported below */
	if (rc)
		goto out;
	if (!have_commit(r, req->commit, oid))
		rc = vz_err_set(e, VZ_ENOTFOUND, "commit %s is not reachable from %s nor from any other ref of %s; "
			       "was the ref rewritten?", req->commit, req->ref && *req->ref ? req->ref : "(no ref)",
			       req->repo);
out:
	git_remote_free(remote);
	git_repository_free(r);
	vz_gitcred_free(gc);
	return rc;
}

/* Creates the checkout at req->dest from the cache. VZ_EIO when objects cannot be read (a
 * damaged cache). */
static int make_checkout(const vz_checkout_req *req, const char *cache, const git_oid *oid, char out_commit[41],
			 vz_err *e)
{
	int rc = 0;
	git_repository *w = NULL;
	git_commit *c = NULL;
	git_reference *br = NULL;
	char *objects = NULL, *alt = NULL;
	if (git_repository_init(&w, req->dest, 0) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot create checkout %s", req->dest);
		goto out;
	}
	/* share the cache's objects instead of copying them */
	objects = vz_path_join(cache, "objects");
	char *altpath = vz_path_join(req->dest, ".git/objects/info/alternates");
	size_t n = strlen(objects) + 2;
	alt = malloc(n);
	if (!alt)
		abort();
	snprintf(alt, n, "%s\n", objects);
	rc = vz_write_file_atomic(altpath, alt, strlen(alt), 0644, e);
	free(altpath);
	if (rc)
		goto out;
	git_repository_free(w);
	w = NULL;
	if (git_repository_open(&w, req->dest) < 0 || git_commit_lookup(&c, w, oid) < 0) {
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
		if (git_reference_create(&br, w, refname, oid, 1, "vinz: speculative head") < 0 ||
		    git_repository_set_head(w, refname) < 0) {
			rc = git_fail(e, VZ_EIO, "cannot create branch %s", req->branch);
			goto out;
		}
	} else if (git_repository_set_head_detached(w, oid) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot set HEAD in %s", req->dest);
		goto out;
	}
	git_oid_tostr(out_commit, 41, oid);
out:
	git_reference_free(br);
	git_commit_free(c);
	git_repository_free(w);
	free(objects);
	free(alt);
	return rc;
}

/* Runs update_cache (and make_checkout when req->dest is set) under the cache's lock; a damaged
 * cache (truncated pack, broken refs, lost objects) shows as VZ_EIO: it is rebuilt and the
 * operation tried once more. */
static int with_cache(const vz_checkout_req *req, char out_commit[41], char **out_gitdir, vz_err *e)
{
	int rc = 0, lockfd = -1;
	git_oid oid;
	char *cache = vz_workspace_cache_path(req->cache_root, req->repo);
	if ((rc = vz_mkdir_p(req->cache_root, 0755, e)))
		goto out;
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((rc = lock_cache(cache, &lockfd, e)))
			goto out;
		if (attempt > 0 && (rc = vz_rm_rf(cache, e))) {
			close(lockfd);
			goto out;
		}
		rc = update_cache(req, cache, &oid, e);
		if (!rc && req->dest) {
			vz_rm_rf(req->dest, NULL);
			rc = make_checkout(req, cache, &oid, out_commit, e);
		} else if (!rc) {
			git_oid_tostr(out_commit, 41, &oid);
		}
		close(lockfd);
		if (rc != VZ_EIO || attempt > 0)
			break;
		vz_warn("cache %s: %s; rebuilding it", cache, vz_err_msg(e));
		vz_err_clear(e);
	}
	if (!rc && out_gitdir) {
		*out_gitdir = cache;
		cache = NULL;
	}
out:
	free(cache);
	return rc;
}

int vz_workspace_checkout(const vz_checkout_req *req, char out_commit[41], vz_err *e)
{
	if (!req->dest || !*req->dest)
		return vz_err_set(e, VZ_EINVAL, "checkout of %s: no destination", req->repo);
	return with_cache(req, out_commit, NULL, e);
}

int vz_workspace_fetch(const vz_checkout_req *req, char **out_gitdir, char out_commit[41], vz_err *e)
{
	*out_gitdir = NULL;
	out_commit[0] = '\0';
	vz_checkout_req r = *req;
	r.dest = NULL;
	r.branch = NULL;
	return with_cache(&r, out_commit, out_gitdir, e);
}
