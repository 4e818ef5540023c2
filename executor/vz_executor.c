/* vz_executor: the executor loop; see vz_executor.h and docs/protocol.md. */
#include "vz_executor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "vz_build.h"
#include "vz_curve.h"
#include "vz_governor.h"
#include "vz_log.h"
#include "vz_map.h"
#include "vz_mergejob.h"
#include "vz_proto.h"
#include "vz_util.h"
#include "vz_workspace.h"

#define RESEND_MS 2000
#define STOP_GRACE_MS 5000
#define MERGE_QUEUE_MAX 1000 /* merge requests waiting for a merge slot */
#define MERGE_ID_MAX 63      /* bytes of a merge request's id (pending.uuid holds 63) */

typedef struct job {
	struct vz_executor *x;
	char uuid[64];
	json_int_t attempt;
	json_t *req;
	pthread_t thread;
	volatile int cancel;
	volatile int resume;
	int pause_ok;           /* the scheduler resumes paused builds (welcome features "pause") */
	volatile int finished;
	volatile int running_phase; /* set by the build once its node runs the job (Zuul's "started") */
	json_t *paused;         /* the build's "paused" message while it waits for resume: re-sent
				 * with every heartbeat so a reconnected scheduler learns it */
	void *push;             /* the thread's PUSH socket to the main loop */
	struct job *next;
} job;

/* A merge request on its thread (vz_mergejob). */
typedef struct mergejob {
	struct vz_executor *x;
	char id[MERGE_ID_MAX + 1];
	json_t *req;
	pthread_t thread;
	volatile int finished;
	void *push;             /* the thread's PUSH socket to the main loop */
	struct mergejob *next;
} mergejob;

typedef struct pending {
	char uuid[64];
	json_int_t attempt;
	json_t *body;           /* the result message body */
	uint64_t last_sent;
} pending;

struct vz_executor {
	const vz_config *cfg;
	void *zctx, *dealer, *inbox;
	char endpoint[512];
	char inbox_ep[128];
	char instance[37];
	char rid[VZ_PROTO_MAX_PEER_ID + 1];
	char sched_instance[64];
	int welcomed;
	int sched_pause;        /* the scheduler's welcome listed the feature "pause" */
	int heartbeat_ms, lease_ms;
	uint64_t last_rx, last_hello, last_hb;
	long long seen;
	int running;
	int stopping;           /* set once a stop was asked: no new builds */
	int governed;           /* a sensor is over its limit: no new builds (vz_governor) */
	long long free_sent;    /* free slots last reported */
	int paused;             /* `vinz executor --pause`: no new builds, running ones go on */
	int handing_back;       /* second stop: running builds canceled and handed back (REQUEUE) */
	void *control;          /* ROUTER at ipc://WORK_DIR/control.sock (--pause, --resume, --status) */
	char control_ep[700];
	uint64_t last_sense;
	job *jobs;
	vz_map *pending;        /* uuid -> pending result */
	mergejob *merges;       /* merge requests running (at most executor.merge_capacity) */
	int nmerges;
	json_t *merge_queue;    /* merge request bodies waiting for a slot, in arrival order */
	vz_map *merge_pending;  /* merge id -> pending "merged" answer, until merge_ack */
	char *cache_root;       /* WORK_DIR/cache, shared by builds and merges */
	vz_build_env env;
};

static void send_msg(vz_executor *x, vz_msg_type t, json_t *body)
{
	vz_err e = { 0 };
	if (vz_proto_send(x->dealer, NULL, 0, t, NULL, body, &e))
		vz_warn("cannot send %s to the scheduler: %s", vz_msg_type_name(t), vz_err_msg(&e));
	json_decref(body);
}

static json_t *running_list(vz_executor *x)
{
	json_t *a = json_array();
	for (job *j = x->jobs; j; j = j->next)
		if (!j->finished)
			json_array_append_new(a, json_string(j->uuid));
	return a;
}

static void send_hello(vz_executor *x)
{
	json_t *labels = json_array();
	for (size_t i = 0; i < x->cfg->executor.nlabels; i++)
		json_array_append_new(labels, json_string(x->cfg->executor.labels[i]));
	json_t *hello = json_pack("{s:s,s:s,s:s,s:i,s:o,s:o}", "executor", x->cfg->executor.name, "instance", x->instance,
				  "version", "vinz", "capacity", x->cfg->executor.capacity, "labels", labels, "running",
				  running_list(x));
	if (x->cfg->executor.zone) {
		json_object_set_new(hello, "zone", json_string(x->cfg->executor.zone));
		json_object_set_new(hello, "allow_unzoned", json_boolean(x->cfg->executor.allow_unzoned));
	}
	send_msg(x, VZ_MSG_HELLO, hello);
	x->last_hello = vz_mono_ms();
}

/* Zuul's starting-builds sensor (vz_governor_starting_ok): builds still preparing (merging,
 * sending workspaces) hold back new ones. */
