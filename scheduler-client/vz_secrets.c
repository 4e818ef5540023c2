/* vz_secrets: project key pairs, Zuul's pkcs1-oaep chunked encryption, and log redaction.
 * OpenSSL errors are translated here and nowhere else (ossl_fail). */
#include "vz_secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "vz_util.h"

struct vz_secrets_key {
	EVP_PKEY *pk;
	int priv;
};

#define KEY_FILE_MAX (64u * 1024)
#define MAX_CHUNKS 4096

/* Records the OpenSSL error queue's last reason after what, and clears the queue. */
static int ossl_fail(vz_err *e, int code, const char *what)
{
	unsigned long err = ERR_peek_last_error();
	char reason[256] = "";
	if (err)
		ERR_error_string_n(err, reason, sizeof(reason));
	ERR_clear_error();
	if (reason[0])
		return vz_err_set(e, code, "%s (OpenSSL: %s)", what, reason);
	return vz_err_set(e, code, "%s", what);
}

static int name_ok(const char *s)
{
	if (!s || !*s || s[0] == '/' || strlen(s) > 1024)
		return 0;
	const char *p = s;
	while (*p) {
		const char *q = strchr(p, '/');
		size_t n = q ? (size_t)(q - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20)
				return 0;
		p += n;
		if (*p == '/')
			p++;
	}
	return 1;
}

int vz_secrets_key_path(char **out, const char *state_dir, const char *connection, const char *project, vz_err *e)
{
	*out = NULL;
	if (!state_dir || !*state_dir)
		return vz_err_set(e, VZ_EINVAL, "no state directory for project keys: set state_dir in the site configuration");
	if (!name_ok(connection))
		return vz_err_set(e, VZ_EINVAL, "connection name \"%s\" cannot name a key directory (empty, absolute, "
					       "or with a \".\"/\"..\" component)", connection ? connection : "");
	if (!name_ok(project))
		return vz_err_set(e, VZ_EINVAL, "project name \"%s\" cannot name a key directory (empty, absolute, "
					       "or with a \".\"/\"..\" component)", project ? project : "");
	size_t n = strlen(state_dir) + strlen(connection) + strlen(project) + 64;
	char *p = malloc(n);
	if (!p)
		return vz_err_set(e, VZ_ENOMEM, "out of memory");
	snprintf(p, n, "%s/keys/secrets/project/%s/%s/0.pem", state_dir, connection, project);
	*out = p;
	return 0;
}

void vz_secrets_key_free(vz_secrets_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pk);
	free(k);
}

int vz_secrets_key_bits(const vz_secrets_key *k)
{
	return k ? EVP_PKEY_get_bits(k->pk) : 0;
}

int vz_secrets_key_has_private(const vz_secrets_key *k)
{
	return k && k->priv;
}

int vz_secrets_key_parse(vz_secrets_key **out, const char *pem, size_t len, const char *what, vz_err *e)
{
	*out = NULL;
	if (len > KEY_FILE_MAX || len > INT32_MAX)
		return vz_err_set(e, VZ_ETOOBIG, "%s: a key file over %u bytes is not a key", what, KEY_FILE_MAX);
	int priv = 1;
	EVP_PKEY *pk = NULL;
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return ossl_fail(e, VZ_ENOMEM, "out of memory");
	/* the reader takes PKCS#8 and traditional private keys alike; an empty passphrase given as u
	 * makes an encrypted key fail instead of prompting on a terminal */
	pk = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
	if (!pk) {
		ERR_clear_error();
		priv = 0;
		(void)BIO_reset(b);
		pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	}
	BIO_free(b);
	if (!pk)
		return ossl_fail(e, VZ_EINVAL, "not a PEM RSA key (an unencrypted private key, or a public key)");
	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pk);
		return vz_err_set(e, VZ_EINVAL, "%s: the key is not an RSA key (Zuul's secrets use RSA)", what);
	}
	vz_secrets_key *k = calloc(1, sizeof(*k));
	if (!k) {
		EVP_PKEY_free(pk);
		return vz_err_set(e, VZ_ENOMEM, "out of memory");
	}
	k->pk = pk;
	k->priv = priv;
	*out = k;
	return 0;
}

