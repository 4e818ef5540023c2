/* vz_pbmod_synchronize: ansible.posix.synchronize (push and pull) without rsync: both sides'
 * trees are compared entry by entry as `rsync -a` would see them (type, permissions, mtime,
 * content, link target), and what differs crosses the node connection as one tar stream (push:
 * into `tar -x` on the node; pull: out of `tar -c`, unpacked here with every write confined).
 * docs/modules.md says where this differs from rsync. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vz_pbmod_util.h"
#include "vz_util.h"

static const char *const opts[] = { "src", "dest", "mode", "delete", "recursive", "archive",
				    "checksum", "compress", "links", "perms", "times", "dirs",
				    "copy_links", "rsync_opts", "dest_port", "use_ssh_args",
				    "private_key", "rsync_path", "rsync_timeout", "set_remote_user",
				    "verify_host", "partial", "owner", "group", "existing_only",
				    "delay_updates", "ssh_connection_multiplexing", NULL };

static int check(const json_t *args, vz_err *e)
{
	return vz_pbmod_args_known(args, "synchronize", opts, e);
}

/* One entry of the other side: "./a/b" names, as find prints them. */
typedef struct rent {
	char *name;
	char type;       /* f d l */
	unsigned mode;
	int64_t mtime;
	uint64_t size;
	char *link;
	char sha1[41];
} rent;

typedef struct rlist {
	rent *v;
	size_t n;
} rlist;

static int rent_cmp(const void *a, const void *b)
{
	return strcmp(((const rent *)a)->name, ((const rent *)b)->name);
}

static rent *rfind(const rlist *l, const char *name)
{
	rent key = { .name = (char *)name };
	return l->n ? bsearch(&key, l->v, l->n, sizeof(rent), rent_cmp) : NULL;
}

static void rlist_free(rlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].link);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Parses "y m t s name\0link\0" records, then "==\n", then sha1sum -z "HASH  name\0" records. */
static int parse_manifest(rlist *l, const char *p, size_t len, vz_err *e)
{
	const char *end = p + len;
	size_t alloc = 0;
	while (p < end && !(end - p >= 3 && !memcmp(p, "==\n", 3))) {
		const char *z1 = memchr(p, '\0', (size_t)(end - p));
		const char *z2 = z1 ? memchr(z1 + 1, '\0', (size_t)(end - z1 - 1)) : NULL;
		if (!z2)
			return vz_err_set(e, VZ_EPROTO, "malformed listing from the node");
		char y;
		unsigned m;
		double t;
		unsigned long long sz;
		int off = 0;
		if (sscanf(p, "%c %o %lf %llu %n", &y, &m, &t, &sz, &off) != 4 || off <= 0)
			return vz_err_set(e, VZ_EPROTO, "malformed listing from the node: %.80s", p);
		if (l->n == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			if (alloc > VZ_PBMOD_MAX_ENTRIES * 2)
				return vz_err_set(e, VZ_ETOOBIG, "too many entries on the node");
			rent *v = realloc(l->v, alloc * sizeof(*v));
			if (!v)
				return vz_err_set(e, VZ_ENOMEM, "out of memory");
			l->v = v;
		}
		rent *x = &l->v[l->n++];
		memset(x, 0, sizeof(*x));
		x->type = y;
		x->mode = m & 07777;
		x->mtime = (int64_t)t;
		x->size = sz;
		x->name = vz_xstrdup(p + off);
		x->link = vz_xstrdup(z1 + 1);
		p = z2 + 1;
	}
	if (l->n)
		qsort(l->v, l->n, sizeof(rent), rent_cmp);
	if (p < end)
		p += 3;
	while (p < end) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		if (!z)
			break;
		if (z - p > 42 && p[40] == ' ') {
			rent *x = rfind(l, p + 42);
			if (x)
				memcpy(x->sha1, p, 40);
		}
		p = z + 1;
	}
	return 0;
}

