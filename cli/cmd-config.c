/* vinz config: check Zuul configuration in work trees, and show the job graph it freezes for a
 * project's pipeline with each attribute's origin. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <git2.h>

#include "vz_cli.h"
#include "vz_secrets.h"
#include "vz_spec.h"
#include "vz_util.h"
#include "vz_zconf.h"
#include "vz_zconf_dir.h"

#define MAX_SOURCES 1000

extern const vz_cmd vz_cmd_config;

typedef struct sources {
	vz_zconf_source v[MAX_SOURCES];
	json_t *files[MAX_SOURCES];
	char *names[MAX_SOURCES], *branches[MAX_SOURCES], *prefixes[MAX_SOURCES], *conns[MAX_SOURCES];
	size_t n;
	vz_config *site;       /* --site: the site configuration */
	vz_secrets_store keys; /* --site: its state directory's project keys */
} sources;

static void sources_free(sources *s)
{
	for (size_t i = 0; i < s->n; i++) {
		json_decref(s->files[i]);
		free(s->names[i]);
		free(s->branches[i]);
		free(s->prefixes[i]);
		free(s->conns[i]);
	}
	s->n = 0;
	vz_config_free(s->site);
	s->site = NULL;
}

/* SPEC is [NAME[@BRANCH]=]DIR: NAME defaults to the directory's base name, BRANCH to the branch
 * checked out there (else master). */
static int add_source(sources *s, const char *spec, int trusted)
{
	if (s->n >= MAX_SOURCES) {
		fprintf(stderr, "vinz config: more than %d directories\n", MAX_SOURCES);
		return -1;
	}
	const char *eq = strchr(spec, '=');
	const char *dir = eq ? eq + 1 : spec;
	char *name = NULL, *branch = NULL;
	if (eq) {
		name = strndup(spec, (size_t)(eq - spec));
		char *at = name ? strchr(name, '@') : NULL;
		if (at) {
			*at = 0;
			branch = vz_xstrdup(at + 1);
		}
	} else {
		char *d = vz_xstrdup(dir);
		size_t l = strlen(d);
		while (l > 1 && d[l - 1] == '/')
			d[--l] = 0;
		const char *b = strrchr(d, '/');
		name = vz_xstrdup(b ? b + 1 : d);
		free(d);
	}
	if (!branch)
		branch = vz_zconf_dir_branch(dir);
	if (!branch)
		branch = vz_xstrdup("master");
	vz_err e = { 0 };
	json_t *files = NULL;
	if (vz_zconf_read_dir(&files, dir, &e)) {
		fprintf(stderr, "vinz config: %s\n", vz_err_msg(&e));
		free(name);
		free(branch);
		return -1;
	}
	size_t i = s->n++;
	s->names[i] = name;
	s->branches[i] = branch;
	s->files[i] = files;
	size_t dl = strlen(dir);
	s->prefixes[i] = malloc(dl + 2);
	if (!s->prefixes[i])
		return -1;
	memcpy(s->prefixes[i], dir, dl);
	s->prefixes[i][dl] = dl && dir[dl - 1] == '/' ? 0 : '/';
	s->prefixes[i][dl + 1] = 0;
	s->v[i] = (vz_zconf_source){ name, branch, trusted, files, s->prefixes[i], 0 };
	return 0;
}

/* ---- --site CONFIG --tenant NAME: a tenant of the site configuration ---- */

static const struct {
	const char *name;
	unsigned bit;
} type_bits[] = {
	{ "pipeline", VZ_ZC_PIPELINE }, { "job", VZ_ZC_JOB },	      { "project", VZ_ZC_PROJECT },
	{ "project-template", VZ_ZC_PROJECT_TEMPLATE }, { "nodeset", VZ_ZC_NODESET }, { "secret", VZ_ZC_SECRET },
	{ "semaphore", VZ_ZC_SEMAPHORE }, { "queue", VZ_ZC_QUEUE },   { "pragma", VZ_ZC_PRAGMA },
};

static unsigned type_mask(char **v, size_t n)
{
	unsigned m = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof(type_bits) / sizeof(type_bits[0]); k++)
			if (strcmp(v[i], type_bits[k].name) == 0)
				m |= type_bits[k].bit;
	return m;
}

