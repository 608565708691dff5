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

struct event_base;

/* Exit statuses of SPEC section 3. */
#define EXIT_CONFIG 1
#define EXIT_FATAL 2

/* log.c */
void log_init(int verbosity);
void log_set_verbosity(int verbosity);
int log_get_verbosity(void);
void log_msg(int priority, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(int priority, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
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
	SYSLOG_TLS
};

enum cred_source {
	CRED_NONE,
	CRED_APIKEY, /* APIKey= */
	CRED_APIKEYFILE, /* APIKeyFile= */
	CRED_SYSTEMD, /* $CREDENTIALS_DIRECTORY/apikey */
	CRED_ENV_AUTH, /* $DOCKERCLOUD_AUTH, sent verbatim */
	CRED_ENV_APIKEY, /* $DOCKERCLOUD_APIKEY */
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
	uint64_t auth_backoff_ms;
	uint64_t max_message_bytes;

	/* [Output] */
	int journal;
	char *syslog;
	enum syslog_mode syslog_mode;
	char *syslog_host;
	char *syslog_port;
	int syslog_facility; /* facility number, 0..23 */
	int stdout_json;
	char *identifier;
	uint64_t queue_max;

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

/* strbuf.c */
struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
	int failed;
};
int strbuf_add(struct strbuf *, const void *, size_t);
int strbuf_addstr(struct strbuf *, const char *);
int strbuf_printf(struct strbuf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
int strbuf_add_escaped(struct strbuf *, const char *, size_t);
char *strbuf_finish(struct strbuf *);
void strbuf_reset(struct strbuf *);
void wipe_free(char *, size_t);

/* backoff.c */
#define BACKOFF_STABLE_MS 60000 /* connected this long resets the backoff */
uint64_t backoff_delay(
    unsigned attempt, uint64_t min_ms, uint64_t max_ms, uint32_t rnd);

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
int handshake_parse(
    const char *, size_t, const char *accept, struct hs_reply *);

/* notify.c */
void notify_ready(const char *status);
void notify_reloading(void);
void notify_stopping(void);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int notify_watchdog_start(struct event_base *);
void notify_watchdog_stop(void);

#endif
