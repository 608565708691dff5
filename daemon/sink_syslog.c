/*
 * The syslog output.  `local` writes RFC 3164 datagrams to /dev/log, as
 * logger(1) does: the MESSAGE followed by key="value" pairs.  Remote
 * targets get RFC 5424 with MSGID = the event type and the structured
 * data element [dockercloud@32473 ...]: over UDP one datagram per record
 * (one too large is cut to DGRAM_MAX and stays well-formed: see
 * syslog_format_within()), over TCP and TLS with RFC 6587 octet
 * counting, over RELP (plain or TLS) one acknowledged transaction each.
 * TLS verifies the collector's chain and host name against
 * SyslogCAFile/SyslogCAPath of [Output] or the system store (never
 * [Stream]'s anchors: the stream and the collector are different peers).
 * The writer thread owns the socket and uses it blocking; a dead
 * connection is noticed before a batch is written (a collector that
 * closed has sent FIN) so that records are not written into a connection
 * that is already gone.  Closing, TLS ends with a close_notify (waiting
 * briefly for the collector's); a failure is said in words (errno, the
 * collector closing, OpenSSL's reason), never as an empty OpenSSL error.
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
#define DGRAM_MAX 65000
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

/*
 * In a quoted SD-PARAM value: `"`, `\` and `]` escaped with a backslash,
 * and a control character escaped as SPEC 5.2 says, then that escape's
 * backslash escaped too (\\n, \\xNN and so on).
 */
static size_t
escape_param(unsigned char ch, char *out)
{
	out[0] = '\\';
	if (ch == '"' || ch == '\\' || ch == ']') {
		out[1] = (char)ch;
		return 2;
	}
	return 1 + escape_control(ch, out + 1);
}

/*
 * How a record is cut to fit a datagram: never inside a UTF-8 sequence,
 * never inside an escape.  A unit is one character (a lead byte and its
 * continuation bytes, or one byte that is not UTF-8); *w is what it takes
 * written (escaped, in a value), the result how many bytes of v it is.
 */
static size_t
unit_at(const char *v, size_t n, size_t i, int escaped, size_t *w)
{
	unsigned char ch = (unsigned char)v[i];
	size_t k = 1;
	char e[8];

	if (escaped &&
	    (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\' || ch == ']')) {
		*w = escape_param(ch, e);
		return 1;
	}
	if (ch >= 0xc0)
		while (k < 4 && i + k < n &&
		    ((unsigned char)v[i + k] & 0xc0) == 0x80)
			k++;
	*w = k;
	return k;
}

/* The longest run of whole units at the start of v taking at most max. */
static size_t
fit_prefix(const char *v, size_t n, size_t max, int escaped)
{
	size_t i = 0, used = 0, w, k;

	while (i < n && (k = unit_at(v, n, i, escaped, &w), w <= max - used)) {
		used += w;
		i += k;
	}
	return i;
}

/* ` name="value"`, the value cut to cap bytes written (SIZE_MAX: whole) */
static void
add_pair(struct strbuf *b, const char *name, size_t nlen, const char *v,
    size_t n, size_t cap)
{
	size_t k;
	char *p;

	if (cap != SIZE_MAX)
		n = fit_prefix(v, n, cap, 1);
	/* Written in place up to the first byte to escape, if any. */
	k = plain_span(v, n, '"', '\\', ']', 0x7f);
	if ((p = strbuf_room(b, nlen + k + 4)) == NULL)
		return;
	*p++ = ' ';
	memcpy(p, name, nlen);
	p += nlen;
	*p++ = '=';
	*p++ = '"';
	memcpy(p, v, k);
	p += k;
	if (k == n)
		*p++ = '"';
	strbuf_end_at(b, p);
	if (k < n) {
		strbuf_add_escaping(
		    b, v + k, n - k, '"', '\\', ']', 0x7f, escape_param);
		strbuf_add(b, "\"", 1);
	}
}