static int push_source(sources *s, const vz_conf_tenant_project *tp, const vz_conf_connection *cn,
		       const char *branch, json_t *files, const char *prefix)
{
	if (s->n >= MAX_SOURCES) {
		json_decref(files);
		fprintf(stderr, "vinz config: the tenant has more than %d project branches\n", MAX_SOURCES);
		return -1;
	}
	size_t i = s->n++;
	vz_buf canon = VZ_BUF_INIT(4096);
	vz_buf_printf(&canon, "%s/%s", cn->canonical_hostname, tp->name);
	s->names[i] = vz_buf_detach(&canon);
	s->branches[i] = vz_xstrdup(branch);
	s->files[i] = files;
	s->prefixes[i] = vz_xstrdup(prefix);
	s->conns[i] = vz_xstrdup(tp->connection);
	unsigned types = tp->include ? type_mask(tp->include, tp->ninclude) : VZ_ZC_ALL;
	types &= ~type_mask(tp->exclude, tp->nexclude);
	/* 0 would mean "all" to vz_zconf_load; a project excluding everything gets an empty file set */
	if (!types) {
		json_decref(s->files[i]);
		s->files[i] = files = json_object();
	}
	s->v[i] = (vz_zconf_source){ s->names[i], s->branches[i], tp->config_project, s->files[i], s->prefixes[i],
				     types ? types : VZ_ZC_ALL, s->conns[i] };
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

#define MAX_BRANCHES 1000

/* A git repository's branches as Zuul reads them: a config project's load-branch or default
 * branch (HEAD), every branch of an untrusted project (sorted), each from its head commit
 * without a checkout. */
static int add_git_project(sources *s, const vz_conf_tenant_project *tp, const vz_conf_connection *cn, git_repository *repo)
{
	char *branches[MAX_BRANCHES];
	size_t nb = 0;
	int rc = 0;
	if (tp->config_project) {
		const char *b = tp->load_branch;
		git_reference *head = NULL;
		if (!b && git_repository_head(&head, repo) == 0 && git_reference_is_branch(head))
			branches[nb++] = vz_xstrdup(git_reference_shorthand(head));
		else if (!b && git_reference_lookup(&head, repo, "HEAD") == 0 && git_reference_symbolic_target(head) &&
			 vz_startswith(git_reference_symbolic_target(head), "refs/heads/"))
			branches[nb++] = vz_xstrdup(git_reference_symbolic_target(head) + 11); /* unborn HEAD */
		else
			branches[nb++] = vz_xstrdup(b ? b : "master");
		git_reference_free(head);
	} else {
		git_branch_iterator *it = NULL;
		git_reference *ref = NULL;
		git_branch_t type;
		if (git_branch_iterator_new(&it, repo, GIT_BRANCH_LOCAL) == 0) {
			while (git_branch_next(&ref, &type, it) == 0) {
				const char *name = NULL;
				if (nb < MAX_BRANCHES && git_branch_name(&name, ref) == 0)
					branches[nb++] = vz_xstrdup(name);
				git_reference_free(ref);
			}
			git_branch_iterator_free(it);
		}
		qsort(branches, nb, sizeof(branches[0]), cmp_str);
	}
	const char *gitdir = git_repository_path(repo);
	for (size_t i = 0; i < nb && rc == 0; i++) {
		json_t *files = NULL;
		vz_err e = { 0 };
		vz_buf ref = VZ_BUF_INIT(4096), prefix = VZ_BUF_INIT(4096);
		vz_buf_printf(&ref, "refs/heads/%s", branches[i]);
		vz_buf_printf(&prefix, "%s@%s/", tp->name, branches[i]); /* errors read NAME@BRANCH/zuul.yaml:L:C */
		if (vz_spec_read_config(&files, NULL, gitdir, vz_buf_cstr(&ref), 0, &e)) {
			fprintf(stderr, "vinz config: project %s branch %s (%s): %s\n", tp->name, branches[i], gitdir,
				vz_err_msg(&e));
			rc = -1;
		} else {
			rc = push_source(s, tp, cn, branches[i], files, vz_buf_cstr(&prefix));
		}
		vz_buf_free(&ref);
		vz_buf_free(&prefix);
	}
	for (size_t i = 0; i < nb; i++)
		free(branches[i]);
	return rc;
}

static int load_site(sources *s, const char *site, const char *tenant)
{
	s->site = vz_cli_load_config(site);
	if (!s->site)
		return VZ_EXIT_CONFIG;
	const vz_conf_tenant *t = vz_config_tenant(s->site, tenant);
	if (!t) {
		fprintf(stderr, "vinz config: %s has no tenant '%s'; tenants:", s->site->path, tenant);
		for (size_t i = 0; i < s->site->ntenants; i++)
			fprintf(stderr, " %s", s->site->tenants[i].name);
		fprintf(stderr, "%s\n", s->site->ntenants ? "" : " none");
		return VZ_EXIT_FAIL;
	}
	if (vz_cli_init_libs())
		return VZ_EXIT_FAIL;
	int rc = 0;
	for (size_t i = 0; i < t->nprojects && rc == 0; i++) {
		const vz_conf_tenant_project *tp = &t->projects[i];
		const vz_conf_connection *cn = vz_config_connection(s->site, tp->connection);
		if (!cn->baseurl || strstr(cn->baseurl, "://") || strchr(cn->baseurl, '@')) {
			fprintf(stderr, "vinz config: connection '%s' is remote (%s); vinz config reads the repositories "
					"of a local baseurl only\n", cn->name, cn->baseurl ? cn->baseurl : "no baseurl");
			rc = -1;
			break;
		}
		/* BASEURL/NAME, else BASEURL/NAME.git: a git repository (bare or not) is read at its
		 * branch heads; a plain directory as a work tree */
		char *path = vz_path_join(cn->baseurl, tp->name), *path_git = NULL;
		struct stat st;
		if (stat(path, &st) != 0) {
			vz_buf b = VZ_BUF_INIT(8192);
			vz_buf_printf(&b, "%s.git", path);
			path_git = vz_buf_detach(&b);
			if (path_git && stat(path_git, &st) == 0) {
				free(path);
				path = path_git;
				path_git = NULL;
			}
		}
		git_repository *repo = NULL;
		if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "vinz config: project %s of tenant %s: no repository at %s(.git)\n", tp->name,
				tenant, path);
			rc = -1;
		} else if (git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0) {
			rc = add_git_project(s, tp, cn, repo);
			git_repository_free(repo);
		} else {
			vz_err e = { 0 };
			json_t *files = NULL;
			char *branch = vz_zconf_dir_branch(path);
			size_t pl = strlen(path);
			char *prefix = malloc(pl + 2);
			if (prefix) {
				memcpy(prefix, path, pl);
				prefix[pl] = '/';
				prefix[pl + 1] = 0;
			}
			if (!prefix || vz_zconf_read_dir(&files, path, &e)) {
				fprintf(stderr, "vinz config: %s\n", vz_err_msg(&e));
				rc = -1;
			} else {
				rc = push_source(s, tp, cn, branch ? branch : tp->load_branch ? tp->load_branch : "master", files,
						 prefix);
			}
			free(prefix);
			free(branch);
		}
		free(path);
		free(path_git);
	}
	vz_cli_cleanup_libs();
	return rc ? VZ_EXIT_FAIL : 0;
}

