/* Zuul's build lifecycle through the real executor (vz_executor on a thread, a local node, a real
 * git repository with the job's playbooks) against a scheduler played by the test over the wire
 * protocol: zuul_return data and its special keys in the result, parent data as variables,
 * zuul.retry false, zuul.pause with paused/resume, failure-output with early_failure, DISK_FULL,
 * post-timeout, cleanup-run after a cancel, and the executor's pause/resume control socket. */
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
#include "vz_test_sshd.h"
#include "vz_test_proto.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

#define EP "inproc://lifecycle-sched"

static char *g_tmp, *g_repo, *g_marks;
static vz_config *g_cfg;
static void *g_zctx, *g_router;
static vz_executor *g_x;
static pthread_t g_th;
static volatile sig_atomic_t g_stop;
static int g_rc;
static char g_rid[256];
static size_t g_rlen;

static void *exec_thread(void *arg)
{
	(void)arg;
	vz_err e = { 0 };
	g_rc = vz_executor_run(g_x, &g_stop, &e);
	if (g_rc)
		fprintf(stderr, "executor: %s\n", vz_err_msg(&e));
	return NULL;
}

/* the next message of type want from the executor (others dropped), or NULL */
static vz_msg *expect(vz_msg_type want, int timeout_ms)
{
	return vz_test_router_expect(g_router, want, g_rid, &g_rlen, timeout_ms);
}

static int expect_free(long long want, vz_msg_type type, int timeout_ms)
{
	uint64_t until = vz_mono_ms() + (uint64_t)timeout_ms;
	while (vz_mono_ms() < until) {
		vz_msg *m = expect(type, (int)(until - vz_mono_ms()));
		if (!m)
			return 0;
		long long f = vz_msg_int(m, "free", -1);
		vz_msg_free(m);
		if (f == want)
			return 1;
	}
	return 0;
}

static void to_executor(vz_msg_type t, json_t *body)
{
	vz_err e = { 0 };
	assert_int_equal(vz_proto_send(g_router, g_rid, g_rlen, t, NULL, body, &e), 0);
	json_decref(body);
}

#define PB(name, text) " printf -- '" text "' > pb/" name ";"

