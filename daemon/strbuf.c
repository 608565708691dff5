/*
 * A growable byte buffer for building requests and records, and the one
 * escaping rule of SPEC 5.2: control characters become \n, \r, \t or \xNN,
 * everything else (UTF-8 included) is kept.  A failed allocation marks the
 * buffer; strbuf_finish() then returns NULL, so callers check once.
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

/* SPEC 5.2: \n \r \t, \xNN for other control characters and DEL. */
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

/* Append data with control characters escaped (SPEC 5.2). */
int
strbuf_add_escaped(struct strbuf *b, const char *data, size_t len)
{
	return strbuf_add_escaping(b, data, len, 0x7f, 0, 0, 0, escape_control);
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
