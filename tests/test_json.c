/*
 * Unit tests of the chunk-fed JSON parser (daemon/json.c): every split of
 * a message down to one byte at a time gives the same event, members and
 * their limits, errors and their excerpts, every string made valid UTF-8
 * (U+FFFD for lone surrogates and bytes that are not UTF-8), data's
 * members, and one handle reused after any message.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcevents.h"
#include "lib/tap.h"
#include "lib/testevent.h"

static void
add_span(
    struct strbuf *b, const struct dc_event *e, const char *name, struct span s)
{
	strbuf_printf(b, "%s=", name);
	if (s.off == SPAN_NONE)
		strbuf_addstr(b, "-");
	else {
		strbuf_add(b, "<", 1);
		strbuf_add_escaped(b, ev_str(e, s), s.len);
		strbuf_add(b, ">", 1);
	}
	strbuf_add(b, " ", 1);
}

/* The event as a canonical string, or "ERROR: why [excerpt]". */
static char *
canon(const struct dc_event *e, const char *why, const char *excerpt)
{
	struct strbuf b = { 0 };

	if (e == NULL) {
		strbuf_printf(&b, "ERROR: %s [%s]", why, excerpt);
		return strbuf_finish(&b);
	}
	add_span(&b, e, "type", e->type);
	add_span(&b, e, "action", e->action);
	add_span(&b, e, "state", e->state);
	add_span(&b, e, "uuid", e->uuid);
	add_span(&b, e, "uri", e->resource_uri);
	add_span(&b, e, "datetime", e->datetime);
	add_span(&b, e, "error", e->error);
	for (unsigned i = 0; i < e->nparents; i++)
		add_span(&b, e, "parent", e->parents[i]);
	for (unsigned i = 0; i < e->nextras; i++) {
		add_span(&b, e,
		    e->extras[i].in_data ? (e->extras[i].raw ? "data-raw" : "data")
					 : (e->extras[i].raw ? "raw" : "str"),
		    e->extras[i].name);
		add_span(&b, e, "value", e->extras[i].value);
	}
	strbuf_printf(&b, "dropped=%u", e->dropped);
	return strbuf_finish(&b);
}

/* Parse msg fed in pieces of at most chunk bytes, first piece first. */
static char *
parse_split(const char *msg, size_t len, size_t first, size_t chunk)
{
	const struct dc_event *e;
	const char *why = NULL, *ex = NULL;

	json_begin(J);
	if (first > 0)
		json_feed(J, (const uint8_t *)msg, first < len ? first : len);
	for (size_t off = first; off < len; off += chunk)
		json_feed(J, (const uint8_t *)msg + off,
		    len - off < chunk ? len - off : chunk);
	e = json_end(J, &why, &ex);
	return canon(e, why, ex);
}

static char *
parse(const char *msg)
{
	return parse_split(msg, strlen(msg), 0, strlen(msg) + 1);
}

/* Parsed whole, split at every position, and one byte at a time. */
static void
same_every_split(const char *msg, size_t len, const char *what)
{
	char *whole = parse_split(msg, len, len, 1), *s;
	int same = 1;

	for (size_t cut = 1; cut < len && same; cut++) {
		s = parse_split(msg, len, cut, len);
		same = strcmp(s, whole) == 0;
		if (!same)
			printf("# split at %zu: %s\n", cut, s);
		free(s);
	}
	s = parse_split(msg, len, 0, 1);
	if (strcmp(s, whole) != 0) {
		printf("# byte by byte: %s\n", s);
		same = 0;
	}
	free(s);
	ok(same, "%s: identical at every split and byte by byte", what);
	free(whole);
}

