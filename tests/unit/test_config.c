/* Unit tests for vz_config: the example configs load to the expected values, defaults, relative
 * paths, and every class of error with its exact file:line:col, all collected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vz_config.h"
#include "vz_util.h"

#ifndef VZ_SOURCE_DIR
#define VZ_SOURCE_DIR "."
#endif
#define FIXTURES VZ_SOURCE_DIR "/tests/fixtures/config"

static vz_config *parse_ok(const char *doc, const char *fname)
{
	vz_config *c = NULL;
	vz_buf d = VZ_BUF_INIT(1 << 20);
	vz_err e = {0};
	int rc = vz_config_parse(&c, doc, strlen(doc), fname, &d, &e);
	if (rc != 0)
		fail_msg("config failed: %s", vz_buf_cstr(&d));
	assert_int_equal(d.len, 0);
	vz_buf_free(&d);
	return c;
}

static void test_farm_example(void **state)
{
	(void)state;
	vz_config *c = NULL;
	vz_buf d = VZ_BUF_INIT(1 << 20);
	vz_err e = {0};
	char *dir = realpath(FIXTURES, NULL);
	assert_non_null(dir);
	int rc = vz_config_load(&c, FIXTURES "/farm.yaml", &d, &e);
	if (rc)
		fail_msg("%s", vz_buf_cstr(&d));
	char *want = vz_path_join(dir, "farm.yaml");
	assert_string_equal(c->path, want);
	free(want);
	assert_string_equal(c->dir, dir);
	assert_string_equal(c->state_dir, "/var/lib/vinz");
	assert_string_equal(c->log_level, "warn");
	assert_string_equal(c->scheduler.listen, "tcp://0.0.0.0:7400");
	assert_string_equal(c->scheduler.admin, "ipc:///run/vinz/admin.sock");
	assert_int_equal(c->scheduler.lease_ms, 20000);
	assert_int_equal(c->scheduler.heartbeat_ms, 500);
	assert_string_equal(c->executor.name, "exec-1");
	assert_string_equal(c->executor.scheduler, "tcp://ci.example.org:7400");
	assert_int_equal(c->executor.capacity, 16);
	assert_int_equal(c->executor.nlabels, 2);
	assert_string_equal(c->executor.labels[1], "fedora-40");
	assert_string_equal(c->executor.work_dir, "/srv/vinz/work");
	assert_string_equal(c->scheduler.curve_key, "/etc/vinz/scheduler.key");
	assert_string_equal(c->scheduler.curve_executors, "/etc/vinz/executors.keys");
	assert_string_equal(c->executor.curve_key, "/etc/vinz/exec-1.key");
	assert_string_equal(c->executor.scheduler_key, "/etc/vinz/scheduler.key.pub");

	assert_int_equal(c->nconnections, 1);
	const vz_conf_connection *cn = vz_config_connection(c, "review");
	assert_non_null(cn);
	assert_string_equal(cn->driver, "git");
	assert_string_equal(cn->baseurl, "https://git.example.org/r");
	assert_string_equal(cn->canonical_hostname, "git.example.org");

	assert_int_equal(c->nnodes, 2);
	const vz_conf_node *n = vz_config_node(c, "jammy-1");
	assert_non_null(n);
	assert_string_equal(n->connection, "ssh"); /* a host implies ssh */
	assert_string_equal(n->host, "10.0.0.11");
	assert_int_equal(n->port, 22);
	assert_string_equal(n->user, "ci");
	char *key = vz_path_join(dir, "keys/ci_ed25519");
	assert_string_equal(n->key, key);
	free(key);
	assert_null(n->host_key);
	assert_int_equal(n->max_parallel, 4);
	n = vz_config_node(c, "f40-1");
	assert_int_equal(n->port, 2222);
	assert_string_equal(n->key, "/etc/vinz/ci_ed25519");
	assert_null(n->known_hosts);
	assert_true(vz_startswith(n->host_key, "f40-1.example.org ssh-ed25519 "));
	assert_int_equal(n->nlabels, 1);
	assert_int_equal(n->max_parallel, 1);

	assert_int_equal(c->npipelines, 2);
	assert_string_equal(vz_config_pipeline(c, "check")->manager, "independent");
	assert_int_equal(c->njobs, 2);
	const vz_conf_job *j = vz_config_job(c, "build");
	assert_int_equal(j->nrun, 2);
	assert_string_equal(j->run[0], "./configure");
	assert_string_equal(j->run[1], "make -j8");
	assert_string_equal(j->label, "ubuntu-jammy");
	assert_int_equal(j->timeout, 3600);
	assert_int_equal(j->attempts, 2);
	assert_int_equal(j->voting, 1);
	j = vz_config_job(c, "build-fedora");
	assert_int_equal(j->nrun, 1);
	assert_string_equal(j->run[0], "make -j8");
	assert_int_equal(j->timeout, 1800);
	assert_int_equal(j->attempts, 3);
	assert_int_equal(j->voting, 0);

	const vz_conf_project *p = vz_config_project(c, "vinz");
	assert_non_null(p);
	assert_string_equal(p->connection, "review");
	assert_string_equal(p->default_branch, "main");
	assert_int_equal(p->npipelines, 2);
	assert_string_equal(p->pipelines[0].pipeline, "check");
	assert_int_equal(p->pipelines[0].njobs, 2);
	assert_string_equal(p->pipelines[0].jobs[1], "build-fedora");
	assert_string_equal(p->pipelines[1].pipeline, "gate");
	assert_int_equal(p->pipelines[1].njobs, 1);

	assert_null(vz_config_node(c, "nope"));
	assert_null(vz_config_job(c, NULL));
	assert_null(vz_config_project(NULL, "vinz"));
	vz_config_free(c);
	vz_buf_free(&d);
	free(dir);
}

