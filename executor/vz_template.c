/* vz_template: a Jinja2 subset. A template is parsed into a tree (text, {{ }}, if, for, set) and
 * then rendered; values are jansson values, with NULL standing for Jinja2's Undefined. Filters and
 * tests follow Jinja2 and Ansible's plugins: Python regexes run on POSIX <regex.h> through a
 * translator, to_yaml feeds libyaml's emitter as PyYAML does. Every recursion, loop, string, list
 * and regex is capped so that hostile input fails with a message. */
#include <ctype.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yaml.h>

#include "vz_buf.h"
#include "vz_template.h"
#include "vz_util.h"

#define DEF_MAX_OUTPUT (1024 * 1024)
#define DEF_MAX_DEPTH 100
#define HARD_MAX_DEPTH 1000
#define DEF_MAX_ITER 100000
#define DEF_MAX_STEPS 50000000

enum {
	N_LIT, N_NAME, N_ATTR, N_ITEM, N_SLICE, N_BIN, N_NEG, N_POS, N_NOT, N_AND, N_OR, N_COND,
	N_LIST, N_DICT, N_FILTER, N_TEST, N_CALL, N_CMP,
	N_BODY, N_TEXT, N_OUT, N_IF, N_FOR, N_SET,
};
enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FDIV, OP_MOD, OP_POW, OP_CAT };
enum { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE, C_IN, C_NOTIN };

typedef struct node node;
struct node {
	int kind;
	int op;     /* N_BIN operator; N_TEST 1 when negated; N_CMP operand: the operator before it */
	size_t pos; /* offset in the source, for line:col */
	unsigned h; /* height of the subtree */
	json_t *lit;
	char *name;  /* names of variables, attributes, filters, tests, set/for targets */
	char *name2; /* second for target (for k, v in ...) */
	char *kw;    /* keyword of a call argument (name=value) */
	char *text;
	size_t textlen;
	node *a, *b, *c;
	node **kids;
	size_t nkids, kalloc;
};

/* ---- errors and positions ---- */

