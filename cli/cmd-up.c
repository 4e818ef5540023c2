/* vinz up: the embedded default: scheduler and executor in one process over inproc ZeroMQ.
 * Also provides vz_embedded_* for `vinz demo`. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "vz_cli.h"
#include "vz_embedded.h"
#include <unistd.h>
#include "vz_executor.h"
#include "vz_log.h"
#include "vz_sched.h"

struct vz_embedded {
	void *zctx;
	vz_sched *sched;
	vz_executor *exec;
	pthread_t sthread, xthread;
	volatile sig_atomic_t stop;
	int src, xrc;
	vz_err se, xe;
};

static void *sched_main(void *arg)
{
	vz_embedded *m = arg;
	m->src = vz_sched_run(m->sched, &m->stop, &m->se);
	if (m->src)
		vz_error("scheduler stopped: %s", vz_err_msg(&m->se));
	return NULL;
}

static void *exec_main(void *arg)
{
	vz_embedded *m = arg;
	m->xrc = vz_executor_run(m->exec, &m->stop, &m->xe);
	if (m->xrc)
		vz_error("executor stopped: %s", vz_err_msg(&m->xe));
	return NULL;
}

int vz_embedded_start(vz_embedded **out, const vz_config *cfg, vz_err *e)
{
	*out = NULL;
	vz_embedded *m = calloc(1, sizeof(*m));
	if (!m)
		return vz_err_set(e, VZ_ENOMEM, "out of memory");
	m->zctx = zmq_ctx_new();
	const char *ep = "inproc://vinz-executors";
	int rc = vz_sched_new(&m->sched, cfg, m->zctx, ep, e);
	if (!rc)
		rc = vz_executor_new(&m->exec, cfg, m->zctx, ep, e);
	if (!rc && pthread_create(&m->sthread, NULL, sched_main, m) != 0)
		rc = vz_err_set(e, VZ_EIO, "cannot start the scheduler thread");
	if (!rc && pthread_create(&m->xthread, NULL, exec_main, m) != 0) {
		m->stop = 1;
		pthread_join(m->sthread, NULL);
		rc = vz_err_set(e, VZ_EIO, "cannot start the executor thread");
	}
	if (rc) {
		vz_executor_free(m->exec);
		vz_sched_free(m->sched);
		zmq_ctx_term(m->zctx);
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

int vz_embedded_failed(vz_embedded *m)
{
	return m->src || m->xrc;
}

void vz_embedded_stop(vz_embedded *m)
{
	if (!m)
		return;
	m->stop = 2; /* the executor hands running builds back at once instead of draining them */
	pthread_join(m->xthread, NULL);
	pthread_join(m->sthread, NULL);
	vz_executor_free(m->exec);
	vz_sched_free(m->sched);
	zmq_ctx_term(m->zctx);
	free(m);
}

static int run(int argc, char **argv)
{
	const char *config = NULL;
	int ex = vz_cli_daemon_args(&vz_cmd_up, argc, argv, NULL, &config, NULL);
	if (ex >= 0)
		return ex;
	vz_config *cfg = vz_cli_daemon_start(config, "vinz-up", 0, &ex);
	if (!cfg)
		return ex;
	vz_embedded *m = NULL;
	vz_err e = { 0 };
	if (vz_embedded_start(&m, cfg, &e)) {
		fprintf(stderr, "vinz up: %s\n", vz_err_msg(&e));
		ex = VZ_EXIT_FAIL;
	} else {
		while (!vz_cli_stop && !vz_embedded_failed(m))
			usleep(100000);
		ex = vz_embedded_failed(m) ? VZ_EXIT_FAIL : VZ_EXIT_OK;
		vz_embedded_stop(m);
	}
	vz_cli_daemon_end(cfg);
	return ex;
}

const vz_cmd vz_cmd_up = {
	"up", "run scheduler and executor in one process (the embedded default)",
	"usage: vinz up [--config FILE]\n\n"
	"Runs the scheduler and one executor in this process, connected over inproc ZeroMQ, with the\n"
	"sqlite store in the config's state_dir and the nodes the config lists (a local node needs no\n"
	"SSH). Stops on SIGINT/SIGTERM; queued and running work resumes on the next start.\n\n"
	"  -c, --config FILE   site configuration (default $VINZ_CONFIG, then ./vinz.yaml)\n"
	"\nexit: 0 stopped by a signal, 1 runtime failure, 2 usage, 3 invalid configuration\n",
	run,
};
