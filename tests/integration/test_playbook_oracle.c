/* test_playbook_oracle: Ansible is the oracle. Every case in tests/playbooks/<case>/ is run by
 * ansible-playbook (json stdout callback) and by `vinz playbook --json` against the same real
 * loopback sshd, with two inventory hosts (h1, h2) on it, and two more (s1, s2, group "sudo") whose
 * login user has passwordless sudo, for become. Compared: the exit code; per task and
 * host the changed/failed/skipped/unreachable flags, rc and stdout (and per loop item); debug
 * messages; the stats; and the files left on the node under each runner's own base directory
 * (path, mode, content). Prints the agreement count and fails on any disagreement.
 * VZ_PB_CASES=a,b limits the cases; VZ_KEEP=1 keeps the temp dir. */
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "vz_buf.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"

static int agree, disagree;
static const char *only_case;

static void differ(const char *cs, const char *what, const char *a, const char *v)
{
	disagree++;
	printf("  DIFF %s: %s: ansible=%s vinz=%s\n", cs, what, a ? a : "(none)", v ? v : "(none)");
}

/* Each runner has its own base dir on the node: ".../node/ansible/..." and ".../node/vinz/..."
 * compare as the same path. */
static void normalize(char *s)
{
	static const char *const pats[] = { "/node/ansible/", "/node/vinz/" };
	for (int k = 0; s && k < 2; k++) {
		char *p;
		size_t pl = strlen(pats[k]);
		while ((p = strstr(s, pats[k]))) {
			memcpy(p, "/node/R/", 8);
			memmove(p + 8, p + pl, strlen(p + pl) + 1);
		}
	}
}

static void cmp_json(const char *cs, const char *what, const json_t *a, const json_t *v)
{
	char *sa = a ? json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char *sv = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	normalize(sa);
	normalize(sv);
	if ((!sa && !sv) || (sa && sv && !strcmp(sa, sv))) {
		agree++;
		free(sa);
		free(sv);
		return;
	}
	differ(cs, what, sa, sv);
	free(sa);
	free(sv);
}

static json_t *flag(const json_t *r, const char *k)
{
	return json_is_true(json_object_get(r, k)) ? json_true() : json_false();
}

/* The comparable part of one host's result. */
static json_t *essence(const json_t *r, const char *action)
{
	json_t *o = json_object();
	static const char *const flags[] = { "changed", "failed", "skipped", "unreachable" };
	for (size_t i = 0; i < 4; i++)
		json_object_set_new(o, flags[i], flag(r, flags[i]));
	if (json_object_get(r, "censored"))
		json_object_set_new(o, "censored", json_true());
	if (json_object_get(r, "unreachable") || json_object_get(r, "censored"))
		json_object_del(o, "failed"); /* Ansible drops it from censored results */
	if (json_is_true(json_object_get(r, "unreachable")))
		return o;
	if (json_object_get(r, "rc"))
		json_object_set(o, "rc", json_object_get(r, "rc"));
	if (json_object_get(r, "stdout") && strcmp(action, "raw"))
		json_object_set(o, "stdout", json_object_get(r, "stdout"));
	if (!strcmp(action, "debug") || !strcmp(action, "fail") || !strcmp(action, "assert")) {
		/* messages of templating errors are Ansible's prose; the fail/assert ones are the user's */
		if (json_object_get(r, "msg") && !json_is_true(json_object_get(r, "skipped")) &&
		    !(!strcmp(action, "debug") && json_is_true(json_object_get(r, "failed"))))
			json_object_set(o, "msg", json_object_get(r, "msg"));
		const char *k;
		json_t *x;
		if (!strcmp(action, "debug"))
			json_object_foreach((json_t *)r, k, x)
				if (strcmp(k, "msg") && strcmp(k, "changed") && strcmp(k, "failed") && strcmp(k, "action") &&
				    strncmp(k, "_ansible", 8) && strcmp(k, "skipped") && strcmp(k, "skip_reason") &&
				    strcmp(k, "false_condition"))
					json_object_set(o, k, x);
	}
	if (json_object_get(r, "attempts"))
		json_object_set(o, "attempts", json_object_get(r, "attempts"));
	json_t *items = json_object_get(r, "results");
	if (json_is_array(items)) {
		json_t *a = json_array();
		for (size_t i = 0; i < json_array_size(items); i++) {
			json_t *it = json_array_get(items, i), *e = essence(it, action);
			json_t *item = json_object_get(it, json_string_value(json_object_get(it, "ansible_loop_var")) ?: "item");
			/* an item that is a registered result: its own item names it */
			if (json_is_object(item) && json_object_get(item, "ansible_loop_var"))
				item = json_object_get(item, "item");
			json_object_set(e, "item", item);
			json_array_append_new(a, e);
		}
		json_object_set_new(o, "results", a);
	}
	return o;
}

