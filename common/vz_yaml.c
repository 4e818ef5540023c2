/* vz_yaml: builds a vz_ynode tree from libyaml's event parser, keeping 1-based positions, expanding
 * aliases by deep copy under node/byte/depth caps, refusing duplicate keys, non-scalar keys and
 * merge keys (`<<`, refused with a clear error rather than half-supported). Plain scalars are
 * typed the way PyYAML's YAML 1.1 resolver does; see vz_yaml.h and docs/configuration.md. */
#include "vz_yaml.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "vz_buf.h"
#include "vz_util.h"

/* Scalar bytes after alias expansion: an anchored 1 MiB scalar aliased a million times must not
 * allocate a terabyte, and the node cap alone does not see bytes. */
#define VZ_YAML_MAX_BYTES (4u * VZ_YAML_MAX_INPUT)

#define TAG_PREFIX "tag:yaml.org,2002:"

typedef struct anchor {
	char *name;
	const vz_ynode *node; /* borrowed from the tree under construction */
	size_t nodes;         /* nodes in the subtree */
	size_t bytes;         /* scalar bytes in the subtree */
	int height;           /* levels in the subtree (a scalar is 1) */
} anchor;

typedef struct yctx {
	yaml_parser_t parser;
	const char *fname;
	const char *data;
	size_t len;
	vz_err *e;
	size_t nodes, bytes;
	anchor *anchors; /* open-addressing hash table, capacity a power of two */
	size_t nanchors, acap;
} yctx;

/* The counts a subtree adds, so aliases can be checked before they are copied. */
typedef struct ystat {
	size_t nodes, bytes;
	int height;
} ystat;

void vz_ynode_free(vz_ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (n->items)
			vz_ynode_free(n->items[i]);
		if (n->keys)
			vz_ynode_free(n->keys[i]);
	}
	free(n->items);
	free(n->keys);
	free(n->str);
	free(n->tag);
	free(n);
}

/* ---- libyaml errors: translated here and nowhere else ---- */

/* Byte offset of the start of 0-based line `line`, or len when past the end. */
static size_t line_start(const char *data, size_t len, size_t line)
{
	size_t off = 0;
	while (line > 0 && off < len) {
		const char *nl = memchr(data + off, '\n', len - off);
		if (!nl)
			return len;
		off = (size_t)(nl - data) + 1;
		line--;
	}
	return line ? len : off;
}

/* The byte at a libyaml mark (its column counts characters), or -1 when out of range. */
static int char_at_mark(const yctx *c, const yaml_mark_t *m)
{
	size_t off = line_start(c->data, c->len, m->line);
	size_t col = m->column;
	while (off < c->len && c->data[off] != '\n' && col > 0) {
		off++;
		while (off < c->len && ((unsigned char)c->data[off] & 0xC0) == 0x80)
			off++;
		col--;
	}
	if (col > 0 || off >= c->len)
		return -1;
	return (unsigned char)c->data[off];
}

static void offset_to_pos(const char *data, size_t len, size_t offset, int *line, int *col)
{
	int l = 1, cl = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (data[i] == '\n') {
			l++;
			cl = 1;
		} else if (((unsigned char)data[i] & 0xC0) != 0x80) {
			cl++;
		}
		if (l == INT32_MAX || cl == INT32_MAX)
			break;
	}
	*line = l;
	*col = cl;
}

static int mark_line(const yaml_mark_t *m) { return m->line >= INT32_MAX ? INT32_MAX : (int)m->line + 1; }
static int mark_col(const yaml_mark_t *m) { return m->column >= INT32_MAX ? INT32_MAX : (int)m->column + 1; }

