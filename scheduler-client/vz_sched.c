/* vz_sched: the scheduler loop: executors (ROUTER), admin requests, queue items, dispatch and
 * results. See vz_sched.h for the contract and docs/protocol.md for the messages. */
#include "vz_sched.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <openssl/evp.h>

#include "vz_curve.h"
#include "vz_driver_git.h"
#include "vz_log.h"
#include "vz_map.h"
#include "vz_proto.h"
#include "vz_store.h"
#include "vz_util.h"

#define BATCH_MAX 512 /* messages handled per transaction */
#define LOG_RESEND_MAX 3
#define LOG_FILE_B64_MAX (96 * 1024) /* base64 bytes in one log_file message */
#define NODE_DOWN_MS 30000 /* a node that failed a build is avoided this long */
#define LOG_CHUNK_MAX (256 * 1024) /* bytes of log per admin reply */
#define LOG_WAIT_MAX 5000          /* ms an admin "log" request may wait for new output */
#define LOG_WAITERS_MAX 1024       /* followers waiting at once; more are answered at once */

enum { B_QUEUED = 1, B_RUNNING = 2 };

typedef struct peer {
	char rid[VZ_PROTO_MAX_PEER_ID + 1];
	size_t rid_len;      /* 0: not connected to this scheduler instance yet (a ghost from the db) */
	char *name;
	char *key;           /* "name/instance", as recorded in builds.executor */
	int capacity;
	json_t *labels;
	char *zone;          /* executor zone; NULL: unzoned */
	int allow_unzoned;   /* a zoned executor that also takes unzoned nodes */
	long long free, seen, sent;
	int credit_known;
	uint64_t last_seen;
	struct peer *next;
} peer;

typedef struct item {
	int64_t id;
	char uuid[37];
	char *pipeline, *project, *connection, *branch, *change, *ref, *commit;
	int nlive; /* builds not yet done */
} item;

typedef struct build {
	int64_t id;
	char uuid[37];
	item *it;
	char *job;
	int attempt, attempts, voting;
	int state;
	char *executor; /* peer key while running */
	int node;       /* index in cfg->nodes, -1 when none */
	int64_t log_have;
	json_t *files_have; /* log directory files: path -> bytes arrived without a gap */
	int resend_asked;
	struct build *next; /* queued list */
} build;

/* An admin "log" request waiting for output past its offset (vinz logs -f). */
typedef struct waiter {
	char rid[VZ_PROTO_MAX_PEER_ID + 1];
	size_t rid_len;
	char id[VZ_PROTO_MAX_ID + 1];
	char uuid[37];
	long long offset;
	uint64_t deadline;
	struct waiter *next;
} waiter;

typedef struct outmsg {
	char rid[VZ_PROTO_MAX_PEER_ID + 1];
	size_t rid_len;
	void *sock;
	vz_msg_type type;
	char id[VZ_PROTO_MAX_ID + 1];
	json_t *body;
	struct outmsg *next;
} outmsg;

struct vz_sched {
	const vz_config *cfg;
	vz_store *st;
	void *zctx, *router, *admin;
	vz_curve_zap *zap; /* admits listed executors when CURVE is on */
	char instance[37];
	char *log_dir;
	peer *peers;
	vz_map *builds;  /* uuid -> build, queued and running */
	vz_map *items;   /* "id" -> item, active */
	build *qhead, *qtail;
	int *node_used;
	uint64_t *node_down_until; /* monotonic ms; 0: healthy */
	outmsg *out, **out_tail;
	uint64_t started;
	uint64_t last_lease_check;
	waiter *waiters;
	int nwaiters;
};

/* ---------- small helpers ---------- */

static void queue_out(vz_sched *s, void *sock, const char *rid, size_t rid_len, vz_msg_type type,
		      const char *id, json_t *body)
{
	outmsg *o = vz_xcalloc(1, sizeof(*o));
	o->sock = sock;
	memcpy(o->rid, rid, rid_len);
	o->rid_len = rid_len;
	o->type = type;
	if (id)
		vz_strlcpy(o->id, id, sizeof(o->id));
	o->body = body;
	*s->out_tail = o;
	s->out_tail = &o->next;
}

static void flush_out(vz_sched *s)
{
	outmsg *o = s->out;
	while (o) {
		vz_err e = { 0 };
		if (vz_proto_send(o->sock, o->rid, o->rid_len, o->type, o->id[0] ? o->id : NULL, o->body, &e))
			vz_warn("could not send %s: %s", vz_msg_type_name(o->type), vz_err_msg(&e));
		outmsg *n = o->next;
		json_decref(o->body);
		free(o);
		o = n;
	}
	s->out = NULL;
	s->out_tail = &s->out;
}

static void drop_out(vz_sched *s)
{
	while (s->out) {
		outmsg *n = s->out->next;
		json_decref(s->out->body);
		free(s->out);
		s->out = n;
	}
	s->out_tail = &s->out;
}

static char *xstr(json_t *row, const char *k)
{
	const char *v = json_string_value(json_object_get(row, k));
	return v ? vz_xstrdup(v) : NULL;
}

static int node_index(vz_sched *s, const char *name)
{
	for (size_t i = 0; name && i < s->cfg->nnodes; i++)
		if (strcmp(s->cfg->nodes[i].name, name) == 0)
			return (int)i;
	return -1;
}

