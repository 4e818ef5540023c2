/* vz_zconf with secrets: !encrypted/pkcs1-oaep values decrypted with the defining project's key
 * (list and block-scalar forms, nested values, multi-chunk), given only to the playbooks of the job
 * that binds them (and its parents' with pass-to-parent, Zuul's job.secrets rules), never in the
 * frozen graph or any error; structure checked without a key; a wrong key, a corrupt chunk, bad
 * base64 or an unknown tag reported at FILE:LINE:COL naming the secret; an encrypted value outside
 * a secret refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vz_buf.h"
#include "vz_secrets.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_zconf.h"

static char *g_state;
static vz_secrets_key *g_cfg_key, *g_app_key; /* keys of example.org/config and example.org/app */
static char g_long[601];                      /* a 600-byte password: two chunks */

#define CFG "example.org/config"
#define APP "example.org/app"

static int setup(void **state)
{
	(void)state;
	g_state = vz_test_tmpdir("zconf-secrets");
	vz_err e = { 0 };
	/* keys made by openssl and imported (in-process generation is slow under valgrind; it is
	 * tested in test_secrets) */
	const char *projects[2] = { CFG, APP };
	vz_secrets_key **keys[2] = { &g_cfg_key, &g_app_key };
	for (int i = 0; i < 2; i++) {
		vz_buf pem = VZ_BUF_INIT(1u << 16);
		if (vz_test_sh(&pem, "openssl genrsa 4096 2>/dev/null") != 0 ||
		    vz_secrets_key_import(g_state, "gerrit", projects[i], pem.ptr, pem.len, &e) ||
		    vz_secrets_key_get(keys[i], g_state, "gerrit", projects[i], 0, &e)) {
			fprintf(stderr, "%s\n", vz_err_msg(&e));
			vz_buf_free(&pem);
			return -1;
		}
		vz_buf_free(&pem);
	}
	for (size_t i = 0; i < 600; i++)
		g_long[i] = (char)('A' + i % 23);
	g_long[600] = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vz_secrets_key_free(g_cfg_key);
	vz_secrets_key_free(g_app_key);
	vz_test_rm(g_state);
	free(g_state);
	return 0;
}

/* Appends `value` encrypted with k as a YAML list of chunks at indent. */
static void put_list(vz_buf *b, const vz_secrets_key *k, const char *value, int indent)
{
	json_t *chunks = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_secrets_encrypt(&chunks, k, value, strlen(value), &e), 0);
	vz_buf_puts(b, " !encrypted/pkcs1-oaep\n");
	size_t i;
	json_t *c;
	json_array_foreach(chunks, i, c) vz_buf_printf(b, "%*s- %s\n", indent, "", json_string_value(c));
	json_decref(chunks);
}

/* The same as a block scalar, wrapped at 60 columns (a single chunk). */
static void put_block(vz_buf *b, const vz_secrets_key *k, const char *value, int indent)
{
	json_t *chunks = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_secrets_encrypt(&chunks, k, value, strlen(value), &e), 0);
	assert_int_equal(json_array_size(chunks), 1);
	const char *s = json_string_value(json_array_get(chunks, 0));
	vz_buf_puts(b, " !encrypted/pkcs1-oaep |\n");
	for (size_t o = 0; o < strlen(s); o += 60)
		vz_buf_printf(b, "%*s%.60s\n", indent, "", s + o);
	json_decref(chunks);
}

/* The config project: a secret with a two-chunk password, one with a block scalar and a nested
 * encrypted list item, and a child job binding both (one passed to its parents). */
static char *config_yaml(const vz_secrets_key *k)
{
	vz_buf b = VZ_BUF_INIT(1u << 20);
	vz_buf_puts(&b, "- pipeline: {name: check, manager: independent}\n"
			"- secret:\n    name: creds\n    data:\n      user: robot\n      password:");
	put_list(&b, k, g_long, 8);
	vz_buf_puts(&b, "- secret:\n    name: site\n    data:\n      key:");
	put_block(&b, k, "-----BEGIN KEY-----\nline-one-of-key\n-----END KEY-----\n", 8);
	vz_buf_puts(&b, "      nested:\n        list:\n          - plain-item\n          -");
	put_list(&b, k, "nested-secret", 12);
	vz_buf_puts(&b, "- job: {name: base, parent: null, pre-run: base-pre.yaml, post-run: base-post.yaml}\n"
			"- job: {name: parent, pre-run: parent-pre.yaml, run: parent.yaml}\n"
			"- job:\n    name: child\n    parent: parent\n    run: child.yaml\n    post-run: child-post.yaml\n"
			"    secrets:\n      - creds\n      - {name: site_key, secret: site, pass-to-parent: true}\n"
			"- job: {name: other, parent: parent, run: other.yaml}\n"
			"- project: {name: " APP ", check: {jobs: [child, other]}}\n");
	assert_false(b.failed);
	return vz_buf_detach(&b);
}

