/* vz_playbook_run: Ansible's linear strategy over vz_node connections. A task runs on every
 * active host (a thread per host) before the next one starts; a failed host leaves the play,
 * blocks give it a rescue and an always; handlers run where they were notified, in the order
 * they are written. Results go to the output module (vz_playbook_out.c). */
#include "vz_playbook_run.h"

#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vz_util.h"
#include "vz_yaml.h"

/* ---- paths ---- */

static int under_dir(const char *real, const char *dir)
{
	char rd[PATH_MAX];
	if (!dir || !realpath(dir, rd))
		return 0;
	size_t n = strlen(rd);
	return !strncmp(real, rd, n) && (real[n] == '/' || real[n] == 0 || (n == 1 && rd[0] == '/'));
}

/* Untrusted playbooks read executor files only under the playbook's dir or confine_dir, with
 * symlinks and ".." resolved first. */
static int path_confined(runner *r, const char *path)
{
	char real[PATH_MAX];
	if (!path || !realpath(path, real))
		return 0;
	return under_dir(real, r->pb->dir) || under_dir(real, r->o->confine_dir);
}

/* ---- hosts ---- */

static pb_host *host_get(runner *r, const char *name)
{
	for (size_t i = 0; i < r->nhosts; i++)
		if (!strcmp(r->hosts[i]->name, name))
			return r->hosts[i];
	pb_host **v = realloc(r->hosts, (r->nhosts + 1) * sizeof(*v));
	pb_host *h = calloc(1, sizeof(*h));
	if (!v || !h) {
		if (v)
			r->hosts = v;
		free(h);
		return NULL;
	}
	r->hosts = v;
	h->name = strdup(name);
	h->inv_vars = vz_inventory_host_vars(r->o->inventory, name);
	if (!vz_inventory_has_host(r->o->inventory, name) &&
	    (!strcmp(name, "localhost") || !strcmp(name, "127.0.0.1"))) {
		h->implicit_local = 1;
		json_object_set_new(h->inv_vars, "ansible_connection", json_string("local"));
	}
	h->facts = json_object();
	h->hfacts = json_object();
	h->notified = json_object();
	pthread_mutex_init(&h->lock, NULL);
	v[r->nhosts++] = h;
	return h;
}

static void host_free(pb_host *h)
{
	if (!h)
		return;
	if (h->own_node)
		vz_node_close(h->node);
	pthread_mutex_destroy(&h->lock);
	free(h->conn_msg);
	free(h->name);
	json_decref(h->inv_vars);
	json_decref(h->facts);
	json_decref(h->hfacts);
	json_decref(h->notified);
	free(h);
}

static const char *vstr(const json_t *vars, const char *k)
{
	const json_t *v = json_object_get(vars, k);
	return json_is_string(v) && *json_string_value(v) ? json_string_value(v) : NULL;
}

/* Opens the connection of h from its variables (or takes the caller's). *result gets an
 * unreachable or refused result on failure. Called with h->lock held. */
static int host_connect(runner *r, pb_host *h, int own, json_t **result)
{
	const vz_playbook_opts *o = r->o;
	json_t *vars = NULL;
	vz_err e = { 0 };
	int rc = 0;
	char kh[PATH_MAX];

	if (h->node)
		goto out;
	if (h->conn_failed) {
		*result = json_pack("{s:b,s:b,s:s}", "unreachable", 1, "changed", 0, "msg", h->conn_msg ? h->conn_msg : "");
		rc = VZ_ECONNECT;
		goto out;
	}
	vars = json_deep_copy(h->inv_vars);
	/* a delegate's set_facts belong to the thread running its own task: use its inventory only */
	if (own)
		json_object_update(vars, h->hfacts);
	json_object_update(vars, r->extra);
	vz_pb_lazy(vars, h->inv_vars, &r->topts);
	const char *conn = vstr(vars, "ansible_connection");
	if (!conn)
		conn = "ssh";
	if (o->node_lookup && (h->node = o->node_lookup(o->node_ctx, h->name)) != NULL) {
		h->own_node = 0;
		if (o->runner_for_lookup)
			vz_node_set_runner(h->node, 1);
		goto out;
	}
	if (!strcmp(conn, "local")) {
		if (o->untrusted) {
			*result = json_pack("{s:b,s:b,s:s}", "failed", 1, "changed", 0, "msg",
					    "the local connection is refused: this playbook is untrusted and may not run "
					    "anything on the executor (use a node from the inventory)");
			rc = VZ_EINVAL;
			goto out;
		}
		vz_node_spec spec = { .kind = VZ_NODE_LOCAL, .name = h->name };
		rc = vz_node_connect(&h->node, &spec, &e);
	} else if (!strcmp(conn, "ssh") || !strcmp(conn, "smart") || !strcmp(conn, "paramiko")) {
		const char *host = vstr(vars, "ansible_host");
		if (!host)
			host = vstr(vars, "ansible_ssh_host");
		if (!host)
			host = h->name;
		const char *user = vstr(vars, "ansible_user");
		if (!user)
			user = vstr(vars, "ansible_ssh_user");
		if (!user && r->play)
			user = json_string_value(json_object_get(r->play->kw, "remote_user"));
		if (!user)
			user = o->default_user;
		struct passwd *pw = getpwuid(getuid());
		if (!user)
			user = pw ? pw->pw_name : "root";
		const char *key = vstr(vars, "ansible_ssh_private_key_file");
		if (!key)
			key = vstr(vars, "ansible_private_key_file");
		if (!key)
			key = o->private_key;
		const char *khf = o->known_hosts;
		if (!khf) {
			snprintf(kh, sizeof(kh), "%s/.ssh/known_hosts", pw && pw->pw_dir ? pw->pw_dir : "/root");
			khf = kh;
		}
		int64_t port = 22;
		json_t *pj = json_object_get(vars, "ansible_port");
		if (!pj)
			pj = json_object_get(vars, "ansible_ssh_port");
		if (json_is_integer(pj))
			port = json_integer_value(pj);
		else if (json_is_string(pj) && vz_parse_i64(json_string_value(pj), 1, 65535, &port))
			port = -1;
		if (port < 1 || port > 65535) {
			rc = vz_err_set(&e, VZ_EINVAL, "bad ansible_port for host %s", h->name);
		} else {
			vz_node_spec spec = { .kind = VZ_NODE_SSH, .name = h->name, .host = host, .port = (int)port,
					      .user = user, .key_file = key, .known_hosts = khf };
			rc = vz_node_connect(&h->node, &spec, &e);
			if (rc == 0 && !o->no_runner)
				vz_node_set_runner(h->node, 1); /* one shell per host, see docs/playbooks.md */
		}
	} else {
		*result = json_pack("{s:b,s:b,s:s+}", "failed", 1, "changed", 0, "msg",
				    "the connection plugin is not supported by vinz (use ssh or local): ", conn);
		rc = VZ_EINVAL;
		goto out;
	}
	if (rc == 0) {
		h->own_node = 1;
		goto out;
	}
	h->conn_failed = 1;
	free(h->conn_msg);
	{
		vz_buf m = VZ_BUF_INIT(2048);
		vz_buf_printf(&m, "Failed to connect to the host via %s: %s", conn, vz_err_msg(&e));
		h->conn_msg = vz_buf_detach(&m);
	}
	*result = json_pack("{s:b,s:b,s:s}", "unreachable", 1, "changed", 0, "msg", h->conn_msg ? h->conn_msg : "");
	rc = VZ_ECONNECT;
out:
	json_decref(vars);
	return rc;
}

/* ---- variables ---- */

static void layer(json_t *v, json_t *lazy, const json_t *src, int is_lazy)
{
	const char *k;
	json_t *x;
	if (!json_is_object(src))
		return;
	json_object_foreach((json_t *)src, k, x) {
		json_object_set(v, k, x);
		if (is_lazy && vz_pb_has_tmpl(x, 0))
			json_object_set(lazy, k, json_true());
		else
			json_object_del(lazy, k);
	}
}

static pb_role *task_role(const pb_task *t)
{
	for (int d = 0; t && d < 10000; t = t->parent, d++)
		if (t->role)
			return t->role;
	return NULL;
}

/* The variables a task sees on host h (before the loop item), Ansible's precedence for the
 * sources vinz has. *lazy names the members still to be templated. */
json_t *vz_pb_task_vars(runner *r, const pb_task *t, pb_host *h, json_t **lazy_out)
{
	json_t *v = json_object(), *lazy = json_object();
	const pb_task *chain[VZ_PB_MAX_INCLUDE_DEPTH * 4 + 8];
	size_t n = 0;

	for (const pb_task *p = t; p && n < sizeof(chain) / sizeof(chain[0]); p = p->parent)
		chain[n++] = p;
	layer(v, lazy, r->role_defaults, 1);
	/* role defaults, outermost role first */
	for (size_t i = n; i-- > 0;)
		if (chain[i]->is_role_block && chain[i]->role)
			layer(v, lazy, chain[i]->role->defaults, 1);
	if (t && t->role && (!n || !chain[n - 1]->is_role_block))
		layer(v, lazy, t->role->defaults, 1);
	layer(v, lazy, h->inv_vars, 1);
	layer(v, lazy, h->facts, 0);
	layer(v, lazy, r->play_vars, 1);
	layer(v, lazy, r->role_vars, 1);
	for (size_t i = n; i-- > 0;)
		if (chain[i]->is_role_block && chain[i]->role)
			layer(v, lazy, chain[i]->role->vars, 1);
	for (size_t i = n; i-- > 0;)
		layer(v, lazy, json_object_get(chain[i]->kw, "vars"), 1);
	layer(v, lazy, h->hfacts, 0);
	layer(v, lazy, r->extra, 1);
	/* magic variables */
	json_object_set_new(v, "inventory_hostname", json_string(h->name));
	{
		char shortn[256];
		vz_strlcpy(shortn, h->name, sizeof(shortn));
		char *dot = strchr(shortn, '.');
		if (dot)
			*dot = 0;
		json_object_set_new(v, "inventory_hostname_short", json_string(shortn));
	}
	json_object_set(v, "groups", r->groups);
	json_object_set_new(v, "group_names", vz_inventory_group_names(r->o->inventory, h->name));
	if (r->hostvars)
		json_object_set(v, "hostvars", r->hostvars);
	json_object_set(v, "play_hosts", r->play_hosts);
	json_object_set(v, "ansible_play_hosts", r->play_hosts);
	json_object_set(v, "ansible_play_batch", r->play_hosts);
	json_object_set(v, "ansible_play_hosts_all", r->play_hosts_all);
	json_object_set_new(v, "playbook_dir", json_string(r->pb->dir));
	json_object_set_new(v, "omit", json_string(VZ_PB_OMIT));
	json_object_set_new(v, "ansible_check_mode", json_false());
	json_object_set_new(v, "ansible_diff_mode", json_false());
	json_object_set_new(v, "ansible_facts", json_incref(json_object_get(h->facts, "__ansible_facts")
								     ? json_object_get(h->facts, "__ansible_facts")
								     : r->empty));
	json_object_del(v, "__ansible_facts");
	json_object_set_new(v, "ansible_play_name", json_string(r->play_name ? r->play_name : ""));
	pb_role *role = task_role(t);
	if (role) {
		json_object_set_new(v, "role_name", json_string(role->name));
		json_object_set_new(v, "role_path", json_string(role->dir));
	}
	*lazy_out = lazy;
	return v;
}

