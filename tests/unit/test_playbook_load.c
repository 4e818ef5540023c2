/* Unit tests for the playbook loader: the tree with file:line per task, blocks, imports and
 * roles resolved at load time, k=v arguments split as Ansible does, and every error naming
 * file:line, the task and the offending module or keyword; include loops and nesting capped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vz_playbook.h"
#include "vz_playbook_int.h"
#include "vz_testutil.h"

static char *dir;

static int setup(void **state)
{
	(void)state;
	dir = vz_test_tmpdir("vz-pbload");
	vz_test_write(dir, "site.yml",
		      "- hosts: all\n"
		      "  gather_facts: false\n"
		      "  roles:\n"
		      "    - web\n"
		      "  tasks:\n"
		      "    - name: first\n"
		      "      command: echo hi chdir=/tmp creates=/x\n"
		      "    - block:\n"
		      "        - shell: exit 1\n"
		      "      rescue:\n"
		      "        - debug: msg=rescued\n"
		      "      always:\n"
		      "        - ansible.builtin.debug:\n"
		      "            msg: always\n"
		      "    - import_tasks: inc/more.yml\n"
		      "    - include_tasks: \"{{ x }}.yml\"\n"
		      "  handlers:\n"
		      "    - name: h\n"
		      "      command: echo h\n");
	vz_test_write(dir, "inc/more.yml", "- name: imported\n  debug: msg=\"a b\" verbosity=1\n");
	vz_test_write(dir, "roles/web/tasks/main.yml", "- name: role task\n  debug: msg=web\n");
	vz_test_write(dir, "roles/web/defaults/main.yml", "port: 80\n");
	vz_test_write(dir, "roles/web/handlers/main.yml", "- name: restart\n  command: echo r\n");
	vz_test_write(dir, "roles/web/meta/main.yml", "dependencies: [base]\n");
	vz_test_write(dir, "roles/base/tasks/main.yml", "- name: base task\n  command: echo base\n");
	vz_test_write(dir, "loop.yml", "- hosts: all\n  tasks:\n    - import_tasks: a.yml\n");
	vz_test_write(dir, "a.yml", "- import_tasks: b.yml\n");
	vz_test_write(dir, "b.yml", "- debug: msg=b\n- import_tasks: a.yml\n");
	vz_test_write(dir, "selfloop/tasks.yml", "- import_tasks: tasks.yml\n");
	vz_test_write(dir, "selfloop/pb.yml", "- hosts: all\n  tasks:\n    - import_tasks: tasks.yml\n");
	vz_test_write(dir, "roles/cyc1/meta/main.yml", "dependencies: [cyc2]\n");
	vz_test_write(dir, "roles/cyc2/meta/main.yml", "dependencies: [cyc1]\n");
	vz_test_write(dir, "cyc.yml", "- hosts: all\n  roles: [cyc1]\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vz_test_rm(dir);
	free(dir);
	return 0;
}

static json_t *path_get(json_t *j, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *save = NULL, *t = strtok_r(buf, ".", &save); t && j; t = strtok_r(NULL, ".", &save)) {
		if (*t >= '0' && *t <= '9')
			j = json_array_get(j, (size_t)atoi(t));
		else
			j = json_object_get(j, t);
	}
	return j;
}

static void test_tree(void **state)
{
	(void)state;
	char p[1024];
	snprintf(p, sizeof(p), "%s/site.yml", dir);
	vz_playbook *pb = NULL;
	vz_err e = { 0 };
	if (vz_playbook_load(&pb, p, &e))
		fail_msg("%s", e.msg);
	json_t *d = vz_playbook_describe(pb);
	/* roles first: a block for web, whose first item is the block of its dependency base */
	assert_string_equal(json_string_value(path_get(d, "0.tasks.0.kind")), "block");
	assert_string_equal(json_string_value(path_get(d, "0.tasks.0.role")), "web");
	assert_string_equal(json_string_value(path_get(d, "0.tasks.0.block.0.role")), "base");
	assert_string_equal(json_string_value(path_get(d, "0.tasks.0.block.0.block.0.name")), "base task");
	assert_string_equal(json_string_value(path_get(d, "0.tasks.0.block.1.name")), "role task");
	assert_int_equal(json_integer_value(path_get(d, "0.tasks.0.block.1.line")), 1);
	/* the play's own tasks with file:line */
	assert_string_equal(json_string_value(path_get(d, "0.tasks.1.name")), "first");
	assert_int_equal(json_integer_value(path_get(d, "0.tasks.1.line")), 6);
	assert_string_equal(json_string_value(path_get(d, "0.tasks.1.args._raw_params")), "echo hi");
	assert_string_equal(json_string_value(path_get(d, "0.tasks.1.args.chdir")), "/tmp");
	assert_string_equal(json_string_value(path_get(d, "0.tasks.1.args.creates")), "/x");
	assert_string_equal(json_string_value(path_get(d, "0.tasks.2.block.0.action")), "shell");
	assert_int_equal(json_integer_value(path_get(d, "0.tasks.2.block.0.line")), 9);
	assert_string_equal(json_string_value(path_get(d, "0.tasks.2.rescue.0.args.msg")), "rescued");
	assert_string_equal(json_string_value(path_get(d, "0.tasks.2.always.0.action")), "debug");
	/* import_tasks is a block of the imported file's tasks, with their own file:line */
	const char *f = json_string_value(path_get(d, "0.tasks.3.block.0.file"));
	assert_non_null(strstr(f, "inc/more.yml"));
	assert_int_equal(json_integer_value(path_get(d, "0.tasks.3.block.0.line")), 1);
	assert_string_equal(json_string_value(path_get(d, "0.tasks.3.block.0.args.msg")), "a b");
	assert_string_equal(json_string_value(path_get(d, "0.tasks.3.block.0.args.verbosity")), "1");
	assert_string_equal(json_string_value(path_get(d, "0.tasks.4.kind")), "include_tasks");
	/* the play's handlers and then the role's */
	assert_string_equal(json_string_value(path_get(d, "0.handlers.0.name")), "h");
	assert_string_equal(json_string_value(path_get(d, "0.handlers.1.name")), "restart");
	json_decref(d);
	vz_playbook_free(pb);
}

