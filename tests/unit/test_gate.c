/* test_gate: the pipeline managers of vz_gate, scenario by scenario (issue 7's list at the logic
 * level: merges, builds and landings are answered by a simulator), with the exact builds (what
 * each tested), reports, landings and final queues asserted; window and manager tables; and the
 * restore-at-every-step check (scenario 17): every scenario run again with the state written to
 * JSON and read back after every event gives the same actions and the same final state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vz_gate.h"

/* ---- simulator ---- */

#define SIM_MAX 512

typedef struct pend_merge {
	uint64_t item;
	unsigned gen;
	char change[64];
	char tested[512];
} pend_merge;

typedef struct pend_build {
	uint64_t build;
	char change[64];
	char job[64];
	int attempt;
} pend_build;

typedef struct sim {
	vz_gate *g;
	int restore;
	char log[1 << 16];
	size_t loglen;
	pend_merge merges[SIM_MAX];
	size_t nm;
	pend_build running[SIM_MAX];
	size_t nr;
	pend_merge lands[SIM_MAX];
	size_t nl;
	const char *conflict[8];
	const char *landfail[8];
	const char *fail[8];      /* change keys whose builds fail ("X" all jobs, "X:job" one job) */
	const char *retry[8];     /* "X:job": answered ABORTED on every attempt */
	const char *nodefail[8];  /* "X:job": NODE_FAILURE */
	int64_t now;
	int restores;
} sim;

static int in_set(const char *const *set, const char *change, const char *job)
{
	char cj[160];
	snprintf(cj, sizeof(cj), "%s:%s", change, job ? job : "");
	for (int i = 0; i < 8 && set[i]; i++)
		if (strcmp(set[i], change) == 0 || strcmp(set[i], cj) == 0)
			return 1;
	return 0;
}

static void logf_(sim *s, const char *f, ...) __attribute__((format(printf, 2, 3)));
static void logf_(sim *s, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int n = vsnprintf(s->log + s->loglen, sizeof(s->log) - s->loglen, f, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(s->log) - s->loglen);
	s->loglen += (size_t)n;
}

static void join(char *out, size_t cap, const char *const *v, size_t n)
{
	size_t o = 0;
	out[0] = 0;
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "+" : "", v[i]);
}

static void roundtrip(sim *s)
{
	json_t *j = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_gate_to_json(&j, s->g, &e), 0);
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	vz_gate_free(s->g);
	json_error_t je;
	json_t *back = json_loads(text, 0, &je);
	assert_non_null(back);
	free(text);
	assert_int_equal(vz_gate_from_json(&s->g, back, &e), 0);
	json_decref(back);
	s->restores++;
}

/* Takes the gate's actions into the log and the simulator's pending lists. */
static void collect(sim *s)
{
	for (size_t i = 0; i < vz_gate_nactions(s->g); i++) {
		const vz_gate_action *a = vz_gate_action_at(s->g, i);
		char tested[512];
		join(tested, sizeof(tested), a->changes, a->nchanges);
		switch (a->kind) {
		case VZ_GATE_ACT_MERGE:
			logf_(s, "merge %s %s: %s\n", a->pipeline, a->change, tested);
			assert_true(s->nm < SIM_MAX);
			s->merges[s->nm] = (pend_merge){ .item = a->item, .gen = a->gen };
			snprintf(s->merges[s->nm].change, 64, "%s", a->change);
			snprintf(s->merges[s->nm].tested, 512, "%s", tested);
			s->nm++;
			break;
		case VZ_GATE_ACT_BUILD:
			if (a->attempt > 1)
				logf_(s, "build %s %s %s: %s #%d\n", a->pipeline, a->change, a->job, tested,
				      a->attempt);
			else
				logf_(s, "build %s %s %s: %s\n", a->pipeline, a->change, a->job, tested);
			assert_string_equal(a->repo_state + 3, tested); /* "rs:" + what was merged */
			assert_true(s->nr < SIM_MAX);
			s->running[s->nr] = (pend_build){ .build = a->build, .attempt = a->attempt };
			snprintf(s->running[s->nr].change, 64, "%s", a->change);
			snprintf(s->running[s->nr].job, 64, "%s", a->job);
			s->nr++;
			break;
		case VZ_GATE_ACT_CANCEL: {
			logf_(s, "cancel %s %s %s\n", a->pipeline, a->change, a->job);
			size_t k;
			for (k = 0; k < s->nr && s->running[k].build != a->build; k++)
				;
			assert_true(k < s->nr); /* only running builds are canceled */
			memmove(&s->running[k], &s->running[k + 1], (s->nr - k - 1) * sizeof(s->running[0]));
			s->nr--;
			break;
		}
		case VZ_GATE_ACT_REPORT:
			if (a->result)
				logf_(s, "report %s %s %s %s\n", a->pipeline, a->item ? a->change : "-", a->report,
				      a->result);
			else
				logf_(s, "report %s %s %s\n", a->pipeline, a->change, a->report);
			break;
		case VZ_GATE_ACT_LAND:
			logf_(s, "land %s %s\n", a->pipeline, a->change);
			s->lands[s->nl] = (pend_merge){ .item = a->item, .gen = a->gen };
			snprintf(s->lands[s->nl].change, 64, "%s", a->change);
			s->nl++;
			break;
		}
	}
	vz_gate_actions_clear(s->g);
	if (s->restore)
		roundtrip(s);
}

static void ok(sim *s, int rc)
{
	assert_int_equal(rc, 0);
	collect(s);
}

/* Answers pending merges and landings until none is left (builds are answered by finish). */
static void settle(sim *s)
{
	vz_err e = { 0 };
	for (int guard = 0; guard < 10000; guard++) {
		if (s->nm) {
			pend_merge m = s->merges[0];
			memmove(&s->merges[0], &s->merges[1], (s->nm - 1) * sizeof(m));
			s->nm--;
			char rs[520];
			snprintf(rs, sizeof(rs), "rs:%s", m.tested);
			int conflict = in_set(s->conflict, m.change, NULL) && strchr(m.tested, '+');
			ok(s, vz_gate_merge_result(s->g, m.item, m.gen, !conflict, rs,
						   conflict ? "conflict in file.txt" : NULL, ++s->now, &e));
			continue;
		}
		if (s->nl) {
			pend_merge l = s->lands[0];
			memmove(&s->lands[0], &s->lands[1], (s->nl - 1) * sizeof(l));
			s->nl--;
			int fails = in_set(s->landfail, l.change, NULL);
			ok(s, vz_gate_landing_result(s->g, l.item, l.gen, !fails,
						     fails ? "the branch moved" : NULL, ++s->now, &e));
			continue;
		}
		return;
	}
	fail_msg("simulator did not settle");
}

static vz_gate_result outcome(sim *s, const pend_build *b)
{
	if (in_set(s->retry, b->change, b->job))
		return VZ_GATE_ABORTED;
	if (in_set(s->nodefail, b->change, b->job))
		return VZ_GATE_NODE_FAILURE;
	if (in_set(s->fail, b->change, b->job))
		return VZ_GATE_FAILURE;
	return VZ_GATE_SUCCESS;
}

