/* bench_executor: the two executor benchmarks of issue 6.
 *
 * A. Job start: a build request received -> the first task running on the node, for a job whose
 *    workspace has the change's project and 3 required projects (200 files each), on a loopback
 *    sshd node. vz_build_run runs the request as the executor does; the first task writes the
 *    node's clock (`date +%s%N`, same machine) to a file. Reported: the start time, the part of
 *    it spent sending the workspaces (the executor logs each delivery's time), and the rest,
 *    whose goal is < 100 ms. Cold (new node, empty caches) and warm (median of VZ_BENCH_N,
 *    default 5). Peer in the same run: ansible-playbook from its start to the same first task
 *    on the same node (defaults; no workspace to send).
 * B. 100 concurrent builds (VZ_BENCH_BUILDS) of a 10-task playbook on one `vinz executor`
 *    process (capacity 100, local node) fed by a scheduler played here over ipc: wall time, the
 *    executor's CPU, its idle RSS (goal < 10 MB) and peak RSS (goal < 150 MB). Peer in the same
 *    run: one ansible-playbook process running the same playbook on localhost, its peak RSS.
 * Prints figures and ratios; fails only on errors, never on numbers. Everything lives under
 * $TMPDIR (default /tmp): on an ext4 file system that has seen many files deleted lately (other
 * test runs), creating files costs several times more (the kernel's inode allocator scans for
 * recently deleted inodes), which shows in the workspace part of A; TMPDIR=/dev/shm takes the
 * file system out of the figure. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "vz_benchutil.h"
#include "vz_build.h"
#include "vz_node.h"
#include "vz_proto.h"
#include "vz_test_proto.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

static char *g_tmp;
static pid_t g_child; /* the executor process of part B, killed on the way out */
static char g_repo[4][600];
static const char *const g_names[4] = { "org/app", "org/lib1", "org/lib2", "org/lib3" };

static void die(const char *what)
{
	fprintf(stderr, "bench_executor: %s\n", what);
	if (g_child > 0) {
		kill(g_child, SIGKILL);
		waitpid(g_child, NULL, 0);
	}
	exit(1);
}

static long long wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Four repositories of 200 files; the first has the playbooks and a change. */
static void make_repos(void)
{
	for (int i = 0; i < 4; i++) {
		snprintf(g_repo[i], sizeof(g_repo[i]), "%s/r%d.git", g_tmp, i);
		if (vz_test_sh(NULL,
			       "set -e; cd %s; rm -rf w%d; git init -q -b main w%d; cd w%d; git config user.email b@b;"
			       " git config user.name b; for d in 0 1 2 3 4 5 6 7 8 9; do mkdir -p d$d;"
			       " for f in $(seq 1 20); do seq 1 $((f * 10)) > d$d/f$f.txt; done; done;"
			       " mkdir pb;"
			       " printf -- '- hosts: all\\n  gather_facts: false\\n  tasks:\\n    - shell: date +%%%%s%%%%N > {{ stamp }}\\n' > pb/start.yaml;"
			       " printf -- '- hosts: all\\n  gather_facts: false\\n  tasks:\\n' > pb/ten.yaml;"
			       " for t in $(seq 1 10); do printf -- '    - command: /bin/true\\n' >> pb/ten.yaml; done;"
			       " git add -A; git commit -qm base; git checkout -q -b change; echo x >> d0/f1.txt;"
			       " git commit -qam change; git checkout -q main; cd ..;"
			       " git clone -q --bare w%d %s; git -C %s update-ref refs/changes/1 change",
			       g_tmp, i, i, i, i, g_repo[i], g_repo[i]) != 0)
			die("cannot make the repositories");
	}
}

static json_t *request(const char *uuid, json_t *node, const char *playbook, json_t *vars, int nreq)
{
	json_t *req = json_pack("{s:[],s:s,s:i,s:s,s:s,s:i,s:o,s:[{s:s,s:s,s:s,s:s,s:s,s:s,s:I}],s:[],s:{s:[{s:s,s:s,s:b}]},s:o}",
				"commands", "build", uuid, "attempt", 1, "job", "bench", "project", g_names[0], "timeout", 600, "node",
				node, "items", "id", "1,1", "project", g_names[0], "canonical_project", "example.org/org/app",
				"repo", g_repo[0], "branch", "main", "ref", "refs/changes/1", "date", (json_int_t)1700000001,
				"projects", "playbooks", "run", "project", "example.org/org/app", "path", playbook,
				"trusted", 1, "vars", vars);
	json_t *projects = json_object_get(req, "projects");
	for (int i = 1; i <= nreq; i++) {
		char canon[64];
		snprintf(canon, sizeof(canon), "example.org/%s", g_names[i]);
		json_array_append_new(projects, json_pack("{s:s,s:s,s:s}", "project", g_names[i], "canonical_project", canon,
							  "repo", g_repo[i]));
	}
	return req;
}

