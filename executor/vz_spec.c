/* vz_spec: speculative state of a queue, in-repo config reading and workspaces; see vz_spec.h. */
#include "vz_spec.h"

#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vz_buf.h"
#include "vz_util.h"

/* libgit2 errors become vz errors here for this module (vz_merger has its own for merges). */
static int git_fail(vz_err *e, int code, const char *what, const char *arg)
{
	const git_error *ge = git_error_last();
	return vz_err_set(e, code, "git: %s %s: %s", what, arg ? arg : "",
			  ge && ge->message ? ge->message : "unknown error");
}

/* ---- the state ---------------------------------------------------------------------------------- */

/* The head of one (project, branch-or-ref). */
typedef struct head {
	char *project;
	char *branch;  /* branch name, or a full ref ("refs/tags/v1") for anything that is no branch */
	char commit[41];
} head;

typedef struct heads {
	head *v;
	size_t n, cap;
} heads;

typedef struct item_rec {
	char *id, *project, *branch;
	vz_spec_result r;
	heads after; /* the state a build of this item sees */
} item_rec;

typedef struct repo_rec {
	char *gitdir;
	vz_merger *m;
} repo_rec;

struct vz_spec {
	item_rec *items;
	size_t nitems;
	heads initial; /* frozen heads, then each branch head as first read */
	repo_rec *repos;
	size_t nrepos;
};

static head *heads_find(const heads *h, const char *project, const char *branch)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->v[i].project, project) == 0 && strcmp(h->v[i].branch, branch) == 0)
			return &h->v[i];
	return NULL;
}

/* Sets (project, branch) to commit, adding it when new. */
static void heads_set(heads *h, const char *project, const char *branch, const char *commit)
{
	head *x = heads_find(h, project, branch);
	if (!x) {
		if (h->n == h->cap) {
			h->cap = h->cap ? h->cap * 2 : 8;
			h->v = realloc(h->v, h->cap * sizeof(*h->v));
			if (!h->v)
				abort();
		}
		x = &h->v[h->n++];
		x->project = vz_xstrdup(project);
		x->branch = vz_xstrdup(branch);
	}
	vz_strlcpy(x->commit, commit, sizeof(x->commit));
}

static void heads_copy(heads *dst, const heads *src)
{
	for (size_t i = 0; i < src->n; i++)
		heads_set(dst, src->v[i].project, src->v[i].branch, src->v[i].commit);
}

static void heads_free(heads *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].project);
		free(h->v[i].branch);
	}
	free(h->v);
	memset(h, 0, sizeof(*h));
}

/* "refs/heads/main" and "main" both name the branch main; other refs keep their full name. */
static const char *branch_key(const char *ref)
{
	return strncmp(ref, "refs/heads/", 11) == 0 ? ref + 11 : ref;
}

static int is_hex40(const char *s)
{
	if (!s || strlen(s) != 40)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

static int repo_get(vz_spec *s, const char *gitdir, vz_merger **out, vz_err *e)
{
	for (size_t i = 0; i < s->nrepos; i++)
		if (strcmp(s->repos[i].gitdir, gitdir) == 0) {
			*out = s->repos[i].m;
			return 0;
		}
	vz_merger *m = NULL;
	int rc = vz_merger_open(&m, gitdir, e);
	if (rc)
		return rc == VZ_ENOTFOUND ? VZ_EIO : rc;
	s->repos = realloc(s->repos, (s->nrepos + 1) * sizeof(*s->repos));
	if (!s->repos)
		abort();
	s->repos[s->nrepos].gitdir = vz_xstrdup(gitdir);
	s->repos[s->nrepos].m = m;
	s->nrepos++;
	*out = m;
	return 0;
}

void vz_spec_free(vz_spec *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nitems; i++) {
		item_rec *it = &s->items[i];
		free(it->id);
		free(it->project);
		free(it->branch);
		vz_merge_result mr = { .conflicts = it->r.conflicts, .nconflicts = it->r.nconflicts,
				       .files = it->r.files, .nfiles = it->r.nfiles };
		vz_merge_result_clear(&mr);
		free(it->r.message);
		heads_free(&it->after);
	}
	free(s->items);
	heads_free(&s->initial);
	for (size_t i = 0; i < s->nrepos; i++) {
		free(s->repos[i].gitdir);
		vz_merger_free(s->repos[i].m);
	}
	free(s->repos);
	free(s);
}