static peer *peer_by_name(vz_sched *s, const char *name)
{
	for (peer *p = s->peers; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static peer *peer_by_rid(vz_sched *s, const char *rid, size_t len)
{
	for (peer *p = s->peers; p; p = p->next)
		if (p->rid_len == len && memcmp(p->rid, rid, len) == 0)
			return p;
	return NULL;
}

static void peer_free(peer *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->key);
	free(p->zone);
	json_decref(p->labels);
	free(p);
}

static void item_free(item *it)
{
	if (!it)
		return;
	free(it->pipeline);
	free(it->project);
	free(it->connection);
	free(it->branch);
	free(it->change);
	free(it->ref);
	free(it->commit);
	free(it);
}

static void build_free(build *b)
{
	if (!b)
		return;
	free(b->job);
	free(b->executor);
	json_decref(b->files_have);
	free(b);
}

static void enqueue_build(vz_sched *s, build *b)
{
	b->state = B_QUEUED;
	b->next = NULL;
	if (s->qtail)
		s->qtail->next = b;
	else
		s->qhead = b;
	s->qtail = b;
}

static int add_event(vz_sched *s, build *b, const char *type, json_t *data, vz_err *e)
{
	char *txt = data ? json_dumps(data, JSON_COMPACT) : NULL;
	int rc = vz_store_exec(s->st, e, "INSERT INTO build_events(build_id, ts, type, data) VALUES(?,?,?,?)", "iiss",
			       b->id, vz_wall_ms(), type, txt);
	free(txt);
	json_decref(data);
	return rc < 0 ? rc : 0;
}

static char *log_path(vz_sched *s, const char *uuid)
{
	char rel[128];
	snprintf(rel, sizeof(rel), "%s/job-output.txt", uuid);
	return vz_path_join(s->log_dir, rel);
}

/* ---------- items and builds ---------- */

static int create_build(vz_sched *s, item *it, const vz_conf_job *job, int attempt, vz_err *e)
{
	build *b = vz_xcalloc(1, sizeof(*b));
	vz_uuid(b->uuid);
	b->it = it;
	b->job = vz_xstrdup(job->name);
	b->attempt = attempt;
	b->attempts = job->attempts > 0 ? job->attempts : 3;
	b->voting = job->voting;
	b->node = -1;
	json_t *changes = json_pack("[s]", it->change);
	char *ctxt = json_dumps(changes, JSON_COMPACT);
	json_decref(changes);
	char *lp = log_path(s, b->uuid);
	int rc = vz_store_exec(s->st, e,
			       "INSERT INTO builds(uuid, item_id, job, attempt, attempts, voting, state, changes, created_at, log_path)"
			       " VALUES(?,?,?,?,?,?,'queued',?,?,?)",
			       "sisdddsis", b->uuid, it->id, b->job, attempt, b->attempts, b->voting, ctxt, vz_wall_ms(), lp);
	free(ctxt);
	free(lp);
	if (rc < 0) {
		build_free(b);
		return rc;
	}
	b->id = vz_store_last_id(s->st);
	vz_map_set(s->builds, b->uuid, b);
	it->nlive++;
	enqueue_build(s, b);
	return 0;
}

static void item_report(vz_sched *s, item *it, const char *result)
{
	/* The git driver's reporter for an independent pipeline records the outcome; drivers that
	 * vote (Gerrit, GitHub) plug in here. */
	vz_info("pipeline %s: %s change %s (%.12s) reported %s", it->pipeline, it->project, it->change,
		it->commit, result);
}

static int item_maybe_finish(vz_sched *s, item *it, vz_err *e)
{
	if (it->nlive > 0)
		return 0;
	json_t *rows = vz_store_query(s->st, e,
				      "SELECT COUNT(*) AS bad FROM builds WHERE item_id=? AND voting=1 AND state='done'"
				      " AND result NOT IN ('SUCCESS','LOST','RETRY')",
				      "i", it->id);
	if (!rows)
		return VZ_EDB;
	long long bad = json_integer_value(json_object_get(json_array_get(rows, 0), "bad"));
	json_decref(rows);
	const char *result = bad ? "FAILURE" : "SUCCESS";
	int rc = vz_store_exec(s->st, e, "UPDATE queue_items SET state='done', result=?, finished_at=? WHERE id=?", "sii",
			       result, vz_wall_ms(), it->id);
	if (rc < 0)
		return rc;
	item_report(s, it, result);
	char key[32];
	snprintf(key, sizeof(key), "%lld", (long long)it->id);
	vz_map_del(s->items, key);
	item_free(it);
	return 0;
}

static void release_node(vz_sched *s, build *b)
{
	if (b->node >= 0 && s->node_used[b->node] > 0)
		s->node_used[b->node]--;
	b->node = -1;
}

/* A build ended without a usable result (executor lost, or the executor asked for a retry):
 * count the attempt, and queue the next one or end with RETRY_LIMIT. */
static int build_retry(vz_sched *s, build *b, const char *why, const char *result_if_retry, vz_err *e)
{
	int last = b->attempt >= b->attempts;
	const char *result = last ? "RETRY_LIMIT" : result_if_retry;
	int rc = vz_store_exec(s->st, e, "UPDATE builds SET state='done', result=?, message=?, ended_at=? WHERE id=?", "ssii",
			       result, why, vz_wall_ms(), b->id);
	if (rc < 0)
		return rc;
	if ((rc = add_event(s, b, "retry", json_pack("{s:s,s:s}", "result", result, "why", why), e)))
		return rc;
	vz_warn("build %s (%s attempt %d/%d) %s: %s", b->uuid, b->job, b->attempt, b->attempts, result, why);
	release_node(s, b);
	vz_map_del(s->builds, b->uuid);
	item *it = b->it;
	it->nlive--;
	if (!last) {
		const vz_conf_job *job = vz_config_job(s->cfg, b->job);
		if (job) {
			rc = create_build(s, it, job, b->attempt + 1, e);
		} else {
			vz_conf_job tmp = { .name = b->job, .attempts = b->attempts, .voting = b->voting };
			rc = create_build(s, it, &tmp, b->attempt + 1, e);
		}
	} else {
		rc = item_maybe_finish(s, it, e);
	}
	build_free(b);
	return rc;
}

static int in_list(json_t *list, const char *uuid)
{
	size_t i;
	json_t *u;
	json_array_foreach(list, i, u) if (json_is_string(u) && strcmp(json_string_value(u), uuid) == 0) return 1;
	return 0;
}

/* Every running build of executor key is lost, except those named in keep (may be NULL). */
static int builds_lost_for(vz_sched *s, const char *key, const char *why, json_t *keep, vz_err *e)
{
	build *lost[256];
	int n;
	do {
		size_t it = 0;
		const char *k;
		void *v;
		n = 0;
		while (n < 256 && vz_map_next(s->builds, &it, &k, &v)) {
			build *b = v;
			if (b->state == B_RUNNING && b->executor && strcmp(b->executor, key) == 0 && !in_list(keep, b->uuid))
				lost[n++] = b;
		}
		/* build_retry changes the map, so collect first and rescan until none is left */
		for (int i = 0; i < n; i++) {
			int rc = build_retry(s, lost[i], why, "LOST", e);
			if (rc)
				return rc;
		}
	} while (n == 256);
	return 0;
}

/* ---------- loading state left by a previous run ---------- */

static int load_state(vz_sched *s, vz_err *e)
{
	json_t *items = vz_store_query(s->st, e, "SELECT * FROM queue_items WHERE state='active' ORDER BY id", NULL);
	if (!items)
		return VZ_EDB;
	size_t i;
	json_t *row;
	json_array_foreach(items, i, row) {
		item *it = vz_xcalloc(1, sizeof(*it));
		it->id = json_integer_value(json_object_get(row, "id"));
		vz_strlcpy(it->uuid, json_string_value(json_object_get(row, "uuid")), sizeof(it->uuid));
		it->pipeline = xstr(row, "pipeline");
		it->project = xstr(row, "project");
		it->connection = xstr(row, "connection");
		it->branch = xstr(row, "branch");
		it->change = xstr(row, "change_id");
		it->ref = xstr(row, "ref");
		it->commit = xstr(row, "commit_id");
		char key[32];
		snprintf(key, sizeof(key), "%lld", (long long)it->id);
		vz_map_set(s->items, key, it);
	}
	json_decref(items);

	json_t *builds = vz_store_query(s->st, e,
					"SELECT b.* FROM builds b JOIN queue_items q ON q.id=b.item_id"
					" WHERE q.state='active' AND b.state IN ('queued','running') ORDER BY b.id",
					NULL);
	if (!builds)
		return VZ_EDB;
	int nq = 0, nr = 0;
	json_array_foreach(builds, i, row) {
		char key[32];
		snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(json_object_get(row, "item_id")));
		item *it = vz_map_get(s->items, key);
		if (!it)
			continue;
		build *b = vz_xcalloc(1, sizeof(*b));
		b->id = json_integer_value(json_object_get(row, "id"));
		vz_strlcpy(b->uuid, json_string_value(json_object_get(row, "uuid")), sizeof(b->uuid));
		b->it = it;
		b->job = xstr(row, "job");
		b->attempt = (int)json_integer_value(json_object_get(row, "attempt"));
		b->attempts = (int)json_integer_value(json_object_get(row, "attempts"));
		b->voting = (int)json_integer_value(json_object_get(row, "voting"));
		b->node = -1;
		it->nlive++;
		vz_map_set(s->builds, b->uuid, b);
		if (strcmp(json_string_value(json_object_get(row, "state")), "queued") == 0) {
			enqueue_build(s, b);
			nq++;
			continue;
		}
		/* running: its executor gets one lease to say hello and claim it */
		b->state = B_RUNNING;
		b->executor = xstr(row, "executor");
		b->node = node_index(s, json_string_value(json_object_get(row, "node")));
		if (b->node >= 0)
			s->node_used[b->node]++;
		struct stat stt;
		char *lp = log_path(s, b->uuid);
		b->log_have = stat(lp, &stt) == 0 ? stt.st_size : 0;
		free(lp);
		nr++;
		const char *key2 = b->executor ? b->executor : "";
		const char *slash = strchr(key2, '/');
		size_t nlen = slash ? (size_t)(slash - key2) : strlen(key2);
		char name[256];
		snprintf(name, sizeof(name), "%.*s", (int)nlen, key2);
		if (!peer_by_name(s, name)) {
			peer *p = vz_xcalloc(1, sizeof(*p));
			p->name = vz_xstrdup(name);
			p->key = vz_xstrdup(key2);
			p->labels = json_array();
			p->last_seen = vz_mono_ms();
			p->next = s->peers;
			s->peers = p;
		}
	}
	json_decref(builds);
	vz_info("resumed %zu active items: %d builds queued, %d running (waiting for their executors)",
		vz_map_len(s->items), nq, nr);
	return 0;
}

/* ---------- lifecycle ---------- */

