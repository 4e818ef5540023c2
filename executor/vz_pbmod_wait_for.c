/* vz_pbmod_wait_for: ansible.builtin.wait_for, natively: one bounded sh loop on the node (date,
 * sleep, test; a port is probed with bash's /dev/tcp under `timeout`, else nc -z, else the
 * listening sockets in /proc/net/tcp* for a local address). The loop ends at the timeout, and the
 * command itself is killed a little after that should the node's clock misbehave. */
#include <stdlib.h>
#include <string.h>

#include "vz_pbmod_util.h"
#include "vz_util.h"

static const char *const opts[] = { "host", "port", "path", "state", "timeout", "delay", "sleep",
				    "connect_timeout", "search_regex", "regex", "msg", "exclude_hosts",
				    "active_connection_states", NULL };

static int check(const json_t *args, vz_err *e)
{
	return vz_pbmod_args_known(args, "wait_for", opts, e);
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	static const char *const host_keys[] = { "host", NULL };
	static const char *const path_keys[] = { "path", NULL };
	static const char *const state_keys[] = { "state", NULL };
	static const char *const re_keys[] = { "search_regex", "regex", NULL };
	static const char *const msg_keys[] = { "msg", NULL };
	json_t *r = json_object();
	vz_buf s = VZ_BUF_INIT(65536);
	vz_pbmod_run run = { 0 };
	vz_pbmod_st st = { 0 };
	vz_err err = { 0 };
	const char *host, *path, *state, *re, *umsg;
	char b[5][64];
	int64_t port, timeout, delay, slp, ctimeout;
	int rc = 0;

	json_object_set_new(r, "changed", json_false());
	if ((rc = check(args, &err)) ||
	    (rc = vz_pbmod_arg_str(&host, args, host_keys, b[0], sizeof(b[0]), &err)) ||
	    (rc = vz_pbmod_arg_str(&path, args, path_keys, b[1], sizeof(b[1]), &err)) ||
	    (rc = vz_pbmod_arg_str(&state, args, state_keys, b[2], sizeof(b[2]), &err)) ||
	    (rc = vz_pbmod_arg_str(&re, args, re_keys, b[3], sizeof(b[3]), &err)) ||
	    (rc = vz_pbmod_arg_str(&umsg, args, msg_keys, b[4], sizeof(b[4]), &err)) ||
	    (rc = vz_pbmod_arg_int(&port, args, "port", -1, &err)) ||
	    (rc = vz_pbmod_arg_int(&timeout, args, "timeout", 300, &err)) ||
	    (rc = vz_pbmod_arg_int(&delay, args, "delay", 0, &err)) ||
	    (rc = vz_pbmod_arg_int(&slp, args, "sleep", 1, &err)) ||
	    (rc = vz_pbmod_arg_int(&ctimeout, args, "connect_timeout", 5, &err)))
		goto fail;
	if (!host)
		host = "127.0.0.1";
	if (!state)
		state = "started";
	json_object_set_new(r, "elapsed", json_integer(0));
	if (port >= 0 && path) {
		vz_pbmod_failed(r, "port and path parameter can not both be passed to wait_for");
		goto out;
	}
	if (path && !strcmp(state, "stopped")) {
		vz_pbmod_failed(r, "state=stopped should only be used for checking a port in the wait_for module");
		goto out;
	}
	if (!strcmp(state, "drained") || json_object_get(args, "exclude_hosts") ||
	    json_object_get(args, "active_connection_states")) {
		vz_pbmod_failed(r, "state=drained (and exclude_hosts, active_connection_states) are not "
				"supported by vinz's wait_for");
		goto out;
	}
	if (strcmp(state, "started") && strcmp(state, "stopped") && strcmp(state, "present") &&
	    strcmp(state, "absent")) {
		vz_pbmod_failed(r, "value of state must be one of: absent, drained, present, started, "
				"stopped, got: %s", state);
		goto out;
	}
	if (port >= 0 && re) {
		vz_pbmod_failed(r, "search_regex on a port is not supported by vinz's wait_for (it is on a path)");
		goto out;
	}
	if (port > 65535 || timeout < 0 || timeout > 86400 || delay < 0 || delay > 86400 || slp < 0 ||
	    slp > 3600 || ctimeout < 1 || ctimeout > 3600) {
		vz_pbmod_failed(r, "port, timeout, delay, sleep or connect_timeout out of range");
		goto out;
	}
	if (!*host || strpbrk(host, "'\"\\ $`;&|<>()/*?") != NULL) {
		vz_pbmod_failed(r, "host %s is not a host name or address", host);
		goto out;
	}
	int absent = !strcmp(state, "absent") || !strcmp(state, "stopped");
	vz_buf_printf(&s, "T=%lld; S=%lld; CT=%lld; P=%lld; H=", (long long)timeout, (long long)slp,
		      (long long)ctimeout, (long long)port);
	vz_node_sh_quote(&s, host);
	vz_buf_puts(&s, "; F=");
	vz_node_sh_quote(&s, path ? path : "");
	vz_buf_puts(&s, "; R=");
	vz_node_sh_quote(&s, re ? re : "");
	/* milliseconds, so that elapsed is floored as Ansible's timedelta.seconds */
	vz_buf_printf(&s, "\nnow_ms() { date +%%s%%3N; }\nstart=$(now_ms)\n[ %lld -gt 0 ] && sleep %lld\n",
		      (long long)delay, (long long)delay);
	vz_buf_puts(&s,
		"probe() {\n"
		"  if command -v bash >/dev/null 2>&1; then\n"
		"    timeout \"$CT\" bash -c 'exec 3<>\"/dev/tcp/$0/$1\"' \"$H\" \"$P\" 2>/dev/null; r=$?\n"
		"    [ $r -eq 0 ] && return 0; [ $r -eq 124 ] && return 1; return 1\n"
		"  fi\n"
		"  if command -v nc >/dev/null 2>&1; then nc -z -w \"$CT\" \"$H\" \"$P\" 2>/dev/null; return $?; fi\n"
		"  case $H in 127.*|localhost|0.0.0.0|::1|::) ;; *) echo NOPROBE; exit 0 ;; esac\n"
		"  hex=$(printf %04X \"$P\")\n"
		"  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q -i \":$hex [0-9a-f]*:[0-9a-f]* 0A \"\n"
		"}\n");
	if (port >= 0)
		vz_buf_puts(&s, "cond() { probe; }\n");
	else if (path && re)
		vz_buf_puts(&s, "cond() { [ -e \"$F\" ] && grep -E -q -e \"$R\" -- \"$F\" 2>/dev/null; }\n");
	else if (path)
		vz_buf_puts(&s, "cond() { [ -e \"$F\" ]; }\n");
	else
		vz_buf_puts(&s, "cond() { false; }\n"); /* neither: Ansible just sleeps the timeout */
	vz_buf_printf(&s,
		"i=0\nwhile :; do\n"
		"  if %s; then echo \"OK $(( ($(now_ms) - start) / 1000 ))\"; exit 0; fi\n"
		"  now=$(now_ms)\n"
		"  if [ $(( now - start )) -ge $(( T * 1000 )) ]; then echo \"TIMEOUT $(( (now - start) / 1000 ))\"; exit 0; fi\n"
		"  i=$((i + 1)); [ \"$i\" -gt 1000000 ] && { echo \"TIMEOUT $(( (now - start) / 1000 ))\"; exit 0; }\n"
		"  left=$(( (start + T * 1000 - now + 999) / 1000 ))\n"
		"  if [ \"$S\" -lt \"$left\" ]; then sleep \"$S\"; else sleep \"$left\"; fi\n"
		"done\n", absent ? "! cond" : "cond");
	/* bounded twice: by the loop, and by killing the command a margin after its deadline */
	vz_pbmod_ctx c2 = *ctx;
	int64_t limit = (timeout + delay + ctimeout + 30) * 1000;
	if (limit > INT32_MAX)
		limit = INT32_MAX;
	if (!c2.timeout_ms || c2.timeout_ms > limit)
		c2.timeout_ms = (int)limit;
	if ((rc = vz_pbmod_sh(&run, &c2, vz_buf_cstr(&s), NULL, 0, 4096, &err)) != 0)
		goto fail;
	const char *o = vz_buf_cstr(&run.out);
	long elapsed = 0;
	const char *sp = strrchr(o, ' ');
	if (sp)
		elapsed = strtol(sp + 1, NULL, 10);
	json_object_set_new(r, "elapsed", json_integer(elapsed));
	if (!strncmp(o, "NOPROBE", 7)) {
		vz_pbmod_failed(r, "cannot probe %s:%lld from the node: it needs bash or nc for a remote "
				"host", host, (long long)port);
		goto out;
	}
	if (run.status != 0 || (strncmp(o, "OK", 2) && strncmp(o, "TIMEOUT", 7))) {
		vz_pbmod_failed(r, "wait_for on the node failed (exit %d): %.300s", run.status,
				vz_buf_cstr(&run.err));
		goto out;
	}
	if (!strncmp(o, "TIMEOUT", 7)) {
		if (umsg)
			vz_pbmod_failed(r, "%s", umsg);
		else if (port >= 0 && absent)
			vz_pbmod_failed(r, "Timeout when waiting for %s:%lld to stop.", host, (long long)port);
		else if (port >= 0)
			vz_pbmod_failed(r, "Timeout when waiting for %s:%lld", host, (long long)port);
		else if (absent)
			vz_pbmod_failed(r, "Timeout when waiting for %s to be absent.", path);
		else if (re)
			vz_pbmod_failed(r, "Timeout when waiting for search string %s in %s", re, path);
		else if (path)
			vz_pbmod_failed(r, "Timeout when waiting for file %s", path);
		else
			goto ok; /* a plain sleep */
		goto out;
	}
ok:
	json_object_set_new(r, "state", json_string(state));
	json_object_set_new(r, "port", port >= 0 ? json_integer(port) : json_null());
	json_object_set_new(r, "path", path ? json_string(path) : json_null());
	json_object_set_new(r, "search_regex", re ? json_string(re) : json_null());
	json_object_set_new(r, "match_groups", json_array());
	json_object_set_new(r, "match_groupdict", json_object());
	if (path && !absent) {
		if ((rc = vz_pbmod_node_stat(&st, ctx, path, 0, 0, &err)) != 0)
			goto fail;
		if (st.exists && st.target_exists)
			vz_pbmod_path_info(r, &st);
	}
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	vz_pbmod_st_free(&st);
	vz_pbmod_run_free(&run);
	vz_buf_free(&s);
	return vz_pbmod_done(result, ctx, r, rc);
}

const vz_pbmod vz_pbmod_wait_for = { "wait_for", run, check, 0, 0 };
