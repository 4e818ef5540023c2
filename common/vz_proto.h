/* vz_proto: wire protocol v1 between scheduler and executors (and between the CLI and the
 * scheduler's admin socket), over ZeroMQ. Each message is one JSON object frame carrying the
 * protocol version "v", the message "type" and a message "id"; the scheduler's ROUTER socket
 * sees an extra identity frame in front. Frames are size-capped; a malformed, oversized or
 * unknown frame is refused with VZ_EPROTO / VZ_ETOOBIG / VZ_EVERSION and the socket stays usable.
 * docs/protocol.md is the reference for every type and field. */
#ifndef VZ_PROTO_H
#define VZ_PROTO_H

#include <jansson.h>
#include <stddef.h>

#include "vz_buf.h"
#include "vz_err.h"

#define VZ_PROTO_VERSION 1
#define VZ_PROTO_MAX_FRAME (1024 * 1024)   /* our cap on one message frame */
#define VZ_PROTO_MAX_PEER_ID 255           /* ZeroMQ routing ids are at most 255 bytes */
#define VZ_PROTO_MAX_ID 64                 /* message ids */

/* Message numbers are never reused; a new type takes a new number. */
typedef enum vz_msg_type {
	VZ_MSG_HELLO = 1,      /* executor -> scheduler: executor, instance, version, capacity, labels, running */
	VZ_MSG_WELCOME = 2,    /* scheduler -> executor: scheduler_instance, lease_ms, heartbeat_ms */
	VZ_MSG_REFUSE = 3,     /* either way: code, message; the peer is not accepted (e.g. version) */
	VZ_MSG_READY = 4,      /* executor -> scheduler: free, seen (credit; see docs/protocol.md) */
	VZ_MSG_BUILD = 5,      /* scheduler -> executor: a build request */
	VZ_MSG_STARTED = 6,    /* executor -> scheduler: build, attempt, node, started_at */
	VZ_MSG_LOG = 7,        /* executor -> scheduler: build, offset, data */
	VZ_MSG_RESULT = 8,     /* executor -> scheduler: build, attempt, result, ... */
	VZ_MSG_ACK = 9,        /* scheduler -> executor: build, attempt (result persisted) */
	VZ_MSG_HEARTBEAT = 10, /* either way */
	VZ_MSG_CANCEL = 11,    /* scheduler -> executor: build */
	VZ_MSG_ERROR = 12,     /* either way: code, message, ref (id of the refused message) */
	VZ_MSG_LOG_RESEND = 13,/* scheduler -> executor: build, offset (log incomplete, resend from) */
	VZ_MSG_REQUEST = 14,   /* cli -> scheduler admin socket: op, args */
	VZ_MSG_REPLY = 15,     /* scheduler admin -> cli: ok, data | error */
	VZ_MSG_PAUSED = 16,    /* executor -> scheduler: build, attempt, data (zuul.pause after run) */
	VZ_MSG_RESUME = 17,    /* scheduler -> executor: build (a paused build goes on with post-run) */
	VZ_MSG_EARLY_FAILURE = 18, /* executor -> scheduler: build, attempt, message (failure-output matched) */
	VZ_MSG_LOG_FILE = 19,  /* executor -> scheduler: build, attempt, path, offset, size, data (base64): a
				* file of the build's log directory for the scheduler's log store */
	VZ_MSG_MERGE = 20,     /* scheduler -> executor: merge, items, repo_state, projects, config (a merge
				* request: the speculative state of items, heads and in-repo config) */
	VZ_MSG_MERGED = 21,    /* executor -> scheduler: merge, ok, items, repo_state, heads, config | message */
	VZ_MSG_MERGE_ACK = 22, /* scheduler -> executor: merge (the merged answer was received) */
	VZ_MSG__MAX
} vz_msg_type;

/* A decoded message. body is the whole JSON object (including v, type, id); owned by the msg. */
typedef struct vz_msg {
	vz_msg_type type;
	char id[VZ_PROTO_MAX_ID + 1];
	json_t *body;
} vz_msg;

/* Name of a type ("hello", ...) or NULL for an unknown number. */
const char *vz_msg_type_name(int type);
/* Type number from its name, or 0 when unknown. */
int vz_msg_type_from_name(const char *name);

