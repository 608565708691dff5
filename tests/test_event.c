/*
 * Unit tests of the event layer: the chunk-fed parser (every split, down
 * to one byte at a time), limits and errors, priorities, MESSAGE,
 * MESSAGE_IDs, journal field names, the duplicate filter, and the syslog
 * and stdout formats (syslog records cut to a datagram well-formed).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcevents.h"
#include "tap.h"
#include "testconf.h"

static struct json *J;

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

static const char FULL[] =
    "{\"type\": \"container\", \"action\": \"update\", "
    "\"parents\": [\"/api/app/v1/ns/service/s1/\", "
    "\"/api/app/v1/ns/stack/k1/\"],"
    " \"resource_uri\": \"/api/app/v1/ns/container/0b0e3a1c-9f6d-4e44/\", "
    "\"state\": \"Running\", \"uuid\": \"e1\", "
    "\"datetime\": \"2016-03-08T14:03:21.123456Z\"}";

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

static const struct dc_event *
event_of(const char *msg)
{
	const char *why, *ex;

	json_begin(J);
	json_feed(J, (const uint8_t *)msg, strlen(msg));
	return json_end(J, &why, &ex);
}

static int
prio_of(const char *type, const char *state)
{
	char msg[256];

	snprintf(
	    msg, sizeof msg, "{\"type\":\"%s\",\"state\":\"%s\"}", type, state);
	return dc_event_default_priority(event_of(msg));
}

static void
test_priority(void)
{
	static const struct {
		const char *type, *state;
		int p;
	} table[] = {
		{ "error", "", 3 },
		{ "action", "Failed", 3 },
		{ "node", "Unreachable", 4 },
		{ "service", "Partly running", 4 },
		{ "stack", "Partly running", 4 },
		{ "nodecluster", "Partly deployed", 4 },
		{ "action", "Canceled", 5 },
		{ "container", "Stopped", 5 },
		{ "stack", "Terminated", 5 },
		{ "nodecluster", "Empty cluster", 5 },
		{ "container", "Running", 6 },
		{ "action", "Success", 6 },
		{ "stack", "Not Running", 6 },
		{ "something-new", "Whatever", 6 },
		{ "auth", "", 7 },
		{ "user-notification", "", 7 },
		{ "user-notifications", "", 7 },
		{ "container", "running", 6 },
	};
	const char *text = "[Output]\nStdout=yes\n[Priority]\n"
			   "container.Stopped=warning\ncontainer=debug\n"
			   "Default=notice\n";
	struct conf *c;

	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		is_int(prio_of(table[i].type, table[i].state), table[i].p,
		    "priority of %s %s", table[i].type, table[i].state);

	c = conf_from_text(text);
	is_int(dc_event_priority(c,
		   event_of("{\"type\":\"container\",\"state\":"
			    "\"Stopped\"}")),
	    4, "[Priority] TYPE.STATE first");
	is_int(dc_event_priority(c,
		   event_of("{\"type\":\"container\",\"state\":"
			    "\"Running\"}")),
	    7, "then TYPE");
	is_int(dc_event_priority(c,
		   event_of("{\"type\":\"node\",\"state\":"
			    "\"Deployed\"}")),
	    5, "then Default");
	conf_free(c);
}

static void
test_message(void)
{
	struct strbuf b = { 0 };
	char *s;

	dc_event_message(event_of(FULL), &b);
	s = strbuf_finish(&b);
	is_str(s,
	    "container 0b0e3a1c update: Running "
	    "(/api/app/v1/ns/container/0b0e3a1c-9f6d-4e44/)",
	    "MESSAGE of an object event");
	free(s);
	dc_event_message(event_of("{\"type\":\"error\",\"data\":{\"errorMessage\":"
			       "\"bad\\nthing\\u0001\"}}"),
	    &b);
	s = strbuf_finish(&b);
	is_str(s, "error: bad\\nthing\\x01", "MESSAGE of an error, escaped");
	free(s);
	dc_event_message(event_of("{\"type\":\"x\\ny\",\"state\":\"S\\t\","
			       "\"resource_uri\":\"/a/b\"}"),
	    &b);
	s = strbuf_finish(&b);
	is_str(s, "x\\ny b: S\\t (/a/b)", "control characters escaped");
	free(s);
	dc_event_message(event_of("{\"type\":\"t\",\"resource_uri\":"
			       "\"/x/\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
			       "\u00e9\u00e9/\"}"),
	    &b);
	s = strbuf_finish(&b);
	ok(s != NULL && strncmp(s, "t \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
				"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 (", 20) == 0,
	    "the object's first 8 characters, not bytes");
	free(s);
	dc_event_message(event_of("{}"), &b);
	s = strbuf_finish(&b);
	is_str(s, "event", "an empty object");
	free(s);

	is_str(dc_event_message_id(event_of("{\"type\":\"container\"}")),
	    "2d5b08411d17441eb2311e51539d27d3", "MESSAGE_ID of container");
	ok(strcmp(dc_event_message_id(event_of("{\"type\":\"stack\"}")),
	       dc_event_message_id(event_of("{\"type\":\"service\"}"))) != 0,
	    "each type its own MESSAGE_ID");
	is_str(dc_event_message_id(event_of("{\"type\":\"brand-new\"}")),
	    "60ac6ef7c5b84cd7a9261121a1bf88bd", "unknown types share one");
}

static void
test_field_names(void)
{
	char out[65];

	ok(dc_event_field_name("fooBar-baz.1", 12, 0, out) == 0 &&
		strcmp(out, "DOCKERCLOUD_FOOBAR_BAZ_1") == 0,
	    "upper-cased, other characters to _");
	ok(dc_event_field_name("\xc3\xa9t\xc3\xa9", 5, 0, out) == 0 &&
		strcmp(out, "DOCKERCLOUD___T__") == 0,
	    "non-ASCII bytes to _");
	ok(dc_event_field_name(
	       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 52, 0,
	       out) == 0,
	    "64 characters in all is fine");
	ok(dc_event_field_name(
	       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 53, 0,
	       out) == -1,
	    "65 is skipped");
	ok(dc_event_field_name("object_uuid", 11, 0, out) == -1,
	    "a member cannot take one of our fields");
	ok(dc_event_field_name("priority", 8, 0, out) == 0 &&
		strcmp(out, "DOCKERCLOUD_PRIORITY") == 0,
	    "PRIORITY cannot be spoofed: it gets the prefix");
}

static void
test_dedup(void)
{
	struct dedup *d = dedup_new();
	char u[32];
	int ok1 = 1;

	ok(!dedup_seen(d, "a", 1), "a new uuid");
	ok(dedup_seen(d, "a", 1), "the same again: duplicate");
	for (int i = 0; i < 4095; i++) {
		snprintf(u, sizeof u, "u%d", i);
		if (dedup_seen(d, u, strlen(u)))
			ok1 = 0;
	}
	ok(ok1, "4095 more new ones");
	ok(dedup_seen(d, "a", 1), "the first is still among the last 4096");
	ok(!dedup_seen(d, "zz", 2), "one more pushes it out");
	ok(!dedup_seen(d, "a", 1), "so it is new again");
	ok1 = 1;
	for (int i = 0; i < 100000; i++) {
		snprintf(u, sizeof u, "x%d", i);
		if (dedup_seen(d, u, strlen(u)))
			ok1 = 0;
		if (i >= 4096 && (i % 997) == 0) {
			char old[32];

			snprintf(old, sizeof old, "x%d", i - 1);
			if (!dedup_seen(d, old, strlen(old)))
				ok1 = 0;
		}
	}
	ok(ok1, "100000 uuids: no false duplicate, recent ones found");
	ok1 = 1;
	for (int i = 0; i < 200000; i++) {
		char v[40];

		/* real uuids: 36 bytes differing in one place, or the tail */
		snprintf(v, sizeof v, "%08d-9e1b-4c2a-8d3f-%012d",
		    i % 7 == 0 ? i : 0, i);
		if (dedup_seen(d, v, strlen(v)))
			ok1 = 0;
	}
	ok(ok1, "200000 uuid-shaped ids: no false duplicate");
	dedup_free(d);
}

