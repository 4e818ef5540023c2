/* test_gerrit_driver: the Gerrit driver (scheduler-client/vz_gerrit*) against the Gerrit double
 * (tests/lib/vz_test_gerrit): a real sshd serving stream-events / gerrit review / git-upload-pack
 * and an HTTP server for the REST API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vz_buf.h"
#include "vz_gerrit.h"
#include "vz_log.h"
#include "vz_test_gerrit.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"

static vz_test_gerrit *T;

static int group_setup(void **state)
{
	(void)state;
	vz_log_set_level(getenv("VZ_TEST_VERBOSE") ? VZ_LOG_DEBUG : VZ_LOG_ERROR);
	return vz_test_gerrit_start(&T, "s3cret-http-pw");
}

static int group_teardown(void **state)
{
	(void)state;
	vz_test_gerrit_stop(T);
	return 0;
}

static vz_gerrit *connect_conf(vz_gerrit_conf *c)
{
	vz_gerrit *g = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_gerrit_new(&g, c, &e), 0);
	return g;
}

static vz_gerrit *connect_default(void)
{
	vz_gerrit_conf c;
	vz_test_gerrit_conf(T, &c);
	return connect_conf(&c);
}

/* Opens g's stream: one next_event call (nothing to read yet) and the double saw it start. */
static void open_stream(vz_gerrit *g)
{
	vz_gerrit_event ev = { 0 };
	vz_err e = { 0 };
	int before = vz_test_gerrit_streams(T);
	int rc = vz_gerrit_next_event(g, &ev, 300, &e);
	assert_int_equal(rc, VZ_ETIMEOUT);
	assert_int_equal(vz_test_gerrit_wait_streams(T, before + 1, 10000), 0);
}

static void next(vz_gerrit *g, vz_gerrit_event *ev)
{
	vz_err e = { 0 };
	int rc = vz_gerrit_next_event(g, ev, 10000, &e);
	if (rc)
		fail_msg("next event: %s", vz_err_msg(&e));
}

static char *corpus(const char *name)
{
	char path[4096];
	vz_buf b = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/fuzz_gerrit_event/%s", VZ_SOURCE_DIR, name);
	assert_int_equal(vz_read_file(path, 1 << 20, &b, &e), 0);
	while (b.len && b.ptr[b.len - 1] == '\n')
		b.ptr[--b.len] = '\0';
	return vz_buf_detach(&b);
}

static void emit_corpus(const char *name)
{
	char *line = corpus(name);
	assert_int_equal(vz_test_gerrit_emit(T, line), 0);
	free(line);
}

/* Every event type, read from the double's stream over the real SSH session; ignored and
 * malformed lines in between never come out. */
