/* vz_gitcred: credentials, host key and certificate checks for libgit2 fetches; see vz_gitcred.h. */
#include "vz_gitcred.h"

#include <errno.h>
#include <libssh2.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vz_buf.h"
#include "vz_knownhosts.h"
#include "vz_log.h"
#include "vz_util.h"

#define PASSWORD_MAX (64 * 1024)
#define CRED_CALLS_MAX 4 /* username + key, or one password, with room to spare; never a loop */

struct vz_gitcred {
	const char *url;
	vz_giturl u;
	const vz_repo_cred *cred; /* may be NULL */
	char conn[160];           /* "connection 'x'" or "the repository", for messages */
	int cred_calls, key_tries, pass_tries;
	int handshakes;
	vz_err err;               /* what a callback found; wins over libgit2's message */
};

void vz_repo_cred_from_conf(vz_repo_cred *out, const vz_conf_connection *c)
{
	memset(out, 0, sizeof(*out));
	if (!c)
		return;
	out->connection = c->name;
	out->user = c->user;
	out->ssh_key = c->ssh_key;
	out->known_hosts = c->known_hosts;
	out->password_file = c->password_file;
	out->password_env = c->password_env;
	out->ca_file = c->ca_file;
}

/* ---- URLs ---- */

/* [user@]host[:port] of length n into out; default_port when none. */
static int parse_authority(vz_giturl *out, const char *a, size_t n, int default_port, vz_err *e)
{
	const char *at = memchr(a, '@', n);
	if (at) {
		size_t ul = (size_t)(at - a);
		const char *colon = memchr(a, ':', ul);
		if (colon)
			ul = (size_t)(colon - a); /* user:password@ -- the password part is ignored */
		if (ul >= sizeof(out->user))
			return vz_err_set(e, VZ_EINVAL, "the user name in repository URL is too long");
		memcpy(out->user, a, ul);
		out->user[ul] = '\0';
		n -= (size_t)(at + 1 - a);
		a = at + 1;
	}
	const char *hs = a, *he, *rest;
	if (n > 0 && a[0] == '[') {
		const char *rb = memchr(a, ']', n);
		if (!rb)
			return vz_err_set(e, VZ_EINVAL, "repository URL has an unclosed '[' in its host");
		hs = a + 1;
		he = rb;
		rest = rb + 1;
	} else {
		const char *colon = memchr(a, ':', n);
		he = colon ? colon : a + n;
		rest = he;
	}
	size_t hl = (size_t)(he - hs);
	if (hl == 0 || hl >= sizeof(out->host))
		return vz_err_set(e, VZ_EINVAL, "repository URL has %s host", hl ? "too long a" : "no");
	memcpy(out->host, hs, hl);
	out->host[hl] = '\0';
	out->port = default_port;
	size_t rl = (size_t)(a + n - rest);
	if (rl > 0) {
		if (rest[0] != ':' || rl < 2 || rl > 6)
			return vz_err_set(e, VZ_EINVAL, "repository URL has a bad port after host %s", out->host);
		int p = 0;
		for (size_t i = 1; i < rl; i++) {
			if (rest[i] < '0' || rest[i] > '9')
				return vz_err_set(e, VZ_EINVAL, "repository URL has a bad port after host %s",
						  out->host);
			p = p * 10 + (rest[i] - '0');
		}
		if (p < 1 || p > 65535)
			return vz_err_set(e, VZ_EINVAL, "repository URL port %d is out of 1..65535", p);
		out->port = p;
	}
	return 0;
}

