/* vinz playbook: runs playbooks the way ansible-playbook does, with the native engine
 * (executor/vz_playbook.h): Ansible inventories, -e extra vars, ansible-playbook's exit codes,
 * Ansible-style text or the json stdout callback's document. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vz_cli.h"
#include "vz_inventory.h"
#include "vz_node.h"
#include "vz_playbook.h"
#include "vz_playbook_int.h"
#include "vz_util.h"
#include "vz_yaml.h"

extern const vz_cmd vz_cmd_playbook;

/* ansible-playbook's exit codes (ansible-core 2.14, checked against it: docs/playbooks.md) */
enum { PB_EXIT_OK = 0, PB_EXIT_ERROR = 1, PB_EXIT_FAILED = 2, PB_EXIT_UNREACHABLE = 4, PB_EXIT_PARSE = 4,
       PB_EXIT_USAGE = 2 };

/* -e VALUE: @FILE (YAML or JSON), a YAML/JSON mapping, or key=value pairs. */
static int add_extra(json_t *extra, const char *arg)
{
	vz_err e = { 0 };
	if (!*arg) {
		fprintf(stderr, "ERROR! Empty extra vars\n");
		return PB_EXIT_USAGE;
	}
	if (arg[0] == '@') {
		vz_ynode *root = NULL;
		struct stat st;
		if (stat(arg + 1, &st) != 0) {
			fprintf(stderr, "ERROR! the file_name '%s' does not exist, or is not readable\n", arg + 1);
			return PB_EXIT_ERROR;
		}
		if (vz_yaml_load_file(&root, arg + 1, &e) != 0) {
			fprintf(stderr, "ERROR! %s\n", vz_err_msg(&e));
			return PB_EXIT_PARSE;
		}
		if (root && root->kind != VZ_Y_MAP) {
			fprintf(stderr, "ERROR! Invalid extra vars data supplied. '%s' could not be made into a dictionary\n", arg);
			vz_ynode_free(root);
			return PB_EXIT_PARSE;
		}
		json_t *j = root ? vz_ynode_to_json(root) : json_object();
		json_object_update(extra, j);
		json_decref(j);
		vz_ynode_free(root);
		return 0;
	}
	if (arg[0] == '{' || arg[0] == '[') {
		vz_ynode *root = NULL;
		if (vz_yaml_parse(&root, arg, strlen(arg), "extra vars", &e) != 0 || !root || root->kind != VZ_Y_MAP) {
			fprintf(stderr, "ERROR! Invalid extra vars data supplied. '%s' could not be made into a dictionary%s%s\n",
				arg, e.code ? ": " : "", e.code ? vz_err_msg(&e) : "");
			vz_ynode_free(root);
			return PB_EXIT_PARSE;
		}
		json_t *j = vz_ynode_to_json(root);
		json_object_update(extra, j);
		json_decref(j);
		vz_ynode_free(root);
		return 0;
	}
	json_t *kv = json_object();
	if (vz_pb_parse_kv(kv, arg, NULL, 0, &e) != 0) {
		fprintf(stderr, "ERROR! Invalid extra vars data supplied. '%s' could not be made into a dictionary\n", arg);
		json_decref(kv);
		return PB_EXIT_PARSE;
	}
	json_object_update(extra, kv);
	json_decref(kv);
	return 0;
}

/* -i: a file, or "host1,host2," as Ansible's host list. */
static vz_inventory *load_inventory(const char *arg, int *ex)
{
	vz_inventory *inv = NULL;
	vz_err e = { 0 };
	struct stat st;
	*ex = 0;
	if (!arg || (stat(arg, &st) != 0 && strchr(arg, ','))) {
		inv = vz_inventory_new();
		if (arg) {
			char *copy = strdup(arg), *save = NULL;
			for (char *h = copy ? strtok_r(copy, ",", &save) : NULL; h; h = strtok_r(NULL, ",", &save))
				if (*h && vz_inventory_add_host(inv, h, NULL, NULL, &e) != 0)
					fprintf(stderr, "[WARNING]: %s\n", vz_err_msg(&e));
			free(copy);
		}
		return inv;
	}
	if (stat(arg, &st) != 0) {
		fprintf(stderr, "[WARNING]: Unable to parse %s as an inventory source\n"
				"[WARNING]: No inventory was parsed, only implicit localhost is available\n", arg);
		return vz_inventory_new();
	}
	if (vz_inventory_load(&inv, arg, &e) != 0) {
		fprintf(stderr, "ERROR! %s\n", vz_err_msg(&e));
		*ex = PB_EXIT_PARSE;
		return NULL;
	}
	return inv;
}

