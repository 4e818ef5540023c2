/* The layout fed as the scheduler will feed it: in-repo configuration read from git commits by
 * vz_spec_read_config (the merger's speculative state), a proposed change's config frozen next to
 * the branch's; and the work-tree reader of `vinz config` agreeing with it on the same commit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vz_buf.h"
#include "vz_spec.h"
#include "vz_testutil.h"
#include "vz_workspace.h"
#include "vz_zconf.h"
#include "vz_zconf_dir.h"

static const char CONFIG[] = "- pipeline: {name: check, manager: independent}\n"
			     "- job: {name: base, parent: null, pre-run: pre.yaml, timeout: 100}\n";

static json_t *frozen_timeout(json_t *app_files, const char *job)
{
	json_t *cfg = json_pack("{s:s}", "zuul.yaml", CONFIG);
	vz_zconf_source srcs[2] = { { "example.org/config", "master", 1, cfg, NULL, 0 },
				    { "example.org/org/app", "master", 0, app_files, "app/", 0 } };
	vz_zconf *z = NULL;
	vz_err e = { 0 };
	if (vz_zconf_load(&z, srcs, 2, &e))
		fail_msg("load: %s", e.msg);
	vz_zconf_item it = { "org/app", "master", "check", NULL, 0 };
	json_t *g = NULL;
	if (vz_zconf_freeze(&g, z, &it, &e))
		fail_msg("freeze: %s", e.msg);
	json_t *r = NULL;
	size_t i;
	json_t *j;
	json_array_foreach(json_object_get(g, "jobs"), i, j) if (strcmp(json_string_value(json_object_get(j, "name")), job) == 0) r =
		json_incref(json_object_get(json_object_get(j, "attributes"), "timeout"));
	json_decref(g);
	vz_zconf_free(z);
	json_decref(cfg);
	return r;
}

static void test_commits(void **state)
{
	(void)state;
	vz_err e = { 0 };
	assert_int_equal(vz_workspace_global_init(&e), 0);
	char *tmp = vz_test_tmpdir("zconf-spec");
	char repo[512], gitdir[600];
	snprintf(repo, sizeof(repo), "%s/app", tmp);
	snprintf(gitdir, sizeof(gitdir), "%s/.git", repo);
	assert_int_equal(vz_test_sh(NULL,
		"set -e; git init -q -b master %s; cd %s; git config user.email t@t; git config user.name t;"
		"mkdir -p zuul.d; printf -- '- job: {name: unit, run: u.yaml, timeout: 60}\\n' > zuul.d/jobs.yaml;"
		"printf -- '- project: {check: {jobs: [unit]}}\\n' > zuul.d/project.yaml;"
		"printf -- '- job: {name: ignored, run: x.yaml}\\n' > .zuul.yaml;"
		"git add -A; git commit -qm base;"
		"printf -- '- job: {name: unit, run: u.yaml, timeout: 90}\\n' > zuul.d/jobs.yaml; git commit -qam proposed",
		repo, repo), 0);

	/* the branch as merged, then the change's proposed config */
	json_t *files = NULL, *ignored = NULL;
	assert_int_equal(vz_spec_read_config(&files, &ignored, gitdir, "HEAD~1", 0, &e), 0);
	json_t *t = frozen_timeout(files, "unit");
	assert_int_equal(json_integer_value(t), 60);
	json_decref(t);
	json_decref(files);
	json_decref(ignored);
	assert_int_equal(vz_spec_read_config(&files, &ignored, gitdir, "HEAD", 0, &e), 0);
	t = frozen_timeout(files, "unit");
	assert_int_equal(json_integer_value(t), 90);
	json_decref(t);

	/* the work-tree reader gives the same files in the same order */
	json_t *wt = NULL;
	assert_int_equal(vz_zconf_read_dir(&wt, repo, &e), 0);
	if (!json_equal(wt, files)) {
		char *a = json_dumps(wt, 0), *b = json_dumps(files, 0);
		fail_msg("work tree %s != commit %s", a, b);
	}
	const char *k1, *k2;
	void *it1 = json_object_iter(wt), *it2 = json_object_iter(files);
	for (; it1 && it2; it1 = json_object_iter_next(wt, it1), it2 = json_object_iter_next(files, it2)) {
		k1 = json_object_iter_key(it1);
		k2 = json_object_iter_key(it2);
		assert_string_equal(k1, k2);
	}
	json_decref(wt);
	json_decref(files);
	json_decref(ignored);
	vz_test_rm(tmp);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_commits) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
