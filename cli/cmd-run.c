/* vinz run: the local dry-run. Runs the jobs the gate would run for the current repository's
 * HEAD (and, asked, its uncommitted work) here or on a node, through the executor's own merger,
 * workspaces and playbook engine (vz_build_run), with the job graph frozen by the scheduler's
 * configuration code (vz_zconf). docs/run.md. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "run-int.h"
#include "vz_workspace.h"
#include "vz_build.h"
#include "vz_cli.h"
#include "vz_merger.h"
#include "vz_spec.h"
#include "vz_util.h"
#include "vz_yaml.h"
#include "vz_zconf.h"

extern const vz_cmd vz_cmd_run;

#define MAX_LIST 64      /* --config-project, --project-dir, --node options */
#define MAX_VARS 256     /* -e options */
#define MAX_JOBS 1000    /* jobs of one graph */

typedef struct named_dir {
	char *name;  /* project name (canonical name in the layout) */
	char *dir;   /* as given */
	run_repo repo;
	char *cache; /* its seeded cache */
	char *branch;
} named_dir;

typedef struct node_opt {
	char *name;  /* nodeset node it maps, NULL: every node */
	char *user, *host;
	int port;
} node_opt;

typedef struct run_ctx {
	/* options */
	const char *job, *pipeline, *base_opt, *branch_opt, *secrets_file, *known_hosts, *key, *project_opt;
	int with_deps, list, keep, uncommitted, verbose;
	const char *cfg_specs[MAX_LIST], *dir_specs[MAX_LIST], *node_specs[MAX_LIST], *evars[MAX_VARS];
	size_t ncfg_specs, ndir_specs, nnode_specs, nevars;
	/* state */
	run_repo repo;
	char *project;       /* this repository's project name */
	char *target;        /* target branch */
	char *base_name;
	char base[41], change[41], merged[41];
	char *cache_root, *cache, *rundir, *workdir;
	named_dir cfg[MAX_LIST], dirs[MAX_LIST];
	size_t ncfg, ndirs;
	node_opt nodes[MAX_LIST];
	size_t nnodes;
	json_t *secrets;     /* {name: data} from --secrets */
	const char *site_file; /* --site: nodes by label from a site config */
	vz_config *site;
	int64_t date;
	run_view *view;
} run_ctx;

/* ---- small helpers ---- */

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static char *base_name_of(const char *dir)
{
	char *d = vz_xstrdup(dir);
	size_t l = strlen(d);
	while (l > 1 && d[l - 1] == '/')
		d[--l] = '\0';
	const char *b = strrchr(d, '/');
	char *r = vz_xstrdup(b ? b + 1 : d);
	free(d);
	return r;
}

/* A path for messages: relative to the current directory when it is below it. */
static const char *shown(const char *path)
{
	static char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)))
		return path;
	size_t n = strlen(cwd);
	if (strncmp(path, cwd, n) == 0 && path[n] == '/')
		return path + n + 1;
	return path;
}

/* Splits NAME=DIR; without '=' the name is the directory's base name. */
static void split_named(const char *spec, char **name, char **dir)
{
	const char *eq = strchr(spec, '=');
	if (eq && eq != spec) {
		*name = strndup(spec, (size_t)(eq - spec));
		*dir = vz_xstrdup(eq + 1);
	} else {
		*dir = vz_xstrdup(eq ? eq + 1 : spec);
		*name = base_name_of(*dir);
	}
	if (!*name)
		abort();
}

/* [NAME=]USER@HOST[:PORT] */
static int parse_node(node_opt *o, const char *spec)
{
	memset(o, 0, sizeof(*o));
	const char *eq = strchr(spec, '='), *at = strchr(spec, '@');
	if (eq && (!at || eq < at)) {
		o->name = strndup(spec, (size_t)(eq - spec));
		spec = eq + 1;
		at = strchr(spec, '@');
	}
	if (!at || at == spec || !at[1])
		return -1;
	o->user = strndup(spec, (size_t)(at - spec));
	const char *h = at + 1, *colon = strrchr(h, ':');
	o->port = 22;
	if (colon) {
		int64_t p;
		if (vz_parse_i64(colon + 1, 1, 65535, &p))
			return -1;
		o->port = (int)p;
		o->host = strndup(h, (size_t)(colon - h));
	} else {
		o->host = vz_xstrdup(h);
	}
	return o->host && *o->host && o->user ? 0 : -1;
}

static void named_clear(named_dir *d)
{
	free(d->name);
	free(d->dir);
	free(d->cache);
	free(d->branch);
	run_repo_clear(&d->repo);
}

/* ---- the repositories ---- */

/* Opens dir, seeds a cache borrowing its objects. */
static int open_named(run_ctx *c, named_dir *d, vz_err *e)
{
	int rc = run_repo_open(&d->repo, d->dir, e);
	if (rc) {
		vz_err_prefix(e, "project %s", d->name);
		return rc;
	}
	d->cache = vz_workspace_cache_path(c->cache_root, d->repo.top);
	d->branch = vz_xstrdup(d->repo.branch ? d->repo.branch : "master");
	return run_cache_seed(d->cache, d->repo.objects, e);
}

/* .vinz.yaml at the top of the repository:
 *   project: NAME                 # the project's name in the configuration
 *   config-projects: [DIR | {name: NAME, dir: DIR}]
 *   project-dirs: {NAME: DIR}
 * Directories are relative to the repository. */
static int read_dotfile(run_ctx *c, vz_err *e)
{
	char *path = vz_path_join(c->repo.top, ".vinz.yaml");
	vz_ynode *y = NULL;
	json_t *j = NULL;
	int rc = 0;
	struct stat st;
	if (stat(path, &st) != 0)
		goto out;
	if ((rc = vz_yaml_load_file(&y, path, e)))
		goto out;
	j = y ? vz_ynode_to_json(y) : json_object();
	if (!json_is_object(j)) {
		rc = vz_err_set(e, VZ_EINVAL, "%s:1:1: expected a mapping with project, config-projects, project-dirs",
				shown(path));
		goto out;
	}
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v) {
		if (strcmp(k, "project") == 0 && json_is_string(v)) {
			if (!c->project_opt)
				c->project = vz_xstrdup(json_string_value(v));
		} else if (strcmp(k, "config-projects") == 0 && json_is_array(v)) {
			size_t i;
			json_t *x;
			json_array_foreach(v, i, x) {
				const char *dir = json_is_string(x) ? json_string_value(x) : jstr(x, "dir");
				if (!dir || c->ncfg >= MAX_LIST) {
					rc = vz_err_set(e, VZ_EINVAL, "%s: config-projects entry %zu needs a dir (at most %d)",
							shown(path), i + 1, MAX_LIST);
					goto out;
				}
				if (c->ncfg_specs)
					continue; /* --config-project wins */
				named_dir *d = &c->cfg[c->ncfg++];
				d->dir = dir[0] == '/' ? vz_xstrdup(dir) : vz_path_join(c->repo.top, dir);
				d->name = jstr(x, "name") ? vz_xstrdup(jstr(x, "name")) : base_name_of(d->dir);
			}
		} else if (strcmp(k, "project-dirs") == 0 && json_is_object(v)) {
			const char *pk;
			json_t *pv;
			json_object_foreach(v, pk, pv) {
				if (!json_is_string(pv) || c->ndirs >= MAX_LIST) {
					rc = vz_err_set(e, VZ_EINVAL, "%s: project-dirs %s must be a directory", shown(path), pk);
					goto out;
				}
				named_dir *d = &c->dirs[c->ndirs++];
				d->name = vz_xstrdup(pk);
				const char *dir = json_string_value(pv);
				d->dir = dir[0] == '/' ? vz_xstrdup(dir) : vz_path_join(c->repo.top, dir);
			}
		} else {
			rc = vz_err_set(e, VZ_EINVAL, "%s: unknown key '%s' or wrong type (project: NAME, config-projects: "
						      "[DIR], project-dirs: {NAME: DIR})", shown(path), k);
			goto out;
		}
	}
