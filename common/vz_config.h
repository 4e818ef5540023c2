/* vz_config: the site configuration of a vinz deployment (one YAML file): where state lives,
 * how scheduler and executors find each other, review-system connections, nodes, and until the
 * Zuul configuration language arrives, pipelines, jobs and projects in a thin form.
 * Every error reads "FILE:LINE:COL: message"; all errors are collected, not just the first.
 * Relative paths in the file are taken relative to the file's directory. docs/configuration.md
 * documents every key. */
#ifndef VZ_CONFIG_H
#define VZ_CONFIG_H

#include <stddef.h>

#include "vz_buf.h"
#include "vz_err.h"

typedef struct vz_conf_connection {
	char *name;
	char *driver;             /* "git" (more drivers later) */
	char *baseurl;            /* path or URL; a project's repository is BASEURL/NAME (or NAME.git) */
	char *canonical_hostname; /* default: the connection name */
	/* Credentials for fetching the repositories, used by executors only and read from their own
	 * site configuration (they never travel over the queue). Paths absolute after loading. */
	char *user;               /* ssh login / https user */
	char *ssh_key;            /* ssh: private key file */
	char *known_hosts;        /* ssh: known_hosts file the server's host key is checked against */
	char *password_file;      /* https: file holding the password or token */
	char *password_env;       /* https: environment variable holding it (one of the two) */
	char *ca_file;            /* https: PEM CA certificates trusted instead of the system's */
} vz_conf_connection;

typedef struct vz_conf_node {
	char *name;
	char *connection;  /* "ssh" or "local" */
	char *host;
	int port;          /* default 22 */
	char *user;        /* default: the executor's user */
	char *key;         /* private key file (absolute after loading) */
	char *known_hosts; /* known_hosts file (absolute after loading) */
	char *host_key;    /* a known_hosts-style key line, alternative to known_hosts */
	char **labels;
	size_t nlabels;
	int max_parallel;  /* builds at once on this node, default 1 */
	char *zone;        /* executor zone whose executors reach this node; NULL: unzoned */
} vz_conf_node;

typedef struct vz_conf_job {
	char *name;
	char **run;        /* shell commands, run in order in the change's checkout */
	size_t nrun;
	char *label;       /* node label the job needs; NULL: any node */
	int timeout;       /* seconds, default 1800 */
	int attempts;      /* default 3 (Zuul's) */
	int voting;        /* default 1 */
} vz_conf_job;

typedef struct vz_conf_pipeline {
	char *name;
	char *manager;     /* "independent" for now */
} vz_conf_pipeline;

typedef struct vz_conf_project_pipeline {
	char *pipeline;
	char **jobs;
	size_t njobs;
} vz_conf_project_pipeline;

typedef struct vz_conf_project {
	char *name;
	char *connection;
	char *default_branch; /* default "master" */
	vz_conf_project_pipeline *pipelines;
	size_t npipelines;
} vz_conf_project;

/* A project of a tenant (Zuul's main.yaml `source: CONN: config-projects|untrusted-projects`). */
typedef struct vz_conf_tenant_project {
	char *name;          /* the project's name on its connection, e.g. "org/repo" */
	char *connection;
	int config_project;  /* 1: trusted (config-projects) */
	char **include;      /* object types loaded (pipeline, job, ...); NULL: all */
	size_t ninclude;
	char **exclude;      /* object types left out (after include) */
	size_t nexclude;
	char *load_branch;   /* config projects: the branch read (default: the repository's HEAD) */
} vz_conf_tenant_project;

typedef struct vz_conf_tenant {
	char *name;
	vz_conf_tenant_project *projects; /* tenant order: every config project, then every untrusted one */
	size_t nprojects;
} vz_conf_tenant;

typedef struct vz_config {
	char *path;       /* absolute path of the file */
	char *dir;        /* its directory */
	char *state_dir;  /* default: DIR/state */
	char *log_level;  /* debug|info|warn|error, default info */
	struct {
		char *listen;     /* executor endpoint the scheduler binds, default tcp://127.0.0.1:7400 */
		char *admin;      /* admin endpoint for the CLI, default ipc://STATE_DIR/admin.sock */
		int lease_ms;     /* an executor silent this long loses its builds, default 15000 */
		int heartbeat_ms; /* default 1000 */
		char *curve_key;       /* CURVE key pair file (vinz keygen); NULL: no CURVE */
		char *curve_executors; /* file listing the executors' public keys */
	} scheduler;
	struct {
		char *name;       /* default: the hostname */
		char *scheduler;  /* endpoint to connect to, default the scheduler's listen */
		int capacity;     /* concurrent builds, default 4 */
		char **labels;
		size_t nlabels;
		char *work_dir;   /* default STATE_DIR/executor */
		double load_multiplier; /* no new builds while load1 > this x CPUs; 0 (default): no limit */
		double min_avail_mem;   /* percent of memory kept available, default 5 */
		double min_avail_disk;  /* percent of the work dir's disk kept free, default 5 */
		int disk_limit_per_job; /* MB a build's work dir may use (Zuul's default 250); -1: no limit */
		char *curve_key;     /* CURVE key pair file (vinz keygen); NULL: no CURVE */
		char *scheduler_key; /* the scheduler's public key: 40-character Z85 text or a .pub path */
		char *zone;          /* Zuul's executor zone: builds only for nodes of this zone */
		int allow_unzoned;   /* a zoned executor also takes builds for unzoned nodes */
		int max_starting_builds; /* builds preparing at once (Zuul's starting-builds sensor);
					  * 0: Zuul's default from the CPUs */
		int merge_capacity; /* merge requests run at once, besides builds, default 2 */
	} executor;
	vz_conf_connection *connections; size_t nconnections;
	vz_conf_node *nodes;             size_t nnodes;
	vz_conf_pipeline *pipelines;     size_t npipelines;
	vz_conf_job *jobs;               size_t njobs;
	vz_conf_project *projects;       size_t nprojects;
	vz_conf_tenant *tenants;         size_t ntenants;
} vz_config;

/* Loads and validates a site config. On error returns VZ_EINVAL (VZ_ENOTFOUND when the file is
 * missing), e holds the first error, and diags (optional) gets every error, one per line.
 * References are checked: a project's connection, a project-pipeline's pipeline and jobs. */
int vz_config_load(vz_config **out, const char *path, vz_buf *diags, vz_err *e);

/* The same from memory; fname is used in messages and its directory for relative paths. */
int vz_config_parse(vz_config **out, const char *data, size_t len, const char *fname,
		    vz_buf *diags, vz_err *e);

void vz_config_free(vz_config *c);

/* Look-ups by name; borrowed from c, NULL when absent. */
const vz_conf_connection *vz_config_connection(const vz_config *c, const char *name);
const vz_conf_node *vz_config_node(const vz_config *c, const char *name);
const vz_conf_pipeline *vz_config_pipeline(const vz_config *c, const char *name);
const vz_conf_job *vz_config_job(const vz_config *c, const char *name);
const vz_conf_project *vz_config_project(const vz_config *c, const char *name);
const vz_conf_tenant *vz_config_tenant(const vz_config *c, const char *name);

#endif
