/* Unit tests for vz_inventory: INI and YAML inventories (groups, children, host and group vars,
 * Python-literal typing of INI host vars), group variable precedence, groups/group_names, host
 * patterns (union, intersection, exclusion, wildcards, implicit localhost) and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vz_inventory.h"

static const char ini[] =
	"# comment\n"
	"solo ansible_host=10.0.0.9 ansible_port=2222 flag=True name=\"a b\" n=07 f=None\n"
	"[web]\n"
	"w1 ansible_user=deploy\n"
	"w2\n"
	"[db]\n"
	"d1\n"
	"[prod:children]\n"
	"web\n"
	"db\n"
	"[prod:vars]\n"
	"level=prod\n"
	"msg = hello world\n"
	"[web:vars]\n"
	"level=web\n"
	"[all:vars]\n"
	"level=all\n"
	"everyone=1\n";

static const char yaml_inv[] =
	"all:\n"
	"  vars:\n"
	"    level: all\n"
	"  hosts:\n"
	"    solo: {ansible_port: 2200}\n"
	"  children:\n"
	"    prod:\n"
	"      vars: {level: prod}\n"
	"      children:\n"
	"        web:\n"
	"          hosts:\n"
	"            w1: {ansible_user: deploy}\n"
	"            w2:\n"
	"          vars: {level: web}\n"
	"        db:\n"
	"          hosts: {d1: }\n";

static vz_inventory *load(const char *text)
{
	vz_inventory *inv = NULL;
	vz_err e = { 0 };
	int rc = vz_inventory_parse(&inv, text, strlen(text), "inv", &e);
	if (rc)
		fail_msg("parse failed: %s", e.msg);
	return inv;
}

static char *match(const vz_inventory *inv, const char *pattern)
{
	json_t *a = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_inventory_match(&a, inv, pattern, NULL, &e), 0);
	char *s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

static void check_common(vz_inventory *inv, int is_ini)
{
	assert_int_equal(vz_inventory_nhosts(inv), 4);
	json_t *v = vz_inventory_host_vars(inv, "w1");
	/* the deepest group wins: web over prod over all */
	assert_string_equal(json_string_value(json_object_get(v, "level")), "web");
	assert_string_equal(json_string_value(json_object_get(v, "ansible_user")), "deploy");
	json_decref(v);
	v = vz_inventory_host_vars(inv, "d1");
	assert_string_equal(json_string_value(json_object_get(v, "level")), "prod");
	json_decref(v);
	v = vz_inventory_host_vars(inv, "solo");
	assert_string_equal(json_string_value(json_object_get(v, "level")), "all");
	if (is_ini) {
		assert_true(json_is_true(json_object_get(v, "flag")));
		assert_string_equal(json_string_value(json_object_get(v, "name")), "a b");
		assert_int_equal(json_integer_value(json_object_get(v, "ansible_port")), 2222);
		assert_true(json_is_null(json_object_get(v, "f")));
	}
	json_decref(v);
	json_t *gn = vz_inventory_group_names(inv, "w2");
	char *s = json_dumps(gn, JSON_COMPACT);
	assert_string_equal(s, "[\"prod\",\"web\"]");
	free(s);
	json_decref(gn);
	json_t *groups = vz_inventory_groups(inv);
	assert_int_equal(json_array_size(json_object_get(groups, "prod")), 3);
	assert_int_equal(json_array_size(json_object_get(groups, "ungrouped")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(groups, "ungrouped"), 0)), "solo");
	json_decref(groups);
}

static void test_ini(void **state)
{
	(void)state;
	vz_inventory *inv = load(ini);
	check_common(inv, 1);
	json_t *v = vz_inventory_host_vars(inv, "w1");
	assert_string_equal(json_string_value(json_object_get(v, "msg")), "hello world");
	json_decref(v);
	vz_inventory_free(inv);
}

static void test_yaml(void **state)
{
	(void)state;
	vz_inventory *inv = load(yaml_inv);
	check_common(inv, 0);
	vz_inventory_free(inv);
}

