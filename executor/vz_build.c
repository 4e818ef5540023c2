/* vz_build: one build, start to result; see vz_build.h. */
#include "vz_build.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vz_buf.h"
#include "vz_log.h"
#include "vz_node.h"
#include "vz_deliver.h"
#include "vz_inventory.h"
#include "vz_playbook.h"
#include "vz_prepare.h"
#include "vz_zuulvars.h"
#include "vz_util.h"
#include "vz_workspace.h"

#define CHUNK_MAX (64 * 1024)  /* raw bytes per log message: stays far below the frame cap */
#define FLUSH_MS 50            /* output reaches the scheduler within this */

typedef struct logw {
	int fd;
	long long offset;     /* bytes written to job-output.txt */
	size_t max;
	int truncated;
	const char *node;
	const char *uuid;
	vz_buf pending;       /* formatted, not yet written */
	vz_buf line[3];       /* partial lines per stream */
	uint64_t last_flush;
	vz_build_emit emit;
	void *ctx;
	volatile int *cancel;
	const vz_build_env *env;
} logw;

static void flush(logw *w)
{
	if (w->pending.len == 0)
		return;
	const char *p = w->pending.ptr;
	size_t left = w->pending.len;
	while (left > 0) {
		size_t n = left > CHUNK_MAX ? CHUNK_MAX : left;
		/* never split a UTF-8 sequence between messages */
		while (n < left && n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
			n--;
		ssize_t wr = write(w->fd, p, n);
		if (wr < 0 && errno == EINTR)
			continue;
		if (wr != (ssize_t)n)
			vz_warn("build %s: cannot write job-output.txt: %s", w->uuid, strerror(errno));
		json_t *s = json_stringn(p, n);
		if (s)
			w->emit(w->ctx, VZ_MSG_LOG,
				json_pack("{s:s,s:I,s:o}", "build", w->uuid, "offset", (json_int_t)w->offset, "data", s));
		w->offset += (long long)n;
		p += n;
		left -= n;
	}
	vz_buf_reset(&w->pending);
	w->last_flush = vz_mono_ms();
}

/* Appends valid UTF-8 (invalid bytes and NUL become U+FFFD) so every log byte can travel in a
 * JSON string and the offsets on both sides agree. */
static void put_sanitized(vz_buf *b, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t len = s[i] ? vz_utf8_len(s + i, n - i) : 0;
		if (len) {
			vz_buf_add(b, s + i, len);
			i += len;
		} else {
			vz_buf_add(b, "\xEF\xBF\xBD", 3);
			i++;
		}
	}
}

static void emit_line(logw *w, const char *text, size_t n)
{
	if (w->truncated)
		return;
	char ts[40];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	size_t before = w->pending.len;
	vz_buf_printf(&w->pending, "%s.%06ld | %s | ", ts, now.tv_nsec / 1000, w->node);
	put_sanitized(&w->pending, text, n);
	vz_buf_putc(&w->pending, '\n');
	if (w->env && w->env->on_line)
		w->env->on_line(w->env->line_ctx, w->node, text, n);
	if ((size_t)w->offset + w->pending.len > w->max) {
		w->pending.len = before;
		w->pending.ptr[before] = '\0';
		vz_buf_printf(&w->pending, "[vinz: log cut here: job-output.txt reached its limit of %zu bytes; "
					   "further output is dropped, the job keeps running]\n",
			      w->max);
		w->truncated = 1;
	}
	if (w->pending.len >= CHUNK_MAX || vz_mono_ms() - w->last_flush >= FLUSH_MS)
		flush(w);
}

static void logf_line(logw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_line(logw *w, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	emit_line(w, line, n < 0 ? 0 : (size_t)n >= sizeof(line) ? sizeof(line) - 1 : (size_t)n);
}

static int on_output(void *ctx, int stream, const char *data, size_t len)
{
	logw *w = ctx;
	vz_buf *lb = &w->line[stream == VZ_NODE_STDERR ? 2 : 1];
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		/* a line longer than 16 KiB is cut into several */
		size_t room = 16384 - lb->len;
		if (take > room)
			take = room;
		vz_buf_add(lb, data, take);
		data += take;
		len -= take;
		if (nl && data == nl) {
			data++;
			len--;
			emit_line(w, lb->ptr ? lb->ptr : "", lb->len);
			vz_buf_reset(lb);
		} else if (lb->len >= 16384) {
			emit_line(w, lb->ptr, lb->len);
			vz_buf_reset(lb);
		}
	}
	if (vz_mono_ms() - w->last_flush >= FLUSH_MS)
		flush(w);
	return w->cancel && *w->cancel;
}

