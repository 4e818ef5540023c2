/* vz_zconf_freeze: the job graph Zuul freezes for an item. A project's pipeline config is its
 * templates' then its own job lists; each job collects its matching variants base-first through its
 * parents (Zuul's Layout.collectJobs), applies them in order with Zuul's inheritance rules
 * (Job.applyVariant), takes the project's vars and its project-pipeline variants, is filtered by
 * files/irrelevant-files, and the dependencies between the jobs left must form a DAG. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_buf.h"
#include "vz_util.h"
#include "vz_zconf_int.h"

void zc_sort_errors(vz_zconf *z);

enum { K_REPLACE, K_PB, K_DEEP, K_UNION, K_PROJECTS, K_INTERSECT, K_ROLES, K_SECRETS, K_STICKY, K_META, K_MATCHER };

typedef struct merge_spec {
	const char *name;
	int kind;
	int context; /* may change on a final job, and from another project on a protected one */
	int pbi;     /* playbook list index for K_PB */
} merge_spec;

/* How each attribute inherits (docs/zuul-config.md, "Job attributes and how they inherit"; Zuul's
 * Job.applyVariant). Kept sorted by name: spec_of searches it with bsearch. */
static const merge_spec merges[] = {
	{ "abstract", K_META, 1, 0 },
	{ "allowed-projects", K_INTERSECT, 0, 0 },
	{ "branches", K_MATCHER, 1, 0 },
	{ "cleanup-run", K_PB, 0, 3 },
	{ "dependencies", K_REPLACE, 1, 0 },
	{ "description", K_REPLACE, 1, 0 },
	{ "extra-vars", K_DEEP, 0, 0 },
	{ "failure-message", K_REPLACE, 1, 0 },
	{ "failure-url", K_REPLACE, 1, 0 },
	{ "files", K_REPLACE, 1, 0 },
	{ "final", K_META, 1, 0 },
	{ "group-vars", K_DEEP, 0, 0 },
	{ "hold-following-changes", K_REPLACE, 1, 0 },
	{ "host-vars", K_DEEP, 0, 0 },
	{ "intermediate", K_META, 1, 0 },
	{ "irrelevant-files", K_REPLACE, 1, 0 },
	{ "match-on-config-updates", K_REPLACE, 1, 0 },
	{ "post-review", K_STICKY, 0, 0 },
	{ "post-run", K_PB, 0, 2 },
	{ "pre-run", K_PB, 0, 0 },
	{ "protected", K_META, 1, 0 },
	{ "provides", K_UNION, 1, 0 },
	{ "required-projects", K_PROJECTS, 0, 0 },
	{ "requires", K_UNION, 1, 0 },
	{ "roles", K_ROLES, 0, 0 },
	{ "run", K_PB, 0, 1 },
	{ "secrets", K_SECRETS, 0, 0 },
	{ "semaphores", K_UNION, 0, 0 },
	{ "success-message", K_REPLACE, 1, 0 },
	{ "success-url", K_REPLACE, 1, 0 },
	{ "tags", K_UNION, 1, 0 },
	{ "vars", K_DEEP, 0, 0 },
	{ "voting", K_REPLACE, 1, 0 },
};
#define NMERGES (sizeof(merges) / sizeof(merges[0]))

/* everything not listed: replaced, an execution attribute */
static const merge_spec replaced_spec = { NULL, K_REPLACE, 0, 0 };

static const char *const pb_names[4] = { "pre-run", "run", "post-run", "cleanup-run" };

static int cmp_spec(const void *key, const void *elem)
{
	return strcmp(key, ((const merge_spec *)elem)->name);
}

static const merge_spec *spec_of(const char *name)
{
	const merge_spec *m = bsearch(name, merges, NMERGES, sizeof(merges[0]), cmp_spec);
	return m ? m : &replaced_spec;
}

/* A job being frozen. */
typedef struct fz {
	char *name;
	json_t *attrs, *from, *roles, *variants;
	json_t *pb[4];
	int final, abstract, intermediate;
	char *protected_origin;
	const zc_rxlist *files, *irrelevant;
	zc_pos run_pos;
} fz;

static void fz_free(fz *f)
{
	if (!f)
		return;
	free(f->name);
	json_decref(f->attrs);
	json_decref(f->from);
	json_decref(f->roles);
	json_decref(f->variants);
	for (int i = 0; i < 4; i++)
		json_decref(f->pb[i]);
	free(f->protected_origin);
	free(f);
}

static fz *fz_new(const char *name)
{
	fz *f = vz_xcalloc(1, sizeof(*f));
	f->name = vz_xstrdup(name);
	f->attrs = json_object();
	f->from = json_object();
	f->roles = json_array();
	f->variants = json_array();
	for (int i = 0; i < 4; i++)
		f->pb[i] = json_array();
	return f;
}

/* Freeze failure: where and what. */
typedef struct ferr {
	zc_pos pos;
	char *msg;
} ferr;

static int fail(ferr *fe, const zc_pos *p, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(ferr *fe, const zc_pos *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vz_buf b = VZ_BUF_INIT(4096);
	vz_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(fe->msg);
	fe->msg = vz_buf_detach(&b);
	fe->pos = p ? *p : (zc_pos){ 0 };
	return VZ_EINVAL;
}

static zc_pos attr_pos(const zc_job *v, const char *k)
{
	json_t *ap = json_object_get(v->apos, k);
	zc_pos p = { v->pos.f, ap ? (int)json_integer_value(json_array_get(ap, 0)) : v->pos.line,
		     ap ? (int)json_integer_value(json_array_get(ap, 1)) : v->pos.col };
	return p;
}

static json_t *where(const zc_pos *p)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s:%d", p->f ? p->f->fname : "?", p->line);
	return json_string(buf);
}

