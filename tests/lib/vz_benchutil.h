/* Shared pieces of the benchmarks in tests/bench: a monotonic clock, medians, a process run with
 * its output captured (to time git as a peer), and a large generated repository made with
 * git fast-import. Every failure aborts the benchmark with a message. */
#ifndef VZ_BENCHUTIL_H
#define VZ_BENCHUTIL_H

#include <stddef.h>

#include "vz_buf.h"

double vz_bench_now_ms(void);
/* Median of v (sorted in place). */
double vz_bench_median(double *v, int n);

/* Runs argv (PATH searched) with extra "KEY=VALUE" environment entries (NULL-terminated, may be
 * NULL) and stdin from `in` (may be NULL); stdout into out (reset first; may be NULL). Returns the
 * exit status (-1 when killed). */
int vz_bench_run(char *const argv[], char *const *env, const char *in, vz_buf *out);

/* Path of generated file i: dNNN/eNN/fI.txt (100 files per directory). */
void vz_bench_file_path(vz_buf *b, long i);
/* fast-import "data" record of file i: 20 lines, line `changed` (or -1 for none) reading
 * "<tag> <i>". */
void vz_bench_file_data(vz_buf *b, long i, int changed, const char *tag);

/* Called to append commits to the fast-import stream after master's first commit. */
typedef void (*vz_bench_commits_fn)(vz_buf *stream, long nfiles, void *ctx);
/* Creates a bare repository at dir whose master has nfiles generated files, then the commits
 * `more` appends. */
void vz_bench_make_repo(const char *dir, long nfiles, vz_bench_commits_fn more, void *ctx);

#endif
