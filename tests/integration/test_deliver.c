/* test_deliver: vz_deliver_repo against a real OpenSSH sshd on loopback (node user vzdnode,
 * /bin/sh, the machine's git) with executor-side repositories made by the git CLI the way a build
 * workspace is (alternates into a bare cache, local branches, no remote). Each check runs the same
 * commands in the local workspace and in the node's copy and compares the output: HEAD, branches,
 * index (modes, symlinks, blob ids), clean status, no remote, attached/detached HEAD, file bytes.
 * Object counts are compared with what `git rev-list --objects` says. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vz_deliver.h"
#include "vz_node.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"

#define OUT_MAX (4u * 1024 * 1024)
#define PROJECT "example.org/it's a \"proj\""

typedef struct fixture {
	vz_test_sshd *sshd;
	vz_node *n;
	char *tmp;        /* executor side: src, cache.git, ws */
	char *ws;         /* the build workspace delivered */
	char top[64];     /* node side: everything of this run lives under ~/top */
	char store_root[128];
	char *node_home;
} fixture;

static fixture g;

/* ---------- helpers ---------- */

/* Runs a shell command here (the executor); stdout into out (may be NULL). Fails the test when
 * it exits non-zero. */
static void lsh(vz_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lsh(vz_buf *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vz_test_sshd_vsh(out, fmt, ap);
	va_end(ap);
	if (rc != 0)
		fail_msg("local command failed: see the command on stderr");
}

static int cap_cb(void *ctx, int stream, const char *data, size_t len)
{
	vz_buf *b = ctx;
	if (stream == VZ_NODE_STDOUT)
		vz_buf_add_capped(b, data, len);
	else
		fprintf(stderr, "node stderr: %.*s", (int)len, data);
	return 0;
}

/* Runs a command on the node (in cwd when given); returns its exit status, stdout into out. */
static int nsh(vz_buf *out, const char *cwd, const char *command)
{
	vz_node_cmd c = { .command = command, .cwd = cwd, .on_output = cap_cb, .ctx = out, .timeout_ms = 60000 };
	vz_node_result r = { 0 };
	vz_err e = { 0 };
	if (vz_node_exec(g.n, &c, &r, &e) != 0)
		fail_msg("node command failed: %s: %s", vz_err_msg(&e), command);
	return r.exit_status;
}

/* What must be equal between the workspace here and its copy on the node. */
#define STATE_CMD                                                                                   \
	"git rev-parse HEAD; echo --; git for-each-ref --format='%(objectname) %(refname)' refs/heads; " \
	"echo --; git status --porcelain --untracked-files=all; echo --; git remote; echo --; "         \
	"git symbolic-ref -q HEAD || echo detached; echo --; git ls-files -s; echo --; "                \
	"git ls-files -z | xargs -0 cksum; echo --; readlink link || true; test -x bin/run.sh && echo x; "   \
	"ls .git/objects/pack | wc -l; git rev-list --count --all"

/* The node's copy of g.ws at dir equals g.ws. */
static void check_same(const char *dir)
{
	vz_buf here = VZ_BUF_INIT(OUT_MAX), there = VZ_BUF_INIT(OUT_MAX);
	lsh(&here, "cd '%s' && %s", g.ws, STATE_CMD);
	int st = nsh(&there, dir, STATE_CMD);
	if (st != 0 || strcmp(vz_buf_cstr(&here), vz_buf_cstr(&there)) != 0)
		fail_msg("node copy %s differs (exit %d)\n--- executor ---\n%s--- node ---\n%s", dir, st, vz_buf_cstr(&here),
			 vz_buf_cstr(&there));
	/* a build's view: plain git works there, with history */
	vz_buf_reset(&there);
	assert_int_equal(nsh(&there, dir, "git log --oneline | wc -l; git fsck --connectivity-only >/dev/null 2>&1 && echo fsck-ok"), 0);
	assert_non_null(strstr(vz_buf_cstr(&there), "fsck-ok"));
	vz_buf_free(&here);
	vz_buf_free(&there);
}

/* All branch tips and HEAD of g.ws, space-separated (what the node has after a delivery). */
static void tips(vz_buf *out)
{
	lsh(out, "cd '%s' && { git for-each-ref --format='%%(objectname)' refs/heads; git rev-parse HEAD; } | "
		 "sort -u | tr '\\n' ' '", g.ws);
}

/* `git rev-list --objects --all --not OLD | wc -l` in g.ws. */
static long objects_since(const char *old)
{
	vz_buf out = VZ_BUF_INIT(4096);
	int64_t v = -1;
	lsh(&out, "cd '%s' && git rev-list --objects --all --not %s | wc -l | tr -d ' \\n'", g.ws, old);
	if (vz_parse_i64(vz_buf_cstr(&out), 0, INT32_MAX, &v) != 0)
		fail_msg("rev-list count: %s", vz_buf_cstr(&out));
	vz_buf_free(&out);
	return (long)v;
}

static void remote_dir(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s/src/" PROJECT, g.top, name);
}

static vz_deliver_opts opts(void)
{
	vz_deliver_opts o = { .project = PROJECT, .store_root = g.store_root, .timeout_ms = 120000 };
	return o;
}

static int deliver(const char *dir, const vz_deliver_opts *o, vz_deliver_stats *st, vz_err *e)
{
	int rc = vz_deliver_repo(g.n, g.ws, dir, o, st, e);
	fprintf(stderr, "deliver %s: rc %d method %s objects %zu bytes %zu round trips %d rebuilt %d reused %d "
		"pack %llu ms total %llu ms%s%s%s\n", dir, rc, vz_deliver_method_name(st->method), st->objects, st->bytes,
		st->round_trips, st->rebuilt, st->reused, (unsigned long long)st->pack_ms,
		(unsigned long long)st->total_ms, st->note[0] ? " note: " : "", st->note, rc ? vz_err_msg(e) : "");
	return rc;
}

/* The node store's path, quoted for the node's shell. */
static void store_q(vz_buf *b)
{
	vz_buf s = VZ_BUF_INIT(4096);
	vz_buf_printf(&s, "%s/%s.git", g.store_root, PROJECT);
	vz_node_sh_quote(b, vz_buf_cstr(&s));
	vz_buf_free(&s);
}

/* ---------- fixture ---------- */

static int group_setup(void **state)
{
	vz_node_spec spec;
	vz_err e = { 0 };
	char tok[37];

	memset(&g, 0, sizeof(g));
	vz_uuid(tok);
	tok[8] = '\0';
	snprintf(g.top, sizeof(g.top), "vzd-test-%s", tok);
	snprintf(g.store_root, sizeof(g.store_root), "%s/store", g.top);
	if (vz_node_global_init(&e) != 0 || vz_test_sshd_start(&g.sshd) != 0) {
		fprintf(stderr, "group setup: %s\n", vz_err_msg(&e));
		return -1;
	}
	vz_test_sshd_spec(g.sshd, &spec);
	if (vz_node_connect(&g.n, &spec, &e) != 0) {
		fprintf(stderr, "group setup: %s\n", vz_err_msg(&e));
		return -1;
	}
	g.tmp = vz_test_tmpdir("vz-deliver");
	g.ws = vz_path_join(g.tmp, "ws");
	/* the source history: 150 generated files (so the first pack is indexed, not unpacked), an
	 * executable, a symlink, random binary bytes, a path with spaces and quotes; branches main,
	 * stable, feature; a commit only the detached HEAD reaches */
	const char *argv[] = { "/bin/sh", "-ec",
			       "cd \"$0\"\n"
			       "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t\n"
			       "git init -q -b main src && cd src\n"
			       "mkdir -p bin gen 'dir with space'\n"
			       "i=0; while [ $i -lt 150 ]; do echo \"generated $i\" > gen/f$i.txt; i=$((i+1)); done\n"
			       "printf '#!/bin/sh\\necho run\\n' > bin/run.sh && chmod +x bin/run.sh\n"
			       "head -c 4096 /dev/urandom > blob.bin\n"
			       "ln -s bin/run.sh link\n"
			       "echo quoted > \"dir with space/it's \\\"q\\\".txt\"\n"
			       "git add -A && git commit -q -m one && git branch stable\n"
			       "git checkout -q -b feature && echo f > feature.txt && git add -A && git commit -q -m f\n"
			       "git checkout -q main && echo m > m.txt && git add -A && git commit -q -m m\n"
			       "git checkout -q -b tmp && echo d > detached.txt && git add -A && git commit -q -m d\n"
			       "git checkout -q main\n"
			       "cd .. && git clone -q --bare src cache.git && git -C cache.git branch -D tmp -q\n"
			       "git init -q ws && echo \"$PWD/cache.git/objects\" > ws/.git/objects/info/alternates\n"
			       "for b in main stable feature; do git -C ws update-ref refs/heads/$b $(git -C src rev-parse $b); done\n"
			       "git -C ws checkout -q --detach $(git -C src rev-parse tmp)\n",
			       g.tmp, NULL };
	if (vz_test_sshd_run(argv, NULL) != 0) {
		fprintf(stderr, "group setup: cannot make the repositories in %s\n", g.tmp);
		return -1;
	}
	*state = &g;
	return 0;
}

static int group_teardown(void **state)
{
	if (g.n) {
		vz_buf cmd = VZ_BUF_INIT(4096), out = VZ_BUF_INIT(4096);
		vz_buf_puts(&cmd, "chmod -R u+w ");
		vz_node_sh_quote(&cmd, g.top);
		vz_buf_puts(&cmd, " 2>/dev/null; rm -rf ");
		vz_node_sh_quote(&cmd, g.top);
		vz_node_cmd c = { .command = vz_buf_cstr(&cmd), .timeout_ms = 60000, .on_output = cap_cb, .ctx = &out };
		vz_node_result r = { 0 };
		vz_err e = { 0 };
		vz_node_exec(g.n, &c, &r, &e);
		vz_buf_free(&cmd);
		vz_buf_free(&out);
	}
	vz_node_close(g.n);
	vz_test_sshd_stop(g.sshd);
	vz_node_global_cleanup();
	if (g.tmp && !getenv("VZ_KEEP"))
		vz_test_rm(g.tmp);
	free(g.tmp);
	free(g.ws);
	return 0;
}

/* ---------- tests ---------- */

/* 1. first delivery: branches, detached HEAD, modes, symlink, binary, quoted paths; all objects
 * sent in two round trips; a second delivery of the same state sends nothing and reuses the
 * directory. */
static void test_first_and_same(void **state)
{
	char dir[512];
	vz_deliver_stats st;
	vz_err e = { 0 };
	vz_deliver_opts o = opts();
	remote_dir(dir, sizeof(dir), "a");
	assert_int_equal(deliver(dir, &o, &st, &e), 0);
	assert_int_equal(st.method, VZ_DELIVER_GIT);
	assert_int_equal(st.round_trips, 2);
	assert_int_equal(st.rebuilt, 0);
	assert_int_equal(st.refs, 3);
	assert_int_equal((long)st.objects, objects_since(""));
	assert_true(st.bytes > 0);
	check_same(dir);

	memset(&st, 0, sizeof(st));
	assert_int_equal(deliver(dir, &o, &st, &e), 0);
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.reused, 1);
	check_same(dir);
}

