/* vz_node_ssh: the ssh connection over libssh2. One non-blocking session per node, driven by a
 * poll() loop so every wait honours a deadline and the cancel flag; one channel per command, or (opt-in)
 * one persistent shell on one channel running them all (the runner, below).
 * The host key is always checked against known_hosts; there is no accept-anything mode. */
#include "vz_node_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vz_knownhosts.h"
#include "vz_log.h"
#include "vz_util.h"

#define SSH_CHUNK 32768
#define SSH_SLICE_MS 100                  /* how often the cancel flag is looked at while blocked */
#define SSH_CMD_MAX VZ_NODE_CMD_MAX
#define SSH_CLOSE_MS 5000                 /* bound on closing a channel or session */

typedef struct ssh_node {
	int fd;
	LIBSSH2_SESSION *s;
	char *host;
	int port;
	int broken; /* the connection failed: later calls fail fast, the node is unusable */
	/* the persistent command runner (vz_node_set_runner), see run_exec */
	int runner_want;       /* run commands through it */
	int runner_off;        /* it could not start or died: a channel per command from now on */
	LIBSSH2_CHANNEL *rch;  /* its channel, NULL until the first command needs it */
	long runner_pid;
	char mark[48];         /* "vzr-<32 hex>:", the per-session end-of-command marker */
	size_t marklen;
	char *rbuf[2];         /* stdout, stderr: bytes held back while they may start a marker */
	size_t rlen[2];
} ssh_node;

static pthread_mutex_t g_init_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_inited;

int vz_node_global_init(vz_err *e)
{
	int rc = 0;
	pthread_mutex_lock(&g_init_mu);
	if (!g_inited) {
		int r = libssh2_init(0);
		if (r != 0)
			rc = vz_err_set(e, VZ_ERROR, "cannot initialise libssh2 (error %d): is its crypto "
					"backend installed?", r);
		else
			g_inited = 1;
	}
	pthread_mutex_unlock(&g_init_mu);
	return rc;
}

void vz_node_global_cleanup(void)
{
	pthread_mutex_lock(&g_init_mu);
	if (g_inited)
		libssh2_exit();
	g_inited = 0;
	pthread_mutex_unlock(&g_init_mu);
}

/* The one place libssh2 errors become VZ_E* codes: rc is what the libssh2 call returned, what
 * says what we were doing. Errors that leave the session unusable mark it broken. */
static int ssh_fail(vz_node *n, int rc, const char *what, vz_err *e)
{
	ssh_node *sn = n->impl;
	char *lmsg = NULL;
	int code, llen = 0;
	const char *hint = "";

	if (rc == LIBSSH2_ERROR_TIMEOUT)
		lmsg = "timed out"; /* our deadline (SSH_NB); libssh2's last message is "would block" */
	else if (sn && sn->s)
		libssh2_session_last_error(sn->s, &lmsg, &llen, 0);
	switch (rc) {
	case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
	case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
	case LIBSSH2_ERROR_KEYFILE_AUTH_FAILED:
	case LIBSSH2_ERROR_PASSWORD_EXPIRED:
		code = VZ_EAUTH;
		hint = "; check that the node user exists and that the public half of key_file is in "
		       "its authorized_keys";
		break;
	case LIBSSH2_ERROR_FILE:
		code = VZ_EINVAL;
		hint = "; check key_file (readable, OpenSSH or PEM format, no passphrase)";
		break;
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
		code = VZ_ETIMEOUT;
		break;
	case LIBSSH2_ERROR_SOCKET_NONE:
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_BANNER_RECV:
	case LIBSSH2_ERROR_BANNER_SEND:
	case LIBSSH2_ERROR_BAD_SOCKET:
		code = VZ_ECONNECT;
		hint = "; the connection to the node was lost, reconnect";
		break;
	case LIBSSH2_ERROR_ALLOC:
		code = VZ_ENOMEM;
		break;
	case LIBSSH2_ERROR_KNOWN_HOSTS:
		code = VZ_EHOSTKEY;
		break;
	case LIBSSH2_ERROR_KEX_FAILURE:
	case LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE:
	case LIBSSH2_ERROR_HOSTKEY_INIT:
	case LIBSSH2_ERROR_HOSTKEY_SIGN:
	case LIBSSH2_ERROR_METHOD_NONE:
	case LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
		code = VZ_EPROTO;
		hint = "; the node's sshd and libssh2 share no algorithm";
		break;
	case LIBSSH2_ERROR_INVALID_MAC:
	case LIBSSH2_ERROR_DECRYPT:
	case LIBSSH2_ERROR_ENCRYPT:
	case LIBSSH2_ERROR_PROTO:
	case LIBSSH2_ERROR_COMPRESS:
	case LIBSSH2_ERROR_ZLIB:
	case LIBSSH2_ERROR_OUT_OF_BOUNDARY:
	case LIBSSH2_ERROR_CHANNEL_OUTOFORDER:
	case LIBSSH2_ERROR_CHANNEL_WINDOW_EXCEEDED:
	case LIBSSH2_ERROR_CHANNEL_PACKET_EXCEEDED:
	case LIBSSH2_ERROR_CHANNEL_UNKNOWN:
		code = VZ_EPROTO;
		break;
	case LIBSSH2_ERROR_CHANNEL_FAILURE:
	case LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED:
	case LIBSSH2_ERROR_REQUEST_DENIED:
		code = VZ_EIO;
		hint = "; sshd refused the request (MaxSessions, ForceCommand or a restricted key?)";
		break;
	default:
		code = VZ_EIO;
		break;
	}
	if (sn && (code == VZ_ECONNECT || code == VZ_EPROTO || code == VZ_ETIMEOUT))
		sn->broken = 1;
	return vz_err_set(e, code, "%s: %s: %s (libssh2 error %d)%s", n->where, what,
			  lmsg && *lmsg ? lmsg : "no detail", rc, hint);
}

/* Waits until the socket is ready in the direction libssh2 last blocked on, at most slice_ms
 * (-1: no limit). Returns 0, or VZ_ETIMEOUT when deadline (0: none) has passed. */
