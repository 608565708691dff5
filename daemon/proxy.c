/*
 * Proxies: HTTP CONNECT tunnels, for the stream and for any other
 * connection the daemon makes.  This file owns which proxy applies to a
 * host (Proxy=, else the first of $wss_proxy, $https_proxy, $HTTPS_PROXY,
 * $all_proxy, $ALL_PROXY; none for a host that NoProxy=, else $no_proxy
 * or $NO_PROXY, lists), the CONNECT request (its Proxy-Authorization
 * built in secret memory, like the upgrade request's Authorization), the
 * bounded parser of the proxy's answer (handshake.c's generic part), and
 * the tunnel step: on a bufferevent connected to the proxy (with TLS to
 * it already up for an https:// proxy) it sends CONNECT host:port and
 * tells its caller how the proxy answered.  The proxy resolves the
 * origin's name; NoProxy matches names and address literals as written
 * and never resolves one.  The tunnel has no timer of its own: the
 * caller's deadline (ConnectTimeoutSec for the stream) covers it.
 * Nothing here logs above debug (the caller says what failed, with the
 * reason given here); fatal() is for running out of memory only.
 */
#include "config.h"

#include <arpa/inet.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "dcevents.h"

#define PROXY_LINE_MAX 120 /* bytes of the proxy's status line we quote */

static const char *const env_proxy_names[] = { "wss_proxy", "https_proxy",
	"HTTPS_PROXY", "all_proxy", "ALL_PROXY" };
#define NENV (sizeof env_proxy_names / sizeof env_proxy_names[0])
/* The variables as proxy_take_environment() found them (secret memory). */
static char *env_proxy[NENV];

/* Does the URL v hold a password (USER:PASSWORD@)? */
static int
url_has_password(const char *v)
{
	const char *a = strstr(v, "://"), *end, *at;

	a = a != NULL ? a + 3 : v;
	end = a + strcspn(a, "/");
	at = NULL;
	for (const char *p = a; p < end; p++)
		if (*p == '@')
			at = p;
	return at != NULL && memchr(a, ':', (size_t)(at - a)) != NULL;
}

/*
 * Copy the proxy variables into secret memory; one whose URL holds a
 * password is wiped from the environment (/proc/PID/environ).  -1 when
 * out of memory.
 */
int
proxy_take_environment(void)
{
	for (size_t i = 0; i < NENV; i++) {
		const char *v = getenv(env_proxy_names[i]);

		secret_free(env_proxy[i]);
		env_proxy[i] = NULL;
		if (v == NULL || *v == '\0')
			continue;
		if ((env_proxy[i] = secret_dup(v, strlen(v))) == NULL)
			return -1;
		if (url_has_password(v))
			secret_unsetenv(env_proxy_names[i]);
	}
	return 0;
}

/*
 * The environment's proxy, or NULL: the first variable set (and not
 * empty) in the order above; *name gets its name.
 */
const char *
proxy_environment(const char **name)
{
	for (size_t i = 0; i < NENV; i++) {
		const char *v = getenv(env_proxy_names[i]);

		if (v == NULL || *v == '\0')
			v = env_proxy[i];
		if (v != NULL && *v != '\0') {
			*name = env_proxy_names[i];
			return v;
		}
	}
	return NULL;
}

/* The environment's NoProxy list ($no_proxy, else $NO_PROXY), or NULL. */
const char *
proxy_noproxy_environment(const char **name)
{
	static const char *const names[] = { "no_proxy", "NO_PROXY" };

	for (size_t i = 0; i < 2; i++) {
		const char *v = getenv(names[i]);

		if (v != NULL && *v != '\0') {
			*name = names[i];
			return v;
		}
	}
	return NULL;
}

/* Decode %XX in s[0..n) into a new string (secret memory), or NULL. */
static char *
pct_decode(const char *s, size_t n, int *bad)
{
	char *out = secret_alloc(n), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%')
			*o++ = s[i];
		else if (i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			char h[3] = { s[i + 1], s[i + 2], '\0' };

			*o++ = (char)strtoul(h, NULL, 16);
			i += 2;
		} else
			*bad = 1;
	}
	*o = '\0';
	if (memchr(out, '\0', (size_t)(o - out)) != NULL)
		*bad = 1;
	return out;
}

