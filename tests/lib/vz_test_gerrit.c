/* vz_test_gerrit: the Gerrit double (see the header). The SSH side is a forced command in
 * authorized_keys, a small sh script dispatching on $SSH_ORIGINAL_COMMAND; the REST side is a
 * libmicrohttpd server routing on the raw (still encoded) request URI. */
#include "vz_test_gerrit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "vz_buf.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"

#define MAX_REQS 4096
#define BODY_MAX (1024 * 1024)

struct vz_test_gerrit {
	vz_test_sshd *sshd;
	struct MHD_Daemon *d;
	int http_port;
	char *dir, *git, *events, *streams, *reviews, *script, *baseurl, *user, *password;
	pthread_mutex_t mu;
	char *changes;
	long submit_fail_number;
	char *submit_fail_text;
	int fail_n, fail_status;
	int delay_n, delay_ms;
	int cut_upto; /* streams lines already cut */
	int connections; /* TCP connections the REST server accepted */
	vz_test_gerrit_req *reqs[MAX_REQS];
	size_t nreqs;
};

/* The forced command. Streams send what is appended to the events file after they start
 * (Gerrit sends nothing from before); each records its pid so a test can cut it. */
static const char SCRIPT[] =
	"#!/bin/sh\n"
	"# vinz test Gerrit: forced command of the double's sshd\n"
	"D='%s'\n"
	"set -f\n"
	"cmd=$SSH_ORIGINAL_COMMAND\n"
	"case \"$cmd\" in\n"
	"'gerrit stream-events')\n"
	"  sz=$(wc -c < \"$D/events\")\n"
	"  echo $$ >> \"$D/streams\"\n"
	"  exec tail -c +$((sz + 1)) -f \"$D/events\" ;;\n"
	"'gerrit review '*)\n"
	"  # split like Gerrit's command line (quotes): our callers quote every argument\n"
	"  eval \"set -- ${cmd#gerrit review }\" || { echo 'fatal: bad quoting' >&2; exit 1; }\n"
	"  project= target=\n"
	"  for a in \"$@\"; do\n"
	"    case \"$a\" in [0-9]*,[0-9]*) target=$a ;; esac\n"
	"  done\n"
	"  prev=\n"
	"  for a in \"$@\"; do\n"
	"    case \"$prev\" in --project|-p) project=$a ;; esac\n"
	"    case \"$prev:$a\" in\n"
	"    --message:*|-m:*|--label:*|-l:*|--tag:*|-t:*|--notify:*|--project:*|-p:*) ;;\n"
	"    *:--message|*:-m|*:--label|*:-l|*:--tag|*:-t|*:--notify|*:--project|*:-p) ;;\n"
	"    *:[0-9]*,[0-9]*) ;;\n"
	"    *) echo \"fatal: \\\"$a\\\" is not a valid option\" >&2; exit 1 ;;\n"
	"    esac\n"
	"    prev=$a\n"
	"  done\n"
	"  [ -n \"$target\" ] || { echo 'fatal: no change,patchset given' >&2; exit 1; }\n"
	"  [ -n \"$project\" ] || { echo 'fatal: --project is required here' >&2; exit 1; }\n"
	"  mkdir -p \"$D/reviews\"\n"
	"  n=$(ls \"$D/reviews\" | wc -l)\n"
	"  for a in \"$@\"; do printf '%%s\\0' \"$a\"; done > \"$D/reviews/.tmp\"\n"
	"  mv \"$D/reviews/.tmp\" \"$D/reviews/$n\" ;;\n"
	"'git-upload-pack '*)\n"
	"  eval \"set -- ${cmd#git-upload-pack }\"\n"
	"  p=${1#/}; p=${p%%.git}\n"
	"  case \"$p\" in *..*) echo 'fatal: bad path' >&2; exit 1 ;; esac\n"
	"  exec git-upload-pack \"$D/git/$p.git\" ;;\n"
	"*)\n"
	"  echo \"fatal: gerrit: $cmd: not found\" >&2; exit 127 ;;\n"
	"esac\n";

