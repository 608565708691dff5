/*
 * Unit tests of the REST lookups' HTTP/1.1 client (daemon/http.c): the
 * GET request in secret memory, and the response parser: Content-Length,
 * chunked bodies (extensions, trailers, every prefix incomplete), bodies
 * up to the end of the connection, keep-alive and its refusals, the
 * bounds, Retry-After, malformed replies.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dcevents.h"
#include "lib/tap.h"

#define MAX 64

/* Parse s (eof as given) into r and body; the return code. */
static int
parse(const char *s, int eof, struct http_response *r, char *body)
{
	return http_response_parse(s, strlen(s), eof, MAX, body, r);
}

/* Every strict prefix of s is incomplete, the whole is HS_OK. */
static int
prefixes_incomplete(const char *s)
{
	struct http_response r;
	char body[MAX];

	for (size_t i = 0; i < strlen(s); i++)
		if (http_response_parse(s, i, 0, MAX, body, &r) !=
		    HS_INCOMPLETE)
			return 0;
	return parse(s, 0, &r, body) == HS_OK;
}

static void
test_request(void)
{
	size_t len;
	char *req = http_get_request("/api/app/v1/container/c1/",
	    "Host: h:8443\r\nAccept: application/json\r\n", "Basic dXNlcjprZXk=",
	    &len);

	is_str(req,
	    "GET /api/app/v1/container/c1/ HTTP/1.1\r\nHost: h:8443\r\n"
	    "Accept: application/json\r\n"
	    "Authorization: Basic dXNlcjprZXk=\r\n\r\n",
	    "request: line, header lines, Authorization, empty line");
	is_int(len, strlen(req), "request: its length");
	secret_free(req);
	req = http_get_request("/x", "Host: h\r\n", NULL, &len);
	is_str(req, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n",
	    "request: no credential, no Authorization");
	secret_free(req);
}

static void
test_length(void)
{
	const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
	struct http_response r;
	char body[MAX], two[200];

	is_int(parse(s, 0, &r, body), HS_OK, "length: whole");
	is_int(r.status, 200, "length: status");
	ok(r.body_len == 7 && memcmp(body, "{\"a\":1}", 7) == 0,
	    "length: the body");
	ok(r.total == strlen(s), "length: all bytes used");
	ok(r.keep_alive, "length: HTTP/1.1 keeps the connection");
	ok(prefixes_incomplete(s), "length: every prefix incomplete");
	snprintf(two, sizeof two, "%sHTTP/1.1 404 X\r\n", s);
	ok(parse(two, 0, &r, body) == HS_OK && r.total == strlen(s),
	    "length: the next reply's bytes are left");
	ok(parse("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a", 1, &r,
	       body) == HS_FAILED,
	    "length: closed within the body fails");
	ok(parse("HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n", 0, &r,
	       body) == HS_FAILED &&
		strcmp(r.error, "body too large") == 0,
	    "length: over the bound at once");
	ok(parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
		 "Content-Length: 2\r\n\r\nab",
	       0, &r, body) == HS_FAILED,
	    "length: conflicting lengths fail");
	ok(parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, &r,
	       body) == HS_FAILED,
	    "length: a negative length fails");
	ok(parse("HTTP/1.1 204 No Content\r\n\r\n", 0, &r, body) == HS_OK &&
		r.body_len == 0 && r.keep_alive,
	    "length: 204 has no body");
}