static int ssh_wait(ssh_node *sn, uint64_t deadline, int slice_ms)
{
	int dir = libssh2_session_block_directions(sn->s);
	struct pollfd p = { sn->fd, 0, 0 };
	int64_t wait = slice_ms;
	int rc = 0;

	if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
		p.events |= POLLIN;
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		p.events |= POLLOUT;
	if (!p.events)
		p.events = POLLIN;
#ifdef TCP_QUICKACK
	/* Acknowledge at once what arrives while we wait. sshd leaves Nagle on for non-interactive
	 * sessions, so a reply it writes in two parts (the channel confirmation after the host keys
	 * message, a command's end markers after its start marker) waits for our ACK of the first
	 * part, which Linux would otherwise delay by 40 ms. Linux turns quick ACKs off again by
	 * itself, hence before every wait. */
	int one = 1;
	setsockopt(sn->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
#endif
	if (deadline) {
		uint64_t now = vz_mono_ms();
		if (now >= deadline) {
			rc = VZ_ETIMEOUT;
			goto out;
		}
		if (wait < 0 || (uint64_t)wait > deadline - now)
			wait = (int64_t)(deadline - now);
	}
	if (poll(&p, 1, (int)wait) < 0 && errno != EINTR)
		rc = VZ_EIO;
out:
	return rc;
}

/* Runs a non-blocking libssh2 call until it stops saying EAGAIN or the deadline passes. */
#define SSH_NB(sn, deadline, rcvar, call)                                                          \
	while (((rcvar) = (call)) == LIBSSH2_ERROR_EAGAIN) {                                           \
		if (ssh_wait((sn), (deadline), -1) != 0) {                                             \
			(rcvar) = LIBSSH2_ERROR_TIMEOUT;                                               \
			break;                                                                         \
		}                                                                                      \
	}

static int tcp_connect(vz_node *n, const char *host, int port, uint64_t deadline, int timeout_ms,
		       int *out, vz_err *e)
{
	struct addrinfo hints, *ai = NULL;
	char portstr[16];
	int fd = -1, rc = 0, last_err = 0, gai, one = 1;

	*out = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if ((gai = getaddrinfo(host, portstr, &hints, &ai)) != 0) {
		rc = vz_err_set(e, VZ_ECONNECT, "%s: cannot resolve %s: %s; check the node's host name",
				n->where, host, gai_strerror(gai));
		goto out;
	}
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			last_err = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			struct pollfd p = { fd, POLLOUT, 0 };
			int pr;
			do {
				uint64_t now = vz_mono_ms();
				pr = now >= deadline ? 0 : poll(&p, 1, (int)(deadline - now));
			} while (pr < 0 && errno == EINTR);
			if (pr == 0) {
				rc = vz_err_set(e, VZ_ETIMEOUT, "%s: connecting to %s port %d timed out "
						"after %d ms; is the node up and the port open?", n->where,
						host, port, timeout_ms);
				goto out;
			}
			socklen_t sl = sizeof(last_err);
			if (pr > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &last_err, &sl) == 0 &&
			    last_err == 0)
				break;
		} else {
			last_err = errno;
		}
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		rc = vz_err_set(e, VZ_ECONNECT, "%s: cannot connect to %s port %d: %s; check that sshd "
				"runs on the node and the port is right", n->where, host, port,
				strerror(last_err ? last_err : ECONNREFUSED));
		goto out;
	}
	/* one small packet per request: Nagle would hold each behind the previous ack */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*out = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
	return rc;
}

/* The known_hosts name of this node: "host" on port 22, else "[host]:port". */
static void kh_name(vz_buf *b, const ssh_node *sn)
{
	if (sn->port == 22)
		vz_buf_puts(b, sn->host);
	else
		vz_buf_printf(b, "[%s]:%d", sn->host, sn->port);
}

/* Loads known_hosts line by line (libssh2's readfile gives up on the whole file at the first
 * line it cannot parse, e.g. a security-key or @cert-authority entry), then host_key. */
static int kh_load(vz_node *n, LIBSSH2_KNOWNHOSTS *kh, const vz_node_spec *spec, vz_err *e)
{
	ssh_node *sn = n->impl;
	vz_buf line = VZ_BUF_INIT(16384);
	int rc = 0, skipped = 0;

	if (!spec->known_hosts && !spec->host_key) {
		rc = vz_err_set(e, VZ_EINVAL, "%s: neither known_hosts nor host_key is set: the host key "
				"must be checked", n->where);
		goto out;
	}
	if (spec->known_hosts) {
		if ((rc = vz_kh_load_file(kh, spec->known_hosts, &skipped, e)) != 0) {
			vz_err_prefix(e, "%s", n->where);
			goto out;
		}
		if (skipped)
			vz_debug("%s: skipped %d known_hosts lines libssh2 cannot parse", n->where, skipped);
	}
	if (spec->host_key) {
		kh_name(&line, sn);
		vz_buf_putc(&line, ' ');
		vz_buf_puts(&line, spec->host_key);
		vz_buf_putc(&line, '\n');
		if (line.failed || strchr(spec->host_key, '\n') || libssh2_knownhost_readline(kh, line.ptr, line.len,
							      LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0) {
			rc = vz_err_set(e, VZ_EINVAL, "%s: host_key is not a \"TYPE BASE64\" key line as "
					"in a .pub file: %.80s", n->where, spec->host_key);
			goto out;
		}
	}
out:
	vz_buf_free(&line);
	return rc;
}

/* Offers first the host key types known_hosts has for this node (as OpenSSH does), so a node
 * with several host keys presents the one we can check. */
static void kh_prefer(ssh_node *sn, LIBSSH2_KNOWNHOSTS *kh)
{
	vz_buf name = VZ_BUF_INIT(1024), pref = VZ_BUF_INIT(4096);
	struct libssh2_knownhost *h = NULL, *prev = NULL;
	const char **algs = NULL;
	int nalgs, known[VZ_KH_NTYPES] = { 0 }, any = 0;

	kh_name(&name, sn);
	while (libssh2_knownhost_get(kh, &h, prev) == 0) {
		for (size_t i = 0; h->name && !strcmp(h->name, vz_buf_cstr(&name)) && i < VZ_KH_NTYPES; i++)
			if ((h->typemask & LIBSSH2_KNOWNHOST_KEY_MASK) == vz_kh_types[i].kh_bit)
				known[i] = any = 1;
		prev = h;
	}
	if (!any)
		goto out;
	for (size_t i = 0; i < VZ_KH_NTYPES; i++)
		if (known[i])
			vz_buf_printf(&pref, "%s%s", pref.len ? "," : "", vz_kh_types[i].methods);
	nalgs = libssh2_session_supported_algs(sn->s, LIBSSH2_METHOD_HOSTKEY, &algs);
	for (int i = 0; i < nalgs; i++)
		if (!strstr(vz_buf_cstr(&pref), algs[i]))
			vz_buf_printf(&pref, ",%s", algs[i]);
	if (!pref.failed)
		libssh2_session_method_pref(sn->s, LIBSSH2_METHOD_HOSTKEY, pref.ptr);
out:
	if (algs)
		libssh2_free(sn->s, algs);
	vz_buf_free(&name);
	vz_buf_free(&pref);
}

static int kh_check(vz_node *n, LIBSSH2_KNOWNHOSTS *kh, const vz_node_spec *spec, vz_err *e)
{
	ssh_node *sn = n->impl;
	const vz_kh_type *kt = NULL;
	vz_buf name = VZ_BUF_INIT(1024), where = VZ_BUF_INIT(2048);
	size_t klen = 0;
	int ktype = 0, rc = 0, r;
	char fp[64] = "";
	const char *key = libssh2_session_hostkey(sn->s, &klen, &ktype);
	const unsigned char *hash = (const unsigned char *)libssh2_hostkey_hash(
		sn->s, LIBSSH2_HOSTKEY_HASH_SHA256);

	kt = vz_kh_type_of(ktype);
	if (!key || !hash || !kt) {
		rc = vz_err_set(e, VZ_EHOSTKEY, "%s: the node presented no host key libssh2 can check "
				"(type %d)", n->where, ktype);
		goto out;
	}
	vz_kh_b64_nopad(hash, 32, fp);
	kh_name(&name, sn);
	if (spec->known_hosts)
		vz_buf_puts(&where, spec->known_hosts);
	if (spec->host_key)
		vz_buf_printf(&where, "%sthe configured host_key", spec->known_hosts ? " or " : "");
	r = libssh2_knownhost_checkp(kh, sn->host, sn->port, key, klen,
				     LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
					     kt->kh_bit, NULL);
	switch (r) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		rc = vz_err_set(e, VZ_EHOSTKEY, "%s: HOST KEY CHANGED: the node presented %s key "
				"SHA256:%s, which differs from the key recorded for %s in %s. Someone may "
				"be intercepting the connection, or the node was reinstalled: check the "
				"fingerprint on the node (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), "
				"then replace the old entry (ssh-keygen -R '%s' -f FILE; ssh-keyscan -p %d "
				"-t %s %s >> FILE)", n->where, kt->label, fp, vz_buf_cstr(&name),
				vz_buf_cstr(&where), kt->scan, vz_buf_cstr(&name), sn->port, kt->scan,
				sn->host);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		rc = vz_err_set(e, VZ_EHOSTKEY, "%s: host key is not known: the node presented %s key "
				"SHA256:%s, and %s has no %s key for %s. If that fingerprint is the "
				"node's (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub on it), add it: "
				"ssh-keyscan -p %d -t %s %s >> %s, and check it with ssh-keygen -lf",
				n->where, kt->label, fp, vz_buf_cstr(&where), kt->label,
				vz_buf_cstr(&name), kt->scan, sn->port, kt->scan, sn->host,
				spec->known_hosts ? spec->known_hosts : "KNOWN_HOSTS");
		break;
	default:
		rc = ssh_fail(n, LIBSSH2_ERROR_KNOWN_HOSTS, "cannot check the host key", e);
		break;
	}
out:
	vz_buf_free(&name);
	vz_buf_free(&where);
	return rc;
}