int vz_giturl_parse(vz_giturl *out, const char *url, vz_err *e)
{
	static const struct { const char *prefix; vz_giturl_kind kind; int port; } schemes[] = {
		{ "ssh://", VZ_GITURL_SSH, 22 },     { "git+ssh://", VZ_GITURL_SSH, 22 },
		{ "ssh+git://", VZ_GITURL_SSH, 22 }, { "https://", VZ_GITURL_HTTPS, 443 },
		{ "http://", VZ_GITURL_HTTP, 80 },   { "file://", VZ_GITURL_LOCAL, 0 },
	};
	memset(out, 0, sizeof(*out));
	if (!url || !*url)
		return vz_err_set(e, VZ_EINVAL, "empty repository URL");
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (!vz_startswith(url, schemes[i].prefix))
			continue;
		out->kind = schemes[i].kind;
		if (out->kind == VZ_GITURL_LOCAL)
			return 0;
		const char *a = url + strlen(schemes[i].prefix);
		size_t n = strcspn(a, "/?#");
		int rc = parse_authority(out, a, n, schemes[i].port, e);
		if (rc)
			vz_err_prefix(e, "%s", url);
		return rc;
	}
	if (strstr(url, "://")) {
		out->kind = VZ_GITURL_OTHER;
		return 0;
	}
	/* scp-like user@host:path -- a ':' before any '/', as git reads it */
	const char *colon = strchr(url, ':'), *slash = strchr(url, '/');
	if (url[0] != '/' && url[0] != '.' && colon && (!slash || colon < slash)) {
		out->kind = VZ_GITURL_SSH;
		int rc = parse_authority(out, url, (size_t)(colon - url), 22, e);
		if (rc)
			vz_err_prefix(e, "%s", url);
		return rc;
	}
	out->kind = VZ_GITURL_LOCAL;
	return 0;
}

/* ---- state ---- */

int vz_gitcred_new(vz_gitcred **out, const char *url, const vz_repo_cred *cred, vz_err *e)
{
	vz_gitcred *g = vz_xcalloc(1, sizeof(*g));
	int rc = 0;
	*out = NULL;
	g->url = url;
	g->cred = cred;
	if (cred && cred->connection)
		snprintf(g->conn, sizeof(g->conn), "connection '%s'", cred->connection);
	else
		vz_strlcpy(g->conn, "the repository's connection", sizeof(g->conn));
	if ((rc = vz_giturl_parse(&g->u, url, e)))
		goto out;
	if (g->u.kind == VZ_GITURL_SSH) {
		if (!cred || !cred->known_hosts) {
			rc = vz_err_set(e, VZ_EINVAL, "%s is an ssh repository but %s has no 'known_hosts' in this "
					"executor's site configuration; host keys are always checked: set it to a "
					"known_hosts file holding %s's key", url, g->conn, g->u.host);
			goto out;
		}
		if (!cred->ssh_key) {
			rc = vz_err_set(e, VZ_EINVAL, "%s is an ssh repository but %s has no 'ssh_key' in this "
					"executor's site configuration: set it to the private key to log in with",
					url, g->conn);
			goto out;
		}
		if (access(cred->ssh_key, R_OK) != 0) {
			rc = vz_err_set(e, VZ_EINVAL, "%s: cannot read ssh_key %s: %s", g->conn, cred->ssh_key,
					strerror(errno));
			goto out;
		}
	}
	if (cred && cred->ca_file && (g->u.kind == VZ_GITURL_HTTPS) && access(cred->ca_file, R_OK) != 0) {
		rc = vz_err_set(e, VZ_EINVAL, "%s: cannot read ca_file %s: %s", g->conn, cred->ca_file,
				strerror(errno));
		goto out;
	}
	*out = g;
	g = NULL;
out:
	free(g);
	return rc;
}

void vz_gitcred_free(vz_gitcred *g)
{
	free(g);
}

int vz_gitcred_handshakes(const vz_gitcred *g)
{
	return g ? g->handshakes : 0;
}

/* ---- credentials ---- */

/* The password or token, in a new string the caller wipes and frees; NULL with g->err set. */
static char *read_password(vz_gitcred *g)
{
	const vz_repo_cred *c = g->cred;
	char *pw = NULL;
	if (c->password_file) {
		vz_buf b = VZ_BUF_INIT(PASSWORD_MAX);
		vz_err fe = { 0 };
		if (vz_read_file(c->password_file, PASSWORD_MAX, &b, &fe) != 0) {
			vz_err_set(&g->err, VZ_EINVAL, "%s: cannot read password_file: %s", g->conn, vz_err_msg(&fe));
		} else {
			size_t n = b.len;
			while (n > 0 && (b.ptr[n - 1] == '\n' || b.ptr[n - 1] == '\r'))
				n--;
			if (n == 0 || memchr(b.ptr, '\0', n))
				vz_err_set(&g->err, VZ_EINVAL, "%s: password_file %s is empty or holds a NUL byte",
					   g->conn, c->password_file);
			else if (!(pw = strndup(b.ptr, n)))
				abort();
		}
		if (b.ptr)
			explicit_bzero(b.ptr, b.len);
		vz_buf_free(&b);
	} else if (c->password_env) {
		const char *v = getenv(c->password_env);
		if (!v || !*v)
			vz_err_set(&g->err, VZ_EINVAL, "%s: the environment variable %s (password_env) is not set "
				   "in the executor's environment", g->conn, c->password_env);
		else
			pw = vz_xstrdup(v);
	}
	return pw;
}

