/* vz_map: open-addressing string map with tombstones; see vz_map.h. */
#include "vz_map.h"
#include "vz_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOMB ((char *)&tomb_marker)
static char tomb_marker;

struct vz_map {
	char **keys;
	void **vals;
	size_t cap, len, used; /* used counts live + tombstones */
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

vz_map *vz_map_new(void)
{
	return calloc(1, sizeof(vz_map));
}

void vz_map_free(vz_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i] && m->keys[i] != TOMB)
			free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	free(m);
}

static size_t find(const vz_map *m, const char *key, int *found)
{
	size_t mask = m->cap - 1, i = (size_t)hash(key) & mask, tomb = (size_t)-1;
	for (;;) {
		char *k = m->keys[i];
		if (!k) {
			*found = 0;
			return tomb != (size_t)-1 ? tomb : i;
		}
		if (k == TOMB) {
			if (tomb == (size_t)-1)
				tomb = i;
		} else if (strcmp(k, key) == 0) {
			*found = 1;
			return i;
		}
		i = (i + 1) & mask;
	}
}

static int resize(vz_map *m, size_t cap)
{
	char **ok = m->keys;
	void **ov = m->vals;
	size_t ocap = m->cap;
	m->keys = calloc(cap, sizeof(char *));
	m->vals = calloc(cap, sizeof(void *));
	if (!m->keys || !m->vals) {
		free(m->keys);
		free(m->vals);
		m->keys = ok;
		m->vals = ov;
		return VZ_ENOMEM;
	}
	m->cap = cap;
	m->used = m->len;
	for (size_t i = 0; i < ocap; i++) {
		if (!ok[i] || ok[i] == TOMB)
			continue;
		int f;
		size_t j = find(m, ok[i], &f);
		m->keys[j] = ok[i];
		m->vals[j] = ov[i];
	}
	free(ok);
	free(ov);
	return 0;
}

int vz_map_set(vz_map *m, const char *key, void *val)
{
	if ((m->used + 1) * 4 >= m->cap * 3) {
		size_t ncap = m->cap ? m->cap : 16;
		while ((m->len + 1) * 2 >= ncap)
			ncap *= 2;
		if (resize(m, ncap))
			return VZ_ENOMEM;
	}
	int f;
	size_t i = find(m, key, &f);
	if (f) {
		m->vals[i] = val;
		return 0;
	}
	char *k = strdup(key);
	if (!k)
		return VZ_ENOMEM;
	if (m->keys[i] != TOMB)
		m->used++;
	m->keys[i] = k;
	m->vals[i] = val;
	m->len++;
	return 0;
}

void *vz_map_get(const vz_map *m, const char *key)
{
	if (!m->cap)
		return NULL;
	int f;
	size_t i = find(m, key, &f);
	return f ? m->vals[i] : NULL;
}

void *vz_map_del(vz_map *m, const char *key)
{
	if (!m->cap)
		return NULL;
	int f;
	size_t i = find(m, key, &f);
	if (!f)
		return NULL;
	void *v = m->vals[i];
	free(m->keys[i]);
	m->keys[i] = TOMB;
	m->vals[i] = NULL;
	m->len--;
	return v;
}

size_t vz_map_len(const vz_map *m)
{
	return m->len;
}

int vz_map_next(const vz_map *m, size_t *it, const char **key, void **val)
{
	for (; *it < m->cap; (*it)++) {
		char *k = m->keys[*it];
		if (k && k != TOMB) {
			*key = k;
			*val = m->vals[*it];
			(*it)++;
			return 1;
		}
	}
	return 0;
}