static int setup(void **state)
{
	(void)state;
	vz_err e = { 0 };
	assert_int_equal(vz_workspace_global_init(&e), 0);
	g_tmp = vz_test_tmpdir("vz-life");
	g_repo = vz_path_join(g_tmp, "p.git");
	g_marks = vz_path_join(g_tmp, "marks");
	assert_int_equal(vz_test_sh(NULL,
		"set -e; cd %s; mkdir marks; git init -q -b main w; cd w; git config user.email t@t; git config user.name t;"
		" mkdir pb;"
		PB("ret.yaml", "- hosts: all\\n  tasks:\\n"
		   "    - zuul_return:\\n        data:\\n          foo: bar\\n          foo2: {x: 1}\\n"
		   "          zuul:\\n            log_url: \"http://logs.example.org/b/\"\\n"
		   "            artifacts:\\n              - {name: docs, url: \"docs/\", metadata: {v: 1}}\\n"
		   "            warnings: [w1]\\n            child_jobs: [c1]\\n"
		   "    - zuul_return:\\n        data:\\n          zuul:\\n"
		   "            artifacts:\\n              - {name: tarball, url: \"https://ex.org/t.tgz\"}\\n"
		   "            warnings: [w2]\\n")
		PB("postret.yaml", "- hosts: all\\n  tasks:\\n    - zuul_return:\\n        data: {from_post: 1, foo2: {y: 2}}\\n")
		PB("badret.yaml", "- hosts: all\\n  tasks:\\n    - zuul_return:\\n        data: {zuul: {artifacts: [{name: x}]}}\\n")
		PB("vars.yaml", "- hosts: all\\n  tasks:\\n    - debug: {msg: \"pvar={{ pvar }} shadow={{ shadow }} job={{ zuul.job }}\"}\\n")
		PB("noretry.yaml", "- hosts: all\\n  tasks:\\n    - zuul_return: {data: {zuul: {retry: false}}}\\n"
		   "    - fail: {msg: pre-broke}\\n")
		PB("badpre.yaml", "- hosts: all\\n  tasks:\\n    - fail: {msg: pre-broke}\\n")
		PB("pause.yaml", "- hosts: all\\n  tasks:\\n    - zuul_return: {data: {registry: r1, zuul: {pause: true}}}\\n")
		PB("post-mark.yaml", "- hosts: all\\n  tasks:\\n    - shell: echo post > {{ marker_dir }}/{{ zuul.build }}.post\\n")
		PB("cleanup-mark.yaml", "- hosts: all\\n  tasks:\\n    - shell: echo \"cleanup {{ zuul_success }} {{ zuul_will_retry }}\" > {{ marker_dir }}/{{ zuul.build }}.cleanup\\n")
		PB("fo.yaml", "- hosts: all\\n  tasks:\\n    - shell: \"echo starting; date +%%%%s%%%%N > {{ marker_dir }}/{{ zuul.build }}.t; echo ERROR: boom 42; sleep 1.5; echo finished-after-match\"\\n")
		PB("ok.yaml", "- hosts: all\\n  tasks:\\n    - shell: echo fine\\n")
		PB("sleep.yaml", "- hosts: all\\n  tasks:\\n    - shell: sleep 30.4417\\n")
		PB("big.yaml", "- hosts: all\\n  tasks:\\n    - shell: head -c 8000000 /dev/zero > {{ zuul.executor.work_root }}/big && date +%%%%s%%%%N > {{ marker_dir }}/{{ zuul.build }}.t && sleep 30.5513\\n")
		PB("slowpost.yaml", "- hosts: all\\n  tasks:\\n    - shell: sleep 30.6637\\n")
		" git add -A; git commit -qm base; cd ..; git clone -q --bare w %s", g_tmp, g_repo), 0);
	vz_test_write(g_tmp, "vinz.yaml",
		      "state_dir: state\n"
		      "log_level: error\n"
		      "scheduler:\n  listen: " EP "\n  lease: 5\n  heartbeat: 0.2\n"
		      "executor:\n  name: lx\n  capacity: 4\n  disk_limit_per_job: 3\n");
	char *cp = vz_path_join(g_tmp, "vinz.yaml");
	assert_int_equal(vz_config_load(&g_cfg, cp, NULL, &e), 0);
	free(cp);
	g_zctx = zmq_ctx_new();
	g_router = zmq_socket(g_zctx, ZMQ_ROUTER);
	int linger = 0;
	zmq_setsockopt(g_router, ZMQ_LINGER, &linger, sizeof(linger));
	assert_int_equal(zmq_bind(g_router, EP), 0);
	assert_int_equal(vz_executor_new(&g_x, g_cfg, g_zctx, EP, &e), 0);
	assert_int_equal(pthread_create(&g_th, NULL, exec_thread, NULL), 0);
	vz_msg *m = expect(VZ_MSG_HELLO, 5000);
	assert_non_null(m);
	vz_msg_free(m);
	to_executor(VZ_MSG_WELCOME, json_pack("{s:s,s:i,s:i,s:[s]}", "scheduler_instance", "fake-1", "lease_ms", 10000,
					      "heartbeat_ms", 200, "features", "pause"));
	m = expect(VZ_MSG_READY, 5000);
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
	free(g_repo);
	free(g_marks);
	vz_workspace_global_cleanup();
	return 0;
}

