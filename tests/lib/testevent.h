/*
 * For the unit tests: events from strings, through the daemon's own
 * chunk-fed parser, and the messages that several modules' tests share.
 * A test sets J (json_new()) before its first event_of(); an event lives
 * until the next message is parsed on J.
 */
#ifndef TESTEVENT_H
#define TESTEVENT_H

#include <stdint.h>
#include <string.h>

#include "dcevents.h"

static struct json *J;

/* An event of every member the parser knows. */
static const char __attribute__((unused)) FULL[] =
    "{\"type\": \"container\", \"action\": \"update\", "
    "\"parents\": [\"/api/app/v1/ns/service/s1/\", "
    "\"/api/app/v1/ns/stack/k1/\"],"
    " \"resource_uri\": \"/api/app/v1/ns/container/0b0e3a1c-9f6d-4e44/\", "
    "\"state\": \"Running\", \"uuid\": \"e1\", "
    "\"datetime\": \"2016-03-08T14:03:21.123456Z\"}";

/* A notification whose data has scalar, nested, array and null members. */
static const char __attribute__((unused)) NOTE[] =
    "{\"type\":\"user-notification\",\"data\":{\"message\":\"Stack is "
    "running: 2 services, 2 containers\",\"n\":2,\"ok\":true,\"deep\":"
    "{\"x\":1},\"arr\":[1],\"nil\":null,\"t\":\"a\\nb\"},\"uuid\":\"n1\"}";

/* Lone surrogate escapes and bytes that are not UTF-8 everywhere. */
static const char __attribute__((unused)) HOSTILE[] =
    "{\"type\":\"x\\udfff\",\"st\xffte\":\"\xc0\xaf\","
    "\"parents\":[\"\\ud800\"],\"resource_uri\":\"/a/\xed\xa0\x80/\","
    "\"data\":{\"errorMessage\":\"\xf8\"}}";

/* msg parsed in one piece on J; NULL if it is not an event. */
static const struct dc_event *__attribute__((unused))
event_of(const char *msg)
{
	const char *why, *ex;

	json_begin(J);
	json_feed(J, (const uint8_t *)msg, strlen(msg));
	return json_end(J, &why, &ex);
}

/* Is s[0..n) valid UTF-8? */
static int __attribute__((unused)) valid_utf8(const char *s, size_t n)
{
	struct utf8 u = { 0 };

	return utf8_check(&u, (const uint8_t *)s, n) == 0 && u.need == 0;
}

#endif