static void run_drop(ssh_node *sn);

static void ssh_free(ssh_node *sn)
{
	if (!sn)
		return;
	run_drop(sn);
	free(sn->rbuf[0]);
	free(sn->rbuf[1]);
	if (sn->s) {
		/* bounded: a dead peer must not hold up closing */
		uint64_t until = vz_mono_ms() + (sn->broken ? 0 : SSH_CLOSE_MS);
		int rc;
		if (!sn->broken)
			SSH_NB(sn, until, rc, libssh2_session_disconnect(sn->s, "vinz: done"));
		libssh2_session_free(sn->s);
	}
	if (sn->fd >= 0)
		close(sn->fd);
	free(sn->host);
	free(sn);
}

static void ssh_close(vz_node *n)
{
	ssh_free(n->impl);
	free(n->where);
	free(n);
}

/* Waits during a command: returns 0, VZ_ETIMEOUT past deadline, VZ_ECANCELED when the flag is
 * set. Blocks at most SSH_SLICE_MS when there is a cancel flag to look at. */
static int cmd_wait(ssh_node *sn, const vz_node_cmd *cmd, uint64_t deadline)
{
	if (cmd->cancel && *cmd->cancel)
		return VZ_ECANCELED;
	return ssh_wait(sn, deadline, cmd->cancel ? SSH_SLICE_MS : -1);
}

/* Kills the command's process group from a second channel.
 *
 * Why not the "signal" channel request (sshd answers it with killpg() of the session)? libssh2
 * 1.10 has no libssh2_channel_signal_ex, and the Debian 1.10 build refuses a second
 * process_startup on a channel that already ran exec ("Channel can not be reused"). So the
 * command line first reports its process group (sshd made the login shell a session leader and
 * we exec over it, so $$ is the group) as the first line on stderr, which ssh_exec strips. */
static int ssh_kill(vz_node *n, long pgid)
{
	ssh_node *sn = n->impl;
	LIBSSH2_CHANNEL *ch = NULL;
	uint64_t until = vz_mono_ms() + VZ_NODE_KILL_GRACE_MS;
	char line[64], sink[512];
	int rc = 0;

	snprintf(line, sizeof(line), "kill -9 -%ld", pgid);
	while (!(ch = libssh2_channel_open_session(sn->s))) {
		rc = libssh2_session_last_errno(sn->s);
		if (rc != LIBSSH2_ERROR_EAGAIN || ssh_wait(sn, until, -1) != 0)
			goto out;
	}
	SSH_NB(sn, until, rc, libssh2_channel_exec(ch, line));
	if (rc != 0)
		goto out;
	SSH_NB(sn, until, rc, libssh2_channel_send_eof(ch));
	while (rc == 0 && !libssh2_channel_eof(ch)) {
		ssize_t got = libssh2_channel_read_ex(ch, 0, sink, sizeof(sink));
		if (got == LIBSSH2_ERROR_EAGAIN)
			got = libssh2_channel_read_ex(ch, 1, sink, sizeof(sink));
		if (got == LIBSSH2_ERROR_EAGAIN && ssh_wait(sn, until, -1) != 0)
			rc = LIBSSH2_ERROR_TIMEOUT;
		else if (got < 0 && got != LIBSSH2_ERROR_EAGAIN)
			rc = (int)got;
		else if (got == 0)
			break;
	}
	if (rc == 0)
		SSH_NB(sn, until, rc, libssh2_channel_close(ch));
	if (rc == 0)
		SSH_NB(sn, until, rc, libssh2_channel_wait_closed(ch));
	if (rc == 0 && libssh2_channel_get_exit_status(ch) != 0)
		vz_warn("%s: \"%s\" failed with status %d; the command may still run", n->where, line,
			libssh2_channel_get_exit_status(ch));
out:
	if (rc != 0)
		vz_warn("%s: cannot kill the command's process group %ld (libssh2 error %d); it may "
			"still run", n->where, pgid, rc);
	if (ch)
		SSH_NB(sn, until, rc, libssh2_channel_free(ch));
	return rc;
}

/* The first stderr line our command line prints: "vinz-pgid 1234". */
#define PGID_TAG "vinz-pgid "

typedef struct pgid_state {
	char buf[40];
	size_t len;
	int done;
	long pgid; /* 0 until known */
} pgid_state;

/* Takes stderr bytes into p->buf until the first line is complete; returns how many of data it
 * used. When done and the line was not ours (a login shell printing first), p->buf[0..len) holds
 * bytes the caller must pass on before data[used..]. */
static size_t pgid_feed(pgid_state *p, const char *data, size_t len)
{
	size_t used = 0, tl = strlen(PGID_TAG);
	int64_t v;

	while (!p->done && used < len) {
		char c = data[used];
		if (c == '\n') {
			used++;
			p->buf[p->len] = '\0';
			p->done = 1;
			if (vz_startswith(p->buf, PGID_TAG) &&
			    vz_parse_i64(p->buf + tl, 2, INT32_MAX, &v) == 0) {
				p->pgid = (long)v;
				p->len = 0;
			} else {
				p->buf[p->len++] = '\n'; /* room kept below */
			}
			break;
		}
		if (p->len + 2 >= sizeof(p->buf)) {
			p->done = 1; /* too long to be ours */
			break;
		}
		p->buf[p->len++] = c;
		used++;
		if (p->len <= tl && strncmp(p->buf, PGID_TAG, p->len) != 0)
			p->done = 1;
	}
	return used;
}

