/* vz_playbook: the native playbook engine. Loads Ansible playbooks (plays, tasks, blocks, roles,
 * imports) into a tree where every task knows its file:line, and runs them over one vz_node
 * connection per host with Ansible's linear strategy, writing Ansible-style text, the shape of
 * Ansible's json stdout callback, and Zuul's job-output.txt / job-output.json.
 * docs/playbooks.md lists the language supported and the differences from Ansible. */
#ifndef VZ_PLAYBOOK_H
#define VZ_PLAYBOOK_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "vz_err.h"
#include "vz_inventory.h"
#include "vz_node.h"

typedef struct vz_playbook vz_playbook;

/* Caps against hostile playbooks. */
#define VZ_PB_MAX_INCLUDE_DEPTH 32   /* nested include/import of tasks and roles */
#define VZ_PB_MAX_TASKS 100000       /* tasks in one playbook after imports */
#define VZ_PB_MAX_LOOP 10000         /* items of one loop */
#define VZ_PB_MAX_RETRIES 1000       /* until/retries */
#define VZ_PB_DEFAULT_OUTPUT_MAX (1u << 20) /* stdout/stderr kept per command, see opts */

/* Loads a playbook file with everything it imports statically (import_tasks, import_role, roles:,
 * vars_files are read at run time). Returns 0, or VZ_EINVAL/VZ_ENOTFOUND/VZ_ETOOBIG with
 * "FILE:LINE:COL: message" naming the task and, for an unknown module or keyword, that name.
 * *out freed with vz_playbook_free. */
int vz_playbook_load(vz_playbook **out, const char *path, vz_err *e);

/* The same from memory (for the fuzzer and tests); dir is where relative paths resolve. */
int vz_playbook_parse(vz_playbook **out, const char *data, size_t len, const char *fname, const char *dir,
		      vz_err *e);

void vz_playbook_free(vz_playbook *pb);

/* A description of the loaded tree for tests: [{"name", "hosts", "tasks": [{"name", "action",
 * "file", "line", "block"/"rescue"/"always": [...]}], "handlers": [...]}]. New reference. */
json_t *vz_playbook_describe(const vz_playbook *pb);

/* Looks up an already-open connection for an inventory host (executor builds keep one session
 * per node). Return NULL to let the engine connect from the host's variables. The connection
 * stays owned by the caller and is used from one thread at a time. */
typedef vz_node *(*vz_playbook_node_fn)(void *ctx, const char *host);

typedef struct vz_playbook_opts {
	const char *const *playbooks; /* paths, run in order */
	size_t nplaybooks;
	const vz_inventory *inventory; /* borrowed */
	const json_t *extra_vars;      /* object; highest precedence (the executor's zuul dict) */
	const char *known_hosts;       /* for ssh hosts; NULL: ~/.ssh/known_hosts */
	const char *private_key;       /* default key when a host has no ansible_ssh_private_key_file */
	const char *default_user;      /* NULL: the current user */
	vz_playbook_node_fn node_lookup;
	void *node_ctx;
	int untrusted;        /* refuse localhost/local connections and executor-side file reads
	                       * outside confine_dir */
	const char *confine_dir; /* untrusted: executor-side files must be under it (and the
	                          * playbook's dir) */
	const char *work_dir;    /* executor-side scratch (fetch destinations, zuul_return) */
	const char *log_dir;     /* when set: job-output.txt (streamed) and job-output.json here */
	FILE *out;               /* Ansible-style text output; NULL: none */
	int want_json;           /* build the json-callback document (vz_playbook_result.json) */
	int timeout_ms;          /* whole run; 0: none. A task running past it is killed */
	size_t output_max;       /* stdout/stderr kept per command; 0: VZ_PB_DEFAULT_OUTPUT_MAX. A
	                          * command printing 4x more is killed and fails */
	volatile int *cancel;
	int forks;               /* hosts run at once; 0: 16 */
	/* optional: every line of job-output.txt as it is written (host NULL for lines about the
	 * run), for a caller that streams the log elsewhere; called with the output lock held */
	void (*on_line)(void *ctx, const char *host, const char *text);
	void *line_ctx;
	const char *const *tags;      /* NULL-terminated, as --tags: run only tasks with one of them
	                               * (or `always`); "tagged"/"untagged"/"all" as Ansible */
	const char *const *skip_tags; /* NULL-terminated, as --skip-tags */
	/* ssh connections the engine opens itself run tasks through one persistent shell per host
	 * (vz_node_set_runner); no_runner turns that off (a new channel per command), and
	 * runner_for_lookup turns it on for the connections node_lookup returns too */
	int no_runner;
	int runner_for_lookup;
} vz_playbook_opts;

typedef struct vz_playbook_result {
	int exit_code;  /* as ansible-playbook: 0 ok, 2 a host failed, 4 unreachable/parse error, 1 other */
	int timed_out;  /* the run's timeout_ms passed */
	json_t *json;   /* with want_json: {"plays": [...], "stats": {...}, ...}; caller decrefs */
} vz_playbook_result;

/* Runs the playbooks. Returns 0 when they ran (whatever the hosts did: see out->exit_code), or a
 * negative code when a playbook could not be loaded (VZ_EINVAL etc., out->exit_code 4), the
 * options are bad (out->exit_code 5), or the playbook hit an error that stops ansible-playbook
 * as a whole, such as notifying a handler that does not exist (out->exit_code 1); e says what
 * and where. out->json is set in every case when want_json. */
int vz_playbook_run(vz_playbook_result *out, const vz_playbook_opts *opts, vz_err *e);

#endif