static void expect_error(const char *yaml, const char *needle)
{
	vz_playbook *pb = NULL;
	vz_err e = { 0 };
	int rc = vz_playbook_parse(&pb, yaml, strlen(yaml), "pb.yml", dir, &e);
	assert_int_not_equal(rc, 0);
	assert_null(pb);
	if (!strstr(e.msg, needle))
		fail_msg("error '%s' lacks '%s'", e.msg, needle);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("- hosts: all\n  tasks:\n    - name: t1\n      copyx: src=a\n",
		     "pb.yml:4:7: task 't1': couldn't resolve module/action 'copyx'");
	expect_error("- hosts: all\n  tasks:\n    - name: t2\n      command: echo\n      whenn: x\n",
		     "pb.yml:5:7: task 't2': 'whenn' is not a valid attribute for a Task");
	expect_error("- hosts: all\n  tasks:\n    - command: a\n      shell: b\n", "conflicting action statements: command, shell");
	expect_error("- hosts: all\n  tasks:\n    - name: x\n", "no module/action detected");
	expect_error("- tasks: []\n", "the field 'hosts' is required");
	expect_error("- hosts: all\n  bogus: 1\n", "'bogus' is not a valid attribute for a Play");
	expect_error("- hosts: all\n  tasks:\n    - debug: msg=x\n      rescue: []\n", "'rescue' without 'block'");
	expect_error("- hosts: all\n  tasks:\n    - import_tasks: nothere.yml\n", "cannot find the file 'nothere.yml'");
	expect_error("- hosts: all\n  roles: [nosuchrole]\n", "the role 'nosuchrole' was not found");
	expect_error("- hosts: all\n  tasks:\n    - debug: {msg: x, bogus: 1}\n", "Invalid options for debug: bogus");
	expect_error("- hosts: all\n  tasks:\n    - command: a\n      loop: [1]\n      with_items: [2]\n", "more than one loop");
	expect_error("- hosts: all\n  tasks:\n    - import_tasks: x.yml\n      loop: [1]\n", "cannot use loops on 'import_tasks'");
	expect_error("- hosts: all\n  tasks:\n    - meta: reset_connection\n", "meta: 'reset_connection' is not supported");
	expect_error("- hosts: all\n  tasks:\n    - command: a\n      become_method: su\n", "become_method 'su'");
	expect_error("- hosts: all\n  tasks: {a: 1}\n", "'tasks' must be a list");
	expect_error("a: 1\n", "a playbook must be a list of plays");
	expect_error("- hosts: all\n  tasks:\n  - command: [\n", "pb.yml:4:1");
	expect_error("- hosts: all\n  strategy: free\n", "only strategy: linear");
}

static void test_loops_capped(void **state)
{
	(void)state;
	static const char *const files[] = { "loop.yml", "selfloop/pb.yml", "cyc.yml" };
	for (size_t i = 0; i < 3; i++) {
		char p[1024];
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		vz_playbook *pb = NULL;
		vz_err e = { 0 };
		assert_int_not_equal(vz_playbook_load(&pb, p, &e), 0);
		assert_null(pb);
		if (!strstr(e.msg, "deeper than"))
			fail_msg("%s: '%s'", files[i], e.msg);
	}
}

static void test_kv(void **state)
{
	(void)state;
	static const char *const keys[] = { "chdir", "creates", NULL };
	json_t *o = json_object();
	vz_err e = { 0 };
	assert_int_equal(vz_pb_parse_kv(o, "echo 'a b' x=1 chdir=\"/t mp\" {{ a | default('c d') }} creates=/c", keys, 1, &e), 0);
	assert_string_equal(json_string_value(json_object_get(o, "_raw_params")), "echo 'a b' x=1 {{ a | default('c d') }}");
	assert_string_equal(json_string_value(json_object_get(o, "chdir")), "/t mp");
	assert_string_equal(json_string_value(json_object_get(o, "creates")), "/c");
	json_decref(o);
	o = json_object();
	assert_int_equal(vz_pb_parse_kv(o, "msg='hello there' var=x", NULL, 0, &e), 0);
	assert_string_equal(json_string_value(json_object_get(o, "msg")), "hello there");
	assert_int_equal(vz_pb_parse_kv(o, "no equals here", NULL, 0, &e), VZ_EINVAL);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_loops_capped),
		cmocka_unit_test(test_kv),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