int vz_sched_new(vz_sched **out, const vz_config *cfg, void *zctx, const char *listen, vz_err *e)
{
	*out = NULL;
	vz_sched *s = vz_xcalloc(1, sizeof(*s));
	s->cfg = cfg;
	s->zctx = zctx;
	s->builds = vz_map_new();
	s->items = vz_map_new();
	s->out_tail = &s->out;
	s->node_used = vz_xcalloc(cfg->nnodes + 1, sizeof(int));
	s->node_down_until = vz_xcalloc(cfg->nnodes + 1, sizeof(uint64_t));
	s->started = vz_mono_ms();
	vz_uuid(s->instance);
	int rc;
	char *db = NULL;
	if ((rc = vz_mkdir_p(cfg->state_dir, 0700, e)))
		goto out;
	s->log_dir = vz_path_join(cfg->state_dir, "logs");
	if ((rc = vz_mkdir_p(s->log_dir, 0755, e)))
		goto out;
	db = vz_path_join(cfg->state_dir, "vinz.db");
	if ((rc = vz_store_open(&s->st, db, e)))
		goto out;
	if ((rc = load_state(s, e)))
		goto out;
	const char *ep = listen ? listen : cfg->scheduler.listen;
	s->router = zmq_socket(zctx, ZMQ_ROUTER);
	s->admin = zmq_socket(zctx, ZMQ_ROUTER);
	int one = 1;
	if (!s->router || !s->admin || (rc = vz_proto_sockopts(s->router, e)) || (rc = vz_proto_sockopts(s->admin, e)))
		goto sockfail;
	zmq_setsockopt(s->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	/* a restarted executor reuses its routing id only with a new instance; take over if a stale
	 * connection still holds it */
	zmq_setsockopt(s->router, ZMQ_ROUTER_HANDOVER, &one, sizeof(one));
	if (cfg->scheduler.curve_key) {
		vz_curve_keypair kp;
		if ((rc = vz_curve_load_keypair(&kp, cfg->scheduler.curve_key, e)) ||
		    (rc = vz_curve_zap_start(&s->zap, zctx, cfg->scheduler.curve_executors, e)) ||
		    (rc = vz_curve_server(s->router, &kp, e)))
			goto out;
		memset(&kp, 0, sizeof(kp));
	} else if (!vz_endpoint_is_local(ep)) {
		rc = vz_err_set(e, VZ_EINVAL, "listening on %s reaches other hosts: CURVE keys are required "
				"(scheduler curve_key and curve_executors)", ep);
		goto out;
	}
	if (zmq_bind(s->router, ep) != 0) {
		rc = vz_err_set(e, VZ_EIO, "cannot listen for executors on %s: %s; is another scheduler running?", ep,
				zmq_strerror(zmq_errno()));
		goto out;
	}
	if (zmq_bind(s->admin, cfg->scheduler.admin) != 0) {
		rc = vz_err_set(e, VZ_EIO, "cannot bind the admin endpoint %s: %s; is another scheduler running?",
				cfg->scheduler.admin, zmq_strerror(zmq_errno()));
		goto out;
	}
	vz_info("scheduler %.8s listening for executors on %s, admin on %s, state in %s", s->instance, ep,
		cfg->scheduler.admin, cfg->state_dir);
	*out = s;
	s = NULL;
	goto out;
sockfail:
	if (!rc)
		rc = vz_err_set(e, VZ_EIO, "cannot create sockets: %s", zmq_strerror(zmq_errno()));
out:
	free(db);
	vz_sched_free(s);
	return rc;
}

void vz_sched_free(vz_sched *s)
{
	if (!s)
		return;
	drop_out(s);
	if (s->router)
		zmq_close(s->router);
	if (s->admin)
		zmq_close(s->admin);
	vz_curve_zap_stop(s->zap);
	size_t it = 0;
	const char *k;
	void *v;
	while (vz_map_next(s->builds, &it, &k, &v))
		build_free(v);
	it = 0;
	while (vz_map_next(s->items, &it, &k, &v))
		item_free(v);
	vz_map_free(s->builds);
	vz_map_free(s->items);
	while (s->waiters) {
		waiter *n = s->waiters->next;
		free(s->waiters);
		s->waiters = n;
	}
	while (s->peers) {
		peer *n = s->peers->next;
		peer_free(s->peers);
		s->peers = n;
	}
	vz_store_close(s->st);
	free(s->node_used);
	free(s->node_down_until);
	free(s->log_dir);
	free(s);
}

/* ---------- executor messages ---------- */

static void reply(vz_sched *s, const char *rid, size_t len, vz_msg_type type, json_t *body)
{
	queue_out(s, s->router, rid, len, type, NULL, body);
}

static int on_hello(vz_sched *s, const char *rid, size_t len, vz_msg *m, vz_err *e)
{
	const char *name = vz_msg_str(m, "executor"), *inst = vz_msg_str(m, "instance");
	if (!*name || !*inst || strchr(name, '/')) {
		reply(s, rid, len, VZ_MSG_REFUSE,
		      json_pack("{s:s,s:s}", "code", "bad-hello", "message", "executor name must be non-empty without '/'"));
		return 0;
	}
	char key[512];
	snprintf(key, sizeof(key), "%s/%s", name, inst);
	peer *p = peer_by_name(s, name);
	int rc;
	if (p && strcmp(p->key, key) != 0) {
		char why[300];
		snprintf(why, sizeof(why), "executor %s restarted (instance %.8s replaced)", name, p->key + strlen(name) + 1);
		if ((rc = builds_lost_for(s, p->key, why, NULL, e)))
			return rc;
	}
	if (!p) {
		p = vz_xcalloc(1, sizeof(*p));
		p->name = vz_xstrdup(name);
		p->next = s->peers;
		s->peers = p;
	}
	free(p->key);
	p->key = vz_xstrdup(key);
	memcpy(p->rid, rid, len);
	p->rid_len = len;
	p->capacity = (int)vz_msg_int(m, "capacity", 1);
	json_decref(p->labels);
	p->labels = json_incref(json_object_get(m->body, "labels"));
	free(p->zone);
	p->zone = *vz_msg_str(m, "zone") ? vz_xstrdup(vz_msg_str(m, "zone")) : NULL;
	p->allow_unzoned = json_is_true(json_object_get(m->body, "allow_unzoned"));
	p->credit_known = 0;
	p->free = p->seen = p->sent = 0;
	p->last_seen = vz_mono_ms();

	/* Builds we think it runs but it does not claim are lost; builds it runs that we no longer
	 * want are canceled. */
	json_t *running = json_object_get(m->body, "running");
	if ((rc = builds_lost_for(s, key, "executor no longer had the build", running, e)))
		return rc;
	size_t i;
	json_t *u;
	json_array_foreach(running, i, u) {
		build *b = json_is_string(u) ? vz_map_get(s->builds, json_string_value(u)) : NULL;
		if (!b || !b->executor || strcmp(b->executor, key) != 0)
			reply(s, rid, len, VZ_MSG_CANCEL, json_pack("{s:s}", "build", json_string_value(u) ? json_string_value(u) : ""));
	}
	vz_info("executor %s (%.8s) connected: capacity %d, %zu builds running", name, inst, p->capacity,
		json_array_size(running));
	reply(s, rid, len, VZ_MSG_WELCOME,
	      json_pack("{s:s,s:i,s:i}", "scheduler_instance", s->instance, "lease_ms", s->cfg->scheduler.lease_ms,
			"heartbeat_ms", s->cfg->scheduler.heartbeat_ms));
	return 0;
}

static int on_ready(vz_sched *s, peer *p, vz_msg *m, vz_err *e)
{
	long long fr = vz_msg_int(m, "free", 0), seen = vz_msg_int(m, "seen", 0);
	if (fr < 0 || seen < 0)
		return 0;
	if (!p->credit_known || seen > p->seen) {
		if (!p->credit_known)
			p->sent = seen;
		p->seen = seen;
	}
	p->free = fr;
	p->credit_known = 1;
	return 0;
}

static build *own_build(vz_sched *s, peer *p, vz_msg *m)
{
	build *b = vz_map_get(s->builds, vz_msg_str(m, "build"));
	if (!b || b->state != B_RUNNING || !b->executor || strcmp(b->executor, p->key) != 0)
		return NULL;
	if (vz_msg_int(m, "attempt", b->attempt) != b->attempt)
		return NULL;
	return b;
}

static int on_started(vz_sched *s, peer *p, vz_msg *m, vz_err *e)
{
	build *b = own_build(s, p, m);
	if (!b)
		return 0;
	int rc = vz_store_exec(s->st, e, "UPDATE builds SET started_at=? WHERE id=? AND started_at IS NULL", "ii",
			       (int64_t)vz_msg_int(m, "started_at", vz_wall_ms()), b->id);
	if (rc < 0)
		return rc;
	return add_event(s, b, "started", json_pack("{s:s}", "executor", p->key), e);
}

static int on_log(vz_sched *s, peer *p, vz_msg *m, vz_err *e)
{
	build *b = own_build(s, p, m);
	long long off = vz_msg_int(m, "offset", -1);
	if (!b || off < 0)
		return 0;
	const char *data = vz_msg_str(m, "data");
	size_t len = json_string_length(json_object_get(m->body, "data"));
	char *lp = log_path(s, b->uuid);
	char *dir = vz_path_join(s->log_dir, b->uuid);
	vz_mkdir_p(dir, 0755, NULL);
	free(dir);
	int fd = open(lp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		vz_warn("cannot write log %s: %s", lp, strerror(errno));
		free(lp);
		return 0;
	}
	ssize_t w = pwrite(fd, data, len, (off_t)off);
	close(fd);
	free(lp);
	if (w == (ssize_t)len && off <= b->log_have && off + (long long)len > b->log_have)
		b->log_have = off + (long long)len;
	return 0;
}

/* A file of the build's log directory (docs/protocol.md, log_file): written under the build's log
 * directory at its offset, with what arrived without a gap counted per file. */
static int on_log_file(vz_sched *s, peer *p, vz_msg *m, vz_err *e)
{
	(void)e;
	build *b = own_build(s, p, m);
	const char *rel = vz_msg_str(m, "path");
	long long off = vz_msg_int(m, "offset", -1), size = vz_msg_int(m, "size", -1);
	const char *data = vz_msg_str(m, "data");
	size_t dl = strlen(data);
	if (!b)
		return 0;
	if (!vz_proto_log_path_ok(rel) || off < 0 || size < 0 || dl % 4 || dl > LOG_FILE_B64_MAX) {
		vz_warn("build %s: log file chunk refused (path '%.200s', offset %lld, %zu bytes of base64)", b->uuid, rel, off,
			dl);
		return 0;
	}
	unsigned char *raw = vz_xcalloc(1, dl / 4 * 3 + 4);
	int n = dl ? EVP_DecodeBlock(raw, (const unsigned char *)data, (int)dl) : 0;
	if (n < 0) {
		vz_warn("build %s: log file %s: the data is not base64", b->uuid, rel);
		free(raw);
		return 0;
	}
	n -= dl >= 1 && data[dl - 1] == '=' ? (dl >= 2 && data[dl - 2] == '=' ? 2 : 1) : 0;
	if (off + n > size) {
		vz_warn("build %s: log file %s: a chunk past its announced size", b->uuid, rel);
		free(raw);
		return 0;
	}
	char rel2[1200];
	snprintf(rel2, sizeof(rel2), "%s/%s", b->uuid, rel);
	char *path = vz_path_join(s->log_dir, rel2);
	char *slash = strrchr(path, '/');
	*slash = 0;
	vz_mkdir_p(path, 0755, NULL);
	*slash = '/';
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	ssize_t w = fd >= 0 ? (n ? pwrite(fd, raw, (size_t)n, (off_t)off) : 0) : -1;
	if (fd < 0 || w != n)
		vz_warn("cannot write log file %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(raw);
	free(path);
	if (w == n) {
		if (!b->files_have)
			b->files_have = json_object();
		long long have = json_integer_value(json_object_get(b->files_have, rel));
		if (off <= have && off + n > have)
			json_object_set_new(b->files_have, rel, json_integer(off + n));
		else if (!json_object_get(b->files_have, rel) && off == 0)
			json_object_set_new(b->files_have, rel, json_integer(0)); /* an empty file */
	}
	return 0;
}

/* The files a result lists ({path: size}) that did not arrive whole: {path: bytes we have}.
 * After a scheduler restart nothing is counted in memory, so the file on disk is taken as it is. */
static json_t *files_missing(vz_sched *s, build *b, json_t *files)
{
	json_t *missing = json_object();
	const char *rel;
	json_t *sz;
	json_object_foreach(files, rel, sz) {
		if (!vz_proto_log_path_ok(rel) || !json_is_integer(sz))
			continue;
		json_t *h = b->files_have ? json_object_get(b->files_have, rel) : NULL;
		long long have = -1;
		if (h) {
			have = json_integer_value(h);
		} else {
			char rel2[1200];
			snprintf(rel2, sizeof(rel2), "%s/%s", b->uuid, rel);
			char *path = vz_path_join(s->log_dir, rel2);
			struct stat st;
			if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
				have = st.st_size;
			free(path);
		}
		if (have < json_integer_value(sz))
			json_object_set_new(missing, rel, json_integer(have < 0 ? 0 : have));
	}
	return missing;
}

static int on_result(vz_sched *s, const char *rid, size_t rlen, peer *p, vz_msg *m, vz_err *e)
{
	const char *uuid = vz_msg_str(m, "build");
	long long attempt = vz_msg_int(m, "attempt", 0);
	json_t *ackbody = json_pack("{s:s,s:I}", "build", uuid, "attempt", attempt);
	build *b = own_build(s, p, m);
	if (!b) {
		/* a duplicate, or a late result of a build given up on: acknowledge, change nothing */
		vz_debug("result for %s attempt %lld from %s ignored (not running there)", uuid, attempt, p->key);
		reply(s, rid, rlen, VZ_MSG_ACK, ackbody);
		return 0;
	}
	long long log_size = vz_msg_int(m, "log_size", 0);
	json_t *missing = files_missing(s, b, json_object_get(m->body, "files"));
	if ((log_size > b->log_have || json_object_size(missing)) && b->resend_asked < LOG_RESEND_MAX) {
		b->resend_asked++;
		json_decref(ackbody);
		if (log_size > b->log_have)
			reply(s, rid, rlen, VZ_MSG_LOG_RESEND, json_pack("{s:s,s:I}", "build", uuid, "offset", (json_int_t)b->log_have));
		const char *fp;
		json_t *have;
		json_object_foreach(missing, fp, have)
			reply(s, rid, rlen, VZ_MSG_LOG_RESEND,
			      json_pack("{s:s,s:I,s:s}", "build", uuid, "offset", json_integer_value(have), "path", fp));
		json_decref(missing);
		return 0;
	}
	char files_note[200] = "";
	if (json_object_size(missing))
		snprintf(files_note, sizeof(files_note), " (%zu files of the log directory incomplete, e.g. %.120s)",
			 json_object_size(missing), json_object_iter_key(json_object_iter(missing)));
	json_decref(missing);
	const char *result = vz_msg_str(m, "result");
	const char *msg = vz_msg_str(m, "message");
	int rc;
	if (strcmp(result, "REQUEUE") == 0) {
		/* the executor refused the build before running anything (it is stopping): the same
		 * attempt goes back to the queue and is not counted */
		rc = vz_store_exec(s->st, e, "UPDATE builds SET state='queued', executor=NULL, node=NULL, dispatched_at=NULL,"
				   " started_at=NULL WHERE id=?", "i", b->id);
		/* a build handed back mid-run starts over: its partial log and files go */
		char *ld = vz_path_join(s->log_dir, b->uuid);
		vz_err re = { 0 };
		if (vz_rm_rf(ld, &re) != 0)
			vz_warn("build %s: cannot discard its partial logs: %s", b->uuid, vz_err_msg(&re));
		free(ld);
		b->log_have = 0;
		json_decref(b->files_have);
		b->files_have = NULL;
		b->resend_asked = 0;
		if (rc < 0 || (rc = add_event(s, b, "requeued", json_pack("{s:s,s:s}", "executor", p->key, "why", msg), e)))
			goto fail;
		release_node(s, b);
		free(b->executor);
		b->executor = NULL;
		enqueue_build(s, b);
		reply(s, rid, rlen, VZ_MSG_ACK, ackbody);
		return 0;
	}
	if (b->node >= 0) {
		/* node health: a node that failed a build is avoided for a while; any other outcome
		 * shows it works */
		if (json_is_true(json_object_get(m->body, "node_failed"))) {
			if (!s->node_down_until[b->node])
				vz_warn("node %s failed build %s (%s); avoiding it for %d s while other nodes can serve",
					s->cfg->nodes[b->node].name, b->uuid, msg, NODE_DOWN_MS / 1000);
			s->node_down_until[b->node] = vz_mono_ms() + NODE_DOWN_MS;
		} else if (strcmp(result, "RETRY") != 0) {
			s->node_down_until[b->node] = 0;
		}
	}
	if (strcmp(result, "RETRY") == 0) {
		if ((rc = build_retry(s, b, *msg ? msg : "the executor asked for a retry", "RETRY", e)))
			goto fail;
		reply(s, rid, rlen, VZ_MSG_ACK, ackbody);
		return 0;
	}
	char note[300] = "";
	if (log_size > b->log_have)
		snprintf(note, sizeof(note), " (log incomplete: %lld of %lld bytes arrived)", (long long)b->log_have, log_size);
	else
		vz_strlcpy(note, files_note, sizeof(note));
	char *fullmsg = NULL;
	if (*msg || *note) {
		size_t n = strlen(msg) + strlen(note) + 1;
		fullmsg = malloc(n);
		if (!fullmsg)
			abort();
		snprintf(fullmsg, n, "%s%s", msg, note);
	}
	rc = vz_store_exec(s->st, e,
			   "UPDATE builds SET state='done', result=?, message=?, ended_at=?, commit_id=?, node=COALESCE(?, node),"
			   " log_size=?, started_at=COALESCE(started_at, ?) WHERE id=?",
			   "ssissiii", result, fullmsg, (int64_t)vz_msg_int(m, "ended_at", vz_wall_ms()),
			   *vz_msg_str(m, "commit") ? vz_msg_str(m, "commit") : NULL,
			   *vz_msg_str(m, "node") ? vz_msg_str(m, "node") : NULL, (int64_t)b->log_have,
			   (int64_t)vz_msg_int(m, "started_at", vz_wall_ms()), b->id);
	free(fullmsg);
	if (rc < 0)
		goto fail;
	if ((rc = add_event(s, b, "result", json_pack("{s:s,s:s}", "result", result, "executor", p->key), e)))
		goto fail;
	vz_info("build %s %s (%s %s) finished: %s", b->uuid, b->job, b->it->project, b->it->change, result);
	release_node(s, b);
	vz_map_del(s->builds, b->uuid);
	item *it = b->it;
	it->nlive--;
	build_free(b);
	if ((rc = item_maybe_finish(s, it, e)))
		goto fail;
	reply(s, rid, rlen, VZ_MSG_ACK, ackbody);
	return 0;
fail:
	json_decref(ackbody);
	return rc;
}

static int handle_router(vz_sched *s, vz_err *e)
{
	char rid[VZ_PROTO_MAX_PEER_ID + 1], ref[VZ_PROTO_MAX_ID + 1] = "";
	size_t rlen = 0;
	vz_msg *m = NULL;
	vz_err de = { 0 };
	int rc = vz_proto_recv(s->router, 1, rid, &rlen, &m, ref, ZMQ_DONTWAIT, &de);
	if (rc == VZ_ETIMEOUT)
		return VZ_ETIMEOUT;
	if (rc) {
		vz_warn("refused a frame from executor %.*s: %s", (int)rlen, rid, vz_err_msg(&de));
		if (rlen) {
			if (rc == VZ_EVERSION)
				reply(s, rid, rlen, VZ_MSG_REFUSE, json_pack("{s:s,s:s}", "code", "version", "message", vz_err_msg(&de)));
			else
				reply(s, rid, rlen, VZ_MSG_ERROR,
				      json_pack("{s:s,s:s,s:s}", "code", rc == VZ_ETOOBIG ? "too-big" : "malformed", "message",
						vz_err_msg(&de), "ref", ref));
		}
		return 0;
	}
	rc = 0;
	if (m->type == VZ_MSG_HELLO) {
		rc = on_hello(s, rid, rlen, m, e);
		goto out;
	}
	peer *p = peer_by_rid(s, rid, rlen);
	if (!p) {
		reply(s, rid, rlen, VZ_MSG_ERROR,
		      json_pack("{s:s,s:s,s:s}", "code", "hello-required", "message", "say hello first", "ref", m->id));
		goto out;
	}
	p->last_seen = vz_mono_ms();
	switch (m->type) {
	case VZ_MSG_READY: rc = on_ready(s, p, m, e); break;
	case VZ_MSG_STARTED: rc = on_started(s, p, m, e); break;
	case VZ_MSG_LOG: rc = on_log(s, p, m, e); break;
	case VZ_MSG_LOG_FILE: rc = on_log_file(s, p, m, e); break;
	case VZ_MSG_RESULT: rc = on_result(s, rid, rlen, p, m, e); break;
	case VZ_MSG_HEARTBEAT:
		on_ready(s, p, m, e);
		reply(s, rid, rlen, VZ_MSG_HEARTBEAT, json_pack("{s:s}", "scheduler_instance", s->instance));
		break;
	case VZ_MSG_ERROR:
		vz_warn("executor %s reported an error: %s", p->key, vz_msg_str(m, "message"));
		break;
	default:
		vz_warn("executor %s sent %s, which executors do not send; ignored", p->key, vz_msg_type_name(m->type));
		reply(s, rid, rlen, VZ_MSG_ERROR,
		      json_pack("{s:s,s:s,s:s}", "code", "unexpected", "message", "message type not accepted here", "ref", m->id));
	}
out:
	vz_msg_free(m);
	return rc;
}

/* ---------- dispatch ---------- */

/* Zuul's executor zones: a node in a zone is reached only by that zone's executors; an unzoned
 * node by unzoned executors and by zoned ones that allow it. */
static int zone_reaches(const peer *p, const vz_conf_node *n)
{
	if (n->zone)
		return p->zone && strcmp(p->zone, n->zone) == 0;
	return !p->zone || p->allow_unzoned;
}

static int labels_intersect(json_t *exec_labels, const vz_conf_node *n)
{
	if (!exec_labels || json_array_size(exec_labels) == 0)
		return 1;
	size_t i;
	json_t *l;
	json_array_foreach(exec_labels, i, l) for (size_t j = 0; j < n->nlabels; j++) if (json_is_string(l) &&
											 strcmp(json_string_value(l), n->labels[j]) == 0) return 1;
	return 0;
}

static int node_has_label(const vz_conf_node *n, const char *label)
{
	if (!label)
		return 1;
	for (size_t j = 0; j < n->nlabels; j++)
		if (strcmp(n->labels[j], label) == 0)
			return 1;
	return 0;
}

static json_t *node_json(const vz_conf_node *n)
{
	json_t *o = json_pack("{s:s,s:s,s:i,s:b}", "name", n->name, "connection", n->connection, "port", n->port,
			      "shared", n->max_parallel > 1);
	if (n->host) json_object_set_new(o, "host", json_string(n->host));
	if (n->user) json_object_set_new(o, "user", json_string(n->user));
	if (n->key) json_object_set_new(o, "key", json_string(n->key));
	if (n->known_hosts) json_object_set_new(o, "known_hosts", json_string(n->known_hosts));
	if (n->host_key) json_object_set_new(o, "host_key", json_string(n->host_key));
	return o;
}

static int dispatch_one(vz_sched *s, build *b, const vz_conf_job *job, int ni, peer *p, vz_err *e)
{
	const vz_conf_node *n = &s->cfg->nodes[ni];
	int rc = vz_store_exec(s->st, e, "UPDATE builds SET state='running', executor=?, node=?, dispatched_at=? WHERE id=?",
			       "ssii", p->key, n->name, vz_wall_ms(), b->id);
	if (rc < 0)
		return rc;
	if ((rc = add_event(s, b, "dispatched", json_pack("{s:s,s:s}", "executor", p->key, "node", n->name), e)))
		return rc;
	b->state = B_RUNNING;
	free(b->executor);
	b->executor = vz_xstrdup(p->key);
	b->node = ni;
	b->log_have = 0;
	json_decref(b->files_have);
	b->files_have = NULL;
	b->resend_asked = 0;
	s->node_used[ni]++;
	p->sent++;
	const vz_conf_connection *c = vz_config_connection(s->cfg, b->it->connection);
	char *url = c ? vz_git_repo_url(c, b->it->project) : vz_xstrdup("");
	char canon[1024];
	snprintf(canon, sizeof(canon), "%s/%s", c && c->canonical_hostname ? c->canonical_hostname : b->it->connection,
		 b->it->project);
	json_t *cmds = json_array();
	for (size_t i = 0; job && i < job->nrun; i++)
		json_array_append_new(cmds, json_string(job->run[i]));
	json_t *body = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:i,s:[s]}", "build", b->uuid,
				 "attempt", b->attempt, "job", b->job, "project", b->it->project, "pipeline", b->it->pipeline,
				 "change", b->it->change, "ref", b->it->ref, "commit", b->it->commit ? b->it->commit : "",
				 "branch", b->it->branch, "repo", url, "canonical_project", canon, "node", node_json(n),
				 "commands", cmds, "timeout", job ? job->timeout : 1800, "changes", b->it->change);
	/* the name only: each executor finds the connection's credentials in its own configuration */
	if (b->it->connection)
		json_object_set_new(body, "connection", json_string(b->it->connection));
	free(url);
	queue_out(s, s->router, p->rid, p->rid_len, VZ_MSG_BUILD, NULL, body);
	return 0;
}

