/* vinz run on a remote node over a real loopback sshd (tests/lib/vz_test_sshd): the job's
 * workspace is delivered to the node and its playbooks (the config project's base pre-run and
 * post-run, the repository's run) run there; --node NAME=... maps the nodeset's node; a host key
 * that known_hosts does not hold is refused with its fingerprint and NODE_FAILURE. The local
 * node and everything else is test_run_cli.sh. */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vz_buf.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"

typedef struct fixture {
	vz_test_sshd *sshd;
	char *dir;   /* temp dir: config/, origin.git, app/ */
	char *app;
} fixture;

static fixture g;

static const char *const CONFIG =
	"- pipeline:\n    name: check\n    manager: independent\n"
	"- nodeset:\n    name: one\n    nodes:\n      - name: n1\n        label: any\n"
	"- job:\n    name: base\n    parent: null\n    pre-run: playbooks/pre.yaml\n"
	"    post-run: playbooks/post.yaml\n    nodeset: one\n    timeout: 120\n";
static const char *const PRE =
	"- hosts: all\n  tasks:\n    - name: base pre-run\n"
	"      shell: echo \"marker-pre-run on {{ inventory_hostname }} as $(id -un)\"\n";
static const char *const POST =
	"- hosts: all\n  tasks:\n    - name: base post-run\n      command: echo \"marker-post-run {{ zuul_success }}\"\n";
static const char *const APP =
	"- job:\n    name: pass\n    run: playbooks/pass.yaml\n"
	"- project:\n    check:\n      jobs: [pass]\n";
static const char *const PASS =
	"- hosts: all\n  tasks:\n    - name: read the workspace on the node\n      shell: cat README; pwd\n"
	"      args:\n        chdir: \"{{ zuul.project.src_dir }}\"\n";

static int group_setup(void **state)
{
	(void)state;
	if (vz_test_sshd_start(&g.sshd) != 0)
		return -1;
	g.dir = vz_test_tmpdir("vz-run-ssh");
	char *cfg = vz_path_join(g.dir, "config");
	g.app = vz_path_join(g.dir, "app");
	vz_test_write(cfg, "zuul.d/main.yaml", CONFIG);
	vz_test_write(cfg, "playbooks/pre.yaml", PRE);
	vz_test_write(cfg, "playbooks/post.yaml", POST);
	const char *env = "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@vinz.invalid GIT_COMMITTER_NAME=t "
			  "GIT_COMMITTER_EMAIL=t@vinz.invalid GIT_CONFIG_NOSYSTEM=1";
	int rc = vz_test_sh(NULL, "%s; set -e; cd '%s' && git init -q -b master . && git add -A && git commit -qm c", env, cfg);
	rc |= vz_test_sh(NULL, "%s; set -e; cd '%s' && git init -q --bare -b master origin.git && "
			 "git clone -q origin.git app 2>/dev/null", env, g.dir);
	vz_test_write(g.app, ".zuul.yaml", APP);
	vz_test_write(g.app, "playbooks/pass.yaml", PASS);
	vz_test_write(g.app, "README", "readme-on-master\n");
	rc |= vz_test_sh(NULL, "%s; set -e; cd '%s' && git add -A && git commit -qm init && git push -q origin master "
			 "2>/dev/null && git checkout -q -b feature && git branch -q --set-upstream-to=origin/master && "
			 "echo feature-line >> README && git commit -qam feature", env, g.app);
	free(cfg);
	return rc ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	vz_test_sshd_stop(g.sshd);
	if (g.dir)
		vz_test_rm(g.dir);
	free(g.dir);
	free(g.app);
	return 0;
}

