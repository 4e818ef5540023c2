/* The real scheduler (its loop on a thread, its sqlite store in a temp dir) against executors
 * played by the test over the wire protocol: version mismatch, malformed frames, hello-required,
 * the full build cycle, duplicate and late results, lease expiry, executor restarts, log resend,
 * RETRY_LIMIT. Also the real executor against a scheduler that speaks another version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "vz_admin.h"
#include "vz_config.h"
#include "vz_executor.h"
#include "vz_log.h"
#include "vz_proto.h"
#include "vz_sched.h"
#include "vz_test_proto.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

#define SCHED_EP "inproc://sched-test"
#define ADMIN_EP "inproc://admin-test"

typedef struct env {
	char *dir;
	vz_config *cfg;
	void *zctx;
	vz_sched *s;
	pthread_t th;
	volatile sig_atomic_t stop;
	int rc;
	void *socks[16]; /* the test's executor sockets, closed by teardown even when a test fails */
	int nsocks;
} env;

static void *sched_thread(void *arg)
{
	env *t = arg;
	vz_err e = { 0 };
	t->rc = vz_sched_run(t->s, &t->stop, &e);
	return NULL;
}

static int setup(void **state)
{
	env *t = vz_xcalloc(1, sizeof(*t));
	t->dir = vz_test_tmpdir("vz-sched");
	char *repos = vz_path_join(t->dir, "repos/p.git");
	vz_test_git_repo(repos, 3, NULL);
	free(repos);
	vz_test_write(t->dir, "vinz.yaml",
		      "state_dir: state\n"
		      "log_level: error\n"
		      "scheduler:\n  listen: " SCHED_EP "\n  admin: " ADMIN_EP "\n  lease: 0.6\n  heartbeat: 0.1\n"
		      "connections:\n  - name: g\n    driver: git\n    baseurl: repos\n"
		      "nodes:\n  - name: n1\n    connection: local\n    labels: [l]\n    max_parallel: 4\n"
		      "pipelines:\n  - name: check\n    manager: independent\n"
		      "jobs:\n  - name: j\n    label: l\n    run: [\"true\"]\n    attempts: 2\n"
		      "projects:\n  - name: p\n    connection: g\n    check:\n      jobs: [j]\n");
	char *cp = vz_path_join(t->dir, "vinz.yaml");
	vz_err e = { 0 };
	assert_int_equal(vz_config_load(&t->cfg, cp, NULL, &e), 0);
	free(cp);
	t->zctx = zmq_ctx_new();
	assert_int_equal(vz_sched_new(&t->s, t->cfg, t->zctx, SCHED_EP, &e), 0);
	assert_int_equal(pthread_create(&t->th, NULL, sched_thread, t), 0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	env *t = *state;
	for (int i = 0; i < t->nsocks; i++)
		if (t->socks[i])
			zmq_close(t->socks[i]);
	t->stop = 1;
	pthread_join(t->th, NULL);
	assert_int_equal(t->rc, 0);
	vz_sched_free(t->s);
	zmq_ctx_term(t->zctx);
	vz_config_free(t->cfg);
	vz_test_rm(t->dir);
	free(t->dir);
	free(t);
	return 0;
}

static json_t *admin(env *t, const char *op, json_t *args)
{
	json_t *d = NULL;
	vz_err e = { 0 };
	int rc = vz_admin_call(t->zctx, ADMIN_EP, op, args, &d, 5000, &e);
	if (rc)
		fprintf(stderr, "admin %s: %s\n", op, vz_err_msg(&e));
	assert_int_equal(rc, 0);
	json_decref(args);
	return d;
}

static void enqueue(env *t, const char *change)
{
	char ref[64];
	snprintf(ref, sizeof(ref), "refs/changes/%s", change);
	json_decref(admin(t, "enqueue", json_pack("{s:s,s:s,s:s,s:s}", "pipeline", "check", "project", "p", "ref", ref, "id", change)));
}

/* builds of a change, oldest first */
static json_t *builds_of(env *t, const char *change)
{
	json_t *all = admin(t, "builds", json_pack("{s:s}", "change", change));
	json_t *out = json_array();
	for (size_t i = json_array_size(all); i-- > 0;)
		json_array_append(out, json_array_get(all, i));
	json_decref(all);
	return out;
}

static void *fx_new(env *t, const char *rid)
{
	void *s = zmq_socket(t->zctx, ZMQ_DEALER);
	assert_non_null(s);
	zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, strlen(rid));
	int linger = 0;
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	assert_int_equal(zmq_connect(s, SCHED_EP), 0);
	assert_true(t->nsocks < 16);
	t->socks[t->nsocks++] = s;
	return s;
}

static void fx_close(env *t, void *s)
{
	for (int i = 0; i < t->nsocks; i++)
		if (t->socks[i] == s) {
			zmq_close(s);
			t->socks[i] = NULL;
		}
}

static void fx_send(void *s, vz_msg_type type, json_t *body)
{
	vz_err e = { 0 };
	assert_int_equal(vz_proto_send(s, NULL, 0, type, NULL, body, &e), 0);
	json_decref(body);
}

