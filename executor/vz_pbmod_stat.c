/* vz_pbmod_stat: ansible.builtin.stat, natively. One sh script on the node (stat, sha1sum,
 * readlink from coreutils) answers everything; see docs/modules.md. */
#include <stdlib.h>
#include <string.h>

#include "vz_pbmod_util.h"

static const char *const opts[] = { "path", "dest", "name", "follow", "get_checksum",
				    "checksum_algorithm", "checksum", "checksum_algo", "get_mime",
				    "mime", "mime_type", "mime-type", "get_attributes", "attr",
				    "attributes", NULL };

static int check(const json_t *args, vz_err *e)
{
	return vz_pbmod_args_known(args, "stat", opts, e);
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	static const char *const path_keys[] = { "path", "dest", "name", NULL };
	static const char *const algo_keys[] = { "checksum_algorithm", "checksum", "checksum_algo", NULL };
	json_t *r = json_object(), *s = NULL;
	vz_pbmod_st st = { 0 };
	vz_err err = { 0 };
	const char *path, *algo;
	char b1[64], b2[64], m[8];
	int follow, want_sum, rc = 0;

	json_object_set_new(r, "changed", json_false());
	if (check(args, &err) || vz_pbmod_arg_str(&path, args, path_keys, b1, sizeof(b1), &err) ||
	    vz_pbmod_arg_str(&algo, args, algo_keys, b2, sizeof(b2), &err) ||
	    vz_pbmod_arg_bool(&follow, args, "follow", 0, &err) ||
	    vz_pbmod_arg_bool(&want_sum, args, "get_checksum", 1, &err)) {
		vz_pbmod_failed(r, "%s", vz_err_msg(&err));
		goto out;
	}
	if (!path) {
		vz_pbmod_failed(r, "missing required arguments: path");
		goto out;
	}
	if (algo && strcmp(algo, "sha1")) {
		vz_pbmod_failed(r, "checksum_algorithm %s is not supported by vinz: only sha1 (the default)",
			      algo);
		goto out;
	}
	if ((rc = vz_pbmod_node_stat(&st, ctx, path, follow, want_sum, &err)) != 0) {
		if (vz_pbmod_fatal(rc)) {
			vz_err_set(e, rc, "%s", vz_err_msg(&err));
			goto out;
		}
		rc = 0;
		vz_pbmod_failed(r, "%s", vz_err_msg(&err));
		goto out;
	}
	s = json_object();
	json_object_set_new(s, "exists", json_boolean(st.exists));
	if (st.exists) {
		unsigned md = st.mode;
		json_object_set_new(s, "path", json_string(path));
		json_object_set_new(s, "mode", json_string(vz_pbmod_mode_str(m, md)));
		json_object_set_new(s, "isdir", json_boolean(st.type == 'd'));
		json_object_set_new(s, "ischr", json_boolean(st.type == 'c'));
		json_object_set_new(s, "isblk", json_boolean(st.type == 'b'));
		json_object_set_new(s, "isreg", json_boolean(st.type == 'f'));
		json_object_set_new(s, "isfifo", json_boolean(st.type == 'p'));
		json_object_set_new(s, "islnk", json_boolean(st.type == 'l'));
		json_object_set_new(s, "issock", json_boolean(st.type == 's'));
		json_object_set_new(s, "uid", json_integer(st.uid));
		json_object_set_new(s, "gid", json_integer(st.gid));
		json_object_set_new(s, "size", json_integer((json_int_t)st.size));
		json_object_set_new(s, "inode", json_integer((json_int_t)st.inode));
		json_object_set_new(s, "dev", json_integer((json_int_t)st.dev));
		json_object_set_new(s, "nlink", json_integer((json_int_t)st.nlink));
		json_object_set_new(s, "atime", json_real(st.atime));
		json_object_set_new(s, "mtime", json_real(st.mtime));
		json_object_set_new(s, "ctime", json_real(st.ctime));
		json_object_set_new(s, "wusr", json_boolean(md & 0200));
		json_object_set_new(s, "rusr", json_boolean(md & 0400));
		json_object_set_new(s, "xusr", json_boolean(md & 0100));
		json_object_set_new(s, "wgrp", json_boolean(md & 020));
		json_object_set_new(s, "rgrp", json_boolean(md & 040));
		json_object_set_new(s, "xgrp", json_boolean(md & 010));
		json_object_set_new(s, "woth", json_boolean(md & 02));
		json_object_set_new(s, "roth", json_boolean(md & 04));
		json_object_set_new(s, "xoth", json_boolean(md & 01));
		json_object_set_new(s, "isuid", json_boolean(md & 04000));
		json_object_set_new(s, "isgid", json_boolean(md & 02000));
		json_object_set_new(s, "pw_name", json_string(st.owner));
		json_object_set_new(s, "gr_name", json_string(st.group));
		json_object_set_new(s, "readable", json_boolean(st.readable));
		json_object_set_new(s, "writeable", json_boolean(st.writeable));
		json_object_set_new(s, "executable", json_boolean(st.executable));
		if (st.type == 'l') {
			json_object_set_new(s, "lnk_source", json_string(st.lnk_source ? st.lnk_source : ""));
			json_object_set_new(s, "lnk_target", json_string(st.lnk_target ? st.lnk_target : ""));
		}
		if (st.sha1[0])
			json_object_set_new(s, "checksum", json_string(st.sha1));
	}
	json_object_set_new(r, "stat", s);
out:
	vz_pbmod_st_free(&st);
	return vz_pbmod_done(result, ctx, r, rc);
}

const vz_pbmod vz_pbmod_stat = { "stat", run, check, 0, 0 };
