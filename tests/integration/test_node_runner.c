/* test_node_runner: vz_node_exec through the persistent command runner (vz_node_set_runner)
 * against a real OpenSSH sshd on loopback: every guarantee of the channel-per-command path
 * (exit statuses and signals, env, cwd, stdin, separate streams, any output size and bytes,
 * timeout and cancel killing the process group), commands given as an argv, framing that output
 * cannot confuse, and the
 * fallback to a channel per command when the runner is killed from outside. */
#include <pthread.h>
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
	vz_test_sshd *sshd;
	vz_node *n;     /* with the runner */
	vz_node *plain; /* without: to look at and kill the runner from outside */
} fixture;

static fixture g_fx;
static int g_mode = 1; /* vz_node_set_runner's argument: bash when there is one, or /bin/sh + setsid */

static int connect_node(vz_node **out, int runner)
{
	vz_node_spec spec;
	vz_err e = { 0 };
	vz_test_sshd_spec(g_fx.sshd, &spec);
	if (vz_node_connect(out, &spec, &e) != 0) {
		fprintf(stderr, "connect: %s (sshd log: %s)\n", vz_err_msg(&e), vz_test_sshd_log(g_fx.sshd));
		return -1;
	}
	vz_node_set_runner(*out, runner);
	return 0;
}

static int group_setup(void **state)
{
	vz_err e = { 0 };

	if (vz_node_global_init(&e) != 0 || vz_test_sshd_start(&g_fx.sshd) != 0) {
		fprintf(stderr, "group setup: %s\n", vz_err_msg(&e));
		return -1;
	}
	if (connect_node(&g_fx.n, g_mode) != 0 || connect_node(&g_fx.plain, 0) != 0) {
		vz_node_close(g_fx.n);
		vz_test_sshd_stop(g_fx.sshd);
		return -1;
	}
	*state = &g_fx;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	vz_node_close(g_fx.n);
	vz_node_close(g_fx.plain);
	vz_test_sshd_stop(g_fx.sshd);
	vz_node_global_cleanup();
	return 0;
}

static int run_on(vz_node *n, const char *command, cap *c, vz_node_result *res, vz_err *e)
{
	vz_node_cmd cmd = { .command = command, .on_output = cap_cb, .ctx = c };
	return vz_node_exec(n, &cmd, res, e);
}

/* Runs command on n and checks status, stdout and stderr exactly. */
static void expect(vz_node *n, const char *command, int status, const char *out, const char *err)
{
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	cap_init(&c, 1 << 20);
	if (run_on(n, command, &c, &res, &e) != 0)
		fail_msg("%s: %s", command, vz_err_msg(&e));
	if (res.exit_status != status)
		fail_msg("%s: exit status %d, want %d", command, res.exit_status, status);
	if (c.out.len != strlen(out) || (c.out.len && memcmp(c.out.ptr, out, c.out.len)))
		fail_msg("%s: stdout [%s], want [%s]", command, vz_buf_cstr(&c.out), out);
	if (err && (c.err.len != strlen(err) || (c.err.len && memcmp(c.err.ptr, err, c.err.len))))
		fail_msg("%s: stderr [%s], want [%s]", command, vz_buf_cstr(&c.err), err);
	cap_free(&c);
}

