/* vz_deliver: a build's git workspace onto a node, sending only what the node lacks; see
 * vz_deliver.h and docs/workspace.md. The executor side is libgit2 (refs, revwalk, packbuilder);
 * the node side is two sh command lines run over the build's SSH session. */
#include "vz_deliver.h"

#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_buf.h"
#include "vz_tar.h"
#include "vz_util.h"

#define STORE_ROOT_DEFAULT ".cache/vinz/git"
#define PACK_MAX_DEFAULT (256u * 1024 * 1024)
#define KEEP_MAX_DEFAULT 256u
#define TIMEOUT_DEFAULT_MS 600000
#define SCRIPT_MAX (200 * 1024)      /* below the 256 KiB OpenSSH puts on one exec request */
#define PROBE_OUT_MAX (8u * 1024 * 1024)
#define ERR_OUT_MAX 4096             /* node stderr kept for messages */
#define KEEP_PARSE_MAX 100000        /* keep-refs read from a node store; more are ignored */
#define UNPACK_LIMIT 100             /* fewer objects: loose (as git's transfer.unpackLimit) */
#define PATH_MAX_LEN 1024

/* exit codes of the delivery script (anything else: an unexpected failure) */
enum { X_PACK = 20, X_WORKSPACE = 22, X_CHECKOUT = 23, X_STORE = 24 };

const char *vz_deliver_method_name(vz_deliver_method m)
{
	return m == VZ_DELIVER_GIT ? "git" : m == VZ_DELIVER_TAR ? "tar" : "none";
}

/* The one place libgit2 errors become vz errors in this module. */
static int git_fail(vz_err *e, const char *what, const char *where)
{
	const git_error *ge = git_error_last();
	return vz_err_set(e, VZ_EIO, "git: %s %s: %s", what, where, ge && ge->message ? ge->message : "unknown error");
}

/* A path on the node: relative to the login directory, no "..", "." or empty components, no
 * component starting with '-', no control characters (the alternates file is line-based). */
static int check_rel(const char *what, const char *p, vz_err *e)
{
	size_t n = p ? strlen(p) : 0;
	if (n == 0 || n > PATH_MAX_LEN || p[0] == '/')
		return vz_err_set(e, VZ_EINVAL, "deliver: %s \"%.200s\" must be a non-empty path relative to the node "
				  "user's home, at most %d bytes", what, p ? p : "", PATH_MAX_LEN);
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return vz_err_set(e, VZ_EINVAL, "deliver: %s \"%.200s\" has a control character", what, p);
	for (const char *s = p; *s;) {
		const char *end = strchr(s, '/');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.') || s[0] == '-')
			return vz_err_set(e, VZ_EINVAL, "deliver: %s \"%.200s\": empty, \".\", \"..\" or '-'-leading "
					  "components are not allowed", what, p);
		s += len + (end ? 1 : 0);
	}
	return 0;
}

/* ---------- node commands ---------- */

typedef struct capture {
	vz_buf out, err;
	const vz_deliver_opts *o;
} capture;

static int on_node_output(void *ctx, int stream, const char *data, size_t len)
{
	capture *c = ctx;
	if (stream == VZ_NODE_STDOUT) {
		vz_buf_add_capped(&c->out, data, len);
	} else {
		vz_buf_add_capped(&c->err, data, len);
		if (c->o->on_output && c->o->on_output(c->o->ctx, stream, data, len))
			return 1;
	}
	return c->o->cancel && *c->o->cancel;
}

static void capture_init(capture *c, const vz_deliver_opts *o, size_t out_max)
{
	vz_buf_init(&c->out, out_max);
	vz_buf_init(&c->err, ERR_OUT_MAX);
	c->o = o;
}

static void capture_reset(capture *c)
{
	vz_buf_reset(&c->out);
	vz_buf_reset(&c->err);
}

static void capture_free(capture *c)
{
	vz_buf_free(&c->out);
	vz_buf_free(&c->err);
}

