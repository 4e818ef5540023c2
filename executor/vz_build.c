/* vz_build: one build, start to result; see vz_build.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include "vz_build.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "vz_buf.h"
#include "vz_log.h"
#include "vz_node.h"
#include "vz_deliver.h"
#include "vz_inventory.h"
#include "vz_playbook.h"
#include "vz_prepare.h"
#include "vz_redact.h"
#include "vz_proto.h"
#include "vz_zuulvars.h"
#include "vz_util.h"
#include "vz_workspace.h"

#define CHUNK_MAX (64 * 1024)  /* raw bytes per log message: stays far below the frame cap */
#define FO_MAX 64              /* failure-output patterns per build */
#define POST_TIMEOUT_S 1800    /* a post-run or cleanup-run playbook without post_timeout */

typedef struct logw {
	int fd;
	long long offset;     /* bytes written to job-output.txt */
	size_t max;
	int truncated;
	const char *node;
	const char *uuid;
	vz_buf pending;       /* formatted, not yet written */
	vz_buf line[3];       /* partial lines per stream */
	vz_build_emit emit;
	void *ctx;
	volatile int *cancel;
	json_int_t attempt;
	/* failure-output: checked on every output line while fo_active (the run phase) */
	regex_t fo[FO_MAX];
	size_t nfo;
	int fo_active;
	int fo_matched;
	char fo_msg[400];
	const vz_build_env *env;
	int node_failed;      /* the node could not be reached or dropped the connection */
	vz_redactor *redact;  /* the build's secret values, kept out of every log line */
} logw;

/* A line of run-phase output matching one of the job's failure-output patterns: the scheduler
 * hears it at once (early_failure, so a gate can reset early), the build goes on and ends
 * FAILURE. Only the first match is reported. */
static void check_failure_output(logw *w, const char *text, size_t n)
{
	if (!w->fo_active || w->fo_matched || w->nfo == 0)
		return;
	char line[16385];
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, text, n);
	line[n] = '\0';
	for (size_t i = 0; i < w->nfo; i++) {
		if (regexec(&w->fo[i], line, 0, NULL, 0) != 0)
			continue;
		w->fo_matched = 1;
		snprintf(w->fo_msg, sizeof(w->fo_msg), "failure-output pattern %zu matched the line: %.300s", i + 1, line);
		w->emit(w->ctx, VZ_MSG_EARLY_FAILURE,
			json_pack("{s:s,s:I,s:s}", "build", w->uuid, "attempt", w->attempt, "message", w->fo_msg));
		return;
	}
}

static void flush(logw *w)
{
	if (w->pending.len == 0)
		return;
	const char *p = w->pending.ptr;
	size_t left = w->pending.len;
	while (left > 0) {
		size_t n = left > CHUNK_MAX ? CHUNK_MAX : left;
		/* never split a UTF-8 sequence between messages */
		while (n < left && n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
			n--;
		ssize_t wr = write(w->fd, p, n);
		if (wr < 0 && errno == EINTR)
			continue;
		if (wr != (ssize_t)n)
			vz_warn("build %s: cannot write job-output.txt: %s", w->uuid, strerror(errno));
		json_t *s = json_stringn(p, n);
		if (s)
			w->emit(w->ctx, VZ_MSG_LOG,
				json_pack("{s:s,s:I,s:o}", "build", w->uuid, "offset", (json_int_t)w->offset, "data", s));
		w->offset += (long long)n;
		p += n;
		left -= n;
	}
	vz_buf_reset(&w->pending);
}

/* Appends valid UTF-8 (invalid bytes and NUL become U+FFFD) so every log byte can travel in a
 * JSON string and the offsets on both sides agree. */
static void put_sanitized(vz_buf *b, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t len = s[i] ? vz_utf8_len(s + i, n - i) : 0;
		if (len) {
			vz_buf_add(b, s + i, len);
			i += len;
		} else {
			vz_buf_add(b, "\xEF\xBF\xBD", 3);
			i++;
		}
	}
}

static void emit_plain(logw *w, const char *text, size_t n);

/* One line of the build's log: secret values replaced, checked against failure-output, then
 * timestamped into job-output.txt. */
static void emit_line(logw *w, const char *text, size_t n)
{
	vz_buf red = VZ_BUF_INIT(n * 3 + 64);
	if (w->redact && vz_redact(&red, w->redact, text, n) > 0) {
		text = red.ptr;
		n = red.len;
	}
	check_failure_output(w, text, n);
	emit_plain(w, text, n);
	vz_buf_free(&red);
}

static void emit_plain(logw *w, const char *text, size_t n)
{
	if (w->truncated)
		return;
	char ts[40];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	size_t before = w->pending.len;
	vz_buf_printf(&w->pending, "%s.%06ld | %s | ", ts, now.tv_nsec / 1000, w->node);
	put_sanitized(&w->pending, text, n);
	vz_buf_putc(&w->pending, '\n');
	if (w->env && w->env->on_line)
		w->env->on_line(w->env->line_ctx, w->node, text, n);
	if ((size_t)w->offset + w->pending.len > w->max) {
		w->pending.len = before;
		w->pending.ptr[before] = '\0';
		vz_buf_printf(&w->pending, "[vinz: log cut here: job-output.txt reached its limit of %zu bytes; "
					   "further output is dropped, the job keeps running]\n",
			      w->max);
		w->truncated = 1;
	}
	if (w->pending.len >= CHUNK_MAX)
		flush(w);
}

static void logf_line(logw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_line(logw *w, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	emit_line(w, line, n < 0 ? 0 : (size_t)n >= sizeof(line) ? sizeof(line) - 1 : (size_t)n);
	flush(w);
}

static int on_output(void *ctx, int stream, const char *data, size_t len)
{
	logw *w = ctx;
	vz_buf *lb = &w->line[stream == VZ_NODE_STDERR ? 2 : 1];
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		/* a line longer than 16 KiB is cut into several */
		size_t room = 16384 - lb->len;
		if (take > room)
			take = room;
		vz_buf_add(lb, data, take);
		data += take;
		len -= take;
		if (nl && data == nl) {
			data++;
			len--;
			emit_line(w, lb->ptr ? lb->ptr : "", lb->len);
			vz_buf_reset(lb);
		} else if (lb->len >= 16384) {
			emit_line(w, lb->ptr, lb->len);
			vz_buf_reset(lb);
		}
	}
	/* one read from the node is one batch: whatever it completed goes out now, so a line
	 * followed by silence is not held back (a partial line waits for its end) */
	flush(w);
	return w->cancel && *w->cancel;
}

static void end_lines(logw *w)
{
	for (int i = 1; i <= 2; i++) {
		if (w->line[i].len) {
			emit_line(w, w->line[i].ptr, w->line[i].len);
			vz_buf_reset(&w->line[i]);
		}
	}
}

char *vz_build_logs_dir(const char *work_dir, const char *uuid)
{
	char rel[128];
	snprintf(rel, sizeof(rel), "builds/%s/logs", uuid);
	return vz_path_join(work_dir, rel);
}

