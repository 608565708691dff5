/*
 * Unit tests of the enrichment (daemon/enrich.c): the body parser (name,
 * a node's external_fqdn, image_name, Fields= members typed, values cut,
 * everything else left out, bodies that are no object refused), the
 * Fields= allow-list, and the cache through the real event loop against a
 * closed port (every lookup fails at once): entries answered from the
 * cache, the LRU bound, a delete's eviction.
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "dcevents.h"
#include "lib/tap.h"
#include "lib/testconf.h"
#include "lib/testevent.h"

static const char CONTAINER[] =
    "{\"uuid\":\"c1\",\"name\":\"web-1\",\"image_name\":\"nginx:1.25\","
    "\"image_tag\":\"/api/repo/v1/tag/nginx/1.25/\",\"cpu_shares\":512,"
    "\"privileged\":false,\"exit_code\":null,\"state\":\"Running\","
    "\"container_envvars\":[{\"key\":\"PW\",\"value\":\"SECRET\"}],"
    "\"nested\":{\"name\":\"inner\"}}";

static const char *
str(const struct enriched *o, struct span s)
{
	return s.off == SPAN_NONE ? "(none)" : o->buf.buf + s.off;
}

static void
test_parse(void)
{
	struct conf *c = conf_from_text(
	    "[Enrich]\nFields=image_tag cpu_shares privileged exit_code\n");
	struct enriched o = { 0 };
	const char *why = NULL;
	char *big;
	size_t n;

	is_int(enrich_parse(
		   c, "container", 9, CONTAINER, strlen(CONTAINER), &o, &why),
	    0, "parse: a container");
	is_str(str(&o, o.name), "web-1", "parse: name");
	is_str(str(&o, o.image), "nginx:1.25", "parse: image_name");
	is_str(str(&o, o.type), "container", "parse: the type");
	is_int(o.nfields, 3, "parse: three Fields= members (null is absent)");
	is_str(str(&o, o.fields[0].name), "image_tag", "parse: field 1 name");
	is_str(str(&o, o.fields[1].value), "512", "parse: a number, as sent");
	ok(o.fields[1].raw && !o.fields[0].raw, "parse: typed");
	is_str(str(&o, o.fields[2].value), "false", "parse: a boolean");
	ok(memmem(o.buf.buf, o.buf.len, "SECRET", 6) == NULL &&
		memmem(o.buf.buf, o.buf.len, "inner", 5) == NULL,
	    "parse: container_envvars and nested members are not kept");

	is_int(enrich_parse(c, "node", 4,
		   "{\"name\":\"no\",\"external_fqdn\":\"n1.example\"}", 42, &o,
		   &why),
	    0, "parse: a node");
	is_str(
	    str(&o, o.name), "n1.example", "parse: a node's name is its fqdn");

	is_int(enrich_parse(c, "service", 7, "{\"name\":5}", 10, &o, &why), 0,
	    "parse: a name that is not a string");
	ok(o.name.off == SPAN_NONE, "parse: ... is absent");

	n = 2000;
	big = malloc(n + 16);
	memcpy(big, "{\"name\":\"", 9);
	memset(big + 9, 'a', n);
	memcpy(big + 9 + 10, "\xc3\xa9", 2); /* a 2-byte character */
	memcpy(big + 9 + 511, "\xc3\xa9", 2); /* across the 512 cut */
	memcpy(big + 9 + n, "\"}", 3);
	is_int(enrich_parse(c, "stack", 5, big, strlen(big), &o, &why), 0,
	    "parse: a long name");
	is_int(o.name.len, 511,
	    "parse: cut to 512 bytes, never inside a "
	    "character");
	free(big);

	static const char *const bad[] = { "", "[]", "5", "\"s\"", "{", "{}{}",
		"<html>", "{\"name\":\"\xff\"}", "null" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why = NULL;
		is_int(enrich_parse(
			   c, "stack", 5, bad[i], strlen(bad[i]), &o, &why),
		    -1, "parse: refused: %s", bad[i]);
		ok(why != NULL && o.name.off == SPAN_NONE && o.nfields == 0,
		    "parse: ... with a reason, nothing kept");
	}
	big = malloc(ENRICH_MAX_BODY + 2);
	memset(big, ' ', ENRICH_MAX_BODY + 1);
	big[0] = '{';
	big[ENRICH_MAX_BODY] = '}';
	is_int(enrich_parse(c, "stack", 5, big, ENRICH_MAX_BODY + 1, &o, &why),
	    -1, "parse: a body over 256 KiB is refused");
	free(big);
	big = malloc(100);
	memcpy(big, "{\"a\":", 5);
	memset(big + 5, '[', 40);
	memset(big + 45, ']', 40);
	memcpy(big + 85, "}", 2);
	is_int(enrich_parse(c, "stack", 5, big, strlen(big), &o, &why), -1,
	    "parse: nested deeper than 32 levels is refused");
	free(big);
	free(strbuf_finish(&o.buf));
	conf_free(c);
}

static void
test_allow_list(void)
{
	ok(enrich_field_refused("image_tag", 9) == NULL, "Fields: image_tag");
	ok(enrich_field_refused("external_fqdn", 13) == NULL,
	    "Fields: external_fqdn");
	ok(strstr(enrich_field_refused("container_envvars", 17),
	       "can hold secrets") != NULL,
	    "Fields: container_envvars refused");
	ok(strstr(enrich_field_refused("run_command", 11),
	       "can hold secrets") != NULL,
	    "Fields: run_command refused");
	ok(strstr(enrich_field_refused("whatever", 8), "allow-list") != NULL,
	    "Fields: an unknown member refused");
	ok(enrich_field_refused("image_tagx", 9) == NULL &&
		enrich_field_refused("image_tagx", 10) != NULL,
	    "Fields: by length, not by prefix");
}

