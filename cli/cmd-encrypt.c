/* vinz encrypt: a secret value encrypted with a project's public key, printed as the
 * `!encrypted/pkcs1-oaep` YAML Zuul's encrypt_secret.py prints (scheduler-client/vz_secrets.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_cli.h"
#include "vz_secrets.h"
#include "vz_util.h"

extern const vz_cmd vz_cmd_encrypt;
int vz_cli_key_location(const char *config, const char *state_dir, const char *connection, char **state,
			char **conn); /* cli/cmd-keys.c */

static int run(int argc, char **argv)
{
	static const struct option opts[] = { { "project", required_argument, NULL, 'p' },
					      { "connection", required_argument, NULL, 'C' },
					      { "state-dir", required_argument, NULL, 's' },
					      { "config", required_argument, NULL, 'c' },
					      { "key", required_argument, NULL, 'k' },
					      { "infile", required_argument, NULL, 'i' },
					      { "name", required_argument, NULL, 'n' },
					      { "field", required_argument, NULL, 'f' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	const char *project = NULL, *connection = NULL, *state_dir = NULL, *config = NULL, *keyfile = NULL,
		   *infile = NULL, *name = NULL, *field = NULL;
	if (vz_cli_wants_help(argc, argv)) {
		vz_cli_usage(&vz_cmd_encrypt, 0);
		return VZ_EXIT_OK;
	}
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:C:s:c:k:i:n:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': project = optarg; break;
		case 'C': connection = optarg; break;
		case 's': state_dir = optarg; break;
		case 'c': config = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'i': infile = optarg; break;
		case 'n': name = optarg; break;
		case 'f': field = optarg; break;
		default: vz_cli_usage(&vz_cmd_encrypt, 1); return VZ_EXIT_USAGE;
		}
	}
	if (optind != argc || (!project && !keyfile)) {
		vz_cli_usage(&vz_cmd_encrypt, 1);
		return VZ_EXIT_USAGE;
	}
	char *state = NULL, *conn = NULL, *yaml = NULL;
	vz_secrets_key *k = NULL;
	json_t *chunks = NULL;
	vz_buf in = VZ_BUF_INIT(VZ_SECRETS_MAX_PLAINTEXT);
	vz_err e = { 0 };
	int ex = VZ_EXIT_FAIL;
	if (keyfile) {
		if (vz_secrets_key_load(&k, keyfile, &e)) {
			fprintf(stderr, "vinz encrypt: %s\n", vz_err_msg(&e));
			goto out;
		}
	} else {
		ex = vz_cli_key_location(config, state_dir, connection, &state, &conn);
		if (ex)
			goto out;
		ex = VZ_EXIT_FAIL;
		/* the first use of a project's key makes it, as the scheduler would */
		if (vz_secrets_key_get(&k, state, conn, project, 1, &e)) {
			fprintf(stderr, "vinz encrypt: %s\n", vz_err_msg(&e));
			goto out;
		}
	}
	if (infile) {
		if (vz_read_file(infile, in.max, &in, &e)) {
			fprintf(stderr, "vinz encrypt: %s\n", vz_err_msg(&e));
			goto out;
		}
	} else {
		char tmp[8192];
		size_t n;
		while ((n = fread(tmp, 1, sizeof(tmp), stdin)) > 0)
			if (vz_buf_add(&in, tmp, n)) {
				fprintf(stderr, "vinz encrypt: the secret is over %u bytes\n", VZ_SECRETS_MAX_PLAINTEXT);
				goto out;
			}
		if (ferror(stdin)) {
			fprintf(stderr, "vinz encrypt: cannot read standard input: %s\n", strerror(errno));
			goto out;
		}
	}
	if (vz_secrets_encrypt(&chunks, k, in.ptr ? in.ptr : "", in.len, &e) ||
	    vz_secrets_format_yaml(&yaml, name, field, chunks, &e)) {
		fprintf(stderr, "vinz encrypt: %s\n", vz_err_msg(&e));
		goto out;
	}
	fputs(yaml, stdout);
	fprintf(stderr, "vinz encrypt: %zu bytes in %zu chunk(s) of at most %zu bytes, %d-bit key\n", in.len,
		json_array_size(chunks), vz_secrets_chunk_size(k), vz_secrets_key_bits(k));
	ex = fflush(stdout) == 0 ? VZ_EXIT_OK : VZ_EXIT_FAIL;
out:
	if (in.ptr)
		memset(in.ptr, 0, in.len);
	vz_buf_free(&in);
	free(yaml);
	json_decref(chunks);
	vz_secrets_key_free(k);
	free(state);
	free(conn);
	return ex;
}

const vz_cmd vz_cmd_encrypt = {
	"encrypt", "encrypt a secret for a project (Zuul's !encrypted/pkcs1-oaep)",
	"usage: vinz encrypt --project P [--connection C] [--state-dir DIR] [--config FILE]\n"
	"                    [--infile F] [--name NAME] [--field FIELD]\n"
	"       vinz encrypt --key FILE.pub [--infile F] [--name NAME] [--field FIELD]\n\n"
	"Reads the secret from F (default: standard input, taken as it is: a trailing newline is part\n"
	"of the secret) and prints a secret stanza whose value is encrypted with the project's public\n"
	"key, in Zuul's format: RSA-OAEP with SHA-1, the text cut in chunks of (key bytes - 42), 470 for\n"
	"RSA-4096, each chunk a base64 list item after `!encrypted/pkcs1-oaep`. Paste it into the\n"
	"project's zuul.yaml (docs/secrets.md). The project's key is made when it has none yet.\n\n"
	"  -p, --project P         the project's name on its connection (e.g. org/repo)\n"
	"  -C, --connection C      its connection (default: the site configuration's only one)\n"
	"  -s, --state-dir DIR     the state directory (default: the site configuration's state_dir)\n"
	"  -c, --config FILE       the site configuration (default $VINZ_CONFIG, else ./vinz.yaml)\n"
	"  -k, --key FILE          a PEM public key (vinz keys show, or Zuul's PROJECT.pub) instead\n"
	"  -i, --infile F          read the secret from F\n"
	"  -n, --name NAME         the secret's name (default <name>)\n"
	"  -f, --field FIELD       the data key holding the value (default <fieldname>)\n"
	"\nexit: 0 printed, 1 failed, 2 usage, 3 invalid site configuration\n",
	run,
};
