/* vz_err: the one error space of vinz. A function that fails returns a negative VZ_E* code and,
 * where the caller gave a vz_err, a message saying what failed, where, and what to do. The message
 * is set once where the failure happened; callers add context in front with vz_err_prefix. */
#ifndef VZ_ERR_H
#define VZ_ERR_H

#include <stddef.h>

enum {
	VZ_OK = 0,
	VZ_ERROR = -1,      /* generic failure */
	VZ_ENOTFOUND = -2,  /* a named thing does not exist */
	VZ_ECONFLICT = -3,  /* merge conflict, or state does not allow the operation */
	VZ_ETIMEOUT = -4,   /* a deadline passed */
	VZ_EAUTH = -5,      /* authentication refused */
	VZ_ETOOBIG = -6,    /* a size cap was reached */
	VZ_EPROTO = -7,     /* malformed or unexpected protocol data */
	VZ_EINVAL = -8,     /* bad argument or configuration */
	VZ_EIO = -9,        /* a system call failed */
	VZ_ENOMEM = -10,    /* out of memory */
	VZ_EHOSTKEY = -11,  /* an SSH host key is unknown or changed */
	VZ_ECONNECT = -12,  /* could not connect to a peer */
	VZ_EVERSION = -13,  /* peer speaks another protocol version */
	VZ_ECANCELED = -14, /* the operation was canceled */
	VZ_EDB = -15,       /* the sqlite store failed */
};

#define VZ_ERR_MSG_MAX 1024

typedef struct vz_err {
	int code;                  /* 0 when no error was set */
	char msg[VZ_ERR_MSG_MAX];
} vz_err;

/* Sets code and message unless an error is already recorded (the lower-level message wins).
 * e may be NULL. Returns code, so `return vz_err_set(e, VZ_EINVAL, "...")` works. */
int vz_err_set(vz_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Puts "context: " in front of the recorded message. No-op when e is NULL or clear. */
void vz_err_prefix(vz_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void vz_err_clear(vz_err *e);

/* Static name of a code, e.g. "ETIMEOUT". Never NULL. */
const char *vz_err_name(int code);

/* Message of e, or the code's name when no message was given. Borrowed from e. */
const char *vz_err_msg(const vz_err *e);

#endif
