/* vz_zconf_int: the parsed objects of a Zuul layout, shared by the loader (vz_zconf_parse.c), the
 * regex helpers (vz_zconf_rx.c) and the freezer (vz_zconf_freeze.c). Not for other modules. */
#ifndef VZ_ZCONF_INT_H
#define VZ_ZCONF_INT_H

#include <jansson.h>
#include <regex.h>

#include "vz_map.h"
#include "vz_yaml.h"
#include "vz_zconf.h"

/* A growable array of pointers. */
typedef struct zc_vec {
	void **v;
	size_t n, cap;
} zc_vec;
int zc_vec_push(zc_vec *a, void *p);

/* A Python-style regex compiled as POSIX ERE, matched as Python's re.match (anchored at the start
 * only). negate inverts the result (Zuul's {regex: ..., negate: true}). */
typedef struct zc_rx {
	regex_t *re; /* shared through the layout's cache (or owned when compiled without one) */
	char *src;
	int negate;
	int ok, owned;
} zc_rx;

/* Compiled regexes by pattern: glibc's compiled form is large, and a tenant repeats the same
 * few patterns across thousands of jobs. */
typedef struct zc_rxcache zc_rxcache;
zc_rxcache *zc_rxcache_new(void);
void zc_rxcache_free(zc_rxcache *c);

typedef struct zc_rxlist {
	zc_rx *v;
	size_t n;
} zc_rxlist;

/* Compiles pattern; on failure returns VZ_EINVAL with a message in err (what and why). */
int zc_rx_compile(zc_rxcache *c, zc_rx *out, const char *pattern, int negate, char *err, size_t errlen);
int zc_rx_match(const zc_rx *r, const char *s); /* re.match semantics, then negate */
void zc_rx_free(zc_rx *r);
void zc_rxlist_free(zc_rxlist *l);
/* True when any regex matches s. */
int zc_rxlist_any(const zc_rxlist *l, const char *s);

typedef struct zc_src {
	char *project, *branch, *prefix;
	char *connection; /* may be NULL */
	int trusted;
	unsigned types;
	size_t nbranches; /* branches of this project in the layout (implied branch matchers) */
} zc_src;

typedef struct zc_file {
	zc_src *src;
	size_t idx; /* load order, for sorting errors */
	char *path, *fname; /* fname = prefix + path, as errors show it */
	vz_ynode *root;
	int pragma_ibm;       /* implied-branch-matchers: -1 unset, 0, 1 */
	json_t *pragma_ib;    /* implied-branches: array of strings, or NULL */
} zc_file;

/* Where something was defined. */
typedef struct zc_pos {
	const zc_file *f;
	int line, col;
} zc_pos;

/* One job definition or variant (also a project-pipeline entry, pp = 1). */
typedef struct zc_job {
	char *name;
	zc_pos pos;
	int pp;
	int parent_kind; /* 0 unset, 1 named, 2 explicit null (a base job) */
	char *parent;
	zc_pos parent_pos;
	json_t *attrs;   /* attribute -> normalised JSON value */
	json_t *apos;    /* attribute -> [line, col] */
	zc_rxlist branches;
	int has_branches;
	/* implied branch matcher: exact branch, or the pragma's regexes */
	char *implied_branch;
	zc_rxlist implied_rx;
	int has_implied;
	zc_rxlist files, irrelevant;
	size_t index; /* config order */
} zc_job;

typedef struct zc_joblist {
	zc_vec v; /* zc_job*, in config order */
} zc_joblist;

typedef struct zc_ppc {
	char *pipeline;
	zc_pos pos;
	zc_vec jobs;      /* zc_job* (pp variants), in order */
	int debug, fail_fast; /* -1 unset */
	char *queue;
} zc_ppc;

/* A project stanza or a project-template. */
typedef struct zc_project {
	char *name;
	zc_pos pos;
	int is_template;
	int is_regex;
	zc_rx rx;
	zc_vec ppcs;      /* zc_ppc* */
	zc_vec templates; /* char* */
	zc_vec template_pos; /* zc_pos* */
	json_t *vars;
	char *default_branch, *merge_mode, *queue;
	char *implied_branch;
	zc_rxlist implied_rx;
	int has_implied;
} zc_project;

typedef struct zc_errent {
	char *msg;
	size_t fidx;
	int line, col;
} zc_errent;

typedef struct zc_named {
	char *name;
	zc_pos pos;
	json_t *data; /* normalised definition (a secret's: its keys only, never values) */
	/* secrets only */
	json_t *plain;  /* the data with encrypted values decrypted; NULL when not decrypted */
	int encrypted;  /* the data holds !encrypted/pkcs1-oaep values */
} zc_named;

struct vz_zconf {
	zc_vec srcs, files;
	zc_vec errors;        /* zc_errent*, sorted by file and position once loaded */
	size_t nerrors;
	vz_map *errset;       /* dedup */
	vz_map *pipelines, *nodesets, *secrets, *semaphores, *queues; /* name -> zc_named* */
	zc_vec pipeline_list, nodeset_list, secret_list, semaphore_list, queue_list;
	vz_map *jobs;         /* name -> zc_joblist* */
	zc_vec joblists;
	vz_map *templates;    /* name -> zc_project* (first) ; all in template_list */
	vz_map *template_vecs;/* name -> zc_vec* of every zc_project* of that name (one per branch) */
	zc_vec tvecs;         /* those zc_vec*, to free */
	zc_vec template_list;
	zc_vec projects;      /* zc_project* in order */
	size_t job_index;
	char *default_parent;
	/* look-up indices built once loaded */
	vz_map *proj_index;   /* short name -> zc_vec* of zc_project* (by name), in load order */
	zc_vec proj_vecs;     /* those zc_vec*, to free */
	zc_vec regex_projects;/* zc_project* named by a regex, in load order */
	vz_map *canon;        /* short name -> canonical name of a source project (borrowed) */
	vz_map *proj_branches;/* "project\nbranch" of every source -> its zc_src */
	zc_rxcache *rxcache;
	/* secrets: where keys come from while loading, and the keys found (project -> key) */
	vz_zconf_key_fn key_fn;
	void *key_ctx;
	vz_map *keys;
	zc_vec key_list;
};

/* Records "FNAME:LINE:COL: message (project P, branch B)". */
void zc_error(vz_zconf *z, const zc_pos *p, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same message as a string (malloc'd). */
char *zc_format(const zc_pos *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *zc_vformat(const zc_pos *p, const char *fmt, va_list ap);

/* A canonical name less its hostname (the first component, when it looks like a host name). */
const char *zc_short_name(const char *name);

/* Whether a stanza name (canonical, or without the hostname) names project. */
int zc_name_matches(const char *stanza_name, const char *project);

/* Whether a job variant's branch matchers accept branch. */
int zc_job_matches_branch(const zc_job *j, const char *branch);
int zc_project_matches_branch(const zc_project *p, const char *branch);

#endif
