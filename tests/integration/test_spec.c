/* vz_spec against real repositories made with the git CLI: a queue across two projects and two
 * branches (each item on the result of the items ahead for its project and branch, a conflicting
 * item named with its project and paths and left out of the state behind it), a frozen repo
 * state, identical commit ids from two separate caches, no ref touched, files changed per item,
 * the in-repo Zuul configuration of a speculative commit read without a checkout, and a build
 * workspace checked by git itself (branches, HEAD, clean status, no remote, no objects copied). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_buf.h"
#include "vz_spec.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

static char *g_tmp;
static char g_a[600], g_b[600], g_a2[600]; /* bare repos: project a, project b, a second cache of a */

#define GITENV "GIT_AUTHOR_DATE='1500000000 +0000' GIT_COMMITTER_DATE='1500000000 +0000' "

/* Output of a command as a string (trailing newline removed); the caller frees. */
#define out_of vz_test_out

static int setup(void **state)
{
	vz_err e = { 0 };
	assert_int_equal(vz_workspace_global_init(&e), 0);
	g_tmp = vz_test_tmpdir("vz-spec");
	snprintf(g_a, sizeof(g_a), "%s/a.git", g_tmp);
	snprintf(g_b, sizeof(g_b), "%s/b.git", g_tmp);
	snprintf(g_a2, sizeof(g_a2), "%s/a2.git", g_tmp);
	/* project a: main with f.txt and zuul.yaml, branch stable; changes c1..c5 as refs/changes/N.
	 * c3 conflicts with c1 (same line), c5 edits another file, c4 goes to stable. */
	int rc = vz_test_sh(NULL,
		"set -e; cd %s; git init -q -b main w; cd w; git config user.email t@t; git config user.name t;"
		"seq 1 30 > f.txt; printf 'x\\n' > g.txt; printf -- '- job: {name: base}\\n' > zuul.yaml;"
		"git add -A; " GITENV "git commit -qm base; git branch stable;"
		"git checkout -q -b c1 main; sed -i 's/^5$/five/' f.txt; printf -- '- job: {name: c1}\\n' >> zuul.yaml;"
		"git commit -qam c1;"
		"git checkout -q -b c3 main; sed -i 's/^5$/FIVE/' f.txt; git commit -qam c3;"
		"git checkout -q -b c5 main; echo y >> g.txt; git commit -qam c5a; mkdir -p d; echo z > d/h.txt;"
		"git add -A; git commit -qm c5b;"
		"git checkout -q -b c4 stable; echo s >> g.txt; git commit -qam c4;"
		"git checkout -q main; echo later > later.txt; git add -A; " GITENV "git commit -qm later;"
		"git clone -q --bare . %s; git clone -q --bare . %s;"
		"for r in %s %s; do for c in 1 3 4 5; do git -C $r update-ref refs/changes/$c refs/heads/c$c; done; done;"
		"cd ..; git init -q -b main wb; cd wb; git config user.email t@t; git config user.name t;"
		"echo b > b.txt; git add -A; git commit -qm b0; git checkout -q -b c2; echo b2 >> b.txt; git commit -qam c2;"
		"git checkout -q main; git clone -q --bare . %s; git -C %s update-ref refs/changes/2 refs/heads/c2",
		g_tmp, g_a, g_a2, g_a, g_a2, g_b, g_b);
	assert_int_equal(rc, 0);
	(void)state;
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

static vz_spec *build_queue(const char *gitdir_a, const vz_spec_head *frozen, size_t nfrozen)
{
	vz_spec_item items[] = {
		{ "1,1", "example.org/a", "main", gitdir_a, "refs/changes/1", VZ_MERGE_MERGE, 1700000001 },
		{ "2,1", "example.org/b", "main", g_b, "refs/changes/2", VZ_MERGE_MERGE, 1700000002 },
		{ "3,1", "example.org/a", "main", gitdir_a, "refs/changes/3", VZ_MERGE_MERGE, 1700000003 },
		{ "4,1", "example.org/a", "stable", gitdir_a, "refs/changes/4", VZ_MERGE_CHERRY_PICK, 1700000004 },
		{ "5,1", "example.org/a", "main", gitdir_a, "refs/changes/5", VZ_MERGE_MERGE, 1700000005 },
		{ "6,1", "example.org/a", "main", gitdir_a, "refs/changes/404", VZ_MERGE_MERGE, 1700000006 },
	};
	vz_spec *s = NULL;
	vz_err e = { 0 };
	int rc = vz_spec_build(&s, items, sizeof(items) / sizeof(items[0]), frozen, nfrozen, &e);
	if (rc)
		fprintf(stderr, "vz_spec_build: %s\n", vz_err_msg(&e));
	assert_int_equal(rc, 0);
	return s;
}

static void test_queue(void **state)
{
	(void)state;
	char *refs_before = out_of("git -C %s for-each-ref; git -C %s for-each-ref", g_a, g_b);
	char *main_a = out_of("git -C %s rev-parse main", g_a);
	char *stable_a = out_of("git -C %s rev-parse stable", g_a);
	char *main_b = out_of("git -C %s rev-parse main", g_b);
	vz_spec *s = build_queue(g_a, NULL, 0);

	/* heads before the queue are the branch heads */
	assert_string_equal(vz_spec_head_after(s, (size_t)-1, "example.org/a", "main"), main_a);
	assert_string_equal(vz_spec_head_after(s, (size_t)-1, "example.org/a", "refs/heads/stable"), stable_a);

	/* 1: merged onto main */
	const vz_spec_result *r1 = vz_spec_item_result(s, 0);
	assert_true(r1->merged);
	assert_string_equal(r1->base, main_a);
	char *p = out_of("git -C %s rev-list --parents -n1 %s", g_a, r1->commit);
	char *c1 = out_of("git -C %s rev-parse refs/changes/1", g_a);
	char want[200];
	snprintf(want, sizeof(want), "%s %s %s", r1->commit, main_a, c1);
	assert_string_equal(p, want);
	free(p);
	char *f5 = out_of("git -C %s show %s:f.txt | sed -n 5p", g_a, r1->commit);
	assert_string_equal(f5, "five");
	free(f5);
	assert_int_equal(r1->nfiles, 2); /* f.txt zuul.yaml */
	assert_string_equal(r1->files[0], "f.txt");
	assert_string_equal(r1->files[1], "zuul.yaml");

	/* 2: other project, fast-forward onto b's main */
	const vz_spec_result *r2 = vz_spec_item_result(s, 1);
	assert_true(r2->merged);
	assert_string_equal(r2->base, main_b);
	char *c2 = out_of("git -C %s rev-parse refs/changes/2", g_b);
	assert_string_equal(r2->commit, c2);
	free(c2);

	/* 3: conflicts with 1; the message names item, project, branch and path */
	const vz_spec_result *r3 = vz_spec_item_result(s, 2);
	assert_false(r3->merged);
	assert_string_equal(r3->commit, "");
	assert_string_equal(r3->base, r1->commit);
	assert_int_equal(r3->nconflicts, 1);
	assert_string_equal(r3->conflicts[0], "f.txt");
	assert_non_null(strstr(r3->message, "item 3,1"));
	assert_non_null(strstr(r3->message, "project example.org/a"));
	assert_non_null(strstr(r3->message, "branch main"));
	assert_non_null(strstr(r3->message, "f.txt"));

	/* 4: stable is its own line: cherry-picked onto stable's head */
	const vz_spec_result *r4 = vz_spec_item_result(s, 3);
	assert_true(r4->merged);
	assert_string_equal(r4->base, stable_a);
	p = out_of("git -C %s rev-list --parents -n1 %s", g_a, r4->commit);
	snprintf(want, sizeof(want), "%s %s", r4->commit, stable_a);
	assert_string_equal(p, want);
	free(p);

	/* 5: onto 1's result, not 3's (3 left the queue); files of its two commits */
	const vz_spec_result *r5 = vz_spec_item_result(s, 4);
	assert_true(r5->merged);
	assert_string_equal(r5->base, r1->commit);
	p = out_of("git -C %s rev-parse %s^1", g_a, r5->commit);
	assert_string_equal(p, r1->commit);
	free(p);
	assert_int_equal(r5->nfiles, 2);
	assert_string_equal(r5->files[0], "d/h.txt");
	assert_string_equal(r5->files[1], "g.txt");

	/* 6: a change that does not exist is reported on its item; the queue goes on */
	const vz_spec_result *r6 = vz_spec_item_result(s, 5);
	assert_false(r6->merged);
	assert_non_null(strstr(r6->message, "item 6,1"));
	assert_non_null(strstr(r6->message, "refs/changes/404"));

	/* the state each build sees */
	assert_string_equal(vz_spec_head_after(s, 0, "example.org/a", "main"), r1->commit);
	assert_null(vz_spec_head_after(s, 0, "example.org/b", "main"));
	assert_string_equal(vz_spec_head_after(s, 1, "example.org/b", "main"), r2->commit);
	assert_string_equal(vz_spec_head_after(s, 2, "example.org/a", "main"), r1->commit);
	assert_string_equal(vz_spec_head_after(s, 4, "example.org/a", "main"), r5->commit);
	assert_string_equal(vz_spec_head_after(s, 4, "example.org/a", "stable"), r4->commit);
	assert_string_equal(vz_spec_head_after(s, 4, "example.org/b", "main"), r2->commit);

	/* JSON form */
	json_t *j = vz_spec_to_json(s);
	json_t *it5 = json_array_get(json_object_get(j, "items"), 4);
	assert_string_equal(json_string_value(json_object_get(it5, "commit")), r5->commit);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(it5, "state"), "example.org/a"), "stable")),
			    r4->commit);
	assert_true(json_is_false(json_object_get(json_array_get(json_object_get(j, "items"), 2), "merged")));
	json_decref(j);

	/* nothing changed any ref */
	char *refs_after = out_of("git -C %s for-each-ref; git -C %s for-each-ref", g_a, g_b);
	assert_string_equal(refs_before, refs_after);
	free(refs_after);

	/* the same queue from a second, separate cache gives the same commits */
	vz_spec *s2 = build_queue(g_a2, NULL, 0);
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(vz_spec_item_result(s, i)->commit, vz_spec_item_result(s2, i)->commit);
	vz_spec_free(s2);

	vz_spec_free(s);
	free(c1);
	free(refs_before);
	free(main_a);
	free(stable_a);
	free(main_b);
}

