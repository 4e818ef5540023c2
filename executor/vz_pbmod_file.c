/* vz_pbmod_file: ansible.builtin.file, natively: states file, directory, absent, touch, link and
 * hard, with mode/owner/group (recursively for directories), each decided from a stat of the
 * node path and carried out by one sh script (coreutils). See docs/modules.md. */
#include <stdlib.h>
#include <string.h>

#include "vz_pbmod_util.h"
#include "vz_util.h"

static const char *const opts[] = { "path", "dest", "name", "state", "mode", "owner", "group", "src",
				    "recurse", "force", "follow", "access_time", "modification_time",
				    "access_time_format", "modification_time_format", "unsafe_writes",
				    "attributes", "attr", "selevel", "serole", "setype", "seuser", NULL };

static int check(const json_t *args, vz_err *e)
{
	return vz_pbmod_args_known(args, "file", opts, e);
}

static const char *state_name(const vz_pbmod_st *st)
{
	if (!st->exists)
		return "absent";
	return st->type == 'l' ? "link" : st->type == 'd' ? "directory" : st->nlink > 1 ? "hard" : "file";
}

/* Runs a script that must succeed; a non-zero exit becomes err with what. */
static int do_sh(const vz_pbmod_ctx *ctx, vz_buf *s, const char *what, const char *path, vz_err *e)
{
	vz_pbmod_run r;
	int rc = vz_pbmod_sh(&r, ctx, vz_buf_cstr(s), NULL, 0, 65536, e);
	if (rc == 0 && r.status != 0)
		rc = vz_err_set(e, VZ_EINVAL, "%s %s failed: %.400s", what, path, vz_buf_cstr(&r.err));
	vz_pbmod_run_free(&r);
	vz_buf_reset(s);
	return rc;
}

/* Adds Ansible's path info (only when the path exists with symlinks followed, as
 * os.path.exists does, then from lstat). */
