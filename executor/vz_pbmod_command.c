/* vz_pbmod_command: the command, shell and raw modules. One channel per command on the host's
 * session; output is streamed, kept up to a cap (a command printing far more is killed), made
 * valid UTF-8, and returned in the shape of Ansible's modules (rc, stdout, stderr, *_lines, cmd,
 * start, end, delta, msg). */
#include "vz_pbmod.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "vz_buf.h"
#include "vz_pbmod_util.h"
#include "vz_util.h"

typedef enum { MOD_COMMAND, MOD_SHELL, MOD_RAW } mod_kind;

static const char *const cmd_opts[] = {
	"_raw_params", "cmd", "argv", "chdir", "creates", "removes", "executable", "stdin", "stdin_add_newline",
	"strip_empty_ends", "warn", "free_form", "_uses_shell", NULL,
};

static int in_list(const char *const *l, const char *s)
{
	for (size_t i = 0; l[i]; i++)
		if (!strcmp(l[i], s))
			return 1;
	return 0;
}

static int check_common(const json_t *args, int raw, vz_err *e)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)args, k, v) {
		if (raw ? strcmp(k, "_raw_params") && strcmp(k, "executable") : !in_list(cmd_opts, k))
			return vz_err_set(e, VZ_EINVAL, "Unsupported parameters: %s", k);
	}
	if (!json_object_get(args, "_raw_params") && !json_object_get(args, "argv") && !json_object_get(args, "cmd"))
		return vz_err_set(e, VZ_EINVAL, "no command given");
	return 0;
}

static int check_command(const json_t *args, vz_err *e) { return check_common(args, 0, e); }
static int check_raw(const json_t *args, vz_err *e) { return check_common(args, 1, e); }

