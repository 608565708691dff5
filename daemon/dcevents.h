/*
 * dcevents: Docker Cloud events to journald and syslog.
 * One project header; each block lists what one .c file offers.
 */
#ifndef DCEVENTS_H
#define DCEVENTS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sys/time.h>

#include <time.h>

struct event_base;

/* Monotonic milliseconds (coarse: timers here are tens of ms and more). */
static inline uint64_t
clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wall clock milliseconds, coarse. */
static inline uint64_t
clock_realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A timeval for event_add() from milliseconds. */
static inline struct timeval
tv_ms(uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
		(suseconds_t)(ms % 1000 * 1000) };

	return tv;
}

/*
 * Exit statuses besides 0: 1 for a usage or configuration error, 2 for a
 * fatal run-time error (dcevents(8), EXIT STATUS).
 */
#define EXIT_CONFIG 1
#define EXIT_FATAL 2

/* log.c */
void log_init(int verbosity);
void log_set_verbosity(int verbosity);
int log_get_verbosity(void);
int log_is_journal_stream(void);
void log_msg(int priority, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(int priority, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Broken invariants and out of memory only: logs, exits EXIT_FATAL. */
void fatal(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
#define log_err(...) log_msg(3, __VA_ARGS__)
#define log_warn(...) log_msg(4, __VA_ARGS__)
#define log_notice(...) log_msg(5, __VA_ARGS__)
#define log_info(...) log_msg(6, __VA_ARGS__)
#define log_debug(...) log_msg(7, __VA_ARGS__)

/* conf.c */
enum syslog_mode {
	SYSLOG_NO,
	SYSLOG_LOCAL,
	SYSLOG_UDP,
	SYSLOG_TCP,
	SYSLOG_TLS,
	SYSLOG_RELP, /* RELP over TCP: acknowledged records */
	SYSLOG_RELP_TLS
};

enum cred_source {
	CRED_NONE,
	CRED_APIKEY, /* APIKey= */
	CRED_APIKEYFILE, /* APIKeyFile= */
	CRED_SYSTEMD, /* $CREDENTIALS_DIRECTORY/apikey */
	CRED_ENV_AUTH, /* $DOCKERCLOUD_AUTH, sent verbatim */
	CRED_ENV_APIKEY, /* $DOCKERCLOUD_APIKEY */
};

enum spool_mode {
	SPOOL_NO,
	SPOOL_OVERFLOW, /* memory first; to the spool when it cannot keep up */
	SPOOL_ALWAYS /* every event committed before the outputs see it */
};

/* One [Priority] rule: "TYPE.STATE", "TYPE" or "Default". */
struct conf_prio {
	char *key;
	int priority;
};

struct conf {
	/* [Stream] */
	char *url;
	int secure; /* wss:// */
	char *host; /* from url, without brackets */
	char *port;
	char *path; /* from url, at least "/" */
	char *ns;
	char *user;
	char *apikey_file;
	char *type;
	char *object;
	char *parent;
	char *cafile;
	char *capath;
	int allow_insecure;
	uint64_t connect_timeout_ms;
	uint64_t ping_interval_ms;
	uint64_t pong_timeout_ms;
	uint64_t backoff_min_ms;
	uint64_t backoff_max_ms;
	uint64_t backoff_reset_ms; /* connected this long resets the backoff */
	uint64_t auth_backoff_ms;
	uint64_t max_message_bytes;

	/* [Output] */
	int journal;
	char *syslog;
	enum syslog_mode syslog_mode;
	char *syslog_host;
	char *syslog_port;
	int syslog_facility; /* facility number, 0..23 */
	char *syslog_cafile; /* the collector's trust anchors, not [Stream]'s */
	char *syslog_capath;
	int stdout_json;
	char *identifier;
	uint64_t queue_max;
	uint64_t queue_max_bytes;

	/* [Spool] */
	enum spool_mode spool_mode;
	char *spool_mode_name;
	char *spool_path; /* resolved: "" only when spool_mode == SPOOL_NO */
	uint64_t spool_max_bytes;
	int spool_drop_oldest; /* WhenFull=drop-oldest */
	char *spool_when_full_name;

	/* [Metrics] */
	char *metrics_listen; /* "no": off; "HOST:PORT" or "unix:PATH" */
	char *metrics_host, *metrics_port; /* HOST:PORT; else NULL */
	char *metrics_unix; /* unix:PATH; else NULL */
	uint64_t stats_interval_ms; /* 0: no periodic statistics record */
	/* [Enrich] */
	int enrich; /* Lookup=yes */
	char *enrich_url;
	int enrich_secure; /* https:// */
	char *enrich_host, *enrich_port;
	char *enrich_path; /* from enrich_url, without a trailing '/' */
	uint64_t enrich_concurrency;
	uint64_t enrich_cache_entries;
	uint64_t enrich_cache_ttl_ms;
	uint64_t enrich_timeout_ms;
	char *enrich_fields_text; /* Fields= as written */
	char **enrich_fields; /* the members, each on enrich.c's allow-list */
	size_t nenrich_fields;
	/* [Kafka]: enabled when kafka_brokers is not empty */
	char *kafka_brokers;
	char *kafka_topic;
	char *kafka_password_file;
	char **kafka_options; /* "KEY=VALUE", in order */
	char **kafka_option_origins; /* "file:line" of each */
	size_t nkafka_options;
	char *kafka_password; /* sasl.password, secret memory; NULL: none */
	char *kafka_password_origin;

	/* [Priority] */
	struct conf_prio *prio;
	size_t nprio;

	/* Credentials, resolved after loading; the secret lives in memory
	 * excluded from core dumps. */
	enum cred_source cred_source;
	char *cred_origin; /* file the key came from, if any */
	char *secret; /* API key, or the verbatim DOCKERCLOUD_AUTH */

	/*
	 * [Stream] Proxy=, NoProxy=, ProxyPasswordFile= as written, and what
	 * they resolve to with the environment (proxy.c): the proxy (NULL:
	 * direct) and the hosts reached directly (NULL: none).
	 */
	char *proxy_setting;
	char *noproxy_setting;
	char *proxy_password_file;
	struct proxy *proxy;
	struct noproxy *noproxy;
	char *noproxy_origin; /* "NoProxy=" or "$no_proxy" */
	char *noproxy_text;

	/* Where each explicitly set key came from, for -t and errors. */
	char **origin;
};

int conf_take_environment(void);
int conf_hostport(const char *, size_t, const char *defport, char **host,
    char **port);
struct conf *conf_load(const char *path, int path_given, char *const *overrides,
    size_t noverrides);
void conf_free(struct conf *);
void conf_print(const struct conf *, FILE *);
int conf_stream_changed(const struct conf *, const struct conf *);
int conf_parse_duration(const char *, uint64_t *);
int conf_parse_priority(const char *);
const char *conf_priority_name(int);
int conf_priority_for(
    const struct conf *, const char *type, const char *state, int fallback);

#include "strbuf.h"

/* secret.c: memory kept out of core dumps and wiped when freed */
char *secret_alloc(size_t len);
char *secret_dup(const char *, size_t);
void secret_free(char *);
void secret_unsetenv(const char *name);
void secret_scrub(void);
void secret_ref_done(const void *, size_t, void *secret);

/* backoff.c: the daemon's reconnect policy */
struct conn_end;
struct backoff {
	unsigned attempt; /* failures since the last good connection */
};
uint64_t backoff_delay(
    unsigned attempt, uint64_t min_ms, uint64_t max_ms, uint32_t rnd);
unsigned backoff_after_connection(
    unsigned attempt, uint64_t up_ms, uint64_t reset_ms);
uint64_t backoff_next(struct backoff *, const struct conn_end *, uint32_t rnd);
uint32_t backoff_random(void);

/* handshake.c */
#define HS_KEY_LEN 24
#define HS_ACCEPT_LEN 28
#define HS_MAX_HEADER 16384
enum { HS_FAILED = -1, HS_INCOMPLETE = 0, HS_OK = 1 };
struct hs_reply {
	int status; /* HTTP status, 0 if none was parsed */
	size_t header_len; /* bytes of header, including the empty line */
	uint64_t retry_after_ms;
	const char *error; /* why the upgrade failed */
	const char *status_line; /* into the buffer parsed, without CRLF */
	size_t status_len;
};
char *handshake_target(const struct conf *);
int handshake_key(char out[HS_KEY_LEN + 1]);
void handshake_accept(const char *key, char out[HS_ACCEPT_LEN + 1]);
char *handshake_request(const struct conf *, const char *key, size_t *len);
char *handshake_request_for(
    const struct conf *, const char *target, const char *key, size_t *len);
char *handshake_authorization(const struct conf *);
int handshake_parse(
    const char *, size_t, const char *accept, struct hs_reply *);
int http_reply_parse(const char *, size_t, struct hs_reply *,
    const char *(*header)(void *, struct hs_reply *, const char *name,
	size_t nlen, const char *v, size_t vlen),
    void *arg);
size_t http_basic_len(const char *name, const char *user, const char *secret);
char *http_put_basic(
    char *p, const char *name, const char *user, const char *secret);
int http_has_token(const char *v, size_t n, const char *tok);
uint64_t http_retry_after(const char *v, size_t n);

/* http.c: the REST lookups' GET and its response (enrich.c). */
struct http_response {
	int status;
	int keep_alive; /* the connection may carry the next request */
	int chunked;
	int64_t length; /* Content-Length, -1 if none */
	uint64_t retry_after_ms; /* Retry-After (delta-seconds), 0 if none */
	size_t body_at; /* where the body starts (not chunked) */
	size_t body_len;
	size_t total; /* bytes of the whole response */
	const char *error;
};
int http_response_parse(const char *, size_t, int eof, size_t max,
    char *body, struct http_response *);
char *http_get_request(
    const char *target, const char *head, const char *auth, size_t *len);

/*
 * record.c: the daemon's own records (connected, gap, ...), the bottom
 * layer: a MESSAGE_ID, a PRIORITY, "NAME=value" fields and a MESSAGE,
 * handed to whatever main connected (the outputs); then stderr.
 */
#define MID_CONNECTED "bdace055097d4cc48dc3b8b792fbc725"
#define MID_DISCONNECTED "38184290f3a3499086be39d203fde25b"
#define MID_STOPPED "7abf53f483014b369b7d82db768204e1" /* no reconnect */
#define MID_AUTH_FAILED "cba63e78576c4bcf820141e7503c6c48"
#define MID_GAP "f350ea289b1547a999e14d8ce0e8ca01"
#define MID_QUEUE_FULL "800f69b9c70e4e7188b752d750e3d9a9"
#define MID_PARSE_ERROR "f8052b8f3c11438a8b8e76367d667c46"
#define MID_LOSS "3c380b4657f7480b99a4beb917a16e15"
#define RECORD_MESSAGE_MAX 1024 /* bytes of MESSAGE, with its NUL */
/*
 * Where the records go: returns 1 when the journal has the record already
 * (then stderr, the journal stream under systemd, does not repeat it).
 */
typedef int (*record_handler)(void *arg, const char *mid, int priority,
    const char *const *fields, const char *message);
void record_set_handler(record_handler, void *arg);
void record_daemon(const char *mid, int priority, const char *const *fields,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ws.c */
struct bufferevent;
struct ws;
/* Where the bytes of each received data message go, chunk by chunk. */
struct ws_handler {
	void (*begin)(void *arg);
	void (*data)(void *arg, const uint8_t *, size_t);
	void (*end)(void *arg);
	void (*abort)(void *arg); /* the message will not be completed */
	void *arg;
};
/* Called once when the websocket is finished; reason says why. */
typedef void (*ws_done_cb)(void *arg, const char *reason);
struct ws *ws_new(struct event_base *, struct bufferevent *,
    const struct conf *, const struct ws_handler *, ws_done_cb, void *arg);
void ws_input(struct ws *);
void ws_close(struct ws *, uint16_t code, const char *reason);
void ws_free(struct ws *);
void ws_suspend(struct ws *, int);
uint64_t ws_messages(const struct ws *);
int ws_send(struct ws *, uint8_t opcode, const void *, size_t);
int ws_opcode(const struct ws *);
void ws_close_codes(const struct ws *, uint16_t *sent, uint16_t *received);

/* tls.c: the TLS client setup of the stream and the syslog output */
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
SSL_CTX *tls_client_ctx(
    const char *cafile, const char *capath, char *err, size_t);
int tls_client_setup(SSL *, const char *host, char *err, size_t);
int tls_verify_error(const SSL *, char *, size_t);
int tls_ip_literal(const char *host);

/*
 * proxy.c: HTTP CONNECT proxies, for the stream and any other connection:
 * proxy_for() says which proxy (NULL: none) a connection to host:port
 * uses; proxy_tunnel_start() makes the tunnel over a bufferevent already
 * connected to that proxy and calls back once with the outcome.
 */
struct proxy {
	int secure; /* https://: TLS to the proxy, verified like the stream */
	char *host, *port; /* host without brackets */
	char *user; /* "" for none */
	char *password; /* secret memory; NULL for none */
	char *url; /* scheme://[USER@]HOST:PORT/, never the password */
	char *origin; /* "Proxy=" or "$https_proxy", for -t */
	char *password_origin; /* where the password came from, for -t */
};
struct noproxy;
struct bufferevent;
enum proxy_result {
	PROXY_OK, /* 2xx: the tunnel is up */
	PROXY_AUTH, /* 407, or 401: the proxy refused the credentials */
	PROXY_REFUSED, /* another HTTP status */
	PROXY_FAILED /* no HTTP answer: garbage, too long, closed, error */
};
struct proxy_done {
	enum proxy_result result;
	int status; /* the HTTP status, 0 if none */
	const char *why; /* for the record; names the proxy */
	const char *status_line; /* escaped, "" if none */
};
typedef void (*proxy_tunnel_cb)(void *arg, const struct proxy_done *);
struct proxy_tunnel;
int proxy_take_environment(void);
const char *proxy_environment(const char **name);
const char *proxy_noproxy_environment(const char **name);
struct proxy *proxy_parse(const char *url, int password_ok, const char **why);
void proxy_free(struct proxy *);
struct noproxy *proxy_noproxy_parse(const char *, char *err, size_t);
void proxy_noproxy_free(struct noproxy *);
int proxy_noproxy_match(
    const struct noproxy *, const char *host, const char *port);
const struct proxy *proxy_for(
    const struct conf *, const char *host, const char *port);
char *proxy_request(
    const struct proxy *, const char *host, const char *port, size_t *len);
int proxy_reply_parse(const char *, size_t, struct hs_reply *);
struct proxy_tunnel *proxy_tunnel_start(struct bufferevent *,
    const struct proxy *, const char *host, const char *port,
    proxy_tunnel_cb, void *arg);
void proxy_tunnel_free(struct proxy_tunnel *);

/* conn.c */
struct conn;
struct evdns_base;
/* How an attempt or connection ended, for its owner. */
enum conn_end_kind {
	CONN_FAILED, /* before the websocket was open */
	CONN_AUTH, /* 401, 403 or 429 instead of the upgrade */
	CONN_LOST /* the open websocket ended */
};
struct conn_end {
	enum conn_end_kind kind;
	const char *why;
	const struct conf *conf; /* the settings it ran with */
	int http_status; /* CONN_AUTH */
	const char *proxy; /* CONN_AUTH: the proxy refused (its URL), or NULL */
	uint64_t retry_after_ms; /* CONN_AUTH: Retry-After, 0 if none */
	uint64_t up_ms; /* CONN_LOST: how long it was open */
	int reconnect; /* CONN_LOST: closed for new settings, go on at once */
	uint16_t close_sent, close_received; /* CONN_LOST: 0 if none */
};
typedef void (*conn_end_cb)(void *arg, const struct conn_end *);
struct conn *conn_new(struct event_base *, struct evdns_base *,
    const struct ws_handler *, conn_end_cb, void *arg);
int conn_start(struct conn *, const struct conf *);
void conn_retry(struct conn *, uint64_t delay_ms);
void conn_reconfigure(struct conn *, const struct conf *, int changed);
void conn_stop(struct conn *, void (*done)(void *), void *arg);
void conn_free(struct conn *);
void conn_pause(struct conn *);
void conn_resume(struct conn *);
int conn_set_target(struct conn *, const char *target);
struct ws *conn_ws(struct conn *);
void conn_status_text(const struct conn *, char *, size_t);

/* json.c: one event, filled chunk by chunk from one message */
#define EVENT_MAX_PARENTS 64
#define EVENT_MAX_EXTRAS 32
#define JSON_MAX_DEPTH 32
#define JSON_EXCERPT 48
struct span {
	uint32_t off; /* into event.buf; SPAN_NONE if absent */
	uint32_t len;
};
#define SPAN_NONE UINT32_MAX

/*
 * enrich.c: what a GET of an event's resource_uri found, kept in its
 * cache entry; struct dc_event points at it (obj, up) while the outputs
 * format the event.  Every span is into buf.
 */
#define ENRICH_MAX_FIELDS 16
#define ENRICH_MAX_UP 4 /* parents' names: service, stack, node, cluster */
#define ENRICH_MAX_CONCURRENCY 64
struct enriched {
	struct strbuf buf;
	struct span type; /* from the URI: container, service, ... */
	struct span name; /* name, or a node's external_fqdn */
	struct span image; /* image_name */
	struct {
		struct span name, value; /* name: a Fields= member */
		int raw; /* a number or boolean, not a string */
	} fields[ENRICH_MAX_FIELDS];
	unsigned nfields;
};

struct dc_event {
	struct strbuf buf; /* every decoded string of the event */
	struct span type, action, state, uuid, resource_uri, datetime, error;
	struct span parents[EVENT_MAX_PARENTS];
	unsigned nparents;
	int has_parents; /* a parents array was sent, maybe empty */
	struct {
		struct span name, value;
		int raw; /* a number or boolean, not a string */
		int in_data; /* a member of the object "data" */
	} extras[EVENT_MAX_EXTRAS];
	unsigned nextras;
	unsigned dropped; /* parents or members over the limits */
	/* enrich.c, [Enrich] Lookup=yes: the object and parents looked up */
	const struct enriched *obj; /* NULL: none (always with Lookup=no) */
	const struct enriched *up[ENRICH_MAX_UP]; /* parents in the cache */
	unsigned nup;
};
struct json;
struct json *json_new(void);
void json_free(struct json *);
void json_begin(struct json *);
void json_feed(struct json *, const uint8_t *, size_t);
const struct dc_event *json_end(
    struct json *, const char **why, const char **excerpt);
struct ws_handler;
void json_handler(struct json *, struct ws_handler *,
    void (*to)(void *, const struct dc_event *), void *arg);
static inline const char *
ev_str(const struct dc_event *e, struct span s)
{
	return s.off == SPAN_NONE ? NULL : e->buf.buf + s.off;
}

/*
 * enrich.c: [Enrich] Lookup=yes, between the parser and the outputs: each
 * event's object looked up (cached) and the event held in order until its
 * lookup is done or TimeoutSec= has passed.
 */
#define ENRICH_MAX_BODY (256 * 1024)
const char *enrich_field_refused(const char *name, size_t len);
struct enrich;
struct output;
struct enrich *enrich_new(struct event_base *, struct evdns_base *,
    const struct conf *, struct output *, void (*pause)(void *),
    void (*resume)(void *), void *arg);
void enrich_event(void *enrich, const struct dc_event *);
void enrich_reconfigure(struct enrich *, const struct conf *);
void enrich_free(struct enrich *);
uint64_t enrich_lookups(int result);
size_t enrich_waiting(const struct enrich *);
/* The body parser (exported for the unit tests and the fuzzer). */
int enrich_parse(const struct conf *, const char *type, size_t tlen,
    const void *body, size_t n, struct enriched *, const char **why);
void enrich_clear(struct enriched *);

static inline const char *
ev_str_of(const struct strbuf *b, struct span s)
{
	return s.off == SPAN_NONE ? NULL : b->buf + s.off;
}

/* event.c */
const char *dc_event_message_id(const struct dc_event *);
int dc_event_default_priority(const struct dc_event *);
int dc_event_priority(const struct conf *, const struct dc_event *);
struct span dc_event_object_uuid(const struct dc_event *);
void dc_event_message(const struct dc_event *, struct strbuf *);
int dc_event_field_name(const char *, size_t, int in_data, char out[65]);
int dc_event_enriched_name(const char *prefix, const char *name, size_t n,
    const char *suffix, char out[65]);
struct dedup;
struct dedup *dedup_new(void);
void dedup_free(struct dedup *);
int dedup_seen(struct dedup *, const char *, size_t);
void dedup_each(const struct dedup *, void (*)(void *, uint64_t), void *);
void dedup_restore(struct dedup *, uint64_t);

/*
 * queue.c: a bounded queue of records and its writer thread, one per
 * output.  A record is what an output writes: one journal entry, one
 * syslog message, one JSON line, as bytes ready to go.
 */
struct record {
	struct record *next;
	uint64_t spool_id; /* the event's row in the spool; 0: none */
	int acked; /* acknowledged outputs: stored (queue_acked()) */
	int64_t spill_seq; /* the record's row in the spool's spill; 0: none */
	size_t len;
	unsigned char data[];
};
struct queue;
struct queue_ops {
	/* Write some of recs[0..n): how many were taken whole, or -1. */
	int (*write)(void *arg, struct record **recs, size_t n);
	void (*reset)(void *arg); /* after a failure: reconnect next time */
	const char *(*error)(void *arg);
	void (*close)(void *arg);
	/*
	 * Optional, on the loop when nothing waits and the output is up:
	 * send r at once without blocking (0), or leave it to the queue (-1).
	 */
	int (*send_now)(void *arg, const struct record *r);
	/*
	 * Optional: an output whose writes are acknowledged later (Kafka).
	 * start is called on the loop before the writer starts, with the
	 * queue it reports to: write() then only hands records over, and
	 * each stays queued until the output calls queue_acked(r) on the
	 * loop (queue_failed() says it is down meanwhile).  drain, at the
	 * stop once the writer has ended, waits at most ms for the
	 * acknowledgements, calling queue_acked() on the caller's thread.
	 */
	int (*start)(void *arg, struct event_base *, struct queue *);
	void (*drain)(void *arg, uint64_t ms);
};
struct queue;
struct record *record_new(size_t len);
struct record *record_from(const struct strbuf *);
#define QUEUE_FULL_COUNT 1
#define QUEUE_FULL_BYTES 2
/* What a queue tells its owner, on the loop. */
#define QUEUE_ROOM 1 /* below half again (after full or queue_watch()) */
#define QUEUE_DOWN 2 /* the output failed (reported) */
#define QUEUE_WRITTEN 3 /* records from the spool were written */
struct queue *queue_new(struct event_base *, const char *name, size_t stat,
    const struct queue_ops *, void *arg, size_t max, size_t max_bytes,
    void (*notify)(void *, int), void *notify_arg);
int queue_push(struct queue *, struct record *);
size_t queue_queued(struct queue *, size_t *bytes);
size_t queue_sample(
    struct queue *, size_t *bytes, void (*fn)(void *), void *arg);
#define RECORD_IOV 256 /* records per record_writev() */
int record_writev(int fd, struct record **, size_t n);
void queue_stop(struct queue *, uint64_t ms);
void queue_acked(struct queue *, struct record *);
void queue_failed(struct queue *, const char *why);
void queue_rewind(struct queue *);
uint64_t queue_written_id(struct queue *, int64_t *seq);
void queue_watch(struct queue *);
void queue_join(struct queue *, uint64_t ms);
size_t queue_unwritten(struct queue *,
    void (*fn)(void *, const struct record *), void *arg);
size_t queue_close(struct queue *, uint64_t ms);

/*
 * An output: where records go, and how they are made.  Each output is
 * one file (output_journal.c, output_syslog.c, output_stdout.c) that
 * exports one const struct output_type; output.c's table lists them.
 */
struct output_type {
	const char *name;
	int (*enabled)(const struct conf *);
	/* On a reload: must it be opened again for c (NULL: never)? */
	int (*reopen)(const struct conf *old, const struct conf *c);
	/* Its state, the queue's arg; NULL (said why) if it cannot be. */
	void *(*open)(const struct conf *);
	int needs_message; /* uses MESSAGE: built once per event, shared */
	int journal; /* the journal itself (stderr's twin under systemd) */
	/* One event; b is empty, the record is what b holds after. */
	void (*format_event)(const struct conf *, const struct dc_event *,
	    int priority, const char *mid, const char *msg, size_t mlen,
	    struct strbuf *b);
	/* One of the daemon's own records; NULL: not written there. */
	void (*format_daemon)(const struct conf *, const char *mid,
	    int priority, const char *const *fields, const char *message,
	    struct strbuf *b);
	struct queue_ops ops;
};
extern const struct output_type journal_output;
extern const struct output_type syslog_output;
extern const struct output_type stdout_output;
#ifdef HAVE_KAFKA
extern const struct output_type kafka_output;
/* output_kafka.c: one Option= value; -1 with why in err if refused. */
int kafka_option_check(const char *kv, char *err, size_t);
#endif

/* output.c: events to records for every enabled output */
struct output;
struct output *output_new(struct event_base *, const struct conf *,
    void (*pause)(void *), void (*resume)(void *), void *arg);
int output_reconfigure(struct output *, const struct conf *);
void output_event(void *output, const struct dc_event *);
int output_daemon(void *output, const char *mid, int priority,
    const char *const *fields, const char *message);
size_t output_close(struct output *, uint64_t ms);
/* For the spool: the next events' spool id; acked[i] skips output i. */
void output_set_spool_id(struct output *, uint64_t id, const uint64_t *acked);
uint64_t output_get_spool_id(struct output *, const uint64_t **acked);
size_t output_take_uuid(struct output *, const char **uuid);
void output_seen(struct output *, const char *uuid, size_t n);
void output_ring_each(struct output *, void (*)(void *, uint64_t), void *);
void output_ring_restore(struct output *, uint64_t);
size_t output_count(void);
const char *output_name(size_t i);
int output_is_open(const struct output *, size_t i);
uint64_t output_written_id(struct output *, size_t i, int64_t *seq);
size_t output_sample(struct output *, size_t i, size_t *bytes,
    void (*fn)(void *), void *arg);
/* The spool below the outputs (Mode=overflow; and what it holds). */
struct spill_ops {
	int (*put)(void *, size_t i, struct record *); /* 0: taken, or -1 */
	int (*refill)(void *, size_t i, int all); /* 1: holds no more */
	int (*usable)(void *);
	void (*written)(void *); /* spooled records were written */
	/* At stop: n records of output i to keep, each, then -1 if not. */
	int (*keep_begin)(void *, size_t i, size_t n);
	void (*keep)(void *, size_t i, const struct record *);
	int (*kept)(void *, size_t i);
};
void output_set_spill(struct output *, const struct spill_ops *, void *,
    int overflow, const int *spilling);
int output_load(struct output *, size_t i, struct record *);
void output_unspill(struct output *);
void output_respill(struct output *);
int output_paused(const struct output *);
size_t output_stop(struct output *, uint64_t ms);

/*
 * spool.c: the [Spool] database (SQLite): each received message is
 * committed before the outputs see it; what they wrote is acknowledged.
 */
#define MID_SPOOL_DAMAGED "19baf2d41ff24376853a84cd6fecc884"
#define MID_SPOOL_DROPPED "2340ebd085994d41aa383b4ce2e064c9"
#define MID_SPOOL_FAILED "2c9da980968c40bcbc2f8a32808b26b5"
#define MID_SPOOL_BACK "33ab4ad4e72a4417bf253413f58f8e25"
struct spool;
struct spool *spool_open(struct event_base *, const struct conf *,
    struct output *, struct ws_handler *inner, void (*pause)(void *),
    void (*resume)(void *), void *arg);
void spool_replay(struct spool *);
void spool_resume(struct spool *);
void spool_reconfigure(struct spool *, const struct conf *);
void spool_stop(struct spool *);
void spool_close(struct spool *);
uint64_t spool_records(const struct spool *);
uint64_t spool_bytes(const struct spool *);
uint64_t spool_dropped(const struct spool *);

/* syslog_format.c: the syslog records (output_syslog.c sends them) */
void syslog_format(const struct conf *, const struct dc_event *, int priority,
    const char *message, size_t mlen, struct strbuf *);
void syslog_format_daemon(const struct conf *, int priority, const char *msgid,
    const char *message, struct strbuf *);

/* relp.c: RELP frames */
#define RELP_IN_MAX 4096 /* longest answer taken */
struct relp_frame {
	unsigned long txnr;
	char cmd[32];
	const char *data;
	size_t len; /* of data */
	size_t size; /* of the whole frame */
};
unsigned long relp_next_txnr(unsigned long);
void relp_frame_add(struct strbuf *, unsigned long txnr, const char *cmd,
    const void *data, size_t len);
const char *relp_answer_check(const struct relp_frame *, unsigned long txnr,
    char *why, size_t n);
int relp_frame_parse(const char *, size_t, struct relp_frame *);

/*
 * Exported for the unit tests and the fuzzers only: the daemon itself
 * reaches these through the functions above.
 */
void syslog_format_within(const struct conf *, const struct dc_event *,
    int priority, const char *message, size_t mlen, size_t max,
    struct strbuf *);
void stdout_format(const struct conf *, const struct dc_event *, struct strbuf *);

/*
 * stats.c: the daemon's counters, one table of metric families
 * (README, "Metrics"), every series present from start-up at 0.
 * Counting is one relaxed atomic add (writer threads count too); label
 * is the index into the family's label values: an output's index in
 * output.c's table, a STAT_TYPE_, STAT_INVALID_, STAT_DISC_ or
 * STAT_ENRICH_ value, or stats_drop_label(output, STAT_DROP_...).
 */
#include <stdatomic.h>
enum stat_id {
	STAT_EVENTS_RECEIVED, /* {type} */
	STAT_EVENTS_DUPLICATE,
	STAT_MESSAGES_INVALID, /* {reason} */
	STAT_RECORDS_WRITTEN, /* {output} */
	STAT_RECORDS_DAEMON, /* {output}: the daemon's own records */
	STAT_RECORDS_DROPPED, /* {output,reason} */
	STAT_OUTPUT_ERRORS, /* {output} */
	STAT_CONNECTED, /* gauge, stats_set() */
	STAT_CONNECTS,
	STAT_DISCONNECTS, /* {reason} */
	STAT_STREAM_GAP_MS,
	STAT_LAST_EVENT_MS, /* gauge: wall clock, ms */
	STAT_ENRICH_LOOKUPS, /* {result} */
	STAT_N
};
#define STAT_LABELS_MAX 64
enum { STAT_TYPE_STACK, STAT_TYPE_SERVICE, STAT_TYPE_CONTAINER,
	STAT_TYPE_NODECLUSTER, STAT_TYPE_NODE, STAT_TYPE_ACTION,
	STAT_TYPE_ERROR, STAT_TYPE_OTHER, STAT_TYPE_N };
enum { STAT_INVALID_JSON, STAT_INVALID_NOT_OBJECT, STAT_INVALID_TOO_DEEP,
	STAT_INVALID_EMPTY, STAT_INVALID_OVERSIZE, STAT_INVALID_UTF8,
	STAT_INVALID_OTHER, STAT_INVALID_N };
enum { STAT_DROP_RECONFIGURE, STAT_DROP_STOP, STAT_DROP_N };
enum { STAT_DISC_CLOSED, STAT_DISC_TIMEOUT, STAT_DISC_PROTOCOL,
	STAT_DISC_NETWORK, STAT_DISC_RECONFIGURE, STAT_DISC_CONNECT_FAILED,
	STAT_DISC_AUTH, STAT_DISC_N };
enum { /* how an enrichment lookup ended (enrich.c) */
	STAT_ENRICH_CACHED, /* answered without a GET of its own */
	STAT_ENRICH_OK,
	STAT_ENRICH_NOT_FOUND,
	STAT_ENRICH_UNAUTHORIZED, /* 401, 403 */
	STAT_ENRICH_RATE_LIMITED, /* 429 */
	STAT_ENRICH_SERVER_ERROR, /* 5xx, a connection that failed */
	STAT_ENRICH_TIMEOUT,
	STAT_ENRICH_INVALID, /* not JSON, too large, another status */
	STAT_ENRICH_N
};
extern _Atomic uint64_t stats_v[STAT_N][STAT_LABELS_MAX];
static inline void
stats_add(enum stat_id id, size_t label, uint64_t n)
{
	atomic_fetch_add_explicit(&stats_v[id][label], n, memory_order_relaxed);
}
static inline void
stats_set(enum stat_id id, size_t label, uint64_t v)
{
	atomic_store_explicit(&stats_v[id][label], v, memory_order_relaxed);
}
static inline size_t
stats_drop_label(size_t output, size_t reason)
{
	return output * STAT_DROP_N + reason;
}
size_t stats_type_label(const char *type, size_t len);
size_t stats_invalid_label(const char *why);
const char *stats_enrich_result(size_t);
struct output;
void stats_start(struct event_base *, struct output *, const struct conf *);
void stats_reconfigure(const struct conf *);
struct spool;
void stats_set_spool(const struct spool *);
void stats_stop(void);
void stats_record(void);
void stats_prometheus(struct strbuf *);
#define MID_STATS "51bc5d57502f4779af969ba552486a5d"

/*
 * metrics.c: [Metrics] Listen=, GET /metrics over HTTP/1.1 (evhttp) on
 * the event loop.
 */
struct metrics;
struct metrics *metrics_open(struct event_base *, const struct conf *);
void metrics_close(struct metrics *);
const char *metrics_listen(const struct metrics *);

/* notify.c */
void notify_ready(const char *status);
void notify_reloading(void);
void notify_stopping(void);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int notify_enabled(void);
int notify_watchdog_start(struct event_base *);
void notify_watchdog_stop(void);

#endif
