/*
 * The websocket (RFC 6455) over a connected bufferevent, on wslay 1.1.1's
 * frame layer.  wslay_frame_recv() parses the frames (lengths, masks,
 * control frames over 125 bytes or fragmented); the frames sent are
 * built here, each in one piece of the output buffer; the message rules
 * are here: reserved bits, opcodes, fragmentation, UTF-8 of text messages and
 * close reasons (1007), close codes, answering pings and closes.  Nothing
 * is buffered: each data frame's payload goes to the handler (the JSON
 * parser) chunk by chunk as it arrives.  Also here: the keepalive (a ping
 * every PingIntervalSec; any frame is a sign of life; silence past
 * PingIntervalSec + PongTimeoutSec ends it), and MaxMessageBytes (the
 * rest of a larger message is skipped, the connection kept).
 *
 * Why not wslay's event layer: it checks UTF-8 one byte at a time through
 * a table, a quarter of the event loop's time in the benchmark;
 * utf8_check() (strbuf.c) takes 32 ASCII bytes a step
 * (bench/RESULTS.md).  Binary messages are taken as events too, unchecked:
 * the JSON parser makes their strings valid UTF-8.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/rand.h>
#include <wslay/wslay.h>

#include "dcevents.h"

#define CODE_NONE 1006 /* no close frame (yet) */
#define CODE_EMPTY 1005 /* a close frame without a code */

struct ws {
	struct event_base *base;
	struct bufferevent *bev;
	wslay_frame_context_ptr fr;
	struct ws_handler h;
	ws_done_cb done;
	void *done_arg;

	uint64_t max_bytes;
	uint64_t ping_ms;
	uint64_t dead_ms;
	struct event *ping_ev;
	struct event *live_ev;
	uint64_t last_rx; /* monotonic ms of the last frame */
	uint64_t pings;

	/* The frame being received */
	int in_frame;
	uint8_t op;
	uint8_t fin;
	uint64_t left; /* payload bytes still to come */
	uint8_t ctl[125]; /* a control frame's payload */
	size_t ctl_len;

	/* The data message being received */
	int in_msg;
	int msg_opcode; /* text or binary */
	struct utf8 utf8;
	int oversize;
	uint64_t msg_bytes;
	uint64_t messages;

	int read_done; /* a close came, or we failed the connection */
	int close_sent;
	uint16_t code_sent, code_received;
	int receiving; /* inside ws_input() */
	int send_failed;
	int finished;
	int suspended; /* outputs full: no reading, no liveness */
	char reason[192];
};

static ssize_t
ws_recv_cb(uint8_t *buf, size_t len, int flags, void *arg)
{
	struct ws *ws = arg;

	if (ws->suspended)
		return 0;
	return evbuffer_remove(bufferevent_get_input(ws->bev), buf, len);
}

/*
 * One whole frame, masked, into the output buffer as one contiguous piece:
 * the TLS bufferevent makes one record (one SSL_write, one write) of each
 * piece, so a frame never leaves as a header and a payload waiting on
 * each other (with Nagle and delayed ACKs, 40 ms a message).
 */
