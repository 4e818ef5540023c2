/* vz_store: sqlite persistence with migrations and a statement cache; see vz_store.h. */
#include "vz_store.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "vz_util.h"

#define STMT_CACHE 64

struct vz_store {
	sqlite3 *db;
	char *path;
	int depth; /* transaction nesting */
	struct {
		const char *sql; /* compared by pointer first, then by content */
		sqlite3_stmt *stmt;
	} cache[STMT_CACHE];
	int ncache;
};

/* Forward migrations: migrations[i] takes the schema from version i to i+1. Never edit a
 * migration that has shipped; add a new one. */
static const char *migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE trigger_events("
	"  id INTEGER PRIMARY KEY,"
	"  uuid TEXT NOT NULL UNIQUE,"
	"  connection TEXT NOT NULL,"
	"  type TEXT NOT NULL,"
	"  payload TEXT NOT NULL,"
	"  received_at INTEGER NOT NULL,"
	"  processed_at INTEGER);"
	"CREATE TABLE queue_items("
	"  id INTEGER PRIMARY KEY,"
	"  uuid TEXT NOT NULL UNIQUE,"
	"  event_id INTEGER REFERENCES trigger_events(id),"
	"  pipeline TEXT NOT NULL,"
	"  project TEXT NOT NULL,"
	"  connection TEXT NOT NULL,"
	"  branch TEXT NOT NULL,"
	"  change_id TEXT NOT NULL,"
	"  ref TEXT NOT NULL,"
	"  commit_id TEXT,"
	"  state TEXT NOT NULL CHECK (state IN ('active','done','dequeued')),"
	"  result TEXT,"
	"  message TEXT,"
	"  enqueued_at INTEGER NOT NULL,"
	"  finished_at INTEGER);"
	"CREATE INDEX queue_items_active ON queue_items(state, pipeline);"
	"CREATE TABLE builds("
	"  id INTEGER PRIMARY KEY,"
	"  uuid TEXT NOT NULL UNIQUE,"
	"  item_id INTEGER NOT NULL REFERENCES queue_items(id),"
	"  job TEXT NOT NULL,"
	"  attempt INTEGER NOT NULL CHECK (attempt >= 1),"
	"  attempts INTEGER NOT NULL,"
	"  voting INTEGER NOT NULL DEFAULT 1,"
	"  state TEXT NOT NULL CHECK (state IN ('queued','running','done')),"
	"  result TEXT,"
	"  message TEXT,"
	"  executor TEXT,"
	"  node TEXT,"
	"  changes TEXT NOT NULL,"
	"  commit_id TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  dispatched_at INTEGER,"
	"  started_at INTEGER,"
	"  ended_at INTEGER,"
	"  log_path TEXT,"
	"  log_size INTEGER);"
	"CREATE INDEX builds_state ON builds(state);"
	"CREATE INDEX builds_item ON builds(item_id);"
	"CREATE TABLE build_events("
	"  id INTEGER PRIMARY KEY,"
	"  build_id INTEGER NOT NULL REFERENCES builds(id),"
	"  ts INTEGER NOT NULL,"
	"  type TEXT NOT NULL,"
	"  data TEXT);"
	"CREATE INDEX build_events_build ON build_events(build_id);",
};
#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* The one place sqlite errors become vz errors. */
static int db_err(vz_store *st, vz_err *e, int rc, const char *what)
{
	const char *msg = st && st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
	return vz_err_set(e, VZ_EDB, "database %s: %s: %s (sqlite %d)%s", st && st->path ? st->path : "?",
			  what, msg, rc,
			  rc == SQLITE_BUSY ? "; another process holds a write lock, retry or stop it"
			  : rc == SQLITE_FULL ? "; the disk is full, free space and restart"
			  : rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB
				  ? "; the file is not a usable vinz database, move it aside to start afresh"
				  : "");
}

static int exec_plain(vz_store *st, const char *sql, vz_err *e)
{
	char *msg = NULL;
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		vz_err_set(e, VZ_EDB, "database %s: %s (running: %.60s...)", st->path, msg ? msg : sqlite3_errstr(rc), sql);
		sqlite3_free(msg);
		return VZ_EDB;
	}
	return 0;
}

