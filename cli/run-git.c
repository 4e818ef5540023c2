/* run-git: the user's repository for `vinz run`: where it is, what HEAD and the base are, and
 * the work tree as one more commit. The user's repository is only read; everything vinz writes
 * goes into the run's own cache repository, which borrows the user's objects. */
#include <errno.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run-int.h"
#include "vz_buf.h"
#include "vz_merger.h"
#include "vz_util.h"

#define MAX_CHANGED 100000 /* paths of an uncommitted change; more is refused */

/* The one place libgit2 errors become vz errors in `vinz run`. */
static int git_fail(vz_err *e, int code, const char *what)
{
	const git_error *ge = git_error_last();
	return vz_err_set(e, code, "git: %s: %s", what, ge && ge->message ? ge->message : "unknown error");
}

static char *strip_slash(const char *p)
{
	char *s = vz_xstrdup(p);
	size_t n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

int run_repo_open(run_repo *out, const char *dir, vz_err *e)
{
	git_repository *r = NULL;
	git_reference *head = NULL;
	git_object *c = NULL;
	int rc = 0;
	memset(out, 0, sizeof(*out));
	if (git_repository_open_ext(&r, dir, 0, NULL) < 0) {
		rc = vz_err_set(e, VZ_ENOTFOUND, "%s is not in a git work tree", dir);
		goto out;
	}
	if (git_repository_is_bare(r) || !git_repository_workdir(r)) {
		rc = vz_err_set(e, VZ_ENOTFOUND, "%s is a bare repository: vinz run needs a work tree", dir);
		goto out;
	}
	out->top = strip_slash(git_repository_workdir(r));
	out->cwd = getcwd(NULL, 0);
	if (!out->cwd)
		out->cwd = vz_xstrdup(out->top);
	char *common = strip_slash(git_repository_commondir(r));
	out->objects = vz_path_join(common, "objects");
	free(common);
	if (git_repository_head(&head, r) < 0 || git_reference_peel(&c, head, GIT_OBJECT_COMMIT) < 0) {
		rc = vz_err_set(e, VZ_EINVAL, "%s: HEAD names no commit yet: commit something first", out->top);
		goto out;
	}
	git_oid_tostr(out->head, sizeof(out->head), git_object_id(c));
	if (git_reference_is_branch(head))
		out->branch = vz_xstrdup(git_reference_shorthand(head));
out:
	git_object_free(c);
	git_reference_free(head);
	git_repository_free(r);
	if (rc)
		run_repo_clear(out);
	return rc;
}

void run_repo_clear(run_repo *r)
{
	if (!r)
		return;
	free(r->top);
	free(r->objects);
	free(r->branch);
	free(r->cwd);
	memset(r, 0, sizeof(*r));
}

/* The branch a ref stands for: refs/heads/X -> X, refs/remotes/R/X -> X (R is taken as one path
 * component: git_branch_remote_name would match every remote's refspecs with libgit2 1.5's pcre2
 * regexps, which leak their match data on each call). */
static char *branch_of(const char *refname)
{
	if (vz_startswith(refname, "refs/heads/"))
		return vz_xstrdup(refname + 11);
	if (vz_startswith(refname, "refs/remotes/")) {
		const char *slash = strchr(refname + 13, '/');
		return slash && slash[1] ? vz_xstrdup(slash + 1) : NULL;
	}
	return NULL;
}

/* The upstream of branch from branch.<b>.remote and branch.<b>.merge, as the ref holding it
 * (refs/remotes/<remote>/<branch>, or the local branch for remote "."), or NULL. Read from the
 * config directly: git_branch_upstream looks the remote up with regexps that leak in libgit2 1.5;
 * the remote's default fetch refspec is assumed. Caller frees. */
static char *upstream_ref(git_repository *r, const char *branch)
{
	git_config *cfg = NULL;
	git_buf remote = { 0 }, merge = { 0 };
	char key[600];
	char *out = NULL;
	if (git_repository_config_snapshot(&cfg, r) < 0)
		return NULL;
	snprintf(key, sizeof(key), "branch.%s.remote", branch);
	int ok = git_config_get_string_buf(&remote, cfg, key) == 0;
	snprintf(key, sizeof(key), "branch.%s.merge", branch);
	ok = ok && git_config_get_string_buf(&merge, cfg, key) == 0 && vz_startswith(merge.ptr, "refs/heads/");
	if (ok) {
		vz_buf b;
		vz_buf_init(&b, 2048);
		if (strcmp(remote.ptr, ".") == 0)
			vz_buf_printf(&b, "%s", merge.ptr);
		else
			vz_buf_printf(&b, "refs/remotes/%s/%s", remote.ptr, merge.ptr + 11);
		out = vz_xstrdup(vz_buf_cstr(&b));
		vz_buf_free(&b);
	}
	git_buf_dispose(&remote);
	git_buf_dispose(&merge);
	git_config_free(cfg);
	return out;
}

int run_repo_base(const run_repo *rr, const char *base, char commit[41], char **name, char **branch, vz_err *e)
{
	git_repository *r = NULL;
	git_reference *ref = NULL, *up = NULL;
	git_object *obj = NULL;
	char *upname = NULL;
	int rc = 0;
	*name = *branch = NULL;
	if (git_repository_open(&r, rr->top) < 0)
		return git_fail(e, VZ_EIO, rr->top);
	if (base) {
		if (git_revparse_ext(&obj, &ref, r, base) < 0) {
			rc = vz_err_set(e, VZ_ENOTFOUND, "--base %s names no commit in %s", base, rr->top);
			goto out;
		}
		*name = vz_xstrdup(base);
		if (ref)
			*branch = branch_of(git_reference_name(ref));
	} else if (rr->branch && (upname = upstream_ref(r, rr->branch)) != NULL &&
		   git_reference_lookup(&up, r, upname) == 0) {
		*name = vz_xstrdup(git_reference_shorthand(up));
		*branch = branch_of(upname);
		if (git_reference_peel(&obj, up, GIT_OBJECT_COMMIT) < 0) {
			rc = git_fail(e, VZ_EIO, "cannot read the upstream branch");
			goto out;
		}
	} else if (git_reference_lookup(&ref, r, "refs/remotes/origin/HEAD") == 0 &&
		   git_reference_symbolic_target(ref) != NULL) {
		const char *t = git_reference_symbolic_target(ref);
		*name = vz_xstrdup(vz_startswith(t, "refs/remotes/") ? t + 13 : t);
		*branch = branch_of(t);
		if (git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) < 0) {
			rc = vz_err_set(e, VZ_ENOTFOUND, "origin/HEAD points at %s, which does not exist; give --base REF", t);
			goto out;
		}
	} else {
		rc = vz_err_set(e, VZ_ENOTFOUND,
				"cannot tell what to merge onto: %s has no upstream branch and the repository has no "
				"default remote branch (refs/remotes/origin/HEAD); give --base REF (e.g. --base main), "
				"or set an upstream with git branch --set-upstream-to",
				rr->branch ? rr->branch : "the detached HEAD");
		goto out;
	}
	git_object *c = NULL;
	if (git_object_peel(&c, obj, GIT_OBJECT_COMMIT) < 0) {
		rc = vz_err_set(e, VZ_ENOTFOUND, "the base %s is not a commit", *name);
		goto out;
	}
	git_oid_tostr(commit, 41, git_object_id(c));
	git_object_free(c);
	if (!*branch && rr->branch)
		*branch = vz_xstrdup(rr->branch);
	if (!*branch)
		rc = vz_err_set(e, VZ_ENOTFOUND, "the base %s is no branch and HEAD is detached: give --branch NAME "
						 "(the branch the change is for)", *name);
out:
	if (rc) {
		free(*name);
		free(*branch);
		*name = *branch = NULL;
	}
	git_object_free(obj);
	git_reference_free(ref);
	git_reference_free(up);
	git_repository_free(r);
	free(upname);
	return rc;
}


