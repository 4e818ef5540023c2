/* bench_merge: one merge on a generated repository of VZ_BENCH_FILES files (default 100000, made
 * with git fast-import) with 10 files changed per side (3 of them on both sides, in different
 * lines, so file-level merges run too): vinz in-process (vz_merger_apply, merge mode: merge base,
 * tree walk, commit) against `git merge-tree --write-tree` as a process, measured in the same run,
 * and libgit2's full git_merge_commits for reference. Prints medians and ratios; fails only when
 * the trees differ or something errs, never on the numbers. VZ_BENCH_ROUNDS sets the repetitions. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_benchutil.h"
#include "vz_buf.h"
#include "vz_merger.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

#define now_ms vz_bench_now_ms
#define median vz_bench_median

#define CHECK(cond, ...)                                                 \
	do {                                                             \
		if (!(cond)) {                                           \
			fprintf(stderr, "bench_merge: " __VA_ARGS__);    \
			fprintf(stderr, " (%s:%d)\n", __FILE__, __LINE__); \
			exit(1);                                         \
		}                                                        \
	} while (0)

static void side_commit(vz_buf *s, const char *branch, long nfiles, int side)
{
	vz_buf_printf(s, "commit refs/heads/%s\ncommitter b <b@vinz.invalid> 1600000000 +0000\ndata 2\n%c\nfrom refs/heads/master\n",
		      branch, side ? 't' : 'o');
	/* 10 files per side spread over the tree; files 0..2 of each list are changed on both sides */
	for (int k = 0; k < 10; k++) {
		long i = k < 3 ? (nfiles / 7) * (k + 1) : (nfiles / 23) * (k + 1) + side * 11 + 5;
		i %= nfiles;
		vz_buf_puts(s, "M 100644 inline ");
		vz_bench_file_path(s, i);
		vz_buf_putc(s, '\n');
		vz_bench_file_data(s, i, k < 3 ? (side ? 15 : 2) : 7, side ? "theirs" : "ours");
	}
}

static void both_sides(vz_buf *s, long nfiles, void *ctx)
{
	(void)ctx;
	side_commit(s, "ours", nfiles, 0);
	side_commit(s, "theirs", nfiles, 1);
}

/* git merge-tree --write-tree ours theirs as a process; tree into out (41 bytes) */
static double git_merge_tree(const char *dir, char out[41])
{
	char *argv[] = { "git", "-C", (char *)dir, "merge-tree", "--write-tree", "ours", "theirs", NULL };
	vz_buf o = VZ_BUF_INIT(1 << 20);
	double t0 = now_ms();
	int rc = vz_bench_run(argv, NULL, NULL, &o);
	double t = now_ms() - t0;
	CHECK(rc == 0 && o.len >= 40, "git merge-tree failed");
	memcpy(out, o.ptr, 40);
	out[40] = '\0';
	vz_buf_free(&o);
	return t;
}

static double vinz_merge(vz_merger *m, char out[41], unsigned *full)
{
	vz_err e = { 0 };
	vz_merge_result r;
	vz_merge_req req = { VZ_MERGE_MERGE, "ours", "theirs", NULL, VZ_MERGE_DEFAULT_DATE, 0 };
	double t0 = now_ms();
	int rc = vz_merger_apply(m, &req, &r, &e);
	double t = now_ms() - t0;
	CHECK(rc == 0 && r.merged, "vinz merge failed: %s", rc ? vz_err_msg(&e) : "conflict");
	vz_strlcpy(out, r.tree, 41);
	*full = r.full_merges;
	vz_merge_result_clear(&r);
	return t;
}

int main(void)
{
	int64_t nfiles = 100000, rounds = 15;
	const char *env = getenv("VZ_BENCH_FILES");
	if (env && vz_parse_i64(env, 100, 5000000, &nfiles))
		nfiles = 100000;
	env = getenv("VZ_BENCH_ROUNDS");
	if (env && vz_parse_i64(env, 1, 1000, &rounds))
		rounds = 15;
	vz_err e = { 0 };
	CHECK(vz_workspace_global_init(&e) == 0, "%s", vz_err_msg(&e));
	char *tmp = vz_test_tmpdir("vz-bench-merge");
	char *dir = vz_path_join(tmp, "repo.git");
	double t0 = now_ms();
	vz_bench_make_repo(dir, (long)nfiles, both_sides, NULL);
	printf("bench_merge: generated %ld files with git fast-import in %.0f ms\n", (long)nfiles, now_ms() - t0);

	vz_merger *m = NULL;
	CHECK(vz_merger_open(&m, dir, &e) == 0, "%s", vz_err_msg(&e));
	double *tv = calloc((size_t)rounds, sizeof(double)), *tg = calloc((size_t)rounds, sizeof(double));
	CHECK(tv && tg, "out of memory");
	char vt[41], gt[41];
	unsigned full = 0;
	/* alternate the two so that caches and disk state favour neither */
	for (int i = 0; i < rounds; i++) {
		tg[i] = git_merge_tree(dir, gt);
		tv[i] = vinz_merge(m, vt, &full);
		CHECK(strcmp(vt, gt) == 0, "trees differ: vinz %s, git %s", vt, gt);
	}
	double mv = median(tv, (int)rounds), mg = median(tg, (int)rounds);
	double first_vinz = tv[0];

	/* libgit2's full merge, for reference (slow: a few rounds) */
	vz_merger_set_options(m, 0, 0);
	int lr = rounds < 3 ? (int)rounds : 3;
	double tl[3];
	for (int i = 0; i < lr; i++) {
		tl[i] = vinz_merge(m, vt, &full);
		CHECK(strcmp(vt, gt) == 0, "libgit2 full merge tree differs: %s, git %s", vt, gt);
	}
	double ml = median(tl, lr);

	printf("bench_merge: %ld files, 10 changed per side (3 on both sides), %d rounds, medians:\n", (long)nfiles, (int)rounds);
	printf("bench_merge:   vinz in-process (tree walk)     %8.2f ms   (first round %.2f ms)\n", mv, first_vinz);
	printf("bench_merge:   git merge-tree --write-tree     %8.2f ms   (process included)\n", mg);
	printf("bench_merge:   libgit2 git_merge_commits       %8.2f ms\n", ml);
	printf("bench_merge: ratio vinz/git = %.2fx (goal <= 1.0x); libgit2 full/git = %.1fx\n", mv / mg, ml / mg);

	free(tv);
	free(tg);
	vz_merger_free(m);
	vz_test_rm(tmp);
	free(dir);
	free(tmp);
	vz_workspace_global_cleanup();
	return 0;
}
