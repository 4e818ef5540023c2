/* vz_curve: CurveZMQ keys, server/client sockets and the ZAP handler; see vz_curve.h. */
#include "vz_curve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "vz_buf.h"
#include "vz_log.h"
#include "vz_util.h"

/* A whole small file as a NUL-terminated string (caller frees). */
static int read_text(const char *path, size_t max, char **out, vz_err *e)
{
	vz_buf b = VZ_BUF_INIT(max);
	int rc = vz_read_file(path, max, &b, e);
	if (!rc) {
		vz_buf_cstr(&b);
		*out = vz_buf_detach(&b);
		if (!*out)
			*out = vz_xstrdup("");
	}
	vz_buf_free(&b);
	return rc;
}

int vz_curve_available(void)
{
	return zmq_has("curve");
}

static int z85_ok(const char *s, size_t n)
{
	if (n != VZ_CURVE_KEYLEN)
		return 0;
	uint8_t bin[32];
	char tmp[VZ_CURVE_KEYLEN + 1];
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return zmq_z85_decode(bin, tmp) != NULL;
}

int vz_curve_keygen(const char *path, vz_curve_keypair *out, vz_err *e)
{
	vz_curve_keypair kp;
	if (!vz_curve_available())
		return vz_err_set(e, VZ_EINVAL, "this libzmq has no CURVE support (built without libsodium)");
	if (zmq_curve_keypair(kp.public_key, kp.secret_key) != 0)
		return vz_err_set(e, VZ_EIO, "cannot make a CURVE key pair: %s", zmq_strerror(zmq_errno()));
	char text[256];
	int n = snprintf(text, sizeof(text),
			 "# vinz CURVE key pair (vinz keygen); keep this file secret\npublic: %s\nsecret: %s\n", kp.public_key,
			 kp.secret_key);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return vz_err_set(e, VZ_EIO, "cannot create %s: %s%s", path, strerror(errno),
				  errno == EEXIST ? " (remove it first: an existing key is never overwritten)" : "");
	int ok = write(fd, text, (size_t)n) == n;
	ok = close(fd) == 0 && ok;
	if (!ok) {
		unlink(path);
		return vz_err_set(e, VZ_EIO, "cannot write %s", path);
	}
	size_t pl = strlen(path) + 5;
	char *pub = vz_xcalloc(1, pl);
	snprintf(pub, pl, "%s.pub", path);
	char line[64];
	snprintf(line, sizeof(line), "%s\n", kp.public_key);
	int rc = vz_write_file_atomic(pub, line, strlen(line), 0644, e);
	free(pub);
	if (rc) {
		unlink(path);
		return rc;
	}
	if (out)
		*out = kp;
	return 0;
}

/* The value of "name: VALUE" lines in a key file. */
static int field(const char *text, const char *name, char out[VZ_CURVE_KEYLEN + 1])
{
	size_t nl = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t n = strcspn(v, " \t\r\n");
			if (!z85_ok(v, n))
				return -1;
			memcpy(out, v, n);
			out[n] = '\0';
			return 0;
		}
	}
	return -1;
}

int vz_curve_load_keypair(vz_curve_keypair *out, const char *path, vz_err *e)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return vz_err_set(e, errno == ENOENT ? VZ_ENOTFOUND : VZ_EIO, "CURVE key %s: %s (make one with vinz keygen)", path,
				  strerror(errno));
	if (st.st_mode & 077)
		return vz_err_set(e, VZ_EINVAL, "CURVE key %s can be read by others (mode %03o); chmod 600 it", path,
				  (unsigned)(st.st_mode & 0777));
	char *text = NULL;
	int rc = read_text(path, 4096, &text, e);
	if (rc)
		return rc;
	if (field(text, "public", out->public_key) || field(text, "secret", out->secret_key))
		rc = vz_err_set(e, VZ_EINVAL, "CURVE key %s: expected 'public: KEY' and 'secret: KEY' lines with 40-character "
				"Z85 keys, as vinz keygen writes them", path);
	free(text);
	return rc;
}

