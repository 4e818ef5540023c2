/* vz_pbmod_util: shared helpers of the native file/transfer modules; see vz_pbmod_util.h. */
#include "vz_pbmod_util.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "vz_tar.h"
#include "vz_util.h"

/* ---- options ---- */

int vz_pbmod_args_known(const json_t *args, const char *mod, const char *const *allowed, vz_err *e)
{
	const char *key;
	json_t *val;
	vz_buf bad = VZ_BUF_INIT(2048), sup = VZ_BUF_INIT(2048);
	int rc = 0;

	if (args && !json_is_object(args))
		return vz_err_set(e, VZ_EINVAL, "%s: the arguments must be a mapping of options", mod);
	json_object_foreach((json_t *)args, key, val) {
		int ok = key[0] == '_';
		for (size_t i = 0; !ok && allowed[i]; i++)
			ok = !strcmp(allowed[i], key);
		if (!ok)
			vz_buf_printf(&bad, "%s%s", bad.len ? ", " : "", key);
	}
	if (bad.len) {
		for (size_t i = 0; allowed[i]; i++)
			vz_buf_printf(&sup, "%s%s", i ? ", " : "", allowed[i]);
		rc = vz_err_set(e, VZ_EINVAL, "Unsupported parameters for (%s) module: %s. Supported "
				"parameters include: %s.", mod, vz_buf_cstr(&bad), vz_buf_cstr(&sup));
	}
	vz_buf_free(&bad);
	vz_buf_free(&sup);
	return rc;
}

const json_t *vz_pbmod_arg(const json_t *args, const char *const *keys)
{
	for (size_t i = 0; keys[i]; i++) {
		const json_t *v = json_object_get(args, keys[i]);
		if (v)
			return v;
	}
	return NULL;
}

int vz_pbmod_arg_str(const char **out, const json_t *args, const char *const *keys, char *buf,
		     size_t n, vz_err *e)
{
	const json_t *v = vz_pbmod_arg(args, keys);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		*out = json_string_value(v);
		return 0;
	}
	if (json_is_integer(v))
		snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v)) {
		/* the shortest text that reads back the same, as Python's repr of a float */
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(buf, n, "%.*g", prec, json_real_value(v));
			if (strtod(buf, NULL) == json_real_value(v))
				break;
		}
		if (!strpbrk(buf, ".eEn") && strlen(buf) + 2 < n)
			strcat(buf, ".0");
	}
	else if (json_is_boolean(v))
		snprintf(buf, n, "%s", json_is_true(v) ? "True" : "False");
	else
		return vz_err_set(e, VZ_EINVAL, "option %s must be a string, not a list or mapping", keys[0]);
	*out = buf;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "yes", "on", "1", "true", "y", "t", NULL };
	static const char *const no[] = { "no", "off", "0", "false", "n", "f", NULL };
	for (size_t i = 0; yes[i]; i++)
		if (!strcasecmp(s, yes[i]))
			return *out = 1, 0;
	for (size_t i = 0; no[i]; i++)
		if (!strcasecmp(s, no[i]))
			return *out = 0, 0;
	return -1;
}

int vz_pbmod_arg_bool(int *out, const json_t *args, const char *key, int dflt, vz_err *e)
{
	const json_t *v = json_object_get(args, key);
	*out = dflt;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
		*out = (int)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && parse_bool(json_string_value(v), out) == 0)
		return 0;
	return vz_err_set(e, VZ_EINVAL, "argument '%s' is of type %s and we were unable to convert to "
			  "bool: the value is not a valid boolean (yes/no, true/false, on/off, 1/0)", key,
			  json_is_string(v) ? "str" : "non-str");
}

int vz_pbmod_arg_int(int64_t *out, const json_t *args, const char *key, int64_t dflt, vz_err *e)
{
	const json_t *v = json_object_get(args, key);
	*out = dflt;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && vz_parse_i64(json_string_value(v), INT64_MIN, INT64_MAX, out) == 0)
		return 0;
	return vz_err_set(e, VZ_EINVAL, "argument '%s' must be an integer", key);
}

static int symbolic_ok(const char *s)
{
	/* chmod's grammar: clause (',' clause)*; clause: [ugoa]* ([-+=] ([rwxXst]* | [ugo]))+ */
	const char *p = s;
	if (!*p)
		return 0;
	for (;;) {
		while (*p && strchr("ugoa", *p))
			p++;
		if (!*p || !strchr("-+=", *p))
			return 0;
		while (*p && strchr("-+=", *p)) {
			p++;
			if (*p && strchr("ugo", *p)) {
				p++;
			} else {
				while (*p && strchr("rwxXst", *p))
					p++;
			}
		}
		if (!*p)
			return 1;
		if (*p != ',')
			return 0;
		p++;
	}
}

