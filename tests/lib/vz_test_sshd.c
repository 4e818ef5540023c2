/* vz_test_sshd: starts and stops a throwaway OpenSSH sshd for integration tests and benchmarks;
 * see vz_test_sshd.h. Everything it creates lives in one mkdtemp directory. */
#include "vz_test_sshd.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <shadow.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vz_util.h"

#define NODE_USER "vzdnode"
#define SUDO_USER "vzdsudo"         /* the second node user, with passwordless sudo while a test runs */
#define SUDOERS_DIR "/etc/sudoers.d"
#define SUDOERS_PREFIX "vinz-test-sudo-" /* + "<pid>-<n>": one drop-in per sshd */
#define START_TRIES 3       /* a free port can be taken between probing and sshd binding it */
#define READY_POLLS 200     /* x 25 ms: sshd must listen within 5 s */
#define STOP_POLLS 100      /* x 20 ms after SIGTERM, then SIGKILL */

struct vz_test_sshd {
	pid_t pid;
	int port;
	char user[64];
	char sudo_user[64];  /* "" unless started by vz_test_sshd_start_sudo */
	char sudoers[1024];  /* its drop-in while it exists, else "" */
	char *dir, *work, *key, *host_key, *host_pub, *known_hosts, *config, *log, *auth_keys;
	char *key_line;
};

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int vz_test_sshd_run(const char *const argv[], vz_buf *out)
{
	int p[2] = { -1, -1 }, status = 0, rc = -1;
	pid_t pid;
	char chunk[4096];

	if (pipe(p) != 0)
		goto out;
	vz_fd_cloexec(p[0]);
	vz_fd_cloexec(p[1]);
	pid = fork();
	if (pid < 0)
		goto out;
	if (pid == 0) {
		int dn = open("/dev/null", O_RDONLY);
		if (dn < 0 || dup2(dn, 0) < 0 || dup2(p[1], 1) < 0)
			_exit(127);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	p[1] = -1;
	for (;;) {
		ssize_t n = read(p[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out)
			vz_buf_add(out, chunk, (size_t)n);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			goto out;
	}
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out:
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	return rc;
}

int vz_test_sshd_vsh(vz_buf *out, const char *fmt, va_list ap)
{
	vz_buf cmd = VZ_BUF_INIT(1 << 20);
	vz_buf_vprintf(&cmd, fmt, ap);
	const char *argv[] = { "/bin/sh", "-ec", vz_buf_cstr(&cmd), NULL };
	int rc = vz_test_sshd_run(argv, out);
	if (rc != 0)
		fprintf(stderr, "local command failed (%d): %.300s\n", rc, vz_buf_cstr(&cmd));
	vz_buf_free(&cmd);
	return rc ? -1 : 0;
}

int vz_test_sshd_sh(vz_buf *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vz_test_sshd_vsh(out, fmt, ap);
	va_end(ap);
	return rc;
}

int vz_test_sshd_keygen(const char *path)
{
	const char *argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vz-test", "-f",
			       path, NULL };
	unlink(path);
	return vz_test_sshd_run(argv, NULL) == 0 ? 0 : -1;
}

static const char *ensure_user(const char *user, char *name, size_t namelen);
static int write_str(const char *path, const char *s, mode_t mode);

const char *vz_test_sshd_node_user(void)
{
	static char name[64];
	struct passwd *pw;

	if (geteuid() != 0) {
		pw = getpwuid(geteuid());
		if (!pw)
			return NULL;
		if (strcmp(pw->pw_shell, "/bin/sh") != 0)
			fprintf(stderr, "vz_test_sshd: not root, so logging in as %s whose shell is %s, "
				"not /bin/sh: its rc files run on every command\n", pw->pw_name,
				pw->pw_shell);
		vz_strlcpy(name, pw->pw_name, sizeof(name));
		return name;
	}
	return ensure_user(NODE_USER, name, sizeof(name));
}

/* Root: a dedicated user with /bin/sh, created once. Another test process may be doing the
 * same right now (useradd then fails on the lock), so look again before giving up. */
static const char *ensure_user(const char *user, char *name, size_t namelen)
{
	struct passwd *pw;

	for (int tries = 0; tries < 20; tries++) {
		pw = getpwnam(user);
		if (!pw) {
			const char *argv[] = { "useradd", "-m", "-s", "/bin/sh", "-p", "*", user, NULL };
			if (vz_test_sshd_run(argv, NULL) != 0)
				sleep_ms(100);
			continue;
		}
		if (strcmp(pw->pw_shell, "/bin/sh") != 0) {
			const char *argv[] = { "usermod", "-s", "/bin/sh", user, NULL };
			if (vz_test_sshd_run(argv, NULL) != 0)
				sleep_ms(100);
			continue;
		}
		/* sshd without PAM refuses accounts whose password starts with '!' (locked) */
		struct spwd *sp = getspnam(user);
		if (sp && sp->sp_pwdp && sp->sp_pwdp[0] == '!') {
			const char *argv[] = { "usermod", "-p", "*", user, NULL };
			if (vz_test_sshd_run(argv, NULL) != 0)
				sleep_ms(100);
			continue;
		}
		vz_strlcpy(name, user, namelen);
		return name;
	}
	fprintf(stderr, "vz_test_sshd: cannot create user %s with shell /bin/sh\n", user);
	return NULL;
}

/* Removes drop-ins of test processes that ended without stopping their sshd (killed). */
static void sudoers_reap_stale(void)
{
	DIR *d = opendir(SUDOERS_DIR);
	struct dirent *de;
	size_t pl = strlen(SUDOERS_PREFIX);

	while (d && (de = readdir(d))) {
		int64_t pid;
		char num[32], path[1024];
		const char *dash;
		if (strncmp(de->d_name, SUDOERS_PREFIX, pl) || !(dash = strchr(de->d_name + pl, '-')) ||
		    (size_t)(dash - de->d_name - pl) >= sizeof(num))
			continue;
		memcpy(num, de->d_name + pl, (size_t)(dash - de->d_name - pl));
		num[dash - de->d_name - pl] = '\0';
		if (vz_parse_i64(num, 1, INT32_MAX, &pid) != 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", SUDOERS_DIR, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
}

/* Gives s->sudo_user passwordless sudo to any user through its own drop-in, written beside the
 * target, checked with visudo -cf, then renamed into place (sudo ignores names with a dot). */
static int sudoers_add(vz_test_sshd *s)
{
	static int seq;
	char tmp[1024], line[256];
	int rc = -1;

	if (access(SUDOERS_DIR, W_OK) != 0 || system("command -v sudo >/dev/null 2>&1 && "
						   "command -v visudo >/dev/null 2>&1") != 0) {
		fprintf(stderr, "vz_test_sshd: sudo tests need root, sudo and visudo with %s (contrib/"
			"install-deps.sh installs sudo)\n", SUDOERS_DIR);
		return -1;
	}
	sudoers_reap_stale();
	snprintf(s->sudoers, sizeof(s->sudoers), "%s/%s%ld-%d", SUDOERS_DIR, SUDOERS_PREFIX, (long)getpid(), ++seq);
	snprintf(tmp, sizeof(tmp), "%s/.%s%ld-%d.new", SUDOERS_DIR, SUDOERS_PREFIX, (long)getpid(), seq);
	snprintf(line, sizeof(line), "# vz_test_sshd (pid %ld): removed when its sshd stops\n"
		 "%s ALL=(ALL:ALL) NOPASSWD: ALL\n", (long)getpid(), s->sudo_user);
	const char *check[] = { "visudo", "-q", "-c", "-f", tmp, NULL };
	if (write_str(tmp, line, 0440) != 0)
		goto out;
	if (vz_test_sshd_run(check, NULL) != 0) {
		fprintf(stderr, "vz_test_sshd: visudo refuses the drop-in %s\n", tmp);
		goto out;
	}
	if (rename(tmp, s->sudoers) != 0) {
		fprintf(stderr, "vz_test_sshd: rename to %s: %s\n", s->sudoers, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	unlink(tmp);
	if (rc)
		s->sudoers[0] = '\0';
	return rc;
}

static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int port_open(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok = 0;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (fd >= 0)
		ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static int write_str(const char *path, const char *s, mode_t mode)
{
	vz_err e = { 0 };
	if (vz_write_file_atomic(path, s, strlen(s), mode, &e) != 0) {
		fprintf(stderr, "vz_test_sshd: %s\n", vz_err_msg(&e));
		return -1;
	}
	return 0;
}

int vz_test_sshd_write_known_hosts(const vz_test_sshd *s, const char *key_line, const char *path)
{
	vz_buf b = VZ_BUF_INIT(65536);
	int rc;
	vz_buf_printf(&b, "[127.0.0.1]:%d %s\n", s->port, key_line);
	rc = b.failed ? -1 : write_str(path, vz_buf_cstr(&b), 0644);
	vz_buf_free(&b);
	return rc;
}

static void print_log(const vz_test_sshd *s)
{
	vz_buf b = VZ_BUF_INIT(65536);
	vz_err e = { 0 };
	if (vz_read_file(s->log, 65536, &b, &e) == 0)
		fprintf(stderr, "--- sshd log %s ---\n%s--- end ---\n", s->log, vz_buf_cstr(&b));
	vz_buf_free(&b);
}

/* Kills and reaps sshd (bounded: SIGTERM, then SIGKILL). */
static void kill_sshd(vz_test_sshd *s)
{
	int status;
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	for (int i = 0; i < STOP_POLLS; i++) {
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = -1;
			return;
		}
		sleep_ms(20);
	}
	kill(s->pid, SIGKILL);
	while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
		;
	s->pid = -1;
}

/* Writes the config for a port and runs sshd; 0 once it listens, 1 if it died (port taken?). */
static int launch(vz_test_sshd *s)
{
	vz_buf cfg = VZ_BUF_INIT(8192);
	int rc = -1;

	vz_buf_printf(&cfg,
		      "# written by vz_test_sshd\n"
		      "Port %d\n"
		      "ListenAddress 127.0.0.1\n"
		      "AddressFamily inet\n"
		      "HostKey %s\n"
		      "PidFile %s/sshd.pid\n"
		      "AuthorizedKeysFile %s\n"
		      "UsePAM no\n"
		      "StrictModes no\n"
		      "PermitRootLogin yes\n"
		      "PubkeyAuthentication yes\n"
		      "PasswordAuthentication no\n"
		      "KbdInteractiveAuthentication no\n"
		      "AllowUsers %s%s%s\n"
		      "UseDNS no\n"
		      "PrintMotd no\n"
		      "MaxSessions 64\n"
		      "MaxStartups 64\n"
		      "LogLevel VERBOSE\n",
		      s->port, s->host_key, s->dir, s->auth_keys, s->user, *s->sudo_user ? " " : "", s->sudo_user);
	if (cfg.failed || write_str(s->config, vz_buf_cstr(&cfg), 0644) != 0)
		goto out;
	int logfd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0)
		goto out;
	s->pid = fork();
	if (s->pid == 0) {
		const char *sshd = getenv("VZ_SSHD") ? getenv("VZ_SSHD") : "/usr/sbin/sshd";
		int dn = open("/dev/null", O_RDONLY);
		if (dn < 0 || dup2(dn, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
			_exit(127);
		/* sshd re-executes itself, so it needs its absolute path */
		execl(sshd, sshd, "-D", "-e", "-f", s->config, (char *)NULL);
		_exit(127);
	}
	close(logfd);
	if (s->pid < 0)
		goto out;
	for (int i = 0; i < READY_POLLS; i++) {
		int status;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = -1;
			rc = 1;
			goto out;
		}
		if (port_open(s->port)) {
			rc = 0;
			goto out;
		}
		sleep_ms(25);
	}
	fprintf(stderr, "vz_test_sshd: sshd did not listen on port %d within 5 s\n", s->port);
	kill_sshd(s);
out:
	vz_buf_free(&cfg);
	return rc;
}

static int start(vz_test_sshd **out, int sudo);

int vz_test_sshd_start(vz_test_sshd **out)
{
	return start(out, 0);
}

int vz_test_sshd_start_sudo(vz_test_sshd **out)
{
	return start(out, 1);
}

const char *vz_test_sshd_sudo_user(const vz_test_sshd *s)
{
	return *s->sudo_user ? s->sudo_user : NULL;
}

static int start(vz_test_sshd **out, int sudo)
{
	vz_test_sshd *s = NULL;
	vz_buf b = VZ_BUF_INIT(65536);
	vz_err e = { 0 };
	const char *user, *tmp = getenv("TMPDIR");
	char tmpl[4096];
	struct passwd *pw;
	int rc = -1;

	*out = NULL;
	if (!(user = vz_test_sshd_node_user()) || !(pw = getpwnam(user)))
		goto out;
	s = vz_xcalloc(1, sizeof(*s));
	s->pid = -1;
	vz_strlcpy(s->user, user, sizeof(s->user));
	if (sudo) {
		if (geteuid() != 0) {
			fprintf(stderr, "vz_test_sshd: a sudo node user needs the tests to run as root\n");
			goto out;
		}
		if (!ensure_user(SUDO_USER, s->sudo_user, sizeof(s->sudo_user)) || sudoers_add(s) != 0) {
			s->sudo_user[0] = '\0';
			goto out;
		}
	}
	snprintf(tmpl, sizeof(tmpl), "%s/vz-sshd-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
	if (!mkdtemp(tmpl)) {
		fprintf(stderr, "vz_test_sshd: mkdtemp %s: %s\n", tmpl, strerror(errno));
		goto out;
	}
	s->dir = vz_xstrdup(tmpl);
	s->work = vz_path_join(s->dir, "work");
	s->key = vz_path_join(s->dir, "id_ed25519");
	s->host_key = vz_path_join(s->dir, "host_ed25519");
	s->host_pub = vz_path_join(s->dir, "host_ed25519.pub");
	s->known_hosts = vz_path_join(s->dir, "known_hosts");
	s->config = vz_path_join(s->dir, "sshd_config");
	s->log = vz_path_join(s->dir, "sshd.log");
	s->auth_keys = vz_path_join(s->dir, "authorized_keys");
	/* the node user reads authorized_keys (sshd opens it with the user's rights) and writes work */
	if (chmod(s->dir, 0755) != 0 || mkdir(s->work, 0755) != 0 ||
	    chown(s->work, pw->pw_uid, pw->pw_gid) != 0) {
		fprintf(stderr, "vz_test_sshd: preparing %s: %s\n", s->dir, strerror(errno));
		goto out;
	}
	if (geteuid() == 0 && mkdir("/run/sshd", 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "vz_test_sshd: sshd needs /run/sshd: %s\n", strerror(errno));
		goto out;
	}
	if (vz_test_sshd_keygen(s->key) != 0 || vz_test_sshd_keygen(s->host_key) != 0) {
		fprintf(stderr, "vz_test_sshd: ssh-keygen failed in %s\n", s->dir);
		goto out;
	}
	char user_pub[4096];
	snprintf(user_pub, sizeof(user_pub), "%s.pub", s->key);
	int r = vz_read_file(user_pub, 65536, &b, &e);
	if (r != 0 || write_str(s->auth_keys, vz_buf_cstr(&b), 0644) != 0) {
		fprintf(stderr, "vz_test_sshd: authorized_keys: %s\n", vz_err_msg(&e));
		goto out;
	}
	vz_buf_reset(&b);
	if (vz_read_file(s->host_pub, 65536, &b, &e) != 0) {
		fprintf(stderr, "vz_test_sshd: %s\n", vz_err_msg(&e));
		goto out;
	}
	/* "ssh-ed25519 AAAA... comment\n" -> the first two fields */
	char *sp1 = strchr(b.ptr, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp2)
		goto out;
	*sp2 = '\0';
	s->key_line = vz_xstrdup(b.ptr);

	for (int t = 0; t < START_TRIES; t++) {
		if ((s->port = free_port()) < 0)
			break;
		int lr = launch(s);
		if (lr == 0) {
			rc = 0;
			break;
		}
		if (lr < 0)
			break;
	}
	if (rc != 0) {
		fprintf(stderr, "vz_test_sshd: could not start sshd\n");
		print_log(s);
		goto out;
	}
	if (vz_test_sshd_write_known_hosts(s, s->key_line, s->known_hosts) != 0) {
		rc = -1;
		goto out;
	}
	*out = s;
	s = NULL;
out:
	vz_test_sshd_stop(s);
	vz_buf_free(&b);
	return rc;
}

void vz_test_sshd_stop(vz_test_sshd *s)
{
	vz_err e = { 0 };
	if (!s)
		return;
	kill_sshd(s);
	if (*s->sudoers && unlink(s->sudoers) != 0 && errno != ENOENT)
		fprintf(stderr, "vz_test_sshd: cannot remove %s: %s; remove it by hand\n", s->sudoers,
			strerror(errno));
	if (s->dir && vz_rm_rf(s->dir, &e) != 0)
		fprintf(stderr, "vz_test_sshd: %s\n", vz_err_msg(&e));
	free(s->dir);
	free(s->work);
	free(s->key);
	free(s->host_key);
	free(s->host_pub);
	free(s->known_hosts);
	free(s->config);
	free(s->log);
	free(s->auth_keys);
	free(s->key_line);
	free(s);
}

int vz_test_sshd_port(const vz_test_sshd *s) { return s->port; }
const char *vz_test_sshd_user(const vz_test_sshd *s) { return s->user; }
const char *vz_test_sshd_key(const vz_test_sshd *s) { return s->key; }
const char *vz_test_sshd_known_hosts(const vz_test_sshd *s) { return s->known_hosts; }
const char *vz_test_sshd_dir(const vz_test_sshd *s) { return s->dir; }
const char *vz_test_sshd_workdir(const vz_test_sshd *s) { return s->work; }
const char *vz_test_sshd_host_pub(const vz_test_sshd *s) { return s->host_pub; }
const char *vz_test_sshd_host_key_line(const vz_test_sshd *s) { return s->key_line; }
const char *vz_test_sshd_log(const vz_test_sshd *s) { return s->log; }

void vz_test_sshd_spec(const vz_test_sshd *s, vz_node_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->kind = VZ_NODE_SSH;
	spec->name = "test";
	spec->host = "127.0.0.1";
	spec->port = s->port;
	spec->user = s->user;
	spec->key_file = s->key;
	spec->known_hosts = s->known_hosts;
	spec->connect_timeout_ms = 5000;
}

void vz_test_sshd_fingerprint(const char *pub, char *out, size_t n)
{
	const char *argv[] = { "ssh-keygen", "-lf", pub, NULL };
	vz_buf b = VZ_BUF_INIT(4096);
	const char *p = vz_test_sshd_run(argv, &b) == 0 ? strstr(vz_buf_cstr(&b), "SHA256:") : NULL;
	size_t l = p ? strcspn(p, " \n") : 0;
	if (!p || l <= 7 || l >= n) {
		fprintf(stderr, "vz_test_sshd_fingerprint: ssh-keygen -lf %s failed\n", pub);
		abort();
	}
	memcpy(out, p, l);
	out[l] = '\0';
	vz_buf_free(&b);
}
