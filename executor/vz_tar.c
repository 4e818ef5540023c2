/* vz_tar: ustar writer for shipping work trees; see vz_tar.h. */
#include "vz_tar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vz_util.h"

/* A ustar numeric field: n-1 octal digits and a NUL; a value too big for the field keeps its
 * low digits (callers stay within ustar's limits). */
static void octal(char *f, size_t n, unsigned long long v)
{
	char tmp[32];
	snprintf(tmp, sizeof(tmp), "%0*llo", (int)(n - 1), v);
	size_t l = strlen(tmp);
	memcpy(f, tmp + (l > n - 1 ? l - (n - 1) : 0), n - 1);
	f[n - 1] = '\0';
}

int vz_tar_pad(vz_buf *out, uint64_t size)
{
	static const char zero[512];
	if (size % 512)
		vz_buf_add(out, zero, (size_t)(512 - size % 512));
	return out->failed;
}

/* A GNU long-name/long-link pseudo-entry whose data is s with its NUL. */
static int long_record(vz_buf *out, char type, const char *s)
{
	size_t n = strlen(s) + 1;
	vz_tar_header(out, "././@LongLink", type, 0, n, 0, NULL);
	vz_buf_add(out, s, n);
	return vz_tar_pad(out, n);
}

int vz_tar_header(vz_buf *out, const char *name, char type, unsigned mode, uint64_t size,
		  int64_t mtime, const char *link)
{
	char h[512];
	if (strlen(name) >= 100 && long_record(out, 'L', name))
		return out->failed;
	if (link && strlen(link) >= 100 && long_record(out, 'K', link))
		return out->failed;
	memset(h, 0, sizeof(h));
	vz_strlcpy(h, name, 100);
	octal(h + 100, 8, mode & 07777);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	octal(h + 124, 12, size);
	octal(h + 136, 12, mtime > 0 ? (unsigned long long)mtime : 0);
	memset(h + 148, ' ', 8);
	h[156] = type;
	if (link)
		vz_strlcpy(h + 157, link, 100);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	h[155] = ' ';
	return vz_buf_add(out, h, sizeof(h));
}

static int add_file(vz_buf *out, const char *path, const char *name, const struct stat *st, vz_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return vz_err_set(e, VZ_EIO, "cannot read %s: %s", path, strerror(errno));
	int rc = vz_tar_header(out, name, '0', st->st_mode, (uint64_t)st->st_size, 0, NULL);
	unsigned long long done = 0;
	char chunk[65536];
	while (!rc && done < (unsigned long long)st->st_size) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = vz_err_set(e, VZ_EIO, "%s changed while it was being packed", path);
			break;
		}
		if ((unsigned long long)n > (unsigned long long)st->st_size - done)
			n = (ssize_t)((unsigned long long)st->st_size - done);
		rc = vz_buf_add(out, chunk, (size_t)n);
		done += (unsigned long long)n;
	}
	close(fd);
	if (!rc)
		rc = vz_tar_pad(out, done);
	if (rc && !e->code)
		vz_err_set(e, rc, "the work tree is larger than the %zu-byte limit for shipping to a node", out->max);
	return rc;
}

static int walk(vz_buf *out, const char *dir, const char *rel, const char *const *skip, int depth, vz_err *e)
{
	if (depth > 128)
		return vz_err_set(e, VZ_EINVAL, "directory tree too deep at %s", dir);
	DIR *d = opendir(dir);
	if (!d)
		return vz_err_set(e, VZ_EIO, "cannot read %s: %s", dir, strerror(errno));
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (depth == 0 && skip) {
			int s = 0;
			for (const char *const *k = skip; *k; k++)
				s |= strcmp(*k, de->d_name) == 0;
			if (s)
				continue;
		}
		char *path = vz_path_join(dir, de->d_name);
		char *name = *rel ? vz_path_join(rel, de->d_name) : vz_xstrdup(de->d_name);
		struct stat st;
		if (lstat(path, &st) != 0) {
			rc = vz_err_set(e, VZ_EIO, "cannot stat %s: %s", path, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			size_t n = strlen(name) + 2;
			char *dn = malloc(n);
			if (!dn)
				abort();
			snprintf(dn, n, "%s/", name);
			rc = vz_tar_header(out, dn, '5', st.st_mode, 0, 0, NULL);
			free(dn);
			if (!rc)
				rc = walk(out, path, name, skip, depth + 1, e);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			if ((rc = vz_readlink(target, sizeof(target), path, e)) == 0)
				rc = vz_tar_header(out, name, '2', 0777, 0, 0, target);
		} else if (S_ISREG(st.st_mode)) {
			rc = add_file(out, path, name, &st, e);
		}
		free(path);
		free(name);
	}
	closedir(d);
	if (rc && !e->code)
		vz_err_set(e, rc, "the work tree is larger than the %zu-byte limit for shipping to a node", out->max);
	return rc;
}

int vz_tar_dir(vz_buf *out, const char *dir, const char *const *skip, vz_err *e)
{
	int rc = walk(out, dir, "", skip, 0, e);
	if (!rc) {
		static const char zero[1024];
		if (vz_buf_add(out, zero, sizeof(zero)))
			rc = vz_err_set(e, out->failed, "the work tree is larger than the %zu-byte limit for shipping to a node", out->max);
	}
	return rc;
}