void
proxy_free(struct proxy *px)
{
	if (px == NULL)
		return;
	free(px->host);
	free(px->port);
	free(px->user);
	free(px->url);
	free(px->origin);
	free(px->password_origin);
	secret_free(px->password);
	free(px);
}

/*
 * A proxy URL: [http://|https://][USER[:PASSWORD]@]HOST[:PORT][/]
 * (no scheme: http://; the port defaults to the scheme's, 80 or 443;
 * USER and PASSWORD may be percent-encoded).  A password is taken only
 * when password_ok (the environment's URLs); NULL with *why otherwise.
 */
struct proxy *
proxy_parse(const char *v, int password_ok, const char **why)
{
	struct proxy *px;
	const char *a, *end, *at = NULL, *colon;
	struct strbuf b = { 0 };
	int bad = 0;

	if ((px = calloc(1, sizeof *px)) == NULL)
		fatal("out of memory");
	if (strncasecmp(v, "http://", 7) == 0)
		a = v + 7;
	else if (strncasecmp(v, "https://", 8) == 0) {
		px->secure = 1;
		a = v + 8;
	} else if (strstr(v, "://") != NULL) {
		*why = "only http:// and https:// proxies are supported "
		       "(HTTP CONNECT)";
		goto bad;
	} else
		a = v;
	end = a + strcspn(a, "/?#");
	if (*end != '\0' && strcmp(end, "/") != 0) {
		*why = "a proxy URL has no path, query or fragment";
		goto bad;
	}
	for (const char *p = a; p < end; p++) {
		if (!isgraph((unsigned char)*p)) {
			*why = "spaces or control characters in the proxy URL";
			goto bad;
		}
		if (*p == '@')
			at = p;
	}
	if (at != NULL) {
		colon = memchr(a, ':', (size_t)(at - a));
		if (colon != NULL && !password_ok) {
			*why = "a password does not belong here; use "
			       "ProxyPasswordFile= or the proxypassword "
			       "credential";
			goto bad;
		}
		px->user = pct_decode(a, (size_t)((colon ? colon : at) - a),
		    &bad);
		if (px->user != NULL) {
			char *u = strdup(px->user); /* not a secret */

			secret_free(px->user);
			px->user = u;
		}
		if (colon != NULL)
			px->password = pct_decode(
			    colon + 1, (size_t)(at - colon - 1), &bad);
		if (px->user == NULL || (colon != NULL && px->password == NULL))
			fatal("out of memory");
		if (bad || *px->user == '\0' || strchr(px->user, ':')) {
			*why = "bad user name or password in the proxy URL";
			goto bad;
		}
		a = at + 1;
	} else if ((px->user = strdup("")) == NULL)
		fatal("out of memory");
	if (conf_hostport(a, (size_t)(end - a), px->secure ? "443" : "80",
		&px->host, &px->port) == -1) {
		*why = "bad host or port in the proxy URL";
		goto bad;
	}
	strbuf_printf(&b, "%s://%s%s%s%s%s:%s/", px->secure ? "https" : "http",
	    px->user, *px->user ? "@" : "",
	    strchr(px->host, ':') ? "[" : "", px->host,
	    strchr(px->host, ':') ? "]" : "", px->port);
	if ((px->url = strbuf_finish(&b)) == NULL)
		fatal("out of memory");
	return px;
bad:
	proxy_free(px);
	return NULL;
}

/* One NoProxy entry. */
struct noproxy_rule {
	enum { NP_ALL, NP_NAME, NP_NET } kind;
	char *name; /* NP_NAME: lower case, no leading or trailing dot */
	int family; /* NP_NET: AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned bits;
	char port[6]; /* "" for any port */
};

struct noproxy {
	size_t n;
	struct noproxy_rule r[];
};

void
proxy_noproxy_free(struct noproxy *np)
{
	if (np == NULL)
		return;
	for (size_t i = 0; i < np->n; i++)
		free(np->r[i].name);
	free(np);
}

/* An address literal (no brackets) into addr; its family, or 0. */
static int
parse_addr(const char *s, unsigned char addr[16])
{
	if (inet_pton(AF_INET, s, addr) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, addr) == 1)
		return AF_INET6;
	return 0;
}