/* A build request with the given playbooks ({pre_run: [paths], run: ..., ...} as "a,b" strings). */
static json_t *request(const char *uuid, const char *pre, const char *run, const char *post, const char *cleanup)
{
	json_t *pbs = json_object();
	const char *lists[4] = { pre, run, post, cleanup };
	const char *names[4] = { "pre_run", "run", "post_run", "cleanup_run" };
	for (int i = 0; i < 4; i++) {
		if (!lists[i])
			continue;
		json_t *a = json_array();
		char buf[256];
		vz_strlcpy(buf, lists[i], sizeof(buf));
		for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
			json_array_append_new(a, json_pack("{s:s,s:s,s:b}", "project", "example.org/p", "path", t, "trusted", 1));
		json_object_set_new(pbs, names[i], a);
	}
	return json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:[],s:i,s:o,s:{s:s}}", "build", uuid, "attempt", 1,
			 "job", "j", "project", "p", "canonical_project", "example.org/p", "repo", g_repo, "ref",
			 "refs/heads/main", "branch", "main", "node", "name", "n1", "connection", "local", "commands", "timeout",
			 60, "playbooks", pbs, "vars", "marker_dir", g_marks);
}

/* wall-clock ms the playbook wrote into marks/<uuid>.t (date +%s%N) */
static long long node_time_ms(const char *uuid)
{
	char *t = vz_test_out("cat %s/%s.t", g_marks, uuid);
	long long ms = atoll(t) / 1000000;
	free(t);
	return ms;
}

typedef struct outcome {
	json_t *result;       /* the result body */
	json_t *early;        /* the early_failure body, or NULL */
	uint64_t early_ms;    /* when it came (monotonic) */
	int64_t early_wall;   /* the same, wall clock */
	int64_t result_wall;
	uint64_t result_ms;
	vz_buf log;
} outcome;

/* Sends req and collects what the executor says about it until its result (acked). */
static void run(json_t *req, outcome *o, int timeout_ms)
{
	const char *uuid = json_string_value(json_object_get(req, "build"));
	char b[64];
	vz_strlcpy(b, uuid, sizeof(b));
	memset(o, 0, sizeof(*o));
	vz_buf_init(&o->log, 4u << 20);
	to_executor(VZ_MSG_BUILD, req);
	uint64_t until = vz_mono_ms() + (uint64_t)timeout_ms;
	while (!o->result && vz_mono_ms() < until) {
		zmq_pollitem_t pi = { g_router, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(&pi, 1, 50) <= 0)
			continue;
		vz_msg *m = NULL;
		vz_err e = { 0 };
		if (vz_proto_recv(g_router, 1, g_rid, &g_rlen, &m, NULL, ZMQ_DONTWAIT, &e))
			continue;
		if (strcmp(vz_msg_str(m, "build"), b) == 0) {
			if (m->type == VZ_MSG_LOG)
				vz_buf_add(&o->log, vz_msg_str(m, "data"), strlen(vz_msg_str(m, "data")));
			else if (m->type == VZ_MSG_EARLY_FAILURE && !o->early) {
				o->early = json_incref(m->body);
				o->early_ms = vz_mono_ms();
				o->early_wall = vz_wall_ms();
			} else if (m->type == VZ_MSG_RESULT) {
				o->result = json_incref(m->body);
				o->result_ms = vz_mono_ms();
				o->result_wall = vz_wall_ms();
			}
		}
		vz_msg_free(m);
	}
	if (!o->result)
		fail_msg("build %s: no result in %d ms; log:\n%s", b, timeout_ms, vz_buf_cstr(&o->log));
	to_executor(VZ_MSG_ACK, json_pack("{s:s,s:I}", "build", b, "attempt", json_integer_value(json_object_get(o->result, "attempt"))));
}

static void outcome_free(outcome *o)
{
	json_decref(o->result);
	json_decref(o->early);
	vz_buf_free(&o->log);
}

static const char *res(const outcome *o)
{
	return json_string_value(json_object_get(o->result, "result"));
}

static void want_result(const outcome *o, const char *want)
{
	if (strcmp(res(o), want) != 0) {
		char *d = json_dumps(o->result, 0);
		fail_msg("result %s, want %s: %s\nlog:\n%s", res(o), want, d, vz_buf_cstr(&o->log));
	}
}

