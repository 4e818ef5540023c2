/* vz_gate: the pipeline managers as a pure state machine. Each event changes the state, then every
 * queue of every pipeline is processed the way Zuul's PipelineManager.processQueue does it
 * (nearest non-failing item, windows, reporting at the head), until nothing changes. The
 * serialisation to and from JSON is in vz_gate_json.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_gate.h"
#include "vz_gate_int.h"

/* ---- small helpers ---- */

char *gt_strdup(const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *p = malloc(n + 1);
	if (p)
		memcpy(p, s, n + 1);
	return p;
}

static int streq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *p = malloc((size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, f);
	vsnprintf(p, (size_t)n + 1, f, ap);
	va_end(ap);
	return p;
}

static const char *const result_names[] = {
	[VZ_GATE_SUCCESS] = "SUCCESS",         [VZ_GATE_FAILURE] = "FAILURE",
	[VZ_GATE_TIMED_OUT] = "TIMED_OUT",     [VZ_GATE_POST_FAILURE] = "POST_FAILURE",
	[VZ_GATE_ERROR] = "ERROR",             [VZ_GATE_NODE_FAILURE] = "NODE_FAILURE",
	[VZ_GATE_SKIPPED] = "SKIPPED",         [VZ_GATE_RETRY] = "RETRY",
	[VZ_GATE_ABORTED] = "ABORTED",         [VZ_GATE_REQUEUE] = "REQUEUE",
	[VZ_GATE_CANCELED] = "CANCELED",       [VZ_GATE_RETRY_LIMIT] = "RETRY_LIMIT",
};

const char *vz_gate_result_name(vz_gate_result r)
{
	if ((int)r <= 0 || (size_t)r >= sizeof(result_names) / sizeof(result_names[0]))
		return "?";
	return result_names[r];
}

int gt_result_from_name(const char *s)
{
	for (size_t i = 1; i < sizeof(result_names) / sizeof(result_names[0]); i++)
		if (streq(s, result_names[i]))
			return (int)i;
	return 0;
}

/* ---- item and queue memory ---- */

void gt_job_clear(gt_job *j)
{
	free(j->name);
	for (size_t i = 0; i < j->ndeps; i++)
		free(j->deps[i]);
	free(j->deps);
	free(j->soft);
	memset(j, 0, sizeof(*j));
}

void gt_item_free(gt_item *it)
{
	if (!it)
		return;
	free(it->connection);
	free(it->project);
	free(it->branch);
	free(it->change);
	free(it->ref);
	free(it->commit);
	for (size_t i = 0; i < it->nneeds; i++)
		free(it->needs[i]);
	free(it->needs);
	for (size_t i = 0; i < it->njobs; i++)
		gt_job_clear(&it->jobs[i]);
	free(it->jobs);
	free(it->js);
	free(it->config_error);
	free(it->repo_state);
	free(it->merge_message);
	free(it->key);
	free(it);
}

static void queue_free(gt_queue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->n; i++)
		gt_item_free(q->items[i]);
	free(q->items);
	free(q->name);
	free(q);
}

void gt_pipe_free(gt_pipe *p)
{
	if (!p)
		return;
	free(p->name);
	for (size_t i = 0; i < p->nsupercedes; i++)
		free(p->supercedes[i]);
	free(p->supercedes);
	for (size_t i = 0; i < p->nqueues; i++)
		queue_free(p->queues[i]);
	free(p->queues);
	for (size_t i = 0; i < p->npending; i++)
		gt_item_free(p->pending[i]);
	free(p->pending);
	for (size_t i = 0; i < p->nqmap; i++) {
		free(p->qmap[i].project);
		free(p->qmap[i].queue);
	}
	free(p->qmap);
	free(p);
}

static void action_free(vz_gate_action *a)
{
	free((char *)a->key);
	free((char *)a->pipeline);
	free((char *)a->change);
	free((char *)a->project);
	for (size_t i = 0; i < a->nchanges; i++)
		free((char *)a->changes[i]);
	free((void *)a->changes);
	free((char *)a->repo_state);
	free((char *)a->job);
	free((char *)a->report);
	free((char *)a->result);
	free((char *)a->message);
}

void vz_gate_actions_clear(vz_gate *g)
{
	for (size_t i = 0; i < g->nacts; i++)
		action_free(&g->acts[i]);
	g->nacts = 0;
}

size_t vz_gate_nactions(const vz_gate *g)
{
	return g->nacts;
}

const vz_gate_action *vz_gate_action_at(const vz_gate *g, size_t i)
{
	return i < g->nacts ? &g->acts[i] : NULL;
}

int vz_gate_new(vz_gate **out, vz_err *e)
{
	*out = calloc(1, sizeof(vz_gate));
	if (!*out)
		return vz_err_set(e, VZ_ENOMEM, "gate: out of memory");
	(*out)->next_item = 1;
	(*out)->next_build = 1;
	return 0;
}

void vz_gate_free(vz_gate *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->npipes; i++)
		gt_pipe_free(g->pipes[i]);
	free(g->pipes);
	for (size_t i = 0; i < g->nlanded; i++)
		free(g->landed[i]);
	free(g->landed);
	vz_gate_actions_clear(g);
	free(g->acts);
	gt_removed_clear(g);
	free(g->removed);
	free(g);
}