static void cmp_docs(const char *cs, const json_t *a, const json_t *v)
{
	json_t *pa = json_object_get(a, "plays"), *pv = json_object_get(v, "plays");
	if (json_array_size(pa) != json_array_size(pv)) {
		char x[32], y[32];
		snprintf(x, sizeof(x), "%zu", json_array_size(pa));
		snprintf(y, sizeof(y), "%zu", json_array_size(pv));
		differ(cs, "number of plays", x, y);
	}
	for (size_t p = 0; p < json_array_size(pa) && p < json_array_size(pv); p++) {
		json_t *ta = json_object_get(json_array_get(pa, p), "tasks"), *tv = json_object_get(json_array_get(pv, p), "tasks");
		cmp_json(cs, "play name", json_object_get(json_object_get(json_array_get(pa, p), "play"), "name"),
			 json_object_get(json_object_get(json_array_get(pv, p), "play"), "name"));
		size_t n = json_array_size(ta) > json_array_size(tv) ? json_array_size(ta) : json_array_size(tv);
		for (size_t t = 0; t < n; t++) {
			json_t *xa = json_array_get(ta, t), *xv = json_array_get(tv, t);
			const char *na = json_string_value(json_object_get(json_object_get(xa, "task"), "name"));
			const char *nv = json_string_value(json_object_get(json_object_get(xv, "task"), "name"));
			char what[512];
			snprintf(what, sizeof(what), "play %zu task %zu (%s)", p, t, na ? na : nv ? nv : "?");
			if (!xa || !xv || strcmp(na ? na : "", nv ? nv : "")) {
				differ(cs, what, na, nv);
				continue;
			}
			agree++;
			json_t *ha = json_object_get(xa, "hosts"), *hv = json_object_get(xv, "hosts");
			const char *h;
			json_t *r;
			json_object_foreach(ha, h, r) {
				char w2[600];
				snprintf(w2, sizeof(w2), "%s host %s", what, h);
				json_t *rv = json_object_get(hv, h);
				const char *action = json_string_value(json_object_get(r, "action")) ?: "";
				json_t *ea = essence(r, action), *ev = rv ? essence(rv, action) : NULL;
				cmp_json(cs, w2, ea, ev);
				json_decref(ea);
				json_decref(ev);
			}
			json_object_foreach(hv, h, r)
				if (!json_object_get(ha, h)) {
					char w2[600];
					snprintf(w2, sizeof(w2), "%s host %s", what, h);
					differ(cs, w2, NULL, "a result");
				}
		}
	}
	cmp_json(cs, "stats", json_object_get(a, "stats"), json_object_get(v, "stats"));
}

