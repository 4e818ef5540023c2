/* Unit tests for vz_zconf: Zuul's inheritance and variant rules, table-driven, each case naming the
 * rule it checks and the section of Zuul's documentation that states it
 * (https://zuul-ci.org/docs/zuul/latest/config/job.html and .../config/project.html). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vz_buf.h"
#include "vz_zconf.h"

/* The config project every case starts from: two pipelines and a base job. */
static const char BASE[] = "- pipeline:\n"
			   "    name: check\n"
			   "    manager: independent\n"
			   "- pipeline:\n"
			   "    name: gate\n"
			   "    manager: dependent\n"
			   "    post-review: true\n"
			   "- nodeset:\n"
			   "    name: small\n"
			   "    nodes:\n"
			   "      - {name: n1, label: small}\n"
			   "- nodeset:\n"
			   "    name: pair\n"
			   "    nodes:\n"
			   "      - {name: a, label: big}\n"
			   "      - {name: b, label: big}\n"
			   "    groups:\n"
			   "      - {name: g, nodes: [a, b]}\n"
			   "- job:\n"
			   "    name: base\n"
			   "    parent: null\n"
			   "    pre-run: base-pre.yaml\n"
			   "    post-run: base-post.yaml\n"
			   "    cleanup-run: base-cleanup.yaml\n"
			   "    timeout: 1800\n"
			   "    nodeset: small\n"
			   "    vars: {a: {x: 1, y: 1}, keep: base}\n";

typedef struct icase {
	const char *rule;       /* the Zuul rule, and where Zuul documents it */
	const char *trusted;    /* appended to BASE (config project "example.org/config") */
	const char *app;        /* example.org/org/app, branch master, .zuul.yaml */
	const char *app_stable; /* the same project's stable/1 branch, or NULL (one branch) */
	const char *branch;     /* item branch, default master */
	const char *pipeline;   /* default check */
	const char *files;      /* comma-separated changed files, or NULL */
	const char *job;        /* the frozen job looked at */
	const char *what;       /* attr:NAME, pb:KIND (playbook paths), pbsec:KIND (secrets per playbook),
				   pbroles:KIND, jobs, deps, skipped, error */
	const char *expect;     /* JSON text, or a substring of the error */
} icase;

