/* vz_gate: the pipeline managers (independent, dependent, serial, supercedent) as a deterministic
 * state machine with no I/O: events in (enqueue, merge and build results, landing results,
 * dequeue/abandon/new patchset/approval lost/promote), actions out (merge requests, builds,
 * cancels, reports, landings), each action with a stable idempotency key. The behaviour follows
 * Zuul's managers rule by rule (docs/gating.md); the scheduler keeps the state in sqlite through
 * vz_gate_to_json / vz_gate_from_json. Time is passed in, never read. */
#ifndef VZ_GATE_H
#define VZ_GATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "vz_err.h"

typedef struct vz_gate vz_gate;

typedef enum {
	VZ_GATE_INDEPENDENT = 1,
	VZ_GATE_DEPENDENT,
	VZ_GATE_SERIAL,
	VZ_GATE_SUPERCEDENT,
} vz_gate_manager;

typedef enum {
	VZ_GATE_WINDOW_NONE = 0,
	VZ_GATE_WINDOW_LINEAR,
	VZ_GATE_WINDOW_EXPONENTIAL,
} vz_gate_window_type;

/* Caps: an input past one is refused with VZ_ETOOBIG. */
#define VZ_GATE_MAX_PIPELINES 64
#define VZ_GATE_MAX_ITEMS 4096     /* live and non-live items per pipeline, pending included */
#define VZ_GATE_MAX_JOBS 256       /* jobs per item */
#define VZ_GATE_MAX_NEEDS 64       /* needed changes per change, dependencies per job */
#define VZ_GATE_MAX_STR 1024       /* any name, id, ref or message given in */
#define VZ_GATE_MAX_LANDED 1024    /* landed changes remembered for `needs` (the oldest go first) */

enum { VZ_GATE_PRECEDENCE_NORMAL = 0, VZ_GATE_PRECEDENCE_LOW = 1, VZ_GATE_PRECEDENCE_HIGH = 2 };
#define VZ_GATE_WINDOW_UNLIMITED (-1)

/* A pipeline. Zero fields take Zuul's defaults: window 20, floor 3, increase linear by 1,
 * decrease exponential by 2, no ceiling; dequeue_on_new_patchset true unless
 * keep_on_new_patchset is set. Serial and supercedent queues always have a window of 1;
 * independent ones none. */
typedef struct vz_gate_pipeline_conf {
	const char *name;
	vz_gate_manager manager;
	int window;          /* 0: default 20; VZ_GATE_WINDOW_UNLIMITED for Zuul's `window: 0` */
	int window_floor;    /* 0: default 3 */
	int window_ceiling;  /* 0: none */
	vz_gate_window_type increase_type; /* NONE here means the default, linear */
	int increase_factor; /* 0: 1 */
	vz_gate_window_type decrease_type; /* NONE here means the default, exponential */
	int decrease_factor; /* 0: 2 */
	int window_fixed;    /* 1: window-increase-type and -decrease-type "none" */
	int keep_on_new_patchset; /* 1: dequeue-on-new-patchset false */
	int precedence;      /* Zuul's constants: VZ_GATE_PRECEDENCE_NORMAL (0, the default), _LOW, _HIGH */
	const char *const *supercedes; /* pipeline names; NULL-free array of nsupercedes */
	size_t nsupercedes;
} vz_gate_pipeline_conf;

/* A job of an item's frozen graph (the caller froze it; the gate never loads configuration). */
typedef struct vz_gate_dep {
	const char *name;
	int soft; /* a soft dependency on a job not in the graph is ignored; a hard one is an error */
} vz_gate_dep;

typedef struct vz_gate_job {
	const char *name;
	const vz_gate_dep *deps;
	size_t ndeps;
	int nonvoting;        /* voting unless set */
	int attempts;         /* 0: Zuul's default 3 */
	int hold_following;   /* hold-following-changes */
} vz_gate_job;

