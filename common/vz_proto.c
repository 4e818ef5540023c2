/* vz_proto: wire protocol v1 over ZeroMQ; see vz_proto.h and docs/protocol.md (the reference).
 * One table describes every message type and the fields it carries; decode and encode both
 * validate against it. This is the only file that calls libzmq for messages, and the only
 * place where libzmq errors are translated into the vinz error space. */
#include "vz_proto.h"
#include "vz_log.h"
#include "vz_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* ZMQ_MAXMSGSIZE: libzmq drops a connection whose peer announces a bigger frame, before
 * allocating it. It is the hard memory cap; our own decode cap (VZ_PROTO_MAX_FRAME) is lower so
 * that a frame between the two is refused politely with an error message instead. */
#define VZ_PROTO_ZMQ_MAXMSG ((int64_t)VZ_PROTO_MAX_FRAME * 4)

/* ---- the message table --------------------------------------------------------------------- */

enum ftype { FT_STR, FT_INT, FT_UINT, FT_BOOL, FT_ARRAY, FT_OBJECT, FT_ANY };

struct field {
	const char *name;
	enum ftype t;
};

#define MAX_REQ 8
#define MAX_OPT 24

struct msg_spec {
	vz_msg_type type;
	const char *name;
	struct field req[MAX_REQ]; /* terminated by a NULL name */
	struct field opt[MAX_OPT]; /* optional: checked for type when present */
};