static int cred_ssh(vz_gitcred *g, git_credential **out, const char *url_user, unsigned int allowed)
{
	const char *user = url_user && *url_user ? url_user : g->cred ? g->cred->user : NULL;
	if (!user || !*user)
		return vz_err_set(&g->err, VZ_EINVAL, "%s: no user to log in to %s as: put it in the URL "
				  "(ssh://USER@%s/...) or set 'user' on the connection", g->conn, g->u.host,
				  g->u.host);
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	if (!(allowed & GIT_CREDENTIAL_SSH_KEY))
		return vz_err_set(&g->err, VZ_EAUTH, "%s: %s:%d does not offer public key authentication to "
				  "user %s", g->conn, g->u.host, g->u.port, user);
	if (g->key_tries++ > 0)
		return vz_err_set(&g->err, VZ_EAUTH, "%s: %s:%d refused the key %s for user %s; add its public "
				  "half to that user's authorized_keys on the server, or set the right "
				  "ssh_key", g->conn, g->u.host, g->u.port, g->cred->ssh_key, user);
	return git_credential_ssh_key_new(out, user, NULL, g->cred->ssh_key, NULL);
}

static int cred_http(vz_gitcred *g, git_credential **out, const char *url_user, unsigned int allowed)
{
	const vz_repo_cred *c = g->cred;
	const char *user = c && c->user ? c->user : url_user && *url_user ? url_user : NULL;
	int has_pw = c && (c->password_file || c->password_env);
	if (!(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT))
		return vz_err_set(&g->err, VZ_EAUTH, "%s: %s asks for an authentication vinz does not "
				  "support (only user and password or token)", g->conn, g->u.host);
	if (!user || !has_pw)
		return vz_err_set(&g->err, VZ_EAUTH, "%s: %s asks for credentials; set 'user' and "
				  "'password_file' or 'password_env' on the connection in the executor's site "
				  "configuration", g->conn, g->u.host);
	if (g->u.kind != VZ_GITURL_HTTPS)
		return vz_err_set(&g->err, VZ_EINVAL, "%s: refusing to send the password for %s over plain "
				  "http; use an https:// URL", g->conn, g->u.host);
	if (g->pass_tries++ > 0)
		return vz_err_set(&g->err, VZ_EAUTH, "%s: %s refused the password of user %s (from %s %s); "
				  "check the user and the password or token", g->conn, g->u.host, user,
				  c->password_file ? "password_file" : "password_env",
				  c->password_file ? c->password_file : c->password_env);
	char *pw = read_password(g);
	if (!pw)
		return g->err.code;
	int rc = git_credential_userpass_plaintext_new(out, user, pw);
	explicit_bzero(pw, strlen(pw));
	free(pw);
	return rc;
}

static int on_credentials(git_credential **out, const char *url, const char *url_user, unsigned int allowed,
			  void *payload)
{
	vz_gitcred *g = payload;
	int rc;
	if (g->err.code)
		return GIT_EUSER;
	if (++g->cred_calls > CRED_CALLS_MAX)
		rc = vz_err_set(&g->err, VZ_EAUTH, "%s: %s keeps asking for credentials; giving up after %d",
				g->conn, g->u.host, CRED_CALLS_MAX);
	else if (g->u.kind == VZ_GITURL_SSH)
		rc = cred_ssh(g, out, url_user, allowed);
	else if (g->u.kind == VZ_GITURL_HTTPS || g->u.kind == VZ_GITURL_HTTP)
		rc = cred_http(g, out, url_user, allowed);
	else
		rc = vz_err_set(&g->err, VZ_EAUTH, "%s: %s asks for credentials vinz cannot give for this "
				"kind of URL", g->conn, url);
	return rc < 0 && g->err.code ? GIT_EUSER : rc;
}

/* ---- host keys ---- */

