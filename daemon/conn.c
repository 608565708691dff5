/*
 * The connection to the events service and its state machine:
 *
 *   WAIT --timer--> RESOLVE --evdns--> CONNECT --TCP--> TLS --> UPGRADE
 *     ^                                                        |
 *     +-- conn_retry() <-- owner <-- ended <-- OPEN <--- 101 --+
 *
 * Through a proxy (proxy.c says which, if any) the name resolved and the
 * TCP connection are the proxy's, and the tunnel comes before the TLS to
 * the origin (SNI and the name check are the origin's; it runs as a TLS
 * filter over the tunnel's bufferevent):
 *
 *   CONNECT --TCP--> [PROXY TLS, https:// proxies] --> TUNNEL (CONNECT
 *   host:port, 2xx) --> TLS (wss://) --> UPGRADE
 *
 * Every change of state goes through conn_enter(), which logs it (at
 * debug), sets the state's timers and tells STATUS= (sd_notify).  One
 * deadline (ConnectTimeoutSec) covers resolution, TCP, TLS, the proxy's
 * tunnel and the HTTP upgrade.  TLS (tls.c) verifies the chain and the
 * host name (or IP address) and needs TLS 1.2 or newer.  When an attempt fails, the server
 * refuses the credentials (401, 403, 429) or an open connection ends, the
 * connection is released and its owner is told how it ended (struct
 * conn_end); the owner decides: conn_retry() waits and connects again
 * (the daemon's backoff policy is in backoff.c), or nothing more happens
 * (tests/wsecho).  conn_retry() writes the disconnected or
 * authentication-failure record and STATUS=.  Stopping (conn_stop) closes
 * the websocket politely, reading on until the server's close (what it
 * sent before it read ours is handed on), and is not the owner's
 * business.  STATUS= tells
 * the state and the count of messages, at each change of state and,
 * while messages flow, at most once a second.
 */
#include "config.h"

#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dcevents.h"

#define CLOSE_WAIT_MS 1000 /* for the server's answer to our close */
#define STATUS_MS 1000 /* STATUS= follows the count this often at most */

enum conn_state {
	CS_IDLE, /* not started, ended (the owner decides) or stopped */
	CS_WAIT,
	CS_RESOLVE,
	CS_CONNECT,
	CS_PROXY_TLS,
	CS_TUNNEL,
	CS_TLS,
	CS_UPGRADE,
	CS_OPEN,
	CS_CLOSING
};

static const char *const conn_state_name[] = {
	[CS_IDLE] = "idle",
	[CS_WAIT] = "waiting",
	[CS_RESOLVE] = "resolving",
	[CS_CONNECT] = "connecting",
	[CS_PROXY_TLS] = "TLS handshake with the proxy",
	[CS_TUNNEL] = "waiting for the proxy's answer to CONNECT",
	[CS_TLS] = "TLS handshake",
	[CS_UPGRADE] = "upgrading",
	[CS_OPEN] = "open",
	[CS_CLOSING] = "closing",
};

struct conn {
	struct event_base *base;
	struct evdns_base *dns;
	struct ws_handler handler;
	const struct conf *conf;
	SSL_CTX *ssl_ctx;

	enum conn_state state;
	const struct proxy *proxy; /* this attempt's, NULL: direct */
	int tunnelled; /* this attempt goes through a proxy (a reload may
			  change proxy before the connection ends) */
	struct proxy_tunnel *tunnel;
	char tls_label[400]; /* whose TLS failed, in a proxy's presence */
	struct evdns_getaddrinfo_request *req;
	struct evutil_addrinfo *addrs;
	struct evutil_addrinfo *ai;
	struct bufferevent *bev;
	int bev_owns_fd; /* the TLS bufferevent closes its socket */
	struct ws *ws;
	struct event *timer; /* backoff wait */
	struct event *deadline; /* connect timeout, close wait */
	struct event *status_ev; /* STATUS= while open */
	char *target; /* request target; NULL: handshake_target() */
	conn_end_cb end_cb; /* the owner: told how each connection ended */
	void *end_arg;
	struct conn_end end; /* how the last one ended, for conn_retry() */
	char end_why[512];
	char key[HS_KEY_LEN + 1];
	char accept[HS_ACCEPT_LEN + 1];
	char last_error[300];
	char lost_reason[256];
	char status[400]; /* the state, for STATUS= */
	uint64_t status_count; /* the count STATUS= last said */
	int tls_heard; /* a TLS record came from the server */
	unsigned tls_hello_version; /* its ServerHello's version, or 0 */

	uint64_t open_since; /* monotonic ms */
	time_t down_since; /* wall clock, for the gap record */
	uint64_t connects;
	uint64_t messages;
	int reconnect_now; /* after a close we asked for */
	int paused; /* outputs full */
	int close_wait; /* stopping: reading on until the server's close */
	void (*stop_done)(void *);
	void *stop_arg;
};

static void conn_connect(struct conn *);
static void conn_try(struct conn *);
static void conn_start_tls(struct conn *);
static void conn_read_cb(struct bufferevent *, void *);
static void conn_write_cb(struct bufferevent *, void *);
static void conn_event_cb(struct bufferevent *, short, void *);
static void conn_send_upgrade(struct conn *);
static void conn_ws_done(void *, const char *);