out:
	json_decref(j);
	vz_ynode_free(y);
	free(path);
	return rc;
}

/* ---- configuration ---- */

static void print_conf_errors(const vz_zconf *z)
{
	size_t n = vz_zconf_nerrors(z), i;
	const char *m;
	for (i = 0; (m = vz_zconf_error(z, i)); i++)
		fprintf(stderr, "%s\n", m);
	if (n > i)
		fprintf(stderr, "... and %zu more errors\n", n - i);
}

/* Loads the layout (config projects at their HEAD, this repository at the merged commit) and
 * freezes the graph. Returns an exit code; *graph set on 0. */
static int load_graph(run_ctx *c, json_t **graph, const char *const *files, size_t nfiles)
{
	vz_zconf_source src[MAX_LIST + 1];
	json_t *content[MAX_LIST + 1] = { 0 };
	char *prefix[MAX_LIST + 1] = { 0 };
	size_t n = 0;
	vz_zconf *z = NULL;
	vz_err e = { 0 };
	int ex = VZ_EXIT_CONFIG;
	for (size_t i = 0; i < c->ncfg; i++) {
		named_dir *d = &c->cfg[i];
		if (vz_spec_read_config(&content[n], NULL, d->cache, d->repo.head, 0, &e)) {
			fprintf(stderr, "vinz run: config project %s: %s\n", d->name, vz_err_msg(&e));
			goto out;
		}
		vz_buf b;
		vz_buf_init(&b, 8192);
		vz_buf_printf(&b, "%s/", shown(d->repo.top));
		prefix[n] = vz_xstrdup(vz_buf_cstr(&b));
		vz_buf_free(&b);
		src[n] = (vz_zconf_source){ d->name, d->branch, 1, content[n], prefix[n], 0 };
		n++;
	}
	if (vz_spec_read_config(&content[n], NULL, c->cache, c->merged, 0, &e)) {
		fprintf(stderr, "vinz run: %s: %s\n", c->project, vz_err_msg(&e));
		goto out;
	}
	{
		/* errors name files as the user sees them from here */
		char cwd[4096];
		int at_top = getcwd(cwd, sizeof(cwd)) && strcmp(cwd, c->repo.top) == 0;
		vz_buf b;
		vz_buf_init(&b, 8192);
		vz_buf_printf(&b, "%s/", at_top ? "" : shown(c->repo.top));
		prefix[n] = vz_xstrdup(at_top ? "" : vz_buf_cstr(&b));
		vz_buf_free(&b);
	}
	/* a repository without config projects configures itself (it defines its pipelines) */
	src[n] = (vz_zconf_source){ c->project, c->target, c->ncfg == 0, content[n], prefix[n], 0 };
	n++;
	int rc = vz_zconf_load(&z, src, n, &e);
	if (rc && !z) {
		fprintf(stderr, "vinz run: %s\n", vz_err_msg(&e));
		goto out;
	}
	if (vz_zconf_nerrors(z)) {
		print_conf_errors(z);
		fprintf(stderr, "vinz run: the configuration has errors; nothing was run\n");
		goto out;
	}
	vz_zconf_item it = { c->project, c->target, c->pipeline, files, nfiles };
	if ((rc = vz_zconf_freeze(graph, z, &it, &e))) {
		fprintf(stderr, "vinz run: %s\n", vz_err_msg(&e));
		if (rc == VZ_ENOTFOUND) {
			json_t *p = vz_zconf_pipelines(z);
			char *s = json_dumps(p, JSON_COMPACT);
			fprintf(stderr, "vinz run: pipelines defined: %s; the project is named %s (--project NAME or "
					"`project:` in .vinz.yaml to change it)\n", s ? s : "[]", c->project);
			free(s);
			json_decref(p);
		}
		goto out;
	}
	ex = VZ_EXIT_OK;
out:
	vz_zconf_free(z);
	for (size_t i = 0; i < n + 1 && i <= MAX_LIST; i++) {
		json_decref(content[i]);
		free(prefix[i]);
	}
	return ex;
}

/* ---- the graph ---- */

typedef struct job {
	const char *name;
	json_t *j;          /* borrowed from the graph */
	int selected;
	const char *result; /* NULL: not run yet */
	char message[VZ_ERR_MSG_MAX + 200];
	uint64_t ms;
	int voting;
	char *log;          /* its job-output.txt */
} job;

static job *find_job(job *jobs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(jobs[i].name, name) == 0)
			return &jobs[i];
	return NULL;
}

static void select_with_deps(job *jobs, size_t n, job *j, int depth)
{
	if (!j || j->selected || depth > MAX_JOBS)
		return;
	j->selected = 1;
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(j->j, "dependencies"), i, d)
		select_with_deps(jobs, n, find_job(jobs, n, jstr(d, "name")), depth + 1);
}

static void print_list(json_t *g, job *jobs, size_t n)
{
	printf("%s %s %s\n", jstr(g, "project"), jstr(g, "branch"), jstr(g, "pipeline"));
	for (size_t i = 0; i < n; i++) {
		json_t *j = jobs[i].j, *x;
		size_t k;
		printf("  %s%s%s\n", jobs[i].name, jobs[i].voting ? "" : " (non-voting)",
		       jobs[i].selected ? "" : " (not selected)");
		json_t *deps = json_object_get(j, "dependencies");
		if (json_array_size(deps)) {
			printf("    depends on:");
			json_array_foreach(deps, k, x)
				printf(" %s%s", jstr(x, "name"), json_is_true(json_object_get(x, "soft")) ? " (soft)" : "");
			printf("\n");
		}
		json_t *ns = json_object_get(j, "nodeset");
		if (json_is_object(ns)) {
			printf("    nodeset: %s (", jstr(ns, "name") ? jstr(ns, "name") : "anonymous");
			json_array_foreach(json_object_get(ns, "nodes"), k, x) {
				json_t *nm = json_object_get(x, "name");
				printf("%s%s %s", k ? ", " : "", json_is_array(nm) ? json_string_value(json_array_get(nm, 0)) :
				       json_string_value(nm), jstr(x, "label") ? jstr(x, "label") : "");
			}
			printf(")\n");
		}
		static const char *const ph[] = { "pre-run", "run", "post-run", "cleanup-run" };
		for (int p = 0; p < 4; p++)
			json_array_foreach(json_object_get(json_object_get(j, "playbooks"), ph[p]), k, x)
				printf("    %-12s %s:%s\n", k ? "" : ph[p], jstr(x, "project"), jstr(x, "path"));
	}
	size_t k;
	json_t *x;
	json_array_foreach(json_object_get(g, "skipped"), k, x)
		printf("  %s skipped: %s\n", jstr(x, "name"), jstr(x, "reason"));
}

