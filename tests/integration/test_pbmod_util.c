/* test_pbmod_util: the executor-side helpers of the file/transfer modules without a node: mode
 * and boolean options as Ansible spells them, the ustar writer read back by the reader (long
 * names, links, binary data) and the reader refusing unsafe names and malformed streams, and the
 * confinement of executor paths (.., absolute paths, symlinks out, writes outside the work dir). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vz_pbmod_util.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"

static void test_modes(void **state)
{
	static const struct { const char *json; const char *want; } ok[] = {
		{ "{\"mode\": \"0644\"}", "0644" },   { "{\"mode\": \"644\"}", "0644" },
		{ "{\"mode\": 420}", "0644" },        { "{\"mode\": \"01777\"}", "1777" },
		{ "{\"mode\": \"u=rw,g=r,o=\"}", "u=rw,g=r,o=" }, { "{\"mode\": \"a+X\"}", "a+X" },
		{ "{\"mode\": \"preserve\"}", "preserve" },       { "{\"mode\": \"go-w\"}", "go-w" },
	};
	static const char *const bad[] = { "{\"mode\": \"abc\"}", "{\"mode\": \"9999\"}",
					   "{\"mode\": \"u=rw;rm -rf /\"}", "{\"mode\": 99999}",
					   "{\"mode\": \"\"}", "{\"mode\": [1]}", "{\"mode\": \"0777777\"}" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		json_t *a = json_loads(ok[i].json, 0, NULL);
		char *m = NULL;
		vz_err e = { 0 };
		assert_int_equal(vz_pbmod_arg_mode(&m, a, "mode", &e), 0);
		assert_string_equal(m, ok[i].want);
		free(m);
		json_decref(a);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *a = json_loads(bad[i], 0, NULL);
		char *m = NULL;
		vz_err e = { 0 };
		assert_int_equal(vz_pbmod_arg_mode(&m, a, "mode", &e), VZ_EINVAL);
		assert_null(m);
		assert_non_null(strstr(e.msg, "octal or symbolic"));
		json_decref(a);
	}
}

static void test_bools_and_unknown_options(void **state)
{
	json_t *a = json_pack("{s:s, s:s, s:b, s:i, s:s}", "a", "yes", "b", "Off", "c", 1, "d", 0, "e", "maybe");
	int v;
	vz_err e = { 0 };
	assert_int_equal(vz_pbmod_arg_bool(&v, a, "a", 0, &e), 0);
	assert_int_equal(v, 1);
	assert_int_equal(vz_pbmod_arg_bool(&v, a, "b", 1, &e), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vz_pbmod_arg_bool(&v, a, "c", 0, &e), 0);
	assert_int_equal(v, 1);
	assert_int_equal(vz_pbmod_arg_bool(&v, a, "d", 1, &e), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vz_pbmod_arg_bool(&v, a, "missing", 1, &e), 0);
	assert_int_equal(v, 1);
	assert_int_equal(vz_pbmod_arg_bool(&v, a, "e", 0, &e), VZ_EINVAL);
	static const char *const allowed[] = { "a", "b", "c", "d", NULL };
	vz_err_clear(&e);
	assert_int_equal(vz_pbmod_args_known(a, "copy", allowed, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "Unsupported parameters for (copy) module: e."));
	json_decref(a);
	/* every module rejects an unknown option at load time */
	static const char *const mods[] = { "copy", "template", "file", "stat", "fetch", "synchronize",
					    "lineinfile", "wait_for", "script", NULL };
	json_t *b = json_pack("{s:s}", "no_such_option", "x");
	for (size_t i = 0; mods[i]; i++) {
		const vz_pbmod *m = vz_pbmod_find(mods[i]);
		assert_non_null(m);
		assert_ptr_equal(vz_pbmod_find(mods[i]), m);
		char full[64];
		snprintf(full, sizeof(full), "ansible.builtin.%s", mods[i]);
		assert_ptr_equal(vz_pbmod_find(full), m);
		vz_err_clear(&e);
		assert_int_equal(m->check(b, &e), VZ_EINVAL);
		assert_non_null(strstr(e.msg, "no_such_option"));
	}
	json_decref(b);
	/* string options from other JSON types, as Python's str() */
	json_t *c = json_pack("{s:i, s:f, s:f, s:b}", "i", 42, "r", 0.1, "w", 2.0, "b", 1);
	char buf[64];
	const char *s;
	static const char *const ki[] = { "i", NULL }, *const kr[] = { "r", NULL },
			  *const kw[] = { "w", NULL }, *const kb[] = { "b", NULL };
	assert_int_equal(vz_pbmod_arg_str(&s, c, ki, buf, sizeof(buf), &e), 0);
	assert_string_equal(s, "42");
	assert_int_equal(vz_pbmod_arg_str(&s, c, kr, buf, sizeof(buf), &e), 0);
	assert_string_equal(s, "0.1");
	assert_int_equal(vz_pbmod_arg_str(&s, c, kw, buf, sizeof(buf), &e), 0);
	assert_string_equal(s, "2.0");
	assert_int_equal(vz_pbmod_arg_str(&s, c, kb, buf, sizeof(buf), &e), 0);
	assert_string_equal(s, "True");
	json_decref(c);
}