/* Messages received on every connection so far. */
static uint64_t
conn_count(const struct conn *c)
{
	return c->messages + (c->ws != NULL ? ws_messages(c->ws) : 0);
}

/* STATUS= with the state and the count. */
static void
conn_notify(struct conn *c)
{
	c->status_count = conn_count(c);
	notify_status("%s; %llu events", c->status,
	    (unsigned long long)c->status_count);
}

/* Once a second while open: the count, if it moved (no cost per message). */
static void
conn_status_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (conn_count(c) != c->status_count)
		conn_notify(c);
}

/*
 * The TCP connect runs on a plain socket bufferevent, which leaves the
 * socket open when freed so that it can be handed to the TLS one.
 */
static void
conn_free_bev(struct conn *c)
{
	evutil_socket_t fd;

	if (c->bev == NULL)
		return;
	fd = bufferevent_getfd(c->bev);
	bufferevent_free(c->bev);
	if (!c->bev_owns_fd && fd >= 0)
		evutil_closesocket(fd);
	c->bev = NULL;
	c->bev_owns_fd = 0;
}

/* Release everything of the current attempt or connection. */
static void
conn_teardown(struct conn *c)
{
	if (c->req != NULL) {
		struct evdns_getaddrinfo_request *req = c->req;

		c->req = NULL;
		evdns_getaddrinfo_cancel(req);
	}
	proxy_tunnel_free(c->tunnel);
	c->tunnel = NULL;
	if (c->addrs != NULL)
		evutil_freeaddrinfo(c->addrs);
	c->addrs = c->ai = NULL;
	if (c->ws != NULL) {
		c->messages += ws_messages(c->ws);
		ws_free(c->ws);
		c->ws = NULL;
	}
	conn_free_bev(c);
	event_del(c->deadline);
	event_del(c->timer);
	event_del(c->status_ev);
}

/*
 * Every change of state goes through here: the transition is logged (at
 * debug), the state's timers are set, and STATUS= is told when fmt is not
 * NULL.  Entering IDLE, WAIT or RESOLVE first releases the attempt or
 * connection there was; WAIT waits ms before connecting, RESOLVE arms the
 * deadline (ConnectTimeoutSec), CLOSING the wait for the server's close;
 * OPEN ends the deadline and follows the count in STATUS=.
 */
static void __attribute__((format(printf, 4, 5)))
conn_enter(struct conn *c, enum conn_state s, uint64_t ms, const char *fmt,
    ...)
{
	struct timeval tv;
	va_list ap;

	log_debug("connection: %s -> %s", conn_state_name[c->state],
	    conn_state_name[s]);
	if (s == CS_IDLE || s == CS_WAIT || s == CS_RESOLVE)
		conn_teardown(c);
	c->state = s;
	switch (s) {
	case CS_WAIT:
		tv = tv_ms(ms);
		event_add(c->timer, &tv);
		break;
	case CS_RESOLVE:
		tv = tv_ms(c->conf->connect_timeout_ms);
		event_add(c->deadline, &tv);
		break;
	case CS_OPEN:
		event_del(c->deadline);
		break;
	case CS_CLOSING:
		tv = tv_ms(CLOSE_WAIT_MS);
		event_add(c->deadline, &tv);
		break;
	default:
		break;
	}
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(c->status, sizeof c->status, fmt, ap);
		va_end(ap);
		conn_notify(c);
	}
	if (s == CS_OPEN && notify_enabled()) {
		tv = tv_ms(STATUS_MS);
		event_add(c->status_ev, &tv);
	}
}

/* Stopped: everything released, then done is called. */
static void
conn_stopped(struct conn *c)
{
	void (*done)(void *) = c->stop_done;

	c->stop_done = NULL;
	conn_enter(c, CS_IDLE, 0, NULL);
	done(c->stop_arg);
}

/*
 * The attempt or connection is over (c->end says how): release it and
 * let the owner decide what comes next.
 */
static void
conn_ended(struct conn *c, const char *why)
{
	snprintf(c->end_why, sizeof c->end_why, "%s", why);
	c->end.why = c->end_why;
	c->end.conf = c->conf;
	if (c->stop_done != NULL) {
		conn_stopped(c);
		return;
	}
	conn_enter(c, CS_IDLE, 0, NULL);
	c->end_cb(c->end_arg, &c->end);
}

/* An attempt failed before the websocket was open. */
static void __attribute__((format(printf, 2, 3)))
conn_fail(struct conn *c, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	c->end = (struct conn_end){ .kind = CONN_FAILED };
	stats_add(STAT_DISCONNECTS, STAT_DISC_CONNECT_FAILED, 1);
	conn_ended(c, why);
}

/* Why an open connection ended, as disconnects_total{reason} says it. */
static size_t
conn_lost_label(
    const struct conn *c, const char *why, uint16_t sent, uint16_t received)
{
	if (c->reconnect_now)
		return STAT_DISC_RECONFIGURE;
	if (sent == 1002 || sent == 1007)
		return STAT_DISC_PROTOCOL;
	if (received != 0)
		return STAT_DISC_CLOSED;
	if (strstr(why, "(keepalive)") != NULL)
		return STAT_DISC_TIMEOUT;
	return STAT_DISC_NETWORK;
}