/* Every secret the job's playbooks get, as {name: name}: the name the job gives the secret (its
 * `name` in the job's `secrets`, the secret's own name unless renamed); the frozen graph carries
 * no more than that. New reference. */
static json_t *job_secrets(json_t *j)
{
	json_t *out = json_object();
	static const char *const ph[] = { "pre-run", "run", "post-run", "cleanup-run" };
	for (int p = 0; p < 4; p++) {
		size_t k, q;
		json_t *pb, *s;
		json_array_foreach(json_object_get(json_object_get(j, "playbooks"), ph[p]), k, pb)
			json_array_foreach(json_object_get(pb, "secrets"), q, s)
				if (json_is_string(s))
					json_object_set_new(out, json_string_value(s),
							    json_string(json_string_value(s)));
	}
	return out;
}

/* ---- one build ---- */

typedef struct build_run {
	run_ctx *c;
	job *jb;
	json_t *req;
	FILE *log;
	char result[32];
	char message[VZ_ERR_MSG_MAX + 200];
	volatile int cancel;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	vz_build_env env;
} build_run;

static void on_emit(void *ctx, vz_msg_type type, json_t *body)
{
	build_run *b = ctx;
	if (type == VZ_MSG_STARTED && strcmp(jstr(json_object_get(b->req, "node"), "connection"), "local") == 0) {
		/* A local node's commands run in this process's directory, and Zuul's playbooks expect
		 * the node's home to hold src/<project> (zuul.project.src_dir is relative to it): the
		 * build dir, which exists from now on, is the local node's home. One build runs at a
		 * time; run_job goes back to the user's directory afterwards. */
		char rel[128];
		snprintf(rel, sizeof(rel), "builds/%s", jstr(b->req, "build"));
		char *home = vz_path_join(b->c->workdir, rel);
		if (chdir(home) != 0)
			vz_strlcpy(b->message, "cannot enter the build dir", sizeof(b->message));
		free(home);
	} else if (type == VZ_MSG_LOG && b->log) {
		json_t *d = json_object_get(body, "data");
		fwrite(json_string_value(d), 1, json_string_length(d), b->log);
		fflush(b->log);
	} else if (type == VZ_MSG_RESULT) {
		vz_strlcpy(b->result, jstr(body, "result") ? jstr(body, "result") : "ERROR", sizeof(b->result));
		vz_strlcpy(b->message, jstr(body, "message") ? jstr(body, "message") : "", sizeof(b->message));
	}
	json_decref(body);
}

static void on_line(void *ctx, const char *node, const char *text, size_t len)
{
	build_run *b = ctx;
	run_view_line(b->c->view, node, text, len);
}

static void *build_thread(void *arg)
{
	build_run *b = arg;
	vz_build_run(b->req, &b->env, &b->cancel, on_emit, b);
	pthread_mutex_lock(&b->mu);
	b->done = 1;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

static named_dir *find_dir(named_dir *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		size_t a = strlen(v[i].name), b = strlen(name);
		if (strcmp(v[i].name, name) == 0 || (a > b && v[i].name[a - b - 1] == '/' && strcmp(v[i].name + a - b, name) == 0) ||
		    (b > a && name[b - a - 1] == '/' && strcmp(name + b - a, v[i].name) == 0))
			return &v[i];
	}
	return NULL;
}

/* Adds project d to the request's projects and repo state (once). Its checked-out commit stands
 * for the target branch, as a change a Depends-On names would: the workspace gets the branch the
 * build's own project has, at what the local clone has checked out. */
static void add_project(json_t *req, const named_dir *d, const char *target)
{
	json_t *rs = json_object_get(req, "repo_state");
	if (json_object_get(rs, d->name))
		return;
	json_object_set_new(rs, d->name, json_pack("{s:s}", target, d->repo.head));
	json_array_append_new(json_object_get(req, "projects"),
			      json_pack("{s:s,s:s,s:s,s:s}", "project", d->name, "canonical_project", d->name, "repo", d->repo.top,
					"branch", target));
}

/* A node of the --site config offering label and not yet taken by this build (used[] by index),
 * as a request entry; NULL when none. */
static json_t *site_node(run_ctx *c, const char *node_name, const char *label, int *used)
{
	for (size_t i = 0; c->site && label && i < c->site->nnodes && i < 1024; i++) {
		const vz_conf_node *n = &c->site->nodes[i];
		int has = 0;
		for (size_t k = 0; k < n->nlabels && !has; k++)
			has = strcmp(n->labels[k], label) == 0;
		if (!has || used[i])
			continue;
		used[i] = 1;
		if (strcmp(n->connection, "local") == 0)
			return json_pack("{s:s,s:s}", "name", node_name, "connection", "local");
		return json_pack("{s:s,s:s,s:s,s:i,s:s?,s:s?,s:s?,s:s?}", "name", node_name, "connection", "ssh", "host", n->host,
				 "port", n->port, "user", n->user, "key", n->key, "known_hosts", n->known_hosts, "host_key",
				 n->host_key);
	}
	return NULL;
}

/* The request entry of nodeset node node_name (label: the nodeset's label for it): a matching
 * --node NAME=..., else a --node without a name, else a --site node with the label, else this
 * machine; with the nodeset's groups that hold it. NULL with why set when a --site config has no
 * free node with the label. */
static json_t *node_for(run_ctx *c, json_t *ns, const char *node_name, const char *label, int *used, char *why,
			size_t whylen)
{
	const node_opt *no = NULL;
	for (size_t i = 0; i < c->nnodes; i++)
		if (c->nodes[i].name && strcmp(c->nodes[i].name, node_name) == 0)
			no = &c->nodes[i];
	for (size_t i = 0; i < c->nnodes && !no; i++)
		if (!c->nodes[i].name)
			no = &c->nodes[i];
	json_t *node = NULL;
	if (!no && c->site && label) {
		node = site_node(c, node_name, label, used);
		if (!node) {
			snprintf(why, whylen, "no free node of the site config %s offers label '%s' (for nodeset node %s)",
				 c->site_file, label ? label : "", node_name);
			return NULL;
		}
	} else if (no) {
		char *kh = NULL;
		if (!c->known_hosts && getenv("HOME")) {
			kh = vz_path_join(getenv("HOME"), ".ssh/known_hosts");
		}
		char *key = NULL;
		if (!c->key && getenv("HOME")) {
			static const char *const keys[] = { ".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa" };
			for (size_t i = 0; i < 3 && !key; i++) {
				char *p = vz_path_join(getenv("HOME"), keys[i]);
				if (access(p, R_OK) == 0)
					key = p;
				else
					free(p);
			}
		}
		node = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s?,s:s?}", "name", node_name, "connection", "ssh", "host", no->host,
				 "port", no->port, "user", no->user, "key", c->key ? c->key : key, "known_hosts",
				 c->known_hosts ? c->known_hosts : kh);
		free(kh);
		free(key);
	} else {
		node = json_pack("{s:s,s:s}", "name", node_name, "connection", "local");
	}
	json_t *groups = json_array();
	size_t i, k;
	json_t *g, *x;
	json_array_foreach(json_object_get(ns, "groups"), i, g) {
		json_array_foreach(json_object_get(g, "nodes"), k, x)
			if (json_is_string(x) && strcmp(json_string_value(x), node_name) == 0 && jstr(g, "name"))
				json_array_append_new(groups, json_string(jstr(g, "name")));
	}
	json_object_set_new(node, "groups", groups);
	return node;
}