static int user_version(vz_store *st, int *out, vz_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return db_err(st, e, rc, "reading the schema version");
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(s);
		return db_err(st, e, rc, "reading the schema version");
	}
	*out = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return 0;
}

static int migrate(vz_store *st, vz_err *e)
{
	int v = 0, rc;
	if ((rc = user_version(st, &v, e)))
		return rc;
	if (v > NMIGRATIONS)
		return vz_err_set(e, VZ_EDB,
				  "database %s has schema version %d, newer than this vinz knows (%d); "
				  "run a newer vinz or restore a backup",
				  st->path, v, NMIGRATIONS);
	for (; v < NMIGRATIONS; v++) {
		if ((rc = exec_plain(st, "BEGIN IMMEDIATE", e)))
			return rc;
		char bump[64];
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v + 1);
		if ((rc = exec_plain(st, migrations[v], e)) || (rc = exec_plain(st, bump, e))) {
			exec_plain(st, "ROLLBACK", NULL);
			vz_err_prefix(e, "migrating schema %d -> %d", v, v + 1);
			return rc;
		}
		if ((rc = exec_plain(st, "COMMIT", e)))
			return rc;
	}
	return 0;
}

int vz_store_open(vz_store **out, const char *path, vz_err *e)
{
	*out = NULL;
	vz_store *st = vz_xcalloc(1, sizeof(*st));
	st->path = vz_xstrdup(path);
	int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = db_err(st, e, rc, "cannot open");
		goto out;
	}
	sqlite3_busy_timeout(st->db, 5000);
	sqlite3_extended_result_codes(st->db, 0);
	/* WAL + synchronous=NORMAL: a commit survives a process crash (kill -9); only an OS crash
	 * can lose the last transactions, never corrupt the file. */
	if ((rc = exec_plain(st, "PRAGMA journal_mode=WAL", e)) ||
	    (rc = exec_plain(st, "PRAGMA synchronous=NORMAL", e)) ||
	    (rc = exec_plain(st, "PRAGMA foreign_keys=ON", e)))
		goto out;
	if ((rc = migrate(st, e)))
		goto out;
	*out = st;
	st = NULL;
out:
	vz_store_close(st);
	return rc;
}

void vz_store_close(vz_store *st)
{
	if (!st)
		return;
	for (int i = 0; i < st->ncache; i++)
		sqlite3_finalize(st->cache[i].stmt);
	if (st->db)
		sqlite3_close(st->db);
	free(st->path);
	free(st);
}

int vz_store_schema_version(vz_store *st)
{
	int v = -1;
	user_version(st, &v, NULL);
	return v;
}

int vz_store_begin(vz_store *st, vz_err *e)
{
	if (st->depth++ > 0)
		return 0;
	int rc = exec_plain(st, "BEGIN IMMEDIATE", e);
	if (rc)
		st->depth = 0;
	return rc;
}

int vz_store_commit(vz_store *st, vz_err *e)
{
	if (st->depth == 0)
		return 0;
	if (--st->depth > 0)
		return 0;
	return exec_plain(st, "COMMIT", e);
}

void vz_store_rollback(vz_store *st)
{
	if (st->depth == 0)
		return;
	st->depth = 0;
	exec_plain(st, "ROLLBACK", NULL);
}

static int prepare(vz_store *st, const char *sql, sqlite3_stmt **out, vz_err *e)
{
	for (int i = 0; i < st->ncache; i++) {
		if (st->cache[i].sql == sql || strcmp(st->cache[i].sql, sql) == 0) {
			sqlite3_reset(st->cache[i].stmt);
			sqlite3_clear_bindings(st->cache[i].stmt);
			*out = st->cache[i].stmt;
			return 0;
		}
	}
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return db_err(st, e, rc, "preparing a statement");
	if (st->ncache < STMT_CACHE) {
		/* cached statements live as long as the store; sql must be a string literal */
		st->cache[st->ncache].sql = sql;
		st->cache[st->ncache].stmt = s;
		st->ncache++;
	} else {
		/* cache full: evict the oldest */
		sqlite3_finalize(st->cache[0].stmt);
		memmove(&st->cache[0], &st->cache[1], sizeof(st->cache[0]) * (STMT_CACHE - 1));
		st->cache[STMT_CACHE - 1].sql = sql;
		st->cache[STMT_CACHE - 1].stmt = s;
	}
	*out = s;
	return 0;
}