static int
ws_write(struct ws *ws, uint8_t op, const void *data, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(ws->bev);
	const uint8_t *d = data;
	uint8_t key[4], *p;
	struct evbuffer_iovec v;
	size_t hl = 2;

	if (len > 65535) {
		hl += 8;
	} else if (len > 125)
		hl += 2;
	if (RAND_bytes(key, sizeof key) != 1 ||
	    evbuffer_reserve_space(out, (ev_ssize_t)(hl + 4 + len), &v, 1) !=
		1) {
		ws->send_failed = 1;
		return -1;
	}
	p = v.iov_base;
	p[0] = 0x80 | op;
	if (hl == 2)
		p[1] = 0x80 | (uint8_t)len;
	else if (hl == 4) {
		p[1] = 0x80 | 126;
		p[2] = (uint8_t)(len >> 8);
		p[3] = (uint8_t)len;
	} else {
		p[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	}
	memcpy(p + hl, key, sizeof key);
	p += hl + 4;
	for (size_t i = 0; i < len; i++)
		p[i] = d[i] ^ key[i & 3];
	v.iov_len = hl + 4 + len;
	if (evbuffer_commit_space(out, &v, 1) != 0) {
		ws->send_failed = 1;
		return -1;
	}
	return 0;
}

/* The close frame, once; nothing is sent after it. */
static void
ws_send_close(struct ws *ws, uint16_t code, const char *reason, size_t n)
{
	uint8_t p[125];

	if (ws->close_sent)
		return;
	ws->close_sent = 1;
	ws->code_sent = code != 0 ? code : CODE_EMPTY;
	if (code == 0) {
		ws_write(ws, WSLAY_CONNECTION_CLOSE, NULL, 0);
		return;
	}
	if (n > sizeof p - 2)
		n = sizeof p - 2;
	p[0] = (uint8_t)(code >> 8);
	p[1] = (uint8_t)code;
	if (n > 0)
		memcpy(p + 2, reason, n);
	ws_write(ws, WSLAY_CONNECTION_CLOSE, p, n + 2);
}

/* The server broke the protocol: close with code, take nothing more. */
static void
ws_fail(struct ws *ws, uint16_t code, const char *what)
{
	if (code == 1007 && ws->in_msg)
		stats_add(STAT_MESSAGES_INVALID, STAT_INVALID_UTF8, 1);
	if (code == 1007)
		snprintf(ws->reason, sizeof ws->reason,
		    "invalid UTF-8 from the server (closed with 1007)");
	else
		snprintf(ws->reason, sizeof ws->reason,
		    "websocket protocol error from the server: %s "
		    "(closed with %u)",
		    what, code);
	ws->read_done = 1;
	ws_send_close(ws, code, NULL, 0);
}

/* Report the end once, with the best reason we have. */
static void
ws_finish(struct ws *ws, const char *why)
{
	char buf[192];

	if (ws->finished)
		return;
	ws->finished = 1;
	event_del(ws->ping_ev);
	event_del(ws->live_ev);
	if (why == NULL && ws->reason[0] != '\0')
		why = ws->reason;
	else if (why == NULL) {
		snprintf(buf, sizeof buf,
		    "the server closed the websocket (code %u)",
		    ws->code_received);
		why = buf;
	}
	ws->done(ws->done_arg, why);
}

/* Finished when the close went both ways, or a send failed. */
static void
ws_flush(struct ws *ws)
{
	if (ws->finished)
		return;
	if (ws->send_failed)
		ws_finish(ws, "websocket send failed");
	else if (ws->close_sent && ws->read_done)
		ws_finish(ws, NULL);
}

static int
ws_valid_code(unsigned code)
{
	return (code >= 1000 && code <= 1011 && code != 1004 &&
		   code != 1005 && code != 1006) ||
	    (code >= 3000 && code <= 4999);
}

static void
ws_close_received(struct ws *ws)
{
	struct utf8 u = { 0 };
	unsigned code;

	if (ws->ctl_len == 0) {
		ws->code_received = CODE_EMPTY;
		ws->read_done = 1;
		ws_send_close(ws, 0, NULL, 0);
		return;
	}
	if (ws->ctl_len == 1) {
		ws_fail(ws, 1002, "a close frame with a 1-byte payload");
		return;
	}
	code = (unsigned)ws->ctl[0] << 8 | ws->ctl[1];
	if (!ws_valid_code(code)) {
		char what[64];

		snprintf(what, sizeof what, "close code %u", code);
		ws_fail(ws, 1002, what);
		return;
	}
	if (utf8_check(&u, ws->ctl + 2, ws->ctl_len - 2) != 0 || u.need != 0) {
		ws_fail(ws, 1007, NULL);
		return;
	}
	ws->code_received = (uint16_t)code;
	ws->read_done = 1;
	ws_send_close(ws, (uint16_t)code, NULL, 0);
}

/* A frame header: check it against the message in progress. */
static int
ws_frame_start(struct ws *ws, const struct wslay_frame_iocb *f)
{
	ws->last_rx = clock_ms();
	if (log_get_verbosity() > 1)
		log_debug("frame: opcode %u, %llu bytes%s", f->opcode,
		    (unsigned long long)f->payload_length,
		    f->fin ? "" : ", more to come");
	if (f->rsv != 0) {
		ws_fail(ws, 1002, "reserved bits set");
		return -1;
	}
	if (f->mask) {
		ws_fail(ws, 1002, "a masked frame");
		return -1;
	}
	switch (f->opcode) {
	case WSLAY_CONTINUATION_FRAME:
		if (!ws->in_msg) {
			ws_fail(ws, 1002, "a continuation frame out of a message");
			return -1;
		}
		break;
	case WSLAY_TEXT_FRAME:
	case WSLAY_BINARY_FRAME:
		if (ws->in_msg) {
			ws_fail(ws, 1002, "a new message inside a fragmented one");
			return -1;
		}
		ws->in_msg = 1;
		ws->msg_opcode = f->opcode;
		memset(&ws->utf8, 0, sizeof ws->utf8);
		ws->oversize = 0;
		ws->msg_bytes = 0;
		ws->h.begin(ws->h.arg);
		break;
	case WSLAY_CONNECTION_CLOSE:
	case WSLAY_PING:
	case WSLAY_PONG:
		ws->ctl_len = 0;
		break;
	default: {
		char what[32];

		snprintf(what, sizeof what, "opcode %u", f->opcode);
		ws_fail(ws, 1002, what);
		return -1;
	}
	}
	ws->in_frame = 1;
	ws->op = f->opcode;
	ws->fin = f->fin;
	ws->left = f->payload_length;
	return 0;
}

/* A piece of the frame's payload. */
static int
ws_frame_data(struct ws *ws, const uint8_t *p, size_t n)
{
	if (ws->op & 0x8) {
		/* wslay_frame_recv() refuses control frames over 125 bytes */
		memcpy(ws->ctl + ws->ctl_len, p, n);
		ws->ctl_len += n;
		return 0;
	}
	if (ws->msg_opcode == WSLAY_TEXT_FRAME &&
	    utf8_check(&ws->utf8, p, n) != 0) {
		ws_fail(ws, 1007, NULL);
		return -1;
	}
	if (ws->oversize || n == 0)
		return 0;
	ws->msg_bytes += n;
	if (ws->msg_bytes > ws->max_bytes) {
		ws->oversize = 1;
		ws->h.abort(ws->h.arg);
		stats_add(STAT_MESSAGES_INVALID, STAT_INVALID_OVERSIZE, 1);
		log_warn("a message larger than MaxMessageBytes=%llu was "
			 "skipped; the connection is kept",
		    (unsigned long long)ws->max_bytes);
		return 0;
	}
	ws->h.data(ws->h.arg, p, n);
	return 0;
}

static void
ws_frame_end(struct ws *ws)
{
	ws->in_frame = 0;
	switch (ws->op) {
	case WSLAY_CONNECTION_CLOSE:
		ws_close_received(ws);
		return;
	case WSLAY_PING:
		if (!ws->close_sent)
			ws_write(ws, WSLAY_PONG, ws->ctl, ws->ctl_len);
		return;
	case WSLAY_PONG:
		return;
	}
	if (!ws->fin)
		return;
	if (ws->msg_opcode == WSLAY_TEXT_FRAME && ws->utf8.need != 0) {
		ws_fail(ws, 1007, NULL);
		return;
	}
	ws->in_msg = 0;
	if (!ws->oversize) {
		ws->messages++;
		ws->h.end(ws->h.arg);
	}
}

void
ws_input(struct ws *ws)
{
	struct wslay_frame_iocb f;
	ssize_t r;

	if (ws->finished)
		return;
	ws->receiving = 1;
	while (!ws->read_done && !ws->suspended && !ws->send_failed) {
		r = wslay_frame_recv(ws->fr, &f);
		if (r == WSLAY_ERR_WANT_READ)
			break;
		if (r < 0) {
			ws_fail(ws, 1002, "a malformed frame");
			break;
		}
		if (!ws->in_frame && ws_frame_start(ws, &f) != 0)
			break;
		ws->left -= f.data_length;
		if (ws_frame_data(ws, f.data, f.data_length) != 0)
			break;
		if (ws->left == 0)
			ws_frame_end(ws);
	}
	ws->receiving = 0;
	ws_flush(ws);
}

/*
 * Send one data message (WSLAY_TEXT_FRAME or WSLAY_BINARY_FRAME), after
 * what was sent before.  Outside ws_input() a failure ends the websocket
 * (its done callback runs).
 */
int
ws_send(struct ws *ws, uint8_t opcode, const void *data, size_t len)
{
	if (ws->finished || ws->close_sent || ws->send_failed ||
	    (opcode != WSLAY_TEXT_FRAME && opcode != WSLAY_BINARY_FRAME))
		return -1;
	if (ws_write(ws, opcode, data, len) != 0) {
		if (!ws->receiving)
			ws_flush(ws);
		return -1;
	}
	return 0;
}

static void
ws_ping_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ws *ws = arg;
	uint8_t seq[8];

	if (ws->close_sent)
		return;
	ws->pings++;
	for (int i = 0; i < 8; i++)
		seq[i] = (uint8_t)(ws->pings >> (56 - 8 * i));
	ws_write(ws, WSLAY_PING, seq, sizeof seq);
	ws_flush(ws);
}

