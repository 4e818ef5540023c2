/* vz_pbmod_debug: the debug module (executor side): prints msg, or the value of a variable
 * (var:), as Ansible's debug action does. */
#include "vz_pbmod.h"

#include <stdlib.h>
#include <string.h>

#include "vz_playbook_int.h"
#include "vz_template.h"

static int check(const json_t *args, vz_err *e)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)args, k, v)
		if (strcmp(k, "msg") && strcmp(k, "var") && strcmp(k, "verbosity"))
			return vz_err_set(e, VZ_EINVAL, "Invalid options for debug: %s", k);
	if (json_object_get(args, "msg") && json_object_get(args, "var"))
		return vz_err_set(e, VZ_EINVAL, "'msg' and 'var' are incompatible options");
	return 0;
}

/* debug var=EXPR shows what "{{ EXPR }}" templates to. */
static int wrap_eval(json_t **out, const char *expr, const json_t *vars, vz_err *e)
{
	size_t n = strlen(expr);
	char *t = malloc(n + 7);
	if (!t)
		return vz_err_set(e, VZ_ENOMEM, "out of memory");
	memcpy(t, "{{ ", 3);
	memcpy(t + 3, expr, n);
	memcpy(t + 3 + n, " }}", 4);
	int rc = vz_pb_template_string(out, t, n + 6, vars, NULL, e);
	free(t);
	return rc;
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	(void)e;
	const json_t *verb = json_object_get(args, "verbosity");
	long long vb = json_is_integer(verb) ? json_integer_value(verb) : 0;
	if (json_is_string(verb))
		vb = strtoll(json_string_value(verb), NULL, 10);
	if (vb > 0) {
		/* vinz runs at Ansible's verbosity 0 */
		*result = json_pack("{s:b,s:b,s:s}", "changed", 0, "skipped", 1, "skipped_reason",
				    "Verbosity threshold not met.");
		return 0;
	}
	json_t *res = json_pack("{s:b,s:b}", "changed", 0, "_ansible_verbose_always", 1);
	const json_t *var = json_object_get(args, "var");
	if (var) {
		const char *expr = json_string_value(var);
		json_t *val = NULL;
		vz_err te = { 0 };
		if (!expr) {
			/* already templated to a value (var: "{{ x }}"): show it under its text */
			char *d = json_dumps(var, JSON_ENCODE_ANY | JSON_COMPACT);
			json_object_set_new(res, d ? d : "var", json_incref((json_t *)var));
			free(d);
		} else if (strstr(expr, "{{") ? vz_pb_template_string(&val, expr, strlen(expr), ctx->vars, NULL, &te) == 0
					       : wrap_eval(&val, expr, ctx->vars, &te) == 0) {
			json_object_set_new(res, expr, val);
		} else {
			json_object_set_new(res, expr, json_string("VARIABLE IS NOT DEFINED!"));
		}
	} else {
		const json_t *msg = json_object_get(args, "msg");
		json_object_set_new(res, "msg", msg ? json_incref((json_t *)msg) : json_string("Hello world!"));
	}
	*result = res;
	return 0;
}

const vz_pbmod vz_pbmod_debug = { "debug", run, check, 0, 1 };
