/* bench_playbook: 50 tasks of `command: /bin/true` on one loopback host (the harness sshd):
 * the in-process engine (vz_playbook_run) with its persistent runner (the default) and with a
 * channel per task, `vinz playbook`, ansible-playbook with its defaults and with
 * ANSIBLE_PIPELINING=1, against raw libssh2 exec (a new channel per command on one warm
 * session) and vz_node_exec through the runner on a warm session, all in one run. Then the peak RSS of one process running 20 such playbooks at once.
 * Prints times and ratios; fails only on errors, never on numbers. VZ_BENCH_TASKS changes 50;
 * VZ_BENCH_NO_ANSIBLE=1 skips the (slow) Ansible runs; VZ_BENCH_ONLY=engine|engine-channel|node|
 * node-argv|node-channel|raw runs only that one, five times (to profile it). Each fast runner is
 * measured REPS times, interleaved with the others, and its median counts: on a shared machine a
 * neighbour's burst then spoils one sample, not the figure. */
#include <libssh2.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vz_inventory.h"
#include "vz_playbook.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"

static vz_test_sshd *sshd;
static vz_inventory *inv;
static char pb_path[4096], inv_path[4096];

/* The peer: a program using libssh2 directly, blocking, one channel per command. */
static int raw_run(int n, double *ms)
{
	struct sockaddr_in a;
	int one = 1, rc = -1, fd = socket(AF_INET, SOCK_STREAM, 0);
	LIBSSH2_SESSION *s = NULL;
	char buf[4096];

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)vz_test_sshd_port(sshd));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto out;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	const char *user = vz_test_sshd_user(sshd);
	if (!(s = libssh2_session_init()) || libssh2_session_handshake(s, fd) != 0 ||
	    libssh2_userauth_publickey_fromfile_ex(s, user, (unsigned)strlen(user), NULL, vz_test_sshd_key(sshd), NULL))
		goto out;
	uint64_t t0 = vz_mono_ms();
	for (int i = 0; i < n; i++) {
		LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(s);
		if (!ch || libssh2_channel_exec(ch, "/bin/true") != 0)
			goto out;
		while (libssh2_channel_read(ch, buf, sizeof(buf)) > 0)
			;
		libssh2_channel_close(ch);
		libssh2_channel_wait_closed(ch);
		int st = libssh2_channel_get_exit_status(ch);
		libssh2_channel_free(ch);
		if (st != 0)
			goto out;
	}
	*ms = (double)(vz_mono_ms() - t0);
	rc = 0;
