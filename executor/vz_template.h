/* vz_template: the Jinja2 subset the native playbook engine templates with. Renders a template
 * string or evaluates a bare expression (`when:`) against variables held in a jansson object,
 * with caps on output size, nesting, loop iterations and work so a hostile template fails fast.
 * docs/templating.md lists the language supported and where it differs from Jinja2. */
#ifndef VZ_TEMPLATE_H
#define VZ_TEMPLATE_H

#include <stddef.h>

#include <jansson.h>

#include "vz_err.h"

/* Limits and Jinja2 environment switches. Zero fields take the defaults in brackets. */
typedef struct vz_template_opts {
	size_t max_output;      /* bytes of output, and of any one string or list built [1 MiB] */
	unsigned max_depth;     /* nesting of expressions, tags and values [100, at most 1000] */
	size_t max_iterations;  /* loop iterations in one render, all loops together [100000] */
	size_t max_steps;       /* evaluation steps, plus one per 64 bytes handled [50000000] */
	int trim_blocks;        /* Jinja2 trim_blocks (Ansible's template module sets it) [off] */
	int keep_trailing_newline; /* Jinja2 keep_trailing_newline [off] */
} vz_template_opts;

/* Renders the len bytes of tpl with vars (a JSON object, or NULL for none) into *out, a new
 * NUL-terminated string the caller frees. opts may be NULL for the defaults.
 * Returns 0; VZ_EINVAL for a syntax or evaluation error, with a message starting "LINE:COL: "
 * (an undefined variable reads "'foo' is undefined", as in Ansible); VZ_ETOOBIG when a cap is
 * reached; VZ_ENOMEM. *out is NULL on failure. vars is never modified. */
int vz_template_render(char **out, const char *tpl, size_t len, const json_t *vars,
		       const vz_template_opts *opts, vz_err *e);

/* As vz_template_render, but a template that is exactly one `{{ expr }}` (no other text or tag)
 * keeps the type of its value, as Ansible does for a bare variable; anything else becomes a JSON
 * string. *out is a new reference (json_decref it) that may share structure with vars: treat it as
 * read-only, or json_deep_copy it before changing it. */
int vz_template_render_value(json_t **out, const char *tpl, size_t len, const json_t *vars,
			     const vz_template_opts *opts, vz_err *e);

/* Evaluates the bare expression expr (no braces, as in `when:`) to a new reference in *out,
 * with the same errors and sharing rule as vz_template_render_value. */
int vz_template_eval(json_t **out, const char *expr, size_t len, const json_t *vars,
		     const vz_template_opts *opts, vz_err *e);

/* Python truthiness: false for null, false, 0, 0.0, "", [] and {}; true otherwise. */
int vz_template_truthy(const json_t *v);

#endif
