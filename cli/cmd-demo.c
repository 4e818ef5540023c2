/* vinz demo: a self-contained tour. Makes a repository with a project and three changes (one of
 * which breaks its tests), runs the embedded scheduler + executor with a local node, enqueues the
 * changes into a check pipeline, shows progress, prints the results, and exits 0 when the outcome
 * is the expected one. */
#include <getopt.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vz_admin.h"
#include "vz_cli.h"
#include "vz_embedded.h"
#include "vz_log.h"
#include "vz_util.h"

typedef struct file {
	const char *name, *content;
	int exec;
} file;

static const char *TESTS =
	"#!/bin/sh\n"
	"# the demo project's test suite: every line of numbers.txt must be a number\n"
	"set -e\n"
	"n=0\n"
	"while read -r line; do\n"
	"  case \"$line\" in ''|*[!0-9]*) echo \"not a number: $line\" >&2; exit 1;; esac\n"
	"  n=$((n + 1))\n"
	"done < numbers.txt\n"
	"echo \"$n numbers checked\"\n";

static int commit(git_repository *r, const git_oid *parent, const file *files, size_t n, const char *msg, git_oid *out)
{
	git_treebuilder *tb = NULL;
	git_tree *tree = NULL;
	git_commit *pc = NULL;
	git_signature *sig = NULL;
	git_oid tid;
	int rc = -1;
	if (git_treebuilder_new(&tb, r, NULL) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		git_oid b;
		if (git_blob_create_from_buffer(&b, r, files[i].content, strlen(files[i].content)) < 0 ||
		    git_treebuilder_insert(NULL, tb, files[i].name, &b, files[i].exec ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB) < 0)
			goto out;
	}
	if (git_treebuilder_write(&tid, tb) < 0 || git_tree_lookup(&tree, r, &tid) < 0 ||
	    git_signature_new(&sig, "vinz demo", "demo@vinz.invalid", 1763700000, 0) < 0)
		goto out;
	if (parent && git_commit_lookup(&pc, r, parent) < 0)
		goto out;
	const git_commit *parents[] = { pc };
	rc = git_commit_create(out, r, NULL, sig, sig, NULL, msg, tree, pc ? 1 : 0, parents) < 0 ? -1 : 0;
out:
	git_signature_free(sig);
	git_commit_free(pc);
	git_tree_free(tree);
	git_treebuilder_free(tb);
	return rc;
}

static int make_repo(const char *path)
{
	git_repository *r = NULL;
	git_reference *ref = NULL;
	git_oid base, c;
	int rc = -1;
	if (git_repository_init(&r, path, 1) < 0)
		goto out;
	file f0[] = { { "README", "A project gated by vinz.\n", 0 }, { "run-tests.sh", TESTS, 1 }, { "numbers.txt", "1\n2\n3\n", 0 } };
	if (commit(r, NULL, f0, 3, "Initial import\n", &base) < 0 ||
	    git_reference_create(&ref, r, "refs/heads/master", &base, 1, "demo") < 0)
		goto out;
	git_reference_free(ref);
	ref = NULL;
	struct {
		const char *ref, *numbers, *msg;
	} changes[] = {
		{ "refs/changes/1", "1\n2\n3\n4\n", "Add four\n" },
		{ "refs/changes/2", "1\n2\n3\nfive\n", "Add five, spelled out (breaks the tests)\n" },
		{ "refs/changes/3", "1\n2\n3\n6\n", "Add six\n" },
	};
	for (size_t i = 0; i < 3; i++) {
		file f[] = { { "README", "A project gated by vinz.\n", 0 }, { "run-tests.sh", TESTS, 1 }, { "numbers.txt", changes[i].numbers, 0 } };
		if (commit(r, &base, f, 3, changes[i].msg, &c) < 0 || git_reference_create(&ref, r, changes[i].ref, &c, 1, "demo") < 0)
			goto out;
		git_reference_free(ref);
		ref = NULL;
	}
	rc = 0;
out:
	if (rc) {
		const git_error *ge = git_error_last();
		fprintf(stderr, "vinz demo: cannot create the demo repository %s: %s\n", path, ge ? ge->message : "?");
	}
	git_reference_free(ref);
	git_repository_free(r);
	return rc;
}