int vz_secrets_key_load(vz_secrets_key **out, const char *path, vz_err *e)
{
	*out = NULL;
	vz_buf b = VZ_BUF_INIT(KEY_FILE_MAX);
	int rc = vz_read_file(path, KEY_FILE_MAX, &b, e);
	if (rc == 0) {
		rc = vz_secrets_key_parse(out, b.ptr ? b.ptr : "", b.len, path, e);
		if (rc == VZ_EINVAL)
			vz_err_prefix(e, "%s", path);
	}
	if (b.ptr)
		OPENSSL_cleanse(b.ptr, b.len);
	vz_buf_free(&b);
	return rc;
}

int vz_secrets_key_pem(char **out, const vz_secrets_key *k, int private_part, vz_err *e)
{
	*out = NULL;
	if (private_part && !k->priv)
		return vz_err_set(e, VZ_EINVAL, "only the public key is known: a private key cannot be written");
	BIO *b = BIO_new(BIO_s_secmem());
	if (!b)
		return ossl_fail(e, VZ_ENOMEM, "out of memory");
	int ok;
	if (private_part) {
		/* traditional "RSA PRIVATE KEY", as Zuul's serialize_rsa_private_key writes it */
		ok = PEM_write_bio_PrivateKey_traditional(b, k->pk, NULL, NULL, 0, NULL, NULL);
	} else {
		ok = PEM_write_bio_PUBKEY(b, k->pk);
	}
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	char *s = (ok == 1 && n > 0) ? malloc((size_t)n + 1) : NULL;
	if (s) {
		memcpy(s, data, (size_t)n);
		s[n] = 0;
	}
	BIO_free(b);
	if (!s)
		return ok == 1 ? vz_err_set(e, VZ_ENOMEM, "out of memory") : ossl_fail(e, VZ_ERROR, "cannot write the key as PEM");
	*out = s;
	return 0;
}

static int generate(vz_secrets_key **out, vz_err *e)
{
	EVP_PKEY *pk = EVP_RSA_gen(VZ_SECRETS_KEY_BITS); /* public exponent 65537, as Zuul's */
	if (!pk)
		return ossl_fail(e, VZ_ERROR, "cannot generate an RSA key pair");
	vz_secrets_key *k = calloc(1, sizeof(*k));
	if (!k) {
		EVP_PKEY_free(pk);
		return vz_err_set(e, VZ_ENOMEM, "out of memory");
	}
	k->pk = pk;
	k->priv = 1;
	*out = k;
	return 0;
}

