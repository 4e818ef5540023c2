/* vz_test_sshd: a real OpenSSH sshd for tests, on 127.0.0.1 on a free port, in its own temp
 * directory with freshly generated ed25519 host and user keys, its own sshd_config and a
 * known_hosts entry for it. Logins go to a node user whose shell is /bin/sh: "vzdnode" (created
 * on first use) when running as root, the current user otherwise. Every start makes a new host
 * key, so starting a second server gives a second, different key (for changed-key tests). */
#ifndef VZ_TEST_SSHD_H
#define VZ_TEST_SSHD_H

#include <stdarg.h>

#include "vz_buf.h"
#include "vz_node.h"

typedef struct vz_test_sshd vz_test_sshd;

/* Starts sshd and waits (bounded) until it accepts connections. Returns 0, or -1 after printing
 * why to stderr (sshd's log included). *out must be given to vz_test_sshd_stop. */
int vz_test_sshd_start(vz_test_sshd **out);

/* As vz_test_sshd_start, and also lets in a second node user, "vzdsudo" (shell /bin/sh, created on
 * first use, same key), with passwordless sudo to any user for as long as this sshd runs: a sudoers
 * drop-in naming only that user, /etc/sudoers.d/vinz-test-sudo-<pid>-<n> (mode 0440, checked with
 * visudo -cf), removed by vz_test_sshd_stop; drop-ins of test processes that died without stopping
 * are removed at the next start. The first node user keeps no sudo rights. Root only, and needs sudo
 * (contrib/install-deps.sh); -1 after saying why otherwise. */
int vz_test_sshd_start_sudo(vz_test_sshd **out);

/* The sudo node user of a server from vz_test_sshd_start_sudo, else NULL. */
const char *vz_test_sshd_sudo_user(const vz_test_sshd *s);

/* Kills sshd, reaps it, removes its sudoers drop-in if any and the temp directory. Accepts NULL. */
void vz_test_sshd_stop(vz_test_sshd *s);

/* Accessors; strings are borrowed and live until vz_test_sshd_stop. */
int vz_test_sshd_port(const vz_test_sshd *s);
const char *vz_test_sshd_user(const vz_test_sshd *s);
const char *vz_test_sshd_key(const vz_test_sshd *s);         /* user private key */
const char *vz_test_sshd_known_hosts(const vz_test_sshd *s); /* holds this server's key */
const char *vz_test_sshd_dir(const vz_test_sshd *s);         /* the temp directory */
const char *vz_test_sshd_workdir(const vz_test_sshd *s);     /* writable by the node user */
const char *vz_test_sshd_host_pub(const vz_test_sshd *s);    /* host key .pub file */
const char *vz_test_sshd_host_key_line(const vz_test_sshd *s); /* "ssh-ed25519 AAAA..." */
const char *vz_test_sshd_log(const vz_test_sshd *s);         /* sshd -e output */

/* Fills spec for connecting to s as the node user (kind, host, port, user, key, known_hosts). */
void vz_test_sshd_spec(const vz_test_sshd *s, vz_node_spec *spec);

/* Writes a known_hosts file at path saying that s's address has key_line ("TYPE BASE64"), e.g.
 * another server's key. Returns 0 or -1. */
int vz_test_sshd_write_known_hosts(const vz_test_sshd *s, const char *key_line, const char *path);

/* Generates an ed25519 key pair without passphrase at path (and path.pub). 0 or -1. */
int vz_test_sshd_keygen(const char *path);

/* Runs argv (PATH lookup, no shell) with stdin from /dev/null, stdout into out (may be NULL),
 * stderr inherited. Returns the exit status, 128+signal, or -1 if it could not run. */
int vz_test_sshd_run(const char *const argv[], vz_buf *out);
/* Runs the printf-formatted command with /bin/sh -ec here (the executor side) through
 * vz_test_sshd_run, stdout into out (may be NULL). 0, or -1 after printing the exit status and
 * the command on stderr. */
int vz_test_sshd_sh(vz_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vz_test_sshd_vsh(vz_buf *out, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* "SHA256:..." as ssh-keygen -lf prints it for the public key file pub, into out (n bytes);
 * aborts when ssh-keygen fails. */
void vz_test_sshd_fingerprint(const char *pub, char *out, size_t n);

/* The node user's name: makes sure it exists with shell /bin/sh when root. NULL on failure. */
const char *vz_test_sshd_node_user(void);

#endif