/* One entry t (NUL-terminated, changed in place) into r; NULL or why. */
static const char *
noproxy_rule(char *t, struct noproxy_rule *r)
{
	char *port = NULL, *slash, *p;
	unsigned long bits = 0;

	if (strcmp(t, "*") == 0) {
		r->kind = NP_ALL;
		return NULL;
	}
	if (*t == '[') { /* [V6] or [V6]:PORT, maybe with /BITS inside */
		char *rb = strchr(t, ']');

		if (rb == NULL || (rb[1] != '\0' && rb[1] != ':'))
			return "unbalanced [ ]";
		if (rb[1] == ':')
			port = rb + 2;
		*rb = '\0';
		t++;
	} else if ((p = strchr(t, ':')) != NULL && strchr(p + 1, ':') == NULL) {
		*p = '\0'; /* NAME:PORT or V4:PORT; a bare V6 has two */
		port = p + 1;
	}
	if (port != NULL) {
		unsigned long n = 0;
		size_t len = strlen(port);

		if (len == 0 || len > 5 || strspn(port, "0123456789") != len ||
		    (n = strtoul(port, NULL, 10)) == 0 || n > 65535)
			return "bad port";
		snprintf(r->port, sizeof r->port, "%lu", n);
	}
	if ((slash = strchr(t, '/')) != NULL) {
		size_t len;

		*slash++ = '\0';
		len = strlen(slash);
		if (len == 0 || len > 3 || strspn(slash, "0123456789") != len)
			return "bad prefix length";
		bits = strtoul(slash, NULL, 10);
	}
	if ((r->family = parse_addr(t, r->addr)) != 0) {
		unsigned max = r->family == AF_INET ? 32 : 128;

		if (slash == NULL)
			bits = max;
		if (bits > max)
			return "prefix length too long";
		r->kind = NP_NET;
		r->bits = (unsigned)bits;
		return NULL;
	}
	if (slash != NULL)
		return "a /prefix needs an address";
	if (strncmp(t, "*.", 2) == 0)
		t += 2;
	else if (*t == '.')
		t++;
	if (*t != '\0' && t[strlen(t) - 1] == '.')
		t[strlen(t) - 1] = '\0';
	if (*t == '\0')
		return "empty host name";
	for (p = t; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && strchr("-._", *p) == NULL)
			return "not a host name, address or CIDR range";
		*p = (char)tolower((unsigned char)*p);
	}
	r->kind = NP_NAME;
	if ((r->name = strdup(t)) == NULL)
		fatal("out of memory");
	return NULL;
}

/*
 * A NoProxy list: entries separated by commas or blanks, each "*" (every
 * host), a host name (matching itself and every name below it; a leading
 * "." or "*." changes nothing), an IPv4 or IPv6 address or a CIDR range
 * ADDR/BITS (matching an origin written as an address in it), each
 * optionally with :PORT (then only that port; IPv6 as [ADDR]:PORT).
 * NULL with *why (naming the entry, in err) when an entry is not one of
 * these; an empty list gives an empty set.
 */
struct noproxy *
proxy_noproxy_parse(const char *list, char *err, size_t n)
{
	struct noproxy *np;
	size_t max = 1;
	const char *s = list;

	for (const char *p = list; *p != '\0'; p++)
		max += *p == ',' || *p == ' ' || *p == '\t';
	if ((np = calloc(1, sizeof *np + max * sizeof np->r[0])) == NULL)
		fatal("out of memory");
	while (*s != '\0') {
		size_t len = strcspn(s, ", \t");
		char tok[300];
		const char *why;

		if (len == 0) {
			s++;
			continue;
		}
		if (len >= sizeof tok) {
			snprintf(err, n, "entry too long");
			goto bad;
		}
		memcpy(tok, s, len);
		tok[len] = '\0';
		if ((why = noproxy_rule(tok, &np->r[np->n])) != NULL) {
			snprintf(err, n, "\"%.*s\": %s", (int)len, s, why);
			goto bad;
		}
		np->n++;
		s += len;
	}
	return np;
bad:
	proxy_noproxy_free(np);
	return NULL;
}

/* Are the first bits of a and b the same? */
static int
prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return 0;
	return rest == 0 ||
	    ((a[whole] ^ b[whole]) & (0xff00 >> rest & 0xff)) == 0;
}

