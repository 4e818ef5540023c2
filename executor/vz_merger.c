/* vz_merger: speculative merges in Zuul's five modes with libgit2; see vz_merger.h and
 * docs/merging.md. The tree merge walks only subtrees whose ids differ among base, ours and theirs
 * and hands the whole merge to libgit2's git_merge_trees/git_merge_commits whenever the walk meets
 * something it does not decide the way git's ort would without rename detection (a delete, an add
 * on both sides, a file/directory clash, a type change, a mode or content conflict). */
#include "vz_merger.h"

#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_buf.h"
#include "vz_util.h"

#define TREE_MAX ((size_t)1 << 30) /* cap on one serialised tree object */

struct vz_merger {
	git_repository *repo;
	git_odb *odb;
	int tree_walk;
	int dir_renames; /* report ort's directory-rename "file location" conflicts */
	unsigned file_flags;
};

/* The one place libgit2 errors become vz errors in the merger. */
static int git_fail(vz_err *e, int code, const char *what, const char *arg)
{
	const git_error *ge = git_error_last();
	return vz_err_set(e, code, "git: %s%s%s: %s", what, arg ? " " : "", arg ? arg : "",
			  ge && ge->message ? ge->message : "unknown error");
}

/* ---- sorted string lists ------------------------------------------------------------------ */

typedef struct strlist {
	char **v;
	size_t n, cap;
} strlist;

static int sl_addn(strlist *l, const char *s, size_t len)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		char **nv = realloc(l->v, nc * sizeof(*nv));
		if (!nv)
			return VZ_ENOMEM;
		l->v = nv;
		l->cap = nc;
	}
	char *c = malloc(len + 1);
	if (!c)
		return VZ_ENOMEM;
	memcpy(c, s, len);
	c[len] = '\0';
	l->v[l->n++] = c;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sl_sort_uniq(strlist *l)
{
	if (l->n < 2)
		return;
	qsort(l->v, l->n, sizeof(*l->v), cmp_str);
	size_t j = 1;
	for (size_t i = 1; i < l->n; i++) {
		if (strcmp(l->v[i], l->v[j - 1]) == 0)
			free(l->v[i]);
		else
			l->v[j++] = l->v[i];
	}
	l->n = j;
}

static int sl_has(const strlist *l, const char *s)
{
	return l->n && bsearch(&s, l->v, l->n, sizeof(*l->v), cmp_str) != NULL;
}

static void sl_free(strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* ---- modes and results ---------------------------------------------------------------------- */

static const struct {
	const char *name;
	vz_merge_mode mode;
} mode_names[] = {
	{ "merge", VZ_MERGE_MERGE },           { "merge-resolve", VZ_MERGE_RESOLVE },
	{ "cherry-pick", VZ_MERGE_CHERRY_PICK }, { "squash-merge", VZ_MERGE_SQUASH },
	{ "rebase", VZ_MERGE_REBASE },
};

int vz_merge_mode_parse(vz_merge_mode *out, const char *name)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (name && strcmp(name, mode_names[i].name) == 0) {
			*out = mode_names[i].mode;
			return 0;
		}
	}
	return VZ_EINVAL;
}

const char *vz_merge_mode_name(vz_merge_mode mode)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
		if (mode_names[i].mode == mode)
			return mode_names[i].name;
	return "?";
}

void vz_merge_result_clear(vz_merge_result *r)
{
	if (!r)
		return;
	strlist c = { r->conflicts, r->nconflicts, r->nconflicts };
	strlist f = { r->files, r->nfiles, r->nfiles };
	sl_free(&c);
	sl_free(&f);
	memset(r, 0, sizeof(*r));
}

/* ---- open / free ------------------------------------------------------------------------------ */