/* Finishes the running build of change/job (job NULL: its first running build). */
static void finish(sim *s, const char *change, const char *job)
{
	vz_err e = { 0 };
	settle(s);
	size_t k;
	for (k = 0; k < s->nr; k++)
		if (strcmp(s->running[k].change, change) == 0 && (!job || strcmp(s->running[k].job, job) == 0))
			break;
	if (k == s->nr)
		fail_msg("no running build for %s %s\nlog:\n%s", change, job ? job : "", s->log);
	pend_build b = s->running[k];
	memmove(&s->running[k], &s->running[k + 1], (s->nr - k - 1) * sizeof(b));
	s->nr--;
	ok(s, vz_gate_build_started(s->g, b.build, ++s->now, &e));
	ok(s, vz_gate_build_result(s->g, b.build, outcome(s, &b), ++s->now, &e));
	settle(s);
}

/* Finishes every build, oldest first, until nothing runs. */
static void run_all(sim *s)
{
	for (int guard = 0; guard < 10000; guard++) {
		settle(s);
		if (!s->nr)
			return;
		finish(s, s->running[0].change, s->running[0].job);
	}
	fail_msg("simulator did not finish");
}

/* Job graph notation: "a;b<a;c<~a;!d;^e" = b after a, c soft after a, d non-voting, e holds
 * following changes. At most 8 jobs, 4 dependencies each. */
typedef struct jobs {
	vz_gate_job v[8];
	vz_gate_dep d[8][4];
	char names[8][32];
	char dn[8][4][32];
	size_t n;
} jobs;

static void parse_jobs(jobs *J, const char *spec)
{
	memset(J, 0, sizeof(*J));
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", spec);
	char *save = NULL;
	for (char *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
		vz_gate_job *j = &J->v[J->n];
		for (; *t == '!' || *t == '^'; t++) {
			if (*t == '!')
				j->nonvoting = 1;
			else
				j->hold_following = 1;
		}
		char *lt = strchr(t, '<');
		if (lt)
			*lt++ = 0;
		snprintf(J->names[J->n], 32, "%s", t);
		j->name = J->names[J->n];
		j->deps = J->d[J->n];
		while (lt && *lt) {
			char *comma = strchr(lt, ',');
			if (comma)
				*comma = 0;
			int soft = *lt == '~';
			snprintf(J->dn[J->n][j->ndeps], 32, "%s", lt + soft);
			J->d[J->n][j->ndeps] = (vz_gate_dep){ J->dn[J->n][j->ndeps], soft };
			j->ndeps++;
			lt = comma ? comma + 1 : NULL;
		}
		J->n++;
	}
}

typedef struct enq_opts {
	const char *project;
	const char *jobs;
	const char *needs; /* comma separated */
	int patchset;
	int fail_fast;
	const char *ref;   /* a ref item instead of a change */
	const char *branch;
} enq_opts;

static int enq_rc(sim *s, const char *pipeline, const char *change, enq_opts o, vz_err *e)
{
	jobs J;
	parse_jobs(&J, o.jobs ? o.jobs : "j");
	char nb[256];
	const char *needs[16];
	size_t nn = 0;
	if (o.needs) {
		snprintf(nb, sizeof(nb), "%s", o.needs);
		char *save = NULL;
		for (char *t = strtok_r(nb, ",", &save); t; t = strtok_r(NULL, ",", &save))
			needs[nn++] = t;
	}
	char ref[64], commit[64];
	snprintf(ref, sizeof(ref), "refs/changes/%s", change ? change : "x");
	snprintf(commit, sizeof(commit), "c-%s", change ? change : o.ref);
	vz_gate_item_spec spec = {
		.change = { .connection = "git", .project = o.project ? o.project : "p",
			    .branch = o.branch ? o.branch : "master", .change = change,
			    .patchset = o.patchset ? o.patchset : 1, .ref = o.ref ? o.ref : ref,
			    .commit = commit, .needs = needs, .nneeds = nn },
		.jobs = J.v,
		.njobs = o.jobs && !*o.jobs ? 0 : J.n,
		.fail_fast = o.fail_fast,
	};
	uint64_t id = 0;
	int rc = vz_gate_enqueue(s->g, pipeline, &spec, ++s->now, &id, e);
	collect(s);
	return rc;
}

static void enq(sim *s, const char *pipeline, const char *change, enq_opts o)
{
	vz_err e = { 0 };
	int rc = enq_rc(s, pipeline, change, o, &e);
	if (rc)
		fail_msg("enqueue %s: %s", change, vz_err_msg(&e));
	settle(s);
}

/* The log lines starting with one of the words in kinds ("build report land"). */
static const char *flt(sim *s, const char *kinds)
{
	static char out[1 << 16];
	size_t o = 0;
	out[0] = 0;
	const char *p = s->log;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
		const char *sp = memchr(p, ' ', len);
		size_t wl = sp ? (size_t)(sp - p) : len;
		char word[16];
		snprintf(word, sizeof(word), "%.*s", (int)wl, p);
		const char *k = strstr(kinds, word);
		if (k && (k == kinds || k[-1] == ' ') && (k[wl] == 0 || k[wl] == ' ')) {
			memcpy(out + o, p, len);
			o += len;
			out[o] = 0;
		}
		p += len;
	}
	return out;
}

/* Queue contents: "pipeline/queue[window]: A B ..." lines, empty queues left out. */
static const char *queues(sim *s)
{
	static char out[8192];
	json_t *j = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_gate_to_json(&j, s->g, &e), 0);
	size_t o = 0;
	out[0] = 0;
	json_t *p, *q, *it;
	size_t i, k, m;
	json_array_foreach(json_object_get(j, "pipelines"), i, p) {
		json_array_foreach(json_object_get(p, "queues"), k, q) {
			if (json_array_size(json_object_get(q, "items")) == 0)
				continue; /* shared queues stay (with their window) when empty */
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s/%s[%d]:",
					      json_string_value(json_object_get(p, "name")),
					      json_string_value(json_object_get(q, "name")),
					      (int)json_integer_value(json_object_get(q, "window")));
			json_array_foreach(json_object_get(q, "items"), m, it)
				o += (size_t)snprintf(out + o, sizeof(out) - o, " %s%s",
						      json_string_value(json_object_get(it, "key")),
						      json_is_true(json_object_get(it, "live")) ? "" : "(nl)");
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\n");
		}
	}
	json_decref(j);
	return out;
}

static char *state_text(sim *s)
{
	json_t *j = NULL;
	vz_err e = { 0 };
	assert_int_equal(vz_gate_to_json(&j, s->g, &e), 0);
	char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return t;
}

typedef void (*scenario_fn)(sim *s);

/* Pipelines every scenario gets: check (independent), gate (dependent), and the window setup
 * the scenario's name asks for is added by the scenario itself through s->g. */
static void sim_init(sim *s, int restore)
{
	memset(s, 0, sizeof(*s));
	s->restore = restore;
	vz_err e = { 0 };
	assert_int_equal(vz_gate_new(&s->g, &e), 0);
	vz_gate_pipeline_conf check = { .name = "check", .manager = VZ_GATE_INDEPENDENT };
	const char *sup[] = { "check" };
	vz_gate_pipeline_conf gate = { .name = "gate", .manager = VZ_GATE_DEPENDENT,
				       .precedence = VZ_GATE_PRECEDENCE_HIGH,
				       .supercedes = sup, .nsupercedes = 1 };
	assert_int_equal(vz_gate_add_pipeline(s->g, &check, &e), 0);
	assert_int_equal(vz_gate_add_pipeline(s->g, &gate, &e), 0);
}

static void sim_done(sim *s)
{
	vz_gate_free(s->g);
	s->g = NULL;
}

/* ---- scenarios (issue 7's numbering) ---- */

