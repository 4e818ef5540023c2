/* test_node_local: the local connection of vz_node: output streams, exit statuses, stdin, env,
 * cwd, large and binary output, timeouts and cancel killing the whole process group. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vz_node.h"
#include "vz_test_node.h"
#include "vz_test_sshd.h"
#include "vz_util.h"

typedef vz_test_cap cap;
#define cap_init vz_test_cap_init
#define cap_free vz_test_cap_free
#define cap_cb vz_test_cap_cb
#define gone vz_test_gone
#define set_flag_later vz_test_set_flag_later

typedef struct fixture {
	vz_node *n;
	char dir[4096];
} fixture;

static int setup(void **state)
{
	fixture *f = vz_xcalloc(1, sizeof(*f));
	vz_node_spec spec = { .kind = VZ_NODE_LOCAL, .name = "local-test" };
	vz_err e = { 0 };
	const char *tmp = getenv("TMPDIR");

	snprintf(f->dir, sizeof(f->dir), "%s/vz-node-local-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
	if (!mkdtemp(f->dir) || vz_node_connect(&f->n, &spec, &e) != 0) {
		fprintf(stderr, "setup: %s %s\n", strerror(errno), vz_err_msg(&e));
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	vz_err e = { 0 };
	vz_node_close(f->n);
	vz_rm_rf(f->dir, &e);
	free(f);
	return 0;
}

/* Runs cmd with output captured; returns vz_node_exec's result. */
static int run(fixture *f, const char *command, cap *c, vz_node_result *res, vz_err *e)
{
	vz_node_cmd cmd = { .command = command, .on_output = cap_cb, .ctx = c };
	return vz_node_exec(f->n, &cmd, res, e);
}

static void test_echo(void **state)
{
	fixture *f = *state;
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	cap_init(&c, 1 << 20);
	assert_int_equal(run(f, "echo hello", &c, &res, &e), 0);
	assert_int_equal(res.exit_status, 0);
	assert_int_equal(res.timed_out, 0);
	assert_string_equal(vz_buf_cstr(&c.out), "hello\n");
	assert_string_equal(vz_buf_cstr(&c.err), "");
	cap_free(&c);
}

static void test_exit_codes(void **state)
{
	static const struct { const char *cmd; int status; } cases[] = {
		{ "exit 0", 0 },
		{ "exit 3", 3 },
		{ "vz-no-such-command-xyz", 127 },
		{ "kill -TERM $$", 128 + 15 },
		{ "false", 1 },
	};
	fixture *f = *state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cap c;
		vz_node_result res;
		vz_err e = { 0 };
		cap_init(&c, 1 << 20);
		assert_int_equal(run(f, cases[i].cmd, &c, &res, &e), 0);
		if (res.exit_status != cases[i].status)
			fail_msg("%s: exit status %d, want %d", cases[i].cmd, res.exit_status,
				 cases[i].status);
		cap_free(&c);
	}
}

static void test_streams_separate(void **state)
{
	fixture *f = *state;
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	cap_init(&c, 1 << 20);
	assert_int_equal(run(f, "echo out1; echo err1 >&2; echo out2; echo err2 >&2", &c, &res, &e), 0);
	assert_string_equal(vz_buf_cstr(&c.out), "out1\nout2\n");
	assert_string_equal(vz_buf_cstr(&c.err), "err1\nerr2\n");
	cap_free(&c);
}

#define BIG (20u * 1024 * 1024)
#define PATTERN "0123456789abcdefghijklmnopqrstuvwxyz\n"

static void test_large_output(void **state)
{
	fixture *f = *state;
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	char command[256];
	uint32_t want = 2166136261u;
	const char *pat = PATTERN;
	size_t pl = strlen(pat);

	for (size_t i = 0; i < BIG; i++)
		want = (want ^ (unsigned char)pat[i % pl]) * 16777619u;
	snprintf(command, sizeof(command), "yes %.*s | head -c %u", (int)pl - 1, pat, BIG);
	cap_init(&c, 4096); /* the callback sees everything; only this copy is capped */
	assert_int_equal(run(f, command, &c, &res, &e), 0);
	assert_int_equal(res.exit_status, 0);
	assert_int_equal(c.out_bytes, BIG);
	assert_int_equal(c.out_hash, want);
	cap_free(&c);
}