/* Indexed by type number. Numbers are never reused (vz_proto.h). Keep docs/protocol.md in step. */
static const struct msg_spec specs[VZ_MSG__MAX] = {
	[VZ_MSG_HELLO] = { VZ_MSG_HELLO, "hello",
		{ { "executor", FT_STR }, { "instance", FT_STR }, { "version", FT_STR },
		  { "capacity", FT_UINT }, { "labels", FT_ARRAY }, { "running", FT_ARRAY } },
		{ { "hostname", FT_STR }, { "zone", FT_STR }, { "allow_unzoned", FT_BOOL } } },
	[VZ_MSG_WELCOME] = { VZ_MSG_WELCOME, "welcome",
		{ { "scheduler_instance", FT_STR }, { "lease_ms", FT_UINT }, { "heartbeat_ms", FT_UINT } },
		{ { "features", FT_ARRAY } } },
	[VZ_MSG_REFUSE] = { VZ_MSG_REFUSE, "refuse",
		{ { "code", FT_STR }, { "message", FT_STR } },
		{ { "ref", FT_STR }, { "version", FT_INT } } },
	[VZ_MSG_READY] = { VZ_MSG_READY, "ready",
		{ { "free", FT_UINT }, { "seen", FT_UINT } },
		{ { NULL, FT_ANY } } },
	[VZ_MSG_BUILD] = { VZ_MSG_BUILD, "build",
		{ { "build", FT_STR }, { "attempt", FT_UINT }, { "job", FT_STR }, { "project", FT_STR },
		  { "node", FT_OBJECT }, { "commands", FT_ARRAY }, { "timeout", FT_UINT } },
		{ { "pipeline", FT_STR }, { "change", FT_STR }, { "ref", FT_STR }, { "commit", FT_STR },
		  { "repo", FT_STR }, { "changes", FT_ARRAY }, { "vars", FT_OBJECT },
		  { "canonical_project", FT_STR }, { "branch", FT_STR }, { "tenant", FT_STR },
		  { "log_max", FT_UINT }, { "connection", FT_STR }, { "items", FT_ARRAY }, { "repo_state", FT_OBJECT },
		  { "projects", FT_ARRAY }, { "playbooks", FT_OBJECT }, { "host_vars", FT_OBJECT }, { "group_vars", FT_OBJECT },
		  { "parent_data", FT_OBJECT }, { "failure_output", FT_ARRAY }, { "post_timeout", FT_UINT },
		  { "nodes", FT_ARRAY } } },
	[VZ_MSG_STARTED] = { VZ_MSG_STARTED, "started",
		{ { "build", FT_STR }, { "attempt", FT_UINT }, { "started_at", FT_INT } },
		{ { "node", FT_STR } } },
	[VZ_MSG_LOG] = { VZ_MSG_LOG, "log",
		{ { "build", FT_STR }, { "offset", FT_UINT }, { "data", FT_STR } },
		{ { "attempt", FT_UINT } } },
	[VZ_MSG_RESULT] = { VZ_MSG_RESULT, "result",
		{ { "build", FT_STR }, { "attempt", FT_UINT }, { "result", FT_STR } },
		{ { "message", FT_STR }, { "started_at", FT_INT }, { "ended_at", FT_INT },
		  { "commit", FT_STR }, { "log_size", FT_UINT }, { "node", FT_STR },
		  { "executor", FT_STR }, { "exit_code", FT_INT }, { "data", FT_OBJECT }, { "log_url", FT_STR },
		  { "artifacts", FT_ARRAY }, { "child_jobs", FT_ARRAY }, { "warnings", FT_ARRAY }, { "node_failed", FT_BOOL },
		  { "files", FT_OBJECT } } },
	[VZ_MSG_ACK] = { VZ_MSG_ACK, "ack",
		{ { "build", FT_STR }, { "attempt", FT_UINT } },
		{ { NULL, FT_ANY } } },
	[VZ_MSG_HEARTBEAT] = { VZ_MSG_HEARTBEAT, "heartbeat",
		{ { NULL, FT_ANY } },
		{ { "running", FT_ARRAY }, { "free", FT_UINT }, { "seen", FT_UINT },
		  { "scheduler_instance", FT_STR } } },
	[VZ_MSG_CANCEL] = { VZ_MSG_CANCEL, "cancel",
		{ { "build", FT_STR } },
		{ { "attempt", FT_UINT }, { "reason", FT_STR } } },
	[VZ_MSG_ERROR] = { VZ_MSG_ERROR, "error",
		{ { "code", FT_STR }, { "message", FT_STR } },
		{ { "ref", FT_STR } } },
	[VZ_MSG_LOG_RESEND] = { VZ_MSG_LOG_RESEND, "log_resend",
		{ { "build", FT_STR }, { "offset", FT_UINT } },
		{ { "attempt", FT_UINT }, { "end", FT_UINT }, { "path", FT_STR } } },
	[VZ_MSG_REQUEST] = { VZ_MSG_REQUEST, "request",
		{ { "op", FT_STR } },
		{ { "args", FT_OBJECT } } },
	[VZ_MSG_REPLY] = { VZ_MSG_REPLY, "reply",
		{ { "ok", FT_BOOL } },
		{ { "data", FT_ANY }, { "error", FT_STR }, { "code", FT_STR } } },
	[VZ_MSG_PAUSED] = { VZ_MSG_PAUSED, "paused",
		{ { "build", FT_STR }, { "attempt", FT_UINT } },
		{ { "data", FT_OBJECT } } },
	[VZ_MSG_RESUME] = { VZ_MSG_RESUME, "resume",
		{ { "build", FT_STR } },
		{ { "attempt", FT_UINT } } },
	[VZ_MSG_EARLY_FAILURE] = { VZ_MSG_EARLY_FAILURE, "early_failure",
		{ { "build", FT_STR }, { "attempt", FT_UINT } },
		{ { "message", FT_STR } } },
	[VZ_MSG_LOG_FILE] = { VZ_MSG_LOG_FILE, "log_file",
		{ { "build", FT_STR }, { "attempt", FT_UINT }, { "path", FT_STR }, { "offset", FT_UINT },
		  { "size", FT_UINT }, { "data", FT_STR } },
		{ { NULL, FT_ANY } } },
	[VZ_MSG_MERGE] = { VZ_MSG_MERGE, "merge",
		{ { "merge", FT_STR } },
		{ { "items", FT_ARRAY }, { "repo_state", FT_OBJECT }, { "projects", FT_ARRAY }, { "config", FT_BOOL } } },
	[VZ_MSG_MERGED] = { VZ_MSG_MERGED, "merged",
		{ { "merge", FT_STR }, { "ok", FT_BOOL } },
		{ { "items", FT_ARRAY }, { "repo_state", FT_OBJECT }, { "heads", FT_OBJECT }, { "config", FT_OBJECT },
		  { "message", FT_STR } } },
	[VZ_MSG_MERGE_ACK] = { VZ_MSG_MERGE_ACK, "merge_ack",
		{ { "merge", FT_STR } },
		{ { NULL, FT_ANY } } },
};

/* Keys every frame carries; a body's own v/type/id are replaced on encode. */
static const char *const reserved[] = { "v", "type", "id" };

static int has_reserved_key(const char *k)
{
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(k, reserved[i]) == 0)
			return 1;
	return 0;
}

static const struct msg_spec *spec_of(int type)
{
	if (type <= 0 || type >= VZ_MSG__MAX || specs[type].name == NULL)
		return NULL;
	return &specs[type];
}