/* What an enqueue is about: a change (change set) or a ref (ref set, for post/periodic). */
typedef struct vz_gate_change {
	const char *connection;
	const char *project;
	const char *branch;
	const char *change;   /* change id; NULL for a ref item */
	int patchset;
	const char *ref;      /* the change's ref, or the updated ref of a ref item */
	const char *commit;   /* the change's head commit or the ref's new commit */
	const char *const *needs; /* change ids it needs: Depends-On and git parents, in order */
	size_t nneeds;
} vz_gate_change;

typedef struct vz_gate_item_spec {
	vz_gate_change change;
	const vz_gate_job *jobs;
	size_t njobs;
	int fail_fast;
	const char *config_error; /* set when freezing the job graph failed: reported as config-error */
} vz_gate_item_spec;

/* Build results an executor or the node pool reports (SUCCESS .. REQUEUE; SKIPPED is final and
 * not a success). The gate itself sets SKIPPED (a parent failed), CANCELED (fail-fast or a
 * reset while running), RETRY_LIMIT (attempts used up). */
typedef enum {
	VZ_GATE_SUCCESS = 1,
	VZ_GATE_FAILURE,
	VZ_GATE_TIMED_OUT,
	VZ_GATE_POST_FAILURE,
	VZ_GATE_ERROR,
	VZ_GATE_NODE_FAILURE,  /* final; the job's dependants are skipped */
	VZ_GATE_SKIPPED,
	VZ_GATE_RETRY,         /* counted against attempts: unreachable node, lost executor, pre-run failed */
	VZ_GATE_ABORTED,       /* the executor aborted it: counted against attempts, as a retry */
	VZ_GATE_REQUEUE,       /* handed back before it ran (executor stopping): re-run, not counted */
	VZ_GATE_CANCELED,
	VZ_GATE_RETRY_LIMIT,
} vz_gate_result;

/* "SUCCESS", "NODE_FAILURE"... ; "?" for an unknown value. */
const char *vz_gate_result_name(vz_gate_result r);

typedef enum {
	VZ_GATE_ACT_MERGE = 1, /* build the speculative state of `changes` (items ahead, own last) */
	VZ_GATE_ACT_BUILD,     /* run `job` for `item` on `repo_state`, testing `changes` */
	VZ_GATE_ACT_CANCEL,    /* cancel `build` */
	VZ_GATE_ACT_REPORT,    /* report `report` (enqueue, start, success, failure, merge-conflict,
	                        * config-error, no-jobs, dequeue) with `result` and `message` */
	VZ_GATE_ACT_LAND,      /* land `item`: move its branch to the tested `repo_state` */
} vz_gate_act_kind;

/* One action. Every pointer is owned by the gate and lives until vz_gate_actions_clear. */
typedef struct vz_gate_action {
	vz_gate_act_kind kind;
	const char *key;      /* stable idempotency key: the same action after a restore has the same key */
	const char *pipeline;
	uint64_t item;        /* 0 for a report about a change that was never enqueued (a cycle) */
	const char *change;   /* the item's change id, or "ref:<project>:<ref>" (the refused change
	                       * for a cycle report) */
	const char *project;
	unsigned gen;         /* buildset generation: quoted back in merge and landing results */
	const char *const *changes; /* MERGE, BUILD: what is tested, in queue order, own last */
	size_t nchanges;
	const char *repo_state; /* BUILD, LAND: the merge result's repo state */
	const char *job;      /* BUILD */
	uint64_t build;       /* BUILD, CANCEL */
	int attempt;          /* BUILD: 1 for the first */
	int precedence;       /* BUILD: the pipeline's; node requests are served high, normal, low,
	                       * then by enqueue_time */
	int64_t enqueue_time; /* BUILD */
	const char *report;   /* REPORT */
	const char *result;   /* REPORT: SUCCESS, FAILURE, MERGE_CONFLICT, MERGE_FAILURE, CONFIG_ERROR,
	                       * NO_JOBS, DEQUEUED, or NULL for enqueue/start */
	const char *message;  /* REPORT */
} vz_gate_action;

/* A new empty gate. *out freed with vz_gate_free. VZ_ENOMEM. */
int vz_gate_new(vz_gate **out, vz_err *e);
void vz_gate_free(vz_gate *g); /* accepts NULL */

