/* vz_workspace: checkouts from the bare cache, and caches damaged by killed processes or bad
 * disks: a stale lock, a half-made cache, a truncated pack, broken refs. Each is detected and
 * rebuilt and the checkout goes on; an unreachable repository leaves the cache alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vz_log.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

typedef struct fx {
	char *dir, *repo, *cache;
	int n;
} fx;

static int setup(void **state)
{
	fx *f = vz_xcalloc(1, sizeof(*f));
	f->dir = vz_test_tmpdir("vz-ws");
	f->repo = vz_path_join(f->dir, "p.git");
	f->cache = vz_path_join(f->dir, "cache");
	vz_test_git_repo(f->repo, 2, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	vz_test_rm(f->dir);
	free(f->dir);
	free(f->repo);
	free(f->cache);
	free(f);
	return 0;
}

/* checks out refs/changes/N into a fresh directory; returns the vz code */
static int checkout(fx *f, const char *repo, int change, vz_err *e)
{
	char ref[64], dest[64];
	snprintf(ref, sizeof(ref), "refs/changes/%d", change);
	snprintf(dest, sizeof(dest), "co-%d", f->n++);
	char *d = vz_path_join(f->dir, dest);
	char commit[41];
	vz_checkout_req req = { .cache_root = f->cache, .repo = repo, .ref = ref, .branch = "master", .dest = d };
	int rc = vz_workspace_checkout(&req, commit, e);
	if (rc && getenv("VZ_TEST_LOG"))
		fprintf(stderr, "checkout %s: %s\n", ref, vz_err_msg(e));
	if (rc == 0) {
		char name[32];
		snprintf(name, sizeof(name), "change-%d", change);
		char *p = vz_path_join(d, name);
		assert_int_equal(access(p, F_OK), 0);
		free(p);
	}
	free(d);
	return rc;
}

/* the one cache directory under f->cache */
static char *the_cache(fx *f)
{
	DIR *d = opendir(f->cache);
	assert_non_null(d);
	struct dirent *de;
	char *out = NULL;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n > 4 && strcmp(de->d_name + n - 4, ".git") == 0)
			out = vz_path_join(f->cache, de->d_name);
	}
	closedir(d);
	assert_non_null(out);
	return out;
}

static void test_checkout_and_reuse(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	assert_int_equal(checkout(f, f->repo, 1, &e), 0);
	assert_int_equal(checkout(f, f->repo, 2, &e), 0);
	/* the checkout shares the cache's objects instead of copying them */
	char *alt = vz_path_join(f->dir, "co-0/.git/objects/info/alternates");
	assert_int_equal(access(alt, F_OK), 0);
	free(alt);
}

static void test_stale_lock_is_removed(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	assert_int_equal(checkout(f, f->repo, 1, &e), 0);
	char *c = the_cache(f);
	vz_test_write(c, "config.lock", "");
	vz_test_write(c, "refs/vinz/fetch.lock", "");
	assert_int_equal(checkout(f, f->repo, 2, &e), 0);
	char *l = vz_path_join(c, "config.lock");
	assert_int_not_equal(access(l, F_OK), 0);
	free(l);
	free(c);
}

static void test_half_made_cache_is_rebuilt(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	assert_int_equal(checkout(f, f->repo, 1, &e), 0);
	char *c = the_cache(f);
	/* what a process killed inside git_repository_init leaves: a directory without HEAD */
	vz_test_rm(c);
	vz_test_write(c, "config.lock", "[core]\n");
	assert_int_equal(checkout(f, f->repo, 2, &e), 0);
	free(c);
}

static void test_truncated_pack_is_rebuilt(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	assert_int_equal(checkout(f, f->repo, 1, &e), 0);
	char *c = the_cache(f);
	int cut = vz_test_truncate_packs(c);
	/* a loose-object cache: damage an object file instead */
	if (!cut) {
		char *cmd = NULL;
		size_t n = strlen(c) + 128;
		cmd = malloc(n);
		snprintf(cmd, n, "find '%s/objects' -type f -path '*/objects/[0-9a-f][0-9a-f]/*' -exec sh -c ': > \"$1\"' _ {} \\;", c);
		assert_int_equal(system(cmd), 0);
		free(cmd);
	}
	/* remove the fetched ref so the next checkout must read the damaged objects */
	assert_int_equal(checkout(f, f->repo, 2, &e), 0);
	assert_int_equal(checkout(f, f->repo, 1, &e), 0);
	free(c);
}

static void test_half_written_ref_is_rebuilt(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	assert_int_equal(checkout(f, f->repo, 1, &e), 0);
	char *c = the_cache(f);
	/* what a crash in the middle of writing refs leaves: a short loose ref, a torn packed-refs */
	vz_test_write(c, "refs/vinz/fetch", "3a4f0c");
	vz_test_write(c, "refs/vinz/all/heads/master", "");
	vz_test_write(c, "packed-refs", "# pack-refs with: peeled fully-peeled sorted \n1234");
	assert_int_equal(checkout(f, f->repo, 2, &e), 0);
	assert_int_equal(checkout(f, f->repo, 1, &e), 0);
	free(c);
}

static void test_unreachable_repo_keeps_cache(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	assert_int_equal(checkout(f, f->repo, 1, &e), 0);
	char *gone = vz_path_join(f->dir, "nowhere.git");
	int rc = checkout(f, gone, 2, &e);
	assert_true(rc == VZ_ECONNECT || rc == VZ_ENOTFOUND);
	assert_non_null(strstr(vz_err_msg(&e), "nowhere.git"));
	free(gone);
	vz_err_clear(&e);
	/* the good cache still serves, and a missing ref is ENOTFOUND, not a rebuild */
	assert_int_equal(checkout(f, f->repo, 1, &e), 0);
	assert_int_equal(checkout(f, f->repo, 9, &e), VZ_ENOTFOUND);
}

int main(void)
{
	vz_log_set_level(VZ_LOG_QUIET);
	vz_err e = { 0 };
	vz_workspace_global_init(&e);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_checkout_and_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_lock_is_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_made_cache_is_rebuilt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_written_ref_is_rebuilt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_pack_is_rebuilt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_repo_keeps_cache, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	vz_workspace_global_cleanup();
	return rc;
}