/* Hands a chunk to the callback unless the command is being stopped; a non-zero return cancels. */
static void deliver(const vz_node_cmd *cmd, int stream, const char *data, size_t len, int *outcome)
{
	if (len && !*outcome && cmd->on_output &&
	    cmd->on_output(cmd->ctx, stream ? VZ_NODE_STDERR : VZ_NODE_STDOUT, data, len) != 0)
		*outcome = VZ_ECANCELED;
}

/* Reads what is there on both streams (at most 16 chunks each, so neither starves the other).
 * Returns libssh2's error, or 0 with *progress set when something came and *ended counting the
 * streams at end of file. */
static int pump_output(ssh_node *sn, LIBSSH2_CHANNEL *ch, const vz_node_cmd *cmd, char *chunk,
		       pgid_state *pg, int *outcome, int *progress, int *ended)
{
	*ended = 0;
	for (int stream = 0; stream < 2; stream++) {
		for (int i = 0; i < 16; i++) {
			ssize_t got = libssh2_channel_read_ex(ch, stream, chunk, SSH_CHUNK);
			size_t used = 0;
			if (got == LIBSSH2_ERROR_EAGAIN)
				break;
			if (got < 0)
				return (int)got;
			if (got == 0) {
				(*ended)++;
				break;
			}
			*progress = 1;
			if (stream == 1 && !pg->done) {
				used = pgid_feed(pg, chunk, (size_t)got);
				if (pg->done && !pg->pgid && pg->len) {
					deliver(cmd, 1, pg->buf, pg->len, outcome);
					pg->len = 0;
				}
			}
			deliver(cmd, stream, chunk + used, (size_t)got - used, outcome);
		}
	}
	return 0;
}

static int ssh_exec_channel(vz_node *n, const vz_node_cmd *cmd, vz_node_result *res, vz_err *e)
{
	ssh_node *sn = n->impl;
	LIBSSH2_CHANNEL *ch = NULL;
	vz_buf line = VZ_BUF_INIT(SSH_CMD_MAX);
	pgid_state pg;
	char *chunk = NULL, *sig = NULL;
	size_t siglen = 0, in_off = 0, in_len = cmd->stdin_data ? cmd->stdin_len : 0;
	uint64_t deadline = cmd->timeout_ms ? vz_mono_ms() + (uint64_t)cmd->timeout_ms : 0;
	int rc = 0, r, outcome = 0, eof_sent = 0, started = 0, progress, ended;

	memset(&pg, 0, sizeof(pg));
	if (sn->broken) {
		rc = vz_err_set(e, VZ_ECONNECT, "%s: the connection broke earlier; reconnect", n->where);
		goto out;
	}
	if (!(chunk = malloc(SSH_CHUNK))) {
		rc = vz_err_set(e, VZ_ENOMEM, "%s: out of memory starting a command", n->where);
		goto out;
	}
	/* The login shell (POSIX: sh, dash or bash) runs this: report the process group (see
	 * ssh_kill), then run the command in cwd with env. eval keeps the process shape of a plain
	 * exec request (one fork + exec of the command); `exec /bin/sh -c` cost one more exec. */
	vz_buf_puts(&line, "echo " PGID_TAG "$$ >&2; ");
	if (cmd->cwd) {
		vz_buf_puts(&line, "cd -- ");
		vz_node_sh_quote(&line, cmd->cwd);
		vz_buf_puts(&line, " || exit 1; ");
	}
	for (size_t i = 0; cmd->env && cmd->env[i]; i++) {
		vz_buf_puts(&line, "export ");
		vz_node_sh_quote(&line, cmd->env[i]);
		vz_buf_puts(&line, "; ");
	}
	vz_buf_puts(&line, "eval ");
	vz_node_sh_quote(&line, cmd->command);
	if (line.failed) {
		rc = vz_err_set(e, line.failed == VZ_ETOOBIG ? VZ_ETOOBIG : VZ_ENOMEM,
				"%s: command with its environment is longer than %d bytes; put it in a "
				"file with vz_node_put", n->where, SSH_CMD_MAX);
		goto out;
	}

	while (!(ch = libssh2_channel_open_session(sn->s))) {
		r = libssh2_session_last_errno(sn->s);
		if (r != LIBSSH2_ERROR_EAGAIN) {
			rc = ssh_fail(n, r, "cannot open a channel", e);
			goto out;
		}
		if ((outcome = cmd_wait(sn, cmd, deadline)) != 0)
			goto stop;
	}
	while ((r = libssh2_channel_exec(ch, line.ptr)) == LIBSSH2_ERROR_EAGAIN) {
		started = 1; /* the request may be on its way: from here a timeout kills */
		if ((outcome = cmd_wait(sn, cmd, deadline)) != 0)
			goto stop;
	}
	if (r != 0) {
		rc = ssh_fail(n, r, "cannot start the command", e);
		goto out;
	}
	started = 1;

	for (;;) {
		progress = 0;
		if (in_off < in_len) {
			size_t want = in_len - in_off > SSH_CHUNK ? SSH_CHUNK : in_len - in_off;
			ssize_t w = libssh2_channel_write(ch, (const char *)cmd->stdin_data + in_off, want);
			if (w > 0) {
				in_off += (size_t)w;
				progress = 1;
			} else if (w == LIBSSH2_ERROR_CHANNEL_CLOSED || w == LIBSSH2_ERROR_CHANNEL_EOF_SENT) {
				in_off = in_len; /* the command is gone or stopped reading */
			} else if (w != LIBSSH2_ERROR_EAGAIN) {
				rc = ssh_fail(n, (int)w, "cannot send stdin", e);
				goto out;
			}
		}
		if (in_off == in_len && !eof_sent) {
			r = libssh2_channel_send_eof(ch);
			if (r == 0 || r == LIBSSH2_ERROR_CHANNEL_CLOSED)
				eof_sent = progress = 1;
			else if (r != LIBSSH2_ERROR_EAGAIN) {
				rc = ssh_fail(n, r, "cannot close stdin", e);
				goto out;
			}
		}
		if ((r = pump_output(sn, ch, cmd, chunk, &pg, &outcome, &progress, &ended)) != 0) {
			rc = ssh_fail(n, r, "cannot read output", e);
			goto out;
		}
		if (outcome || libssh2_channel_eof(ch) || ended == 2)
			break;
		if (!progress && (outcome = cmd_wait(sn, cmd, deadline)) != 0)
			break;
		if (cmd->cancel && *cmd->cancel)
			outcome = VZ_ECANCELED;
		else if (deadline && vz_mono_ms() >= deadline)
			outcome = VZ_ETIMEOUT;
		if (outcome)
			break;
	}

stop:
	if (outcome == VZ_EIO) {
		rc = vz_err_set(e, VZ_EIO, "%s: poll on the connection failed: %s", n->where,
				strerror(errno));
		goto out;
	}
	if (outcome && started) {
		uint64_t until = vz_mono_ms() + VZ_NODE_KILL_GRACE_MS;
		/* the group line may still be on its way (a timeout right after the start) */
		while (!pg.done && !libssh2_channel_eof(ch)) {
			progress = 0;
			if (pump_output(sn, ch, cmd, chunk, &pg, &outcome, &progress, &ended) != 0 ||
			    ended == 2 || (!progress && ssh_wait(sn, until, -1) != 0))
				break;
		}
		if (pg.pgid)
			ssh_kill(n, pg.pgid);
		else
			vz_warn("%s: the command's process group is unknown, so it cannot be killed; "
				"closing its channel", n->where);
		/* drain until sshd reports the end, so the exit signal and close arrive */
		while (!libssh2_channel_eof(ch)) {
			progress = 0;
			if (pump_output(sn, ch, cmd, chunk, &pg, &outcome, &progress, &ended) != 0 ||
			    ended == 2 || (!progress && ssh_wait(sn, until, -1) != 0))
				break;
		}
	}
	if (ch) {
		uint64_t until = vz_mono_ms() + SSH_CLOSE_MS;
		SSH_NB(sn, until, r, libssh2_channel_close(ch));
		if (r == 0)
			SSH_NB(sn, until, r, libssh2_channel_wait_closed(ch));
		if (r != 0 && !outcome) {
			rc = ssh_fail(n, r, "cannot close the channel", e);
			goto out;
		}
		if (libssh2_channel_get_exit_signal(ch, &sig, &siglen, NULL, NULL, NULL, NULL) == 0 && sig)
			res->exit_status = vz_node_signal_status(sig);
		else if (r == 0)
			res->exit_status = libssh2_channel_get_exit_status(ch);
	}
	res->timed_out = outcome == VZ_ETIMEOUT;
	if (outcome == VZ_ETIMEOUT)
		rc = vz_err_set(e, VZ_ETIMEOUT, "%s: command timed out after %d ms and was killed: %.80s",
				n->where, cmd->timeout_ms, cmd->command);
	else if (outcome == VZ_ECANCELED)
		rc = vz_err_set(e, VZ_ECANCELED, "%s: command canceled and killed: %.80s", n->where,
				cmd->command);
out:
	if (sig)
		libssh2_free(sn->s, sig);
	if (ch) {
		uint64_t until = vz_mono_ms() + SSH_CLOSE_MS;
		SSH_NB(sn, until, r, libssh2_channel_free(ch));
	}
	vz_buf_free(&line);
	free(chunk);
	return rc;
}