static void test_embedded_example(void **state)
{
	(void)state;
	vz_config *c = NULL;
	vz_err e = {0};
	char *dir = realpath(FIXTURES, NULL);
	assert_int_equal(vz_config_load(&c, FIXTURES "/embedded.yaml", NULL, &e), 0);
	char *sd = vz_path_join(dir, "state");
	assert_string_equal(c->state_dir, sd);
	char want[4096];
	snprintf(want, sizeof(want), "ipc://%s/admin.sock", sd); /* relative ipc path resolved */
	assert_string_equal(c->scheduler.admin, want);
	snprintf(want, sizeof(want), "%s/executor", sd);
	assert_string_equal(c->executor.work_dir, want);
	assert_string_equal(c->executor.scheduler, "inproc://executors"); /* = listen */
	char *repos = vz_path_join(dir, "repos");
	assert_string_equal(vz_config_connection(c, "local-git")->baseurl, repos);
	assert_string_equal(vz_config_connection(c, "local-git")->canonical_hostname, "local-git");
	assert_string_equal(vz_config_node(c, "here")->connection, "local");
	assert_string_equal(vz_config_project(c, "demo")->default_branch, "master");
	assert_int_equal(vz_config_job(c, "lint")->voting, 0);
	vz_config_free(c);
	free(repos);
	free(sd);
	free(dir);
}

static void test_defaults(void **state)
{
	(void)state;
	static const char *const docs[] = {"", "# nothing\n", "scheduler:\nexecutor: ~\n"};
	char host[256] = "";
	gethostname(host, sizeof(host));
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		vz_config *c = parse_ok(docs[i], "/nonexistent/site/vinz.yaml");
		assert_string_equal(c->path, "/nonexistent/site/vinz.yaml");
		assert_string_equal(c->dir, "/nonexistent/site");
		assert_string_equal(c->state_dir, "/nonexistent/site/state");
		assert_string_equal(c->log_level, "info");
		assert_string_equal(c->scheduler.listen, "tcp://127.0.0.1:7400");
		assert_string_equal(c->scheduler.admin, "ipc:///nonexistent/site/state/admin.sock");
		assert_int_equal(c->scheduler.lease_ms, 15000);
		assert_int_equal(c->scheduler.heartbeat_ms, 1000);
		assert_string_equal(c->executor.name, host);
		assert_string_equal(c->executor.scheduler, "tcp://127.0.0.1:7400");
		assert_int_equal(c->executor.capacity, 4);
		assert_int_equal(c->executor.nlabels, 0);
		assert_string_equal(c->executor.work_dir, "/nonexistent/site/state/executor");
		assert_int_equal(c->nnodes + c->njobs + c->nprojects + c->npipelines + c->nconnections, 0);
		vz_config_free(c);
	}
	/* a state_dir moves the admin socket and work_dir with it; a wildcard listen is not dialled */
	vz_config *c = parse_ok("state_dir: /srv/v\nscheduler: {listen: 'tcp://*:9000', curve_key: s.key, curve_executors: e}\n"
				"nodes:\n  - name: n\n    host: h\n    key: k\n    host_key: h ssh-ed25519 AAAA\n",
				"/x/y.yaml");
	assert_string_equal(c->scheduler.admin, "ipc:///srv/v/admin.sock");
	assert_string_equal(c->executor.work_dir, "/srv/v/executor");
	assert_string_equal(c->executor.scheduler, "tcp://127.0.0.1:9000");
	assert_string_equal(c->nodes[0].connection, "ssh");
	assert_int_equal(c->nodes[0].port, 22);
	assert_non_null(c->nodes[0].user); /* the executor's user */
	assert_string_equal(c->nodes[0].key, "/x/k");
	vz_config_free(c);
	vz_config_free(NULL);
}