/* Runs `vinz run ARGS` in the app; returns the exit code, output (stdout+stderr) in out. */
static int vinz_run(vz_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int vinz_run(vz_buf *out, const char *fmt, ...)
{
	char args[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	int rc = vz_test_sh(out, "cd '%s' && '%s' run --config-project '%s/config' %s 2>&1", g.app, VZ_BIN, g.dir, args);
	if (out)
		fprintf(stderr, "--- vinz run %s -> %d\n%s", args, rc, vz_buf_cstr(out));
	return rc;
}

static char *last_log(const char *job)
{
	return vz_test_out("cat '%s/.vinz/runs/latest/%s/job-output.txt'", g.app, job);
}

static void test_remote_node(void **state)
{
	(void)state;
	vz_buf out;
	vz_buf_init(&out, 1 << 20);
	int rc = vinz_run(&out, "--job pass --node %s@127.0.0.1:%d --key '%s' --known-hosts '%s'",
			  vz_test_sshd_user(g.sshd), vz_test_sshd_port(g.sshd), vz_test_sshd_key(g.sshd),
			  vz_test_sshd_known_hosts(g.sshd));
	assert_int_equal(rc, 0);
	assert_non_null(strstr(vz_buf_cstr(&out), "pass: TASK [read the workspace on the node]"));
	char *log = last_log("pass");
	char who[300];
	snprintf(who, sizeof(who), "marker-pre-run on n1 as %s", vz_test_sshd_user(g.sshd));
	assert_non_null(strstr(log, who));                   /* ran as the node user, over ssh */
	assert_non_null(strstr(log, "delivered to n1"));     /* the workspace went to the node */
	assert_non_null(strstr(log, "feature-line"));        /* HEAD merged onto master */
	assert_non_null(strstr(log, "/src/app\n"));          /* Zuul's layout in the node's home */
	assert_non_null(strstr(log, "marker-post-run True"));
	free(log);
	vz_buf_free(&out);
}

static void test_named_node(void **state)
{
	(void)state;
	vz_buf out;
	vz_buf_init(&out, 1 << 20);
	/* a second run: the node already has the objects (warm) */
	int rc = vinz_run(&out, "--node n1=%s@127.0.0.1:%d --key '%s' --known-hosts '%s'", vz_test_sshd_user(g.sshd),
			  vz_test_sshd_port(g.sshd), vz_test_sshd_key(g.sshd), vz_test_sshd_known_hosts(g.sshd));
	assert_int_equal(rc, 0);
	char *log = last_log("pass");
	assert_non_null(strstr(log, "delivered to n1"));
	assert_non_null(strstr(log, "feature-line"));
	free(log);
	/* a name the nodeset does not have leaves the job on the local node */
	rc = vinz_run(&out, "--node other=%s@127.0.0.1:%d --key '%s' --known-hosts '%s'", vz_test_sshd_user(g.sshd),
		      vz_test_sshd_port(g.sshd), vz_test_sshd_key(g.sshd), vz_test_sshd_known_hosts(g.sshd));
	assert_int_equal(rc, 0);
	log = last_log("pass");
	assert_null(strstr(log, "delivered to n1"));
	free(log);
	vz_buf_free(&out);
}

/* --site: the nodeset's node (label "any") runs on the site config's ssh node with that label; a
 * label the site does not offer refuses the job by name. */
static void test_site_nodes(void **state)
{
	(void)state;
	char site[4096];
	snprintf(site, sizeof(site),
		 "nodes:\n  - name: far\n    host: 127.0.0.1\n    port: %d\n    user: %s\n    key: %s\n"
		 "    known_hosts: %s\n    labels: [any]\n",
		 vz_test_sshd_port(g.sshd), vz_test_sshd_user(g.sshd), vz_test_sshd_key(g.sshd),
		 vz_test_sshd_known_hosts(g.sshd));
	vz_test_write(g.dir, "site.yaml", site);
	vz_buf out;
	vz_buf_init(&out, 1 << 20);
	int rc = vinz_run(&out, "--job pass --site '%s/site.yaml'", g.dir);
	assert_int_equal(rc, 0);
	char *log = last_log("pass");
	char who[300];
	snprintf(who, sizeof(who), "marker-pre-run on n1 as %s", vz_test_sshd_user(g.sshd));
	assert_non_null(strstr(log, who));
	assert_non_null(strstr(log, "delivered to n1"));
	free(log);
	/* no node with the label */
	snprintf(site, sizeof(site), "nodes:\n  - name: other\n    connection: local\n    labels: [gpu]\n");
	vz_test_write(g.dir, "site2.yaml", site);
	rc = vinz_run(&out, "--job pass --site '%s/site2.yaml'", g.dir);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(vz_buf_cstr(&out), "offers label 'any'"));
	vz_buf_free(&out);
}

static void test_unknown_host_key(void **state)
{
	(void)state;
	/* known_hosts says the address has another key */
	char *kh = vz_path_join(g.dir, "other_known_hosts");
	char *other = vz_path_join(g.dir, "otherkey");
	assert_int_equal(vz_test_sshd_keygen(other), 0);
	char *line = vz_test_out("cut -d' ' -f1,2 '%s.pub'", other);
	assert_int_equal(vz_test_sshd_write_known_hosts(g.sshd, line, kh), 0);
	free(line);
	free(other);
	vz_buf out;
	vz_buf_init(&out, 1 << 20);
	int rc = vinz_run(&out, "--job pass --node %s@127.0.0.1:%d --key '%s' --known-hosts '%s'",
			  vz_test_sshd_user(g.sshd), vz_test_sshd_port(g.sshd), vz_test_sshd_key(g.sshd), kh);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(vz_buf_cstr(&out), "NODE_FAILURE"));
	char fp[128];
	vz_test_sshd_fingerprint(vz_test_sshd_host_pub(g.sshd), fp, sizeof(fp));
	assert_non_null(strstr(vz_buf_cstr(&out), fp)); /* says which key it was offered */
	vz_buf_free(&out);
	free(kh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remote_node),
		cmocka_unit_test(test_named_node),
		cmocka_unit_test(test_site_nodes),
		cmocka_unit_test(test_unknown_host_key),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
