/* vz_secrets: project keys (mode 0600 in 0700 directories, never replaced), import/export, Zuul's chunked RSA-OAEP (SHA-1) round trips, errors for
 * a wrong key, a corrupt chunk and bad base64, the YAML encrypt_secret.py prints, and redaction.
 * Interoperability with the openssl command line and Python's cryptography is in
 * integration/test_secrets_compat.sh; making keys in-process (first use, two processes racing) in
 * integration/test_secrets_keygen.c, kept out of the unit tests run under valgrind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vz_redact.h"
#include "vz_secrets.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_yaml.h"

static char *g_dir;              /* a state directory shared by the tests */
static vz_secrets_key *g_key;    /* project a/one's key (RSA-4096 made by openssl, imported) */
static vz_secrets_key *g_other;  /* another 2048-bit key (openssl genrsa), for wrong-key cases */

static int setup(void **state)
{
	(void)state;
	g_dir = vz_test_tmpdir("secrets");
	vz_err e = { 0 };
	/* made by openssl and imported: generating RSA-4096 in-process is what
	 * integration/test_secrets_keygen covers (it takes minutes under valgrind) */
	vz_buf out = VZ_BUF_INIT(1u << 20);
	if (vz_test_sh(&out, "openssl genrsa -traditional 4096 2>/dev/null") != 0 ||
	    vz_secrets_key_import(g_dir, "gerrit", "a/one", vz_buf_cstr(&out), out.len, &e) ||
	    vz_secrets_key_get(&g_key, g_dir, "gerrit", "a/one", 0, &e)) {
		fprintf(stderr, "%s\n", vz_err_msg(&e));
		vz_buf_free(&out);
		return -1;
	}
	vz_buf_reset(&out);
	if (vz_test_sh(&out, "openssl genrsa 2048 2>/dev/null") != 0 ||
	    vz_secrets_key_parse(&g_other, out.ptr, out.len, "genrsa", &e)) {
		vz_buf_free(&out);
		return -1;
	}
	vz_buf_free(&out);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vz_secrets_key_free(g_key);
	vz_secrets_key_free(g_other);
	vz_test_rm(g_dir);
	free(g_dir);
	return 0;
}

static char *keypath(const char *conn, const char *project)
{
	char *p = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_secrets_key_path(&p, g_dir, conn, project, &e), 0);
	return p;
}

static void test_key_path_and_modes(void **state)
{
	(void)state;
	char *p = keypath("gerrit", "a/one");
	size_t dl = strlen(g_dir);
	assert_string_equal(p + dl, "/keys/secrets/project/gerrit/a/one/0.pem");
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* every directory made for it is 0700 */
	const char *dirs[] = { "keys", "keys/secrets", "keys/secrets/project", "keys/secrets/project/gerrit",
			       "keys/secrets/project/gerrit/a", "keys/secrets/project/gerrit/a/one" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char *d = vz_path_join(g_dir, dirs[i]);
		assert_int_equal(stat(d, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0700);
		free(d);
	}
	assert_int_equal(vz_secrets_key_bits(g_key), 4096);
	assert_true(vz_secrets_key_has_private(g_key));
	assert_int_equal(vz_secrets_chunk_size(g_key), 470);
	/* the file is Zuul's traditional PEM */
	vz_buf b = VZ_BUF_INIT(1u << 16);
	vz_err e = { 0 };
	assert_int_equal(vz_read_file(p, b.max, &b, &e), 0);
	assert_true(vz_startswith(b.ptr, "-----BEGIN RSA PRIVATE KEY-----\n"));
	vz_buf_free(&b);
	free(p);

	/* names that would leave the key directory are refused */
	const char *bad[] = { "", "/etc/x", "a/../b", "..", "a//b", "./a", "a/." };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *q = NULL;
		vz_err e2 = { 0 };
		assert_int_equal(vz_secrets_key_path(&q, g_dir, "gerrit", bad[i], &e2), VZ_EINVAL);
		assert_null(q);
		assert_non_null(strstr(e2.msg, "cannot name a key directory"));
		assert_int_equal(vz_secrets_key_path(&q, g_dir, bad[i], "p", &e2), VZ_EINVAL);
	}
}