/* Keys are stored per connection under the project's name there (Zuul's key store); the layout
 * knows projects by canonical name (CANONICAL_HOSTNAME/NAME). */
static int site_key(struct vz_secrets_key **out, void *ctx, const char *connection, const char *project, vz_err *e)
{
	sources *s = ctx;
	const vz_conf_connection *cn = vz_config_connection(s->site, connection);
	size_t hl = cn ? strlen(cn->canonical_hostname) : 0;
	if (cn && strncmp(project, cn->canonical_hostname, hl) == 0 && project[hl] == '/')
		project += hl + 1;
	return vz_secrets_key_lookup(out, &s->keys, connection, project, e);
}

/* Parses the options both subcommands share; returns a layout (errors printed) or NULL. */
static int load(vz_zconf **z, const vz_cmd *cmd, sources *s, const char *site, const char *tenant, char **trusted,
		size_t ntrusted, char **dirs, size_t ndirs)
{
	vz_err e = { 0 };
	int rc;
	*z = NULL;
	if (site) {
		if (!tenant || ntrusted || ndirs) {
			fprintf(stderr, "vinz config: --site needs --tenant NAME and no directories\n");
			return VZ_EXIT_USAGE;
		}
		rc = load_site(s, site, tenant);
		if (rc)
			return rc;
		/* secrets decrypt with the projects' keys when they exist; a check never makes keys */
		s->keys = (vz_secrets_store){ s->site->state_dir, 0 };
		vz_zconf_options o = { site_key, s };
		rc = vz_zconf_load_opts(z, s->v, s->n, &o, &e);
		if (rc && !*z) {
			fprintf(stderr, "vinz config: %s\n", vz_err_msg(&e));
			return VZ_EXIT_FAIL;
		}
		return 0;
	}
	if (tenant) {
		if (ntrusted || ndirs) {
			fprintf(stderr, "vinz config: give either --tenant or directories, not both\n");
			return VZ_EXIT_USAGE;
		}
		rc = vz_zconf_load_tenant(z, NULL, tenant, &e);
		if (rc && !*z) {
			fprintf(stderr, "%s\n", vz_err_msg(&e));
			return VZ_EXIT_FAIL;
		}
		return 0;
	}
	for (size_t i = 0; i < ntrusted; i++)
		if (add_source(s, trusted[i], 1))
			return VZ_EXIT_FAIL;
	for (size_t i = 0; i < ndirs; i++)
		if (add_source(s, dirs[i], ntrusted == 0 && i == 0))
			return VZ_EXIT_FAIL;
	if (s->n == 0) {
		if (add_source(s, ".", 1))
			return VZ_EXIT_FAIL;
	}
	rc = vz_zconf_load(z, s->v, s->n, &e);
	if (rc && !*z) {
		fprintf(stderr, "vinz config: %s\n", vz_err_msg(&e));
		return VZ_EXIT_FAIL;
	}
	(void)cmd;
	return 0;
}

