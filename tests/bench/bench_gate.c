/* bench_gate: the gate logic alone (vz_gate, no I/O).
 * 1. Reset: a 500-item dependent queue (unlimited window, one job each, every item merged and
 *    building), the item at position 10 fails: time of that one event (re-parent the 489 items
 *    behind, cancel their builds, request their merges), then of answering those merges (the
 *    489 new builds dispatched), against the peer: allocating and copying the same number of
 *    actions (key, change id, and the tested-changes list each carries) as plain heap records.
 * 2. Throughput: N changes through enqueue -> merge -> build -> result -> land -> report with
 *    instant answers, events per second, against the same allocate-and-copy peer for the same
 *    number of events and actions.
 * Both peers are measured in the same run; the ratio is what to compare across runs. Prints medians
 * of VZ_BENCH_ROUNDS (default 5) rounds; fails only when the gate misbehaves, never on timing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_benchutil.h"
#include "vz_gate.h"

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "bench_gate: " __VA_ARGS__);       \
			fprintf(stderr, " (%s:%d)\n", __FILE__, __LINE__); \
			exit(1);                                           \
		}                                                          \
	} while (0)

#define QLEN 500
#define FAILPOS 10

typedef struct copyrec {
	char *key, *change;
	char **changes;
	size_t n;
} copyrec;

/* The peer: what it costs just to allocate and copy `acts` action records shaped like the gate's
 * (a key, a change id, and ntested change ids each). */
static double peer_copy(size_t acts, size_t ntested)
{
	double t0 = vz_bench_now_ms();
	copyrec *v = calloc(acts, sizeof(*v));
	CHECK(v, "out of memory");
	char key[64], id[32];
	for (size_t i = 0; i < acts; i++) {
		snprintf(key, sizeof(key), "gate/b/%zu", i);
		snprintf(id, sizeof(id), "C%zu", i);
		v[i].key = strdup(key);
		v[i].change = strdup(id);
		v[i].n = ntested;
		v[i].changes = calloc(ntested + 1, sizeof(char *));
		CHECK(v[i].key && v[i].change && v[i].changes, "out of memory");
		for (size_t k = 0; k < ntested; k++) {
			snprintf(id, sizeof(id), "C%zu", k);
			v[i].changes[k] = strdup(id);
		}
	}
	for (size_t i = 0; i < acts; i++) {
		for (size_t k = 0; k < v[i].n; k++)
			free(v[i].changes[k]);
		free(v[i].changes);
		free(v[i].key);
		free(v[i].change);
	}
	free(v);
	return vz_bench_now_ms() - t0;
}

typedef struct pend {
	uint64_t id;
	unsigned gen;
	int fail;
} pend;

static vz_gate *new_gate(int window)
{
	vz_gate *g = NULL;
	vz_err e = { 0 };
	CHECK(vz_gate_new(&g, &e) == 0, "new");
	vz_gate_pipeline_conf c = { .name = "gate", .manager = VZ_GATE_DEPENDENT, .window = window };
	CHECK(vz_gate_add_pipeline(g, &c, &e) == 0, "%s", vz_err_msg(&e));
	return g;
}

static void enqueue(vz_gate *g, const char *id, int64_t now)
{
	vz_gate_job job = { .name = "j" };
	vz_gate_item_spec s = { .change = { .project = "p", .branch = "master", .change = id,
					    .patchset = 1, .ref = "refs/x", .commit = "c" },
				.jobs = &job, .njobs = 1 };
	vz_err e = { 0 };
	CHECK(vz_gate_enqueue(g, "gate", &s, now, NULL, &e) == 0, "enqueue %s: %s", id, vz_err_msg(&e));
}

/* Collects the pending merges / builds / landings of the actions and clears them. Returns the
 * number of actions, and the total of their tested-changes lists in *tested. */
static size_t take(vz_gate *g, pend *merges, size_t *nm, pend *builds, size_t *nb, pend *lands,
		   size_t *nl, size_t *tested)
{
	size_t n = vz_gate_nactions(g);
	for (size_t i = 0; i < n; i++) {
		const vz_gate_action *a = vz_gate_action_at(g, i);
		if (tested)
			*tested += a->nchanges;
		if (a->kind == VZ_GATE_ACT_MERGE && merges)
			merges[(*nm)++] = (pend){ a->item, a->gen, 0 };
		else if (a->kind == VZ_GATE_ACT_BUILD && builds)
			builds[(*nb)++] = (pend){ a->build, 0, 0 };
		else if (a->kind == VZ_GATE_ACT_LAND && lands)
			lands[(*nl)++] = (pend){ a->item, a->gen, 0 };
	}
	vz_gate_actions_clear(g);
	return n;
}