static void linecol(const char *s, size_t n, size_t pos, unsigned *line, unsigned *col)
{
	unsigned l = 1, c = 1;
	for (size_t i = 0; i < pos && i < n; i++) {
		if (s[i] == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col = c;
}

static int pos_err(vz_err *e, const char *src, size_t n, size_t pos, int code, const char *fmt,
		   va_list ap)
{
	char msg[VZ_ERR_MSG_MAX];
	unsigned line, col;
	vsnprintf(msg, sizeof msg, fmt, ap);
	linecol(src, n, pos, &line, &col);
	return vz_err_set(e, code, "%u:%u: %s", line, col, msg);
}

/* ---- the tree ---- */

static void node_free(node *n)
{
	if (!n)
		return;
	json_decref(n->lit);
	free(n->name);
	free(n->name2);
	free(n->kw);
	free(n->text);
	node_free(n->a);
	node_free(n->b);
	node_free(n->c);
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n);
}

/* ---- the parser ---- */

enum { T_EOF, T_END, T_NAME, T_INT, T_FLOAT, T_STR, T_OP };
enum { M_EXPR, M_VAR, M_BLOCK };

typedef struct P {
	const char *s;
	size_t n;
	size_t pos;     /* lexer cursor */
	int mode;       /* M_EXPR: ends at EOF; M_VAR: at }}; M_BLOCK: at %} */
	int brackets;   /* open ( [ { in this tag; an end marker only counts outside them */
	int tt;         /* current token */
	size_t tpos, tlen;
	int end_strip;  /* the end marker was -}} or -%} */
	unsigned depth, max_depth;
	int rstrip_next; /* strip the whitespace that starts the next text */
	int after_block; /* the last tag was {% %} or {# #}, for trim_blocks */
	int trim_blocks;
	vz_err *e;
} P;

static int perr(P *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(P *p, size_t pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = pos_err(p->e, p->s, p->n, pos, VZ_EINVAL, fmt, ap);
	va_end(ap);
	return rc;
}

static int ptoobig(P *p, size_t pos)
{
	unsigned line, col;
	linecol(p->s, p->n, pos, &line, &col);
	return vz_err_set(p->e, VZ_ETOOBIG, "%u:%u: template nested too deeply (more than %u levels)",
			  line, col, p->max_depth);
}

static node *mk(P *p, int kind, size_t pos)
{
	node *n = calloc(1, sizeof *n);
	if (!n) {
		vz_err_set(p->e, VZ_ENOMEM, "out of memory parsing a template");
		return NULL;
	}
	n->kind = kind;
	n->pos = pos;
	n->h = 1;
	return n;
}

/* Recomputes n's height from its children; fails past the depth cap. */
static int seal(P *p, node *n)
{
	unsigned h = 0;
	if (n->a && n->a->h > h) h = n->a->h;
	if (n->b && n->b->h > h) h = n->b->h;
	if (n->c && n->c->h > h) h = n->c->h;
	for (size_t i = 0; i < n->nkids; i++)
		if (n->kids[i]->h > h)
			h = n->kids[i]->h;
	n->h = h + 1;
	if (n->h > p->max_depth)
		return ptoobig(p, n->pos);
	return 0;
}

static int add_kid(P *p, node *n, node *k)
{
	if (n->nkids == n->kalloc) {
		size_t na = n->kalloc ? n->kalloc * 2 : 4;
		node **nk = realloc(n->kids, na * sizeof *nk);
		if (!nk) {
			node_free(k);
			return vz_err_set(p->e, VZ_ENOMEM, "out of memory parsing a template");
		}
		n->kids = nk;
		n->kalloc = na;
	}
	n->kids[n->nkids++] = k;
	if (k->h + 1 > n->h) {
		n->h = k->h + 1;
		if (n->h > p->max_depth)
			return ptoobig(p, k->pos);
	}
	return 0;
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static const char *tok_desc(P *p, char *buf, size_t n)
{
	switch (p->tt) {
	case T_EOF: return "end of template";
	case T_END: return p->mode == M_VAR ? "end of print statement '}}'" : "end of statement '%}'";
	default: break;
	}
	size_t l = p->tlen > 40 ? 40 : p->tlen;
	snprintf(buf, n, "'%.*s'", (int)l, p->s + p->tpos);
	return buf;
}

/* Reads the next token. */
static int lex(P *p)
{
	const char *s = p->s;
	size_t n = p->n, i = p->pos;
	while (i < n && is_ws(s[i]))
		i++;
	p->tpos = i;
	p->tlen = 0;
	if (i >= n) {
		p->pos = i;
		p->tt = T_EOF;
		return 0;
	}
	if (p->mode != M_EXPR && p->brackets == 0) {
		char close = p->mode == M_VAR ? '}' : '%';
		size_t j = i;
		int strip = 0;
		if (s[j] == '-' && j + 2 < n + 0 && s[j + 1] == close && s[j + 2] == '}') {
			strip = 1;
			j++;
		}
		if (j + 1 < n && s[j] == close && s[j + 1] == '}') {
			p->tt = T_END;
			p->end_strip = strip;
			p->tlen = j + 2 - i;
			p->pos = j + 2;
			return 0;
		}
	}
	char c = s[i];
	if (isalpha((unsigned char)c) || c == '_') {
		size_t j = i;
		while (j < n && (isalnum((unsigned char)s[j]) || s[j] == '_'))
			j++;
		p->tt = T_NAME;
		p->tlen = j - i;
		p->pos = j;
		return 0;
	}
	if (isdigit((unsigned char)c)) {
		size_t j = i;
		int isfloat = 0;
		while (j < n && (isdigit((unsigned char)s[j]) || s[j] == '_'))
			j++;
		if (j + 1 < n && s[j] == '.' && isdigit((unsigned char)s[j + 1])) {
			isfloat = 1;
			j++;
			while (j < n && (isdigit((unsigned char)s[j]) || s[j] == '_'))
				j++;
		}
		if (j < n && (s[j] == 'e' || s[j] == 'E')) {
			size_t k = j + 1;
			if (k < n && (s[k] == '+' || s[k] == '-'))
				k++;
			if (k < n && isdigit((unsigned char)s[k])) {
				isfloat = 1;
				j = k;
				while (j < n && isdigit((unsigned char)s[j]))
					j++;
			}
		}
		p->tt = isfloat ? T_FLOAT : T_INT;
		p->tlen = j - i;
		p->pos = j;
		return 0;
	}
	if (c == '\'' || c == '"') {
		size_t j = i + 1;
		while (j < n && s[j] != c) {
			if (s[j] == '\\' && j + 1 < n)
				j++;
			j++;
		}
		if (j >= n)
			return perr(p, i, "unterminated string");
		p->tt = T_STR;
		p->tlen = j + 1 - i;
		p->pos = j + 1;
		return 0;
	}
	static const char *const two[] = { "//", "**", "==", "!=", "<=", ">=" };
	for (size_t k = 0; k < sizeof two / sizeof two[0]; k++) {
		if (i + 1 < n && s[i] == two[k][0] && s[i + 1] == two[k][1]) {
			p->tt = T_OP;
			p->tlen = 2;
			p->pos = i + 2;
			return 0;
		}
	}
	if (strchr("()[]{}.,:|+-*/%~<>=", c) && c != '\0') {
		if (c == '(' || c == '[' || c == '{')
			p->brackets++;
		else if ((c == ')' || c == ']' || c == '}') && p->brackets > 0)
			p->brackets--;
		p->tt = T_OP;
		p->tlen = 1;
		p->pos = i + 1;
		return 0;
	}
	if (isprint((unsigned char)c))
		return perr(p, i, "unexpected character '%c'", c);
	return perr(p, i, "unexpected byte 0x%02x", (unsigned char)c);
}

static int is_op(const P *p, const char *op)
{
	size_t l = strlen(op);
	return p->tt == T_OP && p->tlen == l && memcmp(p->s + p->tpos, op, l) == 0;
}

static int is_name(const P *p, const char *name)
{
	size_t l = strlen(name);
	return p->tt == T_NAME && p->tlen == l && memcmp(p->s + p->tpos, name, l) == 0;
}

static int expect_op(P *p, const char *op)
{
	char b[64];
	if (!is_op(p, op))
		return perr(p, p->tpos, "expected '%s', got %s", op, tok_desc(p, b, sizeof b));
	return lex(p);
}

static char *tok_str(P *p)
{
	char *r = malloc(p->tlen + 1);
	if (!r) {
		vz_err_set(p->e, VZ_ENOMEM, "out of memory parsing a template");
		return NULL;
	}
	memcpy(r, p->s + p->tpos, p->tlen);
	r[p->tlen] = '\0';
	return r;
}

static int enter(P *p)
{
	if (++p->depth > p->max_depth)
		return ptoobig(p, p->tpos);
	return 0;
}

static node *parse_expr(P *p);
static node *parse_or(P *p);
static node *parse_unary(P *p, int with_filter);

/* Appends the decoded body of the string token to b: Python escapes, newlines as \n. */
/* Writes code point cp as UTF-8 into u (4 bytes); returns the length. */
static size_t u8enc(uint32_t cp, char *u)
{
	if (cp < 0x80) {
		u[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	u[0] = (char)(0xf0 | (cp >> 18));
	u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	u[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static void decode_string(P *p, vz_buf *b)
{
	const char *s = p->s + p->tpos + 1;
	size_t n = p->tlen - 2;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\r') {
			vz_buf_putc(b, '\n');
			if (i + 1 < n && s[i + 1] == '\n')
				i++;
			continue;
		}
		if (c != '\\' || i + 1 >= n) {
			vz_buf_putc(b, c);
			continue;
		}
		char d = s[++i];
		switch (d) {
		case 'n': vz_buf_putc(b, '\n'); break;
		case 't': vz_buf_putc(b, '\t'); break;
		case 'r': vz_buf_putc(b, '\r'); break;
		case 'a': vz_buf_putc(b, '\a'); break;
		case 'b': vz_buf_putc(b, '\b'); break;
		case 'f': vz_buf_putc(b, '\f'); break;
		case 'v': vz_buf_putc(b, '\v'); break;
		case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
			/* octal, up to three digits: '\1' is chr(1), as Jinja2's unicode-escape reads it
			 * (write '\\1' for a regex group) */
			uint32_t cp = (uint32_t)(d - '0');
			for (int k = 0; k < 2 && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7'; k++)
				cp = cp * 8 + (uint32_t)(s[++i] - '0');
			char u[4];
			vz_buf_add(b, u, u8enc(cp, u));
			break;
		}
		case '\\': vz_buf_putc(b, '\\'); break;
		case '\'': vz_buf_putc(b, '\''); break;
		case '"': vz_buf_putc(b, '"'); break;
		case '\n': break;
		case 'x':
		case 'u':
		case 'U': {
			size_t want = d == 'x' ? 2 : d == 'u' ? 4 : 8, k;
			uint32_t cp = 0;
			for (k = 0; k < want && i + 1 + k < n && isxdigit((unsigned char)s[i + 1 + k]); k++) {
				char h = s[i + 1 + k];
				cp = cp * 16 + (uint32_t)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
			}
			if (k != want || cp > 0x10ffff) { /* Python refuses these; keep them as written */
				vz_buf_putc(b, '\\');
				vz_buf_putc(b, d);
				break;
			}
			i += want;
			char u[4];
			vz_buf_add(b, u, u8enc(cp, u));
			break;
		}
		default:
			vz_buf_putc(b, '\\');
			vz_buf_putc(b, d);
			break;
		}
	}
}

static node *lit_node(P *p, size_t pos, json_t *v)
{
	if (!v) {
		vz_err_set(p->e, VZ_ENOMEM, "out of memory parsing a template");
		return NULL;
	}
	node *n = mk(p, N_LIT, pos);
	if (!n) {
		json_decref(v);
		return NULL;
	}
	n->lit = v;
	return n;
}

static node *parse_number(P *p)
{
	char tmp[64];
	size_t k = 0, pos = p->tpos;
	int isfloat = p->tt == T_FLOAT;
	for (size_t i = 0; i < p->tlen; i++) {
		char c = p->s[p->tpos + i];
		if (c == '_')
			continue;
		if (k + 1 >= sizeof tmp) {
			perr(p, pos, "number literal too long");
			return NULL;
		}
		tmp[k++] = c;
	}
	tmp[k] = '\0';
	json_t *v;
	if (isfloat) {
		char *end = NULL;
		double d = strtod(tmp, &end);
		if (!end || *end != '\0' || !isfinite(d)) {
			perr(p, pos, "bad float literal %s", tmp);
			return NULL;
		}
		v = json_real(d);
	} else {
		int64_t i;
		if (vz_parse_i64(tmp, INT64_MIN, INT64_MAX, &i) != 0) {
			perr(p, pos, "integer literal %s out of range", tmp);
			return NULL;
		}
		v = json_integer((json_int_t)i);
	}
	if (lex(p) != 0) {
		json_decref(v);
		return NULL;
	}
	return lit_node(p, pos, v);
}

/* Parses "(args)" after the '(' has been seen, adding each as a kid of n (kw set for name=). */
static int parse_args(P *p, node *n)
{
	if (lex(p) != 0)
		return -1;
	while (!is_op(p, ")")) {
		char *kw = NULL;
		if (p->tt == T_NAME) {
			P save = *p;
			char *name = tok_str(p);
			if (!name)
				return -1;
			if (lex(p) != 0) {
				free(name);
				return -1;
			}
			if (is_op(p, "=")) {
				kw = name;
				if (lex(p) != 0) {
					free(kw);
					return -1;
				}
			} else {
				free(name);
				*p = save;
			}
		}
		node *a = parse_expr(p);
		if (!a) {
			free(kw);
			return -1;
		}
		a->kw = kw;
		if (add_kid(p, n, a) != 0)
			return -1;
		if (is_op(p, ","))
			lex(p);
		else if (!is_op(p, ")")) {
			char b[64];
			return perr(p, p->tpos, "expected ',' or ')', got %s", tok_desc(p, b, sizeof b));
		}
		if (p->e && p->e->code)
			return -1;
	}
	return lex(p);
}

static node *parse_primary(P *p)
{
	char b[64];
	size_t pos = p->tpos;
	node *n = NULL;
	if (p->tt == T_NAME) {
		static const struct { const char *name; int kind; } consts[] = {
			{ "true", 1 }, { "True", 1 }, { "false", 0 }, { "False", 0 },
			{ "none", 2 }, { "None", 2 },
		};
		for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
			if (is_name(p, consts[i].name)) {
				json_t *v = consts[i].kind == 2 ? json_null() : json_boolean(consts[i].kind);
				if (lex(p) != 0)
					return NULL;
				return lit_node(p, pos, v);
			}
		}
		n = mk(p, N_NAME, pos);
		if (!n || !(n->name = tok_str(p)) || lex(p) != 0) {
			node_free(n);
			return NULL;
		}
		return n;
	}
	if (p->tt == T_INT || p->tt == T_FLOAT)
		return parse_number(p);
	if (p->tt == T_STR) {
		vz_buf sb = VZ_BUF_INIT(SIZE_MAX);
		while (p->tt == T_STR) { /* adjacent literals join, as in Python */
			decode_string(p, &sb);
			if (lex(p) != 0) {
				vz_buf_free(&sb);
				return NULL;
			}
		}
		if (sb.failed) {
			vz_buf_free(&sb);
			vz_err_set(p->e, VZ_ENOMEM, "out of memory parsing a template");
			return NULL;
		}
		json_t *v = json_stringn_nocheck(sb.ptr ? sb.ptr : "", sb.len);
		vz_buf_free(&sb);
		return lit_node(p, pos, v);
	}
	if (is_op(p, "(")) {
		if (lex(p) != 0 || !(n = parse_expr(p)))
			return NULL;
		if (is_op(p, ",")) {
			perr(p, p->tpos, "tuples are not supported; use a list [a, b]");
			node_free(n);
			return NULL;
		}
		if (expect_op(p, ")") != 0) {
			node_free(n);
			return NULL;
		}
		return n;
	}
	if (is_op(p, "[") || is_op(p, "{")) {
		int dict = is_op(p, "{");
		const char *close = dict ? "}" : "]";
		n = mk(p, dict ? N_DICT : N_LIST, pos);
		if (!n || lex(p) != 0)
			goto fail;
		while (!is_op(p, close)) {
			node *k = parse_expr(p);
			if (!k || add_kid(p, n, k) != 0)
				goto fail;
			if (dict) {
				if (expect_op(p, ":") != 0)
					goto fail;
				node *v = parse_expr(p);
				if (!v || add_kid(p, n, v) != 0)
					goto fail;
			}
			if (is_op(p, ",")) {
				if (lex(p) != 0)
					goto fail;
			} else if (!is_op(p, close)) {
				perr(p, p->tpos, "expected ',' or '%s', got %s", close, tok_desc(p, b, sizeof b));
				goto fail;
			}
		}
		if (lex(p) != 0)
			goto fail;
		return n;
	}
	perr(p, pos, "unexpected %s", tok_desc(p, b, sizeof b));
	return NULL;
fail:
	node_free(n);
	return NULL;
}

static node *parse_postfix(P *p, node *n)
{
	char b[64];
	while (n) {
		size_t pos = p->tpos;
		node *m = NULL;
		if (is_op(p, ".")) {
			if (lex(p) != 0)
				goto fail;
			if (p->tt == T_NAME) {
				if (!(m = mk(p, N_ATTR, p->tpos)) || !(m->name = tok_str(p)) || lex(p) != 0)
					goto fail;
			} else if (p->tt == T_INT) {
				if (!(m = mk(p, N_ITEM, p->tpos)) || !(m->b = parse_number(p)))
					goto fail;
			} else {
				perr(p, p->tpos, "expected an attribute name after '.', got %s",
				     tok_desc(p, b, sizeof b));
				goto fail;
			}
		} else if (is_op(p, "[")) {
			if (lex(p) != 0 || !(m = mk(p, N_ITEM, pos)))
				goto fail;
			node *parts[3] = { NULL, NULL, NULL };
			int nparts = 0, slice = 0;
			for (;;) {
				if (!is_op(p, ":") && !is_op(p, "]")) {
					if (!(parts[nparts] = parse_expr(p)))
						break;
				}
				if (is_op(p, ":") && nparts < 2) {
					slice = 1;
					nparts++;
					if (lex(p) != 0)
						break;
					continue;
				}
				break;
			}
			if (p->e && p->e->code) {
				for (int i = 0; i < 3; i++)
					node_free(parts[i]);
				goto fail;
			}
			if (slice) {
				m->kind = N_SLICE;
				m->a = NULL;
				m->b = parts[0];
				m->c = parts[1];
				if (parts[2]) {
					m->nkids = 0;
					if (add_kid(p, m, parts[2]) != 0) {
						parts[2] = NULL;
						goto fail;
					}
				}
			} else if (!parts[0]) {
				perr(p, p->tpos, "expected an index inside []");
				goto fail;
			} else {
				m->b = parts[0];
			}
			if (expect_op(p, "]") != 0)
				goto fail;
		} else if (is_op(p, "(")) {
			if (!(m = mk(p, N_CALL, pos)))
				goto fail;
			m->a = n;
			n = NULL;
			if (parse_args(p, m) != 0 || seal(p, m) != 0) {
				node_free(m);
				return NULL;
			}
			n = m;
			continue;
		} else {
			return n;
		}
		m->a = n;
		n = m;
		if (seal(p, n) != 0) {
			node_free(n);
			return NULL;
		}
		continue;
	fail:
		if (!m || m->a != n)
			node_free(n);
		node_free(m);
		return NULL;
	}
	return n;
}

static node *parse_filters(P *p, node *n)
{
	char b[64];
	while (n) {
		size_t pos = p->tpos;
		int filter = is_op(p, "|");
		if (!filter && !is_name(p, "is"))
			return n;
		node *m = mk(p, filter ? N_FILTER : N_TEST, pos);
		if (!m) {
			node_free(n);
			return NULL;
		}
		m->a = n;
		if (lex(p) != 0)
			goto fail;
		if (!filter && is_name(p, "not")) {
			m->op = 1;
			if (lex(p) != 0)
				goto fail;
		}
		if (p->tt != T_NAME) {
			perr(p, p->tpos, "expected a %s name, got %s", filter ? "filter" : "test",
			     tok_desc(p, b, sizeof b));
			goto fail;
		}
		m->pos = p->tpos;
		if (!(m->name = tok_str(p)) || lex(p) != 0)
			goto fail;
		if (is_op(p, "(") && parse_args(p, m) != 0)
			goto fail;
		if (seal(p, m) != 0)
			goto fail;
		n = m;
		continue;
	fail:
		node_free(m);
		return NULL;
	}
	return n;
}

static node *parse_unary(P *p, int with_filter)
{
	size_t pos = p->tpos;
	node *n;
	if (enter(p) != 0)
		return NULL;
	if (is_op(p, "-") || is_op(p, "+")) {
		int neg = is_op(p, "-");
		if (lex(p) != 0)
			return NULL;
		node *a = parse_unary(p, 0);
		if (!a)
			return NULL;
		n = mk(p, neg ? N_NEG : N_POS, pos);
		if (!n) {
			node_free(a);
			return NULL;
		}
		n->a = a;
		if (seal(p, n) != 0) {
			node_free(n);
			return NULL;
		}
	} else {
		n = parse_primary(p);
	}
	n = parse_postfix(p, n);
	if (with_filter)
		n = parse_filters(p, n);
	p->depth--;
	return n;
}

static node *binary(P *p, int kind, int op, size_t pos, node *l, node *r)
{
	if (!r) {
		node_free(l);
		return NULL;
	}
	node *n = mk(p, kind, pos);
	if (!n) {
		node_free(l);
		node_free(r);
		return NULL;
	}
	n->op = op;
	n->a = l;
	n->b = r;
	if (seal(p, n) != 0) {
		node_free(n);
		return NULL;
	}
	return n;
}

static node *parse_pow(P *p)
{
	node *n = parse_unary(p, 1);
	while (n && is_op(p, "**")) {
		size_t pos = p->tpos;
		if (lex(p) != 0) {
			node_free(n);
			return NULL;
		}
		n = binary(p, N_BIN, OP_POW, pos, n, parse_unary(p, 1));
	}
	return n;
}

static node *parse_math2(P *p)
{
	node *n = parse_pow(p);
	for (;;) {
		int op;
		if (!n)
			return NULL;
		if (is_op(p, "*")) op = OP_MUL;
		else if (is_op(p, "/")) op = OP_DIV;
		else if (is_op(p, "//")) op = OP_FDIV;
		else if (is_op(p, "%")) op = OP_MOD;
		else return n;
		size_t pos = p->tpos;
		if (lex(p) != 0) {
			node_free(n);
			return NULL;
		}
		n = binary(p, N_BIN, op, pos, n, parse_pow(p));
	}
}

static node *parse_concat(P *p)
{
	node *n = parse_math2(p);
	while (n && is_op(p, "~")) {
		size_t pos = p->tpos;
		if (lex(p) != 0) {
			node_free(n);
			return NULL;
		}
		n = binary(p, N_BIN, OP_CAT, pos, n, parse_math2(p));
	}
	return n;
}

static node *parse_math1(P *p)
{
	node *n = parse_concat(p);
	while (n && (is_op(p, "+") || is_op(p, "-"))) {
		int op = is_op(p, "+") ? OP_ADD : OP_SUB;
		size_t pos = p->tpos;
		if (lex(p) != 0) {
			node_free(n);
			return NULL;
		}
		n = binary(p, N_BIN, op, pos, n, parse_concat(p));
	}
	return n;
}

static node *parse_compare(P *p)
{
	node *first = parse_math1(p);
	node *n = NULL;
	if (!first)
		return NULL;
	for (;;) {
		int op = -1;
		size_t pos = p->tpos;
		if (is_op(p, "==")) op = C_EQ;
		else if (is_op(p, "!=")) op = C_NE;
		else if (is_op(p, "<")) op = C_LT;
		else if (is_op(p, "<=")) op = C_LE;
		else if (is_op(p, ">")) op = C_GT;
		else if (is_op(p, ">=")) op = C_GE;
		else if (is_name(p, "in")) op = C_IN;
		else if (is_name(p, "not")) {
			P save = *p;
			if (lex(p) != 0)
				goto fail;
			if (is_name(p, "in")) {
				op = C_NOTIN;
			} else {
				*p = save;
			}
		}
		if (op < 0)
			break;
		if (lex(p) != 0)
			goto fail;
		if (!n) {
			if (!(n = mk(p, N_CMP, pos)))
				goto fail;
			n->a = first;
			first = NULL;
		}
		node *r = parse_math1(p);
		if (!r)
			goto fail;
		node *w = mk(p, N_CMP, pos); /* one link of the chain: op, then the operand in a */
		if (!w) {
			node_free(r);
			goto fail;
		}
		w->op = op;
		w->a = r;
		if (seal(p, w) != 0) {
			node_free(w);
			goto fail;
		}
		if (add_kid(p, n, w) != 0) /* frees w unless it was added */
			goto fail;
	}
	if (!n)
		return first;
	if (seal(p, n) != 0)
		goto fail;
	return n;
fail:
	node_free(first);
	node_free(n);
	return NULL;
}

static node *parse_not(P *p)
{
	if (is_name(p, "not")) {
		size_t pos = p->tpos;
		if (enter(p) != 0 || lex(p) != 0)
			return NULL;
		node *a = parse_not(p);
		p->depth--;
		if (!a)
			return NULL;
		node *n = mk(p, N_NOT, pos);
		if (!n) {
			node_free(a);
			return NULL;
		}
		n->a = a;
		if (seal(p, n) != 0) {
			node_free(n);
			return NULL;
		}
		return n;
	}
	return parse_compare(p);
}

static node *parse_and(P *p)
{
	node *n = parse_not(p);
	while (n && is_name(p, "and")) {
		size_t pos = p->tpos;
		if (lex(p) != 0) {
			node_free(n);
			return NULL;
		}
		n = binary(p, N_AND, 0, pos, n, parse_not(p));
	}
	return n;
}

static node *parse_or(P *p)
{
	node *n = parse_and(p);
	while (n && is_name(p, "or")) {
		size_t pos = p->tpos;
		if (lex(p) != 0) {
			node_free(n);
			return NULL;
		}
		n = binary(p, N_OR, 0, pos, n, parse_and(p));
	}
	return n;
}

static node *parse_expr(P *p)
{
	if (enter(p) != 0)
		return NULL;
	node *n = parse_or(p);
	while (n && is_name(p, "if")) {
		size_t pos = p->tpos;
		node *m = mk(p, N_COND, pos);
		if (!m) {
			node_free(n);
			n = NULL;
			break;
		}
		m->a = n;
		n = m;
		if (lex(p) != 0 || !(m->b = parse_or(p))) {
			node_free(n);
			n = NULL;
			break;
		}
		if (is_name(p, "else")) {
			if (lex(p) != 0 || !(m->c = parse_expr(p))) {
				node_free(n);
				n = NULL;
				break;
			}
		}
		if (seal(p, m) != 0) {
			node_free(n);
			n = NULL;
		}
	}
	p->depth--;
	return n;
}

/* ---- template structure ---- */

static int expect_end(P *p)
{
	char b[64];
	if (p->tt != T_END)
		return perr(p, p->tpos, "expected %s, got %s",
			    p->mode == M_VAR ? "'}}'" : "'%}'", tok_desc(p, b, sizeof b));
	p->rstrip_next = p->end_strip;
	p->after_block = p->mode == M_BLOCK;
	return 0;
}

static int add_text(P *p, node *body, const char *s, size_t n, size_t pos)
{
	if (n == 0)
		return 0;
	node *t = mk(p, N_TEXT, pos);
	if (!t || !(t->text = malloc(n))) {
		free(t);
		return vz_err_set(p->e, VZ_ENOMEM, "out of memory parsing a template");
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) { /* newlines become \n, as Jinja2's newline_sequence */
		if (s[i] == '\r') {
			t->text[k++] = '\n';
			if (i + 1 < n && s[i + 1] == '\n')
				i++;
		} else {
			t->text[k++] = s[i];
		}
	}
	t->textlen = k;
	return add_kid(p, body, t);
}

/* Handles the text from p->pos up to the next tag (or the end); returns the tag offset or n. */
static int scan_text(P *p, node *body, size_t *tag)
{
	const char *s = p->s;
	size_t n = p->n, i = p->pos;
	while (i + 1 < n && !(s[i] == '{' && (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#')))
		i++;
	if (i + 1 >= n)
		i = n;
	size_t start = p->pos, end = i;
	if (p->rstrip_next) {
		while (start < end && is_ws(s[start]))
			start++;
	} else if (p->trim_blocks && p->after_block) {
		if (start < end && s[start] == '\n')
			start++;
		else if (start + 1 < end && s[start] == '\r' && s[start + 1] == '\n')
			start += 2;
		else if (start < end && s[start] == '\r')
			start++;
	}
	p->rstrip_next = 0;
	p->after_block = 0;
	if (i < n && i + 2 < n && s[i + 2] == '-') {
		while (end > start && is_ws(s[end - 1]))
			end--;
	}
	*tag = i;
	return add_text(p, body, s + start, end - start, start);
}

static int parse_body(P *p, node **out, const char *const *ends, const char **ended);

/* Starts a {% %} or {{ }} tag at offset tag: positions the lexer on its first token. */
static int open_tag(P *p, size_t tag, int mode)
{
	p->pos = tag + 2;
	if (p->pos < p->n && p->s[p->pos] == '-')
		p->pos++;
	p->mode = mode;
	p->brackets = 0;
	return lex(p);
}

static int finish_tag(P *p)
{
	if (lex(p) != 0)
		return -1;
	return expect_end(p);
}

static char *dup_tok_name(P *p)
{
	char b[64];
	if (p->tt != T_NAME) {
		perr(p, p->tpos, "expected a name, got %s", tok_desc(p, b, sizeof b));
		return NULL;
	}
	return tok_str(p);
}

static int parse_if(P *p, node **out, size_t pos)
{
	static const char *const ends[] = { "elif", "else", "endif", NULL };
	static const char *const endif[] = { "endif", NULL };
	const char *ended = NULL;
	node *n = mk(p, N_IF, pos);
	int rc = -1;
	if (!n || enter(p) != 0)
		goto out;
	if (lex(p) != 0 || !(n->a = parse_expr(p)) || expect_end(p) != 0)
		goto out;
	if (parse_body(p, &n->b, ends, &ended) != 0)
		goto out;
	if (strcmp(ended, "elif") == 0) {
		if (parse_if(p, &n->c, p->tpos) != 0)
			goto out;
	} else if (strcmp(ended, "else") == 0) {
		if (finish_tag(p) != 0 || parse_body(p, &n->c, endif, &ended) != 0 ||
		    finish_tag(p) != 0)
			goto out;
	} else if (finish_tag(p) != 0) {
		goto out;
	}
	if (seal(p, n) != 0)
		goto out;
	p->depth--;
	*out = n;
	n = NULL;
	rc = 0;
out:
	node_free(n);
	return rc;
}

static int parse_for(P *p, node **out, size_t pos)
{
	static const char *const ends[] = { "else", "endfor", NULL };
	static const char *const endfor[] = { "endfor", NULL };
	const char *ended = NULL;
	char b[64];
	node *n = mk(p, N_FOR, pos);
	int rc = -1;
	if (!n || enter(p) != 0 || lex(p) != 0 || !(n->name = dup_tok_name(p)) || lex(p) != 0)
		goto out;
	if (is_op(p, ",")) {
		if (lex(p) != 0 || !(n->name2 = dup_tok_name(p)) || lex(p) != 0)
			goto out;
	}
	if (!is_name(p, "in")) {
		perr(p, p->tpos, "expected 'in', got %s", tok_desc(p, b, sizeof b));
		goto out;
	}
	if (lex(p) != 0 || !(n->a = parse_or(p)))
		goto out;
	if (is_name(p, "if")) {
		perr(p, p->tpos, "loop filters ({%% for x in y if c %%}) are not supported; use {%% if %%} inside the loop");
		goto out;
	}
	if (is_name(p, "recursive")) {
		perr(p, p->tpos, "recursive loops are not supported");
		goto out;
	}
	if (expect_end(p) != 0 || parse_body(p, &n->b, ends, &ended) != 0)
		goto out;
	if (strcmp(ended, "else") == 0) {
		if (finish_tag(p) != 0 || parse_body(p, &n->c, endfor, &ended) != 0)
			goto out;
	}
	if (finish_tag(p) != 0 || seal(p, n) != 0)
		goto out;
	p->depth--;
	*out = n;
	n = NULL;
	rc = 0;
out:
	node_free(n);
	return rc;
}

static int parse_set(P *p, node **out, size_t pos)
{
	char b[64];
	node *n = mk(p, N_SET, pos);
	int rc = -1;
	if (!n || lex(p) != 0 || !(n->name = dup_tok_name(p)) || lex(p) != 0)
		goto out;
	if (p->tt == T_END) {
		perr(p, p->tpos, "block assignments ({%% set x %%}...{%% endset %%}) are not supported");
		goto out;
	}
	if (!is_op(p, "=")) {
		perr(p, p->tpos, "expected '=', got %s", tok_desc(p, b, sizeof b));
		goto out;
	}
	if (lex(p) != 0 || !(n->a = parse_expr(p)) || expect_end(p) != 0 || seal(p, n) != 0)
		goto out;
	*out = n;
	n = NULL;
	rc = 0;
out:
	node_free(n);
	return rc;
}

/* {% raw %}: everything up to {% endraw %} is text. */
static int parse_raw(P *p, node *body, size_t pos)
{
	const char *s = p->s;
	size_t n = p->n;
	if (finish_tag(p) != 0)
		return -1;
	for (size_t i = p->pos; i + 1 < n; i++) {
		if (s[i] != '{' || s[i + 1] != '%')
			continue;
		size_t j = i + 2;
		if (j < n && s[j] == '-')
			j++;
		while (j < n && is_ws(s[j]))
			j++;
		if (n - j < 6 || memcmp(s + j, "endraw", 6) != 0)
			continue;
		j += 6;
		while (j < n && is_ws(s[j]))
			j++;
		int strip = 0;
		if (j < n && s[j] == '-') {
			strip = 1;
			j++;
		}
		if (j + 1 >= n || s[j] != '%' || s[j + 1] != '}')
			continue;
		size_t start = p->pos, end = i;
		if (p->rstrip_next)
			while (start < end && is_ws(s[start]))
				start++;
		if (s[i + 2] == '-')
			while (end > start && is_ws(s[end - 1]))
				end--;
		if (add_text(p, body, s + start, end - start, start) != 0)
			return -1;
		p->pos = j + 2;
		p->rstrip_next = strip;
		p->after_block = 1;
		return 0;
	}
	return perr(p, pos, "missing {%% endraw %%} for this {%% raw %%}");
}

static int parse_body(P *p, node **out, const char *const *ends, const char **ended)
{
	static const char *const stray[] = { "elif", "else", "endif", "endfor", "endraw", NULL };
	node *body = mk(p, N_BODY, p->pos);
	int rc = -1;
	char b[64];
	if (!body || enter(p) != 0)
		goto out;
	for (;;) {
		size_t tag;
		if (scan_text(p, body, &tag) != 0)
			goto out;
		if (tag >= p->n) {
			if (ends) {
				perr(p, p->n, "unexpected end of template, expected {%% %s %%}",
				     ends[0] ? ends[0] : "");
				/* name the innermost open block's end tag */
				if (p->e) {
					const char *last = ends[0];
					for (size_t k = 0; ends[k]; k++)
						last = ends[k];
					vz_err_clear(p->e);
					perr(p, p->n, "unexpected end of template, expected {%% %s %%}", last);
				}
				goto out;
			}
			break;
		}
		char kind = p->s[tag + 1];
		if (kind == '#') {
			size_t i = tag + 2;
			while (i + 1 < p->n && !(p->s[i] == '#' && p->s[i + 1] == '}'))
				i++;
			if (i + 1 >= p->n) {
				perr(p, tag, "missing end of comment tag '#}'");
				goto out;
			}
			p->rstrip_next = i > tag + 2 && p->s[i - 1] == '-';
			p->after_block = 1;
			p->pos = i + 2;
			continue;
		}
		if (kind == '{') {
			node *o = mk(p, N_OUT, tag);
			if (!o)
				goto out;
			if (open_tag(p, tag, M_VAR) != 0 || !(o->a = parse_expr(p)) || expect_end(p) != 0 ||
			    seal(p, o) != 0) {
				node_free(o);
				goto out;
			}
			if (add_kid(p, body, o) != 0)
				goto out;
			continue;
		}
		if (open_tag(p, tag, M_BLOCK) != 0)
			goto out;
		if (p->tt != T_NAME) {
			perr(p, p->tpos, "expected a tag name, got %s", tok_desc(p, b, sizeof b));
			goto out;
		}
		if (ends) {
			const char *hit = NULL;
			for (size_t k = 0; ends[k]; k++)
				if (is_name(p, ends[k]))
					hit = ends[k];
			if (hit) {
				*ended = hit;
				break;
			}
		}
		node *st = NULL;
		int r;
		if (is_name(p, "if"))
			r = parse_if(p, &st, tag);
		else if (is_name(p, "for"))
			r = parse_for(p, &st, tag);
		else if (is_name(p, "set"))
			r = parse_set(p, &st, tag);
		else if (is_name(p, "raw"))
			r = parse_raw(p, body, tag);
		else {
			int isstray = 0;
			for (size_t k = 0; stray[k]; k++)
				isstray |= is_name(p, stray[k]);
			const char *want = NULL;
			for (size_t k = 0; ends && ends[k]; k++)
				want = ends[k];
			perr(p, p->tpos, isstray ? "unexpected {%% %.*s %%}%s%s%s" : "unknown tag '%.*s'%s%s%s",
			     (int)(p->tlen > 40 ? 40 : p->tlen), p->s + p->tpos,
			     want ? ", expected {% " : "", want ? want : "", want ? " %}" : "");
			goto out;
		}
		if (r != 0)
			goto out;
		if (st && add_kid(p, body, st) != 0)
			goto out;
	}
	p->depth--;
	*out = body;
	body = NULL;
	rc = 0;
out:
	node_free(body);
	return rc;
}

/* ---- values ---- */

typedef struct C {
	const char *src;
	size_t srclen;
	const json_t *vars;
	json_t **scopes; /* innermost last; scopes[0] holds top-level {% set %} */
	size_t nscopes;
	vz_buf *out;
	size_t max_output, max_iter, max_steps, iter, steps;
	unsigned max_depth;
	char undef[256]; /* why the last NULL (undefined) value is undefined */
	vz_err *e;
} C;

static int cerr(C *c, size_t pos, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int cerr(C *c, size_t pos, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = pos_err(c->e, c->src, c->srclen, pos, code, fmt, ap);
	va_end(ap);
	return rc;
}

static int oom(C *c)
{
	return vz_err_set(c->e, VZ_ENOMEM, "out of memory rendering a template");
}

static int charge(C *c, size_t pos, size_t bytes)
{
	c->steps += 1 + bytes / 64;
	if (c->steps > c->max_steps)
		return cerr(c, pos, VZ_ETOOBIG, "template exceeded its budget of %zu evaluation steps",
			    c->max_steps);
	return 0;
}

static int undefined(C *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int undefined(C *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->undef, sizeof c->undef, fmt, ap);
	va_end(ap);
	return 0;
}

static const char *tname(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "dict";
	case JSON_ARRAY: return "list";
	case JSON_STRING: return "str";
	case JSON_INTEGER: return "int";
	case JSON_REAL: return "float";
	case JSON_TRUE:
	case JSON_FALSE: return "bool";
	default: return "NoneType";
	}
}

int vz_template_truthy(const json_t *v)
{
	if (!v)
		return 0;
	switch (json_typeof(v)) {
	case JSON_OBJECT: return json_object_size(v) != 0;
	case JSON_ARRAY: return json_array_size(v) != 0;
	case JSON_STRING: return json_string_length(v) != 0;
	case JSON_INTEGER: return json_integer_value(v) != 0;
	case JSON_REAL: return json_real_value(v) != 0.0;
	case JSON_TRUE: return 1;
	default: return 0;
	}
}

static int is_intlike(const json_t *v)
{
	return json_is_integer(v) || json_is_boolean(v);
}

static int64_t ival(const json_t *v)
{
	return json_is_boolean(v) ? (json_is_true(v) ? 1 : 0) : (int64_t)json_integer_value(v);
}

static double dval(const json_t *v)
{
	return json_is_real(v) ? json_real_value(v) : (double)ival(v);
}

static int is_num(const json_t *v)
{
	return is_intlike(v) || json_is_real(v);
}

/* Byte length of the UTF-8 character at s (1 for a bad byte). */
static size_t u8len(const char *s, size_t n)
{
	unsigned char c = (unsigned char)s[0];
	size_t l = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
	if (l > n)
		return 1;
	for (size_t i = 1; i < l; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			return 1;
	return l;
}

static size_t u8count(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i += u8len(s + i, n - i))
		k++;
	return k;
}

static json_t *str_new(const char *s, size_t n)
{
	return json_stringn_nocheck(n ? s : "", n);
}

/* Python's float repr: the shortest string that reads back as d. */
static void fmt_float(double d, char *out, size_t outsz)
{
	char tmp[48], digits[24];
	int nd = 0, ex = 0, esign = 1, neg = 0;
	if (isnan(d)) {
		snprintf(out, outsz, "nan");
		return;
	}
	if (isinf(d)) {
		snprintf(out, outsz, d < 0 ? "-inf" : "inf");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		char *end = NULL;
		snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
		if (strtod(tmp, &end) == d && end && *end == '\0')
			break;
	}
	const char *s = tmp;
	if (*s == '-') {
		neg = 1;
		s++;
	}
	for (; *s && *s != 'e'; s++)
		if (*s >= '0' && *s <= '9' && nd < 20)
			digits[nd++] = *s;
	if (*s == 'e')
		s++;
	if (*s == '-') {
		esign = -1;
		s++;
	} else if (*s == '+') {
		s++;
	}
	for (; *s >= '0' && *s <= '9'; s++)
		ex = ex * 10 + (*s - '0');
	ex *= esign;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	char r[64];
	size_t k = 0;
	if (neg)
		r[k++] = '-';
	if (ex >= -4 && ex < 16) {
		if (ex >= 0) {
			for (int i = 0; i <= ex; i++)
				r[k++] = i < nd ? digits[i] : '0';
			r[k++] = '.';
			if (nd > ex + 1)
				for (int i = ex + 1; i < nd; i++)
					r[k++] = digits[i];
			else
				r[k++] = '0';
		} else {
			r[k++] = '0';
			r[k++] = '.';
			for (int i = 0; i < -ex - 1; i++)
				r[k++] = '0';
			for (int i = 0; i < nd; i++)
				r[k++] = digits[i];
		}
		r[k] = '\0';
	} else {
		r[k++] = digits[0];
		if (nd > 1) {
			r[k++] = '.';
			for (int i = 1; i < nd; i++)
				r[k++] = digits[i];
		}
		r[k] = '\0';
		snprintf(r + k, sizeof r - k, "e%c%02d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
	}
	snprintf(out, outsz, "%s", r);
}

static void repr_str(vz_buf *b, const char *s, size_t n)
{
	char q = '\'';
	if (memchr(s, '\'', n) && !memchr(s, '"', n))
		q = '"';
	vz_buf_putc(b, q);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\\' || ch == (unsigned char)q) {
			vz_buf_putc(b, '\\');
			vz_buf_putc(b, (char)ch);
		} else if (ch == '\n') {
			vz_buf_puts(b, "\\n");
		} else if (ch == '\r') {
			vz_buf_puts(b, "\\r");
		} else if (ch == '\t') {
			vz_buf_puts(b, "\\t");
		} else if (ch < 0x20 || ch == 0x7f) {
			vz_buf_printf(b, "\\x%02x", ch);
		} else if (ch == 0xc2 && i + 1 < n && ((unsigned char)s[i + 1] < 0xa1 ||
						      (unsigned char)s[i + 1] == 0xad) &&
			   (unsigned char)s[i + 1] >= 0x80) {
			/* U+0080..U+00A0 and U+00AD are not printable: Python escapes them */
			vz_buf_printf(b, "\\x%02x", (unsigned char)s[++i]);
		} else {
			vz_buf_putc(b, (char)ch);
		}
	}
	vz_buf_putc(b, q);
}

static int too_deep(C *c, size_t pos, unsigned depth)
{
	if (depth > c->max_depth)
		return cerr(c, pos, VZ_ETOOBIG, "value nested too deeply (more than %u levels)",
			    c->max_depth);
	return 0;
}

/* How put_value prints: Python's str() (the top level of {{ }}), repr() (inside lists and
 * dicts), or json.dumps with its default separators and ensure_ascii (to_json). */
enum { P_STR, P_REPR, P_JSON };

/* A JSON string literal of s as Python's json.dumps writes it (ensure_ascii). */
static void json_str(vz_buf *b, const char *s, size_t n)
{
	vz_buf_putc(b, '"');
	for (size_t i = 0; i < n;) {
		unsigned char ch = (unsigned char)s[i];
		size_t l = u8len(s + i, n - i);
		uint32_t cp = ch;
		if (l == 2) cp = ((ch & 0x1fu) << 6) | (s[i + 1] & 0x3f);
		else if (l == 3) cp = ((ch & 0x0fu) << 12) | ((s[i + 1] & 0x3fu) << 6) | (s[i + 2] & 0x3f);
		else if (l == 4) cp = ((ch & 0x07u) << 18) | ((s[i + 1] & 0x3fu) << 12) |
				      ((s[i + 2] & 0x3fu) << 6) | (s[i + 3] & 0x3f);
		i += l;
		if (cp == '"') vz_buf_puts(b, "\\\"");
		else if (cp == '\\') vz_buf_puts(b, "\\\\");
		else if (cp == '\n') vz_buf_puts(b, "\\n");
		else if (cp == '\r') vz_buf_puts(b, "\\r");
		else if (cp == '\t') vz_buf_puts(b, "\\t");
		else if (cp == '\b') vz_buf_puts(b, "\\b");
		else if (cp == '\f') vz_buf_puts(b, "\\f");
		else if (cp < 0x20 || (cp > 0x7e && cp < 0x10000)) vz_buf_printf(b, "\\u%04x", cp);
		else if (cp >= 0x10000) {
			cp -= 0x10000;
			vz_buf_printf(b, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
		} else vz_buf_putc(b, (char)cp);
	}
	vz_buf_putc(b, '"');
}

static void put_string(vz_buf *b, const char *s, size_t n, int style)
{
	if (style == P_STR)
		vz_buf_add(b, s, n);
	else if (style == P_REPR)
		repr_str(b, s, n);
	else
		json_str(b, s, n);
}

/* Appends v to b in the given style (P_STR, P_REPR or P_JSON). */
static int put_value(C *c, size_t pos, vz_buf *b, const json_t *v, int style, unsigned depth)
{
	char num[64];
	int inner = style == P_JSON ? P_JSON : P_REPR;
	if (too_deep(c, pos, depth) != 0)
		return -1;
	switch (json_typeof(v)) {
	case JSON_STRING:
		put_string(b, json_string_value(v), json_string_length(v), style);
		break;
	case JSON_INTEGER:
		vz_buf_printf(b, "%lld", (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		fmt_float(json_real_value(v), num, sizeof num);
		vz_buf_puts(b, num);
		break;
	case JSON_TRUE: vz_buf_puts(b, style == P_JSON ? "true" : "True"); break;
	case JSON_FALSE: vz_buf_puts(b, style == P_JSON ? "false" : "False"); break;
	case JSON_NULL: vz_buf_puts(b, style == P_JSON ? "null" : "None"); break;
	case JSON_ARRAY:
		vz_buf_putc(b, '[');
		for (size_t i = 0; i < json_array_size(v) && !b->failed; i++) {
			if (i)
				vz_buf_puts(b, ", ");
			if (put_value(c, pos, b, json_array_get(v, i), inner, depth + 1) != 0)
				return -1;
		}
		vz_buf_putc(b, ']');
		break;
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		int first = 1;
		vz_buf_putc(b, '{');
		json_object_foreach((json_t *)v, k, x) {
			if (b->failed)
				break;
			if (!first)
				vz_buf_puts(b, ", ");
			first = 0;
			if (too_deep(c, pos, depth + 1) != 0)
				return -1;
			put_string(b, k, strlen(k), inner);
			vz_buf_puts(b, ": ");
			if (put_value(c, pos, b, x, inner, depth + 1) != 0)
				return -1;
		}
		vz_buf_putc(b, '}');
		break;
	}
	}
	return 0;
}

static int buf_check(C *c, size_t pos, vz_buf *b, const char *what)
{
	if (b->failed == VZ_ETOOBIG)
		return cerr(c, pos, VZ_ETOOBIG, "%s exceeds %zu bytes", what, b->max);
	if (b->failed)
		return oom(c);
	return charge(c, pos, b->len);
}

/* str(v) as a new JSON string (v itself, with a new reference, when it is one). */
static int to_str(C *c, size_t pos, json_t *v, json_t **out)
{
	if (json_is_string(v)) {
		*out = json_incref(v);
		return 0;
	}
	vz_buf b = VZ_BUF_INIT(c->max_output);
	int rc = put_value(c, pos, &b, v, P_STR, 0);
	if (rc == 0)
		rc = buf_check(c, pos, &b, "string value");
	if (rc == 0 && !(*out = str_new(b.ptr, b.len)))
		rc = oom(c);
	vz_buf_free(&b);
	return rc;
}

/* Python ==, recursing into lists and dicts. */
static int equal(C *c, size_t pos, const json_t *a, const json_t *b, unsigned depth, int *res)
{
	if (too_deep(c, pos, depth) != 0)
		return -1;
	if (is_num(a) && is_num(b)) {
		if (is_intlike(a) && is_intlike(b))
			*res = ival(a) == ival(b);
		else
			*res = dval(a) == dval(b);
		return 0;
	}
	*res = 0;
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_STRING:
		*res = json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
		return 0;
	case JSON_NULL:
		*res = 1;
		return 0;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (size_t i = 0; i < json_array_size(a); i++) {
			if (charge(c, pos, 0) != 0 ||
			    equal(c, pos, json_array_get(a, i), json_array_get(b, i), depth + 1, res) != 0)
				return -1;
			if (!*res)
				return 0;
		}
		*res = 1;
		return 0;
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		if (json_object_size(a) != json_object_size(b))
			return 0;
		json_object_foreach((json_t *)a, k, x) {
			json_t *y = json_object_get(b, k);
			if (!y)
				return 0;
			if (charge(c, pos, 0) != 0 || equal(c, pos, x, y, depth + 1, res) != 0)
				return -1;
			if (!*res)
				return 0;
		}
		*res = 1;
		return 0;
	}
	default:
		return 0;
	}
}

static const char *cmp_sym(int op)
{
	switch (op) {
	case C_LT: return "<";
	case C_LE: return "<=";
	case C_GT: return ">";
	default: return ">=";
	}
}

/* Python ordering of a and b into *res (<0, 0, >0); a TypeError for unorderable types. */
static int order(C *c, size_t pos, int op, const json_t *a, const json_t *b, unsigned depth, int *res)
{
	if (too_deep(c, pos, depth) != 0)
		return -1;
	if (is_num(a) && is_num(b)) {
		if (is_intlike(a) && is_intlike(b)) {
			int64_t x = ival(a), y = ival(b);
			*res = x < y ? -1 : x > y;
		} else {
			double x = dval(a), y = dval(b);
			*res = x < y ? -1 : x > y;
		}
		return 0;
	}
	if (json_is_string(a) && json_is_string(b)) {
		size_t la = json_string_length(a), lb = json_string_length(b);
		int r = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
		*res = r ? r : (la < lb ? -1 : la > lb);
		return charge(c, pos, la < lb ? la : lb);
	}
	if (json_is_array(a) && json_is_array(b)) {
		size_t la = json_array_size(a), lb = json_array_size(b);
		for (size_t i = 0; i < la && i < lb; i++) {
			int eq;
			json_t *x = json_array_get(a, i), *y = json_array_get(b, i);
			if (charge(c, pos, 0) != 0 || equal(c, pos, x, y, depth + 1, &eq) != 0)
				return -1;
			if (!eq)
				return order(c, pos, op, x, y, depth + 1, res);
		}
		*res = la < lb ? -1 : la > lb;
		return 0;
	}
	return cerr(c, pos, VZ_EINVAL, "'%s' not supported between instances of '%s' and '%s'",
		    cmp_sym(op), tname(a), tname(b));
}

/* ---- evaluation ---- */

static int eval(C *c, const node *n, json_t **out);
static int eval_filter(C *c, const node *n, json_t **out);

/* eval, with Undefined an error naming what is undefined. */
static int eval_def(C *c, const node *n, json_t **out)
{
	int rc = eval(c, n, out);
	if (rc == 0 && !*out)
		return cerr(c, n->pos, VZ_EINVAL, "%s", c->undef);
	return rc;
}

static int set_out(C *c, json_t **out, json_t *v)
{
	*out = v;
	return v ? 0 : oom(c);
}

static int lookup(C *c, const node *n, json_t **out)
{
	for (size_t i = c->nscopes; i-- > 0;) {
		json_t *v = json_object_get(c->scopes[i], n->name);
		if (v) {
			*out = json_incref(v);
			return 0;
		}
	}
	json_t *v = c->vars ? json_object_get(c->vars, n->name) : NULL;
	if (v) {
		*out = json_incref(v);
		return 0;
	}
	*out = NULL;
	return undefined(c, "'%s' is undefined", n->name);
}

static const char *objrepr(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "dict object";
	case JSON_ARRAY: return "list object";
	case JSON_STRING: return "str object";
	case JSON_INTEGER: return "int object";
	case JSON_REAL: return "float object";
	case JSON_TRUE:
	case JSON_FALSE: return "bool object";
	default: return "None";
	}
}

static void missing_attr(C *c, const json_t *obj, const char *name)
{
	undefined(c, "'%s' has no attribute '%s'", objrepr(obj), name);
}

/* The UTF-8 characters of a string as a list of one-character strings. */
static int str_chars(C *c, size_t pos, const json_t *s, json_t **out)
{
	const char *p = json_string_value(s);
	size_t n = json_string_length(s);
	json_t *l = json_array();
	if (!l)
		return oom(c);
	for (size_t i = 0; i < n;) {
		size_t k = u8len(p + i, n - i);
		if (json_array_append_new(l, str_new(p + i, k)) != 0) {
			json_decref(l);
			return oom(c);
		}
		i += k;
	}
	*out = l;
	return charge(c, pos, n * 8);
}

/* Subscript obj[key] with Jinja2's fallbacks; *out NULL (Undefined) when missing. */
static int subscript(C *c, size_t pos, json_t *obj, json_t *key, json_t **out)
{
	*out = NULL;
	if (json_is_object(obj)) {
		if (json_is_string(key)) {
			const char *k = json_string_value(key);
			json_t *v = strlen(k) == json_string_length(key) ? json_object_get(obj, k) : NULL;
			if (v) {
				*out = json_incref(v);
				return 0;
			}
			missing_attr(c, obj, k);
			return 0;
		}
		vz_buf b = VZ_BUF_INIT(200);
		put_value(c, pos, &b, key, P_REPR, c->max_depth);
		undefined(c, "%s has no element %s", objrepr(obj), b.ptr ? b.ptr : "?");
		vz_buf_free(&b);
		return 0;
	}
	if ((json_is_array(obj) || json_is_string(obj)) && is_intlike(key)) {
		int64_t i = ival(key), len;
		json_t *chars = NULL;
		if (json_is_string(obj)) {
			if (str_chars(c, pos, obj, &chars) != 0)
				return -1;
			obj = chars;
		}
		len = (int64_t)json_array_size(obj);
		int64_t j = i < 0 ? i + len : i;
		if (j >= 0 && j < len)
			*out = json_incref(json_array_get(obj, (size_t)j));
		else
			undefined(c, "%s has no element %lld", objrepr(chars ? chars : obj), (long long)i);
		if (chars && !*out)
			undefined(c, "str object has no element %lld", (long long)i);
		json_decref(chars);
		return 0;
	}
	if (json_is_string(key)) {
		missing_attr(c, obj, json_string_value(key));
		return 0;
	}
	if (json_is_array(obj) || json_is_string(obj))
		return cerr(c, pos, VZ_EINVAL, "%s indices must be integers, not %s", tname(obj), tname(key));
	return cerr(c, pos, VZ_EINVAL, "'%s' object is not subscriptable", tname(obj));
}

static int slice_index(C *c, const node *n, int64_t *v, int *given)
{
	json_t *x = NULL;
	*given = 0;
	if (!n)
		return 0;
	if (eval_def(c, n, &x) != 0)
		return -1;
	if (!json_is_null(x)) {
		if (!is_intlike(x)) {
			json_decref(x);
			return cerr(c, n->pos, VZ_EINVAL, "slice indices must be integers or None");
		}
		*v = ival(x);
		*given = 1;
	}
	json_decref(x);
	return 0;
}

static int eval_slice(C *c, const node *n, json_t **out)
{
	json_t *obj = NULL, *seq = NULL, *res = NULL;
	int64_t start = 0, stop = 0, step = 1;
	int gs, ge, gp, rc = -1;
	if (eval_def(c, n->a, &obj) != 0 || slice_index(c, n->b, &start, &gs) != 0 ||
	    slice_index(c, n->c, &stop, &ge) != 0 ||
	    slice_index(c, n->nkids ? n->kids[0] : NULL, &step, &gp) != 0)
		goto out;
	if (!gp)
		step = 1;
	if (step == 0) {
		cerr(c, n->pos, VZ_EINVAL, "slice step cannot be zero");
		goto out;
	}
	if (json_is_string(obj)) {
		if (str_chars(c, n->pos, obj, &seq) != 0)
			goto out;
	} else if (json_is_array(obj)) {
		seq = json_incref(obj);
	} else {
		cerr(c, n->pos, VZ_EINVAL, "'%s' object is not subscriptable", tname(obj));
		goto out;
	}
	int64_t len = (int64_t)json_array_size(seq);
	if (!gs) start = step < 0 ? len - 1 : 0;
	else if (start < 0 && (start += len) < 0) start = step < 0 ? -1 : 0;
	else if (start >= len) start = step < 0 ? len - 1 : len;
	if (!ge) stop = step < 0 ? -1 : len;
	else if (stop < 0 && (stop += len) < 0) stop = step < 0 ? -1 : 0;
	else if (stop >= len) stop = step < 0 ? len - 1 : len;
	res = json_array();
	if (!res) {
		oom(c);
		goto out;
	}
	for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
		if (json_array_append(res, json_array_get(seq, (size_t)i)) != 0) {
			oom(c);
			goto out;
		}
		if (step > 0 ? i > INT64_MAX - step : i < INT64_MIN - step)
			break;
	}
	if (charge(c, n->pos, json_array_size(res) * 8) != 0)
		goto out;
	if (json_is_string(obj)) {
		vz_buf b = VZ_BUF_INIT(SIZE_MAX);
		for (size_t i = 0; i < json_array_size(res); i++) {
			json_t *ch = json_array_get(res, i);
			vz_buf_add(&b, json_string_value(ch), json_string_length(ch));
		}
		json_decref(res);
		res = b.failed ? NULL : str_new(b.ptr, b.len);
		vz_buf_free(&b);
		if (!res) {
			oom(c);
			goto out;
		}
	}
	*out = res;
	res = NULL;
	rc = 0;
out:
	json_decref(obj);
	json_decref(seq);
	json_decref(res);
	return rc;
}

/* The build links no libm, so the few float helpers needed are here, exact as C's. */
static double x_floor(double x)
{
	if (!(fabs(x) < 4503599627370496.0)) /* 2^52: already integral (or nan/inf) */
		return x;
	double t = (double)(int64_t)x;
	if (t > x)
		t -= 1.0;
	return t == 0.0 ? copysign(0.0, x) : t;
}

/* fmod by binary long division: each subtraction is exact (Sterbenz), as IEEE fmod. */
static double x_fmod(double a, double b)
{
	double r = fabs(a), m = fabs(b), t = m;
	if (!isfinite(a) || b == 0 || isnan(b))
		return NAN;
	if (r < m || isinf(b))
		return a;
	while (t <= r / 2)
		t *= 2;
	while (t >= m) {
		if (r >= t)
			r -= t;
		t /= 2;
	}
	return copysign(r, a);
}

/* a ** b for an integral b, by squaring; *ok 0 for a non-integral b. */
static double x_powi(double a, double b, int *ok)
{
	double r = 1.0;
	*ok = x_floor(b) == b;
	if (!*ok)
		return 0;
	int neg = b < 0;
	b = fabs(b);
	if (b > 4611686018427387904.0) /* 2^62: the result is 0, 1 or inf anyway */
		b = 4611686018427387904.0 + (x_fmod(b, 2.0) == 1.0 ? 1 : 0);
	uint64_t e = (uint64_t)b;
	while (e) {
		if (e & 1)
			r *= a;
		a *= a;
		e >>= 1;
	}
	return neg ? 1.0 / r : r;
}

static int checked_int(C *c, size_t pos, int ok, int64_t r, json_t **out)
{
	if (!ok)
		return cerr(c, pos, VZ_EINVAL, "integer overflow (vinz integers are 64-bit)");
	return set_out(c, out, json_integer((json_int_t)r));
}

static int checked_real(C *c, size_t pos, double d, json_t **out)
{
	if (!isfinite(d))
		return cerr(c, pos, VZ_EINVAL, "float result out of range");
	return set_out(c, out, json_real(d));
}

static const char *op_sym(int op)
{
	static const char *const s[] = { "+", "-", "*", "/", "//", "%", "**", "~" };
	return s[op];
}

/* seq * count for strings and lists, capped like any other value. */
static int repeat(C *c, size_t pos, json_t *seq, int64_t count, json_t **out)
{
	size_t unit = json_is_string(seq) ? json_string_length(seq) : json_array_size(seq);
	if (count < 0)
		count = 0;
	if (unit && (uint64_t)count > c->max_output / unit)
		return cerr(c, pos, VZ_ETOOBIG, "repeated %s would exceed %zu %s", tname(seq),
			    c->max_output, json_is_string(seq) ? "bytes" : "items");
	if (charge(c, pos, unit * (size_t)count) != 0)
		return -1;
	if (json_is_string(seq)) {
		vz_buf b = VZ_BUF_INIT(SIZE_MAX);
		for (int64_t i = 0; i < count; i++)
			vz_buf_add(&b, json_string_value(seq), unit);
		json_t *r = b.failed ? NULL : str_new(b.ptr, b.len);
		vz_buf_free(&b);
		return set_out(c, out, r);
	}
	json_t *r = json_array();
	for (int64_t i = 0; r && i < count; i++)
		if (json_array_extend(r, seq) != 0) {
			json_decref(r);
			r = NULL;
		}
	return set_out(c, out, r);
}

static int arith(C *c, size_t pos, int op, json_t *l, json_t *r, json_t **out)
{
	if (is_num(l) && is_num(r)) {
		if (is_intlike(l) && is_intlike(r) && op != OP_DIV) {
			int64_t a = ival(l), b = ival(r), x = 0;
			switch (op) {
			case OP_ADD: { int ok = !__builtin_add_overflow(a, b, &x); return checked_int(c, pos, ok, x, out); }
			case OP_SUB: { int ok = !__builtin_sub_overflow(a, b, &x); return checked_int(c, pos, ok, x, out); }
			case OP_MUL: { int ok = !__builtin_mul_overflow(a, b, &x); return checked_int(c, pos, ok, x, out); }
			case OP_FDIV:
			case OP_MOD:
				if (b == 0)
					return cerr(c, pos, VZ_EINVAL, op == OP_MOD ? "integer modulo by zero" :
						    "integer division or modulo by zero");
				if (a == INT64_MIN && b == -1)
					return op == OP_MOD ? set_out(c, out, json_integer(0))
							    : checked_int(c, pos, 0, 0, out);
				x = a % b;
				if (op == OP_MOD)
					return set_out(c, out, json_integer((json_int_t)((x != 0 && ((x < 0) != (b < 0))) ? x + b : x)));
				return set_out(c, out, json_integer((json_int_t)(a / b - ((x != 0 && ((x < 0) != (b < 0))) ? 1 : 0))));
			case OP_POW:
				if (b < 0)
					break; /* a float, as in Python */
				x = 1;
				for (int64_t i = 0; i < b; i++) {
					if (__builtin_mul_overflow(x, a, &x))
						return checked_int(c, pos, 0, 0, out);
					if (x == 0 || x == 1 || (x == -1 && a == -1)) {
						if (a == -1)
							x = (b % 2) ? -1 : 1;
						break;
					}
				}
				return set_out(c, out, json_integer((json_int_t)x));
			}
		}
		double a = dval(l), b = dval(r);
		switch (op) {
		case OP_ADD: return checked_real(c, pos, a + b, out);
		case OP_SUB: return checked_real(c, pos, a - b, out);
		case OP_MUL: return checked_real(c, pos, a * b, out);
		case OP_DIV:
			if (b == 0)
				return cerr(c, pos, VZ_EINVAL, is_intlike(l) && is_intlike(r) ?
					    "division by zero" : "float division by zero");
			return checked_real(c, pos, a / b, out);
		case OP_FDIV:
		case OP_MOD: {
			if (b == 0)
				return cerr(c, pos, VZ_EINVAL, op == OP_MOD ? "float modulo by zero"
							 : "float floor division by zero");
			/* CPython's float_divmod */
			double mod = x_fmod(a, b), div = (a - mod) / b, fl;
			if (mod != 0) {
				if ((b < 0) != (mod < 0)) {
					mod += b;
					div -= 1.0;
				}
			} else {
				mod = copysign(0.0, b);
			}
			if (div != 0) {
				fl = x_floor(div);
				if (div - fl > 0.5)
					fl += 1.0;
			} else {
				fl = copysign(0.0, a / b);
			}
			return checked_real(c, pos, op == OP_MOD ? mod : fl, out);
		}
		case OP_POW:
			if (a == 0 && b < 0)
				return cerr(c, pos, VZ_EINVAL, "0.0 cannot be raised to a negative power");
			{
				int ok;
				double pw = x_powi(a, b, &ok);
				if (!ok)
					return cerr(c, pos, VZ_EINVAL, "non-integral float exponents are not supported");
				return checked_real(c, pos, pw, out);
			}
		}
	}
	if (op == OP_ADD && json_is_string(l) && json_is_string(r)) {
		size_t la = json_string_length(l), lb = json_string_length(r);
		if (la + lb > c->max_output)
			return cerr(c, pos, VZ_ETOOBIG, "string value exceeds %zu bytes", c->max_output);
		if (charge(c, pos, la + lb) != 0)
			return -1;
		char *s = malloc(la + lb + 1);
		if (!s)
			return oom(c);
		memcpy(s, json_string_value(l), la);
		memcpy(s + la, json_string_value(r), lb);
		json_t *v = str_new(s, la + lb);
		free(s);
		return set_out(c, out, v);
	}
	if (op == OP_ADD && json_is_array(l) && json_is_array(r)) {
		if (json_array_size(l) + json_array_size(r) > c->max_output)
			return cerr(c, pos, VZ_ETOOBIG, "list exceeds %zu items", c->max_output);
		if (charge(c, pos, (json_array_size(l) + json_array_size(r)) * 8) != 0)
			return -1;
		json_t *v = json_array();
		if (!v || json_array_extend(v, l) != 0 || json_array_extend(v, r) != 0) {
			json_decref(v);
			return oom(c);
		}
		*out = v;
		return 0;
	}
	if (op == OP_MUL && (json_is_string(l) || json_is_array(l)) && is_intlike(r))
		return repeat(c, pos, l, ival(r), out);
	if (op == OP_MUL && (json_is_string(r) || json_is_array(r)) && is_intlike(l))
		return repeat(c, pos, r, ival(l), out);
	return cerr(c, pos, VZ_EINVAL, "unsupported operand type(s) for %s: '%s' and '%s'", op_sym(op),
		    tname(l), tname(r));
}

static int eval_bin(C *c, const node *n, json_t **out)
{
	json_t *l = NULL, *r = NULL;
	int rc = -1;
	if (eval_def(c, n->a, &l) != 0 || eval_def(c, n->b, &r) != 0)
		goto out;
	if (n->op == OP_CAT) {
		json_t *ls = NULL, *rs = NULL;
		if (to_str(c, n->pos, l, &ls) != 0)
			goto out;
		if (to_str(c, n->pos, r, &rs) != 0) {
			json_decref(ls);
			goto out;
		}
		rc = arith(c, n->pos, OP_ADD, ls, rs, out);
		json_decref(ls);
		json_decref(rs);
		goto out;
	}
	rc = arith(c, n->pos, n->op, l, r, out);
out:
	json_decref(l);
	json_decref(r);
	return rc;
}

/* Python's `needle in hay`. */
static int contains(C *c, size_t pos, json_t *needle, json_t *hay, int *res)
{
	*res = 0;
	if (json_is_string(hay)) {
		if (!json_is_string(needle))
			return cerr(c, pos, VZ_EINVAL, "'in <string>' requires string as left operand, not %s",
				    tname(needle));
		const char *h = json_string_value(hay), *s = json_string_value(needle);
		size_t hn = json_string_length(hay), sn = json_string_length(needle);
		if (charge(c, pos, hn) != 0)
			return -1;
		for (size_t i = 0; i + sn <= hn; i++)
			if (memcmp(h + i, s, sn) == 0) {
				*res = 1;
				break;
			}
		return 0;
	}
	if (json_is_array(hay)) {
		for (size_t i = 0; i < json_array_size(hay); i++) {
			if (charge(c, pos, 0) != 0 || equal(c, pos, needle, json_array_get(hay, i), 0, res) != 0)
				return -1;
			if (*res)
				return 0;
		}
		return 0;
	}
	if (json_is_object(hay)) {
		if (json_is_string(needle) && strlen(json_string_value(needle)) == json_string_length(needle))
			*res = json_object_get(hay, json_string_value(needle)) != NULL;
		return 0;
	}
	return cerr(c, pos, VZ_EINVAL, "argument of type '%s' is not iterable", tname(hay));
}

static int eval_cmp(C *c, const node *n, json_t **out)
{
	json_t *l = NULL, *r = NULL;
	int res = 1, rc = -1;
	if (eval_def(c, n->a, &l) != 0)
		goto out;
	for (size_t i = 0; i < n->nkids && res; i++) {
		const node *w = n->kids[i];
		int t;
		if (eval_def(c, w->a, &r) != 0)
			goto out;
		switch (w->op) {
		case C_EQ:
		case C_NE:
			if (equal(c, w->pos, l, r, 0, &t) != 0)
				goto out;
			res = w->op == C_EQ ? t : !t;
			break;
		case C_IN:
		case C_NOTIN:
			if (contains(c, w->pos, l, r, &t) != 0)
				goto out;
			res = w->op == C_IN ? t : !t;
			break;
		default:
			if (order(c, w->pos, w->op, l, r, 0, &t) != 0)
				goto out;
			res = w->op == C_LT ? t < 0 : w->op == C_LE ? t <= 0 : w->op == C_GT ? t > 0 : t >= 0;
			break;
		}
		json_decref(l);
		l = r;
		r = NULL;
	}
	*out = json_boolean(res);
	rc = 0;
out:
	json_decref(l);
	json_decref(r);
	return rc;
}

/* Checks that a container built here stays under the depth cap. */
static int depth_ok(C *c, size_t pos, const json_t *v, unsigned depth)
{
	if (too_deep(c, pos, depth) != 0)
		return -1;
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			if (charge(c, pos, 0) != 0 || depth_ok(c, pos, json_array_get(v, i), depth + 1) != 0)
				return -1;
	} else if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)v, k, x)
			if (charge(c, pos, 0) != 0 || depth_ok(c, pos, x, depth + 1) != 0)
				return -1;
	}
	return 0;
}