static void test_relative_paths(void **state)
{
	(void)state;
	/* a file that does not exist: its directory as given */
	vz_config *c = parse_ok("state_dir: st\nexecutor: {work_dir: ../w}\n"
				"connections: [{name: g, baseurl: repos}, {name: h, baseurl: 'file:///r'},"
				" {name: i, baseurl: 'git@host:r'}]\n"
				"nodes:\n  - {name: n, host: h, key: keys/k, known_hosts: kh}\n",
				"conf/dir/vinz.yaml");
	assert_string_equal(c->dir, "conf/dir");
	assert_string_equal(c->state_dir, "conf/dir/st");
	assert_string_equal(c->executor.work_dir, "conf/dir/../w");
	assert_string_equal(c->connections[0].baseurl, "conf/dir/repos");
	assert_string_equal(c->connections[1].baseurl, "file:///r");
	assert_string_equal(c->connections[2].baseurl, "git@host:r");
	assert_string_equal(c->nodes[0].key, "conf/dir/keys/k");
	assert_string_equal(c->nodes[0].known_hosts, "conf/dir/kh");
	vz_config_free(c);
	/* a connection's credential files resolve like the node keys; names stay as given */
	c = parse_ok("connections:\n  - name: r\n    baseurl: 'ssh://git@g:2222/r'\n    user: ci\n"
		     "    ssh_key: keys/git\n    known_hosts: /etc/vinz/kh\n  - name: h\n"
		     "    baseurl: 'https://g/r'\n    user: bot\n    password_file: secrets/pw\n"
		     "    ca_file: ca.pem\n  - name: e\n    baseurl: 'https://g/e'\n    user: bot\n"
		     "    password_env: GIT_TOKEN\n", "conf/dir/vinz.yaml");
	assert_string_equal(c->connections[0].user, "ci");
	assert_string_equal(c->connections[0].ssh_key, "conf/dir/keys/git");
	assert_string_equal(c->connections[0].known_hosts, "/etc/vinz/kh");
	assert_null(c->connections[0].password_file);
	assert_string_equal(c->connections[1].password_file, "conf/dir/secrets/pw");
	assert_string_equal(c->connections[1].ca_file, "conf/dir/ca.pem");
	assert_null(c->connections[1].password_env);
	assert_string_equal(c->connections[2].password_env, "GIT_TOKEN");
	assert_null(c->connections[2].ssh_key);
	vz_config_free(c);
	c = parse_ok("state_dir: st\n", "vinz.yaml");
	assert_string_equal(c->dir, ".");
	assert_string_equal(c->state_dir, "./st");
	vz_config_free(c);

	/* a file that exists: the real directory, through a relative name */
	char tmpl[] = "/tmp/vz_config_test.XXXXXX";
	char *tmp = mkdtemp(tmpl);
	assert_non_null(tmp);
	char *f = vz_path_join(tmp, "site.yaml");
	const char *doc = "state_dir: st\n";
	vz_err e = {0};
	assert_int_equal(vz_write_file_atomic(f, doc, strlen(doc), 0644, &e), 0);
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmp), 0);
	assert_int_equal(vz_config_load(&c, "./site.yaml", NULL, &e), 0);
	assert_int_equal(chdir(cwd), 0);
	char *real = realpath(tmp, NULL);
	char *st = vz_path_join(real, "st");
	assert_string_equal(c->dir, real);
	assert_string_equal(c->state_dir, st);
	vz_config_free(c);
	free(st);

	/* a symlinked file: paths stay next to the link */
	char *ldir = vz_path_join(tmp, "link");
	char *lf = vz_path_join(ldir, "site.yaml");
	assert_int_equal(mkdir(ldir, 0755), 0);
	assert_int_equal(symlink(f, lf), 0);
	assert_int_equal(vz_config_load(&c, lf, NULL, &e), 0);
	char *rl = vz_path_join(real, "link");
	assert_string_equal(c->dir, rl);
	char *want = vz_path_join(rl, "site.yaml");
	assert_string_equal(c->path, want);
	st = vz_path_join(rl, "st");
	assert_string_equal(c->state_dir, st);
	vz_config_free(c);
	free(st);
	free(want);
	free(rl);
	unlink(lf);
	rmdir(ldir);
	free(lf);
	free(ldir);

	free(real);
	unlink(f);
	rmdir(tmp);
	free(f);

	assert_int_equal(vz_config_load(&c, "/nonexistent/vinz.yaml", NULL, &e), VZ_ENOTFOUND);
	assert_null(c);
}