static int print_errors(const vz_zconf *z)
{
	size_t n = vz_zconf_nerrors(z), i;
	const char *m;
	for (i = 0; (m = vz_zconf_error(z, i)); i++)
		fprintf(stderr, "%s\n", m);
	if (n > i)
		fprintf(stderr, "... and %zu more errors\n", n - i);
	return n ? 1 : 0;
}

static int run_check(int argc, char **argv)
{
	static const struct option opts[] = { { "tenant", required_argument, NULL, 'T' },
					      { "config-project", required_argument, NULL, 't' },
					      { "site", required_argument, NULL, 's' },
					      { NULL, 0, NULL, 0 } };
	const char *tenant = NULL, *site = NULL;
	char *trusted[64];
	size_t ntrusted = 0;
	int o;
	while ((o = getopt_long(argc, argv, "T:t:s:", opts, NULL)) != -1) {
		switch (o) {
		case 'T': tenant = optarg; break;
		case 's': site = optarg; break;
		case 't':
			if (ntrusted < 64)
				trusted[ntrusted++] = optarg;
			break;
		default: vz_cli_usage(&vz_cmd_config, 1); return VZ_EXIT_USAGE;
		}
	}
	sources s = { 0 };
	vz_zconf *z = NULL;
	int ex = load(&z, &vz_cmd_config, &s, site, tenant, trusted, ntrusted, argv + optind, (size_t)(argc - optind));
	if (ex == 0) {
		vz_zconf_check(z);
		ex = print_errors(z) ? VZ_EXIT_FAIL : VZ_EXIT_OK;
		if (ex == VZ_EXIT_OK)
			printf("configuration OK\n");
	}
	vz_zconf_free(z);
	sources_free(&s);
	return ex;
}

