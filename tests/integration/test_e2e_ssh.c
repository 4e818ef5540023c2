/* test_e2e_ssh: the end-to-end slice against a REAL SSH node. A throwaway sshd on loopback
 * (tests/lib/vz_test_sshd.h), bare git repositories with changes, a site config whose nodes are
 * that sshd, and the real `vinz up` binary as a child process, driven over its admin socket.
 * One `vinz up` serves every case; all changes are enqueued at once so the builds run together:
 * pass (output, node name, work dir, change file, VINZ_COMMIT), command failure, job timeout
 * killing the remote process, 5 MB and binary output, an unknown host key (NODE_FAILURE, no
 * retry, fingerprint as ssh-keygen prints it) and a closed port (RETRY_LIMIT naming host:port). */
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "vz_admin.h"
#include "vz_buf.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"

#define UP_READY_MS 15000   /* vinz up answers its admin socket within this */
#define BUILD_WAIT_MS 90000 /* any one build is final within this (all run concurrently) */
#define STOP_WAIT_MS 15000  /* vinz up exits within this after SIGTERM */
#define LOG_MAX (128u * 1024 * 1024)
#define BIG_LINES 500000    /* seq -f %09g: 10 bytes a line, 5,000,000 bytes */
#define CHANGE1 "e2e change one: the file the build must see\n"

typedef struct fixture {
	char *dir, *cfg, *admin_ep, *up_log, *canon, *node_home;
	vz_test_sshd *sshd;
	void *zctx;
	pid_t up_pid;
	int closed_fd;   /* bound, never listening: connecting to its port is refused */
	int closed_port;
	char sleep_arg[32]; /* the unique argument of the timeout job's sleep */
	int failing;     /* set while a test runs: still set in teardown means it failed */
} fixture;

static fixture g;

/* ---------- helpers ---------- */

static void dump_file(const char *what, const char *path, size_t tail)
{
	vz_buf b = VZ_BUF_INIT(LOG_MAX);
	vz_err e = { 0 };
	if (!path || vz_read_file(path, LOG_MAX, &b, &e) != 0)
		return;
	const char *p = vz_buf_cstr(&b);
	if (b.len > tail)
		p += b.len - tail;
	fprintf(stderr, "--- %s (%s), last %zu bytes ---\n%s\n--- end ---\n", what, path, tail, p);
	vz_buf_free(&b);
}

/* Calls the admin socket; NULL (and a message on stderr) on failure. */
static json_t *admin(const char *op, json_t *args)
{
	json_t *d = NULL;
	vz_err e = { 0 };
	int rc = vz_admin_call(g.zctx, g.admin_ep, op, args, &d, 5000, &e);
	json_decref(args);
	if (rc) {
		fprintf(stderr, "admin %s: %s\n", op, vz_err_msg(&e));
		return NULL;
	}
	return d;
}

/* The builds of a job, newest first (a new reference), or NULL. */
static json_t *builds_of(const char *job)
{
	return admin("builds", json_pack("{s:s}", "job", job));
}

