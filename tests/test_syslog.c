/*
 * Unit tests of the syslog record formats (daemon/sink_syslog.c): RFC 5424
 * (PRI, header, structured data with its escaping, data.* parameters,
 * octet counting over TCP) and RFC 3164 for /dev/log, every record valid
 * UTF-8, and records cut to a datagram still well-formed: MSG first, then
 * values between characters and escapes, the element closed.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcevents.h"
#include "lib/tap.h"
#include "lib/testconf.h"
#include "lib/testevent.h"

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
}

/* An event's data members as data.NAME parameters. */
static void
test_data(void)
{
	struct conf *c = conf_from_text("[Output]\nStdout=yes\n"
					"Syslog=udp://127.0.0.1:514\n");
	struct strbuf b = { 0 };
	char *s;

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

/* The record of an event with hostile bytes and escapes everywhere. */
static void
test_utf8(void)
{
	struct conf *c = conf_from_text("[Stream]\nNamespace=n\n"
					"[Output]\nStdout=yes\n"
					"Syslog=udp://127.0.0.1:514\n");
	struct strbuf b = { 0 };

	syslog_format(c, event_of(HOSTILE), 4, "m", 1, &b);
	ok(valid_utf8(b.buf, b.len), "the RFC 5424 record is valid UTF-8");
	free(strbuf_finish(&b));
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
 * Is len a place to cut raw's written form (controls escaped as in
 * MESSAGE, then SD-escaped) without splitting a UTF-8 sequence or an
 * escape?
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

int
main(void)
{
	log_init(0);
	J = json_new();
	test_formats();
	test_data();
	test_utf8();
	test_truncation();
	json_free(J);
	return done();
}
