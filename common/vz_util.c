/* vz_util: bounded parsing, clocks, ids and file helpers; see vz_util.h. */
#include "vz_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int vz_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s)
		return VZ_EINVAL;
	const char *p = s;
	int neg = 0;
	if (*p == '-' || *p == '+') {
		neg = *p == '-';
		p++;
	}
	if (!*p)
		return VZ_EINVAL;
	uint64_t v = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return VZ_EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return VZ_EINVAL;
		v = v * 10 + d;
	}
	int64_t r;
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return VZ_EINVAL;
		r = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX)
			return VZ_EINVAL;
		r = (int64_t)v;
	}
	if (r < min || r > max)
		return VZ_EINVAL;
	*out = r;
	return 0;
}

uint64_t vz_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t vz_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vz_iso8601(char *out, size_t n, int64_t wall_ms)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%03dZ", base, (int)(wall_ms % 1000));
}

int vz_random(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return VZ_EIO;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

void vz_uuid(char out[37])
{
	unsigned char b[16];
	if (vz_random(b, sizeof(b)) != 0) {
		/* getrandom cannot fail on Linux >= 3.17 once the pool is ready; keep ids unique anyway */
		uint64_t t = vz_mono_ms() ^ (uint64_t)getpid() << 32;
		memcpy(b, &t, 8);
		memcpy(b + 8, &t, 8);
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	static const char hex[] = "0123456789abcdef";
	char *o = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 15];
	}
	*o = '\0';
}

char *vz_xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		abort();
	return p;
}

void *vz_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		abort();
	return p;
}

size_t vz_strlcpy(char *dst, const char *src, size_t n)
{
	size_t l = strlen(src);
	if (n) {
		size_t c = l < n - 1 ? l : n - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return l;
}

int vz_readlink(char *out, size_t n, const char *path, vz_err *e)
{
	ssize_t k = readlink(path, out, n - 1);
	if (k < 0)
		return vz_err_set(e, VZ_EIO, "cannot read link %s: %s", path, strerror(errno));
	out[k] = '\0';
	return 0;
}

size_t vz_utf8_len(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t k;
	unsigned cp;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		k = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		k = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		k = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (k > n)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return k;
}

int vz_mkdir_p(const char *path, mode_t mode, vz_err *e)
{
	char tmp[PATH_MAX];
	if (vz_strlcpy(tmp, path, sizeof(tmp)) >= sizeof(tmp))
		return vz_err_set(e, VZ_EINVAL, "path too long: %.100s...", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return vz_err_set(e, VZ_EIO, "cannot create directory %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return vz_err_set(e, VZ_EIO, "cannot create directory %s: %s", tmp, strerror(errno));
	return 0;
}

static int rm_rf_at(int dirfd, const char *name, vz_err *e, int depth)
{
	if (depth > 256)
		return vz_err_set(e, VZ_EIO, "directory tree too deep to remove at %s", name);
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return vz_err_set(e, VZ_EIO, "cannot remove %s: %s", name, strerror(errno));
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return vz_err_set(e, VZ_EIO, "cannot open %s: %s", name, strerror(errno));
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return vz_err_set(e, VZ_EIO, "cannot read %s: %s", name, strerror(errno));
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc = rm_rf_at(fd, de->d_name, e, depth + 1);
	}
	closedir(d);
	if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		rc = vz_err_set(e, VZ_EIO, "cannot remove directory %s: %s", name, strerror(errno));
	return rc;
}

int vz_rm_rf(const char *path, vz_err *e)
{
	return rm_rf_at(AT_FDCWD, path, e, 0);
}

int vz_read_file(const char *path, size_t max, vz_buf *out, vz_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vz_err_set(e, errno == ENOENT ? VZ_ENOTFOUND : VZ_EIO, "cannot open %s: %s", path,
				  strerror(errno));
	int rc = 0;
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = vz_err_set(e, VZ_EIO, "cannot read %s: %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > max) {
			rc = vz_err_set(e, VZ_ETOOBIG, "%s is larger than the limit of %zu bytes", path, max);
			break;
		}
		if (vz_buf_add(out, chunk, (size_t)n)) {
			rc = vz_err_set(e, out->failed, "cannot hold %s in memory", path);
			break;
		}
	}
	close(fd);
	return rc;
}

int vz_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, vz_err *e)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return vz_err_set(e, VZ_EINVAL, "path too long: %.100s...", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return vz_err_set(e, VZ_EIO, "cannot create %s: %s", tmp, strerror(errno));
	const char *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int err = errno;
			close(fd);
			unlink(tmp);
			return vz_err_set(e, VZ_EIO, "cannot write %s: %s", tmp, strerror(err));
		}
		p += n;
		left -= (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		unlink(tmp);
		return vz_err_set(e, VZ_EIO, "cannot flush %s: %s", tmp, strerror(errno));
	}
	if (rename(tmp, path) != 0) {
		int err = errno;
		unlink(tmp);
		return vz_err_set(e, VZ_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(err));
	}
	return 0;
}

int vz_fd_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	return fl < 0 ? -1 : fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

int vz_fd_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int vz_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

char *vz_path_join(const char *a, const char *b)
{
	size_t la = strlen(a);
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	size_t lb = strlen(b);
	char *p = malloc(la + lb + 2);
	if (!p)
		abort();
	memcpy(p, a, la);
	p[la] = '/';
	memcpy(p + la + 1, b, lb);
	p[la + 1 + lb] = '\0';
	return p;
}