static void test_stream_every_type(void **state)
{
	(void)state;
	vz_gerrit *g = connect_default();
	vz_gerrit_event ev = { 0 };
	open_stream(g);
	const char *order[] = { "patchset-created", "unknown-reviewer-added", "comment-added", "truncated",
				"comment-added-recheck", "change-merged", "ref-updated-meta", "ref-updated",
				"not-object", "ref-updated-short-name", "change-abandoned", "change-restored",
				"bad-approvals", "wip-state-changed", "topic-changed", "hashtags-changed" };
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		emit_corpus(order[i]);

	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_PATCHSET_CREATED);
	assert_string_equal(ev.project, "org/project");
	assert_string_equal(ev.branch, "master");
	assert_string_equal(ev.ref, "refs/changes/01/1001/2");
	assert_int_equal(ev.change, 1001);
	assert_int_equal(ev.patchset, 2);
	assert_string_equal(ev.revision, "5b1d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c");
	assert_string_equal(ev.url, "http://gerrit.example.org/c/org/project/+/1001");
	assert_string_equal(ev.username, "alice");
	assert_string_equal(ev.email, "alice@example.org");
	assert_int_equal(ev.created_on, 1763780100);

	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_COMMENT_ADDED);
	assert_string_equal(ev.username, "bob");
	assert_string_equal(ev.comment, "Patch Set 2: Code-Review+2\n\nLooks good");
	assert_int_equal(ev.napprovals, 3);
	const vz_gerrit_approval *cr = vz_gerrit_event_approval(&ev, "Code-Review");
	const vz_gerrit_approval *wf = vz_gerrit_event_approval(&ev, "Workflow");
	assert_non_null(cr);
	assert_non_null(wf);
	assert_int_equal(cr->value, 2);
	assert_true(cr->has_old); /* the vote cast now */
	assert_int_equal(cr->old_value, 0);
	assert_int_equal(wf->value, 1);
	assert_false(wf->has_old); /* carried along */

	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_COMMENT_ADDED);
	assert_non_null(strstr(ev.comment, "recheck"));

	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_CHANGE_MERGED);
	assert_string_equal(ev.username, "bob");
	assert_string_equal(ev.new_rev, "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b");

	next(g, &ev); /* the meta ref-updated was dropped */
	assert_int_equal(ev.type, VZ_GEV_REF_UPDATED);
	assert_string_equal(ev.ref, "refs/heads/master");
	assert_string_equal(ev.branch, "master");
	assert_string_equal(ev.old_rev, "0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6");
	assert_string_equal(ev.new_rev, "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b");

	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_REF_UPDATED);
	assert_string_equal(ev.ref, "refs/heads/stable/1.0");
	assert_string_equal(ev.branch, "stable/1.0");

	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_CHANGE_ABANDONED);
	assert_string_equal(ev.comment, "superseded");
	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_CHANGE_RESTORED);
	assert_string_equal(ev.comment, "still needed");

	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_WIP_STATE_CHANGED);
	assert_int_equal(ev.wip, 1);

	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_TOPIC_CHANGED);
	assert_string_equal(ev.old_topic, "old-topic");

	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_HASHTAGS_CHANGED);
	assert_int_equal(ev.nadded, 2);
	assert_string_equal(ev.hashtags_added[1], "urgent");
	assert_int_equal(ev.nremoved, 1);
	assert_string_equal(ev.hashtags_removed[0], "wip");
	vz_gerrit_event_clear(&ev);

	/* nothing else: the unknown, meta and malformed lines were skipped */
	vz_err e = { 0 };
	assert_int_equal(vz_gerrit_next_event(g, &ev, 500, &e), VZ_ETIMEOUT);
	vz_gerrit_stats st;
	vz_gerrit_stats_get(g, &st);
	assert_int_equal(st.delivered, 11);
	assert_int_equal(st.malformed, 3);
	assert_int_equal(st.connects, 1);
	vz_gerrit_free(g);
}

static void ts(char *out, size_t n, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%d %H:%M:%S.000000000", &tm);
}

/* The stream is cut mid-run; what happened meanwhile comes from REST after the reconnect, and
 * the events seen twice (before the cut, or again on the new stream) are delivered once. */
