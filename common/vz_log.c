/* vz_log: leveled, timestamped logging; see vz_log.h. */
#include "vz_log.h"
#include "vz_util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static int g_level = VZ_LOG_INFO;
static const char *g_ident = "vinz";
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

void vz_log_set_level(int level) { g_level = level; }
int vz_log_level(void) { return g_level; }
void vz_log_set_ident(const char *ident) { g_ident = ident; }

void vz_log(int level, const char *fmt, ...)
{
	if (level < g_level)
		return;
	static const char *names[] = { "debug", "info", "warn", "error" };
	char ts[40], line[4096];
	vz_iso8601(ts, sizeof(ts), vz_wall_ms());
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&g_mu);
	fprintf(stderr, "%s %s[%s] %s\n", ts, g_ident, names[level > 3 ? 3 : level], line);
	fflush(stderr);
	pthread_mutex_unlock(&g_mu);
}