static void
test_parse(void)
{
	static const char *const msgs[] = {
		FULL,
		"{\"type\":\"error\",\"data\":{\"errorMessage\":"
		"\"UNAUTHORIZED\","
		"\"x\":[1,{\"y\":2}]}}",
		"{\"type\":\"ser\\u00e9vice\",\"uuid\":\"a\\u0000b\\n\\\"c\","
		"\"extra\":12.5e3,\"flag\":true,\"gone\":null,"
		"\"obj\":{\"deep\":[[[1]]]},\"s\":\"\\ud83d\\ude00\"}",
		" \r\n\t{\"date\":\"2015-01-01T00:00:00Z\",\"type\":\"node\"} "
		"\n",
		"{\"a\":[1,2,3],\"b\":\"x\"}",
		"[1,2]",
		"{\"type\":\"x\",}",
	};

	for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
		char what[32];

		snprintf(what, sizeof what, "message %zu", i + 1);
		same_every_split(msgs[i], strlen(msgs[i]), what);
	}
	{
		static const char nul[] = "{\"uuid\":\"a\\u0000b\",\"z\":1}";
		same_every_split(nul, sizeof nul - 1, "a \\u0000 escape");
	}

	char *s = parse(FULL);
	is_str(s,
	    "type=<container> action=<update> state=<Running> uuid=<e1> "
	    "uri=</api/app/v1/ns/container/0b0e3a1c-9f6d-4e44/> "
	    "datetime=<2016-03-08T14:03:21.123456Z> error=- "
	    "parent=</api/app/v1/ns/service/s1/> "
	    "parent=</api/app/v1/ns/stack/k1/> dropped=0",
	    "every member of an event, members in any order");
	free(s);
	s = parse(msgs[1]);
	is_str(s,
	    "type=<error> action=- state=- uuid=- uri=- datetime=- "
	    "error=<UNAUTHORIZED> dropped=0",
	    "error event: data.errorMessage, the rest of data skipped");
	free(s);
	s = parse(msgs[2]);
	is_str(s,
	    "type=<ser\xc3\xa9vice> action=- state=- uuid=<a\\x00b\\n\"c> "
	    "uri=- datetime=- error=- raw=<extra> value=<12.5e3> "
	    "raw=<flag> value=<true> str=<s> value=<\xf0\x9f\x98\x80> "
	    "dropped=0",
	    "escapes decoded (NUL kept by length), unknown scalars kept "
	    "typed, null and nested members skipped");
	free(s);
	s = parse(msgs[3]);
	is_str(s,
	    "type=<node> action=- state=- uuid=- uri=- "
	    "datetime=<2015-01-01T00:00:00Z> error=- dropped=0",
	    "the older date member, whitespace around");
	free(s);
	s = parse("{\"datetime\":\"new\",\"date\":\"old\"}");
	ok(strstr(s, "datetime=<new>") != NULL,
	    "datetime wins over a later date");
	free(s);
	s = parse("{\"date\":\"old\",\"datetime\":\"new\"}");
	ok(strstr(s, "datetime=<new>") != NULL,
	    "datetime wins over an earlier date");
	free(s);

	s = parse("[1,2]");
	is_str(s, "ERROR: not a JSON object [[1,2]]", "an array is refused");
	free(s);
	s = parse("\"text\"");
	is_str(s, "ERROR: not a JSON object [\"text\"]", "a string is refused");
	free(s);
	s = parse("42");
	ok(strncmp(s, "ERROR: not a JSON object", 24) == 0,
	    "a number is refused");
	free(s);
	s = parse("null");
	ok(strncmp(s, "ERROR: not a JSON object", 24) == 0, "null is refused");
	free(s);
	s = parse("{\"type\":\"x\",}");
	is_str(s, "ERROR: invalid JSON [{\"type\":\"x\",}]", "invalid JSON");
	free(s);
	s = parse("{\"a\":1} x");
	ok(strncmp(s, "ERROR: invalid JSON", 19) == 0, "trailing garbage");
	free(s);
	s = parse("{}{}");
	ok(strncmp(s, "ERROR: invalid JSON", 19) == 0,
	    "two objects in one message");
	free(s);
	s = parse("");
	is_str(s, "ERROR: empty message []", "an empty message");
	free(s);
	s = parse("{\"type\":\"x\"");
	ok(strncmp(s, "ERROR: invalid JSON", 19) == 0, "a cut-off object");
	free(s);
	s = parse("{\"a\":\"\x01\n\xc3\xa9 "
		  "0123456789012345678901234567890123456789\"}");
	is_str(s,
	    "ERROR: invalid JSON [{\"a\":\"\\x01\\n\xc3\xa9 "
	    "0123456789012345678901234567890123456...]",
	    "the excerpt: 48 bytes, escaped, marked as cut");
	free(s);

	{
		struct strbuf b = { 0 };
		char *m;

		strbuf_addstr(&b, "{\"a\":");
		for (int i = 0; i < 31; i++)
			strbuf_addstr(&b, "[");
		for (int i = 0; i < 31; i++)
			strbuf_addstr(&b, "]");
		strbuf_addstr(&b, ",\"type\":\"t\"}");
		m = strbuf_finish(&b);
		s = parse(m);
		ok(strncmp(s, "type=<t>", 8) == 0, "32 levels are fine");
		free(s);
		m[5] = '{';
		free(m);
		strbuf_addstr(&b, "{\"a\":");
		for (int i = 0; i < 32; i++)
			strbuf_addstr(&b, "[");
		for (int i = 0; i < 32; i++)
			strbuf_addstr(&b, "]");
		strbuf_addstr(&b, "}");
		m = strbuf_finish(&b);
		s = parse(m);
		ok(strncmp(s, "ERROR: nested deeper than 32 levels", 35) == 0,
		    "33 levels are refused");
		free(s);
		free(m);

		strbuf_addstr(&b, "{\"parents\":[");
		for (int i = 0; i < 70; i++)
			strbuf_printf(&b, "%s\"/p/%d/\"", i ? "," : "", i);
		strbuf_addstr(&b, "]");
		for (int i = 0; i < 40; i++)
			strbuf_printf(&b, ",\"m%d\":%d", i, i);
		strbuf_addstr(&b, "}");
		m = strbuf_finish(&b);
		json_begin(J);
		json_feed(J, (const uint8_t *)m, strlen(m));
		{
			const char *why, *ex;
			const struct dc_event *e = json_end(J, &why, &ex);

			ok(e && e->nparents == 64 && e->nextras == 32 &&
				e->dropped == 6 + 8,
			    "64 parents and 32 members kept, the rest counted");
		}
		free(m);
	}
}

