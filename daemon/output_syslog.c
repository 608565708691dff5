/*
 * The syslog output: its entry in the output table and its transports.
 * The records are syslog_format.c's (RFC 3164 for `local`, RFC 5424
 * elsewhere), RELP's frames relp.c's.  `local` sends datagrams to
 * /dev/log; UDP one datagram per record; TCP and TLS a stream of
 * octet-counted records; RELP (plain or TLS) one acknowledged
 * transaction each.  TLS verifies the collector's chain and host name
 * against SyslogCAFile/SyslogCAPath of [Output] or the system store
 * (never [Stream]'s anchors: the stream and the collector are different
 * peers); trust anchors that cannot be loaded make the open fail (the
 * caller keeps what runs).  The writer thread owns the socket and uses it
 * blocking; a dead connection is noticed before a batch is written (a
 * collector that closed has sent FIN) so that records are not written
 * into a connection that is already gone.  Closing, TLS ends with a
 * close_notify (waiting briefly for the collector's); a failure is said
 * in words (errno, the collector closing, OpenSSL's reason), never as an
 * empty OpenSSL error.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dcevents.h"

#define DEV_LOG "/dev/log"
#define IO_TIMEOUT_S 10
#define RELP_WINDOW 128 /* records sent before waiting for answers */
#define RELP_BATCH_BYTES (256 * 1024)
#define BATCH_RECS 64 /* datagrams per sendmmsg() */
#define TLS_BATCH_BYTES 16384 /* one TLS record */
#define SHUTDOWN_MS 100 /* for the collector's close_notify at a close */

struct syslog {
	enum syslog_mode mode;
	char *host;
	char *port;
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char error[640];
	unsigned long txnr; /* RELP: the last transaction number */
	char in[RELP_IN_MAX]; /* RELP: what the collector sent, unparsed */
	size_t inlen;
	struct strbuf out; /* RELP: the frames of a batch */
};

static int
is_tls(enum syslog_mode m)
{
	return m == SYSLOG_TLS || m == SYSLOG_RELP_TLS;
}

static int
is_relp(enum syslog_mode m)
{
	return m == SYSLOG_RELP || m == SYSLOG_RELP_TLS;
}

/*
 * Why a TLS call that returned r failed, in words: the collector closed
 * (with or without a close_notify), the system's errno, OpenSSL's error
 * queue, or a timeout; never an empty OpenSSL error.  Call it at once,
 * with errno as the call left it.
 */
static const char *
tls_why(SSL *ssl, int r, char *buf, size_t n)
{
	int err = errno, e = SSL_get_error(ssl, r);
	unsigned long q = ERR_peek_last_error();
	const char *reason;

	if (e == SSL_ERROR_ZERO_RETURN)
		return "connection closed by the collector (TLS close_notify)";
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
	    (q == 0 && (err == EAGAIN || err == EWOULDBLOCK)))
		return "no answer in time";
	if (q != 0) {
		reason = ERR_reason_error_string(q);
		if (reason != NULL)
			snprintf(buf, n, "%s", reason);
		else
			ERR_error_string_n(q, buf, n);
		ERR_clear_error();
		return buf;
	}
	if (e == SSL_ERROR_SYSCALL && err != 0)
		return strerror(err);
	return "connection closed by the collector (no TLS close_notify)";
}

/*
 * End TLS as RFC 5246 7.2.1 asks: our close_notify, then the collector's
 * for up to SHUTDOWN_MS (it acknowledges, and what it sent meanwhile, a
 * session ticket say, is read, so that close() sends no reset).  Never
 * longer, so that a collector that is gone does not hold up a stop.
 */
