/* vinz keygen: a CURVE key pair for the scheduler or an executor (common/vz_curve.h). */
#include <stdio.h>
#include <string.h>

#include "vz_cli.h"
#include "vz_curve.h"

static int run(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		vz_cli_usage(&vz_cmd_keygen, 1);
		return VZ_EXIT_USAGE;
	}
	vz_curve_keypair kp;
	vz_err e = { 0 };
	if (vz_curve_keygen(argv[1], &kp, &e)) {
		fprintf(stderr, "vinz keygen: %s\n", vz_err_msg(&e));
		return VZ_EXIT_FAIL;
	}
	printf("%s\n", kp.public_key);
	fprintf(stderr, "vinz keygen: key pair in %s (mode 600), public key in %s.pub\n", argv[1], argv[1]);
	memset(&kp, 0, sizeof(kp));
	return VZ_EXIT_OK;
}

const vz_cmd vz_cmd_keygen = {
	"keygen", "make a CURVE key pair for the scheduler or an executor",
	"usage: vinz keygen FILE\n\n"
	"Writes a new CURVE key pair to FILE (mode 600; an existing FILE is never overwritten) and its\n"
	"public key to FILE.pub, and prints the public key. The scheduler uses its pair as\n"
	"scheduler.curve_key and admits the executors whose .pub keys are listed in\n"
	"scheduler.curve_executors; an executor uses its pair as executor.curve_key and the scheduler's\n"
	"public key as executor.scheduler_key (docs/configuration.md).\n"
	"\nexit: 0 written, 1 failed (FILE exists, no CURVE in libzmq), 2 usage\n",
	run,
};
