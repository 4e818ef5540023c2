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

/* Zuul's StartingBuildsSensor (zuul/executor/sensors/startingbuilds.py): starting <
 * max(max_starting - running, min_starting), max_starting defaulting to
 * load_multiplier x CPUs x (2 when CPUs <= 4, else 1), min_starting = max(CPUs / 2, 1). */
static void test_starting_builds(void **state)
{
	(void)state;
	static const struct {
		long starting, running, cfg;
		double mult;
		long ncpu;
		int ok;
	} cases[] = {
		{ 0, 0, 0, 0, 2, 1 },    /* default max 2.5 x 2 x 2 = 10 */
		{ 9, 9, 0, 0, 2, 0 },    /* limit max(10 - 9, 1) = 1: 9 starting is too many */
		{ 0, 9, 0, 0, 2, 1 },    /* ...but 0 starting may start one */
		{ 1, 9, 0, 0, 2, 0 },
		{ 4, 5, 0, 0, 2, 1 },    /* limit 10 - 5 = 5 */
		{ 5, 5, 0, 0, 2, 0 },
		{ 0, 0, 1, 0, 2, 1 },    /* configured 1 */
		{ 1, 1, 1, 0, 2, 0 },
		{ 7, 20, 0, 1, 16, 1 },  /* 16 CPUs: max 16, min 8, limit max(16 - 20, 8) = 8... */
		{ 8, 20, 0, 1, 16, 0 },  /* ...so 8 starting is the limit */
		{ 0, 0, 0, 0.1, 1, 1 },  /* Zuul's formula gives max int(0.2) = 0 and never starts a
					  * build; vinz keeps max_starting at least 1 */
		{ 1, 0, 0, 0.1, 1, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char why[200] = "x";
		int ok = vz_governor_starting_ok(cases[i].starting, cases[i].running, cases[i].cfg, cases[i].mult,
						 cases[i].ncpu, why, sizeof(why));
		if (ok != cases[i].ok)
			fail_msg("case %zu: got %d, want %d (%s)", i, ok, cases[i].ok, why);
		if (!ok)
			assert_non_null(strstr(why, "builds are starting"));
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
		cmocka_unit_test(test_starting_builds),
		cmocka_unit_test(test_sample),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
