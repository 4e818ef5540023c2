/* Merge requests (`merge` / `merged` / `merge_ack`, Zuul's merger and cat jobs) through the real
 * executor (vz_executor on a thread) against a scheduler played by the test over the wire
 * protocol, on real git repositories made by the test: a queue across two projects (items
 * merged onto each other, trees checked against `git merge-tree`), a conflicting item left out
 * of the state behind it, in-repo config with Zuul's precedence, a cat request (projects only),
 * a frozen repo state honoured, answers re-sent until acked and repeated for a duplicate
 * request, bad refs and unreachable repositories, merges beside a full build capacity, and the
 * repo state of an answer making a build (through the same executor) test the same commits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "vz_admin.h"
#include "vz_config.h"
#include "vz_executor.h"
#include "vz_proto.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

#define EP "inproc://merge-jobs-sched"
#define PA "example.org/org/a"
#define PB "example.org/org/b"

#define PC "example.org/org/c"

static char *g_tmp, *g_ra, *g_rb, *g_rc, *g_work;
static vz_config *g_cfg;
static void *g_zctx, *g_router;
static vz_executor *g_x;
static pthread_t g_th;
static volatile sig_atomic_t g_stop;
static char g_rid[256];
static size_t g_rlen;
/* commits of the test repositories */
static char *g_a_base, *g_a_main, *g_b_main;

static void *exec_thread(void *arg)
{
	(void)arg;
	vz_err e = { 0 };
	if (vz_executor_run(g_x, &g_stop, &e))
		fprintf(stderr, "executor: %s\n", vz_err_msg(&e));
	return NULL;
}

static void to_executor(vz_msg_type t, json_t *body)
{
	vz_err e = { 0 };
	assert_int_equal(vz_proto_send(g_router, g_rid, g_rlen, t, NULL, body, &e), 0);
	json_decref(body);
}

/* The next message of type want (for merged: with merge id `id`, when id is set) within
 * timeout_ms; others are dropped. NULL when none came. */
static vz_msg *expect(vz_msg_type want, const char *id, int timeout_ms)
{
	uint64_t until = vz_mono_ms() + (uint64_t)timeout_ms;
	while (vz_mono_ms() < until) {
		zmq_pollitem_t pi = { g_router, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(&pi, 1, 50) <= 0)
			continue;
		vz_msg *m = NULL;
		vz_err e = { 0 };
		if (vz_proto_recv(g_router, 1, g_rid, &g_rlen, &m, NULL, ZMQ_DONTWAIT, &e))
			continue;
		if (m->type == want && (!id || strcmp(vz_msg_str(m, want == VZ_MSG_RESULT ? "build" : "merge"), id) == 0))
			return m;
		vz_msg_free(m);
	}
	return NULL;
}

/* Sends a merge request and returns its answer's body (acked unless keep). */
static json_t *merge_req(const char *id, json_t *items, json_t *projects, json_t *repo_state, int config, int ack)
{
	json_t *req = json_pack("{s:s}", "merge", id);
	if (items)
		json_object_set_new(req, "items", items);
	if (projects)
		json_object_set_new(req, "projects", projects);
	if (repo_state)
		json_object_set_new(req, "repo_state", repo_state);
	if (config)
		json_object_set_new(req, "config", json_true());
	to_executor(VZ_MSG_MERGE, req);
	vz_msg *m = expect(VZ_MSG_MERGED, id, 60000);
	if (!m)
		fail_msg("merge %s: no answer in 60 s", id);
	json_t *body = json_incref(m->body);
	vz_msg_free(m);
	if (ack)
		to_executor(VZ_MSG_MERGE_ACK, json_pack("{s:s}", "merge", id));
	return body;
}

static json_t *item(const char *id, const char *canon, const char *repo, const char *ref)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i}", "id", id, "project", canon + strlen("example.org/"),
			 "canonical_project", canon, "repo", repo, "branch", "main", "ref", ref, "mode", "merge", "date",
			 1700000000);
}

