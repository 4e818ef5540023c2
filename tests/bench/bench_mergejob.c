/* bench_mergejob: a merge request for a queue of 20 items (one project of VZ_BENCH_FILES files,
 * default 10000, made with git fast-import; each item changes 2 files of its own and master moved
 * on after they branched, so every item is a real merge) measured three ways in the same run:
 *   - over the wire: a fake scheduler sends `merge` to the real executor (vz_executor on a
 *     thread, inproc ZeroMQ) and waits for `merged` (then acks): protocol, thread hand-off, the
 *     cache look-ups of the 20 changes and the merges; once with each item's commit and the repo
 *     state given (nothing to fetch), once with refs only (each ref and the branch fetched from
 *     the local repository, as a scheduler's first request for new changes);
 *   - vz_spec_build called directly in-process on the same cache (the peer: what the request
 *     adds is the difference);
 *   - git as a merger would run it: per item `git merge-tree --write-tree` and `git commit-tree`
 *     (processes included).
 * The final trees of all three must agree (the bench fails otherwise); it never fails on timing.
 * VZ_BENCH_ROUNDS sets the repetitions (default 10). */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "vz_benchutil.h"
#include "vz_buf.h"
#include "vz_config.h"
#include "vz_executor.h"
#include "vz_proto.h"
#include "vz_spec.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

#define now_ms vz_bench_now_ms
#define median vz_bench_median
#define NITEMS 20
#define EP "inproc://bench-mergejob"
#define DATE 1700000000

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "bench_mergejob: " __VA_ARGS__);    \
			fprintf(stderr, " (%s:%d)\n", __FILE__, __LINE__);   \
			exit(1);                                            \
		}                                                           \
	} while (0)

static void *g_router;
static char g_rid[256];
static size_t g_rlen;
static vz_executor *g_x;
static volatile sig_atomic_t g_stop;

static void changes(vz_buf *s, long nfiles, void *ctx)
{
	(void)ctx;
	for (int n = 1; n <= NITEMS; n++) {
		vz_buf_printf(s, "commit refs/changes/%d\ncommitter b <b@vinz.invalid> 1600000000 +0000\ndata 3\nc%d\n"
				 "from refs/heads/master\n", n, n % 10);
		for (int k = 0; k < 2; k++) {
			long i = ((nfiles / (NITEMS * 2 + 1)) * (n * 2 + k)) % nfiles;
			vz_buf_puts(s, "M 100644 inline ");
			vz_bench_file_path(s, i);
			vz_buf_putc(s, '\n');
			vz_bench_file_data(s, i, 3, "change");
		}
	}
	/* master moves on: nothing fast-forwards */
	vz_buf_puts(s, "commit refs/heads/master\ncommitter b <b@vinz.invalid> 1600000001 +0000\ndata 3\nm2\n"
		       "M 100644 inline moved.txt\ndata 6\nmoved\n");
}

static void *exec_thread(void *arg)
{
	(void)arg;
	vz_err e = { 0 };
	if (vz_executor_run(g_x, &g_stop, &e))
		fprintf(stderr, "bench_mergejob: executor: %s\n", vz_err_msg(&e));
	return NULL;
}

static vz_msg *expect(vz_msg_type want, const char *id, int timeout_ms)
{
	double until = now_ms() + timeout_ms;
	while (now_ms() < until) {
		zmq_pollitem_t pi = { g_router, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(&pi, 1, 50) <= 0)
			continue;
		vz_msg *m = NULL;
		vz_err e = { 0 };
		if (vz_proto_recv(g_router, 1, g_rid, &g_rlen, &m, NULL, ZMQ_DONTWAIT, &e))
			continue;
		if (m->type == want && (!id || strcmp(vz_msg_str(m, "merge"), id) == 0))
			return m;
		vz_msg_free(m);
	}
	return NULL;
}

static void send_to(vz_msg_type t, json_t *body)
{
	vz_err e = { 0 };
	CHECK(vz_proto_send(g_router, g_rid, g_rlen, t, NULL, body, &e) == 0, "send: %s", vz_err_msg(&e));
	json_decref(body);
}

static char g_ids[NITEMS][41], g_master[41];

/* One request over the wire; the answer's head of master. pinned: the items carry their commit
 * and the request the repo state (what a scheduler sends once it knows them: no fetch at all);
 * else refs only (each item's ref and the branch are fetched from the repository). */
