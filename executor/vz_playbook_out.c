/* vz_playbook_out: what a run tells the world: Ansible's default text output (PLAY/TASK
 * banners, ok/changed/failed/skipping lines, PLAY RECAP), the document of Ansible's json stdout
 * callback, and Zuul's job-output.txt (timestamped lines per host, streamed) and job-output.json.
 * no_log results are censored here, once, before any of them sees the result. */
#include "vz_playbook_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "vz_util.h"

#define CENSORED "the output has been hidden due to the fact that 'no_log: true' was specified for this result"

static void ts_now(char *buf, size_t n)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(buf, n, "%04d-%02d-%02d %02d:%02d:%02d.%06ld", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
}

static json_t *iso_now(void)
{
	char b[96];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(b, sizeof(b), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
	return json_string(b);
}

static json_t *new_id(void)
{
	char u[37];
	vz_uuid(u);
	return json_string(u);
}

/* job-output.txt: "TIMESTAMP | text", flushed per line so it can be streamed. out_lock held. */
static void txt_line(runner *r, const char *host, const char *text)
{
	char ts[96];
	if (r->o->on_line)
		r->o->on_line(r->o->line_ctx, host, text);
	if (!r->txt)
		return;
	ts_now(ts, sizeof(ts));
	if (host)
		fprintf(r->txt, "%s | %s | %s\n", ts, host, text);
	else
		fprintf(r->txt, "%s | %s\n", ts, text);
	fflush(r->txt);
}

static void banner(FILE *f, const char *kind, const char *name)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "%s [%s] ", kind, name ? name : "");
	if (n < 0)
		return;
	fprintf(f, "\n%s", line);
	for (int i = n; i < 80; i++)
		fputc('*', f);
	fputc('\n', f);
}

int vz_pb_out_open(runner *r, vz_err *e)
{
	r->doc = json_pack("{s:{},s:{},s:[],s:{}}", "custom_stats", "global_custom_stats", "plays", "stats");
	r->all_docs = json_array();
	if (r->o->log_dir) {
		char *p = vz_path_join(r->o->log_dir, "job-output.txt");
		if ((vz_mkdir_p(r->o->log_dir, 0755, e)) != 0) {
			free(p);
			return e ? e->code : VZ_EIO;
		}
		r->txt = p ? fopen(p, "ae") : NULL;
		if (!r->txt) {
			int err = errno;
			vz_err_set(e, VZ_EIO, "cannot write %s: %s", p ? p : r->o->log_dir, strerror(err));
			free(p);
			return VZ_EIO;
		}
		free(p);
	}
	return 0;
}

void vz_pb_out_playbook_start(runner *r, const char *path)
{
	pthread_mutex_lock(&r->out_lock);
	char msg[4200];
	snprintf(msg, sizeof(msg), "PLAYBOOK [%s]", path);
	txt_line(r, NULL, msg);
	json_array_append_new(r->all_docs, json_pack("{s:s,s:[],s:I}", "playbook", path, "plays", "__first",
						     (json_int_t)json_array_size(json_object_get(r->doc, "plays"))));
	pthread_mutex_unlock(&r->out_lock);
}

static json_t *stats_json(runner *r)
{
	json_t *st = json_object();
	for (size_t i = 0; i < r->nhosts; i++) {
		pb_host *h = r->hosts[i];
		json_object_set_new(st, h->name, json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "changed", h->st.changed,
							   "failures", h->st.failures, "ignored", h->st.ignored, "ok",
							   h->st.ok, "rescued", h->st.rescued, "skipped", h->st.skipped,
							   "unreachable", h->st.unreachable));
	}
	return st;
}