#define add_param(b, name, e, s, cap)                                          \
	do {                                                                   \
		if ((s).off != SPAN_NONE)                                      \
			add_pair(b, name, sizeof name - 1, ev_str(e, s),       \
			    (s).len, cap);                                     \
	} while (0)

/*
 * The event's key="value" pairs (5424 SD-PARAMs or 3164 trailer), each
 * value cut to cap bytes written.
 */
static void
add_params(
    struct strbuf *b, const struct conf *c, const struct dc_event *e, size_t cap)
{
	add_param(b, "type", e, e->type, cap);
	add_param(b, "action", e, e->action, cap);
	add_param(b, "state", e, e->state, cap);
	add_param(b, "uuid", e, e->uuid, cap);
	add_param(b, "resource_uri", e, e->resource_uri, cap);
	for (unsigned i = 0; i < e->nparents; i++)
		add_param(b, "parent", e, e->parents[i], cap);
	add_param(b, "datetime", e, e->datetime, cap);
	add_param(b, "error", e, e->error, cap);
	if (*c->ns != '\0')
		add_pair(b, "namespace", 9, c->ns, strlen(c->ns), cap);
	for (unsigned i = 0; i < e->nextras; i++) {
		const char *name = ev_str(e, e->extras[i].name);
		char sd[33];
		size_t n = e->extras[i].name.len,
		       p = e->extras[i].in_data ? 5 : 0; /* "data." */

		/* SD-NAME: 1-32 printable ASCII but = SP ] " */
		if (n == 0 || p + n > 32)
			continue;
		memcpy(sd, "data.", p);
		for (size_t k = 0; k < n; k++) {
			unsigned char ch = (unsigned char)name[k];

			sd[p + k] = (char)(ch > 32 && ch < 127 && ch != '=' &&
				    ch != ']' && ch != '"'
				? ch
				: '_');
		}
		add_pair(b, sd, p + n, ev_str(e, e->extras[i].value),
		    e->extras[i].value.len, cap);
	}
}

/* Decimal digits of v, appended. */
static void
add_number(struct strbuf *b, unsigned long v, int width)
{
	char d[24];
	int i = (int)sizeof d;

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while ((v > 0 || (int)sizeof d - i < width) && i > 0);
	strbuf_add(b, d + i, sizeof d - (size_t)i);
}

/*
 * What stays the same within a second: the time stamp to the second, the
 * host name (looked up again each second, as it may change) and our pid.
 * The outputs are formatted on the event loop only.
 */
static struct {
	time_t sec;
	int local;
	char ts[64];
	char host[256];
	size_t tslen, hostlen;
	unsigned long pid;
} hc = { .sec = -1 };

static void
header_cache(int local, time_t sec)
{
	struct tm tm;

	if (sec == hc.sec && local == hc.local)
		return;
	hc.sec = sec;
	hc.local = local;
	hc.pid = (unsigned long)getpid();
	if (local) {
		/* RFC 3164: Mmm dd hh:mm:ss, local time */
		localtime_r(&sec, &tm);
		hc.tslen = strftime(hc.ts, sizeof hc.ts, "%b %e %H:%M:%S", &tm);
		return;
	}
	gmtime_r(&sec, &tm);
	hc.tslen = strftime(hc.ts, sizeof hc.ts, "%Y-%m-%dT%H:%M:%S", &tm);
	if (gethostname(hc.host, sizeof hc.host) == -1 || hc.host[0] == '\0')
		snprintf(hc.host, sizeof hc.host, "-");
	hc.host[255] = '\0';
	for (char *p = hc.host; *p != '\0'; p++)
		if (*p <= 32 || *p >= 127)
			*p = '_';
	hc.hostlen = strlen(hc.host);
}