/* The value of the one member of {"a":...}, as parsed. */
static char *
value_of(const char *msg, size_t len)
{
	const struct dc_event *e;
	const char *why, *ex;
	struct strbuf b = { 0 };

	json_begin(J);
	json_feed(J, (const uint8_t *)msg, len);
	e = json_end(J, &why, &ex);
	if (e == NULL || e->nextras != 1)
		strbuf_printf(&b, "ERROR: %s [%s]", e ? "members" : why,
		    e ? "" : ex);
	else
		strbuf_add(&b, ev_str(e, e->extras[0].value),
		    e->extras[0].value.len);
	return strbuf_finish(&b);
}

/*
 * Every string handed on is valid UTF-8 (README, Records).  Escapes of
 * lone surrogates and bytes that are not UTF-8 (a binary message) become
 * U+FFFD, one per maximal invalid subpart; pairs and valid text stay.
 */
static void
test_utf8(void)
{
#define FFFD "\xef\xbf\xbd"
	char *s;
	static const struct {
		const char *in, *want, *what;
	} cases[] = {
		{ "\\udfff", FFFD, "a lone low surrogate escape" },
		{ "\\udc00x", FFFD "x", "a lone low one, then text" },
		{ "\\ud800", FFFD, "a lone high surrogate escape at the end" },
		{ "\\ud800x", FFFD "x", "a lone high one, then text" },
		{ "\\uD800\\u0041", FFFD "A",
		    "a high one, then another escape (kept)" },
		{ "\\ud800\\n", FFFD "\n", "a high one, then \\n" },
		{ "\\udc00\\ud800", FFFD FFFD, "low, then high" },
		{ "\\ud800\\ud83d\\ude00", FFFD "\xf0\x9f\x98\x80",
		    "a lone high one, then a pair" },
		{ "\\ud83d\\ude00", "\xf0\x9f\x98\x80",
		    "a pair: one four-byte character" },
		{ "\\uDBFF\\uDFFF", "\xf4\x8f\xbf\xbf", "the last pair" },
		{ "\\\\udfff", "\\udfff", "an escaped backslash, then udfff" },
		{ "\\\\\\udfff", "\\" FFFD, "a backslash, then \\udfff" },
		{ "\\u00e9\\uffff", "\xc3\xa9\xef\xbf\xbf",
		    "escapes that are not surrogates" },
		{ "\xff", FFFD, "a byte that is never UTF-8" },
		{ "a\x80z", "a" FFFD "z", "a lone continuation byte" },
		{ "\xc0\x80", FFFD FFFD, "an overlong NUL" },
		{ "\xe0\x80\xaf", FFFD FFFD FFFD, "an overlong slash" },
		{ "\xed\xbf\xbf", FFFD FFFD FFFD,
		    "a surrogate's bytes (what yajl made of \\udfff)" },
		{ "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD, "past U+10FFFF" },
		{ "\xe2\x82z", FFFD "z", "a sequence cut short: one U+FFFD" },
		{ "\xf0\x9f\x98", FFFD, "a four-byte sequence cut at the end" },
		{ "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80", "\xc3\xa9\xe6\x97\xa5"
		    "\xf0\x9f\x98\x80", "valid text as it is" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char msg[128];
		int n = snprintf(msg, sizeof msg, "{\"a\":\"%s\"}", cases[i].in);

		s = value_of(msg, (size_t)n);
		is_str(s, cases[i].want, "%s", cases[i].what);
		free(s);
		same_every_split(msg, (size_t)n, cases[i].what);
	}

	{
		const struct dc_event *e = event_of(HOSTILE);

		ok(e != NULL && e->nparents == 1 && e->nextras == 1,
		    "hostile bytes and escapes everywhere: still an event");
		ok(e != NULL && valid_utf8(e->buf.buf, e->buf.len),
		    "every string of it is valid UTF-8");
		ok(e != NULL &&
			memcmp(ev_str(e, e->extras[0].name), "st" FFFD "te", 7) ==
			    0,
		    "member names too");
	}

	s = value_of("{\"a\":\xff\xfe}", 8);
	is_str(s, "ERROR: invalid JSON [{\"a\":\\xff\\xfe}]",
	    "an excerpt: bytes that are not UTF-8 as \\xNN");
	free(s);
	s = value_of("{\"a\":\"\\ud800", 12);
	ok(strncmp(s, "ERROR: invalid JSON", 19) == 0,
	    "a message cut after a high surrogate escape is invalid");
	free(s);
	s = value_of("{\"a\":\"x\"} \\", 11);
	ok(strncmp(s, "ERROR: invalid JSON", 19) == 0,
	    "a backslash after the object is invalid");
	free(s);
	s = value_of("{\"a\":\"\\u12\"}", 12);
	ok(strncmp(s, "ERROR: invalid JSON", 19) == 0,
	    "a short \\u escape is invalid");
	free(s);
#undef FFFD
}

/* data's scalar members are kept as the event's; the rest is skipped. */
static void
test_data(void)
{
	char *s;

	s = parse(NOTE);
	is_str(s,
	    "type=<user-notification> action=- state=- uuid=<n1> uri=- "
	    "datetime=- error=- data=<message> value=<Stack is running: 2 "
	    "services, 2 containers> data-raw=<n> value=<2> data-raw=<ok> "
	    "value=<true> data=<t> value=<a\\nb> dropped=0",
	    "data's scalar members kept, nested, arrays and null skipped");
	free(s);
	same_every_split(NOTE, strlen(NOTE), "a notification");
}

/*
 * One yajl handle takes message after message; whatever the one before
 * was (good, bad, cut off, huge), the next parses as on a fresh handle.
 */
static void
test_reuse(void)
{
	static const char good[] =
	    "{\"type\":\"container\",\"state\":\"Running\",\"n\":12}";
	struct json *fresh = json_new(), *saved = J;
	const char *before[] = { good, "  ", "", "{\"type\":\"x\"", "{}{}",
		"{\"a\":1} x", "42", "[1,", "{\"n\":1.5e3}", "{}\"", "{} 4",
		"{} {\"type\":", NULL };
	char *want, *s;
	struct strbuf big = { 0 };

	J = fresh;
	want = parse(good);
	J = saved;
	ok(strncmp(want, "type=<container>", 16) == 0, "the reference parses");
	for (int i = 0; before[i] != NULL; i++) {
		free(parse(before[i]));
		s = parse(good);
		is_str(s, want, "good after \"%s\"", before[i]);
		free(s);
	}
	s = parse("  ");
	is_str(s, "ERROR: invalid JSON [  ]", "whitespace only, after a good one");
	free(s);
	s = parse("{\"type\":\"x\"}\"");
	is_str(s, "ERROR: invalid JSON [{\"type\":\"x\"}\"]",
	    "an object, then the start of a string");
	free(s);
	s = parse("{\"type\":\"x\"} \r\n\t");
	ok(strncmp(s, "type=<x>", 8) == 0, "whitespace after the object");
	free(s);

	/* Cut off: begun, fed, never ended (the connection dropped). */
	json_begin(J);
	json_feed(J, (const uint8_t *)"{\"type\":\"ab", 12);
	s = parse(good);
	is_str(s, want, "good after a message cut off mid-string");
	free(s);

	/* A 64 KiB string with escapes grows yajl's buffers. */
	strbuf_addstr(&big, "{\"type\":\"");
	for (int i = 0; i < 8192; i++)
		strbuf_addstr(&big, "abc\\ndef");
	strbuf_addstr(&big, "\"}");
	s = parse(big.buf);
	ok(strncmp(s, "type=<abc\\ndef", 14) == 0, "a 64 KiB escaped string");
	free(s);
	free(strbuf_finish(&big));
	s = parse(good);
	is_str(s, want, "good after the big one");
	free(s);

	free(want);
	json_free(fresh);
}

int
main(void)
{
	log_init(0);
	J = json_new();
	test_parse();
	test_utf8();
	test_data();
	test_reuse();
	json_free(J);
	return done();
}
