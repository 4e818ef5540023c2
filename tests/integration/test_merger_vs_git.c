/* vz_merger against git 2.39 itself: histories are built with the git CLI in a temp dir, merged by
 * `git merge-tree --write-tree` (ort) and by vinz in-process, and the trees / conflict verdicts
 * compared: a table of hand-made cases (renames, rename/delete, directory renames, mode changes,
 * delete vs modify, binaries, symlinks, gitlinks, add/add, criss-cross, empty trees), a
 * deterministic pseudo-random set (VZ_MERGE_CASES, default 150), and the other modes against
 * git cherry-pick / merge --squash / rebase / merge -s resolve. Prints agreement counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <git2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "vz_buf.h"
#include "vz_merger.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

static char *g_tmp;

#define sh vz_test_sh
#define first_id vz_test_first_id

/* ---- one comparison ----------------------------------------------------------------------- */

enum { CFG_DEFAULT, CFG_PATIENCE, CFG_LIBGIT2, NCFG };
static const char *cfg_names[NCFG] = { "walk+myers (default)", "walk+patience", "libgit2 full merge (no tree walk)" };

struct verdict {
	int clean;     /* 1 clean, 0 conflict, -1 error */
	char tree[41];
	unsigned full; /* full merges used */
	int dir_rename; /* git reported a directory rename (ort's "file location" conflict) */
};

static struct verdict git_verdict(const char *repo, const char *ours, const char *theirs)
{
	struct verdict v = { -1, "", 0, 0 };
	vz_buf out = VZ_BUF_INIT(1 << 20);
	int rc = sh(&out, "git -C %s merge-tree --write-tree %s %s", repo, ours, theirs);
	v.dir_rename = out.ptr && strstr(out.ptr, "CONFLICT (file location)") != NULL;
	if (rc == 0) {
		v.clean = 1;
		first_id(&out, v.tree);
	} else if (rc == 1) {
		v.clean = 0;
	}
	vz_buf_free(&out);
	return v;
}

static struct verdict vinz_verdict(const char *repo, int cfg, vz_merge_mode mode, const char *ours, const char *theirs)
{
	struct verdict v = { -1, "", 0, 0 };
	vz_merger *m = NULL;
	vz_err e = { 0 };
	vz_merge_result r;
	assert_int_equal(vz_merger_open(&m, repo, &e), 0);
	vz_merger_set_options(m, cfg != CFG_LIBGIT2, cfg == CFG_PATIENCE);
	vz_merge_req req = { mode, ours, theirs, NULL, VZ_MERGE_DEFAULT_DATE, 0 };
	if (vz_merger_apply(m, &req, &r, &e) == 0) {
		v.clean = r.merged;
		vz_strlcpy(v.tree, r.tree, sizeof(v.tree));
		v.full = r.full_merges;
	} else {
		fprintf(stderr, "  vinz error: %s\n", vz_err_msg(&e));
	}
	vz_merge_result_clear(&r);
	vz_merger_free(m);
	return v;
}

static void tree_of_commit(const char *repo, const char *commit, char id[41])
{
	vz_buf out = VZ_BUF_INIT(4096);
	id[0] = '\0';
	if (sh(&out, "git -C '%s' rev-parse '%s^{tree}'", repo, commit) == 0)
		first_id(&out, id);
	vz_buf_free(&out);
}

static int agree(const struct verdict *g, const struct verdict *v)
{
	if (g->clean < 0 || v->clean < 0)
		return 0;
	if (g->clean != v->clean)
		return 0;
	return !g->clean || strcmp(g->tree, v->tree) == 0;
}

static const char *verdict_str(const struct verdict *v)
{
	return v->clean == 1 ? "clean" : v->clean == 0 ? "conflict" : "error";
}

/* ---- hand-made cases ------------------------------------------------------------------------ */

#define PREAMBLE                                                                                   \
	"set -e; c() { git add -A && git commit -q --allow-empty -m \"$1\"; };"                    \
	"lines() { seq 1 ${2:-20} | sed \"s/^/$1 line /\"; };"                                     \
	"sub() { sed -i \"$2s/.*/$3/\" \"$1\"; };"                                                 \
	"base() { c base; git branch -f base; };"                                                  \
	"side() { git checkout -q -f -B \"$1\" \"${2:-base}\"; };"

struct gcase {
	const char *name;
	const char *script; /* makes branches ours and theirs */
	int expect_agree;   /* 0: a documented difference (docs/merging.md) */
	int expect_clean;   /* git's verdict, as a check on the case itself: 1 clean, 0 conflict */
};