/* A valid base the error rows extend; the line numbers below count from it. */
#define BASE                                                                             \
	"connections:\n"                         /* 1 */                                 \
	"  - name: gh\n"                         /* 2 */                                 \
	"    baseurl: /srv/git\n"                /* 3 */                                 \
	"nodes:\n"                               /* 4 */                                 \
	"  - name: n1\n"                         /* 5 */                                 \
	"    host: 10.0.0.1\n"                   /* 6 */                                 \
	"    key: /k\n"                          /* 7 */                                 \
	"    known_hosts: /kh\n"                 /* 8 */                                 \
	"    labels: [linux]\n"                  /* 9 */                                 \
	"pipelines:\n"                           /* 10 */                                \
	"  - name: check\n"                      /* 11 */                                \
	"jobs:\n"                                /* 12 */                                \
	"  - name: unit\n"                       /* 13 */                                \
	"    run: make check\n"                  /* 14 */                                \
	"    label: linux\n"                     /* 15 */

static const struct {
	const char *doc;
	const char *first; /* the exact first error */
} errors[] = {
	/* unknown keys, with the allowed ones named */
	{"colour: red\n", "f.yaml:1:1: unknown key 'colour' in the site configuration; allowed keys: "
	 "state_dir, log_level, scheduler, executor, connections, nodes, pipelines, jobs, projects, tenants"},
	{"scheduler: {listen: 'tcp://127.0.0.1:1', lesae: 3}\n", "f.yaml:1:42: unknown key 'lesae' in "
	 "'scheduler'; allowed keys: listen, admin, lease, heartbeat, curve_key, curve_executors"},
	/* CURVE: needed off the host, in pairs */
	{"scheduler: {listen: 'tcp://10.0.0.1:7400'}\n", "f.yaml:1:21: scheduler 'listen' tcp://10.0.0.1:7400 can "
	 "be reached from other hosts: set 'curve_key' and 'curve_executors' (make keys with vinz keygen), or listen "
	 "on inproc://, ipc:// or loopback"},
	{"scheduler: {curve_key: k}\n", "f.yaml:1:24: scheduler 'curve_key' and 'curve_executors' go together: the "
	 "scheduler's key pair and the list of executor public keys it admits"},
	{"executor: {scheduler: 'tcp://ci.example.org:7400'}\n", "f.yaml:1:23: executor 'scheduler' "
	 "tcp://ci.example.org:7400 is on another host: set 'curve_key' and 'scheduler_key' (make keys with vinz "
	 "keygen), or connect over inproc://, ipc:// or loopback"},
	{"executor: {scheduler_key: k}\n", "f.yaml:1:27: executor 'curve_key' and 'scheduler_key' go together: the "
	 "executor's key pair and the scheduler's public key it accepts"},
	{BASE "    colour: red\n", "f.yaml:16:5: unknown key 'colour' in job 'unit'; allowed keys: "
	 "name, run, label, timeout, attempts, voting"},
	{BASE "projects:\n  - name: p\n    chekc: {jobs: [unit]}\n", "f.yaml:18:5: unknown key "
	 "'chekc' in project 'p'; allowed keys: name, connection, default_branch, check (a pipeline "
	 "name: define the pipeline under 'pipelines')"},
	{BASE "projects:\n  - name: p\n    check: {jobs: [unit], when: now}\n", "f.yaml:18:27: "
	 "unknown key 'when' in pipeline 'check' of project 'p'; allowed keys: jobs"},
	/* wrong types */
	{"state_dir: [a]\n", "f.yaml:1:12: 'state_dir' must be a string, not a list"},
	{"scheduler: tcp://x\n", "f.yaml:1:12: 'scheduler' must be a mapping, not a scalar"},
	{"nodes: {name: x}\n", "f.yaml:1:8: 'nodes' must be a list of mappings (each starting with "
	 "'- name: ...'), not a mapping"},
	{"nodes: [x]\n", "f.yaml:1:9: each entry of 'nodes' must be a mapping, not a scalar"},
	{"executor: {labels: a}\n", "f.yaml:1:20: 'labels' must be a list of strings, not a scalar"},
	{"executor: {labels: [a, [b]]}\n", "f.yaml:1:24: each item of 'labels' must be a string, "
	 "not a list"},
	{BASE "    voting: maybe\n", "f.yaml:16:13: 'voting' must be true or false, not 'maybe'"},
	{BASE "    timeout: '60'\n", "f.yaml:16:14: 'timeout' must be an integer from 1 to 86400, "
	 "not '60'"},
	{"- a\n", "f.yaml:1:1: the site configuration must be a mapping of keys (state_dir, "
	 "scheduler, nodes, ...), not a list"},
	{"log_level: loud\n", "f.yaml:1:12: 'log_level' must be debug, info, warn or error, not 'loud'"},
	/* duplicates */
	{"nodes:\n  - name: n1\n    connection: local\n  - name: n1\n    connection: local\n",
	 "f.yaml:4:11: node 'n1' is already defined at line 2"},
	{BASE "  - name: unit\n    run: x\n", "f.yaml:16:11: job 'unit' is already defined at line 13"},
	{"pipelines: [{name: a}, {name: a}]\n", "f.yaml:1:31: pipeline 'a' is already defined at "
	 "line 1"},
	{"scheduler: {lease: 1}\nscheduler: {lease: 2}\n", "f.yaml:2:1: duplicate key 'scheduler' "
	 "(first at line 1)"},
	{BASE "projects:\n  - name: p\n    check: {jobs: [unit, unit]}\n", "f.yaml:18:26: job "
	 "'unit' is listed twice in pipeline 'check' of project 'p' (first at line 18)"},
	/* missing required */
	{"nodes:\n  - host: h\n", "f.yaml:2:5: a node needs a 'name'"},
	{"nodes:\n  - name: s\n    connection: ssh\n    key: /k\n    host_key: x\n",
	 "f.yaml:2:5: ssh node 's' needs 'host'"},
	{"nodes:\n  - name: s\n    host: h\n    known_hosts: /kh\n",
	 "f.yaml:2:5: ssh node 's' needs 'key' (the private key file to log in with)"},
	{"nodes:\n  - name: s\n    host: h\n    key: /k\n", "f.yaml:2:5: ssh node 's' needs "
	 "'known_hosts' or 'host_key' so its host key can be checked"},
	{"connections:\n  - name: g\n    driver: git\n", "f.yaml:2:5: connection 'g' needs "
	 "'baseurl' (a directory or URL holding the repositories)"},
	{"jobs:\n  - name: j\n", "f.yaml:2:5: job 'j' needs 'run' (a command or a list of commands)"},
	{"nodes:\n  - name: ''\n", "f.yaml:2:11: 'name' must not be empty"},
	/* unknown references */
	{BASE "projects:\n  - name: p\n    connection: gl\n", "f.yaml:18:17: unknown connection "
	 "'gl' in project 'p'; define it under 'connections'"},
	{BASE "projects:\n  - name: p\n    check:\n      jobs: [unit, lint]\n", "f.yaml:19:20: "
	 "unknown job 'lint' in pipeline 'check' of project 'p'; define it under 'jobs'"},
	{BASE "  - name: gpu\n    run: x\n    label: gpu\n", "f.yaml:18:12: label 'gpu' of job 'gpu' "
	 "is not offered by any node; add it to a node's 'labels'"},
	{"projects:\n  - name: p\n", "f.yaml:2:5: project 'p' needs 'connection' (and none is "
	 "defined)"},
	{"connections: [{name: a, baseurl: x}, {name: b, baseurl: y}]\nprojects:\n  - name: p\n",
	 "f.yaml:3:5: project 'p' needs 'connection' (there is more than one)"},
	{"nodes: [{name: n, connection: winrm}]\n", "f.yaml:1:31: 'connection' of node 'n' must be "
	 "'ssh' or 'local', not 'winrm'"},
	{"connections: [{name: n, driver: svn, baseurl: x}]\n", "f.yaml:1:33: unknown driver 'svn' "
	 "in connection 'n'; known drivers: git"},
	/* connection credentials */
	{"connections:\n  - name: r\n    baseurl: 'ssh://g/r'\n    ssh_key: k\n", "f.yaml:4:14: "
	 "connection 'r' has 'ssh_key' but no 'known_hosts': the git server's host key must be checked"},
	{"connections:\n  - name: r\n    baseurl: 'https://g/r'\n    password_file: pw\n",
	 "f.yaml:2:5: connection 'r' has a password but no 'user' to send it with"},
	{"connections:\n  - name: r\n    baseurl: 'https://g/r'\n    user: u\n    password_file: pw\n"
	 "    password_env: PW\n", "f.yaml:6:19: connection 'r' has both 'password_file' and "
	 "'password_env'; keep one"},
	{"connections:\n  - name: r\n    baseurl: 'https://g/r'\n    user: u\n    password_env: 's3cret!'\n",
	 "f.yaml:5:19: 'password_env' of connection 'r' must name an environment variable (letters, "
	 "digits and '_', not starting with a digit), not 's3cret!'; the password itself never goes "
	 "in this file"},
	{"connections:\n  - name: r\n    baseurl: 'https://bot:hunter2@g/r'\n", "f.yaml:3:14: "
	 "'baseurl' of connection 'r' holds a password; remove it and set 'user' and 'password_file' "
	 "or 'password_env' instead"},
	{"connections:\n  - name: r\n    baseurl: 'https://g/r'\n    ca_file: [a]\n",
	 "f.yaml:4:14: 'ca_file' must be a string, not a list"},
	{"connections:\n  - name: r\n    baseurl: 'https://g/r'\n    password: x\n", "f.yaml:4:5: "
	 "unknown key 'password' in connection 'r'; allowed keys: name, driver, baseurl, "
	 "canonical_hostname, user, ssh_key, known_hosts, password_file, password_env, ca_file"},
	{"pipelines: [{name: g, manager: dependent}]\n", "f.yaml:1:32: unknown manager 'dependent' "
	 "in pipeline 'g'; only 'independent' is supported"},
	/* ranges */
	{"nodes: [{name: n, connection: local, port: 0}]\n", "f.yaml:1:44: 'port' must be an "
	 "integer from 1 to 65535, not '0'"},
	{"nodes: [{name: n, connection: local, port: 65536}]\n", "f.yaml:1:44: 'port' must be an "
	 "integer from 1 to 65535, not '65536'"},
	{"executor: {capacity: 1025}\n", "f.yaml:1:22: 'capacity' must be an integer from 1 to "
	 "1024, not '1025'"},
	{BASE "    timeout: 86401\n", "f.yaml:16:14: 'timeout' must be an integer from 1 to 86400, "
	 "not '86401'"},
	{BASE "    attempts: 0\n", "f.yaml:16:15: 'attempts' must be an integer from 1 to 100, "
	 "not '0'"},
	{"scheduler: {lease: -1}\n", "f.yaml:1:20: 'lease' must be a number of seconds above 0 "
	 "and at most 86400 (0.5 is half a second), not '-1'"},
	{"scheduler: {lease: 2, heartbeat: 2}\n", "f.yaml:1:34: scheduler 'heartbeat' (2000 ms) "
	 "must be shorter than 'lease' (2000 ms), or executors lose their builds between heartbeats"},
	/* endpoints */
	{"scheduler: {listen: 'http://x:1'}\n", "f.yaml:1:21: 'listen' must be a ZeroMQ endpoint "
	 "starting with tcp://, ipc:// or inproc://, not 'http://x:1'"},
	{"executor: {scheduler: 'tcp://'}\n", "f.yaml:1:23: 'scheduler' must be a ZeroMQ endpoint "
	 "starting with tcp://, ipc:// or inproc://, not 'tcp://'"},
	/* YAML errors come through with their position */
	{"a: 1\n\tb: 2\n", "f.yaml:2:1: found a tab character that violates indentation while "
	 "scanning a plain scalar started at line 1 column 4 (tabs cannot indent YAML; use spaces)"},
	{"a: 'x\n", "f.yaml:1:4: found unexpected end of stream while scanning a quoted scalar "
	 "started here, never closed"},
};

