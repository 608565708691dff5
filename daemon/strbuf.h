/*
 * strbuf.c: a growable string buffer, and the text primitives every
 * record format is built from: escaping (sixteen bytes a step), UTF-8
 * checking and repair.  A failed allocation marks the buffer;
 * strbuf_finish() then returns NULL, so callers check once, at the end.
 * Included by dcevents.h.
 */
#ifndef DCEVENTS_STRBUF_H
#define DCEVENTS_STRBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
	int failed;
};
int strbuf_grow(struct strbuf *, size_t more);
/*
 * Room for len more bytes and the NUL: where they go, or NULL.  The caller
 * writes up to len bytes there, then ends the string with strbuf_end_at().
 */
static inline char *
strbuf_room(struct strbuf *b, size_t len)
{
	if ((b->failed || b->len + len + 1 > b->cap) &&
	    strbuf_grow(b, len) == -1)
		return NULL;
	return b->buf + b->len;
}
/* The string now ends at end, a pointer into the room given. */
static inline void
strbuf_end_at(struct strbuf *b, char *end)
{
	*end = '\0';
	b->len = (size_t)(end - b->buf);
}
/* Append len bytes (inline: records are built from many small pieces). */
static inline int
strbuf_add(struct strbuf *b, const void *data, size_t len)
{
	if (strbuf_room(b, len) == NULL)
		return -1;
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->buf[b->len] = '\0';
	return 0;
}
int strbuf_addstr(struct strbuf *, const char *);
/*
 * How many bytes at the start of p need no escaping: none below 0x20 and
 * none equal to c1 .. c4 (0 for none).  Sixteen at a time (GCC's vector
 * extension: SSE2 on x86-64, NEON on arm64), the last sixteen again if
 * they overlap, byte by byte below sixteen.
 */
typedef unsigned char u8x16 __attribute__((vector_size(16)));

static inline int
plain16(const char *p, unsigned char c1, unsigned char c2, unsigned char c3,
    unsigned char c4)
{
	u8x16 v, m;
	uint64_t h[2];

	memcpy(&v, p, 16);
	m = (u8x16)((v < 0x20) | (v == c1) | (v == c2) | (v == c3) |
	    (v == c4));
	memcpy(h, &m, 16);
	return (h[0] | h[1]) == 0;
}

static inline size_t
plain_span(const char *p, size_t n, unsigned char c1, unsigned char c2,
    unsigned char c3, unsigned char c4)
{
	size_t i = 0;

	if (n >= 16) {
		for (; i + 16 <= n; i += 16)
			if (!plain16(p + i, c1, c2, c3, c4))
				goto bytes;
		if (i == n || plain16(p + n - 16, c1, c2, c3, c4))
			return n;
	}
bytes:
	for (; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch < 0x20 || ch == c1 || ch == c2 || ch == c3 || ch == c4)
			break;
	}
	return i;
}
/*
 * Append v, each byte below 0x20 or equal to c1 .. c4 (0 for none)
 * replaced by what esc writes for it (at most 8 bytes; it returns how
 * many), the runs between copied whole.  Inline, so that each caller's
 * bytes to stop at are constants.
 */
static inline int
strbuf_add_escaping(struct strbuf *b, const char *v, size_t n,
    unsigned char c1, unsigned char c2, unsigned char c3, unsigned char c4,
    size_t (*esc)(unsigned char, char *))
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		char e[8];

		if ((i += plain_span(v + i, n - i, c1, c2, c3, c4)) == n)
			break;
		strbuf_add(b, v + start, i - start);
		strbuf_add(b, e, esc((unsigned char)v[i], e));
		start = i + 1;
	}
	return strbuf_add(b, v + start, n - start);
}
size_t escape_control(unsigned char, char *);
size_t escape_json(unsigned char, char *);

/* v as a JSON string, quotes and all (valid UTF-8 in, valid JSON out). */
static inline int
strbuf_add_json_string(struct strbuf *b, const char *v, size_t n)
{
	strbuf_add(b, "\"", 1);
	strbuf_add_escaping(b, v, n, '"', '\\', 0, 0, escape_json);
	return strbuf_add(b, "\"", 1);
}
int strbuf_printf(struct strbuf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
int strbuf_add_escaped(struct strbuf *, const char *, size_t);
int strbuf_add_utf8(struct strbuf *, const char *, size_t, int hex);
size_t utf8_complete(const char *, size_t);
/* Incremental UTF-8 check: a zeroed struct utf8 starts; complete when
 * need is 0 again. */
struct utf8 {
	uint8_t need, lo, hi;
};
int utf8_check(struct utf8 *, const uint8_t *, size_t);
char *strbuf_finish(struct strbuf *);
void strbuf_reset(struct strbuf *);

#endif
