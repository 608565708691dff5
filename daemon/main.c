/*
 * dcevents: hold the Docker Cloud events stream, write every event as a
 * structured journald/syslog record.  main only parses the command line,
 * loads the configuration and wires the subsystems to the event loop; as
 * the stream's owner it hands each end of the connection to the reconnect
 * policy (backoff.c) and the answer back to conn_retry().
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "dcevents.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONF SYSCONFDIR "/dcevents/dcevents.conf"

/* SIGTERM: out within 2 s whatever happens; the rest is for teardown. */
#define STOP_MS 1800
/* Of which the spool's, Mode=overflow: what the flush left goes to it. */
#define SPILL_MS 1300

static struct {
	struct event_base *base;
	struct evdns_base *dns;
	struct conn *conn;
	struct backoff backoff; /* the reconnect policy's state */
	struct conf *conf;
	struct json *json;
	struct output *output;
	struct spool *spool; /* NULL: [Spool] Mode=no */
	struct metrics *metrics; /* NULL: [Metrics] Listen=no */
	struct enrich *enrich; /* NULL: [Enrich] Lookup=no */
	int paused; /* by the outputs' queues, the spool and the enrichment FIFO */
	int stopping;
	struct timespec stop_at;
	const char *path;
	int path_given;
	char **overrides;
	size_t noverrides;
	int exit_status;
} dc;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: dcevents [-c FILE] [-o Section.Key=Value]... [-t] [-v]... "
	    "[-h] [-V]\n"
	    "  -c FILE   configuration file (default %s)\n"
	    "  -o S.K=V  override one key, e.g. -o Stream.URL=wss://h:8443/\n"
	    "            (a secret given this way is visible in the process "
	    "list)\n"
	    "  -t        check the configuration, print the effective "
	    "settings, exit\n"
	    "  -v        more diagnostics (repeatable)\n"
	    "  -h        this help\n"
	    "  -V        print the version\n",
	    DEFAULT_CONF);
}

/*
 * Keep our own copy of each -o (in secret memory: one may be the key) and
 * hide secrets from /proc/PID/cmdline.
 */
static void
save_override(char *arg)
{
	char **n;

	n = reallocarray(dc.overrides, dc.noverrides + 1, sizeof *n);
	if (n == NULL ||
	    (n[dc.noverrides] = secret_dup(arg, strlen(arg))) == NULL)
		fatal("out of memory");
	dc.overrides = n;
	dc.noverrides++;
	if (strncmp(arg, "Stream.APIKey", 13) == 0 && arg[13] != 'F') {
		char *eq = strchr(arg, '=');

		log_warn(
		    "-o Stream.APIKey: a key on the command line is "
		    "visible to other users; prefer APIKeyFile= or the apikey "
		    "credential");
		if (eq != NULL)
			explicit_bzero(eq + 1, strlen(eq + 1));
	}
}

/* libevent's own complaints go where ours go. */
static void
on_libevent_log(int severity, const char *msg)
{
	log_msg(severity >= EVENT_LOG_ERR    ? 3
		: severity == EVENT_LOG_WARN ? 4
					     : 7,
	    "libevent: %s", msg);
}

/*
 * The outputs (a full queue), the spool (MaxBytes) and the enrichment
 * FIFO pause reading.
 */
static void
on_pause(void *arg)
{
	if (dc.paused++ == 0 && dc.conn != NULL)
		conn_pause(dc.conn);
}

static void
on_resume(void *arg)
{
	if (dc.paused > 0 && --dc.paused == 0 && dc.conn != NULL)
		conn_resume(dc.conn);
	spool_resume(dc.spool);
}

/*
 * The parser's events go to the enrichment ([Enrich] Lookup=yes) or
 * straight to the outputs; a reload may switch between the two.  -1 if
 * the enrichment cannot be started.  h gets the parser's websocket
 * handler (the same whichever way: only where the events go changes).
 */
static int
wire_enrich(const struct conf *c, struct ws_handler *h)
{
	if (c->enrich && dc.enrich == NULL &&
	    (dc.enrich = enrich_new(dc.base, dc.dns, c, dc.output, on_pause,
		 on_resume, NULL)) == NULL)
		return -1;
	if (!c->enrich && dc.enrich != NULL) {
		enrich_free(dc.enrich);
		dc.enrich = NULL;
	}
	if (dc.enrich != NULL)
		json_handler(dc.json, h, enrich_event, dc.enrich);
	else
		json_handler(dc.json, h, output_event, dc.output);
	return 0;
}

/* What is left of the 2 s after SIGTERM, for flushing the outputs. */
static uint64_t
stop_left_ms(void)
{
	struct timespec now;
	uint64_t spent;

	clock_gettime(CLOCK_MONOTONIC, &now);
	spent = (uint64_t)(now.tv_sec - dc.stop_at.tv_sec) * 1000 +
	    (uint64_t)((now.tv_nsec - dc.stop_at.tv_nsec) / 1000000);
	return spent >= STOP_MS ? 0 : STOP_MS - spent;
}