/* The queue of three items across two projects: A1 (a), B1 (b), A2 (a, behind A1). */
static json_t *queue3(void)
{
	return json_pack("[o,o,o]", item("1,1", PA, g_ra, "refs/changes/1"), item("2,1", PB, g_rb, "refs/changes/1"),
			 item("3,1", PA, g_ra, "refs/changes/2"));
}

static const char *istr(const json_t *body, size_t i, const char *k)
{
	const char *s = json_string_value(json_object_get(json_array_get(json_object_get(body, "items"), i), k));
	return s ? s : "";
}

static const char *head_of(const json_t *body, const char *what, const char *canon)
{
	const char *s = json_string_value(json_object_get(json_object_get(json_object_get(body, what), canon), "main"));
	return s ? s : "";
}

static int ok_of(const json_t *body)
{
	return json_is_true(json_object_get(body, "ok"));
}

/* The tree of commit in the executor's cache of repository repo. */
static char *cache_tree(const char *commit)
{
	return vz_test_out("for d in %s/cache/*/; do git --git-dir=$d rev-parse -q --verify %s^{tree} && exit 0; done; "
			   "exit 1", g_work, commit);
}

static int setup(void **state)
{
	(void)state;
	vz_err e = { 0 };
	assert_int_equal(vz_workspace_global_init(&e), 0);
	g_tmp = vz_test_tmpdir("vz-mergejobs");
	g_ra = vz_path_join(g_tmp, "a.git");
	g_rb = vz_path_join(g_tmp, "b.git");
	g_rc = vz_path_join(g_tmp, "c.git");
	g_work = vz_path_join(g_tmp, "state/executor");
	/* project a: zuul.yaml and .zuul.yaml (zuul.yaml wins); changes 1 (f1 line 1, zuul.yaml),
	 * 2 (g), 3 (f1 line 1 otherwise: conflicts with 1), 4 (new file h); main moves on after the
	 * changes branched off. project b: zuul.d/ and .zuul.yaml (zuul.d/ wins); change 1 (b.txt). */
	assert_int_equal(vz_test_sh(NULL,
		"set -e; cd %s; export GIT_AUTHOR_DATE=@1600000000 GIT_COMMITTER_DATE=@1600000000;"
		" git init -q -b main wa; cd wa; git config user.email t@t; git config user.name t;"
		" printf 'one\\ntwo\\nthree\\n' > f1.txt; echo g > g.txt; printf -- '- job: {name: a-root}\\n' > zuul.yaml;"
		" printf -- '- job: {name: a-hidden}\\n' > .zuul.yaml; git add -A; git commit -qm base;"
		" git checkout -qb c1; printf 'ONE\\ntwo\\nthree\\n' > f1.txt; printf -- '- job: {name: a-changed}\\n' > zuul.yaml;"
		" git commit -qam c1; git checkout -q main;"
		" git checkout -qb c2; echo G > g.txt; git commit -qam c2; git checkout -q main;"
		" git checkout -qb c3; printf 'uno\\ntwo\\nthree\\n' > f1.txt; git commit -qam c3; git checkout -q main;"
		" git checkout -qb c4; echo h > h.txt; git add h.txt; git commit -qm c4; git checkout -q main;"
		" echo o > other.txt; git add other.txt; git commit -qm main2;"
		" git clone -q --bare . ../a.git; for i in 1 2 3 4; do git push -q ../a.git c$i:refs/changes/$i; done; cd ..;"
		" git init -q -b main wb; cd wb; git config user.email t@t; git config user.name t;"
		" mkdir -p zuul.d/sub; printf -- '- job: {name: b-x}\\n' > zuul.d/x.yaml; printf -- '- job: {name: b-y}\\n' > zuul.d/sub/y.yaml;"
		" printf -- '- job: {name: b-hidden}\\n' > .zuul.yaml; echo b > b.txt; git add -A; git commit -qm base;"
		" git checkout -qb c1; echo B > b.txt; git commit -qam c1; git checkout -q main;"
		" git clone -q --bare . ../b.git; git push -q ../b.git c1:refs/changes/1; cd ..;"
		" git init -q -b main wc; cd wc; git config user.email t@t; git config user.name t; mkdir zuul.d;"
		" for f in 1 2; do head -c 300000 /dev/zero | tr '\\0' x > zuul.d/big$f.yaml; done;"
		" git add -A; git commit -qm big; git clone -q --bare . ../c.git",
		g_tmp), 0);
	g_a_base = vz_test_out("git -C %s/wa rev-parse main~1", g_tmp);
	g_a_main = vz_test_out("git -C %s/wa rev-parse main", g_tmp);
	g_b_main = vz_test_out("git -C %s/wb rev-parse main", g_tmp);
	vz_test_write(g_tmp, "vinz.yaml",
		      "state_dir: state\n"
		      "log_level: error\n"
		      "scheduler:\n  listen: " EP "\n  lease: 5\n  heartbeat: 0.2\n"
		      "executor:\n  name: mx\n  capacity: 1\n  merge_capacity: 2\n");
	char *cp = vz_path_join(g_tmp, "vinz.yaml");
	assert_int_equal(vz_config_load(&g_cfg, cp, NULL, &e), 0);
	free(cp);
	assert_int_equal(g_cfg->executor.merge_capacity, 2);
	g_zctx = zmq_ctx_new();
	g_router = zmq_socket(g_zctx, ZMQ_ROUTER);
	int linger = 0;
	zmq_setsockopt(g_router, ZMQ_LINGER, &linger, sizeof(linger));
	assert_int_equal(zmq_bind(g_router, EP), 0);
	assert_int_equal(vz_executor_new(&g_x, g_cfg, g_zctx, EP, &e), 0);
	assert_int_equal(pthread_create(&g_th, NULL, exec_thread, NULL), 0);
	vz_msg *m = expect(VZ_MSG_HELLO, NULL, 5000);
	assert_non_null(m);
	vz_msg_free(m);
	to_executor(VZ_MSG_WELCOME, json_pack("{s:s,s:i,s:i}", "scheduler_instance", "fake-1", "lease_ms", 10000,
					      "heartbeat_ms", 200));
	m = expect(VZ_MSG_READY, NULL, 5000);
	assert_non_null(m);
	vz_msg_free(m);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	g_stop = 2;
	pthread_join(g_th, NULL);
	vz_executor_free(g_x);
	zmq_close(g_router);
	zmq_ctx_term(g_zctx);
	vz_config_free(g_cfg);
	vz_test_rm(g_tmp);
	free(g_tmp);
	free(g_ra);
	free(g_rb);
	free(g_rc);
	free(g_work);
	free(g_a_base);
	free(g_a_main);
	free(g_b_main);
	vz_workspace_global_cleanup();
	return 0;
}