/* next message that is not a heartbeat, or NULL after timeout_ms */
static vz_msg *fx_recv(void *s, int timeout_ms)
{
	uint64_t until = vz_mono_ms() + (uint64_t)timeout_ms;
	while (vz_mono_ms() < until) {
		zmq_pollitem_t pi = { s, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(&pi, 1, 50) <= 0)
			continue;
		vz_msg *m = NULL;
		vz_err e = { 0 };
		if (vz_proto_recv(s, 0, NULL, NULL, &m, NULL, ZMQ_DONTWAIT, &e))
			continue;
		if (m->type == VZ_MSG_HEARTBEAT) {
			vz_msg_free(m);
			continue;
		}
		return m;
	}
	return NULL;
}

static vz_msg *fx_expect(void *s, vz_msg_type type, int timeout_ms)
{
	vz_msg *m = fx_recv(s, timeout_ms);
	if (!m)
		fail_msg("expected %s, got nothing in %d ms", vz_msg_type_name(type), timeout_ms);
	if (m->type != type)
		fail_msg("expected %s, got %s: %s", vz_msg_type_name(type), vz_msg_type_name(m->type), json_dumps(m->body, 0));
	return m;
}

static void fx_hello(void *s, const char *name, const char *inst, json_t *running)
{
	fx_send(s, VZ_MSG_HELLO,
		json_pack("{s:s,s:s,s:s,s:i,s:[],s:o}", "executor", name, "instance", inst, "version", "test", "capacity", 4,
			  "labels", "running", running ? running : json_array()));
	vz_msg *m = fx_expect(s, VZ_MSG_WELCOME, 3000);
	vz_msg_free(m);
}

static void fx_ready(void *s, int fr, int seen)
{
	fx_send(s, VZ_MSG_READY, json_pack("{s:i,s:i}", "free", fr, "seen", seen));
}

static void fx_result(void *s, const char *uuid, json_int_t attempt, const char *result, json_int_t log_size)
{
	fx_send(s, VZ_MSG_RESULT,
		json_pack("{s:s,s:I,s:s,s:I,s:s}", "build", uuid, "attempt", attempt, "result", result, "log_size", log_size,
			  "message", ""));
}

/* A fake executor named name (instance 1) with one slot gets the build of change, enqueued now:
 * its uuid into uuid. */
static void fx_first_build(env *t, void *s, const char *name, const char *change, char uuid[64])
{
	fx_hello(s, name, "1", NULL);
	fx_ready(s, 1, 0);
	enqueue(t, change);
	vz_msg *b = fx_expect(s, VZ_MSG_BUILD, 3000);
	assert_non_null(b);
	vz_strlcpy(uuid, vz_msg_str(b, "build"), 64);
	vz_msg_free(b);
}

static void test_version_mismatch_refused(void **state)
{
	env *t = *state;
	void *s = fx_new(t, "old/1");
	const char *frame = "{\"v\":2,\"type\":\"hello\",\"id\":\"h1\",\"executor\":\"old\",\"instance\":\"1\","
			    "\"version\":\"x\",\"capacity\":1,\"labels\":[],\"running\":[]}";
	assert_int_equal(zmq_send(s, frame, strlen(frame), 0), (int)strlen(frame));
	vz_msg *m = fx_expect(s, VZ_MSG_REFUSE, 3000);
	assert_string_equal(vz_msg_str(m, "code"), "version");
	assert_non_null(strstr(vz_msg_str(m, "message"), "2"));
	assert_non_null(strstr(vz_msg_str(m, "message"), "1"));
	vz_msg_free(m);
	fx_close(t, s);
}

static void test_malformed_then_valid(void **state)
{
	env *t = *state;
	void *s = fx_new(t, "mal/1");
	assert_int_equal(zmq_send(s, "garbage{", 8, 0), 8);
	vz_msg *m = fx_expect(s, VZ_MSG_ERROR, 3000);
	assert_string_equal(vz_msg_str(m, "code"), "malformed");
	vz_msg_free(m);
	/* an unknown type with a valid envelope */
	const char *unk = "{\"v\":1,\"type\":\"teleport\",\"id\":\"u1\"}";
	zmq_send(s, unk, strlen(unk), 0);
	m = fx_expect(s, VZ_MSG_ERROR, 3000);
	vz_msg_free(m);
	/* the connection still works */
	fx_hello(s, "mal", "1", NULL);
	fx_close(t, s);
}

static void test_hello_required(void **state)
{
	env *t = *state;
	void *s = fx_new(t, "nohello/1");
	fx_ready(s, 1, 0);
	vz_msg *m = fx_expect(s, VZ_MSG_ERROR, 3000);
	assert_string_equal(vz_msg_str(m, "code"), "hello-required");
	vz_msg_free(m);
	fx_close(t, s);
}

