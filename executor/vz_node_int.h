/* vz_node_int: what the node dispatcher (vz_node.c) and the two connections (vz_node_ssh.c,
 * vz_node_local.c) share. Not for use outside executor/vz_node*.c. */
#ifndef VZ_NODE_INT_H
#define VZ_NODE_INT_H

#include "vz_buf.h"
#include "vz_node.h"

/* The operations every connection provides. exec gets a validated cmd and a zeroed res. */
typedef struct vz_node_ops {
	int (*exec)(vz_node *n, const vz_node_cmd *cmd, vz_node_result *res, vz_err *e);
	void (*close)(vz_node *n);
} vz_node_ops;

struct vz_node {
	const vz_node_ops *ops;
	vz_node_kind kind;
	char *where; /* "node n1 (root@127.0.0.1:2222)", for every message about this node */
	void *impl;  /* owned by the connection, freed by ops->close */
};

/* Connection constructors: fill n->ops and n->impl. n->where is already set. */
int vz_node_ssh_open(vz_node *n, const vz_node_spec *spec, vz_err *e);
int vz_node_local_open(vz_node *n, const vz_node_spec *spec, vz_err *e);

/* Checks that every env entry is "NAME=VALUE" with a shell variable NAME. 0 or VZ_EINVAL. */
int vz_node_check_env(const vz_node *n, const char *const *env, vz_err *e);

/* Exit status from a signal name as sent by sshd ("KILL") or number: 128+signal, -1 if unknown. */
int vz_node_signal_status(const char *name);

/* How long a command killed on timeout or cancel gets after SIGTERM before SIGKILL (local), and
 * how long we wait for a killed remote command's channel to close (ssh). */
#define VZ_NODE_KILL_GRACE_MS 2000

/* The longest command line (with its cwd and environment) a connection takes: OpenSSH refuses
 * packets above 256 KiB. */
#define VZ_NODE_CMD_MAX (256 * 1024)

#endif