static void test_stream_cut_no_event_missed(void **state)
{
	(void)state;
	vz_gerrit *g = connect_default();
	vz_gerrit_event ev = { 0 };
	vz_err e = { 0 };
	char line[4096], t0s[64], t1s[64], t2s[64];
	int64_t t0 = (int64_t)time(NULL) - 5;
	open_stream(g);
	int streams = vz_test_gerrit_streams(T);
	snprintf(line, sizeof(line),
		 "{\"type\":\"patchset-created\",\"change\":{\"project\":\"org/project\",\"branch\":\"master\","
		 "\"number\":2001,\"status\":\"NEW\"},\"patchSet\":{\"number\":1,\"revision\":\"aaaa\","
		 "\"ref\":\"refs/changes/01/2001/1\"},\"uploader\":{\"username\":\"alice\"},\"eventCreatedOn\":%lld}",
		 (long long)t0);
	assert_int_equal(vz_test_gerrit_emit(T, line), 0);
	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_PATCHSET_CREATED);
	assert_int_equal(ev.change, 2001);
	assert_int_equal(vz_gerrit_last_event_time(g), t0);

	/* Gerrit's view while the stream is down: 2001 got Code-Review+2 and a recheck, 2002 was
	 * uploaded, 2003 merged */
	ts(t0s, sizeof(t0s), t0);
	ts(t1s, sizeof(t1s), t0 + 1);
	ts(t2s, sizeof(t2s), t0 + 2);
	char changes[8192];
	snprintf(changes, sizeof(changes),
		 "[{\"project\":\"org/project\",\"branch\":\"master\",\"change_id\":\"I1\",\"_number\":2001,"
		 "\"status\":\"NEW\",\"current_revision\":\"aaaa\",\"revisions\":{\"aaaa\":{\"_number\":1,"
		 "\"ref\":\"refs/changes/01/2001/1\",\"created\":\"%s\",\"uploader\":{\"username\":\"alice\"}}},"
		 "\"messages\":[{\"id\":\"m1\",\"author\":{\"username\":\"alice\"},\"date\":\"%s\","
		 "\"message\":\"Uploaded patch set 1.\",\"tag\":\"autogenerated:gerrit:newPatchSet\","
		 "\"_revision_number\":1},{\"id\":\"m2\",\"author\":{\"username\":\"bob\",\"email\":\"bob@example.org\"},"
		 "\"date\":\"%s\",\"message\":\"Patch Set 1: Code-Review+2 Workflow+1\\n\\nship it\","
		 "\"_revision_number\":1},{\"id\":\"m3\",\"author\":{\"username\":\"carol\"},\"date\":\"%s\","
		 "\"message\":\"Patch Set 1:\\n\\nrecheck\",\"_revision_number\":1}]},"
		 "{\"project\":\"org/other\",\"branch\":\"master\",\"_number\":2002,\"status\":\"NEW\","
		 "\"current_revision\":\"bbbb\",\"revisions\":{\"bbbb\":{\"_number\":3,\"ref\":\"refs/changes/02/2002/3\","
		 "\"created\":\"%s\",\"uploader\":{\"username\":\"dave\"}}},\"messages\":[]},"
		 "{\"project\":\"org/project\",\"branch\":\"master\",\"_number\":2003,\"status\":\"MERGED\","
		 "\"submitted\":\"%s\",\"submitter\":{\"username\":\"bob\"},\"current_revision\":\"cccc\","
		 "\"revisions\":{\"cccc\":{\"_number\":1,\"ref\":\"refs/changes/03/2003/1\",\"created\":\"2020-01-01 "
		 "00:00:00.000000000\"}},\"messages\":[]}]",
		 t0s, t0s, t1s, t2s, t1s, t2s);
	vz_test_gerrit_set_changes(T, changes);
	size_t reqs_before = vz_test_gerrit_nrequests(T);

	/* cut; events that Gerrit emits meanwhile reach no stream */
	assert_true(vz_test_gerrit_cut_streams(T) >= 1);
	snprintf(line, sizeof(line),
		 "{\"type\":\"comment-added\",\"change\":{\"project\":\"org/project\",\"number\":2001},"
		 "\"patchSet\":{\"number\":1},\"comment\":\"Patch Set 1: Code-Review+2 Workflow+1\\n\\nship it\","
		 "\"author\":{\"username\":\"bob\"},\"eventCreatedOn\":%lld}", (long long)(t0 + 1));

	/* the reconnect replays, in Gerrit's order: 2001's votes and recheck, 2002's patchset, 2003 */
	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_COMMENT_ADDED);
	assert_int_equal(ev.change, 2001);
	assert_int_equal(ev.patchset, 1);
	assert_string_equal(ev.username, "bob");
	assert_int_equal(ev.napprovals, 2);
	const vz_gerrit_approval *cr = vz_gerrit_event_approval(&ev, "Code-Review");
	assert_non_null(cr);
	assert_int_equal(cr->value, 2);
	assert_true(cr->has_old);
	assert_non_null(vz_gerrit_event_approval(&ev, "Workflow"));
	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_COMMENT_ADDED);
	assert_string_equal(ev.comment, "Patch Set 1:\n\nrecheck");
	assert_string_equal(ev.username, "carol");
	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_PATCHSET_CREATED);
	assert_int_equal(ev.change, 2002);
	assert_int_equal(ev.patchset, 3);
	assert_string_equal(ev.project, "org/other");
	assert_string_equal(ev.ref, "refs/changes/02/2002/3");
	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_CHANGE_MERGED);
	assert_int_equal(ev.change, 2003);
	assert_int_equal(vz_test_gerrit_wait_streams(T, streams + 1, 10000), 0);

	/* the catch-up asked for changes updated since shortly before the last event */
	int saw_query = 0;
	for (size_t i = reqs_before; i < vz_test_gerrit_nrequests(T); i++) {
		const vz_test_gerrit_req *r = vz_test_gerrit_request(T, i);
		if (!strcmp(r->method, "GET") && strstr(r->uri, "/a/changes/?q=-age%3A") &&
		    strstr(r->uri, "o=CURRENT_REVISION") && strstr(r->uri, "o=MESSAGES"))
			saw_query++;
	}
	assert_int_equal(saw_query, 1);

	/* the comment arrives again on the new stream (as a slow Gerrit may send it): dropped; the
	 * next new event comes through */
	assert_int_equal(vz_test_gerrit_emit(T, line), 0);
	snprintf(line, sizeof(line),
		 "{\"type\":\"change-abandoned\",\"change\":{\"project\":\"org/project\",\"number\":2001},"
		 "\"patchSet\":{\"number\":1},\"abandoner\":{\"username\":\"alice\"},\"reason\":\"done\","
		 "\"eventCreatedOn\":%lld}", (long long)(t0 + 3));
	assert_int_equal(vz_test_gerrit_emit(T, line), 0);
	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_CHANGE_ABANDONED);
	assert_int_equal(ev.change, 2001);
	vz_gerrit_event_clear(&ev);
	assert_int_equal(vz_gerrit_next_event(g, &ev, 300, &e), VZ_ETIMEOUT);

	vz_gerrit_stats st;
	vz_gerrit_stats_get(g, &st);
	assert_int_equal(st.connects, 2);
	assert_int_equal(st.synthesized, 4);
	assert_int_equal(st.delivered, 6);
	assert_int_equal(st.duplicates, 2); /* 2001's patchset from REST, the comment on the stream */
	vz_test_gerrit_set_changes(T, NULL);
	vz_gerrit_free(g);
}

