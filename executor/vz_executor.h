/* vz_executor: the executor daemon. Connects a DEALER socket to the scheduler, says hello, asks
 * for work with credit (free slots, requests seen), runs each build on its own thread, forwards
 * what builds emit, and re-sends every result until the scheduler acknowledges it. Survives a
 * scheduler restart: it notices the new scheduler instance, says hello again with the builds it
 * is still running, and delivers their results to the new instance. */
#ifndef VZ_EXECUTOR_H
#define VZ_EXECUTOR_H

#include <signal.h>

#include "vz_config.h"
#include "vz_err.h"

typedef struct vz_executor vz_executor;

/* cfg borrowed (must outlive the executor). endpoint NULL: cfg->executor.scheduler. */
int vz_executor_new(vz_executor **out, const vz_config *cfg, void *zctx, const char *endpoint, vz_err *e);

/* Runs until stopped. *stop == 1: no new builds (0 slots, late requests answered REQUEUE), the
 * running builds finish, their results are delivered (up to 5 s for the acks), then it returns.
 * *stop >= 2 (at once, or later while draining): the running builds are canceled, run their
 * cleanup-run playbooks and are handed back with REQUEUE. While running it serves the control
 * socket vz_executor_control_endpoint (ops pause, resume, status; docs/executor.md). Returns
 * VZ_EVERSION when the scheduler refuses our protocol version. */
int vz_executor_run(vz_executor *x, volatile sig_atomic_t *stop, vz_err *e);

/* The control socket of the executor configured by cfg: "ipc://WORK_DIR/control.sock" (caller
 * frees). `vinz executor --pause/--resume/--status` send it an admin request. */
char *vz_executor_control_endpoint(const vz_config *cfg);

void vz_executor_free(vz_executor *x);

#endif
