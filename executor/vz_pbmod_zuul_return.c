/* vz_pbmod_zuul_return: Zuul's zuul_return (executor side): merges `data` (and the JSON mapping in
 * `file`, merged first) into the build's result data file (zuul.executor.result_data_file, else
 * WORK_DIR/results.json) as {"data": {...}}, with Zuul's merge rules: mappings merge key by key,
 * anything else is replaced, except that the lists zuul.artifacts and zuul.warnings of several
 * calls are concatenated (the new call's elements first, as Zuul's merge_data does) and
 * zuul.file_comments collects the comments of every call per file. The returned zuul.artifacts
 * ({name, url, metadata}) and zuul.warnings (strings) are checked as Zuul's schema does; a bad
 * value fails the task and changes nothing. The build reads the file at its end (vz_build). */
#include "vz_pbmod.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_buf.h"
#include "vz_pbmod_util.h"
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

/* src into dst: mappings merge, anything else replaces (Zuul's merge_dict) */
static void merge_dict(json_t *dst, const json_t *src, int depth)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)src, k, v) {
		json_t *d = json_object_get(dst, k);
		if (depth < 64 && json_is_object(d) && json_is_object(v))
			merge_dict(d, v, depth + 1);
		else
			json_object_set_new(dst, k, json_deep_copy(v));
	}
}

/* zuul.<key> of both as one list: the new call's elements, then the earlier ones */
static json_t *zuul_list(const json_t *neu, const json_t *old, const char *key)
{
	json_t *out = json_array();
	const json_t *srcs[2] = { neu, old };
	for (int i = 0; i < 2; i++) {
		json_t *l = json_object_get(json_object_get(srcs[i], "zuul"), key);
		if (json_is_array(l))
			json_array_extend(out, l);
	}
	return out;
}

/* Zuul's merge_data: neu into old */
static void merge_data(json_t *old, const json_t *neu)
{
	json_t *artifacts = zuul_list(neu, old, "artifacts");
	json_t *warnings = zuul_list(neu, old, "warnings");
	json_t *comments = json_object();
	const json_t *srcs[2] = { old, neu };
	for (int i = 0; i < 2; i++) {
		json_t *fc = json_object_get(json_object_get(srcs[i], "zuul"), "file_comments");
		const char *f;
		json_t *l;
		json_object_foreach(fc, f, l) {
			if (!json_is_array(l))
				continue;
			json_t *have = json_object_get(comments, f);
			if (!have) {
				have = json_array();
				json_object_set_new(comments, f, have);
			}
			json_array_extend(have, l);
		}
	}
	merge_dict(old, neu, 0);
	json_t *z = json_object_get(old, "zuul");
	if (json_array_size(artifacts) && json_is_object(z))
		json_object_set(z, "artifacts", artifacts);
	if (json_array_size(warnings) && json_is_object(z))
		json_object_set(z, "warnings", warnings);
	if (json_object_size(comments) && json_is_object(z))
		json_object_set(z, "file_comments", comments);
	json_decref(artifacts);
	json_decref(warnings);
	json_decref(comments);
}