/* 1: three changes all pass: tested as A, A+B, A+B+C; all land in order. */
static void sc1(sim *s)
{
	enq(s, "gate", "A", (enq_opts){ 0 });
	enq(s, "gate", "B", (enq_opts){ 0 });
	enq(s, "gate", "C", (enq_opts){ 0 });
	run_all(s);
}

static void test_s01_all_pass(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc1(&s);
	assert_string_equal(flt(&s, "build land cancel"),
			    "build gate A j: A\n"
			    "build gate B j: A+B\n"
			    "build gate C j: A+B+C\n"
			    "land gate A\n"
			    "land gate B\n"
			    "land gate C\n");
	assert_string_equal(flt(&s, "report"),
			    "report gate A enqueue\nreport gate A start\n"
			    "report gate B enqueue\nreport gate B start\n"
			    "report gate C enqueue\nreport gate C start\n"
			    "report gate A success SUCCESS\n"
			    "report gate B success SUCCESS\n"
			    "report gate C success SUCCESS\n");
	assert_string_equal(flt(&s, "merge"),
			    "merge gate A: A\nmerge gate B: A+B\nmerge gate C: A+B+C\n");
	assert_string_equal(queues(&s), "");
	sim_done(&s);
}

/* 2: the head fails: B and C are re-tested without A and land. */
static void sc2(sim *s)
{
	s->fail[0] = "A";
	enq(s, "gate", "A", (enq_opts){ 0 });
	enq(s, "gate", "B", (enq_opts){ 0 });
	enq(s, "gate", "C", (enq_opts){ 0 });
	run_all(s);
}

static void test_s02_head_fails(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc2(&s);
	assert_string_equal(flt(&s, "build land cancel report"),
			    "report gate A enqueue\nreport gate A start\nbuild gate A j: A\n"
			    "report gate B enqueue\nreport gate B start\nbuild gate B j: A+B\n"
			    "report gate C enqueue\nreport gate C start\nbuild gate C j: A+B+C\n"
			    "report gate A failure FAILURE\n"
			    "cancel gate B j\n"
			    "cancel gate C j\n"
			    "build gate B j: B\n"
			    "build gate C j: B+C\n"
			    "land gate B\nreport gate B success SUCCESS\n"
			    "land gate C\nreport gate C success SUCCESS\n");
	sim_done(&s);
}

/* 3: a change in the middle fails: A and C land, C re-tested without B. */
static void sc3(sim *s)
{
	s->fail[0] = "B";
	enq(s, "gate", "A", (enq_opts){ 0 });
	enq(s, "gate", "B", (enq_opts){ 0 });
	enq(s, "gate", "C", (enq_opts){ 0 });
	finish(s, "B", NULL);
	run_all(s);
}

static void test_s03_middle_fails(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc3(&s);
	assert_string_equal(flt(&s, "build land cancel report"),
			    "report gate A enqueue\nreport gate A start\nbuild gate A j: A\n"
			    "report gate B enqueue\nreport gate B start\nbuild gate B j: A+B\n"
			    "report gate C enqueue\nreport gate C start\nbuild gate C j: A+B+C\n"
			    "cancel gate C j\n"
			    "build gate C j: A+C\n"
			    "land gate A\nreport gate A success SUCCESS\n"
			    "report gate B failure FAILURE\n"
			    "land gate C\nreport gate C success SUCCESS\n");
	sim_done(&s);
}

/* 4: the two changes at the head fail: only C lands. */
static void sc4(sim *s)
{
	s->fail[0] = "A";
	s->fail[1] = "B";
	enq(s, "gate", "A", (enq_opts){ 0 });
	enq(s, "gate", "B", (enq_opts){ 0 });
	enq(s, "gate", "C", (enq_opts){ 0 });
	finish(s, "B", NULL);
	run_all(s);
}

static void test_s04_two_heads_fail(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc4(&s);
	/* B failed while A was ahead: C moves onto A. When A reports at the head, Zuul resets every
	 * item behind it (B included, its failure may have been A's), so B runs again on its own,
	 * fails again, and C lands alone */
	assert_string_equal(flt(&s, "build land cancel report"),
			    "report gate A enqueue\nreport gate A start\nbuild gate A j: A\n"
			    "report gate B enqueue\nreport gate B start\nbuild gate B j: A+B\n"
			    "report gate C enqueue\nreport gate C start\nbuild gate C j: A+B+C\n"
			    "cancel gate C j\n"
			    "build gate C j: A+C\n"
			    "report gate A failure FAILURE\n"
			    "cancel gate C j\n"
			    "build gate B j: B\n"
			    "build gate C j: B+C\n"
			    "report gate B failure FAILURE\n"
			    "cancel gate C j\n"
			    "build gate C j: C\n"
			    "land gate C\nreport gate C success SUCCESS\n");
	sim_done(&s);
}

/* 5: two independent queues run their heads at once. */
static void sc5(sim *s)
{
	enq(s, "gate", "A", (enq_opts){ .project = "p1" });
	enq(s, "gate", "X", (enq_opts){ .project = "p2" });
	enq(s, "gate", "B", (enq_opts){ .project = "p1" });
	assert_string_equal(queues(s), "gate/p1[20]: A B\ngate/p2[20]: X\n");
	run_all(s);
}

static void test_s05_two_queues(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc5(&s);
	assert_string_equal(flt(&s, "build land"),
			    "build gate A j: A\nbuild gate X j: X\nbuild gate B j: A+B\n"
			    "land gate A\nland gate X\nland gate B\n");
	sim_done(&s);
}

/* 6: a stack (C on B on A) enqueues in git order; approving the top alone enqueues nothing
 * until its parents qualify. */
static void sc6(sim *s)
{
	enq(s, "gate", "C", (enq_opts){ .needs = "B" });
	assert_string_equal(queues(s), "");
	enq(s, "gate", "B", (enq_opts){ .needs = "A" });
	assert_string_equal(queues(s), "");
	enq(s, "gate", "A", (enq_opts){ 0 });
	assert_string_equal(queues(s), "gate/p[20]: A B C\n");
	run_all(s);
}

static void test_s06_stack(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc6(&s);
	assert_string_equal(flt(&s, "build land"),
			    "build gate A j: A\nbuild gate B j: A+B\nbuild gate C j: A+B+C\n"
			    "land gate A\nland gate B\nland gate C\n");
	assert_string_equal(flt(&s, "report"),
			    "report gate A enqueue\nreport gate B enqueue\nreport gate C enqueue\n"
			    "report gate A start\nreport gate B start\nreport gate C start\n"
			    "report gate A success SUCCESS\nreport gate B success SUCCESS\n"
			    "report gate C success SUCCESS\n");
	sim_done(&s);
}

/* 7: B conflicts with A ahead: B reports a merge conflict, C is tested without it. */
static void sc7(sim *s)
{
	s->conflict[0] = "B";
	enq(s, "gate", "A", (enq_opts){ 0 });
	enq(s, "gate", "B", (enq_opts){ 0 });
	enq(s, "gate", "C", (enq_opts){ 0 });
	run_all(s);
}

static void test_s07_merge_conflict(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc7(&s);
	/* B's conflict is known before C arrives: C is merged on A alone at once */
	assert_string_equal(flt(&s, "merge build land report"),
			    "report gate A enqueue\nmerge gate A: A\nreport gate A start\nbuild gate A j: A\n"
			    "report gate B enqueue\nmerge gate B: A+B\n"
			    "report gate C enqueue\nmerge gate C: A+C\n"
			    "report gate C start\nbuild gate C j: A+C\n"
			    "land gate A\nreport gate A success SUCCESS\n"
			    "report gate B merge-conflict MERGE_CONFLICT\n"
			    "land gate C\nreport gate C success SUCCESS\n");
	sim_done(&s);
}

