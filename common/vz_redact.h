/* vz_redact: replaces secret values in log text, for the executor (a build's output) and the
 * scheduler side alike. The patterns are wiped when the redactor is freed. */
#ifndef VZ_REDACT_H
#define VZ_REDACT_H

#include <jansson.h>
#include <stddef.h>

#include "vz_buf.h"

/* A redactor replaces secret values in log text with VZ_REDACT_MARK. Each string value is split at
 * line breaks and each line (trailing CR and surrounding blanks dropped) of at least
 * VZ_REDACT_MIN bytes is a pattern, so a multi-line value (a key file) is hidden line by
 * line and no pattern spans a line: text fed a whole line at a time is fully redacted. Shorter
 * pieces are left (masking "a" or "yes" would blank the log without hiding anything). Longest match
 * first, left to right. */
#define VZ_REDACT_MARK "********"
#define VZ_REDACT_MIN 4

typedef struct vz_redactor vz_redactor;

/* A redactor for every string in values (a JSON value: arrays and objects walked, keys and
 * non-strings left alone). Copies what it needs. NULL when out of memory. */
vz_redactor *vz_redactor_new(const json_t *values);
/* Adds one value (len bytes) as above. 0 or VZ_ENOMEM. */
int vz_redactor_add(vz_redactor *r, const char *value, size_t len);
size_t vz_redactor_count(const vz_redactor *r); /* patterns held */
void vz_redactor_free(vz_redactor *r);          /* wipes the patterns; accepts NULL */

/* Appends text with every pattern replaced to out. Returns the number of replacements, or
 * out's failure code (negative) when out's cap was reached. r NULL copies text. */
long vz_redact(vz_buf *out, const vz_redactor *r, const char *text, size_t len);

/* Replaces every pattern in each string of the JSON value v in place (objects' values and arrays'
 * items, walked; keys left alone). Returns the number of replacements. */
long vz_redact_json(const vz_redactor *r, json_t *v);

#endif
