/* vz_deliver: puts a build's git workspace on a node over the build's SSH session, sending only
 * the objects the node lacks. The node keeps one bare object store per project that outlives
 * builds (~/.cache/vinz/git/<canonical>.git, protected by keep-refs refs/vinz/<stamp>/<commit>);
 * the workspace is a real repository borrowing from it through objects/info/alternates. Two
 * round trips: ask what the node has, then one sh script that receives a libgit2 pack and checks
 * out. A node without git gets the work tree as a tar stream instead. docs/workspace.md. */
#ifndef VZ_DELIVER_H
#define VZ_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "vz_err.h"
#include "vz_node.h"

typedef enum {
	VZ_DELIVER_NONE = 0, /* nothing was delivered (error before the transfer) */
	VZ_DELIVER_GIT = 1,  /* a pack into the node store, a repository checked out */
	VZ_DELIVER_TAR = 2,  /* the node has no usable git: the work tree without .git, as a tar */
} vz_deliver_method;

typedef struct vz_deliver_opts {
	const char *project;       /* canonical project name, "host/path": names the node store (required) */
	const char *store_root;    /* directory of the node stores, relative to the node user's home;
				    * NULL: ".cache/vinz/git" */
	size_t pack_max;           /* cap on the bytes sent (pack or tar); 0: 256 MiB */
	unsigned keep_max;         /* keep-refs kept per node store; 0: 256 */
	int timeout_ms;            /* the whole delivery; 0: 600000 */
	volatile int *cancel;      /* optional: non-zero stops the delivery (VZ_ECANCELED) */
	const char *const *env;    /* optional "KEY=VALUE" list for the node commands (e.g. PATH) */
	vz_node_output_cb on_output; /* optional: the node's stderr while delivering (git's warnings) */
	void *ctx;
} vz_deliver_opts;

typedef struct vz_deliver_stats {
	vz_deliver_method method;
	size_t objects;            /* objects in the pack sent (0 for tar, or when the node had all) */
	size_t bytes;              /* bytes sent on stdin: pack or tar */
	size_t refs;               /* branches delivered */
	int round_trips;           /* node commands run */
	int rebuilt;               /* 1 when the node store was damaged and rebuilt from scratch */
	int reused;                /* 1 when remote_dir was an earlier workspace of this store, reset */
	uint64_t probe_ms;         /* round trip 1: asking the node */
	uint64_t pack_ms;          /* building the pack or tar on the executor */
	uint64_t total_ms;
	char note[320];            /* why tar was used or why the store was rebuilt; "" otherwise */
} vz_deliver_stats;

/* Delivers the repository at local_repo (a non-bare repository: its branches (refs/heads/...) and HEAD,
 * attached or detached) to remote_dir on the node (relative to the node user's home; created or
 * replaced). The result on the node: a repository with the same branches and HEAD, the work tree
 * checked out clean, no remote; its objects borrowed from the node store. out_stats (optional)
 * is filled even on failure as far as the delivery got.
 * Returns 0; VZ_EINVAL (bad path or option, unborn HEAD), VZ_ETOOBIG (pack or tar above
 * pack_max, or too many branches for one command), VZ_EIO (the local repository cannot be read,
 * or the node's script failed, message with its stderr), VZ_ECANCELED, VZ_ETIMEOUT, or what
 * vz_node_exec returns when the connection breaks (VZ_ECONNECT...). A damaged node store (lost
 * or truncated pack) is rebuilt once from scratch and is not an error. */
int vz_deliver_repo(vz_node *node, const char *local_repo, const char *remote_dir, const vz_deliver_opts *opts,
		    vz_deliver_stats *out_stats, vz_err *e);

/* Static name of a method: "none", "git", "tar". */
const char *vz_deliver_method_name(vz_deliver_method m);

#endif