/* Files under dir as {relpath: "MODE:content"}. */
static void scan(json_t *out, const char *dir, const char *rel, int depth)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s%s%s", dir, *rel ? "/" : "", rel);
	DIR *d = opendir(path);
	struct dirent *de;
	if (!d || depth > 20) {
		if (d)
			closedir(d);
		return;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char r2[4096], full[8192];
		snprintf(r2, sizeof(r2), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		snprintf(full, sizeof(full), "%s/%s", dir, r2);
		struct stat st;
		if (lstat(full, &st) != 0)
			continue;
		vz_buf b = VZ_BUF_INIT(1u << 20);
		vz_buf_printf(&b, "%04o:", (unsigned)(st.st_mode & 07777));
		if (S_ISDIR(st.st_mode)) {
			vz_buf_puts(&b, "dir");
			scan(out, dir, r2, depth + 1);
		} else if (S_ISLNK(st.st_mode)) {
			char tgt[4096];
			ssize_t n = readlink(full, tgt, sizeof(tgt) - 1);
			tgt[n > 0 ? n : 0] = 0;
			vz_buf_printf(&b, "link:%s", tgt);
		} else {
			vz_err e = { 0 };
			vz_buf c = VZ_BUF_INIT(1u << 20);
			vz_read_file(full, 1u << 20, &c, &e);
			vz_buf_add(&b, c.ptr ? c.ptr : "", c.len);
			vz_buf_free(&c);
		}
		json_object_set_new(out, r2, json_stringn(b.ptr, b.len));
		vz_buf_free(&b);
	}
	closedir(d);
}

static void mkdir_node(const char *path, uid_t uid, gid_t gid)
{
	vz_err e = { 0 };
	if (vz_mkdir_p(path, 0755, &e) == 0 && chown(path, uid, gid) != 0)
		fprintf(stderr, "chown %s: %s\n", path, strerror(errno));
}

static int run_capture(const char *const *argv, vz_buf *out)
{
	return vz_test_sshd_run(argv, out);
}

/* Appends the arguments both sides take: -i INV -e BVAR, the case's extra ones, the playbook;
 * then the NULL. Returns the new count (argv must have room for na + 6 + nextra). */
static size_t case_args(const char **argv, size_t na, const char *inv, const char *bvar,
			char *const *extra, size_t nextra, const char *pb)
{
	argv[na++] = "-i";
	argv[na++] = inv;
	argv[na++] = "-e";
	argv[na++] = bvar;
	for (size_t k = 0; k < nextra; k++)
		argv[na++] = extra[k];
	argv[na++] = pb;
	argv[na] = NULL;
	return na;
}

