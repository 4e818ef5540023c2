/* vz_playbook_load: playbook YAML into the tree of plays, blocks and tasks the runner walks.
 * Everything static is resolved here (import_tasks, import_role, roles: with meta dependencies,
 * k=v argument strings), so an unknown module or keyword is an error before anything runs. */
#include "vz_playbook_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vz_buf.h"
#include "vz_util.h"
#include "vz_yaml.h"

/* Task keywords vinz implements (Ansible's names). */
static const char *const task_keywords[] = {
	"name", "when", "loop", "with_items", "with_dict", "with_list", "loop_control", "register",
	"ignore_errors", "failed_when", "changed_when", "until", "retries", "delay", "environment",
	"args", "become", "become_user", "become_method", "delegate_to", "run_once", "no_log", "vars",
	"tags", "notify", "timeout", "listen", "ignore_unreachable", NULL,
};
static const char *const block_keywords[] = {
	"name", "when", "environment", "become", "become_user", "become_method", "delegate_to",
	"run_once", "no_log", "vars", "tags", "ignore_errors", "block", "rescue", "always",
	"ignore_unreachable", "timeout", NULL,
};
static const char *const play_keywords[] = {
	"name", "hosts", "vars", "vars_files", "gather_facts", "become", "become_user", "become_method",
	"environment", "pre_tasks", "tasks", "post_tasks", "roles", "handlers", "serial", "strategy",
	"ignore_errors", "no_log", "tags", "remote_user", NULL,
};
/* Options of command-like modules that Ansible splits out of free-form text. */
static const char *const free_form_keys[] = {
	"chdir", "creates", "removes", "executable", "stdin", "stdin_add_newline", "strip_empty_ends",
	"warn", NULL,
};

static int in_list(const char *const *l, const char *s)
{
	for (size_t i = 0; l[i]; i++)
		if (!strcmp(l[i], s))
			return 1;
	return 0;
}

static const char *intern(vz_playbook *pb, const char *s)
{
	for (size_t i = 0; i < pb->nstrings; i++)
		if (!strcmp(pb->strings[i], s))
			return pb->strings[i];
	char **v = realloc(pb->strings, (pb->nstrings + 1) * sizeof(*v));
	if (!v)
		return NULL;
	pb->strings = v;
	if (!(v[pb->nstrings] = strdup(s)))
		return NULL;
	return v[pb->nstrings++];
}

int vz_pb_list_add(pb_list *l, pb_task *t)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 8;
		pb_task **v = realloc(l->v, nc * sizeof(*v));
		if (!v)
			return VZ_ENOMEM;
		l->v = v;
		l->cap = nc;
	}
	l->v[l->n++] = t;
	return 0;
}

static void task_free(pb_task *t);

void vz_pb_list_free(pb_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		task_free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void task_free(pb_task *t)
{
	if (!t)
		return;
	free(t->action);
	json_decref(t->args);
	json_decref(t->kw);
	vz_pb_list_free(&t->block);
	vz_pb_list_free(&t->rescue);
	vz_pb_list_free(&t->always);
	free(t);
}

static void role_free(pb_role *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->dir);
	json_decref(r->defaults);
	json_decref(r->vars);
	for (size_t i = 0; i < 4; i++)
		free(r->search[i]);
	free(r);
}

void vz_playbook_free(vz_playbook *pb)
{
	if (!pb)
		return;
	for (size_t i = 0; i < pb->nplays; i++) {
		pb_play *p = pb->plays[i];
		json_decref(p->kw);
		vz_pb_list_free(&p->pre_tasks);
		vz_pb_list_free(&p->tasks);
		vz_pb_list_free(&p->post_tasks);
		vz_pb_list_free(&p->handlers);
		free(p);
	}
	free(pb->plays);
	for (size_t i = 0; i < pb->nroles; i++)
		role_free(pb->roles[i]);
	free(pb->roles);
	for (size_t i = 0; i < pb->nstrings; i++)
		free(pb->strings[i]);
	free(pb->strings);
	free(pb->path);
	free(pb->dir);
	free(pb);
}

char *vz_pb_resolve(const char *dir, const char *rel)
{
	if (!rel)
		return NULL;
	if (rel[0] == '/' || !dir || !*dir)
		return strdup(rel);
	return vz_path_join(dir, rel);
}

static char *dir_of(const char *path)
{
	const char *sl = strrchr(path, '/');
	if (!sl)
		return strdup(".");
	if (sl == path)
		return strdup("/");
	return strndup(path, (size_t)(sl - path));
}