static int marker(const char *uuid, const char *what)
{
	char p[1200];
	snprintf(p, sizeof(p), "%s/%s.%s", g_marks, uuid, what);
	return access(p, F_OK) == 0;
}

/* 1. zuul_return: data merged across tasks and playbooks with Zuul's rules, the special keys */
static void test_zuul_return_in_result(void **state)
{
	(void)state;
	outcome o;
	run(request("zr1", NULL, "pb/ret.yaml", "pb/postret.yaml", NULL), &o, 30000);
	want_result(&o, "SUCCESS");
	json_t *r = o.result, *d = json_object_get(r, "data");
	assert_string_equal(json_string_value(json_object_get(d, "foo")), "bar");
	/* mappings merge across playbooks */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "foo2"), "x")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "foo2"), "y")), 2);
	assert_int_equal(json_integer_value(json_object_get(d, "from_post")), 1);
	assert_string_equal(json_string_value(json_object_get(r, "log_url")), "http://logs.example.org/b/");
	/* artifacts and warnings of several calls are concatenated, the later call's first (Zuul's
	 * merge_data); a relative artifact url is joined to log_url */
	json_t *a = json_object_get(r, "artifacts");
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "name")), "tarball");
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "url")), "https://ex.org/t.tgz");
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 1), "name")), "docs");
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 1), "url")), "http://logs.example.org/b/docs/");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(a, 1), "metadata"), "v")), 1);
	json_t *w = json_object_get(r, "warnings");
	assert_int_equal(json_array_size(w), 2);
	assert_string_equal(json_string_value(json_array_get(w, 0)), "w2");
	assert_string_equal(json_string_value(json_array_get(w, 1)), "w1");
	json_t *cj = json_object_get(r, "child_jobs");
	assert_int_equal(json_array_size(cj), 1);
	assert_string_equal(json_string_value(json_array_get(cj, 0)), "c1");
	outcome_free(&o);

	/* an artifact without url fails the task: FAILURE, and the log says why */
	run(request("zr2", NULL, "pb/badret.yaml", NULL, NULL), &o, 30000);
	want_result(&o, "FAILURE");
	assert_non_null(strstr(vz_buf_cstr(&o.log), "zuul.artifacts[0] must be a mapping with the strings 'name' and 'url'"));
	assert_null(json_object_get(o.result, "artifacts"));
	outcome_free(&o);

	/* nothing returned: no data fields at all */
	run(request("zr3", NULL, "pb/ok.yaml", NULL, NULL), &o, 30000);
	want_result(&o, "SUCCESS");
	assert_null(json_object_get(o.result, "data"));
	assert_null(json_object_get(o.result, "log_url"));
	outcome_free(&o);
}

/* 1. parent data: variables below the job's own; its zuul part is not a variable */
static void test_parent_data_as_vars(void **state)
{
	(void)state;
	json_t *req = request("pd1", NULL, "pb/vars.yaml", NULL, NULL);
	json_object_set_new(req, "parent_data", json_pack("{s:s,s:s,s:{s:b,s:s}}", "pvar", "from-parent", "shadow", "parent",
							  "zuul", "pause", 1, "job", "not-this"));
	json_object_set_new(json_object_get(req, "vars"), "shadow", json_string("job"));
	outcome o;
	run(req, &o, 30000);
	want_result(&o, "SUCCESS");
	assert_non_null(strstr(vz_buf_cstr(&o.log), "pvar=from-parent shadow=job job=j"));
	/* the parent's zuul.pause is the parent's: this build does not pause */
	assert_null(strstr(vz_buf_cstr(&o.log), "paused after the run phase"));
	outcome_free(&o);
}