static void end_lines(logw *w)
{
	for (int i = 1; i <= 2; i++) {
		if (w->line[i].len) {
			emit_line(w, w->line[i].ptr, w->line[i].len);
			vz_buf_reset(&w->line[i]);
		}
	}
}

char *vz_build_log_path(const char *work_dir, const char *uuid)
{
	char rel[128];
	snprintf(rel, sizeof(rel), "builds/%s/job-output.txt", uuid);
	return vz_path_join(work_dir, rel);
}

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

/* ---- playbooks (Zuul's pre-run, run, post-run and cleanup-run) ---- */

typedef struct pbctx {
	logw *w;
	const char *node_name;
	vz_node *node;
} pbctx;

static void pb_line(void *ctx, const char *host, const char *text)
{
	pbctx *c = ctx;
	const char *saved = c->w->node;
	c->w->node = host ? host : c->node_name;
	emit_line(c->w, text, strlen(text));
	c->w->node = saved;
}

static vz_node *pb_node(void *ctx, const char *host)
{
	pbctx *c = ctx;
	return strcmp(host, c->node_name) == 0 ? c->node : NULL;
}

/* The playbooks of one phase: [{project, path, trusted}] resolved in the prepared workspaces.
 * Returns the number of paths in out (caller frees each), or -1 with message set. */
static int phase_paths(json_t *list, const vz_prepared *p, char **out, int max, const char **trusted_out, char *message,
		       size_t mlen)
{
	int n = 0;
	size_t i;
	json_t *pb;
	json_array_foreach(list, i, pb) {
		const char *proj = json_string_value(json_object_get(pb, "project"));
		const char *path = json_string_value(json_object_get(pb, "path"));
		const vz_prepared_project *pp = NULL;
		for (size_t k = 0; k < p->nprojects && proj; k++)
			if (strcmp(p->projects[k].canonical, proj) == 0 || strcmp(p->projects[k].project, proj) == 0)
				pp = &p->projects[k];
		if (!path || !*path || path[0] == '/' || strstr(path, "..") || !pp || n >= max) {
			snprintf(message, mlen, "playbook %s in %s: %s", path ? path : "(none)", proj ? proj : "(no project)",
				 !pp ? "the project is not in the build's workspace" : n >= max ? "too many playbooks"
				 : "the path must be relative to the project, without '..'");
			for (int k = 0; k < n; k++)
				free(out[k]);
			return -1;
		}
		out[n] = vz_path_join(pp->dir, path);
		trusted_out[n] = json_is_true(json_object_get(pb, "trusted")) ? "1" : NULL;
		n++;
	}
	return n;
}

/* Runs the phases of req->playbooks on the build's node. Sets result and message as Zuul
 * decides: a pre-run failure or an unreachable node retries, a run failure is FAILURE, a
 * post-run failure after a good run POST_FAILURE; post-run and cleanup-run always run once
 * pre-run passed (post-run with zuul_success), cleanup-run even after a cancel. */
