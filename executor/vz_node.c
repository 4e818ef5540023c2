/* vz_node: the one interface the executor uses to run commands on a build node. This file checks
 * arguments, times commands and dispatches to the ssh (vz_node_ssh.c) or local (vz_node_local.c)
 * connection; vz_node_put is built on exec so both connections get it for free.
 * Output is not capped here: the callback sees every byte, and the caller caps what it keeps
 * (a vz_buf with its maximum, or vz_buf_add_capped for logs that keep a marker). */
#include "vz_node_int.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_util.h"

static const char *nz(const char *s, const char *dflt)
{
	return s && *s ? s : dflt;
}

int vz_node_connect(vz_node **out, const vz_node_spec *spec, vz_err *e)
{
	vz_node *n = NULL;
	vz_buf where = VZ_BUF_INIT(512);
	int rc = 0;

	*out = NULL;
	if (!spec) {
		rc = vz_err_set(e, VZ_EINVAL, "vz_node_connect: no node spec given");
		goto out;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory connecting to node %s", nz(spec->name, "?"));
		goto out;
	}
	n->kind = spec->kind;
	if (spec->kind == VZ_NODE_SSH)
		vz_buf_printf(&where, "node %s (%s@%s:%d)", nz(spec->name, "?"), nz(spec->user, "?"),
			      nz(spec->host, "?"), spec->port > 0 ? spec->port : 22);
	else
		vz_buf_printf(&where, "node %s (local)", nz(spec->name, "local"));
	if (where.failed || !(n->where = vz_buf_detach(&where))) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory connecting to node %s", nz(spec->name, "?"));
		goto out;
	}
	switch (spec->kind) {
	case VZ_NODE_SSH:
		rc = vz_node_ssh_open(n, spec, e);
		break;
	case VZ_NODE_LOCAL:
		rc = vz_node_local_open(n, spec, e);
		break;
	default:
		rc = vz_err_set(e, VZ_EINVAL, "%s: unknown connection kind %d (expected ssh or local)",
				n->where, (int)spec->kind);
		break;
	}
	if (rc == 0) {
		*out = n;
		n = NULL;
	}
out:
	if (n) { /* a failed open has freed its own state and left n->impl NULL */
		free(n->where);
		free(n);
	}
	vz_buf_free(&where);
	return rc;
}

int vz_node_exec(vz_node *n, const vz_node_cmd *cmd, vz_node_result *res, vz_err *e)
{
	vz_node_result local_res;
	vz_node_cmd c;
	vz_buf line = VZ_BUF_INIT(VZ_NODE_CMD_MAX);
	int rc = 0;
	uint64_t t0 = vz_mono_ms();

	if (!res)
		res = &local_res;
	memset(res, 0, sizeof(*res));
	res->exit_status = -1;
	if (!n || !cmd || !cmd->command == !cmd->argv || (cmd->argv && !cmd->argv[0])) {
		rc = vz_err_set(e, VZ_EINVAL, "vz_node_exec: no node, or not exactly one of command and a "
				"non-empty argv given");
		goto out;
	}
	if (cmd->argv) {
		/* the same as a shell line, for the connections that need one and for messages */
		c = *cmd;
		vz_buf_puts(&line, "exec");
		for (size_t i = 0; cmd->argv[i]; i++) {
			vz_buf_putc(&line, ' ');
			vz_node_sh_quote(&line, cmd->argv[i]);
		}
		if (line.failed) {
			rc = vz_err_set(e, VZ_ETOOBIG, "%s: command longer than %d bytes; put it in a file "
					"with vz_node_put", n->where, VZ_NODE_CMD_MAX);
			goto out;
		}
		c.command = vz_buf_cstr(&line);
		cmd = &c;
	}
	if (cmd->timeout_ms < 0 || (cmd->stdin_len && !cmd->stdin_data)) {
		rc = vz_err_set(e, VZ_EINVAL, "%s: bad command arguments (negative timeout or stdin "
				"length without data)", n->where);
		goto out;
	}
	if ((rc = vz_node_check_env(n, cmd->env, e)) != 0)
		goto out;
	rc = n->ops->exec(n, cmd, res, e);
out:
	res->duration_ms = vz_mono_ms() - t0;
	vz_buf_free(&line);
	return rc;
}

