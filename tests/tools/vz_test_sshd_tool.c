/* vz-test-sshd: tests/lib/vz_test_sshd for the shell tests. `vz-test-sshd ENVFILE` starts a real
 * sshd on loopback (generated keys, node user with /bin/sh), writes ENVFILE with NODE_HOST,
 * NODE_PORT, NODE_USER, NODE_KEY, NODE_KNOWN_HOSTS and NODE_SSHD_PID (shell syntax, written
 * atomically), then waits:
 *   SIGUSR1          the node dies: its sshd and every session under it are killed with SIGKILL
 *                    (connections drop mid-command); the files stay until the end;
 *   SIGTERM/INT/HUP  stop sshd, remove its directory, exit 0;
 * and it stops by itself when its parent dies or after an hour. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "vz_test_sshd.h"

/* The parent pid of pid from /proc, or -1. */
static long ppid_of(long pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')'); /* the command name may hold spaces and parens */
	long pp = -1;
	if (!p || sscanf(p + 1, " %*c %ld", &pp) != 1)
		return -1;
	return pp;
}

/* Collects pid and its descendants (parents before children, bounded) into out. */
static int collect_tree(long pid, long *out, int n, int max, int depth)
{
	if (n >= max)
		return n;
	out[n++] = pid;
	if (depth >= 8)
		return n;
	DIR *d = opendir("/proc");
	struct dirent *de;
	long kids[256];
	int nk = 0;
	while (d && (de = readdir(d)) && nk < 256) {
		char *end;
		long c = strtol(de->d_name, &end, 10);
		if (*end == 0 && c > 0 && ppid_of(c) == pid)
			kids[nk++] = c;
	}
	if (d)
		closedir(d);
	for (int i = 0; i < nk; i++)
		n = collect_tree(kids[i], out, n, max, depth + 1);
	return n;
}

/* The node dies at once: pid's whole tree is frozen first (SIGSTOP, so no process gets to send
 * anything more, not even the exit status of a command it saw killed), then killed. */
static void kill_tree(long pid)
{
	long procs[1024];
	int n = collect_tree(pid, procs, 0, 1024, 0);
	for (int i = 0; i < n; i++)
		kill((pid_t)procs[i], SIGSTOP);
	for (int i = 0; i < n; i++)
		kill((pid_t)procs[i], SIGKILL);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: vz-test-sshd ENVFILE\n");
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (getppid() == 1)
		return 1;
	vz_test_sshd *s = NULL;
	if (vz_test_sshd_start(&s))
		return 1;
	char pidpath[4096], tmp[4096];
	snprintf(pidpath, sizeof(pidpath), "%s/sshd.pid", vz_test_sshd_dir(s));
	long sshd_pid = 0;
	FILE *pf = fopen(pidpath, "r");
	if (!pf || fscanf(pf, "%ld", &sshd_pid) != 1)
		sshd_pid = 0;
	if (pf)
		fclose(pf);
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f,
			  "NODE_HOST=127.0.0.1\nNODE_PORT=%d\nNODE_USER=%s\nNODE_KEY=%s\nNODE_KNOWN_HOSTS=%s\n"
			  "NODE_SSHD_PID=%ld\n",
			  vz_test_sshd_port(s), vz_test_sshd_user(s), vz_test_sshd_key(s), vz_test_sshd_known_hosts(s),
			  sshd_pid) < 0 ||
	    fclose(f) != 0 || rename(tmp, argv[1]) != 0) {
		perror("vz-test-sshd: cannot write the env file");
		vz_test_sshd_stop(s);
		return 1;
	}
	struct timespec limit = { 3600, 0 };
	for (;;) {
		int sig = sigtimedwait(&set, NULL, &limit);
		if (sig == SIGUSR1) {
			if (sshd_pid > 0)
				kill_tree(sshd_pid);
			continue;
		}
		if (sig < 0 && errno == EINTR)
			continue;
		break; /* TERM, INT, HUP, or the hour is over */
	}
	vz_test_sshd_stop(s);
	return 0;
}