/* ---- keyword helpers ---- */

/* Nearest value of an inheritable keyword: the task, its blocks, then the play. Borrowed. */
static const json_t *kw_get(runner *r, const pb_task *t, const char *k)
{
	for (int d = 0; t && d < 10000; t = t->parent, d++) {
		const json_t *v = json_object_get(t->kw, k);
		if (v)
			return v;
	}
	return r->play ? json_object_get(r->play->kw, k) : NULL;
}

static int kw_bool(runner *r, const pb_task *t, const char *k, const json_t *vars)
{
	const json_t *v = kw_get(r, t, k);
	if (!v)
		return 0;
	if (json_is_string(v) && vars) {
		json_t *x = NULL;
		vz_err e = { 0 };
		int res = 0;
		if (vz_pb_template(&x, v, vars, &r->topts, &e) == 0) {
			const char *s = json_string_value(x);
			res = s ? (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1") || !strcasecmp(s, "on"))
				: vz_template_truthy(x);
		}
		json_decref(x);
		return res;
	}
	return vz_template_truthy(v);
}

/* ---- output streaming (job-output.txt) ---- */

typedef struct stream_ctx {
	runner *r;
	const char *host;
	vz_buf part[2];
} stream_ctx;

static int on_output(void *ctx, int stream, const char *data, size_t len)
{
	stream_ctx *s = ctx;
	vz_buf *b = &s->part[stream == VZ_NODE_STDERR];
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' || b->len >= 4096) {
			vz_pb_out_line(s->r, s->host, vz_buf_cstr(b));
			vz_buf_reset(b);
			if (data[i] == '\n')
				continue;
		}
		vz_buf_putc(b, data[i]);
	}
	return 0;
}

static void stream_flush(stream_ctx *s)
{
	for (int i = 0; i < 2; i++) {
		if (s->part[i].len)
			vz_pb_out_line(s->r, s->host, vz_buf_cstr(&s->part[i]));
		vz_buf_free(&s->part[i]);
	}
}

/* ---- one task on one host ---- */

typedef struct hrun {
	runner *r;
	pb_task *t;
	pb_host *h;
	json_t *hostvars_unused;
	json_t *result; /* final */
	char *delegate_name;
	int skipped, failed, changed, unreachable, ignored;
	char *label_for_out; /* task name after templating, for output */
} hrun;

static json_t *failed_result(const char *fmt, const char *a, const char *b)
{
	char msg[1500];
	snprintf(msg, sizeof(msg), fmt, a ? a : "", b ? b : "");
	return json_pack("{s:b,s:b,s:s}", "failed", 1, "changed", 0, "msg", msg);
}

static const char *delegate_refusal =
	"delegate_to: %s is refused: this playbook is untrusted and may not run anything on the executor%s";

/* Runs the module once (one loop item) with vars; returns the result (new reference). */
static json_t *run_module(hrun *hr, json_t *vars, int *unreachable)
{
	runner *r = hr->r;
	pb_task *t = hr->t;
	pb_host *h = hr->h, *target = h;
	json_t *args = NULL, *res = NULL, *envj = NULL, *bu = NULL;
	char **envv = NULL;
	size_t nenv = 0;
	vz_err e = { 0 };
	int rc;
	stream_ctx sc = { r, h->name, { VZ_BUF_INIT(8192), VZ_BUF_INIT(8192) } };
	const char *search[8];
	size_t ns = 0;
	char *chdir_s = NULL;
	int locked = 0;

	*unreachable = 0;
	if ((rc = vz_pb_template(&args, t->args, vars, &r->topts, &e)) != 0) {
		res = failed_result("The task includes an option with an undefined variable. The error was: %s%s",
				    vz_pb_errmsg(&e), NULL);
		goto out;
	}
	/* delegate_to */
	const json_t *dj = json_object_get(t->kw, "delegate_to");
	if (!dj)
		dj = kw_get(r, t, "delegate_to");
	if (dj) {
		json_t *dn = NULL;
		if (vz_pb_template(&dn, dj, vars, &r->topts, &e) != 0 || !json_is_string(dn)) {
			json_decref(dn);
			res = failed_result("delegate_to: %s%s", e.code ? vz_pb_errmsg(&e) : "not a host name", NULL);
			goto out;
		}
		pthread_mutex_lock(&r->hosts_lock);
		target = host_get(r, json_string_value(dn));
		pthread_mutex_unlock(&r->hosts_lock);
		free(hr->delegate_name);
		hr->delegate_name = strdup(json_string_value(dn));
		json_decref(dn);
		if (!target) {
			res = failed_result("out of memory%s%s", NULL, NULL);
			goto out;
		}
		if (r->o->untrusted && (target->implicit_local || (vstr(target->inv_vars, "ansible_connection") &&
								    !strcmp(vstr(target->inv_vars, "ansible_connection"), "local")))) {
			res = failed_result(delegate_refusal, target->name, " (delegate to a node instead)");
			goto out;
		}
	}
	/* environment */
	json_t *ev = json_object();
	{
		/* play, then blocks from the outside in, then the task: inner keys win */
		const json_t *chain[VZ_PB_MAX_INCLUDE_DEPTH * 4 + 8];
		size_t nc = 0;
		for (const pb_task *p = t; p && nc < sizeof(chain) / sizeof(chain[0]) - 1; p = p->parent)
			if (json_object_get(p->kw, "environment"))
				chain[nc++] = json_object_get(p->kw, "environment");
		if (json_object_get(r->play->kw, "environment"))
			chain[nc++] = json_object_get(r->play->kw, "environment");
		for (size_t i = nc; i-- > 0 && !res;) {
			if (json_is_object(chain[i])) {
				json_object_update(ev, (json_t *)chain[i]);
			} else if (json_is_string(chain[i])) {
				/* environment: "{{ some_dict }}" */
				json_t *d = NULL;
				if (vz_pb_template(&d, chain[i], vars, &r->topts, &e) != 0 || !json_is_object(d))
					res = failed_result("environment: %s%s", e.code ? vz_pb_errmsg(&e) :
							    "must be a mapping of variable names to values", NULL);
				else
					json_object_update(ev, d);
				json_decref(d);
			}
		}
	}
	if (res) {
		json_decref(ev);
		goto out;
	}
	if (json_object_size(ev) == 0) {
		json_decref(ev);
		ev = NULL;
	}
	if (ev) {
		rc = vz_pb_template(&envj, ev, vars, &r->topts, &e);
		json_decref(ev);
		if (rc != 0) {
			res = failed_result("environment: %s%s", vz_pb_errmsg(&e), NULL);
			goto out;
		}
		if (json_is_object(envj)) {
			envv = calloc(json_object_size(envj) + 1, sizeof(*envv));
			const char *k;
			json_t *x;
			json_object_foreach(envj, k, x) {
				vz_buf kv = VZ_BUF_INIT(1u << 20);
				char num[64];
				const char *sv = json_is_string(x) ? json_string_value(x) : NULL;
				if (!sv) {
					if (json_is_integer(x))
						snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(x));
					else if (json_is_boolean(x))
						snprintf(num, sizeof(num), "%s", json_is_true(x) ? "True" : "False");
					else
						snprintf(num, sizeof(num), "%s", "");
					sv = num;
				}
				vz_buf_printf(&kv, "%s=%s", k, sv);
				if (envv)
					envv[nenv++] = vz_buf_detach(&kv);
				vz_buf_free(&kv);
			}
		}
	}
	/* search dirs: the role's files/templates/dir, then the playbook's dir */
	pb_role *role = task_role(t);
	if (role)
		for (int i = 0; i < 3 && role->search[i]; i++)
			search[ns++] = role->search[i];
	search[ns++] = r->pb->dir;
	search[ns] = NULL;
	json_t *chd = json_object_get(args, "chdir");
	if (json_is_string(chd))
		chdir_s = strdup(json_string_value(chd));
	int64_t tmo = 0;
	const json_t *tj = kw_get(r, t, "timeout");
	if (json_is_integer(tj))
		tmo = json_integer_value(tj) * 1000;
	if (r->deadline) {
		uint64_t now = vz_mono_ms();
		int64_t left = now >= r->deadline ? 1 : (int64_t)(r->deadline - now);
		if (!tmo || left < tmo)
			tmo = left;
	}
	int no_log = kw_bool(r, t, "no_log", vars);
	const json_t *bj = kw_get(r, t, "become_user");
	if (bj)
		vz_pb_template(&bu, bj, vars, &r->topts, &e);
	vz_pbmod_ctx ctx = {
		.node = NULL,
		.host = h->name,
		.vars = vars,
		.search = search,
		.confine = r->o->untrusted ? (r->o->confine_dir ? r->o->confine_dir : r->pb->dir) : NULL,
		.work_dir = r->o->work_dir,
		.env = (const char *const *)envv,
		.chdir = chdir_s,
		.become = kw_bool(r, t, "become", vars),
		.become_user = json_is_string(bu) ? json_string_value(bu) : NULL,
		.timeout_ms = tmo > INT_MAX ? INT_MAX : (int)tmo,
		.cancel = r->o->cancel,
		.no_log = no_log,
		.on_output = (no_log || !r->txt) ? NULL : on_output,
		.output_ctx = &sc,
		.output_max = r->output_max,
	};
	if (!t->mod->executor_side) {
		pthread_mutex_lock(&target->lock);
		locked = 1;
		if (host_connect(r, target, target == h, &res) != 0) {
			if (json_is_true(json_object_get(res, "unreachable")))
				*unreachable = 1;
			goto out;
		}
		ctx.node = target->node;
	}
	rc = t->mod->run(&ctx, args, &res, &e);
	if (rc != 0) {
		json_decref(res);
		if (rc == VZ_ECONNECT || rc == VZ_EIO) {
			res = json_pack("{s:b,s:b,s:s}", "unreachable", 1, "changed", 0, "msg",
					no_log ? "the connection failed (details hidden by no_log)" : vz_err_msg(&e));
			*unreachable = 1;
			/* the session is unusable: reconnect next time */
			if (target->own_node) {
				vz_node_close(target->node);
				target->node = NULL;
			}
		} else {
			res = failed_result("%s%s", rc == VZ_ECANCELED ? "canceled" : no_log ? "module failed (details hidden "
					    "by no_log)" : vz_err_msg(&e), NULL);
		}
	}
	if (!res)
		res = failed_result("the module returned no result%s%s", NULL, NULL);
