/* vz_err: set-once error messages with codes; see vz_err.h. */
#include "vz_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int vz_err_set(vz_err *e, int code, const char *fmt, ...)
{
	if (!e || e->code != 0)
		return code;
	e->code = code ? code : VZ_ERROR;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

void vz_err_prefix(vz_err *e, const char *fmt, ...)
{
	if (!e || e->code == 0)
		return;
	char pre[VZ_ERR_MSG_MAX], out[VZ_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	/* truncation is fine here: the front of the message matters most */
	size_t lp = strnlen(pre, sizeof(pre) - 1), lm = strnlen(e->msg, sizeof(e->msg) - 1), o = 0;
	memcpy(out, pre, lp);
	o = lp;
	if (o + 2 < sizeof(out)) {
		out[o++] = ':';
		out[o++] = ' ';
	}
	size_t take = lm < sizeof(out) - 1 - o ? lm : sizeof(out) - 1 - o;
	memcpy(out + o, e->msg, take);
	out[o + take] = '\0';
	memcpy(e->msg, out, sizeof(out));
}

void vz_err_clear(vz_err *e)
{
	if (e) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}

const char *vz_err_name(int code)
{
	switch (code) {
	case VZ_OK: return "OK";
	case VZ_ENOTFOUND: return "ENOTFOUND";
	case VZ_ECONFLICT: return "ECONFLICT";
	case VZ_ETIMEOUT: return "ETIMEOUT";
	case VZ_EAUTH: return "EAUTH";
	case VZ_ETOOBIG: return "ETOOBIG";
	case VZ_EPROTO: return "EPROTO";
	case VZ_EINVAL: return "EINVAL";
	case VZ_EIO: return "EIO";
	case VZ_ENOMEM: return "ENOMEM";
	case VZ_EHOSTKEY: return "EHOSTKEY";
	case VZ_ECONNECT: return "ECONNECT";
	case VZ_EVERSION: return "EVERSION";
	case VZ_ECANCELED: return "ECANCELED";
	case VZ_EDB: return "EDB";
	default: return "ERROR";
	}
}

const char *vz_err_msg(const vz_err *e)
{
	if (!e)
		return "unknown error";
	return e->msg[0] ? e->msg : vz_err_name(e->code);
}
