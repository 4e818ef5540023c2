/* vz_pbmod_assert: the assert module (executor side): every expression of `that` must hold. */
#include "vz_pbmod.h"

#include <string.h>

#include "vz_pbmod_util.h"
#include "vz_template.h"

static int check(const json_t *args, vz_err *e)
{
	static const char *const ok[] = { "that", "msg", "fail_msg", "success_msg", "quiet", NULL };
	const char *k = vz_pbmod_unknown_key(args, ok);
	if (k)
		return vz_err_set(e, VZ_EINVAL, "Invalid options for assert: %s", k);
	if (!json_object_get(args, "that"))
		return vz_err_set(e, VZ_EINVAL, "conditional required in \"that\" string");
	return 0;
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	(void)e;
	const json_t *that = json_object_get(args, "that");
	json_t *list = json_is_array(that) ? json_incref((json_t *)that) : json_pack("[O]", that);
	const json_t *fail_msg = json_object_get(args, "fail_msg");
	if (!fail_msg)
		fail_msg = json_object_get(args, "msg");
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *c = json_array_get(list, i), *val = NULL;
		int t;
		vz_err te = { 0 };
		if (json_is_string(c)) {
			const char *s = json_string_value(c);
			if (vz_template_eval(&val, s, strlen(s), ctx->vars, NULL, &te) != 0) {
				char msg[1400];
				snprintf(msg, sizeof(msg), "The conditional check '%.300s' failed. The error was: %.1000s", s,
					 te.msg);
				*result = json_pack("{s:b,s:b,s:s}", "changed", 0, "failed", 1, "msg", msg);
				json_decref(list);
				return 0;
			}
			t = json_is_string(val) ? strcmp(json_string_value(val), "False") && vz_template_truthy(val)
						: vz_template_truthy(val);
			json_decref(val);
		} else {
			t = vz_template_truthy(c);
		}
		if (!t) {
			*result = json_pack("{s:b,s:b,s:O,s:b}", "changed", 0, "failed", 1, "assertion", c, "evaluated_to", 0);
			json_object_set_new(*result, "msg", fail_msg ? json_incref((json_t *)fail_msg) : json_string("Assertion failed"));
			json_decref(list);
			return 0;
		}
	}
	json_decref(list);
	const json_t *sm = json_object_get(args, "success_msg");
	*result = json_pack("{s:b}", "changed", 0);
	json_object_set_new(*result, "msg", sm ? json_incref((json_t *)sm) : json_string("All assertions passed"));
	return 0;
}

const vz_pbmod vz_pbmod_assert = { "assert", run, check, 0, 1 };
