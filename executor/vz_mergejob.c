/* vz_mergejob: a merge request run by an executor acting as a merger; see vz_mergejob.h. */
#include "vz_mergejob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_gitcred.h"
#include "vz_spec.h"
#include "vz_util.h"
#include "vz_workspace.h"

#define MAX_STATE 10000 /* entries of a repo_state */

typedef struct mproj {
	char *name, *canonical, *repo, *connection;
	char *gitdir; /* the cache, once something was fetched */
} mproj;

typedef struct mitem {
	const char *id, *branch, *ref, *commit, *mode;
	int64_t date;
	size_t proj;
	char change[41];
} mitem;

/* A (project, branch) whose head the answer reports and whose config it may carry. */
typedef struct want {
	size_t proj;
	const char *branch;
} want;

typedef struct mjob {
	const vz_config *site;
	const char *cache_root;
	mproj *projs;
	size_t nprojs;
	mitem *items;
	size_t nitems;
	want *wants;
	size_t nwants;
	vz_spec_head *frozen;
	unsigned char *checked; /* per frozen head: known to be in the cache (fetched or checked) */
	size_t nfrozen;
	char **owned;
	size_t nowned;
} mjob;

static const char *jstr(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v && *v ? v : NULL;
}

static void *grow(void *p, size_t n, size_t size)
{
	void *q = realloc(p, (n ? n : 1) * size);
	if (!q)
		abort();
	return q;
}

static char *own(mjob *j, const char *s)
{
	j->owned = grow(j->owned, j->nowned + 1, sizeof(*j->owned));
	return j->owned[j->nowned++] = vz_xstrdup(s);
}

static size_t proj_add(mjob *j, const json_t *o)
{
	const char *name = jstr(o, "project");
	const char *canon = jstr(o, "canonical_project") ? jstr(o, "canonical_project") : name;
	for (size_t i = 0; i < j->nprojs; i++)
		if (strcmp(j->projs[i].canonical, canon) == 0)
			return i;
	j->projs = grow(j->projs, j->nprojs + 1, sizeof(*j->projs));
	mproj *x = &j->projs[j->nprojs];
	memset(x, 0, sizeof(*x));
	x->name = vz_xstrdup(name);
	x->canonical = vz_xstrdup(canon);
	x->repo = vz_xstrdup(jstr(o, "repo"));
	x->connection = jstr(o, "connection") ? vz_xstrdup(jstr(o, "connection")) : NULL;
	return j->nprojs++;
}

static void want_add(mjob *j, size_t proj, const char *branch)
{
	for (size_t i = 0; i < j->nwants; i++)
		if (j->wants[i].proj == proj && strcmp(j->wants[i].branch, branch) == 0)
			return;
	j->wants = grow(j->wants, j->nwants + 1, sizeof(*j->wants));
	j->wants[j->nwants++] = (want){ proj, branch };
}

static void frozen_add(mjob *j, const char *canon, const char *ref, const char *commit)
{
	j->frozen = grow(j->frozen, j->nfrozen + 1, sizeof(*j->frozen));
	j->checked = grow(j->checked, j->nfrozen + 1, sizeof(*j->checked));
	j->checked[j->nfrozen] = 0;
	j->frozen[j->nfrozen++] = (vz_spec_head){ own(j, canon), own(j, ref), own(j, commit) };
}

/* Brings ref/commit of project x into the cache; out gets the commit. */
static int fetch(mjob *j, mproj *x, const char *ref, const char *commit, char out[41], vz_err *e)
{
	vz_repo_cred cred;
	const vz_conf_connection *cc = x->connection && j->site ? vz_config_connection(j->site, x->connection) : NULL;
	vz_repo_cred_from_conf(&cred, cc);
	vz_checkout_req r = { .cache_root = j->cache_root, .repo = x->repo, .ref = ref, .commit = commit,
			      .cred = cc ? &cred : NULL };
	char *gitdir = NULL;
	int rc = vz_workspace_fetch(&r, &gitdir, out, e);
	if (rc)
		return rc;
	if (!x->gitdir)
		x->gitdir = gitdir;
	else
		free(gitdir);
	return 0;
}