static void test_cwd_env(void **state)
{
	fixture *f = *state;
	const char *env[] = { "VZ_A=hello world", "VZ_B=it's \"quoted\" $HOME", "PATH=/usr/bin:/bin",
			      NULL };
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	vz_buf want = VZ_BUF_INIT(8192);
	cap_init(&c, 1 << 20);
	vz_node_cmd cmd = { .command = "pwd; printf '%s|%s\\n' \"$VZ_A\" \"$VZ_B\"", .cwd = f->dir,
			    .env = env, .on_output = cap_cb, .ctx = &c };
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), 0);
	assert_int_equal(res.exit_status, 0);
	vz_buf_printf(&want, "%s\nhello world|it's \"quoted\" $HOME\n", f->dir);
	assert_string_equal(vz_buf_cstr(&c.out), vz_buf_cstr(&want));
	cap_free(&c);
	vz_buf_free(&want);

	/* a missing directory is the command's failure, reported on its stderr */
	cap_init(&c, 1 << 20);
	cmd.cwd = "/nonexistent/vz-dir";
	cmd.env = NULL;
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), 0);
	assert_int_not_equal(res.exit_status, 0);
	assert_non_null(strstr(vz_buf_cstr(&c.err), "/nonexistent/vz-dir"));
	cap_free(&c);

	/* a bad name is refused before anything runs */
	const char *bad[] = { "1X=y", NULL };
	cmd.cwd = NULL;
	cmd.env = bad;
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "1X=y"));
}

static void test_stdin(void **state)
{
	fixture *f = *state;
	static const char data[] = "hello\0world\n";
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	cap_init(&c, 1 << 20);
	vz_node_cmd cmd = { .command = "cat", .stdin_data = data, .stdin_len = sizeof(data) - 1,
			    .on_output = cap_cb, .ctx = &c };
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), 0);
	assert_int_equal(c.out.len, sizeof(data) - 1);
	assert_memory_equal(c.out.ptr, data, sizeof(data) - 1);
	cap_free(&c);

	/* 4 MiB in, counted on the other side; and a command that reads none of it */
	size_t big = 4u << 20;
	char *in = vz_xcalloc(1, big);
	memset(in, 'z', big);
	cap_init(&c, 1 << 20);
	cmd.command = "wc -c";
	cmd.stdin_data = in;
	cmd.stdin_len = big;
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), 0);
	assert_int_equal(res.exit_status, 0);
	assert_string_equal(vz_buf_cstr(&c.out), "4194304\n");
	cap_free(&c);
	cap_init(&c, 1 << 20);
	cmd.command = "exit 5";
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), 0);
	assert_int_equal(res.exit_status, 5);
	cap_free(&c);
	free(in);

	/* no stdin: reads EOF at once */
	cap_init(&c, 1 << 20);
	assert_int_equal(run(f, "cat; echo done", &c, &res, &e), 0);
	assert_string_equal(vz_buf_cstr(&c.out), "done\n");
	cap_free(&c);
}


static void test_timeout_kills_group(void **state)
{
	fixture *f = *state;
	char command[8400], sleeparg[64], marker[4200];
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	struct stat st;

	/* a unique sleep so pgrep finds only ours; 6 s instead of 30 keeps the test short while
	 * still proving the marker never comes after the sleep would have ended */
	snprintf(sleeparg, sizeof(sleeparg), "sleep 6.%05d", (int)(getpid() % 100000));
	snprintf(marker, sizeof(marker), "%s/MARKER", f->dir);
	snprintf(command, sizeof(command), "%s; touch %s", sleeparg, marker);
	cap_init(&c, 1 << 20);
	uint64_t t0 = vz_mono_ms();
	vz_node_cmd cmd = { .command = command, .timeout_ms = 1000, .on_output = cap_cb, .ctx = &c };
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), VZ_ETIMEOUT);
	uint64_t took = vz_mono_ms() - t0;
	/* well before the sleep would have ended (6 s); a loaded machine may be slow to kill */
	assert_true(took >= 1000 && took < 5500);
	assert_int_equal(res.timed_out, 1);
	assert_non_null(strstr(e.msg, "timed out"));
	assert_true(gone(sleeparg));
	while (vz_mono_ms() - t0 < 7000) /* past the sleep's own end */
		usleep(100 * 1000);
	assert_int_not_equal(stat(marker, &st), 0);
	cap_free(&c);

	/* a command ignoring SIGTERM gets SIGKILL after the grace */
	snprintf(sleeparg, sizeof(sleeparg), "sleep 9.%05d", (int)(getpid() % 100000));
	snprintf(command, sizeof(command), "trap '' TERM; %s; echo survived", sleeparg);
	cap_init(&c, 1 << 20);
	vz_err_clear(&e);
	t0 = vz_mono_ms();
	cmd.command = command;
	cmd.timeout_ms = 300;
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), VZ_ETIMEOUT);
	took = vz_mono_ms() - t0;
	assert_true(took < 8000); /* the grace, then SIGKILL: before the 9 s sleep ends */
	assert_int_equal(res.exit_status, 128 + 9);
	assert_string_equal(vz_buf_cstr(&c.out), "");
	assert_true(gone(sleeparg));
	cap_free(&c);
}


