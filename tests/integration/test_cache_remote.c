/* The repository cache fetching from real servers on loopback: an OpenSSH sshd running
 * git-upload-pack as the node user (ssh://), and an HTTPS server (libmicrohttpd + GnuTLS) running
 * git http-backend with basic auth (https://). Host keys (plain, hashed, changed, unknown),
 * private keys (right, wrong), passwords (file, environment, wrong), CAs (right, other, none),
 * servers that are down, commits already cached (no connection at all), narrow and full fetches,
 * a damaged cache, and several threads sharing one cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <git2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vz_build.h"
#include "vz_config.h"
#include "vz_log.h"
#include "vz_test_githttp.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

#define NCHANGES 4
#define HTTP_USER "ci-bot"
#define HTTP_PASSWORD "s3cret-token-9f2"

typedef struct fx {
	char *dir, *cache, *repo;
	char *key, *kh, *ca; /* copies of the servers' files, in dir */
	vz_test_sshd *sshd;
	vz_test_githttp *http;
	char url[4400];
	vz_repo_cred cred;
	char commits[NCHANGES + 1][41]; /* commits[i]: refs/changes/i */
	int n;
} fx;

/* LeakSanitizer: libgit2 1.5's ssh transport never frees the known_hosts collection (and its
 * path) it makes on every connection, nor libssh2's list of auth methods after a refused key:
 * about 100 bytes per ssh connection, all allocated inside git_remote_connect_ext. Ours are
 * still reported. Full unwinding so the stacks reach through libgit2 (built without frame
 * pointers) to the frames named here. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:git_remote_connect_ext\nleak:libssh2_knownhost_init\nleak:libssh2_userauth_list\n";
}

/* ---- helpers ---- */

static void repo_commits(fx *f)
{
	git_repository *r = NULL;
	assert_int_equal(git_repository_open_bare(&r, f->repo), 0);
	for (int i = 1; i <= NCHANGES; i++) {
		char ref[64];
		git_oid oid;
		snprintf(ref, sizeof(ref), "refs/changes/%d", i);
		assert_int_equal(git_reference_name_to_id(&oid, r, ref), 0);
		git_oid_tostr(f->commits[i], 41, &oid);
	}
	git_repository_free(r);
}

/* The one cache directory under f->cache, or NULL when there is none yet. */
static char *the_cache(fx *f)
{
	DIR *d = opendir(f->cache);
	char *out = NULL;
	if (!d)
		return NULL;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n > 4 && strcmp(de->d_name + n - 4, ".git") == 0) {
			free(out);
			out = vz_path_join(f->cache, de->d_name);
		}
	}
	closedir(d);
	return out;
}

static int cache_has_commit(fx *f, const char *hex)
{
	char *c = the_cache(f);
	git_repository *r = NULL;
	git_odb *odb = NULL;
	git_oid oid;
	int has = 0;
	if (c && git_repository_open_bare(&r, c) == 0 && git_repository_odb(&odb, r) == 0 &&
	    git_oid_fromstr(&oid, hex) == 0)
		has = git_odb_exists(odb, &oid);
	git_odb_free(odb);
	git_repository_free(r);
	free(c);
	return has;
}

static int cache_has_ref(fx *f, const char *name)
{
	char *c = the_cache(f);
	git_repository *r = NULL;
	git_oid oid;
	int has = c && git_repository_open_bare(&r, c) == 0 && git_reference_name_to_id(&oid, r, name) == 0;
	git_repository_free(r);
	free(c);
	return has;
}

/* Checks out ref at commit (either may be NULL) into a new directory; with want_file, the
 * checkout must hold that file. Returns the vz code. */
static int co(fx *f, const char *ref, const char *commit, const char *want_file, vz_err *e)
{
	char dest[64], got[41] = "";
	snprintf(dest, sizeof(dest), "co-%d", f->n++);
	char *d = vz_path_join(f->dir, dest);
	vz_checkout_req req = { .cache_root = f->cache, .repo = f->url, .ref = ref, .commit = commit,
				.branch = "master", .dest = d, .cred = &f->cred };
	int rc = vz_workspace_checkout(&req, got, e);
	if (rc && getenv("VZ_TEST_LOG"))
		fprintf(stderr, "checkout %s %s: %s\n", ref ? ref : "-", commit ? commit : "-", vz_err_msg(e));
	if (rc == 0) {
		if (commit)
			assert_string_equal(got, commit);
		if (want_file) {
			char *p = vz_path_join(d, want_file);
			assert_int_equal(access(p, F_OK), 0);
			free(p);
		}
	}
	free(d);
	return rc;
}