static const struct gcase cases[] = {
	{ "clean, same file", "lines f > f; base; side ours; sub f 2 O2; c o; side theirs; sub f 18 T18; c t", 1, 1 },
	{ "clean, other files and dirs",
	  "mkdir -p a/b c; lines x > a/b/x; lines y > c/y; lines z > z; base; side ours; sub a/b/x 3 O; echo n > a/n; c o;"
	  "side theirs; sub c/y 4 T; rm z; c t", 1, 1 },
	{ "content conflict", "lines f > f; base; side ours; sub f 5 O; c o; side theirs; sub f 5 T; c t", 1, 0 },
	{ "adjacent lines", "lines f > f; base; side ours; sub f 5 O; c o; side theirs; sub f 6 T; c t", 1, 0 },
	{ "same change both sides", "lines f > f; base; side ours; sub f 5 S; c o; side theirs; sub f 5 S; c t", 1, 1 },
	{ "rename one side, modify other",
	  "lines f > f; base; side ours; git mv f g; c o; side theirs; sub f 7 T; c t", 1, 1 },
	{ "rename+modify one side, modify other",
	  "lines f > f; base; side ours; git mv f g; sub g 1 O; c o; side theirs; sub f 19 T; c t", 1, 1 },
	{ "rename into dir, modify other",
	  "mkdir a; lines f > a/f; base; side ours; mkdir b; git mv a/f b/f; c o; side theirs; sub a/f 3 T; c t", 1, 1 },
	{ "rename one side only", "lines f > f; lines k > k; base; side ours; git mv f g; c o; side theirs; sub k 3 T; c t", 1, 1 },
	{ "rename/rename same name",
	  "lines f > f; base; side ours; git mv f g; c o; side theirs; git mv f g; c t", 1, 1 },
	{ "rename/rename different names",
	  "lines f > f; base; side ours; git mv f g; c o; side theirs; git mv f h; c t", 1, 0 },
	{ "rename/delete", "lines f > f; lines k > k; base; side ours; git mv f g; c o; side theirs; git rm -q f; c t", 1, 0 },
	{ "delete vs modify", "lines f > f; base; side ours; git rm -q f; c o; side theirs; sub f 3 T; c t", 1, 0 },
	{ "delete vs unchanged", "lines f > f; lines k > k; base; side ours; git rm -q f; c o; side theirs; sub k 3 T; c t", 1, 1 },
	{ "delete both", "lines f > f; lines k > k; base; side ours; git rm -q f; c o; side theirs; git rm -q f; sub k 3 T; c t", 1, 1 },
	{ "add/add same", "lines f > f; base; side ours; lines n > n; c o; side theirs; lines n > n; c t", 1, 1 },
	{ "add/add different", "lines f > f; base; side ours; lines n > n; c o; side theirs; lines m > n; c t", 1, 0 },
	{ "mode change vs content", "lines f > f; base; side ours; chmod +x f; c o; side theirs; sub f 3 T; c t", 1, 1 },
	{ "mode change both + content both",
	  "lines f > f; base; side ours; chmod +x f; sub f 2 O; c o; side theirs; chmod +x f; sub f 18 T; c t", 1, 1 },
	{ "binary one side", "printf 'a\\0b' > bin; lines f > f; base; side ours; printf 'a\\0c' > bin; c o; side theirs; sub f 2 T; c t", 1, 1 },
	{ "binary both", "printf 'a\\0b' > bin; base; side ours; printf 'a\\0c' > bin; c o; side theirs; printf 'a\\0d' > bin; c t", 1, 0 },
	{ "symlink retarget vs other", "ln -s t1 l; lines f > f; base; side ours; ln -sfn t2 l; c o; side theirs; sub f 3 T; c t", 1, 1 },
	{ "symlink both retarget", "ln -s t1 l; base; side ours; ln -sfn t2 l; c o; side theirs; ln -sfn t3 l; c t", 1, 0 },
	{ "file becomes symlink vs modify", "lines f > f; base; side ours; rm f; ln -s x f; c o; side theirs; sub f 3 T; c t", 1, 0 },
	{ "file to dir vs other", "lines f > f; lines k > k; base; side ours; rm f; mkdir f; lines g > f/g; c o; side theirs; sub k 2 T; c t", 1, 1 },
	{ "gitlink one side",
	  "lines f > f; git add f; git update-index --add --cacheinfo 160000,1111111111111111111111111111111111111111,sub; git commit -qm base;"
	  "git branch -f base; side ours; git update-index --cacheinfo 160000,2222222222222222222222222222222222222222,sub;"
	  "git commit -qm o; side theirs; sub f 2 T; git add f; git commit -qm t", 1, 1 },
	{ "gitlink both",
	  "lines f > f; git add f; git update-index --add --cacheinfo 160000,1111111111111111111111111111111111111111,sub; git commit -qm base;"
	  "git branch -f base; side ours; git update-index --cacheinfo 160000,2222222222222222222222222222222222222222,sub;"
	  "git commit -qm o; side theirs; git update-index --cacheinfo 160000,3333333333333333333333333333333333333333,sub;"
	  "git commit -qm t", 1, 0 },
	{ "empty base tree", "base; side ours; lines a > a; c o; side theirs; lines b > b; c t", 1, 1 },
	{ "to empty tree", "lines a > a; lines b > b; base; side ours; git rm -q a; c o; side theirs; git rm -q b; c t", 1, 1 },
	{ "deep nested, different subtrees",
	  "for d in p/q/r p/q/s p/t u; do mkdir -p $d; lines x > $d/f; done; base; side ours; sub p/q/r/f 2 O; c o;"
	  "side theirs; sub p/q/s/f 2 T; sub u/f 9 T; c t", 1, 1 },
	{ "fast-forward", "lines f > f; base; side ours; side theirs; sub f 2 T; c t", 1, 1 },
	{ "already up to date", "lines f > f; base; side theirs; side ours; sub f 2 O; c o", 1, 1 },
	{ "criss-cross clean",
	  "lines f > f; lines k > k; base; side a; sub f 2 A; c a; side b; sub f 18 B; c b;"
	  "side ours a; git merge -q --no-edit b; sub k 3 O; c o;"
	  "side theirs b; git merge -q --no-edit a; sub k 17 T; c t", 1, 1 },
	{ "criss-cross conflict",
	  "lines f > f; base; side a; sub f 2 A; c a; side b; sub f 18 B; c b;"
	  "side ours a; git merge -q --no-edit b; sub f 10 O; c o;"
	  "side theirs b; git merge -q --no-edit a; sub f 10 T; c t", 1, 0 },
	{ "directory rename vs add into it",
	  "mkdir a; lines x > a/x; lines y > a/y; base; side ours; git mv a b; c o; side theirs; lines n > a/n; c t", 1, 0 },
	{ "directory rename vs add into a subdirectory",
	  "mkdir -p a/s; lines x > a/x; lines y > a/s/y; base; side ours; git mv a b; c o; side theirs; lines n > a/s/n; c t", 1, 0 },
	{ "directory rename vs modify inside it",
	  "mkdir a; lines x > a/x; lines y > a/y; base; side ours; git mv a b; c o; side theirs; sub a/x 3 T; c t", 1, 1 },
	{ "directory rename vs rename into it",
	  "mkdir a; lines x > a/x; lines y > a/y; lines z > z; base; side ours; git mv a b; c o; side theirs; git mv z a/z; c t", 1, 0 },
	{ "directory renamed the same way on both sides, add",
	  "mkdir a; lines x > a/x; lines y > a/y; base; side ours; git mv a b; c o; side theirs; git mv a b; lines n > b/n; c t", 1, 1 },
	{ "directory split in two vs add into it",
	  "mkdir a; lines x > a/x; lines y > a/y; base; side ours; mkdir b c; git mv a/x b/x; git mv a/y c/y; c o;"
	  "side theirs; lines n > a/n; c t", 1, 0 },
	{ "directory kept (one file stays) vs add into it",
	  "mkdir a; lines x > a/x; lines y > a/y; lines w > a/w; base; side ours; mkdir b; git mv a/x b/x; git mv a/y b/y; c o;"
	  "side theirs; lines n > a/n; c t", 1, 1 },
	{ "nested directory rename (trailing parts kept) vs add",
	  "mkdir -p a/k; lines x > a/k/x; lines y > a/k/y; base; side ours; mkdir -p z; git mv a z/a; c o;"
	  "side theirs; lines n > a/k/n; c t", 1, 0 },
	{ "crlf and no trailing newline",
	  "printf 'a\\r\\nb\\r\\nc\\r\\nd\\r\\ne' > f; base; side ours; printf 'A\\r\\nb\\r\\nc\\r\\nd\\r\\ne' > f; c o;"
	  "side theirs; printf 'a\\r\\nb\\r\\nc\\r\\nd\\r\\nE' > f; c t", 1, 1 },
};