/* Runs script on the node with stdin; *status gets its exit status. */
static int run(vz_node *node, const vz_deliver_opts *o, uint64_t deadline, const vz_buf *script, const void *in,
	       size_t inlen, capture *c, int *status, vz_deliver_stats *st, vz_err *e)
{
	uint64_t now = vz_mono_ms();
	vz_node_result r = { 0 };
	int rc;

	*status = -1;
	if (o->cancel && *o->cancel)
		return vz_err_set(e, VZ_ECANCELED, "deliver: canceled");
	if (now >= deadline)
		return vz_err_set(e, VZ_ETIMEOUT, "deliver: timed out after %d ms", o->timeout_ms);
	if (script->failed)
		return vz_err_set(e, VZ_ETOOBIG, "deliver: the node script is longer than %d bytes (too many "
				  "branches for one command line?)", SCRIPT_MAX);
	capture_reset(c);
	vz_node_cmd cmd = { .command = vz_buf_cstr(script), .env = o->env, .stdin_data = in, .stdin_len = inlen,
			    .timeout_ms = (int)(deadline - now), .on_output = on_node_output, .ctx = c, .cancel = o->cancel };
	st->round_trips++;
	rc = vz_node_exec(node, &cmd, &r, e);
	*status = r.exit_status;
	return rc;
}

/* ---------- what the node has ---------- */

typedef enum { STORE_NONE, STORE_OK, STORE_DAMAGED } store_state;

typedef struct keep {
	git_oid oid;
	int64_t stamp;
	char ref[96]; /* refs/vinz/<stamp>/<40 hex> */
} keep;

typedef struct probe {
	int has_git, git_major;
	char git_version[64];
	store_state store;
	keep *keeps;
	size_t nkeeps, akeeps;
	vz_buf detail;
} probe;

static int is_hex40(const char *s, size_t n)
{
	if (n != 40)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* "<hex> commit refs/vinz/<stamp>/<hex>" with both hex equal. */
static int parse_keep(const char *line, size_t len, keep *k)
{
	static const char pfx[] = "refs/vinz/";
	char stamp[24];
	if (len < 41 + 7 + sizeof(pfx) - 1 + 2 + 40 || !is_hex40(line, 40) || memcmp(line + 40, " commit ", 8) != 0)
		return 0;
	const char *ref = line + 48;
	size_t rlen = len - 48;
	if (rlen >= sizeof(k->ref) || memcmp(ref, pfx, sizeof(pfx) - 1) != 0)
		return 0;
	const char *s = ref + sizeof(pfx) - 1, *slash = memchr(s, '/', rlen - (sizeof(pfx) - 1));
	if (!slash || slash == s || (size_t)(slash - s) >= sizeof(stamp))
		return 0;
	memcpy(stamp, s, (size_t)(slash - s));
	stamp[slash - s] = '\0';
	if (vz_parse_i64(stamp, 0, INT64_MAX, &k->stamp) != 0)
		return 0;
	if ((size_t)(ref + rlen - (slash + 1)) != 40 || memcmp(slash + 1, line, 40) != 0)
		return 0;
	char hex[41];
	memcpy(hex, line, 40);
	hex[40] = '\0';
	if (git_oid_fromstr(&k->oid, hex) < 0)
		return 0;
	memcpy(k->ref, ref, rlen);
	k->ref[rlen] = '\0';
	return 1;
}

static int parse_probe(const vz_buf *out, probe *p, vz_err *e)
{
	const char *s = vz_buf_cstr(out);
	int seen_git = 0;
	keep k;
	memset(p->git_version, 0, sizeof(p->git_version));
	p->store = STORE_NONE;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		if (len == 10 && memcmp(s, "vinz-nogit", 10) == 0) {
			seen_git = 1;
			p->has_git = 0;
		} else if (len > 9 && memcmp(s, "vinz-git ", 9) == 0) {
			/* "vinz-git git version 2.39.5" */
			seen_git = 1;
			p->has_git = 1;
			size_t vl = len - 9 < sizeof(p->git_version) - 1 ? len - 9 : sizeof(p->git_version) - 1;
			memcpy(p->git_version, s + 9, vl);
			const char *v = strstr(p->git_version, "version ");
			p->git_major = 0;
			for (v = v ? v + 8 : ""; *v >= '0' && *v <= '9' && p->git_major < 1000; v++)
				p->git_major = p->git_major * 10 + (*v - '0');
		} else if (len >= 11 && memcmp(s, "vinz-store ", 11) == 0) {
			p->store = len == 13 && memcmp(s + 11, "ok", 2) == 0 ? STORE_OK
				   : len == 15 && memcmp(s + 11, "none", 4) == 0 ? STORE_NONE : STORE_DAMAGED;
		} else if (len > 12 && memcmp(s, "vinz-detail ", 12) == 0) {
			if (p->detail.len)
				vz_buf_puts(&p->detail, "; ");
			vz_buf_add_capped(&p->detail, s + 12, len - 12);
		} else if (p->nkeeps < KEEP_PARSE_MAX && parse_keep(s, len, &k)) {
			if (p->nkeeps == p->akeeps) {
				p->akeeps = p->akeeps ? p->akeeps * 2 : 64;
				p->keeps = realloc(p->keeps, p->akeeps * sizeof(*p->keeps));
				if (!p->keeps)
					abort();
			}
			p->keeps[p->nkeeps++] = k;
		}
		s += len + (nl ? 1 : 0);
	}
	if (!seen_git)
		return vz_err_set(e, VZ_EPROTO, "deliver: the node's answer to the probe is not understood "
				  "(is the login shell a POSIX sh?): %.200s", vz_buf_cstr(out));
	return 0;
}

