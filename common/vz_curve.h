/* vz_curve: CurveZMQ between the scheduler and its executors. Key pairs made by `vinz keygen`,
 * the scheduler's socket as a CURVE server that admits only the executors whose public keys it
 * lists (a ZAP handler), and executors that verify the scheduler's public key. Without keys only
 * endpoints that never leave the host (inproc, ipc, tcp on loopback) are allowed. */
#ifndef VZ_CURVE_H
#define VZ_CURVE_H

#include "vz_err.h"

#define VZ_CURVE_KEYLEN 40 /* Z85 text of a 32-byte key */

typedef struct vz_curve_keypair {
	char public_key[VZ_CURVE_KEYLEN + 1];
	char secret_key[VZ_CURVE_KEYLEN + 1];
} vz_curve_keypair;

/* 1 when libzmq was built with CURVE. */
int vz_curve_available(void);

/* Makes a key pair: path gets both keys (mode 0600, refused if it exists), path.pub the public
 * key alone, one line. VZ_EINVAL when CURVE is not available, VZ_EIO. */
int vz_curve_keygen(const char *path, vz_curve_keypair *out, vz_err *e);

/* Reads a key pair file written by vz_curve_keygen. VZ_ENOTFOUND, VZ_EINVAL (malformed, or readable
 * by group or others: the message says to chmod 600). */
int vz_curve_load_keypair(vz_curve_keypair *out, const char *path, vz_err *e);

/* A public key given as its 40-character Z85 text, or as a path to a file holding one (a .pub).
 * VZ_EINVAL / VZ_ENOTFOUND. */
int vz_curve_load_public(char out[VZ_CURVE_KEYLEN + 1], const char *key_or_path, vz_err *e);

/* 1 when a ZeroMQ endpoint cannot be reached from another host: inproc://, ipc://, or tcp:// on
 * 127.0.0.0/8, ::1 or localhost. */
int vz_endpoint_is_local(const char *endpoint);

/* The ZAP handler of a context: admits CURVE clients whose public key is listed in the file
 * (one Z85 key per line, optionally followed by a blank and a comment; lines that are no key and
 * start with '#', and blank lines, are ignored; a .pub file works as a list of one)
 * and refuses everything else, logging each refusal with the key. Runs on its own thread until
 * vz_curve_zap_stop. VZ_EINVAL for a malformed list (naming the line), VZ_ENOTFOUND, VZ_EIO. */
typedef struct vz_curve_zap vz_curve_zap;
int vz_curve_zap_start(vz_curve_zap **out, void *zctx, const char *authorized_file, vz_err *e);
void vz_curve_zap_stop(vz_curve_zap *z); /* accepts NULL */

/* Makes sock a CURVE server with kp (call before bind). */
int vz_curve_server(void *sock, const vz_curve_keypair *kp, vz_err *e);
/* Makes sock a CURVE client with kp that accepts only server_public (call before connect). */
int vz_curve_client(void *sock, const vz_curve_keypair *kp, const char *server_public, vz_err *e);

#endif
