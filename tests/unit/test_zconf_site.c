/* `vinz config check|show --site CONFIG --tenant NAME`: a tenant of the site configuration read
 * from real git repositories under the connection's baseurl (a bare NAME.git config project at its
 * default branch, a non-bare untrusted project at every branch head, a plain directory), with
 * include/exclude applied, a secret made with `vinz encrypt` decrypted with the project's key from
 * the state directory (and its value never printed), and one that does not decrypt reported at
 * FILE:LINE:COL. Runs the real binary and git. */
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
#include "vz_util.h"

static char *g_dir;

#define GIT "git -c user.name=t -c user.email=t@t.invalid -c init.defaultBranch=master"

static const char SITE[] = "state_dir: state\n"
			   "connections:\n"
			   "  - {name: gerrit, baseurl: git, canonical_hostname: review.example.org}\n"
			   "tenants:\n"
			   "  - name: main\n"
			   "    source:\n"
			   "      gerrit:\n"
			   "        config-projects:\n"
			   "          - project-config\n"
			   "        untrusted-projects:\n"
			   "          - org/app\n"
			   "          - org/plain: {include: job}\n"
			   "          - org/noisy: {exclude: [job, project]}\n"
			   "  - name: broken\n"
			   "    source:\n"
			   "      gerrit:\n"
			   "        config-projects: [broken-config]\n";

static const char CONFIG_YAML[] = "- pipeline: {name: check, manager: independent}\n"
				  "- job: {name: base, parent: null, pre-run: pre.yaml}\n"
				  "- job:\n    name: deploy\n    run: deploy.yaml\n    secrets: [creds]\n"
				  "- project: {name: org/app, check: {jobs: [app-unit, deploy]}}\n";

static int run(vz_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(vz_buf *out, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return vz_test_sh(out, "cd %s && ( %s ) 2>&1", g_dir, cmd);
}

static int setup(void **state)
{
	(void)state;
	g_dir = vz_test_tmpdir("zconf-site");
	vz_test_write(g_dir, "site.yaml", SITE);
	vz_buf out = VZ_BUF_INIT(1u << 20);
	int rc = 0;
	/* keys of the two config projects, then a secret for each encrypted with project-config's */
	rc |= run(&out, "%s keys show --project project-config --config site.yaml > /dev/null && "
			"%s keys show --project broken-config --config site.yaml > /dev/null && "
			"printf 's3cr3t-password-value' | %s encrypt --project project-config --config site.yaml "
			"--name creds --field password 2>/dev/null > creds.yaml",
		  VZ_BIN, VZ_BIN, VZ_BIN);
	/* project-config: a bare repository NAME.git made from a work tree */
	rc |= run(&out, "mkdir -p git w/pc && cd w/pc && " GIT " init -q . && cat ../../creds.yaml > zuul.yaml && "
			"printf '%%s' '%s' >> zuul.yaml && " GIT " add -A && " GIT " commit -qm c && "
			"cd ../.. && " GIT " clone -q --bare w/pc git/project-config.git",
		  CONFIG_YAML);
	/* broken-config: the same secret, which does not decrypt with broken-config's key */
	rc |= run(&out, "mkdir -p w/bc && cd w/bc && " GIT " init -q . && cat ../../creds.yaml > zuul.yaml && "
			"printf -- '- pipeline: {name: check, manager: independent}\\n' >> zuul.yaml && " GIT
			" add -A && " GIT " commit -qm c && cd ../.. && " GIT " clone -q --bare w/bc git/broken-config.git");
	/* org/app: a non-bare repository with master and stable/1, each with its own .zuul.yaml; the
	 * work tree is left on master with an uncommitted change that must not be read */
	rc |= run(&out, "mkdir -p git/org/app && cd git/org/app && " GIT " init -q . && "
			"printf -- '- job: {name: app-unit, run: unit.yaml, timeout: 100}\\n' > .zuul.yaml && " GIT
			" add -A && " GIT " commit -qm c && " GIT " checkout -q -b stable/1 && "
			"printf -- '- job: {name: app-unit, run: unit.yaml, timeout: 200}\\n' > .zuul.yaml && " GIT
			" commit -qam s && " GIT " checkout -q master && printf 'not: [valid' > .zuul.yaml");
	/* org/plain: not a repository, read as a directory; its project stanza is excluded */
	rc |= run(&out, "mkdir -p git/org/plain && printf -- '- job: {name: plain-job, run: p.yaml}\\n"
			"- project: {check: {jobs: [nope]}}\\n' > git/org/plain/zuul.yaml");
	/* org/noisy: everything it would define is excluded, so its broken job is not read */
	rc |= run(&out, "mkdir -p git/org/noisy && printf -- '- job: {name: base}\\n' > git/org/noisy/zuul.yaml");
	vz_buf_free(&out);
	return rc ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	vz_test_rm(g_dir);
	free(g_dir);
	return 0;
}

static void test_check_and_show(void **state)
{
	(void)state;
	vz_buf out = VZ_BUF_INIT(1u << 22);
	/* valid, the secret decrypted (test_errors shows the key is found: the same value fails with
	 * the other project's key) */
	int rc = run(&out, "%s config check --site site.yaml --tenant main", VZ_BIN);
	if (rc != 0)
		fail_msg("check failed (%d): %s", rc, vz_buf_cstr(&out));
	assert_string_equal(vz_buf_cstr(&out), "configuration OK\n");

	/* master's variant; the secret named, its value nowhere */
	rc = run(&out, "%s config show --site site.yaml --tenant main --project org/app --pipeline check --json", VZ_BIN);
	assert_int_equal(rc, 0);
	json_error_t je;
	json_t *g = json_loads(vz_buf_cstr(&out), 0, &je);
	assert_non_null(g);
	assert_string_equal(json_string_value(json_object_get(g, "project")), "review.example.org/org/app");
	assert_string_equal(json_string_value(json_object_get(g, "branch")), "master");
	json_t *jobs = json_object_get(g, "jobs");
	assert_int_equal(json_array_size(jobs), 2);
	json_t *unit = json_array_get(jobs, 0), *deploy = json_array_get(jobs, 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(unit, "attributes"), "timeout")), 100);
	json_t *run0 = json_array_get(json_object_get(json_object_get(deploy, "playbooks"), "run"), 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(run0, "secrets"), 0)), "creds");
	assert_null(strstr(vz_buf_cstr(&out), "s3cr3t"));
	json_decref(g);

	/* the stable/1 branch head, read without a checkout */
	rc = run(&out, "%s config show --site site.yaml --tenant main --project org/app --pipeline check --branch stable/1 "
		       "--json", VZ_BIN);
	assert_int_equal(rc, 0);
	g = json_loads(vz_buf_cstr(&out), 0, &je);
	unit = json_array_get(json_object_get(g, "jobs"), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(unit, "attributes"), "timeout")), 200);
	json_decref(g);

	/* the text form too never shows the value */
	rc = run(&out, "%s config show --site site.yaml --tenant main --project org/app --pipeline check", VZ_BIN);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(vz_buf_cstr(&out), "[secrets: 1]"));
	assert_null(strstr(vz_buf_cstr(&out), "s3cr3t"));
	vz_buf_free(&out);
}