typedef struct sink {
	vz_buf log;
	json_t *result;
} sink;

static void emit(void *ctx, vz_msg_type type, json_t *body)
{
	sink *s = ctx;
	if (type == VZ_MSG_LOG)
		vz_buf_add_capped(&s->log, json_string_value(json_object_get(body, "data")),
				  json_string_length(json_object_get(body, "data")));
	else if (type == VZ_MSG_RESULT) {
		json_decref(s->result);
		s->result = json_incref(body);
	}
	json_decref(body);
}

/* Sum of "delivered ... , N ms" in a build log. */
static double delivery_ms(const char *log)
{
	double sum = 0;
	for (const char *p = log; (p = strstr(p, " delivered to ")); p++) {
		const char *eol = strchr(p, '\n');
		const char *ms = eol ? eol : p + strlen(p);
		while (ms > p && ms[-1] != ',')
			ms--;
		sum += strtod(ms, NULL);
	}
	return sum;
}

static long long read_stamp(const char *path)
{
	vz_buf b = VZ_BUF_INIT(256);
	vz_err e = { 0 };
	long long v = 0;
	if (vz_read_file(path, 256, &b, &e) == 0)
		v = atoll(vz_buf_cstr(&b));
	vz_buf_free(&b);
	return v;
}

/* One build; returns start ms (request -> first task) and the delivery part. */
static void start_once(const vz_test_sshd *sshd, const char *work, int n, double *start, double *deliv)
{
	char uuid[40], stamp[1200];
	snprintf(uuid, sizeof(uuid), "bench-start-%d", n);
	snprintf(stamp, sizeof(stamp), "%s/stamp-%d", vz_test_sshd_workdir(sshd), n);
	json_t *node = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s}", "name", "n1", "connection", "ssh", "host", "127.0.0.1",
				 "port", vz_test_sshd_port(sshd), "user", vz_test_sshd_user(sshd), "key",
				 vz_test_sshd_key(sshd), "known_hosts", vz_test_sshd_known_hosts(sshd));
	json_t *req = request(uuid, node, "pb/start.yaml", json_pack("{s:s}", "stamp", stamp), 3);
	vz_build_env env = { .work_dir = work, .executor = "bench" };
	volatile int cancel = 0;
	sink s = { .log = VZ_BUF_INIT(4u << 20) };
	long long t0 = wall_ns();
	vz_build_run(req, &env, &cancel, emit, &s);
	const char *res = json_string_value(json_object_get(s.result, "result"));
	long long t1 = read_stamp(stamp);
	if (!res || strcmp(res, "SUCCESS") != 0 || t1 <= t0) {
		fprintf(stderr, "%s", vz_buf_cstr(&s.log));
		die("the job-start build failed");
	}
	*start = (double)(t1 - t0) / 1e6;
	if (getenv("VZ_BENCH_VERBOSE"))
		fprintf(stderr, "--- build %s (t0 %lld)\n%s", uuid, t0, vz_buf_cstr(&s.log));
	*deliv = delivery_ms(vz_buf_cstr(&s.log));
	json_decref(s.result);
	json_decref(req);
	vz_buf_free(&s.log);
}