static void run_playbooks(json_t *req, const vz_prepared *prepared, const char *bdir, vz_node *node, const char *node_name,
			  json_t *nodej, volatile int *cancel, logw *w, uint64_t deadline, const char **result, char *message,
			  size_t mlen)
{
	static const char *const phases[] = { "pre_run", "run", "post_run", "cleanup_run" };
	json_t *pbs = json_object_get(req, "playbooks");
	vz_inventory *inv = vz_inventory_new();
	char *logs = vz_path_join(bdir, "logs");
	vz_err e = { 0 };
	/* Zuul's precedence for one host: job vars < group-vars of the host's groups < host-vars */
	json_t *hv = json_deep_copy(json_object_get(req, "vars"));
	if (!json_is_object(hv)) {
		json_decref(hv);
		hv = json_object();
	}
	json_t *groups = json_object_get(nodej, "groups"), *gv = json_object_get(req, "group_vars");
	size_t gi;
	json_t *g;
	json_array_foreach(groups, gi, g) {
		json_t *v = json_is_string(g) ? json_object_get(gv, json_string_value(g)) : NULL;
		if (json_is_object(v))
			json_object_update(hv, v);
	}
	json_t *mine = json_object_get(json_object_get(req, "host_vars"), node_name);
	if (json_is_object(mine))
		json_object_update(hv, mine);
	json_object_set_new(hv, "nodepool", vz_zuulvars_nodepool(nodej));
	json_object_set_new(hv, "ansible_host", json_string(json_string_value(json_object_get(nodej, "host")) ?
								   json_string_value(json_object_get(nodej, "host")) : "localhost"));
	int added = 0;
	json_array_foreach(groups, gi, g) {
		if (json_is_string(g) && vz_inventory_add_host(inv, node_name, json_string_value(g), hv, &e) == 0)
			added = 1;
	}
	if (!added && vz_inventory_add_host(inv, node_name, NULL, hv, &e)) {
		*result = "ERROR";
		snprintf(message, mlen, "inventory: %s", vz_err_msg(&e));
		goto out;
	}
	vz_zuulvars_dirs dirs = { bdir, logs, NULL };
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	dirs.hostname = host;
	json_t *zuul = vz_zuulvars_zuul(req, prepared, &dirs);
	json_t *extra = json_pack("{s:o}", "zuul", zuul);
	pbctx pc = { w, node_name, node };
	int pre_ok = 1, run_ok = 1;
	*result = "SUCCESS";
	for (int ph = 0; ph < 4; ph++) {
		json_t *list = json_object_get(pbs, phases[ph]);
		if (!json_is_array(list) || json_array_size(list) == 0)
			continue;
		if (ph <= 1 && (!pre_ok || !run_ok))
			continue; /* run only after a good pre-run */
		if (ph == 2 && !pre_ok)
			continue;
		if (ph < 3 && *cancel)
			continue;
		char *paths[64];
		const char *trusted[64];
		int n = phase_paths(list, prepared, paths, 64, trusted, message, mlen);
		if (n < 0) {
			*result = "ERROR";
			break;
		}
		json_object_set_new(extra, "zuul_success", json_boolean(pre_ok && run_ok));
		for (int k = 0; k < n; k++) {
			uint64_t now = vz_mono_ms();
			/* the job timeout covers pre-run and run; post-run and cleanup-run get their own */
			int tmo = ph <= 1 ? (now >= deadline ? 1 : (int)(deadline - now)) : 1800 * 1000;
			const char *one[1] = { paths[k] };
			vz_playbook_opts o = { .playbooks = one, .nplaybooks = 1, .inventory = inv, .extra_vars = extra,
					       .node_lookup = pb_node, .node_ctx = &pc, .untrusted = !trusted[k],
					       .confine_dir = bdir, .work_dir = bdir, .log_dir = logs, .timeout_ms = tmo,
					       .cancel = ph == 3 ? NULL : cancel, .on_line = pb_line, .line_ctx = &pc };
			vz_playbook_result res = { 0 };
			vz_err pe = { 0 };
			logf_line(w, "vinz: %s playbook %s%s", phases[ph], paths[k] + strlen(bdir) + 1,
				  trusted[k] ? " (trusted)" : "");
			int rc = vz_playbook_run(&res, &o, &pe);
			end_lines(w);
			int ok = rc == 0 && res.exit_code == 0;
			if (rc) {
				*result = "ERROR";
				snprintf(message, mlen, "%s playbook %s: %s", phases[ph], paths[k] + strlen(bdir) + 1, vz_err_msg(&pe));
				pre_ok = run_ok = 0;
			} else if (res.timed_out && ph <= 1) {
				*result = "TIMED_OUT";
				snprintf(message, mlen, "job timed out in %s playbook %s", phases[ph], paths[k] + strlen(bdir) + 1);
			} else if (!ok && cancel && *cancel && ph < 3) {
				*result = *cancel == VZ_BUILD_CANCEL_STOPPING ? "RETRY" : "ABORTED";
				snprintf(message, mlen, "%s", *cancel == VZ_BUILD_CANCEL_STOPPING ? "the executor stopped during the build"
												: "build canceled");
			} else if (!ok && (ph == 0 || res.exit_code == 4)) {
				/* a failed pre-run or an unreachable node: Zuul runs the build again */
				if (strcmp(*result, "SUCCESS") == 0) {
					*result = "RETRY";
					snprintf(message, mlen, "%s playbook %s %s", phases[ph], paths[k] + strlen(bdir) + 1,
						 res.exit_code == 4 ? "could not reach the node" : "failed");
				}
			} else if (!ok && ph == 1) {
				*result = "FAILURE";
				snprintf(message, mlen, "run playbook %s failed", paths[k] + strlen(bdir) + 1);
			} else if (!ok && ph == 2 && strcmp(*result, "SUCCESS") == 0) {
				*result = "POST_FAILURE";
				snprintf(message, mlen, "post-run playbook %s failed", paths[k] + strlen(bdir) + 1);
			}
			json_decref(res.json);
			if (!ok && ph == 0)
				pre_ok = 0;
			else if (!ok && ph == 1)
				run_ok = 0;
			if (!ok && ph <= 1)
				break;
		}
		for (int k = 0; k < n; k++)
			free(paths[k]);
		if (strcmp(*result, "ERROR") == 0)
			break;
	}
	json_decref(extra);
out:
	json_decref(hv);
	vz_inventory_free(inv);
	free(logs);
}

