/*
 * The HTTP/1.1 client requests of the REST lookups (enrich.c): the GET
 * request, built in secret memory as the upgrade is (it carries the
 * credential), and a strict, bounded parser for the whole response: the
 * status line and header lines by http_reply_parse() (handshake.c, at
 * most HS_MAX_HEADER bytes), the body by Content-Length, by chunked
 * transfer-coding or, without either, up to the end of the connection;
 * at most a given number of body bytes.  It also says whether the
 * connection may carry the next request (HTTP/1.1 without "Connection:
 * close", HTTP/1.0 only with "Connection: keep-alive") and the
 * Retry-After delay.  Pure functions, so that every case is unit-tested
 * and fuzzed without sockets.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dcevents.h"

/* What the header lines say about the body and the connection. */
struct http_head {
	struct http_response *r;
	int close, keep_alive, lengths;
};

static const char *
head_line(void *arg, struct hs_reply *hr, const char *line, size_t nlen,
    const char *v, size_t vlen)
{
	struct http_head *h = arg;
	struct http_response *r = h->r;

#define IS(name) (nlen == strlen(name) && strncasecmp(line, name, nlen) == 0)
	if (IS("Content-Length")) {
		uint64_t n = 0;

		if (vlen == 0 || vlen > 12)
			return "invalid Content-Length";
		for (size_t i = 0; i < vlen; i++) {
			if (!isdigit((unsigned char)v[i]))
				return "invalid Content-Length";
			n = n * 10 + (uint64_t)(v[i] - '0');
		}
		if (h->lengths++ && (int64_t)n != r->length)
			return "conflicting Content-Length";
		r->length = (int64_t)n;
	} else if (IS("Transfer-Encoding")) {
		/* Only chunked (last) is understood. */
		if (!http_has_token(v, vlen, "chunked"))
			return "unsupported Transfer-Encoding";
		r->chunked = 1;
	} else if (IS("Connection")) {
		h->close |= http_has_token(v, vlen, "close");
		h->keep_alive |= http_has_token(v, vlen, "keep-alive");
	} else if (IS("Retry-After")) {
		r->retry_after_ms = http_retry_after(v, vlen);
	}
#undef IS
	(void)hr;
	return NULL;
}

static int
fail(struct http_response *r, const char *why)
{
	r->error = why;
	return HS_FAILED;
}

/*
 * The chunked body at p[0..len): HS_INCOMPLETE, HS_OK with r->body_len
 * and r->total (from buf), HS_FAILED.  Decoded bytes go to body (room
 * for max) when it is not NULL.
 */
static int
chunked(const char *buf, const char *p, size_t len, size_t max, char *body,
    struct http_response *r)
{
	const char *end = p + len, *eol;
	size_t out = 0;

	for (;;) {
		uint64_t n = 0;
		const char *q = p;
		int digits = 0;

		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return (size_t)(end - p) > 256
			    ? fail(r, "invalid chunk size line")
			    : HS_INCOMPLETE;
		for (; q < eol && isxdigit((unsigned char)*q); q++) {
			if (++digits > 8)
				return fail(r, "chunk too large");
			n = n * 16 +
			    (uint64_t)(isdigit((unsigned char)*q)
				    ? *q - '0'
				    : (tolower((unsigned char)*q) - 'a' + 10));
		}
		if (digits == 0 || (q < eol && *q != ';' && *q != ' ' &&
					       *q != '\t' && *q != '\r'))
			return fail(r, "invalid chunk size line");
		p = eol + 1;
		if (n == 0)
			break;
		if (n > max - out)
			return fail(r, "body too large");
		if ((size_t)(end - p) < n + 1)
			return HS_INCOMPLETE;
		if (body != NULL)
			memcpy(body + out, p, n);
		out += n;
		p += n;
		if (*p == '\r') {
			if (end - p < 2)
				return HS_INCOMPLETE;
			p++;
		}
		if (*p != '\n')
			return fail(r, "chunk not followed by CRLF");
		p++;
	}
	/* Trailer lines, up to the empty line: HS_MAX_HEADER bytes. */
	for (const char *t = p;; p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return (size_t)(end - t) > HS_MAX_HEADER
			    ? fail(r, "trailer too large")
			    : HS_INCOMPLETE;
		if (eol == p || (eol == p + 1 && *p == '\r'))
			break;
		if ((size_t)(eol - t) > HS_MAX_HEADER)
			return fail(r, "trailer too large");
	}
	r->body_len = out;
	r->total = (size_t)(eol + 1 - buf);
	return HS_OK;
}

