/* vz_pbmod_copy: ansible.builtin.copy, natively. One file (src or content): compared by sha1
 * with the node's copy and sent through stdin into a temp file renamed over dest. A directory:
 * one query for the node's side of every entry, then one tar stream of what differs into
 * `tar -x`. remote_src: cp on the node. Also holds the one-file transfer template uses. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vz_pbmod_util.h"
#include "vz_util.h"

static const char *const opts[] = { "src", "content", "dest", "mode", "directory_mode", "force",
				    "remote_src", "local_follow", "follow", "owner", "group", "backup",
				    "decrypt", "checksum", "unsafe_writes", "attributes", "attr",
				    "selevel", "serole", "setype", "seuser", "validate", NULL };

static int check(const json_t *args, vz_err *e)
{
	return vz_pbmod_args_known(args, "copy", opts, e);
}

void vz_pbmod_sh_mkdirs(vz_buf *s, const char *var, const char *mode)
{
	vz_buf_printf(s, "case ${%s} in /*) c=/ ;; *) c= ;; esac\n"
		      "rest=${%s}\nwhile [ -n \"$rest\" ]; do\n"
		      "  part=${rest%%%%/*}; case $rest in */*) rest=${rest#*/} ;; *) rest= ;; esac\n"
		      "  [ -z \"$part\" ] && continue\n"
		      "  c=${c:+${c%%/}/}$part\n"
		      "  if [ ! -e \"$c\" ]; then mkdir -- \"$c\" || exit 1\n", var, var);
	if (mode) {
		vz_buf_puts(s, "    chmod ");
		vz_node_sh_quote(s, mode);
		vz_buf_puts(s, " -- \"$c\" || exit 1\n");
	}
	vz_buf_puts(s, "  fi\ndone\n");
}

