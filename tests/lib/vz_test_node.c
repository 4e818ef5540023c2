/* vz_test_node: see vz_test_node.h. */
#include "vz_test_node.h"

#include <string.h>
#include <unistd.h>

#include "vz_node.h"
#include "vz_test_sshd.h"

void vz_test_cap_init(vz_test_cap *c, size_t max)
{
	memset(c, 0, sizeof(*c));
	vz_buf_init(&c->out, max);
	vz_buf_init(&c->err, max);
	c->out_hash = 2166136261u;
}

void vz_test_cap_free(vz_test_cap *c)
{
	vz_buf_free(&c->out);
	vz_buf_free(&c->err);
}

int vz_test_cap_cb(void *ctx, int stream, const char *data, size_t len)
{
	vz_test_cap *c = ctx;
	if (stream == VZ_NODE_STDOUT) {
		for (size_t i = 0; i < len; i++)
			c->out_hash = (c->out_hash ^ (unsigned char)data[i]) * 16777619u;
		c->out_bytes += len;
		vz_buf_add_capped(&c->out, data, len);
		return c->cancel_at_out && c->out_bytes >= (uint64_t)c->cancel_at_out;
	}
	vz_buf_add_capped(&c->err, data, len);
	return 0;
}

int vz_test_gone(const char *pattern)
{
	const char *argv[] = { "pgrep", "-f", pattern, NULL };
	for (int i = 0; i < 40; i++) {
		if (vz_test_sshd_run(argv, NULL) == 1)
			return 1;
		usleep(50 * 1000);
	}
	return 0;
}

void *vz_test_set_flag_later(void *arg)
{
	usleep(300 * 1000);
	*(volatile int *)arg = 1;
	return NULL;
}