#define LOG_FILE_CHUNK (48 * 1024)  /* raw bytes per log_file message (64 KiB as base64) */
#define LOG_FILES_MAX 10000         /* files collected from a build's log directory */

long long vz_build_send_log_file(const char *uuid, long long attempt, const char *abs, const char *rel, long long from,
				 vz_build_emit emit, void *ctx)
{
	int fd = open(abs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	long long size = st.st_size;
	unsigned char raw[LOG_FILE_CHUNK];
	char b64[LOG_FILE_CHUNK / 3 * 4 + 8];
	for (long long off = from < 0 ? 0 : from; off < size || (off == 0 && size == 0);) {
		ssize_t n = size ? pread(fd, raw, sizeof(raw), (off_t)off) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		EVP_EncodeBlock((unsigned char *)b64, raw, (int)n);
		emit(ctx, VZ_MSG_LOG_FILE,
		     json_pack("{s:s,s:I,s:s,s:I,s:I,s:s}", "build", uuid, "attempt", (json_int_t)attempt, "path", rel,
			       "offset", (json_int_t)off, "size", (json_int_t)size, "data", b64));
		if (n == 0)
			break; /* an empty file: one message says it exists */
		off += n;
	}
	close(fd);
	return size;
}

/* A redactor for every secret value the request's playbooks get (their "secrets"), or NULL. */
static vz_redactor *build_redactor(json_t *req)
{
	static const char *const ph[] = { "pre_run", "run", "post_run", "cleanup_run" };
	json_t *all = json_array();
	for (int i = 0; i < 4; i++) {
		size_t k;
		json_t *pb;
		json_array_foreach(json_object_get(json_object_get(req, "playbooks"), ph[i]), k, pb) {
			json_t *sec = json_object_get(pb, "secrets");
			if (json_object_size(sec))
				json_array_append(all, sec);
		}
	}
	vz_redactor *r = json_array_size(all) ? vz_redactor_new(all) : NULL;
	json_decref(all);
	return r;
}

/* job-output.json records what tasks printed: secret values in it are replaced before it leaves
 * the executor, as they are in job-output.txt. 0, or -1 when it could not be rewritten. */
static int redact_json_file(const vz_redactor *r, const char *path)
{
	json_t *j = json_load_file(path, 0, NULL);
	int rc = 0;
	if (j && vz_redact_json(r, j) > 0 && json_dump_file(j, path, JSON_INDENT(2)) != 0)
		rc = -1;
	json_decref(j);
	return rc;
}

typedef struct logwalk {
	logw *w;
	const char *root;
	long long total, cap;
	int nfiles;
	json_t *files;  /* path -> size, sent */
	vz_buf cut;     /* what was left out, one line each */
} logwalk;

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sends the regular files under root/rel (sorted, no symlinks followed, at most 16 levels) that
 * fit in the cap; the build's streamed job-output.txt is not among them (the engine's copy of it
 * at the top is skipped). */
static void walk_logs(logwalk *lw, const char *rel, int depth)
{
	char *dir = rel ? vz_path_join(lw->root, rel) : vz_xstrdup(lw->root);
	DIR *d = opendir(dir);
	if (!d) {
		free(dir);
		return;
	}
	char **names = NULL;
	size_t nn = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) && nn < LOG_FILES_MAX) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (nn == cap) {
			cap = cap ? cap * 2 : 16;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				abort();
		}
		names[nn++] = vz_xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, nn, sizeof(*names), cmp_names);
	for (size_t i = 0; i < nn; i++) {
		char *crel = rel ? vz_path_join(rel, names[i]) : vz_xstrdup(names[i]);
		char *abs = vz_path_join(lw->root, crel);
		struct stat st;
		int unsafe = !rel && !strcmp(names[i], "job-output.json") && lw->w->redact &&
			     redact_json_file(lw->w->redact, abs) != 0;
		if (unsafe) {
			vz_buf_printf(&lw->cut, "%s: could not be rewritten without the build's secret values\n", crel);
		} else if (lstat(abs, &st) != 0) {
			/* gone meanwhile */
		} else if (S_ISDIR(st.st_mode)) {
			if (depth < 15)
				walk_logs(lw, crel, depth + 1);
			else
				vz_buf_printf(&lw->cut, "%s/: deeper than 16 levels\n", crel);
		} else if (!S_ISREG(st.st_mode)) {
			vz_buf_printf(&lw->cut, "%s: not a regular file\n", crel);
		} else if (!rel && !strcmp(names[i], "job-output.txt")) {
			/* the engine's copy of what was streamed as the build's job-output.txt */
		} else if (!vz_proto_log_path_ok(crel)) {
			vz_buf_printf(&lw->cut, "%s: a name the log store does not take\n", crel);
		} else if (lw->nfiles >= LOG_FILES_MAX || lw->total + st.st_size > lw->cap) {
			vz_buf_printf(&lw->cut, "%s: %lld bytes, over the log limit of %lld bytes for the build's files\n", crel,
				      (long long)st.st_size, lw->cap);
		} else {
			long long sz = vz_build_send_log_file(lw->w->uuid, lw->w->attempt, abs, crel, 0, lw->w->emit, lw->w->ctx);
			if (sz >= 0) {
				json_object_set_new(lw->files, crel, json_integer(sz));
				lw->total += sz;
				lw->nfiles++;
			}
		}
		free(abs);
		free(crel);
		free(names[i]);
	}
	free(names);
	free(dir);
}

/* The build's log directory to the scheduler's log store: returns {path: size} of what was sent
 * (NULL when nothing). What did not fit is listed in vinz-log-files-cut.txt, sent as well. */
static json_t *send_log_files(logw *w, const char *logs)
{
	logwalk lw = { .w = w, .root = logs, .cap = (long long)w->max, .files = json_object() };
	vz_buf_init(&lw.cut, 256 * 1024);
	walk_logs(&lw, NULL, 0);
	if (lw.cut.len) {
		char *p = vz_path_join(logs, "vinz-log-files-cut.txt");
		vz_buf note = VZ_BUF_INIT(300 * 1024);
		vz_buf_printf(&note, "[vinz: these files of the build's log directory were not collected]\n%s",
			      vz_buf_cstr(&lw.cut));
		vz_err e = { 0 };
		if (vz_write_file_atomic(p, note.ptr, note.len, 0644, &e) == 0) {
			long long sz = vz_build_send_log_file(w->uuid, w->attempt, p, "vinz-log-files-cut.txt", 0, w->emit, w->ctx);
			if (sz >= 0)
				json_object_set_new(lw.files, "vinz-log-files-cut.txt", json_integer(sz));
		}
		logf_line(w, "vinz: some files of the log directory were not collected: see vinz-log-files-cut.txt");
		vz_buf_free(&note);
		free(p);
	}
	vz_buf_free(&lw.cut);
	if (json_object_size(lw.files) == 0) {
		json_decref(lw.files);
		return NULL;
	}
	return lw.files;
}