static int is_file(const char *p)
{
	struct stat st;
	return p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p)
{
	struct stat st;
	return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int vz_pb_depth(const pb_task *t)
{
	int d = 0;
	for (; t && d < 10000; t = t->parent)
		d++;
	return d;
}

/* ---- k=v ---- */

/* One word: up to unquoted, untemplated whitespace. Sets *end. */
static const char *kv_word(const char *p, const char **end)
{
	char q = 0;
	int tdepth = 0;
	const char *s = p;
	while (*p) {
		if (!q && tdepth == 0 && (*p == ' ' || *p == '\t' || *p == '\n'))
			break;
		if (!q && (p[0] == '{' && (p[1] == '{' || p[1] == '%'))) {
			tdepth++;
			p += 2;
			continue;
		}
		if (!q && tdepth && ((p[0] == '}' && p[1] == '}') || (p[0] == '%' && p[1] == '}'))) {
			tdepth--;
			p += 2;
			continue;
		}
		if (q && *p == '\\' && p[1]) {
			p += 2;
			continue;
		}
		if (q && *p == q)
			q = 0;
		else if (!q && !tdepth && (*p == '"' || *p == '\''))
			q = *p;
		p++;
	}
	*end = p;
	return s;
}

int vz_pb_parse_kv(json_t *obj, const char *s, const char *const *keys, int keep_raw, vz_err *e)
{
	vz_buf raw = VZ_BUF_INIT(VZ_YAML_MAX_INPUT);
	const char *p = s;
	int rc = 0;

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		const char *end, *w = kv_word(p, &end);
		const char *eq = memchr(w, '=', (size_t)(end - w));
		int is_kv = 0;
		if (eq && eq > w) {
			is_kv = 1;
			for (const char *k = w; k < eq; k++)
				if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_' ||
				      (k > w && *k >= '0' && *k <= '9')))
					is_kv = 0;
			if (is_kv && keys) {
				char key[64];
				size_t kl = (size_t)(eq - w);
				if (kl >= sizeof(key))
					is_kv = 0;
				else {
					memcpy(key, w, kl);
					key[kl] = 0;
					is_kv = in_list(keys, key);
				}
			}
		}
		if (is_kv) {
			char *key = strndup(w, (size_t)(eq - w));
			const char *v = eq + 1;
			size_t vl = (size_t)(end - v);
			json_t *val;
			if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0])
				val = json_stringn(v + 1, vl - 2);
			else
				val = json_stringn(v, vl);
			if (!key || !val) {
				free(key);
				json_decref(val);
				rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
				goto out;
			}
			json_object_set_new(obj, key, val);
			free(key);
		} else if (keep_raw) {
			if (raw.len)
				vz_buf_putc(&raw, ' ');
			vz_buf_add(&raw, w, (size_t)(end - w));
		} else {
			rc = vz_err_set(e, VZ_EINVAL, "expected key=value arguments, got '%.80s'", w);
			goto out;
		}
		p = end;
	}
	if (raw.failed) {
		rc = vz_err_set(e, VZ_ETOOBIG, "arguments too long");
		goto out;
	}
	if (keep_raw && raw.len)
		json_object_set_new(obj, "_raw_params", json_string(vz_buf_cstr(&raw)));
out:
	vz_buf_free(&raw);
	return rc;
}

/* ---- tasks ---- */

typedef struct lctx {
	vz_playbook *pb;
	const char *file;   /* interned */
	const char *fdir;   /* dir of the file (borrowed) */
	pb_role *role;
	int depth;
	int handlers;
	pb_list *play_handlers; /* where roles add their handlers; NULL inside handlers */
	json_t *seen_roles;     /* per play: role applications already added */
} lctx;

static int load_tasks_node(lctx *c, pb_list *out, const vz_ynode *seq, pb_task *parent, vz_err *e);
static int apply_role(lctx *c, pb_list *out, const vz_ynode *ref, const char *name, const json_t *params,
		      const json_t *kw, const char *tasks_from, pb_task *parent, int line, int col, vz_err *e);

static const char *task_label(const vz_ynode *t)
{
	const vz_ynode *n = vz_ymap_get(t, "name");
	return n && n->kind == VZ_Y_SCALAR ? n->str : NULL;
}

static int task_err(lctx *c, const vz_ynode *at, const vz_ynode *task, vz_err *e, int code, const char *fmt,
		    const char *a, const char *b)
{
	char msg[600];
	snprintf(msg, sizeof(msg), fmt, a ? a : "", b ? b : "");
	const char *label = task ? task_label(task) : NULL;
	if (label)
		return vz_err_set(e, code, "%s:%d:%d: task '%.80s': %s", c->file, at->line, at->col, label, msg);
	return vz_err_set(e, code, "%s:%d:%d: %s", c->file, at->line, at->col, msg);
}

/* Finds a tasks/vars file: absolute, next to the including file, in the role's dir for kind
 * ("tasks", "vars", ...), then in the playbook's dir. New string or NULL. */
static char *find_file(lctx *c, const char *rel, const char *kind)
{
	char *p = NULL;
	if (rel[0] == '/')
		return is_file(rel) ? strdup(rel) : NULL;
	if (c->fdir && (p = vz_pb_resolve(c->fdir, rel)) && is_file(p))
		return p;
	free(p);
	p = NULL;
	if (c->role && kind) {
		char *d = vz_path_join(c->role->dir, kind);
		p = d ? vz_pb_resolve(d, rel) : NULL;
		free(d);
		if (p && is_file(p))
			return p;
		free(p);
		p = NULL;
	}
	if ((p = vz_pb_resolve(c->pb->dir, rel)) && is_file(p))
		return p;
	free(p);
	return NULL;
}

static int load_file_into(lctx *c, pb_list *out, const char *path, pb_task *parent, vz_err *e)
{
	vz_ynode *root = NULL;
	int rc;
	lctx sub = *c;
	char *dir = NULL;

	if (c->depth >= VZ_PB_MAX_INCLUDE_DEPTH)
		return vz_err_set(e, VZ_EINVAL, "%s: includes nested deeper than %d (an include loop?)", path,
				  VZ_PB_MAX_INCLUDE_DEPTH);
	if ((rc = vz_yaml_load_file(&root, path, e)) != 0)
		goto out;
	if (!(dir = dir_of(path)) || !(sub.file = intern(c->pb, path))) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
		goto out;
	}
	sub.fdir = dir;
	sub.depth = c->depth + 1;
	if (!root)
		goto out;
	if (root->kind != VZ_Y_SEQ) {
		rc = vz_err_set(e, VZ_EINVAL, "%s:%d:%d: a task file must be a list of tasks", path, root->line, root->col);
		goto out;
	}
	rc = load_tasks_node(&sub, out, root, parent, e);
out:
	free(dir);
	vz_ynode_free(root);
	return rc;
}

int vz_pb_load_tasks_file(vz_playbook *pb, pb_list *out, const char *path, pb_role *role, pb_task *parent,
			  int depth, int handlers, vz_err *e)
{
	lctx c = { .pb = pb, .file = intern(pb, path), .fdir = NULL, .role = role, .depth = depth,
		   .handlers = handlers };
	return load_file_into(&c, out, path, parent, e);
}

