/* vinz executor: an executor process that connects to a scheduler; with --pause, --resume or
 * --status it talks to the running executor of the same configuration instead. */
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "vz_admin.h"
#include "vz_cli.h"
#include "vz_executor.h"
#include "vz_log.h"
#include "vz_util.h"

/* Sends op to the running executor's control socket and prints its state. */
static int control(const char *config, const char *op)
{
	vz_config *cfg = vz_cli_load_config(config);
	if (!cfg)
		return VZ_EXIT_CONFIG;
	char *ep = vz_executor_control_endpoint(cfg);
	json_t *d = NULL;
	vz_err e = { 0 };
	int ex = VZ_EXIT_OK;
	int rc = vz_admin_call(NULL, ep, op, NULL, &d, 3000, &e);
	if (rc == VZ_ETIMEOUT) {
		fprintf(stderr, "vinz executor --%s: no executor answered at %s within 3 s; is `vinz executor --config %s` "
				"running with this configuration?\n", op, ep, config ? config : "FILE");
		ex = VZ_EXIT_UNREACHABLE;
	} else if (rc) {
		fprintf(stderr, "vinz executor --%s: %s\n", op, vz_err_msg(&e));
		ex = VZ_EXIT_FAIL;
	} else {
		printf("executor %s: %s, %lld running, %lld free slots%s%s\n",
		       json_string_value(json_object_get(d, "executor")) ? json_string_value(json_object_get(d, "executor")) : "?",
		       json_is_true(json_object_get(d, "paused")) ? "paused" : "taking builds",
		       (long long)json_integer_value(json_object_get(d, "running")),
		       (long long)json_integer_value(json_object_get(d, "free")),
		       json_is_true(json_object_get(d, "stopping")) ? ", stopping" : "",
		       json_is_true(json_object_get(d, "governed")) ? ", held back by its sensors" : "");
	}
	json_decref(d);
	free(ep);
	vz_config_free(cfg);
	return ex;
}

static int run(int argc, char **argv)
{
	const char *config = NULL, *sched = NULL, *op = NULL;
	/* --pause / --resume / --status are taken out before the daemon's own options */
	char *rest[64];
	int n = 0;
	for (int i = 0; i < argc && n < 63; i++) {
		if (i > 0 && (strcmp(argv[i], "--pause") == 0 || strcmp(argv[i], "--resume") == 0 ||
			      strcmp(argv[i], "--status") == 0)) {
			if (op) {
				fprintf(stderr, "vinz executor: give one of --pause, --resume, --status\n");
				return VZ_EXIT_USAGE;
			}
			op = argv[i] + 2;
			continue;
		}
		rest[n++] = argv[i];
	}
	if (n == 63) {
		vz_cli_usage(&vz_cmd_executor, 1);
		return VZ_EXIT_USAGE;
	}
	rest[n] = NULL;
	int ex = vz_cli_daemon_args(&vz_cmd_executor, n, rest, "scheduler", &config, &sched);
	if (ex >= 0)
		return ex;
	if (op)
		return control(config, op);
	vz_config *cfg = vz_cli_daemon_start(config, "vinz-executor", 1, &ex);
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
	"usage: vinz executor [--config FILE] [--scheduler ENDPOINT]\n"
	"       vinz executor [--config FILE] --pause | --resume | --status\n\n"
	"Connects to the scheduler (executor.scheduler, default scheduler.listen), takes up to\n"
	"executor.capacity builds at once, runs them on the nodes named in each build request, and\n"
	"delivers every result until the scheduler acknowledges it (docs/executor.md).\n"
	"The first SIGTERM/SIGINT stops taking builds and lets the running ones finish; a second one\n"
	"cancels them (their cleanup-run playbooks still run) and hands them back to the scheduler,\n"
	"which runs them again elsewhere without counting an attempt.\n\n"
	"  -c, --config FILE         site configuration (default $VINZ_CONFIG, then ./vinz.yaml)\n"
	"  -s, --scheduler ENDPOINT  override executor.scheduler\n"
	"      --pause               tell the running executor of this configuration to take no new\n"
	"                            builds (running ones go on), through WORK_DIR/control.sock\n"
	"      --resume              tell it to take builds again\n"
	"      --status              print its state\n"
	"\nexit: 0 stopped by a signal (or the executor answered), 1 runtime failure or refused by the\n"
	"scheduler (e.g. protocol version mismatch), 2 usage, 3 invalid configuration, 4 no executor\n"
	"answered --pause/--resume/--status\n",
	run,
};