int vz_curve_load_public(char out[VZ_CURVE_KEYLEN + 1], const char *key_or_path, vz_err *e)
{
	if (z85_ok(key_or_path, strlen(key_or_path))) {
		memcpy(out, key_or_path, VZ_CURVE_KEYLEN + 1);
		return 0;
	}
	char *text = NULL;
	int rc = read_text(key_or_path, 4096, &text, e);
	if (rc) {
		vz_err_prefix(e, "CURVE public key (neither a 40-character Z85 key nor a readable file)");
		return rc;
	}
	const char *v = text;
	while (*v == ' ' || *v == '\t' || *v == '\n')
		v++;
	size_t n = strcspn(v, " \t\r\n");
	if (!z85_ok(v, n))
		rc = vz_err_set(e, VZ_EINVAL, "%s holds no 40-character Z85 CURVE public key", key_or_path);
	else {
		memcpy(out, v, n);
		out[n] = '\0';
	}
	free(text);
	return rc;
}

int vz_endpoint_is_local(const char *ep)
{
	if (vz_startswith(ep, "inproc://") || vz_startswith(ep, "ipc://"))
		return 1;
	if (!vz_startswith(ep, "tcp://"))
		return 0;
	const char *h = ep + 6;
	/* a "source;" prefix names the local side of a connect: the host is after it */
	const char *semi = strchr(h, ';');
	if (semi)
		h = semi + 1;
	char host[128];
	size_t n;
	if (*h == '[') { /* [v6]:port */
		const char *close = strchr(h, ']');
		if (!close || (size_t)(close - h - 1) >= sizeof(host))
			return 0;
		n = (size_t)(close - h - 1);
		memcpy(host, h + 1, n);
	} else {
		const char *colon = strrchr(h, ':');
		if (!colon || (size_t)(colon - h) >= sizeof(host))
			return 0;
		n = (size_t)(colon - h);
		memcpy(host, h, n);
	}
	host[n] = '\0';
	if (strcmp(host, "localhost") == 0)
		return 1;
	unsigned char a[16];
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) == 1)
		return memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
	return 0;
}

/* ---- the ZAP handler ---- */

struct vz_curve_zap {
	void *sock;
	pthread_t thread;
	volatile int stop;
	uint8_t (*keys)[32];
	size_t nkeys;
};

static int key_listed(const vz_curve_zap *z, const uint8_t *k)
{
	for (size_t i = 0; i < z->nkeys; i++)
		if (memcmp(z->keys[i], k, 32) == 0)
			return 1;
	return 0;
}

