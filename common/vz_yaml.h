/* vz_yaml: YAML documents (libyaml) as a tree of nodes that remember where they came from
 * (file, line, column; 1-based as editors show them), so every configuration error can say
 * file:line:col. Aliases are expanded with a cap on the total node count (no billion laughs);
 * tags such as !encrypted/pkcs1-oaep are kept. Untrusted input: sizes and depth are capped.
 * Merge keys (`<<`) are refused with an error naming them (write the keys out instead). */
#ifndef VZ_YAML_H
#define VZ_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "vz_err.h"

typedef enum { VZ_Y_SCALAR = 1, VZ_Y_SEQ = 2, VZ_Y_MAP = 3 } vz_ykind;

typedef struct vz_ynode vz_ynode;
struct vz_ynode {
	vz_ykind kind;
	int line, col;     /* 1-based position of the node's start */
	char *tag;         /* explicit tag ("!encrypted/pkcs1-oaep") or NULL */
	/* scalar */
	char *str;         /* NUL-terminated value (may contain NULs: use len) */
	size_t len;
	int plain;         /* 1 when unquoted (so `yes`/`null`/`12` may be typed), 0 when quoted */
	/* seq: items[0..n); map: keys[0..n) (scalars) with values items[0..n) */
	size_t n;
	vz_ynode **items;
	vz_ynode **keys;
};

#define VZ_YAML_MAX_INPUT (16u * 1024 * 1024)
#define VZ_YAML_MAX_NODES 1000000
#define VZ_YAML_MAX_DEPTH 256

/* Parses the first document of data. An empty document gives *out NULL and returns 0.
 * Errors (VZ_EINVAL) read "FNAME:LINE:COL: message". Duplicate keys in a mapping are an error
 * naming the key and both lines. *out freed with vz_ynode_free.
 * Also VZ_ETOOBIG past VZ_YAML_MAX_INPUT bytes of input, VZ_YAML_MAX_NODES nodes or 4x the input
 * cap in scalar bytes after alias expansion (message "FNAME[:LINE:COL]: ..."), VZ_ENOMEM. */
int vz_yaml_parse(vz_ynode **out, const char *data, size_t len, const char *fname, vz_err *e);

/* Reads and parses a file (capped at VZ_YAML_MAX_INPUT). */
int vz_yaml_load_file(vz_ynode **out, const char *path, vz_err *e);

void vz_ynode_free(vz_ynode *n);

/* Value of key in a mapping, or NULL (also when n is not a mapping). Borrowed from n. */
vz_ynode *vz_ymap_get(const vz_ynode *n, const char *key);

/* Scalar typing as YAML 1.1 / PyYAML reads plain scalars (Ansible and Zuul use PyYAML):
 * true/false/yes/no/on/off (any case form PyYAML accepts) are booleans, ~/null/empty are null,
 * decimal integers are ints. Quoted scalars are always strings. */
/* Integers also as PyYAML 1.1 reads them: 0x1F (hex), 0755 (octal: leading 0), 0b101 (binary),
 * underscores ignored (1_000); sexagesimal 1:30 is not supported and stays a string. An explicit
 * core tag (!!int, !!bool, !!null, !!float) forces the typing; any other tag leaves a string.
 * Duplicate keys compare by text: `1` and '1' collide. */
int vz_yscalar_is_null(const vz_ynode *n);
/* Returns 0 and sets *out, or VZ_EINVAL when n is not a boolean scalar. */
int vz_yscalar_bool(const vz_ynode *n, int *out);
/* Returns 0 and sets *out, or VZ_EINVAL when n is not an integer scalar within [min,max]. */
int vz_yscalar_int(const vz_ynode *n, long long min, long long max, long long *out);

/* Returns 0 and sets *out, or VZ_EINVAL when n is neither an integer nor a finite float scalar
 * (PyYAML 1.1 float forms: 1.5, -.5, 1.0e+3; the exponent needs its sign). */
int vz_yscalar_float(const vz_ynode *n, double *out);

/* The whole tree as JSON with the typing above (maps -> objects, seqs -> arrays). New reference. */
json_t *vz_ynode_to_json(const vz_ynode *n);

#endif
