/* vz_zconf_dir: Zuul configuration from work trees on disk, for `vinz config` and the tests: a
 * repository directory's in-repo files with Zuul's precedence, and a tenant file naming several
 * such directories as the projects of one tenant. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vz_buf.h"
#include "vz_util.h"
#include "vz_zconf_dir.h"
#include "vz_zconf_int.h"

#define MAX_FILE (4u * 1024 * 1024)
#define MAX_FILES 10000
#define MAX_DEPTH 16

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists *.yaml files under dir/rel recursively into v (relative paths). */
static int list_yaml(zc_vec *v, const char *dir, const char *rel, int depth, vz_err *e)
{
	if (depth > MAX_DEPTH)
		return vz_err_set(e, VZ_ETOOBIG, "%s/%s: directories nested deeper than %d", dir, rel, MAX_DEPTH);
	char *path = vz_path_join(dir, rel);
	DIR *d = opendir(path);
	int rc = 0;
	if (!d) {
		rc = vz_err_set(e, VZ_EIO, "%s: cannot read the directory", path);
		free(path);
		return rc;
	}
	struct dirent *de;
	while ((de = readdir(d)) && !rc) {
		if (de->d_name[0] == '.')
			continue;
		char *r = vz_path_join(rel, de->d_name);
		char *full = vz_path_join(dir, r);
		struct stat st;
		if (stat(full, &st) == 0 && S_ISDIR(st.st_mode))
			rc = list_yaml(v, dir, r, depth + 1, e);
		else if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && strlen(de->d_name) > 5 &&
			 strcmp(de->d_name + strlen(de->d_name) - 5, ".yaml") == 0) {
			if (v->n >= MAX_FILES)
				rc = vz_err_set(e, VZ_ETOOBIG, "%s: more than %d configuration files", path, MAX_FILES);
			else {
				zc_vec_push(v, r);
				r = NULL;
			}
		}
		free(r);
		free(full);
	}
	closedir(d);
	free(path);
	return rc;
}

static int add_file(json_t *out, const char *dir, const char *rel, vz_err *e)
{
	char *full = vz_path_join(dir, rel);
	vz_buf b = VZ_BUF_INIT(MAX_FILE);
	int rc = vz_read_file(full, MAX_FILE, &b, e);
	if (rc == 0 && b.len)
		json_object_set_new(out, rel, json_stringn(b.ptr, b.len));
	vz_buf_free(&b);
	free(full);
	return rc;
}

int vz_zconf_read_dir(json_t **out, const char *dir, vz_err *e)
{
	static const char *const roots[] = { "zuul.yaml", "zuul.d", ".zuul.yaml", ".zuul.d" };
	json_t *files = json_object();
	int rc = 0;
	*out = NULL;
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		json_decref(files);
		return vz_err_set(e, VZ_ENOTFOUND, "%s: not a directory (give a repository work tree)", dir);
	}
	for (size_t i = 0; i < 4 && json_object_size(files) == 0 && !rc; i++) {
		char *p = vz_path_join(dir, roots[i]);
		if (stat(p, &st) == 0) {
			if (S_ISREG(st.st_mode))
				rc = add_file(files, dir, roots[i], e);
			else if (S_ISDIR(st.st_mode)) {
				zc_vec v = { 0 };
				rc = list_yaml(&v, dir, roots[i], 0, e);
				if (v.n)
					qsort(v.v, v.n, sizeof(void *), cmp_cstr);
				for (size_t k = 0; k < v.n; k++) {
					if (!rc)
						rc = add_file(files, dir, v.v[k], e);
					free(v.v[k]);
				}
				free(v.v);
			}
		}
		free(p);
	}
	if (rc) {
		json_decref(files);
		return rc;
	}
	*out = files;
	return 0;
}

/* The branch checked out in dir (its .git/HEAD), or NULL. */
char *vz_zconf_dir_branch(const char *dir)
{
	char *head = vz_path_join(dir, ".git/HEAD");
	vz_buf b = VZ_BUF_INIT(4096);
	vz_err e = { 0 };
	char *r = NULL;
	if (vz_read_file(head, 4096, &b, &e) == 0 && vz_startswith(vz_buf_cstr(&b), "ref: refs/heads/")) {
		r = vz_xstrdup(vz_buf_cstr(&b) + 16);
		r[strcspn(r, "\r\n")] = 0;
	}
	vz_buf_free(&b);
	free(head);
	return r;
}

static unsigned type_bit(const char *s)
{
	static const struct {
		const char *n;
		unsigned t;
	} m[] = { { "pipeline", VZ_ZC_PIPELINE }, { "job", VZ_ZC_JOB }, { "project", VZ_ZC_PROJECT },
		  { "project-template", VZ_ZC_PROJECT_TEMPLATE }, { "nodeset", VZ_ZC_NODESET }, { "secret", VZ_ZC_SECRET },
		  { "semaphore", VZ_ZC_SEMAPHORE }, { "queue", VZ_ZC_QUEUE }, { "pragma", VZ_ZC_PRAGMA } };
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (strcmp(m[i].n, s) == 0)
			return m[i].t;
	return 0;
}