static void test_full_cycle_and_duplicate_result(void **state)
{
	env *t = *state;
	void *s = fx_new(t, "ex/1");
	fx_hello(s, "ex", "1", NULL);
	fx_ready(s, 1, 0);
	enqueue(t, "1");
	vz_msg *b = fx_expect(s, VZ_MSG_BUILD, 3000);
	char uuid[64];
	vz_strlcpy(uuid, vz_msg_str(b, "build"), sizeof(uuid));
	assert_string_equal(vz_msg_str(b, "job"), "j");
	assert_string_equal(vz_msg_str(b, "change"), "1");
	assert_int_equal(strlen(vz_msg_str(b, "commit")), 40);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b->body, "node"), "name")), "n1");
	vz_msg_free(b);
	fx_send(s, VZ_MSG_STARTED, json_pack("{s:s,s:i,s:I}", "build", uuid, "attempt", 1, "started_at", (json_int_t)vz_wall_ms()));
	fx_send(s, VZ_MSG_LOG, json_pack("{s:s,s:i,s:s}", "build", uuid, "offset", 0, "data", "hello log\n"));
	fx_result(s, uuid, 1, "SUCCESS", 10);
	vz_msg *a = fx_expect(s, VZ_MSG_ACK, 3000);
	assert_string_equal(vz_msg_str(a, "build"), uuid);
	vz_msg_free(a);
	/* the same result again: acknowledged, nothing changes */
	fx_result(s, uuid, 1, "FAILURE", 10);
	a = fx_expect(s, VZ_MSG_ACK, 3000);
	vz_msg_free(a);
	json_t *bs = builds_of(t, "1");
	assert_int_equal(json_array_size(bs), 1);
	json_t *b0 = json_array_get(bs, 0);
	assert_string_equal(json_string_value(json_object_get(b0, "result")), "SUCCESS");
	assert_true(json_is_true(json_object_get(b0, "final")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(b0, "changes"), 0)), "1");
	assert_non_null(json_string_value(json_object_get(b0, "start_time")));
	assert_non_null(json_string_value(json_object_get(b0, "end_time")));
	/* the log arrived where log_url says */
	vz_buf lb = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	assert_int_equal(vz_read_file(json_string_value(json_object_get(b0, "log_url")), lb.max, &lb, &e), 0);
	assert_string_equal(vz_buf_cstr(&lb), "hello log\n");
	vz_buf_free(&lb);
	json_decref(bs);
	fx_close(t, s);
}

static void test_lease_expiry_requeues_and_late_result_ignored(void **state)
{
	env *t = *state;
	void *s = fx_new(t, "slow/1");
	char uuid[64];
	fx_first_build(t, s, "slow", "2", uuid);
	/* silence past the lease (0.6 s) */
	usleep(1500 * 1000);
	json_t *bs = builds_of(t, "2");
	assert_int_equal(json_array_size(bs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(bs, 0), "result")), "LOST");
	assert_false(json_is_true(json_object_get(json_array_get(bs, 0), "final")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(bs, 1), "attempt")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(bs, 1), "state")), "queued");
	json_decref(bs);
	/* the silent executor comes back with a late result: acked and ignored (it must say hello
	 * again first: the scheduler forgot it) */
	fx_result(s, uuid, 1, "SUCCESS", 0);
	vz_msg *m = fx_expect(s, VZ_MSG_ERROR, 3000);
	assert_string_equal(vz_msg_str(m, "code"), "hello-required");
	vz_msg_free(m);
	fx_hello(s, "slow", "1", NULL);
	fx_result(s, uuid, 1, "SUCCESS", 0);
	m = fx_expect(s, VZ_MSG_ACK, 3000);
	vz_msg_free(m);
	bs = builds_of(t, "2");
	assert_string_equal(json_string_value(json_object_get(json_array_get(bs, 0), "result")), "LOST");
	json_decref(bs);
	/* another executor takes attempt 2 */
	void *s2 = fx_new(t, "other/1");
	fx_hello(s2, "other", "1", NULL);
	fx_ready(s2, 1, 0);
	vz_msg *b = fx_expect(s2, VZ_MSG_BUILD, 3000);
	assert_int_equal(vz_msg_int(b, "attempt", 0), 2);
	char uuid2[64];
	vz_strlcpy(uuid2, vz_msg_str(b, "build"), sizeof(uuid2));
	vz_msg_free(b);
	fx_result(s2, uuid2, 2, "FAILURE", 0);
	m = fx_expect(s2, VZ_MSG_ACK, 3000);
	vz_msg_free(m);
	bs = builds_of(t, "2");
	int finals = 0;
	for (size_t i = 0; i < json_array_size(bs); i++)
		finals += json_is_true(json_object_get(json_array_get(bs, i), "final"));
	assert_int_equal(finals, 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(bs, 1), "result")), "FAILURE");
	json_decref(bs);
	fx_close(t, s);
	fx_close(t, s2);
}