static void test_patterns(void **state)
{
	(void)state;
	vz_inventory *inv = load(ini);
	static const struct { const char *pat, *want; } rows[] = {
		{ "all", "[\"solo\",\"w1\",\"w2\",\"d1\"]" },
		{ "*", "[\"solo\",\"w1\",\"w2\",\"d1\"]" },
		{ "web", "[\"w1\",\"w2\"]" },
		{ "db:web", "[\"d1\",\"w1\",\"w2\"]" },
		{ "db,w2", "[\"d1\",\"w2\"]" },
		{ "prod:!db", "[\"w1\",\"w2\"]" },
		{ "prod:&web", "[\"w1\",\"w2\"]" },
		{ "all:!prod", "[\"solo\"]" },
		{ "w*", "[\"w1\",\"w2\"]" },
		{ "d?", "[\"d1\"]" },
		{ "nosuch", "[]" },
		{ "localhost", "[\"localhost\"]" },
		{ "ungrouped", "[\"solo\"]" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *s = match(inv, rows[i].pat);
		if (strcmp(s, rows[i].want))
			fail_msg("pattern %s: got %s, want %s", rows[i].pat, s, rows[i].want);
		free(s);
	}
	json_t *a = NULL;
	int implicit = 0;
	vz_err e = { 0 };
	assert_int_equal(vz_inventory_match(&a, inv, "localhost", &implicit, &e), 0);
	assert_int_equal(implicit, 1);
	json_decref(a);
	assert_int_equal(vz_inventory_match(&a, inv, "web:!", NULL, &e), VZ_EINVAL);
	assert_int_equal(vz_inventory_match(&a, inv, "", NULL, &e), VZ_EINVAL);
	vz_inventory_free(inv);
}

static void test_errors(void **state)
{
	(void)state;
	static const struct { const char *text, *needle; } rows[] = {
		{ "[web\nh1\n", "inv:1: bad section header" },
		{ "[web:bogus]\n", "inv:1: unknown section kind" },
		{ "[web:vars]\nnovalue\n", "inv:2: expected key=value" },
		{ "h1 junk\n", "inv:1: expected key=value" },
		{ "[g:children]\ng\n", "its own child" },
		{ "all:\n  hosts: [a, b]\n", "inv:2:10: 'hosts' of group 'all' must be a mapping" },
		{ "all:\n  bogus: 1\n", "unknown key 'bogus'" },
		{ "h\0x\n", "binary data" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		vz_inventory *inv = NULL;
		vz_err e = { 0 };
		size_t len = i == 7 ? 4 : strlen(rows[i].text);
		assert_int_not_equal(vz_inventory_parse(&inv, rows[i].text, len, "inv", &e), 0);
		assert_null(inv);
		if (!strstr(e.msg, rows[i].needle))
			fail_msg("row %zu: message '%s' lacks '%s'", i, e.msg, rows[i].needle);
	}
}

static void test_add_host(void **state)
{
	(void)state;
	vz_inventory *inv = vz_inventory_new();
	vz_err e = { 0 };
	json_t *vars = json_pack("{s:s}", "ansible_connection", "local");
	assert_int_equal(vz_inventory_add_host(inv, "n1", "nodes", vars, &e), 0);
	assert_int_equal(vz_inventory_add_host(inv, "bad name", NULL, NULL, &e), VZ_EINVAL);
	json_decref(vars);
	assert_true(vz_inventory_has_host(inv, "n1"));
	json_t *v = vz_inventory_host_vars(inv, "n1");
	assert_string_equal(json_string_value(json_object_get(v, "ansible_connection")), "local");
	json_decref(v);
	char *s = match(inv, "nodes");
	assert_string_equal(s, "[\"n1\"]");
	free(s);
	vz_inventory_free(inv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ini),
		cmocka_unit_test(test_yaml),
		cmocka_unit_test(test_patterns),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_add_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