/* Three items across two projects: each merged onto what is ahead of it for its project and
 * branch; the trees are git's (merge-tree --write-tree, replayed in the test's clone). */
static void test_queue_two_projects(void **state)
{
	(void)state;
	json_t *r = merge_req("q3", queue3(), NULL, NULL, 0, 1);
	assert_true(ok_of(r));
	assert_int_equal(json_array_size(json_object_get(r, "items")), 3);
	for (size_t i = 0; i < 3; i++) {
		assert_true(json_is_true(json_object_get(json_array_get(json_object_get(r, "items"), i), "merged")));
		assert_int_equal(strlen(istr(r, i, "commit")), 40);
	}
	assert_string_equal(istr(r, 0, "id"), "1,1");
	assert_string_equal(istr(r, 0, "project"), PA);
	assert_string_equal(istr(r, 0, "base"), g_a_main);
	assert_string_equal(istr(r, 1, "base"), g_b_main);
	assert_string_equal(istr(r, 2, "base"), istr(r, 0, "commit")); /* A2 is tested on A1 */
	/* heads after the queue; the repo state it started from */
	assert_string_equal(head_of(r, "heads", PA), istr(r, 2, "commit"));
	assert_string_equal(head_of(r, "heads", PB), istr(r, 1, "commit"));
	assert_string_equal(head_of(r, "repo_state", PA), g_a_main);
	assert_string_equal(head_of(r, "repo_state", PB), g_b_main);
	/* files, Zuul's rule: /COMMIT_MSG first, then the change's paths */
	json_t *files = json_object_get(json_array_get(json_object_get(r, "items"), 0), "files");
	json_t *want = json_pack("[s,s,s]", "/COMMIT_MSG", "f1.txt", "zuul.yaml");
	assert_true(json_equal(files, want));
	json_decref(want);
	/* B1 fast-forwards: main is its parent */
	char *b1 = vz_test_out("git -C %s rev-parse refs/changes/1", g_rb);
	assert_string_equal(istr(r, 1, "commit"), b1);
	free(b1);
	/* A1 and A2 against git: merge-tree of main and c1, then of (that as a commit) and c2 */
	char *t1 = vz_test_out("git -C %s merge-tree --write-tree main refs/changes/1", g_ra);
	char *m1 = vz_test_out("git -C %s commit-tree %s -p main -p refs/changes/1 -m m1", g_ra, t1);
	char *t2 = vz_test_out("git -C %s merge-tree --write-tree %s refs/changes/2", g_ra, m1);
	char *c1 = cache_tree(istr(r, 0, "commit")), *c2 = cache_tree(istr(r, 2, "commit"));
	assert_string_equal(c1, t1);
	assert_string_equal(c2, t2);
	free(t1);
	free(m1);
	free(t2);
	free(c1);
	free(c2);
	/* the same request again (a new id): the same answer, commit for commit */
	json_t *r2 = merge_req("q3-again", queue3(), NULL, NULL, 0, 1);
	assert_true(json_equal(json_object_get(r, "items"), json_object_get(r2, "items")));
	assert_true(json_equal(json_object_get(r, "heads"), json_object_get(r2, "heads")));
	assert_true(json_equal(json_object_get(r, "repo_state"), json_object_get(r2, "repo_state")));
	json_decref(r2);
	json_decref(r);
}

