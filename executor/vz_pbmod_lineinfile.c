/* vz_pbmod_lineinfile: ansible.builtin.lineinfile, natively: the node file is read with `cat`,
 * Ansible's present()/absent() algorithm runs here line by line (regexps are POSIX extended
 * regular expressions, see docs/modules.md), and a changed file goes back as copy writes one. */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "vz_pbmod_util.h"
#include "vz_util.h"

#define LIF_MAX ((size_t)64 << 20)

static const char *const opts[] = { "path", "dest", "destfile", "name", "state", "regexp", "regex",
				    "search_string", "line", "value", "insertafter", "insertbefore",
				    "backrefs", "create", "backup", "firstmatch", "validate", "mode",
				    "owner", "group", "unsafe_writes", "attributes", "attr", "selevel",
				    "serole", "setype", "seuser", NULL };

static int check(const json_t *args, vz_err *e)
{
	return vz_pbmod_args_known(args, "lineinfile", opts, e);
}

typedef struct line {
	char *s;   /* the line with its ending, NUL-terminated copy */
	size_t n;
} line;

typedef struct lines {
	line *v;
	size_t n, alloc;
} lines;

static int lines_insert(lines *L, size_t at, const char *s, size_t n)
{
	if (L->n == L->alloc) {
		size_t na = L->alloc ? L->alloc * 2 : 64;
		line *v = realloc(L->v, na * sizeof(*v));
		if (!v)
			return VZ_ENOMEM;
		L->v = v;
		L->alloc = na;
	}
	char *c = malloc(n + 1);
	if (!c)
		return VZ_ENOMEM;
	memcpy(c, s, n);
	c[n] = '\0';
	memmove(&L->v[at + 1], &L->v[at], (L->n - at) * sizeof(line));
	L->v[at].s = c;
	L->v[at].n = n;
	L->n++;
	return 0;
}

static void lines_free(lines *L)
{
	for (size_t i = 0; i < L->n; i++)
		free(L->v[i].s);
	free(L->v);
}

/* Python's readlines(): split after each \n. */
static int split_lines(lines *L, const char *buf, size_t len)
{
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (buf + i)) + 1 : len - i;
		if (lines_insert(L, L->n, buf + i, n))
			return VZ_ENOMEM;
		i += n;
	}
	return 0;
}

/* Length without trailing \r and \n (Python's rstrip(b'\r\n')). */
static size_t stripped(const line *l)
{
	size_t n = l->n;
	while (n && (l->s[n - 1] == '\n' || l->s[n - 1] == '\r'))
		n--;
	return n;
}

static int same(const line *l, const char *s)
{
	size_t n = stripped(l);
	return strlen(s) == n && !memcmp(l->s, s, n);
}

/* Python's \d and \D are not POSIX: written as bracket expressions (outside brackets). */
static char *translate(const char *re)
{
	vz_buf b = VZ_BUF_INIT((size_t)1 << 20);
	int in_br = 0;
	for (const char *p = re; *p; p++) {
		if (!in_br && p[0] == '\\' && (p[1] == 'd' || p[1] == 'D')) {
			vz_buf_puts(&b, p[1] == 'd' ? "[0-9]" : "[^0-9]");
			p++;
		} else if (p[0] == '\\' && p[1]) {
			vz_buf_add(&b, p, 2);
			p++;
		} else {
			if (!in_br && *p == '[') {
				in_br = 1;
				vz_buf_putc(&b, *p);
				if (p[1] == '^')
					vz_buf_putc(&b, *++p);
				if (p[1] == ']')
					vz_buf_putc(&b, *++p);
				continue;
			}
			if (in_br && *p == ']')
				in_br = 0;
			vz_buf_putc(&b, *p);
		}
	}
	char *s = b.failed ? NULL : vz_buf_detach(&b);
	vz_buf_free(&b);
	return s;
}

static int compile(regex_t *re, const char *pat, const char *what, vz_err *e)
{
	char *t = translate(pat);
	if (!t)
		return vz_err_set(e, VZ_EINVAL, "%s is too long", what);
	int rc = regcomp(re, t, REG_EXTENDED);
	free(t);
	if (rc) {
		char m[256];
		regerror(rc, re, m, sizeof(m));
		return vz_err_set(e, VZ_EINVAL, "%s is not a valid POSIX extended regular expression: %s",
				  what, m);
	}
	return 0;
}

/* Python re.search on a line (the trailing newline is left out, so `$` matches before it). */
static int search(const regex_t *re, const line *l, regmatch_t *m, size_t nm)
{
	size_t n = l->n;
	if (n && l->s[n - 1] == '\n')
		n--;
	char save = l->s[n];
	l->s[n] = '\0';
	int hit = regexec(re, l->s, nm, m, 0) == 0;
	l->s[n] = save;
	return hit;
}