static void
test_formats(void)
{
	const char *hostile =
	    "{\"type\":\"container\",\"state\":\"Run\\\"ning]\","
	    "\"uuid\":\"u\\\\1\",\"parents\":[\"/p]1/\"],"
	    "\"x y\":\"v\\n\"}";
	struct conf *c =
	    conf_from_text("[Stream]\nNamespace=acme\n[Output]\n"
			   "Syslog=udp://127.0.0.1:514\n"
			   "SyslogFacility=local0\nIdentifier=dce\n");
	struct strbuf b = { 0 };
	char *s, *sd;

	syslog_format(c, event_of(hostile), 4, "MSG", 3, &b);
	s = strbuf_finish(&b);
	ok(strncmp(s, "<132>1 20", 9) == 0, "5424: PRI and version (%.12s)", s);
	sd = strstr(s, " dce ");
	ok(sd != NULL && strstr(sd, " container [dockercloud@32473 ") != NULL,
	    "5424: APP-NAME, PROCID, MSGID = type");
	ok(strstr(s,
	       "type=\"container\" state=\"Run\\\"ning\\]\" uuid=\"u\\\\1\" "
	       "parent=\"/p\\]1/\" namespace=\"acme\" x_y=\"v\\\\n\"] MSG") !=
		NULL,
	    "5424: SD-PARAM escaping of \", \\ and ], names made valid");
	free(s);
	conf_free(c);

	c = conf_from_text("[Output]\nSyslog=tcp://127.0.0.1:514\n");
	syslog_format(c, event_of("{\"type\":\"node\"}"), 6, "node", 4, &b);
	s = strbuf_finish(&b);
	{
		char *sp = strchr(s, ' ');
		long n = strtol(s, NULL, 10);

		ok(sp && n == (long)strlen(sp + 1) && sp[1] == '<',
		    "TCP: octet counting, the length exact");
	}
	free(s);
	conf_free(c);

	c = conf_from_text(
	    "[Output]\nSyslog=local\nJournal=no\nIdentifier=dce\n");
	syslog_format(c, event_of("{\"type\":\"node\",\"state\":\"Up\"}"), 6,
	    "node: Up", 8, &b);
	s = strbuf_finish(&b);
	ok(strncmp(s, "<30>", 4) == 0 && s[7] == ' ' && s[10] == ' ' &&
		s[13] == ':' && strstr(s, " dce[") != NULL,
	    "3164: PRI, Mmm dd hh:mm:ss, TAG[PID]");
	ok(strstr(s, "]: node: Up type=\"node\" state=\"Up\"") != NULL,
	    "3164: MESSAGE then key=\"value\" pairs");
	free(s);
	conf_free(c);

	c = conf_from_text("[Stream]\nNamespace=acme\n[Output]\nStdout=yes\n");
	stdout_format(c, event_of(FULL), &b);
	s = strbuf_finish(&b);
	is_str(s,
	    "{\"type\":\"container\",\"action\":\"update\",\"state\":"
	    "\"Running\",\"uuid\":\"e1\",\"resource_uri\":"
	    "\"/api/app/v1/ns/container/0b0e3a1c-9f6d-4e44/\",\"parents\":"
	    "[\"/api/app/v1/ns/service/s1/\",\"/api/app/v1/ns/stack/k1/\"],"
	    "\"datetime\":\"2016-03-08T14:03:21.123456Z\",\"namespace\":"
	    "\"acme\"}\n",
	    "stdout: one JSON line, the members plus namespace");
	free(s);
	stdout_format(c,
	    event_of("{\"type\":\"error\",\"data\":{\"errorMessage\""
		     ":\"no\"},\"n\":5,\"t\":false,\"q\":\"\\u0000\"}"),
	    &b);
	s = strbuf_finish(&b);
	ok(s != NULL &&
		memcmp(s,
		    "{\"type\":\"error\",\"data\":{\"errorMessage\":\"no\"},"
		    "\"n\":5,\"t\":false,\"q\":\"\\u0000\",\"namespace\":"
		    "\"acme\"}\n",
		    strlen(s)) == 0,
	    "stdout: data.errorMessage, typed unknown members, NUL escaped");
	free(s);
	conf_free(c);
}