static void
add_header(struct strbuf *b, const struct conf *c, int priority,
    const char *msgid, size_t msgid_len)
{
	int local = c->syslog_mode == SYSLOG_LOCAL;
	struct timespec now;
	char *p;

	clock_gettime(CLOCK_REALTIME, &now);
	header_cache(local, now.tv_sec);
	strbuf_add(b, "<", 1);
	add_number(b, (unsigned long)(c->syslog_facility * 8 + priority), 1);
	if (local) {
		/* RFC 3164: <PRI>Mmm dd hh:mm:ss TAG[PID]: */
		strbuf_add(b, ">", 1);
		strbuf_add(b, hc.ts, hc.tslen);
		strbuf_add(b, " ", 1);
		strbuf_addstr(b, c->identifier);
		strbuf_add(b, "[", 1);
		add_number(b, hc.pid, 1);
		strbuf_add(b, "]: ", 3);
		return;
	}
	/* <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID */
	strbuf_add(b, ">1 ", 3);
	strbuf_add(b, hc.ts, hc.tslen);
	strbuf_add(b, ".", 1);
	add_number(b, (unsigned long)now.tv_nsec / 1000, 6);
	strbuf_add(b, "Z ", 2);
	strbuf_add(b, hc.host, hc.hostlen);
	strbuf_add(b, " ", 1);
	strbuf_addstr(b, c->identifier);
	strbuf_add(b, " ", 1);
	add_number(b, hc.pid, 1);
	/* " MSGID ": 1-32 printable ASCII */
	if ((p = strbuf_room(b, 34)) == NULL)
		return;
	*p++ = ' ';
	if (msgid_len == 0)
		*p++ = '-';
	for (size_t i = 0; i < msgid_len && i < 32; i++) {
		unsigned char ch = (unsigned char)msgid[i];

		*p++ = (char)(ch > 32 && ch < 127 ? ch : '_');
	}
	*p++ = ' ';
	strbuf_end_at(b, p);
}

/* TCP and TLS frame each record as "LENGTH SP MESSAGE" (RFC 6587). */
static void
add_frame(const struct conf *c, struct strbuf *b, size_t start)
{
	char len[24];
	size_t end = b->len, n;

	if (c->syslog_mode != SYSLOG_TCP && c->syslog_mode != SYSLOG_TLS)
		return;
	add_number(b, end - start, 1); /* grow, then shift the message */
	strbuf_add(b, " ", 1);
	if (b->failed)
		return;
	n = b->len - end;
	memcpy(len, b->buf + end, n);
	memmove(b->buf + start + n, b->buf + start, end - start);
	memcpy(b->buf + start, len, n);
}

/* After the header: MSG and the pairs, values cut to cap bytes. */
static void
add_body(struct strbuf *b, const struct conf *c, const struct dc_event *e,
    const char *message, size_t mlen, size_t cap)
{
	if (c->syslog_mode == SYSLOG_LOCAL) {
		strbuf_add(b, message, mlen);
		add_params(b, c, e, cap);
	} else {
		strbuf_addstr(b, "[dockercloud@32473");
		add_params(b, c, e, cap);
		strbuf_addstr(b, "] ");
		strbuf_add(b, message, mlen);
	}
}

/*
 * One event as a syslog record of at most max bytes, appended to b.  A
 * record too long stays well-formed: MSG is shortened first, then the
 * values, the longest ones (each to the same largest length that fits),
 * every value still quoted and the element closed, cut only between
 * characters and escapes.  Only when the header and the names alone take
 * more than max is the record longer.  The first cut is reported once.
 */
void
syslog_format_within(const struct conf *c, const struct dc_event *e, int priority,
    const char *message, size_t mlen, size_t max, struct strbuf *b)
{
	static int warned;
	size_t start = b->len, head, full, fixed, m, cap = SIZE_MAX;

	add_header(b, c, priority, ev_str(e, e->type) ? ev_str(e, e->type) : "",
	    e->type.len);
	head = b->len;
	add_body(b, c, e, message, mlen, SIZE_MAX);
	if (b->len - start > max && !b->failed) {
		full = b->len - start;
		fixed = full - mlen;
		if (fixed <= max)
			m = fit_prefix(message, mlen, max - fixed, 0);
		else {
			/* no MSG: the largest cap on the values that fits */
			size_t lo = 0, hi = max, mid;

			m = 0;
			while (lo < hi && !b->failed) {
				mid = lo + (hi - lo + 1) / 2;
				strbuf_end_at(b, b->buf + head);
				add_body(b, c, e, message, 0, mid);
				if (b->len - start <= max)
					lo = mid;
				else
					hi = mid - 1;
			}
			cap = lo;
		}
		strbuf_end_at(b, b->buf + head);
		add_body(b, c, e, message, m, cap);
		if (!warned++)
			log_warn("syslog: a record of %zu bytes was cut to %zu "
				 "to fit a datagram (MSG by %zu bytes, the "
				 "structured data by %zu); records too large "
				 "later are cut the same way without a warning",
			    full, b->len - start, mlen - m,
			    fixed - (b->len - start - m));
	}
	add_frame(c, b, start);
}