/* 2. a descendant commit (attached HEAD now): only the new objects; the build's leftovers in the
 * reused directory (changed, untracked, ignored files, a new branch, a remote, a shallow file, a
 * hook, an exclude) are gone. */
static void test_descendant(void **state)
{
	char dir[512];
	vz_deliver_stats st;
	vz_err e = { 0 };
	vz_deliver_opts o = opts();
	vz_buf old = VZ_BUF_INIT(8192), out = VZ_BUF_INIT(8192);
	remote_dir(dir, sizeof(dir), "a");
	tips(&old);
	/* what a job may leave behind */
	assert_int_equal(nsh(&out, dir, "echo junk > m.txt && echo x > untracked.txt && mkdir -p build && echo o > "
					"build/out.o && git branch leftover && git remote add origin /nowhere && "
					"rm -f link && git rev-parse HEAD > .git/shallow && "
					"mkdir -p .git/hooks && printf '#!/bin/sh\\ntouch hook-ran\\n' > .git/hooks/post-checkout && "
					"chmod +x .git/hooks/post-checkout && mkdir -p .git/info && echo '*.txt' > .git/info/exclude"), 0);
	lsh(NULL,
	    "cd '%s'\nexport GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t\n"
	    "cd src && for i in 1 2 3 4 5 6 7 8 9; do echo changed >> gen/f$i.txt; done && echo new > gen/new.txt && "
	    "git add -A && git commit -q -m two && git push -q ../cache.git main\n"
	    "cd ../ws && git update-ref refs/heads/main $(git -C ../src rev-parse main) && git checkout -q main",
	    g.tmp);
	long want = objects_since(vz_buf_cstr(&old));
	assert_true(want > 0 && want < 20);
	assert_int_equal(deliver(dir, &o, &st, &e), 0);
	assert_int_equal((long)st.objects, want);
	assert_int_equal(st.round_trips, 2);
	assert_int_equal(st.reused, 1);
	check_same(dir);
	vz_buf_reset(&out);
	assert_int_equal(nsh(&out, dir, "for f in untracked.txt build hook-ran .git/shallow .git/hooks; do "
					"[ ! -e $f ] || echo left $f; done; "
					"git branch --list leftover"), 0);
	assert_string_equal(vz_buf_cstr(&out), "");
	vz_buf_free(&old);
	vz_buf_free(&out);
}