int run_cache_seed(const char *cache, const char *objects, vz_err *e)
{
	git_repository *r = NULL;
	if (git_repository_init(&r, cache, 1) < 0)
		return git_fail(e, VZ_EIO, cache);
	git_repository_free(r);
	char *alt = vz_path_join(cache, "objects/info/alternates");
	vz_buf b;
	vz_buf_init(&b, 8192);
	vz_buf_printf(&b, "%s\n", objects);
	int rc = vz_write_file_atomic(alt, vz_buf_cstr(&b), b.len, 0644, e);
	vz_buf_free(&b);
	free(alt);
	return rc;
}

/* Puts the work tree's version of path into idx (or takes it out when it is gone). */
static int take_path(git_index *idx, git_repository *dst, const char *top, const char *path, vz_err *e)
{
	char *full = vz_path_join(top, path);
	struct stat st;
	int rc = 0;
	git_index_entry ent;
	memset(&ent, 0, sizeof(ent));
	ent.path = path;
	if (lstat(full, &st) != 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			rc = vz_err_set(e, VZ_EIO, "cannot read %s: %s", full, strerror(errno));
		else
			git_index_remove(idx, path, 0); /* deleted: absent from the tree */
		goto out;
	}
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(full, target, sizeof(target));
		if (n < 0 || (size_t)n >= sizeof(target)) {
			rc = vz_err_set(e, VZ_EIO, "cannot read the symbolic link %s", full);
			goto out;
		}
		if (git_blob_create_from_buffer(&ent.id, dst, target, (size_t)n) < 0) {
			rc = git_fail(e, VZ_EIO, full);
			goto out;
		}
		ent.mode = GIT_FILEMODE_LINK;
	} else if (S_ISREG(st.st_mode)) {
		if (git_blob_create_from_disk(&ent.id, dst, full) < 0) {
			rc = git_fail(e, VZ_EIO, full);
			goto out;
		}
		ent.mode = st.st_mode & 0111 ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
	} else {
		goto out; /* a directory (a nested repository) or a special file: not content */
	}
	if (git_index_add(idx, &ent) < 0)
		rc = git_fail(e, VZ_EIO, path);
