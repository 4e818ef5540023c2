/* test_playbook_engine: the engine API as the executor will use it, on a real sshd: connections
 * the caller already holds (node_lookup; the engine must not close them), extra vars such as the
 * zuul dict at the highest precedence, job-output files in a log dir, the cancel flag and the
 * run timeout stopping a running command. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vz_inventory.h"
#include "vz_playbook.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"

static vz_test_sshd *sshd;
static vz_node *held;
static char *dir;
static int lookups;

static vz_node *lookup(void *ctx, const char *host)
{
	(void)ctx;
	lookups++;
	return !strcmp(host, "node") ? held : NULL;
}

static int setup(void **state)
{
	(void)state;
	vz_err e = { 0 };
	vz_node_spec spec;
	if (vz_node_global_init(&e) || vz_test_sshd_start(&sshd))
		return -1;
	vz_test_sshd_spec(sshd, &spec);
	if (vz_node_connect(&held, &spec, &e)) {
		fprintf(stderr, "%s\n", e.msg);
		return -1;
	}
	dir = vz_test_tmpdir("vz-pbengine");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vz_node_close(held);
	vz_test_sshd_stop(sshd);
	vz_test_rm(dir);
	free(dir);
	vz_node_global_cleanup();
	return 0;
}

static vz_inventory *inventory(void)
{
	vz_inventory *inv = vz_inventory_new();
	vz_err e = { 0 };
	/* no address at all: only the held connection can reach it */
	json_t *v = json_pack("{s:s,s:s}", "ansible_host", "192.0.2.1", "nodepool_label", "debian");
	assert_int_equal(vz_inventory_add_host(inv, "node", "all_nodes", v, &e), 0);
	json_decref(v);
	return inv;
}

static void test_held_connection_and_zuul_vars(void **state)
{
	(void)state;
	vz_test_write(dir, "job.yml",
		      "- hosts: all\n"
		      "  gather_facts: false\n"
		      "  vars:\n"
		      "    zuul: {project: {name: overridden}}\n"
		      "  tasks:\n"
		      "    - command: echo {{ zuul.project.name }} {{ nodepool_label }}\n"
		      "      register: r\n"
		      "    - shell: echo streamed-line; echo second-line\n"
		      "    - zuul_return:\n"
		      "        data: {child: {v: \"{{ r.stdout }}\"}}\n");
	char pb[1024], logs[1024];
	snprintf(pb, sizeof(pb), "%s/job.yml", dir);
	snprintf(logs, sizeof(logs), "%s/logs", dir);
	const char *pbs[] = { pb };
	vz_inventory *inv = inventory();
	json_t *extra = json_pack("{s:{s:{s:s},s:{s:s}}}", "zuul", "project", "name", "org/proj", "executor",
				  "result_data_file", "");
	char rdf[1100];
	snprintf(rdf, sizeof(rdf), "%s/results.json", dir);
	json_object_set_new(json_object_get(json_object_get(extra, "zuul"), "executor"), "result_data_file", json_string(rdf));
	vz_playbook_opts o = { .playbooks = pbs, .nplaybooks = 1, .inventory = inv, .extra_vars = extra,
			       .node_lookup = lookup, .log_dir = logs, .want_json = 1, .untrusted = 1 };
	vz_playbook_result res;
	vz_err e = { 0 };
	lookups = 0;
	assert_int_equal(vz_playbook_run(&res, &o, &e), 0);
	assert_int_equal(res.exit_code, 0);
	assert_true(lookups >= 1);
	json_t *t0 = json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(res.json, "plays"), 0),
								     "tasks"), 0), "hosts");
	/* extra vars beat play vars; inventory vars reach the templates */
	assert_string_equal(json_string_value(json_object_get(json_object_get(t0, "node"), "stdout")), "org/proj debian");
	json_decref(res.json);
	/* the held connection still works: the engine did not close it */
	vz_node_result nr;
	vz_node_cmd c = { .command = "true" };
	assert_int_equal(vz_node_exec(held, &c, &nr, &e), 0);
	/* job-output.txt streamed the command's lines; job-output.json has a record per task */
	vz_buf b = VZ_BUF_INIT(1u << 20);
	char p[1200];
	snprintf(p, sizeof(p), "%s/job-output.txt", logs);
	assert_int_equal(vz_read_file(p, 1u << 20, &b, &e), 0);
	assert_non_null(strstr(vz_buf_cstr(&b), " | node | streamed-line\n"));
	assert_non_null(strstr(vz_buf_cstr(&b), " | node | second-line\n"));
	vz_buf_reset(&b);
	snprintf(p, sizeof(p), "%s/job-output.json", logs);
	assert_int_equal(vz_read_file(p, 1u << 20, &b, &e), 0);
	json_t *j = json_loads(vz_buf_cstr(&b), 0, NULL);
	assert_int_equal(json_array_size(json_object_get(json_array_get(json_object_get(json_array_get(j, 0), "plays"), 0),
							 "tasks")), 3);
	json_decref(j);
	vz_buf_reset(&b);
	assert_int_equal(vz_read_file(rdf, 1u << 20, &b, &e), 0);
	assert_non_null(strstr(vz_buf_cstr(&b), "\"v\": \"org/proj debian\""));
	vz_buf_free(&b);
	json_decref(extra);
	vz_inventory_free(inv);
}

typedef struct runarg {
	vz_playbook_opts *o;
	vz_playbook_result res;
	int rc;
} runarg;

static void *run_thread(void *p)
{
	runarg *a = p;
	vz_err e = { 0 };
	a->rc = vz_playbook_run(&a->res, a->o, &e);
	return NULL;
}

static void test_cancel_and_timeout(void **state)
{
	(void)state;
	vz_test_write(dir, "slow.yml",
		      "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: sleep 4242\n    - debug: msg=never\n");
	char pb[1024];
	snprintf(pb, sizeof(pb), "%s/slow.yml", dir);
	const char *pbs[] = { pb };
	vz_inventory *inv = inventory();
	volatile int cancel = 0;
	vz_playbook_opts o = { .playbooks = pbs, .nplaybooks = 1, .inventory = inv, .node_lookup = lookup,
			       .cancel = &cancel, .want_json = 1 };
	runarg a = { .o = &o };
	pthread_t th;
	uint64_t t0 = vz_mono_ms();
	assert_int_equal(pthread_create(&th, NULL, run_thread, &a), 0);
	usleep(500 * 1000);
	cancel = 1;
	pthread_join(th, NULL);
	assert_true(vz_mono_ms() - t0 < 15000);
	assert_int_not_equal(a.res.exit_code, 0);
	json_decref(a.res.json);
	/* the run timeout: the task fails and the playbook stops */
	vz_playbook_opts o2 = { .playbooks = pbs, .nplaybooks = 1, .inventory = inv, .node_lookup = lookup,
				.timeout_ms = 1000, .want_json = 1 };
	vz_playbook_result res;
	vz_err e = { 0 };
	t0 = vz_mono_ms();
	assert_int_equal(vz_playbook_run(&res, &o2, &e), 0);
	assert_true(vz_mono_ms() - t0 < 15000);
	assert_int_equal(res.exit_code, 2);
	assert_true(res.timed_out);
	json_decref(res.json);
	/* nothing is left running on the node */
	vz_node_result nr;
	vz_node_cmd c = { .command = "! pgrep -f 'sleep 424[2]'" };
	assert_int_equal(vz_node_exec(held, &c, &nr, &e), 0);
	assert_int_equal(nr.exit_status, 0);
	vz_inventory_free(inv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_held_connection_and_zuul_vars),
		cmocka_unit_test(test_cancel_and_timeout),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