typedef struct seen {
	int n;
	char names[8][300];
	char types[8];
	unsigned modes[8];
	size_t lens[8];
	char data0[16];
} seen;

static int collect(void *arg, const char *name, char type, unsigned mode, int64_t mtime,
		   const char *data, size_t len, const char *link, vz_err *e)
{
	seen *s = arg;
	if (s->n >= 8)
		return vz_err_set(e, VZ_ERROR, "too many");
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s%s%s", name, link ? "->" : "", link ? link : "");
	s->types[s->n] = type;
	s->modes[s->n] = mode;
	s->lens[s->n] = len;
	if (s->n == 1)
		memcpy(s->data0, data, len < 16 ? len : 16);
	(void)mtime;
	s->n++;
	return 0;
}

static void test_tar_roundtrip(void **state)
{
	vz_buf tar = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	char longname[260];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	memcpy(longname, "dir/", 4);
	const char bin[] = { 0, 1, (char)0xff, '\n', '\r', 0 };
	assert_int_equal(vz_pbmod_tar_add(&tar, "dir", 'd', 0750, 1, NULL, 0, NULL, &e), 0);
	assert_int_equal(vz_pbmod_tar_add(&tar, "dir/bin", 'f', 0600, 2, bin, sizeof(bin), NULL, &e), 0);
	assert_int_equal(vz_pbmod_tar_add(&tar, longname, 'f', 0644, 3, "x", 1, NULL, &e), 0);
	assert_int_equal(vz_pbmod_tar_add(&tar, "dir/ln", 'l', 0777, 4, NULL, 0, "../elsewhere", &e), 0);
	assert_int_equal(vz_pbmod_tar_end(&tar, &e), 0);
	seen s = { 0 };
	assert_int_equal(vz_pbmod_tar_each(tar.ptr, tar.len, collect, &s, &e), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.names[0], "dir");
	assert_int_equal(s.types[0], 'd');
	assert_int_equal(s.modes[0], 0750);
	assert_string_equal(s.names[1], "dir/bin");
	assert_int_equal(s.lens[1], sizeof(bin));
	assert_memory_equal(s.data0, bin, sizeof(bin));
	assert_string_equal(s.names[2], longname);
	assert_string_equal(s.names[3], "dir/ln->../elsewhere");
	/* GNU tar reads it too */
	char *dir = vz_test_tmpdir("vz-pbmod-tar");
	char *path = vz_path_join(dir, "t.tar");
	assert_int_equal(vz_write_file_atomic(path, tar.ptr, tar.len, 0644, &e), 0);
	vz_buf out = VZ_BUF_INIT(65536);
	const char *argv[] = { "tar", "-tvf", path, NULL };
	assert_int_equal(vz_test_sshd_run(argv, &out), 0);
	assert_non_null(strstr(vz_buf_cstr(&out), "dir/ln -> ../elsewhere"));
	assert_non_null(strstr(vz_buf_cstr(&out), longname));
	vz_buf_free(&out);
	vz_test_rm(dir);
	free(dir);
	free(path);
	vz_buf_free(&tar);
}

static void test_tar_refuses_unsafe(void **state)
{
	static const char *const names[] = { "/etc/passwd", "../up", "a/../../b", "a/..", NULL };
	for (size_t i = 0; names[i]; i++) {
		vz_buf tar = VZ_BUF_INIT(1 << 20);
		vz_err e = { 0 };
		seen s = { 0 };
		assert_int_equal(vz_pbmod_tar_add(&tar, names[i], 'f', 0644, 0, "x", 1, NULL, &e), 0);
		vz_pbmod_tar_end(&tar, &e);
		assert_int_equal(vz_pbmod_tar_each(tar.ptr, tar.len, collect, &s, &e), VZ_EPROTO);
		assert_int_equal(s.n, 0);
		assert_non_null(strstr(e.msg, "unsafe name"));
		vz_buf_free(&tar);
	}
	/* a header that claims more data than there is */
	vz_buf tar = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	seen s = { 0 };
	vz_pbmod_tar_add(&tar, "f", 'f', 0644, 0, "hello", 5, NULL, &e);
	memcpy(tar.ptr + 124, "77777777777", 11);
	assert_int_equal(vz_pbmod_tar_each(tar.ptr, tar.len, collect, &s, &e), VZ_EPROTO);
	/* truncated streams and garbage end quietly or fail, never read past the end */
	for (size_t cut = 0; cut < tar.len; cut += 37) {
		seen s2 = { 0 };
		vz_err e2 = { 0 };
		int rc = vz_pbmod_tar_each(tar.ptr, cut, collect, &s2, &e2);
		assert_true(rc == 0 || rc == VZ_EPROTO);
	}
	vz_buf_free(&tar);
}

