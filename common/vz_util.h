/* vz_util: small bounded helpers used everywhere: number parsing without atoi/strtol pitfalls,
 * clocks, ids, files and directories. */
#ifndef VZ_UTIL_H
#define VZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vz_buf.h"
#include "vz_err.h"

/* Parses all of s as a base-10 integer within [min, max]. Returns 0 or VZ_EINVAL (no message). */
int vz_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Monotonic milliseconds (for timeouts), wall-clock milliseconds since the epoch (for records). */
uint64_t vz_mono_ms(void);
int64_t vz_wall_ms(void);

/* Formats wall-clock ms as "2026-11-21T22:01:02.345Z" into out (at least 32 bytes). */
void vz_iso8601(char *out, size_t n, int64_t wall_ms);

/* A random version-4 UUID, lower-case hex with dashes, into out (37 bytes). */
void vz_uuid(char out[37]);

/* Fills buf with n random bytes from the kernel. Returns 0 or VZ_EIO. */
int vz_random(void *buf, size_t n);

/* strdup that aborts on allocation failure (used where failing cannot be reported sensibly). */
char *vz_xstrdup(const char *s);
void *vz_xcalloc(size_t n, size_t size);

/* Copies at most n-1 bytes and always terminates. Returns strlen(src). */
size_t vz_strlcpy(char *dst, const char *src, size_t n);

/* The target of the symlink at path into out (n bytes, NUL-terminated; a longer target is cut
 * as readlink(2) cuts it). 0, or VZ_EIO "cannot read link PATH: REASON". */
int vz_readlink(char *out, size_t n, const char *path, vz_err *e);

/* Length (1 to 4) of the well-formed UTF-8 sequence at p, which has n > 0 bytes; 0 when it is
 * not one (stray continuation byte, overlong form, surrogate, above U+10FFFF, cut short). NUL is
 * a valid 1-byte sequence. */
size_t vz_utf8_len(const char *p, size_t n);

/* Creates path and its parents with mode. Returns 0 or VZ_EIO with a message. */
int vz_mkdir_p(const char *path, mode_t mode, vz_err *e);

/* Removes a directory tree (does not follow symlinks). Returns 0 or VZ_EIO. */
int vz_rm_rf(const char *path, vz_err *e);

/* Reads a whole file into out, failing with VZ_ETOOBIG past max bytes. */
int vz_read_file(const char *path, size_t max, vz_buf *out, vz_err *e);

/* Writes data to path through a temporary file, fsync and rename. */
int vz_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, vz_err *e);

/* Sets O_CLOEXEC / O_NONBLOCK on fd. Returns 0 or -1. */
int vz_fd_cloexec(int fd);
int vz_fd_nonblock(int fd);

/* True when s starts with prefix. */
int vz_startswith(const char *s, const char *prefix);

/* Joins a and b with one '/' into a new string (caller frees). */
char *vz_path_join(const char *a, const char *b);

#endif