void gt_removed_clear(vz_gate *g)
{
	for (size_t i = 0; i < g->nremoved; i++) {
		free(g->removed[i].change);
		free(g->removed[i].why);
	}
	g->nremoved = 0;
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 8;
	void *p = realloc(*arr, nc * elem);
	if (!p)
		return VZ_ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

/* ---- configuration ---- */

gt_pipe *gt_pipe_find(const vz_gate *g, const char *name)
{
	for (size_t i = 0; i < g->npipes; i++)
		if (streq(g->pipes[i]->name, name))
			return g->pipes[i];
	return NULL;
}

int gt_pipe_apply_conf(gt_pipe *p, const vz_gate_pipeline_conf *c, vz_err *e)
{
	if (c->manager < VZ_GATE_INDEPENDENT || c->manager > VZ_GATE_SUPERCEDENT)
		return vz_err_set(e, VZ_EINVAL, "pipeline %s: unknown manager %d (independent, dependent, "
				  "serial or supercedent)", c->name, (int)c->manager);
	p->manager = c->manager;
	p->window = c->window == 0 ? 20 : c->window < 0 ? 0 : c->window;
	p->window_floor = c->window_floor == 0 ? 3 : c->window_floor;
	p->window_ceiling = c->window_ceiling;
	p->increase_type = c->window_fixed ? VZ_GATE_WINDOW_NONE
			   : c->increase_type ? c->increase_type : VZ_GATE_WINDOW_LINEAR;
	p->increase_factor = c->increase_factor ? c->increase_factor : 1;
	p->decrease_type = c->window_fixed ? VZ_GATE_WINDOW_NONE
			   : c->decrease_type ? c->decrease_type : VZ_GATE_WINDOW_EXPONENTIAL;
	p->decrease_factor = c->decrease_factor ? c->decrease_factor : 2;
	p->dequeue_on_new_patchset = !c->keep_on_new_patchset;
	p->precedence = c->precedence;
	if (p->window_floor < 1 || p->increase_factor < 1 || p->decrease_factor < 1 ||
	    p->window_ceiling < 0 || (p->window_ceiling && p->window && p->window_ceiling < p->window_floor) ||
	    (p->window && p->window < p->window_floor && c->window > 0 && c->window_floor > 0 &&
	     c->window < c->window_floor))
		return vz_err_set(e, VZ_EINVAL, "pipeline %s: bad window settings (window %d, floor %d, "
				  "ceiling %d, increase factor %d, decrease factor %d): the floor is at "
				  "least 1, factors at least 1, the ceiling not below the floor", c->name, c->window, c->window_floor,
				  c->window_ceiling, c->increase_factor, c->decrease_factor);
	if (p->manager == VZ_GATE_INDEPENDENT)
		p->window = 0;
	if (p->manager == VZ_GATE_SERIAL || p->manager == VZ_GATE_SUPERCEDENT) {
		p->window = 1;
		p->window_floor = 1;
		p->increase_type = p->decrease_type = VZ_GATE_WINDOW_NONE;
	}
	return 0;
}

int vz_gate_add_pipeline(vz_gate *g, const vz_gate_pipeline_conf *c, vz_err *e)
{
	if (!c || !c->name || !*c->name || strlen(c->name) > VZ_GATE_MAX_STR)
		return vz_err_set(e, VZ_EINVAL, "gate: a pipeline needs a name (at most %d bytes)",
				  VZ_GATE_MAX_STR);
	if (gt_pipe_find(g, c->name))
		return vz_err_set(e, VZ_EINVAL, "gate: pipeline %s defined twice", c->name);
	if (g->npipes >= VZ_GATE_MAX_PIPELINES)
		return vz_err_set(e, VZ_ETOOBIG, "gate: more than %d pipelines", VZ_GATE_MAX_PIPELINES);
	if (c->nsupercedes > VZ_GATE_MAX_PIPELINES)
		return vz_err_set(e, VZ_ETOOBIG, "pipeline %s: too many supercedes", c->name);
	gt_pipe *p = calloc(1, sizeof(*p));
	if (!p)
		return vz_err_set(e, VZ_ENOMEM, "gate: out of memory");
	int rc = gt_pipe_apply_conf(p, c, e);
	if (rc < 0)
		goto out;
	rc = VZ_ENOMEM;
	p->name = gt_strdup(c->name);
	if (!p->name)
		goto out;
	if (c->nsupercedes) {
		p->supercedes = calloc(c->nsupercedes, sizeof(char *));
		if (!p->supercedes)
			goto out;
		for (size_t i = 0; i < c->nsupercedes; i++) {
			if (!c->supercedes[i] || strlen(c->supercedes[i]) > VZ_GATE_MAX_STR) {
				rc = vz_err_set(e, VZ_EINVAL, "pipeline %s: supercedes entry %zu is empty "
						"or too long", c->name, i);
				goto out;
			}
			if (!(p->supercedes[p->nsupercedes++] = gt_strdup(c->supercedes[i])))
				goto out;
		}
	}
	void *np = realloc(g->pipes, (g->npipes + 1) * sizeof(*g->pipes));
	if (!np)
		goto out;
	g->pipes = np;
	g->pipes[g->npipes++] = p;
	return 0;
out:
	gt_pipe_free(p);
	if (rc == VZ_ENOMEM)
		vz_err_set(e, VZ_ENOMEM, "gate: out of memory");
	return rc;
}

int vz_gate_set_queue(vz_gate *g, const char *pipeline, const char *project, const char *queue,
		      vz_err *e)
{
	gt_pipe *p = gt_pipe_find(g, pipeline);
	if (!p)
		return vz_err_set(e, VZ_ENOTFOUND, "gate: no pipeline %s", pipeline ? pipeline : "(null)");
	if (!project || !queue || !*project || !*queue || strlen(project) > VZ_GATE_MAX_STR ||
	    strlen(queue) > VZ_GATE_MAX_STR)
		return vz_err_set(e, VZ_EINVAL, "pipeline %s: a shared queue needs a project and a name",
				  pipeline);
	if (p->manager != VZ_GATE_DEPENDENT && p->manager != VZ_GATE_SERIAL)
		return vz_err_set(e, VZ_EINVAL, "pipeline %s: shared queues are for dependent and "
				  "serial pipelines", pipeline);
	for (size_t i = 0; i < p->nqmap; i++)
		if (streq(p->qmap[i].project, project)) {
			char *q = gt_strdup(queue);
			if (!q)
				return vz_err_set(e, VZ_ENOMEM, "gate: out of memory");
			free(p->qmap[i].queue);
			p->qmap[i].queue = q;
			return 0;
		}
	if (grow((void **)&p->qmap, &p->qmapcap, p->nqmap, sizeof(*p->qmap)))
		return vz_err_set(e, VZ_ENOMEM, "gate: out of memory");
	char *pr = gt_strdup(project), *q = gt_strdup(queue);
	if (!pr || !q) {
		free(pr);
		free(q);
		return vz_err_set(e, VZ_ENOMEM, "gate: out of memory");
	}
	p->qmap[p->nqmap].project = pr;
	p->qmap[p->nqmap].queue = q;
	p->nqmap++;
	return 0;
}

/* ---- lookups ---- */

/* Items are appended with increasing ids, so a queue is sorted by id unless a promote reordered
 * it: binary search then, a scan otherwise. */
static gt_item *item_in_queue(const gt_queue *q, uint64_t id)
{
	if (!id)
		return NULL;
	if (!q->unsorted) {
		size_t lo = 0, hi = q->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (q->items[mid]->id < id)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo < q->n && q->items[lo]->id == id ? q->items[lo] : NULL;
	}
	for (size_t i = 0; i < q->n; i++)
		if (q->items[i]->id == id)
			return q->items[i];
	return NULL;
}

static gt_item *item_find(const vz_gate *g, uint64_t id, gt_pipe **op, gt_queue **oq)
{
	for (size_t i = 0; i < g->npipes; i++)
		for (size_t k = 0; k < g->pipes[i]->nqueues; k++) {
			gt_item *it = item_in_queue(g->pipes[i]->queues[k], id);
			if (it) {
				if (op)
					*op = g->pipes[i];
				if (oq)
					*oq = g->pipes[i]->queues[k];
				return it;
			}
		}
	return NULL;
}

static size_t item_index(const gt_queue *q, const gt_item *it)
{
	for (size_t i = 0; i < q->n; i++)
		if (q->items[i] == it)
			return i;
	return q->n;
}

static int is_landed(const vz_gate *g, const char *change)
{
	for (size_t i = 0; i < g->nlanded; i++)
		if (streq(g->landed[i], change))
			return 1;
	return 0;
}

/* Remembers a landed change; the oldest is forgotten past VZ_GATE_MAX_LANDED (the driver leaves
 * changes merged long ago out of `needs`). 0 or VZ_ENOMEM. */
static int note_landed(vz_gate *g, const char *change)
{
	char *c = gt_strdup(change);
	if (!c)
		return VZ_ENOMEM;
	if (g->nlanded >= VZ_GATE_MAX_LANDED) {
		free(g->landed[0]);
		memmove(&g->landed[0], &g->landed[1], (g->nlanded - 1) * sizeof(*g->landed));
		g->nlanded--;
	}
	if (grow((void **)&g->landed, &g->landedcap, g->nlanded, sizeof(*g->landed))) {
		free(c);
		return VZ_ENOMEM;
	}
	g->landed[g->nlanded++] = c;
	return 0;
}

/* The name of the queue project would use in p (Zuul: named queue, else one per project). */
static const char *queue_name_for(const gt_pipe *p, const char *project)
{
	for (size_t i = 0; i < p->nqmap; i++)
		if (streq(p->qmap[i].project, project))
			return p->qmap[i].queue;
	return project;
}

static gt_queue *queue_named(const gt_pipe *p, const char *name)
{
	for (size_t i = 0; i < p->nqueues; i++)
		if (!p->queues[i]->dynamic && streq(p->queues[i]->name, name))
			return p->queues[i];
	return NULL;
}

static gt_item *find_change_in_queue(const gt_queue *q, const char *change)
{
	for (size_t i = 0; i < q->n; i++)
		if (q->items[i]->change && streq(q->items[i]->change, change))
			return q->items[i];
	return NULL;
}

static gt_item *find_live_in_pipe(const gt_pipe *p, const char *key, gt_queue **oq)
{
	for (size_t k = 0; k < p->nqueues; k++)
		for (size_t i = 0; i < p->queues[k]->n; i++) {
			gt_item *it = p->queues[k]->items[i];
			if (it->live && streq(it->key, key)) {
				if (oq)
					*oq = p->queues[k];
				return it;
			}
		}
	return NULL;
}

static size_t pipe_count(const gt_pipe *p)
{
	size_t n = p->npending;
	for (size_t k = 0; k < p->nqueues; k++)
		n += p->queues[k]->n;
	return n;
}

/* ---- actions ---- */

static vz_gate_action *act_new(vz_gate *g, vz_gate_act_kind kind, const gt_pipe *p,
			       const gt_item *it)
{
	if (g->oom)
		return NULL;
	if (grow((void **)&g->acts, &g->actcap, g->nacts, sizeof(*g->acts))) {
		g->oom = 1;
		return NULL;
	}
	vz_gate_action *a = &g->acts[g->nacts++];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->pipeline = gt_strdup(p->name);
	if (it) {
		a->item = it->id;
		a->change = gt_strdup(it->key);
		a->project = gt_strdup(it->project);
		a->gen = it->gen;
		if (!a->change || !a->project)
			g->oom = 1;
	}
	if (!a->pipeline)
		g->oom = 1;
	return a;
}

static void act_key(vz_gate *g, vz_gate_action *a, char *key)
{
	if (!key)
		g->oom = 1;
	a->key = key;
}

/* The chain an item is tested on: items ahead (by ahead links), then itself. */
static size_t chain(const gt_queue *q, const gt_item *it, const gt_item **out, size_t max)
{
	size_t n = 0;
	for (const gt_item *c = it; c && n < max; c = item_in_queue(q, c->ahead))
		out[n++] = c;
	for (size_t i = 0; i < n / 2; i++) {
		const gt_item *t = out[i];
		out[i] = out[n - 1 - i];
		out[n - 1 - i] = t;
	}
	return n;
}

static void act_changes(vz_gate *g, vz_gate_action *a, const gt_queue *q, const gt_item *it)
{
	const gt_item **c = malloc((q->n + 1) * sizeof(*c));
	if (!c) {
		g->oom = 1;
		return;
	}
	size_t n = chain(q, it, c, q->n + 1);
	char **arr = calloc(n ? n : 1, sizeof(char *));
	if (!arr) {
		g->oom = 1;
		free(c);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!(arr[i] = gt_strdup(c[i]->key)))
			g->oom = 1;
	a->changes = (const char *const *)arr;
	a->nchanges = n;
	free(c);
}

static void report(vz_gate *g, const gt_pipe *p, const gt_item *it, const char *action,
		   const char *result, char *message)
{
	vz_gate_action *a = act_new(g, VZ_GATE_ACT_REPORT, p, it);
	if (!a) {
		free(message);
		return;
	}
	a->report = gt_strdup(action);
	a->result = gt_strdup(result);
	a->message = message;
	if (!a->report || (result && !a->result) || !message)
		g->oom = 1;
	if (it)
		act_key(g, a, fmt("%s/r/%llu/%s", p->name, (unsigned long long)it->id, action));
	else
		act_key(g, a, fmt("%s/r/x%llu", p->name, (unsigned long long)++g->seq));
}

/* ---- job graph of an item ---- */

static int job_index(const gt_item *it, const char *name)
{
	for (size_t i = 0; i < it->njobs; i++)
		if (streq(it->jobs[i].name, name))
			return (int)i;
	return -1;
}

/* Is job a (transitively) depending on job b? Bounded by the number of jobs. */
static int depends_on(const gt_item *it, size_t a, size_t b, int depth)
{
	if (depth > (int)it->njobs)
		return 0;
	for (size_t d = 0; d < it->jobs[a].ndeps; d++) {
		int k = job_index(it, it->jobs[a].deps[d]);
		if (k < 0)
			continue;
		if ((size_t)k == b || depends_on(it, (size_t)k, b, depth + 1))
			return 1;
	}
	return 0;
}

static int job_final(const gt_js *s)
{
	return s->result != 0;
}

static int all_jobs_complete(const gt_item *it)
{
	if (it->config_error || it->merge == GT_MERGE_CONFLICT)
		return 1;
	if (it->merge != GT_MERGE_DONE)
		return 0;
	for (size_t i = 0; i < it->njobs; i++)
		if (!job_final(&it->js[i]))
			return 0;
	return 1;
}

static int all_jobs_succeeded(const gt_item *it)
{
	if (it->config_error || it->merge != GT_MERGE_DONE)
		return 0;
	for (size_t i = 0; i < it->njobs; i++) {
		if (it->jobs[i].nonvoting)
			continue;
		if (it->js[i].result != VZ_GATE_SUCCESS)
			return 0;
	}
	return 1;
}

static int any_job_failed(const gt_item *it)
{
	for (size_t i = 0; i < it->njobs; i++) {
		if (it->jobs[i].nonvoting)
			continue;
		if (it->js[i].pre_fail || (it->js[i].result && it->js[i].result != VZ_GATE_SUCCESS))
			return 1;
	}
	return 0;
}

/* Zuul's isHoldingFollowingChanges: a live item with a hold-following-changes job that has not
 * succeeded, or the same for the item ahead (a non-live item ends the chain). Items ahead are
 * processed first, so their flag is current when the items behind read it. */
static int compute_holds(const gt_queue *q, gt_item *it)
{
	it->holds = 0;
	if (!it->live)
		return 0;
	for (size_t i = 0; i < it->njobs; i++)
		if (it->jobs[i].hold_following && it->js[i].result != VZ_GATE_SUCCESS)
			return it->holds = 1;
	gt_item *a = item_in_queue(q, it->ahead);
	return it->holds = a ? a->holds : 0;
}

/* ---- cancel, reset, move, dequeue (Zuul's cancelJobs, moveItem, dequeueItem) ---- */

static void cancel_build(vz_gate *g, const gt_pipe *p, const gt_item *it, gt_js *s)
{
	if (!s->build || s->result)
		return;
	vz_gate_action *a = act_new(g, VZ_GATE_ACT_CANCEL, p, it);
	if (a) {
		a->build = s->build;
		a->job = gt_strdup(it->jobs[s - it->js].name);
		act_key(g, a, fmt("%s/c/%llu", p->name, (unsigned long long)s->build));
	}
}

static void reset_buildset(gt_item *it)
{
	/* a landing in flight is answered with the old generation and ignored */
	it->landing = 0;
	it->gen++;
	it->merge = GT_MERGE_NEW;
	free(it->repo_state);
	it->repo_state = NULL;
	free(it->merge_message);
	it->merge_message = NULL;
	memset(it->js, 0, it->njobs * sizeof(*it->js));
}

/* Cancels it's running builds; with prime its buildset starts over (a new merge, no builds), else
 * the canceled builds stay as CANCELED. Then the same for every item behind it. */
static void cancel_jobs(vz_gate *g, const gt_pipe *p, gt_queue *q, gt_item *it, int prime)
{
	size_t pos = item_index(q, it);
	uint64_t mark = ++g->epoch;
	for (size_t i = pos; i < q->n; i++) {
		gt_item *c = q->items[i];
		gt_item *a = c == it ? NULL : item_in_queue(q, c->ahead);
		if (c != it && !(a && a->mark == mark))
			continue;
		c->mark = mark;
		for (size_t j = 0; j < c->njobs; j++) {
			cancel_build(g, p, c, &c->js[j]);
			if (!prime && !c->js[j].result)
				c->js[j].result = VZ_GATE_CANCELED;
		}
		if (prime)
			reset_buildset(c);
	}
}

static void move_item(gt_queue *q, gt_item *it, uint64_t to)
{
	if (it->ahead == to)
		return;
	for (size_t i = 0; i < q->n; i++)
		if (q->items[i]->ahead == it->id)
			q->items[i]->ahead = it->ahead;
	it->ahead = to;
}

static void remove_queue(gt_pipe *p, gt_queue *q)
{
	for (size_t i = 0; i < p->nqueues; i++)
		if (p->queues[i] == q) {
			memmove(&p->queues[i], &p->queues[i + 1], (p->nqueues - i - 1) * sizeof(*p->queues));
			p->nqueues--;
			queue_free(q);
			return;
		}
}

static void note_removed(vz_gate *g, const gt_item *it, const char *why)
{
	if (!it->change || g->oom)
		return;
	if (grow((void **)&g->removed, &g->removedcap, g->nremoved, sizeof(*g->removed))) {
		g->oom = 1;
		return;
	}
	g->removed[g->nremoved].change = gt_strdup(it->change);
	g->removed[g->nremoved].why = gt_strdup(why);
	if (!g->removed[g->nremoved].change || !g->removed[g->nremoved].why)
		g->oom = 1;
	g->nremoved++;
}

static void dequeue_item(vz_gate *g, gt_pipe *p, gt_queue *q, gt_item *it, const char *why)
{
	note_removed(g, it, why);
	for (size_t i = 0; i < q->n; i++)
		if (q->items[i]->ahead == it->id)
			q->items[i]->ahead = it->ahead;
	size_t pos = item_index(q, it);
	memmove(&q->items[pos], &q->items[pos + 1], (q->n - pos - 1) * sizeof(*q->items));
	q->n--;
	gt_item_free(it);
	if (q->n == 0)
		q->unsorted = 0;
	if (q->dynamic && q->n == 0)
		remove_queue(p, q);
}

/* Removes an item that was not reported (superseded, abandoned, new patchset, operator): cancel,
 * dequeue, and the `dequeue` report (Zuul's dequeue reporters). */
static void remove_item(vz_gate *g, gt_pipe *p, gt_queue *q, gt_item *it, const char *why)
{
	cancel_jobs(g, p, q, it, 1);
	/* Zuul's dequeue reporters apply when the item reported start and has no result */
	if (it->live && !it->reported && it->reported_start)
		report(g, p, it, "dequeue", "DEQUEUED", fmt("Build canceled. %s was dequeued: %s.",
							   it->key, why));
	dequeue_item(g, p, q, it, why);
}

/* ---- windows (Zuul's ChangeQueue.increaseWindowSize / decreaseWindowSize) ---- */

static void window_increase(const gt_pipe *p, gt_queue *q)
{
	if (!q->window)
		return;
	long w = q->window;
	if (p->increase_type == VZ_GATE_WINDOW_LINEAR)
		w += p->increase_factor;
	else if (p->increase_type == VZ_GATE_WINDOW_EXPONENTIAL)
		w *= p->increase_factor;
	if (p->window_ceiling && w > p->window_ceiling)
		w = p->window_ceiling;
	if (w > VZ_GATE_MAX_ITEMS)
		w = VZ_GATE_MAX_ITEMS;
	q->window = (int)w;
}

static void window_decrease(const gt_pipe *p, gt_queue *q)
{
	if (!q->window)
		return;
	int w = q->window;
	if (p->decrease_type == VZ_GATE_WINDOW_LINEAR)
		w -= p->decrease_factor;
	else if (p->decrease_type == VZ_GATE_WINDOW_EXPONENTIAL)
		w /= p->decrease_factor;
	if (w < p->window_floor)
		w = p->window_floor;
	q->window = w;
}

/* ---- processing one item (Zuul's _processOneItem) ---- */

static int changes_merge(const gt_pipe *p)
{
	return p->manager == VZ_GATE_DEPENDENT;
}

static int shared_queues(const gt_pipe *p)
{
	return p->manager == VZ_GATE_DEPENDENT || p->manager == VZ_GATE_SERIAL;
}

/* A needed change that is neither landed nor in the item's queue: the item cannot merge. */
static const char *missing_need(const vz_gate *g, const gt_pipe *p, const gt_queue *q,
				const gt_item *it)
{
	if (p->manager == VZ_GATE_SUPERCEDENT)
		return NULL;
	for (size_t i = 0; i < it->nneeds; i++) {
		if (is_landed(g, it->needs[i]))
			continue;
		if (find_change_in_queue(q, it->needs[i]))
			continue;
		return it->needs[i];
	}
	return NULL;
}

static const char *removed_why(const vz_gate *g, const char *change)
{
	for (size_t i = g->nremoved; i-- > 0;)
		if (streq(g->removed[i].change, change))
			return g->removed[i].why;
	return NULL;
}

static int need_failing(const gt_pipe *p, const gt_queue *q, const gt_item *it)
{
	if (!shared_queues(p))
		return 0;
	for (size_t i = 0; i < it->nneeds; i++) {
		gt_item *n = find_change_in_queue(q, it->needs[i]);
		if (n && n->failing)
			return 1;
	}
	return 0;
}

static void request_merge(vz_gate *g, const gt_pipe *p, const gt_queue *q, gt_item *it)
{
	vz_gate_action *a = act_new(g, VZ_GATE_ACT_MERGE, p, it);
	if (!a)
		return;
	act_changes(g, a, q, it);
	act_key(g, a, fmt("%s/m/%llu/%u", p->name, (unsigned long long)it->id, it->gen));
	it->merge = GT_MERGE_PENDING;
}

static int launch_jobs(vz_gate *g, const gt_pipe *p, const gt_queue *q, gt_item *it)
{
	if (!it->live || it->config_error || it->merge != GT_MERGE_DONE)
		return 0;
	gt_item *ahead = item_in_queue(q, it->ahead);
	if (ahead && ahead->holds)
		return 0;
	int n = 0;
	for (size_t j = 0; j < it->njobs; j++) {
		gt_js *s = &it->js[j];
		if (s->build || s->result)
			continue;
		int ok = 1;
		for (size_t d = 0; ok && d < it->jobs[j].ndeps; d++) {
			int k = job_index(it, it->jobs[j].deps[d]);
			if (k >= 0 && it->js[k].result != VZ_GATE_SUCCESS)
				ok = 0;
		}
		if (!ok)
			continue;
		s->build = g->next_build++;
		s->tries++;
		s->started = 0;
		vz_gate_action *a = act_new(g, VZ_GATE_ACT_BUILD, p, it);
		if (!a)
			return n;
		a->build = s->build;
		a->job = gt_strdup(it->jobs[j].name);
		a->attempt = s->tries;
		a->precedence = p->precedence;
		a->enqueue_time = it->enqueue_time;
		a->repo_state = gt_strdup(it->repo_state);
		if (!a->job || (it->repo_state && !a->repo_state))
			g->oom = 1;
		act_changes(g, a, q, it);
		act_key(g, a, fmt("%s/b/%llu", p->name, (unsigned long long)s->build));
		n++;
	}
	return n;
}

static char *result_message(const gt_item *it, const char *head)
{
	size_t len = strlen(head) + 2;
	for (size_t j = 0; j < it->njobs; j++)
		len += strlen(it->jobs[j].name) + 40;
	char *m = malloc(len);
	if (!m)
		return NULL;
	size_t o = (size_t)snprintf(m, len, "%s", head);
	for (size_t j = 0; j < it->njobs; j++)
		o += (size_t)snprintf(m + o, len - o, "\n- %s %s%s", it->jobs[j].name,
				      it->js[j].result ? vz_gate_result_name(it->js[j].result) : "NOT_RUN",
				      it->jobs[j].nonvoting ? " (non-voting)" : "");
	return m;
}

/* Reports an item at the head whose jobs are complete, as Zuul's _reportItem picks the action. */
static void report_final(vz_gate *g, const gt_pipe *p, gt_item *it, const char **out_result)
{
	const char *action, *result;
	char *msg;
	if (it->config_error) {
		action = "config-error";
		result = "CONFIG_ERROR";
		msg = fmt("Configuration error: %s", it->config_error);
	} else if (it->merge == GT_MERGE_CONFLICT) {
		action = "merge-conflict";
		result = "MERGE_CONFLICT";
		msg = fmt("%s could not be merged%s%s", it->key, it->merge_message ? ": " : ".",
			  it->merge_message ? it->merge_message : "");
	} else if (it->njobs == 0) {
		action = "no-jobs";
		result = "NO_JOBS";
		msg = fmt("No jobs for %s in %s.", it->key, p->name);
	} else if (all_jobs_succeeded(it)) {
		action = "success";
		result = "SUCCESS";
		msg = result_message(it, "Build succeeded.");
	} else {
		action = "failure";
		result = "FAILURE";
		msg = result_message(it, "Build failed.");
	}
	it->reported = 1;
	report(g, p, it, action, result, msg);
	if (out_result)
		*out_result = result;
}

static void request_land(vz_gate *g, const gt_pipe *p, gt_item *it)
{
	vz_gate_action *a = act_new(g, VZ_GATE_ACT_LAND, p, it);
	if (!a)
		return;
	a->repo_state = gt_strdup(it->repo_state);
	if (it->repo_state && !a->repo_state)
		g->oom = 1;
	act_key(g, a, fmt("%s/l/%llu/%u", p->name, (unsigned long long)it->id, it->gen));
	it->landing = 1;
}

/* Returns 1 when something changed. *nnfi is the nearest non-failing item's id. */
static int process_one(vz_gate *g, gt_pipe *p, gt_queue *q, gt_item *it, size_t pos,
		       uint64_t *nnfi)
{
	int changed = 0, ready = 0;
	gt_item *ahead = item_in_queue(q, it->ahead);
	if (ahead && !ahead->live)
		ahead = NULL;
	unsigned failing = 0;
	compute_holds(q, it);

	const char *missing = missing_need(g, p, q, it);
	if (it->unqualified || missing) {
		cancel_jobs(g, p, q, it, 1);
		if (it->live) {
			char *m;
			if (it->unqualified)
				m = fmt("%s no longer meets the requirements of %s.", it->key, p->name);
			else {
				const char *why = removed_why(g, missing);
				if (!why && p->manager == VZ_GATE_INDEPENDENT)
					why = "it is not queued or waiting anywhere in vinz, so the "
					      "item cannot be tested with it";
				m = why ? fmt("Change %s is needed (%s).", missing, why)
					: fmt("Change %s is needed.", missing);
			}
			it->reported = 1;
			report(g, p, it, "failure", "FAILURE", m);
			/* Zuul reports it through reportItem: it did not succeed, so in a dependent
			 * pipeline the window shrinks */
			if (changes_merge(p) && it->njobs)
				window_decrease(p, q);
		}
		char *why = fmt(it->unqualified ? "it no longer meets the requirements"
				: "needed change %s is gone", missing ? missing : "");
		dequeue_item(g, p, q, it, why ? why : "it can no longer merge");
		free(why);
		return 1;
	}

	int actionable = q->window == 0 || pos < (size_t)q->window;
	it->active = actionable;

	if (need_failing(p, q, it)) {
		failing |= 1;
		cancel_jobs(g, p, q, it, 0);
	} else {
		uint64_t ahead_id = ahead ? ahead->id : 0;
		if (ahead_id != *nnfi) {
			move_item(q, it, *nnfi);
			changed = 1;
			cancel_jobs(g, p, q, it, 1);
		}
		if (actionable) {
			if (it->merge == GT_MERGE_NEW && !it->config_error) {
				request_merge(g, p, q, it);
				changed = 1;
			}
			ready = it->merge == GT_MERGE_DONE && !it->config_error;
			if (ready && it->live && it->njobs && !it->reported_start) {
				it->reported_start = 1;
				report(g, p, it, "start", NULL, fmt("Starting %s jobs for %s.", p->name,
								     it->key));
			}
			if (it->merge == GT_MERGE_CONFLICT)
				failing |= 2;
			if (it->config_error)
				failing |= 4;
		}
	}
	if (ready && launch_jobs(g, p, q, it))
		changed = 1;
	if (any_job_failed(it))
		failing |= 8;
	if (!it->live) {
		int behind = 0;
		for (size_t i = 0; i < q->n; i++)
			behind |= q->items[i]->ahead == it->id;
		if (!behind) {
			dequeue_item(g, p, q, it, "it is a non-live item with no items behind");
			return 1;
		}
	}
	int can_report = !ahead && it->live && all_jobs_complete(it);
	if (can_report && it->landing) {
		/* waiting for the landing result: it counts as non-failing, items behind go on */
		*nnfi = it->id;
		it->failing = 0;
		return changed;
	}
	if (can_report) {
		if (changes_merge(p) && !failing && it->njobs && all_jobs_succeeded(it)) {
			request_land(g, p, it);
			*nnfi = it->id;
			it->failing = 0;
			return 1;
		}
		const char *result = NULL;
		report_final(g, p, it, &result);
		if (changes_merge(p)) {
			/* Zuul: the window shrinks when an item that did not succeed reports; the
			 * items behind are reset (they were tested on it) */
			if (!all_jobs_succeeded(it))
				window_decrease(p, q);
			for (size_t i = 0; i < q->n; i++)
				if (q->items[i]->ahead == it->id)
					cancel_jobs(g, p, q, q->items[i], 1);
		}
		char *why = fmt("%s reported %s", it->key, result ? result : "");
		dequeue_item(g, p, q, it, why ? why : "it was reported");
		free(why);
		return 1;
	}
	if (!failing && it->live)
		*nnfi = it->id;
	it->failing = failing != 0;
	return changed;
}

static int process_queue(vz_gate *g, gt_pipe *p, gt_queue *q)
{
	size_t n = q->n;
	uint64_t *ids = malloc((n + 1) * sizeof(*ids));
	if (!ids) {
		g->oom = 1;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = q->items[i]->id;
	int changed = 0;
	uint64_t nnfi = 0;
	size_t gone = 0; /* snapshot items no longer queued: only the processed item can leave */
	/* the queue may be freed when its last item leaves (dynamic queues): stop then */
	for (size_t i = 0; i < n && !g->oom; i++) {
		gt_item *it = item_in_queue(q, ids[i]);
		if (!it) {
			gone++;
			continue;
		}
		size_t before = q->n;
		changed |= process_one(g, p, q, it, i - gone, &nnfi);
		int alive = 0;
		for (size_t k = 0; k < p->nqueues; k++)
			alive |= p->queues[k] == q;
		if (!alive)
			break; /* a dynamic queue is freed with its last item */
		if (q->n < before)
			gone++;
	}
	free(ids);
	return changed;
}

static void process_all(vz_gate *g)
{
	/* every pass that changes something moves an item forward or out; 4 passes per item
	 * bound it far above what a consistent state needs */
	size_t total = 0;
	for (size_t i = 0; i < g->npipes; i++)
		total += pipe_count(g->pipes[i]);
	size_t bound = 4 * total + 8;
	for (size_t pass = 0; pass < bound && !g->oom; pass++) {
		int changed = 0;
		for (size_t i = 0; i < g->npipes; i++) {
			gt_pipe *p = g->pipes[i];
			/* queues may disappear while processed: walk by index from a snapshot count */
			for (size_t k = 0; k < p->nqueues; k++) {
				gt_queue *q = p->queues[k];
				size_t before = p->nqueues;
				changed |= process_queue(g, p, q);
				if (p->nqueues < before)
					k--; /* queue k was removed; the next one moved into its place */
			}
		}
		if (!changed)
			break;
	}
}

/* ---- enqueue ---- */

static int check_str(const char *s, const char *what, int required, vz_err *e)
{
	if (!s) {
		if (required)
			return vz_err_set(e, VZ_EINVAL, "enqueue: %s is missing", what);
		return 0;
	}
	if (required && !*s)
		return vz_err_set(e, VZ_EINVAL, "enqueue: %s is empty", what);
	if (strlen(s) > VZ_GATE_MAX_STR)
		return vz_err_set(e, VZ_ETOOBIG, "enqueue: %s is longer than %d bytes", what,
				  VZ_GATE_MAX_STR);
	return 0;
}

static int validate_spec(const vz_gate_item_spec *s, vz_err *e)
{
	int rc;
	const vz_gate_change *c = &s->change;
	if ((rc = check_str(c->connection, "connection", 0, e)) || (rc = check_str(c->project, "project", 1, e)) ||
	    (rc = check_str(c->branch, "branch", 0, e)) || (rc = check_str(c->change, "change id", 0, e)) ||
	    (rc = check_str(c->ref, "ref", !c->change, e)) || (rc = check_str(c->commit, "commit", 0, e)) ||
	    (rc = check_str(s->config_error, "config error", 0, e)))
		return rc;
	if (c->change && strncmp(c->change, "ref:", 4) == 0)
		return vz_err_set(e, VZ_EINVAL, "enqueue: change id %s may not start with \"ref:\"", c->change);
	if (c->nneeds > VZ_GATE_MAX_NEEDS)
		return vz_err_set(e, VZ_ETOOBIG, "enqueue %s: needs %zu changes, at most %d",
				  c->change ? c->change : c->ref, c->nneeds, VZ_GATE_MAX_NEEDS);
	for (size_t i = 0; i < c->nneeds; i++) {
		if ((rc = check_str(c->needs[i], "needed change", 1, e)))
			return rc;
		if (streq(c->needs[i], c->change))
			return vz_err_set(e, VZ_EINVAL, "enqueue %s: the change needs itself", c->change);
	}
	if (s->njobs > VZ_GATE_MAX_JOBS)
		return vz_err_set(e, VZ_ETOOBIG, "enqueue: %zu jobs, at most %d", s->njobs, VZ_GATE_MAX_JOBS);
	for (size_t j = 0; j < s->njobs; j++) {
		if ((rc = check_str(s->jobs[j].name, "job name", 1, e)))
			return rc;
		if (s->jobs[j].ndeps > VZ_GATE_MAX_NEEDS)
			return vz_err_set(e, VZ_ETOOBIG, "enqueue: job %s has more than %d dependencies",
					  s->jobs[j].name, VZ_GATE_MAX_NEEDS);
		if (s->jobs[j].attempts < 0 || s->jobs[j].attempts > 100)
			return vz_err_set(e, VZ_EINVAL, "enqueue: job %s: attempts %d (1..100)",
					  s->jobs[j].name, s->jobs[j].attempts);
		for (size_t d = 0; d < s->jobs[j].ndeps; d++)
			if ((rc = check_str(s->jobs[j].deps[d].name, "job dependency", 1, e)))
				return rc;
		for (size_t k = 0; k < j; k++)
			if (streq(s->jobs[k].name, s->jobs[j].name))
				return vz_err_set(e, VZ_EINVAL, "enqueue: job %s is in the graph twice",
						  s->jobs[j].name);
	}
	return 0;
}

/* Copies the spec into a new item; a job graph problem becomes the item's config error. */
static gt_item *item_from_spec(vz_gate *g, const vz_gate_item_spec *s, int64_t now)
{
	gt_item *it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	const vz_gate_change *c = &s->change;
	it->connection = gt_strdup(c->connection);
	it->project = gt_strdup(c->project);
	it->branch = gt_strdup(c->branch);
	it->change = gt_strdup(c->change);
	it->ref = gt_strdup(c->ref);
	it->commit = gt_strdup(c->commit);
	it->patchset = c->patchset;
	it->key = c->change ? gt_strdup(c->change) : fmt("ref:%s:%s", c->project, c->ref);
	it->fail_fast = s->fail_fast;
	it->enqueue_time = now;
	it->live = 1;
	it->config_error = gt_strdup(s->config_error);
	it->needs = calloc(c->nneeds + 1, sizeof(char *));
	it->jobs = calloc(s->njobs + 1, sizeof(gt_job));
	it->js = calloc(s->njobs + 1, sizeof(gt_js));
	if (!it->project || !it->key || !it->needs || !it->jobs || !it->js ||
	    (c->connection && !it->connection) || (c->branch && !it->branch) ||
	    (c->change && !it->change) || (c->ref && !it->ref) || (c->commit && !it->commit) ||
	    (s->config_error && !it->config_error))
		goto fail;
	for (size_t i = 0; i < c->nneeds; i++) {
		int dup = 0;
		for (size_t k = 0; k < it->nneeds; k++)
			dup |= streq(it->needs[k], c->needs[i]);
		if (dup)
			continue;
		if (!(it->needs[it->nneeds++] = gt_strdup(c->needs[i])))
			goto fail;
	}
	for (size_t j = 0; j < s->njobs; j++) {
		const vz_gate_job *sj = &s->jobs[j];
		gt_job *jj = &it->jobs[it->njobs++];
		jj->name = gt_strdup(sj->name);
		jj->nonvoting = sj->nonvoting;
		jj->attempts = sj->attempts ? sj->attempts : 3;
		jj->hold_following = sj->hold_following;
		jj->deps = calloc(sj->ndeps + 1, sizeof(char *));
		jj->soft = calloc(sj->ndeps + 1, sizeof(int));
		if (!jj->name || !jj->deps || !jj->soft)
			goto fail;
		for (size_t d = 0; d < sj->ndeps; d++) {
			int found = 0;
			for (size_t k = 0; k < s->njobs; k++)
				found |= streq(s->jobs[k].name, sj->deps[d].name);
			if (!found) {
				if (sj->deps[d].soft)
					continue; /* Zuul: a soft dependency on a job that does not run */
				if (!it->config_error &&
				    !(it->config_error = fmt("job %s depends on %s, which is not in the job "
							     "graph", sj->name, sj->deps[d].name)))
					goto fail;
				continue;
			}
			jj->soft[jj->ndeps] = sj->deps[d].soft;
			if (!(jj->deps[jj->ndeps++] = gt_strdup(sj->deps[d].name)))
				goto fail;
		}
	}
	for (size_t j = 0; j < it->njobs && !it->config_error; j++)
		if (depends_on(it, j, j, 0) &&
		    !(it->config_error = fmt("job %s depends on itself (a dependency cycle)",
					     it->jobs[j].name)))
			goto fail;
	(void)g;
	return it;
fail:
	gt_item_free(it);
	return NULL;
}

static gt_item *item_copy(const gt_item *src)
{
	gt_item *it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	*it = *src;
	it->connection = gt_strdup(src->connection);
	it->project = gt_strdup(src->project);
	it->branch = gt_strdup(src->branch);
	it->change = gt_strdup(src->change);
	it->ref = gt_strdup(src->ref);
	it->commit = gt_strdup(src->commit);
	it->key = gt_strdup(src->key);
	it->config_error = gt_strdup(src->config_error);
	it->repo_state = NULL;
	it->merge_message = NULL;
	it->needs = calloc(src->nneeds + 1, sizeof(char *));
	it->jobs = calloc(src->njobs + 1, sizeof(gt_job));
	it->js = calloc(src->njobs + 1, sizeof(gt_js));
	int bad = !it->needs || !it->jobs || !it->js || !it->project || !it->key;
	it->nneeds = it->njobs = 0;
	for (size_t i = 0; !bad && i < src->nneeds; i++)
		bad = !(it->needs[it->nneeds++] = gt_strdup(src->needs[i]));
	for (size_t j = 0; !bad && j < src->njobs; j++) {
		gt_job *d = &it->jobs[it->njobs++];
		const gt_job *sj = &src->jobs[j];
		*d = *sj;
		d->name = gt_strdup(sj->name);
		d->deps = calloc(sj->ndeps + 1, sizeof(char *));
		d->soft = calloc(sj->ndeps + 1, sizeof(int));
		d->ndeps = 0;
		bad = !d->name || !d->deps || !d->soft;
		for (size_t k = 0; !bad && k < sj->ndeps; k++) {
			d->soft[k] = sj->soft[k];
			bad = !(d->deps[d->ndeps++] = gt_strdup(sj->deps[k]));
		}
	}
	if (bad) {
		gt_item_free(it);
		return NULL;
	}
	return it;
}

static int queue_append(gt_queue *q, gt_item *it)
{
	if (grow((void **)&q->items, &q->cap, q->n, sizeof(*q->items)))
		return VZ_ENOMEM;
	it->ahead = q->n ? q->items[q->n - 1]->id : 0;
	q->items[q->n++] = it;
	return 0;
}

static gt_queue *queue_add(gt_pipe *p, const char *name, int dynamic)
{
	if (grow((void **)&p->queues, &p->queuecap, p->nqueues, sizeof(*p->queues)))
		return NULL;
	gt_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->name = gt_strdup(name);
	if (!q->name) {
		free(q);
		return NULL;
	}
	q->dynamic = dynamic;
	q->window = p->window;
	p->queues[p->nqueues++] = q;
	return q;
}

/* The queue an item goes to, created when missing (Zuul's getChangeQueue per manager). */
static gt_queue *queue_for(gt_pipe *p, const gt_item *it)
{
	if (p->manager == VZ_GATE_INDEPENDENT)
		return queue_add(p, it->key, 1);
	if (p->manager == VZ_GATE_SUPERCEDENT) {
		for (size_t i = 0; i < p->nqueues; i++) {
			gt_queue *q = p->queues[i];
			gt_item *last = q->n ? q->items[q->n - 1] : NULL;
			if (last && streq(last->project, it->project) &&
			    (it->change ? streq(last->branch, it->branch) : streq(last->ref, it->ref)))
				return q;
		}
		return queue_add(p, it->key, 1);
	}
	const char *name = queue_name_for(p, it->project);
	gt_queue *q = queue_named(p, name);
	return q ? q : queue_add(p, name, 0);
}

static gt_item *pending_find(const gt_pipe *p, const char *change)
{
	for (size_t i = 0; i < p->npending; i++)
		if (streq(p->pending[i]->change, change))
			return p->pending[i];
	return NULL;
}

static void pending_remove(gt_pipe *p, gt_item *it)
{
	for (size_t i = 0; i < p->npending; i++)
		if (p->pending[i] == it) {
			memmove(&p->pending[i], &p->pending[i + 1], (p->npending - i - 1) * sizeof(*p->pending));
			p->npending--;
			gt_item_free(it);
			return;
		}
}

/* A change known to the gate by id: a live item in any pipeline or a waiting one. */
static const gt_item *known_change(const vz_gate *g, const char *change)
{
	for (size_t i = 0; i < g->npipes; i++) {
		gt_item *it = find_live_in_pipe(g->pipes[i], change, NULL);
		if (it)
			return it;
		it = pending_find(g->pipes[i], change);
		if (it)
			return it;
	}
	return NULL;
}

enum { ENQ_DONE = 0, ENQ_WAIT = 1 };

static void supercede(vz_gate *g, gt_pipe *p, const gt_item *it)
{
	for (size_t s = 0; s < p->nsupercedes; s++) {
		gt_pipe *o = gt_pipe_find(g, p->supercedes[s]);
		if (!o || o == p)
			continue;
		gt_queue *oq = NULL;
		gt_item *old = find_live_in_pipe(o, it->key, &oq);
		if (old) {
			char *why = fmt("superseded by %s entering %s", it->key, p->name);
			remove_item(g, o, oq, old, why ? why : "superseded");
			free(why);
		}
		gt_item *pend = it->change ? pending_find(o, it->change) : NULL;
		if (pend)
			pending_remove(o, pend);
	}
}

/* Puts a (live) item into its queue, after what it needs (Zuul's addChange with
 * enqueueChangesAhead). Takes ownership of it on ENQ_DONE; ENQ_WAIT leaves it to the caller. */
static int add_item(vz_gate *g, gt_pipe *p, gt_item *it, int depth)
{
	if (depth > VZ_GATE_MAX_NEEDS * 4)
		return ENQ_WAIT;
	if (p->manager == VZ_GATE_INDEPENDENT) {
		/* needed changes not landed are tested with it, as non-live items ahead; each
		 * independent item has a queue of its own */
		gt_item *ahead[VZ_GATE_MAX_NEEDS];
		size_t na = 0;
		for (size_t i = 0; i < it->nneeds; i++) {
			if (is_landed(g, it->needs[i]))
				continue;
			const gt_item *k = known_change(g, it->needs[i]);
			if (!k)
				continue;
			gt_item *c = item_copy(k);
			if (!c) {
				g->oom = 1;
				break;
			}
			c->live = 0;
			c->id = g->next_item++;
			c->reported = c->reported_start = c->landing = c->failing = c->unqualified = 0;
			c->merge = GT_MERGE_NEW;
			c->gen = 0;
			/* it is tested as it is, ahead of the item: what it needs in turn is not
			 * checked here (one level, as the item's own needs name the changes) */
			for (size_t n = 0; n < c->nneeds; n++)
				free(c->needs[n]);
			c->nneeds = 0;
			ahead[na++] = c;
		}
		gt_queue *q = g->oom ? NULL : queue_for(p, it);
		if (!q) {
			g->oom = 1;
			for (size_t i = 0; i < na; i++)
				gt_item_free(ahead[i]);
			return ENQ_DONE;
		}
		for (size_t i = 0; i < na; i++)
			if (queue_append(q, ahead[i])) {
				g->oom = 1;
				gt_item_free(ahead[i]);
			}
		it->id = g->next_item++;
		if (queue_append(q, it)) {
			g->oom = 1;
			gt_item_free(it);
			return ENQ_DONE;
		}
		report(g, p, it, "enqueue", NULL, fmt("%s enqueued in %s.", it->key, p->name));
		return ENQ_DONE;
	}
	gt_queue *q = NULL;
	const char *qname = queue_name_for(p, it->project);
	if (shared_queues(p)) {
		for (size_t i = 0; i < it->nneeds; i++) {
			const char *need = it->needs[i];
			if (is_landed(g, need))
				continue;
			gt_queue *nq = queue_named(p, qname);
			if (nq && find_change_in_queue(nq, need))
				continue;
			gt_item *pend = pending_find(p, need);
			if (pend && streq(queue_name_for(p, pend->project), qname)) {
				if (add_item(g, p, pend, depth + 1) == ENQ_DONE) {
					/* pend now belongs to the queue: take it out of the list
					 * without freeing it */
					for (size_t k = 0; k < p->npending; k++)
						if (p->pending[k] == pend) {
							memmove(&p->pending[k], &p->pending[k + 1],
								(p->npending - k - 1) * sizeof(*p->pending));
							p->npending--;
							break;
						}
					continue;
				}
			}
			return ENQ_WAIT;
		}
	}
	if (find_live_in_pipe(p, it->key, NULL))
		return ENQ_WAIT;
	q = queue_for(p, it);
	if (!q) {
		g->oom = 1;
		return ENQ_WAIT;
	}
	it->id = g->next_item++;
	if (queue_append(q, it)) {
		g->oom = 1;
		return ENQ_WAIT;
	}
	report(g, p, it, "enqueue", NULL, fmt("%s enqueued in %s.", it->key, p->name));
	supercede(g, p, it);
	if (p->manager == VZ_GATE_SUPERCEDENT) {
		/* keep the running head and the newest; the ones between are superseded */
		while (q->n > 2) {
			char *why = fmt("superseded by %s", it->key);
			remove_item(g, p, q, q->items[1], why ? why : "superseded");
			free(why);
		}
	}
	return ENQ_DONE;
}

/* Enqueues waiting changes whose needs are now met (Zuul's enqueueChangesBehind). */
static void retry_pending(vz_gate *g, gt_pipe *p)
{
	for (size_t pass = 0; pass <= p->npending && !g->oom; pass++) {
		int any = 0;
		for (size_t i = 0; i < p->npending; i++) {
			gt_item *it = p->pending[i];
			if (add_item(g, p, it, 0) == ENQ_DONE) {
				/* it was taken (or freed on oom); the list may have shifted */
				for (size_t k = 0; k < p->npending; k++)
					if (p->pending[k] == it) {
						memmove(&p->pending[k], &p->pending[k + 1],
							(p->npending - k - 1) * sizeof(*p->pending));
						p->npending--;
						break;
					}
				any = 1;
				break;
			}
		}
		if (!any)
			break;
	}
}

static void retry_all_pending(vz_gate *g)
{
	for (size_t i = 0; i < g->npipes; i++)
		retry_pending(g, g->pipes[i]);
}

/* A dependency cycle through change: fills path (change ids) and returns its length, or 0. */
static size_t find_cycle(const vz_gate *g, const gt_pipe *p, const gt_item *start, const char *cur,
			 const char **path, size_t depth)
{
	if (depth >= VZ_GATE_MAX_NEEDS)
		return 0;
	const gt_item *c = streq(cur, start->change) ? start : NULL;
	if (!c)
		c = pending_find(p, cur);
	if (!c) {
		for (size_t k = 0; !c && k < p->nqueues; k++)
			c = find_change_in_queue(p->queues[k], cur);
	}
	if (!c)
		c = known_change(g, cur);
	if (!c)
		return 0;
	path[depth] = cur;
	for (size_t i = 0; i < c->nneeds; i++) {
		if (streq(c->needs[i], start->change)) {
			path[depth + 1] = start->change;
			return depth + 2;
		}
		int seen = 0;
		for (size_t k = 0; k <= depth; k++)
			seen |= streq(path[k], c->needs[i]);
		if (seen)
			continue;
		size_t n = find_cycle(g, p, start, c->needs[i], path, depth + 1);
		if (n)
			return n;
	}
	return 0;
}

static int finish(vz_gate *g, vz_err *e)
{
	retry_all_pending(g);
	process_all(g);
	gt_removed_clear(g);
	if (g->oom)
		return vz_err_set(e, VZ_ENOMEM, "gate: out of memory; the state is no longer usable");
	return 0;
}

int vz_gate_enqueue(vz_gate *g, const char *pipeline, const vz_gate_item_spec *spec, int64_t now,
		    uint64_t *out_item, vz_err *e)
{
	if (out_item)
		*out_item = 0;
	gt_pipe *p = gt_pipe_find(g, pipeline);
	if (!p)
		return vz_err_set(e, VZ_ENOTFOUND, "enqueue: no pipeline %s", pipeline ? pipeline : "(null)");
	if (!spec)
		return vz_err_set(e, VZ_EINVAL, "enqueue: nothing to enqueue");
	int rc = validate_spec(spec, e);
	if (rc < 0)
		return rc;
	if (pipe_count(p) + spec->change.nneeds + 1 > VZ_GATE_MAX_ITEMS)
		return vz_err_set(e, VZ_ETOOBIG, "enqueue: pipeline %s holds %d items already", p->name,
				  VZ_GATE_MAX_ITEMS);
	gt_item *it = item_from_spec(g, spec, now);
	if (!it)
		return vz_err_set(e, VZ_ENOMEM, "gate: out of memory");
	if (find_live_in_pipe(p, it->key, NULL)) {
		gt_queue *oq = NULL;
		gt_item *old = find_live_in_pipe(p, it->key, &oq);
		if (it->change && old->patchset < it->patchset && p->dequeue_on_new_patchset) {
			char *why = fmt("patchset %d replaces patchset %d", it->patchset, old->patchset);
			remove_item(g, p, oq, old, why ? why : "a new patchset");
			free(why);
		} else {
			/* Zuul: a change already in the pipeline is ignored */
			gt_item_free(it);
			return finish(g, e);
		}
	}
	if (it->change) {
		const char *path[VZ_GATE_MAX_NEEDS + 2];
		size_t n = 0;
		for (size_t i = 0; !n && i < it->nneeds; i++)
			n = find_cycle(g, p, it, it->needs[i], path + 1, 0) ;
		if (n) {
			path[0] = it->change;
			char buf[2048];
			size_t o = 0;
			for (size_t i = 0; i <= n && o < sizeof(buf) - 8; i++)
				o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " -> " : "", path[i]);
			vz_err_set(e, VZ_ECONFLICT, "enqueue %s in %s refused: dependency cycle %s",
				   it->change, p->name, buf);
			report(g, p, NULL, "failure", "FAILURE",
			       fmt("%s was not enqueued: dependency cycle %s.", it->change, buf));
			if (g->nacts && !g->oom) {
				/* no item, but the reporter needs the change and its project */
				vz_gate_action *a = &g->acts[g->nacts - 1];
				a->change = gt_strdup(it->change);
				a->project = gt_strdup(it->project);
				if (!a->change || !a->project)
					g->oom = 1;
			}
			/* the other changes of the cycle waiting here are refused too */
			/* path points into the waiting items: find them all before freeing any */
			gt_item *drop[VZ_GATE_MAX_NEEDS + 2];
			size_t ndrop = 0;
			for (size_t i = 1; i <= n; i++) {
				gt_item *pend = pending_find(p, path[i]);
				int dup = 0;
				for (size_t k = 0; k < ndrop; k++)
					dup |= drop[k] == pend;
				if (pend && pend != it && !dup)
					drop[ndrop++] = pend;
			}
			for (size_t i = 0; i < ndrop; i++)
				pending_remove(p, drop[i]);
			gt_item_free(it);
			gt_removed_clear(g);
			return g->oom ? vz_err_set(e, VZ_ENOMEM, "gate: out of memory") : VZ_ECONFLICT;
		}
		gt_item *old = pending_find(p, it->change);
		if (old)
			pending_remove(p, old);
	}
	uint64_t before = g->next_item;
	if (add_item(g, p, it, 0) == ENQ_WAIT) {
		if (grow((void **)&p->pending, &p->pendingcap, p->npending, sizeof(*p->pending))) {
			gt_item_free(it);
			return vz_err_set(e, VZ_ENOMEM, "gate: out of memory");
		}
		p->pending[p->npending++] = it;
	} else if (out_item && g->next_item > before) {
		*out_item = g->next_item - 1;
	}
	return finish(g, e);
}

/* ---- results ---- */

static gt_item *item_with_build(const vz_gate *g, uint64_t build, gt_pipe **op, gt_queue **oq,
				size_t *oj)
{
	for (size_t i = 0; i < g->npipes; i++)
		for (size_t k = 0; k < g->pipes[i]->nqueues; k++) {
			gt_queue *q = g->pipes[i]->queues[k];
			for (size_t n = 0; n < q->n; n++)
				for (size_t j = 0; j < q->items[n]->njobs; j++)
					if (q->items[n]->js[j].build == build) {
						*op = g->pipes[i];
						*oq = q;
						*oj = j;
						return q->items[n];
					}
		}
	return NULL;
}

int vz_gate_merge_result(vz_gate *g, uint64_t item, unsigned gen, int merged,
			 const char *repo_state, const char *message, int64_t now, vz_err *e)
{
	(void)now;
	if ((repo_state && strlen(repo_state) > VZ_GATE_MAX_STR * 64) ||
	    (message && strlen(message) > VZ_GATE_MAX_STR))
		return vz_err_set(e, VZ_ETOOBIG, "merge result for item %llu: repo state or message too long",
				  (unsigned long long)item);
	gt_item *it = item_find(g, item, NULL, NULL);
	if (!it || it->gen != gen || it->merge != GT_MERGE_PENDING)
		return finish(g, e); /* stale: the item was reset or left */
	if (merged) {
		it->merge = GT_MERGE_DONE;
		it->repo_state = gt_strdup(repo_state ? repo_state : "");
		if (!it->repo_state)
			g->oom = 1;
	} else {
		it->merge = GT_MERGE_CONFLICT;
		it->merge_message = gt_strdup(message);
		if (message && !it->merge_message)
			g->oom = 1;
	}
	return finish(g, e);
}

int vz_gate_build_started(vz_gate *g, uint64_t build, int64_t now, vz_err *e)
{
	gt_pipe *p = NULL;
	gt_queue *q = NULL;
	size_t j = 0;
	gt_item *it = build ? item_with_build(g, build, &p, &q, &j) : NULL;
	if (it && !it->js[j].result)
		it->js[j].started = now ? now : 1;
	return finish(g, e);
}

int vz_gate_build_early_failure(vz_gate *g, uint64_t build, int64_t now, vz_err *e)
{
	(void)now;
	gt_pipe *p = NULL;
	gt_queue *q = NULL;
	size_t j = 0;
	gt_item *it = build ? item_with_build(g, build, &p, &q, &j) : NULL;
	if (it && !it->js[j].result)
		it->js[j].pre_fail = 1;
	return finish(g, e);
}

/* Zuul's BuildSet/QueueItem.setResult: a failure skips every job depending on the failed one. */
static void skip_dependents(gt_item *it, size_t j)
{
	for (size_t k = 0; k < it->njobs; k++)
		if (k != j && !it->js[k].result && !it->js[k].build && depends_on(it, k, j, 0))
			it->js[k].result = VZ_GATE_SKIPPED;
}

int vz_gate_build_result(vz_gate *g, uint64_t build, vz_gate_result r, int64_t now, vz_err *e)
{
	(void)now;
	if (r < VZ_GATE_SUCCESS || r > VZ_GATE_REQUEUE)
		return vz_err_set(e, VZ_EINVAL, "build %llu: %d is not a result an executor reports",
				  (unsigned long long)build, (int)r);
	gt_pipe *p = NULL;
	gt_queue *q = NULL;
	size_t j = 0;
	gt_item *it = build ? item_with_build(g, build, &p, &q, &j) : NULL;
	if (!it || it->js[j].result)
		return finish(g, e); /* unknown, canceled or already final: changes nothing */
	gt_js *s = &it->js[j];
	if (r == VZ_GATE_REQUEUE) {
		s->build = 0;
		s->tries--;
		s->started = 0;
		s->pre_fail = 0;
		return finish(g, e);
	}
	if (r == VZ_GATE_RETRY || r == VZ_GATE_ABORTED) {
		if (s->tries < it->jobs[j].attempts) {
			s->build = 0;
			s->started = 0;
			s->pre_fail = 0;
			return finish(g, e);
		}
		r = VZ_GATE_RETRY_LIMIT;
	}
	/* a failure-output match fails the build however it ends (Zuul's executor) */
	if (s->pre_fail && r == VZ_GATE_SUCCESS)
		r = VZ_GATE_FAILURE;
	s->result = r;
	if (r != VZ_GATE_SUCCESS) {
		skip_dependents(it, j);
		if (it->fail_fast && !it->jobs[j].nonvoting) {
			for (size_t k = 0; k < it->njobs; k++) {
				cancel_build(g, p, it, &it->js[k]);
				if (!it->js[k].result)
					it->js[k].result = VZ_GATE_CANCELED;
			}
		}
	}
	return finish(g, e);
}

int vz_gate_landing_result(vz_gate *g, uint64_t item, unsigned gen, int landed,
			   const char *message, int64_t now, vz_err *e)
{
	(void)now;
	if (message && strlen(message) > VZ_GATE_MAX_STR)
		return vz_err_set(e, VZ_ETOOBIG, "landing result for item %llu: message too long",
				  (unsigned long long)item);
	gt_pipe *p = NULL;
	gt_queue *q = NULL;
	gt_item *it = item_find(g, item, &p, &q);
	if (!it || !it->landing || it->gen != gen)
		return finish(g, e);
	it->reported = 1;
	if (landed) {
		report(g, p, it, "success", "SUCCESS", result_message(it, "Build succeeded."));
		window_increase(p, q);
		if (it->change && note_landed(g, it->change))
			g->oom = 1;
		dequeue_item(g, p, q, it, "it landed");
	} else {
		report(g, p, it, "failure", "MERGE_FAILURE",
		       fmt("%s passed its jobs but could not be landed: %s", it->key,
			   message ? message : "the merge failed"));
		/* Zuul: a merge failure resets the items behind; the window is left as it is */
		for (size_t i = 0; i < q->n; i++)
			if (q->items[i]->ahead == it->id)
				cancel_jobs(g, p, q, q->items[i], 1);
		dequeue_item(g, p, q, it, "it failed to land (MERGE_FAILURE)");
	}
	return finish(g, e);
}

int vz_gate_change_merged(vz_gate *g, const char *change, int64_t now, vz_err *e)
{
	(void)now;
	if (!change || !*change || strlen(change) > VZ_GATE_MAX_STR)
		return vz_err_set(e, VZ_EINVAL, "change merged: a change id is needed");
	if (!is_landed(g, change) && note_landed(g, change))
		return vz_err_set(e, VZ_ENOMEM, "gate: out of memory");
	return finish(g, e);
}

/* ---- removals ---- */

static int remove_change(vz_gate *g, gt_pipe *p, const char *change, int max_patchset,
			 const char *why)
{
	int n = 0;
	gt_queue *q = NULL;
	gt_item *it;
	/* bounded: each round removes one item */
	for (size_t round = 0; round <= VZ_GATE_MAX_ITEMS; round++) {
		it = find_live_in_pipe(p, change, &q);
		if (!it || (max_patchset && it->patchset >= max_patchset))
			break;
		remove_item(g, p, q, it, why);
		n++;
	}
	gt_item *pend = pending_find(p, change);
	if (pend && !(max_patchset && pend->patchset >= max_patchset)) {
		pending_remove(p, pend);
		n++;
	}
	return n;
}

int vz_gate_dequeue(vz_gate *g, const char *pipeline, const char *change, int64_t now, vz_err *e)
{
	(void)now;
	gt_pipe *p = gt_pipe_find(g, pipeline);
	if (!p)
		return vz_err_set(e, VZ_ENOTFOUND, "dequeue: no pipeline %s", pipeline ? pipeline : "(null)");
	if (!change)
		return vz_err_set(e, VZ_EINVAL, "dequeue: which change?");
	if (!remove_change(g, p, change, 0, "dequeued by an operator"))
		return vz_err_set(e, VZ_ENOTFOUND, "dequeue: %s is not in pipeline %s", change, pipeline);
	return finish(g, e);
}

int vz_gate_abandon(vz_gate *g, const char *change, int64_t now, vz_err *e)
{
	(void)now;
	if (!change)
		return vz_err_set(e, VZ_EINVAL, "abandon: which change?");
	for (size_t i = 0; i < g->npipes; i++)
		remove_change(g, g->pipes[i], change, 0, "the change was abandoned");
	return finish(g, e);
}

int vz_gate_new_patchset(vz_gate *g, const char *change, int patchset, int64_t now, vz_err *e)
{
	(void)now;
	if (!change)
		return vz_err_set(e, VZ_EINVAL, "new patchset: which change?");
	char *why = fmt("patchset %d was uploaded", patchset);
	if (!why)
		return vz_err_set(e, VZ_ENOMEM, "gate: out of memory");
	for (size_t i = 0; i < g->npipes; i++)
		if (g->pipes[i]->dequeue_on_new_patchset)
			remove_change(g, g->pipes[i], change, patchset, why);
	free(why);
	return finish(g, e);
}

int vz_gate_approval_lost(vz_gate *g, const char *pipeline, const char *change, int64_t now,
			  vz_err *e)
{
	(void)now;
	gt_pipe *p = gt_pipe_find(g, pipeline);
	if (!p)
		return vz_err_set(e, VZ_ENOTFOUND, "approval lost: no pipeline %s",
				  pipeline ? pipeline : "(null)");
	if (!change)
		return vz_err_set(e, VZ_EINVAL, "approval lost: which change?");
	gt_item *it = find_live_in_pipe(p, change, NULL);
	if (it)
		it->unqualified = 1;
	gt_item *pend = pending_find(p, change);
	if (pend)
		pending_remove(p, pend);
	return finish(g, e);
}

int vz_gate_promote(vz_gate *g, const char *pipeline, const char *const *changes, size_t n,
		    int64_t now, vz_err *e)
{
	(void)now;
	gt_pipe *p = gt_pipe_find(g, pipeline);
	if (!p)
		return vz_err_set(e, VZ_ENOTFOUND, "promote: no pipeline %s", pipeline ? pipeline : "(null)");
	if (!n || n > VZ_GATE_MAX_ITEMS)
		return vz_err_set(e, VZ_EINVAL, "promote: give 1 to %d changes", VZ_GATE_MAX_ITEMS);
	gt_queue *q = NULL;
	for (size_t i = 0; i < n; i++) {
		gt_queue *cq = NULL;
		if (!changes[i] || !find_live_in_pipe(p, changes[i], &cq))
			return vz_err_set(e, VZ_ENOTFOUND, "promote: %s is not in pipeline %s",
					  changes[i] ? changes[i] : "(null)", pipeline);
		if (q && cq != q)
			return vz_err_set(e, VZ_EINVAL, "promote: %s and %s are in different queues of %s",
					  changes[0], changes[i], pipeline);
		q = cq;
	}
	gt_item **order = malloc(q->n * sizeof(*order));
	if (!order)
		return vz_err_set(e, VZ_ENOMEM, "gate: out of memory");
	size_t k = 0;
	/* an item being landed stays at the head: its landing is already under way */
	if (q->n && q->items[0]->landing)
		order[k++] = q->items[0];
	for (size_t i = 0; i < n; i++) {
		gt_item *it = find_change_in_queue(q, changes[i]);
		int dup = 0;
		for (size_t m = 0; m < k; m++)
			dup |= order[m] == it;
		if (!dup)
			order[k++] = it;
	}
	size_t npromoted = k;
	for (size_t i = 0; i < q->n; i++) {
		int in = 0;
		for (size_t m = 0; m < npromoted; m++)
			in |= order[m] == q->items[i];
		if (!in)
			order[k++] = q->items[i];
	}
	int same = 1;
	for (size_t i = 0; i < q->n; i++)
		same &= order[i] == q->items[i] && q->items[i]->ahead == (i ? q->items[i - 1]->id : 0);
	if (!same) {
		q->unsorted = 1;
		/* Zuul's promote: every item of the queue starts over in the new order */
		for (size_t i = 0; i < q->n; i++)
			for (size_t j = 0; j < q->items[i]->njobs; j++)
				cancel_build(g, p, q->items[i], &q->items[i]->js[j]);
		for (size_t i = 0; i < q->n; i++) {
			q->items[i] = order[i];
			order[i]->ahead = i ? order[i - 1]->id : 0;
			if (order[i]->merge != GT_MERGE_NEW)
				reset_buildset(order[i]);
		}
	}
	free(order);
	return finish(g, e);
}