out:
	free(full);
	return rc;
}

int run_uncommitted(char out[41], size_t *nchanged, const run_repo *rr, const char *cache, const char *skip_prefix,
		    int64_t date, vz_err *e)
{
	git_repository *u = NULL, *d = NULL;
	git_index *idx = NULL;
	git_status_list *sl = NULL;
	git_commit *head = NULL;
	git_tree *tree = NULL, *newtree = NULL;
	git_signature *sig = NULL;
	git_oid hid, tid, cid;
	int rc = 0;
	*nchanged = 0;
	vz_strlcpy(out, rr->head, 41);
	if (git_repository_open(&u, rr->top) < 0 || git_repository_open_bare(&d, cache) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot open the repository");
		goto out;
	}
	git_oid_fromstr(&hid, rr->head);
	if (git_commit_lookup(&head, d, &hid) < 0 || git_commit_tree(&tree, head) < 0 || git_index_new(&idx) < 0 ||
	    git_index_read_tree(idx, tree) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot read HEAD's tree");
		goto out;
	}
	git_status_options so = GIT_STATUS_OPTIONS_INIT;
	so.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
		   GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	if (git_status_list_new(&sl, u, &so) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot read the work tree's status");
		goto out;
	}
	size_t n = git_status_list_entrycount(sl);
	if (n > MAX_CHANGED) {
		rc = vz_err_set(e, VZ_ETOOBIG, "%zu changed paths in %s (at most %d): commit some, or ignore build "
					       "output in .gitignore", n, rr->top, MAX_CHANGED);
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		const git_status_entry *se = git_status_byindex(sl, i);
		const git_diff_delta *ds[2] = { se->head_to_index, se->index_to_workdir };
		for (int k = 0; k < 2 && !rc; k++) {
			if (!ds[k])
				continue;
			const char *paths[2] = { ds[k]->old_file.path, ds[k]->new_file.path };
			for (int p = 0; p < 2 && !rc; p++) {
				if (!paths[p] || (p == 1 && paths[0] && strcmp(paths[0], paths[1]) == 0))
					continue;
				if (skip_prefix && vz_startswith(paths[p], skip_prefix))
					continue;
				rc = take_path(idx, d, rr->top, paths[p], e);
			}
		}
	}
	if (rc)
		goto out;
	if (git_index_write_tree_to(&tid, idx, d) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot write the work tree's tree");
		goto out;
	}
	if (git_oid_equal(&tid, git_tree_id(tree)))
		goto out; /* nothing uncommitted */
	git_diff *diff = NULL;
	if (git_tree_lookup(&newtree, d, &tid) < 0 || git_diff_tree_to_tree(&diff, d, tree, newtree, NULL) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot compare the work tree with HEAD");
		goto out;
	}
	*nchanged = git_diff_num_deltas(diff);
	git_diff_free(diff);
	const git_commit *parents[1] = { head };
	if (git_signature_new(&sig, VZ_MERGE_NAME, VZ_MERGE_EMAIL, date, 0) < 0 ||
	    git_commit_create(&cid, d, NULL, sig, sig, NULL, "vinz run: uncommitted changes\n", newtree, 1, parents) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot write the commit of the uncommitted changes");
		goto out;
	}
	git_oid_tostr(out, 41, &cid);
out:
	git_signature_free(sig);
	git_tree_free(newtree);
	git_tree_free(tree);
	git_commit_free(head);
	git_status_list_free(sl);
	git_index_free(idx);
	git_repository_free(d);
	git_repository_free(u);
	return rc;
}