static void prepare_log(void *ctx, const char *line)
{
	logf_line(ctx, "%s", line);
}

void vz_build_run(json_t *req, const vz_build_env *env, volatile int *cancel, vz_build_emit emit, void *ctx)
{
	const char *uuid = jstr(req, "build");
	json_int_t attempt = json_integer_value(json_object_get(req, "attempt"));
	json_t *nodej = json_object_get(req, "node");
	const char *node_name = jstr(nodej, "name");
	int64_t started = vz_wall_ms();
	const char *result = "ERROR";
	char message[VZ_ERR_MSG_MAX + 128] = "";
	char commit[41] = "";
	vz_err e = { 0 };
	vz_node *node = NULL;
	vz_node_spec spec = { 0 };
	char *bdir = NULL, *src = NULL, *logp = NULL, *cache = NULL;
	vz_prepared prepared = { 0 };
	char rel[128];
	logw w = { .fd = -1, .max = env->log_max ? env->log_max : 64u * 1024 * 1024, .node = node_name, .uuid = uuid,
		   .emit = emit, .ctx = ctx, .cancel = cancel, .env = env };
	vz_buf_init(&w.pending, 8u * 1024 * 1024);
	for (int i = 0; i < 3; i++)
		vz_buf_init(&w.line[i], 16384);

	snprintf(rel, sizeof(rel), "builds/%s", uuid);
	bdir = vz_path_join(env->work_dir, rel);
	logp = vz_build_log_path(env->work_dir, uuid);
	cache = vz_path_join(env->work_dir, "cache");
	vz_rm_rf(bdir, NULL);
	if (vz_mkdir_p(bdir, 0755, &e)) {
		snprintf(message, sizeof(message), "executor work dir: %s", vz_err_msg(&e));
		goto done;
	}
	w.fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w.fd < 0) {
		snprintf(message, sizeof(message), "cannot create %s: %s", logp, strerror(errno));
		goto done;
	}
	w.last_flush = vz_mono_ms();
	emit(ctx, VZ_MSG_STARTED,
	     json_pack("{s:s,s:I,s:I,s:s}", "build", uuid, "attempt", attempt, "started_at", (json_int_t)started, "node", node_name));
	logf_line(&w, "vinz: build %s, job %s, attempt %lld, project %s change %s (%s)", uuid, jstr(req, "job"),
		  (long long)attempt, jstr(req, "project"), jstr(req, "change"), jstr(req, "ref"));

	/* 1. the workspaces on the executor: every project, at its speculative state */
	int prc = vz_prepare_workspace(&prepared, req, bdir, cache, env->site, prepare_log, &w, &e);
	if (prc) {
		if (prc == VZ_ECONFLICT)
			result = "MERGE_CONFLICT";
		snprintf(message, sizeof(message), "%s%s", prc == VZ_ECONFLICT ? "" : "cannot prepare the workspace: ",
			 vz_err_msg(&e));
		logf_line(&w, "vinz: %s", message);
		goto done;
	}
	src = vz_xstrdup(prepared.projects[0].dir);
	vz_strlcpy(commit, prepared.commit, sizeof(commit));
	/* 2. the node */
	const char *conn = jstr(nodej, "connection");
	spec.kind = strcmp(conn, "local") == 0 ? VZ_NODE_LOCAL : VZ_NODE_SSH;
	spec.name = node_name;
	spec.host = jstr(nodej, "host");
	spec.port = (int)json_integer_value(json_object_get(nodej, "port"));
	spec.user = *jstr(nodej, "user") ? jstr(nodej, "user") : NULL;
	spec.key_file = *jstr(nodej, "key") ? jstr(nodej, "key") : NULL;
	spec.known_hosts = *jstr(nodej, "known_hosts") ? jstr(nodej, "known_hosts") : NULL;
	spec.host_key = *jstr(nodej, "host_key") ? jstr(nodej, "host_key") : NULL;
	int rc = vz_node_connect(&node, &spec, &e);
	if (rc) {
		result = rc == VZ_EHOSTKEY || rc == VZ_EAUTH || rc == VZ_EINVAL ? "NODE_FAILURE" : "RETRY";
		snprintf(message, sizeof(message), "%s", vz_err_msg(&e)); /* names the node already */
		logf_line(&w, "vinz: %s", message);
		goto done;
	}

	/* 3. the work tree on the node: local nodes use the checkout itself */
	const char *cwd = src;
	char remote_dir[1200];
	if (spec.kind == VZ_NODE_SSH) {
		/* a node that runs one build at a time gets Zuul's layout; a shared node gets a
		 * directory per build so concurrent builds never share a work tree. One delivery per
		 * project of the workspace; the build's own project is the first. */
		for (size_t pi = 0; pi < prepared.nprojects; pi++) {
			const vz_prepared_project *pp = &prepared.projects[pi];
			char rdir[1200];
			if (json_is_true(json_object_get(nodej, "shared")))
				snprintf(rdir, sizeof(rdir), "vinz-builds/%s/src/%s", uuid, pp->canonical);
			else
				snprintf(rdir, sizeof(rdir), "src/%s", pp->canonical);
			vz_deliver_opts dopt = { .project = pp->canonical, .pack_max = env->ship_max, .timeout_ms = 600000,
						 .cancel = cancel, .on_output = on_output, .ctx = &w };
			vz_deliver_stats ds;
			rc = vz_deliver_repo(node, pp->dir, rdir, &dopt, &ds, &e);
			end_lines(&w);
			if (ds.note[0])
				logf_line(&w, "vinz: %s", ds.note);
			if (rc) {
				result = rc == VZ_ECANCELED ? (*cancel != VZ_BUILD_CANCEL_STOPPING ? "ABORTED" : "RETRY")
					 : rc == VZ_ETOOBIG || rc == VZ_EINVAL ? "ERROR" : "RETRY";
				snprintf(message, sizeof(message), "cannot deliver the workspace of %s to node %s: %s", pp->canonical,
					 node_name, vz_err_msg(&e));
				logf_line(&w, "vinz: %s", message);
				goto done;
			}
			logf_line(&w, "vinz: workspace %s delivered to %s:~/%s by %s: %zu objects, %zu bytes, %d round trips, %llu ms",
				  pp->canonical, node_name, rdir, vz_deliver_method_name(ds.method), ds.objects, ds.bytes,
				  ds.round_trips, (unsigned long long)ds.total_ms);
			if (pi == 0)
				vz_strlcpy(remote_dir, rdir, sizeof(remote_dir));
		}
		cwd = remote_dir;
	}

	/* 4. the job: playbooks (Zuul's phases) or plain commands */
	if (json_is_object(json_object_get(req, "playbooks"))) {
		json_int_t tmo_s = json_integer_value(json_object_get(req, "timeout"));
		uint64_t dl = vz_mono_ms() + (uint64_t)(tmo_s > 0 ? tmo_s : 1800) * 1000u;
		run_playbooks(req, &prepared, bdir, node, node_name, nodej, cancel, &w, dl, &result, message, sizeof(message));
		if (strcmp(result, "SUCCESS") != 0)
			logf_line(&w, "vinz: %s", message);
		goto done;
	}
	/* 4. the commands */
	const char *envv[9];
	char ebuf[8][600];
	const char *keys[][2] = { { "VINZ_BUILD", "build" }, { "VINZ_JOB", "job" }, { "VINZ_PROJECT", "project" },
				  { "VINZ_PIPELINE", "pipeline" }, { "VINZ_CHANGE", "change" }, { "VINZ_REF", "ref" },
				  { "VINZ_BRANCH", "branch" } };
	int ne = 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(ebuf[ne], sizeof(ebuf[ne]), "%s=%s", keys[i][0], jstr(req, keys[i][1]));
		envv[ne] = ebuf[ne];
		ne++;
	}
	snprintf(ebuf[ne], sizeof(ebuf[ne]), "VINZ_COMMIT=%s", commit);
	envv[ne] = ebuf[ne];
	ne++;
	envv[ne] = NULL;
	json_t *cmds = json_object_get(req, "commands");
	json_int_t timeout_s = json_integer_value(json_object_get(req, "timeout"));
	uint64_t deadline = vz_mono_ms() + (uint64_t)(timeout_s > 0 ? timeout_s : 1800) * 1000u;
	result = "SUCCESS";
	size_t i;
	json_t *cj;
	json_array_foreach(cmds, i, cj) {
		const char *cmd = json_string_value(cj);
		if (!cmd)
			continue;
		uint64_t now = vz_mono_ms();
		if (now >= deadline) {
			result = "TIMED_OUT";
			break;
		}
		logf_line(&w, "$ %s", cmd);
		vz_node_cmd c = { .command = cmd, .cwd = cwd, .env = envv, .timeout_ms = (int)(deadline - now),
				  .on_output = on_output, .ctx = &w, .cancel = cancel };
		vz_node_result r = { 0 };
		vz_err ce = { 0 };
		rc = vz_node_exec(node, &c, &r, &ce);
		end_lines(&w);
		if (rc == VZ_ETIMEOUT) {
			result = "TIMED_OUT";
			snprintf(message, sizeof(message), "job timed out after %lld s in: %s", (long long)timeout_s, cmd);
		} else if (rc == VZ_ECANCELED) {
			/* cancel 1: the scheduler canceled the build; 2: this executor is stopping, so the
			 * build goes back to be run elsewhere */
			result = *cancel == VZ_BUILD_CANCEL_STOPPING ? "RETRY" : "ABORTED";
			snprintf(message, sizeof(message), "%s",
				 *cancel == VZ_BUILD_CANCEL_STOPPING ? "the executor stopped during the build" : "build canceled");
		} else if (rc) {
			result = "RETRY";
			snprintf(message, sizeof(message), "node %s failed during the job: %s", node_name, vz_err_msg(&ce));
		} else if (r.exit_status != 0) {
			result = "FAILURE";
			snprintf(message, sizeof(message), "command exited %d: %s", r.exit_status, cmd);
		}
		logf_line(&w, "vinz: exit %d after %.3f s", r.exit_status, (double)r.duration_ms / 1000.0);
		if (strcmp(result, "SUCCESS") != 0) {
			logf_line(&w, "vinz: %s", message);
			break;
		}
	}
