/* test_node_ssh: the ssh connection of vz_node against a real OpenSSH sshd on loopback (see
 * tests/lib/vz_test_sshd.h): output, exit statuses, stdin, env, cwd, large and binary output,
 * timeouts and cancel killing the remote process group, host key and auth failures, put. */
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



/* One sshd and one session for the group; tests needing other servers start their own. */
typedef struct fixture {
	vz_test_sshd *sshd;
	vz_node *n;
} fixture;

static fixture g_fx;

static int group_setup(void **state)
{
	vz_node_spec spec;
	vz_err e = { 0 };

	if (vz_node_global_init(&e) != 0 || vz_test_sshd_start(&g_fx.sshd) != 0) {
		fprintf(stderr, "group setup: %s\n", vz_err_msg(&e));
		return -1;
	}
	vz_test_sshd_spec(g_fx.sshd, &spec);
	if (vz_node_connect(&g_fx.n, &spec, &e) != 0) {
		fprintf(stderr, "group setup: %s (sshd log: %s)\n", vz_err_msg(&e),
			vz_test_sshd_log(g_fx.sshd));
		vz_test_sshd_stop(g_fx.sshd);
		g_fx.sshd = NULL;
		return -1;
	}
	*state = &g_fx;
	return 0;
}

static int group_teardown(void **state)
{
	vz_node_close(g_fx.n);
	vz_test_sshd_stop(g_fx.sshd);
	vz_node_global_cleanup();
	return 0;
}

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
	/* and it ran as the node user, with /bin/sh */
	cap_init(&c, 1 << 20);
	assert_int_equal(run(f, "id -un; readlink /proc/$$/exe", &c, &res, &e), 0);
	assert_non_null(strstr(vz_buf_cstr(&c.out), vz_test_sshd_user(f->sshd)));
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
	/* stderr interleaved, so neither stream may starve the other */
	snprintf(command, sizeof(command), "yes %.*s | head -c %u; echo done >&2", (int)pl - 1, pat,
		 BIG);
	cap_init(&c, 4096); /* the callback sees everything; only this copy is capped */
	uint64_t t0 = vz_mono_ms();
	assert_int_equal(run(f, command, &c, &res, &e), 0);
	fprintf(stderr, "20 MiB over ssh in %llu ms\n", (unsigned long long)(vz_mono_ms() - t0));
	assert_int_equal(res.exit_status, 0);
	assert_int_equal(c.out_bytes, BIG);
	assert_int_equal(c.out_hash, want);
	assert_string_equal(vz_buf_cstr(&c.err), "done\n");
	cap_free(&c);
}

static void test_cwd_env(void **state)
{
	fixture *f = *state;
	const char *env[] = { "VZ_A=hello world", "VZ_B=it's \"quoted\" $HOME", NULL };
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	vz_buf want = VZ_BUF_INIT(8192);
	cap_init(&c, 1 << 20);
	vz_node_cmd cmd = { .command = "pwd; printf '%s|%s\\n' \"$VZ_A\" \"$VZ_B\"",
			    .cwd = vz_test_sshd_workdir(f->sshd), .env = env, .on_output = cap_cb,
			    .ctx = &c };
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), 0);
	assert_int_equal(res.exit_status, 0);
	vz_buf_printf(&want, "%s\nhello world|it's \"quoted\" $HOME\n", vz_test_sshd_workdir(f->sshd));
	assert_string_equal(vz_buf_cstr(&c.out), vz_buf_cstr(&want));
	cap_free(&c);
	vz_buf_free(&want);

	cap_init(&c, 1 << 20);
	cmd.cwd = "/nonexistent/vz-dir";
	cmd.env = NULL;
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), 0);
	assert_int_not_equal(res.exit_status, 0);
	assert_non_null(strstr(vz_buf_cstr(&c.err), "/nonexistent/vz-dir"));
	cap_free(&c);

	const char *bad[] = { "A B=y", NULL };
	cmd.cwd = NULL;
	cmd.env = bad;
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), VZ_EINVAL);
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
	cmd.command = "exit 5"; /* reads none of its 4 MiB */
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), 0);
	assert_int_equal(res.exit_status, 5);
	cap_free(&c);
	free(in);

	cap_init(&c, 1 << 20);
	assert_int_equal(run(f, "cat; echo done", &c, &res, &e), 0);
	assert_string_equal(vz_buf_cstr(&c.out), "done\n");
	cap_free(&c);
}