/* ---- the persistent runner ----
 *
 * With vz_node_set_runner, commands go through one long-lived shell per session (run_loop) on
 * one channel instead of a channel each (sshd forks the login shell per channel). The runner
 * (run_loop) reads requests from its stdin: a line with a count, then that many lines of script,
 * which it evals. The first request defines `vzr` (run_define); each command is then one line,
 * `vzr 'SCRIPT' STDIN_BYTES`, followed by its stdin bytes, which the runner copies to a private
 * file with `head -c` (exactly that many, so they cannot be taken for a request). vzr starts
 * `/bin/sh -c SCRIPT` in its own process group (bash's job control, or setsid: so a timeout
 * kills the whole group as on the channel path), reports the group on stdout, waits, and ends
 * both streams with a marker carrying a random per-session token:
 *   stdout: MARK "P <pgid>\n" ... MARK "E <status>\n"     stderr: ... MARK "E\n"
 * MARK is "vzr-<32 hex>:". The token is in the runner's requests only, never in its argv or in
 * the command's environment, so output cannot end a command by accident. Output is passed on
 * byte for byte around the markers (no newline added or taken); bytes that may start a marker
 * are held back until it is clear they do not. */
#define RUN_HOLD 128          /* > marker + payload: what a stream may hold back */
#define RUN_FALLBACK 1        /* run_exec: the command did not start, run it on its own channel */
#define RUN_DIED 2            /* run_pump: the runner's channel ended */
#define RUN_READY "vinz-runner-ready "

/* The runner itself. bash (in POSIX mode, which reads no startup file) with job control gives
 * every command its own process group without starting anything else; a shell without job
 * control needs setsid, one more exec per command. fd 4 is the channel's stderr: bash's job
 * messages go to /dev/null. $$ is the runner's pid (the login shell execs it). */
static const char run_loop[] =
	"if [ -n \"$BASH_VERSION\" ]; then set -m; j=1; exec 4>&2 2>/dev/null; else j=0; exec 4>&2; "
	"command -v setsid >/dev/null 2>&1 || { echo 'vinz runner: the node has no bash or setsid' >&2; "
	"exit 127; }; fi; "
	"command -v head >/dev/null 2>&1 || { echo 'vinz runner: the node has no head' >&4; exit 127; }; "
	"f=${TMPDIR:-/tmp}/.vinz-runner-$$.stdin; "
	"echo " RUN_READY "$$; "
	"while IFS= read -r n; do s=; while [ \"$n\" -gt 0 ]; do IFS= read -r l || exit 0; "
	"s=\"$s$l\n\"; n=$((n-1)); done; eval \"$s\"; done";

/* What the login shell runs: the loop by bash when there is one, else by /bin/sh. */
static const char run_launch[] =
	"if command -v bash >/dev/null 2>&1; then exec bash --posix -c \"$0\"; else exec /bin/sh -c \"$0\"; fi";

void vz_node_set_runner(vz_node *n, int on)
{
	if (n && n->kind == VZ_NODE_SSH && n->impl)
		((ssh_node *)n->impl)->runner_want = on == VZ_NODE_RUNNER_SH ? on : on ? 1 : 0;
}

long vz_node_runner_pid(const vz_node *n)
{
	const ssh_node *sn = n && n->kind == VZ_NODE_SSH ? n->impl : NULL;
	return sn && sn->rch ? sn->runner_pid : 0;
}

/* The cd/export/eval part of a command line, as the login shell or runner's sh runs it. An argv
 * command is vz_node_exec's "exec 'ARG'..." line, which needs no eval. */
static void cmd_script(vz_buf *b, const vz_node_cmd *cmd)
{
	if (cmd->cwd) {
		vz_buf_puts(b, "cd -- ");
		vz_node_sh_quote(b, cmd->cwd);
		vz_buf_puts(b, " || exit 1; ");
	}
	for (size_t i = 0; cmd->env && cmd->env[i]; i++) {
		vz_buf_puts(b, "export ");
		vz_node_sh_quote(b, cmd->env[i]);
		vz_buf_puts(b, "; ");
	}
	if (cmd->argv) {
		vz_buf_puts(b, cmd->command);
		return;
	}
	vz_buf_puts(b, "eval ");
	vz_node_sh_quote(b, cmd->command);
}

/* Closes the runner's channel (bounded); the runner reads end of file and exits. */
static void run_drop(ssh_node *sn)
{
	uint64_t until = vz_mono_ms() + (sn->broken ? 0 : SSH_CLOSE_MS / 5);
	int r;

	if (!sn->rch)
		return;
	if (!sn->broken) {
		SSH_NB(sn, until, r, libssh2_channel_send_eof(sn->rch));
		SSH_NB(sn, until, r, libssh2_channel_close(sn->rch));
	}
	SSH_NB(sn, until, r, libssh2_channel_free(sn->rch));
	(void)r;
	sn->rch = NULL;
	sn->runner_pid = 0;
	sn->rlen[0] = sn->rlen[1] = 0;
}

