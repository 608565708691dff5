/*
 * Unit tests of the stdout format (daemon/sink_stdout.c): one JSON line
 * per event, its members typed, data with its scalar members (an error's
 * errorMessage first), the namespace, every line valid UTF-8.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dcevents.h"
#include "lib/tap.h"
#include "lib/testconf.h"
#include "lib/testevent.h"

static void
test_formats(void)
{
	struct conf *c =
	    conf_from_text("[Stream]\nNamespace=acme\n[Output]\nStdout=yes\n");
	struct strbuf b = { 0 };
	char *s;

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

/* An event's data members, typed. */
static void
test_data(void)
{
	struct conf *c = conf_from_text("[Output]\nStdout=yes\n"
					"Syslog=udp://127.0.0.1:514\n");
	struct strbuf b = { 0 };
	char *s;

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
	conf_free(c);
}

/* The line of an event with hostile bytes and escapes everywhere. */
static void
test_utf8(void)
{
	struct conf *c = conf_from_text("[Stream]\nNamespace=n\n"
					"[Output]\nStdout=yes\n"
					"Syslog=udp://127.0.0.1:514\n");
	struct strbuf b = { 0 };

	stdout_format(c, event_of(HOSTILE), &b);
	ok(valid_utf8(b.buf, b.len), "the JSON line is valid UTF-8");
	free(strbuf_finish(&b));
	conf_free(c);
}

int
main(void)
{
	log_init(0);
	J = json_new();
	test_formats();
	test_data();
	test_utf8();
	json_free(J);
	return done();
}
