/* vz_zconf_parse: reads Zuul configuration files into positioned objects. Sources are read in
 * tenant order; all stanzas are collected first and then parsed by type in Zuul's order (pipelines,
 * nodesets, secrets, semaphores, queues, jobs, templates, projects) so that references resolve
 * whatever file they sit in. Every problem is recorded with its position; a broken object is left
 * out, as Zuul leaves it out, and loading goes on so all errors are reported at once. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_buf.h"
#include "vz_secrets.h"
#include "vz_util.h"
#include "vz_zconf_int.h"

/* ---- errors ---- */

char *zc_vformat(const zc_pos *p, const char *fmt, va_list ap)
{
	vz_buf b = VZ_BUF_INIT(8192);
	if (p && p->f)
		vz_buf_printf(&b, "%s:%d:%d: ", p->f->fname, p->line, p->col);
	vz_buf_vprintf(&b, fmt, ap);
	if (p && p->f)
		vz_buf_printf(&b, " (project %s, branch %s)", p->f->src->project, p->f->src->branch);
	if (b.failed == VZ_ENOMEM) {
		vz_buf_free(&b);
		return NULL;
	}
	return vz_buf_detach(&b);
}

char *zc_format(const zc_pos *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = zc_vformat(p, fmt, ap);
	va_end(ap);
	return s;
}

void zc_error(vz_zconf *z, const zc_pos *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = zc_vformat(p, fmt, ap);
	va_end(ap);
	if (!s)
		return;
	if (vz_map_get(z->errset, s)) { /* the same problem found twice (e.g. on two branches) */
		free(s);
		return;
	}
	z->nerrors++;
	zc_errent *en = NULL;
	if (z->errors.n >= VZ_ZCONF_MAX_ERRORS || !(en = calloc(1, sizeof(*en))) || vz_map_set(z->errset, s, en) ||
	    zc_vec_push(&z->errors, en)) {
		if (en)
			vz_map_del(z->errset, s);
		free(en);
		free(s);
		return;
	}
	en->msg = s;
	en->fidx = p && p->f ? p->f->idx : (size_t)-1;
	en->line = p ? p->line : 0;
	en->col = p ? p->col : 0;
}

static zc_pos at(const zc_file *f, const vz_ynode *n)
{
	zc_pos p = { f, n ? n->line : 0, n ? n->col : 0 };
	return p;
}

/* ---- scalar helpers ---- */

static const char *kind_name(const vz_ynode *n)
{
	if (!n)
		return "nothing";
	if (n->kind == VZ_Y_MAP)
		return "a mapping";
	if (n->kind == VZ_Y_SEQ)
		return "a list";
	int b;
	long long i;
	double d;
	if (vz_yscalar_is_null(n))
		return "null";
	if (vz_yscalar_bool(n, &b) == 0)
		return "a boolean";
	if (vz_yscalar_int(n, -(1LL << 62), 1LL << 62, &i) == 0)
		return "an integer";
	if (vz_yscalar_float(n, &d) == 0)
		return "a number";
	return "a string";
}

/* A string scalar: quoted, or plain and not typed as something else (as voluptuous `str`). */
static int is_str(const vz_ynode *n)
{
	if (!n || n->kind != VZ_Y_SCALAR || strlen(n->str) != n->len)
		return 0;
	return strcmp(kind_name(n), "a string") == 0;
}

static int want_str(vz_zconf *z, const zc_file *f, const vz_ynode *n, const char *what)
{
	if (is_str(n))
		return 1;
	zc_pos p = at(f, n);
	zc_error(z, &p, "%s must be a string, not %s", what, kind_name(n));
	return 0;
}

static int want_bool(vz_zconf *z, const zc_file *f, const vz_ynode *n, const char *what, int *out)
{
	if (n && vz_yscalar_bool(n, out) == 0)
		return 1;
	zc_pos p = at(f, n);
	zc_error(z, &p, "%s must be a boolean (true or false), not %s", what, kind_name(n));
	return 0;
}

static int want_int(vz_zconf *z, const zc_file *f, const vz_ynode *n, const char *what, long long min, long long *out)
{
	if (n && vz_yscalar_int(n, min, 1LL << 53, out) == 0)
		return 1;
	zc_pos p = at(f, n);
	zc_error(z, &p, "%s must be an integer of at least %lld, not %s", what, min, kind_name(n));
	return 0;
}

/* A string or a list of strings, as Zuul's as_list; returns a JSON array or NULL (error recorded). */
static json_t *str_or_list(vz_zconf *z, const zc_file *f, const vz_ynode *n, const char *what)
{
	json_t *a = json_array();
	if (!a)
		return NULL;
	if (n->kind == VZ_Y_SEQ) {
		int ok = 1;
		for (size_t i = 0; i < n->n; i++) {
			if (!want_str(z, f, n->items[i], what))
				ok = 0;
			else
				json_array_append_new(a, json_string(n->items[i]->str));
		}
		if (ok)
			return a;
	} else if (want_str(z, f, n, what)) {
		json_array_append_new(a, json_string(n->str));
		return a;
	}
	json_decref(a);
	return NULL;
}

/* Lists the allowed keys in an unknown-key error. */
static void unknown_key(vz_zconf *z, const zc_file *f, const vz_ynode *key, const char *where,
			const char *const *allowed)
{
	vz_buf b = VZ_BUF_INIT(4096);
	for (size_t i = 0; allowed[i]; i++)
		vz_buf_printf(&b, "%s%s", i ? ", " : "", allowed[i]);
	zc_pos p = at(f, key);
	zc_error(z, &p, "unknown attribute \"%s\" in %s (allowed: %s)", key->str, where, vz_buf_cstr(&b));
	vz_buf_free(&b);
}

static int in_list(const char *s, const char *const *l)
{
	for (size_t i = 0; l[i]; i++)
		if (strcmp(l[i], s) == 0)
			return 1;
	return 0;
}

/* Checks every key of map m is in allowed; records each unknown one. Returns 1 when all known. */
static int check_keys(vz_zconf *z, const zc_file *f, const vz_ynode *m, const char *where, const char *const *allowed)
{
	int ok = 1;
	for (size_t i = 0; i < m->n; i++)
		if (!in_list(m->keys[i]->str, allowed)) {
			unknown_key(z, f, m->keys[i], where, allowed);
			ok = 0;
		}
	return ok;
}

static json_t *jpos(const vz_ynode *n)
{
	json_t *a = json_array();
	json_array_append_new(a, json_integer(n->line));
	json_array_append_new(a, json_integer(n->col));
	return a;
}

static int compile_rx(vz_zconf *z, const zc_file *f, const vz_ynode *n, const char *pattern, int negate, zc_rx *out,
		      const char *what)
{
	char msg[300];
	int rc = zc_rx_compile(z->rxcache, out, pattern, negate, msg, sizeof(msg));
	if (rc) {
		zc_pos p = at(f, n);
		zc_error(z, &p, "%s: bad regex \"%s\": %s", what, pattern, msg);
		return 0;
	}
	return 1;
}

/* A regex list: a string, or a list of strings and {regex, negate} mappings. Returns the JSON form
 * (strings, or objects for negated ones) and fills l. NULL on error (recorded). */
static json_t *rx_list(vz_zconf *z, const zc_file *f, const vz_ynode *n, const char *what, zc_rxlist *l)
{
	static const char *const rx_keys[] = { "regex", "negate", NULL };
	size_t cnt = n->kind == VZ_Y_SEQ ? n->n : 1;
	json_t *a = json_array();
	int ok = a != NULL;
	l->v = calloc(cnt ? cnt : 1, sizeof(*l->v));
	l->n = 0;
	if (!l->v)
		ok = 0;
	for (size_t i = 0; ok && i < cnt; i++) {
		const vz_ynode *it = n->kind == VZ_Y_SEQ ? n->items[i] : n;
		const char *pat = NULL;
		int neg = 0;
		const vz_ynode *pn = it;
		if (it->kind == VZ_Y_MAP) {
			if (!check_keys(z, f, it, what, rx_keys)) {
				ok = 0;
				break;
			}
			pn = vz_ymap_get(it, "regex");
			if (!pn) {
				zc_pos p = at(f, it);
				zc_error(z, &p, "%s: a regex mapping needs \"regex\"", what);
				ok = 0;
				break;
			}
			const vz_ynode *nn = vz_ymap_get(it, "negate");
			if (nn && !want_bool(z, f, nn, "negate", &neg)) {
				ok = 0;
				break;
			}
		}
		if (!want_str(z, f, pn, what)) {
			ok = 0;
			continue;
		}
		pat = pn->str;
		if (!compile_rx(z, f, pn, pat, neg, &l->v[l->n], what)) {
			ok = 0;
			continue;
		}
		l->n++;
		json_array_append_new(a, neg ? json_pack("{s:s,s:b}", "regex", pat, "negate", 1) : json_string(pat));
	}
	if (!ok) {
		zc_rxlist_free(l);
		json_decref(a);
		return NULL;
	}
	return a;
}

/* ---- nodesets ---- */

static json_t *parse_nodeset_body(vz_zconf *z, const zc_file *f, const vz_ynode *m, int named);

