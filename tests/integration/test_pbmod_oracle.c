/* test_pbmod_oracle: the native file/transfer modules (copy, template, file, stat, fetch,
 * synchronize, lineinfile, wait_for, script) against Ansible as the oracle. One real sshd on
 * loopback; every case runs twice through ansible-playbook (one playbook for all cases, json
 * callback, host key checked) in <work>/ansible/<case> and twice through the module's run
 * function over a vz_node in <work>/vinz/<case>; then the failed/changed flags of both runs, the
 * key result fields and the files left on the node (and fetched to the executor) must agree.
 * Cases Ansible cannot judge (confinement, size caps, no_log) are checked against what vinz
 * documents. Prints the agreement count; any disagreement fails the test.
 * VZ_PBMOD_CASES=prefix,... runs some cases; VZ_PBMOD_NO_ORACLE=1 times the vinz side alone
 * (comparing nothing); VZ_PBMOD_PLAYBOOKS=N runs Ansible as N processes (1..6, default 6);
 * VZ_KEEP=1 keeps the temp dirs. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <pthread.h>

#include "vz_node.h"
#include "vz_pbmod.h"
#include "vz_test_sshd.h"
#include "vz_testutil.h"
#include "vz_util.h"

enum {
	VINZ_ONLY = 1,   /* no oracle: expect[] says what vinz must do */
	CONFINED = 2,    /* run vinz with ctx->confine (untrusted playbook) */
	NO_TREE = 4,     /* do not compare the files left (documented difference) */
	MTIME = 8,       /* compare file mtimes too (synchronize keeps them, as rsync -a); node-side
	                  * sources are given a fixed mtime, as the two sides make them at different times */
	NO_SECOND = 16,  /* run once (the second run would only repeat a failure or a timeout) */
	NO_LOG = 32,     /* ctx->no_log */
	TIMEOUT = 128,   /* ctx->timeout_ms = 1500 */
	BECOME = 64,     /* ctx->become (the test node user has no sudo rights, or no sudo) */
};

typedef struct tcase {
	const char *id;
	const char *module;
	const char *args;    /* JSON; @D@ node case dir, @F@ executor fetch dir, @P@ sshd port */
	const char *setup;   /* sh run in the node case dir first */
	const char *fields;  /* result keys compared (space separated, "stat.mode" for nested) */
	int flags;
	const char *expect;  /* VINZ_ONLY: "failed:SUBSTRING" or "ok" */
} tcase;

#define ST "stat.exists stat.isreg stat.isdir stat.islnk stat.mode stat.size stat.checksum stat.uid stat.gid stat.path"