/* ---------- the local repository ---------- */

typedef struct branch {
	char *ref;   /* refs/heads/... */
	git_oid oid; /* the commit */
} branch;

typedef struct local {
	git_repository *repo;
	branch *br;
	size_t nbr, abr;
	char *head_ref; /* attached HEAD: its branch; NULL: detached at head_oid */
	git_oid head_oid;
	git_oid *want;  /* distinct commits: branch tips and HEAD */
	size_t nwant;
} local;

static int oid_cmp(const void *a, const void *b)
{
	return git_oid_cmp(a, b);
}

static int read_local(local *l, const char *path, vz_err *e)
{
	git_branch_iterator *it = NULL;
	git_reference *ref = NULL, *head = NULL;
	git_object *obj = NULL;
	git_branch_t bt;
	int rc = 0, r;

	if (git_repository_open(&l->repo, path) < 0 || git_repository_is_bare(l->repo)) {
		rc = l->repo ? vz_err_set(e, VZ_EINVAL, "deliver: %s is a bare repository; a work tree is needed", path)
			     : git_fail(e, "cannot open repository", path);
		goto out;
	}
	if (git_branch_iterator_new(&it, l->repo, GIT_BRANCH_LOCAL) < 0) {
		rc = git_fail(e, "cannot list the branches of", path);
		goto out;
	}
	while ((r = git_branch_next(&ref, &bt, it)) == 0) {
		if (git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) < 0) {
			rc = git_fail(e, "cannot resolve branch", git_reference_name(ref));
			goto out;
		}
		if (l->nbr == l->abr) {
			l->abr = l->abr ? l->abr * 2 : 16;
			l->br = realloc(l->br, l->abr * sizeof(*l->br));
			if (!l->br)
				abort();
		}
		l->br[l->nbr].ref = vz_xstrdup(git_reference_name(ref));
		git_oid_cpy(&l->br[l->nbr].oid, git_object_id(obj));
		l->nbr++;
		git_object_free(obj);
		obj = NULL;
		git_reference_free(ref);
		ref = NULL;
	}
	if (r != GIT_ITEROVER) {
		rc = git_fail(e, "cannot list the branches of", path);
		goto out;
	}
	if (git_reference_lookup(&head, l->repo, "HEAD") < 0) {
		rc = git_fail(e, "cannot read HEAD of", path);
		goto out;
	}
	if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
		const char *t = git_reference_symbolic_target(head);
		for (size_t i = 0; i < l->nbr && !l->head_ref; i++) {
			if (strcmp(l->br[i].ref, t) == 0) {
				l->head_ref = vz_xstrdup(t);
				git_oid_cpy(&l->head_oid, &l->br[i].oid);
			}
		}
		if (!l->head_ref) {
			rc = vz_err_set(e, VZ_EINVAL, "deliver: HEAD of %s points at %s, which has no commit: nothing to "
					"check out", path, t);
			goto out;
		}
	} else if (git_reference_peel(&obj, head, GIT_OBJECT_COMMIT) < 0) {
		rc = git_fail(e, "cannot resolve the detached HEAD of", path);
		goto out;
	} else {
		git_oid_cpy(&l->head_oid, git_object_id(obj));
	}
	l->want = vz_xcalloc(l->nbr + 1, sizeof(git_oid));
	for (size_t i = 0; i < l->nbr; i++)
		git_oid_cpy(&l->want[i], &l->br[i].oid);
	git_oid_cpy(&l->want[l->nbr], &l->head_oid);
	qsort(l->want, l->nbr + 1, sizeof(git_oid), oid_cmp);
	for (size_t i = 0; i < l->nbr + 1; i++)
		if (l->nwant == 0 || git_oid_cmp(&l->want[l->nwant - 1], &l->want[i]) != 0)
			git_oid_cpy(&l->want[l->nwant++], &l->want[i]);
