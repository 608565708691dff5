/*
 * The websocket (RFC 6455) over a connected bufferevent, on a wslay 1.1.1
 * client context.  No message is buffered: wslay hands each data frame's
 * payload over in chunks, which go straight to the handler (the JSON
 * parser).  wslay answers pings and close frames, checks UTF-8 (failing
 * fast with 1007) and refuses masked or malformed server frames (1002).
 * Here: the keepalive (a ping every PingIntervalSec; any frame is a sign
 * of life; silence past PingIntervalSec + PongTimeoutSec ends it), and
 * MaxMessageBytes (the rest of a larger message is skipped, the
 * connection kept).
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

struct ws {
	struct event_base *base;
	struct bufferevent *bev;
	wslay_event_context_ptr ctx;
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

	int frame_data; /* the current frame carries message data */
	int frame_fin;
	int in_msg;
	int msg_opcode; /* text or binary, of the message in progress */
	int receiving; /* inside wslay_event_recv() */
	int send_failed; /* by ws_send() while receiving */
	int oversize;
	uint64_t msg_bytes;
	uint64_t messages;

	int finished;
	int suspended; /* outputs full: no reading, no liveness */
	char reason[192]; /* set by ws_close() */
};

static ssize_t
ws_recv_cb(
    wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
	struct ws *ws = arg;
	int n;

	if (ws->suspended) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	n = evbuffer_remove(bufferevent_get_input(ws->bev), buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	return n;
}

/* Output only grows the bufferevent's buffer; libevent writes it out. */
static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct ws *ws = arg;

	if (bufferevent_write(ws->bev, data, len) == -1) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static int
ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *arg)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void
ws_frame_start_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *a, void *arg)
{
	struct ws *ws = arg;

	ws->last_rx = clock_ms();
	if (log_get_verbosity() > 1)
		log_debug("frame: opcode %u, %llu bytes%s", a->opcode,
		    (unsigned long long)a->payload_length,
		    a->fin ? "" : ", more to come");
	ws->frame_fin = a->fin;
	ws->frame_data = a->opcode == WSLAY_CONTINUATION_FRAME ||
	    a->opcode == WSLAY_TEXT_FRAME || a->opcode == WSLAY_BINARY_FRAME;
	if (!ws->frame_data || a->opcode == WSLAY_CONTINUATION_FRAME)
		return;
	ws->in_msg = 1;
	ws->msg_opcode = a->opcode;
	ws->oversize = 0;
	ws->msg_bytes = 0;
	ws->h.begin(ws->h.arg);
}

static void
ws_frame_chunk_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_chunk_arg *a, void *arg)
{
	struct ws *ws = arg;

	if (!ws->frame_data || !ws->in_msg || ws->oversize)
		return;
	ws->msg_bytes += a->data_length;
	if (ws->msg_bytes > ws->max_bytes) {
		ws->oversize = 1;
		ws->h.abort(ws->h.arg);
		log_warn("a message larger than MaxMessageBytes=%llu was "
			 "skipped; the connection is kept",
		    (unsigned long long)ws->max_bytes);
		return;
	}
	ws->h.data(ws->h.arg, a->data, a->data_length);
}

static void
ws_frame_end_cb(wslay_event_context_ptr ctx, void *arg)
{
	struct ws *ws = arg;

	if (!ws->frame_data || !ws->frame_fin || !ws->in_msg)
		return;
	ws->in_msg = 0;
	if (!ws->oversize) {
		ws->messages++;
		ws->h.end(ws->h.arg);
	}
}

/* Report the end once, with the best reason we have. */
static void
ws_finish(struct ws *ws, const char *why)
{
	char buf[192];
	uint16_t got, sent;

	if (ws->finished)
		return;
	ws->finished = 1;
	event_del(ws->ping_ev);
	event_del(ws->live_ev);
	if (why == NULL) {
		got = wslay_event_get_status_code_received(ws->ctx);
		sent = wslay_event_get_status_code_sent(ws->ctx);
		if (ws->reason[0] != '\0')
			why = ws->reason;
		else if (sent == WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA)
			why =
			    "invalid UTF-8 from the server (closed with 1007)";
		else if (sent == WSLAY_CODE_PROTOCOL_ERROR)
			why = "websocket protocol error from the server "
			      "(closed with 1002)";
		else if (wslay_event_get_close_received(ws->ctx)) {
			snprintf(buf, sizeof buf,
			    "the server closed the websocket (code %u)", got);
			why = buf;
		} else {
			snprintf(buf, sizeof buf, "websocket closed (code %u)",
			    sent);
			why = buf;
		}
	}
	ws->done(ws->done_arg, why);
}

/* Send what wslay queued; notice when both directions are finished. */
static void
ws_flush(struct ws *ws)
{
	if (ws->finished)
		return;
	if (wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0) {
		ws_finish(ws, "websocket send failed");
		return;
	}
	if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx))
		ws_finish(ws, NULL);
}

void
ws_input(struct ws *ws)
{
	int rc;

	if (ws->finished)
		return;
	ws->receiving = 1;
	rc = wslay_event_recv(ws->ctx);
	ws->receiving = 0;
	if (rc != 0) {
		ws_finish(ws, "websocket receive failed");
		return;
	}
	if (ws->send_failed) {
		ws_finish(ws, "websocket send failed");
		return;
	}
	ws_flush(ws);
}

/*
 * Send one data message (WSLAY_TEXT_FRAME or WSLAY_BINARY_FRAME) at once,
 * after what is queued already: from a handler callback it goes out ahead
 * of the frames wslay queues later in the same input (a close, a pong), so
 * that answers keep the order of what they answer.  Outside a callback
 * the flush may end the websocket (its done callback runs).
 */
int
ws_send(struct ws *ws, uint8_t opcode, const void *data, size_t len)
{
	struct wslay_event_msg msg = { opcode, data, len };

	if (ws->finished ||
	    (opcode != WSLAY_TEXT_FRAME && opcode != WSLAY_BINARY_FRAME) ||
	    wslay_event_queue_msg(ws->ctx, &msg) != 0)
		return -1;
	if (!ws->receiving)
		ws_flush(ws);
	else if (wslay_event_send(ws->ctx) != 0)
		ws->send_failed = 1; /* ws_input() ends it after wslay */
	return 0;
}

static void
ws_ping_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ws *ws = arg;
	struct wslay_event_msg ping;
	uint8_t seq[8];

	ws->pings++;
	for (int i = 0; i < 8; i++)
		seq[i] = (uint8_t)(ws->pings >> (56 - 8 * i));
	ping.opcode = WSLAY_PING;
	ping.msg = seq;
	ping.msg_length = sizeof seq;
	if (wslay_event_queue_msg(ws->ctx, &ping) == 0)
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
	struct wslay_event_callbacks cbs = {
		.recv_callback = ws_recv_cb,
		.send_callback = ws_send_cb,
		.genmask_callback = ws_genmask_cb,
		.on_frame_recv_start_callback = ws_frame_start_cb,
		.on_frame_recv_chunk_callback = ws_frame_chunk_cb,
		.on_frame_recv_end_callback = ws_frame_end_cb,
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
	if (wslay_event_context_client_init(&ws->ctx, &cbs, ws) != 0) {
		free(ws);
		return NULL;
	}
	wslay_event_config_set_no_buffering(ws->ctx, 1);
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
	wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason,
	    strlen(reason) > 120 ? 120 : strlen(reason));
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
	*sent = wslay_event_get_status_code_sent(ws->ctx);
	*received = wslay_event_get_status_code_received(ws->ctx);
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
	wslay_event_context_free(ws->ctx);
	free(ws);
}
