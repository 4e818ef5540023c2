/* vinz merge: merges changes in order onto a base as the merger does for a queue, writing objects
 * but no ref and no work tree (executor/vz_merger.h). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "vz_cli.h"
#include "vz_merger.h"
#include "vz_spec.h"
#include "vz_util.h"
#include "vz_workspace.h"

static json_t *str_array(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}


/* --queue FILE: the speculative state of a whole queue (executor/vz_spec.h) from a JSON file
 * {"frozen": [{project, ref, commit}], "items": [{id, project, branch, repo, change, mode, date}]}. */
static int run_queue(const char *file, int with_config)
{
	json_error_t je;
	json_t *in = json_load_file(file, JSON_REJECT_DUPLICATES, &je), *doc = NULL;
	vz_spec_item *items = NULL;
	vz_spec_head *frozen = NULL;
	vz_spec *s = NULL;
	vz_err e = { 0 };
	int ex = 2;
	if (!in) {
		fprintf(stderr, "vinz merge: %s:%d:%d: %s\n", file, je.line, je.column, je.text);
		return 2;
	}
	json_t *ji = json_object_get(in, "items"), *jf = json_object_get(in, "frozen");
	if (!json_is_array(ji) || (jf && !json_is_array(jf))) {
		fprintf(stderr, "vinz merge: %s: \"items\" must be a list (and \"frozen\", when given, a list)\n", file);
		goto out;
	}
	size_t ni = json_array_size(ji), nf = jf ? json_array_size(jf) : 0;
	items = calloc(ni ? ni : 1, sizeof(*items));
	frozen = calloc(nf ? nf : 1, sizeof(*frozen));
	if (!items || !frozen)
		goto out;
	for (size_t i = 0; i < ni; i++) {
		json_t *o = json_array_get(ji, i);
		json_t *date = json_object_get(o, "date");
		const char *mode = json_string_value(json_object_get(o, "mode"));
		items[i] = (vz_spec_item){ json_string_value(json_object_get(o, "id")), json_string_value(json_object_get(o, "project")),
					   json_string_value(json_object_get(o, "branch")), json_string_value(json_object_get(o, "repo")),
					   json_string_value(json_object_get(o, "change")), VZ_MERGE_MERGE,
					   date ? (int64_t)json_integer_value(date) : VZ_MERGE_DEFAULT_DATE };
		if ((date && !json_is_integer(date)) || (mode && vz_merge_mode_parse(&items[i].mode, mode))) {
			fprintf(stderr, "vinz merge: %s: item %zu: bad \"mode\" or \"date\"\n", file, i);
			goto out;
		}
	}
	for (size_t i = 0; i < nf; i++) {
		json_t *o = json_array_get(jf, i);
		frozen[i] = (vz_spec_head){ json_string_value(json_object_get(o, "project")), json_string_value(json_object_get(o, "ref")),
					    json_string_value(json_object_get(o, "commit")) };
	}
	if (vz_workspace_global_init(&e) || vz_spec_build(&s, items, ni, frozen, nf, &e)) {
		fprintf(stderr, "vinz merge: %s\n", vz_err_msg(&e));
		goto out;
	}
	doc = vz_spec_to_json(s);
	ex = VZ_EXIT_OK;
	for (size_t i = 0; i < ni; i++) {
		const vz_spec_result *r = vz_spec_item_result(s, i);
		if (!r->merged) {
			ex = VZ_EXIT_FAIL;
			fprintf(stderr, "vinz merge: %s\n", r->message);
		} else if (with_config) {
			json_t *files = NULL, *ignored = NULL;
			if (vz_spec_read_config(&files, &ignored, items[i].gitdir, r->commit, 0, &e)) {
				fprintf(stderr, "vinz merge: item %s: %s\n", items[i].id, vz_err_msg(&e));
				ex = 2;
				goto out;
			}
			json_t *it = json_array_get(json_object_get(doc, "items"), i);
			json_object_set_new(it, "config", files);
			json_object_set_new(it, "config_ignored", ignored);
		}
	}
	json_object_set_new(doc, "merged", json_boolean(ex == VZ_EXIT_OK));
	json_dumpf(doc, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
out:
	json_decref(doc);
	json_decref(in);
	vz_spec_free(s);
	free(items);
	free(frozen);
	vz_workspace_global_cleanup();
	return ex;
}

static int run(int argc, char **argv)
{
	const char *repo = NULL, *mode_name = "merge", *queue = NULL;
	int json = 0, ex = VZ_EXIT_OK, with_config = 0;
	int64_t date = VZ_MERGE_DEFAULT_DATE;
	vz_merge_mode mode = VZ_MERGE_MERGE;
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' }, { "mode", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },       { "date", required_argument, NULL, 'd' },
		{ "queue", required_argument, NULL, 'q' }, { "config", no_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "r:m:jd:q:c", opts, NULL)) != -1) {
		switch (o) {
		case 'r': repo = optarg; break;
		case 'm': mode_name = optarg; break;
		case 'j': json = 1; break;
		case 'q': queue = optarg; break;
		case 'c': with_config = 1; break;
		case 'd':
			if (vz_parse_i64(optarg, 0, INT64_C(253402300799), &date)) {
				fprintf(stderr, "vinz merge: --date takes seconds since the epoch, not '%s'\n", optarg);
				return VZ_EXIT_USAGE;
			}
			break;
		default: vz_cli_usage(&vz_cmd_merge, 1); return VZ_EXIT_USAGE;
		}
	}
	if (queue) {
		if (repo || argc > optind) {
			fprintf(stderr, "vinz merge: --queue takes no --repo and no BASE/CHANGE arguments\n");
			return VZ_EXIT_USAGE;
		}
		return run_queue(queue, with_config);
	}
	if (with_config) {
		fprintf(stderr, "vinz merge: --config only goes with --queue\n");
		return VZ_EXIT_USAGE;
	}
	if (!repo || argc - optind < 2) {
		fprintf(stderr, "vinz merge: %s\n", !repo ? "--repo GITDIR is required" : "give a BASE and at least one CHANGE");
		vz_cli_usage(&vz_cmd_merge, 1);
		return VZ_EXIT_USAGE;
	}
	if (vz_merge_mode_parse(&mode, mode_name)) {
		fprintf(stderr, "vinz merge: unknown --mode '%s'; use merge, merge-resolve, cherry-pick, squash-merge or rebase\n",
			mode_name);
		return VZ_EXIT_USAGE;
	}
	const char *base = argv[optind];
	vz_err e = { 0 };
	vz_merger *m = NULL;
	json_t *doc = NULL, *results = NULL;
	char onto[41];
	if (vz_workspace_global_init(&e)) {
		fprintf(stderr, "vinz merge: %s\n", vz_err_msg(&e));
		return 2;
	}
	if (vz_merger_open(&m, repo, &e)) {
		fprintf(stderr, "vinz merge: %s; --repo takes a git directory (bare or .git)\n", vz_err_msg(&e));
		ex = 2;
		goto out;
	}
	if (json) {
		doc = json_pack("{s:s, s:s, s:s}", "repo", repo, "base", base, "mode", vz_merge_mode_name(mode));
		results = json_array();
		json_object_set_new(doc, "results", results);
	}
	vz_strlcpy(onto, base, sizeof(onto));
	const char *cur = base; /* the running result: BASE as given, then commit ids */
	for (int i = optind + 1; i < argc; i++) {
		vz_merge_result r;
		vz_merge_req req = { mode, cur, argv[i], base, date, json };
		int rc = vz_merger_apply(m, &req, &r, &e);
		if (rc) {
			fprintf(stderr, "vinz merge: %s\n", vz_err_msg(&e));
			if (doc)
				json_object_set_new(doc, "error", json_string(vz_err_msg(&e)));
			vz_merge_result_clear(&r);
			ex = 2;
			break;
		}
		if (json) {
			json_t *it = json_pack("{s:s, s:s}", "change", argv[i], "result", r.merged ? "merged" : "conflict");
			if (r.merged) {
				json_object_set_new(it, "commit", json_string(r.commit));
				json_object_set_new(it, "tree", json_string(r.tree));
			} else {
				json_object_set_new(it, "conflicts", str_array(r.conflicts, r.nconflicts));
			}
			json_object_set_new(it, "files", str_array(r.files, r.nfiles));
			if (r.note)
				json_object_set_new(it, "note", json_string(r.note));
			json_array_append_new(results, it);
		} else if (r.merged) {
			printf("merged %s %s\n", r.commit, r.tree);
		} else {
			printf("conflict %s\n", argv[i]);
		}
		if (!r.merged) {
			if (r.note)
				fprintf(stderr, "vinz merge: %s: %s\n", argv[i], r.note);
			vz_merge_result_clear(&r);
			ex = VZ_EXIT_FAIL;
			break;
		}
		vz_strlcpy(onto, r.commit, sizeof(onto));
		cur = onto;
		vz_merge_result_clear(&r);
	}
	if (doc) {
		json_object_set_new(doc, "merged", json_boolean(ex == VZ_EXIT_OK));
		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	}