/* An open connection ended. */
static void
conn_lost(struct conn *c, const char *why)
{
	uint64_t up = clock_ms() - c->open_since;
	uint16_t sent = 0, received = 0;

	c->close_wait = 0;
	if (c->ws != NULL) {
		ws_close_codes(c->ws, &sent, &received);
		c->messages += ws_messages(c->ws);
		ws_free(c->ws);
		c->ws = NULL;
	}
	c->down_since = time(NULL);
	stats_set(STAT_CONNECTED, 0, 0);
	if (c->stop_done != NULL) {
		char f1[300];
		const char *fields[] = { f1, NULL };

		/* Its own MESSAGE_ID: the catalog's text promises no retry. */
		snprintf(f1, sizeof f1, "DCEVENTS_REASON=%s", why);
		record_daemon(MID_STOPPED, 6, fields,
		    "disconnected from %s: %s", c->conf->url, why);
		conn_stopped(c);
		return;
	}
	c->end = (struct conn_end){ .kind = CONN_LOST,
		.up_ms = up,
		.reconnect = c->reconnect_now,
		.close_sent = sent,
		.close_received = received };
	stats_add(STAT_DISCONNECTS, conn_lost_label(c, why, sent, received), 1);
	c->reconnect_now = 0;
	conn_ended(c, why);
}

/* 401, 403, 429: the server refuses the credentials. */
static void
conn_auth_failed(struct conn *c, const struct hs_reply *r)
{
	char why[64];
	const char *what = r->status == 429 ? "too many login attempts"
	    : r->status == 403              ? "access denied"
					    : "bad credentials";

	snprintf(why, sizeof why, "HTTP %d (%s)", r->status, what);
	stats_add(STAT_DISCONNECTS, STAT_DISC_AUTH, 1);
	c->end = (struct conn_end){ .kind = CONN_AUTH,
		.http_status = r->status,
		.retry_after_ms = r->retry_after_ms };
	conn_ended(c, why);
}

/*
 * The tunnel's outcome: TLS to the origin inside it (wss://) or the
 * upgrade at once (ws://); 407 (or 401) is an authentication failure at
 * the proxy, anything else a failed attempt with the proxy's words.
 */
static void
conn_tunnel_done(void *arg, const struct proxy_done *d)
{
	struct conn *c = arg;

	/* d points into the tunnel: the teardown frees it after reading d. */
	switch (d->result) {
	case PROXY_OK:
		proxy_tunnel_free(c->tunnel);
		c->tunnel = NULL;
		bufferevent_setcb(
		    c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
		if (c->conf->secure)
			conn_start_tls(c);
		else
			conn_send_upgrade(c);
		return;
	case PROXY_AUTH:
		c->end = (struct conn_end){ .kind = CONN_AUTH,
			.http_status = d->status,
			.proxy = c->proxy->url };
		conn_ended(c, d->why);
		return;
	default:
		conn_fail(c, "%s", d->why);
		return;
	}
}

/* Connected to the proxy (TLS to it done): ask for the tunnel. */
static void
conn_start_tunnel(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	if (ssl != NULL)
		SSL_set_msg_callback(ssl, NULL);
	conn_enter(c, CS_TUNNEL, 0, NULL);
	c->tunnel = proxy_tunnel_start(c->bev, c->proxy, c->conf->host,
	    c->conf->port, conn_tunnel_done, c);
	if (c->tunnel == NULL)
		conn_fail(c, "out of memory");
}

/*
 * Why the bufferevent failed; sets *tls for a TLS-level failure and *errp
 * to the first OpenSSL error (0: none).
 */
static void
conn_error_text(struct conn *c, short events, char *buf, size_t n, int *tls,
    unsigned long *errp)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	unsigned long e, first = 0;
	int err = EVUTIL_SOCKET_ERROR();

	*tls = 0;
	/*
	 * libevent also files SSL_ERROR_SYSCALL here (library 0): that is
	 * a socket error, reported from errno below.
	 */
	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		if (first == 0 && ERR_GET_LIB(e) != 0)
			first = e;
	/* An alert from the peer may be left in the thread's queue. */
	while ((e = ERR_get_error()) != 0)
		if (first == 0 && ERR_GET_LIB(e) != 0)
			first = e;
	if (ssl != NULL && tls_verify_error(ssl, buf, n))
		*tls = 1;
	else if (first != 0 &&
	    ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		/* OpenSSL 3 calls a TCP close without close_notify an error. */
		snprintf(buf, n,
		    "connection closed by the server (without TLS "
		    "close_notify)");
	} else if (first != 0) {
		char e2[200];

		ERR_error_string_n(first, e2, sizeof e2);
		snprintf(buf, n, "TLS failed: %s", e2);
		*tls = 1;
	} else if ((events & BEV_EVENT_ERROR) && err != 0)
		snprintf(buf, n, "%s", evutil_socket_error_to_string(err));
	else
		snprintf(buf, n, "connection closed by the server");
	*errp = first;
	ERR_clear_error();
}

static const char *
tls_version_name(unsigned v, char *buf, size_t n)
{
	if (v == 0x0300)
		return "SSL 3.0";
	if (v >= 0x0301 && v <= 0x0304)
		snprintf(buf, n, "TLS 1.%u", v - 0x0301);
	else
		snprintf(buf, n, "version 0x%04x", v);
	return buf;
}