static void bench_start(void)
{
	vz_test_sshd *sshd = NULL;
	if (vz_test_sshd_start(&sshd))
		die("no sshd");
	char *work = vz_path_join(g_tmp, "work-start");
	int n = 5;
	if (getenv("VZ_BENCH_N"))
		n = atoi(getenv("VZ_BENCH_N"));
	if (n < 1 || n > 100)
		die("VZ_BENCH_N must be 1..100");
	double cs, cd, ws[100], wd[100], wo[100];
	start_once(sshd, work, 0, &cs, &cd);
	for (int i = 0; i < n; i++) {
		start_once(sshd, work, i + 1, &ws[i], &wd[i]);
		wo[i] = ws[i] - wd[i];
	}
	double ms = vz_bench_median(ws, n), md = vz_bench_median(wd, n), mo = vz_bench_median(wo, n);
	printf("A. job start: request -> first task on a loopback sshd node, 4 projects (1 + 3 required)\n");
	printf("  cold (empty caches, new node): %8.1f ms, of which sending workspaces %.1f ms, the rest %.1f ms\n", cs, cd,
	       cs - cd);
	printf("  warm (median of %d):           %8.1f ms, of which sending workspaces %.1f ms, the rest %.1f ms "
	       "(goal < 100 ms)\n", n, ms, md, mo);

	if (!getenv("VZ_BENCH_NO_ANSIBLE") && system("command -v ansible-playbook >/dev/null 2>&1") == 0) {
		char inv[2000], pb[1200], stamp[1200], sshargs[4000], cp[1200];
		snprintf(pb, sizeof(pb), "%s/w0/pb/start.yaml", g_tmp);
		snprintf(stamp, sizeof(stamp), "stamp=%s/stamp-ansible", vz_test_sshd_workdir(sshd));
		snprintf(inv, sizeof(inv), "node ansible_host=127.0.0.1 ansible_port=%d ansible_user=%s "
			 "ansible_ssh_private_key_file=%s ansible_python_interpreter=/usr/bin/python3\n",
			 vz_test_sshd_port(sshd), vz_test_sshd_user(sshd), vz_test_sshd_key(sshd));
		vz_test_write(g_tmp, "inventory.ini", inv);
		snprintf(inv, sizeof(inv), "%s/inventory.ini", g_tmp);
		snprintf(cp, sizeof(cp), "%s/cp", g_tmp);
		snprintf(sshargs, sizeof(sshargs), "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes "
			 "-o ControlMaster=auto -o ControlPersist=60s", vz_test_sshd_known_hosts(sshd));
		char *envv[] = { "ANSIBLE_HOST_KEY_CHECKING=True", "ANSIBLE_RETRY_FILES_ENABLED=0",
				 "ANSIBLE_SSH_TRANSFER_METHOD=piped", NULL, NULL, NULL };
		char e1[4100], e2[1300];
		snprintf(e1, sizeof(e1), "ANSIBLE_SSH_ARGS=%s", sshargs);
		snprintf(e2, sizeof(e2), "ANSIBLE_CONTROL_PATH_DIR=%s", cp);
		envv[3] = e1;
		envv[4] = e2;
		char *argv[] = { "ansible-playbook", "-i", inv, "-e", stamp, pb, NULL };
		double a[3];
		for (int i = 0; i < 3; i++) {
			long long t0 = wall_ns();
			if (vz_bench_run(argv, envv, NULL, NULL) != 0)
				die("ansible-playbook failed");
			char sp[1300];
			snprintf(sp, sizeof(sp), "%s/stamp-ansible", vz_test_sshd_workdir(sshd));
			a[i] = (double)(read_stamp(sp) - t0) / 1e6;
		}
		double am = vz_bench_median(a, 3);
		printf("  ansible-playbook, start -> the same first task (median of 3, nothing to send): %.1f ms; "
		       "vinz warm is %.1fx faster (%.1fx without the workspace transfer)\n", am, am / ms, am / mo);
	}
	free(work);
	vz_test_sshd_stop(sshd);
}

/* ---- B: many builds on one executor process ---- */

static long proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	size_t fl = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':')
			v = atol(line + fl + 1);
	if (f)
		fclose(f);
	return v;
}