/* Zuul's artifact and warning schema. NULL when valid, else why. */
static const char *invalid(const json_t *data, char *buf, size_t n)
{
	json_t *z = json_object_get(data, "zuul");
	if (!z)
		return NULL;
	if (!json_is_object(z))
		return "zuul_return: 'zuul' must be a mapping";
	json_t *a = json_object_get(z, "artifacts"), *w = json_object_get(z, "warnings");
	if (a && !json_is_array(a))
		return "zuul_return: zuul.artifacts must be a list of {name, url, metadata}";
	size_t i;
	json_t *x;
	json_array_foreach(a, i, x) {
		json_t *md = json_object_get(x, "metadata");
		if (!json_is_object(x) || !json_is_string(json_object_get(x, "name")) ||
		    !json_is_string(json_object_get(x, "url")) || (md && !json_is_object(md))) {
			snprintf(buf, n, "zuul_return: zuul.artifacts[%zu] must be a mapping with the strings 'name' and 'url' "
				 "and an optional mapping 'metadata'", i);
			return buf;
		}
		const char *k;
		json_t *v;
		json_object_foreach(x, k, v) {
			if (strcmp(k, "name") && strcmp(k, "url") && strcmp(k, "metadata")) {
				snprintf(buf, n, "zuul_return: zuul.artifacts[%zu] has the unknown key '%s' (name, url, metadata)", i, k);
				return buf;
			}
		}
	}
	if (w && !json_is_array(w))
		return "zuul_return: zuul.warnings must be a list of strings";
	json_array_foreach(w, i, x) {
		if (!json_is_string(x)) {
			snprintf(buf, n, "zuul_return: zuul.warnings[%zu] must be a string", i);
			return buf;
		}
	}
	return NULL;
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
	const char *from = json_string_value(json_object_get(args, "file"));
	char *path = NULL, *src = NULL;
	vz_buf b = VZ_BUF_INIT(16u << 20);
	vz_err fe = { 0 };
	json_t *doc = NULL, *fromdoc = NULL;
	char why[300];
	const char *bad;

	if (data && !json_is_object(data)) {
		*result = fail("zuul_return: 'data' must be a mapping");
		return 0;
	}
	if (!data && !from) {
		*result = fail("zuul_return: give 'data' (a mapping) or 'file' (a JSON file with one)");
		return 0;
	}
	if (from) {
		/* executor-side, confined like any other file an untrusted playbook reads */
		if (vz_pbmod_find_src(&src, ctx, from, NULL, &fe) || vz_read_file(src, 16u << 20, &b, &fe)) {
			snprintf(why, sizeof(why), "zuul_return: cannot read file %s: %s", from, vz_err_msg(&fe));
			*result = fail(why);
			goto out;
		}
		json_error_t je;
		fromdoc = json_loadb(b.ptr ? b.ptr : "", b.len, 0, &je);
		if (!json_is_object(fromdoc)) {
			snprintf(why, sizeof(why), "zuul_return: file %s must hold a JSON mapping%s%s", from, fromdoc ? "" : ": ",
				 fromdoc ? "" : je.text);
			*result = fail(why);
			goto out;
		}
		vz_buf_reset(&b);
		if ((bad = invalid(fromdoc, why, sizeof(why)))) {
			*result = fail(bad);
			goto out;
		}
	}
	if (data && (bad = invalid(data, why, sizeof(why)))) {
		*result = fail(bad);
		goto out;
	}
	path = file ? strdup(file) : ctx->work_dir ? vz_path_join(ctx->work_dir, "results.json") : NULL;
	if (!path) {
		*result = fail("zuul_return: no result file (zuul.executor.result_data_file) and no work dir: this "
			       "playbook does not run in a Zuul build");
		goto out;
	}
	pthread_mutex_lock(&lock);
	vz_err_clear(&fe);
	if (vz_read_file(path, 16u << 20, &b, &fe) == 0 && b.len)
		doc = json_loadb(b.ptr, b.len, 0, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		doc = json_object();
	}
	if (!json_is_object(json_object_get(doc, "data")))
		json_object_set_new(doc, "data", json_object());
	if (fromdoc)
		merge_data(json_object_get(doc, "data"), fromdoc);
	if (data)
		merge_data(json_object_get(doc, "data"), data);
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	vz_err_clear(&fe);
	if (!s || vz_write_file_atomic(path, s, strlen(s), 0600, &fe) != 0)
		*result = fail(fe.code ? fe.msg : "zuul_return: out of memory");
	else
		*result = json_pack("{s:b}", "changed", 0);
	pthread_mutex_unlock(&lock);
	free(s);
out:
	free(path);
	free(src);
	json_decref(doc);
	json_decref(fromdoc);
	vz_buf_free(&b);
	return 0;
}

const vz_pbmod vz_pbmod_zuul_return = { "zuul_return", run, check, 0, 1 };
