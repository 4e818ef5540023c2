/* vz_test_githttp: HTTPS git server for tests; see vz_test_githttp.h. Each request's body is
 * collected, then git http-backend runs as a CGI with it on stdin (posix_spawn: the test process
 * has threads), and its output, headers included, becomes the response. */
#include "vz_test_githttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vz_buf.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"

#define BACKEND "/usr/lib/git-core/git-http-backend"
#define BODY_MAX (64u * 1024 * 1024)
#define CGI_OUT_MAX (256u * 1024 * 1024)
#define CGI_TIMEOUT_MS 60000

struct vz_test_githttp {
	struct MHD_Daemon *d;
	char *dir, *root, *user, *password;
	char *ca, *cert, *key;
	char *certpem, *keypem; /* contents, as MHD wants them */
	int port;
	int requests, served;  /* atomics */
};

typedef struct req {
	vz_buf body;
} req;

static int openssl(const char *const argv[])
{
	vz_buf out = VZ_BUF_INIT(1 << 20);
	int rc = vz_test_sshd_run(argv, &out);
	vz_buf_free(&out);
	if (rc != 0)
		fprintf(stderr, "vz_test_githttp: %s %s failed (%d)\n", argv[0], argv[1], rc);
	return rc == 0 ? 0 : -1;
}

/* A self-signed CA (P-256) at cert with its key at key. */
static int make_ca(const char *cert, const char *key, const char *cn)
{
	char subj[128];
	snprintf(subj, sizeof(subj), "/CN=%s", cn);
	const char *argv[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
			       "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", subj, NULL };
	return openssl(argv);
}

int vz_test_githttp_other_ca(const char *path)
{
	char key[4200];
	snprintf(key, sizeof(key), "%s.key", path);
	int rc = make_ca(path, key, "vinz other test CA");
	unlink(key);
	return rc;
}

static char *read_all(const char *path)
{
	vz_buf b = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	if (vz_read_file(path, b.max, &b, &e) != 0) {
		fprintf(stderr, "vz_test_githttp: %s\n", vz_err_msg(&e));
		vz_buf_free(&b);
		return NULL;
	}
	char *s = vz_xstrdup(vz_buf_cstr(&b));
	vz_buf_free(&b);
	return s;
}

static int make_certs(vz_test_githttp *h)
{
	char *cakey = vz_path_join(h->dir, "ca.key"), *csr = vz_path_join(h->dir, "server.csr");
	char *ext = vz_path_join(h->dir, "server.ext");
	int rc = -1;
	vz_test_write(h->dir, "server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
					     "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n");
	const char *req_argv[] = { "openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
				   "-nodes", "-keyout", h->key, "-out", csr, "-subj", "/CN=127.0.0.1", NULL };
	const char *sign_argv[] = { "openssl", "x509", "-req", "-in", csr, "-CA", h->ca, "-CAkey", cakey,
				    "-CAcreateserial", "-out", h->cert, "-days", "2", "-extfile", ext, NULL };
	if (make_ca(h->ca, cakey, "vinz test CA") != 0 || openssl(req_argv) != 0 || openssl(sign_argv) != 0)
		goto out;
	if (!(h->certpem = read_all(h->cert)) || !(h->keypem = read_all(h->key)))
		goto out;
	rc = 0;
out:
	free(cakey);
	free(csr);
	free(ext);
	return rc;
}

static void add_env(char **env, int *n, const char *k, const char *v)
{
	size_t len = strlen(k) + strlen(v ? v : "") + 2;
	env[*n] = vz_xcalloc(1, len);
	snprintf(env[*n], len, "%s=%s", k, v ? v : "");
	(*n)++;
}

