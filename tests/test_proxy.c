/*
 * Unit tests of daemon/proxy.c: NoProxy matching (names, suffixes,
 * addresses, CIDR ranges, *, ports), which proxy applies (Proxy=, the
 * environment's variables in their order, Proxy=none, NoProxy= over
 * $no_proxy), proxy URLs, the CONNECT request and the reply parser, and
 * what a proxy change means for a reload and the back-off.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dcevents.h"
#include "lib/tap.h"
#include "lib/testconf.h"

static const char *const vars[] = { "wss_proxy", "https_proxy", "HTTPS_PROXY",
	"all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY" };

static void
clear_env(void)
{
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
}

/* Does the NoProxy list send host:port direct? -1 if it does not parse. */
static int
np(const char *list, const char *host, const char *port)
{
	char err[300];
	struct noproxy *n = proxy_noproxy_parse(list, err, sizeof err);
	int r;

	if (n == NULL)
		return -1;
	r = proxy_noproxy_match(n, host, port);
	proxy_noproxy_free(n);
	return r;
}

static void
test_noproxy(void)
{
	static const struct {
		const char *list, *host, *port;
		int want;
	} cases[] = {
		{ "example.com", "example.com", "443", 1 },
		{ "example.com", "EXAMPLE.com", "443", 1 },
		{ "example.com", "ws.example.com", "443", 1 },
		{ "example.com", "a.b.example.com", "443", 1 },
		{ "example.com", "badexample.com", "443", 0 },
		{ "example.com", "example.com.evil", "443", 0 },
		{ ".example.com", "example.com", "443", 1 },
		{ ".example.com", "ws.example.com", "443", 1 },
		{ "*.example.com", "ws.example.com", "443", 1 },
		{ "example.com.", "ws.example.com", "443", 1 },
		{ "example.com", "ws.example.com.", "443", 1 },
		{ "ws.example.com", "example.com", "443", 0 },
		{ "a.com, b.com", "x.b.com", "443", 1 },
		{ "a.com b.com", "b.com", "443", 1 },
		{ "a.com,,b.com,", "b.com", "443", 1 },
		{ "*", "anything.example", "443", 1 },
		{ "*", "10.1.2.3", "443", 1 },
		{ "", "example.com", "443", 0 },
		{ "example.com:443", "example.com", "443", 1 },
		{ "example.com:443", "example.com", "8443", 0 },
		{ "10.1.2.3", "10.1.2.3", "443", 1 },
		{ "10.1.2.3", "10.1.2.4", "443", 0 },
		{ "10.1.2.3:80", "10.1.2.3", "443", 0 },
		{ "10.0.0.0/8", "10.200.3.4", "443", 1 },
		{ "10.0.0.0/8", "11.0.0.1", "443", 0 },
		{ "192.168.4.0/22", "192.168.7.255", "443", 1 },
		{ "192.168.4.0/22", "192.168.8.0", "443", 0 },
		{ "0.0.0.0/0", "203.0.113.9", "443", 1 },
		{ "10.0.0.0/8", "ten.example", "443", 0 }, /* never resolved */
		{ "example.com", "10.1.2.3", "443", 0 },
		{ "::1", "::1", "443", 1 },
		{ "[::1]", "::1", "443", 1 },
		{ "[::1]:443", "::1", "443", 1 },
		{ "[::1]:443", "::1", "80", 0 },
		{ "fd00::/8", "fd12:3456::1", "443", 1 },
		{ "[fd00::/8]", "fd12:3456::1", "443", 1 },
		{ "fd00::/8", "fe80::1", "443", 0 },
		{ "2001:db8::/32", "2001:db8:ffff::1", "443", 1 },
		{ "2001:db8::/33", "2001:db8:8000::1", "443", 0 },
		{ "10.0.0.0/8", "::ffff:10.0.0.1", "443", 0 },
		{ "localhost", "127.0.0.1", "443", 0 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		is_int(np(cases[i].list, cases[i].host, cases[i].port),
		    cases[i].want, "NoProxy \"%s\" for %s:%s", cases[i].list,
		    cases[i].host, cases[i].port);
	static const char *const bad[] = { "10.0.0.0/33", "::/129", "a/8",
		"host:0", "host:65536", "host:x", "[::1", "bad_ch@r", ".",
		"*.", "10.0.0.0/" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		is_int(np(bad[i], "h", "1"), -1, "NoProxy \"%s\" is refused",
		    bad[i]);
}

static void
test_parse(void)
{
	const char *why = NULL;
	struct proxy *p;

	p = proxy_parse("http://proxy.example:3128", 0, &why);
	ok(p && !p->secure && strcmp(p->host, "proxy.example") == 0 &&
		strcmp(p->port, "3128") == 0 && *p->user == '\0' &&
		p->password == NULL,
	    "http://HOST:PORT");
	is_str(p ? p->url : NULL, "http://proxy.example:3128/", "its URL");
	proxy_free(p);
	p = proxy_parse("https://alice@[2001:db8::1]/", 0, &why);
	ok(p && p->secure && strcmp(p->host, "2001:db8::1") == 0 &&
		strcmp(p->port, "443") == 0 && strcmp(p->user, "alice") == 0,
	    "https://USER@[V6]/, port 443");
	is_str(p ? p->url : NULL, "https://alice@[2001:db8::1]:443/",
	    "its URL, no password");
	proxy_free(p);
	p = proxy_parse("proxy:8080", 0, &why);
	ok(p && !p->secure && strcmp(p->port, "8080") == 0,
	    "no scheme: http://");
	proxy_free(p);
	p = proxy_parse("http://proxy", 0, &why);
	is_str(p ? p->port : NULL, "80", "http:// without a port: 80");
	proxy_free(p);
	p = proxy_parse("http://bob%40corp:p%3Ass%40w@proxy:3128/", 1, &why);
	ok(p && strcmp(p->user, "bob@corp") == 0 && p->password &&
		strcmp(p->password, "p:ss@w") == 0,
	    "percent-encoded user and password (the environment)");
	proxy_free(p);
	ok(proxy_parse("http://bob:pw@proxy:3128/", 0, &why) == NULL &&
		strstr(why, "password does not belong") != NULL,
	    "a password refused where it is not allowed (Proxy=)");
	ok(proxy_parse("socks5://proxy:1080", 1, &why) == NULL &&
		strstr(why, "only http:// and https://") != NULL,
	    "socks5:// refused");
	ok(proxy_parse("http://proxy:3128/path", 0, &why) == NULL,
	    "a path refused");
	ok(proxy_parse("http://proxy:99999", 0, &why) == NULL,
	    "a bad port refused");
	ok(proxy_parse("http://bob%zz@proxy", 1, &why) == NULL,
	    "a bad %%-escape refused");
	ok(proxy_parse("http://@proxy", 1, &why) == NULL,
	    "an empty user refused");
}

/* -t of a configuration under the current environment, or NULL. */
static char *
print_of(const char *text)
{
	struct conf *c = conf_from_text(text);
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	conf_print(c, f);
	fclose(f);
	conf_free(c);
	return buf;
}

static void
test_choice(void)
{
	struct conf *c;

	clear_env();
	c = conf_from_text("[Stream]\n");
	ok(c->proxy == NULL && proxy_for(c, c->host, c->port) == NULL,
	    "no Proxy=, no variable: direct");
	conf_free(c);
	for (size_t i = 0; i < 5; i++) {
		char want[64];

		clear_env();
		for (size_t j = i; j < 5; j++) {
			char v[64];

			snprintf(v, sizeof v, "http://p%zu:3128", j);
			setenv(vars[j], v, 1);
		}
		c = conf_from_text("[Stream]\n");
		snprintf(want, sizeof want, "http://p%zu:3128/", i);
		is_str(c->proxy ? c->proxy->url : NULL, want,
		    "$%s wins over the variables after it", vars[i]);
		snprintf(want, sizeof want, "$%s", vars[i]);
		is_str(c->proxy ? c->proxy->origin : NULL, want,
		    "and is named as the origin");
		conf_free(c);
	}
	clear_env();
	setenv("https_proxy", "", 1);
	setenv("all_proxy", "http://p3:3128", 1);
	c = conf_from_text("[Stream]\n");
	is_str(c->proxy ? c->proxy->url : NULL, "http://p3:3128/",
	    "an empty variable counts as unset");
	conf_free(c);
	clear_env();
	setenv("https_proxy", "http://envproxy:3128", 1);
	c = conf_from_text("[Stream]\nProxy=http://fileproxy:8080\n");
	is_str(c->proxy ? c->proxy->url : NULL, "http://fileproxy:8080/",
	    "Proxy= wins over the environment");
	conf_free(c);
	c = conf_from_text("[Stream]\nProxy=none\n");
	ok(c->proxy == NULL, "Proxy=none: direct despite $https_proxy");
	conf_free(c);

	/* NoProxy= over $no_proxy over $NO_PROXY, for the stream's host. */
	setenv("NO_PROXY", "cloud.docker.com", 1);
	c = conf_from_text("[Stream]\n");
	ok(proxy_for(c, c->host, c->port) == NULL,
	    "$NO_PROXY sends ws.cloud.docker.com direct");
	ok(proxy_for(c, "registry.example", "443") == c->proxy,
	    "and other hosts through the proxy");
	conf_free(c);
	setenv("no_proxy", "other.example", 1);
	c = conf_from_text("[Stream]\n");
	ok(proxy_for(c, c->host, c->port) == c->proxy,
	    "$no_proxy wins over $NO_PROXY");
	conf_free(c);
	c = conf_from_text("[Stream]\nNoProxy=.docker.com\n");
	ok(proxy_for(c, c->host, c->port) == NULL,
	    "NoProxy= wins over $no_proxy");
	conf_free(c);
	clear_env();
}

static void
test_password(void)
{
	char path[] = "/tmp/dcevents-test-pw.XXXXXX", text[256];
	int fd = mkstemp(path);
	struct conf *c;
	char *t;

	if (fd == -1 || write(fd, "  s3cr3t-pw \n2nd\n", 17) != 17)
		exit(99);
	close(fd);
	clear_env();
	snprintf(text, sizeof text,
	    "[Stream]\nProxy=http://alice@p:3128/\nProxyPasswordFile=%s\n",
	    path);
	c = conf_from_text(text);
	is_str(c->proxy ? c->proxy->password : NULL, "s3cr3t-pw",
	    "ProxyPasswordFile=: the first line, blanks stripped");
	conf_free(c);
	t = print_of(text);
	ok(t != NULL && strstr(t, "s3cr3t-pw") == NULL &&
		strstr(t, "# proxy password: (masked) from "
			  "ProxyPasswordFile") != NULL,
	    "-t masks it and names the file");
	free(t);
	setenv("https_proxy", "http://bob:envpw@p:3128/", 1);
	c = conf_from_text("[Stream]\n");
	is_str(c->proxy ? c->proxy->password : NULL, "envpw",
	    "the environment's URL may hold the password");
	is_str(c->proxy ? c->proxy->password_origin : NULL,
	    "the URL in $https_proxy", "and -t says so");
	conf_free(c);
	snprintf(text, sizeof text, "[Stream]\nProxyPasswordFile=%s\n", path);
	c = conf_from_text(text);
	is_str(c->proxy ? c->proxy->password : NULL, "s3cr3t-pw",
	    "ProxyPasswordFile= wins over the URL's password");
	conf_free(c);
	clear_env();
	unlink(path);
}

static void
test_request(void)
{
	const char *why;
	struct proxy *p = proxy_parse("http://alice:pw@p:3128", 1, &why);
	size_t len;
	char *req;
	unsigned char b64[64];
	static const char head[] = "CONNECT ws.example.com:443 HTTP/1.1\r\n"
				   "Host: ws.example.com:443\r\n";
	static const char head6[] = "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n";

	req = proxy_request(p, "ws.example.com", "443", &len);
	EVP_EncodeBlock(b64, (const unsigned char *)"alice:pw", 8);
	ok(req != NULL && strlen(req) == len, "CONNECT request built");
	ok(req && strncmp(req, head, strlen(head)) == 0,
	    "request line and Host: the origin's name, not an address");
	ok(req && strstr(req, "Proxy-Authorization: Basic ") &&
		strstr(req, (char *)b64) != NULL,
	    "Proxy-Authorization: Basic base64(user:password)");
	ok(req && len >= 4 && strcmp(req + len - 4, "\r\n\r\n") == 0,
	    "ends with the empty line");
	secret_free(req);
	secret_free(p->password);
	p->password = NULL;
	req = proxy_request(p, "2001:db8::1", "8443", &len);
	ok(req && strncmp(req, head6, strlen(head6)) == 0 &&
		strstr(req, "Proxy-Authorization") == NULL,
	    "IPv6 in brackets; no credentials without a password");
	secret_free(req);
	proxy_free(p);
}

static int
reply(const char *s, struct hs_reply *r)
{
	return proxy_reply_parse(s, strlen(s), r);
}

static void
test_reply(void)
{
	struct hs_reply r;
	char *big;

	ok(reply("HTTP/1.1 200 Connection established\r\n\r\n", &r) == HS_OK &&
		r.status == 200 && r.header_len == 39,
	    "200: tunnel up, header length");
	ok(reply("HTTP/1.0 200 OK\r\nProxy-Agent: x\r\n\r\n\x16\x03", &r) ==
		    HS_OK &&
		r.header_len == 35,
	    "bytes after the header are the origin's");
	ok(reply("HTTP/1.1 204 No Content\n\n", &r) == HS_OK,
	    "any 2xx, bare LF");
	ok(reply("HTTP/1.1 200 Connection established\r\n", &r) ==
		HS_INCOMPLETE,
	    "incomplete header");
	ok(reply("HTTP/1.1 407 Proxy Authentication Required\r\n"
		 "Proxy-Authenticate: Basic realm=\"p\"\r\n\r\n",
	       &r) == HS_FAILED &&
		r.status == 407 && r.status_len == 42 &&
		strncmp(r.status_line, "HTTP/1.1 407", 12) == 0,
	    "407: failed, status line kept");
	ok(reply("HTTP/1.0 403 Access violation\r\n\r\n", &r) == HS_FAILED &&
		r.status == 403,
	    "403 failed");
	ok(reply("SSH-2.0-OpenSSH_9.2\r\n", &r) == HS_FAILED && r.status == 0,
	    "garbage: not HTTP, at once");
	ok(reply("HTTP/1.1 2000 OK\r\n\r\n", &r) == HS_FAILED,
	    "bad status line");
	big = malloc(HS_MAX_HEADER + 100);
	memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
	memset(big + 17, 'a', HS_MAX_HEADER + 100 - 17);
	ok(proxy_reply_parse(big, HS_MAX_HEADER, &r) == HS_INCOMPLETE,
	    "16 KiB without an end: still waiting");
	ok(proxy_reply_parse(big, HS_MAX_HEADER + 1, &r) == HS_FAILED &&
		strstr(r.error, "16 KiB") != NULL,
	    "one byte more: refused");
	free(big);
}

static void
test_reload_and_backoff(void)
{
	struct conf *a, *b;
	struct conn_end e = { .kind = CONN_AUTH, .http_status = 407 };
	struct backoff bo = { 0 };

	clear_env();
	a = conf_from_text("[Stream]\nProxy=http://p:3128\n");
	b = conf_from_text("[Stream]\nProxy=http://p:3129\n");
	ok(conf_stream_changed(a, b), "another proxy: a new connection");
	conf_free(b);
	b = conf_from_text(
	    "[Stream]\nProxy=http://p:3128\nNoProxy=x.example\n");
	ok(conf_stream_changed(a, b), "another NoProxy: a new connection");
	conf_free(b);
	b = conf_from_text("[Stream]\nProxy=http://p:3128/\n");
	ok(!conf_stream_changed(a, b), "the same proxy: kept");
	conf_free(b);
	e.conf = a;
	e.proxy = a->proxy->url;
	is_int(backoff_next(&bo, &e, 0), a->auth_backoff_ms,
	    "407 at the proxy waits AuthBackoffSec");
	is_int(bo.attempt, 0, "and does not count as a failure");
	conf_free(a);
}

int
main(void)
{
	log_init(0);
	test_noproxy();
	test_parse();
	test_choice();
	test_password();
	test_request();
	test_reply();
	test_reload_and_backoff();
	return done();
}