static void deep_update(json_t *a, json_t *b)
{
	const char *k;
	json_t *bv;
	json_object_foreach(b, k, bv) {
		json_t *av = json_object_get(a, k);
		if (json_is_object(av) && json_is_object(bv))
			deep_update(av, bv);
		else
			json_object_set_new(a, k, json_deep_copy(bv));
	}
}

static int in_array(json_t *arr, json_t *v)
{
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x) if (json_equal(x, v)) return 1;
	return 0;
}

static void add_from(fz *f, const char *k, const zc_pos *p, int list)
{
	if (!list) {
		json_object_set_new(f->from, k, where(p));
		return;
	}
	json_t *l = json_object_get(f->from, k);
	if (!json_is_array(l)) {
		l = json_array();
		json_object_set_new(f->from, k, l);
	}
	json_array_append_new(l, where(p));
}

/* Drops the internal "at" positions from list items. */
static json_t *strip_at(json_t *v)
{
	json_t *c = json_deep_copy(v);
	size_t i;
	json_t *x;
	json_array_foreach(c, i, x) if (json_is_object(x)) json_object_del(x, "at");
	return c;
}

/* Zuul's Job.applyVariant: other = v applied onto the job being frozen. */
/* With light set only the checks and the flags they need are done (final, protected, abstract,
 * intermediate, the file matchers): for a job that its file matchers will skip, so it reports the
 * same errors as Zuul's full freeze without building what is thrown away. */