static size_t count_reqs(size_t from, const char *method, const char *uri_part, int status);

/* REST is down when the stream comes back: the catch-up is retried with backoff and the missed
 * comment still arrives, once. */
static void test_catch_up_survives_rest_outage(void **state)
{
	(void)state;
	vz_gerrit *g = connect_default();
	vz_gerrit_event ev = { 0 };
	char line[2048], t1s[64], changes[4096];
	int64_t t0 = (int64_t)time(NULL) - 3;
	open_stream(g);
	snprintf(line, sizeof(line),
		 "{\"type\":\"patchset-created\",\"change\":{\"project\":\"org/project\",\"number\":3001},"
		 "\"patchSet\":{\"number\":1},\"eventCreatedOn\":%lld}", (long long)t0);
	assert_int_equal(vz_test_gerrit_emit(T, line), 0);
	next(g, &ev);
	assert_int_equal(ev.change, 3001);
	ts(t1s, sizeof(t1s), t0 + 1);
	snprintf(changes, sizeof(changes),
		 "[{\"project\":\"org/project\",\"branch\":\"master\",\"_number\":3001,\"status\":\"NEW\","
		 "\"messages\":[{\"author\":{\"username\":\"bob\"},\"date\":\"%s\",\"message\":"
		 "\"Patch Set 1:\\n\\nrecheck\",\"_revision_number\":1}]}]", t1s);
	vz_test_gerrit_set_changes(T, changes);
	size_t from = vz_test_gerrit_nrequests(T);
	vz_test_gerrit_fail_next(T, 6, 503); /* the first catch-up fails all 4 tries, the second 2 */
	assert_true(vz_test_gerrit_cut_streams(T) >= 1);
	next(g, &ev);
	assert_int_equal(ev.type, VZ_GEV_COMMENT_ADDED);
	assert_int_equal(ev.change, 3001);
	assert_string_equal(ev.comment, "Patch Set 1:\n\nrecheck");
	assert_int_equal(count_reqs(from, "GET", "q=-age%3A", 503), 6);
	assert_int_equal(count_reqs(from, "GET", "q=-age%3A", 200), 1);
	vz_gerrit_event_clear(&ev);
	vz_err e = { 0 };
	assert_int_equal(vz_gerrit_next_event(g, &ev, 300, &e), VZ_ETIMEOUT);
	vz_gerrit_stats st;
	vz_gerrit_stats_get(g, &st);
	assert_int_equal(st.synthesized, 1);
	vz_test_gerrit_set_changes(T, NULL);
	vz_test_gerrit_fail_next(T, 0, 0);
	vz_gerrit_free(g);
}

static size_t count_reqs(size_t from, const char *method, const char *uri_part, int status)
{
	size_t n = 0;
	for (size_t i = from; i < vz_test_gerrit_nrequests(T); i++) {
		const vz_test_gerrit_req *r = vz_test_gerrit_request(T, i);
		if (!strcmp(r->method, method) && strstr(r->uri, uri_part) && (status < 0 || r->status == status))
			n++;
	}
	return n;
}

static const vz_gerrit_label LABELS[] = { { "Verified", 1 }, { "Code-Review", -1 } };

