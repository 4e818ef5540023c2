/* CURVE between scheduler and executors, with real processes' code in one test process: keys made
 * by vz_curve_keygen, a scheduler listening on loopback tcp as a CURVE server, a real executor with
 * an authorized key running a build end to end, and clients that must be refused: a key that is
 * not listed, a client expecting another server key, and a client without CURVE. Refusals are
 * observed on the client's socket monitor (handshake events), never by timing alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "vz_admin.h"
#include "vz_config.h"
#include "vz_curve.h"
#include "vz_executor.h"
#include "vz_proto.h"
#include "vz_sched.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

typedef struct env {
	char *dir, ep[64], admin_ep[600];
	vz_config *cfg;
	void *zctx;
	vz_sched *s;
	vz_executor *x;
	pthread_t sth, xth;
	volatile sig_atomic_t stop, xstop;
	vz_curve_keypair sched_kp, exec_kp, other_kp;
} env;

static void *sched_main(void *arg)
{
	env *t = arg;
	vz_err e = { 0 };
	vz_sched_run(t->s, &t->stop, &e);
	return NULL;
}

static void *exec_main(void *arg)
{
	env *t = arg;
	vz_err e = { 0 };
	vz_executor_run(t->x, &t->xstop, &e);
	return NULL;
}

static int free_port(void)
{
	void *c = zmq_ctx_new(), *s = zmq_socket(c, ZMQ_REP);
	char ep[64];
	size_t n = sizeof(ep);
	int port = 0;
	if (zmq_bind(s, "tcp://127.0.0.1:*") == 0 && zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &n) == 0)
		port = atoi(strrchr(ep, ':') + 1);
	zmq_close(s);
	zmq_ctx_term(c);
	return port;
}

static int setup(void **state)
{
	if (!vz_curve_available()) {
		fprintf(stderr, "libzmq has no CURVE: test_curve cannot run\n");
		return -1;
	}
	env *t = vz_xcalloc(1, sizeof(*t));
	vz_err e = { 0 };
	assert_int_equal(vz_workspace_global_init(&e), 0);
	t->dir = vz_test_tmpdir("vz-curve");
	char *k;
	k = vz_path_join(t->dir, "sched.key");
	assert_int_equal(vz_curve_keygen(k, &t->sched_kp, &e), 0);
	free(k);
	k = vz_path_join(t->dir, "exec.key");
	assert_int_equal(vz_curve_keygen(k, &t->exec_kp, &e), 0);
	free(k);
	k = vz_path_join(t->dir, "other.key");
	assert_int_equal(vz_curve_keygen(k, &t->other_kp, &e), 0);
	free(k);
	/* the list admits exec only; comments and blank lines around it */
	char list[300];
	snprintf(list, sizeof(list), "# executors allowed to connect\n\n%s exec-1\n", t->exec_kp.public_key);
	vz_test_write(t->dir, "executors.keys", list);
	char *repo = vz_path_join(t->dir, "repos/p.git");
	vz_test_git_repo(repo, 1, NULL);
	free(repo);
	snprintf(t->ep, sizeof(t->ep), "tcp://127.0.0.1:%d", free_port());
	char yaml[2048];
	snprintf(yaml, sizeof(yaml),
		 "state_dir: state\nlog_level: error\n"
		 "scheduler:\n  listen: %s\n  admin: ipc://admin.sock\n  curve_key: sched.key\n  curve_executors: executors.keys\n"
		 "  heartbeat: 0.2\n  lease: 5\n"
		 "executor:\n  name: exec-1\n  curve_key: exec.key\n  scheduler_key: sched.key.pub\n  capacity: 2\n"
		 "connections:\n  - name: g\n    driver: git\n    baseurl: repos\n"
		 "nodes:\n  - name: n1\n    connection: local\n"
		 "pipelines:\n  - name: check\n    manager: independent\n"
		 "jobs:\n  - name: j\n    run: [\"test -f change-1\"]\n"
		 "projects:\n  - name: p\n    connection: g\n    check:\n      jobs: [j]\n",
		 t->ep);
	vz_test_write(t->dir, "vinz.yaml", yaml);
	char *cp = vz_path_join(t->dir, "vinz.yaml");
	int rc = vz_config_load(&t->cfg, cp, NULL, &e);
	if (rc)
		fprintf(stderr, "%s\n", vz_err_msg(&e));
	assert_int_equal(rc, 0);
	free(cp);
	snprintf(t->admin_ep, sizeof(t->admin_ep), "%s", t->cfg->scheduler.admin);
	t->zctx = zmq_ctx_new();
	assert_int_equal(vz_sched_new(&t->s, t->cfg, t->zctx, NULL, &e), 0);
	assert_int_equal(pthread_create(&t->sth, NULL, sched_main, t), 0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	env *t = *state;
	if (t->x) {
		t->xstop = 1;
		pthread_join(t->xth, NULL);
		vz_executor_free(t->x);
	}
	t->stop = 1;
	pthread_join(t->sth, NULL);
	vz_sched_free(t->s);
	zmq_ctx_term(t->zctx);
	vz_config_free(t->cfg);
	vz_test_rm(t->dir);
	free(t->dir);
	free(t);
	vz_workspace_global_cleanup();
	return 0;
}