/* 3. another directory after the first was removed: the store still has everything, so nothing is
 * sent; then a new commit into a third directory sends only that. */
static void test_other_dir(void **state)
{
	char dir_a[512], dir_b[512], dir_c[512];
	vz_deliver_stats st;
	vz_err e = { 0 };
	vz_deliver_opts o = opts();
	vz_buf cmd = VZ_BUF_INIT(4096), out = VZ_BUF_INIT(4096), old = VZ_BUF_INIT(8192);
	remote_dir(dir_a, sizeof(dir_a), "a");
	remote_dir(dir_b, sizeof(dir_b), "b");
	remote_dir(dir_c, sizeof(dir_c), "c");
	vz_buf_puts(&cmd, "rm -rf ");
	vz_node_sh_quote(&cmd, dir_a);
	assert_int_equal(nsh(&out, NULL, vz_buf_cstr(&cmd)), 0);
	assert_int_equal(deliver(dir_b, &o, &st, &e), 0);
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.reused, 0);
	check_same(dir_b);

	tips(&old);
	lsh(NULL,
	    "cd '%s'\nexport GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t\n"
	    "cd src && git checkout -q feature && echo more >> feature.txt && git commit -q -am three && "
	    "git push -q ../cache.git feature && git checkout -q main\n"
	    "cd ../ws && git update-ref refs/heads/feature $(git -C ../src rev-parse feature)",
	    g.tmp);
	long want = objects_since(vz_buf_cstr(&old));
	assert_true(want > 0);
	assert_int_equal(deliver(dir_c, &o, &st, &e), 0);
	assert_int_equal((long)st.objects, want);
	check_same(dir_c);
	vz_buf_free(&cmd);
	vz_buf_free(&out);
	vz_buf_free(&old);
}

