/*
 * Unit tests of the websocket upgrade (daemon/handshake.c): the RFC 6455
 * key and accept computation, the request target and request, and the
 * reply parser's edge cases.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dcevents.h"
#include "lib/tap.h"
#include "lib/testconf.h"

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

int
main(void)
{
	log_init(0);
	test_accept();
	test_target();
	test_request();
	test_parse();
	return done();
}