/* The head of branch of project x: fetched when the frozen state does not fix it, then frozen. */
static int need_branch(mjob *j, mproj *x, const char *branch, vz_err *e)
{
	char ref[600], got[41];
	snprintf(ref, sizeof(ref), "refs/heads/%s", branch);
	const vz_spec_head *f = vz_spec_head_find(j->frozen, j->nfrozen, x->canonical, branch);
	if (f && j->checked[f - j->frozen] && x->gitdir)
		return 0; /* once per request: the queue's items share their branch heads */
	int rc = fetch(j, x, ref, f ? f->commit : NULL, got, e);
	if (rc)
		return rc;
	if (!f)
		frozen_add(j, x->canonical, ref, got);
	j->checked[f ? (size_t)(f - j->frozen) : j->nfrozen - 1] = 1;
	return 0;
}

static void mjob_free(mjob *j)
{
	for (size_t i = 0; i < j->nprojs; i++) {
		free(j->projs[i].name);
		free(j->projs[i].canonical);
		free(j->projs[i].repo);
		free(j->projs[i].connection);
		free(j->projs[i].gitdir);
	}
	free(j->projs);
	free(j->items);
	free(j->wants);
	free(j->frozen);
	free(j->checked);
	for (size_t i = 0; i < j->nowned; i++)
		free(j->owned[i]);
	free(j->owned);
}

/* Reads the request into j. */
static int parse(mjob *j, const json_t *req, vz_err *e)
{
	const json_t *items = json_object_get(req, "items"), *projects = json_object_get(req, "projects");
	const json_t *rs = json_object_get(req, "repo_state");
	if ((items && !json_is_array(items)) || json_array_size(items) > VZ_MERGEJOB_MAX_ITEMS)
		return vz_err_set(e, VZ_EINVAL, "\"items\" must be a list of at most %d items", VZ_MERGEJOB_MAX_ITEMS);
	if ((projects && !json_is_array(projects)) || json_array_size(projects) > VZ_MERGEJOB_MAX_ITEMS)
		return vz_err_set(e, VZ_EINVAL, "\"projects\" must be a list of at most %d projects", VZ_MERGEJOB_MAX_ITEMS);
	if (json_array_size(items) + json_array_size(projects) == 0)
		return vz_err_set(e, VZ_EINVAL, "nothing to merge: give \"items\", \"projects\" or both");
	if (rs && !json_is_object(rs))
		return vz_err_set(e, VZ_EINVAL, "\"repo_state\" must be an object {project: {branch or ref: commit}}");
	j->nitems = json_array_size(items);
	j->items = grow(NULL, j->nitems, sizeof(*j->items));
	for (size_t i = 0; i < j->nitems; i++) {
		const json_t *o = json_array_get(items, i);
		if (!json_is_object(o) || !jstr(o, "project") || !jstr(o, "repo") || !jstr(o, "branch") ||
		    (!jstr(o, "ref") && !jstr(o, "commit")))
			return vz_err_set(e, VZ_EINVAL, "item %zu needs project, repo, branch and a ref or commit", i);
		mitem *it = &j->items[i];
		memset(it, 0, sizeof(*it));
		it->id = jstr(o, "id") ? jstr(o, "id") : jstr(o, "ref") ? jstr(o, "ref") : jstr(o, "commit");
		it->branch = jstr(o, "branch");
		it->ref = jstr(o, "ref");
		it->commit = jstr(o, "commit");
		it->mode = jstr(o, "mode") ? jstr(o, "mode") : "merge";
		json_t *d = json_object_get(o, "date");
		it->date = json_is_integer(d) ? (int64_t)json_integer_value(d) : INT64_C(1262304000);
		it->proj = proj_add(j, o);
		vz_merge_mode mm;
		if (vz_merge_mode_parse(&mm, it->mode))
			return vz_err_set(e, VZ_EINVAL, "item %s: unknown merge mode '%s' (merge, merge-resolve, cherry-pick, "
					  "squash-merge, rebase)", it->id, it->mode);
		want_add(j, it->proj, it->branch);
	}
	for (size_t i = 0; i < json_array_size(projects); i++) {
		const json_t *o = json_array_get(projects, i);
		if (!json_is_object(o) || !jstr(o, "project") || !jstr(o, "repo") || !jstr(o, "branch"))
			return vz_err_set(e, VZ_EINVAL, "project %zu needs project, repo and branch", i);
		want_add(j, proj_add(j, o), jstr(o, "branch"));
	}
	const char *pk, *rk;
	json_t *pv, *rv;
	size_t n = 0;
	json_object_foreach((json_t *)rs, pk, pv) {
		if (!json_is_object(pv))
			return vz_err_set(e, VZ_EINVAL, "repo_state %s must be an object {branch or ref: commit}", pk);
		json_object_foreach(pv, rk, rv) {
			const char *c = json_string_value(rv);
			if (!c || strlen(c) != 40 || strspn(c, "0123456789abcdef") != 40)
				return vz_err_set(e, VZ_EINVAL, "repo_state %s %s is not a 40-hex commit id", pk, rk);
			if (++n > MAX_STATE)
				return vz_err_set(e, VZ_EINVAL, "repo_state has more than %d entries", MAX_STATE);
			char ref[600]; /* a bare name is a branch */
			snprintf(ref, sizeof(ref), "%s%s", strncmp(rk, "refs/", 5) == 0 ? "" : "refs/heads/", rk);
			frozen_add(j, pk, ref, c);
		}
	}
	return 0;
}