static int co_change(fx *f, int i, vz_err *e)
{
	char ref[64], file[64];
	snprintf(ref, sizeof(ref), "refs/changes/%d", i);
	snprintf(file, sizeof(file), "change-%d", i);
	return co(f, ref, f->commits[i], file, e);
}


static char *slurp(const char *path)
{
	vz_buf b = VZ_BUF_INIT(1 << 20);
	vz_err e = { 0 };
	assert_int_equal(vz_read_file(path, b.max, &b, &e), 0);
	char *s = vz_xstrdup(vz_buf_cstr(&b));
	vz_buf_free(&b);
	return s;
}

/* ---- fixtures ---- */

static int setup_ssh(void **state)
{
	fx *f = vz_xcalloc(1, sizeof(*f));
	f->dir = vz_test_tmpdir("vz-cache-ssh");
	f->cache = vz_path_join(f->dir, "cache");
	if (vz_test_sshd_start(&f->sshd) != 0)
		return -1;
	/* the repository belongs to the node user, as on a git server, so git-upload-pack running
	 * as that user reads it without ownership complaints */
	f->repo = vz_path_join(vz_test_sshd_workdir(f->sshd), "p.git");
	vz_test_git_repo(f->repo, NCHANGES, NULL);
	const char *chown_argv[] = { "chown", "-R", vz_test_sshd_user(f->sshd), f->repo, NULL };
	if (geteuid() == 0 && vz_test_sshd_run(chown_argv, NULL) != 0)
		return -1;
	snprintf(f->url, sizeof(f->url), "ssh://%s@127.0.0.1:%d%s", vz_test_sshd_user(f->sshd),
		 vz_test_sshd_port(f->sshd), f->repo);
	/* copies: some tests stop the server, which removes its directory */
	f->key = vz_path_join(f->dir, "id_ed25519");
	f->kh = vz_path_join(f->dir, "known_hosts");
	char *k = slurp(vz_test_sshd_key(f->sshd)), *h = slurp(vz_test_sshd_known_hosts(f->sshd));
	vz_test_write(f->dir, "id_ed25519", k);
	vz_test_write(f->dir, "known_hosts", h);
	chmod(f->key, 0600);
	free(k);
	free(h);
	f->cred.connection = "review";
	f->cred.ssh_key = f->key;
	f->cred.known_hosts = f->kh;
	repo_commits(f);
	*state = f;
	return 0;
}

static char *pwfile;

