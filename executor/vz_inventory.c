/* vz_inventory: Ansible INI and YAML inventories and host patterns; see vz_inventory.h.
 * Groups form a graph (children); a host's group variables are applied from the shallowest group
 * to the deepest, as Ansible's combine_vars over sorted groups does. */
#include "vz_inventory.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_buf.h"
#include "vz_map.h"
#include "vz_util.h"
#include "vz_yaml.h"

typedef struct inv_host {
	char *name;
	json_t *vars;
} inv_host;

typedef struct inv_group {
	char *name;
	json_t *vars;
	size_t *hosts, nhosts, chosts; /* direct hosts, indices into inv->hosts */
	size_t *kids, nkids, ckids;    /* child groups */
	int has_parent;                /* some group lists it as a child */
} inv_group;

struct vz_inventory {
	inv_host *hosts;
	size_t nhosts, chosts;
	inv_group *groups;
	size_t ngroups, cgroups;
	vz_map *hmap, *gmap; /* name -> index+1 */
};

static int grow(void **v, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 8;
	void *p = realloc(*v, nc * sz);
	if (!p)
		return VZ_ENOMEM;
	*v = p;
	*cap = nc;
	return 0;
}

static int find_group(const vz_inventory *inv, const char *name)
{
	size_t v = (size_t)(uintptr_t)vz_map_get(inv->gmap, name);
	return v ? (int)(v - 1) : -1;
}

static int find_host(const vz_inventory *inv, const char *name)
{
	size_t v = (size_t)(uintptr_t)vz_map_get(inv->hmap, name);
	return v ? (int)(v - 1) : -1;
}

static int valid_name(const char *s)
{
	if (!s || !*s || strlen(s) > 255)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == ',' || *s == '[' || *s == ']' || *s == '=')
			return 0;
	return 1;
}

static int add_group(vz_inventory *inv, const char *name, vz_err *e)
{
	int g = find_group(inv, name);
	if (g >= 0)
		return g;
	if (!valid_name(name))
		return vz_err_set(e, VZ_EINVAL, "bad group name '%.80s'", name);
	if (inv->ngroups >= VZ_INVENTORY_MAX_GROUPS)
		return vz_err_set(e, VZ_ETOOBIG, "more than %d groups", VZ_INVENTORY_MAX_GROUPS);
	if (grow((void **)&inv->groups, &inv->cgroups, inv->ngroups, sizeof(inv_group)))
		return vz_err_set(e, VZ_ENOMEM, "out of memory");
	inv_group *gr = &inv->groups[inv->ngroups];
	memset(gr, 0, sizeof(*gr));
	gr->name = strdup(name);
	gr->vars = json_object();
	if (!gr->name || !gr->vars || vz_map_set(inv->gmap, name, (void *)(uintptr_t)(inv->ngroups + 1))) {
		free(gr->name);
		json_decref(gr->vars);
		return vz_err_set(e, VZ_ENOMEM, "out of memory");
	}
	return (int)inv->ngroups++;
}

static int group_add_idx(size_t **v, size_t *n, size_t *cap, size_t idx)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i] == idx)
			return 0;
	if (grow((void **)v, cap, *n, sizeof(size_t)))
		return VZ_ENOMEM;
	(*v)[(*n)++] = idx;
	return 0;
}

static int add_child(vz_inventory *inv, int parent, int child, vz_err *e)
{
	if (parent == child)
		return vz_err_set(e, VZ_EINVAL, "group '%s' cannot be its own child", inv->groups[parent].name);
	if (group_add_idx(&inv->groups[parent].kids, &inv->groups[parent].nkids, &inv->groups[parent].ckids,
			  (size_t)child))
		return vz_err_set(e, VZ_ENOMEM, "out of memory");
	inv->groups[child].has_parent = 1;
	return 0;
}

