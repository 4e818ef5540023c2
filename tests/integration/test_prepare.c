/* vz_prepare and a whole build on a local node with real repositories: a build request with
 * items ahead across two projects, a required third project, and a frozen repo state gets one
 * workspace per project at src/<canonical> with the speculative heads (checked with git itself),
 * the build's commands see them, a change that does not merge ends as MERGE_CONFLICT naming the
 * item, and the single-change form of the request still works. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_buf.h"
#include "vz_build.h"
#include "vz_prepare.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

static char *g_tmp;
static char g_a[600], g_b[600], g_c[600];

#define out_of vz_test_out

static int setup(void **state)
{
	(void)state;
	vz_err e = { 0 };
	assert_int_equal(vz_workspace_global_init(&e), 0);
	g_tmp = vz_test_tmpdir("vz-prepare");
	snprintf(g_a, sizeof(g_a), "%s/a.git", g_tmp);
	snprintf(g_b, sizeof(g_b), "%s/b.git", g_tmp);
	snprintf(g_c, sizeof(g_c), "%s/c.git", g_tmp);
	/* a: main (+ stable) with changes 1 and 3 (3 conflicts with 1); b: main with change 2;
	 * c: main and stable, no change (a required project) */
	assert_int_equal(vz_test_sh(NULL,
		"set -e; cd %s; for p in a b c; do git init -q -b main w$p; cd w$p; git config user.email t@t;"
		" git config user.name t; seq 1 10 > f; echo $p > name; mkdir pb;"
		" printf -- '- hosts: all\\n  tasks:\\n    - shell: echo ran > {{ zuul.executor.work_root }}/pre-marker\\n' > pb/pre.yaml;"
		" printf -- '- hosts: all\\n  tasks:\\n    - fail: {msg: no}\\n' > pb/badpre.yaml;"
		" printf -- '- hosts: all\\n  tasks:\\n    - debug: {msg: \"project={{ zuul.project.canonical_name }} change={{ zuul.change }}"
		" items={{ zuul.items | length }} host={{ nodepool.host_id }} src={{ zuul.project.src_dir }}\"}\\n"
		"    - command: test -f {{ zuul.executor.work_root }}/pre-marker\\n"
		"    - fail: {msg: asked to fail}\\n      when: fail_run | default(false) | bool\\n' > pb/run.yaml;"
		" printf -- '- hosts: all\\n  tasks:\\n    - debug: {msg: \"post success={{ zuul_success }}\"}\\n"
		"    - fail: {msg: post-fail}\\n      when: fail_post | default(false) | bool\\n' > pb/post.yaml;"
		" git add -A; git commit -qm base; git branch stable;"
		" cd ..; done;"
		"cd wa; git checkout -q -b c1 main; sed -i 's/^3$/three/' f; git commit -qam c1;"
		"git checkout -q -b c3 main; sed -i 's/^3$/THREE/' f; git commit -qam c3; git checkout -q main;"
		"echo later >> name; git commit -qam later; cd ..;"
		"cd wb; git checkout -q -b c2 main; echo two > two; git add -A; git commit -qm c2; git checkout -q main; cd ..;"
		"cd wc; git checkout -q stable; echo s > s; git add -A; git commit -qm s; git checkout -q main; cd ..;"
		"git clone -q --bare wa %s; git clone -q --bare wb %s; git clone -q --bare wc %s;"
		"git -C %s update-ref refs/changes/1 c1; git -C %s update-ref refs/changes/3 c3;"
		"git -C %s update-ref refs/changes/2 c2",
		g_tmp, g_a, g_b, g_c, g_a, g_a, g_b), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vz_test_rm(g_tmp);
	free(g_tmp);
	vz_workspace_global_cleanup();
	return 0;
}

static json_t *request(const char *own_ref, const char *mode, json_t *repo_state)
{
	json_t *req = json_pack(
		"{s:[{s:s,s:s,s:s,s:s,s:s,s:s,s:I}, {s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}],"
		" s:[{s:s,s:s,s:s}]}",
		"items",
		"id", "1,1", "project", "org/a", "canonical_project", "example.org/org/a", "repo", g_a, "branch", "main",
		"ref", "refs/changes/1", "date", (json_int_t)1700000001,
		"id", "2,1", "project", "org/b", "canonical_project", "example.org/org/b", "repo", g_b, "branch", "main",
		"ref", own_ref, "mode", mode, "date", (json_int_t)1700000002,
		"projects", "project", "org/c", "canonical_project", "example.org/org/c", "repo", g_c);
	if (repo_state)
		json_object_set_new(req, "repo_state", repo_state);
	return req;
}