/* Fires when the connection may have been silent too long; re-arms if not. */
static void
ws_live_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ws *ws = arg;
	uint64_t now = clock_ms(), silent = now - ws->last_rx;
	char why[128];
	struct timeval tv;

	if (silent >= ws->dead_ms) {
		snprintf(why, sizeof why,
		    "no frame from the server for %llu ms (keepalive)",
		    (unsigned long long)silent);
		ws_finish(ws, why);
		return;
	}
	tv = tv_ms(ws->dead_ms - silent);
	event_add(ws->live_ev, &tv);
}

struct ws *
ws_new(struct event_base *base, struct bufferevent *bev, const struct conf *c,
    const struct ws_handler *h, ws_done_cb done, void *arg)
{
	/* Frames are sent by ws_write(), not wslay. */
	struct wslay_frame_callbacks cbs = {
		.recv_callback = ws_recv_cb,
	};
	struct ws *ws;
	struct timeval tv;

	if ((ws = calloc(1, sizeof *ws)) == NULL)
		return NULL;
	ws->base = base;
	ws->bev = bev;
	ws->h = *h;
	ws->done = done;
	ws->done_arg = arg;
	ws->max_bytes = c->max_message_bytes;
	ws->ping_ms = c->ping_interval_ms;
	ws->dead_ms = c->ping_interval_ms + c->pong_timeout_ms;
	ws->last_rx = clock_ms();
	ws->code_sent = ws->code_received = CODE_NONE;
	if (wslay_frame_context_init(&ws->fr, &cbs, ws) != 0) {
		free(ws);
		return NULL;
	}
	ws->ping_ev = event_new(base, -1, EV_PERSIST, ws_ping_cb, ws);
	ws->live_ev = event_new(base, -1, 0, ws_live_cb, ws);
	tv = tv_ms(ws->ping_ms);
	if (ws->ping_ev == NULL || ws->live_ev == NULL ||
	    event_add(ws->ping_ev, &tv) == -1) {
		ws_free(ws);
		return NULL;
	}
	tv = tv_ms(ws->dead_ms);
	event_add(ws->live_ev, &tv);
	return ws;
}