static int add_host(vz_inventory *inv, const char *name, int group, vz_err *e)
{
	int h = find_host(inv, name);
	if (h < 0) {
		if (!valid_name(name))
			return vz_err_set(e, VZ_EINVAL, "bad host name '%.80s'", name);
		if (inv->nhosts >= VZ_INVENTORY_MAX_HOSTS)
			return vz_err_set(e, VZ_ETOOBIG, "more than %d hosts", VZ_INVENTORY_MAX_HOSTS);
		if (grow((void **)&inv->hosts, &inv->chosts, inv->nhosts, sizeof(inv_host)))
			return vz_err_set(e, VZ_ENOMEM, "out of memory");
		inv_host *ho = &inv->hosts[inv->nhosts];
		ho->name = strdup(name);
		ho->vars = json_object();
		if (!ho->name || !ho->vars || vz_map_set(inv->hmap, name, (void *)(uintptr_t)(inv->nhosts + 1))) {
			free(ho->name);
			json_decref(ho->vars);
			return vz_err_set(e, VZ_ENOMEM, "out of memory");
		}
		h = (int)inv->nhosts++;
	}
	if (group >= 0) {
		inv_group *g = &inv->groups[group];
		if (group_add_idx(&g->hosts, &g->nhosts, &g->chosts, (size_t)h))
			return vz_err_set(e, VZ_ENOMEM, "out of memory");
	}
	return h;
}

vz_inventory *vz_inventory_new(void)
{
	vz_inventory *inv = calloc(1, sizeof(*inv));
	if (!inv)
		return NULL;
	inv->hmap = vz_map_new();
	inv->gmap = vz_map_new();
	if (!inv->hmap || !inv->gmap || add_group(inv, "all", NULL) != 0 || add_group(inv, "ungrouped", NULL) != 1) {
		vz_inventory_free(inv);
		return NULL;
	}
	return inv;
}

void vz_inventory_free(vz_inventory *inv)
{
	if (!inv)
		return;
	for (size_t i = 0; i < inv->nhosts; i++) {
		free(inv->hosts[i].name);
		json_decref(inv->hosts[i].vars);
	}
	for (size_t i = 0; i < inv->ngroups; i++) {
		free(inv->groups[i].name);
		json_decref(inv->groups[i].vars);
		free(inv->groups[i].hosts);
		free(inv->groups[i].kids);
	}
	free(inv->hosts);
	free(inv->groups);
	vz_map_free(inv->hmap);
	vz_map_free(inv->gmap);
	free(inv);
}

int vz_inventory_add_host(vz_inventory *inv, const char *host, const char *group, const json_t *vars, vz_err *e)
{
	int g = group ? add_group(inv, group, e) : 1;
	if (g < 0)
		return g;
	int h = add_host(inv, host, g, e);
	if (h < 0)
		return h;
	if (vars && json_is_object(vars))
		json_object_update(inv->hosts[h].vars, (json_t *)vars);
	return 0;
}

/* ---- INI ---- */

/* An INI value: on a host line Ansible reads Python literals (ints, floats, True/False/None,
 * quoted strings); in [group:vars] the same but unquoted text stays a string. */
static json_t *ini_value(const char *s)
{
	size_t n = strlen(s);
	int64_t iv;
	if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0])
		return json_stringn(s + 1, n - 2);
	if (vz_parse_i64(s, INT64_MIN, INT64_MAX, &iv) == 0)
		return json_integer(iv);
	if (!strcmp(s, "True") || !strcmp(s, "true"))
		return json_true();
	if (!strcmp(s, "False") || !strcmp(s, "false"))
		return json_false();
	if (!strcmp(s, "None"))
		return json_null();
	return json_string(s);
}

/* Splits a line into shell-like words (quotes kept inside the word, so key="a b" stays one). */
static int ini_words(char *line, char **w, int maxw)
{
	int n = 0;
	char *p = line;
	while (*p && n < maxw) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#' || *p == ';')
			break;
		w[n++] = p;
		char q = 0;
		while (*p && (q || (*p != ' ' && *p != '\t'))) {
			if (q && *p == q)
				q = 0;
			else if (!q && (*p == '"' || *p == '\''))
				q = *p;
			p++;
		}
		if (*p)
			*p++ = 0;
	}
	return n;
}