static void *zap_main(void *arg)
{
	vz_curve_zap *z = arg;
	while (!z->stop) {
		zmq_pollitem_t it = { z->sock, 0, ZMQ_POLLIN, 0 };
		int n = zmq_poll(&it, 1, 200);
		if (n < 0 && zmq_errno() == ETERM)
			break;
		if (n <= 0)
			continue;
		/* version, request id, domain, address, identity, mechanism, credentials... */
		zmq_msg_t f[8];
		int nf = 0, more = 1;
		while (more && nf < 8) {
			zmq_msg_init(&f[nf]);
			if (zmq_msg_recv(&f[nf], z->sock, 0) < 0) {
				zmq_msg_close(&f[nf]);
				break;
			}
			more = zmq_msg_more(&f[nf]);
			nf++;
		}
		while (more) { /* drain an oversized request */
			zmq_msg_t x;
			zmq_msg_init(&x);
			if (zmq_msg_recv(&x, z->sock, 0) < 0)
				more = 0;
			else
				more = zmq_msg_more(&x);
			zmq_msg_close(&x);
		}
		const char *status = "400", *text = "refused";
		char who[64] = "";
		if (nf >= 7 && zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
		    zmq_msg_size(&f[6]) == 32) {
			const uint8_t *k = zmq_msg_data(&f[6]);
			zmq_z85_encode(who, k, 32);
			if (key_listed(z, k)) {
				status = "200";
				text = "OK";
			} else {
				text = "public key not listed";
			}
		} else {
			text = "only CURVE is accepted";
		}
		if (strcmp(status, "200") != 0) {
			char addr[64] = "";
			if (nf >= 4)
				snprintf(addr, sizeof(addr), "%.*s", (int)zmq_msg_size(&f[3]), (const char *)zmq_msg_data(&f[3]));
			vz_warn("scheduler: refused a connection from %s%s%s: %s", *addr ? addr : "an unknown address",
				*who ? " with key " : "", who, text);
		}
		/* reply: version, request id, status code, status text, user id, metadata */
		if (nf >= 2) {
			zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
			zmq_send(z->sock, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
			zmq_send(z->sock, status, 3, ZMQ_SNDMORE);
			zmq_send(z->sock, text, strlen(text), ZMQ_SNDMORE);
			zmq_send(z->sock, who, strlen(who), ZMQ_SNDMORE);
			zmq_send(z->sock, "", 0, 0);
		}
		for (int i = 0; i < nf; i++)
			zmq_msg_close(&f[i]);
	}
	return NULL;
}

static int load_authorized(vz_curve_zap *z, const char *path, vz_err *e)
{
	char *text = NULL;
	int rc = read_text(path, 1u << 20, &text, e);
	if (rc) {
		vz_err_prefix(e, "authorized executor keys");
		return rc;
	}
	int line = 0;
	for (char *p = text, *nl; p && *p && !rc; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		line++;
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		while (n && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		size_t kl = strcspn(p, " \t");
		if (kl > n)
			kl = n;
		/* Z85 has '#' among its characters: a line is a key when it starts with one */
		if (n == 0 || (*p == '#' && !z85_ok(p, kl)))
			continue;
		if (!z85_ok(p, kl)) {
			rc = vz_err_set(e, VZ_EINVAL, "%s:%d: not a 40-character Z85 public key (the .pub files vinz keygen "
					"writes hold one)", path, line);
			break;
		}
		char key[VZ_CURVE_KEYLEN + 1];
		memcpy(key, p, kl);
		key[kl] = '\0';
		z->keys = realloc(z->keys, (z->nkeys + 1) * sizeof(*z->keys));
		if (!z->keys)
			abort();
		zmq_z85_decode(z->keys[z->nkeys++], key);
	}
	free(text);
	return rc;
}

int vz_curve_zap_start(vz_curve_zap **out, void *zctx, const char *authorized_file, vz_err *e)
{
	*out = NULL;
	vz_curve_zap *z = vz_xcalloc(1, sizeof(*z));
	int rc = load_authorized(z, authorized_file, e);
	if (rc)
		goto fail;
	if (z->nkeys == 0)
		vz_warn("%s lists no executor keys: no executor can connect", authorized_file);
	z->sock = zmq_socket(zctx, ZMQ_REP);
	int linger = 0;
	if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_bind(z->sock, "inproc://zeromq.zap.01") != 0) {
		rc = vz_err_set(e, VZ_EIO, "cannot start the CURVE authenticator: %s", zmq_strerror(zmq_errno()));
		goto fail;
	}
	if (pthread_create(&z->thread, NULL, zap_main, z) != 0) {
		rc = vz_err_set(e, VZ_EIO, "cannot start the CURVE authenticator thread");
		goto fail;
	}
	*out = z;
	return 0;
fail:
	if (z->sock)
		zmq_close(z->sock);
	free(z->keys);
	free(z);
	return rc;
}

void vz_curve_zap_stop(vz_curve_zap *z)
{
	if (!z)
		return;
	z->stop = 1;
	pthread_join(z->thread, NULL);
	zmq_close(z->sock);
	free(z->keys);
	free(z);
}

int vz_curve_server(void *sock, const vz_curve_keypair *kp, vz_err *e)
{
	int one = 1;
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp->secret_key, VZ_CURVE_KEYLEN) != 0 ||
	    zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "vinz", 4) != 0)
		return vz_err_set(e, VZ_EIO, "cannot make the socket a CURVE server: %s", zmq_strerror(zmq_errno()));
	return 0;
}

int vz_curve_client(void *sock, const vz_curve_keypair *kp, const char *server_public, vz_err *e)
{
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_public, VZ_CURVE_KEYLEN) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, kp->public_key, VZ_CURVE_KEYLEN) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp->secret_key, VZ_CURVE_KEYLEN) != 0)
		return vz_err_set(e, VZ_EIO, "cannot make the socket a CURVE client: %s", zmq_strerror(zmq_errno()));
	return 0;
}
