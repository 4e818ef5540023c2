/* vz_build on a local node: what it emits (started, contiguous log chunks, one result), the log
 * cap and its marker, binary output made valid UTF-8, long lines, checkout failures, timeouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_build.h"
#include "vz_log.h"
#include "vz_node.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

typedef struct sink {
	int started, results;
	long long next_offset; /* log chunks must arrive in order without gaps */
	int gap;
	vz_buf log;            /* the concatenated chunks */
	json_t *result;
} sink;

static void emit(void *ctx, vz_msg_type type, json_t *body)
{
	sink *s = ctx;
	/* everything the build emits must be a valid protocol message */
	vz_buf frame = VZ_BUF_INIT(VZ_PROTO_MAX_FRAME);
	vz_err e = { 0 };
	assert_int_equal(vz_msg_encode(&frame, type, NULL, body, &e), 0);
	vz_buf_free(&frame);
	if (type == VZ_MSG_STARTED)
		s->started++;
	if (type == VZ_MSG_LOG) {
		long long off = json_integer_value(json_object_get(body, "offset"));
		if (off != s->next_offset)
			s->gap = 1;
		const char *d = json_string_value(json_object_get(body, "data"));
		size_t n = json_string_length(json_object_get(body, "data"));
		vz_buf_add(&s->log, d, n);
		s->next_offset = off + (long long)n;
	}
	if (type == VZ_MSG_RESULT) {
		s->results++;
		json_decref(s->result);
		s->result = json_incref(body);
	}
	json_decref(body);
}

typedef struct fx {
	char *dir, *repo, *work;
} fx;

static int setup(void **state)
{
	fx *f = vz_xcalloc(1, sizeof(*f));
	f->dir = vz_test_tmpdir("vz-build");
	f->repo = vz_path_join(f->dir, "p.git");
	f->work = vz_path_join(f->dir, "work");
	vz_test_git_repo(f->repo, 2, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	vz_test_rm(f->dir);
	free(f->dir);
	free(f->repo);
	free(f->work);
	free(f);
	return 0;
}

static void run(fx *f, sink *s, const char *ref, const char *const *cmds, int timeout, size_t log_max)
{
	json_t *c = json_array();
	for (size_t i = 0; cmds[i]; i++)
		json_array_append_new(c, json_string(cmds[i]));
	json_t *req = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:o,s:i}", "build", "b1", "attempt", 1,
				"job", "j", "project", "p", "change", "1", "ref", ref, "repo", f->repo, "branch", "master",
				"canonical_project", "example.org/p", "node", "name", "local-node", "connection", "local",
				"commands", c, "timeout", timeout);
	vz_build_env env = { .work_dir = f->work, .log_max = log_max, .executor = "x" };
	memset(s, 0, sizeof(*s));
	vz_buf_init(&s->log, 64u << 20);
	volatile int cancel = 0;
	vz_build_run(req, &env, &cancel, emit, s);
	json_decref(req);
	assert_int_equal(s->started, 1);
	assert_int_equal(s->results, 1);
	assert_false(s->gap);
	/* log_size is what the chunks add up to, and the file on disk agrees */
	assert_int_equal(json_integer_value(json_object_get(s->result, "log_size")), s->next_offset);
	char *lp = vz_build_log_path(f->work, "b1");
	vz_buf disk = VZ_BUF_INIT(64u << 20);
	vz_err e = { 0 };
	assert_int_equal(vz_read_file(lp, disk.max, &disk, &e), 0);
	assert_int_equal(disk.len, s->log.len);
	assert_memory_equal(disk.ptr, s->log.ptr, disk.len);
	vz_buf_free(&disk);
	free(lp);
}

static void done(sink *s)
{
	vz_buf_free(&s->log);
	json_decref(s->result);
}

static const char *res(sink *s)
{
	return json_string_value(json_object_get(s->result, "result"));
}