/*
 * The handshake failed: say so, and when the server's versions are the
 * cause, which they are.  A server limited to TLS 1.0 or 1.1 answers our
 * hello (TLS 1.2 and 1.3) with its own older version, or with a
 * protocol_version alert, or (some TLS stacks drop the alert) closes
 * without a word.
 */
static void
conn_tls_failed(struct conn *c, const char *why, int tls, unsigned long e)
{
	const char *rs = e != 0 ? ERR_reason_error_string(e) : NULL;
	int r = e != 0 ? ERR_GET_REASON(e) : 0;
	char v[32];

	if (c->tls_label[0] != '\0') {
		/* Through a proxy: say whose TLS it was. */
		conn_fail(c, "TLS with %s: %s", c->tls_label,
		    strncmp(why, "TLS ", 4) == 0 ? why + 4 : why);
		return;
	}
	if (rs != NULL && r == SSL_R_UNSUPPORTED_PROTOCOL &&
	    c->tls_hello_version != 0 && c->tls_hello_version < 0x0303)
		conn_fail(c,
		    "TLS handshake: %s (the server offers %s; TLS 1.2 or "
		    "newer is required)",
		    rs, tls_version_name(c->tls_hello_version, v, sizeof v));
	else if (rs != NULL && r == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION)
		conn_fail(c,
		    "TLS handshake: %s (the server accepts neither TLS 1.2 "
		    "nor 1.3; TLS 1.2 or newer is required)",
		    rs);
	else if (tls)
		conn_fail(c, "%s", why);
	else if (!c->tls_heard)
		conn_fail(c,
		    "TLS handshake: %s before the server answered our hello "
		    "(a server without TLS 1.2 or newer, or without a "
		    "cipher we offer, may do that)",
		    strncmp(why, "connection closed", 17) == 0
			? "the connection was closed"
			: why);
	else
		conn_fail(c, "TLS handshake: %s", why);
}

/* Notes what the server's side of the handshake says of its version. */
static void
conn_tls_msg(int write_p, int version, int type, const void *buf, size_t len,
    SSL *ssl, void *arg)
{
	struct conn *c = arg;
	const unsigned char *p = buf;

	if (write_p)
		return;
	c->tls_heard = 1;
	/* type, length (3), legacy_version (2) */
	if (type == SSL3_RT_HANDSHAKE && len >= 6 &&
	    p[0] == SSL3_MT_SERVER_HELLO)
		c->tls_hello_version = (unsigned)p[4] << 8 | p[5];
}

/*
 * The upgrade request (with the credential) stays in secret memory: the
 * output buffer refers to it instead of copying it, the socket or
 * SSL_write() reads it from there (OpenSSL encrypts it into its own
 * buffer), and it is wiped once sent or when the connection is freed.
 */
static void
conn_send_upgrade(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	size_t len;
	char *req;

	if (ssl != NULL)
		SSL_set_msg_callback(ssl, NULL);
	if (handshake_key(c->key) == -1) {
		conn_fail(c, "no random bytes for the websocket key");
		return;
	}
	handshake_accept(c->key, c->accept);
	req = handshake_request_for(c->conf, c->target, c->key, &len);
	if (req == NULL) {
		conn_fail(c, "out of memory");
		return;
	}
	if (evbuffer_add_reference(bufferevent_get_output(c->bev), req, len,
		secret_ref_done, req) == -1) {
		secret_free(req);
		conn_fail(c, "out of memory");
		return;
	}
	conn_enter(c, CS_UPGRADE, 0, NULL);
}

