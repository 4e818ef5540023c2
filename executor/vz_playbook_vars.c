/* vz_playbook_vars: templating of task data for the runner: arguments (keeping types, dropping
 * `omit`), conditionals (when/failed_when/changed_when/until) and the lazy templating of
 * variables whose values hold templates, which Ansible does when a variable is used. */
#include "vz_playbook_int.h"

#include <stdlib.h>
#include <string.h>

#include "vz_template.h"

const char *vz_pb_errmsg(const vz_err *e)
{
	const char *m = vz_err_msg(e), *p = m;
	/* vz_template prefixes "LINE:COL: " */
	while (*p >= '0' && *p <= '9')
		p++;
	if (p > m && *p == ':') {
		const char *q = p + 1;
		while (*q >= '0' && *q <= '9')
			q++;
		if (q > p + 1 && q[0] == ':' && q[1] == ' ')
			return q + 2;
	}
	return m;
}

int vz_pb_has_tmpl(const json_t *v, int depth)
{
	if (depth > 64)
		return 0;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		return strstr(s, "{{") || strstr(s, "{%");
	}
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			if (vz_pb_has_tmpl(json_array_get(v, i), depth + 1))
				return 1;
	} else if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)v, k, x)
			if (vz_pb_has_tmpl(x, depth + 1))
				return 1;
	}
	return 0;
}

static int is_omit(const json_t *v)
{
	return json_is_string(v) && !strcmp(json_string_value(v), VZ_PB_OMIT);
}

/* "{{ name }}" with a plain name: Ansible's SINGLE_VAR, the one form whose value keeps its type. */
static int single_var(const char *s, size_t n, char *name, size_t cap)
{
	size_t i = 0, k = 0;
	if (n < 4 || s[0] != '{' || s[1] != '{')
		return 0;
	for (i = 2; i < n && s[i] == ' '; i++)
		;
	while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
			 s[i] == '_')) {
		if (k + 1 >= cap)
			return 0;
		name[k++] = s[i++];
	}
	name[k] = 0;
	while (i < n && s[i] == ' ')
		i++;
	return k > 0 && i + 2 == n && s[i] == '}' && s[i + 1] == '}';
}

int vz_pb_template_string(json_t **out, const char *s, size_t n, const json_t *vars, const vz_template_opts *o,
			  vz_err *e)
{
	char name[256], *str = NULL;
	int rc;
	*out = NULL;
	if (single_var(s, n, name, sizeof(name))) {
		json_t *v = json_object_get(vars, name);
		if (v && !json_is_string(v)) {
			*out = json_incref(v);
			return 0;
		}
	}
	/* as ansible-core 2.14 without jinja2_native: the result is text, turned back into a value
	 * only when it reads as a list, a dict or a boolean */
	if ((rc = vz_template_render(&str, s, n, vars, o, e)) != 0)
		return rc;
	size_t l = strlen(str);
	if ((str[0] == '[' || (str[0] == '{' && str[1] != '{')) || !strcmp(str, "True") || !strcmp(str, "False")) {
		json_t *v = NULL;
		vz_err ee = { 0 };
		if (vz_template_eval(&v, str, l, NULL, o, &ee) == 0) {
			*out = v;
			free(str);
			return 0;
		}
	}
	*out = json_stringn(str, l);
	free(str);
	return *out ? 0 : vz_err_set(e, VZ_ENOMEM, "out of memory");
}

