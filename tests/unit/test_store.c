/* vz_store: schema creation and migration, refusing files it cannot use, the statement helpers,
 * transactions, and a database that survives kill -9 in the middle of writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vz_store.h"
#include "vz_testutil.h"
#include "vz_util.h"

static void test_create_and_reopen(void **state)
{
	char *dir = vz_test_tmpdir("vz-store");
	char *db = vz_path_join(dir, "v.db");
	vz_store *st = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_store_open(&st, db, &e), 0);
	assert_int_equal(vz_store_schema_version(st), VZ_STORE_SCHEMA_VERSION);
	json_t *r = vz_store_query(st, &e, "PRAGMA journal_mode", NULL);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "journal_mode")), "wal");
	json_decref(r);
	r = vz_store_query(st, &e, "PRAGMA foreign_keys", NULL);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "foreign_keys")), 1);
	json_decref(r);
	assert_int_equal(vz_store_exec(st, &e, "INSERT INTO trigger_events(uuid, connection, type, payload, received_at)"
					       " VALUES(?,?,?,?,?)", "ssssi", "u1", "c", "t", "{}", (int64_t)1),
			 1);
	vz_store_close(st);
	/* reopening migrates nothing and keeps the data */
	assert_int_equal(vz_store_open(&st, db, &e), 0);
	r = vz_store_query(st, &e, "SELECT uuid FROM trigger_events", NULL);
	assert_int_equal(json_array_size(r), 1);
	json_decref(r);
	assert_int_equal(vz_store_check(st, &e), 0);
	vz_store_close(st);
	vz_test_rm(dir);
	free(db);
	free(dir);
}

static void test_foreign_keys_enforced(void **state)
{
	char *dir = vz_test_tmpdir("vz-store");
	char *db = vz_path_join(dir, "v.db");
	vz_store *st = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_store_open(&st, db, &e), 0);
	int rc = vz_store_exec(st, &e, "INSERT INTO builds(uuid, item_id, job, attempt, attempts, state, changes, created_at)"
				       " VALUES('b', 999, 'j', 1, 3, 'queued', '[]', 0)", NULL);
	assert_int_equal(rc, VZ_EDB);
	assert_non_null(strstr(vz_err_msg(&e), "FOREIGN KEY"));
	vz_store_close(st);
	vz_test_rm(dir);
	free(db);
	free(dir);
}

static void test_newer_schema_refused(void **state)
{
	char *dir = vz_test_tmpdir("vz-store");
	char *db = vz_path_join(dir, "v.db");
	vz_store *st = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_store_open(&st, db, &e), 0);
	assert_true(vz_store_exec(st, &e, "PRAGMA user_version = 99", NULL) >= 0);
	vz_store_close(st);
	assert_int_equal(vz_store_open(&st, db, &e), VZ_EDB);
	assert_null(st);
	assert_non_null(strstr(vz_err_msg(&e), "schema version 99"));
	assert_non_null(strstr(vz_err_msg(&e), "newer"));
	vz_test_rm(dir);
	free(db);
	free(dir);
}

static void test_not_a_database_refused(void **state)
{
	char *dir = vz_test_tmpdir("vz-store");
	vz_test_write(dir, "junk.db", "this is not a database, just text long enough to look like a header...\n");
	char *db = vz_path_join(dir, "junk.db");
	vz_store *st = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_store_open(&st, db, &e), VZ_EDB);
	assert_null(st);
	assert_non_null(strstr(vz_err_msg(&e), db));
	vz_test_rm(dir);
	free(db);
	free(dir);
}

static void test_transactions_nest_and_roll_back(void **state)
{
	char *dir = vz_test_tmpdir("vz-store");
	char *db = vz_path_join(dir, "v.db");
	vz_store *st = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_store_open(&st, db, &e), 0);
	assert_int_equal(vz_store_begin(st, &e), 0);
	assert_int_equal(vz_store_begin(st, &e), 0);
	vz_store_exec(st, &e, "INSERT INTO trigger_events(uuid, connection, type, payload, received_at) VALUES('a','c','t','{}',1)", NULL);
	assert_int_equal(vz_store_commit(st, &e), 0); /* inner: nothing yet */
	vz_store_rollback(st);
	json_t *r = vz_store_query(st, &e, "SELECT COUNT(*) AS n FROM trigger_events", NULL);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "n")), 0);
	json_decref(r);
	/* a unique violation is an error with the database named */
	vz_store_exec(st, &e, "INSERT INTO trigger_events(uuid, connection, type, payload, received_at) VALUES('a','c','t','{}',1)", NULL);
	assert_int_equal(vz_store_exec(st, &e, "INSERT INTO trigger_events(uuid, connection, type, payload, received_at)"
					       " VALUES('a','c','t','{}',1)", NULL),
			 VZ_EDB);
	assert_non_null(strstr(vz_err_msg(&e), "UNIQUE"));
	vz_store_close(st);
	vz_test_rm(dir);
	free(db);
	free(dir);
}

/* A child writes transactions of 50 rows as fast as it can; the parent kills it with SIGKILL at
 * varying moments, ten times. Each time the database must open, pass its integrity check, and
 * hold only whole transactions (a multiple of 50 rows). */
static void test_survives_kill9_during_writes(void **state)
{
	char *dir = vz_test_tmpdir("vz-store");
	char *db = vz_path_join(dir, "v.db");
	long long last = 0;
	for (int round = 0; round < 10; round++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			vz_store *st = NULL;
			vz_err e = { 0 };
			if (vz_store_open(&st, db, &e))
				_exit(3);
			char uuid[37];
			for (int tx = 0; tx < 1000000; tx++) {
				vz_store_begin(st, &e);
				for (int i = 0; i < 50; i++) {
					vz_uuid(uuid);
					vz_store_exec(st, &e, "INSERT INTO trigger_events(uuid, connection, type, payload, received_at)"
							      " VALUES(?,?,?,?,?)", "ssssi", uuid, "c", "t", "{\"x\":1}", (int64_t)tx);
				}
				if (vz_store_commit(st, &e))
					_exit(4);
			}
			_exit(0);
		}
		usleep((useconds_t)(30000 + round * 17000));
		kill(pid, SIGKILL);
		int status = 0;
		waitpid(pid, &status, 0);
		assert_true(WIFSIGNALED(status));
		vz_store *st = NULL;
		vz_err e = { 0 };
		assert_int_equal(vz_store_open(&st, db, &e), 0);
		assert_int_equal(vz_store_check(st, &e), 0);
		json_t *r = vz_store_query(st, &e, "SELECT COUNT(*) AS n FROM trigger_events", NULL);
		long long n = json_integer_value(json_object_get(json_array_get(r, 0), "n"));
		json_decref(r);
		assert_int_equal(n % 50, 0);
		assert_true(n >= last);
		last = n;
		vz_store_close(st);
	}
	assert_true(last > 0);
	vz_test_rm(dir);
	free(db);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_and_reopen),
		cmocka_unit_test(test_foreign_keys_enforced),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_not_a_database_refused),
		cmocka_unit_test(test_transactions_nest_and_roll_back),
		cmocka_unit_test(test_survives_kill9_during_writes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