int vz_pbmod_arg_mode(char **out, const json_t *args, const char *key, vz_err *e)
{
	const json_t *v = json_object_get(args, key);
	char buf[32];
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		json_int_t m = json_integer_value(v);
		if (m < 0 || m > 07777)
			return vz_err_set(e, VZ_EINVAL, "mode must be in octal or symbolic form: %"
					  JSON_INTEGER_FORMAT " is out of range", m);
		snprintf(buf, sizeof(buf), "%04o", (unsigned)m);
		*out = vz_xstrdup(buf);
		return 0;
	}
	if (!json_is_string(v))
		return vz_err_set(e, VZ_EINVAL, "mode must be in octal or symbolic form");
	const char *s = json_string_value(v);
	if (!strcmp(s, "preserve")) {
		*out = vz_xstrdup(s);
		return 0;
	}
	size_t n = strlen(s);
	if (n && strspn(s, "01234567") == n) {
		unsigned long m = strtoul(s, NULL, 8);
		if (n > 6 || m > 07777)
			return vz_err_set(e, VZ_EINVAL, "mode must be in octal or symbolic form: '%s' is "
					  "out of range", s);
		snprintf(buf, sizeof(buf), "%04lo", m);
		*out = vz_xstrdup(buf);
		return 0;
	}
	if (!symbolic_ok(s))
		return vz_err_set(e, VZ_EINVAL, "mode must be in octal or symbolic form: bad symbolic "
				  "permission for mode: %.64s", s);
	*out = vz_xstrdup(s);
	return 0;
}

/* ---- results ---- */

json_t *vz_pbmod_failed(json_t *r, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!r)
		r = json_object();
	json_object_set_new(r, "failed", json_true());
	if (!json_object_get(r, "changed"))
		json_object_set_new(r, "changed", json_false());
	json_object_set_new(r, "msg", json_string(msg));
	return r;
}

int vz_pbmod_fatal(int rc)
{
	/* VZ_EIO is not here: vz_pbmod_sh turns the node's EIO into VZ_ECONNECT, so an EIO seen
	 * by a module is an executor-side file error, which fails the task only */
	return rc == VZ_ECONNECT || rc == VZ_ECANCELED || rc == VZ_ENOMEM;
}

int vz_pbmod_report(json_t *r, int rc, const vz_err *err, vz_err *e)
{
	if (vz_pbmod_fatal(rc)) {
		vz_err_set(e, rc, "%s", vz_err_msg(err));
		return rc;
	}
	vz_pbmod_failed(r, "%s", vz_err_msg(err));
	return 0;
}

void vz_pbmod_scrub(const vz_pbmod_ctx *ctx, json_t *r)
{
	if (!ctx->no_log || !r || !json_is_true(json_object_get(r, "failed")))
		return;
	json_object_set_new(r, "msg", json_string("the task failed; details hidden: no_log"));
	json_object_del(r, "stderr");
	json_object_del(r, "stderr_lines");
}

int vz_pbmod_done(json_t **result, const vz_pbmod_ctx *ctx, json_t *r, int rc)
{
	if (rc) {
		json_decref(r);
		r = NULL;
	}
	vz_pbmod_scrub(ctx, r);
	*result = r;
	return rc;
}

const char *vz_pbmod_unknown_key(const json_t *args, const char *const *allowed)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)args, k, v) {
		int found = 0;
		for (size_t i = 0; !found && allowed[i]; i++)
			found = !strcmp(allowed[i], k);
		if (!found)
			return k;
	}
	return NULL;
}

/* ---- paths ---- */

const char *vz_pbmod_base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

int vz_pbmod_ends_slash(const char *p)
{
	size_t n = strlen(p);
	return n && p[n - 1] == '/';
}

/* ---- running on the node ---- */

#define ERR_CAP (64 * 1024)

static int run_output(void *arg, int stream, const char *data, size_t len)
{
	vz_pbmod_run *r = arg;
	vz_buf *b = stream == VZ_NODE_STDOUT ? &r->out : &r->err;
	if (vz_buf_add(b, data, len) != 0) {
		r->overflow = 1;
		return 1; /* stop the command: its output is not wanted past the cap */
	}
	return 0;
}

