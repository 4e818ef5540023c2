/* vz_test_proto: the scheduler side of the wire protocol as tests and benchmarks play it. */
#ifndef VZ_TEST_PROTO_H
#define VZ_TEST_PROTO_H

#include <stddef.h>

#include "vz_proto.h"

/* The next message of type want on ROUTER socket r (others are dropped), with the sender's
 * routing id in rid/rlen (rid holds VZ_PROTO_MAX_PEER_ID + 1 bytes); NULL after timeout_ms. */
vz_msg *vz_test_router_expect(void *r, vz_msg_type want, char *rid, size_t *rlen, int timeout_ms);

#endif
