/*
 * libFuzzer target: the enrichment's REST body parser (enrich_parse).  The
 * first byte chooses the object type; whatever the body, the parser keeps
 * at most the name, the image and the Fields= members, each value valid
 * UTF-8 and at most 512 bytes received (U+FFFD for bytes that are not
 * UTF-8 may make it longer), every span inside its buffer, and the
 * outputs format an event that points at the result.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct conf *C;
static struct json *J;
static struct enriched O;

static void
check_span(struct span s)
{
	struct utf8 u = { 0 };

	if (s.off == SPAN_NONE)
		return;
	if ((size_t)s.off + s.len >= O.buf.len || s.len > 3 * 512 ||
	    O.buf.buf[s.off + s.len] != '\0')
		abort(); /* outside the buffer, too long or not terminated */
	if (utf8_check(&u, (const uint8_t *)O.buf.buf + s.off, s.len) != 0 ||
	    u.need != 0)
		abort(); /* not UTF-8 */
}

int
LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
	static const char *const types[] = { "container", "service", "stack",
		"node", "nodecluster", "action" };
	static const char ev[] =
	    "{\"type\":\"container\",\"action\":\"update\",\"resource_uri\":"
	    "\"/api/app/v1/ns/container/0b0e3a1c/\",\"state\":\"Running\"}";
	const char *type, *why, *ex;
	const struct dc_event *e;
	struct dc_event v;
	struct strbuf b = { 0 };

	if (C == NULL) {
		char *ov[] = { "Output.Stdout=yes", "Output.Journal=no",
			"Enrich.Fields=image_tag,state,cpu_shares,node,region,"
			"external_fqdn,name" };

		log_init(-1);
		C = conf_load("/dev/null", 1, ov, 3);
		J = json_new();
		if (C == NULL || J == NULL)
			abort();
	}
	if (n == 0)
		return 0;
	type = types[p[0] % (sizeof types / sizeof types[0])];
	if (enrich_parse(C, type, strlen(type), p + 1, n - 1, &O, &why) == -1) {
		if (why == NULL || O.nfields != 0 || O.name.off != SPAN_NONE)
			abort(); /* a refusal keeps nothing */
		return 0;
	}
	check_span(O.type);
	check_span(O.name);
	check_span(O.image);
	if (O.nfields > ENRICH_MAX_FIELDS)
		abort();
	for (unsigned i = 0; i < O.nfields; i++) {
		check_span(O.fields[i].name);
		check_span(O.fields[i].value);
	}
	json_begin(J);
	json_feed(J, (const uint8_t *)ev, sizeof ev - 1);
	if ((e = json_end(J, &why, &ex)) == NULL)
		abort();
	v = *e;
	v.obj = &O;
	v.up[0] = &O;
	v.nup = 1;
	dc_event_message(&v, &b);
	stdout_format(C, &v, &b);
	syslog_format(C, &v, 6, b.buf ? b.buf : "", 0, &b);
	free(strbuf_finish(&b));
	return 0;
}
