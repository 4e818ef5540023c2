/* vz_zconf_rx: Zuul's regexes (Python `re`) on POSIX <regex.h>. Patterns are translated to
 * extended regular expressions where Python and POSIX differ in spelling (\d, \w, \s and their
 * negations, escapes inside brackets) and refused where POSIX has no equivalent ((?...) groups,
 * look-around, backreferences); a match is Python's re.match: anchored at the start only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_buf.h"
#include "vz_err.h"
#include "vz_map.h"
#include "vz_zconf_int.h"

int zc_vec_push(zc_vec *a, void *p)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 8;
		void **nv = realloc(a->v, nc * sizeof(*nv));
		if (!nv)
			return VZ_ENOMEM;
		a->v = nv;
		a->cap = nc;
	}
	a->v[a->n++] = p;
	return 0;
}

/* Python escapes that name a class, as ERE (outside brackets) or bracket content (inside). */
static const char *class_escape(char c, int in_bracket)
{
	switch (c) {
	case 'd': return in_bracket ? "0-9" : "[0-9]";
	case 'D': return in_bracket ? NULL : "[^0-9]";
	case 'w': return in_bracket ? "[:alnum:]_" : "[[:alnum:]_]";
	case 'W': return in_bracket ? NULL : "[^[:alnum:]_]";
	case 's': return in_bracket ? "[:space:]" : "[[:space:]]";
	case 'S': return in_bracket ? NULL : "[^[:space:]]";
	default: return NULL;
	}
}

/* glibc's regcomp copies a subexpression once per repeat ({m,n}, and x+ as x x*), so nested
 * repeats grow exponentially (an untrusted project could make the loader allocate gigabytes).
 * Patterns are refused past RX_MAX_COST nodes, estimated over the translated ERE. */
#define RX_MAX_REPEAT 1000
#define RX_MAX_COST 20000
#define RX_MAX_NEST 64

static int cost_ok(const char *re, char *err, size_t errlen)
{
	long stack[RX_MAX_NEST + 1];
	int sp = 0;
	long last = 1;
	stack[0] = 0;
	for (size_t i = 0; re[i]; i++) {
		char c = re[i];
		if (c == '\\' && re[i + 1]) {
			i++;
			last = 1;
			stack[sp] += 1;
		} else if (c == '[') {
			size_t j = i + 1;
			if (re[j] == '^')
				j++;
			if (re[j] == ']')
				j++;
			while (re[j] && re[j] != ']') {
				if (re[j] == '[' && (re[j + 1] == ':' || re[j + 1] == '.' || re[j + 1] == '=')) {
					const char *e = strchr(re + j + 2, ']');
					j = e ? (size_t)(e - re) + 1 : strlen(re);
				} else
					j++;
			}
			i = re[j] ? j : j - 1;
			last = 1;
			stack[sp] += 1;
		} else if (c == '(') {
			if (sp >= RX_MAX_NEST) {
				snprintf(err, errlen, "groups nested deeper than %d", RX_MAX_NEST);
				return VZ_EINVAL;
			}
			stack[++sp] = 0;
		} else if (c == ')' && sp > 0) {
			last = stack[sp--] + 1;
			stack[sp] += last;
		} else if (c == '+') {
			stack[sp] += last;
		} else if (c == '{') {
			long m = 0, mx = -1;
			size_t j = i + 1;
			for (; re[j] >= '0' && re[j] <= '9'; j++)
				m = m * 10 + (re[j] - '0');
			if (re[j] == ',') {
				j++;
				if (re[j] >= '0' && re[j] <= '9')
					for (mx = 0; re[j] >= '0' && re[j] <= '9'; j++)
						mx = mx * 10 + (re[j] - '0');
				else
					mx = m + 1; /* {m,}: m copies and a star */
			}
			long k = mx > m ? mx : m;
			stack[sp] += last * (k > 1 ? k - 1 : 0) + 1;
			i = re[j] == '}' ? j : i;
		} else {
			last = 1;
			stack[sp] += 1;
		}
		if (stack[sp] > RX_MAX_COST || last > RX_MAX_COST) {
			snprintf(err, errlen, "too complex for POSIX regcomp (nested repeats would copy it over %d times)",
				 RX_MAX_COST);
			return VZ_EINVAL;
		}
	}
	return 0;
}

/* Bracket expressions are collected apart so a literal ']' can go first and a literal '-' last,
 * the only places POSIX reads them literally. */