static const char *manifest_sh =
	"find \"$n\" -printf '%y %m %T@ %s %p\\0%l\\0' && echo == && "
	"find \"$n\" -type f -exec sha1sum -z -- {} +\n";

static int file_sha1(char *out, const char *path, vz_err *e)
{
	vz_buf b = VZ_BUF_INIT(VZ_PBMOD_MAX_FILE);
	int rc = vz_read_file(path, VZ_PBMOD_MAX_FILE, &b, e);
	if (rc == 0)
		vz_pbmod_sha1(out, b.ptr, b.len);
	vz_buf_free(&b);
	return rc;
}

/* ---- push ---- */

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}


static int push(json_t *r, const vz_pbmod_ctx *ctx, const char *src, const char *dest, int del,
		int recursive, int *changed, vz_err *e)
{
	char *local = NULL, *dir = NULL, *name = NULL;
	vz_pbmod_tree t = { 0 };
	rlist rl = { 0 };
	vz_buf s = VZ_BUF_INIT(1 << 20), tar = VZ_BUF_INIT(VZ_PBMOD_MAX_FILE + (64u << 20)),
	       data = VZ_BUF_INIT(VZ_PBMOD_MAX_FILE), rm = VZ_BUF_INIT((size_t)64 << 20);
	vz_pbmod_run run = { 0 };
	vz_pbmod_st dst = { 0 };
	vz_err err = { 0 };
	struct stat sb;
	const char **rels = NULL; /* the source's names, sorted, for delete */
	int rc = 0, sent = 0;

	if ((rc = vz_pbmod_find_src(&local, ctx, src, "files", &err)) != 0)
		goto fail;
	if (stat(local, &sb) != 0) {
		rc = vz_err_set(&err, VZ_ENOTFOUND, "cannot stat %s: %s", local, strerror(errno));
		goto fail;
	}
	int isdir = S_ISDIR(sb.st_mode);
	/* where entries go on the node: dir is cd'ed into, name ("." or a basename) is synced */
	if (isdir && vz_pbmod_ends_slash(src)) {
		dir = vz_xstrdup(dest);
		name = vz_xstrdup(".");
	} else {
		if ((rc = vz_pbmod_node_stat(&dst, ctx, dest, 1, 0, &err)) != 0)
			goto fail;
		if (isdir || vz_pbmod_ends_slash(dest) || (dst.exists && dst.type == 'd')) {
			dir = vz_xstrdup(dest);
			name = vz_xstrdup(vz_pbmod_base_name(local));
		} else {
			char *d = vz_xstrdup(dest), *sl = strrchr(d, '/');
			if (sl) {
				*sl = '\0';
				dir = vz_xstrdup(*d ? d : "/");
				name = vz_xstrdup(sl + 1);
			} else {
				dir = vz_xstrdup(".");
				name = vz_xstrdup(d);
			}
			free(d);
		}
	}
	/* local entries, named as find names them on the node */
	if (isdir) {
		if (recursive && (rc = vz_pbmod_tree_walk(&t, ctx, local, 0, &err)) != 0)
			goto fail;
	}
	vz_buf_puts(&s, "cd -- ");
	vz_node_sh_quote(&s, dir);
	vz_buf_puts(&s, " 2>/dev/null || exit 0\nn=");
	vz_node_sh_quote(&s, name);
	vz_buf_puts(&s, "\n[ -e \"$n\" ] || [ -L \"$n\" ] || exit 0\n");
	vz_buf_puts(&s, manifest_sh);
	if ((rc = vz_pbmod_sh(&run, ctx, vz_buf_cstr(&s), NULL, 0, (size_t)128 << 20, &err)) != 0)
		goto fail;
	if (run.status != 0 || run.overflow) {
		vz_pbmod_failed(r, "listing %s/%s on the node failed: %.300s", dir, name, vz_buf_cstr(&run.err));
		goto out;
	}
	if ((rc = parse_manifest(&rl, run.out.ptr ? run.out.ptr : "", run.out.len, &err)) != 0)
		goto fail;
	/* the root entry, then the tree below it */
	size_t total = t.n + 1;
	for (size_t i = 0; i < total; i++) {
		char nm[PATH_MAX + 8];
		const char *abs;
		char type;
		unsigned mode;
		int64_t mtime;
		const char *link = NULL;
		if (i == 0) {
			snprintf(nm, sizeof(nm), "%s", name);
			abs = local;
			type = isdir ? 'd' : 'f';
			mode = sb.st_mode & 07777;
			mtime = (int64_t)sb.st_mtime;
		} else {
			vz_pbmod_ent *x = &t.v[i - 1];
			if (strchr(x->rel, '\n')) {
				vz_pbmod_failed(r, "%s: file names with a newline are not supported", x->abs);
				goto out;
			}
			snprintf(nm, sizeof(nm), "%s/%s", name, x->rel);
			abs = x->abs;
			type = x->type;
			mode = x->mode;
			mtime = x->mtime;
			link = x->link;
		}
		rent *re = rfind(&rl, nm);
		int differs = !re || re->type != type;
		if (re && re->type != type) {
			vz_buf_puts(&rm, nm);
			vz_buf_putc(&rm, '\n');
		}
		if (type == 'l') {
			differs |= re && re->link && strcmp(re->link, link);
			if (differs && (rc = vz_pbmod_tar_add(&tar, nm, 'l', 0777, mtime, NULL, 0, link, &err)))
				goto fail;
		} else if (type == 'd') {
			differs |= re && (re->mode != mode || re->mtime != mtime);
			/* every dir goes into the stream so tar restores its time after its contents */
			if ((rc = vz_pbmod_tar_add(&tar, nm, 'd', mode, mtime, NULL, 0, NULL, &err)))
				goto fail;
		} else {
			vz_buf_reset(&data);
			if ((rc = vz_read_file(abs, VZ_PBMOD_MAX_FILE, &data, &err)) != 0)
				goto fail;
			if (!differs) {
				char sha[41];
				vz_pbmod_sha1(sha, data.ptr, data.len);
				differs = re->mode != mode || re->mtime != mtime || strcmp(re->sha1, sha);
			}
			if (differs && (rc = vz_pbmod_tar_add(&tar, nm, 'f', mode, mtime, data.ptr, data.len,
							       NULL, &err)))
				goto fail;
		}
		if (differs)
			sent = 1;
	}
	/* extras on the node */
	if (del && isdir && t.n) {
		rels = malloc(t.n * sizeof(*rels));
		if (!rels) {
			rc = vz_err_set(&err, VZ_ENOMEM, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < t.n; i++)
			rels[i] = t.v[i].rel;
		qsort(rels, t.n, sizeof(*rels), str_cmp);
	}
	if (del && isdir) {
		for (size_t i = 0; i < rl.n; i++) {
			const char *nm = rl.v[i].name;
			size_t nl = strlen(name);
			if (strncmp(nm, name, nl) || nm[nl] != '/')
				continue;
			const char *rel = nm + nl + 1;
			int found = rels && bsearch(&rel, rels, t.n, sizeof(*rels), str_cmp) != NULL;
			if (!found) {
				vz_buf_puts(&rm, nm);
				vz_buf_putc(&rm, '\n');
				sent = 1;
			}
		}
	}
	if (!sent)
		goto out;
	*changed = 1;
	if ((rc = vz_pbmod_tar_end(&tar, &err)) != 0)
		goto fail;
	vz_buf_reset(&s);
	vz_buf_puts(&s, "d=");
	vz_node_sh_quote(&s, dir);
	/* as rsync: the last component is created, missing parents are an error */
	vz_buf_puts(&s, "\n{ [ -d \"$d\" ] || mkdir -- \"$d\"; } && cd -- \"$d\" || exit 1\n");
	if (rm.len) { /* first what must go (extras, and entries whose type changes), list on stdin */
		vz_buf s2 = VZ_BUF_INIT(65536);
		vz_buf_add(&s2, s.ptr, s.len);
		vz_buf_puts(&s2, "while IFS= read -r f; do rm -rf -- \"$f\" || exit 1; done\n");
		vz_pbmod_run_free(&run);
		rc = vz_pbmod_sh(&run, ctx, vz_buf_cstr(&s2), rm.ptr, rm.len, 65536, &err);
		vz_buf_free(&s2);
		if (rc)
			goto fail;
		if (run.status != 0) {
			vz_pbmod_failed(r, "removing entries under %s on the node failed: %.400s", dir,
					vz_buf_cstr(&run.err));
			goto out;
		}
	}
	vz_buf_puts(&s, "tar -x -p --no-same-owner -f - || exit 1\n");
	vz_pbmod_run_free(&run);
	if ((rc = vz_pbmod_sh(&run, ctx, vz_buf_cstr(&s), tar.ptr, tar.len, 65536, &err)) != 0)
		goto fail;
	if (run.status != 0) {
		vz_pbmod_failed(r, "unpacking into %s on the node failed: %.400s", dir, vz_buf_cstr(&run.err));
		goto out;
	}
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	free(rels);
	free(local);
	free(dir);
	free(name);
	vz_pbmod_tree_free(&t);
	rlist_free(&rl);
	vz_pbmod_st_free(&dst);
	vz_pbmod_run_free(&run);
	vz_buf_free(&s);
	vz_buf_free(&tar);
	vz_buf_free(&data);
	vz_buf_free(&rm);
	return rc;
}

/* ---- pull ---- */

typedef struct pull_ctx {
	const vz_pbmod_ctx *ctx;
	char base_real[PATH_MAX];
	const char *base;      /* executor dir entries land in */
	const char *rename_from, *rename_to; /* a single file pulled to another name */
	char **seen;
	size_t nseen, aseen;
	char **dirs;           /* dirs whose times are set at the end */
	unsigned *dmodes;
	int64_t *dtimes;
	size_t ndirs, adirs;
	int changed;
} pull_ctx;

static int set_times(const char *path, int64_t mtime, int nofollow)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { (time_t)mtime, 0 } };
	return utimensat(AT_FDCWD, path, ts, nofollow ? AT_SYMLINK_NOFOLLOW : 0);
}