static void test_key_reused_not_created(void **state)
{
	(void)state;
	vz_secrets_key *k = NULL;
	vz_err e = { 0 };
	/* a second get returns the same key */
	assert_int_equal(vz_secrets_key_get(&k, g_dir, "gerrit", "a/one", 1, &e), 0);
	char *p1 = NULL, *p2 = NULL;
	assert_int_equal(vz_secrets_key_pem(&p1, k, 0, &e), 0);
	assert_int_equal(vz_secrets_key_pem(&p2, g_key, 0, &e), 0);
	assert_string_equal(p1, p2);
	assert_true(vz_startswith(p1, "-----BEGIN PUBLIC KEY-----\n"));
	free(p1);
	free(p2);
	vz_secrets_key_free(k);
	/* without create, a missing key is VZ_ENOTFOUND naming the file, and nothing is made */
	k = NULL;
	assert_int_equal(vz_secrets_key_get(&k, g_dir, "gerrit", "a/missing", 0, &e), VZ_ENOTFOUND);
	assert_null(k);
	assert_non_null(strstr(e.msg, "has no key yet"));
	char *mp = keypath("gerrit", "a/missing");
	assert_int_not_equal(access(mp, F_OK), 0);
	free(mp);
}

static void test_import_export(void **state)
{
	(void)state;
	vz_err e = { 0 };
	char *priv = NULL, *pub = NULL, *pub2 = NULL;
	assert_int_equal(vz_secrets_key_pem(&priv, g_key, 1, &e), 0);
	assert_true(vz_startswith(priv, "-----BEGIN RSA PRIVATE KEY-----\n"));
	/* exported into another state directory: the same key */
	char *other = vz_test_tmpdir("secrets-import");
	assert_int_equal(vz_secrets_key_import(other, "gerrit", "a/one", priv, strlen(priv), &e), 0);
	vz_secrets_key *k = NULL;
	assert_int_equal(vz_secrets_key_get(&k, other, "gerrit", "a/one", 0, &e), 0);
	assert_int_equal(vz_secrets_key_pem(&pub, k, 0, &e), 0);
	assert_int_equal(vz_secrets_key_pem(&pub2, g_key, 0, &e), 0);
	assert_string_equal(pub, pub2);
	vz_secrets_key_free(k);
	/* importing the same key again is fine; another key is refused and the first stays */
	assert_int_equal(vz_secrets_key_import(other, "gerrit", "a/one", priv, strlen(priv), &e), 0);
	char *op = NULL;
	assert_int_equal(vz_secrets_key_pem(&op, g_other, 1, &e), 0);
	vz_err e2 = { 0 };
	assert_int_equal(vz_secrets_key_import(other, "gerrit", "a/one", op, strlen(op), &e2), VZ_ECONFLICT);
	assert_non_null(strstr(e2.msg, "already has a different key"));
	k = NULL;
	char *pub3 = NULL;
	assert_int_equal(vz_secrets_key_get(&k, other, "gerrit", "a/one", 0, &e), 0);
	assert_int_equal(vz_secrets_key_pem(&pub3, k, 0, &e), 0);
	assert_string_equal(pub3, pub2);
	vz_secrets_key_free(k);
	/* a PKCS#8 private key (what `openssl genpkey` writes) imports too */
	vz_buf b = VZ_BUF_INIT(1u << 16);
	assert_int_equal(vz_test_sh(&b, "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null"), 0);
	assert_true(vz_startswith(b.ptr, "-----BEGIN PRIVATE KEY-----"));
	assert_int_equal(vz_secrets_key_import(other, "gerrit", "p8", b.ptr, b.len, &e), 0);
	vz_buf_free(&b);
	/* a public key, a small key, garbage: refused with what to do */
	vz_err e3 = { 0 };
	assert_int_equal(vz_secrets_key_import(other, "gerrit", "x", pub, strlen(pub), &e3), VZ_EINVAL);
	assert_non_null(strstr(e3.msg, "is a public key"));
	vz_buf small = VZ_BUF_INIT(1u << 16);
	assert_int_equal(vz_test_sh(&small, "openssl genrsa 1024 2>/dev/null"), 0);
	vz_err e4 = { 0 };
	assert_int_equal(vz_secrets_key_import(other, "gerrit", "x", small.ptr, small.len, &e4), VZ_EINVAL);
	assert_non_null(strstr(e4.msg, "1024 bits"));
	vz_buf_free(&small);
	vz_err e5 = { 0 };
	assert_int_equal(vz_secrets_key_import(other, "gerrit", "x", "hello", 5, &e5), VZ_EINVAL);
	assert_non_null(strstr(e5.msg, "not a PEM RSA key"));
	char *xp = vz_path_join(other, "keys/secrets/project/gerrit/x/0.pem");
	assert_int_not_equal(access(xp, F_OK), 0);
	free(xp);
	/* a public-only key cannot export a private part */
	vz_secrets_key *pk = NULL;
	char *none = NULL;
	assert_int_equal(vz_secrets_key_parse(&pk, pub, strlen(pub), "pub", &e), 0);
	assert_false(vz_secrets_key_has_private(pk));
	vz_err e6 = { 0 };
	assert_int_equal(vz_secrets_key_pem(&none, pk, 1, &e6), VZ_EINVAL);
	vz_secrets_key_free(pk);
	vz_secrets_wipe(priv, strlen(priv));
	vz_secrets_wipe(op, strlen(op));
	free(pub);
	free(pub2);
	free(pub3);
	vz_test_rm(other);
	free(other);
}