static json_t *parse_nodes(vz_zconf *z, const zc_file *f, const vz_ynode *m)
{
	static const char *const node_keys[] = { "name", "label", NULL };
	static const char *const group_keys[] = { "name", "nodes", NULL };
	int ok = 1;
	json_t *nodes = json_array(), *groups = json_array(), *seen = json_object();
	const vz_ynode *nn = vz_ymap_get(m, "nodes"), *gn = vz_ymap_get(m, "groups");
	if (nn && nn->kind == VZ_Y_MAP) /* a single node */
		goto one;
	if (nn && nn->kind != VZ_Y_SEQ) {
		zc_pos p = at(f, nn);
		zc_error(z, &p, "nodeset nodes must be a list of {name, label}, not %s", kind_name(nn));
		ok = 0;
	}
one:
	for (size_t i = 0; ok && nn && i < (nn->kind == VZ_Y_SEQ ? nn->n : 1); i++) {
		const vz_ynode *it = nn->kind == VZ_Y_SEQ ? nn->items[i] : nn;
		if (it->kind != VZ_Y_MAP) {
			zc_pos p = at(f, it);
			zc_error(z, &p, "a nodeset node must be a mapping with name and label, not %s", kind_name(it));
			ok = 0;
			continue;
		}
		if (!check_keys(z, f, it, "a nodeset node", node_keys)) {
			ok = 0;
			continue;
		}
		const vz_ynode *name = vz_ymap_get(it, "name"), *label = vz_ymap_get(it, "label");
		if (!name || !label) {
			zc_pos p = at(f, it);
			zc_error(z, &p, "a nodeset node needs %s", !name ? "a name" : "a label");
			ok = 0;
			continue;
		}
		json_t *names = str_or_list(z, f, name, "node name");
		if (!names || !want_str(z, f, label, "node label")) {
			json_decref(names);
			ok = 0;
			continue;
		}
		size_t k;
		json_t *v;
		json_array_foreach(names, k, v) {
			if (json_object_get(seen, json_string_value(v))) {
				zc_pos p = at(f, name);
				zc_error(z, &p, "duplicate node name \"%s\" in nodeset", json_string_value(v));
				ok = 0;
			}
			json_object_set_new(seen, json_string_value(v), json_true());
		}
		json_array_append_new(nodes, json_pack("{s:o,s:s}", "name", names, "label", label->str));
	}
	if (gn && gn->kind != VZ_Y_SEQ) {
		zc_pos p = at(f, gn);
		zc_error(z, &p, "nodeset groups must be a list of {name, nodes}, not %s", kind_name(gn));
		ok = 0;
	}
	for (size_t i = 0; ok && gn && gn->kind == VZ_Y_SEQ && i < gn->n; i++) {
		const vz_ynode *it = gn->items[i];
		if (it->kind != VZ_Y_MAP || !check_keys(z, f, it, "a nodeset group", group_keys)) {
			if (it->kind != VZ_Y_MAP) {
				zc_pos p = at(f, it);
				zc_error(z, &p, "a nodeset group must be a mapping with name and nodes, not %s", kind_name(it));
			}
			ok = 0;
			continue;
		}
		const vz_ynode *name = vz_ymap_get(it, "name"), *gnodes = vz_ymap_get(it, "nodes");
		if (!name || !gnodes) {
			zc_pos p = at(f, it);
			zc_error(z, &p, "a nodeset group needs %s", !name ? "a name" : "nodes");
			ok = 0;
			continue;
		}
		json_t *members = str_or_list(z, f, gnodes, "group node");
		if (!members || !want_str(z, f, name, "group name")) {
			json_decref(members);
			ok = 0;
			continue;
		}
		size_t k;
		json_t *v;
		json_array_foreach(members, k, v) {
			if (!json_object_get(seen, json_string_value(v))) {
				zc_pos p = at(f, gnodes);
				zc_error(z, &p, "group \"%s\" names node \"%s\", which is not in the nodeset", name->str,
					 json_string_value(v));
				ok = 0;
			}
		}
		json_array_append_new(groups, json_pack("{s:s,s:o}", "name", name->str, "nodes", members));
	}
	json_decref(seen);
	if (!ok) {
		json_decref(nodes);
		json_decref(groups);
		return NULL;
	}
	return json_pack("{s:o,s:o}", "nodes", nodes, "groups", groups);
}

static json_t *parse_nodeset_body(vz_zconf *z, const zc_file *f, const vz_ynode *m, int named)
{
	static const char *const named_keys[] = { "name", "description", "nodes", "groups", "alternatives", NULL };
	static const char *const inline_keys[] = { "nodes", "groups", "alternatives", NULL };
	if (!check_keys(z, f, m, named ? "nodeset" : "an inline nodeset", named ? named_keys : inline_keys))
		return NULL;
	const vz_ynode *alt = vz_ymap_get(m, "alternatives");
	if (alt) {
		if (vz_ymap_get(m, "nodes") || vz_ymap_get(m, "groups")) {
			zc_pos p = at(f, alt);
			zc_error(z, &p, "a nodeset with alternatives may not also have nodes or groups");
			return NULL;
		}
		if (alt->kind != VZ_Y_SEQ) {
			zc_pos p = at(f, alt);
			zc_error(z, &p, "alternatives must be a list of nodeset names or inline nodesets, not %s",
				 kind_name(alt));
			return NULL;
		}
		json_t *a = json_array();
		for (size_t i = 0; i < alt->n; i++) {
			const vz_ynode *it = alt->items[i];
			json_t *one = NULL;
			if (it->kind == VZ_Y_MAP) {
				if (vz_ymap_get(it, "alternatives")) {
					zc_pos p = at(f, it);
					zc_error(z, &p, "nested alternatives are not allowed");
				} else
					one = parse_nodeset_body(z, f, it, 0);
			} else if (want_str(z, f, it, "a nodeset alternative")) {
				one = json_pack("{s:s}", "ref", it->str);
			}
			if (!one) {
				json_decref(a);
				return NULL;
			}
			json_array_append_new(a, one);
		}
		return json_pack("{s:o}", "alternatives", a);
	}
	return parse_nodes(z, f, m);
}

/* ---- the job attribute table ---- */

enum { T_STR, T_BOOL, T_INT, T_MAP, T_STRLIST, T_RXLIST, T_PLAYBOOKS, T_NODESET, T_SECRETS, T_REQPROJ, T_DEPS,
       T_ROLES, T_SCALAR, T_ANY, T_PARENT };

typedef struct zc_attrspec {
	const char *name;
	int type;
} zc_attrspec;

/* Every job attribute Zuul documents (docs/zuul-config.md lists how each inherits). */
static const zc_attrspec job_attrs[] = {
	{ "name", T_STR }, { "parent", T_PARENT }, { "description", T_STR }, { "abstract", T_BOOL },
	{ "final", T_BOOL }, { "protected", T_BOOL }, { "intermediate", T_BOOL }, { "branches", T_RXLIST },
	{ "files", T_RXLIST }, { "irrelevant-files", T_RXLIST }, { "nodeset", T_NODESET }, { "timeout", T_INT },
	{ "post-timeout", T_INT }, { "attempts", T_INT }, { "voting", T_BOOL }, { "run", T_PLAYBOOKS },
	{ "pre-run", T_PLAYBOOKS }, { "post-run", T_PLAYBOOKS }, { "cleanup-run", T_PLAYBOOKS }, { "vars", T_MAP },
	{ "extra-vars", T_MAP }, { "host-vars", T_MAP }, { "group-vars", T_MAP }, { "secrets", T_SECRETS },
	{ "required-projects", T_REQPROJ }, { "dependencies", T_DEPS }, { "semaphores", T_STRLIST },
	{ "semaphore", T_STRLIST }, { "roles", T_ROLES }, { "tags", T_STRLIST }, { "provides", T_STRLIST },
	{ "requires", T_STRLIST }, { "hold-following-changes", T_BOOL }, { "post-review", T_BOOL },
	{ "allowed-projects", T_STRLIST }, { "failure-output", T_RXLIST }, { "override-checkout", T_STR },
	{ "override-branch", T_STR }, { "success-message", T_STR }, { "failure-message", T_STR },
	{ "success-url", T_STR }, { "failure-url", T_STR }, { "match-on-config-updates", T_BOOL },
	{ "workspace-scheme", T_STR }, { "ansible-version", T_SCALAR }, { "ansible-split-streams", T_BOOL },
	{ "include-vars", T_ANY }, { "deduplicate", T_ANY }, { "image-build-name", T_STR },
	{ NULL, 0 },
};

#define NJOB_ATTRS (sizeof(job_attrs) / sizeof(job_attrs[0]))

static const zc_attrspec *job_attr(const char *name)
{
	for (size_t i = 0; job_attrs[i].name; i++)
		if (strcmp(job_attrs[i].name, name) == 0)
			return &job_attrs[i];
	return NULL;
}

/* Records an error when mapping m sets zuul or nodepool. */
static int reserved_var(vz_zconf *z, const zc_file *f, const vz_ynode *m, const char *what)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->keys[i]->str, "zuul") == 0 || strcmp(m->keys[i]->str, "nodepool") == 0) {
			zc_pos p = at(f, m->keys[i]);
			zc_error(z, &p, "%s: variables named \"zuul\" or \"nodepool\" are reserved for Zuul's own", what);
			return 1;
		}
	return 0;
}