static json_t *when_array(const vz_ynode *n)
{
	json_t *j = vz_ynode_to_json(n), *a;
	if (json_is_array(j))
		return j;
	a = json_array();
	json_array_append_new(a, j);
	return a;
}

/* Copies the keywords of t (not block/rescue/always, not the action) into a new object,
 * checking each against allowed. */
static int collect_kw(lctx *c, const vz_ynode *t, const char *const *allowed, const char *action, json_t **out,
		      vz_err *e)
{
	json_t *kw = json_object();
	int rc = 0;
	for (size_t i = 0; i < t->n; i++) {
		const char *k = t->keys[i]->str;
		const vz_ynode *v = t->items[i];
		if (action && !strcmp(k, action))
			continue;
		if (!strcmp(k, "block") || !strcmp(k, "rescue") || !strcmp(k, "always"))
			continue;
		if (!in_list(allowed, k)) {
			rc = task_err(c, t->keys[i], t, e, VZ_EINVAL, "'%s' is not a valid attribute for a %s (vinz "
				      "supports the keywords listed in docs/playbooks.md)", k,
				      allowed == block_keywords ? "Block" : "Task");
			goto out;
		}
		if (!strcmp(k, "when") || !strcmp(k, "failed_when") || !strcmp(k, "changed_when") ||
		    !strcmp(k, "until")) {
			json_object_set_new(kw, k, when_array(v));
		} else if (!strcmp(k, "notify") || !strcmp(k, "listen")) {
			json_object_set_new(kw, k, when_array(v));
		} else if (!strcmp(k, "with_items") || !strcmp(k, "with_dict") || !strcmp(k, "with_list") ||
			   !strcmp(k, "loop")) {
			if (json_object_get(kw, "loop")) {
				rc = task_err(c, t->keys[i], t, e, VZ_EINVAL, "more than one loop keyword ('%s')", k, NULL);
				goto out;
			}
			json_object_set_new(kw, "loop", vz_ynode_to_json(v));
			json_object_set_new(kw, "loop_kind", json_string(k));
		} else if (!strcmp(k, "register")) {
			if (v->kind != VZ_Y_SCALAR || !v->len) {
				rc = task_err(c, v, t, e, VZ_EINVAL, "'register' takes a variable name", NULL, NULL);
				goto out;
			}
			json_object_set_new(kw, k, json_string(v->str));
		} else if (!strcmp(k, "vars") || !strcmp(k, "environment") || !strcmp(k, "args") ||
			   !strcmp(k, "loop_control")) {
			if (v->kind != VZ_Y_MAP && !vz_yscalar_is_null(v) && !(!strcmp(k, "environment") &&
									     v->kind == VZ_Y_SCALAR)) {
				rc = task_err(c, v, t, e, VZ_EINVAL, "'%s' must be a mapping", k, NULL);
				goto out;
			}
			if (!strcmp(k, "loop_control") && v->kind == VZ_Y_MAP) {
				static const char *const lc[] = { "loop_var", "label", "index_var", "pause", "extended", NULL };
				for (size_t j = 0; j < v->n; j++)
					if (!in_list(lc, v->keys[j]->str)) {
						rc = task_err(c, v->keys[j], t, e, VZ_EINVAL, "unsupported loop_control option "
							      "'%s' (vinz has loop_var, label, index_var, pause, extended)",
							      v->keys[j]->str, NULL);
						goto out;
					}
			}
			json_object_set_new(kw, k, vz_ynode_to_json(v));
		} else if (!strcmp(k, "become_method")) {
			if (v->kind != VZ_Y_SCALAR || strcmp(v->str, "sudo")) {
				rc = task_err(c, v, t, e, VZ_EINVAL, "become_method '%s' is not supported (vinz uses sudo -n)",
					      v->kind == VZ_Y_SCALAR ? v->str : "?", NULL);
				goto out;
			}
		} else {
			json_object_set_new(kw, k, vz_ynode_to_json(v));
		}
	}
	json_object_set_new(kw, "__line", json_integer(t->line));
out:
	if (rc)
		json_decref(kw);
	else
		*out = kw;
	return rc;
}

static pb_task *new_task(lctx *c, pb_kind kind, const vz_ynode *t, pb_task *parent)
{
	pb_task *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->kind = kind;
	n->file = c->file;
	n->line = t ? t->line : 0;
	n->col = t ? t->col : 0;
	n->role = c->role;
	n->parent = parent;
	n->is_handler = c->handlers;
	return n;
}

static int is_action_name(const char *k, const char *what)
{
	size_t n = strlen(what);
	if (!strcmp(k, what))
		return 1;
	if (!strncmp(k, "ansible.builtin.", 16) && !strcmp(k + 16, what))
		return 1;
	(void)n;
	return 0;
}