static int tmpl(json_t **out, const json_t *v, const json_t *vars, const vz_template_opts *o, int depth, vz_err *e)
{
	int rc = 0;
	*out = NULL;
	if (depth > 64)
		return vz_err_set(e, VZ_EINVAL, "arguments nested deeper than 64");
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (!strstr(s, "{{") && !strstr(s, "{%")) {
			*out = json_incref((json_t *)v);
			return 0;
		}
		return vz_pb_template_string(out, s, json_string_length(v), vars, o, e);
	}
	if (json_is_array(v)) {
		json_t *a = json_array();
		for (size_t i = 0; i < json_array_size(v) && rc == 0; i++) {
			json_t *x = NULL;
			if ((rc = tmpl(&x, json_array_get(v, i), vars, o, depth + 1, e)) == 0)
				json_array_append_new(a, x);
		}
		if (rc)
			json_decref(a);
		else
			*out = a;
		return rc;
	}
	if (json_is_object(v)) {
		json_t *ob = json_object(), *x;
		const char *k;
		json_object_foreach((json_t *)v, k, x) {
			json_t *y = NULL;
			if ((rc = tmpl(&y, x, vars, o, depth + 1, e)) != 0)
				break;
			if (is_omit(y))
				json_decref(y);
			else
				json_object_set_new(ob, k, y);
		}
		if (rc)
			json_decref(ob);
		else
			*out = ob;
		return rc;
	}
	*out = json_incref((json_t *)v);
	return 0;
}

int vz_pb_template(json_t **out, const json_t *v, const json_t *vars, const vz_template_opts *o, vz_err *e)
{
	return tmpl(out, v, vars, o, 0, e);
}

int vz_pb_cond(int *res, const json_t *conds, const json_t *vars, const vz_template_opts *o, const char **which,
	       vz_err *e)
{
	*res = 1;
	if (which)
		*which = NULL;
	if (!conds)
		return 0;
	if (!json_is_array(conds)) {
		json_t *a = json_array();
		json_array_append((json_t *)a, (json_t *)conds);
		int rc = vz_pb_cond(res, a, vars, o, which, e);
		json_decref(a);
		return rc;
	}
	for (size_t i = 0; i < json_array_size(conds); i++) {
		json_t *c = json_array_get(conds, i), *val = NULL;
		int rc = 0;
		if (which)
			*which = json_is_string(c) ? json_string_value(c) : NULL;
		if (json_is_string(c)) {
			const char *s = json_string_value(c);
			char *rendered = NULL;
			if (strstr(s, "{{") || strstr(s, "{%")) {
				if ((rc = vz_template_render(&rendered, s, strlen(s), vars, o, e)) != 0)
					return rc;
				s = rendered;
			}
			size_t l = strlen(s);
			while (l && (s[l - 1] == ' ' || s[l - 1] == '\n'))
				l--;
			if (l == 0)
				val = json_true(); /* an empty condition is true in Ansible */
			else
				rc = vz_template_eval(&val, s, l, vars, o, e);
			free(rendered);
			if (rc)
				return rc;
		} else {
			val = json_incref(c);
		}
		int t = json_is_string(val) ? (!strcmp(json_string_value(val), "True") ? 1 :
					       !strcmp(json_string_value(val), "False") ? 0 : vz_template_truthy(val))
					    : vz_template_truthy(val);
		json_decref(val);
		if (!t) {
			*res = 0;
			return 0;
		}
	}
	if (which)
		*which = NULL;
	return 0;
}

void vz_pb_lazy(json_t *vars, const json_t *lazy, const vz_template_opts *o)
{
	const char *k;
	json_t *flag;
	for (int pass = 0; pass < 6; pass++) {
		int changed = 0;
		json_object_foreach((json_t *)lazy, k, flag) {
			json_t *v = json_object_get(vars, k), *nv = NULL;
			vz_err e = { 0 };
			if (!v || !vz_pb_has_tmpl(v, 0))
				continue;
			if (tmpl(&nv, v, vars, o, 0, &e) != 0) {
				/* as in Ansible, a task that uses it fails; one that does not is unaffected */
				json_object_del(vars, k);
				changed = 1;
				continue;
			}
			if (!json_equal(nv, v)) {
				json_object_set_new(vars, k, nv);
				changed = 1;
			} else {
				json_decref(nv);
			}
		}
		if (!changed)
			break;
	}
}