/* Normalises one attribute value; NULL on error (recorded). Fills matchers of j where needed. */
static json_t *norm_attr(vz_zconf *z, const zc_file *f, const zc_attrspec *a, const vz_ynode *n, zc_job *j)
{
	char what[96];
	snprintf(what, sizeof(what), "job attribute \"%s\"", a->name);
	switch (a->type) {
	case T_STR:
		return want_str(z, f, n, what) ? json_string(n->str) : NULL;
	case T_SCALAR:
		if (n->kind == VZ_Y_SCALAR && strlen(n->str) == n->len && !vz_yscalar_is_null(n))
			return json_string(n->str);
		{
			zc_pos p = at(f, n);
			zc_error(z, &p, "%s must be a string or number, not %s", what, kind_name(n));
		}
		return NULL;
	case T_BOOL: {
		int b;
		return want_bool(z, f, n, what, &b) ? json_boolean(b) : NULL;
	}
	case T_INT: {
		long long v;
		return want_int(z, f, n, what, strcmp(a->name, "attempts") == 0 ? 1 : 0, &v) ? json_integer(v) : NULL;
	}
	case T_MAP:
		if (n->kind == VZ_Y_MAP) {
			/* zuul and nodepool are Zuul's own variables: jobs may not set them */
			int per_host = strcmp(a->name, "host-vars") == 0 || strcmp(a->name, "group-vars") == 0;
			for (size_t i = 0; i < n->n; i++) {
				const vz_ynode *m = per_host ? n->items[i] : n;
				if (per_host && m->kind != VZ_Y_MAP) {
					zc_pos p = at(f, m);
					zc_error(z, &p, "%s: the variables of \"%s\" must be a mapping, not %s", what, n->keys[i]->str,
						 kind_name(m));
					return NULL;
				}
				if (reserved_var(z, f, m, what))
					return NULL;
				if (!per_host)
					break;
			}
			return vz_ynode_to_json(n);
		}
		{
			zc_pos p = at(f, n);
			zc_error(z, &p, "%s must be a mapping, not %s", what, kind_name(n));
		}
		return NULL;
	case T_ANY:
		return vz_ynode_to_json(n);
	case T_STRLIST:
		return str_or_list(z, f, n, what);
	case T_RXLIST: {
		zc_rxlist *l = strcmp(a->name, "branches") == 0 ? &j->branches
			       : strcmp(a->name, "files") == 0 ? &j->files
			       : strcmp(a->name, "irrelevant-files") == 0 ? &j->irrelevant
								     : NULL;
		zc_rxlist tmp = { 0 };
		json_t *r = rx_list(z, f, n, what, l ? l : &tmp);
		zc_rxlist_free(&tmp);
		if (r && l == &j->branches)
			j->has_branches = 1;
		return r;
	}
	case T_PLAYBOOKS: {
		static const char *const pb_keys[] = { "name", "semaphores", "semaphore", "cleanup", NULL };
		json_t *arr = json_array();
		size_t cnt = n->kind == VZ_Y_SEQ ? n->n : 1;
		for (size_t i = 0; i < cnt; i++) {
			const vz_ynode *it = n->kind == VZ_Y_SEQ ? n->items[i] : n;
			if (it->kind == VZ_Y_MAP) {
				const vz_ynode *nm = vz_ymap_get(it, "name");
				if (!check_keys(z, f, it, "a playbook", pb_keys) || !nm ||
				    !want_str(z, f, nm, "playbook name")) {
					if (!nm) {
						zc_pos p = at(f, it);
						zc_error(z, &p, "a playbook mapping needs \"name\"");
					}
					json_decref(arr);
					return NULL;
				}
				json_array_append_new(arr, json_string(nm->str));
			} else if (want_str(z, f, it, what))
				json_array_append_new(arr, json_string(it->str));
			else {
				json_decref(arr);
				return NULL;
			}
		}
		return arr;
	}
	case T_NODESET:
		if (n->kind == VZ_Y_MAP) {
			json_t *ns = parse_nodeset_body(z, f, n, 0);
			return ns ? json_pack("{s:o}", "inline", ns) : NULL;
		}
		return want_str(z, f, n, "job attribute \"nodeset\" (a name or an inline nodeset)") ? json_string(n->str) : NULL;
	case T_SECRETS: {
		static const char *const s_keys[] = { "name", "secret", "pass-to-parent", NULL };
		json_t *arr = json_array();
		size_t cnt = n->kind == VZ_Y_SEQ ? n->n : 1;
		for (size_t i = 0; i < cnt; i++) {
			const vz_ynode *it = n->kind == VZ_Y_SEQ ? n->items[i] : n;
			const char *name, *secret;
			int ptp = 0;
			if (it->kind == VZ_Y_MAP) {
				const vz_ynode *nm = vz_ymap_get(it, "name"), *sc = vz_ymap_get(it, "secret"),
					       *pp = vz_ymap_get(it, "pass-to-parent");
				if (!check_keys(z, f, it, "a job secret", s_keys) || !nm || !want_str(z, f, nm, "secret name") ||
				    (sc && !want_str(z, f, sc, "secret")) || (pp && !want_bool(z, f, pp, "pass-to-parent", &ptp))) {
					if (!nm) {
						zc_pos p = at(f, it);
						zc_error(z, &p, "a job secret mapping needs \"name\"");
					}
					json_decref(arr);
					return NULL;
				}
				name = nm->str;
				secret = sc ? sc->str : nm->str;
			} else if (want_str(z, f, it, "secret name")) {
				name = secret = it->str;
			} else {
				json_decref(arr);
				return NULL;
			}
			json_array_append_new(arr, json_pack("{s:s,s:s,s:b,s:[ii]}", "name", name, "secret", secret,
							     "pass-to-parent", ptp, "at", it->line, it->col));
		}
		return arr;
	}
	case T_REQPROJ:
	case T_DEPS: {
		static const char *const rp_keys[] = { "name", "override-branch", "override-checkout", NULL };
		static const char *const d_keys[] = { "name", "soft", NULL };
		int deps = a->type == T_DEPS;
		json_t *arr = json_array();
		size_t cnt = n->kind == VZ_Y_SEQ ? n->n : 1;
		for (size_t i = 0; i < cnt; i++) {
			const vz_ynode *it = n->kind == VZ_Y_SEQ ? n->items[i] : n;
			if (it->kind == VZ_Y_MAP) {
				const vz_ynode *nm = vz_ymap_get(it, "name");
				if (!check_keys(z, f, it, deps ? "a dependency" : "a required project", deps ? d_keys : rp_keys) ||
				    !nm || !want_str(z, f, nm, deps ? "dependency name" : "project name")) {
					if (!nm) {
						zc_pos p = at(f, it);
						zc_error(z, &p, "%s mapping needs \"name\"", deps ? "a dependency" : "a required project");
					}
					json_decref(arr);
					return NULL;
				}
				json_t *o = json_pack("{s:s,s:[ii]}", "name", nm->str, "at", it->line, it->col);
				if (deps) {
					int soft = 0;
					const vz_ynode *sn = vz_ymap_get(it, "soft");
					if (sn && !want_bool(z, f, sn, "soft", &soft)) {
						json_decref(o);
						json_decref(arr);
						return NULL;
					}
					json_object_set_new(o, "soft", json_boolean(soft));
				} else {
					const char *ks[] = { "override-checkout", "override-branch" };
					for (int k = 0; k < 2; k++) {
						const vz_ynode *v = vz_ymap_get(it, ks[k]);
						if (v && !want_str(z, f, v, ks[k])) {
							json_decref(o);
							json_decref(arr);
							return NULL;
						}
						if (v)
							json_object_set_new(o, ks[k], json_string(v->str));
					}
				}
				json_array_append_new(arr, o);
			} else if (want_str(z, f, it, deps ? "dependency name" : "project name")) {
				json_t *o = json_pack("{s:s,s:[ii]}", "name", it->str, "at", it->line, it->col);
				if (deps)
					json_object_set_new(o, "soft", json_false());
				json_array_append_new(arr, o);
			} else {
				json_decref(arr);
				return NULL;
			}
		}
		return arr;
	}
	case T_ROLES: {
		static const char *const r_keys[] = { "zuul", "galaxy", "name", NULL };
		if (n->kind != VZ_Y_SEQ) {
			zc_pos p = at(f, n);
			zc_error(z, &p, "%s must be a list of {zuul: PROJECT[, name: NAME]}, not %s", what, kind_name(n));
			return NULL;
		}
		json_t *arr = json_array();
		for (size_t i = 0; i < n->n; i++) {
			const vz_ynode *it = n->items[i];
			if (it->kind != VZ_Y_MAP) {
				zc_pos p = at(f, it);
				zc_error(z, &p, "a role must be a mapping like {zuul: PROJECT}, not %s", kind_name(it));
				json_decref(arr);
				return NULL;
			}
			if (!check_keys(z, f, it, "a role", r_keys)) {
				json_decref(arr);
				return NULL;
			}
			const vz_ynode *zn = vz_ymap_get(it, "zuul"), *gn = vz_ymap_get(it, "galaxy"), *nn = vz_ymap_get(it, "name");
			if ((!zn && !gn) || (zn && !want_str(z, f, zn, "role project")) || (gn && !want_str(z, f, gn, "galaxy role")) ||
			    (nn && !want_str(z, f, nn, "role name"))) {
				if (!zn && !gn) {
					zc_pos p = at(f, it);
					zc_error(z, &p, "a role needs \"zuul\" (the project holding it)");
				}
				json_decref(arr);
				return NULL;
			}
			json_t *o = json_object();
			if (zn) {
				json_object_set_new(o, "zuul", json_string(zn->str));
				/* Zuul's default role name: the project's last path component, less ansible-role- */
				const char *base = strrchr(zn->str, '/');
				base = base ? base + 1 : zn->str;
				if (strncmp(base, "ansible-role-", 13) == 0)
					base += 13;
				json_object_set_new(o, "name", json_string(nn ? nn->str : base));
			} else {
				json_object_set_new(o, "galaxy", json_string(gn->str));
				if (nn)
					json_object_set_new(o, "name", json_string(nn->str));
			}
			json_array_append_new(arr, o);
		}
		return arr;
	}
	default:
		return NULL;
	}
}

/* ---- implied branches ---- */

/* Zuul's _getImpliedBranches: a pragma decides when it says so; otherwise config projects get no
 * implied matcher, nor do projects with a single branch; otherwise the branch the file was read
 * from (or the pragma's implied-branches regexes). Fills branch/rx; returns 1 when one applies. */
static int implied_branches(vz_zconf *z, const zc_file *f, char **branch, zc_rxlist *rx)
{
	int use;
	if (f->pragma_ibm == 1)
		use = 1;
	else if (f->pragma_ibm == 0)
		return 0;
	else
		use = !f->src->trusted && f->src->nbranches > 1;
	if (!use)
		return 0;
	if (f->pragma_ib) {
		size_t k;
		json_t *v;
		rx->v = calloc(json_array_size(f->pragma_ib) + 1, sizeof(*rx->v));
		if (!rx->v)
			return 0;
		json_array_foreach(f->pragma_ib, k, v) {
			char msg[300];
			if (zc_rx_compile(z->rxcache, &rx->v[rx->n], json_string_value(v), 0, msg, sizeof(msg)) == 0)
				rx->n++;
		}
		return 1;
	}
	*branch = vz_xstrdup(f->src->branch);
	(void)z;
	return 1;
}

int zc_job_matches_branch(const zc_job *j, const char *branch)
{
	if (j->has_branches && !zc_rxlist_any(&j->branches, branch))
		return 0;
	if (j->has_implied) {
		if (j->implied_branch && strcmp(j->implied_branch, branch) != 0)
			return 0;
		if (!j->implied_branch && !zc_rxlist_any(&j->implied_rx, branch))
			return 0;
	}
	return 1;
}

int zc_project_matches_branch(const zc_project *p, const char *branch)
{
	if (!p->has_implied)
		return 1;
	if (p->implied_branch)
		return strcmp(p->implied_branch, branch) == 0;
	return zc_rxlist_any(&p->implied_rx, branch);
}

/* ---- jobs ---- */

static void job_free(zc_job *j)
{
	if (!j)
		return;
	free(j->name);
	free(j->parent);
	free(j->implied_branch);
	json_decref(j->attrs);
	json_decref(j->apos);
	zc_rxlist_free(&j->branches);
	zc_rxlist_free(&j->implied_rx);
	zc_rxlist_free(&j->files);
	zc_rxlist_free(&j->irrelevant);
	free(j);
}