out:
	git_object_free(obj);
	git_reference_free(ref);
	git_reference_free(head);
	git_branch_iterator_free(it);
	return rc;
}

static void local_free(local *l)
{
	for (size_t i = 0; i < l->nbr; i++)
		free(l->br[i].ref);
	free(l->br);
	free(l->head_ref);
	free(l->want);
	git_repository_free(l->repo);
}

static int wanted(const local *l, const git_oid *oid)
{
	return bsearch(oid, l->want, l->nwant, sizeof(git_oid), oid_cmp) != NULL;
}

static int pack_chunk(void *buf, size_t size, void *payload)
{
	return vz_buf_add(payload, buf, size) ? -1 : 0;
}

/* A pack of the objects reachable from the wanted commits and not from the node's keep-refs
 * (those we have here too: a commit only the node has cannot be hidden). */
static int build_pack(const local *l, const probe *p, vz_buf *pack, size_t *objects, vz_err *e)
{
	git_packbuilder *pb = NULL;
	git_revwalk *walk = NULL;
	git_odb *odb = NULL;
	int rc = 0;

	*objects = 0;
	if (git_repository_odb(&odb, l->repo) < 0 || git_packbuilder_new(&pb, l->repo) < 0 ||
	    git_revwalk_new(&walk, l->repo) < 0) {
		rc = git_fail(e, "cannot start a pack in", git_repository_path(l->repo));
		goto out;
	}
	git_packbuilder_set_threads(pb, 1);
	for (size_t i = 0; i < l->nwant; i++) {
		if (git_revwalk_push(walk, &l->want[i]) < 0) {
			rc = git_fail(e, "cannot walk from a branch in", git_repository_path(l->repo));
			goto out;
		}
	}
	for (size_t i = 0; i < p->nkeeps; i++) {
		git_commit *c = NULL;
		if (!git_odb_exists(odb, &p->keeps[i].oid) || git_commit_lookup(&c, l->repo, &p->keeps[i].oid) < 0)
			continue;
		git_commit_free(c);
		if (git_revwalk_hide(walk, &p->keeps[i].oid) < 0) {
			rc = git_fail(e, "cannot hide what the node has in", git_repository_path(l->repo));
			goto out;
		}
	}
	if (git_packbuilder_insert_walk(pb, walk) < 0) {
		rc = git_fail(e, "cannot collect the objects to send from", git_repository_path(l->repo));
		goto out;
	}
	*objects = git_packbuilder_object_count(pb);
	if (*objects == 0)
		goto out;
	if (git_packbuilder_foreach(pb, pack_chunk, pack) < 0) {
		if (pack->failed == VZ_ETOOBIG)
			rc = vz_err_set(e, VZ_ETOOBIG, "deliver: the pack of %zu objects for the node is larger than %zu "
					"bytes (pack_max): the repository is too big to deliver with this cap", *objects, pack->max);
		else
			rc = git_fail(e, "cannot write the pack from", git_repository_path(l->repo));
	}
out:
	git_revwalk_free(walk);
	git_packbuilder_free(pb);
	git_odb_free(odb);
	return rc;
}

/* ---------- the node scripts ---------- */

static void probe_script(vz_buf *b, const char *store)
{
	vz_buf_puts(b, "S=");
	vz_node_sh_quote(b, store);
	vz_buf_puts(b,
		    "\ncommand -v git >/dev/null 2>&1 || { echo vinz-nogit; exit 0; }\n"
		    "printf 'vinz-git '; git --version\n"
		    /* no marker: not made yet, or being made by another build right now */
		    "if [ ! -f \"$S/vinz-store\" ]; then echo vinz-store none; exit 0; fi\n"
		    /* fails on what is not a repository; and %(objecttype) reads each tip, which opens
		     * (and checks against its index) every pack holding one: a truncated pack fails */
		    "if r=$(git --git-dir=\"$S\" for-each-ref --format='%(objectname) %(objecttype) %(refname)' "
		    "refs/vinz/ 2>&1); then\n"
		    "  echo vinz-store ok; [ -z \"$r\" ] || printf '%s\\n' \"$r\"\n"
		    "else\n"
		    "  echo vinz-store damaged; printf '%s\\n' \"$r\" | sed -n '1,3s/^/vinz-detail /p'\n"
		    "fi\n");
}