static int write_file(const char *path, const char *s, mode_t mode)
{
	vz_err e = { 0 };
	if (vz_write_file_atomic(path, s, strlen(s), mode, &e) != 0) {
		fprintf(stderr, "vz_test_gerrit: %s\n", vz_err_msg(&e));
		return -1;
	}
	return chmod(path, mode);
}

/* ---------------------------------------------------------------- REST */

typedef struct req {
	int started; /* the first call (headers only) has been seen */
	char *uri;
	vz_buf body;
} req;

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)cls;
	(void)c;
	req *r = vz_xcalloc(1, sizeof(*r));
	r->uri = vz_xstrdup(uri);
	vz_buf_init(&r->body, BODY_MAX);
	return r;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	vz_test_gerrit *t = cls;
	(void)c;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		pthread_mutex_lock(&t->mu);
		t->connections++;
		pthread_mutex_unlock(&t->mu);
	}
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	(void)cls;
	(void)c;
	(void)t;
	req *r = *con_cls;
	if (r) {
		free(r->uri);
		vz_buf_free(&r->body);
		free(r);
	}
	*con_cls = NULL;
}

static enum MHD_Result answer(struct MHD_Connection *c, int status, const char *type, const char *body)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result res = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return res;
}

/* Gerrit's JSON answers: the XSSI guard line, then the JSON (rest-api.txt). */
static enum MHD_Result answer_json(struct MHD_Connection *c, int status, const char *json)
{
	vz_buf b = VZ_BUF_INIT(16 * 1024 * 1024);
	vz_buf_printf(&b, ")]}'\n%s\n", json);
	enum MHD_Result res = answer(c, status, "application/json; charset=utf-8", vz_buf_cstr(&b));
	vz_buf_free(&b);
	return res;
}

static void record(vz_test_gerrit *t, const char *method, req *r, const char *user, int status)
{
	vz_test_gerrit_req *q = vz_xcalloc(1, sizeof(*q));
	vz_strlcpy(q->method, method, sizeof(q->method));
	q->uri = vz_xstrdup(r->uri);
	q->body = vz_xstrdup(vz_buf_cstr(&r->body));
	q->user = user ? vz_xstrdup(user) : NULL;
	q->status = status;
	pthread_mutex_lock(&t->mu);
	int kept = t->nreqs < MAX_REQS;
	if (kept)
		t->reqs[t->nreqs++] = q;
	pthread_mutex_unlock(&t->mu);
	if (!kept) {
		fprintf(stderr, "vz_test_gerrit: more than %d requests; not recording %s %s\n", MAX_REQS, method,
			q->uri);
		free(q->uri);
		free(q->body);
		free(q->user);
		free(q);
	}
}

/* Splits the path of uri (before '?') at '/' into at most max segments; returns how many. */
static size_t segments(char *path, char **seg, size_t max)
{
	size_t n = 0;
	char *q = strchr(path, '?');
	if (q)
		*q = '\0';
	for (char *p = path; p && n < max;) {
		seg[n++] = p;
		char *s = strchr(p, '/');
		if (s)
			*s++ = '\0';
		p = s;
	}
	return n;
}

/* "org%2Fproject~12": the number, or -1 when the id is not PROJECT~NUMBER. */
static long change_number(const char *id)
{
	const char *tilde = strrchr(id, '~');
	int64_t n = 0;
	if (!tilde || tilde == id || vz_parse_i64(tilde + 1, 1, INT64_C(1) << 40, &n) != 0)
		return -1;
	return (long)n;
}

