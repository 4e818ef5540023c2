/* A build on a multi-node nodeset (vz_build on two real loopback sshd nodes): both nodes are
 * opened, the workspace is sent to each, and the playbooks see both as hosts of the inventory in
 * their groups, each reached through its own sshd (its port in $SSH_CONNECTION), with its own
 * nodepool and host_vars; a play for one group runs on that node only; on shared nodes (a
 * directory per build) zuul.project.src_dir leads there. A node that cannot be
 * reached makes the build RETRY naming it, with node_failed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "vz_build.h"
#include "vz_node.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

static char *g_tmp, *g_repo, *g_marks;
static vz_test_sshd *g_s1, *g_s2;

static int setup(void **state)
{
	(void)state;
	vz_err e = { 0 };
	assert_int_equal(vz_workspace_global_init(&e), 0);
	assert_int_equal(vz_node_global_init(&e), 0);
	g_tmp = vz_test_tmpdir("vz-multinode");
	g_repo = vz_path_join(g_tmp, "p.git");
	g_marks = vz_path_join(g_tmp, "marks");
	assert_int_equal(vz_test_sh(NULL, "set -e; cd %s; mkdir -m 0777 marks; chmod 0755 .; git init -q -b main w; cd w;"
					  " git config user.email t@t; git config user.name t; mkdir pb; echo data > f",
				    g_tmp), 0);
	char *pbdir = vz_path_join(g_tmp, "w/pb");
	vz_test_write(pbdir, "multi.yaml",
		      "- hosts: all\n  tasks:\n"
		      "    - shell: \"echo {{ inventory_hostname }} {{ nodepool.label }} {{ role | default('none') }}"
		      " $SSH_CONNECTION > {{ marks }}/who-{{ inventory_hostname }}\"\n"
		      "    - shell: test -f {{ zuul.project.src_dir }}/f\n"
		      "- hosts: compute\n  tasks:\n"
		      "    - shell: echo compute > {{ marks }}/compute-{{ inventory_hostname }}\n");
	free(pbdir);
	assert_int_equal(vz_test_sh(NULL, "set -e; cd %s/w; git add -A; git commit -qm base; cd ..; git clone -q --bare w %s",
				    g_tmp, g_repo), 0);
	assert_int_equal(vz_test_sshd_start(&g_s1), 0);
	assert_int_equal(vz_test_sshd_start(&g_s2), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vz_test_sshd_stop(g_s1);
	vz_test_sshd_stop(g_s2);
	vz_test_rm(g_tmp);
	free(g_tmp);
	free(g_repo);
	free(g_marks);
	vz_workspace_global_cleanup();
	return 0;
}

static json_t *node_json(const vz_test_sshd *s, const char *name, const char *group, const char *label, int port)
{
	return json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:[s],s:b}", "name", name, "connection", "ssh", "host", "127.0.0.1",
			 "port", port ? port : vz_test_sshd_port(s), "user", vz_test_sshd_user(s), "key", vz_test_sshd_key(s),
			 "known_hosts", vz_test_sshd_known_hosts(s), "label", label, "groups", group, "shared", 0);
}

typedef struct sink {
	vz_buf log;
	json_t *result;
} sink;

static void emit(void *ctx, vz_msg_type type, json_t *body)
{
	sink *s = ctx;
	if (type == VZ_MSG_LOG)
		vz_buf_add(&s->log, json_string_value(json_object_get(body, "data")),
			   json_string_length(json_object_get(body, "data")));
	else if (type == VZ_MSG_RESULT)
		s->result = json_incref(body);
	json_decref(body);
}

static void run(const char *uuid, json_t *n1, json_t *n2, sink *s)
{
	json_t *req = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:O,s:[O,O],s:[],s:i,s:{s:[{s:s,s:s,s:b}]},"
				"s:{s:s},s:{s:{s:s}}}",
				"build", uuid, "attempt", 1, "job", "j", "project", "p", "canonical_project", "example.org/p",
				"repo", g_repo, "ref", "refs/heads/main", "branch", "main", "node", n1, "nodes", n1, n2,
				"commands", "timeout", 120, "playbooks", "run", "project", "example.org/p", "path",
				"pb/multi.yaml", "trusted", 1, "vars", "marks", g_marks, "host_vars", "n2", "role", "worker");
	char *work = vz_path_join(g_tmp, "work");
	vz_build_env env = { .work_dir = work, .executor = "t" };
	volatile int cancel = 0;
	memset(s, 0, sizeof(*s));
	vz_buf_init(&s->log, 1u << 22);
	vz_build_run(req, &env, &cancel, emit, s);
	json_decref(req);
	free(work);
	assert_non_null(s->result);
}

static char *mark(const char *name)
{
	return vz_test_out("cat %s/%s 2>/dev/null || true", g_marks, name);
}

static void test_two_nodes(void **state)
{
	(void)state;
	json_t *n1 = node_json(g_s1, "n1", "controller", "small", 0), *n2 = node_json(g_s2, "n2", "compute", "big", 0);
	sink s;
	run("mn1", n1, n2, &s);
	const char *res = json_string_value(json_object_get(s.result, "result"));
	if (strcmp(res, "SUCCESS") != 0) {
		fprintf(stderr, "%s", vz_buf_cstr(&s.log));
		fail_msg("result %s: %s", res, json_string_value(json_object_get(s.result, "message")));
	}
	const char *log = vz_buf_cstr(&s.log);
	assert_non_null(strstr(log, "delivered to n1:"));
	assert_non_null(strstr(log, "delivered to n2:"));
	/* each host ran through its own sshd: the server port in $SSH_CONNECTION */
	char want1[64], want2[64];
	snprintf(want1, sizeof(want1), " 127.0.0.1 %d", vz_test_sshd_port(g_s1));
	snprintf(want2, sizeof(want2), " 127.0.0.1 %d", vz_test_sshd_port(g_s2));
	char *w1 = mark("who-n1"), *w2 = mark("who-n2");
	assert_true(vz_startswith(w1, "n1 small none "));
	assert_true(vz_startswith(w2, "n2 big worker "));
	assert_non_null(strstr(w1, want1));
	assert_non_null(strstr(w2, want2));
	free(w1);
	free(w2);
	/* the compute play ran on n2 only */
	char *c1 = mark("compute-n1"), *c2 = mark("compute-n2");
	assert_string_equal(c1, "");
	assert_string_equal(c2, "compute");
	free(c1);
	free(c2);
	json_decref(s.result);
	vz_buf_free(&s.log);
	json_decref(n1);
	json_decref(n2);
}

