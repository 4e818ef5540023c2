/* A build's log directory to the scheduler's log store (vz_build on a local node, a real git
 * repository with the job's playbooks): what the playbooks put under zuul.executor.log_root
 * (text, binary, an empty file, nested directories) arrives as log_file messages that reassemble
 * to exactly the files, the result lists them with their sizes, symlinks are not followed (and
 * listed as left out),
 * job-output.json holds a record of every playbook of the build (run and post-run), and files
 * past the build's log limit are left out and listed in vinz-log-files-cut.txt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "vz_build.h"
#include "vz_testutil.h"
#include "vz_util.h"
#include "vz_workspace.h"

static char *g_tmp, *g_repo;

#define PB(name, text) " printf -- '" text "' > pb/" name ";"

static int setup(void **state)
{
	(void)state;
	vz_err e = { 0 };
	assert_int_equal(vz_workspace_global_init(&e), 0);
	g_tmp = vz_test_tmpdir("vz-buildlogs");
	g_repo = vz_path_join(g_tmp, "p.git");
	assert_int_equal(vz_test_sh(NULL,
		"set -e; cd %s; git init -q -b main w; cd w; git config user.email t@t; git config user.name t; mkdir pb;"
		PB("run.yaml", "- hosts: all\\n  tasks:\\n"
		   "    - shell: mkdir -p {{ zuul.executor.log_root }}/sub/dir && echo hello > {{ zuul.executor.log_root }}/a.txt"
		   " && head -c 100000 /dev/urandom > {{ zuul.executor.log_root }}/sub/dir/b.bin"
		   " && true > {{ zuul.executor.log_root }}/empty && ln -s /etc/passwd {{ zuul.executor.log_root }}/link\\n")
		PB("post.yaml", "- hosts: all\\n  tasks:\\n    - debug: {msg: post}\\n")
		" git add -A; git commit -qm base; cd ..; git clone -q --bare w %s", g_tmp, g_repo), 0);
	/* playbooks for the secrets case, written as they are (no shell quoting in the way) */
	char *pbdir = vz_path_join(g_tmp, "w/pb");
	vz_test_write(pbdir, "secret.yaml",
		      "- hosts: all\n  tasks:\n"
		      "    - shell: printf 'pw=%s\\n' \"$PW\"; echo {{ creds.password | length }}\n"
		      "      environment: {PW: \"{{ creds.password }}\"}\n");
	vz_test_write(pbdir, "nosecret.yaml",
		      "- hosts: all\n  tasks:\n    - debug: {msg: \"later={{ creds | default('not-given') }}\"}\n");
	free(pbdir);
	assert_int_equal(vz_test_sh(NULL, "set -e; cd %s/w; git add -A; git commit -qm secrets; git push -q %s main", g_tmp,
				    g_repo), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vz_test_rm(g_tmp);
	free(g_tmp);
	free(g_repo);
	vz_workspace_global_cleanup();
	return 0;
}

typedef struct sink {
	vz_buf bufs[16]; /* the reassembled files, by name */
	vz_buf log;      /* the streamed job-output.txt */
	char names[16][256];
	int n;
	json_t *result;
	int bad;        /* a chunk out of order or past its size */
} sink;

static void emit(void *ctx, vz_msg_type type, json_t *body)
{
	sink *s = ctx;
	if (type == VZ_MSG_LOG_FILE) {
		const char *path = json_string_value(json_object_get(body, "path"));
		long long off = json_integer_value(json_object_get(body, "offset"));
		long long size = json_integer_value(json_object_get(body, "size"));
		const char *data = json_string_value(json_object_get(body, "data"));
		int i = 0;
		while (i < s->n && strcmp(s->names[i], path) != 0)
			i++;
		if (i == s->n && s->n < 16) {
			vz_strlcpy(s->names[s->n], path, sizeof(s->names[0]));
			vz_buf_init(&s->bufs[s->n], 1u << 24);
			s->n++;
		}
		size_t dl = strlen(data);
		unsigned char *raw = malloc(dl / 4 * 3 + 4);
		int n = dl ? EVP_DecodeBlock(raw, (const unsigned char *)data, (int)dl) : 0;
		n -= dl && data[dl - 1] == '=' ? (dl > 1 && data[dl - 2] == '=' ? 2 : 1) : 0;
		if (i < s->n) {
			if ((size_t)off != s->bufs[i].len || off + n > size)
				s->bad = 1;
			vz_buf_add(&s->bufs[i], (const char *)raw, (size_t)n);
		}
		free(raw);
	} else if (type == VZ_MSG_LOG) {
		vz_buf_add(&s->log, json_string_value(json_object_get(body, "data")),
			   json_string_length(json_object_get(body, "data")));
	} else if (type == VZ_MSG_RESULT) {
		s->result = json_incref(body);
	}
	json_decref(body);
}