/* 8: changes depending on a failed change are dequeued with a message saying why. */
static void sc8(sim *s)
{
	s->fail[0] = "A";
	enq(s, "gate", "A", (enq_opts){ 0 });
	enq(s, "gate", "B", (enq_opts){ .needs = "A" });
	enq(s, "gate", "C", (enq_opts){ 0 });
	run_all(s);
}

static void test_s08_dependents_of_failed(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc8(&s);
	/* A fails at the head: reported, the items behind reset; B needs A, which is gone: B is
	 * dequeued with a failure report; C is tested on its own and lands */
	assert_string_equal(flt(&s, "build land cancel report"),
			    "report gate A enqueue\nreport gate A start\nbuild gate A j: A\n"
			    "report gate B enqueue\nreport gate B start\nbuild gate B j: A+B\n"
			    "report gate C enqueue\nreport gate C start\nbuild gate C j: A+B+C\n"
			    "report gate A failure FAILURE\n"
			    "cancel gate B j\n"
			    "cancel gate C j\n"
			    "report gate B failure FAILURE\n"
			    "build gate C j: C\n"
			    "land gate C\nreport gate C success SUCCESS\n");
	/* A's failure and B's dequeue both shrink the window (20 / 2 / 2), C's landing grows it */
	enq(&s, "gate", "probe", (enq_opts){ 0 });
	assert_string_equal(queues(&s), "gate/p[6]: probe\n");
	sim_done(&s);
}

static void test_s08_message(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	vz_err e = { 0 };
	s.fail[0] = "A";
	enq(&s, "gate", "A", (enq_opts){ 0 });
	enq(&s, "gate", "B", (enq_opts){ .needs = "A" });
	/* finish A by hand to look at the actions of that one event */
	settle(&s);
	pend_build b = s.running[0];
	assert_string_equal(b.change, "A");
	assert_int_equal(vz_gate_build_result(s.g, b.build, VZ_GATE_FAILURE, 99, &e), 0);
	int seen = 0;
	for (size_t i = 0; i < vz_gate_nactions(s.g); i++) {
		const vz_gate_action *a = vz_gate_action_at(s.g, i);
		if (a->kind == VZ_GATE_ACT_REPORT && strcmp(a->change, "B") == 0) {
			assert_string_equal(a->report, "failure");
			assert_string_equal(a->message, "Change A is needed (A reported FAILURE).");
			seen = 1;
		}
	}
	assert_true(seen);
	vz_gate_actions_clear(s.g);
	sim_done(&s);
}

/* 9: a new patchset dequeues the old one and its dependents, and does not when so configured. */
static void sc9(sim *s)
{
	vz_err e = { 0 };
	vz_gate_pipeline_conf keep = { .name = "gate-keep", .manager = VZ_GATE_DEPENDENT,
				       .keep_on_new_patchset = 1 };
	assert_int_equal(vz_gate_add_pipeline(s->g, &keep, &e), 0);
	enq(s, "gate", "A", (enq_opts){ 0 });
	enq(s, "gate", "B", (enq_opts){ .needs = "A" });
	enq(s, "gate-keep", "K", (enq_opts){ .project = "q" });
	ok(s, vz_gate_new_patchset(s->g, "A", 2, ++s->now, &e));
	ok(s, vz_gate_new_patchset(s->g, "K", 2, ++s->now, &e));
	settle(s);
	assert_string_equal(queues(s), "gate-keep/q[20]: K\n");
	run_all(s);
}

static void test_s09_new_patchset(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc9(&s);
	assert_string_equal(flt(&s, "cancel report land"),
			    "report gate A enqueue\nreport gate A start\n"
			    "report gate B enqueue\nreport gate B start\n"
			    "report gate-keep K enqueue\nreport gate-keep K start\n"
			    "cancel gate A j\ncancel gate B j\n"
			    "report gate A dequeue DEQUEUED\n"
			    "report gate B failure FAILURE\n"
			    "land gate-keep K\nreport gate-keep K success SUCCESS\n");
	sim_done(&s);
}

/* 10: an abandoned change leaves the queue and its builds are aborted. */
static void sc10(sim *s)
{
	vz_err e = { 0 };
	enq(s, "check", "A", (enq_opts){ .jobs = "j1;j2" });
	enq(s, "gate", "A", (enq_opts){ .jobs = "j1;j2" });
	enq(s, "gate", "B", (enq_opts){ 0 });
	ok(s, vz_gate_abandon(s->g, "A", ++s->now, &e));
	run_all(s);
}

static void test_s10_abandon(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc10(&s);
	assert_string_equal(flt(&s, "build cancel land"),
			    "build check A j1: A\nbuild check A j2: A\n"
			    "cancel check A j1\ncancel check A j2\n"
			    "build gate A j1: A\nbuild gate A j2: A\nbuild gate B j: A+B\n"
			    "cancel gate A j1\ncancel gate A j2\ncancel gate B j\n"
			    "build gate B j: B\nland gate B\n");
	assert_string_equal(queues(&s), "");
	sim_done(&s);
}

/* 11: window 2, floor 1: it shrinks after a failure and grows after a landing. */
static void sc11(sim *s)
{
	vz_err e = { 0 };
	vz_gate_pipeline_conf w = { .name = "gate2", .manager = VZ_GATE_DEPENDENT, .window = 2,
				    .window_floor = 1 };
	assert_int_equal(vz_gate_add_pipeline(s->g, &w, &e), 0);
	s->fail[0] = "A";
	enq(s, "gate2", "A", (enq_opts){ 0 });
	enq(s, "gate2", "B", (enq_opts){ 0 });
	enq(s, "gate2", "C", (enq_opts){ 0 });
	enq(s, "gate2", "D", (enq_opts){ 0 });
	assert_string_equal(queues(s), "gate2/p[2]: A B C D\n");
	finish(s, "A", NULL);
	assert_string_equal(queues(s), "gate2/p[1]: B C D\n");
	finish(s, "B", NULL);
	assert_string_equal(queues(s), "gate2/p[2]: C D\n");
	run_all(s);
}

static void test_s11_window(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc11(&s);
	assert_string_equal(flt(&s, "build land cancel"),
			    "build gate2 A j: A\nbuild gate2 B j: A+B\n"
			    "cancel gate2 B j\n"
			    "build gate2 B j: B\n"
			    "land gate2 B\n"
			    "build gate2 C j: C\nbuild gate2 D j: C+D\n"
			    "land gate2 C\nland gate2 D\n");
	sim_done(&s);
}

/* 12: landing fails: MERGE_FAILURE, items behind reset. */
static void sc12(sim *s)
{
	s->landfail[0] = "A";
	enq(s, "gate", "A", (enq_opts){ 0 });
	enq(s, "gate", "B", (enq_opts){ 0 });
	finish(s, "A", NULL);
	run_all(s);
}

static void test_s12_landing_fails(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc12(&s);
	assert_string_equal(flt(&s, "build land cancel report"),
			    "report gate A enqueue\nreport gate A start\nbuild gate A j: A\n"
			    "report gate B enqueue\nreport gate B start\nbuild gate B j: A+B\n"
			    "land gate A\n"
			    "report gate A failure MERGE_FAILURE\n"
			    "cancel gate B j\n"
			    "build gate B j: B\n"
			    "land gate B\nreport gate B success SUCCESS\n");
	sim_done(&s);
}

