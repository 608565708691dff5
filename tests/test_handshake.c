/*
 * Unit tests of the pure pieces of the stream client: the RFC 6455 accept
 * computation, the request target and request, the reply parser's edge
 * cases, the backoff schedule and the reconnect policy, the escaping rule,
 * and the TLS client setup (tls.c) with real handshakes in memory against
 * a certificate made here.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

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

/* The policy conn_retry() is given: which delay after which ending. */
static void
test_backoff_policy(void)
{
	struct conf *c = conf_from_text("[Stream]\nBackoffMinSec=1\n"
					"BackoffMaxSec=120\nBackoffResetSec=60\n"
					"AuthBackoffSec=300\n");
	struct backoff b = { 0 };
	struct conn_end e = { .conf = c, .why = "x" };

	e.kind = CONN_FAILED;
	is_int(backoff_next(&b, &e, 0xffffffffu), 1000,
	    "a first failure waits the minimum");
	is_int(backoff_next(&b, &e, 0xffffffffu), 2000, "then twice that");
	is_int(b.attempt, 2, "failures count");
	e.kind = CONN_AUTH;
	e.http_status = 401;
	e.retry_after_ms = 900000;
	is_int(backoff_next(&b, &e, 0), 300000,
	    "401 waits AuthBackoffSec (Retry-After only counts for 429)");
	e.http_status = 429;
	is_int(backoff_next(&b, &e, 0), 900000,
	    "429 waits a longer Retry-After");
	e.retry_after_ms = 1000;
	is_int(backoff_next(&b, &e, 0), 300000,
	    "429 waits AuthBackoffSec over a shorter Retry-After");
	is_int(b.attempt, 2, "authentication failures do not count");
	e.kind = CONN_LOST;
	e.up_ms = 59999;
	is_int(backoff_next(&b, &e, 0xffffffffu), 4000,
	    "a short connection keeps the backoff");
	e.up_ms = 60000;
	is_int(backoff_next(&b, &e, 0xffffffffu), 1000,
	    "BackoffResetSec connected resets it");
	e.reconnect = 1;
	is_int(backoff_next(&b, &e, 0xffffffffu), 0,
	    "closed for new settings: reconnect at once");
	is_int(b.attempt, 0, "without counting a failure");
	conf_free(c);
}

/* A self-signed certificate for right.example and 127.0.0.1, in PEM. */
static int
make_cert(EVP_PKEY **keyp, X509 **certp, const char *pem)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	FILE *f;

	if (key == NULL || x == NULL || name == NULL)
		return -1;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(
	    name, "CN", MBSTRING_ASC, (unsigned char *)"right.example", -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, name);
	X509_NAME_free(name);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
	    "DNS:right.example,IP:127.0.0.1");
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1)
		return -1;
	X509_EXTENSION_free(ext);
	if (X509_sign(x, key, EVP_sha256()) == 0 || (f = fopen(pem, "w")) == NULL)
		return -1;
	PEM_write_X509(f, x);
	fclose(f);
	*keyp = key;
	*certp = x;
	return 0;
}

/*
 * A handshake in memory between a client set up by tls.c for host and a
 * server with the certificate: 1 if it succeeded; *verify is the client's
 * verification result.
 */
static int
handshake_as(SSL_CTX *cctx, SSL_CTX *sctx, const char *host, long *verify,
    char *why, size_t n)
{
	SSL *cl = SSL_new(cctx), *sv = SSL_new(sctx);
	BIO *cb, *sb;
	int done = 0, cdone = 0, sdone = 0;

	why[0] = '\0';
	if (cl == NULL || sv == NULL || BIO_new_bio_pair(&cb, 0, &sb, 0) != 1)
		return -1;
	SSL_set_bio(cl, cb, cb);
	SSL_set_bio(sv, sb, sb);
	SSL_set_connect_state(cl);
	SSL_set_accept_state(sv);
	if (tls_client_setup(cl, host, why, n) == -1) {
		SSL_free(cl);
		SSL_free(sv);
		return -1;
	}
	for (int i = 0; i < 50 && !(cdone && sdone); i++) {
		int r;

		if (!cdone) {
			r = SSL_do_handshake(cl);
			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(cl, r) != SSL_ERROR_WANT_READ)
				break;
		}
		if (!sdone) {
			r = SSL_do_handshake(sv);
			if (r == 1)
				sdone = 1;
			else if (SSL_get_error(sv, r) != SSL_ERROR_WANT_READ)
				break;
		}
	}
	done = cdone && sdone;
	*verify = SSL_get_verify_result(cl);
	if (!done)
		tls_verify_error(cl, why, n);
	ERR_clear_error();
	SSL_free(cl);
	SSL_free(sv);
	return done;
}