static int apply(const vz_zconf *z, fz *f, const zc_job *v, int light, ferr *fe)
{
	int inherit = strcmp(f->name, v->name) != 0;
	const char *k;
	json_t *val;
	const char *vproj = v->pos.f->src->project;
	char vdesc[1200];
	snprintf(vdesc, sizeof(vdesc), "%s at %s:%d:%d", v->name, v->pos.f->fname, v->pos.line, v->pos.col);

	json_object_foreach(v->attrs, k, val) {
		const merge_spec *s = spec_of(k);
		if (s->context || s->kind == K_META)
			continue;
		zc_pos p = attr_pos(v, k);
		if (f->final)
			return fail(fe, &p, "unable to modify final job \"%s\" attribute \"%s\" with %s%s", f->name, k,
				    v->pp ? "the project's variant of " : "", vdesc);
		if (f->protected_origin && strcmp(f->protected_origin, vproj) != 0)
			return fail(fe, &p, "job \"%s\" is protected (defined in %s) and cannot be inherited or changed "
				    "by project %s", f->name, f->protected_origin, vproj);
	}
	json_t *fin = json_object_get(v->attrs, "final");
	if (fin)
		f->final = json_is_true(fin);
	json_t *prot = json_object_get(v->attrs, "protected");
	if (prot) {
		if (!json_is_true(prot) && f->protected_origin) {
			zc_pos p = attr_pos(v, "protected");
			return fail(fe, &p, "unable to reset the protected attribute of job \"%s\" by %s", f->name, vdesc);
		}
		if (json_is_true(prot) && !f->protected_origin)
			f->protected_origin = vz_xstrdup(vproj);
	}
	int v_abstract = json_is_true(json_object_get(v->attrs, "abstract"));
	int v_inter = json_is_true(json_object_get(v->attrs, "intermediate"));
	/* abstract may only be cleared by inheriting, never by a variant */
	if (inherit)
		f->abstract = v_abstract;
	else if (v_abstract)
		f->abstract = 1;
	if (inherit && f->intermediate && !v_abstract) {
		zc_pos p = v->pos;
		return fail(fe, &p, "job \"%s\" is intermediate and may only be inherited by an abstract job, not by %s",
			    f->name, vdesc);
	}
	if (inherit)
		f->intermediate = v_inter;
	else if (v_inter)
		f->intermediate = 1;

	if (light) {
		if (json_object_get(v->attrs, "files"))
			f->files = &v->files;
		if (json_object_get(v->attrs, "irrelevant-files"))
			f->irrelevant = &v->irrelevant;
		return 0;
	}

	/* roles first: the new playbooks see them */
	json_t *roles = json_object_get(v->attrs, "roles");
	if (roles) {
		size_t i;
		json_t *r;
		json_array_foreach(roles, i, r) if (!in_array(f->roles, r)) json_array_append(f->roles, r);
		zc_pos p = attr_pos(v, "roles");
		add_from(f, "roles", &p, 1);
	}
	/* secrets: the variant's own playbooks get them; pass-to-parent ones also go to the playbooks
	 * already there (the parents') */
	json_t *secrets = json_object_get(v->attrs, "secrets");
	json_t *own = json_array(), *to_parent = json_array();
	/* name -> secret object, for vz_zconf_job_secrets; only made when the variant has secrets */
	json_t *own_refs = json_array_size(secrets) ? json_object() : NULL;
	{
		size_t i;
		json_t *s;
		json_array_foreach(secrets, i, s) {
			const char *nm = json_string_value(json_object_get(s, "name"));
			json_array_append_new(own, json_string(nm));
			json_object_set(own_refs, nm, json_object_get(s, "secret"));
			if (json_is_true(json_object_get(s, "pass-to-parent")))
				json_array_append_new(to_parent, json_string(nm));
		}
	}
	if (json_array_size(to_parent))
		for (int w = 0; w < 4; w++) {
			size_t i;
			json_t *pb;
			json_array_foreach(f->pb[w], i, pb) {
				json_t *ps = json_object_get(pb, "secrets");
				json_t *refs = json_object_get(pb, "secret-refs");
				if (!refs) {
					refs = json_object();
					json_object_set_new(pb, "secret-refs", refs);
				}
				size_t q;
				json_t *s;
				json_array_foreach(to_parent, q, s) if (!in_array(ps, s)) {
					json_array_append(ps, s);
					json_object_set(refs, json_string_value(s), json_object_get(own_refs, json_string_value(s)));
				}
			}
		}
	json_decref(to_parent);

	json_object_foreach(v->attrs, k, val) {
		const merge_spec *s = spec_of(k);
		zc_pos p = attr_pos(v, k);
		switch (s->kind) {
		case K_META:
		case K_MATCHER:
		case K_ROLES:
		case K_SECRETS:
			break;
		case K_REPLACE:
			json_object_set_new(f->attrs, k, strip_at(val));
			add_from(f, k, &p, 0);
			/* the variant's list replaces the matcher, an empty one too (Zuul's
			 * setFileMatcher([]): MatchAnyFiles with no regex matches no changed file, and
			 * MatchAllFiles with none never finds a change irrelevant) */
			if (strcmp(k, "files") == 0)
				f->files = &v->files;
			else if (strcmp(k, "irrelevant-files") == 0)
				f->irrelevant = &v->irrelevant;
			break;
		case K_PB: {
			json_t *list = json_array();
			size_t i;
			json_t *path;
			json_array_foreach(val, i, path) {
				json_array_append_new(list, json_pack("{s:O,s:s,s:s,s:b,s:O,s:O,s:o}", "path", path, "project",
								      vproj, "branch", v->pos.f->src->branch, "trusted",
								      v->pos.f->src->trusted, "roles", f->roles, "secrets", own,
								      "from", where(&p)));
				/* each playbook keeps its own copy of the role list */
				json_t *pb = json_array_get(list, json_array_size(list) - 1);
				json_object_set_new(pb, "roles", json_deep_copy(f->roles));
				json_object_set_new(pb, "secrets", json_deep_copy(own));
				if (json_object_size(own_refs))
					json_object_set_new(pb, "secret-refs", json_deep_copy(own_refs));
			}
			json_t *old = f->pb[s->pbi];
			if (s->pbi == 1) { /* run: replaced */
				f->pb[1] = list;
				f->run_pos = p;
				json_decref(old);
			} else if (s->pbi == 0) { /* pre-run: parent first */
				json_array_extend(old, list);
				json_decref(list);
			} else { /* post-run, cleanup-run: child first */
				json_array_extend(list, old);
				f->pb[s->pbi] = list;
				json_decref(old);
			}
			add_from(f, k, &p, 1);
			break;
		}
		case K_DEEP: {
			json_t *cur = json_object_get(f->attrs, k);
			if (!cur) {
				cur = json_object();
				json_object_set_new(f->attrs, k, cur);
			}
			deep_update(cur, val);
			add_from(f, k, &p, 1);
			break;
		}
		case K_UNION: {
			json_t *cur = json_object_get(f->attrs, k);
			if (!cur) {
				cur = json_array();
				json_object_set_new(f->attrs, k, cur);
			}
			size_t i;
			json_t *x;
			json_array_foreach(val, i, x) if (!in_array(cur, x)) json_array_append(cur, x);
			add_from(f, k, &p, 1);
			break;
		}
		case K_PROJECTS: {
			json_t *cur = json_object_get(f->attrs, k);
			if (!cur) {
				cur = json_array();
				json_object_set_new(f->attrs, k, cur);
			}
			size_t i;
			json_t *x;
			json_array_foreach(val, i, x) {
				json_t *c = json_deep_copy(x);
				json_object_del(c, "at");
				const char *nm = json_string_value(json_object_get(x, "name"));
				size_t q;
				json_t *y;
				int done = 0;
				json_array_foreach(cur, q, y) {
					if (!done && strcmp(json_string_value(json_object_get(y, "name")), nm) == 0) {
						json_array_set(cur, q, c);
						done = 1;
					}
				}
				if (!done)
					json_array_append(cur, c);
				json_decref(c);
			}
			add_from(f, k, &p, 1);
			break;
		}
		case K_INTERSECT: {
			json_t *cur = json_object_get(f->attrs, k);
			if (!cur)
				json_object_set_new(f->attrs, k, json_deep_copy(val));
			else {
				json_t *n = json_array();
				size_t i;
				json_t *x;
				json_array_foreach(cur, i, x) if (in_array(val, x)) json_array_append(n, x);
				json_object_set_new(f->attrs, k, n);
			}
			add_from(f, k, &p, 1);
			break;
		}
		case K_STICKY: {
			int cur = json_is_true(json_object_get(f->attrs, k));
			json_object_set_new(f->attrs, k, json_boolean(cur || json_is_true(val)));
			add_from(f, k, &p, 1);
			break;
		}
		}
	}
	json_decref(own);
	json_decref(own_refs);
	(void)z;
	char vbuf[1400];
	snprintf(vbuf, sizeof(vbuf), "%s%s (%s:%d, project %s, branch %s)", v->pp ? "project variant of " : "", v->name,
		 v->pos.f->fname, v->pos.line, vproj, v->pos.f->src->branch);
	json_array_append_new(f->variants, json_string(vbuf));
	return 0;
}

/* ---- collecting variants (Layout.collectJobs) ---- */

enum { COLLECT_NOMATCH = 1 };

/* A bound on the parent chain (the recursion below); real tenants stay under ten. */
#define MAX_INHERITANCE 256
/* A bound on the dependency search's recursion. */
#define MAX_DEPCHAIN 10000

static int name_in(const zc_vec *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i], name) == 0)
			return 1;
	return 0;
}

static const char *canonical(const vz_zconf *z, const char *name);