int vz_pbmod_sh(vz_pbmod_run *r, const vz_pbmod_ctx *ctx, const char *script, const void *in,
		size_t in_len, size_t max_out, vz_err *e)
{
	/* the command travels in one SSH exec request, which has to fit in one packet */
	vz_buf full = VZ_BUF_INIT(28000), cmd = VZ_BUF_INIT(30000);
	vz_node_result res;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	vz_buf_init(&r->out, max_out);
	vz_buf_init(&r->err, ERR_CAP);
	r->status = -1;
	for (size_t i = 0; ctx->env && ctx->env[i]; i++) {
		const char *kv = ctx->env[i], *eq = strchr(kv, '=');
		size_t k = 0;
		while (eq && kv + k < eq && (kv[k] == '_' || (kv[k] >= 'A' && kv[k] <= 'Z') ||
					     (kv[k] >= 'a' && kv[k] <= 'z') || (k && kv[k] >= '0' && kv[k] <= '9')))
			k++;
		if (!eq || k == 0 || kv + k != eq) {
			rc = vz_err_set(e, VZ_EINVAL, "environment entry %zu is not NAME=VALUE with a shell "
					"variable name", i);
			goto out;
		}
		vz_buf_printf(&full, "export %.*s=", (int)k, kv);
		vz_node_sh_quote(&full, eq + 1);
		vz_buf_putc(&full, '\n');
	}
	vz_buf_puts(&full, script);
	/* the argv as the node would see it, measured as its quoted command line */
	const char *bu = ctx->become_user && *ctx->become_user ? ctx->become_user : "root";
	const char *av_become[] = { "sudo", "-n", "-H", "-u", bu, "--", "/bin/sh", "-c", vz_buf_cstr(&full), NULL };
	const char *const *av = ctx->become ? av_become : av_become + 6;
	for (size_t i = 0; av[i]; i++) {
		vz_node_sh_quote(&cmd, av[i]);
		vz_buf_putc(&cmd, ' ');
	}
	if (full.failed || cmd.failed) {
		rc = vz_err_set(e, VZ_ETOOBIG, "the command for the node is over 30000 bytes (paths or "
				"arguments too long for one SSH exec request)");
		goto out;
	}
	/* an argv: the node starts /bin/sh (or sudo) directly, no shell of its own before it */
	vz_node_cmd c = { .argv = av, .stdin_data = in, .stdin_len = in ? in_len : 0,
			  .timeout_ms = ctx->timeout_ms > 0 ? ctx->timeout_ms : 0,
			  .on_output = run_output, .ctx = r, .cancel = ctx->cancel };
	rc = vz_node_exec(ctx->node, &c, &res, e);
	if (rc == VZ_EIO)
		rc = VZ_ECONNECT; /* the connection broke: the host is unreachable */
	if (rc == VZ_ECANCELED && r->overflow && !(ctx->cancel && *ctx->cancel)) {
		vz_err_clear(e);
		rc = 0;
		r->status = -1;
		goto out;
	}
	if (rc == VZ_ETIMEOUT) {
		vz_err_clear(e);
		rc = vz_err_set(e, VZ_ETIMEOUT, "the task timed out after %d ms and was killed on the node",
				ctx->timeout_ms);
		goto out;
	}
	if (rc == 0)
		r->status = res.exit_status;
	/* sudo's own refusals (not installed, a password needed, user unknown) fail the task */
	if (rc == 0 && ctx->become && r->status != 0 &&
	    (vz_startswith(vz_buf_cstr(&r->err), "sudo:") || strstr(vz_buf_cstr(&r->err), "sudo: not found") ||
	     strstr(vz_buf_cstr(&r->err), "sudo: command not found")))
		rc = vz_err_set(e, VZ_EAUTH, "become (sudo -n -u %s) failed on the node: %.300s",
				ctx->become_user && *ctx->become_user ? ctx->become_user : "root",
				vz_buf_cstr(&r->err));
out:
	vz_buf_free(&full);
	vz_buf_free(&cmd);
	return rc;
}

void vz_pbmod_run_free(vz_pbmod_run *r)
{
	if (!r)
		return;
	vz_buf_free(&r->out);
	vz_buf_free(&r->err);
}

/* The stat function prints one line per fact so that names with odd bytes only affect their
 * own line; link target and resolved path come last and run to the end of the output. */
void vz_pbmod_stat_sh(vz_buf *s, int follow, int want_sum)
{
	vz_buf_printf(s, "vzst() {\np=$1\nif [ -e \"$p\" ]%s; then :; else echo absent; return 0; fi\n",
		      follow ? "" : " || [ -L \"$p\" ]");
	vz_buf_printf(s, "stat %s-c '%%f|%%s|%%u|%%g|%%h|%%i|%%d|%%X|%%Y|%%Z' -- \"$p\" || return 3\n"
		      "stat %s-c '%%U' -- \"$p\"; stat %s-c '%%G' -- \"$p\"\n",
		      follow ? "-L " : "", follow ? "-L " : "", follow ? "-L " : "");
	vz_buf_puts(s, "r=0; w=0; x=0; t=0; d=0; [ -r \"$p\" ] && r=1; [ -w \"$p\" ] && w=1; [ -x \"$p\" ] && x=1\n"
		    "[ -e \"$p\" ] && t=1; [ -d \"$p\" ] && d=1; echo \"$r$w$x$t$d\"\n");
	/* no checksum past the transfer cap: nothing that big is shipped or fetched anyway */
	if (want_sum)
		vz_buf_printf(s, "if %s[ -f \"$p\" ] && [ -r \"$p\" ] && [ \"$(stat -L -c %%s -- \"$p\")\" -le %zu ]; "
			      "then sha1sum < \"$p\" | cut -c1-40; else echo -; fi\n",
			      follow ? "" : "[ ! -L \"$p\" ] && ", VZ_PBMOD_MAX_FILE);
	else
		vz_buf_puts(s, "echo -\n");
	if (!follow)
		vz_buf_puts(s, "if [ -L \"$p\" ]; then readlink -f -- \"$p\" || echo; readlink -- \"$p\"; fi\n");
	vz_buf_puts(s, "}\n");
}