static int bind_all(vz_store *st, sqlite3_stmt *s, const char *types, va_list ap, vz_err *e)
{
	for (int i = 0; types && types[i]; i++) {
		int rc;
		switch (types[i]) {
		case 's': {
			const char *v = va_arg(ap, const char *);
			rc = v ? sqlite3_bind_text(s, i + 1, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i + 1);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
			break;
		case 'd':
			rc = sqlite3_bind_int(s, i + 1, va_arg(ap, int));
			break;
		default:
			return vz_err_set(e, VZ_EINVAL, "vz_store: bad parameter type '%c'", types[i]);
		}
		if (rc != SQLITE_OK)
			return db_err(st, e, rc, "binding a parameter");
	}
	return 0;
}

int vz_store_exec(vz_store *st, vz_err *e, const char *sql, const char *types, ...)
{
	sqlite3_stmt *s = NULL;
	int rc = prepare(st, sql, &s, e);
	if (rc)
		return rc;
	va_list ap;
	va_start(ap, types);
	rc = bind_all(st, s, types, ap, e);
	va_end(ap);
	if (rc)
		return rc;
	for (;;) {
		int r = sqlite3_step(s);
		if (r == SQLITE_ROW)
			continue;
		if (r == SQLITE_DONE)
			break;
		rc = db_err(st, e, r, "writing");
		sqlite3_reset(s);
		return rc;
	}
	sqlite3_reset(s);
	return sqlite3_changes(st->db);
}

json_t *vz_store_query(vz_store *st, vz_err *e, const char *sql, const char *types, ...)
{
	sqlite3_stmt *s = NULL;
	if (prepare(st, sql, &s, e))
		return NULL;
	va_list ap;
	va_start(ap, types);
	int rc = bind_all(st, s, types, ap, e);
	va_end(ap);
	if (rc)
		return NULL;
	json_t *rows = json_array();
	int ncol = sqlite3_column_count(s);
	for (;;) {
		int r = sqlite3_step(s);
		if (r == SQLITE_DONE)
			break;
		if (r != SQLITE_ROW) {
			db_err(st, e, r, "reading");
			json_decref(rows);
			sqlite3_reset(s);
			return NULL;
		}
		json_t *row = json_object();
		for (int c = 0; c < ncol; c++) {
			json_t *v;
			switch (sqlite3_column_type(s, c)) {
			case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(s, c)); break;
			case SQLITE_FLOAT: v = json_real(sqlite3_column_double(s, c)); break;
			case SQLITE_NULL: v = json_null(); break;
			default: {
				const char *t = (const char *)sqlite3_column_text(s, c);
				v = json_stringn(t ? t : "", (size_t)sqlite3_column_bytes(s, c));
				if (!v) /* not UTF-8: keep the row readable */
					v = json_string("(invalid UTF-8)");
			}
			}
			json_object_set_new(row, sqlite3_column_name(s, c), v);
		}
		json_array_append_new(rows, row);
	}
	sqlite3_reset(s);
	return rows;
}

int64_t vz_store_last_id(vz_store *st)
{
	return sqlite3_last_insert_rowid(st->db);
}

int vz_store_check(vz_store *st, vz_err *e)
{
	json_t *r = vz_store_query(st, e, "PRAGMA quick_check", NULL);
	if (!r)
		return VZ_EDB;
	int rc = 0;
	const char *v = json_string_value(json_object_get(json_array_get(r, 0), "quick_check"));
	if (!v || strcmp(v, "ok") != 0)
		rc = vz_err_set(e, VZ_EDB, "database %s failed its integrity check: %s", st->path, v ? v : "?");
	json_decref(r);
	if (rc)
		return rc;
	r = vz_store_query(st, e, "PRAGMA foreign_key_check", NULL);
	if (!r)
		return VZ_EDB;
	if (json_array_size(r) > 0)
		rc = vz_err_set(e, VZ_EDB, "database %s has %zu rows with broken references", st->path, json_array_size(r));
	json_decref(r);
	return rc;
}