static int pull_entry(void *arg, const char *name, char type, unsigned mode, int64_t mtime,
		      const char *data, size_t len, const char *link, vz_err *e)
{
	pull_ctx *p = arg;
	char *full = NULL, *parent = NULL, real[PATH_MAX];
	struct stat sb;
	int rc = 0;

	if (p->rename_from && !strcmp(name, p->rename_from))
		full = vz_xstrdup(p->rename_to);
	else
		full = vz_path_join(p->base, name);
	if (p->nseen == p->aseen) {
		p->aseen = p->aseen ? p->aseen * 2 : 64;
		char **v = realloc(p->seen, p->aseen * sizeof(*v));
		if (!v) {
			rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
			goto out;
		}
		p->seen = v;
	}
	p->seen[p->nseen++] = vz_xstrdup(full);
	/* the parent must already be a real directory under the base: no write through a link */
	parent = vz_xstrdup(full);
	char *sl = strrchr(parent, '/');
	if (sl)
		*sl = '\0';
	if (!realpath(parent, real) || (strcmp(real, p->base_real) && (strncmp(real, p->base_real,
	    strlen(p->base_real)) || real[strlen(p->base_real)] != '/'))) {
		if (!p->rename_from) {
			rc = vz_err_set(e, VZ_EINVAL, "%s would be written outside %s (through a symlink?): "
					"refused", full, p->base);
			goto out;
		}
	}
	int exists = lstat(full, &sb) == 0;
	char cur = !exists ? 0 : S_ISDIR(sb.st_mode) ? 'd' : S_ISLNK(sb.st_mode) ? 'l' :
		   S_ISREG(sb.st_mode) ? 'f' : 'o';
	if (exists && cur != type) {
		if ((rc = vz_rm_rf(full, e)) != 0)
			goto out;
		exists = 0;
		p->changed = 1;
	}
	if (type == 'd') {
		if (!exists) {
			if (mkdir(full, 0700) != 0) {
				rc = vz_err_set(e, VZ_EIO, "cannot create %s: %s", full, strerror(errno));
				goto out;
			}
			p->changed = 1;
		} else if ((sb.st_mode & 07777) != mode || (int64_t)sb.st_mtime != mtime) {
			p->changed = 1;
		}
		if (p->ndirs == p->adirs) {
			p->adirs = p->adirs ? p->adirs * 2 : 32;
			char **d = realloc(p->dirs, p->adirs * sizeof(*d));
			unsigned *m = realloc(p->dmodes, p->adirs * sizeof(*m));
			int64_t *t = realloc(p->dtimes, p->adirs * sizeof(*t));
			if (d)
				p->dirs = d;
			if (m)
				p->dmodes = m;
			if (t)
				p->dtimes = t;
			if (!d || !m || !t) {
				rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
				goto out;
			}
		}
		p->dirs[p->ndirs] = vz_xstrdup(full);
		p->dmodes[p->ndirs] = mode;
		p->dtimes[p->ndirs++] = mtime;
	} else if (type == 'l') {
		char cur_t[PATH_MAX];
		ssize_t k = exists ? readlink(full, cur_t, sizeof(cur_t) - 1) : -1;
		if (k >= 0)
			cur_t[k] = '\0';
		if (k < 0 || strcmp(cur_t, link)) {
			if (exists)
				unlink(full);
			if (symlink(link, full) != 0) {
				rc = vz_err_set(e, VZ_EIO, "cannot create link %s: %s", full, strerror(errno));
				goto out;
			}
			p->changed = 1;
			set_times(full, mtime, 1);
		}
	} else {
		int same = 0;
		if (exists && (sb.st_mode & 07777) == mode && (int64_t)sb.st_mtime == mtime &&
		    (size_t)sb.st_size == len) {
			char a[41], b[41];
			vz_pbmod_sha1(b, data, len);
			same = file_sha1(a, full, NULL) == 0 && !strcmp(a, b);
		}
		if (!same) {
			if ((rc = vz_write_file_atomic(full, data, len, mode, e)) != 0)
				goto out;
			chmod(full, mode);
			set_times(full, mtime, 0);
			p->changed = 1;
		}
	}
out:
	free(full);
	free(parent);
	return rc;
}