static int run(int argc, char **argv)
{
	const char *inv_arg = NULL, *known_hosts = NULL, *key = NULL, *user = NULL, *log_dir = NULL;
	int json = 0, untrusted = 0, syntax = 0, ex = PB_EXIT_OK;
	int64_t timeout_s = 0, forks = 16;
	json_t *extra = json_object();
	vz_inventory *inv = NULL;
	static const struct option opts[] = {
		{ "inventory", required_argument, NULL, 'i' },  { "extra-vars", required_argument, NULL, 'e' },
		{ "json", no_argument, NULL, 'j' },              { "known-hosts", required_argument, NULL, 'K' },
		{ "private-key", required_argument, NULL, 'k' }, { "key-file", required_argument, NULL, 'k' },
		{ "user", required_argument, NULL, 'u' },        { "log-dir", required_argument, NULL, 'L' },
		{ "timeout", required_argument, NULL, 'T' },     { "untrusted", no_argument, NULL, 'U' },
		{ "forks", required_argument, NULL, 'f' },       { "syntax-check", no_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },           { "tags", required_argument, NULL, 't' },
		{ "skip-tags", required_argument, NULL, 'x' },   { NULL, 0, NULL, 0 },
	};
	int o;
	optind = 1;
	const char *tags[65] = { NULL }, *skip[65] = { NULL };
	size_t ntags = 0, nskip = 0;
	char *tagbuf[128];
	size_t ntagbuf = 0;
	while ((o = getopt_long(argc, argv, "i:e:u:f:vt:", opts, NULL)) != -1) {
		switch (o) {
		case 'i': inv_arg = optarg; break;
		case 'e':
			if ((ex = add_extra(extra, optarg)) != 0)
				goto out;
			break;
		case 'j': json = 1; break;
		case 'K': known_hosts = optarg; break;
		case 'k': key = optarg; break;
		case 'u': user = optarg; break;
		case 'L': log_dir = optarg; break;
		case 'U': untrusted = 1; break;
		case 'S': syntax = 1; break;
		case 'v': break;
		case 't':
		case 'x': {
			/* comma-separated, repeatable, as ansible-playbook's --tags/--skip-tags */
			char *copy = strdup(optarg), *save = NULL;
			if (!copy || ntagbuf >= 128)
				break;
			tagbuf[ntagbuf++] = copy;
			for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (o == 't' && ntags < 64)
					tags[ntags++] = t;
				else if (o == 'x' && nskip < 64)
					skip[nskip++] = t;
			}
			break;
		}
		case 'T':
			if (vz_parse_i64(optarg, 1, 86400 * 7, &timeout_s)) {
				fprintf(stderr, "vinz playbook: --timeout takes seconds (1..604800), not '%s'\n", optarg);
				ex = PB_EXIT_USAGE;
				goto out;
			}
			break;
		case 'f':
			if (vz_parse_i64(optarg, 1, 1024, &forks)) {
				fprintf(stderr, "vinz playbook: error: The number of processes (--forks) must be >= 1\n");
				ex = PB_EXIT_USAGE;
				goto out;
			}
			break;
		default:
			vz_cli_usage(&vz_cmd_playbook, 1);
			ex = PB_EXIT_USAGE;
			goto out;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "vinz playbook: error: the following arguments are required: playbook\n");
		vz_cli_usage(&vz_cmd_playbook, 1);
		ex = PB_EXIT_USAGE;
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0 || !S_ISREG(st.st_mode)) {
			fprintf(stderr, "ERROR! the playbook: %s could not be found\n", argv[i]);
			ex = PB_EXIT_ERROR;
			goto out;
		}
	}
	if (syntax) {
		for (int i = optind; i < argc; i++) {
			vz_playbook *pb = NULL;
			vz_err e = { 0 };
			if (vz_playbook_load(&pb, argv[i], &e) != 0) {
				fprintf(stderr, "ERROR! %s\n", vz_err_msg(&e));
				ex = PB_EXIT_PARSE;
				goto out;
			}
			vz_playbook_free(pb);
			printf("\nplaybook: %s\n", argv[i]);
		}
		goto out;
	}
	if (!(inv = load_inventory(inv_arg, &ex)))
		goto out;
	vz_err e = { 0 };
	if (vz_node_global_init(&e) != 0) {
		fprintf(stderr, "ERROR! %s\n", vz_err_msg(&e));
		ex = PB_EXIT_ERROR;
		goto out;
	}
	vz_cli_signals();
	vz_playbook_opts po = {
		.playbooks = (const char *const *)(argv + optind),
		.nplaybooks = (size_t)(argc - optind),
		.inventory = inv,
		.extra_vars = extra,
		.known_hosts = known_hosts ? known_hosts : getenv("VINZ_KNOWN_HOSTS"),
		.private_key = key,
		.default_user = user,
		.untrusted = untrusted,
		.log_dir = log_dir,
		.work_dir = log_dir,
		.out = json ? NULL : stdout,
		.want_json = json,
		.timeout_ms = (int)(timeout_s * 1000),
		.cancel = (volatile int *)&vz_cli_stop,
		.forks = (int)forks,
		.tags = ntags ? tags : NULL,
		.skip_tags = nskip ? skip : NULL,
	};
	vz_playbook_result res;
	int rc = vz_playbook_run(&res, &po, &e);
	if (rc)
		fprintf(stderr, "ERROR! %s\n", vz_err_msg(&e));
	if (json && res.json && !rc) {
		json_dumpf(res.json, stdout, JSON_INDENT(4));
		fputc('\n', stdout);
	}
	json_decref(res.json);
	ex = res.exit_code;
	vz_node_global_cleanup();
