/* vz_build: runs one build request on its node: check out the change (vz_workspace), ship it to
 * the node when the node is remote, run the job's commands in order in the checkout, write
 * job-output.txt as it happens and stream it, and produce one result. Runs on its own thread;
 * everything it tells the scheduler goes through the emit callback. */
#ifndef VZ_BUILD_H
#define VZ_BUILD_H

#include <jansson.h>
#include <stddef.h>

#include "vz_config.h"
#include "vz_proto.h"

typedef struct vz_build_env {
	const char *work_dir;  /* builds go in WORK_DIR/builds/<uuid>, caches in WORK_DIR/cache */
	size_t log_max;        /* cap on job-output.txt; 0: 64 MiB */
	size_t ship_max;       /* cap on a work tree shipped to a node; 0: 256 MiB */
	const char *executor;  /* executor name, for the result */
	const vz_config *site; /* this executor's site configuration (borrowed, may be NULL): the
				* credentials of the build's "connection" are looked up here */
	int disk_limit_mb;     /* Zuul's disk_limit_per_job: MB the build's directory may use while
				* it runs; <= 0: no limit. Over it the build ends DISK_FULL */
	int disk_check_ms;     /* how often the build's directory is measured; 0: 1000 */
	int pause_max_s;       /* longest a build stays paused (zuul.pause) waiting for resume;
				* 0: 24 h. Past it the build goes on as if resumed */
	/* optional: every log line as it is written (node name, text without the newline), on the
	 * build's thread, for a caller showing live progress (vinz run) */
	void (*on_line)(void *ctx, const char *node, const char *text, size_t len);
	void *line_ctx;
	int keep_workspace;    /* 1: leave BUILD_DIR/src in place after the result (vinz run --keep) */
} vz_build_env;

/* Receives a message for the scheduler; takes ownership of body. Called on the build's thread. */
typedef void (*vz_build_emit)(void *ctx, vz_msg_type type, json_t *body);

/* Values of the cancel flag: the scheduler canceled the build (result ABORTED), the executor
 * hands its builds back (second SIGTERM: result REQUEUE, the scheduler runs the same attempt
 * elsewhere), or the build's directory went over disk_limit_mb (result DISK_FULL; set by the
 * build itself). In every case the cleanup-run playbooks still run. */
enum { VZ_BUILD_CANCEL = 1, VZ_BUILD_CANCEL_STOPPING = 2, VZ_BUILD_CANCEL_DISK = 3 };

/* What the executor loop can tell a running build: cancel (values above) and resume (non-zero:
 * a build paused by zuul.pause goes on with post-run). Either may be NULL. */
typedef struct vz_build_ctl {
	volatile int *cancel;
	volatile int *resume;
	volatile int *running; /* optional: set to 1 once the job itself runs on the node (the
				* workspaces are there); until then the build counts as starting */
} vz_build_ctl;

/* Runs the build described by req (a decoded "build" message body, borrowed). Emits "started",
 * "log" chunks, "early_failure" (once, when a line of run-phase output matches the request's
 * failure_output), "paused" (when the run returned zuul.pause; the build then waits for
 * ctl->resume or a cancel) and exactly one "result" with one of: SUCCESS, FAILURE, TIMED_OUT,
 * POST_FAILURE, ABORTED, DISK_FULL, REQUEUE, NODE_FAILURE (host key or node configuration),
 * RETRY (node unreachable or pre-run failed: the scheduler counts the attempt and tries again),
 * MERGE_CONFLICT, ERROR. The result carries what the playbooks returned with zuul_return
 * (data, log_url, artifacts, child_jobs, warnings; docs/executor.md). */
void vz_build_run_ctl(json_t *req, const vz_build_env *env, const vz_build_ctl *ctl, vz_build_emit emit, void *ctx);

/* vz_build_run_ctl without resume. */
void vz_build_run(json_t *req, const vz_build_env *env, volatile int *cancel, vz_build_emit emit, void *ctx);

/* Path of a build's log: WORK_DIR/builds/<uuid>/job-output.txt (caller frees). */
char *vz_build_log_path(const char *work_dir, const char *uuid);

/* The build's log directory on the executor (WORK_DIR/builds/UUID/logs): what post-run
 * playbooks fetch into zuul.executor.log_root, and job-output.json. Its files go to the
 * scheduler's log store as log_file messages when the build ends (docs/executor.md). */
char *vz_build_logs_dir(const char *work_dir, const char *uuid);

/* Sends the file abs of a build's log directory, named rel there, from byte `from` to its
 * current end as log_file messages (at most 48 KiB of data each, base64) through emit.
 * Returns the file's size, or -1 when it cannot be read. */
long long vz_build_send_log_file(const char *uuid, long long attempt, const char *abs, const char *rel, long long from,
				 vz_build_emit emit, void *ctx);

#endif
