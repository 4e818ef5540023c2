/* vz_pbmod_set_fact: the set_fact module (executor side): returns its (templated) arguments as
 * ansible_facts, which the engine merges into the host's variables. */
#include "vz_pbmod.h"

#include <string.h>
#include <strings.h>

static int check(const json_t *args, vz_err *e)
{
	const char *k;
	json_t *v;
	if (json_object_get(args, "_raw_params"))
		return vz_err_set(e, VZ_EINVAL, "set_fact takes key=value arguments or a mapping");
	json_object_foreach((json_t *)args, k, v) {
		if (!strcmp(k, "cacheable"))
			continue;
		for (const char *p = k; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || (p > k && *p >= '0' && *p <= '9')))
				return vz_err_set(e, VZ_EINVAL, "The variable name '%s' is not valid. Variables must start with a "
						  "letter or underscore character, and contain only letters, numbers and underscores.", k);
	}
	if (json_object_size(args) == 0)
		return vz_err_set(e, VZ_EINVAL, "No key/value pairs provided, at least one is required for this action to succeed");
	return 0;
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	(void)ctx;
	(void)e;
	json_t *facts = json_copy((json_t *)args);
	json_object_del(facts, "cacheable");
	/* as Ansible's set_fact: the strings true/false/yes/no (any case) become booleans */
	const char *k;
	json_t *v;
	json_object_foreach(facts, k, v) {
		const char *s = json_string_value(v);
		if (s && (!strcasecmp(s, "true") || !strcasecmp(s, "yes")))
			json_object_set_new(facts, k, json_true());
		else if (s && (!strcasecmp(s, "false") || !strcasecmp(s, "no")))
			json_object_set_new(facts, k, json_false());
	}
	*result = json_pack("{s:b,s:o}", "changed", 0, "ansible_facts", facts);
	return 0;
}

const vz_pbmod vz_pbmod_set_fact = { "set_fact", run, check, 0, 1 };
