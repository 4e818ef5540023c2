/* test_gerrit_event: the stream-events line parser on its own (no servers): missing fields,
 * quoted numbers, wrong shapes, the size cap, ignored types and meta refs, and the duplicate
 * key. Pure, so it also runs under valgrind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vz_gerrit_event.h"

static int parse(vz_gerrit_event *ev, const char *line, vz_err *e)
{
	vz_err_clear(e);
	return vz_gerrit_event_parse(ev, line, strlen(line), e);
}

static void test_minimal_and_missing(void **state)
{
	(void)state;
	vz_gerrit_event ev = { 0 };
	vz_err e = { 0 };
	assert_int_equal(parse(&ev, "{\"type\":\"comment-added\"}\n", &e), 0);
	assert_int_equal(ev.type, VZ_GEV_COMMENT_ADDED);
	assert_null(ev.project);
	assert_null(ev.comment);
	assert_int_equal(ev.change, 0);
	assert_int_equal(ev.wip, -1);
	assert_int_equal(ev.napprovals, 0);
	/* nulls are as good as missing */
	assert_int_equal(parse(&ev, "{\"type\":\"patchset-created\",\"change\":null,\"patchSet\":{\"ref\":null}}", &e), 0);
	assert_int_equal(ev.type, VZ_GEV_PATCHSET_CREATED);
	assert_null(ev.ref);
	vz_gerrit_event_clear(&ev);
}

static void test_quoted_numbers_and_values(void **state)
{
	(void)state;
	vz_gerrit_event ev = { 0 };
	vz_err e = { 0 };
	assert_int_equal(parse(&ev, "{\"type\":\"comment-added\",\"change\":{\"number\":\"77\"},\"patchSet\":"
				    "{\"number\":\"4\"},\"approvals\":[{\"type\":\"Verified\",\"value\":\"-2\",\"oldValue\":"
				    "\"1\"},{\"type\":\"Code-Review\",\"value\":1}]}", &e), 0);
	assert_int_equal(ev.change, 77);
	assert_int_equal(ev.patchset, 4);
	const vz_gerrit_approval *v = vz_gerrit_event_approval(&ev, "Verified");
	assert_non_null(v);
	assert_int_equal(v->value, -2);
	assert_true(v->has_old);
	assert_int_equal(v->old_value, 1);
	assert_int_equal(vz_gerrit_event_approval(&ev, "Code-Review")->value, 1);
	assert_null(vz_gerrit_event_approval(&ev, "Workflow"));
	vz_gerrit_event_clear(&ev);
}

static void test_malformed(void **state)
{
	(void)state;
	vz_gerrit_event ev = { 0 };
	vz_err e = { 0 };
	const char *bad[] = {
		"",
		"not json",
		"[\"type\",\"comment-added\"]",
		"{\"type\":\"comment-added\",\"change\":\"x\"}",
		"{\"type\":\"comment-added\",\"change\":{\"number\":\"seven\"}}",
		"{\"type\":\"comment-added\",\"change\":{\"number\":-3}}",
		"{\"type\":\"comment-added\",\"approvals\":[{\"type\":\"V\",\"value\":\"9999\"}]}",
		"{\"type\":\"comment-added\",\"approvals\":[1]}",
		"{\"type\":\"hashtags-changed\",\"added\":[\"a\",2]}",
		"{\"type\":\"wip-state-changed\",\"change\":{\"wip\":\"yes\"}}",
		"{\"type\":\"comment-added\",\"type\":\"comment-added\"}",
		"{\"type\":7}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(&ev, bad[i], &e);
		if (rc != VZ_EPROTO)
			fail_msg("line %zu (%s) gave %d, not EPROTO", i, bad[i], rc);
		assert_non_null(strstr(e.msg, "gerrit event"));
		assert_int_equal(ev.type, VZ_GEV_IGNORED);
		assert_null(ev.approvals);
		assert_null(ev.hashtags_added);
	}
}

static void test_size_cap(void **state)
{
	(void)state;
	vz_gerrit_event ev = { 0 };
	vz_err e = { 0 };
	size_t n = VZ_GERRIT_EVENT_MAX + 1;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	big[n] = '\0';
	assert_int_equal(vz_gerrit_event_parse(&ev, big, n, &e), VZ_ETOOBIG);
	assert_non_null(strstr(e.msg, "cap"));
	free(big);
}