static void bench_reset(double *t_fail, double *t_merges, double *t_peer, size_t *acts_out)
{
	static pend merges[4 * QLEN], builds[4 * QLEN];
	size_t nm = 0, nb = 0;
	vz_gate *g = new_gate(VZ_GATE_WINDOW_UNLIMITED);
	char id[32];
	vz_err e = { 0 };
	for (int i = 0; i < QLEN; i++) {
		snprintf(id, sizeof(id), "C%d", i);
		enqueue(g, id, i);
		take(g, merges, &nm, NULL, NULL, NULL, NULL, NULL);
	}
	for (size_t i = 0; i < nm; i++)
		CHECK(vz_gate_merge_result(g, merges[i].id, merges[i].gen, 1, "rs", NULL, 1000, &e) == 0, "merge");
	nm = 0;
	take(g, NULL, NULL, builds, &nb, NULL, NULL, NULL);
	CHECK(nb == QLEN, "%zu builds for %d items", nb, QLEN);

	/* the failure at position 10: re-parent, cancel, request merges */
	size_t tested = 0;
	double t0 = vz_bench_now_ms();
	CHECK(vz_gate_build_result(g, builds[FAILPOS].id, VZ_GATE_FAILURE, 2000, &e) == 0, "result");
	*t_fail = vz_bench_now_ms() - t0;
	size_t acts = take(g, merges, &nm, NULL, NULL, NULL, NULL, &tested);
	CHECK(nm == QLEN - FAILPOS - 1, "%zu merges after the reset, want %d", nm, QLEN - FAILPOS - 1);
	CHECK(acts == 2 * nm, "%zu actions: a cancel and a merge for each item behind", acts);

	/* the merges answered: every item behind dispatched again */
	size_t nb2 = 0;
	t0 = vz_bench_now_ms();
	for (size_t i = 0; i < nm; i++)
		CHECK(vz_gate_merge_result(g, merges[i].id, merges[i].gen, 1, "rs", NULL, 3000, &e) == 0, "merge");
	*t_merges = vz_bench_now_ms() - t0;
	acts += take(g, NULL, NULL, builds, &nb2, NULL, NULL, &tested);
	CHECK(nb2 == nm, "%zu builds after the reset, want %zu", nb2, nm);
	*acts_out = acts;
	*t_peer = peer_copy(acts, tested / (acts ? acts : 1));
	vz_gate_free(g);
}

static void bench_flow(int n, double *t_gate, double *t_peer, size_t *events_out)
{
	static pend merges[64], builds[64], lands[64];
	vz_gate *g = new_gate(0);
	vz_err e = { 0 };
	char id[32];
	size_t events = 0, acts = 0, tested = 0;
	double t0 = vz_bench_now_ms();
	for (int i = 0; i < n; i++) {
		size_t nm = 0, nb = 0, nl = 0;
		snprintf(id, sizeof(id), "C%d", i);
		enqueue(g, id, i);
		events++;
		acts += take(g, merges, &nm, builds, &nb, lands, &nl, &tested);
		CHECK(nm == 1, "merge request for %s", id);
		CHECK(vz_gate_merge_result(g, merges[0].id, merges[0].gen, 1, "rs", NULL, i, &e) == 0, "merge");
		events++;
		nm = 0;
		acts += take(g, merges, &nm, builds, &nb, lands, &nl, &tested);
		CHECK(nb == 1, "build for %s", id);
		CHECK(vz_gate_build_started(g, builds[0].id, i, &e) == 0, "started");
		CHECK(vz_gate_build_result(g, builds[0].id, VZ_GATE_SUCCESS, i, &e) == 0, "result");
		events += 2;
		acts += take(g, merges, &nm, builds, &nb, lands, &nl, &tested);
		CHECK(nl == 1, "landing for %s", id);
		CHECK(vz_gate_landing_result(g, lands[0].id, lands[0].gen, 1, NULL, i, &e) == 0, "land");
		events++;
		acts += take(g, merges, &nm, builds, &nb, lands, &nl, &tested);
	}
	*t_gate = vz_bench_now_ms() - t0;
	*events_out = events;
	/* the peer copies one record per event and per action */
	*t_peer = peer_copy(events + acts, 1);
	vz_gate_free(g);
}

int main(void)
{
	const char *r = getenv("VZ_BENCH_ROUNDS");
	int rounds = r ? atoi(r) : 5;
	if (rounds < 1 || rounds > 100)
		rounds = 5;
	double tf[100], tm[100], tp[100], fg[100], fp[100];
	size_t acts = 0, events = 0;
	const int nflow = 20000;
	for (int i = 0; i < rounds; i++) {
		bench_reset(&tf[i], &tm[i], &tp[i], &acts);
		bench_flow(nflow, &fg[i], &fp[i], &events);
	}
	double mf = vz_bench_median(tf, rounds), mm = vz_bench_median(tm, rounds),
	       mp = vz_bench_median(tp, rounds), mg = vz_bench_median(fg, rounds),
	       mfp = vz_bench_median(fp, rounds);
	printf("reset: %d-item gate, failure at position %d (%d rounds, medians)\n", QLEN, FAILPOS, rounds);
	printf("  failure event (re-parent %d items, cancel, request merges): %.2f ms\n",
	       QLEN - FAILPOS - 1, mf);
	printf("  %d merge results -> builds dispatched:                       %.2f ms\n",
	       QLEN - FAILPOS - 1, mm);
	printf("  peer, allocating and copying the same %zu actions:          %.3f ms\n", acts, mp);
	printf("  ratio (gate / peer): %.1fx\n", (mf + mm) / (mp > 0 ? mp : 1e-9));
	printf("throughput: %d changes, enqueue->merge->build->result->land->report, instant answers\n",
	       nflow);
	printf("  gate: %zu events in %.1f ms = %.0f events/s (%.0f builds/s)\n", events, mg,
	       events / (mg / 1000.0), nflow / (mg / 1000.0));
	printf("  peer, allocating and copying one record per event and action: %.1f ms\n", mfp);
	printf("  ratio (gate / peer): %.1fx\n", mg / (mfp > 0 ? mfp : 1e-9));
	return 0;
}