static void test_frozen(void **state)
{
	(void)state;
	/* freeze a's main one commit back (before "later") */
	char *old = out_of("git -C %s rev-parse main~1", g_a);
	vz_spec_head frozen[] = { { "example.org/a", "refs/heads/main", old }, { "example.org/a", "refs/tags/v1", old } };
	vz_spec *s = build_queue(g_a, frozen, 2);
	const vz_spec_result *r1 = vz_spec_item_result(s, 0);
	assert_true(r1->merged);
	assert_string_equal(r1->base, old);
	/* c1 branched from main~1 itself: a fast-forward */
	char *c1 = out_of("git -C %s rev-parse refs/changes/1", g_a);
	assert_string_equal(r1->commit, c1);
	assert_string_equal(vz_spec_head_after(s, 4, "example.org/a", "refs/tags/v1"), old);
	assert_string_equal(vz_spec_head_after(s, (size_t)-1, "example.org/a", "main"), old);
	/* the file "later" is not in the state built on the frozen head */
	assert_int_not_equal(vz_test_sh(NULL, "git -C %s cat-file -e %s:later.txt", g_a, vz_spec_item_result(s, 4)->commit), 0);
	vz_spec_free(s);

	vz_spec_head bad[] = { { "example.org/a", "refs/heads/main", "nothex" } };
	vz_spec *s2 = NULL;
	vz_err e = { 0 };
	vz_spec_item one = { "1,1", "example.org/a", "main", g_a, "refs/changes/1", VZ_MERGE_MERGE, 1 };
	assert_int_equal(vz_spec_build(&s2, &one, 1, bad, 1, &e), VZ_EINVAL);
	assert_null(s2);
	/* a branch that does not exist is an error naming it */
	vz_err_clear(&e);
	vz_spec_item nob = { "1,1", "example.org/a", "nobranch", g_a, "refs/changes/1", VZ_MERGE_MERGE, 1 };
	assert_int_equal(vz_spec_build(&s2, &nob, 1, NULL, 0, &e), VZ_ENOTFOUND);
	assert_non_null(strstr(vz_err_msg(&e), "nobranch"));
	free(c1);
	free(old);
}