static int eval_list(C *c, const node *n, json_t **out)
{
	json_t *l = n->kind == N_LIST ? json_array() : json_object();
	if (!l)
		return oom(c);
	for (size_t i = 0; i < n->nkids; i++) {
		json_t *v = NULL, *k = NULL;
		if (n->kind == N_DICT) {
			if (eval_def(c, n->kids[i], &k) != 0)
				goto fail;
			if (!json_is_string(k) || strlen(json_string_value(k)) != json_string_length(k)) {
				cerr(c, n->kids[i]->pos, VZ_EINVAL,
				     "dict keys must be strings without NUL bytes, not %s", tname(k));
				json_decref(k);
				goto fail;
			}
			i++;
		}
		if (eval_def(c, n->kids[i], &v) != 0 || depth_ok(c, n->kids[i]->pos, v, 2) != 0) {
			json_decref(k);
			json_decref(v);
			goto fail;
		}
		int r = k ? json_object_set_new_nocheck(l, json_string_value(k), v)
			  : json_array_append_new(l, v);
		json_decref(k);
		if (r != 0) {
			oom(c);
			goto fail;
		}
	}
	*out = l;
	return 0;
fail:
	json_decref(l);
	return -1;
}

/* ---- filters, tests and method calls ---- */

/* A call's arguments, evaluated: positional ones first in order, keyword ones with kw set. */
#define MAX_ARGS 16
typedef struct cargs {
	size_t n;
	json_t *v[MAX_ARGS];
	const char *kw[MAX_ARGS]; /* NULL for a positional argument; borrowed from the tree */
	size_t pos[MAX_ARGS];
} cargs;

static void cargs_free(cargs *a)
{
	for (size_t i = 0; i < a->n; i++)
		json_decref(a->v[i]);
	a->n = 0;
}

/* Evaluates every argument of call node n into a (Undefined is an error). */
static int eval_args(C *c, const node *n, const char *what, cargs *a)
{
	a->n = 0;
	if (n->nkids > MAX_ARGS)
		return cerr(c, n->kids[MAX_ARGS]->pos, VZ_EINVAL, "%s: more than %d arguments", what, MAX_ARGS);
	for (size_t i = 0; i < n->nkids; i++) {
		json_t *v = NULL;
		if (eval_def(c, n->kids[i], &v) != 0) {
			cargs_free(a);
			return -1;
		}
		a->v[a->n] = v;
		a->kw[a->n] = n->kids[i]->kw;
		a->pos[a->n++] = n->kids[i]->pos;
	}
	return 0;
}

/* Binds a's arguments from the from-th positional one on to vals[] by parameter name (new
 * references; missing ones stay NULL). */
static int bind_vals(C *c, size_t pos, const char *what, const char *const *params, size_t np,
		     const cargs *a, size_t from, json_t **vals)
{
	size_t next = 0, seen = 0;
	for (size_t i = 0; i < np; i++)
		vals[i] = NULL;
	for (size_t i = 0; i < a->n; i++) {
		size_t slot = 0, apos = a->pos[i] ? a->pos[i] : pos;
		if (a->kw[i]) {
			while (slot < np && strcmp(params[slot], a->kw[i]) != 0)
				slot++;
			if (slot == np) {
				cerr(c, apos, VZ_EINVAL, "%s got an unexpected keyword argument '%s'", what, a->kw[i]);
				goto fail;
			}
		} else {
			if (seen++ < from)
				continue;
			slot = next++;
			if (slot >= np) {
				cerr(c, apos, VZ_EINVAL, "%s takes at most %zu argument%s", what, np,
				     np == 1 ? "" : "s");
				goto fail;
			}
		}
		if (vals[slot]) {
			cerr(c, apos, VZ_EINVAL, "%s got multiple values for argument '%s'", what, params[slot]);
			goto fail;
		}
		vals[slot] = json_incref(a->v[i]);
	}
	return 0;
fail:
	for (size_t i = 0; i < np; i++) {
		json_decref(vals[i]);
		vals[i] = NULL;
	}
	return -1;
}

/* Evaluates n's arguments into vals[] by parameter name; missing ones stay NULL. */
static int bind(C *c, const node *n, const char *what, const char *const *params, size_t np,
		json_t **vals)
{
	cargs a;
	for (size_t i = 0; i < np; i++)
		vals[i] = NULL;
	if (eval_args(c, n, what, &a) != 0)
		return -1;
	int rc = bind_vals(c, n->pos, what, params, np, &a, 0, vals);
	cargs_free(&a);
	return rc;
}

/* list(v): lists as they are, strings as characters, dicts as keys. */
static int to_list(C *c, size_t pos, json_t *v, json_t **out)
{
	if (json_is_array(v)) {
		*out = json_incref(v);
		return 0;
	}
	if (json_is_string(v))
		return str_chars(c, pos, v, out);
	if (json_is_object(v)) {
		const char *k;
		json_t *x, *l = json_array();
		if (!l)
			return oom(c);
		json_object_foreach(v, k, x) {
			if (json_array_append_new(l, json_string_nocheck(k)) != 0) {
				json_decref(l);
				return oom(c);
			}
		}
		*out = l;
		return charge(c, pos, json_array_size(l) * 8);
	}
	return cerr(c, pos, VZ_EINVAL, "'%s' object is not iterable", tname(v));
}

static int need_str(C *c, size_t pos, const char *what, json_t *v)
{
	if (!json_is_string(v))
		return cerr(c, pos, VZ_EINVAL, "%s expects a string, not %s", what, tname(v));
	return 0;
}

typedef int (*filter_fn)(C *c, const node *n, json_t *v, json_t **a, json_t **out);

static int f_default(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	if (!v || (a[1] && vz_template_truthy(a[1]) && !vz_template_truthy(v)))
		return set_out(c, out, a[0] ? json_incref(a[0]) : json_string(""));
	*out = json_incref(v);
	return 0;
}

static int f_bool(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	int r = 0;
	if (json_is_null(v)) { /* Ansible's bool passes None through */
		*out = json_null();
		return 0;
	}
	if (json_is_boolean(v)) {
		r = json_is_true(v);
	} else if (json_is_string(v)) {
		static const char *const yes[] = { "yes", "on", "1", "true" };
		const char *s = json_string_value(v);
		size_t l = json_string_length(v);
		for (size_t i = 0; i < 4; i++) {
			if (strlen(yes[i]) != l)
				continue;
			size_t k = 0;
			while (k < l && tolower((unsigned char)s[k]) == yes[i][k])
				k++;
			r |= k == l;
		}
	} else if (json_is_integer(v)) {
		r = json_integer_value(v) == 1;
	} else if (json_is_real(v)) {
		r = json_real_value(v) == 1.0;
	}
	*out = json_boolean(r);
	return 0;
}

/* Python int(s, base) for a string: whitespace around, a sign, _ between digits, 0x/0o/0b. */
static int parse_int_str(const char *s, size_t n, int64_t base, int64_t *out)
{
	size_t i = 0;
	int neg = 0, any = 0;
	uint64_t acc = 0, lim;
	while (n > 0 && (is_ws(s[n - 1]) || (s[n - 1] >= 0x1c && s[n - 1] <= 0x1f)))
		n--;
	while (i < n && (is_ws(s[i]) || (s[i] >= 0x1c && s[i] <= 0x1f)))
		i++;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	if (i + 1 < n && s[i] == '0') {
		char x = (char)tolower((unsigned char)s[i + 1]);
		if ((x == 'x' && base == 16) || (x == 'o' && base == 8) || (x == 'b' && base == 2))
			i += 2;
	}
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		int d;
		char ch = s[i];
		if (ch == '_' && any && i + 1 < n && s[i + 1] != '_')
			continue;
		if (ch >= '0' && ch <= '9') d = ch - '0';
		else if (ch >= 'a' && ch <= 'z') d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'Z') d = ch - 'A' + 10;
		else return -1;
		if (d >= base)
			return -1;
		if (acc > (lim - (uint64_t)d) / (uint64_t)base)
			return -2;
		acc = acc * (uint64_t)base + (uint64_t)d;
		any = 1;
	}
	if (!any)
		return -1;
	*out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return 0;
}