static const char *str(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

/* Waits (bounded) until the newest build of job is final; returns all its builds, newest first. */
static json_t *wait_final(const char *job)
{
	uint64_t until = vz_mono_ms() + BUILD_WAIT_MS;
	json_t *last = NULL;
	for (;;) {
		json_t *all = builds_of(job);
		if (all && json_array_size(all) > 0 && json_is_true(json_object_get(json_array_get(all, 0), "final"))) {
			json_decref(last);
			return all;
		}
		if (all) {
			json_decref(last);
			last = all;
		}
		if (vz_mono_ms() >= until)
			break;
		usleep(100 * 1000);
	}
	char *txt = last ? json_dumps(last, JSON_INDENT(1)) : NULL;
	fprintf(stderr, "job %s not final within %d ms; builds: %s\n", job, BUILD_WAIT_MS, txt ? txt : "(none)");
	free(txt);
	json_decref(last);
	dump_file("vinz up log", g.up_log, 8000);
	fail_msg("job %s did not finish", job);
	return NULL;
}

/* Reads a build's job-output.txt (the scheduler's copy, its log_url). */
static void read_log(json_t *b, vz_buf *out)
{
	vz_err e = { 0 };
	const char *p = str(b, "log_url");
	vz_buf_init(out, LOG_MAX);
	if (!*p)
		fail_msg("build %s has no log_url", str(b, "uuid"));
	if (vz_read_file(p, LOG_MAX, out, &e) != 0)
		fail_msg("cannot read %s: %s", p, vz_err_msg(&e));
}

/* True when log has a line "... | NODE | text" exactly. */
static int has_line(const vz_buf *log, const char *node, const char *text)
{
	vz_buf want = VZ_BUF_INIT(8192);
	vz_buf_printf(&want, " | %s | %s\n", node, text);
	int found = strstr(vz_buf_cstr(log), vz_buf_cstr(&want)) != NULL;
	vz_buf_free(&want);
	return found;
}

/* Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF, no NUL). Returns the
 * offset of the first bad byte, or -1 when all of it is valid. */
static long bad_utf8_at(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t len;
		unsigned cp, min;
		if (c == 0)
			return (long)i;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0)
			len = 2, cp = c & 0x1F, min = 0x80;
		else if ((c & 0xF0) == 0xE0)
			len = 3, cp = c & 0x0F, min = 0x800;
		else if ((c & 0xF8) == 0xF0)
			len = 4, cp = c & 0x07, min = 0x10000;
		else
			return (long)i;
		if (i + len > n)
			return (long)i;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return (long)i;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return (long)i;
		i += len;
	}
	return -1;
}

/* Runs pgrep -f pattern: 1 when some process matches, 0 when none, -1 when pgrep failed. */
static int running(const char *pattern)
{
	const char *argv[] = { "pgrep", "-f", pattern, NULL };
	int rc = vz_test_sshd_run(argv, NULL);
	return rc == 0 ? 1 : rc == 1 ? 0 : -1;
}

/* ---------- the fixture: sshd, repositories, config, vinz up ---------- */

static const char *const projects[] = { "p-pass", "p-fail", "p-timeout", "p-big", "p-bin", "p-hostkey", "p-closed",
					"p-shared" };
static const char *const jobs[] = { "pass", "fail", "timeout", "big", "bin", "hostkey", "closed", "shared" };
#define NCASES (sizeof(jobs) / sizeof(jobs[0]))

/* Binds 127.0.0.1:0 without listening: the port stays ours and every connection is refused. */
static int reserve_closed_port(int *fd_out, int *port_out)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*fd_out = fd;
	*port_out = ntohs(a.sin_port);
	return 0;
}

