/* vinz logs: a build's job-output.txt from a running scheduler, followed live with -f. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "vz_admin.h"
#include "vz_cli.h"
#include "vz_util.h"

#define FOLLOW_WAIT_MS 1000 /* how long the scheduler holds a follow request with nothing new */

static int run(int argc, char **argv)
{
	const char *config = NULL, *admin = NULL;
	int follow = 0;
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
					      { "admin", required_argument, NULL, 'a' },
					      { "follow", no_argument, NULL, 'f' },
					      { NULL, 0, NULL, 0 } };
	int o;
	while ((o = getopt_long(argc, argv, "c:a:f", opts, NULL)) != -1) {
		switch (o) {
		case 'c': config = optarg; break;
		case 'a': admin = optarg; break;
		case 'f': follow = 1; break;
		default: vz_cli_usage(&vz_cmd_logs, 1); return VZ_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		vz_cli_usage(&vz_cmd_logs, 1);
		return VZ_EXIT_USAGE;
	}
	vz_config *c = NULL;
	if (!admin) {
		if (!(c = vz_cli_load_config(config)))
			return VZ_EXIT_CONFIG;
		admin = c->scheduler.admin;
	}
	vz_cli_signals();
	void *zctx = zmq_ctx_new();
	char id[64];
	vz_strlcpy(id, argv[optind], sizeof(id));
	long long offset = 0;
	int ex = VZ_EXIT_OK;
	while (!vz_cli_stop) {
		json_t *args = json_pack("{s:s,s:I,s:i}", "build", id, "offset", (json_int_t)offset, "wait",
					 follow ? FOLLOW_WAIT_MS : 0);
		json_t *d = NULL;
		vz_err e = { 0 };
		int rc = vz_admin_call(zctx, admin, "log", args, &d, FOLLOW_WAIT_MS + 10000, &e);
		json_decref(args);
		if (rc) {
			fprintf(stderr, "vinz logs: %s\n", vz_err_msg(&e));
			ex = rc == VZ_ETIMEOUT ? VZ_EXIT_UNREACHABLE : VZ_EXIT_FAIL;
			break;
		}
		/* the first answer names the build in full when a prefix was given */
		vz_strlcpy(id, json_string_value(json_object_get(d, "build")), sizeof(id));
		json_t *data = json_object_get(d, "data");
		if (json_string_length(data)) {
			fwrite(json_string_value(data), 1, json_string_length(data), stdout);
			fflush(stdout);
		}
		offset = json_integer_value(json_object_get(d, "next"));
		int complete = json_is_true(json_object_get(d, "complete"));
		const char *result = json_string_value(json_object_get(d, "result"));
		const char *again = json_string_value(json_object_get(d, "retried_as"));
		if (complete && follow && again) {
			fprintf(stderr, "vinz logs: build %s ended %s; following its next attempt %s\n", id,
				result ? result : "?", again);
			vz_strlcpy(id, again, sizeof(id));
			offset = 0;
		} else if (complete) {
			if (follow) {
				fprintf(stderr, "vinz logs: build %s: %s\n", id, result ? result : "no result");
				ex = result && strcmp(result, "SUCCESS") == 0 ? VZ_EXIT_OK : VZ_EXIT_FAIL;
			}
			json_decref(d);
			break;
		} else if (!follow && offset >= json_integer_value(json_object_get(d, "size"))) {
			json_decref(d);
			break;
		}
		json_decref(d);
	}
	zmq_ctx_term(zctx);
	vz_config_free(c);
	return ex;
}

const vz_cmd vz_cmd_logs = {
	"logs", "print a build's log, or follow it while it runs",
	"usage: vinz logs [-f] BUILD [--config FILE | --admin ENDPOINT]\n\n"
	"Prints the job-output.txt of BUILD (its uuid, or a unique prefix of at least 4 characters, as\n"
	"`vinz builds` shows them) as the scheduler has it. With -f it keeps printing output as the\n"
	"build writes it, until the build ends: lines show up within about 100 ms of being written on\n"
	"the node. When the build is retried, -f follows the next attempt. The command talks only to\n"
	"the scheduler's admin endpoint, so it works from any host that can reach it.\n\n"
	"  -f, --follow          follow a running build until it ends\n"
	"  -c, --config FILE     site configuration, to find the admin endpoint\n"
	"  -a, --admin ENDPOINT  the scheduler's admin endpoint, instead of --config\n"
	"\nexit: 0 (with -f: the build succeeded), 1 no such build (with -f: the build did not succeed),\n"
	"2 usage, 3 invalid configuration, 4 no scheduler answered\n",
	run,
};
