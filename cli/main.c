/* vinz: the one binary. main() finds the subcommand in the table and runs it (tmux's cmd-*.c
 * pattern: each command lives in its own file). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "vz_admin.h"
#include "vz_cli.h"
#include "vz_log.h"
#include "vz_node.h"
#include "vz_util.h"
#include "vz_version.h"
#include "vz_workspace.h"

extern const vz_cmd vz_cmd_playbook;
extern const vz_cmd vz_cmd_config; /* cli/cmd-config.c */
extern const vz_cmd vz_cmd_run;    /* cli/cmd-run.c */
extern const vz_cmd vz_cmd_keys, vz_cmd_encrypt; /* cli/cmd-keys.c, cli/cmd-encrypt.c */

static const vz_cmd *commands[] = {
	&vz_cmd_demo, &vz_cmd_up, &vz_cmd_scheduler, &vz_cmd_executor, &vz_cmd_enqueue, &vz_cmd_status, &vz_cmd_builds, &vz_cmd_merge,
	&vz_cmd_keygen, &vz_cmd_playbook, &vz_cmd_config, &vz_cmd_run, &vz_cmd_logs, &vz_cmd_keys, &vz_cmd_encrypt,
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

volatile sig_atomic_t vz_cli_stop;

/* counts the stop signals (1, then 2): `vinz executor` drains on the first and hands its
 * builds back on the second; everything else stops on any non-zero value */
static void on_signal(int sig)
{
	(void)sig;
	if (vz_cli_stop < 2)
		vz_cli_stop = vz_cli_stop + 1;
}

void vz_cli_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void vz_cli_usage(const vz_cmd *cmd, int to_stderr)
{
	fputs(cmd->usage, to_stderr ? stderr : stdout);
}

int vz_cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	}
	return 0;
}

vz_config *vz_cli_load_config(const char *path)
{
	const char *p = path ? path : getenv("VINZ_CONFIG") ? getenv("VINZ_CONFIG") : "vinz.yaml";
	vz_config *c = NULL;
	vz_buf diags = VZ_BUF_INIT(1u << 20);
	vz_err e = { 0 };
	int rc = vz_config_load(&c, p, &diags, &e);
	if (rc) {
		if (diags.len)
			fputs(vz_buf_cstr(&diags), stderr);
		else
			fprintf(stderr, "vinz: %s\n", vz_err_msg(&e));
		if (rc == VZ_ENOTFOUND)
			fprintf(stderr, "vinz: no configuration at %s; pass --config FILE or set VINZ_CONFIG "
					"(docs/configuration.md has examples)\n", p);
		vz_buf_free(&diags);
		return NULL;
	}
	vz_buf_free(&diags);
	if (c->log_level) {
		int lv = !strcmp(c->log_level, "debug") ? VZ_LOG_DEBUG : !strcmp(c->log_level, "warn") ? VZ_LOG_WARN
			 : !strcmp(c->log_level, "error") ? VZ_LOG_ERROR : VZ_LOG_INFO;
		if (vz_log_level() != VZ_LOG_QUIET)
			vz_log_set_level(lv);
	}
	return c;
}

int vz_cli_init_libs(void)
{
	vz_err e = { 0 };
	if (vz_workspace_global_init(&e) || vz_node_global_init(&e)) {
		fprintf(stderr, "vinz: %s\n", vz_err_msg(&e));
		return -1;
	}
	return 0;
}

void vz_cli_cleanup_libs(void)
{
	vz_node_global_cleanup();
	vz_workspace_global_cleanup();
}

