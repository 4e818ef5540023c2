/* vinz keys: a project's secrets key pair (scheduler-client/vz_secrets.h): print its public key,
 * export the private key for a backup or another deployment, import one (from vinz or Zuul). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vz_cli.h"
#include "vz_secrets.h"
#include "vz_util.h"

extern const vz_cmd vz_cmd_keys;

/* Where a project's key lives: --state-dir and --connection, else the site configuration's
 * state_dir and its only connection. Shared with cmd-encrypt.c. Returns an exit code (0 ok);
 * *state and *conn are malloc'd. */
int vz_cli_key_location(const char *config, const char *state_dir, const char *connection, char **state,
			char **conn);

int vz_cli_key_location(const char *config, const char *state_dir, const char *connection, char **state,
			char **conn)
{
	*state = *conn = NULL;
	vz_config *cfg = NULL;
	if (!state_dir || !connection) {
		cfg = vz_cli_load_config(config);
		if (!cfg)
			return VZ_EXIT_CONFIG;
	}
	if (!connection) {
		if (cfg->nconnections != 1) {
			fprintf(stderr, "vinz: the site configuration has %zu connections: say which one the project "
					"belongs to with --connection NAME\n", cfg->nconnections);
			vz_config_free(cfg);
			return VZ_EXIT_USAGE;
		}
		connection = cfg->connections[0].name;
	}
	*state = vz_xstrdup(state_dir ? state_dir : cfg->state_dir);
	*conn = vz_xstrdup(connection);
	vz_config_free(cfg);
	return *state && *conn ? 0 : VZ_EXIT_FAIL;
}

static int read_all(const char *path, vz_buf *b)
{
	vz_err e = { 0 };
	if (path && strcmp(path, "-") != 0) {
		if (vz_read_file(path, b->max, b, &e)) {
			fprintf(stderr, "vinz: %s\n", vz_err_msg(&e));
			return -1;
		}
		return 0;
	}
	char tmp[8192];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), stdin)) > 0)
		if (vz_buf_add(b, tmp, n)) {
			fprintf(stderr, "vinz: standard input is over %zu bytes\n", b->max);
			return -1;
		}
	if (ferror(stdin)) {
		fprintf(stderr, "vinz: cannot read standard input: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* Writes text to path (created with mode 0600, never overwriting) or stdout when path is NULL. */
static int write_private(const char *path, const char *text)
{
	if (!path || strcmp(path, "-") == 0) {
		fputs(text, stdout);
		return fflush(stdout) == 0 ? 0 : -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "vinz keys: cannot create %s: %s%s\n", path, strerror(errno),
			errno == EEXIST ? " (an existing file is never overwritten)" : "");
		return -1;
	}
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "vinz keys: cannot write %s: %s\n", path, strerror(errno));
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	return close(fd) == 0 ? 0 : -1;
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = { { "project", required_argument, NULL, 'p' },
					      { "connection", required_argument, NULL, 'C' },
					      { "state-dir", required_argument, NULL, 's' },
					      { "config", required_argument, NULL, 'c' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	const char *project = NULL, *connection = NULL, *state_dir = NULL, *config = NULL;
	if (argc < 2 || vz_cli_wants_help(argc, argv)) {
		vz_cli_usage(&vz_cmd_keys, argc < 2);
		return argc < 2 ? VZ_EXIT_USAGE : VZ_EXIT_OK;
	}
	const char *verb = argv[1];
	int c;
	optind = 1;
	argc--, argv++;
	while ((c = getopt_long(argc, argv, "p:C:s:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': project = optarg; break;
		case 'C': connection = optarg; break;
		case 's': state_dir = optarg; break;
		case 'c': config = optarg; break;
		default: vz_cli_usage(&vz_cmd_keys, 1); return VZ_EXIT_USAGE;
		}
	}
	int is_show = !strcmp(verb, "show"), is_export = !strcmp(verb, "export"), is_import = !strcmp(verb, "import");
	if ((!is_show && !is_export && !is_import) || !project || argc - optind > (is_show ? 0 : 1)) {
		vz_cli_usage(&vz_cmd_keys, 1);
		return VZ_EXIT_USAGE;
	}
	const char *file = optind < argc ? argv[optind] : NULL;
	char *state = NULL, *conn = NULL, *pem = NULL;
	vz_secrets_key *k = NULL;
	vz_buf in = VZ_BUF_INIT(64u * 1024);
	vz_err e = { 0 };
	int ex = vz_cli_key_location(config, state_dir, connection, &state, &conn);
	if (ex)
		goto out;
	ex = VZ_EXIT_FAIL;
	if (is_import) {
		if (read_all(file, &in))
			goto out;
		int rc = vz_secrets_key_import(state, conn, project, in.ptr ? in.ptr : "", in.len, &e);
		if (rc) {
			fprintf(stderr, "vinz keys import: %s\n", vz_err_msg(&e));
			goto out;
		}
		fprintf(stderr, "vinz keys import: project %s (connection %s) uses the imported key\n", project, conn);
		ex = VZ_EXIT_OK;
		goto out;
	}
	/* show and export are a first use: the key is made when the project has none */
	if (vz_secrets_key_get(&k, state, conn, project, 1, &e) || vz_secrets_key_pem(&pem, k, is_export, &e)) {
		fprintf(stderr, "vinz keys %s: %s\n", verb, vz_err_msg(&e));
		goto out;
	}
	if (write_private(is_export ? file : NULL, pem) == 0)
		ex = VZ_EXIT_OK;
out:
	if (pem)
		vz_secrets_wipe(pem, strlen(pem));
	if (in.ptr)
		memset(in.ptr, 0, in.len);
	vz_buf_free(&in);
	vz_secrets_key_free(k);
	free(state);
	free(conn);
	return ex;
}

const vz_cmd vz_cmd_keys = {
	"keys", "show, export or import a project's secrets key pair",
	"usage: vinz keys show --project P [--connection C] [--state-dir DIR] [--config FILE]\n"
	"       vinz keys export --project P [...] [FILE]\n"
	"       vinz keys import --project P [...] [FILE]\n\n"
	"Each project has an RSA-4096 key pair for its secrets (docs/secrets.md), kept in\n"
	"STATE_DIR/keys/secrets/project/CONNECTION/PROJECT/0.pem, as Zuul's key store keeps it. It is\n"
	"made on first use (these commands, vinz encrypt, or loading the configuration) and never\n"
	"replaced.\n\n"
	"  show     print the public key (PEM), what vinz encrypt and Zuul's encrypt_secret.py use\n"
	"  export   write the private key (PEM, \"RSA PRIVATE KEY\") to FILE (created with mode 600,\n"
	"           never overwritten) or standard output\n"
	"  import   install a private key read from FILE or standard input (a vinz export, or a Zuul\n"
	"           key file such as .../secrets/project/CONNECTION/PROJECT/0.pem); refused when the\n"
	"           project already has another key\n\n"
	"  -p, --project P         the project's name on its connection (e.g. org/repo)\n"
	"  -C, --connection C      its connection (default: the site configuration's only one)\n"
	"  -s, --state-dir DIR     the state directory (default: the site configuration's state_dir)\n"
	"  -c, --config FILE       the site configuration (default $VINZ_CONFIG, else ./vinz.yaml)\n"
	"\nexit: 0 done, 1 failed, 2 usage, 3 invalid site configuration\n",
	run,
};