int vz_merger_open(vz_merger **out, const char *gitdir, vz_err *e)
{
	*out = NULL;
	vz_merger *m = calloc(1, sizeof(*m));
	if (!m)
		return vz_err_set(e, VZ_ENOMEM, "out of memory opening %s", gitdir);
	m->tree_walk = 1;
	m->dir_renames = 1;
	if (git_repository_open_ext(&m->repo, gitdir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		int rc = git_fail(e, VZ_ENOTFOUND, "cannot open repository", gitdir);
		vz_merger_free(m);
		return rc;
	}
	if (git_repository_odb(&m->odb, m->repo) < 0) {
		int rc = git_fail(e, VZ_EIO, "cannot open the object store of", gitdir);
		vz_merger_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void vz_merger_free(vz_merger *m)
{
	if (!m)
		return;
	git_odb_free(m->odb);
	git_repository_free(m->repo);
	free(m);
}

void vz_merger_set_options(vz_merger *m, int tree_walk, int patience)
{
	m->tree_walk = tree_walk;
	m->file_flags = patience ? GIT_MERGE_FILE_DIFF_PATIENCE : 0;
}

void vz_merger_set_dir_renames(vz_merger *m, int on)
{
	m->dir_renames = on;
}

/* ---- the tree walk ---------------------------------------------------------------------------- */

struct walk {
	vz_merger *m;
	int bail; /* set when the full merge has to decide */
	vz_err *e;
};

static int is_tree(const git_tree_entry *x)
{
	return git_tree_entry_filemode(x) == GIT_FILEMODE_TREE;
}

static int is_regular(git_filemode_t mode)
{
	return mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE;
}

/* git's tree order: names compared bytewise, a tree's name as if it ended in '/'. */
static int key_cmp(const git_tree_entry *a, const git_tree_entry *b)
{
	const char *na = git_tree_entry_name(a), *nb = git_tree_entry_name(b);
	size_t la = strlen(na), lb = strlen(nb), l = la < lb ? la : lb;
	int c = memcmp(na, nb, l);
	if (c)
		return c;
	unsigned ca = la > l ? (unsigned char)na[l] : is_tree(a) ? '/' : 0;
	unsigned cb = lb > l ? (unsigned char)nb[l] : is_tree(b) ? '/' : 0;
	return ca < cb ? -1 : ca > cb ? 1 : 0;
}

/* One step of a walk over n trees' sorted entries in step: the smallest name among the entries
 * not yet consumed is returned, and cur[k] is tree k's entry of that name (NULL when tree k has
 * none); those entries are consumed. NULL when every tree is exhausted. */
static const git_tree_entry *next_aligned(const git_tree *const *tr, size_t *idx, const size_t *cnt, int n,
					  const git_tree_entry **cur)
{
	const git_tree_entry *min = NULL;
	for (int k = 0; k < n; k++) {
		cur[k] = NULL;
		if (idx[k] < cnt[k]) {
			const git_tree_entry *x = git_tree_entry_byindex(tr[k], idx[k]);
			if (!min || key_cmp(x, min) < 0)
				min = x;
		}
	}
	for (int k = 0; min && k < n; k++) {
		if (idx[k] < cnt[k]) {
			const git_tree_entry *x = git_tree_entry_byindex(tr[k], idx[k]);
			if (key_cmp(x, min) == 0) {
				cur[k] = x;
				idx[k]++;
			}
		}
	}
	return min;
}


static int same(const git_tree_entry *a, const git_tree_entry *b)
{
	if (!a || !b)
		return a == b;
	return git_tree_entry_filemode(a) == git_tree_entry_filemode(b) &&
	       git_oid_equal(git_tree_entry_id(a), git_tree_entry_id(b));
}

static int emit(vz_buf *buf, git_filemode_t mode, const char *name, const git_oid *id)
{
	vz_buf_printf(buf, "%o %s", (unsigned)mode, name);
	vz_buf_putc(buf, '\0');
	return vz_buf_add(buf, id->id, GIT_OID_RAWSZ) ? VZ_ENOMEM : 0;
}

static int walk_trees(struct walk *w, const git_tree *b, const git_tree *o, const git_tree *t, git_oid *out,
		      int *empty);

static int lookup_tree(struct walk *w, const git_tree_entry *x, git_tree **out)
{
	*out = NULL;
	if (x && git_tree_lookup(out, w->m->repo, git_tree_entry_id(x)) < 0)
		return git_fail(w->e, VZ_EIO, "cannot read tree", git_tree_entry_name(x));
	return 0;
}

static int merge_subtrees(struct walk *w, const git_tree_entry *b, const git_tree_entry *o, const git_tree_entry *t,
			  vz_buf *buf)
{
	git_tree *tb = NULL, *to = NULL, *tt = NULL;
	git_oid id;
	int empty = 0, rc;
	if ((rc = lookup_tree(w, b, &tb)) || (rc = lookup_tree(w, o, &to)) || (rc = lookup_tree(w, t, &tt)))
		goto out;
	rc = walk_trees(w, tb, to, tt, &id, &empty);
	/* a directory left empty disappears, as in git */
	if (!rc && !w->bail && !empty)
		rc = emit(buf, GIT_FILEMODE_TREE, git_tree_entry_name(o), &id);
out:
	git_tree_free(tb);
	git_tree_free(to);
	git_tree_free(tt);
	return rc;
}

static int merge_blobs(struct walk *w, const git_tree_entry *b, const git_tree_entry *o, const git_tree_entry *t,
		       vz_buf *buf)
{
	git_filemode_t mb = b ? git_tree_entry_filemode(b) : 0, mo = git_tree_entry_filemode(o),
		       mt = git_tree_entry_filemode(t), mode;
	const git_oid *ib = b ? git_tree_entry_id(b) : NULL, *io = git_tree_entry_id(o), *it = git_tree_entry_id(t);
	git_blob *bb = NULL, *bo = NULL, *bt = NULL;
	git_merge_file_result res = { 0 };
	git_oid merged;
	int rc = 0;

	/* symlinks, gitlinks, type changes and add/add are left to the full merge */
	if (!b || !is_regular(mb) || !is_regular(mo) || !is_regular(mt)) {
		w->bail = 1;
		return 0;
	}
	mode = mo == mt ? mo : mb == mo ? mt : mb == mt ? mo : 0;
	if (!mode) {
		w->bail = 1;
		return 0;
	}
	if (git_oid_equal(io, it) || git_oid_equal(ib, it))
		return emit(buf, mode, git_tree_entry_name(o), io);
	if (git_oid_equal(ib, io))
		return emit(buf, mode, git_tree_entry_name(o), it);

	if (git_blob_lookup(&bb, w->m->repo, ib) < 0 || git_blob_lookup(&bo, w->m->repo, io) < 0 ||
	    git_blob_lookup(&bt, w->m->repo, it) < 0) {
		rc = git_fail(w->e, VZ_EIO, "cannot read a version of", git_tree_entry_name(o));
		goto out;
	}
	git_merge_file_input in[3] = { GIT_MERGE_FILE_INPUT_INIT, GIT_MERGE_FILE_INPUT_INIT, GIT_MERGE_FILE_INPUT_INIT };
	git_blob *blobs[3] = { bb, bo, bt };
	git_filemode_t modes[3] = { mb, mo, mt };
	for (int i = 0; i < 3; i++) {
		in[i].ptr = git_blob_rawcontent(blobs[i]);
		in[i].size = (size_t)git_blob_rawsize(blobs[i]);
		in[i].path = git_tree_entry_name(o);
		in[i].mode = modes[i];
	}
	git_merge_file_options fo = GIT_MERGE_FILE_OPTIONS_INIT;
	fo.flags = w->m->file_flags;
	if (git_merge_file(&res, &in[0], &in[1], &in[2], &fo) < 0) {
		rc = git_fail(w->e, VZ_EIO, "cannot merge", git_tree_entry_name(o));
		goto out;
	}
	if (!res.automergeable) {
		w->bail = 1;
		goto out;
	}
	if (git_odb_write(&merged, w->m->odb, res.ptr, res.len, GIT_OBJECT_BLOB) < 0) {
		rc = git_fail(w->e, VZ_EIO, "cannot write the merged", git_tree_entry_name(o));
		goto out;
	}
	rc = emit(buf, mode, git_tree_entry_name(o), &merged);
out:
	git_merge_file_result_free(&res);
	git_blob_free(bb);
	git_blob_free(bo);
	git_blob_free(bt);
	return rc;
}

/* 1 when a path under tree entry b is missing under tree entry o, 0 when none is, or an error.
 * Descends only into subtrees whose ids differ. */
static int has_deletion(struct walk *w, const git_tree_entry *b, const git_tree_entry *o)
{
	git_tree *tb = NULL, *to = NULL;
	int rc;
	if ((rc = lookup_tree(w, b, &tb)) || (rc = lookup_tree(w, o, &to)))
		goto out;
	size_t nb = git_tree_entrycount(tb), no = git_tree_entrycount(to), j = 0;
	for (size_t i = 0; i < nb && !rc; i++) {
		const git_tree_entry *x = git_tree_entry_byindex(tb, i), *y = NULL;
		int c = 1;
		while (j < no && (c = key_cmp(git_tree_entry_byindex(to, j), x)) < 0)
			j++;
		if (c != 0) {
			rc = 1;
			break;
		}
		y = git_tree_entry_byindex(to, j);
		if (is_tree(x) && !same(x, y))
			rc = has_deletion(w, x, y);
	}
out:
	git_tree_free(tb);
	git_tree_free(to);
	return rc;
}

/* One name of a directory, present in any of the three versions. */
static int merge_entry(struct walk *w, const git_tree_entry *b, const git_tree_entry *o, const git_tree_entry *t,
		       vz_buf *buf)
{
	/* deleted on both sides: one of them may be a rename (rename/delete, rename/rename) */
	if (b && !o && !t) {
		w->bail = 1;
		return 0;
	}
	/* the same new directory on both sides may hide such a deletion */
	if (b && o && same(o, t) && is_tree(b) && is_tree(o) && !same(b, o)) {
		int rc = has_deletion(w, b, o);
		if (rc < 0)
			return rc;
		if (rc) {
			w->bail = 1;
			return 0;
		}
	}
	if (same(o, t))
		return o ? emit(buf, git_tree_entry_filemode(o), git_tree_entry_name(o), git_tree_entry_id(o)) : 0;
	if (same(b, o))
		return t ? emit(buf, git_tree_entry_filemode(t), git_tree_entry_name(t), git_tree_entry_id(t)) : 0;
	if (same(b, t))
		return o ? emit(buf, git_tree_entry_filemode(o), git_tree_entry_name(o), git_tree_entry_id(o)) : 0;
	/* changed on both sides. A delete may be half of a rename, so modify/delete (and
	 * delete/delete, caught above as same(o, t)) is decided by the full merge. */
	if (!o || !t) {
		w->bail = 1;
		return 0;
	}
	if (is_tree(o) && is_tree(t) && (!b || is_tree(b)))
		return merge_subtrees(w, b, o, t, buf);
	if (!is_tree(o) && !is_tree(t) && (!b || !is_tree(b)))
		return merge_blobs(w, b, o, t, buf);
	w->bail = 1;
	return 0;
}

static int name_in(const strlist *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], name) == 0)
			return 1;
	return 0;
}