/* The runner cannot be used: say so once and run commands on their own channels from now on. */
static void run_off(vz_node *n, const char *why)
{
	ssh_node *sn = n->impl;

	if (!sn->runner_off)
		vz_warn("%s: the command runner %s; running each command on its own channel from now on "
			"(slower, otherwise the same)", n->where, why);
	sn->runner_off = 1;
	run_drop(sn);
}

/* Puts the line count the runner reads first in front of a request (which ends with \n). */
static int run_frame(vz_buf *req)
{
	vz_buf tmp = VZ_BUF_INIT(req->max + 32);
	size_t lines = 0;

	for (size_t i = 0; i < req->len; i++)
		lines += req->ptr[i] == '\n';
	vz_buf_printf(&tmp, "%zu\n", lines);
	vz_buf_add(&tmp, req->ptr, req->len);
	vz_buf_free(req);
	*req = tmp;
	return req->failed ? VZ_ENOMEM : 0;
}

/* The first request after the ready line: the function every command request calls, `vzr SCRIPT
 * STDIN_BYTES [x]`. The command runs in its own process group (bash's job control, or setsid)
 * with stdin from a private copy of the STDIN_BYTES that follow the request, or /dev/null; the
 * markers follow its end. SCRIPT is run by a new /bin/sh, except with x under bash: then SCRIPT
 * is ours (cd, export, then exec of an argv, see cmd_script) and the background subshell bash
 * forks for the job runs it itself, so the command's own exec is the only one. Defined by a
 * request rather than in the runner's command line, so the token is not in the runner's argv
 * (/proc) either. */
static int run_define(vz_node *n, uint64_t until)
{
	ssh_node *sn = n->impl;
	vz_buf req = VZ_BUF_INIT(4096);
	size_t off = 0;
	int rc = 0;

	vz_buf_printf(&req, "vzr() { if [ \"$2\" -gt 0 ]; then (umask 077; exec head -c \"$2\" >\"$f\") || exit 1; "
		      "i=$f; else i=/dev/null; fi; if [ $j = 1 ] && [ \"$3\" = x ]; then "
		      "( eval \"$1\" ) <\"$i\" 2>&4 4>&- & p=$!; elif [ $j = 1 ]; then /bin/sh -c \"$1\" <\"$i\" "
		      "2>&4 4>&- & p=$!; else setsid /bin/sh -c \"$1\" <\"$i\" 2>&4 4>&- & p=$!; fi; "
		      "printf '%%sP %%s\\n' '%s' \"$p\"; wait \"$p\" 2>/dev/null; r=$?; "
		      "[ \"$2\" -gt 0 ] && rm -f \"$f\"; printf '%%sE %%s\\n' '%s' \"$r\"; "
		      "printf '%%sE\\n' '%s' >&4; }\n", sn->mark, sn->mark, sn->mark);
	if (req.failed || run_frame(&req) != 0) {
		rc = -1;
		goto out;
	}
	while (off < req.len) {
		ssize_t w = libssh2_channel_write(sn->rch, req.ptr + off, req.len - off);
		if (w == LIBSSH2_ERROR_EAGAIN) {
			if (ssh_wait(sn, until, -1) != 0) {
				rc = -1;
				goto out;
			}
		} else if (w < 0) {
			rc = -1;
			goto out;
		} else {
			off += (size_t)w;
		}
	}
out:
	vz_buf_free(&req);
	return rc;
}

/* Starts the runner and waits for its ready line (at most SSH_CLOSE_MS). 0 or -1 (*why set). */
static int run_start(vz_node *n, const vz_node_cmd *cmd, char *why, size_t whylen)
{
	ssh_node *sn = n->impl;
	uint64_t until = vz_mono_ms() + SSH_CLOSE_MS;
	vz_buf line = VZ_BUF_INIT(8192);
	unsigned char tok[16];
	char out[512], err[512];
	size_t olen = 0, elen = 0;
	int rc = -1, r;

	snprintf(why, whylen, "could not start");
	if (!sn->rbuf[0] && !(sn->rbuf[0] = malloc(RUN_HOLD + SSH_CHUNK)))
		goto out;
	if (!sn->rbuf[1] && !(sn->rbuf[1] = malloc(RUN_HOLD + SSH_CHUNK)))
		goto out;
	if (vz_random(tok, sizeof(tok)) != 0)
		goto out;
	memcpy(sn->mark, "vzr-", 4);
	for (size_t i = 0; i < sizeof(tok); i++)
		snprintf(sn->mark + 4 + 2 * i, 3, "%02x", (unsigned)tok[i]);
	sn->mark[36] = ':';
	sn->mark[37] = '\0';
	sn->marklen = 37;
	sn->rlen[0] = sn->rlen[1] = 0;
	vz_buf_puts(&line, "exec /bin/sh -c ");
	if (sn->runner_want != VZ_NODE_RUNNER_SH) {
		vz_node_sh_quote(&line, run_launch);
		vz_buf_putc(&line, ' ');
	}
	vz_node_sh_quote(&line, run_loop);
	if (line.failed)
		goto out;
	while (!(sn->rch = libssh2_channel_open_session(sn->s))) {
		r = libssh2_session_last_errno(sn->s);
		if (r != LIBSSH2_ERROR_EAGAIN || ssh_wait(sn, until, -1) != 0 || (cmd->cancel && *cmd->cancel)) {
			snprintf(why, whylen, "could not start (no channel: libssh2 error %d)", r);
			goto out;
		}
	}
	SSH_NB(sn, until, r, libssh2_channel_exec(sn->rch, line.ptr));
	if (r != 0) {
		snprintf(why, whylen, "could not start (exec: libssh2 error %d)", r);
		goto out;
	}
	/* the ready line; a login shell may print lines before it */
	for (;;) {
		ssize_t got = libssh2_channel_read_ex(sn->rch, 0, out + olen, sizeof(out) - 1 - olen);
		ssize_t gerr = libssh2_channel_read_ex(sn->rch, 1, err + elen, sizeof(err) - 1 - elen);
		if (gerr > 0)
			elen += (size_t)gerr;
		if (elen == sizeof(err) - 1)
			elen = 0; /* keep the last words only */
		if (got > 0) {
			char *nl;
			olen += (size_t)got;
			out[olen] = '\0';
			while ((nl = memchr(out, '\n', olen))) {
				int64_t pid;
				*nl = '\0';
				if (vz_startswith(out, RUN_READY) &&
				    vz_parse_i64(out + strlen(RUN_READY), 1, INT32_MAX, &pid) == 0) {
					sn->runner_pid = (long)pid;
					if (nl + 1 < out + olen) /* nothing may follow before a request */
						goto out;
					if (run_define(n, until) != 0) {
						snprintf(why, whylen, "could not be set up (writing to it failed)");
						goto out;
					}
					rc = 0;
					goto out;
				}
				olen -= (size_t)(nl + 1 - out);
				memmove(out, nl + 1, olen);
			}
			if (olen == sizeof(out) - 1)
				olen = 0;
			continue;
		}
		if ((got < 0 && got != LIBSSH2_ERROR_EAGAIN) || got == 0 || libssh2_channel_eof(sn->rch)) {
			err[elen] = '\0';
			while (elen && (err[elen - 1] == '\n' || err[elen - 1] == '\r'))
				err[--elen] = '\0';
			snprintf(why, whylen, "exited at start%s%.300s", elen ? ": " : "", err);
			goto out;
		}
		if (gerr == LIBSSH2_ERROR_EAGAIN && (ssh_wait(sn, until, -1) != 0 || (cmd->cancel && *cmd->cancel))) {
			snprintf(why, whylen, "did not start within %d ms", SSH_CLOSE_MS);
			goto out;
		}
	}
out:
	if (rc != 0)
		run_drop(sn);
	vz_buf_free(&line);
	return rc;
}