/* Python's shlex.split (posix, no comments). */
static int shlex_split(json_t *out, const char *s, vz_err *e)
{
	vz_buf w = VZ_BUF_INIT(1u << 20);
	int in_word = 0, rc = 0;
	char q = 0;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (q == '\'') {
			if (c == '\'')
				q = 0;
			else
				vz_buf_putc(&w, c);
			continue;
		}
		if (q == '"') {
			if (c == '"')
				q = 0;
			else if (c == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`'))
				vz_buf_putc(&w, *++p);
			else
				vz_buf_putc(&w, c);
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (in_word) {
				json_array_append_new(out, json_stringn(w.ptr ? w.ptr : "", w.len));
				vz_buf_reset(&w);
				in_word = 0;
			}
			continue;
		}
		in_word = 1;
		if (c == '\'' || c == '"')
			q = c;
		else if (c == '\\' && p[1])
			vz_buf_putc(&w, *++p);
		else
			vz_buf_putc(&w, c);
	}
	if (q)
		rc = vz_err_set(e, VZ_EINVAL, "No closing quotation");
	else if (in_word)
		json_array_append_new(out, json_stringn(w.ptr ? w.ptr : "", w.len));
	if (w.failed)
		rc = vz_err_set(e, VZ_ETOOBIG, "command too long");
	vz_buf_free(&w);
	return rc;
}

static void sh_quote(vz_buf *b, const char *s, size_t n)
{
	vz_buf_putc(b, '\'');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\'')
			vz_buf_puts(b, "'\\''");
		else
			vz_buf_putc(b, s[i]);
	}
	vz_buf_putc(b, '\'');
}

static void sh_quote_str(vz_buf *b, const char *s)
{
	sh_quote(b, s, strlen(s));
}

static int is_name_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/* One argv word for the node's shell, expanding ~ and $VAR as Python's expanduser/expandvars do
 * for Ansible's command module (an unset variable stays as written). */
static void argv_word(vz_buf *b, const char *s)
{
	const char *p = s, *lit = s;
	if (*s == '~') {
		const char *q = s + 1;
		while (*q && *q != '/' && (is_name_char(*q, 0) || *q == '-' || *q == '.'))
			q++;
		if (*q == 0 || *q == '/') {
			vz_buf_add(b, s, (size_t)(q - s));
			p = lit = q;
		}
	}
	if (!*p) {
		if (p == s)
			vz_buf_puts(b, "''");
		return;
	}
	while (*p) {
		if (p[0] == '$' && (is_name_char(p[1], 1) || (p[1] == '{' && is_name_char(p[2], 1)))) {
			const char *n = p + 1 + (p[1] == '{');
			const char *ne = n;
			while (is_name_char(*ne, 0))
				ne++;
			if (p[1] == '{' && *ne != '}') {
				p++;
				continue;
			}
			if (p > lit)
				sh_quote(b, lit, (size_t)(p - lit));
			vz_buf_puts(b, "\"${");
			vz_buf_add(b, n, (size_t)(ne - n));
			vz_buf_puts(b, "-\\$");
			vz_buf_add(b, n, (size_t)(ne - n));
			vz_buf_puts(b, "}\"");
			p = lit = ne + (p[1] == '{');
			continue;
		}
		p++;
	}
	if (p > lit)
		sh_quote(b, lit, (size_t)(p - lit));
}

static json_t *lines_of(const json_t *str)
{
	json_t *a = json_array();
	const char *s = json_string_value(str);
	size_t n = json_string_length(str), start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '\n' || s[i] == '\r') {
			if (i == n && start == n)
				break;
			json_array_append_new(a, json_stringn(s + start, i - start));
			if (i < n && s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			start = i + 1;
		}
	}
	return a;
}

typedef struct out_ctx {
	const vz_pbmod_ctx *ctx;
	vz_buf out, err;
	size_t seen, max;
	int too_much;
} out_ctx;

static int on_out(void *p, int stream, const char *data, size_t len)
{
	out_ctx *o = p;
	o->seen += len;
	vz_buf_add_capped(stream == VZ_NODE_STDERR ? &o->err : &o->out, data, len);
	if (o->ctx->on_output && !o->ctx->no_log)
		o->ctx->on_output(o->ctx->output_ctx, stream, data, len);
	if (o->seen > 4 * o->max) {
		o->too_much = 1;
		return 1;
	}
	return 0;
}

static void fmt_time(char *buf, size_t n, const struct timeval *tv)
{
	struct tm tm;
	localtime_r(&tv->tv_sec, &tm);
	snprintf(buf, n, "%04d-%02d-%02d %02d:%02d:%02d.%06ld", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv->tv_usec);
}

/* Does argv_word leave s as it is (no ~ or $VAR to expand on the node)? */
static int word_plain(const char *s)
{
	vz_buf a = VZ_BUF_INIT(1u << 22), q = VZ_BUF_INIT(1u << 22);
	argv_word(&a, s);
	sh_quote_str(&q, s);
	int same = !a.failed && !q.failed && a.len == q.len && !memcmp(a.ptr, q.ptr, a.len);
	vz_buf_free(&a);
	vz_buf_free(&q);
	return same;
}

/* The sudo -n command for become, running line with the environment inside (sudo resets it):
 * `sudo -n -H -u USER -- /bin/sh -c 'export ...; LINE'`, as an argv (see argv_of). */
static void wrap_become(vz_buf *inner, const vz_pbmod_ctx *ctx, const char *line)
{
	for (size_t i = 0; ctx->env && ctx->env[i]; i++) {
		const char *eq = strchr(ctx->env[i], '=');
		if (!eq)
			continue;
		vz_buf_puts(inner, "export ");
		vz_buf_add(inner, ctx->env[i], (size_t)(eq - ctx->env[i]) + 1);
		sh_quote_str(inner, eq + 1);
		vz_buf_puts(inner, "; ");
	}
	vz_buf_puts(inner, line);
}

/* creates=/removes=: does the glob match anything on the node? 1 yes, 0 no, <0 error. */
static int node_exists(const vz_pbmod_ctx *ctx, const char *pattern, vz_err *e)
{
	vz_buf cmd = VZ_BUF_INIT(1u << 16);
	vz_node_result res;
	/* every character but the glob ones quoted */
	vz_buf_puts(&cmd, "for f in ");
	for (const char *p = pattern; *p; p++) {
		if (*p == '*' || *p == '?' || *p == '[' || *p == ']')
			vz_buf_putc(&cmd, *p);
		else
			sh_quote(&cmd, p, 1);
	}
	vz_buf_puts(&cmd, "; do [ -e \"$f\" ] || [ -L \"$f\" ] && exit 0; done; exit 1");
	vz_node_cmd c = { .command = vz_buf_cstr(&cmd), .cwd = ctx->chdir, .timeout_ms = ctx->timeout_ms,
			  .cancel = ctx->cancel };
	int rc = vz_node_exec(ctx->node, &c, &res, e);
	vz_buf_free(&cmd);
	if (rc)
		return rc;
	return res.exit_status == 0;
}

/* The first line of stderr is sudo's own complaint ("sudo: a password is required", or the
 * shell's "sudo: not found"). */
static int sudo_failed(const char *es, size_t el)
{
	const char *nl = memchr(es, '\n', el);
	size_t l = nl ? (size_t)(nl - es) : el;
	for (size_t i = 0; i + 4 <= l; i++)
		if (!memcmp(es + i, "sudo", 4))
			return 1;
	return 0;
}

static int has_bytes(const char *s, size_t n, const char *needle)
{
	size_t nl = strlen(needle);
	for (size_t i = 0; i + nl <= n; i++)
		if (!memcmp(s + i, needle, nl))
			return 1;
	return 0;
}

static int run_cmd(mod_kind kind, const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	json_t *res = json_object(), *cmdj = NULL;
	vz_buf line = VZ_BUF_INIT(1u << 22), full = VZ_BUF_INIT(1u << 23), stdin_b = VZ_BUF_INIT(1u << 24);
	out_ctx oc = { ctx, VZ_BUF_INIT(0), VZ_BUF_INIT(0), 0, 0, 0 };
	vz_err le = { 0 };
	int rc = 0;
	struct timeval t0, t1;
	const char *av[16], **dyn = NULL, *const *use_argv = NULL;

	*result = NULL;
	oc.max = ctx->output_max ? ctx->output_max : (1u << 20);
	vz_buf_init(&oc.out, oc.max);
	vz_buf_init(&oc.err, oc.max);
	const char *raw = json_string_value(json_object_get(args, "_raw_params"));
	if (!raw)
		raw = json_string_value(json_object_get(args, "cmd"));
	const json_t *argv = json_object_get(args, "argv");
	if (kind == MOD_COMMAND) {
		cmdj = json_array();
		if (json_is_array(argv) && !raw) {
			for (size_t i = 0; i < json_array_size(argv); i++) {
				json_t *a = json_array_get(argv, i);
				if (json_is_string(a))
					json_array_append(cmdj, a);
				else {
					char *d = json_dumps(a, JSON_ENCODE_ANY);
					json_array_append_new(cmdj, json_string(d ? d : ""));
					free(d);
				}
			}
		} else if (raw && shlex_split(cmdj, raw, &le) != 0) {
			json_object_set_new(res, "failed", json_true());
			json_object_set_new(res, "msg", json_string(le.msg));
			json_object_set_new(res, "rc", json_integer(256));
			goto done;
		}
		if (!json_array_size(cmdj)) {
			json_object_set_new(res, "failed", json_true());
			json_object_set_new(res, "msg", json_string("no command given"));
			json_object_set_new(res, "rc", json_integer(256));
			goto done;
		}
		for (size_t i = 0; i < json_array_size(cmdj); i++) {
			if (i)
				vz_buf_putc(&line, ' ');
			argv_word(&line, json_string_value(json_array_get(cmdj, i)));
		}
	} else {
		if (!raw) {
			json_object_set_new(res, "failed", json_true());
			json_object_set_new(res, "msg", json_string("no command given"));
			goto done;
		}
		cmdj = json_string(raw);
		if (kind == MOD_SHELL) {
			const char *exe = json_string_value(json_object_get(args, "executable"));
			if (exe)
				sh_quote_str(&line, exe);
			else
				vz_buf_puts(&line, "/bin/sh");
			vz_buf_puts(&line, " -c ");
			sh_quote_str(&line, raw);
		} else {
			vz_buf_puts(&line, raw);
		}
	}
	if (line.failed) {
		json_object_set_new(res, "failed", json_true());
		json_object_set_new(res, "msg", json_string("the command is too long"));
		goto done;
	}
	if (kind != MOD_RAW) {
		const char *creates = json_string_value(json_object_get(args, "creates"));
		const char *removes = json_string_value(json_object_get(args, "removes"));
		if (creates || removes) {
			int ex = node_exists(ctx, creates ? creates : removes, e);
			if (ex < 0) {
				rc = ex;
				goto out;
			}
			if ((creates && ex) || (!creates && !ex)) {
				char msg[1200];
				snprintf(msg, sizeof(msg), "Did not run command since '%.1000s' %s", creates ? creates : removes,
					 creates ? "exists" : "does not exist");
				json_object_set_new(res, "msg", json_string(msg));
				snprintf(msg, sizeof(msg), "skipped, since %.1000s %s", creates ? creates : removes,
					 creates ? "exists" : "does not exist");
				json_object_set_new(res, "stdout", json_string(msg));
				json_object_set_new(res, "stdout_lines", json_pack("[s]", msg));
				json_object_set_new(res, "stderr", json_string(""));
				json_object_set_new(res, "stderr_lines", json_array());
				json_object_set_new(res, "rc", json_integer(0));
				json_object_set_new(res, "changed", json_false());
				goto done;
			}
		}
	}
	/* Commands go to the node as an argv where they can (sudo for become, the shell for shell:,
	 * the words for command: when none needs ~ or $VAR expanded): the node then starts no shell
	 * of its own before them (vz_node_cmd.argv). */
	if (ctx->become) {
		wrap_become(&full, ctx, vz_buf_cstr(&line));
		const char *b[] = { "sudo", "-n", "-H", "-u", ctx->become_user ? ctx->become_user : "root", "--",
				    "/bin/sh", "-c", vz_buf_cstr(&full), NULL };
		memcpy(av, b, sizeof(b));
		use_argv = av;
	} else if (kind == MOD_SHELL) {
		const char *exe = json_string_value(json_object_get(args, "executable"));
		const char *b[] = { exe ? exe : "/bin/sh", "-c", raw, NULL };
		memcpy(av, b, sizeof(b));
		use_argv = av;
	} else if (kind == MOD_COMMAND) {
		size_t nw = json_array_size(cmdj), i;
		for (i = 0; i < nw && word_plain(json_string_value(json_array_get(cmdj, i))); i++)
			;
		if (i == nw && (dyn = calloc(nw + 1, sizeof(*dyn)))) {
			for (i = 0; i < nw; i++)
				dyn[i] = json_string_value(json_array_get(cmdj, i));
			use_argv = dyn;
		}
	}
	if (!use_argv)
		vz_buf_puts(&full, vz_buf_cstr(&line));
	if (full.failed) {
		json_object_set_new(res, "failed", json_true());
		json_object_set_new(res, "msg", json_string("the command is too long"));
		goto done;
	}
	const json_t *sj = json_object_get(args, "stdin");
	if (sj && kind != MOD_RAW) {
		const char *sv = json_string_value(sj);
		vz_buf_puts(&stdin_b, sv ? sv : "");
		const json_t *nl = json_object_get(args, "stdin_add_newline");
		if (!nl || json_is_true(nl) || (json_is_string(nl) && strcmp(json_string_value(nl), "false") &&
						strcmp(json_string_value(nl), "no")))
			vz_buf_putc(&stdin_b, '\n');
	}
	vz_node_cmd c = {
		.command = use_argv ? NULL : vz_buf_cstr(&full),
		.argv = use_argv,
		.cwd = kind == MOD_RAW ? NULL : ctx->chdir,
		.env = ctx->become ? NULL : ctx->env,
		.stdin_data = stdin_b.len ? stdin_b.ptr : NULL,
		.stdin_len = stdin_b.len,
		.timeout_ms = ctx->timeout_ms,
		.on_output = on_out,
		.ctx = &oc,
		.cancel = ctx->cancel,
	};
	vz_node_result nr;
	gettimeofday(&t0, NULL);
	int xrc = vz_node_exec(ctx->node, &c, &nr, &le);
	gettimeofday(&t1, NULL);
	if (xrc == VZ_ECONNECT || xrc == VZ_EIO) {
		vz_err_set(e, xrc, "%s", le.msg);
		rc = xrc;
		goto out;
	}
	if (xrc == VZ_ECANCELED && !oc.too_much) {
		rc = vz_err_set(e, VZ_ECANCELED, "%s", "canceled");
		goto out;
	}
	char ts[64];
	fmt_time(ts, sizeof(ts), &t0);
	json_object_set_new(res, "start", json_string(ts));
	fmt_time(ts, sizeof(ts), &t1);
	json_object_set_new(res, "end", json_string(ts));
	long long us = (long long)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_usec - t0.tv_usec);
	snprintf(ts, sizeof(ts), "%lld:%02lld:%02lld.%06lld", us / 3600000000LL, us / 60000000LL % 60, us / 1000000 % 60,
		 us % 1000000);
	json_object_set_new(res, "delta", json_string(ts));
	size_t ol = oc.out.len, el = oc.err.len;
	const char *os = oc.out.ptr ? oc.out.ptr : "", *es = oc.err.ptr ? oc.err.ptr : "";
	const json_t *strip = json_object_get(args, "strip_empty_ends");
	if (kind != MOD_RAW && (!strip || json_is_true(strip))) {
		while (ol && (os[ol - 1] == '\n' || os[ol - 1] == '\r'))
			ol--;
		while (el && (es[el - 1] == '\n' || es[el - 1] == '\r'))
			el--;
	}
	json_t *so = vz_pbmod_text(os, ol), *se = vz_pbmod_text(es, el);
	json_object_set_new(res, "stdout", so);
	json_object_set_new(res, "stderr", se);
	json_object_set_new(res, "stdout_lines", lines_of(so));
	json_object_set_new(res, "stderr_lines", lines_of(se));
	json_object_set_new(res, "changed", json_true());
	if (oc.out.failed || oc.err.failed || oc.seen > oc.out.max + oc.err.max ||
	    oc.out.len >= oc.max || oc.err.len >= oc.max) {
		char w[200];
		snprintf(w, sizeof(w), "vinz kept only the first %zu bytes of stdout and of stderr", oc.max);
		json_object_set_new(res, "warnings", json_pack("[s]", w));
	}
	if (oc.too_much) {
		char m[300];
		snprintf(m, sizeof(m), "the command printed more than %zu bytes and was killed (vinz keeps %zu bytes "
			 "of output per command; write large output to a file instead)", 4 * oc.max, oc.max);
		json_object_set_new(res, "failed", json_true());
		json_object_set_new(res, "msg", json_string(m));
		json_object_set_new(res, "rc", json_integer(-1));
	} else if (xrc == VZ_ETIMEOUT || nr.timed_out) {
		/* as Ansible's task timeout: no rc or output, not changed */
		static const char *const drop[] = { "stdout", "stderr", "stdout_lines", "stderr_lines", "start", "end",
						    "delta", NULL };
		for (size_t i = 0; drop[i]; i++)
			json_object_del(res, drop[i]);
		json_object_set_new(res, "changed", json_false());
		json_object_set_new(res, "timedout", json_true());
		char m[200];
		snprintf(m, sizeof(m), "The %s action failed to execute in the expected time frame (%d) and was terminated",
			 kind == MOD_COMMAND ? "command" : kind == MOD_SHELL ? "shell" : "raw", (ctx->timeout_ms + 999) / 1000);
		json_object_set_new(res, "failed", json_true());
		json_object_set_new(res, "msg", json_string(m));
	} else if (xrc != 0) {
		json_object_set_new(res, "failed", json_true());
		json_object_set_new(res, "msg", json_string(ctx->no_log ? "the command could not run" : le.msg));
		json_object_set_new(res, "rc", json_integer(-1));
	} else if (ctx->become && (nr.exit_status == 127 || nr.exit_status == 1) && sudo_failed(es, el)) {
		/* sudo itself failed (missing, or asks for a password): Ansible reports the become
		 * failure as a module failure, not as the command's result */
		json_t *mo = json_object_get(res, "stdout"), *me = json_object_get(res, "stderr");
		json_object_set(res, "module_stdout", mo);
		json_object_set(res, "module_stderr", me);
		static const char *const drop[] = { "stdout", "stderr", "stdout_lines", "stderr_lines", "start", "end",
						    "delta", NULL };
		for (size_t i = 0; drop[i]; i++)
			json_object_del(res, drop[i]);
		json_object_set_new(res, "changed", json_false());
		json_object_set_new(res, "failed", json_true());
		if (has_bytes(es, el, "a password is required")) {
			/* as Ansible's sudo become plugin: no module ran, so no rc and no output */
			json_object_del(res, "module_stdout");
			json_object_del(res, "module_stderr");
			json_object_set_new(res, "msg", json_string("Missing sudo password (become: the node user "
								    "needs passwordless sudo for sudo -n)"));
		} else {
			json_object_set_new(res, "rc", json_integer(nr.exit_status));
			json_object_set_new(res, "msg", json_string("MODULE FAILURE (become: sudo -n failed; the node "
								    "user needs passwordless sudo)\nSee stdout/stderr "
								    "for the exact error"));
		}
		json_decref(cmdj);
		cmdj = NULL;
	} else {
		json_object_set_new(res, "rc", json_integer(nr.exit_status));
		if (nr.exit_status != 0) {
			json_object_set_new(res, "failed", json_true());
			json_object_set_new(res, "msg", json_string("non-zero return code"));
		} else if (kind != MOD_RAW) {
			json_object_set_new(res, "msg", json_string(""));
		}
	}
done:
	if (cmdj && kind != MOD_RAW)
		json_object_set(res, "cmd", cmdj);
	if (!json_object_get(res, "changed"))
		json_object_set_new(res, "changed", json_false());
	*result = res;
	res = NULL;
out:
	json_decref(res);
	json_decref(cmdj);
	free(dyn);
	vz_buf_free(&line);
	vz_buf_free(&full);
	vz_buf_free(&stdin_b);
	vz_buf_free(&oc.out);
	vz_buf_free(&oc.err);
	return rc;
}

static int run_command(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	return run_cmd(MOD_COMMAND, ctx, args, result, e);
}

static int run_shell(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	return run_cmd(MOD_SHELL, ctx, args, result, e);
}

static int run_raw(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	return run_cmd(MOD_RAW, ctx, args, result, e);
}

const vz_pbmod vz_pbmod_command = { "command", run_command, check_command, 1, 0 };
const vz_pbmod vz_pbmod_shell = { "shell", run_shell, check_command, 1, 0 };
const vz_pbmod vz_pbmod_raw = { "raw", run_raw, check_raw, 1, 0 };