/* Makes the key's directories (0700) down from STATE/keys. */
static int make_dirs(const char *path, vz_err *e)
{
	char *dir = vz_xstrdup(path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	int rc = 0;
	if (!slash) {
		free(dir);
		return vz_err_set(e, VZ_ENOMEM, "out of memory");
	}
	*slash = 0;
	rc = vz_mkdir_p(dir, 0700, e);
	free(dir);
	return rc;
}

/* Writes pem to a temporary file next to path and links it to path: EEXIST means another
 * process installed a key first (its key stands). Returns 0, VZ_ECONFLICT (exists) or VZ_EIO. */
static int install(const char *path, const char *pem, vz_err *e)
{
	int rc = make_dirs(path, e);
	if (rc)
		return rc;
	size_t n = strlen(path) + 16;
	char *tmp = malloc(n);
	if (!tmp)
		return vz_err_set(e, VZ_ENOMEM, "out of memory");
	snprintf(tmp, n, "%s.tmpXXXXXX", path);
	int fd = mkstemp(tmp); /* mode 0600 */
	if (fd < 0) {
		rc = vz_err_set(e, VZ_EIO, "cannot create a key file next to %s: %s", path, strerror(errno));
		free(tmp);
		return rc;
	}
	size_t len = strlen(pem), off = 0;
	while (off < len) {
		ssize_t w = write(fd, pem + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = vz_err_set(e, VZ_EIO, "cannot write %s: %s", tmp, strerror(errno));
			break;
		}
		off += (size_t)w;
	}
	if (!rc && (fchmod(fd, 0600) != 0 || fsync(fd) != 0))
		rc = vz_err_set(e, VZ_EIO, "cannot sync %s: %s", tmp, strerror(errno));
	close(fd);
	if (!rc && link(tmp, path) != 0) {
		if (errno == EEXIST)
			rc = VZ_ECONFLICT;
		else
			rc = vz_err_set(e, VZ_EIO, "cannot install the key %s: %s", path, strerror(errno));
	}
	unlink(tmp);
	free(tmp);
	return rc;
}

int vz_secrets_key_get(vz_secrets_key **out, const char *state_dir, const char *connection, const char *project,
		       int create, vz_err *e)
{
	*out = NULL;
	char *path = NULL, *pem = NULL;
	vz_secrets_key *k = NULL;
	int rc = vz_secrets_key_path(&path, state_dir, connection, project, e);
	if (rc)
		goto out;
	vz_err le = { 0 };
	rc = vz_secrets_key_load(&k, path, &le);
	if (rc == VZ_ENOTFOUND && create) {
		rc = generate(&k, e);
		if (rc == 0)
			rc = vz_secrets_key_pem(&pem, k, 1, e);
		if (rc == 0)
			rc = install(path, pem, e);
		if (rc == VZ_ECONFLICT) { /* lost the race: use the key that was installed */
			vz_secrets_key_free(k);
			k = NULL;
			rc = vz_secrets_key_load(&k, path, e);
		}
	} else if (rc) {
		if (rc == VZ_ENOTFOUND)
			vz_err_set(e, rc, "project %s (connection %s) has no key yet: %s is missing", project, connection, path);
		else
			vz_err_set(e, rc, "%s", vz_err_msg(&le));
	}
	if (rc == 0 && !k->priv)
		rc = vz_err_set(e, VZ_EINVAL, "%s holds a public key only; the project's private key is needed", path);
out:
	if (pem)
		vz_secrets_wipe(pem, strlen(pem));
	free(path);
	if (rc) {
		vz_secrets_key_free(k);
		k = NULL;
	}
	*out = k;
	return rc;
}

int vz_secrets_key_import(const char *state_dir, const char *connection, const char *project, const char *pem,
			  size_t len, vz_err *e)
{
	vz_secrets_key *k = NULL, *old = NULL;
	char *path = NULL, *text = NULL, *oldtext = NULL;
	int rc = vz_secrets_key_path(&path, state_dir, connection, project, e);
	if (rc)
		goto out;
	rc = vz_secrets_key_parse(&k, pem, len, "the imported key", e);
	if (rc)
		goto out;
	if (!k->priv) {
		rc = vz_err_set(e, VZ_EINVAL, "the imported key is a public key: import the private key (vinz keys export)");
		goto out;
	}
	if (vz_secrets_key_bits(k) < 2048) {
		rc = vz_err_set(e, VZ_EINVAL, "the imported key has %d bits: at least 2048 are needed",
				vz_secrets_key_bits(k));
		goto out;
	}
	rc = vz_secrets_key_pem(&text, k, 1, e);
	if (rc)
		goto out;
	rc = install(path, text, e);
	if (rc == VZ_ECONFLICT) {
		vz_err le = { 0 };
		rc = vz_secrets_key_load(&old, path, &le);
		if (rc == 0 && EVP_PKEY_eq(old->pk, k->pk) == 1)
			rc = 0;
		else
			rc = vz_err_set(e, VZ_ECONFLICT, "project %s (connection %s) already has a different key in %s; "
							 "it is never replaced (remove the file to start over: "
							 "secrets encrypted for it will no longer decrypt)",
					project, connection, path);
	}
out:
	if (text)
		vz_secrets_wipe(text, strlen(text));
	if (oldtext)
		vz_secrets_wipe(oldtext, strlen(oldtext));
	vz_secrets_key_free(k);
	vz_secrets_key_free(old);
	free(path);
	return rc;
}

size_t vz_secrets_chunk_size(const vz_secrets_key *k)
{
	int bytes = EVP_PKEY_get_size(k->pk);
	return bytes > VZ_SECRETS_OAEP_OVERHEAD ? (size_t)bytes - VZ_SECRETS_OAEP_OVERHEAD : 0;
}

static EVP_PKEY_CTX *oaep_ctx(const vz_secrets_key *k, int encrypt, vz_err *e)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k->pk, NULL);
	if (!c || (encrypt ? EVP_PKEY_encrypt_init(c) : EVP_PKEY_decrypt_init(c)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha1()) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha1()) != 1) {
		EVP_PKEY_CTX_free(c);
		ossl_fail(e, VZ_ERROR, "cannot set up RSA-OAEP (SHA-1)");
		return NULL;
	}
	return c;
}

static char *b64(const unsigned char *p, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);
	if (s)
		EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	return s;
}

