/* vz_prepare: fetch, speculative state and workspaces for one build; see vz_prepare.h. */
#include "vz_prepare.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_gitcred.h"
#include "vz_spec.h"
#include "vz_util.h"
#include "vz_workspace.h"

typedef struct proj {
	char *name, *canonical, *repo, *connection, *branch; /* branch: default/override for checkout */
	char *gitdir;
} proj;

typedef struct item {
	const char *id, *branch, *ref, *commit, *mode;
	int64_t date;
	size_t proj;       /* index into projs */
	char change[41];   /* the change's commit, resolved by the fetch */
} item;

typedef struct prep {
	proj *projs;
	size_t nprojs;
	item *items;
	size_t nitems;
	vz_spec_head *frozen;
	size_t nfrozen;
	char **owned; /* strings the frozen entries point at */
	size_t nowned;
	const char *cache_root;
	const vz_config *site;
	vz_prepare_log_fn log;
	void *ctx;
} prep;

static const char *jstr(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v && *v ? v : NULL;
}

static void logf_(prep *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(prep *p, const char *fmt, ...)
{
	if (!p->log)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	p->log(p->ctx, line);
}

static char *own(prep *p, const char *s)
{
	p->owned = realloc(p->owned, (p->nowned + 1) * sizeof(*p->owned));
	if (!p->owned)
		abort();
	return p->owned[p->nowned++] = vz_xstrdup(s);
}

/* The project named by (canonical or name); added when new. */
static size_t proj_add(prep *p, const json_t *o, const char *fallback_branch)
{
	const char *name = jstr(o, "project");
	const char *canon = jstr(o, "canonical_project") ? jstr(o, "canonical_project") : name;
	for (size_t i = 0; i < p->nprojs; i++)
		if (strcmp(p->projs[i].canonical, canon) == 0)
			return i;
	p->projs = realloc(p->projs, (p->nprojs + 1) * sizeof(*p->projs));
	if (!p->projs)
		abort();
	proj *x = &p->projs[p->nprojs];
	memset(x, 0, sizeof(*x));
	x->name = vz_xstrdup(name);
	x->canonical = vz_xstrdup(canon);
	x->repo = vz_xstrdup(jstr(o, "repo"));
	x->connection = jstr(o, "connection") ? vz_xstrdup(jstr(o, "connection")) : NULL;
	const char *b = jstr(o, "branch") ? jstr(o, "branch") : fallback_branch;
	x->branch = b ? vz_xstrdup(b) : NULL;
	return p->nprojs++;
}

/* Fetches ref/commit of project x; out gets the commit. */
static int fetch(prep *p, proj *x, const char *ref, const char *commit, char out[41], vz_err *e)
{
	vz_repo_cred cred;
	const vz_conf_connection *cc = x->connection ? vz_config_connection(p->site, x->connection) : NULL;
	vz_repo_cred_from_conf(&cred, cc);
	vz_checkout_req r = { .cache_root = p->cache_root, .repo = x->repo, .ref = ref, .commit = commit,
			      .cred = cc ? &cred : NULL };
	char *gitdir = NULL;
	int rc = vz_workspace_fetch(&r, &gitdir, out, e);
	if (rc) {
		vz_err_prefix(e, "project %s", x->canonical);
		return rc;
	}
	if (!x->gitdir)
		x->gitdir = gitdir;
	else
		free(gitdir);
	return 0;
}

static void frozen_add(prep *p, const char *canon, const char *ref, const char *commit)
{
	p->frozen = realloc(p->frozen, (p->nfrozen + 1) * sizeof(*p->frozen));
	if (!p->frozen)
		abort();
	p->frozen[p->nfrozen++] = (vz_spec_head){ own(p, canon), own(p, ref), own(p, commit) };
}

/* Makes sure the head of branch of project x is in the cache and in the frozen state. Returns
 * VZ_ENOTFOUND (no message kept) when the project has no such branch and `optional` is set. */
static int need_branch(prep *p, proj *x, const char *branch, int optional, vz_err *e)
{
	char ref[600], got[41];
	snprintf(ref, sizeof(ref), "refs/heads/%s", branch);
	const vz_spec_head *f = vz_spec_head_find(p->frozen, p->nfrozen, x->canonical, branch);
	vz_err fe = { 0 };
	int rc = fetch(p, x, ref, f ? f->commit : NULL, got, &fe);
	if (rc == VZ_ENOTFOUND && optional)
		return rc;
	if (rc)
		return vz_err_set(e, rc, "%s", vz_err_msg(&fe));
	if (!f) {
		frozen_add(p, x->canonical, ref, got);
		logf_(p, "vinz: %s branch %s at %s", x->canonical, branch, got);
	}
	return 0;
}

static void prep_free(prep *p)
{
	for (size_t i = 0; i < p->nprojs; i++) {
		proj *x = &p->projs[i];
		free(x->name);
		free(x->canonical);
		free(x->repo);
		free(x->connection);
		free(x->branch);
		free(x->gitdir);
	}
	free(p->projs);
	free(p->items);
	free(p->frozen);
	for (size_t i = 0; i < p->nowned; i++)
		free(p->owned[i]);
	free(p->owned);
}

void vz_prepared_clear(vz_prepared *out)
{
	if (!out)
		return;
	for (size_t i = 0; i < out->nprojects; i++) {
		vz_prepared_project *x = &out->projects[i];
		free(x->project);
		free(x->canonical);
		free(x->dir);
		free(x->branch);
	}
	free(out->projects);
	json_decref(out->state);
	free(out->conflict);
	memset(out, 0, sizeof(*out));
}

/* The request's items, or its single change as one item. */
static int read_items(prep *p, const json_t *req, json_t **synth, vz_err *e)
{
	const json_t *items = json_object_get(req, "items");
	if (!items) {
		*synth = json_pack("[{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}]", "id", jstr(req, "change"), "project",
				   jstr(req, "project"), "canonical_project", jstr(req, "canonical_project"), "connection",
				   jstr(req, "connection"), "repo", jstr(req, "repo"), "branch", jstr(req, "branch"), "ref",
				   jstr(req, "ref"), "commit", jstr(req, "commit"));
		items = *synth;
	}
	if (!json_is_array(items) || json_array_size(items) == 0 || json_array_size(items) > 1000)
		return vz_err_set(e, VZ_EINVAL, "build request: \"items\" must be a list of 1 to 1000 items");
	p->nitems = json_array_size(items);
	p->items = calloc(p->nitems, sizeof(*p->items));
	if (!p->items)
		abort();
	/* the build's own item is the last; its project comes first in the workspace list */
	for (size_t k = 0; k < p->nitems; k++) {
		size_t i = p->nitems - 1 - k;
		const json_t *o = json_array_get(items, i);
		if (!json_is_object(o) || !jstr(o, "project") || !jstr(o, "repo") || (!jstr(o, "ref") && !jstr(o, "commit")))
			return vz_err_set(e, VZ_EINVAL, "build request: item %zu needs project, repo and a ref or commit", i);
		item *it = &p->items[i];
		it->id = jstr(o, "id") ? jstr(o, "id") : jstr(o, "ref") ? jstr(o, "ref") : jstr(o, "commit");
		it->branch = jstr(o, "branch");
		it->ref = jstr(o, "ref");
		it->commit = jstr(o, "commit");
		it->mode = jstr(o, "mode") ? jstr(o, "mode") : "merge";
		json_t *d = json_object_get(o, "date");
		it->date = json_is_integer(d) ? (int64_t)json_integer_value(d) : INT64_C(1262304000);
		it->proj = proj_add(p, o, NULL);
		if (p->nitems > 1 && !it->branch)
			return vz_err_set(e, VZ_EINVAL, "build request: item %zu has no branch", i);
	}
	return 0;
}

static int make_workspace(vz_prepared *out, const proj *x, const char *build_dir, const json_t *heads, const char *checkout,
			  int own_project, vz_err *e)
{
	char rel[1200];
	snprintf(rel, sizeof(rel), "src/%s", x->canonical);
	char *dir = vz_path_join(build_dir, rel);
	char *parent = vz_xstrdup(dir);
	char *slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	int rc = vz_mkdir_p(parent, 0755, e);
	free(parent);
	size_t nb = json_object_size(heads), i = 0;
	vz_spec_branch *br = calloc(nb ? nb : 1, sizeof(*br));
	if (!br)
		abort();
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)heads, key, v) {
		if (strncmp(key, "refs/", 5) == 0)
			continue; /* tags and other refs are not branches of the workspace */
		br[i].name = key;
		br[i].commit = json_string_value(v);
		i++;
	}
	const char *commit = json_string_value(json_object_get(heads, checkout));
	if (!rc)
		rc = vz_spec_workspace(x->gitdir, dir, br, i, checkout, e);
	if (rc) {
		vz_err_prefix(e, "workspace of %s", x->canonical);
	} else {
		out->projects = realloc(out->projects, (out->nprojects + 1) * sizeof(*out->projects));
		if (!out->projects)
			abort();
		vz_prepared_project *pp = &out->projects[out->nprojects++];
		memset(pp, 0, sizeof(*pp));
		pp->project = vz_xstrdup(x->name);
		pp->canonical = vz_xstrdup(x->canonical);
		pp->dir = dir;
		dir = NULL;
		pp->branch = commit ? vz_xstrdup(checkout) : NULL;
		vz_strlcpy(pp->commit, commit ? commit : checkout, sizeof(pp->commit));
		pp->own = own_project;
	}
	free(dir);
	free(br);
	return rc;
}