char *vz_build_log_path(const char *work_dir, const char *uuid)
{
	char rel[128];
	snprintf(rel, sizeof(rel), "builds/%s/job-output.txt", uuid);
	return vz_path_join(work_dir, rel);
}

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

/* ---- playbooks (Zuul's pre-run, run, post-run and cleanup-run) ---- */

/* Opens the build's node session on a thread of its own, beside the workspace preparation. */
typedef struct connector {
	const vz_node_spec *spec;
	vz_node *node;
	int rc;
	vz_err e;
	pthread_t th;
	int started;
} connector;

static void *connect_main(void *arg)
{
	connector *c = arg;
	c->rc = vz_node_connect(&c->node, c->spec, &c->e);
	return NULL;
}

#define BUILD_NODES_MAX 16 /* nodes of one build (a nodeset) */

/* A node of the build: its request entry, how to reach it, and its session once open. */
typedef struct bnode {
	json_t *j;
	const char *name;
	vz_node_spec spec;
	connector cn;
	vz_node *node;
} bnode;

static void spec_from(json_t *nj, vz_node_spec *spec)
{
	const char *conn = jstr(nj, "connection");
	spec->kind = strcmp(conn, "local") == 0 ? VZ_NODE_LOCAL : VZ_NODE_SSH;
	spec->name = jstr(nj, "name");
	spec->host = jstr(nj, "host");
	spec->port = (int)json_integer_value(json_object_get(nj, "port"));
	spec->user = *jstr(nj, "user") ? jstr(nj, "user") : NULL;
	spec->key_file = *jstr(nj, "key") ? jstr(nj, "key") : NULL;
	spec->known_hosts = *jstr(nj, "known_hosts") ? jstr(nj, "known_hosts") : NULL;
	spec->host_key = *jstr(nj, "host_key") ? jstr(nj, "host_key") : NULL;
}

typedef struct pbctx {
	logw *w;
	const char *node_name; /* the first node: lines of no host go under its name */
	const struct bnode *all;
	size_t nall;
} pbctx;

static void pb_line(void *ctx, const char *host, const char *text)
{
	pbctx *c = ctx;
	const char *saved = c->w->node;
	c->w->node = host ? host : c->node_name;
	emit_line(c->w, text, strlen(text));
	flush(c->w);
	c->w->node = saved;
}


static vz_node *pb_node(void *ctx, const char *host)
{
	pbctx *c = ctx;
	for (size_t i = 0; i < c->nall; i++)
		if (strcmp(host, c->all[i].name) == 0)
			return c->all[i].node;
	return NULL;
}

/* The playbooks of one phase: [{project, path, trusted}] resolved in the prepared workspaces.
 * Returns the number of paths in out (caller frees each), or -1 with message set. */
static int phase_paths(json_t *list, const vz_prepared *p, char **out, int max, const char **trusted_out, char *message,
		       size_t mlen)
{
	int n = 0;
	size_t i;
	json_t *pb;
	json_array_foreach(list, i, pb) {
		const char *proj = json_string_value(json_object_get(pb, "project"));
		const char *path = json_string_value(json_object_get(pb, "path"));
		const vz_prepared_project *pp = NULL;
		for (size_t k = 0; k < p->nprojects && proj; k++)
			if (strcmp(p->projects[k].canonical, proj) == 0 || strcmp(p->projects[k].project, proj) == 0)
				pp = &p->projects[k];
		if (!path || !*path || path[0] == '/' || strstr(path, "..") || !pp || n >= max) {
			snprintf(message, mlen, "playbook %s in %s: %s", path ? path : "(none)", proj ? proj : "(no project)",
				 !pp ? "the project is not in the build's workspace" : n >= max ? "too many playbooks"
				 : "the path must be relative to the project, without '..'");
			for (int k = 0; k < n; k++)
				free(out[k]);
			return -1;
		}
		out[n] = vz_path_join(pp->dir, path);
		trusted_out[n] = json_is_true(json_object_get(pb, "trusted")) ? "1" : NULL;
		n++;
	}
	return n;
}

/* The result of a build stopped through its cancel flag. */
static const char *cancel_result(int c)
{
	return c == VZ_BUILD_CANCEL_STOPPING ? "REQUEUE" : c == VZ_BUILD_CANCEL_DISK ? "DISK_FULL" : "ABORTED";
}

static const char *cancel_message(int c)
{
	return c == VZ_BUILD_CANCEL_STOPPING ? "the executor stopped during the build and handed it back"
	       : c == VZ_BUILD_CANCEL_DISK ? "the build's directory went over the executor's disk_limit_per_job"
					   : "build canceled";
}

/* ---- the disk limit (Zuul's DiskAccountant, one watcher per build) ---- */

typedef struct diskw {
	const char *dir;
	long long limit;       /* bytes */
	int every_ms;
	volatile int *cancel;
	long long used;        /* last measure, bytes */
	int stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	int started;
} diskw;

static __thread long long du_bytes;
static __thread long long du_entries;

static int du_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)path;
	(void)flag;
	(void)f;
	du_bytes += (long long)st->st_blocks * 512;
	return ++du_entries > 10000000 ? 1 : 0; /* a bound on the walk */
}

/* bytes under dir, as du counts them (allocated blocks, symlinks not followed) */
static long long du(const char *dir)
{
	du_bytes = 0;
	du_entries = 0;
	nftw(dir, du_one, 16, FTW_PHYS | FTW_MOUNT);
	return du_bytes;
}

