/* Unit tests for vz_yaml: tree shape and positions, PyYAML 1.1 scalar typing, aliases and their
 * caps, duplicate keys, libyaml error positions, and the input/depth/node limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "vz_buf.h"
#include "vz_util.h"
#include "vz_yaml.h"

#ifndef VZ_SOURCE_DIR
#define VZ_SOURCE_DIR "."
#endif

static vz_ynode *parse_ok(const char *doc)
{
	vz_ynode *n = NULL;
	vz_err e = {0};
	int rc = vz_yaml_parse(&n, doc, strlen(doc), "f.yaml", &e);
	if (rc != 0)
		fail_msg("parse of <<%s>> failed: %s", doc, e.msg);
	return n;
}

static int parse_err(const char *doc, size_t len, vz_err *e)
{
	vz_ynode *n = NULL;
	int rc = vz_yaml_parse(&n, doc, len, "f.yaml", e);
	assert_int_not_equal(rc, 0);
	assert_null(n);
	return rc;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_tree_positions(void **state)
{
	(void)state;
	vz_ynode *r = parse_ok("a: 1\n"
			       "b:\n"
			       "  - x\n"
			       "  - 'y'\n"
			       "c: {d: \"e\"}\n");
	assert_int_equal(r->kind, VZ_Y_MAP);
	assert_int_equal(r->n, 3);
	assert_int_equal(r->line, 1);
	assert_int_equal(r->col, 1);
	assert_string_equal(r->keys[0]->str, "a");
	assert_int_equal(r->keys[1]->line, 2);
	vz_ynode *a = vz_ymap_get(r, "a");
	assert_int_equal(a->kind, VZ_Y_SCALAR);
	assert_int_equal(a->line, 1);
	assert_int_equal(a->col, 4);
	assert_true(a->plain);
	vz_ynode *b = vz_ymap_get(r, "b");
	assert_int_equal(b->kind, VZ_Y_SEQ);
	assert_int_equal(b->n, 2);
	assert_int_equal(b->line, 3);
	assert_int_equal(b->col, 3);
	assert_int_equal(b->items[0]->line, 3);
	assert_int_equal(b->items[0]->col, 5);
	assert_true(b->items[0]->plain);
	assert_string_equal(b->items[1]->str, "y");
	assert_int_equal(b->items[1]->len, 1);
	assert_false(b->items[1]->plain);
	assert_int_equal(b->items[1]->line, 4);
	assert_int_equal(b->items[1]->col, 5);
	vz_ynode *c = vz_ymap_get(r, "c");
	assert_int_equal(c->kind, VZ_Y_MAP);
	assert_int_equal(c->col, 4);
	vz_ynode *d = vz_ymap_get(c, "d");
	assert_string_equal(d->str, "e");
	assert_int_equal(d->col, 8);
	assert_false(d->plain);
	assert_null(vz_ymap_get(r, "zz"));
	assert_null(vz_ymap_get(b, "a")); /* not a mapping */
	vz_ynode_free(r);
}