static const tcase cases[] = {
	/* copy */
	{ "c_file", "copy", "{\"src\": \"hello.txt\", \"dest\": \"@D@/hello.txt\"}", NULL,
	  "checksum dest mode state size", 0, NULL },
	{ "c_file_mode", "copy", "{\"src\": \"hello.txt\", \"dest\": \"@D@/h2\", \"mode\": \"0600\"}", NULL,
	  "checksum dest mode state size", 0, NULL },
	{ "c_file_mode_int", "copy", "{\"src\": \"hello.txt\", \"dest\": \"@D@/h3\", \"mode\": 493}", NULL,
	  "checksum dest mode state", 0, NULL },
	{ "c_mode_symbolic", "copy", "{\"src\": \"hello.txt\", \"dest\": \"@D@/h4\", \"mode\": \"u=rw,g=r,o=\"}",
	  NULL, "checksum mode", 0, NULL },
	{ "c_mode_preserve", "copy", "{\"src\": \"exec.sh\", \"dest\": \"@D@/e\", \"mode\": \"preserve\"}",
	  NULL, "checksum mode", 0, NULL },
	{ "c_into_dir", "copy", "{\"src\": \"hello.txt\", \"dest\": \"@D@/sub\"}", "mkdir sub",
	  "checksum dest mode", 0, NULL },
	{ "c_slash_dest", "copy", "{\"src\": \"hello.txt\", \"dest\": \"@D@/new/deeper/\"}", NULL,
	  "checksum dest", 0, NULL },
	{ "c_content", "copy", "{\"content\": \"line1\\nline2\\n\", \"dest\": \"@D@/c.txt\"}", NULL,
	  "checksum dest mode size", 0, NULL },
	{ "c_content_keeps_mode", "copy", "{\"content\": \"new\\n\", \"dest\": \"@D@/c.txt\"}",
	  "printf old > c.txt && chmod 0604 c.txt", "checksum mode", 0, NULL },
	{ "c_content_dict", "copy", "{\"content\": {\"a\": 1, \"b\": [1, \"x\"]}, \"dest\": \"@D@/j.json\"}",
	  NULL, "checksum", 0, NULL },
	{ "c_content_dirdest", "copy", "{\"content\": \"x\", \"dest\": \"@D@/d\"}", "mkdir d", "msg", 0, NULL },
	{ "c_force_no", "copy", "{\"content\": \"new\", \"dest\": \"@D@/f\", \"force\": false}",
	  "echo old > f", "", 0, NULL },
	{ "c_unchanged_mode_fix", "copy", "{\"content\": \"same\\n\", \"dest\": \"@D@/f\", \"mode\": \"0640\"}",
	  "echo same > f && chmod 0644 f", "checksum mode", 0, NULL },
	{ "c_binary", "copy", "{\"src\": \"bin.dat\", \"dest\": \"@D@/bin.dat\"}", NULL, "checksum size", 0, NULL },
	{ "c_dir_slash", "copy", "{\"src\": \"tree/\", \"dest\": \"@D@/t1\"}", NULL, "dest", 0, NULL },
	{ "c_dir_noslash", "copy", "{\"src\": \"tree\", \"dest\": \"@D@/t2/\"}", NULL, "dest", 0, NULL },
	{ "c_dir_modes", "copy", "{\"src\": \"tree\", \"dest\": \"@D@/t3\", \"mode\": \"0640\", "
	  "\"directory_mode\": \"0750\"}", NULL, "dest", 0, NULL },
	{ "c_dir_update", "copy", "{\"src\": \"tree/\", \"dest\": \"@D@/t4\"}",
	  "mkdir -p t4/sub && echo stale > t4/a.txt && echo keep > t4/other", "dest", 0, NULL },
	{ "c_remote_src", "copy", "{\"src\": \"@D@/r.txt\", \"dest\": \"@D@/r2.txt\", \"remote_src\": true}",
	  "echo remote > r.txt", "checksum dest mode", 0, NULL },
	{ "c_remote_src_missing", "copy", "{\"src\": \"@D@/nope\", \"dest\": \"@D@/r2.txt\", \"remote_src\": true}",
	  NULL, "", NO_SECOND, NULL },
	{ "c_content_empty", "copy", "{\"content\": \"\", \"dest\": \"@D@/empty\"}", NULL,
	  "checksum size mode", 0, NULL },
	{ "c_onto_link", "copy", "{\"content\": \"new\\n\", \"dest\": \"@D@/ln\"}",
	  "echo old > target && ln -s target ln", "checksum", 0, NULL },
	{ "c_onto_link_follow", "copy", "{\"content\": \"new\\n\", \"dest\": \"@D@/ln\", \"follow\": true}",
	  "echo old > target && ln -s target ln", "checksum", 0, NULL },
	{ "c_owner_same", "copy", "{\"content\": \"x\", \"dest\": \"@D@/o\", \"owner\": \"vzdnode\", "
	  "\"group\": \"vzdnode\"}", NULL, "owner group", 0, NULL },
	/* dest not compared: with exactly one file in the tree Ansible returns the result of its
	 * last per-entry call (here the link's); vinz returns the directory's */
	{ "c_dir_links_kept", "copy", "{\"src\": \"linktree/\", \"dest\": \"@D@/lt\", \"local_follow\": false}",
	  NULL, "", 0, NULL },
	{ "c_dir_links_followed", "copy", "{\"src\": \"linktree/\", \"dest\": \"@D@/lt\"}", NULL, "dest", 0, NULL },
	{ "c_missing_src", "copy", "{\"src\": \"nope.txt\", \"dest\": \"@D@/x\"}", NULL, "", NO_SECOND, NULL },
	{ "c_missing_parent", "copy", "{\"content\": \"x\", \"dest\": \"@D@/no/such/f\"}", NULL, "", NO_SECOND, NULL },
	{ "c_unknown_option", "copy", "{\"content\": \"x\", \"dest\": \"@D@/u\", \"bogus\": 1}", NULL, "",
	  NO_SECOND, NULL },
	/* Ansible creates the file before it finds the mode bad; vinz checks the mode first */
	{ "c_bad_mode", "copy", "{\"content\": \"x\", \"dest\": \"@D@/bm\", \"mode\": \"abc\"}", NULL, "",
	  NO_SECOND | NO_TREE, NULL },
	/* template */
	{ "t_basic", "template", "{\"src\": \"t.j2\", \"dest\": \"@D@/out.txt\"}", NULL,
	  "checksum dest mode size", 0, NULL },
	{ "t_mode_dir", "template", "{\"src\": \"t.j2\", \"dest\": \"@D@/sub\", \"mode\": \"0600\"}", "mkdir sub",
	  "checksum dest mode", 0, NULL },
	{ "t_crlf", "template", "{\"src\": \"t.j2\", \"dest\": \"@D@/crlf.txt\", \"newline_sequence\": \"\\\\r\\\\n\"}",
	  NULL, "checksum size", 0, NULL },
	{ "t_no_trim", "template", "{\"src\": \"t.j2\", \"dest\": \"@D@/nt.txt\", \"trim_blocks\": false}",
	  NULL, "checksum size", 0, NULL },
	{ "t_slash_dest", "template", "{\"src\": \"t.j2\", \"dest\": \"@D@/made/\"}", NULL,
	  "checksum dest", 0, NULL },
	{ "t_undefined", "template", "{\"src\": \"undef.j2\", \"dest\": \"@D@/u.txt\"}", NULL, "", NO_SECOND, NULL },
	{ "t_missing", "template", "{\"src\": \"nope.j2\", \"dest\": \"@D@/u.txt\"}", NULL, "", NO_SECOND, NULL },
	/* file */
	{ "f_dir", "file", "{\"path\": \"@D@/a/b/c\", \"state\": \"directory\", \"mode\": \"0750\"}", NULL,
	  "path mode state", 0, NULL },
	{ "f_dir_over_file", "file", "{\"path\": \"@D@/x\", \"state\": \"directory\"}", "touch x", "msg",
	  NO_SECOND, NULL },
	{ "f_file_missing", "file", "{\"path\": \"@D@/nofile\", \"state\": \"file\"}", NULL, "msg", NO_SECOND, NULL },
	{ "f_file_mode", "file", "{\"path\": \"@D@/x\", \"mode\": \"u=rw,g=r,o=\"}", "echo hi > x",
	  "path mode state size", 0, NULL },
	{ "f_file_default_state", "file", "{\"path\": \"@D@/d\", \"mode\": \"0700\"}", "mkdir d",
	  "path mode state", 0, NULL },
	{ "f_touch", "file", "{\"path\": \"@D@/t\", \"state\": \"touch\", \"mode\": \"0640\"}", NULL,
	  "dest mode state size", 0, NULL },
	{ "f_absent", "file", "{\"path\": \"@D@/d\", \"state\": \"absent\"}", "mkdir -p d/e && touch d/e/f",
	  "path state", 0, NULL },
	{ "f_link_rel", "file", "{\"path\": \"@D@/ln\", \"src\": \"target\", \"state\": \"link\"}",
	  "echo hi > target", "dest src state mode", 0, NULL },
	{ "f_link_abs", "file", "{\"path\": \"@D@/ln\", \"src\": \"@D@/target\", \"state\": \"link\"}",
	  "echo hi > target && ln -s other ln", "dest src state", 0, NULL },
	{ "f_link_missing_src", "file", "{\"path\": \"@D@/ln\", \"src\": \"nothere\", \"state\": \"link\"}",
	  NULL, "", NO_SECOND, NULL },
	{ "f_link_force", "file", "{\"path\": \"@D@/ln\", \"src\": \"nothere\", \"state\": \"link\", "
	  "\"force\": true}", NULL, "dest src", 0, NULL },
	{ "f_link_over_file", "file", "{\"path\": \"@D@/f\", \"src\": \"target\", \"state\": \"link\"}",
	  "touch f target", "msg", NO_SECOND, NULL },
	{ "f_link_over_empty_dir", "file", "{\"path\": \"@D@/d\", \"src\": \"target\", \"state\": \"link\", "
	  "\"force\": true}", "touch target && mkdir d", "dest src state", 0, NULL },
	{ "f_link_over_full_dir", "file", "{\"path\": \"@D@/d\", \"src\": \"target\", \"state\": \"link\", "
	  "\"force\": true}", "touch target && mkdir d && touch d/x", "", NO_SECOND, NULL },
	{ "f_absent_link_to_dir", "file", "{\"path\": \"@D@/ln\", \"state\": \"absent\"}",
	  "mkdir -p d && touch d/keep && ln -s d ln", "path state", 0, NULL },
	{ "f_hard", "file", "{\"path\": \"@D@/hl\", \"src\": \"@D@/target\", \"state\": \"hard\"}",
	  "echo hi > target", "dest src state mode size", 0, NULL },
	{ "f_recurse", "file", "{\"path\": \"@D@/r\", \"state\": \"directory\", \"mode\": \"0755\", "
	  "\"recurse\": true}", "mkdir -p r/s && touch r/s/f r/g && chmod 0600 r/g", "path mode", 0, NULL },
	/* Ansible creates the directory before it finds the mode bad; vinz checks the mode first */
	{ "f_bad_mode", "file", "{\"path\": \"@D@/bm\", \"state\": \"directory\", \"mode\": \"9999\"}", NULL,
	  "", NO_SECOND | NO_TREE, NULL },
	/* stat */
	{ "s_file", "stat", "{\"path\": \"@D@/f\"}", "printf abc > f && chmod 0640 f", ST, 0, NULL },
	{ "s_dir", "stat", "{\"path\": \"@D@/d\"}", "mkdir d && chmod 0711 d", ST, 0, NULL },
	{ "s_link", "stat", "{\"path\": \"@D@/l\"}", "printf abc > f && ln -s f l",
	  ST " stat.lnk_source stat.lnk_target", 0, NULL },
	{ "s_link_follow", "stat", "{\"path\": \"@D@/l\", \"follow\": true}", "printf abc > f && ln -s f l",
	  ST, 0, NULL },
	{ "s_more", "stat", "{\"path\": \"@D@/x\"}", "printf abcd > x && chmod 0750 x",
	  "stat.readable stat.writeable stat.executable stat.pw_name stat.gr_name stat.nlink stat.xusr "
	  "stat.wgrp stat.roth stat.isuid", 0, NULL },
	{ "s_missing", "stat", "{\"path\": \"@D@/none\"}", NULL, "stat.exists", 0, NULL },
	{ "s_no_checksum", "stat", "{\"path\": \"@D@/f\", \"get_checksum\": false}", "printf abc > f",
	  "stat.checksum stat.size", 0, NULL },
	/* fetch */
	{ "fe_tree", "fetch", "{\"src\": \"@D@/f.txt\", \"dest\": \"@F@/\"}", "printf data > f.txt",
	  "checksum dest remote_checksum", 0, NULL },
	{ "fe_flat", "fetch", "{\"src\": \"@D@/f.txt\", \"dest\": \"@F@/flat.txt\", \"flat\": true}",
	  "printf data > f.txt", "checksum dest", 0, NULL },
	{ "fe_flat_dir", "fetch", "{\"src\": \"@D@/f.txt\", \"dest\": \"@F@/in/\", \"flat\": true}",
	  "printf data > f.txt", "checksum dest", 0, NULL },
	{ "fe_binary", "fetch", "{\"src\": \"@D@/b\", \"dest\": \"@F@/b\", \"flat\": true}",
	  "printf '\\000\\001\\377\\n\\r' > b && for i in 1 2 3 4 5 6 7 8; do cat b b > b2 && mv b2 b; done",
	  "checksum", 0, NULL },
	{ "fe_missing", "fetch", "{\"src\": \"@D@/none\", \"dest\": \"@F@/\"}", NULL, "msg", NO_SECOND, NULL },
	{ "fe_missing_ok", "fetch", "{\"src\": \"@D@/none\", \"dest\": \"@F@/\", \"fail_on_missing\": false}",
	  NULL, "", 0, NULL },
	{ "fe_dir", "fetch", "{\"src\": \"@D@\", \"dest\": \"@F@/\"}", NULL, "msg", NO_SECOND, NULL },
	/* lineinfile */
	{ "l_add", "lineinfile", "{\"path\": \"@D@/f\", \"line\": \"c\"}", "printf 'a\\nb\\n' > f", "msg", 0, NULL },
	{ "l_present", "lineinfile", "{\"path\": \"@D@/f\", \"line\": \"a\"}", "printf 'a\\nb\\n' > f", "msg", 0, NULL },
	{ "l_replace", "lineinfile", "{\"path\": \"@D@/f\", \"regexp\": \"^port=\", \"line\": \"port=2\"}",
	  "printf 'port=1\\nhost=x\\n' > f", "msg", 0, NULL },
	{ "l_replace_last", "lineinfile", "{\"path\": \"@D@/f\", \"regexp\": \"^k=\", \"line\": \"k=9\"}",
	  "printf 'k=1\\nz\\nk=2\\n' > f", "msg", 0, NULL },
	{ "l_firstmatch", "lineinfile", "{\"path\": \"@D@/f\", \"regexp\": \"^k=\", \"line\": \"k=9\", "
	  "\"firstmatch\": true}", "printf 'k=1\\nz\\nk=2\\n' > f", "msg", 0, NULL },
	{ "l_backrefs", "lineinfile", "{\"path\": \"@D@/f\", \"regexp\": \"^host=([a-z]+)$\", "
	  "\"line\": \"host=\\\\1.example\", \"backrefs\": true}", "printf 'port=1\\nhost=x\\n' > f", "msg", 0, NULL },
	{ "l_backrefs_nomatch", "lineinfile", "{\"path\": \"@D@/f\", \"regexp\": \"^nomatch(.*)\", "
	  "\"line\": \"x\\\\1\", \"backrefs\": true}", "printf 'a\\n' > f", "msg", 0, NULL },
	{ "l_digit_class", "lineinfile", "{\"path\": \"@D@/f\", \"regexp\": \"^v\\\\d+$\", \"line\": \"v2\"}",
	  "printf 'v1\\nw\\n' > f", "msg", 0, NULL },
	{ "l_absent_re", "lineinfile", "{\"path\": \"@D@/f\", \"regexp\": \"^host\", \"state\": \"absent\"}",
	  "printf 'host=1\\nport=2\\nhost=3\\n' > f", "msg found", 0, NULL },
	{ "l_absent_line", "lineinfile", "{\"path\": \"@D@/f\", \"line\": \"b\", \"state\": \"absent\"}",
	  "printf 'a\\nb\\nc\\n' > f", "msg found", 0, NULL },
	{ "l_absent_nofile", "lineinfile", "{\"path\": \"@D@/none\", \"line\": \"b\", \"state\": \"absent\"}",
	  NULL, "msg", 0, NULL },
	{ "l_insertafter", "lineinfile", "{\"path\": \"@D@/f\", \"line\": \"x\", \"insertafter\": \"^b\"}",
	  "printf 'a\\nb\\nc\\n' > f", "msg", 0, NULL },
	{ "l_insertafter_nomatch", "lineinfile", "{\"path\": \"@D@/f\", \"line\": \"x\", \"insertafter\": \"^zz\"}",
	  "printf 'a\\n' > f", "msg", 0, NULL },
	{ "l_insertbefore", "lineinfile", "{\"path\": \"@D@/f\", \"line\": \"x\", \"insertbefore\": \"^b\"}",
	  "printf 'a\\nb\\nc\\n' > f", "msg", 0, NULL },
	{ "l_bof", "lineinfile", "{\"path\": \"@D@/f\", \"line\": \"first\", \"insertbefore\": \"BOF\"}",
	  "printf 'a\\n' > f", "msg", 0, NULL },
	{ "l_eof_noeol", "lineinfile", "{\"path\": \"@D@/f\", \"line\": \"c\", \"insertafter\": \"EOF\"}",
	  "printf 'a\\nb' > f", "msg", 0, NULL },
	{ "l_search_string", "lineinfile", "{\"path\": \"@D@/f\", \"search_string\": \"host\", \"line\": \"HOST=1\"}",
	  "printf 'a\\nhost=x\\n' > f", "msg", 0, NULL },
	{ "l_crlf", "lineinfile", "{\"path\": \"@D@/f\", \"line\": \"b\"}", "printf 'a\\r\\nb\\r\\n' > f",
	  "msg", 0, NULL },
	{ "l_regexp_nomatch", "lineinfile", "{\"path\": \"@D@/f\", \"regexp\": \"^zz=\", \"line\": \"zz=1\"}",
	  "printf 'a\\n' > f", "msg", 0, NULL },
	{ "l_through_link", "lineinfile", "{\"path\": \"@D@/ln\", \"line\": \"b\"}",
	  "printf 'a\\n' > target && ln -s target ln", "msg", 0, NULL },
	{ "l_create", "lineinfile", "{\"path\": \"@D@/new/f\", \"line\": \"x\", \"create\": true}", NULL,
	  "msg", 0, NULL },
	{ "l_missing", "lineinfile", "{\"path\": \"@D@/none\", \"line\": \"x\"}", NULL, "msg rc", NO_SECOND, NULL },
	{ "l_dir", "lineinfile", "{\"path\": \"@D@\", \"line\": \"x\"}", NULL, "rc", NO_SECOND, NULL },
	{ "l_mode", "lineinfile", "{\"path\": \"@D@/f\", \"line\": \"a\", \"mode\": \"0600\"}",
	  "printf 'a\\n' > f && chmod 0644 f", "msg", 0, NULL },
	{ "l_mode_and_line", "lineinfile", "{\"path\": \"@D@/f\", \"line\": \"b\", \"mode\": \"0600\"}",
	  "printf 'a\\n' > f && chmod 0644 f", "msg", 0, NULL },
	/* wait_for */
	{ "w_path", "wait_for", "{\"path\": \"@D@/f\", \"timeout\": 3}", "touch f", "path state mode", 0, NULL },
	{ "w_path_timeout", "wait_for", "{\"path\": \"@D@/never\", \"timeout\": 1}", NULL, "msg", NO_SECOND, NULL },
	{ "w_path_absent", "wait_for", "{\"path\": \"@D@/never\", \"state\": \"absent\", \"timeout\": 3}", NULL,
	  "path state", 0, NULL },
	{ "w_search", "wait_for", "{\"path\": \"@D@/log\", \"search_regex\": \"rea[d]y\", \"timeout\": 3}",
	  "echo 'ready now' > log", "path search_regex", 0, NULL },
	{ "w_delay", "wait_for", "{\"path\": \"@D@/f\", \"delay\": 1, \"timeout\": 4}", "touch f",
	  "path elapsed", 0, NULL },
	{ "w_port", "wait_for", "{\"host\": \"127.0.0.1\", \"port\": @P@, \"timeout\": 3}", NULL, "port state", 0, NULL },
	{ "w_port_stopped", "wait_for", "{\"port\": 1, \"state\": \"stopped\", \"timeout\": 3}", NULL,
	  "port state", 0, NULL },
	{ "w_port_timeout", "wait_for", "{\"port\": 1, \"timeout\": 1, \"delay\": 0}", NULL, "msg", NO_SECOND, NULL },
	/* script: Ansible runs it on a pty, so its stdout has \r\n and stderr merged in: compared
	 * without \r, and stderr only through a script that writes none (vinz keeps them apart) */
	{ "sc_basic", "script", "{\"_raw_params\": \"script.sh one 'two three'\"}", NULL,
	  "rc nocr:stdout stdout_lines", 0, NULL },
	{ "sc_stderr", "script", "{\"_raw_params\": \"stderr.sh\"}", NULL, "rc", 0, NULL },
	{ "sc_chdir", "script", "{\"_raw_params\": \"script.sh\", \"chdir\": \"@D@\"}", NULL,
	  "rc nocr:stdout", 0, NULL },
	{ "sc_creates", "script", "{\"_raw_params\": \"script.sh\", \"creates\": \"@D@/marker\"}", "touch marker",
	  "skipped msg", 0, NULL },
	{ "sc_removes", "script", "{\"_raw_params\": \"script.sh\", \"removes\": \"@D@/none\"}", NULL,
	  "skipped msg", 0, NULL },
	{ "sc_fail", "script", "{\"_raw_params\": \"fail.sh\"}", NULL, "rc nocr:stdout msg", NO_SECOND, NULL },
	{ "sc_executable", "script", "{\"_raw_params\": \"plain.txt arg\", \"executable\": \"/bin/sh\"}", NULL,
	  "rc nocr:stdout", 0, NULL },
	{ "sc_missing", "script", "{\"_raw_params\": \"nope.sh\"}", NULL, "", NO_SECOND, NULL },
	/* synchronize (Ansible: rsync -a over ssh) */
	{ "sy_push_slash", "synchronize", "{\"src\": \"tree/\", \"dest\": \"@D@/s1\"}", NULL, "", MTIME, NULL },
	{ "sy_push_noslash", "synchronize", "{\"src\": \"tree\", \"dest\": \"@D@/s2\"}", NULL, "", MTIME, NULL },
	{ "sy_push_update", "synchronize", "{\"src\": \"tree/\", \"dest\": \"@D@/s3\"}",
	  "mkdir -p s3/sub && echo stale > s3/a.txt && echo extra > s3/extra", "", MTIME, NULL },
	{ "sy_push_delete", "synchronize", "{\"src\": \"tree/\", \"dest\": \"@D@/s4\", \"delete\": true}",
	  "mkdir -p s4/gone/deep && echo extra > s4/extra && touch s4/gone/deep/x", "", MTIME, NULL },
	{ "sy_push_file", "synchronize", "{\"src\": \"hello.txt\", \"dest\": \"@D@/\"}", NULL, "", MTIME, NULL },
	{ "sy_push_file_rename", "synchronize", "{\"src\": \"hello.txt\", \"dest\": \"@D@/renamed.txt\"}",
	  NULL, "", MTIME, NULL },
	{ "sy_push_missing_parent", "synchronize", "{\"src\": \"tree/\", \"dest\": \"@D@/no/such\"}", NULL, "",
	  NO_SECOND, NULL },
	{ "sy_pull_slash", "synchronize", "{\"mode\": \"pull\", \"src\": \"@D@/p/\", \"dest\": \"@F@/pulled\"}",
	  "mkdir -p p/sub && echo 1 > p/a && echo 2 > p/sub/b && chmod 0600 p/a && ln -s a p/ln && find p -exec touch -h -d @1700000000 {} +", "", MTIME, NULL },
	{ "sy_pull_noslash", "synchronize", "{\"mode\": \"pull\", \"src\": \"@D@/p\", \"dest\": \"@F@/\"}",
	  "mkdir -p p/sub && echo 1 > p/a && echo 2 > p/sub/b && find p -exec touch -h -d @1700000000 {} +", "", MTIME, NULL },
	{ "sy_pull_delete", "synchronize", "{\"mode\": \"pull\", \"src\": \"@D@/p/\", \"dest\": \"@F@/q\", "
	  "\"delete\": true}", "mkdir -p p && echo 1 > p/a && find p -exec touch -h -d @1700000000 {} +", "", MTIME, NULL },

	/* vinz only: confinement of executor paths in untrusted playbooks, caps, no_log */
	{ "v_confine_ok", "copy", "{\"src\": \"hello.txt\", \"dest\": \"@D@/ok\"}", NULL, "",
	  VINZ_ONLY | CONFINED, "ok" },
	{ "v_confine_abs", "copy", "{\"src\": \"/etc/hostname\", \"dest\": \"@D@/x\"}", NULL, "",
	  VINZ_ONLY | CONFINED, "failed:outside the project" },
	{ "v_confine_dotdot", "copy", "{\"src\": \"../outside/secret\", \"dest\": \"@D@/x\"}", NULL, "",
	  VINZ_ONLY | CONFINED, "failed:outside the project" },
	{ "v_confine_symlink", "copy", "{\"src\": \"escape\", \"dest\": \"@D@/x\"}", NULL, "",
	  VINZ_ONLY | CONFINED, "failed:outside the project" },
	{ "v_confine_tree_link", "copy", "{\"src\": \"badtree/\", \"dest\": \"@D@/x\"}", NULL, "",
	  VINZ_ONLY | CONFINED, "failed:outside the project" },
	{ "v_confine_template", "template", "{\"src\": \"../outside/secret\", \"dest\": \"@D@/x\"}", NULL, "",
	  VINZ_ONLY | CONFINED, "failed:outside the project" },
	{ "v_confine_script", "script", "{\"_raw_params\": \"/bin/true\"}", NULL, "",
	  VINZ_ONLY | CONFINED, "failed:outside the project" },
	{ "v_confine_sync_push", "synchronize", "{\"src\": \"/etc/\", \"dest\": \"@D@/x\"}", NULL, "",
	  VINZ_ONLY | CONFINED, "failed:outside the project" },
	{ "v_confine_fetch", "fetch", "{\"src\": \"@D@/f\", \"dest\": \"/tmp/vz-pbmod-escape/\", \"flat\": true}",
	  "echo x > f", "", VINZ_ONLY | CONFINED, "failed:outside the build's work dir" },
	{ "v_confine_fetch_dotdot", "fetch", "{\"src\": \"@D@/f\", \"dest\": \"@F@/../../../x\", \"flat\": true}",
	  "echo x > f", "", VINZ_ONLY | CONFINED, "failed:'..'" },
	{ "v_confine_fetch_link", "fetch", "{\"src\": \"@D@/f\", \"dest\": \"@F@/out/x\", \"flat\": true}",
	  "echo x > f", "", VINZ_ONLY | CONFINED, "failed:outside the build's work dir" },
	{ "v_confine_pull", "synchronize", "{\"mode\": \"pull\", \"src\": \"@D@/f\", \"dest\": \"/tmp/vz-pbmod-escape/\"}",
	  "echo x > f", "", VINZ_ONLY | CONFINED, "failed:outside the build's work dir" },
	{ "v_confine_fetch_ok", "fetch", "{\"src\": \"@D@/f\", \"dest\": \"@F@/\"}", "echo x > f", "",
	  VINZ_ONLY | CONFINED, "ok" },
	{ "v_huge_copy", "copy", "{\"src\": \"huge.bin\", \"dest\": \"@D@/huge\"}", NULL, "",
	  VINZ_ONLY, "failed:256 MiB" },
	{ "v_huge_fetch", "fetch", "{\"src\": \"@D@/big\", \"dest\": \"@F@/\"}", "truncate -s 257M big", "",
	  VINZ_ONLY, "failed:256 MiB" },
	{ "v_no_log_template", "template", "{\"src\": \"undef.j2\", \"dest\": \"@D@/u\"}", NULL, "",
	  VINZ_ONLY | NO_LOG, "failed:details hidden" },
	{ "v_become_refused", "stat", "{\"path\": \"/\"}", NULL, "", VINZ_ONLY | BECOME, "failed:sudo" },
	{ "v_no_log_stat", "copy", "{\"src\": \"secret-name.txt\", \"dest\": \"@D@/x\"}", NULL, "",
	  VINZ_ONLY | NO_LOG, "failed:details hidden" },
	{ "v_timeout_bounded", "wait_for", "{\"path\": \"@D@/never\", \"timeout\": 60}", NULL, "",
	  VINZ_ONLY | TIMEOUT, "failed:timed out" },
	{ "v_script_timeout", "script", "{\"_raw_params\": \"sleep.sh\"}", NULL, "",
	  VINZ_ONLY | TIMEOUT, "failed:timed out" },
	/* no oracle: Ansible's JSON carries undecodable bytes as lone surrogates (\udcff), which
	 * no strict JSON reader takes; vinz writes U+FFFD so its result always serializes */
	{ "v_binary_output", "script", "{\"_raw_params\": \"binout.sh\"}", NULL, "", VINZ_ONLY, "ok" },
	{ "v_sync_unsupported", "synchronize", "{\"src\": \"tree/\", \"dest\": \"@D@/x\", \"rsync_opts\": [\"-z\"]}",
	  NULL, "", VINZ_ONLY, "failed:not supported" },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static int g_agree, g_total, g_bad;

/* VZ_PBMOD_CASES=c_,l_add runs only the cases whose id starts with one of the prefixes. */
static int selected(const char *id)
{
	const char *sel = getenv("VZ_PBMOD_CASES");
	if (!sel || !*sel)
		return 1;
	char buf[1024];
	vz_strlcpy(buf, sel, sizeof(buf));
	for (char *sv = NULL, *p = strtok_r(buf, ",", &sv); p; p = strtok_r(NULL, ",", &sv))
		if (!strncmp(id, p, strlen(p)))
			return 1;
	return 0;
}

/* Ansible's playbooks run as this many ansible-playbook processes at once (cases dealt round
 * robin), which keeps the oracle's time near a minute. */
#define NPLAYBOOKS 6

static void agree(const char *id, const char *what, int ok, const char *fmt, ...)
{
	g_total++;
	if (ok) {
		g_agree++;
		return;
	}
	g_bad++;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "DISAGREE %s %s: ", id, what);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

/* Replaces every occurrence of from with to in s (new string). */
static char *replace(const char *s, const char *from, const char *to)
{
	vz_buf b = VZ_BUF_INIT((size_t)64 << 20);
	size_t fl = strlen(from);
	while (*s) {
		if (fl && !strncmp(s, from, fl)) {
			vz_buf_puts(&b, to);
			s += fl;
		} else {
			vz_buf_putc(&b, *s++);
		}
	}
	char *r = vz_buf_detach(&b);
	vz_buf_free(&b);
	return r;
}

static char *subst(const char *s, const char *d, const char *f, int port)
{
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	char *a = replace(s, "@D@", d), *b = replace(a, "@F@", f), *c = replace(b, "@P@", ps);
	free(a);
	free(b);
	return c;
}

/* Runs sh -c script locally and returns stdout (caller frees). */
static char *sh_local(const char *script)
{
	const char *argv[] = { "sh", "-c", script, NULL };
	vz_buf out = VZ_BUF_INIT((size_t)16 << 20);
	vz_test_sshd_run(argv, &out);
	char *r = vz_buf_detach(&out);
	vz_buf_free(&out);
	return r;
}

static int collect(void *ctx, int stream, const char *data, size_t len)
{
	if (stream == VZ_NODE_STDOUT)
		vz_buf_add(ctx, data, len);
	return 0;
}

static const char *tree_sh =
	"cd \"$1\" 2>/dev/null || exit 0; find . -mindepth 1 -printf '%p %y %m %s %T@ %l\\n' | sort | "
	"while read -r p y m s t l; do "
	"  if [ \"$y\" = f ]; then h=$(sha1sum < \"$p\" | cut -c1-12); else h=-; fi; "
	"  if [ \"$y\" != f ]; then s=-; fi; "
	"  if [ \"$MT\" = 1 ] && [ \"$y\" = f ]; then t=${t%.*}; else t=-; fi; "
	"  echo \"$p $y $m $s $l $h $t\"; done";

/* A listing of the tree under dir on the node (or here, when node is NULL), with names
 * relative to it and side-specific paths replaced. */
static char *tree(vz_node *n, const char *dir, int mtime, const char *side_d, const char *side_f)
{
	vz_buf cmd = VZ_BUF_INIT(1 << 20), out = VZ_BUF_INIT((size_t)16 << 20);
	char *raw;
	vz_buf_printf(&cmd, "MT=%d; set -- '%s'; %s", mtime, dir, tree_sh);
	if (n) {
		vz_err e = { 0 };
		vz_node_result res;
		vz_node_cmd nc = { .command = vz_buf_cstr(&cmd), .on_output = collect, .ctx = &out };
		if (vz_node_exec(n, &nc, &res, &e) != 0)
			fprintf(stderr, "listing %s: %s\n", dir, vz_err_msg(&e));
		raw = vz_buf_detach(&out);
	} else {
		raw = sh_local(vz_buf_cstr(&cmd));
	}
	vz_buf_free(&cmd);
	vz_buf_free(&out);
	char *a = replace(raw ? raw : "", side_d, "@D@");
	char *b = replace(a, side_f, "@F@");
	const char *sd = side_d[0] == '/' ? side_d + 1 : side_d;
	char *c0 = replace(b, sd, "@D@");
	/* fetch's dest/<host>/<path> layout repeats the side's own dir names */
	char *c1 = replace(c0, "/work/ansible ", "/work/@S@ ");
	char *c = replace(c1, "/work/vinz ", "/work/@S@ ");
	free(c0);
	free(c1);
	free(raw);
	free(a);
	free(b);
	return c;
}

/* A result field as comparable text, side-specific paths replaced. */
static char *field(const json_t *r, const char *key, const char *side_d, const char *side_f)
{
	char k[128];
	int nocr = !strncmp(key, "nocr:", 5);
	if (nocr) /* Ansible runs script on a pty: its stdout has \r\n line ends */
		key += 5;
	vz_strlcpy(k, key, sizeof(k));
	const json_t *v = r;
	for (char *p = k, *dot; p && v; p = dot ? dot + 1 : NULL) {
		dot = strchr(p, '.');
		if (dot)
			*dot = '\0';
		v = json_object_get(v, p);
	}
	if (!v)
		return vz_xstrdup("<absent>");
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_COMPACT);
	if (nocr) {
		char *t = replace(s, "\\r", "");
		free(s);
		s = t;
	}
	char *a = replace(s, side_d, "@D@"), *b = replace(a, side_f, "@F@");
	free(s);
	free(a);
	return b;
}