static int write_config(void)
{
	const vz_test_sshd *s = g.sshd;
	char *empty_kh = vz_path_join(g.dir, "empty_known_hosts");
	vz_buf c = VZ_BUF_INIT(65536);
	int rc = -1;

	vz_test_write(g.dir, "empty_known_hosts", "");
	vz_buf_printf(&c,
		      "state_dir: state\n"
		      "log_level: info\n"
		      "scheduler:\n  admin: %s\n  lease: 30\n  heartbeat: 0.5\n"
		      "executor:\n  name: e2e\n  capacity: 16\n"
		      "connections:\n  - name: g\n    driver: git\n    baseurl: repos\n    canonical_hostname: %s\n",
		      g.admin_ep, g.canon);
	/* the same sshd four times: known and shared (several builds at once), known and exclusive
	 * (Zuul's layout), unknown host key, and a port nobody listens on */
	vz_buf_printf(&c,
		      "nodes:\n"
		      "  - name: sshsolo\n    host: 127.0.0.1\n    port: %d\n    user: %s\n    key: %s\n"
		      "    known_hosts: %s\n    labels: [solo]\n"
		      "  - name: sshnode\n    host: 127.0.0.1\n    port: %d\n    user: %s\n    key: %s\n"
		      "    known_hosts: %s\n    labels: [ssh]\n    max_parallel: 8\n"
		      "  - name: strangenode\n    host: 127.0.0.1\n    port: %d\n    user: %s\n    key: %s\n"
		      "    known_hosts: %s\n    labels: [strange]\n"
		      "  - name: deadnode\n    host: 127.0.0.1\n    port: %d\n    user: %s\n    key: %s\n"
		      "    known_hosts: %s\n    labels: [dead]\n",
		      vz_test_sshd_port(s), vz_test_sshd_user(s), vz_test_sshd_key(s), vz_test_sshd_known_hosts(s),
		      vz_test_sshd_port(s), vz_test_sshd_user(s), vz_test_sshd_key(s), vz_test_sshd_known_hosts(s),
		      vz_test_sshd_port(s), vz_test_sshd_user(s), vz_test_sshd_key(s), empty_kh, g.closed_port,
		      vz_test_sshd_user(s), vz_test_sshd_key(s), vz_test_sshd_known_hosts(s));
	vz_buf_printf(&c,
		      "pipelines:\n  - name: check\n"
		      "jobs:\n"
		      "  - name: pass\n    label: solo\n    run:\n"
		      "      - 'echo \"pwd=$(pwd)\"'\n"
		      "      - cat change-1\n"
		      "      - 'echo \"commit=$VINZ_COMMIT\"'\n"
		      "      - 'echo \"project=$VINZ_PROJECT change=$VINZ_CHANGE\"'\n"
		      "      - 'echo \"head=$(git rev-parse HEAD) status=$(git status --porcelain | wc -l)\"'\n"
		      "  - name: fail\n    label: ssh\n    run: ['echo before-fail', 'exit 7', 'echo never-printed']\n"
		      "  - name: timeout\n    label: ssh\n    timeout: 2\n    run: ['echo sleeping', 'sleep %s', 'echo never-printed']\n"
		      "  - name: big\n    label: ssh\n    run: ['seq -f %%09g 1 %d', 'echo after-big']\n"
		      "  - name: bin\n    label: ssh\n"
		      "    run: ['head -c 10000 /dev/urandom; printf \"\\\\000\\\\377\\\\300\\\\200 nul and bad bytes\\\\n\"', "
		      "'echo after-binary']\n"
		      "  - name: hostkey\n    label: strange\n    attempts: 3\n    run: ['echo never-printed']\n"
		      "  - name: closed\n    label: dead\n    attempts: 2\n    run: ['echo never-printed']\n"
		      "  - name: shared\n    label: ssh\n"
		      "    run: ['echo \"pwd=$(pwd)\"', 'sleep 1', 'test \"$(ls change-*)\" = \"change-$VINZ_CHANGE\"']\n"
		      "projects:\n",
		      g.sleep_arg, BIG_LINES);
	for (size_t i = 0; i < NCASES; i++)
		vz_buf_printf(&c, "  - name: %s\n    check:\n      jobs: [%s]\n", projects[i], jobs[i]);
	if (c.failed)
		goto out;
	vz_test_write(g.dir, "vinz.yaml", vz_buf_cstr(&c));
	rc = 0;
out:
	vz_buf_free(&c);
	free(empty_kh);
	return rc;
}