static void run_req(json_t *req, size_t log_max, sink *s);

static void run_build(const char *uuid, size_t log_max, sink *s)
{
	json_t *req = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:[],s:i,s:{s:[{s:s,s:s,s:b}],s:[{s:s,s:s,s:b}]}}",
				"build", uuid, "attempt", 1, "job", "j", "project", "p", "canonical_project", "example.org/p",
				"repo", g_repo, "ref", "refs/heads/main", "branch", "main", "node", "name", "n1", "connection",
				"local", "commands", "timeout", 60, "playbooks", "run", "project", "example.org/p", "path",
				"pb/run.yaml", "trusted", 1, "post_run", "project", "example.org/p", "path", "pb/post.yaml", "trusted", 1);
	run_req(req, log_max, s);
}

static void run_req(json_t *req, size_t log_max, sink *s)
{
	char *work = vz_path_join(g_tmp, "work");
	vz_build_env env = { .work_dir = work, .executor = "t", .log_max = log_max };
	volatile int cancel = 0;
	memset(s, 0, sizeof(*s));
	vz_buf_init(&s->log, 1u << 24);
	vz_build_run(req, &env, &cancel, emit, s);
	json_decref(req);
	free(work);
	assert_non_null(s->result);
}

static const vz_buf *got(const sink *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return &s->bufs[i];
	return NULL;
}

/* Whether the file name the build sent holds text (as a C string search). */
static int sent_has(const sink *s, const char *name, const char *text)
{
	const vz_buf *b = got(s, name);
	if (!b)
		return 0;
	char *t = vz_xcalloc(1, b->len + 1);
	memcpy(t, b->ptr, b->len);
	int r = strstr(t, text) != NULL;
	free(t);
	return r;
}

static void sink_free(sink *s)
{
	for (int i = 0; i < s->n; i++)
		vz_buf_free(&s->bufs[i]);
	vz_buf_free(&s->log);
	json_decref(s->result);
}

static void test_log_files_collected(void **state)
{
	(void)state;
	sink s;
	run_build("lb1", 0, &s);
	if (strcmp(json_string_value(json_object_get(s.result, "result")), "SUCCESS") != 0)
		fail_msg("result %s: %s", json_string_value(json_object_get(s.result, "result")),
			 json_string_value(json_object_get(s.result, "message")));
	assert_false(s.bad);
	json_t *files = json_object_get(s.result, "files");
	assert_non_null(files);
	/* every file, byte for byte, as on the executor's disk; no symlink, no engine job-output.txt */
	const char *want[] = { "a.txt", "sub/dir/b.bin", "empty", "job-output.json" };
	char *logs = vz_path_join(g_tmp, "work/builds/lb1/logs");
	for (size_t i = 0; i < 4; i++) {
		const vz_buf *b = got(&s, want[i]);
		if (!b)
			fail_msg("%s was not sent", want[i]);
		char *p = vz_path_join(logs, want[i]);
		vz_buf disk = VZ_BUF_INIT(1u << 24);
		vz_err e = { 0 };
		assert_int_equal(vz_read_file(p, disk.max, &disk, &e), 0);
		assert_int_equal(b->len, disk.len);
		if (disk.len)
			assert_memory_equal(b->ptr, disk.ptr, disk.len);
		assert_int_equal(json_integer_value(json_object_get(files, want[i])), (json_int_t)disk.len);
		vz_buf_free(&disk);
		free(p);
	}
	assert_int_equal(got(&s, "sub/dir/b.bin")->len, 100000);
	assert_null(got(&s, "link"));
	assert_null(json_object_get(files, "link"));
	assert_null(got(&s, "job-output.txt"));
	/* the symlink is not followed, and said so */
	assert_true(sent_has(&s, "vinz-log-files-cut.txt", "link: not a regular file"));
	/* job-output.json: one record per playbook of the build (run, then post-run) */
	json_t *jo = json_loadb(got(&s, "job-output.json")->ptr, got(&s, "job-output.json")->len, 0, NULL);
	assert_true(json_is_array(jo));
	assert_int_equal(json_array_size(jo), 2);
	json_decref(jo);
	free(logs);
	sink_free(&s);
}