static int parser_error(yctx *c)
{
	yaml_parser_t *p = &c->parser;
	const char *problem = p->problem ? p->problem : "invalid YAML";
	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return vz_err_set(c->e, VZ_ENOMEM, "%s: out of memory while parsing YAML", c->fname);
	case YAML_READER_ERROR: {
		int line, col;
		offset_to_pos(c->data, c->len, p->problem_offset, &line, &col);
		if (p->problem_value != -1)
			return vz_err_set(c->e, VZ_EINVAL, "%s:%d:%d: %s (#%X); the file must be UTF-8 text",
					  c->fname, line, col, problem, (unsigned)p->problem_value);
		return vz_err_set(c->e, VZ_EINVAL, "%s:%d:%d: %s; the file must be UTF-8 text", c->fname,
				  line, col, problem);
	}
	default:
		break;
	}
	const yaml_mark_t *pm = &p->problem_mark;
	const char *hint = "";
	if (char_at_mark(c, pm) == '\t')
		hint = " (tabs cannot indent YAML; use spaces)";
	if (!p->context)
		return vz_err_set(c->e, VZ_EINVAL, "%s:%d:%d: %s%s", c->fname, mark_line(pm), mark_col(pm),
				  problem, hint);
	const yaml_mark_t *cm = &p->context_mark;
	/* At the end of the input the problem mark says nothing useful ("line 9, column 1" of a
	 * 8-line file); the context mark is where the unclosed thing started. */
	if (char_at_mark(c, pm) == -1 && (cm->line != pm->line || cm->column != pm->column))
		return vz_err_set(c->e, VZ_EINVAL, "%s:%d:%d: %s %s started here, never closed", c->fname,
				  mark_line(cm), mark_col(cm), problem, p->context);
	if (cm->line != pm->line || cm->column != pm->column)
		return vz_err_set(c->e, VZ_EINVAL, "%s:%d:%d: %s %s started at line %d column %d%s",
				  c->fname, mark_line(pm), mark_col(pm), problem, p->context,
				  mark_line(cm), mark_col(cm), hint);
	return vz_err_set(c->e, VZ_EINVAL, "%s:%d:%d: %s %s%s", c->fname, mark_line(pm), mark_col(pm),
			  problem, p->context, hint);
}

/* ---- anchors ---- */

static size_t hash_str(const char *s)
{
	size_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void anchors_free(yctx *c)
{
	for (size_t i = 0; i < c->acap; i++)
		free(c->anchors[i].name);
	free(c->anchors);
	c->anchors = NULL;
	c->acap = c->nanchors = 0;
}

static anchor *anchor_slot(anchor *tab, size_t cap, const char *name)
{
	size_t i = hash_str(name) & (cap - 1);
	while (tab[i].name && strcmp(tab[i].name, name) != 0)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static const anchor *anchor_find(const yctx *c, const char *name)
{
	if (!c->acap)
		return NULL;
	anchor *a = anchor_slot(c->anchors, c->acap, name);
	return a->name ? a : NULL;
}

/* A later anchor of the same name replaces the earlier one (YAML 1.1 and 1.2 agree). */
static int anchor_set(yctx *c, const char *name, const vz_ynode *n, const ystat *st)
{
	if ((c->nanchors + 1) * 2 > c->acap) {
		size_t ncap = c->acap ? c->acap * 2 : 16;
		anchor *nt = calloc(ncap, sizeof(*nt));
		if (!nt)
			return vz_err_set(c->e, VZ_ENOMEM, "%s: out of memory while parsing YAML", c->fname);
		for (size_t i = 0; i < c->acap; i++)
			if (c->anchors[i].name)
				*anchor_slot(nt, ncap, c->anchors[i].name) = c->anchors[i];
		free(c->anchors);
		c->anchors = nt;
		c->acap = ncap;
	}
	anchor *a = anchor_slot(c->anchors, c->acap, name);
	if (!a->name) {
		a->name = strdup(name);
		if (!a->name)
			return vz_err_set(c->e, VZ_ENOMEM, "%s: out of memory while parsing YAML", c->fname);
		c->nanchors++;
	}
	a->node = n;
	a->nodes = st->nodes;
	a->bytes = st->bytes;
	a->height = st->height;
	return 0;
}

/* ---- tree building ---- */

static vz_ynode *copy_tree(const vz_ynode *s)
{
	vz_ynode *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->kind = s->kind;
	n->line = s->line;
	n->col = s->col;
	n->plain = s->plain;
	n->len = s->len;
	if (s->tag && !(n->tag = strdup(s->tag)))
		goto fail;
	if (s->str) {
		if (!(n->str = malloc(s->len + 1)))
			goto fail;
		memcpy(n->str, s->str, s->len + 1);
	}
	if (s->n) {
		if (!(n->items = calloc(s->n, sizeof(*n->items))))
			goto fail;
		if (s->keys && !(n->keys = calloc(s->n, sizeof(*n->keys))))
			goto fail;
		for (size_t i = 0; i < s->n; i++) {
			n->n = i + 1; /* so a failure frees what was copied */
			if (!(n->items[i] = copy_tree(s->items[i])))
				goto fail;
			if (s->keys && !(n->keys[i] = copy_tree(s->keys[i])))
				goto fail;
		}
	}
	return n;
fail:
	vz_ynode_free(n);
	return NULL;
}

static int new_node(yctx *c, vz_ykind kind, const yaml_event_t *ev, const yaml_char_t *tag,
		    vz_ynode **out)
{
	if (c->nodes >= VZ_YAML_MAX_NODES)
		return vz_err_set(c->e, VZ_ETOOBIG, "%s:%d:%d: the document has more than %d nodes",
				  c->fname, mark_line(&ev->start_mark), mark_col(&ev->start_mark),
				  VZ_YAML_MAX_NODES);
	vz_ynode *n = calloc(1, sizeof(*n));
	if (!n || (tag && !(n->tag = strdup((const char *)tag)))) {
		free(n);
		return vz_err_set(c->e, VZ_ENOMEM, "%s: out of memory while parsing YAML", c->fname);
	}
	c->nodes++;
	n->kind = kind;
	n->line = mark_line(&ev->start_mark);
	n->col = mark_col(&ev->start_mark);
	*out = n;
	return 0;
}

static int next_event(yctx *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->parser, ev))
		return parser_error(c);
	return 0;
}