/* 4. a damaged store: every pack truncated to half. The probe finds it; the store is made again
 * from everything and the workspace is right. Then a lost loose object, which only the checkout
 * notices: the script fails, the store is rebuilt in a third round trip. Then a half-made store,
 * and a workspace whose index a job broke. */
static void test_damaged_store(void **state)
{
	char dir[512];
	vz_deliver_stats st;
	vz_err e = { 0 };
	vz_deliver_opts o = opts();
	vz_buf cmd = VZ_BUF_INIT(8192), out = VZ_BUF_INIT(8192);
	remote_dir(dir, sizeof(dir), "d");
	vz_buf_puts(&cmd, "S=");
	store_q(&cmd);
	vz_buf_puts(&cmd, "; n=0; for p in \"$S\"/objects/pack/*.pack; do [ -f \"$p\" ] || continue; "
			  "sz=$(wc -c < \"$p\"); head -c $((sz / 2)) \"$p\" > \"$p.t\"; mv -f \"$p.t\" \"$p\"; n=$((n+1)); "
			  "done; echo $n");
	assert_int_equal(nsh(&out, NULL, vz_buf_cstr(&cmd)), 0);
	assert_true(atoi(vz_buf_cstr(&out)) >= 1);
	assert_int_equal(deliver(dir, &o, &st, &e), 0);
	assert_int_equal(st.rebuilt, 1);
	assert_non_null(strstr(st.note, "damaged"));
	assert_int_equal(st.round_trips, 2);
	assert_int_equal((long)st.objects, objects_since(""));
	check_same(dir);

	/* a blob of the checkout lost from the store, its keep-refs intact */
	vz_buf_reset(&cmd);
	vz_buf_reset(&out);
	lsh(&out, "cd '%s' && git rev-parse HEAD:m.txt | tr -d '\\n'", g.ws);
	vz_buf_puts(&cmd, "S=");
	store_q(&cmd);
	/* all objects loose (unpack-objects skips objects the store has, so the pack goes first) */
	vz_buf_printf(&cmd, "; git --git-dir=\"$S\" repack -q -a -d && mkdir -p \"$S/gone\" && "
			    "mv \"$S\"/objects/pack/* \"$S/gone/\" && git --git-dir=\"$S\" unpack-objects -q < "
			    "\"$(ls \"$S\"/gone/*.pack)\" && rm -rf \"$S/gone\" && "
			    "o=%s && rm -f \"$S/objects/$(echo $o | cut -c1-2)/$(echo $o | cut -c3-)\" && echo gone",
		      vz_buf_cstr(&out));
	vz_buf_reset(&out);
	assert_int_equal(nsh(&out, NULL, vz_buf_cstr(&cmd)), 0);
	assert_non_null(strstr(vz_buf_cstr(&out), "gone"));
	/* the new directory's checkout needs that blob */
	remote_dir(dir, sizeof(dir), "d2");
	memset(&st, 0, sizeof(st));
	assert_int_equal(deliver(dir, &o, &st, &e), 0);
	assert_int_equal(st.rebuilt, 1);
	assert_int_equal(st.round_trips, 3);
	assert_int_equal((long)st.objects, objects_since(""));
	check_same(dir);

	/* a store whose making was cut short (a directory, no marker, a stale lock): after a
	 * bounded wait for another maker, it is moved aside and made again */
	vz_buf_reset(&cmd);
	vz_buf_reset(&out);
	vz_buf_puts(&cmd, "S=");
	store_q(&cmd);
	vz_buf_puts(&cmd, "; rm -rf \"$S\" && mkdir -p \"$S\" && : > \"$S/config.lock\" && echo half");
	assert_int_equal(nsh(&out, NULL, vz_buf_cstr(&cmd)), 0);
	remote_dir(dir, sizeof(dir), "d3");
	memset(&st, 0, sizeof(st));
	assert_int_equal(deliver(dir, &o, &st, &e), 0);
	assert_int_equal(st.rebuilt, 1);
	assert_non_null(strstr(st.note, "half-made"));
	check_same(dir);

	/* a job that broke its workspace's index: the reuse fails, the retry starts afresh */
	vz_buf_reset(&out);
	assert_int_equal(nsh(&out, dir, "echo garbage > .git/index"), 0);
	memset(&st, 0, sizeof(st));
	assert_int_equal(deliver(dir, &o, &st, &e), 0);
	assert_int_equal(st.round_trips, 3);
	assert_int_equal(st.reused, 0);
	check_same(dir);
	vz_buf_free(&cmd);
	vz_buf_free(&out);
}