/* The build request of job j, or NULL with why in j->message. Every node of the job's nodeset is a
 * node of the build (the executor opens them all); the first is the build's own. */
static json_t *make_request(run_ctx *c, job *jb)
{
	json_t *j = jb->j, *attrs = json_object_get(j, "attributes");
	json_t *ns = json_object_get(j, "nodeset");
	json_t *nodes = json_object_get(ns, "nodes");
	char uuid[37];
	vz_uuid(uuid);
	json_t *all = json_array();
	size_t ni;
	json_t *nd;
	int used[1024] = { 0 };
	json_array_foreach(nodes, ni, nd) {
		json_t *nn = json_object_get(nd, "name");
		if (json_is_array(nn))
			nn = json_array_get(nn, 0);
		json_t *lab = json_object_get(nd, "label");
		if (!json_is_string(nn))
			continue;
		json_t *one = node_for(c, ns, json_string_value(nn), json_string_value(lab), used, jb->message,
				       sizeof(jb->message));
		if (!one) {
			json_decref(all);
			return NULL;
		}
		json_array_append_new(all, one);
	}
	if (json_array_size(all) == 0)
		json_array_append_new(all, node_for(c, ns, "localhost", NULL, used, jb->message, sizeof(jb->message)));
	json_t *node = json_incref(json_array_get(all, 0));
	size_t i, k;
	json_t *x;
	json_int_t timeout = json_integer_value(json_object_get(attrs, "timeout"));
	json_t *req = json_pack(
		"{s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:[],s:I,s:[{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}],s:{s:{s:s}},s:[],s:s}",
		"build", uuid, "attempt", 1, "job", jb->name, "project", c->project, "canonical_project", c->project,
		"pipeline", c->pipeline, "branch", c->target, "change", "local", "node", node, "commands", "timeout",
		(json_int_t)(timeout > 0 ? timeout : 1800), "items", "id", "local", "project", c->project,
		"canonical_project", c->project, "repo", c->repo.top, "branch", c->target, "commit", c->change, "mode",
		"merge", "date", (json_int_t)c->date, "repo_state", c->project, c->target, c->base, "projects", "ref",
		c->repo.branch ? c->repo.branch : "HEAD");
	if (json_array_size(all) > 1)
		json_object_set(req, "nodes", all);
	/* playbooks, and the projects they live in */
	static const char *const ph[] = { "pre-run", "run", "post-run", "cleanup-run" };
	static const char *const key[] = { "pre_run", "run", "post_run", "cleanup_run" };
	json_t *pbs = json_object();
	for (int p = 0; p < 4; p++) {
		json_t *list = json_array();
		json_array_foreach(json_object_get(json_object_get(j, "playbooks"), ph[p]), k, x) {
			const char *proj = jstr(x, "project");
			if (proj && strcmp(proj, c->project) != 0) {
				named_dir *d = find_dir(c->cfg, c->ncfg, proj);
				if (!d)
					d = find_dir(c->dirs, c->ndirs, proj);
				if (!d) {
					snprintf(jb->message, sizeof(jb->message), "playbook %s is in project %s: give its "
						 "directory with --project-dir %s=DIR", jstr(x, "path"), proj, proj);
					json_decref(list);
					json_decref(pbs);
					json_decref(req);
					json_decref(all);
					return NULL;
				}
				add_project(req, d, c->target);
			}
			json_array_append_new(list, json_pack("{s:s,s:s,s:b}", "project", proj ? proj : c->project, "path",
							      jstr(x, "path") ? jstr(x, "path") : "", "trusted",
							      json_is_true(json_object_get(x, "trusted"))));
		}
		json_object_set_new(pbs, key[p], list);
	}
	json_object_set_new(req, "playbooks", pbs);
	/* required projects */
	json_array_foreach(json_object_get(attrs, "required-projects"), k, x) {
		const char *name = json_is_string(x) ? json_string_value(x) : jstr(x, "name");
		if (!name || strcmp(name, c->project) == 0)
			continue;
		named_dir *d = find_dir(c->dirs, c->ndirs, name);
		if (!d)
			d = find_dir(c->cfg, c->ncfg, name);
		if (!d) {
			snprintf(jb->message, sizeof(jb->message),
				 "the job requires project %s: give a local clone with --project-dir %s=DIR", name, name);
			json_decref(req);
			json_decref(all);
			return NULL;
		}
		add_project(req, d, c->target);
	}
	/* every --project-dir project is in the workspace, required or not: a local clone given on
	 * the command line stands for a change this one depends on (Depends-On), which Zuul puts in
	 * the build's items and so in its workspace */
	for (size_t di = 0; di < c->ndirs; di++)
		add_project(req, &c->dirs[di], c->target);
	/* variables: job vars, -e over them (and over host-vars), secrets */
	json_t *vars = json_deep_copy(json_object_get(attrs, "vars"));
	if (!json_is_object(vars)) {
		json_decref(vars);
		vars = json_object();
	}
	json_t *hv = json_deep_copy(json_object_get(attrs, "host-vars"));
	if (!json_is_object(hv)) {
		json_decref(hv);
		hv = json_object();
	}
	json_t *sec = job_secrets(j);
	const char *alias;
	json_t *sn;
	json_object_foreach(sec, alias, sn)
		json_object_set(vars, alias, json_object_get(c->secrets, json_string_value(sn)));
	json_decref(sec);
	for (i = 0; i < c->nevars; i++) {
		const char *eq = strchr(c->evars[i], '=');
		char *kname = strndup(c->evars[i], (size_t)(eq - c->evars[i]));
		if (!kname)
			abort();
		json_object_set_new(vars, kname, json_string(eq + 1));
		/* -e wins over everything, host-vars included, on every node */
		json_array_foreach(all, k, x) {
			json_t *mine = json_object_get(hv, jstr(x, "name"));
			if (!json_is_object(mine)) {
				mine = json_object();
				json_object_set_new(hv, jstr(x, "name"), mine);
			}
			json_object_set_new(mine, kname, json_string(eq + 1));
		}
		free(kname);
	}
	json_object_set_new(req, "vars", vars);
	json_object_set_new(req, "host_vars", hv);
	json_t *gv = json_object_get(attrs, "group-vars");
	if (json_is_object(gv))
		json_object_set(req, "group_vars", gv);
	json_decref(all);
	return req;
}

