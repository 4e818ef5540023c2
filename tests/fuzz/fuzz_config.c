/* fuzz_config: arbitrary bytes through vz_config_parse. Every failure must produce at least one
 * diagnostic line naming the file; every success must give a config with all defaults filled. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vz_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vz_config *c = NULL;
	vz_buf diags = VZ_BUF_INIT(1u << 20);
	vz_err e = {0};
	int rc = vz_config_parse(&c, (const char *)data, size, "/nonexistent/fuzz/site.yaml", &diags, &e);
	if (rc != 0) {
		if (c || e.code == 0 || diags.len == 0 || !strstr(vz_buf_cstr(&diags), "site.yaml"))
			abort();
	} else {
		if (!c || !c->state_dir || !c->log_level || !c->scheduler.listen || !c->scheduler.admin ||
		    !c->executor.name || !c->executor.scheduler || !c->executor.work_dir)
			abort();
		for (size_t i = 0; i < c->njobs; i++)
			if (vz_config_job(c, c->jobs[i].name) != &c->jobs[i])
				abort(); /* names are unique */
		for (size_t i = 0; i < c->nprojects; i++)
			if (!vz_config_connection(c, c->projects[i].connection))
				abort(); /* references resolve */
	}
	vz_config_free(c);
	vz_buf_free(&diags);
	return 0;
}
