/*
 * wsecho: an echo client on the daemon's own connection, upgrade and
 * websocket code (daemon/libdcevents.a), for the conformance tests.  It
 * speaks the client side of the Autobahn|Testsuite fuzzing protocol:
 * /getCaseCount, then /runCase?case=N&agent=AGENT for each case, where
 * every message is echoed whole with its opcode until the server closes,
 * then /updateReports?agent=AGENT.  One line per case on stdout:
 * "case N: SENT/RECEIVED reason" with the close codes this side sent and
 * received (1006: none; 0/0: no websocket) and why the connection ended.
 */
#include "config.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "dcevents.h"

enum phase { PH_COUNT, PH_CASE, PH_REPORT };

static struct {
	struct event_base *base;
	struct conn *conn;
	struct conf *conf;
	struct strbuf agent; /* percent-encoded */
	const char *url;
	int keep_going;
	enum phase phase;
	unsigned ncases;
	unsigned ncase; /* the case running, from 1 */
	int have_count;
	struct strbuf msg; /* the message being received */
	int opcode;
	int status;
} we;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: wsecho [-k] [-v]... [-a AGENT] [-c CAFILE] URL\n"
	    "  URL        ws://HOST:PORT or wss://HOST:PORT of a fuzzing "
	    "server\n"
	    "  -a AGENT   agent name for the reports (default dcevents)\n"
	    "  -c CAFILE  trust anchors for wss:// (default: the system's)\n"
	    "  -k         keep going after a case that could not connect\n"
	    "  -v         more diagnostics on stderr (repeatable)\n");
}

/* Each message is collected whole (up to MaxMessageBytes), then echoed. */
static void
msg_begin(void *arg)
{
	struct ws *ws = conn_ws(we.conn);

	we.opcode = ws != NULL ? ws_opcode(ws) : 0;
	strbuf_reset(&we.msg);
}

static void
msg_data(void *arg, const uint8_t *p, size_t n)
{
	strbuf_add(&we.msg, p, n);
}

static void
msg_end(void *arg)
{
	struct ws *ws = conn_ws(we.conn);
	char *end;
	unsigned long n;

	if (we.msg.failed) {
		log_err("out of memory for a %zu-byte message", we.msg.len);
		return;
	}
	switch (we.phase) {
	case PH_COUNT:
		n = strtoul(we.msg.len > 0 ? we.msg.buf : "x", &end, 10);
		if (*end != '\0' || n > 100000) {
			log_err("not a case count: \"%.40s\"", we.msg.buf);
			return;
		}
		we.ncases = (unsigned)n;
		we.have_count = 1;
		return;
	case PH_CASE:
		if (ws != NULL &&
		    ws_send(ws, (uint8_t)we.opcode, we.msg.buf, we.msg.len) ==
			-1)
			log_warn("case %u: cannot echo a %zu-byte message",
			    we.ncase, we.msg.len);
		return;
	case PH_REPORT:
		return;
	}
}

static void
msg_abort(void *arg)
{
	strbuf_reset(&we.msg);
}

/* Connect to the server's base path plus what (a printf format). */
static void __attribute__((format(printf, 1, 2)))
we_connect(const char *fmt, ...)
{
	struct strbuf t = { 0 };
	size_t plen = strlen(we.conf->path);
	va_list ap;
	char *target;

	strbuf_add(&t, we.conf->path,
	    plen > 0 && we.conf->path[plen - 1] == '/' ? plen - 1 : plen);
	va_start(ap, fmt);
	if (!t.failed) {
		char buf[256];

		vsnprintf(buf, sizeof buf, fmt, ap);
		strbuf_addstr(&t, buf);
	}
	va_end(ap);
	if ((target = strbuf_finish(&t)) == NULL ||
	    conn_set_target(we.conn, target) == -1 ||
	    conn_start(we.conn, we.conf) == -1) {
		log_err("cannot connect to %s", we.url);
		we.status = 1;
		event_base_loopbreak(we.base);
	}
	free(target);
}

/* The next step, outside the connection's callbacks. */
static void
we_next(evutil_socket_t fd, short what, void *arg)
{
	switch (we.phase) {
	case PH_COUNT:
		we_connect("/getCaseCount");
		return;
	case PH_CASE:
		if (we.ncase <= we.ncases) {
			we_connect("/runCase?case=%u&agent=%s", we.ncase,
			    we.agent.buf);
			return;
		}
		we.phase = PH_REPORT;
		we_connect("/updateReports?agent=%s", we.agent.buf);
		return;
	case PH_REPORT:
		event_base_loopbreak(we.base);
		return;
	}
}