static int starting_ok(vz_executor *x)
{
	long starting = 0;
	for (job *j = x->jobs; j; j = j->next)
		starting += !__atomic_load_n(&j->running_phase, __ATOMIC_ACQUIRE) &&
			    !__atomic_load_n(&j->finished, __ATOMIC_ACQUIRE);
	return vz_governor_starting_ok(starting, x->running, x->cfg->executor.max_starting_builds,
				       x->cfg->executor.load_multiplier, sysconf(_SC_NPROCESSORS_ONLN), NULL, 0);
}

static long long free_slots(vz_executor *x)
{
	if (x->stopping || x->governed || x->paused || !starting_ok(x))
		return 0;
	long long f = x->cfg->executor.capacity - x->running;
	return f < 0 ? 0 : f;
}

static void send_ready(vz_executor *x)
{
	if (!x->welcomed)
		return;
	x->free_sent = free_slots(x);
	send_msg(x, VZ_MSG_READY, json_pack("{s:I,s:I}", "free", x->free_sent, "seen", x->seen));
}

static void send_result(vz_executor *x, struct pending *p);

/* ---------- build threads ---------- */

static void job_emit(void *ctx, vz_msg_type type, json_t *body)
{
	job *j = ctx;
	vz_err e = { 0 };
	if (vz_proto_send(j->push, NULL, 0, type, NULL, body, &e))
		vz_warn("build %s: cannot pass %s to the executor loop: %s", j->uuid, vz_msg_type_name(type), vz_err_msg(&e));
	json_decref(body);
}

/* Sets a build's cancel flag unless something stopped it already (the scheduler, a stop, its
 * disk watcher): the first reason decides its result. */
