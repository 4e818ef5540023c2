/* vz_knownhosts: known_hosts loading and host key names; see vz_knownhosts.h. */
#include "vz_knownhosts.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>

#include "vz_buf.h"
#include "vz_util.h"

#define KNOWN_HOSTS_MAX (4 * 1024 * 1024)

const vz_kh_type vz_kh_types[VZ_KH_NTYPES] = {
	{ LIBSSH2_HOSTKEY_TYPE_ED25519, "ED25519", "ed25519", "ssh-ed25519",
	  LIBSSH2_KNOWNHOST_KEY_ED25519 },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_256, "ECDSA", "ecdsa", "ecdsa-sha2-nistp256",
	  LIBSSH2_KNOWNHOST_KEY_ECDSA_256 },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_384, "ECDSA", "ecdsa", "ecdsa-sha2-nistp384",
	  LIBSSH2_KNOWNHOST_KEY_ECDSA_384 },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_521, "ECDSA", "ecdsa", "ecdsa-sha2-nistp521",
	  LIBSSH2_KNOWNHOST_KEY_ECDSA_521 },
	{ LIBSSH2_HOSTKEY_TYPE_RSA, "RSA", "rsa", "rsa-sha2-512,rsa-sha2-256,ssh-rsa",
	  LIBSSH2_KNOWNHOST_KEY_SSHRSA },
	{ LIBSSH2_HOSTKEY_TYPE_DSS, "DSA", "dsa", "ssh-dss", LIBSSH2_KNOWNHOST_KEY_SSHDSS },
};

const vz_kh_type *vz_kh_type_of(int hostkey_type)
{
	for (size_t i = 0; i < VZ_KH_NTYPES; i++)
		if (vz_kh_types[i].hostkey_type == hostkey_type)
			return &vz_kh_types[i];
	return NULL;
}

int vz_kh_add_text(LIBSSH2_KNOWNHOSTS *kh, const char *text)
{
	vz_buf line = VZ_BUF_INIT(16384);
	int skipped = 0;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		/* libssh2 1.10 drops the last character of a line as if it were the newline: always
		 * give it one */
		vz_buf_reset(&line);
		vz_buf_add(&line, p, len);
		vz_buf_putc(&line, '\n');
		if (len > 0 && (line.failed || libssh2_knownhost_readline(kh, line.ptr, line.len,
									  LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0))
			skipped++;
		p += len + (nl ? 1 : 0);
	}
	vz_buf_free(&line);
	return skipped;
}

int vz_kh_load_file(LIBSSH2_KNOWNHOSTS *kh, const char *path, int *skipped, vz_err *e)
{
	vz_buf file = VZ_BUF_INIT(KNOWN_HOSTS_MAX);
	struct stat st;
	int rc = 0, n = 0;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT)
			rc = vz_err_set(e, VZ_EINVAL, "cannot read known_hosts %s: %s", path, strerror(errno));
		goto out;
	}
	if ((rc = vz_read_file(path, KNOWN_HOSTS_MAX, &file, e)) != 0) {
		vz_err_prefix(e, "known_hosts");
		goto out;
	}
	n = vz_kh_add_text(kh, vz_buf_cstr(&file));
out:
	if (skipped)
		*skipped = n;
	vz_buf_free(&file);
	return rc;
}

void vz_kh_b64_nopad(const unsigned char *in, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i = 0;
	for (; i + 2 < n; i += 3) {
		*out++ = t[in[i] >> 2];
		*out++ = t[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*out++ = t[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		*out++ = t[in[i + 2] & 63];
	}
	if (i + 1 == n) {
		*out++ = t[in[i] >> 2];
		*out++ = t[(in[i] & 3) << 4];
	} else if (i + 2 == n) {
		*out++ = t[in[i] >> 2];
		*out++ = t[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*out++ = t[(in[i + 1] & 15) << 2];
	}
	*out = '\0';
}

void vz_kh_fingerprint(const void *key, size_t len, char out[64])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	memcpy(out, "SHA256:", 8);
	if (EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		vz_strlcpy(out, "SHA256:?", 64);
		return;
	}
	vz_kh_b64_nopad(md, 32, out + 7);
}