static int walk_trees(struct walk *w, const git_tree *b, const git_tree *o, const git_tree *t, git_oid *out, int *empty)
{
	const git_tree *tr[3] = { b, o, t };
	size_t idx[3] = { 0, 0, 0 }, cnt[3];
	vz_buf buf = VZ_BUF_INIT(TREE_MAX);
	strlist dirs = { 0 }, files = { 0 }; /* names changed as a directory / as a file here */
	int rc = 0;

	*empty = 0;
	/* whole-tree shortcuts: one side unchanged, or both the same */
	if (o && t && git_oid_equal(git_tree_id(o), git_tree_id(t))) {
		git_oid_cpy(out, git_tree_id(o));
		*empty = git_tree_entrycount(o) == 0;
		return 0;
	}
	if (b && o && git_oid_equal(git_tree_id(b), git_tree_id(o)) && t) {
		git_oid_cpy(out, git_tree_id(t));
		*empty = git_tree_entrycount(t) == 0;
		return 0;
	}
	if (b && t && git_oid_equal(git_tree_id(b), git_tree_id(t)) && o) {
		git_oid_cpy(out, git_tree_id(o));
		*empty = git_tree_entrycount(o) == 0;
		return 0;
	}
	for (int k = 0; k < 3; k++)
		cnt[k] = tr[k] ? git_tree_entrycount(tr[k]) : 0;
	while (!rc && !w->bail) {
		const git_tree_entry *cur[3], *min = next_aligned(tr, idx, cnt, 3, cur);
		if (!min)
			break;
		if (!(same(cur[0], cur[1]) && same(cur[1], cur[2]))) {
			const char *name = git_tree_entry_name(min);
			rc = sl_addn(is_tree(min) ? &dirs : &files, name, strlen(name));
			if (rc)
				break;
		}
		rc = merge_entry(w, cur[0], cur[1], cur[2], &buf);
	}
	if (rc || w->bail)
		goto out;
	/* a name that changed both as a file and as a directory: a file/directory clash */
	if (dirs.n && files.n) {
		for (size_t i = 0; i < dirs.n; i++) {
			if (name_in(&files, dirs.v[i])) {
				w->bail = 1;
				goto out;
			}
		}
	}
	if (buf.failed) {
		rc = vz_err_set(w->e, buf.failed, "merged tree larger than %zu bytes", (size_t)TREE_MAX);
		goto out;
	}
	*empty = buf.len == 0;
	if (git_odb_write(out, w->m->odb, buf.len ? buf.ptr : "", buf.len, GIT_OBJECT_TREE) < 0)
		rc = git_fail(w->e, VZ_EIO, "cannot write a merged tree", NULL);
out:
	sl_free(&dirs);
	sl_free(&files);
	vz_buf_free(&buf);
	return rc;
}

/* ---- merging trees and commits ---------------------------------------------------------------- */

static void merge_opts(vz_merger *m, int renames, git_merge_options *mo)
{
	git_merge_options init = GIT_MERGE_OPTIONS_INIT;
	*mo = init;
	mo->flags = renames ? GIT_MERGE_FIND_RENAMES : 0;
	mo->file_flags = m->file_flags;
}

/* Reads the outcome of a libgit2 merge: the tree, or the conflicting paths. */
static int index_outcome(vz_merger *m, git_index *idx, git_oid *tree_out, strlist *conflicts, int *clean, vz_err *e)
{
	git_index_conflict_iterator *it = NULL;
	const git_index_entry *a, *o, *t;
	int rc = 0, g;
	if (!git_index_has_conflicts(idx)) {
		*clean = 1;
		if (git_index_write_tree_to(tree_out, idx, m->repo) < 0)
			return git_fail(e, VZ_EIO, "cannot write the merged tree", NULL);
		return 0;
	}
	*clean = 0;
	if (git_index_conflict_iterator_new(&it, idx) < 0)
		return git_fail(e, VZ_EIO, "cannot list conflicts", NULL);
	while (!rc && (g = git_index_conflict_next(&a, &o, &t, it)) == 0) {
		const git_index_entry *s[3] = { o, t, a };
		for (int i = 0; i < 3 && !rc; i++)
			if (s[i] && conflicts)
				rc = sl_addn(conflicts, s[i]->path, strlen(s[i]->path));
	}
	git_index_conflict_iterator_free(it);
	if (conflicts)
		sl_sort_uniq(conflicts);
	return rc;
}