static double wire_round(const char *repo, int round, int pinned, char head[41])
{
	char id[64];
	snprintf(id, sizeof(id), "bench-%d", round);
	json_t *items = json_array();
	for (int n = 1; n <= NITEMS; n++) {
		char cid[16], ref[32];
		snprintf(cid, sizeof(cid), "%d,1", n);
		snprintf(ref, sizeof(ref), "refs/changes/%d", n);
		json_t *it = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i}", "id", cid, "project", "bench/p", "repo", repo, "branch",
				       "master", "ref", ref, "date", DATE);
		if (pinned)
			json_object_set_new(it, "commit", json_string(g_ids[n - 1]));
		json_array_append_new(items, it);
	}
	json_t *req = json_pack("{s:s,s:o}", "merge", id, "items", items);
	if (pinned)
		json_object_set_new(req, "repo_state", json_pack("{s:{s:s}}", "bench/p", "master", g_master));
	double t0 = now_ms();
	send_to(VZ_MSG_MERGE, req);
	vz_msg *m = expect(VZ_MSG_MERGED, id, 120000);
	double t = now_ms() - t0;
	CHECK(m, "no answer to %s", id);
	CHECK(json_is_true(json_object_get(m->body, "ok")), "merge failed: %s", vz_msg_str(m, "message"));
	const char *h = json_string_value(json_object_get(json_object_get(json_object_get(m->body, "heads"), "bench/p"), "master"));
	CHECK(h && strlen(h) == 40, "no head in the answer");
	vz_strlcpy(head, h, 41);
	vz_msg_free(m);
	send_to(VZ_MSG_MERGE_ACK, json_pack("{s:s}", "merge", id));
	return t;
}

static double direct_round(const char *gitdir, char ids[NITEMS][41], const char *master, char head[41])
{
	vz_spec_item items[NITEMS];
	char names[NITEMS][16];
	for (int n = 0; n < NITEMS; n++) {
		snprintf(names[n], sizeof(names[n]), "%d,1", n + 1);
		items[n] = (vz_spec_item){ names[n], "bench/p", "master", gitdir, ids[n], VZ_MERGE_MERGE, DATE };
	}
	vz_spec_head frozen = { "bench/p", "refs/heads/master", master };
	vz_spec *s = NULL;
	vz_err e = { 0 };
	double t0 = now_ms();
	CHECK(vz_spec_build(&s, items, NITEMS, &frozen, 1, &e) == 0, "vz_spec_build: %s", vz_err_msg(&e));
	json_t *j = vz_spec_to_json(s);
	double t = now_ms() - t0;
	for (int n = 0; n < NITEMS; n++)
		CHECK(vz_spec_item_result(s, (size_t)n)->merged, "item %d did not merge", n + 1);
	vz_strlcpy(head, vz_spec_head_after(s, NITEMS - 1, "bench/p", "master"), 41);
	json_decref(j);
	vz_spec_free(s);
	return t;
}

/* The 20 merges with git processes; the final tree into tree. */
static double git_round(const char *repo, char tree[41])
{
	char cur[41];
	vz_buf o = VZ_BUF_INIT(1 << 20);
	double t0 = now_ms();
	char *rp[] = { "git", "--git-dir", (char *)repo, "rev-parse", "master", NULL };
	CHECK(vz_bench_run(rp, NULL, NULL, &o) == 0, "git rev-parse");
	vz_test_first_id(&o, cur);
	for (int n = 1; n <= NITEMS; n++) {
		char ref[32], t[41];
		snprintf(ref, sizeof(ref), "refs/changes/%d", n);
		char *mt[] = { "git", "--git-dir", (char *)repo, "merge-tree", "--write-tree", cur, ref, NULL };
		CHECK(vz_bench_run(mt, NULL, NULL, &o) == 0, "git merge-tree of item %d", n);
		vz_test_first_id(&o, t);
		char *ct[] = { "git", "--git-dir", (char *)repo, "commit-tree", t, "-p", cur, "-p", ref, "-m", "m", NULL };
		char *env[] = { "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@b", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@b",
				"GIT_AUTHOR_DATE=@1700000000", "GIT_COMMITTER_DATE=@1700000000", NULL };
		CHECK(vz_bench_run(ct, env, NULL, &o) == 0, "git commit-tree of item %d", n);
		vz_test_first_id(&o, cur);
		if (n == NITEMS)
			vz_strlcpy(tree, t, 41);
	}
	double t = now_ms() - t0;
	vz_buf_free(&o);
	return t;
}

static char *tree_of(const char *gitdir, const char *commit)
{
	return vz_test_out("git --git-dir=%s rev-parse %s^{tree}", gitdir, commit);
}

