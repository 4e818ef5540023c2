/* vz_gate_json: the gate's whole state to JSON and back, so the scheduler can keep it in sqlite
 * and a restarted scheduler continues exactly where it stopped (same ids, same keys). Reading
 * checks every field: a malformed state is refused with the path of the bad field. */
#include <stdlib.h>
#include <string.h>

#include "vz_gate.h"
#include "vz_gate_int.h"

/* ---- writing ---- */

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *strarr(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])))
			return json_decref(a), NULL;
	return a;
}

static json_t *item_json(const gt_item *it)
{
	json_t *jobs = json_array();
	for (size_t j = 0; jobs && j < it->njobs; j++) {
		const gt_job *jb = &it->jobs[j];
		const gt_js *s = &it->js[j];
		json_t *deps = json_array();
		for (size_t d = 0; deps && d < jb->ndeps; d++)
			json_array_append_new(deps, json_pack("{s:s,s:b}", "name", jb->deps[d], "soft",
							      jb->soft[d]));
		json_t *o = json_pack("{s:s,s:o,s:b,s:i,s:b,s:I,s:i,s:i,s:b,s:I}", "name", jb->name,
				      "deps", deps ? deps : json_null(), "nonvoting", jb->nonvoting,
				      "attempts", jb->attempts, "hold", jb->hold_following,
				      "build", (json_int_t)s->build, "tries", s->tries, "result", s->result,
				      "pre_fail", s->pre_fail, "started", (json_int_t)s->started);
		if (!o || json_array_append_new(jobs, o))
			return json_decref(jobs), NULL;
	}
	if (!jobs)
		return NULL;
	json_t *o = json_object();
	if (!o)
		return json_decref(jobs), NULL;
	int bad = 0;
	bad |= json_object_set_new(o, "id", json_integer((json_int_t)it->id));
	bad |= json_object_set_new(o, "connection", jstr(it->connection));
	bad |= json_object_set_new(o, "project", jstr(it->project));
	bad |= json_object_set_new(o, "branch", jstr(it->branch));
	bad |= json_object_set_new(o, "change", jstr(it->change));
	bad |= json_object_set_new(o, "ref", jstr(it->ref));
	bad |= json_object_set_new(o, "commit", jstr(it->commit));
	bad |= json_object_set_new(o, "key", jstr(it->key));
	bad |= json_object_set_new(o, "patchset", json_integer(it->patchset));
	bad |= json_object_set_new(o, "needs", strarr(it->needs, it->nneeds));
	bad |= json_object_set_new(o, "jobs", jobs);
	bad |= json_object_set_new(o, "fail_fast", json_boolean(it->fail_fast));
	bad |= json_object_set_new(o, "config_error", jstr(it->config_error));
	bad |= json_object_set_new(o, "live", json_boolean(it->live));
	bad |= json_object_set_new(o, "ahead", json_integer((json_int_t)it->ahead));
	bad |= json_object_set_new(o, "enqueue_time", json_integer((json_int_t)it->enqueue_time));
	bad |= json_object_set_new(o, "gen", json_integer(it->gen));
	bad |= json_object_set_new(o, "merge", json_integer(it->merge));
	bad |= json_object_set_new(o, "repo_state", jstr(it->repo_state));
	bad |= json_object_set_new(o, "merge_message", jstr(it->merge_message));
	bad |= json_object_set_new(o, "reported_start", json_boolean(it->reported_start));
	bad |= json_object_set_new(o, "reported", json_boolean(it->reported));
	bad |= json_object_set_new(o, "landing", json_boolean(it->landing));
	bad |= json_object_set_new(o, "unqualified", json_boolean(it->unqualified));
	bad |= json_object_set_new(o, "failing", json_boolean(it->failing));
	bad |= json_object_set_new(o, "active", json_boolean(it->active));
	if (bad)
		return json_decref(o), NULL;
	return o;
}

static json_t *items_json(gt_item **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++) {
		json_t *o = item_json(v[i]);
		if (!o || json_array_append_new(a, o))
			return json_decref(a), NULL;
	}
	return a;
}

