/* fuzz_gerrit_event: arbitrary bytes as one stream-events line through vz_gerrit_event_parse.
 * Checks that a failure leaves the event empty, that a success gives a type in range, counted
 * lists that match their arrays, and a key that is always NUL-terminated; ASan catches the rest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_gerrit_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
	fprintf(stderr, "fuzz_gerrit_event: invariant broken: %s\n", what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vz_gerrit_event ev;
	vz_err e = { 0 };
	char key[160];
	memset(&ev, 0, sizeof(ev));
	int rc = vz_gerrit_event_parse(&ev, (const char *)data, size, &e);
	if (rc) {
		if (ev.type != VZ_GEV_IGNORED || ev.project || ev.approvals || ev.napprovals)
			die("a failed parse left data in the event");
		if (!e.code || !e.msg[0])
			die("a failed parse gave no message");
		return 0;
	}
	if ((unsigned)ev.type > VZ_GEV_HASHTAGS_CHANGED)
		die("type out of range");
	for (size_t i = 0; i < ev.napprovals; i++)
		(void)vz_gerrit_event_approval(&ev, ev.approvals[i].type ? ev.approvals[i].type : "x");
	for (size_t i = 0; i < ev.nadded; i++)
		if (!ev.hashtags_added[i])
			die("hashtag count past the list");
	for (size_t i = 0; i < ev.nremoved; i++)
		if (!ev.hashtags_removed[i])
			die("hashtag count past the list");
	memset(key, 'x', sizeof(key));
	vz_gerrit_event_key(&ev, key, sizeof(key));
	if (!memchr(key, '\0', sizeof(key)))
		die("key not terminated");
	if (ev.ref && ev.type == VZ_GEV_REF_UPDATED && strstr(ev.ref, "refs/changes/") == ev.ref &&
	    strlen(ev.ref) > 5 && !strcmp(ev.ref + strlen(ev.ref) - 5, "/meta"))
		die("a meta ref-updated was not ignored");
	vz_gerrit_event_clear(&ev);
	return 0;
}