/* The branch a job's variants are matched against: the item's, unless an override-checkout from
 * the jobs inheriting it (oc: {canonical project or "": branch}) names a branch that the project
 * defining the job has (Zuul's _collectJobVariants). */
static const char *variant_branch(const vz_zconf *z, const zc_joblist *l, json_t *oc, const char *branch)
{
	if (!l->v.n || !json_object_size(oc))
		return branch;
	const zc_job *first = l->v.v[0];
	const char *project = first->pos.f->src->project;
	const char *ob = json_string_value(json_object_get(oc, project));
	if (!ob)
		ob = json_string_value(json_object_get(oc, ""));
	if (!ob)
		return branch;
	vz_buf k = VZ_BUF_INIT(8192);
	vz_buf_printf(&k, "%s\n%s", project, ob);
	int known = !k.failed && z->proj_branches && vz_map_get(z->proj_branches, vz_buf_cstr(&k));
	vz_buf_free(&k);
	return known ? ob : branch;
}

static int collect(const vz_zconf *z, const char *name, const char *branch, json_t *oc, zc_vec *path, zc_vec *jobs,
		   zc_vec *stack, const zc_pos *ref, ferr *fe)
{
	zc_vec_push(path, (void *)name);
	zc_joblist *l = vz_map_get(z->jobs, name);
	if (!l)
		return fail(fe, ref, "job \"%s\" is not defined", name);
	int matched = 0;
	const char *vbranch = variant_branch(z, l, oc, branch);
	json_t *local = json_copy(oc);
	for (size_t i = 0; i < l->v.n; i++) {
		zc_job *v = l->v.v[i];
		if (!zc_job_matches_branch(v, vbranch))
			continue;
		const char *parent = NULL;
		if (v->parent_kind == 1)
			parent = v->parent;
		else if (v->parent_kind == 0 && jobs->n == 0)
			parent = z->default_parent;
		/* what this definition asks to check out steers its parents' variants */
		json_t *co = json_object_get(v->attrs, "override-checkout");
		if (json_is_string(co))
			json_object_set(local, "", co);
		size_t x;
		json_t *rp;
		json_array_foreach(json_object_get(v->attrs, "required-projects"), x, rp) {
			json_t *rco = json_object_get(rp, "override-checkout");
			if (json_is_string(rco))
				json_object_set(local, canonical(z, json_string_value(json_object_get(rp, "name"))), rco);
		}
		if (parent && !name_in(path, parent)) {
			int rc = 0;
			if (stack->n >= MAX_INHERITANCE) {
				zc_pos p = v->parent_kind == 1 ? v->parent_pos : v->pos;
				rc = fail(fe, &p, "job \"%s\": inheritance deeper than %d jobs", name, MAX_INHERITANCE);
			} else if (name_in(stack, parent)) {
				vz_buf b = VZ_BUF_INIT(4096);
				for (size_t s = 0; s < stack->n; s++)
					vz_buf_printf(&b, "%s -> ", (char *)stack->v[s]);
				zc_pos p = v->parent_kind == 1 ? v->parent_pos : v->pos;
				rc = fail(fe, &p, "job inheritance cycle: %s%s -> %s", vz_buf_cstr(&b), name, parent);
				vz_buf_free(&b);
			} else {
				zc_vec_push(stack, (void *)name);
				zc_pos pp = v->parent_kind == 1 ? v->parent_pos : v->pos;
				rc = collect(z, parent, branch, local, path, jobs, stack, &pp, fe);
				stack->n--;
			}
			if (rc) {
				json_decref(local);
				return rc;
			}
		}
		matched = 1;
		int have = 0;
		for (size_t q = 0; q < jobs->n; q++)
			if (jobs->v[q] == v)
				have = 1;
		if (!have)
			zc_vec_push(jobs, v);
	}
	json_decref(local);
	return matched ? 0 : COLLECT_NOMATCH;
}

/* ---- project pipeline config ---- */

typedef struct ppcfg {
	vz_map *index;   /* job name -> its position in names, plus one */
	zc_vec names;    /* char* job names in first-seen order */
	zc_vec variants; /* zc_vec* per name: zc_job* project-pipeline variants */
	int debug, fail_fast, found;
	const char *queue, *default_branch, *merge_mode;
	json_t *vars, *vars_from;
} ppcfg;

static void ppcfg_free(ppcfg *c)
{
	for (size_t i = 0; i < c->variants.n; i++) {
		zc_vec *v = c->variants.v[i];
		free(v->v);
		free(v);
	}
	free(c->variants.v);
	free(c->names.v);
	vz_map_free(c->index);
	json_decref(c->vars);
	json_decref(c->vars_from);
}

static void ppcfg_add(ppcfg *c, const zc_ppc *pc)
{
	for (size_t i = 0; i < pc->jobs.n; i++) {
		zc_job *j = pc->jobs.v[i];
		size_t k = (size_t)(uintptr_t)vz_map_get(c->index, j->name);
		if (k == 0) {
			zc_vec_push(&c->names, j->name);
			zc_vec_push(&c->variants, vz_xcalloc(1, sizeof(zc_vec)));
			k = c->names.n;
			vz_map_set(c->index, j->name, (void *)(uintptr_t)k);
		}
		if (k <= c->variants.n)
			zc_vec_push(c->variants.v[k - 1], j);
	}
	if (pc->debug == 1)
		c->debug = 1;
	if (pc->fail_fast != -1)
		c->fail_fast = pc->fail_fast;
	if (pc->queue)
		c->queue = pc->queue;
	c->found = 1;
}

static const zc_ppc *ppc_of(const zc_project *p, const char *pipeline)
{
	for (size_t i = 0; i < p->ppcs.n; i++) {
		const zc_ppc *c = p->ppcs.v[i];
		if (strcmp(c->pipeline, pipeline) == 0)
			return c;
	}
	return NULL;
}

