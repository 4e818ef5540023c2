/* vz_pbmod_include_vars: the include_vars module (executor side): reads a YAML/JSON variables
 * file from the role's vars/ dir or the playbook's dir and returns it as ansible_facts. For an
 * untrusted playbook the file must resolve (symlinks followed) under the confine dir or a
 * search dir. */
#include "vz_pbmod.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vz_pbmod_util.h"
#include "vz_util.h"
#include "vz_yaml.h"

static int check(const json_t *args, vz_err *e)
{
	static const char *const ok[] = { "file", "_raw_params", "name", "hash_behaviour", NULL };
	const char *k = vz_pbmod_unknown_key(args, ok);
	if (k)
		return vz_err_set(e, VZ_EINVAL, "Invalid options for include_vars: %s (vinz reads one file)", k);
	if (!json_object_get(args, "file") && !json_object_get(args, "_raw_params"))
		return vz_err_set(e, VZ_EINVAL, "include_vars needs a file");
	return 0;
}

static int under(const char *path, const char *dir)
{
	char rd[PATH_MAX];
	if (!dir || !realpath(dir, rd))
		return 0;
	size_t n = strlen(rd);
	return !strncmp(path, rd, n) && (path[n] == '/' || path[n] == 0 || (n == 1 && rd[0] == '/'));
}

static json_t *fail(const char *fmt, const char *a)
{
	char msg[1200];
	snprintf(msg, sizeof(msg), fmt, a);
	return json_pack("{s:b,s:b,s:s}", "changed", 0, "failed", 1, "msg", msg);
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	(void)e;
	const char *rel = json_string_value(json_object_get(args, "file"));
	char *found = NULL, real[PATH_MAX];
	struct stat st;
	vz_ynode *root = NULL;
	vz_err ye = { 0 };

	if (!rel)
		rel = json_string_value(json_object_get(args, "_raw_params"));
	if (!rel) {
		*result = fail("include_vars needs a file name%s", "");
		return 0;
	}
	if (rel[0] == '/') {
		found = strdup(rel);
	} else {
		for (size_t i = 0; ctx->search && ctx->search[i] && !found; i++) {
			char *vd = vz_path_join(ctx->search[i], "vars");
			char *cands[2] = { vd ? vz_path_join(vd, rel) : NULL, vz_path_join(ctx->search[i], rel) };
			for (int k = 0; k < 2; k++) {
				if (!found && cands[k] && stat(cands[k], &st) == 0 && S_ISREG(st.st_mode)) {
					found = cands[k];
					cands[k] = NULL;
				}
				free(cands[k]);
			}
			free(vd);
		}
	}
	if (!found || !realpath(found, real)) {
		*result = fail("Could not find or access '%s'", rel);
		goto out;
	}
	if (ctx->confine) {
		int ok = under(real, ctx->confine);
		for (size_t i = 0; !ok && ctx->search && ctx->search[i]; i++)
			ok = under(real, ctx->search[i]);
		if (!ok) {
			*result = fail("include_vars: '%s' is outside the playbook's project; an untrusted playbook may not "
				       "read files of the executor", rel);
			goto out;
		}
	}
	if (vz_yaml_load_file(&root, real, &ye) != 0) {
		*result = fail("%s", ye.msg);
		goto out;
	}
	if (root && root->kind != VZ_Y_MAP) {
		*result = fail("%s must hold a mapping of variables", rel);
		goto out;
	}
	json_t *vars = root ? vz_ynode_to_json(root) : json_object();
	const char *name = json_string_value(json_object_get(args, "name"));
	if (name)
		vars = json_pack("{s:o}", name, vars);
	*result = json_pack("{s:b,s:o,s:[s]}", "changed", 0, "ansible_facts", vars, "ansible_included_var_files", real);
out:
	vz_ynode_free(root);
	free(found);
	return 0;
}

const vz_pbmod vz_pbmod_include_vars = { "include_vars", run, check, 1, 1 };
