/* vz_gerrit: the Gerrit connection: SSH event stream with catch-up, REST client, reports.
 * Wire formats from Gerrit's documentation: cmd-stream-events.txt and json.txt (events),
 * rest-api.txt (the ")]}'" line, /a/ for authenticated calls), rest-api-changes.txt (Set Review,
 * Submit Revision, Query Changes with -age:), cmd-review.txt (gerrit review over SSH). */
#include "vz_gerrit.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <libssh2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vz_buf.h"
#include "vz_knownhosts.h"
#include "vz_log.h"
#include "vz_util.h"

#define SEEN_MAX 4096                    /* remembered event keys for duplicate detection */
#define PENDING_MAX 4096                 /* synthesized events waiting to be delivered */
#define REST_BODY_MAX (16 * 1024 * 1024) /* cap on one REST answer */
#define CONNECT_TIMEOUT_MS 15000

struct vz_gerrit {
	char *server, *user, *sshkey, *known_hosts, *baseurl, *password, *canonical, *cainfo;
	int port, keepalive, http_timeout_ms, rest_attempts, backoff_min_ms, backoff_max_ms, slack_s;
	/* stream */
	int fd;
	LIBSSH2_SESSION *s;
	LIBSSH2_CHANNEL *ch;
	vz_buf line;
	int connected_once;     /* a stream was up before: reconnects catch up */
	uint64_t next_try_ms;   /* monotonic time of the next connection attempt */
	int backoff_ms;         /* current reconnect delay */
	int64_t last_event;     /* eventCreatedOn of the newest event seen */
	int64_t catchup_from;   /* last event before a gap still to be caught up; 0: none due */
	uint64_t catchup_next_ms; /* monotonic time of the next catch-up attempt */
	int catchup_attempt;
	uint64_t last_keepalive;
	/* duplicate filter: a ring of keys */
	char (*seen)[160];
	size_t nseen, seen_at;
	/* synthesized events waiting */
	vz_gerrit_event *pending;
	size_t npending, pending_at;
	vz_gerrit_stats stats;
	/* REST */
	CURL *curl;
};

static int libs_ready;

static void init_libs(void)
{
	/* both are process-wide and idempotent once done; vinz is single-threaded at start-up */
	if (!libs_ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		libssh2_init(0);
		libs_ready = 1;
	}
}

static char *dup_or_null(const char *s)
{
	return s ? vz_xstrdup(s) : NULL;
}

int vz_gerrit_new(vz_gerrit **out, const vz_gerrit_conf *c, vz_err *e)
{
	*out = NULL;
	const char *missing = !c->server ? "server" : !c->user ? "user" : !c->sshkey ? "sshkey"
			      : !c->known_hosts ? "known_hosts" : NULL;
	if (missing)
		return vz_err_set(e, VZ_EINVAL, "gerrit connection: \"%s\" is not set: it is required (see "
				  "docs/gerrit.md)", missing);
	if (c->auth_type && strcmp(c->auth_type, "basic") != 0)
		return vz_err_set(e, VZ_EINVAL, "gerrit connection: auth_type \"%s\" is not supported: use "
				  "\"basic\" (Gerrit's HTTP password)", c->auth_type);
	if (c->port < 0 || c->port > 65535)
		return vz_err_set(e, VZ_EINVAL, "gerrit connection: port %d is not a TCP port", c->port);
	if (c->baseurl && !vz_startswith(c->baseurl, "http://") && !vz_startswith(c->baseurl, "https://"))
		return vz_err_set(e, VZ_EINVAL, "gerrit connection: baseurl \"%s\" must start with http:// "
				  "or https://", c->baseurl);
	init_libs();
	vz_gerrit *g = vz_xcalloc(1, sizeof(*g));
	g->server = vz_xstrdup(c->server);
	g->user = vz_xstrdup(c->user);
	g->sshkey = vz_xstrdup(c->sshkey);
	g->known_hosts = vz_xstrdup(c->known_hosts);
	if (c->baseurl) {
		g->baseurl = vz_xstrdup(c->baseurl);
		size_t n = strlen(g->baseurl);
		while (n > 0 && g->baseurl[n - 1] == '/')
			g->baseurl[--n] = '\0';
	} else {
		size_t n = strlen(c->server) + sizeof("https://");
		g->baseurl = vz_xcalloc(1, n);
		snprintf(g->baseurl, n, "https://%s", c->server);
	}
	g->password = c->password && *c->password ? vz_xstrdup(c->password) : NULL;
	g->canonical = vz_xstrdup(c->canonical_hostname ? c->canonical_hostname : c->server);
	g->cainfo = dup_or_null(c->cainfo);
	g->port = c->port ? c->port : 29418;
	g->keepalive = c->keepalive ? c->keepalive : 60;
	g->http_timeout_ms = c->http_timeout_ms > 0 ? c->http_timeout_ms : 30000;
	g->rest_attempts = c->rest_attempts > 0 ? c->rest_attempts : 4;
	g->backoff_min_ms = c->backoff_min_ms > 0 ? c->backoff_min_ms : 1000;
	g->backoff_max_ms = c->backoff_max_ms > 0 ? c->backoff_max_ms : 60000;
	if (g->backoff_max_ms < g->backoff_min_ms)
		g->backoff_max_ms = g->backoff_min_ms;
	g->slack_s = c->catchup_slack_s > 0 ? c->catchup_slack_s : 10;
	g->backoff_ms = g->backoff_min_ms;
	g->fd = -1;
	vz_buf_init(&g->line, VZ_GERRIT_EVENT_MAX + 1);
	g->seen = vz_xcalloc(SEEN_MAX, sizeof(*g->seen));
	g->pending = vz_xcalloc(PENDING_MAX, sizeof(*g->pending));
	*out = g;
	return 0;
}