static void test_log_files_over_the_limit(void **state)
{
	(void)state;
	sink s;
	run_build("lb2", 60000, &s);
	json_t *files = json_object_get(s.result, "files");
	assert_null(json_object_get(files, "sub/dir/b.bin"));
	assert_null(got(&s, "sub/dir/b.bin"));
	assert_non_null(got(&s, "a.txt"));
	assert_true(sent_has(&s, "vinz-log-files-cut.txt", "sub/dir/b.bin: 100000 bytes, over the log limit"));
	assert_int_equal(json_integer_value(json_object_get(files, "vinz-log-files-cut.txt")),
			 (json_int_t)got(&s, "vinz-log-files-cut.txt")->len);
	sink_free(&s);
}

/* A playbook's secrets (the request gives them per playbook, as the scheduler freezes them for the
 * job that defines them) are its variables and no other playbook's, and their values reach
 * neither the streamed log nor job-output.json. */
static void test_secrets_per_playbook_and_redacted(void **state)
{
	(void)state;
	json_t *req = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:[],s:i,"
				"s:{s:[{s:s,s:s,s:b,s:{s:{s:s}}}],s:[{s:s,s:s,s:b}]}}",
				"build", "lb3", "attempt", 1, "job", "j", "project", "p", "canonical_project", "example.org/p",
				"repo", g_repo, "ref", "refs/heads/main", "branch", "main", "node", "name", "n1", "connection",
				"local", "commands", "timeout", 60, "playbooks", "run", "project", "example.org/p", "path",
				"pb/secret.yaml", "trusted", 1, "secrets", "creds", "password", "s3cr3t-Value\nkey-line-2",
				"post_run", "project", "example.org/p", "path", "pb/nosecret.yaml", "trusted", 1);
	sink s;
	run_req(req, 0, &s); /* takes req */
	if (strcmp(json_string_value(json_object_get(s.result, "result")), "SUCCESS") != 0)
		fail_msg("result %s: %s\n%s", json_string_value(json_object_get(s.result, "result")),
			 json_string_value(json_object_get(s.result, "message")), vz_buf_cstr(&s.log));
	const char *log = vz_buf_cstr(&s.log);
	assert_null(strstr(log, "s3cr3t-Value"));
	assert_null(strstr(log, "key-line-2"));
	assert_non_null(strstr(log, "pw=********"));
	assert_non_null(strstr(log, "| ********")); /* the second line of the value, on its own */
	assert_non_null(strstr(log, "| 23"));         /* the playbook did get the whole value */
	assert_non_null(strstr(log, "later=not-given"));
	const vz_buf *jo = got(&s, "job-output.json");
	assert_non_null(jo);
	char *t = vz_xcalloc(1, jo->len + 1);
	memcpy(t, jo->ptr, jo->len);
	assert_null(strstr(t, "s3cr3t-Value"));
	assert_non_null(strstr(t, "pw=********"));
	free(t);
	/* and on the executor's disk too */
	char *p = vz_path_join(g_tmp, "work/builds/lb3/logs/job-output.json");
	char *disk = vz_test_out("cat %s", p);
	assert_null(strstr(disk, "s3cr3t-Value"));
	free(disk);
	free(p);
	sink_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_files_collected),
		cmocka_unit_test(test_log_files_over_the_limit),
		cmocka_unit_test(test_secrets_per_playbook_and_redacted),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