typedef struct run_ev {
	long pgid;     /* from the P marker; 0 until the command started */
	int status;    /* from the stdout E marker */
	int ended[2];  /* the E marker of stdout, stderr was seen */
} run_ev;

static const char *find_bytes(const char *h, size_t hl, const char *nd, size_t nl)
{
	for (size_t i = 0; i + nl <= hl; i++) {
		const char *p = memchr(h + i, nd[0], hl - nl + 1 - i);
		if (!p)
			return NULL;
		i = (size_t)(p - h);
		if (!memcmp(p, nd, nl))
			return p;
	}
	return NULL;
}

/* Passes on the output held for stream (0 stdout, 1 stderr) up to the next marker or the bytes
 * that may start one, and acts on complete markers. */
static void run_scan(vz_node *n, int stream, const vz_node_cmd *cmd, run_ev *ev, int *outcome)
{
	ssh_node *sn = n->impl;
	char *b = sn->rbuf[stream];
	size_t len = sn->rlen[stream], pos = 0, ml = sn->marklen;

	while (pos < len && !ev->ended[stream]) {
		const char *hit = find_bytes(b + pos, len - pos, sn->mark, ml);
		if (!hit) {
			size_t keep = 0;
			for (size_t k = ml - 1; k > 0 && !keep; k--)
				if (k <= len - pos && !memcmp(b + len - k, sn->mark, k))
					keep = k;
			deliver(cmd, stream, b + pos, len - pos - keep, outcome);
			pos = len - keep;
			break;
		}
		size_t at = (size_t)(hit - b);
		deliver(cmd, stream, b + pos, at - pos, outcome);
		pos = at;
		const char *pl = b + at + ml, *nl = memchr(pl, '\n', len - at - ml);
		if (!nl) {
			if (len - at < RUN_HOLD)
				break; /* the rest of the marker is on its way */
			/* cannot be ours: pass the bytes on */
			deliver(cmd, stream, b + at, ml, outcome);
			pos = at + ml;
			continue;
		}
		char pay[RUN_HOLD];
		int64_t v;
		size_t pn = (size_t)(nl - pl);
		memcpy(pay, pl, pn < sizeof(pay) ? pn : sizeof(pay) - 1);
		pay[pn < sizeof(pay) ? pn : sizeof(pay) - 1] = '\0';
		if (stream == 0 && pn > 2 && pay[0] == 'P' && vz_parse_i64(pay + 2, 1, INT32_MAX, &v) == 0)
			ev->pgid = (long)v;
		else if (stream == 0 && pn > 2 && pay[0] == 'E' && vz_parse_i64(pay + 2, 0, 255, &v) == 0) {
			ev->status = (int)v;
			ev->ended[0] = 1;
		} else if (stream == 1 && pay[0] == 'E')
			ev->ended[1] = 1;
		else
			vz_warn("%s: runner sent an unknown marker \"%.40s\"", n->where, pay);
		pos = (size_t)(nl + 1 - b);
	}
	if (ev->ended[stream] && pos < len)
		vz_debug("%s: %zu bytes on %s after the command ended (a background process?), dropped",
			 n->where, len - pos, stream ? "stderr" : "stdout");
	if (ev->ended[stream])
		pos = len;
	memmove(b, b + pos, len - pos);
	sn->rlen[stream] = len - pos;
}

/* Reads what the runner sent on both streams. 0, or RUN_DIED when its channel ended or failed. */
static int run_pump(vz_node *n, const vz_node_cmd *cmd, run_ev *ev, int *outcome, int *progress)
{
	ssh_node *sn = n->impl;

	for (int stream = 0; stream < 2; stream++) {
		for (int i = 0; i < 16 && !ev->ended[stream]; i++) {
			ssize_t got = libssh2_channel_read_ex(sn->rch, stream, sn->rbuf[stream] + sn->rlen[stream],
							      SSH_CHUNK);
			if (got == LIBSSH2_ERROR_EAGAIN)
				break;
			if (got <= 0)
				return RUN_DIED;
			*progress = 1;
			sn->rlen[stream] += (size_t)got;
			run_scan(n, stream, cmd, ev, outcome);
		}
	}
	if (!(ev->ended[0] && ev->ended[1]) && libssh2_channel_eof(sn->rch))
		return RUN_DIED;
	return 0;
}

/* Runs cmd through the runner: returns as ssh_exec_channel does, or RUN_FALLBACK when the
 * command was not started (the runner is off, could not start or died before starting it). */