out:
	if (s) {
		libssh2_session_disconnect(s, "done");
		libssh2_session_free(s);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* vz_node_exec of /bin/true n times on one warm session, through the runner or not, as a
 * command line (run by /bin/sh on the node) or as an argv (exec'd directly). */
static int node_run_opt(int n, int runner, int argv, double *ms)
{
	vz_node_spec spec;
	vz_node *node = NULL;
	vz_node_result res;
	vz_err e = { 0 };
	static const char *const av[] = { "/bin/true", NULL };
	vz_node_cmd cmd = { .command = argv ? NULL : "/bin/true", .argv = argv ? av : NULL };
	int rc = -1;

	vz_test_sshd_spec(sshd, &spec);
	if (vz_node_connect(&node, &spec, &e) != 0)
		goto out;
	vz_node_set_runner(node, runner);
	if (vz_node_exec(node, &cmd, &res, &e) != 0 || res.exit_status != 0) /* starts the runner */
		goto out;
	uint64_t t0 = vz_mono_ms();
	for (int i = 0; i < n; i++)
		if (vz_node_exec(node, &cmd, &res, &e) != 0 || res.exit_status != 0)
			goto out;
	*ms = (double)(vz_mono_ms() - t0);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "bench_playbook: node: %s\n", vz_err_msg(&e));
	vz_node_close(node);
	return rc;
}

static int node_run(int n, int runner, double *ms)
{
	return node_run_opt(n, runner, 0, ms);
}

static int engine_run_opt(int no_runner, double *ms)
{
	const char *pbs[] = { pb_path };
	vz_playbook_opts o = { .playbooks = pbs, .nplaybooks = 1, .inventory = inv,
			       .known_hosts = vz_test_sshd_known_hosts(sshd), .no_runner = no_runner };
	vz_playbook_result res;
	vz_err e = { 0 };
	uint64_t t0 = vz_mono_ms();
	int rc = vz_playbook_run(&res, &o, &e);
	*ms = (double)(vz_mono_ms() - t0);
	if (rc || res.exit_code) {
		fprintf(stderr, "bench_playbook: engine: %s (exit %d)\n", vz_err_msg(&e), res.exit_code);
		return -1;
	}
	return 0;
}

static int engine_run(double *ms)
{
	return engine_run_opt(0, ms);
}

static void *engine_thread(void *arg)
{
	double ms;
	*(int *)arg = engine_run(&ms);
	return NULL;
}

static int cmd_run(const char *const *argv, double *ms)
{
	uint64_t t0 = vz_mono_ms();
	int st = vz_test_sshd_run(argv, NULL);
	*ms = (double)(vz_mono_ms() - t0);
	if (st != 0)
		fprintf(stderr, "bench_playbook: %s exited %d\n", argv[0], st);
	return st;
}

#define REPS 5

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median of REPS samples (sorts them). */
static double median(double *v)
{
	qsort(v, REPS, sizeof(*v), dbl_cmp);
	return v[REPS / 2];
}

static long rss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

int main(void)
{
	int rc = 1;
	int64_t ntasks = 50;
	const char *env_n = getenv("VZ_BENCH_TASKS");
	char *tmp = vz_test_tmpdir("vz-bench-pb");
	vz_err e = { 0 };
	vz_buf pb = VZ_BUF_INIT(1u << 20);

	if (env_n && vz_parse_i64(env_n, 1, 10000, &ntasks) != 0) {
		fprintf(stderr, "bench_playbook: VZ_BENCH_TASKS must be 1..10000\n");
		return 1;
	}
	if (vz_node_global_init(&e) != 0 || vz_test_sshd_start(&sshd) != 0)
		goto out;
	vz_buf_puts(&pb, "- hosts: node\n  gather_facts: false\n  tasks:\n");
	for (int64_t i = 0; i < ntasks; i++)
		vz_buf_printf(&pb, "    - command: /bin/true\n");
	snprintf(pb_path, sizeof(pb_path), "%s/bench.yml", tmp);
	snprintf(inv_path, sizeof(inv_path), "%s/inventory.ini", tmp);
	vz_test_write(tmp, "bench.yml", vz_buf_cstr(&pb));
	char invtext[4096];
	snprintf(invtext, sizeof(invtext), "node ansible_host=127.0.0.1 ansible_port=%d ansible_user=%s "
		 "ansible_ssh_private_key_file=%s ansible_python_interpreter=/usr/bin/python3\n",
		 vz_test_sshd_port(sshd), vz_test_sshd_user(sshd), vz_test_sshd_key(sshd));
	vz_test_write(tmp, "inventory.ini", invtext);
	if (vz_inventory_load(&inv, inv_path, &e) != 0) {
		fprintf(stderr, "bench_playbook: %s\n", vz_err_msg(&e));
		goto out;
	}

	double t_raw = 0, t_eng = 0, t_chan = 0, t_node = 0, t_nodeav = 0, t_nodech = 0, t_cli = 0, t_ans = 0,
	       t_pipe = 0, ms;
	const char *only = getenv("VZ_BENCH_ONLY");
	if (only) {
		/* one runner alone, five times (for a profiler): engine, engine-channel, node, node-channel, raw */
		for (int rep = 0; rep < 5; rep++) {
			int r = !strcmp(only, "engine")		? engine_run_opt(0, &ms)
				: !strcmp(only, "engine-channel") ? engine_run_opt(1, &ms)
				: !strcmp(only, "node")		? node_run((int)ntasks, 1, &ms)
				: !strcmp(only, "node-argv")	? node_run_opt((int)ntasks, 1, 1, &ms)
				: !strcmp(only, "node-channel")	? node_run((int)ntasks, 0, &ms)
				: !strcmp(only, "raw")		? raw_run((int)ntasks, &ms)
								: -2;
			if (r == -2)
				fprintf(stderr, "bench_playbook: VZ_BENCH_ONLY is engine, engine-channel, node, "
					"node-argv, node-channel or raw\n");
			if (r != 0)
				goto out;
			printf("%s: %.1f ms (%.2f ms/task)\n", only, ms, ms / (double)ntasks);
		}
		rc = 0;
		goto out;
	}
	/* warm sshd and caches, then alternate the fast runners so drift hits all alike */
	if (raw_run(10, &ms) != 0 || engine_run(&ms) != 0)
		goto out;
	const char *cli[] = { VZ_BIN, "playbook", "-i", inv_path, "--known-hosts", vz_test_sshd_known_hosts(sshd),
			      "--json", pb_path, NULL };
	double s_raw[REPS], s_eng[REPS], s_chan[REPS], s_node[REPS], s_nodeav[REPS], s_nodech[REPS], s_cli[REPS];
	for (int rep = 0; rep < REPS; rep++) {
		if (raw_run((int)ntasks, &s_raw[rep]) != 0 || engine_run(&s_eng[rep]) != 0 ||
		    engine_run_opt(1, &s_chan[rep]) != 0 || node_run((int)ntasks, 1, &s_node[rep]) != 0 ||
		    node_run_opt((int)ntasks, 1, 1, &s_nodeav[rep]) != 0 ||
		    node_run((int)ntasks, 0, &s_nodech[rep]) != 0 || cmd_run(cli, &s_cli[rep]) != 0)
			goto out;
	}
	t_raw = median(s_raw);
	t_eng = median(s_eng);
	t_chan = median(s_chan);
	t_node = median(s_node);
	t_nodeav = median(s_nodeav);
	t_nodech = median(s_nodech);
	t_cli = median(s_cli);
	printf("%lld x command: /bin/true on one host (medians of %d interleaved runs)\n", (long long)ntasks, REPS);
	printf("  raw libssh2, one warm session:   %8.1f ms  (%.2f ms/task)\n", t_raw, t_raw / (double)ntasks);
	printf("  vz_node_exec, channel per cmd:   %8.1f ms  (%.2f ms/task)  %.2fx raw (warm session)\n", t_nodech,
	       t_nodech / (double)ntasks, t_nodech / t_raw);
	printf("  vz_node_exec through the runner: %8.1f ms  (%.2f ms/task)  %.2fx raw (warm session, runner "
	       "started)\n", t_node, t_node / (double)ntasks, t_node / t_raw);
	printf("  vz_node_exec argv, the runner:   %8.1f ms  (%.2f ms/task)  %.2fx raw (warm session, runner "
	       "started, /bin/true exec'd with no shell)\n", t_nodeav, t_nodeav / (double)ntasks, t_nodeav / t_raw);
	printf("  vinz engine, channel per task:   %8.1f ms  (%.2f ms/task)  %.2fx raw (includes connect and auth)\n",
	       t_chan, t_chan / (double)ntasks, t_chan / t_raw);
	printf("  vinz engine, runner (default):   %8.1f ms  (%.2f ms/task)  %.2fx raw (includes connect, auth "
	       "and starting the runner)\n", t_eng, t_eng / (double)ntasks, t_eng / t_raw);
	printf("  vinz playbook (new process):     %8.1f ms  (%.2f ms/task)  %.2fx raw\n", t_cli, t_cli / (double)ntasks,
	       t_cli / t_raw);

	if (!getenv("VZ_BENCH_NO_ANSIBLE") && system("command -v ansible-playbook >/dev/null 2>&1") == 0) {
		char sshargs[8192], cp[4200];
		snprintf(cp, sizeof(cp), "%s/cp", tmp);
		snprintf(sshargs, sizeof(sshargs), "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes "
			 "-o ControlMaster=auto -o ControlPersist=60s", vz_test_sshd_known_hosts(sshd));
		setenv("ANSIBLE_SSH_ARGS", sshargs, 1);
		setenv("ANSIBLE_CONTROL_PATH_DIR", cp, 1);
		setenv("ANSIBLE_HOST_KEY_CHECKING", "True", 1);
		setenv("ANSIBLE_RETRY_FILES_ENABLED", "0", 1);
		setenv("ANSIBLE_LOCAL_TEMP", tmp, 1);
		/* the harness sshd has no sftp subsystem: tell Ansible so instead of letting it fail over */
		setenv("ANSIBLE_SSH_TRANSFER_METHOD", "piped", 1);
		setenv("ANSIBLE_STDOUT_CALLBACK", "json", 1);
		const char *ans[] = { "ansible-playbook", "-i", inv_path, pb_path, NULL };
		if (cmd_run(ans, &t_ans) != 0)
			goto out;
		setenv("ANSIBLE_PIPELINING", "1", 1);
		if (cmd_run(ans, &t_pipe) != 0)
			goto out;
		printf("  ansible-playbook, defaults:      %8.1f ms  (%.1f ms/task)  vinz engine is %.0fx faster "
		       "(%.0fx with a channel per task), vinz playbook %.0fx (goal >= 100x)\n", t_ans,
		       t_ans / (double)ntasks, t_ans / t_eng, t_ans / t_chan, t_ans / t_cli);
		printf("  ansible-playbook, pipelining:    %8.1f ms  (%.1f ms/task)  vinz engine is %.0fx faster, "
		       "vinz playbook %.0fx\n", t_pipe, t_pipe / (double)ntasks, t_pipe / t_eng, t_pipe / t_cli);
	}

	/* memory: 20 playbooks at once in this process, 20 sessions */
	long before = rss_kb();
	pthread_t th[20];
	int st[20] = { 0 }, started[20] = { 0 };
	uint64_t t0 = vz_mono_ms();
	for (int i = 0; i < 20; i++)
		started[i] = pthread_create(&th[i], NULL, engine_thread, &st[i]) == 0;
	int bad = 0;
	for (int i = 0; i < 20; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		bad |= !started[i] || st[i] != 0;
	}
	uint64_t t20 = vz_mono_ms() - t0;
	long after = rss_kb();
	printf("  20 playbooks at once in one process: %llu ms in all, peak RSS %ld KiB (%ld KiB before them, "
	       "+%ld KiB)%s\n", (unsigned long long)t20, after, before, after - before, bad ? " (some failed)" : "");
	rc = bad;
out:
	vz_buf_free(&pb);
	vz_inventory_free(inv);
	vz_test_sshd_stop(sshd);
	vz_test_rm(tmp);
	free(tmp);
	vz_node_global_cleanup();
	return rc;
}