int vz_pbmod_stat_parse(vz_pbmod_st *st, char *o, const char *path, vz_err *e)
{
	memset(st, 0, sizeof(*st));
	if (!strncmp(o, "absent\n", 7))
		return 0;
	char *lines[5] = { 0 };
	char *p = o;
	for (int i = 0; i < 5; i++) {
		char *nl = strchr(p, '\n');
		if (!nl)
			return vz_err_set(e, VZ_EPROTO, "unexpected stat output for %s on the node", path);
		*nl = '\0';
		lines[i] = p;
		p = nl + 1;
	}
	unsigned long raw;
	unsigned long long size, ino, dev;
	long uid, gid;
	unsigned long nlink;
	double at, mt, ct;
	if (sscanf(lines[0], "%lx|%llu|%ld|%ld|%lu|%llu|%llu|%lf|%lf|%lf", &raw, &size, &uid, &gid, &nlink,
		   &ino, &dev, &at, &mt, &ct) != 10)
		return vz_err_set(e, VZ_EPROTO, "unexpected stat output for %s on the node: %.100s", path,
				  lines[0]);
	st->exists = 1;
	switch (raw & S_IFMT) {
	case S_IFREG: st->type = 'f'; break;
	case S_IFDIR: st->type = 'd'; break;
	case S_IFLNK: st->type = 'l'; break;
	case S_IFCHR: st->type = 'c'; break;
	case S_IFBLK: st->type = 'b'; break;
	case S_IFIFO: st->type = 'p'; break;
	case S_IFSOCK: st->type = 's'; break;
	default: st->type = '?'; break;
	}
	st->mode = (unsigned)(raw & 07777);
	st->size = size;
	st->uid = uid;
	st->gid = gid;
	st->nlink = nlink;
	st->inode = ino;
	st->dev = dev;
	st->atime = at;
	st->mtime = mt;
	st->ctime = ct;
	vz_strlcpy(st->owner, lines[1], sizeof(st->owner));
	vz_strlcpy(st->group, lines[2], sizeof(st->group));
	const char *f = lines[3];
	size_t fl = strlen(f);
	st->readable = fl > 0 && f[0] == '1';
	st->writeable = fl > 1 && f[1] == '1';
	st->executable = fl > 2 && f[2] == '1';
	st->target_exists = fl > 3 && f[3] == '1';
	st->target_dir = fl > 4 && f[4] == '1';
	if (strlen(lines[4]) == 40)
		vz_strlcpy(st->sha1, lines[4], sizeof(st->sha1));
	if (st->type == 'l') {
		char *nl = strchr(p, '\n');
		if (nl) {
			*nl = '\0';
			st->lnk_source = vz_xstrdup(p);
			p = nl + 1;
			size_t n = strlen(p);
			if (n && p[n - 1] == '\n')
				p[n - 1] = '\0';
			st->lnk_target = vz_xstrdup(p);
		}
	}
	return 0;
}

int vz_pbmod_node_stat(vz_pbmod_st *st, const vz_pbmod_ctx *ctx, const char *path, int follow,
		       int want_sum, vz_err *e)
{
	vz_buf s = VZ_BUF_INIT(1 << 20);
	vz_pbmod_run r;
	int rc = 0;

	memset(st, 0, sizeof(*st));
	vz_pbmod_stat_sh(&s, follow, want_sum);
	vz_buf_puts(&s, "vzst ");
	vz_node_sh_quote(&s, path);
	if ((rc = vz_pbmod_sh(&r, ctx, vz_buf_cstr(&s), NULL, 0, 1 << 20, e)) != 0)
		goto out;
	if (r.status != 0 || r.overflow) {
		rc = vz_err_set(e, VZ_EIO, "cannot stat %s on the node (exit %d): %.300s", path, r.status,
				vz_buf_cstr(&r.err));
		goto out;
	}
	rc = vz_pbmod_stat_parse(st, r.out.ptr ? r.out.ptr : (char *)"", path, e);
out:
	vz_pbmod_run_free(&r);
	vz_buf_free(&s);
	return rc;
}

void vz_pbmod_st_free(vz_pbmod_st *st)
{
	if (!st)
		return;
	free(st->lnk_target);
	free(st->lnk_source);
	st->lnk_target = st->lnk_source = NULL;
}

