/* vz_pbmod: the interface between the playbook engine and its native modules (command, copy,
 * template, ...). The engine parses and templates a task, then calls the module's run function once
 * per host (and per loop item) with the task's arguments already templated; the module acts on the
 * host through the host's vz_node connection and returns an Ansible-shaped result object. */
#ifndef VZ_PBMOD_H
#define VZ_PBMOD_H

#include <stddef.h>

#include <jansson.h>

#include "vz_err.h"
#include "vz_node.h"

/* Everything a module may use while it runs for one host. Filled by the engine; borrowed. */
typedef struct vz_pbmod_ctx {
	vz_node *node;              /* the host's connection (ssh, or local for ansible_connection=local) */
	const char *host;           /* inventory name of the host */
	json_t *vars;               /* all variables visible to the task on this host (templating) */
	const char *const *search;  /* NULL-terminated directories where a relative `src` is looked
	                             * up, in order (role files/ or templates/ dir, then the playbook's
	                             * dir), as Ansible searches them */
	const char *confine;        /* when non-NULL (untrusted playbook): every executor-side path a
	                             * module reads or writes must resolve, symlinks followed, under this
	                             * directory or one of the search dirs; else the module fails */
	const char *work_dir;       /* executor-side scratch dir of the run (fetch dests etc. confined) */
	const char *const *env;     /* NULL-terminated "KEY=VALUE" from `environment:`; may be NULL */
	const char *chdir;          /* args.chdir already applied by the engine for command-like
	                             * modules; NULL: the login dir */
	int become;                 /* run as become_user through `sudo -n -u USER` */
	const char *become_user;    /* NULL: root */
	int timeout_ms;             /* the task's `timeout:`; 0: none */
	volatile int *cancel;       /* non-zero: stop as soon as possible */
	int no_log;                 /* the task has no_log: never put arguments or output in messages */
	/* Added by the engine (zero/NULL is always valid, so older modules need no change): */
	vz_node_output_cb on_output; /* when set, modules that run commands pass each chunk of node
	                              * output here as it arrives (job-output.txt streaming); never set
	                              * for no_log tasks. Its return value is ignored */
	void *output_ctx;
	size_t output_max;          /* bytes of stdout/stderr a module keeps per command; 0: 1 MiB.
	                             * A command printing 4x more is killed and the task fails */
} vz_pbmod_ctx;

/* Runs the module. args is the templated `module: args` mapping (free-form text for
 * command/shell/raw/script arrives as {"_raw_params": "..."} with key=value pairs split out as
 * Ansible does). On return *result is a new JSON object with Ansible's keys: "changed" (bool),
 * "failed" (bool, only when true), "msg", and per module "rc", "stdout", "stderr",
 * "stdout_lines", "stderr_lines", "cmd", "start", "end", "delta", "path", "dest", "src",
 * "checksum", "mode", "state", "stat", ... as the Ansible module of the same name returns them.
 * A module failure (non-zero rc, missing file, ...) is a result with "failed": true and a return
 * of 0. Returns non-zero only when the host is unreachable (VZ_ECONNECT, VZ_EIO from the node:
 * Ansible's UNREACHABLE), or VZ_ECANCELED/VZ_ENOMEM; *result may then be NULL. */
typedef int (*vz_pbmod_run_fn)(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e);

/* Checks a task's arguments when the playbook is loaded (before anything runs): unknown or
 * missing options give VZ_EINVAL with a message naming the option. args may still hold
 * templates ("{{ x }}"), so only check what does not depend on values. NULL: anything goes. */
typedef int (*vz_pbmod_check_fn)(const json_t *args, vz_err *e);

typedef struct vz_pbmod {
	const char *name;        /* "copy"; also matched as "ansible.builtin.copy" and "ansible.legacy.copy" */
	vz_pbmod_run_fn run;
	vz_pbmod_check_fn check;
	int free_form;           /* takes free-form text (command, shell, raw, script) */
	int executor_side;       /* runs on the executor only (debug, set_fact, fail, assert, include_vars) */
} vz_pbmod;

/* Finds a module by name (with or without the ansible.builtin./ansible.legacy. prefix).
 * Returns NULL for a module vinz does not have: the loader turns that into a parse error naming
 * the task, the file and the module. */
const vz_pbmod *vz_pbmod_find(const char *name);

#endif