/* Adds a pipeline. VZ_EINVAL for a missing or duplicate name, a bad manager or window setting,
 * VZ_ETOOBIG past VZ_GATE_MAX_PIPELINES. */
int vz_gate_add_pipeline(vz_gate *g, const vz_gate_pipeline_conf *conf, vz_err *e);

/* Puts project into the shared change queue `queue` of a dependent or serial pipeline (Zuul's
 * `queue:`). A project not put anywhere has a queue of its own. VZ_ENOTFOUND, VZ_EINVAL. */
int vz_gate_set_queue(vz_gate *g, const char *pipeline, const char *project, const char *queue,
		      vz_err *e);

/* Events. Each returns 0 when the event was taken (which may mean "ignored": a stale result, an
 * unknown build), VZ_EINVAL / VZ_ETOOBIG / VZ_ENOTFOUND (unknown pipeline) for bad input, and
 * VZ_ECONFLICT for an enqueue refused because of a dependency cycle (the message names the
 * changes; a failure report is emitted and the cycle's waiting changes are dropped). A failed call leaves the state as it was before
 * the call, except VZ_ENOMEM, after which the gate must be freed. */

/* Enqueues a change or ref whose requirements are met (approved). A change whose needed changes
 * cannot be enqueued ahead of it waits, and is enqueued when they are; *out_item (may be NULL)
 * is set to its item id, or 0 when it waits. */
int vz_gate_enqueue(vz_gate *g, const char *pipeline, const vz_gate_item_spec *spec, int64_t now,
		    uint64_t *out_item, vz_err *e);
/* The merger's answer to a MERGE action: merged with repo_state, or a conflict. */
int vz_gate_merge_result(vz_gate *g, uint64_t item, unsigned gen, int merged,
			 const char *repo_state, const char *message, int64_t now, vz_err *e);
int vz_gate_build_started(vz_gate *g, uint64_t build, int64_t now, vz_err *e);
/* A failure-output match while the build still runs: the item fails now (the gate resets early). */
int vz_gate_build_early_failure(vz_gate *g, uint64_t build, int64_t now, vz_err *e);
int vz_gate_build_result(vz_gate *g, uint64_t build, vz_gate_result result, int64_t now, vz_err *e);
/* The answer to a LAND action: landed, or not (MERGE_FAILURE, message says why). */
int vz_gate_landing_result(vz_gate *g, uint64_t item, unsigned gen, int landed,
			   const char *message, int64_t now, vz_err *e);
/* A change merged outside this gate: changes waiting for it may now enqueue. */
int vz_gate_change_merged(vz_gate *g, const char *change, int64_t now, vz_err *e);
/* Operator dequeue of change (or "ref:<project>:<ref>") from pipeline. VZ_ENOTFOUND. */
int vz_gate_dequeue(vz_gate *g, const char *pipeline, const char *change, int64_t now, vz_err *e);
int vz_gate_abandon(vz_gate *g, const char *change, int64_t now, vz_err *e);
int vz_gate_new_patchset(vz_gate *g, const char *change, int patchset, int64_t now, vz_err *e);
int vz_gate_approval_lost(vz_gate *g, const char *pipeline, const char *change, int64_t now,
			  vz_err *e);
/* Moves changes to the head of their queue in the given order, resetting the queue's builds. */
int vz_gate_promote(vz_gate *g, const char *pipeline, const char *const *changes, size_t n,
		    int64_t now, vz_err *e);

/* Actions emitted since the last clear, in order. Borrowed until vz_gate_actions_clear. */
size_t vz_gate_nactions(const vz_gate *g);
const vz_gate_action *vz_gate_action_at(const vz_gate *g, size_t i);
void vz_gate_actions_clear(vz_gate *g);

/* The whole state (configuration, queues, items, builds, counters; not the pending actions) as
 * JSON, and back. *out freed with json_decref / vz_gate_free. VZ_EINVAL for malformed state. */
int vz_gate_to_json(json_t **out, const vz_gate *g, vz_err *e);
int vz_gate_from_json(vz_gate **out, const json_t *j, vz_err *e);

#endif