int vz_pbmod_put_file(json_t *r, const vz_pbmod_ctx *ctx, const void *data, size_t len,
		      const char *dest, const vz_pbmod_put *o, vz_err *e)
{
	vz_pbmod_st st = { 0 };
	vz_buf s = VZ_BUF_INIT(1 << 20);
	vz_pbmod_run run = { 0 };
	vz_err err = { 0 };
	char sha[41], md5[33];
	char *target = NULL, *into = NULL;
	int rc = 0, changed = 0, ch = 0, restat = 1;

	if (len > VZ_PBMOD_MAX_FILE) {
		vz_pbmod_failed(r, "%s: the file is %zu bytes, over the %zu MiB a task may ship", dest, len,
				VZ_PBMOD_MAX_FILE >> 20);
		goto out;
	}
	vz_pbmod_sha1(sha, data, len);
	if ((rc = vz_pbmod_node_stat(&st, ctx, dest, 0, o->force, &err)) != 0)
		goto fail;
	if (st.exists && st.target_dir) {
		/* an existing directory (or a link to one) receives the file under its own name */
		if (!o->into_name) {
			vz_pbmod_failed(r, "can not use content with a dir as dest");
			goto out;
		}
		into = vz_path_join(dest, o->into_name);
		dest = into;
		vz_pbmod_st_free(&st);
		if ((rc = vz_pbmod_node_stat(&st, ctx, dest, 0, o->force, &err)) != 0)
			goto fail;
	}
	if (st.type == 'l' && o->follow && st.lnk_source && *st.lnk_source) {
		/* write through the link, to where it resolves (Ansible: realpath) */
		target = vz_xstrdup(st.lnk_source);
		dest = target;
		vz_pbmod_st_free(&st);
		if ((rc = vz_pbmod_node_stat(&st, ctx, dest, 0, o->force, &err)) != 0)
			goto fail;
	}
	if (st.exists && !o->force) {
		json_object_set_new(r, "dest", json_string(dest));
		if (o->src)
			json_object_set_new(r, "src", json_string(o->src));
		goto done;
	}
	if (!st.exists || strcmp(st.sha1, sha)) {
		vz_buf_puts(&s, "d=");
		vz_node_sh_quote(&s, dest);
		vz_buf_puts(&s, "\ndir=$(dirname -- \"$d\")\n");
		if (o->mkparents)
			vz_pbmod_sh_mkdirs(&s, "dir", o->dir_mode);
		vz_buf_puts(&s, "[ -d \"$dir\" ] || { echo \"Destination directory $dir does not exist\" >&2; exit 2; }\n"
			    "t=$(mktemp \"$dir/.vinz.XXXXXXXX\") || exit 3\n"
			    "cat > \"$t\" || { rm -f -- \"$t\"; exit 3; }\n"
			    "if [ -e \"$d\" ] && [ ! -L \"$d\" ]; then m=$(stat -c %a -- \"$d\")\n"
			    "else m=$(printf %o $(( 0666 & ~0$(umask) ))); fi\n"
			    "chmod \"$m\" \"$t\" || { rm -f -- \"$t\"; exit 3; }\n");
		if (o->mode && strcmp(o->mode, "preserve")) {
			vz_buf_puts(&s, "chmod ");
			vz_node_sh_quote(&s, o->mode);
			vz_buf_puts(&s, " \"$t\" || { rm -f -- \"$t\"; exit 5; }\n");
		}
		vz_buf_puts(&s, "mv -f -T -- \"$t\" \"$d\" || { rm -f -- \"$t\"; exit 4; }\n");
		/* and the new file's stat in the same round trip */
		vz_pbmod_stat_sh(&s, 0, 0);
		vz_buf_puts(&s, "echo @@VZST@@\nvzst \"$d\"\n");
		if ((rc = vz_pbmod_sh(&run, ctx, vz_buf_cstr(&s), data, len, 65536, &err)) != 0)
			goto fail;
		if (run.status != 0) {
			const char *why = vz_buf_cstr(&run.err);
			if (run.status == 2)
				vz_pbmod_failed(r, "%s", why[0] ? why : "Destination directory does not exist");
			else
				vz_pbmod_failed(r, "%s %s on the node failed (exit %d): %.400s", run.status == 5 ?
						"chmod of" : "writing", dest, run.status, why);
			goto out;
		}
		changed = 1;
		char *mark = strstr(vz_buf_cstr(&run.out), "@@VZST@@\n");
		vz_pbmod_st_free(&st);
		if (mark && vz_pbmod_stat_parse(&st, mark + 9, dest, &err) == 0)
			restat = 0;
		vz_pbmod_md5(md5, data, len);
		json_object_set_new(r, "md5sum", json_string(md5));
		if (o->src)
			json_object_set_new(r, "src", json_string(o->src));
	} else {
		json_object_set_new(r, "path", json_string(dest));
		if (o->mode && strcmp(o->mode, "preserve") &&
		    (rc = vz_pbmod_attrs(&ch, ctx, dest, o->mode, NULL, NULL, 0, &err)) != 0)
			goto fail;
		changed |= ch;
		restat = ch; /* unchanged: the first stat still describes the file */
	}
	if ((o->owner || o->group) && (rc = vz_pbmod_attrs(&ch, ctx, dest, NULL, o->owner, o->group, 0, &err)))
		goto fail;
	changed |= ch;
	restat |= ch;
	if (restat) {
		vz_pbmod_st_free(&st);
		if ((rc = vz_pbmod_node_stat(&st, ctx, dest, 0, 0, &err)) != 0)
			goto fail;
	}
	vz_pbmod_path_info(r, &st);
	json_object_set_new(r, "checksum", json_string(sha));
	json_object_set_new(r, "dest", json_string(dest));
done:
	json_object_set_new(r, "changed", json_boolean(changed));
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	free(target);
	free(into);
	vz_pbmod_st_free(&st);
	vz_pbmod_run_free(&run);
	vz_buf_free(&s);
	return rc;
}