static char *decrypt_all(const vz_secrets_key *k, const json_t *chunks, size_t *len, vz_err *e)
{
	const char *v[64];
	size_t n = json_array_size(chunks);
	assert_true(n <= 64);
	for (size_t i = 0; i < n; i++)
		v[i] = json_string_value(json_array_get(chunks, i));
	char *out = NULL;
	if (vz_secrets_decrypt(&out, len, k, v, n, e))
		return NULL;
	return out;
}

static void test_roundtrip_chunks(void **state)
{
	(void)state;
	/* sizes around the 470-byte chunk boundary, and empty */
	const size_t sizes[] = { 0, 1, 469, 470, 471, 940, 941, 3000 };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		char *msg = malloc(n + 1);
		for (size_t i = 0; i < n; i++)
			msg[i] = (char)('a' + (i * 7 + s) % 26);
		msg[n] = 0;
		json_t *chunks = NULL;
		vz_err e = { 0 };
		assert_int_equal(vz_secrets_encrypt(&chunks, g_key, msg, n, &e), 0);
		size_t want = n == 0 ? 1 : (n + 469) / 470;
		assert_int_equal(json_array_size(chunks), want);
		/* each chunk is one 512-byte RSA block: 684 base64 characters */
		for (size_t i = 0; i < want; i++)
			assert_int_equal(strlen(json_string_value(json_array_get(chunks, i))), 684);
		size_t len = 0;
		char *back = decrypt_all(g_key, chunks, &len, &e);
		assert_non_null(back);
		assert_int_equal(len, n);
		assert_memory_equal(back, msg, n);
		vz_secrets_wipe(back, len);
		json_decref(chunks);
		free(msg);
	}
	/* multibyte text cut across a chunk boundary is joined before it is read as UTF-8 */
	char text[1000];
	size_t tl = 0;
	while (tl + 2 < 980)
		text[tl++] = (char)0xc3, text[tl++] = (char)0xa9; /* é */
	json_t *chunks = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_secrets_encrypt(&chunks, g_key, text, tl, &e), 0);
	size_t len = 0;
	char *back = decrypt_all(g_key, chunks, &len, &e);
	assert_non_null(back);
	assert_int_equal(len, tl);
	vz_secrets_wipe(back, len);
	json_decref(chunks);
}