/* Parses the attributes of a job (pp = 0) or a project-pipeline variant (pp = 1, name given). */
static zc_job *parse_job(vz_zconf *z, const zc_file *f, const vz_ynode *m, const char *pp_name, const vz_ynode *pp_at)
{
	zc_job *j = vz_xcalloc(1, sizeof(*j));
	int ok = 1;
	j->attrs = json_object();
	j->apos = json_object();
	j->pp = pp_name != NULL;
	j->pos = at(f, pp_at ? pp_at : m);
	j->index = z->job_index++;
	if (pp_name)
		j->name = vz_xstrdup(pp_name);
	for (size_t i = 0; m && i < m->n; i++) {
		const vz_ynode *k = m->keys[i], *v = m->items[i];
		const zc_attrspec *a = job_attr(k->str);
		if (!a) {
			const char *names[NJOB_ATTRS];
			for (size_t x = 0; x < NJOB_ATTRS; x++)
				names[x] = job_attrs[x].name; /* ends with NULL */
			unknown_key(z, f, k, pp_name ? "a project's job variant" : "job", names);
			ok = 0;
			continue;
		}
		if (pp_name && (strcmp(a->name, "name") == 0 || strcmp(a->name, "parent") == 0)) {
			zc_pos p = at(f, k);
			zc_error(z, &p, "\"%s\" cannot be set in a project's job variant (define a job instead)", a->name);
			ok = 0;
			continue;
		}
		if (a->type == T_PARENT) {
			j->parent_pos = at(f, v);
			if (vz_yscalar_is_null(v)) {
				if (!f->src->trusted) {
					zc_pos p = at(f, v);
					zc_error(z, &p, "\"parent: null\" (a base job) is only allowed in a config project");
					ok = 0;
				}
				j->parent_kind = 2;
			} else if (want_str(z, f, v, "job attribute \"parent\"")) {
				j->parent_kind = 1;
				j->parent = vz_xstrdup(v->str);
			} else
				ok = 0;
			continue;
		}
		if (strcmp(a->name, "name") == 0) {
			if (want_str(z, f, v, "job name"))
				j->name = vz_xstrdup(v->str);
			else
				ok = 0;
			continue;
		}
		json_t *val = norm_attr(z, f, a, v, j);
		if (!val) {
			ok = 0;
			continue;
		}
		/* `semaphore` is the old spelling of `semaphores` */
		const char *key = strcmp(a->name, "semaphore") == 0 ? "semaphores" : a->name;
		json_object_set_new(j->attrs, key, val);
		json_object_set_new(j->apos, key, jpos(k));
	}
	if (!j->name) {
		zc_pos p = at(f, m);
		zc_error(z, &p, "a job needs a name");
		ok = 0;
	}
	int abstract = json_is_true(json_object_get(j->attrs, "abstract"));
	if (ok && json_is_true(json_object_get(j->attrs, "intermediate")) && !abstract) {
		zc_pos p = at(f, m);
		zc_error(z, &p, "job \"%s\": an intermediate job must also be abstract", j->name);
		ok = 0;
	}
	/* A job in an untrusted project that uses secrets runs only post-review (Zuul's rule). */
	if (ok && !f->src->trusted && json_array_size(json_object_get(j->attrs, "secrets")) > 0)
		json_object_set_new(j->attrs, "post-review", json_true());
	if (ok && !j->has_branches && !pp_name)
		j->has_implied = implied_branches(z, f, &j->implied_branch, &j->implied_rx);
	if (!ok) {
		job_free(j);
		return NULL;
	}
	return j;
}

/* ---- named objects ---- */

static zc_named *named_new(const char *name, const zc_file *f, const vz_ynode *n, json_t *data)
{
	zc_named *o = vz_xcalloc(1, sizeof(*o));
	o->name = vz_xstrdup(name);
	o->pos = at(f, n);
	o->data = data;
	return o;
}

static void wipe_json(json_t *v, int depth);

static void named_free(zc_named *o)
{
	if (!o)
		return;
	free(o->name);
	json_decref(o->data);
	wipe_json(o->plain, 0);
	json_decref(o->plain);
	free(o);
}

/* Adds a named object unless its name is taken. Zuul tolerates the same object read from another
 * branch of the same project (the first one wins); anything else is a duplicate. */
static void add_named(vz_zconf *z, vz_map *m, zc_vec *list, zc_named *o, const char *type)
{
	zc_named *prior = vz_map_get(m, o->name);
	if (prior) {
		if (strcmp(prior->pos.f->src->project, o->pos.f->src->project) != 0 ||
		    strcmp(prior->pos.f->src->branch, o->pos.f->src->branch) == 0)
			zc_error(z, &o->pos, "%s \"%s\" is already defined at %s:%d:%d", type, o->name, prior->pos.f->fname,
				 prior->pos.line, prior->pos.col);
		named_free(o);
		return;
	}
	if (vz_map_set(m, o->name, o) || zc_vec_push(list, o)) {
		vz_map_del(m, o->name);
		named_free(o);
	}
}

static const vz_ynode *need_name(vz_zconf *z, const zc_file *f, const vz_ynode *m, const char *type)
{
	const vz_ynode *n = vz_ymap_get(m, "name");
	if (!n) {
		zc_pos p = at(f, m);
		zc_error(z, &p, "a %s needs a name", type);
		return NULL;
	}
	char what[64];
	snprintf(what, sizeof(what), "%s name", type);
	return want_str(z, f, n, what) ? n : NULL;
}

static void parse_pipeline(vz_zconf *z, const zc_file *f, const vz_ynode *m)
{
	static const char *const keys[] = {
		"name", "description", "manager", "post-review", "precedence", "supercedes", "trigger", "require",
		"reject", "allow-other-connections", "dequeue-on-new-patchset", "ignore-dependencies",
		"success-message", "failure-message", "merge-conflict-message", "merge-failure-message",
		"no-jobs-message", "footer-message", "enqueue-message", "start-message", "dequeue-message",
		"start", "success", "failure", "merge-conflict", "merge-failure", "no-jobs", "disabled", "dequeue",
		"enqueue", "config-error", "disable-after-consecutive-failures", "window", "window-floor",
		"window-ceiling", "window-increase-type", "window-increase-factor", "window-decrease-type",
		"window-decrease-factor", "success-url", "failure-url", NULL
	};
	static const char *const managers[] = { "independent", "dependent", "serial", "supercedent", NULL };
	static const char *const precedences[] = { "high", "normal", "low", NULL };
	if (!f->src->trusted) {
		zc_pos p = at(f, m);
		zc_error(z, &p, "pipelines may only be defined in config projects");
		return;
	}
	int ok = check_keys(z, f, m, "pipeline", keys);
	const vz_ynode *name = need_name(z, f, m, "pipeline");
	const vz_ynode *mgr = vz_ymap_get(m, "manager");
	if (!mgr) {
		zc_pos p = at(f, m);
		zc_error(z, &p, "pipeline needs a manager (independent, dependent, serial or supercedent)");
		ok = 0;
	} else if (!want_str(z, f, mgr, "pipeline manager") || !in_list(mgr->str, managers)) {
		if (is_str(mgr)) {
			zc_pos p = at(f, mgr);
			zc_error(z, &p, "unknown pipeline manager \"%s\" (independent, dependent, serial or supercedent)",
				 mgr->str);
		}
		ok = 0;
	}
	const vz_ynode *pr = vz_ymap_get(m, "precedence");
	if (pr && (!want_str(z, f, pr, "precedence") || !in_list(pr->str, precedences))) {
		if (is_str(pr)) {
			zc_pos p = at(f, pr);
			zc_error(z, &p, "precedence must be high, normal or low, not \"%s\"", pr->str);
		}
		ok = 0;
	}
	static const char *const bools[] = { "post-review", "allow-other-connections", "dequeue-on-new-patchset",
					     "ignore-dependencies", NULL };
	for (size_t i = 0; bools[i]; i++) {
		const vz_ynode *v = vz_ymap_get(m, bools[i]);
		int b;
		if (v && !want_bool(z, f, v, bools[i], &b))
			ok = 0;
	}
	static const char *const maps[] = { "trigger", "require", "reject", "start", "success", "failure",
					    "merge-conflict", "merge-failure", "no-jobs", "disabled", "dequeue",
					    "enqueue", "config-error", NULL };
	for (size_t i = 0; maps[i]; i++) {
		const vz_ynode *v = vz_ymap_get(m, maps[i]);
		if (v && v->kind != VZ_Y_MAP && !vz_yscalar_is_null(v)) {
			zc_pos p = at(f, v);
			zc_error(z, &p, "pipeline %s must be a mapping of connection names, not %s", maps[i], kind_name(v));
			ok = 0;
		}
	}
	static const char *const ints[] = { "window", "window-floor", "window-ceiling", "window-increase-factor",
					    "window-decrease-factor", "disable-after-consecutive-failures", NULL };
	for (size_t i = 0; ints[i]; i++) {
		const vz_ynode *v = vz_ymap_get(m, ints[i]);
		long long x;
		if (v && !want_int(z, f, v, ints[i], 0, &x))
			ok = 0;
	}
	if (!ok || !name)
		return;
	json_t *d = vz_ynode_to_json(m);
	add_named(z, z->pipelines, &z->pipeline_list, named_new(name->str, f, m, d), "pipeline");
}

static void parse_nodeset(vz_zconf *z, const zc_file *f, const vz_ynode *m)
{
	const vz_ynode *name = need_name(z, f, m, "nodeset");
	json_t *d = parse_nodeset_body(z, f, m, 1);
	if (!name || !d) {
		json_decref(d);
		return;
	}
	add_named(z, z->nodesets, &z->nodeset_list, named_new(name->str, f, m, d), "nodeset");
}

#define ENCRYPTED_TAG "!encrypted/pkcs1-oaep"

/* The key of project (cached for the load; NULL when it has none or it cannot be read, the
 * latter reported once at p). */
static vz_secrets_key *project_key(vz_zconf *z, const zc_src *src, const zc_pos *p)
{
	if (!z->key_fn)
		return NULL;
	if (!z->keys && !(z->keys = vz_map_new()))
		return NULL;
	static char none;
	void *got = vz_map_get(z->keys, src->project);
	if (got)
		return got == &none ? NULL : got;
	vz_secrets_key *k = NULL;
	vz_err ke = { 0 };
	int rc = z->key_fn(&k, z->key_ctx, src->connection, src->project, &ke);
	if (rc || !k) {
		if (rc && rc != VZ_ENOTFOUND)
			zc_error(z, p, "the secrets key of project %s cannot be read: %s", src->project, vz_err_msg(&ke));
		vz_secrets_key_free(k);
		vz_map_set(z->keys, src->project, &none);
		return NULL;
	}
	if (vz_map_set(z->keys, src->project, k) || zc_vec_push(&z->key_list, k)) {
		vz_map_del(z->keys, src->project);
		vz_secrets_key_free(k);
		return NULL;
	}
	return k;
}

/* Zeroes the strings of a decrypted value before it is freed. */
static void wipe_json(json_t *v, int depth)
{
	if (!v || depth > VZ_YAML_MAX_DEPTH + 2)
		return;
	if (json_is_string(v)) {
		char *p = (char *)json_string_value(v);
		memset(p, 0, json_string_length(v));
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x) wipe_json(x, depth + 1);
	} else if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x) wipe_json(x, depth + 1);
	}
}

