/* vz_log: timestamped log lines to stderr (or a file), one mutex-protected write per line so
 * threads do not interleave. */
#ifndef VZ_LOG_H
#define VZ_LOG_H

enum { VZ_LOG_DEBUG = 0, VZ_LOG_INFO = 1, VZ_LOG_WARN = 2, VZ_LOG_ERROR = 3, VZ_LOG_QUIET = 4 };

void vz_log_set_level(int level);
int vz_log_level(void);
/* Component name shown in each line, e.g. "scheduler". Borrowed: must outlive logging. */
void vz_log_set_ident(const char *ident);
void vz_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define vz_debug(...) vz_log(VZ_LOG_DEBUG, __VA_ARGS__)
#define vz_info(...) vz_log(VZ_LOG_INFO, __VA_ARGS__)
#define vz_warn(...) vz_log(VZ_LOG_WARN, __VA_ARGS__)
#define vz_error(...) vz_log(VZ_LOG_ERROR, __VA_ARGS__)

#endif