static void test_runs_through_runner(void **state)
{
	fixture *f = *state;
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	char want[64];

	expect(f->n, "echo hello", 0, "hello\n", "");
	long pid = vz_node_runner_pid(f->n);
	assert_true(pid > 1);
	/* the command's parent is the runner: no new channel and login shell per command */
	snprintf(want, sizeof(want), "%ld\n", pid);
	expect(f->n, "echo $PPID", 0, want, "");
	cap_init(&c, 1 << 20);
	assert_int_equal(run_on(f->n, "id -un; readlink /proc/$$/exe", &c, &res, &e), 0);
	assert_non_null(strstr(vz_buf_cstr(&c.out), vz_test_sshd_user(f->sshd)));
	cap_free(&c);
	/* the runner is the shell asked for */
	cap_init(&c, 1 << 20);
	assert_int_equal(run_on(f->n, "readlink /proc/$PPID/exe", &c, &res, &e), 0);
	fprintf(stderr, "runner shell: %s", vz_buf_cstr(&c.out));
	if (g_mode == VZ_NODE_RUNNER_SH || system("command -v bash >/dev/null 2>&1") != 0)
		assert_null(strstr(vz_buf_cstr(&c.out), "bash"));
	else
		assert_non_null(strstr(vz_buf_cstr(&c.out), "bash"));
	cap_free(&c);
	/* runner variables are not the command's: its own shell, not the runner's */
	expect(f->n, "echo \"[$s][$n][$l][$p][$f]\"", 0, "[][][][][]\n", "");
	assert_int_equal(vz_node_runner_pid(f->n), pid);
}

static void test_exit_codes(void **state)
{
	fixture *f = *state;
	expect(f->n, "exit 0", 0, "", "");
	expect(f->n, "exit 3", 3, "", "");
	expect(f->n, "exit 255", 255, "", "");
	expect(f->n, "false", 1, "", "");
	expect(f->n, "kill -TERM $$", 128 + 15, "", "");
	expect(f->n, "kill -KILL $$", 128 + 9, "", "");
	expect(f->n, "sh -c 'kill -SEGV $$'", 128 + 11, "", NULL);
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	cap_init(&c, 1 << 20);
	assert_int_equal(run_on(f->n, "vz-no-such-command-xyz", &c, &res, &e), 0);
	assert_int_equal(res.exit_status, 127);
	assert_non_null(strstr(vz_buf_cstr(&c.err), "vz-no-such-command-xyz"));
	cap_free(&c);
	/* a syntax error is the command's, not the runner's */
	cap_init(&c, 1 << 20);
	assert_int_equal(run_on(f->n, "if then fi (", &c, &res, &e), 0);
	assert_int_equal(res.exit_status, 2);
	cap_free(&c);
	expect(f->n, "echo still", 0, "still\n", "");
}

static void test_streams_and_newlines(void **state)
{
	fixture *f = *state;
	expect(f->n, "echo out1; echo err1 >&2; echo out2; echo err2 >&2", 0, "out1\nout2\n", "err1\nerr2\n");
	expect(f->n, "printf abc; printf def >&2", 0, "abc", "def");
	expect(f->n, "printf '\\n\\n'; exit 4", 4, "\n\n", "");
	expect(f->n, "printf 'no newline'; exit 7", 7, "no newline", "");
	expect(f->n, "echo next", 0, "next\n", "");
	expect(f->n, "printf 'line\\nwith\\nnewlines\\n' 'x'", 0, "line\nwith\nnewlines\n", "");
}

static void test_marker_lookalikes(void **state)
{
	fixture *f = *state;
	static const char fake[] = "vzr-0123456789abcdef0123456789abcdef:E 0\n";
	char command[512];
	cap c;
	vz_node_result res;
	vz_err e = { 0 };

	snprintf(command, sizeof(command), "printf '%%s' '%s'; printf '%%s' '%s' >&2; echo after; exit 6",
		 fake, fake);
	char want[256];
	snprintf(want, sizeof(want), "%safter\n", fake);
	expect(f->n, command, 6, want, fake);
	/* a prefix of the marker at the very end, and the runner's own words */
	expect(f->n, "printf 'vzr-'", 0, "vzr-", "");
	expect(f->n, "printf 'xvzr-0'; printf vzr >&2", 0, "xvzr-0", "vzr");
	expect(f->n, "echo vinz-runner-ready 1; echo 1; echo 2", 0, "vinz-runner-ready 1\n1\n2\n", "");
	/* a command line that looks like a request */
	expect(f->n, "printf '3\\nexit 9\\n'", 0, "3\nexit 9\n", "");
	/* many marker-like prefixes across chunk boundaries */
	cap_init(&c, 1 << 20);
	assert_int_equal(run_on(f->n, "yes vzr-vzr | head -c 300000", &c, &res, &e), 0);
	assert_int_equal(res.exit_status, 0);
	assert_int_equal(c.out_bytes, 300000);
	for (size_t i = 0; i < c.out.len; i++)
		if (c.out.ptr[i] != "vzr-vzr\n"[i % 8])
			fail_msg("byte %zu differs", i);
	cap_free(&c);
	expect(f->n, "echo ok", 0, "ok\n", "");
}