/* One event as a syslog record, appended to b; one datagram at most. */
void
syslog_format(const struct conf *c, const struct dc_event *e, int priority,
    const char *message, size_t mlen, struct strbuf *b)
{
	syslog_format_within(c, e, priority, message, mlen,
	    c->syslog_mode == SYSLOG_UDP || c->syslog_mode == SYSLOG_LOCAL
		? DGRAM_MAX
		: SIZE_MAX,
	    b);
}

/* A record of the daemon's own (connected, gap, ...) for syslog. */
void
syslog_format_daemon(const struct conf *c, int priority, const char *msgid,
    const char *message, struct strbuf *b)
{
	size_t start = b->len;

	add_header(b, c, priority, msgid, strlen(msgid));
	if (c->syslog_mode != SYSLOG_LOCAL)
		strbuf_addstr(b, "- ");
	strbuf_add_escaped(b, message, strlen(message));
	add_frame(c, b, start);
}

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

/*
 * RELP (the Reliable Event Logging Protocol of rsyslog's librelp): every
 * frame is "TXNR SP COMMAND SP DATALEN [SP DATA] LF", and the collector
 * answers each of ours with "TXNR rsp DATALEN 200 OK..." once it has
 * taken the record.  A record leaves the queue only when its answer came;
 * after a broken session the unanswered ones are sent again, in order.
 */

/* Digits at p[*i]: 1 and the value, 0 if p ends first, -1 if malformed. */
static int
relp_number(const char *p, size_t n, size_t *i, unsigned long *v)
{
	size_t k = 0;

	for (*v = 0; *i < n && p[*i] >= '0' && p[*i] <= '9'; (*i)++, k++) {
		if (k == 9)
			return -1;
		*v = *v * 10 + (unsigned long)(p[*i] - '0');
	}
	if (*i == n)
		return 0;
	return k == 0 ? -1 : 1;
}

/*
 * One frame at the start of p: 1 (in f), 0 when incomplete, -1 if bad or
 * longer than RELP_IN_MAX.  A prefix of a frame is always incomplete.
 */
int
relp_frame_parse(const char *p, size_t n, struct relp_frame *f)
{
	size_t i = 0, k;
	int r;

	if ((r = relp_number(p, n, &i, &f->txnr)) != 1)
		return r;
	if (p[i++] != ' ')
		return -1;
	for (k = 0; i < n && p[i] != ' '; i++, k++) {
		if (k == sizeof f->cmd - 1 || p[i] < 'a' || p[i] > 'z')
			return -1;
		f->cmd[k] = p[i];
	}
	if (i++ == n)
		return 0;
	if (k == 0)
		return -1;
	f->cmd[k] = '\0';
	if ((r = relp_number(p, n, &i, &f->len)) != 1)
		return r;
	if (f->len > 0 && p[i++] != ' ')
		return -1;
	if (f->len >= RELP_IN_MAX)
		return -1;
	if (n - i < f->len + 1)
		return 0;
	if (p[i + f->len] != '\n')
		return -1;
	f->data = p + i;
	f->size = i + f->len + 1;
	return 1;
}