/* A1, A-conflict (f1.txt line 1 otherwise), A4: the conflict is a result; A4 merges onto A1. */
static void test_conflict_left_out(void **state)
{
	(void)state;
	json_t *items = json_pack("[o,o,o]", item("1,1", PA, g_ra, "refs/changes/1"), item("9,1", PA, g_ra, "refs/changes/3"),
				  item("4,1", PA, g_ra, "refs/changes/4"));
	json_t *r = merge_req("qc", items, NULL, NULL, 0, 1);
	assert_true(ok_of(r));
	json_t *x = json_array_get(json_object_get(r, "items"), 1);
	assert_true(json_is_false(json_object_get(x, "merged")));
	assert_null(json_object_get(x, "commit"));
	json_t *want = json_pack("[s]", "f1.txt");
	assert_true(json_equal(json_object_get(x, "conflicts"), want));
	json_decref(want);
	assert_non_null(strstr(istr(r, 1, "message"), "9,1"));
	assert_non_null(strstr(istr(r, 1, "message"), "f1.txt"));
	assert_string_equal(istr(r, 2, "base"), istr(r, 0, "commit"));
	assert_string_equal(head_of(r, "heads", PA), istr(r, 2, "commit"));
	/* git agrees: c3 does not merge onto main + c1 */
	char *t1 = vz_test_out("git -C %s merge-tree --write-tree main refs/changes/1", g_ra);
	char *m1 = vz_test_out("git -C %s commit-tree %s -p main -p refs/changes/1 -m m1", g_ra, t1);
	assert_int_not_equal(vz_test_sh(NULL, "git -C %s merge-tree --write-tree %s refs/changes/3", g_ra, m1), 0);
	free(t1);
	free(m1);
	json_decref(r);
}