static void test_decrypt_errors(void **state)
{
	(void)state;
	json_t *chunks = NULL;
	vz_err e = { 0 };
	char msg[600];
	memset(msg, 'x', sizeof(msg));
	assert_int_equal(vz_secrets_encrypt(&chunks, g_key, msg, sizeof(msg), &e), 0);
	assert_int_equal(json_array_size(chunks), 2);
	size_t len = 0;

	/* the wrong key: a 2048-bit key sees chunks of the wrong size */
	vz_err e1 = { 0 };
	assert_null(decrypt_all(g_other, chunks, &len, &e1));
	assert_int_equal(e1.code, VZ_EINVAL);
	assert_non_null(strstr(e1.msg, "chunk 1 of 2 holds 512 bytes, not the 256 of a 2048-bit key"));

	/* the wrong key of the right size: OAEP refuses it (made by openssl: generating in-process is
	 * slow under valgrind, and key_get's creation is covered above) */
	vz_secrets_key *k2 = NULL;
	vz_err e2 = { 0 };
	vz_buf kb = VZ_BUF_INIT(1u << 16);
	assert_int_equal(vz_test_sh(&kb, "openssl genrsa 4096 2>/dev/null"), 0);
	assert_int_equal(vz_secrets_key_parse(&k2, kb.ptr, kb.len, "genrsa", &e2), 0);
	vz_buf_free(&kb);
	assert_int_equal(vz_secrets_key_bits(k2), 4096);
	assert_null(decrypt_all(k2, chunks, &len, &e2));
	assert_non_null(strstr(e2.msg, "chunk 1 of 2 does not decrypt with the project's key"));
	vz_secrets_key_free(k2);

	/* one flipped character in the second chunk */
	char *bad = vz_xstrdup(json_string_value(json_array_get(chunks, 1)));
	bad[100] = bad[100] == 'A' ? 'B' : 'A';
	json_t *c2 = json_pack("[O,s]", json_array_get(chunks, 0), bad);
	vz_err e3 = { 0 };
	assert_null(decrypt_all(g_key, c2, &len, &e3));
	assert_non_null(strstr(e3.msg, "chunk 2 of 2 does not decrypt"));
	json_decref(c2);

	/* not base64; cut short */
	bad[5] = '*';
	c2 = json_pack("[O,s]", json_array_get(chunks, 0), bad);
	vz_err e4 = { 0 };
	assert_null(decrypt_all(g_key, c2, &len, &e4));
	assert_non_null(strstr(e4.msg, "chunk 2 of 2 is not base64"));
	json_decref(c2);
	c2 = json_pack("[s#]", json_string_value(json_array_get(chunks, 0)), (size_t)400);
	vz_err e5 = { 0 };
	assert_null(decrypt_all(g_key, c2, &len, &e5));
	assert_non_null(strstr(e5.msg, "chunk 1 of 1 holds 300 bytes"));
	json_decref(c2);
	free(bad);

	/* whitespace inside a chunk is ignored, as Python's b64decode ignores it (YAML folding) */
	const char *s0 = json_string_value(json_array_get(chunks, 0));
	char spaced[800];
	size_t o = 0;
	for (size_t i = 0; s0[i]; i++) {
		if (i && i % 69 == 0)
			spaced[o++] = ' ';
		spaced[o++] = s0[i];
	}
	spaced[o] = 0;
	c2 = json_pack("[s,O]", spaced, json_array_get(chunks, 1));
	char *back = decrypt_all(g_key, c2, &len, &e);
	assert_non_null(back);
	assert_int_equal(len, sizeof(msg));
	vz_secrets_wipe(back, len);
	json_decref(c2);

	/* a public key cannot decrypt; no chunks is an error */
	char *pub = NULL;
	vz_secrets_key *pk = NULL;
	assert_int_equal(vz_secrets_key_pem(&pub, g_key, 0, &e), 0);
	assert_int_equal(vz_secrets_key_parse(&pk, pub, strlen(pub), "pub", &e), 0);
	vz_err e6 = { 0 };
	assert_null(decrypt_all(pk, chunks, &len, &e6));
	assert_non_null(strstr(e6.msg, "private key"));
	vz_err e7 = { 0 };
	char *out = NULL;
	assert_int_equal(vz_secrets_decrypt(&out, &len, g_key, NULL, 0, &e7), VZ_EINVAL);
	vz_secrets_key_free(pk);
	free(pub);
	json_decref(chunks);

	/* plaintext that is not UTF-8 is refused, as Zuul's decode('utf8') refuses it */
	json_t *c3 = NULL;
	assert_int_equal(vz_secrets_encrypt(&c3, g_key, "\xff\xfe", 2, &e), 0);
	vz_err e8 = { 0 };
	assert_null(decrypt_all(g_key, c3, &len, &e8));
	assert_non_null(strstr(e8.msg, "not UTF-8"));
	json_decref(c3);
}