typedef struct layout {
	json_t *files[2];
	vz_zconf *z;
	int rc;
	vz_err e;
} layout;

static void load(layout *l, const char *cfg_text, const char *app_text, int with_keys)
{
	memset(l, 0, sizeof(*l));
	l->files[0] = json_pack("{s:s}", "zuul.yaml", cfg_text);
	l->files[1] = app_text ? json_pack("{s:s}", ".zuul.yaml", app_text) : json_object();
	vz_zconf_source src[2] = {
		{ CFG, "master", 1, l->files[0], "config/", 0, "gerrit" },
		{ APP, "master", 0, l->files[1], "app/", 0, "gerrit" },
	};
	vz_secrets_store store = { g_state, 0 };
	vz_zconf_options o = { vz_secrets_key_lookup, &store };
	l->rc = vz_zconf_load_opts(&l->z, src, 2, with_keys ? &o : NULL, &l->e);
}

static void unload(layout *l)
{
	vz_zconf_free(l->z);
	json_decref(l->files[0]);
	json_decref(l->files[1]);
}

static const json_t *find_job(const json_t *g, const char *name)
{
	size_t i;
	json_t *j;
	json_array_foreach(json_object_get(g, "jobs"), i, j) if (!strcmp(json_string_value(json_object_get(j, "name")), name))
		return j;
	fail_msg("job %s not in the graph", name);
	return NULL;
}

static json_t *freeze_app(const vz_zconf *z)
{
	json_t *g = NULL;
	vz_err e = { 0 };
	vz_zconf_item it = { APP, "master", "check", NULL, 0 };
	assert_int_equal(vz_zconf_freeze(&g, z, &it, &e), 0);
	return g;
}

/* Names of the secrets each playbook of phase gets, "a,b|c|" style. */
static char *names(const json_t *sec, const char *phase)
{
	vz_buf b = VZ_BUF_INIT(4096);
	size_t i;
	json_t *pb;
	json_array_foreach(json_object_get(sec, phase), i, pb) {
		if (i)
			vz_buf_putc(&b, '|');
		const char *k;
		json_t *v;
		int first = 1;
		json_object_foreach(pb, k, v) {
			vz_buf_printf(&b, "%s%s", first ? "" : ",", k);
			first = 0;
		}
	}
	return b.ptr ? vz_buf_detach(&b) : vz_xstrdup("");
}