static void test_restarted_executor_loses_builds_then_retry_limit(void **state)
{
	env *t = *state;
	void *s = fx_new(t, "re/1");
	fx_hello(s, "re", "1", NULL);
	fx_ready(s, 1, 0);
	enqueue(t, "3");
	vz_msg *b = fx_expect(s, VZ_MSG_BUILD, 3000);
	vz_msg_free(b);
	fx_close(t, s);
	/* same name, new instance: the old instance's build is lost at once */
	s = fx_new(t, "re/2");
	fx_hello(s, "re", "2", NULL);
	fx_ready(s, 1, 0);
	b = fx_expect(s, VZ_MSG_BUILD, 3000);
	assert_int_equal(vz_msg_int(b, "attempt", 0), 2);
	vz_msg_free(b);
	fx_close(t, s);
	/* and again: attempts (2) are used up */
	s = fx_new(t, "re/3");
	fx_hello(s, "re", "3", NULL);
	json_t *bs = builds_of(t, "3");
	assert_int_equal(json_array_size(bs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(bs, 1), "result")), "RETRY_LIMIT");
	assert_true(json_is_true(json_object_get(json_array_get(bs, 1), "final")));
	json_decref(bs);
	fx_close(t, s);
}

static void test_incomplete_log_is_resent_before_ack(void **state)
{
	env *t = *state;
	void *s = fx_new(t, "lg/1");
	char uuid[64];
	fx_first_build(t, s, "lg", "1", uuid);
	/* first chunk lost on the way */
	fx_send(s, VZ_MSG_LOG, json_pack("{s:s,s:i,s:s}", "build", uuid, "offset", 6, "data", "world\n"));
	fx_result(s, uuid, 1, "SUCCESS", 12);
	vz_msg *m = fx_expect(s, VZ_MSG_LOG_RESEND, 3000);
	assert_int_equal(vz_msg_int(m, "offset", -1), 0);
	vz_msg_free(m);
	fx_send(s, VZ_MSG_LOG, json_pack("{s:s,s:i,s:s}", "build", uuid, "offset", 0, "data", "hello "));
	fx_send(s, VZ_MSG_LOG, json_pack("{s:s,s:i,s:s}", "build", uuid, "offset", 6, "data", "world\n"));
	fx_result(s, uuid, 1, "SUCCESS", 12);
	m = fx_expect(s, VZ_MSG_ACK, 3000);
	vz_msg_free(m);
	json_t *bs = admin(t, "builds", json_pack("{s:s}", "job", "j"));
	vz_buf lb = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	assert_int_equal(vz_read_file(json_string_value(json_object_get(json_array_get(bs, 0), "log_url")), lb.max, &lb, &e), 0);
	assert_string_equal(vz_buf_cstr(&lb), "hello world\n");
	vz_buf_free(&lb);
	json_decref(bs);
	fx_close(t, s);
}

/* Files of the build's log directory (log_file): written under the build's log directory, a file
 * that did not arrive whole is asked for again by path and offset before the result is acked,
 * and names that would leave the directory or replace the streamed log are refused. */
static void test_log_files_resent_before_ack(void **state)
{
	env *t = *state;
	void *s = fx_new(t, "lf/1");
	char uuid[64];
	fx_first_build(t, s, "lf", "2", uuid);
	/* "abcdefgh\n\0\xff" in two chunks (binary-safe), the second lost; an empty file; hostile names */
	fx_send(s, VZ_MSG_LOG_FILE, json_pack("{s:s,s:i,s:s,s:i,s:i,s:s}", "build", uuid, "attempt", 1, "path", "x/a.bin",
					      "offset", 0, "size", 11, "data", "YWJjZGVm"));
	fx_send(s, VZ_MSG_LOG_FILE, json_pack("{s:s,s:i,s:s,s:i,s:i,s:s}", "build", uuid, "attempt", 1, "path", "empty",
					      "offset", 0, "size", 0, "data", ""));
	const char *evil[] = { "../evil", "/tmp/evil", "job-output.txt", "x/../../evil" };
	for (size_t i = 0; i < 4; i++)
		fx_send(s, VZ_MSG_LOG_FILE, json_pack("{s:s,s:i,s:s,s:i,s:i,s:s}", "build", uuid, "attempt", 1, "path", evil[i],
						      "offset", 0, "size", 3, "data", "ZXZp"));
	json_t *files = json_pack("{s:i,s:i}", "x/a.bin", 11, "empty", 0);
	fx_send(s, VZ_MSG_RESULT, json_pack("{s:s,s:i,s:s,s:i,s:O}", "build", uuid, "attempt", 1, "result", "SUCCESS",
					    "log_size", 0, "files", files));
	vz_msg *m = fx_expect(s, VZ_MSG_LOG_RESEND, 3000);
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "path"), "x/a.bin");
	assert_int_equal(vz_msg_int(m, "offset", -1), 6);
	vz_msg_free(m);
	fx_send(s, VZ_MSG_LOG_FILE, json_pack("{s:s,s:i,s:s,s:i,s:i,s:s}", "build", uuid, "attempt", 1, "path", "x/a.bin",
					      "offset", 6, "size", 11, "data", "Z2gKAP8="));
	fx_send(s, VZ_MSG_RESULT, json_pack("{s:s,s:i,s:s,s:i,s:O}", "build", uuid, "attempt", 1, "result", "SUCCESS",
					    "log_size", 0, "files", files));
	m = fx_expect(s, VZ_MSG_ACK, 3000);
	assert_non_null(m);
	vz_msg_free(m);
	json_decref(files);
	char rel[200];
	snprintf(rel, sizeof(rel), "state/logs/%s/x/a.bin", uuid);
	char *fp = vz_path_join(t->dir, rel);
	vz_buf fb = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	assert_int_equal(vz_read_file(fp, fb.max, &fb, &e), 0);
	assert_int_equal(fb.len, 11);
	assert_memory_equal(fb.ptr, "abcdefgh\n\0\xff", 11);
	vz_buf_free(&fb);
	free(fp);
	snprintf(rel, sizeof(rel), "state/logs/%s/empty", uuid);
	fp = vz_path_join(t->dir, rel);
	struct stat st;
	assert_int_equal(stat(fp, &st), 0);
	assert_int_equal(st.st_size, 0);
	free(fp);
	/* nothing hostile was written anywhere */
	char *found = vz_test_out("find %s /tmp/evil -name evil 2>/dev/null | head -1", t->dir);
	assert_string_equal(found, "");
	free(found);
	snprintf(rel, sizeof(rel), "state/logs/%s/job-output.txt", uuid);
	fp = vz_path_join(t->dir, rel);
	assert_true(stat(fp, &st) != 0 || st.st_size == 0);
	free(fp);
	fx_close(t, s);
}

