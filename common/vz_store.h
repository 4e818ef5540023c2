/* vz_store: the sqlite store of a scheduler: trigger events, queue items, builds and build
 * events. WAL journal, foreign keys, busy timeout, and a schema version (PRAGMA user_version)
 * with forward migrations run at open. Writes are grouped by the caller with vz_store_begin /
 * vz_store_commit so one transaction covers a batch of messages (persist, then acknowledge).
 * A kill -9 at any moment leaves a usable database: sqlite's WAL guarantees it, and every
 * multi-row change happens in one transaction. sqlite errors are translated here only. */
#ifndef VZ_STORE_H
#define VZ_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "vz_err.h"

typedef struct vz_store vz_store;

#define VZ_STORE_SCHEMA_VERSION 1

/* Opens (creating if needed) and migrates the database at path. Fails with VZ_EDB when the file
 * is not a database or its schema is newer than this build knows (message says what to do). */
int vz_store_open(vz_store **out, const char *path, vz_err *e);
void vz_store_close(vz_store *st);

/* Schema version found in the file after migration. */
int vz_store_schema_version(vz_store *st);

/* Explicit transactions (BEGIN IMMEDIATE). Nested calls are counted; only the outermost commits. */
int vz_store_begin(vz_store *st, vz_err *e);
int vz_store_commit(vz_store *st, vz_err *e);
void vz_store_rollback(vz_store *st);

/* Runs a statement with bound parameters. types: one letter per parameter:
 * 's' const char * (NULL binds NULL), 'i' int64_t, 'd' int. Returns rows changed (>= 0) or
 * a negative VZ_EDB. For writes that have no domain function yet and for tests. */
int vz_store_exec(vz_store *st, vz_err *e, const char *sql, const char *types, ...);

/* Runs a query and returns its rows as a JSON array of objects keyed by column name
 * (integers as integers, NULL as null). New reference, or NULL with e set. */
json_t *vz_store_query(vz_store *st, vz_err *e, const char *sql, const char *types, ...);

/* rowid of the last insert on this connection. */
int64_t vz_store_last_id(vz_store *st);

/* Checks the database with PRAGMA quick_check and foreign_key_check; 0 when sound. */
int vz_store_check(vz_store *st, vz_err *e);

#endif
