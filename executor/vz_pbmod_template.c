/* vz_pbmod_template: ansible.builtin.template, natively: the executor file is rendered with
 * vz_template (trim_blocks on, trailing newline kept, as Ansible's template action) against the
 * task's variables plus Ansible's template_* ones, then shipped as copy ships one file. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pwd.h>

#include "vz_pbmod_util.h"
#include "vz_template.h"
#include "vz_util.h"

static const char *const opts[] = { "src", "dest", "mode", "owner", "group", "force", "follow",
				    "backup", "trim_blocks", "lstrip_blocks", "newline_sequence",
				    "output_encoding", "unsafe_writes", "attributes", "attr", "selevel",
				    "serole", "setype", "seuser", "validate", "block_start_string",
				    "block_end_string", "variable_start_string", "variable_end_string",
				    "comment_start_string", "comment_end_string", NULL };

static int check(const json_t *args, vz_err *e)
{
	return vz_pbmod_args_known(args, "template", opts, e);
}

/* Jinja2 writes every newline of the output as newline_sequence. */
static int renewline(vz_buf *out, const char *s, const char *seq)
{
	for (; *s; s++) {
		if (*s == '\r') {
			if (s[1] == '\n')
				s++;
			vz_buf_puts(out, seq);
		} else if (*s == '\n') {
			vz_buf_puts(out, seq);
		} else {
			vz_buf_putc(out, *s);
		}
	}
	return out->failed;
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	static const char *const src_keys[] = { "src", NULL };
	static const char *const dest_keys[] = { "dest", NULL };
	static const char *const own_keys[] = { "owner", NULL };
	static const char *const grp_keys[] = { "group", NULL };
	static const char *const nl_keys[] = { "newline_sequence", NULL };
	static const char *const enc_keys[] = { "output_encoding", NULL };
	static const char *const unsupported[] = { "block_start_string", "block_end_string",
						   "variable_start_string", "variable_end_string",
						   "comment_start_string", "comment_end_string",
						   "validate", NULL };
	json_t *r = json_object(), *vars = NULL;
	vz_buf tpl = VZ_BUF_INIT(VZ_PBMOD_MAX_FILE), out = VZ_BUF_INIT(VZ_PBMOD_MAX_FILE);
	vz_err err = { 0 };
	const char *src, *dest, *owner, *group, *nl, *enc;
	char b1[64], b2[64], b3[64], b4[64], b5[64], b6[64], host[256];
	char *mode = NULL, *local = NULL, *text = NULL, *dest_file = NULL;
	int force, trim, lstrip, backup, follow, rc = 0;

	json_object_set_new(r, "changed", json_false());
	if ((rc = check(args, &err)) || (rc = vz_pbmod_arg_str(&src, args, src_keys, b1, sizeof(b1), &err)) ||
	    (rc = vz_pbmod_arg_str(&dest, args, dest_keys, b2, sizeof(b2), &err)) ||
	    (rc = vz_pbmod_arg_str(&owner, args, own_keys, b3, sizeof(b3), &err)) ||
	    (rc = vz_pbmod_arg_str(&group, args, grp_keys, b4, sizeof(b4), &err)) ||
	    (rc = vz_pbmod_arg_str(&nl, args, nl_keys, b5, sizeof(b5), &err)) ||
	    (rc = vz_pbmod_arg_str(&enc, args, enc_keys, b6, sizeof(b6), &err)) ||
	    (rc = vz_pbmod_arg_bool(&force, args, "force", 1, &err)) ||
	    (rc = vz_pbmod_arg_bool(&trim, args, "trim_blocks", 1, &err)) ||
	    (rc = vz_pbmod_arg_bool(&lstrip, args, "lstrip_blocks", 0, &err)) ||
	    (rc = vz_pbmod_arg_bool(&backup, args, "backup", 0, &err)) ||
	    (rc = vz_pbmod_arg_bool(&follow, args, "follow", 0, &err)) ||
	    (rc = vz_pbmod_arg_mode(&mode, args, "mode", &err)))
		goto fail;
	if (!src || !dest) {
		vz_pbmod_failed(r, "src and dest are required");
		goto out;
	}
	for (size_t i = 0; unsupported[i]; i++) {
		if (json_object_get(args, unsupported[i])) {
			vz_pbmod_failed(r, "%s is not supported by vinz's template", unsupported[i]);
			goto out;
		}
	}
	if (lstrip) {
		vz_pbmod_failed(r, "lstrip_blocks=yes is not supported by vinz's template engine");
		goto out;
	}
	if (backup) {
		vz_pbmod_failed(r, "backup=yes is not supported by vinz's template");
		goto out;
	}
	if (enc && strcasecmp(enc, "utf-8") && strcasecmp(enc, "utf8")) {
		vz_pbmod_failed(r, "output_encoding %s is not supported by vinz: only utf-8", enc);
		goto out;
	}
	if (!nl)
		nl = "\\n";
	const char *seq = !strcmp(nl, "\\n") ? "\n" : !strcmp(nl, "\\r\\n") ? "\r\n" : !strcmp(nl, "\\r") ? "\r" :
			  !strcmp(nl, "\n") ? "\n" : !strcmp(nl, "\r\n") ? "\r\n" : !strcmp(nl, "\r") ? "\r" : NULL;
	if (!seq) {
		vz_pbmod_failed(r, "newline_sequence must be one of \\n, \\r or \\r\\n");
		goto out;
	}
	if ((rc = vz_pbmod_find_src(&local, ctx, src, "templates", &err)) != 0)
		goto fail;
	if ((rc = vz_read_file(local, VZ_PBMOD_MAX_FILE, &tpl, &err)) != 0)
		goto fail;
	if (memchr(vz_buf_cstr(&tpl), '\0', tpl.len)) {
		vz_pbmod_failed(r, "%s is not a text template (it has NUL bytes)", src);
		goto out;
	}
	/* the variables Ansible's template action adds */
	vars = ctx->vars && json_is_object(ctx->vars) ? json_copy(ctx->vars) : json_object();
	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	struct stat sb;
	const char *uid_name = "";
	if (stat(local, &sb) == 0) {
		struct passwd *pw = getpwuid(sb.st_uid);
		if (pw)
			uid_name = pw->pw_name;
	}
	json_object_set_new(vars, "template_host", json_string(host));
	json_object_set_new(vars, "template_path", json_string(local));
	json_object_set_new(vars, "template_fullpath", json_string(local));
	json_object_set_new(vars, "template_destpath", json_string(dest));
	json_object_set_new(vars, "template_uid", json_string(uid_name));
	if (!json_object_get(vars, "ansible_managed"))
		json_object_set_new(vars, "ansible_managed", json_string("Ansible managed"));
	vz_template_opts topts = { .max_output = VZ_PBMOD_MAX_FILE, .trim_blocks = trim,
				   .keep_trailing_newline = 1 };
	if ((rc = vz_template_render(&text, tpl.ptr ? tpl.ptr : "", tpl.len, vars, &topts, &err)) != 0) {
		const char *m = vz_err_msg(&err);
		if (rc == VZ_ENOMEM)
			goto fail;
		if (ctx->no_log)
			vz_pbmod_failed(r, "%s: the template failed to render (details hidden: no_log)", src);
		else if (strstr(m, "is undefined"))
			vz_pbmod_failed(r, "AnsibleUndefinedVariable: %s (in template %s)", m, src);
		else
			vz_pbmod_failed(r, "AnsibleError: template error while templating %s: %s", src, m);
		rc = 0;
		goto out;
	}
	if (renewline(&out, text, seq)) {
		vz_pbmod_failed(r, "%s renders to more than %zu MiB", src, VZ_PBMOD_MAX_FILE >> 20);
		goto out;
	}
	{
		size_t n = strlen(dest);
		if (n && dest[n - 1] == '/') {
			const char *bn = strrchr(local, '/');
			dest_file = vz_path_join(dest, bn ? bn + 1 : local);
		}
	}
	const char *bn = strrchr(local, '/');
	vz_pbmod_put o = { .mode = mode, .owner = owner, .group = group, .force = force, .src = local,
			   .follow = follow, .into_name = bn ? bn + 1 : local,
			   .mkparents = dest[0] && dest[strlen(dest) - 1] == '/' };
	rc = vz_pbmod_put_file(r, ctx, out.ptr, out.len, dest_file ? dest_file : dest, &o, e);
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	json_decref(vars);
	free(mode);
	free(local);
	free(text);
	free(dest_file);
	vz_buf_free(&tpl);
	vz_buf_free(&out);
	return vz_pbmod_done(result, ctx, r, rc);
}

const vz_pbmod vz_pbmod_template = { "template", run, check, 0, 0 };