void vz_gerrit_stream_close(vz_gerrit *g)
{
	if (g->ch && g->s) {
		libssh2_session_set_blocking(g->s, 1);
		libssh2_session_set_timeout(g->s, 2000);
	}
	if (g->ch) {
		libssh2_channel_free(g->ch);
		g->ch = NULL;
	}
	if (g->s) {
		/* blocking, bounded: a non-blocking libssh2_session_free may answer EAGAIN and free nothing */
		libssh2_session_set_blocking(g->s, 1);
		libssh2_session_set_timeout(g->s, 2000);
		libssh2_session_disconnect(g->s, "vinz closes the stream");
		libssh2_session_free(g->s);
		g->s = NULL;
	}
	if (g->fd >= 0) {
		close(g->fd);
		g->fd = -1;
	}
	vz_buf_reset(&g->line);
}

void vz_gerrit_free(vz_gerrit *g)
{
	if (!g)
		return;
	vz_gerrit_stream_close(g);
	vz_buf_free(&g->line);
	for (size_t i = 0; i < g->npending; i++)
		vz_gerrit_event_clear(&g->pending[(g->pending_at + i) % PENDING_MAX]);
	free(g->pending);
	free(g->seen);
	if (g->curl)
		curl_easy_cleanup(g->curl);
	char *strs[] = { g->server, g->user, g->sshkey, g->known_hosts, g->baseurl, g->password, g->canonical,
			 g->cainfo };
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(strs[i]);
	free(g);
}

void vz_gerrit_stats_get(const vz_gerrit *g, vz_gerrit_stats *out)
{
	*out = g->stats;
}

int64_t vz_gerrit_last_event_time(const vz_gerrit *g)
{
	return g->last_event;
}

int vz_gerrit_retryable(int rc)
{
	return rc == VZ_EIO || rc == VZ_ECONNECT || rc == VZ_ETIMEOUT;
}

/* ---------------------------------------------------------------- backoff */

/* The delay before try `attempt` (0-based) of something that failed: min * 2^attempt capped at
 * max, with up to a quarter of it taken off at random so that many clients do not retry in step. */
static int backoff_delay(const vz_gerrit *g, int attempt)
{
	int64_t d = g->backoff_min_ms;
	for (int i = 0; i < attempt && d < g->backoff_max_ms; i++)
		d *= 2;
	if (d > g->backoff_max_ms)
		d = g->backoff_max_ms;
	uint32_t r = 0;
	vz_random(&r, sizeof(r));
	return (int)(d - (int64_t)(r % (uint32_t)(d / 4 + 1)));
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---------------------------------------------------------------- REST */

typedef struct rest_sink {
	vz_buf *b;
} rest_sink;

static size_t on_body(char *p, size_t size, size_t n, void *cls)
{
	rest_sink *s = cls;
	return vz_buf_add(s->b, p, size * n) == 0 ? size * n : 0;
}

char *vz_gerrit_change_id(const char *project, int64_t number)
{
	vz_buf b = VZ_BUF_INIT(4096);
	for (const unsigned char *p = (const unsigned char *)project; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.')
			vz_buf_putc(&b, (char)*p);
		else
			vz_buf_printf(&b, "%%%02X", *p);
	}
	vz_buf_printf(&b, "~%lld", (long long)number);
	return vz_buf_detach(&b);
}

/* The body without Gerrit's XSSI guard line ")]}'" (rest-api.txt, "Output Format"). */
static const char *strip_xssi(const char *body)
{
	if (vz_startswith(body, ")]}'")) {
		body += 4;
		while (*body == '\r' || *body == '\n')
			body++;
	}
	return body;
}

int vz_gerrit_rest(vz_gerrit *g, const char *method, const char *path, const char *body, long *status,
		   char **out, vz_err *e)
{
	vz_buf resp = VZ_BUF_INIT(REST_BODY_MAX), url = VZ_BUF_INIT(16384);
	struct curl_slist *hdrs = NULL;
	char cerr[CURL_ERROR_SIZE] = "";
	rest_sink sink = { &resp };
	int rc = 0;
	*status = 0;
	if (out)
		*out = NULL;
	if (!g->curl && !(g->curl = curl_easy_init()))
		return vz_err_set(e, VZ_ENOMEM, "gerrit: cannot create a libcurl handle");
	CURL *c = g->curl;
	/* reset options but keep the handle, hence its connection cache: connections are reused */
	curl_easy_reset(c);
	vz_buf_printf(&url, "%s%s%s", g->baseurl, g->password ? "/a" : "", path);
	if (url.failed) {
		rc = vz_err_set(e, VZ_ETOOBIG, "gerrit: REST path too long");
		goto out;
	}
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json; charset=UTF-8");
	curl_easy_setopt(c, CURLOPT_URL, url.ptr);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(g->http_timeout_ms < CONNECT_TIMEOUT_MS
								? g->http_timeout_ms : CONNECT_TIMEOUT_MS));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)g->http_timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "vinz-gerrit");
	if (g->cainfo)
		curl_easy_setopt(c, CURLOPT_CAINFO, g->cainfo);
	if (g->password) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, g->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, g->password);
	}
	CURLcode cr = curl_easy_perform(c);
	if (cr != CURLE_OK) {
		if (cr == CURLE_WRITE_ERROR && resp.failed)
			rc = vz_err_set(e, VZ_ETOOBIG, "gerrit: %s %s: answer over %d bytes", method, url.ptr,
					REST_BODY_MAX);
		else
			rc = vz_err_set(e, cr == CURLE_OPERATION_TIMEDOUT ? VZ_ETIMEOUT : VZ_ECONNECT,
					"gerrit: %s %s failed: %s; will retry", method, url.ptr,
					cerr[0] ? cerr : curl_easy_strerror(cr));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	const char *text = strip_xssi(vz_buf_cstr(&resp));
	long st = *status;
	if (st >= 200 && st < 300) {
		if (out)
			*out = vz_xstrdup(text);
	} else if (st == 401 || st == 403) {
		rc = vz_err_set(e, VZ_EAUTH, "gerrit: %s %s: authentication as \"%s\" refused (HTTP %ld): check the "
				"connection's user and password (Gerrit: Settings > HTTP Credentials); not retried",
				method, url.ptr, g->user, st);
	} else if (st == 409) {
		rc = vz_err_set(e, VZ_ECONFLICT, "gerrit: %s %s: conflict (HTTP 409): %.600s", method, url.ptr, text);
	} else if (st == 404) {
		rc = vz_err_set(e, VZ_ENOTFOUND, "gerrit: %s %s: not found (HTTP 404): %.300s", method, url.ptr, text);
	} else if (st == 429 || st >= 500) {
		rc = vz_err_set(e, VZ_EIO, "gerrit: %s %s: server answered HTTP %ld: %.300s; will retry", method,
				url.ptr, st, text);
	} else {
		rc = vz_err_set(e, VZ_EPROTO, "gerrit: %s %s: unexpected HTTP %ld: %.300s", method, url.ptr, st, text);
	}
	if (rc && out)
		*out = vz_xstrdup(text);
out:
	curl_slist_free_all(hdrs);
	vz_buf_free(&resp);
	vz_buf_free(&url);
	return rc;
}