static void test_errors(void **state)
{
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		vz_config *c = (vz_config *)1;
		vz_buf d = VZ_BUF_INIT(1 << 20);
		vz_err e = {0};
		int rc = vz_config_parse(&c, errors[i].doc, strlen(errors[i].doc), "f.yaml", &d, &e);
		if (rc != VZ_EINVAL || c != NULL) {
			print_error("row %zu: rc %d, want VZ_EINVAL and no config\n", i, rc);
			vz_config_free(rc == 0 ? c : NULL);
			vz_buf_free(&d);
			bad++;
			continue;
		}
		/* the first diagnostic line is the same message */
		if (strcmp(e.msg, errors[i].first) != 0 || !vz_startswith(vz_buf_cstr(&d), errors[i].first)) {
			print_error("row %zu:\n got  %s\n want %s\n diags:\n%s", i, e.msg,
				    errors[i].first, vz_buf_cstr(&d));
			bad++;
		}
		vz_buf_free(&d);
	}
	assert_int_equal(bad, 0);
	/* the base itself is valid */
	vz_config *c = parse_ok(BASE, "f.yaml");
	vz_config_free(c);
}

static void test_all_errors_reported(void **state)
{
	(void)state;
	const char *doc = "log_level: loud\n"                    /* 1 */
			  "colour: red\n"                        /* 2 */
			  "scheduler: {lease: 0}\n"              /* 3 */
			  "nodes:\n"                             /* 4 */
			  "  - name: a\n"                        /* 5 */
			  "    connection: local\n"              /* 6 */
			  "    port: 0\n"                        /* 7 */
			  "  - name: a\n"                        /* 8 */
			  "jobs:\n"                              /* 9 */
			  "  - name: j\n"                        /* 10 */
			  "    run: x\n"                         /* 11 */
			  "    attempts: 1000\n"                 /* 12 */
			  "projects:\n"                          /* 13 */
			  "  - name: p\n"                        /* 14 */
			  "    connection: none\n";              /* 15 */
	static const char *const want = "f.yaml:1:12: 'log_level' must be debug, info, warn or error, not 'loud'\n"
		"f.yaml:2:1: unknown key 'colour' in the site configuration; allowed keys: state_dir, "
		"log_level, scheduler, executor, connections, nodes, pipelines, jobs, projects, tenants\n"
		"f.yaml:3:20: 'lease' must be a number of seconds above 0 and at most 86400 (0.5 is "
		"half a second), not '0'\n"
		"f.yaml:7:11: 'port' must be an integer from 1 to 65535, not '0'\n"
		"f.yaml:8:11: node 'a' is already defined at line 5\n"
		"f.yaml:12:15: 'attempts' must be an integer from 1 to 100, not '1000'\n"
		"f.yaml:15:17: unknown connection 'none' in project 'p'; define it under 'connections'\n";
	vz_config *c = NULL;
	vz_buf d = VZ_BUF_INIT(1 << 20);
	vz_err e = {0};
	assert_int_equal(vz_config_parse(&c, doc, strlen(doc), "f.yaml", &d, &e), VZ_EINVAL);
	assert_string_equal(vz_buf_cstr(&d), want);
	assert_string_equal(e.msg, "f.yaml:1:12: 'log_level' must be debug, info, warn or error, not 'loud'");
	vz_buf_free(&d);

	/* a flood of errors is capped with a count of the rest */
	vz_buf big = VZ_BUF_INIT(1 << 20);
	for (int i = 0; i < 300; i++)
		vz_buf_printf(&big, "k%d: 1\n", i);
	vz_buf_init(&d, 1 << 20);
	vz_err_clear(&e);
	assert_int_equal(vz_config_parse(&c, big.ptr, big.len, "f.yaml", &d, &e), VZ_EINVAL);
	assert_non_null(strstr(vz_buf_cstr(&d), "f.yaml: 100 more errors not shown"));
	vz_buf_free(&d);
	vz_buf_free(&big);
}

