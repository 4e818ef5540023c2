/* bench_workspace: issue 3 benchmark (c), the workspace on a node for a first build and for a
 * second build of a descendant commit (10 files changed), on a generated repository (10 000
 * files, about 4 MB) and a loopback sshd node. Three ways, measured in the same run:
 *   vinz  vz_deliver_repo on an open session (probe + one script; pack of what the node lacks);
 *   git   the peer a git-based executor would be: git's smart protocol over OpenSSH into the
 *         node's existing repository (git push: the same negotiation and pack as a node-side
 *         fetch, without the node needing a way back to the executor), then a checkout over the
 *         same connection. OpenSSH runs with a ControlMaster opened before timing, so neither
 *         side pays a key exchange in the timed part;
 *   tar   today's path before vz_deliver: the whole work tree as one tar stream (vz_tar_dir).
 * Prints medians and ratios; fails only on errors, never on numbers. N rounds (VZ_BENCH_N,
 * default 5). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vz_deliver.h"
#include "vz_node.h"
#include "vz_tar.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"

#define NFILES 10000
#define NDIRS 100
#define NCHANGED 10
#define PROJECT "bench.example.org/big"

static vz_test_sshd *g_sshd;
static vz_node *g_node;
static char *g_tmp, *g_ws, g_top[64], g_store[128], g_c1[41], g_c2[41], g_ssh_cmd[4096], g_cm[600];

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static int sink(void *ctx, int stream, const char *data, size_t len)
{
	vz_buf *b = ctx;
	if (b)
		vz_buf_add_capped(b, data, len);
	if (stream == VZ_NODE_STDERR)
		fprintf(stderr, "node: %.*s", (int)len, data);
	return 0;
}

/* A node command on the open session; 0 or -1. */
static int nsh(vz_buf *out, const char *command)
{
	vz_node_cmd c = { .command = command, .on_output = sink, .ctx = out, .timeout_ms = 300000 };
	vz_node_result r = { 0 };
	vz_err e = { 0 };
	if (vz_node_exec(g_node, &c, &r, &e) != 0 || r.exit_status != 0) {
		fprintf(stderr, "bench_workspace: node command failed (%d): %s: %.200s\n", r.exit_status, vz_err_msg(&e),
			command);
		return -1;
	}
	return 0;
}

/* The node's HEAD in dir is want, and the work tree is clean. */
static int node_at(const char *dir, const char *want, int git)
{
	vz_buf out = VZ_BUF_INIT(65536);
	char cmd[1024];
	int rc = -1;
	if (git)
		snprintf(cmd, sizeof(cmd), "cd '%s' && git rev-parse HEAD && git status --porcelain | wc -l", dir);
	else
		snprintf(cmd, sizeof(cmd), "cd '%s' && find . -type f | wc -l", dir);
	if (nsh(&out, cmd) != 0)
		goto out;
	char expect[128];
	if (git)
		snprintf(expect, sizeof(expect), "%s\n0\n", want);
	else
		snprintf(expect, sizeof(expect), "%d\n", NFILES);
	if (strcmp(vz_buf_cstr(&out), expect) != 0) {
		fprintf(stderr, "bench_workspace: %s on the node is not as expected: %s", dir, vz_buf_cstr(&out));
		goto out;
	}
	rc = 0;
out:
	vz_buf_free(&out);
	return rc;
}

/* ws's branch main and work tree at commit. */
static int ws_at(const char *commit)
{
	return vz_test_sshd_sh(NULL, "cd '%s' && git update-ref refs/heads/main %s && git reset -q --hard",
			       g_ws, commit);
}

/* Everything of the run on the node lives under ~/g_top, which may be a symlink to tmpfs. */
static int clear_node(void)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'/*", g_top);
	return nsh(NULL, cmd);
}

