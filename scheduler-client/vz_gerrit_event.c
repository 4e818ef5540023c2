/* vz_gerrit_event: Gerrit stream-events lines to normalized trigger events. The shapes follow
 * Gerrit's json.txt: "change" (project, branch, number, id, url, status, topic, wip),
 * "patchSet" (number, revision, ref), the acting account under a per-type key, "approvals"
 * with string values and an optional oldValue, and "refUpdate" for ref-updated. */
#include "vz_gerrit_event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_util.h"

static const char *const TYPE_NAMES[] = {
	[VZ_GEV_IGNORED] = "ignored",
	[VZ_GEV_PATCHSET_CREATED] = "patchset-created",
	[VZ_GEV_COMMENT_ADDED] = "comment-added",
	[VZ_GEV_CHANGE_MERGED] = "change-merged",
	[VZ_GEV_CHANGE_ABANDONED] = "change-abandoned",
	[VZ_GEV_CHANGE_RESTORED] = "change-restored",
	[VZ_GEV_REF_UPDATED] = "ref-updated",
	[VZ_GEV_WIP_STATE_CHANGED] = "wip-state-changed",
	[VZ_GEV_TOPIC_CHANGED] = "topic-changed",
	[VZ_GEV_HASHTAGS_CHANGED] = "hashtags-changed",
};
#define NTYPES (sizeof(TYPE_NAMES) / sizeof(TYPE_NAMES[0]))

/* The key under which each type names the account that acted (json.txt, "Events"). */
static const char *const ACTOR_KEYS[] = { "uploader", "author", "submitter", "abandoner", "restorer",
					  "changer", "editor", NULL };

const char *vz_gerrit_event_type_name(vz_gerrit_event_type t)
{
	return (size_t)t < NTYPES ? TYPE_NAMES[t] : "ignored";
}

void vz_gerrit_event_clear(vz_gerrit_event *ev)
{
	if (!ev)
		return;
	char **strs[] = { &ev->type_name, &ev->project, &ev->branch, &ev->ref, &ev->change_id, &ev->revision,
			  &ev->url, &ev->status, &ev->username, &ev->email, &ev->name, &ev->comment,
			  &ev->old_rev, &ev->new_rev, &ev->topic, &ev->old_topic };
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	for (size_t i = 0; i < ev->napprovals; i++) {
		free(ev->approvals[i].type);
		free(ev->approvals[i].description);
	}
	free(ev->approvals);
	for (size_t i = 0; i < ev->nadded; i++)
		free(ev->hashtags_added[i]);
	for (size_t i = 0; i < ev->nremoved; i++)
		free(ev->hashtags_removed[i]);
	free(ev->hashtags_added);
	free(ev->hashtags_removed);
	memset(ev, 0, sizeof(*ev));
	ev->wip = -1;
}

/* A string member: NULL when absent or null; VZ_EPROTO when present with another type. */
static int get_str(char **out, json_t *obj, const char *key, const char *where, vz_err *e)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return vz_err_set(e, VZ_EPROTO, "gerrit event: %s.%s is not a string", where, key);
	free(*out);
	*out = vz_xstrdup(json_string_value(v));
	return 0;
}

/* A number Gerrit sends as integer or as a decimal string (older versions quote them). */
static int get_num(int64_t *out, json_t *obj, const char *key, int64_t min, int64_t max, const char *where,
		   vz_err *e)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return 0;
	int64_t n = 0;
	if (json_is_integer(v))
		n = json_integer_value(v);
	else if (!json_is_string(v) || vz_parse_i64(json_string_value(v), min, max, &n) != 0)
		return vz_err_set(e, VZ_EPROTO, "gerrit event: %s.%s is not a number in [%lld, %lld]", where, key,
				  (long long)min, (long long)max);
	if (n < min || n > max)
		return vz_err_set(e, VZ_EPROTO, "gerrit event: %s.%s = %lld is out of range [%lld, %lld]", where,
				  key, (long long)n, (long long)min, (long long)max);
	*out = n;
	return 0;
}

static int get_obj(json_t **out, json_t *obj, const char *key, vz_err *e)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return vz_err_set(e, VZ_EPROTO, "gerrit event: \"%s\" is not an object", key);
	*out = v;
	return 0;
}

static int get_strlist(char ***out, size_t *n, json_t *obj, const char *key, vz_err *e)
{
	json_t *v = json_object_get(obj, key), *it;
	size_t i;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > VZ_GERRIT_EVENT_MAX_LIST)
		return vz_err_set(e, VZ_EPROTO, "gerrit event: \"%s\" is not a list of at most %d strings", key,
				  VZ_GERRIT_EVENT_MAX_LIST);
	*out = vz_xcalloc(json_array_size(v) + 1, sizeof(char *));
	json_array_foreach(v, i, it) {
		if (!json_is_string(it))
			return vz_err_set(e, VZ_EPROTO, "gerrit event: \"%s\"[%zu] is not a string", key, i);
		(*out)[(*n)++] = vz_xstrdup(json_string_value(it));
	}
	return 0;
}

