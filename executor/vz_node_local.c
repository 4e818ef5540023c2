/* vz_node_local: the local connection, running each command as `/bin/sh -c` in its own session
 * (so a timeout or cancel can kill the whole process group: SIGTERM, then SIGKILL after a grace),
 * with stdout/stderr streamed through poll. Used for the embedded default node and dry-runs. */
#define _GNU_SOURCE /* pipe2: pipes must be O_CLOEXEC atomically, other threads fork too */
#include "vz_node_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vz_util.h"

extern char **environ;

#define LOCAL_CHUNK 65536
#define LOCAL_SLICE_MS 100      /* how often the cancel flag is looked at while blocked */
#define LOCAL_REAP_MS 5000      /* after SIGKILL: how long pipes held elsewhere may stay open */

static void local_close(vz_node *n)
{
	free(n->where);
	free(n);
}

/* A NULL-terminated environment: ours, with cmd's entries replacing same-named ones. Pointers
 * are borrowed from environ and env; only the array is allocated. */
static char **local_envp(const char *const *env)
{
	size_t ne = 0, nc = 0, k = 0;
	char **envp = NULL;

	while (environ && environ[ne])
		ne++;
	while (env && env[nc])
		nc++;
	envp = calloc(ne + nc + 1, sizeof(*envp));
	if (!envp)
		goto out;
	for (size_t i = 0; i < ne; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t kl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		int replaced = 0;
		for (size_t j = 0; j < nc && !replaced; j++)
			replaced = !strncmp(env[j], environ[i], kl) && env[j][kl] == '=';
		if (!replaced)
			envp[k++] = environ[i];
	}
	for (size_t j = 0; j < nc; j++)
		envp[k++] = (char *)env[j];
	envp[k] = NULL;
out:
	return envp;
}

/* Writes without letting SIGPIPE kill us when the command closed its stdin: block it for this
 * thread, and consume the one our write raised (if none was pending before). */
static ssize_t write_nosigpipe(int fd, const void *p, size_t n)
{
	sigset_t pipe_set, old, pending;
	ssize_t r;
	int saved, was_pending;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	r = write(fd, p, n);
	saved = errno;
	if (r < 0 && errno == EPIPE && !was_pending) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return r;
}

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* In the child: only async-signal-safe calls. Never returns. */
static void local_child(const vz_node_cmd *cmd, int in_fd, int out_fd, int err_fd, char **envp)
{
	struct sigaction dfl;
	sigset_t none;
	int fds[3] = { in_fd, out_fd, err_fd };
	char *argv[] = { "sh", "-c", (char *)cmd->command, NULL };

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL); /* fails harmlessly for KILL, STOP and the RT gaps */
	setsid();
	for (int i = 0; i < 3; i++) {
		if (fds[i] == i)
			fcntl(i, F_SETFD, 0); /* dup2 onto itself would keep O_CLOEXEC */
		else if (dup2(fds[i], i) < 0)
			_exit(127);
	}
#ifdef SYS_close_range
	syscall(SYS_close_range, 3u, ~0u, 0u); /* fds other threads opened without O_CLOEXEC */
#endif
	if (cmd->cwd && chdir(cmd->cwd) != 0) {
		static const char msg[] = "vinz: cannot change to the working directory: ";
		const char *what = strerror(errno); /* glibc: returns static strings for known errnos */
		(void)!write(2, msg, sizeof(msg) - 1);
		(void)!write(2, cmd->cwd, strlen(cmd->cwd));
		(void)!write(2, ": ", 2);
		(void)!write(2, what, strlen(what));
		(void)!write(2, "\n", 1);
		_exit(1);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve("/bin/sh", argv, envp);
	_exit(127);
}

