/* vz_knownhosts: OpenSSH known_hosts files read into libssh2's knownhost collection, and the key
 * type names and SHA256 fingerprints that host key messages show. Shared by the node sessions
 * (vz_node_ssh.c) and the repository cache's ssh fetches (vz_gitcred.c), so both check host keys
 * the same way: plain, hashed (|1|...) and [host]:port entries, as libssh2 matches them. */
#ifndef VZ_KNOWNHOSTS_H
#define VZ_KNOWNHOSTS_H

#include <libssh2.h>
#include <stddef.h>

#include "vz_err.h"

/* One host key type under its several names. */
typedef struct vz_kh_type {
	int hostkey_type;    /* LIBSSH2_HOSTKEY_TYPE_* */
	const char *label;   /* as ssh-keygen -l prints it: "ED25519" */
	const char *scan;    /* as ssh-keyscan -t takes it: "ed25519" */
	const char *methods; /* libssh2 host key methods to prefer for it */
	int kh_bit;          /* LIBSSH2_KNOWNHOST_KEY_* */
} vz_kh_type;

#define VZ_KH_NTYPES 6
extern const vz_kh_type vz_kh_types[VZ_KH_NTYPES];

/* The entry for a LIBSSH2_HOSTKEY_TYPE_* value; NULL when unknown. Static storage. */
const vz_kh_type *vz_kh_type_of(int hostkey_type);

/* Adds each line of text (OpenSSH known_hosts format) to kh. Lines libssh2 cannot parse (a
 * security-key or @cert-authority entry) are skipped rather than failing the whole file, as
 * libssh2's own readfile would. Returns how many were skipped. */
int vz_kh_add_text(LIBSSH2_KNOWNHOSTS *kh, const char *text);

/* Reads the known_hosts file at path into kh. A missing file adds nothing and is not an error
 * (every key is then unknown). *skipped (optional) gets the count of lines skipped.
 * VZ_EINVAL when the file exists but cannot be read, VZ_ETOOBIG above 4 MiB. */
int vz_kh_load_file(LIBSSH2_KNOWNHOSTS *kh, const char *path, int *skipped, vz_err *e);

/* Base64 without padding, as OpenSSH prints fingerprints; out needs 4*ceil(n/3)+1 bytes. */
void vz_kh_b64_nopad(const unsigned char *in, size_t n, char *out);

/* "SHA256:..." fingerprint of a raw host key blob, as ssh-keygen -l prints it. */
void vz_kh_fingerprint(const void *key, size_t len, char out[64]);

#endif
