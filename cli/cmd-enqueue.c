/* vinz enqueue: put a change into a pipeline of a running scheduler. */
#include <getopt.h>
#include <stdio.h>

#include "vz_cli.h"

static int run(int argc, char **argv)
{
	const char *config = NULL, *admin = NULL, *pipeline = NULL, *project = NULL, *ref = NULL, *id = NULL,
		   *branch = NULL;
	int json = 0;
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },   { "admin", required_argument, NULL, 'a' },
		{ "pipeline", required_argument, NULL, 'p' }, { "project", required_argument, NULL, 'P' },
		{ "ref", required_argument, NULL, 'r' },      { "id", required_argument, NULL, 'i' },
		{ "branch", required_argument, NULL, 'b' },   { "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	while ((o = getopt_long(argc, argv, "c:a:p:P:r:i:b:j", opts, NULL)) != -1) {
		switch (o) {
		case 'c': config = optarg; break;
		case 'a': admin = optarg; break;
		case 'p': pipeline = optarg; break;
		case 'P': project = optarg; break;
		case 'r': ref = optarg; break;
		case 'i': id = optarg; break;
		case 'b': branch = optarg; break;
		case 'j': json = 1; break;
		default: vz_cli_usage(&vz_cmd_enqueue, 1); return VZ_EXIT_USAGE;
		}
	}
	if (optind != argc || !pipeline || !project || !ref || !id) {
		fprintf(stderr, "vinz enqueue: --pipeline, --project, --ref and --id are required\n");
		vz_cli_usage(&vz_cmd_enqueue, 1);
		return VZ_EXIT_USAGE;
	}
	json_t *args = json_pack("{s:s,s:s,s:s,s:s}", "pipeline", pipeline, "project", project, "ref", ref, "id", id);
	if (branch)
		json_object_set_new(args, "branch", json_string(branch));
	json_t *data = NULL;
	int ex = vz_cli_admin(config, admin, "enqueue", args, &data);
	json_decref(args);
	if (ex)
		return ex;
	if (json) {
		json_dumpf(data, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		fputc('\n', stdout);
	} else if (json_is_true(json_object_get(data, "already_enqueued"))) {
		printf("change %s is already in %s (item %s)\n", id, pipeline, json_string_value(json_object_get(data, "item")));
	} else {
		printf("enqueued change %s of %s into %s at %.12s: %zu jobs (item %s)\n", id, project, pipeline,
		       json_string_value(json_object_get(data, "commit")), json_array_size(json_object_get(data, "builds")),
		       json_string_value(json_object_get(data, "item")));
	}
	json_decref(data);
	return VZ_EXIT_OK;
}

const vz_cmd vz_cmd_enqueue = {
	"enqueue", "put a change into a pipeline",
	"usage: vinz enqueue --pipeline NAME --project NAME --ref REF --id ID [--branch B] [--json]\n"
	"                    [--config FILE | --admin ENDPOINT]\n\n"
	"Enqueues a change of the plain-git driver: REF (a ref such as refs/changes/42, a branch, or a\n"
	"commit id) in the project's repository, known to users as ID. The ref is resolved to a commit\n"
	"now, so every attempt of every build tests the same commit. Enqueueing the same change at the\n"
	"same commit again changes nothing.\n\n"
	"  -p, --pipeline NAME   pipeline (e.g. check)\n"
	"  -P, --project NAME    project as named in the config\n"
	"  -r, --ref REF         the change's ref or commit\n"
	"  -i, --id ID           the change's id (shown in status and builds)\n"
	"  -b, --branch B        target branch (default: the project's default_branch)\n"
	"  -j, --json            print the scheduler's reply as JSON\n"
	"  -c, --config FILE     site configuration, to find the admin endpoint\n"
	"  -a, --admin ENDPOINT  the scheduler's admin endpoint, instead of --config\n"
	"\nexit: 0 enqueued, 1 refused (message says why), 2 usage, 3 invalid configuration,\n"
	"4 no scheduler answered\n",
	run,
};