/* Runs git http-backend with the body on stdin; out gets its whole output. 0 or -1. */
static int run_cgi(vz_test_githttp *h, struct MHD_Connection *c, const char *url, const char *method, req *r,
		   vz_buf *out)
{
	char *env[24] = { 0 };
	int n = 0, rc = -1, in = -1, pipefd[2] = { -1, -1 };
	pid_t pid = -1;
	char len[32], tmpl[4200];
	const char *service = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "service");
	char query[128] = "";
	if (service)
		snprintf(query, sizeof(query), "service=%s", service);
	snprintf(len, sizeof(len), "%zu", r->body.len);
	add_env(env, &n, "GIT_PROJECT_ROOT", h->root);
	add_env(env, &n, "GIT_HTTP_EXPORT_ALL", "1");
	add_env(env, &n, "PATH_INFO", url);
	add_env(env, &n, "REQUEST_METHOD", method);
	add_env(env, &n, "QUERY_STRING", query);
	add_env(env, &n, "CONTENT_TYPE", MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"));
	add_env(env, &n, "CONTENT_LENGTH", len);
	add_env(env, &n, "REMOTE_USER", h->user);
	add_env(env, &n, "REMOTE_ADDR", "127.0.0.1");
	add_env(env, &n, "GIT_PROTOCOL", MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Git-Protocol"));
	add_env(env, &n, "HTTP_CONTENT_ENCODING", MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding"));
	add_env(env, &n, "PATH", "/usr/bin:/bin");
	add_env(env, &n, "HOME", h->dir);
	add_env(env, &n, "GIT_CONFIG_NOSYSTEM", "1");

	snprintf(tmpl, sizeof(tmpl), "%s/body-XXXXXX", h->dir);
	if ((in = mkstemp(tmpl)) < 0)
		goto out;
	fcntl(in, F_SETFD, FD_CLOEXEC); /* other requests' CGIs must not hold it */
	unlink(tmpl);
	if (r->body.len && write(in, r->body.ptr, r->body.len) != (ssize_t)r->body.len)
		goto out;
	if (lseek(in, 0, SEEK_SET) != 0 || pipe(pipefd) != 0)
		goto out;
	/* a brief window before these run; another CGI holding the pipe only delays EOF until it
	 * exits */
	fcntl(pipefd[0], F_SETFD, FD_CLOEXEC);
	fcntl(pipefd[1], F_SETFD, FD_CLOEXEC);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	char *argv[] = { BACKEND, NULL };
	int sr = posix_spawn(&pid, BACKEND, &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	pipefd[1] = -1;
	if (sr != 0) {
		pid = -1;
		fprintf(stderr, "vz_test_githttp: cannot run %s: %s\n", BACKEND, strerror(sr));
		goto out;
	}
	uint64_t deadline = vz_mono_ms() + CGI_TIMEOUT_MS;
	char buf[65536];
	for (;;) {
		uint64_t now = vz_mono_ms();
		if (now >= deadline) {
			fprintf(stderr, "vz_test_githttp: %s took longer than %d ms; killed\n", BACKEND, CGI_TIMEOUT_MS);
			kill(pid, SIGKILL);
			goto out;
		}
		struct pollfd p = { pipefd[0], POLLIN, 0 };
		if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)
			goto out;
		ssize_t got = read(pipefd[0], buf, sizeof(buf));
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			break;
		vz_buf_add(out, buf, (size_t)got);
		if (out->failed) {
			kill(pid, SIGKILL);
			goto out;
		}
	}
	rc = 0;
out:
	if (pid > 0) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
			fprintf(stderr, "vz_test_githttp: %s %s exited with status %d\n", method, url, st);
	}
	if (in >= 0)
		close(in);
	for (int i = 0; i < 2; i++)
		if (pipefd[i] >= 0)
			close(pipefd[i]);
	for (int i = 0; i < n; i++)
		free(env[i]);
	return rc;
}

/* CGI output (headers, blank line, body) as an MHD response. */
static enum MHD_Result respond_cgi(struct MHD_Connection *c, vz_buf *out)
{
	const char *p = vz_buf_cstr(out);
	const char *end = p + out->len;
	unsigned status = MHD_HTTP_OK;
	struct MHD_Response *resp;
	char hdrs[16][2][256];
	int nh = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		size_t l = (size_t)(nl - p);
		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (l == 0) {
			p = nl + 1;
			break;
		}
		const char *colon = memchr(p, ':', l);
		if (colon && nh < 16) {
			size_t kl = (size_t)(colon - p), vs = kl + 1;
			while (vs < l && p[vs] == ' ')
				vs++;
			char v[256];
			snprintf(v, sizeof(v), "%.*s", (int)(l - vs), p + vs);
			if (kl == 6 && strncasecmp(p, "Status", 6) == 0) {
				status = (unsigned)strtoul(v, NULL, 10);
			} else {
				snprintf(hdrs[nh][0], sizeof(hdrs[nh][0]), "%.*s", (int)kl, p);
				snprintf(hdrs[nh][1], sizeof(hdrs[nh][1]), "%s", v);
				nh++;
			}
		}
		p = nl + 1;
	}
	resp = MHD_create_response_from_buffer((size_t)(end - p), (void *)p, MHD_RESPMEM_MUST_COPY);
	for (int i = 0; i < nh; i++)
		MHD_add_response_header(resp, hdrs[i][0], hdrs[i][1]);
	enum MHD_Result r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	vz_test_githttp *h = cls;
	req *r = *con_cls;
	(void)version;
	if (!r) {
		r = vz_xcalloc(1, sizeof(*r));
		vz_buf_init(&r->body, BODY_MAX);
		*con_cls = r;
		__atomic_add_fetch(&h->requests, 1, __ATOMIC_SEQ_CST);
		return MHD_YES;
	}
	if (*upload_size) {
		vz_buf_add(&r->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	char *pass = NULL;
	char *user = MHD_basic_auth_get_username_password(c, &pass);
	int ok = user && pass && strcmp(user, h->user) == 0 && strcmp(pass, h->password) == 0;
	free(user);
	free(pass);
	if (!ok) {
		static const char denied[] = "authentication required\n";
		struct MHD_Response *resp = MHD_create_response_from_buffer(sizeof(denied) - 1, (void *)denied,
									     MHD_RESPMEM_PERSISTENT);
		/* libgit2 1.5 (with mbedTLS) fails to parse the next response ("http parser error:
		 * invalid constant string") when it retries with credentials on a connection whose 401
		 * carried a body: close it, as many servers do, so the retry uses a new one */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
		enum MHD_Result res = MHD_queue_basic_auth_fail_response(c, "vinz test git", resp);
		MHD_destroy_response(resp);
		return res;
	}
	if (r->body.failed)
		return MHD_NO;
	vz_buf out = VZ_BUF_INIT(CGI_OUT_MAX);
	enum MHD_Result res = MHD_NO;
	if (run_cgi(h, c, url, method, r, &out) == 0) {
		__atomic_add_fetch(&h->served, 1, __ATOMIC_SEQ_CST);
		res = respond_cgi(c, &out);
	}
	vz_buf_free(&out);
	return res;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	(void)cls;
	(void)c;
	(void)t;
	req *r = *con_cls;
	if (r) {
		vz_buf_free(&r->body);
		free(r);
	}
	*con_cls = NULL;
}

int vz_test_githttp_start(vz_test_githttp **out, const char *root, const char *user, const char *password)
{
	vz_test_githttp *h = vz_xcalloc(1, sizeof(*h));
	*out = NULL;
	if (access(BACKEND, X_OK) != 0) {
		fprintf(stderr, "vz_test_githttp: %s is missing (install git)\n", BACKEND);
		goto fail;
	}
	h->dir = vz_test_tmpdir("vz-githttp");
	h->root = vz_xstrdup(root);
	h->user = vz_xstrdup(user);
	h->password = vz_xstrdup(password);
	h->ca = vz_path_join(h->dir, "ca.pem");
	h->cert = vz_path_join(h->dir, "server.pem");
	h->key = vz_path_join(h->dir, "server.key");
	if (make_certs(h) != 0)
		goto fail;
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = 0;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_TLS |
					MHD_USE_ERROR_LOG,
				0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
				MHD_OPTION_HTTPS_MEM_KEY, h->keypem, MHD_OPTION_HTTPS_MEM_CERT, h->certpem,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned int)60, MHD_OPTION_END);
	if (!h->d) {
		fprintf(stderr, "vz_test_githttp: libmicrohttpd would not start with TLS on 127.0.0.1\n");
		goto fail;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port) {
		fprintf(stderr, "vz_test_githttp: cannot learn the server's port\n");
		goto fail;
	}
	h->port = info->port;
	*out = h;
	return 0;
fail:
	vz_test_githttp_stop(h);
	return -1;
}

void vz_test_githttp_stop(vz_test_githttp *h)
{
	if (!h)
		return;
	if (h->d)
		MHD_stop_daemon(h->d);
	if (h->dir)
		vz_test_rm(h->dir);
	free(h->dir);
	free(h->root);
	free(h->user);
	free(h->password);
	free(h->ca);
	free(h->cert);
	free(h->key);
	free(h->certpem);
	free(h->keypem);
	free(h);
}

int vz_test_githttp_port(const vz_test_githttp *h) { return h->port; }
const char *vz_test_githttp_ca(const vz_test_githttp *h) { return h->ca; }
const char *vz_test_githttp_dir(const vz_test_githttp *h) { return h->dir; }
int vz_test_githttp_requests(const vz_test_githttp *h) { return __atomic_load_n(&h->requests, __ATOMIC_SEQ_CST); }
int vz_test_githttp_served(const vz_test_githttp *h) { return __atomic_load_n(&h->served, __ATOMIC_SEQ_CST); }
