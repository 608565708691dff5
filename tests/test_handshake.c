/*
 * Unit tests of the pure pieces of the stream client: the RFC 6455 accept
 * computation, the request target and request, the reply parser's edge
 * cases, the backoff schedule and the escaping rule.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dcevents.h"
#include "tap.h"
#include "testconf.h"

static void
test_accept(void)
{
	char out[HS_ACCEPT_LEN + 1], k1[HS_KEY_LEN + 1], k2[HS_KEY_LEN + 1];
	unsigned char raw[32];

	handshake_accept("dGhlIHNhbXBsZSBub25jZQ==", out);
	is_str(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC 6455 accept vector");
	ok(handshake_key(k1) == 0 && handshake_key(k2) == 0, "keys made");
	is_int(strlen(k1), 24, "a key is 24 base64 characters");
	is_int(EVP_DecodeBlock(raw, (unsigned char *)k1, 24), 18,
	    "a key decodes (16 bytes and padding)");
	ok(strcmp(k1, k2) != 0, "two keys differ");
}

static void
test_target(void)
{
	struct conf *c;
	char *t;

	c = conf_from_text("[Stream]\n");
	t = handshake_target(c);
	is_str(t, "/api/audit/v1/events/", "default target");
	free(t);
	conf_free(c);

	c = conf_from_text("[Stream]\nURL=wss://h/base\nNamespace=my org\n");
	t = handshake_target(c);
	is_str(t, "/base/api/audit/v1/my%20org/events/",
	    "base path joined with a slash, namespace encoded");
	free(t);
	conf_free(c);

	c = conf_from_text("[Stream]\nURL=wss://h/base/\nNamespace=acme\n"
			   "Type=container,service\n"
			   "Object=/api/app/v1/acme/container/1/\n"
			   "Parent=/api/app/v1/acme/stack/2/\n");
	t = handshake_target(c);
	is_str(t,
	    "/base/api/audit/v1/acme/events/?type=container%2Cservice"
	    "&object=%2Fapi%2Fapp%2Fv1%2Facme%2Fcontainer%2F1%2F"
	    "&parent=%2Fapi%2Fapp%2Fv1%2Facme%2Fstack%2F2%2F",
	    "filters as encoded query parameters");
	free(t);
	conf_free(c);

	c = conf_from_text("[Stream]\nParent=a&b=c?d#e f~g\n");
	t = handshake_target(c);
	is_str(t, "/api/audit/v1/events/?parent=a%26b%3Dc%3Fd%23e%20f~g",
	    "reserved characters encoded, unreserved kept");
	free(t);
	conf_free(c);
}

static void
test_request(void)
{
	struct conf *c;
	size_t len;
	char *r;

	c = conf_from_text("[Stream]\nURL=wss://events.example/\nUser=alice\n"
			   "APIKey=open sesame\n");
	r = handshake_request(c, "dGhlIHNhbXBsZSBub25jZQ==", &len);
	ok(r && strncmp(r, "GET /api/audit/v1/events/ HTTP/1.1\r\n", 36) == 0,
	    "request line");
	ok(r && strstr(r, "\r\nHost: events.example\r\n"),
	    "Host without the default port");
	ok(r && strstr(r, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"),
	    "Upgrade and Connection");
	ok(r &&
		strstr(
		    r, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
	    "Sec-WebSocket-Key");
	ok(r && strstr(r, "\r\nSec-WebSocket-Version: 13\r\n"), "version 13");
	ok(r && strstr(r, "\r\nUser-Agent: dcevents/" PACKAGE_VERSION "\r\n"),
	    "User-Agent");
	/* base64("alice:open sesame") */
	ok(r &&
		strstr(
		    r, "\r\nAuthorization: Basic YWxpY2U6b3BlbiBzZXNhbWU=\r\n"),
	    "Basic credentials");
	ok(r && len == strlen(r) && len > 4 &&
		strcmp(r + len - 4, "\r\n\r\n") == 0,
	    "ends with an empty line, length right");
	secret_free(r);
	conf_free(c);

	c = conf_from_text("[Stream]\nURL=wss://[::1]:8443/\n");
	r = handshake_request(c, "k", &len);
	ok(r && strstr(r, "\r\nHost: [::1]:8443\r\n"),
	    "Host: IPv6 in brackets, port");
	ok(r && !strstr(r, "Authorization"), "no credential, no Authorization");
	secret_free(r);
	conf_free(c);

	setenv("DOCKERCLOUD_AUTH", "TutumAccessKey abc123", 1);
	c = conf_from_text("[Stream]\nURL=ws://h:80/\nAllowInsecure=yes\n");
	unsetenv("DOCKERCLOUD_AUTH");
	r = handshake_request(c, "k", &len);
	ok(r && strstr(r, "\r\nAuthorization: TutumAccessKey abc123\r\n"),
	    "DOCKERCLOUD_AUTH verbatim");
	ok(r && strstr(r, "\r\nHost: h\r\n"), "ws default port 80 omitted");
	secret_free(r);
	conf_free(c);
}

