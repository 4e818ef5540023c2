/* fuzz_frame: arbitrary bytes through vz_msg_decode. Whatever decodes must re-encode, and the
 * re-encoded frame must decode again to the same type and id (the encoder and the decoder agree
 * on the message table). Any disagreement aborts, which libFuzzer reports as a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vz_msg *m = NULL, *m2 = NULL;
	vz_err e = { 0, "" };
	char ref[VZ_PROTO_MAX_ID + 1];
	vz_buf b = VZ_BUF_INIT(VZ_PROTO_MAX_FRAME);

	int rc = vz_msg_decode(&m, data, size, ref, &e);
	if (rc != 0) {
		if (m != NULL || e.code != rc || strlen(ref) > VZ_PROTO_MAX_ID)
			abort();
		return 0;
	}
	if (m == NULL || vz_msg_type_name((int)m->type) == NULL)
		abort();
	if (strcmp(ref, m->id) != 0)
		abort();

	vz_err_clear(&e);
	rc = vz_msg_encode(&b, m->type, m->id, m->body, &e);
	/* Re-encoding may legitimately grow a frame (1e5 becomes 100000.0), so only a frame that
	 * was already near the cap may come back too big. */
	if (rc == VZ_ETOOBIG && size > VZ_PROTO_MAX_FRAME / 8)
		goto out;
	if (rc != 0) {
		fprintf(stderr, "re-encode failed: %s\n", vz_err_msg(&e));
		abort();
	}
	vz_err_clear(&e);
	rc = vz_msg_decode(&m2, b.ptr, b.len, ref, &e);
	if (rc != 0) {
		fprintf(stderr, "re-decode failed: %s\n", vz_err_msg(&e));
		abort();
	}
	if (m2->type != m->type || strcmp(m2->id, m->id) != 0 || !json_equal(m->body, m2->body))
		abort();
out:
	vz_msg_free(m);
	vz_msg_free(m2);
	vz_buf_free(&b);
	return 0;
}