/* Moves src to dst when src exists. */
static void move_if(const char *src, const char *dst)
{
	struct stat st;
	if (stat(src, &st) == 0 && rename(src, dst) != 0)
		fprintf(stderr, "vinz run: cannot move %s to %s: %s\n", src, dst, strerror(errno));
}

static void run_job(run_ctx *c, job *jb)
{
	uint64_t t0 = vz_mono_ms();
	json_t *req = make_request(c, jb);
	if (!req) {
		jb->result = "ERROR";
		run_view_job_end(c->view, jb->name, jb->result, jb->message, 0, jb->voting);
		return;
	}
	/* the job's log directory: .vinz/runs/<id>/<job> ('/' in a job name becomes '_') */
	char dname[300];
	vz_strlcpy(dname, jb->name, sizeof(dname));
	for (char *p = dname; *p; p++)
		if (*p == '/')
			*p = '_';
	char *jdir = vz_path_join(c->rundir, dname);
	vz_err e = { 0 };
	build_run *b = vz_xcalloc(1, sizeof(*b));
	b->c = c;
	b->jb = jb;
	b->req = req;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	vz_strlcpy(b->result, "ERROR", sizeof(b->result));
	b->env = (vz_build_env){ .work_dir = c->workdir, .executor = "vinz-run", .on_line = on_line, .line_ctx = b,
				 .keep_workspace = c->keep };
	if (vz_mkdir_p(jdir, 0755, &e)) {
		snprintf(jb->message, sizeof(jb->message), "%s", vz_err_msg(&e));
		jb->result = "ERROR";
		goto out;
	}
	jb->log = vz_path_join(jdir, "job-output.txt");
	b->log = fopen(jb->log, "we");
	run_view_job_start(c->view, jb->name);
	pthread_t th;
	if (pthread_create(&th, NULL, build_thread, b) != 0) {
		snprintf(jb->message, sizeof(jb->message), "cannot start a thread");
		jb->result = "ERROR";
		goto out;
	}
	pthread_mutex_lock(&b->mu);
	while (!b->done) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&b->cv, &b->mu, &ts);
		if (vz_cli_stop && !b->cancel)
			b->cancel = VZ_BUILD_CANCEL;
		pthread_mutex_unlock(&b->mu);
		run_view_tick(c->view);
		pthread_mutex_lock(&b->mu);
	}
	pthread_mutex_unlock(&b->mu);
	pthread_join(th, NULL);
	if (chdir(c->repo.cwd) != 0)
		fprintf(stderr, "vinz run: cannot go back to %s: %s\n", c->repo.cwd, strerror(errno));
	/* the engine's own logs (job-output.json, collected files) next to the log */
	char rel[128];
	snprintf(rel, sizeof(rel), "builds/%s/logs", jstr(req, "build"));
	char *logs = vz_path_join(c->workdir, rel);
	char *json_src = vz_path_join(logs, "job-output.json");
	char *json_dst = vz_path_join(jdir, "job-output.json");
	/* the engine's job-output.json holds every playbook of the build */
	move_if(json_src, json_dst);
	char *logs_dst = vz_path_join(jdir, "logs");
	move_if(logs, logs_dst);
	free(logs);
	free(json_src);
	free(json_dst);
	free(logs_dst);
	jb->result = strcmp(b->result, "SUCCESS") == 0 ? "SUCCESS" : strcmp(b->result, "FAILURE") == 0 ? "FAILURE"
		     : strcmp(b->result, "POST_FAILURE") == 0 ? "POST_FAILURE" : strcmp(b->result, "TIMED_OUT") == 0 ? "TIMED_OUT"
		     : strcmp(b->result, "ABORTED") == 0 ? "ABORTED" : strcmp(b->result, "MERGE_CONFLICT") == 0 ? "MERGE_CONFLICT"
		     : strcmp(b->result, "NODE_FAILURE") == 0 ? "NODE_FAILURE" : strcmp(b->result, "RETRY") == 0 ? "RETRY"
		     : "ERROR";
	vz_strlcpy(jb->message, b->message, sizeof(jb->message));
	if (strcmp(jb->result, "RETRY") == 0) /* the gate would run it again; here it is the outcome */
		strncat(jb->message, " (the gate would retry; vinz run does not)", sizeof(jb->message) - strlen(jb->message) - 1);
	if (c->keep)
		run_view_note(c->view, "%s: workspace kept in %s/builds/%s/src%s", jb->name, shown(c->workdir),
			      jstr(req, "build"), strcmp(jstr(json_object_get(req, "node"), "connection"), "local") == 0
				      ? "" : " (and in ~/src on the node)");
out:
	jb->ms = vz_mono_ms() - t0;
	run_view_job_end(c->view, jb->name, jb->result, jb->message, jb->ms, jb->voting);
	if (b->log)
		fclose(b->log);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);

	free(b);
	free(jdir);
	json_decref(req);
}

/* ---- the command ---- */

static void ctx_free(run_ctx *c)
{
	run_repo_clear(&c->repo);
	free(c->project);
	free(c->target);
	free(c->base_name);
	free(c->cache_root);
	free(c->cache);
	free(c->rundir);
	free(c->workdir);
	for (size_t i = 0; i < c->ncfg; i++)
		named_clear(&c->cfg[i]);
	for (size_t i = 0; i < c->ndirs; i++)
		named_clear(&c->dirs[i]);
	for (size_t i = 0; i < c->nnodes; i++) {
		free(c->nodes[i].name);
		free(c->nodes[i].user);
		free(c->nodes[i].host);
	}
	json_decref(c->secrets);
	vz_config_free(c->site);
	run_view_free(c->view);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "vinz run: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see vinz run --help)\n");
	return VZ_EXIT_USAGE;
}