static void test_cwd_env(void **state)
{
	fixture *f = *state;
	const char *env[] = { "VZ_A=hello world", "VZ_B=it's \"quoted\" $HOME\nline2", NULL };
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	vz_buf want = VZ_BUF_INIT(8192);
	cap_init(&c, 1 << 20);
	vz_node_cmd cmd = { .command = "pwd; printf '%s|%s\\n' \"$VZ_A\" \"$VZ_B\"",
			    .cwd = vz_test_sshd_workdir(f->sshd), .env = env, .on_output = cap_cb, .ctx = &c };
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), 0);
	assert_int_equal(res.exit_status, 0);
	vz_buf_printf(&want, "%s\nhello world|it's \"quoted\" $HOME\nline2\n", vz_test_sshd_workdir(f->sshd));
	assert_string_equal(vz_buf_cstr(&c.out), vz_buf_cstr(&want));
	cap_free(&c);
	vz_buf_free(&want);
	/* env and cwd are the command's only: the next one has neither */
	expect(f->n, "echo \"[$VZ_A]\"; test \"$PWD\" = \"$HOME\" && echo home", 0, "[]\nhome\n", "");

	cap_init(&c, 1 << 20);
	cmd.cwd = "/nonexistent/vz-dir";
	cmd.env = NULL;
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), 0);
	assert_int_not_equal(res.exit_status, 0);
	assert_non_null(strstr(vz_buf_cstr(&c.err), "/nonexistent/vz-dir"));
	cap_free(&c);
	/* a multi-line command */
	expect(f->n, "a=1\nb=2\necho $((a+b))\n", 0, "3\n", "");
}

static void test_stdin(void **state)
{
	fixture *f = *state;
	static const char data[] = "hello\0world\n\377 no newline";
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
	memset(in, '\n', big); /* lines the runner must not take for requests */
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
	/* no stdin: end of file at once, and the runner's own stdin is not the command's */
	expect(f->n, "cat; echo done", 0, "done\n", "");
	expect(f->n, "read x; echo \"[$x] $?\"", 0, "[] 1\n", "");
}

#define BIG (10u * 1024 * 1024)
#define PATTERN "0123456789abcdefghijklmnopqrstuvwxyz\n"

static void test_large_and_binary_output(void **state)
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
	snprintf(command, sizeof(command), "yes %.*s | head -c %u; echo done >&2", (int)pl - 1, pat, BIG);
	cap_init(&c, 4096);
	uint64_t t0 = vz_mono_ms();
	assert_int_equal(run_on(f->n, command, &c, &res, &e), 0);
	fprintf(stderr, "10 MiB through the runner in %llu ms\n", (unsigned long long)(vz_mono_ms() - t0));
	assert_int_equal(res.exit_status, 0);
	assert_int_equal(c.out_bytes, BIG);
	assert_int_equal(c.out_hash, want);
	assert_string_equal(vz_buf_cstr(&c.err), "done\n");
	cap_free(&c);

	/* every byte value, on both streams, no final newline */
	cap_init(&c, 1 << 20);
	const char *bin = "i=0; while [ $i -lt 256 ]; do printf \"\\\\$(printf %o $i)\"; i=$((i+1)); done; "
			  "printf '\\000\\377' >&2";
	assert_int_equal(run_on(f->n, bin, &c, &res, &e), 0);
	assert_int_equal(res.exit_status, 0);
	assert_int_equal(c.out.len, 256);
	for (int i = 0; i < 256; i++)
		assert_int_equal((unsigned char)c.out.ptr[i], i);
	assert_int_equal(c.err.len, 2);
	assert_memory_equal(c.err.ptr, "\000\377", 2);
	cap_free(&c);
	expect(f->n, "echo after", 0, "after\n", "");
}