/* A review over REST arrives once, with the project encoded, labels, message, tag and notify. */
static void test_review_rest(void **state)
{
	(void)state;
	vz_gerrit *g = connect_default();
	vz_err e = { 0 };
	size_t from = vz_test_gerrit_nrequests(T);
	vz_gerrit_review r = { .message = "Build succeeded (check pipeline).\n\n- unit SUCCESS in 1m 2s",
			       .labels = LABELS, .nlabels = 2, .notify = "NONE" };
	int rc = vz_gerrit_review_post(g, "org/project", 1001, 2, "5b1d2c3e", &r, &e);
	if (rc)
		fail_msg("review: %s", vz_err_msg(&e));
	assert_int_equal(vz_test_gerrit_nrequests(T), from + 1);
	const vz_test_gerrit_req *q = vz_test_gerrit_request(T, from);
	assert_string_equal(q->method, "POST");
	assert_string_equal(q->uri, "/a/changes/org%2Fproject~1001/revisions/5b1d2c3e/review");
	assert_string_equal(q->user, vz_test_sshd_node_user());
	assert_int_equal(q->status, 200);
	json_t *b = json_loads(q->body, 0, NULL);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b, "message")), r.message);
	assert_string_equal(json_string_value(json_object_get(b, "tag")), "autogenerated:vinz");
	assert_string_equal(json_string_value(json_object_get(b, "notify")), "NONE");
	json_t *l = json_object_get(b, "labels");
	assert_int_equal(json_object_size(l), 2);
	assert_int_equal(json_integer_value(json_object_get(l, "Verified")), 1);
	assert_int_equal(json_integer_value(json_object_get(l, "Code-Review")), -1);
	json_decref(b);

	/* one connection serves a run of calls */
	int conns = vz_test_gerrit_http_connections(T);
	for (int i = 0; i < 5; i++)
		assert_int_equal(vz_gerrit_review_post(g, "org/project", 1001, 2, "5b1d2c3e", &r, &e), 0);
	assert_int_equal(vz_test_gerrit_http_connections(T), conns);
	assert_int_equal(vz_test_gerrit_nrequests(T), from + 6);

	/* the double is strict about encoded ids, as Gerrit is */
	long st = 0;
	char *out = NULL;
	assert_int_equal(vz_gerrit_rest(g, "POST", "/changes/org/project~1001/revisions/x/review", "{}", &st, &out, &e),
			 VZ_ENOTFOUND);
	assert_int_equal(st, 404);
	free(out);
	vz_gerrit_free(g);
}

/* Query Changes: the XSSI line is stripped and the options asked for. */
static void test_query(void **state)
{
	(void)state;
	vz_gerrit *g = connect_default();
	vz_err e = { 0 };
	json_t *arr = NULL;
	size_t from = vz_test_gerrit_nrequests(T);
	vz_test_gerrit_set_changes(T, "[{\"_number\":5,\"status\":\"NEW\",\"labels\":{\"Verified\":{}}}]");
	assert_int_equal(vz_gerrit_query(g, &arr, "status:open project:org/project", &e), 0);
	assert_int_equal(json_array_size(arr), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "_number")), 5);
	json_decref(arr);
	assert_int_equal(count_reqs(from, "GET", "q=status%3Aopen%20project%3Aorg%2Fproject&o=CURRENT_REVISION&"
				    "o=DETAILED_LABELS", 200), 1);
	vz_test_gerrit_set_changes(T, NULL);
	vz_gerrit_free(g);
}

/* Submit: 409 is MERGE_FAILURE with Gerrit's text, not retried; a good submit passes. */
static void test_submit(void **state)
{
	(void)state;
	vz_gerrit *g = connect_default();
	vz_err e = { 0 };
	size_t from = vz_test_gerrit_nrequests(T);
	vz_test_gerrit_fail_submit(T, 1002, "Change 1002: needs rebase: merge conflict in README");
	assert_int_equal(vz_gerrit_submit(g, "org/project", 1002, "abcd", &e), VZ_ECONFLICT);
	assert_non_null(strstr(e.msg, "MERGE_FAILURE"));
	assert_non_null(strstr(e.msg, "needs rebase: merge conflict in README"));
	assert_int_equal(count_reqs(from, "POST", "/a/changes/org%2Fproject~1002/revisions/abcd/submit", 409), 1);
	/* not retried; the change's state was checked once */
	assert_int_equal(vz_test_gerrit_nrequests(T), from + 2);
	assert_int_equal(count_reqs(from, "GET", "q=change%3A1002", 200), 1);
	vz_err_clear(&e);
	assert_int_equal(vz_gerrit_submit(g, "org/project", 1003, "ef01", &e), 0);
	assert_int_equal(count_reqs(from, "POST", "/a/changes/org%2Fproject~1003/revisions/ef01/submit", 200), 1);
	/* a 409 for a change that is merged at this revision (an earlier try went through) is success;
	 * merged at another revision is not */
	from = vz_test_gerrit_nrequests(T);
	vz_test_gerrit_fail_submit(T, 1004, "change is merged");
	vz_test_gerrit_set_changes(T, "[{\"project\":\"org/project\",\"_number\":1004,\"status\":\"MERGED\","
				      "\"current_revision\":\"beef\"}]");
	assert_int_equal(vz_gerrit_submit(g, "org/project", 1004, "beef", &e), 0);
	assert_int_equal(count_reqs(from, "GET", "q=change%3A1004", 200), 1);
	assert_int_equal(vz_gerrit_submit(g, "org/project", 1004, "f00d", &e), VZ_ECONFLICT);
	assert_non_null(strstr(e.msg, "change is merged"));
	vz_test_gerrit_set_changes(T, NULL);
	vz_test_gerrit_fail_submit(T, 0, NULL);
	vz_gerrit_free(g);
}