static int parse_ini(vz_inventory *inv, const char *data, size_t len, const char *fname, vz_err *e)
{
	enum { SEC_HOSTS, SEC_VARS, SEC_CHILDREN } sec = SEC_HOSTS;
	int group = 1, rc = 0, lineno = 0;
	char *copy = malloc(len + 1);
	if (!copy)
		return vz_err_set(e, VZ_ENOMEM, "out of memory reading %s", fname);
	memcpy(copy, data, len);
	copy[len] = 0;
	if (memchr(data, 0, len)) {
		rc = vz_err_set(e, VZ_EINVAL, "%s: binary data (a NUL byte) in an inventory", fname);
		goto out;
	}
	for (char *line = copy, *next; line; line = next) {
		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		size_t l = strlen(line);
		while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
			line[--l] = 0;
		while (*line == ' ' || *line == '\t')
			line++;
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (*line == '[') {
			char *end = strchr(line, ']');
			if (!end || end[1]) {
				rc = vz_err_set(e, VZ_EINVAL, "%s:%d: bad section header '%.80s' (expected [group], "
						"[group:vars] or [group:children])", fname, lineno, line);
				goto out;
			}
			*end = 0;
			char *name = line + 1, *colon = strchr(name, ':');
			sec = SEC_HOSTS;
			if (colon) {
				*colon = 0;
				if (!strcmp(colon + 1, "vars"))
					sec = SEC_VARS;
				else if (!strcmp(colon + 1, "children"))
					sec = SEC_CHILDREN;
				else {
					rc = vz_err_set(e, VZ_EINVAL, "%s:%d: unknown section kind ':%.40s' (use :vars or "
							":children)", fname, lineno, colon + 1);
					goto out;
				}
			}
			if ((group = add_group(inv, name, e)) < 0) {
				rc = group;
				vz_err_prefix(e, "%s:%d", fname, lineno);
				goto out;
			}
			continue;
		}
		char *w[64];
		int nw = 0;
		if (sec != SEC_VARS && (nw = ini_words(line, w, 64)) == 0)
			continue;
		if (sec == SEC_VARS) {
			char *eq = strchr(line, '=');
			if (!eq) {
				rc = vz_err_set(e, VZ_EINVAL, "%s:%d: expected key=value in [%s:vars]", fname, lineno,
						inv->groups[group].name);
				goto out;
			}
			/* the whole rest of the line is the value in a vars section */
			*eq = 0;
			char *k = line, *v = eq + 1;
			size_t kl = strlen(k);
			while (kl && (k[kl - 1] == ' ' || k[kl - 1] == '\t'))
				k[--kl] = 0;
			while (*v == ' ' || *v == '\t')
				v++;
			json_object_set_new(inv->groups[group].vars, k, ini_value(v));
		} else if (sec == SEC_CHILDREN) {
			int c = add_group(inv, w[0], e);
			if (c < 0 || (rc = add_child(inv, group, c, e)) != 0) {
				rc = c < 0 ? c : rc;
				vz_err_prefix(e, "%s:%d", fname, lineno);
				goto out;
			}
		} else {
			int h = add_host(inv, w[0], group, e);
			if (h < 0) {
				rc = h;
				vz_err_prefix(e, "%s:%d", fname, lineno);
				goto out;
			}
			for (int i = 1; i < nw; i++) {
				char *eq = strchr(w[i], '=');
				if (!eq || eq == w[i]) {
					rc = vz_err_set(e, VZ_EINVAL, "%s:%d: expected key=value after the host name, got "
							"'%.80s'", fname, lineno, w[i]);
					goto out;
				}
				*eq = 0;
				json_object_set_new(inv->hosts[h].vars, w[i], ini_value(eq + 1));
			}
		}
	}
out:
	free(copy);
	return rc;
}

/* ---- YAML ---- */

static int yaml_group(vz_inventory *inv, const vz_ynode *gnode, const char *name, const char *fname, int depth,
		      vz_err *e);