static int parse_approvals(vz_gerrit_event *ev, json_t *arr, vz_err *e)
{
	json_t *a;
	size_t i;
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > VZ_GERRIT_EVENT_MAX_LIST)
		return vz_err_set(e, VZ_EPROTO, "gerrit event: \"approvals\" is not a list of at most %d votes",
				  VZ_GERRIT_EVENT_MAX_LIST);
	ev->approvals = vz_xcalloc(json_array_size(arr) + 1, sizeof(*ev->approvals));
	json_array_foreach(arr, i, a) {
		if (!json_is_object(a))
			return vz_err_set(e, VZ_EPROTO, "gerrit event: approvals[%zu] is not an object", i);
		vz_gerrit_approval *ap = &ev->approvals[ev->napprovals++];
		int64_t v = 0;
		if (get_str(&ap->type, a, "type", "approvals[]", e) ||
		    get_str(&ap->description, a, "description", "approvals[]", e) ||
		    get_num(&v, a, "value", -1000, 1000, "approvals[]", e))
			return e ? e->code : VZ_EPROTO;
		ap->value = (int)v;
		if (json_object_get(a, "oldValue") && !json_is_null(json_object_get(a, "oldValue"))) {
			if (get_num(&v, a, "oldValue", -1000, 1000, "approvals[]", e))
				return e ? e->code : VZ_EPROTO;
			ap->has_old = 1;
			ap->old_value = (int)v;
		}
	}
	return 0;
}

static int fill_account(vz_gerrit_event *ev, json_t *root, vz_err *e)
{
	for (size_t i = 0; ACTOR_KEYS[i]; i++) {
		json_t *acc = NULL;
		if (get_obj(&acc, root, ACTOR_KEYS[i], e))
			return e ? e->code : VZ_EPROTO;
		if (!acc)
			continue;
		if (get_str(&ev->username, acc, "username", ACTOR_KEYS[i], e) ||
		    get_str(&ev->email, acc, "email", ACTOR_KEYS[i], e) ||
		    get_str(&ev->name, acc, "name", ACTOR_KEYS[i], e))
			return e ? e->code : VZ_EPROTO;
		return 0;
	}
	return 0;
}

static int is_meta_ref(const char *ref)
{
	size_t n = strlen(ref);
	return vz_startswith(ref, "refs/changes/") && n > 5 && strcmp(ref + n - 5, "/meta") == 0;
}

