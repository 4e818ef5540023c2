/* `vinz config check` and `vinz config show` on work trees: exit codes, errors printed as
 * FILE:LINE:COL with the directory in front, precedence of zuul.yaml over .zuul.d/, SPEC names
 * and branches, and the JSON graph. Runs the real binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "vz_buf.h"
#include "vz_testutil.h"

static const char CONFIG[] = "- pipeline: {name: check, manager: independent}\n"
			     "- job:\n    name: base\n    parent: null\n    pre-run: pre.yaml\n";

/* Runs vinz with stderr merged into out. */
static int vinz(vz_buf *out, const char *args)
{
	return vz_test_sh(out, "%s config %s 2>&1", VZ_BIN, args);
}

static void test_check_ok_and_errors(void **state)
{
	(void)state;
	char *d = vz_test_tmpdir("zconf-cli");
	vz_test_write(d, "cfg/zuul.d/main.yaml", CONFIG);
	vz_test_write(d, "app/.zuul.yaml", "- job: {name: unit, run: u.yaml}\n- project: {check: {jobs: [unit]}}\n");
	vz_buf out = VZ_BUF_INIT(1 << 20);
	char args[4096];
	snprintf(args, sizeof(args), "check %s/cfg org/app=%s/app", d, d);
	assert_int_equal(vinz(&out, args), 0);
	assert_non_null(strstr(vz_buf_cstr(&out), "configuration OK"));

	/* zuul.yaml wins over .zuul.yaml: the broken .zuul.yaml is not read */
	vz_test_write(d, "app/zuul.yaml", "- job:\n    name: unit\n    run: u.yaml\n    timeout: later\n"
					  "- project:\n    check:\n      jobs: [unit, nosuch]\n");
	assert_int_equal(vinz(&out, args), 1);
	char want[4096];
	snprintf(want, sizeof(want), "%s/app/zuul.yaml:4:14: job attribute \"timeout\" must be an integer of at least 0, "
		 "not a string (project org/app, branch master)\n", d);
	if (strncmp(vz_buf_cstr(&out), want, strlen(want)) != 0)
		fail_msg("want <%s>, got <%s>", want, vz_buf_cstr(&out));
	snprintf(want, sizeof(want), "%s/app/zuul.yaml:7:20: project \"org/app\", pipeline check: job \"nosuch\" is not defined", d);
	assert_non_null(strstr(vz_buf_cstr(&out), want));

	/* a bad directory is an error, not a crash */
	snprintf(args, sizeof(args), "check %s/nope", d);
	assert_int_equal(vinz(&out, args), 1);
	assert_non_null(strstr(vz_buf_cstr(&out), "not a directory"));
	assert_int_equal(vinz(&out, "frobnicate"), 2);

	/* a tenant file: sources in order, include limiting the object types, errors positioned */
	vz_test_write(d, "tenant.yaml", "sources:\n  - {project: example.org/cfg, trusted: true, dir: cfg}\n"
					"  - {project: org/app, dir: app, include: [job]}\n");
	snprintf(args, sizeof(args), "check --tenant %s/tenant.yaml", d);
	assert_int_equal(vinz(&out, args), 1); /* the broken job is still read */
	assert_non_null(strstr(vz_buf_cstr(&out), "app/zuul.yaml:4:14: job attribute \"timeout\""));
	assert_null(strstr(vz_buf_cstr(&out), "nosuch")); /* the project stanza is not */
	vz_test_write(d, "tenant.yaml", "sources:\n  - {project: example.org/cfg, trusted: maybe, dir: cfg}\n");
	assert_int_equal(vinz(&out, args), 1);
	snprintf(want, sizeof(want), "%s/tenant.yaml:2:41: trusted must be true or false", d);
	if (!strstr(vz_buf_cstr(&out), want))
		fail_msg("want <%s>, got <%s>", want, vz_buf_cstr(&out));
	vz_buf_free(&out);
	vz_test_rm(d);
	free(d);
}

static void test_show_json(void **state)
{
	(void)state;
	char *d = vz_test_tmpdir("zconf-cli");
	vz_test_write(d, "cfg/zuul.yaml", CONFIG);
	vz_test_write(d, "app/.zuul.d/a.yaml", "- job: {name: unit, run: u.yaml, timeout: 10}\n");
	vz_test_write(d, "app/.zuul.d/b.yaml", "- job: {name: unit, branches: ^stable/, timeout: 20}\n"
					       "- project: {check: {jobs: [unit]}}\n");
	vz_buf out = VZ_BUF_INIT(1 << 20);
	char args[4096];
	snprintf(args, sizeof(args), "show --project org/app --pipeline check --branch stable/1 --json -t %s/cfg org/app@stable/1=%s/app",
		 d, d);
	assert_int_equal(vinz(&out, args), 0);
	json_error_t je;
	json_t *g = json_loads(vz_buf_cstr(&out), 0, &je);
	if (!g)
		fail_msg("not JSON: %s: %s", je.text, vz_buf_cstr(&out));
	json_t *job = json_array_get(json_object_get(g, "jobs"), 0);
	assert_string_equal(json_string_value(json_object_get(job, "name")), "unit");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(job, "attributes"), "timeout")), 20);
	char want[4096];
	snprintf(want, sizeof(want), "%s/app/.zuul.d/b.yaml:1", d);
	assert_string_equal(json_string_value(json_object_get(json_object_get(job, "from"), "timeout")), want);
	json_decref(g);
	/* text output names the origin of each value */
	snprintf(args, sizeof(args), "show -p org/app -P check -b master -t %s/cfg org/app=%s/app", d, d);
	assert_int_equal(vinz(&out, args), 0);
	snprintf(want, sizeof(want), "10   <- %s/app/.zuul.d/a.yaml:1", d);
	assert_non_null(strstr(vz_buf_cstr(&out), want));
	vz_buf_free(&out);
	vz_test_rm(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_check_ok_and_errors), cmocka_unit_test(test_show_json) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