/* In-repo config at the heads after the queue, with Zuul's precedence. */
static void test_config_precedence(void **state)
{
	(void)state;
	json_t *r = merge_req("qcfg", queue3(), NULL, NULL, 1, 1);
	assert_true(ok_of(r));
	json_t *ca = json_object_get(json_object_get(json_object_get(r, "config"), PA), "main");
	json_t *cb = json_object_get(json_object_get(json_object_get(r, "config"), PB), "main");
	assert_int_equal(json_object_size(ca), 1); /* zuul.yaml wins over .zuul.yaml */
	assert_string_equal(json_string_value(json_object_get(ca, "zuul.yaml")), "- job: {name: a-changed}\n");
	assert_int_equal(json_object_size(cb), 2); /* zuul.d/ wins over .zuul.yaml, files in path order */
	void *it = json_object_iter(cb);
	assert_string_equal(json_object_iter_key(it), "zuul.d/sub/y.yaml");
	it = json_object_iter_next(cb, it);
	assert_string_equal(json_object_iter_key(it), "zuul.d/x.yaml");
	assert_string_equal(json_string_value(json_object_iter_value(it)), "- job: {name: b-x}\n");
	json_decref(r);
}

/* Zuul's cat job: projects only, no items: branch heads and config. */
static void test_cat_projects(void **state)
{
	(void)state;
	json_t *projects = json_pack("[{s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s}]", "project", "org/a", "canonical_project", PA,
				     "repo", g_ra, "branch", "main", "project", "org/b", "canonical_project", PB, "repo",
				     g_rb, "branch", "main");
	json_t *r = merge_req("cat", NULL, projects, NULL, 1, 1);
	assert_true(ok_of(r));
	assert_int_equal(json_array_size(json_object_get(r, "items")), 0);
	assert_string_equal(head_of(r, "heads", PA), g_a_main);
	assert_string_equal(head_of(r, "heads", PB), g_b_main);
	assert_string_equal(head_of(r, "repo_state", PA), g_a_main);
	json_t *ca = json_object_get(json_object_get(json_object_get(r, "config"), PA), "main");
	assert_string_equal(json_string_value(json_object_get(ca, "zuul.yaml")), "- job: {name: a-root}\n");
	assert_int_equal(json_object_size(json_object_get(json_object_get(json_object_get(r, "config"), PB), "main")), 2);
	json_decref(r);
}

/* 600 KB of in-repo config (two files of 300 KB in zuul.d/) is over what one answer carries:
 * ok false naming the project; without config the same request is fine. */
static void test_config_cap(void **state)
{
	(void)state;
	json_t *r = merge_req("bigcfg", NULL, json_pack("[{s:s,s:s,s:s,s:s}]", "project", "org/c", "canonical_project", PC,
							"repo", g_rc, "branch", "main"),
			      NULL, 1, 1);
	assert_false(ok_of(r));
	const char *msg = json_string_value(json_object_get(r, "message"));
	assert_non_null(strstr(msg, PC " branch main"));
	assert_non_null(strstr(msg, "600000 bytes, over the 524288"));
	json_decref(r);
	r = merge_req("bigcfg-nocfg", NULL, json_pack("[{s:s,s:s,s:s,s:s}]", "project", "org/c", "canonical_project", PC,
						      "repo", g_rc, "branch", "main"),
		      NULL, 0, 1);
	assert_true(ok_of(r));
	assert_null(json_object_get(r, "config"));
	json_decref(r);
}

/* A frozen repo state is where the merges start, not the branch head. */
static void test_repo_state_honoured(void **state)
{
	(void)state;
	json_t *rs = json_pack("{s:{s:s}}", PA, "main", g_a_base);
	json_t *r = merge_req("frozen", json_pack("[o]", item("3,1", PA, g_ra, "refs/changes/2")), NULL, rs, 1, 1);
	assert_true(ok_of(r));
	assert_string_equal(istr(r, 0, "base"), g_a_base);
	assert_string_equal(head_of(r, "repo_state", PA), g_a_base);
	/* c2 branched off base: a fast-forward onto the frozen head */
	char *c2 = vz_test_out("git -C %s rev-parse refs/changes/2", g_ra);
	assert_string_equal(istr(r, 0, "commit"), c2);
	/* main2's file is not there; the config is base's */
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(json_object_get(r, "config"), PA), "main"), "zuul.yaml")),
			    "- job: {name: a-root}\n");
	json_decref(r);
	/* without it: the branch head */
	r = merge_req("unfrozen", json_pack("[o]", item("3,1", PA, g_ra, "refs/changes/2")), NULL, NULL, 0, 1);
	assert_string_equal(istr(r, 0, "base"), g_a_main);
	assert_string_not_equal(istr(r, 0, "commit"), c2);
	free(c2);
	json_decref(r);
}