/* A local directory to the node: see the file comment. */
static int copy_tree(json_t *r, const vz_pbmod_ctx *ctx, const char *local, const char *src_arg,
		     const char *dest, const char *mode, const char *dir_mode, int follow, int force,
		     vz_err *e)
{
	vz_pbmod_tree t = { 0 };
	vz_buf base = VZ_BUF_INIT(65536), list = VZ_BUF_INIT((size_t)64 << 20),
	       s = VZ_BUF_INIT(1 << 20), tar = VZ_BUF_INIT(VZ_PBMOD_MAX_FILE + (64u << 20)),
	       data = VZ_BUF_INIT(VZ_PBMOD_MAX_FILE), fl = VZ_BUF_INIT((size_t)64 << 20),
	       dl = VZ_BUF_INIT((size_t)64 << 20);
	vz_pbmod_run run = { 0 };
	vz_err err = { 0 };
	char **remote = NULL;
	unsigned umask_v = 022;
	int rc = 0, changed = 0, sent = 0;

	if ((rc = vz_pbmod_tree_walk(&t, ctx, local, follow, &err)) != 0)
		goto fail;
	/* names as Ansible's _walk_dirs gives them: with the source's own name unless src ends in / */
	const char *prefix = vz_pbmod_ends_slash(src_arg) ? "" : vz_pbmod_base_name(local);
	vz_buf_puts(&base, dest);
	if (!vz_pbmod_ends_slash(dest))
		vz_buf_putc(&base, '/');
	/* without the slash the source dir itself is an entry too (created, given directory_mode) */
	if (*prefix) {
		struct stat rs;
		if (stat(local, &rs) != 0) {
			rc = vz_err_set(&err, VZ_EIO, "cannot stat %s", local);
			goto fail;
		}
		vz_pbmod_ent root = { .rel = vz_xstrdup(""), .abs = vz_xstrdup(local), .type = 'd',
				      .mode = rs.st_mode & 07777 };
		if (t.n == t.alloc) {
			vz_pbmod_ent *v = realloc(t.v, (t.alloc + 1) * sizeof(*v));
			if (!v) {
				free(root.rel);
				free(root.abs);
				rc = vz_err_set(&err, VZ_ENOMEM, "out of memory copying %s", local);
				goto fail;
			}
			t.v = v;
			t.alloc++;
		}
		memmove(&t.v[1], &t.v[0], t.n * sizeof(*t.v));
		t.v[0] = root;
		t.n++;
	}
	remote = calloc(t.n + 1, sizeof(*remote));
	if (!remote) {
		rc = vz_err_set(&err, VZ_ENOMEM, "out of memory copying %s", local);
		goto fail;
	}
	/* the node's side of each entry: one line per path */
	for (size_t i = 0; i < t.n; i++) {
		if (strchr(t.v[i].rel, '\n')) {
			vz_pbmod_failed(r, "%s: file names with a newline are not supported", t.v[i].abs);
			goto out;
		}
		vz_buf_printf(&list, "%s%s%s\n", prefix, *prefix && *t.v[i].rel ? "/" : "", t.v[i].rel);
	}
	vz_buf_puts(&s, "cd -- ");
	vz_node_sh_quote(&s, vz_buf_cstr(&base));
	vz_buf_puts(&s, " 2>/dev/null || { umask; while IFS= read -r f; do echo -; done; exit 0; }\numask\n"
		    "while IFS= read -r f; do\n"
		    "  if [ -L \"$f\" ]; then echo \"l $(readlink -- \"$f\")\"\n"
		    "  elif [ -d \"$f\" ]; then echo d\n"
		    "  elif [ -f \"$f\" ]; then echo \"f $(stat -c %a -- \"$f\") $(sha1sum < \"$f\" | cut -c1-40)\"\n"
		    "  elif [ -e \"$f\" ]; then echo o; else echo -; fi\ndone\n");
	if ((rc = vz_pbmod_sh(&run, ctx, vz_buf_cstr(&s), list.ptr, list.len, (size_t)64 << 20, &err)) != 0)
		goto fail;
	if (run.status != 0 || run.overflow) {
		vz_pbmod_failed(r, "cannot inspect %s on the node: %.300s", vz_buf_cstr(&base),
				vz_buf_cstr(&run.err));
		goto out;
	}
	{
		char *p = run.out.ptr ? run.out.ptr : (char *)"";
		char *nl = strchr(p, '\n');
		if (nl) {
			*nl = '\0';
			umask_v = (unsigned)strtoul(p, NULL, 8) & 0777;
			p = nl + 1;
		}
		for (size_t i = 0; i < t.n; i++) {
			nl = strchr(p, '\n');
			if (!nl) {
				rc = vz_err_set(&err, VZ_EPROTO, "short answer from the node about %s",
						vz_buf_cstr(&base));
				goto fail;
			}
			*nl = '\0';
			remote[i] = p;
			p = nl + 1;
		}
	}
	for (size_t i = 0; i < t.n; i++) {
		vz_pbmod_ent *x = &t.v[i];
		char name[8192];
		snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix && *x->rel ? "/" : "", x->rel);
		const char *rm = remote[i];
		if (x->type == 'd') {
			if (rm[0] != 'd') {
				if (rm[0] != '-') {
					vz_pbmod_failed(r, "%s%s exists on the node and is not a directory",
							vz_buf_cstr(&base), name);
					goto out;
				}
				if ((rc = vz_pbmod_tar_add(&tar, name, 'd', 0777 & ~umask_v, 0, NULL, 0, NULL, &err)))
					goto fail;
				changed = sent = 1;
			}
			vz_buf_printf(&dl, "%s\n", name);
		} else if (x->type == 'l') {
			if (rm[0] != 'l' || strcmp(rm + 2, x->link)) {
				if ((rc = vz_pbmod_tar_add(&tar, name, 'l', 0777, 0, NULL, 0, x->link, &err)))
					goto fail;
				changed = sent = 1;
			}
		} else {
			char sha[41];
			unsigned m = 0666 & ~umask_v;
			vz_buf_reset(&data);
			if ((rc = vz_read_file(x->abs, VZ_PBMOD_MAX_FILE, &data, &err)) != 0)
				goto fail;
			vz_pbmod_sha1(sha, data.ptr, data.len);
			if (rm[0] == 'f') {
				const char *sp = strchr(rm + 2, ' ');
				m = (unsigned)strtoul(rm + 2, NULL, 8);
				if (!force || (sp && !strcmp(sp + 1, sha))) {
					vz_buf_printf(&fl, "%s\n", name);
					continue;
				}
			} else if (rm[0] != '-' && !force) {
				continue;
			}
			if ((rc = vz_pbmod_tar_add(&tar, name, 'f', m, 0, data.ptr, data.len, NULL, &err)))
				goto fail;
			vz_buf_printf(&fl, "%s\n", name);
			changed = sent = 1;
		}
	}
	vz_buf_reset(&s);
	vz_buf_puts(&s, "b=");
	vz_node_sh_quote(&s, vz_buf_cstr(&base));
	vz_buf_putc(&s, '\n');
	vz_pbmod_sh_mkdirs(&s, "b", dir_mode);
	vz_buf_puts(&s, "cd -- \"$b\" || exit 1\n");
	if (sent) {
		if ((rc = vz_pbmod_tar_end(&tar, &err)) != 0)
			goto fail;
		vz_buf_puts(&s, "tar -x -p -m --no-same-owner -f - || exit 1\n");
	}
	vz_pbmod_run_free(&run);
	if ((rc = vz_pbmod_sh(&run, ctx, vz_buf_cstr(&s), tar.ptr, tar.len, 65536, &err)) != 0)
		goto fail;
	if (run.status != 0) {
		vz_pbmod_failed(r, "copying into %s on the node failed: %.400s", vz_buf_cstr(&base),
				vz_buf_cstr(&run.err));
		goto out;
	}
	/* mode for every file, directory_mode for every directory, as Ansible's per-entry calls */
	for (int pass = 0; pass < 2; pass++) {
		const char *m = pass == 0 ? mode : dir_mode;
		vz_buf *names = pass == 0 ? &fl : &dl;
		if (!m || !strcmp(m, "preserve") || !names->len)
			continue;
		vz_buf_reset(&s);
		vz_buf_puts(&s, "cd -- ");
		vz_node_sh_quote(&s, vz_buf_cstr(&base));
		vz_buf_puts(&s, " || exit 1\nwhile IFS= read -r f; do a=$(stat -c %a -- \"$f\"); chmod ");
		vz_node_sh_quote(&s, m);
		vz_buf_puts(&s, " -- \"$f\" || exit 5; [ \"$a\" = \"$(stat -c %a -- \"$f\")\" ] || echo c; done\n");
		vz_pbmod_run_free(&run);
		if ((rc = vz_pbmod_sh(&run, ctx, vz_buf_cstr(&s), names->ptr, names->len, 1 << 20, &err)) != 0)
			goto fail;
		if (run.status != 0) {
			vz_pbmod_failed(r, "chmod in %s on the node failed: %.400s", vz_buf_cstr(&base),
					vz_buf_cstr(&run.err));
			goto out;
		}
		if (run.out.len)
			changed = 1;
	}
	json_object_set_new(r, "dest", json_string(vz_buf_cstr(&base)));
	json_object_set_new(r, "src", json_string(src_arg));
	json_object_set_new(r, "changed", json_boolean(changed));
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	free(remote);
	vz_pbmod_tree_free(&t);
	vz_pbmod_run_free(&run);
	vz_buf_free(&base);
	vz_buf_free(&list);
	vz_buf_free(&s);
	vz_buf_free(&tar);
	vz_buf_free(&data);
	vz_buf_free(&fl);
	vz_buf_free(&dl);
	return rc;
}

