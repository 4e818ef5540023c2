/* vz_driver_git: repository location and ref resolution for the plain-git driver. */
#include "vz_driver_git.h"

#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vz_util.h"

static int git_fail(vz_err *e, int code, const char *what, const char *url)
{
	const git_error *ge = git_error_last();
	return vz_err_set(e, code, "git: %s %s: %s", what, url, ge && ge->message ? ge->message : "unknown error");
}

char *vz_git_repo_url(const vz_conf_connection *c, const char *project)
{
	char *url = vz_path_join(c->baseurl, project);
	if (!strstr(c->baseurl, "://")) {
		struct stat st;
		if (stat(url, &st) != 0) {
			size_t n = strlen(url) + 5;
			char *alt = malloc(n);
			if (!alt)
				abort();
			snprintf(alt, n, "%s.git", url);
			if (stat(alt, &st) == 0) {
				free(url);
				return alt;
			}
			free(alt);
		}
	}
	return url;
}

static int is_hex40(const char *s)
{
	if (strlen(s) != 40)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

int vz_git_resolve_ref(const char *url, const char *ref, char out[41], vz_err *e)
{
	git_remote *remote = NULL;
	int rc = 0;
	if (is_hex40(ref)) {
		memcpy(out, ref, 41);
		return 0;
	}
	if (git_remote_create_detached(&remote, url) < 0) {
		rc = git_fail(e, VZ_ECONNECT, "cannot use repository", url);
		goto out;
	}
	if (git_remote_connect(remote, GIT_DIRECTION_FETCH, NULL, NULL, NULL) < 0) {
		rc = git_fail(e, VZ_ECONNECT, "cannot read repository", url);
		goto out;
	}
	const git_remote_head **heads = NULL;
	size_t n = 0;
	if (git_remote_ls(&heads, &n, remote) < 0) {
		rc = git_fail(e, VZ_ECONNECT, "cannot list refs of", url);
		goto out;
	}
	/* exact name first, then refs/heads/NAME and refs/tags/NAME as git does for short names */
	const char *forms[] = { "%s", "refs/heads/%s", "refs/tags/%s" };
	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		char want[1024];
		snprintf(want, sizeof(want), forms[f], ref);
		for (size_t i = 0; i < n; i++) {
			if (strcmp(heads[i]->name, want) == 0) {
				git_oid_tostr(out, 41, &heads[i]->oid);
				goto out;
			}
		}
	}
	rc = vz_err_set(e, VZ_ENOTFOUND, "ref %s not found in %s; push it first or check the name", ref, url);
out:
	if (remote)
		git_remote_free(remote);
	return rc;
}