static int tenant_err(vz_err *e, const char *path, const vz_ynode *n, const char *msg)
{
	return vz_err_set(e, VZ_EINVAL, "%s:%d:%d: %s", path, n ? n->line : 1, n ? n->col : 1, msg);
}

static const char *tstr(const vz_ynode *m, const char *k)
{
	const vz_ynode *n = vz_ymap_get(m, k);
	return n && n->kind == VZ_Y_SCALAR && !vz_yscalar_is_null(n) ? n->str : NULL;
}

int vz_zconf_load_tenant(vz_zconf **out, json_t **cases, const char *path, vz_err *e)
{
	static const char *const src_keys[] = { "project", "branch", "trusted", "dir", "include", "exclude", NULL };
	vz_ynode *root = NULL;
	vz_zconf_source *srcs = NULL;
	json_t **files = NULL;
	size_t n = 0;
	char *base = NULL;
	int rc;
	*out = NULL;
	if (cases)
		*cases = NULL;
	if ((rc = vz_yaml_load_file(&root, path, e)))
		return rc;
	const vz_ynode *sl = vz_ymap_get(root, "sources");
	if (!root || root->kind != VZ_Y_MAP || !sl || sl->kind != VZ_Y_SEQ) {
		rc = tenant_err(e, path, sl ? sl : root, "a tenant file is a mapping with \"sources\": a list of {project, "
				"branch, trusted, dir, include, exclude}");
		goto out;
	}
	for (size_t i = 0; i < root->n; i++)
		if (strcmp(root->keys[i]->str, "sources") != 0 && strcmp(root->keys[i]->str, "cases") != 0) {
			rc = tenant_err(e, path, root->keys[i], "unknown key in a tenant file (sources, cases)");
			goto out;
		}
	base = vz_xstrdup(path);
	char *slash = strrchr(base, '/');
	if (slash)
		slash[1] = 0;
	else
		base[0] = 0;
	srcs = vz_xcalloc(sl->n + 1, sizeof(*srcs));
	files = vz_xcalloc(sl->n + 1, sizeof(*files));
	for (n = 0; n < sl->n; n++) {
		const vz_ynode *m = sl->items[n];
		if (m->kind != VZ_Y_MAP) {
			rc = tenant_err(e, path, m, "a source must be a mapping {project, branch, trusted, dir}");
			goto out;
		}
		for (size_t k = 0; k < m->n; k++) {
			int ok = 0;
			for (size_t q = 0; src_keys[q]; q++)
				ok |= strcmp(src_keys[q], m->keys[k]->str) == 0;
			if (!ok) {
				rc = tenant_err(e, path, m->keys[k], "unknown key in a source (project, branch, trusted, dir, include, "
						"exclude)");
				goto out;
			}
		}
		const char *proj = tstr(m, "project"), *dir = tstr(m, "dir"), *br = tstr(m, "branch");
		if (!proj || !dir) {
			rc = tenant_err(e, path, m, "a source needs a project and a dir");
			goto out;
		}
		int trusted = 0;
		const vz_ynode *tn = vz_ymap_get(m, "trusted");
		if (tn && vz_yscalar_bool(tn, &trusted)) {
			rc = tenant_err(e, path, tn, "trusted must be true or false");
			goto out;
		}
		unsigned types = VZ_ZC_ALL;
		const vz_ynode *inc = vz_ymap_get(m, "include"), *exc = vz_ymap_get(m, "exclude");
		if (inc || exc) {
			const vz_ynode *l = inc ? inc : exc;
			unsigned bits = 0;
			for (size_t k = 0; k < (l->kind == VZ_Y_SEQ ? l->n : 1); k++) {
				const vz_ynode *it = l->kind == VZ_Y_SEQ ? l->items[k] : l;
				unsigned b = it->kind == VZ_Y_SCALAR ? type_bit(it->str) : 0;
				if (!b) {
					rc = tenant_err(e, path, it, "unknown object type (pipeline, job, project, project-template, "
							"nodeset, secret, semaphore, queue, pragma)");
					goto out;
				}
				bits |= b;
			}
			types = inc ? bits : (VZ_ZC_ALL & ~bits);
		}
		char *full = dir[0] == '/' ? vz_xstrdup(dir) : vz_path_join(base[0] ? base : ".", dir);
		rc = vz_zconf_read_dir(&files[n], full, e);
		free(full);
		if (rc) {
			vz_err_prefix(e, "%s:%d:%d", path, m->line, m->col);
			goto out;
		}
		srcs[n].project = proj;
		srcs[n].branch = br ? br : "master";
		srcs[n].trusted = trusted;
		srcs[n].files = files[n];
		srcs[n].types = types ? types : VZ_ZC_ALL;
		/* messages name files as DIR/zuul.d/x.yaml relative to the tenant file */
		srcs[n].prefix = dir;
	}
	rc = vz_zconf_load(out, srcs, n, e);
	if (cases && (rc == 0 || *out)) {
		const vz_ynode *cn = vz_ymap_get(root, "cases");
		*cases = cn ? vz_ynode_to_json(cn) : json_array();
	}
out:
	for (size_t i = 0; files && i <= n && i < (sl ? sl->n : 0); i++)
		json_decref(files[i]);
	free(files);
	free(srcs);
	free(base);
	vz_ynode_free(root);
	return rc;
}