out:
	if (locked)
		pthread_mutex_unlock(&target->lock);
	stream_flush(&sc);
	for (size_t i = 0; i < nenv; i++)
		free(envv[i]);
	free(envv);
	free(chdir_s);
	json_decref(bu);
	json_decref(envj);
	json_decref(args);
	return res;
}

static void apply_facts(pb_host *h, const json_t *res)
{
	json_t *af = json_object_get(res, "ansible_facts");
	if (json_is_object(af))
		json_object_update(h->hfacts, af);
}

/* changed_when / failed_when on one result, with the registered name bound. */
static void post_conditions(hrun *hr, json_t *vars, json_t *res)
{
	runner *r = hr->r;
	const json_t *reg = json_object_get(hr->t->kw, "register");
	vz_err e = { 0 };
	int v;
	if (json_is_true(json_object_get(res, "unreachable")) || json_is_true(json_object_get(res, "skipped")))
		return;
	if (json_is_string(reg))
		json_object_set(vars, json_string_value(reg), res);
	const json_t *cw = json_object_get(hr->t->kw, "changed_when");
	if (cw) {
		if (vz_pb_cond(&v, cw, vars, &r->topts, NULL, &e) != 0) {
			json_object_set_new(res, "failed", json_true());
			json_object_set_new(res, "msg", json_sprintf("The conditional check '%s' failed. The error was: %s",
								     json_string_value(json_array_get(cw, 0)) ?: "",
								     vz_pb_errmsg(&e)));
			return;
		}
		json_object_set_new(res, "changed", json_boolean(v));
	}
	const json_t *fw = json_object_get(hr->t->kw, "failed_when");
	if (fw) {
		if (vz_pb_cond(&v, fw, vars, &r->topts, NULL, &e) != 0) {
			json_object_set_new(res, "failed", json_true());
			json_object_set_new(res, "msg", json_sprintf("The conditional check '%s' failed. The error was: %s",
								     json_string_value(json_array_get(fw, 0)) ?: "",
								     vz_pb_errmsg(&e)));
			return;
		}
		json_object_set_new(res, "failed_when_result", json_boolean(v));
		if (v)
			json_object_set_new(res, "failed", json_true());
		else
			json_object_del(res, "failed");
	}
}

static int sleep_ms_cancel(runner *r, int64_t ms)
{
	while (ms > 0) {
		if (r->o->cancel && *r->o->cancel)
			return 1;
		struct timespec ts = { 0, (ms > 100 ? 100 : ms) * 1000000L };
		nanosleep(&ts, NULL);
		ms -= 100;
	}
	return 0;
}

/* One item: module + retries/until + changed_when/failed_when. */
static json_t *run_item(hrun *hr, json_t *vars, int *unreachable)
{
	runner *r = hr->r;
	const json_t *until = json_object_get(hr->t->kw, "until");
	int64_t retries = 1, delay = 5;
	json_t *res = NULL;
	if (until) {
		json_t *rj = NULL, *dj = NULL;
		vz_err e = { 0 };
		retries = 3;
		if (json_object_get(hr->t->kw, "retries") &&
		    vz_pb_template(&rj, json_object_get(hr->t->kw, "retries"), vars, &r->topts, &e) == 0) {
			if (json_is_integer(rj))
				retries = json_integer_value(rj);
			else if (json_is_string(rj))
				vz_parse_i64(json_string_value(rj), 0, VZ_PB_MAX_RETRIES, &retries);
		}
		if (json_object_get(hr->t->kw, "delay") &&
		    vz_pb_template(&dj, json_object_get(hr->t->kw, "delay"), vars, &r->topts, &e) == 0) {
			if (json_is_integer(dj))
				delay = json_integer_value(dj);
			else if (json_is_string(dj))
				vz_parse_i64(json_string_value(dj), 0, 3600, &delay);
		}
		json_decref(rj);
		json_decref(dj);
		/* ansible-core 2.14 makes at most `retries` attempts (checked against it) */
		retries = retries <= 0 ? 1 : retries > VZ_PB_MAX_RETRIES ? VZ_PB_MAX_RETRIES : retries;
		if (delay < 0)
			delay = 0;
	}
	for (int64_t attempt = 1; attempt <= retries; attempt++) {
		json_decref(res);
		res = run_module(hr, vars, unreachable);
		if (*unreachable)
			break;
		post_conditions(hr, vars, res);
		if (!until)
			break;
		json_object_set_new(res, "attempts", json_integer(attempt));
		const json_t *reg = json_object_get(hr->t->kw, "register");
		if (json_is_string(reg))
			json_object_set(vars, json_string_value(reg), res);
		int ok = 0;
		vz_err e = { 0 };
		if (vz_pb_cond(&ok, until, vars, &r->topts, NULL, &e) != 0) {
			json_object_set_new(res, "failed", json_true());
			json_object_set_new(res, "msg", json_sprintf("The conditional check '%s' failed. The error was: %s",
								     json_string_value(json_array_get(until, 0)) ?: "",
								     vz_pb_errmsg(&e)));
			break;
		}
		if (ok) {
			json_object_del(res, "failed");
			break;
		}
		if (attempt == retries) {
			json_object_set_new(res, "failed", json_true());
			break;
		}
		if (r->deadline && vz_mono_ms() >= r->deadline)
			break;
		vz_pb_out_retry(r, hr->h->name, (int)(retries - attempt));
		if (sleep_ms_cancel(r, delay * 1000))
			break;
	}
	return res;
}

static json_t *skip_result(const char *cond)
{
	json_t *o = json_pack("{s:b,s:s,s:b}", "changed", 0, "skip_reason", "Conditional result was False", "skipped", 1);
	if (cond)
		json_object_set_new(o, "false_condition", json_string(cond));
	return o;
}

/* Items of a loop: a list (with_items flattened one level, with_dict as key/value items). */
static int loop_items(json_t **out, hrun *hr, json_t *vars, json_t **fail)
{
	runner *r = hr->r;
	const json_t *lv = json_object_get(hr->t->kw, "loop");
	const char *kind = json_string_value(json_object_get(hr->t->kw, "loop_kind"));
	json_t *v = NULL, *items = NULL;
	vz_err e = { 0 };

	*out = NULL;
	if (vz_pb_template(&v, lv, vars, &r->topts, &e) != 0) {
		*fail = failed_result("The task includes an option with an undefined variable. The error was: %s%s",
				      vz_pb_errmsg(&e), NULL);
		return -1;
	}
	if (kind && !strcmp(kind, "with_dict")) {
		if (!json_is_object(v)) {
			json_decref(v);
			*fail = failed_result("with_dict expects a dict%s%s", NULL, NULL);
			return -1;
		}
		items = json_array();
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
			json_array_append_new(items, json_pack("{s:s,s:O}", "key", k, "value", x));
	} else if (kind && !strcmp(kind, "with_items")) {
		items = json_array();
		if (json_is_array(v)) {
			for (size_t i = 0; i < json_array_size(v); i++) {
				json_t *x = json_array_get(v, i);
				if (json_is_array(x))
					json_array_extend(items, x);
				else
					json_array_append(items, x);
			}
		} else {
			json_array_append(items, v);
		}
	} else if (json_is_array(v)) {
		items = json_incref(v);
	} else {
		char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		*fail = failed_result("Invalid data passed to 'loop', it requires a list, got this instead: %s. Hint: If you "
				      "passed a list/dict of just one element, try adding wantlist=True to your lookup "
				      "invocation or use q/query instead of lookup.%s", d ? d : "?", NULL);
		free(d);
		json_decref(v);
		return -1;
	}
	json_decref(v);
	if (json_array_size(items) > VZ_PB_MAX_LOOP) {
		json_decref(items);
		*fail = failed_result("the loop has more than 10000 items%s%s", NULL, NULL);
		return -1;
	}
	*out = items;
	return 0;
}