static char *new_repo(const char *name)
{
	char *dir = vz_path_join(g_tmp, name);
	assert_int_equal(sh(NULL, "rm -rf %s && git init -q -b master %s", dir, dir), 0);
	return dir;
}

static void test_cases_vs_git(void **state)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);
	unsigned agreed[NCFG] = { 0 }, walked = 0, unexpected = 0;
	printf("# %-40s %-9s %s\n", "case", "git", "vinz (default / patience / libgit2-only)");
	for (size_t i = 0; i < n; i++) {
		char *repo = new_repo("case");
		int rc = sh(NULL, "cd %s && " PREAMBLE "%s", repo, cases[i].script);
		if (rc != 0)
			fail_msg("case '%s': the script failed (%d)", cases[i].name, rc);
		struct verdict g = git_verdict(repo, "ours", "theirs"), v[NCFG];
		for (int k = 0; k < NCFG; k++) {
			v[k] = vinz_verdict(repo, k, VZ_MERGE_MERGE, "ours", "theirs");
			agreed[k] += agree(&g, &v[k]);
		}
		walked += v[CFG_DEFAULT].full == 0;
		printf("# %-40s %-9s %-8s %-8s %-8s%s\n", cases[i].name, verdict_str(&g), agree(&g, &v[0]) ? "agree" : "DIFFER",
		       agree(&g, &v[1]) ? "agree" : "DIFFER", agree(&g, &v[2]) ? "agree" : "DIFFER",
		       v[CFG_DEFAULT].full ? "" : "  (tree walk only)");
		if (g.clean != cases[i].expect_clean) {
			printf("#   git gave %s, the case expects %s\n", verdict_str(&g), cases[i].expect_clean ? "clean" : "conflict");
			unexpected++;
		}
		if (agree(&g, &v[0]) != cases[i].expect_agree) {
			printf("#   unexpected: %s (vinz %s %s, git %s %s)\n", cases[i].expect_agree ? "disagreement" : "agreement",
			       verdict_str(&v[0]), v[0].tree, verdict_str(&g), g.tree);
			unexpected++;
		}
		vz_test_rm(repo);
		free(repo);
	}
	for (int k = 0; k < NCFG; k++)
		printf("# cases: %s agrees with git on %u/%zu\n", cfg_names[k], agreed[k], n);
	printf("# cases: %u/%zu merged by the tree walk alone\n", walked, n);
	assert_int_equal(unexpected, 0);
}

