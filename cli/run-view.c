/* run-view: what `vinz run` shows while jobs run. On a terminal one live line (job, elapsed
 * time, current task) redrawn in place, with finished jobs and failures printed above it; when
 * piped, plain lines (a job starting, each task, failures, a job's result), one write each. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "run-int.h"
#include "vz_util.h"

#define TAIL_LINES 6
#define TAIL_WIDTH 300

struct run_view {
	int tty, colour, verbose;
	pthread_mutex_t mu;
	char job[256];
	char task[512];
	uint64_t job_start;
	int live; /* a live line is on screen */
	unsigned spin;
	/* the current task's last lines, shown when it fails */
	char tail[TAIL_LINES][TAIL_WIDTH];
	unsigned ntail;
};

/* Node output, task and job names are untrusted: control bytes (escape sequences, carriage
 * returns) would drive the terminal, so they are shown as '?'. dst gets at most cap-1 bytes. */
static size_t clean(char *dst, size_t cap, const char *src, size_t len)
{
	size_t n = len < cap - 1 ? len : cap - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[i] = (ch < 0x20 && ch != '\t') || ch == 0x7f ? '?' : (char)ch;
	}
	dst[n] = '\0';
	return n;
}

run_view *run_view_new(int tty, int colour, int verbose)
{
	run_view *v = vz_xcalloc(1, sizeof(*v));
	v->tty = tty;
	v->colour = colour;
	v->verbose = verbose;
	pthread_mutex_init(&v->mu, NULL);
	return v;
}

void run_view_free(run_view *v)
{
	if (!v)
		return;
	pthread_mutex_destroy(&v->mu);
	free(v);
}

const char *run_view_colour(const run_view *v, const char *result)
{
	if (!v->colour)
		return "";
	if (strcmp(result, "SUCCESS") == 0)
		return "\033[32m";
	if (strcmp(result, "SKIPPED") == 0)
		return "\033[33m";
	if (strcmp(result, "RUNNING") == 0)
		return "\033[36m";
	return "\033[31m";
}

const char *run_view_reset(const run_view *v)
{
	return v->colour ? "\033[0m" : "";
}

/* with mu held */
static void clear_live(run_view *v)
{
	if (v->tty && v->live) {
		fputs("\r\033[K", stdout);
		v->live = 0;
	}
}

static void draw_live(run_view *v)
{
	static const char spin[] = "|/-\\";
	if (!v->tty || !v->job[0])
		return;
	struct winsize ws;
	int width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col : 80;
	char line[1024];
	double secs = (double)(vz_mono_ms() - v->job_start) / 1000.0;
	int n = snprintf(line, sizeof(line), "%c %s  %6.1fs  %s", spin[v->spin++ % 4], v->job, secs,
			 v->task[0] ? v->task : "preparing the workspace");
	if (n >= width)
		line[width - 1] = '\0'; /* one screen line, so \r goes back to its start */
	fprintf(stdout, "\r\033[K%s%s%s", run_view_colour(v, "RUNNING"), line, run_view_reset(v));
	fflush(stdout);
	v->live = 1;
}

void run_view_tick(run_view *v)
{
	pthread_mutex_lock(&v->mu);
	draw_live(v);
	pthread_mutex_unlock(&v->mu);
}

void run_view_note(run_view *v, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&v->mu);
	clear_live(v);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	draw_live(v);
	fflush(stdout);
	pthread_mutex_unlock(&v->mu);
}

void run_view_job_start(run_view *v, const char *job)
{
	pthread_mutex_lock(&v->mu);
	clean(v->job, sizeof(v->job), job, strlen(job));
	v->task[0] = '\0';
	v->job_start = vz_mono_ms();
	if (!v->tty)
		printf("%s: started\n", v->job);
	draw_live(v);
	fflush(stdout);
	pthread_mutex_unlock(&v->mu);
}

static int starts(const char *text, size_t len, const char *p)
{
	size_t n = strlen(p);
	return len >= n && memcmp(text, p, n) == 0;
}

void run_view_line(run_view *v, const char *node, const char *raw, size_t rawlen)
{
	char text[4096], nodes[256];
	size_t len = clean(text, sizeof(text), raw, rawlen);
	clean(nodes, sizeof(nodes), node ? node : "", node ? strlen(node) : 0);
	node = nodes;
	pthread_mutex_lock(&v->mu);
	int task = starts(text, len, "TASK [") || starts(text, len, "RUNNING HANDLER [");
	int bad = starts(text, len, "fatal: ") || starts(text, len, "failed: ") || starts(text, len, "FAILED") ||
		  starts(text, len, "ERROR! ");
	int phase = starts(text, len, "vinz: pre_run playbook") || starts(text, len, "vinz: run playbook") ||
		    starts(text, len, "vinz: post_run playbook") || starts(text, len, "vinz: cleanup_run playbook");
	if (phase && len > 7 && memcmp(text + len - 7, " failed", 7) == 0)
		phase = 0; /* "vinz: run playbook P failed" is the outcome, not a phase starting */
	if (task || phase) {
		size_t skip = phase ? 6 : 0; /* "vinz: " */
		size_t n = len - skip < sizeof(v->task) - 1 ? len - skip : sizeof(v->task) - 1;
		memcpy(v->task, text + skip, n);
		v->task[n] = '\0';
	}
	if (task)
		v->ntail = 0;
	if (v->verbose) {
		clear_live(v);
		printf("%s | %s | %.*s\n", v->job, node, (int)len, text);
	} else if (bad) {
		/* the failing task's last lines, then the failure */
		clear_live(v);
		unsigned first = v->ntail > TAIL_LINES ? v->ntail - TAIL_LINES : 0;
		for (unsigned i = first; i < v->ntail; i++)
			printf("%s:   %s\n", v->job, v->tail[i % TAIL_LINES]);
		printf("%s%s: %.*s%s\n", run_view_colour(v, "FAILURE"), v->job, (int)len, text,
		       run_view_reset(v));
		v->ntail = 0;
	} else if (!v->tty && task) {
		printf("%s: %.*s\n", v->job, (int)len, text);
	} else if (!task && !phase) {
		size_t n = len < TAIL_WIDTH - 1 ? len : TAIL_WIDTH - 1;
		memcpy(v->tail[v->ntail % TAIL_LINES], text, n);
		v->tail[v->ntail % TAIL_LINES][n] = '\0';
		v->ntail++;
	}
	if (v->verbose || bad || !v->tty)
		fflush(stdout);
	if (v->tty && (task || phase || bad || v->verbose))
		draw_live(v);
	pthread_mutex_unlock(&v->mu);
}

void run_view_job_end(run_view *v, const char *rawjob, const char *result, const char *rawmsg, uint64_t ms,
		      int voting)
{
	char job[256], msg[2048];
	clean(job, sizeof(job), rawjob, strlen(rawjob));
	clean(msg, sizeof(msg), rawmsg ? rawmsg : "", rawmsg ? strlen(rawmsg) : 0);
	const char *message = msg;
	pthread_mutex_lock(&v->mu);
	clear_live(v);
	const char *mark = strcmp(result, "SUCCESS") == 0 ? "ok" : strcmp(result, "SKIPPED") == 0 ? "--" : "!!";
	printf("%s%s %s %s%s (%.1fs)%s%s%s\n", run_view_colour(v, result), mark, job, result, run_view_reset(v),
	       (double)ms / 1000.0, voting ? "" : " non-voting", *message ? ": " : "", message);
	v->job[0] = '\0';
	fflush(stdout);
	pthread_mutex_unlock(&v->mu);
}