out:
	for (size_t i = 0; i < ntagbuf; i++)
		free(tagbuf[i]);
	vz_inventory_free(inv);
	json_decref(extra);
	return ex;
}

const vz_cmd vz_cmd_playbook = {
	"playbook", "run Ansible playbooks natively, as ansible-playbook would",
	"usage: vinz playbook -i INVENTORY [-e KEY=VALUE|@FILE|JSON]... [--json] [--known-hosts FILE]\n"
	"                     [--private-key FILE] [-u USER] [--log-dir DIR] [--timeout SECONDS]\n"
	"                     [--untrusted] [--forks N] [--tags TAGS] [--skip-tags TAGS]\n"
	"                     [--syntax-check] PLAYBOOK...\n\n"
	"Runs the playbooks with vinz's native engine over one SSH session per host, hosts in parallel\n"
	"and tasks in Ansible's linear order. The language supported and the differences from Ansible\n"
	"are in docs/playbooks.md.\n\n"
	"  -i, --inventory INV    an Ansible INI or YAML inventory file, or \"host1,host2,\"\n"
	"  -e, --extra-vars VARS  key=value pairs, a YAML/JSON mapping, or @FILE; highest precedence\n"
	"      --json             print the document of Ansible's json stdout callback instead of text\n"
	"      --known-hosts FILE host keys to check against (default $VINZ_KNOWN_HOSTS, else\n"
	"                         ~/.ssh/known_hosts); an unknown or changed key makes the host unreachable\n"
	"      --private-key FILE key for hosts without ansible_ssh_private_key_file\n"
	"  -u, --user USER        login user for hosts without ansible_user\n"
	"      --log-dir DIR      also write job-output.txt (streamed) and job-output.json there\n"
	"      --timeout SECONDS  stop the run (tasks killed on the nodes) after this long\n"
	"      --untrusted        refuse localhost, the local connection and executor-side files outside\n"
	"                         the playbook's directory, as for an untrusted project's playbook\n"
	"  -f, --forks N          hosts run at once (default 16)\n"
	"  -t, --tags TAGS        run only tasks tagged with one of TAGS (comma-separated; also\n"
	"                         always, tagged, untagged, all), as ansible-playbook\n"
	"      --skip-tags TAGS   skip tasks tagged with one of TAGS\n"
	"      --syntax-check     load the playbooks (modules, keywords, imports) and stop\n"
	"\nexit (as ansible-playbook 2.14): 0 ok, 1 error (e.g. a missing playbook file), 2 a host failed\n"
	"or bad usage, 4 a host was unreachable or a playbook could not be parsed\n",
	run,
};