static int project_matches(const zc_project *p, const char *project)
{
	if (p->is_regex) {
		if (zc_rx_match(&p->rx, project))
			return 1;
		const char *slash = strchr(project, '/');
		return slash && strchr(slash + 1, '/') && zc_rx_match(&p->rx, slash + 1); /* also less its hostname */
	}
	return zc_name_matches(p->name, project);
}

/* Layout.getProjectPipelineConfig: every project stanza naming the project (regex ones first, then
 * by name, each in load order) whose branch matcher accepts the branch; for each its templates'
 * config for the pipeline, then its own; vars: templates' then the project's. */
static void add_project(const vz_zconf *z, ppcfg *c, const zc_project *p, const char *branch, const char *pipeline)
{
	for (size_t t = 0; t < p->templates.n; t++) {
		const zc_vec *tv = z->template_vecs ? vz_map_get(z->template_vecs, p->templates.v[t]) : NULL;
		for (size_t q = 0; tv && q < tv->n; q++) {
			const zc_project *tp = tv->v[q];
			if (!zc_project_matches_branch(tp, branch))
				continue;
			const zc_ppc *pc = ppc_of(tp, pipeline);
			if (pc)
				ppcfg_add(c, pc);
			if (tp->vars) {
				deep_update(c->vars, tp->vars);
				json_array_append_new(c->vars_from, where(&tp->pos));
			}
		}
	}
	const zc_ppc *pc = ppc_of(p, pipeline);
	if (pc)
		ppcfg_add(c, pc);
	if (p->vars) {
		deep_update(c->vars, p->vars);
		json_array_append_new(c->vars_from, where(&p->pos));
	}
	if (p->default_branch)
		c->default_branch = p->default_branch;
	if (p->merge_mode)
		c->merge_mode = p->merge_mode;
	if (p->queue)
		c->queue = p->queue;
}

static void build_ppc(const vz_zconf *z, ppcfg *c, const char *project, const char *branch, const char *pipeline)
{
	memset(c, 0, sizeof(*c));
	c->index = vz_map_new();
	c->fail_fast = 0;
	c->vars = json_object();
	c->vars_from = json_array();
	for (size_t i = 0; i < z->regex_projects.n; i++) {
		const zc_project *p = z->regex_projects.v[i];
		if (project_matches(p, project) && zc_project_matches_branch(p, branch))
			add_project(z, c, p, branch, pipeline);
	}
	const zc_vec *v = z->proj_index ? vz_map_get(z->proj_index, zc_short_name(project)) : NULL;
	for (size_t i = 0; v && i < v->n; i++) {
		const zc_project *p = v->v[i];
		if (project_matches(p, project) && zc_project_matches_branch(p, branch))
			add_project(z, c, p, branch, pipeline);
	}
}

/* ---- file matchers (Zuul's MatchAnyFiles / MatchAllFiles) ---- */

static int is_commit_msg(const char *f)
{
	return strcmp(f, "/COMMIT_MSG") == 0;
}

static int files_match(const zc_rxlist *l, const vz_zconf_item *it)
{
	if (!it->files || it->nfiles == 0)
		return 1;
	if (it->nfiles == 1 && is_commit_msg(it->files[0]))
		return 1;
	for (size_t i = 0; i < it->nfiles; i++)
		if (!is_commit_msg(it->files[i]) && zc_rxlist_any(l, it->files[i]))
			return 1;
	return 0;
}

static int irrelevant_match(const zc_rxlist *l, const vz_zconf_item *it)
{
	if (!it->files || it->nfiles == 0)
		return 0;
	if (it->nfiles == 1 && is_commit_msg(it->files[0]))
		return 0;
	for (size_t i = 0; i < it->nfiles; i++)
		if (!is_commit_msg(it->files[i]) && !zc_rxlist_any(l, it->files[i]))
			return 0;
	return 1;
}

/* ---- output ---- */

static json_t *resolve_inline(const vz_zconf *z, json_t *in)
{
	json_t *r = json_deep_copy(in);
	json_t *alts = json_object_get(r, "alternatives");
	size_t i;
	json_t *a;
	json_array_foreach(alts, i, a) {
		const char *ref = json_string_value(json_object_get(a, "ref"));
		if (ref) {
			zc_named *o = vz_map_get(z->nodesets, ref);
			json_t *x = o ? json_deep_copy(o->data) : json_object();
			json_object_set_new(x, "name", json_string(ref));
			json_array_set_new(alts, i, x);
		}
	}
	return r;
}

/* The effective nodeset with names resolved: {"name"?, "nodes", "groups"} or {"alternatives"}. */
static json_t *resolve_nodeset(const vz_zconf *z, json_t *ns)
{
	if (json_is_string(ns)) {
		zc_named *o = vz_map_get(z->nodesets, json_string_value(ns));
		if (!o)
			return json_null();
		json_t *r = resolve_inline(z, o->data);
		json_object_set_new(r, "name", json_string(o->name));
		return r;
	}
	if (json_is_object(ns))
		return resolve_inline(z, json_object_get(ns, "inline"));
	return json_null();
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static void sort_strings(json_t *arr)
{
	size_t n = json_array_size(arr);
	if (n < 2)
		return;
	json_t **v = calloc(n, sizeof(*v));
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof(*v), cmp_str);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
}