int vz_pbmod_attrs(int *changed, const vz_pbmod_ctx *ctx, const char *path, const char *mode,
		   const char *owner, const char *group, int recurse, vz_err *e)
{
	vz_buf s = VZ_BUF_INIT(1 << 20);
	vz_pbmod_run r;
	int rc = 0;

	*changed = 0;
	if (!owner && !group && (!mode || !strcmp(mode, "preserve")))
		return 0;
	vz_buf_puts(&s, "p=");
	vz_node_sh_quote(&s, path);
	if (recurse)
		vz_buf_puts(&s, "\nsnap() { find \"$p\" -exec stat -c '%a %u %g %n' {} + | cksum; }\n");
	else
		vz_buf_puts(&s, "\nsnap() { stat -c '%a %u %g' -- \"$p\"; }\n");
	vz_buf_puts(&s, "a=$(snap) || exit 3\n");
	if (owner) {
		vz_buf_printf(&s, "chown %s-- ", recurse ? "-R " : "");
		vz_node_sh_quote(&s, owner);
		vz_buf_puts(&s, " \"$p\" || exit 4\n");
	}
	if (group) {
		vz_buf_printf(&s, "chgrp %s-- ", recurse ? "-R " : "");
		vz_node_sh_quote(&s, group);
		vz_buf_puts(&s, " \"$p\" || exit 4\n");
	}
	if (mode && strcmp(mode, "preserve")) {
		vz_buf_printf(&s, "chmod %s", recurse ? "-R " : "");
		vz_node_sh_quote(&s, mode);
		vz_buf_puts(&s, " -- \"$p\" || exit 5\n");
	}
	vz_buf_puts(&s, "b=$(snap) || exit 3\n[ \"$a\" = \"$b\" ] || echo changed\n");
	if ((rc = vz_pbmod_sh(&r, ctx, vz_buf_cstr(&s), NULL, 0, 4096, e)) != 0)
		goto out;
	if (r.status != 0) {
		rc = vz_err_set(e, VZ_EINVAL, "%s %s failed: %.300s",
				r.status == 5 ? "chmod" : r.status == 4 ? "chown/chgrp" : "stat", path,
				vz_buf_cstr(&r.err));
		goto out;
	}
	*changed = strstr(vz_buf_cstr(&r.out), "changed") != NULL;
out:
	vz_pbmod_run_free(&r);
	vz_buf_free(&s);
	return rc;
}

const char *vz_pbmod_mode_str(char *buf, unsigned mode)
{
	snprintf(buf, 8, "0%03o", mode & 07777);
	return buf;
}

void vz_pbmod_path_info(json_t *r, const vz_pbmod_st *st)
{
	char m[8];
	if (!st->exists)
		return;
	json_object_set_new(r, "uid", json_integer(st->uid));
	json_object_set_new(r, "gid", json_integer(st->gid));
	json_object_set_new(r, "owner", json_string(st->owner));
	json_object_set_new(r, "group", json_string(st->group));
	json_object_set_new(r, "mode", json_string(vz_pbmod_mode_str(m, st->mode)));
	json_object_set_new(r, "state", json_string(st->type == 'l' ? "link" : st->type == 'd' ? "directory" :
						    st->nlink > 1 ? "hard" : "file"));
	json_object_set_new(r, "size", json_integer((json_int_t)st->size));
}

json_t *vz_pbmod_text(const char *s, size_t n)
{
	size_t i = 0, k;

	if (!s)
		s = "";
	while (i < n && (k = vz_utf8_len(s + i, n - i)) > 0)
		i += k;
	if (i == n)
		return json_stringn(s ? s : "", n);
	vz_buf b = VZ_BUF_INIT(n * 3 + 1);
	for (i = 0; i < n;) {
		k = vz_utf8_len(s + i, n - i);
		if (k) {
			vz_buf_add(&b, s + i, k);
			i += k;
		} else {
			vz_buf_puts(&b, "\xef\xbf\xbd");
			i++;
		}
	}
	json_t *j = json_stringn(vz_buf_cstr(&b), b.len);
	vz_buf_free(&b);
	return j ? j : json_string("");
}

json_t *vz_pbmod_lines(const char *s)
{
	json_t *a = json_array();
	while (s && *s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);
		size_t k = n;
		if (k && s[k - 1] == '\r')
			k--;
		json_array_append_new(a, vz_pbmod_text(s, k));
		s += n + (nl ? 1 : 0);
	}
	return a;
}

/* ---- executor-side files ---- */

static int under(const char *real, const char *dir)
{
	char rd[PATH_MAX];
	if (!dir || !realpath(dir, rd))
		return 0;
	size_t n = strlen(rd);
	if (n == 1 && rd[0] == '/')
		return 1;
	return !strncmp(real, rd, n) && (real[n] == '\0' || real[n] == '/');
}

int vz_pbmod_confined(const vz_pbmod_ctx *ctx, const char *real, const char *what, vz_err *e)
{
	if (!ctx->confine)
		return 0;
	if (under(real, ctx->confine) || under(real, ctx->work_dir))
		return 0;
	for (size_t i = 0; ctx->search && ctx->search[i]; i++)
		if (under(real, ctx->search[i]))
			return 0;
	return vz_err_set(e, VZ_EINVAL, "%s resolves to %s, outside the project and the build's work "
			  "dir: an untrusted playbook may not read or write other executor files",
			  what, real);
}