static void test_decrypted_for_defining_job_only(void **state)
{
	(void)state;
	char *cfg = config_yaml(g_cfg_key);
	layout l;
	load(&l, cfg, NULL, 1);
	assert_int_equal(l.rc, 0);
	json_t *g = freeze_app(l.z);
	json_t *sec = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_zconf_job_secrets(&sec, l.z, find_job(g, "child"), &e), 0);

	/* child: pre-run base-pre, parent-pre; run child; post-run child-post, base-post. creds only
	 * for child's own playbooks; site_key (pass-to-parent) for every playbook */
	char *n = names(sec, "pre-run");
	assert_string_equal(n, "site_key|site_key");
	free(n);
	n = names(sec, "run");
	assert_string_equal(n, "creds,site_key");
	free(n);
	n = names(sec, "post-run");
	assert_string_equal(n, "creds,site_key|site_key");
	free(n);
	n = names(sec, "cleanup-run");
	assert_string_equal(n, "");
	free(n);

	/* the values: plain ones as they are, encrypted ones decrypted (two chunks joined; the block
	 * scalar's line breaks skipped; a nested list item) */
	const json_t *run0 = json_array_get(json_object_get(sec, "run"), 0);
	json_t *want = json_pack("{s:{s:s,s:s},s:{s:s,s:{s:[s,s]}}}", "creds", "user", "robot", "password", g_long,
				 "site_key", "key", "-----BEGIN KEY-----\nline-one-of-key\n-----END KEY-----\n", "nested",
				 "list", "plain-item", "nested-secret");
	assert_true(json_equal(run0, want));
	json_decref(want);
	json_decref(sec);

	/* a sibling job binding no secret gets none */
	assert_int_equal(vz_zconf_job_secrets(&sec, l.z, find_job(g, "other"), &e), 0);
	n = names(sec, "pre-run");
	assert_string_equal(n, "|");
	free(n);
	n = names(sec, "run");
	assert_string_equal(n, "");
	free(n);
	json_decref(sec);

	/* the frozen graph (what `vinz config show --json` prints) names secrets, never values */
	char *dump = json_dumps(g, JSON_SORT_KEYS);
	assert_null(strstr(dump, "robot"));
	assert_null(strstr(dump, "line-one-of-key"));
	assert_null(strstr(dump, "nested-secret"));
	assert_null(strstr(dump, "ABCDEFGHIJ"));
	assert_non_null(strstr(dump, "\"secret-refs\": {\"creds\": \"creds\", \"site_key\": \"site\"}"));
	free(dump);
	json_decref(g);

	/* not a frozen job */
	json_t *bogus = json_pack("{s:s}", "name", "x");
	vz_err e2 = { 0 };
	assert_int_equal(vz_zconf_job_secrets(&sec, l.z, bogus, &e2), VZ_EINVAL);
	json_decref(bogus);
	unload(&l);
	free(cfg);
}

/* Without a key source the structure is checked and the layout loads; asking for the values then
 * says why there are none. */
static void test_without_key(void **state)
{
	(void)state;
	char *cfg = config_yaml(g_cfg_key);
	layout l;
	load(&l, cfg, NULL, 0);
	assert_int_equal(l.rc, 0);
	json_t *g = freeze_app(l.z);
	json_t *sec = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_zconf_job_secrets(&sec, l.z, find_job(g, "child"), &e), VZ_ENOTFOUND);
	assert_non_null(strstr(e.msg, "was not decrypted: load the layout with the project's key"));
	assert_null(sec);
	json_decref(g);
	unload(&l);

	/* a key source that has no key for the project (never made): the same, not an error */
	char *empty = vz_test_tmpdir("zconf-nokey");
	json_t *files = json_pack("{s:s}", "zuul.yaml", cfg);
	vz_zconf_source src = { CFG, "master", 1, files, NULL, 0, "gerrit" };
	vz_secrets_store store = { empty, 0 };
	vz_zconf_options o = { vz_secrets_key_lookup, &store };
	vz_zconf *z = NULL;
	assert_int_equal(vz_zconf_load_opts(&z, &src, 1, &o, &e), 0);
	vz_zconf_free(z);
	json_decref(files);
	vz_test_rm(empty);
	free(empty);
	free(cfg);
}