int vz_cli_daemon_args(const vz_cmd *cmd, int argc, char **argv, const char *extra_name, const char **config,
		       const char **extra)
{
	struct option opts[] = { { "config", required_argument, NULL, 'c' },
				 { extra_name ? extra_name : "", required_argument, NULL, extra_name ? extra_name[0] : 0 },
				 { NULL, 0, NULL, 0 } };
	if (!extra_name)
		opts[1] = opts[2];
	char shorts[8] = "c:";
	if (extra_name) {
		shorts[2] = extra_name[0];
		shorts[3] = ':';
	}
	int o;
	while ((o = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		if (o == 'c')
			*config = optarg;
		else if (extra_name && o == extra_name[0])
			*extra = optarg;
		else {
			vz_cli_usage(cmd, 1);
			return VZ_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		vz_cli_usage(cmd, 1);
		return VZ_EXIT_USAGE;
	}
	return -1;
}

vz_config *vz_cli_daemon_start(const char *config, const char *ident, int lazy_libs, int *exit_code)
{
	vz_config *cfg = vz_cli_load_config(config);
	if (!cfg) {
		*exit_code = VZ_EXIT_CONFIG;
		return NULL;
	}
	if (!lazy_libs && vz_cli_init_libs()) {
		vz_config_free(cfg);
		*exit_code = VZ_EXIT_FAIL;
		return NULL;
	}
	vz_log_set_ident(ident);
	vz_cli_signals();
	return cfg;
}

void vz_cli_daemon_end(vz_config *cfg)
{
	vz_config_free(cfg);
	vz_cli_cleanup_libs();
}

int vz_cli_admin(const char *config_path, const char *admin, const char *op, json_t *args, json_t **data)
{
	vz_config *c = NULL;
	if (!admin) {
		c = vz_cli_load_config(config_path);
		if (!c)
			return VZ_EXIT_CONFIG;
		admin = c->scheduler.admin;
	}
	vz_err e = { 0 };
	int rc = vz_admin_call(NULL, admin, op, args, data, 10000, &e);
	int ex = VZ_EXIT_OK;
	if (rc) {
		fprintf(stderr, "vinz %s: %s\n", op, vz_err_msg(&e));
		ex = rc == VZ_ETIMEOUT ? VZ_EXIT_UNREACHABLE : VZ_EXIT_FAIL;
	}
	vz_config_free(c);
	return ex;
}

static void main_usage(FILE *f)
{
	fprintf(f, "usage: vinz [--version] [--help] COMMAND [ARGS]\n\n"
		   "vinz is a gating CI system: it tests approved changes on top of the changes ahead of them,\n"
		   "runs jobs on nodes over SSH, and lands only what passed.\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "  %-10s %s\n", "help", "show the help of a command: vinz help COMMAND");
	fprintf(f, "\nexit codes:\n"
		   "  0  success\n"
		   "  1  the command ran and failed (a build outcome, a refused request, a runtime error)\n"
		   "  2  usage error (unknown command or option)\n"
		   "  3  invalid configuration (errors printed as FILE:LINE:COL: message)\n"
		   "  4  no scheduler answered\n"
		   "\nconfiguration: --config FILE, else $VINZ_CONFIG, else ./vinz.yaml (docs/configuration.md).\n");
}

static const vz_cmd *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stderr);
		return VZ_EXIT_USAGE;
	}
	const char *a = argv[1];
	if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
		main_usage(stdout);
		return VZ_EXIT_OK;
	}
	if (!strcmp(a, "--version") || !strcmp(a, "version")) {
		printf("vinz %s (protocol %d)\n", VZ_VERSION, 1);
		return VZ_EXIT_OK;
	}
	if (!strcmp(a, "help")) {
		if (argc < 3) {
			main_usage(stdout);
			return VZ_EXIT_OK;
		}
		const vz_cmd *c = find(argv[2]);
		if (!c) {
			fprintf(stderr, "vinz: no command '%s'; see vinz --help\n", argv[2]);
			return VZ_EXIT_USAGE;
		}
		vz_cli_usage(c, 0);
		return VZ_EXIT_OK;
	}
	const vz_cmd *c = find(a);
	if (!c) {
		fprintf(stderr, "vinz: no command '%s'; see vinz --help\n", a);
		return VZ_EXIT_USAGE;
	}
	if (vz_cli_wants_help(argc - 1, argv + 1)) {
		vz_cli_usage(c, 0);
		return VZ_EXIT_OK;
	}
	return c->run(argc - 1, argv + 1);
}
