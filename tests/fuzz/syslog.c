/*
 * libFuzzer target: the RFC 5424 encoder.  Any event must give a record
 * whose structured data parses back: SD-NAMEs valid, every value quoted
 * with ", \ and ] escaped, one element, then " " and the MSG.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Check one [dockercloud@32473 name="value" ...] element at p. */
static const char *
check_sd(const char *p, const char *end)
{
	static const char id[] = "[dockercloud@32473";

	if ((size_t)(end - p) < sizeof id - 1 || memcmp(p, id, sizeof id - 1))
		abort();
	p += sizeof id - 1;
	while (p < end && *p == ' ') {
		const char *name = ++p;

		while (p < end && *p != '=') {
			unsigned char ch = (unsigned char)*p++;

			if (ch <= 32 || ch >= 127 || ch == ']' || ch == '"')
				abort();
		}
		if (p == name || p - name > 32 || p + 1 >= end || p[1] != '"')
			abort();
		for (p += 2; p < end && *p != '"'; p++) {
			if (*p == '\\') {
				if (++p >= end || (*p != '"' && *p != '\\' &&
						      *p != ']'))
					abort();
			} else if (*p == ']')
				abort();
		}
		if (p >= end)
			abort();
		p++;
	}
	if (p >= end || *p != ']')
		abort();
	return p + 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct json *j;
	static struct conf *c;
	const struct event *e;
	const char *why, *ex, *p, *end;
	struct strbuf b = { 0 }, m = { 0 };
	int spaces = 0;

	if (j == NULL) {
		char *ov[] = { "Output.Syslog=udp://127.0.0.1:1",
			"Stream.Namespace=n\\\"]" };

		log_init(-1);
		j = json_new();
		c = conf_load("/dev/null", 1, ov, 2);
	}
	json_begin(j);
	json_feed(j, data, size);
	if ((e = json_end(j, &why, &ex)) == NULL)
		return 0;
	event_message(e, &m);
	syslog_format(c, e, event_priority(c, e), m.buf ? m.buf : "", m.len,
	    &b);
	/* <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG */
	p = b.buf;
	end = b.buf + b.len;
	if (p == NULL || *p != '<')
		abort();
	while (p < end && spaces < 6)
		if (*p++ == ' ')
			spaces++;
	p = check_sd(p, end);
	if (p >= end || *p != ' ' ||
	    (size_t)(end - p - 1) != m.len || memcmp(p + 1, m.buf, m.len))
		abort();
	free(strbuf_finish(&b));
	free(strbuf_finish(&m));
	return 0;
}