/* Errors, each at the position of the value, naming the secret, never showing a value. */
static void test_errors(void **state)
{
	(void)state;
	layout l;
	/* encrypted with another project's key: does not decrypt */
	vz_buf b = VZ_BUF_INIT(1u << 16);
	vz_buf_puts(&b, "- secret:\n    name: creds\n    data:\n      password:");
	put_list(&b, g_app_key, "for-the-app", 8);
	load(&l, vz_buf_cstr(&b), NULL, 1);
	assert_int_equal(l.rc, VZ_EINVAL);
	assert_int_equal(vz_zconf_nerrors(l.z), 1);
	const char *m = vz_zconf_error(l.z, 0);
	assert_true(vz_startswith(m, "config/zuul.yaml:4:17: secret \"creds\": data.password does not decrypt with the "
				     "key of project example.org/config: chunk 1 of 1 does not decrypt"));
	assert_null(strstr(m, "for-the-app"));
	unload(&l);

	/* a corrupt second chunk */
	vz_buf_reset(&b);
	vz_buf_puts(&b, "- secret:\n    name: big\n    data:\n      v:");
	put_list(&b, g_cfg_key, g_long, 8);
	char *text = vz_xstrdup(vz_buf_cstr(&b));
	char *second = strstr(strstr(text, "        - ") + 10, "        - ") + 10;
	second[50] = second[50] == 'Q' ? 'R' : 'Q';
	load(&l, text, NULL, 1);
	assert_int_equal(l.rc, VZ_EINVAL);
	assert_string_equal(vz_zconf_error(l.z, 0), "config/zuul.yaml:4:10: secret \"big\": data.v does not decrypt with "
				  "the key of project example.org/config: chunk 2 of 2 does not decrypt with the "
				  "project's key (encrypted for another project's key, or corrupted) (encrypt the "
				  "value again with this project's public key: vinz encrypt) (project "
				  "example.org/config, branch master)");
	unload(&l);
	free(text);

	/* structure errors are found with or without a key */
	static const struct {
		const char *yaml, *expect;
	} bad[] = {
		{ "- secret:\n    name: s\n    data:\n      v: !encrypted/pkcs1-oaep not*base64\n",
		  "config/zuul.yaml:4:10: secret \"s\": data.v: chunk 1 of 1 is not base64" },
		{ "- secret:\n    name: s\n    data:\n      v: !encrypted/pkcs1-oaep\n        - QUJD\n        - [x]\n",
		  "config/zuul.yaml:6:11: secret \"s\": data.v: chunk 2 of an encrypted value must be base64 text, not a list" },
		{ "- secret:\n    name: s\n    data:\n      v: !encrypted/pkcs1-oaep {a: b}\n",
		  "config/zuul.yaml:4:10: secret \"s\": data.v: an !encrypted/pkcs1-oaep value must be base64 text or a "
		  "list of 1 to 4096 base64 chunks, not a mapping" },
		{ "- secret:\n    name: s\n    data:\n      v: !encrypted/pkcs1-oaep []\n",
		  "not an empty list" },
		{ "- job:\n    name: j\n    vars:\n      token: !encrypted/pkcs1-oaep QUJD\n",
		  "config/zuul.yaml:4:14: !encrypted/pkcs1-oaep values are only read in a secret's data, not in a job: "
		  "define a secret and list it in the job's secrets" },
		{ "- secret:\n    name: s\n    data:\n      deep: {list: [1, !vault abc]}\n",
		  "config/zuul.yaml:4:24: secret \"s\": data.deep.list[1]: unknown tag !vault" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (int keys = 0; keys < 2; keys++) {
			load(&l, bad[i].yaml, NULL, keys);
			assert_int_equal(l.rc, VZ_EINVAL);
			if (!strstr(vz_zconf_error(l.z, 0), bad[i].expect))
				fail_msg("case %zu: %s\n  does not contain: %s", i, vz_zconf_error(l.z, 0), bad[i].expect);
			unload(&l);
		}
	vz_buf_free(&b);
}

/* An untrusted project's secret decrypts with that project's key (not the config project's). */
static void test_untrusted_project_key(void **state)
{
	(void)state;
	vz_buf b = VZ_BUF_INIT(1u << 16);
	vz_buf_puts(&b, "- secret:\n    name: app-token\n    data:\n      token:");
	put_list(&b, g_app_key, "app-token-value", 8);
	vz_buf_puts(&b, "- job:\n    name: publish\n    run: publish.yaml\n    secrets: [{name: tok, secret: app-token}]\n"
			"- project: {gate: {jobs: [publish]}}\n");
	layout l;
	load(&l, "- pipeline: {name: gate, manager: dependent, post-review: true}\n"
		 "- job: {name: base, parent: null}\n", vz_buf_cstr(&b), 1);
	assert_int_equal(l.rc, 0);
	json_t *g = NULL;
	vz_zconf_item it = { APP, "master", "gate", NULL, 0 };
	assert_int_equal(vz_zconf_freeze(&g, l.z, &it, &l.e), 0);
	json_t *sec = NULL;
	assert_int_equal(vz_zconf_job_secrets(&sec, l.z, find_job(g, "publish"), &l.e), 0);
	json_t *want = json_pack("{s:{s:s}}", "tok", "token", "app-token-value");
	assert_true(json_equal(json_array_get(json_object_get(sec, "run"), 0), want));
	json_decref(want);
	json_decref(sec);
	json_decref(g);
	unload(&l);
	vz_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decrypted_for_defining_job_only),
		cmocka_unit_test(test_without_key),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_untrusted_project_key),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