/* The body of parse, on the decoded object; fills ev or fails with e set. */
static int parse_obj(vz_gerrit_event *ev, json_t *root, vz_err *e)
{
	int rc;
	json_t *change = NULL, *ps = NULL, *ru = NULL;
	int64_t n = 0;

	if ((rc = get_str(&ev->type_name, root, "type", "event", e)))
		return rc;
	for (size_t i = 1; ev->type_name && i < NTYPES; i++)
		if (strcmp(ev->type_name, TYPE_NAMES[i]) == 0)
			ev->type = (vz_gerrit_event_type)i;
	if (ev->type == VZ_GEV_IGNORED)
		return 0;
	if ((rc = get_num(&ev->created_on, root, "eventCreatedOn", 0, INT64_C(1) << 40, "event", e)) ||
	    (rc = get_obj(&change, root, "change", e)) || (rc = get_obj(&ps, root, "patchSet", e)) ||
	    (rc = get_obj(&ru, root, "refUpdate", e)) || (rc = fill_account(ev, root, e)))
		return rc;
	if (change) {
		if ((rc = get_str(&ev->project, change, "project", "change", e)) ||
		    (rc = get_str(&ev->branch, change, "branch", "change", e)) ||
		    (rc = get_str(&ev->change_id, change, "id", "change", e)) ||
		    (rc = get_str(&ev->url, change, "url", "change", e)) ||
		    (rc = get_str(&ev->status, change, "status", "change", e)) ||
		    (rc = get_str(&ev->topic, change, "topic", "change", e)) ||
		    (rc = get_num(&ev->change, change, "number", 0, INT64_C(1) << 40, "change", e)))
			return rc;
		json_t *w = json_object_get(change, "wip");
		if (w && json_is_boolean(w))
			ev->wip = json_is_true(w);
		else if (w && !json_is_null(w))
			return vz_err_set(e, VZ_EPROTO, "gerrit event: change.wip is not a boolean");
		/* Gerrit omits "wip" when false; for a wip-state-changed event that means it was cleared */
		if (!w && ev->type == VZ_GEV_WIP_STATE_CHANGED)
			ev->wip = 0;
	}
	if (ps) {
		if ((rc = get_str(&ev->revision, ps, "revision", "patchSet", e)) ||
		    (rc = get_str(&ev->ref, ps, "ref", "patchSet", e)) ||
		    (rc = get_num(&n, ps, "number", 0, 1 << 30, "patchSet", e)))
			return rc;
		ev->patchset = (int)n;
	}
	switch (ev->type) {
	case VZ_GEV_COMMENT_ADDED:
		if ((rc = get_str(&ev->comment, root, "comment", "event", e)) ||
		    (rc = parse_approvals(ev, json_object_get(root, "approvals"), e)))
			return rc;
		break;
	case VZ_GEV_CHANGE_ABANDONED:
	case VZ_GEV_CHANGE_RESTORED:
		if ((rc = get_str(&ev->comment, root, "reason", "event", e)))
			return rc;
		break;
	case VZ_GEV_CHANGE_MERGED:
		if ((rc = get_str(&ev->new_rev, root, "newRev", "event", e)))
			return rc;
		break;
	case VZ_GEV_TOPIC_CHANGED:
		if ((rc = get_str(&ev->old_topic, root, "oldTopic", "event", e)))
			return rc;
		break;
	case VZ_GEV_HASHTAGS_CHANGED:
		if ((rc = get_strlist(&ev->hashtags_added, &ev->nadded, root, "added", e)) ||
		    (rc = get_strlist(&ev->hashtags_removed, &ev->nremoved, root, "removed", e)))
			return rc;
		break;
	case VZ_GEV_REF_UPDATED: {
		char *name = NULL;
		if (ru && ((rc = get_str(&ev->old_rev, ru, "oldRev", "refUpdate", e)) ||
			   (rc = get_str(&ev->new_rev, ru, "newRev", "refUpdate", e)) ||
			   (rc = get_str(&ev->project, ru, "project", "refUpdate", e)) ||
			   (rc = get_str(&name, ru, "refName", "refUpdate", e))))
			return rc;
		if (name) {
			free(ev->ref); /* a patchSet's ref, if the line had one: the updated ref wins */
			ev->ref = NULL;
			free(ev->branch);
			ev->branch = NULL;
			/* older Gerrits send a branch's short name, newer ones the full ref */
			if (vz_startswith(name, "refs/")) {
				ev->ref = name;
			} else {
				size_t len = strlen(name) + sizeof("refs/heads/");
				ev->ref = vz_xcalloc(1, len);
				snprintf(ev->ref, len, "refs/heads/%s", name);
				free(name);
			}
			if (vz_startswith(ev->ref, "refs/heads/"))
				ev->branch = vz_xstrdup(ev->ref + strlen("refs/heads/"));
			if (is_meta_ref(ev->ref))
				ev->type = VZ_GEV_IGNORED;
		}
		break;
	}
	default:
		break;
	}
	return 0;
}

int vz_gerrit_event_parse(vz_gerrit_event *out, const char *line, size_t len, vz_err *e)
{
	json_error_t je;
	vz_gerrit_event_clear(out);
	if (len > VZ_GERRIT_EVENT_MAX)
		return vz_err_set(e, VZ_ETOOBIG, "gerrit event: line of %zu bytes is over the %d byte cap; skipped",
				  len, VZ_GERRIT_EVENT_MAX);
	json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return vz_err_set(e, VZ_EPROTO, "gerrit event: not JSON at column %d: %s; line skipped", je.column,
				  je.text);
	int rc = 0;
	if (!json_is_object(root))
		rc = vz_err_set(e, VZ_EPROTO, "gerrit event: not a JSON object; line skipped");
	else if ((rc = parse_obj(out, root, e)))
		vz_gerrit_event_clear(out);
	json_decref(root);
	return rc;
}

const vz_gerrit_approval *vz_gerrit_event_approval(const vz_gerrit_event *ev, const char *label)
{
	for (size_t i = 0; i < ev->napprovals; i++)
		if (ev->approvals[i].type && strcmp(ev->approvals[i].type, label) == 0)
			return &ev->approvals[i];
	return NULL;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

void vz_gerrit_event_key(const vz_gerrit_event *ev, char *out, size_t n)
{
	switch (ev->type) {
	case VZ_GEV_PATCHSET_CREATED:
	case VZ_GEV_CHANGE_MERGED:
		/* happen once per patchset / change */
		snprintf(out, n, "%s/%lld/%d", vz_gerrit_event_type_name(ev->type), (long long)ev->change,
			 ev->patchset);
		break;
	case VZ_GEV_REF_UPDATED:
		snprintf(out, n, "ref-updated/%016llx/%.64s", (unsigned long long)fnv1a(ev->ref),
			 ev->new_rev ? ev->new_rev : "");
		break;
	default:
		snprintf(out, n, "%s/%lld/%d/%lld/%016llx", vz_gerrit_event_type_name(ev->type),
			 (long long)ev->change, ev->patchset, (long long)ev->created_on,
			 (unsigned long long)fnv1a(ev->comment));
	}
}
