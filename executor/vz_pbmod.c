/* vz_pbmod: the table of native playbook modules; see vz_pbmod.h. Each module lives in its own
 * vz_pbmod_<name>.c and is listed here once. */
#include "vz_pbmod.h"

#include <string.h>

extern const vz_pbmod vz_pbmod_command, vz_pbmod_shell, vz_pbmod_raw, vz_pbmod_debug, vz_pbmod_fail,
	vz_pbmod_assert, vz_pbmod_set_fact, vz_pbmod_include_vars, vz_pbmod_zuul_return, vz_pbmod_copy,
	vz_pbmod_template, vz_pbmod_file, vz_pbmod_stat, vz_pbmod_fetch, vz_pbmod_synchronize, vz_pbmod_lineinfile,
	vz_pbmod_wait_for, vz_pbmod_script;

/* Modules run on the node or the executor (engine side). */
static const vz_pbmod *const modules[] = {
	&vz_pbmod_command, &vz_pbmod_shell, &vz_pbmod_raw, &vz_pbmod_debug, &vz_pbmod_fail, &vz_pbmod_assert,
	&vz_pbmod_set_fact, &vz_pbmod_include_vars, &vz_pbmod_zuul_return,
	&vz_pbmod_copy, &vz_pbmod_template, &vz_pbmod_file, &vz_pbmod_stat, &vz_pbmod_fetch,
	&vz_pbmod_synchronize, &vz_pbmod_lineinfile, &vz_pbmod_wait_for, &vz_pbmod_script,
	NULL,
};

const vz_pbmod *vz_pbmod_find(const char *name)
{
	static const char *const prefixes[] = { "ansible.builtin.", "ansible.legacy.", NULL };
	if (!name)
		return NULL;
	for (size_t i = 0; prefixes[i]; i++) {
		size_t n = strlen(prefixes[i]);
		if (strncmp(name, prefixes[i], n) == 0) {
			name += n;
			break;
		}
	}
	for (size_t i = 0; modules[i]; i++)
		if (strcmp(modules[i]->name, name) == 0)
			return modules[i];
	return NULL;
}