/* vz_gerrit_rest with bounded retries of retryable failures, backoff with jitter between. */
static int rest_retry(vz_gerrit *g, const char *method, const char *path, const char *body, long *status,
		      char **out, vz_err *e)
{
	int rc = 0;
	for (int attempt = 0; attempt < g->rest_attempts; attempt++) {
		vz_err one = { 0 };
		if (out && *out) {
			free(*out);
			*out = NULL;
		}
		rc = vz_gerrit_rest(g, method, path, body, status, out, &one);
		if (!rc)
			return 0;
		if (!vz_gerrit_retryable(rc) || attempt + 1 == g->rest_attempts) {
			vz_err_set(e, rc, "%s", one.msg);
			if (vz_gerrit_retryable(rc))
				vz_err_prefix(e, "after %d attempts", g->rest_attempts);
			return rc;
		}
		vz_warn("%s (attempt %d of %d)", one.msg, attempt + 1, g->rest_attempts);
		sleep_ms(backoff_delay(g, attempt));
	}
	return rc;
}

/* Single-quotes s for Gerrit's SSH command line (split like a shell: 'it'"'"'s'). */
static void ssh_quote(vz_buf *b, const char *s)
{
	vz_buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			vz_buf_puts(b, "'\"'\"'");
		else
			vz_buf_putc(b, *s);
	}
	vz_buf_putc(b, '\'');
}

static int ssh_open(vz_gerrit *g, LIBSSH2_SESSION **out_s, int *out_fd, vz_err *e);
static void ssh_close(LIBSSH2_SESSION *s, LIBSSH2_CHANNEL *ch, int fd);

/* Runs cmd over a new SSH session (blocking, with the session timeout); stderr into err_out. */
static int ssh_command(vz_gerrit *g, const char *cmd, int *exit_status, vz_buf *err_out, vz_err *e)
{
	LIBSSH2_SESSION *s = NULL;
	LIBSSH2_CHANNEL *ch = NULL;
	int fd = -1, rc;
	char buf[4096];
	if ((rc = ssh_open(g, &s, &fd, e)))
		return rc;
	if (!(ch = libssh2_channel_open_session(s)) || libssh2_channel_exec(ch, cmd) != 0) {
		rc = vz_err_set(e, VZ_ECONNECT, "gerrit: %s:%d: cannot run a command over ssh; will retry",
				g->server, g->port);
		goto out;
	}
	for (int guard = 0; guard < 100000; guard++) {
		ssize_t n = libssh2_channel_read_stderr(ch, buf, sizeof(buf));
		if (n > 0) {
			vz_buf_add_capped(err_out, buf, (size_t)n);
			continue;
		}
		n = libssh2_channel_read(ch, buf, sizeof(buf));
		if (n > 0)
			continue;
		if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
			rc = vz_err_set(e, VZ_ECONNECT, "gerrit: %s:%d: ssh read failed (%zd); will retry", g->server,
					g->port, n);
			goto out;
		}
		if (libssh2_channel_eof(ch))
			break;
	}
	libssh2_channel_close(ch);
	libssh2_channel_wait_closed(ch);
	*exit_status = libssh2_channel_get_exit_status(ch);
out:
	ssh_close(s, ch, fd);
	return rc;
}

static int review_ssh(vz_gerrit *g, const char *project, int64_t number, int patchset, const vz_gerrit_review *r,
		      vz_err *e)
{
	vz_buf cmd = VZ_BUF_INIT(256 * 1024), err = VZ_BUF_INIT(8192);
	int rc, status = -1;
	vz_buf_puts(&cmd, "gerrit review --project ");
	ssh_quote(&cmd, project);
	if (r->message) {
		vz_buf_puts(&cmd, " --message ");
		ssh_quote(&cmd, r->message);
	}
	for (size_t i = 0; i < r->nlabels; i++) {
		char lv[300];
		snprintf(lv, sizeof(lv), "%s=%d", r->labels[i].name, r->labels[i].value);
		vz_buf_puts(&cmd, " --label ");
		ssh_quote(&cmd, lv);
	}
	vz_buf_puts(&cmd, " --tag ");
	ssh_quote(&cmd, r->tag ? r->tag : "autogenerated:vinz");
	if (r->notify) {
		vz_buf_puts(&cmd, " --notify ");
		ssh_quote(&cmd, r->notify);
	}
	vz_buf_printf(&cmd, " %lld,%d", (long long)number, patchset);
	if (cmd.failed) {
		rc = vz_err_set(e, VZ_ETOOBIG, "gerrit review: the command for %s,%d is over 256 KiB: shorten the "
				"message", project, patchset);
		goto out;
	}
	if ((rc = ssh_command(g, cmd.ptr, &status, &err, e)))
		goto out;
	if (status != 0)
		rc = vz_err_set(e, VZ_EPROTO, "gerrit review %lld,%d over ssh exited %d: %.500s", (long long)number,
				patchset, status, vz_buf_cstr(&err));
out:
	vz_buf_free(&cmd);
	vz_buf_free(&err);
	return rc;
}