static int write_config(const char *dir, char **out)
{
	char *path = vz_path_join(dir, "vinz.yaml");
	vz_buf b = VZ_BUF_INIT(1 << 16);
	vz_buf_printf(&b,
		      "# written by vinz demo\n"
		      "state_dir: state\n"
		      "log_level: warn\n"
		      "scheduler:\n"
		      "  listen: inproc://vinz-executors\n"
		      "  admin: ipc://%s/state/admin.sock\n"
		      "executor:\n"
		      "  name: demo-executor\n"
		      "  capacity: 2\n"
		      "connections:\n"
		      "  - name: local-git\n"
		      "    driver: git\n"
		      "    baseurl: repos\n"
		      "nodes:\n"
		      "  - name: localhost\n"
		      "    connection: local\n"
		      "    labels: [local]\n"
		      "    max_parallel: 2\n"
		      "pipelines:\n"
		      "  - name: check\n"
		      "    manager: independent\n"
		      "jobs:\n"
		      "  - name: lint\n"
		      "    label: local\n"
		      "    run: test -s README\n"
		      "  - name: unit\n"
		      "    label: local\n"
		      "    timeout: 60\n"
		      "    run:\n"
		      "      - ./run-tests.sh\n"
		      "projects:\n"
		      "  - name: demo\n"
		      "    connection: local-git\n"
		      "    check:\n"
		      "      jobs: [lint, unit]\n",
		      dir);
	vz_err e = { 0 };
	int rc = b.failed ? b.failed : vz_write_file_atomic(path, b.ptr, b.len, 0644, &e);
	if (rc)
		fprintf(stderr, "vinz demo: cannot write %s: %s\n", path, vz_err_msg(&e));
	vz_buf_free(&b);
	*out = path;
	return rc;
}

static const char *expected(const char *change, const char *job)
{
	return strcmp(change, "2") == 0 && strcmp(job, "unit") == 0 ? "FAILURE" : "SUCCESS";
}

