/* fuzz_playbook: arbitrary bytes through the playbook loader (vz_playbook_parse, then the tree
 * description) and the inventory parser. Checks that loading never crashes, leaks or runs away,
 * and that every failure leaves a message naming the file. Imports resolve against a directory
 * that does not exist, so the input alone decides what is loaded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vz_inventory.h"
#include "vz_playbook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vz_playbook *pb = NULL;
	vz_err e = { 0 };
	int rc = vz_playbook_parse(&pb, (const char *)data, size, "fuzz.yml", "/nonexistent-vz-fuzz", &e);
	if (rc != 0) {
		if (pb || e.code == 0 || (strstr(e.msg, "fuzz.yml") == NULL && strstr(e.msg, "/nonexistent-vz-fuzz") == NULL &&
					  e.code != VZ_ENOMEM))
			abort();
	} else {
		json_t *d = vz_playbook_describe(pb);
		char *s = json_dumps(d, JSON_COMPACT);
		free(s);
		json_decref(d);
		vz_playbook_free(pb);
	}
	vz_inventory *inv = NULL;
	vz_err ie = { 0 };
	if (vz_inventory_parse(&inv, (const char *)data, size, "fuzz.ini", &ie) == 0) {
		json_t *m = NULL;
		vz_err me = { 0 };
		if (vz_inventory_match(&m, inv, "all:!web:&g*", NULL, &me) == 0)
			json_decref(m);
		if (vz_inventory_nhosts(inv)) {
			json_t *v = vz_inventory_host_vars(inv, vz_inventory_host(inv, 0));
			json_decref(v);
		}
		json_t *g = vz_inventory_groups(inv);
		json_decref(g);
		vz_inventory_free(inv);
	} else if (inv || ie.code == 0) {
		abort();
	}
	return 0;
}