static int load_task(lctx *c, pb_list *out, const vz_ynode *t, pb_task *parent, vz_err *e)
{
	pb_task *task = NULL;
	json_t *kw = NULL;
	const char *action = NULL;
	const vz_ynode *aval = NULL, *akey = NULL;
	int rc = 0;

	if (t->kind != VZ_Y_MAP)
		return task_err(c, t, NULL, e, VZ_EINVAL, "a task must be a mapping (name: ..., module: ...)", NULL, NULL);
	if (c->pb->ntasks++ >= VZ_PB_MAX_TASKS)
		return task_err(c, t, t, e, VZ_ETOOBIG, "more than %s tasks", "100000", NULL);
	if (vz_ymap_get(t, "block")) {
		if ((rc = collect_kw(c, t, block_keywords, NULL, &kw, e)) != 0)
			goto out;
		if (!(task = new_task(c, PB_BLOCK, t, parent))) {
			rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
			goto out;
		}
		task->kw = kw;
		kw = NULL;
		static const char *const parts[] = { "block", "rescue", "always" };
		pb_list *lists[] = { &task->block, &task->rescue, &task->always };
		for (int i = 0; i < 3; i++) {
			const vz_ynode *b = vz_ymap_get(t, parts[i]);
			if (!b || vz_yscalar_is_null(b))
				continue;
			if (b->kind != VZ_Y_SEQ) {
				rc = task_err(c, b, t, e, VZ_EINVAL, "'%s' must be a list of tasks", parts[i], NULL);
				goto out;
			}
			if ((rc = load_tasks_node(c, lists[i], b, task, e)) != 0)
				goto out;
		}
		goto add;
	}
	for (size_t i = 0; i < t->n; i++) {
		const char *k = t->keys[i]->str;
		if (in_list(task_keywords, k))
			continue;
		if (!strcmp(k, "rescue") || !strcmp(k, "always")) {
			rc = task_err(c, t->keys[i], t, e, VZ_EINVAL, "'%s' without 'block'", k, NULL);
			goto out;
		}
		if (action) {
			int known_a = vz_pbmod_find(action) || strstr(action, "include") || strstr(action, "import") ||
				      !strcmp(action, "meta");
			int known_k = vz_pbmod_find(k) != NULL;
			if (known_a && known_k)
				rc = task_err(c, t->keys[i], t, e, VZ_EINVAL, "conflicting action statements: %s, %s",
					      action, k);
			else
				rc = task_err(c, known_a ? t->keys[i] : akey, t, e, VZ_EINVAL,
					      "'%s' is not a valid attribute for a Task, and no module '%s' exists in "
					      "vinz (docs/playbooks.md lists the modules)",
					      known_a ? k : action, known_a ? k : action);
			goto out;
		}
		action = k;
		aval = t->items[i];
		akey = t->keys[i];
	}
	if (!action) {
		rc = task_err(c, t, t, e, VZ_EINVAL, "no module/action detected in task%s%s", NULL, NULL);
		goto out;
	}
	if ((rc = collect_kw(c, t, task_keywords, action, &kw, e)) != 0)
		goto out;

	if (is_action_name(action, "import_tasks") || is_action_name(action, "include_tasks") ||
	    is_action_name(action, "import_role") || is_action_name(action, "include_role")) {
		json_t *args = json_object();
		int is_role = strstr(action, "role") != NULL, is_import = strstr(action, "import") != NULL;
		if (aval->kind == VZ_Y_SCALAR)
			json_object_set_new(args, is_role ? "name" : "file", json_string(aval->str));
		else if (aval->kind == VZ_Y_MAP) {
			json_decref(args);
			args = vz_ynode_to_json(aval);
		}
		json_t *extra = json_object_get(kw, "args");
		if (json_is_object(extra))
			json_object_update_missing(args, extra);
		const char *target = json_string_value(json_object_get(args, is_role ? "name" : "file"));
		if (!target && !is_role)
			target = json_string_value(json_object_get(args, "_raw_params"));
		if (!target || !*target) {
			json_decref(args);
			rc = task_err(c, aval, t, e, VZ_EINVAL, "%s needs a %s", action, is_role ? "role name" : "file name");
			goto out;
		}
		if (json_object_get(kw, "loop") && is_import) {
			json_decref(args);
			rc = task_err(c, akey, t, e, VZ_EINVAL, "You cannot use loops on '%s' statements. You should use "
				      "'%s' instead.", action, is_role ? "include_role" : "include_tasks");
			goto out;
		}
		if (is_import && strstr(target, "{{")) {
			json_decref(args);
			rc = task_err(c, aval, t, e, VZ_EINVAL, "%s: the name '%s' uses a template; vinz resolves imports "
				      "when loading, use include_* instead", action, target);
			goto out;
		}
		if (!(task = new_task(c, is_import ? PB_BLOCK : is_role ? PB_INCLUDE_ROLE : PB_INCLUDE_TASKS, t, parent))) {
			json_decref(args);
			rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
			goto out;
		}
		task->action = strdup(action);
		task->args = args;
		task->kw = kw;
		kw = NULL;
		if (is_import && !is_role) {
			char *p = find_file(c, target, "tasks");
			if (!p) {
				rc = task_err(c, aval, t, e, VZ_ENOTFOUND, "import_tasks: cannot find the file '%s'", target, NULL);
				goto out;
			}
			rc = load_file_into(c, &task->block, p, task, e);
			free(p);
			if (rc)
				goto out;
		} else if (is_import) {
			json_t *params = json_object_get(args, "vars");
			const char *tf = json_string_value(json_object_get(args, "tasks_from"));
			rc = apply_role(c, &task->block, aval, target, params, NULL, tf, task, t->line, t->col, e);
			if (rc)
				goto out;
		}
		goto add;
	}
	if (is_action_name(action, "meta")) {
		const char *what = aval->kind == VZ_Y_SCALAR ? aval->str : "";
		if (strcmp(what, "flush_handlers") && strcmp(what, "end_play") && strcmp(what, "end_host") &&
		    strcmp(what, "noop")) {
			rc = task_err(c, aval, t, e, VZ_EINVAL, "meta: '%s' is not supported (vinz has flush_handlers, "
				      "end_play, end_host, noop)", what, NULL);
			goto out;
		}
		if (!(task = new_task(c, PB_META, t, parent))) {
			rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
			goto out;
		}
		task->action = strdup(what);
		task->kw = kw;
		kw = NULL;
		goto add;
	}
	if (!strcmp(action, "include") || !strcmp(action, "local_action") || !strcmp(action, "action")) {
		rc = task_err(c, akey, t, e, VZ_EINVAL, "'%s' is not supported; use include_tasks/import_tasks or the "
			      "module name with delegate_to", action, NULL);
		goto out;
	}
	const vz_pbmod *mod = vz_pbmod_find(action);
	if (!mod) {
		rc = task_err(c, akey, t, e, VZ_EINVAL, "couldn't resolve module/action '%s': vinz has no module '%s' "
			      "(docs/playbooks.md lists the modules)", action, action);
		goto out;
	}
	json_t *args = json_object();
	json_t *extra = json_object_get(kw, "args");
	if (json_is_object(extra))
		json_object_update(args, extra);
	if (aval->kind == VZ_Y_SCALAR && !vz_yscalar_is_null(aval)) {
		vz_err ke = { 0 };
		if (vz_pb_parse_kv(args, aval->str, mod->free_form ? free_form_keys : NULL, mod->free_form, &ke)) {
			json_decref(args);
			rc = task_err(c, aval, t, e, VZ_EINVAL, "module '%s': %s", action, ke.msg);
			goto out;
		}
	} else if (aval->kind == VZ_Y_MAP) {
		json_t *m = vz_ynode_to_json(aval);
		json_object_update(args, m);
		json_decref(m);
		/* free-form modules also take cmd: in the mapping form */
		json_t *cmdv = json_object_get(args, "cmd");
		if (mod->free_form && json_is_string(cmdv) && !json_object_get(args, "_raw_params")) {
			json_object_set(args, "_raw_params", cmdv);
			json_object_del(args, "cmd");
		}
	} else if (aval->kind == VZ_Y_SEQ) {
		json_decref(args);
		rc = task_err(c, aval, t, e, VZ_EINVAL, "module '%s': arguments must be a mapping or key=value text",
			      action, NULL);
		goto out;
	}
	if (mod->check) {
		vz_err ce = { 0 };
		if (mod->check(args, &ce)) {
			json_decref(args);
			rc = task_err(c, akey, t, e, VZ_EINVAL, "module '%s': %s", action, ce.msg);
			goto out;
		}
	}
	if (!(task = new_task(c, PB_MOD, t, parent))) {
		json_decref(args);
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
		goto out;
	}
	task->mod = mod;
	task->action = strdup(mod->name);
	task->args = args;
	task->kw = kw;
	kw = NULL;
add:
	if ((rc = vz_pb_list_add(out, task)) == 0)
		task = NULL;
	else
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
out:
	task_free(task);
	json_decref(kw);
	return rc;
}