void vz_pb_out_playbook_end(runner *r)
{
	pthread_mutex_lock(&r->out_lock);
	json_t *d = json_array_get(r->all_docs, json_array_size(r->all_docs) - 1);
	json_t *plays = json_object_get(r->doc, "plays");
	size_t first = (size_t)json_integer_value(json_object_get(d, "__first"));
	for (size_t i = first; i < json_array_size(plays); i++)
		json_array_append(json_object_get(d, "plays"), json_array_get(plays, i));
	json_object_del(d, "__first");
	json_object_set_new(d, "stats", stats_json(r));
	pthread_mutex_unlock(&r->out_lock);
}

void vz_pb_out_play_start(runner *r, const char *name)
{
	pthread_mutex_lock(&r->out_lock);
	if (r->o->out)
		banner(r->o->out, "PLAY", name);
	char msg[600];
	snprintf(msg, sizeof(msg), "PLAY [%.500s]", name ? name : "");
	txt_line(r, NULL, msg);
	json_decref(r->cur_play);
	r->cur_play = json_pack("{s:{s:{s:o},s:o,s:s},s:[]}", "play", "duration", "start", iso_now(), "id", new_id(),
				"name", name ? name : "", "tasks");
	json_array_append(json_object_get(r->doc, "plays"), r->cur_play);
	pthread_mutex_unlock(&r->out_lock);
}

void vz_pb_out_play_end(runner *r)
{
	pthread_mutex_lock(&r->out_lock);
	if (r->cur_play)
		json_object_set_new(json_object_get(json_object_get(r->cur_play, "play"), "duration"), "end", iso_now());
	json_decref(r->cur_play);
	r->cur_play = NULL;
	pthread_mutex_unlock(&r->out_lock);
}

void vz_pb_out_task_start(runner *r, const pb_task *t, const char *name)
{
	(void)t;
	pthread_mutex_lock(&r->out_lock);
	if (r->o->out)
		banner(r->o->out, t && t->is_handler ? "RUNNING HANDLER" : "TASK", name);
	char msg[600];
	snprintf(msg, sizeof(msg), "%s [%.500s]", t && t->is_handler ? "RUNNING HANDLER" : "TASK", name ? name : "");
	txt_line(r, NULL, msg);
	json_decref(r->cur_task);
	r->cur_task = json_pack("{s:{},s:{s:{s:o},s:o,s:s}}", "hosts", "task", "duration", "start", iso_now(), "id",
				new_id(), "name", name ? name : "");
	if (r->cur_play)
		json_array_append(json_object_get(r->cur_play, "tasks"), r->cur_task);
	pthread_mutex_unlock(&r->out_lock);
}

void vz_pb_out_task_end(runner *r)
{
	pthread_mutex_lock(&r->out_lock);
	if (r->cur_task)
		json_object_set_new(json_object_get(json_object_get(r->cur_task, "task"), "duration"), "end", iso_now());
	json_decref(r->cur_task);
	r->cur_task = NULL;
	if (r->o->out)
		fflush(r->o->out);
	pthread_mutex_unlock(&r->out_lock);
}

static json_t *censor(const json_t *res)
{
	json_t *c = json_pack("{s:s}", "censored", CENSORED);
	static const char *const keep[] = { "attempts", "changed", "retries", NULL };
	for (size_t i = 0; keep[i]; i++)
		if (json_object_get(res, keep[i]))
			json_object_set(c, keep[i], json_object_get(res, keep[i]));
	return c;
}

/* The result as callbacks see it: internal keys dropped, no_log censored (items too). */
static json_t *clean_copy(const json_t *res, int no_log)
{
	if (no_log) {
		json_t *c = censor(res);
		json_t *items = json_object_get(res, "results");
		if (json_is_array(items)) {
			json_t *a = json_array();
			for (size_t i = 0; i < json_array_size(items); i++)
				json_array_append_new(a, censor(json_array_get(items, i)));
			json_object_set_new(c, "results", a);
		}
		return c;
	}
	return json_deep_copy(res);
}

static char *compact(const json_t *j)
{
	return json_dumps(j, JSON_SORT_KEYS | JSON_ENCODE_ANY); /* ", " and ": " as Python json.dumps */
}

