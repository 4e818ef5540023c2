/* vz_buf, vz_util, vz_err, vz_map: caps, failure marks, bounded parsing, set-once errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_buf.h"
#include "vz_err.h"
#include "vz_map.h"
#include "vz_testutil.h"
#include "vz_util.h"

static void test_buf_cap_and_failed_mark(void **state)
{
	vz_buf b = VZ_BUF_INIT(8);
	assert_int_equal(vz_buf_puts(&b, "abcd"), 0);
	assert_int_equal(vz_buf_puts(&b, "efgh"), 0);
	assert_string_equal(vz_buf_cstr(&b), "abcdefgh");
	assert_int_equal(vz_buf_putc(&b, 'i'), VZ_ETOOBIG);
	assert_int_equal(b.failed, VZ_ETOOBIG);
	/* once failed, every append fails: one check after a run of appends is enough */
	assert_int_equal(vz_buf_puts(&b, ""), VZ_ETOOBIG);
	assert_int_equal(b.len, 8);
	vz_buf_reset(&b);
	assert_int_equal(vz_buf_printf(&b, "%d-%s", 12, "ab"), 0);
	assert_string_equal(vz_buf_cstr(&b), "12-ab");
	assert_int_equal(vz_buf_printf(&b, "%s", "toolong"), VZ_ETOOBIG);
	vz_buf_free(&b);
}

static void test_buf_capped_and_consume(void **state)
{
	vz_buf b = VZ_BUF_INIT(5);
	assert_int_equal(vz_buf_add_capped(&b, "abcdefg", 7), 2);
	assert_string_equal(vz_buf_cstr(&b), "abcde");
	assert_int_equal(b.failed, 0);
	vz_buf_consume(&b, 2);
	assert_string_equal(vz_buf_cstr(&b), "cde");
	vz_buf_consume(&b, 99);
	assert_int_equal(b.len, 0);
	char *d = vz_buf_detach(&b);
	assert_string_equal(d, "");
	free(d);
	vz_buf_free(NULL);
}

static void test_buf_binary(void **state)
{
	vz_buf b = VZ_BUF_INIT(1 << 20);
	char bin[256];
	for (int i = 0; i < 256; i++)
		bin[i] = (char)i;
	for (int i = 0; i < 100; i++)
		assert_int_equal(vz_buf_add(&b, bin, sizeof(bin)), 0);
	assert_int_equal(b.len, 25600);
	assert_memory_equal(b.ptr + 256 * 50, bin, 256);
	vz_buf_free(&b);
}

static void test_parse_i64_table(void **state)
{
	static const struct {
		const char *in;
		int64_t min, max;
		int rc;
		int64_t want;
	} cases[] = {
		{ "0", 0, 10, 0, 0 },
		{ "10", 0, 10, 0, 10 },
		{ "11", 0, 10, VZ_EINVAL, 0 },
		{ "-5", -10, 10, 0, -5 },
		{ "+7", 0, 10, 0, 7 },
		{ "", 0, 10, VZ_EINVAL, 0 },
		{ "-", -10, 10, VZ_EINVAL, 0 },
		{ "12a", 0, 100, VZ_EINVAL, 0 },
		{ " 1", 0, 10, VZ_EINVAL, 0 },
		{ "9223372036854775807", 0, INT64_MAX, 0, INT64_MAX },
		{ "9223372036854775808", 0, INT64_MAX, VZ_EINVAL, 0 },
		{ "-9223372036854775808", INT64_MIN, 0, 0, INT64_MIN },
		{ "99999999999999999999999", 0, INT64_MAX, VZ_EINVAL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = -42;
		int rc = vz_parse_i64(cases[i].in, cases[i].min, cases[i].max, &v);
		if (rc != cases[i].rc)
			fail_msg("vz_parse_i64(\"%s\") returned %d, want %d", cases[i].in, rc, cases[i].rc);
		if (rc == 0)
			assert_true(v == cases[i].want);
	}
}

static void test_err_set_once_and_prefix(void **state)
{
	vz_err e = { 0 };
	assert_int_equal(vz_err_set(&e, VZ_ETIMEOUT, "node %s timed out", "n1"), VZ_ETIMEOUT);
	assert_int_equal(vz_err_set(&e, VZ_EIO, "outer failure"), VZ_EIO);
	assert_int_equal(e.code, VZ_ETIMEOUT);
	assert_string_equal(vz_err_msg(&e), "node n1 timed out");
	vz_err_prefix(&e, "build %d", 7);
	assert_string_equal(vz_err_msg(&e), "build 7: node n1 timed out");
	assert_string_equal(vz_err_name(VZ_EHOSTKEY), "EHOSTKEY");
	assert_int_equal(vz_err_set(NULL, VZ_EIO, "x"), VZ_EIO);
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vz_err_clear(&e);
	vz_err_set(&e, VZ_EIO, "%s", big);
	vz_err_prefix(&e, "ctx");
	assert_true(strlen(e.msg) < VZ_ERR_MSG_MAX);
	assert_true(vz_startswith(e.msg, "ctx: xxx"));
}

static void test_uuid_and_iso(void **state)
{
	char a[37], b[37];
	vz_uuid(a);
	vz_uuid(b);
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[14], '4');
	assert_string_not_equal(a, b);
	char ts[40];
	vz_iso8601(ts, sizeof(ts), 1763762462345LL);
	assert_string_equal(ts, "2025-11-21T22:01:02.345Z");
}