/* On shared nodes (a directory per build) zuul.project.src_dir points into that directory. */
static void test_shared_nodes_src_dir(void **state)
{
	(void)state;
	json_t *n1 = node_json(g_s1, "n1", "controller", "small", 0), *n2 = node_json(g_s2, "n2", "compute", "big", 0);
	json_object_set_new(n1, "shared", json_true());
	json_object_set_new(n2, "shared", json_true());
	sink s;
	run("mn3", n1, n2, &s);
	const char *res = json_string_value(json_object_get(s.result, "result"));
	if (strcmp(res, "SUCCESS") != 0) {
		fprintf(stderr, "%s", vz_buf_cstr(&s.log));
		fail_msg("result %s: %s", res, json_string_value(json_object_get(s.result, "message")));
	}
	assert_non_null(strstr(vz_buf_cstr(&s.log), "delivered to n2:~/vinz-builds/mn3/src/example.org/p"));
	json_decref(s.result);
	vz_buf_free(&s.log);
	json_decref(n1);
	json_decref(n2);
}

static void test_second_node_unreachable(void **state)
{
	(void)state;
	/* n2 points at a port nothing listens on */
	json_t *n1 = node_json(g_s1, "n1", "controller", "small", 0), *n2 = node_json(g_s2, "n2", "compute", "big", 1);
	sink s;
	run("mn2", n1, n2, &s);
	assert_string_equal(json_string_value(json_object_get(s.result, "result")), "RETRY");
	assert_true(json_is_true(json_object_get(s.result, "node_failed")));
	assert_non_null(strstr(json_string_value(json_object_get(s.result, "message")), "n2"));
	json_decref(s.result);
	vz_buf_free(&s.log);
	json_decref(n1);
	json_decref(n2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_nodes),
		cmocka_unit_test(test_shared_nodes_src_dir),
		cmocka_unit_test(test_second_node_unreachable),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
