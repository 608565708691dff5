/*
 * Unit tests of the event (daemon/event.c): default and configured
 * priorities, MESSAGE (object events, errors, auth and notifications with
 * their data), MESSAGE_IDs, journal field names, and the duplicate
 * filter.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcevents.h"
#include "lib/tap.h"
#include "lib/testconf.h"
#include "lib/testevent.h"

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

/*
 * auth and user-notification(s) events keep what their data says: in
 * MESSAGE and as DOCKERCLOUD_DATA_* fields; other events' MESSAGE stays.
 */
static void
test_data(void)
{
	struct strbuf b = { 0 };
	char *s, out[65];

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
}

/* MESSAGE of an event with hostile bytes and escapes everywhere. */
static void
test_utf8(void)
{
	struct strbuf b = { 0 };

	dc_event_message(event_of(HOSTILE), &b);
	ok(valid_utf8(b.buf, b.len), "MESSAGE is valid UTF-8");
	free(strbuf_finish(&b));
}

int
main(void)
{
	log_init(0);
	J = json_new();
	test_priority();
	test_message();
	test_field_names();
	test_dedup();
	test_data();
	test_utf8();
	json_free(J);
	return done();
}