static void test_timeout_kills_group(void **state)
{
	fixture *f = *state;
	char command[8400], sleeparg[64], childarg[64], marker[4200];
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	struct stat st;
	long pid = vz_node_runner_pid(f->n);

	snprintf(sleeparg, sizeof(sleeparg), "sleep 6.%05d", (int)(getpid() % 100000));
	snprintf(childarg, sizeof(childarg), "sleep 8.%05d", (int)(getpid() % 100000));
	snprintf(marker, sizeof(marker), "%s/RUNNER-MARKER", vz_test_sshd_workdir(f->sshd));
	/* a child in the background that ignores TERM, and the command itself */
	snprintf(command, sizeof(command), "(trap '' TERM; %s) & echo started; %s; touch %s", childarg,
		 sleeparg, marker);
	cap_init(&c, 1 << 20);
	uint64_t t0 = vz_mono_ms();
	vz_node_cmd cmd = { .command = command, .timeout_ms = 800, .on_output = cap_cb, .ctx = &c };
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), VZ_ETIMEOUT);
	uint64_t took = vz_mono_ms() - t0;
	fprintf(stderr, "timeout returned after %llu ms: %s\n", (unsigned long long)took, e.msg);
	/* well before the sleep would have ended (6 s); a loaded machine may be slow to kill */
	assert_true(took >= 800 && took < 5500);
	assert_int_equal(res.timed_out, 1);
	assert_int_equal(res.exit_status, 128 + 9);
	assert_string_equal(vz_buf_cstr(&c.out), "started\n");
	assert_true(gone(sleeparg));
	assert_true(gone(childarg));
	while (vz_mono_ms() - t0 < 7000) /* past the sleep's own end */
		usleep(100 * 1000);
	assert_int_not_equal(stat(marker, &st), 0);
	cap_free(&c);
	/* the runner survived and runs the next command */
	expect(f->n, "echo alive", 0, "alive\n", "");
	assert_int_equal(vz_node_runner_pid(f->n), pid);
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
	expect(f->n, "echo alive", 0, "alive\n", "");
}

static void test_many_commands(void **state)
{
	fixture *f = *state;
	char command[64], want[64];
	uint64_t t0 = vz_mono_ms();
	for (int i = 0; i < 200; i++) {
		snprintf(command, sizeof(command), "echo %d; echo e%d >&2; exit %d", i, i, i % 7);
		snprintf(want, sizeof(want), "%d\n", i);
		char werr[64];
		snprintf(werr, sizeof(werr), "e%d\n", i);
		expect(f->n, command, i % 7, want, werr);
	}
	fprintf(stderr, "200 commands through the runner in %llu ms\n", (unsigned long long)(vz_mono_ms() - t0));
	assert_true(vz_node_runner_pid(f->n) > 1);
}

static void test_killed_runner_falls_back(void **state)
{
	fixture *f = *state;
	vz_node *n = NULL;
	char kill_cmd[64];
	cap c;
	vz_node_result res;
	vz_err e = { 0 };

	assert_int_equal(connect_node(&n, g_mode), 0);
	expect(n, "echo one", 0, "one\n", "");
	long pid = vz_node_runner_pid(n);
	assert_true(pid > 1);
	snprintf(kill_cmd, sizeof(kill_cmd), "kill -9 %ld", pid);
	expect(f->plain, kill_cmd, 0, "", "");
	/* the next command notices, runs on its own channel, and so do the rest */
	expect(n, "echo two", 0, "two\n", "");
	assert_int_equal(vz_node_runner_pid(n), 0);
	expect(n, "echo three >&2; exit 3", 3, "", "three\n");
	vz_node_close(n);

	/* a runner that dies while its command runs: that command fails and is not rerun */
	assert_int_equal(connect_node(&n, g_mode), 0);
	cap_init(&c, 1 << 20);
	assert_int_equal(run_on(n, "kill -9 $PPID; sleep 0.3; echo ran", &c, &res, &e), VZ_EIO);
	assert_non_null(strstr(vz_err_msg(&e), "not run again"));
	cap_free(&c);
	expect(n, "echo four", 0, "four\n", "");
	vz_node_close(n);
}