/* Run we_next() from the event loop, once. */
static void
we_schedule(void)
{
	struct timeval now = { 0, 0 };

	if (event_base_once(we.base, -1, EV_TIMEOUT, we_next, NULL, &now) ==
	    -1) {
		log_err("cannot schedule the next connection");
		we.status = 1;
		event_base_loopbreak(we.base);
	}
}

/*
 * A connection ended: report the case and go on to the next step.  The
 * owner of the connection, wsecho never retries: the next step makes a
 * new connection with conn_start().
 */
static void
we_ended(void *arg, const struct conn_end *e)
{
	const char *why = e->why;
	uint16_t sent = e->close_sent, received = e->close_received;

	if (e->kind == CONN_LOST)
		log_info("disconnected from %s: %s", we.url, why);
	else
		log_warn("cannot connect to %s: %s", we.url, why);
	switch (we.phase) {
	case PH_COUNT:
		if (!we.have_count) {
			log_err("no case count from %s: %s", we.url, why);
			we.status = 1;
			event_base_loopbreak(we.base);
			return;
		}
		log_info("%u cases", we.ncases);
		we.phase = PH_CASE;
		we.ncase = 1;
		break;
	case PH_CASE:
		printf("case %u: %u/%u %s\n", we.ncase, sent, received, why);
		fflush(stdout);
		we.ncase++;
		if (sent == 0 && received == 0) {
			we.status = 1;
			if (!we.keep_going) {
				event_base_loopbreak(we.base);
				return;
			}
		}
		break;
	case PH_REPORT:
		if (sent == 0 && received == 0) {
			log_err("cannot update the reports: %s", why);
			we.status = 1;
		}
		break;
	}
	we_schedule();
}

/* Percent-encode s (RFC 3986 unreserved characters kept) into b. */
static void
we_encode(struct strbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || strchr("-._~", ch) != NULL)
			strbuf_add(b, s, 1);
		else
			strbuf_printf(b, "%%%02X", ch);
	}
	strbuf_add(b, "", 0); /* allocated even when empty */
}

int
main(int argc, char *argv[])
{
	struct ws_handler handler = { msg_begin, msg_data, msg_end, msg_abort,
		NULL };
	const char *agent = "dcevents", *cafile = NULL;
	char *overrides[8];
	size_t n = 0;
	struct strbuf o[2] = { { 0 }, { 0 } };
	struct evdns_base *dns;
	int ch, verbosity = 0;

	log_init(0);
	while ((ch = getopt(argc, argv, "a:c:khv")) != -1) {
		switch (ch) {
		case 'a':
			agent = optarg;
			break;
		case 'c':
			cafile = optarg;
			break;
		case 'k':
			we.keep_going = 1;
			break;
		case 'v':
			verbosity++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 ||
	    (strncmp(argv[optind], "ws://", 5) != 0 &&
		strncmp(argv[optind], "wss://", 6) != 0)) {
		usage(stderr);
		return 2;
	}
	log_set_verbosity(verbosity);
	we.url = argv[optind];
	we_encode(&we.agent, agent);
	strbuf_printf(&o[0], "Stream.URL=%s", we.url);
	overrides[n++] = o[0].buf;
	if (cafile != NULL) {
		strbuf_printf(&o[1], "Stream.CAFile=%s", cafile);
		overrides[n++] = o[1].buf;
	}
	overrides[n++] = "Stream.AllowInsecure=yes";
	overrides[n++] = "Stream.MaxMessageBytes=64M";
	overrides[n++] = "Output.Journal=no";
	overrides[n++] = "Output.Stdout=yes";
	if (we.agent.failed || o[0].failed || o[1].failed) {
		log_err("out of memory");
		return 1;
	}
	if ((we.conf = conf_load("/dev/null", 1, overrides, n)) == NULL)
		return 2;

	signal(SIGPIPE, SIG_IGN);
	if ((we.base = event_base_new()) == NULL ||
	    (dns = evdns_base_new(we.base, EVDNS_BASE_DISABLE_WHEN_INACTIVE)) ==
		NULL ||
	    (we.conn = conn_new(we.base, dns, &handler, we_ended, NULL)) ==
		NULL) {
		log_err("cannot set up the event loop");
		return 1;
	}
	/* Names from /etc/hosts and addresses are enough on loopback. */
	evdns_base_load_hosts(dns, NULL);
	we.phase = PH_COUNT;
	we_schedule();
	if (event_base_dispatch(we.base) == -1)
		we.status = 1;

	conn_free(we.conn);
	evdns_base_free(dns, 0);
	event_base_free(we.base);
	conf_free(we.conf);
	free(strbuf_finish(&we.msg));
	free(strbuf_finish(&we.agent));
	free(strbuf_finish(&o[0]));
	free(strbuf_finish(&o[1]));
	return we.status;
}