static void print_value(const char *key, json_t *v, json_t *from)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
	char *f = json_is_string(from) ? strdup(json_string_value(from)) : json_dumps(from, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s && strlen(s) > 200)
		memcpy(s + 190, " ...", 5); /* long values are cut for the terminal; --json has them whole */
	printf("    %-22s %s", key, s ? s : "?");
	if (from)
		printf("   <- %s", f ? f : "?");
	printf("\n");
	free(s);
	free(f);
}

static void print_graph(json_t *g)
{
	printf("%s %s %s%s%s\n", json_string_value(json_object_get(g, "project")),
	       json_string_value(json_object_get(g, "branch")), json_string_value(json_object_get(g, "pipeline")),
	       json_is_true(json_object_get(g, "fail-fast")) ? " (fail-fast)" : "",
	       json_is_true(json_object_get(g, "debug")) ? " (debug)" : "");
	size_t i, k;
	json_t *j, *x;
	json_array_foreach(json_object_get(g, "jobs"), i, j) {
		printf("  job %s\n", json_string_value(json_object_get(j, "name")));
		json_t *deps = json_object_get(j, "dependencies");
		if (json_array_size(deps)) {
			printf("    %-22s", "depends on");
			json_array_foreach(deps, k, x)
				printf(" %s%s", json_string_value(json_object_get(x, "name")),
				       json_is_true(json_object_get(x, "soft")) ? " (soft)" : "");
			printf("\n");
		}
		json_array_foreach(json_object_get(j, "variants"), k, x)
			printf("    %-22s %s\n", k ? "" : "variants", json_string_value(x));
		const char *key;
		json_t *v;
		json_t *from = json_object_get(j, "from");
		json_object_foreach(json_object_get(j, "attributes"), key, v)
			print_value(key, v, json_object_get(from, key));
		json_t *ns = json_object_get(j, "nodeset");
		if (!json_is_null(ns))
			print_value("(nodeset)", ns, NULL);
		json_t *pbs = json_object_get(j, "playbooks");
		static const char *const names[] = { "pre-run", "run", "post-run", "cleanup-run" };
		for (int p = 0; p < 4; p++)
			json_array_foreach(json_object_get(pbs, names[p]), k, x) {
				printf("    %-22s %s:%s", p ? (k ? "" : names[p]) : (k ? "" : names[p]),
				       json_string_value(json_object_get(x, "project")), json_string_value(json_object_get(x, "path")));
				if (json_array_size(json_object_get(x, "secrets")))
					printf(" [secrets: %zu]", json_array_size(json_object_get(x, "secrets")));
				printf("   <- %s\n", json_string_value(json_object_get(x, "from")));
			}
	}
	json_array_foreach(json_object_get(g, "skipped"), i, j)
		printf("  skipped %s: %s\n", json_string_value(json_object_get(j, "name")),
		       json_string_value(json_object_get(j, "reason")));
}

