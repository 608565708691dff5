/*
 * libFuzzer target: the chunk-fed JSON event parser.  The first byte
 * chooses the chunk size; the event must come out the same as when the
 * message is fed whole, and the MESSAGE, stdout and syslog encoders run
 * on every event.  Every string handed on (the event's, MESSAGE, the JSON
 * line, the syslog record, a refused message's excerpt) is valid UTF-8,
 * whatever bytes and escapes came, as the README promises (Records).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct json *J;
static struct conf *C;

static void
must_be_utf8(const char *s, size_t n)
{
	struct utf8 u = { 0 };

	if (utf8_check(&u, (const uint8_t *)s, n) != 0 || u.need != 0)
		abort(); /* text that is not UTF-8 handed on */
}

static char *
digest(const struct dc_event *e)
{
	struct strbuf b = { 0 };

	if (e == NULL)
		return strdup("-");
	strbuf_add(&b, e->buf.buf ? e->buf.buf : "", e->buf.len);
	strbuf_printf(&b, "|%u|%u|%u|%u|%u", e->nparents, e->nextras,
	    e->dropped, e->type.off, e->datetime.off);
	return strbuf_finish(&b);
}

static char *
parse(const uint8_t *p, size_t n, size_t chunk, const struct dc_event **ev)
{
	const char *why, *ex;

	json_begin(J);
	for (size_t off = 0; off < n; off += chunk)
		json_feed(J, p + off, n - off < chunk ? n - off : chunk);
	*ev = json_end(J, &why, &ex);
	if (*ev != NULL)
		must_be_utf8((*ev)->buf.buf, (*ev)->buf.len);
	else
		must_be_utf8(ex, strlen(ex));
	return digest(*ev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct dc_event *e;
	struct strbuf b = { 0 };
	char *whole, *split;
	size_t chunk;

	if (J == NULL) {
		char *ov[] = { "Stream.Namespace=fuzz", "Output.Stdout=yes",
			"Output.Syslog=tcp://127.0.0.1:1" };

		log_init(-1);
		J = json_new();
		C = conf_load("/dev/null", 1, ov, 3);
	}
	if (size == 0)
		return 0;
	chunk = data[0] % 16 + 1;
	data++;
	size--;
	whole = parse(data, size, size + 1, &e);
	split = parse(data, size, chunk, &e);
	if (strcmp(whole, split) != 0)
		abort(); /* the split changed the event */
	if (e != NULL) {
		dc_event_message(e, &b);
		for (size_t i = 0; i < b.len; i++)
			if ((unsigned char)b.buf[i] < 0x20)
				abort(); /* MESSAGE is one line */
		must_be_utf8(b.buf, b.len);
		strbuf_reset(&b);
		stdout_format(C, e, &b);
		must_be_utf8(b.buf, b.len);
		strbuf_reset(&b);
		syslog_format(C, e, dc_event_priority(C, e), "m", 1, &b);
		must_be_utf8(b.buf, b.len);
		free(strbuf_finish(&b));
	}
	free(whole);
	free(split);
	return 0;
}
