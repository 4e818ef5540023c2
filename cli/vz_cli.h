/* vz_cli: what the subcommands of the vinz binary share: the command table entry, exit codes,
 * config loading with errors printed the same way everywhere, and signal handling. */
#ifndef VZ_CLI_H
#define VZ_CLI_H

#include <jansson.h>
#include <signal.h>

#include "vz_config.h"

/* Exit codes, documented in `vinz --help`. */
enum {
	VZ_EXIT_OK = 0,
	VZ_EXIT_FAIL = 1,        /* the command ran and failed (a build outcome, a refused request) */
	VZ_EXIT_USAGE = 2,       /* bad command line */
	VZ_EXIT_CONFIG = 3,      /* the configuration is invalid */
	VZ_EXIT_UNREACHABLE = 4, /* no scheduler answered */
};

typedef struct vz_cmd {
	const char *name;
	const char *summary;
	const char *usage; /* full help text */
	int (*run)(int argc, char **argv);
} vz_cmd;

extern const vz_cmd vz_cmd_up, vz_cmd_scheduler, vz_cmd_executor, vz_cmd_enqueue, vz_cmd_status, vz_cmd_builds,
	vz_cmd_demo, vz_cmd_merge, vz_cmd_keygen, vz_cmd_logs;

/* Set by SIGINT/SIGTERM once vz_cli_signals() ran. */
extern volatile sig_atomic_t vz_cli_stop;
void vz_cli_signals(void);

/* Prints the usage of cmd to stdout (help) or stderr (error). */
void vz_cli_usage(const vz_cmd *cmd, int to_stderr);

/* True when argv has -h or --help. */
int vz_cli_wants_help(int argc, char **argv);

/* Loads the config from path (or $VINZ_CONFIG, or ./vinz.yaml), printing every error to stderr.
 * Returns NULL on failure. */
vz_config *vz_cli_load_config(const char *path);

/* Initialises libgit2 and libssh2 for commands that run builds or resolve refs. */
int vz_cli_init_libs(void);
void vz_cli_cleanup_libs(void);

/* For the daemon commands (up, scheduler, executor): parses [--config FILE] and, when extra_name
 * is given, [--EXTRA_NAME VALUE] (short option: its first letter). Returns -1 to go on, else an
 * exit code (usage printed). */
int vz_cli_daemon_args(const vz_cmd *cmd, int argc, char **argv, const char *extra_name, const char **config,
		       const char **extra);
/* Loads the config, initialises the libraries (unless lazy_libs: the executor leaves that to its
 * first build), names the log and installs signal handlers. NULL on failure with *exit_code set.
 * vz_cli_daemon_end undoes it. */
vz_config *vz_cli_daemon_start(const char *config, const char *ident, int lazy_libs, int *exit_code);
void vz_cli_daemon_end(vz_config *cfg);

/* Calls the scheduler's admin op; prints errors; returns an exit code and sets *data on success. */
int vz_cli_admin(const char *config_path, const char *admin, const char *op, json_t *args, json_t **data);

#endif