static json_t *fz_json(const vz_zconf *z, fz *f, json_t *deps)
{
	static const char *const sets[] = { "tags", "provides", "requires", "semaphores", NULL };
	for (size_t i = 0; sets[i]; i++)
		sort_strings(json_object_get(f->attrs, sets[i]));
	if (!json_object_get(f->attrs, "voting"))
		json_object_set_new(f->attrs, "voting", json_true());
	if (!json_object_get(f->attrs, "attempts"))
		json_object_set_new(f->attrs, "attempts", json_integer(3));
	json_object_set_new(f->attrs, "abstract", json_boolean(f->abstract));
	json_object_set_new(f->attrs, "final", json_boolean(f->final));
	json_object_set_new(f->attrs, "protected", json_boolean(f->protected_origin != NULL));
	json_t *pbs = json_object();
	for (int i = 0; i < 4; i++)
		json_object_set(pbs, pb_names[i], f->pb[i]);
	json_t *nsr = resolve_nodeset(z, json_object_get(f->attrs, "nodeset"));
	return json_pack("{s:s,s:O,s:O,s:O,s:O,s:o,s:o}", "name", f->name, "dependencies", deps, "variants", f->variants,
			 "attributes", f->attrs, "from", f->from, "nodeset", nsr, "playbooks", pbs);
}

/* ---- the graph ---- */

typedef struct gjob {
	fz *f;
	json_t *deps; /* [{name, soft}] after pruning */
	zc_pos dep_pos;
	int mark;
} gjob;

/* The graph's jobs by name: index plus one. */
static vz_map *g_index_of(gjob *g, size_t n)
{
	vz_map *m = vz_map_new();
	for (size_t i = 0; m && i < n; i++)
		vz_map_set(m, g[i].f->name, (void *)(uintptr_t)(i + 1));
	return m;
}

static int find_job(const vz_map *m, const char *name)
{
	return (int)(uintptr_t)vz_map_get(m, name) - 1;
}

/* Depth-first search for a cycle; on finding one, fails naming it. */
static int dfs(gjob *g, const vz_map *gi, size_t i, zc_vec *stack, ferr *fe)
{
	if (stack->n >= MAX_DEPCHAIN)
		return fail(fe, &g[i].dep_pos, "dependency chain longer than %d jobs", MAX_DEPCHAIN);
	g[i].mark = 1;
	zc_vec_push(stack, g[i].f->name);
	size_t k;
	json_t *d;
	json_array_foreach(g[i].deps, k, d) {
		int j = find_job(gi, json_string_value(json_object_get(d, "name")));
		if (j < 0)
			continue;
		if (g[j].mark == 1) {
			vz_buf b = VZ_BUF_INIT(8192);
			size_t s0 = 0;
			for (size_t s = 0; s < stack->n; s++)
				if (strcmp(stack->v[s], g[j].f->name) == 0)
					s0 = s;
			for (size_t s = s0; s < stack->n; s++)
				vz_buf_printf(&b, "%s -> ", (char *)stack->v[s]);
			vz_buf_puts(&b, g[j].f->name);
			int rc = fail(fe, &g[i].dep_pos, "dependency cycle between jobs: %s (each waits for the next)",
				      vz_buf_cstr(&b));
			vz_buf_free(&b);
			return rc;
		}
		if (g[j].mark == 0) {
			int rc = dfs(g, gi, (size_t)j, stack, fe);
			if (rc)
				return rc;
		}
	}
	g[i].mark = 2;
	stack->n--;
	return 0;
}

/* The canonical name of a project the layout has a source for, else the name as given. */
static const char *canonical(const vz_zconf *z, const char *name)
{
	const char *c = z->canon ? vz_map_get(z->canon, name) : NULL;
	if (!c && z->canon)
		c = vz_map_get(z->canon, zc_short_name(name));
	return c ? c : name;
}