int vz_pbmod_find_src(char **out, const vz_pbmod_ctx *ctx, const char *src, const char *sub,
		      vz_err *e)
{
	vz_buf tried = VZ_BUF_INIT(8192);
	char *cand = NULL, real[PATH_MAX];
	int rc = 0;
	struct stat sb;

	*out = NULL;
	if (!src || !*src) {
		rc = vz_err_set(e, VZ_EINVAL, "src is empty");
		goto out;
	}
	if (src[0] == '/') {
		if (stat(src, &sb) == 0)
			cand = vz_xstrdup(src);
		else
			vz_buf_printf(&tried, "\n\t%s", src);
	} else {
		for (size_t i = 0; !cand && ctx->search && ctx->search[i]; i++) {
			for (int k = sub ? 0 : 1; k < 2 && !cand; k++) {
				char *d = k == 0 ? vz_path_join(ctx->search[i], sub) : vz_xstrdup(ctx->search[i]);
				char *p = vz_path_join(d, src);
				free(d);
				if (stat(p, &sb) == 0) {
					cand = p;
				} else {
					vz_buf_printf(&tried, "\n\t%s", p);
					free(p);
				}
			}
		}
	}
	if (!cand) {
		rc = vz_err_set(e, VZ_ENOTFOUND, "Could not find or access '%s'\nSearched in:%s on the "
				"Ansible Controller.\nIf you are using a module and expect the file to exist "
				"on the remote, see the remote_src option", src, vz_buf_cstr(&tried));
		goto out;
	}
	if (!realpath(cand, real)) {
		rc = vz_err_set(e, VZ_ENOTFOUND, "Could not find or access '%s': %s", src, strerror(errno));
		goto out;
	}
	if ((rc = vz_pbmod_confined(ctx, real, src, e)) != 0)
		goto out;
	*out = vz_xstrdup(real);
out:
	free(cand);
	vz_buf_free(&tried);
	return rc;
}

int vz_pbmod_local_dest(char **out, const vz_pbmod_ctx *ctx, const char *dest, int mkparents,
			vz_err *e)
{
	char *abs = NULL, *probe = NULL, real[PATH_MAX], cwd[PATH_MAX];
	int rc = 0;

	*out = NULL;
	if (!dest || !*dest) {
		rc = vz_err_set(e, VZ_EINVAL, "dest is empty");
		goto out;
	}
	size_t ns = 0;
	while (ctx->search && ctx->search[ns])
		ns++;
	if (dest[0] == '/') {
		abs = vz_xstrdup(dest);
	} else if (!ctx->confine && ns) {
		abs = vz_path_join(ctx->search[ns - 1], dest); /* Ansible: from the playbook's dir */
	} else if (ctx->work_dir) {
		abs = vz_path_join(ctx->work_dir, dest);
	} else {
		if (!getcwd(cwd, sizeof(cwd))) {
			rc = vz_err_set(e, VZ_EIO, "cannot get the current directory: %s", strerror(errno));
			goto out;
		}
		abs = vz_path_join(cwd, dest);
	}
	if (ctx->confine) {
		for (const char *p = abs; *p;) {
			const char *sl = strchr(p, '/');
			size_t n = sl ? (size_t)(sl - p) : strlen(p);
			if (n == 2 && p[0] == '.' && p[1] == '.') {
				rc = vz_err_set(e, VZ_EINVAL, "%s has a '..' component: an untrusted playbook "
						"may only write under the build's work dir", dest);
				goto out;
			}
			p += n + (sl ? 1 : 0);
		}
		if (!ctx->work_dir) {
			rc = vz_err_set(e, VZ_EINVAL, "no work dir to write %s under (untrusted playbook)", dest);
			goto out;
		}
		/* the deepest existing ancestor decides where the path really goes */
		probe = vz_xstrdup(abs);
		for (;;) {
			if (realpath(probe, real))
				break;
			char *sl = strrchr(probe, '/');
			if (!sl || sl == probe) {
				strcpy(real, "/");
				break;
			}
			*sl = '\0';
		}
		if (!under(real, ctx->work_dir)) {
			rc = vz_err_set(e, VZ_EINVAL, "%s resolves to %s, outside the build's work dir: an "
					"untrusted playbook may only write there", dest, real);
			goto out;
		}
	}
	if (mkparents) {
		char *dir = vz_xstrdup(abs), *sl = strrchr(dir, '/');
		if (sl && sl != dir) {
			*sl = '\0';
			rc = vz_mkdir_p(dir, 0755, e);
			if (rc == 0 && ctx->confine && (!realpath(dir, real) || !under(real, ctx->work_dir)))
				rc = vz_err_set(e, VZ_EINVAL, "%s escapes the build's work dir through a "
						"symlink: refused (untrusted playbook)", dest);
		}
		free(dir);
		if (rc)
			goto out;
	}
	*out = abs;
	abs = NULL;
out:
	free(abs);
	free(probe);
	return rc;
}