static int load_tasks_node(lctx *c, pb_list *out, const vz_ynode *seq, pb_task *parent, vz_err *e)
{
	int rc = 0;
	if (c->depth > VZ_PB_MAX_INCLUDE_DEPTH)
		return vz_err_set(e, VZ_EINVAL, "%s:%d:%d: blocks and imports nested deeper than %d", c->file,
				  seq->line, seq->col, VZ_PB_MAX_INCLUDE_DEPTH);
	lctx sub = *c;
	sub.depth = c->depth + 1;
	for (size_t i = 0; i < seq->n && rc == 0; i++)
		rc = load_task(&sub, out, seq->items[i], parent, e);
	return rc;
}

/* ---- roles ---- */

static json_t *load_vars_dir(const char *dir, const char *sub, vz_err *e, int *rc)
{
	static const char *const names[] = { "main.yml", "main.yaml", "main", NULL };
	json_t *res = json_object();
	char *d = vz_path_join(dir, sub);
	for (size_t i = 0; d && names[i]; i++) {
		char *p = vz_path_join(d, names[i]);
		if (p && is_file(p)) {
			vz_ynode *root = NULL;
			if ((*rc = vz_yaml_load_file(&root, p, e)) == 0 && root) {
				if (root->kind != VZ_Y_MAP)
					*rc = vz_err_set(e, VZ_EINVAL, "%s:%d:%d: role variables must be a mapping", p, root->line,
							 root->col);
				else {
					json_t *j = vz_ynode_to_json(root);
					json_object_update(res, j);
					json_decref(j);
				}
			}
			vz_ynode_free(root);
			free(p);
			break;
		}
		free(p);
	}
	free(d);
	return res;
}

static char *role_file(const char *dir, const char *sub, const char *base)
{
	char name[PATH_MAX];
	static const char *const exts[] = { ".yml", ".yaml", "", NULL };
	for (size_t i = 0; exts[i]; i++) {
		snprintf(name, sizeof(name), "%s/%s/%s%s", dir, sub, base, exts[i]);
		if (is_file(name))
			return strdup(name);
	}
	return NULL;
}

static char *find_role_dir(lctx *c, const char *name)
{
	char *p = NULL;
	if (name[0] == '/')
		return is_dir(name) ? strdup(name) : NULL;
	const char *bases[4] = { NULL };
	char *rd = vz_path_join(c->pb->dir, "roles"), *parent_roles = NULL;
	size_t nb = 0;
	if (c->role) {
		parent_roles = dir_of(c->role->dir);
		bases[nb++] = parent_roles;
	}
	bases[nb++] = rd;
	bases[nb++] = c->pb->dir;
	for (size_t i = 0; i < nb && !p; i++) {
		p = bases[i] ? vz_pb_resolve(bases[i], name) : NULL;
		if (p && !is_dir(p)) {
			free(p);
			p = NULL;
		}
	}
	free(rd);
	free(parent_roles);
	return p;
}

static pb_role *get_role(lctx *c, const char *dir, const char *name, vz_err *e, int *rc)
{
	for (size_t i = 0; i < c->pb->nroles; i++)
		if (!strcmp(c->pb->roles[i]->dir, dir))
			return c->pb->roles[i];
	pb_role *r = calloc(1, sizeof(*r));
	pb_role **v = realloc(c->pb->roles, (c->pb->nroles + 1) * sizeof(*v));
	if (!r || !v) {
		free(r);
		if (v)
			c->pb->roles = v;
		*rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
		return NULL;
	}
	c->pb->roles = v;
	v[c->pb->nroles++] = r;
	const char *base = strrchr(name, '/');
	r->name = strdup(base ? base + 1 : name);
	r->dir = strdup(dir);
	r->search[0] = vz_path_join(dir, "files");
	r->search[1] = vz_path_join(dir, "templates");
	r->search[2] = strdup(dir);
	if ((*rc = 0), !(r->defaults = load_vars_dir(dir, "defaults", e, rc)) || *rc)
		return NULL;
	if (!(r->vars = load_vars_dir(dir, "vars", e, rc)) || *rc)
		return NULL;
	return r;
}

