/*
 * A growable byte buffer for building requests and records, and the text
 * rules every output follows (README, Records; dcevents(8), JOURNAL
 * FIELDS): control characters become \n, \r, \t or \xNN, and what is
 * not UTF-8 (RFC 3629) becomes U+FFFD, one for each maximal invalid
 * subpart as Unicode recommends (and Python's "replace" does).
 * The UTF-8 check of websocket text frames is here too.  A failed
 * allocation marks the buffer; strbuf_finish() then returns NULL, so
 * callers check once.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

/* Room for more bytes and a NUL; -1 (and failed) when out of memory. */
int
strbuf_grow(struct strbuf *b, size_t more)
{
	size_t cap;
	char *n;

	if (b->failed)
		return -1;
	if (b->len + more + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < b->len + more + 1)
		cap *= 2;
	if ((n = realloc(b->buf, cap)) == NULL) {
		b->failed = 1;
		return -1;
	}
	b->buf = n;
	b->cap = cap;
	return 0;
}

int
strbuf_addstr(struct strbuf *b, const char *s)
{
	return strbuf_add(b, s, strlen(s));
}

int
strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || strbuf_grow(b, (size_t)n) == -1)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

/*
 * \n \r \t, \xNN for other control characters and DEL, as MESSAGE and
 * syslog text have them (dcevents(8), JOURNAL FIELDS).
 */
size_t
escape_control(unsigned char ch, char *out)
{
	static const char hex[] = "0123456789abcdef";

	out[0] = '\\';
	switch (ch) {
	case '\n':
		out[1] = 'n';
		return 2;
	case '\r':
		out[1] = 'r';
		return 2;
	case '\t':
		out[1] = 't';
		return 2;
	}
	out[1] = 'x';
	out[2] = hex[ch >> 4];
	out[3] = hex[ch & 15];
	return 4;
}

/*
 * A JSON string's escapes, as yajl_gen makes them (the stdout output's
 * lines are what yajl_gen wrote before): \" \\ \b \f \n \r \t, \u00XX
 * (upper-case hex) for other control characters.
 */
size_t
escape_json(unsigned char ch, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char short_form[] = { ['"'] = '"', ['\\'] = '\\',
		['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r',
		['\t'] = 't' };

	out[0] = '\\';
	if (ch < sizeof short_form && short_form[ch] != 0) {
		out[1] = short_form[ch];
		return 2;
	}
	memcpy(out + 1, "u00", 3);
	out[4] = hex[ch >> 4];
	out[5] = hex[ch & 15];
	return 6;
}

/* Append data with control characters escaped as in MESSAGE. */
int
strbuf_add_escaped(struct strbuf *b, const char *data, size_t len)
{
	return strbuf_add_escaping(b, data, len, 0x7f, 0, 0, 0, escape_control);
}

/*
 * A UTF-8 lead byte: how many continuation bytes follow and the range of
 * the first one (which excludes overlong forms, surrogates and code
 * points past U+10FFFF); -1 if c cannot start a sequence.
 */
static inline int
utf8_lead(uint8_t c, uint8_t *lo, uint8_t *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (c < 0xc2 || c > 0xf4)
		return -1;
	if (c < 0xe0)
		return 1;
	if (c < 0xf0) {
		if (c == 0xe0)
			*lo = 0xa0;
		else if (c == 0xed)
			*hi = 0x9f;
		return 2;
	}
	if (c == 0xf0)
		*lo = 0x90;
	else if (c == 0xf4)
		*hi = 0x8f;
	return 3;
}

/*
 * How many bytes at the start of p are ASCII: 32 a step, then eight,
 * the last eight again if they overlap, byte by byte below eight.
 */
static inline size_t
ascii_span(const uint8_t *p, size_t n)
{
	const uint64_t high = 0x8080808080808080ULL;
	size_t i = 0;
	uint64_t w, x;

	if (n >= 8) {
		for (; i + 32 <= n; i += 32) {
			uint64_t y, z;

			memcpy(&w, p + i, 8);
			memcpy(&x, p + i + 8, 8);
			memcpy(&y, p + i + 16, 8);
			memcpy(&z, p + i + 24, 8);
			if ((w | x | y | z) & high)
				break;
		}
		for (; i + 8 <= n; i += 8) {
			memcpy(&w, p + i, 8);
			if (w & high)
				goto bytes;
		}
		memcpy(&w, p + n - 8, 8);
		if (!(w & high))
			return n;
	}
bytes:
	while (i < n && p[i] < 0x80)
		i++;
	return i;
}

/*
 * UTF-8 (RFC 3629), incrementally: u says how many continuation bytes are
 * due and the range of the next one.  0, or -1 at the first invalid byte.
 */
int
utf8_check(struct utf8 *u, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c;
		int need;

		if (u->need == 0) {
			if ((i += ascii_span(p + i, n - i)) == n)
				break;
			if ((need = utf8_lead(p[i++], &u->lo, &u->hi)) == -1)
				return -1;
			u->need = (uint8_t)need;
			continue;
		}
		c = p[i++];
		if (c < u->lo || c > u->hi)
			return -1;
		u->need--;
		u->lo = 0x80;
		u->hi = 0xbf;
	}
	return 0;
}

