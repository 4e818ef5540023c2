/* vz_governor: the executor's load, memory and disk sensors; see vz_governor.h. */
#include "vz_governor.h"

#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

void vz_governor_sample_now(vz_governor_sample *out, const char *disk_path)
{
	out->load1 = 0;
	out->mem_avail_pct = 100;
	out->disk_avail_pct = 100;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	out->ncpu = n > 0 ? (int)n : 1;
	FILE *f = fopen("/proc/loadavg", "re");
	if (f) {
		if (fscanf(f, "%lf", &out->load1) != 1)
			out->load1 = 0;
		fclose(f);
	}
	f = fopen("/proc/meminfo", "re");
	if (f) {
		char line[256];
		unsigned long long total = 0, avail = 0, v;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "MemTotal: %llu kB", &v) == 1)
				total = v;
			else if (sscanf(line, "MemAvailable: %llu kB", &v) == 1)
				avail = v;
		}
		fclose(f);
		if (total > 0 && avail <= total)
			out->mem_avail_pct = 100.0 * (double)avail / (double)total;
	}
	struct statvfs st;
	if (disk_path && statvfs(disk_path, &st) == 0 && st.f_blocks > 0)
		out->disk_avail_pct = 100.0 * (double)st.f_bavail / (double)st.f_blocks;
}

int vz_governor_ok(const vz_governor_limits *l, const vz_governor_sample *s, char *why, size_t whylen)
{
	if (l->load_multiplier > 0 && s->load1 > l->load_multiplier * s->ncpu) {
		snprintf(why, whylen, "load average %.2f is over %.1f x %d CPUs", s->load1, l->load_multiplier, s->ncpu);
		return 0;
	}
	if (l->min_avail_mem > 0 && s->mem_avail_pct < l->min_avail_mem) {
		snprintf(why, whylen, "only %.1f%% of memory is available (minimum %.1f%%)", s->mem_avail_pct, l->min_avail_mem);
		return 0;
	}
	if (l->min_avail_disk > 0 && s->disk_avail_pct < l->min_avail_disk) {
		snprintf(why, whylen, "only %.1f%% of the work dir's disk is free (minimum %.1f%%)", s->disk_avail_pct,
			 l->min_avail_disk);
		return 0;
	}
	if (whylen)
		why[0] = '\0';
	return 1;
}

int vz_governor_starting_ok(long starting, long running, long max_starting_cfg, double load_multiplier, long ncpu,
			    char *why, size_t whylen)
{
	if (ncpu < 1)
		ncpu = 1;
	double mult = load_multiplier > 0 ? load_multiplier : 2.5;
	long max_starting = max_starting_cfg > 0 ? max_starting_cfg : (long)(mult * (double)ncpu * (ncpu <= 4 ? 2 : 1));
	if (max_starting < 1)
		max_starting = 1; /* Zuul's formula can give 0, and then no build ever starts */
	long min_starting = ncpu / 2 > 1 ? ncpu / 2 : 1;
	if (min_starting > max_starting)
		min_starting = max_starting;
	long limit = max_starting - running > min_starting ? max_starting - running : min_starting;
	if (starting < limit) {
		if (why && whylen)
			why[0] = '\0';
		return 1;
	}
	if (why && whylen)
		snprintf(why, whylen, "%ld builds are starting (limit %ld: max_starting_builds %ld - %ld running, at least %ld)",
			 starting, limit, max_starting, running, min_starting);
	return 0;
}