static int run(int argc, char **argv)
{
	const char *dir_opt = NULL;
	int keep = 0;
	static const struct option opts[] = { { "dir", required_argument, NULL, 'd' },
					      { "keep", no_argument, NULL, 'k' },
					      { NULL, 0, NULL, 0 } };
	int o;
	while ((o = getopt_long(argc, argv, "d:k", opts, NULL)) != -1) {
		if (o == 'd')
			dir_opt = optarg;
		else if (o == 'k')
			keep = 1;
		else {
			vz_cli_usage(&vz_cmd_demo, 1);
			return VZ_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		vz_cli_usage(&vz_cmd_demo, 1);
		return VZ_EXIT_USAGE;
	}
	char tmpl[] = "/tmp/vinz-demo-XXXXXX";
	char *dir = NULL;
	vz_err e = { 0 };
	if (dir_opt) {
		if (vz_mkdir_p(dir_opt, 0755, &e)) {
			fprintf(stderr, "vinz demo: %s\n", vz_err_msg(&e));
			return VZ_EXIT_FAIL;
		}
		dir = realpath(dir_opt, NULL);
		keep = 1;
	} else if (mkdtemp(tmpl)) {
		dir = vz_xstrdup(tmpl);
	}
	if (!dir) {
		fprintf(stderr, "vinz demo: cannot create a work directory\n");
		return VZ_EXIT_FAIL;
	}
	if (vz_cli_init_libs())
		return VZ_EXIT_FAIL;
	vz_log_set_level(VZ_LOG_WARN);
	vz_log_set_ident("vinz-demo");
	vz_cli_signals();
	int ex = VZ_EXIT_FAIL;
	char *cfgpath = NULL, *repo = vz_path_join(dir, "repos/demo.git");
	vz_config *cfg = NULL;
	vz_embedded *m = NULL;
	json_t *builds = NULL;
	printf("vinz demo in %s\n", dir);
	if (make_repo(repo) || write_config(dir, &cfgpath))
		goto out;
	printf("  repository repos/demo.git: master plus changes 1, 2, 3 (change 2 breaks the tests)\n");
	if (!(cfg = vz_cli_load_config(cfgpath))) {
		ex = VZ_EXIT_CONFIG;
		goto out;
	}
	if (vz_embedded_start(&m, cfg, &e)) {
		fprintf(stderr, "vinz demo: %s\n", vz_err_msg(&e));
		goto out;
	}
	printf("  scheduler + executor running in this process; local node; sqlite in state/vinz.db\n");
	for (int i = 1; i <= 3; i++) {
		char id[8], ref[32];
		snprintf(id, sizeof(id), "%d", i);
		snprintf(ref, sizeof(ref), "refs/changes/%d", i);
		json_t *args = json_pack("{s:s,s:s,s:s,s:s}", "pipeline", "check", "project", "demo", "ref", ref, "id", id);
		json_t *r = NULL;
		int rc = vz_admin_call(NULL, cfg->scheduler.admin, "enqueue", args, &r, 10000, &e);
		json_decref(args);
		if (rc) {
			fprintf(stderr, "vinz demo: enqueue failed: %s\n", vz_err_msg(&e));
			goto out;
		}
		printf("  enqueued change %d (%s) into check\n", i, ref);
		json_decref(r);
	}
	/* follow until every item has left the pipeline */
	uint64_t t0 = vz_mono_ms();
	json_t *seen = json_object();
	int done = 0;
	while (!vz_cli_stop && !vz_embedded_failed(m) && vz_mono_ms() - t0 < 120000) {
		json_t *st = NULL;
		vz_err se = { 0 };
		if (vz_admin_call(NULL, cfg->scheduler.admin, "builds", NULL, &st, 10000, &se) == 0) {
			size_t i;
			json_t *b;
			json_array_foreach(st, i, b) {
				const char *uuid = json_string_value(json_object_get(b, "uuid"));
				const char *res = json_string_value(json_object_get(b, "result"));
				const char *state = res ? res : json_string_value(json_object_get(b, "state"));
				const char *prev = json_string_value(json_object_get(seen, uuid));
				if (prev && strcmp(prev, state) == 0)
					continue;
				printf("  [%5.1fs] change %s %-5s %s\n", (double)(vz_mono_ms() - t0) / 1000.0,
				       json_string_value(json_object_get(b, "change")), json_string_value(json_object_get(b, "job")),
				       state);
				json_object_set_new(seen, uuid, json_string(state));
			}
			json_decref(st);
		}
		json_t *status = NULL;
		if (vz_admin_call(NULL, cfg->scheduler.admin, "status", NULL, &status, 10000, &se) == 0) {
			size_t items = 0, i;
			json_t *pl;
			json_array_foreach(json_object_get(status, "pipelines"), i, pl) items += json_array_size(json_object_get(pl, "items"));
			json_decref(status);
			if (items == 0) {
				done = 1;
				break;
			}
		}
		usleep(200000);
	}
	json_decref(seen);
	if (!done) {
		fprintf(stderr, "vinz demo: the builds did not finish within 120 s\n");
		goto out;
	}
	if (vz_admin_call(NULL, cfg->scheduler.admin, "builds", NULL, &builds, 10000, &e)) {
		fprintf(stderr, "vinz demo: %s\n", vz_err_msg(&e));
		goto out;
	}
	printf("\nresults:\n  %-7s %-6s %-8s %-8s %s\n", "CHANGE", "JOB", "RESULT", "EXPECTED", "LOG");
	int ok = 1, n = 0;
	for (size_t i = json_array_size(builds); i-- > 0;) {
		json_t *b = json_array_get(builds, i);
		if (!json_is_true(json_object_get(b, "final")))
			continue;
		const char *ch = json_string_value(json_object_get(b, "change"));
		const char *job = json_string_value(json_object_get(b, "job"));
		const char *res = json_string_value(json_object_get(b, "result"));
		const char *want = expected(ch, job);
		int good = res && strcmp(res, want) == 0;
		ok &= good;
		n++;
		printf("  %-7s %-6s %-8s %-8s %s\n", ch, job, res ? res : "-", good ? "yes" : want,
		       json_string_value(json_object_get(b, "log_url")));
	}
	ok &= n == 6;
	if (!keep)
		printf("  (the logs go away with the temporary directory; run with --keep to read them)\n");
	printf("\n%s\n", ok ? "demo passed: changes 1 and 3 pass, change 2 fails its unit tests, as it should"
			    : "demo FAILED: the results are not the expected ones");
	ex = ok ? VZ_EXIT_OK : VZ_EXIT_FAIL;
out:
	json_decref(builds);
	vz_embedded_stop(m);
	vz_config_free(cfg);
	vz_cli_cleanup_libs();
	if (!keep && ex == VZ_EXIT_OK)
		vz_rm_rf(dir, NULL);
	else
		printf("(kept %s: vinz.yaml, state/vinz.db, state/logs/)\n", dir);
	free(cfgpath);
	free(repo);
	free(dir);
	return ex;
}

const vz_cmd vz_cmd_demo = {
	"demo", "run a self-contained demonstration of a check pipeline",
	"usage: vinz demo [--dir DIR] [--keep]\n\n"
	"Creates a git repository with a project and three changes (the second breaks the project's\n"
	"tests), starts the embedded scheduler + executor with a local node and a sqlite store,\n"
	"enqueues the changes into a check pipeline, shows each job as it runs, and prints the results.\n\n"
	"  -d, --dir DIR   work in DIR (kept afterwards) instead of a temporary directory\n"
	"  -k, --keep      keep the temporary directory (config, database, logs) afterwards\n"
	"\nexit: 0 when change 1 and 3 pass and change 2 fails its unit job, 1 otherwise\n",
	run,
};