out:
	json_decref(doc);
	vz_merger_free(m);
	vz_workspace_global_cleanup();
	return ex;
}

const vz_cmd vz_cmd_merge = {
	"merge", "merge changes onto a base as the gate would, without touching refs",
	"usage: vinz merge --repo GITDIR [--mode MODE] [--json] [--date EPOCH] BASE CHANGE...\n"
	"       vinz merge --queue FILE [--config]\n\n"
	"Merges each CHANGE (any commit-ish) in order onto the running result, starting at BASE, as the\n"
	"merger does for a queue. Writes objects into GITDIR but touches no ref and no work tree.\n"
	"Prints one line per change, `merged <commit> <tree>`, or `conflict <change>` and stops there.\n"
	"New commits are made by vinz <" VZ_MERGE_EMAIL "> at --date, so the same input gives the same\n"
	"commit ids anywhere (docs/merging.md).\n\n"
	"  -r, --repo GITDIR   the repository (bare, or the .git directory of a clone)\n"
	"  -m, --mode MODE     merge (default), merge-resolve, cherry-pick, squash-merge, rebase\n"
	"  -j, --json          print {repo, base, mode, merged, results: [{change, result, commit, tree,\n"
	"                      conflicts, files, note}]}; files are those the change touches (as Zuul)\n"
	"  -d, --date EPOCH    author/committer date of new commits (default 1262304000, 2010-01-01)\n"
	"  -q, --queue FILE    the speculative state of a whole queue, across projects and branches:\n"
	"                      FILE is JSON {\"frozen\": [{project, ref, commit}], \"items\": [{id, project,\n"
	"                      branch, repo, change, mode, date}]}; prints {initial, items: [{id, project,\n"
	"                      branch, merged, commit, base, files, conflicts, message, note, state}],\n"
	"                      merged}; a conflicting item is left out of the state behind it\n"
	"  -c, --config        with --queue: add each merged item's in-repo Zuul configuration\n"
	"                      (zuul.yaml, zuul.d/, .zuul.yaml, .zuul.d/) as {path: content}\n"
	"\nexit: 0 all merged, 1 a change conflicts, 2 error (bad usage, unknown commit, unreadable repo)\n",
	run,
};
