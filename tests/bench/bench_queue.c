/* bench_queue: the speculative state of a 20-change gate queue on a generated repository of
 * VZ_BENCH_FILES files (default 100000). Each change is based on master and touches 5 files;
 * pairs of changes share a file (different lines), so file-level merges happen too. vinz builds
 * the state in-process (vz_spec_build: 20 merges with commits) against the git command sequence a
 * git-based merger runs per item in a bare repository, measured in the same run:
 *   git merge-base --is-ancestor PREV CHANGE   (fast-forward check)
 *   git merge-tree --write-tree PREV CHANGE    (the merged tree)
 *   git commit-tree TREE -p PREV -p CHANGE     (the merge commit, same identity, date and message)
 * Every item's tree must equal git's, and so must the commit ids (same bytes). Prints medians
 * and the ratio; fails only when results differ, never on the numbers. VZ_BENCH_ROUNDS sets the
 * repetitions (default 5). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_benchutil.h"
#include "vz_buf.h"
#include "vz_spec.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

#define NCHANGES 20
#define DATE0 1700000000

#define CHECK(cond, ...)                                                 \
	do {                                                             \
		if (!(cond)) {                                           \
			fprintf(stderr, "bench_queue: " __VA_ARGS__);    \
			fprintf(stderr, " (%s:%d)\n", __FILE__, __LINE__); \
			exit(1);                                         \
		}                                                        \
	} while (0)

/* Change k (1..20): 5 files; file 0 of the list is shared with change k^1 (line 2 or 15). */
static void changes(vz_buf *s, long nfiles, void *ctx)
{
	(void)ctx;
	for (int k = 1; k <= NCHANGES; k++) {
		vz_buf_printf(s, "commit refs/changes/%d\ncommitter c <c@vinz.invalid> %d +0000\ndata 9\nchange %02d\nfrom refs/heads/master\n",
			      k, 1600000000 + k, k);
		for (int j = 0; j < 5; j++) {
			long i = j == 0 ? (nfiles / 31) * ((k + 1) / 2) : (nfiles / 113) * (k * 5 + j) + 7;
			i %= nfiles;
			vz_buf_puts(s, "M 100644 inline ");
			vz_bench_file_path(s, i);
			vz_buf_putc(s, '\n');
			vz_bench_file_data(s, i, j == 0 ? (k % 2 ? 2 : 15) : 9, "change");
		}
	}
}

static double run_vinz(const char *dir, char trees[NCHANGES][41], char commits[NCHANGES][41])
{
	vz_spec_item items[NCHANGES];
	char ids[NCHANGES][16], refs[NCHANGES][32];
	for (int k = 0; k < NCHANGES; k++) {
		snprintf(ids[k], sizeof(ids[k]), "%d,1", k + 1);
		snprintf(refs[k], sizeof(refs[k]), "refs/changes/%d", k + 1);
		items[k] = (vz_spec_item){ ids[k], "example.org/big", "master", dir, refs[k], VZ_MERGE_MERGE, DATE0 + k };
	}
	vz_spec *s = NULL;
	vz_err e = { 0 };
	double t0 = vz_bench_now_ms();
	int rc = vz_spec_build(&s, items, NCHANGES, NULL, 0, &e);
	double t = vz_bench_now_ms() - t0;
	CHECK(rc == 0, "vz_spec_build: %s", vz_err_msg(&e));
	for (int k = 0; k < NCHANGES; k++) {
		const vz_spec_result *r = vz_spec_item_result(s, (size_t)k);
		CHECK(r->merged, "item %d did not merge: %s", k + 1, r->message ? r->message : "");
		vz_strlcpy(commits[k], r->commit, 41);
		trees[k][0] = '\0';
	}
	vz_spec_free(s);
	/* trees of the commits, outside the timing */
	for (int k = 0; k < NCHANGES; k++) {
		char spec[64];
		snprintf(spec, sizeof(spec), "%.40s^{tree}", commits[k]);
		char *argv[] = { "git", "-C", (char *)dir, "rev-parse", spec, NULL };
		vz_buf o = VZ_BUF_INIT(4096);
		CHECK(vz_bench_run(argv, NULL, NULL, &o) == 0 && o.len >= 40, "rev-parse");
		memcpy(trees[k], o.ptr, 40);
		trees[k][40] = '\0';
		vz_buf_free(&o);
	}
	return t;
}

static void first_line(vz_buf *o, char out[41])
{
	CHECK(o->len >= 40, "no object id in git's output");
	memcpy(out, o->ptr, 40);
	out[40] = '\0';
}