static int dispatch(vz_sched *s, vz_err *e)
{
	build **pp = &s->qhead, *prev = NULL;
	while (*pp) {
		build *b = *pp;
		const vz_conf_job *job = vz_config_job(s->cfg, b->job);
		const char *label = job ? job->label : NULL;
		/* a free healthy node an executor can reach first; while a healthy node with the label
		 * exists, wait for it; when every such node failed lately, try the one that failed
		 * longest ago (it may be back, or the build uses up its attempts: RETRY_LIMIT) */
		int ni = -1, any = 0, healthy = 0, ni_down = -1;
		peer *best = NULL, *best_down = NULL;
		uint64_t now = vz_mono_ms();
		for (size_t i = 0; i < s->cfg->nnodes && ni < 0; i++) {
			const vz_conf_node *n = &s->cfg->nodes[i];
			if (!node_has_label(n, label))
				continue;
			any = 1;
			int down = s->node_down_until[i] > now;
			healthy |= !down;
			if (s->node_used[i] >= (n->max_parallel > 0 ? n->max_parallel : 1))
				continue;
			if (down && ni_down >= 0 && s->node_down_until[i] >= s->node_down_until[ni_down])
				continue;
			peer *pick = NULL;
			long long pick_avail = 0;
			for (peer *p = s->peers; p; p = p->next) {
				if (!p->rid_len || !p->credit_known || !labels_intersect(p->labels, n) || !zone_reaches(p, n))
					continue;
				long long avail = p->free - (p->sent - p->seen);
				if (avail > pick_avail) {
					pick = p;
					pick_avail = avail;
				}
			}
			if (!pick)
				continue;
			if (down) {
				ni_down = (int)i;
				best_down = pick;
			} else {
				ni = (int)i;
				best = pick;
			}
		}
		if (ni < 0 && !healthy) {
			ni = ni_down;
			best = best_down;
		}
		if (!any) {
			/* no node offers the label: the build cannot run anywhere */
			*pp = b->next;
			if (s->qtail == b)
				s->qtail = prev;
			int rc = vz_store_exec(s->st, e, "UPDATE builds SET state='done', result='NODE_FAILURE', message=?, ended_at=? WHERE id=?",
					       "sii", "no node has the label this job needs", vz_wall_ms(), b->id);
			if (rc < 0)
				return rc;
			vz_map_del(s->builds, b->uuid);
			item *it = b->it;
			it->nlive--;
			build_free(b);
			if ((rc = item_maybe_finish(s, it, e)))
				return rc;
			continue;
		}
		if (ni < 0 || !best) {
			prev = b;
			pp = &b->next;
			continue;
		}
		*pp = b->next;
		if (s->qtail == b)
			s->qtail = prev;
		b->next = NULL;
		int rc = dispatch_one(s, b, job, ni, best, e);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---------- leases ---------- */

static int check_leases(vz_sched *s, vz_err *e)
{
	uint64_t now = vz_mono_ms();
	if (now - s->last_lease_check < 200)
		return 0;
	s->last_lease_check = now;
	peer **pp = &s->peers;
	while (*pp) {
		peer *p = *pp;
		if (now - p->last_seen <= (uint64_t)s->cfg->scheduler.lease_ms) {
			pp = &p->next;
			continue;
		}
		char why[300];
		snprintf(why, sizeof(why), "executor %s silent for more than %d ms (lease expired)", p->name,
			 s->cfg->scheduler.lease_ms);
		int rc = builds_lost_for(s, p->key, why, NULL, e);
		if (rc)
			return rc;
		vz_warn("%s", why);
		*pp = p->next;
		peer_free(p);
	}
	return 0;
}

/* ---------- admin requests ---------- */

static json_t *admin_err(const char *fmt, const char *a)
{
	char msg[600];
	snprintf(msg, sizeof(msg), fmt, a ? a : "");
	return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

static json_t *admin_enqueue(vz_sched *s, json_t *args, vz_err *e, int *dberr)
{
	const char *pl = json_string_value(json_object_get(args, "pipeline"));
	const char *pr = json_string_value(json_object_get(args, "project"));
	const char *ref = json_string_value(json_object_get(args, "ref"));
	const char *id = json_string_value(json_object_get(args, "id"));
	const char *branch = json_string_value(json_object_get(args, "branch"));
	if (!pl || !pr || !ref || !id)
		return admin_err("enqueue needs pipeline, project, ref and id%s", NULL);
	if (!vz_config_pipeline(s->cfg, pl))
		return admin_err("no pipeline named '%s' in the site config", pl);
	const vz_conf_project *proj = vz_config_project(s->cfg, pr);
	if (!proj)
		return admin_err("no project named '%s' in the site config", pr);
	const vz_conf_project_pipeline *pp = NULL;
	for (size_t i = 0; i < proj->npipelines; i++)
		if (strcmp(proj->pipelines[i].pipeline, pl) == 0)
			pp = &proj->pipelines[i];
	if (!pp || pp->njobs == 0)
		return admin_err("project has no jobs in pipeline '%s'; nothing to run", pl);
	const vz_conf_connection *c = vz_config_connection(s->cfg, proj->connection);
	if (!c)
		return admin_err("project's connection '%s' is not defined", proj->connection);
	char commit[41];
	char *url = vz_git_repo_url(c, pr);
	vz_err ge = { 0 };
	if (vz_git_resolve_ref(url, ref, commit, &ge)) {
		free(url);
		return admin_err("%s", vz_err_msg(&ge));
	}
	free(url);
	if (!branch)
		branch = proj->default_branch;

	json_t *dup = vz_store_query(s->st, e,
				     "SELECT uuid FROM queue_items WHERE state='active' AND pipeline=? AND project=? AND change_id=? AND commit_id=?",
				     "ssss", pl, pr, id, commit);
	if (!dup) {
		*dberr = 1;
		return NULL;
	}
	if (json_array_size(dup) > 0) {
		json_t *r = json_pack("{s:b,s:{s:O,s:b}}", "ok", 1, "data", "item", json_object_get(json_array_get(dup, 0), "uuid"),
				      "already_enqueued", 1);
		json_decref(dup);
		return r;
	}
	json_decref(dup);

	char ev_uuid[37], it_uuid[37];
	vz_uuid(ev_uuid);
	vz_uuid(it_uuid);
	char *payload = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
	int64_t now = vz_wall_ms();
	int rc = vz_store_exec(s->st, e,
			       "INSERT INTO trigger_events(uuid, connection, type, payload, received_at, processed_at) VALUES(?,?,?,?,?,?)",
			       "ssssii", ev_uuid, proj->connection, "enqueue", payload, now, now);
	free(payload);
	if (rc < 0) {
		*dberr = 1;
		return NULL;
	}
	int64_t ev = vz_store_last_id(s->st);
	rc = vz_store_exec(s->st, e,
			   "INSERT INTO queue_items(uuid, event_id, pipeline, project, connection, branch, change_id, ref, commit_id,"
			   " state, enqueued_at) VALUES(?,?,?,?,?,?,?,?,?,'active',?)",
			   "sisssssssi", it_uuid, ev, pl, pr, proj->connection, branch, id, ref, commit, now);
	if (rc < 0) {
		*dberr = 1;
		return NULL;
	}
	item *it = vz_xcalloc(1, sizeof(*it));
	it->id = vz_store_last_id(s->st);
	memcpy(it->uuid, it_uuid, sizeof(it_uuid));
	it->pipeline = vz_xstrdup(pl);
	it->project = vz_xstrdup(pr);
	it->connection = vz_xstrdup(proj->connection);
	it->branch = vz_xstrdup(branch);
	it->change = vz_xstrdup(id);
	it->ref = vz_xstrdup(ref);
	it->commit = vz_xstrdup(commit);
	char key[32];
	snprintf(key, sizeof(key), "%lld", (long long)it->id);
	vz_map_set(s->items, key, it);
	json_t *builds = json_array();
	for (size_t i = 0; i < pp->njobs; i++) {
		const vz_conf_job *job = vz_config_job(s->cfg, pp->jobs[i]);
		if (!job)
			continue;
		if (create_build(s, it, job, 1, e)) {
			*dberr = 1;
			json_decref(builds);
			return NULL;
		}
		json_array_append_new(builds, json_pack("{s:s,s:s}", "job", job->name, "uuid", s->qtail->uuid));
	}
	vz_info("enqueued %s change %s (%s = %.12s) into %s: %zu jobs", pr, id, ref, commit, pl, json_array_size(builds));
	return json_pack("{s:b,s:{s:s,s:s,s:o}}", "ok", 1, "data", "item", it_uuid, "commit", commit, "builds", builds);
}

static void iso_field(json_t *o, const char *to, json_t *ms)
{
	if (json_is_integer(ms)) {
		char ts[40];
		vz_iso8601(ts, sizeof(ts), json_integer_value(ms));
		json_object_set_new(o, to, json_string(ts));
	} else {
		json_object_set_new(o, to, json_null());
	}
}

static json_t *build_row_json(json_t *r)
{
	json_t *o = json_object();
	static const char *copy[] = { "uuid", "pipeline", "project", "job", "attempt", "result", "message", "node",
				      "executor", "voting", "state", "log_size" };
	for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++)
		json_object_set(o, copy[i], json_object_get(r, copy[i]) ? json_object_get(r, copy[i]) : json_null());
	json_object_set(o, "change", json_object_get(r, "change_id"));
	json_object_set(o, "ref", json_object_get(r, "ref"));
	json_object_set(o, "commit", json_object_get(r, "commit_id"));
	json_t *changes = json_loads(json_string_value(json_object_get(r, "changes")) ? json_string_value(json_object_get(r, "changes")) : "[]", 0, NULL);
	json_object_set_new(o, "changes", changes ? changes : json_array());
	iso_field(o, "start_time", json_object_get(r, "started_at"));
	iso_field(o, "end_time", json_object_get(r, "ended_at"));
	json_t *st = json_object_get(r, "started_at"), *en = json_object_get(r, "ended_at");
	if (json_is_integer(st) && json_is_integer(en))
		json_object_set_new(o, "duration", json_real((double)(json_integer_value(en) - json_integer_value(st)) / 1000.0));
	else
		json_object_set_new(o, "duration", json_null());
	const char *res = json_string_value(json_object_get(r, "result"));
	json_object_set_new(o, "final", json_boolean(res && strcmp(res, "LOST") != 0 && strcmp(res, "RETRY") != 0));
	json_object_set(o, "log_url", json_object_get(r, "log_path"));
	json_object_set_new(o, "voting", json_boolean(json_integer_value(json_object_get(r, "voting"))));
	return o;
}

static json_t *admin_builds(vz_sched *s, json_t *args, vz_err *e, int *dberr)
{
	const char *project = json_string_value(json_object_get(args, "project"));
	const char *pipeline = json_string_value(json_object_get(args, "pipeline"));
	const char *change = json_string_value(json_object_get(args, "change"));
	const char *job = json_string_value(json_object_get(args, "job"));
	json_int_t limit = json_integer_value(json_object_get(args, "limit"));
	if (limit <= 0 || limit > 100000)
		limit = 100;
	json_t *rows = vz_store_query(s->st, e,
				      "SELECT b.*, q.pipeline, q.project, q.change_id, q.ref FROM builds b JOIN queue_items q ON q.id=b.item_id"
				      " WHERE (?1 IS NULL OR q.project=?1) AND (?2 IS NULL OR q.pipeline=?2)"
				      " AND (?3 IS NULL OR q.change_id=?3) AND (?4 IS NULL OR b.job=?4)"
				      " ORDER BY b.id DESC LIMIT ?5",
				      "ssssi", project, pipeline, change, job, (int64_t)limit);
	if (!rows) {
		*dberr = 1;
		return NULL;
	}
	json_t *list = json_array();
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) json_array_append_new(list, build_row_json(r));
	json_decref(rows);
	return json_pack("{s:b,s:o}", "ok", 1, "data", list);
}

static json_t *admin_status(vz_sched *s, vz_err *e, int *dberr)
{
	json_t *pls = json_array();
	for (size_t i = 0; i < s->cfg->npipelines; i++) {
		const char *pl = s->cfg->pipelines[i].name;
		json_t *items = vz_store_query(s->st, e,
					       "SELECT * FROM queue_items WHERE pipeline=? AND state='active' ORDER BY id", "s", pl);
		if (!items) {
			*dberr = 1;
			json_decref(pls);
			return NULL;
		}
		json_t *out = json_array();
		size_t j;
		json_t *it;
		json_array_foreach(items, j, it) {
			json_t *brows = vz_store_query(s->st, e,
						       "SELECT b.*, q.pipeline, q.project, q.change_id, q.ref FROM builds b"
						       " JOIN queue_items q ON q.id=b.item_id WHERE b.item_id=? ORDER BY b.id",
						       "i", (int64_t)json_integer_value(json_object_get(it, "id")));
			json_t *jobs = json_array();
			size_t k;
			json_t *br;
			json_array_foreach(brows, k, br) json_array_append_new(jobs, build_row_json(br));
			json_decref(brows);
			json_t *io = json_pack("{s:O,s:O,s:O,s:O,s:O,s:[O],s:o}", "item", json_object_get(it, "uuid"), "project",
					       json_object_get(it, "project"), "change", json_object_get(it, "change_id"), "ref",
					       json_object_get(it, "ref"), "commit", json_object_get(it, "commit_id"), "changes",
					       json_object_get(it, "change_id"), "jobs", jobs);
			iso_field(io, "enqueue_time", json_object_get(it, "enqueued_at"));
			json_array_append_new(out, io);
		}
		json_decref(items);
		json_array_append_new(pls, json_pack("{s:s,s:s,s:o}", "name", pl, "manager", s->cfg->pipelines[i].manager, "items", out));
	}
	json_t *execs = json_array();
	for (peer *p = s->peers; p; p = p->next)
		json_array_append_new(execs, json_pack("{s:s,s:b,s:i,s:I,s:s?,s:b}", "name", p->name, "connected", p->rid_len > 0,
						       "capacity", p->capacity, "free", (json_int_t)p->free, "zone", p->zone,
						       "allow_unzoned", p->allow_unzoned));
	json_t *nodes = json_array();
	for (size_t i = 0; i < s->cfg->nnodes; i++) {
		const vz_conf_node *n = &s->cfg->nodes[i];
		json_array_append_new(nodes, json_pack("{s:s,s:i,s:i}", "name", n->name, "in_use", s->node_used[i],
						       "max_parallel", n->max_parallel > 0 ? n->max_parallel : 1));
	}
	return json_pack("{s:b,s:{s:s,s:o,s:o,s:o,s:I}}", "ok", 1, "data", "scheduler", s->instance, "pipelines", pls,
			 "executors", execs, "nodes", nodes, "queued", (json_int_t)vz_map_len(s->builds));
}

/* ---------- build logs (vinz logs) ---------- */

/* What a "log" reply says about a build: its state, and how many bytes from offset 0 are in its
 * log file without a gap (what may be served). */
typedef struct logstate {
	char uuid[37];
	const char *state;   /* queued, running, done */
	json_t *result;      /* done only; borrowed from row */
	json_t *retried_as;  /* uuid of the next attempt when this one was retried; borrowed */
	long long avail;
	json_t *row;         /* owns the strings above */
} logstate;

/* Fills ls for the build uuid (exact). 0, VZ_ENOTFOUND, or a store error (*dberr set). */
static int log_state(vz_sched *s, const char *uuid, logstate *ls, vz_err *e, int *dberr)
{
	memset(ls, 0, sizeof(*ls));
	build *b = vz_map_get(s->builds, uuid);
	if (b) {
		vz_strlcpy(ls->uuid, b->uuid, sizeof(ls->uuid));
		ls->state = b->state == B_RUNNING ? "running" : "queued";
		ls->avail = b->log_have;
		return 0;
	}
	json_t *rows = vz_store_query(s->st, e,
				      "SELECT b.uuid, b.state, b.result, b.log_size,"
				      " (SELECT n.uuid FROM builds n WHERE n.item_id=b.item_id AND n.job=b.job"
				      "  AND n.attempt=b.attempt+1) AS retried_as"
				      " FROM builds b WHERE b.uuid=?", "s", uuid);
	if (!rows) {
		*dberr = 1;
		return VZ_EDB;
	}
	json_t *r = json_array_get(rows, 0);
	if (!r) {
		json_decref(rows);
		return VZ_ENOTFOUND;
	}
	ls->row = rows;
	vz_strlcpy(ls->uuid, json_string_value(json_object_get(r, "uuid")), sizeof(ls->uuid));
	const char *st = json_string_value(json_object_get(r, "state"));
	ls->state = st && strcmp(st, "done") == 0 ? "done" : st && strcmp(st, "running") == 0 ? "running" : "queued";
	ls->result = json_object_get(r, "result");
	ls->retried_as = json_object_get(r, "retried_as");
	ls->avail = json_integer_value(json_object_get(r, "log_size"));
	if (strcmp(ls->state, "done") == 0 && !json_is_integer(json_object_get(r, "log_size"))) {
		/* finished before log sizes were recorded: serve the file as it is */
		char *lp = log_path(s, ls->uuid);
		struct stat stt;
		ls->avail = stat(lp, &stt) == 0 ? stt.st_size : 0;
		free(lp);
	}
	return 0;
}

/* Resolves a build id given on the command line: the full uuid or a unique prefix of at least 4
 * characters. Writes the full uuid to out. */
static json_t *log_resolve(vz_sched *s, const char *id, char out[37], vz_err *e, int *dberr)
{
	size_t n = strlen(id);
	if (n < 4 || n > 36 || strspn(id, "0123456789abcdef-") != n)
		return admin_err("'%s' is not a build id: give its uuid or a unique prefix of at least 4 characters"
				 " (see vinz builds)", id);
	if (n == 36 || vz_map_get(s->builds, id)) {
		vz_strlcpy(out, id, 37);
		return NULL;
	}
	char pat[40];
	snprintf(pat, sizeof(pat), "%s%%", id); /* only hex and '-': nothing to escape */
	json_t *rows = vz_store_query(s->st, e, "SELECT uuid FROM builds WHERE uuid LIKE ? ORDER BY uuid LIMIT 2", "s", pat);
	if (!rows) {
		*dberr = 1;
		return NULL;
	}
	json_t *r = NULL;
	if (json_array_size(rows) == 1)
		vz_strlcpy(out, json_string_value(json_object_get(json_array_get(rows, 0), "uuid")), 37);
	else
		r = admin_err(json_array_size(rows) ? "build id prefix '%s' is ambiguous; give more of it"
						    : "no build with an id starting with '%s'", id);
	json_decref(rows);
	return r;
}

/* The reply to a "log" request: up to LOG_CHUNK_MAX bytes from offset, cut on a UTF-8 boundary. */
static json_t *log_reply(vz_sched *s, const logstate *ls, long long offset)
{
	long long avail = ls->avail;
	if (offset > avail)
		offset = avail;
	size_t want = (size_t)(avail - offset) > LOG_CHUNK_MAX ? LOG_CHUNK_MAX : (size_t)(avail - offset);
	char *buf = vz_xcalloc(1, want + 1);
	size_t got = 0;
	if (want) {
		char *lp = log_path(s, ls->uuid);
		int fd = open(lp, O_RDONLY | O_CLOEXEC);
		free(lp);
		if (fd >= 0) {
			ssize_t r = pread(fd, buf, want, (off_t)offset);
			got = r > 0 ? (size_t)r : 0;
			close(fd);
		}
	}
	/* The file holds what executors sent as JSON strings, so it is UTF-8; still, never let a
	 * damaged byte make the reply unencodable: replace what is not UTF-8, and keep a sequence
	 * cut by the chunk end for the next reply. */
	size_t keep = got;
	if (got == LOG_CHUNK_MAX) {
		size_t k = got;
		for (int i = 0; i < 3 && k > 0 && ((unsigned char)buf[k - 1] & 0xC0) == 0x80; i++)
			k--;
		if (k > 0 && (unsigned char)buf[k - 1] >= 0xC0 && vz_utf8_len(buf + k - 1, got - k + 1) == 0)
			keep = k - 1;
	}
	for (size_t i = 0; i < keep;) {
		size_t l = vz_utf8_len(buf + i, keep - i);
		if (l == 0 || (l == 1 && buf[i] == 0)) {
			buf[i] = '?';
			l = 1;
		}
		i += l;
	}
	long long next = offset + (long long)keep;
	json_t *d = json_pack("{s:s,s:I,s:I,s:I,s:s%,s:s}", "build", ls->uuid, "offset", (json_int_t)offset, "next",
			      (json_int_t)next, "size", (json_int_t)avail, "data", buf, keep, "state", ls->state);
	free(buf);
	int done = strcmp(ls->state, "done") == 0;
	json_object_set_new(d, "complete", json_boolean(done && next >= avail));
	if (done) {
		json_object_set(d, "result", ls->result ? ls->result : json_null());
		if (json_is_string(ls->retried_as))
			json_object_set(d, "retried_as", ls->retried_as);
	}
	return json_pack("{s:b,s:o}", "ok", 1, "data", d);
}

/* op "log": args {build, offset (default 0), wait (ms, 0..LOG_WAIT_MAX)}. With wait, a request
 * that finds nothing new on a build still running is answered when output arrives, when the
 * build ends, or after wait ms: *deferred is set and no reply is returned now. */
static json_t *admin_log(vz_sched *s, json_t *args, const char *rid, size_t rlen, const char *msgid, int *deferred,
			 vz_err *e, int *dberr)
{
	const char *id = json_string_value(json_object_get(args, "build"));
	json_t *jo = json_object_get(args, "offset"), *jw = json_object_get(args, "wait");
	if (!id)
		return admin_err("log needs a build id%s", "");
	if ((jo && (!json_is_integer(jo) || json_integer_value(jo) < 0)) ||
	    (jw && (!json_is_integer(jw) || json_integer_value(jw) < 0 || json_integer_value(jw) > LOG_WAIT_MAX)))
		return admin_err("log: offset must be a non-negative integer and wait 0 to 5000 ms%s", "");
	char uuid[37];
	json_t *r = log_resolve(s, id, uuid, e, dberr);
	if (r || *dberr)
		return r;
	logstate ls;
	int rc = log_state(s, uuid, &ls, e, dberr);
	if (rc == VZ_ENOTFOUND)
		return admin_err("no build %s", uuid);
	if (rc)
		return NULL;
	long long off = jo ? json_integer_value(jo) : 0;
	long long wait = jw ? json_integer_value(jw) : 0;
	if (wait > 0 && off >= ls.avail && strcmp(ls.state, "done") != 0 && s->nwaiters < LOG_WAITERS_MAX) {
		waiter *w = vz_xcalloc(1, sizeof(*w));
		memcpy(w->rid, rid, rlen);
		w->rid_len = rlen;
		vz_strlcpy(w->id, msgid, sizeof(w->id));
		vz_strlcpy(w->uuid, ls.uuid, sizeof(w->uuid));
		w->offset = off;
		w->deadline = vz_mono_ms() + (uint64_t)wait;
		w->next = s->waiters;
		s->waiters = w;
		s->nwaiters++;
		*deferred = 1;
		json_decref(ls.row);
		return NULL;
	}
	r = log_reply(s, &ls, off);
	json_decref(ls.row);
	return r;
}

/* Answers the waiting "log" requests that have something new, whose build ended, or whose wait
 * is over. Runs after each batch, inside its transaction, so replies go out after the commit. */
static int serve_waiters(vz_sched *s, vz_err *e)
{
	uint64_t now = vz_mono_ms();
	waiter **pp = &s->waiters;
	while (*pp) {
		waiter *w = *pp;
		logstate ls;
		int dberr = 0;
		int rc = log_state(s, w->uuid, &ls, e, &dberr);
		if (dberr)
			return rc;
		json_t *r = NULL;
		if (rc == VZ_ENOTFOUND)
			r = admin_err("no build %s", w->uuid);
		else if (ls.avail > w->offset || strcmp(ls.state, "done") == 0 || now >= w->deadline)
			r = log_reply(s, &ls, w->offset);
		json_decref(ls.row);
		if (!r) {
			pp = &w->next;
			continue;
		}
		queue_out(s, s->admin, w->rid, w->rid_len, VZ_MSG_REPLY, w->id, r);
		*pp = w->next;
		free(w);
		s->nwaiters--;
	}
	return 0;
}

static int handle_admin(vz_sched *s, vz_err *e)
{
	char rid[VZ_PROTO_MAX_PEER_ID + 1], ref[VZ_PROTO_MAX_ID + 1] = "";
	size_t rlen = 0;
	vz_msg *m = NULL;
	vz_err de = { 0 };
	int rc = vz_proto_recv(s->admin, 1, rid, &rlen, &m, ref, ZMQ_DONTWAIT, &de);
	if (rc == VZ_ETIMEOUT)
		return VZ_ETIMEOUT;
	if (rc) {
		vz_warn("refused an admin request: %s", vz_err_msg(&de));
		if (rlen)
			queue_out(s, s->admin, rid, rlen, VZ_MSG_REPLY, ref[0] ? ref : NULL,
				  json_pack("{s:b,s:s}", "ok", 0, "error", vz_err_msg(&de)));
		return 0;
	}
	json_t *r = NULL;
	int dberr = 0, deferred = 0;
	const char *op = vz_msg_str(m, "op");
	json_t *args = json_object_get(m->body, "args");
	if (m->type != VZ_MSG_REQUEST)
		r = admin_err("the admin socket accepts requests only%s", NULL);
	else if (strcmp(op, "enqueue") == 0)
		r = admin_enqueue(s, args, e, &dberr);
	else if (strcmp(op, "builds") == 0)
		r = admin_builds(s, args, e, &dberr);
	else if (strcmp(op, "status") == 0)
		r = admin_status(s, e, &dberr);
	else if (strcmp(op, "log") == 0)
		r = admin_log(s, args, rid, rlen, m->id, &deferred, e, &dberr);
	else if (strcmp(op, "ping") == 0)
		r = json_pack("{s:b,s:{s:s}}", "ok", 1, "data", "scheduler", s->instance);
	else
		r = admin_err("unknown operation '%s'; see vinz --help", op);
	if (dberr) {
		json_decref(r);
		r = json_pack("{s:b,s:s}", "ok", 0, "error", vz_err_msg(e));
		rc = e->code ? e->code : VZ_EDB;
	} else if (deferred) {
		vz_msg_free(m);
		return 0;
	}
	queue_out(s, s->admin, rid, rlen, VZ_MSG_REPLY, m->id, r);
	vz_msg_free(m);
	return rc;
}

/* ---------- the loop ---------- */

int vz_sched_run(vz_sched *s, volatile sig_atomic_t *stop, vz_err *e)
{
	int rc = 0;
	while (!*stop) {
		zmq_pollitem_t items[] = { { s->router, 0, ZMQ_POLLIN, 0 }, { s->admin, 0, ZMQ_POLLIN, 0 } };
		int timeout = s->qhead || s->waiters ? 50 : 200;
		if (zmq_poll(items, 2, timeout) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			return vz_err_set(e, VZ_EIO, "poll failed: %s", zmq_strerror(zmq_errno()));
		}
		if ((rc = vz_store_begin(s->st, e)))
			return rc;
		int n = 0;
		while (n < BATCH_MAX) {
			int r1 = handle_router(s, e);
			if (r1 && r1 != VZ_ETIMEOUT) {
				rc = r1;
				break;
			}
			int r2 = handle_admin(s, e);
			if (r2 && r2 != VZ_ETIMEOUT) {
				rc = r2;
				break;
			}
			if (r1 == VZ_ETIMEOUT && r2 == VZ_ETIMEOUT)
				break;
			n++;
		}
		if (!rc)
			rc = check_leases(s, e);
		if (!rc)
			rc = dispatch(s, e);
		if (!rc && s->waiters)
			rc = serve_waiters(s, e);
		if (!rc)
			rc = vz_store_commit(s->st, e);
		if (rc) {
			/* nothing of this batch is acknowledged: peers re-send, and the state in memory may
			 * be ahead of the store, so stop and let a restart reload it */
			vz_store_rollback(s->st);
			drop_out(s);
			vz_error("store failure, stopping: %s", vz_err_msg(e));
			return rc;
		}
		flush_out(s);
	}
	return 0;
}