/* ---- directory renames (ort's "file location" conflicts) ---------------------------------------

libgit2 has no directory rename detection. ort (with git's default merge.directoryRenames=conflict)
reports a conflict when one side renamed a directory away — the directory is gone on that side and
most files renamed out of it went to one other directory — and the other side added a file (or
renamed one) into the old directory. After a clean full merge with rename detection, this finds
those paths the same way: per side, renames and the directories that side removed, the majority
target of each removed directory, then the other side's new paths under such a directory. It only
runs when libgit2's full merge decided (the tree walk never sees a removed directory that the
other side changed). */

struct dirmove {
	char *from, *to;
	unsigned count;
};

struct dirmoves {
	struct dirmove *v;
	size_t n;
};

static void dm_count(struct dirmoves *d, const char *from, size_t fl, const char *to, size_t tl)
{
	for (size_t i = 0; i < d->n; i++)
		if (strlen(d->v[i].from) == fl && strncmp(d->v[i].from, from, fl) == 0 && strlen(d->v[i].to) == tl &&
		    strncmp(d->v[i].to, to, tl) == 0) {
			d->v[i].count++;
			return;
		}
	d->v = realloc(d->v, (d->n + 1) * sizeof(*d->v));
	if (!d->v)
		abort();
	d->v[d->n].from = strndup(from, fl);
	d->v[d->n].to = strndup(to, tl);
	if (!d->v[d->n].from || !d->v[d->n].to)
		abort();
	d->v[d->n].count = 1;
	d->n++;
}

static void dm_free(struct dirmoves *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].from);
		free(d->v[i].to);
	}
	free(d->v);
	memset(d, 0, sizeof(*d));
}

/* Whether directory dir (len bytes of a path) exists in tree. */
static int dir_exists(const git_tree *tree, const char *dir, size_t len)
{
	char p[4096];
	if (len == 0)
		return 1;
	if (len >= sizeof(p))
		return 1; /* too long to check: assume it is there (no conflict claimed) */
	memcpy(p, dir, len);
	p[len] = '\0';
	git_tree_entry *x = NULL;
	if (git_tree_entry_bypath(&x, tree, p) < 0)
		return 0;
	int is_dir = git_tree_entry_type(x) == GIT_OBJECT_TREE;
	git_tree_entry_free(x);
	return is_dir;
}

static size_t dir_len(const char *path)
{
	const char *sl = strrchr(path, '/');
	return sl ? (size_t)(sl - path) : 0;
}

/* Renames (old -> new) of base -> side, into diff (caller frees). */
static int side_diff(vz_merger *m, const git_tree *b, const git_tree *side, git_diff **out, vz_err *e)
{
	git_diff_options dopt = GIT_DIFF_OPTIONS_INIT;
	git_diff_find_options fopt = GIT_DIFF_FIND_OPTIONS_INIT;
	fopt.flags = GIT_DIFF_FIND_RENAMES;
	fopt.rename_threshold = 50;
	if (git_diff_tree_to_tree(out, m->repo, (git_tree *)b, (git_tree *)side, &dopt) < 0 ||
	    git_diff_find_similar(*out, &fopt) < 0)
		return git_fail(e, VZ_EIO, "cannot diff trees for directory renames", NULL);
	return 0;
}

/* Whether path (len bytes) is in l. */
static int sl_hasn(const strlist *l, const char *path, size_t len)
{
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->v[i]) == len && strncmp(l->v[i], path, len) == 0)
			return 1;
	return 0;
}

/* The new paths (added, or renamed to) of a side. */
static int is_new(const git_diff_delta *x)
{
	return x->status == GIT_DELTA_ADDED || x->status == GIT_DELTA_RENAMED;
}

/* Directories of base that side removed and that matter, as ort decides it: the other side put a
 * new file directly in them. */
static int relevant_dirs(git_diff *other, const git_tree *b, const git_tree *side, strlist *out)
{
	int rc = 0;
	for (size_t i = 0; i < git_diff_num_deltas(other) && !rc; i++) {
		const git_diff_delta *x = git_diff_get_delta(other, i);
		if (!is_new(x))
			continue;
		const char *np = x->new_file.path;
		size_t dl = dir_len(np);
		if (dl == 0 || sl_hasn(out, np, dl) || !dir_exists(b, np, dl) || dir_exists(side, np, dl))
			continue;
		rc = sl_addn(out, np, dl);
	}
	return rc;
}

/* For the relevant directories, where the renames of side sent their files: every rename credits
 * its old directory and each parent up to the part that was really renamed (ort's counting), then
 * the target with a strict majority wins ("\n" when there is none: a "directory rename split"). */
static void side_dir_renames(git_diff *d, const git_tree *side, const strlist *relevant, struct dirmoves *out)
{
	struct dirmoves counts = { 0 };
	size_t n = git_diff_num_deltas(d);
	for (size_t i = 0; i < n; i++) {
		const git_diff_delta *x = git_diff_get_delta(d, i);
		if (x->status != GIT_DELTA_RENAMED)
			continue;
		const char *op = x->old_file.path, *np = x->new_file.path;
		size_t ol = dir_len(op), nl = dir_len(np);
		/* credit (old dir, new dir), then their parents while the last parts are the same */
		for (;;) {
			if (ol == 0 || (ol == nl && strncmp(op, np, ol) == 0) || dir_exists(side, op, ol))
				break;
			dm_count(&counts, op, ol, np, nl);
			size_t os = ol, ns = nl;
			while (os > 0 && op[os - 1] != '/')
				os--;
			while (ns > 0 && np[ns - 1] != '/')
				ns--;
			/* the root always exists, so it is never the directory renamed */
			if (os == 0 || ns == 0 || ol - os != nl - ns || strncmp(op + os, np + ns, ol - os) != 0)
				break;
			ol = os - 1;
			nl = ns - 1;
		}
	}
	for (size_t r = 0; r < relevant->n; r++) {
		const char *dir = relevant->v[r];
		unsigned best = 0, second = 0;
		size_t bi = 0;
		for (size_t j = 0; j < counts.n; j++) {
			if (strcmp(counts.v[j].from, dir) != 0)
				continue;
			if (counts.v[j].count > best) {
				second = best;
				best = counts.v[j].count;
				bi = j;
			} else if (counts.v[j].count > second) {
				second = counts.v[j].count;
			}
		}
		if (best == 0)
			continue; /* removed, not renamed */
		const char *to = best > second ? counts.v[bi].to : "\n";
		dm_count(out, dir, strlen(dir), to, strlen(to));
	}
	dm_free(&counts);
}