static int setup_https(void **state)
{
	fx *f = vz_xcalloc(1, sizeof(*f));
	f->dir = vz_test_tmpdir("vz-cache-https");
	f->cache = vz_path_join(f->dir, "cache");
	f->repo = vz_path_join(f->dir, "repos/p.git");
	vz_test_git_repo(f->repo, NCHANGES, NULL);
	char *root = vz_path_join(f->dir, "repos");
	int rc = vz_test_githttp_start(&f->http, root, HTTP_USER, HTTP_PASSWORD);
	free(root);
	if (rc != 0)
		return -1;
	snprintf(f->url, sizeof(f->url), "https://127.0.0.1:%d/p.git", vz_test_githttp_port(f->http));
	vz_test_write(f->dir, "secrets/pw", HTTP_PASSWORD "\n");
	free(pwfile);
	pwfile = vz_path_join(f->dir, "secrets/pw");
	f->cred.connection = "review";
	f->cred.user = HTTP_USER;
	f->cred.password_file = pwfile;
	f->ca = vz_path_join(f->dir, "ca.pem");
	char *ca = slurp(vz_test_githttp_ca(f->http));
	vz_test_write(f->dir, "ca.pem", ca);
	free(ca);
	f->cred.ca_file = f->ca;
	repo_commits(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	if (!f)
		return 0;
	vz_test_sshd_stop(f->sshd);
	vz_test_githttp_stop(f->http);
	vz_test_rm(f->dir);
	free(f->dir);
	free(f->cache);
	free(f->repo);
	free(f->key);
	free(f->kh);
	free(f->ca);
	free(f);
	free(pwfile);
	pwfile = NULL;
	return 0;
}

/* ---- ssh ---- */

static void test_ssh_fetch_and_checkout(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	assert_int_equal(co_change(f, 1, &e), 0);
	assert_true(cache_has_commit(f, f->commits[1]));
	/* narrow: only the wanted ref came, not the other changes nor every ref */
	assert_false(cache_has_commit(f, f->commits[2]));
	assert_false(cache_has_ref(f, "refs/vinz/all/heads/master"));
	/* a ref without a commit: whatever it points at */
	assert_int_equal(co(f, "refs/changes/3", NULL, "change-3", &e), 0);
	assert_false(cache_has_commit(f, f->commits[4]));
}

static void test_ssh_hashed_known_hosts(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	char *kh = vz_path_join(f->dir, "hashed_known_hosts");
	assert_int_equal(vz_test_sshd_write_known_hosts(f->sshd, vz_test_sshd_host_key_line(f->sshd), kh), 0);
	const char *argv[] = { "ssh-keygen", "-q", "-H", "-f", kh, NULL };
	assert_int_equal(vz_test_sshd_run(argv, NULL), 0);
	char *text = slurp(kh);
	assert_true(vz_startswith(text, "|1|"));
	assert_null(strstr(text, "127.0.0.1"));
	f->cred.known_hosts = kh;
	assert_int_equal(co_change(f, 1, &e), 0);
	free(text);
	free(kh);
}

static void test_ssh_changed_host_key(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	char fp[128];
	vz_test_sshd_fingerprint(vz_test_sshd_host_pub(f->sshd), fp, sizeof(fp));
	/* known_hosts records another key for this server */
	char *other = vz_path_join(f->dir, "other_host_key");
	assert_int_equal(vz_test_sshd_keygen(other), 0);
	char *otherpub = vz_path_join(f->dir, "other_host_key.pub");
	char *line = slurp(otherpub);
	line[strcspn(line, "\n")] = '\0';
	char *kh = vz_path_join(f->dir, "changed_known_hosts");
	assert_int_equal(vz_test_sshd_write_known_hosts(f->sshd, line, kh), 0);
	f->cred.known_hosts = kh;
	assert_int_equal(co_change(f, 1, &e), VZ_EHOSTKEY);
	assert_non_null(strstr(e.msg, "HOST KEY CHANGED"));
	assert_non_null(strstr(e.msg, fp));
	assert_non_null(strstr(e.msg, "ED25519"));
	assert_non_null(strstr(e.msg, "ssh-keyscan"));
	assert_non_null(strstr(e.msg, "connection 'review'"));
	/* nothing was fetched */
	assert_false(cache_has_commit(f, f->commits[1]));
	assert_false(cache_has_ref(f, "refs/vinz/fetch"));
	free(kh);
	free(line);
	free(otherpub);
	free(other);
}

static void test_ssh_unknown_host(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	char fp[128];
	vz_test_sshd_fingerprint(vz_test_sshd_host_pub(f->sshd), fp, sizeof(fp));
	char *kh = vz_path_join(f->dir, "empty_known_hosts");
	vz_test_write(f->dir, "empty_known_hosts", "# nothing here\n");
	f->cred.known_hosts = kh;
	assert_int_equal(co_change(f, 1, &e), VZ_EHOSTKEY);
	assert_non_null(strstr(e.msg, "not known"));
	assert_non_null(strstr(e.msg, fp));
	assert_non_null(strstr(e.msg, "ssh-keyscan -p"));
	assert_false(cache_has_commit(f, f->commits[1]));
	/* a known_hosts file that does not exist: the same */
	vz_err_clear(&e);
	char *missing = vz_path_join(f->dir, "missing_known_hosts");
	f->cred.known_hosts = missing;
	assert_int_equal(co_change(f, 1, &e), VZ_EHOSTKEY);
	assert_non_null(strstr(e.msg, fp));
	/* no known_hosts configured at all: refused before any connection */
	vz_err_clear(&e);
	f->cred.known_hosts = NULL;
	assert_int_equal(co_change(f, 1, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "'known_hosts'"));
	/* no credentials at all for an ssh URL: the same */
	vz_err_clear(&e);
	char dest[64];
	snprintf(dest, sizeof(dest), "co-none");
	char *d = vz_path_join(f->dir, dest), got[41];
	vz_checkout_req req = { .cache_root = f->cache, .repo = f->url, .ref = "refs/changes/1", .dest = d };
	assert_int_equal(vz_workspace_checkout(&req, got, &e), VZ_EINVAL);
	assert_false(cache_has_commit(f, f->commits[1]));
	free(d);
	free(missing);
	free(kh);
}

static void test_ssh_wrong_key(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	char *key = vz_path_join(f->dir, "not_authorized");
	assert_int_equal(vz_test_sshd_keygen(key), 0);
	f->cred.ssh_key = key;
	uint64_t t0 = vz_mono_ms();
	assert_int_equal(co_change(f, 1, &e), VZ_EAUTH);
	/* refused once, then given up: no loop offering the same key */
	assert_true(vz_mono_ms() - t0 < 30000);
	assert_non_null(strstr(e.msg, "refused the key"));
	assert_non_null(strstr(e.msg, key));
	assert_false(cache_has_commit(f, f->commits[1]));
	/* a key file that cannot be read: said before connecting */
	vz_err_clear(&e);
	f->cred.ssh_key = "/nonexistent/key";
	assert_int_equal(co_change(f, 1, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "/nonexistent/key"));
	free(key);
}

static void test_ssh_cached_commit_needs_no_server(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	uint64_t t0 = vz_mono_ms();
	assert_int_equal(co_change(f, 1, &e), 0);
	uint64_t t1 = vz_mono_ms();
	/* the server is gone: a commit already in the cache is checked out without it */
	vz_test_sshd_stop(f->sshd);
	f->sshd = NULL;
	uint64_t t2 = vz_mono_ms();
	assert_int_equal(co_change(f, 1, &e), 0);
	fprintf(stderr, "checkout over ssh (connect, fetch, check out): %llu ms; from the cache: %llu ms\n",
		(unsigned long long)(t1 - t0), (unsigned long long)(vz_mono_ms() - t2));
	/* one that is not there needs the server, which is down */
	assert_int_equal(co_change(f, 2, &e), VZ_ECONNECT);
	assert_non_null(strstr(e.msg, f->url));
	/* and the cache still serves */
	vz_err_clear(&e);
	assert_int_equal(co_change(f, 1, &e), 0);
}

static void test_ssh_full_fetch_fallback(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	/* the commit is not reachable from the ref given: every ref is fetched to find it */
	assert_int_equal(co(f, "refs/changes/1", f->commits[2], "change-2", &e), 0);
	assert_true(cache_has_ref(f, "refs/vinz/all/changes/2"));
	assert_true(cache_has_ref(f, "refs/vinz/all/heads/master"));
	/* a commit that is nowhere */
	assert_int_equal(co(f, "refs/changes/1", "0123456789012345678901234567890123456789", NULL, &e), VZ_ENOTFOUND);
	/* a ref that is not there */
	vz_err_clear(&e);
	assert_int_equal(co(f, "refs/changes/99", NULL, NULL, &e), VZ_ENOTFOUND);
}


static void test_ssh_damaged_cache_rebuilt(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	assert_int_equal(co_change(f, 1, &e), 0);
	char *c = the_cache(f);
	assert_non_null(c);
	assert_true(vz_test_truncate_packs(c) > 0); /* fetched objects arrive as packs */
	/* a stale lock left by a killed process too */
	char *lock = vz_path_join(c, "refs/vinz/fetch.lock");
	vz_test_write(c, "refs/vinz/fetch.lock", "");
	assert_int_equal(co_change(f, 2, &e), 0);
	assert_int_equal(access(lock, F_OK), -1);
	assert_int_equal(co_change(f, 1, &e), 0);
	free(lock);
	free(c);
}

typedef struct worker {
	fx *f;
	int change;
	char dest[64];
	int rc;
	vz_err e;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	char ref[64], got[41];
	snprintf(ref, sizeof(ref), "refs/changes/%d", w->change);
	char *d = vz_path_join(w->f->dir, w->dest);
	vz_checkout_req req = { .cache_root = w->f->cache, .repo = w->f->url, .ref = ref,
				.commit = w->f->commits[w->change], .branch = "master", .dest = d, .cred = &w->f->cred };
	w->rc = vz_workspace_checkout(&req, got, &w->e);
	if (w->rc == 0 && strcmp(got, w->f->commits[w->change]) != 0)
		w->rc = -100;
	free(d);
	return NULL;
}

static void run_workers(fx *f, int rounds)
{
	enum { N = 6 };
	for (int round = 0; round < rounds; round++) {
		worker w[N];
		pthread_t t[N];
		for (int i = 0; i < N; i++) {
			memset(&w[i], 0, sizeof(w[i]));
			w[i].f = f;
			w[i].change = 1 + i % NCHANGES;
			snprintf(w[i].dest, sizeof(w[i].dest), "conc-%d-%d", round, i);
			assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
		}
		for (int i = 0; i < N; i++) {
			pthread_join(t[i], NULL);
			if (w[i].rc)
				fprintf(stderr, "worker %d: %d %s\n", i, w[i].rc, vz_err_msg(&w[i].e));
			assert_int_equal(w[i].rc, 0);
		}
	}
}

static void test_ssh_concurrent_checkouts(void **state)
{
	/* first round: every thread fetches into the same new cache; second: all cached */
	uint64_t t0 = vz_mono_ms();
	run_workers(*state, 2);
	fprintf(stderr, "12 concurrent checkouts over ssh (6 fetching, 6 cached): %llu ms\n",
		(unsigned long long)(vz_mono_ms() - t0));
}

/* A build names its connection; the executor finds the keys in its own site configuration. */
static void on_emit(void *ctx, vz_msg_type type, json_t *body)
{
	json_t **result = ctx;
	if (type == VZ_MSG_RESULT) {
		json_decref(*result);
		*result = json_incref(body);
	}
	json_decref(body);
}

static json_t *build(fx *f, const vz_config *site, const char *uuid, const char *connection)
{
	char *work = vz_path_join(f->dir, "work");
	json_t *req = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:[s],s:i}", "build", uuid,
				"attempt", 1, "job", "j", "project", "p", "ref", "refs/changes/1", "commit",
				f->commits[1], "repo", f->url, "branch", "master", "connection", connection, "node",
				"name", "local-node", "connection", "local", "commands", "test -f change-1", "timeout",
				60);
	vz_build_env env = { .work_dir = work, .executor = "x", .site = site };
	json_t *result = NULL;
	volatile int cancel = 0;
	vz_build_run(req, &env, &cancel, on_emit, &result);
	json_decref(req);
	free(work);
	assert_non_null(result);
	return result;
}