static void test_enqueue_errors_are_clear(void **state)
{
	env *t = *state;
	json_t *d = NULL;
	vz_err e = { 0 };
	json_t *args = json_pack("{s:s,s:s,s:s,s:s}", "pipeline", "check", "project", "p", "ref", "refs/changes/99", "id", "99");
	assert_int_equal(vz_admin_call(t->zctx, ADMIN_EP, "enqueue", args, &d, 5000, &e), VZ_EINVAL);
	assert_non_null(strstr(vz_err_msg(&e), "refs/changes/99"));
	json_decref(args);
	vz_err_clear(&e);
	args = json_pack("{s:s,s:s,s:s,s:s}", "pipeline", "nope", "project", "p", "ref", "refs/changes/1", "id", "1");
	assert_int_equal(vz_admin_call(t->zctx, ADMIN_EP, "enqueue", args, &d, 5000, &e), VZ_EINVAL);
	assert_non_null(strstr(vz_err_msg(&e), "nope"));
	json_decref(args);
	/* the same change at the same commit twice: one item */
	enqueue(t, "1");
	enqueue(t, "1");
	json_t *st = admin(t, "status", NULL);
	json_t *items = json_object_get(json_array_get(json_object_get(st, "pipelines"), 0), "items");
	assert_int_equal(json_array_size(items), 1);
	json_decref(st);
}

static void test_requeue_keeps_the_attempt(void **state)
{
	env *t = *state;
	void *s = fx_new(t, "stopping/1");
	char uuid[64];
	fx_first_build(t, s, "stopping", "1", uuid);
	fx_ready(s, 0, 1); /* stopping: no more credit */
	fx_result(s, uuid, 1, "REQUEUE", 0);
	vz_msg *m = fx_expect(s, VZ_MSG_ACK, 3000);
	vz_msg_free(m);
	json_t *bs = builds_of(t, "1");
	assert_int_equal(json_array_size(bs), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(bs, 0), "state")), "queued");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(bs, 0), "attempt")), 1);
	json_decref(bs);
	/* the next executor gets the very same build and attempt */
	void *s2 = fx_new(t, "next/1");
	fx_hello(s2, "next", "1", NULL);
	fx_ready(s2, 1, 0);
	vz_msg *b = fx_expect(s2, VZ_MSG_BUILD, 3000);
	assert_string_equal(vz_msg_str(b, "build"), uuid);
	assert_int_equal(vz_msg_int(b, "attempt", 0), 1);
	vz_msg_free(b);
}

/* A build handed back mid-run (second SIGTERM of its executor: REQUEUE without log_size) starts
 * over: the same attempt, no start time, its partial log discarded, no log_resend asked. */
