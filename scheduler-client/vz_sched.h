/* vz_sched: the scheduler. It owns the sqlite store, binds the executors' ROUTER socket and the
 * admin socket, turns enqueue requests into queue items and builds, hands builds to executors as
 * their credit allows, and records results. One thread runs the loop; each iteration handles a
 * batch of messages in one transaction and sends acknowledgements only after it commits, so a
 * result is never acknowledged before it is durable. */
#ifndef VZ_SCHED_H
#define VZ_SCHED_H

#include <signal.h>

#include "vz_config.h"
#include "vz_err.h"

typedef struct vz_sched vz_sched;

/* Creates a scheduler for cfg (borrowed; must outlive it). zctx: the ZeroMQ context to use
 * (shared with an in-process executor for `vinz up`). listen: endpoint for executors, NULL for
 * cfg->scheduler.listen. Opens STATE_DIR/vinz.db, binds both sockets, and loads the queue state
 * left by a previous run. */
int vz_sched_new(vz_sched **out, const vz_config *cfg, void *zctx, const char *listen, vz_err *e);

/* Runs until *stop becomes non-zero. Returns 0, or an error that stopped the loop (the store
 * failing). */
int vz_sched_run(vz_sched *s, volatile sig_atomic_t *stop, vz_err *e);

void vz_sched_free(vz_sched *s);

#endif
