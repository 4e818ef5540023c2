/* Test helpers shared by unit, integration and bench programs: temp dirs, files, and git
 * repositories with changes, made with libgit2 (no git process). */
#ifndef VZ_TESTUTIL_H
#define VZ_TESTUTIL_H

#include <stddef.h>

/* mkdtemp under $TMPDIR or /tmp with the given prefix; returns a new string (caller frees). */
char *vz_test_tmpdir(const char *prefix);
/* Writes a file, creating parent directories; aborts the test program on failure. */
void vz_test_write(const char *dir, const char *rel, const char *content);
/* Removes a tree. */
void vz_test_rm(const char *path);

/* Creates a bare repository at path with branch master (one commit with file "README") and, for
 * i in 1..nchanges, ref refs/changes/i: a commit on top of master that adds "change-i" whose content
 * is contents[i-1] (or "i\n" when contents is NULL). Aborts on failure. */
void vz_test_git_repo(const char *path, int nchanges, const char *const *contents);

struct vz_buf;
/* Runs a shell command (printf-style) with /bin/sh; its stdout goes into out (reset first) when out
 * is non-NULL, else it is discarded, and stderr is discarded. Returns the exit code (-1 when killed).
 * Aborts when the command cannot be started. */
int vz_test_sh(struct vz_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The stdout of a shell command (printf-style) as a new string, trailing newlines removed; the
 * command must exit 0, else the program aborts with the command in the message. */
char *vz_test_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Truncates every pack file under gitdir/objects/pack to 40 bytes (a damaged cache); returns
 * how many there were. */
int vz_test_truncate_packs(const char *gitdir);
/* The first line of out as a 40-hex id into id (41 bytes); "" when it is not one. */
void vz_test_first_id(const struct vz_buf *out, char id[41]);

/* Polls cond(ctx) every 20 ms for at most timeout_ms; returns 1 when it became true. */
int vz_test_wait(int (*cond)(void *), void *ctx, int timeout_ms);

#endif
