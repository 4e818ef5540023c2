/* vz_merger: speculative merges with libgit2, as Zuul's merger does them with git, in the five Zuul
 * merge modes. Writes objects (trees, blobs, commits) into the repository and nothing else: no ref,
 * no index file, no work tree. Commits are deterministic (fixed identity, caller-given date, fixed
 * message form), so the same input gives the same commit ids on any executor.
 * Trees are merged by walking only the subtrees that differ between base, ours and theirs; whenever
 * rename detection could change the outcome (or anything conflicts) the merge is redone with
 * libgit2's full merge. docs/merging.md lists the known differences from git's ort strategy. */
#ifndef VZ_MERGER_H
#define VZ_MERGER_H

#include <stddef.h>
#include <stdint.h>

#include "vz_err.h"

typedef enum vz_merge_mode {
	VZ_MERGE_MERGE = 0,    /* git merge (ort): fast-forward when possible, else a two-parent commit */
	VZ_MERGE_RESOLVE,      /* git merge -s resolve: as merge, without rename detection */
	VZ_MERGE_CHERRY_PICK,  /* git cherry-pick --keep-redundant-commits; a merge commit is merged (resolve) */
	VZ_MERGE_SQUASH,       /* git merge --squash + commit: one single-parent commit */
	VZ_MERGE_REBASE,       /* git rebase: the change's own commits replayed onto the result */
} vz_merge_mode;

/* Identity and default date of the commits vinz creates. */
#define VZ_MERGE_NAME "vinz"
#define VZ_MERGE_EMAIL "vinz@vinz.invalid"
#define VZ_MERGE_DEFAULT_DATE INT64_C(1262304000) /* 2010-01-01T00:00:00Z */

/* Parses "merge", "merge-resolve", "cherry-pick", "squash-merge", "rebase". 0 or VZ_EINVAL. */
int vz_merge_mode_parse(vz_merge_mode *out, const char *name);
/* Static name of a mode. */
const char *vz_merge_mode_name(vz_merge_mode mode);

typedef struct vz_merger vz_merger;

/* Opens the repository at gitdir (bare or not; only its object store is written). libgit2 must be
 * initialised (vz_workspace_global_init). VZ_ENOTFOUND when gitdir is no repository. */
int vz_merger_open(vz_merger **out, const char *gitdir, vz_err *e);
void vz_merger_free(vz_merger *m); /* accepts NULL */

/* Tuning for tests and benchmarks. tree_walk = 0 always uses libgit2's full merge (the walk is on
 * by default); patience = 1 uses the patience diff for file merges (off by default: docs/merging.md
 * has the agreement figures of both). */
void vz_merger_set_options(vz_merger *m, int tree_walk, int patience);
/* on = 0 turns off the directory-rename conflicts vinz reports as git's ort does (on by default;
 * docs/merging.md): the merge is then libgit2's, which keeps a file added to a directory the other
 * side renamed in the old directory. */
void vz_merger_set_dir_renames(vz_merger *m, int on);

/* Resolves a commit-ish (commit id, ref, "HEAD~2") to a commit id in out (41 bytes).
 * VZ_ENOTFOUND when it names no commit; VZ_EINVAL for an empty name. */
int vz_merger_resolve(vz_merger *m, const char *spec, char out[41], vz_err *e);

typedef struct vz_merge_req {
	vz_merge_mode mode;
	const char *onto;   /* commit-ish the change goes onto (the branch head or the previous result) */
	const char *change; /* commit-ish of the change; also named in merge commit messages */
	const char *branch; /* commit-ish of the branch head, for the files changed; NULL: onto */
	int64_t date;       /* author and committer date (seconds since the epoch, +0000) of new commits */
	int want_files;     /* fill files */
} vz_merge_req;

typedef struct vz_merge_result {
	int merged;          /* 1: commit/tree are the result; 0: conflict */
	char commit[41];     /* result commit (hex), "" on conflict */
	char tree[41];       /* its tree */
	char **conflicts;    /* sorted conflicting paths (on conflict; may be empty, e.g. unrelated histories) */
	size_t nconflicts;
	char **files;        /* sorted files changed by the change relative to branch, as Zuul computes them */
	size_t nfiles;
	const char *note;    /* static: why there is no new commit or no paths ("fast-forward", ...), or NULL */
	unsigned full_merges; /* how many tree merges needed libgit2's full merge (0: tree walk only) */
} vz_merge_result;

/* Applies one change onto req->onto in req->mode. Returns 0 with out->merged 1 or 0 (a conflict is
 * not an error), or VZ_ENOTFOUND (a commit-ish does not resolve), VZ_EINVAL, VZ_EIO (libgit2 failed),
 * VZ_ENOMEM. out is always initialised; free it with vz_merge_result_clear. */
int vz_merger_apply(vz_merger *m, const vz_merge_req *req, vz_merge_result *out, vz_err *e);
void vz_merge_result_clear(vz_merge_result *r);

/* Merges three trees (40-hex ids; base may be NULL for "no common ancestor") the way a merge with
 * one merge base does, with or without rename detection. out_tree gets the tree on success;
 * *clean is 0 on conflict (out_tree is then ""). For tests and benchmarks. */
int vz_merger_merge_trees(vz_merger *m, const char *base, const char *ours, const char *theirs, int renames,
			  char out_tree[41], int *clean, vz_err *e);

#endif