/* Adds to paths the new paths of `other` whose nearest enclosing directory in moves was renamed
 * (or split) away by the side that moves describes. */
static int misplaced_paths(git_diff *other, const struct dirmoves *moves, strlist *paths)
{
	int rc = 0;
	for (size_t i = 0; i < git_diff_num_deltas(other) && !rc; i++) {
		const git_diff_delta *x = git_diff_get_delta(other, i);
		if (!is_new(x))
			continue;
		const char *np = x->new_file.path;
		for (size_t dl = dir_len(np); dl > 0 && !rc;) {
			int hit = 0;
			for (size_t j = 0; j < moves->n && !hit; j++)
				hit = strlen(moves->v[j].from) == dl && strncmp(moves->v[j].from, np, dl) == 0;
			if (hit) {
				rc = sl_addn(paths, np, strlen(np));
				break;
			}
			while (dl > 0 && np[dl - 1] != '/')
				dl--;
			dl = dl ? dl - 1 : 0;
		}
	}
	return rc;
}

/* Paths ort would report as "CONFLICT (file location)" or "(directory rename split)" for this
 * merge; empty when none. */
static int dir_rename_conflicts(vz_merger *m, const git_tree *b, const git_tree *o, const git_tree *t, strlist *paths,
				vz_err *e)
{
	git_diff *d[2] = { NULL, NULL };
	const git_tree *side[2] = { o, t };
	struct dirmoves moves[2] = { { 0 }, { 0 } };
	strlist relevant[2] = { { 0 }, { 0 } };
	int rc = 0;
	for (int i = 0; i < 2 && !rc; i++)
		rc = side_diff(m, b, side[i], &d[i], e);
	for (int i = 0; i < 2 && !rc; i++)
		rc = relevant_dirs(d[1 - i], b, side[i], &relevant[i]);
	for (int i = 0; i < 2 && !rc; i++)
		if (relevant[i].n)
			side_dir_renames(d[i], side[i], &relevant[i], &moves[i]);
	for (int i = 0; i < 2 && !rc; i++)
		if (moves[i].n)
			rc = misplaced_paths(d[1 - i], &moves[i], paths);
	for (int i = 0; i < 2; i++) {
		git_diff_free(d[i]);
		dm_free(&moves[i]);
		sl_free(&relevant[i]);
	}
	return rc;
}

/* Whether some directory of base is missing from tree (the only case a directory can have been
 * renamed away); checks only where the two differ. */
static int removes_a_dir(vz_merger *m, const git_tree *b, const git_tree *side, unsigned depth)
{
	if (depth > 64)
		return 1;
	for (size_t i = 0; i < git_tree_entrycount(b); i++) {
		const git_tree_entry *x = git_tree_entry_byindex(b, i);
		if (git_tree_entry_type(x) != GIT_OBJECT_TREE)
			continue;
		const git_tree_entry *y = git_tree_entry_byname(side, git_tree_entry_name(x));
		if (!y || git_tree_entry_type(y) != GIT_OBJECT_TREE)
			return 1;
		if (git_oid_equal(git_tree_entry_id(x), git_tree_entry_id(y)))
			continue;
		git_tree *bx = NULL, *sy = NULL;
		int r = 1;
		if (git_tree_lookup(&bx, m->repo, git_tree_entry_id(x)) == 0 &&
		    git_tree_lookup(&sy, m->repo, git_tree_entry_id(y)) == 0)
			r = removes_a_dir(m, bx, sy, depth + 1);
		git_tree_free(bx);
		git_tree_free(sy);
		if (r)
			return 1;
	}
	return 0;
}

/* Three-way tree merge with one base (NULL: none). */
static int merge_trees(vz_merger *m, const git_tree *b, const git_tree *o, const git_tree *t, int renames,
		       git_oid *tree_out, strlist *conflicts, int *clean, unsigned *full, vz_err *e)
{
	git_index *idx = NULL;
	int rc;
	if (m->tree_walk) {
		struct walk w = { m, 0, e };
		int empty;
		rc = walk_trees(&w, b, o, t, tree_out, &empty);
		if (rc || !w.bail) {
			*clean = 1;
			return rc;
		}
	}
	(*full)++;
	git_merge_options mo;
	merge_opts(m, renames, &mo);
	if (git_merge_trees(&idx, m->repo, b, o, t, &mo) < 0)
		return git_fail(e, VZ_EIO, "cannot merge trees", NULL);
	rc = index_outcome(m, idx, tree_out, conflicts, clean, e);
	git_index_free(idx);
	if (!rc && *clean && renames && b && m->dir_renames && (removes_a_dir(m, b, o, 0) || removes_a_dir(m, b, t, 0))) {
		strlist moved = { 0 };
		rc = dir_rename_conflicts(m, b, o, t, &moved, e);
		if (!rc && moved.n) {
			*clean = 0;
			for (size_t i = 0; i < moved.n && !rc; i++)
				if (conflicts)
					rc = sl_addn(conflicts, moved.v[i], strlen(moved.v[i]));
		}
		sl_free(&moved);
	}
	return rc;
}

int vz_merger_merge_trees(vz_merger *m, const char *base, const char *ours, const char *theirs, int renames,
			  char out_tree[41], int *clean, vz_err *e)
{
	const char *hex[3] = { base, ours, theirs };
	git_tree *tr[3] = { NULL, NULL, NULL };
	git_oid id;
	unsigned full = 0;
	int rc = 0;
	out_tree[0] = '\0';
	*clean = 0;
	for (int i = 0; i < 3; i++) {
		if (!hex[i])
			continue;
		if (git_oid_fromstr(&id, hex[i]) < 0 || git_tree_lookup(&tr[i], m->repo, &id) < 0) {
			rc = git_fail(e, VZ_ENOTFOUND, "no such tree", hex[i]);
			goto out;
		}
	}
	rc = merge_trees(m, tr[0], tr[1], tr[2], renames, &id, NULL, clean, &full, e);
	if (!rc && *clean)
		git_oid_tostr(out_tree, 41, &id);
out:
	for (int i = 0; i < 3; i++)
		git_tree_free(tr[i]);
	return rc;
}