/* MESSAGE with the name looked up: the name, the short uuid, no URI. */
static void
test_message(void)
{
	struct conf *c = conf_from_text("[Enrich]\n");
	struct enriched o = { 0 };
	struct dc_event ev;
	struct strbuf b = { 0 };
	const char *why;
	char *s;

	enrich_parse(
	    c, "container", 9, "{\"name\":\"web-1\\n\"}", 18, &o, &why);
	ev = *event_of(FULL);
	ev.obj = &o;
	dc_event_message(&ev, &b);
	s = strbuf_finish(&b);
	is_str(s, "container web-1\\n (0b0e3a1c) update: Running",
	    "MESSAGE: the name (escaped), the short uuid, no URI");
	free(s);
	ev.obj = NULL;
	dc_event_message(&ev, &b);
	s = strbuf_finish(&b);
	ok(s != NULL && strstr(s, "(/api/app/v1/ns/container/") != NULL,
	    "MESSAGE: without a name, as before");
	free(s);
	free(strbuf_finish(&o.buf));
	conf_free(c);
}

static struct event_base *base;
static struct enrich *en;
static struct event *limit;

static void
on_limit(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(base);
}

/*
 * One turn of the loop that always ends, after at most ms: a callback
 * that keeps activating events (or a descriptor always ready) would keep
 * EVLOOP_NONBLOCK (and EVLOOP_ONCE) turning.  A base corrupted by another
 * thread breaks even this: main()'s alarm ends the test then.
 */
static void
turn(int flags, long ms)
{
	struct timeval tv = { ms / 1000, ms % 1000 * 1000 };

	evtimer_add(limit, &tv);
	event_base_loop(base, flags);
	evtimer_del(limit);
}

static void
settle(void)
{
	for (int i = 0; i < 200 && enrich_waiting(en) > 0; i++)
		turn(EVLOOP_ONCE, 100);
	/* and the queued fetches, and their failures */
	for (int i = 0; i < 20; i++)
		turn(EVLOOP_ONCE | EVLOOP_NONBLOCK, 0);
}

static void
feed(const char *action, const char *uuid)
{
	char msg[300];

	snprintf(msg, sizeof msg,
	    "{\"type\":\"container\",\"action\":\"%s\",\"resource_uri\":"
	    "\"/api/app/v1/ns/container/%s/\",\"uuid\":\"%s-%s\"}",
	    action, uuid, uuid, action);
	enrich_event(en, event_of(msg));
	settle();
}

static uint64_t
gets(void)
{
	uint64_t n = 0;

	for (int i = STAT_ENRICH_OK; i < STAT_ENRICH_N; i++)
		n += enrich_lookups(i);
	return n;
}

static void
nop(void *arg)
{
}

/* Every GET fails (nothing listens on 127.0.0.1:1): a failure is cached. */
static void
test_cache(void)
{
	struct conf *c = conf_from_text(
	    "[Stream]\nAllowInsecure=yes\n[Output]\nJournal=no\nStdout=no\n"
	    "Syslog=udp://127.0.0.1:9\n[Enrich]\nLookup=yes\n"
	    "URL=http://127.0.0.1:1/\nCacheEntries=2\nTimeoutSec=1s\n");
	struct evdns_base *dns;
	struct output *out;
	uint64_t g, cached;

	base = event_base_new();
	limit = evtimer_new(base, on_limit, NULL);
	dns = evdns_base_new(base, 0);
	out = output_new(base, c, nop, nop, NULL);
	en = enrich_new(base, dns, c, out, nop, nop, NULL);
	ok(en != NULL, "cache: enrichment started");
	if (en == NULL)
		exit(99);
	g = gets();
	cached = enrich_lookups(STAT_ENRICH_CACHED);
	feed("update", "a");
	is_int((int)(gets() - g), 1, "cache: a miss makes a GET");
	ok(enrich_lookups(STAT_ENRICH_SERVER_ERROR) >= 1,
	    "cache: a refused connection counts as server_error");
	feed("update", "a");
	is_int((int)(gets() - g), 1, "cache: the failure is cached");
	is_int((int)(enrich_lookups(STAT_ENRICH_CACHED) - cached), 1,
	    "cache: counted as cached");
	feed("update", "b");
	feed("update", "c"); /* CacheEntries=2: a goes */
	is_int((int)(gets() - g), 3, "cache: b and c looked up");
	feed("update", "c");
	is_int((int)(gets() - g), 3, "cache: c cached");
	feed("update", "a");
	is_int((int)(gets() - g), 4, "cache: a was evicted (LRU)");
	feed("delete", "a");
	is_int((int)(gets() - g), 4, "cache: a delete makes no GET");
	feed("update", "a");
	is_int((int)(gets() - g), 5, "cache: the delete evicted a");
	feed("delete", "zz");
	is_int(
	    (int)(gets() - g), 5, "cache: no GET for an unknown deleted one");
	is_int((int)enrich_waiting(en), 0, "cache: nothing left waiting");
	enrich_free(en);
	output_close(out, 1000);
	evdns_base_free(dns, 0);
	event_free(limit);
	event_base_free(base);
	conf_free(c);
}

/* A loop that never returns fails the test in minutes, not hours. */
static void
on_alarm(int sig)
{
	static const char m[] =
	    "Bail out! a loop turn has not ended in 120 s\n";

	(void)!write(1, m, sizeof m - 1);
	_exit(1);
}

int
main(void)
{
	signal(SIGALRM, on_alarm);
	alarm(120);
	J = json_new();
	test_parse();
	test_allow_list();
	test_message();
	test_cache();
	json_free(J);
	return done();
}