static void
tls_shutdown(struct syslog *s)
{
	struct timespec t0, t;
	int flags, r, e, left;

	if ((SSL_get_shutdown(s->ssl) & SSL_SENT_SHUTDOWN) ||
	    !SSL_is_init_finished(s->ssl))
		return;
	flags = fcntl(s->fd, F_GETFL);
	fcntl(s->fd, F_SETFL, flags | O_NONBLOCK);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { s->fd, 0, 0 };

		ERR_clear_error();
		if ((r = SSL_shutdown(s->ssl)) == 1)
			break;
		e = r == 0 ? SSL_ERROR_WANT_READ : SSL_get_error(s->ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			break;
		p.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = SHUTDOWN_MS -
		    (int)((t.tv_sec - t0.tv_sec) * 1000 +
			(t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
	}
	ERR_clear_error();
	fcntl(s->fd, F_SETFL, flags);
}

/* Close the connection; clean (a TLS close_notify) unless after an error. */
static void
syslog_disconnect(struct syslog *s, int clean)
{
	if (s->ssl != NULL) {
		if (clean && s->fd != -1)
			tls_shutdown(s);
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd != -1)
		close(s->fd);
	s->fd = -1;
	s->inlen = 0;
}

static int
syslog_fail(struct syslog *s, const char *what, const char *why)
{
	snprintf(s->error, sizeof s->error, "%s: %s", what, why);
	syslog_disconnect(s, 0);
	return -1;
}

/* Write all of p to a stream collector; -1 (disconnected) on failure. */
static int
sock_write(struct syslog *s, const void *p, size_t n)
{
	if (is_tls(s->mode)) {
		int r;

		ERR_clear_error();
		errno = 0;
		if ((r = SSL_write(s->ssl, p, (int)n)) != (int)n) {
			char e[200];

			return syslog_fail(
			    s, "TLS write", tls_why(s->ssl, r, e, sizeof e));
		}
		return 0;
	}
	while (n > 0) {
		ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);

		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return syslog_fail(s, "write", strerror(errno));
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read what the collector sent into s->in; -1 (disconnected) on failure. */
static int
sock_read(struct syslog *s)
{
	char *p = s->in + s->inlen;
	size_t room = sizeof s->in - s->inlen;
	ssize_t r;

	if (is_tls(s->mode)) {
		int k;

		ERR_clear_error();
		errno = 0;
		if ((k = SSL_read(s->ssl, p, (int)room)) <= 0) {
			char e[200];

			return syslog_fail(
			    s, "TLS read", tls_why(s->ssl, k, e, sizeof e));
		}
		r = k;
	} else {
		do
			r = recv(s->fd, p, room, 0);
		while (r == -1 && errno == EINTR);
		if (r == 0)
			return syslog_fail(s, "collector", "connection closed");
		if (r == -1)
			return syslog_fail(s, "read",
			    errno == EAGAIN || errno == EWOULDBLOCK
				? "no answer in time"
				: strerror(errno));
	}
	s->inlen += (size_t)r;
	return 0;
}

/* The answer to transaction txnr: 0 if "200 OK", else -1 (disconnected). */
static int
relp_answer(struct syslog *s, unsigned long txnr)
{
	struct relp_frame f;
	const char *who;
	char why[160];
	int r;

	while ((r = relp_frame_parse(s->in, s->inlen, &f)) == 0)
		if (s->inlen == sizeof s->in || sock_read(s) == -1)
			break;
	if (s->fd == -1)
		return -1;
	if (r != 1)
		return syslog_fail(s, "RELP", "malformed answer");
	if ((who = relp_answer_check(&f, txnr, why, sizeof why)) != NULL)
		return syslog_fail(s, who, why);
	s->inlen -= f.size;
	memmove(s->in, s->in + f.size, s->inlen);
	return 0;
}

static unsigned long
relp_txnr(struct syslog *s)
{
	return s->txnr = relp_next_txnr(s->txnr);
}

/* Open a session: offer version 0 and the syslog command. */
static int
relp_open(struct syslog *s)
{
	static const char offers[] =
	    "relp_version=0\nrelp_software=dcevents," PACKAGE_VERSION
	    "\ncommands=syslog";
	unsigned long t;

	s->txnr = 0;
	t = relp_txnr(s);
	strbuf_reset(&s->out);
	relp_frame_add(&s->out, t, "open", offers, sizeof offers - 1);
	if (s->out.failed)
		return syslog_fail(s, "RELP", "out of memory");
	if (sock_write(s, s->out.buf, s->out.len) == -1 ||
	    relp_answer(s, t) == -1)
		return -1;
	return 0;
}

/* Send up to RELP_WINDOW records at once; the number answered, or -1. */
static int
relp_write(struct syslog *s, struct record **recs, size_t n)
{
	unsigned long tx[RELP_WINDOW];
	size_t k, acked = 0;

	strbuf_reset(&s->out);
	for (k = 0; k < n && k < RELP_WINDOW &&
	     (k == 0 || s->out.len < RELP_BATCH_BYTES);
	     k++) {
		tx[k] = relp_txnr(s);
		relp_frame_add(
		    &s->out, tx[k], "syslog", recs[k]->data, recs[k]->len);
	}
	if (s->out.failed)
		return syslog_fail(s, "RELP", "out of memory");
	if (sock_write(s, s->out.buf, s->out.len) == 0)
		while (acked < k && relp_answer(s, tx[acked]) == 0)
			acked++;
	if (acked > 0 && acked < k) /* the writer retries without a report */
		log_warn("syslog: %s; %zu records are sent again", s->error,
		    k - acked);
	if (s->out.cap > 4 * RELP_BATCH_BYTES) {
		/* one huge record: do not keep its buffer */
		free(strbuf_finish(&s->out));
		s->out = (struct strbuf){ 0 };
	}
	return acked > 0 ? (int)acked : -1;
}

static int
syslog_connect(struct syslog *s)
{
	struct addrinfo hints = { 0 }, *res, *ai;
	struct timeval tv = { IO_TIMEOUT_S, 0 };
	char where[300];
	int r;

	if (s->mode == SYSLOG_LOCAL) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		snprintf(sun.sun_path, sizeof sun.sun_path, "%s", DEV_LOG);
		s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (s->fd == -1 ||
		    connect(s->fd, (struct sockaddr *)&sun, sizeof sun) == -1)
			return syslog_fail(s, DEV_LOG, strerror(errno));
		return 0;
	}
	snprintf(where, sizeof where, "%s port %s", s->host, s->port);
	hints.ai_socktype = s->mode == SYSLOG_UDP ? SOCK_DGRAM : SOCK_STREAM;
	if ((r = getaddrinfo(s->host, s->port, &hints, &res)) != 0)
		return syslog_fail(s, where, gai_strerror(r));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		s->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (s->fd == -1)
			continue;
		setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (connect(s->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			int on = 1;

			/* No Nagle: a record waits for no delayed ACK. */
			if (s->mode != SYSLOG_UDP)
				setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &on,
				    sizeof on);
			break;
		}
		snprintf(s->error, sizeof s->error, "%s: %s", where,
		    strerror(errno));
		close(s->fd);
		s->fd = -1;
	}
	freeaddrinfo(res);
	if (s->fd == -1)
		return -1;
	if (!is_tls(s->mode))
		return is_relp(s->mode) ? relp_open(s) : 0;
	if ((s->ssl = SSL_new(s->ctx)) == NULL)
		return syslog_fail(s, where, "cannot set up TLS");
	{
		char e[200], why[240];

		if (tls_client_setup(s->ssl, s->host, e, sizeof e) == -1) {
			snprintf(why, sizeof why, "cannot set up TLS: %s", e);
			return syslog_fail(s, where, why);
		}
		SSL_set_fd(s->ssl, s->fd);
		ERR_clear_error();
		errno = 0;
		if ((r = SSL_connect(s->ssl)) != 1) {
			if (!tls_verify_error(s->ssl, why, sizeof why))
				snprintf(why, sizeof why, "TLS handshake: %s",
				    tls_why(s->ssl, r, e, sizeof e));
			return syslog_fail(s, where, why);
		}
	}
	return is_relp(s->mode) ? relp_open(s) : 0;
}

/*
 * Has a stream collector closed its end (or reset it)?  Between batches a
 * collector has nothing to say, so anything readable is its FIN, a reset,
 * a TLS close_notify, RELP's serverclose or, harmless, a TLS 1.3 session
 * ticket.
 */
static int
syslog_dead(struct syslog *s)
{
	struct pollfd p = { s->fd, POLLIN, 0 };
	char buf[512];
	ssize_t n;

	if (s->mode == SYSLOG_UDP || s->mode == SYSLOG_LOCAL)
		return 0;
	if (s->inlen > 0)
		return 1; /* RELP: a frame after the last answer */
	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLERR | POLLHUP))
		return 1;
	if (is_tls(s->mode)) {
		int flags = fcntl(s->fd, F_GETFL), r, e;

		fcntl(s->fd, F_SETFL, flags | O_NONBLOCK);
		ERR_clear_error();
		r = SSL_read(s->ssl, buf, sizeof buf);
		e = SSL_get_error(s->ssl, r);
		fcntl(s->fd, F_SETFL, flags);
		if (r > 0)
			return is_relp(s->mode);
		return e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
	}
	n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
	if (n > 0)
		return is_relp(s->mode);
	return n == 0 ||
	    (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
		errno != EINTR);
}