static const icase cases[] = {
	{ "run is replaced by the child (job.run: a child's run playbook replaces its parent's)",
	  "- job: {name: parent, run: p.yaml}\n- job: {name: child, parent: parent, run: c.yaml}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "pb:run", "[\"c.yaml\"]" },
	{ "pre-run is appended, parent first (job.pre-run)",
	  "- job: {name: parent, pre-run: p-pre.yaml, run: p.yaml}\n- job: {name: child, parent: parent, pre-run: c-pre.yaml}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "pb:pre-run", "[\"base-pre.yaml\",\"p-pre.yaml\",\"c-pre.yaml\"]" },
	{ "post-run is prepended, child first (job.post-run)",
	  "- job: {name: parent, post-run: p-post.yaml, run: p.yaml}\n- job: {name: child, parent: parent, post-run: [c1.yaml, c2.yaml]}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "pb:post-run", "[\"c1.yaml\",\"c2.yaml\",\"p-post.yaml\",\"base-post.yaml\"]" },
	{ "cleanup-run is prepended, child first (job.cleanup-run)",
	  "- job: {name: child, cleanup-run: c.yaml, run: r.yaml}\n- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "pb:cleanup-run", "[\"c.yaml\",\"base-cleanup.yaml\"]" },
	{ "timeout is replaced (job.timeout)",
	  "- job: {name: child, run: r.yaml, timeout: 60}\n- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "attr:timeout", "60" },
	{ "attempts defaults to 3 (job.attempts)",
	  "- job: {name: child, run: r.yaml}\n- project: {name: org/app, check: {jobs: [child]}}\n", NULL, NULL, NULL, NULL,
	  NULL, "child", "attr:attempts", "3" },
	{ "the project-pipeline variant is applied last (project.<pipeline>.jobs: a variant)",
	  "- job: {name: child, run: r.yaml, voting: true}\n- project: {name: org/app, check: {jobs: [{child: {voting: false}}]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "attr:voting", "false" },
	{ "nodeset is replaced, not merged (job.nodeset)",
	  "- job: {name: child, run: r.yaml, nodeset: pair}\n- project: {name: org/app, check: {jobs: [child]}}\n", NULL,
	  NULL, NULL, NULL, NULL, "child", "attr:nodeset", "\"pair\"" },
	{ "vars are deep-merged, the child's value winning (job.vars)",
	  "- job: {name: child, run: r.yaml, vars: {a: {y: 2, z: 2}}}\n- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "attr:vars", "{\"a\":{\"x\":1,\"y\":2,\"z\":2},\"keep\":\"base\"}" },
	{ "job vars override project vars; a project-pipeline variant's vars override both (project.vars)",
	  "- job: {name: child, run: r.yaml, vars: {keep: job, j: 1}}\n"
	  "- project: {name: org/app, vars: {keep: project, p: 1, j: 0}, check: {jobs: [{child: {vars: {p: 2}}}]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "attr:vars", "{\"a\":{\"x\":1,\"y\":1},\"keep\":\"job\",\"p\":2,\"j\":1}" },
	{ "host-vars and group-vars are deep-merged (job.host-vars, job.group-vars)",
	  "- job: {name: parent, run: r.yaml, host-vars: {a: {x: 1, y: 1}}}\n"
	  "- job: {name: child, parent: parent, host-vars: {a: {y: 2}, b: {z: 3}}}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "attr:host-vars", "{\"a\":{\"x\":1,\"y\":2},\"b\":{\"z\":3}}" },
	{ "tags are the union of the parents' and variants' (job.tags)",
	  "- job: {name: parent, run: r.yaml, tags: [b, a]}\n- job: {name: child, parent: parent, tags: [c, a]}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "attr:tags", "[\"a\",\"b\",\"c\"]" },
	{ "provides and requires accumulate (job.provides, job.requires)",
	  "- job: {name: parent, run: r.yaml, provides: x}\n- job: {name: child, parent: parent, provides: [y]}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "attr:provides", "[\"x\",\"y\"]" },
	{ "required-projects are added to the parent's, a later entry for a project replacing it (job.required-projects)",
	  "- job: {name: parent, run: r.yaml, required-projects: [org/lib, org/other]}\n"
	  "- job: {name: child, parent: parent, required-projects: [{name: org/lib, override-checkout: stable}]}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "attr:required-projects",
	  "[{\"name\":\"org/lib\",\"override-checkout\":\"stable\"},{\"name\":\"org/other\"}]" },
	{ "semaphores accumulate (job.semaphores)",
	  "- semaphore: {name: s1}\n- semaphore: {name: s2, max: 2}\n"
	  "- job: {name: parent, run: r.yaml, semaphores: s2}\n- job: {name: child, parent: parent, semaphore: s1}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "attr:semaphores", "[\"s1\",\"s2\"]" },
	{ "allowed-projects are intersected: a child cannot widen them (job.allowed-projects)",
	  "- job: {name: parent, run: r.yaml, allowed-projects: [org/app, org/lib]}\n"
	  "- job: {name: child, parent: parent, allowed-projects: [org/lib, org/other]}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "error", "is not allowed to run job \"child\"" },
	{ "a final job's execution attributes cannot change (job.final)",
	  "- job: {name: parent, run: r.yaml, final: true}\n- job: {name: child, parent: parent, timeout: 5}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "error", "unable to modify final job \"parent\" attribute \"timeout\"" },
	{ "a final job may still change voting (job.final: context attributes)",
	  "- job: {name: fin, run: r.yaml, final: true}\n- project: {name: org/app, check: {jobs: [{fin: {voting: false}}]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "fin", "attr:voting", "false" },
	{ "a protected job may not be inherited by another project (job.protected)",
	  "- job: {name: prot, run: r.yaml, protected: true}\n",
	  "- job: {name: mine, parent: prot, run: m.yaml}\n- project: {check: {jobs: [mine]}}\n", NULL, NULL, NULL, NULL,
	  "mine", "error", "job \"prot\" is protected (defined in example.org/config)" },
	{ "an abstract job may not run directly (job.abstract)",
	  "- job: {name: abs, run: r.yaml, abstract: true}\n- project: {name: org/app, check: {jobs: [abs]}}\n", NULL, NULL,
	  NULL, NULL, NULL, "abs", "error", "job \"abs\" is abstract and may not be run directly" },
	{ "a job inheriting from an abstract one is not abstract (job.abstract)",
	  "- job: {name: abs, run: r.yaml, abstract: true}\n- job: {name: concrete, parent: abs}\n"
	  "- project: {name: org/app, check: {jobs: [concrete]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "concrete", "attr:abstract", "false" },
	{ "an intermediate job may only be inherited by an abstract job (job.intermediate)",
	  "- job: {name: mid, run: r.yaml, abstract: true, intermediate: true}\n- job: {name: leaf, parent: mid}\n"
	  "- project: {name: org/app, check: {jobs: [leaf]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "leaf", "error", "is intermediate and may only be inherited by an abstract job" },
	{ "an untrusted in-repo job gets an implied branch matcher when its project has several branches (job.branches)",
	  NULL, "- job: {name: unit, run: master.yaml}\n- project: {check: {jobs: [unit]}}\n",
	  "- job: {name: unit, run: stable.yaml}\n- project: {check: {jobs: [unit]}}\n", "stable/1", NULL, NULL, "unit",
	  "pb:run", "[\"stable.yaml\"]" },
	{ "a single-branch untrusted project gets no implied branch matcher (job.branches)",
	  NULL, "- job: {name: unit, run: any.yaml}\n- project: {check: {jobs: [unit]}}\n", NULL, "feature/x", NULL, NULL,
	  "unit", "pb:run", "[\"any.yaml\"]" },
	{ "explicit branches are matched as Python re.match: anchored at the start only (job.branches)",
	  "- job: {name: unit, run: any.yaml}\n- job: {name: unit, branches: stable, timeout: 7}\n"
	  "- project: {name: org/app, check: {jobs: [unit]}}\n",
	  NULL, NULL, "stable/2023.1", NULL, NULL, "unit", "attr:timeout", "7" },
	{ "variants that do not match the branch are not applied (job.branches)",
	  "- job: {name: unit, run: any.yaml}\n- job: {name: unit, branches: ^stable/.*$, timeout: 7}\n"
	  "- project: {name: org/app, check: {jobs: [unit]}}\n",
	  NULL, NULL, "master", NULL, NULL, "unit", "attr:timeout", "1800" },
	{ "matching variants apply in configuration order, the last one winning (job variants)",
	  "- job: {name: unit, run: any.yaml, timeout: 5}\n- job: {name: unit, timeout: 6}\n- job: {name: unit, timeout: 7}\n"
	  "- project: {name: org/app, check: {jobs: [unit]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "unit", "attr:timeout", "7" },
	{ "pragma implied-branch-matchers: false turns the implied matcher off (pragma)",
	  NULL, "- pragma: {implied-branch-matchers: false}\n- job: {name: unit, run: master.yaml}\n"
	  "- project: {check: {jobs: [unit]}}\n",
	  "- project: {check: {jobs: [unit]}}\n", "stable/1", NULL, NULL, "unit", "pb:run", "[\"master.yaml\"]" },
	{ "files: a job runs when any changed file matches (job.files)",
	  "- job: {name: docs, run: d.yaml, files: ['^doc/.*$']}\n- project: {name: org/app, check: {jobs: [docs]}}\n", NULL,
	  NULL, NULL, NULL, "src/a.c,doc/index.rst", NULL, "jobs", "[\"docs\"]" },
	{ "files: a job is skipped when no changed file matches (job.files)",
	  "- job: {name: docs, run: d.yaml, files: ['^doc/.*$']}\n- project: {name: org/app, check: {jobs: [docs]}}\n", NULL,
	  NULL, NULL, NULL, "src/a.c,/COMMIT_MSG", NULL, "jobs", "[]" },
	{ "files: a change touching only /COMMIT_MSG runs the job (Zuul's MatchAnyFiles)",
	  "- job: {name: docs, run: d.yaml, files: ['^doc/.*$']}\n- project: {name: org/app, check: {jobs: [docs]}}\n", NULL,
	  NULL, NULL, NULL, "/COMMIT_MSG", NULL, "jobs", "[\"docs\"]" },
	{ "irrelevant-files: skipped when every file (but /COMMIT_MSG) is irrelevant (job.irrelevant-files)",
	  "- job: {name: unit, run: u.yaml, irrelevant-files: ['^doc/', '.*\\.rst$']}\n"
	  "- project: {name: org/app, check: {jobs: [unit]}}\n",
	  NULL, NULL, NULL, NULL, "doc/a.txt,README.rst,/COMMIT_MSG", NULL, "jobs", "[]" },
	{ "irrelevant-files: runs when one file is relevant (job.irrelevant-files)",
	  "- job: {name: unit, run: u.yaml, irrelevant-files: ['^doc/']}\n- project: {name: org/app, check: {jobs: [unit]}}\n",
	  NULL, NULL, NULL, NULL, "doc/a.txt,src/b.c", NULL, "jobs", "[\"unit\"]" },
	{ "files: [] replaces the parent's matcher with one no changed file matches (Zuul's setFileMatcher([]), MatchAnyFiles)",
	  "- job: {name: docs, run: d.yaml, files: ['^doc/.*$']}\n- job: {name: child, parent: docs, files: []}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, "doc/a.txt", NULL, "jobs", "[]" },
	{ "files: [] still runs the job for a change touching only /COMMIT_MSG (MatchAnyFiles)",
	  "- job: {name: child, run: d.yaml, files: []}\n- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, "/COMMIT_MSG", NULL, "jobs", "[\"child\"]" },
	{ "irrelevant-files: [] replaces the parent's and skips nothing (MatchAllFiles with no regex)",
	  "- job: {name: unit, run: u.yaml, irrelevant-files: ['^doc/']}\n- job: {name: child, parent: unit, irrelevant-files: []}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, "doc/a.txt", NULL, "jobs", "[\"child\"]" },
	{ "a project's templates' jobs come first, then its own (project.templates)",
	  "- job: {name: t1, run: r.yaml}\n- job: {name: own, run: r.yaml}\n"
	  "- project-template: {name: tmpl, check: {jobs: [t1]}}\n"
	  "- project: {name: org/app, templates: [tmpl], check: {jobs: [own]}}\n",
	  NULL, NULL, NULL, NULL, NULL, NULL, "jobs", "[\"t1\",\"own\"]" },
	{ "a regex project stanza applies to every project it matches (project.name)",
	  "- job: {name: lint, run: r.yaml}\n- project: {name: ^org/.*$, check: {jobs: [lint]}}\n", NULL, NULL, NULL, NULL,
	  NULL, NULL, "jobs", "[\"lint\"]" },
	{ "a soft dependency on a job that does not run is dropped (job.dependencies)",
	  "- job: {name: build, run: r.yaml, files: ['^src/']}\n- job: {name: test, run: r.yaml}\n"
	  "- project: {name: org/app, check: {jobs: [build, {test: {dependencies: [{name: build, soft: true}]}}]}}\n",
	  NULL, NULL, NULL, NULL, "doc/x", "test", "deps", "[]" },
	{ "a hard dependency on a job that does not run is an error (job.dependencies)",
	  "- job: {name: build, run: r.yaml, files: ['^src/']}\n- job: {name: test, run: r.yaml}\n"
	  "- project: {name: org/app, check: {jobs: [build, {test: {dependencies: [build]}}]}}\n",
	  NULL, NULL, NULL, NULL, "doc/x", "test", "error", "job \"test\" depends on \"build\", which does not run" },
	{ "dependencies form a graph; soft ones stay when the job runs (job.dependencies)",
	  "- job: {name: build, run: r.yaml}\n- job: {name: test, run: r.yaml}\n"
	  "- project: {name: org/app, check: {jobs: [build, {test: {dependencies: [{name: build, soft: true}]}}]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "test", "deps", "[{\"name\":\"build\",\"soft\":true}]" },
	{ "a dependency cycle is an error naming the jobs (job.dependencies)",
	  "- job: {name: a, run: r.yaml}\n- job: {name: b, run: r.yaml}\n- job: {name: c, run: r.yaml}\n"
	  "- project: {name: org/app, check: {jobs: [{a: {dependencies: c}}, {b: {dependencies: a}}, {c: {dependencies: b}}]}}\n",
	  NULL, NULL, NULL, NULL, NULL, NULL, "error", "dependency cycle between jobs: a -> c -> b -> a" },
	{ "secrets go to the defining job's playbooks only (job.secrets)",
	  "- secret: {name: s, data: {k: v}}\n- job: {name: parent, run: p.yaml, post-run: p-post.yaml}\n"
	  "- job: {name: child, parent: parent, secrets: [s], run: c.yaml}\n"
	  "- project: {name: org/app, gate: {jobs: [child]}}\n",
	  NULL, NULL, NULL, "gate", NULL, "child", "pbsec:post-run", "[[],[]]" },
	{ "pass-to-parent secrets also go to the parents' playbooks (job.secrets.pass-to-parent)",
	  "- secret: {name: s, data: {k: v}}\n- job: {name: parent, run: p.yaml, post-run: p-post.yaml}\n"
	  "- job: {name: child, parent: parent, secrets: [{name: s, pass-to-parent: true}], run: c.yaml}\n"
	  "- project: {name: org/app, gate: {jobs: [child]}}\n",
	  NULL, NULL, NULL, "gate", NULL, "child", "pbsec:post-run", "[[\"s\"],[\"s\"]]" },
	{ "roles: a playbook sees the roles of its job and its parents, not its children's (job.roles)",
	  "- job: {name: parent, pre-run: p.yaml, roles: [{zuul: org/roles-a}]}\n"
	  "- job: {name: child, parent: parent, run: c.yaml, roles: [{zuul: org/ansible-role-b}]}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "pbroles:pre-run", "[[],[\"roles-a\"]]" },
	{ "roles: the child's playbooks see every role (job.roles)",
	  "- job: {name: parent, pre-run: p.yaml, roles: [{zuul: org/roles-a}]}\n"
	  "- job: {name: child, parent: parent, run: c.yaml, roles: [{zuul: org/ansible-role-b}]}\n"
	  "- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "pbroles:run", "[[\"roles-a\",\"b\"]]" },
	{ "an untrusted job using secrets is post-review and refused in a pre-review pipeline (job.post-review)",
	  NULL, "- secret: {name: s, data: {k: v}}\n- job: {name: pub, run: p.yaml, secrets: s}\n"
	  "- project: {check: {jobs: [pub]}}\n",
	  NULL, NULL, NULL, NULL, "pub", "error", "pre-review pipeline check does not allow post-review job \"pub\"" },
	{ "the parent defaults to base (job.parent)",
	  "- job: {name: child, run: r.yaml}\n- project: {name: org/app, check: {jobs: [child]}}\n", NULL, NULL, NULL, NULL,
	  NULL, "child", "pb:pre-run", "[\"base-pre.yaml\"]" },
	{ "a job needs a run playbook once frozen (job.run)",
	  "- job: {name: child}\n- project: {name: org/app, check: {jobs: [child]}}\n", NULL, NULL, NULL, NULL, NULL,
	  "child", "error", "job \"child\" does not specify a run playbook" },
	{ "a variant's different parent is collected too (Layout.collectJobs)",
	  "- job: {name: other, pre-run: o.yaml}\n- job: {name: child, run: r.yaml}\n"
	  "- job: {name: child, parent: other}\n- project: {name: org/app, check: {jobs: [child]}}\n",
	  NULL, NULL, NULL, NULL, NULL, "child", "pb:pre-run", "[\"base-pre.yaml\",\"o.yaml\"]" },
	{ "a job its files matchers skip still reports a final violation, as Zuul freezes before matching files",
	  "- job: {name: fin, run: r.yaml, final: true, files: ['^src/']}\n"
	  "- project: {name: org/app, check: {jobs: [{fin: {timeout: 3}}]}}\n",
	  NULL, NULL, NULL, NULL, "doc/x", "fin", "error", "unable to modify final job \"fin\" attribute \"timeout\"" },
	{ "override-checkout selects the parent's variants of that branch (job.override-checkout)",
	  NULL,
	  "- job: {name: lib-base, run: master.yaml}\n- job: {name: child, parent: lib-base, override-checkout: stable/1}\n"
	  "- project: {check: {jobs: [child]}}\n",
	  "- job: {name: lib-base, run: stable.yaml}\n", NULL, NULL, NULL, "child", "pb:run", "[\"stable.yaml\"]" },
	{ "a required project's override-checkout does too, for jobs that project defines (job.required-projects)",
	  NULL,
	  "- job: {name: lib-base, run: master.yaml}\n"
	  "- job: {name: child, parent: lib-base, required-projects: [{name: org/app, override-checkout: stable/1}]}\n"
	  "- project: {check: {jobs: [child]}}\n",
	  "- job: {name: lib-base, run: stable.yaml}\n", NULL, NULL, NULL, "child", "pb:run", "[\"stable.yaml\"]" },
	{ "an override-checkout naming a branch the project lacks leaves the item's branch (job.override-checkout)",
	  NULL,
	  "- job: {name: lib-base, run: master.yaml}\n- job: {name: child, parent: lib-base, override-checkout: nope}\n"
	  "- project: {check: {jobs: [child]}}\n",
	  "- job: {name: lib-base, run: stable.yaml}\n", NULL, NULL, NULL, "child", "pb:run", "[\"master.yaml\"]" },
	{ "fail-fast and debug of a project's pipeline (project.<pipeline>.fail-fast)",
	  "- job: {name: j, run: r.yaml}\n- project: {name: org/app, gate: {fail-fast: true, jobs: [j]}}\n", NULL, NULL, NULL,
	  "gate", NULL, NULL, "fail-fast", "true" },
};

static json_t *files_of(const char *app)
{
	return app ? json_pack("{s:s}", ".zuul.yaml", app) : json_object();
}

static vz_zconf *load_case(const char *trusted_extra, const char *app, const char *app_stable, vz_err *e, int *rc)
{
	vz_buf cb = VZ_BUF_INIT(1 << 22);
	vz_buf_puts(&cb, BASE);
	if (trusted_extra)
		vz_buf_puts(&cb, trusted_extra);
	assert_int_equal(cb.failed, 0);
	char *cfg = vz_buf_detach(&cb);
	json_t *f0 = json_pack("{s:s}", "zuul.d/config.yaml", cfg);
	json_t *f1 = files_of(app), *f2 = files_of(app_stable);
	vz_zconf_source srcs[3] = {
		{ "example.org/config", "master", 1, f0, "config/", 0 },
		{ "example.org/org/app", "master", 0, f1, "app/", 0 },
		{ "example.org/org/app", "stable/1", 0, f2, "app-stable/", 0 },
	};
	vz_zconf *z = NULL;
	*rc = vz_zconf_load(&z, srcs, app_stable ? 3 : 2, e);
	json_decref(f0);
	json_decref(f1);
	json_decref(f2);
	free(cfg);
	return z;
}

static json_t *pluck(json_t *pbs, const char *key)
{
	json_t *a = json_array();
	size_t i;
	json_t *pb;
	json_array_foreach(pbs, i, pb) {
		if (strcmp(key, "path") == 0)
			json_array_append(a, json_object_get(pb, "path"));
		else {
			json_t *l = json_object_get(pb, key);
			if (strcmp(key, "roles") == 0) {
				json_t *names = json_array();
				size_t k;
				json_t *r;
				json_array_foreach(l, k, r) json_array_append(names, json_object_get(r, "name"));
				json_array_append_new(a, names);
			} else
				json_array_append(a, l);
		}
	}
	return a;
}

static void test_inheritance_table(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const icase *t = &cases[c];
		vz_err e = { 0 };
		int rc;
		vz_zconf *z = load_case(t->trusted, t->app, t->app_stable, &e, &rc);
		if (rc)
			fail_msg("case %zu (%s): load failed: %s", c, t->rule, e.msg);
		const char *fl[16];
		size_t nf = 0;
		char buf[512];
		if (t->files) {
			snprintf(buf, sizeof(buf), "%s", t->files);
			for (char *s = strtok(buf, ","); s && nf < 16; s = strtok(NULL, ","))
				fl[nf++] = s;
		}
		vz_zconf_item it = { "org/app", t->branch ? t->branch : "master", t->pipeline ? t->pipeline : "check",
				     t->files ? fl : NULL, nf };
		json_t *g = NULL;
		vz_err fe = { 0 };
		rc = vz_zconf_freeze(&g, z, &it, &fe);
		if (strcmp(t->what, "error") == 0) {
			if (rc == 0 || !strstr(fe.msg, t->expect))
				fail_msg("case %zu (%s): expected an error with <%s>, got rc %d <%s>", c, t->rule, t->expect, rc,
					 fe.msg);
			/* a freeze error is positioned: FILE:LINE:COL: */
			if (!strstr(fe.msg, ".yaml:"))
				fail_msg("case %zu (%s): error without a position: %s", c, t->rule, fe.msg);
			vz_zconf_free(z);
			continue;
		}
		if (rc)
			fail_msg("case %zu (%s): freeze failed: %s", c, t->rule, fe.msg);
		json_t *got = NULL, *job = NULL;
		size_t i;
		json_t *j;
		json_array_foreach(json_object_get(g, "jobs"), i, j) if (t->job && strcmp(json_string_value(json_object_get(j, "name")),
										  t->job) == 0) job = j;
		if (strcmp(t->what, "jobs") == 0) {
			got = json_array();
			json_array_foreach(json_object_get(g, "jobs"), i, j) json_array_append(got, json_object_get(j, "name"));
		} else if (strcmp(t->what, "fail-fast") == 0)
			got = json_incref(json_object_get(g, "fail-fast"));
		else {
			if (!job)
				fail_msg("case %zu (%s): job %s not in the graph", c, t->rule, t->job);
			if (strncmp(t->what, "attr:", 5) == 0)
				got = json_incref(json_object_get(json_object_get(job, "attributes"), t->what + 5));
			else if (strncmp(t->what, "pb:", 3) == 0)
				got = pluck(json_object_get(json_object_get(job, "playbooks"), t->what + 3), "path");
			else if (strncmp(t->what, "pbsec:", 6) == 0)
				got = pluck(json_object_get(json_object_get(job, "playbooks"), t->what + 6), "secrets");
			else if (strncmp(t->what, "pbroles:", 8) == 0)
				got = pluck(json_object_get(json_object_get(job, "playbooks"), t->what + 8), "roles");
			else if (strcmp(t->what, "deps") == 0)
				got = json_incref(json_object_get(job, "dependencies"));
		}
		json_t *want = json_loads(t->expect, JSON_DECODE_ANY, NULL);
		if (!want || !got || !json_equal(got, want)) {
			char *gs = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
			fail_msg("case %zu (%s): %s: want %s, got %s", c, t->rule, t->what, t->expect, gs ? gs : "nothing");
		}
		json_decref(want);
		json_decref(got);
		json_decref(g);
		vz_zconf_free(z);
	}
}

/* ---- errors with exact positions ---- */

typedef struct ecase {
	const char *name;
	const char *trusted; /* appended to BASE; BASE has 27 lines, so line 28 is the first of it */
	const char *app;     /* untrusted org/app .zuul.yaml */
	const char *expect;  /* exact start of the first error */
} ecase;

static const ecase ecases[] = {
	{ "YAML syntax", NULL, "- job:\n    name: [unclosed\n", "app/.zuul.yaml:2:11: did not find expected" },
	{ "unknown attribute", "- job:\n    name: j\n    runn: r.yaml\n",
	  NULL, "config/zuul.d/config.yaml:30:5: unknown attribute \"runn\" in job (allowed: name, parent," },
	{ "wrong type", "- job:\n    name: j\n    timeout: soon\n",
	  NULL, "config/zuul.d/config.yaml:30:14: job attribute \"timeout\" must be an integer of at least 0, not a string" },
	{ "wrong type (list for a string)", "- job:\n    name: j\n    description: [a]\n",
	  NULL, "config/zuul.d/config.yaml:30:18: job attribute \"description\" must be a string, not a list" },
	{ "unknown parent", "- job:\n    name: j\n    parent: nope\n",
	  NULL, "config/zuul.d/config.yaml:30:13: job \"j\": parent job \"nope\" is not defined" },
	{ "unknown nodeset", "- job:\n    name: j\n    nodeset: huge\n",
	  NULL, "config/zuul.d/config.yaml:30:5: job \"j\": nodeset \"huge\" is not defined" },
	{ "bad regex", "- job:\n    name: j\n    files: ['^(src']\n",
	  NULL, "config/zuul.d/config.yaml:30:13: job attribute \"files\": bad regex \"^(src\": " },
	{ "Python-only regex", "- job:\n    name: j\n    branches: '(?i)master'\n",
	  NULL, "config/zuul.d/config.yaml:30:15: job attribute \"branches\": bad regex \"(?i)master\": '(?' constructs" },
	{ "duplicate nodeset", "- nodeset:\n    name: small\n    nodes: []\n",
	  NULL, "config/zuul.d/config.yaml:29:5: nodeset \"small\" is already defined at config/zuul.d/config.yaml:9:5" },
	{ "duplicate pipeline", "- pipeline: {name: check, manager: independent}\n",
	  NULL, "config/zuul.d/config.yaml:28:13: pipeline \"check\" is already defined at config/zuul.d/config.yaml:2:5" },
	{ "job shadowing another project's", "- job: {name: shared, run: r.yaml}\n", "- job: {name: shared, run: x.yaml}\n",
	  "app/.zuul.yaml:1:8: job \"shared\" is already defined in project example.org/config" },
	{ "base job outside a config project", NULL, "- job: {name: mybase, parent: null}\n",
	  "app/.zuul.yaml:1:31: \"parent: null\" (a base job) is only allowed in a config project" },
	{ "pipeline in an untrusted project", NULL, "- pipeline: {name: p, manager: independent}\n",
	  "app/.zuul.yaml:1:13: pipelines may only be defined in config projects" },
	{ "unknown pipeline in a project", NULL, "- project:\n    chek:\n      jobs: []\n",
	  "app/.zuul.yaml:2:5: \"chek\" in project is neither an attribute nor a pipeline" },
	{ "unknown job in a project", NULL, "- project:\n    check:\n      jobs:\n        - nosuch\n",
	  "app/.zuul.yaml:4:11: project \"example.org/org/app\", pipeline check: job \"nosuch\" is not defined" },
	{ "unknown configuration item", NULL, "- jobb: {name: x}\n", "app/.zuul.yaml:1:3: unknown configuration item \"jobb\"" },
	{ "group naming a missing node", "- nodeset:\n    name: bad\n    nodes: [{name: a, label: l}]\n    groups: [{name: g, nodes: [b]}]\n",
	  NULL, "config/zuul.d/config.yaml:31:31: group \"g\" names node \"b\", which is not in the nodeset" },
	{ "reserved variable", "- job:\n    name: j\n    vars: {a: 1, zuul: {}}\n",
	  NULL, "config/zuul.d/config.yaml:30:18: job attribute \"vars\": variables named \"zuul\" or \"nodepool\" are reserved" },
	{ "reserved host variable", "- job:\n    name: j\n    host-vars: {h1: {nodepool: 1}}\n",
	  NULL, "config/zuul.d/config.yaml:30:22: job attribute \"host-vars\": variables named" },
	{ "intermediate but not abstract", "- job: {name: j, intermediate: true, run: r.yaml}\n",
	  NULL, "config/zuul.d/config.yaml:28:8: job \"j\": an intermediate job must also be abstract" },
};

static void test_error_positions(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(ecases) / sizeof(ecases[0]); c++) {
		const ecase *t = &ecases[c];
		vz_err e = { 0 };
		int rc;
		vz_zconf *z = load_case(t->trusted, t->app, NULL, &e, &rc);
		const char *first = vz_zconf_error(z, 0);
		if (rc != VZ_EINVAL || !first || strncmp(first, t->expect, strlen(t->expect)) != 0)
			fail_msg("case %s: want <%s...>, got rc %d <%s>", t->name, t->expect, rc, first ? first : e.msg);
		/* every message names the project and branch it came from */
		if (!strstr(first, "(project example.org/") || !strstr(first, ", branch master)"))
			fail_msg("case %s: no project/branch in <%s>", t->name, first);
		vz_zconf_free(z);
	}
}

/* Errors found by freezing every project's pipelines, positioned at the project's job entry. */
typedef struct ccase {
	const char *name, *trusted, *expect;
} ccase;

static const ccase ccases[] = {
	{ "final overridden", "- job: {name: fin, run: r.yaml, final: true}\n"
			      "- project:\n    name: org/app\n    check:\n      jobs:\n        - fin:\n            timeout: 3\n",
	  "config/zuul.d/config.yaml:34:13: unable to modify final job \"fin\" attribute \"timeout\" with the project's variant" },
	{ "abstract job run directly", "- job: {name: abs, abstract: true, run: r.yaml}\n"
				       "- project:\n    name: org/app\n    check:\n      jobs:\n        - abs\n",
	  "config/zuul.d/config.yaml:33:11: job \"abs\" is abstract and may not be run directly" },
	{ "dependency cycle",
	  "- job: {name: a, run: r.yaml}\n- job: {name: b, run: r.yaml}\n"
	  "- project:\n    name: org/app\n    check:\n      jobs:\n        - a:\n            dependencies: b\n"
	  "        - b:\n            dependencies: [a]\n",
	  "config/zuul.d/config.yaml:37:13: dependency cycle between jobs: a -> b -> a" },
};

static void test_check_errors(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(ccases) / sizeof(ccases[0]); c++) {
		vz_err e = { 0 };
		int rc;
		vz_zconf *z = load_case(ccases[c].trusted, NULL, NULL, &e, &rc);
		if (rc)
			fail_msg("case %s: load failed: %s", ccases[c].name, e.msg);
		assert_int_equal(vz_zconf_check(z), 1);
		const char *first = vz_zconf_error(z, 0);
		if (strncmp(first, ccases[c].expect, strlen(ccases[c].expect)) != 0)
			fail_msg("case %s: want <%s...>, got <%s>", ccases[c].name, ccases[c].expect, first);
		vz_zconf_free(z);
	}
}

/* A protected job inherited from another project, found by check with its position. */
static void test_check_protected(void **state)
{
	(void)state;
	vz_err e = { 0 };
	int rc;
	vz_zconf *z = load_case("- job: {name: prot, run: r.yaml, protected: true}\n",
				"- job:\n    name: mine\n    parent: prot\n    run: m.yaml\n- project:\n    check:\n      jobs: [mine]\n",
				NULL, &e, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(vz_zconf_check(z), 1);
	const char *want = "app/.zuul.yaml:4:5: job \"prot\" is protected (defined in example.org/config) and cannot be "
			   "inherited or changed by project example.org/org/app";
	if (strncmp(vz_zconf_error(z, 0), want, strlen(want)) != 0)
		fail_msg("got <%s>", vz_zconf_error(z, 0));
	vz_zconf_free(z);
}

/* All errors are reported at once, sorted by position, and an object with errors is left out. */
static void test_all_errors_at_once(void **state)
{
	(void)state;
	vz_err e = { 0 };
	int rc;
	vz_zconf *z = load_case("- job: {name: a, timeout: x}\n- job: {name: b, voting: maybe}\n- job: {name: c, bogus: 1}\n"
				"- job: {name: ok, run: r.yaml}\n- project: {name: org/app, check: {jobs: [ok]}}\n",
				NULL, NULL, &e, &rc);
	assert_int_equal(rc, VZ_EINVAL);
	assert_int_equal(vz_zconf_nerrors(z), 3);
	assert_non_null(strstr(vz_zconf_error(z, 0), ":28:"));
	assert_non_null(strstr(vz_zconf_error(z, 1), ":29:"));
	assert_non_null(strstr(vz_zconf_error(z, 2), ":30:"));
	assert_null(vz_zconf_error(z, 3));
	/* the good parts still freeze */
	vz_zconf_item it = { "org/app", "master", "check", NULL, 0 };
	json_t *g = NULL;
	vz_err fe = { 0 };
	assert_int_equal(vz_zconf_freeze(&g, z, &it, &fe), 0);
	assert_int_equal(json_array_size(json_object_get(g, "jobs")), 1);
	json_decref(g);
	vz_zconf_free(z);
}

/* Errors are capped but counted. */
static void test_error_cap(void **state)
{
	(void)state;
	size_t n = VZ_ZCONF_MAX_ERRORS + 50;
	vz_buf cb = VZ_BUF_INIT(1 << 22);
	for (size_t i = 0; i < n; i++)
		vz_buf_printf(&cb, "- job: {name: j%zu, timeout: x}\n", i);
	assert_int_equal(cb.failed, 0);
	char *cfg = vz_buf_detach(&cb);
	vz_err e = { 0 };
	int rc;
	vz_zconf *z = load_case(cfg, NULL, NULL, &e, &rc);
	assert_int_equal(rc, VZ_EINVAL);
	assert_int_equal(vz_zconf_nerrors(z), n);
	assert_non_null(vz_zconf_error(z, VZ_ZCONF_MAX_ERRORS - 1));
	assert_null(vz_zconf_error(z, VZ_ZCONF_MAX_ERRORS));
	vz_zconf_free(z);
	free(cfg);
}

/* Zuul's regexes on POSIX: class escapes translated, re.match anchoring, refusals explained. */
static void test_regex_translation(void **state)
{
	(void)state;
	static const struct {
		const char *re, *s;
		int match;
	} t[] = {
		{ "^doc/.*$", "doc/a", 1 },	  { "doc/", "src/doc/a", 0 },	   /* re.match: anchored at the start */
		{ "stable", "stable/2023.1", 1 }, { ".*\\.rst$", "a/b.rst", 1 }, /* not at the end */
		{ "\\d+\\.x", "12.x", 1 },	  { "[\\w\\-.]+$", "a-b.c_d", 1 }, { "[^\\d]", "7", 0 },
		{ "(?:a|b)c", "bc", 1 },	  { "a\\s+b", "a \t b", 1 },	   { "[]x]", "]", 1 },
		{ "a*?b", "aab", 1 },		  { "x{2,3}$", "xxx", 1 },	   { "x{2,3}$", "xxxx", 0 },
		{ "f{oo}", "f{oo}", 1 },	  { "v{,2}$", "vv", 1 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char job[512];
		snprintf(job, sizeof(job), "- job: {name: j, run: r.yaml, files: ['%s']}\n- project: {name: org/app, check: {jobs: [j]}}\n",
			 t[i].re);
		vz_err e = { 0 };
		int rc;
		vz_zconf *z = load_case(job, NULL, NULL, &e, &rc);
		if (rc)
			fail_msg("regex %s: %s", t[i].re, e.msg);
		const char *files[] = { t[i].s };
		vz_zconf_item it = { "org/app", "master", "check", files, 1 };
		json_t *g = NULL;
		vz_err fe = { 0 };
		assert_int_equal(vz_zconf_freeze(&g, z, &it, &fe), 0);
		if ((int)json_array_size(json_object_get(g, "jobs")) != t[i].match)
			fail_msg("regex %s on %s: want %d", t[i].re, t[i].s, t[i].match);
		json_decref(g);
		vz_zconf_free(z);
	}
}

/* Patterns Python refuses, or that would make glibc's regcomp copy itself exponentially, are refused
 * with the reason. */
static void test_regex_refused(void **state)
{
	(void)state;
	static const struct {
		const char *re, *why;
	} t[] = {
		{ "a**", "multiple repeat" },
		{ "a++", "possessive quantifiers" },
		{ "a???", "multiple repeat" },
		{ "((a{100}){100}){100}", "too complex for POSIX regcomp" },
		{ "a++++++++++++++++++++++++++++++++++++++++", "possessive quantifiers" },
		{ "(((((a+)+)+)+)+)+", "" }, /* Python accepts it: so must we, cheaply */
		{ "x{1001}", "repeat counts above 1000" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char job[512];
		snprintf(job, sizeof(job), "- job: {name: j, run: r.yaml, files: ['%s']}\n", t[i].re);
		vz_err e = { 0 };
		int rc;
		vz_zconf *z = load_case(job, NULL, NULL, &e, &rc);
		if (!t[i].why[0]) {
			if (rc)
				fail_msg("regex %s: %s", t[i].re, e.msg);
		} else if (rc != VZ_EINVAL || !strstr(vz_zconf_error(z, 0), t[i].why))
			fail_msg("regex %s: want <%s>, got <%s>", t[i].re, t[i].why, vz_zconf_error(z, 0));
		vz_zconf_free(z);
	}
}

/* Tenant include/exclude: an excluded object type is not loaded from that project. */
static void test_include_exclude(void **state)
{
	(void)state;
	json_t *f0 = json_pack("{s:s}", "zuul.yaml", BASE);
	json_t *f1 = json_pack("{s:s}", "zuul.yaml", "- job: {name: lib, run: r.yaml}\n- project: {name: org/lib, check: {jobs: [lib]}}\n");
	vz_zconf_source srcs[2] = { { "example.org/config", "master", 1, f0, NULL, 0 },
				    { "example.org/org/lib", "master", 0, f1, NULL, VZ_ZC_JOB } };
	vz_zconf *z = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_zconf_load(&z, srcs, 2, &e), 0);
	vz_zconf_item it = { "org/lib", "master", "check", NULL, 0 };
	json_t *g = NULL;
	assert_int_equal(vz_zconf_freeze(&g, z, &it, &e), VZ_ENOTFOUND);
	vz_zconf_free(z);
	json_decref(f0);
	json_decref(f1);
}

/* A parent chain past the bound is an error, not a stack overflow. */
static void test_inheritance_bound(void **state)
{
	(void)state;
	size_t n = 300;
	vz_buf cb = VZ_BUF_INIT(1 << 22);
	vz_buf_puts(&cb, "- job: {name: j0, run: r.yaml}\n");
	for (size_t i = 1; i < n; i++)
		vz_buf_printf(&cb, "- job: {name: j%zu, parent: j%zu}\n", i, i - 1);
	vz_buf_printf(&cb, "- project: {name: org/app, check: {jobs: [j%zu]}}\n", n - 1);
	assert_int_equal(cb.failed, 0);
	char *cfg = vz_buf_detach(&cb);
	vz_err e = { 0 };
	int rc;
	vz_zconf *z = load_case(cfg, NULL, NULL, &e, &rc);
	assert_int_equal(rc, 0);
	vz_zconf_item it = { "org/app", "master", "check", NULL, 0 };
	json_t *g = NULL;
	assert_int_equal(vz_zconf_freeze(&g, z, &it, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "inheritance deeper than 256 jobs"));
	vz_zconf_free(z);
	free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inheritance_table), cmocka_unit_test(test_error_positions),
		cmocka_unit_test(test_check_errors),	  cmocka_unit_test(test_check_protected),
		cmocka_unit_test(test_all_errors_at_once), cmocka_unit_test(test_error_cap),
		cmocka_unit_test(test_regex_translation), cmocka_unit_test(test_include_exclude),
		cmocka_unit_test(test_inheritance_bound), cmocka_unit_test(test_regex_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