static void test_success_runs_in_checkout(void **state)
{
	fx *f = *state;
	sink s;
	const char *cmds[] = { "cat change-1", "echo commit=$VINZ_COMMIT change=$VINZ_CHANGE", "git rev-parse --abbrev-ref HEAD", NULL };
	run(f, &s, "refs/changes/1", cmds, 60, 0);
	assert_string_equal(res(&s), "SUCCESS");
	assert_int_equal(strlen(json_string_value(json_object_get(s.result, "commit"))), 40);
	char want[128];
	snprintf(want, sizeof(want), "commit=%s change=1", json_string_value(json_object_get(s.result, "commit")));
	assert_non_null(strstr(vz_buf_cstr(&s.log), want));
	assert_non_null(strstr(vz_buf_cstr(&s.log), "| local-node | 1\n"));     /* content of change-1 */
	assert_non_null(strstr(vz_buf_cstr(&s.log), "| local-node | master\n")); /* on the target branch */
	assert_non_null(strstr(vz_buf_cstr(&s.log), "$ cat change-1"));
	done(&s);
}

static void test_failure_stops_at_failing_command(void **state)
{
	fx *f = *state;
	sink s;
	const char *cmds[] = { "echo one", "exit 3", "echo never-printed", NULL };
	run(f, &s, "refs/changes/1", cmds, 60, 0);
	assert_string_equal(res(&s), "FAILURE");
	assert_non_null(strstr(json_string_value(json_object_get(s.result, "message")), "exited 3"));
	assert_null(strstr(vz_buf_cstr(&s.log), "never-printed"));
	done(&s);
}

static void test_log_cap_leaves_marker(void **state)
{
	fx *f = *state;
	sink s;
	const char *cmds[] = { "seq 1 200000", "echo after-the-cap", NULL };
	run(f, &s, "refs/changes/1", cmds, 60, 64 * 1024);
	assert_string_equal(res(&s), "SUCCESS");
	/* the cap plus the marker and the closing lines, no more */
	assert_true(s.log.len <= 64 * 1024 + 512);
	assert_non_null(strstr(vz_buf_cstr(&s.log), "[vinz: log cut here"));
	assert_null(strstr(vz_buf_cstr(&s.log), "after-the-cap"));
	done(&s);
}

static int valid_utf8(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
		if (!len || i + len > n || c == 0)
			return 0;
		for (size_t k = 1; k < len; k++)
			if ((p[i + k] & 0xC0) != 0x80)
				return 0;
		i += len;
	}
	return 1;
}

static void test_binary_and_long_lines(void **state)
{
	fx *f = *state;
	sink s;
	const char *cmds[] = { "head -c 200000 /dev/urandom", "head -c 100000 /dev/zero | tr '\\0' x; echo", "printf 'no newline at end'", NULL };
	run(f, &s, "refs/changes/1", cmds, 60, 0);
	assert_string_equal(res(&s), "SUCCESS");
	assert_true(valid_utf8((const unsigned char *)s.log.ptr, s.log.len));
	/* a 100000-byte line arrives cut into lines of at most 16 KiB, all of it */
	size_t xs = 0;
	for (size_t i = 0; i < s.log.len; i++)
		xs += s.log.ptr[i] == 'x';
	assert_true(xs >= 100000);
	assert_non_null(strstr(vz_buf_cstr(&s.log), "no newline at end\n"));
	done(&s);
}

static void test_unknown_ref_is_error(void **state)
{
	fx *f = *state;
	sink s;
	const char *cmds[] = { "true", NULL };
	run(f, &s, "refs/changes/404", cmds, 60, 0);
	assert_string_equal(res(&s), "ERROR");
	assert_non_null(strstr(json_string_value(json_object_get(s.result, "message")), "refs/changes/404"));
	done(&s);
}

static void test_timeout(void **state)
{
	fx *f = *state;
	sink s;
	const char *cmds[] = { "sleep 20", NULL };
	uint64_t t0 = vz_mono_ms();
	run(f, &s, "refs/changes/2", cmds, 1, 0);
	assert_string_equal(res(&s), "TIMED_OUT");
	assert_true(vz_mono_ms() - t0 < 8000);
	done(&s);
}

int main(void)
{
	vz_log_set_level(VZ_LOG_QUIET);
	vz_err e = { 0 };
	vz_workspace_global_init(&e);
	vz_node_global_init(&e);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_success_runs_in_checkout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_stops_at_failing_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_cap_leaves_marker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_and_long_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_ref_is_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	vz_node_global_cleanup();
	vz_workspace_global_cleanup();
	return rc;
}