static void host_task(hrun *hr)
{
	runner *r = hr->r;
	pb_task *t = hr->t;
	pb_host *h = hr->h;
	json_t *lazy = NULL, *vars = vz_pb_task_vars(r, t, h, &lazy), *res = NULL;
	const json_t *when = kw_get(r, t, "when");
	const json_t *loop = json_object_get(t->kw, "loop");
	int unreachable = 0;
	vz_err e = { 0 };
	int ok;

	/* when of enclosing blocks and of the task (per item for loops) */
	const char *which = NULL;
	json_t *outer_when = json_array();
	for (const pb_task *p = t->parent; p; p = p->parent) {
		json_t *w = json_object_get(p->kw, "when");
		if (w)
			json_array_extend(outer_when, w);
	}
	json_t *own_when = (json_t *)json_object_get(t->kw, "when");
	(void)when;
	if (!loop) {
		vz_pb_lazy(vars, lazy, &r->topts);
		if (vz_pb_cond(&ok, outer_when, vars, &r->topts, &which, &e) == 0 && ok)
			vz_pb_cond(&ok, own_when, vars, &r->topts, &which, &e);
		if (e.code) {
			res = failed_result("The conditional check '%s' failed. The error was: error while evaluating "
					    "conditional (%s)", which ? which : "?", vz_pb_errmsg(&e));
		} else if (!ok) {
			res = skip_result(which);
		} else {
			res = run_item(hr, vars, &unreachable);
		}
	} else {
		json_t *items = NULL, *results = json_array();
		json_t *lc = (json_t *)json_object_get(t->kw, "loop_control");
		const char *loop_var = json_string_value(json_object_get(lc, "loop_var"));
		const char *index_var = json_string_value(json_object_get(lc, "index_var"));
		const json_t *label = json_object_get(lc, "label");
		int any_changed = 0, any_failed = 0, all_skipped = 1;
		if (!loop_var)
			loop_var = "item";
		json_t *base = json_copy(vars);
		vz_pb_lazy(base, lazy, &r->topts);
		if (vz_pb_cond(&ok, outer_when, base, &r->topts, &which, &e) == 0 && !ok) {
			res = skip_result(which);
			json_decref(base);
			json_decref(results);
			goto done;
		}
		if (loop_items(&items, hr, base, &res) != 0) {
			json_decref(base);
			json_decref(results);
			goto done;
		}
		json_decref(base);
		for (size_t i = 0; i < json_array_size(items) && !unreachable; i++) {
			json_t *item = json_array_get(items, i), *iv = json_copy(vars), *ir = NULL;
			json_object_set(iv, loop_var, item);
			json_object_set_new(iv, "ansible_loop_var", json_string(loop_var));
			if (index_var)
				json_object_set_new(iv, index_var, json_integer((json_int_t)i));
			json_t *al = NULL;
			if (json_is_true(json_object_get(lc, "extended"))) {
				json_int_t len = (json_int_t)json_array_size(items);
				al = json_pack("{s:O,s:I,s:I,s:b,s:b,s:I,s:I,s:I}", "allitems", items, "index", (json_int_t)i + 1,
					       "index0", (json_int_t)i, "first", i == 0, "last", (json_int_t)i + 1 == len, "length",
					       len, "revindex", len - (json_int_t)i, "revindex0", len - (json_int_t)i - 1);
				if (i > 0)
					json_object_set(al, "previtem", json_array_get(items, i - 1));
				if ((json_int_t)i + 1 < len)
					json_object_set(al, "nextitem", json_array_get(items, i + 1));
				json_object_set(iv, "ansible_loop", al);
			}
			vz_pb_lazy(iv, lazy, &r->topts);
			vz_err ie = { 0 };
			which = NULL;
			if (vz_pb_cond(&ok, own_when, iv, &r->topts, &which, &ie) != 0)
				ir = failed_result("The conditional check '%s' failed. The error was: error while evaluating "
						   "conditional (%s)", which ? which : "?", vz_pb_errmsg(&ie));
			else if (!ok)
				ir = skip_result(which);
			else
				ir = run_item(hr, iv, &unreachable);
			json_object_set(ir, loop_var, item);
			json_object_set_new(ir, "ansible_loop_var", json_string(loop_var));
			if (index_var)
				json_object_set_new(ir, index_var, json_integer((json_int_t)i));
			if (al)
				json_object_set_new(ir, "ansible_loop", al);
			json_t *lab = NULL;
			if (label)
				vz_pb_template(&lab, label, iv, &r->topts, &ie);
			json_object_set_new(ir, "_ansible_item_label", lab ? lab : json_incref(item));
			if (!json_is_true(json_object_get(ir, "skipped")))
				all_skipped = 0;
			if (json_is_true(json_object_get(ir, "changed")))
				any_changed = 1;
			if (json_is_true(json_object_get(ir, "failed")))
				any_failed = 1;
			if (!json_is_true(json_object_get(ir, "failed")) && !json_is_true(json_object_get(ir, "skipped"))) {
				/* set_fact in a loop: the next item sees what this one set */
				apply_facts(h, ir);
				json_t *af = json_object_get(ir, "ansible_facts");
				if (json_is_object(af))
					json_object_update(vars, af);
			}
			json_array_append_new(results, ir);
			json_decref(iv);
			if (r->o->cancel && *r->o->cancel)
				break;
		}
		res = json_object();
		json_object_set_new(res, "changed", json_boolean(any_changed));
		json_object_set_new(res, "results", results);
		if (unreachable) {
			json_object_set_new(res, "unreachable", json_true());
			json_object_set_new(res, "msg", json_incref(json_object_get(json_array_get(results,
				json_array_size(results) - 1), "msg")));
		} else if (any_failed) {
			json_object_set_new(res, "failed", json_true());
			json_object_set_new(res, "msg", json_string("One or more items failed"));
		} else if (json_array_size(items) == 0) {
			json_object_set_new(res, "skipped", json_true());
			json_object_set_new(res, "skipped_reason", json_string("No items in the list"));
		} else if (all_skipped) {
			json_object_set_new(res, "skipped", json_true());
			json_object_set_new(res, "msg", json_string("All items skipped"));
		} else {
			json_object_set_new(res, "msg", json_string("All items completed"));
		}
		json_decref(items);
	}
done:
	if (json_is_true(json_object_get(res, "unreachable")))
		unreachable = 1;
	hr->unreachable = unreachable;
	hr->skipped = json_is_true(json_object_get(res, "skipped"));
	hr->failed = !unreachable && json_is_true(json_object_get(res, "failed"));
	hr->changed = json_is_true(json_object_get(res, "changed"));
	if (hr->failed && kw_bool(r, t, "ignore_errors", vars))
		hr->ignored = 1;
	if (unreachable && kw_bool(r, t, "ignore_unreachable", vars))
		hr->ignored = 1;
	if (!loop && !hr->failed && !hr->skipped && !unreachable)
		apply_facts(h, res);
	const json_t *reg = json_object_get(t->kw, "register");
	if (json_is_string(reg) && !unreachable) {
		json_t *copy = json_deep_copy(res);
		if (!json_object_get(copy, "failed"))
			json_object_set_new(copy, "failed", json_false());
		json_object_del(copy, "ansible_facts");
		const char *k;
		void *tmp;
		json_t *x;
		json_object_foreach_safe(copy, tmp, k, x)
			if (!strncmp(k, "_ansible", 8))
				json_object_del(copy, k);
		json_object_set_new(h->hfacts, json_string_value(reg), copy);
	}
	hr->result = res;
	json_decref(outer_when);
	json_decref(vars);
	json_decref(lazy);
}

static void *host_thread(void *arg)
{
	host_task(arg);
	return NULL;
}

/* ---- running a task on hosts ---- */

static void hostvars_refresh(runner *r)
{
	json_decref(r->hostvars);
	r->hostvars = json_object();
	for (size_t i = 0; i < r->nhosts; i++) {
		pb_host *h = r->hosts[i];
		json_t *hv = json_copy(h->inv_vars);
		json_object_update(hv, h->facts);
		json_object_del(hv, "__ansible_facts");
		json_object_update(hv, h->hfacts);
		json_object_set_new(hv, "inventory_hostname", json_string(h->name));
		json_object_set_new(r->hostvars, h->name, hv);
	}
}

/* Runs hr[0..n) in parallel (at most forks at a time). */
static void run_parallel(runner *r, hrun *hr, size_t n)
{
	size_t forks = r->o->forks > 0 ? (size_t)r->o->forks : 16;
	if (n == 1) {
		host_task(&hr[0]);
		return;
	}
	pthread_t *th = calloc(n, sizeof(*th));
	int *started = calloc(n, sizeof(*started));
	for (size_t base = 0; base < n; base += forks) {
		size_t end = base + forks < n ? base + forks : n;
		for (size_t i = base; i < end; i++)
			started[i] = th && started && pthread_create(&th[i], NULL, host_thread, &hr[i]) == 0;
		for (size_t i = base; i < end; i++) {
			if (started && started[i])
				pthread_join(th[i], NULL);
			else
				host_task(&hr[i]);
		}
	}
	free(th);
	free(started);
}

static char *task_display_name(runner *r, const pb_task *t, pb_host *first)
{
	const json_t *nj = json_object_get(t->kw, "name");
	char *name = NULL;
	if (json_is_string(nj)) {
		const char *s = json_string_value(nj);
		if (strstr(s, "{{") && first) {
			json_t *lazy = NULL, *vars = vz_pb_task_vars(r, t, first, &lazy);
			vz_err e = { 0 };
			vz_pb_lazy(vars, lazy, &r->topts);
			if (vz_template_render(&name, s, strlen(s), vars, &r->topts, &e) != 0)
				name = NULL;
			json_decref(vars);
			json_decref(lazy);
		}
		if (!name)
			name = strdup(s);
	} else {
		name = strdup(t->action ? t->action : "");
	}
	pb_role *role = task_role(t);
	if (role && name) {
		vz_buf b = VZ_BUF_INIT(1u << 16);
		vz_buf_printf(&b, "%s : %s", role->name, name);
		free(name);
		name = vz_buf_detach(&b);
	}
	return name;
}

static void stats_add(pb_host *h, const hrun *hr)
{
	if (hr->unreachable && !hr->ignored) {
		h->st.unreachable++;
		return;
	}
	if (hr->skipped) {
		h->st.skipped++;
		return;
	}
	if (hr->failed && !hr->ignored) {
		h->st.failures++;
		return;
	}
	h->st.ok++;
	if (hr->changed)
		h->st.changed++;
	if ((hr->failed || hr->unreachable) && hr->ignored)
		h->st.ignored++;
}

static int host_active(const pb_host *h)
{
	return !h->failed && !h->unreachable && !h->ended;
}

static void check_deadline(runner *r)
{
	if (r->deadline && !r->timed_out && vz_mono_ms() >= r->deadline) {
		r->timed_out = 1;
		for (size_t i = 0; i < r->nhosts; i++)
			if (host_active(r->hosts[i]))
				r->hosts[i]->ended = 1;
		vz_pb_out_msg(r, "vinz: the playbook's timeout passed; stopping");
	}
}

static int stopped(runner *r)
{
	return (r->o->cancel && *r->o->cancel) || r->timed_out || r->end_play || r->fatal.code;
}

static int handler_matches(const pb_task *hd, const json_t *notified);

static int handler_exists(runner *r, const char *name)
{
	json_t *one = json_pack("{s:b}", name, 1);
	int found = 0;
	for (size_t i = 0; r->play && i < r->play->handlers.n && !found; i++)
		found = handler_matches(r->play->handlers.v[i], one);
	json_decref(one);
	return found;
}

static void run_list(runner *r, pb_list *l, pb_host **hs, size_t n);

