/* vz_gerrit_event: one line of Gerrit's `gerrit stream-events` (JSON, see Gerrit's json.txt and
 * cmd-stream-events.txt) turned into a normalized trigger event. Every field may be missing in
 * the input: strings are then NULL, numbers 0 (or -1 where 0 is meaningful). Unknown event types
 * and ref-updated events for refs/changes/NN/N/meta (NoteDb noise) come back as VZ_GEV_IGNORED.
 * Pure: no I/O, so the fuzz target drives it directly. */
#ifndef VZ_GERRIT_EVENT_H
#define VZ_GERRIT_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "vz_err.h"

/* The cap on one event line; Gerrit's are a few KiB, a comment may make them larger. */
#define VZ_GERRIT_EVENT_MAX (1024 * 1024)
/* Caps on the lists inside one event (more entries are a protocol error). */
#define VZ_GERRIT_EVENT_MAX_LIST 256

typedef enum vz_gerrit_event_type {
	VZ_GEV_IGNORED = 0, /* unknown type, or refs/changes/.../meta noise */
	VZ_GEV_PATCHSET_CREATED,
	VZ_GEV_COMMENT_ADDED,
	VZ_GEV_CHANGE_MERGED,
	VZ_GEV_CHANGE_ABANDONED,
	VZ_GEV_CHANGE_RESTORED,
	VZ_GEV_REF_UPDATED,
	VZ_GEV_WIP_STATE_CHANGED,
	VZ_GEV_TOPIC_CHANGED,
	VZ_GEV_HASHTAGS_CHANGED,
} vz_gerrit_event_type;

/* One label vote of a comment-added event. Gerrit sends values as strings ("2", "-1");
 * old_value is set only when the vote changed in this event, which is how a trigger tells the
 * vote that was just cast from votes carried along. */
typedef struct vz_gerrit_approval {
	char *type;        /* label name, "Code-Review" */
	char *description; /* may be NULL */
	int value;
	int has_old;       /* oldValue was present */
	int old_value;
} vz_gerrit_approval;

typedef struct vz_gerrit_event {
	vz_gerrit_event_type type;
	char *type_name;  /* as Gerrit spelled it, kept for ignored types too (NULL if absent) */
	char *project;
	char *branch;     /* short name, "master" */
	char *ref;        /* patchset ref "refs/changes/45/12345/2", or the updated ref in full */
	int64_t change;   /* change number, 0 when none */
	int patchset;     /* 0 when none */
	char *change_id;  /* "I..." */
	char *revision;   /* patchset commit */
	char *url;
	char *status;     /* NEW, MERGED, ABANDONED */
	char *username;   /* the account that caused the event */
	char *email;
	char *name;
	char *comment;    /* comment-added text, or abandon/restore reason */
	vz_gerrit_approval *approvals;
	size_t napprovals;
	char *old_rev, *new_rev; /* ref-updated; new_rev also for change-merged */
	int wip;          /* 1, 0, or -1 when not said */
	char *topic, *old_topic;
	char **hashtags_added, **hashtags_removed;
	size_t nadded, nremoved;
	int64_t created_on; /* eventCreatedOn, seconds since the epoch; 0 when absent */
} vz_gerrit_event;

/* Parses one line (len bytes, no NUL needed; a trailing newline is fine) into *out, which must
 * be zeroed or cleared; out is cleared first. Returns 0 (out->type may be VZ_GEV_IGNORED),
 * VZ_ETOOBIG above VZ_GERRIT_EVENT_MAX, or VZ_EPROTO when the line is not a JSON object or a
 * known field has the wrong shape; out is then empty. */
int vz_gerrit_event_parse(vz_gerrit_event *out, const char *line, size_t len, vz_err *e);

/* Frees what out holds and zeroes it. Accepts NULL. */
void vz_gerrit_event_clear(vz_gerrit_event *ev);

/* Gerrit's name of a type ("patchset-created"); "ignored" for VZ_GEV_IGNORED. */
const char *vz_gerrit_event_type_name(vz_gerrit_event_type t);

/* The approval for label in ev, or NULL. */
const vz_gerrit_approval *vz_gerrit_event_approval(const vz_gerrit_event *ev, const char *label);

/* A key naming the event for duplicate detection, the same for an event read from the stream
 * and the one synthesized from REST for the same happening: type, change, patchset, second,
 * and for comments a hash of the text; for ref-updated the ref and new revision. Written into
 * out (n bytes, 160 is enough for any input). */
void vz_gerrit_event_key(const vz_gerrit_event *ev, char *out, size_t n);

#endif
