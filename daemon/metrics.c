/*
 * The metrics endpoint, [Metrics] Listen=: libevent's evhttp on the
 * event loop, serving GET (and HEAD) /metrics as the Prometheus text
 * exposition (stats.c makes it); any other path is 404, any other method
 * 405.  No client can stall the loop or grow the daemon's memory: the
 * request is parsed by evhttp with a 4 KiB limit on the request line and
 * headers and 1 KiB on a body (none is used); a connection idle, or sending slower than
 * one read or write a METRICS_TIMEOUT_S, is closed; at most
 * METRICS_MAX_CONN connections are open at once (libevent 2.1 has no
 * such limit: the listener is disabled while the limit is reached, so
 * further clients wait in the kernel's backlog, and the requests of a
 * client that keeps its connection are served one at a time).  A unix: socket is
 * created 0600 (a stale socket at the path is replaced) and removed when
 * the listener is closed.  Nothing secret is in the exposition.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "dcevents.h"

#define METRICS_MAX_CONN 16
#define METRICS_TIMEOUT_S 10
#define METRICS_MAX_HEADERS 4096
#define METRICS_MAX_BODY 1024 /* read, for a 405 rather than a 413 */
#define METRICS_BACKLOG 16
#define METRICS_REAP_MS 100
#define METRICS_SLOTS (METRICS_MAX_CONN + 64) /* with those shed */

struct metrics {
	struct event_base *base;
	struct evhttp *http;
	struct evconnlistener *listener;
	char *listen; /* Listen= as given */
	char *unix_path; /* to remove at close */
	/*
	 * The connections' bufferevents, each with a reference of ours;
	 * those over the limit (shed) are shut down at the next turn.
	 */
	struct bufferevent *conn[METRICS_SLOTS];
	int shed[METRICS_SLOTS];
	int nconn;
	struct event *reap; /* while connections are open: metrics_reap() */
	struct strbuf b; /* the exposition's buffer, reused */
};

/*
 * Count out the connections evhttp has freed, and shut down those over
 * the limit.  evhttp tells nothing when it frees a connection (libevent
 * 2.1 has no such callback); its bufferevent_free() clears the
 * callbacks, and our reference keeps the bufferevent to look at (evhttp
 * has shut the socket down for writing already: the client sees the end
 * at once).  Dropping our reference closes the socket.  The listener is
 * off while the limit is reached; it may have accepted a burst before
 * (libevent 2.1's listener accepts all that wait): those connections
 * are shut down, so that evhttp sees them end and frees them.
 */
static void
metrics_reap(struct metrics *m)
{
	int open = 0;

	for (int i = 0; i < m->nconn;) {
		bufferevent_data_cb r, w;
		bufferevent_event_cb e;

		bufferevent_getcb(m->conn[i], &r, &w, &e, NULL);
		if (r != NULL || e != NULL) {
			if (m->shed[i] && bufferevent_getfd(m->conn[i]) != -1) {
				shutdown(
				    bufferevent_getfd(m->conn[i]), SHUT_RDWR);
				m->shed[i] = 2;
			}
			open += m->shed[i] == 0;
			i++;
			continue;
		}
		bufferevent_decref(m->conn[i]);
		m->nconn--;
		m->conn[i] = m->conn[m->nconn];
		m->shed[i] = m->shed[m->nconn];
	}
	if (m->nconn == 0)
		event_del(m->reap);
	if (m->listener == NULL)
		return;
	if (open >= METRICS_MAX_CONN)
		evconnlistener_disable(m->listener);
	else
		evconnlistener_enable(m->listener);
}

static void
metrics_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	metrics_reap(arg);
}

/* evhttp's hook for each accepted connection's bufferevent: counted in. */
static struct bufferevent *
metrics_bev(struct event_base *base, void *arg)
{
	struct metrics *m = arg;
	struct bufferevent *b;
	struct timeval tv = tv_ms(METRICS_REAP_MS);
	int open = 0;

	for (int i = 0; i < m->nconn; i++)
		open += m->shed[i] == 0;
	/* NULL: evhttp makes one itself, not counted (closed by its own
	 * timeout); only when a burst outruns every slot. */
	if (m->nconn >= METRICS_SLOTS ||
	    (b = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) ==
		NULL)
		return NULL;
	bufferevent_incref(b);
	m->shed[m->nconn] = open >= METRICS_MAX_CONN;
	m->conn[m->nconn++] = b;
	if (open + 1 >= METRICS_MAX_CONN)
		evconnlistener_disable(m->listener);
	if (m->shed[m->nconn - 1])
		event_active(m->reap, EV_TIMEOUT, 0);
	event_add(m->reap, &tv);
	return b;
}