/* {canonical: {branch (or full ref when not a branch): commit}} of the frozen heads. */
static json_t *frozen_json(const mjob *j)
{
	json_t *o = json_object();
	for (size_t i = 0; i < j->nfrozen; i++) {
		const char *r = j->frozen[i].ref;
		if (strncmp(r, "refs/heads/", 11) == 0)
			r += 11;
		json_t *p = json_object_get(o, j->frozen[i].project);
		if (!p) {
			p = json_object();
			json_object_set_new(o, j->frozen[i].project, p);
		}
		json_object_set_new(p, r, json_string(j->frozen[i].commit));
	}
	return o;
}

static json_t *strv_json(char *const *v, size_t n, int commit_msg)
{
	json_t *a = json_array();
	if (commit_msg) /* Zuul's files of a change: Gerrit's pseudo-file first */
		json_array_append_new(a, json_string("/COMMIT_MSG"));
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *failed(const char *id, const vz_err *e)
{
	return json_pack("{s:s,s:b,s:s}", "merge", id, "ok", 0, "message", vz_err_msg(e));
}

/* The in-repo configuration of every wanted (project, branch) at its head in heads. */
static int read_configs(json_t **out, const mjob *j, const json_t *heads, vz_err *e)
{
	json_t *cfg = json_object();
	size_t total = 0;
	int rc = 0;
	for (size_t i = 0; i < j->nwants && !rc; i++) {
		const mproj *x = &j->projs[j->wants[i].proj];
		const char *br = j->wants[i].branch;
		const char *commit = json_string_value(json_object_get(json_object_get(heads, x->canonical), br));
		if (!commit || !x->gitdir) {
			rc = vz_err_set(e, VZ_ENOTFOUND, "project %s branch %s: no head to read the configuration from",
					x->canonical, br);
			break;
		}
		json_t *files = NULL;
		if ((rc = vz_spec_read_config(&files, NULL, x->gitdir, commit, VZ_MERGEJOB_MAX_CONFIG, e))) {
			vz_err_prefix(e, "in-repo configuration of %s branch %s", x->canonical, br);
			break;
		}
		const char *k;
		json_t *v;
		json_object_foreach(files, k, v)
			total += json_string_length(v);
		if (total > VZ_MERGEJOB_MAX_CONFIG) {
			json_decref(files);
			rc = vz_err_set(e, VZ_ETOOBIG, "in-repo configuration: with %s branch %s it comes to %zu bytes, over the "
					"%d a merged message carries; ask for fewer projects per request",
					x->canonical, br, total, VZ_MERGEJOB_MAX_CONFIG);
			break;
		}
		json_t *p = json_object_get(cfg, x->canonical);
		if (!p) {
			p = json_object();
			json_object_set_new(cfg, x->canonical, p);
		}
		json_object_set_new(p, br, files);
	}
	if (rc)
		json_decref(cfg);
	else
		*out = cfg;
	return rc;
}

json_t *vz_mergejob_run(const json_t *req, const char *cache_root, const vz_config *site)
{
	mjob j = { .site = site, .cache_root = cache_root };
	const char *id = jstr(req, "merge") ? jstr(req, "merge") : "";
	vz_err e = { 0 };
	vz_spec *s = NULL;
	vz_spec_item *si = NULL;
	json_t *sj = NULL, *out = NULL, *heads = NULL, *cfg = NULL;
	int rc;
	if ((rc = parse(&j, req, &e))) {
		vz_err_prefix(&e, "merge request %s", id);
		out = failed(id, &e);
		goto out;
	}
	/* 1. the caches: each change, and every branch head the state starts from */
	for (size_t i = 0; i < j.nitems && !rc; i++) {
		mitem *it = &j.items[i];
		mproj *x = &j.projs[it->proj];
		if ((rc = fetch(&j, x, it->ref, it->commit, it->change, &e)) ||
		    (rc = need_branch(&j, x, it->branch, &e)))
			vz_err_prefix(&e, "item %s (project %s, branch %s)", it->id, x->canonical, it->branch);
	}
	for (size_t i = 0; i < j.nwants && !rc; i++) {
		mproj *x = &j.projs[j.wants[i].proj];
		if ((rc = need_branch(&j, x, j.wants[i].branch, &e)))
			vz_err_prefix(&e, "project %s branch %s", x->canonical, j.wants[i].branch);
	}
	if (rc) {
		out = failed(id, &e);
		goto out;
	}
	/* 2. the speculative state */
	json_t *items = json_array();
	out = json_pack("{s:s,s:b,s:o}", "merge", id, "ok", 1, "items", items);
	json_object_set_new(out, "repo_state", frozen_json(&j));
	if (j.nitems) {
		si = grow(NULL, j.nitems, sizeof(*si));
		for (size_t i = 0; i < j.nitems; i++) {
			mitem *it = &j.items[i];
			si[i] = (vz_spec_item){ it->id, j.projs[it->proj].canonical, it->branch, j.projs[it->proj].gitdir,
						it->change, VZ_MERGE_MERGE, it->date };
			vz_merge_mode_parse(&si[i].mode, it->mode);
		}
		if ((rc = vz_spec_build(&s, si, j.nitems, j.frozen, j.nfrozen, &e))) {
			json_decref(out);
			out = failed(id, &e);
			goto out;
		}
		for (size_t i = 0; i < j.nitems; i++) {
			const vz_spec_result *r = vz_spec_item_result(s, i);
			json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:o,s:o}", "id", j.items[i].id, "project",
					      j.projs[j.items[i].proj].canonical, "branch", j.items[i].branch, "merged", r->merged,
					      "files", strv_json(r->files, r->nfiles, 1), "conflicts",
					      strv_json(r->conflicts, r->nconflicts, 0));
			if (r->merged)
				json_object_set_new(o, "commit", json_string(r->commit));
			if (r->base[0])
				json_object_set_new(o, "base", json_string(r->base));
			if (r->message)
				json_object_set_new(o, "message", json_string(r->message));
			if (r->note)
				json_object_set_new(o, "note", json_string(r->note));
			json_array_append_new(items, o);
		}
		sj = vz_spec_to_json(s);
		heads = json_incref(json_object_get(json_array_get(json_object_get(sj, "items"), j.nitems - 1), "state"));
	} else {
		heads = json_incref(json_object_get(out, "repo_state"));
	}
	json_object_set(out, "heads", heads);
	/* 3. the in-repo configuration at the heads after the last item */
	if (json_is_true(json_object_get(req, "config"))) {
		if ((rc = read_configs(&cfg, &j, heads, &e))) {
			vz_err_prefix(&e, "merge request %s", id);
			json_decref(out);
			out = failed(id, &e);
			goto out;
		}
		json_object_set_new(out, "config", cfg);
	}
out:
	json_decref(heads);
	json_decref(sj);
	vz_spec_free(s);
	free(si);
	mjob_free(&j);
	return out;
}