static int raw_to_libssh2(git_cert_ssh_raw_type_t t)
{
	switch (t) {
	case GIT_CERT_SSH_RAW_TYPE_RSA: return LIBSSH2_HOSTKEY_TYPE_RSA;
	case GIT_CERT_SSH_RAW_TYPE_DSS: return LIBSSH2_HOSTKEY_TYPE_DSS;
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256: return LIBSSH2_HOSTKEY_TYPE_ECDSA_256;
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384: return LIBSSH2_HOSTKEY_TYPE_ECDSA_384;
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521: return LIBSSH2_HOSTKEY_TYPE_ECDSA_521;
	case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519: return LIBSSH2_HOSTKEY_TYPE_ED25519;
	default: return -1;
	}
}

static int check_hostkey(vz_gitcred *g, const git_cert_hostkey *hk, const char *host)
{
	const vz_kh_type *kt = (hk->type & GIT_CERT_SSH_RAW) && hk->hostkey ? vz_kh_type_of(raw_to_libssh2(hk->raw_type)) : NULL;
	LIBSSH2_SESSION *s = NULL;
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	const char *file = g->cred->known_hosts;
	char fp[64], name[300];
	int port = g->u.port, skipped = 0, rc = 0;
	vz_err le = { 0 };

	if (port == 22)
		snprintf(name, sizeof(name), "%s", host);
	else
		snprintf(name, sizeof(name), "[%s]:%d", host, port);
	if (!kt) {
		rc = vz_err_set(&g->err, VZ_EHOSTKEY, "%s: %s presented no host key vinz can check (type %d)",
				g->conn, name, (int)hk->raw_type);
		goto out;
	}
	vz_kh_fingerprint(hk->hostkey, hk->hostkey_len, fp);
	if (!(s = libssh2_session_init()) || !(kh = libssh2_knownhost_init(s))) {
		rc = vz_err_set(&g->err, VZ_ENOMEM, "%s: cannot set up the host key check", g->conn);
		goto out;
	}
	if (vz_kh_load_file(kh, file, &skipped, &le) != 0) {
		rc = vz_err_set(&g->err, le.code, "%s: %s", g->conn, vz_err_msg(&le));
		goto out;
	}
	if (skipped)
		vz_debug("%s: skipped %d known_hosts lines libssh2 cannot parse in %s", g->conn, skipped, file);
	switch (libssh2_knownhost_checkp(kh, host, port, hk->hostkey, hk->hostkey_len,
					 LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | kt->kh_bit, NULL)) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		rc = vz_err_set(&g->err, VZ_EHOSTKEY, "%s: HOST KEY CHANGED for git server %s: it presented %s "
				"key %s, which differs from the key recorded for it in %s. Someone may be "
				"intercepting the connection, or the server was reinstalled: check the "
				"fingerprint with the server's administrator, then replace the old entry "
				"(ssh-keygen -R '%s' -f %s; ssh-keyscan -p %d -t %s %s >> %s)", g->conn, name,
				kt->label, fp, file, name, file, port, kt->scan, host, file);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		rc = vz_err_set(&g->err, VZ_EHOSTKEY, "%s: the host key of git server %s is not known: it "
				"presented %s key %s, and %s has no %s key for it. If that fingerprint is the "
				"server's (ask its administrator), add it: ssh-keyscan -p %d -t %s %s >> %s, and "
				"check it with ssh-keygen -lf %s", g->conn, name, kt->label, fp, file,
				kt->label, port, kt->scan, host, file, file);
		break;
	default:
		rc = vz_err_set(&g->err, VZ_EHOSTKEY, "%s: cannot check the host key of %s against %s",
				g->conn, name, file);
		break;
	}
out:
	if (kh)
		libssh2_knownhost_free(kh);
	if (s)
		libssh2_session_free(s);
	return rc;
}

/* ---- TLS certificates ---- */

static int is_ip(const char *host)
{
	ASN1_OCTET_STRING *a = a2i_IPADDRESS(host);
	if (!a)
		return 0;
	ASN1_OCTET_STRING_free(a);
	return 1;
}

/* Verifies the server's certificate (DER) for host against ca_file alone. The TLS handshake has
 * already proved that the server holds the certificate's key; this decides whether to trust it. */
