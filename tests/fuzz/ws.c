/*
 * libFuzzer target: the websocket receive side (daemon/ws.c on wslay's
 * frame layer), fed server bytes through a bufferevent in chunks whose
 * size the first byte chooses.  Every completed message must be whole
 * valid UTF-8 if it is text, and no larger than MaxMessageBytes; a
 * message is begun before its data and ended or aborted once.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <wslay/wslay.h>

#include "dcevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct {
	struct ws *ws;
	struct strbuf msg;
	int open;
	int finished;
} F;

static void
f_begin(void *arg)
{
	if (F.open)
		abort();
	F.open = 1;
	strbuf_reset(&F.msg);
}

static void
f_data(void *arg, const uint8_t *p, size_t n)
{
	if (!F.open || n == 0)
		abort();
	strbuf_add(&F.msg, p, n);
}

static void
f_end(void *arg)
{
	struct utf8 u = { 0 };

	if (!F.open || F.msg.len > 1024)
		abort();
	if (ws_opcode(F.ws) == WSLAY_TEXT_FRAME &&
	    (utf8_check(&u, (const uint8_t *)F.msg.buf, F.msg.len) != 0 ||
		u.need != 0))
		abort();
	F.open = 0;
}

static void
f_abort(void *arg)
{
	if (!F.open)
		abort();
	F.open = 0;
}

static void
f_done(void *arg, const char *why)
{
	if (why == NULL || F.finished)
		abort();
	F.finished = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct event_base *base;
	struct ws_handler h = { f_begin, f_data, f_end, f_abort, NULL };
	struct conf c = { 0 };
	struct bufferevent *pair[2];
	size_t chunk;

	if (size < 1)
		return 0;
	if (base == NULL) {
		log_init(-1);
		base = event_base_new();
	}
	chunk = data[0] % 16 + 1;
	data++, size--;
	c.max_message_bytes = 1024;
	c.ping_interval_ms = 30000;
	c.pong_timeout_ms = 10000;
	if (bufferevent_pair_new(base, 0, pair) != 0)
		abort();
	memset(&F, 0, sizeof F);
	F.ws = ws_new(base, pair[0], &c, &h, f_done, NULL);
	if (F.ws == NULL)
		abort();
	for (size_t off = 0; off < size && !F.finished; off += chunk) {
		evbuffer_add(bufferevent_get_input(pair[0]), data + off,
		    size - off < chunk ? size - off : chunk);
		ws_input(F.ws);
	}
	ws_free(F.ws);
	if (F.open)
		abort();
	strbuf_reset(&F.msg);
	free(F.msg.buf);
	bufferevent_free(pair[0]);
	bufferevent_free(pair[1]);
	/* bufferevents are finalized by the loop */
	event_base_loop(base, EVLOOP_NONBLOCK);
	return 0;
}