/* Not acked: the answer comes again (every 2 s), and at once for a duplicate request; acked: no more. */
static void test_resend_until_acked(void **state)
{
	(void)state;
	json_t *r = merge_req("resend", queue3(), NULL, NULL, 0, 0);
	uint64_t t0 = vz_mono_ms();
	vz_msg *m = expect(VZ_MSG_MERGED, "resend", 5000);
	assert_non_null(m);
	assert_true(vz_mono_ms() - t0 >= 1000); /* the 2 s re-send, not a burst */
	assert_true(json_equal(json_object_get(m->body, "items"), json_object_get(r, "items")));
	vz_msg_free(m);
	/* a duplicate request while the answer waits for its ack: the answer again, at once */
	to_executor(VZ_MSG_MERGE, json_pack("{s:s,s:o}", "merge", "resend", "items", queue3()));
	t0 = vz_mono_ms();
	m = expect(VZ_MSG_MERGED, "resend", 5000);
	assert_non_null(m);
	assert_true(vz_mono_ms() - t0 < 1900); /* sooner than the 2 s re-send */
	vz_msg_free(m);
	to_executor(VZ_MSG_MERGE_ACK, json_pack("{s:s}", "merge", "resend"));
	m = expect(VZ_MSG_MERGED, "resend", 3000);
	assert_null(m);
	json_decref(r);
}

/* A ref that does not exist and a repository that is not there: ok false naming the item. */
static void test_bad_ref_and_repo(void **state)
{
	(void)state;
	json_t *r = merge_req("badref", json_pack("[o,o]", item("1,1", PA, g_ra, "refs/changes/1"),
						  item("77,3", PA, g_ra, "refs/changes/77")),
			      NULL, NULL, 0, 1);
	assert_false(ok_of(r));
	const char *msg = json_string_value(json_object_get(r, "message"));
	assert_non_null(msg);
	assert_non_null(strstr(msg, "item 77,3"));
	assert_null(json_object_get(r, "items"));
	json_decref(r);
	char *nowhere = vz_path_join(g_tmp, "nowhere.git");
	r = merge_req("norepo", json_pack("[o]", item("5,1", "example.org/org/c", nowhere, "refs/changes/1")), NULL, NULL,
		      0, 1);
	assert_false(ok_of(r));
	assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "item 5,1"));
	free(nowhere);
	json_decref(r);
	/* nothing to merge at all */
	r = merge_req("empty", NULL, NULL, NULL, 0, 1);
	assert_false(ok_of(r));
	assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "nothing to merge"));
	json_decref(r);
	/* an id longer than 63 bytes: refused with error{malformed}, quoting the message's id */
	char longid[80];
	memset(longid, 'm', 64);
	longid[64] = '\0';
	json_t *lb = json_pack("{s:s,s:o}", "merge", longid, "items", queue3());
	vz_err se = { 0 };
	assert_int_equal(vz_proto_send(g_router, g_rid, g_rlen, VZ_MSG_MERGE, "long-id-msg", lb, &se), 0);
	json_decref(lb);
	vz_msg *em = expect(VZ_MSG_ERROR, NULL, 5000);
	assert_non_null(em);
	assert_string_equal(vz_msg_str(em, "code"), "malformed");
	assert_string_equal(vz_msg_str(em, "ref"), "long-id-msg");
	assert_non_null(strstr(vz_msg_str(em, "message"), "1 to 63 bytes"));
	vz_msg_free(em);
	/* a bad merge mode */
	json_t *it = item("1,1", PA, g_ra, "refs/changes/1");
	json_object_set_new(it, "mode", json_string("octopus"));
	r = merge_req("badmode", json_pack("[o]", it), NULL, NULL, 0, 1);
	assert_false(ok_of(r));
	assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "octopus"));
	json_decref(r);
}