/* 1. zuul.retry false: a failed pre-run ends FAILURE instead of RETRY */
static void test_retry_false(void **state)
{
	(void)state;
	outcome o;
	run(request("rf1", "pb/noretry.yaml", "pb/ok.yaml", "pb/post-mark.yaml", "pb/cleanup-mark.yaml"), &o, 30000);
	want_result(&o, "FAILURE");
	assert_string_equal(json_string_value(json_object_get(o.result, "message")),
			    "pre_run playbook src/example.org/p/pb/noretry.yaml failed; not retried (zuul.retry: false)");
	assert_true(json_is_false(json_object_get(json_object_get(json_object_get(o.result, "data"), "zuul"), "retry")));
	assert_false(marker("rf1", "post"));
	char *c = vz_test_out("cat %s/rf1.cleanup", g_marks);
	assert_string_equal(c, "cleanup False False"); /* zuul_will_retry false: it will not */
	free(c);
	outcome_free(&o);
	/* without it the same failure retries, and cleanup-run hears it (attempt 1 of 3) */
	run(request("rf2", "pb/badpre.yaml", "pb/ok.yaml", NULL, "pb/cleanup-mark.yaml"), &o, 30000);
	want_result(&o, "RETRY");
	c = vz_test_out("cat %s/rf2.cleanup", g_marks);
	assert_string_equal(c, "cleanup False True");
	free(c);
	outcome_free(&o);
	/* the last attempt: zuul_will_retry false */
	json_t *last = request("rf3", "pb/badpre.yaml", "pb/ok.yaml", NULL, "pb/cleanup-mark.yaml");
	json_object_set_new(last, "attempt", json_integer(3));
	json_object_set_new(last, "max_attempts", json_integer(3));
	run(last, &o, 30000);
	want_result(&o, "RETRY");
	c = vz_test_out("cat %s/rf3.cleanup", g_marks);
	assert_string_equal(c, "cleanup False False");
	free(c);
	outcome_free(&o);
}

/* 1. zuul.pause: "paused" with the data after run, post-run only after "resume"; a cancel while
 * paused gives ABORTED with cleanup-run but no post-run */
static void test_pause_resume_and_cancel(void **state)
{
	(void)state;
	to_executor(VZ_MSG_BUILD, request("pz1", NULL, "pb/pause.yaml", "pb/post-mark.yaml", "pb/cleanup-mark.yaml"));
	vz_msg *m = expect(VZ_MSG_PAUSED, 30000);
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "build"), "pz1");
	assert_int_equal(vz_msg_int(m, "attempt", 0), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(m->body, "data"), "registry")), "r1");
	vz_msg_free(m);
	/* paused: post-run waits; the executor repeats "paused" with its heartbeats */
	m = expect(VZ_MSG_PAUSED, 3000);
	assert_non_null(m);
	vz_msg_free(m);
	assert_false(marker("pz1", "post"));
	uint64_t t0 = vz_mono_ms();
	to_executor(VZ_MSG_RESUME, json_pack("{s:s,s:i}", "build", "pz1", "attempt", 1));
	m = expect(VZ_MSG_RESULT, 30000);
	fprintf(stderr, "figure: resume to result %llu ms (post-run and cleanup-run, one shell task each)\n",
		(unsigned long long)(vz_mono_ms() - t0));
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "result"), "SUCCESS");
	assert_string_equal(json_string_value(json_object_get(json_object_get(m->body, "data"), "registry")), "r1");
	vz_msg_free(m);
	to_executor(VZ_MSG_ACK, json_pack("{s:s,s:i}", "build", "pz1", "attempt", 1));
	assert_true(marker("pz1", "post"));
	assert_true(marker("pz1", "cleanup"));

	to_executor(VZ_MSG_BUILD, request("pz2", NULL, "pb/pause.yaml", "pb/post-mark.yaml", "pb/cleanup-mark.yaml"));
	m = expect(VZ_MSG_PAUSED, 30000);
	assert_non_null(m);
	vz_msg_free(m);
	to_executor(VZ_MSG_CANCEL, json_pack("{s:s}", "build", "pz2"));
	m = expect(VZ_MSG_RESULT, 30000);
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "result"), "ABORTED");
	vz_msg_free(m);
	to_executor(VZ_MSG_ACK, json_pack("{s:s,s:i}", "build", "pz2", "attempt", 1));
	assert_false(marker("pz2", "post"));
	assert_true(marker("pz2", "cleanup"));
}

