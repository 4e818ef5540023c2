/* vz_pbmod_script: ansible.builtin.script, natively: the executor script is sent through stdin
 * into a fresh mktemp dir on the node and run there in the same round trip (its stdin is
 * /dev/null), then the dir is removed. creates/removes are checked first. */
#include <stdlib.h>
#include <string.h>

#include "vz_pbmod_util.h"
#include "vz_util.h"

/* What a script may print before the task fails (each of stdout, stderr is capped). */
#define SCRIPT_MAX_OUT ((size_t)16 << 20)

static const char *const opts[] = { "cmd", "chdir", "creates", "removes", "executable", "decrypt",
				    NULL };

static int check(const json_t *args, vz_err *e)
{
	return vz_pbmod_args_known(args, "script", opts, e);
}

/* The first shell word of s (shlex rules: quotes, backslashes) into *word; *end is where it
 * stops in s. 0, or -1 for an unterminated quote or no word. */
static int first_word(char **word, const char **end, const char *s)
{
	vz_buf w = VZ_BUF_INIT(65536);
	const char *p = s;
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (!*p)
		return -1;
	while (*p && *p != ' ' && *p != '\t' && *p != '\n') {
		if (*p == '\'' || *p == '"') {
			char q = *p++;
			while (*p && *p != q) {
				if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				vz_buf_putc(&w, *p++);
			}
			if (*p != q) {
				vz_buf_free(&w);
				return -1;
			}
			p++;
		} else if (*p == '\\' && p[1]) {
			vz_buf_putc(&w, p[1]);
			p += 2;
		} else {
			vz_buf_putc(&w, *p++);
		}
	}
	*end = p;
	*word = vz_buf_detach(&w);
	vz_buf_free(&w);
	return *word ? 0 : -1;
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	static const char *const raw_keys[] = { "_raw_params", "cmd", NULL };
	static const char *const chdir_keys[] = { "chdir", NULL };
	static const char *const cr_keys[] = { "creates", NULL };
	static const char *const rm_keys[] = { "removes", NULL };
	static const char *const ex_keys[] = { "executable", NULL };
	json_t *r = json_object();
	vz_buf s = VZ_BUF_INIT(1 << 20), data = VZ_BUF_INIT(VZ_PBMOD_MAX_FILE);
	vz_pbmod_run run = { 0 };
	vz_pbmod_st st = { 0 };
	vz_err err = { 0 };
	const char *raw, *chdir, *creates, *removes, *exe, *rest = NULL;
	char b1[64], b2[64], b3[64], b4[64], b5[64];
	char *word = NULL, *local = NULL;
	int rc = 0;

	json_object_set_new(r, "changed", json_false());
	if ((rc = check(args, &err)) || (rc = vz_pbmod_arg_str(&raw, args, raw_keys, b1, sizeof(b1), &err)) ||
	    (rc = vz_pbmod_arg_str(&chdir, args, chdir_keys, b2, sizeof(b2), &err)) ||
	    (rc = vz_pbmod_arg_str(&creates, args, cr_keys, b3, sizeof(b3), &err)) ||
	    (rc = vz_pbmod_arg_str(&removes, args, rm_keys, b4, sizeof(b4), &err)) ||
	    (rc = vz_pbmod_arg_str(&exe, args, ex_keys, b5, sizeof(b5), &err)))
		goto fail;
	if (!chdir)
		chdir = ctx->chdir;
	for (int k = 0; k < 2; k++) {
		const char *p = k == 0 ? creates : removes;
		if (!p || !*p)
			continue;
		if ((rc = vz_pbmod_node_stat(&st, ctx, p, 1, 0, &err)) != 0)
			goto fail;
		int exists = st.exists;
		vz_pbmod_st_free(&st);
		if (k == 0 ? exists : !exists) {
			json_object_set_new(r, "skipped", json_true());
			json_object_set_new(r, "msg", json_sprintf(k == 0 ? "%s exists, matching creates option" :
							  "%s does not exist, matching removes option", p));
			goto out;
		}
	}
	if (chdir && chdir[0] != '/') {
		vz_pbmod_failed(r, "chdir %s must be an absolute path for a Unix-aware remote node", chdir);
		goto out;
	}
	if (!raw || first_word(&word, &rest, raw) != 0) {
		vz_pbmod_failed(r, "script needs the path of a local script (free form), with optional "
				"arguments after it");
		goto out;
	}
	if ((rc = vz_pbmod_find_src(&local, ctx, word, "files", &err)) != 0)
		goto fail;
	if ((rc = vz_read_file(local, VZ_PBMOD_MAX_FILE, &data, &err)) != 0)
		goto fail;
	const char *bn = strrchr(local, '/');
	bn = bn ? bn + 1 : local;
	vz_buf_puts(&s, "d=$(mktemp -d \"${TMPDIR:-/tmp}/vinz-script.XXXXXXXX\") || exit 125\nf=\"$d\"/");
	vz_node_sh_quote(&s, bn);
	vz_buf_puts(&s, "\nif ! cat > \"$f\" || ! chmod 0700 \"$f\"; then rm -rf -- \"$d\"; exit 125; fi\n");
	if (chdir) {
		vz_buf_puts(&s, "cd -- ");
		vz_node_sh_quote(&s, chdir);
		vz_buf_puts(&s, " || { rm -rf -- \"$d\"; exit 1; }\n");
	}
	vz_buf_puts(&s, "( ");
	if (exe && *exe)
		vz_buf_printf(&s, "%s ", exe);
	vz_buf_printf(&s, "\"$f\"%s ) </dev/null\nrc=$?\nrm -rf -- \"$d\"\nexit $rc\n", rest);
	if ((rc = vz_pbmod_sh(&run, ctx, vz_buf_cstr(&s), data.ptr, data.len, SCRIPT_MAX_OUT, &err)) != 0) {
		if (rc == VZ_ETIMEOUT)
			json_object_set_new(r, "rc", json_integer(-1));
		goto fail;
	}
	if (run.overflow) {
		vz_pbmod_failed(r, "the script's output passed %zu MiB: stopped", SCRIPT_MAX_OUT >> 20);
		goto out;
	}
	json_object_set_new(r, "changed", json_true());
	json_object_set_new(r, "rc", json_integer(run.status));
	json_object_set_new(r, "stdout", vz_pbmod_text(vz_buf_cstr(&run.out), run.out.len));
	json_object_set_new(r, "stderr", vz_pbmod_text(vz_buf_cstr(&run.err), run.err.len));
	json_object_set_new(r, "stdout_lines", vz_pbmod_lines(vz_buf_cstr(&run.out)));
	json_object_set_new(r, "stderr_lines", vz_pbmod_lines(vz_buf_cstr(&run.err)));
	if (run.status == 125 && !run.out.len)
		vz_pbmod_failed(r, "could not place the script on the node: %.300s", vz_buf_cstr(&run.err));
	else if (run.status != 0)
		vz_pbmod_failed(r, "non-zero return code");
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	vz_pbmod_st_free(&st);
	vz_pbmod_run_free(&run);
	vz_buf_free(&s);
	vz_buf_free(&data);
	free(word);
	free(local);
	return vz_pbmod_done(result, ctx, r, rc);
}

const vz_pbmod vz_pbmod_script = { "script", run, check, 1, 0 };