static int pull(json_t *r, const vz_pbmod_ctx *ctx, const char *src, const char *dest, int del,
		int *changed, vz_err *e)
{
	vz_buf s = VZ_BUF_INIT(65536);
	vz_pbmod_run run = { 0 };
	vz_pbmod_st st = { 0 };
	vz_pbmod_tree t = { 0 };
	vz_err err = { 0 };
	pull_ctx pc = { 0 };
	char *base = NULL, *rto = NULL;
	int rc = 0;

	if ((rc = vz_pbmod_node_stat(&st, ctx, src, 1, 0, &err)) != 0)
		goto fail;
	if (!st.exists) {
		vz_pbmod_failed(r, "rsync: link_stat \"%s\" failed: No such file or directory (on the node)", src);
		goto out;
	}
	int isdir = st.type == 'd';
	char *srcdir = vz_xstrdup(src), *sl;
	const char *nm;
	size_t n = strlen(srcdir);
	while (n > 1 && srcdir[n - 1] == '/')
		srcdir[--n] = '\0';
	if (isdir && vz_pbmod_ends_slash(src)) {
		nm = ".";
	} else {
		sl = strrchr(srcdir, '/');
		nm = sl ? sl + 1 : srcdir;
	}
	vz_buf_puts(&s, "cd -- ");
	if (isdir && vz_pbmod_ends_slash(src)) {
		vz_node_sh_quote(&s, srcdir);
	} else {
		char *d = vz_xstrdup(srcdir), *k = strrchr(d, '/');
		if (k)
			*k = '\0';
		vz_node_sh_quote(&s, k ? (*d ? d : "/") : ".");
		free(d);
	}
	vz_buf_puts(&s, " || exit 2\nexec tar -c -f - -- ");
	vz_node_sh_quote(&s, nm);
	if ((rc = vz_pbmod_sh(&run, ctx, vz_buf_cstr(&s), NULL, 0, VZ_PBMOD_MAX_FILE + (64u << 20), &err))) {
		free(srcdir);
		goto fail;
	}
	if (run.overflow || run.status != 0) {
		vz_pbmod_failed(r, run.overflow ? "%s on the node is over the %zu MiB a task may pull" :
				"reading %s on the node failed", src, VZ_PBMOD_MAX_FILE >> 20);
		if (!run.overflow)
			json_object_set_new(r, "stderr", json_string(vz_buf_cstr(&run.err)));
		free(srcdir);
		goto out;
	}
	/* executor side: base dir, or a file name for a single file */
	struct stat lsb;
	if ((rc = vz_pbmod_local_dest(&base, ctx, dest, 0, &err)) != 0) {
		free(srcdir);
		goto fail;
	}
	if (!isdir && !vz_pbmod_ends_slash(dest) && !(stat(base, &lsb) == 0 && S_ISDIR(lsb.st_mode))) {
		rto = base;
		base = vz_xstrdup(base);
		sl = strrchr(base, '/');
		if (sl == base)
			sl[1] = '\0'; /* a file right under / */
		else if (sl)
			*sl = '\0';
		pc.rename_from = nm;
		pc.rename_to = rto;
	} else if (mkdir(base, 0755) != 0 && errno != EEXIST) {
		/* as rsync: the last component is created, missing parents are an error */
		vz_pbmod_failed(r, "rsync: [Receiver] mkdir \"%s\" failed: %s", base, strerror(errno));
		free(srcdir);
		goto out;
	}
	free(srcdir);
	if (!realpath(base, pc.base_real)) {
		rc = vz_err_set(&err, VZ_EINVAL, "cannot resolve %s: %s", base, strerror(errno));
		goto fail;
	}
	pc.ctx = ctx;
	pc.base = base;
	if ((rc = vz_pbmod_tar_each(run.out.ptr ? run.out.ptr : "", run.out.len, pull_entry, &pc, &err)))
		goto fail;
	for (size_t i = pc.ndirs; i-- > 0;) { /* deepest last-listed first: parents after children */
		struct stat db;
		if (stat(pc.dirs[i], &db) == 0 && (db.st_mode & 07777) != pc.dmodes[i])
			chmod(pc.dirs[i], pc.dmodes[i]);
		set_times(pc.dirs[i], pc.dtimes[i], 0);
	}
	if (del && isdir) {
		char *root = vz_pbmod_ends_slash(src) ? vz_xstrdup(base) : vz_path_join(base, nm);
		if (pc.nseen)
			qsort(pc.seen, pc.nseen, sizeof(char *), str_cmp);
		if ((rc = vz_pbmod_tree_walk(&t, ctx, root, 0, &err)) != 0) {
			free(root);
			goto fail;
		}
		for (size_t i = 0; i < t.n; i++) {
			const char *a = t.v[i].abs;
			if (!pc.nseen || !bsearch(&a, pc.seen, pc.nseen, sizeof(char *), str_cmp)) {
				vz_rm_rf(a, NULL);
				pc.changed = 1;
			}
		}
		free(root);
	}
	*changed = pc.changed;
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	for (size_t i = 0; i < pc.nseen; i++)
		free(pc.seen[i]);
	free(pc.seen);
	for (size_t i = 0; i < pc.ndirs; i++)
		free(pc.dirs[i]);
	free(pc.dirs);
	free(pc.dmodes);
	free(pc.dtimes);
	free(base);
	free(rto);
	vz_pbmod_tree_free(&t);
	vz_pbmod_st_free(&st);
	vz_pbmod_run_free(&run);
	vz_buf_free(&s);
	return rc;
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	static const char *const src_keys[] = { "src", NULL };
	static const char *const dest_keys[] = { "dest", NULL };
	static const char *const mode_keys[] = { "mode", NULL };
	json_t *r = json_object();
	vz_err err = { 0 };
	const char *src, *dest, *mode;
	char b1[64], b2[64], b3[64];
	int del, recursive, archive, copy_links, changed = 0, rc = 0;
	const json_t *ro = json_object_get(args, "rsync_opts");

	json_object_set_new(r, "changed", json_false());
	if ((rc = check(args, &err)) || (rc = vz_pbmod_arg_str(&src, args, src_keys, b1, sizeof(b1), &err)) ||
	    (rc = vz_pbmod_arg_str(&dest, args, dest_keys, b2, sizeof(b2), &err)) ||
	    (rc = vz_pbmod_arg_str(&mode, args, mode_keys, b3, sizeof(b3), &err)) ||
	    (rc = vz_pbmod_arg_bool(&del, args, "delete", 0, &err)) ||
	    (rc = vz_pbmod_arg_bool(&archive, args, "archive", 1, &err)) ||
	    (rc = vz_pbmod_arg_bool(&recursive, args, "recursive", archive, &err)) ||
	    (rc = vz_pbmod_arg_bool(&copy_links, args, "copy_links", 0, &err)))
		goto fail;
	if (!mode)
		mode = "push";
	if (!src || !dest || !*src || !*dest) {
		vz_pbmod_failed(r, "missing required arguments: %s", !src || !*src ? "src" : "dest");
		goto out;
	}
	if (strcmp(mode, "push") && strcmp(mode, "pull")) {
		vz_pbmod_failed(r, "value of mode must be one of: pull, push, got: %s", mode);
		goto out;
	}
	if ((ro && !(json_is_array(ro) && json_array_size(ro) == 0) && !json_is_null(ro)) || copy_links ||
	    !archive) {
		vz_pbmod_failed(r, "vinz's native synchronize copies like rsync -a (optionally --delete, "
				"--no-recursive); rsync_opts, copy_links and archive=no are not supported");
		goto out;
	}
	if (!recursive && !strcmp(mode, "pull")) {
		vz_pbmod_failed(r, "recursive=no is only supported for push");
		goto out;
	}
	if (!strcmp(mode, "push"))
		rc = push(r, ctx, src, dest, del, recursive, &changed, e);
	else
		rc = pull(r, ctx, src, dest, del, &changed, e);
	if (rc || json_is_true(json_object_get(r, "failed")))
		goto out;
	json_object_set_new(r, "changed", json_boolean(changed));
	json_object_set_new(r, "rc", json_integer(0));
	json_object_set_new(r, "cmd", json_sprintf("vinz native synchronize (%s) %s%s -> %s%s", mode,
			    strcmp(mode, "pull") ? "" : "node:", src, strcmp(mode, "push") ? "" : "node:", dest));
	json_object_set_new(r, "msg", json_string(""));
	json_object_set_new(r, "stdout_lines", json_array());
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	return vz_pbmod_done(result, ctx, r, rc);
}

const vz_pbmod vz_pbmod_synchronize = { "synchronize", run, check, 0, 0 };