static int truthy(const json_t *r, const char *k)
{
	return json_is_true(json_object_get(r, k));
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -1;
	int ok = write(fd, data, len) == (ssize_t)len;
	close(fd);
	chmod(path, mode);
	return ok ? 0 : -1;
}

static void fixtures(const char *root)
{
	char *proj = vz_path_join(root, "proj"), *p;
	vz_test_write(proj, "files/hello.txt", "hello\n");
	vz_test_write(proj, "files/exec.sh", "#!/bin/sh\necho exec\n");
	p = vz_path_join(proj, "files/exec.sh");
	chmod(p, 0750);
	free(p);
	vz_test_write(proj, "files/tree/a.txt", "a\n");
	vz_test_write(proj, "files/tree/sub/b.txt", "bee\n");
	vz_test_write(proj, "files/tree/sub/deeper/c.sh", "#!/bin/sh\necho c\n");
	p = vz_path_join(proj, "files/tree/sub/deeper/c.sh");
	chmod(p, 0755);
	free(p);
	p = vz_path_join(proj, "files/tree/empty");
	mkdir(p, 0755);
	free(p);
	unsigned char bin[4096];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 7 + (i >> 8));
	p = vz_path_join(proj, "files/bin.dat");
	write_file(p, bin, sizeof(bin), 0644);
	free(p);
	vz_test_write(proj, "templates/t.j2",
		      "Hello {{ name }}!\n"
		      "{% if flag %}\nflag is on\n{% endif %}\n"
		      "{% for i in items %}\n- item {{ i }}\n{% endfor %}\n"
		      "{# a comment #}\nsum={{ items | length + 1 }}\n");
	vz_test_write(proj, "templates/undef.j2", "x={{ not_defined_anywhere }}\n");
	vz_test_write(proj, "files/script.sh", "#!/bin/sh\necho \"args: $# $*\"\npwd\n");
	vz_test_write(proj, "files/stderr.sh", "#!/bin/sh\necho out\necho to-stderr >&2\nexit 4\n");
	vz_test_write(proj, "files/fail.sh", "#!/bin/sh\necho before\nexit 3\n");
	vz_test_write(proj, "files/plain.txt", "echo \"plain $1\"\n");
	vz_test_write(proj, "files/sleep.sh", "#!/bin/sh\nsleep 30\n");
	vz_test_write(proj, "files/binout.sh", "#!/bin/sh\nprintf 'bin \\377\\376 \\303\\251\\n'\n");
	p = vz_path_join(proj, "files/binout.sh");
	chmod(p, 0755);
	free(p);
	p = vz_path_join(proj, "files/sleep.sh");
	chmod(p, 0755);
	free(p);
	vz_test_write(proj, "files/linktree/a.txt", "a\n");
	p = vz_path_join(proj, "files/linktree/ln");
	symlink("a.txt", p);
	free(p);
	p = vz_path_join(proj, "files/script.sh");
	chmod(p, 0755);
	free(p);
	p = vz_path_join(proj, "files/stderr.sh");
	chmod(p, 0755);
	free(p);
	vz_test_write(root, "outside/secret", "secret\n");
	p = vz_path_join(proj, "files/escape");
	char *t = vz_path_join(root, "outside/secret");
	symlink(t, p);
	free(p);
	vz_test_write(proj, "files/badtree/ok.txt", "ok\n");
	p = vz_path_join(proj, "files/badtree/leak");
	symlink(t, p);
	free(p);
	free(t);
	/* a sparse file over the 256 MiB cap */
	p = vz_path_join(proj, "files/huge.bin");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (ftruncate(fd, (off_t)257 << 20) != 0)
			perror("ftruncate");
		close(fd);
	}
	free(p);
	/* the executor's work dir, with a symlink pointing out of it */
	p = vz_path_join(proj, "work/fetch-vinz");
	vz_mkdir_p(p, 0755, NULL);
	free(p);
	free(proj);
}