static int add_info(json_t *r, const vz_pbmod_ctx *ctx, const char *path, vz_err *e)
{
	vz_pbmod_st st = { 0 };
	int rc = vz_pbmod_node_stat(&st, ctx, path, 0, 0, e);
	if (rc == 0 && st.exists && st.target_exists)
		vz_pbmod_path_info(r, &st);
	vz_pbmod_st_free(&st);
	return rc;
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	static const char *const path_keys[] = { "path", "dest", "name", NULL };
	static const char *const state_keys[] = { "state", NULL };
	static const char *const src_keys[] = { "src", NULL };
	static const char *const owner_keys[] = { "owner", NULL };
	static const char *const group_keys[] = { "group", NULL };
	json_t *r = json_object();
	vz_pbmod_st st = { 0 }, sst = { 0 };
	vz_buf s = VZ_BUF_INIT(1 << 20);
	vz_err err = { 0 };
	const char *path, *state, *src, *owner, *group;
	char b1[64], b2[64], b3[64], b4[64], b5[64];
	char *mode = NULL;
	int recurse, force, follow, changed = 0, ch = 0, rc = 0;

	json_object_set_new(r, "changed", json_false());
	if ((rc = check(args, &err)) || (rc = vz_pbmod_arg_str(&path, args, path_keys, b1, sizeof(b1), &err)) ||
	    (rc = vz_pbmod_arg_str(&state, args, state_keys, b2, sizeof(b2), &err)) ||
	    (rc = vz_pbmod_arg_str(&src, args, src_keys, b3, sizeof(b3), &err)) ||
	    (rc = vz_pbmod_arg_str(&owner, args, owner_keys, b4, sizeof(b4), &err)) ||
	    (rc = vz_pbmod_arg_str(&group, args, group_keys, b5, sizeof(b5), &err)) ||
	    (rc = vz_pbmod_arg_bool(&recurse, args, "recurse", 0, &err)) ||
	    (rc = vz_pbmod_arg_bool(&force, args, "force", 0, &err)) ||
	    (rc = vz_pbmod_arg_bool(&follow, args, "follow", 1, &err)) ||
	    (rc = vz_pbmod_arg_mode(&mode, args, "mode", &err)))
		goto fail;
	if (!path) {
		vz_pbmod_failed(r, "missing required arguments: path");
		goto out;
	}
	if ((rc = vz_pbmod_node_stat(&st, ctx, path, 0, 0, &err)) != 0)
		goto fail;
	const char *prev = state_name(&st);
	if (!state) /* Ansible: the current state, or file */
		state = st.exists ? (!strcmp(prev, "hard") ? "file" : prev) : "file";
	if (src && strcmp(state, "link") && strcmp(state, "hard")) {
		vz_pbmod_failed(r, "src option requires state to be 'link' or 'hard'");
		goto out;
	}
	if (recurse && strcmp(state, "directory")) {
		vz_pbmod_failed(r, "recurse option requires state to be 'directory'");
		goto out;
	}
	if (!strcmp(state, "absent")) {
		json_object_set_new(r, "path", json_string(path));
		json_object_set_new(r, "state", json_string("absent"));
		if (st.exists) {
			vz_buf_puts(&s, "rm -rf -- ");
			vz_node_sh_quote(&s, path);
			if ((rc = do_sh(ctx, &s, "removing", path, &err)) != 0)
				goto fail;
			changed = 1;
		}
	} else if (!strcmp(state, "file")) {
		const char *cur = prev;
		if (st.type == 'l' && follow) {
			if ((rc = vz_pbmod_node_stat(&sst, ctx, path, 1, 0, &err)) != 0)
				goto fail;
			cur = state_name(&sst);
		}
		if (strcmp(cur, "file") && strcmp(cur, "hard")) {
			json_object_set_new(r, "path", json_string(path));
			vz_pbmod_failed(r, "file (%s) is %s, cannot continue", path, cur);
			goto out;
		}
		if ((rc = vz_pbmod_attrs(&ch, ctx, path, mode, owner, group, 0, &err)) != 0)
			goto fail;
		changed |= ch;
		json_object_set_new(r, "path", json_string(path));
	} else if (!strcmp(state, "directory")) {
		if (!st.exists) {
			/* each missing component is created and given the mode, as Ansible does */
			vz_buf_puts(&s, "p=");
			vz_node_sh_quote(&s, path);
			vz_buf_putc(&s, '\n');
			vz_pbmod_sh_mkdirs(&s, "p", mode);
			if ((rc = do_sh(ctx, &s, "creating directory", path, &err)) != 0)
				goto fail;
			changed = 1;
		} else if (st.type != 'd') {
			int isdir = 0;
			if (st.type == 'l' && follow) {
				if ((rc = vz_pbmod_node_stat(&sst, ctx, path, 1, 0, &err)) != 0)
					goto fail;
				isdir = sst.exists && sst.type == 'd';
			}
			if (!isdir) {
				json_object_set_new(r, "path", json_string(path));
				vz_pbmod_failed(r, "%s already exists as a %s", path, prev);
				goto out;
			}
		}
		if ((rc = vz_pbmod_attrs(&ch, ctx, path, mode, owner, group, recurse, &err)) != 0)
			goto fail;
		changed |= ch;
		json_object_set_new(r, "path", json_string(path));
	} else if (!strcmp(state, "touch")) {
		vz_buf_puts(&s, "touch -- ");
		vz_node_sh_quote(&s, path);
		if ((rc = do_sh(ctx, &s, "touching", path, &err)) != 0)
			goto fail;
		changed = 1; /* Ansible: touch always changes the times */
		if ((rc = vz_pbmod_attrs(&ch, ctx, path, mode, owner, group, 0, &err)) != 0)
			goto fail;
		json_object_set_new(r, "dest", json_string(path));
	} else if (!strcmp(state, "link") || !strcmp(state, "hard")) {
		int hard = !strcmp(state, "hard");
		json_object_set_new(r, "dest", json_string(path));
		if (src)
			json_object_set_new(r, "src", json_string(src));
		if (!src && !(st.type == 'l' && !hard) && !(hard && !strcmp(prev, "hard"))) {
			vz_pbmod_failed(r, "src is required for creating new %s", hard ? "hardlinks" : "symlinks");
			goto out;
		}
		if (!src) {
			src = st.lnk_target; /* keep the current link; only attributes change */
		}
		/* where a relative src is looked up: next to the link (or inside a directory path) */
		char *absrc = NULL;
		if (src[0] == '/' || hard) {
			absrc = vz_xstrdup(src);
		} else {
			char *dir = vz_xstrdup(path), *sl = strrchr(dir, '/');
			if (st.type == 'd')
				absrc = vz_path_join(dir, src);
			else if (sl) {
				*sl = '\0';
				absrc = vz_path_join(*dir ? dir : "/", src);
			} else {
				absrc = vz_xstrdup(src);
			}
			free(dir);
		}
		rc = vz_pbmod_node_stat(&sst, ctx, absrc, 1, 0, &err);
		if (rc) {
			free(absrc);
			goto fail;
		}
		if (hard) {
			free(absrc);
			if (!sst.exists) {
				vz_pbmod_failed(r, "src does not exist");
				goto out;
			}
			if (!strcmp(prev, "absent")) {
				changed = 1;
			} else if (st.type == 'l' || st.type == 'd') {
				changed = 1;
				if (st.type == 'd' && !force) {
					vz_pbmod_failed(r, "Cannot link: different hard link exists at destination");
					goto out;
				}
			} else if (st.inode != sst.inode || st.dev != sst.dev) {
				changed = 1;
				if (!force) {
					vz_pbmod_failed(r, !strcmp(prev, "hard") ?
							"Cannot link, different hard link exists at destination" :
							"Cannot link, file exists at destination");
					goto out;
				}
			}
			if (changed) {
				vz_buf_puts(&s, "p=");
				vz_node_sh_quote(&s, path);
				vz_buf_puts(&s, "; t=\"$p.vinz.$$.tmp\"; ln -- ");
				vz_node_sh_quote(&s, src);
				vz_buf_puts(&s, " \"$t\" && { [ -d \"$p\" ] && [ ! -L \"$p\" ] && rmdir -- \"$p\"; "
					    "mv -f -T -- \"$t\" \"$p\"; } || { rm -f -- \"$t\"; exit 1; }");
				if ((rc = do_sh(ctx, &s, "hard-linking", path, &err)) != 0)
					goto fail;
			}
		} else {
			if (!force && !sst.exists) {
				json_object_set_new(r, "path", json_string(path));
				vz_pbmod_failed(r, "src file does not exist, use \"force=yes\" if you really want "
						"to create the link: %s", absrc);
				free(absrc);
				goto out;
			}
			free(absrc);
			if (st.type == 'd') {
				if (!force) {
					vz_pbmod_failed(r, "refusing to convert from directory to symlink for %s", path);
					goto out;
				}
			} else if ((st.type == 'f' || st.type == '?') && st.exists && !force) {
				vz_pbmod_failed(r, "refusing to convert from %s to symlink for %s", prev, path);
				goto out;
			}
			changed = st.type != 'l' || !st.lnk_target || strcmp(st.lnk_target, src);
			if (changed) {
				vz_buf_puts(&s, "p=");
				vz_node_sh_quote(&s, path);
				vz_buf_puts(&s, "; t=\"${p%/}.vinz.$$.tmp\"\n"
					    "if [ -d \"$p\" ] && [ ! -L \"$p\" ]; then rmdir -- \"$p\" || { echo "
					    "\"the directory $p is not empty, refusing to convert it\" >&2; exit 1; }; fi\n"
					    "ln -s -- ");
				vz_node_sh_quote(&s, src);
				vz_buf_puts(&s, " \"$t\" && mv -f -T -- \"$t\" \"$p\" || { rm -f -- \"$t\"; exit 1; }");
				if ((rc = do_sh(ctx, &s, "linking", path, &err)) != 0)
					goto fail;
			}
		}
		if (follow && (mode || owner || group)) {
			if ((rc = vz_pbmod_attrs(&ch, ctx, path, mode, owner, group, 0, &err)) != 0)
				goto fail;
			changed |= ch;
		}
	} else {
		vz_pbmod_failed(r, "value of state must be one of: absent, directory, file, hard, link, "
				"touch, got: %s", state);
		goto out;
	}
	if (strcmp(state, "absent") && (rc = add_info(r, ctx, path, &err)) != 0)
		goto fail;
	json_object_set_new(r, "changed", json_boolean(changed));
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	vz_pbmod_st_free(&st);
	vz_pbmod_st_free(&sst);
	vz_buf_free(&s);
	free(mode);
	return vz_pbmod_done(result, ctx, r, rc);
}

const vz_pbmod vz_pbmod_file = { "file", run, check, 0, 0 };