#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define OK101                                                                  \
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"           \
	"Connection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n"

static int
parse(const char *s, struct hs_reply *r)
{
	return handshake_parse(s, strlen(s), ACCEPT, r);
}

static void
fails(const char *s, const char *why, const char *what)
{
	struct hs_reply r;
	int rc = parse(s, &r);

	ok(rc == HS_FAILED && r.error && strcmp(r.error, why) == 0,
	    "%s: \"%s\"", what, why);
	if (rc != HS_FAILED || r.error == NULL || strcmp(r.error, why) != 0)
		printf("#   rc %d error %s\n", rc, r.error ? r.error : "-");
}

static void
test_parse(void)
{
	struct hs_reply r;
	char big[HS_MAX_HEADER + 64];
	const char *s;
	int rc = 0;

	ok(parse(OK101 "\r\n", &r) == HS_OK && r.status == 101 &&
		r.header_len == strlen(OK101 "\r\n"),
	    "a valid 101");
	s = OK101 "\r\n\x81\x02hi";
	ok(parse(s, &r) == HS_OK && r.header_len == strlen(s) - 4,
	    "bytes after the header are left for the websocket");
	ok(parse("HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n"
		 "CONNECTION: keep-alive, upgrade\r\n"
		 "sec-websocket-accept: " ACCEPT "\r\nServer: x\r\n\r\n",
	       &r) == HS_OK,
	    "lower/upper-case names, case-insensitive values, token list");
	ok(parse("HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n"
		 "Connection: Upgrade\nSec-WebSocket-Accept: " ACCEPT "\n\n",
	       &r) == HS_OK,
	    "bare LF line ends");
	ok(parse("HTTP/1.1 101\r\nUpgrade:websocket\r\nConnection:Upgrade\r\n"
		 "Sec-WebSocket-Accept:" ACCEPT "  \r\n\r\n",
	       &r) == HS_OK,
	    "no reason phrase, no whitespace after colons");
	ok(parse("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
		 "Connection: close\r\nUpgrade: websocket\r\n"
		 "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
	       &r) == HS_OK,
	    "a repeated Connection header is combined");

	/* Incomplete until the empty line, fed one byte at a time. */
	s = OK101 "\r\n";
	for (size_t n = 0; n <= strlen(s); n++) {
		rc = handshake_parse(s, n, ACCEPT, &r);
		if (n < strlen(s) && rc != HS_INCOMPLETE)
			break;
	}
	ok(rc == HS_OK, "incomplete at every prefix, OK when whole");
	ok(parse(OK101, &r) == HS_INCOMPLETE, "no empty line yet: incomplete");

	fails(OK101 "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
	    "Sec-WebSocket-Accept repeated", "duplicate accept");
	fails(OK101 "Upgrade: websocket\r\n\r\n", "Upgrade is not websocket",
	    "duplicate Upgrade");
	fails("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	      "Connection: Upgrade\r\nSec-WebSocket-Accept: "
	      "AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
	    "wrong Sec-WebSocket-Accept", "wrong accept");
	fails("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	      "Connection: Upgrade\r\n\r\n",
	    "Sec-WebSocket-Accept missing", "missing accept");
	fails("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
	      "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
	    "Upgrade header missing", "missing Upgrade");
	fails("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	      "Connection: keep-alive\r\nSec-WebSocket-Accept: " ACCEPT
	      "\r\n\r\n",
	    "Connection: Upgrade missing", "Connection without upgrade");
	fails("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
	      "Connection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
	    "Upgrade is not websocket", "another protocol");
	fails(OK101 "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
	    "server chose an extension we did not offer", "extension");
	fails(OK101 "Sec-WebSocket-Protocol: chat\r\n\r\n",
	    "server chose a subprotocol we did not offer", "subprotocol");
	fails(
	    OK101 " folded\r\n\r\n", "folded header line in reply", "folding");
	fails(OK101 "no colon here\r\n\r\n", "malformed header line in reply",
	    "header without colon");
	fails("SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP reply",
	    "garbage fails before any empty line");
	fails("HTTP/2 101\r\n\r\n", "not an HTTP reply", "HTTP/2 status line");
	fails("HTTP/1.1 1O1 Switching\r\n\r\n", "not an HTTP reply",
	    "non-numeric status");

	ok(parse("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
	       &r) == HS_FAILED &&
		r.status == 401 && r.retry_after_ms == 0,
	    "401 is a failure with its status");
	ok(parse("HTTP/1.1 429 Too Many Requests\r\nretry-after: 120\r\n\r\n",
	       &r) == HS_FAILED &&
		r.status == 429 && r.retry_after_ms == 120000,
	    "429 with Retry-After in seconds");
	ok(parse("HTTP/1.1 429 Too Many\r\nRetry-After: Wed, 21 Oct 2015 "
		 "07:28:00 GMT\r\n\r\n",
	       &r) == HS_FAILED &&
		r.retry_after_ms == 0,
	    "Retry-After as a date is ignored");
	ok(parse("HTTP/1.0 503 Service Unavailable\r\n\r\n", &r) == HS_FAILED &&
		r.status == 503,
	    "503");

	memset(big, 'a', sizeof big);
	memcpy(big, "HTTP/1.1 101 OK\r\nX: ", 20);
	ok(handshake_parse(big, HS_MAX_HEADER, ACCEPT, &r) == HS_INCOMPLETE,
	    "16 KiB without an end: still incomplete");
	ok(handshake_parse(big, HS_MAX_HEADER + 1, ACCEPT, &r) == HS_FAILED &&
		strcmp(r.error, "reply header larger than 16 KiB") == 0,
	    "one byte more: overlong");
	memcpy(big + HS_MAX_HEADER + 10, "\r\n\r\n", 4);
	ok(handshake_parse(big, HS_MAX_HEADER + 14, ACCEPT, &r) == HS_FAILED,
	    "a complete header over 16 KiB is refused");
}