typedef struct canceler {
	volatile int *flag;
	int after_ms;
} canceler;

static void *cancel_thread(void *arg)
{
	canceler *k = arg;
	usleep((useconds_t)k->after_ms * 1000);
	*k->flag = 1;
	return NULL;
}

/* ctx->cancel stops a running module: it returns VZ_ECANCELED soon and the script is gone. */
static void check_cancel(vz_node *node, const char *proj)
{
	const vz_pbmod *m = vz_pbmod_find("script");
	const char *search[] = { proj, NULL };
	volatile int flag = 0;
	vz_pbmod_ctx ctx = { .node = node, .host = "node", .search = search, .cancel = &flag };
	json_t *args = json_pack("{s:s}", "_raw_params", "sleep.sh"), *r = NULL;
	vz_err e = { 0 };
	canceler k = { &flag, 300 };
	pthread_t th;
	uint64_t t = vz_mono_ms();
	pthread_create(&th, NULL, cancel_thread, &k);
	int rc = m->run(&ctx, args, &r, &e);
	pthread_join(th, NULL);
	uint64_t took = vz_mono_ms() - t;
	agree("cancel", "returns VZ_ECANCELED", rc == VZ_ECANCELED && !r, "rc %d (%s)", rc, vz_err_msg(&e));
	agree("cancel", "stops soon", took < 5000, "took %llu ms", (unsigned long long)took);
	vz_buf out = VZ_BUF_INIT(4096);
	vz_node_result res;
	vz_node_cmd nc = { .command = "sleep 1; pgrep -f '[v]inz-script.*sleep.sh' || echo gone",
			   .on_output = collect, .ctx = &out };
	vz_node_exec(node, &nc, &res, &e);
	agree("cancel", "script killed on the node", strstr(vz_buf_cstr(&out), "gone") != NULL,
	      "still running: %s", vz_buf_cstr(&out));
	vz_buf_free(&out);
	json_decref(r);
	json_decref(args);
}

