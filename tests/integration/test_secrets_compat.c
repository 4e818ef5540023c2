/* Secrets against independent implementations of Zuul's scheme: values encrypted with the openssl
 * command line (pkeyutl, OAEP SHA-1, chunks of 470 bytes as encrypt_secret.py cuts them) and with
 * Zuul's algorithm written in Python's cryptography decrypt through vinz's loader; what
 * `vinz encrypt` prints decrypts with `openssl pkeyutl -decrypt` and with PyYAML + cryptography
 * reading the YAML as Zuul's loader reads it. Plus a wrong key and a corrupt chunk. Keys come from
 * `vinz keys show|export`. */
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
#include "vz_yaml.h"
#include "vz_zconf.h"

#define PROJECT "org/app"
#define OAEP "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1"

static char *g_dir, *g_state;
static char g_msg[1201]; /* three chunks: 470 + 470 + 261 bytes */

/* Zuul's zuul/lib/encryption.py and tools/encrypt_secret.py, reduced to what matters (written
 * for this test): OAEP with SHA-1 and MGF1-SHA-1, chunks of key bytes - 42, base64. */
static const char PY[] =
	"import base64, sys, yaml\n"
	"from cryptography.hazmat.primitives import serialization, hashes\n"
	"from cryptography.hazmat.primitives.asymmetric import padding\n"
	"pad = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)\n"
	"mode, keyfile, infile = sys.argv[1:4]\n"
	"if mode == 'encrypt':\n"
	"    pub = serialization.load_pem_public_key(open(keyfile, 'rb').read())\n"
	"    data = open(infile, 'rb').read()\n"
	"    size = pub.key_size // 8 - 42\n"
	"    for i in range(0, len(data), size):\n"
	"        print(base64.b64encode(pub.encrypt(data[i:i + size], pad)).decode())\n"
	"else:\n"
	"    # read the YAML as Zuul's loader does: the tag's node value is a list of scalar nodes\n"
	"    class Enc:\n"
	"        def __init__(self, node):\n"
	"            self.chunks = [base64.b64decode(x.value) for x in node.value]\n"
	"    yaml.SafeLoader.add_constructor('!encrypted/pkcs1-oaep', lambda l, n: Enc(n))\n"
	"    doc = yaml.safe_load(open(infile))\n"
	"    enc = doc[0]['secret']['data']['field']\n"
	"    priv = serialization.load_pem_private_key(open(keyfile, 'rb').read(), password=None)\n"
	"    sys.stdout.write(''.join(priv.decrypt(c, pad).decode('utf8') for c in enc.chunks))\n";

static int setup(void **state)
{
	(void)state;
	g_dir = vz_test_tmpdir("secrets-compat");
	g_state = vz_path_join(g_dir, "state");
	for (size_t i = 0; i < 1200; i++)
		g_msg[i] = (char)(i % 97 == 96 ? '\n' : ' ' + (i * 31) % 94);
	g_msg[1200] = 0;
	vz_test_write(g_dir, "msg", g_msg);
	vz_test_write(g_dir, "zuul_oracle.py", PY);
	/* the project's key, made by the CLI; its public half and an export of the private one */
	if (vz_test_sh(NULL, "cd %s && %s keys show --project " PROJECT " -C gh -s state > pub.pem && "
			     "%s keys export --project " PROJECT " -C gh -s state priv.pem && "
			     "openssl genrsa -out other.pem 4096 && openssl pkey -in other.pem -pubout -out other.pub",
		       g_dir, VZ_BIN, VZ_BIN) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vz_test_rm(g_dir);
	free(g_dir);
	free(g_state);
	return 0;
}

/* A config project defining secret "s" whose value is the chunks (one base64 per line of lines),
 * and a job using it; loaded with the state directory's keys. Returns the load code; *value gets
 * the decrypted value (or NULL), *err the first error (or NULL). */
static int load_chunks(const char *lines, char **value, char **err)
{
	vz_buf y = VZ_BUF_INIT(1u << 20);
	vz_buf_puts(&y, "- pipeline: {name: check, manager: independent}\n"
			"- secret:\n    name: s\n    data:\n      field: !encrypted/pkcs1-oaep\n");
	const char *p = lines;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n)
			vz_buf_printf(&y, "        - %.*s\n", (int)n, p);
		p += n + (nl ? 1 : 0);
	}
	vz_buf_puts(&y, "- job: {name: base, parent: null, run: run.yaml, secrets: [s]}\n"
			"- project: {name: " PROJECT ", check: {jobs: [base]}}\n");
	json_t *files = json_pack("{s:s}", "zuul.yaml", vz_buf_cstr(&y));
	vz_zconf_source src = { PROJECT, "master", 1, files, NULL, 0, "gh" };
	vz_secrets_store store = { g_state, 0 };
	vz_zconf_options o = { vz_secrets_key_lookup, &store };
	vz_zconf *z = NULL;
	vz_err e = { 0 };
	int rc = vz_zconf_load_opts(&z, &src, 1, &o, &e);
	*value = *err = NULL;
	if (rc == 0) {
		json_t *g = NULL, *sec = NULL;
		vz_zconf_item it = { PROJECT, "master", "check", NULL, 0 };
		assert_int_equal(vz_zconf_freeze(&g, z, &it, &e), 0);
		assert_int_equal(vz_zconf_job_secrets(&sec, z, json_array_get(json_object_get(g, "jobs"), 0), &e), 0);
		json_t *v = json_object_get(json_object_get(json_array_get(json_object_get(sec, "run"), 0), "s"), "field");
		*value = vz_xstrdup(json_string_value(v));
		json_decref(sec);
		json_decref(g);
	} else if (z && vz_zconf_error(z, 0)) {
		*err = vz_xstrdup(vz_zconf_error(z, 0));
	}
	vz_zconf_free(z);
	json_decref(files);
	vz_buf_free(&y);
	return rc;
}