/* One !encrypted/pkcs1-oaep value: base64 text or a list of base64 chunks (Zuul's
 * EncryptedPKCS1_OAEP). Checked always; decrypted when key is given. Returns the plaintext as a
 * JSON string, json_null() when not decrypted, NULL after reporting an error. */
static json_t *secret_encrypted(vz_zconf *z, const zc_file *f, const char *sname, const char *where,
				const vz_ynode *n, const vz_secrets_key *k)
{
	const char *chunks[4096];
	size_t nc = 0;
	zc_pos p = at(f, n);
	if (n->kind == VZ_Y_SCALAR) {
		chunks[nc++] = n->str;
	} else if (n->kind == VZ_Y_SEQ && n->n > 0 && n->n <= sizeof(chunks) / sizeof(chunks[0])) {
		for (size_t i = 0; i < n->n; i++) {
			if (n->items[i]->kind != VZ_Y_SCALAR || n->items[i]->tag) {
				zc_pos q = at(f, n->items[i]);
				zc_error(z, &q, "secret \"%s\": %s: chunk %zu of an encrypted value must be base64 text, "
					 "not %s", sname, where, i + 1, kind_name(n->items[i]));
				return NULL;
			}
			chunks[nc++] = n->items[i]->str;
		}
	} else {
		zc_error(z, &p, "secret \"%s\": %s: an %s value must be base64 text or a list of 1 to %zu base64 "
			 "chunks, not %s", sname, where, ENCRYPTED_TAG, sizeof(chunks) / sizeof(chunks[0]),
			 n->kind == VZ_Y_SEQ && n->n == 0 ? "an empty list" : kind_name(n));
		return NULL;
	}
	for (size_t i = 0; i < nc; i++) {
		size_t nb = 0;
		if (vz_secrets_chunk_check(chunks[i], &nb) || nb == 0) {
			zc_pos q = n->kind == VZ_Y_SEQ ? at(f, n->items[i]) : p;
			zc_error(z, &q, "secret \"%s\": %s: chunk %zu of %zu is not base64 (vinz encrypt prints a value to "
				 "paste)", sname, where, i + 1, nc);
			return NULL;
		}
	}
	if (!k)
		return json_null();
	char *plain = NULL;
	size_t len = 0;
	vz_err de = { 0 };
	if (vz_secrets_decrypt(&plain, &len, k, chunks, nc, &de)) {
		zc_error(z, &p, "secret \"%s\": %s does not decrypt with the key of project %s: %s (encrypt the value "
			 "again with this project's public key: vinz encrypt)", sname, where, f->src->project,
			 vz_err_msg(&de));
		return NULL;
	}
	json_t *v = json_stringn(plain, len);
	vz_secrets_wipe(plain, len);
	if (!v)
		zc_error(z, &p, "secret \"%s\": %s: out of memory", sname, where);
	return v;
}

/* The first !encrypted/pkcs1-oaep node under n, or NULL. */
static const vz_ynode *find_encrypted(const vz_ynode *n, int depth)
{
	if (n->tag && strcmp(n->tag, ENCRYPTED_TAG) == 0)
		return n;
	for (size_t i = 0; n->kind != VZ_Y_SCALAR && depth < VZ_YAML_MAX_DEPTH && i < n->n; i++) {
		const vz_ynode *f = find_encrypted(n->items[i], depth + 1);
		if (f)
			return f;
	}
	return NULL;
}

static int has_encrypted(const vz_ynode *n, int depth)
{
	return find_encrypted(n, depth) != NULL;
}

/* A secret's data as JSON with encrypted values decrypted (typed as PyYAML reads the plain
 * ones). *encrypted is set when an encrypted value is found; *undecrypted when one was left
 * encrypted (no key). NULL after reporting an error. */
static json_t *secret_data(vz_zconf *z, const zc_file *f, const char *sname, const char *where, const vz_ynode *n,
			   const vz_secrets_key *k, int *encrypted, int *undecrypted, int depth)
{
	if (n->tag && strcmp(n->tag, ENCRYPTED_TAG) == 0) {
		*encrypted = 1;
		json_t *v = secret_encrypted(z, f, sname, where, n, k);
		if (v && json_is_null(v))
			*undecrypted = 1;
		return v;
	}
	if (n->tag && !vz_startswith(n->tag, "tag:yaml.org,2002:")) {
		zc_pos p = at(f, n);
		zc_error(z, &p, "secret \"%s\": %s: unknown tag %s (a value is plain or %s)", sname, where, n->tag,
			 ENCRYPTED_TAG);
		return NULL;
	}
	if (depth > VZ_YAML_MAX_DEPTH)
		return NULL;
	if (n->kind == VZ_Y_SCALAR)
		return vz_ynode_to_json(n);
	int ok = 1;
	json_t *out = n->kind == VZ_Y_MAP ? json_object() : json_array();
	for (size_t i = 0; out && i < n->n; i++) {
		vz_buf w = VZ_BUF_INIT(1024);
		if (n->kind == VZ_Y_MAP)
			vz_buf_printf(&w, "%s.%s", where, n->keys[i]->str);
		else
			vz_buf_printf(&w, "%s[%zu]", where, i);
		json_t *v = secret_data(z, f, sname, w.failed ? where : vz_buf_cstr(&w), n->items[i], k, encrypted,
					undecrypted, depth + 1);
		vz_buf_free(&w);
		if (!v) {
			ok = 0;
			continue;
		}
		if (n->kind == VZ_Y_MAP)
			json_object_set_new(out, n->keys[i]->str, v);
		else
			json_array_append_new(out, v);
	}
	if (!ok) {
		wipe_json(out, 0);
		json_decref(out);
		return NULL;
	}
	return out;
}

static void parse_secret(vz_zconf *z, const zc_file *f, const vz_ynode *m)
{
	static const char *const keys[] = { "name", "data", NULL };
	int ok = check_keys(z, f, m, "secret", keys);
	const vz_ynode *name = need_name(z, f, m, "secret"), *data = vz_ymap_get(m, "data");
	if (!data) {
		zc_pos p = at(f, m);
		zc_error(z, &p, "a secret needs data");
		ok = 0;
	} else if (data->kind != VZ_Y_MAP) {
		zc_pos p = at(f, data);
		zc_error(z, &p, "secret data must be a mapping, not %s", kind_name(data));
		ok = 0;
	}
	if (!ok || !name)
		return;
	/* Only the shape is kept in the definition (shown by `config show`); decrypted values are
	 * kept apart, in plain. */
	zc_pos p = at(f, m);
	int encrypted = 0, undecrypted = 0;
	vz_secrets_key *k = has_encrypted(data, 0) ? project_key(z, f->src, &p) : NULL;
	json_t *plain = secret_data(z, f, name->str, "data", data, k, &encrypted, &undecrypted, 0);
	json_t *keysj = json_array();
	for (size_t i = 0; i < data->n; i++)
		json_array_append_new(keysj, json_string(data->keys[i]->str));
	zc_named *o = named_new(name->str, f, m, json_pack("{s:o}", "keys", keysj));
	o->encrypted = encrypted;
	if (plain && !undecrypted) {
		o->plain = plain;
	} else {
		wipe_json(plain, 0);
		json_decref(plain);
	}
	/* a secret whose value did not decrypt is still defined (its error is reported once, here,
	 * not again at every job using it) */
	add_named(z, z->secrets, &z->secret_list, o, "secret");
}

static void parse_semaphore(vz_zconf *z, const zc_file *f, const vz_ynode *m)
{
	static const char *const keys[] = { "name", "max", NULL };
	int ok = check_keys(z, f, m, "semaphore", keys);
	const vz_ynode *name = need_name(z, f, m, "semaphore"), *mx = vz_ymap_get(m, "max");
	long long max = 1;
	if (mx && !want_int(z, f, mx, "semaphore max", 1, &max))
		ok = 0;
	if (!ok || !name)
		return;
	add_named(z, z->semaphores, &z->semaphore_list, named_new(name->str, f, m, json_pack("{s:I}", "max", (json_int_t)max)),
		  "semaphore");
}

static void parse_queue(vz_zconf *z, const zc_file *f, const vz_ynode *m)
{
	static const char *const keys[] = { "name", "per-branch", "allow-circular-dependencies",
					    "dependencies-by-topic", NULL };
	int ok = check_keys(z, f, m, "queue", keys);
	const vz_ynode *name = need_name(z, f, m, "queue");
	json_t *d = json_object();
	for (size_t i = 1; keys[i]; i++) {
		const vz_ynode *v = vz_ymap_get(m, keys[i]);
		int b = 0;
		if (v && !want_bool(z, f, v, keys[i], &b))
			ok = 0;
		json_object_set_new(d, keys[i], json_boolean(b));
	}
	if (!ok || !name) {
		json_decref(d);
		return;
	}
	add_named(z, z->queues, &z->queue_list, named_new(name->str, f, m, d), "queue");
}

static void parse_pragma(vz_zconf *z, zc_file *f, const vz_ynode *m)
{
	static const char *const keys[] = { "implied-branch-matchers", "implied-branches", NULL };
	check_keys(z, f, m, "pragma", keys);
	const vz_ynode *ibm = vz_ymap_get(m, "implied-branch-matchers"), *ib = vz_ymap_get(m, "implied-branches");
	int b;
	if (ibm && want_bool(z, f, ibm, "implied-branch-matchers", &b))
		f->pragma_ibm = b;
	if (ib) {
		json_t *l = str_or_list(z, f, ib, "implied-branches");
		size_t k;
		json_t *v;
		int ok = l != NULL;
		json_array_foreach(l, k, v) {
			zc_rx rx;
			if (!compile_rx(z, f, ib, json_string_value(v), 0, &rx, "implied-branches"))
				ok = 0;
			zc_rx_free(&rx);
		}
		if (ok) {
			json_decref(f->pragma_ib);
			f->pragma_ib = l;
		} else
			json_decref(l);
	}
}

/* ---- projects and templates ---- */

static void ppc_free(zc_ppc *c)
{
	if (!c)
		return;
	free(c->pipeline);
	for (size_t i = 0; i < c->jobs.n; i++)
		job_free(c->jobs.v[i]);
	free(c->jobs.v);
	free(c->queue);
	free(c);
}

