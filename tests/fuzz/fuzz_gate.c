/* fuzz_gate: random event sequences through vz_gate, decoded from the input bytes, run on two gates
 * in lockstep, the second written to JSON and read back after every event. Checks that the two
 * emit the same actions and end in the same state; that no item gets two final reports; that no
 * build starts for an item outside its queue's window (in an event where the window did not move);
 * that the gate never forgets a build it started and did not cancel; and that once every merge,
 * build and landing is answered successfully the queues drain. Any violation aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_gate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCH 8
#define MAXP 256

typedef struct pend {
	uint64_t id; /* item (merge, land) or build */
	unsigned gen;
	int item_pos_checked;
} pend;

typedef struct fz {
	vz_gate *a, *b;
	pend merges[MAXP], lands[MAXP], builds[MAXP];
	size_t nm, nl, nb;
	uint64_t final_reported[4096];
	size_t nfinal;
	int64_t now;
	int patchset[NCH];
} fz;

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_gate: invariant broken: %s\n%s\n", what, detail ? detail : "");
	abort();
}

static char *state(vz_gate *g)
{
	json_t *j = NULL;
	vz_err e = { 0 };
	if (vz_gate_to_json(&j, g, &e))
		die("to_json failed", vz_err_msg(&e));
	char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return t;
}

static void restore(vz_gate **g)
{
	json_t *j = NULL;
	vz_err e = { 0 };
	if (vz_gate_to_json(&j, *g, &e))
		die("to_json failed", vz_err_msg(&e));
	char *t = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	json_t *back = json_loads(t, 0, NULL);
	free(t);
	vz_gate *n = NULL;
	if (vz_gate_from_json(&n, back, &e))
		die("from_json refused its own state", vz_err_msg(&e));
	json_decref(back);
	vz_gate_free(*g);
	*g = n;
}

static void pushp(pend *v, size_t *n, pend p)
{
	if (*n < MAXP)
		v[(*n)++] = p;
}

static int is_final(const char *report)
{
	return strcmp(report, "enqueue") != 0 && strcmp(report, "start") != 0;
}

/* Position and window of item id in g's state; -1 when not queued. */
static int item_pos(vz_gate *g, uint64_t id, int *window, const char **pipeline_out, json_t **keep)
{
	json_t *j = NULL;
	vz_err e = { 0 };
	vz_gate_to_json(&j, g, &e);
	json_t *p, *q, *it;
	size_t i, k, m;
	json_array_foreach(json_object_get(j, "pipelines"), i, p) {
		json_array_foreach(json_object_get(p, "queues"), k, q) {
			json_array_foreach(json_object_get(q, "items"), m, it) {
				if ((uint64_t)json_integer_value(json_object_get(it, "id")) == id) {
					*window = (int)json_integer_value(json_object_get(q, "window"));
					*pipeline_out = json_string_value(json_object_get(p, "name"));
					*keep = j;
					return (int)m;
				}
			}
		}
	}
	json_decref(j);
	*keep = NULL;
	return -1;
}

/* Is build id the current, unfinished build of some job in g? */
static int build_running(json_t *st, uint64_t id)
{
	json_t *p, *q, *it, *jb;
	size_t i, k, m, n;
	json_array_foreach(json_object_get(st, "pipelines"), i, p)
		json_array_foreach(json_object_get(p, "queues"), k, q)
			json_array_foreach(json_object_get(q, "items"), m, it)
				json_array_foreach(json_object_get(it, "jobs"), n, jb)
					if ((uint64_t)json_integer_value(json_object_get(jb, "build")) == id &&
					    json_integer_value(json_object_get(jb, "result")) == 0)
						return 1;
	return 0;
}

/* Compares the two gates' actions, takes them into the pending lists, checks the per-event
 * invariants, clears them, and restores b. */