/* Each row: the text after "v: " and the JSON PyYAML's safe_load would give for it. */
static const struct {
	const char *yaml;
	const char *json;
} typing[] = {
	{"yes", "true"}, {"Yes", "true"}, {"YES", "true"}, {"on", "true"}, {"On", "true"},
	{"ON", "true"}, {"true", "true"}, {"True", "true"}, {"TRUE", "true"},
	{"no", "false"}, {"No", "false"}, {"NO", "false"}, {"off", "false"}, {"Off", "false"},
	{"OFF", "false"}, {"false", "false"}, {"False", "false"}, {"FALSE", "false"},
	{"yEs", "\"yEs\""}, {"y", "\"y\""}, {"n", "\"n\""}, {"tRUE", "\"tRUE\""},
	{"~", "null"}, {"null", "null"}, {"Null", "null"}, {"NULL", "null"}, {"", "null"},
	{"nULL", "\"nULL\""},
	{"0", "0"}, {"12", "12"}, {"-12", "-12"}, {"+12", "12"}, {"1_000", "1000"},
	{"0x1F", "31"}, {"0x1f", "31"}, {"-0x10", "-16"}, {"0755", "493"}, {"0_7", "7"},
	{"0b101", "5"}, {"-0b11", "-3"}, {"09", "\"09\""}, {"0x", "\"0x\""}, {"0xG", "\"0xG\""},
	{"_1", "\"_1\""}, {"1:30", "\"1:30\""}, {"12abc", "\"12abc\""},
	{"9223372036854775807", "9223372036854775807"},
	{"-9223372036854775808", "-9223372036854775808"},
	{"9223372036854775808", "\"9223372036854775808\""},
	{"1.5", "1.5"}, {"-1.5", "-1.5"}, {"1.", "1.0"}, {".5", "0.5"}, {"1_0.2_5", "10.25"},
	{"1.0e+3", "1000.0"}, {"2.5E-1", "0.25"}, {"1.0e3", "\"1.0e3\""}, {"1e+3", "\"1e+3\""},
	{".inf", "\".inf\""}, {"-.Inf", "\"-.Inf\""}, {".NaN", "\".NaN\""}, {".", "\".\""},
	{"1.0e+999", "\"1.0e+999\""},
	{"'12'", "\"12\""}, {"\"yes\"", "\"yes\""}, {"'~'", "\"~\""}, {"''", "\"\""},
	{"|\n  yes\n", "\"yes\\n\""},
	{"!!str 12", "\"12\""}, {"!!int \"12\"", "12"}, {"!!bool 'yes'", "true"},
	{"!custom 12", "\"12\""},
	{"hello world", "\"hello world\""}, {"[1, a, ~]", "[1, \"a\", null]"},
	{"{a: 1}", "{\"a\": 1}"},
};

static void test_typing(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(typing) / sizeof(typing[0]); i++) {
		char doc[256];
		snprintf(doc, sizeof(doc), "v: %s\n", typing[i].yaml);
		vz_ynode *r = parse_ok(doc);
		json_t *j = vz_ynode_to_json(vz_ymap_get(r, "v"));
		assert_non_null(j);
		char *s = json_dumps(j, JSON_ENCODE_ANY);
		if (strcmp(s, typing[i].json) != 0)
			fail_msg("v: %s gave %s, want %s", typing[i].yaml, s, typing[i].json);
		free(s);
		json_decref(j);
		vz_ynode_free(r);
	}
}