static enum MHD_Result route(vz_test_gerrit *t, struct MHD_Connection *c, const char *method, req *r, int *status)
{
	char path[8192], *seg[16];
	vz_strlcpy(path, r->uri, sizeof(path));
	size_t n = segments(path, seg, 16);
	/* "", "a", "changes", ... */
	if (n == 4 && !strcmp(seg[2], "changes") && !seg[3][0] && !strcmp(method, "GET")) {
		pthread_mutex_lock(&t->mu);
		char *changes = vz_xstrdup(t->changes ? t->changes : "[]");
		pthread_mutex_unlock(&t->mu);
		const char *q = strchr(r->uri, '?');
		if (!q || !strstr(q, "q=")) {
			free(changes);
			*status = 400;
			return answer(c, 400, "text/plain; charset=UTF-8", "missing query field\n");
		}
		*status = 200;
		enum MHD_Result res = answer_json(c, 200, changes);
		free(changes);
		return res;
	}
	if (n == 7 && !strcmp(seg[2], "changes") && !strcmp(seg[4], "revisions") && !strcmp(method, "POST") &&
	    change_number(seg[3]) > 0) {
		long number = change_number(seg[3]);
		if (!strcmp(seg[6], "review")) {
			json_error_t je;
			json_t *in = json_loads(vz_buf_cstr(&r->body), 0, &je), *labels = json_object_get(in, "labels");
			if (!json_is_object(in) || (labels && !json_is_object(labels))) {
				json_decref(in);
				*status = 400;
				return answer(c, 400, "text/plain; charset=UTF-8", "Invalid JSON\n");
			}
			/* Set Review answers a ReviewResult with the labels applied */
			json_t *outj = json_pack("{so}", "labels", labels ? json_incref(labels) : json_object());
			char *text = json_dumps(outj, JSON_COMPACT);
			json_decref(outj);
			json_decref(in);
			*status = 200;
			enum MHD_Result res = answer_json(c, 200, text);
			free(text);
			return res;
		}
		if (!strcmp(seg[6], "submit")) {
			pthread_mutex_lock(&t->mu);
			char *fail = t->submit_fail_number == number && t->submit_fail_text
					     ? vz_xstrdup(t->submit_fail_text) : NULL;
			pthread_mutex_unlock(&t->mu);
			if (fail) {
				*status = 409;
				enum MHD_Result res = answer(c, 409, "text/plain; charset=UTF-8", fail);
				free(fail);
				return res;
			}
			char body[256];
			snprintf(body, sizeof(body), "{\"_number\":%ld,\"status\":\"MERGED\"}", number);
			*status = 200;
			return answer_json(c, 200, body);
		}
	}
	*status = 404;
	return answer(c, 404, "text/plain; charset=UTF-8", "Not found\n");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	vz_test_gerrit *t = cls;
	req *r = *con_cls;
	(void)url;
	(void)version;
	if (!r)
		return MHD_NO;
	if (!r->started) {
		r->started = 1;
		return MHD_YES;
	}
	if (*upload_size) {
		vz_buf_add(&r->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->body.failed)
		return MHD_NO;
	int status = 0;
	char *pass = NULL, *user = NULL;
	enum MHD_Result res;
	if (!vz_startswith(r->uri, "/a/")) {
		/* anonymous access: this Gerrit has none */
		status = 404;
		res = answer(c, 404, "text/plain; charset=UTF-8", "Not found\n");
		goto out;
	}
	user = MHD_basic_auth_get_username_password(c, &pass);
	if (!user || !pass || strcmp(user, t->user) != 0 || strcmp(pass, t->password) != 0) {
		static const char denied[] = "Unauthorized";
		struct MHD_Response *resp = MHD_create_response_from_buffer(sizeof(denied) - 1, (void *)denied,
									     MHD_RESPMEM_PERSISTENT);
		res = MHD_queue_basic_auth_fail_response(c, "Gerrit Code Review", resp);
		MHD_destroy_response(resp);
		status = 401;
		goto out;
	}
	pthread_mutex_lock(&t->mu);
	if (t->fail_n > 0) {
		t->fail_n--;
		status = t->fail_status;
	}
	int delay = 0;
	if (!status && t->delay_n > 0) {
		t->delay_n--;
		delay = t->delay_ms;
	}
	pthread_mutex_unlock(&t->mu);
	if (delay)
		usleep((useconds_t)delay * 1000);
	if (status) {
		res = answer(c, status, "text/plain; charset=UTF-8", status == 429 ? "Too Many Requests\n"
										  : "Service Unavailable\n");
		goto out;
	}
	res = route(t, c, method, r, &status);
out:
	record(t, method, r, user, status);
	free(user);
	free(pass);
	return res;
}

/* ---------------------------------------------------------------- lifecycle */

int vz_test_gerrit_start(vz_test_gerrit **out, const char *password)
{
	vz_test_gerrit *t = vz_xcalloc(1, sizeof(*t));
	vz_buf b = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	*out = NULL;
	pthread_mutex_init(&t->mu, NULL);
	t->password = vz_xstrdup(password);
	if (vz_test_sshd_start(&t->sshd) != 0)
		goto fail;
	t->user = vz_xstrdup(vz_test_sshd_user(t->sshd));
	struct passwd *pw = getpwnam(vz_test_sshd_user(t->sshd));
	t->dir = vz_path_join(vz_test_sshd_workdir(t->sshd), "gerrit");
	t->git = vz_path_join(t->dir, "git");
	t->events = vz_path_join(t->dir, "events");
	t->streams = vz_path_join(t->dir, "streams");
	t->reviews = vz_path_join(t->dir, "reviews");
	t->script = vz_path_join(vz_test_sshd_dir(t->sshd), "gerrit-command.sh");
	if (!pw || mkdir(t->dir, 0755) != 0 || mkdir(t->git, 0755) != 0 ||
	    write_file(t->events, "", 0644) != 0 || chown(t->dir, pw->pw_uid, pw->pw_gid) != 0) {
		fprintf(stderr, "vz_test_gerrit: preparing %s: %s\n", t->dir, strerror(errno));
		goto fail;
	}
	vz_buf_printf(&b, SCRIPT, t->dir);
	if (write_file(t->script, vz_buf_cstr(&b), 0755) != 0)
		goto fail;
	/* every login runs the script, whatever the client asked for */
	char pub[4096];
	snprintf(pub, sizeof(pub), "%s.pub", vz_test_sshd_key(t->sshd));
	vz_buf_reset(&b);
	vz_buf_printf(&b, "command=\"%s\",no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-pty ",
		      t->script);
	if (vz_read_file(pub, 65536, &b, &e) != 0) {
		fprintf(stderr, "vz_test_gerrit: %s\n", vz_err_msg(&e));
		goto fail;
	}
	char *ak = vz_path_join(vz_test_sshd_dir(t->sshd), "authorized_keys");
	int w = write_file(ak, vz_buf_cstr(&b), 0644);
	free(ak);
	if (w != 0)
		goto fail;
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, t,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_URI_LOG_CALLBACK, on_uri, t,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, t, MHD_OPTION_NOTIFY_CONNECTION,
				on_connection, t, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned int)30, MHD_OPTION_END);
	const union MHD_DaemonInfo *info = t->d ? MHD_get_daemon_info(t->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	if (!info || !info->port) {
		fprintf(stderr, "vz_test_gerrit: libmicrohttpd would not start on 127.0.0.1\n");
		goto fail;
	}
	t->http_port = info->port;
	vz_buf_reset(&b);
	vz_buf_printf(&b, "http://127.0.0.1:%d", t->http_port);
	t->baseurl = vz_buf_detach(&b);
	vz_buf_free(&b);
	*out = t;
	return 0;
fail:
	vz_buf_free(&b);
	vz_test_gerrit_stop(t);
	return -1;
}

