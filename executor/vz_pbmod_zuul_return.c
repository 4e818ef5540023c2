/* vz_pbmod_zuul_return: Zuul's zuul_return (executor side): merges `data` into the build's
 * result data file (zuul.executor.result_data_file, else WORK_DIR/results.json) as
 * {"data": {...}}, deep-merging mappings as Zuul does, so a job can hand values to its children. */
#include "vz_pbmod.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_buf.h"
#include "vz_util.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int check(const json_t *args, vz_err *e)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)args, k, v)
		if (strcmp(k, "data") && strcmp(k, "file"))
			return vz_err_set(e, VZ_EINVAL, "Invalid options for zuul_return: %s", k);
	return 0;
}

static void merge(json_t *dst, const json_t *src, int depth)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)src, k, v) {
		json_t *d = json_object_get(dst, k);
		if (depth < 64 && json_is_object(d) && json_is_object(v))
			merge(d, v, depth + 1);
		else
			json_object_set_new(dst, k, json_deep_copy(v));
	}
}

static json_t *fail(const char *msg)
{
	return json_pack("{s:b,s:b,s:s}", "changed", 0, "failed", 1, "msg", msg);
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	(void)e;
	const json_t *data = json_object_get(args, "data");
	const char *file = json_string_value(json_object_get(json_object_get(json_object_get(ctx->vars, "zuul"),
									     "executor"), "result_data_file"));
	char *path = NULL;
	vz_buf b = VZ_BUF_INIT(16u << 20);
	vz_err fe = { 0 };
	json_t *doc = NULL;

	if (!json_is_object(data)) {
		*result = fail("zuul_return: 'data' must be a mapping");
		return 0;
	}
	path = file ? strdup(file) : ctx->work_dir ? vz_path_join(ctx->work_dir, "results.json") : NULL;
	if (!path) {
		*result = fail("zuul_return: no result file (zuul.executor.result_data_file) and no work dir: this "
			       "playbook does not run in a Zuul build");
		return 0;
	}
	pthread_mutex_lock(&lock);
	if (vz_read_file(path, 16u << 20, &b, &fe) == 0 && b.len)
		doc = json_loadb(b.ptr, b.len, 0, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		doc = json_object();
	}
	if (!json_is_object(json_object_get(doc, "data")))
		json_object_set_new(doc, "data", json_object());
	merge(json_object_get(doc, "data"), data, 0);
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	vz_err_clear(&fe);
	if (!s || vz_write_file_atomic(path, s, strlen(s), 0600, &fe) != 0)
		*result = fail(fe.code ? fe.msg : "zuul_return: out of memory");
	else
		*result = json_pack("{s:b}", "changed", 0);
	pthread_mutex_unlock(&lock);
	free(s);
	free(path);
	json_decref(doc);
	vz_buf_free(&b);
	return 0;
}

const vz_pbmod vz_pbmod_zuul_return = { "zuul_return", run, check, 0, 1 };