static void test_config(void **state)
{
	(void)state;
	vz_spec *s = build_queue(g_a, NULL, 0);
	/* the speculative commit of item 1 holds c1's zuul.yaml edit */
	json_t *files = NULL, *ignored = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_spec_read_config(&files, &ignored, g_a, vz_spec_item_result(s, 0)->commit, 0, &e), 0);
	assert_int_equal(json_object_size(files), 1);
	assert_string_equal(json_string_value(json_object_get(files, "zuul.yaml")), "- job: {name: base}\n- job: {name: c1}\n");
	assert_int_equal(json_array_size(ignored), 0);
	json_decref(files);
	json_decref(ignored);
	vz_spec_free(s);

	/* Zuul's rule: zuul.yaml, zuul.d/, .zuul.yaml, .zuul.d/ — the first with content wins */
	char repo[700];
	snprintf(repo, sizeof(repo), "%s/cfg", g_tmp);
	assert_int_equal(vz_test_sh(NULL,
		"set -e; git init -q -b main %s; cd %s; git config user.email t@t; git config user.name t;"
		": > zuul.yaml; mkdir -p zuul.d/sub .zuul.d; echo 'b: 1' > zuul.d/b.yaml; echo 'a: 1' > zuul.d/sub/a.yaml;"
		"echo notyaml > zuul.d/readme.txt; echo 'c: 1' > zuul.d/c.yml; : > zuul.d/empty.yaml;"
		"echo 'h: 1' > .zuul.yaml; echo 'x: 1' > .zuul.d/x.yaml; git add -A; git commit -qm one;"
		"git rm -rq zuul.d; git commit -qm two; git rm -q zuul.yaml .zuul.yaml; git commit -qm three", repo, repo), 0);
	char gitdir[800];
	snprintf(gitdir, sizeof(gitdir), "%s/.git", repo);
	assert_int_equal(vz_spec_read_config(&files, &ignored, gitdir, "HEAD~2", 0, &e), 0);
	const char *key;
	json_t *v;
	char order[400] = "";
	json_object_foreach(files, key, v) {
		strcat(order, key);
		strcat(order, " ");
	}
	assert_string_equal(order, "zuul.d/b.yaml zuul.d/sub/a.yaml ");
	assert_string_equal(json_string_value(json_array_get(ignored, 0)), ".zuul.yaml");
	assert_string_equal(json_string_value(json_array_get(ignored, 1)), ".zuul.d");
	json_decref(files);
	json_decref(ignored);
	/* zuul.yaml empty, zuul.d gone: .zuul.yaml */
	assert_int_equal(vz_spec_read_config(&files, &ignored, gitdir, "HEAD~1", 0, &e), 0);
	assert_string_equal(json_string_value(json_object_get(files, ".zuul.yaml")), "h: 1\n");
	assert_int_equal(json_object_size(files), 1);
	json_decref(files);
	json_decref(ignored);
	assert_int_equal(vz_spec_read_config(&files, NULL, gitdir, "HEAD", 0, &e), 0);
	assert_string_equal(json_string_value(json_object_get(files, ".zuul.d/x.yaml")), "x: 1\n");
	json_decref(files);
	/* caps */
	assert_int_equal(vz_spec_read_config(&files, NULL, gitdir, "HEAD~2", 4, &e), VZ_ETOOBIG);
	assert_null(files);
	vz_err_clear(&e);
	assert_int_equal(vz_spec_read_config(&files, NULL, gitdir, "nope", 0, &e), VZ_ENOTFOUND);
}