static void
test_chunked(void)
{
	const char *s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			"4;ext=1\r\n{\"a\"\r\nA\r\n:1234567}\n\r\n0\r\n"
			"X-Trailer: t\r\n\r\n";
	struct http_response r;
	char body[MAX], big[400];

	is_int(parse(s, 0, &r, body), HS_OK, "chunked: whole");
	ok(r.body_len == 14 && memcmp(body, "{\"a\":1234567}\n", 14) == 0,
	    "chunked: chunks joined, extension and trailer skipped");
	ok(r.total == strlen(s) && r.chunked, "chunked: all bytes used");
	ok(prefixes_incomplete(s), "chunked: every prefix incomplete");
	ok(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "2\n{}\n0\n\n",
	       0, &r, body) == HS_OK &&
		r.body_len == 2,
	    "chunked: bare LF line ends");
	ok(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "2\r\n{}\r\n",
	       1, &r, body) == HS_FAILED,
	    "chunked: closed before the last chunk fails");
	ok(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "x\r\n",
	       0, &r, body) == HS_FAILED,
	    "chunked: a size that is not hex fails");
	ok(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "2\r\n{}xx0\r\n\r\n",
	       0, &r, body) == HS_FAILED,
	    "chunked: data not followed by CRLF fails");
	ok(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "123456789\r\n",
	       0, &r, body) == HS_FAILED,
	    "chunked: a size over 8 digits fails");
	snprintf(big, sizeof big,
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "20\r\n%032d\r\n20\r\n%032d\r\n1\r\n", 0, 0);
	ok(parse(big, 0, &r, body) == HS_FAILED &&
		strcmp(r.error, "body too large") == 0,
	    "chunked: over the bound (decoded) fails");
	ok(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, &r,
	       body) == HS_FAILED,
	    "chunked: another coding fails");
}

static void
test_connection(void)
{
	struct http_response r;
	char body[MAX];

	ok(parse("HTTP/1.1 200 OK\r\nConnection: close\r\n"
		 "Content-Length: 0\r\n\r\n",
	       0, &r, body) == HS_OK &&
		!r.keep_alive,
	    "keep-alive: Connection: close");
	ok(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, &r,
	       body) == HS_OK &&
		!r.keep_alive,
	    "keep-alive: HTTP/1.0 closes");
	ok(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
		 "Content-Length: 0\r\n\r\n",
	       0, &r, body) == HS_OK &&
		r.keep_alive,
	    "keep-alive: HTTP/1.0 with Connection: keep-alive");
	is_int(parse("HTTP/1.0 200 OK\r\n\r\n{}", 0, &r, body),
	    HS_INCOMPLETE, "until close: incomplete while open");
	ok(parse("HTTP/1.0 200 OK\r\n\r\n{}", 1, &r, body) == HS_OK &&
		r.body_len == 2 && !r.keep_alive && memcmp(body, "{}", 2) == 0,
	    "until close: the body at the end");
	ok(parse("HTTP/1.1 429 Too Many\r\nRetry-After: 17\r\n"
		 "Content-Length: 0\r\n\r\n",
	       0, &r, body) == HS_OK &&
		r.status == 429 && r.retry_after_ms == 17000,
	    "Retry-After in seconds");
	ok(parse("HTTP/1.1 429 X\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT"
		 "\r\nContent-Length: 0\r\n\r\n",
	       0, &r, body) == HS_OK &&
		r.retry_after_ms == 0,
	    "Retry-After as a date is ignored");
	ok(parse("garbage\r\n\r\n", 0, &r, body) == HS_FAILED && r.error,
	    "garbage fails with a reason");
	ok(parse("", 1, &r, body) == HS_FAILED,
	    "closed before any reply fails");
	ok(parse("HTTP/1.1 100 Continue\r\n\r\n", 0, &r, body) == HS_FAILED,
	    "1xx fails (never asked for)");
	ok(parse("HTTP/1.1 044 X\r\n\r\n", 0, &r, body) == HS_FAILED,
	    "a status under 100 fails");
}

static void
test_header_bound(void)
{
	size_t n = HS_MAX_HEADER + 100;
	char *s = malloc(n + 1);
	struct http_response r;

	memset(s, 'a', n);
	memcpy(s, "HTTP/1.1 200 OK\r\nX: ", 20);
	s[n] = '\0';
	ok(http_response_parse(s, n, 0, MAX, NULL, &r) == HS_FAILED,
	    "a header over 16 KiB fails");
	free(s);
}

int
main(void)
{
	test_request();
	test_length();
	test_chunked();
	test_connection();
	test_header_bound();
	return done();
}