static void
test_tls(void)
{
	char pem[] = "/tmp/dcevents-test-cert.XXXXXX", err[200], why[200];
	char longname[300];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	SSL_CTX *cctx, *sctx;
	SSL *ssl;
	long v;
	int fd = mkstemp(pem);
	char *ip;

	if (fd == -1)
		exit(99);
	close(fd);
	ok(tls_client_ctx("/nonexistent/ca.pem", "", err, sizeof err) == NULL &&
		err[0] != '\0',
	    "a CA file that cannot be read: no context, and why (%s)", err);
	if (make_cert(&key, &cert, pem) == -1 ||
	    (cctx = tls_client_ctx(pem, "", err, sizeof err)) == NULL ||
	    (sctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate(sctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(sctx, key) != 1) {
		ok(0, "a test certificate and contexts");
		unlink(pem);
		return;
	}
	is_int(SSL_CTX_get_min_proto_version(cctx), TLS1_2_VERSION,
	    "the context needs TLS 1.2 or newer");
	is_int(SSL_CTX_get_verify_mode(cctx), SSL_VERIFY_PEER,
	    "the context verifies the peer");

	ssl = SSL_new(cctx);
	ok(tls_client_setup(ssl, "127.0.0.1", err, sizeof err) == 0,
	    "an IPv4 address is set up");
	ok(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) == NULL,
	    "an address is not sent as SNI");
	ip = X509_VERIFY_PARAM_get1_ip_asc(SSL_get0_param(ssl));
	is_str(ip != NULL ? ip : "(none)", "127.0.0.1",
	    "the address is checked against the certificate's");
	OPENSSL_free(ip);
	ok(X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0) == NULL,
	    "and no name is");
	SSL_free(ssl);
	ssl = SSL_new(cctx);
	ok(tls_client_setup(ssl, "::1", err, sizeof err) == 0 &&
		SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) == NULL,
	    "an IPv6 address: no SNI either");
	SSL_free(ssl);
	ssl = SSL_new(cctx);
	ok(tls_client_setup(ssl, "right.example", err, sizeof err) == 0,
	    "a name is set up");
	is_str(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name),
	    "right.example", "a name is sent as SNI");
	is_str(X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0),
	    "right.example", "and checked against the certificate");
	SSL_free(ssl);
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	ssl = SSL_new(cctx);
	ok(tls_client_setup(ssl, longname, err, sizeof err) == -1 && err[0],
	    "a name SNI cannot carry fails the setup (%s)", err);
	SSL_free(ssl);
	ssl = SSL_new(cctx);
	ok(tls_client_setup(ssl, "", err, sizeof err) == -1,
	    "an empty name fails (it would turn the name check off)");
	SSL_free(ssl);

	is_int(handshake_as(cctx, sctx, "right.example", &v, why, sizeof why),
	    1, "the right name: handshake done");
	is_int(v, X509_V_OK, "and verified");
	is_int(handshake_as(cctx, sctx, "wrong.example", &v, why, sizeof why),
	    0, "a name the certificate does not have: handshake refused");
	is_int(v, X509_V_ERR_HOSTNAME_MISMATCH, "for the name");
	is_str(why, "TLS certificate verification failed: hostname mismatch",
	    "said in words");
	is_int(handshake_as(cctx, sctx, "127.0.0.1", &v, why, sizeof why), 1,
	    "the right address: handshake done");
	is_int(handshake_as(cctx, sctx, "127.0.0.2", &v, why, sizeof why), 0,
	    "an address the certificate does not have: refused");
	is_int(v, X509_V_ERR_IP_ADDRESS_MISMATCH, "for the address");
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	X509_free(cert);
	EVP_PKEY_free(key);
	unlink(pem);
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
	test_backoff_policy();
	test_tls();
	test_escape();
	test_utf8();
	return done();
}
