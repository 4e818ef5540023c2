/* vz_test_proto: see vz_test_proto.h. */
#include "vz_test_proto.h"

#include <zmq.h>

#include "vz_util.h"

vz_msg *vz_test_router_expect(void *r, vz_msg_type want, char *rid, size_t *rlen, int timeout_ms)
{
	uint64_t until = vz_mono_ms() + (uint64_t)timeout_ms;
	while (vz_mono_ms() < until) {
		zmq_pollitem_t pi = { r, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(&pi, 1, 50) <= 0)
			continue;
		vz_msg *m = NULL;
		vz_err e = { 0 };
		if (vz_proto_recv(r, 1, rid, rlen, &m, NULL, ZMQ_DONTWAIT, &e))
			continue;
		if (m->type == want)
			return m;
		vz_msg_free(m);
	}
	return NULL;
}