/* The repo state of an answer makes a build of the same items test exactly the same commits;
 * and merges run while the only build slot is taken (they do not use build capacity). */
static void test_build_reproduces_state(void **state)
{
	(void)state;
	json_t *r = merge_req("forbuild", queue3(), NULL, NULL, 0, 1);
	assert_true(ok_of(r));
	char *mark = vz_path_join(g_tmp, "build-started");
	char cmd[1200];
	snprintf(cmd, sizeof(cmd),
		 "touch %s; for i in $(seq 1 300); do test -f %s.go && break; sleep 0.1; done", mark, mark);
	json_t *req = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:[s],s:i,s:o,s:O}", "build", "b-merge-1", "attempt", 1,
				"job", "j", "project", "org/a", "canonical_project", PA, "branch", "main", "node", "name",
				"n1", "connection", "local", "commands", cmd, "timeout", 60, "items", queue3(), "repo_state",
				json_object_get(r, "repo_state"));
	to_executor(VZ_MSG_BUILD, req);
	/* while the build holds the only slot, a merge still runs */
	for (int i = 0; i < 200 && access(mark, F_OK) != 0; i++)
		usleep(50000);
	assert_int_equal(access(mark, F_OK), 0);
	json_t *cat = merge_req("during-build", NULL,
				json_pack("[{s:s,s:s,s:s,s:s}]", "project", "org/b", "canonical_project", PB, "repo", g_rb,
					  "branch", "main"),
				NULL, 0, 1);
	assert_true(ok_of(cat));
	json_decref(cat);
	vz_test_write(g_tmp, "build-started.go", "");
	/* the build's result; then its whole log (the merge requests above dropped its first
	 * chunks), asked for again with log_resend, which the result follows */
	vz_msg *rm = expect(VZ_MSG_RESULT, "b-merge-1", 60000);
	assert_non_null(rm);
	vz_msg_free(rm);
	to_executor(VZ_MSG_LOG_RESEND, json_pack("{s:s,s:i}", "build", "b-merge-1", "offset", 0));
	vz_buf log = VZ_BUF_INIT(4u << 20);
	json_t *result = NULL;
	uint64_t until = vz_mono_ms() + 10000;
	while (!result && vz_mono_ms() < until) {
		zmq_pollitem_t pi = { g_router, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(&pi, 1, 50) <= 0)
			continue;
		vz_msg *m = NULL;
		vz_err e = { 0 };
		if (vz_proto_recv(g_router, 1, g_rid, &g_rlen, &m, NULL, ZMQ_DONTWAIT, &e))
			continue;
		if (m->type == VZ_MSG_LOG && strcmp(vz_msg_str(m, "build"), "b-merge-1") == 0)
			vz_buf_add(&log, vz_msg_str(m, "data"), strlen(vz_msg_str(m, "data")));
		else if (m->type == VZ_MSG_RESULT && strcmp(vz_msg_str(m, "build"), "b-merge-1") == 0)
			result = json_incref(m->body);
		vz_msg_free(m);
	}
	assert_non_null(result);
	to_executor(VZ_MSG_ACK, json_pack("{s:s,s:i}", "build", "b-merge-1", "attempt", 1));
	if (strcmp(json_string_value(json_object_get(result, "result")), "SUCCESS") != 0)
		fail_msg("build: %s\n%s", json_dumps(result, 0), vz_buf_cstr(&log));
	/* the build's own commit is the merger's for its item; every workspace is at the merger's heads */
	assert_string_equal(json_string_value(json_object_get(result, "commit")), istr(r, 2, "commit"));
	char line[300];
	snprintf(line, sizeof(line), "workspace src/%s: main at %s", PA, head_of(r, "heads", PA));
	if (!strstr(vz_buf_cstr(&log), line))
		fail_msg("no '%s' in the build log:\n%s", line, vz_buf_cstr(&log));
	snprintf(line, sizeof(line), "workspace src/%s: main at %s", PB, head_of(r, "heads", PB));
	if (!strstr(vz_buf_cstr(&log), line))
		fail_msg("no '%s' in the build log:\n%s", line, vz_buf_cstr(&log));
	vz_buf_free(&log);
	json_decref(result);
	free(mark);
	json_decref(r);
}