/* The stream ended (not at stop): the policy says when to try again. */
static void
on_conn_end(void *arg, const struct conn_end *e)
{
	conn_retry(dc.conn, backoff_next(&dc.backoff, e, backoff_random()));
}

static void
on_stopped(void *arg)
{
	event_base_loopexit(dc.base, NULL);
}

static void
on_terminate(evutil_socket_t sig, short what, void *arg)
{
	struct timeval tv = { STOP_MS / 1000, STOP_MS % 1000 * 1000 };

	if (dc.stopping++)
		return;
	clock_gettime(CLOCK_MONOTONIC, &dc.stop_at);
	log_info("received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	notify_stopping();
	event_base_loopexit(dc.base, &tv);
	conn_stop(dc.conn, on_stopped, NULL);
}

/*
 * [Metrics] Listen= for c: *m is the endpoint to keep, or a new one when
 * Listen= changed (NULL for no); -1 (said why) when it cannot listen.
 */
static int
metrics_reopen(const struct conf *c, struct metrics **m)
{
	if (strcmp(c->metrics_listen,
		*m != NULL ? metrics_listen(*m) : "no") == 0)
		return 0;
	if (strcmp(c->metrics_listen, "no") == 0) {
		*m = NULL;
		return 0;
	}
	return (*m = metrics_open(dc.base, c)) == NULL ? -1 : 0;
}

/* SIGUSR1: the statistics record, now. */
static void
on_stats(evutil_socket_t sig, short what, void *arg)
{
	stats_record();
}

static void
reload_refused(void)
{
	char status[560], state[480];

	log_err("reload failed; keeping the previous configuration");
	conn_status_text(dc.conn, state, sizeof state);
	snprintf(status, sizeof status,
	    "Reload failed (previous configuration kept); %s", state);
	notify_ready(status);
}

/*
 * SIGHUP: a new configuration replaces the old only if it loads cleanly
 * and every output it asks for can be opened.
 */
static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct conf *next;
	struct metrics *metrics = dc.metrics;
	struct ws_handler unused;
	char status[560];
	int changed;

	notify_reloading();
	log_info("received SIGHUP, reloading %s", dc.path);
	if ((next = conf_load(dc.path, dc.path_given, dc.overrides,
		 dc.noverrides)) == NULL) {
		reload_refused();
		return;
	}
	changed = conf_stream_changed(dc.conf, next);
	secret_scrub(); /* it compared the keys */
	if (metrics_reopen(next, &metrics) == -1 ||
	    output_reconfigure(dc.output, next) == -1) {
		if (metrics != dc.metrics)
			metrics_close(metrics);
		conf_free(next);
		reload_refused();
		return;
	}
	if (metrics != dc.metrics) {
		metrics_close(dc.metrics);
		dc.metrics = metrics;
	}
	stats_reconfigure(next);
	if (dc.enrich != NULL && next->enrich)
		enrich_reconfigure(dc.enrich, next);
	if (wire_enrich(next, &unused) == -1)
		log_err("enrichment could not be started; events go out "
			"without it");
	spool_reconfigure(dc.spool, next);
	if (changed)
		dc.backoff.attempt = 0;
	conn_reconfigure(dc.conn, next, changed);
	conf_free(dc.conf);
	dc.conf = next;
	log_info("configuration reloaded%s",
	    changed ? "; stream settings changed" : "");
	conn_status_text(dc.conn, status, sizeof status);
	notify_ready(status);
}