int vz_secrets_encrypt(json_t **out, const vz_secrets_key *k, const void *data, size_t len, vz_err *e)
{
	*out = NULL;
	if (len > VZ_SECRETS_MAX_PLAINTEXT)
		return vz_err_set(e, VZ_ETOOBIG, "a secret of %zu bytes is over the %u-byte limit", len,
				  VZ_SECRETS_MAX_PLAINTEXT);
	size_t csize = vz_secrets_chunk_size(k), ksize = (size_t)EVP_PKEY_get_size(k->pk);
	if (csize == 0)
		return vz_err_set(e, VZ_EINVAL, "an RSA key of %d bits is too small for OAEP", vz_secrets_key_bits(k));
	EVP_PKEY_CTX *c = oaep_ctx(k, 1, e);
	json_t *arr = json_array();
	unsigned char *ct = malloc(ksize);
	int rc = 0;
	if (!c || !arr || !ct) {
		rc = c ? vz_err_set(e, VZ_ENOMEM, "out of memory") : VZ_ERROR;
		goto out;
	}
	size_t off = 0;
	do {
		size_t n = len - off < csize ? len - off : csize, outl = ksize;
		if (EVP_PKEY_encrypt(c, ct, &outl, (const unsigned char *)data + off, n) != 1) {
			rc = ossl_fail(e, VZ_ERROR, "RSA-OAEP encryption failed");
			goto out;
		}
		char *s = b64(ct, outl);
		if (!s || json_array_append_new(arr, json_string(s)) != 0) {
			free(s);
			rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
			goto out;
		}
		free(s);
		off += n;
	} while (off < len);
	*out = arr;
	arr = NULL;
out:
	EVP_PKEY_CTX_free(c);
	json_decref(arr);
	free(ct);
	return rc;
}

/* Base64 with whitespace skipped and padding honoured; like Python's b64decode without validate,
 * other characters are refused here rather than dropped (a typo should not decrypt to garbage). */
static int unb64(unsigned char **out, size_t *outlen, const char *s)
{
	size_t n = strlen(s);
	unsigned char *buf = malloc(n / 4 * 3 + 4);
	if (!buf)
		return VZ_ENOMEM;
	unsigned acc = 0;
	int bits = 0, pad = 0;
	size_t o = 0, digits = 0;
	for (const char *p = s; *p; p++) {
		int v;
		char ch = *p;
		if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
			continue;
		if (ch == '=') {
			pad++;
			continue;
		}
		if (pad) /* data after padding */
			goto bad;
		if (ch >= 'A' && ch <= 'Z')
			v = ch - 'A';
		else if (ch >= 'a' && ch <= 'z')
			v = ch - 'a' + 26;
		else if (ch >= '0' && ch <= '9')
			v = ch - '0' + 52;
		else if (ch == '+')
			v = 62;
		else if (ch == '/')
			v = 63;
		else
			goto bad;
		digits++;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if ((digits + (size_t)pad) % 4 != 0 || pad > 2)
		goto bad;
	*out = buf;
	*outlen = o;
	return 0;
bad:
	free(buf);
	return VZ_EINVAL;
}

int vz_secrets_chunk_check(const char *chunk, size_t *nbytes)
{
	unsigned char *buf = NULL;
	size_t n = 0;
	int rc = unb64(&buf, &n, chunk);
	free(buf);
	if (rc == 0 && nbytes)
		*nbytes = n;
	return rc == VZ_ENOMEM ? rc : rc ? VZ_EINVAL : 0;
}

int vz_secrets_key_lookup(vz_secrets_key **out, void *ctx, const char *connection, const char *project, vz_err *e)
{
	const vz_secrets_store *st = ctx;
	*out = NULL;
	if (!st || !connection)
		return VZ_ENOTFOUND;
	return vz_secrets_key_get(out, st->state_dir, connection, project, st->create, e);
}

static int utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			k = 1;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			k = 2;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (i + k >= n)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (p[i + j] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + j] & 0x3F);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += k + 1;
	}
	return 1;
}

