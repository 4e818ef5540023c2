/* bench_ssh: per-command overhead of vz_node on a warm session against raw libssh2 on an
 * equally warm session (same harness sshd, same run), and of the local connection against a
 * plain fork/exec/wait. Prints ms/command and ratios; fails only on errors, never on numbers.
 * N commands each (env VZ_BENCH_N, default 200). */
#include <errno.h>
#include <libssh2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vz_node.h"
#include "vz_test_sshd.h"
#include "vz_util.h"

#define WARMUP 20

static int vz_run_n(vz_node *n, int count, const char *what)
{
	for (int i = 0; i < count; i++) {
		vz_node_result res;
		vz_err e = { 0 };
		vz_node_cmd cmd = { .command = "/bin/true" };
		if (vz_node_exec(n, &cmd, &res, &e) != 0 || res.exit_status != 0) {
			fprintf(stderr, "bench_ssh: %s: %s (status %d)\n", what, vz_err_msg(&e),
				res.exit_status);
			return -1;
		}
	}
	return 0;
}

/* The peer: what a program using libssh2 directly does per command, blocking mode. */
typedef struct raw {
	int fd;
	LIBSSH2_SESSION *s;
} raw;

static int raw_open(raw *r, const vz_test_sshd *d)
{
	struct sockaddr_in a;
	int one = 1;

	memset(r, 0, sizeof(*r));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)vz_test_sshd_port(d));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (r->fd < 0 || connect(r->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return -1;
	/* same footing as vz_node, which sets it too */
	setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	r->s = libssh2_session_init();
	if (!r->s || libssh2_session_handshake(r->s, r->fd) != 0)
		return -1;
	/* no host key check here: this session only measures, it never runs anything of ours */
	const char *user = vz_test_sshd_user(d);
	if (libssh2_userauth_publickey_fromfile_ex(r->s, user, (unsigned)strlen(user), NULL,
						   vz_test_sshd_key(d), NULL) != 0)
		return -1;
	return 0;
}

static int raw_true(raw *r)
{
	char buf[4096];
	LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(r->s);
	int rc = -1;
	if (!ch)
		return -1;
	if (libssh2_channel_exec(ch, "/bin/true") != 0)
		goto out;
	for (;;) {
		ssize_t n = libssh2_channel_read(ch, buf, sizeof(buf));
		if (n < 0)
			goto out;
		if (n == 0)
			break;
	}
	if (libssh2_channel_close(ch) != 0 || libssh2_channel_wait_closed(ch) != 0)
		goto out;
	rc = libssh2_channel_get_exit_status(ch);
out:
	libssh2_channel_free(ch);
	return rc;
}

static void raw_close(raw *r)
{
	if (r->s) {
		libssh2_session_disconnect(r->s, "done");
		libssh2_session_free(r->s);
	}
	if (r->fd >= 0)
		close(r->fd);
}

static int fork_exec_wait(const char *path, char *const argv[])
{
	int status;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(path, argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(void)
{
	vz_test_sshd *d = NULL;
	vz_node *ssh = NULL, *local = NULL;
	vz_node_spec spec;
	vz_err e = { 0 };
	raw r = { -1, NULL };
	int64_t n = 200;
	int rc = 1;
	const char *env_n = getenv("VZ_BENCH_N");
	char *true_argv[] = { "true", NULL }, *sh_argv[] = { "sh", "-c", "/bin/true", NULL };

	if (env_n && vz_parse_i64(env_n, 1, 1000000, &n) != 0) {
		fprintf(stderr, "bench_ssh: VZ_BENCH_N must be a number from 1 to 1000000\n");
		return 1;
	}
	if (vz_node_global_init(&e) != 0 || vz_test_sshd_start(&d) != 0) {
		fprintf(stderr, "bench_ssh: %s\n", vz_err_msg(&e));
		goto out;
	}
	vz_test_sshd_spec(d, &spec);
	if (vz_node_connect(&ssh, &spec, &e) != 0) {
		fprintf(stderr, "bench_ssh: %s\n", vz_err_msg(&e));
		goto out;
	}
	if (raw_open(&r, d) != 0) {
		fprintf(stderr, "bench_ssh: raw libssh2 session failed\n");
		goto out;
	}
	/* warm both sessions (and sshd's caches) the same way */
	if (vz_run_n(ssh, WARMUP, "ssh warm-up") != 0)
		goto out;
	for (int i = 0; i < WARMUP; i++)
		if (raw_true(&r) != 0) {
			fprintf(stderr, "bench_ssh: raw libssh2 /bin/true failed\n");
			goto out;
		}

	/* alternate halves so drift on a noisy machine hits both sides alike */
	uint64_t t_vz = 0, t_raw = 0, t0;
	for (int half = 0; half < 2; half++) {
		int64_t k = half ? n - n / 2 : n / 2;
		t0 = vz_mono_ms();
		if (vz_run_n(ssh, (int)k, "ssh") != 0)
			goto out;
		t_vz += vz_mono_ms() - t0;
		t0 = vz_mono_ms();
		for (int64_t i = 0; i < k; i++)
			if (raw_true(&r) != 0) {
				fprintf(stderr, "bench_ssh: raw libssh2 /bin/true failed\n");
				goto out;
			}
		t_raw += vz_mono_ms() - t0;
	}
	double ms_vz = (double)t_vz / (double)n, ms_raw = (double)t_raw / (double)n;
	printf("ssh   %lld x /bin/true on a warm session: vz_node %.3f ms/command, raw libssh2 %.3f "
	       "ms/command, ratio %.2fx (goal <= 1.5x)\n", (long long)n, ms_vz, ms_raw,
	       ms_raw > 0 ? ms_vz / ms_raw : 0.0);

	vz_node_spec lspec = { .kind = VZ_NODE_LOCAL, .name = "bench" };
	if (vz_node_connect(&local, &lspec, &e) != 0 || vz_run_n(local, WARMUP, "local") != 0)
		goto out;
	t0 = vz_mono_ms();
	if (vz_run_n(local, (int)n, "local") != 0)
		goto out;
	uint64_t t_local = vz_mono_ms() - t0;
	t0 = vz_mono_ms();
	for (int64_t i = 0; i < n; i++)
		if (fork_exec_wait("/bin/true", true_argv) != 0)
			goto out;
	uint64_t t_fe = vz_mono_ms() - t0;
	t0 = vz_mono_ms();
	for (int64_t i = 0; i < n; i++)
		if (fork_exec_wait("/bin/sh", sh_argv) != 0)
			goto out;
	uint64_t t_fesh = vz_mono_ms() - t0;
	double ms_l = (double)t_local / (double)n, ms_fe = (double)t_fe / (double)n,
	       ms_fesh = (double)t_fesh / (double)n;
	printf("local %lld x /bin/true: vz_node %.3f ms/command, fork/exec/wait %.3f ms (ratio "
	       "%.2fx), fork/exec/wait of sh -c /bin/true %.3f ms (ratio %.2fx)\n", (long long)n, ms_l,
	       ms_fe, ms_fe > 0 ? ms_l / ms_fe : 0.0, ms_fesh, ms_fesh > 0 ? ms_l / ms_fesh : 0.0);
	rc = 0;
out:
	raw_close(&r);
	vz_node_close(ssh);
	vz_node_close(local);
	vz_test_sshd_stop(d);
	vz_node_global_cleanup();
	return rc;
}