/* ---- pseudo-random histories ------------------------------------------------------------------ */

#define MAXF 40
#define MAXL 48

struct mfile {
	char path[64];
	int line[MAXL];
	int n;
	int exec;
};

struct model {
	struct mfile f[MAXF];
	int n;
};

static uint64_t g_rng;
static int next_id;

static unsigned rnd(unsigned n)
{
	g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)((g_rng >> 33) % n);
}

static const char *dirs[] = { "", "a/", "a/b/", "c/", "d/e/" };

/* A path no file of m has, into out; bounded: gives up after 1000 tries (out unchanged). */
static void new_path(struct model *m, char *out, size_t n)
{
	char cand[64];
	for (int tries = 0; tries < 1000; tries++) {
		snprintf(cand, sizeof(cand), "%sf%u", dirs[rnd(5)], rnd(60));
		int taken = 0;
		for (int i = 0; i < m->n; i++)
			if (!strcmp(m->f[i].path, cand))
				taken = 1;
		if (!taken) {
			vz_strlcpy(out, cand, n);
			return;
		}
	}
}

static void new_file(struct model *m)
{
	if (m->n >= MAXF)
		return;
	struct mfile *f = &m->f[m->n];
	f->path[0] = '\0';
	new_path(m, f->path, sizeof(f->path));
	if (!f->path[0])
		return;
	m->n++;
	f->n = 10 + (int)rnd(8);
	for (int i = 0; i < f->n; i++)
		f->line[i] = next_id++;
	f->exec = 0;
}

/* Applies one random operation; sets *dir_rename when it renamed a directory. */
static void mutate(struct model *m, int *dir_rename)
{
	if (!m->n) {
		new_file(m);
		return;
	}
	struct mfile *f = &m->f[rnd((unsigned)m->n)];
	unsigned op = rnd(100);
	if (op < 35) { /* modify a line */
		f->line[rnd((unsigned)f->n)] = next_id++;
	} else if (op < 45) { /* insert a line */
		if (f->n < MAXL) {
			int at = (int)rnd((unsigned)f->n + 1);
			memmove(&f->line[at + 1], &f->line[at], sizeof(int) * (size_t)(f->n - at));
			f->line[at] = next_id++;
			f->n++;
		}
	} else if (op < 52) { /* delete a line */
		if (f->n > 2) {
			int at = (int)rnd((unsigned)f->n);
			memmove(&f->line[at], &f->line[at + 1], sizeof(int) * (size_t)(f->n - at - 1));
			f->n--;
		}
	} else if (op < 60) { /* delete the file */
		*f = m->f[--m->n];
	} else if (op < 70) {
		new_file(m);
	} else if (op < 80) { /* rename */
		new_path(m, f->path, sizeof(f->path));
	} else if (op < 88) { /* rename and modify */
		new_path(m, f->path, sizeof(f->path));
		f->line[rnd((unsigned)f->n)] = next_id++;
	} else if (op < 94) {
		f->exec = !f->exec;
	} else { /* rename a directory: every file under it moves */
		const char *d = dirs[1 + rnd(4)];
		char nd[16];
		snprintf(nd, sizeof(nd), "n%u/", rnd(3));
		for (int i = 0; i < m->n; i++) {
			if (vz_startswith(m->f[i].path, d)) {
				char np[64];
				snprintf(np, sizeof(np), "%s%s", nd, m->f[i].path + strlen(d));
				vz_strlcpy(m->f[i].path, np, sizeof(m->f[i].path));
				*dir_rename = 1;
			}
		}
	}
}

