/* vinz scheduler: the scheduler alone, for executors on other hosts (over tcp). */
#include <stdio.h>
#include <zmq.h>

#include "vz_cli.h"
#include "vz_log.h"
#include "vz_sched.h"

static int run(int argc, char **argv)
{
	const char *config = NULL, *listen = NULL;
	int ex = vz_cli_daemon_args(&vz_cmd_scheduler, argc, argv, "listen", &config, &listen);
	if (ex >= 0)
		return ex;
	vz_config *cfg = vz_cli_daemon_start(config, "vinz-scheduler", 0, &ex);
	if (!cfg)
		return ex;
	void *zctx = zmq_ctx_new();
	vz_sched *s = NULL;
	vz_err e = { 0 };
	ex = VZ_EXIT_OK;
	if (vz_sched_new(&s, cfg, zctx, listen, &e) || vz_sched_run(s, &vz_cli_stop, &e)) {
		fprintf(stderr, "vinz scheduler: %s\n", vz_err_msg(&e));
		ex = VZ_EXIT_FAIL;
	}
	vz_sched_free(s);
	zmq_ctx_term(zctx);
	vz_cli_daemon_end(cfg);
	return ex;
}

const vz_cmd vz_cmd_scheduler = {
	"scheduler", "run the scheduler alone (executors connect over tcp)",
	"usage: vinz scheduler [--config FILE] [--listen ENDPOINT]\n\n"
	"Runs the scheduler: binds the executor endpoint (scheduler.listen, e.g. tcp://0.0.0.0:7400) and\n"
	"the admin endpoint (scheduler.admin), keeps queues and builds in STATE_DIR/vinz.db, and resumes\n"
	"them after a restart.\n\n"
	"  -c, --config FILE        site configuration (default $VINZ_CONFIG, then ./vinz.yaml)\n"
	"  -l, --listen ENDPOINT    override scheduler.listen\n"
	"\nexit: 0 stopped by a signal, 1 runtime failure, 2 usage, 3 invalid configuration\n",
	run,
};
