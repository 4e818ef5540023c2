/* vz_pbmod_util: what the native file/transfer modules (copy, template, file, stat, fetch,
 * synchronize, lineinfile, wait_for, script) share: option parsing with Ansible's spellings,
 * running a POSIX sh script on the node with become/env/timeout/cancel and capped output, a stat
 * of a node path, executor-side path lookup with confinement, checksums and a small ustar
 * writer/reader for tree transfers. Not part of the engine contract (vz_pbmod.h). */
#ifndef VZ_PBMOD_UTIL_H
#define VZ_PBMOD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vz_buf.h"
#include "vz_node.h"
#include "vz_pbmod.h"

/* Largest file a module ships to or fetches from a node, and largest tree a copy/synchronize
 * moves in one go (bytes). */
#define VZ_PBMOD_MAX_FILE ((size_t)256 << 20)
/* Most entries in one transferred tree. */
#define VZ_PBMOD_MAX_ENTRIES 100000

/* ---- options ---- */

/* Fails (VZ_EINVAL, Ansible's message "Unsupported parameters for (MOD) module: X. Supported
 * parameters include: ...") when args has a key not in the NULL-terminated allowed list.
 * Keys starting with '_' (engine internals such as _raw_params) are allowed. */
int vz_pbmod_args_known(const json_t *args, const char *mod, const char *const *allowed, vz_err *e);

/* The first of the keys (NULL-terminated aliases) present in args, or NULL. */
const json_t *vz_pbmod_arg(const json_t *args, const char *const *keys);

/* A string option: strings as they are, integers/reals/booleans as Python's str() writes them
 * into buf (size n). *out NULL when absent or null. VZ_EINVAL for lists and mappings. */
int vz_pbmod_arg_str(const char **out, const json_t *args, const char *const *keys, char *buf,
		     size_t n, vz_err *e);

/* A boolean option with Ansible's spellings (yes/no, true/false, on/off, 1/0, y/n). */
int vz_pbmod_arg_bool(int *out, const json_t *args, const char *key, int dflt, vz_err *e);

/* An integer option (JSON number or decimal string). */
int vz_pbmod_arg_int(int64_t *out, const json_t *args, const char *key, int64_t dflt, vz_err *e);

/* A mode option: a JSON integer is the mode's value (YAML 0644 arrives as 420), a string of
 * octal digits is octal, "preserve" stays "preserve", anything else must be a chmod symbolic
 * mode ([ugoa]*[-+=][rwxXstugo]*, comma separated). *out is a new string for chmod ("0644",
 * "u+x,g-w"), NULL when absent. VZ_EINVAL with Ansible's meaning for a bad mode. */
int vz_pbmod_arg_mode(char **out, const json_t *args, const char *key, vz_err *e);

/* ---- results ---- */