static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void bench_many(void)
{
	int nb = 100;
	if (getenv("VZ_BENCH_BUILDS"))
		nb = atoi(getenv("VZ_BENCH_BUILDS"));
	if (nb < 1 || nb > 1000)
		die("VZ_BENCH_BUILDS must be 1..1000");
	char cfg[4000], ep[1200];
	snprintf(ep, sizeof(ep), "ipc://%s/sched.sock", g_tmp);
	snprintf(cfg, sizeof(cfg),
		 "state_dir: many-state\nlog_level: warn\nscheduler:\n  listen: %s\nexecutor:\n  name: bench\n"
		 "  capacity: %d\n  scheduler: %s\n  min_avail_mem: 0\n  min_avail_disk: 0\n",
		 ep, nb, ep);
	vz_test_write(g_tmp, "many.yaml", cfg);
	snprintf(cfg, sizeof(cfg), "%s/many.yaml", g_tmp);
	void *zctx = zmq_ctx_new();
	void *r = zmq_socket(zctx, ZMQ_ROUTER);
	vz_err e = { 0 };
	if (vz_proto_sockopts(r, &e) || zmq_bind(r, ep) != 0)
		die("cannot bind the fake scheduler");
	pid_t pid = fork();
	if (pid == 0) {
		execl(VZ_BIN, VZ_BIN, "executor", "--config", cfg, (char *)NULL);
		_exit(127);
	}
	g_child = pid;
	char rid[256];
	size_t rlen = 0;
	vz_msg *m = vz_test_router_expect(r, VZ_MSG_HELLO, rid, &rlen, 10000);
	if (!m)
		die("the executor did not say hello");
	vz_msg_free(m);
	if (vz_proto_send(r, rid, rlen, VZ_MSG_WELCOME, NULL,
			  json_pack("{s:s,s:i,s:i}", "scheduler_instance", "bench-1", "lease_ms", 60000, "heartbeat_ms", 1000),
			  &e))
		die("welcome");
	m = vz_test_router_expect(r, VZ_MSG_READY, rid, &rlen, 10000);
	if (!m)
		die("the executor did not offer slots");
	vz_msg_free(m);
	usleep(500 * 1000);
	long idle_kb = proc_kb(pid, "VmRSS");
	double cpu0 = proc_cpu_s(pid);
	double t0 = vz_bench_now_ms();
	for (int i = 0; i < nb; i++) {
		char uuid[40];
		snprintf(uuid, sizeof(uuid), "bench-many-%d", i);
		json_t *node = json_pack("{s:s,s:s}", "name", "local", "connection", "local");
		json_t *req = request(uuid, node, "pb/ten.yaml", json_object(), 0);
		json_object_del(req, "projects");
		if (vz_proto_send(r, rid, rlen, VZ_MSG_BUILD, NULL, req, &e))
			die("cannot send a build");
	}
	int done = 0, ok = 0;
	long peak_kb = 0;
	uint64_t until = vz_mono_ms() + 600000;
	while (done < nb && vz_mono_ms() < until) {
		zmq_pollitem_t pi = { r, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(&pi, 1, 100) <= 0)
			continue;
		m = NULL;
		if (vz_proto_recv(r, 1, rid, &rlen, &m, NULL, ZMQ_DONTWAIT, &e))
			continue;
		if (m->type == VZ_MSG_HEARTBEAT) /* the scheduler answers each heartbeat */
			vz_proto_send(r, rid, rlen, VZ_MSG_HEARTBEAT, NULL,
				      json_pack("{s:s}", "scheduler_instance", "bench-1"), &e);
		if (m->type == VZ_MSG_RESULT) {
			done++;
			ok += strcmp(vz_msg_str(m, "result"), "SUCCESS") == 0;
			if (done == 1 && strcmp(vz_msg_str(m, "result"), "SUCCESS") != 0)
				fprintf(stderr, "first result: %s %s\n", vz_msg_str(m, "result"), vz_msg_str(m, "message"));
			vz_proto_send(r, rid, rlen, VZ_MSG_ACK, NULL,
				      json_pack("{s:s,s:I}", "build", vz_msg_str(m, "build"), "attempt", (json_int_t)1), &e);
		}
		vz_msg_free(m);
	}
	double wall = vz_bench_now_ms() - t0;
	double cpu = proc_cpu_s(pid) - cpu0;
	peak_kb = proc_kb(pid, "VmHWM");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	g_child = 0;
	zmq_close(r);
	zmq_ctx_term(zctx);
	if (done < nb)
		die("not every build finished within 10 minutes");
	printf("B. %d concurrent builds of a 10-task playbook on one executor process (local node)\n", nb);
	printf("  wall %.0f ms, executor CPU %.2f s (its own threads; the tasks' processes not counted), %d/%d SUCCESS\n",
	       wall, cpu, ok, nb);
	printf("  executor RSS idle %.1f MB (goal < 10 MB), peak %.1f MB (goal < 150 MB), %.2f MB per build\n",
	       (double)idle_kb / 1024.0, (double)peak_kb / 1024.0, (double)(peak_kb - idle_kb) / 1024.0 / nb);

	if (!getenv("VZ_BENCH_NO_ANSIBLE") && system("command -v ansible-playbook >/dev/null 2>&1") == 0) {
		char pb[1200];
		snprintf(pb, sizeof(pb), "%s/w0/pb/ten.yaml", g_tmp);
		pid_t ap = fork();
		if (ap == 0) {
			int fd = open("/dev/null", O_WRONLY);
			dup2(fd, 1);
			dup2(fd, 2);
			execlp("ansible-playbook", "ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
			       "ansible_python_interpreter=/usr/bin/python3", pb, (char *)NULL);
			_exit(127);
		}
		int st = 0;
		struct rusage ru;
		if (wait4(ap, &st, 0, &ru) != ap || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("ansible-playbook on localhost failed");
		printf("  peer: one ansible-playbook running the same playbook once peaks at %.1f MB: the executor's "
		       "peak for %d builds is %.1fx one ansible-playbook\n",
		       (double)ru.ru_maxrss / 1024.0, nb, (double)peak_kb / (double)ru.ru_maxrss);
	}
}

int main(void)
{
	vz_err e = { 0 };
	if (vz_node_global_init(&e) || vz_workspace_global_init(&e))
		die(vz_err_msg(&e));
	g_tmp = vz_test_tmpdir("vz-bench-exec");
	make_repos();
	bench_start();
	bench_many();
	vz_rm_rf(g_tmp, NULL);
	free(g_tmp);
	return 0;
}