/* Runs argv on n and checks status, stdout and (when err is set) that stderr contains err. */
static void expect_argv(vz_node *n, const char *const *argv, const char *cwd, const char *const *env,
			int status, const char *out, const char *err)
{
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	cap_init(&c, 1 << 20);
	vz_node_cmd cmd = { .argv = argv, .cwd = cwd, .env = env, .on_output = cap_cb, .ctx = &c };
	if (vz_node_exec(n, &cmd, &res, &e) != 0)
		fail_msg("%s: %s", argv[0], vz_err_msg(&e));
	if (res.exit_status != status)
		fail_msg("%s: exit status %d, want %d (stderr %s)", argv[0], res.exit_status, status,
			 vz_buf_cstr(&c.err));
	if (strcmp(vz_buf_cstr(&c.out), out))
		fail_msg("%s: stdout [%s], want [%s]", argv[0], vz_buf_cstr(&c.out), out);
	if (err && !strstr(vz_buf_cstr(&c.err), err))
		fail_msg("%s: stderr [%s], want it to contain [%s]", argv[0], vz_buf_cstr(&c.err), err);
	cap_free(&c);
}

/* vz_node_cmd.argv: the words reach the program as they are (no shell expansion), with cwd, env
 * and stdin as for a command line; the program's parent is the runner itself (no shell of ours in
 * between); a timeout kills its group; the runner's variables are not its; the same on a plain
 * session and a local node. */