static void run_mod_task(runner *r, pb_task *t, pb_host **hs, size_t n)
{
	hrun *hr = calloc(n, sizeof(*hr));
	size_t m = 0;
	if (!hr)
		return;
	for (size_t i = 0; i < n; i++)
		if (host_active(hs[i]))
			hr[m++] = (hrun){ .r = r, .t = t, .h = hs[i] };
	if (!m) {
		free(hr);
		return;
	}
	int run_once = kw_bool(r, t, "run_once", NULL);
	size_t nrun = run_once ? 1 : m;
	char *name = task_display_name(r, t, hr[0].h);
	hostvars_refresh(r);
	vz_pb_out_task_start(r, t, name);
	run_parallel(r, hr, nrun);
	if (run_once) {
		/* the one result stands for every host, as in Ansible */
		const json_t *reg = json_object_get(t->kw, "register");
		for (size_t i = 1; i < m; i++) {
			if (json_is_string(reg) && json_object_get(hr[0].h->hfacts, json_string_value(reg)))
				json_object_set(hr[i].h->hfacts, json_string_value(reg),
						json_object_get(hr[0].h->hfacts, json_string_value(reg)));
			if (!hr[0].failed && !hr[0].skipped)
				apply_facts(hr[i].h, hr[0].result);
		}
	}
	int no_log = kw_bool(r, t, "no_log", NULL);
	for (size_t i = 0; i < nrun; i++) {
		vz_pb_out_result(r, t, hr[i].h->name, hr[i].delegate_name, hr[i].result, hr[i].failed, hr[i].skipped,
				 hr[i].unreachable, hr[i].ignored, no_log);
		stats_add(hr[i].h, &hr[i]);
	}
	for (size_t i = 0; i < m; i++) {
		hrun *x = &hr[run_once ? 0 : i];
		pb_host *h = hr[i].h;
		if (x->unreachable && !x->ignored)
			h->unreachable = 1;
		else if (x->failed && !x->ignored)
			h->failed = 1;
		const json_t *notify = json_object_get(t->kw, "notify");
		if (x->changed && !x->failed && notify) {
			for (size_t k = 0; k < json_array_size(notify); k++) {
				const char *hn = json_string_value(json_array_get(notify, k));
				if (!hn)
					continue;
				if (!handler_exists(r, hn) && !r->fatal.code) {
					/* as ansible-core 2.14: the whole run stops with an error (exit 1) */
					vz_err_set(&r->fatal, VZ_EINVAL, "%s:%d: The requested handler '%s' was not found in either "
						   "the main handlers list nor in the listening handlers list", t->file, t->line, hn);
					continue;
				}
				json_object_set_new(h->notified, hn, json_true());
			}
		}
	}
	vz_pb_out_task_end(r);
	for (size_t i = 0; i < m; i++) {
		json_decref(hr[i].result);
		free(hr[i].delegate_name);
	}
	free(name);
	free(hr);
	check_deadline(r);
}

static void run_handlers(runner *r, pb_host **hs, size_t n);

/* The file an include_tasks names: relative to the including file, then the role's tasks/,
 * then the playbook's dir; must exist and, for an untrusted playbook, stay inside. */
static int include_path(runner *r, const pb_task *t, const json_t *args, char **out, vz_err *e)
{
	const char *rel = json_string_value(json_object_get(args, "file"));
	char *path = NULL, *fdir = NULL;
	int rc = 0;
	*out = NULL;
	if (!rel)
		rel = json_string_value(json_object_get(args, "_raw_params"));
	if (rel && rel[0] != '/') {
		const char *sl = strrchr(t->file, '/');
		fdir = sl ? strndup(t->file, (size_t)(sl - t->file)) : strdup(".");
		path = vz_pb_resolve(fdir, rel);
		if (path && access(path, R_OK) != 0 && task_role(t)) {
			free(path);
			char *td = vz_path_join(task_role(t)->dir, "tasks");
			path = vz_pb_resolve(td, rel);
			free(td);
		}
		if (path && access(path, R_OK) != 0) {
			free(path);
			path = vz_pb_resolve(r->pb->dir, rel);
		}
	} else if (rel) {
		path = strdup(rel);
	}
	if (!path || access(path, R_OK) != 0)
		rc = vz_err_set(e, VZ_ENOTFOUND, "Could not find or access '%s'", rel ? rel : "?");
	else if (r->o->untrusted && !path_confined(r, path))
		rc = vz_err_set(e, VZ_EINVAL, "include_tasks: '%s' is outside the playbook's project; refused for an "
				"untrusted playbook", rel);
	if (rc == 0) {
		*out = path;
		path = NULL;
	}
	free(path);
	free(fdir);
	return rc;
}

/* include_tasks / include_role: evaluated per host, then the included tasks run on the hosts
 * that included the same thing (per loop item). */
static void run_include(runner *r, pb_task *t, pb_host **hs, size_t n)
{
	typedef struct incl {
		char *key;
		json_t *item;
		int has_item;
		pb_host **hosts;
		size_t nh;
		json_t *args;
	} incl;
	size_t ninc = 0, cap = 16;
	incl *inc = calloc(cap, sizeof(*inc));
	int is_role = t->kind == PB_INCLUDE_ROLE;
	char *name = NULL;
	if (is_role && !json_object_get(t->kw, "name")) {
		vz_buf nb = VZ_BUF_INIT(4096);
		vz_buf_printf(&nb, "include_role : %s", json_string_value(json_object_get(t->args, "name")) ?: "");
		name = vz_buf_detach(&nb);
		vz_buf_free(&nb);
	} else {
		name = task_display_name(r, t, n ? hs[0] : NULL);
	}
	int started = 0;
	hostvars_refresh(r);
	for (size_t i = 0; i < n && inc; i++) {
		pb_host *h = hs[i];
		if (!host_active(h))
			continue;
		if (!started) {
			vz_pb_out_task_start(r, t, name);
			started = 1;
		}
		json_t *lazy = NULL, *vars = vz_pb_task_vars(r, t, h, &lazy), *items = NULL, *res = NULL;
		hrun hr = { .r = r, .t = t, .h = h };
		int ok = 1, file_error = 0;
		const char *which = NULL;
		vz_err e = { 0 };
		vz_pb_lazy(vars, lazy, &r->topts);
		json_t *conds = json_array();
		for (const pb_task *p = t; p; p = p->parent)
			if (json_object_get(p->kw, "when"))
				json_array_extend(conds, json_object_get(p->kw, "when"));
		if (vz_pb_cond(&ok, conds, vars, &r->topts, &which, &e) != 0)
			res = failed_result("The conditional check '%s' failed. The error was: %s", which ? which : "?",
					    vz_pb_errmsg(&e));
		else if (!ok)
			res = skip_result(which);
		else if (json_object_get(t->kw, "loop")) {
			if (loop_items(&items, &hr, vars, &res) == 0)
				res = NULL;
		} else {
			items = NULL;
		}
		json_decref(conds);
		size_t nitems = items ? json_array_size(items) : 1;
		json_t *results = items ? json_array() : NULL;
		for (size_t k = 0; !res && k < nitems; k++) {
			json_t *iv = json_copy(vars), *args = NULL;
			const char *lv = json_string_value(json_object_get(json_object_get(t->kw, "loop_control"), "loop_var"));
			if (!lv)
				lv = "item";
			if (items)
				json_object_set(iv, lv, json_array_get(items, k));
			if (vz_pb_template(&args, t->args, iv, &r->topts, &e) != 0) {
				res = failed_result("The task includes an option with an undefined variable. The error was: %s%s",
						    vz_pb_errmsg(&e), NULL);
				json_decref(iv);
				break;
			}
			const char *target = json_string_value(json_object_get(args, is_role ? "name" : "file"));
			if (!target)
				target = json_string_value(json_object_get(args, "_raw_params"));
			if (!is_role) {
				/* a missing or refused file fails this include task on this host */
				char *ip = NULL;
				if (include_path(r, t, args, &ip, &e) != 0) {
					res = failed_result("%s%s", vz_err_msg(&e), NULL);
					file_error = 1;
					json_decref(args);
					json_decref(iv);
					break;
				}
				free(ip);
			}
			char keybuf[PATH_MAX + 64];
			snprintf(keybuf, sizeof(keybuf), "%s#%zu", target ? target : "", items ? k : 0);
			size_t j;
			for (j = 0; j < ninc; j++)
				if (!strcmp(inc[j].key, keybuf))
					break;
			if (j == ninc && ninc == cap) {
				incl *ni = realloc(inc, cap * 2 * sizeof(*inc));
				if (ni) {
					memset(ni + cap, 0, cap * sizeof(*inc));
					inc = ni;
					cap *= 2;
				}
			}
			if (j == ninc && ninc < cap) {
				inc[j].key = strdup(keybuf);
				inc[j].hosts = calloc(n, sizeof(pb_host *));
				inc[j].args = json_incref(args);
				if (items) {
					inc[j].item = json_incref(json_array_get(items, k));
					inc[j].has_item = 1;
				}
				ninc++;
			}
			if (j < ninc)
				inc[j].hosts[inc[j].nh++] = h;
			if (results)
				json_array_append_new(results, json_pack("{s:O,s:s,s:O,s:s,s:O}", lv, json_array_get(items, k),
					"ansible_loop_var", lv, "_ansible_item_label", json_array_get(items, k),
					is_role ? "include_role" : "include", target ? target : "", "include_args", r->empty));
			json_decref(args);
			json_decref(iv);
		}
		if (!res) {
			if (results)
				res = json_pack("{s:b,s:s,s:o}", "changed", 0, "msg", "All items completed", "results", results);
			else if (is_role)
				res = json_pack("{s:b,s:{s:s}}", "changed", 0, "include_args", "name",
						json_string_value(json_object_get(t->args, "name")) ?: "");
			else
				res = json_pack("{s:b,s:s,s:O}", "changed", 0, "include", inc && ninc ? inc[ninc - 1].key : "",
						"include_args", r->empty);
			if (!results && !is_role && ninc) { /* the key has "#0" appended: show the file only */
				char *hash = strrchr((char *)json_string_value(json_object_get(res, "include")), '#');
				if (hash)
					json_object_set_new(res, "include", json_stringn(json_string_value(json_object_get(res,
						"include")), (size_t)(hash - json_string_value(json_object_get(res, "include")))));
			}
			results = NULL;
		}
		json_decref(results);
		hr.failed = json_is_true(json_object_get(res, "failed"));
		hr.skipped = json_is_true(json_object_get(res, "skipped"));
		/* as ansible-core 2.14: a file that cannot be included fails the host whatever
		 * ignore_errors says */
		if (hr.failed && !file_error && kw_bool(r, t, "ignore_errors", vars))
			hr.ignored = 1;
		vz_pb_out_result(r, t, h->name, NULL, res, hr.failed, hr.skipped, 0, hr.ignored, 0);
		/* as ansible-core 2.14 counts them: include_tasks is ok once per file included (per loop
		 * item), include_role not at all unless it fails or is skipped */
		if (hr.failed || hr.skipped)
			stats_add(h, &hr);
		else if (!is_role)
			for (size_t k = 0; k < nitems; k++)
				stats_add(h, &hr);
		if (hr.failed && !hr.ignored)
			h->failed = 1;
		json_decref(res);
		json_decref(items);
		json_decref(vars);
		json_decref(lazy);
	}
	if (started)
		vz_pb_out_task_end(r);
	free(name);
	/* run each distinct include on its hosts */
	for (size_t j = 0; j < ninc; j++) {
		vz_err e = { 0 };
		pb_task *blk = calloc(1, sizeof(*blk));
		int rc = 0;
		if (!blk)
			break;
		blk->kind = PB_BLOCK;
		blk->file = t->file;
		blk->line = t->line;
		blk->parent = t;
		blk->kw = json_object();
		const char *lv = json_string_value(json_object_get(json_object_get(t->kw, "loop_control"), "loop_var"));
		if (inc[j].has_item)
			json_object_set_new(blk->kw, "vars", json_pack("{s:O}", lv ? lv : "item", inc[j].item));
		vz_pb_list_add(&r->dyn, blk);
		if (vz_pb_depth(t) > VZ_PB_MAX_INCLUDE_DEPTH * 4) {
			rc = vz_err_set(&e, VZ_EINVAL, "%s:%d: includes nested deeper than %d (an include loop?)", t->file,
					t->line, VZ_PB_MAX_INCLUDE_DEPTH);
		} else if (is_role) {
			pb_task *rb = NULL;
			json_t *params = json_object_get(inc[j].args, "vars");
			rc = vz_pb_load_role(r->pb, &rb, json_string_value(json_object_get(inc[j].args, "name")),
					     json_string_value(json_object_get(inc[j].args, "tasks_from")), params, t->file, blk,
					     vz_pb_depth(t), &r->play->handlers, &e);
			if (rc == 0 && rb)
				vz_pb_list_add(&blk->block, rb);
		} else {
			char *path = NULL;
			if ((rc = include_path(r, t, inc[j].args, &path, &e)) == 0)
				rc = vz_pb_load_tasks_file(r->pb, &blk->block, path, task_role(t), blk, vz_pb_depth(t), 0, &e);
			free(path);
		}
		if (rc) {
			/* Ansible reports a failed include as a failed task on those hosts */
			vz_pb_out_task_start(r, t, t->action);
			json_t *res = failed_result("%s%s", vz_err_msg(&e), NULL);
			for (size_t k = 0; k < inc[j].nh; k++) {
				hrun hr = { .r = r, .t = t, .h = inc[j].hosts[k], .failed = 1 };
				vz_pb_out_result(r, t, inc[j].hosts[k]->name, NULL, res, 1, 0, 0, 0, 0);
				stats_add(inc[j].hosts[k], &hr);
				inc[j].hosts[k]->failed = 1;
			}
			json_decref(res);
			vz_pb_out_task_end(r);
			continue;
		}
		run_list(r, &blk->block, inc[j].hosts, inc[j].nh);
	}
	for (size_t j = 0; j < ninc; j++) {
		free(inc[j].key);
		free(inc[j].hosts);
		json_decref(inc[j].item);
		json_decref(inc[j].args);
	}
	free(inc);
}