/* Writes the model as a commit (parent may be NULL) and returns its id in id. */
static void commit_model(const char *repo, const struct model *m, const char *parent, char id[41])
{
	vz_buf out = VZ_BUF_INIT(1 << 20);
	assert_int_equal(sh(NULL, "cd %s && find . -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +", repo), 0);
	for (int i = 0; i < m->n; i++) {
		vz_buf content = VZ_BUF_INIT(1 << 20);
		for (int j = 0; j < m->f[i].n; j++)
			vz_buf_printf(&content, "line %d\n", m->f[i].line[j]);
		vz_test_write(repo, m->f[i].path, vz_buf_cstr(&content));
		if (m->f[i].exec) {
			char *p = vz_path_join(repo, m->f[i].path);
			chmod(p, 0755);
			free(p);
		}
		vz_buf_free(&content);
	}
	assert_int_equal(sh(&out, "cd %s && git add -A && git commit-tree $(git write-tree) %s%s -m x", repo,
			    parent ? "-p " : "", parent ? parent : ""),
			 0);
	first_id(&out, id);
	assert_int_equal(strlen(id), 40);
	vz_buf_free(&out);
}

static void test_random_vs_git(void **state)
{
	int64_t ncases = 150;
	const char *env = getenv("VZ_MERGE_CASES");
	if (env && vz_parse_i64(env, 1, 100000, &ncases))
		ncases = 150;
	char *repo = new_repo("random");
	unsigned agreed[NCFG] = { 0 }, conflicts = 0, walked = 0, unexplained = 0, dirren = 0, gitdr = 0;
	g_rng = 0x5eed5eedULL;
	next_id = 1;
	for (int64_t c = 0; c < ncases; c++) {
		struct model base = { .n = 0 }, ours, theirs;
		int nfiles = 3 + (int)rnd(8), dr = 0;
		for (int i = 0; i < nfiles; i++)
			new_file(&base);
		ours = base;
		theirs = base;
		int k1 = 1 + (int)rnd(3), k2 = 1 + (int)rnd(3);
		for (int i = 0; i < k1; i++)
			mutate(&ours, &dr);
		for (int i = 0; i < k2; i++)
			mutate(&theirs, &dr);
		char bid[41], oid[41], tid[41];
		commit_model(repo, &base, NULL, bid);
		commit_model(repo, &ours, bid, oid);
		commit_model(repo, &theirs, bid, tid);
		struct verdict g = git_verdict(repo, oid, tid), v[NCFG];
		conflicts += g.clean == 0;
		dirren += dr;
		gitdr += g.dir_rename;
		for (int k = 0; k < NCFG; k++) {
			v[k] = vinz_verdict(repo, k, VZ_MERGE_MERGE, oid, tid);
			agreed[k] += agree(&g, &v[k]);
		}
		walked += v[0].full == 0;
		if (!agree(&g, &v[0])) {
			printf("# random case %d differs: git %s %s, vinz %s %s (libgit2-only %s, %u full)%s (base %s ours %s theirs %s)\n", (int)c,
			       verdict_str(&g), g.tree, verdict_str(&v[0]), v[0].tree, agree(&g, &v[CFG_LIBGIT2]) ? "agrees" : "differs", v[0].full, g.dir_rename ? " [git: directory rename]" : "", bid, oid, tid);
			unexplained++;
		}
	}
	for (int k = 0; k < NCFG; k++)
		printf("# random: %s agrees with git on %u/%d (git: %u conflicts; %u cases rename a directory)\n", cfg_names[k],
		       agreed[k], (int)ncases, conflicts, dirren);
	printf("# random: %u/%d merged by the tree walk alone; git reported a directory rename in %u\n", walked,
	       (int)ncases, gitdr);
	if (!getenv("VZ_KEEP"))
		vz_test_rm(repo);
	free(repo);
	/* every kind of difference the generator can produce (directory renames among them) is handled */
	assert_int_equal(unexplained, 0);
}

/* ---- a real repository's history ------------------------------------------------------------- */

/* Replays every two-parent merge commit of a real repository: git merge-tree --write-tree P1 P2
 * against vinz merging P2 onto P1. VZ_REPLAY_REPO names the repository (any clone; nothing is
 * written but objects vinz creates); the default is this source tree's own history. VZ_REPLAY_MAX
 * caps the merges replayed (default 2000). Requires >= 99.5% agreement. */