static void test_scalars_forms(void **state)
{
	(void)state;
	/* fractional seconds, YAML 1.1 booleans, a run string, null meaning "default" */
	vz_config *c = parse_ok("scheduler: {lease: 1.5, heartbeat: 0.25}\n"
				"executor: {capacity: 0x10, name: ~}\n"
				"nodes: [{name: l, labels: [x], user: me}]\n"
				"jobs:\n  - {name: a, run: 'echo hi', voting: off, label: x, timeout: ~}\n",
				"/c/v.yaml");
	assert_int_equal(c->scheduler.lease_ms, 1500);
	assert_int_equal(c->scheduler.heartbeat_ms, 250);
	assert_int_equal(c->executor.capacity, 16);
	assert_non_null(c->executor.name);
	assert_int_equal(c->jobs[0].voting, 0);
	assert_int_equal(c->jobs[0].timeout, 1800);
	assert_int_equal(c->jobs[0].nrun, 1);
	assert_string_equal(c->jobs[0].run[0], "echo hi");
	assert_string_equal(c->nodes[0].connection, "local");
	assert_string_equal(c->nodes[0].user, "me");
	vz_config_free(c);
}

/* The tenants section: Zuul's main.yaml shape (source -> connection -> config-projects /
 * untrusted-projects; names, {NAME: {include, exclude, load-branch}}, project groups), kept in
 * Zuul's order (every config project first), with positioned errors. */