static int parse_node(yctx *c, yaml_event_t *ev, int depth, vz_ynode **out, ystat *st);

static int push_child(yctx *c, vz_ynode *parent, size_t *cap, vz_ynode *key, vz_ynode *val)
{
	if (parent->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		vz_ynode **ni = realloc(parent->items, ncap * sizeof(*ni));
		if (!ni)
			goto nomem;
		parent->items = ni;
		if (parent->kind == VZ_Y_MAP) {
			vz_ynode **nk = realloc(parent->keys, ncap * sizeof(*nk));
			if (!nk)
				goto nomem;
			parent->keys = nk;
		}
		*cap = ncap;
	}
	parent->items[parent->n] = val;
	if (parent->kind == VZ_Y_MAP)
		parent->keys[parent->n] = key;
	parent->n++;
	return 0;
nomem:
	vz_ynode_free(key);
	vz_ynode_free(val);
	return vz_err_set(c->e, VZ_ENOMEM, "%s: out of memory while parsing YAML", c->fname);
}

typedef struct keyref {
	const vz_ynode *k;
	size_t idx;
} keyref;

static int keyref_cmp(const void *a, const void *b)
{
	const keyref *x = a, *y = b;
	size_t m = x->k->len < y->k->len ? x->k->len : y->k->len;
	int r = memcmp(x->k->str, y->k->str, m);
	if (r)
		return r;
	if (x->k->len != y->k->len)
		return x->k->len < y->k->len ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void print_key(char *out, size_t n, const vz_ynode *k)
{
	size_t j = 0;
	for (size_t i = 0; i < k->len && j + 4 < n; i++) {
		unsigned char ch = (unsigned char)k->str[i];
		out[j++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	if (k->len > 0 && j + 4 >= n && j >= 3) {
		out[j - 3] = out[j - 2] = out[j - 1] = '.';
	}
	out[j] = '\0';
}

/* Keys compare by their text: `1` and '1' collide, `yes` and `true` do not. Sorting keeps this
 * O(n log n) for huge mappings; the reported pair is the earliest repeated key. */
static int check_duplicates(yctx *c, const vz_ynode *map)
{
	if (map->n < 2)
		return 0;
	keyref *refs = malloc(map->n * sizeof(*refs));
	if (!refs)
		return vz_err_set(c->e, VZ_ENOMEM, "%s: out of memory while parsing YAML", c->fname);
	for (size_t i = 0; i < map->n; i++) {
		refs[i].k = map->keys[i];
		refs[i].idx = i;
	}
	qsort(refs, map->n, sizeof(*refs), keyref_cmp);
	const keyref *first = NULL, *dup = NULL;
	for (size_t i = 1; i < map->n; i++) {
		const vz_ynode *a = refs[i - 1].k, *b = refs[i].k;
		if (a->len != b->len || memcmp(a->str, b->str, a->len) != 0)
			continue;
		/* refs[i-1] may itself be a repeat; walk back to the first of the run */
		size_t f = i - 1;
		while (f > 0 && refs[f - 1].k->len == b->len && memcmp(refs[f - 1].k->str, b->str, b->len) == 0)
			f--;
		if (!dup || refs[i].idx < dup->idx) {
			dup = &refs[i];
			first = &refs[f];
		}
	}
	int rc = 0;
	if (dup) {
		char kb[80];
		print_key(kb, sizeof(kb), dup->k);
		rc = vz_err_set(c->e, VZ_EINVAL, "%s:%d:%d: duplicate key '%s' (first at line %d)", c->fname,
				dup->k->line, dup->k->col, kb, first->k->line);
	}
	free(refs);
	return rc;
}

static int parse_scalar(yctx *c, yaml_event_t *ev, vz_ynode **out, ystat *st)
{
	vz_ynode *n = NULL;
	int rc = new_node(c, VZ_Y_SCALAR, ev, ev->data.scalar.tag, &n);
	if (rc)
		return rc;
	size_t len = ev->data.scalar.length;
	if (len > VZ_YAML_MAX_BYTES - c->bytes) {
		vz_ynode_free(n);
		return vz_err_set(c->e, VZ_ETOOBIG, "%s:%d:%d: the document holds more than %u bytes of text",
				  c->fname, mark_line(&ev->start_mark), mark_col(&ev->start_mark),
				  VZ_YAML_MAX_BYTES);
	}
	n->str = malloc(len + 1);
	if (!n->str) {
		vz_ynode_free(n);
		return vz_err_set(c->e, VZ_ENOMEM, "%s: out of memory while parsing YAML", c->fname);
	}
	memcpy(n->str, ev->data.scalar.value, len);
	n->str[len] = '\0';
	n->len = len;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	c->bytes += len;
	st->nodes = 1;
	st->bytes = len;
	st->height = 1;
	*out = n;
	return 0;
}

static int parse_alias(yctx *c, yaml_event_t *ev, int depth, vz_ynode **out, ystat *st)
{
	const char *name = (const char *)ev->data.alias.anchor;
	const yaml_mark_t *m = &ev->start_mark;
	const anchor *a = anchor_find(c, name);
	if (!a)
		return vz_err_set(c->e, VZ_EINVAL, "%s:%d:%d: unknown alias '*%s' (define '&%s' before use)",
				  c->fname, mark_line(m), mark_col(m), name, name);
	if (a->nodes > VZ_YAML_MAX_NODES - c->nodes)
		return vz_err_set(c->e, VZ_ETOOBIG,
				  "%s:%d:%d: alias '*%s' expands the document past %d nodes; "
				  "aliases are copied, so nested aliases multiply",
				  c->fname, mark_line(m), mark_col(m), name, VZ_YAML_MAX_NODES);
	if (a->bytes > VZ_YAML_MAX_BYTES - c->bytes)
		return vz_err_set(c->e, VZ_ETOOBIG,
				  "%s:%d:%d: alias '*%s' expands the document past %u bytes of text",
				  c->fname, mark_line(m), mark_col(m), name, VZ_YAML_MAX_BYTES);
	if (depth - 1 + a->height > VZ_YAML_MAX_DEPTH)
		return vz_err_set(c->e, VZ_EINVAL, "%s:%d:%d: alias '*%s' nests the document deeper than %d levels",
				  c->fname, mark_line(m), mark_col(m), name, VZ_YAML_MAX_DEPTH);
	vz_ynode *n = copy_tree(a->node);
	if (!n)
		return vz_err_set(c->e, VZ_ENOMEM, "%s: out of memory while parsing YAML", c->fname);
	c->nodes += a->nodes;
	c->bytes += a->bytes;
	st->nodes = a->nodes;
	st->bytes = a->bytes;
	st->height = a->height;
	*out = n;
	return 0;
}

static int parse_collection(yctx *c, yaml_event_t *ev, int depth, vz_ynode **out, ystat *st)
{
	int map = ev->type == YAML_MAPPING_START_EVENT;
	vz_ynode *n = NULL, *key = NULL;
	size_t cap = 0;
	int rc = new_node(c, map ? VZ_Y_MAP : VZ_Y_SEQ, ev,
			  map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag, &n);
	if (rc)
		return rc;
	st->nodes = 1;
	st->bytes = 0;
	st->height = 1;
	for (;;) {
		yaml_event_t child;
		if ((rc = next_event(c, &child)))
			goto out;
		if (child.type == (map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
			yaml_event_delete(&child);
			break;
		}
		vz_ynode *v = NULL;
		ystat cst;
		rc = parse_node(c, &child, depth + 1, &v, &cst);
		yaml_event_delete(&child);
		if (rc)
			goto out;
		st->nodes += cst.nodes;
		st->bytes += cst.bytes;
		if (cst.height + 1 > st->height)
			st->height = cst.height + 1;
		if (map && !key) {
			key = v;
			if (key->kind != VZ_Y_SCALAR) {
				rc = vz_err_set(c->e, VZ_EINVAL,
						"%s:%d:%d: a mapping key must be a scalar, not a %s",
						c->fname, key->line, key->col,
						key->kind == VZ_Y_MAP ? "mapping" : "sequence");
				goto out;
			}
			if (key->plain && !key->tag && key->len == 2 && memcmp(key->str, "<<", 2) == 0) {
				rc = vz_err_set(c->e, VZ_EINVAL,
						"%s:%d:%d: merge keys ('<<') are not supported; write the keys "
						"out or alias the whole mapping", c->fname, key->line, key->col);
				goto out;
			}
			continue;
		}
		rc = push_child(c, n, &cap, key, v);
		key = NULL;
		if (rc)
			goto out;
	}
	if (map)
		rc = check_duplicates(c, n);
out:
	vz_ynode_free(key);
	if (rc)
		vz_ynode_free(n);
	else
		*out = n;
	return rc;
}

/* Builds the node starting at ev (owned by the caller). depth is 1 for the document root. */
static int parse_node(yctx *c, yaml_event_t *ev, int depth, vz_ynode **out, ystat *st)
{
	const yaml_char_t *anchor_name = NULL;
	int rc;
	if (depth > VZ_YAML_MAX_DEPTH && ev->type != YAML_ALIAS_EVENT)
		return vz_err_set(c->e, VZ_EINVAL, "%s:%d:%d: the document nests deeper than %d levels",
				  c->fname, mark_line(&ev->start_mark), mark_col(&ev->start_mark),
				  VZ_YAML_MAX_DEPTH);
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		anchor_name = ev->data.scalar.anchor;
		rc = parse_scalar(c, ev, out, st);
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor_name = ev->data.sequence_start.anchor;
		rc = parse_collection(c, ev, depth, out, st);
		break;
	case YAML_MAPPING_START_EVENT:
		anchor_name = ev->data.mapping_start.anchor;
		rc = parse_collection(c, ev, depth, out, st);
		break;
	case YAML_ALIAS_EVENT:
		return parse_alias(c, ev, depth, out, st);
	default:
		return vz_err_set(c->e, VZ_EINVAL, "%s:%d:%d: unexpected YAML event %d", c->fname,
				  mark_line(&ev->start_mark), mark_col(&ev->start_mark), (int)ev->type);
	}
	if (rc == 0 && anchor_name && (rc = anchor_set(c, (const char *)anchor_name, *out, st))) {
		vz_ynode_free(*out);
		*out = NULL;
	}
	return rc;
}

int vz_yaml_parse(vz_ynode **out, const char *data, size_t len, const char *fname, vz_err *e)
{
	yctx c;
	vz_ynode *root = NULL;
	int rc = 0, done = 0;
	*out = NULL;
	memset(&c, 0, sizeof(c));
	c.fname = fname ? fname : "<yaml>";
	c.data = data ? data : "";
	c.len = data ? len : 0;
	c.e = e;
	if (c.len > VZ_YAML_MAX_INPUT)
		return vz_err_set(e, VZ_ETOOBIG, "%s: %zu bytes is larger than the YAML limit of %u bytes",
				  c.fname, c.len, VZ_YAML_MAX_INPUT);
	if (!yaml_parser_initialize(&c.parser))
		return vz_err_set(e, VZ_ENOMEM, "%s: out of memory while parsing YAML", c.fname);
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)c.data, c.len);
	while (!done) {
		yaml_event_t ev;
		if ((rc = next_event(&c, &ev)))
			break;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_START_EVENT:
			break;
		case YAML_STREAM_END_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			done = 1; /* only the first document counts; the rest is not even parsed */
			break;
		default: {
			ystat st;
			rc = parse_node(&c, &ev, 1, &root, &st);
			break;
		}
		}
		yaml_event_delete(&ev);
		if (rc)
			break;
	}
	yaml_parser_delete(&c.parser);
	anchors_free(&c);
	if (rc) {
		vz_ynode_free(root);
		return rc;
	}
	/* `---` alone is an empty document, the same as no document at all */
	if (root && root->kind == VZ_Y_SCALAR && root->plain && !root->tag && root->len == 0) {
		vz_ynode_free(root);
		root = NULL;
	}
	*out = root;
	return 0;
}