static void test_ssh_build_finds_connection_by_name(void **state)
{
	fx *f = *state;
	vz_buf doc = VZ_BUF_INIT(1 << 16), diags = VZ_BUF_INIT(1 << 16);
	vz_err e = { 0 };
	vz_config *site = NULL;
	vz_buf_printf(&doc, "connections:\n  - name: review\n    baseurl: 'ssh://%s@127.0.0.1:%d/srv'\n"
		      "    ssh_key: id_ed25519\n    known_hosts: known_hosts\n",
		      vz_test_sshd_user(f->sshd), vz_test_sshd_port(f->sshd));
	char *fname = vz_path_join(f->dir, "site.yaml");
	vz_test_write(f->dir, "site.yaml", vz_buf_cstr(&doc));
	/* relative key paths: next to the file, where setup_ssh put the copies */
	assert_int_equal(vz_config_load(&site, fname, &diags, &e), 0);
	json_t *r = build(f, site, "b1", "review");
	assert_string_equal(json_string_value(json_object_get(r, "result")), "SUCCESS");
	assert_string_equal(json_string_value(json_object_get(r, "commit")), f->commits[1]);
	json_decref(r);
	/* a connection this executor does not know: no keys, so the ssh fetch is refused (the
	 * cache is emptied first: a cached commit would need no fetch, and no keys) */
	char *cache = vz_path_join(f->dir, "work/cache");
	vz_test_rm(cache);
	free(cache);
	r = build(f, site, "b2", "elsewhere");
	assert_string_equal(json_string_value(json_object_get(r, "result")), "ERROR");
	assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "known_hosts"));
	json_decref(r);
	vz_config_free(site);
	free(fname);
	vz_buf_free(&doc);
	vz_buf_free(&diags);
}