static void run_block(runner *r, pb_task *t, pb_host **hs, size_t n)
{
	pb_host **in = calloc(n + 1, sizeof(*in)), **failed = calloc(n + 1, sizeof(*failed));
	size_t nin = 0, nf = 0;
	if (!in || !failed)
		goto out;
	/* a block's own when is checked per host here (and again by its tasks, harmlessly) */
	for (size_t i = 0; i < n; i++)
		if (host_active(hs[i]))
			in[nin++] = hs[i];
	if (!nin)
		goto out;
	run_list(r, &t->block, in, nin);
	if (t->rescue.n) {
		for (size_t i = 0; i < nin; i++)
			if (in[i]->failed && !in[i]->unreachable) {
				in[i]->failed = 0;
				in[i]->st.failures--;
				in[i]->in_rescue++;
				failed[nf++] = in[i];
			}
		if (nf && !stopped(r)) {
			/* Ansible counts a host as rescued when its rescue starts */
			for (size_t i = 0; i < nf; i++)
				failed[i]->st.rescued++;
			run_list(r, &t->rescue, failed, nf);
			for (size_t i = 0; i < nf; i++)
				failed[i]->in_rescue--;
		} else {
			for (size_t i = 0; i < nf; i++) {
				failed[i]->in_rescue--;
				failed[i]->failed = 1;
				failed[i]->st.failures++;
			}
		}
	}
	if (t->always.n && !(r->o->cancel && *r->o->cancel)) {
		int *was = calloc(nin, sizeof(int));
		for (size_t i = 0; was && i < nin; i++) {
			was[i] = in[i]->failed;
			in[i]->failed = 0;
		}
		run_list(r, &t->always, in, nin);
		for (size_t i = 0; was && i < nin; i++)
			if (was[i])
				in[i]->failed = 1;
		free(was);
	}
out:
	free(in);
	free(failed);
}

static void run_meta(runner *r, pb_task *t, pb_host **hs, size_t n)
{
	/* ansible-core 2.14's json callback shows an explicit meta task once per host, with a result
	 * only for a skipped end_host */
	for (size_t i = 0; i < n; i++) {
		if (!host_active(hs[i]))
			continue;
		vz_pb_out_task_start(r, t, "meta");
		if (!strcmp(t->action, "end_host")) {
			json_t *lazy = NULL, *vars = vz_pb_task_vars(r, t, hs[i], &lazy);
			int ok = 1;
			vz_err e = { 0 };
			vz_pb_lazy(vars, lazy, &r->topts);
			vz_pb_cond(&ok, json_object_get(t->kw, "when"), vars, &r->topts, NULL, &e);
			if (!ok || e.code) {
				char msg[600];
				snprintf(msg, sizeof(msg), "end_host conditional evaluated to False, continuing execution for %s",
					 hs[i]->name);
				json_t *res = json_pack("{s:s,s:s,s:b}", "msg", msg, "skip_reason", msg, "skipped", 1);
				vz_pb_out_result(r, t, hs[i]->name, NULL, res, 0, 1, 0, 0, 0);
				json_decref(res);
			}
			json_decref(vars);
			json_decref(lazy);
		}
		vz_pb_out_task_end(r);
	}
	if (!strcmp(t->action, "flush_handlers")) {
		run_handlers(r, hs, n);
	} else if (!strcmp(t->action, "end_play")) {
		r->end_play = 1;
	} else if (!strcmp(t->action, "end_host")) {
		for (size_t i = 0; i < n; i++) {
			if (!host_active(hs[i]))
				continue;
			json_t *lazy = NULL, *vars = vz_pb_task_vars(r, t, hs[i], &lazy);
			int ok = 1;
			vz_err e = { 0 };
			vz_pb_lazy(vars, lazy, &r->topts);
			vz_pb_cond(&ok, json_object_get(t->kw, "when"), vars, &r->topts, NULL, &e);
			if (ok && !e.code)
				hs[i]->ended = 1;
			json_decref(vars);
			json_decref(lazy);
		}
	}
}

/* Adds the tags of one `tags:` value (a list, or text with commas) to set. */
static void add_tags(json_t *set, const json_t *v)
{
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			add_tags(set, json_array_get(v, i));
	} else if (json_is_string(v)) {
		char *copy = strdup(json_string_value(v)), *save = NULL;
		for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
			while (*t == ' ')
				t++;
			size_t l = strlen(t);
			while (l && t[l - 1] == ' ')
				t[--l] = 0;
			if (*t)
				json_object_set_new(set, t, json_true());
		}
		free(copy);
	} else if (json_is_integer(v)) {
		char num[32];
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		json_object_set_new(set, num, json_true());
	}
}

static int in_opt_list(const char *const *l, const char *s)
{
	for (size_t i = 0; l && l[i]; i++)
		if (!strcmp(l[i], s))
			return 1;
	return 0;
}

/* Ansible's tag selection: a task's tags are its own, its blocks', imports' and roles' (not
 * those of a dynamic include above it) and the play's. `never` tasks run only when asked for. */
static int task_selected(runner *r, const pb_task *t)
{
	json_t *set = json_object();
	int sel = 1;
	for (const pb_task *p = t; p; p = p->parent) {
		if (p != t && (p->kind == PB_INCLUDE_TASKS || p->kind == PB_INCLUDE_ROLE))
			break;
		add_tags(set, json_object_get(p->kw, "tags"));
	}
	add_tags(set, json_object_get(r->play->kw, "tags"));
	const char *k;
	json_t *x;
	if (r->o->skip_tags)
		json_object_foreach(set, k, x)
			if (in_opt_list(r->o->skip_tags, k) || (in_opt_list(r->o->skip_tags, "tagged")))
				sel = 0;
	if (r->o->skip_tags && !json_object_size(set) && in_opt_list(r->o->skip_tags, "untagged"))
		sel = 0;
	if (sel && r->o->tags && r->o->tags[0] && !in_opt_list(r->o->tags, "all")) {
		int any = json_object_get(set, "always") != NULL;
		json_object_foreach(set, k, x)
			if (in_opt_list(r->o->tags, k) || in_opt_list(r->o->tags, "tagged"))
				any = 1;
		if (!json_object_size(set) && in_opt_list(r->o->tags, "untagged"))
			any = 1;
		sel = any;
	}
	if (sel && json_object_get(set, "never") && !in_opt_list(r->o->tags, "never")) {
		/* only a tag given explicitly runs a never task */
		int asked = 0;
		json_object_foreach(set, k, x)
			if (strcmp(k, "never") && in_opt_list(r->o->tags, k))
				asked = 1;
		sel = asked;
	}
	json_decref(set);
	return sel;
}

static void run_list(runner *r, pb_list *l, pb_host **hs, size_t n)
{
	for (size_t i = 0; i < l->n && !stopped(r); i++) {
		pb_task *t = l->v[i];
		if (t->kind != PB_BLOCK && !t->is_handler && !task_selected(r, t))
			continue;
		size_t act = 0;
		for (size_t k = 0; k < n; k++)
			act += host_active(hs[k]);
		if (!act)
			break;
		switch (t->kind) {
		case PB_MOD: run_mod_task(r, t, hs, n); break;
		case PB_BLOCK: run_block(r, t, hs, n); break;
		case PB_INCLUDE_TASKS:
		case PB_INCLUDE_ROLE: run_include(r, t, hs, n); break;
		case PB_META: run_meta(r, t, hs, n); break;
		}
	}
}