/* One quoted printf argument per line, piped into a command. */
static void lines_into(vz_buf *b, const vz_buf *lines)
{
	const char *s = vz_buf_cstr(lines);
	vz_buf_puts(b, "printf '%s\\n'");
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		char *one = malloc(len + 1);
		if (!one)
			abort();
		memcpy(one, s, len);
		one[len] = '\0';
		vz_buf_putc(b, ' ');
		vz_node_sh_quote(b, one);
		free(one);
		s += len + (nl ? 1 : 0);
	}
	vz_buf_puts(b, " | ");
}

typedef struct plan {
	int rebuild;       /* remove the store first */
	size_t objects;    /* in the pack on stdin (0: no pack) */
	vz_buf keep_lines; /* update-ref --stdin lines for the node store */
	vz_buf ref_lines;  /* update-ref --stdin lines for the workspace */
} plan;

static void deliver_script(vz_buf *b, const char *store, const char *dir, const local *l, const plan *pl)
{
	char hex[GIT_OID_HEXSZ + 1];
	vz_buf_puts(b, "set -e\nS=");
	vz_node_sh_quote(b, store);
	vz_buf_puts(b, "\nD=");
	vz_node_sh_quote(b, dir);
	vz_buf_puts(b, "\nfail() { echo \"vinz-deliver: $2\" >&2; exit \"$1\"; }\n");
	/* a damaged store is moved aside in one step, then removed (a build still writing into it
	 * cannot make that fail) */
	if (pl->rebuild)
		vz_buf_puts(b, "{ mv \"$S\" \"$S.vinz-damaged.$$\" && rm -rf \"$S.vinz-damaged.$$\"; } 2>/dev/null || true\n");
	/* the store: made on first use by the one build whose mkdir succeeds; the marker file comes
	 * last, and the others wait for it (bounded). Never removed here: a store without the marker
	 * may be in the making. One nobody completes (its maker was killed) fails with 24, and the
	 * retry from scratch moves it aside. */
	char *parent = vz_xstrdup(store), *slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	vz_buf_puts(b, "P=");
	vz_node_sh_quote(b, slash ? parent : ".");
	free(parent);
	vz_buf_puts(b, "\nif [ ! -f \"$S/vinz-store\" ]; then\n"
		       "  mkdir -p \"$P\" || fail 24 \"cannot create $P\"\n"
		       "  if mkdir \"$S\" 2>/dev/null; then\n"
		       "    git -c init.defaultBranch=vinz init -q --bare --template= \"$S\" >/dev/null || "
		       "fail 24 \"git init --bare $S failed\"\n"
		       "    echo 'vinz node store: docs/workspace.md' > \"$S/vinz-store\" || fail 24 \"cannot write $S/vinz-store\"\n"
		       "  else\n"
		       "    i=0; while [ ! -f \"$S/vinz-store\" ]; do i=$((i+1)); [ $i -le 10 ] || "
		       "fail 24 \"the node store $S is half-made and nobody completes it\"; sleep 1; done\n"
		       "  fi\n"
		       "fi\n"
		       "S=\"$PWD/$S\"\n");
	if (pl->objects >= UNPACK_LIMIT)
		vz_buf_puts(b, "git --git-dir=\"$S\" index-pack --stdin >/dev/null || fail 20 \"cannot store the pack in $S\"\n");
	else if (pl->objects > 0)
		vz_buf_puts(b, "git --git-dir=\"$S\" unpack-objects -q || fail 20 \"cannot store the objects in $S\"\n");
	if (pl->keep_lines.len) {
		/* not fatal: without its keep-ref the objects are still there, the next build resends */
		lines_into(b, &pl->keep_lines);
		vz_buf_puts(b, "git --git-dir=\"$S\" update-ref --stdin || echo \"vinz-deliver: warning: cannot update "
			       "the keep-refs of $S\" >&2\n");
	}
	/* gc --auto returns at once unless there is work, which it then does detached */
	vz_buf_puts(b, "git --git-dir=\"$S\" gc --auto --quiet >/dev/null 2>&1 || true\n");
	/* the workspace: an earlier one of this store keeps its work tree and index (so only changed
	 * files are written); everything else in .git is made anew */
	vz_buf_puts(b, "reuse=\n");
	/* a retry from scratch does not trust the old workspace either (its index may be what failed) */
	if (!pl->rebuild)
		vz_buf_puts(b, "if [ -f \"$D/.git/index\" ] && [ -f \"$D/.git/objects/info/alternates\" ] && "
			       "IFS= read -r alt < \"$D/.git/objects/info/alternates\" && [ \"$alt\" = \"$S/objects\" ]; "
			       "then reuse=1; fi\n");
	/* reuse: everything in .git but the objects and the index goes (config, hooks, refs, remotes,
	 * info, a shallow file, grafts...), in one rm; git init makes the rest again */
	vz_buf_puts(b, "if [ -z \"$reuse\" ]; then rm -rf \"$D\" || fail 22 \"cannot remove $D\"; fi\n"
		       "mkdir -p \"$D\" || fail 22 \"cannot create $D\"\n"
		       "cd \"$D\"\n"
		       "if [ -n \"$reuse\" ]; then\n"
		       "  set --\n"
		       "  for f in .git/* .git/.[!.]* .git/objects/info/grafts; do\n"
		       "    case $f in .git/objects|.git/index|'.git/*'|'.git/.[!.]*') ;; *) [ ! -e \"$f\" ] || set -- \"$@\" \"$f\" ;; esac\n"
		       "  done\n"
		       "  [ $# -eq 0 ] || rm -rf \"$@\" || fail 22 \"cannot reset the repository in $D\"\n"
		       "fi\n"
		       "git -c init.defaultBranch=vinz init -q --template= . >/dev/null || fail 22 \"git init $D failed\"\n"
		       "printf '%s\\n' \"$S/objects\" > .git/objects/info/alternates\n");
	lines_into(b, &pl->ref_lines);
	vz_buf_puts(b, "git update-ref --stdin || fail 23 \"cannot set the branches in $D\"\n");
	/* HEAD written as git writes it: no process for it */
	if (l->head_ref) {
		vz_buf_puts(b, "printf 'ref: %s\\n' ");
		vz_node_sh_quote(b, l->head_ref);
	} else {
		git_oid_tostr(hex, sizeof(hex), &l->head_oid);
		vz_buf_printf(b, "printf '%%s\\n' %s", hex);
	}
	vz_buf_puts(b, " > .git/HEAD || fail 22 \"cannot set HEAD in $D\"\n"
		       "git reset -q --hard || fail 23 \"cannot check out in $D\"\n"
		       "if [ -n \"$reuse\" ]; then git clean -ffdxq || fail 22 \"cannot clean $D\"; echo vinz-reused; fi\n"
		       "echo vinz-delivered\n");
}

