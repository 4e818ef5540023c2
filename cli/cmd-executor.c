/* vinz executor: an executor process that connects to a scheduler. */
#include <stdio.h>
#include <zmq.h>

#include "vz_cli.h"
#include "vz_executor.h"
#include "vz_log.h"

static int run(int argc, char **argv)
{
	const char *config = NULL, *sched = NULL;
	int ex = vz_cli_daemon_args(&vz_cmd_executor, argc, argv, "scheduler", &config, &sched);
	if (ex >= 0)
		return ex;
	vz_config *cfg = vz_cli_daemon_start(config, "vinz-executor", &ex);
	if (!cfg)
		return ex;
	void *zctx = zmq_ctx_new();
	vz_executor *x = NULL;
	vz_err e = { 0 };
	ex = VZ_EXIT_OK;
	if (vz_executor_new(&x, cfg, zctx, sched, &e) || vz_executor_run(x, &vz_cli_stop, &e)) {
		fprintf(stderr, "vinz executor: %s\n", vz_err_msg(&e));
		ex = VZ_EXIT_FAIL;
	}
	vz_executor_free(x);
	zmq_ctx_term(zctx);
	vz_cli_daemon_end(cfg);
	return ex;
}

const vz_cmd vz_cmd_executor = {
	"executor", "run an executor that takes builds from a scheduler",
	"usage: vinz executor [--config FILE] [--scheduler ENDPOINT]\n\n"
	"Connects to the scheduler (executor.scheduler, default scheduler.listen), takes up to\n"
	"executor.capacity builds at once, runs them on the nodes named in each build request, and\n"
	"delivers every result until the scheduler acknowledges it. On SIGINT/SIGTERM running builds\n"
	"are canceled and the scheduler re-runs them elsewhere.\n\n"
	"  -c, --config FILE         site configuration (default $VINZ_CONFIG, then ./vinz.yaml)\n"
	"  -s, --scheduler ENDPOINT  override executor.scheduler\n"
	"\nexit: 0 stopped by a signal, 1 runtime failure or refused by the scheduler (e.g. protocol\n"
	"version mismatch), 2 usage, 3 invalid configuration\n",
	run,
};
