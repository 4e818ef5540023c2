/* run-int: what the files of `vinz run` share (cli/cmd-run.c, cli/run-git.c, cli/run-view.c).
 * Not a module boundary: only the run command includes it. */
#ifndef VZ_RUN_INT_H
#define VZ_RUN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "vz_err.h"

/* ---- run-git.c: the user's repository, read with libgit2 and never written ---- */

typedef struct run_repo {
	char *top;      /* the work tree (absolute, no trailing slash) */
	char *objects;  /* its object store (the common dir's objects/, so linked work trees work) */
	char *branch;   /* branch checked out (short name), NULL when HEAD is detached */
	char head[41];  /* the commit HEAD points at */
	char *cwd;      /* the directory vinz run started in */
} run_repo;

/* Opens the repository whose work tree holds dir. VZ_ENOTFOUND (not in a git work tree, or a
 * bare repository), VZ_EINVAL (no commit yet). Clear with run_repo_clear. */
int run_repo_open(run_repo *out, const char *dir, vz_err *e);
void run_repo_clear(run_repo *r);

/* What the change is compared with and merged onto: base (a commit-ish, or NULL for the
 * branch's upstream, else the remote's default branch origin/HEAD). commit gets the base commit,
 * *name what it was (caller frees: "origin/main"), *branch the target branch (caller frees: the
 * base's branch name without remote, or the branch checked out when the base is no branch).
 * VZ_ENOTFOUND with a message saying what to give when nothing resolves. */
int run_repo_base(const run_repo *r, const char *base, char commit[41], char **name, char **branch, vz_err *e);

/* Creates a bare repository at cache whose object store borrows r's (objects/info/alternates),
 * so the executor's merger and workspaces find the user's commits without a fetch. */
int run_cache_seed(const char *cache, const char *objects, vz_err *e);

/* Writes into the repository at cache (not into the user's) a commit on top of r->head holding
 * the work tree as it is: tracked files as they are on disk (staged or not, deletions
 * included) and untracked files git does not ignore, except paths under skip_prefix (".vinz/").
 * The user's index and work tree are not touched (the tree is built in an index in memory).
 * out gets the commit, or r->head when nothing differs; *nchanged the paths that differ. */
int run_uncommitted(char out[41], size_t *nchanged, const run_repo *r, const char *cache, const char *skip_prefix,
		    int64_t date, vz_err *e);


/* ---- run-view.c: progress on a terminal or as plain lines ---- */

typedef struct run_view run_view;

/* tty: draw a live line (job, current task, elapsed) redrawn in place; else plain lines.
 * colour: ANSI colours (off with NO_COLOR or TERM=dumb). verbose: every log line. */
run_view *run_view_new(int tty, int colour, int verbose);
void run_view_free(run_view *v);
/* A job starts / prints a log line / ends. Thread-safe (lines come from the build thread). */
void run_view_job_start(run_view *v, const char *job);
void run_view_line(run_view *v, const char *node, const char *text, size_t len);
void run_view_job_end(run_view *v, const char *job, const char *result, const char *message, uint64_t ms,
		      int voting);
/* Redraws the live line (tty only; called every 100 ms by the waiting thread). */
void run_view_tick(run_view *v);
/* Prints a line above the live line. */
void run_view_note(run_view *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The colour escape for a result ("" without colour) and the reset escape. */
const char *run_view_colour(const run_view *v, const char *result);
const char *run_view_reset(const run_view *v);

#endif