int vz_gerrit_review_post(vz_gerrit *g, const char *project, int64_t number, int patchset,
			  const char *revision, const vz_gerrit_review *r, vz_err *e)
{
	if (!g->password)
		return review_ssh(g, project, number, patchset, r, e);
	json_t *body = json_object(), *labels = json_object();
	for (size_t i = 0; i < r->nlabels; i++)
		json_object_set_new(labels, r->labels[i].name, json_integer(r->labels[i].value));
	if (r->message)
		json_object_set_new(body, "message", json_string(r->message));
	json_object_set_new(body, "labels", labels);
	json_object_set_new(body, "tag", json_string(r->tag ? r->tag : "autogenerated:vinz"));
	if (r->notify)
		json_object_set_new(body, "notify", json_string(r->notify));
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	char *id = vz_gerrit_change_id(project, number);
	vz_buf path = VZ_BUF_INIT(8192);
	long st = 0;
	vz_buf_printf(&path, "/changes/%s/revisions/%s/review", id, revision && *revision ? revision : "current");
	int rc = text ? rest_retry(g, "POST", path.ptr, text, &st, NULL, e)
		      : vz_err_set(e, VZ_EINVAL, "gerrit review: message or label not valid UTF-8");
	free(text);
	free(id);
	vz_buf_free(&path);
	return rc;
}

/* After a 409: is the change merged at revision (a retried submit whose first try, timed out on
 * our side, merged it)? Any doubt answers no. */
static int submitted_already(vz_gerrit *g, const char *project, int64_t number, const char *revision)
{
	char q[512];
	json_t *arr = NULL, *c;
	vz_err qe = { 0 };
	size_t i;
	int merged = 0;
	snprintf(q, sizeof(q), "change:%lld", (long long)number);
	if (vz_gerrit_query(g, &arr, q, &qe) != 0)
		return 0;
	json_array_foreach(arr, i, c) {
		const char *p = json_string_value(json_object_get(c, "project"));
		const char *st = json_string_value(json_object_get(c, "status"));
		const char *cur = json_string_value(json_object_get(c, "current_revision"));
		if (json_integer_value(json_object_get(c, "_number")) == number && p && !strcmp(p, project) && st &&
		    !strcmp(st, "MERGED") && (!revision || (cur && !strcmp(cur, revision))))
			merged = 1;
	}
	json_decref(arr);
	return merged;
}

int vz_gerrit_submit(vz_gerrit *g, const char *project, int64_t number, const char *revision, vz_err *e)
{
	if (!g->password)
		return vz_err_set(e, VZ_EINVAL, "gerrit submit: the connection has no HTTP password: set "
				  "\"password\" to submit changes through REST");
	char *id = vz_gerrit_change_id(project, number);
	vz_buf path = VZ_BUF_INIT(8192);
	long st = 0;
	vz_err one = { 0 };
	vz_buf_printf(&path, "/changes/%s/revisions/%s/submit", id, revision && *revision ? revision : "current");
	int rc = rest_retry(g, "POST", path.ptr, "{}", &st, NULL, &one);
	if (rc == VZ_ECONFLICT && submitted_already(g, project, number, revision))
		rc = 0; /* an earlier try that timed out went through */
	if (rc == VZ_ECONFLICT)
		vz_err_set(e, rc, "MERGE_FAILURE: Gerrit refused to submit %s,%lld: %s", project, (long long)number,
			   one.msg);
	else if (rc)
		vz_err_set(e, rc, "%s", one.msg);
	free(id);
	vz_buf_free(&path);
	return rc;
}

int vz_gerrit_query(vz_gerrit *g, json_t **out, const char *query, vz_err *e)
{
	*out = NULL;
	char *q = curl_easy_escape(NULL, query, 0);
	vz_buf path = VZ_BUF_INIT(16384);
	char *body = NULL;
	long st = 0;
	json_error_t je;
	int rc;
	vz_buf_printf(&path, "/changes/?q=%s&o=CURRENT_REVISION&o=DETAILED_LABELS&o=DETAILED_ACCOUNTS&o=MESSAGES"
		      "&n=500", q ? q : "");
	curl_free(q);
	if ((rc = rest_retry(g, "GET", path.ptr, NULL, &st, &body, e)))
		goto out;
	json_t *j = json_loads(body, 0, &je);
	if (!j || !json_is_array(j)) {
		json_decref(j);
		rc = vz_err_set(e, VZ_EPROTO, "gerrit: query \"%s\": the answer is not a JSON list (%s)", query,
				j ? "other JSON" : je.text);
		goto out;
	}
	*out = j;
out:
	free(body);
	vz_buf_free(&path);
	return rc;
}

/* ---------------------------------------------------------------- SSH */

static void ssh_close(LIBSSH2_SESSION *s, LIBSSH2_CHANNEL *ch, int fd)
{
	if (ch)
		libssh2_channel_free(ch);
	if (s) {
		libssh2_session_set_blocking(s, 1);
		libssh2_session_set_timeout(s, 2000);
		libssh2_session_disconnect(s, "done");
		libssh2_session_free(s);
	}
	if (fd >= 0)
		close(fd);
}