static int yaml_group(vz_inventory *inv, const vz_ynode *gnode, const char *name, const char *fname, int depth,
		      vz_err *e)
{
	int g = add_group(inv, name, e), rc = 0;
	if (g < 0)
		return g;
	if (depth > 64)
		return vz_err_set(e, VZ_EINVAL, "%s: groups nested deeper than 64", fname);
	if (!gnode || vz_yscalar_is_null(gnode))
		return 0;
	if (gnode->kind != VZ_Y_MAP)
		return vz_err_set(e, VZ_EINVAL, "%s:%d:%d: group '%s' must be a mapping (hosts, vars, children)",
				  fname, gnode->line, gnode->col, name);
	for (size_t i = 0; i < gnode->n; i++) {
		const char *k = gnode->keys[i]->str;
		const vz_ynode *v = gnode->items[i];
		if (!strcmp(k, "hosts")) {
			if (vz_yscalar_is_null(v))
				continue;
			if (v->kind != VZ_Y_MAP)
				return vz_err_set(e, VZ_EINVAL, "%s:%d:%d: 'hosts' of group '%s' must be a mapping of "
						  "host names to their variables", fname, v->line, v->col, name);
			for (size_t j = 0; j < v->n; j++) {
				int h = add_host(inv, v->keys[j]->str, g, e);
				if (h < 0) {
					vz_err_prefix(e, "%s:%d", fname, v->keys[j]->line);
					return h;
				}
				const vz_ynode *hv = v->items[j];
				if (vz_yscalar_is_null(hv))
					continue;
				if (hv->kind != VZ_Y_MAP)
					return vz_err_set(e, VZ_EINVAL, "%s:%d:%d: variables of host '%s' must be a mapping",
							  fname, hv->line, hv->col, v->keys[j]->str);
				json_t *j2 = vz_ynode_to_json(hv);
				json_object_update(inv->hosts[h].vars, j2);
				json_decref(j2);
			}
		} else if (!strcmp(k, "vars")) {
			if (vz_yscalar_is_null(v))
				continue;
			if (v->kind != VZ_Y_MAP)
				return vz_err_set(e, VZ_EINVAL, "%s:%d:%d: 'vars' of group '%s' must be a mapping", fname,
						  v->line, v->col, name);
			json_t *j2 = vz_ynode_to_json(v);
			json_object_update(inv->groups[g].vars, j2);
			json_decref(j2);
		} else if (!strcmp(k, "children")) {
			if (vz_yscalar_is_null(v))
				continue;
			if (v->kind != VZ_Y_MAP)
				return vz_err_set(e, VZ_EINVAL, "%s:%d:%d: 'children' of group '%s' must be a mapping of "
						  "group names", fname, v->line, v->col, name);
			for (size_t j = 0; j < v->n; j++) {
				if ((rc = yaml_group(inv, v->items[j], v->keys[j]->str, fname, depth + 1, e)) != 0)
					return rc;
				int c = find_group(inv, v->keys[j]->str);
				g = find_group(inv, name); /* indices are stable; the array may have moved */
				if ((rc = add_child(inv, g, c, e)) != 0)
					return rc;
			}
		} else {
			return vz_err_set(e, VZ_EINVAL, "%s:%d:%d: unknown key '%.60s' in group '%s' (expected hosts, "
					  "vars or children)", fname, gnode->keys[i]->line, gnode->keys[i]->col, k, name);
		}
	}
	return 0;
}

static int looks_yaml(const vz_ynode *root)
{
	if (!root || root->kind != VZ_Y_MAP)
		return 0;
	for (size_t i = 0; i < root->n; i++)
		if (root->items[i]->kind != VZ_Y_MAP && !vz_yscalar_is_null(root->items[i]))
			return 0;
	return 1;
}

int vz_inventory_parse(vz_inventory **out, const char *data, size_t len, const char *fname, vz_err *e)
{
	vz_inventory *inv = vz_inventory_new();
	vz_ynode *root = NULL;
	vz_err ye = { 0 };
	int rc = 0;

	*out = NULL;
	if (!inv)
		return vz_err_set(e, VZ_ENOMEM, "out of memory loading %s", fname);
	if (vz_yaml_parse(&root, data, len, fname, &ye) == 0 && looks_yaml(root)) {
		for (size_t i = 0; i < root->n; i++)
			if ((rc = yaml_group(inv, root->items[i], root->keys[i]->str, fname, 0, e)) != 0)
				goto out;
	} else if ((rc = parse_ini(inv, data, len, fname, e)) != 0) {
		goto out;
	}
	/* hosts in no group other than all are in ungrouped */
	for (size_t h = 0; h < inv->nhosts; h++) {
		int in = 0;
		for (size_t g = 2; g < inv->ngroups && !in; g++)
			for (size_t k = 0; k < inv->groups[g].nhosts; k++)
				if (inv->groups[g].hosts[k] == h)
					in = 1;
		if (!in && group_add_idx(&inv->groups[1].hosts, &inv->groups[1].nhosts, &inv->groups[1].chosts, h)) {
			rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
			goto out;
		}
	}
	*out = inv;
	inv = NULL;
out:
	vz_ynode_free(root);
	vz_inventory_free(inv);
	return rc;
}