static void test_errors(void **state)
{
	(void)state;
	vz_buf out = VZ_BUF_INIT(1u << 20);
	/* a secret encrypted for another project's key: FILE:LINE:COL naming the secret, no value */
	int rc = run(&out, "%s config check --site site.yaml --tenant broken", VZ_BIN);
	assert_int_equal(rc, 1);
	assert_true(vz_startswith(vz_buf_cstr(&out), "broken-config@master/zuul.yaml:4:17: secret \"creds\": "
						     "data.password does not decrypt with the key of project "
						     "review.example.org/broken-config: chunk 1 of 1 does not decrypt"));
	assert_null(strstr(vz_buf_cstr(&out), "s3cr3t"));

	/* an unknown tenant lists the known ones */
	rc = run(&out, "%s config check --site site.yaml --tenant nope", VZ_BIN);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(vz_buf_cstr(&out), "has no tenant 'nope'; tenants: main broken"));

	/* --site without --tenant, or with directories */
	assert_int_equal(run(&out, "%s config check --site site.yaml", VZ_BIN), 2);
	assert_int_equal(run(&out, "%s config check --site site.yaml --tenant main w/pc", VZ_BIN), 2);

	/* an invalid site configuration */
	vz_test_write(g_dir, "bad.yaml", "tenants:\n  - name: t\n");
	rc = run(&out, "%s config check --site bad.yaml --tenant t", VZ_BIN);
	assert_int_equal(rc, 3);
	assert_non_null(strstr(vz_buf_cstr(&out), "bad.yaml:2:5: tenant 't' needs 'source'"));

	/* a project with no repository */
	vz_test_write(g_dir, "missing.yaml", "connections: [{name: g, baseurl: git}]\n"
					     "tenants: [{name: t, source: {g: {untrusted-projects: [org/none]}}}]\n");
	rc = run(&out, "%s config check --site missing.yaml --tenant t", VZ_BIN);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(vz_buf_cstr(&out), "project org/none of tenant t: no repository at"));
	vz_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_and_show),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
