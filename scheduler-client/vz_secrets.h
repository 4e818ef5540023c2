/* vz_secrets: Zuul-compatible project secrets. Each project has an RSA-4096 key pair kept under the
 * state directory where Zuul's file key store keeps it (STATE/keys/secrets/project/CONN/PROJECT/0.pem,
 * traditional PEM, mode 0600 in 0700 directories), made on first use and never overwritten.
 * Values are encrypted as Zuul's `!encrypted/pkcs1-oaep`: RSAES-OAEP with SHA-1 and MGF1-SHA-1,
 * the plaintext cut in chunks of (key bytes - 42), each chunk base64. A redactor replaces decrypted
 * values in log text. docs/secrets.md describes the formats and the commands. */
#ifndef VZ_SECRETS_H
#define VZ_SECRETS_H

#include <jansson.h>
#include <stddef.h>

#include "vz_buf.h"
#include "vz_err.h"

typedef struct vz_secrets_key vz_secrets_key; /* an RSA key: a private one, or a public one only */

#define VZ_SECRETS_KEY_BITS 4096
#define VZ_SECRETS_OAEP_OVERHEAD 42 /* 2 * SHA-1 length + 2: Zuul's max_bytes = key bytes - 42 */
#define VZ_SECRETS_MAX_PLAINTEXT (1024u * 1024) /* what one value may hold, encrypted or decrypted */

/* The private key file of project on connection under state_dir:
 * STATE_DIR/keys/secrets/project/CONNECTION/PROJECT/0.pem. VZ_EINVAL when a name is empty, absolute
 * or has a "." or ".." component (it would leave the key directory). *out: free(). */
int vz_secrets_key_path(char **out, const char *state_dir, const char *connection, const char *project, vz_err *e);

/* The project's private key. When its file is missing and create is set, a new RSA-4096 pair is
 * generated and installed atomically: written to a temporary file in the key's directory, then
 * linked to its name, so of two processes racing both end up with the one that was linked first.
 * An existing key is never replaced. VZ_ENOTFOUND (missing, create 0), VZ_EINVAL (not an RSA
 * private key; the message names the file), VZ_EIO. *out freed with vz_secrets_key_free. */
int vz_secrets_key_get(vz_secrets_key **out, const char *state_dir, const char *connection, const char *project,
		       int create, vz_err *e);

/* Installs pem (an RSA private key, PKCS#1 or PKCS#8, unencrypted: what `vinz keys export` or a Zuul
 * key file holds) as the project's key. VZ_ECONFLICT when the project already has a different
 * key (an identical one: 0); VZ_EINVAL for anything but an RSA private key of at least 2048 bits. */
int vz_secrets_key_import(const char *state_dir, const char *connection, const char *project, const char *pem,
			  size_t len, vz_err *e);

/* Parses a PEM RSA key, private (PKCS#1 or PKCS#8) or public (SubjectPublicKeyInfo,
 * "BEGIN PUBLIC KEY"). what names the source
 * in messages. VZ_EINVAL when it is not one. */
int vz_secrets_key_parse(vz_secrets_key **out, const char *pem, size_t len, const char *what, vz_err *e);

/* Reads a PEM key file (capped at 64 KiB) as vz_secrets_key_parse does. VZ_ENOTFOUND, VZ_EIO. */
int vz_secrets_key_load(vz_secrets_key **out, const char *path, vz_err *e);

void vz_secrets_key_free(vz_secrets_key *k); /* accepts NULL */

int vz_secrets_key_bits(const vz_secrets_key *k);
int vz_secrets_key_has_private(const vz_secrets_key *k);

/* PEM text of the key: the private key in traditional form ("BEGIN RSA PRIVATE KEY", Zuul's
 * serialisation) when private is set (VZ_EINVAL for a public-only key), else the public key as
 * SubjectPublicKeyInfo ("BEGIN PUBLIC KEY", what Zuul serves as PROJECT.pub). *out: free(). */
int vz_secrets_key_pem(char **out, const vz_secrets_key *k, int private_part, vz_err *e);

/* A key source for vz_zconf_load_opts: keys from a state directory. */
typedef struct vz_secrets_store {
	const char *state_dir;
	int create; /* make a project's key when it has none (the scheduler); 0 for checks */
} vz_secrets_store;

/* vz_zconf_key_fn over a vz_secrets_store (ctx): vz_secrets_key_get(state_dir, connection,
 * project, create). VZ_ENOTFOUND when there is no key (or no connection is known). */
int vz_secrets_key_lookup(vz_secrets_key **out, void *ctx, const char *connection, const char *project, vz_err *e);

/* Checks that chunk is base64 (whitespace ignored); *nbytes (may be NULL) gets the decoded size.
 * 0 or VZ_EINVAL. */
int vz_secrets_chunk_check(const char *chunk, size_t *nbytes);

/* Plaintext bytes per chunk: key bytes - 42 (470 for RSA-4096). */
size_t vz_secrets_chunk_size(const vz_secrets_key *k);

/* Encrypts len bytes (at most VZ_SECRETS_MAX_PLAINTEXT; 0 gives one chunk of nothing, as Zuul
 * needs a value) in chunks; *out is a JSON array of base64 strings, one per chunk. New reference. */
int vz_secrets_encrypt(json_t **out, const vz_secrets_key *k, const void *data, size_t len, vz_err *e);

/* Decrypts chunks (base64 text; whitespace inside is ignored, as Python's b64decode does) with the
 * private key and joins the plaintexts. *out is NUL-terminated, *outlen its length; the plaintext
 * must be UTF-8 (Zuul decodes it as such). VZ_EINVAL naming the chunk (1-based) that is not base64,
 * not the key's size, or does not decrypt (wrong key or corrupt data); VZ_ETOOBIG. *out: free()
 * after clearing it (vz_secrets_wipe). */
int vz_secrets_decrypt(char **out, size_t *outlen, const vz_secrets_key *k, const char *const *chunks, size_t n,
		       vz_err *e);

/* The YAML Zuul's encrypt_secret.py prints: a secret stanza with data FIELD: !encrypted/pkcs1-oaep
 * followed by the chunks as a list, each wrapped at 79 columns. name/field NULL: "<name>",
 * "<fieldname>" as Zuul's tool leaves them. *out: free(). */
int vz_secrets_format_yaml(char **out, const char *name, const char *field, const json_t *chunks, vz_err *e);

/* Overwrites n bytes with zeros (not optimised away) and frees p. Accepts NULL. */
void vz_secrets_wipe(char *p, size_t n);

#endif