/*
 * Parse the response to a GET in buf[0..len), eof when the connection
 * has ended after it: HS_INCOMPLETE until it is whole; HS_OK with
 * r->status, r->body_len (copied to body, which has room for max bytes,
 * when body is not NULL; else at buf + r->body_at unless chunked),
 * r->total bytes used, r->keep_alive, r->retry_after_ms; HS_FAILED with
 * r->error (a header over HS_MAX_HEADER bytes, a body over max, a
 * malformed reply, or an end before the whole response).
 */
int
http_response_parse(const char *buf, size_t len, int eof, size_t max,
    char *body, struct http_response *r)
{
	struct http_head h = { .r = r };
	struct hs_reply hr;
	size_t rest;
	int rc;

	memset(r, 0, sizeof *r);
	r->length = -1;
	rc = http_reply_parse(buf, len, &hr, head_line, &h);
	if (rc == HS_FAILED)
		return fail(r, hr.error);
	if (rc == HS_INCOMPLETE)
		return eof ? fail(r, "connection closed before the reply")
			   : HS_INCOMPLETE;
	r->status = hr.status;
	r->body_at = hr.header_len;
	rest = len - hr.header_len;
	/* HTTP/1.1 unless it says otherwise; HTTP/1.0 must ask. */
	r->keep_alive = buf[7] == '0' ? h.keep_alive && !h.close : !h.close;
	if (r->status < 200)
		return fail(r, r->status >= 100 ? "unexpected 1xx reply"
						: "invalid status");
	if (r->status == 204 || r->status == 304) {
		r->total = hr.header_len;
		return HS_OK;
	}
	if (r->chunked) {
		if ((rc = chunked(buf, buf + hr.header_len, rest, max, body,
			 r)) == HS_INCOMPLETE &&
		    eof)
			return fail(r, "connection closed within the body");
		return rc;
	}
	if (r->length >= 0) {
		if ((uint64_t)r->length > max)
			return fail(r, "body too large");
		if (rest < (size_t)r->length)
			return eof ? fail(r, "connection closed within the body")
				   : HS_INCOMPLETE;
		r->body_len = (size_t)r->length;
	} else {
		/* Up to the end of the connection. */
		r->keep_alive = 0;
		if (rest > max)
			return fail(r, "body too large");
		if (!eof)
			return HS_INCOMPLETE;
		r->body_len = rest;
	}
	if (body != NULL)
		memcpy(body, buf + hr.header_len, r->body_len);
	r->total = hr.header_len + r->body_len;
	return HS_OK;
}

/*
 * The GET request for target with the header lines head (each ending in
 * CRLF) and, when auth is not NULL, "Authorization: auth": in secret
 * memory (free it with secret_free(), or secret_ref_done() once sent),
 * *len bytes; NULL when out of memory.
 */
char *
http_get_request(
    const char *target, const char *head, const char *auth, size_t *len)
{
	static const char a[] = "Authorization: ";
	struct strbuf b = { 0 };
	char *first, *req, *p;
	size_t flen, hlen = strlen(head), alen = 0;

	strbuf_printf(&b, "GET %s HTTP/1.1\r\n", target);
	if ((first = strbuf_finish(&b)) == NULL)
		return NULL;
	flen = strlen(first);
	if (auth != NULL)
		alen = sizeof a - 1 + strlen(auth) + 2;
	if ((req = secret_alloc(flen + hlen + alen + 3)) == NULL) {
		free(first);
		return NULL;
	}
	p = req;
	memcpy(p, first, flen);
	p += flen;
	free(first);
	memcpy(p, head, hlen);
	p += hlen;
	if (auth != NULL) {
		memcpy(p, a, sizeof a - 1);
		p += sizeof a - 1;
		memcpy(p, auth, strlen(auth));
		p += strlen(auth);
		memcpy(p, "\r\n", 2);
		p += 2;
		secret_scrub(); /* memcpy went through registers */
	}
	memcpy(p, "\r\n", 3);
	*len = (size_t)(p + 2 - req);
	return req;
}