static void test_real_history(void **state)
{
	(void)state;
	const char *repo = getenv("VZ_REPLAY_REPO");
	char src[1200];
	if (!repo) {
		snprintf(src, sizeof(src), "%s", VZ_SOURCE_DIR);
		repo = src;
	}
	vz_buf out = VZ_BUF_INIT(64u << 20);
	int64_t max = 2000;
	const char *mx = getenv("VZ_REPLAY_MAX");
	if (mx && vz_parse_i64(mx, 1, 1000000, &max))
		max = 2000;
	if (sh(&out, "git -C '%s' rev-list --all --min-parents=2 --max-parents=2 --parents -n %lld", repo, (long long)max) != 0) {
		printf("# real history: %s is not a git repository with history here; skipped\n", repo);
		vz_buf_free(&out);
		return;
	}
	char *git_dir = NULL;
	vz_buf gd = VZ_BUF_INIT(4096);
	assert_int_equal(sh(&gd, "cd '%s' && cd \"$(git rev-parse --git-common-dir)\" && pwd", repo), 0);
	char *real = vz_xstrdup(vz_buf_cstr(&gd));
	real[strcspn(real, "\n")] = '\0';
	vz_buf_free(&gd);
	/* a bare clone sharing the objects (alternates): what vinz writes goes there, not into repo */
	git_dir = vz_path_join(g_tmp, "replay.git");
	assert_int_equal(sh(NULL, "rm -rf '%s' && git clone -q --bare --shared --no-tags '%s' '%s' && git -C '%s' fetch -q '%s' "
			     "'+refs/*:refs/*'", git_dir, real, git_dir, git_dir, real), 0);
	free(real);
	unsigned total = 0, agreed = 0, conflicts = 0, recorded = 0;
	char *save = NULL;
	char *text = vz_xstrdup(out.ptr ? vz_buf_cstr(&out) : "");
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char m[41], p1[41], p2[41];
		if (strlen(line) != 3 * 40 + 2)
			continue;
		memcpy(m, line, 40);
		memcpy(p1, line + 41, 40);
		memcpy(p2, line + 82, 40);
		m[40] = p1[40] = p2[40] = '\0';
		struct verdict g = git_verdict(git_dir, p1, p2);
		struct verdict v = vinz_verdict(git_dir, CFG_DEFAULT, VZ_MERGE_MERGE, p1, p2);
		total++;
		conflicts += g.clean == 0;
		if (agree(&g, &v)) {
			agreed++;
		} else {
			printf("# real history: merge %s (%s + %s) differs: git %s %s, vinz %s %s\n", m, p1, p2, verdict_str(&g),
			       g.tree, verdict_str(&v), v.tree);
		}
		if (g.clean == 1) {
			char t[41];
			tree_of_commit(git_dir, m, t);
			recorded += strcmp(t, g.tree) == 0;
		}
	}
	printf("# real history of %s: vinz agrees with git merge-tree on %u/%u merge commits (%.2f%%); git conflicts on %u;"
	       " %u recorded merges have exactly git's clean tree\n",
	       repo, agreed, total, total ? 100.0 * agreed / total : 100.0, conflicts, recorded);
	vz_test_rm(git_dir);
	free(git_dir);
	free(text);
	vz_buf_free(&out);
	assert_true(total == 0 || agreed * 1000 >= total * 995);
}

/* ---- the other modes against git doing the same operation ------------------------------------- */

static void tree_of(const char *repo, const char *rev, char id[41])
{
	vz_buf out = VZ_BUF_INIT(4096);
	assert_int_equal(sh(&out, "git -C %s rev-parse '%s^{tree}'", repo, rev), 0);
	first_id(&out, id);
	vz_buf_free(&out);
}

static int count_revs(const char *repo, const char *range)
{
	vz_buf out = VZ_BUF_INIT(4096);
	assert_int_equal(sh(&out, "git -C %s rev-list --count %s", repo, range), 0);
	int64_t n = -1;
	while (out.len && (out.ptr[out.len - 1] == '\n'))
		out.ptr[--out.len] = '\0';
	assert_int_equal(vz_parse_i64(vz_buf_cstr(&out), 0, 1000000, &n), 0);
	vz_buf_free(&out);
	return (int)n;
}

static void apply(const char *repo, vz_merge_mode mode, const char *onto, const char *change, int64_t date,
		  vz_merge_result *r)
{
	vz_merger *m = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_merger_open(&m, repo, &e), 0);
	vz_merge_req req = { mode, onto, change, NULL, date, 1 };
	int rc = vz_merger_apply(m, &req, r, &e);
	if (rc)
		fail_msg("vinz %s: %s", vz_merge_mode_name(mode), vz_err_msg(&e));
	vz_merger_free(m);
}