int
main(int argc, char *argv[])
{
	struct ws_handler handler;
	struct event *sigs[4];
	char status[512];
	int ch, test = 0, verbosity = 0;
	uint64_t flush_ms;
	size_t left;

	dc.path = DEFAULT_CONF;
	log_init(0);
	while ((ch = getopt(argc, argv, "c:o:tvhV")) != -1) {
		switch (ch) {
		case 'c':
			dc.path = optarg;
			dc.path_given = 1;
			break;
		case 'o':
			save_override(optarg);
			break;
		case 't':
			test = 1;
			break;
		case 'v':
			verbosity++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("dcevents %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_CONFIG;
		}
	}
	if (optind != argc) {
		log_err("unexpected argument \"%s\"", argv[optind]);
		usage(stderr);
		return EXIT_CONFIG;
	}
	log_set_verbosity(verbosity);
	if (conf_take_environment() == -1) {
		log_err("out of memory");
		return EXIT_FATAL;
	}

	if ((dc.conf = conf_load(
		 dc.path, dc.path_given, dc.overrides, dc.noverrides)) == NULL)
		return EXIT_CONFIG;
	if (test) {
		conf_print(dc.conf, stdout);
		conf_free(dc.conf);
		return ferror(stdout) ? EXIT_CONFIG : 0;
	}

	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(on_libevent_log);
	/* Locks for libevent; the output threads wake the loop through an
	 * eventfd (queue.c), never through the base. */
	if (evthread_use_pthreads() == -1 ||
	    (dc.base = event_base_new()) == NULL) {
		log_err("cannot create the event loop");
		return EXIT_FATAL;
	}
	sigs[0] = evsignal_new(dc.base, SIGTERM, on_terminate, NULL);
	sigs[1] = evsignal_new(dc.base, SIGINT, on_terminate, NULL);
	sigs[2] = evsignal_new(dc.base, SIGHUP, on_reload, NULL);
	sigs[3] = evsignal_new(dc.base, SIGUSR1, on_stats, NULL);
	for (size_t i = 0; i < 4; i++) {
		if (sigs[i] == NULL || evsignal_add(sigs[i], NULL) == -1) {
			log_err("cannot install signal handlers");
			return EXIT_FATAL;
		}
	}
	if (notify_watchdog_start(dc.base) == -1)
		return EXIT_FATAL;
	dc.dns = evdns_base_new(dc.base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS |
		EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (dc.dns == NULL) {
		/* No resolv.conf: addresses and /etc/hosts still work. */
		log_warn("no DNS configuration; only /etc/hosts and addresses");
		dc.dns =
		    evdns_base_new(dc.base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	}
	/* An output that cannot be opened (it said why): as before, 2. */
	dc.output = output_new(dc.base, dc.conf, on_pause, on_resume, NULL);
	if (dc.output == NULL)
		return EXIT_FATAL;
	record_set_handler(output_daemon, dc.output);
	/* [Metrics]: the counters' sources, the endpoint, the timer. */
	stats_start(dc.base, dc.output, dc.conf);
	if (metrics_reopen(dc.conf, &dc.metrics) == -1)
		return EXIT_FATAL;
	/* The data path, wired once: websocket -> JSON -> outputs. */
	/* The data path: websocket -> JSON -> [enrichment ->] outputs. */
	if ((dc.json = json_new()) == NULL) {
		log_err("out of memory");
		return EXIT_FATAL;
	}
	if (wire_enrich(dc.conf, &handler) == -1)
		return EXIT_FATAL;
	/*
	 * Mode=always: websocket -> spool (committed) -> JSON -> outputs;
	 * overflow: outputs -> spool when they cannot keep up.
	 */
	if (dc.conf->spool_mode != SPOOL_NO)
		dc.spool = spool_open(dc.base, dc.conf, dc.output, &handler,
		    on_pause, on_resume, NULL);
	if (dc.dns == NULL ||
	    (dc.conn = conn_new(dc.base, dc.dns, &handler, on_conn_end,
		 NULL)) == NULL) {
		log_err("cannot set up the connection");
		return EXIT_FATAL;
	}
	stats_set_spool(dc.spool);
	if (dc.spool != NULL)
		spool_replay(dc.spool);
	if (conn_start(dc.conn, dc.conf) == -1)
		return EXIT_CONFIG;

	log_info("dcevents %s started", PACKAGE_VERSION);
	conn_status_text(dc.conn, status, sizeof status);
	notify_ready(status);
	if (event_base_dispatch(dc.base) == -1) {
		log_err("event loop failed: %s", strerror(errno));
		dc.exit_status = EXIT_FATAL;
	}

	notify_watchdog_stop();
	conn_free(dc.conn);
	dc.conn = NULL; /* the stop below may still pause or resume reading */
	metrics_close(dc.metrics);
	stats_stop();
	/* The turn's messages go on; the flush; what is left, spooled. */
	spool_stop(dc.spool);
	enrich_free(dc.enrich); /* its waiting events to the outputs */
	record_set_handler(NULL, NULL);
	flush_ms = dc.stopping ? stop_left_ms() : 1000;
	if (dc.spool != NULL && dc.conf->spool_mode == SPOOL_OVERFLOW)
		flush_ms = flush_ms > SPILL_MS ? flush_ms - SPILL_MS : 0;
	left = output_stop(dc.output, flush_ms);
	/* The positions, after the flush: what it wrote is not written again. */
	stats_set_spool(NULL);
	spool_close(dc.spool);
	output_close(dc.output, 0);
	if (left > 0)
		log_err(
		    "%zu records could not be written before the exit", left);
	json_free(dc.json);
	evdns_base_free(dc.dns, 0);
	for (size_t i = 0; i < 4; i++)
		event_free(sigs[i]);
	event_base_free(dc.base);
	conf_free(dc.conf);
	for (size_t i = 0; i < dc.noverrides; i++)
		secret_free(dc.overrides[i]);
	free(dc.overrides);
	log_info("stopped");
	return dc.exit_status;
}