/* 503 for a while: retried with backoff, the vote arrives once; past the attempts, the error
 * is retryable for the outbox. */
static void test_503_retried(void **state)
{
	(void)state;
	vz_gerrit *g = connect_default();
	vz_err e = { 0 };
	size_t from = vz_test_gerrit_nrequests(T);
	vz_gerrit_review r = { .message = "ok", .labels = LABELS, .nlabels = 1 };
	vz_test_gerrit_fail_next(T, 2, 503);
	assert_int_equal(vz_gerrit_review_post(g, "org/project", 1001, 2, "5b1d2c3e", &r, &e), 0);
	assert_int_equal(count_reqs(from, "POST", "/review", 503), 2);
	assert_int_equal(count_reqs(from, "POST", "/review", 200), 1);

	from = vz_test_gerrit_nrequests(T);
	vz_test_gerrit_fail_next(T, 100, 503);
	int rc = vz_gerrit_review_post(g, "org/project", 1001, 2, "5b1d2c3e", &r, &e);
	assert_true(vz_gerrit_retryable(rc));
	assert_non_null(strstr(e.msg, "503"));
	assert_int_equal(count_reqs(from, "POST", "/review", 503), 4); /* rest_attempts */
	assert_int_equal(count_reqs(from, "POST", "/review", 200), 0);
	vz_test_gerrit_fail_next(T, 0, 0);

	from = vz_test_gerrit_nrequests(T);
	vz_test_gerrit_fail_next(T, 1, 429);
	vz_err_clear(&e);
	assert_int_equal(vz_gerrit_review_post(g, "org/project", 1001, 2, "5b1d2c3e", &r, &e), 0);
	assert_int_equal(count_reqs(from, "POST", "/review", 429), 1);
	assert_int_equal(count_reqs(from, "POST", "/review", 200), 1);
	vz_gerrit_free(g);
}

/* A slow answer: the call times out, the retry on a new connection gets through; a server
 * that stays slow gives a retryable timeout. */
static void test_rest_timeout(void **state)
{
	(void)state;
	vz_gerrit_conf c;
	vz_err e = { 0 };
	vz_test_gerrit_conf(T, &c);
	c.http_timeout_ms = 300;
	c.rest_attempts = 2;
	vz_gerrit *g = connect_conf(&c);
	size_t from = vz_test_gerrit_nrequests(T);
	vz_gerrit_review r = { .message = "slow", .labels = LABELS, .nlabels = 1 };
	vz_test_gerrit_delay_next(T, 1, 3000);
	uint64_t t0 = vz_mono_ms();
	int rc = vz_gerrit_review_post(g, "org/project", 1001, 2, "5b1d2c3e", &r, &e);
	if (rc)
		fail_msg("%s", vz_err_msg(&e));
	assert_true(vz_mono_ms() - t0 < 2800); /* did not wait for the slow (3 s) answer */
	vz_test_gerrit_delay_next(T, 2, 1000);
	rc = vz_gerrit_review_post(g, "org/project", 1001, 2, "5b1d2c3e", &r, &e);
	assert_int_equal(rc, VZ_ETIMEOUT);
	assert_true(vz_gerrit_retryable(rc));
	/* the slow requests finish on the server after the client gave up (so a timed-out review
	 * may have been applied: labels are idempotent, a message may show twice): wait for them */
	for (int i = 0; i < 100 && vz_test_gerrit_nrequests(T) < from + 4; i++)
		usleep(50000);
	assert_int_equal(vz_test_gerrit_nrequests(T), from + 4);
	assert_int_equal(count_reqs(from, "POST", "/review", 200), 4);
	vz_test_gerrit_delay_next(T, 0, 0);
	vz_gerrit_free(g);
}