static void test_argv(void **state)
{
	fixture *f = *state;
	const char *env[] = { "VZ_A=it's $HOME", NULL };
	const char *pr[] = { "printf", "%s|%s|%s\n", "a  b", "it's $HOME `x` ;|", "~", NULL };
	const char *pr_out = "a  b|it's $HOME `x` ;||~\n";
	const char *cw[] = { "sh", "-c", "pwd; echo \"$VZ_A\"", NULL };
	const char *pp[] = { "sh", "-c", "echo $PPID", NULL };
	const char *vars[] = { "sh", "-c", "echo \"[$s][$n][$l][$p][$f][$i][$r]\"", NULL };
	const char *nf[] = { "/nonexistent/vz-no-such-cmd", "x", NULL };
	const char *st[] = { "false", NULL };
	vz_buf want = VZ_BUF_INIT(8192);
	char pid[64];

	expect_argv(f->n, pr, NULL, NULL, 0, pr_out, "");
	vz_buf_printf(&want, "%s\nit's $HOME\n", vz_test_sshd_workdir(f->sshd));
	expect_argv(f->n, cw, vz_test_sshd_workdir(f->sshd), env, 0, vz_buf_cstr(&want), "");
	snprintf(pid, sizeof(pid), "%ld\n", vz_node_runner_pid(f->n));
	assert_true(vz_node_runner_pid(f->n) > 1);
	expect_argv(f->n, pp, NULL, NULL, 0, pid, "");
	expect_argv(f->n, vars, NULL, NULL, 0, "[][][][][][][]\n", "");
	expect_argv(f->n, nf, NULL, NULL, 127, "", "vz-no-such-cmd");
	expect_argv(f->n, st, NULL, NULL, 1, "", "");
	expect_argv(f->n, cw, "/nonexistent/vz-dir", NULL, 1, "", "/nonexistent/vz-dir");

	/* stdin */
	cap c;
	vz_node_result res;
	vz_err e = { 0 };
	const char *cat[] = { "cat", NULL };
	cap_init(&c, 1 << 20);
	vz_node_cmd cmd = { .argv = cat, .stdin_data = "fed\n", .stdin_len = 4, .on_output = cap_cb, .ctx = &c };
	assert_int_equal(vz_node_exec(f->n, &cmd, &res, &e), 0);
	assert_string_equal(vz_buf_cstr(&c.out), "fed\n");
	cap_free(&c);

	/* a timeout kills the program and what it started */
	char script[512], sleeparg[64], childarg[64];
	snprintf(sleeparg, sizeof(sleeparg), "sleep 4.%05d", (int)(getpid() % 100000) + 1);
	snprintf(childarg, sizeof(childarg), "sleep 8.%05d", (int)(getpid() % 100000) + 1);
	snprintf(script, sizeof(script), "(trap '' TERM; %s) & echo started; %s", childarg, sleeparg);
	const char *to[] = { "sh", "-c", script, NULL };
	cap_init(&c, 1 << 20);
	vz_node_cmd tc = { .argv = to, .timeout_ms = 800, .on_output = cap_cb, .ctx = &c };
	assert_int_equal(vz_node_exec(f->n, &tc, &res, &e), VZ_ETIMEOUT);
	assert_int_equal(res.timed_out, 1);
	assert_string_equal(vz_buf_cstr(&c.out), "started\n");
	assert_true(gone(sleeparg));
	assert_true(gone(childarg));
	cap_free(&c);
	expect(f->n, "echo alive", 0, "alive\n", "");
	long rp = vz_node_runner_pid(f->n);
	assert_int_equal(rp, strtol(pid, NULL, 10)); /* the runner lived through the kill */

	/* not exactly one of command and a non-empty argv */
	const char *empty[] = { NULL };
	vz_node_cmd both = { .command = "true", .argv = st }, none = { .argv = empty };
	assert_int_equal(vz_node_exec(f->n, &both, &res, &e), VZ_EINVAL);
	assert_int_equal(vz_node_exec(f->n, &none, &res, &e), VZ_EINVAL);

	/* the same without the runner, and on a local node */
	expect_argv(f->plain, pr, NULL, NULL, 0, pr_out, "");
	expect_argv(f->plain, cw, vz_test_sshd_workdir(f->sshd), env, 0, vz_buf_cstr(&want), "");
	expect_argv(f->plain, nf, NULL, NULL, 127, "", "vz-no-such-cmd");
	vz_node *l = NULL;
	vz_node_spec spec = { .kind = VZ_NODE_LOCAL, .name = "l" };
	assert_int_equal(vz_node_connect(&l, &spec, &e), 0);
	expect_argv(l, pr, NULL, NULL, 0, pr_out, "");
	expect_argv(l, nf, NULL, NULL, 127, "", "vz-no-such-cmd");
	vz_node_close(l);
	vz_buf_free(&want);
}

static void test_runner_off_is_plain(void **state)
{
	fixture *f = *state;
	expect(f->plain, "echo plain", 0, "plain\n", "");
	assert_int_equal(vz_node_runner_pid(f->plain), 0);
	/* a local node ignores the option */
	vz_node *l = NULL;
	vz_node_spec spec = { .kind = VZ_NODE_LOCAL, .name = "l" };
	vz_err e = { 0 };
	assert_int_equal(vz_node_connect(&l, &spec, &e), 0);
	vz_node_set_runner(l, 1);
	expect(l, "echo local", 0, "local\n", "");
	assert_int_equal(vz_node_runner_pid(l), 0);
	vz_node_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_through_runner),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_streams_and_newlines),
		cmocka_unit_test(test_marker_lookalikes),
		cmocka_unit_test(test_cwd_env),
		cmocka_unit_test(test_stdin),
		cmocka_unit_test(test_large_and_binary_output),
		cmocka_unit_test(test_timeout_kills_group),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_many_commands),
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_killed_runner_falls_back),
		cmocka_unit_test(test_runner_off_is_plain),
	};
	int failed = cmocka_run_group_tests_name("runner: bash", tests, group_setup, group_teardown);
	g_mode = VZ_NODE_RUNNER_SH;
	failed += cmocka_run_group_tests_name("runner: /bin/sh + setsid", tests, group_setup, group_teardown);
	return failed;
}
