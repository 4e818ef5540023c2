/* fuzz_zconf: arbitrary bytes as a tenant's configuration through vz_zconf_load, vz_zconf_check
 * and vz_zconf_freeze. The input is split at lines "#---" into a config project's file, an
 * untrusted project's master branch and its stable branch. Checks that loading never crashes,
 * leaks or runs away, and that every error names its place ("config/", "app/", "stable/"). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vz_zconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int positioned(const char *m)
{
	return strncmp(m, "config/", 7) == 0 || strncmp(m, "app/", 4) == 0 || strncmp(m, "stable/", 7) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256 * 1024)
		return 0;
	const char *parts[3] = { "", "", "" };
	size_t lens[3] = { 0, 0, 0 };
	char *copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = 0;
	size_t np = 0, start = 0;
	for (size_t i = 0; i <= size && np < 3; i++) {
		if (i == size || (i + 5 <= size && memcmp(copy + i, "\n#---", 5) == 0)) {
			parts[np] = copy + start;
			lens[np] = i - start;
			np++;
			if (i == size)
				break;
			start = i + 5;
			i = start - 1; /* the loop's i++ lands on the next part */
		}
	}
	json_t *f[3];
	for (int k = 0; k < 3; k++) {
		f[k] = json_object();
		json_object_set_new(f[k], "zuul.yaml", json_stringn_nocheck(parts[k], lens[k]));
	}
	vz_zconf_source srcs[3] = {
		{ "example.org/config", "master", 1, f[0], "config/", 0 },
		{ "example.org/org/app", "master", 0, f[1], "app/", 0 },
		{ "example.org/org/app", "stable/1", 0, f[2], "stable/", 0 },
	};
	vz_zconf *z = NULL;
	vz_err e = { 0 };
	int rc = vz_zconf_load(&z, srcs, 3, &e);
	if (rc && rc != VZ_EINVAL && rc != VZ_ENOMEM)
		abort();
	if (z) {
		vz_zconf_check(z);
		const char *m;
		for (size_t i = 0; (m = vz_zconf_error(z, i)); i++)
			if (!positioned(m))
				abort();
		static const char *const pipelines[] = { "check", "gate" };
		static const char *const branches[] = { "master", "stable/1" };
		const char *files[] = { "src/a.c", "/COMMIT_MSG", "doc/x.rst" };
		for (int p = 0; p < 2; p++)
			for (int b = 0; b < 2; b++) {
				vz_zconf_item it = { "org/app", branches[b], pipelines[p], files, 3 };
				json_t *g = NULL;
				vz_err fe = { 0 };
				if (vz_zconf_freeze(&g, z, &it, &fe) == 0) {
					char *s = json_dumps(g, JSON_COMPACT);
					free(s);
				} else if (g)
					abort();
				json_decref(g);
			}
	}
	vz_zconf_free(z);
	for (int k = 0; k < 3; k++)
		json_decref(f[k]);
	free(copy);
	return 0;
}