/* 13: an aborted build is retried until RETRY_LIMIT (attempts 3). */
static void sc13(sim *s)
{
	s->retry[0] = "A:j";
	enq(s, "gate", "A", (enq_opts){ .jobs = "j;k<j" });
	run_all(s);
}

static void test_s13_retry_limit(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc13(&s);
	assert_string_equal(flt(&s, "build land report"),
			    "report gate A enqueue\nreport gate A start\n"
			    "build gate A j: A\nbuild gate A j: A #2\nbuild gate A j: A #3\n"
			    "report gate A failure FAILURE\n");
	sim_done(&s);
}

/* 14: no node has the label: NODE_FAILURE, dependent jobs skipped. */
static void sc14(sim *s)
{
	s->nodefail[0] = "A:base";
	enq(s, "gate", "A", (enq_opts){ .jobs = "base;child<base;grand<child;other" });
	run_all(s);
}

static void test_s14_node_failure(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc14(&s);
	assert_string_equal(flt(&s, "build land report"),
			    "report gate A enqueue\nreport gate A start\n"
			    "build gate A base: A\nbuild gate A other: A\n"
			    "report gate A failure FAILURE\n");
	sim_done(&s);
}

static void test_s14_message(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	vz_err e = { 0 };
	enq(&s, "gate", "A", (enq_opts){ .jobs = "base;child<base;other" });
	uint64_t base = s.running[0].build, other = s.running[1].build;
	assert_int_equal(vz_gate_build_result(s.g, other, VZ_GATE_SUCCESS, 1, &e), 0);
	assert_int_equal(vz_gate_build_result(s.g, base, VZ_GATE_NODE_FAILURE, 2, &e), 0);
	const vz_gate_action *last = vz_gate_action_at(s.g, vz_gate_nactions(s.g) - 1);
	assert_int_equal(last->kind, VZ_GATE_ACT_REPORT);
	assert_string_equal(last->message, "Build failed.\n- base NODE_FAILURE\n- child SKIPPED\n- other SUCCESS");
	vz_gate_actions_clear(s.g);
	sim_done(&s);
}

/* 15: supercedes: entering gate aborts the change's check builds. */
static void sc15(sim *s)
{
	enq(s, "check", "A", (enq_opts){ 0 });
	enq(s, "check", "B", (enq_opts){ 0 });
	enq(s, "gate", "A", (enq_opts){ 0 });
	assert_string_equal(queues(s), "check/B[0]: B\ngate/p[20]: A\n");
	run_all(s);
}

static void test_s15_supercedes(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc15(&s);
	assert_string_equal(flt(&s, "build cancel report land"),
			    "report check A enqueue\nreport check A start\nbuild check A j: A\n"
			    "report check B enqueue\nreport check B start\nbuild check B j: B\n"
			    "report gate A enqueue\n"
			    "cancel check A j\nreport check A dequeue DEQUEUED\n"
			    "report gate A start\nbuild gate A j: A\n"
			    "report check B success SUCCESS\n"
			    "land gate A\nreport gate A success SUCCESS\n");
	sim_done(&s);
}

/* 16: cross-project Depends-On. In a shared queue both land and B's build tested both; not
 * shared, B waits until A has landed; a cycle: nothing is enqueued. */
static void sc16(sim *s)
{
	vz_err e = { 0 };
	assert_int_equal(vz_gate_set_queue(s->g, "gate", "p1", "integrated", &e), 0);
	assert_int_equal(vz_gate_set_queue(s->g, "gate", "p2", "integrated", &e), 0);
	enq(s, "gate", "A", (enq_opts){ .project = "p1" });
	enq(s, "gate", "B", (enq_opts){ .project = "p2", .needs = "A" });
	assert_string_equal(queues(s), "gate/integrated[20]: A B\n");
	run_all(s);
	/* not shared: p3 has a queue of its own */
	enq(s, "gate", "X", (enq_opts){ .project = "p1" });
	enq(s, "gate", "Y", (enq_opts){ .project = "p3", .needs = "X" });
	assert_string_equal(queues(s), "gate/integrated[22]: X\n"); /* two landings: 20 + 2 */
	run_all(s);
	assert_string_equal(queues(s), "");
	/* a cycle */
	enq(s, "gate", "P", (enq_opts){ .project = "p1", .needs = "Q" });
	assert_int_equal(enq_rc(s, "gate", "Q", (enq_opts){ .project = "p2", .needs = "P" }, &e),
			 VZ_ECONFLICT);
	assert_string_equal(vz_err_msg(&e), "enqueue Q in gate refused: dependency cycle Q -> P -> Q");
	settle(s);
	assert_string_equal(queues(s), "");
}

static void test_s16_depends_on(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	sc16(&s);
	assert_string_equal(flt(&s, "build land"),
			    "build gate A j: A\nbuild gate B j: A+B\nland gate A\nland gate B\n"
			    "build gate X j: X\nland gate X\nbuild gate Y j: Y\nland gate Y\n");
	const char *f = flt(&s, "report");
	assert_non_null(strstr(f, "report gate - failure FAILURE\n")); /* no item: "-" */
	assert_null(strstr(f, "report gate P"));
	assert_null(strstr(f, "report gate Q"));
	sim_done(&s);
}

/* 17: restore at every step of every scenario gives the same actions and final state. */
static const struct {
	const char *name;
	scenario_fn fn;
} scenarios[] = {
	{ "1", sc1 }, { "2", sc2 }, { "3", sc3 }, { "4", sc4 }, { "5", sc5 }, { "6", sc6 },
	{ "7", sc7 }, { "8", sc8 }, { "9", sc9 }, { "10", sc10 }, { "11", sc11 }, { "12", sc12 },
	{ "13", sc13 }, { "14", sc14 }, { "15", sc15 }, { "16", sc16 },
};

static void test_s17_restore_every_step(void **st)
{
	(void)st;
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		sim *a = calloc(1, sizeof(sim)), *b = calloc(1, sizeof(sim));
		assert_non_null(a);
		assert_non_null(b);
		sim_init(a, 0);
		sim_init(b, 1);
		scenarios[i].fn(a);
		scenarios[i].fn(b);
		if (strcmp(a->log, b->log) != 0)
			fail_msg("scenario %s: restoring changed the actions\nplain:\n%s\nrestored:\n%s",
				 scenarios[i].name, a->log, b->log);
		assert_true(b->restores > 5);
		char *sa = state_text(a), *sb = state_text(b);
		assert_string_equal(sa, sb);
		free(sa);
		free(sb);
		sim_done(a);
		sim_done(b);
		free(a);
		free(b);
	}
}

/* The idempotency keys after a restore are the ones the same actions had without it. */
static void test_s17_keys_stable(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	vz_err e = { 0 };
	enq(&s, "gate", "A", (enq_opts){ 0 });
	json_t *j = NULL;
	assert_int_equal(vz_gate_to_json(&j, s.g, &e), 0);
	vz_gate *copy = NULL;
	assert_int_equal(vz_gate_from_json(&copy, j, &e), 0);
	json_decref(j);
	uint64_t build = s.running[0].build;
	assert_int_equal(vz_gate_build_result(s.g, build, VZ_GATE_SUCCESS, 5, &e), 0);
	assert_int_equal(vz_gate_build_result(copy, build, VZ_GATE_SUCCESS, 5, &e), 0);
	assert_int_equal(vz_gate_nactions(s.g), vz_gate_nactions(copy));
	for (size_t i = 0; i < vz_gate_nactions(copy); i++)
		assert_string_equal(vz_gate_action_at(s.g, i)->key, vz_gate_action_at(copy, i)->key);
	assert_string_equal(vz_gate_action_at(copy, 0)->key, "gate/l/1/0");
	vz_gate_free(copy);
	vz_gate_actions_clear(s.g);
	sim_done(&s);
}