static int translate(vz_buf *b, const char *p, char *err, size_t errlen)
{
	size_t n = strlen(p);
	int rc = 0;
	vz_buf br = VZ_BUF_INIT(64 * 1024);
	int quant = 0; /* 1 after a quantifier, 2 after a quantifier made lazy */
	vz_buf_puts(b, "^(");
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		int was_quant = quant;
		quant = 0;
		if (c == '*' || c == '+' || c == '?') {
			if (was_quant == 1 && c == '?') { /* lazy: which match, not whether one exists */
				quant = 2;
				continue;
			}
			if (was_quant) {
				snprintf(err, errlen, was_quant == 1 && c == '+' ? "possessive quantifiers (x*+, x++) are not supported"
										  : "multiple repeat (a quantifier after a quantifier)");
				rc = VZ_EINVAL;
				goto out;
			}
			vz_buf_putc(b, c);
			quant = 1;
			continue;
		}
		if (c == '{') {
			/* {m}, {m,}, {m,n}, {,n} repeat; anything else is a literal brace in Python */
			size_t j = i + 1, digits = 0;
			long m = -1, mx = -1, *cur = &m;
			int comma = 0;
			for (; j < n && j < i + 16; j++) {
				if (p[j] >= '0' && p[j] <= '9') {
					*cur = (*cur < 0 ? 0 : *cur) * 10 + (p[j] - '0');
					digits++;
				} else if (p[j] == ',' && !comma) {
					comma = 1;
					cur = &mx;
				} else
					break;
			}
			if (j < n && p[j] == '}' && digits > 0) {
				if (was_quant) {
					snprintf(err, errlen, "multiple repeat (a quantifier after a quantifier)");
					rc = VZ_EINVAL;
					goto out;
				}
				if (m > RX_MAX_REPEAT || mx > RX_MAX_REPEAT) {
					snprintf(err, errlen, "repeat counts above %d are not supported", RX_MAX_REPEAT);
					rc = VZ_EINVAL;
					goto out;
				}
				if (m < 0) { /* {,n}: POSIX wants the lower bound written */
					vz_buf_puts(b, "{0");
					vz_buf_add(b, p + i + 1, j - i);
				} else
					vz_buf_add(b, p + i, j - i + 1);
				i = j;
				quant = 1;
				continue;
			}
			vz_buf_puts(b, "\\{");
			continue;
		}
		if (c == '}') {
			vz_buf_puts(b, "\\}");
			continue;
		}
		if (c == '[') {
			int neg = 0, rbr = 0, dash = 0, closed = 0;
			vz_buf_reset(&br);
			i++;
			if (i < n && p[i] == '^') {
				neg = 1;
				i++;
			}
			if (i < n && p[i] == ']') {
				rbr = 1;
				i++;
			}
			for (; i < n; i++) {
				char d = p[i];
				if (d == ']') {
					closed = 1;
					break;
				}
				if (d == '[' && i + 1 < n && (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
					char close[3] = { p[i + 1], ']', 0 };
					const char *end = strstr(p + i + 2, close);
					if (!end) {
						snprintf(err, errlen, "unterminated [%c in a bracket expression", p[i + 1]);
						rc = VZ_EINVAL;
						goto out;
					}
					vz_buf_add(&br, p + i, (size_t)(end + 2 - (p + i)));
					i = (size_t)(end + 1 - p);
					continue;
				}
				if (d == '\\' && i + 1 < n) {
					char e = p[++i];
					const char *cls = class_escape(e, 1);
					if (cls)
						vz_buf_puts(&br, cls);
					else if (e == 'D' || e == 'W' || e == 'S') {
						snprintf(err, errlen, "\\%c inside [...] has no POSIX equivalent", e);
						rc = VZ_EINVAL;
						goto out;
					} else if (e == ']')
						rbr = 1;
					else if (e == '-')
						dash = 1;
					else if (e == 'n')
						vz_buf_putc(&br, '\n');
					else if (e == 't')
						vz_buf_putc(&br, '\t');
					else
						vz_buf_putc(&br, e);
					continue;
				}
				vz_buf_putc(&br, d);
			}
			if (!closed) {
				snprintf(err, errlen, "unterminated [ bracket expression");
				rc = VZ_EINVAL;
				goto out;
			}
			vz_buf_putc(b, '[');
			if (neg)
				vz_buf_putc(b, '^');
			if (rbr)
				vz_buf_putc(b, ']');
			vz_buf_add(b, br.ptr ? br.ptr : "", br.len);
			if (dash)
				vz_buf_putc(b, '-');
			vz_buf_putc(b, ']');
			continue;
		}
		if (c == '(' && i + 1 < n && p[i + 1] == '?') {
			if (i + 2 < n && p[i + 2] == ':') { /* non-capturing group: a plain group in ERE */
				vz_buf_putc(b, '(');
				i += 2;
				continue;
			}
			snprintf(err, errlen, "'(?' constructs (flags, look-around, named groups) are Python-only; "
				 "POSIX extended regexes have no equivalent");
			rc = VZ_EINVAL;
			goto out;
		}
		if (c == '\\') {
			if (i + 1 >= n) {
				snprintf(err, errlen, "trailing backslash");
				rc = VZ_EINVAL;
				goto out;
			}
			char d = p[++i];
			const char *cls = class_escape(d, 0);
			if (cls)
				vz_buf_puts(b, cls);
			else if (d >= '1' && d <= '9') {
				snprintf(err, errlen, "backreference \\%c is not supported", d);
				rc = VZ_EINVAL;
				goto out;
			} else if (d == 'A')
				vz_buf_putc(b, '^');
			else if (d == 'Z')
				vz_buf_putc(b, '$');
			else if (d == 'n')
				vz_buf_putc(b, '\n');
			else if (d == 't')
				vz_buf_putc(b, '\t');
			else if (d == 'b' || d == 'B') { /* GNU regex knows word boundaries */
				vz_buf_putc(b, '\\');
				vz_buf_putc(b, d);
			} else if ((d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') || (d >= '0' && d <= '9')) {
				snprintf(err, errlen, "escape \\%c is not supported", d);
				rc = VZ_EINVAL;
				goto out;
			} else {
				vz_buf_putc(b, '\\');
				vz_buf_putc(b, d);
			}
			continue;
		}
		vz_buf_putc(b, c);
	}
	vz_buf_putc(b, ')');
	rc = b->failed ? b->failed : br.failed;
	if (!rc)
		rc = cost_ok(vz_buf_cstr(b), err, errlen);
out:
	vz_buf_free(&br);
	return rc;
}

struct zc_rxcache {
	vz_map *m; /* translated pattern -> regex_t* */
	zc_vec all;
};

zc_rxcache *zc_rxcache_new(void)
{
	zc_rxcache *c = calloc(1, sizeof(*c));
	if (c && !(c->m = vz_map_new())) {
		free(c);
		return NULL;
	}
	return c;
}

void zc_rxcache_free(zc_rxcache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->all.n; i++) {
		regfree(c->all.v[i]);
		free(c->all.v[i]);
	}
	free(c->all.v);
	vz_map_free(c->m);
	free(c);
}