int vz_secrets_decrypt(char **out, size_t *outlen, const vz_secrets_key *k, const char *const *chunks, size_t n,
		       vz_err *e)
{
	*out = NULL;
	*outlen = 0;
	if (!k->priv)
		return vz_err_set(e, VZ_EINVAL, "decrypting needs the project's private key, not its public key");
	if (n == 0)
		return vz_err_set(e, VZ_EINVAL, "an encrypted value needs at least one chunk");
	if (n > MAX_CHUNKS)
		return vz_err_set(e, VZ_ETOOBIG, "an encrypted value of %zu chunks is over the limit of %d", n, MAX_CHUNKS);
	size_t ksize = (size_t)EVP_PKEY_get_size(k->pk);
	EVP_PKEY_CTX *c = oaep_ctx(k, 0, e);
	vz_buf plain = VZ_BUF_INIT(VZ_SECRETS_MAX_PLAINTEXT);
	unsigned char *pt = malloc(ksize), *ct = NULL;
	size_t ctlen = 0;
	int rc = 0;
	if (!c || !pt) {
		rc = c ? vz_err_set(e, VZ_ENOMEM, "out of memory") : VZ_ERROR;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		free(ct);
		ct = NULL;
		rc = unb64(&ct, &ctlen, chunks[i]);
		if (rc == VZ_ENOMEM) {
			rc = vz_err_set(e, rc, "out of memory");
			goto out;
		}
		if (rc) {
			rc = vz_err_set(e, VZ_EINVAL, "chunk %zu of %zu is not base64", i + 1, n);
			goto out;
		}
		if (ctlen != ksize) {
			rc = vz_err_set(e, VZ_EINVAL, "chunk %zu of %zu holds %zu bytes, not the %zu of a %d-bit key "
						      "(encrypted for another key, or cut)", i + 1, n, ctlen, ksize,
					vz_secrets_key_bits(k));
			goto out;
		}
		size_t ptlen = ksize;
		if (EVP_PKEY_decrypt(c, pt, &ptlen, ct, ctlen) != 1) {
			ERR_clear_error(); /* OpenSSL's reason would only say "oaep decoding error" */
			rc = vz_err_set(e, VZ_EINVAL, "chunk %zu of %zu does not decrypt with the project's key "
						      "(encrypted for another project's key, or corrupted)", i + 1, n);
			goto out;
		}
		vz_buf_add(&plain, pt, ptlen);
		OPENSSL_cleanse(pt, ksize);
		if (plain.failed) {
			rc = plain.failed == VZ_ETOOBIG
				     ? vz_err_set(e, VZ_ETOOBIG, "the decrypted value is over %u bytes", VZ_SECRETS_MAX_PLAINTEXT)
				     : vz_err_set(e, VZ_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (!utf8_valid((const unsigned char *)vz_buf_cstr(&plain), plain.len)) {
		rc = vz_err_set(e, VZ_EINVAL, "the decrypted value is not UTF-8 text");
		goto out;
	}
	*outlen = plain.len;
	*out = plain.ptr ? vz_buf_detach(&plain) : vz_xstrdup("");
	if (!*out)
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
out:
	EVP_PKEY_CTX_free(c);
	if (pt)
		OPENSSL_cleanse(pt, ksize);
	free(pt);
	free(ct);
	if (plain.ptr)
		OPENSSL_cleanse(plain.ptr, plain.alloc);
	vz_buf_free(&plain);
	return rc;
}

int vz_secrets_format_yaml(char **out, const char *name, const char *field, const json_t *chunks, vz_err *e)
{
	*out = NULL;
	vz_buf b = VZ_BUF_INIT(64u * 1024 * 1024);
	vz_buf_printf(&b, "- secret:\n    name: %s\n    data:\n      %s: !encrypted/pkcs1-oaep\n",
		      name ? name : "<name>", field ? field : "<fieldname>");
	size_t i;
	const json_t *c;
	/* textwrap.TextWrapper(width=79, initial_indent=8 spaces, subsequent_indent=10) on "- " + chunk:
	 * base64 has no spaces, so every line but the last is filled to 79 columns */
	json_array_foreach(chunks, i, c) {
		const char *s = json_string_value(c);
		size_t n = s ? strlen(s) : 0, off = 0;
		vz_buf_puts(&b, "        - ");
		size_t room = 79 - 10;
		do {
			size_t take = n - off < room ? n - off : room;
			vz_buf_add(&b, s + off, take);
			vz_buf_putc(&b, '\n');
			off += take;
			if (off < n)
				vz_buf_puts(&b, "          ");
			room = 79 - 10;
		} while (off < n);
	}
	if (b.failed) {
		int rc = b.failed;
		vz_buf_free(&b);
		return vz_err_set(e, rc, "out of memory");
	}
	*out = vz_buf_detach(&b);
	return 0;
}

void vz_secrets_wipe(char *p, size_t n)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, n);
	free(p);
}
