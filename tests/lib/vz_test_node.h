/* Helpers shared by the node tests (local, ssh, runner): an output capture for vz_node_exec's
 * callback, a wait for processes to be gone, and a flag raised from another thread. */
#ifndef VZ_TEST_NODE_H
#define VZ_TEST_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "vz_buf.h"

typedef struct vz_test_cap {
	vz_buf out, err;
	uint64_t out_bytes;
	uint32_t out_hash;  /* FNV-1a over all of stdout */
	int cancel_at_out;  /* return non-zero once stdout has this many bytes (0: never) */
} vz_test_cap;

void vz_test_cap_init(vz_test_cap *c, size_t max);
void vz_test_cap_free(vz_test_cap *c);
/* A vz_node_output_cb: ctx is a vz_test_cap. */
int vz_test_cap_cb(void *ctx, int stream, const char *data, size_t len);

/* 1 when no process has pattern in its command line, waiting up to 2 s for it to go. */
int vz_test_gone(const char *pattern);

/* A pthread start routine: sleeps 300 ms, then sets *(volatile int *)arg to 1. */
void *vz_test_set_flag_later(void *arg);

#endif
