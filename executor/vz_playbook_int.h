/* vz_playbook_int: the loaded playbook tree shared by the loader (vz_playbook_load.c) and the
 * runner (vz_playbook_run.c). Not for use outside executor/vz_playbook*.c. */
#ifndef VZ_PLAYBOOK_INT_H
#define VZ_PLAYBOOK_INT_H

#include <jansson.h>

#include "vz_err.h"
#include "vz_pbmod.h"
#include "vz_playbook.h"
#include "vz_template.h"
#include "vz_yaml.h"

typedef enum {
	PB_MOD = 1,        /* a module call */
	PB_BLOCK,          /* block/rescue/always; also an import_tasks, import_role or a play role */
	PB_INCLUDE_TASKS,  /* loaded when it runs */
	PB_INCLUDE_ROLE,   /* loaded when it runs */
	PB_META,           /* meta: flush_handlers / end_play / end_host / noop */
} pb_kind;

typedef struct pb_task pb_task;
typedef struct pb_role pb_role;

typedef struct pb_list {
	pb_task **v;
	size_t n, cap;
} pb_list;

struct pb_task {
	pb_kind kind;
	const char *file; /* interned in the playbook */
	int line, col;
	char *action;     /* module name as written; include/import/meta name */
	const vz_pbmod *mod;
	json_t *args;     /* module arguments (object); for includes {"file"}/{"name", ...} */
	json_t *kw;       /* task keywords (name, when (as an array), loop, register, ...) */
	pb_list block, rescue, always;
	pb_role *role;    /* the role the task comes from, or NULL */
	pb_task *parent;  /* the enclosing block, for inherited keywords */
	int is_role_block; /* a block standing for one role application (vars = role params) */
	int is_handler;
};

struct pb_role {
	char *name;
	char *dir;
	json_t *defaults; /* defaults/main.yml */
	json_t *vars;     /* vars/main.yml */
	char *search[4];  /* files/ or templates/ look-up dirs are built from dir */
};

typedef struct pb_play {
	const char *file;
	int line;
	json_t *kw;       /* name, hosts, vars, vars_files, gather_facts, become, environment, ... */
	pb_list pre_tasks, tasks, post_tasks, handlers; /* tasks holds roles (blocks) then tasks */
} pb_play;

struct vz_playbook {
	char *path;
	char *dir;
	pb_play **plays;
	size_t nplays;
	char **strings;   /* interned file names */
	size_t nstrings;
	pb_role **roles;  /* every role loaded, owned here */
	size_t nroles;
	size_t ntasks;
	int untrusted;
	const char *confine;
};

/* Loads a task file (include_tasks at run time) relative to the including file's dir or
 * the role's tasks/ dir. The tasks are owned by pb (freed with it). depth counts nesting. */
int vz_pb_load_tasks_file(vz_playbook *pb, pb_list *out, const char *path, pb_role *role, pb_task *parent,
			  int depth, int handlers, vz_err *e);

/* Loads a role by name for include_role at run time; its tasks (tasks_from: main) go to out. */
int vz_pb_load_role(vz_playbook *pb, pb_task **out, const char *name, const char *tasks_from, const json_t *params,
		    const char *from_file, pb_task *parent, int depth, pb_list *handlers, vz_err *e);

/* Resolves a relative path against dir into a new string. */
char *vz_pb_resolve(const char *dir, const char *rel);

void vz_pb_list_free(pb_list *l);
int vz_pb_list_add(pb_list *l, pb_task *t);

/* Splits "a=1 b='x y' rest" as Ansible's parse_kv does: pairs whose key is in keys (NULL: any
 * identifier) go to obj; with keep_raw the other words stay, in order, in "_raw_params".
 * Template markers {{ }} / {% %} and quotes keep words together. 0 or VZ_EINVAL. */
int vz_pb_parse_kv(json_t *obj, const char *s, const char *const *keys, int keep_raw, vz_err *e);

/* The value Ansible's `omit` stands for: an argument equal to it is dropped. */
#define VZ_PB_OMIT "__omit_place_holder__vinz"

/* The message of e without vz_template's "LINE:COL: " prefix. Borrowed from e. */
const char *vz_pb_errmsg(const vz_err *e);
/* 1 when a string in v (recursively) holds {{ or {%. */
int vz_pb_has_tmpl(const json_t *v, int depth);
/* Templates every string of v with vars into a new value (types kept for a bare {{ x }});
 * object members that come out as omit are dropped. */
int vz_pb_template(json_t **out, const json_t *v, const json_t *vars, const vz_template_opts *o, vz_err *e);
/* Templates one string as Ansible 2.14 does: a bare {{ name }} keeps its value's type; anything
 * else renders to text, turned back into a value only when it reads as a list, dict or boolean. */
int vz_pb_template_string(json_t **out, const char *s, size_t n, const json_t *vars, const vz_template_opts *o,
			  vz_err *e);
/* Evaluates conditions (a string, bool or an array of them, all must hold) into *res. *which
 * (may be NULL) names the condition that was false or failed. */
int vz_pb_cond(int *res, const json_t *conds, const json_t *vars, const vz_template_opts *o, const char **which,
	       vz_err *e);
/* Templates, in place, the members of vars named in lazy whose values hold templates (a few
 * passes, so variables may refer to each other); a member that fails to render is removed, so
 * a task using it fails with "'NAME' is undefined". */
void vz_pb_lazy(json_t *vars, const json_t *lazy, const vz_template_opts *o);

/* Depth of a task in the include tree (for the cap). */
int vz_pb_depth(const pb_task *t);

#endif