static void step(fz *f, int rca, int rcb)
{
	if (rca != rcb)
		die("plain and restored gates returned different codes", NULL);
	size_t n = vz_gate_nactions(f->a);
	if (n != vz_gate_nactions(f->b))
		die("plain and restored gates emitted different numbers of actions", NULL);
	int window_moved = 0;
	for (size_t i = 0; i < n; i++) {
		const vz_gate_action *x = vz_gate_action_at(f->a, i), *y = vz_gate_action_at(f->b, i);
		if (x->kind != y->kind || strcmp(x->key, y->key) != 0 || x->build != y->build ||
		    x->item != y->item || x->nchanges != y->nchanges)
			die("plain and restored gates emitted different actions", x->key);
		if (x->kind == VZ_GATE_ACT_REPORT && x->item && is_final(x->report)) {
			window_moved = 1;
			for (size_t k = 0; k < f->nfinal; k++)
				if (f->final_reported[k] == x->item)
					die("an item was reported twice", x->key);
			if (f->nfinal < 4096)
				f->final_reported[f->nfinal++] = x->item;
		}
		if (x->kind == VZ_GATE_ACT_REPORT && !strcmp(x->report, "success"))
			window_moved = 1;
		switch (x->kind) {
		case VZ_GATE_ACT_MERGE:
			pushp(f->merges, &f->nm, (pend){ x->item, x->gen, 0 });
			break;
		case VZ_GATE_ACT_LAND:
			pushp(f->lands, &f->nl, (pend){ x->item, x->gen, 0 });
			break;
		case VZ_GATE_ACT_BUILD:
			pushp(f->builds, &f->nb, (pend){ x->build, 0, 0 });
			break;
		case VZ_GATE_ACT_CANCEL:
			for (size_t k = 0; k < f->nb; k++)
				if (f->builds[k].id == x->build) {
					f->builds[k] = f->builds[--f->nb];
					break;
				}
			break;
		default:
			break;
		}
	}
	/* builds started in this event: inside the window unless the window moved meanwhile */
	for (size_t i = 0; i < n && !window_moved; i++) {
		const vz_gate_action *x = vz_gate_action_at(f->a, i);
		if (x->kind != VZ_GATE_ACT_BUILD)
			continue;
		int window = 0;
		const char *pl = NULL;
		json_t *keep = NULL;
		int pos = item_pos(f->a, x->item, &window, &pl, &keep);
		if (pos >= 0 && window && pos >= window)
			die("a build started for an item outside the window", x->key);
		json_decref(keep);
	}
	vz_gate_actions_clear(f->a);
	vz_gate_actions_clear(f->b);
	/* every build the harness still owes a result for is one the gate waits for */
	json_t *st = NULL;
	vz_err e = { 0 };
	vz_gate_to_json(&st, f->a, &e);
	for (size_t k = 0; k < f->nb; k++)
		if (!build_running(st, f->builds[k].id))
			die("the gate forgot a build it started and did not cancel", NULL);
	json_decref(st);
	restore(&f->b);
}

static const char *const CH[NCH] = { "C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7" };
static const char *const PIPES[] = { "check", "gate", "deploy", "post" };
static const char *const JOBSETS[][4] = {
	{ "j", NULL },
	{ "a", "b<a", NULL },
	{ "a", "b", "^h", NULL },
	{ "x<a", NULL }, /* hard dependency on a job not in the graph: config error */
};

static void enqueue(fz *f, int pipe, int ch, int needs_mask, int jobset, int fail_fast)
{
	vz_gate_job jobs[4];
	vz_gate_dep deps[4][1];
	char names[4][8];
	size_t nj = 0;
	for (size_t i = 0; i < 4 && JOBSETS[jobset][i]; i++) {
		const char *s = JOBSETS[jobset][i];
		memset(&jobs[nj], 0, sizeof(jobs[nj]));
		if (*s == '^') {
			jobs[nj].hold_following = 1;
			s++;
		}
		snprintf(names[nj], sizeof(names[nj]), "%c", s[0]);
		jobs[nj].name = names[nj];
		if (s[1] == '<') {
			deps[nj][0] = (vz_gate_dep){ s + 2, 0 };
			jobs[nj].deps = deps[nj];
			jobs[nj].ndeps = 1;
		}
		jobs[nj].attempts = 2;
		nj++;
	}
	const char *needs[NCH];
	size_t nn = 0;
	for (int i = 0; i < NCH; i++)
		if ((needs_mask >> i) & 1 && i != ch)
			needs[nn++] = CH[i];
	const char *projects[] = { "p0", "p1", "p2" };
	vz_gate_item_spec spec = {
		.change = { .connection = "git", .project = projects[ch % 3], .branch = "master",
			    .change = CH[ch], .patchset = f->patchset[ch], .ref = "refs/x", .commit = "c",
			    .needs = needs, .nneeds = nn },
		.jobs = jobs, .njobs = nj, .fail_fast = fail_fast,
	};
	vz_err e1 = { 0 }, e2 = { 0 };
	int ra = vz_gate_enqueue(f->a, PIPES[pipe], &spec, f->now, NULL, &e1);
	int rb = vz_gate_enqueue(f->b, PIPES[pipe], &spec, f->now, NULL, &e2);
	if (ra && ra != VZ_ECONFLICT)
		die("enqueue of a valid spec failed", vz_err_msg(&e1));
	step(f, ra, rb);
}

