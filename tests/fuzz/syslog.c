/*
 * libFuzzer target: the RFC 5424 encoder.  Any event must give a record
 * whose structured data parses back: SD-NAMEs valid, every value quoted
 * with ", \ and ] escaped, one element, then " " and the MSG.  The same
 * event cut to a limit taken from the input (as a datagram is cut) must
 * parse back too: within the limit (unless MSG and every value are
 * already empty), the same names, MSG shortened before any value, each
 * value and MSG a prefix of the whole one, cut between characters and
 * escapes.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define MAXV (8 + EVENT_MAX_PARENTS + EVENT_MAX_EXTRAS)

/* Where the values are: start and length as written (still escaped). */
struct sd {
	const char *v[MAXV];
	size_t n[MAXV];
	int count;
	const char *msg; /* after "] " */
};

/* Check one [dockercloud@32473 name="value" ...] element at p. */
static const char *
check_sd(const char *p, const char *end, struct sd *sd)
{
	static const char id[] = "[dockercloud@32473";

	sd->count = 0;
	if ((size_t)(end - p) < sizeof id - 1 || memcmp(p, id, sizeof id - 1))
		abort();
	p += sizeof id - 1;
	while (p < end && *p == ' ') {
		const char *name = ++p;

		while (p < end && *p != '=') {
			unsigned char ch = (unsigned char)*p++;

			if (ch <= 32 || ch >= 127 || ch == ']' || ch == '"')
				abort();
		}
		if (p == name || p - name > 32 || p + 1 >= end || p[1] != '"')
			abort();
		if (sd->count == MAXV)
			abort();
		sd->v[sd->count] = p + 2;
		for (p += 2; p < end && *p != '"'; p++) {
			if (*p == '\\') {
				if (++p >= end ||
				    (*p != '"' && *p != '\\' && *p != ']'))
					abort();
			} else if (*p == ']')
				abort();
		}
		if (p >= end)
			abort();
		sd->n[sd->count] = (size_t)(p - sd->v[sd->count]);
		sd->count++;
		p++;
	}
	if (p >= end || *p != ']')
		abort();
	return p + 1;
}

/* The record parsed: header of six fields, the element, " " and MSG. */
static void
check_record(const struct strbuf *b, struct sd *sd)
{
	const char *p = b->buf, *end = b->buf + b->len;
	int spaces = 0;

	if (p == NULL || *p != '<')
		abort();
	while (p < end && spaces < 6)
		if (*p++ == ' ')
			spaces++;
	p = check_sd(p, end, sd);
	if (p >= end || *p != ' ')
		abort();
	sd->msg = p + 1;
}

/*
 * Bytes one character of raw takes, and (in *w) what it takes written:
 * in a value (escaped) or as MSG (as it is).
 */
static size_t
unit(const char *raw, size_t n, size_t i, int escaped, size_t *w)
{
	unsigned char ch = (unsigned char)raw[i];
	size_t k = 1;
	char e[8];

	if (escaped && (ch < 0x20 || ch == 0x7f)) {
		*w = 1 + escape_control(ch, e);
		return 1;
	}
	if (escaped && (ch == '"' || ch == '\\' || ch == ']')) {
		*w = 2;
		return 1;
	}
	if (ch >= 0xc0)
		while (k < 4 && i + k < n &&
		    ((unsigned char)raw[i + k] & 0xc0) == 0x80)
			k++;
	*w = k;
	return k;
}

/* raw cut to len written bytes ends between characters. */
static void
check_cut(const char *raw, size_t n, int escaped, size_t len)
{
	size_t i = 0, at = 0, w;

	while (at < len && i < n) {
		i += unit(raw, n, i, escaped, &w);
		at += w;
	}
	if (at != len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct json *j;
	static struct conf *c;
	const struct dc_event *e;
	const char *why, *ex;
	const char *raw[MAXV];
	size_t rawn[MAXV], nraw = 0, max, mcut;
	struct strbuf b = { 0 }, m = { 0 }, t = { 0 };
	struct sd whole, cut;
	uint64_t h = 14695981039346656037ULL;

	if (j == NULL) {
		char *ov[] = { "Output.Syslog=udp://127.0.0.1:1",
			"Stream.Namespace=n\\\"]" };

		log_init(-1);
		j = json_new();
		c = conf_load("/dev/null", 1, ov, 2);
	}
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211ULL;
	json_begin(j);
	json_feed(j, data, size);
	if ((e = json_end(j, &why, &ex)) == NULL)
		return 0;
	dc_event_message(e, &m);
	syslog_format_within(c, e, dc_event_priority(c, e), m.buf ? m.buf : "",
	    m.len, SIZE_MAX, &b);
	check_record(&b, &whole);
	if ((size_t)(b.buf + b.len - whole.msg) != m.len ||
	    memcmp(whole.msg, m.buf, m.len))
		abort();

		/* The raw values in the order of the pairs (syslog_format.c). */
#define RAW(s)                                                                 \
	do {                                                                   \
		if ((s).off != SPAN_NONE) {                                    \
			raw[nraw] = ev_str(e, s);                              \
			rawn[nraw++] = (s).len;                                \
		}                                                              \
	} while (0)
	RAW(e->type);
	RAW(e->action);
	RAW(e->state);
	RAW(e->uuid);
	RAW(e->resource_uri);
	for (unsigned i = 0; i < e->nparents; i++)
		RAW(e->parents[i]);
	RAW(e->datetime);
	RAW(e->error);
	raw[nraw] = c->ns;
	rawn[nraw++] = strlen(c->ns);
	/* SD-NAMEs of 1-32 bytes, "data." counted for data's members. */
	for (unsigned i = 0; i < e->nextras; i++)
		if (e->extras[i].name.len > 0 &&
		    e->extras[i].name.len + (e->extras[i].in_data ? 5 : 0) <=
			32)
			RAW(e->extras[i].value);
	if ((int)nraw != whole.count)
		abort();

	/* Cut to limits picked by a hash of the input, none to all. */
	for (int round = 0; round < 8; round++) {
		int shortened = 0;

		h = h * 6364136223846793005ULL + 1442695040888963407ULL;
		max = (size_t)(h >> 33) % (b.len + 1);
		strbuf_reset(&t);
		syslog_format_within(c, e, dc_event_priority(c, e),
		    m.buf ? m.buf : "", m.len, max, &t);
		check_record(&t, &cut);
		mcut = (size_t)(t.buf + t.len - cut.msg);
		if (cut.count != whole.count || mcut > m.len ||
		    memcmp(cut.msg, m.buf, mcut))
			abort();
		check_cut(m.buf ? m.buf : "", m.len, 0, mcut);
		for (int i = 0; i < cut.count; i++) {
			if (cut.n[i] > whole.n[i] ||
			    memcmp(cut.v[i], whole.v[i], cut.n[i]))
				abort();
			check_cut(raw[i], rawn[i], 1, cut.n[i]);
			shortened |= cut.n[i] < whole.n[i];
		}
		if (shortened && mcut > 0)
			abort(); /* MSG goes first */
		if (t.len > max) {
			/* only when nothing is left to cut */
			if (mcut > 0)
				abort();
			for (int i = 0; i < cut.count; i++)
				if (cut.n[i] > 0)
					abort();
		}
	}
	free(strbuf_finish(&b));
	free(strbuf_finish(&m));
	free(strbuf_finish(&t));
	return 0;
}
