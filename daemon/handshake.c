/*
 * The HTTP/1.1 upgrade of RFC 6455 section 4: the request line and
 * headers we send, and a strict, bounded parser for the reply, whose
 * generic part (status line, header lines, the bound) also reads a
 * proxy's answer to CONNECT (proxy.c) and the REST lookups' replies
 * (http.c); the Basic credential line both requests carry.  Pure functions, so that every case is unit-tested
 * without sockets.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "dcevents.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Append s percent-encoded (RFC 3986: unreserved characters kept). */
static int
url_encode(struct strbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || strchr("-._~", ch) != NULL) {
			if (strbuf_add(b, s, 1) == -1)
				return -1;
		} else {
			char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };

			if (strbuf_add(b, e, 3) == -1)
				return -1;
		}
	}
	return 0;
}

/*
 * The request target: the base path of URL, api/audit/v1/[NAMESPACE/]events/
 * and the type, object and parent filters as query parameters.
 */
char *
handshake_target(const struct conf *c)
{
	struct strbuf b = { 0 };
	const struct {
		const char *name, *value;
	} q[] = { { "type", c->type }, { "object", c->object },
		{ "parent", c->parent } };
	char sep = '?';
	size_t plen = strlen(c->path);

	strbuf_add(&b, c->path, plen);
	if (plen == 0 || c->path[plen - 1] != '/')
		strbuf_add(&b, "/", 1);
	strbuf_addstr(&b, "api/audit/v1/");
	if (*c->ns != '\0') {
		url_encode(&b, c->ns);
		strbuf_add(&b, "/", 1);
	}
	strbuf_addstr(&b, "events/");
	for (size_t i = 0; i < 3; i++) {
		if (*q[i].value == '\0')
			continue;
		strbuf_add(&b, &sep, 1);
		strbuf_addstr(&b, q[i].name);
		strbuf_add(&b, "=", 1);
		url_encode(&b, q[i].value);
		sep = '&';
	}
	return strbuf_finish(&b);
}

/* A fresh Sec-WebSocket-Key: 16 random bytes, base64 (24 characters). */
int
handshake_key(char out[HS_KEY_LEN + 1])
{
	unsigned char raw[16];

	if (RAND_bytes(raw, sizeof raw) != 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw);
	return 0;
}

/* The Sec-WebSocket-Accept a server must answer key with. */
void
handshake_accept(const char *key, char out[HS_ACCEPT_LEN + 1])
{
	unsigned char md[20];
	unsigned int mdlen = sizeof md;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, key, strlen(key)) != 1 ||
	    EVP_DigestUpdate(ctx, WS_GUID, strlen(WS_GUID)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		memset(md, 0, sizeof md); /* matches no real server */
	EVP_MD_CTX_free(ctx);
	EVP_EncodeBlock((unsigned char *)out, md, sizeof md);
}