/* The printed YAML has encrypt_secret.py's shape, lines of at most 79 columns, and parses back
 * (vz_yaml) into a tagged list whose items decrypt to the input. */
static void test_format_yaml(void **state)
{
	(void)state;
	char msg[1000];
	memset(msg, 'q', sizeof(msg));
	json_t *chunks = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_secrets_encrypt(&chunks, g_key, msg, sizeof(msg), &e), 0);
	assert_int_equal(json_array_size(chunks), 3);
	char *y = NULL;
	assert_int_equal(vz_secrets_format_yaml(&y, "site_creds", "password", chunks, &e), 0);
	assert_true(vz_startswith(y, "- secret:\n    name: site_creds\n    data:\n      password: !encrypted/pkcs1-oaep\n"
				     "        - "));
	size_t items = 0;
	for (char *line = y; *line;) {
		char *nl = strchr(line, '\n');
		assert_non_null(nl);
		assert_true(nl - line <= 79);
		if (vz_startswith(line, "        - "))
			items++;
		line = nl + 1;
	}
	assert_int_equal(items, 3);
	vz_ynode *root = NULL;
	assert_int_equal(vz_yaml_parse(&root, y, strlen(y), "enc.yaml", &e), 0);
	const vz_ynode *data = vz_ymap_get(vz_ymap_get(root->items[0], "secret"), "data");
	const vz_ynode *pw = vz_ymap_get(data, "password");
	assert_non_null(pw);
	assert_string_equal(pw->tag, "!encrypted/pkcs1-oaep");
	assert_int_equal(pw->kind, VZ_Y_SEQ);
	assert_int_equal(pw->n, 3);
	const char *v[3] = { pw->items[0]->str, pw->items[1]->str, pw->items[2]->str };
	char *back = NULL;
	size_t len = 0;
	assert_int_equal(vz_secrets_decrypt(&back, &len, g_key, v, 3, &e), 0);
	assert_int_equal(len, sizeof(msg));
	assert_memory_equal(back, msg, len);
	vz_secrets_wipe(back, len);
	vz_ynode_free(root);
	free(y);
	/* without a name and field: Zuul's placeholders */
	assert_int_equal(vz_secrets_format_yaml(&y, NULL, NULL, chunks, &e), 0);
	assert_non_null(strstr(y, "name: <name>\n"));
	assert_non_null(strstr(y, "<fieldname>: !encrypted/pkcs1-oaep\n"));
	free(y);
	json_decref(chunks);
}