static int commit_tree(vz_merger *m, const git_commit *c, git_tree **out, vz_err *e)
{
	if (git_commit_tree(out, c) < 0)
		return git_fail(e, VZ_EIO, "cannot read the tree of a commit", NULL);
	return 0;
}

/* Tree merge of two commits through their merge bases. *unrelated set when they have none. */
static int merge_commit_trees(vz_merger *m, const git_oidarray *bases, git_commit *ours, git_commit *theirs,
			      int renames, git_oid *tree_out, strlist *conflicts, int *clean, unsigned *full, vz_err *e)
{
	git_commit *bc = NULL;
	git_tree *tb = NULL, *to = NULL, *tt = NULL;
	git_index *idx = NULL;
	int rc = 0;
	if (bases->count == 1) {
		if (git_commit_lookup(&bc, m->repo, &bases->ids[0]) < 0) {
			rc = git_fail(e, VZ_EIO, "cannot read the merge base", NULL);
			goto out;
		}
		if ((rc = commit_tree(m, bc, &tb, e)) || (rc = commit_tree(m, ours, &to, e)) ||
		    (rc = commit_tree(m, theirs, &tt, e)))
			goto out;
		rc = merge_trees(m, tb, to, tt, renames, tree_out, conflicts, clean, full, e);
		goto out;
	}
	/* criss-cross: libgit2 merges the merge bases into a virtual one, as ort does */
	(*full)++;
	git_merge_options mo;
	merge_opts(m, renames, &mo);
	if (git_merge_commits(&idx, m->repo, ours, theirs, &mo) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot merge commits", NULL);
		goto out;
	}
	rc = index_outcome(m, idx, tree_out, conflicts, clean, e);
out:
	git_index_free(idx);
	git_tree_free(tb);
	git_tree_free(to);
	git_tree_free(tt);
	git_commit_free(bc);
	return rc;
}

/* ---- commits ---------------------------------------------------------------------------------- */

static int resolve(vz_merger *m, const char *spec, git_commit **out, vz_err *e)
{
	git_object *obj = NULL;
	*out = NULL;
	if (!spec || !*spec)
		return vz_err_set(e, VZ_EINVAL, "an empty commit name was given");
	if (git_revparse_single(&obj, m->repo, spec) < 0)
		return git_fail(e, VZ_ENOTFOUND, "cannot resolve", spec);
	int rc = git_object_peel((git_object **)out, obj, GIT_OBJECT_COMMIT);
	git_object_free(obj);
	if (rc < 0)
		return git_fail(e, VZ_ENOTFOUND, "not a commit:", spec);
	return 0;
}

int vz_merger_resolve(vz_merger *m, const char *spec, char out[41], vz_err *e)
{
	git_commit *c = NULL;
	out[0] = '\0';
	int rc = resolve(m, spec, &c, e);
	if (!rc)
		git_oid_tostr(out, 41, git_commit_id(c));
	git_commit_free(c);
	return rc;
}

/* Creates a commit with vinz as committer (and author unless given), writing no ref. */
static int make_commit(vz_merger *m, const git_oid *tree_id, const git_signature *author, const char *encoding,
		       const char *msg, size_t nparents, const git_commit **parents, int64_t date, git_oid *out,
		       vz_err *e)
{
	git_signature *me = NULL;
	git_tree *tree = NULL;
	int rc = 0;
	if (git_signature_new(&me, VZ_MERGE_NAME, VZ_MERGE_EMAIL, (git_time_t)date, 0) < 0 ||
	    git_tree_lookup(&tree, m->repo, tree_id) < 0 ||
	    git_commit_create(out, m->repo, NULL, author ? author : me, me, encoding, msg, tree, nparents, parents) < 0)
		rc = git_fail(e, VZ_EIO, "cannot create a commit", NULL);
	git_tree_free(tree);
	git_signature_free(me);
	return rc;
}

static void set_result(vz_merge_result *out, const git_oid *commit, const git_oid *tree)
{
	out->merged = 1;
	git_oid_tostr(out->commit, sizeof(out->commit), commit);
	git_oid_tostr(out->tree, sizeof(out->tree), tree);
}

static int oids_have(const git_oidarray *a, const git_oid *id)
{
	for (size_t i = 0; i < a->count; i++)
		if (git_oid_equal(&a->ids[i], id))
			return 1;
	return 0;
}

static int merge_message(const char *change, char **out)
{
	vz_buf b = VZ_BUF_INIT(1u << 20);
	vz_buf_printf(&b, "Merge '%s'\n", change);
	if (b.failed) {
		vz_buf_free(&b);
		return VZ_ETOOBIG;
	}
	*out = vz_buf_detach(&b);
	return *out ? 0 : VZ_ENOMEM;
}

/* merge, merge-resolve, squash-merge, and cherry-pick of a merge commit */
static int do_merge(vz_merger *m, const vz_merge_req *req, git_commit *onto, git_commit *change, int renames,
		    int squash, vz_merge_result *out, strlist *conflicts, vz_err *e)
{
	git_oidarray bases = { NULL, 0 };
	git_oid tree_id, cid;
	char *msg = NULL;
	int clean = 0, rc = 0;
	const git_oid *oo = git_commit_id(onto), *co = git_commit_id(change);

	int g = git_merge_bases(&bases, m->repo, oo, co);
	if (g == GIT_ENOTFOUND) {
		out->note = "unrelated histories: git merge refuses them";
		goto out;
	}
	if (g < 0) {
		rc = git_fail(e, VZ_EIO, "cannot find the merge base of", req->change);
		goto out;
	}
	int up_to_date = oids_have(&bases, co), ff = oids_have(&bases, oo);
	if (!squash && up_to_date) {
		out->note = "already up to date";
		set_result(out, oo, git_commit_tree_id(onto));
		goto out;
	}
	if (!squash && ff) {
		out->note = "fast-forward";
		set_result(out, co, git_commit_tree_id(change));
		goto out;
	}
	if (up_to_date || ff) {
		git_oid_cpy(&tree_id, up_to_date ? git_commit_tree_id(onto) : git_commit_tree_id(change));
		clean = 1;
	} else if ((rc = merge_commit_trees(m, &bases, onto, change, renames, &tree_id, conflicts, &clean,
					    &out->full_merges, e))) {
		goto out;
	}
	if (!clean)
		goto out;
	if ((rc = merge_message(req->change, &msg))) {
		rc = vz_err_set(e, rc, "cannot build the commit message for %s", req->change);
		goto out;
	}
	const git_commit *parents[2] = { onto, change };
	if ((rc = make_commit(m, &tree_id, NULL, NULL, msg, squash ? 1 : 2, parents, req->date, &cid, e)))
		goto out;
	set_result(out, &cid, &tree_id);
out:
	free(msg);
	git_oidarray_dispose(&bases);
	return rc;
}

