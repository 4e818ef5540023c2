/* vz_buf: capped growable buffer; see vz_buf.h. */
#include "vz_buf.h"
#include "vz_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vz_buf_init(vz_buf *b, size_t max)
{
	b->ptr = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
	b->failed = 0;
}

static int grow(vz_buf *b, size_t need)
{
	if (need + 1 <= b->alloc)
		return 0;
	size_t a = b->alloc ? b->alloc : 64;
	while (a < need + 1) {
		if (a > ((size_t)-1) / 2) {
			b->failed = VZ_ENOMEM;
			return VZ_ENOMEM;
		}
		a *= 2;
	}
	if (a > b->max + 1 && need + 1 <= b->max + 1)
		a = b->max + 1;
	char *p = realloc(b->ptr, a);
	if (!p) {
		b->failed = VZ_ENOMEM;
		return VZ_ENOMEM;
	}
	b->ptr = p;
	b->alloc = a;
	return 0;
}

int vz_buf_add(vz_buf *b, const void *p, size_t n)
{
	if (b->failed)
		return b->failed;
	if (n > b->max || b->len > b->max - n) {
		b->failed = VZ_ETOOBIG;
		return VZ_ETOOBIG;
	}
	if (grow(b, b->len + n))
		return b->failed;
	if (n)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
	b->ptr[b->len] = '\0';
	return 0;
}

size_t vz_buf_add_capped(vz_buf *b, const void *p, size_t n)
{
	if (b->failed)
		return n;
	size_t room = b->max > b->len ? b->max - b->len : 0;
	size_t take = n < room ? n : room;
	if (take && vz_buf_add(b, p, take))
		return n;
	return n - take;
}

int vz_buf_puts(vz_buf *b, const char *s)
{
	return vz_buf_add(b, s, strlen(s));
}

int vz_buf_putc(vz_buf *b, char c)
{
	return vz_buf_add(b, &c, 1);
}

int vz_buf_vprintf(vz_buf *b, const char *fmt, va_list ap)
{
	if (b->failed)
		return b->failed;
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0) {
		b->failed = VZ_ERROR;
		return VZ_ERROR;
	}
	if ((size_t)n > b->max || b->len > b->max - (size_t)n) {
		b->failed = VZ_ETOOBIG;
		return VZ_ETOOBIG;
	}
	if (grow(b, b->len + (size_t)n))
		return b->failed;
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int vz_buf_printf(vz_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vz_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

int vz_buf_reserve(vz_buf *b, size_t n)
{
	if (n > b->max)
		n = b->max;
	if (n + 1 <= b->alloc)
		return 0;
	char *p = realloc(b->ptr, n + 1);
	if (!p)
		return VZ_ENOMEM;
	if (!b->ptr)
		p[0] = '\0';
	b->ptr = p;
	b->alloc = n + 1;
	return 0;
}

void vz_buf_consume(vz_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		if (b->ptr)
			b->ptr[0] = '\0';
		return;
	}
	memmove(b->ptr, b->ptr + n, b->len - n);
	b->len -= n;
	b->ptr[b->len] = '\0';
}

const char *vz_buf_cstr(const vz_buf *b)
{
	return b->ptr ? b->ptr : "";
}

void vz_buf_reset(vz_buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

void vz_buf_free(vz_buf *b)
{
	if (!b)
		return;
	free(b->ptr);
	b->ptr = NULL;
	b->len = b->alloc = 0;
	b->failed = 0;
}

char *vz_buf_detach(vz_buf *b)
{
	char *p = b->ptr ? b->ptr : strdup("");
	b->ptr = NULL;
	b->len = b->alloc = 0;
	b->failed = 0;
	return p;
}