/* 2. failure-output: the scheduler hears of the match while the run goes on; FAILURE at the end */
static void test_failure_output_early(void **state)
{
	(void)state;
	json_t *req = request("fo1", NULL, "pb/fo.yaml", "pb/post-mark.yaml", NULL);
	json_object_set_new(req, "failure_output", json_pack("[s,s]", "^never matches$", "ERROR: boom [0-9]+"));
	outcome o;
	run(req, &o, 30000);
	want_result(&o, "FAILURE");
	assert_non_null(o.early);
	assert_int_equal(json_integer_value(json_object_get(o.early, "attempt")), 1);
	assert_string_equal(json_string_value(json_object_get(o.early, "message")),
			    "failure-output pattern 2 matched the line: ERROR: boom 42");
	assert_string_equal(json_string_value(json_object_get(o.result, "message")),
			    "failure-output pattern 2 matched the line: ERROR: boom 42");
	/* told early: the run went on for its 1.5 s sleep after the match */
	assert_true(o.result_ms - o.early_ms >= 1000);
	assert_non_null(strstr(vz_buf_cstr(&o.log), "finished-after-match"));
	fprintf(stderr, "figure: early_failure reached the scheduler %lld ms after the node printed the line, "
			"%llu ms before the result\n", (long long)(o.early_wall - node_time_ms("fo1")),
		(unsigned long long)(o.result_ms - o.early_ms));
	assert_true(marker("fo1", "post"));
	outcome_free(&o);

	/* no match: SUCCESS, no early_failure */
	req = request("fo2", NULL, "pb/ok.yaml", NULL, NULL);
	json_object_set_new(req, "failure_output", json_pack("[s]", "ERROR"));
	run(req, &o, 30000);
	want_result(&o, "SUCCESS");
	assert_null(o.early);
	outcome_free(&o);

	/* a build of plain commands is checked the same way */
	req = request("fo4", NULL, NULL, NULL, NULL);
	json_object_del(req, "playbooks");
	json_object_set_new(req, "commands", json_pack("[s,s]", "echo FATAL: disk on fire", "echo still-running"));
	json_object_set_new(req, "failure_output", json_pack("[s]", "^FATAL:"));
	run(req, &o, 30000);
	want_result(&o, "FAILURE");
	assert_non_null(o.early);
	assert_string_equal(json_string_value(json_object_get(o.early, "message")),
			    "failure-output pattern 1 matched the line: FATAL: disk on fire");
	assert_non_null(strstr(vz_buf_cstr(&o.log), "still-running")); /* the next command still ran */
	outcome_free(&o);

	/* a bad pattern: ERROR naming it, nothing runs */
	req = request("fo3", NULL, "pb/post-mark.yaml", NULL, NULL);
	json_object_set_new(req, "failure_output", json_pack("[s]", "a(b"));
	run(req, &o, 30000);
	want_result(&o, "ERROR");
	assert_non_null(strstr(json_string_value(json_object_get(o.result, "message")),
			       "failure_output[0] 'a(b' is not a valid POSIX extended regular expression"));
	assert_false(marker("fo3", "post"));
	outcome_free(&o);
}

/* 3. DISK_FULL: the build's directory over disk_limit_per_job (3 MB here) stops it; cleanup runs */
static void test_disk_full(void **state)
{
	(void)state;
	outcome o;
	uint64_t t0 = vz_mono_ms();
	run(request("df1", NULL, "pb/big.yaml", "pb/post-mark.yaml", "pb/cleanup-mark.yaml"), &o, 30000);
	want_result(&o, "DISK_FULL");
	assert_string_equal(json_string_value(json_object_get(o.result, "message")),
			    "the build's directory went over the executor's disk_limit_per_job");
	assert_true(vz_mono_ms() - t0 < 15000); /* not the 30 s sleep */
	fprintf(stderr, "figure: DISK_FULL result %lld ms after the 8 MB file was written (limit 3 MB, measured every 1 s; "
			"includes cleanup-run)\n", (long long)(o.result_wall - node_time_ms("df1")));
	assert_non_null(strstr(vz_buf_cstr(&o.log), "over disk_limit_per_job (3 MB)"));
	assert_false(marker("df1", "post"));
	assert_true(marker("df1", "cleanup"));
	outcome_free(&o);
}