/* One line naming the item, its project and branch, and the paths (at most 20 of them). */
static char *conflict_message(const vz_spec_item *it, const vz_merge_result *mr)
{
	vz_buf b = VZ_BUF_INIT(8192);
	vz_buf_printf(&b, "item %s (project %s, branch %s) does not merge (%s)", it->id, it->project, it->branch,
		      vz_merge_mode_name(it->mode));
	if (mr->nconflicts) {
		vz_buf_puts(&b, ": conflicts in ");
		for (size_t i = 0; i < mr->nconflicts && i < 20; i++)
			vz_buf_printf(&b, "%s%s", i ? ", " : "", mr->conflicts[i]);
		if (mr->nconflicts > 20)
			vz_buf_printf(&b, " and %zu more", mr->nconflicts - 20);
	} else {
		vz_buf_puts(&b, ": the change and the branch have no common history");
	}
	char *s = vz_xstrdup(b.failed ? "item does not merge" : vz_buf_cstr(&b));
	vz_buf_free(&b);
	return s;
}

int vz_spec_build(vz_spec **out, const vz_spec_item *items, size_t nitems, const vz_spec_head *frozen,
		  size_t nfrozen, vz_err *e)
{
	int rc = 0;
	heads cur = { 0 };
	*out = NULL;
	vz_spec *s = calloc(1, sizeof(*s));
	if (!s)
		return vz_err_set(e, VZ_ENOMEM, "out of memory building the speculative state");
	for (size_t i = 0; i < nfrozen; i++) {
		const vz_spec_head *f = &frozen[i];
		if (!f->project || !*f->project || !f->ref || !*f->ref || !is_hex40(f->commit)) {
			rc = vz_err_set(e, VZ_EINVAL, "frozen state entry %zu: project, ref and a 40-hex commit are required", i);
			goto out;
		}
		heads_set(&s->initial, f->project, branch_key(f->ref), f->commit);
	}
	heads_copy(&cur, &s->initial);
	s->items = calloc(nitems ? nitems : 1, sizeof(*s->items));
	if (!s->items)
		abort();
	for (size_t i = 0; i < nitems; i++) {
		const vz_spec_item *it = &items[i];
		if (!it->id || !it->project || !*it->project || !it->branch || !*it->branch || !it->gitdir || !it->change ||
		    !*it->change) {
			rc = vz_err_set(e, VZ_EINVAL, "queue item %zu: id, project, branch, gitdir and change are required", i);
			goto out;
		}
		item_rec *rec = &s->items[i];
		s->nitems = i + 1;
		rec->id = vz_xstrdup(it->id);
		rec->project = vz_xstrdup(it->project);
		rec->branch = vz_xstrdup(it->branch);
		vz_merger *m = NULL;
		if ((rc = repo_get(s, it->gitdir, &m, e))) {
			vz_err_prefix(e, "item %s (project %s)", it->id, it->project);
			goto out;
		}
		/* the first item of a project and branch starts at the frozen or current head */
		head *h = heads_find(&cur, it->project, it->branch);
		if (!h) {
			char id[41], ref[600];
			snprintf(ref, sizeof(ref), "refs/heads/%s", it->branch);
			if ((rc = vz_merger_resolve(m, ref, id, e))) {
				vz_err_prefix(e, "item %s: branch %s of project %s", it->id, it->branch, it->project);
				goto out;
			}
			heads_set(&s->initial, it->project, it->branch, id);
			heads_set(&cur, it->project, it->branch, id);
			h = heads_find(&cur, it->project, it->branch);
		}
		const head *b0 = heads_find(&s->initial, it->project, it->branch);
		vz_strlcpy(rec->r.base, h->commit, sizeof(rec->r.base));
		vz_merge_req req = { .mode = it->mode, .onto = h->commit, .change = it->change, .branch = b0->commit,
				     .date = it->date, .want_files = 1 };
		vz_merge_result mr;
		vz_err me = { 0 };
		int mrc = vz_merger_apply(m, &req, &mr, &me);
		if (mrc == VZ_ENOTFOUND || mrc == VZ_EINVAL) {
			/* this item is broken, not the queue: report it and go on without it */
			char msg[VZ_ERR_MSG_MAX + 256];
			snprintf(msg, sizeof(msg), "item %s (project %s, branch %s): %s", it->id, it->project, it->branch,
				 vz_err_msg(&me));
			rec->r.message = vz_xstrdup(msg);
		} else if (mrc) {
			rc = vz_err_set(e, mrc, "item %s (project %s, branch %s): %s", it->id, it->project, it->branch,
					vz_err_msg(&me));
			vz_merge_result_clear(&mr);
			goto out;
		} else if (mr.merged) {
			rec->r.merged = 1;
			vz_strlcpy(rec->r.commit, mr.commit, sizeof(rec->r.commit));
			vz_strlcpy(h->commit, mr.commit, sizeof(h->commit));
		} else {
			rec->r.message = conflict_message(it, &mr);
		}
		rec->r.note = mr.note;
		rec->r.conflicts = mr.conflicts;
		rec->r.nconflicts = mr.nconflicts;
		rec->r.files = mr.files;
		rec->r.nfiles = mr.nfiles;
		heads_copy(&rec->after, &cur);
	}
out:
	heads_free(&cur);
	if (rc) {
		vz_spec_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

const vz_spec_result *vz_spec_item_result(const vz_spec *s, size_t i)
{
	return s && i < s->nitems ? &s->items[i].r : NULL;
}

const char *vz_spec_head_after(const vz_spec *s, size_t i, const char *project, const char *branch)
{
	if (!s || !project || !branch)
		return NULL;
	const heads *h = i == (size_t)-1 ? &s->initial : i < s->nitems ? &s->items[i].after : NULL;
	const head *x = h ? heads_find(h, project, branch_key(branch)) : NULL;
	return x ? x->commit : NULL;
}

static json_t *str_array(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *state_json(const heads *h)
{
	json_t *o = json_object();
	for (size_t i = 0; i < h->n; i++) {
		json_t *p = json_object_get(o, h->v[i].project);
		if (!p) {
			p = json_object();
			json_object_set_new(o, h->v[i].project, p);
		}
		json_object_set_new(p, h->v[i].branch, json_string(h->v[i].commit));
	}
	return o;
}

json_t *vz_spec_to_json(const vz_spec *s)
{
	json_t *items = json_array();
	for (size_t i = 0; i < s->nitems; i++) {
		const item_rec *it = &s->items[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s, s:s}", "id", it->id, "project", it->project, "branch",
				      it->branch, "merged", it->r.merged, "commit", it->r.commit, "base", it->r.base);
		json_object_set_new(o, "files", str_array(it->r.files, it->r.nfiles));
		json_object_set_new(o, "conflicts", str_array(it->r.conflicts, it->r.nconflicts));
		json_object_set_new(o, "message", it->r.message ? json_string(it->r.message) : json_null());
		json_object_set_new(o, "note", it->r.note ? json_string(it->r.note) : json_null());
		json_object_set_new(o, "state", state_json(&it->after));
		json_array_append_new(items, o);
	}
	return json_pack("{s:o, s:o}", "initial", state_json(&s->initial), "items", items);
}

/* ---- in-repo configuration ------------------------------------------------------------------------ */

struct cfg_read {
	git_repository *r;
	json_t *files;
	size_t max, total;
	vz_err *e;
};

static int add_blob(struct cfg_read *c, const git_oid *id, const char *path)
{
	git_blob *b = NULL;
	if (git_blob_lookup(&b, c->r, id) < 0)
		return git_fail(c->e, VZ_EIO, "cannot read", path);
	size_t n = (size_t)git_blob_rawsize(b);
	int rc = 0;
	if (n > c->max || c->total + n > c->max * 16) {
		rc = vz_err_set(c->e, VZ_ETOOBIG, "configuration file %s is too big (%zu bytes; limit %zu per file, %zu in all)",
				path, n, c->max, c->max * 16);
	} else if (n > 0) {
		c->total += n;
		json_t *v = json_stringn((const char *)git_blob_rawcontent(b), n);
		if (!v) /* not UTF-8: keep the bytes readable and let the YAML parser report it */
			v = json_stringn("", 0);
		json_object_set_new(c->files, path, v);
	}
	git_blob_free(b);
	return rc;
}

/* Adds the *.yaml blobs under tree (recursively, in git's order = sorted by name). */
static int add_dir(struct cfg_read *c, const git_tree *t, vz_buf *prefix, unsigned depth)
{
	if (depth > 64)
		return vz_err_set(c->e, VZ_ETOOBIG, "configuration directory %s is nested too deeply", vz_buf_cstr(prefix));
	int rc = 0;
	for (size_t i = 0; i < git_tree_entrycount(t) && !rc; i++) {
		const git_tree_entry *x = git_tree_entry_byindex(t, i);
		const char *name = git_tree_entry_name(x);
		size_t mark = prefix->len;
		vz_buf_printf(prefix, "/%s", name);
		if (prefix->failed) {
			rc = vz_err_set(c->e, VZ_ETOOBIG, "configuration path too long");
		} else if (git_tree_entry_type(x) == GIT_OBJECT_TREE) {
			git_tree *sub = NULL;
			if (git_tree_lookup(&sub, c->r, git_tree_entry_id(x)) < 0)
				rc = git_fail(c->e, VZ_EIO, "cannot read", vz_buf_cstr(prefix));
			else
				rc = add_dir(c, sub, prefix, depth + 1);
			git_tree_free(sub);
		} else if (git_tree_entry_filemode(x) == GIT_FILEMODE_BLOB ||
			   git_tree_entry_filemode(x) == GIT_FILEMODE_BLOB_EXECUTABLE) {
			size_t nl = strlen(name);
			if (nl > 5 && strcmp(name + nl - 5, ".yaml") == 0)
				rc = add_blob(c, git_tree_entry_id(x), vz_buf_cstr(prefix));
		}
		prefix->len = mark;
		vz_buf_cstr(prefix);
	}
	return rc;
}

int vz_spec_read_config(json_t **out, json_t **ignored, const char *gitdir, const char *commit, size_t max_bytes,
			vz_err *e)
{
	static const struct {
		const char *name;
		int dir;
	} roots[] = { { "zuul.yaml", 0 }, { "zuul.d", 1 }, { ".zuul.yaml", 0 }, { ".zuul.d", 1 } };
	int rc = 0;
	git_object *obj = NULL;
	git_tree *tree = NULL;
	vz_buf prefix = VZ_BUF_INIT(4096);
	struct cfg_read c = { .max = max_bytes ? max_bytes : 4u << 20, .e = e };
	json_t *ign = json_array();
	*out = NULL;
	if (ignored)
		*ignored = NULL;
	if (git_repository_open_ext(&c.r, gitdir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot open repository", gitdir);
		goto out;
	}
	if (git_revparse_single(&obj, c.r, commit) < 0 || git_object_peel((git_object **)&tree, obj, GIT_OBJECT_TREE) < 0) {
		rc = git_fail(e, VZ_ENOTFOUND, "no such commit", commit);
		goto out;
	}
	c.files = json_object();
	int loaded = 0;
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		const git_tree_entry *x = git_tree_entry_byname(tree, roots[i].name);
		if (!x)
			continue;
		json_t *save = c.files;
		size_t save_total = c.total;
		if (loaded) /* read it only to know whether it has content, as Zuul warns about it */
			c.files = json_object();
		if (roots[i].dir && git_tree_entry_type(x) == GIT_OBJECT_TREE) {
			git_tree *sub = NULL;
			if (git_tree_lookup(&sub, c.r, git_tree_entry_id(x)) < 0) {
				rc = git_fail(e, VZ_EIO, "cannot read", roots[i].name);
			} else {
				vz_buf_reset(&prefix);
				vz_buf_puts(&prefix, roots[i].name);
				rc = add_dir(&c, sub, &prefix, 0);
			}
			git_tree_free(sub);
		} else if (!roots[i].dir && (git_tree_entry_filemode(x) == GIT_FILEMODE_BLOB ||
					     git_tree_entry_filemode(x) == GIT_FILEMODE_BLOB_EXECUTABLE)) {
			rc = add_blob(&c, git_tree_entry_id(x), roots[i].name);
		}
		int has = json_object_size(c.files) > 0;
		if (loaded) {
			json_decref(c.files);
			c.files = save;
			c.total = save_total;
			if (has && !rc)
				json_array_append_new(ign, json_string(roots[i].name));
		} else if (has) {
			loaded = 1;
		}
		if (rc)
			goto out;
	}
	*out = c.files;
	c.files = NULL;
	if (ignored) {
		*ignored = ign;
		ign = NULL;
	}
out:
	json_decref(c.files);
	json_decref(ign);
	vz_buf_free(&prefix);
	git_tree_free(tree);
	git_object_free(obj);
	git_repository_free(c.r);
	return rc;
}

/* ---- workspaces ------------------------------------------------------------------------------------ */

int vz_spec_workspace(const char *gitdir, const char *dest, const vz_spec_branch *branches, size_t nbranches,
		      const char *checkout, vz_err *e)
{
	int rc = 0;
	git_repository *w = NULL, *src = NULL;
	git_commit *c = NULL;
	char *objects = NULL, *altpath = NULL, *alt = NULL, *abs = NULL;
	git_oid want;
	const char *head_branch = NULL;
	if (!checkout || !*checkout)
		return vz_err_set(e, VZ_EINVAL, "workspace %s: nothing to check out", dest);
	for (size_t i = 0; i < nbranches; i++) {
		char ref[600];
		snprintf(ref, sizeof(ref), "refs/heads/%s", branches[i].name ? branches[i].name : "");
		if (!branches[i].name || !*branches[i].name || !git_reference_is_valid_name(ref) ||
		    !is_hex40(branches[i].commit))
			return vz_err_set(e, VZ_EINVAL, "workspace %s: branch %zu needs a valid name and a 40-hex commit", dest, i);
		if (strcmp(branches[i].name, checkout) == 0) {
			head_branch = branches[i].name;
			git_oid_fromstr(&want, branches[i].commit);
		}
	}
	if (!head_branch) {
		if (!is_hex40(checkout))
			return vz_err_set(e, VZ_EINVAL, "workspace %s: %s is neither a given branch nor a commit id", dest, checkout);
		git_oid_fromstr(&want, checkout);
	}
	struct stat st;
	if (lstat(dest, &st) == 0)
		return vz_err_set(e, VZ_EINVAL, "workspace %s already exists", dest);
	/* the objects must be there: check in the source before making anything */
	if (git_repository_open_ext(&src, gitdir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot open repository", gitdir);
		goto out;
	}
	for (size_t i = 0; i <= nbranches; i++) {
		git_oid id;
		if (i < nbranches)
			git_oid_fromstr(&id, branches[i].commit);
		else
			git_oid_cpy(&id, &want);
		if (git_commit_lookup(&c, src, &id) < 0) {
			char hex[41];
			git_oid_tostr(hex, sizeof(hex), &id);
			rc = git_fail(e, VZ_ENOTFOUND, "workspace: no such commit", hex);
			goto out;
		}
		git_commit_free(c);
		c = NULL;
	}
	abs = realpath(git_repository_path(src), NULL);
	if (!abs) {
		rc = vz_err_set(e, VZ_EIO, "cannot resolve %s", git_repository_path(src));
		goto out;
	}
	if (git_repository_init(&w, dest, 0) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot create workspace", dest);
		goto out;
	}
	/* share the source's objects instead of copying them */
	objects = vz_path_join(abs, "objects");
	altpath = vz_path_join(git_repository_path(w), "objects/info/alternates");
	size_t n = strlen(objects) + 2;
	alt = malloc(n);
	if (!alt)
		abort();
	snprintf(alt, n, "%s\n", objects);
	if ((rc = vz_write_file_atomic(altpath, alt, strlen(alt), 0644, e)))
		goto out;
	git_repository_free(w);
	w = NULL;
	if (git_repository_open(&w, dest) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot open workspace", dest);
		goto out;
	}
	for (size_t i = 0; i < nbranches; i++) {
		char ref[600];
		git_oid id;
		git_reference *r = NULL;
		snprintf(ref, sizeof(ref), "refs/heads/%s", branches[i].name);
		git_oid_fromstr(&id, branches[i].commit);
		if (git_reference_create(&r, w, ref, &id, 1, "vinz: speculative head") < 0) {
			rc = git_fail(e, VZ_EIO, "cannot create branch", branches[i].name);
			goto out;
		}
		git_reference_free(r);
	}
	if (git_commit_lookup(&c, w, &want) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot read the commit to check out in", dest);
		goto out;
	}
	git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
	co.checkout_strategy = GIT_CHECKOUT_FORCE;
	if (git_checkout_tree(w, (git_object *)c, &co) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot check out", dest);
		goto out;
	}
	if (head_branch) {
		char ref[600];
		snprintf(ref, sizeof(ref), "refs/heads/%s", head_branch);
		if (git_repository_set_head(w, ref) < 0)
			rc = git_fail(e, VZ_EIO, "cannot set HEAD in", dest);
	} else if (git_repository_set_head_detached(w, &want) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot set HEAD in", dest);
	}
out:
	git_commit_free(c);
	git_repository_free(w);
	git_repository_free(src);
	free(objects);
	free(altpath);
	free(alt);
	free(abs);
	return rc;
}

const vz_spec_head *vz_spec_head_find(const vz_spec_head *hs, size_t n, const char *canon, const char *branch)
{
	for (size_t i = 0; i < n; i++) {
		const char *r = hs[i].ref;
		if (strncmp(r, "refs/heads/", 11) == 0)
			r += 11;
		if (strcmp(hs[i].project, canon) == 0 && strcmp(r, branch) == 0)
			return &hs[i];
	}
	return NULL;
}