/* The answer to transaction txnr: 0 if "200 OK", else -1 (disconnected). */
static int
relp_answer(struct syslog *s, unsigned long txnr)
{
	struct relp_frame f;
	char why[160];
	size_t k;
	int r;

	while ((r = relp_frame_parse(s->in, s->inlen, &f)) == 0)
		if (s->inlen == sizeof s->in || sock_read(s) == -1)
			break;
	if (s->fd == -1)
		return -1;
	if (r != 1)
		return syslog_fail(s, "RELP", "malformed answer");
	if (strcmp(f.cmd, "serverclose") == 0)
		return syslog_fail(
		    s, "collector", "session closed (serverclose)");
	if (strcmp(f.cmd, "rsp") != 0 || f.txnr != txnr) {
		snprintf(why, sizeof why,
		    "expected the answer to %lu, got %lu %s", txnr, f.txnr,
		    f.cmd);
		return syslog_fail(s, "RELP", why);
	}
	if (f.len < 3 || memcmp(f.data, "200", 3) != 0) {
		/* "500 reason": say it, escaped, up to its first line */
		k = (size_t)snprintf(
		    why, sizeof why, "the collector refused: ");
		for (size_t i = 0;
		     i < f.len && f.data[i] != '\n' && k + 5 < sizeof why;
		     i++) {
			unsigned char ch = (unsigned char)f.data[i];

			k += (size_t)snprintf(why + k, sizeof why - k,
			    ch >= 32 && ch < 127 ? "%c" : "\\x%02x", ch);
		}
		return syslog_fail(s, "RELP", why);
	}
	s->inlen -= f.size;
	memmove(s->in, s->in + f.size, s->inlen);
	return 0;
}

/* The next transaction number: 1 to 999999999, then 1 again. */
static unsigned long
relp_txnr(struct syslog *s)
{
	s->txnr = s->txnr >= 999999999 ? 1 : s->txnr + 1;
	return s->txnr;
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
	strbuf_printf(
	    &s->out, "%lu open %zu %s\n", t, sizeof offers - 1, offers);
	if (s->out.failed)
		return syslog_fail(s, "RELP", "out of memory");
	if (sock_write(s, s->out.buf, s->out.len) == -1 ||
	    relp_answer(s, t) == -1)
		return -1;
	return 0;
}

/* Send up to RELP_WINDOW records at once; the number answered, or -1. */
static int
relp_write(struct syslog *s, struct rec **recs, size_t n)
{
	unsigned long tx[RELP_WINDOW];
	size_t k, acked = 0;

	strbuf_reset(&s->out);
	for (k = 0; k < n && k < RELP_WINDOW &&
	     (k == 0 || s->out.len < RELP_BATCH_BYTES);
	     k++) {
		tx[k] = relp_txnr(s);
		strbuf_printf(&s->out, "%lu syslog %zu ", tx[k], recs[k]->len);
		strbuf_add(&s->out, recs[k]->data, recs[k]->len);
		strbuf_add(&s->out, "\n", 1);
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
syslog_send(struct syslog *s, const struct rec *r)
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
dgram_write(struct syslog *s, struct rec **recs, size_t n)
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
tcp_write(struct syslog *s, struct rec **recs, size_t n)
{
	int r = rec_writev(s->fd, recs, n);

	return r == -1 ? syslog_fail(s, "write", strerror(errno)) : r;
}

/* Records over TLS, up to a TLS record's worth with one SSL_write(). */
static int
tls_write(struct syslog *s, struct rec **recs, size_t n)
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
syslog_write(void *arg, struct rec **recs, size_t n)
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
		char bye[32];
		int n = snprintf(bye, sizeof bye, "%lu close 0\n", t);

		setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (sock_write(s, bye, (size_t)n) == 0)
			relp_answer(s, t);
	}
	syslog_disconnect(s, 1);
	free(strbuf_finish(&s->out));
	SSL_CTX_free(s->ctx);
	free(s->host);
	free(s->port);
	free(s);
}

const struct sink_ops syslog_ops = {
	.write = syslog_write,
	.reset = syslog_reset,
	.error = syslog_error,
	.close = syslog_close,
};

void *
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