static void test_map(void **state)
{
	vz_map *m = vz_map_new();
	char keys[2000][16];
	for (int i = 0; i < 2000; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		assert_int_equal(vz_map_set(m, keys[i], keys[i]), 0);
	}
	assert_int_equal(vz_map_len(m), 2000);
	for (int i = 0; i < 2000; i += 2)
		assert_ptr_equal(vz_map_del(m, keys[i]), keys[i]);
	assert_int_equal(vz_map_len(m), 1000);
	for (int i = 0; i < 2000; i++)
		assert_ptr_equal(vz_map_get(m, keys[i]), i % 2 ? keys[i] : NULL);
	size_t it = 0, n = 0;
	const char *k;
	void *v;
	while (vz_map_next(m, &it, &k, &v)) {
		assert_string_equal(k, (char *)v);
		n++;
	}
	assert_int_equal(n, 1000);
	/* tombstones are reused: churn does not grow without bound */
	for (int r = 0; r < 50; r++)
		for (int i = 0; i < 2000; i += 2) {
			vz_map_set(m, keys[i], keys[i]);
			vz_map_del(m, keys[i]);
		}
	assert_int_equal(vz_map_len(m), 1000);
	vz_map_free(m);
	vz_map_free(NULL);
}

static void test_files(void **state)
{
	char *dir = vz_test_tmpdir("vz-util");
	char *p = vz_path_join(dir, "a/b/c");
	vz_err e = { 0 };
	assert_int_equal(vz_mkdir_p(p, 0755, &e), 0);
	char *f = vz_path_join(p, "f.txt");
	assert_int_equal(vz_write_file_atomic(f, "hello", 5, 0600, &e), 0);
	vz_buf b = VZ_BUF_INIT(4);
	assert_int_equal(vz_read_file(f, 4, &b, &e), VZ_ETOOBIG);
	assert_non_null(strstr(vz_err_msg(&e), "f.txt"));
	vz_buf_free(&b);
	vz_err_clear(&e);
	vz_buf b2 = VZ_BUF_INIT(100);
	assert_int_equal(vz_read_file(f, 100, &b2, &e), 0);
	assert_string_equal(vz_buf_cstr(&b2), "hello");
	vz_buf_free(&b2);
	assert_int_equal(vz_read_file("/nonexistent/x", 100, &b2, &e), VZ_ENOTFOUND);
	char *j = vz_path_join("/a//", "/b");
	assert_string_equal(j, "/a/b");
	free(j);
	assert_int_equal(vz_rm_rf(dir, &e), 0);
	free(f);
	free(p);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_cap_and_failed_mark), cmocka_unit_test(test_buf_capped_and_consume),
		cmocka_unit_test(test_buf_binary),              cmocka_unit_test(test_parse_i64_table),
		cmocka_unit_test(test_err_set_once_and_prefix), cmocka_unit_test(test_uuid_and_iso),
		cmocka_unit_test(test_map),                     cmocka_unit_test(test_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