void vz_test_gerrit_stop(vz_test_gerrit *t)
{
	if (!t)
		return;
	if (t->d)
		MHD_stop_daemon(t->d);
	if (t->sshd && t->streams)
		vz_test_gerrit_cut_streams(t);
	vz_test_sshd_stop(t->sshd);
	for (size_t i = 0; i < t->nreqs; i++) {
		free(t->reqs[i]->uri);
		free(t->reqs[i]->body);
		free(t->reqs[i]->user);
		free(t->reqs[i]);
	}
	char *strs[] = { t->dir, t->git, t->events, t->streams, t->reviews, t->script, t->baseurl, t->user,
			 t->password, t->changes, t->submit_fail_text };
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(strs[i]);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

void vz_test_gerrit_conf(const vz_test_gerrit *t, vz_gerrit_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->server = "127.0.0.1";
	c->port = vz_test_sshd_port(t->sshd);
	c->user = vz_test_sshd_user(t->sshd);
	c->sshkey = vz_test_sshd_key(t->sshd);
	c->known_hosts = vz_test_sshd_known_hosts(t->sshd);
	c->baseurl = t->baseurl;
	c->password = t->password;
	c->canonical_hostname = "review.example.org";
	c->keepalive = 5;
	c->http_timeout_ms = 10000;
	c->rest_attempts = 4;
	c->backoff_min_ms = 50;
	c->backoff_max_ms = 400;
	c->catchup_slack_s = 2;
}

const char *vz_test_gerrit_dir(const vz_test_gerrit *t)
{
	return t->dir;
}

const char *vz_test_gerrit_git_dir(const vz_test_gerrit *t)
{
	return t->git;
}

int vz_test_gerrit_http_port(const vz_test_gerrit *t)
{
	return t->http_port;
}

const char *vz_test_gerrit_known_hosts(const vz_test_gerrit *t)
{
	return vz_test_sshd_known_hosts(t->sshd);
}

int vz_test_gerrit_wrong_known_hosts(const vz_test_gerrit *t, char *out, size_t n)
{
	char *key = vz_path_join(t->dir, "../other_host_key");
	char pub[4096];
	vz_buf b = VZ_BUF_INIT(65536);
	vz_err e = { 0 };
	int rc = -1;
	snprintf(pub, sizeof(pub), "%s.pub", key);
	snprintf(out, n, "%s/../wrong_known_hosts", t->dir);
	unlink(key);
	unlink(pub);
	if (vz_test_sshd_keygen(key) != 0 || vz_read_file(pub, 65536, &b, &e) != 0)
		goto out;
	char *sp1 = strchr(b.ptr, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp2)
		*sp2 = '\0';
	rc = vz_test_sshd_write_known_hosts(t->sshd, b.ptr, out);
out:
	vz_buf_free(&b);
	free(key);
	return rc;
}

int vz_test_gerrit_emit(vz_test_gerrit *t, const char *json_line)
{
	FILE *f = fopen(t->events, "a");
	if (!f)
		return -1;
	int rc = fprintf(f, "%s\n", json_line) < 0 ? -1 : 0;
	return fclose(f) != 0 ? -1 : rc;
}

int vz_test_gerrit_streams(const vz_test_gerrit *t)
{
	vz_buf b = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	int n = 0;
	if (vz_read_file(t->streams, 1 << 20, &b, &e) == 0)
		for (size_t i = 0; i < b.len; i++)
			n += b.ptr[i] == '\n';
	vz_buf_free(&b);
	return n;
}

typedef struct wait_ctx {
	const vz_test_gerrit *t;
	int n;
} wait_ctx;

static int enough_streams(void *p)
{
	wait_ctx *w = p;
	return vz_test_gerrit_streams(w->t) >= w->n;
}

int vz_test_gerrit_wait_streams(const vz_test_gerrit *t, int n, int timeout_ms)
{
	wait_ctx w = { t, n };
	return vz_test_wait(enough_streams, &w, timeout_ms) ? 0 : -1;
}

/* Is pid still a stream's tail (and not a process that reuses a dead stream's pid)? */
static int is_tail(int64_t pid)
{
	char p[64], comm[64] = "";
	snprintf(p, sizeof(p), "/proc/%lld/comm", (long long)pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return 0;
	int ok = fgets(comm, sizeof(comm), f) && strcmp(comm, "tail\n") == 0;
	fclose(f);
	return ok;
}

int vz_test_gerrit_cut_streams(vz_test_gerrit *t)
{
	vz_buf b = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	int n = 0, line = 0;
	if (vz_read_file(t->streams, 1 << 20, &b, &e) == 0) {
		for (char *p = b.ptr, *end; p && *p; p = end ? end + 1 : NULL, line++) {
			end = strchr(p, '\n');
			if (end)
				*end = '\0';
			int64_t pid = 0;
			/* the pids are the streams' tails (the script execs them); each is cut once */
			if (line >= t->cut_upto && vz_parse_i64(p, 2, INT32_MAX, &pid) == 0 && is_tail(pid) &&
			    kill((pid_t)pid, SIGTERM) == 0)
				n++;
		}
		t->cut_upto = line;
	}
	vz_buf_free(&b);
	return n;
}

int vz_test_gerrit_ssh_reviews(const vz_test_gerrit *t)
{
	int n = 0;
	for (int i = 0; i < 100000; i++) {
		char p[4096];
		snprintf(p, sizeof(p), "%s/%d", t->reviews, i);
		if (access(p, F_OK) != 0)
			break;
		n++;
	}
	return n;
}

char *vz_test_gerrit_ssh_review(const vz_test_gerrit *t, int i)
{
	char p[4096];
	vz_buf b = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	snprintf(p, sizeof(p), "%s/%d", t->reviews, i);
	if (vz_read_file(p, 1 << 20, &b, &e) != 0) {
		vz_buf_free(&b);
		return NULL;
	}
	for (size_t k = 0; k < b.len; k++)
		if (b.ptr[k] == '\0')
			b.ptr[k] = '\n';
	return vz_buf_detach(&b);
}

void vz_test_gerrit_set_changes(vz_test_gerrit *t, const char *json)
{
	pthread_mutex_lock(&t->mu);
	free(t->changes);
	t->changes = json ? vz_xstrdup(json) : NULL;
	pthread_mutex_unlock(&t->mu);
}

void vz_test_gerrit_fail_submit(vz_test_gerrit *t, long number, const char *text)
{
	pthread_mutex_lock(&t->mu);
	free(t->submit_fail_text);
	t->submit_fail_text = text ? vz_xstrdup(text) : NULL;
	t->submit_fail_number = number;
	pthread_mutex_unlock(&t->mu);
}

void vz_test_gerrit_fail_next(vz_test_gerrit *t, int n, int status)
{
	pthread_mutex_lock(&t->mu);
	t->fail_n = n;
	t->fail_status = status;
	pthread_mutex_unlock(&t->mu);
}

int vz_test_gerrit_http_connections(vz_test_gerrit *t)
{
	pthread_mutex_lock(&t->mu);
	int n = t->connections;
	pthread_mutex_unlock(&t->mu);
	return n;
}

void vz_test_gerrit_delay_next(vz_test_gerrit *t, int n, int ms)
{
	pthread_mutex_lock(&t->mu);
	t->delay_n = n;
	t->delay_ms = ms;
	pthread_mutex_unlock(&t->mu);
}

size_t vz_test_gerrit_nrequests(vz_test_gerrit *t)
{
	pthread_mutex_lock(&t->mu);
	size_t n = t->nreqs;
	pthread_mutex_unlock(&t->mu);
	return n;
}

const vz_test_gerrit_req *vz_test_gerrit_request(vz_test_gerrit *t, size_t i)
{
	pthread_mutex_lock(&t->mu);
	const vz_test_gerrit_req *r = i < t->nreqs ? t->reqs[i] : NULL;
	pthread_mutex_unlock(&t->mu);
	return r;
}