typedef struct oracle_job {
	const char *cmd;
	int run;
} oracle_job;

static void *oracle_thread(void *arg)
{
	oracle_job *j = arg;
	if (j->run)
		free(sh_local(j->cmd));
	return NULL;
}

static json_t *template_vars(void)
{
	return json_pack("{s:s, s:b, s:[i,i,i]}", "name", "world", "flag", 1, "items", 1, 2, 3);
}

int main(void)
{
	vz_test_sshd *sshd = NULL;
	vz_node *node = NULL;
	vz_err e = { 0 };
	vz_node_spec spec;
	json_t *ansible = NULL, *vars = NULL;
	char *root = NULL, *proj = NULL, *pb = NULL, *inv = NULL, *work = NULL;
	int rc = 1;
	uint64_t t0 = vz_mono_ms();

	const char *probe[] = { "ansible-playbook", "--version", NULL };
	if (vz_test_sshd_run(probe, NULL) != 0) {
		fprintf(stderr, "test_pbmod_oracle: ansible-playbook is needed as the oracle (apt-get install "
			"ansible)\n");
		return 1;
	}
	/* synchronize lives in the ansible.posix collection (Debian's ansible package), not in
	 * ansible-core: without it those cases cannot be judged, and say so */
	const char *posix[] = { "sh", "-c", "ansible-doc -t module ansible.posix.synchronize >/dev/null 2>&1",
				NULL };
	int have_posix = vz_test_sshd_run(posix, NULL) == 0;
	if (!have_posix)
		printf("WARNING: ansible.posix is not installed: the synchronize cases run without their "
		       "oracle (apt-get install ansible)\n");
	if (vz_node_global_init(&e) != 0 || vz_test_sshd_start(&sshd) != 0) {
		fprintf(stderr, "setup: %s\n", vz_err_msg(&e));
		return 1;
	}
	vz_test_sshd_spec(sshd, &spec);
	if (vz_node_connect(&node, &spec, &e) != 0) {
		fprintf(stderr, "connect: %s\n", vz_err_msg(&e));
		goto out;
	}
	root = vz_test_tmpdir("vz-pbmod");
	chmod(root, 0755);
	fixtures(root);
	proj = vz_path_join(root, "proj");
	work = vz_path_join(proj, "work");
	const char *nodework = vz_test_sshd_workdir(sshd);
	int port = vz_test_sshd_port(sshd);
	/* the confinement case whose fetch dest goes through a link out of the work dir */
	{
		char *d = vz_path_join(work, "fetch-vinz/v_confine_fetch_link");
		vz_mkdir_p(d, 0755, NULL);
		char *l = vz_path_join(d, "out");
		symlink("/tmp", l);
		free(l);
		free(d);
	}

	/* setup on the node: both sides' case dirs */
	vz_buf s = VZ_BUF_INIT((size_t)4 << 20);
	for (size_t i = 0; i < NCASES; i++) {
		for (int side = 0; side < 2; side++) {
			if (side == 0 && (cases[i].flags & VINZ_ONLY))
				continue;
			vz_buf_printf(&s, "mkdir -p '%s/%s/%s' && cd '%s/%s/%s' && { %s; } || echo 'setup %s failed' >&2\n",
				      nodework, side ? "vinz" : "ansible", cases[i].id, nodework,
				      side ? "vinz" : "ansible", cases[i].id, cases[i].setup ? cases[i].setup : ":",
				      cases[i].id);
		}
	}
	{
		vz_node_result res;
		vz_node_cmd c = { .command = "/bin/sh -s", .stdin_data = s.ptr, .stdin_len = s.len };
		if (vz_node_exec(node, &c, &res, &e) != 0 || res.exit_status != 0) {
			fprintf(stderr, "node setup failed: %s\n", vz_err_msg(&e));
			goto out;
		}
	}
	vz_buf_free(&s);

	/* the Ansible side: NPLAYBOOKS playbooks run at once, each case twice in one of them */
	vars = template_vars();
	json_t *tasks[NPLAYBOOKS];
	int np = NPLAYBOOKS; /* VZ_PBMOD_PLAYBOOKS=1 measures Ansible one task at a time */
	if (getenv("VZ_PBMOD_PLAYBOOKS") && atoi(getenv("VZ_PBMOD_PLAYBOOKS")) >= 1 &&
	    atoi(getenv("VZ_PBMOD_PLAYBOOKS")) <= NPLAYBOOKS)
		np = atoi(getenv("VZ_PBMOD_PLAYBOOKS"));
	size_t ntasks = 0;
	for (int k = 0; k < NPLAYBOOKS; k++)
		tasks[k] = json_array();
	size_t nsel = 0;
	for (size_t i = 0; i < NCASES; i++) {
		const tcase *c = &cases[i];
		if ((c->flags & VINZ_ONLY) || !selected(c->id) || getenv("VZ_PBMOD_NO_ORACLE") ||
		    (!have_posix && !strcmp(c->module, "synchronize")))
			continue;
		char *d = vz_path_join(nodework, "ansible");
		char *dd = vz_path_join(d, c->id);
		char *f = vz_path_join(root, "fetch-ansible");
		char *ff = vz_path_join(f, c->id);
		char *txt = subst(c->args, dd, ff, port);
		vz_mkdir_p(ff, 0755, NULL);
		json_error_t je;
		json_t *args = json_loads(txt, 0, &je);
		if (!args) {
			fprintf(stderr, "case %s: bad args JSON: %s\n", c->id, je.text);
			goto out;
		}
		for (int k = 0; k < ((c->flags & NO_SECOND) ? 1 : 2); k++) {
			json_t *task = json_object(), *a = json_deep_copy(args);
			json_t *raw = json_object_get(a, "_raw_params");
			if (raw) {
				json_object_set(task, c->module, raw);
				json_object_del(a, "_raw_params");
				json_object_set_new(task, "args", a);
			} else {
				json_object_set_new(task, c->module, a);
			}
			json_object_set_new(task, "name", json_sprintf("%s#%d", c->id, k));
			json_object_set_new(task, "ignore_errors", json_true());
			json_array_append_new(tasks[nsel % (size_t)np], task);
			ntasks++;
		}
		nsel++;
		json_decref(args);
		free(txt);
		free(d);
		free(dd);
		free(f);
		free(ff);
	}
	inv = vz_path_join(root, "inventory");
	{
		char line[4096];
		snprintf(line, sizeof(line),
			 "node ansible_host=127.0.0.1 ansible_port=%d ansible_user=%s "
			 "ansible_ssh_private_key_file=%s ansible_python_interpreter=/usr/bin/python3 "
			 "ansible_ssh_common_args='-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes'\n",
			 port, vz_test_sshd_user(sshd), vz_test_sshd_key(sshd), vz_test_sshd_known_hosts(sshd));
		write_file(inv, line, strlen(line), 0644);
	}
	vz_buf cmd = VZ_BUF_INIT(1 << 20);
	vz_buf_printf(&cmd, "cd '%s' || exit 1\n", proj);
	for (int k = np; k < NPLAYBOOKS; k++)
		json_decref(tasks[k]);
	for (int k = 0; k < np; k++) {
		char name[64];
		snprintf(name, sizeof(name), "oracle%d.yml", k);
		free(pb);
		pb = vz_path_join(proj, name);
		json_t *play = json_pack("[{s:s, s:b, s:O, s:o}]", "hosts", "all", "gather_facts", 0, "vars",
					 vars, "tasks", tasks[k]);
		if (json_dump_file(play, pb, JSON_INDENT(1)) != 0) {
			fprintf(stderr, "cannot write %s\n", pb);
			json_decref(play);
			goto out;
		}
		json_decref(play);
		vz_buf_printf(&cmd, "ANSIBLE_STDOUT_CALLBACK=json ANSIBLE_LOAD_CALLBACK_PLUGINS=1 "
			      "ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_PIPELINING=1 ANSIBLE_RETRY_FILES_ENABLED=0 "
			      "ANSIBLE_LOCAL_TEMP='%s/ansible-local' ANSIBLE_NOCOLOR=1 "
			      "timeout -k 10 240 ansible-playbook -i '%s' '%s' >'%s/ansible%d.json' 2>'%s/ansible%d.err' &\n",
			      root, inv, pb, root, k, root, k);
	}
	vz_buf_puts(&cmd, "wait\n");
	/* Ansible runs in the background while vinz runs its side (in other directories) */
	uint64_t ta = vz_mono_ms();
	pthread_t ath;
	oracle_job job = { .cmd = vz_buf_cstr(&cmd), .run = nsel > 0 };
	if (pthread_create(&ath, NULL, oracle_thread, &job) != 0) {
		fprintf(stderr, "cannot start the ansible thread\n");
		goto out;
	}
	static json_t *vres[NCASES][2];
	static uint64_t vms[NCASES];
	int joined = 0;

	/* the vinz side, case by case, and the comparison */
	uint64_t tv = vz_mono_ms(), vinz_ms = 0, tv_end = 0;
	size_t vruns = 0;
	for (int pass = 0; pass < 2; pass++)
	for (size_t i = 0; i < NCASES; i++) {
		const tcase *c = &cases[i];
		if (pass == 1 && !joined) {
			tv_end = vz_mono_ms();
			pthread_join(ath, NULL);
			joined = 1;
			vz_buf_free(&cmd);
			ansible = json_object(); /* task name -> the node's result */
			for (int k = 0; nsel && k < np; k++) {
				char name[64];
				snprintf(name, sizeof(name), "ansible%d.json", k);
				char *path = vz_path_join(root, name);
				json_error_t je;
				json_t *doc = json_load_file(path, 0, &je);
				free(path);
				if (!doc) {
					fprintf(stderr, "ansible-playbook %d gave no JSON (%s); see %s/ansible%d.err\n", k, je.text,
						root, k);
					goto out;
				}
				json_t *ts = json_object_get(json_array_get(json_object_get(doc, "plays"), 0), "tasks");
				for (size_t j = 0; j < json_array_size(ts); j++) {
					json_t *t = json_array_get(ts, j);
					const char *tn = json_string_value(json_object_get(json_object_get(t, "task"), "name"));
					json_t *hr = json_object_get(json_object_get(t, "hosts"), "node");
					if (tn && hr)
						json_object_set(ansible, tn, hr);
				}
				json_decref(doc);
			}
			printf("ansible-playbook: %zu cases, %zu tasks in %.1f s (%d playbooks at once)\n", nsel,
			       ntasks, (double)(vz_mono_ms() - ta) / 1000, np);
		}
		const vz_pbmod *m = vz_pbmod_find(c->module);
		char *vd = NULL, *vf = NULL, *ad = NULL, *af = NULL, *txt = NULL;
		json_t *args = NULL, *vr[2] = { NULL, NULL }, *ar[2] = { NULL, NULL };
		int runs = (c->flags & NO_SECOND) ? 1 : 2;
		if (!selected(c->id))
			continue;
		if (!m) {
			if (pass)
				agree(c->id, "module", 0, "vz_pbmod_find(%s) is NULL", c->module);
			continue;
		}
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s/vinz/%s", nodework, c->id);
		vd = vz_xstrdup(tmp);
		snprintf(tmp, sizeof(tmp), "%s/ansible/%s", nodework, c->id);
		ad = vz_xstrdup(tmp);
		snprintf(tmp, sizeof(tmp), "%s/fetch-vinz/%s", work, c->id);
		vf = vz_xstrdup(tmp);
		snprintf(tmp, sizeof(tmp), "%s/fetch-ansible/%s", root, c->id);
		af = vz_xstrdup(tmp);
		txt = subst(c->args, vd, vf, port);
		args = json_loads(txt, 0, NULL);
		vz_mkdir_p(vf, 0755, NULL);
		const char *search[] = { proj, NULL };
		json_t *tv_vars = template_vars();
		json_object_set_new(tv_vars, "inventory_hostname", json_string("node"));
		vz_pbmod_ctx ctx = { .node = node, .host = "node", .vars = tv_vars, .search = search,
				     .confine = (c->flags & CONFINED) ? proj : NULL, .work_dir = work,
				     .no_log = !!(c->flags & NO_LOG), .become = !!(c->flags & BECOME),
				     .timeout_ms = (c->flags & TIMEOUT) ? 1500 : 0 };
		uint64_t vinz_case_ms = 0;
		for (int k = 0; pass == 0 && k < runs; k++) {
			vruns++;
			vz_err me = { 0 };
			uint64_t t1 = vz_mono_ms();
			int mrc = m->check ? m->check(args, &me) : 0;
			if (mrc == 0) {
				mrc = m->run(&ctx, args, &vr[k], &me);
			} else {
				/* a load-time refusal is a failed task here, as Ansible's module reports it */
				vr[k] = json_pack("{s:b, s:b, s:s}", "failed", 1, "changed", 0, "msg", vz_err_msg(&me));
				mrc = 0;
			}
			vinz_ms += vz_mono_ms() - t1;
			vinz_case_ms += vz_mono_ms() - t1;
			if (mrc != 0 || !vr[k]) {
				agree(c->id, "run", 0, "module returned %d: %s", mrc, vz_err_msg(&me));
				vr[k] = json_object();
			}
		}
		json_decref(tv_vars);
		if (pass == 0) {
			vres[i][0] = vr[0];
			vres[i][1] = vr[1];
			vms[i] = vinz_case_ms;
			vr[0] = vr[1] = NULL;
			goto next;
		}
		vr[0] = vres[i][0];
		vr[1] = vres[i][1];
		vinz_case_ms = vms[i];
		if (getenv("VZ_PBMOD_TIMES"))
			printf("time %-26s %6llu ms (%d runs)\n", c->id, (unsigned long long)vinz_case_ms, runs);
		if (getenv("VZ_PBMOD_NO_ORACLE") && !(c->flags & VINZ_ONLY))
			goto next; /* timing the vinz side alone: nothing to compare with */
		if (!have_posix && !strcmp(c->module, "synchronize") && !(c->flags & VINZ_ONLY)) {
			printf("skipped %s: no oracle (ansible.posix missing)\n", c->id);
			goto next;
		}
		if (c->flags & VINZ_ONLY) {
			int failed = truthy(vr[0], "failed");
			const char *msg = json_string_value(json_object_get(vr[0], "msg"));
			if (c->flags & TIMEOUT)
				agree(c->id, "bounded", vinz_case_ms < 10000, "took %llu ms with a 1.5 s task timeout",
				      (unsigned long long)vinz_case_ms);
			char *dump = json_dumps(vr[0], JSON_COMPACT);
			agree(c->id, "result is JSON", dump != NULL, "json_dumps failed");
			free(dump);
			if (!strcmp(c->expect, "ok")) {
				agree(c->id, "expect ok", !failed, "failed: %s", msg ? msg : "");
			} else {
				const char *want = c->expect + strlen("failed:");
				agree(c->id, "expect failure", failed && msg && strstr(msg, want),
				      "want failed with \"%s\", got failed=%d msg=%s", want, failed, msg ? msg : "-");
			}
			if (c->flags & NO_LOG) {
				agree(c->id, "no_log", !msg || (!strstr(msg, "not_defined_anywhere") &&
								!strstr(msg, "secret-name")),
				      "the message shows the template's variable: %s", msg);
			}
			goto next;
		}
		for (int k = 0; k < runs; k++) {
			char tn[128];
			snprintf(tn, sizeof(tn), "%s#%d", c->id, k);
			ar[k] = json_object_get(ansible, tn);
			if (!ar[k]) {
				agree(c->id, "ansible task", 0, "no Ansible result for task %s", tn);
				goto next;
			}
		}
		for (int k = 0; k < runs; k++) {
			const char *run = k ? "run 2" : "run 1";
			char what[64];
			snprintf(what, sizeof(what), "%s failed", run);
			agree(c->id, what, truthy(ar[k], "failed") == truthy(vr[k], "failed"),
			      "ansible %d vinz %d (ansible msg: %s; vinz msg: %s)", truthy(ar[k], "failed"),
			      truthy(vr[k], "failed"), json_string_value(json_object_get(ar[k], "msg")),
			      json_string_value(json_object_get(vr[k], "msg")));
			snprintf(what, sizeof(what), "%s changed", run);
			agree(c->id, what, truthy(ar[k], "changed") == truthy(vr[k], "changed"),
			      "ansible %d vinz %d", truthy(ar[k], "changed"), truthy(vr[k], "changed"));
		}
		/* result fields, from the first run (and idempotent runs give the same fields) */
		char fl[512];
		vz_strlcpy(fl, c->fields, sizeof(fl));
		for (char *sv = NULL, *f = strtok_r(fl, " ", &sv); f; f = strtok_r(NULL, " ", &sv)) {
			char *a = field(ar[0], f, ad, af), *v = field(vr[0], f, vd, vf);
			agree(c->id, f, !strcmp(a, v), "ansible %s vinz %s", a, v);
			free(a);
			free(v);
		}
		if (!(c->flags & NO_TREE)) {
			char *ta2 = tree(node, ad, !!(c->flags & MTIME), ad, af);
			char *tv2 = tree(node, vd, !!(c->flags & MTIME), vd, vf);
			agree(c->id, "node files", !strcmp(ta2, tv2), "\n-- ansible:\n%s-- vinz:\n%s", ta2, tv2);
			free(ta2);
			free(tv2);
			char *fa = tree(NULL, af, !!(c->flags & MTIME), ad, af);
			char *fv = tree(NULL, vf, !!(c->flags & MTIME), vd, vf);
			agree(c->id, "executor files", !strcmp(fa, fv), "\n-- ansible:\n%s-- vinz:\n%s", fa, fv);
			free(fa);
			free(fv);
		}
next:
		json_decref(args);
		json_decref(vr[0]);
		json_decref(vr[1]);
		free(txt);
		free(vd);
		free(vf);
		free(ad);
		free(af);
	}
	if (selected("cancel"))
		check_cancel(node, proj);
	printf("vinz modules: %zu runs in %.1f s (%.1f s inside the modules; alongside Ansible)\n", vruns,
	       (double)(tv_end - tv) / 1000, (double)vinz_ms / 1000);
	printf("agreement: %d/%d (%d disagreements), %.1f s in all\n", g_agree, g_total, g_bad,
	       (double)(vz_mono_ms() - t0) / 1000);
	rc = g_bad ? 1 : 0;
out:
	json_decref(ansible);
	json_decref(vars);
	vz_node_close(node);
	vz_test_sshd_stop(sshd);
	vz_node_global_cleanup();
	if (root && !getenv("VZ_KEEP"))
		vz_test_rm(root);
	free(root);
	free(proj);
	free(pb);
	free(inv);
	free(work);
	return rc;
}