typedef struct put_ctx {
	vz_buf err;
} put_ctx;

static int put_output(void *ctx, int stream, const char *data, size_t len)
{
	put_ctx *p = ctx;
	vz_buf_add_capped(&p->err, data, len);
	return 0;
}

int vz_node_put(vz_node *n, const char *path, const void *data, size_t len, int mode, vz_err *e)
{
	vz_buf sh = VZ_BUF_INIT(16384);
	put_ctx pc = { VZ_BUF_INIT(512) };
	vz_node_result res;
	int rc = 0;

	if (!n || !path || !*path || (len && !data) || mode < 0 || mode > 07777) {
		rc = vz_err_set(e, VZ_EINVAL, "vz_node_put: bad arguments (node, path, data or mode %o)",
				(unsigned)mode);
		goto out;
	}
	/* umask first: the file must never be readable by others before chmod narrows it. */
	vz_buf_puts(&sh, "umask 077 && cat > ");
	vz_node_sh_quote(&sh, path);
	vz_buf_printf(&sh, " && chmod %04o ", (unsigned)mode);
	vz_node_sh_quote(&sh, path);
	if (sh.failed) {
		rc = vz_err_set(e, VZ_EINVAL, "%s: path too long to put: %.100s...", n->where, path);
		goto out;
	}
	vz_node_cmd cmd = { .command = vz_buf_cstr(&sh), .stdin_data = data, .stdin_len = len,
			    .on_output = put_output, .ctx = &pc };
	if ((rc = vz_node_exec(n, &cmd, &res, e)) != 0) {
		vz_err_prefix(e, "writing %s", path);
		goto out;
	}
	if (res.exit_status != 0)
		rc = vz_err_set(e, VZ_EIO, "%s: cannot write %s (exit status %d): %s", n->where, path,
				res.exit_status, vz_buf_cstr(&pc.err));
out:
	vz_buf_free(&sh);
	vz_buf_free(&pc.err);
	return rc;
}

void vz_node_close(vz_node *n)
{
	if (!n)
		return;
	n->ops->close(n);
}

void vz_node_sh_quote(vz_buf *b, const char *s)
{
	vz_buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			vz_buf_puts(b, "'\\''");
		else
			vz_buf_putc(b, *s);
	}
	vz_buf_putc(b, '\'');
}

int vz_node_check_env(const vz_node *n, const char *const *env, vz_err *e)
{
	int rc = 0;
	for (size_t i = 0; env && env[i]; i++) {
		const char *s = env[i];
		size_t k = 0;
		while ((s[k] >= 'A' && s[k] <= 'Z') || (s[k] >= 'a' && s[k] <= 'z') || s[k] == '_' ||
		       (k > 0 && s[k] >= '0' && s[k] <= '9'))
			k++;
		if (k == 0 || s[k] != '=') {
			rc = vz_err_set(e, VZ_EINVAL, "%s: environment entry %zu (\"%.60s\") is not "
					"NAME=VALUE with a shell variable name", n->where, i, s);
			goto out;
		}
	}
out:
	return rc;
}

int vz_node_signal_status(const char *name)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{ "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "ILL", SIGILL },
		{ "ABRT", SIGABRT }, { "FPE", SIGFPE },   { "KILL", SIGKILL }, { "SEGV", SIGSEGV },
		{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "USR1", SIGUSR1 },
		{ "USR2", SIGUSR2 }, { "BUS", SIGBUS },   { "TRAP", SIGTRAP }, { "SYS", SIGSYS },
		{ "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
	};
	int rc = -1;
	int64_t v;

	if (!name)
		goto out;
	if (vz_startswith(name, "SIG"))
		name += 3;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (!strcmp(sigs[i].name, name)) {
			rc = 128 + sigs[i].sig;
			goto out;
		}
	}
	if (vz_parse_i64(name, 1, 64, &v) == 0)
		rc = 128 + (int)v;
out:
	return rc;
}