static int check_x509(vz_gitcred *g, const git_cert_x509 *xc, const char *host)
{
	const char *ca = g->cred->ca_file;
	const unsigned char *p = xc->data;
	X509 *cert = d2i_X509(NULL, &p, (long)xc->len);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char fp[100] = "";
	int rc = 0;

	if (!store || !ctx) {
		rc = vz_err_set(&g->err, VZ_ENOMEM, "%s: cannot set up the certificate check", g->conn);
		goto out;
	}
	if (!cert) {
		rc = vz_err_set(&g->err, VZ_EHOSTKEY, "%s: %s sent a certificate that cannot be parsed", g->conn,
				host);
		goto out;
	}
	if (X509_digest(cert, EVP_sha256(), md, &mdlen) == 1)
		for (unsigned int i = 0; i < mdlen && i * 3 + 3 < sizeof(fp); i++)
			snprintf(fp + i * 3, sizeof(fp) - i * 3, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
	if (X509_STORE_load_locations(store, ca, NULL) != 1) {
		rc = vz_err_set(&g->err, VZ_EINVAL, "%s: ca_file %s holds no PEM certificate vinz can read",
				g->conn, ca);
		goto out;
	}
	if (X509_STORE_CTX_init(ctx, store, cert, NULL) != 1) {
		rc = vz_err_set(&g->err, VZ_ENOMEM, "%s: cannot set up the certificate check", g->conn);
		goto out;
	}
	X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
	/* an intermediate CA in ca_file is enough, as curl's --cacert allows */
	X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_SSL_SERVER);
	if (is_ip(host))
		X509_VERIFY_PARAM_set1_ip_asc(vp, host);
	else
		X509_VERIFY_PARAM_set1_host(vp, host, 0);
	if (X509_verify_cert(ctx) != 1) {
		int err = X509_STORE_CTX_get_error(ctx);
		rc = vz_err_set(&g->err, VZ_EHOSTKEY, "%s: the TLS certificate of %s (SHA256 %s) is not trusted: "
				"%s (checked against ca_file %s only); set ca_file to the CA that issued the "
				"server's certificate", g->conn, host, fp, X509_verify_cert_error_string(err), ca);
	}
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(cert);
	return rc;
}

static int on_certificate(git_cert *cert, int valid, const char *host, void *payload)
{
	vz_gitcred *g = payload;
	int rc;
	g->handshakes++;
	if (g->err.code)
		return GIT_EUSER;
	if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
		if (!g->cred || !g->cred->known_hosts) /* vz_gitcred_new refuses this; never accept */
			rc = vz_err_set(&g->err, VZ_EHOSTKEY, "%s: no known_hosts to check %s's host key", g->conn,
					host);
		else
			rc = check_hostkey(g, (const git_cert_hostkey *)cert, host);
	} else if (cert->cert_type == GIT_CERT_X509 && g->cred && g->cred->ca_file) {
		rc = check_x509(g, (const git_cert_x509 *)cert, host);
	} else {
		/* no ca_file: libgit2's own verification against the system CAs decides */
		(void)valid;
		return GIT_PASSTHROUGH;
	}
	return rc ? GIT_EUSER : 0;
}

void vz_gitcred_callbacks(vz_gitcred *g, git_remote_callbacks *cb)
{
	/* each libgit2 call that may connect gets its own allowance */
	g->cred_calls = g->key_tries = g->pass_tries = 0;
	cb->credentials = on_credentials;
	cb->certificate_check = on_certificate;
	cb->payload = g;
}

/* ---- errors ---- */

int vz_gitcred_fail(vz_gitcred *g, int grc, int fallback, vz_err *e, const char *what)
{
	const git_error *ge = git_error_last();
	const char *gmsg = ge && ge->message ? ge->message : "unknown error";
	int klass = ge ? ge->klass : 0;
	if (g && g->err.code)
		return vz_err_set(e, g->err.code, "%s: %s", what, g->err.msg);
	if (grc == GIT_ECERTIFICATE) {
		if (g && g->u.kind == VZ_GITURL_HTTPS)
			return vz_err_set(e, VZ_EHOSTKEY, "%s: the server's TLS certificate is not trusted (%s); "
					  "for a private CA set 'ca_file' on %s", what, gmsg, g->conn);
		return vz_err_set(e, VZ_EHOSTKEY, "%s: the server's identity cannot be checked: %s", what, gmsg);
	}
	if (grc == GIT_EAUTH)
		return vz_err_set(e, VZ_EAUTH, "%s: authentication failed: %s", what, gmsg);
	if (klass == GIT_ERROR_NET || klass == GIT_ERROR_SSH || klass == GIT_ERROR_HTTP ||
	    klass == GIT_ERROR_SSL)
		return vz_err_set(e, VZ_ECONNECT, "%s: %s", what, gmsg);
	return vz_err_set(e, fallback, "git: %s: %s", what, gmsg);
}