/* match.expand(line): \1..\9 and \g<N> from the match on l. */
static void expand(vz_buf *out, const char *tmpl, const line *l, const regmatch_t *m)
{
	for (const char *p = tmpl; *p; p++) {
		int g = -1;
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '9') {
			g = p[1] - '0';
			p++;
		} else if (p[0] == '\\' && p[1] == 'g' && p[2] == '<' && p[3] >= '0' && p[3] <= '9' &&
			   p[4] == '>') {
			g = p[3] - '0';
			p += 4;
		} else if (p[0] == '\\' && p[1] == 'n') {
			vz_buf_putc(out, '\n');
			p++;
			continue;
		} else if (p[0] == '\\' && p[1] == 't') {
			vz_buf_putc(out, '\t');
			p++;
			continue;
		} else if (p[0] == '\\' && p[1] == '\\') {
			vz_buf_putc(out, '\\');
			p++;
			continue;
		}
		if (g < 0) {
			vz_buf_putc(out, *p);
			continue;
		}
		if (g < 10 && m[g].rm_so >= 0)
			vz_buf_add(out, l->s + m[g].rm_so, (size_t)(m[g].rm_eo - m[g].rm_so));
	}
}

static int run(const vz_pbmod_ctx *ctx, const json_t *args, json_t **result, vz_err *e)
{
	static const char *const path_keys[] = { "path", "dest", "destfile", "name", NULL };
	static const char *const state_keys[] = { "state", NULL };
	static const char *const re_keys[] = { "regexp", "regex", NULL };
	static const char *const ss_keys[] = { "search_string", NULL };
	static const char *const line_keys[] = { "line", "value", NULL };
	static const char *const ia_keys[] = { "insertafter", NULL };
	static const char *const ib_keys[] = { "insertbefore", NULL };
	static const char *const own_keys[] = { "owner", NULL };
	static const char *const grp_keys[] = { "group", NULL };
	json_t *r = json_object(), *scratch = NULL;
	vz_buf s = VZ_BUF_INIT(16384), out = VZ_BUF_INIT(LIF_MAX), nl = VZ_BUF_INIT(1 << 20);
	vz_pbmod_run run = { 0 };
	vz_err err = { 0 };
	lines L = { 0 };
	regex_t re_m, re_ins;
	int have_m = 0, have_ins = 0;
	const char *path, *state, *regexp, *sstr, *ln, *ia, *ib, *owner, *group, *msg = "";
	char b[9][64];
	char *mode = NULL, msgbuf[256], msgbuf2[320];
	int backrefs, create, backup, firstmatch, changed = 0, ch = 0, rc = 0;

	json_object_set_new(r, "changed", json_false());
	if ((rc = check(args, &err)) ||
	    (rc = vz_pbmod_arg_str(&path, args, path_keys, b[0], sizeof(b[0]), &err)) ||
	    (rc = vz_pbmod_arg_str(&state, args, state_keys, b[1], sizeof(b[1]), &err)) ||
	    (rc = vz_pbmod_arg_str(&regexp, args, re_keys, b[2], sizeof(b[2]), &err)) ||
	    (rc = vz_pbmod_arg_str(&sstr, args, ss_keys, b[3], sizeof(b[3]), &err)) ||
	    (rc = vz_pbmod_arg_str(&ln, args, line_keys, b[4], sizeof(b[4]), &err)) ||
	    (rc = vz_pbmod_arg_str(&ia, args, ia_keys, b[5], sizeof(b[5]), &err)) ||
	    (rc = vz_pbmod_arg_str(&ib, args, ib_keys, b[6], sizeof(b[6]), &err)) ||
	    (rc = vz_pbmod_arg_str(&owner, args, own_keys, b[7], sizeof(b[7]), &err)) ||
	    (rc = vz_pbmod_arg_str(&group, args, grp_keys, b[8], sizeof(b[8]), &err)) ||
	    (rc = vz_pbmod_arg_bool(&backrefs, args, "backrefs", 0, &err)) ||
	    (rc = vz_pbmod_arg_bool(&create, args, "create", 0, &err)) ||
	    (rc = vz_pbmod_arg_bool(&backup, args, "backup", 0, &err)) ||
	    (rc = vz_pbmod_arg_bool(&firstmatch, args, "firstmatch", 0, &err)) ||
	    (rc = vz_pbmod_arg_mode(&mode, args, "mode", &err)))
		goto fail;
	if (!state)
		state = "present";
	if (!path) {
		vz_pbmod_failed(r, "missing required arguments: path");
		goto out;
	}
	if (strcmp(state, "present") && strcmp(state, "absent")) {
		vz_pbmod_failed(r, "value of state must be one of: absent, present, got: %s", state);
		goto out;
	}
	if ((ia && ib) || (regexp && sstr) || (backrefs && sstr)) {
		vz_pbmod_failed(r, "parameters are mutually exclusive: %s", ia && ib ?
				"insertbefore|insertafter" : regexp && sstr ? "regexp|search_string" :
				"backrefs|search_string");
		goto out;
	}
	if (backup || json_object_get(args, "validate")) {
		vz_pbmod_failed(r, "%s is not supported by vinz's lineinfile", backup ? "backup=yes" : "validate");
		goto out;
	}
	int present = !strcmp(state, "present");
	if (present && backrefs && !regexp) {
		vz_pbmod_failed(r, "regexp is required with backrefs=true");
		goto out;
	}
	if (present && !ln) {
		vz_pbmod_failed(r, "line is required with state=present");
		goto out;
	}
	if (!present && !regexp && !sstr && !ln) {
		vz_pbmod_failed(r, "one of line, search_string, or regexp is required with state=absent");
		goto out;
	}
	if (regexp && (rc = compile(&re_m, regexp, "regexp", &err)) == 0)
		have_m = 1;
	if (rc)
		goto fail;
	if (present && !ia && !ib)
		ia = "EOF";
	const char *ins = (ia && strcmp(ia, "BOF") && strcmp(ia, "EOF")) ? ia :
			  (ib && strcmp(ib, "BOF")) ? ib : NULL;
	if (present && ins) {
		if ((rc = compile(&re_ins, ins, ia == ins ? "insertafter" : "insertbefore", &err)) != 0)
			goto fail;
		have_ins = 1;
	}

	vz_buf_puts(&s, "p=");
	vz_node_sh_quote(&s, path);
	vz_buf_puts(&s, "\nif [ -d \"$p\" ]; then echo D; elif [ -e \"$p\" ]; then echo E; exec cat -- \"$p\"; "
		    "else echo N; fi\n");
	if ((rc = vz_pbmod_sh(&run, ctx, vz_buf_cstr(&s), NULL, 0, LIF_MAX, &err)) != 0)
		goto fail;
	if (run.overflow) {
		vz_pbmod_failed(r, "%s is over %zu MiB: too big for lineinfile", path, LIF_MAX >> 20);
		goto out;
	}
	if (run.status != 0 || run.out.len < 2) {
		vz_pbmod_failed(r, "cannot read %s on the node: %.300s", path, vz_buf_cstr(&run.err));
		goto out;
	}
	char kind = run.out.ptr[0];
	if (kind == 'D') {
		json_object_set_new(r, "rc", json_integer(256));
		vz_pbmod_failed(r, "Path %s is a directory !", path);
		goto out;
	}
	if (kind == 'N' && !present) {
		json_object_set_new(r, "msg", json_string("file not present"));
		goto out;
	}
	if (kind == 'N' && !create) {
		json_object_set_new(r, "rc", json_integer(257));
		vz_pbmod_failed(r, "Destination %s does not exist !", path);
		goto out;
	}
	if (kind == 'E' && split_lines(&L, run.out.ptr + 2, run.out.len - 2)) {
		rc = vz_err_set(&err, VZ_ENOMEM, "out of memory reading %s", path);
		goto fail;
	}
	regmatch_t m[10], mm[10];
	if (present) {
		long idx0 = -1, idx1 = -1;
		int matched = 0, exact = 0;
		if (have_m) {
			for (size_t i = 0; i < L.n; i++) {
				if (search(&re_m, &L.v[i], m, 10)) {
					idx0 = (long)i;
					matched = 1;
					memcpy(mm, m, sizeof(m));
					if (firstmatch)
						break;
				}
			}
		}
		if (sstr) {
			for (size_t i = 0; i < L.n; i++) {
				if (strstr(L.v[i].s, sstr)) {
					idx0 = (long)i;
					matched = 1;
					if (firstmatch)
						break;
				}
			}
		}
		if (!matched) {
			for (size_t i = 0; i < L.n; i++) {
				if (same(&L.v[i], ln)) {
					idx0 = (long)i;
					exact = 1;
				} else if (have_ins && search(&re_ins, &L.v[i], m, 1)) {
					if (ia) {
						idx1 = (long)i + 1;
						if (firstmatch)
							break;
					}
					if (ib) {
						idx1 = (long)i;
						if (firstmatch)
							break;
					}
				}
			}
		}
		vz_buf_puts(&nl, ln);
		vz_buf_putc(&nl, '\n');
		if (idx0 != -1) {
			vz_buf newl = VZ_BUF_INIT(1 << 20);
			if (backrefs && matched)
				expand(&newl, ln, &L.v[idx0], mm);
			else
				vz_buf_puts(&newl, ln);
			if (!newl.len || newl.ptr[newl.len - 1] != '\n')
				vz_buf_putc(&newl, '\n');
			if (!regexp && !sstr && !matched && !exact) {
				/* unreachable in practice: no regexp means the exact match set idx0 */
			} else if (L.v[idx0].n != newl.len || memcmp(L.v[idx0].s, newl.ptr, newl.len)) {
				free(L.v[idx0].s);
				L.v[idx0].s = vz_buf_detach(&newl);
				L.v[idx0].n = strlen(L.v[idx0].s);
				msg = "line replaced";
				changed = 1;
			}
			vz_buf_free(&newl);
		} else if (backrefs) {
			/* no match: backrefs leaves the file alone */
		} else if ((ib && !strcmp(ib, "BOF")) || (ia && !strcmp(ia, "BOF"))) {
			lines_insert(&L, 0, nl.ptr, nl.len);
			msg = "line added";
			changed = 1;
		} else if ((ia && !strcmp(ia, "EOF")) || idx1 == -1) {
			if (L.n) {
				line *last = &L.v[L.n - 1];
				if (last->s[last->n - 1] != '\n' && last->s[last->n - 1] != '\r')
					lines_insert(&L, L.n, "\n", 1);
			}
			lines_insert(&L, L.n, nl.ptr, nl.len);
			msg = "line added";
			changed = 1;
		} else if (ia && idx1 != -1) {
			if ((long)L.n == idx1) {
				if (!same(&L.v[idx1 - 1], ln)) {
					lines_insert(&L, L.n, nl.ptr, nl.len);
					msg = "line added";
					changed = 1;
				}
			} else if (!same(&L.v[idx1], ln)) {
				lines_insert(&L, (size_t)idx1, nl.ptr, nl.len);
				msg = "line added";
				changed = 1;
			}
		} else {
			lines_insert(&L, (size_t)idx1, nl.ptr, nl.len);
			msg = "line added";
			changed = 1;
		}
	} else {
		size_t found = 0, w = 0;
		for (size_t i = 0; i < L.n; i++) {
			int hit = have_m ? search(&re_m, &L.v[i], m, 1) : sstr ? strstr(L.v[i].s, sstr) != NULL :
				  same(&L.v[i], ln);
			if (hit) {
				found++;
				free(L.v[i].s);
			} else {
				L.v[w++] = L.v[i];
			}
		}
		L.n = w;
		json_object_set_new(r, "found", json_integer((json_int_t)found));
		if (found) {
			changed = 1;
			snprintf(msgbuf, sizeof(msgbuf), "%zu line(s) removed", found);
			msg = msgbuf;
		}
	}
	if (changed) {
		for (size_t i = 0; i < L.n; i++)
			vz_buf_add(&out, L.v[i].s, L.v[i].n);
		if (out.failed) {
			vz_pbmod_failed(r, "%s would grow over %zu MiB", path, LIF_MAX >> 20);
			goto out;
		}
		/* as Ansible's atomic_move to realpath(dest): a link stays a link */
		vz_pbmod_put o = { .force = 1, .mkparents = 1, .follow = 1 };
		scratch = json_object();
		if ((rc = vz_pbmod_put_file(scratch, ctx, out.ptr, out.len, path, &o, e)) != 0)
			goto out;
		if (json_is_true(json_object_get(scratch, "failed"))) {
			vz_pbmod_failed(r, "%s", json_string_value(json_object_get(scratch, "msg")));
			goto out;
		}
	}
	if ((rc = vz_pbmod_attrs(&ch, ctx, path, mode, owner, group, 0, &err)) != 0)
		goto fail;
	if (ch) {
		snprintf(msgbuf2, sizeof(msgbuf2), "%s%sownership, perms or SE linux context changed", msg,
			 changed ? " and " : "");
		msg = msgbuf2;
		changed = 1;
	}
	json_object_set_new(r, "changed", json_boolean(changed));
	json_object_set_new(r, "msg", json_string(msg));
	json_object_set_new(r, "backup", json_string(""));
	goto out;
fail:
	rc = vz_pbmod_report(r, rc, &err, e);
out:
	if (have_m)
		regfree(&re_m);
	if (have_ins)
		regfree(&re_ins);
	lines_free(&L);
	json_decref(scratch);
	vz_pbmod_run_free(&run);
	vz_buf_free(&s);
	vz_buf_free(&out);
	vz_buf_free(&nl);
	free(mode);
	return vz_pbmod_done(result, ctx, r, rc);
}

const vz_pbmod vz_pbmod_lineinfile = { "lineinfile", run, check, 0, 0 };