/* Connects a DEALER (CURVE client when kp is given) with a monitor; returns the first handshake
 * event within 10 s (ZMQ_EVENT_HANDSHAKE_*, or ZMQ_EVENT_DISCONNECTED), 0 when nothing happened. */
static int handshake(env *t, const vz_curve_keypair *kp, const char *server_key)
{
	void *s = zmq_socket(t->zctx, ZMQ_DEALER);
	int linger = 0;
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	vz_err e = { 0 };
	if (kp)
		assert_int_equal(vz_curve_client(s, kp, server_key, &e), 0);
	static int n;
	char mon[64];
	snprintf(mon, sizeof(mon), "inproc://curve-mon-%d", n++);
	assert_int_equal(zmq_socket_monitor(s, mon, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
							    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
							    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_DISCONNECTED),
			 0);
	void *m = zmq_socket(t->zctx, ZMQ_PAIR);
	zmq_setsockopt(m, ZMQ_LINGER, &linger, sizeof(linger));
	assert_int_equal(zmq_connect(m, mon), 0);
	assert_int_equal(zmq_connect(s, t->ep), 0);
	int outcome = 0;
	uint64_t until = vz_mono_ms() + 10000;
	while (vz_mono_ms() < until) {
		zmq_pollitem_t pi = { m, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(&pi, 1, 100) <= 0)
			continue;
		zmq_msg_t ev, addr;
		zmq_msg_init(&ev);
		zmq_msg_init(&addr);
		zmq_msg_recv(&ev, m, 0);
		zmq_msg_recv(&addr, m, 0);
		uint16_t id;
		memcpy(&id, zmq_msg_data(&ev), sizeof(id));
		zmq_msg_close(&ev);
		zmq_msg_close(&addr);
		outcome = id;
		break;
	}
	zmq_close(s);
	zmq_close(m);
	return outcome;
}