static void project_free(zc_project *p)
{
	if (!p)
		return;
	free(p->name);
	zc_rx_free(&p->rx);
	for (size_t i = 0; i < p->ppcs.n; i++)
		ppc_free(p->ppcs.v[i]);
	free(p->ppcs.v);
	for (size_t i = 0; i < p->templates.n; i++)
		free(p->templates.v[i]);
	free(p->templates.v);
	for (size_t i = 0; i < p->template_pos.n; i++)
		free(p->template_pos.v[i]);
	free(p->template_pos.v);
	json_decref(p->vars);
	free(p->default_branch);
	free(p->merge_mode);
	free(p->queue);
	free(p->implied_branch);
	zc_rxlist_free(&p->implied_rx);
	free(p);
}

static int parse_ppc(vz_zconf *z, const zc_file *f, zc_project *pr, const vz_ynode *k, const vz_ynode *v)
{
	static const char *const keys[] = { "jobs", "queue", "debug", "fail-fast", NULL };
	if (v->kind != VZ_Y_MAP) {
		if (vz_yscalar_is_null(v))
			return 1;
		zc_pos p = at(f, v);
		zc_error(z, &p, "pipeline \"%s\" of %s \"%s\" must be a mapping with jobs, not %s", k->str,
			 pr->is_template ? "project-template" : "project", pr->name, kind_name(v));
		return 0;
	}
	int ok = check_keys(z, f, v, "a project's pipeline", keys);
	zc_ppc *c = vz_xcalloc(1, sizeof(*c));
	c->pipeline = vz_xstrdup(k->str);
	c->pos = at(f, k);
	c->debug = c->fail_fast = -1;
	const vz_ynode *dn = vz_ymap_get(v, "debug"), *fn = vz_ymap_get(v, "fail-fast"), *qn = vz_ymap_get(v, "queue");
	if (dn && !want_bool(z, f, dn, "debug", &c->debug))
		ok = 0;
	if (fn && !want_bool(z, f, fn, "fail-fast", &c->fail_fast))
		ok = 0;
	if (qn) {
		if (want_str(z, f, qn, "queue"))
			c->queue = vz_xstrdup(qn->str);
		else
			ok = 0;
	}
	const vz_ynode *jn = vz_ymap_get(v, "jobs");
	if (jn && jn->kind != VZ_Y_SEQ && !vz_yscalar_is_null(jn)) {
		zc_pos p = at(f, jn);
		zc_error(z, &p, "jobs must be a list of job names or {NAME: {attributes}}, not %s", kind_name(jn));
		ok = 0;
	}
	for (size_t i = 0; jn && jn->kind == VZ_Y_SEQ && i < jn->n; i++) {
		const vz_ynode *it = jn->items[i];
		zc_job *j = NULL;
		if (is_str(it))
			j = parse_job(z, f, NULL, it->str, it);
		else if (it->kind == VZ_Y_MAP && it->n == 1 && is_str(it->keys[0]) &&
			 (it->items[0]->kind == VZ_Y_MAP || vz_yscalar_is_null(it->items[0])))
			j = parse_job(z, f, it->items[0]->kind == VZ_Y_MAP ? it->items[0] : NULL, it->keys[0]->str, it->keys[0]);
		else {
			zc_pos p = at(f, it);
			zc_error(z, &p, "a job entry must be a job name or {NAME: {attributes}}, not %s", kind_name(it));
			ok = 0;
			continue;
		}
		if (!j) {
			ok = 0;
			continue;
		}
		/* the project's implied branch matcher applies to its job variants (JobList.inheritFrom) */
		if (pr->has_implied) {
			j->has_implied = 1;
			j->implied_branch = pr->implied_branch ? vz_xstrdup(pr->implied_branch) : NULL;
			if (!pr->implied_branch) {
				j->implied_rx.v = calloc(pr->implied_rx.n + 1, sizeof(zc_rx));
				for (size_t r = 0; j->implied_rx.v && r < pr->implied_rx.n; r++) {
					char msg[200];
					if (zc_rx_compile(z->rxcache, &j->implied_rx.v[j->implied_rx.n], pr->implied_rx.v[r].src, 0, msg,
							  sizeof(msg)) == 0)
						j->implied_rx.n++;
				}
			}
		}
		zc_vec_push(&c->jobs, j);
	}
	if (!ok || zc_vec_push(&pr->ppcs, c)) {
		ppc_free(c);
		return 0;
	}
	return 1;
}

static void parse_project(vz_zconf *z, const zc_file *f, const vz_ynode *m, int tmpl)
{
	static const char *const p_keys[] = { "name", "description", "templates", "default-branch", "merge-mode", "vars",
					      "queue", NULL };
	static const char *const t_keys[] = { "name", "description", "queue", "vars", NULL };
	static const char *const modes[] = { "merge", "merge-resolve", "cherry-pick", "squash-merge", "rebase",
					     "default", NULL };
	const char *type = tmpl ? "project-template" : "project";
	zc_project *pr = vz_xcalloc(1, sizeof(*pr));
	int ok = 1;
	pr->is_template = tmpl;
	pr->pos = at(f, m);
	const vz_ynode *name = vz_ymap_get(m, "name");
	if (tmpl) {
		name = need_name(z, f, m, "project-template");
		if (!name)
			ok = 0;
		else
			pr->name = vz_xstrdup(name->str);
	} else if (name) {
		if (!want_str(z, f, name, "project name"))
			ok = 0;
		else if (!f->src->trusted && !zc_name_matches(name->str, f->src->project)) {
			zc_pos p = at(f, name);
			zc_error(z, &p, "project \"%s\": an untrusted project may only configure itself (%s)", name->str,
				 f->src->project);
			ok = 0;
		} else
			pr->name = vz_xstrdup(name->str);
	} else if (f->src->trusted) {
		zc_pos p = at(f, m);
		zc_error(z, &p, "a project stanza in a config project needs a name");
		ok = 0;
	} else
		pr->name = vz_xstrdup(f->src->project);
	if (pr->name && pr->name[0] == '^' && !tmpl) {
		pr->is_regex = 1;
		if (!compile_rx(z, f, name, pr->name, 0, &pr->rx, "project name"))
			ok = 0;
	}
	if (!tmpl)
		pr->has_implied = implied_branches(z, f, &pr->implied_branch, &pr->implied_rx);
	else
		pr->has_implied = implied_branches(z, f, &pr->implied_branch, &pr->implied_rx);
	for (size_t i = 0; i < m->n; i++) {
		const vz_ynode *k = m->keys[i], *v = m->items[i];
		if (in_list(k->str, tmpl ? t_keys : p_keys)) {
			if (strcmp(k->str, "templates") == 0) {
				json_t *l = str_or_list(z, f, v, "templates");
				size_t x;
				json_t *t;
				if (!l)
					ok = 0;
				json_array_foreach(l, x, t) {
					zc_vec_push(&pr->templates, vz_xstrdup(json_string_value(t)));
					zc_pos *tp = vz_xcalloc(1, sizeof(*tp));
					*tp = at(f, v->kind == VZ_Y_SEQ ? v->items[x] : v);
					zc_vec_push(&pr->template_pos, tp);
				}
				json_decref(l);
			} else if (strcmp(k->str, "vars") == 0) {
				if (v->kind != VZ_Y_MAP) {
					zc_pos p = at(f, v);
					zc_error(z, &p, "%s vars must be a mapping, not %s", type, kind_name(v));
					ok = 0;
				} else if (reserved_var(z, f, v, "vars"))
					ok = 0;
				else
					pr->vars = vz_ynode_to_json(v);
			} else if (strcmp(k->str, "name") != 0) {
				char what[64];
				snprintf(what, sizeof(what), "%s %s", type, k->str);
				if (!want_str(z, f, v, what))
					ok = 0;
				else if (strcmp(k->str, "merge-mode") == 0 && !in_list(v->str, modes)) {
					zc_pos p = at(f, v);
					zc_error(z, &p, "unknown merge-mode \"%s\" (merge, merge-resolve, cherry-pick, "
						 "squash-merge, rebase or default)", v->str);
					ok = 0;
				} else if (strcmp(k->str, "default-branch") == 0)
					pr->default_branch = vz_xstrdup(v->str);
				else if (strcmp(k->str, "merge-mode") == 0)
					pr->merge_mode = vz_xstrdup(v->str);
				else if (strcmp(k->str, "queue") == 0)
					pr->queue = vz_xstrdup(v->str);
			}
			continue;
		}
		if (!vz_map_get(z->pipelines, k->str)) {
			vz_buf b = VZ_BUF_INIT(4096);
			for (size_t x = 0; x < z->pipeline_list.n; x++)
				vz_buf_printf(&b, ", %s", ((zc_named *)z->pipeline_list.v[x])->name);
			const char *const *kl = tmpl ? t_keys : p_keys;
			vz_buf c = VZ_BUF_INIT(4096);
			for (size_t x = 0; kl[x]; x++)
				vz_buf_printf(&c, "%s%s", x ? ", " : "", kl[x]);
			zc_pos p = at(f, k);
			zc_error(z, &p, "\"%s\" in %s is neither an attribute nor a pipeline (attributes: %s; pipelines:%s)",
				 k->str, type, vz_buf_cstr(&c), b.len ? vz_buf_cstr(&b) + 1 : " none defined");
			vz_buf_free(&b);
			vz_buf_free(&c);
			ok = 0;
			continue;
		}
		if (!parse_ppc(z, f, pr, k, v))
			ok = 0;
	}
	if (!ok) {
		project_free(pr);
		return;
	}
	if (tmpl) {
		zc_project *prior = vz_map_get(z->templates, pr->name);
		if (prior && (strcmp(prior->pos.f->src->project, f->src->project) != 0 ||
			      strcmp(prior->pos.f->src->branch, f->src->branch) == 0)) {
			zc_error(z, &pr->pos, "project-template \"%s\" is already defined at %s:%d:%d", pr->name,
				 prior->pos.f->fname, prior->pos.line, prior->pos.col);
			project_free(pr);
			return;
		}
		/* templates of one project on several branches all count, each with its branch matcher */
		if (!prior)
			vz_map_set(z->templates, pr->name, pr);
		zc_vec_push(&z->template_list, pr);
		return;
	}
	zc_vec_push(&z->projects, pr);
}

/* ---- jobs into the layout ---- */

static void add_job(vz_zconf *z, zc_job *j)
{
	zc_joblist *l = vz_map_get(z->jobs, j->name);
	if (l && l->v.n) {
		zc_job *first = l->v.v[0];
		if (strcmp(first->pos.f->src->project, j->pos.f->src->project) != 0) {
			zc_error(z, &j->pos, "job \"%s\" is already defined in project %s (%s:%d:%d); a job may only have "
				 "variants in the project that defines it", j->name, first->pos.f->src->project,
				 first->pos.f->fname, first->pos.line, first->pos.col);
			job_free(j);
			return;
		}
	}
	if (!l) {
		l = vz_xcalloc(1, sizeof(*l));
		vz_map_set(z->jobs, j->name, l);
		zc_vec_push(&z->joblists, l);
	}
	zc_vec_push(&l->v, j);
}