/* A waitpid status as an exit code: the code, or 128+signal. */
static int exit_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int case_selected(const char *name)
{
	if (!only_case)
		return 1;
	char buf[1024];
	snprintf(buf, sizeof(buf), ",%s,", only_case);
	char pat[300];
	snprintf(pat, sizeof(pat), ",%s,", name);
	return strstr(buf, pat) != NULL;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	vz_test_sshd *s = NULL;
	int rc = 1;
	char *tmp = vz_test_tmpdir("vz-pb-oracle");
	char inv[4096], kh[4096], cp[4096], cases_dir[4096];
	vz_buf out = VZ_BUF_INIT(64u << 20);

	only_case = getenv("VZ_PB_CASES");
	if (access("/usr/bin/ansible-playbook", X_OK) != 0 && system("command -v ansible-playbook >/dev/null") != 0) {
		/* the oracle is a declared dependency: without it this test cannot say anything */
		printf("FAIL: ansible-playbook is not installed (contrib/install-deps.sh installs ansible-core)\n");
		return 1;
	}
	/* two node users: h1, h2 log in as one without sudo rights, s1, s2 (group sudo) as one with
	 * passwordless sudo, for the become cases */
	if (vz_test_sshd_start_sudo(&s) != 0) {
		printf("FAIL: the become cases need a node user with sudo (run as root, with sudo installed: "
		       "contrib/install-deps.sh)\n");
		return 1;
	}
	const char *user = vz_test_sshd_user(s), *suser = vz_test_sshd_sudo_user(s);
	struct passwd *pw = getpwnam(user);
	uid_t uid = pw ? pw->pw_uid : getuid();
	gid_t gid = pw ? pw->pw_gid : getgid();
	pw = getpwnam(suser);
	uid_t suid = pw ? pw->pw_uid : getuid();
	gid_t sgid = pw ? pw->pw_gid : getgid();
	/* the node user reads the key only through sshd; the work dir must be reachable by it */
	char base[4096];
	snprintf(base, sizeof(base), "%s/node", tmp);
	mkdir_node(base, uid, gid);
	chmod(tmp, 0755);
	snprintf(inv, sizeof(inv), "%s/inventory.ini", tmp);
	FILE *f = fopen(inv, "w");
	if (!f)
		goto out;
	fprintf(f, "[nodes]\n");
	for (int i = 1; i <= 2; i++)
		fprintf(f, "h%d ansible_host=127.0.0.1 ansible_port=%d ansible_user=%s ansible_ssh_private_key_file=%s "
			   "ansible_python_interpreter=/usr/bin/python3\n", i, vz_test_sshd_port(s), user, vz_test_sshd_key(s));
	fprintf(f, "[nodes:vars]\ngroup_greeting=hello from the group\n[odd]\nh1\n"
		   "[broken]\nh3 ansible_host=127.0.0.1 ansible_port=1 ansible_user=%s ansible_ssh_private_key_file=%s\n",
		user, vz_test_sshd_key(s));
	fprintf(f, "[sudo]\n");
	for (int i = 1; i <= 2; i++)
		fprintf(f, "s%d ansible_host=127.0.0.1 ansible_port=%d ansible_user=%s ansible_ssh_private_key_file=%s "
			   "ansible_python_interpreter=/usr/bin/python3 ansible_remote_tmp=/tmp/.vz-ansible-tmp-%s\n", i,
			vz_test_sshd_port(s), suser, vz_test_sshd_key(s), suser); /* the shared one is the first user's */
	fclose(f);
	snprintf(kh, sizeof(kh), "%s", vz_test_sshd_known_hosts(s));
	snprintf(cp, sizeof(cp), "%s/cp", tmp);
	mkdir(cp, 0700);
	/* Ansible: json callback, strict host keys against the test's known_hosts, no retry files */
	char sshargs[8192];
	snprintf(sshargs, sizeof(sshargs), "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o ControlMaster=auto "
		 "-o ControlPersist=60s", kh);
	setenv("ANSIBLE_STDOUT_CALLBACK", "json", 1);
	setenv("ANSIBLE_HOST_KEY_CHECKING", "True", 1);
	setenv("ANSIBLE_SSH_ARGS", sshargs, 1);
	setenv("ANSIBLE_CONTROL_PATH_DIR", cp, 1);
	setenv("ANSIBLE_RETRY_FILES_ENABLED", "0", 1);
	setenv("ANSIBLE_NOCOLOR", "1", 1);
	setenv("ANSIBLE_PIPELINING", "1", 1); /* no file transfer (the test sshd has no sftp) */
	setenv("ANSIBLE_SSH_TRANSFER_METHOD", "piped", 1);
	setenv("ANSIBLE_DEPRECATION_WARNINGS", "0", 1);
	setenv("ANSIBLE_LOCALHOST_WARNING", "0", 1);
	setenv("ANSIBLE_REMOTE_TMP", "/tmp/.vz-ansible-tmp", 1);
	setenv("ANSIBLE_LOCAL_TEMP", tmp, 1);
	snprintf(cases_dir, sizeof(cases_dir), "%s/tests/playbooks", VZ_SOURCE_DIR);

	DIR *d = opendir(cases_dir);
	struct dirent *de;
	char *names[512];
	size_t nn = 0;
	while (d && (de = readdir(d)) && nn < 512)
		if (de->d_name[0] != '.' && case_selected(de->d_name))
			names[nn++] = strdup(de->d_name);
	if (d)
		closedir(d);
	qsort(names, nn, sizeof(*names), name_cmp);
	int ncases = 0;
	uint64_t total[2] = { 0, 0 };
	/* Ansible is the slow side: its runs go first, a few at a time, into files; each case then
	 * runs vinz and compares. Every case has its own directories, so nothing collides. */
	typedef struct ocase {
		char pb[9000];
		char *extra[16];
		size_t nextra;
		vz_buf args;
		pid_t pid;
		int status, done;
		uint64_t t0, ms;
		char outpath[4200];
	} ocase;
	ocase *oc = calloc(nn ? nn : 1, sizeof(*oc));
	size_t running = 0, maxpar = 3;
	for (size_t ci = 0; ci < nn && oc; ci++) {
		ocase *c = &oc[ci];
		char argsf[9000], bvar[9100];
		vz_err e = { 0 };
		snprintf(c->pb, sizeof(c->pb), "%s/%s/playbook.yml", cases_dir, names[ci]);
		c->done = 1;
		if (access(c->pb, R_OK) != 0)
			continue;
		snprintf(argsf, sizeof(argsf), "%s/%s/args", cases_dir, names[ci]);
		vz_buf_init(&c->args, 1u << 16);
		if (vz_read_file(argsf, 1u << 16, &c->args, &e) == 0 && c->args.ptr) {
			for (char *l = strtok(c->args.ptr, "\n"); l && c->nextra < 16; l = strtok(NULL, "\n"))
				c->extra[c->nextra++] = l;
		}
		for (int w = 0; w < 2; w++) {
			char bdir[9000], hd[9100];
			snprintf(bdir, sizeof(bdir), "%s/%s/%s", base, w ? "vinz" : "ansible", names[ci]);
			mkdir_node(bdir, uid, gid);
			for (int h = 1; h <= 2; h++) {
				snprintf(hd, sizeof(hd), "%s/h%d", bdir, h);
				mkdir_node(hd, uid, gid);
				snprintf(hd, sizeof(hd), "%s/s%d", bdir, h);
				mkdir_node(hd, suid, sgid);
			}
		}
		snprintf(bvar, sizeof(bvar), "base=%s/ansible/%s", base, names[ci]);
		snprintf(c->outpath, sizeof(c->outpath), "%s/%s.ansible.json", tmp, names[ci]);
		while (running >= maxpar) {
			int st;
			pid_t p = wait(&st);
			if (p < 0)
				break;
			for (size_t k = 0; k < ci; k++)
				if (oc[k].pid == p && !oc[k].done) {
					oc[k].done = 1;
					oc[k].status = exit_code(st);
					oc[k].ms = vz_mono_ms() - oc[k].t0;
					running--;
				}
		}
		const char *argv[40];
		size_t na = 0;
		/* a hung ansible-playbook ends as exit 124 with a clear mismatch, not a test timeout */
		argv[na++] = "timeout";
		argv[na++] = "-k";
		argv[na++] = "10";
		argv[na++] = "240";
		argv[na++] = "ansible-playbook";
		case_args(argv, na, inv, bvar, c->extra, c->nextra, c->pb);
		c->t0 = vz_mono_ms();
		c->pid = fork();
		if (c->pid == 0) {
			int fd = open(c->outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600), dn = open("/dev/null", O_RDONLY);
			if (fd < 0 || dn < 0 || dup2(dn, 0) < 0 || dup2(fd, 1) < 0)
				_exit(127);
			execvp(argv[0], (char *const *)argv);
			_exit(127);
		}
		if (c->pid > 0) {
			c->done = 0;
			running++;
		}
	}
	for (size_t ci = 0; ci < nn && oc; ci++) {
		const char *cs = names[ci];
		ocase *c = &oc[ci];
		if (access(c->pb, R_OK) != 0)
			continue;
		ncases++;
		int before = disagree;
		json_t *docs[2] = { NULL, NULL };
		int codes[2];
		uint64_t ms[2] = { 0, 0 };
		json_t *files[2];
		if (!c->done) {
			int st;
			if (waitpid(c->pid, &st, 0) == c->pid)
				c->status = exit_code(st);
			else
				c->status = -1;
			c->ms = vz_mono_ms() - c->t0;
			c->done = 1;
		}
		for (int w = 0; w < 2; w++) {
			char bdir[9000], bvar[9100];
			snprintf(bdir, sizeof(bdir), "%s/%s/%s", base, w ? "vinz" : "ansible", cs);
			vz_buf_reset(&out);
			if (w == 0) {
				vz_err e = { 0 };
				vz_read_file(c->outpath, 64u << 20, &out, &e);
				codes[0] = c->status;
				ms[0] = c->ms;
			} else {
				snprintf(bvar, sizeof(bvar), "base=%s", bdir);
				const char *argv[40];
				size_t na = 0;
				argv[na++] = VZ_BIN;
				argv[na++] = "playbook";
				argv[na++] = "--json";
				argv[na++] = "--known-hosts";
				argv[na++] = kh;
				case_args(argv, na, inv, bvar, c->extra, c->nextra, c->pb);
				uint64_t t0 = vz_mono_ms();
				codes[1] = run_capture(argv, &out);
				ms[1] = vz_mono_ms() - t0;
			}
			docs[w] = out.len ? json_loadb(out.ptr, out.len, 0, NULL) : NULL;
			if (out.len && !docs[w] && getenv("VZ_PB_DEBUG"))
				fprintf(stderr, "%s output is not JSON:\n%s\n", w ? "vinz" : "ansible", vz_buf_cstr(&out));
			files[w] = json_object();
			scan(files[w], bdir, "", 0);
		}
		char ca[16], cv[16];
		snprintf(ca, sizeof(ca), "%d", codes[0]);
		snprintf(cv, sizeof(cv), "%d", codes[1]);
		if (codes[0] == codes[1])
			agree++;
		else
			differ(cs, "exit code", ca, cv);
		if (docs[0] || docs[1]) {
			if (!docs[0] || !docs[1])
				differ(cs, "json output", docs[0] ? "a document" : NULL, docs[1] ? "a document" : NULL);
			else
				cmp_docs(cs, docs[0], docs[1]);
		}
		cmp_json(cs, "files left on the node", files[0], files[1]);
		printf("%s %s (exit %d; ansible %llu ms, vinz %llu ms)\n", disagree == before ? "ok  " : "FAIL", cs, codes[0],
		       (unsigned long long)ms[0], (unsigned long long)ms[1]);
		total[0] += ms[0];
		total[1] += ms[1];
		if (getenv("VZ_PB_DEBUG") && disagree != before) {
			for (int w = 0; w < 2; w++) {
				char *dd = docs[w] ? json_dumps(docs[w], JSON_INDENT(1)) : NULL;
				fprintf(stderr, "---- %s\n%s\n", w ? "vinz" : "ansible", dd ? dd : "(none)");
				free(dd);
			}
		}
		for (int w = 0; w < 2; w++) {
			json_decref(docs[w]);
			json_decref(files[w]);
		}
	}
	for (size_t ci = 0; ci < nn && oc; ci++) {
		if (!oc[ci].done && oc[ci].pid > 0)
			waitpid(oc[ci].pid, NULL, 0);
		vz_buf_free(&oc[ci].args);
	}
	free(oc);
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	printf("oracle: %d cases, %d comparisons agree, %d disagree (ansible-playbook %.1f s, vinz playbook %.1f s)\n",
	       ncases, agree, disagree, (double)total[0] / 1000, (double)total[1] / 1000);
	rc = disagree || ncases == 0 ? 1 : 0;
out:
	vz_buf_free(&out);
	vz_test_sshd_stop(s);
	if (getenv("VZ_KEEP"))
		printf("kept %s\n", tmp);
	else
		vz_test_rm(tmp);
	free(tmp);
	return rc;
}
