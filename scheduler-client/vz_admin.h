/* vz_admin: the client side of the scheduler's admin socket, used by `vinz enqueue`, `status`,
 * `builds` and by `vinz demo`. One request, one reply, with a deadline. */
#ifndef VZ_ADMIN_H
#define VZ_ADMIN_H

#include <jansson.h>

#include "vz_err.h"

/* Sends request op with args (borrowed, may be NULL) to endpoint and waits up to timeout_ms.
 * On success *data is the reply's "data" (new reference, may be JSON null). Errors: VZ_ETIMEOUT
 * when no scheduler answered (message says how to start one), VZ_EINVAL when the scheduler
 * refused the request (its message), VZ_EPROTO/VZ_EIO for transport problems. zctx may be NULL
 * (a private context is used). */
int vz_admin_call(void *zctx, const char *endpoint, const char *op, json_t *args, json_t **data, int timeout_ms,
		  vz_err *e);

#endif
