/* The tenant corpus: every tests/fixtures/zuul/<tenant>/tenant.yaml is loaded and checked (it must
 * be valid), and each of its cases freezes a job graph compared with the expected JSON next to it.
 * VZ_ZCONF_REGEN=1 rewrites the expected files instead (review the diff before committing). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vz_util.h"
#include "vz_zconf.h"
#include "vz_zconf_dir.h"

#ifndef VZ_SOURCE_DIR
#define VZ_SOURCE_DIR "."
#endif

/* Freezes one case; returns the graph or the error as {"error": message}. */
static json_t *run_case(vz_zconf *z, json_t *c)
{
	const char *files[64];
	size_t nf = 0, i;
	json_t *f;
	json_t *fl = json_object_get(c, "files");
	json_array_foreach(fl, i, f) if (nf < 64) files[nf++] = json_string_value(f);
	vz_zconf_item it = { json_string_value(json_object_get(c, "project")), json_string_value(json_object_get(c, "branch")),
			     json_string_value(json_object_get(c, "pipeline")), fl ? files : NULL, nf };
	json_t *g = NULL;
	vz_err e = { 0 };
	if (vz_zconf_freeze(&g, z, &it, &e))
		return json_pack("{s:s}", "error", e.msg);
	return g;
}

static void check_tenant(const char *dir, int regen, size_t *ncases)
{
	char *path = vz_path_join(dir, "tenant.yaml");
	vz_zconf *z = NULL;
	json_t *cases = NULL;
	vz_err e = { 0 };
	int rc = vz_zconf_load_tenant(&z, &cases, path, &e);
	if (rc) {
		for (size_t i = 0; vz_zconf_error(z, i); i++)
			print_error("%s\n", vz_zconf_error(z, i));
		fail_msg("%s: %s", path, e.msg);
	}
	if (vz_zconf_check(z)) {
		for (size_t i = 0; vz_zconf_error(z, i); i++)
			print_error("%s\n", vz_zconf_error(z, i));
		fail_msg("%s: vz_zconf_check found errors", path);
	}
	assert_true(json_array_size(cases) > 0);
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		char *exp = vz_path_join(dir, json_string_value(json_object_get(c, "expect")));
		json_t *got = run_case(z, c);
		assert_non_null(got);
		if (regen) {
			assert_int_equal(json_dump_file(got, exp, JSON_INDENT(2) | JSON_SORT_KEYS), 0);
		} else {
			json_error_t je;
			json_t *want = json_load_file(exp, 0, &je);
			if (!want)
				fail_msg("%s: %s (line %d)", exp, je.text, je.line);
			if (!json_equal(want, got)) {
				char *gs = json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS);
				print_error("got:\n%s\n", gs);
				free(gs);
				fail_msg("%s: the frozen graph differs from the expected one", exp);
			}
			json_decref(want);
		}
		json_decref(got);
		free(exp);
		(*ncases)++;
	}
	json_decref(cases);
	vz_zconf_free(z);
	free(path);
}

static void test_corpus(void **state)
{
	(void)state;
	const char *root = VZ_SOURCE_DIR "/tests/fixtures/zuul";
	int regen = getenv("VZ_ZCONF_REGEN") != NULL;
	DIR *d = opendir(root);
	assert_non_null(d);
	struct dirent *de;
	size_t ntenants = 0, ncases = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/%s", root, de->d_name);
		char tf[4200];
		snprintf(tf, sizeof(tf), "%s/tenant.yaml", dir);
		FILE *fp = fopen(tf, "r");
		if (!fp)
			continue;
		fclose(fp);
		check_tenant(dir, regen, &ncases);
		ntenants++;
	}
	closedir(d);
	print_message("%zu tenants, %zu frozen graphs compared\n", ntenants, ncases);
	assert_true(ntenants >= 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_corpus) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