/* The keep-refs: one per wanted commit the node has no keep-ref for; the oldest others go when
 * there are more than keep_max. */
static void plan_keeps(plan *pl, const local *l, probe *p, unsigned keep_max)
{
	char hex[GIT_OID_HEXSZ + 1];
	int64_t stamp = vz_wall_ms();
	size_t total = p->nkeeps, nnew = 0;
	for (size_t i = 0; i < l->nwant; i++) {
		int have = 0;
		for (size_t k = 0; k < p->nkeeps && !have; k++)
			have = git_oid_equal(&p->keeps[k].oid, &l->want[i]);
		if (have)
			continue;
		git_oid_tostr(hex, sizeof(hex), &l->want[i]);
		vz_buf_printf(&pl->keep_lines, "update refs/vinz/%lld/%s %s\n", (long long)stamp, hex, hex);
		nnew++;
	}
	total += nnew;
	/* oldest first among those this delivery does not want */
	while (total > keep_max) {
		keep *oldest = NULL;
		for (size_t k = 0; k < p->nkeeps; k++) {
			keep *c = &p->keeps[k];
			if (c->stamp < 0 || wanted(l, &c->oid))
				continue;
			if (!oldest || c->stamp < oldest->stamp)
				oldest = c;
		}
		if (!oldest)
			break;
		vz_buf_printf(&pl->keep_lines, "delete %s\n", oldest->ref);
		oldest->stamp = -1; /* taken */
		total--;
	}
}