/* 5. keep-refs are bounded; after a gc drops what no keep-ref holds, a delivery re-sends it. */
static void test_keep_bound_and_gc(void **state)
{
	char dir[512], *ws_b = vz_path_join(g.tmp, "ws-b"), *ws_a = g.ws;
	vz_deliver_stats st;
	vz_err e = { 0 };
	vz_deliver_opts o = opts();
	vz_buf cmd = VZ_BUF_INIT(8192), out = VZ_BUF_INIT(8192);
	o.keep_max = 1;
	/* an unrelated workspace: one branch, its own content */
	lsh(NULL,
	    "cd '%s'\nexport GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t\n"
	    "git init -q -b other ws-b && cd ws-b && echo unrelated-$$ > only-b.txt && git add -A && git commit -q -m b",
	    g.tmp);
	g.ws = ws_b;
	remote_dir(dir, sizeof(dir), "k1");
	int rc = deliver(dir, &o, &st, &e);
	if (rc == 0)
		check_same(dir);
	g.ws = ws_a;
	assert_int_equal(rc, 0);
	vz_buf_puts(&cmd, "S=");
	store_q(&cmd);
	vz_buf_puts(&cmd, "; git --git-dir=\"$S\" for-each-ref refs/vinz/ | wc -l; "
			  "git --git-dir=\"$S\" -c gc.reflogExpire=now -c gc.reflogExpireUnreachable=now gc -q --prune=now; "
			  "git --git-dir=\"$S\" count-objects -v | grep -E '^(count|in-pack):'");
	assert_int_equal(nsh(&out, NULL, vz_buf_cstr(&cmd)), 0);
	fprintf(stderr, "store after keep_max=1 and gc --prune=now:\n%s", vz_buf_cstr(&out));
	/* only ws-b's one commit is kept */
	assert_true(vz_startswith(vz_buf_cstr(&out), "1\n"));
	/* ws (a) again: its objects are gone from the store, so all of them are sent */
	remote_dir(dir, sizeof(dir), "k2");
	assert_int_equal(deliver(dir, &o, &st, &e), 0);
	assert_int_equal(st.rebuilt, 0);
	assert_int_equal((long)st.objects, objects_since(""));
	check_same(dir);
	/* keep-refs now: exactly the commits this delivery wanted */
	vz_buf_reset(&out);
	vz_buf_reset(&cmd);
	vz_buf_puts(&cmd, "git --git-dir=");
	store_q(&cmd);
	vz_buf_puts(&cmd, " for-each-ref --format='%(objectname)' refs/vinz/ | sort");
	assert_int_equal(nsh(&out, NULL, vz_buf_cstr(&cmd)), 0);
	vz_buf want = VZ_BUF_INIT(8192);
	lsh(&want, "cd '%s' && { git for-each-ref --format='%%(objectname)' refs/heads; git rev-parse HEAD; } | sort -u", g.ws);
	assert_string_equal(vz_buf_cstr(&out), vz_buf_cstr(&want));
	vz_buf_free(&want);
	vz_buf_free(&cmd);
	vz_buf_free(&out);
	free(ws_b);
}