/* src and dest both on the node. */
static int copy_remote(json_t *r, const vz_pbmod_ctx *ctx, const char *src, const char *dest,
		       const char *mode, int force, vz_err *e)
{
	vz_buf s = VZ_BUF_INIT(1 << 20);
	vz_pbmod_run run = { 0 };
	vz_pbmod_st st = { 0 };
	vz_err err = { 0 };
	int rc = 0, ch = 0;

	vz_buf_puts(&s, "s=");
	vz_node_sh_quote(&s, src);
	vz_buf_puts(&s, "; d=");
	vz_node_sh_quote(&s, dest);
	vz_buf_printf(&s, "; force=%d\n", force);
	vz_buf_puts(&s,
		"[ -e \"$s\" ] || { echo \"Source $s not found\" >&2; exit 2; }\n"
		"[ -r \"$s\" ] || { echo \"Source $s not readable\" >&2; exit 2; }\n"
		"if [ -d \"$s\" ]; then\n"
		"  snap() { [ -e \"$d\" ] && find \"$d\" -exec stat -c '%a %s %F %n' {} + 2>/dev/null | sort | cksum; "
		"find \"$d\" -type f -exec sha1sum {} + 2>/dev/null | sort | cksum; }\n"
		"  a=$(snap)\n"
		"  case $s in */) mkdir -p -- \"$d\" && cp -R -- \"$s\". \"$d\" || exit 1 ;;\n"
		"  *) mkdir -p -- \"$d\" && cp -R -- \"$s\" \"$d\" || exit 1 ;; esac\n"
		"  [ \"$a\" = \"$(snap)\" ] || echo changed; echo \"D $d\"; exit 0\nfi\n"
		"case $d in */) mkdir -p -- \"$d\" ;; esac\n"
		"[ -d \"$d\" ] && d=\"${d%/}/$(basename -- \"$s\")\"\n"
		"echo \"D $d\"\n"
		"if [ -e \"$d\" ] && [ \"$force\" = 0 ]; then exit 0; fi\n"
		"if [ -f \"$d\" ] && [ ! -L \"$d\" ] && [ \"$(sha1sum < \"$s\")\" = \"$(sha1sum < \"$d\")\" ]; then exit 0; fi\n"
		"dir=$(dirname -- \"$d\")\n"
		"[ -d \"$dir\" ] || { echo \"Destination directory $dir does not exist\" >&2; exit 2; }\n"
		"t=$(mktemp \"$dir/.vinz.XXXXXXXX\") || exit 3\n"
		"cp -- \"$s\" \"$t\" || { rm -f -- \"$t\"; exit 3; }\n"
		"if [ -e \"$d\" ] && [ ! -L \"$d\" ]; then m=$(stat -c %a -- \"$d\")\n"
		"else m=$(printf %o $(( 0666 & ~0$(umask) ))); fi\n"
		"chmod \"$m\" \"$t\" && mv -f -T -- \"$t\" \"$d\" || { rm -f -- \"$t\"; exit 3; }\n"
		"echo changed\n");
	if ((rc = vz_pbmod_sh(&run, ctx, vz_buf_cstr(&s), NULL, 0, 65536, &err)) != 0)
		goto fail;
	if (run.status != 0) {
		vz_pbmod_failed(r, "%s", run.status == 2 ? vz_buf_cstr(&run.err) : "copying on the node failed");
		if (run.status != 2)
			json_object_set_new(r, "stderr", json_string(vz_buf_cstr(&run.err)));
		goto out;
	}
	const char *o = vz_buf_cstr(&run.out), *dl = strstr(o, "D ");
	char *real_dest = NULL;
	if (dl) {
		const char *end = strchr(dl, '\n');
		real_dest = strndup(dl + 2, end ? (size_t)(end - dl - 2) : strlen(dl + 2));
	}
	int changed = !strncmp(o, "changed", 7) || strstr(o, "\nchanged") != NULL;
	const char *dd = real_dest ? real_dest : dest;
	if (mode && strcmp(mode, "preserve")) {
		rc = vz_pbmod_attrs(&ch, ctx, dd, mode, NULL, NULL, 0, &err);
		changed |= ch;
	}
	if (rc == 0)
		rc = vz_pbmod_node_stat(&st, ctx, dd, 0, 1, &err);
	if (rc == 0) {
		vz_pbmod_path_info(r, &st);
		if (st.sha1[0])
			json_object_set_new(r, "checksum", json_string(st.sha1));
		json_object_set_new(r, "dest", json_string(dd));
		json_object_set_new(r, "src", json_string(src));
		json_object_set_new(r, "changed", json_boolean(changed));
	}
	free(real_dest);
	if (rc)
		goto fail;
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	vz_pbmod_st_free(&st);
	vz_pbmod_run_free(&run);
	vz_buf_free(&s);
	return rc;
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	static const char *const src_keys[] = { "src", NULL };
	static const char *const dest_keys[] = { "dest", NULL };
	static const char *const own_keys[] = { "owner", NULL };
	static const char *const grp_keys[] = { "group", NULL };
	json_t *r = json_object();
	vz_buf data = VZ_BUF_INIT(VZ_PBMOD_MAX_FILE);
	vz_err err = { 0 };
	const char *src, *dest, *owner, *group;
	char b1[64], b2[64], b3[64], b4[64];
	char *mode = NULL, *dmode = NULL, *local = NULL, *content_json = NULL, *dest_file = NULL;
	int force, remote_src, follow, dfollow, backup, rc = 0;
	const json_t *content = json_object_get(args, "content");

	json_object_set_new(r, "changed", json_false());
	if ((rc = check(args, &err)) || (rc = vz_pbmod_arg_str(&src, args, src_keys, b1, sizeof(b1), &err)) ||
	    (rc = vz_pbmod_arg_str(&dest, args, dest_keys, b2, sizeof(b2), &err)) ||
	    (rc = vz_pbmod_arg_str(&owner, args, own_keys, b3, sizeof(b3), &err)) ||
	    (rc = vz_pbmod_arg_str(&group, args, grp_keys, b4, sizeof(b4), &err)) ||
	    (rc = vz_pbmod_arg_bool(&force, args, "force", 1, &err)) ||
	    (rc = vz_pbmod_arg_bool(&remote_src, args, "remote_src", 0, &err)) ||
	    (rc = vz_pbmod_arg_bool(&follow, args, "local_follow", 1, &err)) ||
	    (rc = vz_pbmod_arg_bool(&dfollow, args, "follow", 0, &err)) ||
	    (rc = vz_pbmod_arg_bool(&backup, args, "backup", 0, &err)) ||
	    (rc = vz_pbmod_arg_mode(&mode, args, "mode", &err)) ||
	    (rc = vz_pbmod_arg_mode(&dmode, args, "directory_mode", &err)))
		goto fail;
	if (content && json_is_null(content))
		content = NULL;
	if (!src && !content) {
		vz_pbmod_failed(r, "src (or content) is required");
		goto out;
	}
	if (!dest || !*dest) {
		vz_pbmod_failed(r, "dest is required");
		goto out;
	}
	if (src && content) {
		vz_pbmod_failed(r, "src and content are mutually exclusive");
		goto out;
	}
	if (content && vz_pbmod_ends_slash(dest)) {
		vz_pbmod_failed(r, "can not use content with a dir as dest");
		goto out;
	}
	if (backup) {
		vz_pbmod_failed(r, "backup=yes is not supported by vinz's copy: back the file up with a "
				"copy (remote_src) task first");
		goto out;
	}
	if (json_object_get(args, "validate")) {
		vz_pbmod_failed(r, "validate is not supported by vinz's copy");
		goto out;
	}
	if (remote_src && !content) {
		rc = copy_remote(r, ctx, src, dest, mode, force, e);
		goto out;
	}
	vz_pbmod_put o = { .mode = mode, .owner = owner, .group = group, .dir_mode = dmode,
			   .force = force, .mkparents = vz_pbmod_ends_slash(dest), .follow = dfollow };
	if (content) {
		if (json_is_string(content)) {
			vz_buf_add(&data, json_string_value(content), json_string_length(content));
		} else if (json_is_object(content) || json_is_array(content)) {
			content_json = json_dumps(content, JSON_ENCODE_ANY);
			vz_buf_puts(&data, content_json ? content_json : "");
		} else {
			char num[64];
			const char *cs;
			static const char *const ck[] = { "content", NULL };
			if ((rc = vz_pbmod_arg_str(&cs, args, ck, num, sizeof(num), &err)) != 0)
				goto fail;
			vz_buf_puts(&data, cs);
		}
		if (data.failed) {
			vz_pbmod_failed(r, "content is over %zu MiB", VZ_PBMOD_MAX_FILE >> 20);
			goto out;
		}
		rc = vz_pbmod_put_file(r, ctx, data.ptr, data.len, dest, &o, e); /* into_name NULL */
		goto out;
	}
	if ((rc = vz_pbmod_find_src(&local, ctx, src, "files", &err)) != 0)
		goto fail;
	struct stat sb;
	if (stat(local, &sb) != 0) {
		vz_pbmod_failed(r, "could not find src=%s", local);
		goto out;
	}
	if (S_ISDIR(sb.st_mode)) {
		rc = copy_tree(r, ctx, local, src, dest, mode, dmode, follow, force, e);
		goto out;
	}
	if ((uint64_t)sb.st_size > VZ_PBMOD_MAX_FILE) {
		vz_pbmod_failed(r, "%s is %lld bytes, over the %zu MiB a task may ship to a node", src,
				(long long)sb.st_size, VZ_PBMOD_MAX_FILE >> 20);
		goto out;
	}
	if (mode && !strcmp(mode, "preserve")) {
		free(mode);
		char m[16];
		snprintf(m, sizeof(m), "%04o", (unsigned)(sb.st_mode & 07777));
		o.mode = mode = vz_xstrdup(m);
	}
	if ((rc = vz_read_file(local, VZ_PBMOD_MAX_FILE, &data, &err)) != 0) {
		if (rc == VZ_ETOOBIG) {
			vz_err_clear(&err);
			vz_err_set(&err, VZ_ETOOBIG, "%s is over the %zu MiB a task may ship to a node", src,
				   VZ_PBMOD_MAX_FILE >> 20);
		}
		goto fail;
	}
	/* dest/ or an existing directory: the file goes inside it under its own name */
	if (vz_pbmod_ends_slash(dest))
		dest_file = vz_path_join(dest, vz_pbmod_base_name(local));
	o.into_name = vz_pbmod_base_name(local);
	o.src = local;
	rc = vz_pbmod_put_file(r, ctx, data.ptr, data.len, dest_file ? dest_file : dest, &o, e);
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	free(mode);
	free(dmode);
	free(local);
	free(content_json);
	free(dest_file);
	vz_buf_free(&data);
	return vz_pbmod_done(result, ctx, r, rc);
}

const vz_pbmod vz_pbmod_copy = { "copy", run, check, 0, 0 };