static void
test_backoff(void)
{
	int in_bounds = 1, hist[10] = { 0 };
	uint64_t d, sum = 0;
	const int n = 20000;

	is_int(backoff_delay(0, 1000, 120000, 0xffffffffu), 1000,
	    "first retry waits the minimum");
	for (unsigned a = 1; a < 12; a++) {
		uint64_t cap = 1000ULL << a;

		if (cap > 120000)
			cap = 120000;
		if (backoff_delay(a, 1000, 120000, 0) != 1000 ||
		    backoff_delay(a, 1000, 120000, 0xffffffffu) != cap)
			in_bounds = 0;
	}
	ok(in_bounds, "attempt n spans [min, min(max, min * 2^n)]");
	is_int(backoff_delay(1000, 1000, 120000, 0xffffffffu), 120000,
	    "capped at the maximum, no overflow after many attempts");
	is_int(backoff_delay(7, 5000, 5000, 12345), 5000, "min == max");
	is_int(backoff_delay(3, 5000, 1000, 12345), 5000, "max < min: min");
	is_int(backoff_after_connection(7, 59999, 60000), 7,
	    "a connection shorter than BackoffResetSec keeps the backoff");
	is_int(backoff_after_connection(7, 60000, 60000), 0,
	    "BackoffResetSec connected resets it");

	srandom(42);
	for (int i = 0; i < n; i++) {
		uint32_t rnd = ((uint32_t)random() << 1) ^ (uint32_t)random();

		d = backoff_delay(20, 1000, 11000, rnd);
		if (d < 1000 || d > 11000)
			in_bounds = 0;
		sum += d;
		hist[d == 11000 ? 9 : (d - 1000) / 1000]++;
	}
	ok(in_bounds, "random delays stay in bounds");
	ok(sum / n > 5800 && sum / n < 6200, "mean near the middle (%llu ms)",
	    (unsigned long long)(sum / n));
	in_bounds = 1;
	for (int i = 0; i < 10; i++)
		if (hist[i] < n / 10 * 8 / 10 || hist[i] > n / 10 * 12 / 10)
			in_bounds = 0;
	ok(in_bounds, "spread evenly over ten buckets (full jitter)");
}

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

int
main(void)
{
	log_init(0);
	test_accept();
	test_target();
	test_request();
	test_parse();
	test_backoff();
	test_escape();
	test_utf8();
	return done();
}