/* Checks references once everything is parsed: parents, nodesets, secrets, semaphores, templates,
 * jobs named by projects. A job with a dangling reference is reported where it names it. */
static void validate(vz_zconf *z)
{
	for (size_t i = 0; i < z->joblists.n; i++) {
		zc_joblist *l = z->joblists.v[i];
		for (size_t k = 0; k < l->v.n; k++) {
			zc_job *j = l->v.v[k];
			if (j->parent_kind == 1 && !vz_map_get(z->jobs, j->parent))
				zc_error(z, &j->parent_pos, "job \"%s\": parent job \"%s\" is not defined", j->name, j->parent);
			json_t *ns = json_object_get(j->attrs, "nodeset");
			json_t *ap = json_object_get(j->apos, "nodeset");
			zc_pos p = { j->pos.f, (int)json_integer_value(json_array_get(ap, 0)),
				     (int)json_integer_value(json_array_get(ap, 1)) };
			if (json_is_string(ns) && !vz_map_get(z->nodesets, json_string_value(ns)))
				zc_error(z, &p, "job \"%s\": nodeset \"%s\" is not defined", j->name, json_string_value(ns));
			json_t *alts = json_object_get(json_object_get(ns, "inline"), "alternatives");
			size_t x;
			json_t *v;
			json_array_foreach(alts, x, v) {
				const char *ref = json_string_value(json_object_get(v, "ref"));
				if (ref && !vz_map_get(z->nodesets, ref))
					zc_error(z, &p, "job \"%s\": nodeset alternative \"%s\" is not defined", j->name, ref);
			}
			json_array_foreach(json_object_get(j->attrs, "semaphores"), x, v) {
				ap = json_object_get(j->apos, "semaphores");
				zc_pos sp = { j->pos.f, (int)json_integer_value(json_array_get(ap, 0)),
					      (int)json_integer_value(json_array_get(ap, 1)) };
				if (!vz_map_get(z->semaphores, json_string_value(v)))
					zc_error(z, &sp, "job \"%s\": semaphore \"%s\" is not defined", j->name,
						 json_string_value(v));
			}
			json_array_foreach(json_object_get(j->attrs, "secrets"), x, v) {
				const char *sn = json_string_value(json_object_get(v, "secret"));
				json_t *sat = json_object_get(v, "at");
				zc_pos sp = { j->pos.f, (int)json_integer_value(json_array_get(sat, 0)),
					      (int)json_integer_value(json_array_get(sat, 1)) };
				zc_named *s = vz_map_get(z->secrets, sn);
				if (!s)
					zc_error(z, &sp, "job \"%s\": secret \"%s\" is not defined", j->name, sn);
				else if (strcmp(s->pos.f->src->project, j->pos.f->src->project) != 0)
					zc_error(z, &sp, "job \"%s\": secret \"%s\" is defined in project %s; secrets may only be "
						 "used by jobs of the project defining them", j->name, sn, s->pos.f->src->project);
			}
		}
	}
	/* alternatives of named nodesets */
	for (size_t i = 0; i < z->nodeset_list.n; i++) {
		zc_named *o = z->nodeset_list.v[i];
		size_t x;
		json_t *v;
		json_array_foreach(json_object_get(o->data, "alternatives"), x, v) {
			const char *ref = json_string_value(json_object_get(v, "ref"));
			if (ref && !vz_map_get(z->nodesets, ref))
				zc_error(z, &o->pos, "nodeset \"%s\": alternative \"%s\" is not defined", o->name, ref);
		}
	}
	zc_vec *lists[] = { &z->projects, &z->template_list };
	for (int w = 0; w < 2; w++)
		for (size_t i = 0; i < lists[w]->n; i++) {
			zc_project *pr = lists[w]->v[i];
			for (size_t t = 0; t < pr->templates.n; t++)
				if (!vz_map_get(z->templates, pr->templates.v[t]))
					zc_error(z, pr->template_pos.v[t], "project \"%s\": project-template \"%s\" is not defined",
						 pr->name, (char *)pr->templates.v[t]);
			for (size_t c = 0; c < pr->ppcs.n; c++) {
				zc_ppc *pc = pr->ppcs.v[c];
				for (size_t k = 0; k < pc->jobs.n; k++) {
					zc_job *j = pc->jobs.v[k];
					if (!vz_map_get(z->jobs, j->name))
						zc_error(z, &j->pos, "%s \"%s\", pipeline %s: job \"%s\" is not defined",
							 pr->is_template ? "project-template" : "project", pr->name, pc->pipeline,
							 j->name);
				}
			}
		}
}

/* ---- indices ---- */

static void build_index(vz_zconf *z)
{
	z->proj_index = vz_map_new();
	z->canon = vz_map_new();
	if (!z->proj_index || !z->canon)
		return;
	for (size_t i = 0; i < z->projects.n; i++) {
		zc_project *p = z->projects.v[i];
		if (p->is_regex) {
			zc_vec_push(&z->regex_projects, p);
			continue;
		}
		const char *key = zc_short_name(p->name);
		zc_vec *v = vz_map_get(z->proj_index, key);
		if (!v) {
			v = vz_xcalloc(1, sizeof(*v));
			vz_map_set(z->proj_index, key, v);
			zc_vec_push(&z->proj_vecs, v);
		}
		zc_vec_push(v, p);
	}
	z->template_vecs = vz_map_new();
	for (size_t i = 0; z->template_vecs && i < z->template_list.n; i++) {
		zc_project *t = z->template_list.v[i];
		zc_vec *v = vz_map_get(z->template_vecs, t->name);
		if (!v) {
			v = vz_xcalloc(1, sizeof(*v));
			vz_map_set(z->template_vecs, t->name, v);
			zc_vec_push(&z->tvecs, v);
		}
		zc_vec_push(v, t);
	}
	z->proj_branches = vz_map_new();
	for (size_t i = 0; i < z->srcs.n; i++) {
		zc_src *s = z->srcs.v[i];
		vz_buf k = VZ_BUF_INIT(8192);
		vz_buf_printf(&k, "%s\n%s", s->project, s->branch);
		if (!k.failed && z->proj_branches)
			vz_map_set(z->proj_branches, vz_buf_cstr(&k), s);
		vz_buf_free(&k);
		if (!vz_map_get(z->canon, zc_short_name(s->project)))
			vz_map_set(z->canon, zc_short_name(s->project), s->project);
		if (!vz_map_get(z->canon, s->project))
			vz_map_set(z->canon, s->project, s->project);
	}
}

/* ---- loading ---- */

static void file_free(zc_file *f)
{
	if (!f)
		return;
	free(f->path);
	free(f->fname);
	vz_ynode_free(f->root);
	json_decref(f->pragma_ib);
	free(f);
}

static void src_free(zc_src *s)
{
	if (!s)
		return;
	free(s->project);
	free(s->branch);
	free(s->prefix);
	free(s->connection);
	free(s);
}

void vz_zconf_free(vz_zconf *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->errors.n; i++) {
		zc_errent *en = z->errors.v[i];
		free(en->msg);
		free(en);
	}
	free(z->errors.v);
	vz_map_free(z->errset);
	zc_vec *named[] = { &z->pipeline_list, &z->nodeset_list, &z->secret_list, &z->semaphore_list, &z->queue_list };
	for (size_t w = 0; w < 5; w++) {
		for (size_t i = 0; i < named[w]->n; i++)
			named_free(named[w]->v[i]);
		free(named[w]->v);
	}
	vz_map_free(z->pipelines);
	vz_map_free(z->nodesets);
	vz_map_free(z->secrets);
	vz_map_free(z->semaphores);
	vz_map_free(z->queues);
	for (size_t i = 0; i < z->joblists.n; i++) {
		zc_joblist *l = z->joblists.v[i];
		for (size_t k = 0; k < l->v.n; k++)
			job_free(l->v.v[k]);
		free(l->v.v);
		free(l);
	}
	free(z->joblists.v);
	vz_map_free(z->jobs);
	for (size_t i = 0; i < z->template_list.n; i++)
		project_free(z->template_list.v[i]);
	free(z->template_list.v);
	vz_map_free(z->templates);
	for (size_t i = 0; i < z->projects.n; i++)
		project_free(z->projects.v[i]);
	free(z->projects.v);
	for (size_t i = 0; i < z->files.n; i++)
		file_free(z->files.v[i]);
	free(z->files.v);
	for (size_t i = 0; i < z->srcs.n; i++)
		src_free(z->srcs.v[i]);
	free(z->srcs.v);
	free(z->default_parent);
	for (size_t i = 0; i < z->proj_vecs.n; i++) {
		zc_vec *v = z->proj_vecs.v[i];
		free(v->v);
		free(v);
	}
	free(z->proj_vecs.v);
	free(z->regex_projects.v);
	vz_map_free(z->proj_index);
	vz_map_free(z->canon);
	vz_map_free(z->proj_branches);
	for (size_t i = 0; i < z->tvecs.n; i++) {
		zc_vec *v = z->tvecs.v[i];
		free(v->v);
		free(v);
	}
	free(z->tvecs.v);
	vz_map_free(z->template_vecs);
	zc_rxcache_free(z->rxcache); /* after every zc_rx using it */
	free(z);
}

size_t vz_zconf_nerrors(const vz_zconf *z)
{
	return z ? z->nerrors : 0;
}

const char *vz_zconf_error(const vz_zconf *z, size_t i)
{
	if (!z || i >= z->errors.n)
		return NULL;
	return ((zc_errent *)z->errors.v[i])->msg;
}

static int cmp_err(const void *a, const void *b)
{
	const zc_errent *x = *(zc_errent *const *)a, *y = *(zc_errent *const *)b;
	if (x->fidx != y->fidx)
		return x->fidx < y->fidx ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return strcmp(x->msg, y->msg);
}

void zc_sort_errors(vz_zconf *z);
void zc_sort_errors(vz_zconf *z)
{
	if (z->errors.n > 1)
		qsort(z->errors.v, z->errors.n, sizeof(void *), cmp_err);
}

/* Reads ":DIGITS" at *p (skipping the colon), capped at 9 digits; advances *p. */
static int small_uint(const char **p)
{
	const char *c = *p + 1;
	int v = 0;
	for (int i = 0; i < 9 && *c >= '0' && *c <= '9'; i++, c++)
		v = v * 10 + (*c - '0');
	*p = c;
	return v;
}

