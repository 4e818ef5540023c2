/* vz_governor: the decision from a sample (table-driven) and a real sample's sanity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "vz_governor.h"

static void test_decisions(void **state)
{
	(void)state;
	static const struct {
		vz_governor_limits l;
		vz_governor_sample s;
		int ok;
		const char *why; /* part of the reason */
	} cases[] = {
		{ { 0, 0, 0 }, { 99, 2, 0, 0 }, 1, "" },                     /* no limits: anything goes */
		{ { 2.5, 5, 5 }, { 4.9, 2, 50, 50 }, 1, "" },                /* load under 2.5 x 2 */
		{ { 2.5, 5, 5 }, { 5.1, 2, 50, 50 }, 0, "load average 5.10" },
		{ { 2.5, 5, 5 }, { 1, 2, 4.9, 50 }, 0, "4.9% of memory" },
		{ { 2.5, 5, 5 }, { 1, 2, 50, 4.9 }, 0, "4.9% of the work dir" },
		{ { 0, 5, 5 }, { 1000, 1, 5, 5 }, 1, "" },                   /* at the limit is fine */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char why[200] = "x";
		assert_int_equal(vz_governor_ok(&cases[i].l, &cases[i].s, why, sizeof(why)), cases[i].ok);
		if (cases[i].ok)
			assert_string_equal(why, "");
		else
			assert_non_null(strstr(why, cases[i].why));
	}
}

static void test_sample(void **state)
{
	(void)state;
	vz_governor_sample s;
	vz_governor_sample_now(&s, "/");
	assert_true(s.ncpu >= 1);
	assert_true(s.load1 >= 0);
	assert_true(s.mem_avail_pct > 0 && s.mem_avail_pct <= 100);
	assert_true(s.disk_avail_pct >= 0 && s.disk_avail_pct <= 100);
	/* an unreadable path reads as fine */
	vz_governor_sample_now(&s, "/nonexistent/dir");
	assert_true(s.disk_avail_pct == 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decisions),
		cmocka_unit_test(test_sample),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