int zc_rx_compile(zc_rxcache *c, zc_rx *out, const char *pattern, int negate, char *err, size_t errlen)
{
	vz_buf b = VZ_BUF_INIT(64 * 1024);
	regex_t *re = NULL;
	memset(out, 0, sizeof(*out));
	int rc = translate(&b, pattern, err, errlen);
	if (rc == VZ_ETOOBIG) {
		snprintf(err, errlen, "regex too long");
		rc = VZ_EINVAL;
	}
	if (rc)
		goto out;
	re = c ? vz_map_get(c->m, vz_buf_cstr(&b)) : NULL;
	if (!re) {
		re = calloc(1, sizeof(*re));
		if (!re) {
			snprintf(err, errlen, "out of memory");
			rc = VZ_ENOMEM;
			goto out;
		}
		int r = regcomp(re, vz_buf_cstr(&b), REG_EXTENDED);
		if (r) {
			char m[200];
			regerror(r, re, m, sizeof(m));
			snprintf(err, errlen, "%s", m);
			free(re);
			rc = VZ_EINVAL;
			goto out;
		}
		if (c && (zc_vec_push(&c->all, re) || vz_map_set(c->m, vz_buf_cstr(&b), re))) {
			if (c->all.n && c->all.v[c->all.n - 1] == re)
				c->all.n--;
			regfree(re);
			free(re);
			snprintf(err, errlen, "out of memory");
			rc = VZ_ENOMEM;
			goto out;
		}
		out->owned = c == NULL;
	}
	out->re = re;
	out->ok = 1;
	out->negate = negate;
	out->src = strdup(pattern);
	if (!out->src) {
		zc_rx_free(out);
		rc = VZ_ENOMEM;
		snprintf(err, errlen, "out of memory");
	}
out:
	vz_buf_free(&b);
	return rc;
}

int zc_rx_match(const zc_rx *r, const char *s)
{
	regmatch_t m[1];
	int hit = r->ok && regexec(r->re, s, 1, m, 0) == 0 && m[0].rm_so == 0;
	return r->negate ? !hit : hit;
}

void zc_rx_free(zc_rx *r)
{
	if (!r)
		return;
	if (r->ok && r->owned) {
		regfree(r->re);
		free(r->re);
	}
	free(r->src);
	r->ok = 0;
	r->re = NULL;
	r->src = NULL;
}

void zc_rxlist_free(zc_rxlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		zc_rx_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int zc_rxlist_any(const zc_rxlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (zc_rx_match(&l->v[i], s))
			return 1;
	return 0;
}

/* A canonical name less its hostname (the first component, when it looks like a host name). */
const char *zc_short_name(const char *name)
{
	const char *slash = strchr(name, '/');
	if (!slash)
		return name;
	size_t hl = (size_t)(slash - name);
	if (memchr(name, '.', hl) || memchr(name, ':', hl) || (hl == 9 && strncmp(name, "localhost", 9) == 0))
		return slash + 1;
	return name;
}

int zc_name_matches(const char *stanza_name, const char *project)
{
	/* "openstack/nova" and "opendev.org/openstack/nova" name the same project */
	return strcmp(stanza_name, project) == 0 || strcmp(zc_short_name(stanza_name), project) == 0 ||
	       strcmp(stanza_name, zc_short_name(project)) == 0 || strcmp(zc_short_name(stanza_name), zc_short_name(project)) == 0;
}