static void test_modes_vs_git(void **state)
{
	char *repo = new_repo("modes");
	char gt[41];
	vz_merge_result r;
	/* master; change c1 (one commit, modifies f), c2 on master~ (two commits, rename + modify),
	 * applied (the same patch as one already on master), mc (a merge commit) */
	assert_int_equal(sh(NULL, "cd %s && " PREAMBLE
			    "lines f > f; lines k > k; base; side c1; sub f 3 C1; c c1;"
			    "side c2; git mv k k2; c c2a; sub k2 15 C2; c c2b;"
			    "side master; sub f 19 M; c m1; git cherry-pick c1; git branch -f applied c1;"
			    "side side1; lines s > s; c s1; side mc c1; git merge -q --no-edit side1; git checkout -q master",
			    repo),
			 0);

	/* cherry-pick: git cherry-pick c2 (tip commit only) onto master */
	apply(repo, VZ_MERGE_CHERRY_PICK, "master", "c2", VZ_MERGE_DEFAULT_DATE, &r);
	assert_int_equal(r.merged, 1);
	assert_int_equal(sh(NULL, "cd %s && git checkout -q -f --detach master && git cherry-pick --keep-redundant-commits c2", repo), 0);
	tree_of(repo, "HEAD", gt);
	assert_string_equal(r.tree, gt);
	assert_int_equal(count_revs(repo, r.commit), count_revs(repo, "master") + 1);
	vz_merge_result_clear(&r);

	/* cherry-pick of an already applied change: no new commit */
	apply(repo, VZ_MERGE_CHERRY_PICK, "master", "applied", VZ_MERGE_DEFAULT_DATE, &r);
	assert_int_equal(r.merged, 1);
	char master[41];
	vz_buf out = VZ_BUF_INIT(4096);
	assert_int_equal(sh(&out, "git -C %s rev-parse master", repo), 0);
	first_id(&out, master);
	assert_string_equal(r.commit, master);
	vz_merge_result_clear(&r);

	/* cherry-pick of a merge commit: merged (two parents) like git merge -s resolve */
	apply(repo, VZ_MERGE_CHERRY_PICK, "master", "mc", VZ_MERGE_DEFAULT_DATE, &r);
	assert_int_equal(r.merged, 1);
	assert_int_equal(sh(NULL, "cd %s && git checkout -q -f --detach master && git merge -q --no-edit -s resolve mc", repo), 0);
	tree_of(repo, "HEAD", gt);
	assert_string_equal(r.tree, gt);
	assert_int_equal(sh(&out, "git -C %s rev-list --parents -n1 %s | wc -w", repo, r.commit), 0);
	assert_string_equal(vz_buf_cstr(&out), "3\n");
	vz_merge_result_clear(&r);

	/* squash-merge: git merge --squash c2 + commit: same tree, one parent */
	apply(repo, VZ_MERGE_SQUASH, "master", "c2", VZ_MERGE_DEFAULT_DATE, &r);
	assert_int_equal(r.merged, 1);
	assert_int_equal(sh(NULL, "cd %s && git checkout -q -f --detach master && git merge -q --squash c2 && git commit -qm sq", repo), 0);
	tree_of(repo, "HEAD", gt);
	assert_string_equal(r.tree, gt);
	assert_int_equal(sh(&out, "git -C %s rev-list --parents -n1 %s | wc -w", repo, r.commit), 0);
	assert_string_equal(vz_buf_cstr(&out), "2\n");
	/* files: the change's own files, as Zuul lists them */
	assert_int_equal(r.nfiles, 2);
	assert_string_equal(r.files[0], "k");
	assert_string_equal(r.files[1], "k2");
	vz_merge_result_clear(&r);

	/* rebase: git rebase master on c2: same tree, same number of commits on top of master */
	apply(repo, VZ_MERGE_REBASE, "master", "c2", VZ_MERGE_DEFAULT_DATE, &r);
	assert_int_equal(r.merged, 1);
	assert_int_equal(sh(NULL, "cd %s && git checkout -q -f --detach c2 && git rebase -q master", repo), 0);
	tree_of(repo, "HEAD", gt);
	assert_string_equal(r.tree, gt);
	{
		vz_buf range = VZ_BUF_INIT(256);
		vz_buf_printf(&range, "master..%s", r.commit);
		assert_int_equal(count_revs(repo, range.ptr), count_revs(repo, "master..HEAD"));
		vz_buf_free(&range);
	}
	vz_merge_result_clear(&r);

	/* rebase of a change with an already-applied commit: git drops it */
	apply(repo, VZ_MERGE_REBASE, "master", "applied", VZ_MERGE_DEFAULT_DATE, &r);
	assert_int_equal(r.merged, 1);
	assert_string_equal(r.commit, master);
	vz_merge_result_clear(&r);

	/* merge-resolve: no rename detection, so rename vs modify conflicts, as git merge -s resolve */
	assert_int_equal(sh(NULL, "cd %s && " PREAMBLE "side r1 master; sub k 2 R; c r1", repo), 0);
	apply(repo, VZ_MERGE_RESOLVE, "r1", "c2", VZ_MERGE_DEFAULT_DATE, &r);
	int git_rc = sh(NULL, "cd %s && git checkout -q -f --detach r1 && git merge -q --no-edit -s resolve c2", repo);
	assert_int_not_equal(git_rc, 0);
	assert_int_equal(r.merged, 0);
	assert_true(r.nconflicts >= 1);
	vz_merge_result_clear(&r);
	sh(NULL, "cd %s && git merge --abort; git reset -q --hard", repo);
	apply(repo, VZ_MERGE_MERGE, "r1", "c2", VZ_MERGE_DEFAULT_DATE, &r);
	assert_int_equal(r.merged, 1); /* with renames: clean */
	vz_merge_result_clear(&r);

	/* merge and merge-resolve agree with git merge when clean, incl. fast-forward */
	apply(repo, VZ_MERGE_RESOLVE, "c1", "side1", VZ_MERGE_DEFAULT_DATE, &r);
	assert_int_equal(sh(NULL, "cd %s && git checkout -q -f --detach c1 && git merge -q --no-edit -s resolve side1", repo), 0);
	tree_of(repo, "HEAD", gt);
	assert_string_equal(r.tree, gt);
	vz_merge_result_clear(&r);
	apply(repo, VZ_MERGE_MERGE, "base", "c1", VZ_MERGE_DEFAULT_DATE, &r);
	assert_int_equal(sh(&out, "git -C %s rev-parse c1", repo), 0);
	assert_memory_equal(r.commit, out.ptr, 40);
	assert_string_equal(r.note, "fast-forward");
	vz_merge_result_clear(&r);

	/* a conflict names the paths */
	assert_int_equal(sh(NULL, "cd %s && " PREAMBLE "side x1 base; sub f 3 X; c x1", repo), 0);
	apply(repo, VZ_MERGE_MERGE, "x1", "c1", VZ_MERGE_DEFAULT_DATE, &r);
	assert_int_equal(r.merged, 0);
	assert_int_equal(r.nconflicts, 1);
	assert_string_equal(r.conflicts[0], "f");
	vz_merge_result_clear(&r);

	vz_buf_free(&out);
	vz_test_rm(repo);
	free(repo);
}