int vz_yaml_load_file(vz_ynode **out, const char *path, vz_err *e)
{
	vz_buf b = VZ_BUF_INIT(VZ_YAML_MAX_INPUT);
	*out = NULL;
	int rc = vz_read_file(path, VZ_YAML_MAX_INPUT, &b, e);
	if (rc == 0)
		rc = vz_yaml_parse(out, b.ptr ? b.ptr : "", b.len, path, e);
	vz_buf_free(&b);
	return rc;
}

vz_ynode *vz_ymap_get(const vz_ynode *n, const char *key)
{
	if (!n || n->kind != VZ_Y_MAP || !key)
		return NULL;
	size_t kl = strlen(key);
	for (size_t i = 0; i < n->n; i++)
		if (n->keys[i]->len == kl && memcmp(n->keys[i]->str, key, kl) == 0)
			return n->items[i];
	return NULL;
}

/* ---- typing ---- */

/* Which typing applies: a plain untagged scalar is resolved; an explicit core tag forces it;
 * quoted scalars and other tags are strings. */
static int typed_as(const vz_ynode *n, const char *core)
{
	if (!n || n->kind != VZ_Y_SCALAR)
		return 0;
	if (n->tag) {
		size_t pl = strlen(TAG_PREFIX);
		return strncmp(n->tag, TAG_PREFIX, pl) == 0 && strcmp(n->tag + pl, core) == 0;
	}
	return n->plain;
}