/* Does np list host (a name or an address without brackets) at port? */
int
proxy_noproxy_match(const struct noproxy *np, const char *host,
    const char *port)
{
	unsigned char addr[16];
	int family;
	size_t hlen = strlen(host);

	if (np == NULL)
		return 0;
	family = parse_addr(host, addr);
	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	for (size_t i = 0; i < np->n; i++) {
		const struct noproxy_rule *r = &np->r[i];
		size_t nlen;

		if (r->port[0] != '\0' && strcmp(r->port, port) != 0)
			continue;
		switch (r->kind) {
		case NP_ALL:
			return 1;
		case NP_NET:
			if (family == r->family &&
			    prefix_equal(addr, r->addr, r->bits))
				return 1;
			break;
		case NP_NAME:
			nlen = strlen(r->name);
			if (family != 0 || nlen > hlen)
				break;
			if (strncasecmp(host + hlen - nlen, r->name, nlen) ==
				0 &&
			    (nlen == hlen || host[hlen - nlen - 1] == '.'))
				return 1;
			break;
		}
	}
	return 0;
}

/* The proxy for a connection to host:port under c, or NULL: direct. */
const struct proxy *
proxy_for(const struct conf *c, const char *host, const char *port)
{
	if (c->proxy == NULL || proxy_noproxy_match(c->noproxy, host, port))
		return NULL;
	return c->proxy;
}

/*
 * The CONNECT request for host:port, in secret memory (it may carry the
 * password): the caller hands it on without copying and frees it with
 * secret_free() (secret_ref_done() once sent).
 */
char *
proxy_request(const struct proxy *px, const char *host, const char *port,
    size_t *len)
{
	static const char auth[] = "Proxy-Authorization: Basic ";
	struct strbuf b = { 0 };
	int v6 = strchr(host, ':') != NULL;
	size_t hlen, alen = 0;
	char *head, *req, *p;

	strbuf_printf(&b,
	    "CONNECT %s%s%s:%s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
	    "User-Agent: dcevents/%s\r\n",
	    v6 ? "[" : "", host, v6 ? "]" : "", port, v6 ? "[" : "", host,
	    v6 ? "]" : "", port, PACKAGE_VERSION);
	if ((head = strbuf_finish(&b)) == NULL)
		return NULL;
	hlen = strlen(head);
	if (px->password != NULL)
		alen = http_basic_len(auth, px->user, px->password);
	if ((req = secret_alloc(hlen + alen + 2)) == NULL) {
		free(head);
		return NULL;
	}
	memcpy(req, head, hlen);
	free(head);
	p = req + hlen;
	if (px->password != NULL &&
	    (p = http_put_basic(p, auth, px->user, px->password)) == NULL) {
		secret_free(req);
		return NULL;
	}
	secret_scrub();
	memcpy(p, "\r\n", 2);
	p += 2;
	*p = '\0';
	*len = (size_t)(p - req);
	return req;
}

/*
 * The proxy's answer to CONNECT in buf[0..len): HS_INCOMPLETE until its
 * header is whole, HS_OK for a 2xx (r->header_len bytes are its header;
 * what follows is the origin's), HS_FAILED otherwise (r->status 0: not
 * HTTP, or a header over HS_MAX_HEADER; r->status_line for the record).
 */
int
proxy_reply_parse(const char *buf, size_t len, struct hs_reply *r)
{
	int rc = http_reply_parse(buf, len, r, NULL, NULL);

	if (rc == HS_OK && r->status / 100 != 2) {
		r->error = "the proxy refused CONNECT";
		return HS_FAILED;
	}
	return rc;
}

/* A tunnel being made: CONNECT sent, the answer awaited. */
struct proxy_tunnel {
	struct bufferevent *bev;
	proxy_tunnel_cb cb;
	void *arg;
	char proxy[300]; /* the proxy's URL */
	char target[300]; /* host:port */
	char why[1400];
	char line[PROXY_LINE_MAX * 4 + 8]; /* the status line, escaped */
	int done;
};

/* Tell the caller; it may free t and bev, so t is not touched after. */
static void
tunnel_done(struct proxy_tunnel *t, enum proxy_result res, int status)
{
	struct proxy_done d = { .result = res,
		.status = status,
		.why = t->why,
		.status_line = t->line };

	t->done = 1;
	bufferevent_setcb(t->bev, NULL, NULL, NULL, NULL);
	t->cb(t->arg, &d);
}