/* ---- job graph inside an item ---- */

static void test_job_graph(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	/* children after parents; soft dependency on a job not in the graph ignored; a failed
	 * parent skips its children; a non-voting failure does not fail the item */
	s.fail[0] = "A:lint";
	enq(&s, "check", "A", (enq_opts){ .jobs = "build;test<build;docs<~nosuch;!lint;pub<lint" });
	assert_string_equal(flt(&s, "build"), "build check A build: A\nbuild check A docs: A\nbuild check A lint: A\n");
	finish(&s, "A", "build");
	assert_string_equal(flt(&s, "build"), "build check A build: A\nbuild check A docs: A\nbuild check A lint: A\n"
					      "build check A test: A\n");
	run_all(&s);
	/* pub is voting and was skipped because non-voting lint failed: Zuul's didAllJobsSucceed
	 * counts any voting job whose result is not SUCCESS, so the item fails */
	assert_string_equal(flt(&s, "report"), "report check A enqueue\nreport check A start\n"
					       "report check A failure FAILURE\n");
	sim_done(&s);
}

static void test_job_graph_config_error(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	enq(&s, "gate", "A", (enq_opts){ .jobs = "a;b<nosuch" });
	enq(&s, "gate", "B", (enq_opts){ .jobs = "a<b;b<a" });
	enq(&s, "gate", "C", (enq_opts){ 0 });
	run_all(&s);
	assert_string_equal(flt(&s, "build report land"),
			    "report gate A enqueue\nreport gate A config-error CONFIG_ERROR\n"
			    "report gate B enqueue\nreport gate B config-error CONFIG_ERROR\n"
			    "report gate C enqueue\nreport gate C start\nbuild gate C j: C\n"
			    "land gate C\nreport gate C success SUCCESS\n");
	sim_done(&s);
}

static void test_fail_fast(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	s.fail[0] = "A:a";
	enq(&s, "gate", "A", (enq_opts){ .jobs = "a;b;c<b", .fail_fast = 1 });
	finish(&s, "A", "a");
	assert_string_equal(flt(&s, "build cancel report"),
			    "report gate A enqueue\nreport gate A start\n"
			    "build gate A a: A\nbuild gate A b: A\n"
			    "cancel gate A b\nreport gate A failure FAILURE\n");
	assert_int_equal(s.nr, 0);
	sim_done(&s);
}

static void test_hold_following(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	enq(&s, "gate", "A", (enq_opts){ .jobs = "^img;t" });
	enq(&s, "gate", "B", (enq_opts){ .jobs = "t" });
	assert_string_equal(flt(&s, "build"), "build gate A img: A\nbuild gate A t: A\n");
	finish(&s, "A", "img");
	assert_string_equal(flt(&s, "build"), "build gate A img: A\nbuild gate A t: A\nbuild gate B t: A+B\n");
	run_all(&s);
	sim_done(&s);
}

static void test_early_failure(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	vz_err e = { 0 };
	enq(&s, "gate", "A", (enq_opts){ 0 });
	enq(&s, "gate", "B", (enq_opts){ 0 });
	/* A's build matched failure-output: B is reset onto the branch before A's build ends */
	ok(&s, vz_gate_build_early_failure(s.g, s.running[0].build, ++s.now, &e));
	settle(&s);
	assert_string_equal(flt(&s, "build cancel"), "build gate A j: A\nbuild gate B j: A+B\n"
						     "cancel gate B j\nbuild gate B j: B\n");
	/* A's build then ends SUCCESS: the failure-output match still fails it */
	run_all(&s);
	assert_string_equal(flt(&s, "report land"), "report gate A enqueue\nreport gate A start\n"
			    "report gate B enqueue\nreport gate B start\nreport gate A failure FAILURE\n"
			    "land gate B\nreport gate B success SUCCESS\n");
	sim_done(&s);
}

static void test_requeue_not_counted(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	vz_err e = { 0 };
	enq(&s, "check", "A", (enq_opts){ 0 });
	for (int i = 0; i < 5; i++) {
		pend_build b = s.running[0];
		s.nr = 0;
		ok(&s, vz_gate_build_result(s.g, b.build, VZ_GATE_REQUEUE, ++s.now, &e));
	}
	assert_string_equal(s.running[0].job, "j");
	assert_int_equal(s.running[0].attempt, 1);
	run_all(&s);
	assert_non_null(strstr(flt(&s, "report"), "report check A success SUCCESS"));
	sim_done(&s);
}

static void test_approval_lost_and_dequeue(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	vz_err e = { 0 };
	enq(&s, "gate", "A", (enq_opts){ 0 });
	enq(&s, "gate", "B", (enq_opts){ 0 });
	enq(&s, "gate", "C", (enq_opts){ 0 });
	ok(&s, vz_gate_approval_lost(s.g, "gate", "B", ++s.now, &e));
	settle(&s);
	ok(&s, vz_gate_dequeue(s.g, "gate", "A", ++s.now, &e));
	settle(&s);
	assert_int_equal(vz_gate_dequeue(s.g, "gate", "nosuch", 1, &e), VZ_ENOTFOUND);
	run_all(&s);
	assert_string_equal(flt(&s, "report land"),
			    "report gate A enqueue\nreport gate A start\nreport gate B enqueue\n"
			    "report gate B start\nreport gate C enqueue\nreport gate C start\n"
			    "report gate B failure FAILURE\nreport gate A dequeue DEQUEUED\n"
			    "land gate C\nreport gate C success SUCCESS\n");
	assert_string_equal(flt(&s, "build"), "build gate A j: A\nbuild gate B j: A+B\nbuild gate C j: A+B+C\n"
					      "build gate C j: A+C\nbuild gate C j: C\n");
	sim_done(&s);
}

static void test_promote(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	vz_err e = { 0 };
	enq(&s, "gate", "A", (enq_opts){ 0 });
	enq(&s, "gate", "B", (enq_opts){ 0 });
	enq(&s, "gate", "C", (enq_opts){ 0 });
	const char *pr[] = { "C" };
	ok(&s, vz_gate_promote(s.g, "gate", pr, 1, ++s.now, &e));
	settle(&s);
	assert_string_equal(queues(&s), "gate/p[20]: C A B\n");
	run_all(&s);
	assert_string_equal(flt(&s, "build land"),
			    "build gate A j: A\nbuild gate B j: A+B\nbuild gate C j: A+B+C\n"
			    "build gate C j: C\nbuild gate A j: C+A\nbuild gate B j: C+A+B\n"
			    "land gate C\nland gate A\nland gate B\n");
	sim_done(&s);
}

