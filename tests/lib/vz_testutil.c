/* Test helpers; see vz_testutil.h. */
#include "vz_testutil.h"

#include <dirent.h>
#include <git2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vz_buf.h"
#include "vz_util.h"

char *vz_test_tmpdir(const char *prefix)
{
	const char *t = getenv("TMPDIR");
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "%s/%s-XXXXXX", t && *t ? t : "/tmp", prefix);
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		abort();
	}
	return vz_xstrdup(tmpl);
}

void vz_test_write(const char *dir, const char *rel, const char *content)
{
	char *p = vz_path_join(dir, rel);
	char *parent = vz_xstrdup(p);
	char *slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	vz_err e = { 0 };
	if (vz_mkdir_p(parent, 0755, &e) || vz_write_file_atomic(p, content, strlen(content), 0644, &e)) {
		fprintf(stderr, "test: %s\n", vz_err_msg(&e));
		abort();
	}
	free(parent);
	free(p);
}

void vz_test_rm(const char *path)
{
	vz_rm_rf(path, NULL);
}

static void check(int rc, const char *what)
{
	if (rc < 0) {
		const git_error *ge = git_error_last();
		fprintf(stderr, "test: git %s: %s\n", what, ge ? ge->message : "?");
		abort();
	}
}

static void make_commit(git_repository *r, git_treebuilder *tb, const git_oid *parent, const char *msg, git_oid *out)
{
	git_oid tid;
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	git_commit *pc = NULL;
	check(git_treebuilder_write(&tid, tb), "write tree");
	check(git_tree_lookup(&tree, r, &tid), "tree");
	check(git_signature_new(&sig, "vinz test", "test@vinz.invalid", 1763700000, 0), "signature");
	if (parent)
		check(git_commit_lookup(&pc, r, parent), "parent");
	const git_commit *parents[] = { pc };
	check(git_commit_create(out, r, NULL, sig, sig, NULL, msg, tree, pc ? 1 : 0, parents), "commit");
	git_commit_free(pc);
	git_signature_free(sig);
	git_tree_free(tree);
}

void vz_test_git_repo(const char *path, int nchanges, const char *const *contents)
{
	git_libgit2_init();
	git_repository *r = NULL;
	git_treebuilder *tb = NULL;
	git_reference *ref = NULL;
	git_oid blob, base, c;
	check(git_repository_init(&r, path, 1), "init");
	check(git_treebuilder_new(&tb, r, NULL), "treebuilder");
	check(git_blob_create_from_buffer(&blob, r, "test repository\n", 16), "blob");
	check(git_treebuilder_insert(NULL, tb, "README", &blob, GIT_FILEMODE_BLOB), "insert");
	make_commit(r, tb, NULL, "base\n", &base);
	check(git_reference_create(&ref, r, "refs/heads/master", &base, 1, "test"), "master");
	git_reference_free(ref);
	for (int i = 1; i <= nchanges; i++) {
		char name[64], cref[64], dflt[32], msg[64];
		snprintf(name, sizeof(name), "change-%d", i);
		snprintf(cref, sizeof(cref), "refs/changes/%d", i);
		snprintf(dflt, sizeof(dflt), "%d\n", i);
		snprintf(msg, sizeof(msg), "change %d\n", i);
		const char *content = contents && contents[i - 1] ? contents[i - 1] : dflt;
		git_treebuilder *t2 = NULL;
		git_tree *bt = NULL;
		git_commit *bc = NULL;
		check(git_commit_lookup(&bc, r, &base), "base");
		check(git_commit_tree(&bt, bc), "base tree");
		check(git_treebuilder_new(&t2, r, bt), "treebuilder");
		check(git_blob_create_from_buffer(&blob, r, content, strlen(content)), "blob");
		check(git_treebuilder_insert(NULL, t2, name, &blob, GIT_FILEMODE_BLOB), "insert");
		make_commit(r, t2, &base, msg, &c);
		check(git_reference_create(&ref, r, cref, &c, 1, "test"), "change ref");
		git_reference_free(ref);
		git_treebuilder_free(t2);
		git_tree_free(bt);
		git_commit_free(bc);
	}
	git_treebuilder_free(tb);
	git_repository_free(r);
	git_libgit2_shutdown();
}

int vz_test_wait(int (*cond)(void *), void *ctx, int timeout_ms)
{
	uint64_t until = vz_mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		if (cond(ctx))
			return 1;
		if (vz_mono_ms() >= until)
			return 0;
		usleep(20000);
	}
}

int vz_test_sh(vz_buf *out, const char *fmt, ...)
{
	vz_buf cmd = VZ_BUF_INIT(1 << 20);
	va_list ap;
	vz_buf_puts(&cmd, "( ");
	va_start(ap, fmt);
	vz_buf_vprintf(&cmd, fmt, ap);
	va_end(ap);
	vz_buf_puts(&cmd, out ? " ) 2>/dev/null" : " ) >/dev/null 2>&1");
	FILE *p = cmd.failed ? NULL : popen(vz_buf_cstr(&cmd), "r");
	if (!p) {
		fprintf(stderr, "vz_test_sh: cannot run a command\n");
		abort();
	}
	char chunk[4096];
	size_t n;
	if (out)
		vz_buf_reset(out);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		if (out)
			vz_buf_add(out, chunk, n);
	int st = pclose(p);
	vz_buf_free(&cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void vz_test_first_id(const vz_buf *out, char id[41])
{
	id[0] = '\0';
	if (out->len >= 40 && (out->len == 40 || out->ptr[40] == '\n' || out->ptr[40] == ' ' || out->ptr[40] == '\t')) {
		memcpy(id, out->ptr, 40);
		id[40] = '\0';
	}
}

char *vz_test_out(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	vz_buf out = VZ_BUF_INIT(1 << 24);
	int rc = vz_test_sh(&out, "%s", cmd);
	if (rc != 0) {
		fprintf(stderr, "vz_test_out: command failed (%d): %s\n", rc, cmd);
		abort();
	}
	char *s = vz_xstrdup(out.ptr ? vz_buf_cstr(&out) : "");
	size_t n = strlen(s);
	while (n && s[n - 1] == '\n')
		s[--n] = '\0';
	vz_buf_free(&out);
	return s;
}

int vz_test_truncate_packs(const char *gitdir)
{
	char *packdir = vz_path_join(gitdir, "objects/pack");
	DIR *d = opendir(packdir);
	int cut = 0;
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			size_t n = strlen(de->d_name);
			if (n > 5 && strcmp(de->d_name + n - 5, ".pack") == 0) {
				char *p = vz_path_join(packdir, de->d_name);
				if (truncate(p, 40) != 0)
					abort();
				free(p);
				cut++;
			}
		}
		closedir(d);
	}
	free(packdir);
	return cut;
}