static void cancel_once(job *j, int why)
{
	int zero = 0;
	__atomic_compare_exchange_n(&j->cancel, &zero, why, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static void *job_main(void *arg)
{
	job *j = arg;
	vz_build_ctl ctl = { &j->cancel, j->pause_ok ? &j->resume : NULL, &j->running_phase };
	vz_build_run_ctl(j->req, &j->x->env, &ctl, job_emit, j);
	zmq_close(j->push);
	j->push = NULL;
	__atomic_store_n(&j->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void start_build(vz_executor *x, vz_msg *m)
{
	const char *uuid = vz_msg_str(m, "build");
	x->seen++;
	for (job *j = x->jobs; j; j = j->next)
		if (strcmp(j->uuid, uuid) == 0)
			return; /* a duplicate request: it is already running */
	if (vz_map_get(x->pending, uuid))
		return;     /* already finished; its result is on its way */
	if (x->stopping) {
		/* it never ran here: the scheduler queues the same attempt again, uncounted */
		pending *p = vz_xcalloc(1, sizeof(*p));
		vz_strlcpy(p->uuid, uuid, sizeof(p->uuid));
		p->attempt = vz_msg_int(m, "attempt", 1);
		p->body = json_pack("{s:s,s:I,s:s,s:s}", "build", uuid, "attempt", p->attempt, "result", "REQUEUE",
				    "message", "the executor is stopping");
		vz_map_set(x->pending, p->uuid, p);
		send_result(x, p);
		return;
	}
	job *j = vz_xcalloc(1, sizeof(*j));
	j->x = x;
	vz_strlcpy(j->uuid, uuid, sizeof(j->uuid));
	j->attempt = vz_msg_int(m, "attempt", 1);
	j->pause_ok = x->sched_pause;
	j->req = json_incref(m->body);
	j->push = zmq_socket(x->zctx, ZMQ_PUSH);
	int zero = 0;
	zmq_setsockopt(j->push, ZMQ_LINGER, &zero, sizeof(zero));
	int hwm = 0; /* never drop: the build thread waits instead */
	zmq_setsockopt(j->push, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	if (zmq_connect(j->push, x->inbox_ep) != 0 || pthread_create(&j->thread, NULL, job_main, j) != 0) {
		vz_error("cannot start build %s: %s", uuid, zmq_strerror(zmq_errno()));
		zmq_close(j->push);
		json_decref(j->req);
		free(j);
		/* tell the scheduler: it will retry elsewhere */
		send_msg(x, VZ_MSG_RESULT,
			 json_pack("{s:s,s:I,s:s,s:s}", "build", uuid, "attempt", vz_msg_int(m, "attempt", 1), "result", "RETRY",
				   "message", "executor could not start a thread"));
		return;
	}
	j->next = x->jobs;
	x->jobs = j;
	x->running++;
	vz_info("build %s (%s, %s %s) started", uuid, vz_msg_str(m, "job"), vz_msg_str(m, "project"), vz_msg_str(m, "change"));
}

static void reap(vz_executor *x)
{
	job **pp = &x->jobs;
	int changed = 0;
	while (*pp) {
		job *j = *pp;
		if (!__atomic_load_n(&j->finished, __ATOMIC_ACQUIRE)) {
			pp = &j->next;
			continue;
		}
		pthread_join(j->thread, NULL);
		*pp = j->next;
		json_decref(j->req);
		json_decref(j->paused);
		free(j);
		x->running--;
		changed = 1;
	}
	if (changed)
		send_ready(x);
}

/* ---------- merge requests (Zuul's mergers; vz_mergejob) ---------- */

static void send_merged(vz_executor *x, pending *p)
{
	send_msg(x, VZ_MSG_MERGED, json_incref(p->body));
	p->last_sent = vz_mono_ms();
}

static void *merge_main(void *arg)
{
	mergejob *mj = arg;
	vz_err e = { 0 };
	json_t *body;
	if (vz_workspace_global_init(&e))
		body = json_pack("{s:s,s:b,s:s}", "merge", mj->id, "ok", 0, "message", vz_err_msg(&e));
	else
		body = vz_mergejob_run(mj->req, mj->x->cache_root, mj->x->cfg);
	/* the answer must fit in one frame: say so instead of never answering */
	vz_buf b = VZ_BUF_INIT(VZ_PROTO_MAX_FRAME);
	if (vz_msg_encode(&b, VZ_MSG_MERGED, NULL, body, &e)) {
		char msg[512];
		snprintf(msg, sizeof(msg), "merge request %s: the answer does not fit in one message (%s); ask for fewer "
			 "items or projects per request", mj->id, vz_err_msg(&e));
		json_decref(body);
		body = json_pack("{s:s,s:b,s:s}", "merge", mj->id, "ok", 0, "message", msg);
	}
	vz_buf_free(&b);
	vz_err se = { 0 };
	if (vz_proto_send(mj->push, NULL, 0, VZ_MSG_MERGED, NULL, body, &se))
		vz_warn("merge %s: cannot pass its answer to the executor loop: %s", mj->id, vz_err_msg(&se));
	json_decref(body);
	zmq_close(mj->push);
	mj->push = NULL;
	__atomic_store_n(&mj->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Keeps an answer until its merge_ack and sends it. */
static void merge_answer(vz_executor *x, const char *id, json_t *body)
{
	pending *p = vz_xcalloc(1, sizeof(*p));
	vz_strlcpy(p->uuid, id, sizeof(p->uuid));
	p->body = body;
	pending *old = vz_map_get(x->merge_pending, id);
	if (old) {
		json_decref(old->body);
		free(old);
	}
	vz_map_set(x->merge_pending, p->uuid, p);
	if (x->welcomed)
		send_merged(x, p);
}

static void merge_done(vz_executor *x, vz_msg *m)
{
	const char *id = vz_msg_str(m, "merge");
	json_t *ok = json_object_get(m->body, "ok");
	if (json_is_true(ok))
		vz_info("merge %s done", id);
	else
		vz_info("merge %s failed: %s", id, vz_msg_str(m, "message"));
	merge_answer(x, id, json_incref(m->body));
}

/* Starts queued merge requests while merge slots are free. */
static void start_merges(vz_executor *x)
{
	while (x->nmerges < x->cfg->executor.merge_capacity && json_array_size(x->merge_queue) > 0) {
		json_t *req = json_incref(json_array_get(x->merge_queue, 0));
		json_array_remove(x->merge_queue, 0);
		mergejob *mj = vz_xcalloc(1, sizeof(*mj));
		mj->x = x;
		vz_strlcpy(mj->id, json_string_value(json_object_get(req, "merge")), sizeof(mj->id));
		mj->req = req;
		mj->push = zmq_socket(x->zctx, ZMQ_PUSH);
		int zero = 0;
		if (mj->push) {
			zmq_setsockopt(mj->push, ZMQ_LINGER, &zero, sizeof(zero));
			zmq_setsockopt(mj->push, ZMQ_SNDHWM, &zero, sizeof(zero));
		}
		if (!mj->push || zmq_connect(mj->push, x->inbox_ep) != 0 || pthread_create(&mj->thread, NULL, merge_main, mj) != 0) {
			vz_error("cannot start merge %s: %s", mj->id, zmq_strerror(zmq_errno()));
			char msg[300];
			snprintf(msg, sizeof(msg), "merge request %s: executor %s could not start a thread; send it elsewhere",
				 mj->id, x->cfg->executor.name);
			merge_answer(x, mj->id, json_pack("{s:s,s:b,s:s}", "merge", mj->id, "ok", 0, "message", msg));
			if (mj->push)
				zmq_close(mj->push);
			json_decref(req);
			free(mj);
			continue;
		}
		mj->next = x->merges;
		x->merges = mj;
		x->nmerges++;
		vz_info("merge %s started (%zu items, %zu projects)", mj->id, json_array_size(json_object_get(req, "items")),
			json_array_size(json_object_get(req, "projects")));
	}
}

static int merge_known(vz_executor *x, const char *id)
{
	for (mergejob *mj = x->merges; mj; mj = mj->next)
		if (strcmp(mj->id, id) == 0)
			return 1;
	size_t i;
	json_t *q;
	json_array_foreach(x->merge_queue, i, q) {
		if (strcmp(json_string_value(json_object_get(q, "merge")), id) == 0)
			return 1;
	}
	return 0;
}

static void on_merge(vz_executor *x, vz_msg *m)
{
	const char *id = vz_msg_str(m, "merge");
	if (!*id || strlen(id) > MERGE_ID_MAX) {
		vz_warn("the scheduler sent a merge request with an id of %zu bytes (1 to %d); refused", strlen(id), MERGE_ID_MAX);
		char msg[100];
		snprintf(msg, sizeof(msg), "merge: \"merge\" must be an id of 1 to %d bytes", MERGE_ID_MAX);
		send_msg(x, VZ_MSG_ERROR, json_pack("{s:s,s:s,s:s}", "code", "malformed", "message", msg, "ref", m->id));
		return;
	}
	if (merge_known(x, id))
		return; /* a duplicate: it is running or waiting */
	pending *p = vz_map_get(x->merge_pending, id);
	if (p) {
		send_merged(x, p); /* answered already: the answer again */
		return;
	}
	char msg[300];
	if (x->stopping || json_array_size(x->merge_queue) >= MERGE_QUEUE_MAX) {
		snprintf(msg, sizeof(msg), "merge request %s: executor %s %s; send it to another executor", id,
			 x->cfg->executor.name, x->stopping ? "is stopping" : "has 1000 merge requests waiting");
		merge_answer(x, id, json_pack("{s:s,s:b,s:s}", "merge", id, "ok", 0, "message", msg));
		return;
	}
	json_array_append(x->merge_queue, m->body);
	start_merges(x);
}

static void forget_merge(vz_executor *x, const char *id)
{
	pending *p = vz_map_del(x->merge_pending, id);
	if (p) {
		json_decref(p->body);
		free(p);
	}
}

static void reap_merges(vz_executor *x)
{
	mergejob **pp = &x->merges;
	while (*pp) {
		mergejob *mj = *pp;
		if (!__atomic_load_n(&mj->finished, __ATOMIC_ACQUIRE)) {
			pp = &mj->next;
			continue;
		}
		pthread_join(mj->thread, NULL);
		*pp = mj->next;
		json_decref(mj->req);
		free(mj);
		x->nmerges--;
	}
	start_merges(x);
}

/* ---------- messages from build threads ---------- */

static void send_result(vz_executor *x, struct pending *p)
{
	send_msg(x, VZ_MSG_RESULT, json_incref(p->body));
	p->last_sent = vz_mono_ms();
}

static void on_inbox(vz_executor *x)
{
	for (int n = 0; n < 1024; n++) {
		vz_msg *m = NULL;
		vz_err e = { 0 };
		int rc = vz_proto_recv(x->inbox, 0, NULL, NULL, &m, NULL, ZMQ_DONTWAIT, &e);
		if (rc == VZ_ETIMEOUT)
			return;
		if (rc) {
			vz_error("internal message refused: %s", vz_err_msg(&e));
			continue;
		}
		if (m->type == VZ_MSG_MERGED) {
			merge_done(x, m);
		} else if (m->type == VZ_MSG_RESULT) {
			pending *p = vz_xcalloc(1, sizeof(*p));
			vz_strlcpy(p->uuid, vz_msg_str(m, "build"), sizeof(p->uuid));
			p->attempt = vz_msg_int(m, "attempt", 1);
			p->body = json_incref(m->body);
			pending *old = vz_map_get(x->pending, p->uuid);
			if (old) {
				json_decref(old->body);
				free(old);
			}
			vz_map_set(x->pending, p->uuid, p);
			vz_info("build %s finished: %s", p->uuid, vz_msg_str(m, "result"));
			if (x->welcomed)
				send_result(x, p);
		} else {
			if (m->type == VZ_MSG_PAUSED) {
				for (job *j = x->jobs; j; j = j->next)
					if (strcmp(j->uuid, vz_msg_str(m, "build")) == 0 && !j->resume) {
						json_decref(j->paused);
						j->paused = json_incref(m->body);
					}
				vz_info("build %s paused (zuul.pause)", vz_msg_str(m, "build"));
			}
			/* started, log, early_failure, paused: best effort while connected; the log is
			 * re-sent on request, paused with every heartbeat */
			if (x->welcomed)
				send_msg(x, m->type, json_incref(m->body));
		}
		vz_msg_free(m);
	}
}

/* ---------- messages from the scheduler ---------- */

static void resend_log(vz_executor *x, const char *uuid, long long offset)
{
	char *lp = vz_build_log_path(x->env.work_dir, uuid);
	vz_buf b = VZ_BUF_INIT(256u * 1024 * 1024);
	vz_err e = { 0 };
	if (vz_read_file(lp, b.max, &b, &e) == 0 && offset >= 0 && (size_t)offset < b.len) {
		size_t off = (size_t)offset;
		while (off < b.len) {
			size_t n = b.len - off > 64 * 1024 ? 64 * 1024 : b.len - off;
			while (off + n < b.len && n > 0 && ((unsigned char)b.ptr[off + n] & 0xC0) == 0x80)
				n--;
			json_t *s = json_stringn(b.ptr + off, n);
			if (s)
				send_msg(x, VZ_MSG_LOG, json_pack("{s:s,s:I,s:o}", "build", uuid, "offset", (json_int_t)off, "data", s));
			off += n;
		}
	}
	vz_buf_free(&b);
	free(lp);
	pending *p = vz_map_get(x->pending, uuid);
	if (p)
		send_result(x, p);
}

static void emit_direct(void *ctx, vz_msg_type type, json_t *body)
{
	send_msg(ctx, type, body);
}

/* log_resend with a path: a file of the build's log directory again, from offset */
static void resend_file(vz_executor *x, const char *uuid, const char *rel, long long offset)
{
	pending *p = vz_map_get(x->pending, uuid);
	if (!vz_proto_log_path_ok(rel)) {
		vz_warn("the scheduler asked again for '%.200s' of build %s: not a log file name; ignored", rel, uuid);
	} else {
		char *logs = vz_build_logs_dir(x->env.work_dir, uuid);
		char *abs = vz_path_join(logs, rel);
		if (vz_build_send_log_file(uuid, p ? p->attempt : 0, abs, rel, offset, emit_direct, x) < 0)
			vz_warn("build %s: log file %s is gone; the scheduler will record it incomplete", uuid, rel);
		free(abs);
		free(logs);
	}
	if (p)
		send_result(x, p);
}

static void forget_build(vz_executor *x, const char *uuid)
{
	pending *p = vz_map_del(x->pending, uuid);
	if (p) {
		json_decref(p->body);
		free(p);
	}
	char rel[128];
	snprintf(rel, sizeof(rel), "builds/%s", uuid);
	char *d = vz_path_join(x->env.work_dir, rel);
	vz_rm_rf(d, NULL);
	free(d);
}

static void on_welcome(vz_executor *x, vz_msg *m)
{
	const char *si = vz_msg_str(m, "scheduler_instance");
	int changed = strcmp(si, x->sched_instance) != 0;
	vz_strlcpy(x->sched_instance, si, sizeof(x->sched_instance));
	x->lease_ms = (int)vz_msg_int(m, "lease_ms", 15000);
	x->heartbeat_ms = (int)vz_msg_int(m, "heartbeat_ms", 1000);
	if (x->heartbeat_ms < 50)
		x->heartbeat_ms = 50;
	x->welcomed = 1;
	x->sched_pause = 0;
	size_t fi;
	json_t *f;
	json_array_foreach(json_object_get(m->body, "features"), fi, f) {
		if (json_is_string(f) && strcmp(json_string_value(f), "pause") == 0)
			x->sched_pause = 1;
	}
	vz_info("connected to scheduler %.8s at %s%s", si, x->endpoint, changed ? "" : " (again)");
	/* everything not yet acknowledged goes to this scheduler instance */
	size_t it = 0;
	const char *k;
	void *v;
	while (vz_map_next(x->pending, &it, &k, &v))
		send_result(x, v);
	it = 0;
	while (vz_map_next(x->merge_pending, &it, &k, &v))
		send_merged(x, v);
	send_ready(x);
}

static int on_dealer(vz_executor *x, vz_err *e)
{
	for (int n = 0; n < 1024; n++) {
		vz_msg *m = NULL;
		vz_err de = { 0 };
		char ref[VZ_PROTO_MAX_ID + 1] = "";
		int rc = vz_proto_recv(x->dealer, 0, NULL, NULL, &m, ref, ZMQ_DONTWAIT, &de);
		if (rc == VZ_ETIMEOUT)
			return 0;
		x->last_rx = vz_mono_ms();
		if (rc == VZ_EVERSION)
			return vz_err_set(e, VZ_EVERSION, "the scheduler at %s speaks another protocol version: %s; "
							  "run the same vinz version on scheduler and executors",
					  x->endpoint, vz_err_msg(&de));
		if (rc) {
			vz_warn("refused a frame from the scheduler: %s", vz_err_msg(&de));
			send_msg(x, VZ_MSG_ERROR,
				 json_pack("{s:s,s:s,s:s}", "code", "malformed", "message", vz_err_msg(&de), "ref", ref));
			continue;
		}
		switch (m->type) {
		case VZ_MSG_WELCOME:
			on_welcome(x, m);
			break;
		case VZ_MSG_REFUSE:
			rc = vz_err_set(e, strcmp(vz_msg_str(m, "code"), "version") == 0 ? VZ_EVERSION : VZ_EPROTO,
					"the scheduler at %s refused this executor: %s (%s)", x->endpoint,
					vz_msg_str(m, "message"), vz_msg_str(m, "code"));
			vz_msg_free(m);
			return rc;
		case VZ_MSG_BUILD:
			if (x->welcomed)
				start_build(x, m);
			break;
		case VZ_MSG_ACK:
			forget_build(x, vz_msg_str(m, "build"));
			break;
		case VZ_MSG_MERGE:
			if (x->welcomed)
				on_merge(x, m);
			break;
		case VZ_MSG_MERGE_ACK:
			forget_merge(x, vz_msg_str(m, "merge"));
			break;
		case VZ_MSG_CANCEL:
			for (job *j = x->jobs; j; j = j->next)
				if (strcmp(j->uuid, vz_msg_str(m, "build")) == 0)
					cancel_once(j, VZ_BUILD_CANCEL);
			break;
		case VZ_MSG_RESUME:
			for (job *j = x->jobs; j; j = j->next)
				if (strcmp(j->uuid, vz_msg_str(m, "build")) == 0) {
					j->resume = 1;
					json_decref(j->paused);
					j->paused = NULL;
				}
			break;
		case VZ_MSG_LOG_RESEND:
			if (*vz_msg_str(m, "path"))
				resend_file(x, vz_msg_str(m, "build"), vz_msg_str(m, "path"), vz_msg_int(m, "offset", 0));
			else
				resend_log(x, vz_msg_str(m, "build"), vz_msg_int(m, "offset", 0));
			break;
		case VZ_MSG_HEARTBEAT:
			if (strcmp(vz_msg_str(m, "scheduler_instance"), x->sched_instance) != 0) {
				x->welcomed = 0;
				send_hello(x);
			}
			break;
		case VZ_MSG_ERROR:
			if (strcmp(vz_msg_str(m, "code"), "hello-required") == 0) {
				/* the scheduler restarted and does not know us */
				if (vz_mono_ms() - x->last_hello > 200) {
					x->welcomed = 0;
					send_hello(x);
				}
			} else {
				vz_warn("the scheduler refused a message: %s", vz_msg_str(m, "message"));
			}
			break;
		default:
			vz_warn("the scheduler sent %s, which executors do not accept; ignored", vz_msg_type_name(m->type));
		}
		vz_msg_free(m);
	}
	return 0;
}

/* Zuul's sensors, once a second: while one is over its limit the executor offers no slots. */
static void sense(vz_executor *x, uint64_t now)
{
	if (now - x->last_sense < 1000)
		return;
	x->last_sense = now;
	vz_governor_limits l = { x->cfg->executor.load_multiplier, x->cfg->executor.min_avail_mem,
				 x->cfg->executor.min_avail_disk };
	vz_governor_sample smp;
	char why[200];
	vz_governor_sample_now(&smp, x->cfg->executor.work_dir);
	int ok = vz_governor_ok(&l, &smp, why, sizeof(why));
	if (ok == !x->governed)
		return;
	x->governed = !ok;
	if (x->governed)
		vz_warn("executor %s takes no new builds: %s", x->cfg->executor.name, why);
	else
		vz_info("executor %s takes builds again", x->cfg->executor.name);
	send_ready(x);
}

static void timers(vz_executor *x)
{
	uint64_t now = vz_mono_ms();
	sense(x, now);
	/* builds leaving their starting phase free slots without any message: say so */
	if (x->welcomed && free_slots(x) != x->free_sent)
		send_ready(x);
	if (!x->welcomed) {
		if (now - x->last_hello >= 1000)
			send_hello(x);
		return;
	}
	if (now - x->last_hb >= (uint64_t)x->heartbeat_ms) {
		send_msg(x, VZ_MSG_HEARTBEAT,
			 json_pack("{s:o,s:I,s:I}", "running", running_list(x), "free", free_slots(x), "seen", x->seen));
		x->last_hb = now;
		for (job *j = x->jobs; j; j = j->next)
			if (j->paused && !j->resume)
				send_msg(x, VZ_MSG_PAUSED, json_incref(j->paused));
	}
	/* a scheduler that stays silent is gone or restarted: say hello again */
	if (now - x->last_rx > (uint64_t)x->heartbeat_ms * 3 + 1000 && now - x->last_hello > 1000) {
		vz_warn("no word from the scheduler for %llu ms; saying hello again", (unsigned long long)(now - x->last_rx));
		send_hello(x);
	}
	size_t it = 0;
	const char *k;
	void *v;
	while (vz_map_next(x->pending, &it, &k, &v)) {
		pending *p = v;
		if (now - p->last_sent >= RESEND_MS)
			send_result(x, p);
	}
	it = 0;
	while (vz_map_next(x->merge_pending, &it, &k, &v)) {
		pending *p = v;
		if (now - p->last_sent >= RESEND_MS)
			send_merged(x, p);
	}
}

/* ---------- lifecycle ---------- */

int vz_executor_new(vz_executor **out, const vz_config *cfg, void *zctx, const char *endpoint, vz_err *e)
{
	*out = NULL;
	vz_executor *x = vz_xcalloc(1, sizeof(*x));
	x->cfg = cfg;
	x->zctx = zctx;
	x->pending = vz_map_new();
	x->merge_pending = vz_map_new();
	x->merge_queue = json_array();
	x->cache_root = vz_path_join(cfg->executor.work_dir, "cache");
	x->heartbeat_ms = cfg->scheduler.heartbeat_ms > 0 ? cfg->scheduler.heartbeat_ms : 1000;
	vz_uuid(x->instance);
	vz_strlcpy(x->endpoint, endpoint ? endpoint : cfg->executor.scheduler, sizeof(x->endpoint));
	x->env.work_dir = cfg->executor.work_dir;
	x->env.executor = cfg->executor.name;
	x->env.site = cfg;
	x->env.disk_limit_mb = cfg->executor.disk_limit_per_job;
	int rc = 0;
	if ((rc = vz_mkdir_p(cfg->executor.work_dir, 0755, e)))
		goto out;
	x->dealer = zmq_socket(zctx, ZMQ_DEALER);
	x->inbox = zmq_socket(zctx, ZMQ_PULL);
	if (!x->dealer || !x->inbox) {
		rc = vz_err_set(e, VZ_EIO, "cannot create sockets: %s", zmq_strerror(zmq_errno()));
		goto out;
	}
	if ((rc = vz_proto_sockopts(x->dealer, e)))
		goto out;
	snprintf(x->rid, sizeof(x->rid), "%s/%s", cfg->executor.name, x->instance);
	zmq_setsockopt(x->dealer, ZMQ_ROUTING_ID, x->rid, strlen(x->rid));
	snprintf(x->inbox_ep, sizeof(x->inbox_ep), "inproc://vz-executor-%s", x->instance);
	if (zmq_bind(x->inbox, x->inbox_ep) != 0) {
		rc = vz_err_set(e, VZ_EIO, "cannot bind %s: %s", x->inbox_ep, zmq_strerror(zmq_errno()));
		goto out;
	}
	if (cfg->executor.curve_key) {
		vz_curve_keypair kp;
		char server[VZ_CURVE_KEYLEN + 1];
		if ((rc = vz_curve_load_keypair(&kp, cfg->executor.curve_key, e)) ||
		    (rc = vz_curve_load_public(server, cfg->executor.scheduler_key, e)) ||
		    (rc = vz_curve_client(x->dealer, &kp, server, e)))
			goto out;
		memset(&kp, 0, sizeof(kp));
	} else if (!vz_endpoint_is_local(x->endpoint)) {
		rc = vz_err_set(e, VZ_EINVAL, "the scheduler at %s is on another host: CURVE keys are required "
				"(executor curve_key and scheduler_key)", x->endpoint);
		goto out;
	}
	if (zmq_connect(x->dealer, x->endpoint) != 0) {
		rc = vz_err_set(e, VZ_EINVAL, "cannot connect to the scheduler at %s: %s", x->endpoint, zmq_strerror(zmq_errno()));
		goto out;
	}
	vz_info("executor %s (%.8s) connecting to %s, capacity %d, work dir %s", cfg->executor.name, x->instance,
		x->endpoint, cfg->executor.capacity, cfg->executor.work_dir);
	*out = x;
	x = NULL;
out:
	vz_executor_free(x);
	return rc;
}

/* ---------- the control socket (vinz executor --pause / --resume) ---------- */

static json_t *control_status(vz_executor *x)
{
	return json_pack("{s:s,s:b,s:b,s:b,s:i,s:I,s:i,s:I}", "executor", x->cfg->executor.name, "paused", x->paused,
			 "stopping", x->stopping, "governed", x->governed, "running", x->running, "free", free_slots(x),
			 "merges", x->nmerges, "merges_waiting", (json_int_t)json_array_size(x->merge_queue));
}

static void on_control(vz_executor *x)
{
	for (int n = 0; n < 64; n++) {
		char peer[VZ_PROTO_MAX_PEER_ID + 1], ref[VZ_PROTO_MAX_ID + 1] = "";
		size_t plen = 0;
		vz_msg *m = NULL;
		vz_err e = { 0 };
		int rc = vz_proto_recv(x->control, 1, peer, &plen, &m, ref, ZMQ_DONTWAIT, &e);
		if (rc == VZ_ETIMEOUT)
			return;
		if (rc) {
			vz_warn("control socket %s: refused a request: %s", x->control_ep, vz_err_msg(&e));
			vz_err re = { 0 };
			vz_proto_send_refusal(x->control, peer, plen, ref, &e, &re);
			continue;
		}
		const char *op = m->type == VZ_MSG_REQUEST ? vz_msg_str(m, "op") : "";
		json_t *body;
		if (strcmp(op, "pause") == 0 || strcmp(op, "resume") == 0) {
			int want = strcmp(op, "pause") == 0;
			if (want != x->paused) {
				x->paused = want;
				if (want)
					vz_info("executor %s paused: no new builds; %d running go on", x->cfg->executor.name, x->running);
				else
					vz_info("executor %s resumed: takes builds again", x->cfg->executor.name);
				send_ready(x);
			}
			body = json_pack("{s:b,s:o}", "ok", 1, "data", control_status(x));
		} else if (strcmp(op, "status") == 0) {
			body = json_pack("{s:b,s:o}", "ok", 1, "data", control_status(x));
		} else {
			body = json_pack("{s:b,s:s,s:s}", "ok", 0, "code", "notfound", "error",
					 "unknown executor control operation: use pause, resume or status");
		}
		vz_err se = { 0 };
		if (vz_proto_send(x->control, peer, plen, VZ_MSG_REPLY, m->id, body, &se))
			vz_warn("control socket %s: cannot answer: %s", x->control_ep, vz_err_msg(&se));
		json_decref(body);
		vz_msg_free(m);
	}
}

char *vz_executor_control_endpoint(const vz_config *cfg)
{
	char *p = vz_path_join(cfg->executor.work_dir, "control.sock");
	size_t n = strlen(p) + 7;
	char *ep = vz_xcalloc(1, n);
	snprintf(ep, n, "ipc://%s", p);
	free(p);
	return ep;
}

static void open_control(vz_executor *x)
{
	char *ep = vz_executor_control_endpoint(x->cfg);
	vz_strlcpy(x->control_ep, ep, sizeof(x->control_ep));
	free(ep);
	if (strlen(x->control_ep) - 6 > 100) {
		vz_warn("executor work dir %s is too long for a control socket (ipc paths hold 100 bytes): "
			"`vinz executor --pause/--resume` will not reach this executor", x->cfg->executor.work_dir);
		return;
	}
	x->control = zmq_socket(x->zctx, ZMQ_ROUTER);
	int linger = 0;
	if (x->control)
		zmq_setsockopt(x->control, ZMQ_LINGER, &linger, sizeof(linger));
	if (!x->control || zmq_bind(x->control, x->control_ep) != 0) {
		vz_warn("cannot open the control socket %s: %s; `vinz executor --pause/--resume` will not reach this executor",
			x->control_ep, zmq_strerror(zmq_errno()));
		if (x->control)
			zmq_close(x->control);
		x->control = NULL;
	}
}

/* One turn of the loop: wait up to timeout_ms for a message, handle what came, reap finished
 * builds, run the timers. Returns non-zero on a fatal error from the scheduler (e set). */
static int turn(vz_executor *x, int timeout_ms, vz_err *e)
{
	zmq_pollitem_t items[] = { { x->dealer, 0, ZMQ_POLLIN, 0 }, { x->inbox, 0, ZMQ_POLLIN, 0 },
				   { x->control, 0, ZMQ_POLLIN, 0 } };
	if (zmq_poll(items, x->control ? 3 : 2, timeout_ms) < 0 && zmq_errno() != EINTR)
		return vz_err_set(e, VZ_EIO, "poll failed: %s", zmq_strerror(zmq_errno()));
	on_inbox(x);
	if (x->control)
		on_control(x);
	int rc = on_dealer(x, e);
	if (rc)
		return rc;
	reap(x);
	reap_merges(x);
	timers(x);
	return 0;
}

int vz_executor_run(vz_executor *x, volatile sig_atomic_t *stop, vz_err *e)
{
	int rc = 0;
	uint64_t deliver_until = 0;
	x->last_rx = vz_mono_ms();
	open_control(x);
	sense(x, x->last_rx); /* no slots are offered before the sensors were read once */
	send_hello(x);
	for (;;) {
		if (*stop && !x->stopping) {
			/* first stop: no new builds; the running ones finish and deliver their results */
			x->stopping = 1;
			vz_info("executor %s stopping: takes no new builds, waits for %d running (stop again to hand them back)",
				x->cfg->executor.name, x->running);
			send_ready(x);
		}
		if (*stop >= 2 && !x->handing_back) {
			/* second stop: the running builds are canceled and handed back (REQUEUE) */
			x->handing_back = 1;
			vz_info("executor %s stopping now: handing %d running builds back", x->cfg->executor.name, x->running);
			for (job *j = x->jobs; j; j = j->next)
				cancel_once(j, VZ_BUILD_CANCEL_STOPPING);
		}
		if (x->stopping && !x->jobs && !x->merges && json_array_size(x->merge_queue) == 0) {
			uint64_t now = vz_mono_ms();
			if (!deliver_until)
				deliver_until = now + STOP_GRACE_MS;
			if ((vz_map_len(x->pending) == 0 && vz_map_len(x->merge_pending) == 0) || !x->welcomed ||
			    now >= deliver_until)
				break;
		}
		int timeout = x->heartbeat_ms < 200 ? x->heartbeat_ms : 200;
		if ((rc = turn(x, x->jobs || x->merges ? 20 : timeout, e)))
			break;
	}
	/* a fatal error: hand back what still runs and wait for the threads */
	for (job *j = x->jobs; j; j = j->next)
		cancel_once(j, VZ_BUILD_CANCEL_STOPPING);
	json_array_clear(x->merge_queue); /* not started: the scheduler asks again */
	while (x->jobs || x->merges) { /* threads end once their commands are killed; merges by themselves */
		on_inbox(x);
		reap(x);
		reap_merges(x);
		usleep(10000);
	}
	return rc;
}

void vz_executor_free(vz_executor *x)
{
	if (!x)
		return;
	size_t it = 0;
	const char *k;
	void *v;
	while (vz_map_next(x->pending, &it, &k, &v)) {
		json_decref(((pending *)v)->body);
		free(v);
	}
	vz_map_free(x->pending);
	it = 0;
	while (vz_map_next(x->merge_pending, &it, &k, &v)) {
		json_decref(((pending *)v)->body);
		free(v);
	}
	vz_map_free(x->merge_pending);
	json_decref(x->merge_queue);
	free(x->cache_root);
	if (x->dealer)
		zmq_close(x->dealer);
	if (x->inbox)
		zmq_close(x->inbox);
	if (x->control)
		zmq_close(x->control);
	free(x);
}