/* 6. a node whose PATH has no git (a directory with sh, tar and the few tools the fallback uses,
 * nothing else): the work tree arrives as a tar, without .git, and the stats say why. */
static void test_no_git(void **state)
{
	char dir[512], pathenv[1200];
	vz_deliver_stats st;
	vz_err e = { 0 };
	vz_deliver_opts o = opts();
	vz_buf cmd = VZ_BUF_INIT(8192), out = VZ_BUF_INIT(8192);
	vz_buf_printf(&cmd, "d=\"$PWD/%s/nogit-bin\"; mkdir -p \"$d\" && for t in sh rm mkdir tar sed; do "
			    "ln -sf \"$(command -v $t)\" \"$d/$t\"; done; [ ! -e \"$d/git\" ] && printf %%s \"$d\"",
		      g.top);
	assert_int_equal(nsh(&out, NULL, vz_buf_cstr(&cmd)), 0);
	snprintf(pathenv, sizeof(pathenv), "PATH=%s", vz_buf_cstr(&out));
	const char *env[] = { pathenv, NULL };
	o.env = env;
	remote_dir(dir, sizeof(dir), "nogit");
	assert_int_equal(deliver(dir, &o, &st, &e), 0);
	assert_int_equal(st.method, VZ_DELIVER_TAR);
	assert_int_equal(st.round_trips, 2);
	assert_non_null(strstr(st.note, "no git on the node"));
	/* the work tree, byte for byte, modes and symlink kept; no .git */
	vz_buf here = VZ_BUF_INIT(OUT_MAX), there = VZ_BUF_INIT(OUT_MAX);
	const char *files = "find . -path ./.git -prune -o -type f -print | LC_ALL=C sort | xargs -d '\\n' cksum; "
			    "readlink link; test -x bin/run.sh && echo exec";
	lsh(&here, "cd '%s' && %s", g.ws, files);
	assert_int_equal(nsh(&there, dir, files), 0);
	assert_string_equal(vz_buf_cstr(&here), vz_buf_cstr(&there));
	vz_buf_reset(&there);
	assert_int_equal(nsh(&there, dir, "test -e .git && echo has-git || echo no-git"), 0);
	assert_string_equal(vz_buf_cstr(&there), "no-git\n");
	vz_buf_free(&here);
	vz_buf_free(&there);
	vz_buf_free(&cmd);
	vz_buf_free(&out);
}

