/* vz_config: reads the site configuration YAML into a vz_config, checking every key, type, range
 * and cross-reference, and reporting every problem as "FILE:LINE:COL: message" rather than the
 * first only. Sections are read in dependency order (connections, nodes, pipelines, jobs,
 * projects, tenants) whatever their order in the file, so references resolve in one pass. */
#include "vz_config.h"
#include "vz_curve.h"

#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vz_util.h"
#include "vz_yaml.h"

#define MAX_ERRORS 200

/* One diagnostic; they are sorted by position before being reported, so the first error in
 * the file comes first whatever order the checks ran in. */
typedef struct cdiag {
	int line, col;
	int seq;
	char *text; /* "FILE:LINE:COL: message" */
} cdiag;

typedef struct cctx {
	const char *fname;
	vz_config *c;
	cdiag *errs;
	int nerr, cap;
} cctx;

/* ---- errors ---- */

static void cerr(cctx *x, const vz_ynode *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void cerr(cctx *x, const vz_ynode *at, const char *fmt, ...)
{
	char msg[VZ_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (x->nerr >= MAX_ERRORS) {
		x->nerr++;
		return;
	}
	if (x->nerr == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 16;
		cdiag *n = realloc(x->errs, (size_t)x->cap * sizeof(*n));
		if (!n)
			abort();
		x->errs = n;
	}
	cdiag *d = &x->errs[x->nerr];
	size_t n = strlen(x->fname) + strlen(msg) + 32;
	d->text = vz_xcalloc(1, n);
	d->line = at ? at->line : 0;
	d->col = at ? at->col : 0;
	d->seq = x->nerr++;
	if (at)
		snprintf(d->text, n, "%s:%d:%d: %s", x->fname, at->line, at->col, msg);
	else
		snprintf(d->text, n, "%s: %s", x->fname, msg);
}

static int cdiag_cmp(const void *a, const void *b)
{
	const cdiag *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts the collected errors, appends them to diags, sets e to the first, frees them. */
static void report(cctx *x, vz_buf *diags, vz_err *e)
{
	int kept = x->nerr < MAX_ERRORS ? x->nerr : MAX_ERRORS;
	if (kept > 0)
		qsort(x->errs, (size_t)kept, sizeof(*x->errs), cdiag_cmp);
	for (int i = 0; i < kept; i++) {
		if (diags)
			vz_buf_printf(diags, "%s\n", x->errs[i].text);
		if (i == 0)
			vz_err_set(e, VZ_EINVAL, "%s", x->errs[i].text);
		free(x->errs[i].text);
	}
	if (diags && x->nerr > MAX_ERRORS)
		vz_buf_printf(diags, "%s: %d more errors not shown; fix these first\n", x->fname,
			      x->nerr - MAX_ERRORS);
	free(x->errs);
	x->errs = NULL;
}

/* ---- typed getters: each reports its own error and leaves *out alone on failure ---- */

static const char *kind_name(const vz_ynode *n)
{
	if (n->kind == VZ_Y_MAP)
		return "a mapping";
	if (n->kind == VZ_Y_SEQ)
		return "a list";
	return "a scalar";
}

/* A short printable form of a scalar for messages. */
static const char *shown(const vz_ynode *n, char *buf, size_t len)
{
	if (n->kind != VZ_Y_SCALAR)
		return kind_name(n);
	size_t j = 0;
	for (size_t i = 0; i < n->len && j + 4 < len; i++) {
		unsigned char ch = (unsigned char)n->str[i];
		buf[j++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (n->len > j && j >= 3)
		buf[j - 3] = buf[j - 2] = buf[j - 1] = '.';
	buf[j] = '\0';
	return buf;
}

/* Allowed keys joined for messages. */
static void join_keys(char *out, size_t n, const char *const *keys)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; keys[i] && used < n; i++) {
		int w = snprintf(out + used, n - used, "%s%s", i ? ", " : "", keys[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

static int key_allowed(const vz_ynode *k, const char *const *allowed)
{
	for (size_t i = 0; allowed[i]; i++)
		if (strlen(allowed[i]) == k->len && memcmp(k->str, allowed[i], k->len) == 0)
			return 1;
	return 0;
}

/* Reports each key of map not in allowed. what: "node 'x'", "the scheduler section"... */
static void check_keys(cctx *x, const vz_ynode *map, const char *const *allowed, const char *what)
{
	char list[512], kb[80];
	for (size_t i = 0; i < map->n; i++) {
		if (key_allowed(map->keys[i], allowed))
			continue;
		join_keys(list, sizeof(list), allowed);
		cerr(x, map->keys[i], "unknown key '%s' in %s; allowed keys: %s",
		     shown(map->keys[i], kb, sizeof(kb)), what, list);
	}
}

/* Value of key unless absent or null (a key with nothing after it means "use the default"). */
static const vz_ynode *get(const vz_ynode *map, const char *key)
{
	const vz_ynode *v = vz_ymap_get(map, key);
	return v && !vz_yscalar_is_null(v) ? v : NULL;
}

static int as_string(cctx *x, const vz_ynode *v, const char *key, char **out)
{
	if (v->kind != VZ_Y_SCALAR) {
		cerr(x, v, "'%s' must be a string, not %s", key, kind_name(v));
		return -1;
	}
	if (strlen(v->str) != v->len) {
		cerr(x, v, "'%s' must not contain NUL characters", key);
		return -1;
	}
	if (v->len == 0) {
		cerr(x, v, "'%s' must not be empty", key);
		return -1;
	}
	char *s = vz_xstrdup(v->str);
	free(*out);
	*out = s;
	return 0;
}

/* Returns 1 when set, 0 when absent, -1 on error. */
static int get_str(cctx *x, const vz_ynode *map, const char *key, char **out)
{
	const vz_ynode *v = get(map, key);
	if (!v)
		return 0;
	return as_string(x, v, key, out) ? -1 : 1;
}

static void get_int(cctx *x, const vz_ynode *map, const char *key, long long min, long long max,
		    int *out)
{
	const vz_ynode *v = get(map, key);
	long long n;
	char b[80];
	if (!v)
		return;
	if (vz_yscalar_int(v, min, max, &n) != 0) {
		cerr(x, v, "'%s' must be an integer from %lld to %lld, not %s%s%s", key, min, max,
		     v->kind == VZ_Y_SCALAR ? "'" : "", shown(v, b, sizeof(b)),
		     v->kind == VZ_Y_SCALAR ? "'" : "");
		return;
	}
	*out = (int)n;
}

static void get_bool(cctx *x, const vz_ynode *map, const char *key, int *out)
{
	const vz_ynode *v = get(map, key);
	char b[80];
	if (v && vz_yscalar_bool(v, out) != 0)
		cerr(x, v, "'%s' must be true or false, not %s%s%s", key, v->kind == VZ_Y_SCALAR ? "'" : "",
		     shown(v, b, sizeof(b)), v->kind == VZ_Y_SCALAR ? "'" : "");
}

/* A duration in seconds, possibly fractional, stored as milliseconds. */
static void get_seconds_ms(cctx *x, const vz_ynode *map, const char *key, double max_s, int *out_ms)
{
	const vz_ynode *v = get(map, key);
	double d;
	char b[80];
	if (!v)
		return;
	if (vz_yscalar_float(v, &d) != 0 || !(d > 0) || d > max_s || d * 1000.0 + 0.5 < 1.0) {
		cerr(x, v, "'%s' must be a number of seconds above 0 and at most %g (0.5 is half a "
		     "second), not %s%s%s", key, max_s, v->kind == VZ_Y_SCALAR ? "'" : "",
		     shown(v, b, sizeof(b)), v->kind == VZ_Y_SCALAR ? "'" : "");
		return;
	}
	*out_ms = (int)(d * 1000.0 + 0.5);
}

/* A number within [min, max] (fractions allowed). */
static void get_double(cctx *x, const vz_ynode *map, const char *key, double min, double max, double *out)
{
	const vz_ynode *v = get(map, key);
	double d;
	char b[80];
	if (!v)
		return;
	if (vz_yscalar_float(v, &d) != 0 || !(d >= min) || d > max) {
		cerr(x, v, "'%s' must be a number from %g to %g, not %s%s%s", key, min, max, v->kind == VZ_Y_SCALAR ? "'" : "",
		     shown(v, b, sizeof(b)), v->kind == VZ_Y_SCALAR ? "'" : "");
		return;
	}
	*out = d;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* A list of strings; single_ok also takes one string as a one-item list. */
static void get_strv(cctx *x, const vz_ynode *map, const char *key, int single_ok, char ***out,
		     size_t *nout)
{
	const vz_ynode *v = get(map, key);
	if (!v)
		return;
	if (v->kind == VZ_Y_SCALAR && single_ok) {
		char *s = NULL;
		if (as_string(x, v, key, &s) == 0) {
			free_strv(*out, *nout);
			*out = vz_xcalloc(1, sizeof(char *));
			(*out)[0] = s;
			*nout = 1;
		}
		return;
	}
	if (v->kind != VZ_Y_SEQ) {
		cerr(x, v, "'%s' must be a list of strings%s, not %s", key, single_ok ? " or a string" : "",
		     kind_name(v));
		return;
	}
	char **r = vz_xcalloc(v->n ? v->n : 1, sizeof(char *));
	size_t n = 0;
	int bad = 0;
	for (size_t i = 0; i < v->n; i++) {
		if (v->items[i]->kind != VZ_Y_SCALAR || vz_yscalar_is_null(v->items[i])) {
			cerr(x, v->items[i], "each item of '%s' must be a string, not %s", key,
			     v->items[i]->kind == VZ_Y_SCALAR ? "null" : kind_name(v->items[i]));
			bad = 1;
			continue;
		}
		if (as_string(x, v->items[i], key, &r[n]) == 0)
			n++;
		else
			bad = 1;
	}
	if (bad) {
		free_strv(r, n);
		return;
	}
	free_strv(*out, *nout);
	*out = r;
	*nout = n;
}

/* ---- paths and endpoints ---- */

static char *resolve_path(const vz_config *c, const char *p)
{
	if (p[0] == '/')
		return vz_xstrdup(p);
	return vz_path_join(c->dir, p);
}

static void get_path(cctx *x, const vz_ynode *map, const char *key, char **out)
{
	char *s = NULL;
	if (get_str(x, map, key, &s) == 1) {
		free(*out);
		*out = resolve_path(x->c, s);
	}
	free(s);
}

static int valid_endpoint(const char *s)
{
	static const char *const schemes[] = {"tcp://", "ipc://", "inproc://", NULL};
	for (size_t i = 0; schemes[i]; i++)
		if (vz_startswith(s, schemes[i]) && s[strlen(schemes[i])] != '\0')
			return 1;
	return 0;
}

/* Endpoints as libzmq takes them; a relative ipc path is made relative to the config file. */
static void get_endpoint(cctx *x, const vz_ynode *map, const char *key, char **out)
{
	char *s = NULL;
	if (get_str(x, map, key, &s) != 1)
		return;
	if (!valid_endpoint(s)) {
		char b[80];
		cerr(x, get(map, key), "'%s' must be a ZeroMQ endpoint starting with tcp://, ipc:// or "
		     "inproc://, not '%s'", key, shown(get(map, key), b, sizeof(b)));
		free(s);
		return;
	}
	if (vz_startswith(s, "ipc://") && s[6] != '/' && s[6] != '@') {
		char *p = vz_path_join(x->c->dir, s + 6);
		size_t n = strlen(p) + 7;
		char *r = vz_xcalloc(1, n);
		snprintf(r, n, "ipc://%s", p);
		free(p);
		free(s);
		s = r;
	}
	free(*out);
	*out = s;
}

static int one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return 1;
	return 0;
}

/* ---- sections ---- */

static void read_scheduler(cctx *x, const vz_ynode *root)
{
	static const char *const keys[] = {"listen", "admin", "lease", "heartbeat", "curve_key", "curve_executors", NULL};
	const vz_ynode *s = get(root, "scheduler");
	if (!s)
		return;
	if (s->kind != VZ_Y_MAP) {
		cerr(x, s, "'scheduler' must be a mapping, not %s", kind_name(s));
		return;
	}
	check_keys(x, s, keys, "'scheduler'");
	get_endpoint(x, s, "listen", &x->c->scheduler.listen);
	get_endpoint(x, s, "admin", &x->c->scheduler.admin);
	get_seconds_ms(x, s, "lease", 86400, &x->c->scheduler.lease_ms);
	get_seconds_ms(x, s, "heartbeat", 3600, &x->c->scheduler.heartbeat_ms);
	get_path(x, s, "curve_key", &x->c->scheduler.curve_key);
	get_path(x, s, "curve_executors", &x->c->scheduler.curve_executors);
	if (!x->c->scheduler.curve_key != !x->c->scheduler.curve_executors)
		cerr(x, get(s, "curve_key") ? get(s, "curve_key") : get(s, "curve_executors"),
		     "scheduler 'curve_key' and 'curve_executors' go together: the scheduler's key pair and the "
		     "list of executor public keys it admits");
	else if (x->c->scheduler.listen && !x->c->scheduler.curve_key && !vz_endpoint_is_local(x->c->scheduler.listen))
		cerr(x, get(s, "listen"), "scheduler 'listen' %s can be reached from other hosts: set 'curve_key' and "
		     "'curve_executors' (make keys with vinz keygen), or listen on inproc://, ipc:// or loopback",
		     x->c->scheduler.listen);
	if (x->c->scheduler.heartbeat_ms >= x->c->scheduler.lease_ms) {
		const vz_ynode *at = get(s, "heartbeat") ? get(s, "heartbeat") : get(s, "lease");
		cerr(x, at, "scheduler 'heartbeat' (%d ms) must be shorter than 'lease' (%d ms), or "
		     "executors lose their builds between heartbeats", x->c->scheduler.heartbeat_ms,
		     x->c->scheduler.lease_ms);
	}
}

static void read_executor(cctx *x, const vz_ynode *root)
{
	static const char *const keys[] = {"name", "scheduler", "capacity", "labels", "work_dir", "curve_key",
					   "scheduler_key", "load_multiplier", "min_avail_mem", "min_avail_disk", "disk_limit_per_job",
					   "zone", "allow_unzoned", "max_starting_builds", "merge_capacity", NULL};
	const vz_ynode *s = get(root, "executor");
	if (!s)
		return;
	if (s->kind != VZ_Y_MAP) {
		cerr(x, s, "'executor' must be a mapping, not %s", kind_name(s));
		return;
	}
	check_keys(x, s, keys, "'executor'");
	get_str(x, s, "name", &x->c->executor.name);
	get_endpoint(x, s, "scheduler", &x->c->executor.scheduler);
	get_int(x, s, "capacity", 1, 1024, &x->c->executor.capacity);
	get_strv(x, s, "labels", 0, &x->c->executor.labels, &x->c->executor.nlabels);
	get_path(x, s, "work_dir", &x->c->executor.work_dir);
	get_double(x, s, "load_multiplier", 0, 1000, &x->c->executor.load_multiplier);
	get_double(x, s, "min_avail_mem", 0, 100, &x->c->executor.min_avail_mem);
	get_double(x, s, "min_avail_disk", 0, 100, &x->c->executor.min_avail_disk);
	get_int(x, s, "disk_limit_per_job", -1, 1024 * 1024, &x->c->executor.disk_limit_per_job);
	get_str(x, s, "zone", &x->c->executor.zone);
	get_bool(x, s, "allow_unzoned", &x->c->executor.allow_unzoned);
	get_int(x, s, "max_starting_builds", 1, 1024, &x->c->executor.max_starting_builds);
	get_int(x, s, "merge_capacity", 1, 64, &x->c->executor.merge_capacity);
	get_path(x, s, "curve_key", &x->c->executor.curve_key);
	/* 40 characters: the Z85 key itself; anything else: a .pub file, relative to this file */
	if (get_str(x, s, "scheduler_key", &x->c->executor.scheduler_key) == 1 &&
	    strlen(x->c->executor.scheduler_key) != VZ_CURVE_KEYLEN && x->c->executor.scheduler_key[0] != '/') {
		char *abs = vz_path_join(x->c->dir, x->c->executor.scheduler_key);
		free(x->c->executor.scheduler_key);
		x->c->executor.scheduler_key = abs;
	}
	if (!x->c->executor.curve_key != !x->c->executor.scheduler_key)
		cerr(x, get(s, "curve_key") ? get(s, "curve_key") : get(s, "scheduler_key"),
		     "executor 'curve_key' and 'scheduler_key' go together: the executor's key pair and the "
		     "scheduler's public key it accepts");
	else if (x->c->executor.scheduler && !x->c->executor.curve_key && !vz_endpoint_is_local(x->c->executor.scheduler))
		cerr(x, get(s, "scheduler"), "executor 'scheduler' %s is on another host: set 'curve_key' and "
		     "'scheduler_key' (make keys with vinz keygen), or connect over inproc://, ipc:// or loopback",
		     x->c->executor.scheduler);
}

static int env_name_ok(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

/* The keys an executor fetches the connection's repositories with. Only paths and names are
 * kept: a password is read from its file or variable when a server asks for it. */
static void read_connection_creds(cctx *x, const vz_ynode *m, vz_conf_connection *cn, const char *what)
{
	get_str(x, m, "user", &cn->user);
	get_path(x, m, "ssh_key", &cn->ssh_key);
	get_path(x, m, "known_hosts", &cn->known_hosts);
	get_path(x, m, "password_file", &cn->password_file);
	get_path(x, m, "ca_file", &cn->ca_file);
	if (get_str(x, m, "password_env", &cn->password_env) == 1 && !env_name_ok(cn->password_env))
		cerr(x, get(m, "password_env"), "'password_env' of %s must name an environment variable "
		     "(letters, digits and '_', not starting with a digit), not '%s'; the password itself "
		     "never goes in this file", what, cn->password_env);
	if (get(m, "password_file") && get(m, "password_env"))
		cerr(x, get(m, "password_env"), "%s has both 'password_file' and 'password_env'; keep one",
		     what);
	if ((get(m, "password_file") || get(m, "password_env")) && !get(m, "user"))
		cerr(x, m, "%s has a password but no 'user' to send it with", what);
	if (get(m, "ssh_key") && !get(m, "known_hosts"))
		cerr(x, get(m, "ssh_key"), "%s has 'ssh_key' but no 'known_hosts': the git server's host "
		     "key must be checked", what);
}

static void read_connection(cctx *x, const vz_ynode *m, void *ent, const char *what)
{
	static const char *const keys[] = {"name", "driver", "baseurl", "canonical_hostname", "user",
					   "ssh_key", "known_hosts", "password_file", "password_env",
					   "ca_file", NULL};
	static const char *const drivers[] = {"git", NULL};
	vz_conf_connection *cn = ent;
	check_keys(x, m, keys, what);
	if (get_str(x, m, "driver", &cn->driver) == 1 && !one_of(cn->driver, drivers))
		cerr(x, get(m, "driver"), "unknown driver '%s' in %s; known drivers: git", cn->driver, what);
	if (!cn->driver)
		cn->driver = vz_xstrdup("git");
	char *url = NULL;
	int r = get_str(x, m, "baseurl", &url);
	if (r == 0 && strcmp(cn->driver, "git") == 0)
		cerr(x, m, "%s needs 'baseurl' (a directory or URL holding the repositories)", what);
	if (r == 1) {
		/* a URL keeps its scheme; anything else is a path */
		if (strstr(url, "://") || strchr(url, '@')) {
			/* scheme://user:password@host: the password would end up in logs, messages
			 * and cache directory names */
			const char *auth = strstr(url, "://");
			auth = auth ? auth + 3 : url;
			size_t alen = strcspn(auth, "/");
			const char *at = memchr(auth, '@', alen);
			if (strstr(url, "://") && at && memchr(auth, ':', (size_t)(at - auth)))
				cerr(x, get(m, "baseurl"), "'baseurl' of %s holds a password; remove it and "
				     "set 'user' and 'password_file' or 'password_env' instead", what);
			cn->baseurl = url;
			url = NULL;
		} else {
			cn->baseurl = resolve_path(x->c, url);
		}
	}
	free(url);
	get_str(x, m, "canonical_hostname", &cn->canonical_hostname);
	if (!cn->canonical_hostname)
		cn->canonical_hostname = vz_xstrdup(cn->name);
	read_connection_creds(x, m, cn, what);
}

static char *current_user(void)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name)
		return vz_xstrdup(res->pw_name);
	const char *u = getenv("USER");
	return u && *u ? vz_xstrdup(u) : NULL;
}

static void read_node(cctx *x, const vz_ynode *m, void *ent, const char *what)
{
	static const char *const keys[] = {"name", "connection", "host", "port", "user", "key",
					   "known_hosts", "host_key", "labels", "max_parallel", "zone", NULL};
	static const char *const conns[] = {"ssh", "local", NULL};
	vz_conf_node *nd = ent;
	check_keys(x, m, keys, what);
	nd->port = 22;
	nd->max_parallel = 1;
	get_str(x, m, "host", &nd->host);
	if (get_str(x, m, "connection", &nd->connection) == 1 && !one_of(nd->connection, conns))
		cerr(x, get(m, "connection"), "'connection' of %s must be 'ssh' or 'local', not '%s'", what,
		     nd->connection);
	if (!nd->connection)
		nd->connection = vz_xstrdup(nd->host ? "ssh" : "local");
	get_int(x, m, "port", 1, 65535, &nd->port);
	get_str(x, m, "user", &nd->user);
	if (!nd->user)
		nd->user = current_user();
	get_path(x, m, "key", &nd->key);
	get_path(x, m, "known_hosts", &nd->known_hosts);
	get_str(x, m, "host_key", &nd->host_key);
	get_strv(x, m, "labels", 0, &nd->labels, &nd->nlabels);
	get_int(x, m, "max_parallel", 1, 1024, &nd->max_parallel);
	get_str(x, m, "zone", &nd->zone);
	if (strcmp(nd->connection, "ssh") == 0) {
		if (!get(m, "host"))
			cerr(x, m, "ssh %s needs 'host'", what);
		if (!get(m, "key"))
			cerr(x, m, "ssh %s needs 'key' (the private key file to log in with)", what);
		if (!get(m, "known_hosts") && !get(m, "host_key"))
			cerr(x, m, "ssh %s needs 'known_hosts' or 'host_key' so its host key can be "
			     "checked", what);
	}
}

static void read_pipeline(cctx *x, const vz_ynode *m, void *ent, const char *what)
{
	static const char *const keys[] = {"name", "manager", NULL};
	static const char *const managers[] = {"independent", NULL};
	vz_conf_pipeline *p = ent;
	check_keys(x, m, keys, what);
	if (get_str(x, m, "manager", &p->manager) == 1 && !one_of(p->manager, managers))
		cerr(x, get(m, "manager"), "unknown manager '%s' in %s; only 'independent' is supported",
		     p->manager, what);
	if (!p->manager)
		p->manager = vz_xstrdup("independent");
}

static int label_offered(const vz_config *c, const char *label)
{
	for (size_t i = 0; i < c->nnodes; i++)
		for (size_t j = 0; j < c->nodes[i].nlabels; j++)
			if (strcmp(c->nodes[i].labels[j], label) == 0)
				return 1;
	return 0;
}

static void read_job(cctx *x, const vz_ynode *m, void *ent, const char *what)
{
	static const char *const keys[] = {"name", "run", "label", "timeout", "attempts", "voting", NULL};
	vz_conf_job *j = ent;
	check_keys(x, m, keys, what);
	j->timeout = 1800;
	j->attempts = 3;
	j->voting = 1;
	get_strv(x, m, "run", 1, &j->run, &j->nrun);
	if (!get(m, "run"))
		cerr(x, m, "%s needs 'run' (a command or a list of commands)", what);
	else if (get(m, "run")->kind == VZ_Y_SEQ && get(m, "run")->n == 0)
		cerr(x, get(m, "run"), "'run' of %s is an empty list", what);
	if (get_str(x, m, "label", &j->label) == 1 && !label_offered(x->c, j->label))
		cerr(x, get(m, "label"), "label '%s' of %s is not offered by any node; add it to a "
		     "node's 'labels'", j->label, what);
	get_int(x, m, "timeout", 1, 86400, &j->timeout);
	get_int(x, m, "attempts", 1, 100, &j->attempts);
	get_bool(x, m, "voting", &j->voting);
}

static void read_project_pipeline(cctx *x, const vz_ynode *v, vz_conf_project_pipeline *pp,
				  const char *what)
{
	static const char *const keys[] = {"jobs", NULL};
	char w[256];
	snprintf(w, sizeof(w), "pipeline '%s' of %s", pp->pipeline, what);
	if (v->kind != VZ_Y_MAP) {
		cerr(x, v, "%s must be a mapping with 'jobs', not %s", w, kind_name(v));
		return;
	}
	check_keys(x, v, keys, w);
	get_strv(x, v, "jobs", 0, &pp->jobs, &pp->njobs);
	const vz_ynode *jl = get(v, "jobs");
	if (!jl || jl->kind != VZ_Y_SEQ)
		return;
	for (size_t i = 0; i < jl->n; i++) {
		const vz_ynode *jn = jl->items[i];
		if (jn->kind != VZ_Y_SCALAR || strlen(jn->str) != jn->len)
			continue; /* reported by get_strv */
		if (!vz_config_job(x->c, jn->str))
			cerr(x, jn, "unknown job '%s' in %s; define it under 'jobs'", jn->str, w);
		for (size_t k = 0; k < i; k++)
			if (jl->items[k]->kind == VZ_Y_SCALAR && strcmp(jl->items[k]->str, jn->str) == 0) {
				cerr(x, jn, "job '%s' is listed twice in %s (first at line %d)", jn->str, w,
				     jl->items[k]->line);
				break;
			}
	}
}

static void read_project(cctx *x, const vz_ynode *m, void *ent, const char *what)
{
	static const char *const fixed[] = {"name", "connection", "default_branch", NULL};
	vz_conf_project *p = ent;
	char kb[80];
	if (get_str(x, m, "connection", &p->connection) == 1) {
		if (!vz_config_connection(x->c, p->connection))
			cerr(x, get(m, "connection"), "unknown connection '%s' in %s; define it under "
			     "'connections'", p->connection, what);
	} else if (!get(m, "connection")) {
		if (x->c->nconnections == 1)
			p->connection = vz_xstrdup(x->c->connections[0].name);
		else
			cerr(x, m, "%s needs 'connection' (%s)", what,
			     x->c->nconnections ? "there is more than one" : "and none is defined");
	}
	get_str(x, m, "default_branch", &p->default_branch);
	if (!p->default_branch)
		p->default_branch = vz_xstrdup("master");
	p->pipelines = vz_xcalloc(m->n ? m->n : 1, sizeof(*p->pipelines));
	for (size_t i = 0; i < m->n; i++) {
		const vz_ynode *k = m->keys[i];
		if (key_allowed(k, fixed))
			continue;
		if (strlen(k->str) != k->len || !vz_config_pipeline(x->c, k->str)) {
			char list[512] = "name, connection, default_branch";
			size_t used = strlen(list);
			for (size_t j = 0; j < x->c->npipelines && used < sizeof(list); j++) {
				int w = snprintf(list + used, sizeof(list) - used, ", %s",
						 x->c->pipelines[j].name);
				if (w < 0)
					break;
				used += (size_t)w;
			}
			cerr(x, k, "unknown key '%s' in %s; allowed keys: %s (a pipeline name: define the "
			     "pipeline under 'pipelines')", shown(k, kb, sizeof(kb)), what, list);
			continue;
		}
		vz_conf_project_pipeline *pp = &p->pipelines[p->npipelines++];
		pp->pipeline = vz_xstrdup(k->str);
		if (!vz_yscalar_is_null(m->items[i]))
			read_project_pipeline(x, m->items[i], pp, what);
	}
}

/* ---- tenants (Zuul's main.yaml, as the `tenants:` list) ---- */

static const char *const tenant_types[] = {"pipeline", "job", "project", "project-template", "nodeset", "secret",
					   "semaphore", "queue", "pragma", NULL};

/* include/exclude: a type name or a list of them. */
static void read_types(cctx *x, const vz_ynode *m, const char *key, char ***out, size_t *n, const char *what)
{
	char list[256], kb[80];
	get_strv(x, m, key, 1, out, n);
	for (size_t i = 0; i < *n; i++)
		if (!one_of((*out)[i], tenant_types)) {
			join_keys(list, sizeof(list), tenant_types);
			const vz_ynode *v = get(m, key);
			const vz_ynode *at = v && v->kind == VZ_Y_SEQ && i < v->n ? v->items[i] : v;
			cerr(x, at, "unknown object type '%s' in '%s' of %s; types: %s", at ? shown(at, kb, sizeof(kb)) : "",
			     key, what, list);
		}
}

static void tenant_add(cctx *x, vz_conf_tenant *t, const vz_ynode *at, const char *name, const char *conn,
		       int trusted, const vz_ynode *opts, const char *tname)
{
	static const char *const keys[] = {"include", "exclude", "load-branch", NULL};
	static const char *const unsupported[] = {"shadow", "exclude-unprotected-branches", "exclude-locked-branches",
						  "include-branches", "exclude-branches", "always-dynamic-branches",
						  "extra-config-paths", "implied-branch-matchers", NULL};
	char what[512], kb[80];
	for (size_t i = 0; i < t->nprojects; i++)
		if (strcmp(t->projects[i].name, name) == 0 && strcmp(t->projects[i].connection, conn) == 0) {
			cerr(x, at, "project '%s' is listed twice in tenant '%s'", shown(at, kb, sizeof(kb)), tname);
			return;
		}
	vz_conf_tenant_project *p = &t->projects[t->nprojects++];
	p->name = vz_xstrdup(name);
	p->connection = vz_xstrdup(conn);
	p->config_project = trusted;
	snprintf(what, sizeof(what), "project '%s' of tenant '%s'", name, tname);
	if (!opts || vz_yscalar_is_null(opts))
		return;
	if (opts->kind != VZ_Y_MAP) {
		cerr(x, opts, "the options of %s must be a mapping (include, exclude%s), not %s", what,
		     trusted ? ", load-branch" : "", kind_name(opts));
		return;
	}
	for (size_t i = 0; i < opts->n; i++) {
		if (key_allowed(opts->keys[i], unsupported))
			cerr(x, opts->keys[i], "'%s' (%s) is not supported by vinz yet; remove it (docs/configuration.md "
			     "lists what tenants support)", opts->keys[i]->str, what);
		else if (!key_allowed(opts->keys[i], keys) || (!trusted && !strcmp(opts->keys[i]->str, "load-branch")))
			cerr(x, opts->keys[i], "unknown key '%s' in %s; allowed keys: include, exclude%s",
			     shown(opts->keys[i], kb, sizeof(kb)), what, trusted ? ", load-branch" : "");
	}
	read_types(x, opts, "include", &p->include, &p->ninclude, what);
	read_types(x, opts, "exclude", &p->exclude, &p->nexclude, what);
	if (trusted)
		get_str(x, opts, "load-branch", &p->load_branch);
}

/* A config-projects or untrusted-projects list: NAME, {NAME: {options}}, or a project group
 * {projects: [NAME...], include: ..., exclude: ...}. */
static void read_tenant_list(cctx *x, vz_conf_tenant *t, const vz_ynode *list, const char *key, const char *conn,
			     int trusted, const char *tname)
{
	if (list->kind != VZ_Y_SEQ) {
		cerr(x, list, "'%s' of connection '%s' in tenant '%s' must be a list of projects, not %s", key, conn, tname,
		     kind_name(list));
		return;
	}
	for (size_t i = 0; i < list->n; i++) {
		const vz_ynode *it = list->items[i];
		char *name = NULL;
		if (it->kind == VZ_Y_SCALAR) {
			if (as_string(x, it, key, &name) == 0)
				tenant_add(x, t, it, name, conn, trusted, NULL, tname);
		} else if (it->kind == VZ_Y_MAP && vz_ymap_get(it, "projects")) {
			static const char *const gkeys[] = {"projects", "include", "exclude", NULL};
			check_keys(x, it, gkeys, "a project group");
			const vz_ynode *ps = vz_ymap_get(it, "projects");
			if (ps->kind != VZ_Y_SEQ) {
				cerr(x, ps, "'projects' of a project group must be a list of names, not %s", kind_name(ps));
				continue;
			}
			char what[512];
			char **inc = NULL, **exc = NULL;
			size_t ninc = 0, nexc = 0;
			snprintf(what, sizeof(what), "a project group of tenant '%s'", tname);
			read_types(x, it, "include", &inc, &ninc, what);
			read_types(x, it, "exclude", &exc, &nexc, what);
			for (size_t j = 0; j < ps->n; j++) {
				char *pn = NULL;
				size_t before = t->nprojects;
				if (as_string(x, ps->items[j], "projects", &pn) == 0)
					tenant_add(x, t, ps->items[j], pn, conn, trusted, NULL, tname);
				/* the group's include/exclude apply to each of its projects */
				if (t->nprojects > before) {
					vz_conf_tenant_project *p = &t->projects[before];
					p->include = ninc ? vz_xcalloc(ninc, sizeof(char *)) : NULL;
					p->exclude = nexc ? vz_xcalloc(nexc, sizeof(char *)) : NULL;
					for (size_t q = 0; q < ninc; q++)
						p->include[q] = vz_xstrdup(inc[q]);
					for (size_t q = 0; q < nexc; q++)
						p->exclude[q] = vz_xstrdup(exc[q]);
					p->ninclude = ninc;
					p->nexclude = nexc;
				}
				free(pn);
			}
			free_strv(inc, ninc);
			free_strv(exc, nexc);
		} else if (it->kind == VZ_Y_MAP && it->n == 1) {
			if (as_string(x, it->keys[0], key, &name) == 0)
				tenant_add(x, t, it->keys[0], name, conn, trusted, it->items[0], tname);
		} else {
			cerr(x, it, "each item of '%s' must be a project name, {NAME: {options}} or a project group "
			     "{projects: [...]}, not %s", key, it->kind == VZ_Y_MAP ? "a mapping of several keys" :
			     kind_name(it));
		}
		free(name);
	}
}

static void read_tenant(cctx *x, const vz_ynode *m, void *ent, const char *what)
{
	static const char *const keys[] = {"name", "source", NULL};
	vz_conf_tenant *t = ent;
	check_keys(x, m, keys, what);
	const vz_ynode *src = get(m, "source");
	if (!src) {
		cerr(x, m, "%s needs 'source' (connection names, each with config-projects and untrusted-projects)", what);
		return;
	}
	if (src->kind != VZ_Y_MAP) {
		cerr(x, src, "'source' of %s must be a mapping of connection names, not %s", what, kind_name(src));
		return;
	}
	size_t cap = 0;
	for (size_t i = 0; i < src->n; i++) {
		const vz_ynode *c = src->items[i];
		for (size_t k = 0; c->kind == VZ_Y_MAP && k < c->n; k++) {
			const vz_ynode *l = c->items[k];
			if (l->kind == VZ_Y_SEQ)
				for (size_t j = 0; j < l->n; j++) {
					const vz_ynode *ps = l->items[j]->kind == VZ_Y_MAP ? vz_ymap_get(l->items[j], "projects")
											 : NULL;
					cap += ps && ps->kind == VZ_Y_SEQ ? ps->n : 1;
				}
		}
	}
	t->projects = vz_xcalloc(cap ? cap : 1, sizeof(*t->projects));
	/* Zuul's order: every source's config projects, then every source's untrusted projects */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < src->n; i++) {
			const vz_ynode *ck = src->keys[i], *c = src->items[i];
			char kb[80];
			if (pass == 0 && !vz_config_connection(x->c, ck->str)) {
				cerr(x, ck, "unknown connection '%s' in 'source' of %s; define it under 'connections'",
				     shown(ck, kb, sizeof(kb)), what);
				continue;
			}
			if (!vz_config_connection(x->c, ck->str))
				continue;
			if (c->kind != VZ_Y_MAP) {
				if (pass == 0)
					cerr(x, c, "connection '%s' in %s must map config-projects and untrusted-projects, "
					     "not %s", ck->str, what, kind_name(c));
				continue;
			}
			if (pass == 0) {
				static const char *const ckeys[] = {"config-projects", "untrusted-projects", NULL};
				char w2[512];
				snprintf(w2, sizeof(w2), "connection '%s' of %s", ck->str, what);
				check_keys(x, c, ckeys, w2);
			}
			const char *key = pass == 0 ? "config-projects" : "untrusted-projects";
			const vz_ynode *l = get(c, key);
			if (l)
				read_tenant_list(x, t, l, key, ck->str, pass == 0, t->name);
		}
}

typedef void (*entry_fn)(cctx *x, const vz_ynode *m, void *ent, const char *what);

/* Reads the list under key: each entry a mapping with a unique 'name'. Every entity struct
 * starts with its char *name. noun: "node", used in messages. */
static void read_list(cctx *x, const vz_ynode *root, const char *key, const char *noun, size_t size,
		      void **arr, size_t *count, entry_fn fn)
{
	const vz_ynode *v = get(root, key);
	if (!v)
		return;
	if (v->kind != VZ_Y_SEQ) {
		cerr(x, v, "'%s' must be a list of mappings (each starting with '- name: ...'), not %s",
		     key, kind_name(v));
		return;
	}
	char *base = vz_xcalloc(v->n ? v->n : 1, size);
	const vz_ynode **names = vz_xcalloc(v->n ? v->n : 1, sizeof(*names));
	*arr = base;
	for (size_t i = 0; i < v->n; i++) {
		const vz_ynode *m = v->items[i];
		char what[256], b[80];
		if (m->kind != VZ_Y_MAP) {
			cerr(x, m, "each entry of '%s' must be a mapping, not %s", key, kind_name(m));
			continue;
		}
		const vz_ynode *nn = get(m, "name");
		char *name = NULL;
		if (!nn) {
			cerr(x, m, "a %s needs a 'name'", noun);
			continue;
		}
		if (as_string(x, nn, "name", &name) != 0)
			continue;
		size_t dup = SIZE_MAX;
		for (size_t j = 0; j < *count; j++)
			if (strcmp(names[j]->str, name) == 0)
				dup = j;
		if (dup != SIZE_MAX) {
			cerr(x, nn, "%s '%s' is already defined at line %d", noun, shown(nn, b, sizeof(b)),
			     names[dup]->line);
			free(name);
			continue;
		}
		snprintf(what, sizeof(what), "%s '%s'", noun, shown(nn, b, sizeof(b)));
		char *ent = base + *count * size;
		*(char **)ent = name;
		names[*count] = nn;
		(*count)++;
		fn(x, m, ent, what);
	}
	free(names);
}

/* ---- defaults and directories ---- */

/* The directory is the real path of the file's directory when the file exists (a symlinked
 * config file keeps its relative paths next to the link, as the user sees it), else the directory
 * part as given. */
static void set_paths(vz_config *c, const char *fname)
{
	const char *slash = strrchr(fname, '/');
	const char *base = slash ? slash + 1 : fname;
	char *given;
	struct stat st;
	if (!slash)
		given = vz_xstrdup(".");
	else if (slash == fname)
		given = vz_xstrdup("/");
	else if (!(given = strndup(fname, (size_t)(slash - fname))))
		abort();
	char *real = stat(fname, &st) == 0 ? realpath(given, NULL) : NULL;
	if (real) {
		free(given);
		c->dir = real;
		c->path = vz_path_join(real, base);
		return;
	}
	c->dir = given;
	char cwd[PATH_MAX];
	if (fname[0] != '/' && getcwd(cwd, sizeof(cwd)))
		c->path = vz_path_join(cwd, fname);
	else
		c->path = vz_xstrdup(fname);
}

static void set_defaults(vz_config *c)
{
	if (!c->state_dir)
		c->state_dir = vz_path_join(c->dir, "state");
	if (!c->log_level)
		c->log_level = vz_xstrdup("info");
	if (!c->scheduler.listen)
		c->scheduler.listen = vz_xstrdup("tcp://127.0.0.1:7400");
	if (!c->scheduler.admin) {
		size_t n = strlen(c->state_dir) + sizeof("ipc:///admin.sock");
		c->scheduler.admin = vz_xcalloc(1, n);
		snprintf(c->scheduler.admin, n, "ipc://%s/admin.sock", c->state_dir);
	}
	if (!c->executor.name) {
		char host[256];
		if (gethostname(host, sizeof(host)) != 0 || !host[0])
			vz_strlcpy(host, "localhost", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		c->executor.name = vz_xstrdup(host);
	}
	if (!c->executor.scheduler) {
		/* a wildcard bind address is not something to connect to */
		const char *l = c->scheduler.listen;
		const char *port = NULL;
		if (vz_startswith(l, "tcp://*:"))
			port = l + 8;
		else if (vz_startswith(l, "tcp://0.0.0.0:"))
			port = l + 14;
		if (port) {
			size_t n = strlen(port) + sizeof("tcp://127.0.0.1:");
			c->executor.scheduler = vz_xcalloc(1, n);
			snprintf(c->executor.scheduler, n, "tcp://127.0.0.1:%s", port);
		} else {
			c->executor.scheduler = vz_xstrdup(l);
		}
	}
	if (!c->executor.work_dir)
		c->executor.work_dir = vz_path_join(c->state_dir, "executor");
}

/* ---- entry points ---- */

int vz_config_parse(vz_config **out, const char *data, size_t len, const char *fname, vz_buf *diags,
		    vz_err *e)
{
	static const char *const keys[] = {"state_dir", "log_level", "scheduler", "executor",
					   "connections", "nodes", "pipelines", "jobs", "projects",
					   "tenants", NULL};
	static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
	vz_ynode *root = NULL;
	vz_err ye = {0};
	cctx x;
	int rc = 0;
	*out = NULL;
	memset(&x, 0, sizeof(x));
	x.fname = fname ? fname : "<config>";
	x.c = vz_xcalloc(1, sizeof(*x.c));
	vz_config *c = x.c;
	set_paths(c, x.fname);
	c->scheduler.lease_ms = 15000;
	c->scheduler.heartbeat_ms = 1000;
	c->executor.capacity = 4;
	c->executor.merge_capacity = 2;
	c->executor.min_avail_mem = 5;
	c->executor.min_avail_disk = 5;
	c->executor.disk_limit_per_job = 250;

	if ((rc = vz_yaml_parse(&root, data, len, x.fname, &ye)) != 0) {
		if (diags)
			vz_buf_printf(diags, "%s\n", vz_err_msg(&ye));
		vz_err_set(e, rc, "%s", vz_err_msg(&ye));
		goto out;
	}
	if (root && root->kind != VZ_Y_MAP) {
		cerr(&x, root, "the site configuration must be a mapping of keys (state_dir, scheduler, "
		     "nodes, ...), not %s", kind_name(root));
		goto out;
	}
	if (root) {
		check_keys(&x, root, keys, "the site configuration");
		get_path(&x, root, "state_dir", &c->state_dir);
		if (get_str(&x, root, "log_level", &c->log_level) == 1 && !one_of(c->log_level, levels))
			cerr(&x, get(root, "log_level"), "'log_level' must be debug, info, warn or error, "
			     "not '%s'", c->log_level);
		read_scheduler(&x, root);
		read_executor(&x, root);
		read_list(&x, root, "connections", "connection", sizeof(vz_conf_connection),
			  (void **)&c->connections, &c->nconnections, read_connection);
		read_list(&x, root, "nodes", "node", sizeof(vz_conf_node), (void **)&c->nodes,
			  &c->nnodes, read_node);
		read_list(&x, root, "pipelines", "pipeline", sizeof(vz_conf_pipeline),
			  (void **)&c->pipelines, &c->npipelines, read_pipeline);
		read_list(&x, root, "jobs", "job", sizeof(vz_conf_job), (void **)&c->jobs, &c->njobs,
			  read_job);
		read_list(&x, root, "projects", "project", sizeof(vz_conf_project),
			  (void **)&c->projects, &c->nprojects, read_project);
		read_list(&x, root, "tenants", "tenant", sizeof(vz_conf_tenant), (void **)&c->tenants,
			  &c->ntenants, read_tenant);
	}
	set_defaults(c);
out:
	if (rc == 0 && x.nerr)
		rc = VZ_EINVAL;
	report(&x, diags, e);
	vz_ynode_free(root);
	if (rc) {
		vz_config_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int vz_config_load(vz_config **out, const char *path, vz_buf *diags, vz_err *e)
{
	vz_buf b = VZ_BUF_INIT(VZ_YAML_MAX_INPUT);
	vz_err fe = {0};
	*out = NULL;
	int rc = vz_read_file(path, VZ_YAML_MAX_INPUT, &b, &fe);
	if (rc) {
		if (diags)
			vz_buf_printf(diags, "%s\n", vz_err_msg(&fe));
		vz_err_set(e, rc, "%s", vz_err_msg(&fe));
	} else {
		rc = vz_config_parse(out, b.ptr ? b.ptr : "", b.len, path, diags, e);
	}
	vz_buf_free(&b);
	return rc;
}

void vz_config_free(vz_config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->dir);
	free(c->state_dir);
	free(c->log_level);
	free(c->scheduler.listen);
	free(c->scheduler.admin);
	free(c->scheduler.curve_key);
	free(c->scheduler.curve_executors);
	free(c->executor.curve_key);
	free(c->executor.scheduler_key);
	free(c->executor.zone);
	free(c->executor.name);
	free(c->executor.scheduler);
	free_strv(c->executor.labels, c->executor.nlabels);
	free(c->executor.work_dir);
	for (size_t i = 0; i < c->nconnections; i++) {
		free(c->connections[i].name);
		free(c->connections[i].driver);
		free(c->connections[i].baseurl);
		free(c->connections[i].canonical_hostname);
		free(c->connections[i].user);
		free(c->connections[i].ssh_key);
		free(c->connections[i].known_hosts);
		free(c->connections[i].password_file);
		free(c->connections[i].password_env);
		free(c->connections[i].ca_file);
	}
	free(c->connections);
	for (size_t i = 0; i < c->nnodes; i++) {
		vz_conf_node *n = &c->nodes[i];
		free(n->name);
		free(n->connection);
		free(n->host);
		free(n->user);
		free(n->key);
		free(n->known_hosts);
		free(n->host_key);
		free(n->zone);
		free_strv(n->labels, n->nlabels);
	}
	free(c->nodes);
	for (size_t i = 0; i < c->npipelines; i++) {
		free(c->pipelines[i].name);
		free(c->pipelines[i].manager);
	}
	free(c->pipelines);
	for (size_t i = 0; i < c->njobs; i++) {
		free(c->jobs[i].name);
		free_strv(c->jobs[i].run, c->jobs[i].nrun);
		free(c->jobs[i].label);
	}
	free(c->jobs);
	for (size_t i = 0; i < c->nprojects; i++) {
		vz_conf_project *p = &c->projects[i];
		free(p->name);
		free(p->connection);
		free(p->default_branch);
		for (size_t j = 0; j < p->npipelines; j++) {
			free(p->pipelines[j].pipeline);
			free_strv(p->pipelines[j].jobs, p->pipelines[j].njobs);
		}
		free(p->pipelines);
	}
	free(c->projects);
	for (size_t i = 0; i < c->ntenants; i++) {
		vz_conf_tenant *t = &c->tenants[i];
		for (size_t j = 0; j < t->nprojects; j++) {
			vz_conf_tenant_project *p = &t->projects[j];
			free(p->name);
			free(p->connection);
			free_strv(p->include, p->ninclude);
			free_strv(p->exclude, p->nexclude);
			free(p->load_branch);
		}
		free(t->projects);
		free(t->name);
	}
	free(c->tenants);
	free(c);
}

#define LOOKUP(fn, type, arr, count)                                      \
	const type *fn(const vz_config *c, const char *name)              \
	{                                                                 \
		if (!c || !name)                                          \
			return NULL;                                      \
		for (size_t i = 0; i < c->count; i++)                     \
			if (c->arr[i].name && strcmp(c->arr[i].name, name) == 0) \
				return &c->arr[i];                        \
		return NULL;                                              \
	}

LOOKUP(vz_config_connection, vz_conf_connection, connections, nconnections)
LOOKUP(vz_config_node, vz_conf_node, nodes, nnodes)
LOOKUP(vz_config_pipeline, vz_conf_pipeline, pipelines, npipelines)
LOOKUP(vz_config_job, vz_conf_job, jobs, njobs)
LOOKUP(vz_config_project, vz_conf_project, projects, nprojects)
LOOKUP(vz_config_tenant, vz_conf_tenant, tenants, ntenants)