static void test_handed_back_build_starts_over(void **state)
{
	env *t = *state;
	void *s = fx_new(t, "handback/1");
	char uuid[64];
	fx_first_build(t, s, "handback", "1", uuid);
	fx_send(s, VZ_MSG_STARTED, json_pack("{s:s,s:i,s:I}", "build", uuid, "attempt", 1, "started_at", (json_int_t)vz_wall_ms()));
	fx_send(s, VZ_MSG_LOG, json_pack("{s:s,s:i,s:s}", "build", uuid, "offset", 0, "data", "first run, cut short\n"));
	fx_ready(s, 0, 1);
	fx_send(s, VZ_MSG_RESULT, json_pack("{s:s,s:i,s:s,s:s}", "build", uuid, "attempt", 1, "result", "REQUEUE", "message",
					    "the executor stopped during the build and handed it back"));
	vz_msg *m = fx_expect(s, VZ_MSG_ACK, 3000); /* not a log_resend */
	vz_msg_free(m);
	json_t *bs = builds_of(t, "1");
	assert_int_equal(json_array_size(bs), 1);
	json_t *b0 = json_array_get(bs, 0);
	assert_string_equal(json_string_value(json_object_get(b0, "state")), "queued");
	assert_int_equal(json_integer_value(json_object_get(b0, "attempt")), 1);
	assert_true(json_is_null(json_object_get(b0, "start_time")) || !json_object_get(b0, "start_time"));
	char logp[1024];
	vz_strlcpy(logp, json_string_value(json_object_get(b0, "log_url")), sizeof(logp));
	json_decref(bs);
	char *content = vz_test_out("cat %s 2>/dev/null || true", logp);
	assert_string_equal(content, "");
	free(content);
	/* the next executor runs the same attempt from the start; its log is the whole log */
	void *s2 = fx_new(t, "next/1");
	fx_hello(s2, "next", "1", NULL);
	fx_ready(s2, 1, 0);
	vz_msg *b = fx_expect(s2, VZ_MSG_BUILD, 3000);
	assert_string_equal(vz_msg_str(b, "build"), uuid);
	assert_int_equal(vz_msg_int(b, "attempt", 0), 1);
	vz_msg_free(b);
	fx_send(s2, VZ_MSG_LOG, json_pack("{s:s,s:i,s:s}", "build", uuid, "offset", 0, "data", "second\n"));
	fx_result(s2, uuid, 1, "SUCCESS", 7);
	m = fx_expect(s2, VZ_MSG_ACK, 3000);
	vz_msg_free(m);
	content = vz_test_out("cat %s", logp);
	assert_string_equal(content, "second");
	free(content);
	bs = builds_of(t, "1");
	assert_int_equal(json_array_size(bs), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(bs, 0), "result")), "SUCCESS");
	json_decref(bs);
}

/* ---- the real executor against a scheduler of another protocol version ---- */

static void *fake_sched_v2(void *arg)
{
	void *r = arg;
	zmq_pollitem_t pi = { r, 0, ZMQ_POLLIN, 0 };
	if (zmq_poll(&pi, 1, 5000) <= 0)
		return NULL;
	char rid[256];
	int n = zmq_recv(r, rid, sizeof(rid), 0);
	char buf[8192];
	zmq_recv(r, buf, sizeof(buf), 0);
	const char *w = "{\"v\":2,\"type\":\"welcome\",\"id\":\"w\",\"scheduler_instance\":\"x\",\"lease_ms\":1000,\"heartbeat_ms\":100}";
	zmq_send(r, rid, (size_t)n, ZMQ_SNDMORE);
	zmq_send(r, w, strlen(w), 0);
	return NULL;
}

static void test_executor_refuses_other_version(void **state)
{
	env *t = *state;
	void *r = zmq_socket(t->zctx, ZMQ_ROUTER);
	assert_int_equal(zmq_bind(r, "inproc://v2-sched"), 0);
	pthread_t th;
	pthread_create(&th, NULL, fake_sched_v2, r);
	vz_executor *x = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_executor_new(&x, t->cfg, t->zctx, "inproc://v2-sched", &e), 0);
	volatile sig_atomic_t stop = 0;
	int rc = vz_executor_run(x, &stop, &e);
	assert_int_equal(rc, VZ_EVERSION);
	assert_non_null(strstr(vz_err_msg(&e), "version"));
	vz_executor_free(x);
	pthread_join(th, NULL);
	zmq_close(r);
}


/* ---- the real executor against a scheduler played by the test ---- */

typedef struct xrun {
	vz_executor *x;
	volatile sig_atomic_t stop;
	int rc;
	vz_err e;
} xrun;

static void *exec_thread(void *arg)
{
	xrun *r = arg;
	r->rc = vz_executor_run(r->x, &r->stop, &r->e);
	return NULL;
}

static void router_send(void *r, const char *rid, size_t rlen, vz_msg_type t, json_t *body)
{
	vz_err e = { 0 };
	assert_int_equal(vz_proto_send(r, rid, rlen, t, NULL, body, &e), 0);
	json_decref(body);
}

static json_t *local_build(const char *uuid, const char *repo, const char *cmd)
{
	return json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:i},s:[s],s:i}", "build", uuid, "attempt", 1, "job",
			 "j", "project", "p", "change", "1", "ref", "refs/changes/1", "repo", repo, "branch", "master",
			 "node", "name", "n1", "connection", "local", "port", 0, "commands", cmd, "timeout", 60);
}

/* A fake scheduler at ep and a real executor connected to it, past hello and welcome: returns
 * the ROUTER socket, fills the executor's run state, its thread and its routing id. */
static void *fake_sched_with_executor(env *t, const char *ep, xrun *xr, pthread_t *th, char rid[256], size_t *rlen)
{
	void *r = zmq_socket(t->zctx, ZMQ_ROUTER);
	int linger = 0;
	zmq_setsockopt(r, ZMQ_LINGER, &linger, sizeof(linger));
	assert_int_equal(zmq_bind(r, ep), 0);
	assert_int_equal(vz_executor_new(&xr->x, t->cfg, t->zctx, ep, &xr->e), 0);
	pthread_create(th, NULL, exec_thread, xr);
	vz_msg *m = vz_test_router_expect(r, VZ_MSG_HELLO, rid, rlen, 5000);
	assert_non_null(m);
	vz_msg_free(m);
	router_send(r, rid, *rlen, VZ_MSG_WELCOME,
		    json_pack("{s:s,s:i,s:i}", "scheduler_instance", "fake-1", "lease_ms", 10000, "heartbeat_ms", 200));
	return r;
}