static void collect(void *ctx, const char *line)
{
	vz_buf *b = ctx;
	vz_buf_printf(b, "%s\n", line);
}

static void test_items_and_required_project(void **state)
{
	(void)state;
	char *build = vz_path_join(g_tmp, "build1"), *cache = vz_path_join(g_tmp, "cache");
	json_t *req = request("refs/changes/2", "cherry-pick", NULL);
	vz_prepared p;
	vz_err e = { 0 };
	vz_buf log = VZ_BUF_INIT(1 << 20);
	int rc = vz_prepare_workspace(&p, req, build, cache, NULL, collect, &log, &e);
	if (rc)
		fprintf(stderr, "%s\n%s", vz_err_msg(&e), vz_buf_cstr(&log));
	assert_int_equal(rc, 0);
	assert_int_equal(p.nprojects, 3);
	/* the build's own project (b) first, then a, then c */
	assert_string_equal(p.projects[0].canonical, "example.org/org/b");
	assert_true(p.projects[0].own);
	assert_string_equal(p.projects[1].canonical, "example.org/org/a");
	assert_string_equal(p.projects[2].canonical, "example.org/org/c");
	/* b: change 2 cherry-picked onto main: a new commit whose parent is b's main */
	char *bmain = out_of("git -C %s rev-parse main", g_b);
	char *parent = out_of("git -C %s/src/example.org/org/b rev-parse HEAD~1", build);
	assert_string_equal(parent, bmain);
	char *head = out_of("git -C %s/src/example.org/org/b rev-parse HEAD", build);
	assert_string_equal(head, p.commit);
	assert_string_equal(p.projects[0].commit, p.commit);
	char *two = out_of("cat %s/src/example.org/org/b/two", build);
	assert_string_equal(two, "two");
	/* a: item 1 ahead merged onto a's main (two parents), checked out on main, stable there too */
	char *amain = out_of("git -C %s rev-parse main", g_a);
	char *aparents = out_of("git -C %s/src/example.org/org/a rev-list --parents -n1 HEAD", build);
	assert_non_null(strstr(aparents, amain));
	char *asym = out_of("git -C %s/src/example.org/org/a symbolic-ref HEAD", build);
	assert_string_equal(asym, "refs/heads/main");
	char *three = out_of("sed -n 3p %s/src/example.org/org/a/f", build);
	assert_string_equal(three, "three");
	/* c: required, not changed: its main (the build's branch) with stable beside it */
	char *cmain = out_of("git -C %s rev-parse main", g_c);
	char *chead = out_of("git -C %s/src/example.org/org/c rev-parse HEAD", build);
	assert_string_equal(chead, cmain);
	char *cst = out_of("git -C %s/src/example.org/org/c rev-parse --verify -q stable || echo none", build);
	assert_string_equal(cst, "none"); /* only the branches the state holds */
	/* every workspace clean, without remote */
	for (size_t i = 0; i < p.nprojects; i++) {
		char *st = out_of("git -C %s status --porcelain; git -C %s remote", p.projects[i].dir, p.projects[i].dir);
		assert_string_equal(st, "");
		free(st);
	}
	/* the repo state the build sees */
	assert_string_equal(json_string_value(json_object_get(json_object_get(p.state, "example.org/org/b"), "main")), p.commit);
	assert_non_null(strstr(vz_buf_cstr(&log), "item 1,1 merged into example.org/org/a main"));

	free(bmain); free(parent); free(head); free(two); free(amain); free(aparents); free(asym); free(three);
	free(cmain); free(chead); free(cst);
	vz_prepared_clear(&p);
	json_decref(req);
	vz_buf_free(&log);
	free(build);
	free(cache);
}