static json_t *pipe_json(const gt_pipe *p)
{
	json_t *queues = json_array(), *qmap = json_array();
	for (size_t i = 0; queues && i < p->nqueues; i++) {
		const gt_queue *q = p->queues[i];
		json_t *items = items_json(q->items, q->n);
		json_t *o = items ? json_pack("{s:s,s:b,s:i,s:o}", "name", q->name, "dynamic", q->dynamic,
					      "window", q->window, "items", items) : NULL;
		if (!o || json_array_append_new(queues, o)) {
			json_decref(queues);
			queues = NULL;
		}
	}
	for (size_t i = 0; qmap && i < p->nqmap; i++)
		if (json_array_append_new(qmap, json_pack("{s:s,s:s}", "project", p->qmap[i].project,
							  "queue", p->qmap[i].queue))) {
			json_decref(qmap);
			qmap = NULL;
		}
	json_t *pending = items_json(p->pending, p->npending);
	json_t *sup = strarr(p->supercedes, p->nsupercedes);
	if (!queues || !qmap || !pending || !sup) {
		json_decref(queues);
		json_decref(qmap);
		json_decref(pending);
		json_decref(sup);
		return NULL;
	}
	return json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:b,s:i,s:o,s:o,s:o,s:o}",
			 "name", p->name, "manager", (int)p->manager, "window", p->window,
			 "window_floor", p->window_floor, "window_ceiling", p->window_ceiling,
			 "increase_type", p->increase_type, "increase_factor", p->increase_factor,
			 "decrease_type", p->decrease_type, "decrease_factor", p->decrease_factor,
			 "dequeue_on_new_patchset", p->dequeue_on_new_patchset,
			 "precedence", p->precedence, "supercedes", sup, "queue_map", qmap,
			 "queues", queues, "pending", pending);
}

int vz_gate_to_json(json_t **out, const vz_gate *g, vz_err *e)
{
	*out = NULL;
	json_t *pipes = json_array();
	for (size_t i = 0; pipes && i < g->npipes; i++) {
		json_t *o = pipe_json(g->pipes[i]);
		if (!o || json_array_append_new(pipes, o)) {
			json_decref(pipes);
			pipes = NULL;
		}
	}
	json_t *landed = strarr(g->landed, g->nlanded);
	if (!pipes || !landed) {
		json_decref(pipes);
		json_decref(landed);
		return vz_err_set(e, VZ_ENOMEM, "gate: out of memory writing the state");
	}
	*out = json_pack("{s:i,s:I,s:I,s:I,s:o,s:o}", "version", 1, "next_item",
			 (json_int_t)g->next_item, "next_build", (json_int_t)g->next_build, "seq",
			 (json_int_t)g->seq, "landed", landed, "pipelines", pipes);
	if (!*out)
		return vz_err_set(e, VZ_ENOMEM, "gate: out of memory writing the state");
	return 0;
}

/* ---- reading ---- */

typedef struct rd {
	vz_err *e;
	int rc;
	char where[256];
} rd;

static int bad(rd *r, const char *field, const char *what)
{
	if (!r->rc)
		r->rc = vz_err_set(r->e, VZ_EINVAL, "gate state: %s%s%s %s", r->where, *r->where ? "." : "",
				   field, what);
	return r->rc;
}

static char *get_str(rd *r, const json_t *o, const char *k, int required)
{
	const json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v)) {
		if (required)
			bad(r, k, "is missing");
		return NULL;
	}
	if (!json_is_string(v) || json_string_length(v) > VZ_GATE_MAX_STR * 64 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		bad(r, k, "is not a string");
		return NULL;
	}
	char *s = gt_strdup(json_string_value(v));
	if (!s && !r->rc)
		r->rc = vz_err_set(r->e, VZ_ENOMEM, "gate: out of memory reading the state");
	return s;
}

static long long get_int(rd *r, const json_t *o, const char *k, long long lo, long long hi)
{
	const json_t *v = json_object_get(o, k);
	if (json_is_boolean(v))
		return json_is_true(v);
	if (!json_is_integer(v)) {
		bad(r, k, "is not an integer");
		return lo;
	}
	long long x = json_integer_value(v);
	if (x < lo || x > hi) {
		bad(r, k, "is out of range");
		return lo;
	}
	return x;
}

static const json_t *get_arr(rd *r, const json_t *o, const char *k, size_t max)
{
	const json_t *v = json_object_get(o, k);
	if (!json_is_array(v)) {
		bad(r, k, "is not an array");
		return NULL;
	}
	if (json_array_size(v) > max) {
		bad(r, k, "has too many entries");
		return NULL;
	}
	return v;
}