/* 4. post-timeout: each post-run playbook within it; over it POST_FAILURE, cleanup still runs */
static void test_post_timeout(void **state)
{
	(void)state;
	json_t *req = request("pt1", NULL, "pb/ok.yaml", "pb/slowpost.yaml,pb/post-mark.yaml", "pb/cleanup-mark.yaml");
	json_object_set_new(req, "post_timeout", json_integer(1));
	outcome o;
	uint64_t t0 = vz_mono_ms();
	run(req, &o, 30000);
	want_result(&o, "POST_FAILURE");
	assert_string_equal(json_string_value(json_object_get(o.result, "message")),
			    "post-run playbook src/example.org/p/pb/slowpost.yaml timed out after its post_timeout of 1 s");
	assert_true(vz_mono_ms() - t0 < 15000);
	/* the next post-run playbook gets its own post_timeout and runs */
	assert_true(marker("pt1", "post"));
	assert_true(marker("pt1", "cleanup"));
	outcome_free(&o);
}

/* 5. a canceled build still runs its cleanup-run playbooks (they see zuul_success false) */
static void test_cancel_runs_cleanup(void **state)
{
	(void)state;
	to_executor(VZ_MSG_BUILD, request("cc1", NULL, "pb/sleep.yaml", "pb/post-mark.yaml", "pb/cleanup-mark.yaml"));
	vz_msg *m = expect(VZ_MSG_STARTED, 30000);
	assert_non_null(m);
	vz_msg_free(m);
	usleep(1500 * 1000); /* into the run playbook's sleep */
	uint64_t t0 = vz_mono_ms();
	to_executor(VZ_MSG_CANCEL, json_pack("{s:s}", "build", "cc1"));
	m = expect(VZ_MSG_RESULT, 30000);
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "result"), "ABORTED");
	assert_string_equal(vz_msg_str(m, "message"), "build canceled");
	assert_true(vz_mono_ms() - t0 < 10000);
	fprintf(stderr, "figure: cancel to ABORTED result %llu ms (local node, cleanup-run included)\n",
		(unsigned long long)(vz_mono_ms() - t0));
	vz_msg_free(m);
	to_executor(VZ_MSG_ACK, json_pack("{s:s,s:i}", "build", "cc1", "attempt", 1));
	assert_false(marker("cc1", "post"));
	assert_true(marker("cc1", "cleanup"));
	char *c = vz_test_out("cat %s/cc1.cleanup", g_marks);
	assert_string_equal(c, "cleanup False False");
	free(c);
	assert_int_not_equal(system("pgrep -f 'sleep 30[.]4417' >/dev/null"), 0);
}