static int freeze(json_t **out, const vz_zconf *z, const vz_zconf_item *item, ferr *fe)
{
	vz_zconf_item canon = *item;
	canon.project = canonical(z, item->project);
	const vz_zconf_item *it = &canon;
	ppcfg c;
	gjob *g = NULL;
	vz_map *gi = NULL;
	size_t ng = 0;
	int rc = 0;
	json_t *skipped = json_array();
	*out = NULL;
	build_ppc(z, &c, it->project, it->branch, it->pipeline);
	zc_named *pl = vz_map_get(z->pipelines, it->pipeline);
	if (!pl) {
		rc = fail(fe, NULL, "pipeline \"%s\" is not defined", it->pipeline);
		goto out;
	}
	if (!c.found) {
		rc = fail(fe, NULL, "project %s has no jobs in pipeline %s on branch %s", it->project, it->pipeline, it->branch);
		rc = VZ_ENOTFOUND;
		goto out;
	}
	int post_review_pipeline = json_is_true(json_object_get(pl->data, "post-review"));
	g = vz_xcalloc(c.names.n + 1, sizeof(*g));
	for (size_t i = 0; i < c.names.n; i++) {
		const char *jname = c.names.v[i];
		zc_vec *ppv = c.variants.v[i];
		const zc_job *entry = ppv->v[0];
		zc_vec path = { 0 }, jobs = { 0 }, stack = { 0 };
		json_t *oc = json_object();
		int r = collect(z, jname, it->branch, oc, &path, &jobs, &stack, &entry->pos, fe);
		json_decref(oc);
		free(path.v);
		free(stack.v);
		if (r == COLLECT_NOMATCH || (r == 0 && jobs.n == 0)) {
			free(jobs.v);
			json_array_append_new(skipped, json_pack("{s:s,s:s}", "name", jname, "reason",
								 "no variant of the job or of a parent matches the branch"));
			continue;
		}
		if (r) {
			free(jobs.v);
			if (!fe->pos.f)
				fe->pos = entry->pos;
			rc = VZ_EINVAL;
			goto out;
		}
		/* will the file matchers skip it? (the last definition setting them decides) */
		const zc_rxlist *ef = NULL, *ei = NULL;
		for (size_t k = 0; k < jobs.n + ppv->n; k++) {
			const zc_job *v = k < jobs.n ? jobs.v[k] : ppv->v[k - jobs.n];
			if (k >= jobs.n && !zc_job_matches_branch(v, it->branch))
				continue;
			if (json_object_get(v->attrs, "files"))
				ef = v->files.n ? &v->files : NULL;
			if (json_object_get(v->attrs, "irrelevant-files"))
				ei = v->irrelevant.n ? &v->irrelevant : NULL;
		}
		int light = (ef && !files_match(ef, it)) || (ei && irrelevant_match(ei, it));
		fz *f = fz_new(((zc_job *)jobs.v[0])->name);
		for (size_t k = 0; k < jobs.n && !rc; k++) {
			rc = apply(z, f, jobs.v[k], light, fe);
			if (!rc) {
				free(f->name);
				f->name = vz_xstrdup(((zc_job *)jobs.v[k])->name);
			}
		}
		free(jobs.v);
		if (rc) {
			fz_free(f);
			goto out;
		}
		free(f->name);
		f->name = vz_xstrdup(jname);
		/* project vars under the job's own (Job.updateProjectVariables) */
		if (!light && json_object_size(c.vars)) {
			json_t *nv = json_deep_copy(c.vars);
			json_t *jv = json_object_get(f->attrs, "vars");
			if (jv)
				deep_update(nv, jv);
			json_object_set_new(f->attrs, "vars", nv);
			/* the project's (and templates') vars come first: they give way to the job's */
			json_t *fr = json_deep_copy(c.vars_from);
			json_array_extend(fr, json_object_get(f->from, "vars"));
			json_object_set_new(f->from, "vars", fr);
		}
		int matched = 0;
		for (size_t k = 0; k < ppv->n && !rc; k++) {
			zc_job *v = ppv->v[k];
			if (!zc_job_matches_branch(v, it->branch))
				continue;
			matched = 1;
			rc = apply(z, f, v, light, fe);
		}
		if (rc) {
			fz_free(f);
			goto out;
		}
		if (!matched) {
			json_array_append_new(skipped, json_pack("{s:s,s:s}", "name", jname, "reason",
								 "no project-pipeline variant matches the branch"));
			fz_free(f);
			continue;
		}
		if ((f->files && !files_match(f->files, it)) || (f->irrelevant && irrelevant_match(f->irrelevant, it))) {
			json_array_append_new(skipped, json_pack("{s:s,s:s}", "name", jname, "reason",
								 f->files && !files_match(f->files, it)
									 ? "no changed file matches files"
									 : "every changed file matches irrelevant-files"));
			fz_free(f);
			continue;
		}
		if (f->abstract) {
			rc = fail(fe, &entry->pos, "job \"%s\" is abstract and may not be run directly (run a job that inherits "
				  "from it)", jname);
			fz_free(f);
			goto out;
		}
		json_t *ap = json_object_get(f->attrs, "allowed-projects");
		if (ap) {
			int ok = 0;
			size_t k;
			json_t *x;
			json_array_foreach(ap, k, x) if (zc_name_matches(json_string_value(x), it->project)) ok = 1;
			if (!ok) {
				rc = fail(fe, &entry->pos, "project %s is not allowed to run job \"%s\" (allowed-projects)",
					  it->project, jname);
				fz_free(f);
				goto out;
			}
		}
		if (!post_review_pipeline && json_is_true(json_object_get(f->attrs, "post-review"))) {
			rc = fail(fe, &entry->pos, "pre-review pipeline %s does not allow post-review job \"%s\" (a job "
				  "using secrets of an untrusted project is post-review)", it->pipeline, jname);
			fz_free(f);
			goto out;
		}
		if (json_array_size(f->pb[1]) == 0) {
			rc = fail(fe, &entry->pos, "job \"%s\" does not specify a run playbook", jname);
			fz_free(f);
			goto out;
		}
		g[ng].f = f;
		g[ng].dep_pos = entry->pos;
		/* the dependencies came from the last variant that set them */
		for (size_t k = ppv->n; k-- > 0;) {
			zc_job *v = ppv->v[k];
			if (zc_job_matches_branch(v, it->branch) && json_object_get(v->attrs, "dependencies")) {
				g[ng].dep_pos = attr_pos(v, "dependencies");
				break;
			}
		}
		ng++;
	}
	/* dependencies: soft ones on jobs not run vanish, hard ones are an error */
	gi = g_index_of(g, ng);
	for (size_t i = 0; i < ng; i++) {
		json_t *deps = json_array();
		size_t k;
		json_t *d;
		json_array_foreach(json_object_get(g[i].f->attrs, "dependencies"), k, d) {
			const char *dn = json_string_value(json_object_get(d, "name"));
			if (find_job(gi, dn) < 0) {
				if (json_is_true(json_object_get(d, "soft")))
					continue;
				json_decref(deps);
				rc = fail(fe, &g[i].dep_pos, "job \"%s\" depends on \"%s\", which does not run for %s on %s in %s "
					  "(make the dependency soft, or add the job)", g[i].f->name, dn, it->project, it->branch,
					  it->pipeline);
				goto out;
			}
			json_array_append_new(deps, json_pack("{s:s,s:O}", "name", dn, "soft", json_object_get(d, "soft")));
		}
		g[i].deps = deps;
	}
	for (size_t i = 0; i < ng; i++)
		if (g[i].mark == 0) {
			zc_vec stack = { 0 };
			rc = dfs(g, gi, i, &stack, fe);
			free(stack.v);
			if (rc)
				goto out;
		}
	json_t *jobs = json_array();
	for (size_t i = 0; i < ng; i++) {
		json_object_del(g[i].f->attrs, "dependencies");
		json_array_append_new(jobs, fz_json(z, g[i].f, g[i].deps));
	}
	*out = json_pack("{s:s,s:s,s:s,s:b,s:b,s:s?,s:s?,s:s?,s:O,s:o,s:O}", "project", it->project, "branch", it->branch,
			 "pipeline", it->pipeline, "fail-fast", c.fail_fast, "debug", c.debug, "queue", c.queue,
			 "default-branch", c.default_branch, "merge-mode", c.merge_mode, "vars", c.vars, "jobs", jobs,
			 "skipped", skipped);
out:
	for (size_t i = 0; i < ng; i++) {
		fz_free(g[i].f);
		json_decref(g[i].deps);
	}
	free(g);
	vz_map_free(gi);
	json_decref(skipped);
	ppcfg_free(&c);
	return rc;
}