/*
 * The sequence at p[0] (not ASCII): its length if it is valid UTF-8, else
 * minus the length of its maximal invalid subpart (at least 1).
 */
static int
utf8_sequence(const uint8_t *p, size_t n)
{
	uint8_t lo, hi;
	int need = utf8_lead(p[0], &lo, &hi);

	if (need == -1)
		return -1;
	for (int k = 1; k <= need; k++) {
		if ((size_t)k >= n || p[k] < lo || p[k] > hi)
			return -k;
		lo = 0x80;
		hi = 0xbf;
	}
	return need + 1;
}

/*
 * Append v as valid UTF-8: each maximal invalid subpart becomes U+FFFD,
 * or with hex each of its bytes \xNN.  Valid text (ASCII eight bytes a
 * step) is copied in one piece.
 */
int
strbuf_add_utf8(struct strbuf *b, const char *v, size_t n, int hex)
{
	static const char hexd[] = "0123456789abcdef";
	const uint8_t *p = (const uint8_t *)v;
	size_t i = 0, start = 0;

	while ((i += ascii_span(p + i, n - i)) < n) {
		int k = utf8_sequence(p + i, n - i);
		size_t bad = (size_t)-k;

		if (k > 0) {
			i += (size_t)k;
			continue;
		}
		strbuf_add(b, v + start, i - start);
		if (!hex)
			strbuf_add(b, "\xef\xbf\xbd", 3);
		for (size_t j = i; hex && j < i + bad; j++) {
			char e[4] = { '\\', 'x', hexd[p[j] >> 4],
				hexd[p[j] & 15] };

			strbuf_add(b, e, 4);
		}
		start = i += bad;
	}
	return strbuf_add(b, v + start, n - start);
}

/*
 * The length of s[0..n), UTF-8 text cut at n, without a character the cut
 * left incomplete at its end.
 */
size_t
utf8_complete(const char *s, size_t n)
{
	size_t i = n, k = 0;
	unsigned char c;

	while (i > 0 && k < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
		i--;
		k++;
	}
	if (i == 0 || (c = (unsigned char)s[i - 1]) < 0xc0)
		return n;
	return k < (c >= 0xf0 ? 3u : c >= 0xe0 ? 2u : 1u) ? i - 1 : n;
}

/* The NUL-terminated contents (caller frees), or NULL if anything failed. */
char *
strbuf_finish(struct strbuf *b)
{
	char *s = b->buf;

	if (b->failed || s == NULL) {
		free(b->buf);
		s = b->failed ? NULL : strdup("");
	}
	b->buf = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
	return s;
}

void
strbuf_reset(struct strbuf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->buf != NULL)
		b->buf[0] = '\0';
}