/* ---- https ---- */

static void test_https_fetch_and_checkout(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	assert_int_equal(co_change(f, 1, &e), 0);
	assert_true(vz_test_githttp_served(f->http) > 0);
	assert_false(cache_has_commit(f, f->commits[2]));
	/* the password from an environment variable instead of a file */
	setenv("VZ_TEST_GIT_TOKEN", HTTP_PASSWORD, 1);
	f->cred.password_file = NULL;
	f->cred.password_env = "VZ_TEST_GIT_TOKEN";
	assert_int_equal(co_change(f, 2, &e), 0);
	unsetenv("VZ_TEST_GIT_TOKEN");
	/* cached: no request at all */
	int before = vz_test_githttp_requests(f->http);
	uint64_t t0 = vz_mono_ms();
	assert_int_equal(co_change(f, 2, &e), 0);
	fprintf(stderr, "checkout over https: %d requests; from the cache: %llu ms, 0 requests\n", before,
		(unsigned long long)(vz_mono_ms() - t0));
	assert_int_equal(vz_test_githttp_requests(f->http), before);
	/* an unset variable is said plainly */
	assert_int_equal(co_change(f, 3, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "VZ_TEST_GIT_TOKEN"));
}

static void test_https_wrong_password(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	vz_test_write(f->dir, "secrets/pw", "not-the-password\n");
	assert_int_equal(co_change(f, 1, &e), VZ_EAUTH);
	assert_non_null(strstr(e.msg, "refused the password of user " HTTP_USER));
	assert_null(strstr(e.msg, "not-the-password"));
	/* offered once: the first request, then one with the password, then given up */
	assert_true(vz_test_githttp_requests(f->http) <= 3);
	assert_int_equal(vz_test_githttp_served(f->http), 0);
	assert_false(cache_has_commit(f, f->commits[1]));
	/* no credentials at all */
	vz_err_clear(&e);
	f->cred.user = NULL;
	f->cred.password_file = NULL;
	assert_int_equal(co_change(f, 1, &e), VZ_EAUTH);
	assert_non_null(strstr(e.msg, "password_file"));
}