static void *disk_main(void *arg)
{
	diskw *d = arg;
	pthread_mutex_lock(&d->mu);
	while (!d->stop) {
		pthread_mutex_unlock(&d->mu);
		uint64_t t0 = vz_mono_ms();
		long long used = du(d->dir);
		uint64_t took = vz_mono_ms() - t0;
		pthread_mutex_lock(&d->mu);
		d->used = used;
		if (used > d->limit && !d->stop) {
			int zero = 0;
			if (__atomic_compare_exchange_n(d->cancel, &zero, VZ_BUILD_CANCEL_DISK, 0, __ATOMIC_SEQ_CST,
							__ATOMIC_SEQ_CST))
				vz_warn("%s uses %lld MB, over its limit of %lld MB: stopping the build", d->dir,
					used / (1024 * 1024), d->limit / (1024 * 1024));
		}
		/* as Zuul: wait half as long as the measure took, at least the interval */
		uint64_t wait = took / 2 > (uint64_t)d->every_ms ? took / 2 : (uint64_t)d->every_ms;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(wait / 1000);
		ts.tv_nsec += (long)(wait % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!d->stop)
			pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

static void disk_start(diskw *d, const char *dir, const vz_build_env *env, volatile int *cancel)
{
	memset(d, 0, sizeof(*d));
	if (env->disk_limit_mb <= 0 || !cancel)
		return;
	d->dir = dir;
	d->limit = (long long)env->disk_limit_mb * 1024 * 1024;
	d->every_ms = env->disk_check_ms > 0 ? env->disk_check_ms : 1000;
	d->cancel = cancel;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	if (pthread_create(&d->th, NULL, disk_main, d) == 0)
		d->started = 1;
	else
		vz_warn("%s: cannot start the disk watcher; the build runs without its disk limit", dir);
}

static void disk_stop(diskw *d)
{
	if (!d->started)
		return;
	pthread_mutex_lock(&d->mu);
	d->stop = 1;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->th, NULL);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	d->started = 0;
}

/* ---- zuul_return data ---- */

/* The data the playbooks returned (zuul_return writes WORK/results.json as {"data": {...}}):
 * a new object, empty when nothing was returned. */
static json_t *returned_data(const char *bdir)
{
	char *p = vz_path_join(bdir, "results.json");
	vz_buf b = VZ_BUF_INIT(16u << 20);
	vz_err e = { 0 };
	json_t *doc = NULL, *data = NULL;
	if (vz_read_file(p, b.max, &b, &e) == 0 && b.len)
		doc = json_loadb(b.ptr, b.len, 0, NULL);
	data = json_object_get(doc, "data");
	data = json_is_object(data) ? json_incref(data) : json_object();
	json_decref(doc);
	vz_buf_free(&b);
	free(p);
	return data;
}

/* An artifact url relative to the build's log_url, made absolute as Zuul does. */
static json_t *artifact_url(const char *url, const char *log_url)
{
	if (!log_url || !*log_url || strstr(url, "://"))
		return json_string(url);
	vz_buf b = VZ_BUF_INIT(1 << 20);
	if (url[0] == '/') {
		/* the log server's scheme and host, then the absolute path */
		const char *h = strstr(log_url, "://");
		const char *end = h ? strchr(h + 3, '/') : NULL;
		vz_buf_add(&b, log_url, end ? (size_t)(end - log_url) : strlen(log_url));
	} else {
		vz_buf_add(&b, log_url, strlen(log_url));
		if (log_url[strlen(log_url) - 1] != '/')
			vz_buf_putc(&b, '/');
	}
	vz_buf_add(&b, url, strlen(url));
	json_t *s = json_string(vz_buf_cstr(&b));
	vz_buf_free(&b);
	return s;
}

/* Adds Zuul's special return values to a result body: data (everything returned), log_url,
 * artifacts (url made absolute against log_url), child_jobs, warnings. */
static void add_returned(json_t *body, json_t *data)
{
	if (!json_is_object(data) || json_object_size(data) == 0)
		return;
	json_object_set(body, "data", data);
	json_t *z = json_object_get(data, "zuul");
	const char *log_url = json_string_value(json_object_get(z, "log_url"));
	if (log_url)
		json_object_set_new(body, "log_url", json_string(log_url));
	json_t *arts = json_object_get(z, "artifacts");
	if (json_is_array(arts)) {
		json_t *out = json_array();
		size_t i;
		json_t *a;
		json_array_foreach(arts, i, a) {
			const char *name = json_string_value(json_object_get(a, "name"));
			const char *url = json_string_value(json_object_get(a, "url"));
			if (!name || !url)
				continue; /* zuul_return refuses these; a hand-written results.json may not */
			json_t *o = json_pack("{s:s,s:o}", "name", name, "url", artifact_url(url, log_url));
			json_t *md = json_object_get(a, "metadata");
			if (json_is_object(md))
				json_object_set(o, "metadata", md);
			json_array_append_new(out, o);
		}
		json_object_set_new(body, "artifacts", out);
	}
	json_t *cj = json_object_get(z, "child_jobs");
	if (json_is_array(cj)) {
		json_t *out = json_array();
		size_t i;
		json_t *v;
		json_array_foreach(cj, i, v) if (json_is_string(v)) json_array_append(out, v);
		json_object_set_new(body, "child_jobs", out);
	}
	json_t *warn = json_object_get(z, "warnings");
	if (json_is_array(warn)) {
		json_t *out = json_array();
		size_t i;
		json_t *v;
		json_array_foreach(warn, i, v) if (json_is_string(v)) json_array_append(out, v);
		json_object_set_new(body, "warnings", out);
	}
}

/* On a shared node the workspaces are under vinz-builds/<build>/ (deliver_node): the src_dir
 * the playbooks get in zuul.project and zuul.projects says so. */
static void prefix_src_dir(json_t *pj, const char *uuid)
{
	const char *d = jstr(pj, "src_dir");
	if (!pj || !*d || vz_startswith(d, "vinz-builds/"))
		return; /* (the same object may be reached twice) */
	char buf[1400];
	snprintf(buf, sizeof(buf), "vinz-builds/%s/%s", uuid, d);
	json_object_set_new(pj, "src_dir", json_string(buf));
}

static void shared_src_dirs(json_t *zuul, const char *uuid)
{
	prefix_src_dir(json_object_get(zuul, "project"), uuid);
	const char *k;
	json_t *pj;
	json_object_foreach(json_object_get(zuul, "projects"), k, pj)
		prefix_src_dir(pj, uuid);
}

/* The build's workspaces onto one SSH node b: a node that runs one build at a time gets Zuul's
 * layout (~/src/<canonical>); a shared node gets a directory per build so concurrent builds never
 * share a work tree. One delivery per project; the build's own project is the first, and its
 * directory goes to remote_dir. 0, or -1 with result and message set. */
static int deliver_node(logw *w, const bnode *b, const vz_prepared *prepared, const char *uuid, const vz_build_env *env,
			volatile int *cancel, char *remote_dir, size_t rdlen, const char **result, char *message, size_t mlen)
{
	for (size_t pi = 0; pi < prepared->nprojects; pi++) {
		const vz_prepared_project *pp = &prepared->projects[pi];
		char rdir[1200];
		if (json_is_true(json_object_get(b->j, "shared")))
			snprintf(rdir, sizeof(rdir), "vinz-builds/%s/src/%s", uuid, pp->canonical);
		else
			snprintf(rdir, sizeof(rdir), "src/%s", pp->canonical);
		vz_deliver_opts dopt = { .project = pp->canonical, .pack_max = env->ship_max, .timeout_ms = 600000,
					 .cancel = cancel, .on_output = on_output, .ctx = w };
		vz_deliver_stats ds;
		vz_err e = { 0 };
		int rc = vz_deliver_repo(b->node, pp->dir, rdir, &dopt, &ds, &e);
		end_lines(w);
		if (ds.note[0])
			logf_line(w, "vinz: %s", ds.note);
		if (rc) {
			*result = rc == VZ_ECANCELED ? cancel_result(*cancel)
				  : rc == VZ_ETOOBIG || rc == VZ_EINVAL ? "ERROR" : "RETRY";
			w->node_failed = rc != VZ_ECANCELED && strcmp(*result, "RETRY") == 0;
			snprintf(message, mlen, "cannot deliver the workspace of %s to node %s: %s", pp->canonical, b->name,
				 vz_err_msg(&e));
			logf_line(w, "vinz: %s", message);
			return -1;
		}
		logf_line(w, "vinz: workspace %s delivered to %s:~/%s by %s: %zu objects, %zu bytes, %d round trips, %llu ms",
			  pp->canonical, b->name, rdir, vz_deliver_method_name(ds.method), ds.objects, ds.bytes,
			  ds.round_trips, (unsigned long long)ds.total_ms);
		if (pi == 0)
			vz_strlcpy(remote_dir, rdir, rdlen);
	}
	return 0;
}

/* Runs the phases of req->playbooks on the build's node and decides the result as Zuul does
 * (docs/executor.md):
 * - pre-run (parents' first): a failure or an unreachable node gives RETRY, or FAILURE when the
 *   playbooks returned zuul.retry: false;
 * - run, within the job timeout (which covered pre-run too): TIMED_OUT, FAILURE, RETRY when a
 *   node was unreachable; a failure-output match turns a good run into FAILURE;
 * - after a good run with zuul.pause returned: "paused" to the scheduler, then wait for resume;
 * - post-run once pre-run passed (zuul_success), each playbook within post_timeout: a failure
 *   or timeout after a good run gives POST_FAILURE;
 * - cleanup-run always, even after a cancel, each within post_timeout.
 * A cancel (scheduler, second SIGTERM, disk limit) skips what is left but cleanup-run and gives
 * ABORTED, REQUEUE or DISK_FULL. *data gets what the playbooks returned (zuul_return). */
static void run_playbooks(json_t *req, const vz_prepared *prepared, const char *bdir, const bnode *all, size_t nall,
			  const vz_build_env *env, const vz_build_ctl *ctl, logw *w, uint64_t deadline,
			  const char **result, char *message, size_t mlen, json_t **data)
{
	static const char *const phases[] = { "pre_run", "run", "post_run", "cleanup_run" };
	volatile int *cancel = ctl->cancel;
	json_t *pbs = json_object_get(req, "playbooks");
	vz_inventory *inv = vz_inventory_new();
	char *logs = vz_path_join(bdir, "logs");
	vz_err e = { 0 };
	/* Zuul's precedence for a host: data returned by parent jobs < job vars < group-vars of
	 * the host's groups < host-vars (Ansible replaces, it does not merge, a variable's value).
	 * Every node of the build is a host of the inventory, in the groups the nodeset gives it. */
	json_t *base = json_object();
	json_t *pd = json_object_get(req, "parent_data");
	const char *pk;
	json_t *pv;
	json_object_foreach(pd, pk, pv) {
		if (strcmp(pk, "zuul") != 0)
			json_object_set(base, pk, pv);
	}
	json_t *jv = json_object_get(req, "vars");
	if (json_is_object(jv))
		json_object_update(base, jv);
	json_t *gv = json_object_get(req, "group_vars");
	json_t *extra = NULL;
	for (size_t ni = 0; ni < nall; ni++) {
		json_t *nodej = all[ni].j;
		json_t *hv = json_copy(base);
		json_t *groups = json_object_get(nodej, "groups");
		size_t gi;
		json_t *g;
		json_array_foreach(groups, gi, g) {
			json_t *v = json_is_string(g) ? json_object_get(gv, json_string_value(g)) : NULL;
			if (json_is_object(v))
				json_object_update(hv, v);
		}
		json_t *mine = json_object_get(json_object_get(req, "host_vars"), all[ni].name);
		if (json_is_object(mine))
			json_object_update(hv, mine);
		json_object_set_new(hv, "nodepool", vz_zuulvars_nodepool(nodej));
		json_object_set_new(hv, "ansible_host", json_string(*jstr(nodej, "host") ? jstr(nodej, "host") : "localhost"));
		int added = 0, failed = 0;
		json_array_foreach(groups, gi, g) {
			if (json_is_string(g) && vz_inventory_add_host(inv, all[ni].name, json_string_value(g), hv, &e) == 0)
				added = 1;
		}
		if (!added && vz_inventory_add_host(inv, all[ni].name, NULL, hv, &e))
			failed = 1;
		json_decref(hv);
		if (failed) {
			json_decref(base);
			*result = "ERROR";
			snprintf(message, mlen, "inventory: %s", vz_err_msg(&e));
			goto out;
		}
	}
	json_decref(base);
	vz_zuulvars_dirs dirs = { bdir, logs, NULL };
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	dirs.hostname = host;
	json_t *zuul = vz_zuulvars_zuul(req, prepared, &dirs);
	if (json_is_true(json_object_get(all[0].j, "shared")))
		shared_src_dirs(zuul, jstr(req, "build"));
	json_int_t post_s = json_integer_value(json_object_get(req, "post_timeout"));
	if (post_s > 0)
		json_object_set_new(zuul, "post_timeout", json_integer(post_s));
	int post_ms = (int)((post_s > 0 && post_s < 86400 * 7 ? post_s : POST_TIMEOUT_S) * 1000);
	extra = json_pack("{s:o}", "zuul", zuul);
	pbctx pc = { w, all[0].name, all, nall };
	int pre_ok = 1, run_ok = 1, aborted = 0, error = 0;
	const char *pre_failed_pb = NULL;
	char pre_failed_buf[600] = "";
	*result = "SUCCESS";
	for (int ph = 0; ph < 4; ph++) {
		if (ph == 2 && !aborted && !error) {
			/* between run and post-run: what the playbooks returned decides pause and retry */
			json_decref(*data);
			*data = returned_data(bdir);
			json_t *z = json_object_get(*data, "zuul");
			if (run_ok && pre_ok && w->fo_matched && strcmp(*result, "SUCCESS") == 0) {
				*result = "FAILURE";
				snprintf(message, mlen, "%s", w->fo_msg);
			}
			if (pre_ok && run_ok && strcmp(*result, "SUCCESS") == 0 && json_is_true(json_object_get(z, "pause")) && ctl->resume) {
				logf_line(w, "vinz: paused after the run phase (zuul.pause): post-run waits until the scheduler resumes the build");
				flush(w);
				w->emit(w->ctx, VZ_MSG_PAUSED,
					json_pack("{s:s,s:I,s:O}", "build", w->uuid, "attempt", w->attempt, "data", *data));
				uint64_t until = vz_mono_ms() + (uint64_t)(env->pause_max_s > 0 ? env->pause_max_s : 86400) * 1000u;
				while (!*ctl->resume && !(cancel && *cancel) && vz_mono_ms() < until)
					usleep(20 * 1000);
				if (cancel && *cancel)
					aborted = 1;
				else
					logf_line(w, "vinz: %s", *ctl->resume ? "resumed" : "paused for pause_max_s: going on with post-run");
			}
			if (pre_ok && run_ok && strcmp(*result, "SUCCESS") == 0 && json_is_true(json_object_get(z, "pause")) &&
			    !ctl->resume)
				logf_line(w, "vinz: zuul.pause returned, but the scheduler does not resume paused builds (its welcome "
					     "lacks the feature \"pause\"): going on with post-run");
			if (!pre_ok && json_is_false(json_object_get(z, "retry")) && strcmp(*result, "RETRY") == 0) {
				*result = "FAILURE";
				snprintf(message, mlen, "pre_run playbook %s failed; not retried (zuul.retry: false)", pre_failed_pb);
			}
		}
		json_t *list = json_object_get(pbs, phases[ph]);
		if (!json_is_array(list) || json_array_size(list) == 0)
			continue;
		if (ph < 3 && cancel && *cancel)
			aborted = 1;
		if (ph < 3 && (aborted || error))
			continue;
		if (ph == 1 && !pre_ok)
			continue; /* run only after a good pre-run */
		if (ph == 2 && !pre_ok)
			continue;
		char *paths[64];
		const char *trusted[64];
		int n = phase_paths(list, prepared, paths, 64, trusted, message, mlen);
		if (n < 0) {
			*result = "ERROR";
			error = 1;
			continue;
		}
		json_object_set_new(extra, "zuul_success", json_boolean(pre_ok && run_ok && !aborted && !error));
		/* Zuul: a retryable failure, and attempts left */
		json_t *zv = json_object_get(extra, "zuul");
		int will_retry = strcmp(*result, "RETRY") == 0 && json_integer_value(json_object_get(zv, "attempts")) <
										json_integer_value(json_object_get(zv, "max_attempts"));
		json_object_set_new(extra, "zuul_will_retry", json_boolean(will_retry));
		for (int k = 0; k < n; k++) {
			uint64_t now = vz_mono_ms();
			const char *rel = paths[k] + strlen(bdir) + 1;
			/* the job timeout covers pre-run and run; each post-run and cleanup-run playbook
			 * gets the whole post_timeout */
			int tmo = ph <= 1 ? (now >= deadline ? 1 : (int)(deadline - now)) : post_ms;
			const char *one[1] = { paths[k] };
			/* the secrets of the job that defines this playbook (Zuul gives them to its own
			 * playbooks only) are variables of this run alone, at extra-vars precedence */
			json_t *psec = json_object_get(json_array_get(list, (size_t)k), "secrets");
			json_t *ev = extra;
			if (json_object_size(psec)) {
				ev = json_deep_copy(extra);
				json_object_update(ev, psec);
			}
			vz_playbook_opts o = { .playbooks = one, .nplaybooks = 1, .inventory = inv, .extra_vars = ev,
					       .node_lookup = pb_node, .node_ctx = &pc, .untrusted = !trusted[k],
					       .confine_dir = bdir, .work_dir = bdir, .log_dir = logs, .timeout_ms = tmo,
					       .cancel = ph == 3 ? NULL : cancel, .on_line = pb_line, .line_ctx = &pc };
			vz_playbook_result res = { 0 };
			vz_err pe = { 0 };
			logf_line(w, "vinz: %s playbook %s%s", phases[ph], rel, trusted[k] ? " (trusted)" : "");
			w->fo_active = ph == 1;
			int rc = vz_playbook_run(&res, &o, &pe);
			if (ev != extra)
				json_decref(ev);
			end_lines(w);
			w->fo_active = 0;
			json_decref(res.json);
			int ok = rc == 0 && res.exit_code == 0 && !res.timed_out;
			if (ok)
				continue;
			if (ph < 3 && cancel && *cancel) {
				aborted = 1;
				break;
			}
			if (rc) {
				*result = "ERROR";
				snprintf(message, mlen, "%s playbook %s: %s", phases[ph], rel, vz_err_msg(&pe));
				error = 1;
				pre_ok = ph == 0 ? 0 : pre_ok;
				run_ok = ph == 1 ? 0 : run_ok;
				break;
			}
			if (res.exit_code == 4)
				w->node_failed = 1;
			if (ph == 0) {
				/* a failed pre-run or an unreachable node: Zuul runs the build again */
				pre_ok = 0;
				*result = "RETRY";
				pre_failed_pb = pre_failed_buf;
				vz_strlcpy(pre_failed_buf, rel, sizeof(pre_failed_buf));
				snprintf(message, mlen, "pre_run playbook %s %s", rel,
					 res.timed_out ? "timed out (job timeout)" : res.exit_code == 4 ? "could not reach the node" : "failed");
				break;
			}
			if (ph == 1) {
				run_ok = 0;
				if (res.timed_out) {
					*result = "TIMED_OUT";
					snprintf(message, mlen, "job timed out in run playbook %s", rel);
				} else if (res.exit_code == 4) {
					*result = "RETRY";
					snprintf(message, mlen, "run playbook %s could not reach the node", rel);
				} else {
					*result = "FAILURE";
					snprintf(message, mlen, "run playbook %s failed", rel);
				}
				break;
			}
			if (ph == 2 && strcmp(*result, "SUCCESS") == 0) {
				*result = "POST_FAILURE";
				if (res.timed_out)
					snprintf(message, mlen, "post-run playbook %s timed out after its post_timeout of %d s", rel,
						 post_ms / 1000);
				else
					snprintf(message, mlen, "post-run playbook %s failed", rel);
			}
			if (ph == 3 && res.timed_out)
				logf_line(w, "vinz: cleanup-run playbook %s timed out after %d s", rel, post_ms / 1000);
		}
		for (int k = 0; k < n; k++)
			free(paths[k]);
	}
	if (aborted) {
		int c = cancel ? *cancel : VZ_BUILD_CANCEL;
		*result = cancel_result(c);
		snprintf(message, mlen, "%s", cancel_message(c));
	}
	json_decref(*data);
	*data = returned_data(bdir);
out:
	json_decref(extra);
	vz_inventory_free(inv);
	free(logs);
}

static void prepare_log(void *ctx, const char *line)
{
	logf_line(ctx, "%s", line);
}

void vz_build_run(json_t *req, const vz_build_env *env, volatile int *cancel, vz_build_emit emit, void *ctx)
{
	vz_build_ctl ctl = { cancel, NULL, NULL };
	vz_build_run_ctl(req, env, &ctl, emit, ctx);
}

void vz_build_run_ctl(json_t *req, const vz_build_env *env, const vz_build_ctl *ctl, vz_build_emit emit, void *ctx)
{
	static volatile int never = 0;
	volatile int *cancel = ctl->cancel ? ctl->cancel : &never;
	const char *uuid = jstr(req, "build");
	json_int_t attempt = json_integer_value(json_object_get(req, "attempt"));
	json_t *nodej = json_object_get(req, "node");
	const char *node_name = jstr(nodej, "name");
	int64_t started = vz_wall_ms();
	const char *result = "ERROR";
	char message[VZ_ERR_MSG_MAX + 128] = "";
	char commit[41] = "";
	vz_err e = { 0 };
	vz_node *node = NULL;
	vz_node_spec spec = { 0 };
	bnode all[BUILD_NODES_MAX];
	size_t nall = 1;
	memset(all, 0, sizeof(all));
	char *bdir = NULL, *src = NULL, *logp = NULL, *cache = NULL;
	vz_prepared prepared = { 0 };
	char rel[128];
	json_t *data = NULL;
	diskw disk = { 0 };
	logw w = { .fd = -1, .max = env->log_max ? env->log_max : 64u * 1024 * 1024, .node = node_name, .uuid = uuid,
		   .emit = emit, .ctx = ctx, .cancel = cancel, .attempt = attempt, .env = env };
	vz_buf_init(&w.pending, 8u * 1024 * 1024);
	for (int i = 0; i < 3; i++)
		vz_buf_init(&w.line[i], 16384);
	w.redact = build_redactor(req);

	snprintf(rel, sizeof(rel), "builds/%s", uuid);
	bdir = vz_path_join(env->work_dir, rel);
	logp = vz_build_log_path(env->work_dir, uuid);
	cache = vz_path_join(env->work_dir, "cache");
	vz_rm_rf(bdir, NULL);
	/* libgit2 and libssh2 are set up by the first build, not at start: an idle executor keeps
	 * their memory (OpenSSL's tables, CA certificates) unmapped */
	if (vz_workspace_global_init(&e) || vz_node_global_init(&e)) {
		snprintf(message, sizeof(message), "%s", vz_err_msg(&e));
		goto done;
	}
	if (vz_mkdir_p(bdir, 0755, &e)) {
		snprintf(message, sizeof(message), "executor work dir: %s", vz_err_msg(&e));
		goto done;
	}
	w.fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w.fd < 0) {
		snprintf(message, sizeof(message), "cannot create %s: %s", logp, strerror(errno));
		goto done;
	}
	/* failure-output: POSIX extended regular expressions, refused before anything runs */
	json_t *fo = json_object_get(req, "failure_output");
	for (size_t i = 0; i < json_array_size(fo); i++) {
		const char *pat = json_string_value(json_array_get(fo, i));
		char rerr[200] = "";
		int rrc = !pat ? -1 : w.nfo >= FO_MAX ? 0 : regcomp(&w.fo[w.nfo], pat, REG_EXTENDED | REG_NOSUB);
		if (rrc == 0 && w.nfo < FO_MAX) {
			w.nfo++;
			continue;
		}
		if (rrc > 0)
			regerror(rrc, &w.fo[w.nfo], rerr, sizeof(rerr));
		if (!pat)
			snprintf(message, sizeof(message), "failure_output[%zu] must be a string (a POSIX extended regular expression)", i);
		else if (rrc == 0)
			snprintf(message, sizeof(message), "failure_output: too many patterns (at most %d)", FO_MAX);
		else
			snprintf(message, sizeof(message), "failure_output[%zu] '%.200s' is not a valid POSIX extended regular expression: %s",
				 i, pat, rerr);
		logf_line(&w, "vinz: %s", message);
		goto done;
	}
	disk_start(&disk, bdir, env, ctl->cancel);
	emit(ctx, VZ_MSG_STARTED,
	     json_pack("{s:s,s:I,s:I,s:s}", "build", uuid, "attempt", attempt, "started_at", (json_int_t)started, "node", node_name));
	logf_line(&w, "vinz: build %s, job %s, attempt %lld, project %s change %s (%s)", uuid, jstr(req, "job"),
		  (long long)attempt, jstr(req, "project"), jstr(req, "change"), jstr(req, "ref"));

	/* the node's session is opened while the workspaces are made (an SSH connect and
	 * authentication take tens of ms that would otherwise add to the job's start) */
	spec_from(nodej, &spec);
	connector cn = { .spec = &spec };
	cn.started = pthread_create(&cn.th, NULL, connect_main, &cn) == 0;
	/* the other nodes of a multi-node nodeset ("nodes": every node, the first one included or
	 * not), each opened the same way */
	size_t i_n;
	json_t *nj;
	json_array_foreach(json_object_get(req, "nodes"), i_n, nj) {
		if (!strcmp(jstr(nj, "name"), node_name) || !*jstr(nj, "name") || nall >= BUILD_NODES_MAX)
			continue;
		bnode *b = &all[nall++];
		b->j = nj;
		b->name = jstr(nj, "name");
		spec_from(nj, &b->spec);
		b->cn.spec = &b->spec;
		b->cn.started = pthread_create(&b->cn.th, NULL, connect_main, &b->cn) == 0;
	}

	/* 1. the workspaces on the executor: every project, at its speculative state */
	int prc = vz_prepare_workspace(&prepared, req, bdir, cache, env->site, prepare_log, &w, &e);
	/* 2. the node */
	if (cn.started)
		pthread_join(cn.th, NULL);
	else
		connect_main(&cn);
	node = cn.node;
	all[0] = (bnode){ .j = nodej, .name = node_name, .spec = spec, .node = node };
	for (size_t k = 1; k < nall; k++) {
		if (all[k].cn.started)
			pthread_join(all[k].cn.th, NULL);
		else
			connect_main(&all[k].cn);
		all[k].node = all[k].cn.node;
	}
	if (prc) {
		if (prc == VZ_ECONFLICT)
			result = "MERGE_CONFLICT";
		snprintf(message, sizeof(message), "%s%s", prc == VZ_ECONFLICT ? "" : "cannot prepare the workspace: ",
			 vz_err_msg(&e));
		logf_line(&w, "vinz: %s", message);
		goto done;
	}
	src = vz_xstrdup(prepared.projects[0].dir);
	vz_strlcpy(commit, prepared.commit, sizeof(commit));
	int rc = cn.rc;
	const vz_err *cerr = &cn.e;
	for (size_t k = 1; k < nall && !rc; k++)
		if ((rc = all[k].cn.rc))
			cerr = &all[k].cn.e;
	if (rc) {
		result = rc == VZ_EHOSTKEY || rc == VZ_EAUTH || rc == VZ_EINVAL ? "NODE_FAILURE" : "RETRY";
		w.node_failed = 1;
		snprintf(message, sizeof(message), "%s", vz_err_msg(cerr)); /* names the node already */
		logf_line(&w, "vinz: %s", message);
		goto done;
	}

	/* 3. the work tree on the nodes: local nodes use the checkout itself */
	const char *cwd = src;
	char remote_dir[1200] = "";
	for (size_t k = 0; k < nall; k++) {
		if (all[k].spec.kind != VZ_NODE_SSH)
			continue;
		if (deliver_node(&w, &all[k], &prepared, uuid, env, cancel, remote_dir, sizeof(remote_dir), &result, message,
				 sizeof(message)))
			goto done;
		if (k == 0)
			cwd = remote_dir;
	}

	/* 4. the job: playbooks (Zuul's phases) or plain commands */
	if (ctl->running)
		__atomic_store_n(ctl->running, 1, __ATOMIC_RELEASE);
	if (json_is_object(json_object_get(req, "playbooks"))) {
		json_int_t tmo_s = json_integer_value(json_object_get(req, "timeout"));
		uint64_t dl = vz_mono_ms() + (uint64_t)(tmo_s > 0 ? tmo_s : 1800) * 1000u;
		vz_build_ctl pctl = { cancel, ctl->resume, NULL };
		run_playbooks(req, &prepared, bdir, all, nall, env, &pctl, &w, dl, &result, message, sizeof(message), &data);
		if (strcmp(result, "SUCCESS") != 0)
			logf_line(&w, "vinz: %s", message);
		goto done;
	}
	/* 4. the commands */
	const char *envv[9];
	char ebuf[8][600];
	const char *keys[][2] = { { "VINZ_BUILD", "build" }, { "VINZ_JOB", "job" }, { "VINZ_PROJECT", "project" },
				  { "VINZ_PIPELINE", "pipeline" }, { "VINZ_CHANGE", "change" }, { "VINZ_REF", "ref" },
				  { "VINZ_BRANCH", "branch" } };
	int ne = 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(ebuf[ne], sizeof(ebuf[ne]), "%s=%s", keys[i][0], jstr(req, keys[i][1]));
		envv[ne] = ebuf[ne];
		ne++;
	}
	snprintf(ebuf[ne], sizeof(ebuf[ne]), "VINZ_COMMIT=%s", commit);
	envv[ne] = ebuf[ne];
	ne++;
	envv[ne] = NULL;
	json_t *cmds = json_object_get(req, "commands");
	json_int_t timeout_s = json_integer_value(json_object_get(req, "timeout"));
	uint64_t deadline = vz_mono_ms() + (uint64_t)(timeout_s > 0 ? timeout_s : 1800) * 1000u;
	result = "SUCCESS";
	size_t i;
	json_t *cj;
	json_array_foreach(cmds, i, cj) {
		const char *cmd = json_string_value(cj);
		if (!cmd)
			continue;
		uint64_t now = vz_mono_ms();
		if (now >= deadline) {
			result = "TIMED_OUT";
			break;
		}
		logf_line(&w, "$ %s", cmd);
		w.fo_active = 1;
		vz_node_cmd c = { .command = cmd, .cwd = cwd, .env = envv, .timeout_ms = (int)(deadline - now),
				  .on_output = on_output, .ctx = &w, .cancel = cancel };
		vz_node_result r = { 0 };
		vz_err ce = { 0 };
		rc = vz_node_exec(node, &c, &r, &ce);
		end_lines(&w);
		w.fo_active = 0;
		if (rc == VZ_ETIMEOUT) {
			result = "TIMED_OUT";
			snprintf(message, sizeof(message), "job timed out after %lld s in: %s", (long long)timeout_s, cmd);
		} else if (rc == VZ_ECANCELED) {
			/* the scheduler canceled the build, the executor hands it back, or it went over
			 * its disk limit */
			result = cancel_result(*cancel);
			snprintf(message, sizeof(message), "%s", cancel_message(*cancel));
		} else if (rc) {
			result = "RETRY";
			w.node_failed = 1;
			snprintf(message, sizeof(message), "node %s failed during the job: %s", node_name, vz_err_msg(&ce));
		} else if (r.exit_status != 0) {
			result = "FAILURE";
			snprintf(message, sizeof(message), "command exited %d: %s", r.exit_status, cmd);
		}
		logf_line(&w, "vinz: exit %d after %.3f s", r.exit_status, (double)r.duration_ms / 1000.0);
		if (strcmp(result, "SUCCESS") != 0) {
			logf_line(&w, "vinz: %s", message);
			break;
		}
	}
	if (strcmp(result, "SUCCESS") == 0 && w.fo_matched) {
		result = "FAILURE";
		snprintf(message, sizeof(message), "%s", w.fo_msg);
		logf_line(&w, "vinz: %s", message);
	}
