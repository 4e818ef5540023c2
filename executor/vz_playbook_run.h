/* vz_playbook_run: the runner's state, shared by the runner (vz_playbook_run.c) and its output
 * (vz_playbook_out.c). Not for use outside executor/vz_playbook*.c. */
#ifndef VZ_PLAYBOOK_RUN_H
#define VZ_PLAYBOOK_RUN_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "vz_playbook_int.h"

typedef struct pb_stats {
	int ok, changed, unreachable, failures, skipped, rescued, ignored;
} pb_stats;

/* One inventory host during a run. Its fields are changed only by the thread running a task
 * for it (or the main thread between tasks); lock serialises use of its connection. */
typedef struct pb_host {
	char *name;
	json_t *inv_vars; /* inventory variables */
	json_t *facts;    /* gathered facts (ansible_*), "__ansible_facts" the unprefixed ones */
	json_t *hfacts;   /* set_fact, include_vars and registered results */
	json_t *notified; /* handler names notified and not yet run */
	vz_node *node;
	int own_node;
	int conn_failed;
	char *conn_msg;
	pthread_mutex_t lock;
	int failed, unreachable, ended, in_rescue;
	int implicit_local;
	pb_stats st;
} pb_host;

typedef struct runner {
	const vz_playbook_opts *o;
	vz_playbook *pb;
	pb_play *play;
	char *play_name;
	pb_host **hosts;
	size_t nhosts;
	pthread_mutex_t hosts_lock;
	json_t *play_vars, *role_defaults, *role_vars, *extra, *groups, *hostvars, *play_hosts, *play_hosts_all, *empty;
	pb_list dyn; /* blocks made for include_* at run time */
	vz_template_opts topts;
	size_t output_max;
	uint64_t deadline;
	int timed_out, end_play, other_error;
	vz_err fatal; /* an error that stops the whole run (exit 1), set once */
	/* output */
	pthread_mutex_t out_lock;
	FILE *txt;          /* job-output.txt */
	json_t *doc;        /* json-callback document of the current playbook */
	json_t *all_docs;   /* job-output.json: one document per playbook */
	json_t *cur_play, *cur_task;
	char *cur_task_start;
	json_t *results_order;
} runner;

json_t *vz_pb_task_vars(runner *r, const pb_task *t, pb_host *h, json_t **lazy_out);

int vz_pb_out_open(runner *r, vz_err *e);
void vz_pb_out_playbook_start(runner *r, const char *path);
void vz_pb_out_playbook_end(runner *r);
void vz_pb_out_play_start(runner *r, const char *name);
void vz_pb_out_play_end(runner *r);
void vz_pb_out_task_start(runner *r, const pb_task *t, const char *name);
void vz_pb_out_task_end(runner *r);
/* One host's result of the current task (borrowed). */
void vz_pb_out_result(runner *r, const pb_task *t, const char *host, const char *delegate, const json_t *res, int failed,
		      int skipped, int unreachable, int ignored, int no_log);
void vz_pb_out_retry(runner *r, const char *host, int left);
/* A line of a command's output on host (job-output.txt only); thread-safe. */
void vz_pb_out_line(runner *r, const char *host, const char *line);
void vz_pb_out_msg(runner *r, const char *msg);
void vz_pb_out_recap(runner *r);
/* Writes job-output.json, hands the json document to out (want_json) and closes files. */
void vz_pb_out_close(runner *r, vz_playbook_result *out, int rc);

#endif