static void test_deterministic_and_no_refs(void **state)
{
	char *repo = new_repo("det");
	char *repo2 = new_repo("det2");
	vz_buf refs1 = VZ_BUF_INIT(1 << 16), refs2 = VZ_BUF_INIT(1 << 16);
	assert_int_equal(sh(NULL, "cd %s && " PREAMBLE
			    "lines f > f; base; side c1; sub f 3 C1; c c1; side c2; sub f 15 C2; c c2; side c3; lines n > n; c c3;"
			    "git checkout -q --detach base",
			    repo),
			 0);
	/* a second, separate copy of the same history */
	assert_int_equal(sh(NULL, "rm -rf %s && git clone -q --mirror %s/.git %s", repo2, repo, repo2), 0);
	assert_int_equal(sh(&refs1, "cd %s && git for-each-ref && git rev-parse HEAD && ls .git && git status --porcelain", repo), 0);
	vz_merge_mode modes[] = { VZ_MERGE_MERGE, VZ_MERGE_RESOLVE, VZ_MERGE_CHERRY_PICK, VZ_MERGE_SQUASH, VZ_MERGE_REBASE };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		vz_merge_result a, b, c, d;
		apply(repo, modes[i], "c1", "c2", 1700000000, &a);
		apply(repo, modes[i], "c1", "c2", 1700000000, &b);
		apply(repo2, modes[i], "c1", "c2", 1700000000, &c);
		apply(repo, modes[i], "c1", "c2", 1700000001, &d);
		assert_int_equal(a.merged, 1);
		assert_string_equal(a.commit, b.commit);
		assert_string_equal(a.commit, c.commit);
		assert_string_equal(a.tree, d.tree);
		assert_string_not_equal(a.commit, d.commit);
		vz_merge_result_clear(&a);
		vz_merge_result_clear(&b);
		vz_merge_result_clear(&c);
		vz_merge_result_clear(&d);
	}
	assert_int_equal(sh(&refs2, "cd %s && git for-each-ref && git rev-parse HEAD && ls .git && git status --porcelain", repo), 0);
	assert_string_equal(vz_buf_cstr(&refs1), vz_buf_cstr(&refs2));
	vz_buf_free(&refs1);
	vz_buf_free(&refs2);
	vz_test_rm(repo);
	vz_test_rm(repo2);
	free(repo);
	free(repo2);
}

static int setup(void **state)
{
	g_tmp = vz_test_tmpdir("vz-merger");
	/* git must not read the user's configuration; dates fixed for reproducible histories */
	setenv("HOME", g_tmp, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_AUTHOR_NAME", "t", 1);
	setenv("GIT_AUTHOR_EMAIL", "t@vinz.invalid", 1);
	setenv("GIT_COMMITTER_NAME", "t", 1);
	setenv("GIT_COMMITTER_EMAIL", "t@vinz.invalid", 1);
	setenv("GIT_AUTHOR_DATE", "1600000000 +0000", 1);
	setenv("GIT_COMMITTER_DATE", "1600000000 +0000", 1);
	vz_err e = { 0 };
	if (vz_workspace_global_init(&e))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	vz_workspace_global_cleanup();
	if (getenv("VZ_KEEP"))
		printf("# kept %s\n", g_tmp);
	else
		vz_test_rm(g_tmp);
	free(g_tmp);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases_vs_git),
		cmocka_unit_test(test_random_vs_git),
		cmocka_unit_test(test_modes_vs_git),
		cmocka_unit_test(test_deterministic_and_no_refs),
		cmocka_unit_test(test_real_history),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
