/* vz_node: running commands on a build node. Two connections behind one interface:
 * ssh (libssh2: one session per node per build, one channel per command or, opt-in, one
 * persistent shell running them all; host key always checked against an OpenSSH known_hosts
 * file) and local (fork/exec, for the embedded default
 * and the dry-run). Output is streamed to a callback as it arrives and capped; commands have a
 * timeout after which they are killed on the node. */
#ifndef VZ_NODE_H
#define VZ_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "vz_buf.h"
#include "vz_err.h"

typedef enum { VZ_NODE_SSH = 1, VZ_NODE_LOCAL = 2 } vz_node_kind;

/* Where a node is and how to reach it. Strings borrowed by vz_node_connect for the call only. */
typedef struct vz_node_spec {
	vz_node_kind kind;
	const char *name;        /* for messages: "node n1" */
	const char *host;        /* ssh: hostname or address */
	int port;                /* ssh: default 22 */
	const char *user;        /* ssh: login user */
	const char *key_file;    /* ssh: private key (OpenSSH or PEM format) */
	const char *known_hosts; /* ssh: known_hosts file; required unless host_key is set */
	const char *host_key;    /* ssh: "ssh-ed25519 AAAA..." line instead of a file; optional */
	int connect_timeout_ms;  /* 0: 10000 */
} vz_node_spec;

typedef struct vz_node vz_node;

/* Which stream a chunk of output came from. */
enum { VZ_NODE_STDOUT = 1, VZ_NODE_STDERR = 2 };

/* Called with output as it arrives (not NUL-terminated). Return non-zero to cancel the command
 * (it is killed and vz_node_exec returns VZ_ECANCELED). Called on the thread of vz_node_exec. */
typedef int (*vz_node_output_cb)(void *ctx, int stream, const char *data, size_t len);

typedef struct vz_node_cmd {
	const char *command;         /* run by the node user's POSIX login shell (ssh) or /bin/sh -c (local) */
	const char *const *argv;     /* instead of command (which must then be NULL): this NULL-terminated
				      * argument vector, argv[0] found in PATH, run with no shell of ours in
				      * between (as the shell's `exec`); through the runner this saves a
				      * shell's process start per command */
	const char *cwd;             /* optional working directory (relative: from the login dir) */
	const char *const *env;      /* optional NULL-terminated "KEY=VALUE" list */
	const void *stdin_data;      /* optional bytes written to the command's stdin, then EOF */
	size_t stdin_len;
	int timeout_ms;              /* 0: no timeout */
	vz_node_output_cb on_output; /* optional */
	void *ctx;
	volatile int *cancel;        /* optional: when it becomes non-zero the command is killed */
} vz_node_cmd;

typedef struct vz_node_result {
	int exit_status;   /* exit code, or 128+signal when killed by a signal; -1 if unknown */
	int timed_out;     /* 1 when the timeout killed it */
	uint64_t duration_ms;
} vz_node_result;

/* Opens a connection. ssh: TCP connect with timeout, handshake, host key check (unknown or
 * changed key -> VZ_EHOSTKEY with a message giving the key type and SHA256 fingerprint as
 * ssh-keygen prints it, and what to add to known_hosts), public key auth (VZ_EAUTH). Closed
 * port or unreachable -> VZ_ECONNECT; timeout -> VZ_ETIMEOUT. local: always succeeds.
 * *out freed with vz_node_close. */
int vz_node_connect(vz_node **out, const vz_node_spec *spec, vz_err *e);

/* Runs one command and waits for it. Returns 0 when the command ran (whatever its exit code,
 * see res), VZ_ETIMEOUT (res->timed_out set, command killed on the node), VZ_ECANCELED,
 * VZ_ECONNECT/VZ_EIO when the connection broke (the node is unusable). */
int vz_node_exec(vz_node *n, const vz_node_cmd *cmd, vz_node_result *res, vz_err *e);

/* Writes data to a file on the node (created/truncated, mode applied), parents must exist.
 * Implemented over an exec channel (`cat > file`) so no SFTP subsystem is needed. */
int vz_node_put(vz_node *n, const char *path, const void *data, size_t len, int mode, vz_err *e);

/* ssh: with on, vz_node_exec runs commands through one long-lived /bin/sh on the node (started
 * on its own channel by the first command) instead of a new channel per command: one round trip
 * and one process start per command instead of sshd forking the login shell each time. Every
 * guarantee above is kept (cwd, env, stdin, separate streams, exit status, timeout and cancel
 * killing the command's process group). The node needs head, and bash or setsid, in PATH. If the runner
 * cannot start or dies, commands go over their own channels for the rest of the session (logged
 * once); a command the runner had started when it died fails with VZ_EIO and is not rerun.
 * Local nodes: no effect. Call before the first vz_node_exec or between commands.
 * The runner is bash in POSIX mode when the node has bash (its job control puts each command in
 * its own process group), else /bin/sh starting each command with setsid (one more exec per
 * command); on == VZ_NODE_RUNNER_SH asks for the second even when there is bash (tests). */
#define VZ_NODE_RUNNER_SH 2
void vz_node_set_runner(vz_node *n, int on);

/* The runner's pid on the node while it runs, else 0 (not started, off, or fallen back). */
long vz_node_runner_pid(const vz_node *n);

/* Closes the session (or nothing for local). Accepts NULL. */
void vz_node_close(vz_node *n);

/* Appends s to b as one single-quoted /bin/sh word ('it'\''s'). */
void vz_node_sh_quote(vz_buf *b, const char *s);

/* Process-wide init/cleanup of libssh2; call once from main before any thread uses nodes. */
int vz_node_global_init(vz_err *e);
void vz_node_global_cleanup(void);

#endif