/* Zuul's governor: with a sensor over its limit the executor offers no slots, and offers them
 * again once it is not (the limit is lowered while it runs). */
static void test_governed_executor_offers_no_slots(void **state)
{
	env *t = *state;
	t->cfg->executor.min_avail_mem = 100.0; /* never met: some memory is always in use */
	xrun xr = { 0 };
	pthread_t th;
	char rid[256];
	size_t rlen = 0;
	void *r = fake_sched_with_executor(t, "inproc://fake-sched-gov", &xr, &th, rid, &rlen);
	vz_msg *m = vz_test_router_expect(r, VZ_MSG_READY, rid, &rlen, 5000);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m->body, "free")), 0);
	vz_msg_free(m);
	m = vz_test_router_expect(r, VZ_MSG_HEARTBEAT, rid, &rlen, 5000);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m->body, "free")), 0);
	vz_msg_free(m);
	t->cfg->executor.min_avail_mem = 0;
	m = vz_test_router_expect(r, VZ_MSG_READY, rid, &rlen, 5000);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m->body, "free")), 4);
	vz_msg_free(m);
	xr.stop = 1;
	pthread_join(th, NULL);
	vz_executor_free(xr.x);
	zmq_close(r);
}

static void test_executor_cancel_and_result_resend(void **state)
{
	env *t = *state;
	xrun xr = { 0 };
	pthread_t th;
	char rid[256];
	size_t rlen = 0;
	void *r = fake_sched_with_executor(t, "inproc://fake-sched", &xr, &th, rid, &rlen);
	vz_msg *m = vz_test_router_expect(r, VZ_MSG_READY, rid, &rlen, 5000);
	assert_non_null(m);
	vz_msg_free(m);
	char *repo = vz_path_join(t->dir, "repos/p.git");

	/* a long build, canceled: ABORTED, quickly */
	router_send(r, rid, rlen, VZ_MSG_BUILD, local_build("b-cancel", repo, "sleep 30.7781"));
	m = vz_test_router_expect(r, VZ_MSG_STARTED, rid, &rlen, 10000);
	assert_non_null(m);
	vz_msg_free(m);
	usleep(300 * 1000);
	uint64_t t0 = vz_mono_ms();
	router_send(r, rid, rlen, VZ_MSG_CANCEL, json_pack("{s:s}", "build", "b-cancel"));
	m = vz_test_router_expect(r, VZ_MSG_RESULT, rid, &rlen, 10000);
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "result"), "ABORTED");
	assert_true(vz_mono_ms() - t0 < 5000);
	vz_msg_free(m);
	/* not acknowledged: the same result comes again (every 2 s) */
	m = vz_test_router_expect(r, VZ_MSG_RESULT, rid, &rlen, 5000);
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "build"), "b-cancel");
	vz_msg_free(m);
	router_send(r, rid, rlen, VZ_MSG_ACK, json_pack("{s:s,s:i}", "build", "b-cancel", "attempt", 1));
	/* acknowledged: no more re-sends */
	m = vz_test_router_expect(r, VZ_MSG_RESULT, rid, &rlen, 3000);
	assert_null(m);

	/* a new scheduler instance: the executor says hello again and re-sends what is unacked */
	router_send(r, rid, rlen, VZ_MSG_BUILD, local_build("b-ok", repo, "cat change-1"));
	m = vz_test_router_expect(r, VZ_MSG_RESULT, rid, &rlen, 10000);
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "result"), "SUCCESS");
	assert_int_equal(strlen(vz_msg_str(m, "commit")), 40);
	vz_msg_free(m);
	router_send(r, rid, rlen, VZ_MSG_HEARTBEAT, json_pack("{s:s}", "scheduler_instance", "fake-2"));
	m = vz_test_router_expect(r, VZ_MSG_HELLO, rid, &rlen, 5000);
	assert_non_null(m);
	vz_msg_free(m);
	router_send(r, rid, rlen, VZ_MSG_WELCOME,
		    json_pack("{s:s,s:i,s:i}", "scheduler_instance", "fake-2", "lease_ms", 10000, "heartbeat_ms", 200));
	m = vz_test_router_expect(r, VZ_MSG_RESULT, rid, &rlen, 3000);
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "build"), "b-ok");
	vz_msg_free(m);
	router_send(r, rid, rlen, VZ_MSG_ACK, json_pack("{s:s,s:i}", "build", "b-ok", "attempt", 1));

	xr.stop = 1;
	pthread_join(th, NULL);
	assert_int_equal(xr.rc, 0);
	/* acknowledged builds leave nothing behind in the work dir */
	char *bdir = vz_path_join(t->cfg->executor.work_dir, "builds/b-ok");
	assert_int_not_equal(access(bdir, F_OK), 0);
	free(bdir);
	vz_executor_free(xr.x);
	free(repo);
	zmq_close(r);
	/* the canceled command is gone */
	assert_int_not_equal(system("pgrep -f 'sleep 30[.]7781' >/dev/null"), 0);
}

