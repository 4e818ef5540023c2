/* vz_test_gerrit: a Gerrit double for tests, faithful on the wire. Two real servers on loopback:
 *  - an sshd (vz_test_sshd) whose forced command serves `gerrit stream-events` (the JSON lines a
 *    test appends with vz_test_gerrit_emit, from the moment each stream starts, as Gerrit does),
 *    `gerrit review` (each call recorded with its arguments) and `git-upload-pack` for the bare
 *    repositories under its git directory;
 *  - an HTTP server (libmicrohttpd) for the REST endpoints vinz uses: Query Changes, Set Review,
 *    Submit Revision, under /a/ with basic auth enforced, every answer behind ")]}'", change ids
 *    required URL-encoded ("org%2Fproject~12": a raw '/' is a 404 as in Gerrit), 409 text/plain
 *    for a failed submit, 503 on demand, and every request recorded. */
#ifndef VZ_TEST_GERRIT_H
#define VZ_TEST_GERRIT_H

#include <stddef.h>

#include "vz_gerrit.h"

typedef struct vz_test_gerrit vz_test_gerrit;

/* Starts both servers. The account is the sshd's node user (as in Gerrit, one account logs in
 * over SSH with its key and over REST with its HTTP password). 0, or -1 after printing why. */
int vz_test_gerrit_start(vz_test_gerrit **out, const char *password);
/* Stops both servers and removes their files. Accepts NULL. */
void vz_test_gerrit_stop(vz_test_gerrit *t);

/* Fills c to connect to the double (server 127.0.0.1, ports, key, known_hosts, baseurl,
 * password; short timeouts and backoff for tests). Strings are borrowed from t. */
void vz_test_gerrit_conf(const vz_test_gerrit *t, vz_gerrit_conf *c);
const char *vz_test_gerrit_dir(const vz_test_gerrit *t);     /* its files (writable by the node user) */
const char *vz_test_gerrit_git_dir(const vz_test_gerrit *t); /* bare repositories: NAME.git */
int vz_test_gerrit_http_port(const vz_test_gerrit *t);
const char *vz_test_gerrit_known_hosts(const vz_test_gerrit *t);
/* A known_hosts file (path in out, n bytes) naming the double's address with another key. */
int vz_test_gerrit_wrong_known_hosts(const vz_test_gerrit *t, char *out, size_t n);

/* ---- stream ---- */
/* Appends one event line (no newline) to what every open stream-events sends. 0 or -1. */
int vz_test_gerrit_emit(vz_test_gerrit *t, const char *json_line);
/* How many `gerrit stream-events` commands have started. */
int vz_test_gerrit_streams(const vz_test_gerrit *t);
/* Waits (bounded) until at least n streams have started. 0 or -1. */
int vz_test_gerrit_wait_streams(const vz_test_gerrit *t, int n, int timeout_ms);
/* Kills every running stream-events command: the client sees its stream end. Returns how many. */
int vz_test_gerrit_cut_streams(vz_test_gerrit *t);

/* ---- gerrit review over ssh ---- */
/* How many `gerrit review` commands ran; the arguments of the i-th (0-based) joined by '\n'
 * into a malloc'd string, NULL when there is none. */
int vz_test_gerrit_ssh_reviews(const vz_test_gerrit *t);
char *vz_test_gerrit_ssh_review(const vz_test_gerrit *t, int i);

/* ---- REST ---- */
/* The JSON list of ChangeInfo that Query Changes answers (any query). Copied. */
void vz_test_gerrit_set_changes(vz_test_gerrit *t, const char *json);
/* Submitting change `number` answers 409 text/plain with text (NULL clears). */
void vz_test_gerrit_fail_submit(vz_test_gerrit *t, long number, const char *text);
/* The next n authenticated REST requests answer status (e.g. 503). */
void vz_test_gerrit_fail_next(vz_test_gerrit *t, int n, int status);

/* The next n authenticated REST requests are answered only after ms milliseconds (each
 * connection has its own thread, so other connections are served meanwhile). */
void vz_test_gerrit_delay_next(vz_test_gerrit *t, int n, int ms);
/* TCP connections the REST server has accepted (to see that clients reuse them). */
int vz_test_gerrit_http_connections(vz_test_gerrit *t);

typedef struct vz_test_gerrit_req {
	char method[16];
	char *uri;  /* as sent, still encoded */
	char *body;
	char *user; /* basic auth user, NULL without */
	int status; /* what the double answered */
} vz_test_gerrit_req;
/* Requests received so far, in order; the pointer is valid until the next request or stop, so
 * read it only while the client is idle. */
size_t vz_test_gerrit_nrequests(vz_test_gerrit *t);
const vz_test_gerrit_req *vz_test_gerrit_request(vz_test_gerrit *t, size_t i);

#endif
