/* vz_buf: the growable byte buffer every piece of untrusted or unbounded data goes through
 * (node output, logs, protocol frames, HTTP bodies). Each buffer has a maximum fixed at init;
 * an append past it or a failed allocation marks the buffer failed, so a run of appends needs
 * one check at the end. The contents are always NUL-terminated. */
#ifndef VZ_BUF_H
#define VZ_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct vz_buf {
	char *ptr;    /* NULL until the first append; then NUL-terminated */
	size_t len;   /* bytes used, not counting the NUL */
	size_t alloc; /* bytes allocated */
	size_t max;   /* the cap on len */
	int failed;   /* 0, VZ_ETOOBIG or VZ_ENOMEM: the first failure */
} vz_buf;

#define VZ_BUF_INIT(m) { NULL, 0, 0, (m), 0 }

void vz_buf_init(vz_buf *b, size_t max);

/* Appends n bytes. Returns 0, or VZ_ETOOBIG (nothing appended) / VZ_ENOMEM, and marks b failed.
 * Once failed, every later append fails with the same code. */
int vz_buf_add(vz_buf *b, const void *p, size_t n);
int vz_buf_puts(vz_buf *b, const char *s);
int vz_buf_putc(vz_buf *b, char c);
int vz_buf_printf(vz_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vz_buf_vprintf(vz_buf *b, const char *fmt, va_list ap);

/* Appends as much of p as fits under the cap; returns the number of bytes dropped (0 if none).
 * Does not mark the buffer failed: for capped logs that keep a marker instead. */
size_t vz_buf_add_capped(vz_buf *b, const void *p, size_t n);

/* Makes room for n bytes in total (capped at max) without changing the contents. 0 or VZ_ENOMEM. */
int vz_buf_reserve(vz_buf *b, size_t n);

/* Removes the first n bytes (n > len empties it). */
void vz_buf_consume(vz_buf *b, size_t n);

/* Contents as a C string, "" when empty. Borrowed: valid until the next change to b. */
const char *vz_buf_cstr(const vz_buf *b);

/* Empties b and clears the failed mark, keeping memory. */
void vz_buf_reset(vz_buf *b);

/* Frees memory; b can be reused after vz_buf_init. Accepts NULL. */
void vz_buf_free(vz_buf *b);

/* Hands the contents to the caller (free() it) and empties b. Never NULL unless out of memory. */
char *vz_buf_detach(vz_buf *b);

#endif