void vz_pb_out_result(runner *r, const pb_task *t, const char *host, const char *delegate, const json_t *res, int failed,
		      int skipped, int unreachable, int ignored, int no_log)
{
	json_t *c = clean_copy(res ? res : r->empty, no_log);
	const char *word = unreachable ? "fatal" : failed ? "fatal" : skipped ? "skipping" :
			   json_is_true(json_object_get(res, "changed")) ? "changed" : "ok";
	char who[600];
	if (delegate)
		snprintf(who, sizeof(who), "%s -> %s", host, delegate);
	else
		snprintf(who, sizeof(who), "%s", host);

	pthread_mutex_lock(&r->out_lock);
	if (r->o->out) {
		FILE *f = r->o->out;
		json_t *items = json_object_get(c, "results");
		if (json_is_array(items) && !unreachable) {
			for (size_t i = 0; i < json_array_size(items); i++) {
				json_t *it = json_array_get(items, i);
				json_t *lab = json_object_get(it, "_ansible_item_label");
				char *ls = json_is_string(lab) ? strdup(json_string_value(lab)) : lab ? compact(lab) : strdup("?");
				const char *iw = json_is_true(json_object_get(it, "failed")) ? "failed" :
						 json_is_true(json_object_get(it, "skipped")) ? "skipping" :
						 json_is_true(json_object_get(it, "changed")) ? "changed" : "ok";
				if (!strcmp(iw, "failed")) {
					char *d = compact(it);
					fprintf(f, "failed: [%s] (item=%s) => %s\n", who, ls ? ls : "?", d ? d : "{}");
					free(d);
				} else {
					fprintf(f, "%s: [%s] => (item=%s)\n", iw, who, ls ? ls : "?");
				}
				free(ls);
			}
			if (failed) {
				char *d = compact(c);
				fprintf(f, "fatal: [%s]: FAILED! => {\"msg\": \"One or more items failed\"}\n", who);
				free(d);
			}
		} else if (unreachable) {
			char *d = compact(c);
			fprintf(f, "fatal: [%s]: UNREACHABLE! => %s\n", who, d ? d : "{}");
			free(d);
		} else if (failed) {
			json_t *shown = json_copy(c); /* Ansible leaves "failed" out of the line */
			json_object_del(shown, "failed");
			char *d = compact(shown);
			fprintf(f, "fatal: [%s]: FAILED! => %s\n", who, d ? d : "{}");
			free(d);
			json_decref(shown);
		} else if (t && t->action && !strcmp(t->action, "debug") && !skipped) {
			json_t *shown = json_object();
			const char *k;
			json_t *x;
			json_object_foreach(c, k, x)
				if (strcmp(k, "changed") && strcmp(k, "failed") && strncmp(k, "_ansible", 8))
					json_object_set(shown, k, x);
			char *d = json_dumps(shown, JSON_INDENT(4) | JSON_SORT_KEYS);
			fprintf(f, "%s: [%s] => %s\n", word, who, d ? d : "{}");
			free(d);
			json_decref(shown);
		} else {
			fprintf(f, "%s: [%s]\n", word, who);
		}
		if (ignored)
			fprintf(f, "...ignoring\n");
	}
	if (r->txt) {
		char line[1200];
		const char *msg = json_string_value(json_object_get(c, "msg"));
		if ((failed || unreachable) && msg)
			snprintf(line, sizeof(line), "%s%s: %.1000s", unreachable ? "UNREACHABLE" : "FAILED",
				 ignored ? " (ignored)" : "", msg);
		else if (t && t->action && !strcmp(t->action, "debug") && msg && !no_log)
			snprintf(line, sizeof(line), "%s: %.1000s", word, msg);
		else
			snprintf(line, sizeof(line), "%s%s", unreachable ? "UNREACHABLE" : failed ? "FAILED" : word,
				 ignored ? " (ignored)" : "");
		txt_line(r, who, line);
	}
	if (r->cur_task) {
		json_t *rec = json_deep_copy(c);
		json_object_set_new(rec, "_ansible_no_log", json_boolean(no_log));
		json_object_set_new(rec, "action", json_string(t && t->action ? t->action : ""));
		json_object_set_new(json_object_get(r->cur_task, "hosts"), host, rec);
	}
	pthread_mutex_unlock(&r->out_lock);
	json_decref(c);
}