static void test_ignored(void **state)
{
	(void)state;
	vz_gerrit_event ev = { 0 };
	vz_err e = { 0 };
	assert_int_equal(parse(&ev, "{\"type\":\"reviewer-added\",\"change\":{\"number\":1}}", &e), 0);
	assert_int_equal(ev.type, VZ_GEV_IGNORED);
	assert_string_equal(ev.type_name, "reviewer-added");
	assert_int_equal(parse(&ev, "{\"change\":{\"number\":1}}", &e), 0);
	assert_int_equal(ev.type, VZ_GEV_IGNORED);
	assert_int_equal(parse(&ev, "{\"type\":\"ref-updated\",\"refUpdate\":{\"refName\":\"refs/changes/45/12345/meta\"}}",
			       &e), 0);
	assert_int_equal(ev.type, VZ_GEV_IGNORED);
	/* a change ref that is not meta is a real update */
	assert_int_equal(parse(&ev, "{\"type\":\"ref-updated\",\"refUpdate\":{\"refName\":\"refs/changes/45/12345/2\"}}",
			       &e), 0);
	assert_int_equal(ev.type, VZ_GEV_REF_UPDATED);
	assert_null(ev.branch);
	/* the updated ref wins over a patchSet ref and change branch on the same line */
	assert_int_equal(parse(&ev, "{\"type\":\"ref-updated\",\"change\":{\"branch\":\"old\"},\"patchSet\":{\"ref\":"
			       "\"refs/changes/01/1/1\"},\"refUpdate\":{\"refName\":\"stable\"}}", &e), 0);
	assert_string_equal(ev.ref, "refs/heads/stable");
	assert_string_equal(ev.branch, "stable");
	assert_int_equal(parse(&ev, "{\"type\":\"ref-updated\",\"refUpdate\":{\"refName\":\"refs/tags/v1\"}}", &e), 0);
	assert_string_equal(ev.ref, "refs/tags/v1");
	assert_null(ev.branch);
	vz_gerrit_event_clear(&ev);
}

static void test_wip_cleared(void **state)
{
	(void)state;
	vz_gerrit_event ev = { 0 };
	vz_err e = { 0 };
	/* Gerrit omits "wip" when false: a wip-state-changed event without it cleared the flag */
	assert_int_equal(parse(&ev, "{\"type\":\"wip-state-changed\",\"change\":{\"number\":3}}", &e), 0);
	assert_int_equal(ev.wip, 0);
	assert_int_equal(parse(&ev, "{\"type\":\"patchset-created\",\"change\":{\"number\":3}}", &e), 0);
	assert_int_equal(ev.wip, -1);
	vz_gerrit_event_clear(&ev);
}

static void test_key(void **state)
{
	(void)state;
	vz_gerrit_event a = { 0 }, b = { 0 };
	vz_err e = { 0 };
	char ka[160], kb[160];
	/* the same comment, differently dressed: same key */
	assert_int_equal(parse(&a, "{\"type\":\"comment-added\",\"change\":{\"number\":5,\"project\":\"p\"},\"patchSet\":"
				   "{\"number\":2},\"comment\":\"recheck\",\"eventCreatedOn\":100,\"author\":{\"username\":\"x\"}}",
			       &e), 0);
	assert_int_equal(parse(&b, "{\"type\":\"comment-added\",\"change\":{\"number\":\"5\"},\"patchSet\":{\"number\":2},"
				   "\"comment\":\"recheck\",\"eventCreatedOn\":100}", &e), 0);
	vz_gerrit_event_key(&a, ka, sizeof(ka));
	vz_gerrit_event_key(&b, kb, sizeof(kb));
	assert_string_equal(ka, kb);
	/* a second recheck later is another event */
	assert_int_equal(parse(&b, "{\"type\":\"comment-added\",\"change\":{\"number\":5},\"patchSet\":{\"number\":2},"
				   "\"comment\":\"recheck\",\"eventCreatedOn\":160}", &e), 0);
	vz_gerrit_event_key(&b, kb, sizeof(kb));
	assert_string_not_equal(ka, kb);
	/* a patchset is created once, whatever the time */
	assert_int_equal(parse(&a, "{\"type\":\"patchset-created\",\"change\":{\"number\":5},\"patchSet\":{\"number\":2},"
				   "\"eventCreatedOn\":100}", &e), 0);
	assert_int_equal(parse(&b, "{\"type\":\"patchset-created\",\"change\":{\"number\":5},\"patchSet\":{\"number\":2},"
				   "\"eventCreatedOn\":101}", &e), 0);
	vz_gerrit_event_key(&a, ka, sizeof(ka));
	vz_gerrit_event_key(&b, kb, sizeof(kb));
	assert_string_equal(ka, kb);
	/* a short buffer is still terminated */
	char small[8];
	vz_gerrit_event_key(&a, small, sizeof(small));
	assert_int_equal(strlen(small), 7);
	vz_gerrit_event_clear(&a);
	vz_gerrit_event_clear(&b);
	vz_gerrit_event_clear(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_and_missing),
		cmocka_unit_test(test_quoted_numbers_and_values),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_size_cap),
		cmocka_unit_test(test_ignored),
		cmocka_unit_test(test_wip_cleared),
		cmocka_unit_test(test_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