/* 7. malformed answers to the probe (a git on the node whose for-each-ref prints junk: bad hex,
 * wrong types, a stamp past int64, a 100 kB line, a commit this executor does not have): the
 * delivery hides nothing it cannot check, sends everything and the workspace is right. */
static void test_malformed_probe(void **state)
{
	char dir[512], pathenv[1200];
	vz_deliver_stats st;
	vz_err e = { 0 };
	vz_deliver_opts o = opts();
	vz_buf cmd = VZ_BUF_INIT(8192), out = VZ_BUF_INIT(8192);
	static const char z40[] = "0123456789abcdef0123456789abcdef01234567";
	vz_buf_printf(&cmd,
		      "d=\"$PWD/%s/junk-bin\"; mkdir -p \"$d\" && real=$(command -v git) && "
		      "printf '#!/bin/sh\\ncase \"$*\" in *for-each-ref*)\\n"
		      "echo \"zz commit refs/vinz/1/zz\"\\n"
		      "echo \"%s tree refs/vinz/1/%s\"\\n"
		      "echo \"%s commit refs/vinz/99999999999999999999999/%s\"\\n"
		      "echo \"%s commit refs/vinz/1/%s\"\\n"
		      "echo \"%s commit refs/vinz//%s\"\\n"
		      "head -c 100000 /dev/zero | tr \"\\\\000\" a; echo\\n"
		      "exit 0;;\\nesac\\nexec %%s \"$@\"\\n' \"$real\" > \"$d/git\" && chmod +x \"$d/git\" && "
		      "printf %%s \"$d:$PATH\"",
		      g.top, z40, z40, z40, z40, z40, z40, z40, z40);
	assert_int_equal(nsh(&out, NULL, vz_buf_cstr(&cmd)), 0);
	snprintf(pathenv, sizeof(pathenv), "PATH=%s", vz_buf_cstr(&out));
	const char *env[] = { pathenv, NULL };
	o.env = env;
	o.project = "example.org/malformed";
	remote_dir(dir, sizeof(dir), "junk");
	/* twice: the first makes the store, the second reads the junk as the store's keep-refs */
	assert_int_equal(deliver(dir, &o, &st, &e), 0);
	memset(&st, 0, sizeof(st));
	assert_int_equal(deliver(dir, &o, &st, &e), 0);
	assert_int_equal(st.method, VZ_DELIVER_GIT);
	assert_int_equal((long)st.objects, objects_since(""));
	check_same(dir);
	vz_buf_free(&cmd);
	vz_buf_free(&out);
}