static void test_refusals(void **state)
{
	env *t = *state;
	/* listed key, right server key: the handshake succeeds */
	assert_int_equal(handshake(t, &t->exec_kp, t->sched_kp.public_key), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
	/* a key the scheduler does not list: refused by the authenticator */
	assert_int_equal(handshake(t, &t->other_kp, t->sched_kp.public_key), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
	/* the right client key, but it expects another scheduler (a man in the middle) */
	/* (the server may just drop such a peer: no event at all is a refusal too) */
	assert_int_not_equal(handshake(t, &t->exec_kp, t->other_kp.public_key), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
	/* no CURVE at all */
	assert_int_not_equal(handshake(t, NULL, NULL), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
	/* and the scheduler still admits the listed executor afterwards */
	assert_int_equal(handshake(t, &t->exec_kp, t->sched_kp.public_key), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
}

static void test_executor_runs_a_build(void **state)
{
	env *t = *state;
	vz_err e = { 0 };
	assert_int_equal(vz_executor_new(&t->x, t->cfg, t->zctx, NULL, &e), 0);
	assert_int_equal(pthread_create(&t->xth, NULL, exec_main, t), 0);
	json_t *d = NULL;
	/* vz_admin_call borrows its arguments */
	json_t *args = json_pack("{s:s,s:s,s:s,s:s}", "pipeline", "check", "project", "p", "ref", "refs/changes/1", "id", "1");
	assert_int_equal(vz_admin_call(t->zctx, t->admin_ep, "enqueue", args, &d, 30000, &e), 0);
	json_decref(args);
	json_decref(d);
	args = json_pack("{s:s}", "change", "1");
	const char *result = NULL;
	json_t *bs = NULL;
	for (int i = 0; i < 1200 && !result; i++) {
		json_decref(bs);
		bs = NULL;
		assert_int_equal(vz_admin_call(t->zctx, t->admin_ep, "builds", args, &bs, 30000, &e), 0);
		json_t *b = json_array_get(bs, 0);
		if (b && json_is_true(json_object_get(b, "final")))
			result = json_string_value(json_object_get(b, "result"));
		else
			usleep(50000);
	}
	assert_non_null(result);
	assert_string_equal(result, "SUCCESS");
	json_decref(bs);
	json_decref(args);
}

static void test_keys_and_config(void **state)
{
	env *t = *state;
	vz_err e = { 0 };
	/* a key file others can read is refused */
	char *k = vz_path_join(t->dir, "sched.key");
	assert_int_equal(vz_test_sh(NULL, "chmod 644 '%s'", k), 0);
	vz_curve_keypair kp;
	assert_int_equal(vz_curve_load_keypair(&kp, k, &e), VZ_EINVAL);
	assert_non_null(strstr(vz_err_msg(&e), "chmod 600"));
	assert_int_equal(vz_test_sh(NULL, "chmod 600 '%s'", k), 0);
	vz_err_clear(&e);
	assert_int_equal(vz_curve_load_keypair(&kp, k, &e), 0);
	assert_string_equal(kp.public_key, t->sched_kp.public_key);
	/* keygen never overwrites */
	vz_err_clear(&e);
	assert_int_equal(vz_curve_keygen(k, NULL, &e), VZ_EIO);
	free(k);
	/* public keys: inline or from a .pub file; garbage refused */
	char pub[VZ_CURVE_KEYLEN + 1];
	assert_int_equal(vz_curve_load_public(pub, t->exec_kp.public_key, &e), 0);
	k = vz_path_join(t->dir, "exec.key.pub");
	assert_int_equal(vz_curve_load_public(pub, k, &e), 0);
	assert_string_equal(pub, t->exec_kp.public_key);
	free(k);
	vz_err_clear(&e);
	assert_int_not_equal(vz_curve_load_public(pub, "not-a-key", &e), 0);
	/* a malformed authorized list names its line */
	vz_test_write(t->dir, "bad.keys", "# ok\nshort\n");
	char *bad = vz_path_join(t->dir, "bad.keys");
	vz_curve_zap *z = NULL;
	vz_err_clear(&e);
	void *c2 = zmq_ctx_new();
	assert_int_equal(vz_curve_zap_start(&z, c2, bad, &e), VZ_EINVAL);
	assert_non_null(strstr(vz_err_msg(&e), "bad.keys:2:"));
	zmq_ctx_term(c2);
	free(bad);
	/* endpoints that never leave the host */
	assert_true(vz_endpoint_is_local("inproc://x"));
	assert_true(vz_endpoint_is_local("ipc:///run/a"));
	assert_true(vz_endpoint_is_local("tcp://127.0.0.1:1"));
	assert_true(vz_endpoint_is_local("tcp://[::1]:1"));
	assert_true(vz_endpoint_is_local("tcp://localhost:7400"));
	assert_false(vz_endpoint_is_local("tcp://0.0.0.0:1"));
	assert_false(vz_endpoint_is_local("tcp://*:1"));
	assert_false(vz_endpoint_is_local("tcp://10.1.2.3:1"));
	assert_false(vz_endpoint_is_local("tcp://127.example.org:1"));
	assert_false(vz_endpoint_is_local("tcp://[::2]:1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_executor_runs_a_build),
		cmocka_unit_test(test_keys_and_config),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