#define BOTH(call_a, call_b)                   \
	do {                                   \
		vz_err e1 = { 0 }, e2 = { 0 }; \
		int ra = (call_a), rb = (call_b); \
		(void)e1;                      \
		(void)e2;                      \
		step(f, ra, rb);               \
	} while (0)

static void setup(vz_gate **g)
{
	vz_err e = { 0 };
	if (vz_gate_new(g, &e))
		die("new", NULL);
	const char *sup[] = { "check" };
	vz_gate_pipeline_conf c[] = {
		{ .name = "check", .manager = VZ_GATE_INDEPENDENT },
		{ .name = "gate", .manager = VZ_GATE_DEPENDENT, .window = 3, .window_floor = 1,
		  .supercedes = sup, .nsupercedes = 1 },
		{ .name = "deploy", .manager = VZ_GATE_SERIAL },
		{ .name = "post", .manager = VZ_GATE_SUPERCEDENT, .keep_on_new_patchset = 1 },
	};
	for (size_t i = 0; i < 4; i++)
		if (vz_gate_add_pipeline(*g, &c[i], &e))
			die("add pipeline", vz_err_msg(&e));
	if (vz_gate_set_queue(*g, "gate", "p0", "shared", &e) ||
	    vz_gate_set_queue(*g, "gate", "p1", "shared", &e))
		die("set queue", vz_err_msg(&e));
}

