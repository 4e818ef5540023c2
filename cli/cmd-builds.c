/* vinz builds: build history from a running scheduler. */
#include <getopt.h>
#include <stdio.h>

#include "vz_cli.h"
#include "vz_util.h"

static int run(int argc, char **argv)
{
	const char *config = NULL, *admin = NULL, *project = NULL, *pipeline = NULL, *change = NULL, *job = NULL;
	int json = 0;
	int64_t limit = 50;
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "admin", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },          { "project", required_argument, NULL, 'P' },
		{ "pipeline", required_argument, NULL, 'p' }, { "change", required_argument, NULL, 'C' },
		{ "job", required_argument, NULL, 'J' },     { "limit", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	while ((o = getopt_long(argc, argv, "c:a:jP:p:C:J:n:", opts, NULL)) != -1) {
		switch (o) {
		case 'c': config = optarg; break;
		case 'a': admin = optarg; break;
		case 'j': json = 1; break;
		case 'P': project = optarg; break;
		case 'p': pipeline = optarg; break;
		case 'C': change = optarg; break;
		case 'J': job = optarg; break;
		case 'n':
			if (vz_parse_i64(optarg, 1, 100000, &limit)) {
				fprintf(stderr, "vinz builds: --limit takes a number from 1 to 100000, not '%s'\n", optarg);
				return VZ_EXIT_USAGE;
			}
			break;
		default: vz_cli_usage(&vz_cmd_builds, 1); return VZ_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		vz_cli_usage(&vz_cmd_builds, 1);
		return VZ_EXIT_USAGE;
	}
	json_t *args = json_pack("{s:I}", "limit", (json_int_t)limit);
	if (project) json_object_set_new(args, "project", json_string(project));
	if (pipeline) json_object_set_new(args, "pipeline", json_string(pipeline));
	if (change) json_object_set_new(args, "change", json_string(change));
	if (job) json_object_set_new(args, "job", json_string(job));
	json_t *data = NULL;
	int ex = vz_cli_admin(config, admin, "builds", args, &data);
	json_decref(args);
	if (ex)
		return ex;
	if (json) {
		json_dumpf(data, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(data);
		return VZ_EXIT_OK;
	}
	printf("%-36s %-8s %-16s %-8s %-20s %-12s %s\n", "UUID", "PIPELINE", "PROJECT", "CHANGE", "JOB", "RESULT", "DURATION");
	size_t i;
	json_t *b;
	json_array_foreach(data, i, b) {
		const char *res = json_string_value(json_object_get(b, "result"));
		json_t *d = json_object_get(b, "duration");
		char dur[32] = "";
		if (json_is_number(d))
			snprintf(dur, sizeof(dur), "%.1fs", json_number_value(d));
		printf("%-36s %-8s %-16s %-8s %-20s %-12s %s\n", json_string_value(json_object_get(b, "uuid")),
		       json_string_value(json_object_get(b, "pipeline")), json_string_value(json_object_get(b, "project")),
		       json_string_value(json_object_get(b, "change")), json_string_value(json_object_get(b, "job")),
		       res ? res : json_string_value(json_object_get(b, "state")), dur);
	}
	json_decref(data);
	return VZ_EXIT_OK;
}

const vz_cmd vz_cmd_builds = {
	"builds", "list builds, newest first",
	"usage: vinz builds [--json] [--project P] [--pipeline P] [--change ID] [--job J] [--limit N]\n"
	"                   [--config FILE | --admin ENDPOINT]\n\n"
	"Lists builds newest first. --json prints, per build: uuid, pipeline, project, change, changes\n"
	"(the changes the build tested: the items ahead of it and its own), ref, commit, job, attempt,\n"
	"result, final (false for an attempt that was retried), voting, node, executor, start_time,\n"
	"end_time (ISO 8601 UTC), duration (s), log_url (where job-output.txt is), message.\n\n"
	"  -j, --json            machine-readable output\n"
	"  -P, --project NAME    only this project\n"
	"  -p, --pipeline NAME   only this pipeline\n"
	"  -C, --change ID       only this change\n"
	"  -J, --job NAME        only this job\n"
	"  -n, --limit N         at most N builds (default 50)\n"
	"  -c, --config FILE     site configuration, to find the admin endpoint\n"
	"  -a, --admin ENDPOINT  the scheduler's admin endpoint, instead of --config\n"
	"\nexit: 0, 2 usage, 3 invalid configuration, 4 no scheduler answered\n",
	run,
};