/* A wrong password: a clear authentication error, asked once, not retried. */
static void test_wrong_password(void **state)
{
	(void)state;
	vz_gerrit_conf c;
	vz_err e = { 0 };
	vz_test_gerrit_conf(T, &c);
	c.password = "not-the-password";
	vz_gerrit *g = connect_conf(&c);
	size_t from = vz_test_gerrit_nrequests(T);
	vz_gerrit_review r = { .message = "x", .labels = LABELS, .nlabels = 1 };
	int rc = vz_gerrit_review_post(g, "org/project", 1001, 2, "5b1d2c3e", &r, &e);
	assert_int_equal(rc, VZ_EAUTH);
	assert_false(vz_gerrit_retryable(rc));
	assert_non_null(strstr(e.msg, "refused (HTTP 401)"));
	assert_non_null(strstr(e.msg, c.user));
	assert_non_null(strstr(e.msg, "HTTP Credentials"));
	assert_int_equal(vz_test_gerrit_nrequests(T), from + 1);
	vz_gerrit_free(g);
}

/* A changed host key: the stream is refused before login, with a message saying what to do. */
static void test_changed_host_key(void **state)
{
	(void)state;
	vz_gerrit_conf c;
	vz_err e = { 0 };
	char kh[4096];
	vz_gerrit_event ev = { 0 };
	vz_test_gerrit_conf(T, &c);
	assert_int_equal(vz_test_gerrit_wrong_known_hosts(T, kh, sizeof(kh)), 0);
	c.known_hosts = kh;
	vz_gerrit *g = connect_conf(&c);
	int streams = vz_test_gerrit_streams(T);
	assert_int_equal(vz_gerrit_next_event(g, &ev, 2000, &e), VZ_EHOSTKEY);
	assert_non_null(strstr(e.msg, "HOST KEY CHANGED"));
	assert_non_null(strstr(e.msg, kh));
	/* reporting over ssh is refused the same way */
	c.password = NULL;
	vz_gerrit *g2 = connect_conf(&c);
	vz_gerrit_review r = { .message = "x" };
	vz_err_clear(&e);
	assert_int_equal(vz_gerrit_review_post(g2, "org/project", 1, 1, NULL, &r, &e), VZ_EHOSTKEY);
	assert_int_equal(vz_test_gerrit_streams(T), streams);
	vz_gerrit_free(g2);
	vz_gerrit_free(g);
}

/* No HTTP password: the report goes through `gerrit review` over SSH, arguments intact. */
static void test_review_over_ssh(void **state)
{
	(void)state;
	vz_gerrit_conf c;
	vz_err e = { 0 };
	vz_test_gerrit_conf(T, &c);
	c.password = NULL;
	vz_gerrit *g = connect_conf(&c);
	size_t from = vz_test_gerrit_nrequests(T);
	int before = vz_test_gerrit_ssh_reviews(T);
	vz_gerrit_review r = { .message = "Build failed.\n\n- unit FAILURE: it's \"broken\" $(true) `x`\n",
			       .labels = LABELS, .nlabels = 2, .notify = "OWNER" };
	int rc = vz_gerrit_review_post(g, "org/project", 1001, 2, "5b1d2c3e", &r, &e);
	if (rc)
		fail_msg("%s", vz_err_msg(&e));
	assert_int_equal(vz_test_gerrit_ssh_reviews(T), before + 1);
	char *args = vz_test_gerrit_ssh_review(T, before);
	assert_non_null(args);
	assert_string_equal(args, "--project\norg/project\n--message\nBuild failed.\n\n- unit FAILURE: it's "
				  "\"broken\" $(true) `x`\n\n--label\nVerified=1\n--label\nCode-Review=-1\n"
				  "--tag\nautogenerated:vinz\n--notify\nOWNER\n1001,2\n");
	free(args);
	assert_int_equal(vz_test_gerrit_nrequests(T), from); /* nothing over REST */
	vz_gerrit_free(g);
}