int main(void)
{
	long nfiles = 10000, rounds = 10;
	const char *env = getenv("VZ_BENCH_FILES");
	if (env && atol(env) > 100)
		nfiles = atol(env);
	env = getenv("VZ_BENCH_ROUNDS");
	if (env && atol(env) > 0 && atol(env) <= 1000)
		rounds = atol(env);
	vz_err e = { 0 };
	CHECK(vz_workspace_global_init(&e) == 0, "libgit2: %s", vz_err_msg(&e));
	char *tmp = vz_test_tmpdir("vz-bench-mergejob");
	char *repo = vz_path_join(tmp, "p.git");
	double t0 = now_ms();
	vz_bench_make_repo(repo, nfiles, changes, NULL);
	printf("bench_mergejob: generated %ld files and %d changes in %.0f ms\n", nfiles, NITEMS, now_ms() - t0);
	vz_test_write(tmp, "vinz.yaml", "state_dir: state\nlog_level: error\nscheduler:\n  listen: " EP
					"\n  heartbeat: 0.5\nexecutor:\n  name: bx\n  capacity: 1\n");
	char *cp = vz_path_join(tmp, "vinz.yaml");
	vz_config *cfg = NULL;
	CHECK(vz_config_load(&cfg, cp, NULL, &e) == 0, "config: %s", vz_err_msg(&e));
	void *zctx = zmq_ctx_new();
	g_router = zmq_socket(zctx, ZMQ_ROUTER);
	int linger = 0;
	zmq_setsockopt(g_router, ZMQ_LINGER, &linger, sizeof(linger));
	CHECK(zmq_bind(g_router, EP) == 0, "bind");
	CHECK(vz_executor_new(&g_x, cfg, zctx, EP, &e) == 0, "executor: %s", vz_err_msg(&e));
	pthread_t th;
	CHECK(pthread_create(&th, NULL, exec_thread, NULL) == 0, "thread");
	vz_msg *m = expect(VZ_MSG_HELLO, NULL, 5000);
	CHECK(m, "no hello");
	vz_msg_free(m);
	send_to(VZ_MSG_WELCOME, json_pack("{s:s,s:i,s:i}", "scheduler_instance", "bench", "lease_ms", 60000, "heartbeat_ms", 500));

	/* first request: fills the cache (not measured) */
	char head_w[41], head_f[41], head_d[41], tree_g[41];
	for (int n = 0; n < NITEMS; n++) {
		char *id = vz_test_out("git --git-dir=%s rev-parse refs/changes/%d", repo, n + 1);
		vz_strlcpy(g_ids[n], id, sizeof(g_ids[n]));
		free(id);
	}
	double first = wire_round(repo, -1, 0, head_w);
	char *cache_root = vz_path_join(cfg->executor.work_dir, "cache"), *gitdir = NULL;
	vz_checkout_req rq = { .cache_root = cache_root, .repo = repo, .ref = "refs/heads/master" };
	CHECK(vz_workspace_fetch(&rq, &gitdir, g_master, &e) == 0, "cache: %s", vz_err_msg(&e));
	double *tw = calloc((size_t)rounds, sizeof(double)), *td = calloc((size_t)rounds, sizeof(double)),
	       *tg = calloc((size_t)rounds, sizeof(double)), *tf = calloc((size_t)rounds, sizeof(double));
	CHECK(tw && td && tg && tf, "out of memory");
	for (long r = 0; r < rounds; r++) {
		tw[r] = wire_round(repo, (int)r, 1, head_w);
		tf[r] = wire_round(repo, (int)(r + rounds), 0, head_f);
		td[r] = direct_round(gitdir, g_ids, g_master, head_d);
		tg[r] = git_round(repo, tree_g);
	}
	CHECK(strcmp(head_w, head_d) == 0, "wire head %s != in-process head %s", head_w, head_d);
	CHECK(strcmp(head_f, head_d) == 0, "wire (fetching) head %s != in-process head %s", head_f, head_d);
	char *tw_tree = tree_of(gitdir, head_w);
	CHECK(strcmp(tw_tree, tree_g) == 0, "vinz tree %s != git's %s", tw_tree, tree_g);
	free(tw_tree);
	double mw = median(tw, (int)rounds), md = median(td, (int)rounds), mg = median(tg, (int)rounds),
	       mf = median(tf, (int)rounds);
	printf("bench_mergejob: %d items, %ld files, %ld rounds, medians (final trees agree with git):\n", NITEMS, nfiles,
	       rounds);
	printf("bench_mergejob:   merge request, commits given    %8.2f ms   (no fetch)\n", mw);
	printf("bench_mergejob:   merge request, refs only        %8.2f ms   (21 fetches from a local repository; first, "
	       "cache empty: %.0f ms)\n", mf, first);
	printf("bench_mergejob:   vz_spec_build in-process        %8.2f ms\n", md);
	printf("bench_mergejob:   git merge-tree + commit-tree    %8.2f ms   (40 processes)\n", mg);
	printf("bench_mergejob: ratio wire/in-process = %.2fx (request cost %.2f ms); wire/git = %.2fx; refs-only/git = %.2fx\n",
	       mw / md, mw - md, mw / mg, mf / mg);

	g_stop = 2;
	pthread_join(th, NULL);
	vz_executor_free(g_x);
	zmq_close(g_router);
	zmq_ctx_term(zctx);
	vz_config_free(cfg);
	free(tw);
	free(td);
	free(tg);
	free(tf);
	free(gitdir);
	free(cache_root);
	vz_test_rm(tmp);
	free(tmp);
	free(repo);
	vz_workspace_global_cleanup();
	return 0;
}