static const char TENANTS[] =
	"connections:\n"
	"  - {name: gerrit, baseurl: /srv/git}\n"
	"  - {name: github, baseurl: /srv/gh}\n"
	"tenants:\n"
	"  - name: main\n"
	"    source:\n"
	"      gerrit:\n"
	"        config-projects:\n"
	"          - project-config\n"
	"          - zuul/zuul-jobs:\n"
	"              include: [job, project-template]\n"
	"        untrusted-projects:\n"
	"          - openstack/nova\n"
	"          - openstack/glance: {exclude: project}\n"
	"      github:\n"
	"        config-projects:\n"
	"          - org/ci: {load-branch: main}\n"
	"        untrusted-projects:\n"
	"          - projects: [org/a, org/b]\n"
	"            include: job\n"
	"  - name: other\n"
	"    source: {gerrit: {untrusted-projects: [openstack/nova]}}\n";

static void test_tenants(void **state)
{
	(void)state;
	vz_config *c = parse_ok(TENANTS, "site.yaml");
	assert_int_equal(c->ntenants, 2);
	const vz_conf_tenant *t = vz_config_tenant(c, "main");
	assert_non_null(t);
	assert_null(vz_config_tenant(c, "nope"));
	static const struct {
		const char *name, *conn;
		int trusted;
	} want[] = {
		{"project-config", "gerrit", 1}, {"zuul/zuul-jobs", "gerrit", 1}, {"org/ci", "github", 1},
		{"openstack/nova", "gerrit", 0}, {"openstack/glance", "gerrit", 0}, {"org/a", "github", 0},
		{"org/b", "github", 0},
	};
	assert_int_equal(t->nprojects, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < t->nprojects; i++) {
		assert_string_equal(t->projects[i].name, want[i].name);
		assert_string_equal(t->projects[i].connection, want[i].conn);
		assert_int_equal(t->projects[i].config_project, want[i].trusted);
	}
	assert_null(t->projects[0].include);
	assert_int_equal(t->projects[1].ninclude, 2);
	assert_string_equal(t->projects[1].include[1], "project-template");
	assert_string_equal(t->projects[2].load_branch, "main");
	assert_int_equal(t->projects[4].nexclude, 1);
	assert_string_equal(t->projects[4].exclude[0], "project");
	for (size_t i = 5; i < 7; i++) {
		assert_int_equal(t->projects[i].ninclude, 1);
		assert_string_equal(t->projects[i].include[0], "job");
	}
	assert_int_equal(vz_config_tenant(c, "other")->nprojects, 1);
	vz_config_free(c);

	static const struct {
		const char *tail, *first;
	} bad[] = {
		{"tenants:\n  - name: t\n", "f.yaml:5:5: tenant 't' needs 'source' (connection names, each with config-projects and untrusted-projects)"},
		{"tenants:\n  - name: t\n    source: {nope: {config-projects: [a]}}\n",
		 "f.yaml:6:14: unknown connection 'nope' in 'source' of tenant 't'; define it under 'connections'"},
		{"tenants:\n  - name: t\n    source: {gerrit: {config-projects: [a], trusted-projects: [b]}}\n",
		 "f.yaml:6:45: unknown key 'trusted-projects' in connection 'gerrit' of tenant 't'; allowed keys: "
		 "config-projects, untrusted-projects"},
		{"tenants:\n  - name: t\n    source: {gerrit: {untrusted-projects: [a, {b: {include: [jobs]}}]}}\n",
		 "f.yaml:6:62: unknown object type 'jobs' in 'include' of project 'b' of tenant 't'; types: pipeline, "
		 "job, project, project-template, nodeset, secret, semaphore, queue, pragma"},
		{"tenants:\n  - name: t\n    source: {gerrit: {untrusted-projects: [{a: {shadow: b}}]}}\n",
		 "f.yaml:6:49: 'shadow' (project 'a' of tenant 't') is not supported by vinz yet"},
		{"tenants:\n  - name: t\n    source: {gerrit: {untrusted-projects: [{a: {load-branch: x}}]}}\n",
		 "f.yaml:6:49: unknown key 'load-branch' in project 'a' of tenant 't'; allowed keys: include, exclude"},
		{"tenants:\n  - name: t\n    source: {gerrit: {config-projects: [a], untrusted-projects: [a]}}\n",
		 "f.yaml:6:66: project 'a' is listed twice in tenant 't'"},
		{"tenants:\n  - name: t\n    source: {gerrit: {untrusted-projects: a}}\n",
		 "f.yaml:6:43: 'untrusted-projects' of connection 'gerrit' in tenant 't' must be a list of projects, "
		 "not a scalar"},
		{"tenants:\n  - name: t\n    source: {gerrit: {untrusted-projects: [{a: 1, b: 2}]}}\n",
		 "f.yaml:6:44: each item of 'untrusted-projects' must be a project name, {NAME: {options}} or a "
		 "project group {projects: [...]}, not a mapping of several keys"},
		{"tenants:\n  - {name: t, source: {gerrit: {}}}\n  - {name: t, source: {gerrit: {}}}\n",
		 "f.yaml:6:12: tenant 't' is already defined at line 5"},
		{"tenants:\n  - name: t\n    max-nodes-per-job: 5\n    source: {gerrit: {}}\n",
		 "f.yaml:6:5: unknown key 'max-nodes-per-job' in tenant 't'; allowed keys: name, source"},
	};
	const char *head = "connections:\n  - {name: gerrit, baseurl: /srv/git}\n  - {name: github, baseurl: /srv/gh}\n";
	int nbad = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char doc[2048];
		snprintf(doc, sizeof(doc), "%s%s", head, bad[i].tail);
		vz_config *c2 = NULL;
		vz_buf d = VZ_BUF_INIT(1 << 20);
		vz_err e = {0};
		int rc = vz_config_parse(&c2, doc, strlen(doc), "f.yaml", &d, &e);
		if (rc != VZ_EINVAL || c2 || !vz_startswith(e.msg, bad[i].first)) {
			print_error("tenant row %zu: rc %d\n got  %s\n want %s\n", i, rc, e.msg, bad[i].first);
			nbad++;
		}
		vz_config_free(c2);
		vz_buf_free(&d);
	}
	assert_int_equal(nbad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_farm_example),
		cmocka_unit_test(test_embedded_example),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_scalars_forms),
		cmocka_unit_test(test_tenants),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