int vz_inventory_load(vz_inventory **out, const char *path, vz_err *e)
{
	vz_buf b = VZ_BUF_INIT(VZ_YAML_MAX_INPUT);
	int rc = vz_read_file(path, VZ_YAML_MAX_INPUT, &b, e);
	*out = NULL;
	if (rc == 0)
		rc = vz_inventory_parse(out, b.ptr ? b.ptr : "", b.len, path, e);
	vz_buf_free(&b);
	return rc;
}

/* ---- queries ---- */

size_t vz_inventory_nhosts(const vz_inventory *inv)
{
	return inv ? inv->nhosts : 0;
}

const char *vz_inventory_host(const vz_inventory *inv, size_t i)
{
	return inv && i < inv->nhosts ? inv->hosts[i].name : NULL;
}

int vz_inventory_has_host(const vz_inventory *inv, const char *host)
{
	return inv && host && find_host(inv, host) >= 0;
}

/* Marks in mark[] the groups containing host h (directly or through children), with their depth
 * from all (the deepest path, as Ansible's group depth). Bounded: depth <= ngroups. */
static int host_in_group(const vz_inventory *inv, size_t g, size_t h, int depth)
{
	const inv_group *gr = &inv->groups[g];
	if (depth > 64)
		return 0;
	if (g == 0)
		return 1; /* all */
	for (size_t i = 0; i < gr->nhosts; i++)
		if (gr->hosts[i] == h)
			return 1;
	for (size_t i = 0; i < gr->nkids; i++)
		if (host_in_group(inv, gr->kids[i], h, depth + 1))
			return 1;
	return 0;
}

static int group_depth(const vz_inventory *inv, size_t g, int guard)
{
	int best = 0;
	if (g == 0 || guard > 64)
		return 0;
	for (size_t p = 0; p < inv->ngroups; p++)
		for (size_t k = 0; k < inv->groups[p].nkids; k++)
			if (inv->groups[p].kids[k] == g) {
				int d = group_depth(inv, p, guard + 1) + 1;
				if (d > best)
					best = d;
			}
	return best ? best : 1; /* a top-level group is a child of all */
}

typedef struct gsort {
	int depth;
	const char *name;
	size_t idx;
} gsort;

static int gsort_cmp(const void *a, const void *b)
{
	const gsort *x = a, *y = b;
	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return strcmp(x->name, y->name);
}

json_t *vz_inventory_host_vars(const vz_inventory *inv, const char *host)
{
	json_t *v = json_object();
	int h = inv && host ? find_host(inv, host) : -1;
	if (!v || h < 0)
		return v;
	gsort *gs = calloc(inv->ngroups, sizeof(*gs));
	size_t n = 0;
	if (!gs)
		return v;
	for (size_t g = 0; g < inv->ngroups; g++)
		if (host_in_group(inv, g, (size_t)h, 0))
			gs[n++] = (gsort){ group_depth(inv, g, 0), inv->groups[g].name, g };
	qsort(gs, n, sizeof(*gs), gsort_cmp);
	for (size_t i = 0; i < n; i++)
		json_object_update(v, inv->groups[gs[i].idx].vars);
	json_object_update(v, inv->hosts[h].vars);
	free(gs);
	return v;
}

static void group_hosts(const vz_inventory *inv, size_t g, json_t *arr, int depth)
{
	const inv_group *gr = &inv->groups[g];
	if (depth > 64)
		return;
	if (g == 0) {
		for (size_t h = 0; h < inv->nhosts; h++)
			json_array_append_new(arr, json_string(inv->hosts[h].name));
		return;
	}
	for (size_t i = 0; i < gr->nhosts; i++) {
		const char *name = inv->hosts[gr->hosts[i]].name;
		int dup = 0;
		for (size_t k = 0; k < json_array_size(arr) && !dup; k++)
			dup = !strcmp(json_string_value(json_array_get(arr, k)), name);
		if (!dup)
			json_array_append_new(arr, json_string(name));
	}
	for (size_t i = 0; i < gr->nkids; i++)
		group_hosts(inv, gr->kids[i], arr, depth + 1);
}

json_t *vz_inventory_groups(const vz_inventory *inv)
{
	json_t *o = json_object();
	for (size_t g = 0; inv && g < inv->ngroups; g++) {
		json_t *a = json_array();
		group_hosts(inv, g, a, 0);
		json_object_set_new(o, inv->groups[g].name, a);
	}
	return o;
}