/* Python float(s) for a string; 0 and *out, or -1. */
static int parse_float_str(const char *s, size_t n, double *out)
{
	char tmp[128];
	size_t k = 0;
	while (n > 0 && is_ws(s[n - 1]))
		n--;
	while (n > 0 && is_ws(*s)) {
		s++;
		n--;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '_')
			continue;
		if (ch == 'x' || ch == 'X' || ch == 'p' || ch == 'P' || k + 1 >= sizeof tmp || ch == '\0')
			return -1; /* no C hex floats */
		tmp[k++] = ch;
	}
	tmp[k] = '\0';
	if (k == 0)
		return -1;
	char *end = NULL;
	double d = strtod(tmp, &end);
	if (!end || *end != '\0')
		return -1;
	*out = d;
	return 0;
}

static int float_to_int(C *c, size_t pos, double d, json_t **out)
{
	if (isnan(d))
		return cerr(c, pos, VZ_EINVAL, "cannot convert float NaN to integer");
	if (!(d > -9223372036854775808.0 - 1.0 && d < 9223372036854775808.0))
		return cerr(c, pos, VZ_EINVAL, "integer overflow (vinz integers are 64-bit)");
	return set_out(c, out, json_integer((json_int_t)d));
}

static int f_int(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	int64_t base = 10, i;
	if (a[1]) {
		if (!is_intlike(a[1]) || (ival(a[1]) != 0 && (ival(a[1]) < 2 || ival(a[1]) > 36)))
			return cerr(c, n->pos, VZ_EINVAL, "int: base must be 0 or 2..36");
		base = ival(a[1]);
	}
	if (is_intlike(v))
		return set_out(c, out, json_integer((json_int_t)ival(v)));
	if (json_is_real(v))
		return float_to_int(c, n->pos, json_real_value(v), out);
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t l = json_string_length(v);
		double d;
		int r = parse_int_str(s, l, base ? base : 10, &i);
		if (r == 0)
			return set_out(c, out, json_integer((json_int_t)i));
		if (r == -2)
			return cerr(c, n->pos, VZ_EINVAL, "integer overflow (vinz integers are 64-bit)");
		if (parse_float_str(s, l, &d) == 0 && !isnan(d))
			return float_to_int(c, n->pos, d, out);
	}
	return set_out(c, out, a[0] ? json_incref(a[0]) : json_integer(0));
}

static int f_float(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	double d;
	if (is_num(v))
		return checked_real(c, n->pos, dval(v), out);
	if (json_is_string(v) && parse_float_str(json_string_value(v), json_string_length(v), &d) == 0 &&
	    isfinite(d))
		return set_out(c, out, json_real(d));
	return set_out(c, out, a[0] ? json_incref(a[0]) : json_real(0.0));
}

static int f_string(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	return to_str(c, n->pos, v, out);
}

/* str(v) with each byte through map (ASCII case mapping). */
static int map_str(C *c, const node *n, json_t *v, int upper, json_t **out)
{
	json_t *s = NULL;
	if (to_str(c, n->pos, v, &s) != 0)
		return -1;
	size_t l = json_string_length(s);
	char *t = malloc(l + 1);
	if (!t) {
		json_decref(s);
		return oom(c);
	}
	for (size_t i = 0; i < l; i++) {
		unsigned char ch = (unsigned char)json_string_value(s)[i];
		t[i] = (char)(upper ? toupper(ch) : tolower(ch));
		if (ch >= 0x80)
			t[i] = (char)ch;
	}
	json_decref(s);
	json_t *r = str_new(t, l);
	free(t);
	return set_out(c, out, r);
}

static int f_lower(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	return map_str(c, n, v, 0, out);
}

static int f_upper(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	return map_str(c, n, v, 1, out);
}

static int strip_set(const json_t *chars, unsigned char ch)
{
	if (!chars || json_is_null(chars))
		return is_ws((char)ch) || (ch >= 0x1c && ch <= 0x1f);
	return memchr(json_string_value(chars), ch, json_string_length(chars)) != NULL;
}

/* Python str.strip/lstrip/rstrip (which: 3, 1, 2) of str(v). */
static int do_strip(C *c, size_t pos, json_t *v, json_t *chars, int which, json_t **out)
{
	json_t *s = NULL;
	if (chars && !json_is_null(chars) && need_str(c, pos, "strip characters", chars) != 0)
		return -1;
	if (to_str(c, pos, v, &s) != 0)
		return -1;
	const char *p = json_string_value(s);
	size_t b = 0, e = json_string_length(s);
	if (which & 1)
		while (b < e && strip_set(chars, (unsigned char)p[b]))
			b++;
	if (which & 2)
		while (e > b && strip_set(chars, (unsigned char)p[e - 1]))
			e--;
	json_t *r = str_new(p + b, e - b);
	json_decref(s);
	return set_out(c, out, r);
}

static int f_trim(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	return do_strip(c, n->pos, v, a[0], 3, out);
}

/* Python str.replace(old, new, count) on str(v). */
static int do_replace(C *c, size_t pos, json_t *v, json_t *oldv, json_t *newv, json_t *countv,
		      json_t **out)
{
	json_t *s = NULL, *o = NULL, *w = NULL;
	int rc = -1;
	int64_t count = -1;
	if (!oldv || !newv)
		return cerr(c, pos, VZ_EINVAL, "replace needs the old and the new string");
	if (countv && !json_is_null(countv)) {
		if (!is_intlike(countv))
			return cerr(c, pos, VZ_EINVAL, "replace count must be an integer");
		count = ival(countv);
	}
	if (to_str(c, pos, v, &s) != 0 || to_str(c, pos, oldv, &o) != 0 || to_str(c, pos, newv, &w) != 0)
		goto out;
	const char *p = json_string_value(s), *op = json_string_value(o), *np = json_string_value(w);
	size_t pl = json_string_length(s), ol = json_string_length(o), nl = json_string_length(w);
	vz_buf b = VZ_BUF_INIT(c->max_output);
	for (size_t i = 0; i <= pl && !b.failed;) {
		if (count != 0 && (ol == 0 || (i + ol <= pl && memcmp(p + i, op, ol) == 0))) {
			vz_buf_add(&b, np, nl);
			if (count > 0)
				count--;
			if (ol == 0) {
				if (i == pl)
					break;
				size_t k = u8len(p + i, pl - i);
				vz_buf_add(&b, p + i, k);
				i += k;
			} else {
				i += ol;
			}
			continue;
		}
		if (i == pl)
			break;
		vz_buf_putc(&b, p[i]);
		i++;
	}
	if (buf_check(c, pos, &b, "string value") == 0)
		rc = set_out(c, out, str_new(b.ptr, b.len));
	vz_buf_free(&b);
out:
	json_decref(s);
	json_decref(o);
	json_decref(w);
	return rc;
}

static int f_replace(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	return do_replace(c, n->pos, v, a[0], a[1], a[2], out);
}

static int f_join(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	json_t *l = NULL, *sep = NULL;
	int rc = -1;
	vz_buf b = VZ_BUF_INIT(c->max_output);
	if (to_list(c, n->pos, v, &l) != 0)
		goto out;
	if (a[0] ? to_str(c, n->pos, a[0], &sep) != 0 : !(sep = json_string(""))) {
		if (!a[0])
			oom(c);
		goto out;
	}
	for (size_t i = 0; i < json_array_size(l); i++) {
		json_t *item = json_array_get(l, i), *x = NULL;
		if (a[1]) {
			if (subscript(c, n->pos, item, a[1], &x) != 0)
				goto out;
			if (!x) {
				cerr(c, n->pos, VZ_EINVAL, "%s", c->undef);
				goto out;
			}
		} else {
			x = json_incref(item);
		}
		if (i)
			vz_buf_add(&b, json_string_value(sep), json_string_length(sep));
		rc = put_value(c, n->pos, &b, x, P_STR, 0);
		json_decref(x);
		if (rc != 0 || (rc = buf_check(c, n->pos, &b, "string value")) != 0)
			goto out;
		rc = -1;
	}
	if (buf_check(c, n->pos, &b, "string value") == 0)
		rc = set_out(c, out, str_new(b.ptr, b.len));
out:
	vz_buf_free(&b);
	json_decref(l);
	json_decref(sep);
	return rc;
}

static int f_length(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	size_t l;
	if (json_is_string(v))
		l = u8count(json_string_value(v), json_string_length(v));
	else if (json_is_array(v))
		l = json_array_size(v);
	else if (json_is_object(v))
		l = json_object_size(v);
	else
		return cerr(c, n->pos, VZ_EINVAL, "object of type '%s' has no len()", tname(v));
	return set_out(c, out, json_integer((json_int_t)l));
}

static int first_last(C *c, const node *n, json_t *v, int last, json_t **out)
{
	json_t *l = NULL;
	if (to_list(c, n->pos, v, &l) != 0)
		return -1;
	size_t k = json_array_size(l);
	if (k == 0)
		undefined(c, "No %s item, sequence was empty.", last ? "last" : "first");
	else
		*out = json_incref(json_array_get(l, last ? k - 1 : 0));
	json_decref(l);
	return 0;
}

static int f_first(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	return first_last(c, n, v, 0, out);
}

static int f_last(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	return first_last(c, n, v, 1, out);
}

static int f_list(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	json_t *l = NULL;
	if (to_list(c, n->pos, v, &l) != 0)
		return -1;
	json_t *r = json_array();
	if (!r || json_array_extend(r, l) != 0) {
		json_decref(r);
		r = NULL;
	}
	json_decref(l);
	return set_out(c, out, r);
}

static int f_from_json(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	json_error_t je;
	if (need_str(c, n->pos, "from_json", v) != 0)
		return -1;
	json_t *r = json_loadb(json_string_value(v), json_string_length(v),
			       JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!r)
		return cerr(c, n->pos, VZ_EINVAL, "from_json: %s at line %d column %d", je.text, je.line,
			    je.column);
	if (depth_ok(c, n->pos, r, 1) != 0) {
		json_decref(r);
		return -1;
	}
	*out = r;
	return 0;
}

/* posixpath.basename and posixpath.dirname. */
static int f_basename(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	if (need_str(c, n->pos, "basename", v) != 0)
		return -1;
	const char *s = json_string_value(v);
	size_t l = json_string_length(v), i = l;
	while (i > 0 && s[i - 1] != '/')
		i--;
	return set_out(c, out, str_new(s + i, l - i));
}

static int f_dirname(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	if (need_str(c, n->pos, "dirname", v) != 0)
		return -1;
	const char *s = json_string_value(v);
	size_t i = json_string_length(v), k;
	while (i > 0 && s[i - 1] != '/')
		i--;
	for (k = 0; k < i && s[k] == '/'; k++)
		;
	if (k != i) /* not all slashes: drop the trailing ones */
		while (i > 0 && s[i - 1] == '/')
			i--;
	return set_out(c, out, str_new(s, i));
}

/* Python str.split(sep, maxsplit) of str(v). */
static int do_split(C *c, size_t pos, json_t *v, json_t *sepv, json_t *maxv, json_t **out)
{
	json_t *s = NULL, *l = json_array();
	int64_t max = -1;
	int rc = -1;
	if (!l)
		return oom(c);
	if (maxv && !json_is_null(maxv)) {
		if (!is_intlike(maxv)) {
			cerr(c, pos, VZ_EINVAL, "split: maxsplit must be an integer");
			goto out;
		}
		max = ival(maxv);
	}
	if (sepv && !json_is_null(sepv)) {
		if (need_str(c, pos, "split separator", sepv) != 0)
			goto out;
		if (json_string_length(sepv) == 0) {
			cerr(c, pos, VZ_EINVAL, "empty separator");
			goto out;
		}
	} else {
		sepv = NULL;
	}
	if (to_str(c, pos, v, &s) != 0 || charge(c, pos, json_string_length(s) * 4) != 0)
		goto out;
	const char *p = json_string_value(s);
	size_t n = json_string_length(s), i = 0;
	if (sepv) {
		const char *sp = json_string_value(sepv);
		size_t sl = json_string_length(sepv), start = 0;
		for (i = 0; i + sl <= n;) {
			if (max != 0 && memcmp(p + i, sp, sl) == 0) {
				if (json_array_append_new(l, str_new(p + start, i - start)) != 0)
					goto nomem;
				i += sl;
				start = i;
				if (max > 0)
					max--;
			} else {
				i++;
			}
		}
		if (json_array_append_new(l, str_new(p + start, n - start)) != 0)
			goto nomem;
	} else {
		for (;;) {
			while (i < n && strip_set(NULL, (unsigned char)p[i]))
				i++;
			if (i >= n)
				break;
			size_t start = i;
			if (max == 0) {
				size_t e = n;
				while (e > start && strip_set(NULL, (unsigned char)p[e - 1]))
					e--;
				if (json_array_append_new(l, str_new(p + start, e - start)) != 0)
					goto nomem;
				break;
			}
			while (i < n && !strip_set(NULL, (unsigned char)p[i]))
				i++;
			if (json_array_append_new(l, str_new(p + start, i - start)) != 0)
				goto nomem;
			if (max > 0)
				max--;
		}
	}
	*out = l;
	l = NULL;
	rc = 0;
	goto out;
nomem:
	oom(c);
out:
	json_decref(s);
	json_decref(l);
	return rc;
}

static int f_split(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	return do_split(c, n->pos, v, a[0], a[1], out);
}

/* Ansible's quote: shlex.quote of str(v). */
static int f_quote(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	json_t *s = NULL;
	if (to_str(c, n->pos, v, &s) != 0)
		return -1;
	const char *p = json_string_value(s);
	size_t l = json_string_length(s), i;
	for (i = 0; i < l; i++)
		if (!isalnum((unsigned char)p[i]) && !strchr("@%+=:,./-_", p[i]))
			break;
	if (l > 0 && i == l) {
		*out = s;
		return 0;
	}
	vz_buf b = VZ_BUF_INIT(c->max_output);
	vz_buf_putc(&b, '\'');
	for (i = 0; i < l; i++) {
		if (p[i] == '\'')
			vz_buf_puts(&b, "'\"'\"'");
		else
			vz_buf_putc(&b, p[i]);
	}
	vz_buf_putc(&b, '\'');
	json_decref(s);
	int rc = buf_check(c, n->pos, &b, "string value");
	if (rc == 0)
		rc = set_out(c, out, str_new(b.ptr, b.len));
	vz_buf_free(&b);
	return rc;
}

static int f_dict2items(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	const char *k;
	json_t *x;
	if (!json_is_object(v))
		return cerr(c, n->pos, VZ_EINVAL, "dict2items requires a dictionary, got %s", tname(v));
	if (depth_ok(c, n->pos, v, 1) != 0)
		return -1;
	json_t *l = json_array();
	if (!l)
		return oom(c);
	json_object_foreach(v, k, x) {
		if (json_array_append_new(l, json_pack("{s:s,s:O}", "key", k, "value", x)) != 0) {
			json_decref(l);
			return oom(c);
		}
	}
	*out = l;
	return 0;
}

static int f_items2dict(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	if (!json_is_array(v))
		return cerr(c, n->pos, VZ_EINVAL, "items2dict requires a list, got %s", tname(v));
	json_t *d = json_object();
	if (!d)
		return oom(c);
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *it = json_array_get(v, i);
		json_t *k = json_object_get(it, "key"), *x = json_object_get(it, "value");
		if (!json_is_object(it) || !k || !x) {
			json_decref(d);
			return cerr(c, n->pos, VZ_EINVAL, "items2dict expects items with 'key' and 'value'");
		}
		if (!json_is_string(k) || strlen(json_string_value(k)) != json_string_length(k)) {
			json_decref(d);
			return cerr(c, n->pos, VZ_EINVAL, "items2dict: keys must be strings, not %s", tname(k));
		}
		if (json_object_set_nocheck(d, json_string_value(k), x) != 0) {
			json_decref(d);
			return oom(c);
		}
	}
	*out = d;
	return 0;
}

static int f_abs(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	if (json_is_real(v))
		return set_out(c, out, json_real(fabs(json_real_value(v))));
	if (!is_intlike(v))
		return cerr(c, n->pos, VZ_EINVAL, "bad operand type for abs(): '%s'", tname(v));
	return checked_int(c, n->pos, ival(v) != INT64_MIN, ival(v) < 0 ? -ival(v) : ival(v), out);
}

/* ---- regular expressions: Python `re` syntax translated to POSIX ERE ----
 *
 * Playbooks write Python regexes; the only regex engine we may link is POSIX <regex.h>. A
 * pattern is translated once: Python's groups become ERE groups (with a map, since (?:...), `.`
 * and negated classes need hidden ERE groups too), \d \w \s become ASCII bracket expressions,
 * `.` and [^...] match whole UTF-8 characters, and what ERE cannot express (non-greedy and
 * possessive quantifiers, lookaround, backreferences, local flags) is refused with a message.
 * Matching runs in the C locale, so everything is byte-wise ASCII as Python's re.ASCII. */

#define RX_MAX_PATTERN 4096       /* bytes of Python pattern */
#define RX_MAX_EXPAND 20000       /* pattern size once {m,n} repetitions are expanded */
#define RX_MAX_COUNT 1000         /* largest {m,n} bound */
#define RX_MAX_SUBJECT (32 * 1024) /* bytes of text a filter's regex runs on: glibc's search
					   * is quadratic at worst (seconds for 32 KiB) */
#define RX_NS_PER_STEP 20         /* regex work is charged one step per 20 ns of CPU, so the
				   * default budget allows about one second of it */
#define RX_MAX_NEST 64            /* group nesting */

/* One UTF-8 encoded non-ASCII character (the strings we match are valid UTF-8). */
#define RX_UTF8 "[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf][\x80-\xbf]|[\xf0-\xf4][\x80-\xbf][\x80-\xbf][\x80-\xbf]"

/* What a compiled regex is for: a filter needs the match and its groups; a test only whether
 * there is one, which an anchored finder answers in one linear pass. */
enum { RX_FILTER, RX_SEARCH, RX_MATCH, RX_FULL };

typedef struct rx {
	regex_t re;     /* the pattern, for a filter */
	int compiled;
	regex_t find[2]; /* whether a match exists: [0] from the start, [1] after one context byte */
	int nfind;
	size_t ngroups; /* Python's groups */
	size_t *gmap;   /* gmap[i]: the ERE sub-expression of Python group i; gmap[0] = 0 */
	char **gname;   /* gname[i]: the name of Python group i, or NULL */
	size_t *dollar; /* ERE groups standing for Python's `$` outside multiline mode */
	size_t ndollar;
	size_t nsub;    /* ERE sub-expressions */
	locale_t cloc;  /* the C locale, current while the regex compiles and runs */
} rx;

typedef struct rxt {
	C *c;
	size_t pos;
	const char *p;
	size_t n, i;
	vz_buf out;
	int mline, dotall, icase; /* flags, from the arguments or (?ims) */
	int plain_dollar; /* fullmatch: `$` is the end only (no final newline to give back) */
	rx *r;
	size_t alloc;   /* of r->gmap and r->gname */
	size_t dalloc;  /* of r->dollar */
	unsigned depth;
	size_t size[RX_MAX_NEST + 1]; /* expanded size of what is open at each depth */
	size_t open_at[RX_MAX_NEST + 1]; /* where each open group starts in the pattern */
	size_t gstart;  /* where the group being opened starts */
	/* glibc mishandles anchors inside repeated groups, and a `$` with more pattern after it
	 * (it matches before a newline in the middle): such patterns are refused */
	int anch[RX_MAX_NEST + 1];   /* the open group at each depth holds an anchor */
	int dollar[RX_MAX_NEST + 1]; /* a finished branch of the group at each depth ends in `$` */
	int last_anch;  /* the last atom is a group holding an anchor */
	int after_dollar; /* this branch has had a `$` (outside multiline mode) */
	size_t last;    /* expanded size of the last atom, 0 when nothing can be repeated */
	int quantified; /* the last atom already carries a quantifier */
} rxt;

static void rx_free(rx *r)
{
	if (r->compiled)
		regfree(&r->re);
	for (int i = 0; i < r->nfind; i++)
		regfree(&r->find[i]);
	for (size_t i = 0; r->gname && i <= r->ngroups; i++)
		free(r->gname[i]);
	free(r->gname);
	free(r->gmap);
	free(r->dollar);
	if (r->cloc)
		freelocale(r->cloc);
	memset(r, 0, sizeof *r);
}