/* Start the closing handshake; the peer's answer (or a timeout) ends it. */
void
ws_close(struct ws *ws, uint16_t code, const char *reason)
{
	if (ws->finished)
		return;
	snprintf(ws->reason, sizeof ws->reason, "%s", reason);
	ws_send_close(ws, code, reason, strlen(reason));
	ws_flush(ws);
}

/*
 * Outputs full: stop taking frames and stop the liveness timer (the
 * silence is ours); pings go on.  Resuming counts as a sign of life.
 */
void
ws_suspend(struct ws *ws, int on)
{
	struct timeval tv;

	ws->suspended = on;
	if (ws->finished)
		return;
	if (on) {
		event_del(ws->live_ev);
		return;
	}
	ws->last_rx = clock_ms();
	tv = tv_ms(ws->dead_ms);
	event_add(ws->live_ev, &tv);
}

uint64_t
ws_messages(const struct ws *ws)
{
	return ws->messages;
}

/* The opcode of the data message being received (0 between messages). */
int
ws_opcode(const struct ws *ws)
{
	return ws->in_msg ? ws->msg_opcode : 0;
}

/* The close codes sent and received so far (1006: none, 1005: empty). */
void
ws_close_codes(const struct ws *ws, uint16_t *sent, uint16_t *received)
{
	*sent = ws->code_sent;
	*received = ws->code_received;
}

void
ws_free(struct ws *ws)
{
	if (ws == NULL)
		return;
	if (ws->in_msg && !ws->oversize)
		ws->h.abort(ws->h.arg);
	if (ws->ping_ev != NULL)
		event_free(ws->ping_ev);
	if (ws->live_ev != NULL)
		event_free(ws->live_ev);
	wslay_frame_context_free(ws->fr);
	free(ws);
}