int vz_zconf_freeze(json_t **out, const vz_zconf *z, const vz_zconf_item *item, vz_err *e)
{
	*out = NULL;
	if (!z || !item || !item->project || !item->branch || !item->pipeline)
		return vz_err_set(e, VZ_EINVAL, "freezing a job graph needs a layout, a project, a branch and a pipeline");
	for (size_t i = 1; i < NMERGES; i++) /* spec_of's bsearch needs the table sorted */
		if (strcmp(merges[i - 1].name, merges[i].name) >= 0)
			return vz_err_set(e, VZ_ERROR, "internal error: the merge table is not sorted at \"%s\"", merges[i].name);
	ferr fe = { { 0 }, NULL };
	int rc = freeze(out, z, item, &fe);
	if (rc) {
		char *m = zc_format(fe.pos.f ? &fe.pos : NULL, "%s", fe.msg ? fe.msg : "out of memory");
		vz_err_set(e, rc, "%s", m ? m : "out of memory");
		free(m);
	} else if (!*out)
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory freezing the job graph of %s", item->project);
	free(fe.msg);
	return rc;
}

/* Whether loading already reported something at p (freezing a broken layout finds it again). */
static int error_at(const vz_zconf *z, const zc_pos *p)
{
	for (size_t i = 0; p->f && i < z->errors.n; i++) {
		const zc_errent *en = z->errors.v[i];
		if (en->fidx == p->f->idx && en->line == p->line && en->col == p->col)
			return 1;
	}
	return 0;
}

size_t vz_zconf_check(vz_zconf *z)
{
	if (!z)
		return 0;
	vz_map *seen = vz_map_new();
	for (size_t i = 0; seen && i < z->srcs.n; i++) {
		zc_src *s = z->srcs.v[i];
		vz_buf k = VZ_BUF_INIT(8192);
		vz_buf_printf(&k, "%s\n%s", s->project, s->branch);
		int dup = k.failed || vz_map_get(seen, vz_buf_cstr(&k)) != NULL;
		if (!dup)
			vz_map_set(seen, vz_buf_cstr(&k), s);
		vz_buf_free(&k);
		if (dup)
			continue;
		for (size_t p = 0; p < z->pipeline_list.n; p++) {
			vz_zconf_item it = { s->project, s->branch, ((zc_named *)z->pipeline_list.v[p])->name, NULL, 0 };
			ferr fe = { { 0 }, NULL };
			json_t *g = NULL;
			int rc = freeze(&g, z, &it, &fe);
			if (rc == VZ_EINVAL && !error_at(z, &fe.pos))
				zc_error(z, fe.pos.f ? &fe.pos : NULL, "%s (while freezing %s on %s in %s)", fe.msg ? fe.msg : "?",
					 s->project, s->branch, it.pipeline);
			free(fe.msg);
			json_decref(g);
		}
	}
	vz_map_free(seen);
	zc_sort_errors(z);
	return z->nerrors;
}

int vz_zconf_job_secrets(json_t **out, const vz_zconf *z, const json_t *job, vz_err *e)
{
	static const char *const phases[] = { "pre-run", "run", "post-run", "cleanup-run" };
	*out = NULL;
	const json_t *pbs = json_object_get(job, "playbooks");
	if (!z || !json_is_object(pbs))
		return vz_err_set(e, VZ_EINVAL, "not a frozen job: it has no \"playbooks\" (pass an element of the "
						"graph's \"jobs\" from vz_zconf_freeze)");
	const char *jname = json_string_value(json_object_get(job, "name"));
	json_t *res = json_object();
	int rc = 0;
	for (size_t w = 0; res && w < sizeof(phases) / sizeof(phases[0]); w++) {
		json_t *list = json_array();
		json_object_set_new(res, phases[w], list);
		size_t i;
		json_t *pb;
		json_array_foreach(json_object_get(pbs, phases[w]), i, pb) {
			json_t *one = json_object();
			json_array_append_new(list, one);
			const char *var;
			json_t *ref;
			json_object_foreach(json_object_get(pb, "secret-refs"), var, ref) {
				const zc_named *s = vz_map_get(z->secrets, json_string_value(ref));
				if (!s) {
					rc = vz_err_set(e, VZ_ENOTFOUND, "job \"%s\": secret \"%s\" is not in this layout",
							jname ? jname : "?", json_string_value(ref));
					goto out;
				}
				if (!s->plain) {
					rc = vz_err_set(e, VZ_ENOTFOUND, "job \"%s\": secret \"%s\" of project %s was not "
									 "decrypted: load the layout with the project's key",
							jname ? jname : "?", s->name, s->pos.f->src->project);
					goto out;
				}
				json_object_set_new(one, var, json_deep_copy(s->plain));
			}
		}
	}
	if (!res)
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
out:
	if (rc) {
		json_decref(res);
		return rc;
	}
	*out = res;
	return 0;
}