/* The double serves git-upload-pack for its repositories over the same SSH login. */
static void test_git_upload_pack(void **state)
{
	(void)state;
	char repo[4096];
	vz_gerrit_conf c;
	vz_test_gerrit_conf(T, &c);
	snprintf(repo, sizeof(repo), "%s/org", vz_test_gerrit_git_dir(T));
	vz_err e = { 0 };
	assert_int_equal(vz_mkdir_p(repo, 0755, &e), 0);
	snprintf(repo, sizeof(repo), "%s/org/project.git", vz_test_gerrit_git_dir(T));
	vz_test_git_repo(repo, 2, NULL);
	vz_buf out = VZ_BUF_INIT(1 << 20);
	assert_int_equal(vz_test_sh(&out, "chown -R %s '%s' && GIT_SSH_COMMAND='ssh -i %s -o UserKnownHostsFile=%s "
				    "-o StrictHostKeyChecking=yes -o BatchMode=yes -p %d' git ls-remote ssh://%s@127.0.0.1:%d/org/project",
				    c.user, vz_test_gerrit_git_dir(T), c.sshkey, c.known_hosts, c.port, c.user, c.port), 0);
	assert_non_null(strstr(vz_buf_cstr(&out), "\trefs/heads/master\n"));
	assert_non_null(strstr(vz_buf_cstr(&out), "\trefs/changes/2\n"));
	vz_buf_free(&out);
}

/* Depends-On footers naming Gerrit changes, in the URL forms Gerrit has used. */
static void test_depends_on(void **state)
{
	(void)state;
	vz_gerrit_dep d[8];
	const char *msg = "Fix the thing\n\nBody mentions https://review.example.org/c/9/ but not as a footer.\n\n"
			  "Depends-On: https://review.example.org/c/org/project/+/123\n"
			  "depends-on: https://review.example.org/c/456\n"
			  "DEPENDS-ON:   http://review.example.org/#/c/789/  \n"
			  "Depends-On: https://review.example.org/gerrit/c/org/sub/lib/+/1011/3\n"
			  "Depends-On: https://review.example.org/#/c/org/x/+/1213\n"
			  "Depends-On: https://other.example.org/c/org/project/+/5\n"
			  "Depends-On: https://review.example.org/c/org/project/+/abc\n"
			  "Depends-On: https://github.com/org/project/pull/3\n"
			  "Change-Id: I0123\n";
	size_t n = vz_gerrit_depends_on(d, 8, msg, "review.example.org");
	assert_int_equal(n, 5);
	assert_string_equal(d[0].project, "org/project");
	assert_int_equal(d[0].number, 123);
	assert_string_equal(d[1].project, "");
	assert_int_equal(d[1].number, 456);
	assert_int_equal(d[2].number, 789);
	assert_string_equal(d[3].project, "org/sub/lib");
	assert_int_equal(d[3].number, 1011);
	assert_string_equal(d[4].project, "org/x");
	assert_int_equal(d[4].number, 1213);
	vz_gerrit_dep one;
	assert_int_equal(vz_gerrit_parse_change_url(&one, "https://REVIEW.example.org:8443/c/7", "review.example.org"), 0);
	assert_int_equal(one.number, 7);
	assert_int_equal(vz_gerrit_parse_change_url(&one, "https://review.example.org.evil/c/7", "review.example.org"),
			 VZ_ENOTFOUND);
	assert_int_equal(vz_gerrit_depends_on(d, 2, msg, "review.example.org"), 2);
}

/* Settings are checked when the connection is made. */
static void test_conf_errors(void **state)
{
	(void)state;
	vz_gerrit *g = NULL;
	vz_err e = { 0 };
	vz_gerrit_conf c = { .server = "h", .user = "u", .sshkey = "k" };
	assert_int_equal(vz_gerrit_new(&g, &c, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "\"known_hosts\" is not set"));
	vz_err_clear(&e);
	c.known_hosts = "kh";
	c.auth_type = "digest";
	assert_int_equal(vz_gerrit_new(&g, &c, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "auth_type \"digest\""));
	c.auth_type = NULL;
	assert_int_equal(vz_gerrit_new(&g, &c, &e), 0);
	char *id = vz_gerrit_change_id("org/pro ject~x", 12);
	assert_string_equal(id, "org%2Fpro%20ject%7Ex~12");
	free(id);
	vz_gerrit_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_errors),
		cmocka_unit_test(test_depends_on),
		cmocka_unit_test(test_stream_every_type),
		cmocka_unit_test(test_stream_cut_no_event_missed),
		cmocka_unit_test(test_catch_up_survives_rest_outage),
		cmocka_unit_test(test_review_rest),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_submit),
		cmocka_unit_test(test_503_retried),
		cmocka_unit_test(test_rest_timeout),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_changed_host_key),
		cmocka_unit_test(test_review_over_ssh),
		cmocka_unit_test(test_git_upload_pack),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