const char *vz_msg_type_name(int type)
{
	const struct msg_spec *s = spec_of(type);
	return s ? s->name : NULL;
}

int vz_msg_type_from_name(const char *name)
{
	if (!name)
		return 0;
	for (int t = 1; t < VZ_MSG__MAX; t++)
		if (specs[t].name && strcmp(specs[t].name, name) == 0)
			return t;
	return 0;
}

static const char *ftype_name(enum ftype t)
{
	switch (t) {
	case FT_STR: return "string";
	case FT_INT: return "integer";
	case FT_UINT: return "non-negative integer";
	case FT_BOOL: return "boolean";
	case FT_ARRAY: return "array";
	case FT_OBJECT: return "object";
	default: return "any JSON value";
	}
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "real";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

static int type_ok(const json_t *v, enum ftype t)
{
	switch (t) {
	case FT_STR: return json_is_string(v);
	case FT_INT: return json_is_integer(v);
	case FT_UINT: return json_is_integer(v) && json_integer_value(v) >= 0;
	case FT_BOOL: return json_is_boolean(v);
	case FT_ARRAY: return json_is_array(v);
	case FT_OBJECT: return json_is_object(v);
	default: return 1;
	}
}

/* A message id: 1..VZ_PROTO_MAX_ID printable ASCII bytes without spaces, so it can be logged
 * and echoed back in error.ref as is. */
static int id_ok(const char *s, size_t n)
{
	if (n == 0 || n > VZ_PROTO_MAX_ID)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

static const char *below_zero(const json_t *v, enum ftype t)
{
	return t == FT_UINT && json_is_integer(v) ? " below 0" : "";
}

/* Checks the fields of body against the type's table entry. */
static int check_fields(const struct msg_spec *s, const json_t *body, const char *id, vz_err *e)
{
	for (const struct field *f = s->req; f < s->req + MAX_REQ && f->name; f++) {
		json_t *v = json_object_get(body, f->name);
		if (!v)
			return vz_err_set(e, VZ_EPROTO,
					  "%s message (id %s) lacks required field \"%s\" (%s)",
					  s->name, id, f->name, ftype_name(f->t));
		if (!type_ok(v, f->t))
			return vz_err_set(e, VZ_EPROTO,
					  "%s message (id %s): field \"%s\" must be a %s, got %s%s",
					  s->name, id, f->name, ftype_name(f->t), json_type_name(v),
					  below_zero(v, f->t));
	}
	for (const struct field *f = s->opt; f < s->opt + MAX_OPT && f->name; f++) {
		json_t *v = json_object_get(body, f->name);
		if (v && !type_ok(v, f->t))
			return vz_err_set(e, VZ_EPROTO,
					  "%s message (id %s): optional field \"%s\" must be a %s, got %s%s",
					  s->name, id, f->name, ftype_name(f->t), json_type_name(v),
					  below_zero(v, f->t));
	}
	return 0;
}

/* ---- decode / encode ----------------------------------------------------------------------- */

int vz_msg_decode(vz_msg **out, const void *data, size_t len, char ref_id[VZ_PROTO_MAX_ID + 1], vz_err *e)
{
	int rc = 0;
	json_t *root = NULL;
	vz_msg *m = NULL;
	char id[VZ_PROTO_MAX_ID + 1] = "-";

	*out = NULL;
	if (ref_id)
		ref_id[0] = '\0';
	if (len > VZ_PROTO_MAX_FRAME) {
		rc = vz_err_set(e, VZ_ETOOBIG, "frame of %zu bytes exceeds the protocol cap of %d bytes",
				len, VZ_PROTO_MAX_FRAME);
		goto out;
	}
	if (len == 0 || !data) {
		rc = vz_err_set(e, VZ_EPROTO, "empty frame: expected a JSON object");
		goto out;
	}

	json_error_t jerr;
	/* Duplicate keys are refused (two readers could otherwise see different values); embedded
	 * NUL in strings is refused because JSON_ALLOW_NUL is not given. */
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* jansson quotes a few bytes of the input: keep them printable for the log */
		for (char *p = jerr.text; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
				*p = '?';
		rc = vz_err_set(e, VZ_EPROTO, "frame is not valid JSON: %s at byte %d", jerr.text,
				jerr.position);
		goto out;
	}
	if (!json_is_object(root)) {
		rc = vz_err_set(e, VZ_EPROTO, "frame is a JSON %s, expected an object",
				json_type_name(root));
		goto out;
	}

	/* The id first, so that even a refused frame can be referred to. */
	json_t *jid = json_object_get(root, "id");
	int id_valid = json_is_string(jid) && id_ok(json_string_value(jid), json_string_length(jid));
	if (id_valid) {
		memcpy(id, json_string_value(jid), json_string_length(jid) + 1);
		if (ref_id)
			memcpy(ref_id, id, sizeof(id));
	}

	/* The version before anything else: a newer peer may use types and fields we do not know. */
	json_t *v = json_object_get(root, "v");
	if (!v) {
		rc = vz_err_set(e, VZ_EPROTO, "message (id %s) lacks the protocol version field \"v\"", id);
		goto out;
	}
	if (!json_is_integer(v)) {
		rc = vz_err_set(e, VZ_EPROTO, "message (id %s): field \"v\" must be an integer, got %s",
				id, json_type_name(v));
		goto out;
	}
	if (json_integer_value(v) != VZ_PROTO_VERSION) {
		rc = vz_err_set(e, VZ_EVERSION,
				"peer speaks protocol version %" JSON_INTEGER_FORMAT
				", this side speaks version %d: run the same vinz release on both sides",
				json_integer_value(v), VZ_PROTO_VERSION);
		goto out;
	}

	json_t *jt = json_object_get(root, "type");
	if (!json_is_string(jt)) {
		rc = vz_err_set(e, VZ_EPROTO, "message (id %s) lacks a string field \"type\"", id);
		goto out;
	}
	int t = vz_msg_type_from_name(json_string_value(jt));
	if (t == 0) {
		char shown[33];
		vz_strlcpy(shown, json_string_value(jt), sizeof(shown));
		for (char *p = shown; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				*p = '?';
		rc = vz_err_set(e, VZ_EPROTO, "message (id %s) has unknown type \"%s\"", id, shown);
		goto out;
	}
	if (!id_valid) {
		rc = vz_err_set(e, VZ_EPROTO,
				"%s message lacks a valid \"id\": a string of 1 to %d printable characters",
				specs[t].name, VZ_PROTO_MAX_ID);
		goto out;
	}
	rc = check_fields(&specs[t], root, id, e);
	if (rc)
		goto out;

	m = calloc(1, sizeof(*m));
	if (!m) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory decoding a %s message", specs[t].name);
		goto out;
	}
	m->type = (vz_msg_type)t;
	memcpy(m->id, id, sizeof(m->id));
	m->body = root;
	root = NULL;
	*out = m;
out:
	json_decref(root);
	return rc;
}

struct dump_state {
	vz_buf *b;
	int splice; /* drop the body's opening '{' and put a ',' in its place */
};

static int dump_cb(const char *buf, size_t size, void *data)
{
	struct dump_state *st = data;
	vz_buf *b = st->b;
	if (st->splice && size > 0) {
		st->splice = 0;
		buf++;
		size--;
		if (vz_buf_putc(b, ',') != 0)
			return -1;
	}
	if (size > VZ_PROTO_MAX_FRAME - b->len) {
		b->failed = VZ_ETOOBIG;
		return -1;
	}
	return vz_buf_add(b, buf, size) ? -1 : 0;
}

static int has_reserved(const json_t *body)
{
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (json_object_get(body, reserved[i]))
			return 1;
	return 0;
}

int vz_msg_encode(vz_buf *out, vz_msg_type type, const char *id, json_t *body, vz_err *e)
{
	int rc = 0;
	json_t *o = NULL;
	char fresh[VZ_PROTO_MAX_ID + 1];
	const struct msg_spec *s = spec_of((int)type);

	vz_buf_reset(out);
	if (!s) {
		rc = vz_err_set(e, VZ_EINVAL, "cannot encode unknown message type %d", (int)type);
		goto out;
	}
	if (body && !json_is_object(body)) {
		rc = vz_err_set(e, VZ_EINVAL, "%s message body must be a JSON object, not %s",
				s->name, json_type_name(body));
		goto out;
	}
	if (!id) {
		vz_msg_next_id(fresh);
		id = fresh;
	} else if (!id_ok(id, strlen(id))) {
		rc = vz_err_set(e, VZ_EINVAL,
				"cannot encode %s message: id must be 1 to %d printable characters",
				s->name, VZ_PROTO_MAX_ID);
		goto out;
	}

	struct dump_state st = { out, 0 };
	if (body && has_reserved(body)) {
		/* Rare: the body carries its own v/type/id. Build a new object without them (values
		 * shared, not copied) so the caller's body is never modified. */
		o = json_object();
		if (!o) {
			rc = vz_err_set(e, VZ_ENOMEM, "out of memory encoding a %s message", s->name);
			goto out;
		}
		const char *k;
		json_t *val;
		json_object_foreach(body, k, val) {
			if (!has_reserved_key(k) && json_object_set(o, k, val)) {
				rc = vz_err_set(e, VZ_ENOMEM, "out of memory encoding a %s message", s->name);
				goto out;
			}
		}
		body = o;
	}
	rc = check_fields(s, body, id, e);
	if (rc) {
		vz_err_prefix(e, "cannot encode");
		goto out;
	}
	/* v, type and id first so that a frame reads well in a log, then the body's fields spliced
	 * in from jansson's output: no copy of the body is made. The id is printable ASCII, so only
	 * '"' and '\\' need escaping. */
	vz_buf_printf(out, "{\"v\":%d,\"type\":\"%s\",\"id\":\"", VZ_PROTO_VERSION, s->name);
	for (const char *p = id; *p; p++) {
		if (*p == '"' || *p == '\\')
			vz_buf_putc(out, '\\');
		vz_buf_putc(out, *p);
	}
	vz_buf_putc(out, '"');
	if (!body || json_object_size(body) == 0) {
		vz_buf_putc(out, '}');
	} else if (!out->failed) {
		st.splice = 1;
		if (json_dump_callback(body, dump_cb, &st, JSON_COMPACT) != 0 && !out->failed)
			out->failed = VZ_EINVAL;
	}
	if (out->failed) {
		if (out->failed == VZ_ETOOBIG)
			rc = vz_err_set(e, VZ_ETOOBIG,
					"%s message (id %s) is larger than the protocol cap of %d bytes",
					s->name, id, VZ_PROTO_MAX_FRAME);
		else
			rc = vz_err_set(e, out->failed == VZ_ENOMEM ? VZ_ENOMEM : VZ_EINVAL,
					"cannot encode %s message (id %s) as JSON", s->name, id);
		vz_buf_reset(out);
		goto out;
	}
out:
	json_decref(o);
	return rc;
}

void vz_msg_free(vz_msg *m)
{
	if (!m)
		return;
	json_decref(m->body);
	free(m);
}

/* ---- ids ----------------------------------------------------------------------------------- */

static pthread_once_t id_once = PTHREAD_ONCE_INIT;
static char id_prefix[9];
static atomic_ullong id_counter;

static void id_reseed(void)
{
	uint32_t r = 0;
	if (vz_random(&r, sizeof(r)) != 0)
		r = (uint32_t)vz_wall_ms() ^ (uint32_t)vz_mono_ms() ^ (uint32_t)(uintptr_t)&r;
	snprintf(id_prefix, sizeof(id_prefix), "%08x", (unsigned)r);
	atomic_store(&id_counter, 0);
}

static void id_init(void)
{
	id_reseed();
	/* A forked child gets its own prefix; otherwise parent and child would hand out the same ids. */
	pthread_atfork(NULL, NULL, id_reseed);
}

void vz_msg_next_id(char *out)
{
	pthread_once(&id_once, id_init);
	unsigned long long n = atomic_fetch_add(&id_counter, 1) + 1;
	snprintf(out, VZ_PROTO_MAX_ID + 1, "%s-%llx", id_prefix, n);
}

const char *vz_msg_str(const vz_msg *m, const char *field)
{
	if (!m || !m->body || !field)
		return "";
	json_t *v = json_object_get(m->body, field);
	return json_is_string(v) ? json_string_value(v) : "";
}

long long vz_msg_int(const vz_msg *m, const char *field, long long dflt)
{
	if (!m || !m->body || !field)
		return dflt;
	json_t *v = json_object_get(m->body, field);
	return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

/* ---- ZeroMQ transport ---------------------------------------------------------------------- */

/* The one place libzmq's errno is translated. */
static int zmq_fail(vz_err *e, const char *what)
{
	int en = zmq_errno();
	switch (en) {
	case EAGAIN:
		return vz_err_set(e, VZ_ETIMEOUT, "%s: would block (peer busy or nothing waiting)", what);
	case EINTR:
		/* A signal: the caller's loop checks its flags and calls again. */
		return vz_err_set(e, VZ_ETIMEOUT, "%s: interrupted by a signal", what);
	case EHOSTUNREACH:
		return vz_err_set(e, VZ_ENOTFOUND,
				  "%s: no connected peer with that routing id (it disconnected or never said hello)",
				  what);
	case ETERM:
		return vz_err_set(e, VZ_EIO, "%s: the ZeroMQ context is shutting down", what);
	default:
		return vz_err_set(e, VZ_EIO, "%s: %s", what, zmq_strerror(en));
	}
}

static void free_detached(void *data, void *hint)
{
	(void)hint;
	free(data);
}


int vz_proto_send(void *sock, const void *peer, size_t peer_len, vz_msg_type type, const char *id,
		  json_t *body, vz_err *e)
{
	int rc = 0, stype = 0;
	size_t optlen = sizeof(stype);
	vz_buf frame = VZ_BUF_INIT(VZ_PROTO_MAX_FRAME);
	zmq_msg_t msg;
	int msg_live = 0;

	if (!sock) {
		rc = vz_err_set(e, VZ_EINVAL, "vz_proto_send: no socket");
		goto out;
	}
	if (zmq_getsockopt(sock, ZMQ_TYPE, &stype, &optlen) != 0) {
		rc = zmq_fail(e, "cannot send: reading the socket type failed");
		goto out;
	}
	if ((stype == ZMQ_ROUTER) != (peer != NULL) ||
	    (peer && (peer_len == 0 || peer_len > VZ_PROTO_MAX_PEER_ID))) {
		rc = vz_err_set(e, VZ_EINVAL,
				"vz_proto_send: a ROUTER socket needs a routing id of 1 to %d bytes, "
				"other sockets none", VZ_PROTO_MAX_PEER_ID);
		goto out;
	}
	/* most frames fit in 2 KiB: one allocation instead of a doubling series */
	if (vz_buf_reserve(&frame, 2048)) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory sending a message");
		goto out;
	}
	rc = vz_msg_encode(&frame, type, id, body, e);
	if (rc)
		goto out;

	/* Envelope: [routing id] (ROUTER only), [empty delimiter], [frame]. The delimiter is what
	 * a REQ peer expects, so admin clients may use REQ as well as DEALER; a REQ socket adds its
	 * own, and PUSH/PULL or PAIR sockets (in-process queues) carry the bare frame. Whether a send blocks is the socket's ZMQ_SNDTIMEO (see vz_proto_sockopts). Once the
	 * first part is queued libzmq accepts the rest of the message, so no partial message is
	 * left behind. */
	if (peer && zmq_send(sock, peer, peer_len, ZMQ_SNDMORE) < 0) {
		rc = zmq_fail(e, "cannot send message");
		goto out;
	}
	/* only the admin conversation may have a REQ socket at the other end; the executor protocol
	 * saves the extra part (one send and one receive per message on the hot path) */
	int admin = type == VZ_MSG_REQUEST || type == VZ_MSG_REPLY;
	if (admin && (stype == ZMQ_ROUTER || stype == ZMQ_DEALER) && zmq_send(sock, "", 0, ZMQ_SNDMORE) < 0) {
		rc = zmq_fail(e, "cannot send message");
		goto out;
	}
	/* The encoded frame is handed to libzmq without a copy. */
	size_t flen = frame.len;
	char *data = vz_buf_detach(&frame);
	if (!data || zmq_msg_init_data(&msg, data, flen, free_detached, NULL) != 0) {
		free(data);
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory sending a message");
		goto out;
	}
	msg_live = 1;
	if (zmq_msg_send(&msg, sock, 0) < 0) {
		rc = zmq_fail(e, "cannot send message");
		goto out;
	}
	msg_live = 0; /* libzmq owns it now */
out:
	if (msg_live)
		zmq_msg_close(&msg);
	vz_buf_free(&frame);
	return rc;
}

/* A routing id as text for a log line: printable bytes as is, others as \xNN. */
static void peer_text(char *out, size_t n, const char *peer, size_t peer_len)
{
	size_t o = 0;
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < peer_len && o + 5 < n; i++) {
		unsigned char c = (unsigned char)peer[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

int vz_proto_recv(void *sock, int is_router, char *peer, size_t *peer_len, vz_msg **out,
		  char ref_id[VZ_PROTO_MAX_ID + 1], int flags, vz_err *e)
{
	int rc = 0, nparts = 0, socket_error = 0;
	size_t extra = 0;
	zmq_msg_t part;
	vz_err le = { 0, "" };

	zmq_msg_init(&part);
	*out = NULL;
	if (ref_id)
		ref_id[0] = '\0';
	if (peer)
		peer[0] = '\0';
	if (peer_len)
		*peer_len = 0;
	if (is_router && (!peer || !peer_len)) {
		rc = vz_err_set(&le, VZ_EINVAL, "vz_proto_recv: a ROUTER socket needs a peer buffer");
		socket_error = 1;
		goto out;
	}

	if (zmq_msg_recv(&part, sock, flags) < 0) {
		rc = zmq_fail(&le, "cannot receive message");
		socket_error = 1;
		goto out;
	}
	nparts = 1;
	if (is_router) {
		size_t n = zmq_msg_size(&part);
		if (n > VZ_PROTO_MAX_PEER_ID)
			n = VZ_PROTO_MAX_PEER_ID;
		memcpy(peer, zmq_msg_data(&part), n);
		peer[n] = '\0';
		*peer_len = n;
		if (!zmq_msg_more(&part)) {
			rc = vz_err_set(&le, VZ_EPROTO, "message carries a routing id but no frame");
			goto out;
		}
		/* The rest of a multipart message is already here: libzmq delivers all or nothing. */
		if (zmq_msg_recv(&part, sock, 0) < 0) {
			rc = zmq_fail(&le, "cannot receive message");
			socket_error = 1;
			goto out;
		}
		nparts++;
	}
	/* The empty delimiter is optional on receipt, so a plain DEALER peer also works. */
	if (zmq_msg_size(&part) == 0 && zmq_msg_more(&part)) {
		if (zmq_msg_recv(&part, sock, 0) < 0) {
			rc = zmq_fail(&le, "cannot receive message");
			socket_error = 1;
			goto out;
		}
		nparts++;
	}
	if (zmq_msg_more(&part)) {
		/* Consume the whole message so the next receive starts on a message boundary; the
		 * first frame is kept in part for its id. */
		zmq_msg_t rest;
		zmq_msg_init(&rest);
		int more = 1;
		while (more) {
			if (zmq_msg_recv(&rest, sock, 0) < 0)
				break;
			extra++;
			more = zmq_msg_more(&rest);
		}
		zmq_msg_close(&rest);
		vz_msg *tmp = NULL;
		vz_err ignore = { 0, "" };
		vz_msg_decode(&tmp, zmq_msg_data(&part), zmq_msg_size(&part), ref_id, &ignore);
		vz_msg_free(tmp);
		rc = vz_err_set(&le, VZ_EPROTO,
				"message has %zu frames after the envelope, expected exactly one", extra + 1);
		goto out;
	}
	rc = vz_msg_decode(out, zmq_msg_data(&part), zmq_msg_size(&part), ref_id, &le);
out:
	zmq_msg_close(&part);
	if (rc && !socket_error) {
		char who[VZ_PROTO_MAX_PEER_ID * 4 + 1] = "";
		if (is_router && peer_len)
			peer_text(who, sizeof(who), peer, *peer_len);
		/* The caller's loop logs the refusal at warning level with its own context (which
		 * executor, which socket); this debug line shows the raw routing id. */
		vz_debug("protocol: refused a message from %s: %s", who[0] ? who : "the peer",
			 vz_err_msg(&le));
	}
	if (rc)
		vz_err_set(e, rc, "%s", le.msg);
	return rc;
}

/* error.code / refuse.code for a vinz error (docs/protocol.md §7): "malformed", "too-big",
 * "version", else the error's name in lower case without the E ("notfound"). */
static void code_text(char *out, size_t n, int code)
{
	const char *name = vz_err_name(code);
	if (code == VZ_EPROTO)
		name = "malformed";
	else if (code == VZ_ETOOBIG)
		name = "too-big";
	else if (code == VZ_EVERSION)
		name = "version";
	else if (name[0] == 'E' && name[1])
		name++;
	size_t i = 0;
	for (; name[i] && i + 1 < n; i++)
		out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
	out[i] = '\0';
}

/* Answers a refused message: refuse{code:"version", message, ref, version} for VZ_EVERSION,
 * error{code, message, ref} otherwise ("malformed", "too-big", ...). ref_id may be NULL or empty.
 * Never call it for a refused error or refuse message from a well-behaved peer's point of view:
 * our encoder only emits valid frames, so two vinz peers cannot loop.
 */
int vz_proto_send_refusal(void *sock, const void *peer, size_t peer_len, const char *ref_id,
			  const vz_err *why, vz_err *e)
{
	int rc = 0;
	char code[32];
	int c = why && why->code ? why->code : VZ_EPROTO;
	int is_version = c == VZ_EVERSION;
	json_t *body = json_object();

	code_text(code, sizeof(code), c);
	if (!body || json_object_set_new(body, "code", json_string(code)) ||
	    json_object_set_new(body, "message", json_string(vz_err_msg(why))) ||
	    (ref_id && ref_id[0] && json_object_set_new(body, "ref", json_string(ref_id))) ||
	    (is_version && json_object_set_new(body, "version", json_integer(VZ_PROTO_VERSION)))) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory answering a refused message");
		goto out;
	}
	rc = vz_proto_send(sock, peer, peer_len, is_version ? VZ_MSG_REFUSE : VZ_MSG_ERROR, NULL, body, e);
out:
	json_decref(body);
	return rc;
}

static int setopt(void *sock, int opt, const void *val, size_t len, const char *name, vz_err *e)
{
	if (zmq_setsockopt(sock, opt, val, len) == 0)
		return 0;
	char what[80];
	snprintf(what, sizeof(what), "cannot set socket option %s", name);
	return zmq_fail(e, what);
}

int vz_proto_sockopts(void *sock, vz_err *e)
{
	int rc = 0, stype = 0;
	size_t optlen = sizeof(stype);
	int linger = 1000;            /* a closing socket gives queued messages one second */
	int64_t maxmsg = VZ_PROTO_ZMQ_MAXMSG;
	int rivl = 100, rivl_max = 5000;
	int ka = 1, ka_idle = 60, ka_intvl = 10, ka_cnt = 6;
	int one = 1;
	int sndtimeo;

	if (!sock)
		return vz_err_set(e, VZ_EINVAL, "vz_proto_sockopts: no socket");
	if (zmq_getsockopt(sock, ZMQ_TYPE, &stype, &optlen) != 0)
		return zmq_fail(e, "cannot read the socket type");
	/* The scheduler never waits on one executor: a full queue is reported at once. Other
	 * sockets wait at most a second, so a missing scheduler cannot hang an executor. */
	sndtimeo = stype == ZMQ_ROUTER ? 0 : 1000;

	if ((rc = setopt(sock, ZMQ_LINGER, &linger, sizeof(linger), "ZMQ_LINGER", e)) ||
	    (rc = setopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg), "ZMQ_MAXMSGSIZE", e)) ||
	    (rc = setopt(sock, ZMQ_RECONNECT_IVL, &rivl, sizeof(rivl), "ZMQ_RECONNECT_IVL", e)) ||
	    (rc = setopt(sock, ZMQ_RECONNECT_IVL_MAX, &rivl_max, sizeof(rivl_max), "ZMQ_RECONNECT_IVL_MAX", e)) ||
	    (rc = setopt(sock, ZMQ_TCP_KEEPALIVE, &ka, sizeof(ka), "ZMQ_TCP_KEEPALIVE", e)) ||
	    (rc = setopt(sock, ZMQ_TCP_KEEPALIVE_IDLE, &ka_idle, sizeof(ka_idle), "ZMQ_TCP_KEEPALIVE_IDLE", e)) ||
	    (rc = setopt(sock, ZMQ_TCP_KEEPALIVE_INTVL, &ka_intvl, sizeof(ka_intvl), "ZMQ_TCP_KEEPALIVE_INTVL", e)) ||
	    (rc = setopt(sock, ZMQ_TCP_KEEPALIVE_CNT, &ka_cnt, sizeof(ka_cnt), "ZMQ_TCP_KEEPALIVE_CNT", e)) ||
	    (rc = setopt(sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo), "ZMQ_SNDTIMEO", e)))
		return rc;
	if (stype == ZMQ_ROUTER) {
		/* Unroutable sends fail (VZ_ENOTFOUND) instead of vanishing; a reconnecting executor
		 * with the same routing id takes over from its stale half-open connection. */
		if ((rc = setopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one), "ZMQ_ROUTER_MANDATORY", e)) ||
		    (rc = setopt(sock, ZMQ_ROUTER_HANDOVER, &one, sizeof(one), "ZMQ_ROUTER_HANDOVER", e)))
			return rc;
	}
	return 0;
}

int vz_proto_log_path_ok(const char *rel)
{
	size_t n = rel ? strlen(rel) : 0;
	if (n == 0 || n > 1024 || rel[0] == '/' || strchr(rel, '\\') || strcmp(rel, "job-output.txt") == 0)
		return 0;
	int comps = 0;
	for (const char *p = rel; *p;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.') || ++comps > 16)
			return 0;
		p += len;
		if (*p == '/')
			p++;
		else
			break;
	}
	return rel[n - 1] != '/';
}