/* Append n bytes at p; where they end. */
static char *
put(char *p, const void *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* The length of http_put_basic()'s header line. */
size_t
http_basic_len(const char *name, const char *user, const char *secret)
{
	size_t plen = strlen(user) + 1 + strlen(secret);

	return strlen(name) + 4 * ((plen + 2) / 3) + 2;
}

/*
 * Write the header line "NAME" base64(user:secret) CRLF at p (room for
 * http_basic_len()), going through secret memory only (memcpy and
 * base64, no stdio); where it ends, NULL when out of memory.  The caller
 * scrubs (secret_scrub()) once the whole request is built.
 */
char *
http_put_basic(char *p, const char *name, const char *user, const char *secret)
{
	size_t plen = strlen(user) + 1 + strlen(secret);
	char *plain = secret_alloc(plen);

	if (plain == NULL)
		return NULL;
	put(put(put(plain, user, strlen(user)), ":", 1), secret,
	    strlen(secret));
	p = put(p, name, strlen(name));
	p += EVP_EncodeBlock(
	    (unsigned char *)p, (unsigned char *)plain, (int)plen);
	secret_free(plain);
	return put(p, "\r\n", 2);
}

/*
 * The value of the Authorization header for c's credential ("Basic
 * base64(user:key)", or $DOCKERCLOUD_AUTH verbatim), in secret memory:
 * free it with secret_free().  NULL when c has no credential (or memory
 * ran out).  The credential goes from the secret memory of conf into it
 * by memcpy and base64 only: no stdio, no buffer that grows.
 */
char *
handshake_authorization(const struct conf *c)
{
	static const char basic[] = "Basic ";
	char *v, *end;

	if (c->secret == NULL)
		return NULL;
	if (c->cred_source == CRED_ENV_AUTH) {
		v = secret_dup(c->secret, strlen(c->secret));
		secret_scrub();
		return v;
	}
	if ((v = secret_alloc(http_basic_len(basic, c->user, c->secret) + 1)) ==
	    NULL)
		return NULL;
	if ((end = http_put_basic(v, basic, c->user, c->secret)) == NULL) {
		secret_free(v);
		return NULL;
	}
	end[-2] = '\0'; /* the value, without the line's CRLF */
	secret_scrub(); /* memcpy and base64 went through registers */
	return v;
}

/*
 * The whole upgrade request for target (NULL: handshake_target()), in
 * secret memory: the caller hands it on without copying it and frees it
 * with secret_free().
 */
char *
handshake_request_for(
    const struct conf *c, const char *target, const char *key, size_t *len)
{
	static const char auth[] = "Authorization: ";
	struct strbuf b = { 0 };
	char *own = NULL, *head, *req, *p, *value = NULL;
	const char *defport = c->secure ? "443" : "80";
	int v6 = strchr(c->host, ':') != NULL;
	size_t hlen, alen = 0;

	if (target == NULL && (target = own = handshake_target(c)) == NULL)
		return NULL;
	strbuf_printf(&b, "GET %s HTTP/1.1\r\nHost: %s%s%s", target,
	    v6 ? "[" : "", c->host, v6 ? "]" : "");
	if (strcmp(c->port, defport) != 0)
		strbuf_printf(&b, ":%s", c->port);
	strbuf_printf(&b,
	    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
	    "User-Agent: dcevents/%s\r\n",
	    key, PACKAGE_VERSION);
	free(own);
	if ((head = strbuf_finish(&b)) == NULL)
		return NULL;
	hlen = strlen(head);
	if (c->secret != NULL) {
		if ((value = handshake_authorization(c)) == NULL) {
			free(head);
			return NULL;
		}
		alen = sizeof auth - 1 + strlen(value) + 2;
	}
	if ((req = secret_alloc(hlen + alen + 2)) == NULL) {
		free(head);
		secret_free(value);
		return NULL;
	}
	p = put(req, head, hlen);
	free(head);
	if (value != NULL) {
		p = put(p, auth, sizeof auth - 1);
		p = put(p, value, strlen(value));
		p = put(p, "\r\n", 2);
		secret_free(value);
	}
	secret_scrub(); /* memcpy went through registers */
	p = put(p, "\r\n", 2);
	*p = '\0';
	*len = (size_t)(p - req);
	return req;
}

/* The upgrade request for the events stream of c. */
char *
handshake_request(const struct conf *c, const char *key, size_t *len)
{
	return handshake_request_for(c, NULL, key, len);
}

/* Does the comma-separated list v (length n) hold token tok? */
int
http_has_token(const char *v, size_t n, const char *tok)
{
	size_t tlen = strlen(tok);
	const char *end = v + n;

	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *e = comma ? comma : end;

		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - v) == tlen && strncasecmp(v, tok, tlen) == 0)
			return 1;
		v = comma ? comma + 1 : end;
	}
	return 0;
}

static int
hs_fail(struct hs_reply *r, const char *why)
{
	r->error = why;
	return HS_FAILED;
}

/* Delta-seconds of Retry-After in ms (the HTTP-date form is ignored). */
uint64_t
http_retry_after(const char *v, size_t n)
{
	uint64_t s = 0;

	if (n == 0 || n > 9)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)v[i]))
			return 0;
		s = s * 10 + (uint64_t)(v[i] - '0');
	}
	return s * 1000;
}

/*
 * The part of a reply every HTTP client here needs (the upgrade, the
 * proxy's answer to CONNECT): in buf[0..len), the header up to its empty
 * line, at most HS_MAX_HEADER bytes, the status line (r->status,
 * r->status_line) and each header line checked and handed to header(),
 * which returns NULL or why the reply is refused.  HS_INCOMPLETE until
 * the empty line has arrived, HS_OK when the header is whole and sound
 * (r->header_len bytes), HS_FAILED with r->error.  Lines end in CRLF or
 * a bare LF.
 */