void vz_pb_out_retry(runner *r, const char *host, int left)
{
	pthread_mutex_lock(&r->out_lock);
	if (r->o->out)
		fprintf(r->o->out, "FAILED - RETRYING: [%s]: (%d retries left).\n", host, left);
	char msg[128];
	snprintf(msg, sizeof(msg), "FAILED - RETRYING (%d retries left)", left);
	txt_line(r, host, msg);
	pthread_mutex_unlock(&r->out_lock);
}

void vz_pb_out_line(runner *r, const char *host, const char *line)
{
	pthread_mutex_lock(&r->out_lock);
	txt_line(r, host, line);
	pthread_mutex_unlock(&r->out_lock);
}

void vz_pb_out_msg(runner *r, const char *msg)
{
	pthread_mutex_lock(&r->out_lock);
	if (r->o->out)
		fprintf(r->o->out, "%s\n", msg);
	txt_line(r, NULL, msg);
	pthread_mutex_unlock(&r->out_lock);
}

void vz_pb_out_recap(runner *r)
{
	pthread_mutex_lock(&r->out_lock);
	if (r->o->out) {
		fputs("\nPLAY RECAP ", r->o->out);
		for (int i = 11; i < 80; i++)
			fputc('*', r->o->out);
		fputc('\n', r->o->out);
	}
	txt_line(r, NULL, "PLAY RECAP");
	for (size_t i = 0; i < r->nhosts; i++) {
		pb_host *h = r->hosts[i];
		char line[700];
		snprintf(line, sizeof(line), "%-26s : ok=%-4d changed=%-4d unreachable=%-4d failed=%-4d skipped=%-4d "
			 "rescued=%-4d ignored=%-4d", h->name, h->st.ok, h->st.changed, h->st.unreachable, h->st.failures,
			 h->st.skipped, h->st.rescued, h->st.ignored);
		if (r->o->out)
			fprintf(r->o->out, "%s\n", line);
		txt_line(r, NULL, line);
	}
	if (r->o->out) {
		fputc('\n', r->o->out);
		fflush(r->o->out);
	}
	json_object_set_new(r->doc, "stats", stats_json(r));
	pthread_mutex_unlock(&r->out_lock);
}

void vz_pb_out_close(runner *r, vz_playbook_result *out, int rc)
{
	(void)rc;
	if (r->o->log_dir && r->all_docs) {
		char *p = vz_path_join(r->o->log_dir, "job-output.json");
		/* one record per playbook, like job-output.txt across the runs of one build (Zuul's
		 * job-output.json holds every playbook of the job): earlier runs' records stay */
		json_t *prev = p ? json_load_file(p, 0, NULL) : NULL;
		if (json_is_array(prev)) {
			json_array_extend(prev, r->all_docs);
			json_decref(r->all_docs);
			r->all_docs = prev;
		} else {
			json_decref(prev);
		}
		char *s = json_dumps(r->all_docs, JSON_INDENT(2));
		vz_err e = { 0 };
		if (p && s && vz_write_file_atomic(p, s, strlen(s), 0644, &e) != 0 && r->o->out)
			fprintf(r->o->out, "vinz: %s\n", vz_err_msg(&e));
		free(p);
		free(s);
	}
	if (r->txt)
		fclose(r->txt);
	r->txt = NULL;
	if (r->o->want_json)
		out->json = json_incref(r->doc);
	json_decref(r->doc);
	json_decref(r->all_docs);
	json_decref(r->cur_play);
	json_decref(r->cur_task);
	r->doc = r->all_docs = r->cur_play = r->cur_task = NULL;
}