/* 8. builds delivering at the same time, each on its own session, into one new node store
 * (shared nodes): every one succeeds. */
#define NCONC 3
typedef struct conc {
	char dir[512];
	int rc;
	vz_deliver_stats st;
	vz_err e;
} conc;

static void *conc_run(void *arg)
{
	conc *c = arg;
	vz_node_spec spec;
	vz_node *n = NULL;
	vz_deliver_opts o = opts();
	o.project = "example.org/concurrent";
	vz_test_sshd_spec(g.sshd, &spec);
	c->rc = vz_node_connect(&n, &spec, &c->e);
	if (c->rc == 0)
		c->rc = vz_deliver_repo(n, g.ws, c->dir, &o, &c->st, &c->e);
	vz_node_close(n);
	return NULL;
}

static void test_concurrent(void **state)
{
	conc c[NCONC];
	pthread_t t[NCONC];
	memset(c, 0, sizeof(c));
	for (int i = 0; i < NCONC; i++) {
		char name[32];
		snprintf(name, sizeof(name), "conc%d", i);
		remote_dir(c[i].dir, sizeof(c[i].dir), name);
		assert_int_equal(pthread_create(&t[i], NULL, conc_run, &c[i]), 0);
	}
	for (int i = 0; i < NCONC; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < NCONC; i++) {
		fprintf(stderr, "concurrent %d: rc %d objects %zu rebuilt %d %s\n", i, c[i].rc, c[i].st.objects,
			c[i].st.rebuilt, c[i].rc ? vz_err_msg(&c[i].e) : "");
		assert_int_equal(c[i].rc, 0);
		check_same(c[i].dir);
	}
}

/* 9. bad input is refused before anything runs; a pack over the cap is a clear error; a
 * canceled delivery runs nothing. */
static void test_bad_input(void **state)
{
	static const char *const bad[] = { "", "/abs/dir", "a/../b", "a//b", "./a", "-rf", "a/\nb", "a/-x" };
	vz_deliver_stats st;
	vz_deliver_opts o = opts();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vz_err e = { 0 };
		memset(&st, 0, sizeof(st));
		assert_int_equal(vz_deliver_repo(g.n, g.ws, bad[i], &o, &st, &e), VZ_EINVAL);
		assert_int_equal(st.round_trips, 0);
	}
	vz_err e = { 0 };
	o.project = NULL;
	assert_int_equal(vz_deliver_repo(g.n, g.ws, "x", &o, &st, &e), VZ_EINVAL);
	/* a fresh store needs everything, which is more than 1 KiB */
	char dir[512];
	vz_err e2 = { 0 };
	o = opts();
	snprintf(dir, sizeof(dir), "%s/toobig", g.top);
	o.pack_max = 1024;
	o.project = "example.org/empty"; /* another project: an empty store */
	assert_int_equal(vz_deliver_repo(g.n, g.ws, dir, &o, &st, &e2), VZ_ETOOBIG);
	assert_non_null(strstr(vz_err_msg(&e2), "pack_max"));
	/* canceled before it starts: nothing runs */
	vz_err e4 = { 0 };
	volatile int cancel = 1;
	o = opts();
	o.cancel = &cancel;
	memset(&st, 0, sizeof(st));
	assert_int_equal(vz_deliver_repo(g.n, g.ws, dir, &o, &st, &e4), VZ_ECANCELED);
	assert_int_equal(st.round_trips, 0);
	/* not a repository */
	vz_err e3 = { 0 };
	o = opts();
	assert_int_equal(vz_deliver_repo(g.n, g.tmp, dir, &o, &st, &e3), VZ_EIO);
	assert_non_null(strstr(vz_err_msg(&e3), "cannot open repository"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_and_same),
		cmocka_unit_test(test_descendant),
		cmocka_unit_test(test_other_dir),
		cmocka_unit_test(test_damaged_store),
		cmocka_unit_test(test_keep_bound_and_gc),
		cmocka_unit_test(test_no_git),
		cmocka_unit_test(test_malformed_probe),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