static int str_in(const vz_ynode *n, const char *const *set)
{
	if (strlen(n->str) != n->len)
		return 0;
	for (; *set; set++)
		if (strcmp(n->str, *set) == 0)
			return 1;
	return 0;
}

int vz_yscalar_is_null(const vz_ynode *n)
{
	static const char *const nulls[] = {"~", "null", "Null", "NULL", "", NULL};
	return typed_as(n, "null") && str_in(n, nulls);
}

int vz_yscalar_bool(const vz_ynode *n, int *out)
{
	static const char *const yes[] = {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", NULL};
	static const char *const no[] = {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", NULL};
	if (!typed_as(n, "bool"))
		return VZ_EINVAL;
	if (str_in(n, yes))
		*out = 1;
	else if (str_in(n, no))
		*out = 0;
	else
		return VZ_EINVAL;
	return 0;
}

static int digit_val(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return 99;
}

/* PyYAML 1.1 ints: [-+]? then 0, [1-9][0-9_]*, 0x[0-9a-fA-F_]+, 0[0-7_]+ (octal) or
 * 0b[01_]+; underscores are ignored. Sexagesimal (1:30) is not supported (stays a string).
 * Returns 0, VZ_EINVAL (not an int) or VZ_ETOOBIG (an int outside int64). */
static int parse_int(const char *s, size_t len, long long *out)
{
	size_t i = 0;
	int neg = 0, base = 10, ndig = 0;
	if (strlen(s) != len || len == 0)
		return VZ_EINVAL;
	if (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-';
		i++;
	}
	if (i >= len)
		return VZ_EINVAL;
	if (s[i] == '0' && i + 1 < len) {
		if (s[i + 1] == 'x') {
			base = 16;
			i += 2;
		} else if (s[i + 1] == 'b') {
			base = 2;
			i += 2;
		} else {
			base = 8;
			i += 1;
		}
		if (i >= len)
			return VZ_EINVAL;
	} else if (s[i] == '_') {
		return VZ_EINVAL;
	}
	uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	int big = 0;
	for (; i < len; i++) {
		if (s[i] == '_')
			continue;
		int d = digit_val(s[i]);
		if (d >= base)
			return VZ_EINVAL;
		ndig++;
		if (v > (lim - (uint64_t)d) / (uint64_t)base)
			big = 1;
		else
			v = v * (uint64_t)base + (uint64_t)d;
	}
	if (ndig == 0 && base != 8)
		return VZ_EINVAL;
	if (big)
		return VZ_ETOOBIG;
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(long long)v;
	else
		*out = (long long)v;
	return 0;
}

int vz_yscalar_int(const vz_ynode *n, long long min, long long max, long long *out)
{
	long long v;
	if (!typed_as(n, "int") || parse_int(n->str, n->len, &v) != 0 || v < min || v > max)
		return VZ_EINVAL;
	*out = v;
	return 0;
}

/* PyYAML 1.1 floats: [-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?, \.[0-9][0-9_]*(exp)?,
 * [-+]?\.(inf|Inf|INF), \.(nan|NaN|NAN). The exponent needs its sign (1.0e3 is a string).
 * Sexagesimal floats are not supported. Sets *special for inf/nan, which JSON cannot hold. */
static int parse_float(const char *s, size_t len, double *out, int *special)
{
	char buf[128];
	size_t i = 0, j = 0;
	*special = 0;
	if (strlen(s) != len || len == 0 || len >= sizeof(buf))
		return VZ_EINVAL;
	static const char *const inf[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
					  "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", NULL};
	for (const char *const *p = inf; *p; p++)
		if (strcmp(s, *p) == 0) {
			*special = 1;
			*out = s[1] == 'n' || s[1] == 'N' ? NAN : (s[0] == '-' ? -INFINITY : INFINITY);
			return 0;
		}
	if (s[i] == '-' || s[i] == '+')
		buf[j++] = s[i++];
	int lead = 0;
	if (i < len && s[i] >= '0' && s[i] <= '9') {
		for (; i < len && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'); i++)
			if (s[i] != '_')
				buf[j++] = s[i];
		lead = 1;
	} else if (j > 0) {
		return VZ_EINVAL; /* sign then dot: only .inf, handled above */
	}
	if (i >= len || s[i] != '.')
		return VZ_EINVAL;
	buf[j++] = s[i++];
	int frac = 0;
	for (; i < len && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'); i++) {
		if (!lead && !frac && s[i] == '_')
			return VZ_EINVAL; /* \.[0-9]: first after the dot must be a digit */
		if (s[i] != '_') {
			buf[j++] = s[i];
			frac = 1;
		}
	}
	if (!lead && !frac)
		return VZ_EINVAL;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		buf[j++] = s[i++];
		if (i >= len || (s[i] != '-' && s[i] != '+'))
			return VZ_EINVAL;
		buf[j++] = s[i++];
		if (i >= len)
			return VZ_EINVAL;
		for (; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return VZ_EINVAL;
			buf[j++] = s[i];
		}
	}
	if (i != len)
		return VZ_EINVAL;
	buf[j] = '\0';
	char *end = NULL;
	errno = 0;
	double d = strtod(buf, &end);
	if (!end || *end != '\0')
		return VZ_EINVAL;
	if (isinf(d) || isnan(d))
		*special = 1; /* 1.0e+999 */
	*out = d;
	return 0;
}

/* One scalar as JSON; NULL only when jansson fails. */
static json_t *scalar_to_json(const vz_ynode *n)
{
	long long iv;
	double dv;
	int b, special;
	if (vz_yscalar_is_null(n))
		return json_null();
	if (vz_yscalar_bool(n, &b) == 0)
		return json_boolean(b);
	if (typed_as(n, "int") && parse_int(n->str, n->len, &iv) == 0)
		return json_integer((json_int_t)iv);
	if (typed_as(n, "float") && parse_float(n->str, n->len, &dv, &special) == 0 && !special) {
		json_t *r = json_real(dv);
		if (r)
			return r;
	}
	return json_stringn(n->str, n->len);
}

json_t *vz_ynode_to_json(const vz_ynode *n)
{
	if (!n)
		return json_null();
	if (n->kind == VZ_Y_SCALAR)
		return scalar_to_json(n);
	json_t *r = n->kind == VZ_Y_MAP ? json_object() : json_array();
	if (!r)
		return NULL;
	for (size_t i = 0; i < n->n; i++) {
		json_t *v = vz_ynode_to_json(n->items[i]);
		int bad = !v;
		if (!bad && n->kind == VZ_Y_MAP)
			bad = json_object_setn_new(r, n->keys[i]->str, n->keys[i]->len, v) != 0;
		else if (!bad)
			bad = json_array_append_new(r, v) != 0;
		if (bad) {
			json_decref(r);
			return NULL;
		}
	}
	return r;
}

int vz_yscalar_float(const vz_ynode *n, double *out)
{
	long long iv;
	double dv;
	int special;
	if (typed_as(n, "int") && parse_int(n->str, n->len, &iv) == 0) {
		*out = (double)iv;
		return 0;
	}
	if (typed_as(n, "float") && parse_float(n->str, n->len, &dv, &special) == 0 && !special) {
		*out = dv;
		return 0;
	}
	return VZ_EINVAL;
}