static void test_timeout_kills_remote(void **state)
{
	fixture *f = *state;
	char command[8400], sleeparg[64], marker[4200];
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	struct stat st;

	/* unique sleep for pgrep; 6 s rather than 30 keeps the test short and still shows the
	 * marker never appears after the sleep would have ended */
	snprintf(sleeparg, sizeof(sleeparg), "sleep 6.%05d", (int)(getpid() % 100000));
	snprintf(marker, sizeof(marker), "%s/MARKER", vz_test_sshd_workdir(f->sshd));
	snprintf(command, sizeof(command), "%s; touch %s", sleeparg, marker);
	cap_init(&c, 1 << 20);
	uint64_t t0 = vz_mono_ms();
	vz_node_cmd cmd = { .command = command, .timeout_ms = 1000, .on_output = cap_cb, .ctx = &c };
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), VZ_ETIMEOUT);
	uint64_t took = vz_mono_ms() - t0;
	fprintf(stderr, "timeout returned after %llu ms: %s\n", (unsigned long long)took, e.msg);
	/* well before the sleep would have ended (6 s); a loaded machine may be slow to kill */
	assert_true(took >= 1000 && took < 5500);
	assert_int_equal(res.timed_out, 1);
	assert_int_equal(res.exit_status, 128 + 9);
	assert_true(gone(sleeparg));
	while (vz_mono_ms() - t0 < 7000) /* past the sleep's own end */
		usleep(100 * 1000);
	assert_int_not_equal(stat(marker, &st), 0);
	cap_free(&c);

	/* SIGTERM ignored does not matter: the session's group gets SIGKILL */
	snprintf(sleeparg, sizeof(sleeparg), "sleep 9.%05d", (int)(getpid() % 100000));
	snprintf(command, sizeof(command), "trap '' TERM; %s & %s; echo survived", sleeparg, sleeparg);
	cap_init(&c, 1 << 20);
	vz_err_clear(&e);
	cmd.command = command;
	cmd.timeout_ms = 300;
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), VZ_ETIMEOUT);
	assert_string_equal(vz_buf_cstr(&c.out), "");
	assert_true(gone(sleeparg));
	cap_free(&c);

	/* the session still works */
	cap_init(&c, 1 << 20);
	assert_int_equal(run(f, "echo alive", &c, &res, &e), 0);
	assert_string_equal(vz_buf_cstr(&c.out), "alive\n");
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


static void test_unknown_host_key(void **state)
{
	fixture *f = *state;
	char empty[4200], fp[128];
	vz_node_spec spec;
	vz_node *n = NULL;
	vz_err e = { 0 };

	vz_test_sshd_fingerprint(vz_test_sshd_host_pub(f->sshd), fp, sizeof(fp));
	snprintf(empty, sizeof(empty), "%s/empty_known_hosts", vz_test_sshd_dir(f->sshd));
	assert_int_equal(vz_write_file_atomic(empty, "", 0, 0644, &e), 0);
	vz_test_sshd_spec(f->sshd, &spec);
	spec.known_hosts = empty;
	assert_int_equal(vz_node_connect(&n, &spec, &e), VZ_EHOSTKEY);
	assert_null(n);
	fprintf(stderr, "unknown: %s\n", e.msg);
	assert_non_null(strstr(e.msg, fp));
	assert_non_null(strstr(e.msg, "ED25519 key SHA256:"));
	assert_non_null(strstr(e.msg, "ssh-keyscan"));
	assert_non_null(strstr(e.msg, "not known"));

	/* a known_hosts file that does not exist is the same: unknown */
	vz_err_clear(&e);
	snprintf(empty, sizeof(empty), "%s/missing_known_hosts", vz_test_sshd_dir(f->sshd));
	spec.known_hosts = empty;
	assert_int_equal(vz_node_connect(&n, &spec, &e), VZ_EHOSTKEY);
	assert_non_null(strstr(e.msg, fp));

	/* host_key instead of a file: the right one connects */
	vz_err_clear(&e);
	spec.known_hosts = NULL;
	spec.host_key = vz_test_sshd_host_key_line(f->sshd);
	assert_int_equal(vz_node_connect(&n, &spec, &e), 0);
	vz_node_close(n);
	n = NULL;

	/* neither: refused, no accept-anything */
	spec.host_key = NULL;
	assert_int_equal(vz_node_connect(&n, &spec, &e), VZ_EINVAL);
}

static void test_changed_host_key(void **state)
{
	fixture *f = *state;
	vz_test_sshd *other = NULL;
	char kh[4200], fp[128];
	vz_node_spec spec;
	vz_node *n = NULL;
	vz_err e = { 0 };

	assert_int_equal(vz_test_sshd_start(&other), 0);
	vz_test_sshd_fingerprint(vz_test_sshd_host_pub(other), fp, sizeof(fp));
	/* known_hosts says other's address has the first server's key */
	snprintf(kh, sizeof(kh), "%s/changed_known_hosts", vz_test_sshd_dir(other));
	assert_int_equal(vz_test_sshd_write_known_hosts(other, vz_test_sshd_host_key_line(f->sshd), kh), 0);
	vz_test_sshd_spec(other, &spec);
	spec.known_hosts = kh;
	int rc = vz_node_connect(&n, &spec, &e);
	fprintf(stderr, "changed: %s\n", e.msg);
	assert_int_equal(rc, VZ_EHOSTKEY);
	assert_null(n);
	assert_non_null(strstr(e.msg, "CHANGED"));
	assert_non_null(strstr(e.msg, fp));

	/* the same through host_key */
	vz_err_clear(&e);
	spec.known_hosts = NULL;
	spec.host_key = vz_test_sshd_host_key_line(f->sshd);
	assert_int_equal(vz_node_connect(&n, &spec, &e), VZ_EHOSTKEY);
	assert_non_null(strstr(e.msg, "CHANGED"));

	/* and with its own key it connects */
	vz_err_clear(&e);
	vz_test_sshd_spec(other, &spec);
	assert_int_equal(vz_node_connect(&n, &spec, &e), 0);
	vz_node_close(n);
	vz_test_sshd_stop(other);
}