static int handler_matches(const pb_task *hd, const json_t *notified)
{
	const char *name = json_string_value(json_object_get(hd->kw, "name"));
	if (name && json_object_get(notified, name))
		return 1;
	if (name && hd->role) {
		char full[512];
		snprintf(full, sizeof(full), "%s : %s", hd->role->name, name);
		if (json_object_get(notified, full))
			return 1;
	}
	const json_t *listen = json_object_get(hd->kw, "listen");
	for (size_t i = 0; i < json_array_size(listen); i++)
		if (json_is_string(json_array_get(listen, i)) &&
		    json_object_get(notified, json_string_value(json_array_get(listen, i))))
			return 1;
	return 0;
}

static void run_handlers(runner *r, pb_host **hs, size_t n)
{
	pb_host **sel = calloc(n + 1, sizeof(*sel));
	if (!sel)
		return;
	for (size_t i = 0; i < r->play->handlers.n && !stopped(r); i++) {
		pb_task *hd = r->play->handlers.v[i];
		size_t ns = 0;
		for (size_t k = 0; k < n; k++)
			if (host_active(hs[k]) && handler_matches(hd, hs[k]->notified))
				sel[ns++] = hs[k];
		if (!ns)
			continue;
		pb_list one = { &hd, 1, 1 };
		run_list(r, &one, sel, ns);
	}
	for (size_t k = 0; k < n; k++)
		json_object_clear(hs[k]->notified);
	free(sel);
}

/* ---- facts ---- */

static const char facts_cmd[] =
	"echo \"H=$(hostname 2>/dev/null || uname -n)\"; echo \"A=$(uname -m)\"; echo \"S=$(uname -s)\"; "
	"echo \"K=$(uname -r)\"; echo \"U=$(id -un 2>/dev/null)\"; echo \"D=$HOME\"; "
	"if [ -r /etc/os-release ]; then sed 's/^/O_/' /etc/os-release; fi; echo '--env--'; env";

