/* vz_redact: secret values out of log text; see vz_redact.h. */
#include "vz_redact.h"

#include "vz_err.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

typedef struct pattern {
	char *s;
	size_t n;
} pattern;

struct vz_redactor {
	pattern *v;
	size_t n, cap;
	int sorted;
	/* by first byte: indices into v (sorted longest first) */
	size_t first[257];
};

vz_redactor *vz_redactor_new(const json_t *values)
{
	vz_redactor *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	/* walk values iteratively with an explicit stack: decrypted data is user-shaped */
	json_t *stack = json_array();
	if (!stack) {
		free(r);
		return NULL;
	}
	int rc = 0;
	if (values)
		rc = json_array_append(stack, (json_t *)values);
	size_t guard = 0;
	while (!rc && json_array_size(stack) > 0 && guard++ < 10000000) {
		json_t *v = json_incref(json_array_get(stack, json_array_size(stack) - 1));
		json_array_remove(stack, json_array_size(stack) - 1);
		if (json_is_string(v)) {
			rc = vz_redactor_add(r, json_string_value(v), json_string_length(v));
		} else if (json_is_array(v)) {
			size_t i;
			json_t *x;
			json_array_foreach(v, i, x) if (json_array_append(stack, x)) rc = VZ_ENOMEM;
		} else if (json_is_object(v)) {
			const char *key;
			json_t *x;
			json_object_foreach(v, key, x) if (json_array_append(stack, x)) rc = VZ_ENOMEM;
		}
		json_decref(v);
	}
	json_decref(stack);
	if (rc) {
		vz_redactor_free(r);
		return NULL;
	}
	return r;
}

static int by_first_then_longest(const void *a, const void *b)
{
	const pattern *x = a, *y = b;
	unsigned char cx = (unsigned char)x->s[0], cy = (unsigned char)y->s[0];
	if (cx != cy)
		return cx < cy ? -1 : 1;
	return x->n > y->n ? -1 : x->n < y->n ? 1 : 0;
}

/* Kept sorted on every addition, so redacting only reads the redactor (it may be shared). */
static void prepare(vz_redactor *r)
{
	if (r->sorted)
		return;
	qsort(r->v, r->n, sizeof(*r->v), by_first_then_longest);
	size_t i = 0;
	for (int c = 0; c < 256; c++) {
		r->first[c] = i;
		while (i < r->n && (unsigned char)r->v[i].s[0] == c)
			i++;
	}
	r->first[256] = r->n;
	r->sorted = 1;
}

static int add_piece(vz_redactor *r, const char *p, size_t n)
{
	while (n && (p[0] == ' ' || p[0] == '\t'))
		p++, n--;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
		n--;
	if (n < VZ_REDACT_MIN)
		return 0;
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].n == n && memcmp(r->v[i].s, p, n) == 0)
			return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		pattern *nv = realloc(r->v, cap * sizeof(*nv));
		if (!nv)
			return VZ_ENOMEM;
		r->v = nv;
		r->cap = cap;
	}
	char *s = malloc(n + 1);
	if (!s)
		return VZ_ENOMEM;
	memcpy(s, p, n);
	s[n] = 0;
	r->v[r->n].s = s;
	r->v[r->n].n = n;
	r->n++;
	r->sorted = 0;
	prepare(r);
	return 0;
}

int vz_redactor_add(vz_redactor *r, const char *value, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || value[i] == '\n') {
			int rc = add_piece(r, value + start, i - start);
			if (rc)
				return rc;
			start = i + 1;
		}
	}
	return 0;
}

size_t vz_redactor_count(const vz_redactor *r)
{
	return r ? r->n : 0;
}

void vz_redactor_free(vz_redactor *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		OPENSSL_cleanse(r->v[i].s, r->v[i].n);
		free(r->v[i].s);
	}
	free(r->v);
	free(r);
}

long vz_redact(vz_buf *out, const vz_redactor *cr, const char *text, size_t len)
{
	if (!cr || cr->n == 0) {
		vz_buf_add(out, text, len);
		return out->failed ? out->failed : 0;
	}
	const vz_redactor *r = cr;
	long count = 0;
	size_t i = 0, plain = 0;
	while (i < len) {
		unsigned char c = (unsigned char)text[i];
		size_t hit = 0;
		for (size_t k = r->first[c]; k < r->first[c + 1]; k++) {
			const pattern *p = &r->v[k];
			if (p->n <= len - i && memcmp(text + i, p->s, p->n) == 0) {
				hit = p->n; /* longest first */
				break;
			}
		}
		if (hit) {
			vz_buf_add(out, text + plain, i - plain);
			vz_buf_puts(out, VZ_REDACT_MARK);
			count++;
			i += hit;
			plain = i;
		} else {
			i++;
		}
	}
	vz_buf_add(out, text + plain, len - plain);
	return out->failed ? out->failed : count;
}

long vz_redact_json(const vz_redactor *r, json_t *v)
{
	if (!r || r->n == 0 || !v)
		return 0;
	long count = 0;
	/* iteratively: build output is user-shaped and may nest deeply */
	json_t *stack = json_array();
	json_array_append(stack, v);
	for (size_t guard = 0; json_array_size(stack) > 0 && guard < 10000000; guard++) {
		json_t *x = json_incref(json_array_get(stack, json_array_size(stack) - 1));
		json_array_remove(stack, json_array_size(stack) - 1);
		if (json_is_array(x)) {
			size_t i;
			json_t *y;
			json_array_foreach(x, i, y) {
				if (json_is_string(y)) {
					vz_buf b = VZ_BUF_INIT(json_string_length(y) * 3 + 64);
					long c = vz_redact(&b, r, json_string_value(y), json_string_length(y));
					if (c > 0) {
						json_array_set_new(x, i, json_stringn(b.ptr, b.len));
						count += c;
					}
					vz_buf_free(&b);
				} else if (json_is_array(y) || json_is_object(y)) {
					json_array_append(stack, y);
				}
			}
		} else if (json_is_object(x)) {
			const char *k;
			json_t *y;
			json_object_foreach(x, k, y) {
				if (json_is_string(y)) {
					vz_buf b = VZ_BUF_INIT(json_string_length(y) * 3 + 64);
					long c = vz_redact(&b, r, json_string_value(y), json_string_length(y));
					if (c > 0) {
						json_object_set_new(x, k, json_stringn(b.ptr, b.len));
						count += c;
					}
					vz_buf_free(&b);
				} else if (json_is_array(y) || json_is_object(y)) {
					json_array_append(stack, y);
				}
			}
		}
		json_decref(x);
	}
	json_decref(stack);
	return count;
}