static char **get_strarr(rd *r, const json_t *o, const char *k, size_t max, size_t *n)
{
	*n = 0;
	const json_t *a = get_arr(r, o, k, max);
	if (!a)
		return NULL;
	char **v = calloc(json_array_size(a) + 1, sizeof(char *));
	if (!v) {
		r->rc = vz_err_set(r->e, VZ_ENOMEM, "gate: out of memory reading the state");
		return NULL;
	}
	for (size_t i = 0; i < json_array_size(a); i++) {
		const json_t *s = json_array_get(a, i);
		if (!json_is_string(s) || json_string_length(s) > VZ_GATE_MAX_STR ||
		    strlen(json_string_value(s)) != json_string_length(s)) {
			bad(r, k, "holds a value that is not a string");
			break;
		}
		if (!(v[*n] = gt_strdup(json_string_value(s)))) {
			r->rc = vz_err_set(r->e, VZ_ENOMEM, "gate: out of memory reading the state");
			break;
		}
		(*n)++;
	}
	return v;
}

static gt_item *read_item(rd *r, const json_t *o)
{
	if (!json_is_object(o)) {
		bad(r, "item", "is not an object");
		return NULL;
	}
	gt_item *it = calloc(1, sizeof(*it));
	if (!it) {
		r->rc = vz_err_set(r->e, VZ_ENOMEM, "gate: out of memory reading the state");
		return NULL;
	}
	it->id = (uint64_t)get_int(r, o, "id", 0, INT64_MAX);
	it->connection = get_str(r, o, "connection", 0);
	it->project = get_str(r, o, "project", 1);
	it->branch = get_str(r, o, "branch", 0);
	it->change = get_str(r, o, "change", 0);
	it->ref = get_str(r, o, "ref", 0);
	it->commit = get_str(r, o, "commit", 0);
	it->key = get_str(r, o, "key", 1);
	it->patchset = (int)get_int(r, o, "patchset", INT32_MIN, INT32_MAX);
	it->needs = get_strarr(r, o, "needs", VZ_GATE_MAX_NEEDS, &it->nneeds);
	it->fail_fast = (int)get_int(r, o, "fail_fast", 0, 1);
	it->config_error = get_str(r, o, "config_error", 0);
	it->live = (int)get_int(r, o, "live", 0, 1);
	it->ahead = (uint64_t)get_int(r, o, "ahead", 0, INT64_MAX);
	it->enqueue_time = get_int(r, o, "enqueue_time", INT64_MIN, INT64_MAX);
	it->gen = (unsigned)get_int(r, o, "gen", 0, UINT32_MAX);
	it->merge = (int)get_int(r, o, "merge", GT_MERGE_NEW, GT_MERGE_CONFLICT);
	it->repo_state = get_str(r, o, "repo_state", 0);
	it->merge_message = get_str(r, o, "merge_message", 0);
	it->reported_start = (int)get_int(r, o, "reported_start", 0, 1);
	it->reported = (int)get_int(r, o, "reported", 0, 1);
	it->landing = (int)get_int(r, o, "landing", 0, 1);
	it->unqualified = (int)get_int(r, o, "unqualified", 0, 1);
	it->failing = (int)get_int(r, o, "failing", 0, 1);
	it->active = (int)get_int(r, o, "active", 0, 1);
	const json_t *jobs = get_arr(r, o, "jobs", VZ_GATE_MAX_JOBS);
	size_t nj = jobs ? json_array_size(jobs) : 0;
	it->jobs = calloc(nj + 1, sizeof(gt_job));
	it->js = calloc(nj + 1, sizeof(gt_js));
	if (!it->jobs || !it->js) {
		r->rc = vz_err_set(r->e, VZ_ENOMEM, "gate: out of memory reading the state");
		goto fail;
	}
	for (size_t j = 0; !r->rc && j < nj; j++) {
		const json_t *jo = json_array_get(jobs, j);
		if (!json_is_object(jo)) {
			bad(r, "jobs", "holds a job that is not an object");
			break;
		}
		gt_job *jb = &it->jobs[it->njobs];
		gt_js *s = &it->js[it->njobs];
		it->njobs++;
		jb->name = get_str(r, jo, "name", 1);
		jb->nonvoting = (int)get_int(r, jo, "nonvoting", 0, 1);
		jb->attempts = (int)get_int(r, jo, "attempts", 1, 100);
		jb->hold_following = (int)get_int(r, jo, "hold", 0, 1);
		s->build = (uint64_t)get_int(r, jo, "build", 0, INT64_MAX);
		s->tries = (int)get_int(r, jo, "tries", 0, 101);
		s->result = (int)get_int(r, jo, "result", 0, VZ_GATE_RETRY_LIMIT);
		s->pre_fail = (int)get_int(r, jo, "pre_fail", 0, 1);
		s->started = get_int(r, jo, "started", INT64_MIN, INT64_MAX);
		const json_t *deps = get_arr(r, jo, "deps", VZ_GATE_MAX_NEEDS);
		size_t nd = deps ? json_array_size(deps) : 0;
		jb->deps = calloc(nd + 1, sizeof(char *));
		jb->soft = calloc(nd + 1, sizeof(int));
		if (!jb->deps || !jb->soft) {
			r->rc = vz_err_set(r->e, VZ_ENOMEM, "gate: out of memory reading the state");
			break;
		}
		for (size_t d = 0; !r->rc && d < nd; d++) {
			const json_t *dj = json_array_get(deps, d);
			jb->soft[jb->ndeps] = (int)get_int(r, dj, "soft", 0, 1);
			char *nm = get_str(r, dj, "name", 1);
			if (nm)
				jb->deps[jb->ndeps++] = nm;
		}
	}
	if (r->rc)
		goto fail;
	return it;
fail:
	gt_item_free(it);
	return NULL;
}