static void digest_hex(char *out, const EVP_MD *md, const void *data, size_t len)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (!EVP_Digest(data, len, d, &n, md, NULL))
		n = 0;
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[2 * n] = '\0';
}

void vz_pbmod_sha1(char *out, const void *data, size_t len)
{
	digest_hex(out, EVP_sha1(), data ? data : "", len);
}

void vz_pbmod_md5(char *out, const void *data, size_t len)
{
	digest_hex(out, EVP_md5(), data ? data : "", len);
}

/* ---- trees ---- */

static int tree_push(vz_pbmod_tree *t, const char *rel, const char *abs, char type, unsigned mode,
		     uint64_t size, int64_t mtime, const char *link, vz_err *e)
{
	if (t->n >= VZ_PBMOD_MAX_ENTRIES)
		return vz_err_set(e, VZ_ETOOBIG, "more than %d entries to transfer: split the tree",
				  VZ_PBMOD_MAX_ENTRIES);
	if (type == 'f' && (t->bytes += size) > VZ_PBMOD_MAX_FILE)
		return vz_err_set(e, VZ_ETOOBIG, "the tree to transfer is over %zu MiB (at %s): too "
				  "big to ship in one task", VZ_PBMOD_MAX_FILE >> 20, rel);
	if (t->n == t->alloc) {
		size_t na = t->alloc ? t->alloc * 2 : 64;
		vz_pbmod_ent *v = realloc(t->v, na * sizeof(*v));
		if (!v)
			return vz_err_set(e, VZ_ENOMEM, "out of memory walking a tree");
		t->v = v;
		t->alloc = na;
	}
	vz_pbmod_ent *x = &t->v[t->n++];
	x->rel = vz_xstrdup(rel);
	x->abs = vz_xstrdup(abs);
	x->type = type;
	x->mode = mode;
	x->size = size;
	x->mtime = mtime;
	x->link = link ? vz_xstrdup(link) : NULL;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(vz_pbmod_tree *t, const vz_pbmod_ctx *ctx, const char *abs, const char *rel,
		int follow, int depth, vz_err *e)
{
	DIR *d = NULL;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, alloc = 0;
	int rc = 0;

	if (depth > 64)
		return vz_err_set(e, VZ_ETOOBIG, "%s: directories nested more than 64 deep (a symlink "
				  "loop?)", abs);
	if (!(d = opendir(abs))) {
		rc = vz_err_set(e, VZ_EIO, "cannot read directory %s: %s", abs, strerror(errno));
		goto out;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 32;
			char **nn = realloc(names, alloc * sizeof(*nn));
			if (!nn) {
				rc = vz_err_set(e, VZ_ENOMEM, "out of memory reading %s", abs);
				goto out;
			}
			names = nn;
		}
		names[n++] = vz_xstrdup(de->d_name);
		if (n > VZ_PBMOD_MAX_ENTRIES) {
			rc = vz_err_set(e, VZ_ETOOBIG, "%s has too many entries", abs);
			goto out;
		}
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *pa = vz_path_join(abs, names[i]);
		char *pr = *rel ? vz_path_join(rel, names[i]) : vz_xstrdup(names[i]);
		struct stat sb;
		if (lstat(pa, &sb) != 0) {
			rc = vz_err_set(e, VZ_EIO, "cannot stat %s: %s", pa, strerror(errno));
		} else if (S_ISLNK(sb.st_mode) && !follow) {
			char target[PATH_MAX];
			if ((rc = vz_readlink(target, sizeof(target), pa, e)) == 0)
				rc = tree_push(t, pr, pa, 'l', 0777, 0, (int64_t)sb.st_mtime, target, e);
		} else {
			if (S_ISLNK(sb.st_mode)) {
				char real[PATH_MAX];
				if (!realpath(pa, real) || stat(pa, &sb) != 0)
					rc = vz_err_set(e, VZ_ENOTFOUND, "%s is a dangling symlink", pa);
				else
					rc = vz_pbmod_confined(ctx, real, pa, e);
			}
			if (rc == 0) {
				if (S_ISDIR(sb.st_mode)) {
					rc = tree_push(t, pr, pa, 'd', sb.st_mode & 07777, 0, (int64_t)sb.st_mtime, NULL, e);
					if (rc == 0)
						rc = walk(t, ctx, pa, pr, follow, depth + 1, e);
				} else if (S_ISREG(sb.st_mode)) {
					rc = tree_push(t, pr, pa, 'f', sb.st_mode & 07777, (uint64_t)sb.st_size,
						       (int64_t)sb.st_mtime, NULL, e);
				} /* sockets, fifos, devices: skipped as Ansible's copy and rsync -a without -D */
			}
		}
		free(pa);
		free(pr);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (d)
		closedir(d);
	return rc;
}

int vz_pbmod_tree_walk(vz_pbmod_tree *t, const vz_pbmod_ctx *ctx, const char *root, int follow,
		       vz_err *e)
{
	memset(t, 0, sizeof(*t));
	return walk(t, ctx, root, "", follow, 0, e);
}

void vz_pbmod_tree_free(vz_pbmod_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].rel);
		free(t->v[i].abs);
		free(t->v[i].link);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}