/* 5. the same on a real ssh node: the cleanup playbook writes its file on the node */
static void test_cancel_runs_cleanup_ssh(void **state)
{
	(void)state;
	vz_test_sshd *sshd = NULL;
	assert_int_equal(vz_test_sshd_start(&sshd), 0);
	json_t *req = request("cc2", NULL, "pb/sleep.yaml", "pb/post-mark.yaml", "pb/cleanup-mark.yaml");
	json_object_set_new(req, "node", json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s}", "name", "sshn", "connection", "ssh", "host",
						   "127.0.0.1", "port", vz_test_sshd_port(sshd), "user", vz_test_sshd_user(sshd),
						   "key", vz_test_sshd_key(sshd), "known_hosts", vz_test_sshd_known_hosts(sshd)));
	json_object_set_new(json_object_get(req, "vars"), "marker_dir", json_string(vz_test_sshd_workdir(sshd)));
	to_executor(VZ_MSG_BUILD, req);
	vz_msg *m = expect(VZ_MSG_STARTED, 30000);
	assert_non_null(m);
	vz_msg_free(m);
	/* canceled once the run playbook's sleep runs on the node */
	uint64_t until = vz_mono_ms() + 30000;
	while (system("pgrep -f 'sleep 30[.]4417' >/dev/null") != 0 && vz_mono_ms() < until)
		usleep(50 * 1000);
	assert_int_equal(system("pgrep -f 'sleep 30[.]4417' >/dev/null"), 0);
	to_executor(VZ_MSG_CANCEL, json_pack("{s:s}", "build", "cc2"));
	m = expect(VZ_MSG_RESULT, 30000);
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "result"), "ABORTED");
	assert_string_equal(vz_msg_str(m, "node"), "sshn");
	vz_msg_free(m);
	to_executor(VZ_MSG_ACK, json_pack("{s:s,s:i}", "build", "cc2", "attempt", 1));
	char *c = vz_test_out("cat %s/cc2.cleanup; ls %s", vz_test_sshd_workdir(sshd), vz_test_sshd_workdir(sshd));
	assert_string_equal(c, "cleanup False False\ncc2.cleanup"); /* and no cc2.post */
	free(c);
	until = vz_mono_ms() + 10000;
	while (system("pgrep -f 'sleep 30[.]4417' >/dev/null") == 0 && vz_mono_ms() < until)
		usleep(50 * 1000);
	assert_int_not_equal(system("pgrep -f 'sleep 30[.]4417' >/dev/null"), 0);
	vz_test_sshd_stop(sshd);
}

/* 6. the control socket: a paused executor offers 0 slots, resumed it offers its capacity */
static void test_control_pause_resume(void **state)
{
	(void)state;
	char *sock = vz_path_join(g_cfg->executor.work_dir, "control.sock");
	char ep[1200];
	snprintf(ep, sizeof(ep), "ipc://%s", sock);
	free(sock);
	json_t *d = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_admin_call(g_zctx, ep, "pause", NULL, &d, 5000, &e), 0);
	assert_true(json_is_true(json_object_get(d, "paused")));
	assert_int_equal(json_integer_value(json_object_get(d, "free")), 0);
	json_decref(d);
	assert_true(expect_free(0, VZ_MSG_READY, 3000));
	/* heartbeats say 0 too, and keep saying it */
	assert_true(expect_free(0, VZ_MSG_HEARTBEAT, 3000));
	vz_msg *m = expect(VZ_MSG_HEARTBEAT, 3000);
	assert_non_null(m);
	assert_int_equal(vz_msg_int(m, "free", -1), 0);
	vz_msg_free(m);
	assert_int_equal(vz_admin_call(g_zctx, ep, "resume", NULL, &d, 5000, &e), 0);
	assert_false(json_is_true(json_object_get(d, "paused")));
	assert_int_equal(json_integer_value(json_object_get(d, "free")), 4);
	json_decref(d);
	assert_true(expect_free(4, VZ_MSG_READY, 3000));
	/* an unknown operation is refused with a clear message */
	assert_int_equal(vz_admin_call(g_zctx, ep, "explode", NULL, &d, 5000, &e), VZ_EINVAL);
	assert_non_null(strstr(vz_err_msg(&e), "use pause, resume or status"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zuul_return_in_result),
		cmocka_unit_test(test_parent_data_as_vars),
		cmocka_unit_test(test_retry_false),
		cmocka_unit_test(test_pause_resume_and_cancel),
		cmocka_unit_test(test_failure_output_early),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_post_timeout),
		cmocka_unit_test(test_cancel_runs_cleanup),
		cmocka_unit_test(test_cancel_runs_cleanup_ssh),
		cmocka_unit_test(test_control_pause_resume),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