static void plan_refs(plan *pl, const local *l)
{
	char hex[GIT_OID_HEXSZ + 1];
	for (size_t i = 0; i < l->nbr; i++) {
		git_oid_tostr(hex, sizeof(hex), &l->br[i].oid);
		vz_buf_printf(&pl->ref_lines, "update %s %s\n", l->br[i].ref, hex);
	}
}

/* ---------- tar, for nodes without git ---------- */

static int deliver_tar(vz_node *node, const char *local_repo, const char *dir, const vz_deliver_opts *o,
		       uint64_t deadline, size_t cap, capture *c, vz_deliver_stats *st, vz_err *e)
{
	static const char *const skip[] = { ".git", NULL };
	vz_buf tar = VZ_BUF_INIT(cap), script = VZ_BUF_INIT(SCRIPT_MAX);
	uint64_t t0 = vz_mono_ms();
	int rc, status;

	if ((rc = vz_tar_dir(&tar, local_repo, skip, e)) != 0) {
		vz_err_prefix(e, "deliver: cannot pack the work tree %s", local_repo);
		goto out;
	}
	st->pack_ms = vz_mono_ms() - t0;
	vz_buf_puts(&script, "set -e\nD=");
	vz_node_sh_quote(&script, dir);
	vz_buf_puts(&script, "\nrm -rf \"$D\"\nmkdir -p \"$D\"\ntar -xf - -C \"$D\"\n");
	st->method = VZ_DELIVER_TAR;
	st->bytes = tar.len;
	if ((rc = run(node, o, deadline, &script, tar.ptr, tar.len, c, &status, st, e)) != 0)
		goto out;
	if (status != 0)
		rc = vz_err_set(e, VZ_EIO, "deliver: unpacking the work tree into %s failed (exit %d; is tar "
				"installed on the node?): %.400s", dir, status, vz_buf_cstr(&c->err));
out:
	vz_buf_free(&tar);
	vz_buf_free(&script);
	return rc;
}

/* ---------- the whole delivery ---------- */

