/* vz_test_githttp: a real HTTPS git server for tests: libmicrohttpd (GnuTLS) on 127.0.0.1 on a
 * free port, HTTP basic auth, and git's own smart-HTTP CGI (git http-backend) run for every
 * request. It makes its own CA and a server certificate signed by it (openssl), so clients can be
 * tested with the right CA, another CA, or none. */
#ifndef VZ_TEST_GITHTTP_H
#define VZ_TEST_GITHTTP_H

typedef struct vz_test_githttp vz_test_githttp;

/* Serves the bare repositories under root (https://127.0.0.1:PORT/NAME.git) to user/password.
 * Returns 0, or -1 after printing why to stderr. *out must be given to vz_test_githttp_stop. */
int vz_test_githttp_start(vz_test_githttp **out, const char *root, const char *user, const char *password);

/* Stops the server (waits for running requests), removes its temp directory. Accepts NULL. */
void vz_test_githttp_stop(vz_test_githttp *h);

int vz_test_githttp_port(const vz_test_githttp *h);
const char *vz_test_githttp_ca(const vz_test_githttp *h);  /* PEM of the CA that signed the server */
const char *vz_test_githttp_dir(const vz_test_githttp *h); /* its temp directory */

/* HTTP requests that reached the server (after the TLS handshake), and those of them that passed
 * authentication and ran git http-backend. */
int vz_test_githttp_requests(const vz_test_githttp *h);
int vz_test_githttp_served(const vz_test_githttp *h);

/* Writes a new self-signed CA certificate, unrelated to any server, to path. 0 or -1. */
int vz_test_githttp_other_ca(const char *path);

#endif
