/* vz_spec: the speculative state of a gate queue, built with vz_merger. Given the items of a queue
 * in order (each a change to one project and branch, with its merge mode and enqueue time), it
 * merges each item onto the result of the items ahead of it for the same project and branch
 * (or the branch head, or a frozen repo state, for the first) and reports, per item, the commit it
 * is tested on, the files it changes, whether it merged and, when not, the conflicting paths.
 * It writes objects only (no ref), so nothing half-done is ever visible. Also: reading a
 * commit's in-repo Zuul configuration without a checkout, and creating a build workspace that
 * reproduces a repo state (local branches at their speculative heads, no remote). */
#ifndef VZ_SPEC_H
#define VZ_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vz_err.h"
#include "vz_merger.h"

typedef struct vz_spec_item {
	const char *id;       /* the item's name in results and messages ("12,3", a PR number) */
	const char *project;  /* canonical project name ("review.example.org/org/app") */
	const char *branch;   /* target branch, without refs/heads/ */
	const char *gitdir;   /* the project's repository (the executor's cache): it must hold the
	                       * change's commits and, unless frozen, refs/heads/<branch> */
	const char *change;   /* commit-ish of the change (a commit id, or a ref in gitdir) */
	vz_merge_mode mode;
	int64_t date;         /* enqueue time (epoch seconds): the date of every commit vinz makes */
} vz_spec_item;

/* One entry of a frozen repo state: the head of a branch (or tag) of a project. */
typedef struct vz_spec_head {
	const char *project;
	const char *ref;      /* "refs/heads/main", "refs/tags/v1", or a bare branch name */
	const char *commit;   /* 40-hex */
} vz_spec_head;

/* The entry of hs (n of them) for branch of project canon (an entry's ref may be
 * "refs/heads/BRANCH" or the bare name), or NULL. */
const vz_spec_head *vz_spec_head_find(const vz_spec_head *hs, size_t n, const char *canon, const char *branch);

typedef struct vz_spec_result {
	int merged;           /* 1: commit is what the item is tested on; 0: conflict (or error) */
	char commit[41];      /* speculative head of (project, branch) after this item, "" if not merged */
	char base[41];        /* the head it was merged onto */
	char **conflicts;     /* conflicting paths, sorted (may be empty, e.g. unrelated histories) */
	size_t nconflicts;
	char **files;         /* files the change touches, as Zuul computes them, sorted */
	size_t nfiles;
	char *message;        /* on conflict or error: one line naming the item, project, branch and
	                       * paths; NULL when merged */
	const char *note;     /* static remark from the merger ("fast-forward", "already merged") */
} vz_spec_result;

typedef struct vz_spec vz_spec;

/* Builds the state. frozen (may be NULL/0) fixes branch heads instead of reading them from each
 * gitdir's refs/heads/<branch>. A conflicting item is left out of the state the items behind it
 * see (the gate dequeues it), and so is an item whose change does not resolve (its result says
 * why). Returns 0 (conflicts are results, not errors); VZ_ENOTFOUND when a branch head does not
 * resolve; VZ_EIO when a repository cannot be read; VZ_EINVAL for bad items; VZ_ENOMEM.
 * libgit2 must be initialised (vz_workspace_global_init). Free with vz_spec_free. */
int vz_spec_build(vz_spec **out, const vz_spec_item *items, size_t nitems, const vz_spec_head *frozen,
		  size_t nfrozen, vz_err *e);
void vz_spec_free(vz_spec *s); /* accepts NULL */

/* The result of item i (borrowed from s; NULL when i is out of range). */
const vz_spec_result *vz_spec_item_result(const vz_spec *s, size_t i);

/* The head of (project, branch) after item i, i.e. what a build of item i sees for that
 * project and branch: 40-hex borrowed from s, or NULL when the queue up to i never touched it
 * and it was not frozen. i = (size_t)-1 gives the heads before the first item. */
const char *vz_spec_head_after(const vz_spec *s, size_t i, const char *project, const char *branch);

/* The whole result as JSON: {"items": [{"id","project","branch","merged","commit","base",
 * "files","conflicts","message","note","state": {project: {branch: commit}}}]}, "state" being the
 * heads of every (project, branch) seen so far as the item's build would see them. New reference. */
json_t *vz_spec_to_json(const vz_spec *s);

/* Reads the in-repo Zuul configuration of commit (commit-ish) in gitdir without a checkout, as
 * Zuul loads it: the first of `zuul.yaml`, `zuul.d/`, `.zuul.yaml`, `.zuul.d/` that exists with
 * content wins (the others are listed in *ignored); a directory contributes its `*.yaml` files,
 * recursively, sorted by path; empty files are skipped. *out is a JSON object {path: content} in
 * that order; *ignored (may be NULL) a JSON array of roots left out. Files over max_bytes (0:
 * 4 MiB) each, or over 16 times that together, give VZ_ETOOBIG. New references. */
int vz_spec_read_config(json_t **out, json_t **ignored, const char *gitdir, const char *commit, size_t max_bytes,
			vz_err *e);

/* A branch of a workspace repository and its (speculative) head. */
typedef struct vz_spec_branch {
	const char *name;     /* without refs/heads/ */
	const char *commit;   /* 40-hex */
} vz_spec_branch;

/* Creates a build workspace at dest (must not exist): a git repository whose objects come from
 * gitdir through objects/info/alternates (nothing copied), with refs/heads/<name> at each given
 * commit, no remote, HEAD on the branch `checkout` (or detached at `checkout` when it is a
 * 40-hex id that names no given branch), and that commit checked out. VZ_ENOTFOUND when a
 * commit is not in gitdir; VZ_EIO. */
int vz_spec_workspace(const char *gitdir, const char *dest, const vz_spec_branch *branches, size_t nbranches,
		      const char *checkout, vz_err *e);

#endif
