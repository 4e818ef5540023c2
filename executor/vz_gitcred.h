/* vz_gitcred: what the repository cache needs to fetch over ssh:// and https:// with libgit2:
 * a connection's credentials (taken from the executor's own site configuration by connection
 * name, never from the queue), libgit2 callbacks that hand them out a bounded number of times,
 * the ssh host key checked against known_hosts, the TLS certificate checked against a CA file,
 * and the translation of a failed transfer into a vz error saying what to fix. */
#ifndef VZ_GITCRED_H
#define VZ_GITCRED_H

#include <git2.h>

#include "vz_config.h"
#include "vz_err.h"

/* A connection's credentials. Strings are borrowed; every field is optional. Paths absolute
 * (the site configuration resolves them). Secrets are read when a server asks for them. */
typedef struct vz_repo_cred {
	const char *connection;    /* the connection's name, for messages */
	const char *user;          /* ssh login / https user; a user in the URL wins for ssh */
	const char *ssh_key;       /* ssh: private key file (no passphrase) */
	const char *known_hosts;   /* ssh: known_hosts file; required for ssh URLs */
	const char *password_file; /* https: file holding the password or token */
	const char *password_env;  /* https: name of an environment variable holding it */
	const char *ca_file;       /* https: PEM CA certificates; when set, the only ones trusted */
} vz_repo_cred;

/* Fills out with c's credentials (borrowed from c; c may be NULL: all unset). */
void vz_repo_cred_from_conf(vz_repo_cred *out, const vz_conf_connection *c);

typedef enum {
	VZ_GITURL_LOCAL = 1, /* a path or file:// */
	VZ_GITURL_SSH,       /* ssh://[user@]host[:port]/path or scp-like [user@]host:path */
	VZ_GITURL_HTTPS,
	VZ_GITURL_HTTP,
	VZ_GITURL_OTHER      /* git:// and anything else libgit2 may know */
} vz_giturl_kind;

typedef struct vz_giturl {
	vz_giturl_kind kind;
	char user[128];      /* "" when the URL names none */
	char host[256];      /* without [] around an IPv6 address */
	int port;            /* the URL's, or the scheme's default (22, 443, 80); 0 for local */
} vz_giturl;

/* Classifies and splits a repository URL. VZ_EINVAL for a malformed ssh/http(s) authority. */
int vz_giturl_parse(vz_giturl *out, const char *url, vz_err *e);

typedef struct vz_gitcred vz_gitcred;

/* State for one remote operation on url. Checks up front what can be checked without the
 * network: an ssh URL needs known_hosts and ssh_key, named files must be readable (VZ_EINVAL,
 * naming the connection and the key to set). cred may be NULL (local and anonymous https).
 * *out freed with vz_gitcred_free. */
int vz_gitcred_new(vz_gitcred **out, const char *url, const vz_repo_cred *cred, vz_err *e);

/* Points cb's credentials and certificate_check callbacks at g, for one libgit2 call that may
 * connect (connect, fetch). g must outlive the call. Within the call credentials are given at
 * most once per kind: a refused key or password fails with VZ_EAUTH instead of being offered
 * again; the next call gets a fresh allowance. */
void vz_gitcred_callbacks(vz_gitcred *g, git_remote_callbacks *cb);

/* Translates the failure of a libgit2 remote call (grc: what it returned) into e, once:
 * what a callback recorded (VZ_EHOSTKEY with the SHA256 fingerprint, VZ_EAUTH, VZ_EINVAL),
 * else GIT_ECERTIFICATE -> VZ_EHOSTKEY, GIT_EAUTH -> VZ_EAUTH, a network, ssh, http or TLS
 * error -> VZ_ECONNECT, anything else -> fallback. what: "cannot read repository X". Returns
 * the code set. */
int vz_gitcred_fail(vz_gitcred *g, int grc, int fallback, vz_err *e, const char *what);

/* How many times the transport reached the server's host key or certificate check (one per
 * ssh connection or TLS handshake). For tests and logs. */
int vz_gitcred_handshakes(const vz_gitcred *g);

void vz_gitcred_free(vz_gitcred *g);

#endif