int vz_pbmod_tar_add(vz_buf *tar, const char *name, char type, unsigned mode, int64_t mtime,
		     const void *data, size_t len, const char *link, vz_err *e)
{
	char t = type == 'f' ? '0' : type == 'd' ? '5' : '2';
	vz_tar_header(tar, name, t, mode, type == 'f' ? len : 0, mtime, link);
	if (type == 'f') {
		vz_buf_add(tar, data, len);
		vz_tar_pad(tar, len);
	}
	if (tar->failed)
		return vz_err_set(e, tar->failed, "the transfer is over %zu MiB: too big for one task",
				  tar->max >> 20);
	return 0;
}

int vz_pbmod_tar_end(vz_buf *tar, vz_err *e)
{
	static const char zero[1024];
	if (vz_buf_add(tar, zero, sizeof(zero)) != 0)
		return vz_err_set(e, tar->failed, "the transfer is over %zu MiB: too big for one task",
				  tar->max >> 20);
	return 0;
}

static int tar_num(const char *f, size_t n, unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i = 0;
	while (i < n && (f[i] == ' ' || f[i] == '\0'))
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v > (ULLONG_MAX >> 3))
			return -1;
		v = v * 8 + (unsigned)(f[i] - '0');
	}
	*out = v;
	return 0;
}

static int name_safe(const char *name)
{
	if (name[0] == '/')
		return 0;
	for (const char *p = name; *p;) {
		const char *sl = strchr(p, '/');
		size_t n = sl ? (size_t)(sl - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		p += n + (sl ? 1 : 0);
	}
	return 1;
}

int vz_pbmod_tar_each(const char *tar, size_t len, vz_pbmod_tar_fn fn, void *arg, vz_err *e)
{
	size_t off = 0;
	char *longname = NULL, *longlink = NULL;
	int rc = 0;

	while (off + 512 <= len) {
		const char *h = tar + off;
		int zero = 1;
		for (int i = 0; i < 512 && zero; i++)
			zero = h[i] == 0;
		if (zero)
			break;
		unsigned long long size, mode, mtime;
		if (tar_num(h + 124, 12, &size) || tar_num(h + 100, 8, &mode) || tar_num(h + 136, 12, &mtime) ||
		    size > len - off - 512) {
			rc = vz_err_set(e, VZ_EPROTO, "malformed tar stream from the node at offset %zu", off);
			goto out;
		}
		const char *data = h + 512;
		char type = h[156];
		off += 512 + ((size + 511) / 512) * 512;
		if (type == 'L' || type == 'K') {
			char *s = malloc(size + 1);
			if (!s) {
				rc = vz_err_set(e, VZ_ENOMEM, "out of memory reading a tar stream");
				goto out;
			}
			memcpy(s, data, size);
			s[size] = '\0';
			if (type == 'L') {
				free(longname);
				longname = s;
			} else {
				free(longlink);
				longlink = s;
			}
			continue;
		}
		char nbuf[256 + 2], lbuf[101];
		if (!longname) {
			char prefix[156], nm[101];
			memcpy(nm, h, 100);
			nm[100] = '\0';
			memcpy(prefix, h + 345, 155);
			prefix[155] = '\0';
			if (!memcmp(h + 257, "ustar", 5) && prefix[0])
				snprintf(nbuf, sizeof(nbuf), "%s/%s", prefix, nm);
			else
				snprintf(nbuf, sizeof(nbuf), "%s", nm);
		}
		memcpy(lbuf, h + 157, 100);
		lbuf[100] = '\0';
		const char *name = longname ? longname : nbuf;
		const char *link = longlink ? longlink : lbuf;
		while (name[0] == '.' && name[1] == '/')
			name += 2;
		if (!name_safe(name)) {
			rc = vz_err_set(e, VZ_EPROTO, "the tar stream from the node has an unsafe name: %.200s",
					name);
			goto out;
		}
		char t = (type == '0' || type == '\0' || type == '7') ? 'f' : type == '5' ? 'd' :
			 type == '2' ? 'l' : 0;
		if (t && *name && strcmp(name, ".")) {
			size_t nlen = strlen(name);
			char *nm = vz_xstrdup(name);
			if (nlen > 1 && nm[nlen - 1] == '/')
				nm[nlen - 1] = '\0';
			rc = fn(arg, nm, t, (unsigned)mode & 07777, (int64_t)mtime, data, t == 'f' ? size : 0,
				t == 'l' ? link : NULL, e);
			free(nm);
			if (rc)
				goto out;
		}
		free(longname);
		free(longlink);
		longname = longlink = NULL;
	}
out:
	free(longname);
	free(longlink);
	return rc;
}