static void test_independent_depends_on(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	/* check: B is tested with A ahead as a non-live item; only B reports */
	enq(&s, "check", "A", (enq_opts){ 0 });
	enq(&s, "check", "B", (enq_opts){ .needs = "A" });
	assert_string_equal(queues(&s), "check/A[0]: A\ncheck/B[0]: A(nl) B\n");
	run_all(&s);
	assert_string_equal(flt(&s, "build report"),
			    "report check A enqueue\nreport check A start\nbuild check A j: A\n"
			    "report check B enqueue\nreport check B start\nbuild check B j: A+B\n"
			    "report check A success SUCCESS\nreport check B success SUCCESS\n");
	assert_string_equal(queues(&s), "");
	/* a needed change vinz does not know cannot be tested with: failure, saying so */
	vz_err e = { 0 };
	jobs J;
	parse_jobs(&J, "j");
	const char *needs[] = { "Z" };
	vz_gate_item_spec spec = { .change = { .project = "p", .change = "D", .patchset = 1,
					       .ref = "refs/d", .needs = needs, .nneeds = 1 },
				   .jobs = J.v, .njobs = J.n };
	assert_int_equal(vz_gate_enqueue(s.g, "check", &spec, 1, NULL, &e), 0);
	const vz_gate_action *last = vz_gate_action_at(s.g, vz_gate_nactions(s.g) - 1);
	assert_string_equal(last->report, "failure");
	assert_string_equal(last->message, "Change Z is needed (it is not queued or waiting anywhere "
					   "in vinz, so the item cannot be tested with it).");
	vz_gate_actions_clear(s.g);
	sim_done(&s);
}

static void test_serial_and_supercedent(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	vz_err e = { 0 };
	vz_gate_pipeline_conf ser = { .name = "deploy", .manager = VZ_GATE_SERIAL };
	vz_gate_pipeline_conf sup = { .name = "post", .manager = VZ_GATE_SUPERCEDENT };
	assert_int_equal(vz_gate_add_pipeline(s.g, &ser, &e), 0);
	assert_int_equal(vz_gate_add_pipeline(s.g, &sup, &e), 0);
	enq(&s, "deploy", "A", (enq_opts){ 0 });
	enq(&s, "deploy", "B", (enq_opts){ 0 });
	/* serial: one at a time, never tested on the item ahead, no landing */
	assert_string_equal(flt(&s, "build"), "build deploy A j: A\n");
	run_all(&s);
	assert_string_equal(flt(&s, "build land"), "build deploy A j: A\nbuild deploy B j: B\n");
	/* supercedent: the head runs, the newest waits, the ones between are superseded */
	enq(&s, "post", NULL, (enq_opts){ .ref = "refs/heads/master#1" , .branch = "master"});
	enq(&s, "post", NULL, (enq_opts){ .ref = "refs/heads/master#1", .branch = "master" });
	s.log[0] = 0;
	s.loglen = 0;
	assert_string_equal(queues(&s), "post/ref:p:refs/heads/master#1[1]: ref:p:refs/heads/master#1\n");
	sim_done(&s);
}

/* B and C never started: superseded without a dequeue report (Zuul reports dequeue only for an
 * item that reported start) */
static void test_supercedent_prune(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	vz_err e = { 0 };
	vz_gate_pipeline_conf sup = { .name = "post", .manager = VZ_GATE_SUPERCEDENT };
	assert_int_equal(vz_gate_add_pipeline(s.g, &sup, &e), 0);
	enq(&s, "post", "A", (enq_opts){ 0 });
	enq(&s, "post", "B", (enq_opts){ 0 });
	enq(&s, "post", "C", (enq_opts){ 0 });
	enq(&s, "post", "D", (enq_opts){ 0 });
	assert_string_equal(queues(&s), "post/A[1]: A D\n");
	run_all(&s);
	assert_string_equal(flt(&s, "build report"),
			    "report post A enqueue\nreport post A start\nbuild post A j: A\n"
			    "report post B enqueue\n"
			    "report post C enqueue\n"
			    "report post D enqueue\n"
			    "report post A success SUCCESS\nreport post D start\nbuild post D j: D\n"
			    "report post D success SUCCESS\n");
	sim_done(&s);
}

/* ---- the same events through each manager ---- */