static void
tunnel_read_cb(struct bufferevent *bev, void *arg)
{
	struct proxy_tunnel *t = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	struct strbuf b = { 0 }, e = { 0 };
	struct hs_reply r;
	char *esc;
	int rc;

	if (len > HS_MAX_HEADER + 1)
		len = HS_MAX_HEADER + 1;
	rc = proxy_reply_parse(
	    (const char *)evbuffer_pullup(in, (ssize_t)len), len, &r);
	if (rc == HS_INCOMPLETE)
		return;
	if (r.status_line != NULL) {
		/* For records: control characters escaped, valid UTF-8. */
		strbuf_add_escaped(&e, r.status_line,
		    r.status_len > PROXY_LINE_MAX ? PROXY_LINE_MAX
						  : r.status_len);
		if (e.buf != NULL && !e.failed)
			strbuf_add_utf8(&b, e.buf, e.len, 1);
		free(strbuf_finish(&e));
		if ((esc = strbuf_finish(&b)) != NULL) {
			snprintf(t->line, sizeof t->line, "%s", esc);
			free(esc);
		}
	}
	if (rc == HS_OK) {
		log_debug("proxy %s: %s: tunnel to %s open", t->proxy, t->line,
		    t->target);
		evbuffer_drain(in, r.header_len);
		snprintf(t->why, sizeof t->why, "%s", t->line);
		tunnel_done(t, PROXY_OK, r.status);
	} else if (r.status == 407 || r.status == 401) {
		snprintf(t->why, sizeof t->why, "%s", t->line);
		tunnel_done(t, PROXY_AUTH, r.status);
	} else if (r.status != 0) {
		snprintf(t->why, sizeof t->why,
		    "the proxy %s refused CONNECT %s: %s", t->proxy, t->target,
		    t->line);
		tunnel_done(t, PROXY_REFUSED, r.status);
	} else {
		snprintf(t->why, sizeof t->why,
		    "bad answer from the proxy %s to CONNECT %s: %s", t->proxy,
		    t->target, r.error);
		tunnel_done(t, PROXY_FAILED, 0);
	}
}

static void
tunnel_event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct proxy_tunnel *t = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	snprintf(t->why, sizeof t->why,
	    "the proxy %s %s before answering CONNECT %s", t->proxy,
	    (events & BEV_EVENT_ERROR) && err != 0
		? evutil_socket_error_to_string(err)
		: "closed the connection",
	    t->target);
	tunnel_done(t, PROXY_FAILED, 0);
}

/*
 * Ask the proxy px, over bev (connected to it, TLS to it done for an
 * https:// proxy), for a tunnel to host:port.  bev's callbacks are the
 * tunnel's until cb is called (once, with bev's callbacks cleared and the
 * answer's header drained from its input: the caller then sets its own);
 * cb may free the tunnel.  NULL when out of memory.  The caller keeps
 * bev and the deadline; proxy_tunnel_free() abandons a tunnel.
 */
struct proxy_tunnel *
proxy_tunnel_start(struct bufferevent *bev, const struct proxy *px,
    const char *host, const char *port, proxy_tunnel_cb cb, void *arg)
{
	struct proxy_tunnel *t = calloc(1, sizeof *t);
	size_t len;
	char *req;
	int v6 = strchr(host, ':') != NULL;

	if (t == NULL)
		return NULL;
	t->bev = bev;
	t->cb = cb;
	t->arg = arg;
	snprintf(t->proxy, sizeof t->proxy, "%s", px->url);
	snprintf(t->target, sizeof t->target, "%s%s%s:%s", v6 ? "[" : "",
	    host, v6 ? "]" : "", port);
	if ((req = proxy_request(px, host, port, &len)) == NULL) {
		free(t);
		return NULL;
	}
	if (evbuffer_add_reference(bufferevent_get_output(bev), req, len,
		secret_ref_done, req) == -1) {
		secret_free(req);
		free(t);
		return NULL;
	}
	bufferevent_setcb(bev, tunnel_read_cb, NULL, tunnel_event_cb, t);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	log_debug("proxy %s: CONNECT %s%s", t->proxy, t->target,
	    px->password != NULL ? " (with Proxy-Authorization)" : "");
	return t;
}

/* Abandon a tunnel (before bev is freed) or free a finished one. */
void
proxy_tunnel_free(struct proxy_tunnel *t)
{
	if (t == NULL)
		return;
	if (!t->done)
		bufferevent_setcb(t->bev, NULL, NULL, NULL, NULL);
	free(t);
}