/* openssl pkeyutl encrypts, chunk by chunk as encrypt_secret.py cuts the text; vinz decrypts. */
static void test_openssl_encrypts_vinz_decrypts(void **state)
{
	(void)state;
	char *lines = vz_test_out("cd %s && rm -f part.* && split -b 470 -d msg part. && ls part.* | wc -l && "
				  "for f in part.*; do openssl pkeyutl -encrypt -pubin -inkey pub.pem " OAEP
				  " -in $f | base64 -w0; echo; done",
				  g_dir);
	/* first line: the number of parts */
	assert_true(vz_startswith(lines, "3\n"));
	char *value = NULL, *err = NULL;
	assert_int_equal(load_chunks(strchr(lines, '\n') + 1, &value, &err), 0);
	assert_non_null(value);
	assert_string_equal(value, g_msg);
	free(value);
	free(lines);
}

/* The same with another key's public half: an error at the value naming the secret. */
static void test_wrong_key_and_corrupt_chunk(void **state)
{
	(void)state;
	char *lines = vz_test_out("cd %s && printf 'for another project' | openssl pkeyutl -encrypt -pubin "
				  "-inkey other.pub " OAEP " | base64 -w0",
				  g_dir);
	char *value = NULL, *err = NULL;
	assert_int_equal(load_chunks(lines, &value, &err), VZ_EINVAL);
	assert_null(value);
	assert_non_null(err);
	assert_true(vz_startswith(err, "zuul.yaml:5:14: secret \"s\": data.field does not decrypt with the key of "
				       "project org/app: chunk 1 of 1 does not decrypt"));
	free(err);
	free(lines);

	/* a good three-chunk value with one character of the last chunk changed */
	lines = vz_test_out("cd %s && for f in part.*; do openssl pkeyutl -encrypt -pubin -inkey pub.pem " OAEP
			    " -in $f | base64 -w0; echo; done",
			    g_dir);
	char *last = strrchr(lines, '\n');
	assert_non_null(last);
	last += 300; /* inside the third line */
	*last = *last == 'x' ? 'y' : 'x';
	assert_int_equal(load_chunks(lines, &value, &err), VZ_EINVAL);
	assert_non_null(strstr(err, "chunk 3 of 3 does not decrypt"));
	free(err);
	free(lines);
}

/* vinz encrypt (the CLI) prints YAML whose chunks openssl pkeyutl -decrypt reads back. */
static void test_vinz_encrypts_openssl_decrypts(void **state)
{
	(void)state;
	char *cmd_out = vz_test_out("cd %s && %s encrypt --project " PROJECT " -C gh -s state --infile msg --name s "
				    "--field field > enc.yaml && cat enc.yaml",
				    g_dir, VZ_BIN);
	vz_ynode *root = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_yaml_parse(&root, cmd_out, strlen(cmd_out), "enc.yaml", &e), 0);
	const vz_ynode *v = vz_ymap_get(vz_ymap_get(vz_ymap_get(root->items[0], "secret"), "data"), "field");
	assert_non_null(v);
	assert_string_equal(v->tag, "!encrypted/pkcs1-oaep");
	assert_int_equal(v->n, 3);
	vz_test_sh(NULL, "rm -f %s/back", g_dir);
	for (size_t i = 0; i < v->n; i++) {
		/* YAML folded the wrapped lines with spaces; base64 -d -i skips them as b64decode does */
		vz_test_write(g_dir, "chunk", v->items[i]->str);
		assert_int_equal(vz_test_sh(NULL, "cd %s && tr -d ' ' < chunk | base64 -d | openssl pkeyutl -decrypt "
						  "-inkey priv.pem " OAEP " >> back",
					    g_dir),
				 0);
	}
	vz_buf back = VZ_BUF_INIT(1u << 20);
	char *path = vz_path_join(g_dir, "back");
	assert_int_equal(vz_read_file(path, back.max, &back, &e), 0);
	assert_int_equal(back.len, 1200);
	assert_memory_equal(back.ptr, g_msg, 1200);
	vz_buf_free(&back);
	free(path);
	vz_ynode_free(root);
	free(cmd_out);

	/* --key with the public key file gives the same shape without a state directory */
	char *k = vz_test_out("cd %s && printf short | %s encrypt --key pub.pem | grep -c '^        - '", g_dir, VZ_BIN);
	assert_string_equal(k, "1");
	free(k);
}