static void
metrics_request(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *path =
	    evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *out;

	if (path == NULL || strcmp(path, "/metrics") != 0) {
		evhttp_add_header(
		    h, "Content-Type", "text/plain; charset=utf-8");
		evbuffer_add_printf(evhttp_request_get_output_buffer(req),
		    "not found: the metrics are at /metrics\n");
		evhttp_send_reply(req, HTTP_NOTFOUND, "Not Found", NULL);
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(h, "Allow", "GET, HEAD");
		evhttp_send_reply(req, 405, "Method Not Allowed", NULL);
		return;
	}
	strbuf_reset(&m->b);
	stats_prometheus(&m->b);
	if (m->b.failed)
		fatal("out of memory");
	evhttp_add_header(
	    h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	out = evhttp_request_get_output_buffer(req);
	evbuffer_add(out, m->b.buf, m->b.len);
	evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

/* A listening socket for unix:PATH, 0600; -1 (said why) if none. */
static evutil_socket_t
metrics_unix_socket(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat sb;
	evutil_socket_t fd;
	mode_t old;
	int rc;

	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode))
		unlink(path); /* a stale socket, ours from before */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		 0)) == -1) {
		log_err("metrics: socket: %s", strerror(errno));
		return -1;
	}
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (rc == -1 || listen(fd, METRICS_BACKLOG) == -1) {
		log_err("metrics: cannot listen on unix:%s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* A listening socket for HOST:PORT; -1 (said why) if none. */
static evutil_socket_t
metrics_inet_socket(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	evutil_socket_t fd = -1;
	int rc, on = 1;

	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		log_err(
		    "metrics: cannot resolve %s: %s", host, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family,
	    res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, res->ai_protocol);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, METRICS_BACKLOG) == -1) {
		log_err("metrics: cannot listen on %s port %s: %s", host, port,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/*
 * The endpoint of c's Listen= (which is not "no"), listening; NULL (said
 * why) when it cannot be.
 */
struct metrics *
metrics_open(struct event_base *base, const struct conf *c)
{
	struct metrics *m;
	evutil_socket_t fd;

	fd = c->metrics_unix != NULL
	    ? metrics_unix_socket(c->metrics_unix)
	    : metrics_inet_socket(c->metrics_host, c->metrics_port);
	if (fd == -1)
		return NULL;
	if ((m = calloc(1, sizeof *m)) == NULL)
		fatal("out of memory");
	m->base = base;
	m->listen = strdup(c->metrics_listen);
	if (c->metrics_unix != NULL)
		m->unix_path = strdup(c->metrics_unix);
	m->http = evhttp_new(base);
	m->reap = event_new(base, -1, EV_PERSIST, metrics_reap_cb, m);
	m->listener = evconnlistener_new(base, NULL, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, METRICS_BACKLOG, fd);
	if (m->listen == NULL || (c->metrics_unix && m->unix_path == NULL) ||
	    m->http == NULL || m->reap == NULL || m->listener == NULL ||
	    evhttp_bind_listener(m->http, m->listener) == NULL)
		fatal("out of memory");
	evhttp_set_allowed_methods(m->http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
		EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
		EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, METRICS_MAX_BODY);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
	evhttp_set_bevcb(m->http, metrics_bev, m);
	evhttp_set_gencb(m->http, metrics_request, m);
	if (c->metrics_unix != NULL)
		log_info("metrics at unix:%s, GET /metrics", c->metrics_unix);
	else
		log_info("metrics at http://%s/metrics", c->metrics_listen);
	return m;
}

/* Listen= as this endpoint was opened with. */
const char *
metrics_listen(const struct metrics *m)
{
	return m->listen;
}

void
metrics_close(struct metrics *m)
{
	if (m == NULL)
		return;
	/* Frees the listener and the connections: ours go with them. */
	m->listener = NULL;
	evhttp_free(m->http);
	metrics_reap(m);
	event_free(m->reap);
	if (m->unix_path != NULL)
		unlink(m->unix_path);
	free(m->unix_path);
	free(m->listen);
	free(strbuf_finish(&m->b));
	free(m);
}