/*
 * One datagram (UDP or /dev/log).  The formatter keeps records within
 * DGRAM_MAX; one the socket still refuses as too large (a small send
 * buffer) is dropped with an error rather than cut malformed or retried
 * for ever.
 */
static int
syslog_send(struct syslog *s, const struct record *r)
{
	for (;;) {
		ssize_t w = send(s->fd, r->data, r->len, MSG_NOSIGNAL);

		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && errno == EMSGSIZE) {
			log_err("syslog: a record of %zu bytes was dropped: %s",
			    r->len, strerror(errno));
			return 0;
		}
		if (w == -1)
			return syslog_fail(s, "write", strerror(errno));
		return 0; /* a datagram goes whole */
	}
}

/*
 * Datagrams, many with one sendmmsg(); the number sent, or -1.  A record
 * refused as too large goes alone through syslog_send().
 */
static int
dgram_write(struct syslog *s, struct record **recs, size_t n)
{
	struct mmsghdr m[BATCH_RECS];
	struct iovec iov[BATCH_RECS];
	size_t k = n < BATCH_RECS ? n : BATCH_RECS;
	int w;

	memset(m, 0, sizeof m[0] * k);
	for (size_t i = 0; i < k; i++) {
		iov[i].iov_base = recs[i]->data;
		iov[i].iov_len = recs[i]->len;
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	do
		w = sendmmsg(s->fd, m, (unsigned)k, MSG_NOSIGNAL);
	while (w == -1 && errno == EINTR);
	if (w == -1 && errno == EMSGSIZE)
		return syslog_send(s, recs[0]) == 0 ? 1 : -1;
	if (w == -1)
		return syslog_fail(s, "write", strerror(errno));
	return w;
}

/* Records over TCP, many with one writev(); the number written, or -1. */
static int
tcp_write(struct syslog *s, struct record **recs, size_t n)
{
	int r = record_writev(s->fd, recs, n);

	return r == -1 ? syslog_fail(s, "write", strerror(errno)) : r;
}

/* Records over TLS, up to a TLS record's worth with one SSL_write(). */
static int
tls_write(struct syslog *s, struct record **recs, size_t n)
{
	size_t k = 0;

	if (recs[0]->len >= TLS_BATCH_BYTES)
		return sock_write(s, recs[0]->data, recs[0]->len) == 0 ? 1 : -1;
	strbuf_reset(&s->out);
	for (; k < n && s->out.len + recs[k]->len <= TLS_BATCH_BYTES; k++)
		strbuf_add(&s->out, recs[k]->data, recs[k]->len);
	if (s->out.failed)
		return syslog_fail(s, "TLS", "out of memory");
	return sock_write(s, s->out.buf, s->out.len) == 0 ? (int)k : -1;
}

static int
syslog_write(void *arg, struct record **recs, size_t n)
{
	struct syslog *s = arg;
	int closed = 0;

	if (s->fd != -1 && syslog_dead(s)) {
		syslog_fail(s, "collector", "connection closed");
		closed = 1;
	}
	if (s->fd == -1 && syslog_connect(s) == -1) {
		if (closed) { /* both: what happened, then the retry's error */
			char e[sizeof s->error];

			memcpy(e, s->error, sizeof e);
			snprintf(s->error, sizeof s->error,
			    "the collector closed the connection; connecting "
			    "again: %.560s",
			    e);
		}
		return -1;
	}
	switch (s->mode) {
	case SYSLOG_RELP:
	case SYSLOG_RELP_TLS:
		return relp_write(s, recs, n);
	case SYSLOG_TCP:
		return tcp_write(s, recs, n);
	case SYSLOG_TLS:
		return tls_write(s, recs, n);
	default:
		return dgram_write(s, recs, n);
	}
}

static void
syslog_reset(void *arg)
{
	syslog_disconnect(arg, 0);
}

static const char *
syslog_error(void *arg)
{
	return ((struct syslog *)arg)->error;
}

static void
syslog_close(void *arg)
{
	struct syslog *s = arg;

	if (is_relp(s->mode) && s->fd != -1) {
		/* end the session, waiting a little for the answer */
		struct timeval tv = { 0, 500000 };
		unsigned long t = relp_txnr(s);

		strbuf_reset(&s->out);
		relp_frame_add(&s->out, t, "close", NULL, 0);
		setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (!s->out.failed &&
		    sock_write(s, s->out.buf, s->out.len) == 0)
			relp_answer(s, t);
	}
	syslog_disconnect(s, 1);
	free(strbuf_finish(&s->out));
	SSL_CTX_free(s->ctx);
	free(s->host);
	free(s->port);
	free(s);
}

static void *
syslog_open(const struct conf *c)
{
	struct syslog *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->fd = -1;
	s->mode = c->syslog_mode;
	s->host = c->syslog_host ? strdup(c->syslog_host) : NULL;
	s->port = c->syslog_port ? strdup(c->syslog_port) : NULL;
	if (is_tls(s->mode)) {
		char e[200];

		s->ctx = tls_client_ctx(
		    c->syslog_cafile, c->syslog_capath, e, sizeof e);
		if (s->ctx == NULL) {
			log_err("syslog: cannot load the trust anchors "
				"(SyslogCAFile=%s SyslogCAPath=%s): %s",
			    c->syslog_cafile, c->syslog_capath, e);
			syslog_close(s);
			return NULL;
		}
	}
	return s;
}

static int
syslog_enabled(const struct conf *c)
{
	return c->syslog_mode != SYSLOG_NO;
}

/* Another target or other trust anchors: a new connection. */
static int
syslog_reopen(const struct conf *old, const struct conf *c)
{
	return strcmp(old->syslog, c->syslog) != 0 ||
	    strcmp(old->syslog_cafile, c->syslog_cafile) != 0 ||
	    strcmp(old->syslog_capath, c->syslog_capath) != 0;
}

static void
syslog_format_event(const struct conf *c, const struct dc_event *e,
    int priority, const char *mid, const char *msg, size_t mlen,
    struct strbuf *b)
{
	syslog_format(c, e, priority, msg, mlen, b);
}

/* The daemon's own records: MSGID "dcevents", no fields. */
static void
syslog_format_own(const struct conf *c, const char *mid, int priority,
    const char *const *fields, const char *message, struct strbuf *b)
{
	syslog_format_daemon(c, priority, "dcevents", message, b);
}

const struct output_type syslog_output = {
	.name = "syslog",
	.enabled = syslog_enabled,
	.reopen = syslog_reopen,
	.open = syslog_open,
	.needs_message = 1,
	.format_event = syslog_format_event,
	.format_daemon = syslog_format_own,
	.ops = {
		.write = syslog_write,
		.reset = syslog_reset,
		.error = syslog_error,
		.close = syslog_close,
	},
};