/* The first stop drains: no new builds (0 slots, a late build answered REQUEUE), the running one
 * finishes SUCCESS and is delivered, then the executor returns. A second stop hands a running
 * build back at once: REQUEUE without log_size, its command killed. */
static void test_executor_two_stage_stop(void **state)
{
	env *t = *state;
	char *repo = vz_path_join(t->dir, "repos/p.git");
	xrun xr = { 0 };
	pthread_t th;
	char rid[256];
	size_t rlen = 0;
	void *r = fake_sched_with_executor(t, "inproc://fake-sched-stop1", &xr, &th, rid, &rlen);
	router_send(r, rid, rlen, VZ_MSG_BUILD, local_build("b-drain", repo, "sleep 1.2; echo drained"));
	vz_msg *m = vz_test_router_expect(r, VZ_MSG_STARTED, rid, &rlen, 10000);
	assert_non_null(m);
	vz_msg_free(m);
	xr.stop = 1;
	m = vz_test_router_expect(r, VZ_MSG_READY, rid, &rlen, 3000);
	assert_non_null(m);
	assert_int_equal(vz_msg_int(m, "free", -1), 0);
	vz_msg_free(m);
	router_send(r, rid, rlen, VZ_MSG_BUILD, local_build("b-late", repo, "true"));
	m = vz_test_router_expect(r, VZ_MSG_RESULT, rid, &rlen, 10000);
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "build"), "b-late");
	assert_string_equal(vz_msg_str(m, "result"), "REQUEUE");
	vz_msg_free(m);
	router_send(r, rid, rlen, VZ_MSG_ACK, json_pack("{s:s,s:i}", "build", "b-late", "attempt", 1));
	m = vz_test_router_expect(r, VZ_MSG_RESULT, rid, &rlen, 10000);
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "build"), "b-drain");
	assert_string_equal(vz_msg_str(m, "result"), "SUCCESS");
	vz_msg_free(m);
	router_send(r, rid, rlen, VZ_MSG_ACK, json_pack("{s:s,s:i}", "build", "b-drain", "attempt", 1));
	pthread_join(th, NULL); /* returns by itself once the result is acknowledged */
	assert_int_equal(xr.rc, 0);
	vz_executor_free(xr.x);
	zmq_close(r);

	xrun x2 = { 0 };
	r = fake_sched_with_executor(t, "inproc://fake-sched-stop2", &x2, &th, rid, &rlen);
	router_send(r, rid, rlen, VZ_MSG_BUILD, local_build("b-back", repo, "sleep 30.8123"));
	m = vz_test_router_expect(r, VZ_MSG_STARTED, rid, &rlen, 10000);
	assert_non_null(m);
	vz_msg_free(m);
	x2.stop = 1;
	usleep(300 * 1000);
	uint64_t t0 = vz_mono_ms();
	x2.stop = 2;
	m = vz_test_router_expect(r, VZ_MSG_RESULT, rid, &rlen, 10000);
	assert_non_null(m);
	assert_string_equal(vz_msg_str(m, "build"), "b-back");
	assert_string_equal(vz_msg_str(m, "result"), "REQUEUE");
	assert_string_equal(vz_msg_str(m, "message"), "the executor stopped during the build and handed it back");
	assert_null(json_object_get(m->body, "log_size"));
	assert_true(vz_mono_ms() - t0 < 5000);
	fprintf(stderr, "figure: second stop to REQUEUE result %llu ms\n", (unsigned long long)(vz_mono_ms() - t0));
	vz_msg_free(m);
	router_send(r, rid, rlen, VZ_MSG_ACK, json_pack("{s:s,s:i}", "build", "b-back", "attempt", 1));
	pthread_join(th, NULL);
	assert_int_equal(x2.rc, 0);
	vz_executor_free(x2.x);
	zmq_close(r);
	free(repo);
	assert_int_not_equal(system("pgrep -f 'sleep 30[.]8123' >/dev/null"), 0);
}

int main(void)
{
	vz_log_set_level(getenv("VZ_TEST_LOG") ? VZ_LOG_DEBUG : VZ_LOG_QUIET);
	vz_err e = { 0 };
	vz_workspace_global_init(&e);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_version_mismatch_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_then_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_cycle_and_duplicate_result, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_expiry_requeues_and_late_result_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restarted_executor_loses_builds_then_retry_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_files_resent_before_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incomplete_log_is_resent_before_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enqueue_errors_are_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requeue_keeps_the_attempt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handed_back_build_starts_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_executor_refuses_other_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_governed_executor_offers_no_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_executor_cancel_and_result_resend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_executor_two_stage_stop, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	vz_workspace_global_cleanup();
	return rc;
}