static int parse_args(run_ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "job", required_argument, NULL, 'j' },	  { "with-deps", no_argument, NULL, 'D' },
		{ "pipeline", required_argument, NULL, 'p' },	  { "base", required_argument, NULL, 'b' },
		{ "branch", required_argument, NULL, 'B' },	  { "config-project", required_argument, NULL, 'c' },
		{ "project-dir", required_argument, NULL, 'd' },  { "project", required_argument, NULL, 'P' },
		{ "include-uncommitted", no_argument, NULL, 'u' }, { "node", required_argument, NULL, 'n' },
		{ "known-hosts", required_argument, NULL, 'K' },  { "key", required_argument, NULL, 'k' },
		{ "list", no_argument, NULL, 'l' },		  { "keep", no_argument, NULL, 'x' },
		{ "secrets", required_argument, NULL, 's' },	  { "verbose", no_argument, NULL, 'v' },
		{ "site", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 }
	};
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "j:p:b:c:d:ue:n:k:lvs:", opts, NULL)) != -1) {
		switch (o) {
		case 'j': c->job = optarg; break;
		case 'D': c->with_deps = 1; break;
		case 'p': c->pipeline = optarg; break;
		case 'b': c->base_opt = optarg; break;
		case 'B': c->branch_opt = optarg; break;
		case 'P': c->project_opt = optarg; break;
		case 'u': c->uncommitted = 1; break;
		case 'K': c->known_hosts = optarg; break;
		case 'k': c->key = optarg; break;
		case 'l': c->list = 1; break;
		case 'x': c->keep = 1; break;
		case 's': c->secrets_file = optarg; break;
		case 'v': c->verbose = 1; break;
		case 'S': c->site_file = optarg; break;
		case 'c':
		case 'd':
		case 'n':
		case 'e': {
			const char **v = o == 'c' ? c->cfg_specs : o == 'd' ? c->dir_specs : o == 'n' ? c->node_specs : c->evars;
			size_t *n = o == 'c' ? &c->ncfg_specs : o == 'd' ? &c->ndir_specs : o == 'n' ? &c->nnode_specs : &c->nevars;
			size_t max = o == 'e' ? MAX_VARS : MAX_LIST;
			if (*n >= max)
				return usage_error("too many %s options", o == 'e' ? "-e" : "repeated");
			if (o == 'e' && (!strchr(optarg, '=') || optarg[0] == '='))
				return usage_error("-e %s: give KEY=VALUE", optarg);
			if (o == 'd' && (!strchr(optarg, '=') || optarg[0] == '='))
				return usage_error("--project-dir %s: give NAME=DIR", optarg);
			v[(*n)++] = optarg;
			break;
		}
		default: vz_cli_usage(&vz_cmd_run, 1); return VZ_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (c->with_deps && !c->job)
		return usage_error("%s needs --job NAME", "--with-deps");
	if (!c->pipeline)
		c->pipeline = "check";
	for (size_t i = 0; i < c->nnode_specs; i++) {
		if (parse_node(&c->nodes[c->nnodes++], c->node_specs[i]))
			return usage_error("--node %s: give USER@HOST[:PORT] or NAME=USER@HOST[:PORT]", c->node_specs[i]);
	}
	return -1;
}

static int load_secrets(run_ctx *c)
{
	vz_ynode *y = NULL;
	vz_err e = { 0 };
	if (vz_yaml_load_file(&y, c->secrets_file, &e)) {
		fprintf(stderr, "vinz run: --secrets: %s\n", vz_err_msg(&e));
		return VZ_EXIT_USAGE;
	}
	c->secrets = y ? vz_ynode_to_json(y) : json_object();
	vz_ynode_free(y);
	if (!json_is_object(c->secrets)) {
		fprintf(stderr, "vinz run: --secrets %s: expected a mapping of secret name to its data\n", c->secrets_file);
		return VZ_EXIT_USAGE;
	}
	return -1;
}

/* Points .vinz/runs/latest at the run (only a convenience: failures are ignored). */
static void mark_latest(const run_ctx *c)
{
	char *runs = vz_xstrdup(c->rundir);
	char *slash = strrchr(runs, '/');
	if (!slash) {
		free(runs);
		return;
	}
	*slash = '\0';
	char *latest = vz_path_join(runs, "latest"), *tmp = vz_path_join(runs, ".latest.tmp");
	unlink(tmp);
	if (symlink(slash + 1, tmp) != 0 || rename(tmp, latest) != 0)
		unlink(tmp);
	free(latest);
	free(tmp);
	free(runs);
}

/* A new run directory .vinz/runs/<id> (with .vinz/.gitignore so git ignores it all). */
static int make_rundir(run_ctx *c, vz_err *e)
{
	char *dot = vz_path_join(c->repo.top, ".vinz");
	char *gi = vz_path_join(dot, ".gitignore");
	int rc = vz_mkdir_p(dot, 0755, e);
	struct stat st;
	if (!rc && stat(gi, &st) != 0)
		rc = vz_write_file_atomic(gi, "*\n", 2, 0644, e);
	/* <UTC time with ms>-<random>: sorts by start time, unique across concurrent runs */
	char id[64];
	int64_t now_ms = vz_wall_ms();
	time_t now = (time_t)(now_ms / 1000);
	struct tm tm;
	gmtime_r(&now, &tm);
	unsigned char rnd[2] = { 0 };
	vz_random(rnd, sizeof(rnd));
	size_t l = strftime(id, sizeof(id), "%Y%m%d-%H%M%S", &tm);
	snprintf(id + l, sizeof(id) - l, ".%03d-%02x%02x", (int)(now_ms % 1000), rnd[0], rnd[1]);
	char rel[128];
	snprintf(rel, sizeof(rel), "runs/%s", id);
	c->rundir = vz_path_join(dot, rel);
	if (!rc)
		rc = vz_mkdir_p(c->rundir, 0755, e);
	c->workdir = vz_path_join(c->rundir, "work");
	c->cache_root = vz_path_join(c->workdir, "cache");
	if (!rc)
		rc = vz_mkdir_p(c->cache_root, 0755, e);
	free(dot);
	free(gi);
	return rc;
}

static int run(int argc, char **argv)
{
	run_ctx c;
	memset(&c, 0, sizeof(c));
	json_t *graph = NULL;
	job *jobs = NULL;
	size_t njobs = 0;
	vz_merger *m = NULL;
	vz_merge_result mr = { 0 };
	vz_err e = { 0 };
	char *abs_key = NULL, *abs_kh = NULL;
	int ran = 0;
	int ex = parse_args(&c, argc, argv);
	if (ex >= 0)
		goto out;
	ex = VZ_EXIT_USAGE;
	if (c.secrets_file && (ex = load_secrets(&c)) >= 0)
		goto out;
	if (c.site_file && !(c.site = vz_cli_load_config(c.site_file))) {
		ex = VZ_EXIT_CONFIG;
		goto out;
	}
	if (vz_cli_init_libs()) {
		ex = VZ_EXIT_FAIL;
		goto out;
	}
	int tty = isatty(STDOUT_FILENO);
	const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
	c.view = run_view_new(tty, tty && !(nc && *nc) && !(term && strcmp(term, "dumb") == 0), c.verbose);
	c.date = (int64_t)time(NULL);
	ex = VZ_EXIT_USAGE;
	if (run_repo_open(&c.repo, ".", &e)) {
		fprintf(stderr, "vinz run: %s: run vinz run inside the repository whose jobs you want to run\n",
			vz_err_msg(&e));
		goto out;
	}
	/* files named on the command line are used by the build thread, which changes directory */
	if (c.key && c.key[0] != '/')
		c.key = abs_key = vz_path_join(c.repo.cwd, c.key);
	if (c.known_hosts && c.known_hosts[0] != '/')
		c.known_hosts = abs_kh = vz_path_join(c.repo.cwd, c.known_hosts);
	for (size_t i = 0; i < c.ncfg_specs; i++) {
		split_named(c.cfg_specs[i], &c.cfg[c.ncfg].name, &c.cfg[c.ncfg].dir);
		c.ncfg++;
	}
	for (size_t i = 0; i < c.ndir_specs; i++) {
		split_named(c.dir_specs[i], &c.dirs[c.ndirs].name, &c.dirs[c.ndirs].dir);
		c.ndirs++;
	}
	if (read_dotfile(&c, &e)) {
		fprintf(stderr, "vinz run: %s\n", vz_err_msg(&e));
		ex = VZ_EXIT_CONFIG;
		goto out;
	}
	if (!c.project)
		c.project = c.project_opt ? vz_xstrdup(c.project_opt) : base_name_of(c.repo.top);
	if (run_repo_base(&c.repo, c.base_opt, c.base, &c.base_name, &c.target, &e)) {
		fprintf(stderr, "vinz run: %s\n", vz_err_msg(&e));
		goto out;
	}
	if (c.branch_opt) {
		free(c.target);
		c.target = vz_xstrdup(c.branch_opt);
	}
	ex = VZ_EXIT_FAIL;
	if (make_rundir(&c, &e)) {
		fprintf(stderr, "vinz run: %s\n", vz_err_msg(&e));
		goto out;
	}
	/* the caches: each repository's objects borrowed, nothing fetched */
	c.cache = vz_workspace_cache_path(c.cache_root, c.repo.top);
	if (run_cache_seed(c.cache, c.repo.objects, &e)) {
		fprintf(stderr, "vinz run: %s\n", vz_err_msg(&e));
		goto out;
	}
	for (size_t i = 0; i < c.ncfg + c.ndirs; i++) {
		named_dir *d = i < c.ncfg ? &c.cfg[i] : &c.dirs[i - c.ncfg];
		if (i < c.ncfg && find_dir(c.cfg, i, d->name)) {
			fprintf(stderr, "vinz run: config project %s given twice\n", d->name);
			ex = VZ_EXIT_USAGE;
			goto out;
		}
		if (open_named(&c, d, &e)) {
			fprintf(stderr, "vinz run: %s (--config-project, --project-dir and .vinz.yaml name the work "
					"trees of clones)\n", vz_err_msg(&e));
			ex = VZ_EXIT_USAGE;
			goto out;
		}
	}
	/* the change: HEAD, plus the work tree as one more commit */
	vz_strlcpy(c.change, c.repo.head, sizeof(c.change));
	if (c.uncommitted) {
		size_t nch = 0;
		if (run_uncommitted(c.change, &nch, &c.repo, c.cache, ".vinz/", c.date, &e)) {
			fprintf(stderr, "vinz run: uncommitted changes: %s\n", vz_err_msg(&e));
			goto out;
		}
		if (nch)
			run_view_note(c.view, "uncommitted changes: %zu path%s, as commit %.12s", nch, nch == 1 ? "" : "s",
				      c.change);
		else
			run_view_note(c.view, "no uncommitted changes: running HEAD");
	}
	/* the merge the gate would do: the change onto the target branch */
	uint64_t tm0 = vz_mono_ms();
	if (vz_merger_open(&m, c.cache, &e)) {
		fprintf(stderr, "vinz run: %s\n", vz_err_msg(&e));
		goto out;
	}
	vz_merge_req mq = { VZ_MERGE_MERGE, c.base, c.change, c.base, c.date, 1 };
	if (vz_merger_apply(m, &mq, &mr, &e)) {
		fprintf(stderr, "vinz run: merging onto %s: %s\n", c.base_name, vz_err_msg(&e));
		goto out;
	}
	if (!mr.merged) {
		fprintf(stderr, "vinz run: %s does not merge onto %s (%.12s); conflicting paths:\n",
			c.uncommitted ? "the work tree" : "HEAD", c.base_name, c.base);
		for (size_t i = 0; i < mr.nconflicts; i++)
			fprintf(stderr, "  %s\n", mr.conflicts[i]);
		fprintf(stderr, "rebase or merge %s first; nothing was run\n", c.base_name);
		goto out;
	}
	vz_strlcpy(c.merged, mr.commit, sizeof(c.merged));
	run_view_note(c.view, "%s on %s (%.12s): merged as %.12s%s%s, %zu file%s changed (%llu ms)", c.project,
		      c.base_name, c.base, c.merged, mr.note ? ", " : "", mr.note ? mr.note : "", mr.nfiles,
		      mr.nfiles == 1 ? "" : "s", (unsigned long long)(vz_mono_ms() - tm0));
	/* the job graph */
	/* no file changed (HEAD is the base): no file information, so file matchers pass, as Zuul
	 * treats an item without files (a ref) */
	if ((ex = load_graph(&c, &graph, mr.nfiles ? (const char *const *)mr.files : NULL, mr.nfiles)) != VZ_EXIT_OK)
		goto out;
	ex = VZ_EXIT_USAGE;
	json_t *gj = json_object_get(graph, "jobs");
	njobs = json_array_size(gj);
	if (njobs > MAX_JOBS) {
		fprintf(stderr, "vinz run: %zu jobs (at most %d)\n", njobs, MAX_JOBS);
		goto out;
	}
	jobs = vz_xcalloc(njobs ? njobs : 1, sizeof(*jobs));
	for (size_t i = 0; i < njobs; i++) {
		jobs[i].j = json_array_get(gj, i);
		jobs[i].name = jstr(jobs[i].j, "name");
		json_t *v = json_object_get(json_object_get(jobs[i].j, "attributes"), "voting");
		jobs[i].voting = !json_is_false(v);
		jobs[i].selected = !c.job;
	}
	if (c.job) {
		job *j = find_job(jobs, njobs, c.job);
		if (!j) {
			size_t k;
			json_t *x;
			json_array_foreach(json_object_get(graph, "skipped"), k, x)
				if (strcmp(jstr(x, "name"), c.job) == 0) {
					printf("%s is skipped for this change: %s\n", c.job, jstr(x, "reason"));
					ex = VZ_EXIT_OK;
					goto out;
				}
			fprintf(stderr, "vinz run: no job %s in %s's %s pipeline on %s; jobs:", c.job, c.project, c.pipeline,
				c.target);
			for (size_t i = 0; i < njobs; i++)
				fprintf(stderr, " %s", jobs[i].name);
			fprintf(stderr, "\n");
			goto out;
		}
		if (c.with_deps)
			select_with_deps(jobs, njobs, j, 0);
		else
			j->selected = 1;
	}
	if (c.list) {
		print_list(graph, jobs, njobs);
		ex = VZ_EXIT_OK;
		goto out;
	}
	/* secrets: refused unless given */
	int refused = 0;
	for (size_t i = 0; i < njobs; i++) {
		if (!jobs[i].selected)
			continue;
		json_t *sec = job_secrets(jobs[i].j);
		const char *alias;
		json_t *sn;
		json_object_foreach(sec, alias, sn) {
			const char *name = json_string_value(sn);
			if (!c.secrets) {
				fprintf(stderr, "vinz run: job %s uses secret %s: vinz run does not decrypt secrets; give "
						"plaintext values with --secrets FILE (YAML: %s: {key: value})\n", jobs[i].name, name,
					name);
				refused = 1;
			} else if (!json_object_get(c.secrets, name)) {
				fprintf(stderr, "vinz run: job %s uses secret %s, which --secrets %s does not give\n",
					jobs[i].name, name, c.secrets_file);
				refused = 1;
			}
		}
		json_decref(sec);
	}
	if (refused)
		goto out;
	/* run in dependency order; a job whose dependency did not pass is skipped, as Zuul does */
	mark_latest(&c);
	ran = 1;
	vz_cli_signals();
	size_t left = 0;
	for (size_t i = 0; i < njobs; i++)
		left += jobs[i].selected;
	for (size_t round = 0; left > 0 && round <= njobs; round++) {
		for (size_t i = 0; i < njobs; i++) {
			job *jb = &jobs[i];
			if (!jb->selected || jb->result)
				continue;
			int ready = 1;
			const char *failed = NULL;
			size_t k;
			json_t *d;
			json_array_foreach(json_object_get(jb->j, "dependencies"), k, d) {
				job *dj = find_job(jobs, njobs, jstr(d, "name"));
				if (!dj || !dj->selected)
					continue; /* not in this run (soft, or --job without --with-deps) */
				if (!dj->result)
					ready = 0;
				else if (strcmp(dj->result, "SUCCESS") != 0)
					failed = dj->name;
			}
			if (failed || vz_cli_stop) {
				jb->result = "SKIPPED";
				if (failed)
					snprintf(jb->message, sizeof(jb->message), "dependency %s did not pass", failed);
				else
					snprintf(jb->message, sizeof(jb->message), "interrupted");
				run_view_job_end(c.view, jb->name, jb->result, jb->message, 0, jb->voting);
				left--;
				continue;
			}
			if (!ready)
				continue;
			run_job(&c, jb);
			left--;
		}
	}
	/* the summary */
	size_t w = 3;
	for (size_t i = 0; i < njobs; i++)
		if (jobs[i].selected && strlen(jobs[i].name) > w)
			w = strlen(jobs[i].name);
	printf("\n%-*s  %-14s %8s  %s\n", (int)w, "job", "result", "time", "log");
	ex = VZ_EXIT_OK;
	for (size_t i = 0; i < njobs; i++) {
		job *jb = &jobs[i];
		if (!jb->selected)
			continue;
		const char *r = jb->result ? jb->result : "SKIPPED";
		printf("%-*s  %s%-14s%s %7.1fs  %s%s\n", (int)w, jb->name, run_view_colour(c.view, r), r,
		       run_view_reset(c.view), (double)jb->ms / 1000.0, jb->log ? shown(jb->log) : "-",
		       jb->voting ? "" : "  (non-voting)");
		if (jb->voting && strcmp(r, "SUCCESS") != 0 && !(strcmp(r, "SKIPPED") == 0 && !jb->message[0]))
			ex = VZ_EXIT_FAIL;
	}
	size_t k;
	json_t *x;
	json_array_foreach(json_object_get(graph, "skipped"), k, x)
		printf("%-*s  %-14s %8s  %s\n", (int)w, jstr(x, "name"), "SKIPPED", "", jstr(x, "reason"));
	if (vz_cli_stop)
		ex = VZ_EXIT_FAIL;
out:
	if (c.rundir && !ran && !c.keep)
		vz_rm_rf(c.rundir, NULL); /* nothing ran (--list, errors): no run to keep */
	else if (c.workdir && !c.keep)
		vz_rm_rf(c.workdir, NULL);
	for (size_t i = 0; i < njobs; i++)
		free(jobs[i].log);
	free(jobs);
	json_decref(graph);
	vz_merge_result_clear(&mr);
	vz_merger_free(m);
	ctx_free(&c);
	free(abs_key);
	free(abs_kh);
	return ex;
}

const vz_cmd vz_cmd_run = {
	"run", "run this repository's jobs here or on a node, before you push",
	"usage: vinz run [--job NAME [--with-deps]] [--pipeline NAME] [--base REF] [--include-uncommitted]\n"
	"                [--config-project [NAME=]DIR]... [--project-dir NAME=DIR]...\n"
	"                [--node [NAME=]USER@HOST[:PORT]]... [--site FILE] [--key FILE] [--known-hosts FILE]\n"
	"                [-e KEY=VALUE]... [--secrets FILE] [--list] [--keep] [--verbose]\n\n"
	"Runs, in the current git work tree, the jobs the gate would run for it: HEAD merged onto the\n"
	"target branch by the executor's merger, the job graph frozen from the Zuul configuration for\n"
	"that branch, the pipeline and the files the change touches, the jobs in dependency order on the\n"
	"executor's playbook engine. Logs go to .vinz/runs/<id>/<job>/job-output.txt and .json.\n\n"
	"  -j, --job NAME            run only this job\n"
	"      --with-deps           with --job: the jobs it depends on first\n"
	"  -p, --pipeline NAME       the pipeline whose jobs run (default: check)\n"
	"  -b, --base REF            what the change is merged onto and compared with (default: the\n"
	"                            branch's upstream, else origin/HEAD)\n"
	"      --branch NAME         the target branch (default: the base's branch name)\n"
	"  -u, --include-uncommitted the work tree (tracked changes and untracked files git does not\n"
	"                            ignore) as one more commit; the index and work tree stay untouched\n"
	"  -c, --config-project [NAME=]DIR  a config project's repository (repeatable); default: those\n"
	"                            in .vinz.yaml; none: this repository configures itself\n"
	"  -d, --project-dir NAME=DIR  a local clone of a project a job requires (repeatable)\n"
	"      --project NAME        this repository's project name (default: .vinz.yaml's `project`,\n"
	"                            else the directory's name)\n"
	"  -n, --node [NAME=]USER@HOST[:PORT]  run on a node over SSH (NAME: only the nodeset's node\n"
	"                            NAME); default: this machine, in a disposable work dir\n"
	"      --site FILE           a site config whose nodes (by label) run the nodeset's nodes\n"
	"                            that no --node places\n"
	"  -k, --key FILE            SSH private key (default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa)\n"
	"      --known-hosts FILE    host keys checked (default: ~/.ssh/known_hosts)\n"
	"  -e KEY=VALUE              a variable over the job's vars and host-vars (repeatable)\n"
	"  -s, --secrets FILE        plaintext secrets, YAML {secret name: data}; without it jobs\n"
	"                            using secrets are refused\n"
	"  -l, --list                print the frozen job graph and run nothing\n"
	"      --keep                keep the work dir (and the workspaces in it)\n"
	"  -v, --verbose             print every log line\n\n"
	"On a terminal a live line shows each job, its current task and elapsed time (colours unless\n"
	"NO_COLOR is set); piped, plain lines. A summary table ends the run.\n"
	"\nexit: 0 every voting job passed (or --list), 1 a job failed, was skipped by a failed dependency\n"
	"      or the change does not merge, 2 usage (bad options, not in a work tree, no base, secrets\n"
	"      refused), 3 configuration errors (printed as FILE:LINE:COL: message)\n",
	run,
};