static void test_typed_accessors(void **state)
{
	(void)state;
	vz_ynode *r = parse_ok("i: 42\nq: '42'\nb: off\nqb: 'off'\nn: ~\nf: 0.25\nh: 0x10\n");
	long long v = 0;
	int b = -1;
	double d = 0;
	assert_int_equal(vz_yscalar_int(vz_ymap_get(r, "i"), 1, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(vz_yscalar_int(vz_ymap_get(r, "i"), 1, 41, &v), VZ_EINVAL);
	assert_int_equal(vz_yscalar_int(vz_ymap_get(r, "i"), 43, 100, &v), VZ_EINVAL);
	assert_int_equal(vz_yscalar_int(vz_ymap_get(r, "q"), 1, 100, &v), VZ_EINVAL);
	assert_int_equal(vz_yscalar_int(vz_ymap_get(r, "h"), 0, 100, &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(vz_yscalar_int(r, 0, 100, &v), VZ_EINVAL); /* a mapping */
	assert_int_equal(vz_yscalar_bool(vz_ymap_get(r, "b"), &b), 0);
	assert_int_equal(b, 0);
	assert_int_equal(vz_yscalar_bool(vz_ymap_get(r, "qb"), &b), VZ_EINVAL);
	assert_int_equal(vz_yscalar_bool(vz_ymap_get(r, "i"), &b), VZ_EINVAL);
	assert_true(vz_yscalar_is_null(vz_ymap_get(r, "n")));
	assert_false(vz_yscalar_is_null(vz_ymap_get(r, "q")));
	assert_false(vz_yscalar_is_null(NULL));
	assert_int_equal(vz_yscalar_float(vz_ymap_get(r, "f"), &d), 0);
	assert_true(d == 0.25);
	assert_int_equal(vz_yscalar_float(vz_ymap_get(r, "i"), &d), 0);
	assert_true(d == 42.0);
	assert_int_equal(vz_yscalar_float(vz_ymap_get(r, "q"), &d), VZ_EINVAL);
	vz_ynode_free(r);
}

static void test_tags_kept(void **state)
{
	(void)state;
	vz_ynode *r = parse_ok("secret: !encrypted/pkcs1-oaep\n  - abc\n  - def\n"
			       "plain: !!str yes\n"
			       "local: !x {a: 1}\n"
			       "none: z\n");
	vz_ynode *s = vz_ymap_get(r, "secret");
	assert_int_equal(s->kind, VZ_Y_SEQ);
	assert_string_equal(s->tag, "!encrypted/pkcs1-oaep");
	assert_string_equal(vz_ymap_get(r, "plain")->tag, "tag:yaml.org,2002:str");
	assert_string_equal(vz_ymap_get(r, "local")->tag, "!x");
	assert_null(vz_ymap_get(r, "none")->tag);
	vz_ynode_free(r);
}

static void test_aliases(void **state)
{
	(void)state;
	vz_ynode *r = parse_ok("base: &b\n"
			       "  x: 1\n"
			       "  y: [a, b]\n"
			       "one: *b\n"
			       "two: *b\n"
			       "s: &s hello\n"
			       "t: [*s, *s]\n"
			       "b2: &b {z: 2}\n"
			       "three: *b\n");
	vz_ynode *base = vz_ymap_get(r, "base"), *one = vz_ymap_get(r, "one");
	assert_ptr_not_equal(base, one); /* a copy, not a shared node */
	assert_int_equal(one->kind, VZ_Y_MAP);
	assert_int_equal(one->n, 2);
	/* the copy keeps the anchored node's position, which libyaml puts at the anchor */
	assert_int_equal(one->line, 1);
	assert_int_equal(one->col, 7);
	json_t *j = vz_ynode_to_json(r);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"b2\":{\"z\":2},\"base\":{\"x\":1,\"y\":[\"a\",\"b\"]},"
			       "\"one\":{\"x\":1,\"y\":[\"a\",\"b\"]},\"s\":\"hello\","
			       "\"t\":[\"hello\",\"hello\"],\"three\":{\"z\":2},"
			       "\"two\":{\"x\":1,\"y\":[\"a\",\"b\"]}}");
	free(s);
	json_decref(j);
	vz_ynode_free(r);

	vz_err e = {0};
	const char *doc = "a: 1\nb: *nope\n";
	parse_err(doc, strlen(doc), &e);
	assert_string_equal(e.msg, "f.yaml:2:4: unknown alias '*nope' (define '&nope' before use)");
	/* an alias inside its own anchor is not yet defined: no recursion */
	vz_err_clear(&e);
	doc = "a: &a [1, *a]\n";
	parse_err(doc, strlen(doc), &e);
	assert_non_null(strstr(e.msg, "f.yaml:1:11: unknown alias '*a'"));
}

static void test_billion_laughs(void **state)
{
	(void)state;
	const char *doc = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
			  "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
			  "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
			  "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
			  "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
			  "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
			  "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
			  "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
			  "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
	vz_err e = {0};
	double t0 = now_s();
	int rc = parse_err(doc, strlen(doc), &e);
	double dt = now_s() - t0;
	assert_int_equal(rc, VZ_ETOOBIG);
	assert_non_null(strstr(e.msg, "expands the document past 1000000 nodes"));
	assert_true(vz_startswith(e.msg, "f.yaml:7:"));
	assert_true(dt < 5.0); /* generous for valgrind; natively it is milliseconds */

	/* a huge scalar aliased many times hits the byte cap instead */
	vz_buf b = VZ_BUF_INIT(VZ_YAML_MAX_INPUT);
	vz_buf_puts(&b, "a: &a ");
	for (int i = 0; i < 1024 * 1024; i++)
		vz_buf_putc(&b, 'x');
	vz_buf_puts(&b, "\nb: [");
	for (int i = 0; i < 100; i++)
		vz_buf_puts(&b, "*a,");
	vz_buf_puts(&b, "]\n");
	assert_int_equal(b.failed, 0);
	vz_err_clear(&e);
	rc = parse_err(b.ptr, b.len, &e);
	assert_int_equal(rc, VZ_ETOOBIG);
	assert_non_null(strstr(e.msg, "bytes of text"));
	vz_buf_free(&b);
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	static const struct {
		const char *doc, *msg;
	} rows[] = {
		{"a: 1\nb: 2\na: 3\n", "f.yaml:3:1: duplicate key 'a' (first at line 1)"},
		{"x:\n  k: 1\n  j: 2\n  k: 3\n  j: 4\n", "f.yaml:4:3: duplicate key 'k' (first at line 2)"},
		{"{a: 1, a: 2}", "f.yaml:1:8: duplicate key 'a' (first at line 1)"},
		{"'1': x\n1: y\n", "f.yaml:2:1: duplicate key '1' (first at line 1)"},
		{"k: 1\nk: 2\nk: 3\n", "f.yaml:2:1: duplicate key 'k' (first at line 1)"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		vz_err e = {0};
		assert_int_equal(parse_err(rows[i].doc, strlen(rows[i].doc), &e), VZ_EINVAL);
		assert_string_equal(e.msg, rows[i].msg);
	}
	/* the same key in different mappings is fine */
	vz_ynode_free(parse_ok("a: {k: 1}\nb: {k: 1}\n"));
}

/* libyaml's 0-based marks come out 1-based; the prefix is checked exactly. */
static void test_syntax_errors(void **state)
{
	(void)state;
	static const struct {
		const char *doc, *prefix, *contains;
	} rows[] = {
		/* a tab used for indentation: the tab itself */
		{"a: 1\n\tb: 2\n", "f.yaml:2:1: ", "tabs cannot indent YAML"},
		{"a:\n  b: 1\n\tc: 2\n", "f.yaml:3:1: ", "tab"},
		/* an unclosed quote: where the quote opened, not the end of the file */
		{"a: 1\nb: \"abc\nc: 2\n", "f.yaml:2:4: ", "never closed"},
		{"a: 'x\n", "f.yaml:1:4: ", "quoted scalar"},
		{"a: {b: [c\n", "f.yaml:1:8: ", "flow sequence"},
		{"a: b: c\n", "f.yaml:1:5: ", "mapping values are not allowed"},
		{"- a\nb: 1\n", "f.yaml:2:1: ", "did not find expected '-' indicator"},
		{"a: *\n", "f.yaml:1:5: ", "while scanning an alias started at line 1 column 4"},
		{"a: 1\n\xff\n", "f.yaml:2:1: ", "UTF-8"},
		{"? [a]\n: 1\n", "f.yaml:1:3: ", "mapping key must be a scalar"},
		{"<<: {a: 1}\n", "f.yaml:1:1: ", "merge keys ('<<') are not supported"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		vz_err e = {0};
		assert_int_equal(parse_err(rows[i].doc, strlen(rows[i].doc), &e), VZ_EINVAL);
		if (!vz_startswith(e.msg, rows[i].prefix) || !strstr(e.msg, rows[i].contains))
			fail_msg("row %zu: got '%s', want prefix '%s' and '%s'", i, e.msg, rows[i].prefix,
				 rows[i].contains);
	}
}

static void test_depth_cap(void **state)
{
	(void)state;
	char doc[2 * (VZ_YAML_MAX_DEPTH + 10) + 8];
	size_t n = 0;
	for (int i = 0; i < VZ_YAML_MAX_DEPTH; i++)
		doc[n++] = '[';
	for (int i = 0; i < VZ_YAML_MAX_DEPTH; i++)
		doc[n++] = ']';
	doc[n] = '\0';
	vz_ynode_free(parse_ok(doc)); /* exactly at the cap */
	n = 0;
	for (int i = 0; i < VZ_YAML_MAX_DEPTH + 1; i++)
		doc[n++] = '[';
	doc[n] = '\0';
	vz_err e = {0};
	parse_err(doc, n, &e);
	char want[64];
	snprintf(want, sizeof(want), "f.yaml:1:%d: the document nests deeper than %d levels",
		 VZ_YAML_MAX_DEPTH + 1, VZ_YAML_MAX_DEPTH);
	assert_string_equal(e.msg, want);

	/* aliases must not build depth past the cap either */
	vz_buf b = VZ_BUF_INIT(1 << 20);
	vz_buf_puts(&b, "a: &a ");
	for (int i = 0; i < 200; i++)
		vz_buf_putc(&b, '[');
	for (int i = 0; i < 200; i++)
		vz_buf_putc(&b, ']');
	vz_buf_puts(&b, "\nb: ");
	for (int i = 0; i < 100; i++)
		vz_buf_putc(&b, '[');
	vz_buf_puts(&b, "*a");
	for (int i = 0; i < 100; i++)
		vz_buf_putc(&b, ']');
	vz_buf_putc(&b, '\n');
	vz_err_clear(&e);
	parse_err(b.ptr, b.len, &e);
	assert_non_null(strstr(e.msg, "nests the document deeper"));
	vz_buf_free(&b);
}

static void test_node_and_input_caps(void **state)
{
	(void)state;
	vz_buf b = VZ_BUF_INIT(VZ_YAML_MAX_INPUT);
	vz_buf_putc(&b, '[');
	for (int i = 0; i < VZ_YAML_MAX_NODES; i++)
		vz_buf_puts(&b, "0,");
	vz_buf_putc(&b, ']');
	assert_int_equal(b.failed, 0);
	vz_err e = {0};
	assert_int_equal(parse_err(b.ptr, b.len, &e), VZ_ETOOBIG);
	assert_non_null(strstr(e.msg, "more than 1000000 nodes"));
	vz_buf_free(&b);

	char *big = malloc(VZ_YAML_MAX_INPUT + 1);
	assert_non_null(big);
	memset(big, ' ', VZ_YAML_MAX_INPUT + 1);
	vz_err_clear(&e);
	assert_int_equal(parse_err(big, VZ_YAML_MAX_INPUT + 1, &e), VZ_ETOOBIG);
	assert_true(vz_startswith(e.msg, "f.yaml: "));
	free(big);
}

static void test_empty_documents(void **state)
{
	(void)state;
	static const char *const docs[] = {"", "\n", "# only a comment\n", "---\n", "--- \n...\n", "---\n# c\n"};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		vz_ynode *n = (vz_ynode *)1;
		vz_err e = {0};
		assert_int_equal(vz_yaml_parse(&n, docs[i], strlen(docs[i]), "f.yaml", &e), 0);
		assert_null(n);
	}
	/* only the first document counts, and a broken second one is not parsed */
	vz_ynode *r = parse_ok("a: 1\n---\nb: [\n");
	assert_non_null(vz_ymap_get(r, "a"));
	vz_ynode_free(r);
	/* a null document is not empty */
	r = parse_ok("~\n");
	assert_true(vz_yscalar_is_null(r));
	vz_ynode_free(r);
	json_t *j = vz_ynode_to_json(NULL);
	assert_true(json_is_null(j));
	json_decref(j);
}

static void test_utf8(void **state)
{
	(void)state;
	vz_ynode *r = parse_ok("é: ü\nclé: [ä, 😀, \"\\u00e9\\0x\"]\n");
	vz_ynode *v = vz_ymap_get(r, "é");
	assert_non_null(v);
	assert_string_equal(v->str, "ü");
	assert_int_equal(v->col, 4); /* columns count characters, as editors do */
	vz_ynode *l = vz_ymap_get(r, "clé");
	assert_int_equal(l->col, 6);
	assert_int_equal(l->items[1]->col, 10);
	assert_string_equal(l->items[1]->str, "😀");
	assert_int_equal(l->items[2]->len, 4); /* é (2 bytes), NUL, x */
	assert_memory_equal(l->items[2]->str, "\xc3\xa9\0x", 4);
	json_t *j = vz_ynode_to_json(r);
	assert_non_null(j);
	json_decref(j);
	vz_ynode_free(r);

	vz_err e = {0};
	const char *doc = "ä: 1\nö: [ä, b\n";
	parse_err(doc, strlen(doc), &e);
	assert_true(vz_startswith(e.msg, "f.yaml:2:4: "));
}

static void test_load_file(void **state)
{
	(void)state;
	vz_ynode *r = NULL;
	vz_err e = {0};
	assert_int_equal(vz_yaml_load_file(&r, VZ_SOURCE_DIR "/tests/fixtures/config/farm.yaml", &e), 0);
	assert_non_null(vz_ymap_get(r, "nodes"));
	vz_ynode_free(r);
	assert_int_equal(vz_yaml_load_file(&r, "/nonexistent/x.yaml", &e), VZ_ENOTFOUND);
	assert_null(r);
	vz_ynode_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_positions),
		cmocka_unit_test(test_typing),
		cmocka_unit_test(test_typed_accessors),
		cmocka_unit_test(test_tags_kept),
		cmocka_unit_test(test_aliases),
		cmocka_unit_test(test_billion_laughs),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_depth_cap),
		cmocka_unit_test(test_node_and_input_caps),
		cmocka_unit_test(test_empty_documents),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_load_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
