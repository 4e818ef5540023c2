/* vz_admin: request/reply client for the scheduler's admin socket; see vz_admin.h. */
#include "vz_admin.h"

#include <string.h>
#include <zmq.h>

#include "vz_proto.h"
#include "vz_util.h"

int vz_admin_call(void *zctx, const char *endpoint, const char *op, json_t *args, json_t **data, int timeout_ms,
		  vz_err *e)
{
	*data = NULL;
	void *ctx = zctx ? zctx : zmq_ctx_new();
	void *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
	vz_msg *m = NULL;
	int rc = 0;
	char id[VZ_PROTO_MAX_ID + 1];
	if (!sock) {
		rc = vz_err_set(e, VZ_EIO, "cannot create a socket: %s", zmq_strerror(zmq_errno()));
		goto out;
	}
	if ((rc = vz_proto_sockopts(sock, e)))
		goto out;
	if (zmq_connect(sock, endpoint) != 0) {
		rc = vz_err_set(e, VZ_EINVAL, "cannot connect to the scheduler at %s: %s", endpoint, zmq_strerror(zmq_errno()));
		goto out;
	}
	json_t *body = json_pack("{s:s,s:O}", "op", op, "args", args ? args : json_object());
	if (!args)
		json_decref(json_object_get(body, "args"));
	vz_msg_next_id(id);
	rc = vz_proto_send(sock, NULL, 0, VZ_MSG_REQUEST, id, body, e);
	json_decref(body);
	if (rc)
		goto out;
	uint64_t deadline = vz_mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = vz_mono_ms();
		if (now >= deadline) {
			rc = vz_err_set(e, VZ_ETIMEOUT,
					"no scheduler answered at %s within %d ms; start one with `vinz up --config FILE` "
					"or `vinz scheduler --config FILE`, or pass the right --config",
					endpoint, timeout_ms);
			goto out;
		}
		zmq_pollitem_t pi = { sock, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(&pi, 1, (long)(deadline - now)) <= 0)
			continue;
		char ref[VZ_PROTO_MAX_ID + 1] = "";
		vz_err de = { 0 };
		int r = vz_proto_recv(sock, 0, NULL, NULL, &m, ref, ZMQ_DONTWAIT, &de);
		if (r == VZ_ETIMEOUT)
			continue;
		if (r) {
			rc = vz_err_set(e, r, "bad reply from the scheduler at %s: %s", endpoint, vz_err_msg(&de));
			goto out;
		}
		if (m->type == VZ_MSG_REPLY && strcmp(m->id, id) == 0)
			break;
		vz_msg_free(m);
		m = NULL;
	}
	if (!json_is_true(json_object_get(m->body, "ok"))) {
		const char *err = vz_msg_str(m, "error");
		rc = vz_err_set(e, VZ_EINVAL, "%s", *err ? err : "the scheduler refused the request");
		goto out;
	}
	*data = json_incref(json_object_get(m->body, "data"));
	if (!*data)
		*data = json_null();
out:
	vz_msg_free(m);
	if (sock)
		zmq_close(sock);
	if (!zctx && ctx)
		zmq_ctx_term(ctx);
	return rc;
}
