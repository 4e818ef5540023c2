/* vz_pbmod_fail: the fail module (executor side): fails the task with msg. */
#include "vz_pbmod.h"

#include <string.h>

static int check(const json_t *args, vz_err *e)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)args, k, v)
		if (strcmp(k, "msg"))
			return vz_err_set(e, VZ_EINVAL, "Invalid options for fail: %s", k);
	return 0;
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	(void)ctx;
	(void)e;
	const json_t *msg = json_object_get(args, "msg");
	*result = json_pack("{s:b,s:b}", "changed", 0, "failed", 1);
	json_object_set_new(*result, "msg", msg ? json_incref((json_t *)msg) : json_string("Failed as requested from task"));
	return 0;
}

const vz_pbmod vz_pbmod_fail = { "fail", run, check, 0, 1 };