static void test_frozen_state_and_conflict(void **state)
{
	(void)state;
	char *build = vz_path_join(g_tmp, "build2"), *cache = vz_path_join(g_tmp, "cache");
	char *old = out_of("git -C %s rev-parse main~1", g_a);
	char *cst = out_of("git -C %s rev-parse stable", g_c);
	/* a frozen at main~1 (before "later"), c's stable given: c checks out main still (the
	 * build's branch) and has stable as a branch too */
	json_t *rs = json_pack("{s:{s:s}, s:{s:s}}", "example.org/org/a", "refs/heads/main", old, "example.org/org/c", "stable", cst);
	json_t *req = request("refs/changes/2", "merge", rs);
	vz_prepared p;
	vz_err e = { 0 };
	assert_int_equal(vz_prepare_workspace(&p, req, build, cache, NULL, NULL, NULL, &e), 0);
	char *later = out_of("grep -c later %s/src/example.org/org/a/name || true", build);
	assert_string_equal(later, "0");
	char *st = out_of("git -C %s/src/example.org/org/c rev-parse stable", build);
	assert_string_equal(st, cst);
	vz_prepared_clear(&p);
	json_decref(req);
	free(later);
	free(st);

	/* the build's own item conflicts with the item ahead: item 3 behind item 1, both in a */
	json_t *bad = json_pack("{s:[{s:s,s:s,s:s,s:s,s:s}, {s:s,s:s,s:s,s:s,s:s}]}", "items", "id", "1,1", "project", "org/a",
				"repo", g_a, "branch", "main", "ref", "refs/changes/1", "id", "3,1", "project", "org/a", "repo", g_a,
				"branch", "main", "ref", "refs/changes/3");
	char *build3 = vz_path_join(g_tmp, "build3");
	vz_err_clear(&e);
	assert_int_equal(vz_prepare_workspace(&p, bad, build3, cache, NULL, NULL, NULL, &e), VZ_ECONFLICT);
	assert_non_null(p.conflict);
	assert_non_null(strstr(p.conflict, "item 3,1"));
	assert_non_null(strstr(p.conflict, "org/a"));
	assert_non_null(strstr(p.conflict, " f"));
	assert_int_equal(p.nprojects, 0);
	vz_prepared_clear(&p);
	json_decref(bad);

	/* malformed requests */
	json_t *m1 = json_pack("{s:[{s:s}]}", "items", "project", "x");
	vz_err_clear(&e);
	assert_int_equal(vz_prepare_workspace(&p, m1, build3, cache, NULL, NULL, NULL, &e), VZ_EINVAL);
	json_decref(m1);
	json_t *m2 = request("refs/changes/2", "octopus", NULL);
	vz_err_clear(&e);
	char *build4 = vz_path_join(g_tmp, "build4");
	assert_int_equal(vz_prepare_workspace(&p, m2, build4, cache, NULL, NULL, NULL, &e), VZ_EINVAL);
	assert_non_null(strstr(vz_err_msg(&e), "octopus"));
	json_decref(m2);
	/* a change that does not exist names the project */
	json_t *m3 = request("refs/changes/99", "merge", NULL);
	vz_err_clear(&e);
	char *build5 = vz_path_join(g_tmp, "build5");
	assert_int_equal(vz_prepare_workspace(&p, m3, build5, cache, NULL, NULL, NULL, &e), VZ_ENOTFOUND);
	assert_non_null(strstr(vz_err_msg(&e), "example.org/org/b"));
	json_decref(m3);
	free(build);
	free(build3);
	free(build4);
	free(build5);
	free(cache);
	free(old);
	free(cst);
}

/* ---- a whole build on a local node ---- */

typedef struct sink {
	vz_buf log;
	json_t *result;
} sink;

static void emit(void *ctx, vz_msg_type type, json_t *body)
{
	sink *s = ctx;
	if (type == VZ_MSG_LOG)
		vz_buf_add(&s->log, json_string_value(json_object_get(body, "data")),
			   json_string_length(json_object_get(body, "data")));
	if (type == VZ_MSG_RESULT) {
		json_decref(s->result);
		s->result = json_incref(body);
	}
	json_decref(body);
}

static void run_build(json_t *req, const char *uuid, sink *s)
{
	char *work = vz_path_join(g_tmp, "work");
	json_object_set_new(req, "build", json_string(uuid));
	json_object_set_new(req, "attempt", json_integer(1));
	json_object_set_new(req, "job", json_string("j"));
	json_object_set_new(req, "project", json_string("org/b"));
	json_object_set_new(req, "timeout", json_integer(60));
	json_object_set_new(req, "node", json_pack("{s:s,s:s,s:[s]}", "name", "local", "connection", "local", "groups", "ci"));
	vz_build_env env = { .work_dir = work, .executor = "t" };
	volatile int cancel = 0;
	vz_buf_init(&s->log, 1 << 20);
	s->result = NULL;
	vz_build_run(req, &env, &cancel, emit, s);
	free(work);
}

