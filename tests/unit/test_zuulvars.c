/* vz_zuulvars: the zuul and nodepool variables of a build, in Zuul's shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "vz_zuulvars.h"

static const char *path_str(json_t *root, const char *a, const char *b, const char *c)
{
	json_t *v = json_object_get(root, a);
	if (b)
		v = json_object_get(v, b);
	if (c)
		v = json_object_get(v, c);
	return json_string_value(v);
}

static void test_zuul_dict(void **state)
{
	(void)state;
	json_t *req = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:[{s:s,s:s,s:s,s:s,s:s}, {s:s,s:s,s:s,s:s,s:s}]}",
				"build", "b-1", "attempt", (json_int_t)2, "job", "unit", "pipeline", "gate", "tenant", "t1",
				"project", "org/app", "canonical_project", "review.example.org/org/app", "change", "12,3", "ref",
				"refs/changes/12/12/3", "branch", "main", "timeout", (json_int_t)600, "items",
				"id", "11,1", "project", "org/lib", "canonical_project", "review.example.org/org/lib", "branch", "main",
				"ref", "refs/changes/11/11/1",
				"id", "12,3", "project", "org/app", "canonical_project", "review.example.org/org/app", "branch", "main",
				"ref", "refs/changes/12/12/3");
	vz_prepared_project pp[3] = {
		{ "org/app", "review.example.org/org/app", "/w/src/review.example.org/org/app", "main", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1 },
		{ "org/lib", "review.example.org/org/lib", "/w/src/review.example.org/org/lib", "main", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 0 },
		{ "org/tools", "review.example.org/org/tools", "/w/src/review.example.org/org/tools", NULL, "cccccccccccccccccccccccccccccccccccccccc", 0 },
	};
	vz_prepared p = { .projects = pp, .nprojects = 3 };
	vz_zuulvars_dirs d = { "/w", "/w/logs", "exec-1" };
	json_t *z = vz_zuulvars_zuul(req, &p, &d);
	assert_string_equal(path_str(z, "build", NULL, NULL), "b-1");
	assert_int_equal(json_integer_value(json_object_get(z, "attempts")), 2);
	assert_string_equal(path_str(z, "change", NULL, NULL), "12");
	assert_string_equal(path_str(z, "patchset", NULL, NULL), "3");
	assert_string_equal(path_str(z, "project", "name", NULL), "org/app");
	assert_string_equal(path_str(z, "project", "short_name", NULL), "app");
	assert_string_equal(path_str(z, "project", "canonical_hostname", NULL), "review.example.org");
	assert_string_equal(path_str(z, "project", "canonical_name", NULL), "review.example.org/org/app");
	assert_string_equal(path_str(z, "project", "src_dir", NULL), "src/review.example.org/org/app");
	json_t *projects = json_object_get(z, "projects");
	assert_int_equal(json_object_size(projects), 3);
	assert_true(json_is_false(json_object_get(json_object_get(projects, "review.example.org/org/app"), "required")));
	assert_true(json_is_true(json_object_get(json_object_get(projects, "review.example.org/org/lib"), "required")));
	assert_string_equal(path_str(projects, "review.example.org/org/tools", "checkout", NULL), pp[2].commit);
	assert_string_equal(path_str(projects, "review.example.org/org/lib", "src_dir", NULL), "src/review.example.org/org/lib");
	json_t *items = json_object_get(z, "items");
	assert_int_equal(json_array_size(items), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "change")), "11");
	assert_string_equal(path_str(json_array_get(items, 0), "project", "short_name", NULL), "lib");
	assert_string_equal(path_str(z, "executor", "src_root", NULL), "/w/src");
	assert_string_equal(path_str(z, "executor", "log_root", NULL), "/w/logs");
	assert_string_equal(path_str(z, "executor", "hostname", NULL), "exec-1");
	assert_true(json_is_true(json_object_get(z, "voting")));
	assert_int_equal(json_array_size(json_object_get(z, "child_jobs")), 0);
	json_decref(z);
	json_decref(req);

	/* a single change without items still lists itself as the one item */
	json_t *one = json_pack("{s:s, s:s, s:s}", "project", "p", "change", "5,1", "branch", "master");
	z = vz_zuulvars_zuul(one, NULL, NULL);
	assert_int_equal(json_array_size(json_object_get(z, "items")), 1);
	assert_string_equal(path_str(z, "project", "short_name", NULL), "p");
	json_decref(z);
	json_decref(one);
}

static void test_nodepool(void **state)
{
	(void)state;
	json_t *n = json_pack("{s:s, s:s, s:[s]}", "name", "n1", "host", "127.0.0.2", "labels", "debian");
	json_t *np = vz_zuulvars_nodepool(n);
	assert_string_equal(json_string_value(json_object_get(np, "label")), "debian");
	assert_string_equal(json_string_value(json_object_get(np, "interface_ip")), "127.0.0.2");
	assert_string_equal(json_string_value(json_object_get(np, "public_ipv4")), "127.0.0.2");
	assert_string_equal(json_string_value(json_object_get(np, "public_ipv6")), "");
	json_decref(np);
	json_decref(n);
	n = json_pack("{s:s, s:s}", "name", "n2", "host", "::1");
	np = vz_zuulvars_nodepool(n);
	assert_string_equal(json_string_value(json_object_get(np, "public_ipv6")), "::1");
	assert_string_equal(json_string_value(json_object_get(np, "label")), "");
	json_decref(np);
	json_decref(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zuul_dict),
		cmocka_unit_test(test_nodepool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