static int apply_role(lctx *c, pb_list *out, const vz_ynode *ref, const char *name, const json_t *params,
		      const json_t *kw, const char *tasks_from, pb_task *parent, int line, int col, vz_err *e)
{
	int rc = 0;
	char *dir = find_role_dir(c, name), *tf = NULL, *hf = NULL, *meta = NULL;
	pb_task *blk = NULL;
	vz_ynode *mroot = NULL;
	char *key = NULL;

	if (!dir) {
		rc = vz_err_set(e, VZ_ENOTFOUND, "%s:%d:%d: the role '%s' was not found in %s/roles or %s", c->file, line,
				col, name, c->pb->dir, c->pb->dir);
		goto out;
	}
	if (c->depth >= VZ_PB_MAX_INCLUDE_DEPTH) {
		rc = vz_err_set(e, VZ_EINVAL, "%s:%d:%d: roles nested deeper than %d (a dependency loop through "
				"role '%s'?)", c->file, line, col, VZ_PB_MAX_INCLUDE_DEPTH, name);
		goto out;
	}
	pb_role *role = get_role(c, dir, name, e, &rc);
	if (!role)
		goto out;
	/* a role of the play runs once per play, whatever its parameters: what ansible-core 2.14
	 * does (checked against it; allow_duplicates is not supported) */
	if (c->seen_roles && !tasks_from) {
		key = strdup(dir);
		if (key && json_object_get(c->seen_roles, key))
			goto out;
	}
	if (!(blk = new_task(c, PB_BLOCK, NULL, parent))) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
		goto out;
	}
	blk->line = line;
	blk->col = col;
	blk->role = role;
	blk->is_role_block = 1;
	blk->action = strdup(role->name);
	blk->kw = kw ? json_deep_copy(kw) : json_object();
	if (params && json_object_size(params))
		json_object_set_new(blk->kw, "vars", json_deep_copy(params));
	lctx sub = *c;
	sub.role = role;
	sub.depth = c->depth + 1;
	/* meta dependencies first */
	if ((meta = role_file(dir, "meta", "main"))) {
		if ((rc = vz_yaml_load_file(&mroot, meta, e)) != 0)
			goto out;
		const vz_ynode *deps = vz_ymap_get(mroot, "dependencies");
		if (deps && deps->kind == VZ_Y_SEQ) {
			const char *mf = intern(c->pb, meta);
			lctx mc = sub;
			mc.file = mf;
			for (size_t i = 0; i < deps->n; i++) {
				const vz_ynode *d = deps->items[i];
				const char *dn = NULL;
				json_t *dp = NULL;
				if (d->kind == VZ_Y_SCALAR)
					dn = d->str;
				else if (d->kind == VZ_Y_MAP) {
					const vz_ynode *r = vz_ymap_get(d, "role");
					if (!r)
						r = vz_ymap_get(d, "name");
					dn = r && r->kind == VZ_Y_SCALAR ? r->str : NULL;
					dp = vz_ynode_to_json(d);
					json_object_del(dp, "role");
					json_object_del(dp, "name");
					json_t *vv = json_object_get(dp, "vars");
					if (json_is_object(vv)) {
						json_incref(vv);
						json_object_del(dp, "vars");
						json_object_update(dp, vv);
						json_decref(vv);
					}
				}
				if (!dn) {
					json_decref(dp);
					rc = vz_err_set(e, VZ_EINVAL, "%s:%d:%d: a role dependency needs a role name", meta,
							d->line, d->col);
					goto out;
				}
				rc = apply_role(&mc, &blk->block, d, dn, dp, NULL, NULL, blk, d->line, d->col, e);
				json_decref(dp);
				if (rc)
					goto out;
			}
		}
	}
	if (!(tf = role_file(dir, "tasks", tasks_from ? tasks_from : "main")) && tasks_from) {
		rc = vz_err_set(e, VZ_ENOTFOUND, "%s:%d:%d: role '%s' has no tasks file '%s'", c->file, line, col, name,
				tasks_from);
		goto out;
	}
	if (tf && (rc = load_file_into(&sub, &blk->block, tf, blk, e)) != 0)
		goto out;
	int have_handlers = 0;
	for (size_t i = 0; c->play_handlers && i < c->play_handlers->n; i++)
		if (c->play_handlers->v[i]->role == role)
			have_handlers = 1;
	if (c->play_handlers && !have_handlers && (hf = role_file(dir, "handlers", "main"))) {
		lctx hc = sub;
		hc.handlers = 1;
		if ((rc = load_file_into(&hc, c->play_handlers, hf, NULL, e)) != 0)
			goto out;
	}
	if (key)
		json_object_set_new(c->seen_roles, key, json_true());
	if ((rc = vz_pb_list_add(out, blk)) == 0)
		blk = NULL;
	else
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
out:
	(void)ref;
	task_free(blk);
	vz_ynode_free(mroot);
	free(key);
	free(meta);
	free(tf);
	free(hf);
	free(dir);
	return rc;
}