/* Decodes one frame. Checks: size <= VZ_PROTO_MAX_FRAME (VZ_ETOOBIG), valid JSON object
 * (VZ_EPROTO), "v" == VZ_PROTO_VERSION (VZ_EVERSION; message says both versions), known "type"
 * (VZ_EPROTO), "id" a string of 1..VZ_PROTO_MAX_ID bytes, and every field the type requires
 * present with the right JSON type (VZ_EPROTO naming the field). On success *out is a new
 * message the caller frees with vz_msg_free. On failure *out is NULL and e says why; when the
 * frame carried a readable "id" it is copied to ref_id (may be NULL) so an error can refer to it. */
int vz_msg_decode(vz_msg **out, const void *data, size_t len, char ref_id[VZ_PROTO_MAX_ID + 1], vz_err *e);

/* Encodes body (borrowed, may be NULL for an empty body) with v/type/id set into out
 * (reset first). id NULL means a fresh id from vz_msg_next_id. Fails with VZ_ETOOBIG past the cap,
 * VZ_EPROTO when body lacks a field the type requires. */
int vz_msg_encode(vz_buf *out, vz_msg_type type, const char *id, json_t *body, vz_err *e);

void vz_msg_free(vz_msg *m);

/* A process-unique message id: random prefix + counter, thread-safe. out: VZ_PROTO_MAX_ID+1 bytes. */
void vz_msg_next_id(char *out);

/* Field helpers on a decoded body: the string value, borrowed from m, or "" when the field is
 * absent or not a string (never NULL); the integer value, or dflt when absent or not an integer. */
const char *vz_msg_str(const vz_msg *m, const char *field);
long long vz_msg_int(const vz_msg *m, const char *field, long long dflt);

/* ZeroMQ transport. libzmq errors are translated here and only here.
 * vz_proto_send: sends [peer] + frame. peer NULL for DEALER/REQ sockets; for ROUTER the routing
 * id of the destination. flags: 0 or ZMQ_DONTWAIT. Returns 0, VZ_ETIMEOUT (EAGAIN),
 * VZ_ENOTFOUND (EHOSTUNREACH on a ROUTER_MANDATORY socket), VZ_EIO.
 * body borrowed; id NULL for a fresh one. */
int vz_proto_send(void *sock, const void *peer, size_t peer_len, vz_msg_type type, const char *id,
		  json_t *body, vz_err *e);

/* vz_proto_recv: receives one message; for ROUTER sockets (is_router) the identity frame is
 * copied to peer (VZ_PROTO_MAX_PEER_ID+1 bytes) and its length to *peer_len. flags as zmq_recv
 * (ZMQ_DONTWAIT). Always consumes the whole multipart message, even when it is refused.
 * Returns 0 with *out set, VZ_ETIMEOUT when nothing was waiting (EAGAIN), or a decode error
 * (*out NULL, peer filled, ref_id filled when known) after which the socket is still usable. */
int vz_proto_recv(void *sock, int is_router, char *peer, size_t *peer_len, vz_msg **out,
		  char ref_id[VZ_PROTO_MAX_ID + 1], int flags, vz_err *e);

/* Answers a refused message on sock (to peer for ROUTER sockets): refuse{code:"version",
 * message, ref, version} when why->code is VZ_EVERSION, else error{code, message, ref} with code
 * "too-big" or "malformed". ref_id may be NULL or empty. Returns 0 or a send error. */
int vz_proto_send_refusal(void *sock, const void *peer, size_t peer_len, const char *ref_id,
			  const vz_err *why, vz_err *e);

/* Sets the socket options every vinz socket uses: linger 0..1000 ms, ZMQ_MAXMSGSIZE as a hard
 * memory cap (a few times VZ_PROTO_MAX_FRAME), reconnect intervals, tcp keepalive.
 * Returns 0 or VZ_EIO. */
int vz_proto_sockopts(void *sock, vz_err *e);

/* 1 when rel may name a file of a build's log directory on both sides: relative, '/'-separated,
 * 1..1024 bytes, at most 16 components, none empty, "." or "..", no NUL or backslash, and not
 * "job-output.txt" (the streamed log has that name). */
int vz_proto_log_path_ok(const char *rel);

#endif