static char *redact(const vz_redactor *r, const char *text, long *count)
{
	vz_buf out = VZ_BUF_INIT(1u << 20);
	*count = vz_redact(&out, r, text, strlen(text));
	return out.ptr ? vz_buf_detach(&out) : vz_xstrdup("");
}

static void test_redact(void **state)
{
	(void)state;
	json_t *vals = json_pack("{s:s,s:{s:s},s:s,s:[s,s],s:i,s:s}", "password", "hunter2-pw", "nested", "token",
				 "tok_ABCDEF", "key", "-----BEGIN KEY-----\nAAAAline1\r\n  BBBBline2  \n-----END KEY-----\n",
				 "list", "abc", "listed-value", "n", 12345, "overlap", "hunter2-pw-extended");
	vz_redactor *r = vz_redactor_new(vals);
	assert_non_null(r);
	/* hunter2-pw, tok_ABCDEF, 4 key lines, listed-value, hunter2-pw-extended; not abc (too short) */
	assert_int_equal(vz_redactor_count(r), 8);
	long n;
	char *o = redact(r, "login with hunter2-pw now\n", &n);
	assert_string_equal(o, "login with " VZ_REDACT_MARK " now\n");
	assert_int_equal(n, 1);
	free(o);
	/* the longest value wins where two start at the same place */
	o = redact(r, "x=hunter2-pw-extended;y=hunter2-pw", &n);
	assert_string_equal(o, "x=" VZ_REDACT_MARK ";y=" VZ_REDACT_MARK);
	assert_int_equal(n, 2);
	free(o);
	/* a multi-line value is hidden line by line, wherever its lines turn up */
	o = redact(r, "cat key:\n-----BEGIN KEY-----\nAAAAline1\nBBBBline2\n-----END KEY-----\n"
		      "grep: AAAAline1 found\n", &n);
	assert_string_equal(o, "cat key:\n" VZ_REDACT_MARK "\n" VZ_REDACT_MARK "\n" VZ_REDACT_MARK "\n" VZ_REDACT_MARK
			       "\ngrep: " VZ_REDACT_MARK " found\n");
	assert_int_equal(n, 5);
	free(o);
	/* nested values; short values and numbers are left; nothing to hide copies */
	o = redact(r, "token tok_ABCDEF abc 12345 listed-value", &n);
	assert_string_equal(o, "token " VZ_REDACT_MARK " abc 12345 " VZ_REDACT_MARK);
	free(o);
	o = redact(r, "nothing here", &n);
	assert_string_equal(o, "nothing here");
	assert_int_equal(n, 0);
	free(o);
	o = redact(NULL, "hunter2-pw", &n);
	assert_string_equal(o, "hunter2-pw");
	free(o);
	/* adjacent and repeated */
	o = redact(r, "hunter2-pwhunter2-pwtok_ABCDEF", &n);
	assert_string_equal(o, VZ_REDACT_MARK VZ_REDACT_MARK VZ_REDACT_MARK);
	assert_int_equal(n, 3);
	free(o);
	/* a capped output reports the failure */
	vz_buf small = VZ_BUF_INIT(4);
	assert_true(vz_redact(&small, r, "a hunter2-pw b", 14) < 0);
	vz_buf_free(&small);
	/* values added one by one; duplicates kept once */
	assert_int_equal(vz_redactor_add(r, "tok_ABCDEF", 10), 0);
	assert_int_equal(vz_redactor_count(r), 8);
	assert_int_equal(vz_redactor_add(r, "new-one\nab", 10), 0);
	assert_int_equal(vz_redactor_count(r), 9);
	vz_redactor_free(r);
	json_decref(vals);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_path_and_modes), cmocka_unit_test(test_key_reused_not_created),
		cmocka_unit_test(test_import_export),
		cmocka_unit_test(test_roundtrip_chunks),   cmocka_unit_test(test_decrypt_errors),
		cmocka_unit_test(test_format_yaml),	   cmocka_unit_test(test_redact),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