/* Replays single-parent (or root) commit c onto the commit `onto` as git cherry-pick does.
 * *picked: 1 a commit was made (out_commit), 0 none: already applied (drop_redundant) */
static int pick_one(vz_merger *m, git_commit *onto, git_commit *c, int64_t date, int drop_empty_start,
		    git_oid *out_commit, int *picked, strlist *conflicts, int *clean, unsigned *full, vz_err *e)
{
	git_commit *parent = NULL;
	git_tree *tp = NULL, *to = NULL, *tc = NULL;
	git_oid tree_id;
	int rc = 0;
	*picked = 0;
	if (git_commit_parentcount(c) > 0 && git_commit_parent(&parent, c, 0) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot read the parent of a commit", NULL);
		goto out;
	}
	if ((parent && (rc = commit_tree(m, parent, &tp, e))) || (rc = commit_tree(m, onto, &to, e)) ||
	    (rc = commit_tree(m, c, &tc, e)))
		goto out;
	if ((rc = merge_trees(m, tp, to, tc, 1, &tree_id, conflicts, clean, full, e)) || !*clean)
		goto out;
	int started_empty = tp ? git_oid_equal(git_tree_id(tp), git_tree_id(tc)) : git_tree_entrycount(tc) == 0;
	if (git_oid_equal(&tree_id, git_tree_id(to)) && (!started_empty || drop_empty_start))
		goto out; /* already applied */
	const git_commit *parents[1] = { onto };
	rc = make_commit(m, &tree_id, git_commit_author(c), git_commit_message_encoding(c), git_commit_message_raw(c), 1,
			 parents, date, out_commit, e);
	*picked = !rc;
out:
	git_tree_free(tp);
	git_tree_free(to);
	git_tree_free(tc);
	git_commit_free(parent);
	return rc;
}

static int do_cherry_pick(vz_merger *m, const vz_merge_req *req, git_commit *onto, git_commit *change,
			  vz_merge_result *out, strlist *conflicts, vz_err *e)
{
	git_oid cid;
	int picked = 0, clean = 0;
	int rc = pick_one(m, onto, change, req->date, 0, &cid, &picked, conflicts, &clean, &out->full_merges, e);
	if (rc || !clean)
		return rc;
	if (picked) {
		git_commit *nc = NULL;
		if (git_commit_lookup(&nc, m->repo, &cid) < 0)
			return git_fail(e, VZ_EIO, "cannot read the new commit", NULL);
		set_result(out, &cid, git_commit_tree_id(nc));
		git_commit_free(nc);
	} else {
		out->note = "already applied";
		set_result(out, git_commit_id(onto), git_commit_tree_id(onto));
	}
	return 0;
}

static int do_rebase(vz_merger *m, const vz_merge_req *req, git_commit *onto, git_commit *change,
		     vz_merge_result *out, strlist *conflicts, vz_err *e)
{
	git_oidarray bases = { NULL, 0 };
	git_revwalk *wk = NULL;
	git_commit *cur = NULL, *c = NULL;
	git_oid id;
	int rc = 0, g;
	const git_oid *oo = git_commit_id(onto), *co = git_commit_id(change);

	g = git_merge_bases(&bases, m->repo, oo, co);
	if (g < 0 && g != GIT_ENOTFOUND) {
		rc = git_fail(e, VZ_EIO, "cannot find the merge base of", req->change);
		goto out;
	}
	if (g == 0 && oids_have(&bases, oo)) {
		out->note = "fast-forward";
		set_result(out, co, git_commit_tree_id(change));
		goto out;
	}
	if (g == 0 && oids_have(&bases, co)) {
		out->note = "already up to date";
		set_result(out, oo, git_commit_tree_id(onto));
		goto out;
	}
	if (git_revwalk_new(&wk, m->repo) < 0 || git_revwalk_sorting(wk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE) < 0 ||
	    git_revwalk_push(wk, co) < 0 || git_revwalk_hide(wk, oo) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot list the commits of", req->change);
		goto out;
	}
	if (git_commit_lookup(&cur, m->repo, oo) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot read", req->onto);
		goto out;
	}
	while ((g = git_revwalk_next(&id, wk)) == 0) {
		int picked = 0, clean = 0;
		git_oid nid;
		if (git_commit_lookup(&c, m->repo, &id) < 0) {
			rc = git_fail(e, VZ_EIO, "cannot read a commit of", req->change);
			goto out;
		}
		/* git rebase without --rebase-merges drops merge commits */
		if (git_commit_parentcount(c) <= 1) {
			rc = pick_one(m, cur, c, req->date, 0, &nid, &picked, conflicts, &clean, &out->full_merges, e);
			if (rc)
				goto out;
			if (!clean) {
				out->note = "conflict replaying a commit";
				goto out;
			}
			if (picked) {
				git_commit_free(cur);
				cur = NULL;
				if (git_commit_lookup(&cur, m->repo, &nid) < 0) {
					rc = git_fail(e, VZ_EIO, "cannot read a rebased commit", NULL);
					goto out;
				}
			}
		}
		git_commit_free(c);
		c = NULL;
	}
	if (g != GIT_ITEROVER) {
		rc = git_fail(e, VZ_EIO, "cannot list the commits of", req->change);
		goto out;
	}
	set_result(out, git_commit_id(cur), git_commit_tree_id(cur));
out:
	git_commit_free(c);
	git_commit_free(cur);
	git_revwalk_free(wk);
	git_oidarray_dispose(&bases);
	return rc;
}

/* ---- files changed ---------------------------------------------------------------------------- */

/* Adds every path that differs between trees a and b (either may be NULL), descending only into
 * subtrees whose ids differ. prefix holds the directory path with a trailing '/'. */