static void test_closed_port(void **state)
{
	fixture *f = *state;
	vz_test_sshd *other = NULL;
	vz_node_spec spec;
	vz_node *n = NULL;
	vz_err e = { 0 };

	/* a port that surely has nothing: a server that was just stopped */
	assert_int_equal(vz_test_sshd_start(&other), 0);
	vz_test_sshd_spec(f->sshd, &spec);
	spec.port = vz_test_sshd_port(other);
	vz_test_sshd_stop(other);
	uint64_t t0 = vz_mono_ms();
	assert_int_equal(vz_node_connect(&n, &spec, &e), VZ_ECONNECT);
	assert_true(vz_mono_ms() - t0 < 5000); /* refused, not the 10 s connect timeout */
	assert_null(n);
	assert_non_null(strstr(e.msg, "refused"));
}

static void test_wrong_user_key(void **state)
{
	fixture *f = *state;
	char key[4200];
	vz_node_spec spec;
	vz_node *n = NULL;
	vz_err e = { 0 };

	snprintf(key, sizeof(key), "%s/other_key", vz_test_sshd_dir(f->sshd));
	assert_int_equal(vz_test_sshd_keygen(key), 0);
	vz_test_sshd_spec(f->sshd, &spec);
	spec.key_file = key;
	assert_int_equal(vz_node_connect(&n, &spec, &e), VZ_EAUTH);
	fprintf(stderr, "auth: %s\n", e.msg);
	assert_null(n);
	assert_non_null(strstr(e.msg, "authorized_keys"));

	vz_err_clear(&e);
	spec.key_file = "/nonexistent/key";
	assert_int_equal(vz_node_connect(&n, &spec, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "/nonexistent/key"));
}

static void test_put(void **state)
{
	fixture *f = *state;
	char path[4200];
	vz_buf back = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	struct stat st;
	static const char data[] = "line 1\n\0binary\377\n";
	cap c;
	vz_node_result res;

	snprintf(path, sizeof(path), "%s/it's a file", vz_test_sshd_workdir(f->sshd));
	assert_int_equal(vz_node_put(f->n, path, data, sizeof(data) - 1, 0640, &e), 0);
	/* the node is this machine: read it back directly, and through the node */
	assert_int_equal(vz_read_file(path, 1 << 20, &back, &e), 0);
	assert_int_equal(back.len, sizeof(data) - 1);
	assert_memory_equal(back.ptr, data, sizeof(data) - 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	cap_init(&c, 1 << 20);
	vz_node_cmd cmd = { .command = "cat \"$F\"", .env = (const char *const[]){ NULL, NULL },
			    .on_output = cap_cb, .ctx = &c };
	char envf[4300];
	snprintf(envf, sizeof(envf), "F=%s", path);
	const char *env[] = { envf, NULL };
	cmd.env = env;
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), 0);
	assert_int_equal(c.out.len, sizeof(data) - 1);
	assert_memory_equal(c.out.ptr, data, sizeof(data) - 1);
	cap_free(&c);

	/* 3 MiB, more than a channel window */
	size_t big = 3u << 20;
	char *blob = vz_xcalloc(1, big);
	for (size_t i = 0; i < big; i++)
		blob[i] = (char)(i * 7);
	assert_int_equal(vz_node_put(f->n, path, blob, big, 0600, &e), 0);
	vz_buf_free(&back);
	vz_buf_init(&back, 8u << 20);
	assert_int_equal(vz_read_file(path, 8u << 20, &back, &e), 0);
	assert_int_equal(back.len, big);
	assert_memory_equal(back.ptr, blob, big);
	free(blob);

	snprintf(path, sizeof(path), "%s/no/such/dir/f", vz_test_sshd_workdir(f->sshd));
	assert_int_equal(vz_node_put(f->n, path, "x", 1, 0600, &e), VZ_EIO);
	assert_non_null(strstr(e.msg, "no/such/dir"));
	vz_buf_free(&back);
}

static void test_many_commands(void **state)
{
	fixture *f = *state;
	uint64_t t0 = vz_mono_ms();
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
	fprintf(stderr, "200 commands in %llu ms\n", (unsigned long long)(vz_mono_ms() - t0));
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_streams_separate),
		cmocka_unit_test(test_large_output),
		cmocka_unit_test(test_cwd_env),
		cmocka_unit_test(test_stdin),
		cmocka_unit_test(test_timeout_kills_remote),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_unknown_host_key),
		cmocka_unit_test(test_changed_host_key),
		cmocka_unit_test(test_closed_port),
		cmocka_unit_test(test_wrong_user_key),
		cmocka_unit_test(test_put),
		cmocka_unit_test(test_many_commands),
		cmocka_unit_test(test_binary_output),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