static void
conn_opened(struct conn *c, size_t header_len)
{
	/* ws:// through an https:// proxy: that TLS is the proxy's. */
	SSL *ssl =
	    c->conf->secure ? bufferevent_openssl_get_ssl(c->bev) : NULL;
	char f1[300], f2[64], f3[320], via[320] = "";
	const char *fields[] = { f1, f2, c->proxy ? f3 : NULL, NULL };

	evbuffer_drain(bufferevent_get_input(c->bev), header_len);
	if (c->proxy != NULL) {
		snprintf(f3, sizeof f3, "DCEVENTS_PROXY=%s", c->proxy->url);
		snprintf(via, sizeof via, " via proxy %s", c->proxy->url);
	}
	c->ws = ws_new(c->base, c->bev, c->conf, &c->handler, conn_ws_done, c);
	if (c->ws == NULL) {
		conn_fail(c, "out of memory");
		return;
	}
	c->open_since = clock_ms();
	c->connects++;
	stats_add(STAT_CONNECTS, 0, 1);
	stats_set(STAT_CONNECTED, 0, 1);
	snprintf(f1, sizeof f1, "DCEVENTS_URL=%s", c->conf->url);
	snprintf(f2, sizeof f2, "DCEVENTS_TLS=%s",
	    ssl ? SSL_get_version(ssl) : "none");
	record_daemon(MID_CONNECTED, 6, fields, "connected to %s (%s%s%s)%s",
	    c->conf->url, ssl ? SSL_get_version(ssl) : "no TLS",
	    ssl ? ", " : "", ssl ? SSL_get_cipher_name(ssl) : "", via);
	if (c->down_since != 0) {
		char t1[32], t2[32];
		time_t now = time(NULL);
		struct tm tm;

		strftime(t1, sizeof t1, "%Y-%m-%dT%H:%M:%SZ",
		    gmtime_r(&c->down_since, &tm));
		strftime(
		    t2, sizeof t2, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
		snprintf(f1, sizeof f1, "DCEVENTS_GAP_START=%s", t1);
		snprintf(f2, sizeof f2, "DCEVENTS_GAP_END=%s", t2);
		if (now > c->down_since)
			stats_add(STAT_STREAM_GAP_MS, 0,
			    (uint64_t)(now - c->down_since) * 1000);
		record_daemon(MID_GAP, 5, fields,
		    "the stream was down: events between %s and %s may be "
		    "missing",
		    t1, t2);
	}
	conn_enter(c, CS_OPEN, 0, "Connected to %s%s", c->conf->url, via);
	if (c->paused) {
		conn_pause(c);
		return;
	}
	/* Frames may have arrived with the reply. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		ws_input(c->ws);
}

static void
conn_ws_done(void *arg, const char *why)
{
	struct conn *c = arg;

	snprintf(c->lost_reason, sizeof c->lost_reason, "%s", why);
	c->close_wait = 0;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_lost(c, c->lost_reason);
		return;
	}
	/* Let the close frame go out first; the write callback ends it. */
	conn_enter(c, CS_CLOSING, 0, NULL);
	bufferevent_disable(c->bev, EV_READ);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct hs_reply r;
	size_t len;
	int rc;

	if (c->state == CS_OPEN || (c->state == CS_CLOSING && c->close_wait)) {
		ws_input(c->ws);
		return;
	}
	if (c->state != CS_UPGRADE)
		return;
	len = evbuffer_get_length(in);
	if (len > HS_MAX_HEADER + 1)
		len = HS_MAX_HEADER + 1;
	rc = handshake_parse((const char *)evbuffer_pullup(in, (ssize_t)len),
	    len, c->accept, &r);
	if (rc == HS_INCOMPLETE)
		return;
	if (rc == HS_OK) {
		conn_opened(c, r.header_len);
		return;
	}
	if (r.status == 401 || r.status == 403 || r.status == 429)
		conn_auth_failed(c, &r);
	else if (r.status != 0)
		conn_fail(
		    c, "HTTP %d instead of an upgrade (%s)", r.status, r.error);
	else
		conn_fail(c, "bad upgrade reply: %s", r.error);
}

/*
 * While closing: the close frame is out once the output is empty.  (A
 * TLS bufferevent defers this callback: one may arrive from an earlier
 * flush with the close frame still waiting.)  Stopping waits for the
 * server's close instead: what it sent before it read ours are events,
 * handed on like any other.
 */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state == CS_CLOSING && !c->close_wait &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_lost(c, c->lost_reason);
}

/* Read what the socket still holds and hand it to the websocket. */
static void
conn_drain(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	char buf[16384];

	/* Through a proxy the socket's bytes are not the websocket's. */
	for (int i = 0; !c->tunnelled && i < 4096; i++) { /* 64 MiB */
		int n = ssl != NULL
		    ? SSL_read(ssl, buf, sizeof buf)
		    : (int)recv(fd, buf, sizeof buf, MSG_DONTWAIT);

		if (n <= 0)
			break;
		evbuffer_add(in, buf, (size_t)n);
	}
	ERR_clear_error();
	if (c->ws != NULL && evbuffer_get_length(in) > 0)
		ws_input(c->ws);
}

static void
conn_event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct conn *c = arg;
	char why[300];
	unsigned long e;
	int tls;

	if (events & BEV_EVENT_CONNECTED) {
		if (c->state == CS_CONNECT && c->proxy != NULL) {
			log_debug("connected to the proxy %s", c->proxy->url);
			if (c->proxy->secure)
				conn_start_tls(c);
			else
				conn_start_tunnel(c);
		} else if (c->state == CS_PROXY_TLS)
			conn_start_tunnel(c);
		else if (c->state == CS_CONNECT && c->conf->secure)
			conn_start_tls(c);
		else if (c->state == CS_CONNECT || c->state == CS_TLS)
			conn_send_upgrade(c);
		return;
	}
	if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	conn_error_text(c, events, why, sizeof why, &tls, &e);
	switch (c->state) {
	case CS_CONNECT:
		/* A refused address: the next one may do. */
		snprintf(c->last_error, sizeof c->last_error, "%s", why);
		conn_free_bev(c);
		c->ai = c->ai->ai_next;
		conn_try(c);
		return;
	case CS_TLS:
	case CS_PROXY_TLS:
		conn_tls_failed(c, why, tls, e);
		return;
	case CS_UPGRADE:
		conn_fail(c, "%s during the upgrade", why);
		return;
	case CS_OPEN:
		/*
		 * A write failed (a pong into a reset connection): what the
		 * server sent before it went away is still readable and
		 * must not be lost.
		 */
		log_debug("connection error 0x%x: %s", events, why);
		if (events & BEV_EVENT_WRITING) {
			conn_drain(c);
			if (c->state != CS_OPEN && c->state != CS_CLOSING)
				return; /* the websocket ended it meanwhile */
		}
		conn_lost(c, c->state == CS_CLOSING ? c->lost_reason : why);
		return;
	case CS_CLOSING:
		conn_lost(c, c->lost_reason);
		return;
	default:
		return;
	}
}