int vz_deliver_repo(vz_node *node, const char *local_repo, const char *remote_dir, const vz_deliver_opts *opts,
		    vz_deliver_stats *out_stats, vz_err *e)
{
	vz_deliver_opts o = { 0 };
	vz_deliver_stats st;
	uint64_t t0 = vz_mono_ms(), deadline;
	local l;
	probe p;
	plan pl;
	capture c;
	vz_buf store = VZ_BUF_INIT(2 * PATH_MAX_LEN + 16), script = VZ_BUF_INIT(SCRIPT_MAX), pack;
	int rc = 0, status, inited = 0;

	if (opts)
		o = *opts;
	memset(&st, 0, sizeof(st));
	memset(&l, 0, sizeof(l));
	memset(&p, 0, sizeof(p));
	memset(&pl, 0, sizeof(pl));
	vz_buf_init(&p.detail, 512);
	vz_buf_init(&pl.keep_lines, SCRIPT_MAX);
	vz_buf_init(&pl.ref_lines, SCRIPT_MAX);
	if (!o.store_root)
		o.store_root = STORE_ROOT_DEFAULT;
	if (!o.pack_max)
		o.pack_max = PACK_MAX_DEFAULT;
	if (!o.keep_max)
		o.keep_max = KEEP_MAX_DEFAULT;
	if (o.timeout_ms <= 0)
		o.timeout_ms = TIMEOUT_DEFAULT_MS;
	deadline = t0 + (uint64_t)o.timeout_ms;
	vz_buf_init(&pack, o.pack_max);
	capture_init(&c, &o, PROBE_OUT_MAX);

	if (!node || !local_repo) {
		rc = vz_err_set(e, VZ_EINVAL, "deliver: a node and a local repository are needed");
		goto out;
	}
	if ((rc = check_rel("remote_dir", remote_dir, e)) || (rc = check_rel("store_root", o.store_root, e)) ||
	    (rc = check_rel("project", o.project, e)))
		goto out;
	vz_buf_printf(&store, "%s/%s.git", o.store_root, o.project);
	if (git_libgit2_init() < 0) {
		rc = git_fail(e, "cannot initialise", "libgit2");
		goto out;
	}
	inited = 1;

	/* round trip 1: is there git, and which commits does the node store keep? */
	probe_script(&script, vz_buf_cstr(&store));
	rc = run(node, &o, deadline, &script, NULL, 0, &c, &status, &st, e);
	st.probe_ms = vz_mono_ms() - t0;
	if (rc)
		goto out;
	if (status != 0) {
		rc = vz_err_set(e, VZ_EIO, "deliver: asking the node about git and its store failed (exit %d): %.400s",
				status, vz_buf_cstr(&c.err));
		goto out;
	}
	if ((rc = parse_probe(&c.out, &p, e)) != 0)
		goto out;
	if (!p.has_git || p.git_major < 2) {
		snprintf(st.note, sizeof(st.note), "%s%s: the work tree was sent as a tar, without .git (no branches, "
			 "no history on the node; install git >= 2.0 there for the full workspace)",
			 p.has_git ? "git on the node is too old: " : "no git on the node",
			 p.has_git ? p.git_version : "");
		rc = deliver_tar(node, local_repo, remote_dir, &o, deadline, o.pack_max, &c, &st, e);
		goto out;
	}
	if ((rc = read_local(&l, local_repo, e)) != 0)
		goto out;
	st.refs = l.nbr;
	plan_refs(&pl, &l);
	if (p.store == STORE_DAMAGED) {
		pl.rebuild = 1;
		st.rebuilt = 1;
		snprintf(st.note, sizeof(st.note), "the node store %s is damaged (%s): rebuilt from scratch",
			 vz_buf_cstr(&store), p.detail.len ? vz_buf_cstr(&p.detail) : "unreadable");
		p.nkeeps = 0;
	}

	/* round trip 2 (and 3 once, when the store turns out to be damaged): pack in, checkout */
	for (int attempt = 0; attempt < 2; attempt++) {
		uint64_t tp = vz_mono_ms();
		vz_buf_reset(&pack);
		vz_buf_reset(&pl.keep_lines);
		vz_buf_reset(&script);
		if ((rc = build_pack(&l, &p, &pack, &pl.objects, e)) != 0)
			goto out;
		st.pack_ms += vz_mono_ms() - tp;
		plan_keeps(&pl, &l, &p, o.keep_max);
		if (pl.keep_lines.failed || pl.ref_lines.failed) {
			rc = vz_err_set(e, VZ_ETOOBIG, "deliver: %zu branches are too many for one command line", l.nbr);
			goto out;
		}
		deliver_script(&script, vz_buf_cstr(&store), remote_dir, &l, &pl);
		st.method = VZ_DELIVER_GIT;
		st.objects = pl.objects;
		st.bytes = pl.objects ? pack.len : 0;
		if ((rc = run(node, &o, deadline, &script, pl.objects ? pack.ptr : NULL, st.bytes, &c, &status, &st, e)) != 0)
			goto out;
		if (status == 0 && strstr(vz_buf_cstr(&c.out), "vinz-delivered\n")) {
			st.reused = strstr(vz_buf_cstr(&c.out), "vinz-reused\n") != NULL;
			break;
		}
		if ((status == X_PACK || status == X_CHECKOUT || status == X_STORE) && !pl.rebuild) {
			/* objects the keep-refs promise are unreadable, or the old workspace is broken:
			 * start both again */
			pl.rebuild = 1;
			st.rebuilt = 1;
			snprintf(st.note, sizeof(st.note), "setting up %s failed (%.200s): the node store and the "
				 "workspace were made again from scratch", remote_dir, vz_buf_cstr(&c.err));
			p.nkeeps = 0;
			continue;
		}
		rc = vz_err_set(e, VZ_EIO, "deliver: setting up the repository %s on the node failed (exit %d): %.400s",
				remote_dir, status, c.err.len ? vz_buf_cstr(&c.err) : "no message");
		goto out;
	}
out:
	st.total_ms = vz_mono_ms() - t0;
	if (out_stats)
		*out_stats = st;
	local_free(&l);
	free(p.keeps);
	vz_buf_free(&p.detail);
	vz_buf_free(&pl.keep_lines);
	vz_buf_free(&pl.ref_lines);
	vz_buf_free(&store);
	vz_buf_free(&script);
	vz_buf_free(&pack);
	capture_free(&c);
	if (inited)
		git_libgit2_shutdown();
	return rc;
}