static void test_build(void **state)
{
	(void)state;
	json_t *req = request("refs/changes/2", "merge", NULL);
	/* the commands run in the build's own project and see the others beside it */
	json_object_set_new(req, "commands", json_pack("[s,s]", "test -f two && git log -1 --format=%P HEAD | wc -w",
						      "echo A3=$(sed -n 3p ../a/f) C=$(git -C ../c rev-parse --abbrev-ref HEAD)"));
	sink s;
	run_build(req, "b1", &s);
	const char *res = json_string_value(json_object_get(s.result, "result"));
	if (strcmp(res, "SUCCESS") != 0)
		fprintf(stderr, "%s", vz_buf_cstr(&s.log));
	assert_string_equal(res, "SUCCESS");
	assert_non_null(strstr(vz_buf_cstr(&s.log), "A3=three C=main"));
	assert_int_equal(strlen(json_string_value(json_object_get(s.result, "commit"))), 40);
	json_decref(s.result);
	vz_buf_free(&s.log);
	json_decref(req);

	/* conflict: MERGE_CONFLICT with the item named, no command run */
	json_t *bad = json_pack("{s:[{s:s,s:s,s:s,s:s,s:s}, {s:s,s:s,s:s,s:s,s:s}], s:[s]}", "items", "id", "1,1", "project",
				"org/a", "repo", g_a, "branch", "main", "ref", "refs/changes/1", "id", "3,1", "project", "org/a",
				"repo", g_a, "branch", "main", "ref", "refs/changes/3", "commands", "echo RAN");
	run_build(bad, "b2", &s);
	assert_string_equal(json_string_value(json_object_get(s.result, "result")), "MERGE_CONFLICT");
	assert_non_null(strstr(json_string_value(json_object_get(s.result, "message")), "item 3,1"));
	assert_null(strstr(vz_buf_cstr(&s.log), "\nRAN"));
	json_decref(s.result);
	vz_buf_free(&s.log);
	json_decref(bad);

	/* the single-change form: repo/ref/branch at the top */
	json_t *one = json_pack("{s:s,s:s,s:s,s:s,s:[s]}", "repo", g_b, "ref", "refs/changes/2", "branch", "main",
				"canonical_project", "example.org/org/b", "commands", "test -f two");
	run_build(one, "b3", &s);
	assert_string_equal(json_string_value(json_object_get(s.result, "result")), "SUCCESS");
	json_decref(s.result);
	vz_buf_free(&s.log);
	json_decref(one);
}

static void test_build_playbooks(void **state)
{
	(void)state;
	static const struct {
		const char *pre, *vars, *result, *log1, *log2;
	} cases[] = {
		{ "pb/pre.yaml", "{}", "SUCCESS", "project=example.org/org/b change=2 items=2 host=local src=src/example.org/org/b",
		  "post success=True" },
		{ "pb/pre.yaml", "{\"fail_run\": true}", "FAILURE", "asked to fail", "post success=False" },
		{ "pb/pre.yaml", "{\"fail_post\": true}", "POST_FAILURE", "post-fail", "post success=True" },
		{ "pb/badpre.yaml", "{}", "RETRY", "pre_run playbook", NULL },
		/* host-vars over group-vars over job vars: fail_run false wins */
		{ "pb/pre.yaml", "{\"fail_run\": true}", "SUCCESS", "post success=True", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *req = request("refs/changes/2", "merge", NULL);
		json_object_set_new(req, "change", json_string("2,1"));
		json_object_set_new(req, "vars", json_loads(cases[i].vars, 0, NULL));
		json_object_set_new(req, "playbooks",
				    json_pack("{s:[{s:s,s:s,s:b}], s:[{s:s,s:s}], s:[{s:s,s:s}]}", "pre_run", "project",
					      "example.org/org/b", "path", cases[i].pre, "trusted", 1, "run", "project",
					      "example.org/org/b", "path", "pb/run.yaml", "post_run", "project", "example.org/org/b",
					      "path", "pb/post.yaml"));
		if (i == 4) {
			json_object_set_new(req, "group_vars", json_pack("{s:{s:b}}", "ci", "fail_run", 1));
			json_object_set_new(req, "host_vars", json_pack("{s:{s:b}}", "local", "fail_run", 0));
		}
		char uuid[32];
		snprintf(uuid, sizeof(uuid), "pb%zu", i);
		sink s;
		run_build(req, uuid, &s);
		const char *res = json_string_value(json_object_get(s.result, "result"));
		if (strcmp(res, cases[i].result) != 0 || !strstr(vz_buf_cstr(&s.log), cases[i].log1) ||
		    (cases[i].log2 && !strstr(vz_buf_cstr(&s.log), cases[i].log2)))
			fail_msg("case %zu: result %s (want %s), log:\n%s", i, res, cases[i].result, vz_buf_cstr(&s.log));
		if (getenv("VZ_SHOW_LOG"))
			fprintf(stderr, "%s", vz_buf_cstr(&s.log));
		if (strcmp(cases[i].result, "RETRY") == 0)
			assert_null(strstr(vz_buf_cstr(&s.log), "post success")); /* no post-run after a failed pre-run */
		json_decref(s.result);
		vz_buf_free(&s.log);
		json_decref(req);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_items_and_required_project),
		cmocka_unit_test(test_frozen_state_and_conflict),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_build_playbooks),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