static SSL *
conn_ssl(struct conn *c, const char *host)
{
	SSL *ssl;
	char e[200];

	if ((ssl = SSL_new(c->ssl_ctx)) == NULL)
		return NULL;
	/* Until the handshake is over (conn_send_upgrade). */
	c->tls_heard = 0;
	c->tls_hello_version = 0;
	SSL_set_msg_callback(ssl, conn_tls_msg);
	SSL_set_msg_callback_arg(ssl, c);
	if (tls_client_setup(ssl, host, e, sizeof e) == -1) {
		log_debug("TLS setup for %s: %s", host, e);
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/*
 * No Nagle: what the client sends (pongs, a close, wsecho's echoes) is
 * small and answered; held back until the peer's delayed ACK it waits
 * 40 ms a message.
 */
static void
conn_nodelay(struct conn *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	int one = 1;

	if (fd >= 0 &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == -1)
		log_debug("TCP_NODELAY: %s", strerror(errno));
}

/* Connect to the current address, or the next that can be tried. */
static void
conn_try(struct conn *c)
{
	/*
	 * The socket goes on to a TLS bufferevent (wss:// direct, https://
	 * proxies) or stays in this one, under the origin's TLS filter
	 * through an http:// proxy: then this one closes it, when the filter
	 * (which frees it later) is done with it.
	 */
	int own = c->proxy != NULL && !c->proxy->secure;

	for (; c->ai != NULL; c->ai = c->ai->ai_next) {
		c->bev = bufferevent_socket_new(
		    c->base, -1, own ? BEV_OPT_CLOSE_ON_FREE : 0);
		if (c->bev == NULL) {
			conn_fail(c, "out of memory");
			return;
		}
		c->bev_owns_fd = own;
		bufferevent_setcb(
		    c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
		conn_enter(c, CS_CONNECT, 0, NULL);
		if (log_get_verbosity() > 0) {
			char a[64] = "?";
			const struct sockaddr *sa = c->ai->ai_addr;

			if (sa->sa_family == AF_INET)
				evutil_inet_ntop(AF_INET,
				    &((const struct sockaddr_in *)sa)->sin_addr,
				    a, sizeof a);
			else if (sa->sa_family == AF_INET6)
				evutil_inet_ntop(AF_INET6,
				    &((const struct sockaddr_in6 *)sa)
					 ->sin6_addr,
				    a, sizeof a);
			log_debug("trying %s port %s%s", a,
			    c->proxy ? c->proxy->port : c->conf->port,
			    c->proxy ? " (the proxy)" : "");
		}
		if (bufferevent_socket_connect(
			c->bev, c->ai->ai_addr, (int)c->ai->ai_addrlen) == 0) {
			conn_nodelay(c);
			return;
		}
		snprintf(c->last_error, sizeof c->last_error, "%s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		conn_free_bev(c);
	}
	if (c->proxy != NULL)
		conn_fail(c, "cannot connect to the proxy %s: %s",
		    c->proxy->url,
		    c->last_error[0] ? c->last_error : "no address");
	else
		conn_fail(c, "%s",
		    c->last_error[0] ? c->last_error : "no address");
}

/*
 * TCP is up: move the socket to a TLS bufferevent and shake hands, with
 * the proxy (CS_CONNECT through an https:// proxy) or the origin.
 * Through a tunnel the origin's TLS is a filter over the tunnel's
 * bufferevent, which it then owns (and frees).
 */
static void
conn_start_tls(struct conn *c)
{
	int to_proxy = c->state == CS_CONNECT && c->proxy != NULL;
	const char *host = to_proxy ? c->proxy->host : c->conf->host;
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	struct bufferevent *bev;
	SSL *ssl;

	ERR_clear_error();
	if (c->proxy != NULL && to_proxy)
		snprintf(c->tls_label, sizeof c->tls_label, "the proxy %s",
		    c->proxy->url);
	else if (c->proxy != NULL)
		snprintf(c->tls_label, sizeof c->tls_label,
		    "%s:%s through the proxy %s", c->conf->host, c->conf->port,
		    c->proxy->url);
	log_debug("TLS handshake with %s", c->proxy ? c->tls_label : host);
	if ((ssl = conn_ssl(c, host)) == NULL) {
		conn_fail(c, "cannot set up TLS");
		return;
	}
	if (c->state == CS_TUNNEL) {
		bev = bufferevent_openssl_filter_new(c->base, c->bev, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL) {
			SSL_free(ssl);
			conn_fail(c, "out of memory");
			return;
		}
		/* Freeing it frees the tunnel's (bev_owns_fd unchanged). */
		c->bev = bev;
	} else {
		bufferevent_free(c->bev);
		c->bev = bufferevent_openssl_socket_new(c->base, fd, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (c->bev == NULL) {
			SSL_free(ssl);
			evutil_closesocket(fd);
			conn_fail(c, "out of memory");
			return;
		}
		c->bev_owns_fd = 1;
	}
	bufferevent_setcb(
	    c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	conn_enter(c, to_proxy ? CS_PROXY_TLS : CS_TLS, 0, NULL);
}

static void
conn_dns_cb(int err, struct evutil_addrinfo *res, void *arg)
{
	struct conn *c = arg;

	if (err == EVUTIL_EAI_CANCEL)
		return;
	c->req = NULL;
	if (err != 0) {
		conn_fail(c, "cannot resolve %s%s: %s",
		    c->proxy ? "the proxy " : "",
		    c->proxy ? c->proxy->host : c->conf->host,
		    evutil_gai_strerror(err));
		return;
	}
	c->addrs = c->ai = res;
	c->last_error[0] = '\0';
	conn_try(c);
}

static void
conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->state == CS_CLOSING) {
		conn_lost(c, c->lost_reason);
		return;
	}
	if (c->proxy != NULL)
		conn_fail(c,
		    "no websocket within ConnectTimeoutSec (%.1f s) via the "
		    "proxy %s (%s)",
		    (double)c->conf->connect_timeout_ms / 1000, c->proxy->url,
		    conn_state_name[c->state]);
	else
		conn_fail(c, "no websocket within ConnectTimeoutSec (%.1f s)",
		    (double)c->conf->connect_timeout_ms / 1000);
}

/*
 * Resolve the origin, or through a proxy only the proxy: the proxy
 * resolves the origin's name.
 */
static void
conn_connect(struct conn *c)
{
	struct evutil_addrinfo hints = { 0 };
	struct evdns_getaddrinfo_request *req;
	const char *host = c->conf->host, *port = c->conf->port;

	c->proxy = proxy_for(c->conf, c->conf->host, c->conf->port);
	c->tunnelled = c->proxy != NULL;
	c->tls_label[0] = '\0';
	if (c->proxy != NULL) {
		host = c->proxy->host;
		port = c->proxy->port;
		conn_enter(c, CS_RESOLVE, 0, "Connecting to %s via proxy %s",
		    c->conf->url, c->proxy->url);
		log_debug("connecting to %s via the proxy %s", c->conf->url,
		    c->proxy->url);
	} else {
		conn_enter(c, CS_RESOLVE, 0, "Connecting to %s", c->conf->url);
		log_debug("connecting to %s", c->conf->url);
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/*
	 * No AI_ADDRCONFIG: it makes libevent ask the kernel for the
	 * interfaces over netlink, which the unit's sandbox does not allow.
	 * Each address is tried in turn; an IPv6 one on an IPv4-only host
	 * fails at once and the next is tried.
	 */
	hints.ai_flags = tls_ip_literal(host) ? EVUTIL_AI_NUMERICHOST : 0;
	/* The callback may run before this returns (numeric hosts). */
	req = evdns_getaddrinfo(c->dns, host, port, &hints, conn_dns_cb, c);
	if (c->state == CS_RESOLVE && c->addrs == NULL)
		c->req = req;
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_connect(arg);
}

/* A TLS context for conf: TLS 1.2+, peer verification, its trust anchors. */
static SSL_CTX *
conn_ssl_ctx(const struct conf *conf)
{
	SSL_CTX *ctx;
	char e[200];

	if ((ctx = tls_client_ctx(conf->cafile, conf->capath, e, sizeof e)) ==
	    NULL) {
		log_err("cannot load the trust anchors (CAFile=%s CAPath=%s): "
			"%s",
		    conf->cafile, conf->capath, e);
		return NULL;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

/* TLS to the origin (wss://) or to an https:// proxy? */
static int
conn_needs_tls(const struct conf *conf)
{
	return conf->secure || (conf->proxy != NULL && conf->proxy->secure);
}

/*
 * A connection that is not started yet; end is told how each attempt or
 * connection ended (the owner then calls conn_retry() or conn_start(), or
 * leaves it be).
 */
struct conn *
conn_new(struct event_base *base, struct evdns_base *dns,
    const struct ws_handler *h, conn_end_cb end, void *arg)
{
	struct conn *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->base = base;
	c->dns = dns;
	c->handler = *h;
	c->end_cb = end;
	c->end_arg = arg;
	c->timer = evtimer_new(base, conn_timer_cb, c);
	c->deadline = evtimer_new(base, conn_deadline_cb, c);
	c->status_ev = event_new(base, -1, EV_PERSIST, conn_status_cb, c);
	if (c->timer == NULL || c->deadline == NULL || c->status_ev == NULL) {
		conn_free(c);
		return NULL;
	}
	return c;
}

/* Begin connecting with conf; -1 if its TLS settings cannot be used. */
int
conn_start(struct conn *c, const struct conf *conf)
{
	c->conf = conf;
	SSL_CTX_free(c->ssl_ctx);
	c->ssl_ctx = NULL;
	if (conn_needs_tls(conf) && (c->ssl_ctx = conn_ssl_ctx(conf)) == NULL)
		return -1;
	c->down_since = 0; /* a new start, not a reconnect: no gap */
	conn_connect(c);
	return 0;
}

/*
 * The owner's answer to an ended connection: wait delay_ms, then connect
 * again.  The record (disconnected or authentication failure, with the
 * delay), the warning and STATUS= say how it ended and when the next
 * attempt comes.
 */
void
conn_retry(struct conn *c, uint64_t delay_ms)
{
	const struct conn_end *e = &c->end;
	double s = (double)delay_ms / 1000;
	char f1[300], f2[64];
	const char *fields[] = { f1, f2, NULL };

	snprintf(f2, sizeof f2, "DCEVENTS_RETRY_MS=%llu",
	    (unsigned long long)delay_ms);
	switch (e->kind) {
	case CONN_FAILED:
		log_warn("cannot connect to %s: %s; retrying in %.1f s",
		    c->conf->url, e->why, s);
		conn_enter(c, CS_WAIT, delay_ms,
		    "Cannot connect: %s; retrying in %.1f s", e->why, s);
		return;
	case CONN_AUTH:
		snprintf(f1, sizeof f1, "DCEVENTS_HTTP_STATUS=%d",
		    e->http_status);
		if (e->proxy != NULL) {
			char f3[320];
			const char *pf[] = { f1, f2, f3, NULL };

			snprintf(f3, sizeof f3, "DCEVENTS_PROXY=%s", e->proxy);
			record_daemon(MID_AUTH_FAILED, 3, pf,
			    "proxy authentication failed at %s: %s; "
			    "retrying in %.0f s",
			    e->proxy, e->why, s);
			conn_enter(c, CS_WAIT, delay_ms,
			    "Proxy authentication failed (HTTP %d); "
			    "retrying in %.0f s",
			    e->http_status, s);
			return;
		}
		record_daemon(MID_AUTH_FAILED, 3, fields,
		    "authentication failed at %s: %s; retrying in %.0f s",
		    c->conf->url, e->why, s);
		conn_enter(c, CS_WAIT, delay_ms,
		    "Authentication failed (HTTP %d); retrying in %.0f s",
		    e->http_status, s);
		return;
	case CONN_LOST:
		log_debug("connected for %llu ms; reconnecting in %llu ms",
		    (unsigned long long)e->up_ms, (unsigned long long)delay_ms);
		snprintf(f1, sizeof f1, "DCEVENTS_REASON=%s", e->why);
		record_daemon(MID_DISCONNECTED, 4, fields,
		    "disconnected from %s: %s; reconnecting in %.1f s",
		    c->conf->url, e->why, s);
		conn_enter(c, CS_WAIT, delay_ms,
		    "Disconnected: %s; reconnecting in %.1f s", e->why, s);
		return;
	}
}

/* The state and the count, as STATUS= says them (after a reload, too). */
void
conn_status_text(const struct conn *c, char *buf, size_t n)
{
	snprintf(buf, n, "%s; %llu events", c->status,
	    (unsigned long long)conn_count(c));
}

/* Request target instead of the events stream's; NULL restores that. */
int
conn_set_target(struct conn *c, const char *target)
{
	char *t = NULL;

	if (target != NULL && (t = strdup(target)) == NULL)
		return -1;
	free(c->target);
	c->target = t;
	return 0;
}

/* The open websocket, or NULL. */
struct ws *
conn_ws(struct conn *c)
{
	return c->state == CS_OPEN ? c->ws : NULL;
}

/*
 * A reloaded configuration.  Only changed stream settings cost the
 * connection: it is closed and made again at once, without backoff.
 */
void
conn_reconfigure(struct conn *c, const struct conf *conf, int changed)
{
	SSL_CTX *ctx = NULL;

	c->conf = conf;
	/* The same proxy, in the new configuration's memory. */
	c->proxy = proxy_for(conf, conf->host, conf->port);
	if (!changed)
		return;
	if (conn_needs_tls(conf) && (ctx = conn_ssl_ctx(conf)) == NULL) {
		log_err("keeping the previous TLS settings");
		ctx = c->ssl_ctx;
		c->ssl_ctx = NULL;
	}
	SSL_CTX_free(c->ssl_ctx);
	c->ssl_ctx = ctx;
	log_info("stream settings changed: reconnecting");
	if (c->state == CS_OPEN) {
		c->reconnect_now = 1;
		ws_close(c->ws, 1000, "configuration changed");
	} else if (c->state != CS_CLOSING)
		conn_connect(c);
}

/* Close the websocket politely (1001), then call done. */
void
conn_stop(struct conn *c, void (*done)(void *), void *arg)
{
	c->stop_done = done;
	c->stop_arg = arg;
	if (c->state == CS_OPEN) {
		ws_close(c->ws, 1001, "dcevents is stopping");
		if (c->state == CS_OPEN) {
			snprintf(c->lost_reason, sizeof c->lost_reason,
			    "dcevents is stopping");
			c->close_wait = 1;
			conn_enter(c, CS_CLOSING, 0, NULL);
		}
		return;
	}
	if (c->state != CS_CLOSING)
		conn_stopped(c);
}

/* The outputs are full: stop reading (TCP pushes back on the server). */
void
conn_pause(struct conn *c)
{
	c->paused = 1;
	if (c->state != CS_OPEN)
		return;
	bufferevent_disable(c->bev, EV_READ);
	ws_suspend(c->ws, 1);
}

void
conn_resume(struct conn *c)
{
	c->paused = 0;
	if (c->state != CS_OPEN)
		return;
	ws_suspend(c->ws, 0);
	bufferevent_enable(c->bev, EV_READ);
	/* Frames may wait in wslay's buffer with none in libevent's. */
	ws_input(c->ws);
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	conn_teardown(c);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->status_ev != NULL)
		event_free(c->status_ev);
	SSL_CTX_free(c->ssl_ctx);
	free(c->target);
	free(c);
}