/* Is s[0..n) valid UTF-8? */
static int
valid_utf8(const char *s, size_t n)
{
	struct utf8 u = { 0 };

	return utf8_check(&u, (const uint8_t *)s, n) == 0 && u.need == 0;
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
 * SPEC 5.2: every string handed on is valid UTF-8.  Escapes of lone
 * surrogates and bytes that are not UTF-8 (a binary message) become
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
		static const char bad[] =
		    "{\"type\":\"x\\udfff\",\"st\xffte\":\"\xc0\xaf\","
		    "\"parents\":[\"\\ud800\"],\"resource_uri\":\"/a/\xed\xa0\x80/\","
		    "\"data\":{\"errorMessage\":\"\xf8\"}}";
		const struct dc_event *e;
		struct conf *c = conf_from_text("[Stream]\nNamespace=n\n"
						"[Output]\nStdout=yes\n"
						"Syslog=udp://127.0.0.1:514\n");
		struct strbuf b = { 0 };
		int valid = 1;

		e = event_of(bad);
		ok(e != NULL && e->nparents == 1 && e->nextras == 1,
		    "hostile bytes and escapes everywhere: still an event");
		valid = valid_utf8(e->buf.buf, e->buf.len);
		ok(valid, "every string of it is valid UTF-8");
		ok(memcmp(ev_str(e, e->extras[0].name), "st" FFFD "te", 7) ==
			0,
		    "member names too");
		dc_event_message(e, &b);
		ok(valid_utf8(b.buf, b.len), "MESSAGE is valid UTF-8");
		strbuf_reset(&b);
		stdout_format(c, e, &b);
		ok(valid_utf8(b.buf, b.len), "the JSON line is valid UTF-8");
		strbuf_reset(&b);
		syslog_format(c, e, 4, "m", 1, &b);
		ok(valid_utf8(b.buf, b.len), "the RFC 5424 record is valid UTF-8");
		free(strbuf_finish(&b));
		conf_free(c);
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

static const char NOTE[] =
    "{\"type\":\"user-notification\",\"data\":{\"message\":\"Stack is "
    "running: 2 services, 2 containers\",\"n\":2,\"ok\":true,\"deep\":"
    "{\"x\":1},\"arr\":[1],\"nil\":null,\"t\":\"a\\nb\"},\"uuid\":\"n1\"}";

/*
 * auth and user-notification(s) events keep what their data says: in
 * MESSAGE, as DOCKERCLOUD_DATA_* fields, data.* parameters and the data
 * object on stdout; so do other events' data members.
 */
static void
test_data(void)
{
	struct conf *c = conf_from_text("[Output]\nStdout=yes\n"
					"Syslog=udp://127.0.0.1:514\n");
	struct strbuf b = { 0 };
	char *s, out[65];

	s = parse(NOTE);
	is_str(s,
	    "type=<user-notification> action=- state=- uuid=<n1> uri=- "
	    "datetime=- error=- data=<message> value=<Stack is running: 2 "
	    "services, 2 containers> data-raw=<n> value=<2> data-raw=<ok> "
	    "value=<true> data=<t> value=<a\\nb> dropped=0",
	    "data's scalar members kept, nested, arrays and null skipped");
	free(s);
	same_every_split(NOTE, strlen(NOTE), "a notification");

	dc_event_message(event_of(NOTE), &b);
	s = strbuf_finish(&b);
	is_str(s,
	    "user-notification: Stack is running: 2 services, 2 containers "
	    "n=2 ok=true t=a\\nb",
	    "MESSAGE of a notification: data's message, then NAME=VALUE");
	free(s);
	dc_event_message(event_of("{\"type\":\"auth\",\"data\":{\"user\":"
			       "\"demo\"},\"uuid\":\"a1\"}"),
	    &b);
	s = strbuf_finish(&b);
	is_str(s, "auth: user=demo", "MESSAGE of auth");
	free(s);
	dc_event_message(event_of("{\"type\":\"user-notifications\",\"data\":"
			       "\"hello\"}"),
	    &b);
	s = strbuf_finish(&b);
	is_str(s, "user-notifications: hello", "data as a string: the text");
	free(s);
	dc_event_message(event_of("{\"type\":\"auth\",\"data\":{}}"), &b);
	s = strbuf_finish(&b);
	is_str(s, "auth", "auth without data");
	free(s);
	dc_event_message(event_of("{\"type\":\"node\",\"state\":\"Deployed\","
			       "\"data\":{\"message\":\"m\"}}"),
	    &b);
	s = strbuf_finish(&b);
	is_str(s, "node: Deployed", "other types: MESSAGE as before");
	free(s);
	is_int(dc_event_default_priority(event_of(NOTE)), 7,
	    "a notification with data: debug");

	ok(dc_event_field_name("message", 7, 1, out) == 0 &&
		strcmp(out, "DOCKERCLOUD_DATA_MESSAGE") == 0,
	    "data's members: DOCKERCLOUD_DATA_<NAME>");
	ok(dc_event_field_name("type", 4, 1, out) == 0 &&
		strcmp(out, "DOCKERCLOUD_DATA_TYPE") == 0,
	    "data.type does not shadow DOCKERCLOUD_TYPE: it is not taken");

	stdout_format(c, event_of(NOTE), &b);
	s = strbuf_finish(&b);
	is_str(s,
	    "{\"type\":\"user-notification\",\"uuid\":\"n1\",\"data\":{"
	    "\"message\":\"Stack is running: 2 services, 2 containers\","
	    "\"n\":2,\"ok\":true,\"t\":\"a\\nb\"},\"namespace\":null}\n",
	    "stdout: data with its scalar members, typed");
	free(s);
	stdout_format(c,
	    event_of("{\"type\":\"error\",\"data\":{\"code\":401,"
		     "\"errorMessage\":\"no\"},\"data2\":\"x\"}"),
	    &b);
	s = strbuf_finish(&b);
	is_str(s,
	    "{\"type\":\"error\",\"data\":{\"errorMessage\":\"no\","
	    "\"code\":401},\"data2\":\"x\",\"namespace\":null}\n",
	    "stdout: an error's data, errorMessage first");
	free(s);
	syslog_format(c, event_of(NOTE), 7, "m", 1, &b);
	s = strbuf_finish(&b);
	ok(s != NULL &&
		strstr(s,
		    " uuid=\"n1\" data.message=\"Stack is running: 2 services, "
		    "2 containers\" data.n=\"2\" data.ok=\"true\" "
		    "data.t=\"a\\\\nb\"]") != NULL,
	    "syslog: data.NAME parameters");
	free(s);
	conf_free(c);
}

/*
 * A 5424 record's structured data parsed back as RFC 5424 says: after
 * the sixth space, "[dockercloud@32473", then name="value" pairs (in a
 * value only \" \\ \] escaped, no bare ] or "), then "]" and " " or the
 * end.  Up to nmax values (unescaped, NUL-terminated, freed by the
 * caller) go to vals; returns how many, or -1 if malformed, and points
 * *msg at the MSG.
 */
static int
sd_parse(const char *rec, char **vals, int nmax, const char **msg)
{
	static const char id[] = "[dockercloud@32473";
	const char *p = rec;
	int spaces = 0, n = 0;

	while (*p != '\0' && spaces < 6)
		if (*p++ == ' ')
			spaces++;
	if (strncmp(p, id, sizeof id - 1) != 0)
		return -1;
	p += sizeof id - 1;
	while (*p == ' ') {
		struct strbuf v = { 0 };
		const char *name = ++p;

		while (
		    *p > ' ' && *p < 127 && *p != '=' && *p != ']' && *p != '"')
			p++;
		if (p == name || p - name > 32 || p[0] != '=' || p[1] != '"')
			return -1;
		for (p += 2; *p != '"'; p++) {
			if (*p == '\0' || *p == ']')
				return -1;
			if (*p == '\\' &&
			    (p[1] == '"' || p[1] == '\\' || p[1] == ']'))
				p++;
			else if (*p == '\\')
				return -1;
			strbuf_add(&v, p, 1);
		}
		p++;
		if (n < nmax)
			vals[n++] = strbuf_finish(&v);
		else
			free(strbuf_finish(&v));
	}
	if (*p != ']' || (p[1] != ' ' && p[1] != '\0'))
		return -1;
	*msg = p[1] == ' ' ? p + 2 : p + 1;
	return n;
}

/*
 * Is len a place to cut raw's written form (controls escaped as SPEC 5.2
 * says, then SD-escaped) without splitting a UTF-8 sequence or an escape?
 */
static int
cut_between_units(const char *raw, size_t n, size_t len)
{
	size_t at = 0, i = 0;

	while (at < len && i < n) {
		unsigned char ch = (unsigned char)raw[i++];
		char e[8];

		if (ch < 0x20 || ch == 0x7f)
			at += escape_control(ch, e);
		else
			for (at++; ch >= 0xc0 && i < n &&
			     ((unsigned char)raw[i] & 0xc0) == 0x80;
			     i++)
				at++;
	}
	return at == len;
}

static void
test_truncation(void)
{
	/* \" and \\ in JSON, é € and an emoji, a control character */
	static const char unit[] =
	    "a\\\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\\\\\\u0001]";
	static const char raw_unit[] =
	    "a\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\\\x01]";
	struct conf *c = conf_from_text(
	    "[Stream]\nNamespace=acme\n[Output]\nSyslog=udp://127.0.0.1:514\n");
	struct strbuf j = { 0 }, b = { 0 }, raw = { 0 }, msg = { 0 };
	char *s, *full, *v[16], *fv[16];
	const char *raws[4] = { "container", "Run\"ning]", "", "acme" };
	const char *m, *fm;
	int n, good;

	/* A value of 100000 bytes and a long MSG: MSG goes, the value is
	 * cut, the element stays whole. */
	strbuf_addstr(&j, "{\"type\":\"container\",\"uuid\":\"u1\",\"pad\":\"");
	while (raw.len < 100000) {
		strbuf_addstr(&j, unit);
		strbuf_add(&raw, raw_unit, sizeof raw_unit - 1);
	}
	strbuf_addstr(&j, "\",\"state\":\"Running\"}");
	while (msg.len < 10000)
		strbuf_addstr(&msg, "container \xc3\xa9 ");
	syslog_format(c, event_of(j.buf), 6, msg.buf, msg.len, &b);
	s = strbuf_finish(&b);
	n = sd_parse(s, v, 16, &m);
	ok(strlen(s) <= 65000 && strlen(s) > 64900,
	    "UDP: a record of 100000 bytes cut to 65000 at most (%zu)",
	    strlen(s));
	ok(n == 5,
	    "UDP cut: the structured data parses back, every value "
	    "quoted, the element closed (%d)",
	    n);
	if (n == 5) {
		ok(strcmp(v[0], "container") == 0 &&
			strcmp(v[1], "Running") == 0 &&
			strcmp(v[2], "u1") == 0 && strcmp(v[3], "acme") == 0,
		    "UDP cut: the short values whole");
		ok(*m == '\0', "UDP cut: MSG shortened first (to nothing)");
		ok(strlen(v[4]) > 50000 &&
			cut_between_units(raw.buf, raw.len, strlen(v[4])),
		    "UDP cut: the long value cut between characters and "
		    "escapes (%zu bytes)",
		    strlen(v[4]));
		for (int i = 0; i < n; i++)
			free(v[i]);
	}
	free(s);

	/* Only MSG too long: the structured data whole, MSG cut between
	 * characters. */
	strbuf_reset(&msg);
	while (msg.len < 70001)
		strbuf_addstr(&msg, "\xc3\xa9");
	strbuf_add(&msg, "x", 1);
	syslog_format(c, event_of(FULL), 6, msg.buf, msg.len, &b);
	s = strbuf_finish(&b);
	n = sd_parse(s, v, 16, &m);
	ok(n == 9 && strlen(s) <= 65000 && strlen(s) >= 64999 &&
		strlen(m) % 2 == 0 && strncmp(m, msg.buf, strlen(m)) == 0,
	    "UDP: a long MSG alone is cut, between characters, to 65000");
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(s);

	/* Every limit from the header alone to the whole record. */
	strbuf_reset(&j);
	strbuf_addstr(&j,
	    "{\"type\":\"container\",\"state\":\"Run\\\"ning]\","
	    "\"uuid\":\"");
	for (int i = 0; i < 6; i++)
		strbuf_addstr(&j, unit);
	strbuf_addstr(&j, "\"}");
	syslog_format_within(
	    c, event_of(j.buf), 6, "m\xc3\xa9 x", 5, SIZE_MAX, &b);
	full = strbuf_finish(&b);
	n = sd_parse(full, fv, 16, &fm);
	raws[2] = raw.buf; /* the uuid: six units */
	good = n == 4;
	for (size_t max = 40; good && max <= strlen(full); max++) {
		int k;

		syslog_format_within(
		    c, event_of(j.buf), 6, "m\xc3\xa9 x", 5, max, &b);
		s = strbuf_finish(&b);
		k = sd_parse(s, v, 16, &m);
		good = k == n && strncmp(fm, m, strlen(m)) == 0 &&
		    strlen(m) != 2 && /* not inside the é */
		    (strlen(s) <= max || *m == '\0');
		for (int i = 0; i < k; i++) {
			good = good &&
			    strncmp(fv[i], v[i], strlen(v[i])) == 0 &&
			    cut_between_units(
				raws[i], strlen(raws[i]), strlen(v[i]));
			if (strlen(v[i]) < strlen(fv[i]))
				good = good && *m == '\0';
			free(v[i]);
		}
		if (!good)
			printf("# max %zu: %s\n", max, s);
		free(s);
	}
	ok(good,
	    "every limit: well-formed, within it, MSG first, values "
	    "prefixes of the whole ones");
	for (int i = 0; i < n; i++)
		free(fv[i]);
	free(full);
	conf_free(c);

	/* TCP is not cut; RFC 3164 to /dev/log is, its pairs closed. */
	c = conf_from_text("[Output]\nSyslog=tcp://127.0.0.1:514\n");
	strbuf_reset(&j);
	strbuf_addstr(&j, "{\"type\":\"container\",\"pad\":\"");
	for (int i = 0; i < 70000; i++)
		strbuf_add(&j, "p", 1);
	strbuf_addstr(&j, "\"}");
	syslog_format(c, event_of(j.buf), 6, "m", 1, &b);
	s = strbuf_finish(&b);
	ok(strlen(s) > 70000, "TCP: a record of 70000 bytes is not cut");
	free(s);
	conf_free(c);
	c = conf_from_text("[Output]\nSyslog=local\n");
	syslog_format(c, event_of(j.buf), 6, "m", 1, &b);
	s = strbuf_finish(&b);
	ok(strlen(s) <= 65000 && s[strlen(s) - 1] == '"' &&
		strstr(s, "]:  type=\"container\" pad=\"ppp") != NULL,
	    "3164: cut to 65000, MSG first, the last value closed");
	free(s);
	conf_free(c);
	free(strbuf_finish(&j));
	free(strbuf_finish(&raw));
	free(strbuf_finish(&msg));
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
	test_priority();
	test_message();
	test_field_names();
	test_dedup();
	test_formats();
	test_utf8();
	test_data();
	test_truncation();
	test_plain_span();
	test_reuse();
	json_free(J);
	return done();
}
