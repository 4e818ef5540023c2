/* bench_zconf: a tenant of 1,000 untrusted projects with 20 jobs each (each job inheriting from a
 * shared library job, with a branch variant, dependencies and files matchers) plus a config
 * project: load and validate it, then freeze the check graph of every project. Goal (issue 5):
 * under 1 s in total. Peer measured in the same run: parsing the same YAML with vz_yaml_parse
 * alone, the floor any loader pays. Prints times, the ratio and peak memory; fails only on errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "vz_buf.h"
#include "vz_util.h"
#include "vz_yaml.h"
#include "vz_zconf.h"

/* CPU time of this process in ms: on a shared machine wall time mostly measures the neighbours */
static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#define NPROJECTS 1000
#define NJOBS 20

static const char CONFIG[] =
	"- pipeline: {name: check, manager: independent}\n"
	"- pipeline: {name: gate, manager: dependent, post-review: true}\n"
	"- nodeset: {name: small, nodes: [{name: n, label: small}]}\n"
	"- job:\n    name: base\n    parent: null\n    pre-run: pre.yaml\n    post-run: post.yaml\n"
	"    nodeset: small\n    timeout: 1800\n    vars: {site: example}\n"
	"- job:\n    name: lib-unit\n    abstract: true\n    run: unit.yaml\n    vars: {tox: py}\n"
	"    irrelevant-files: ['^doc/.*$', '.*\\.rst$']\n    tags: [unit]\n";

static char *project_file(size_t p)
{
	vz_buf b = VZ_BUF_INIT(1 << 20);
	for (size_t j = 0; j < NJOBS; j++) {
		vz_buf_printf(&b, "- job:\n    name: p%zu-j%zu\n    parent: lib-unit\n    vars: {n: %zu, deep: {a: %zu}}\n"
			      "    timeout: %zu\n    files: ['^src/m%zu/.*$', '^setup\\.cfg$']\n", p, j, j, j, 600 + j, j % 5);
		vz_buf_printf(&b, "- job:\n    name: p%zu-j%zu\n    branches: ^stable/.*$\n    voting: false\n", p, j);
	}
	vz_buf_puts(&b, "- project:\n    check:\n      jobs:\n");
	for (size_t j = 0; j < NJOBS; j++) {
		if (j == 0)
			vz_buf_printf(&b, "        - p%zu-j0\n", p);
		else
			vz_buf_printf(&b, "        - p%zu-j%zu:\n            dependencies: [{name: p%zu-j%zu, soft: true}]\n", p, j,
				      p, j - 1);
	}
	vz_buf_puts(&b, "    gate:\n      jobs:\n");
	for (size_t j = 0; j < NJOBS; j += 2)
		vz_buf_printf(&b, "        - p%zu-j%zu\n", p, j);
	if (b.failed) {
		fprintf(stderr, "bench_zconf: buffer failed\n");
		exit(1);
	}
	return vz_buf_detach(&b);
}

int main(void)
{
	vz_zconf_source *srcs = calloc(NPROJECTS + 1, sizeof(*srcs));
	json_t **files = calloc(NPROJECTS + 1, sizeof(*files));
	char (*names)[64] = calloc(NPROJECTS + 1, 64);
	if (!srcs || !files || !names)
		return 1;
	files[0] = json_pack("{s:s}", "zuul.d/main.yaml", CONFIG);
	srcs[0] = (vz_zconf_source){ "example.org/config", "master", 1, files[0], NULL, 0 };
	size_t bytes = strlen(CONFIG);
	for (size_t p = 0; p < NPROJECTS; p++) {
		char *t = project_file(p);
		bytes += strlen(t);
		files[p + 1] = json_pack("{s:s}", ".zuul.yaml", t);
		free(t);
		snprintf(names[p + 1], 64, "example.org/org/p%zu", p);
		srcs[p + 1] = (vz_zconf_source){ names[p + 1], "master", 0, files[p + 1], NULL, 0 };
	}

	/* peer: YAML parsing alone */
	uint64_t t0 = vz_mono_ms();
	double c0 = cpu_ms();
	for (size_t p = 0; p <= NPROJECTS; p++) {
		const char *s = json_string_value(json_object_get(files[p], p ? ".zuul.yaml" : "zuul.d/main.yaml"));
		vz_ynode *n = NULL;
		vz_err e = { 0 };
		if (vz_yaml_parse(&n, s, strlen(s), "x.yaml", &e)) {
			fprintf(stderr, "bench_zconf: %s\n", e.msg);
			return 1;
		}
		vz_ynode_free(n);
	}
	uint64_t t_yaml = vz_mono_ms() - t0;
	double c_yaml = cpu_ms() - c0;

	t0 = vz_mono_ms();
	c0 = cpu_ms();
	vz_zconf *z = NULL;
	vz_err e = { 0 };
	if (vz_zconf_load(&z, srcs, NPROJECTS + 1, &e)) {
		fprintf(stderr, "bench_zconf: load: %s\n", e.msg);
		return 1;
	}
	uint64_t t_load = vz_mono_ms() - t0;
	double c_load = cpu_ms() - c0;

	t0 = vz_mono_ms();
	c0 = cpu_ms();
	size_t njobs = 0;
	const char *changed[] = { "src/m1/a.py", "doc/index.rst" };
	for (size_t p = 0; p < NPROJECTS; p++) {
		vz_zconf_item it = { names[p + 1], "master", "check", changed, 2 };
		json_t *g = NULL;
		if (vz_zconf_freeze(&g, z, &it, &e)) {
			fprintf(stderr, "bench_zconf: freeze: %s\n", e.msg);
			return 1;
		}
		njobs += json_array_size(json_object_get(g, "jobs"));
		json_decref(g);
	}
	uint64_t t_freeze = vz_mono_ms() - t0;
	double c_freeze = cpu_ms() - c0;

	t0 = vz_mono_ms();
	size_t nerr = vz_zconf_check(z);
	uint64_t t_check = vz_mono_ms() - t0;
	if (nerr) {
		fprintf(stderr, "bench_zconf: check: %s\n", vz_zconf_error(z, 0));
		return 1;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("bench_zconf: %d projects x %d jobs (%.1f MiB of YAML); wall ms (cpu ms)\n", NPROJECTS, NJOBS,
	       (double)bytes / (1 << 20));
	printf("  yaml parse alone (peer)     %6llu (%6.0f)\n", (unsigned long long)t_yaml, c_yaml);
	printf("  load + validate             %6llu (%6.0f)   %.2fx the YAML parse (cpu)\n", (unsigned long long)t_load, c_load,
	       c_yaml > 0 ? c_load / c_yaml : 0.0);
	printf("  freeze check graph x %d   %6llu (%6.0f)   %zu jobs frozen, files matched\n", NPROJECTS,
	       (unsigned long long)t_freeze, c_freeze, njobs);
	printf("  load + freeze               %6llu (%6.0f)   goal < 1000\n", (unsigned long long)(t_load + t_freeze),
	       c_load + c_freeze);
	printf("  check (every pipeline x branch) %llu ms\n", (unsigned long long)t_check);
	printf("  peak RSS                    %6ld MiB\n", ru.ru_maxrss / 1024);
	vz_zconf_free(z);
	for (size_t p = 0; p <= NPROJECTS; p++)
		json_decref(files[p]);
	free(files);
	free(srcs);
	free(names);
	return 0;
}