int
http_reply_parse(const char *buf, size_t len, struct hs_reply *r,
    const char *(*header)(void *, struct hs_reply *, const char *name,
	size_t nlen, const char *v, size_t vlen),
    void *arg)
{
	const char *p, *end = NULL, *line, *eol, *why;

	memset(r, 0, sizeof *r);
	for (p = buf; p < buf + len; p++) {
		if (*p != '\n')
			continue;
		if (p + 1 < buf + len && p[1] == '\n') {
			end = p + 2;
			break;
		}
		if (p + 2 < buf + len && p[1] == '\r' && p[2] == '\n') {
			end = p + 3;
			break;
		}
	}
	if (end == NULL || (size_t)(end - buf) > HS_MAX_HEADER) {
		if (len > HS_MAX_HEADER)
			return hs_fail(r, "reply header larger than 16 KiB");
		/* Fail early on a reply that cannot be HTTP at all. */
		if (len >= 5 && strncmp(buf, "HTTP/", 5) != 0)
			return hs_fail(r, "not an HTTP reply");
		return HS_INCOMPLETE;
	}
	r->header_len = (size_t)(end - buf);

	/* Status line: HTTP/1.x SP 3DIGIT [SP reason] */
	eol = memchr(buf, '\n', r->header_len);
	if ((size_t)(eol - buf) < 12 || strncmp(buf, "HTTP/1.", 7) != 0 ||
	    !isdigit((unsigned char)buf[7]) || buf[8] != ' ' ||
	    !isdigit((unsigned char)buf[9]) ||
	    !isdigit((unsigned char)buf[10]) ||
	    !isdigit((unsigned char)buf[11]) ||
	    (buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n'))
		return hs_fail(r, "not an HTTP reply");
	r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + buf[11] - '0';
	r->status_line = buf;
	r->status_len = (size_t)(eol - buf) - (eol[-1] == '\r');

	for (line = eol + 1; line < end; line = eol + 1) {
		const char *colon, *v, *ve;
		size_t nlen;

		eol = memchr(line, '\n', (size_t)(end - line));
		ve = eol > line && eol[-1] == '\r' ? eol - 1 : eol;
		if (ve == line)
			break; /* the empty line */
		if (*line == ' ' || *line == '\t')
			return hs_fail(r, "folded header line in reply");
		if ((colon = memchr(line, ':', (size_t)(ve - line))) == NULL ||
		    colon == line)
			return hs_fail(r, "malformed header line in reply");
		nlen = (size_t)(colon - line);
		for (size_t i = 0; i < nlen; i++)
			if (!isgraph((unsigned char)line[i]))
				return hs_fail(
				    r, "malformed header name in reply");
		for (v = colon + 1; v < ve && (*v == ' ' || *v == '\t'); v++)
			;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (header != NULL &&
		    (why = header(arg, r, line, nlen, v, (size_t)(ve - v))) !=
			NULL)
			return hs_fail(r, why);
	}
	return HS_OK;
}

/* What handshake_parse() learns from the upgrade reply's header lines. */
struct hs_upgrade {
	const char *accept;
	int upgrade, connection, accepted;
};

static const char *
hs_header(void *arg, struct hs_reply *r, const char *line, size_t nlen,
    const char *v, size_t vlen)
{
	struct hs_upgrade *u = arg;

#define IS(name) (nlen == strlen(name) && strncasecmp(line, name, nlen) == 0)
	if (IS("Retry-After"))
		r->retry_after_ms = http_retry_after(v, vlen);
	if (r->status != 101)
		return NULL;
	if (IS("Upgrade")) {
		if (u->upgrade++ || vlen != 9 ||
		    strncasecmp(v, "websocket", 9) != 0)
			return "Upgrade is not websocket";
	} else if (IS("Connection")) {
		u->connection |= http_has_token(v, vlen, "upgrade");
	} else if (IS("Sec-WebSocket-Accept")) {
		if (u->accepted++)
			return "Sec-WebSocket-Accept repeated";
		if (vlen != strlen(u->accept) ||
		    memcmp(v, u->accept, vlen) != 0)
			return "wrong Sec-WebSocket-Accept";
	} else if (IS("Sec-WebSocket-Extensions")) {
		return "server chose an extension we did not offer";
	} else if (IS("Sec-WebSocket-Protocol")) {
		return "server chose a subprotocol we did not offer";
	}
#undef IS
	return NULL;
}

/*
 * Parse the server's reply to the upgrade in buf[0..len) (see
 * http_reply_parse()).  HS_OK only for a valid 101 (r->header_len bytes
 * are the header; the rest already belongs to the websocket); HS_FAILED
 * with r->error and, for an HTTP reply, r->status and r->retry_after_ms.
 */
int
handshake_parse(
    const char *buf, size_t len, const char *accept, struct hs_reply *r)
{
	struct hs_upgrade u = { .accept = accept };
	int rc;

	if ((rc = http_reply_parse(buf, len, r, hs_header, &u)) != HS_OK)
		return rc;
	if (r->status != 101)
		return hs_fail(r, "no upgrade");
	if (!u.upgrade)
		return hs_fail(r, "Upgrade header missing");
	if (!u.connection)
		return hs_fail(r, "Connection: Upgrade missing");
	if (!u.accepted)
		return hs_fail(r, "Sec-WebSocket-Accept missing");
	return HS_OK;
}
