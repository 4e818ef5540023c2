/* fuzz_template: arbitrary bytes through vz_template. The first byte picks render, render_value
 * or eval; the rest is the template. Checks that nothing crashes, leaks or runs away under small
 * caps, and that every failure carries a code and a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vz_template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char VARS[] =
	"{\"s\": \"Hello\", \"n\": 7, \"f\": 1.5, \"t\": true, \"z\": null, \"l\": [1, 2, 3],"
	" \"names\": [\"a\", \"b\"], \"d\": {\"k\": \"v\", \"n\": {\"x\": 1}}, \"empty\": [],"
	" \"res\": {\"changed\": true}, \"users\": [{\"name\": \"ann\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static json_t *vars;
	if (!vars && !(vars = json_loads(VARS, 0, NULL)))
		abort();
	if (size < 1)
		return 0;
	vz_template_opts o = { 0 };
	o.max_output = 64 * 1024;
	o.max_iterations = 5000;
	o.max_steps = 200000;
	o.trim_blocks = data[0] & 4;
	o.keep_trailing_newline = data[0] & 8;
	const char *t = (const char *)data + 1;
	size_t n = size - 1;
	vz_err e = { 0 };
	char *out = NULL;
	json_t *v = NULL;
	int rc;
	switch (data[0] % 3) {
	case 0:
		rc = vz_template_render(&out, t, n, vars, &o, &e);
		if (rc == 0 && (!out || strlen(out) > o.max_output))
			abort();
		break;
	case 1:
		rc = vz_template_render_value(&v, t, n, vars, &o, &e);
		if (rc == 0 && !v)
			abort();
		break;
	default:
		rc = vz_template_eval(&v, t, n, vars, &o, &e);
		if (rc == 0 && !v)
			abort();
		(void)vz_template_truthy(v);
		break;
	}
	if (rc != 0 && (e.code != rc || e.msg[0] == '\0' || out || v))
		abort();
	free(out);
	json_decref(v);
	return 0;
}
