/* vinz status: pipelines, their items and job states on a running scheduler. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "vz_cli.h"

static int run(int argc, char **argv)
{
	const char *config = NULL, *admin = NULL;
	int json = 0;
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
					      { "admin", required_argument, NULL, 'a' },
					      { "json", no_argument, NULL, 'j' },
					      { NULL, 0, NULL, 0 } };
	int o;
	while ((o = getopt_long(argc, argv, "c:a:j", opts, NULL)) != -1) {
		switch (o) {
		case 'c': config = optarg; break;
		case 'a': admin = optarg; break;
		case 'j': json = 1; break;
		default: vz_cli_usage(&vz_cmd_status, 1); return VZ_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		vz_cli_usage(&vz_cmd_status, 1);
		return VZ_EXIT_USAGE;
	}
	json_t *data = NULL;
	int ex = vz_cli_admin(config, admin, "status", NULL, &data);
	if (ex)
		return ex;
	if (json) {
		json_dumpf(data, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		fputc('\n', stdout);
		json_decref(data);
		return VZ_EXIT_OK;
	}
	size_t i, j, k;
	json_t *pl, *it, *jb;
	json_array_foreach(json_object_get(data, "pipelines"), i, pl) {
		json_t *items = json_object_get(pl, "items");
		printf("%s (%s): %zu items\n", json_string_value(json_object_get(pl, "name")),
		       json_string_value(json_object_get(pl, "manager")), json_array_size(items));
		json_array_foreach(items, j, it) {
			printf("  %s change %s (%.12s)\n", json_string_value(json_object_get(it, "project")),
			       json_string_value(json_object_get(it, "change")), json_string_value(json_object_get(it, "commit")));
			json_array_foreach(json_object_get(it, "jobs"), k, jb) {
				const char *res = json_string_value(json_object_get(jb, "result"));
				printf("    %-24s %-10s attempt %lld %s\n", json_string_value(json_object_get(jb, "job")),
				       res ? res : json_string_value(json_object_get(jb, "state")),
				       json_integer_value(json_object_get(jb, "attempt")),
				       json_string_value(json_object_get(jb, "node")) ? json_string_value(json_object_get(jb, "node")) : "");
			}
		}
	}
	json_t *ex_list = json_object_get(data, "executors");
	printf("executors: %zu\n", json_array_size(ex_list));
	json_array_foreach(ex_list, i, it)
		printf("  %s %s capacity %lld free %lld\n", json_string_value(json_object_get(it, "name")),
		       json_is_true(json_object_get(it, "connected")) ? "connected" : "waiting",
		       json_integer_value(json_object_get(it, "capacity")), json_integer_value(json_object_get(it, "free")));
	json_decref(data);
	return VZ_EXIT_OK;
}

const vz_cmd vz_cmd_status = {
	"status", "show pipelines, queue items and job states",
	"usage: vinz status [--json] [--config FILE | --admin ENDPOINT]\n\n"
	"Shows each pipeline with its active items (project, change, commit tested) and the state of\n"
	"each item's jobs, then the executors the scheduler knows.\n\n"
	"  -j, --json            machine-readable output\n"
	"  -c, --config FILE     site configuration, to find the admin endpoint\n"
	"  -a, --admin ENDPOINT  the scheduler's admin endpoint, instead of --config\n"
	"\nexit: 0, 2 usage, 3 invalid configuration, 4 no scheduler answered\n",
	run,
};