int vz_pb_load_role(vz_playbook *pb, pb_task **out, const char *name, const char *tasks_from, const json_t *params,
		    const char *from_file, pb_task *parent, int depth, pb_list *handlers, vz_err *e)
{
	pb_list l = { 0 };
	lctx c = { .pb = pb, .file = intern(pb, from_file ? from_file : pb->path), .role = parent ? parent->role : NULL,
		   .depth = depth, .play_handlers = handlers };
	int rc = apply_role(&c, &l, NULL, name, params, NULL, tasks_from, parent, parent ? parent->line : 0, 0, e);
	*out = NULL;
	if (rc == 0 && l.n == 1) {
		*out = l.v[0];
		l.n = 0;
	}
	vz_pb_list_free(&l);
	return rc;
}

/* ---- plays ---- */

static int load_play(vz_playbook *pb, const vz_ynode *p, const char *file, const char *fdir, int depth, vz_err *e);

static int load_plays(vz_playbook *pb, const vz_ynode *root, const char *file, const char *fdir, int depth, vz_err *e)
{
	int rc = 0;
	if (!root)
		return 0;
	if (root->kind != VZ_Y_SEQ)
		return vz_err_set(e, VZ_EINVAL, "%s:%d:%d: a playbook must be a list of plays", file, root->line, root->col);
	for (size_t i = 0; i < root->n && rc == 0; i++)
		rc = load_play(pb, root->items[i], file, fdir, depth, e);
	return rc;
}

static int load_play(vz_playbook *pb, const vz_ynode *p, const char *file, const char *fdir, int depth, vz_err *e)
{
	pb_play *play = NULL;
	int rc = 0;
	lctx c = { .pb = pb, .file = file, .fdir = fdir, .depth = depth };
	vz_ynode *sub = NULL;
	char *path = NULL, *sdir = NULL;

	if (p->kind != VZ_Y_MAP)
		return vz_err_set(e, VZ_EINVAL, "%s:%d:%d: a play must be a mapping (hosts:, tasks:, ...)", file, p->line,
				  p->col);
	const vz_ynode *imp = vz_ymap_get(p, "import_playbook");
	if (!imp)
		imp = vz_ymap_get(p, "ansible.builtin.import_playbook");
	if (imp) {
		if (imp->kind != VZ_Y_SCALAR || depth >= VZ_PB_MAX_INCLUDE_DEPTH) {
			rc = vz_err_set(e, VZ_EINVAL, "%s:%d:%d: import_playbook needs a file name (and at most %d levels)",
					file, imp->line, imp->col, VZ_PB_MAX_INCLUDE_DEPTH);
			goto out;
		}
		path = vz_pb_resolve(fdir, imp->str);
		if (!path || !is_file(path)) {
			rc = vz_err_set(e, VZ_ENOTFOUND, "%s:%d:%d: import_playbook: cannot find '%s'", file, imp->line,
					imp->col, imp->str);
			goto out;
		}
		if ((rc = vz_yaml_load_file(&sub, path, e)) != 0)
			goto out;
		sdir = dir_of(path);
		rc = load_plays(pb, sub, intern(pb, path), sdir, depth + 1, e);
		goto out;
	}
	if (!(play = calloc(1, sizeof(*play))) || !(play->kw = json_object())) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
		goto out;
	}
	play->file = file;
	play->line = p->line;
	json_t *seen = json_object();
	c.seen_roles = seen;
	c.play_handlers = &play->handlers;
	for (size_t i = 0; i < p->n && rc == 0; i++) {
		const char *k = p->keys[i]->str;
		const vz_ynode *v = p->items[i];
		if (!strcmp(k, "any_errors_fatal") || !strcmp(k, "force_handlers") || !strcmp(k, "max_fail_percentage") ||
		    !strcmp(k, "check_mode") || !strcmp(k, "order")) {
			rc = vz_err_set(e, VZ_EINVAL, "%s:%d:%d: the play keyword '%s' is not supported by vinz "
					"(docs/playbooks.md)", file, p->keys[i]->line, p->keys[i]->col, k);
			break;
		}
		if (!in_list(play_keywords, k)) {
			rc = vz_err_set(e, VZ_EINVAL, "%s:%d:%d: '%s' is not a valid attribute for a Play", file,
					p->keys[i]->line, p->keys[i]->col, k);
			break;
		}
		if (!strcmp(k, "strategy") && (v->kind != VZ_Y_SCALAR || strcmp(v->str, "linear"))) {
			rc = vz_err_set(e, VZ_EINVAL, "%s:%d:%d: only strategy: linear is supported", file, v->line, v->col);
			break;
		}
		if (!strcmp(k, "tasks") || !strcmp(k, "pre_tasks") || !strcmp(k, "post_tasks") || !strcmp(k, "handlers") ||
		    !strcmp(k, "roles"))
			continue;
		json_object_set_new(play->kw, k, vz_ynode_to_json(v));
	}
	if (rc == 0 && !vz_ymap_get(p, "hosts"))
		rc = vz_err_set(e, VZ_EINVAL, "%s:%d:%d: the field 'hosts' is required but was not set", file, p->line,
				p->col);
	static const char *const lists[] = { "handlers", "pre_tasks", "roles", "tasks", "post_tasks" };
	for (size_t i = 0; i < 5 && rc == 0; i++) {
		const vz_ynode *v = vz_ymap_get(p, lists[i]);
		if (!v || vz_yscalar_is_null(v))
			continue;
		if (v->kind != VZ_Y_SEQ) {
			rc = vz_err_set(e, VZ_EINVAL, "%s:%d:%d: '%s' must be a list", file, v->line, v->col, lists[i]);
			break;
		}
		if (!strcmp(lists[i], "roles")) {
			for (size_t j = 0; j < v->n && rc == 0; j++) {
				const vz_ynode *r = v->items[j];
				const char *name = NULL;
				json_t *params = NULL, *kw = json_object();
				if (r->kind == VZ_Y_SCALAR)
					name = r->str;
				else if (r->kind == VZ_Y_MAP) {
					const vz_ynode *rn = vz_ymap_get(r, "role");
					if (!rn)
						rn = vz_ymap_get(r, "name");
					name = rn && rn->kind == VZ_Y_SCALAR ? rn->str : NULL;
					params = json_object();
					for (size_t k = 0; k < r->n; k++) {
						const char *key = r->keys[k]->str;
						if (!strcmp(key, "role") || !strcmp(key, "name"))
							continue;
						json_t *val = vz_ynode_to_json(r->items[k]);
						if (!strcmp(key, "vars") && json_is_object(val))
							json_object_update(params, val);
						else if (!strcmp(key, "when") || !strcmp(key, "tags"))
							json_object_set_new(kw, key, !strcmp(key, "when") ? when_array(r->items[k])
													 : json_incref(val));
						else if (in_list(block_keywords, key))
							json_object_set(kw, key, val);
						else
							json_object_set(params, key, val);
						json_decref(val);
					}
				}
				if (!name)
					rc = vz_err_set(e, VZ_EINVAL, "%s:%d:%d: a role entry needs a role name", file, r->line,
							r->col);
				else
					rc = apply_role(&c, &play->tasks, r, name, params, kw, NULL, NULL, r->line, r->col, e);
				json_decref(params);
				json_decref(kw);
			}
			continue;
		}
		pb_list *dst = !strcmp(lists[i], "handlers") ? &play->handlers : !strcmp(lists[i], "pre_tasks")
			? &play->pre_tasks : !strcmp(lists[i], "tasks") ? &play->tasks : &play->post_tasks;
		lctx lc = c;
		lc.handlers = dst == &play->handlers;
		rc = load_tasks_node(&lc, dst, v, NULL, e);
	}
	json_decref(seen);
	if (rc)
		goto out;
	pb_play **pv = realloc(pb->plays, (pb->nplays + 1) * sizeof(*pv));
	if (!pv) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
		goto out;
	}
	pb->plays = pv;
	pv[pb->nplays++] = play;
	play = NULL;