static double run_git(const char *dir, char trees[NCHANGES][41], char commits[NCHANGES][41])
{
	char prev[41] = "master";
	vz_buf o = VZ_BUF_INIT(1 << 20);
	double t0 = vz_bench_now_ms();
	for (int k = 0; k < NCHANGES; k++) {
		char ref[32], msg[64], date[40], aname[] = "GIT_AUTHOR_NAME=" VZ_MERGE_NAME,
						   cname[] = "GIT_COMMITTER_NAME=" VZ_MERGE_NAME,
						   amail[] = "GIT_AUTHOR_EMAIL=" VZ_MERGE_EMAIL,
						   cmail[] = "GIT_COMMITTER_EMAIL=" VZ_MERGE_EMAIL;
		char adate[80], cdate[80];
		snprintf(ref, sizeof(ref), "refs/changes/%d", k + 1);
		snprintf(msg, sizeof(msg), "Merge '%s'", ref);
		snprintf(date, sizeof(date), "%d +0000", DATE0 + k);
		snprintf(adate, sizeof(adate), "GIT_AUTHOR_DATE=%s", date);
		snprintf(cdate, sizeof(cdate), "GIT_COMMITTER_DATE=%s", date);
		char *anc[] = { "git", "-C", (char *)dir, "merge-base", "--is-ancestor", prev, ref, NULL };
		int rc = vz_bench_run(anc, NULL, NULL, NULL);
		CHECK(rc == 0 || rc == 1, "git merge-base failed");
		if (rc == 0) { /* fast-forward */
			char *rp[] = { "git", "-C", (char *)dir, "rev-parse", ref, NULL };
			CHECK(vz_bench_run(rp, NULL, NULL, &o) == 0, "rev-parse");
			first_line(&o, commits[k]);
		} else {
			char *mt[] = { "git", "-C", (char *)dir, "merge-tree", "--write-tree", prev, ref, NULL };
			CHECK(vz_bench_run(mt, NULL, NULL, &o) == 0, "git merge-tree: item %d conflicts", k + 1);
			char tree[41];
			first_line(&o, tree);
			char *ct[] = { "git", "-C", (char *)dir, "commit-tree", tree, "-p", prev, "-p", ref, "-m", msg, NULL };
			char *env[] = { aname, cname, amail, cmail, adate, cdate, NULL };
			CHECK(vz_bench_run(ct, env, NULL, &o) == 0, "git commit-tree");
			first_line(&o, commits[k]);
		}
		vz_strlcpy(prev, commits[k], sizeof(prev));
	}
	double t = vz_bench_now_ms() - t0;
	for (int k = 0; k < NCHANGES; k++) {
		char spec[64];
		snprintf(spec, sizeof(spec), "%.40s^{tree}", commits[k]);
		char *rp[] = { "git", "-C", (char *)dir, "rev-parse", spec, NULL };
		CHECK(vz_bench_run(rp, NULL, NULL, &o) == 0, "rev-parse");
		first_line(&o, trees[k]);
	}
	vz_buf_free(&o);
	return t;
}

int main(void)
{
	int64_t nfiles = 100000, rounds = 5;
	const char *env = getenv("VZ_BENCH_FILES");
	if (env && vz_parse_i64(env, 1000, 5000000, &nfiles))
		nfiles = 100000;
	env = getenv("VZ_BENCH_ROUNDS");
	if (env && vz_parse_i64(env, 1, 1000, &rounds))
		rounds = 5;
	vz_err e = { 0 };
	CHECK(vz_workspace_global_init(&e) == 0, "%s", vz_err_msg(&e));
	char *tmp = vz_test_tmpdir("vz-bench-queue");
	char *dir = vz_path_join(tmp, "repo.git");
	double t0 = vz_bench_now_ms();
	vz_bench_make_repo(dir, (long)nfiles, changes, NULL);
	printf("bench_queue: generated %ld files and %d changes in %.0f ms\n", (long)nfiles, NCHANGES, vz_bench_now_ms() - t0);

	double *tv = calloc((size_t)rounds, sizeof(double)), *tg = calloc((size_t)rounds, sizeof(double));
	CHECK(tv && tg, "out of memory");
	static char vt[NCHANGES][41], vc[NCHANGES][41], gt[NCHANGES][41], gc[NCHANGES][41];
	int same_commits = 1;
	for (int r = 0; r < rounds; r++) {
		tg[r] = run_git(dir, gt, gc);
		tv[r] = run_vinz(dir, vt, vc);
		for (int k = 0; k < NCHANGES; k++) {
			CHECK(strcmp(vt[k], gt[k]) == 0, "item %d: trees differ: vinz %s, git %s", k + 1, vt[k], gt[k]);
			same_commits &= strcmp(vc[k], gc[k]) == 0;
		}
	}
	CHECK(same_commits, "commit ids differ from git's for the same identity, dates and messages");
	double mv = vz_bench_median(tv, (int)rounds), mg = vz_bench_median(tg, (int)rounds);
	printf("bench_queue: %ld files, %d changes (5 files each, 10 files shared by two changes), %d rounds, medians:\n",
	       (long)nfiles, NCHANGES, (int)rounds);
	printf("bench_queue:   vinz vz_spec_build (in-process)          %8.2f ms  (%.2f ms per item)\n", mv, mv / NCHANGES);
	printf("bench_queue:   git merge-base + merge-tree + commit-tree %8.2f ms  (%.2f ms per item)\n", mg, mg / NCHANGES);
	printf("bench_queue: ratio vinz/git = %.2fx; all %d trees and commit ids identical to git's\n", mv / mg, NCHANGES);
	free(tv);
	free(tg);
	vz_test_rm(tmp);
	free(dir);
	free(tmp);
	vz_workspace_global_cleanup();
	return 0;
}
