/* vz_governor: whether an executor may take more work, from Zuul's sensors: the load average
 * against a multiple of the CPUs, the memory still available, and the free space of the work
 * dir's file system. The executor offers no free slots while any sensor is over its limit. */
#ifndef VZ_GOVERNOR_H
#define VZ_GOVERNOR_H

#include <stddef.h>

typedef struct vz_governor_limits {
	double load_multiplier; /* refuse while load1 > multiplier x CPUs; 0: no load limit */
	double min_avail_mem;   /* percent of memory that must stay available; 0: no limit */
	double min_avail_disk;  /* percent of the work dir's file system that must stay free; 0: none */
} vz_governor_limits;

typedef struct vz_governor_sample {
	double load1;          /* 1-minute load average */
	int ncpu;
	double mem_avail_pct;  /* MemAvailable / MemTotal x 100 */
	double disk_avail_pct; /* free blocks for unprivileged users / total x 100 */
} vz_governor_sample;

/* Reads /proc/loadavg, /proc/meminfo and statvfs(disk_path). A sensor that cannot be read reads
 * as fine (100% available, load 0), so a missing /proc never stops an executor. */
void vz_governor_sample_now(vz_governor_sample *out, const char *disk_path);

/* 1 when the sample allows new work under limits; else 0 with a one-line reason in why. */
int vz_governor_ok(const vz_governor_limits *limits, const vz_governor_sample *s, char *why, size_t whylen);

/* Zuul's starting-builds sensor: with `starting` builds still preparing (not yet running their
 * job on the node) and `running` builds held in all, another build may start while
 * starting < max(max_starting - running, min_starting). max_starting is max_starting_cfg, or
 * when that is 0 Zuul's default: load_multiplier (2.5 when 0) x ncpu x (2 with at most 4 CPUs,
 * else 1), at least 1; min_starting = max(ncpu / 2, 1), at most max_starting. 1 when it may, else 0 with a
 * reason in why. */
int vz_governor_starting_ok(long starting, long running, long max_starting_cfg, double load_multiplier, long ncpu,
			    char *why, size_t whylen);

#endif