done:
	disk_stop(&disk);
	if (strcmp(result, "DISK_FULL") == 0)
		logf_line(&w, "vinz: the build's directory used %lld MB, over disk_limit_per_job (%d MB)",
			  disk.used / (1024 * 1024), env->disk_limit_mb);
	/* the log directory's files (job-output.json, what post-run fetched) go to the log store;
	 * a build handed back starts over, so its files do not count */
	json_t *files = NULL;
	if (bdir && strcmp(result, "REQUEUE") != 0) {
		char *logs = vz_path_join(bdir, "logs");
		files = send_log_files(&w, logs);
		free(logs);
	}
	if (w.fd >= 0) {
		logf_line(&w, "vinz: result %s", result);
		flush(&w);
		close(w.fd);
	}
	all[0].node = node;
	all[0].j = nodej;
	all[0].name = node_name;
	all[0].spec.kind = spec.kind;
	for (size_t k = 0; k < nall; k++) {
		if (all[k].node && all[k].spec.kind == VZ_NODE_SSH && json_is_true(json_object_get(all[k].j, "shared"))) {
			/* per-build directories on shared nodes do not outlive the build */
			char rm[200];
			snprintf(rm, sizeof(rm), "rm -rf 'vinz-builds/%s'", uuid);
			vz_node_cmd c = { .command = rm, .timeout_ms = 60000 };
			vz_node_result r = { 0 };
			vz_err ce = { 0 };
			if (vz_node_exec(all[k].node, &c, &r, &ce) || r.exit_status != 0)
				vz_warn("build %s: cannot remove its directory on node %s: %s", uuid, all[k].name, vz_err_msg(&ce));
		}
		if (k > 0)
			vz_node_close(all[k].node);
	}
	vz_node_close(node);
	json_t *body = json_pack("{s:s,s:I,s:s,s:s,s:I,s:I,s:s,s:s,s:s}", "build", uuid, "attempt", attempt, "result", result,
				 "message", message, "started_at", (json_int_t)started, "ended_at", (json_int_t)vz_wall_ms(),
				 "commit", commit, "node", node_name, "executor", env->executor ? env->executor : "");
	/* a build handed back is run again from the start: its log here does not count */
	if (strcmp(result, "REQUEUE") != 0)
		json_object_set_new(body, "log_size", json_integer((json_int_t)w.offset));
	if (w.node_failed && strcmp(result, "SUCCESS") != 0)
		json_object_set_new(body, "node_failed", json_true());
	if (files)
		json_object_set_new(body, "files", files);
	add_returned(body, data);
	json_decref(data);
	emit(ctx, VZ_MSG_RESULT, body);
	/* the workspaces are not needed once the result exists; the log stays until the result is acked */
	if (bdir && !env->keep_workspace) {
		char *srcroot = vz_path_join(bdir, "src");
		vz_rm_rf(srcroot, NULL);
		free(srcroot);
	}
	vz_prepared_clear(&prepared);
	vz_redactor_free(w.redact);
	for (size_t k = 0; k < w.nfo; k++)
		regfree(&w.fo[k]);
	vz_buf_free(&w.pending);
	for (int k = 0; k < 3; k++)
		vz_buf_free(&w.line[k]);
	free(bdir);
	free(src);
	free(logp);
	free(cache);
}