static int read_items(rd *r, const json_t *o, const char *k, gt_item ***out, size_t *n, size_t *cap)
{
	const json_t *a = get_arr(r, o, k, VZ_GATE_MAX_ITEMS);
	if (!a)
		return r->rc;
	*out = calloc(json_array_size(a) + 1, sizeof(gt_item *));
	if (!*out)
		return r->rc = vz_err_set(r->e, VZ_ENOMEM, "gate: out of memory reading the state");
	*cap = json_array_size(a) + 1;
	for (size_t i = 0; i < json_array_size(a); i++) {
		gt_item *it = read_item(r, json_array_get(a, i));
		if (!it)
			return r->rc;
		(*out)[(*n)++] = it;
	}
	return 0;
}

static gt_pipe *read_pipe(rd *r, const json_t *o)
{
	if (!json_is_object(o)) {
		bad(r, "pipelines", "holds a pipeline that is not an object");
		return NULL;
	}
	gt_pipe *p = calloc(1, sizeof(*p));
	if (!p) {
		r->rc = vz_err_set(r->e, VZ_ENOMEM, "gate: out of memory reading the state");
		return NULL;
	}
	p->name = get_str(r, o, "name", 1);
	snprintf(r->where, sizeof(r->where), "pipeline %s", p->name ? p->name : "?");
	p->manager = (vz_gate_manager)get_int(r, o, "manager", VZ_GATE_INDEPENDENT, VZ_GATE_SUPERCEDENT);
	p->window = (int)get_int(r, o, "window", 0, VZ_GATE_MAX_ITEMS);
	p->window_floor = (int)get_int(r, o, "window_floor", 1, VZ_GATE_MAX_ITEMS);
	p->window_ceiling = (int)get_int(r, o, "window_ceiling", 0, INT32_MAX);
	p->increase_type = (int)get_int(r, o, "increase_type", 0, VZ_GATE_WINDOW_EXPONENTIAL);
	p->increase_factor = (int)get_int(r, o, "increase_factor", 1, INT32_MAX);
	p->decrease_type = (int)get_int(r, o, "decrease_type", 0, VZ_GATE_WINDOW_EXPONENTIAL);
	p->decrease_factor = (int)get_int(r, o, "decrease_factor", 1, INT32_MAX);
	p->dequeue_on_new_patchset = (int)get_int(r, o, "dequeue_on_new_patchset", 0, 1);
	p->precedence = (int)get_int(r, o, "precedence", INT32_MIN, INT32_MAX);
	p->supercedes = get_strarr(r, o, "supercedes", VZ_GATE_MAX_PIPELINES, &p->nsupercedes);
	const json_t *qm = get_arr(r, o, "queue_map", VZ_GATE_MAX_ITEMS);
	if (qm) {
		p->qmap = calloc(json_array_size(qm) + 1, sizeof(*p->qmap));
		p->qmapcap = json_array_size(qm) + 1;
		if (!p->qmap)
			r->rc = vz_err_set(r->e, VZ_ENOMEM, "gate: out of memory reading the state");
		for (size_t i = 0; !r->rc && i < json_array_size(qm); i++) {
			const json_t *m = json_array_get(qm, i);
			p->qmap[p->nqmap].project = get_str(r, m, "project", 1);
			p->qmap[p->nqmap].queue = get_str(r, m, "queue", 1);
			p->nqmap++;
		}
	}
	if (!r->rc)
		read_items(r, o, "pending", &p->pending, &p->npending, &p->pendingcap);
	const json_t *qs = r->rc ? NULL : get_arr(r, o, "queues", VZ_GATE_MAX_ITEMS);
	if (qs) {
		p->queues = calloc(json_array_size(qs) + 1, sizeof(*p->queues));
		p->queuecap = json_array_size(qs) + 1;
		if (!p->queues)
			r->rc = vz_err_set(r->e, VZ_ENOMEM, "gate: out of memory reading the state");
		for (size_t i = 0; !r->rc && i < json_array_size(qs); i++) {
			const json_t *qo = json_array_get(qs, i);
			gt_queue *q = calloc(1, sizeof(*q));
			if (!q) {
				r->rc = vz_err_set(r->e, VZ_ENOMEM, "gate: out of memory reading the state");
				break;
			}
			p->queues[p->nqueues++] = q;
			if (!json_is_object(qo)) {
				bad(r, "queues", "holds a queue that is not an object");
				break;
			}
			q->name = get_str(r, qo, "name", 1);
			q->dynamic = (int)get_int(r, qo, "dynamic", 0, 1);
			q->window = (int)get_int(r, qo, "window", 0, VZ_GATE_MAX_ITEMS);
			if (!r->rc)
				read_items(r, qo, "items", &q->items, &q->n, &q->cap);
			for (size_t m = 1; m < q->n; m++)
				if (q->items[m]->id <= q->items[m - 1]->id)
					q->unsorted = 1;
		}
	}
	if (r->rc) {
		gt_pipe_free(p);
		return NULL;
	}
	r->where[0] = 0;
	return p;
}