/* fork/exec of `vinz up --config FILE`, output to up.log; the child dies with this process. */
static int start_up(void)
{
	sigset_t all, old;
	int logfd = open(g.up_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	pid_t parent = getpid();
	if (logfd < 0)
		return -1;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	g.up_pid = fork();
	if (g.up_pid == 0) {
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* never outlive the test, even when it crashes or ctest kills it */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(127);
		int dn = open("/dev/null", O_RDONLY);
		if (dn < 0 || dup2(dn, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
			_exit(127);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		execl(VZ_BIN, VZ_BIN, "up", "--config", g.cfg, (char *)NULL);
		_exit(127);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(logfd);
	return g.up_pid > 0 ? 0 : -1;
}

/* SIGTERM, then (bounded) SIGKILL. Returns the wait status, or -1 when it had to be killed. */
static int stop_up(int wait_ms)
{
	int status = 0, rc = -1;
	if (g.up_pid <= 0)
		return 0;
	kill(g.up_pid, SIGTERM);
	uint64_t until = vz_mono_ms() + (uint64_t)wait_ms;
	for (;;) {
		pid_t r = waitpid(g.up_pid, &status, WNOHANG);
		if (r == g.up_pid) {
			rc = status;
			break;
		}
		if (r < 0 && errno != EINTR)
			break;
		if (vz_mono_ms() >= until) {
			fprintf(stderr, "vinz up (pid %d) did not stop within %d ms after SIGTERM: killing it\n", (int)g.up_pid,
				wait_ms);
			kill(g.up_pid, SIGKILL);
			while (waitpid(g.up_pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		usleep(20 * 1000);
	}
	g.up_pid = -1;
	return rc;
}

static void cleanup(void)
{
	if (g.failing) {
		dump_file("vinz up log", g.up_log, 8000);
		if (g.sshd)
			dump_file("sshd log", vz_test_sshd_log(g.sshd), 4000);
	}
	stop_up(STOP_WAIT_MS);
	if (g.zctx)
		zmq_ctx_term(g.zctx);
	if (g.node_home && g.canon) {
		/* the work trees the builds left on the node */
		char rel[512];
		snprintf(rel, sizeof(rel), "src/%s", g.canon);
		char *p = vz_path_join(g.node_home, rel);
		vz_test_rm(p);
		free(p);
		/* and the node stores the deliveries made (docs/workspace.md) */
		snprintf(rel, sizeof(rel), ".cache/vinz/git/%s", g.canon);
		p = vz_path_join(g.node_home, rel);
		vz_test_rm(p);
		free(p);
	}
	vz_test_sshd_stop(g.sshd);
	if (g.closed_fd >= 0)
		close(g.closed_fd);
	if (g.dir && !getenv("VZ_KEEP"))
		vz_test_rm(g.dir);
	else if (g.dir)
		fprintf(stderr, "(kept %s)\n", g.dir);
	free(g.dir);
	free(g.cfg);
	free(g.admin_ep);
	free(g.up_log);
	free(g.canon);
	free(g.node_home);
	memset(&g, 0, sizeof(g));
	g.closed_fd = -1;
}

static int up_ready(void *ctx)
{
	json_t *d = NULL;
	vz_err e = { 0 };
	int status;
	if (g.up_pid > 0 && waitpid(g.up_pid, &status, WNOHANG) == g.up_pid) {
		g.up_pid = -1;
		return 1; /* exited: stop waiting, the caller sees up_pid */
	}
	if (vz_admin_call(g.zctx, g.admin_ep, "ping", NULL, &d, 500, &e) != 0)
		return 0;
	json_decref(d);
	return 1;
}

static int group_setup(void **state)
{
	char token[40];
	vz_buf b = VZ_BUF_INIT(4096);
	memset(&g, 0, sizeof(g));
	g.closed_fd = -1;
	g.up_pid = -1;
	g.failing = 1;

	g.dir = vz_test_tmpdir("vz-e2e-ssh");
	vz_uuid(token);
	token[8] = '\0';
	vz_buf_printf(&b, "e2e-%s.test", token);
	g.canon = vz_buf_detach(&b);
	/* a sleep nobody else runs: 30.<8 digits> seconds */
	uint32_t rnd = 0;
	vz_random(&rnd, sizeof(rnd));
	snprintf(g.sleep_arg, sizeof(g.sleep_arg), "30.%08u", (unsigned)(rnd % 100000000u));
	vz_buf_printf(&b, "ipc://%s/admin.sock", g.dir);
	g.admin_ep = vz_buf_detach(&b);
	g.cfg = vz_path_join(g.dir, "vinz.yaml");
	g.up_log = vz_path_join(g.dir, "up.log");
	g.zctx = zmq_ctx_new();

	if (vz_test_sshd_start(&g.sshd) != 0) {
		fprintf(stderr, "group setup: cannot start sshd\n");
		goto fail;
	}
	struct passwd *pw = getpwnam(vz_test_sshd_user(g.sshd));
	if (!pw || !pw->pw_dir) {
		fprintf(stderr, "group setup: no home for %s\n", vz_test_sshd_user(g.sshd));
		goto fail;
	}
	g.node_home = vz_xstrdup(pw->pw_dir);
	if (reserve_closed_port(&g.closed_fd, &g.closed_port) != 0) {
		fprintf(stderr, "group setup: cannot reserve a port: %s\n", strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < NCASES; i++) {
		char rel[128];
		snprintf(rel, sizeof(rel), "repos/%s.git", projects[i]);
		char *p = vz_path_join(g.dir, rel);
		const char *contents[] = { CHANGE1, NULL };
		vz_test_git_repo(p, 2, contents);
		free(p);
	}
	if (write_config() != 0 || start_up() != 0) {
		fprintf(stderr, "group setup: cannot write the config or start %s\n", VZ_BIN);
		goto fail;
	}
	if (!vz_test_wait(up_ready, NULL, UP_READY_MS) || g.up_pid < 0) {
		fprintf(stderr, "group setup: vinz up did not answer on %s within %d ms\n", g.admin_ep, UP_READY_MS);
		goto fail;
	}
	/* everything at once: the cases run concurrently; the timeout case first */
	static const size_t order[] = { 2, 0, 1, 3, 4, 5, 6, 7 };
	for (size_t k = 0; k < NCASES; k++) {
		json_t *d = admin("enqueue", json_pack("{s:s,s:s,s:s,s:s}", "pipeline", "check", "project", projects[order[k]],
						       "ref", "refs/changes/1", "id", "1"));
		if (!d) {
			fprintf(stderr, "group setup: cannot enqueue %s\n", projects[order[k]]);
			goto fail;
		}
		json_decref(d);
	}
	/* a second change of the shared-node project runs at the same time as its first */
	json_t *d2 = admin("enqueue", json_pack("{s:s,s:s,s:s,s:s}", "pipeline", "check", "project", "p-shared", "ref",
						"refs/changes/2", "id", "2"));
	if (!d2) {
		fprintf(stderr, "group setup: cannot enqueue p-shared change 2\n");
		goto fail;
	}
	json_decref(d2);
	*state = &g;
	g.failing = 0;
	return 0;
fail:
	g.failing = 1;
	cleanup();
	return -1;
}

static int group_teardown(void **state)
{
	cleanup();
	return 0;
}

/* ---------- the cases ---------- */

/* 3. timeout: TIMED_OUT soon after the 2 s limit, and the sleep is gone from the node. */
static void test_timeout_kills_remote(void **state)
{
	g.failing = 1;
	char pattern[64];
	snprintf(pattern, sizeof(pattern), "sleep %.2s[.]%s", g.sleep_arg, g.sleep_arg + 3);
	/* see the sleep running on the node, so its absence later means something */
	int seen = 0;
	uint64_t until = vz_mono_ms() + BUILD_WAIT_MS;
	while (!seen && vz_mono_ms() < until) {
		int r = running(pattern);
		assert_int_not_equal(r, -1);
		if (r == 1) {
			seen = 1;
			break;
		}
		json_t *all = builds_of("timeout");
		int final = all && json_is_true(json_object_get(json_array_get(all, 0), "final"));
		json_decref(all);
		if (final)
			break;
		usleep(20 * 1000);
	}
	if (!seen)
		fail_msg("the timeout job's \"sleep %s\" never showed up on the node", g.sleep_arg);
	uint64_t seen_at = vz_mono_ms();

	json_t *all = wait_final("timeout");
	uint64_t final_at = vz_mono_ms();
	json_t *b = json_array_get(all, 0);
	assert_int_equal(json_array_size(all), 1);
	assert_string_equal(str(b, "result"), "TIMED_OUT");
	assert_non_null(strstr(str(b, "message"), "timed out after 2 s"));
	/* 2 s limit counted from the first command; seen after that, final a few seconds later */
	if (final_at - seen_at > 8000)
		fail_msg("TIMED_OUT came %llu ms after the sleep started", (unsigned long long)(final_at - seen_at));
	double dur = json_real_value(json_object_get(b, "duration"));
	if (dur < 2.0 || dur > 10.0)
		fail_msg("timed-out build took %.3f s; want 2..10", dur);
	/* the result is sent after the kill: the sleep must already be gone (2 s grace for ps) */
	int gone = 0;
	for (int i = 0; i < 100 && !gone; i++) {
		gone = running(pattern) == 0;
		if (!gone)
			usleep(20 * 1000);
	}
	if (!gone)
		fail_msg("\"%s\" still runs on the node after TIMED_OUT", pattern);

	vz_buf log;
	read_log(b, &log);
	assert_true(has_line(&log, "sshnode", "sleeping"));
	assert_null(strstr(vz_buf_cstr(&log), "never-printed"));
	assert_true(has_line(&log, "sshnode", "vinz: result TIMED_OUT"));
	vz_buf_free(&log);
	json_decref(all);
	g.failing = 0;
}

/* 1. a passing job: output with the node name, the work dir, the change's file, VINZ_COMMIT. */
static void test_pass(void **state)
{
	g.failing = 1;
	json_t *all = wait_final("pass");
	json_t *b = json_array_get(all, 0);
	assert_int_equal(json_array_size(all), 1);
	if (strcmp(str(b, "result"), "SUCCESS") != 0)
		fail_msg("pass: result %s: %s", str(b, "result"), str(b, "message"));
	assert_string_equal(str(b, "node"), "sshsolo");

	/* the commit git has for refs/changes/1 */
	char *repo = NULL;
	char rel[128], sha[41];
	git_repository *r = NULL;
	git_oid oid;
	snprintf(rel, sizeof(rel), "repos/%s.git", "p-pass");
	repo = vz_path_join(g.dir, rel);
	git_libgit2_init();
	assert_int_equal(git_repository_open_bare(&r, repo), 0);
	assert_int_equal(git_reference_name_to_id(&oid, r, "refs/changes/1"), 0);
	git_oid_tostr(sha, sizeof(sha), &oid);
	git_repository_free(r);
	git_libgit2_shutdown();
	free(repo);
	assert_string_equal(str(b, "commit"), sha);

	vz_buf log, want = VZ_BUF_INIT(4096);
	read_log(b, &log);
	vz_buf_printf(&want, "pwd=%s/src/%s/p-pass", g.node_home, g.canon);
	if (!has_line(&log, "sshsolo", vz_buf_cstr(&want)))
		fail_msg("log lacks \"%s\":\n%s", vz_buf_cstr(&want), vz_buf_cstr(&log));
	char change1[sizeof(CHANGE1)];
	vz_strlcpy(change1, CHANGE1, sizeof(change1));
	change1[strlen(change1) - 1] = '\0';
	assert_true(has_line(&log, "sshsolo", change1));
	vz_buf_reset(&want);
	vz_buf_printf(&want, "commit=%s", sha);
	assert_true(has_line(&log, "sshsolo", vz_buf_cstr(&want)));
	assert_true(has_line(&log, "sshsolo", "project=p-pass change=1"));
	/* the workspace on the node is a git repository at the tested commit, clean */
	vz_buf_reset(&want);
	vz_buf_printf(&want, "head=%s status=0", sha);
	if (!has_line(&log, "sshsolo", vz_buf_cstr(&want)))
		fail_msg("log lacks \"%s\":\n%s", vz_buf_cstr(&want), vz_buf_cstr(&log));
	assert_non_null(strstr(vz_buf_cstr(&log), " delivered to sshsolo:~/src/"));
	assert_non_null(strstr(vz_buf_cstr(&log), "vinz: workspace "));
	assert_non_null(strstr(vz_buf_cstr(&log), " by git: "));
	assert_true(has_line(&log, "sshsolo", "$ cat change-1"));
	assert_true(has_line(&log, "sshsolo", "vinz: result SUCCESS"));
	/* the scheduler has the whole log */
	assert_int_equal(json_integer_value(json_object_get(b, "log_size")), (json_int_t)log.len);
	vz_buf_free(&want);
	vz_buf_free(&log);
	json_decref(all);
	g.failing = 0;
}

/* 2. a failing command: FAILURE with its exit code; later commands do not run. */
static void test_fail(void **state)
{
	g.failing = 1;
	json_t *all = wait_final("fail");
	json_t *b = json_array_get(all, 0);
	assert_int_equal(json_array_size(all), 1);
	assert_string_equal(str(b, "result"), "FAILURE");
	if (!strstr(str(b, "message"), "exited 7"))
		fail_msg("message lacks the exit code: %s", str(b, "message"));
	vz_buf log;
	read_log(b, &log);
	assert_true(has_line(&log, "sshnode", "before-fail"));
	assert_null(strstr(vz_buf_cstr(&log), "never-printed"));
	vz_buf_free(&log);
	json_decref(all);
	g.failing = 0;
}

/* 4a. 5 MB of output: every line arrives, in order, and the log is complete. */
static void test_big_output(void **state)
{
	g.failing = 1;
	json_t *all = wait_final("big");
	json_t *b = json_array_get(all, 0);
	if (strcmp(str(b, "result"), "SUCCESS") != 0)
		fail_msg("big: result %s: %s", str(b, "result"), str(b, "message"));
	assert_null(strstr(str(b, "message"), "incomplete"));
	vz_buf log;
	read_log(b, &log);
	assert_int_equal(json_integer_value(json_object_get(b, "log_size")), (json_int_t)log.len);
	const char *tag = " | sshnode | ";
	size_t tl = strlen(tag);
	long long next = 1, lines = 0;
	/* line by line with bounded searches: strstr over the rest of 24 MB per line is quadratic
	 * under ASan, whose interceptor measures the whole haystack */
	const char *p = log.ptr, *end = log.ptr + log.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			fail_msg("log does not end with a newline");
		const char *t = NULL;
		for (const char *q = p; !t && q + tl <= nl; q++)
			if (*q == ' ' && memcmp(q, tag, tl) == 0)
				t = q;
		if (t && nl - (t + tl) == 9) {
			const char *d = t + tl;
			long long v = 0;
			int digits = 1;
			for (int k = 0; k < 9; k++) {
				if (d[k] < '0' || d[k] > '9')
					digits = 0;
				else
					v = v * 10 + (d[k] - '0');
			}
			if (digits) {
				if (v != next)
					fail_msg("line %lld of seq: got %09lld, want %09lld", lines + 1, v, next);
				next++;
				lines++;
			}
		}
		p = nl + 1;
	}
	assert_int_equal(lines, BIG_LINES);
	assert_true(has_line(&log, "sshnode", "after-big"));
	assert_true(has_line(&log, "sshnode", "vinz: result SUCCESS"));
	fprintf(stderr, "big: %lld lines, job-output.txt %zu bytes, build %.3f s\n", lines, log.len,
		json_real_value(json_object_get(b, "duration")));
	vz_buf_free(&log);
	json_decref(all);
	g.failing = 0;
}

/* 4b. binary output (random bytes, NUL, invalid sequences): the job goes on, the log is UTF-8. */
static void test_binary_output(void **state)
{
	g.failing = 1;
	json_t *all = wait_final("bin");
	json_t *b = json_array_get(all, 0);
	if (strcmp(str(b, "result"), "SUCCESS") != 0)
		fail_msg("bin: result %s: %s", str(b, "result"), str(b, "message"));
	assert_null(strstr(str(b, "message"), "incomplete"));
	vz_buf log;
	read_log(b, &log);
	assert_int_equal(json_integer_value(json_object_get(b, "log_size")), (json_int_t)log.len);
	long bad = bad_utf8_at((const unsigned char *)log.ptr, log.len);
	if (bad >= 0)
		fail_msg("job-output.txt is not valid UTF-8 at byte %ld of %zu", bad, log.len);
	/* the replacement character stands for what was not UTF-8 */
	assert_non_null(strstr(vz_buf_cstr(&log), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD nul and bad bytes\n"));
	assert_true(has_line(&log, "sshnode", "after-binary"));
	assert_true(has_line(&log, "sshnode", "vinz: result SUCCESS"));
	vz_buf_free(&log);
	json_decref(all);
	g.failing = 0;
}

/* 5. an unknown host key: NODE_FAILURE at once, no retry, the fingerprint ssh-keygen prints. */
static void test_unknown_host_key(void **state)
{
	g.failing = 1;
	json_t *all = wait_final("hostkey");
	json_t *b = json_array_get(all, 0);
	/* NODE_FAILURE is final; give a wrong retry a moment to show up before counting */
	usleep(500 * 1000);
	json_decref(all);
	all = builds_of("hostkey");
	assert_non_null(all);
	b = json_array_get(all, 0);
	assert_int_equal(json_array_size(all), 1);
	assert_int_equal(json_integer_value(json_object_get(b, "attempt")), 1);
	assert_string_equal(str(b, "result"), "NODE_FAILURE");

	vz_buf out = VZ_BUF_INIT(65536);
	const char *argv[] = { "ssh-keygen", "-lf", vz_test_sshd_host_pub(g.sshd), NULL };
	assert_int_equal(vz_test_sshd_run(argv, &out), 0);
	/* "256 SHA256:xxxx comment (ED25519)": the second field */
	const char *fp = strchr(vz_buf_cstr(&out), ' ');
	assert_non_null(fp);
	fp++;
	const char *end = strchr(fp, ' ');
	assert_non_null(end);
	char want[128];
	assert_true((size_t)(end - fp) < sizeof(want));
	memcpy(want, fp, (size_t)(end - fp));
	want[end - fp] = '\0';
	assert_true(vz_startswith(want, "SHA256:"));
	const char *msg = str(b, "message");
	const char *at = strstr(msg, want);
	if (!at)
		fail_msg("message lacks %s: %s", want, msg);
	/* exactly: not the prefix of a longer string */
	char after = at[strlen(want)];
	if ((after >= 'A' && after <= 'Z') || (after >= 'a' && after <= 'z') || (after >= '0' && after <= '9') ||
	    after == '+' || after == '/' || after == '=')
		fail_msg("fingerprint in the message runs on past %s: %s", want, msg);
	assert_non_null(strstr(msg, "strangenode"));
	vz_buf log;
	read_log(b, &log);
	assert_null(strstr(vz_buf_cstr(&log), "never-printed"));
	assert_non_null(strstr(vz_buf_cstr(&log), want));
	vz_buf_free(&log);
	vz_buf_free(&out);
	json_decref(all);
	g.failing = 0;
}

/* 6. a closed port: every attempt is a RETRY, the last one RETRY_LIMIT naming host:port. */
static void test_closed_port(void **state)
{
	g.failing = 1;
	json_t *all = wait_final("closed");
	assert_int_equal(json_array_size(all), 2);
	json_t *last = json_array_get(all, 0), *first = json_array_get(all, 1);
	assert_string_equal(str(first, "result"), "RETRY");
	assert_int_equal(json_integer_value(json_object_get(first, "attempt")), 1);
	assert_string_equal(str(last, "result"), "RETRY_LIMIT");
	assert_int_equal(json_integer_value(json_object_get(last, "attempt")), 2);
	char hp[64];
	snprintf(hp, sizeof(hp), "127.0.0.1:%d", g.closed_port);
	for (size_t i = 0; i < 2; i++) {
		const char *msg = str(json_array_get(all, i), "message");
		if (!strstr(msg, hp) || !strstr(msg, "deadnode"))
			fail_msg("attempt message lacks deadnode and %s: %s", hp, msg);
	}
	json_decref(all);
	g.failing = 0;
}

/* Last: vinz up stops cleanly on SIGTERM (exit 0) within a bound. */

/* 9. two changes of one project on a node that runs several builds at once: each build has its
 * own directory (its own change's files only), and the directory is gone afterwards. */
static int both_shared_final(void *ctx)
{
	(void)ctx;
	json_t *all = builds_of("shared");
	int n = 0;
	for (size_t i = 0; all && i < json_array_size(all); i++)
		n += json_is_true(json_object_get(json_array_get(all, i), "final"));
	json_decref(all);
	return n == 2;
}

static void test_shared_node_isolates_builds(void **state)
{
	g.failing = 1;
	assert_true(vz_test_wait(both_shared_final, NULL, BUILD_WAIT_MS));
	json_t *all = builds_of("shared");
	assert_int_equal(json_array_size(all), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *b = json_array_get(all, i);
		if (strcmp(str(b, "result"), "SUCCESS") != 0)
			fail_msg("shared change %s: %s: %s", str(b, "change"), str(b, "result"), str(b, "message"));
		vz_buf log, want = VZ_BUF_INIT(4096);
		read_log(b, &log);
		vz_buf_printf(&want, "pwd=%s/vinz-builds/%s/src/%s/p-shared", g.node_home, str(b, "uuid"), g.canon);
		if (!has_line(&log, "sshnode", vz_buf_cstr(&want)))
			fail_msg("log lacks \"%s\":\n%s", vz_buf_cstr(&want), vz_buf_cstr(&log));
		vz_buf_reset(&want);
		vz_buf_printf(&want, "%s/vinz-builds/%s", g.node_home, str(b, "uuid"));
		assert_int_not_equal(access(vz_buf_cstr(&want), F_OK), 0);
		vz_buf_free(&want);
		vz_buf_free(&log);
	}
	json_decref(all);
	g.failing = 0;
}

static void test_clean_shutdown(void **state)
{
	g.failing = 1;
	int status = stop_up(STOP_WAIT_MS);
	if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("vinz up did not exit 0 on SIGTERM (wait status %d)", status);
	g.failing = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeout_kills_remote),
		cmocka_unit_test(test_pass),
		cmocka_unit_test(test_fail),
		cmocka_unit_test(test_big_output),
		cmocka_unit_test(test_binary_output),
		cmocka_unit_test(test_unknown_host_key),
		cmocka_unit_test(test_closed_port),
		cmocka_unit_test(test_shared_node_isolates_builds),
		cmocka_unit_test(test_clean_shutdown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
