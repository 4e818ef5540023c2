/* fuzz_yaml: arbitrary bytes through vz_yaml_parse and vz_ynode_to_json. Checks that parsing
 * never crashes, leaks or runs away, and that a failure always leaves a positioned message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vz_yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vz_ynode *root = NULL;
	vz_err e = {0};
	int rc = vz_yaml_parse(&root, (const char *)data, size, "fuzz.yaml", &e);
	if (rc != 0) {
		/* every failure must say where: "fuzz.yaml:" or "fuzz.yaml " for memory errors */
		if (root || e.code == 0 || strncmp(e.msg, "fuzz.yaml", 9) != 0)
			abort();
		return 0;
	}
	json_t *j = vz_ynode_to_json(root);
	if (j) {
		char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
		free(s);
		json_decref(j);
	}
	/* exercise the typed accessors on the root and its first level */
	if (root) {
		long long i;
		int b;
		double d;
		for (size_t k = 0; k < root->n; k++) {
			const vz_ynode *v = root->items[k];
			(void)vz_yscalar_int(v, -100, 100, &i);
			(void)vz_yscalar_bool(v, &b);
			(void)vz_yscalar_float(v, &d);
			(void)vz_yscalar_is_null(v);
			if (root->kind == VZ_Y_MAP && vz_ymap_get(root, root->keys[k]->str) == NULL &&
			    strlen(root->keys[k]->str) == root->keys[k]->len)
				abort(); /* every key with no NUL must be found */
		}
	}
	vz_ynode_free(root);
	return 0;
}