typedef struct stanza {
	zc_file *f;
	const vz_ynode *body;
} stanza;

static const struct {
	const char *name;
	unsigned type;
} stanza_types[] = {
	{ "pipeline", VZ_ZC_PIPELINE },	 { "nodeset", VZ_ZC_NODESET }, { "secret", VZ_ZC_SECRET },
	{ "semaphore", VZ_ZC_SEMAPHORE }, { "queue", VZ_ZC_QUEUE },     { "job", VZ_ZC_JOB },
	{ "project-template", VZ_ZC_PROJECT_TEMPLATE }, { "project", VZ_ZC_PROJECT }, { "pragma", VZ_ZC_PRAGMA },
};
#define NTYPES (sizeof(stanza_types) / sizeof(stanza_types[0]))

int vz_zconf_load(vz_zconf **out, const vz_zconf_source *srcs, size_t n, vz_err *e)
{
	return vz_zconf_load_opts(out, srcs, n, NULL, e);
}

int vz_zconf_load_opts(vz_zconf **out, const vz_zconf_source *srcs, size_t n, const vz_zconf_options *o, vz_err *e)
{
	*out = NULL;
	vz_zconf *z = calloc(1, sizeof(*z));
	zc_vec st[NTYPES] = { { 0 } };
	int rc = 0;
	if (!z)
		return vz_err_set(e, VZ_ENOMEM, "out of memory loading the Zuul configuration");
	if (o) {
		z->key_fn = o->key_fn;
		z->key_ctx = o->key_ctx;
	}
	z->errset = vz_map_new();
	z->pipelines = vz_map_new();
	z->nodesets = vz_map_new();
	z->secrets = vz_map_new();
	z->semaphores = vz_map_new();
	z->queues = vz_map_new();
	z->jobs = vz_map_new();
	z->templates = vz_map_new();
	z->default_parent = strdup("base");
	z->rxcache = zc_rxcache_new();
	if (!z->errset || !z->pipelines || !z->nodesets || !z->secrets || !z->semaphores || !z->queues || !z->jobs ||
	    !z->templates || !z->default_parent || !z->rxcache) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory loading the Zuul configuration");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!srcs[i].project || !srcs[i].branch || (srcs[i].files && !json_is_object(srcs[i].files))) {
			rc = vz_err_set(e, VZ_EINVAL, "configuration source %zu needs a project, a branch and a {path: content} "
					"object", i);
			goto out;
		}
		zc_src *s = vz_xcalloc(1, sizeof(*s));
		s->project = vz_xstrdup(srcs[i].project);
		s->branch = vz_xstrdup(srcs[i].branch);
		s->prefix = vz_xstrdup(srcs[i].prefix ? srcs[i].prefix : "");
		s->connection = srcs[i].connection ? vz_xstrdup(srcs[i].connection) : NULL;
		s->trusted = srcs[i].trusted;
		s->types = srcs[i].types ? srcs[i].types : VZ_ZC_ALL;
		zc_vec_push(&z->srcs, s);
	}
	/* branches per project, for implied branch matchers */
	{
		vz_map *pb = vz_map_new(), *cnt = vz_map_new();
		for (size_t i = 0; pb && cnt && i < z->srcs.n; i++) {
			zc_src *s = z->srcs.v[i];
			vz_buf k = VZ_BUF_INIT(8192);
			vz_buf_printf(&k, "%s\n%s", s->project, s->branch);
			if (!k.failed && !vz_map_get(pb, vz_buf_cstr(&k))) {
				vz_map_set(pb, vz_buf_cstr(&k), s);
				vz_map_set(cnt, s->project, (void *)((uintptr_t)vz_map_get(cnt, s->project) + 1));
			}
			vz_buf_free(&k);
		}
		for (size_t i = 0; cnt && i < z->srcs.n; i++) {
			zc_src *s = z->srcs.v[i];
			s->nbranches = (size_t)(uintptr_t)vz_map_get(cnt, s->project);
		}
		vz_map_free(pb);
		vz_map_free(cnt);
	}
	for (size_t i = 0; i < n; i++) {
		zc_src *s = z->srcs.v[i];
		const char *path;
		json_t *content;
		json_object_foreach((json_t *)srcs[i].files, path, content) {
			if (!json_is_string(content))
				continue;
			zc_file *f = vz_xcalloc(1, sizeof(*f));
			f->src = s;
			f->idx = z->files.n;
			f->path = vz_xstrdup(path);
			f->fname = vz_path_join(s->prefix, path);
			if (!*s->prefix) {
				free(f->fname);
				f->fname = vz_xstrdup(path);
			}
			f->pragma_ibm = -1;
			zc_vec_push(&z->files, f);
			vz_err ye = { 0 };
			if (vz_yaml_parse(&f->root, json_string_value(content), json_string_length(content), f->fname, &ye)) {
				z->nerrors++;
				zc_errent *en = vz_xcalloc(1, sizeof(*en));
				vz_buf b = VZ_BUF_INIT(4096);
				vz_buf_printf(&b, "%s (project %s, branch %s)", ye.msg, s->project, s->branch);
				en->msg = vz_buf_detach(&b);
				en->fidx = f->idx;
				/* keep the parser's position for sorting */
				const char *c = ye.msg + strlen(f->fname);
				if (*c == ':') {
					en->line = small_uint(&c);
					if (*c == ':')
						en->col = small_uint(&c);
				}
				if (z->errors.n < VZ_ZCONF_MAX_ERRORS)
					zc_vec_push(&z->errors, en);
				else {
					free(en->msg);
					free(en);
				}
				continue;
			}
			const vz_ynode *r = f->root;
			if (!r)
				continue;
			if (r->kind != VZ_Y_SEQ) {
				zc_pos p = at(f, r);
				zc_error(z, &p, "a Zuul configuration file must be a list of {TYPE: {...}} items, not %s",
					 kind_name(r));
				continue;
			}
			for (size_t k = 0; k < r->n; k++) {
				const vz_ynode *it = r->items[k];
				if (it->kind != VZ_Y_MAP || it->n != 1) {
					zc_pos p = at(f, it);
					zc_error(z, &p, "each item must be a mapping with one key naming its type (job, project, "
						 "pipeline, ...), not %s", it->kind == VZ_Y_MAP ? "several keys" : kind_name(it));
					continue;
				}
				size_t t;
				for (t = 0; t < NTYPES; t++)
					if (strcmp(stanza_types[t].name, it->keys[0]->str) == 0)
						break;
				if (t == NTYPES) {
					zc_pos p = at(f, it->keys[0]);
					zc_error(z, &p, "unknown configuration item \"%s\" (pipeline, job, project, "
						 "project-template, nodeset, secret, semaphore, queue, pragma)", it->keys[0]->str);
					continue;
				}
				if (!(s->types & stanza_types[t].type))
					continue; /* excluded for this project by the tenant */
				const vz_ynode *body = it->items[0];
				if (body->kind != VZ_Y_MAP) {
					zc_pos p = at(f, body);
					zc_error(z, &p, "%s must be a mapping, not %s", stanza_types[t].name, kind_name(body));
					continue;
				}
				/* encrypted values mean something in a secret's data only; elsewhere (a job's
				 * vars...) the ciphertext would silently become a plain string */
				const vz_ynode *enc = stanza_types[t].type != VZ_ZC_SECRET ? find_encrypted(body, 0) : NULL;
				if (enc) {
					zc_pos p = at(f, enc);
					zc_error(z, &p, "%s values are only read in a secret's data, not in a %s: define a "
						 "secret and list it in the job's secrets", ENCRYPTED_TAG, stanza_types[t].name);
					continue;
				}
				if (stanza_types[t].type == VZ_ZC_PRAGMA) {
					parse_pragma(z, f, body); /* applies to the whole file it is in */
					continue;
				}
				stanza *sx = vz_xcalloc(1, sizeof(*sx));
				sx->f = f;
				sx->body = body;
				zc_vec_push(&st[t], sx);
			}
		}
	}
	for (size_t t = 0; t < NTYPES; t++)
		for (size_t k = 0; k < st[t].n; k++) {
			stanza *sx = st[t].v[k];
			switch (stanza_types[t].type) {
			case VZ_ZC_PIPELINE: parse_pipeline(z, sx->f, sx->body); break;
			case VZ_ZC_NODESET: parse_nodeset(z, sx->f, sx->body); break;
			case VZ_ZC_SECRET: parse_secret(z, sx->f, sx->body); break;
			case VZ_ZC_SEMAPHORE: parse_semaphore(z, sx->f, sx->body); break;
			case VZ_ZC_QUEUE: parse_queue(z, sx->f, sx->body); break;
			case VZ_ZC_JOB: {
				zc_job *j = parse_job(z, sx->f, sx->body, NULL, NULL);
				if (j)
					add_job(z, j);
				break;
			}
			case VZ_ZC_PROJECT_TEMPLATE: parse_project(z, sx->f, sx->body, 1); break;
			case VZ_ZC_PROJECT: parse_project(z, sx->f, sx->body, 0); break;
			default: break;
			}
		}
	validate(z);
	build_index(z);
	/* everything needed was copied out of the trees */
	for (size_t i = 0; i < z->files.n; i++) {
		zc_file *f = z->files.v[i];
		vz_ynode_free(f->root);
		f->root = NULL;
	}
	zc_sort_errors(z);
	if (z->nerrors) {
		rc = vz_err_set(e, VZ_EINVAL, "%s%s", vz_zconf_error(z, 0), z->nerrors > 1 ? " (and more errors)" : "");
	}
out:
	for (size_t t = 0; t < NTYPES; t++) {
		for (size_t k = 0; k < st[t].n; k++)
			free(st[t].v[k]);
		free(st[t].v);
	}
	/* the keys are needed while loading only */
	for (size_t k = 0; k < z->key_list.n; k++)
		vz_secrets_key_free(z->key_list.v[k]);
	free(z->key_list.v);
	z->key_list = (zc_vec){ 0 };
	vz_map_free(z->keys);
	z->keys = NULL;
	z->key_fn = NULL;
	z->key_ctx = NULL;
	if (rc && rc != VZ_EINVAL) {
		vz_zconf_free(z);
		return rc;
	}
	if (rc == VZ_EINVAL && !z->nerrors) {
		vz_zconf_free(z);
		return rc;
	}
	*out = z;
	return rc;
}

json_t *vz_zconf_pipelines(const vz_zconf *z)
{
	json_t *a = json_array();
	for (size_t i = 0; z && i < z->pipeline_list.n; i++)
		json_array_append_new(a, json_string(((zc_named *)z->pipeline_list.v[i])->name));
	return a;
}