out:
	if (play) {
		json_decref(play->kw);
		vz_pb_list_free(&play->pre_tasks);
		vz_pb_list_free(&play->tasks);
		vz_pb_list_free(&play->post_tasks);
		vz_pb_list_free(&play->handlers);
		free(play);
	}
	vz_ynode_free(sub);
	free(path);
	free(sdir);
	return rc;
}

int vz_playbook_parse(vz_playbook **out, const char *data, size_t len, const char *fname, const char *dir, vz_err *e)
{
	vz_playbook *pb = calloc(1, sizeof(*pb));
	vz_ynode *root = NULL;
	int rc = 0;

	*out = NULL;
	if (!pb || !(pb->path = strdup(fname)) || !(pb->dir = strdup(dir ? dir : "."))) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory loading %s", fname);
		goto out;
	}
	if ((rc = vz_yaml_parse(&root, data, len, fname, e)) != 0)
		goto out;
	rc = load_plays(pb, root, intern(pb, fname), pb->dir, 0, e);
	if (rc == 0) {
		*out = pb;
		pb = NULL;
	}
out:
	vz_ynode_free(root);
	vz_playbook_free(pb);
	return rc;
}

int vz_playbook_load(vz_playbook **out, const char *path, vz_err *e)
{
	vz_buf b = VZ_BUF_INIT(VZ_YAML_MAX_INPUT);
	char *dir = NULL;
	int rc;

	*out = NULL;
	if ((rc = vz_read_file(path, VZ_YAML_MAX_INPUT, &b, e)) != 0)
		goto out;
	if (!(dir = dir_of(path))) {
		rc = vz_err_set(e, VZ_ENOMEM, "out of memory");
		goto out;
	}
	rc = vz_playbook_parse(out, b.ptr ? b.ptr : "", b.len, path, dir, e);
out:
	free(dir);
	vz_buf_free(&b);
	return rc;
}

/* ---- describe ---- */

static json_t *describe_list(const pb_list *l, int depth);

static json_t *describe_task(const pb_task *t, int depth)
{
	json_t *o = json_object();
	json_t *name = json_object_get(t->kw, "name");
	if (name)
		json_object_set(o, "name", name);
	static const char *const kinds[] = { "", "module", "block", "include_tasks", "include_role", "meta" };
	json_object_set_new(o, "kind", json_string(kinds[t->kind]));
	if (t->action)
		json_object_set_new(o, "action", json_string(t->action));
	json_object_set_new(o, "file", json_string(t->file ? t->file : ""));
	json_object_set_new(o, "line", json_integer(t->line));
	if (t->role)
		json_object_set_new(o, "role", json_string(t->role->name));
	if (t->args)
		json_object_set(o, "args", t->args);
	if (depth < 64) {
		if (t->block.n)
			json_object_set_new(o, "block", describe_list(&t->block, depth + 1));
		if (t->rescue.n)
			json_object_set_new(o, "rescue", describe_list(&t->rescue, depth + 1));
		if (t->always.n)
			json_object_set_new(o, "always", describe_list(&t->always, depth + 1));
	}
	return o;
}

static json_t *describe_list(const pb_list *l, int depth)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, describe_task(l->v[i], depth));
	return a;
}

json_t *vz_playbook_describe(const vz_playbook *pb)
{
	json_t *a = json_array();
	for (size_t i = 0; pb && i < pb->nplays; i++) {
		const pb_play *p = pb->plays[i];
		json_t *o = json_object();
		json_object_set(o, "name", json_object_get(p->kw, "name"));
		json_object_set(o, "hosts", json_object_get(p->kw, "hosts"));
		json_object_set_new(o, "pre_tasks", describe_list(&p->pre_tasks, 0));
		json_object_set_new(o, "tasks", describe_list(&p->tasks, 0));
		json_object_set_new(o, "post_tasks", describe_list(&p->post_tasks, 0));
		json_object_set_new(o, "handlers", describe_list(&p->handlers, 0));
		json_array_append_new(a, o);
	}
	return a;
}