done:
	if (w.fd >= 0) {
		logf_line(&w, "vinz: result %s", result);
		flush(&w);
		close(w.fd);
	}
	if (node && spec.kind == VZ_NODE_SSH && json_is_true(json_object_get(nodej, "shared"))) {
		/* per-build directories on shared nodes do not outlive the build */
		char rm[200];
		snprintf(rm, sizeof(rm), "rm -rf 'vinz-builds/%s'", uuid);
		vz_node_cmd c = { .command = rm, .timeout_ms = 60000 };
		vz_node_result r = { 0 };
		vz_err ce = { 0 };
		if (vz_node_exec(node, &c, &r, &ce) || r.exit_status != 0)
			vz_warn("build %s: cannot remove its directory on node %s: %s", uuid, node_name, vz_err_msg(&ce));
	}
	vz_node_close(node);
	emit(ctx, VZ_MSG_RESULT,
	     json_pack("{s:s,s:I,s:s,s:s,s:I,s:I,s:s,s:I,s:s,s:s}", "build", uuid, "attempt", attempt, "result", result,
		       "message", message, "started_at", (json_int_t)started, "ended_at", (json_int_t)vz_wall_ms(), "commit",
		       commit, "log_size", (json_int_t)w.offset, "node", node_name, "executor",
		       env->executor ? env->executor : ""));
	/* the workspaces are not needed once the result exists; the log stays until the result is acked */
	if (bdir && !env->keep_workspace) {
		char *srcroot = vz_path_join(bdir, "src");
		vz_rm_rf(srcroot, NULL);
		free(srcroot);
	}
	vz_prepared_clear(&prepared);
	vz_buf_free(&w.pending);
	for (int k = 0; k < 3; k++)
		vz_buf_free(&w.line[k]);
	free(bdir);
	free(src);
	free(logp);
	free(cache);
}