static const vz_gate_result RESULTS[] = { VZ_GATE_SUCCESS, VZ_GATE_FAILURE, VZ_GATE_SUCCESS,
					  VZ_GATE_NODE_FAILURE, VZ_GATE_RETRY, VZ_GATE_ABORTED,
					  VZ_GATE_REQUEUE, VZ_GATE_TIMED_OUT };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	fz *f = calloc(1, sizeof(*f));
	if (!f)
		return 0;
	setup(&f->a);
	setup(&f->b);
	for (int i = 0; i < NCH; i++)
		f->patchset[i] = 1;
	size_t i = 0;
	while (i + 3 <= size) {
		uint8_t op = data[i], x = data[i + 1], y = data[i + 2];
		i += 3;
		f->now++;
		switch (op % 9) {
		case 0:
		case 1:
			enqueue(f, x % 4, (x >> 2) % NCH, y & 0x0f ? (y & 0x0f) << ((x >> 5) % 4) : 0,
				(y >> 4) % 4, (y >> 6) & 1);
			break;
		case 2:
			if (f->nm) {
				size_t at = x % f->nm;
				pend m = f->merges[at];
				f->nm--;
				f->merges[at] = f->merges[f->nm];
				int merged = y % 5 != 0;
				BOTH(vz_gate_merge_result(f->a, m.id, m.gen, merged, "rs", "conflict", f->now, &e1),
				     vz_gate_merge_result(f->b, m.id, m.gen, merged, "rs", "conflict", f->now, &e2));
			}
			break;
		case 3:
		case 4:
			if (f->nb) {
				size_t at = x % f->nb;
				pend b = f->builds[at];
				f->nb--;
				f->builds[at] = f->builds[f->nb];
				vz_gate_result r = RESULTS[y % 8];
				BOTH(vz_gate_build_result(f->a, b.id, r, f->now, &e1),
				     vz_gate_build_result(f->b, b.id, r, f->now, &e2));
			}
			break;
		case 5:
			if (f->nb) {
				uint64_t b = f->builds[x % f->nb].id;
				if (y & 1)
					BOTH(vz_gate_build_early_failure(f->a, b, f->now, &e1),
					     vz_gate_build_early_failure(f->b, b, f->now, &e2));
				else
					BOTH(vz_gate_build_started(f->a, b, f->now, &e1),
					     vz_gate_build_started(f->b, b, f->now, &e2));
			}
			break;
		case 6:
			if (f->nl) {
				size_t at = x % f->nl;
				pend l = f->lands[at];
				f->nl--;
				f->lands[at] = f->lands[f->nl];
				int landed = y % 4 != 0;
				BOTH(vz_gate_landing_result(f->a, l.id, l.gen, landed, "moved", f->now, &e1),
				     vz_gate_landing_result(f->b, l.id, l.gen, landed, "moved", f->now, &e2));
			}
			break;
		case 7: {
			const char *c = CH[x % NCH];
			const char *pl = PIPES[y % 4];
			switch ((x >> 3) % 6) {
			case 0:
				BOTH(vz_gate_dequeue(f->a, pl, c, f->now, &e1), vz_gate_dequeue(f->b, pl, c, f->now, &e2));
				break;
			case 1:
				BOTH(vz_gate_abandon(f->a, c, f->now, &e1), vz_gate_abandon(f->b, c, f->now, &e2));
				break;
			case 2: {
				int ps = ++f->patchset[x % NCH];
				BOTH(vz_gate_new_patchset(f->a, c, ps, f->now, &e1),
				     vz_gate_new_patchset(f->b, c, ps, f->now, &e2));
				break;
			}
			case 3:
				BOTH(vz_gate_approval_lost(f->a, pl, c, f->now, &e1),
				     vz_gate_approval_lost(f->b, pl, c, f->now, &e2));
				break;
			case 4: {
				const char *pr[] = { c };
				BOTH(vz_gate_promote(f->a, pl, pr, 1, f->now, &e1),
				     vz_gate_promote(f->b, pl, pr, 1, f->now, &e2));
				break;
			}
			default:
				BOTH(vz_gate_change_merged(f->a, c, f->now, &e1),
				     vz_gate_change_merged(f->b, c, f->now, &e2));
			}
			break;
		}
		default:
			break;
		}
	}
	/* drain: answer everything successfully; the queues must empty (bounded) */
	for (int guard = 0; guard < 20000 && (f->nm || f->nb || f->nl); guard++) {
		f->now++;
		if (f->nm) {
			pend m = f->merges[--f->nm];
			BOTH(vz_gate_merge_result(f->a, m.id, m.gen, 1, "rs", NULL, f->now, &e1),
			     vz_gate_merge_result(f->b, m.id, m.gen, 1, "rs", NULL, f->now, &e2));
		} else if (f->nl) {
			pend l = f->lands[--f->nl];
			BOTH(vz_gate_landing_result(f->a, l.id, l.gen, 1, NULL, f->now, &e1),
			     vz_gate_landing_result(f->b, l.id, l.gen, 1, NULL, f->now, &e2));
		} else {
			pend b = f->builds[--f->nb];
			BOTH(vz_gate_build_result(f->a, b.id, VZ_GATE_SUCCESS, f->now, &e1),
			     vz_gate_build_result(f->b, b.id, VZ_GATE_SUCCESS, f->now, &e2));
		}
	}
	if (f->nm || f->nb || f->nl)
		die("the gate kept asking for work after everything succeeded", NULL);
	char *sa = state(f->a), *sb = state(f->b);
	if (strcmp(sa, sb) != 0)
		die("plain and restored gates ended in different states", sa);
	json_t *st = json_loads(sa, 0, NULL);
	json_t *p, *q;
	size_t pi, qi;
	json_array_foreach(json_object_get(st, "pipelines"), pi, p)
		json_array_foreach(json_object_get(p, "queues"), qi, q)
			if (json_array_size(json_object_get(q, "items")))
				die("an item stayed queued after everything succeeded", sa);
	json_decref(st);
	free(sa);
	free(sb);
	vz_gate_free(f->a);
	vz_gate_free(f->b);
	free(f);
	return 0;
}