static int run_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 'T' },  { "config-project", required_argument, NULL, 't' },
		{ "project", required_argument, NULL, 'p' }, { "pipeline", required_argument, NULL, 'P' },
		{ "branch", required_argument, NULL, 'b' },  { "file", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },	     { "site", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 }
	};
	const char *tenant = NULL, *project = NULL, *pipeline = NULL, *branch = NULL, *site = NULL;
	char *trusted[64];
	const char *files[256];
	size_t ntrusted = 0, nfiles = 0;
	int json = 0, o;
	while ((o = getopt_long(argc, argv, "T:t:p:P:b:f:js:", opts, NULL)) != -1) {
		switch (o) {
		case 'T': tenant = optarg; break;
		case 's': site = optarg; break;
		case 't':
			if (ntrusted < 64)
				trusted[ntrusted++] = optarg;
			break;
		case 'p': project = optarg; break;
		case 'P': pipeline = optarg; break;
		case 'b': branch = optarg; break;
		case 'f':
			if (nfiles < 256)
				files[nfiles++] = optarg;
			break;
		case 'j': json = 1; break;
		default: vz_cli_usage(&vz_cmd_config, 1); return VZ_EXIT_USAGE;
		}
	}
	if (!project || !pipeline) {
		fprintf(stderr, "vinz config show: --project and --pipeline are required\n");
		return VZ_EXIT_USAGE;
	}
	sources s = { 0 };
	vz_zconf *z = NULL;
	int ex = load(&z, &vz_cmd_config, &s, site, tenant, trusted, ntrusted, argv + optind, (size_t)(argc - optind));
	if (ex)
		goto out;
	if (print_errors(z)) {
		ex = VZ_EXIT_FAIL;
		goto out;
	}
	if (!branch) /* the branch the project's directory has checked out (first listed for --site) */
		for (size_t i = 0; i < s.n && !branch; i++)
			if (strcmp(s.names[i], project) == 0 ||
			    (strchr(s.names[i], '/') && strcmp(strchr(s.names[i], '/') + 1, project) == 0))
				branch = s.branches[i];
	vz_zconf_item it = { project, branch ? branch : "master", pipeline, nfiles ? files : NULL, nfiles };
	json_t *g = NULL;
	vz_err e = { 0 };
	if (vz_zconf_freeze(&g, z, &it, &e)) {
		fprintf(stderr, "%s\n", vz_err_msg(&e));
		ex = VZ_EXIT_FAIL;
		goto out;
	}
	if (json) {
		json_dumpf(g, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else
		print_graph(g);
	json_decref(g);
out:
	vz_zconf_free(z);
	sources_free(&s);
	return ex;
}

static int run(int argc, char **argv)
{
	if (argc < 2) {
		vz_cli_usage(&vz_cmd_config, 1);
		return VZ_EXIT_USAGE;
	}
	if (strcmp(argv[1], "check") == 0)
		return run_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return run_show(argc - 1, argv + 1);
	vz_cli_usage(&vz_cmd_config, 1);
	return VZ_EXIT_USAGE;
}

const vz_cmd vz_cmd_config = {
	"config", "check Zuul configuration; show the job graph it freezes",
	"usage: vinz config check [--config-project SPEC]... [SPEC]...\n"
	"       vinz config check --tenant FILE\n"
	"       vinz config check --site CONFIG --tenant NAME\n"
	"       vinz config show --project P --pipeline N [--branch B] [--file PATH]... [--json]\n"
	"                        (SPEC... | --tenant FILE | --site CONFIG --tenant NAME)\n\n"
	"Reads Zuul's configuration language (zuul.yaml, zuul.d/, .zuul.yaml, .zuul.d/, the first\n"
	"present) from repository work trees. SPEC is [NAME[@BRANCH]=]DIR: the project's name (default:\n"
	"the directory's name) and branch (default: the branch checked out, else master). Config\n"
	"projects (trusted) are those given with --config-project; without any, the first SPEC is one.\n"
	"The rest are untrusted projects, loaded in the order given. A --tenant FILE names them instead\n"
	"(docs/zuul-config.md). With --site, --tenant NAMEs a tenant of the site configuration's\n"
	"tenants: its projects are read from the repositories under their connection's baseurl, every\n"
	"branch at its head (a config project: its default branch or load-branch) without a checkout,\n"
	"and secrets are decrypted with the projects' keys in its state_dir when they exist.\n\n"
	"check   loads everything, freezes every project's pipelines on its branch, and prints each\n"
	"        error as FILE:LINE:COL: message. Exit 0 when valid, 1 when not.\n"
	"show    prints the job graph frozen for an item of project P on branch B in pipeline N\n"
	"        changing the given files (none: every file matcher passes), each job's effective\n"
	"        attributes and the file:line each came from. Secret values are never shown.\n\n"
	"  -t, --config-project SPEC  a trusted config project\n"
	"  -T, --tenant FILE|NAME     a tenant file listing the projects; with --site, a tenant name\n"
	"  -s, --site CONFIG          the site configuration whose tenants: section is read\n"
	"  -p, --project P            (show) the project, canonical or short name\n"
	"  -P, --pipeline N           (show) the pipeline\n"
	"  -b, --branch B             (show) the branch\n"
	"  -f, --file PATH            (show) a changed file (repeatable)\n"
	"  -j, --json                 (show) the graph as JSON\n"
	"\nexit: 0, 1 configuration errors, 2 usage, 3 invalid site configuration\n",
	run,
};