/* Six requests at once: at most executor.merge_capacity (2) run at a time, as the control
 * socket's status shows while they run; the rest wait their turn and all are answered. */
static void test_merge_capacity_bound(void **state)
{
	(void)state;
	char *sock = vz_path_join(g_cfg->executor.work_dir, "control.sock");
	char ep[1200];
	snprintf(ep, sizeof(ep), "ipc://%s", sock);
	free(sock);
	/* the build of the test before has ended (its thread may still be tidying up) */
	for (int i = 0, running = 1; running && i < 200; i++) {
		json_t *d = NULL;
		vz_err e = { 0 };
		assert_int_equal(vz_admin_call(g_zctx, ep, "status", NULL, &d, 2000, &e), 0);
		running = (int)json_integer_value(json_object_get(d, "running"));
		json_decref(d);
		if (running)
			usleep(50000);
	}
	for (int i = 0; i < 6; i++) {
		char id[32];
		snprintf(id, sizeof(id), "cap-%d", i);
		to_executor(VZ_MSG_MERGE, json_pack("{s:s,s:o,s:b}", "merge", id, "items", queue3(), "config", 1));
	}
	int answered = 0, seen[6] = { 0 };
	long long max_running = 0, max_waiting = 0, polls = 0;
	uint64_t until = vz_mono_ms() + 60000;
	while (answered < 6 && vz_mono_ms() < until) {
		json_t *d = NULL;
		vz_err e = { 0 };
		if (vz_admin_call(g_zctx, ep, "status", NULL, &d, 2000, &e) == 0) {
			long long r = json_integer_value(json_object_get(d, "merges"));
			long long w = json_integer_value(json_object_get(d, "merges_waiting"));
			max_running = r > max_running ? r : max_running;
			max_waiting = w > max_waiting ? w : max_waiting;
			/* merges are not builds: they hold no build slot (free also follows the load sensors) */
			assert_int_equal(json_integer_value(json_object_get(d, "running")), 0);
			polls++;
			json_decref(d);
		}
		for (vz_msg *m; (m = expect(VZ_MSG_MERGED, NULL, 1)) != NULL;) {
			int i = atoi(vz_msg_str(m, "merge") + 4);
			if (strncmp(vz_msg_str(m, "merge"), "cap-", 4) == 0 && i >= 0 && i < 6 && !seen[i]) {
				assert_true(json_is_true(json_object_get(m->body, "ok")));
				seen[i] = 1;
				answered++;
				to_executor(VZ_MSG_MERGE_ACK, json_pack("{s:s}", "merge", vz_msg_str(m, "merge")));
			}
			vz_msg_free(m);
		}
	}
	assert_int_equal(answered, 6);
	assert_true(polls > 0);
	assert_true(max_running <= 2);
	print_message("merge capacity: %lld status polls, at most %lld running and %lld waiting seen\n", polls, max_running,
		      max_waiting);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_two_projects),
		cmocka_unit_test(test_conflict_left_out),
		cmocka_unit_test(test_config_precedence),
		cmocka_unit_test(test_cat_projects),
		cmocka_unit_test(test_config_cap),
		cmocka_unit_test(test_repo_state_honoured),
		cmocka_unit_test(test_resend_until_acked),
		cmocka_unit_test(test_bad_ref_and_repo),
		cmocka_unit_test(test_build_reproduces_state),
		cmocka_unit_test(test_merge_capacity_bound),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