static int strp_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *vz_inventory_group_names(const vz_inventory *inv, const char *host)
{
	json_t *a = json_array();
	int h = inv && host ? find_host(inv, host) : -1;
	if (h < 0)
		return a;
	const char **names = calloc(inv->ngroups, sizeof(*names));
	size_t n = 0;
	if (!names)
		return a;
	for (size_t g = 2; g < inv->ngroups; g++)
		if (host_in_group(inv, g, (size_t)h, 0))
			names[n++] = inv->groups[g].name;
	qsort(names, n, sizeof(*names), strp_cmp);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(names[i]));
	free(names);
	return a;
}

static int arr_has(const json_t *a, const char *s)
{
	for (size_t i = 0; i < json_array_size(a); i++)
		if (!strcmp(json_string_value(json_array_get(a, i)), s))
			return 1;
	return 0;
}

/* Hosts of one pattern term: all/'*', a group, a host, or a wildcard over both. */
static void term_hosts(const vz_inventory *inv, const char *t, json_t *arr, int *implicit)
{
	if (!strcmp(t, "all") || !strcmp(t, "*")) {
		group_hosts(inv, 0, arr, 0);
		return;
	}
	int g = find_group(inv, t);
	if (g >= 0) {
		group_hosts(inv, (size_t)g, arr, 0);
		return;
	}
	if (find_host(inv, t) >= 0) {
		if (!arr_has(arr, t))
			json_array_append_new(arr, json_string(t));
		return;
	}
	if (strpbrk(t, "*?[")) {
		for (size_t i = 0; i < inv->ngroups; i++)
			if (fnmatch(t, inv->groups[i].name, 0) == 0)
				group_hosts(inv, i, arr, 0);
		for (size_t i = 0; i < inv->nhosts; i++)
			if (fnmatch(t, inv->hosts[i].name, 0) == 0 && !arr_has(arr, inv->hosts[i].name))
				json_array_append_new(arr, json_string(inv->hosts[i].name));
		return;
	}
	if (!strcmp(t, "localhost") || !strcmp(t, "127.0.0.1")) {
		if (!arr_has(arr, "localhost"))
			json_array_append_new(arr, json_string("localhost"));
		if (implicit)
			*implicit = 1;
	}
}

int vz_inventory_match(json_t **out, const vz_inventory *inv, const char *pattern, int *implicit_localhost,
		       vz_err *e)
{
	json_t *res = json_array(), *tmp = NULL;
	char *copy = NULL;
	int rc = 0;

	*out = NULL;
	if (implicit_localhost)
		*implicit_localhost = 0;
	if (!pattern || !*pattern || strlen(pattern) > 4096) {
		rc = vz_err_set(e, VZ_EINVAL, "empty or over-long host pattern");
		goto out;
	}
	if (!(copy = strdup(pattern))) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
		goto out;
	}
	/* three passes as Ansible orders them: unions, then intersections, then exclusions */
	for (int pass = 0; pass < 3; pass++) {
		strcpy(copy, pattern);
		char *save = NULL;
		for (char *t = strtok_r(copy, ":,", &save); t; t = strtok_r(NULL, ":,", &save)) {
			while (*t == ' ')
				t++;
			size_t l = strlen(t);
			while (l && t[l - 1] == ' ')
				t[--l] = 0;
			if (!*t)
				continue;
			int kind = *t == '!' ? 2 : *t == '&' ? 1 : 0;
			if (kind != pass)
				continue;
			if (kind)
				t++;
			if (!*t) {
				rc = vz_err_set(e, VZ_EINVAL, "host pattern '%.200s': '%c' without a name", pattern,
						kind == 2 ? '!' : '&');
				goto out;
			}
			json_decref(tmp);
			tmp = json_array();
			term_hosts(inv, t, tmp, kind == 0 ? implicit_localhost : NULL);
			if (kind == 0) {
				for (size_t i = 0; i < json_array_size(tmp); i++)
					if (!arr_has(res, json_string_value(json_array_get(tmp, i))))
						json_array_append(res, json_array_get(tmp, i));
			} else {
				json_t *n = json_array();
				for (size_t i = 0; i < json_array_size(res); i++) {
					int has = arr_has(tmp, json_string_value(json_array_get(res, i)));
					if ((kind == 1) == has)
						json_array_append(n, json_array_get(res, i));
				}
				json_decref(res);
				res = n;
			}
		}
	}
	*out = res;
	res = NULL;
out:
	json_decref(res);
	json_decref(tmp);
	free(copy);
	return rc;
}