static void test_confinement(void **state)
{
	char *root = vz_test_tmpdir("vz-pbmod-conf");
	char *proj = vz_path_join(root, "proj"), *work = vz_path_join(root, "proj/work");
	vz_test_write(proj, "files/ok.txt", "ok\n");
	vz_test_write(root, "outside/secret", "s\n");
	vz_mkdir_p(work, 0755, NULL);
	char *link = vz_path_join(proj, "files/esc"), *target = vz_path_join(root, "outside/secret");
	assert_int_equal(symlink(target, link), 0);
	char *wl = vz_path_join(work, "out");
	assert_int_equal(symlink("/tmp", wl), 0);
	const char *search[] = { proj, NULL };
	vz_pbmod_ctx ctx = { .search = search, .confine = proj, .work_dir = work };
	/* trusted: a relative write goes under the playbook's dir, as Ansible's fetch */
	ctx.confine = NULL;
	char *rel = NULL;
	vz_err re = { 0 };
	assert_int_equal(vz_pbmod_local_dest(&rel, &ctx, "fetched/x", 0, &re), 0);
	assert_non_null(strstr(rel, "/proj/fetched/x"));
	free(rel);
	ctx.confine = proj;
	char *got = NULL;
	vz_err e = { 0 };

	assert_int_equal(vz_pbmod_find_src(&got, &ctx, "ok.txt", "files", &e), 0);
	assert_non_null(strstr(got, "/proj/files/ok.txt"));
	free(got);
	static const char *const refused[] = { "esc", "/etc/hostname", "../outside/secret",
					       "files/../../outside/secret", NULL };
	for (size_t i = 0; refused[i]; i++) {
		vz_err_clear(&e);
		assert_int_equal(vz_pbmod_find_src(&got, &ctx, refused[i], "files", &e), VZ_EINVAL);
		assert_null(got);
		assert_non_null(strstr(e.msg, "outside the project"));
	}
	vz_err_clear(&e);
	assert_int_equal(vz_pbmod_find_src(&got, &ctx, "nope", "files", &e), VZ_ENOTFOUND);
	assert_non_null(strstr(e.msg, "Could not find or access 'nope'"));
	/* the same paths are fine for a trusted playbook */
	ctx.confine = NULL;
	vz_err_clear(&e);
	assert_int_equal(vz_pbmod_find_src(&got, &ctx, "esc", "files", &e), 0);
	free(got);
	ctx.confine = proj;
	/* writes */
	vz_err_clear(&e);
	assert_int_equal(vz_pbmod_local_dest(&got, &ctx, "fetched/a/b", 1, &e), 0);
	assert_non_null(strstr(got, "/proj/work/fetched/a/b"));
	free(got);
	static const char *const wrefused[] = { "/tmp/vz-pbmod-elsewhere/x", "../x", "a/../../x",
						"out/x", "out/deeper/x", NULL };
	for (size_t i = 0; wrefused[i]; i++) {
		vz_err_clear(&e);
		assert_int_equal(vz_pbmod_local_dest(&got, &ctx, wrefused[i], 1, &e), VZ_EINVAL);
		assert_null(got);
	}
	struct stat sb;
	assert_int_not_equal(stat("/tmp/deeper", &sb), 0); /* nothing was made through the link */
	free(link);
	free(target);
	free(wl);
	free(proj);
	free(work);
	vz_test_rm(root);
	free(root);
}

static void test_lines(void **state)
{
	json_t *a = vz_pbmod_lines("a\r\nb\n\nc");
	char *s = json_dumps(a, JSON_COMPACT);
	assert_string_equal(s, "[\"a\",\"b\",\"\",\"c\"]");
	free(s);
	json_decref(a);
	a = vz_pbmod_lines("");
	assert_int_equal(json_array_size(a), 0);
	json_decref(a);
	/* node output that is not UTF-8 still makes valid JSON */
	const char bin[] = "ok \xff\xfe \xc3\xa9 \xe2\x82 end";
	json_t *t = vz_pbmod_text(bin, sizeof(bin) - 1);
	assert_non_null(t);
	assert_string_equal(json_string_value(t), "ok \xef\xbf\xbd\xef\xbf\xbd \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd end");
	char *dump = json_dumps(t, JSON_ENCODE_ANY);
	assert_non_null(dump);
	free(dump);
	json_decref(t);
	t = vz_pbmod_text("a\0b", 3);
	assert_int_equal(json_string_length(t), 3);
	json_decref(t);
	char sha[41], md5[33];
	vz_pbmod_sha1(sha, "abc", 3);
	assert_string_equal(sha, "a9993e364706816aba3e25717850c26c9cd0d89d");
	vz_pbmod_md5(md5, "abc", 3);
	assert_string_equal(md5, "900150983cd24fb0d6963f7d28e17f72");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_bools_and_unknown_options),
		cmocka_unit_test(test_tar_roundtrip),
		cmocka_unit_test(test_tar_refuses_unsafe),
		cmocka_unit_test(test_confinement),
		cmocka_unit_test(test_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