static int rx_err(rxt *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rx_err(rxt *t, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return cerr(t->c, t->pos, VZ_EINVAL, "regular expression '%.*s': %s", (int)(t->n > 80 ? 80 : t->n),
		    t->p, msg);
}

/* Counts an atom of the given expanded size at the current depth. */
static int rx_after_dollar(rxt *t)
{
	return rx_err(t, "more pattern after `$` is not supported by vinz "
		      "(glibc's regex would let `$` match before any newline)");
}

static int rx_atom(rxt *t, size_t size)
{
	if (t->after_dollar)
		return rx_after_dollar(t);
	t->last_anch = 0;
	t->size[t->depth] += size;
	t->last = size;
	t->quantified = 0;
	if (t->size[t->depth] > RX_MAX_EXPAND)
		return rx_err(t, "too large once repetitions are expanded (more than %d)", RX_MAX_EXPAND);
	return 0;
}

/* Opens an ERE group; Python group `py` (0: a hidden one) maps to it. */
static int rx_open(rxt *t, size_t py, const char *name)
{
	if (t->depth >= RX_MAX_NEST)
		return rx_err(t, "groups nested more than %d deep", RX_MAX_NEST);
	t->r->nsub++;
	if (py) {
		if (py >= t->alloc) {
			size_t na = t->alloc * 2 + 8;
			size_t *g = realloc(t->r->gmap, na * sizeof *g);
			if (g)
				t->r->gmap = g;
			char **nm = g ? realloc(t->r->gname, na * sizeof *nm) : NULL;
			if (!nm)
				return oom(t->c);
			t->r->gname = nm;
			for (size_t k = t->alloc; k < na; k++) {
				t->r->gmap[k] = 0;
				t->r->gname[k] = NULL;
			}
			t->alloc = na;
		}
		t->r->gmap[py] = t->r->nsub;
		if (name && !(t->r->gname[py] = strdup(name)))
			return oom(t->c);
		t->r->ngroups = py;
	}
	if (!py && t->after_dollar)
		return rx_after_dollar(t);
	vz_buf_putc(&t->out, '(');
	t->depth++;
	t->size[t->depth] = 0;
	t->anch[t->depth] = 0;
	t->dollar[t->depth] = 0;
	t->open_at[t->depth] = t->gstart;
	t->last = 0;
	return 0;
}

static int rx_close(rxt *t)
{
	vz_buf_putc(&t->out, ')');
	size_t s = t->size[t->depth];
	int anch = t->anch[t->depth], dollar = t->dollar[t->depth] | t->after_dollar;
	t->depth--;
	t->after_dollar = 0;
	if (rx_atom(t, s ? s : 1) != 0)
		return -1;
	t->last_anch = anch;
	t->anch[t->depth] |= anch;
	t->after_dollar = dollar;
	return 0;
}

/* A literal byte. */
static void rx_lit(rxt *t, unsigned char ch)
{
	if (strchr(".[]()*+?{}|^$\\", ch) && ch)
		vz_buf_putc(&t->out, '\\');
	vz_buf_putc(&t->out, (char)ch);
}

/* A literal Unicode character, as one atom. */
static int rx_char(rxt *t, uint32_t cp)
{
	if (cp == 0)
		return rx_err(t, "NUL characters are not supported");
	if (cp < 0x80) {
		rx_lit(t, (unsigned char)cp);
		return rx_atom(t, 1);
	}
	char u[4];
	size_t ul = u8enc(cp, u);
	/* a group, so that a quantifier applies to the whole character */
	if (rx_open(t, 0, NULL) != 0)
		return -1;
	vz_buf_add(&t->out, u, ul);
	return rx_close(t);
}

/* An ASCII set (set[b] for bytes 1..127) as a bracket expression. A negated set also matches
 * any non-ASCII character and, in multiline mode (REG_NEWLINE), a newline, as Python's does. */
static int rx_set(rxt *t, const unsigned char *set, int negate)
{
	vz_buf *o = &t->out;
	int hidden = negate;
	size_t nset = 0;
	for (int b = 1; b < 128; b++)
		nset += set[b] != 0;
	if (!negate && nset == 1 && set['^']) { /* a lone ^ cannot sit first in a bracket */
		vz_buf_puts(o, "\\^");
		return rx_atom(t, 1);
	}
	if (hidden && rx_open(t, 0, NULL) != 0)
		return -1;
	vz_buf_puts(o, negate ? "[^" : "[");
	if (set[']'])
		vz_buf_putc(o, ']');
	for (int b = 1; b < 128; b++) {
		if (!set[b] || strchr("]^[-", b))
			continue;
		int e = b;
		while (e + 1 < 128 && set[e + 1] && !strchr("]^[-", e + 1))
			e++;
		vz_buf_putc(o, (char)b);
		if (e - b >= 2) {
			vz_buf_putc(o, '-');
			vz_buf_putc(o, (char)e);
		} else if (e > b) {
			vz_buf_putc(o, (char)e);
		}
		b = e;
	}
	if (negate)
		vz_buf_puts(o, "\x80-\xff");
	if (set['['])
		vz_buf_putc(o, '[');
	if (set['^']) {
		if (!negate && nset == (size_t)(1 + (set['-'] != 0))) { /* only ^ and -: "-^" */
			vz_buf_puts(o, "-^]");
			return rx_atom(t, 1);
		}
		vz_buf_putc(o, '^');
	}
	if (set['-'])
		vz_buf_putc(o, '-');
	vz_buf_putc(o, ']');
	if (!hidden)
		return rx_atom(t, 1);
	vz_buf_puts(o, "|" RX_UTF8);
	if (t->mline && !set['\n'])
		vz_buf_puts(o, "|\n");
	return rx_close(t);
}

/* The set of an escape class letter (d w s), lower case; 0 if c is not one. */
static int rx_class(unsigned char *set, char c)
{
	switch (c) {
	case 'd':
		for (int b = '0'; b <= '9'; b++)
			set[b] = 1;
		return 1;
	case 'w':
		for (int b = 1; b < 128; b++)
			if (isalnum(b) || b == '_')
				set[b] = 1;
		return 1;
	case 's':
		for (int b = 1; b < 128; b++)
			if (strchr(" \t\n\r\f\v", b) || (b >= 0x1c && b <= 0x1f))
				set[b] = 1;
		return 1;
	default:
		return 0;
	}
}

static int hexval(char h)
{
	return isdigit((unsigned char)h) ? h - '0' : isxdigit((unsigned char)h) ? tolower((unsigned char)h) - 'a' + 10 : -1;
}

/* Reads the escape at t->p[t->i] (just after the backslash) that stands for one character:
 * \n \t ..., \0oo, \xhh, \uhhhh, \Uhhhhhhhh or a non-letter. Returns 1 with *cp set, 0 when it
 * is something else (a class, an anchor, a backreference, a bad escape), -1 on error. */
static int rx_escape_char(rxt *t, uint32_t *cp, int in_class)
{
	char e = t->p[t->i];
	static const char from[] = "ntrfva", to[] = "\n\t\r\f\v\a";
	const char *k = strchr(from, e);
	if (e && k) {
		*cp = (unsigned char)to[k - from];
		t->i++;
		return 1;
	}
	if (in_class && e == 'b') {
		*cp = '\b';
		t->i++;
		return 1;
	}
	if (e == '0' || (in_class && e >= '1' && e <= '7')) {
		uint32_t v = 0;
		size_t k2 = 0;
		while (k2 < 3 && t->i < t->n && t->p[t->i] >= '0' && t->p[t->i] <= '7') {
			v = v * 8 + (uint32_t)(t->p[t->i++] - '0');
			k2++;
		}
		*cp = v;
		return 1;
	}
	if (e == 'x' || e == 'u' || e == 'U') {
		size_t want = e == 'x' ? 2 : e == 'u' ? 4 : 8;
		uint32_t v = 0;
		size_t at = t->i - 1;
		t->i++;
		for (size_t j = 0; j < want; j++, t->i++) {
			if (t->i >= t->n || hexval(t->p[t->i]) < 0)
				return rx_err(t, "incomplete escape \\%c at position %zu", e, at);
			v = v * 16 + (uint32_t)hexval(t->p[t->i]);
		}
		if (v > 0x10ffff)
			return rx_err(t, "bad escape \\%c at position %zu", e, at);
		*cp = v;
		return 1;
	}
	if (isalnum((unsigned char)e))
		return 0;
	/* any other character escapes itself */
	size_t l = u8len(t->p + t->i, t->n - t->i);
	*cp = (unsigned char)e;
	if (l > 1) {
		const unsigned char *s = (const unsigned char *)t->p + t->i;
		*cp = l == 2 ? ((s[0] & 0x1fu) << 6) | (s[1] & 0x3fu)
		    : l == 3 ? ((s[0] & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu)
			     : ((s[0] & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
	}
	t->i += l;
	return 1;
}

/* Reads one literal character at t->p[t->i] (UTF-8 decoded). */
static uint32_t rx_utf8(rxt *t)
{
	const unsigned char *s = (const unsigned char *)t->p + t->i;
	size_t l = u8len(t->p + t->i, t->n - t->i);
	uint32_t cp = s[0];
	if (l == 2) cp = ((s[0] & 0x1fu) << 6) | (s[1] & 0x3fu);
	else if (l == 3) cp = ((s[0] & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
	else if (l == 4) cp = ((s[0] & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
	t->i += l;
	return cp;
}

/* A [...] class; t->i is just after the '['. */
static int rx_bracket(rxt *t)
{
	unsigned char set[128] = { 0 };
	size_t start = t->i - 1;
	int negate = 0, first = 1;
	if (t->i < t->n && t->p[t->i] == '^') {
		negate = 1;
		t->i++;
	}
	for (;;) {
		if (t->i >= t->n)
			return rx_err(t, "unterminated character set at position %zu", start);
		if (t->p[t->i] == ']' && !first) {
			t->i++;
			break;
		}
		first = 0;
		size_t at = t->i;
		uint32_t lo;
		int is_class = 0;
		if (t->p[t->i] == '\\') {
			t->i++;
			if (t->i >= t->n)
				return rx_err(t, "bad escape (end of pattern) at position %zu", at);
			char e = t->p[t->i];
			if (rx_class(set, e)) {
				t->i++;
				is_class = 1;
			} else if (e == 'D' || e == 'W' || e == 'S') {
				return rx_err(t, "\\%c inside [] is not supported by vinz (POSIX regex); use a negated class such as [^0-9]", e);
			} else {
				int r = rx_escape_char(t, &lo, 1);
				if (r < 0)
					return -1;
				if (r == 0)
					return rx_err(t, "bad escape \\%c at position %zu", e, at);
			}
		} else {
			lo = rx_utf8(t);
		}
		if (is_class) {
			if (t->i + 1 < t->n && t->p[t->i] == '-' && t->p[t->i + 1] != ']')
				return rx_err(t, "bad character range %.*s at position %zu", (int)(t->i + 2 - at),
					      t->p + at, at);
			continue;
		}
		uint32_t hi = lo;
		if (t->i + 1 < t->n && t->p[t->i] == '-' && t->p[t->i + 1] != ']') {
			t->i++;
			if (t->p[t->i] == '\\') {
				t->i++;
				if (t->i >= t->n)
					return rx_err(t, "bad escape (end of pattern) at position %zu", t->i - 1);
				int r = rx_escape_char(t, &hi, 1);
				if (r < 0)
					return -1;
				if (r == 0)
					return rx_err(t, "bad character range %.*s at position %zu",
						      (int)(t->i + 1 - at), t->p + at, at);
			} else {
				hi = rx_utf8(t);
			}
			if (hi < lo)
				return rx_err(t, "bad character range %.*s at position %zu", (int)(t->i - at),
					      t->p + at, at);
		}
		if (hi >= 0x80)
			return rx_err(t, "non-ASCII characters inside [] are not supported by vinz (POSIX regex)");
		if (lo == 0)
			return rx_err(t, "NUL characters are not supported");
		for (uint32_t b = lo; b <= hi; b++)
			set[b] = 1;
	}
	return rx_set(t, set, negate);
}

/* A quantifier at t->p[t->i]: returns 1 when one was read (and emitted), 0 when the text is
 * not a quantifier (a '{' that is a literal), -1 on error. */
static int rx_quant(rxt *t)
{
	size_t at = t->i;
	char q = t->p[t->i];
	unsigned long m = 0, x = 0;
	int unbounded = 0;
	if (q == '{') {
		size_t j = t->i + 1;
		int hm = 0, hx = 0, comma = 0;
		while (j < t->n && isdigit((unsigned char)t->p[j])) {
			if (m <= RX_MAX_COUNT * 10ul)
				m = m * 10 + (unsigned long)(t->p[j] - '0');
			j++;
			hm = 1;
		}
		if (j < t->n && t->p[j] == ',') {
			comma = 1;
			j++;
			while (j < t->n && isdigit((unsigned char)t->p[j])) {
				if (x <= RX_MAX_COUNT * 10ul)
					x = x * 10 + (unsigned long)(t->p[j] - '0');
				j++;
				hx = 1;
			}
		}
		if (j >= t->n || t->p[j] != '}' || (!hm && !comma) || (!hm && !hx && comma && 0))
			return 0; /* Python reads it as literal text */
		if (!comma) {
			x = m;
			hx = 1;
		}
		unbounded = !hx;
		if (m > RX_MAX_COUNT || (hx && x > RX_MAX_COUNT))
			return rx_err(t, "repetition counts above %d are not supported", RX_MAX_COUNT);
		if (hx && x < m)
			return rx_err(t, "min repeat greater than max repeat at position %zu", at + 1);
		t->i = j + 1;
	} else {
		m = q == '+';
		x = 1;
		unbounded = q != '?';
		t->i++;
	}
	if (!t->last)
		return rx_err(t, "nothing to repeat at position %zu", at);
	if (t->quantified)
		return rx_err(t, "multiple repeat at position %zu", at);
	if (t->last_anch)
		return rx_err(t, "a repeated group holding an anchor (^ $ \\b \\B \\A \\Z) is not supported "
			      "by vinz (glibc's regex gets it wrong)");
	if (t->i < t->n && (t->p[t->i] == '?' || t->p[t->i] == '+'))
		return rx_err(t, "%s quantifiers (%.*s%c) are not supported by vinz (POSIX regex has only greedy ones)",
			      t->p[t->i] == '?' ? "non-greedy" : "possessive", (int)(t->i - at), t->p + at,
			      t->p[t->i]);
	if (q != '{')
		vz_buf_putc(&t->out, q);
	else if (unbounded)
		vz_buf_printf(&t->out, "{%lu,}", m);
	else if (m == x)
		vz_buf_printf(&t->out, "{%lu}", m);
	else
		vz_buf_printf(&t->out, "{%lu,%lu}", m, x);
	/* glibc expands x copies of the atom (m + 1 when unbounded) */
	size_t copies = unbounded ? m + 1 : (x ? x : 1);
	size_t extra = t->last * (copies - 1);
	t->size[t->depth] += extra;
	if (t->size[t->depth] > RX_MAX_EXPAND)
		return rx_err(t, "too large once repetitions are expanded (more than %d)", RX_MAX_EXPAND);
	t->quantified = 1;
	return 1;
}

/* (?...) after the "(?"; t->i is at the character after '?'. Returns 1 when a group was
 * opened, 0 when the construct was consumed without one (flags, comment). */
static int rx_ext(rxt *t, size_t at)
{
	char e = t->i < t->n ? t->p[t->i] : '\0';
	if (e == ':') {
		t->i++;
		return rx_open(t, 0, NULL) == 0 ? 1 : -1;
	}
	if (e == 'P' && t->i + 1 < t->n && t->p[t->i + 1] == '<') {
		size_t s = t->i + 2, j = s;
		while (j < t->n && t->p[j] != '>')
			j++;
		if (j >= t->n)
			return rx_err(t, "missing >, unterminated name at position %zu", s);
		if (j == s)
			return rx_err(t, "missing group name at position %zu", s);
		char name[128];
		if (j - s >= sizeof name)
			return rx_err(t, "group name too long at position %zu", s);
		memcpy(name, t->p + s, j - s);
		name[j - s] = '\0';
		if (isdigit((unsigned char)name[0]))
			return rx_err(t, "bad character in group name '%s' at position %zu", name, s);
		for (size_t k = 0; name[k]; k++)
			if (!isalnum((unsigned char)name[k]) && name[k] != '_' && (unsigned char)name[k] < 0x80)
				return rx_err(t, "bad character in group name '%s' at position %zu", name, s);
		for (size_t k = 1; k <= t->r->ngroups; k++)
			if (t->r->gname[k] && !strcmp(t->r->gname[k], name))
				return rx_err(t, "redefinition of group name '%s' as group %zu; was group %zu at position %zu",
					      name, t->r->ngroups + 1, k, s);
		t->i = j + 1;
		return rx_open(t, t->r->ngroups + 1, name) == 0 ? 1 : -1;
	}
	if (e == 'P' && t->i + 1 < t->n && t->p[t->i + 1] == '=')
		return rx_err(t, "backreferences (?P=name) are not supported by vinz (POSIX regex)");
	if (e == '=' || e == '!' || (e == '<' && t->i + 1 < t->n && (t->p[t->i + 1] == '=' || t->p[t->i + 1] == '!')))
		return rx_err(t, "lookahead and lookbehind assertions are not supported by vinz (POSIX regex)");
	if (e == '#') {
		while (t->i < t->n && t->p[t->i] != ')')
			t->i++;
		if (t->i >= t->n)
			return rx_err(t, "missing ), unterminated comment at position %zu", at);
		t->i++;
		return 0;
	}
	if (e == '>')
		return rx_err(t, "atomic groups are not supported by vinz (POSIX regex)");
	if (e == '(')
		return rx_err(t, "conditional groups are not supported by vinz (POSIX regex)");
	if (e && strchr("aiLmsux-", e)) {
		size_t j = t->i;
		int im = 0, ml = 0, da = 0;
		while (j < t->n && t->p[j] && strchr("aiLmsux", t->p[j])) {
			char f = t->p[j++];
			if (f == 'i') im = 1;
			else if (f == 'm') ml = 1;
			else if (f == 's') da = 1;
			else if (f == 'x')
				return rx_err(t, "the verbose flag (?x) is not supported by vinz");
			else if (f == 'L')
				return rx_err(t, "bad inline flags: cannot use 'L' flag with a str pattern");
		}
		if (j < t->n && (t->p[j] == ':' || t->p[j] == '-'))
			return rx_err(t, "inline flags for part of a pattern ((?i:...)) are not supported by vinz");
		if (j >= t->n || t->p[j] != ')')
			return rx_err(t, "missing -, : or ) at position %zu", j);
		if (t->depth != 0 || t->out.len != 0)
			return rx_err(t, "global flags not at the start of the expression at position %zu", at);
		if (im)
			t->icase = 1;
		if (ml)
			t->mline = 1;
		if (da)
			t->dotall = 1;
		t->i = j + 1;
		return 0;
	}
	return rx_err(t, "unknown extension ?%c at position %zu", e ? e : ' ', at + 1);
}

/* Translates t->p into t->out. */
static int rx_translate(rxt *t)
{
	/* global flags come first, and multiline changes how classes translate */
	while (t->i + 2 < t->n && t->p[t->i] == '(' && t->p[t->i + 1] == '?' && strchr("aiLmsux", t->p[t->i + 2]) &&
	       t->p[t->i + 2]) {
		size_t at = t->i;
		t->i += 2;
		if (rx_ext(t, at) < 0)
			return -1;
	}
	while (t->i < t->n) {
		if (t->c->e && t->c->e->code)
			return -1;
		size_t at = t->i;
		unsigned char ch = (unsigned char)t->p[t->i];
		switch (ch) {
		case '(':
			t->i++;
			t->gstart = at;
			if (t->i < t->n && t->p[t->i] == '?') {
				t->i++;
				int r = rx_ext(t, at);
				if (r < 0)
					return -1;
				if (r == 0)
					t->last = 0;
			} else if (rx_open(t, t->r->ngroups + 1, NULL) != 0) {
				return -1;
			}
			break;
		case ')':
			if (t->depth == 0)
				return rx_err(t, "unbalanced parenthesis at position %zu", at);
			t->i++;
			if (rx_close(t) != 0)
				return -1;
			break;
		case '|':
			t->i++;
			vz_buf_putc(&t->out, '|');
			t->last = 0;
			t->dollar[t->depth] |= t->after_dollar;
			t->after_dollar = 0;
			break;
		case '*':
		case '+':
		case '?':
		case '{': {
			int r = rx_quant(t);
			if (r < 0)
				return -1;
			if (r == 0) {
				t->i++;
				rx_lit(t, '{');
				if (rx_atom(t, 1) != 0)
					return -1;
			}
			break;
		}
		case '.': {
			t->i++;
			if (rx_open(t, 0, NULL) != 0)
				return -1;
			vz_buf_puts(&t->out, t->dotall ? "[^\x80-\xff]|" RX_UTF8 : "[^\n\x80-\xff]|" RX_UTF8);
			if (t->dotall && t->mline)
				vz_buf_puts(&t->out, "|\n");
			if (rx_close(t) != 0)
				return -1;
			break;
		}
		case '^':
			t->i++;
			/* outside multiline mode, glibc's automaton lets ^ match after a newline inside
			 * an anchored pattern: say "start of the text" with GNU's \` instead */
			if (t->after_dollar)
				return rx_after_dollar(t);
			vz_buf_puts(&t->out, t->mline ? "^" : "\\`");
			t->last = 0;
			t->anch[t->depth] = 1;
			break;
		case '$':
			t->i++;
			if (t->mline || t->plain_dollar) {
				vz_buf_putc(&t->out, '$');
			} else {
				/* Python's $ also matches before a final newline: match that newline in
				 * a group we know, and give it back after the match (rx_exec) */
				if (t->r->ndollar == t->dalloc) {
					size_t na = t->dalloc * 2 + 4;
					size_t *d = realloc(t->r->dollar, na * sizeof *d);
					if (!d)
						return oom(t->c);
					t->r->dollar = d;
					t->dalloc = na;
				}
				if (rx_open(t, 0, NULL) != 0)
					return -1;
				t->r->dollar[t->r->ndollar++] = t->r->nsub;
				vz_buf_puts(&t->out, "\n?$");
				t->depth--;
				vz_buf_putc(&t->out, ')');
			}
			if (!t->mline)
				t->after_dollar = 1;
			t->last = 0;
			t->anch[t->depth] = 1;
			break;
		case '[':
			t->i++;
			if (rx_bracket(t) != 0)
				return -1;
			break;
		case '\\': {
			t->i++;
			if (t->i >= t->n)
				return rx_err(t, "bad escape (end of pattern) at position %zu", at);
			char e = t->p[t->i];
			unsigned char set[128] = { 0 };
			uint32_t cp;
			if (rx_class(set, (char)tolower((unsigned char)e)) && (islower((unsigned char)e) || strchr("DWS", e))) {
				t->i++;
				if (rx_set(t, set, isupper((unsigned char)e)) != 0)
					return -1;
			} else if (e == 'b' || e == 'B') {
				if (t->after_dollar)
					return rx_after_dollar(t);
				t->i++;
				vz_buf_putc(&t->out, '\\');
				vz_buf_putc(&t->out, e);
				t->last = 0;
				t->anch[t->depth] = 1;
			} else if (e == 'A' || e == 'Z') {
				if (t->mline)
					return rx_err(t, "\\%c in multiline mode is not supported by vinz (POSIX regex)", e);
				if (t->after_dollar)
					return rx_after_dollar(t);
				t->i++;
				vz_buf_puts(&t->out, e == 'A' ? "\\`" : "$");
				t->last = 0;
				t->anch[t->depth] = 1;
				if (e == 'Z')
					t->after_dollar = 1;
			} else if (e >= '1' && e <= '9') {
				return rx_err(t, "backreferences (\\%c) are not supported by vinz (POSIX regex)", e);
			} else {
				int r = rx_escape_char(t, &cp, 0);
				if (r < 0)
					return -1;
				if (r == 0)
					return rx_err(t, "bad escape \\%c at position %zu", e, at);
				if (rx_char(t, cp) != 0)
					return -1;
			}
			break;
		}
		default:
			if (rx_char(t, rx_utf8(t)) != 0)
				return -1;
			break;
		}
	}
	if (t->depth != 0)
		return rx_err(t, "missing ), unterminated subpattern at position %zu", t->open_at[t->depth]);
	return 0;
}

/* CPU time of this thread in ns, or -1. */
static int64_t cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Charges the step budget for the CPU time since t0 (from cpu_ns). */
static int charge_cpu(C *c, size_t pos, int64_t t0)
{
	int64_t t1 = cpu_ns();
	if (t0 < 0 || t1 < t0)
		return 0;
	return charge(c, pos, (size_t)((t1 - t0) / RX_NS_PER_STEP) * 64);
}

static int rx_regcomp(rxt *t, regex_t *re, const char *prefix, const char *suffix, int flags)
{
	vz_buf b = VZ_BUF_INIT(SIZE_MAX);
	vz_buf_puts(&b, prefix);
	vz_buf_add(&b, t->out.ptr ? t->out.ptr : "", t->out.len);
	vz_buf_puts(&b, suffix);
	if (b.failed) {
		vz_buf_free(&b);
		return oom(t->c);
	}
	int64_t t0 = cpu_ns();
	locale_t old = t->r->cloc ? uselocale(t->r->cloc) : (locale_t)0;
	int cr = regcomp(re, vz_buf_cstr(&b), REG_EXTENDED | flags | (t->icase ? REG_ICASE : 0) |
					       (t->mline ? REG_NEWLINE : 0));
	if (t->r->cloc)
		uselocale(old);
	vz_buf_free(&b);
	if (cr == 0 && charge_cpu(t->c, t->pos, t0) != 0) {
		regfree(re);
		return -1;
	}
	if (cr != 0) {
		char m[128];
		regerror(cr, re, m, sizeof m);
		return rx_err(t, "the POSIX regex library refused its translation: %s", m);
	}
	return 0;
}

/* Compiles the Python pattern pat into r for the given use (RX_FILTER, RX_SEARCH, RX_MATCH or
 * RX_FULL). The finders are anchored at the start of the text with glibc's \` so that glibc
 * tries one starting point and runs its automaton once over the text: an unanchored search
 * tries every starting point and can cost the square of the length. */
static int rx_compile(C *c, size_t pos, json_t *pat, int icase, int mline, int use, rx *r)
{
	rxt t;
	int rc = -1;
	memset(r, 0, sizeof *r);
	memset(&t, 0, sizeof t);
	if (need_str(c, pos, "a regular expression", pat) != 0)
		return -1;
	t.c = c;
	t.pos = pos;
	t.p = json_string_value(pat);
	t.n = json_string_length(pat);
	t.mline = mline;
	t.icase = icase;
	t.plain_dollar = use == RX_FULL;
	t.r = r;
	vz_buf_init(&t.out, RX_MAX_PATTERN * 64);
	if (t.n > RX_MAX_PATTERN) {
		rx_err(&t, "longer than %d bytes", RX_MAX_PATTERN);
		goto out;
	}
	if (charge(c, pos, t.n * 16) != 0)
		goto out;
	t.alloc = 8;
	if (!(r->gmap = calloc(t.alloc, sizeof *r->gmap)) || !(r->gname = calloc(t.alloc, sizeof *r->gname))) {
		oom(c);
		goto out;
	}
	if (rx_translate(&t) != 0)
		goto out;
	if (t.out.failed) {
		rx_err(&t, "too large");
		goto out;
	}
	r->cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (use == RX_FILTER) {
		if (rx_regcomp(&t, &r->re, "", "", 0) != 0)
			goto out;
		r->compiled = 1;
	}
	const char *pre = use == RX_MATCH || use == RX_FULL ? "\\`(" : "\\`(\n|[^\n])*(";
	if (rx_regcomp(&t, &r->find[0], pre, use == RX_FULL ? ")\\'" : ")", REG_NOSUB) != 0)
		goto out;
	r->nfind = 1;
	if (use == RX_FILTER) {
		if (rx_regcomp(&t, &r->find[1], "\\`(\n|[^\n])+(", ")", REG_NOSUB) != 0)
			goto out;
		r->nfind = 2;
	}
	rc = 0;
out:
	vz_buf_free(&t.out);
	if (rc != 0)
		rx_free(r);
	return rc;
}

/* Runs re on s[start..len), charging the step budget for the CPU time it takes: what the text
 * length cannot tell, since a pattern can make glibc's work grow faster than the text. */
static int rx_run(C *c, size_t pos, const rx *r, const regex_t *re, const char *s, size_t len, size_t start,
		  size_t nm, regmatch_t *m, int eflags, int *found)
{
	regmatch_t one[1];
	if (!m) {
		m = one;
		nm = 0;
	}
	m[0].rm_so = (regoff_t)start;
	m[0].rm_eo = (regoff_t)len;
	int64_t t0 = cpu_ns();
	locale_t old = r->cloc ? uselocale(r->cloc) : (locale_t)0;
	int rc = regexec(re, s, nm, m, REG_STARTEND | eflags);
	if (r->cloc)
		uselocale(old);
	if (charge_cpu(c, pos, t0) != 0)
		return -1;
	*found = rc == 0;
	if (rc != 0 && rc != REG_NOMATCH)
		return cerr(c, pos, VZ_ETOOBIG, "the regular expression ran out of memory");
	return 0;
}

/* Whether some match starts at or after from (the finder; linear in the text). */
static int rx_any(C *c, size_t pos, const rx *r, const char *s, size_t len, size_t from, int *found)
{
	if (charge(c, pos, 64) != 0) /* the CPU time is charged by rx_run */
		return -1;
	if (from == 0)
		return rx_run(c, pos, r, &r->find[0], s, len, 0, 0, NULL, 0, found);
	/* start one byte early, so that ^ and \b see the character before, and make the finder's
	 * prefix take at least that byte */
	return rx_run(c, pos, r, &r->find[1], s + from - 1, len - from + 1, 0, 0, NULL, REG_NOTBOL, found);
}

/* Finds the leftmost(-longest) match in s[from..len) into m (r->nsub + 1 entries) for a filter.
 * The finder rules out "no match" in one pass first; the search itself can still cost up to
 * the square of the text when many starting points fail late, hence RX_MAX_SUBJECT. */
static int rx_exec(C *c, size_t pos, const rx *r, const char *s, size_t len, size_t from, regmatch_t *m,
		   int *found)
{
	*found = 0;
	if (len > RX_MAX_SUBJECT)
		return cerr(c, pos, VZ_ETOOBIG, "regular expression subject longer than %d bytes", RX_MAX_SUBJECT);
	if (rx_any(c, pos, r, s, len, from, found) != 0)
		return -1;
	if (!*found)
		return 0;
	if (charge(c, pos, 64) != 0 ||
	    rx_run(c, pos, r, &r->re, s, len, from, r->nsub + 1, m, 0, found) != 0)
		return -1;
	if (!*found)
		return 0;
	/* a `$` that took the final newline gives it back, as Python's zero-width $ */
	for (size_t k = 0; k < r->ndollar; k++) {
		regmatch_t *d = &m[r->dollar[k]];
		if (d->rm_so >= 0 && d->rm_eo == (regoff_t)len && d->rm_eo > d->rm_so) {
			for (size_t g = 0; g <= r->nsub; g++) {
				if (m[g].rm_so >= 0 && m[g].rm_eo == (regoff_t)len) {
					m[g].rm_eo--;
					if (m[g].rm_so > m[g].rm_eo)
						m[g].rm_so = m[g].rm_eo;
				}
			}
			break;
		}
	}
	return 0;
}

/* The span of Python group g in m, or -1 offsets when it did not take part. */
static regmatch_t rx_group(const rx *r, const regmatch_t *m, size_t g)
{
	return m[g == 0 ? 0 : r->gmap[g]];
}

/* Python group reference: a number or a name; -1 when there is no such group. */
static long rx_group_ref(const rx *r, const char *s, size_t n)
{
	if (n > 0 && n < 10) {
		int alld = 1;
		long v = 0;
		for (size_t i = 0; i < n; i++) {
			alld &= isdigit((unsigned char)s[i]) != 0;
			v = v * 10 + (s[i] - '0');
		}
		if (alld)
			return v <= (long)r->ngroups ? v : -1;
	}
	for (size_t g = 1; g <= r->ngroups; g++)
		if (r->gname[g] && strlen(r->gname[g]) == n && memcmp(r->gname[g], s, n) == 0)
			return (long)g;
	return -1;
}

/* Appends Python's re.sub expansion of template tp for match m of s. */
static int rx_expand(C *c, size_t pos, const rx *r, const char *tp, size_t tn, const char *s,
		     const regmatch_t *m, vz_buf *b)
{
	for (size_t i = 0; i < tn; i++) {
		if (tp[i] != '\\') {
			vz_buf_putc(b, tp[i]);
			continue;
		}
		if (i + 1 >= tn)
			return cerr(c, pos, VZ_EINVAL, "bad escape (end of pattern) at position %zu in the replacement", i);
		char e = tp[++i];
		long g = -1;
		if (e == 'g') {
			if (i + 1 >= tn || tp[i + 1] != '<')
				return cerr(c, pos, VZ_EINVAL, "missing < at position %zu in the replacement", i + 1);
			size_t s0 = i + 2, j = s0;
			while (j < tn && tp[j] != '>')
				j++;
			if (j >= tn)
				return cerr(c, pos, VZ_EINVAL, "missing >, unterminated name at position %zu in the replacement", s0);
			g = (j - s0 == 1 && tp[s0] == '0') ? 0 : rx_group_ref(r, tp + s0, j - s0);
			if (g < 0)
				return cerr(c, pos, VZ_EINVAL, "invalid group reference '%.*s' at position %zu in the replacement",
					    (int)(j - s0), tp + s0, s0);
			i = j;
		} else if (e == '0' || (e >= '1' && e <= '7' && i + 2 < tn && tp[i + 1] >= '0' && tp[i + 1] <= '7' &&
					tp[i + 2] >= '0' && tp[i + 2] <= '7')) {
			unsigned v = 0, k = 0;
			while (k < 3 && i < tn && tp[i] >= '0' && tp[i] <= '7') {
				v = v * 8 + (unsigned)(tp[i++] - '0');
				k++;
			}
			i--;
			if (v > 0377)
				return cerr(c, pos, VZ_EINVAL, "octal escape value \\%o outside of range 0-0o377 in the replacement", v);
			if (v < 0x80) {
				vz_buf_putc(b, (char)v);
			} else {
				vz_buf_putc(b, (char)(0xc0 | (v >> 6)));
				vz_buf_putc(b, (char)(0x80 | (v & 0x3f)));
			}
			continue;
		} else if (isdigit((unsigned char)e)) {
			g = e - '0';
			if (i + 1 < tn && isdigit((unsigned char)tp[i + 1]))
				g = g * 10 + (tp[++i] - '0');
			if (g > (long)r->ngroups)
				return cerr(c, pos, VZ_EINVAL, "invalid group reference %ld at position %zu in the replacement",
					    g, i);
		} else {
			static const char from[] = "abfnrtv\\", to[] = "\a\b\f\n\r\t\v\\";
			const char *k = strchr(from, e);
			if (k && e) {
				vz_buf_putc(b, to[k - from]);
			} else if (isalpha((unsigned char)e) && (unsigned char)e < 0x80) {
				return cerr(c, pos, VZ_EINVAL, "bad escape \\%c at position %zu in the replacement", e, i - 1);
			} else {
				vz_buf_putc(b, '\\');
				vz_buf_putc(b, e);
			}
			continue;
		}
		regmatch_t gm = rx_group(r, m, (size_t)g);
		if (gm.rm_so >= 0)
			vz_buf_add(b, s + gm.rm_so, (size_t)(gm.rm_eo - gm.rm_so));
	}
	return 0;
}

/* A value's text for the regex filters and tests: the string, or str() of anything else. */
static int rx_subject(C *c, size_t pos, json_t *v, json_t **out)
{
	return to_str(c, pos, v, out);
}

/* Ansible's regex_replace: re.sub(pattern, replacement, value) with ignorecase/multiline. */
static int f_regex_replace(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	json_t *s = NULL, *pat = a[0], *rep = a[1];
	rx r;
	regmatch_t *m = NULL;
	vz_buf b = VZ_BUF_INIT(c->max_output);
	int rc = -1, compiled = 0;
	if (!pat)
		pat = json_string("");
	else
		json_incref(pat);
	if (rep && need_str(c, n->pos, "regex_replace's replacement", rep) != 0)
		goto out;
	if (!pat || rx_subject(c, n->pos, v, &s) != 0)
		goto out;
	if (rx_compile(c, n->pos, pat, vz_template_truthy(a[2]), vz_template_truthy(a[3]), RX_FILTER, &r) != 0)
		goto out;
	compiled = 1;
	if (!(m = calloc(r.nsub + 1, sizeof *m))) {
		oom(c);
		goto out;
	}
	const char *p = json_string_value(s);
	size_t len = json_string_length(s), at = 0;
	int must_advance = 0;
	while (at <= len) {
		int found;
		if (rx_exec(c, n->pos, &r, p, len, at, m, &found) != 0)
			goto out;
		if (!found)
			break;
		size_t so = (size_t)m[0].rm_so, eo = (size_t)m[0].rm_eo;
		if (so == eo && so == at && must_advance) {
			/* no empty match where the last one was: step one character on */
			if (at >= len)
				break;
			size_t k = u8len(p + at, len - at);
			vz_buf_add(&b, p + at, k);
			at += k;
			must_advance = 0;
			continue;
		}
		vz_buf_add(&b, p + at, so - at);
		if (rep && rx_expand(c, n->pos, &r, json_string_value(rep), json_string_length(rep), p, m, &b) != 0)
			goto out;
		if (buf_check(c, n->pos, &b, "string value") != 0)
			goto out;
		must_advance = so == eo;
		at = eo;
	}
	if (at < len)
		vz_buf_add(&b, p + at, len - at);
	if (buf_check(c, n->pos, &b, "string value") == 0)
		rc = set_out(c, out, str_new(b.ptr, b.len));
out:
	if (compiled)
		rx_free(&r);
	free(m);
	vz_buf_free(&b);
	json_decref(s);
	json_decref(pat);
	return rc;
}

/* Ansible's regex_findall: re.findall(regex, value) with multiline/ignorecase: every
 * non-overlapping match left to right (empty ones too, as Python 3.7+ finds them); each is the
 * match's text without groups, group 1's with one, a list of all groups' with more (an unmatched
 * group gives ''). */
static int f_regex_findall(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	json_t *s = NULL, *res = NULL;
	rx r;
	regmatch_t *m = NULL;
	int rc = -1, compiled = 0, must_advance = 0;
	size_t total = 0;
	if (!a[0])
		return cerr(c, n->pos, VZ_EINVAL, "regex_findall() missing 1 required positional argument: 'regex'");
	if (rx_subject(c, n->pos, v, &s) != 0 ||
	    rx_compile(c, n->pos, a[0], vz_template_truthy(a[2]), vz_template_truthy(a[1]), RX_FILTER, &r) != 0)
		goto out;
	compiled = 1;
	if (!(m = calloc(r.nsub + 1, sizeof *m)) || !(res = json_array())) {
		oom(c);
		goto out;
	}
	const char *p = json_string_value(s);
	size_t len = json_string_length(s), at = 0;
	while (at <= len) {
		int found;
		if (rx_exec(c, n->pos, &r, p, len, at, m, &found) != 0)
			goto out;
		if (!found)
			break;
		size_t so = (size_t)m[0].rm_so, eo = (size_t)m[0].rm_eo;
		if (so == eo && so == at && must_advance) {
			/* no empty match where the last one ended: step one character on */
			if (at >= len)
				break;
			at += u8len(p + at, len - at);
			must_advance = 0;
			continue;
		}
		json_t *x;
		if (r.ngroups == 0) {
			x = str_new(p + so, eo - so);
			total += eo - so;
		} else if (r.ngroups == 1) {
			regmatch_t gm = rx_group(&r, m, 1);
			x = gm.rm_so >= 0 ? str_new(p + gm.rm_so, (size_t)(gm.rm_eo - gm.rm_so)) : str_new("", 0);
			total += gm.rm_so >= 0 ? (size_t)(gm.rm_eo - gm.rm_so) : 0;
		} else {
			x = json_array();
			for (size_t g = 1; x && g <= r.ngroups; g++) {
				regmatch_t gm = rx_group(&r, m, g);
				size_t gl = gm.rm_so >= 0 ? (size_t)(gm.rm_eo - gm.rm_so) : 0;
				total += gl;
				if (json_array_append_new(x, str_new(gm.rm_so >= 0 ? p + gm.rm_so : "", gl)) != 0) {
					json_decref(x);
					x = NULL;
				}
			}
		}
		if (!x || json_array_append_new(res, x) != 0) {
			oom(c);
			goto out;
		}
		/* the list may not outgrow what a rendered string may be: count its items too */
		if (total + json_array_size(res) > c->max_output) {
			cerr(c, n->pos, VZ_ETOOBIG, "regex_findall: the result is over %zu bytes", c->max_output);
			goto out;
		}
		must_advance = so == eo;
		at = eo;
	}
	*out = res;
	res = NULL;
	rc = 0;
out:
	if (compiled)
		rx_free(&r);
	free(m);
	json_decref(s);
	json_decref(res);
	return rc;
}

/* Ansible's regex_search: the match, or a list of the groups named by '\\N' / '\\g<name>'
 * arguments; None without a match. */
static int f_regex_search(C *c, const node *n, json_t *v, const cargs *a, size_t from, json_t **out)
{
	json_t *s = NULL, *pat = NULL, *res = NULL;
	int icase = 0, mline = 0, rc = -1, compiled = 0;
	const char *refs[MAX_ARGS];
	size_t refl[MAX_ARGS], nrefs = 0, npos = 0;
	rx r;
	regmatch_t *m = NULL;
	for (size_t i = 0; i < a->n; i++) {
		if (a->kw[i]) {
			if (!strcmp(a->kw[i], "ignorecase"))
				icase = vz_template_truthy(a->v[i]);
			else if (!strcmp(a->kw[i], "multiline"))
				mline = vz_template_truthy(a->v[i]);
			continue; /* Ansible ignores other keywords */
		}
		if (npos++ < from)
			continue;
		if (!pat) {
			pat = a->v[i];
			continue;
		}
		if (!json_is_string(a->v[i]) || json_string_value(a->v[i])[0] != '\\')
			return cerr(c, a->pos[i], VZ_EINVAL, "regex_search: Unknown argument (a group is written '\\\\1' or '\\\\g<name>')");
		const char *g = json_string_value(a->v[i]);
		size_t gl = json_string_length(a->v[i]);
		if (gl > 3 && g[1] == 'g' && g[2] == '<' && memchr(g, '>', gl)) {
			refs[nrefs] = g + 3;
			refl[nrefs++] = (size_t)((const char *)memchr(g, '>', gl) - (g + 3));
		} else if (gl > 1 && isdigit((unsigned char)g[1])) {
			size_t k = 1;
			while (k < gl && isdigit((unsigned char)g[k]))
				k++;
			refs[nrefs] = g + 1;
			refl[nrefs++] = k - 1;
		} else {
			return cerr(c, a->pos[i], VZ_EINVAL, "regex_search: bad group argument '%s'", g);
		}
	}
	if (!pat)
		return cerr(c, n->pos, VZ_EINVAL, "regex_search() missing 1 required positional argument: 'regex'");
	if (rx_subject(c, n->pos, v, &s) != 0 || rx_compile(c, n->pos, pat, icase, mline, RX_FILTER, &r) != 0)
		goto out;
	compiled = 1;
	if (!(m = calloc(r.nsub + 1, sizeof *m))) {
		oom(c);
		goto out;
	}
	int found;
	const char *p = json_string_value(s);
	if (rx_exec(c, n->pos, &r, p, json_string_length(s), 0, m, &found) != 0)
		goto out;
	if (!found) {
		rc = set_out(c, out, json_null());
		goto out;
	}
	if (!nrefs) {
		rc = set_out(c, out, str_new(p + m[0].rm_so, (size_t)(m[0].rm_eo - m[0].rm_so)));
		goto out;
	}
	if (!(res = json_array())) {
		oom(c);
		goto out;
	}
	for (size_t k = 0; k < nrefs; k++) {
		long g = rx_group_ref(&r, refs[k], refl[k]);
		if (refl[k] == 1 && refs[k][0] == '0')
			g = 0;
		if (g < 0) {
			cerr(c, n->pos, VZ_EINVAL, "regex_search: no such group '%.*s'", (int)refl[k], refs[k]);
			goto out;
		}
		regmatch_t gm = rx_group(&r, m, (size_t)g);
		json_t *x = gm.rm_so >= 0 ? str_new(p + gm.rm_so, (size_t)(gm.rm_eo - gm.rm_so)) : json_null();
		if (json_array_append_new(res, x) != 0) {
			oom(c);
			goto out;
		}
	}
	*out = res;
	res = NULL;
	rc = 0;
out:
	if (compiled)
		rx_free(&r);
	free(m);
	json_decref(s);
	json_decref(res);
	return rc;
}

/* Ansible's match / search / regex tests. kind: "match", "search" or "fullmatch". Only whether
 * a match exists counts, and POSIX and Python agree on that; the anchored finder answers it in
 * one pass, so tests take any text up to max_output. */
static int rx_test(C *c, size_t pos, json_t *v, json_t *pat, json_t *icase, json_t *mline, const char *kind,
		   int *res)
{
	json_t *s = NULL, *p = pat ? json_incref(pat) : json_string("");
	rx r;
	int rc = -1, compiled = 0;
	*res = 0;
	if (!p) {
		oom(c);
		goto out;
	}
	int use = !strcmp(kind, "match") ? RX_MATCH : !strcmp(kind, "search") ? RX_SEARCH
		: !strcmp(kind, "fullmatch") ? RX_FULL : -1;
	if (use < 0) {
		cerr(c, pos, VZ_EINVAL, "the regex test's match_type must be 'search', 'match' or 'fullmatch', not '%s'", kind);
		goto out;
	}
	if (rx_subject(c, pos, v, &s) != 0 ||
	    rx_compile(c, pos, p, vz_template_truthy(icase), vz_template_truthy(mline), use, &r) != 0)
		goto out;
	compiled = 1;
	if (rx_any(c, pos, &r, json_string_value(s), json_string_length(s), 0, res) != 0)
		goto out;
	rc = 0;
out:
	if (compiled)
		rx_free(&r);
	json_decref(s);
	json_decref(p);
	return rc;
}

/* Jinja2's attribute getter: "a.b.0" is a path, a part of digits an index; *out NULL
 * (Undefined, reason in c->undef) when missing. */
static int attr_path(C *c, size_t pos, json_t *item, json_t *attr, json_t **out)
{
	*out = NULL;
	if (!json_is_string(attr))
		return subscript(c, pos, item, attr, out);
	const char *s = json_string_value(attr);
	size_t n = json_string_length(attr), i = 0;
	json_t *cur = json_incref(item);
	for (;;) {
		size_t j = i;
		while (j < n && s[j] != '.')
			j++;
		int digits = j > i;
		for (size_t k = i; k < j; k++)
			digits &= isdigit((unsigned char)s[k]) != 0;
		json_t *key = NULL, *next = NULL;
		if (digits && j - i < 18) {
			int64_t x = 0;
			for (size_t k = i; k < j; k++)
				x = x * 10 + (s[k] - '0');
			key = json_integer((json_int_t)x);
		} else {
			key = str_new(s + i, j - i);
		}
		if (!key) {
			json_decref(cur);
			return oom(c);
		}
		int rc = cur ? subscript(c, pos, cur, key, &next) : 0;
		json_decref(key);
		json_decref(cur);
		if (rc != 0)
			return -1;
		cur = next;
		if (!cur || j >= n)
			break;
		i = j + 1;
	}
	*out = cur;
	return 0;
}

static int apply_test(C *c, const node *n, const char *t, json_t *v, const cargs *a, size_t from, int *res);
static int apply_filter(C *c, const node *n, const char *name, json_t *v, const cargs *a, size_t from,
			json_t **out);

/* The positional argument k (counting from `from`), or NULL. */
static json_t *nth_pos(const cargs *a, size_t from, size_t k, size_t *at)
{
	size_t seen = 0;
	for (size_t i = 0; i < a->n; i++) {
		if (a->kw[i])
			continue;
		if (seen++ == from + k) {
			if (at)
				*at = a->pos[i];
			return a->v[i];
		}
	}
	return NULL;
}

/* Jinja2's select, reject, selectattr and rejectattr. */
static int sel_rej(C *c, const node *n, json_t *v, const cargs *a, size_t from, int reject, int attr,
		   json_t **out)
{
	json_t *l = NULL, *r = json_array(), *attrname = NULL, *testname = NULL;
	int rc = -1;
	if (!r)
		return oom(c);
	if (!vz_template_truthy(v)) { /* Jinja2 yields nothing for a false value */
		*out = r;
		return 0;
	}
	if (attr && !(attrname = nth_pos(a, from, 0, NULL))) {
		cerr(c, n->pos, VZ_EINVAL, "Missing parameter for attribute name");
		goto out;
	}
	testname = nth_pos(a, from, attr ? 1 : 0, NULL);
	if (testname && !json_is_string(testname)) {
		cerr(c, n->pos, VZ_EINVAL, "No test named %s.", tname(testname));
		goto out;
	}
	if (to_list(c, n->pos, v, &l) != 0)
		goto out;
	for (size_t i = 0; i < json_array_size(l); i++) {
		json_t *item = json_array_get(l, i), *x = NULL;
		int t = 0;
		if (charge(c, n->pos, 0) != 0)
			goto out;
		if (attr) {
			if (attr_path(c, n->pos, item, attrname, &x) != 0)
				goto out;
		} else {
			x = json_incref(item);
		}
		if (testname) {
			rc = apply_test(c, n, json_string_value(testname), x, a, from + (attr ? 2 : 1), &t);
		} else if (!x) {
			rc = cerr(c, n->pos, VZ_EINVAL, "%s", c->undef);
		} else {
			t = vz_template_truthy(x);
			rc = 0;
		}
		json_decref(x);
		if (rc != 0) {
			rc = -1;
			goto out;
		}
		rc = -1;
		if (t != reject && json_array_append(r, item) != 0) {
			oom(c);
			goto out;
		}
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	json_decref(l);
	json_decref(r);
	return rc;
}

static int f_select(C *c, const node *n, json_t *v, const cargs *a, size_t from, json_t **out)
{
	return sel_rej(c, n, v, a, from, 0, 0, out);
}

static int f_reject(C *c, const node *n, json_t *v, const cargs *a, size_t from, json_t **out)
{
	return sel_rej(c, n, v, a, from, 1, 0, out);
}

static int f_selectattr(C *c, const node *n, json_t *v, const cargs *a, size_t from, json_t **out)
{
	return sel_rej(c, n, v, a, from, 0, 1, out);
}

static int f_rejectattr(C *c, const node *n, json_t *v, const cargs *a, size_t from, json_t **out)
{
	return sel_rej(c, n, v, a, from, 1, 1, out);
}

/* Jinja2's map: a filter with its arguments on each item, or map(attribute=..., default=...). */
static int f_map(C *c, const node *n, json_t *v, const cargs *a, size_t from, json_t **out)
{
	json_t *l = NULL, *r = json_array(), *attr = NULL, *dflt = NULL, *fname;
	int rc = -1;
	if (!r)
		return oom(c);
	fname = nth_pos(a, from, 0, NULL);
	if (!fname) {
		for (size_t i = 0; i < a->n; i++) {
			if (!a->kw[i])
				continue;
			if (!strcmp(a->kw[i], "attribute"))
				attr = a->v[i];
			else if (!strcmp(a->kw[i], "default"))
				dflt = a->v[i];
		}
		if (!attr) {
			cerr(c, n->pos, VZ_EINVAL, "map requires a filter argument");
			goto out;
		}
		for (size_t i = 0; i < a->n; i++) {
			if (a->kw[i] && strcmp(a->kw[i], "attribute") && strcmp(a->kw[i], "default")) {
				cerr(c, a->pos[i], VZ_EINVAL, "Unexpected keyword argument '%s'", a->kw[i]);
				goto out;
			}
		}
		if (dflt && json_is_null(dflt))
			dflt = NULL;
	} else if (!json_is_string(fname)) {
		cerr(c, n->pos, VZ_EINVAL, "No filter named %s.", tname(fname));
		goto out;
	}
	if (!vz_template_truthy(v)) {
		*out = r;
		return 0;
	}
	if (to_list(c, n->pos, v, &l) != 0)
		goto out;
	for (size_t i = 0; i < json_array_size(l); i++) {
		json_t *item = json_array_get(l, i), *x = NULL;
		if (charge(c, n->pos, 0) != 0)
			goto out;
		if (fname) {
			if (apply_filter(c, n, json_string_value(fname), item, a, from + 1, &x) != 0)
				goto out;
		} else {
			if (attr_path(c, n->pos, item, attr, &x) != 0)
				goto out;
			if (!x && dflt)
				x = json_incref(dflt);
		}
		if (!x) {
			cerr(c, n->pos, VZ_EINVAL, "%s", c->undef);
			goto out;
		}
		if (json_array_append_new(r, x) != 0) {
			oom(c);
			goto out;
		}
	}
	if (depth_ok(c, n->pos, r, 1) != 0)
		goto out;
	*out = r;
	r = NULL;
	rc = 0;
out:
	json_decref(l);
	json_decref(r);
	return rc;
}

/* Python's str.lower() for ASCII, as Jinja2's ignore_case applies to strings. */
static int fold_case(C *c, size_t pos, json_t *v, json_t **out)
{
	if (!json_is_string(v)) {
		*out = json_incref(v);
		return 0;
	}
	json_t *fake = NULL;
	node tmp;
	memset(&tmp, 0, sizeof tmp);
	tmp.pos = pos;
	int rc = map_str(c, &tmp, v, 0, &fake);
	*out = fake;
	return rc;
}

/* Jinja2's sort (stable; reverse keeps equal items in order) with its multi-attribute key. */
static int f_sort(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	json_t *l = NULL, *keys = NULL, *r = NULL;
	size_t *idx = NULL, *tmp = NULL;
	int rc = -1, reverse = vz_template_truthy(a[0]), cs = vz_template_truthy(a[1]);
	json_t *attr = a[2] && !json_is_null(a[2]) ? a[2] : NULL;
	if (to_list(c, n->pos, v, &l) != 0)
		return -1;
	size_t len = json_array_size(l);
	if (!(keys = json_array()) || !(idx = calloc(len + 1, sizeof *idx)) || !(tmp = calloc(len + 1, sizeof *tmp))) {
		oom(c);
		goto out;
	}
	for (size_t i = 0; i < len; i++) {
		json_t *item = json_array_get(l, i), *key = json_array();
		if (!key || json_array_append_new(keys, key) != 0) {
			oom(c);
			goto out;
		}
		idx[i] = i;
		const char *as = attr && json_is_string(attr) ? json_string_value(attr) : NULL;
		size_t an = as ? json_string_length(attr) : 0, s0 = 0;
		for (;;) { /* "age,name": one key part per attribute */
			json_t *x = NULL, *f = NULL;
			size_t e = s0;
			while (as && e < an && as[e] != ',')
				e++;
			if (!attr) {
				x = json_incref(item);
			} else {
				json_t *part = as ? str_new(as + s0, e - s0) : json_incref(attr);
				if (!part) {
					oom(c);
					goto out;
				}
				int r2 = attr_path(c, n->pos, item, part, &x);
				json_decref(part);
				if (r2 != 0)
					goto out;
				if (!x) {
					cerr(c, n->pos, VZ_EINVAL, "%s", c->undef);
					goto out;
				}
			}
			int r3 = cs ? (f = json_incref(x), 0) : fold_case(c, n->pos, x, &f);
			json_decref(x);
			if (r3 != 0 || json_array_append_new(key, f) != 0) {
				if (r3 == 0)
					oom(c);
				goto out;
			}
			if (!as || e >= an)
				break;
			s0 = e + 1;
		}
	}
	/* bottom-up merge sort on idx */
	for (size_t w = 1; w < len; w *= 2) {
		for (size_t lo = 0; lo < len; lo += 2 * w) {
			size_t mid = lo + w < len ? lo + w : len, hi = lo + 2 * w < len ? lo + 2 * w : len;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi) {
				int o;
				json_t *ki = json_array_get(keys, idx[i]), *kj = json_array_get(keys, idx[j]);
				/* take the right one only when it sorts strictly first */
				if (charge(c, n->pos, 0) != 0 ||
				    order(c, n->pos, C_LT, reverse ? ki : kj, reverse ? kj : ki, 0, &o) != 0)
					goto out;
				tmp[k++] = o < 0 ? idx[j++] : idx[i++];
			}
			while (i < mid)
				tmp[k++] = idx[i++];
			while (j < hi)
				tmp[k++] = idx[j++];
		}
		memcpy(idx, tmp, len * sizeof *idx);
	}
	if (!(r = json_array())) {
		oom(c);
		goto out;
	}
	for (size_t i = 0; i < len; i++)
		if (json_array_append(r, json_array_get(l, idx[i])) != 0) {
			oom(c);
			goto out;
		}
	*out = r;
	r = NULL;
	rc = 0;
out:
	free(idx);
	free(tmp);
	json_decref(keys);
	json_decref(l);
	json_decref(r);
	return rc;
}

/* Ansible's unique: Jinja2's (case-insensitive unless case_sensitive, by attribute), and
 * Ansible's own equality-based one when an item cannot be hashed (a list or a dict). */
static int f_unique(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	json_t *l = NULL, *r = json_array(), *keys = json_array();
	int rc = -1, cs = vz_template_truthy(a[0]), fallback = 0;
	json_t *attr = a[1] && !json_is_null(a[1]) ? a[1] : NULL;
	if (!r || !keys) {
		oom(c);
		goto out;
	}
	if (to_list(c, n->pos, v, &l) != 0)
		goto out;
	for (size_t i = 0; i < json_array_size(l) && !fallback; i++) {
		json_t *item = json_array_get(l, i), *x = NULL, *k = NULL;
		int seen = 0;
		if (attr) {
			if (attr_path(c, n->pos, item, attr, &x) != 0)
				goto out;
			if (!x) {
				cerr(c, n->pos, VZ_EINVAL, "%s", c->undef);
				goto out;
			}
		} else {
			x = json_incref(item);
		}
		if (json_is_array(x) || json_is_object(x)) {
			const char *tn = tname(x);
			json_decref(x);
			if (attr || (a[0] && json_is_false(a[0]))) {
				cerr(c, n->pos, VZ_EINVAL, "Jinja2's unique filter failed and we cannot fall back to "
				     "Ansible's version as it does not support the parameters supplied (unhashable "
				     "type: '%s')", tn);
				goto out;
			}
			fallback = 1;
			break;
		}
		int fr = cs ? (k = json_incref(x), 0) : fold_case(c, n->pos, x, &k);
		json_decref(x);
		if (fr != 0)
			goto out;
		if (contains(c, n->pos, k, keys, &seen) != 0) {
			json_decref(k);
			goto out;
		}
		if (!seen && (json_array_append_new(keys, k) != 0 || json_array_append(r, item) != 0)) {
			oom(c);
			goto out;
		}
		if (seen)
			json_decref(k);
	}
	if (fallback) {
		json_array_clear(r);
		for (size_t i = 0; i < json_array_size(l); i++) {
			int seen = 0;
			if (contains(c, n->pos, json_array_get(l, i), r, &seen) != 0)
				goto out;
			if (!seen && json_array_append(r, json_array_get(l, i)) != 0) {
				oom(c);
				goto out;
			}
		}
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	json_decref(l);
	json_decref(r);
	json_decref(keys);
	return rc;
}

/* Ansible's merge_hash(x, y, recursive, list_merge): a new dict, y's keys winning. */
static int merge_hash(C *c, size_t pos, json_t *x, json_t *y, int recursive, const char *lm, unsigned depth,
		      json_t **out)
{
	int eq = 0;
	if (too_deep(c, pos, depth) != 0)
		return -1;
	if (!json_is_object(x) || !json_is_object(y))
		return cerr(c, pos, VZ_EINVAL, "failed to combine variables, expected dicts but got a '%s' and a '%s'",
			    tname(x), tname(y));
	if (equal(c, pos, x, y, 0, &eq) != 0)
		return -1;
	if (json_object_size(x) == 0 || eq)
		return set_out(c, out, json_copy(y));
	json_t *r = json_copy(x);
	if (!r)
		return oom(c);
	const char *k;
	json_t *yv;
	json_object_foreach(y, k, yv) {
		json_t *xv = json_object_get(r, k), *nv = NULL;
		if (charge(c, pos, 0) != 0)
			goto fail;
		if (xv && recursive && json_is_object(xv) && json_is_object(yv)) {
			if (merge_hash(c, pos, xv, yv, recursive, lm, depth + 1, &nv) != 0)
				goto fail;
		} else if (xv && json_is_array(xv) && json_is_array(yv) && strcmp(lm, "replace") != 0) {
			if (!strcmp(lm, "keep")) {
				nv = json_incref(xv);
			} else {
				int rp = strstr(lm, "_rp") != NULL, pre = lm[0] == 'p';
				json_t *first = pre ? yv : xv, *second = pre ? xv : yv;
				if (!(nv = json_array()))
					goto nomem;
				for (int part = 0; part < 2; part++) {
					json_t *src = part ? second : first;
					for (size_t i = 0; i < json_array_size(src); i++) {
						int in = 0;
						/* _rp: drop from x what y holds */
						if (rp && part == pre && contains(c, pos, json_array_get(src, i), yv, &in) != 0) {
							json_decref(nv);
							goto fail;
						}
						if (!in && json_array_append(nv, json_array_get(src, i)) != 0) {
							json_decref(nv);
							goto nomem;
						}
					}
				}
			}
		} else {
			nv = json_incref(yv);
		}
		if (json_object_set_new_nocheck(r, k, nv) != 0)
			goto nomem;
	}
	*out = r;
	return 0;
nomem:
	oom(c);
fail:
	json_decref(r);
	return -1;
}

/* Ansible's combine: dicts (the input, the arguments, lists of dicts flattened one level)
 * merged left to right, later keys winning; recursive= and list_merge=. */
static int f_combine(C *c, const node *n, json_t *v, const cargs *a, size_t from, json_t **out)
{
	json_t *terms = json_array(), *res = NULL;
	int recursive = 0, rc = -1;
	const char *lm = "replace";
	if (!terms)
		return oom(c);
	for (size_t i = 0; i < a->n; i++) {
		if (!a->kw[i])
			continue;
		if (!strcmp(a->kw[i], "recursive")) {
			recursive = vz_template_truthy(a->v[i]);
		} else if (!strcmp(a->kw[i], "list_merge")) {
			if (!json_is_string(a->v[i])) {
				cerr(c, a->pos[i], VZ_EINVAL, "combine: list_merge must be a string");
				goto out;
			}
			lm = json_string_value(a->v[i]);
		} else {
			cerr(c, a->pos[i], VZ_EINVAL, "'recursive' and 'list_merge' are the only valid keyword arguments");
			goto out;
		}
	}
	/* flatten(terms, levels=1): lists open one level; None, 'None' and 'null' drop out */
	for (size_t i = 0; i <= a->n; i++) {
		json_t *t = i == 0 ? v : a->v[i - 1];
		if (i > 0 && a->kw[i - 1])
			continue;
		json_t *one = json_array();
		if (!one || json_array_append(one, t) != 0) {
			json_decref(one);
			oom(c);
			goto out;
		}
		json_t *src = json_is_array(t) ? t : one;
		for (size_t j = 0; j < json_array_size(src); j++) {
			json_t *e = json_array_get(src, j);
			const char *sv = json_string_value(e);
			if (json_is_null(e) || (sv && (!strcmp(sv, "None") || !strcmp(sv, "null"))))
				continue;
			if (json_array_append(terms, e) != 0) {
				json_decref(one);
				oom(c);
				goto out;
			}
		}
		json_decref(one);
	}
	size_t nt = json_array_size(terms);
	if (nt == 0) {
		rc = set_out(c, out, json_object());
		goto out;
	}
	if (nt == 1) {
		*out = json_incref(json_array_get(terms, 0));
		rc = 0;
		goto out;
	}
	if (strcmp(lm, "replace") && strcmp(lm, "keep") && strcmp(lm, "append") && strcmp(lm, "prepend") &&
	    strcmp(lm, "append_rp") && strcmp(lm, "prepend_rp")) {
		cerr(c, n->pos, VZ_EINVAL, "merge_hash: 'list_merge' argument can only be equal to 'replace', "
		     "'keep', 'append', 'prepend', 'append_rp' or 'prepend_rp'");
		goto out;
	}
	/* as Ansible: from the last (highest priority) dict down to the first */
	res = json_incref(json_array_get(terms, nt - 1));
	for (size_t i = nt - 1; i-- > 0;) {
		json_t *m = NULL;
		if (merge_hash(c, n->pos, json_array_get(terms, i), res, recursive, lm, 0, &m) != 0)
			goto out;
		json_decref(res);
		res = m;
	}
	*out = res;
	res = NULL;
	rc = 0;
out:
	json_decref(terms);
	json_decref(res);
	return rc;
}

static int cmp_keys(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* json.dumps(v, indent=indent, sort_keys=sort) as Python writes it (indent < 0: None). */
static int put_json(C *c, size_t pos, vz_buf *b, const json_t *v, long indent, int sort, unsigned depth)
{
	if (too_deep(c, pos, depth) != 0)
		return -1;
	if (charge(c, pos, 0) != 0)
		return -1;
	int arr = json_is_array(v);
	if (!arr && !json_is_object(v))
		return put_value(c, pos, b, v, P_JSON, depth);
	size_t n = arr ? json_array_size(v) : json_object_size(v);
	if (n == 0) {
		vz_buf_puts(b, arr ? "[]" : "{}");
		return 0;
	}
	const char **keys = NULL;
	if (!arr) {
		const char *k;
		json_t *x;
		size_t i = 0;
		if (!(keys = malloc(n * sizeof *keys)))
			return oom(c);
		json_object_foreach((json_t *)v, k, x)
			keys[i++] = k;
		if (sort)
			qsort(keys, n, sizeof *keys, cmp_keys);
	}
	vz_buf_putc(b, arr ? '[' : '{');
	for (size_t i = 0; i < n && !b->failed; i++) {
		if (i)
			vz_buf_puts(b, indent < 0 ? ", " : ",");
		if (indent >= 0) {
			vz_buf_putc(b, '\n');
			for (long s = 0; s < indent * (long)(depth + 1) && !b->failed; s++)
				vz_buf_putc(b, ' ');
		}
		const json_t *x = arr ? json_array_get(v, i) : json_object_get(v, keys[i]);
		if (!arr) {
			json_str(b, keys[i], strlen(keys[i]));
			vz_buf_puts(b, ": ");
		}
		if (put_json(c, pos, b, x, indent, sort, depth + 1) != 0) {
			free(keys);
			return -1;
		}
	}
	free(keys);
	if (indent >= 0) {
		vz_buf_putc(b, '\n');
		for (long s = 0; s < indent * (long)depth && !b->failed; s++)
			vz_buf_putc(b, ' ');
	}
	vz_buf_putc(b, arr ? ']' : '}');
	return 0;
}

static int json_filter(C *c, const node *n, json_t *v, json_t *indentv, json_t *sortv, long dindent,
		       int dsort, json_t **out)
{
	long indent = dindent;
	if (indentv && !json_is_null(indentv)) {
		if (!is_intlike(indentv) || ival(indentv) > 64)
			return cerr(c, n->pos, VZ_EINVAL, "indent must be an integer from 0 to 64");
		indent = ival(indentv) < 0 ? 0 : (long)ival(indentv);
	}
	vz_buf b = VZ_BUF_INIT(c->max_output);
	int rc = put_json(c, n->pos, &b, v, indent, sortv ? vz_template_truthy(sortv) : dsort, 0);
	if (rc == 0)
		rc = buf_check(c, n->pos, &b, "string value");
	if (rc == 0)
		rc = set_out(c, out, str_new(b.ptr, b.len));
	vz_buf_free(&b);
	return rc;
}

static int f_to_json(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	return json_filter(c, n, v, a[0], a[1], -1, 0, out);
}

static int f_to_nice_json(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	return json_filter(c, n, v, a[0], a[1], 4, 1, out);
}

/* ---- to_yaml: PyYAML's representer and resolver in front of libyaml's emitter ----
 * Ansible dumps with AnsibleDumper, which is PyYAML's CSafeDumper: the Python representer builds
 * nodes (sorted keys, flow style for collections of scalars unless default_flow_style says
 * otherwise, Python's float repr) and libyaml emits them. We feed the same events to the same
 * libyaml, so only the representer and the resolver's implicit check live here. */

/* PyYAML's implicit resolvers (bool, int, float, null, merge, value, timestamp) as one ERE. */
static const char YAML_IMPLICIT[] =
	"^(yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
	"|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
	"|[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+"
	"|[-+]?([0-9][0-9_]*)\\.[0-9_]*([eE][-+][0-9]+)?|\\.[0-9][0-9_]*([eE][-+][0-9]+)?"
	"|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)"
	"|~|null|Null|NULL|<<|="
	"|[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
	"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?([Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](\\.[0-9]*)?"
	"([ \t]*(Z|[-+][0-9][0-9]?(:[0-9][0-9])?))?)$";

/* Collections met more than once (the same object, as Python's identity) get anchors. */
typedef struct yanchor {
	const json_t *v;
	unsigned id;  /* 0: met once so far */
	int emitted;
} yanchor;

/* Compiled once per process: it never changes, and compiling costs more than a small dump. */
static regex_t yaml_implicit;
static int yaml_implicit_ok;
static pthread_once_t yaml_implicit_once = PTHREAD_ONCE_INIT;

static void yaml_implicit_init(void)
{
	locale_t cl = newlocale(LC_ALL_MASK, "C", (locale_t)0), old = (locale_t)0;
	if (cl)
		old = uselocale(cl);
	yaml_implicit_ok = regcomp(&yaml_implicit, YAML_IMPLICIT, REG_EXTENDED | REG_NOSUB) == 0;
	if (cl) {
		uselocale(old);
		freelocale(cl);
	}
}

typedef struct ydump {
	yanchor *tab;  /* open addressing on the pointer */
	size_t tcap, tn;
	unsigned last_id;
	C *c;
	size_t pos;
	yaml_emitter_t em;
	vz_buf *out;
	int flow;      /* default_flow_style: -1 None, 0 False, 1 True */
	int sort;
} ydump;

static int yaml_write(void *data, unsigned char *buf, size_t size)
{
	vz_buf *b = data;
	vz_buf_add(b, buf, size);
	return !b->failed;
}

/* Whether PyYAML would read the plain scalar s as something other than a string. */
static int yaml_not_str(ydump *y, const char *s, size_t n)
{
	if (n == 0)
		return 1; /* null */
	if (memchr(s, '\0', n))
		return 0;
	if (s[n - 1] == '\n') { /* the resolvers' re.match(...$) also matches before a final newline */
		n--;
		if (n == 0)
			return 0;
	}
	regmatch_t m[1];
	m[0].rm_so = 0;
	m[0].rm_eo = (regoff_t)n;
	return regexec(&yaml_implicit, s, 1, m, REG_STARTEND) == 0;
}

static int yaml_emit(ydump *y, yaml_event_t *ev)
{
	if (!yaml_emitter_emit(&y->em, ev)) {
		if (y->out->failed == VZ_ETOOBIG)
			return cerr(y->c, y->pos, VZ_ETOOBIG, "string value exceeds %zu bytes", y->out->max);
		return cerr(y->c, y->pos, VZ_EINVAL, "to_yaml: %s", y->em.problem ? y->em.problem : "the YAML emitter failed");
	}
	return 0;
}

static int yaml_scalar(ydump *y, const char *tag, const char *s, size_t n, int plain, int quoted)
{
	yaml_event_t ev;
	if (!yaml_scalar_event_initialize(&ev, NULL, (yaml_char_t *)tag, (yaml_char_t *)s, (int)n, plain, quoted,
					  YAML_ANY_SCALAR_STYLE))
		return oom(y->c);
	return yaml_emit(y, &ev);
}

static int is_scalar(const json_t *v)
{
	return !json_is_array(v) && !json_is_object(v);
}

static yanchor *yaml_slot(ydump *y, const json_t *v)
{
	size_t h = ((uintptr_t)v >> 4) * 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < y->tcap; i++) {
		yanchor *a = &y->tab[(h + i) & (y->tcap - 1)];
		if (!a->v || a->v == v)
			return a;
	}
	return NULL;
}

/* PyYAML's Serializer.anchor_node: a pre-order walk in which the second meeting of a node
 * numbers its anchor (id001, id002, ...). */
static int yaml_anchor_walk(ydump *y, const json_t *v, unsigned depth)
{
	if (!json_is_array(v) && !json_is_object(v))
		return 0;
	if (too_deep(y->c, y->pos, depth) != 0 || charge(y->c, y->pos, 0) != 0)
		return -1;
	if (2 * (y->tn + 1) > y->tcap) {
		size_t nc = y->tcap ? y->tcap * 2 : 64;
		yanchor *old = y->tab, *nt = calloc(nc, sizeof *nt);
		size_t oc = y->tcap;
		if (!nt)
			return oom(y->c);
		y->tab = nt;
		y->tcap = nc;
		for (size_t i = 0; i < oc; i++)
			if (old[i].v)
				*yaml_slot(y, old[i].v) = old[i];
		free(old);
	}
	yanchor *a = yaml_slot(y, v);
	if (a->v) {
		if (!a->id)
			a->id = ++y->last_id;
		return 0;
	}
	a->v = v;
	y->tn++;
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			if (yaml_anchor_walk(y, json_array_get(v, i), depth + 1) != 0)
				return -1;
		return 0;
	}
	size_t n = json_object_size(v), i = 0;
	const char **keys = malloc((n ? n : 1) * sizeof *keys);
	const char *k;
	json_t *x;
	if (!keys)
		return oom(y->c);
	json_object_foreach((json_t *)v, k, x)
		keys[i++] = k;
	if (y->sort && n)
		qsort(keys, n, sizeof *keys, cmp_keys);
	for (i = 0; i < n; i++)
		if (yaml_anchor_walk(y, json_object_get(v, keys[i]), depth + 1) != 0) {
			free(keys);
			return -1;
		}
	free(keys);
	return 0;
}

/* The anchor to write with collection v (NULL for none); *alias set when v was written already. */
static const char *yaml_anchor(ydump *y, const json_t *v, char *buf, size_t bn, int *alias)
{
	yanchor *a = y->tcap ? yaml_slot(y, v) : NULL;
	*alias = 0;
	if (!a || a->v != v || !a->id)
		return NULL;
	snprintf(buf, bn, "id%03u", a->id);
	*alias = a->emitted;
	a->emitted = 1;
	return buf;
}

static int yaml_node(ydump *y, const json_t *v, unsigned depth)
{
	char num[64], anc[32];
	yaml_event_t ev;
	int alias = 0;
	const char *anchor = NULL;
	if (too_deep(y->c, y->pos, depth) != 0 || charge(y->c, y->pos, 0) != 0)
		return -1;
	if (json_is_array(v) || json_is_object(v)) {
		anchor = yaml_anchor(y, v, anc, sizeof anc, &alias);
		if (alias) {
			if (!yaml_alias_event_initialize(&ev, (yaml_char_t *)anchor))
				return oom(y->c);
			return yaml_emit(y, &ev);
		}
	}
	switch (json_typeof(v)) {
	case JSON_STRING: {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		if (n > INT_MAX)
			return cerr(y->c, y->pos, VZ_ETOOBIG, "to_yaml: string too long");
		return yaml_scalar(y, YAML_STR_TAG, s, n, !yaml_not_str(y, s, n), 1);
	}
	case JSON_INTEGER:
		snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
		return yaml_scalar(y, YAML_INT_TAG, num, strlen(num), 1, 0);
	case JSON_REAL: {
		double d = json_real_value(v);
		if (isnan(d)) {
			snprintf(num, sizeof num, ".nan");
		} else if (isinf(d)) {
			snprintf(num, sizeof num, d < 0 ? "-.inf" : ".inf");
		} else {
			char r[64];
			fmt_float(d, r, sizeof r);
			for (char *p = r; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			char *e = strchr(r, 'e');
			if (!strchr(r, '.') && e)
				snprintf(num, sizeof num, "%.*s.0%s", (int)(e - r), r, e);
			else
				snprintf(num, sizeof num, "%s", r);
		}
		return yaml_scalar(y, YAML_FLOAT_TAG, num, strlen(num), 1, 0);
	}
	case JSON_TRUE:
		return yaml_scalar(y, YAML_BOOL_TAG, "true", 4, 1, 0);
	case JSON_FALSE:
		return yaml_scalar(y, YAML_BOOL_TAG, "false", 5, 1, 0);
	case JSON_NULL:
		return yaml_scalar(y, YAML_NULL_TAG, "null", 4, 1, 0);
	case JSON_ARRAY: {
		int best = 1;
		for (size_t i = 0; i < json_array_size(v); i++)
			best &= is_scalar(json_array_get(v, i));
		int flow = y->flow < 0 ? best : y->flow;
		if (!yaml_sequence_start_event_initialize(&ev, (yaml_char_t *)anchor, (yaml_char_t *)YAML_SEQ_TAG, 1,
							  flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE))
			return oom(y->c);
		if (yaml_emit(y, &ev) != 0)
			return -1;
		for (size_t i = 0; i < json_array_size(v); i++)
			if (yaml_node(y, json_array_get(v, i), depth + 1) != 0)
				return -1;
		if (!yaml_sequence_end_event_initialize(&ev))
			return oom(y->c);
		return yaml_emit(y, &ev);
	}
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		const char **keys = n ? malloc(n * sizeof *keys) : NULL;
		const char *k;
		json_t *x;
		int best = 1, rc = -1;
		if (n && !keys)
			return oom(y->c);
		json_object_foreach((json_t *)v, k, x) {
			keys[i++] = k;
			best &= is_scalar(x);
		}
		if (y->sort && n)
			qsort(keys, n, sizeof *keys, cmp_keys);
		int flow = y->flow < 0 ? best : y->flow;
		if (!yaml_mapping_start_event_initialize(&ev, (yaml_char_t *)anchor, (yaml_char_t *)YAML_MAP_TAG, 1,
							 flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE)) {
			oom(y->c);
			goto mout;
		}
		if (yaml_emit(y, &ev) != 0)
			goto mout;
		for (i = 0; i < n; i++) {
			if (yaml_scalar(y, YAML_STR_TAG, keys[i], strlen(keys[i]), !yaml_not_str(y, keys[i], strlen(keys[i])), 1) != 0 ||
			    yaml_node(y, json_object_get(v, keys[i]), depth + 1) != 0)
				goto mout;
		}
		if (!yaml_mapping_end_event_initialize(&ev)) {
			oom(y->c);
			goto mout;
		}
		rc = yaml_emit(y, &ev);
	mout:
		free(keys);
		return rc;
	}
	}
	return 0;
}

/* yaml.dump(v, Dumper=AnsibleDumper, allow_unicode=True, ...) into *out. */
static int yaml_dump(C *c, size_t pos, json_t *v, int flow, long indent, long width, int sort, json_t **out)
{
	ydump y;
	yaml_event_t ev;
	vz_buf b = VZ_BUF_INIT(c->max_output);
	int rc = -1, em = 0;
	memset(&y, 0, sizeof y);
	y.c = c;
	y.pos = pos;
	y.out = &b;
	y.flow = flow;
	y.sort = sort;
	locale_t cl = newlocale(LC_ALL_MASK, "C", (locale_t)0), old = (locale_t)0;
	if (cl)
		old = uselocale(cl);
	if (pthread_once(&yaml_implicit_once, yaml_implicit_init) != 0 || !yaml_implicit_ok) {
		cerr(c, pos, VZ_EINVAL, "to_yaml: cannot compile the implicit type expression");
		goto out;
	}
	if (!yaml_emitter_initialize(&y.em)) {
		oom(c);
		goto out;
	}
	em = 1;
	yaml_emitter_set_output(&y.em, yaml_write, &b);
	yaml_emitter_set_unicode(&y.em, 1);
	if (indent >= 0)
		yaml_emitter_set_indent(&y.em, (int)indent);
	if (width != LONG_MIN)
		yaml_emitter_set_width(&y.em, (int)width);
	if (yaml_anchor_walk(&y, v, 0) != 0)
		goto out;
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || yaml_emit(&y, &ev) != 0)
		goto out;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) || yaml_emit(&y, &ev) != 0)
		goto out;
	if (yaml_node(&y, v, 0) != 0)
		goto out;
	if (!yaml_document_end_event_initialize(&ev, 1) || yaml_emit(&y, &ev) != 0)
		goto out;
	if (!yaml_stream_end_event_initialize(&ev) || yaml_emit(&y, &ev) != 0)
		goto out;
	if (!yaml_emitter_flush(&y.em)) {
		yaml_emit(&y, &ev);
		goto out;
	}
	if (buf_check(c, pos, &b, "string value") == 0)
		rc = set_out(c, out, str_new(b.ptr, b.len));
out:
	if (rc != 0 && !(c->e && c->e->code))
		cerr(c, pos, VZ_EINVAL, "to_yaml: the YAML emitter failed");
	if (em)
		yaml_emitter_delete(&y.em);
	free(y.tab);
	if (cl) {
		uselocale(old);
		freelocale(cl);
	}
	vz_buf_free(&b);
	return rc;
}

static int yaml_filter(C *c, const node *n, json_t *v, json_t **a, long dindent, int dflow, json_t **out)
{
	long indent = dindent, width = LONG_MIN;
	int flow = dflow, sort = 1;
	if (a[0] && !json_is_null(a[0])) {
		if (!is_intlike(a[0]) || ival(a[0]) < -1000 || ival(a[0]) > 1000)
			return cerr(c, n->pos, VZ_EINVAL, "to_yaml: indent must be an integer");
		indent = (long)ival(a[0]);
	}
	if (a[1] && !json_is_null(a[1])) {
		if (!is_intlike(a[1]))
			return cerr(c, n->pos, VZ_EINVAL, "to_yaml: width must be an integer");
		width = ival(a[1]) > INT_MAX ? INT_MAX : ival(a[1]) < -1 ? -1 : (long)ival(a[1]);
	}
	if (a[2])
		flow = json_is_null(a[2]) ? -1 : vz_template_truthy(a[2]);
	if (a[3])
		sort = vz_template_truthy(a[3]);
	return yaml_dump(c, n->pos, v, flow, indent, width, sort, out);
}

static int f_to_yaml(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	return yaml_filter(c, n, v, a, -1, -1, out);
}

static int f_to_nice_yaml(C *c, const node *n, json_t *v, json_t **a, json_t **out)
{
	json_t *b[4] = { a[0], a[1], NULL, a[3] }; /* to_nice_yaml always dumps in block style */
	if (a[2])
		return cerr(c, n->pos, VZ_EINVAL, "to_nice_yaml got multiple values for keyword argument 'default_flow_style'");
	return yaml_filter(c, n, v, b, 4, 0, out);
}

typedef int (*vfilter_fn)(C *c, const node *n, json_t *v, const cargs *a, size_t from, json_t **out);

#define MAX_PARAMS 4
static const struct filter {
	const char *name;
	filter_fn fn;
	vfilter_fn vfn; /* takes its arguments as given (select, map, combine, ...) */
	int undef_ok;
	const char *params[MAX_PARAMS];
} filters[] = {
	{ "default", f_default, NULL, 1, { "default_value", "boolean", NULL } },
	{ "d", f_default, NULL, 1, { "default_value", "boolean", NULL } },
	{ "bool", f_bool, NULL, 0, { NULL } },
	{ "int", f_int, NULL, 0, { "default", "base", NULL } },
	{ "float", f_float, NULL, 0, { "default", NULL } },
	{ "string", f_string, NULL, 0, { NULL } },
	{ "lower", f_lower, NULL, 0, { NULL } },
	{ "upper", f_upper, NULL, 0, { NULL } },
	{ "trim", f_trim, NULL, 0, { "chars", NULL } },
	{ "replace", f_replace, NULL, 0, { "old", "new", "count" } },
	{ "join", f_join, NULL, 0, { "d", "attribute", NULL } },
	{ "length", f_length, NULL, 0, { NULL } },
	{ "count", f_length, NULL, 0, { NULL } },
	{ "first", f_first, NULL, 0, { NULL } },
	{ "last", f_last, NULL, 0, { NULL } },
	{ "list", f_list, NULL, 0, { NULL } },
	{ "to_json", f_to_json, NULL, 0, { "indent", "sort_keys", NULL } },
	{ "to_nice_json", f_to_nice_json, NULL, 0, { "indent", "sort_keys", NULL } },
	{ "to_yaml", f_to_yaml, NULL, 0, { "indent", "width", "default_flow_style", "sort_keys" } },
	{ "to_nice_yaml", f_to_nice_yaml, NULL, 0, { "indent", "width", "default_flow_style", "sort_keys" } },
	{ "from_json", f_from_json, NULL, 0, { NULL } },
	{ "basename", f_basename, NULL, 0, { NULL } },
	{ "dirname", f_dirname, NULL, 0, { NULL } },
	{ "split", f_split, NULL, 0, { "sep", "maxsplit", NULL } },
	{ "quote", f_quote, NULL, 0, { NULL } },
	{ "dict2items", f_dict2items, NULL, 0, { NULL } },
	{ "items2dict", f_items2dict, NULL, 0, { NULL } },
	{ "abs", f_abs, NULL, 0, { NULL } },
	{ "unique", f_unique, NULL, 0, { "case_sensitive", "attribute", NULL } },
	{ "sort", f_sort, NULL, 0, { "reverse", "case_sensitive", "attribute", NULL } },
	{ "regex_replace", f_regex_replace, NULL, 0, { "pattern", "replacement", "ignorecase", "multiline" } },
	{ "regex_search", NULL, f_regex_search, 0, { NULL } },
	{ "regex_findall", f_regex_findall, NULL, 0, { "regex", "multiline", "ignorecase", NULL } },
	{ "select", NULL, f_select, 0, { NULL } },
	{ "reject", NULL, f_reject, 0, { NULL } },
	{ "selectattr", NULL, f_selectattr, 0, { NULL } },
	{ "rejectattr", NULL, f_rejectattr, 0, { NULL } },
	{ "map", NULL, f_map, 0, { NULL } },
	{ "combine", NULL, f_combine, 0, { NULL } },
};

static size_t nparams(const char *const *p)
{
	size_t k = 0;
	while (k < MAX_PARAMS && p[k])
		k++;
	return k;
}

static const struct filter *find_filter(const char *name)
{
	for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
		if (strcmp(filters[i].name, name) == 0)
			return &filters[i];
	return NULL;
}

/* Applies filter `name` to v with the arguments of a from its from-th positional one on. */
static int apply_filter(C *c, const node *n, const char *name, json_t *v, const cargs *a, size_t from,
			json_t **out)
{
	const struct filter *f = find_filter(name);
	json_t *args[MAX_PARAMS];
	char what[80];
	*out = NULL;
	if (!f)
		return cerr(c, n->pos, VZ_EINVAL, "No filter named '%s'.", name);
	if (f->vfn)
		return f->vfn(c, n, v, a, from, out);
	snprintf(what, sizeof what, "filter '%s'", f->name);
	if (bind_vals(c, n->pos, what, f->params, nparams(f->params), a, from, args) != 0)
		return -1;
	int rc = f->fn(c, n, v, args, out);
	for (size_t i = 0; i < MAX_PARAMS; i++)
		if (i < nparams(f->params))
			json_decref(args[i]);
	return rc;
}

static int eval_filter(C *c, const node *n, json_t **out)
{
	const struct filter *f = find_filter(n->name);
	json_t *v = NULL;
	cargs a;
	char what[80];
	if (!f)
		return cerr(c, n->pos, VZ_EINVAL, "No filter named '%s'.", n->name);
	if ((f->undef_ok ? eval(c, n->a, &v) : eval_def(c, n->a, &v)) != 0)
		return -1;
	snprintf(what, sizeof what, "filter '%s'", f->name);
	if (eval_args(c, n, what, &a) != 0) {
		json_decref(v);
		return -1;
	}
	int rc = apply_filter(c, n, n->name, v, &a, 0, out);
	cargs_free(&a);
	json_decref(v);
	return rc;
}

/* Ansible's result tests read a registered result dict. */
static int result_flag(C *c, const node *n, const char *t, json_t *v, const char *key, int *res)
{
	if (!json_is_object(v))
		return cerr(c, n->pos, VZ_EINVAL, "The '%s' test expects a dictionary", t);
	*res = vz_template_truthy(json_object_get(v, key));
	if (strcmp(key, "changed") == 0 && !json_object_get(v, key)) {
		json_t *rs = json_object_get(v, "results");
		for (size_t i = 0; json_is_array(rs) && i < json_array_size(rs); i++)
			*res |= vz_template_truthy(json_object_get(json_array_get(rs, i), "changed"));
	}
	return 0;
}

/* Applies test t to v (NULL: Undefined) with the arguments of a from its from-th positional one. */
static int apply_test(C *c, const node *n, const char *t, json_t *v, const cargs *a, size_t from, int *res)
{
	static const char *const names[] = {
		"defined", "undefined", "none", "string", "number", "integer", "float", "boolean",
		"mapping", "sequence", "iterable", "true", "false", "even", "odd", "divisibleby",
		"eq", "equalto", "==", "ne", "!=", "lt", "<", "le", "<=", "gt", ">", "ge", ">=", "in",
		"succeeded", "success", "failed", "failure", "changed", "change", "skipped", "skip",
		"match", "search", "regex",
		NULL,
	};
	static const char *const params[] = { "value" };
	static const char *const rx_params[] = { "pattern", "ignorecase", "multiline", "match_type" };
	json_t *arg[4] = { NULL, NULL, NULL, NULL };
	int rc = -1, known = 0, isrx = !strcmp(t, "match") || !strcmp(t, "search") || !strcmp(t, "regex");
	*res = 0;
	for (size_t i = 0; names[i]; i++)
		known |= strcmp(names[i], t) == 0;
	if (!known)
		return cerr(c, n->pos, VZ_EINVAL, "No test named '%s'.", t);
	if (!v && strcmp(t, "defined") != 0 && strcmp(t, "undefined") != 0)
		return cerr(c, n->pos, VZ_EINVAL, "%s", c->undef);
	char what[80];
	snprintf(what, sizeof what, "test '%s'", t);
	if (bind_vals(c, n->pos, what, isrx ? rx_params : params, isrx ? (t[0] == 'r' ? 4 : 3) : 1, a, from, arg) != 0)
		return -1;
	int needarg = !strcmp(t, "divisibleby") || !strcmp(t, "eq") || !strcmp(t, "equalto") ||
		      !strcmp(t, "==") || !strcmp(t, "ne") || !strcmp(t, "!=") || !strcmp(t, "lt") ||
		      !strcmp(t, "<") || !strcmp(t, "le") || !strcmp(t, "<=") || !strcmp(t, "gt") ||
		      !strcmp(t, ">") || !strcmp(t, "ge") || !strcmp(t, ">=") || !strcmp(t, "in");
	if (needarg && !arg[0]) {
		cerr(c, n->pos, VZ_EINVAL, "test '%s' needs an argument", t);
		goto out;
	}
	if (isrx) {
		const char *kind = t[0] == 'r' ? "search" : t;
		if (t[0] == 'r' && arg[3] && !json_is_string(arg[3])) {
			cerr(c, n->pos, VZ_EINVAL, "the regex test's match_type must be a string");
			goto out;
		}
		if (t[0] == 'r' && arg[3])
			kind = json_string_value(arg[3]);
		if (rx_test(c, n->pos, v, arg[0], arg[1], arg[2], kind, res) != 0)
			goto out;
	}
	else if (!strcmp(t, "defined")) *res = v != NULL;
	else if (!strcmp(t, "undefined")) *res = v == NULL;
	else if (!strcmp(t, "none")) *res = json_is_null(v);
	else if (!strcmp(t, "string")) *res = json_is_string(v);
	else if (!strcmp(t, "number")) *res = is_num(v);
	else if (!strcmp(t, "integer")) *res = json_is_integer(v);
	else if (!strcmp(t, "float")) *res = json_is_real(v);
	else if (!strcmp(t, "boolean")) *res = json_is_boolean(v);
	else if (!strcmp(t, "mapping")) *res = json_is_object(v);
	else if (!strcmp(t, "sequence") || !strcmp(t, "iterable"))
		*res = json_is_string(v) || json_is_array(v) || json_is_object(v);
	else if (!strcmp(t, "true")) *res = json_is_true(v);
	else if (!strcmp(t, "false")) *res = json_is_false(v);
	else if (!strcmp(t, "even") || !strcmp(t, "odd") || !strcmp(t, "divisibleby")) {
		int64_t d = !strcmp(t, "divisibleby") ? (is_intlike(arg[0]) ? ival(arg[0]) : 0) : 2;
		if (!is_intlike(v) || d == 0) {
			cerr(c, n->pos, VZ_EINVAL, "test '%s' needs integers (and a divisor other than 0)", t);
			goto out;
		}
		int64_t m = d == -1 ? 0 : ival(v) % d;
		*res = !strcmp(t, "odd") ? m != 0 : m == 0;
	} else if (!strcmp(t, "in")) {
		if (contains(c, n->pos, v, arg[0], res) != 0)
			goto out;
	} else if (!strcmp(t, "eq") || !strcmp(t, "equalto") || !strcmp(t, "==") ||
		   !strcmp(t, "ne") || !strcmp(t, "!=")) {
		if (equal(c, n->pos, v, arg[0], 0, res) != 0)
			goto out;
		if (t[0] == 'n' || t[0] == '!')
			*res = !*res;
	} else if (needarg) {
		int op = (t[0] == 'l' || t[0] == '<') ? (t[1] == 'e' || t[1] == '=' ? C_LE : C_LT)
						      : (t[1] == 'e' || t[1] == '=' ? C_GE : C_GT);
		int o;
		if (order(c, n->pos, op, v, arg[0], 0, &o) != 0)
			goto out;
		*res = op == C_LT ? o < 0 : op == C_LE ? o <= 0 : op == C_GT ? o > 0 : o >= 0;
	} else if (!strcmp(t, "succeeded") || !strcmp(t, "success")) {
		if (result_flag(c, n, t, v, "failed", res) != 0)
			goto out;
		*res = !*res;
	} else if (!strcmp(t, "failed") || !strcmp(t, "failure")) {
		if (result_flag(c, n, t, v, "failed", res) != 0)
			goto out;
	} else if (!strcmp(t, "changed") || !strcmp(t, "change")) {
		if (result_flag(c, n, t, v, "changed", res) != 0)
			goto out;
	} else if (result_flag(c, n, t, v, "skipped", res) != 0) {
		goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < 4; i++)
		json_decref(arg[i]);
	return rc;
}

static int eval_test(C *c, const node *n, json_t **out)
{
	json_t *v = NULL;
	cargs a;
	int res = 0, rc;
	char what[80];
	if (!strcmp(n->name, "defined") || !strcmp(n->name, "undefined")) {
		if (eval(c, n->a, &v) != 0)
			return -1;
	} else if (eval_def(c, n->a, &v) != 0) {
		return -1;
	}
	snprintf(what, sizeof what, "test '%s'", n->name);
	if (eval_args(c, n, what, &a) != 0) {
		json_decref(v);
		return -1;
	}
	rc = apply_test(c, n, n->name, v, &a, 0, &res);
	cargs_free(&a);
	json_decref(v);
	if (rc != 0)
		return -1;
	*out = json_boolean(n->op ? !res : res);
	return 0;
}

static int call_range(C *c, const node *n, json_t **out)
{
	static const char *const params[] = { "a", "b", "c" };
	json_t *a[3];
	int64_t v[3] = { 0, 0, 1 }, start, stop, step;
	size_t k = 0;
	if (bind(c, n, "range", params, 3, a) != 0)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		if (!a[i])
			continue;
		if (!is_intlike(a[i])) {
			cerr(c, n->pos, VZ_EINVAL, "'%s' object cannot be interpreted as an integer", tname(a[i]));
			for (size_t j = 0; j < 3; j++)
				json_decref(a[j]);
			return -1;
		}
		v[i] = ival(a[i]);
		k = i + 1;
	}
	for (size_t j = 0; j < 3; j++)
		json_decref(a[j]);
	if (k == 0)
		return cerr(c, n->pos, VZ_EINVAL, "range expected at least 1 argument, got 0");
	start = k == 1 ? 0 : v[0];
	stop = k == 1 ? v[0] : v[1];
	step = k == 3 ? v[2] : 1;
	if (step == 0)
		return cerr(c, n->pos, VZ_EINVAL, "range() arg 3 must not be zero");
	json_t *l = json_array();
	if (!l)
		return oom(c);
	for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
		if (json_array_size(l) >= c->max_iter) {
			json_decref(l);
			return cerr(c, n->pos, VZ_ETOOBIG, "range() longer than %zu items", c->max_iter);
		}
		if (json_array_append_new(l, json_integer((json_int_t)i)) != 0) {
			json_decref(l);
			return oom(c);
		}
		if (step > 0 ? i > INT64_MAX - step : i < INT64_MIN - step)
			break;
	}
	*out = l;
	return charge(c, n->pos, json_array_size(l) * 8);
}

static int eval_method(C *c, const node *n, json_t **out)
{
	static const char *const p2[] = { "a", "b", "c" };
	const node *callee = n->a;
	const char *m = callee->name;
	json_t *obj = NULL, *a[3] = { NULL, NULL, NULL };
	int rc = -1;
	char what[80];
	if (eval_def(c, callee->a, &obj) != 0)
		return -1;
	snprintf(what, sizeof what, "%s.%s()", tname(obj), m);
	if (bind(c, n, what, p2, 3, a) != 0)
		goto out;
	if (json_is_object(obj) && (!strcmp(m, "items") || !strcmp(m, "keys") || !strcmp(m, "values"))) {
		const char *k;
		json_t *x, *l = json_array();
		if (!l) {
			oom(c);
			goto out;
		}
		if (!strcmp(m, "items") && depth_ok(c, n->pos, obj, 1) != 0) {
			json_decref(l);
			goto out;
		}
		json_object_foreach(obj, k, x) {
			json_t *e = !strcmp(m, "items") ? json_pack("[s,O]", k, x)
				    : !strcmp(m, "keys") ? json_string_nocheck(k) : json_incref(x);
			if (json_array_append_new(l, e) != 0) {
				json_decref(l);
				oom(c);
				goto out;
			}
		}
		*out = l;
		rc = charge(c, n->pos, json_array_size(l) * 8);
	} else if (json_is_object(obj) && !strcmp(m, "get")) {
		json_t *x = NULL;
		if (!a[0]) {
			cerr(c, n->pos, VZ_EINVAL, "get expected at least 1 argument, got 0");
			goto out;
		}
		if (json_is_string(a[0]) && strlen(json_string_value(a[0])) == json_string_length(a[0]))
			x = json_object_get(obj, json_string_value(a[0]));
		*out = json_incref(x ? x : a[1] ? a[1] : json_null());
		rc = 0;
	} else if (json_is_string(obj) && (!strcmp(m, "lower") || !strcmp(m, "upper"))) {
		rc = map_str(c, n, obj, m[0] == 'u', out);
	} else if (json_is_string(obj) && (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip"))) {
		rc = do_strip(c, n->pos, obj, a[0], m[0] == 'l' ? 1 : m[0] == 'r' ? 2 : 3, out);
	} else if (json_is_string(obj) && !strcmp(m, "split")) {
		rc = do_split(c, n->pos, obj, a[0], a[1], out);
	} else if (json_is_string(obj) && !strcmp(m, "replace")) {
		rc = do_replace(c, n->pos, obj, a[0], a[1], a[2], out);
	} else if (json_is_string(obj) && (!strcmp(m, "startswith") || !strcmp(m, "endswith"))) {
		if (!a[0] || need_str(c, n->pos, what, a[0]) != 0) {
			if (!a[0])
				cerr(c, n->pos, VZ_EINVAL, "%s takes a string", what);
			goto out;
		}
		size_t l = json_string_length(obj), k = json_string_length(a[0]);
		const char *s = json_string_value(obj);
		int r = k <= l && memcmp(m[0] == 's' ? s : s + l - k, json_string_value(a[0]), k) == 0;
		*out = json_boolean(r);
		rc = 0;
	} else {
		cerr(c, callee->pos, VZ_EINVAL, "'%s object' has no method '%s' (vinz supports dict items/keys/values/get and str lower/upper/strip/lstrip/rstrip/split/replace/startswith/endswith)",
		     tname(obj), m);
	}
out:
	json_decref(obj);
	for (size_t i = 0; i < 3; i++)
		json_decref(a[i]);
	return rc;
}

static int eval_call(C *c, const node *n, json_t **out)
{
	const node *callee = n->a;
	if (callee->kind == N_ATTR)
		return eval_method(c, n, out);
	if (callee->kind == N_NAME && !strcmp(callee->name, "range")) {
		json_t *v = NULL;
		if (lookup(c, callee, &v) != 0)
			return -1;
		if (!v)
			return call_range(c, n, out);
		json_decref(v);
	}
	if (callee->kind == N_NAME && (!strcmp(callee->name, "lookup") || !strcmp(callee->name, "query") ||
				       !strcmp(callee->name, "q")))
		return cerr(c, callee->pos, VZ_EINVAL, "lookup plugins are not supported");
	json_t *v = NULL;
	if (eval_def(c, callee, &v) != 0)
		return -1;
	int rc = cerr(c, n->pos, VZ_EINVAL, "'%s' object is not callable", tname(v));
	json_decref(v);
	return rc;
}

static int eval(C *c, const node *n, json_t **out)
{
	json_t *v = NULL;
	int rc;
	*out = NULL;
	if (charge(c, n->pos, 0) != 0)
		return -1;
	switch (n->kind) {
	case N_LIT:
		*out = json_incref(n->lit);
		return 0;
	case N_NAME:
		return lookup(c, n, out);
	case N_ATTR:
		if (eval_def(c, n->a, &v) != 0)
			return -1;
		if (json_is_object(v)) {
			json_t *x = json_object_get(v, n->name);
			if (x)
				*out = json_incref(x);
			else
				missing_attr(c, v, n->name);
		} else {
			missing_attr(c, v, n->name);
		}
		json_decref(v);
		return 0;
	case N_ITEM: {
		json_t *k = NULL;
		if (eval_def(c, n->a, &v) != 0 || eval_def(c, n->b, &k) != 0) {
			json_decref(v);
			return -1;
		}
		rc = subscript(c, n->pos, v, k, out);
		json_decref(v);
		json_decref(k);
		return rc;
	}
	case N_SLICE:
		return eval_slice(c, n, out);
	case N_BIN:
		return eval_bin(c, n, out);
	case N_NEG:
	case N_POS:
		if (eval_def(c, n->a, &v) != 0)
			return -1;
		if (!is_num(v))
			rc = cerr(c, n->pos, VZ_EINVAL, "bad operand type for unary %s: '%s'",
				  n->kind == N_NEG ? "-" : "+", tname(v));
		else if (n->kind == N_POS)
			rc = set_out(c, out, is_intlike(v) ? json_integer((json_int_t)ival(v)) : json_incref(v));
		else if (json_is_real(v))
			rc = set_out(c, out, json_real(-json_real_value(v)));
		else
			rc = checked_int(c, n->pos, ival(v) != INT64_MIN, -ival(v), out);
		json_decref(v);
		return rc;
	case N_NOT:
		if (eval_def(c, n->a, &v) != 0)
			return -1;
		*out = json_boolean(!vz_template_truthy(v));
		json_decref(v);
		return 0;
	case N_AND:
	case N_OR:
		if (eval_def(c, n->a, &v) != 0)
			return -1;
		if (vz_template_truthy(v) == (n->kind == N_OR)) {
			*out = v;
			return 0;
		}
		json_decref(v);
		return eval(c, n->b, out);
	case N_COND:
		if (eval_def(c, n->b, &v) != 0)
			return -1;
		rc = vz_template_truthy(v);
		json_decref(v);
		if (rc)
			return eval(c, n->a, out);
		if (n->c)
			return eval(c, n->c, out);
		{
			unsigned line, col;
			linecol(c->src, c->srclen, n->pos, &line, &col);
			return undefined(c, "the inline if-expression on line %u evaluated to false and no else section was defined", line);
		}
	case N_LIST:
	case N_DICT:
		return eval_list(c, n, out);
	case N_FILTER:
		return eval_filter(c, n, out);
	case N_TEST:
		return eval_test(c, n, out);
	case N_CALL:
		return eval_call(c, n, out);
	case N_CMP:
		return eval_cmp(c, n, out);
	}
	return cerr(c, n->pos, VZ_EINVAL, "cannot evaluate this expression");
}

/* ---- rendering ---- */

static int render(C *c, const node *n);

static int render_body(C *c, const node *n)
{
	for (size_t i = 0; n && i < n->nkids; i++)
		if (render(c, n->kids[i]) != 0)
			return -1;
	return 0;
}

static int emit_check(C *c, size_t pos)
{
	if (c->out->failed == VZ_ETOOBIG)
		return cerr(c, pos, VZ_ETOOBIG, "template output exceeds %zu bytes", c->out->max);
	if (c->out->failed)
		return oom(c);
	return 0;
}

static json_t *loop_obj(size_t i, size_t len)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:b,s:b,s:I}", "index", (json_int_t)(i + 1),
			 "index0", (json_int_t)i, "revindex", (json_int_t)(len - i),
			 "revindex0", (json_int_t)(len - i - 1), "first", i == 0, "last", i + 1 == len,
			 "length", (json_int_t)len);
}

static int render_for(C *c, const node *n)
{
	json_t *it = NULL, *seq = NULL;
	int rc = -1;
	if (eval_def(c, n->a, &it) != 0)
		goto out;
	if (json_is_array(it)) {
		seq = json_incref(it);
	} else if (json_is_string(it)) {
		if (str_chars(c, n->a->pos, it, &seq) != 0)
			goto out;
	} else if (json_is_object(it)) {
		const char *k;
		json_t *x;
		if (!(seq = json_array()))
			goto nomem;
		json_object_foreach(it, k, x)
			if (json_array_append_new(seq, json_string_nocheck(k)) != 0)
				goto nomem;
	} else {
		cerr(c, n->a->pos, VZ_EINVAL, "'%s' object is not iterable", tname(it));
		goto out;
	}
	size_t len = json_array_size(seq);
	if (len == 0) {
		rc = render_body(c, n->c);
		goto out;
	}
	for (size_t i = 0; i < len; i++) {
		json_t *item = json_array_get(seq, i);
		if (++c->iter > c->max_iter) {
			cerr(c, n->pos, VZ_ETOOBIG, "loops ran more than %zu iterations", c->max_iter);
			goto out;
		}
		json_t *scope = json_object();
		if (!scope)
			goto nomem;
		c->scopes[c->nscopes++] = scope;
		int r;
		if (n->name2) {
			if (!json_is_array(item) || json_array_size(item) != 2) {
				cerr(c, n->pos, VZ_EINVAL, "cannot unpack %s into '%s, %s'; need 2 values",
				     tname(item), n->name, n->name2);
				r = -1;
			} else {
				r = json_object_set_nocheck(scope, n->name, json_array_get(item, 0)) ||
				    json_object_set_nocheck(scope, n->name2, json_array_get(item, 1));
				if (r)
					oom(c);
			}
		} else {
			r = json_object_set_nocheck(scope, n->name, item);
			if (r)
				oom(c);
		}
		if (r == 0 && json_object_set_new_nocheck(scope, "loop", loop_obj(i, len)) != 0)
			r = oom(c);
		if (r == 0)
			r = render_body(c, n->b);
		c->nscopes--;
		json_decref(scope);
		if (r != 0)
			goto out;
	}
	rc = 0;
	goto out;
nomem:
	oom(c);
out:
	json_decref(it);
	json_decref(seq);
	return rc;
}

static int render(C *c, const node *n)
{
	json_t *v = NULL;
	int rc = -1;
	switch (n->kind) {
	case N_BODY:
		return render_body(c, n);
	case N_TEXT:
		vz_buf_add(c->out, n->text, n->textlen);
		if (charge(c, n->pos, n->textlen) != 0)
			return -1;
		return emit_check(c, n->pos);
	case N_OUT:
		if (eval_def(c, n->a, &v) != 0)
			return -1;
		rc = put_value(c, n->pos, c->out, v, P_STR, 0);
		if (rc == 0)
			rc = emit_check(c, n->pos);
		if (rc == 0)
			rc = charge(c, n->pos, json_is_string(v) ? json_string_length(v) : 0);
		json_decref(v);
		return rc;
	case N_IF:
		if (eval_def(c, n->a, &v) != 0)
			return -1;
		rc = vz_template_truthy(v);
		json_decref(v);
		if (rc)
			return render_body(c, n->b);
		if (n->c)
			return render(c, n->c);
		return 0;
	case N_FOR:
		return render_for(c, n);
	case N_SET:
		if (eval_def(c, n->a, &v) != 0)
			return -1;
		if (json_object_set_new_nocheck(c->scopes[c->nscopes - 1], n->name, v) != 0)
			return oom(c);
		return 0;
	}
	return cerr(c, n->pos, VZ_EINVAL, "cannot render this node");
}

/* ---- entry points ---- */

static void opts_fill(const vz_template_opts *o, vz_template_opts *r)
{
	if (o)
		*r = *o;
	else
		memset(r, 0, sizeof *r);
	if (!r->max_output) r->max_output = DEF_MAX_OUTPUT;
	if (!r->max_depth) r->max_depth = DEF_MAX_DEPTH;
	if (r->max_depth > HARD_MAX_DEPTH) r->max_depth = HARD_MAX_DEPTH;
	if (!r->max_iterations) r->max_iterations = DEF_MAX_ITER;
	if (!r->max_steps) r->max_steps = DEF_MAX_STEPS;
}

/* Parses src as a template (expr_only 0) or a bare expression (1). */
static int parse(node **out, const char *src, size_t len, int expr_only, const vz_template_opts *o,
		 vz_err *e)
{
	P p;
	memset(&p, 0, sizeof p);
	p.s = src;
	p.n = len;
	p.max_depth = o->max_depth;
	p.trim_blocks = o->trim_blocks;
	p.e = e;
	*out = NULL;
	if (!expr_only) {
		if (!o->keep_trailing_newline && p.n > 0 && (src[p.n - 1] == '\n' || src[p.n - 1] == '\r')) {
			p.n--;
			if (src[p.n] == '\n' && p.n > 0 && src[p.n - 1] == '\r')
				p.n--;
		}
		return parse_body(&p, out, NULL, NULL);
	}
	char b[64];
	p.mode = M_EXPR;
	if (lex(&p) != 0)
		return e && e->code ? e->code : VZ_EINVAL;
	if (p.tt == T_EOF)
		return perr(&p, 0, "empty expression");
	node *n = parse_expr(&p);
	if (!n)
		return e && e->code ? e->code : VZ_EINVAL;
	if (p.tt != T_EOF) {
		node_free(n);
		return perr(&p, p.tpos, "expected end of expression, got %s", tok_desc(&p, b, sizeof b));
	}
	*out = n;
	return 0;
}

static int run(json_t **value, char **text, const char *src, size_t len, int expr_only,
	       const json_t *vars, const vz_template_opts *opts, vz_err *e)
{
	vz_template_opts o;
	node *root = NULL;
	vz_buf buf;
	C c;
	int rc;
	vz_err local = { 0 };
	if (!e)
		e = &local;
	opts_fill(opts, &o);
	vz_buf_init(&buf, o.max_output);
	memset(&c, 0, sizeof c);
	if (!src && len) {
		rc = vz_err_set(e, VZ_EINVAL, "no template given");
		goto out;
	}
	if (vars && !json_is_object(vars)) {
		rc = vz_err_set(e, VZ_EINVAL, "template variables must be a JSON object");
		goto out;
	}
	rc = parse(&root, src ? src : "", len, expr_only, &o, e);
	if (rc != 0) {
		rc = e->code ? e->code : VZ_EINVAL;
		goto out;
	}
	c.src = src;
	c.srclen = len;
	c.vars = vars;
	c.out = &buf;
	c.max_output = o.max_output;
	c.max_iter = o.max_iterations;
	c.max_steps = o.max_steps;
	c.max_depth = o.max_depth;
	c.e = e;
	c.scopes = calloc(root->h + 2, sizeof *c.scopes);
	if (!c.scopes || !(c.scopes[0] = json_object())) {
		rc = oom(&c);
		goto out;
	}
	c.nscopes = 1;
	if (expr_only || (value && root->nkids == 1 && root->kids[0]->kind == N_OUT)) {
		json_t *v = NULL;
		rc = eval_def(&c, expr_only ? root : root->kids[0]->a, &v);
		if (rc == 0)
			*value = v;
	} else {
		rc = render(&c, root);
		if (rc == 0 && buf.failed)
			rc = emit_check(&c, 0);
		if (rc == 0 && value && !(*value = str_new(buf.ptr, buf.len)))
			rc = oom(&c);
		if (rc == 0 && text && !(*text = vz_buf_detach(&buf)))
			rc = oom(&c);
	}
	if (rc != 0)
		rc = e->code ? e->code : VZ_EINVAL;
out:
	if (c.scopes) {
		for (size_t i = 0; i < c.nscopes; i++)
			json_decref(c.scopes[i]);
		free(c.scopes);
	}
	node_free(root);
	vz_buf_free(&buf);
	return rc;
}

int vz_template_render(char **out, const char *tpl, size_t len, const json_t *vars,
		       const vz_template_opts *opts, vz_err *e)
{
	*out = NULL;
	return run(NULL, out, tpl, len, 0, vars, opts, e);
}

int vz_template_render_value(json_t **out, const char *tpl, size_t len, const json_t *vars,
			     const vz_template_opts *opts, vz_err *e)
{
	*out = NULL;
	return run(out, NULL, tpl, len, 0, vars, opts, e);
}

int vz_template_eval(json_t **out, const char *expr, size_t len, const json_t *vars,
		     const vz_template_opts *opts, vz_err *e)
{
	*out = NULL;
	return run(out, NULL, expr, len, 1, vars, opts, e);
}
