/* vz_benchutil: see vz_benchutil.h. */
#include "vz_benchutil.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what)
{
	fprintf(stderr, "benchmark: %s\n", what);
	exit(1);
}

double vz_bench_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double vz_bench_median(double *v, int n)
{
	if (n <= 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int vz_bench_run(char *const argv[], char *const *env, const char *in, vz_buf *out)
{
	int ofd[2], ifd[2] = { -1, -1 };
	if (pipe(ofd) != 0 || (in && pipe(ifd) != 0))
		die("pipe failed");
	/* the environment: ours plus the extra entries */
	size_t ne = 0, nx = 0;
	while (environ[ne])
		ne++;
	while (env && env[nx])
		nx++;
	char **envp = calloc(ne + nx + 1, sizeof(*envp));
	if (!envp)
		die("out of memory");
	memcpy(envp, environ, ne * sizeof(*envp));
	for (size_t i = 0; i < nx; i++)
		envp[ne + i] = env[i];
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, ofd[1], 1);
	posix_spawn_file_actions_addclose(&fa, ofd[0]);
	if (in) {
		posix_spawn_file_actions_adddup2(&fa, ifd[0], 0);
		posix_spawn_file_actions_addclose(&fa, ifd[1]);
	}
	pid_t pid;
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp) != 0)
		die("cannot start a process");
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(ofd[1]);
	if (in) {
		close(ifd[0]);
		size_t len = strlen(in), off = 0;
		while (off < len) {
			ssize_t w = write(ifd[1], in + off, len - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		close(ifd[1]);
	}
	if (out)
		vz_buf_reset(out);
	char buf[4096];
	ssize_t n;
	while ((n = read(ofd[0], buf, sizeof(buf))) > 0)
		if (out)
			vz_buf_add(out, buf, (size_t)n);
	close(ofd[0]);
	int st;
	if (waitpid(pid, &st, 0) < 0)
		die("waitpid failed");
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void vz_bench_file_path(vz_buf *b, long i)
{
	vz_buf_printf(b, "d%03ld/e%02ld/f%ld.txt", i / 1000, (i / 100) % 10, i);
}

void vz_bench_file_data(vz_buf *b, long i, int changed, const char *tag)
{
	vz_buf c = VZ_BUF_INIT(4096);
	for (int l = 0; l < 20; l++) {
		if (l == changed)
			vz_buf_printf(&c, "%s %ld\n", tag, i);
		else
			vz_buf_printf(&c, "file %ld line %d\n", i, l);
	}
	vz_buf_printf(b, "data %zu\n%s\n", c.len, vz_buf_cstr(&c));
	vz_buf_free(&c);
}

void vz_bench_make_repo(const char *dir, long nfiles, vz_bench_commits_fn more, void *ctx)
{
	vz_buf cmd = VZ_BUF_INIT(4096);
	vz_buf_printf(&cmd, "git init -q --bare -b master '%s' && git -C '%s' fast-import --quiet", dir, dir);
	FILE *p = popen(vz_buf_cstr(&cmd), "w");
	if (!p)
		die("cannot run git fast-import");
	vz_buf s = VZ_BUF_INIT((size_t)1 << 30);
	for (long i = 0; i < nfiles; i++) {
		vz_buf_printf(&s, "blob\nmark :%ld\n", i + 1);
		vz_bench_file_data(&s, i, -1, NULL);
		if (s.len > (1u << 20)) {
			if (fwrite(s.ptr, 1, s.len, p) != s.len)
				die("fast-import write failed");
			vz_buf_reset(&s);
		}
	}
	vz_buf_printf(&s, "commit refs/heads/master\ncommitter b <b@vinz.invalid> 1600000000 +0000\ndata 5\nbase\n\n");
	for (long i = 0; i < nfiles; i++) {
		vz_buf_printf(&s, "M 100644 :%ld ", i + 1);
		vz_bench_file_path(&s, i);
		vz_buf_putc(&s, '\n');
	}
	if (more)
		more(&s, nfiles, ctx);
	if (s.failed)
		die("fast-import stream too large");
	if (fwrite(s.ptr, 1, s.len, p) != s.len)
		die("fast-import write failed");
	if (pclose(p) != 0)
		die("git fast-import failed");
	vz_buf_free(&s);
	vz_buf_free(&cmd);
}
