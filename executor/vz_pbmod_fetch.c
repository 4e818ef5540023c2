/* vz_pbmod_fetch: ansible.builtin.fetch, natively: the node file's sha1 is compared with the
 * executor copy's, and only when they differ is it read with `cat` (capped) and written under
 * dest/<inventory_hostname>/<path> (or dest itself with flat), confined in untrusted runs. */
#include <stdlib.h>
#include <string.h>

#include "vz_pbmod_util.h"
#include "vz_util.h"

static const char *const opts[] = { "src", "dest", "flat", "fail_on_missing", "validate_checksum",
				    NULL };

static int check(const json_t *args, vz_err *e)
{
	return vz_pbmod_args_known(args, "fetch", opts, e);
}

/* Collapses "//" and "/./", removes a trailing "/.", as os.path.normpath does for these. */
static void normalize(char *p)
{
	char *w = p;
	for (char *s = p; *s;) {
		if (s[0] == '/' && s[1] == '/') {
			s++;
		} else if (s[0] == '/' && s[1] == '.' && (s[2] == '/' || s[2] == '\0')) {
			s += 2;
		} else {
			*w++ = *s++;
		}
	}
	*w = '\0';
	size_t n = strlen(p);
	if (n > 1 && p[n - 1] == '/')
		p[n - 1] = '\0';
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	static const char *const src_keys[] = { "src", NULL };
	static const char *const dest_keys[] = { "dest", NULL };
	json_t *r = json_object();
	vz_pbmod_st st = { 0 };
	vz_pbmod_run run = { 0 };
	vz_buf d = VZ_BUF_INIT(16384), s = VZ_BUF_INIT(16384), local = VZ_BUF_INIT(VZ_PBMOD_MAX_FILE);
	vz_err err = { 0 };
	const char *src, *dest;
	char b1[64], b2[64], lsha[41] = "", sha[41], md5[33];
	char *path = NULL;
	int flat, fail_missing, validate, rc = 0;

	json_object_set_new(r, "changed", json_false());
	if ((rc = check(args, &err)) || (rc = vz_pbmod_arg_str(&src, args, src_keys, b1, sizeof(b1), &err)) ||
	    (rc = vz_pbmod_arg_str(&dest, args, dest_keys, b2, sizeof(b2), &err)) ||
	    (rc = vz_pbmod_arg_bool(&flat, args, "flat", 0, &err)) ||
	    (rc = vz_pbmod_arg_bool(&fail_missing, args, "fail_on_missing", 1, &err)) ||
	    (rc = vz_pbmod_arg_bool(&validate, args, "validate_checksum", 1, &err)))
		goto fail;
	if (!src || !dest || !*src || !*dest) {
		vz_pbmod_failed(r, "src and dest are required");
		goto out;
	}
	if ((rc = vz_pbmod_node_stat(&st, ctx, src, 1, 1, &err)) != 0)
		goto fail;
	if (!st.exists || st.type == 'd' || !st.readable) {
		const char *msg = !st.exists ? "the remote file does not exist, not transferring, ignored" :
				  st.type == 'd' ? "remote file is a directory, fetch cannot work on directories" :
				  "file is not readable, not transferring, ignored";
		json_object_set_new(r, "file", json_string(src));
		if (fail_missing)
			vz_pbmod_failed(r, "%s", msg);
		else
			json_object_set_new(r, "msg", json_string(msg));
		goto out;
	}
	if (st.size > VZ_PBMOD_MAX_FILE) {
		vz_pbmod_failed(r, "%s on the node is %llu bytes, over the %zu MiB a task may fetch", src,
				(unsigned long long)st.size, VZ_PBMOD_MAX_FILE >> 20);
		goto out;
	}
	if (flat) {
		vz_buf_puts(&d, dest);
		if (dest[strlen(dest) - 1] == '/') {
			const char *bn = strrchr(src, '/');
			vz_buf_puts(&d, bn ? bn + 1 : src);
		}
	} else {
		vz_buf_printf(&d, "%s/%s/%s", dest, ctx->host ? ctx->host : "localhost", src);
	}
	if (d.failed) {
		vz_pbmod_failed(r, "dest path too long");
		goto out;
	}
	normalize(d.ptr);
	if ((rc = vz_pbmod_local_dest(&path, ctx, vz_buf_cstr(&d), 1, &err)) != 0)
		goto fail;
	if (vz_read_file(path, VZ_PBMOD_MAX_FILE, &local, NULL) == 0)
		vz_pbmod_sha1(lsha, local.ptr, local.len);
	if (lsha[0] && !strcmp(lsha, st.sha1)) {
		vz_pbmod_md5(md5, local.ptr, local.len);
		json_object_set_new(r, "checksum", json_string(lsha));
		json_object_set_new(r, "dest", json_string(path));
		json_object_set_new(r, "file", json_string(src));
		json_object_set_new(r, "md5sum", json_string(md5));
		goto out;
	}
	vz_buf_puts(&s, "cat -- ");
	vz_node_sh_quote(&s, src);
	if ((rc = vz_pbmod_sh(&run, ctx, vz_buf_cstr(&s), NULL, 0, VZ_PBMOD_MAX_FILE, &err)) != 0)
		goto fail;
	if (run.overflow) {
		vz_pbmod_failed(r, "%s on the node grew over the %zu MiB a task may fetch", src,
				VZ_PBMOD_MAX_FILE >> 20);
		goto out;
	}
	if (run.status != 0) {
		vz_pbmod_failed(r, "reading %s on the node failed: %.300s", src, vz_buf_cstr(&run.err));
		goto out;
	}
	vz_pbmod_sha1(sha, run.out.ptr, run.out.len);
	vz_pbmod_md5(md5, run.out.ptr, run.out.len);
	if (validate && st.sha1[0] && strcmp(sha, st.sha1)) {
		json_object_set_new(r, "checksum", json_string(sha));
		json_object_set_new(r, "remote_checksum", json_string(st.sha1));
		json_object_set_new(r, "file", json_string(src));
		json_object_set_new(r, "dest", json_string(path));
		vz_pbmod_failed(r, "checksum mismatch");
		goto out;
	}
	if ((rc = vz_write_file_atomic(path, run.out.ptr ? run.out.ptr : "", run.out.len, 0644, &err)) != 0) {
		vz_err_prefix(&err, "Failed to fetch the file");
		rc = VZ_EINVAL; /* a task failure, not an unreachable host */
		goto fail;
	}
	json_object_set_new(r, "changed", json_true());
	json_object_set_new(r, "checksum", json_string(sha));
	json_object_set_new(r, "dest", json_string(path));
	json_object_set_new(r, "md5sum", json_string(md5));
	json_object_set_new(r, "remote_checksum", json_string(st.sha1));
	json_object_set_new(r, "remote_md5sum", json_null());
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	vz_pbmod_st_free(&st);
	vz_pbmod_run_free(&run);
	vz_buf_free(&d);
	vz_buf_free(&s);
	vz_buf_free(&local);
	free(path);
	return vz_pbmod_done(result, ctx, r, rc);
}

const vz_pbmod vz_pbmod_fetch = { "fetch", run, check, 0, 0 };