static json_t *os_field(const char *out, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\nO_%s=", key);
	const char *p = strstr(out, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	const char *e = strchr(p, '\n');
	size_t l = e ? (size_t)(e - p) : strlen(p);
	if (l >= 2 && (p[0] == '"' || p[0] == '\'') && p[l - 1] == p[0]) {
		p++;
		l -= 2;
	}
	return json_stringn(p, l);
}

static json_t *line_field(const char *out, const char *key)
{
	char pat[16];
	snprintf(pat, sizeof(pat), "%s=", key);
	for (const char *p = out; p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (!strncmp(p, pat, strlen(pat))) {
			p += strlen(pat);
			const char *e = strchr(p, '\n');
			return json_stringn(p, e ? (size_t)(e - p) : strlen(p));
		}
	}
	return json_string("");
}

typedef struct facts_ctx {
	vz_buf out;
} facts_ctx;

static int facts_out(void *ctx, int stream, const char *data, size_t len)
{
	facts_ctx *f = ctx;
	if (stream == VZ_NODE_STDOUT)
		vz_buf_add_capped(&f->out, data, len);
	return 0;
}

static void gather_one(hrun *hr)
{
	runner *r = hr->r;
	pb_host *h = hr->h;
	json_t *res = NULL;
	facts_ctx fc = { VZ_BUF_INIT(1u << 20) };
	vz_err e = { 0 };
	vz_node_result nr;

	pthread_mutex_lock(&h->lock);
	if (host_connect(r, h, 1, &res) != 0) {
		pthread_mutex_unlock(&h->lock);
		hr->unreachable = json_is_true(json_object_get(res, "unreachable"));
		hr->failed = !hr->unreachable;
		hr->result = res;
		return;
	}
	vz_node_cmd cmd = { .command = facts_cmd, .on_output = facts_out, .ctx = &fc, .timeout_ms = 60000,
			    .cancel = r->o->cancel };
	int rc = vz_node_exec(h->node, &cmd, &nr, &e);
	pthread_mutex_unlock(&h->lock);
	if (rc == VZ_ECONNECT || rc == VZ_EIO) {
		hr->unreachable = 1;
		hr->result = json_pack("{s:b,s:b,s:s}", "unreachable", 1, "changed", 0, "msg", vz_err_msg(&e));
		goto out;
	}
	if (rc) {
		hr->failed = 1;
		hr->result = failed_result("gathering facts failed: %s%s", vz_err_msg(&e), NULL);
		goto out;
	}
	const char *o = vz_buf_cstr(&fc.out);
	json_t *f = json_object();
	json_t *hn = line_field(o, "H");
	char shortn[256];
	vz_strlcpy(shortn, json_string_value(hn), sizeof(shortn));
	char *dot = strchr(shortn, '.');
	if (dot)
		*dot = 0;
	json_object_set_new(f, "hostname", json_string(shortn));
	json_object_set_new(f, "nodename", hn);
	json_object_set_new(f, "architecture", line_field(o, "A"));
	json_object_set_new(f, "system", line_field(o, "S"));
	json_object_set_new(f, "kernel", line_field(o, "K"));
	json_object_set_new(f, "user_id", line_field(o, "U"));
	json_object_set_new(f, "user_dir", line_field(o, "D"));
	json_t *id = os_field(o, "ID"), *ver = os_field(o, "VERSION_ID"), *code = os_field(o, "VERSION_CODENAME");
	static const struct { const char *id, *dist, *family; } dists[] = {
		{ "debian", "Debian", "Debian" }, { "ubuntu", "Ubuntu", "Debian" }, { "centos", "CentOS", "RedHat" },
		{ "rhel", "RedHat", "RedHat" },   { "fedora", "Fedora", "RedHat" }, { "rocky", "Rocky", "RedHat" },
		{ "almalinux", "AlmaLinux", "RedHat" }, { "alpine", "Alpine", "Alpine" },
		{ "arch", "Archlinux", "Archlinux" }, { "opensuse-leap", "openSUSE Leap", "Suse" },
		{ "gentoo", "Gentoo", "Gentoo" },
	};
	const char *dist = "NA", *fam = "NA";
	for (size_t i = 0; id && i < sizeof(dists) / sizeof(dists[0]); i++)
		if (!strcmp(json_string_value(id), dists[i].id)) {
			dist = dists[i].dist;
			fam = dists[i].family;
		}
	json_object_set_new(f, "distribution", json_string(dist));
	json_object_set_new(f, "os_family", json_string(fam));
	json_object_set_new(f, "distribution_version", ver ? ver : json_string("NA"));
	{
		const char *vs = json_string_value(json_object_get(f, "distribution_version"));
		const char *dt = strchr(vs, '.');
		json_object_set_new(f, "distribution_major_version", dt ? json_stringn(vs, (size_t)(dt - vs)) : json_string(vs));
	}
	json_object_set_new(f, "distribution_release", code ? code : json_string("NA"));
	json_decref(id);
	json_t *env = json_object();
	const char *ep = strstr(o, "--env--\n");
	for (const char *p = ep ? ep + 8 : NULL; p && *p;) {
		const char *nl = strchr(p, '\n'), *eq = memchr(p, '=', nl ? (size_t)(nl - p) : strlen(p));
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		if (eq && eq > p) {
			char *k = strndup(p, (size_t)(eq - p));
			if (k) {
				json_object_set_new(env, k, json_stringn(eq + 1, l - (size_t)(eq - p) - 1));
				free(k);
			}
		}
		p = nl ? nl + 1 : NULL;
	}
	json_object_set_new(f, "env", env);
	/* top-level ansible_* variables and ansible_facts without the prefix */
	json_t *facts = json_object();
	const char *k;
	json_t *x;
	json_object_foreach(f, k, x) {
		char name[128];
		snprintf(name, sizeof(name), "ansible_%s", k);
		json_object_set(facts, name, x);
	}
	json_object_clear(h->facts);
	json_object_update(h->facts, facts);
	json_object_set(h->facts, "__ansible_facts", f);
	hr->result = json_pack("{s:o,s:b}", "ansible_facts", facts, "changed", 0);
	json_decref(f);
out:
	vz_buf_free(&fc.out);
}

static void *gather_thread(void *arg)
{
	gather_one(arg);
	return NULL;
}

static void gather_facts(runner *r, pb_host **hs, size_t n)
{
	hrun *hr = calloc(n, sizeof(*hr));
	pthread_t *th = calloc(n, sizeof(*th));
	int *st = calloc(n, sizeof(int));
	size_t m = 0;
	if (!hr || !th || !st)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (host_active(hs[i]))
			hr[m++] = (hrun){ .r = r, .h = hs[i] };
	if (!m)
		goto out;
	static pb_task gf = { .kind = PB_MOD, .action = "gather_facts" };
	vz_pb_out_task_start(r, &gf, "Gathering Facts");
	if (m == 1)
		gather_one(&hr[0]);
	else {
		for (size_t i = 0; i < m; i++)
			st[i] = pthread_create(&th[i], NULL, gather_thread, &hr[i]) == 0;
		for (size_t i = 0; i < m; i++) {
			if (st[i])
				pthread_join(th[i], NULL);
			else
				gather_one(&hr[i]);
		}
	}
	for (size_t i = 0; i < m; i++) {
		vz_pb_out_result(r, &gf, hr[i].h->name, NULL, hr[i].result, hr[i].failed, 0, hr[i].unreachable, 0, 0);
		stats_add(hr[i].h, &hr[i]);
		if (hr[i].unreachable)
			hr[i].h->unreachable = 1;
		else if (hr[i].failed)
			hr[i].h->failed = 1;
		json_decref(hr[i].result);
	}
	vz_pb_out_task_end(r);
out:
	free(hr);
	free(th);
	free(st);
}

/* ---- plays ---- */

static int load_vars_files(runner *r, pb_play *p, vz_err *e)
{
	const json_t *vf = json_object_get(p->kw, "vars_files");
	json_t *vars = json_deep_copy(r->play_vars);
	json_object_update(vars, r->extra);
	int rc = 0;
	if (vf && !json_is_array(vf)) {
		json_t *a = json_array();
		json_array_append(a, (json_t *)vf);
		vf = a;
	} else if (vf) {
		json_incref((json_t *)vf);
	}
	for (size_t i = 0; i < json_array_size(vf) && rc == 0; i++) {
		json_t *pj = NULL;
		vz_ynode *root = NULL;
		if ((rc = vz_pb_template(&pj, json_array_get(vf, i), vars, &r->topts, e)) != 0)
			break;
		if (!json_is_string(pj)) {
			json_decref(pj);
			rc = vz_err_set(e, VZ_EINVAL, "%s:%d: vars_files entries must be file names", p->file, p->line);
			break;
		}
		const char *sl = strrchr(p->file, '/');
		char *fdir = sl ? strndup(p->file, (size_t)(sl - p->file)) : strdup(".");
		char *path = vz_pb_resolve(fdir, json_string_value(pj));
		free(fdir);
		if (r->o->untrusted && path && !path_confined(r, path))
			rc = vz_err_set(e, VZ_EINVAL, "%s:%d: vars_files '%s' is outside the playbook's project; refused for "
					"an untrusted playbook", p->file, p->line, json_string_value(pj));
		else if ((rc = vz_yaml_load_file(&root, path, e)) == 0 && root) {
			if (root->kind != VZ_Y_MAP)
				rc = vz_err_set(e, VZ_EINVAL, "%s: vars_files must hold a mapping", path);
			else {
				json_t *j = vz_ynode_to_json(root);
				json_object_update(r->play_vars, j);
				json_decref(j);
			}
		}
		vz_ynode_free(root);
		free(path);
		json_decref(pj);
	}
	json_decref((json_t *)vf);
	json_decref(vars);
	return rc;
}

/* Roles of the play (roles:, import_role and their dependencies): Ansible shows their defaults
 * and vars to every task of the play, not only to the role's own. */
static void collect_roles(runner *r, const pb_list *l, int depth)
{
	for (size_t i = 0; i < l->n && depth < 64; i++) {
		const pb_task *t = l->v[i];
		if (t->kind != PB_BLOCK)
			continue;
		if (t->is_role_block && t->role) {
			/* dependencies come first in the block, so they are collected first */
			collect_roles(r, &t->block, depth + 1);
			json_object_update(r->role_defaults, t->role->defaults);
			json_object_update(r->role_vars, t->role->vars);
			continue;
		}
		collect_roles(r, &t->block, depth + 1);
		collect_roles(r, &t->rescue, depth + 1);
		collect_roles(r, &t->always, depth + 1);
	}
}

static void run_play(runner *r, pb_play *p)
{
	json_t *hosts = NULL;
	pb_host **hs = NULL;
	size_t n = 0;
	vz_err e = { 0 };
	char *pattern = NULL;

	r->play = p;
	r->end_play = 0;
	json_decref(r->role_defaults);
	json_decref(r->role_vars);
	r->role_defaults = json_object();
	r->role_vars = json_object();
	collect_roles(r, &p->pre_tasks, 0);
	collect_roles(r, &p->tasks, 0);
	collect_roles(r, &p->post_tasks, 0);
	json_decref(r->play_vars);
	r->play_vars = json_object();
	json_t *pv = json_object_get(p->kw, "vars");
	if (json_is_object(pv))
		json_object_update(r->play_vars, pv);
	/* hosts: a string, a list, or a template over extra vars */
	const json_t *hj = json_object_get(p->kw, "hosts");
	json_t *hv = NULL, *tv = json_deep_copy(r->play_vars);
	json_object_update(tv, r->extra);
	if (vz_pb_template(&hv, hj, tv, &r->topts, &e) != 0) {
		vz_pb_out_msg(r, vz_err_msg(&e));
		r->other_error = 1;
		json_decref(tv);
		return;
	}
	json_decref(tv);
	vz_buf pat = VZ_BUF_INIT(4096);
	if (json_is_array(hv)) {
		for (size_t i = 0; i < json_array_size(hv); i++)
			vz_buf_printf(&pat, "%s%s", i ? ":" : "", json_string_value(json_array_get(hv, i)) ?: "");
	} else if (json_is_string(hv)) {
		vz_buf_puts(&pat, json_string_value(hv));
	}
	json_decref(hv);
	pattern = vz_buf_detach(&pat);
	vz_buf_free(&pat);
	const json_t *nj = json_object_get(p->kw, "name");
	free(r->play_name);
	r->play_name = strdup(json_is_string(nj) ? json_string_value(nj) : pattern ? pattern : "");
	vz_pb_out_play_start(r, r->play_name);
	if (!pattern || vz_inventory_match(&hosts, r->o->inventory, pattern, NULL, &e) != 0) {
		vz_pb_out_msg(r, e.code ? vz_err_msg(&e) : "bad hosts pattern");
		goto out;
	}
	hs = calloc(json_array_size(hosts) + 1, sizeof(*hs));
	json_decref(r->play_hosts_all);
	r->play_hosts_all = json_array();
	for (size_t i = 0; hs && i < json_array_size(hosts); i++) {
		pb_host *h = host_get(r, json_string_value(json_array_get(hosts, i)));
		if (!h)
			continue;
		json_array_append_new(r->play_hosts_all, json_string(h->name));
		/* hosts that failed in an earlier play stay out */
		if (h->failed || h->unreachable)
			continue;
		h->ended = 0;
		hs[n++] = h;
	}
	json_decref(r->play_hosts);
	r->play_hosts = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(r->play_hosts, json_string(hs[i]->name));
	if (!n) {
		vz_pb_out_msg(r, "skipping: no hosts matched");
		goto out;
	}
	if (load_vars_files(r, p, &e) != 0) {
		vz_pb_out_msg(r, vz_err_msg(&e));
		r->other_error = 1;
		goto out;
	}
	/* serial: the whole play runs on one batch of hosts after the other (a number or "N%") */
	size_t batch = n;
	const json_t *sj = json_object_get(p->kw, "serial");
	if (json_is_integer(sj) && json_integer_value(sj) > 0)
		batch = (size_t)json_integer_value(sj);
	else if (json_is_string(sj)) {
		int64_t pct = 0;
		const char *ss = json_string_value(sj);
		size_t sl = strlen(ss);
		char num[32];
		if (sl > 1 && sl < sizeof(num) && ss[sl - 1] == '%') {
			memcpy(num, ss, sl - 1);
			num[sl - 1] = 0;
			if (vz_parse_i64(num, 1, 100, &pct) == 0)
				batch = (size_t)((int64_t)n * pct / 100);
		} else if (vz_parse_i64(ss, 1, 1000000, &pct) == 0) {
			batch = (size_t)pct;
		}
		if (batch < 1)
			batch = 1;
	}
	const json_t *gf = json_object_get(p->kw, "gather_facts");
	for (size_t b0 = 0; b0 < n && !stopped(r); b0 += batch) {
		pb_host **bh = hs + b0;
		size_t bn = b0 + batch <= n ? batch : n - b0;
		if (b0) { /* Ansible starts the play again for every batch */
			vz_pb_out_play_end(r);
			vz_pb_out_play_start(r, r->play_name);
		}
		json_decref(r->play_hosts);
		r->play_hosts = json_array();
		for (size_t i = 0; i < bn; i++)
			json_array_append_new(r->play_hosts, json_string(bh[i]->name));
		if (!gf || vz_template_truthy(gf))
			gather_facts(r, bh, bn);
		run_list(r, &p->pre_tasks, bh, bn);
		if (!stopped(r))
			run_handlers(r, bh, bn);
		run_list(r, &p->tasks, bh, bn);
		if (!stopped(r))
			run_handlers(r, bh, bn);
		run_list(r, &p->post_tasks, bh, bn);
		if (!stopped(r))
			run_handlers(r, bh, bn);
	}
out:
	vz_pb_out_play_end(r);
	free(pattern);
	free(hs);
	json_decref(hosts);
}

int vz_playbook_run(vz_playbook_result *out, const vz_playbook_opts *o, vz_err *e)
{
	runner r;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	memset(&r, 0, sizeof(r));
	if (!o || !o->inventory || (!o->playbooks && o->nplaybooks)) {
		out->exit_code = 5;
		return vz_err_set(e, VZ_EINVAL, "vz_playbook_run: no inventory or playbooks given");
	}
	r.o = o;
	r.output_max = o->output_max ? o->output_max : VZ_PB_DEFAULT_OUTPUT_MAX;
	r.extra = o->extra_vars ? json_incref((json_t *)o->extra_vars) : json_object();
	r.groups = vz_inventory_groups(o->inventory);
	r.empty = json_object();
	r.play_hosts = json_array();
	r.play_hosts_all = json_array();
	r.deadline = o->timeout_ms > 0 ? vz_mono_ms() + (uint64_t)o->timeout_ms : 0;
	pthread_mutex_init(&r.out_lock, NULL);
	pthread_mutex_init(&r.hosts_lock, NULL);
	if ((rc = vz_pb_out_open(&r, e)) != 0) {
		out->exit_code = 1;
		goto out;
	}
	for (size_t i = 0; i < o->nplaybooks && !stopped(&r); i++) {
		r.end_play = 0;
		vz_playbook *pb = NULL;
		if ((rc = vz_playbook_load(&pb, o->playbooks[i], e)) != 0) {
			out->exit_code = rc == VZ_ENOTFOUND ? 1 : 4;
			goto out;
		}
		pb->untrusted = o->untrusted;
		r.pb = pb;
		vz_pb_out_playbook_start(&r, o->playbooks[i]);
		for (size_t k = 0; k < pb->nplays && !(o->cancel && *o->cancel) && !r.timed_out && !r.fatal.code; k++)
			run_play(&r, pb->plays[k]);
		vz_pb_out_playbook_end(&r);
		vz_pb_list_free(&r.dyn);
		r.pb = NULL;
		vz_playbook_free(pb);
	}
	if (r.fatal.code) {
		/* a run-time error of the playbook itself: no recap, exit 1, as ansible-playbook */
		vz_err_set(e, r.fatal.code, "%s", r.fatal.msg);
		rc = r.fatal.code;
		out->exit_code = 1;
		goto out;
	}
	vz_pb_out_recap(&r);
	int any_failed = 0, any_unreach = 0;
	for (size_t i = 0; i < r.nhosts; i++) {
		any_failed |= r.hosts[i]->st.failures > 0 || r.hosts[i]->failed;
		any_unreach |= r.hosts[i]->st.unreachable > 0;
	}
	out->exit_code = any_unreach ? 4 : any_failed || r.timed_out ? 2 : r.other_error ? 1 : 0;
	if (o->cancel && *o->cancel && !out->exit_code)
		out->exit_code = 1;
	out->timed_out = r.timed_out;
out:
	vz_pb_out_close(&r, out, rc);
	vz_pb_list_free(&r.dyn);
	for (size_t i = 0; i < r.nhosts; i++)
		host_free(r.hosts[i]);
	free(r.hosts);
	free(r.play_name);
	json_decref(r.extra);
	json_decref(r.groups);
	json_decref(r.empty);
	json_decref(r.hostvars);
	json_decref(r.play_vars);
	json_decref(r.role_defaults);
	json_decref(r.role_vars);
	json_decref(r.play_hosts);
	json_decref(r.play_hosts_all);
	pthread_mutex_destroy(&r.out_lock);
	pthread_mutex_destroy(&r.hosts_lock);
	return rc;
}