static int local_exec(vz_node *n, const vz_node_cmd *cmd, vz_node_result *res, vz_err *e)
{
	int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
	int devnull = -1, pidfd = -1, rc = 0, status = 0, reaped = 0, killing = 0;
	int outcome = 0; /* 0, VZ_ETIMEOUT or VZ_ECANCELED */
	char **envp = NULL;
	pid_t pid = -1;
	sigset_t all, old;
	const char *in = cmd->stdin_data;
	size_t in_left = cmd->stdin_data ? cmd->stdin_len : 0;
	uint64_t t0 = vz_mono_ms(), deadline = cmd->timeout_ms ? t0 + (uint64_t)cmd->timeout_ms : 0;
	uint64_t kill_at = 0, give_up_at = 0;
	char *chunk = NULL;

	chunk = malloc(LOCAL_CHUNK);
	envp = local_envp(cmd->env);
	if (!chunk || !envp) {
		rc = vz_err_set(e, VZ_ENOMEM, "%s: out of memory starting a command", n->where);
		goto out;
	}
	if (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0 ||
	    (in_left > 0 && pipe2(in_p, O_CLOEXEC) != 0)) {
		rc = vz_err_set(e, VZ_EIO, "%s: cannot create pipes: %s", n->where, strerror(errno));
		goto out;
	}
	if (in_left == 0 && (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		rc = vz_err_set(e, VZ_EIO, "%s: cannot open /dev/null: %s", n->where, strerror(errno));
		goto out;
	}

	/* Signals stay blocked across fork so no handler of ours runs in the child. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		local_child(cmd, in_left ? in_p[0] : devnull, out_p[1], err_p[1], envp);
	int fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		rc = vz_err_set(e, VZ_EIO, "%s: cannot fork: %s", n->where, strerror(fork_errno));
		goto out;
	}
	closep(&in_p[0]);
	closep(&out_p[1]);
	closep(&err_p[1]);
	closep(&devnull);
#ifdef SYS_pidfd_open
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* Linux >= 5.3; else we poll in slices */
#endif
	if (in_p[1] >= 0)
		vz_fd_nonblock(in_p[1]);
	vz_fd_nonblock(out_p[0]);
	vz_fd_nonblock(err_p[0]);

	while (!(reaped && out_p[0] < 0 && err_p[0] < 0)) {
		struct pollfd pfd[4];
		int np = 0, i_in = -1, i_out = -1, i_err = -1;
		uint64_t now = vz_mono_ms();
		int64_t wait = -1;

		if (in_p[1] >= 0) {
			i_in = np;
			pfd[np++] = (struct pollfd){ in_p[1], POLLOUT, 0 };
		}
		if (out_p[0] >= 0) {
			i_out = np;
			pfd[np++] = (struct pollfd){ out_p[0], POLLIN, 0 };
		}
		if (err_p[0] >= 0) {
			i_err = np;
			pfd[np++] = (struct pollfd){ err_p[0], POLLIN, 0 };
		}
		if (!reaped && pidfd >= 0)
			pfd[np++] = (struct pollfd){ pidfd, POLLIN, 0 };
		if (!reaped && pidfd < 0)
			wait = 5;
		if (cmd->cancel && !outcome)
			wait = wait < 0 || wait > LOCAL_SLICE_MS ? LOCAL_SLICE_MS : wait;
		uint64_t next = outcome ? (killing == 1 ? kill_at : give_up_at) : deadline;
		if (next) {
			int64_t left = next > now ? (int64_t)(next - now) : 0;
			wait = wait < 0 || wait > left ? left : wait;
		}
		if (poll(pfd, (nfds_t)np, (int)wait) < 0 && errno != EINTR) {
			rc = vz_err_set(e, VZ_EIO, "%s: poll failed: %s", n->where, strerror(errno));
			goto out;
		}
		if (i_in >= 0 && pfd[i_in].revents) {
			size_t want = in_left > LOCAL_CHUNK ? LOCAL_CHUNK : in_left;
			ssize_t w = write_nosigpipe(in_p[1], in, want);
			if (w > 0) {
				in += w;
				in_left -= (size_t)w;
			}
			/* EPIPE: the command does not read all its input; that is its business */
			if (in_left == 0 || (w < 0 && errno != EAGAIN && errno != EINTR))
				closep(&in_p[1]);
		}
		int *rfd[2] = { &out_p[0], &err_p[0] };
		int ridx[2] = { i_out, i_err };
		for (int s = 0; s < 2; s++) {
			if (ridx[s] < 0 || !pfd[ridx[s]].revents)
				continue;
			ssize_t r = read(*rfd[s], chunk, LOCAL_CHUNK);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
				closep(rfd[s]);
			else if (r > 0 && !outcome && cmd->on_output &&
				 cmd->on_output(cmd->ctx, s == 0 ? VZ_NODE_STDOUT : VZ_NODE_STDERR, chunk,
						(size_t)r) != 0)
				outcome = VZ_ECANCELED;
		}
		if (!reaped) {
			siginfo_t si;
			memset(&si, 0, sizeof(si));
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    si.si_pid == pid) {
				/* The zombie leader still holds the group id: kill what ignored SIGTERM
				 * before reaping, so the id cannot have been reused. */
				if (outcome)
					kill(-pid, SIGKILL);
				while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
					;
				reaped = 1;
				closep(&pidfd);
			}
		}
		now = vz_mono_ms();
		if (!outcome && cmd->cancel && *cmd->cancel)
			outcome = VZ_ECANCELED;
		if (!outcome && deadline && now >= deadline)
			outcome = VZ_ETIMEOUT;
		if (outcome && killing == 0) {
			if (!reaped)
				kill(-pid, SIGTERM);
			killing = 1;
			kill_at = now + VZ_NODE_KILL_GRACE_MS;
		}
		if (killing == 1 && now >= kill_at) {
			if (!reaped)
				kill(-pid, SIGKILL);
			killing = 2;
			give_up_at = now + LOCAL_REAP_MS;
		}
		if (killing == 2 && reaped && now >= give_up_at)
			break; /* pipes held by something that left our process group */
	}

	res->exit_status = WIFEXITED(status) ? WEXITSTATUS(status)
			   : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
	res->timed_out = outcome == VZ_ETIMEOUT;
	if (outcome == VZ_ETIMEOUT)
		rc = vz_err_set(e, VZ_ETIMEOUT, "%s: command timed out after %d ms and was killed: %.80s",
				n->where, cmd->timeout_ms, cmd->command);
	else if (outcome == VZ_ECANCELED)
		rc = vz_err_set(e, VZ_ECANCELED, "%s: command canceled and killed: %.80s", n->where,
				cmd->command);
out:
	if (pid > 0 && !reaped) { /* only after a failed poll: do not leave the command behind */
		kill(-pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	closep(&in_p[0]);
	closep(&in_p[1]);
	closep(&out_p[0]);
	closep(&out_p[1]);
	closep(&err_p[0]);
	closep(&err_p[1]);
	closep(&devnull);
	closep(&pidfd);
	free(envp);
	free(chunk);
	return rc;
}

static const vz_node_ops local_ops = { local_exec, local_close };

int vz_node_local_open(vz_node *n, const vz_node_spec *spec, vz_err *e)
{
	n->ops = &local_ops;
	n->impl = NULL;
	return 0;
}