static void test_https_untrusted_certificate(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	/* another CA */
	char *other = vz_path_join(f->dir, "other-ca.pem");
	assert_int_equal(vz_test_githttp_other_ca(other), 0);
	f->cred.ca_file = other;
	assert_int_equal(co_change(f, 1, &e), VZ_EHOSTKEY);
	assert_non_null(strstr(e.msg, "not trusted"));
	assert_non_null(strstr(e.msg, other));
	/* no CA file: the system's CAs do not know this one either */
	vz_err_clear(&e);
	f->cred.ca_file = NULL;
	assert_int_equal(co_change(f, 1, &e), VZ_EHOSTKEY);
	assert_non_null(strstr(e.msg, "ca_file"));
	/* nothing was asked nor fetched: TLS stopped before any HTTP request */
	assert_int_equal(vz_test_githttp_requests(f->http), 0);
	assert_false(cache_has_commit(f, f->commits[1]));
	/* the right CA still works */
	vz_err_clear(&e);
	f->cred.ca_file = f->ca;
	assert_int_equal(co_change(f, 1, &e), 0);
	free(other);
}

static void test_https_server_down(void **state)
{
	fx *f = *state;
	vz_err e = { 0 };
	vz_test_githttp_stop(f->http);
	f->http = NULL;
	assert_int_equal(co_change(f, 1, &e), VZ_ECONNECT);
	assert_non_null(strstr(e.msg, f->url));
}

static void test_https_concurrent_checkouts(void **state)
{
	run_workers(*state, 1);
}

int main(void)
{
	vz_err e = { 0 };
	vz_log_set_level(getenv("VZ_TEST_LOG") ? VZ_LOG_DEBUG : VZ_LOG_ERROR);
	if (vz_workspace_global_init(&e) != 0) {
		fprintf(stderr, "%s\n", vz_err_msg(&e));
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ssh_fetch_and_checkout, setup_ssh, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_hashed_known_hosts, setup_ssh, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_changed_host_key, setup_ssh, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_unknown_host, setup_ssh, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_wrong_key, setup_ssh, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_cached_commit_needs_no_server, setup_ssh, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_full_fetch_fallback, setup_ssh, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_damaged_cache_rebuilt, setup_ssh, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_concurrent_checkouts, setup_ssh, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_build_finds_connection_by_name, setup_ssh, teardown),
		cmocka_unit_test_setup_teardown(test_https_fetch_and_checkout, setup_https, teardown),
		cmocka_unit_test_setup_teardown(test_https_wrong_password, setup_https, teardown),
		cmocka_unit_test_setup_teardown(test_https_untrusted_certificate, setup_https, teardown),
		cmocka_unit_test_setup_teardown(test_https_server_down, setup_https, teardown),
		cmocka_unit_test_setup_teardown(test_https_concurrent_checkouts, setup_https, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	vz_workspace_global_cleanup();
	return rc;
}