/* Cross-checks: ids unique and below the counters, ahead links point into the same queue. */
static int check_state(rd *r, const vz_gate *g)
{
	for (size_t i = 0; i < g->npipes; i++) {
		const gt_pipe *p = g->pipes[i];
		snprintf(r->where, sizeof(r->where), "pipeline %s", p->name);
		for (size_t k = 0; k < i; k++)
			if (strcmp(g->pipes[k]->name, p->name) == 0)
				return bad(r, "name", "is used twice");
		for (size_t k = 0; k < p->nqueues; k++) {
			const gt_queue *q = p->queues[k];
			for (size_t n = 0; n < q->n; n++) {
				const gt_item *it = q->items[n];
				if (!it->id || it->id >= g->next_item)
					return bad(r, "queues.items.id", "is not below next_item");
				int found = it->ahead == 0;
				for (size_t m = 0; m < n; m++)
					found |= q->items[m]->id == it->ahead;
				if (!found)
					return bad(r, "queues.items.ahead", "does not name an item ahead in the queue");
				for (size_t j = 0; j < it->njobs; j++)
					if (it->js[j].build >= g->next_build)
						return bad(r, "queues.items.jobs.build", "is not below next_build");
			}
		}
	}
	r->where[0] = 0;
	return 0;
}

int vz_gate_from_json(vz_gate **out, const json_t *j, vz_err *e)
{
	*out = NULL;
	rd r = { .e = e };
	if (!json_is_object(j))
		return vz_err_set(e, VZ_EINVAL, "gate state: not a JSON object");
	if (get_int(&r, j, "version", 1, 1) != 1 || r.rc)
		return r.rc ? r.rc : vz_err_set(e, VZ_EINVAL, "gate state: unknown version");
	vz_gate *g = NULL;
	int rc = vz_gate_new(&g, e);
	if (rc < 0)
		return rc;
	g->next_item = (uint64_t)get_int(&r, j, "next_item", 1, INT64_MAX);
	g->next_build = (uint64_t)get_int(&r, j, "next_build", 1, INT64_MAX);
	g->seq = (uint64_t)get_int(&r, j, "seq", 0, INT64_MAX);
	g->landed = get_strarr(&r, j, "landed", VZ_GATE_MAX_LANDED, &g->nlanded);
	g->landedcap = g->nlanded;
	const json_t *pipes = r.rc ? NULL : get_arr(&r, j, "pipelines", VZ_GATE_MAX_PIPELINES);
	if (pipes) {
		g->pipes = calloc(json_array_size(pipes) + 1, sizeof(*g->pipes));
		if (!g->pipes)
			r.rc = vz_err_set(e, VZ_ENOMEM, "gate: out of memory reading the state");
		for (size_t i = 0; !r.rc && i < json_array_size(pipes); i++) {
			gt_pipe *p = read_pipe(&r, json_array_get(pipes, i));
			if (p)
				g->pipes[g->npipes++] = p;
		}
	}
	if (!r.rc)
		check_state(&r, g);
	if (r.rc) {
		vz_gate_free(g);
		return r.rc;
	}
	*out = g;
	return 0;
}