static int vinz(const char *dir, vz_deliver_stats *st, double *ms)
{
	vz_deliver_opts o = { .project = PROJECT, .store_root = g_store, .timeout_ms = 600000 };
	vz_err e = { 0 };
	double t0 = now_ms();
	int rc = vz_deliver_repo(g_node, g_ws, dir, &o, st, &e);
	*ms = now_ms() - t0;
	if (rc) {
		fprintf(stderr, "bench_workspace: vz_deliver_repo %s: %s\n", dir, vz_err_msg(&e));
		return -1;
	}
	return 0;
}

static int tar_ship(const char *dir, size_t *bytes, double *ms)
{
	static const char *const skip[] = { ".git", NULL };
	vz_buf tar = VZ_BUF_INIT(1u << 30);
	vz_err e = { 0 };
	char cmd[1024];
	double t0 = now_ms();
	int rc = -1;
	if (vz_tar_dir(&tar, g_ws, skip, &e) != 0) {
		fprintf(stderr, "bench_workspace: tar: %s\n", vz_err_msg(&e));
		goto out;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s' && tar -xf - -C '%s'", dir, dir, dir);
	vz_node_cmd c = { .command = cmd, .stdin_data = tar.ptr, .stdin_len = tar.len, .timeout_ms = 300000 };
	vz_node_result r = { 0 };
	if (vz_node_exec(g_node, &c, &r, &e) != 0 || r.exit_status != 0) {
		fprintf(stderr, "bench_workspace: tar on the node: %s (%d)\n", vz_err_msg(&e), r.exit_status);
		goto out;
	}
	*ms = now_ms() - t0;
	*bytes = tar.len;
	rc = 0;
out:
	vz_buf_free(&tar);
	return rc;
}

/* A command on the node through OpenSSH and its control master. */
static int peer_cmd(const char *remote)
{
	vz_buf q = VZ_BUF_INIT(8192);
	vz_node_sh_quote(&q, remote);
	int rc = vz_test_sshd_sh(NULL, "%s 127.0.0.1 %s", g_ssh_cmd, vz_buf_cstr(&q));
	vz_buf_free(&q);
	return rc;
}

/* git: the first build makes the repository; a second build pushes into it and checks out. */
static int peer_first(const char *dir, double *ms)
{
	char cmd[2048];
	double t0 = now_ms();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && git init -q '%s'", dir, dir);
	if (peer_cmd(cmd) != 0 ||
	    vz_test_sshd_sh(NULL, "cd '%s' && GIT_SSH_COMMAND='%s' git push -q '%s@127.0.0.1:%s' %s:refs/heads/main",
			    g_ws, g_ssh_cmd, vz_test_sshd_user(g_sshd), dir, g_c1) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "cd '%s' && git checkout -q -f main", dir);
	if (peer_cmd(cmd) != 0)
		return -1;
	*ms = now_ms() - t0;
	return 0;
}

static int peer_second(const char *dir, double *ms)
{
	char cmd[2048];
	double t0 = now_ms();
	if (vz_test_sshd_sh(NULL,
			    "cd '%s' && GIT_SSH_COMMAND='%s' git push -q '%s@127.0.0.1:%s' %s:refs/heads/incoming",
			    g_ws, g_ssh_cmd, vz_test_sshd_user(g_sshd), dir, g_c2) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "cd '%s' && git checkout -q -f -B main incoming && git clean -ffdxq", dir);
	if (peer_cmd(cmd) != 0)
		return -1;
	*ms = now_ms() - t0;
	return 0;
}

static int make_repo(void)
{
	char *src = vz_path_join(g_tmp, "src");
	uint32_t x = 2463534242u;
	int rc = -1;
	static const char *const words[] = { "return", "if", "for", "int", "struct", "buffer", "node", "commit",
					     "tree", "value", "error", "while", "static", "const", "char", "size" };
	for (int i = 0; i < NFILES; i++) {
		char rel[64];
		vz_buf b = VZ_BUF_INIT(1 << 20);
		snprintf(rel, sizeof(rel), "d%02d/file%05d.c", i % NDIRS, i);
		int lines = 4 + (int)(x % 8);
		for (int l = 0; l < lines; l++) {
			for (int w = 0; w < 6; w++) {
				x ^= x << 13;
				x ^= x >> 17;
				x ^= x << 5;
				vz_buf_printf(&b, "%s%s_%u", w ? " " : "\t", words[x % 16], x % 1000);
			}
			vz_buf_putc(&b, '\n');
		}
		vz_test_write(src, rel, vz_buf_cstr(&b));
		vz_buf_free(&b);
	}
	if (vz_test_sshd_sh(NULL,
		"cd '%s'\nexport GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b\n"
		"git init -q -b main src && cd src && git add -A && git commit -q -m one\n"
		"i=0; while [ $i -lt %d ]; do k=$((i * 37 + 1)); "
		"echo \"changed line\" >> d$(printf %%02d $((k %% %d)))/file$(printf %%05d $k).c; i=$((i+1)); done\n"
		"git commit -q -am two\n"
		"cd .. && git clone -q --bare src cache.git && git -C cache.git repack -q -a -d\n"
		"git init -q ws && echo \"$PWD/cache.git/objects\" > ws/.git/objects/info/alternates\n"
		"git -C ws update-ref refs/heads/main $(git -C src rev-parse main^) && git -C ws checkout -q -f main\n",
		g_tmp, NCHANGED, NDIRS) != 0)
		goto out;
	vz_buf out = VZ_BUF_INIT(4096);
	if (vz_test_sshd_sh(&out, "cd '%s/src' && git rev-parse main^ main && git ls-files -z | xargs -0 cat | "
			    "wc -c && git diff --shortstat main^ main", g_tmp) != 0 || out.len < 82) {
		vz_buf_free(&out);
		goto out;
	}
	memcpy(g_c1, out.ptr, 40);
	memcpy(g_c2, out.ptr + 41, 40);
	printf("repository: %d files in %d directories; content bytes and commit two's diff: %s", NFILES, NDIRS,
	       out.ptr + 82);
	vz_buf_free(&out);
	rc = 0;
out:
	free(src);
	return rc;
}

int main(void)
{
	vz_node_spec spec;
	vz_err e = { 0 };
	int64_t n = 5;
	int rc = 1;
	const char *ns = getenv("VZ_BENCH_N");
	char tok[37];
	double *v_first = NULL, *v_second = NULL, *v_second_new = NULL, *p_first = NULL, *p_second = NULL, *t_ship = NULL;
	double *v_pack = NULL, *r_first = NULL, *r_second = NULL, *s_probe = NULL, *s_pack = NULL, *s_script = NULL;
	vz_deliver_stats s1 = { 0 }, s2 = { 0 }, s3 = { 0 }, tmp = { 0 };
	size_t tar_bytes = 0;
	char dir_a[256], dir_b[256], dir_p[256], dir_t[256];

	if (ns && vz_parse_i64(ns, 1, 1000, &n) != 0) {
		fprintf(stderr, "bench_workspace: VZ_BENCH_N must be a number from 1 to 1000\n");
		return 1;
	}
	vz_uuid(tok);
	tok[8] = '\0';
	snprintf(g_top, sizeof(g_top), "vzbench-%s", tok);
	snprintf(g_store, sizeof(g_store), "%s/store", g_top);
	if (vz_node_global_init(&e) != 0 || vz_test_sshd_start(&g_sshd) != 0) {
		fprintf(stderr, "bench_workspace: %s\n", vz_err_msg(&e));
		return 1;
	}
	g_tmp = vz_test_tmpdir("vz-bench-ws");
	g_ws = vz_path_join(g_tmp, "ws");
	vz_test_sshd_spec(g_sshd, &spec);
	if (vz_node_connect(&g_node, &spec, &e) != 0) {
		fprintf(stderr, "bench_workspace: %s\n", vz_err_msg(&e));
		goto out;
	}
	double t0 = now_ms();
	if (make_repo() != 0)
		goto out;
	printf("(generated in %.0f ms)\n", now_ms() - t0);
	snprintf(g_cm, sizeof(g_cm), "%s/cm", g_tmp);
	snprintf(g_ssh_cmd, sizeof(g_ssh_cmd),
		 "ssh -p %d -l %s -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes "
		 "-o ControlMaster=auto -o ControlPath=%s -o ControlPersist=600",
		 vz_test_sshd_port(g_sshd), vz_test_sshd_user(g_sshd), vz_test_sshd_key(g_sshd),
		 vz_test_sshd_known_hosts(g_sshd), g_cm);
	if (peer_cmd("true") != 0) /* opens the control master */
		goto out;
	/* The node's directories on tmpfs unless VZ_BENCH_DISK=1: on a shared machine the disk's
	 * writeback throttling (other jobs' dirty pages) makes checkouts of 10 000 files vary by 10x
	 * from one second to the next, which would drown what this measures. */
	int disk = getenv("VZ_BENCH_DISK") && strcmp(getenv("VZ_BENCH_DISK"), "1") == 0;
	char mk[512];
	if (disk)
		snprintf(mk, sizeof(mk), "mkdir -p '%s'", g_top);
	else
		snprintf(mk, sizeof(mk), "mkdir -p '/dev/shm/%s' && ln -s '/dev/shm/%s' '%s'", g_top, g_top, g_top);
	if (nsh(NULL, mk) != 0)
		goto out;
	printf("node directories on %s\n", disk ? "the node user's home (disk)" : "tmpfs (/dev/shm; VZ_BENCH_DISK=1 for disk)");

	v_first = vz_xcalloc((size_t)n, sizeof(double));
	v_second = vz_xcalloc((size_t)n, sizeof(double));
	v_second_new = vz_xcalloc((size_t)n, sizeof(double));
	p_first = vz_xcalloc((size_t)n, sizeof(double));
	p_second = vz_xcalloc((size_t)n, sizeof(double));
	t_ship = vz_xcalloc((size_t)n, sizeof(double));
	v_pack = vz_xcalloc((size_t)n, sizeof(double));
	r_first = vz_xcalloc((size_t)n, sizeof(double));
	r_second = vz_xcalloc((size_t)n, sizeof(double));
	s_probe = vz_xcalloc((size_t)n, sizeof(double));
	s_pack = vz_xcalloc((size_t)n, sizeof(double));
	s_script = vz_xcalloc((size_t)n, sizeof(double));
	snprintf(dir_a, sizeof(dir_a), "%s/a/src/%s", g_top, PROJECT);
	snprintf(dir_b, sizeof(dir_b), "%s/b/src/%s", g_top, PROJECT);
	snprintf(dir_p, sizeof(dir_p), "%s/peer/src/%s", g_top, PROJECT);
	snprintf(dir_t, sizeof(dir_t), "%s/tar/src/%s", g_top, PROJECT);
	for (int i = 0; i < (int)n; i++) {
		double ms;
		/* vinz, first build: empty node */
		if (clear_node() || ws_at(g_c1) || vinz(dir_a, &s1, &v_first[i]) || node_at(dir_a, g_c1, 1))
			goto out;
		v_pack[i] = (double)s1.pack_ms;
		/* vinz, second build into the same directory (a node that runs one build at a time) */
		/* a second build comes minutes after the first, not within the same second: git's index
		 * would see every file as racily clean and hash all 10 000 of them again (both vinz and
		 * the git peer get this pause) */
		sleep(2);
		if (ws_at(g_c2) || vinz(dir_a, &s2, &v_second[i]) || node_at(dir_a, g_c2, 1))
			goto out;
		s_probe[i] = (double)s2.probe_ms;
		s_pack[i] = (double)s2.pack_ms;
		s_script[i] = (double)(s2.total_ms - s2.probe_ms - s2.pack_ms);
		/* vinz, second build into a new directory, the first one gone (single-use workspaces) */
		if (clear_node() || ws_at(g_c1) || vinz(dir_a, &tmp, &ms) || nsh(NULL, "true") || ws_at(g_c2))
			goto out;
		char rm[600];
		snprintf(rm, sizeof(rm), "rm -rf '%s'", dir_a);
		if (nsh(NULL, rm) || vinz(dir_b, &s3, &v_second_new[i]) || node_at(dir_b, g_c2, 1))
			goto out;
		/* git over OpenSSH */
		if (peer_first(dir_p, &p_first[i]) || node_at(dir_p, g_c1, 1))
			goto out;
		sleep(2);
		if (peer_second(dir_p, &p_second[i]) || node_at(dir_p, g_c2, 1))
			goto out;
		/* tar of the whole work tree (the same for every build) */
		if (tar_ship(dir_t, &tar_bytes, &t_ship[i]) || node_at(dir_t, NULL, 0))
			goto out;
		r_first[i] = v_first[i] / p_first[i];
		r_second[i] = v_second[i] / p_second[i];
		fprintf(stderr, "  new dir: pack %llu ms, rebuilt %d, reused %d, objects %zu, note %s\n",
			(unsigned long long)s3.pack_ms, s3.rebuilt, s3.reused, s3.objects, s3.note);
		fprintf(stderr, "round %d: vinz first %.1f second %.1f second-new-dir %.1f | git first %.1f second %.1f | "
			"tar %.1f ms\n", i + 1, v_first[i], v_second[i], v_second_new[i], p_first[i], p_second[i], t_ship[i]);
	}
	double vf = median(v_first, (int)n), vs = median(v_second, (int)n), vn = median(v_second_new, (int)n),
	       pf = median(p_first, (int)n), ps = median(p_second, (int)n), tt = median(t_ship, (int)n),
	       vp = median(v_pack, (int)n), rf = median(r_first, (int)n), rs = median(r_second, (int)n);
	printf("medians of %lld rounds (ms):\n", (long long)n);
	printf("  first build:  vinz %8.1f (%zu objects, %zu bytes, %d round trips, pack %.0f ms)  git %8.1f  tar %8.1f "
	       "(%zu bytes)\n", vf, s1.objects, s1.bytes, s1.round_trips, vp, pf, tt, tar_bytes);
	printf("  second build: vinz %8.1f same dir (%zu objects, %zu bytes, %d round trips), %8.1f new dir (%zu "
	       "objects)  git %8.1f  tar %8.1f\n", vs, s2.objects, s2.bytes, s2.round_trips, vn, s3.objects, ps, tt);
	printf("ratios: first build vinz/git %.2fx, vinz/tar %.2fx; second build vinz/git %.2fx (new dir %.2fx), "
	       "vinz/tar %.2fx (new dir %.2fx); vinz second/first %.2fx\n", vf / pf, vf / tt, vs / ps, vn / ps, vs / tt,
	       vn / tt, vs / vf);
	printf("second build, same dir, where vinz spends it (medians): asking the node %.0f ms, the pack %.0f ms, "
	       "the script (store, workspace, reset, clean) %.0f ms\n", median(s_probe, (int)n), median(s_pack, (int)n),
	       median(s_script, (int)n));
	printf("median of the per-round ratios (each round's vinz and git run back to back): first build vinz/git "
	       "%.2fx, second build vinz/git %.2fx\n", rf, rs);
	rc = 0;
out:
	free(v_first);
	free(v_second);
	free(v_second_new);
	free(p_first);
	free(p_second);
	free(t_ship);
	free(v_pack);
	free(r_first);
	free(r_second);
	free(s_probe);
	free(s_pack);
	free(s_script);
	if (g_cm[0]) {
		const char *argv[] = { "ssh", "-o", NULL, "-O", "exit", "127.0.0.1", NULL };
		char cp[700];
		snprintf(cp, sizeof(cp), "ControlPath=%s", g_cm);
		argv[2] = cp;
		vz_test_sshd_run(argv, NULL);
	}
	if (g_node && !getenv("VZ_KEEP")) {
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "rm -rf '/dev/shm/%s' '%s'", g_top, g_top);
		nsh(NULL, cmd);
	}
	vz_node_close(g_node);
	vz_test_sshd_stop(g_sshd);
	vz_node_global_cleanup();
	if (g_tmp)
		vz_test_rm(g_tmp);
	free(g_tmp);
	free(g_ws);
	return rc;
}
