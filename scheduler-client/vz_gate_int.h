/* vz_gate_int: the gate's state, shared by vz_gate.c (the managers) and vz_gate_json.c (its
 * serialisation). Not for other modules. */
#ifndef VZ_GATE_INT_H
#define VZ_GATE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "vz_gate.h"

enum { GT_MERGE_NEW = 0, GT_MERGE_PENDING, GT_MERGE_DONE, GT_MERGE_CONFLICT };

typedef struct gt_job {
	char *name;
	char **deps; /* only dependencies on jobs in the graph are kept */
	int *soft;
	size_t ndeps;
	int nonvoting, attempts, hold_following;
} gt_job;

/* The current buildset's state of one job. */
typedef struct gt_js {
	uint64_t build;  /* current build id, 0 when none was started */
	int tries;       /* attempts started in this buildset */
	int result;      /* vz_gate_result when final, else 0 */
	int pre_fail;    /* early failure seen */
	int64_t started; /* build started at (0: not yet) */
} gt_js;

typedef struct gt_item {
	uint64_t id;
	char *connection, *project, *branch, *change, *ref, *commit, *key;
	int patchset;
	char **needs;
	size_t nneeds;
	gt_job *jobs;
	gt_js *js;
	size_t njobs;
	int fail_fast;
	char *config_error;
	int live;
	uint64_t ahead; /* item ahead (0: none) */
	int64_t enqueue_time;
	unsigned gen;   /* buildset generation */
	int merge;      /* GT_MERGE_* */
	char *repo_state, *merge_message;
	int reported_start, reported, landing, unqualified, failing, active;
	/* transient, recomputed while processing, not saved */
	int holds;      /* this item or one ahead holds following changes */
	uint64_t mark;  /* cancel_jobs' visit mark */
} gt_item;

typedef struct gt_queue {
	char *name;
	int dynamic; /* removed when empty (independent, supercedent) */
	int window;  /* 0: unlimited */
	int unsorted; /* items not in increasing id order (after a promote) */
	gt_item **items;
	size_t n, cap;
} gt_queue;

typedef struct gt_qmap {
	char *project, *queue;
} gt_qmap;

typedef struct gt_pipe {
	char *name;
	vz_gate_manager manager;
	int window, window_floor, window_ceiling;
	int increase_type, increase_factor, decrease_type, decrease_factor;
	int dequeue_on_new_patchset, precedence;
	char **supercedes;
	size_t nsupercedes;
	gt_queue **queues;
	size_t nqueues, queuecap;
	gt_item **pending; /* approved changes waiting for what they need */
	size_t npending, pendingcap;
	gt_qmap *qmap;
	size_t nqmap, qmapcap;
} gt_pipe;

typedef struct gt_removed {
	char *change, *why;
} gt_removed;

struct vz_gate {
	gt_pipe **pipes;
	size_t npipes;
	char **landed; /* change ids landed through this gate or reported merged */
	size_t nlanded, landedcap;
	uint64_t next_item, next_build, seq;
	uint64_t epoch; /* for cancel_jobs' marks */
	vz_gate_action *acts;
	size_t nacts, actcap;
	gt_removed *removed; /* removals during the current event, for dequeue messages */
	size_t nremoved, removedcap;
	int oom;
};

char *gt_strdup(const char *s);
int gt_result_from_name(const char *s);
void gt_job_clear(gt_job *j);
void gt_item_free(gt_item *it);
void gt_removed_clear(vz_gate *g);
void gt_pipe_free(gt_pipe *p); /* accepts NULL */
gt_pipe *gt_pipe_find(const vz_gate *g, const char *name);
int gt_pipe_apply_conf(gt_pipe *p, const vz_gate_pipeline_conf *c, vz_err *e);

#endif