static int tcp_connect(vz_gerrit *g, int *out, vz_err *e)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	char port[16];
	int fd = -1, rc;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", g->port);
	if ((rc = getaddrinfo(g->server, port, &hints, &res)) != 0)
		return vz_err_set(e, VZ_ECONNECT, "gerrit: cannot resolve %s: %s", g->server, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		struct timeval tv = { CONNECT_TIMEOUT_MS / 1000, 0 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return vz_err_set(e, VZ_ECONNECT, "gerrit: cannot connect to %s:%d: %s; will retry", g->server,
				  g->port, strerror(errno));
	*out = fd;
	return 0;
}

static int check_host_key(vz_gerrit *g, LIBSSH2_SESSION *s, vz_err *e)
{
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(s);
	size_t klen = 0;
	int ktype = 0, rc = 0;
	char fp[64];
	if (!kh)
		return vz_err_set(e, VZ_ENOMEM, "gerrit: cannot create a known_hosts collection");
	if ((rc = vz_kh_load_file(kh, g->known_hosts, NULL, e)))
		goto out;
	const char *key = libssh2_session_hostkey(s, &klen, &ktype);
	const vz_kh_type *kt = vz_kh_type_of(ktype);
	if (!key || !kt) {
		rc = vz_err_set(e, VZ_EHOSTKEY, "gerrit: %s:%d presented no host key libssh2 can check", g->server,
				g->port);
		goto out;
	}
	vz_kh_fingerprint(key, klen, fp);
	int r = libssh2_knownhost_checkp(kh, g->server, g->port, key, klen,
					 LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | kt->kh_bit,
					 NULL);
	if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
		rc = vz_err_set(e, VZ_EHOSTKEY, "gerrit: HOST KEY CHANGED for [%s]:%d: it presented %s key %s, "
				"which differs from the one in %s. Someone may be intercepting the connection, or "
				"Gerrit's key was replaced: verify the new key with Gerrit's admins, then update "
				"the entry (ssh-keygen -R '[%s]:%d' -f %s; ssh-keyscan -p %d %s >> %s)", g->server,
				g->port, kt->label, fp, g->known_hosts, g->server, g->port, g->known_hosts, g->port,
				g->server, g->known_hosts);
	else if (r == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND)
		rc = vz_err_set(e, VZ_EHOSTKEY, "gerrit: host key of [%s]:%d is not known: it presented %s key %s "
				"and %s has no entry for it; add it after checking the fingerprint (ssh-keyscan -p %d "
				"%s >> %s)", g->server, g->port, kt->label, fp, g->known_hosts, g->port, g->server,
				g->known_hosts);
	else if (r != LIBSSH2_KNOWNHOST_CHECK_MATCH)
		rc = vz_err_set(e, VZ_EHOSTKEY, "gerrit: cannot check the host key of [%s]:%d", g->server, g->port);
out:
	libssh2_knownhost_free(kh);
	return rc;
}

/* A blocking, authenticated session (timeouts on every call), host key checked. */
static int ssh_open(vz_gerrit *g, LIBSSH2_SESSION **out_s, int *out_fd, vz_err *e)
{
	int fd = -1, rc;
	LIBSSH2_SESSION *s = NULL;
	*out_s = NULL;
	*out_fd = -1;
	if ((rc = tcp_connect(g, &fd, e)))
		return rc;
	if (!(s = libssh2_session_init())) {
		rc = vz_err_set(e, VZ_ENOMEM, "gerrit: cannot create an ssh session");
		goto out;
	}
	libssh2_session_set_blocking(s, 1);
	libssh2_session_set_timeout(s, CONNECT_TIMEOUT_MS);
	if (libssh2_session_handshake(s, fd) != 0) {
		char *msg = NULL;
		libssh2_session_last_error(s, &msg, NULL, 0);
		rc = vz_err_set(e, VZ_ECONNECT, "gerrit: ssh handshake with %s:%d failed: %s; will retry", g->server,
				g->port, msg ? msg : "?");
		goto out;
	}
	if ((rc = check_host_key(g, s, e)))
		goto out;
	if (libssh2_userauth_publickey_fromfile_ex(s, g->user, (unsigned)strlen(g->user), NULL, g->sshkey, NULL)) {
		char *msg = NULL;
		libssh2_session_last_error(s, &msg, NULL, 0);
		rc = vz_err_set(e, VZ_EAUTH, "gerrit: ssh login to %s:%d as \"%s\" with key %s refused: %s; check "
				"that the key's public half is in the account's SSH keys", g->server, g->port,
				g->user, g->sshkey, msg ? msg : "?");
		goto out;
	}
	if (g->keepalive > 0)
		libssh2_keepalive_config(s, 1, (unsigned)g->keepalive);
	*out_s = s;
	*out_fd = fd;
	return 0;
out:
	ssh_close(s, NULL, fd);
	return rc;
}

/* ---------------------------------------------------------------- events */

static int seen_or_add(vz_gerrit *g, const vz_gerrit_event *ev)
{
	char key[160];
	vz_gerrit_event_key(ev, key, sizeof(key));
	for (size_t i = 0; i < g->nseen; i++)
		if (strcmp(g->seen[i], key) == 0)
			return 1;
	vz_strlcpy(g->seen[g->seen_at], key, sizeof(g->seen[0]));
	g->seen_at = (g->seen_at + 1) % SEEN_MAX;
	if (g->nseen < SEEN_MAX)
		g->nseen++;
	return 0;
}

static void pending_push(vz_gerrit *g, vz_gerrit_event *ev)
{
	if (g->npending == PENDING_MAX) {
		vz_warn("gerrit: more than %d missed events to replay; dropping %s of change %lld", PENDING_MAX,
			vz_gerrit_event_type_name(ev->type), (long long)ev->change);
		vz_gerrit_event_clear(ev);
		return;
	}
	g->pending[(g->pending_at + g->npending++) % PENDING_MAX] = *ev;
	memset(ev, 0, sizeof(*ev));
}

/* "2026-11-22 03:40:01.000000000" (UTC, rest-api.txt "Timestamp") to seconds; 0 when not one. */
static int64_t gerrit_time(const char *s)
{
	struct tm tm = { 0 };
	if (!s || sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			 &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

static char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? vz_xstrdup(s) : NULL;
}

/* The fields every synthesized event of change c carries. */
static void synth_base(vz_gerrit_event *ev, vz_gerrit *g, json_t *c, vz_gerrit_event_type t)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = t;
	ev->type_name = vz_xstrdup(vz_gerrit_event_type_name(t));
	ev->project = jstr(c, "project");
	ev->branch = jstr(c, "branch");
	ev->change_id = jstr(c, "change_id");
	ev->status = jstr(c, "status");
	ev->topic = jstr(c, "topic");
	ev->change = json_integer_value(json_object_get(c, "_number"));
	ev->wip = json_is_true(json_object_get(c, "work_in_progress"));
	const char *rev = json_string_value(json_object_get(c, "current_revision"));
	json_t *ri = rev ? json_object_get(json_object_get(c, "revisions"), rev) : NULL;
	if (rev) {
		ev->revision = vz_xstrdup(rev);
		ev->patchset = (int)json_integer_value(json_object_get(ri, "_number"));
		ev->ref = jstr(ri, "ref");
	}
	vz_buf u = VZ_BUF_INIT(8192);
	vz_buf_printf(&u, "%s/c/%s/+/%lld", g->baseurl, ev->project ? ev->project : "", (long long)ev->change);
	ev->url = vz_buf_detach(&u);
}

static void synth_account(vz_gerrit_event *ev, json_t *acc)
{
	ev->username = jstr(acc, "username");
	ev->email = jstr(acc, "email");
	ev->name = jstr(acc, "name");
}

/* Votes named in a change message's first line, "Patch Set 2: Code-Review+2 Workflow+1": Gerrit
 * writes a label there only when the review changed it, so each gets an old value (unknown to
 * the message; 0 is recorded) and counts as a vote just cast. */
static void synth_votes(vz_gerrit_event *ev, const char *msg)
{
	const char *p = msg ? strstr(msg, "Patch Set ") : NULL;
	const char *colon = p ? strchr(p, ':') : NULL;
	if (!colon)
		return;
	const char *end = strchr(colon, '\n');
	if (!end)
		end = colon + strlen(colon);
	ev->approvals = vz_xcalloc(16, sizeof(*ev->approvals));
	for (const char *q = colon + 1; q < end && ev->napprovals < 16;) {
		while (q < end && *q == ' ')
			q++;
		const char *w = q;
		while (q < end && *q != ' ')
			q++;
		const char *sign = NULL;
		for (const char *x = w; x < q; x++)
			if (*x == '+' || *x == '-')
				sign = x;
		if (!sign || sign == w || sign + 1 >= q)
			continue;
		int64_t v = 0;
		char num[16];
		size_t nl = (size_t)(q - sign);
		if (nl >= sizeof(num))
			continue;
		memcpy(num, sign, nl);
		num[nl] = '\0';
		if (vz_parse_i64(num[0] == '+' ? num + 1 : num, -1000, 1000, &v) != 0)
			continue;
		vz_gerrit_approval *a = &ev->approvals[ev->napprovals++];
		a->type = vz_xcalloc(1, (size_t)(sign - w) + 1);
		memcpy(a->type, w, (size_t)(sign - w));
		a->value = (int)v;
		a->has_old = 1;
	}
}

/* Events of the changes updated since the last event (minus slack), as the stream would have
 * sent them, queued for delivery; the duplicate filter drops those already delivered. */
static int catch_up(vz_gerrit *g, int64_t last, vz_err *e)
{
	int64_t now = (int64_t)time(NULL), since = last - g->slack_s;
	int64_t age = now - since;
	if (age < 1)
		age = 1;
	char q[64];
	json_t *arr = NULL, *c;
	size_t i;
	snprintf(q, sizeof(q), "-age:%llds", (long long)age);
	int rc = vz_gerrit_query(g, &arr, q, e);
	if (rc)
		return rc;
	json_array_foreach(arr, i, c) {
		vz_gerrit_event ev;
		const char *rev = json_string_value(json_object_get(c, "current_revision"));
		json_t *ri = rev ? json_object_get(json_object_get(c, "revisions"), rev) : NULL;
		int64_t created = gerrit_time(json_string_value(json_object_get(ri, "created")));
		if (ri && created >= since) {
			synth_base(&ev, g, c, VZ_GEV_PATCHSET_CREATED);
			ev.created_on = created;
			synth_account(&ev, json_object_get(ri, "uploader"));
			pending_push(g, &ev);
		}
		json_t *m;
		size_t k;
		json_array_foreach(json_object_get(c, "messages"), k, m) {
			int64_t t = gerrit_time(json_string_value(json_object_get(m, "date")));
			const char *tag = json_string_value(json_object_get(m, "tag"));
			const char *text = json_string_value(json_object_get(m, "message"));
			if (t < since || !text)
				continue;
			vz_gerrit_event_type type = VZ_GEV_COMMENT_ADDED;
			if (tag && vz_startswith(tag, "autogenerated:gerrit:")) {
				const char *what = tag + strlen("autogenerated:gerrit:");
				if (!strcmp(what, "abandon"))
					type = VZ_GEV_CHANGE_ABANDONED;
				else if (!strcmp(what, "restore"))
					type = VZ_GEV_CHANGE_RESTORED;
				else
					continue; /* new patchset, merged...: from the change itself */
			}
			synth_base(&ev, g, c, type);
			ev.created_on = t;
			int ps = (int)json_integer_value(json_object_get(m, "_revision_number"));
			if (ps && ps != ev.patchset) {
				ev.patchset = ps;
				free(ev.revision);
				free(ev.ref);
				ev.revision = ev.ref = NULL;
			}
			ev.comment = vz_xstrdup(text);
			synth_account(&ev, json_object_get(m, "author"));
			if (type == VZ_GEV_COMMENT_ADDED)
				synth_votes(&ev, text);
			pending_push(g, &ev);
		}
		const char *status = json_string_value(json_object_get(c, "status"));
		int64_t submitted = gerrit_time(json_string_value(json_object_get(c, "submitted")));
		if (status && !strcmp(status, "MERGED") && submitted >= since) {
			synth_base(&ev, g, c, VZ_GEV_CHANGE_MERGED);
			ev.created_on = submitted;
			synth_account(&ev, json_object_get(c, "submitter"));
			pending_push(g, &ev);
		}
	}
	if (json_is_true(json_object_get(json_array_get(arr, json_array_size(arr) - 1), "_more_changes")))
		vz_warn("gerrit: more than %zu changes were updated while the stream was down; events of the "
			"others are not replayed", json_array_size(arr));
	json_decref(arr);
	return 0;
}

static int stream_connect(vz_gerrit *g, vz_err *e)
{
	int rc = ssh_open(g, &g->s, &g->fd, e);
	if (rc)
		return rc;
	if (!(g->ch = libssh2_channel_open_session(g->s)) ||
	    libssh2_channel_exec(g->ch, "gerrit stream-events") != 0) {
		char *msg = NULL;
		libssh2_session_last_error(g->s, &msg, NULL, 0);
		rc = vz_err_set(e, VZ_ECONNECT, "gerrit: cannot start `gerrit stream-events` on %s:%d: %s "
				"(does the account have the Stream Events capability?); will retry", g->server,
				g->port, msg ? msg : "?");
		vz_gerrit_stream_close(g);
		return rc;
	}
	libssh2_session_set_blocking(g->s, 0);
	g->stats.connects++;
	g->last_keepalive = vz_mono_ms();
	vz_info("gerrit: stream-events connected to %s:%d", g->server, g->port);
	/* the stream is up again: what happened while it was down comes from REST (an older gap
	 * not yet caught up keeps its start) */
	if (g->connected_once && g->last_event > 0 && !g->catchup_from) {
		g->catchup_from = g->last_event;
		g->catchup_next_ms = 0;
		g->catchup_attempt = 0;
	}
	g->connected_once = 1;
	return 0;
}

/* Runs a due catch-up; on failure schedules the next try with backoff, so a REST outage at
 * reconnect time delays the missed events instead of losing them. */
static void try_catch_up(vz_gerrit *g)
{
	vz_err ce = { 0 };
	if (catch_up(g, g->catchup_from, &ce) == 0) {
		g->catchup_from = 0;
		g->catchup_attempt = 0;
		return;
	}
	int d = backoff_delay(g, g->catchup_attempt);
	if (g->catchup_attempt < 30)
		g->catchup_attempt++;
	g->catchup_next_ms = vz_mono_ms() + (uint64_t)d;
	vz_warn("gerrit: catching up on events since %lld after a reconnect: %s; trying again in %d ms",
		(long long)g->catchup_from, vz_err_msg(&ce), d);
}

/* Takes one complete line from g->line into an event: 1 when an event came out, 0 when the line
 * gave none (ignored, malformed, duplicate), -1 when no complete line is buffered. */
static int take_line(vz_gerrit *g, vz_gerrit_event *out)
{
	char *nl = g->line.ptr ? memchr(g->line.ptr, '\n', g->line.len) : NULL;
	if (!nl)
		return -1;
	size_t n = (size_t)(nl - g->line.ptr);
	vz_err pe = { 0 };
	int got = 0;
	if (n > 0) {
		int rc = vz_gerrit_event_parse(out, g->line.ptr, n, &pe);
		if (rc) {
			g->stats.malformed++;
			vz_warn("gerrit: %s", vz_err_msg(&pe));
		} else if (out->type != VZ_GEV_IGNORED) {
			if (out->created_on > g->last_event)
				g->last_event = out->created_on;
			if (seen_or_add(g, out)) {
				g->stats.duplicates++;
				vz_gerrit_event_clear(out);
			} else {
				got = 1;
			}
		} else {
			vz_gerrit_event_clear(out);
		}
	}
	vz_buf_consume(&g->line, n + 1);
	return got;
}

int vz_gerrit_next_event(vz_gerrit *g, vz_gerrit_event *out, int timeout_ms, vz_err *e)
{
	uint64_t deadline = vz_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	char buf[16384];
	vz_gerrit_event_clear(out);
	for (int guard = 0; guard < 1000000; guard++) {
		/* replayed events first: they happened before anything still to come on the stream */
		while (g->npending) {
			vz_gerrit_event *p = &g->pending[g->pending_at];
			g->pending_at = (g->pending_at + 1) % PENDING_MAX;
			g->npending--;
			if (seen_or_add(g, p)) {
				g->stats.duplicates++;
				vz_gerrit_event_clear(p);
				continue;
			}
			*out = *p;
			memset(p, 0, sizeof(*p));
			if (out->created_on > g->last_event)
				g->last_event = out->created_on;
			g->stats.synthesized++;
			g->stats.delivered++;
			return 0;
		}
		if (g->catchup_from && g->ch && vz_mono_ms() >= g->catchup_next_ms) {
			try_catch_up(g);
			if (g->npending)
				continue;
		}
		int t = take_line(g, out);
		if (t == 1) {
			g->stats.delivered++;
			return 0;
		}
		if (t == 0)
			continue;
		uint64_t now = vz_mono_ms();
		if (!g->ch) {
			if (now < g->next_try_ms) {
				if (now >= deadline)
					return vz_err_set(e, VZ_ETIMEOUT, "gerrit: no event within %d ms", timeout_ms);
				uint64_t until = g->next_try_ms < deadline ? g->next_try_ms : deadline;
				sleep_ms((int)(until - now));
				continue;
			}
			int rc = stream_connect(g, e);
			if (rc) {
				/* exponential backoff with jitter until the next attempt */
				int d = g->backoff_ms;
				uint32_t r = 0;
				vz_random(&r, sizeof(r));
				d -= (int)(r % (uint32_t)(d / 4 + 1));
				g->next_try_ms = vz_mono_ms() + (uint64_t)d;
				g->backoff_ms = g->backoff_ms * 2 > g->backoff_max_ms ? g->backoff_max_ms : g->backoff_ms * 2;
				vz_warn("%s; next attempt in %d ms", vz_err_msg(e), d);
				return rc;
			}
			g->backoff_ms = g->backoff_min_ms;
			continue;
		}
		if (g->line.failed) {
			vz_warn("gerrit: an event line over %d bytes; reconnecting", VZ_GERRIT_EVENT_MAX);
			g->stats.malformed++;
			vz_gerrit_stream_close(g);
			continue;
		}
		ssize_t n = libssh2_channel_read(g->ch, buf, sizeof(buf));
		if (n > 0) {
			vz_buf_add(&g->line, buf, (size_t)n);
			continue;
		}
		/* in non-blocking mode no data is EAGAIN: 0 is the end of the channel (eof or close,
		 * whichever libssh2 saw; eof alone may stay unset behind an unread stderr packet) */
		if (n == 0 || (n < 0 && n != LIBSSH2_ERROR_EAGAIN) || libssh2_channel_eof(g->ch)) {
			vz_warn("gerrit: stream-events from %s:%d ended (%s); reconnecting", g->server, g->port,
				n < 0 ? "read error" : "end of stream");
			vz_gerrit_stream_close(g);
			/* a stream that was up reconnects at once; backoff applies when connecting fails */
			g->next_try_ms = 0;
			continue;
		}
		if (g->keepalive > 0 && now - g->last_keepalive >= 1000) {
			int next = 0;
			libssh2_keepalive_send(g->s, &next);
			g->last_keepalive = now;
		}
		if (now >= deadline)
			return vz_err_set(e, VZ_ETIMEOUT, "gerrit: no event within %d ms", timeout_ms);
		int dir = libssh2_session_block_directions(g->s);
		struct pollfd pfd = { g->fd, 0, 0 };
		if (dir & LIBSSH2_SESSION_BLOCK_INBOUND || !dir)
			pfd.events |= POLLIN;
		if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
			pfd.events |= POLLOUT;
		uint64_t wait = deadline - now;
		if (g->catchup_from && g->catchup_next_ms > now && g->catchup_next_ms - now < wait)
			wait = g->catchup_next_ms - now;
		poll(&pfd, 1, (int)(wait > 1000 ? 1000 : wait));
	}
	return vz_err_set(e, VZ_ETIMEOUT, "gerrit: no event within %d ms", timeout_ms);
}

/* ---------------------------------------------------------------- Depends-On */

int vz_gerrit_parse_change_url(vz_gerrit_dep *out, const char *url, const char *host)
{
	memset(out, 0, sizeof(*out));
	const char *p = url;
	if (!strncasecmp(p, "https://", 8))
		p += 8;
	else if (!strncasecmp(p, "http://", 7))
		p += 7;
	else
		return VZ_ENOTFOUND;
	size_t hl = strlen(host);
	if (strncasecmp(p, host, hl) != 0 || (p[hl] != '/' && p[hl] != ':'))
		return VZ_ENOTFOUND;
	p += hl;
	if (*p == ':') {
		while (*++p && isdigit((unsigned char)*p))
			;
	}
	/* the change path may sit under a prefix (https://host/gerrit/c/...): find "/c/" */
	const char *c = strstr(p, "/c/");
	if (!c)
		return VZ_ENOTFOUND;
	/* a "#" fragment form: /#/c/N/ or /#/c/PROJECT/+/N */
	const char *rest = c + 3;
	const char *plus = strstr(rest, "/+/");
	const char *num = rest;
	if (plus) {
		size_t pl = (size_t)(plus - rest);
		if (pl == 0 || pl >= sizeof(out->project))
			return VZ_ENOTFOUND;
		memcpy(out->project, rest, pl);
		num = plus + 3;
	}
	int64_t n = 0;
	const char *d = num;
	while (isdigit((unsigned char)*d) && d - num < 12)
		n = n * 10 + (*d++ - '0');
	if (d == num || (*d && *d != '/' && *d != '?' && *d != '#' && !isspace((unsigned char)*d)) || n <= 0) {
		out->project[0] = '\0';
		return VZ_ENOTFOUND;
	}
	out->number = n;
	return 0;
}

size_t vz_gerrit_depends_on(vz_gerrit_dep *out, size_t max, const char *message, const char *host)
{
	size_t n = 0;
	const char *line = message;
	for (int guard = 0; line && *line && n < max && guard < 100000; guard++) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (len > 11 && !strncasecmp(line, "Depends-On:", 11)) {
			char url[2048];
			const char *v = line + 11;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t ul = len - (size_t)(v - line);
			while (ul > 0 && isspace((unsigned char)v[ul - 1]))
				ul--;
			if (ul > 0 && ul < sizeof(url)) {
				memcpy(url, v, ul);
				url[ul] = '\0';
				if (vz_gerrit_parse_change_url(&out[n], url, host) == 0)
					n++;
			}
		}
		line = end ? end + 1 : NULL;
	}
	return n;
}