static void test_cancel(void **state)
{
	fixture *f = *state;
	char command[256], sleeparg[64];
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	volatile int flag = 0;
	pthread_t th;

	snprintf(sleeparg, sizeof(sleeparg), "sleep 7.%05d", (int)(getpid() % 100000));
	snprintf(command, sizeof(command), "%s; echo not-canceled", sleeparg);
	cap_init(&c, 1 << 20);
	vz_node_cmd cmd = { .command = command, .cancel = &flag, .on_output = cap_cb, .ctx = &c };
	uint64_t t0 = vz_mono_ms();
	assert_int_equal(pthread_create(&th, NULL, set_flag_later, (void *)&flag), 0);
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), VZ_ECANCELED);
	pthread_join(th, NULL);
	assert_true(vz_mono_ms() - t0 < 6500); /* before the 7 s sleep ends */
	assert_int_equal(res.timed_out, 0);
	assert_string_equal(vz_buf_cstr(&c.out), "");
	assert_true(gone(sleeparg));
	cap_free(&c);

	/* the callback cancels */
	cap_init(&c, 1 << 20);
	c.cancel_at_out = 1;
	vz_err_clear(&e);
	snprintf(command, sizeof(command), "echo first; %s; echo second", sleeparg);
	cmd.cancel = NULL;
	t0 = vz_mono_ms();
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), VZ_ECANCELED);
	assert_true(vz_mono_ms() - t0 < 6500); /* before the 7 s sleep ends */
	assert_string_equal(vz_buf_cstr(&c.out), "first\n");
	assert_true(gone(sleeparg));
	cap_free(&c);
}

static void test_put(void **state)
{
	fixture *f = *state;
	char path[4200];
	vz_buf back = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	struct stat st;
	static const char data[] = "line 1\n\0binary\377\n";

	snprintf(path, sizeof(path), "%s/it's a file", f->dir);
	assert_int_equal(vz_node_put(f->n, path, data, sizeof(data) - 1, 0640, &e), 0);
	assert_int_equal(vz_read_file(path, 1 << 20, &back, &e), 0);
	assert_int_equal(back.len, sizeof(data) - 1);
	assert_memory_equal(back.ptr, data, sizeof(data) - 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	/* overwrite, shorter, new mode */
	assert_int_equal(vz_node_put(f->n, path, "x", 1, 0600, &e), 0);
	vz_buf_reset(&back);
	assert_int_equal(vz_read_file(path, 1 << 20, &back, &e), 0);
	assert_string_equal(vz_buf_cstr(&back), "x");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* parents must exist */
	snprintf(path, sizeof(path), "%s/no/such/dir/f", f->dir);
	assert_int_equal(vz_node_put(f->n, path, "x", 1, 0600, &e), VZ_EIO);
	assert_non_null(strstr(e.msg, "no/such/dir"));
	vz_buf_free(&back);
}

static void test_many_commands(void **state)
{
	fixture *f = *state;
	for (int i = 0; i < 200; i++) {
		cap c;
		vz_node_result res;
		vz_err e = { 0 };
		char command[64], want[32];
		snprintf(command, sizeof(command), "echo %d", i);
		snprintf(want, sizeof(want), "%d\n", i);
		cap_init(&c, 1024);
		assert_int_equal(run(f, command, &c, &res, &e), 0);
		assert_string_equal(vz_buf_cstr(&c.out), want);
		cap_free(&c);
	}
}

static void test_binary_output(void **state)
{
	fixture *f = *state;
	static const char want[] = { 'a', 0, 'b', 0, (char)0xff, 'c' };
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	cap_init(&c, 1024);
	assert_int_equal(run(f, "printf 'a\\000b\\000\\377c'", &c, &res, &e), 0);
	assert_int_equal(c.out.len, sizeof(want));
	assert_memory_equal(c.out.ptr, want, sizeof(want));
	cap_free(&c);
}

static void test_bad_args(void **state)
{
	fixture *f = *state;
	vz_node_result res;
	vz_err e = { 0 };
	vz_node_cmd cmd = { .command = NULL };
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), VZ_EINVAL);
	vz_node_close(NULL);
	vz_node_spec spec = { .kind = 99, .name = "x" };
	vz_node *n = NULL;
	vz_err_clear(&e);
	assert_int_equal(vz_node_connect(&n, &spec, &e), VZ_EINVAL);
	assert_null(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streams_separate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cwd_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_kills_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