/* Marks r failed with msg (printf format). Returns r. */
json_t *vz_pbmod_failed(json_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True for codes a module passes up instead of reporting a failed task (unreachable host:
 * VZ_ECONNECT, canceled, out of memory). */
int vz_pbmod_fatal(int rc);

/* After a helper failed with rc and err: a fatal code (vz_pbmod_fatal) is copied to e and
 * returned; any other failure marks r failed with err's message and returns 0. */
int vz_pbmod_report(json_t *r, int rc, const vz_err *err, vz_err *e);

/* With ctx->no_log, replaces the message of a failed result (it may name paths, lines or
 * output) by a fixed one. Every module calls it on its result last. */
void vz_pbmod_scrub(const vz_pbmod_ctx *ctx, json_t *r);

/* A module's last step: on rc != 0 (a fatal code) r is freed and *result is NULL, else r is
 * scrubbed (vz_pbmod_scrub) and becomes *result. Returns rc. */
int vz_pbmod_done(json_t **result, const vz_pbmod_ctx *ctx, json_t *r, int rc);

/* The first key of args not in the NULL-terminated allowed list, or NULL when all are known
 * (a plain membership test, no '_' exception: see vz_pbmod_args_known for that). */
const char *vz_pbmod_unknown_key(const json_t *args, const char *const *allowed);

/* ---- running on the node ---- */

typedef struct vz_pbmod_run {
	vz_buf out, err;
	int status;     /* exit status, 128+signal when killed */
	int overflow;   /* stdout or stderr passed its cap: the command was stopped */
} vz_pbmod_run;

/* Runs script with /bin/sh on the node (through `sudo -n -u USER` when ctx->become), with
 * ctx->env exported, stdin from in (may be NULL), ctx->timeout_ms and ctx->cancel, keeping at
 * most max_out bytes of stdout (stderr: 64 KiB). Returns 0 when it ran (see r->status; output
 * over the cap: r->overflow set and status -1), VZ_ETIMEOUT, VZ_EAUTH when become's sudo
 * refused, or the node's error (a broken connection is VZ_ECONNECT; see vz_pbmod_fatal). r is initialised here; free with vz_pbmod_run_free. */
int vz_pbmod_sh(vz_pbmod_run *r, const vz_pbmod_ctx *ctx, const char *script, const void *in,
		size_t in_len, size_t max_out, vz_err *e);
void vz_pbmod_run_free(vz_pbmod_run *r);

/* One node path, as `stat` sees it. */
typedef struct vz_pbmod_st {
	int exists;
	char type;          /* 'f' file, 'd' dir, 'l' link, 'c' 'b' 'p' 's', '?' */
	unsigned mode;      /* permission bits incl. suid/sgid/sticky */
	uint64_t size;
	long uid, gid;
	char owner[64], group[64];
	unsigned long nlink;
	uint64_t inode, dev;
	double atime, mtime, ctime;
	int readable, writeable, executable; /* for the connected (or become) user */
	int target_exists;  /* the path exists with symlinks followed (test -e) */
	int target_dir;     /* the path is a directory with symlinks followed (test -d) */
	char sha1[41];      /* "" unless asked for and a readable regular file */
	char *lnk_target;   /* links: readlink; NULL otherwise */
	char *lnk_source;   /* links: readlink -f; NULL otherwise */
} vz_pbmod_st;

/* Stats path on the node (follow: symlinks followed, a dangling one is "absent"), with the sha1
 * of a regular file when want_sum. Returns 0 (st->exists tells), a failed-task code with a
 * message, or a fatal node code. */
int vz_pbmod_node_stat(vz_pbmod_st *st, const vz_pbmod_ctx *ctx, const char *path, int follow,
		  int want_sum, vz_err *e);
void vz_pbmod_st_free(vz_pbmod_st *st);

/* The pieces of vz_pbmod_node_stat, to stat inside a larger script: appends the definition of
 * a sh function `vzst PATH` printing the record; vz_pbmod_stat_parse reads one record (text is
 * changed in place). */
void vz_pbmod_stat_sh(vz_buf *s, int follow, int want_sum);
int vz_pbmod_stat_parse(vz_pbmod_st *st, char *text, const char *path, vz_err *e);

/* Applies mode (chmod syntax), owner and group (NULL: leave) to path on the node, to the whole
 * tree when recurse; *changed is set when any of them changed. A bad mode or unknown owner is a
 * failed-task code (VZ_EINVAL) with chmod's/chown's message. */
int vz_pbmod_attrs(int *changed, const vz_pbmod_ctx *ctx, const char *path, const char *mode,
		   const char *owner, const char *group, int recurse, vz_err *e);

/* Ansible's add_path_info: uid, gid, owner, group, mode ("0644"), state (file, directory,
 * link, hard), size, for an existing path (st from a non-following stat). */
void vz_pbmod_path_info(json_t *r, const vz_pbmod_st *st);

/* "0644" as Ansible formats modes ('0%03o'). buf at least 8 bytes. */
const char *vz_pbmod_mode_str(char *buf, unsigned mode);

/* Lines of text as Ansible's stdout_lines (split on \n, \r\n; no trailing empty line). */
json_t *vz_pbmod_lines(const char *s);

/* A JSON string of n bytes of node output: invalid UTF-8 (binary output) becomes U+FFFD per
 * bad byte, as Ansible decodes with errors='replace' for display. */
json_t *vz_pbmod_text(const char *s, size_t n);

/* ---- copy's transfer, shared with template ---- */

typedef struct vz_pbmod_put {
	const char *mode;      /* chmod mode; NULL: keep an existing file's, else 0666 & ~umask */
	const char *owner, *group;
	const char *dir_mode;  /* for parents created when mkparents */
	int force;             /* replace a different existing file (else leave it) */
	int mkparents;         /* create missing parent dirs (dest given with a trailing slash) */
	int follow;            /* dest is a symlink: write its target (else the link is replaced) */
	const char *into_name; /* dest is a directory: write dest/into_name (NULL: fail, as content) */
	const char *src;       /* reported as "src" */
} vz_pbmod_put;

/* Puts data at dest on the node as Ansible's copy of one file does: nothing sent when dest has
 * the same sha1 (then only attributes), else a temp file beside dest renamed over it. Fills r
 * with Ansible's keys (changed, checksum, md5sum, dest, src, path info). A failure that is the
 * task's is a failed r and 0. */
int vz_pbmod_put_file(json_t *r, const vz_pbmod_ctx *ctx, const void *data, size_t len,
		      const char *dest, const vz_pbmod_put *o, vz_err *e);

/* Appends sh that creates each missing component of the path in variable $VAR, applying mode
 * (may be NULL) to each one it creates. */
void vz_pbmod_sh_mkdirs(vz_buf *s, const char *var, const char *mode);

/* ---- paths ---- */

/* The last component of p (after the last '/'; p itself without one; "" when p ends in '/'). */
const char *vz_pbmod_base_name(const char *p);

/* True when p is non-empty and ends in '/' (rsync's and copy's "the contents of" spelling). */
int vz_pbmod_ends_slash(const char *p);

/* ---- executor-side files ---- */

/* Finds the executor file for a module's src: an absolute path as is, a relative one in each
 * ctx->search dir as DIR/SUB/src then DIR/src (SUB "files" or "templates"; NULL: none).
 * Then resolves symlinks (realpath) and, when ctx->confine is set, requires the result under
 * confine, a search dir or ctx->work_dir. *out: the resolved path (caller frees).
 * VZ_ENOTFOUND (Ansible's "Could not find or access"), VZ_EINVAL for a refused path. */
int vz_pbmod_find_src(char **out, const vz_pbmod_ctx *ctx, const char *src, const char *sub,
		      vz_err *e);

/* Checks an executor path already resolved (realpath) against the confinement. 0 or VZ_EINVAL. */
int vz_pbmod_confined(const vz_pbmod_ctx *ctx, const char *real, const char *what, vz_err *e);

/* Makes an executor path the module will write (fetch dest, synchronize pull dest): a relative
 * path is taken from the last search dir (the playbook's, as Ansible) or, when confined or
 * without search dirs, from ctx->work_dir (else the current dir); when confined, `..` is refused and
 * the deepest existing ancestor must resolve under ctx->work_dir. Creates parent dirs when
 * mkparents. *out is the absolute path (caller frees). */
int vz_pbmod_local_dest(char **out, const vz_pbmod_ctx *ctx, const char *dest, int mkparents,
			vz_err *e);

/* Hex sha1 / md5 of bytes. out at least 41 / 33 bytes. */
void vz_pbmod_sha1(char *out, const void *data, size_t len);
void vz_pbmod_md5(char *out, const void *data, size_t len);

/* ---- trees ---- */

typedef struct vz_pbmod_ent {
	char *rel;        /* path under the walked root ("" for a single-file root) */
	char *abs;        /* executor path */
	char type;        /* 'f', 'd', 'l' */
	unsigned mode;
	uint64_t size;
	int64_t mtime;
	char *link;       /* symlink target ('l') */
} vz_pbmod_ent;

typedef struct vz_pbmod_tree {
	vz_pbmod_ent *v;
	size_t n, alloc;
	uint64_t bytes;
} vz_pbmod_tree;

/* Walks the executor tree at root (a dir) in sorted order. follow: symlinks are followed (each
 * target checked against the confinement); else kept as links. Caps: VZ_PBMOD_MAX_ENTRIES,
 * VZ_PBMOD_MAX_FILE bytes of files. */
int vz_pbmod_tree_walk(vz_pbmod_tree *t, const vz_pbmod_ctx *ctx, const char *root, int follow,
		       vz_err *e);
void vz_pbmod_tree_free(vz_pbmod_tree *t);

/* Appends a ustar entry (type 'f' with data, 'd', 'l' with link) named name, with mtime. */
int vz_pbmod_tar_add(vz_buf *tar, const char *name, char type, unsigned mode, int64_t mtime,
		     const void *data, size_t len, const char *link, vz_err *e);
/* Appends the end-of-archive marker. */
int vz_pbmod_tar_end(vz_buf *tar, vz_err *e);

/* Calls fn for each entry of a ustar stream (regular files, dirs, symlinks; GNU long names).
 * A name that is absolute or has a `..` component fails with VZ_EPROTO. */
typedef int (*vz_pbmod_tar_fn)(void *arg, const char *name, char type, unsigned mode,
			       int64_t mtime, const char *data, size_t len, const char *link,
			       vz_err *e);
int vz_pbmod_tar_each(const char *tar, size_t len, vz_pbmod_tar_fn fn, void *arg, vz_err *e);

#endif
