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

	/* [Priority] */
	struct conf_prio *prio;
	size_t nprio;

	/* Credentials, resolved after loading; the secret lives in memory
	 * excluded from core dumps. */
	enum cred_source cred_source;
	char *cred_origin; /* file the key came from, if any */
	char *secret; /* API key, or the verbatim DOCKERCLOUD_AUTH */

	/* Where each explicitly set key came from, for -t and errors. */
	char **origin;
};

int conf_take_environment(void);
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
};
char *handshake_target(const struct conf *);
int handshake_key(char out[HS_KEY_LEN + 1]);
void handshake_accept(const char *key, char out[HS_ACCEPT_LEN + 1]);
char *handshake_request(const struct conf *, const char *key, size_t *len);
char *handshake_request_for(
    const struct conf *, const char *target, const char *key, size_t *len);
int handshake_parse(
    const char *, size_t, const char *accept, struct hs_reply *);

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

/* event.c */
const char *dc_event_message_id(const struct dc_event *);
int dc_event_default_priority(const struct dc_event *);
int dc_event_priority(const struct conf *, const struct dc_event *);
struct span dc_event_object_uuid(const struct dc_event *);
void dc_event_message(const struct dc_event *, struct strbuf *);
int dc_event_field_name(const char *, size_t, int in_data, char out[65]);
struct dedup;
struct dedup *dedup_new(void);
void dedup_free(struct dedup *);
int dedup_seen(struct dedup *, const char *, size_t);

/*
 * queue.c: a bounded queue of records and its writer thread, one per
 * output.  A record is what an output writes: one journal entry, one
 * syslog message, one JSON line, as bytes ready to go.
 */
struct record {
	struct record *next;
	uint64_t spool_id; /* the event's row in the spool; 0: none */
	int64_t spill_seq; /* the record's row in the spool's spill; 0: none */
	size_t len;
	unsigned char data[];
};
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
struct queue *queue_new(struct event_base *, const char *name,
    const struct queue_ops *, void *arg, size_t max, size_t max_bytes,
    void (*notify)(void *, int), void *notify_arg);
int queue_push(struct queue *, struct record *);
size_t queue_queued(struct queue *, size_t *bytes);
#define RECORD_IOV 256 /* records per record_writev() */
int record_writev(int fd, struct record **, size_t n);
void queue_stop(struct queue *, uint64_t ms);
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
size_t output_take_uuid(struct output *, const char **uuid);
void output_seen(struct output *, const char *uuid, size_t n);
size_t output_count(void);
const char *output_name(size_t i);
int output_is_open(const struct output *, size_t i);
uint64_t output_written_id(struct output *, size_t i, int64_t *seq);
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

/* notify.c */
void notify_ready(const char *status);
void notify_reloading(void);
void notify_stopping(void);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int notify_enabled(void);
int notify_watchdog_start(struct event_base *);
void notify_watchdog_stop(void);

#endif
