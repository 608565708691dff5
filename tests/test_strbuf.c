/*
 * Unit tests of the string buffer (daemon/strbuf.c, strbuf.h): escaping of
 * control characters, the UTF-8 check against RFC 3629 (every string of
 * up to three bytes, four-byte edge cases, in pieces), the repair to
 * U+FFFD or \xNN, utf8_complete(), and plain_span() against the byte
 * loop it stands for.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcevents.h"
#include "lib/tap.h"

static void
test_escape(void)
{
	struct strbuf b = { 0 };
	char *s;

	strbuf_add_escaped(&b, "a\nb\r\tc\x01\x1f\x7f\\\"]\xc3\xa9\0z", 16);
	s = strbuf_finish(&b);
	is_str(s, "a\\nb\\r\\tc\\x01\\x1f\\x7f\\\"]\xc3\xa9\\x00z",
	    "control characters escaped, NUL too, UTF-8 and quotes kept");
	free(s);
}

/*
 * The reference: UTF-8 by its definition (RFC 3629), decoded a whole
 * string at a time: lead byte, continuation bytes 10xxxxxx, the shortest
 * form, no surrogates, nothing past U+10FFFF.
 */
static int
utf8_ref(const uint8_t *p, size_t n)
{
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t k;

		if (p[i] < 0x80)
			k = 1, cp = p[i];
		else if ((p[i] & 0xe0) == 0xc0)
			k = 2, cp = p[i] & 0x1f;
		else if ((p[i] & 0xf0) == 0xe0)
			k = 3, cp = p[i] & 0x0f;
		else if ((p[i] & 0xf8) == 0xf0)
			k = 4, cp = p[i] & 0x07;
		else
			return 0;
		if (i + k > n)
			return 0;
		for (size_t j = 1; j < k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if (cp < min[k] || (cp >= 0xd800 && cp <= 0xdfff) ||
		    cp > 0x10ffff)
			return 0;
		i += k;
	}
	return 1;
}

/* utf8_check() over p, in pieces cut at cut (none if cut >= n). */
static int
utf8_ours(const uint8_t *p, size_t n, size_t cut)
{
	struct utf8 u = { 0 };

	if (cut < n && utf8_check(&u, p, cut) != 0)
		return 0;
	if (cut >= n)
		cut = 0;
	return utf8_check(&u, p + cut, n - cut) == 0 && u.need == 0;
}

static void
test_utf8(void)
{
	/* Around every boundary of the ranges in utf8_check() */
	static const uint8_t edge[] = { 0x00, 0x41, 0x7f, 0x80, 0x81, 0x8f,
		0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1,
		0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff };
	size_t ne = sizeof edge, bad = 0, nvalid = 0, tried = 0;
	uint8_t b[64];

	/* Every string of one, two and three bytes, cut after the first */
	for (size_t n = 1; n <= 3; n++)
		for (uint32_t v = 0; v < 1u << (8 * n); v++) {
			int want;

			for (size_t j = 0; j < n; j++)
				b[j] = (uint8_t)(v >> (8 * (n - 1 - j)));
			want = utf8_ref(b, n);
			tried++;
			nvalid += (size_t)want;
			if (utf8_ours(b, n, n) != want ||
			    utf8_ours(b, n, 1) != want)
				bad++;
		}
	ok(bad == 0 && nvalid > 60000,
	    "UTF-8: every string of up to 3 bytes (%zu, %zu valid), whole and "
	    "in two pieces, as RFC 3629 says (%zu differ)",
	    tried, nvalid, bad);

	/* Four-byte strings from the edge values, every cut */
	bad = nvalid = tried = 0;
	for (size_t i = 0; i < ne * ne * ne * ne; i++) {
		b[0] = edge[i % ne];
		b[1] = edge[i / ne % ne];
		b[2] = edge[i / ne / ne % ne];
		b[3] = edge[i / ne / ne / ne];
		int want = utf8_ref(b, 4);

		tried++;
		nvalid += (size_t)want;
		for (size_t cut = 1; cut <= 4; cut++)
			if (utf8_ours(b, 4, cut) != want)
				bad++;
	}
	ok(bad == 0 && nvalid > 1000,
	    "UTF-8: %zu four-byte strings of edge values (%zu valid), at "
	    "every cut (%zu differ)",
	    tried, nvalid, bad);

	/* A character or a bad byte at every offset of the ASCII run */
	bad = 0;
	for (size_t at = 0; at < 40; at++) {
		static const char *ins[] = { "\xf0\x9f\x98\x80", "\xc3\xa9",
			"\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82" };

		for (size_t k = 0; k < sizeof ins / sizeof *ins; k++) {
			size_t m = strlen(ins[k]);

			memset(b, 'a', sizeof b);
			memcpy(b + at, ins[k], m);
			for (size_t n = at + m; n <= sizeof b; n += 7)
				if (utf8_ours(b, n, n) != utf8_ref(b, n) ||
				    utf8_ours(b, n, at + 1) != utf8_ref(b, n))
					bad++;
		}
	}
	ok(bad == 0,
	    "UTF-8: characters and bad bytes after 0-39 ASCII bytes, found "
	    "(%zu differ)",
	    bad);
}

