/*
 * The syslog records.  `local` (/dev/log) gets RFC 3164, as logger(1)
 * writes it: the MESSAGE followed by key="value" pairs.  Remote targets
 * get RFC 5424 with MSGID = the event type and the structured data
 * element [dockercloud@32473 ...]; over TCP and TLS framed with RFC 6587
 * octet counting (RELP frames its records itself: relp.c).  A record for
 * a datagram (UDP, /dev/log) too large is cut to DGRAM_MAX and stays
 * well-formed: see syslog_format_within().  Formatting is pure but for
 * the clock, the host name and a warning; on the event loop only.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dcevents.h"

#define DGRAM_MAX 65000

/*
 * In a quoted SD-PARAM value: `"`, `\` and `]` escaped with a backslash,
 * and a control character escaped as in MESSAGE (\n, \r, \t or \xNN,
 * dcevents(8), SYSLOG), then that escape's backslash escaped too (\\n,
 * \\xNN and so on).
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

/* A looked-up member as ` PREFIXname[SUFFIX]="value"` (SD-NAME: 32). */
static void
add_obj_pair(struct strbuf *b, const char *prefix, const struct enriched *o,
    struct span name, const char *fixed, struct span v, size_t cap)
{
	char sd[33];
	size_t p = strlen(prefix), n;
	const char *nm = fixed ? fixed : ev_str_of(&o->buf, name);

	n = fixed ? strlen(fixed) : name.len;
	if (v.off == SPAN_NONE || p + n > 32)
		return;
	memcpy(sd, prefix, p);
	for (size_t k = 0; k < n; k++) {
		unsigned char ch = (unsigned char)nm[k];

		sd[p + k] = (char)(ch > 32 && ch < 127 && ch != '=' &&
			    ch != ']' && ch != '"'
			? ch
			: '_');
	}
	add_pair(b, sd, p + n, ev_str_of(&o->buf, v), v.len, cap);
}

/*
 * [Enrich]: name="" image="", object.FIELD="" for Fields=, and the
 * parents' names as parent.TYPE="" (e.g. parent.service="web").
 */
static void
add_enriched(struct strbuf *b, const struct dc_event *e, size_t cap)
{
	const struct enriched *o = e->obj;
	struct span none = { SPAN_NONE, 0 };

	if (o != NULL) {
		add_obj_pair(b, "", o, none, "name", o->name, cap);
		add_obj_pair(b, "", o, none, "image", o->image, cap);
		for (unsigned i = 0; i < o->nfields; i++)
			add_obj_pair(b, "object.", o, o->fields[i].name, NULL,
			    o->fields[i].value, cap);
	}
	for (unsigned i = 0; i < e->nup; i++)
		add_obj_pair(b, "parent.", e->up[i], e->up[i]->type, NULL,
		    e->up[i]->name, cap);
}

/*
 * The event's key="value" pairs (5424 SD-PARAMs or 3164 trailer), each
 * value cut to cap bytes written.
 */
static void
add_params(struct strbuf *b, const struct conf *c, const struct dc_event *e,
    size_t cap)
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
	if (e->obj != NULL || e->nup > 0)
		add_enriched(b, e, cap);
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
syslog_format_within(const struct conf *c, const struct dc_event *e,
    int priority, const char *message, size_t mlen, size_t max,
    struct strbuf *b)
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