static void test_workspace(void **state)
{
	(void)state;
	vz_spec *s = build_queue(g_a, NULL, 0);
	char dest[700];
	snprintf(dest, sizeof(dest), "%s/ws/src/example.org/a", g_tmp);
	const char *spec_main = vz_spec_head_after(s, 4, "example.org/a", "main");
	const char *spec_stable = vz_spec_head_after(s, 4, "example.org/a", "stable");
	vz_spec_branch br[] = { { "main", spec_main }, { "stable", spec_stable } };
	vz_err e = { 0 };
	int rc = vz_spec_workspace(g_a, dest, br, 2, "main", &e);
	if (rc)
		fprintf(stderr, "%s\n", vz_err_msg(&e));
	assert_int_equal(rc, 0);
	char *head = out_of("git -C %s rev-parse HEAD", dest);
	assert_string_equal(head, spec_main);
	char *sym = out_of("git -C %s symbolic-ref HEAD", dest);
	assert_string_equal(sym, "refs/heads/main");
	char *branches = out_of("git -C %s for-each-ref --format='%%(refname) %%(objectname)'", dest);
	char want[300];
	snprintf(want, sizeof(want), "refs/heads/main %s\nrefs/heads/stable %s", spec_main, spec_stable);
	assert_string_equal(branches, want);
	char *status = out_of("git -C %s status --porcelain", dest);
	assert_string_equal(status, "");
	char *remotes = out_of("git -C %s remote", dest);
	assert_string_equal(remotes, "");
	char *h = out_of("cat %s/d/h.txt", dest);
	assert_string_equal(h, "z");
	/* objects come from the cache: none were copied */
	char *loose = out_of("find %s/.git/objects -type f ! -path '*/info/*' | wc -l", dest);
	assert_string_equal(loose, "0");
	char *fsck = out_of("git -C %s fsck --no-dangling 2>&1 && echo ok", dest);
	assert_non_null(strstr(fsck, "ok"));

	/* detached: a commit id that is no branch */
	char dest2[700];
	snprintf(dest2, sizeof(dest2), "%s/ws2", g_tmp);
	assert_int_equal(vz_spec_workspace(g_a, dest2, br, 2, vz_spec_item_result(s, 0)->commit, &e), 0);
	assert_int_not_equal(vz_test_sh(NULL, "git -C %s symbolic-ref -q HEAD", dest2), 0);
	char *head2 = out_of("git -C %s rev-parse HEAD", dest2);
	assert_string_equal(head2, vz_spec_item_result(s, 0)->commit);
	/* errors: existing dest, unknown commit, bad branch name */
	assert_int_equal(vz_spec_workspace(g_a, dest2, br, 2, "main", &e), VZ_EINVAL);
	vz_err_clear(&e);
	char dest3[700];
	snprintf(dest3, sizeof(dest3), "%s/ws3", g_tmp);
	vz_spec_branch missing[] = { { "main", "0123456789012345678901234567890123456789" } };
	assert_int_equal(vz_spec_workspace(g_a, dest3, missing, 1, "main", &e), VZ_ENOTFOUND);
	vz_err_clear(&e);
	vz_spec_branch badname[] = { { "a..b", spec_main } };
	assert_int_equal(vz_spec_workspace(g_a, dest3, badname, 1, spec_main, &e), VZ_EINVAL);
	assert_int_not_equal(vz_test_sh(NULL, "test -e %s", dest3), 0);

	free(head);
	free(sym);
	free(branches);
	free(status);
	free(remotes);
	free(h);
	free(loose);
	free(fsck);
	free(head2);
	vz_spec_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue),
		cmocka_unit_test(test_frozen),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_workspace),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
