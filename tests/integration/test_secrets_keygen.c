/* vz_secrets, making keys in-process: a project's first use creates an RSA-4096 pair (Zuul's
 * traditional PEM, mode 0600, 470-byte chunks) that later uses get back unchanged, and two
 * processes creating the same project's key at once end up with one key. An integration test
 * rather than a unit test only because RSA-4096 generation takes minutes under valgrind, which
 * runs the unit tests; ASan+UBSan still run it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vz_secrets.h"
#include "vz_testutil.h"
#include "vz_util.h"

static char *g_dir;

static int setup(void **state)
{
	(void)state;
	g_dir = vz_test_tmpdir("secrets-keygen");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vz_test_rm(g_dir);
	free(g_dir);
	return 0;
}

static void test_first_use_creates_then_reuses(void **state)
{
	(void)state;
	vz_secrets_key *k = NULL, *k2 = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_secrets_key_get(&k, g_dir, "gerrit", "new/proj", 1, &e), 0);
	assert_int_equal(vz_secrets_key_bits(k), 4096);
	assert_true(vz_secrets_key_has_private(k));
	assert_int_equal(vz_secrets_chunk_size(k), 470);
	char *p = NULL;
	assert_int_equal(vz_secrets_key_path(&p, g_dir, "gerrit", "new/proj", &e), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	vz_buf b = VZ_BUF_INIT(1u << 16);
	assert_int_equal(vz_read_file(p, b.max, &b, &e), 0);
	assert_true(vz_startswith(b.ptr, "-----BEGIN RSA PRIVATE KEY-----\n"));
	vz_buf_free(&b);
	free(p);
	assert_int_equal(vz_secrets_key_get(&k2, g_dir, "gerrit", "new/proj", 1, &e), 0);
	char *p1 = NULL, *p2 = NULL;
	assert_int_equal(vz_secrets_key_pem(&p1, k, 1, &e), 0);
	assert_int_equal(vz_secrets_key_pem(&p2, k2, 1, &e), 0);
	assert_string_equal(p1, p2);
	free(p1);
	free(p2);
	vz_secrets_key_free(k);
	vz_secrets_key_free(k2);
}

/* Two processes making the same project's key at once end up with one key: the one linked
 * first. Each child prints the public key it got. */
static void test_key_race(void **state)
{
	(void)state;
	int fds[2][2];
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe(fds[i]), 0);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(fds[i][0]);
			vz_secrets_key *k = NULL;
			char *pem = NULL;
			vz_err e = { 0 };
			if (vz_secrets_key_get(&k, g_dir, "gerrit", "race/proj", 1, &e) || vz_secrets_key_pem(&pem, k, 0, &e))
				_exit(1);
			size_t n = strlen(pem);
			_exit(write(fds[i][1], pem, n) == (ssize_t)n ? 0 : 1);
		}
		close(fds[i][1]);
	}
	char got[2][2048];
	for (int i = 0; i < 2; i++) {
		size_t n = 0;
		ssize_t r;
		while (n < sizeof(got[i]) - 1 && (r = read(fds[i][0], got[i] + n, sizeof(got[i]) - 1 - n)) > 0)
			n += (size_t)r;
		got[i][n] = 0;
		close(fds[i][0]);
		int st = 0;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_true(vz_startswith(got[0], "-----BEGIN PUBLIC KEY-----"));
	assert_string_equal(got[0], got[1]);
	/* and that is the key on disk; no temporary file is left */
	vz_secrets_key *k = NULL;
	char *pem = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_secrets_key_get(&k, g_dir, "gerrit", "race/proj", 0, &e), 0);
	assert_int_equal(vz_secrets_key_pem(&pem, k, 0, &e), 0);
	assert_string_equal(pem, got[0]);
	free(pem);
	vz_secrets_key_free(k);
	char *dir = vz_path_join(g_dir, "keys/secrets/project/gerrit/race/proj");
	char *ls = vz_test_out("ls -A %s", dir);
	assert_string_equal(ls, "0.pem");
	free(ls);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_use_creates_then_reuses),
		cmocka_unit_test(test_key_race),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