static int diff_paths(vz_merger *m, const git_tree *a, const git_tree *b, vz_buf *prefix, strlist *out, vz_err *e)
{
	const git_tree *tr[2] = { a, b };
	size_t idx[2] = { 0, 0 }, cnt[2];
	int rc = 0;
	if (a && b && git_oid_equal(git_tree_id(a), git_tree_id(b)))
		return 0;
	for (int k = 0; k < 2; k++)
		cnt[k] = tr[k] ? git_tree_entrycount(tr[k]) : 0;
	while (!rc) {
		const git_tree_entry *cur[2], *min = next_aligned(tr, idx, cnt, 2, cur);
		if (!min)
			break;
		if (same(cur[0], cur[1]))
			continue;
		const char *name = git_tree_entry_name(min);
		size_t plen = prefix->len;
		if (is_tree(min)) {
			git_tree *s[2] = { NULL, NULL };
			for (int k = 0; k < 2 && !rc; k++)
				if (cur[k] && git_tree_lookup(&s[k], m->repo, git_tree_entry_id(cur[k])) < 0)
					rc = git_fail(e, VZ_EIO, "cannot read tree", name);
			vz_buf_printf(prefix, "%s/", name);
			if (!rc)
				rc = prefix->failed ? VZ_ENOMEM : diff_paths(m, s[0], s[1], prefix, out, e);
			git_tree_free(s[0]);
			git_tree_free(s[1]);
		} else {
			vz_buf_puts(prefix, name);
			rc = prefix->failed ? VZ_ENOMEM : sl_addn(out, prefix->ptr, prefix->len);
		}
		prefix->len = plen;
		if (prefix->ptr)
			prefix->ptr[plen] = '\0';
	}
	return rc;
}

static int diff_commits(vz_merger *m, const git_commit *a, const git_commit *b, strlist *out, vz_err *e)
{
	git_tree *ta = NULL, *tb = NULL;
	vz_buf prefix = VZ_BUF_INIT(1u << 16);
	int rc = 0;
	if ((a && (rc = commit_tree(m, a, &ta, e))) || (rc = commit_tree(m, b, &tb, e)))
		goto out;
	rc = diff_paths(m, ta, tb, &prefix, out, e);
out:
	git_tree_free(ta);
	git_tree_free(tb);
	vz_buf_free(&prefix);
	return rc;
}

/* Zuul's getFilesChanges: paths touched by the change's own non-merge commits (branch..change)
 * that also differ between branch and change. */
static int files_changed(vz_merger *m, git_commit *branch, git_commit *change, strlist *out, vz_err *e)
{
	strlist span = { 0 };
	git_revwalk *wk = NULL;
	git_commit *c = NULL, *p = NULL;
	git_oid id;
	int rc, g;
	if ((rc = diff_commits(m, branch, change, &span, e)))
		goto out;
	sl_sort_uniq(&span);
	if (git_revwalk_new(&wk, m->repo) < 0 || git_revwalk_push(wk, git_commit_id(change)) < 0 ||
	    git_revwalk_hide(wk, git_commit_id(branch)) < 0) {
		rc = git_fail(e, VZ_EIO, "cannot list the commits of a change", NULL);
		goto out;
	}
	while (!rc && (g = git_revwalk_next(&id, wk)) == 0) {
		strlist one = { 0 };
		if (git_commit_lookup(&c, m->repo, &id) < 0) {
			rc = git_fail(e, VZ_EIO, "cannot read a commit of a change", NULL);
			break;
		}
		unsigned np = git_commit_parentcount(c);
		if (np <= 1) {
			if (np == 1 && git_commit_parent(&p, c, 0) < 0)
				rc = git_fail(e, VZ_EIO, "cannot read a parent commit", NULL);
			if (!rc)
				rc = diff_commits(m, p, c, &one, e);
			for (size_t i = 0; !rc && i < one.n; i++)
				if (sl_has(&span, one.v[i]))
					rc = sl_addn(out, one.v[i], strlen(one.v[i]));
		}
		sl_free(&one);
		git_commit_free(p);
		git_commit_free(c);
		p = c = NULL;
	}
	sl_sort_uniq(out);
out:
	git_revwalk_free(wk);
	sl_free(&span);
	return rc;
}

/* ---- the entry point -------------------------------------------------------------------------- */

int vz_merger_apply(vz_merger *m, const vz_merge_req *req, vz_merge_result *out, vz_err *e)
{
	git_commit *onto = NULL, *change = NULL, *branch = NULL;
	strlist conflicts = { 0 }, files = { 0 };
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = resolve(m, req->onto, &onto, e)) || (rc = resolve(m, req->change, &change, e)) ||
	    (rc = resolve(m, req->branch ? req->branch : req->onto, &branch, e)))
		goto out;
	if (req->want_files && (rc = files_changed(m, branch, change, &files, e)))
		goto out;
	switch (req->mode) {
	case VZ_MERGE_MERGE:
	case VZ_MERGE_RESOLVE:
		rc = do_merge(m, req, onto, change, req->mode == VZ_MERGE_MERGE, 0, out, &conflicts, e);
		break;
	case VZ_MERGE_SQUASH:
		rc = do_merge(m, req, onto, change, 1, 1, out, &conflicts, e);
		break;
	case VZ_MERGE_CHERRY_PICK:
		/* as Zuul: a merge commit cannot be cherry-picked, so it is merged with -s resolve */
		if (git_commit_parentcount(change) > 1)
			rc = do_merge(m, req, onto, change, 0, 0, out, &conflicts, e);
		else
			rc = do_cherry_pick(m, req, onto, change, out, &conflicts, e);
		break;
	case VZ_MERGE_REBASE:
		rc = do_rebase(m, req, onto, change, out, &conflicts, e);
		break;
	default:
		rc = vz_err_set(e, VZ_EINVAL, "unknown merge mode %d", (int)req->mode);
	}
	if (rc)
		vz_err_prefix(e, "%s %s onto %s", vz_merge_mode_name(req->mode), req->change, req->onto);
out:
	if (rc || !out->merged) {
		out->merged = 0;
		out->commit[0] = out->tree[0] = '\0';
	}
	sl_sort_uniq(&conflicts);
	out->conflicts = conflicts.v;
	out->nconflicts = conflicts.n;
	out->files = files.v;
	out->nfiles = files.n;
	git_commit_free(onto);
	git_commit_free(change);
	git_commit_free(branch);
	return rc;
}