/*
 * The repair (strbuf_add_utf8()) and the check together, and text cut
 * short at a character.
 */
static void
test_repair(void)
{
#define FFFD "\xef\xbf\xbd"
	{
		/* The ASCII steps (32, 8, the overlapping last 8, bytes):
		 * one byte or character that is not ASCII at every place. */
		struct strbuf b = { 0 };
		char p[80], want[96];
		size_t differ = 0, tried = 0;

		for (size_t n = 1; n <= sizeof p; n++)
			for (size_t at = 0; at < n; at++) {
				struct utf8 u = { 0 };

				memset(p, 'a', n);
				p[at] = '\xff';
				memset(want, 'a', n + 2);
				memcpy(want + at, FFFD, 3);
				strbuf_reset(&b);
				strbuf_add_utf8(&b, p, n, 0);
				differ += b.len != n + 2 ||
				    memcmp(b.buf, want, n + 2) != 0 ||
				    utf8_check(&u, (uint8_t *)p, n) == 0;
				if (at + 1 < n) {
					memset(&u, 0, sizeof u);
					p[at] = '\xc3';
					p[at + 1] = '\xa9';
					strbuf_reset(&b);
					strbuf_add_utf8(&b, p, n, 0);
					differ += b.len != n ||
					    memcmp(b.buf, p, n) != 0 ||
					    utf8_check(&u, (uint8_t *)p, n) != 0 ||
					    u.need != 0;
				}
				tried++;
			}
		ok(differ == 0,
		    "%zu strings of 1-80 bytes, a bad byte or an \xc3\xa9 at "
		    "every place: checked and repaired (%zu differ)",
		    tried, differ);
		free(strbuf_finish(&b));
	}
	ok(utf8_complete("ab\xc3", 3) == 2 &&
		utf8_complete("ab\xc3\xa9", 4) == 4 &&
		utf8_complete("\xf0\x9f\x98", 3) == 0 &&
		utf8_complete("a\xf0\x9f\x98\x80", 5) == 5 &&
		utf8_complete("\xe6\x97", 2) == 0 &&
		utf8_complete("abc", 3) == 3 && utf8_complete("", 0) == 0,
	    "utf8_complete: text cut short loses the character it cut");
	{
		struct strbuf b = { 0 };

		strbuf_add_utf8(&b, "a\xe2\x82z\xc3\xa9", 6, 1);
		is_str(b.buf, "a\\xe2\\x82z\xc3\xa9",
		    "strbuf_add_utf8 hex: each byte of the subpart, valid kept");
		free(strbuf_finish(&b));
	}
#undef FFFD
}

/* plain_span() against the byte-by-byte definition, every length and
 * position around its sixteen-byte steps. */
static void
test_plain_span(void)
{
	static const unsigned char bad[] = { '"', '\\', ']', 0x7f, 0x00, 0x1f,
		'\n' };
	size_t differ = 0, tried = 0;
	char p[80];

	for (size_t n = 0; n <= sizeof p; n++)
		for (size_t at = 0; at <= n; at++)
			for (size_t k = 0; k < sizeof bad; k++) {
				size_t want = n, got;

				memset(p, 'a', sizeof p);
				for (size_t j = 0; j < n; j++)
					p[j] = (char)(0x20 + (j * 7 + at) % 0x5f);
				if (at < n)
					p[at] = (char)bad[k];
				for (size_t j = 0; j < n; j++) {
					unsigned char ch = (unsigned char)p[j];

					if (ch < 0x20 || ch == '"' || ch == '\\' ||
					    ch == ']' || ch == 0x7f) {
						want = j;
						break;
					}
				}
				got = plain_span(p, n, '"', '\\', ']', 0x7f);
				tried++;
				differ += got != want;
			}
	ok(differ == 0,
	    "plain_span: %zu strings of 0-80 bytes, a byte to escape at every "
	    "place, found where the byte loop finds it (%zu differ)",
	    tried, differ);
}

int
main(void)
{
	log_init(0);
	test_escape();
	test_utf8();
	test_repair();
	test_plain_span();
	return done();
}