static int run_exec(vz_node *n, const vz_node_cmd *cmd, vz_node_result *res, vz_err *e)
{
	ssh_node *sn = n->impl;
	vz_buf req = VZ_BUF_INIT(SSH_CMD_MAX + 64), script = VZ_BUF_INIT(SSH_CMD_MAX);
	uint64_t deadline = cmd->timeout_ms ? vz_mono_ms() + (uint64_t)cmd->timeout_ms : 0;
	size_t in_len = cmd->stdin_data ? cmd->stdin_len : 0, off = 0;
	run_ev ev;
	char why[512];
	int rc = 0, outcome = 0, progress, r;

	memset(&ev, 0, sizeof(ev));
	if (!sn->rch && run_start(n, cmd, why, sizeof(why)) != 0) {
		run_off(n, why);
		rc = RUN_FALLBACK;
		goto out;
	}
	/* what background processes of earlier commands wrote after their end: not this one's */
	for (int st = 0; st < 2; st++)
		for (int i = 0; i < 16; i++) {
			ssize_t got = libssh2_channel_read_ex(sn->rch, st, sn->rbuf[st], SSH_CHUNK);
			if (got <= 0)
				break; /* a dead runner is noticed below */
			vz_debug("%s: %zd bytes on %s after an earlier command ended, dropped", n->where, got,
				 st ? "stderr" : "stdout");
		}
	/* the request: one call of the runner's function (run_define) */
	cmd_script(&script, cmd);
	vz_buf_puts(&req, "vzr ");
	vz_node_sh_quote(&req, vz_buf_cstr(&script));
	vz_buf_printf(&req, " %zu%s\n", in_len, cmd->argv ? " x" : "");
	if (script.failed || req.failed) {
		rc = RUN_FALLBACK; /* the channel path says what is too big */
		goto out;
	}
	if ((rc = run_frame(&req)) != 0) {
		rc = RUN_FALLBACK;
		goto out;
	}

	for (;;) {
		progress = 0;
		while (off < req.len + in_len) {
			const char *src = off < req.len ? req.ptr + off : (const char *)cmd->stdin_data + (off - req.len);
			size_t want = off < req.len ? req.len - off : req.len + in_len - off;
			ssize_t w = libssh2_channel_write(sn->rch, src, want > SSH_CHUNK ? SSH_CHUNK : want);
			if (w == LIBSSH2_ERROR_EAGAIN)
				break;
			if (w < 0) {
				r = RUN_DIED;
				goto died;
			}
			off += (size_t)w;
			progress = 1;
		}
		if ((r = run_pump(n, cmd, &ev, &outcome, &progress)) != 0)
			goto died;
		if (ev.ended[0] && ev.ended[1])
			break;
		if (!outcome && !progress)
			outcome = cmd_wait(sn, cmd, deadline);
		if (!outcome && cmd->cancel && *cmd->cancel)
			outcome = VZ_ECANCELED;
		else if (!outcome && deadline && vz_mono_ms() >= deadline)
			outcome = VZ_ETIMEOUT;
		if (outcome)
			break;
	}

	if (outcome == VZ_EIO) {
		rc = vz_err_set(e, VZ_EIO, "%s: poll on the connection failed: %s", n->where, strerror(errno));
		run_drop(sn);
		goto out;
	}
	if (outcome && !(ev.ended[0] && ev.ended[1])) {
		uint64_t until = vz_mono_ms() + VZ_NODE_KILL_GRACE_MS;
		int dummy = 1; /* output after a cancel is not passed on */
		if (off < req.len + in_len) {
			/* the runner is still reading our request or stdin: it cannot take another */
			run_drop(sn);
		} else {
			while (!ev.pgid && !ev.ended[0]) {
				progress = 0;
				if (run_pump(n, cmd, &ev, &dummy, &progress) != 0 ||
				    (!progress && ssh_wait(sn, until, -1) != 0))
					break;
			}
			if (ev.pgid && !ev.ended[0])
				ssh_kill(n, ev.pgid);
			while (!(ev.ended[0] && ev.ended[1])) {
				progress = 0;
				if (run_pump(n, cmd, &ev, &dummy, &progress) != 0 ||
				    (!progress && ssh_wait(sn, until, -1) != 0))
					break;
			}
			if (!(ev.ended[0] && ev.ended[1])) {
				vz_warn("%s: the command runner did not finish the killed command within %d ms; "
					"starting a new one", n->where, VZ_NODE_KILL_GRACE_MS);
				run_drop(sn);
			}
		}
	}
	if (ev.ended[0])
		res->exit_status = ev.status;
	res->timed_out = outcome == VZ_ETIMEOUT;
	if (outcome == VZ_ETIMEOUT)
		rc = vz_err_set(e, VZ_ETIMEOUT, "%s: command timed out after %d ms and was killed: %.80s",
				n->where, cmd->timeout_ms, cmd->command);
	else if (outcome == VZ_ECANCELED)
		rc = vz_err_set(e, VZ_ECANCELED, "%s: command canceled and killed: %.80s", n->where,
				cmd->command);
	goto out;
died:
	if (!ev.pgid) {
		run_off(n, "ended before starting a command");
		rc = RUN_FALLBACK;
	} else {
		run_off(n, "ended while a command ran");
		rc = vz_err_set(e, VZ_EIO, "%s: the command runner ended while the command ran (killed on "
				"the node?); it was not run again: %.80s", n->where, cmd->command);
	}
out:
	vz_buf_free(&req);
	vz_buf_free(&script);
	return rc;
}

static int ssh_exec(vz_node *n, const vz_node_cmd *cmd, vz_node_result *res, vz_err *e)
{
	ssh_node *sn = n->impl;

	if (sn->runner_want && !sn->runner_off && !sn->broken) {
		int rc = run_exec(n, cmd, res, e);
		if (rc != RUN_FALLBACK)
			return rc;
		res->exit_status = -1;
	}
	return ssh_exec_channel(n, cmd, res, e);
}

static const vz_node_ops ssh_ops = { ssh_exec, ssh_close };

int vz_node_ssh_open(vz_node *n, const vz_node_spec *spec, vz_err *e)
{
	ssh_node *sn = NULL;
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	int timeout_ms = spec->connect_timeout_ms > 0 ? spec->connect_timeout_ms : 10000;
	uint64_t deadline = vz_mono_ms() + (uint64_t)timeout_ms;
	int rc = 0, r;

	if (!spec->host || !*spec->host || !spec->user || !*spec->user || !spec->key_file ||
	    spec->port < 0 || spec->port > 65535) {
		rc = vz_err_set(e, VZ_EINVAL, "%s: an ssh node needs host, user, key_file and a port "
				"in 1..65535", n->where);
		goto out;
	}
	if (access(spec->key_file, R_OK) != 0) {
		rc = vz_err_set(e, VZ_EINVAL, "%s: cannot read key_file %s: %s", n->where,
				spec->key_file, strerror(errno));
		goto out;
	}
	if ((rc = vz_node_global_init(e)) != 0)
		goto out;
	sn = calloc(1, sizeof(*sn));
	if (!sn || !(sn->host = strdup(spec->host))) {
		rc = vz_err_set(e, VZ_ENOMEM, "%s: out of memory", n->where);
		goto out;
	}
	sn->fd = -1;
	sn->port = spec->port ? spec->port : 22;
	n->impl = sn;
	if ((rc = tcp_connect(n, sn->host, sn->port, deadline, timeout_ms, &sn->fd, e)) != 0)
		goto out;
	if (!(sn->s = libssh2_session_init()) || !(kh = libssh2_knownhost_init(sn->s))) {
		rc = vz_err_set(e, VZ_ENOMEM, "%s: cannot create an ssh session", n->where);
		goto out;
	}
	libssh2_session_set_blocking(sn->s, 0);
	if ((rc = kh_load(n, kh, spec, e)) != 0)
		goto out;
	kh_prefer(sn, kh);

	SSH_NB(sn, deadline, r, libssh2_session_handshake(sn->s, sn->fd));
	if (r != 0) {
		rc = ssh_fail(n, r, "ssh handshake failed", e);
		goto out;
	}
	if ((rc = kh_check(n, kh, spec, e)) != 0)
		goto out;
	SSH_NB(sn, deadline, r,
	       libssh2_userauth_publickey_fromfile_ex(sn->s, spec->user, (unsigned)strlen(spec->user),
						      NULL, spec->key_file, NULL));
	if (r != 0) {
		rc = ssh_fail(n, r, "public key authentication failed", e);
		goto out;
	}
	n->ops = &ssh_ops;
out:
	if (kh)
		libssh2_knownhost_free(kh);
	if (rc != 0 && sn) {
		sn->broken = 1; /* no polite disconnect on a half-open session */
		ssh_free(sn);
		n->impl = NULL;
	}
	return rc;
}