/* Zuul's algorithm in Python (cryptography, PyYAML) as a second oracle, both ways. */
static void test_python_oracle(void **state)
{
	(void)state;
	if (vz_test_sh(NULL, "python3 -c 'import cryptography, yaml'") != 0) {
		printf("skipped: python3 with cryptography and yaml is not installed\n");
		return;
	}
	char *lines = vz_test_out("cd %s && python3 zuul_oracle.py encrypt pub.pem msg", g_dir);
	char *value = NULL, *err = NULL;
	assert_int_equal(load_chunks(lines, &value, &err), 0);
	assert_string_equal(value, g_msg);
	free(value);
	free(lines);
	/* vinz's YAML read by PyYAML the way Zuul's loader reads it, decrypted by Python */
	char *back = vz_test_out("cd %s && %s encrypt --project " PROJECT " -C gh -s state --infile msg --name s "
				 "--field field > enc2.yaml && python3 zuul_oracle.py decrypt priv.pem enc2.yaml && echo END",
				 g_dir, VZ_BIN);
	size_t bl = strlen(back);
	assert_true(bl >= 3 && strcmp(back + bl - 3, "END") == 0);
	back[bl - 3] = 0;
	assert_string_equal(back, g_msg);
	free(back);
}

/* vinz keys: export/import between state directories, never overwriting, and usage errors. */
static void test_keys_cli(void **state)
{
	(void)state;
	vz_buf out = VZ_BUF_INIT(1u << 20);
	/* the exported key imported elsewhere decrypts what was encrypted for the first */
	char *pub2 = vz_test_out("cd %s && %s keys import --project " PROJECT " -C gh -s state2 priv.pem 2>/dev/null && "
				 "%s keys show --project " PROJECT " -C gh -s state2", g_dir, VZ_BIN, VZ_BIN);
	char *pub1 = vz_test_out("cd %s && cat pub.pem", g_dir);
	assert_string_equal(pub1, pub2);
	free(pub1);
	free(pub2);
	char *mode = vz_test_out("cd %s && stat -c %%a state2/keys/secrets/project/gh/org/app/0.pem "
				 "state2/keys/secrets/project/gh/org/app", g_dir);
	assert_string_equal(mode, "600\n700");
	free(mode);
	/* importing the same key again: fine; another key: refused, exit 1, the key unchanged */
	assert_int_equal(vz_test_sh(NULL, "cd %s && %s keys import --project " PROJECT " -C gh -s state2 < priv.pem", g_dir,
				    VZ_BIN), 0);
	assert_int_equal(vz_test_sh(&out, "cd %s && %s keys import --project " PROJECT " -C gh -s state2 other.pem 2>&1",
				    g_dir, VZ_BIN), 1);
	assert_non_null(strstr(vz_buf_cstr(&out), "already has a different key"));
	assert_int_equal(vz_test_sh(NULL, "cd %s && cmp -s priv.pem state2/keys/secrets/project/gh/org/app/0.pem", g_dir),
			 0);
	/* export never overwrites a file */
	assert_int_equal(vz_test_sh(&out, "cd %s && %s keys export --project " PROJECT " -C gh -s state priv.pem 2>&1", g_dir,
				    VZ_BIN), 1);
	assert_non_null(strstr(vz_buf_cstr(&out), "never overwritten"));
	/* usage: no project, an unknown verb, a project name leaving the key directory */
	assert_int_equal(vz_test_sh(NULL, "%s keys show -C gh -s x", VZ_BIN), 2);
	assert_int_equal(vz_test_sh(NULL, "%s keys rotate --project p -C gh -s x", VZ_BIN), 2);
	assert_int_equal(vz_test_sh(NULL, "%s encrypt -C gh -s x", VZ_BIN), 2);
	assert_int_equal(vz_test_sh(&out, "cd %s && %s keys show --project ../../etc -C gh -s state 2>&1", g_dir, VZ_BIN), 1);
	assert_non_null(strstr(vz_buf_cstr(&out), "cannot name a key directory"));
	vz_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openssl_encrypts_vinz_decrypts),
		cmocka_unit_test(test_wrong_key_and_corrupt_chunk),
		cmocka_unit_test(test_vinz_encrypts_openssl_decrypts),
		cmocka_unit_test(test_python_oracle),
		cmocka_unit_test(test_keys_cli),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