int vz_prepare_workspace(vz_prepared *out, const json_t *req, const char *build_dir, const char *cache_root,
			 const vz_config *site, vz_prepare_log_fn log, void *ctx, vz_err *e)
{
	prep p = { .cache_root = cache_root, .site = site, .log = log, .ctx = ctx };
	json_t *synth = NULL, *sj = NULL;
	vz_spec *s = NULL;
	vz_spec_item *si = NULL;
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = read_items(&p, req, &synth, e)))
		goto out;
	item *mine = &p.items[p.nitems - 1];
	/* required projects besides the items' */
	const json_t *projects = json_object_get(req, "projects");
	if (projects && (!json_is_array(projects) || json_array_size(projects) > 1000)) {
		rc = vz_err_set(e, VZ_EINVAL, "build request: \"projects\" must be a list");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(projects); i++) {
		const json_t *o = json_array_get(projects, i);
		if (!json_is_object(o) || !jstr(o, "project") || !jstr(o, "repo")) {
			rc = vz_err_set(e, VZ_EINVAL, "build request: project %zu needs project and repo", i);
			goto out;
		}
		proj_add(&p, o, "master");
	}
	/* a frozen repo state: {canonical: {ref: commit}} */
	const json_t *rs = json_object_get(req, "repo_state");
	const char *pk, *rk;
	json_t *pv, *rv;
	json_object_foreach((json_t *)rs, pk, pv) {
		json_object_foreach(pv, rk, rv) {
			if (!json_string_value(rv) || strlen(json_string_value(rv)) != 40) {
				rc = vz_err_set(e, VZ_EINVAL, "build request: repo_state %s %s is not a commit id", pk, rk);
				goto out;
			}
			char ref[600]; /* a bare name is a branch */
			snprintf(ref, sizeof(ref), "%s%s", strncmp(rk, "refs/", 5) == 0 ? "" : "refs/heads/", rk);
			frozen_add(&p, pk, ref, json_string_value(rv));
		}
	}

	/* 1. the caches: each change, and every branch head the state starts from */
	for (size_t i = 0; i < p.nitems && !rc; i++) {
		item *it = &p.items[i];
		proj *x = &p.projs[it->proj];
		if ((rc = fetch(&p, x, it->ref, it->commit, it->change, e)))
			break;
		if (it->branch)
			rc = need_branch(&p, x, it->branch, 0, e);
	}
	for (size_t i = 0; i < p.nprojs && !rc; i++) {
		proj *x = &p.projs[i];
		/* other projects check out the build's branch when they have it, else their own */
		if (i != mine->proj && mine->branch && need_branch(&p, x, mine->branch, 1, e) == 0)
			continue;
		if (x->branch)
			rc = need_branch(&p, x, x->branch, 0, e);
		else if (i != mine->proj || mine->branch)
			rc = vz_err_set(e, VZ_EINVAL, "project %s: no branch to check out", x->canonical);
	}
	for (size_t i = 0; i < p.nfrozen && !rc; i++) { /* frozen refs of projects not fetched above */
		for (size_t j = 0; j < p.nprojs; j++) {
			char got[41];
			if (strcmp(p.projs[j].canonical, p.frozen[i].project) == 0 && !p.projs[j].gitdir)
				rc = fetch(&p, &p.projs[j], p.frozen[i].ref, p.frozen[i].commit, got, e);
		}
	}
	if (rc)
		goto out;

	/* 2. a single change with no branch: check it out as it is (no speculative merge) */
	if (!mine->branch) {
		proj *x = &p.projs[mine->proj];
		json_t *none = json_object();
		rc = make_workspace(out, x, build_dir, none, mine->change, 1, e);
		json_decref(none);
		if (!rc) {
			vz_strlcpy(out->commit, mine->change, sizeof(out->commit));
			out->state = json_object();
			logf_(&p, "vinz: %s checked out at %s (no branch: not merged)", x->canonical, mine->change);
		}
		goto out;
	}

	/* 3. the speculative state */
	si = calloc(p.nitems, sizeof(*si));
	if (!si)
		abort();
	for (size_t i = 0; i < p.nitems; i++) {
		item *it = &p.items[i];
		proj *x = &p.projs[it->proj];
		si[i] = (vz_spec_item){ it->id, x->canonical, it->branch, x->gitdir, it->change, VZ_MERGE_MERGE, it->date };
		if (vz_merge_mode_parse(&si[i].mode, it->mode)) {
			rc = vz_err_set(e, VZ_EINVAL, "build request: item %s: unknown merge mode '%s'", it->id, it->mode);
			goto out;
		}
	}
	if ((rc = vz_spec_build(&s, si, p.nitems, p.frozen, p.nfrozen, e)))
		goto out;
	for (size_t i = 0; i < p.nitems; i++) {
		const vz_spec_result *r = vz_spec_item_result(s, i);
		if (r->merged)
			logf_(&p, "vinz: item %s merged into %s %s: %s%s%s", p.items[i].id, p.projs[p.items[i].proj].canonical,
			      p.items[i].branch, r->commit, r->note ? " " : "", r->note ? r->note : "");
		else
			logf_(&p, "vinz: %s", r->message);
	}
	const vz_spec_result *own_r = vz_spec_item_result(s, p.nitems - 1);
	if (!own_r->merged) {
		out->conflict = vz_xstrdup(own_r->message ? own_r->message : "the change does not merge");
		rc = vz_err_set(e, VZ_ECONFLICT, "%s", out->conflict);
		goto out;
	}
	vz_strlcpy(out->commit, own_r->commit, sizeof(out->commit));
	sj = vz_spec_to_json(s);
	json_t *state = json_object_get(json_array_get(json_object_get(sj, "items"), p.nitems - 1), "state");
	out->state = json_deep_copy(state);

	/* 4. the workspaces: the build's own project first */
	for (size_t k = 0; k < p.nprojs && !rc; k++) {
		size_t i = k == 0 ? mine->proj : k <= mine->proj ? k - 1 : k;
		proj *x = &p.projs[i];
		json_t *heads = json_object_get(state, x->canonical);
		const char *checkout = i == mine->proj || json_object_get(heads, mine->branch) ? mine->branch : x->branch;
		if (!heads || !checkout || !json_object_get(heads, checkout)) {
			rc = vz_err_set(e, VZ_EINVAL, "project %s: branch %s is not in the repo state", x->canonical,
					checkout ? checkout : "(none)");
			break;
		}
		rc = make_workspace(out, x, build_dir, heads, checkout, i == mine->proj, e);
		if (!rc)
			logf_(&p, "vinz: workspace src/%s: %s at %s", x->canonical, checkout,
			      out->projects[out->nprojects - 1].commit);
	}
out:
	if (rc && rc != VZ_ECONFLICT) {
		char *c = out->conflict;
		out->conflict = NULL;
		vz_prepared_clear(out);
		free(c);
	} else if (rc) {
		char *c = out->conflict;
		out->conflict = NULL;
		vz_prepared_clear(out);
		out->conflict = c;
	}
	json_decref(sj);
	json_decref(synth);
	vz_spec_free(s);
	free(si);
	prep_free(&p);
	return rc;
}