static void test_manager_table(void **st)
{
	(void)st;
	static const struct {
		vz_gate_manager m;
		const char *builds;
		const char *finals;
	} t[] = {
		/* every item alone, every item reports, nothing lands */
		{ VZ_GATE_INDEPENDENT, "build m A j: A\nbuild m B j: B\nbuild m C j: C\n",
		  "report m A failure FAILURE\nreport m B success SUCCESS\nreport m C success SUCCESS\n" },
		/* speculative: B and C re-tested without A, then land */
		{ VZ_GATE_DEPENDENT,
		  "build m A j: A\nbuild m B j: A+B\nbuild m C j: A+B+C\nbuild m B j: B\nbuild m C j: B+C\n"
		  "land m B\nland m C\n",
		  "report m A failure FAILURE\nreport m B success SUCCESS\nreport m C success SUCCESS\n" },
		/* one at a time, each on its own, nothing lands */
		{ VZ_GATE_SERIAL, "build m A j: A\nbuild m B j: B\nbuild m C j: C\n",
		  "report m A failure FAILURE\nreport m B success SUCCESS\nreport m C success SUCCESS\n" },
		/* the head runs, B is superseded by C before it starts */
		{ VZ_GATE_SUPERCEDENT, "build m A j: A\nbuild m C j: C\n",
		  "report m A failure FAILURE\nreport m C success SUCCESS\n" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		sim s;
		sim_init(&s, 0);
		vz_err e = { 0 };
		vz_gate_pipeline_conf c = { .name = "m", .manager = t[i].m };
		assert_int_equal(vz_gate_add_pipeline(s.g, &c, &e), 0);
		s.fail[0] = "A";
		enq(&s, "m", "A", (enq_opts){ 0 });
		enq(&s, "m", "B", (enq_opts){ 0 });
		enq(&s, "m", "C", (enq_opts){ 0 });
		run_all(&s);
		if (strcmp(flt(&s, "build land"), t[i].builds) != 0)
			fail_msg("manager %d builds:\n%s", (int)t[i].m, flt(&s, "build land"));
		char finals[1024] = "";
		const char *f = flt(&s, "report");
		for (const char *line = f; *line;) {
			const char *nl = strchr(line, '\n');
			if (strstr(line, "SUCCESS") && strstr(line, "SUCCESS") < nl)
				strncat(finals, line, (size_t)(nl - line + 1));
			else if (strstr(line, "FAILURE") && strstr(line, "FAILURE") < nl)
				strncat(finals, line, (size_t)(nl - line + 1));
			line = nl + 1;
		}
		if (strcmp(finals, t[i].finals) != 0)
			fail_msg("manager %d reports:\n%s", (int)t[i].m, finals);
		assert_string_equal(queues(&s), "");
		sim_done(&s);
	}
}

/* ---- windows: Zuul's increase/decrease arithmetic, table-driven ---- */

static void test_window_table(void **st)
{
	(void)st;
	static const struct {
		int window, floor, ceiling;
		vz_gate_window_type inc;
		int incf;
		vz_gate_window_type dec;
		int decf;
		const char *ops; /* f = an item fails at the head, l = an item lands */
		int expect;
	} t[] = {
		{ 0, 0, 0, 0, 0, 0, 0, "", 20 },        /* defaults */
		{ 0, 0, 0, 0, 0, 0, 0, "f", 10 },       /* exponential /2 */
		{ 0, 0, 0, 0, 0, 0, 0, "ff", 5 },
		{ 0, 0, 0, 0, 0, 0, 0, "fff", 3 },      /* floor 3 */
		{ 0, 0, 0, 0, 0, 0, 0, "ffffl", 4 },    /* linear +1 */
		{ 0, 0, 0, 0, 0, 0, 0, "l", 21 },       /* no ceiling by default */
		{ 5, 1, 6, 0, 0, 0, 0, "ll", 6 },       /* ceiling */
		{ 8, 2, 0, VZ_GATE_WINDOW_EXPONENTIAL, 2, VZ_GATE_WINDOW_LINEAR, 3, "fl", 10 },
		{ 8, 2, 0, VZ_GATE_WINDOW_EXPONENTIAL, 2, VZ_GATE_WINDOW_LINEAR, 3, "fff", 2 },
		{ 7, 1, 0, 0, 0, VZ_GATE_WINDOW_EXPONENTIAL, 3, "f", 2 }, /* int(7/3) */
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		sim s;
		sim_init(&s, 0);
		vz_err e = { 0 };
		vz_gate_pipeline_conf c = { .name = "w", .manager = VZ_GATE_DEPENDENT, .window = t[i].window,
					    .window_floor = t[i].floor, .window_ceiling = t[i].ceiling,
					    .increase_type = t[i].inc, .increase_factor = t[i].incf,
					    .decrease_type = t[i].dec, .decrease_factor = t[i].decf };
		assert_int_equal(vz_gate_add_pipeline(s.g, &c, &e), 0);
		char id[16];
		for (const char *o = t[i].ops; *o; o++) {
			snprintf(id, sizeof(id), "C%zu", (size_t)(o - t[i].ops));
			s.fail[0] = *o == 'f' ? id : NULL;
			enq(&s, "w", id, (enq_opts){ 0 });
			run_all(&s);
		}
		/* the window lives on the queue: enqueue one more to see it */
		enq(&s, "w", "probe", (enq_opts){ 0 });
		char want[64];
		snprintf(want, sizeof(want), "w/p[%d]: probe\n", t[i].expect);
		if (strcmp(queues(&s), want) != 0)
			fail_msg("window case %zu (%s): got %s want %s", i, t[i].ops, queues(&s), want);
		sim_done(&s);
	}
}

static void test_items_outside_window_wait(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	vz_err e = { 0 };
	vz_gate_pipeline_conf c = { .name = "w", .manager = VZ_GATE_DEPENDENT, .window = 2, .window_floor = 1 };
	assert_int_equal(vz_gate_add_pipeline(s.g, &c, &e), 0);
	enq(&s, "w", "A", (enq_opts){ 0 });
	enq(&s, "w", "B", (enq_opts){ 0 });
	enq(&s, "w", "C", (enq_opts){ 0 });
	assert_string_equal(flt(&s, "merge build"), "merge w A: A\nbuild w A j: A\nmerge w B: A+B\nbuild w B j: A+B\n");
	finish(&s, "A", NULL);
	assert_string_equal(flt(&s, "merge build land"),
			    "merge w A: A\nbuild w A j: A\nmerge w B: A+B\nbuild w B j: A+B\n"
			    "land w A\nmerge w C: B+C\nbuild w C j: B+C\n");
	run_all(&s);
	sim_done(&s);
}

/* ---- bad input ---- */

static void test_bad_input(void **st)
{
	(void)st;
	sim s;
	sim_init(&s, 0);
	vz_err e = { 0 };
	vz_gate_pipeline_conf dup = { .name = "gate", .manager = VZ_GATE_DEPENDENT };
	assert_int_equal(vz_gate_add_pipeline(s.g, &dup, &e), VZ_EINVAL);
	assert_string_equal(vz_err_msg(&e), "gate: pipeline gate defined twice");
	vz_err_clear(&e);
	vz_gate_pipeline_conf badw = { .name = "x", .manager = VZ_GATE_DEPENDENT, .window_floor = -1 };
	assert_int_equal(vz_gate_add_pipeline(s.g, &badw, &e), VZ_EINVAL);
	vz_err_clear(&e);
	vz_gate_pipeline_conf badm = { .name = "y", .manager = 9 };
	assert_int_equal(vz_gate_add_pipeline(s.g, &badm, &e), VZ_EINVAL);
	vz_err_clear(&e);
	assert_int_equal(enq_rc(&s, "nosuch", "A", (enq_opts){ 0 }, &e), VZ_ENOTFOUND);
	assert_string_equal(vz_err_msg(&e), "enqueue: no pipeline nosuch");
	vz_err_clear(&e);
	assert_int_equal(enq_rc(&s, "gate", "A", (enq_opts){ .needs = "A" }, &e), VZ_EINVAL);
	vz_err_clear(&e);
	assert_int_equal(enq_rc(&s, "gate", "A", (enq_opts){ .jobs = "x;x" }, &e), VZ_EINVAL);
	assert_string_equal(vz_err_msg(&e), "enqueue: job x is in the graph twice");
	vz_err_clear(&e);
	assert_int_equal(vz_gate_build_result(s.g, 1, 77, 1, &e), VZ_EINVAL);
	vz_err_clear(&e);
	/* unknown builds and stale results change nothing */
	assert_int_equal(vz_gate_build_result(s.g, 12345, VZ_GATE_SUCCESS, 1, &e), 0);
	assert_int_equal(vz_gate_merge_result(s.g, 999, 0, 1, "x", NULL, 1, &e), 0);
	assert_int_equal(vz_gate_nactions(s.g), 0);
	assert_string_equal(queues(&s), "");
	/* malformed states */
	const char *bad[] = {
		"[]", "{}", "{\"version\":2}",
		"{\"version\":1,\"next_item\":1,\"next_build\":1,\"seq\":0,\"landed\":[],\"pipelines\":[{}]}",
		"{\"version\":1,\"next_item\":1,\"next_build\":1,\"seq\":0,\"landed\":[1],\"pipelines\":[]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
		vz_gate *g2 = NULL;
		vz_err_clear(&e);
		assert_int_equal(vz_gate_from_json(&g2, j, &e), VZ_EINVAL);
		assert_null(g2);
		assert_true(strncmp(vz_err_msg(&e), "gate state: ", 12) == 0);
		json_decref(j);
	}
	sim_done(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s01_all_pass),
		cmocka_unit_test(test_s02_head_fails),
		cmocka_unit_test(test_s03_middle_fails),
		cmocka_unit_test(test_s04_two_heads_fail),
		cmocka_unit_test(test_s05_two_queues),
		cmocka_unit_test(test_s06_stack),
		cmocka_unit_test(test_s07_merge_conflict),
		cmocka_unit_test(test_s08_dependents_of_failed),
		cmocka_unit_test(test_s08_message),
		cmocka_unit_test(test_s09_new_patchset),
		cmocka_unit_test(test_s10_abandon),
		cmocka_unit_test(test_s11_window),
		cmocka_unit_test(test_s12_landing_fails),
		cmocka_unit_test(test_s13_retry_limit),
		cmocka_unit_test(test_s14_node_failure),
		cmocka_unit_test(test_s14_message),
		cmocka_unit_test(test_s15_supercedes),
		cmocka_unit_test(test_s16_depends_on),
		cmocka_unit_test(test_s17_restore_every_step),
		cmocka_unit_test(test_s17_keys_stable),
		cmocka_unit_test(test_job_graph),
		cmocka_unit_test(test_job_graph_config_error),
		cmocka_unit_test(test_fail_fast),
		cmocka_unit_test(test_hold_following),
		cmocka_unit_test(test_early_failure),
		cmocka_unit_test(test_requeue_not_counted),
		cmocka_unit_test(test_approval_lost_and_dequeue),
		cmocka_unit_test(test_promote),
		cmocka_unit_test(test_independent_depends_on),
		cmocka_unit_test(test_serial_and_supercedent),
		cmocka_unit_test(test_supercedent_prune),
		cmocka_unit_test(test_manager_table),
		cmocka_unit_test(test_window_table),
		cmocka_unit_test(test_items_outside_window_wait),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
