/*
 * Configuration: systemd-style INI with drop-ins, the DOCKERCLOUD_*
 * environment and credentials.  Layers, weakest first: built-in defaults,
 * environment, the main file, its drop-ins in lexical order, then -o.
 * Every problem is reported with file, line and key; loading goes on so
 * that one run shows them all, and the result is refused if any was found.
 * A value is printable UTF-8 in every layer (no control character), so
 * that -t prints what reads back as the same configuration; diagnostics
 * escape the configuration text they quote.
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dcevents.h"

#define MAX_DURATION_MS (30ULL * 24 * 3600 * 1000) /* 30 days */
#define MAX_BYTES (1ULL << 30)
#define MAX_QUEUE 100000000ULL
#define MAX_SECRET 4096

enum key_type {
	K_STR,
	K_PATH,
	K_BOOL,
	K_DURATION,
	K_BYTES,
	K_COUNT,
	K_URL,
	K_SYSLOG,
	K_FACILITY,
	K_IDENT,
	K_APIKEY,
	K_APIKEYFILE,
	K_SPOOL_MODE,
	K_WHEN_FULL,
	K_LISTEN,
	K_INTERVAL /* a duration, 0 = off */,
	K_ENRICH_URL, /* [Enrich] */
	K_FIELDS,
	K_KAFKA_OPTION /* repeatable: appended; an empty value clears */
};

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t off;
	const char *def;
};

/* A build without libsystemd is for containers: stdout replaces the journal. */
#ifdef HAVE_SYSTEMD
#define JOURNAL_DEFAULT "yes"
#define STDOUT_DEFAULT "no"
#else
#define JOURNAL_DEFAULT "no"
#define STDOUT_DEFAULT "yes"
#endif

#define O(m) offsetof(struct conf, m)
static const struct key keys[] = {
	{ "Stream", "URL", K_URL, O(url), "wss://ws.cloud.docker.com/" },
	{ "Stream", "Namespace", K_STR, O(ns), "" },
	{ "Stream", "User", K_STR, O(user), "" },
	{ "Stream", "APIKey", K_APIKEY, 0, "" },
	{ "Stream", "APIKeyFile", K_APIKEYFILE, O(apikey_file), "" },
	{ "Stream", "Type", K_STR, O(type), "" },
	{ "Stream", "Object", K_STR, O(object), "" },
	{ "Stream", "Parent", K_STR, O(parent), "" },
	{ "Stream", "CAFile", K_PATH, O(cafile), "" },
	{ "Stream", "CAPath", K_PATH, O(capath), "" },
	{ "Stream", "AllowInsecure", K_BOOL, O(allow_insecure), "no" },
	{ "Stream", "ConnectTimeoutSec", K_DURATION, O(connect_timeout_ms),
	    "10s" },
	{ "Stream", "PingIntervalSec", K_DURATION, O(ping_interval_ms), "10s" },
	{ "Stream", "PongTimeoutSec", K_DURATION, O(pong_timeout_ms), "10s" },
	{ "Stream", "BackoffMinSec", K_DURATION, O(backoff_min_ms), "1s" },
	{ "Stream", "BackoffMaxSec", K_DURATION, O(backoff_max_ms), "120s" },
	{ "Stream", "BackoffResetSec", K_DURATION, O(backoff_reset_ms), "60s" },
	{ "Stream", "AuthBackoffSec", K_DURATION, O(auth_backoff_ms), "300s" },
	{ "Stream", "MaxMessageBytes", K_BYTES, O(max_message_bytes),
	    "1048576" },
	{ "Stream", "Proxy", K_STR, O(proxy_setting), "" },
	{ "Stream", "NoProxy", K_STR, O(noproxy_setting), "" },
	{ "Stream", "ProxyPasswordFile", K_PATH, O(proxy_password_file), "" },
	{ "Output", "Journal", K_BOOL, O(journal), JOURNAL_DEFAULT },
	{ "Output", "Syslog", K_SYSLOG, O(syslog), "no" },
	{ "Output", "SyslogFacility", K_FACILITY, O(syslog_facility),
	    "daemon" },
	{ "Output", "SyslogCAFile", K_PATH, O(syslog_cafile), "" },
	{ "Output", "SyslogCAPath", K_PATH, O(syslog_capath), "" },
	{ "Output", "Stdout", K_BOOL, O(stdout_json), STDOUT_DEFAULT },
	{ "Output", "Identifier", K_IDENT, O(identifier), "dcevents" },
	{ "Output", "QueueMax", K_COUNT, O(queue_max), "100000" },
	{ "Output", "QueueMaxBytes", K_BYTES, O(queue_max_bytes), "8M" },
	{ "Spool", "Mode", K_SPOOL_MODE, O(spool_mode_name), "no" },
	{ "Spool", "Path", K_PATH, O(spool_path), "" },
	{ "Spool", "MaxBytes", K_BYTES, O(spool_max_bytes), "256M" },
	{ "Spool", "WhenFull", K_WHEN_FULL, O(spool_when_full_name), "pause" },
	{ "Metrics", "Listen", K_LISTEN, O(metrics_listen), "no" },
	{ "Metrics", "StatsIntervalSec", K_INTERVAL, O(stats_interval_ms), "0" },
	{ "Enrich", "Lookup", K_BOOL, O(enrich), "no" },
	{ "Enrich", "URL", K_ENRICH_URL, O(enrich_url),
	    "https://cloud.docker.com/" },
	{ "Enrich", "Concurrency", K_COUNT, O(enrich_concurrency), "4" },
	{ "Enrich", "CacheEntries", K_COUNT, O(enrich_cache_entries),
	    "10000" },
	{ "Enrich", "CacheTTLSec", K_DURATION, O(enrich_cache_ttl_ms), "3600s" },
	{ "Enrich", "TimeoutSec", K_DURATION, O(enrich_timeout_ms), "2s" },
	{ "Enrich", "Fields", K_FIELDS, O(enrich_fields_text), "" },
	{ "Kafka", "Brokers", K_STR, O(kafka_brokers), "" },
	{ "Kafka", "Topic", K_STR, O(kafka_topic), "dockercloud.events" },
	{ "Kafka", "Option", K_KAFKA_OPTION, 0, "" },
	{ "Kafka", "PasswordFile", K_PATH, O(kafka_password_file), "" },
};
#undef O
#define NKEYS (sizeof keys / sizeof keys[0])

static const char *const facilities[] = { "kern", "user", "mail", "daemon",
	"auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
	NULL, NULL, NULL, NULL, "local0", "local1", "local2", "local3",
	"local4", "local5", "local6", "local7" };
#define NFACILITIES (sizeof facilities / sizeof facilities[0])

static const char *const priorities[] = { "emerg", "alert", "crit", "err",
	"warning", "notice", "info", "debug" };

/* State of one load; the configuration is only returned if errors == 0. */
struct loader {
	struct conf *conf;
	char *apikey; /* secret memory */
	int errors;
};

/*
 * $DOCKERCLOUD_AUTH and $DOCKERCLOUD_APIKEY once conf_take_environment()
 * has moved them out of the environment into secret memory (secret.c).
 */
static const char *const env_secret_names[] = { "DOCKERCLOUD_AUTH",
	"DOCKERCLOUD_APIKEY" };
static char *env_secrets[2];

static int conf_kafka_option(struct loader *, const char *, const char *);
static void conf_kafka_options_free(struct conf *);
static void conf_kafka_free(struct conf *);
static void conf_kafka_print(const struct conf *, FILE *);
static void conf_kafka_validate(struct loader *);

/*
 * Move the environment's secrets into secret memory, wiping them in the
 * environment (the process's initial stack, /proc/PID/environ), so that
 * every later conf_load() takes them from there; -1 when out of memory.
 */
int
conf_take_environment(void)
{
	for (size_t i = 0; i < 2; i++) {
		const char *v = getenv(env_secret_names[i]);

		secret_free(env_secrets[i]);
		env_secrets[i] = NULL;
		if (v != NULL && *v != '\0' &&
		    (env_secrets[i] = secret_dup(v, strlen(v))) == NULL)
			return -1;
		secret_unsetenv(env_secret_names[i]);
	}
	return proxy_take_environment();
}

/* The environment's value of a secret variable, else the one taken. */
static const char *
env_secret(size_t i)
{
	const char *v = getenv(env_secret_names[i]);

	return v != NULL && *v != '\0' ? v : env_secrets[i];
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatal("out of memory");
	return p;
}

/*
 * The length of the printable character at s (n bytes left): 1 for ASCII
 * other than a control character or DEL, 2 to 4 for a UTF-8 sequence
 * other than a C1 control (U+0080..U+009F); 0 for anything else.
 */
static size_t
text_char(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	struct utf8 u = { 0 };
	size_t len;

	if (p[0] < 0x80)
		return p[0] >= 0x20 && p[0] != 0x7f;
	len = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
	if (len > n || utf8_check(&u, p, len) != 0 || u.need != 0 ||
	    (p[0] == 0xc2 && p[1] < 0xa0))
		return 0;
	return len;
}

/* NULL if s is printable UTF-8 throughout (what a value may hold). */
static const char *
text_problem(const char *s)
{
	size_t n = strlen(s), len;

	for (; n > 0; s += len, n -= len) {
		const unsigned char *p = (const unsigned char *)s;

		if ((len = text_char(s, n)) != 0)
			continue;
		if (*p < 0x20 || *p == 0x7f ||
		    (n > 1 && p[0] == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0))
			return "control characters are not allowed";
		return "not UTF-8";
	}
	return NULL;
}

/*
 * s for a terminal or a comment line: each byte that is not part of a
 * printable character is escaped the way MESSAGE escapes control
 * characters (\n, \r, \t, \xNN: a line break in a value, a binary
 * file's bytes, which here stay \xNN rather than becoming U+FFFD).  Cut
 * to fit size.
 */
static const char *
text_escape(const char *s, char *buf, size_t size)
{
	size_t n = strlen(s), o = 0;
	char e[8];

	while (n > 0) {
		size_t step = text_char(s, n), len = step;
		const char *from = s;

		if (step == 0) {
			len = escape_control((unsigned char)*s, e);
			from = e;
			step = 1;
		}
		if (o + len >= size)
			break;
		memcpy(buf + o, from, len);
		o += len;
		s += step;
		n -= step;
	}
	buf[o] = '\0';
	return buf;
}

static void conf_log(int, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* A diagnostic that may quote configuration text: escaped. */
static void
conf_log(int priority, const char *fmt, ...)
{
	char msg[1024], esc[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_msg(priority, "%s", text_escape(msg, esc, sizeof esc));
}

static void conf_error(struct loader *, const char *, const char *,
    const char *, ...) __attribute__((format(printf, 4, 5)));

static void
conf_error(
    struct loader *ld, const char *where, const char *key, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (key != NULL)
		conf_log(3, "%s: %s: %s", where, key, msg);
	else
		conf_log(3, "%s: %s", where, msg);
	ld->errors++;
}

/* Blanks around a key or value, as in systemd: space, tab, CR, LF. */
static int
blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static char *
trim(char *s)
{
	char *e;

	while (blank(*s))
		s++;
	e = s + strlen(s);
	while (e > s && blank(e[-1]))
		*--e = '\0';
	return s;
}

static int
parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* Parse a decimal "N[.F]" prefix scaled by unit (exact in ms). */
static const char *
parse_scaled(const char *s, uint64_t unit, uint64_t *out)
{
	uint64_t v = 0, frac = 0, scale = 1;

	if (!isdigit((unsigned char)*s))
		return NULL;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return NULL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return NULL;
		for (; isdigit((unsigned char)*s); s++) {
			if (scale >= 1000000000ULL)
				return NULL;
			frac = frac * 10 + (uint64_t)(*s - '0');
			scale *= 10;
		}
	}
	if (v > MAX_DURATION_MS / unit + 1 || (frac * unit) % scale != 0)
		return NULL;
	*out = v * unit + frac * unit / scale;
	return s;
}

/*
 * A duration: one or more "NUMBER[UNIT]" parts, units ms, s or min,
 * a plain number meaning seconds ("1min 30s", "500ms", "1.5").
 */
int
conf_parse_duration(const char *s, uint64_t *ms)
{
	uint64_t total = 0;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0')
		return -1;
	while (*s != '\0') {
		static const struct {
			const char *u;
			uint64_t ms;
		} units[] = { { "ms", 1 }, { "min", 60000 }, { "s", 1000 } };
		const char *num = s, *end;
		uint64_t part, unit = 1000;
		size_t i, ulen = 0;

		while (isdigit((unsigned char)*s) || *s == '.')
			s++;
		for (i = 0; i < 3; i++) {
			ulen = strlen(units[i].u);
			if (strncmp(s, units[i].u, ulen) == 0 &&
			    !isalpha((unsigned char)s[ulen])) {
				unit = units[i].ms;
				break;
			}
		}
		if (i == 3) {
			if (isalpha((unsigned char)*s))
				return -1;
			ulen = 0;
		}
		end = parse_scaled(num, unit, &part);
		if (end == NULL || end != s)
			return -1;
		total += part;
		if (total > MAX_DURATION_MS)
			return -1;
		s += ulen;
		while (isspace((unsigned char)*s))
			s++;
	}
	*ms = total;
	return 0;
}

/* A count or size: digits with an optional K, M or G (1024-based). */
static int
parse_count(const char *s, int suffixes, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (suffixes && *p != '\0') {
		int shift = *p == 'K' ? 10
		    : *p == 'M'       ? 20
		    : *p == 'G'       ? 30
				      : -1;

		if (shift < 0 || v > (max >> shift))
			return -1;
		v <<= shift;
		p++;
	}
	if (*p != '\0' || v == 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Split "HOST[:PORT]" or "[V6][:PORT]"; port 1-65535. */
static int
parse_hostport(
    const char *s, size_t len, const char *defport, char **host, char **port)
{
	const char *h = s, *colon = NULL, *p;
	size_t hlen;

	if (len > 0 && *s == '[') {
		const char *rb = memchr(s, ']', len);

		if (rb == NULL)
			return -1;
		h = s + 1;
		hlen = (size_t)(rb - h);
		p = rb + 1;
		if (p < s + len) {
			if (*p != ':')
				return -1;
			colon = p;
		}
	} else {
		colon = memchr(s, ':', len);
		hlen = colon ? (size_t)(colon - s) : len;
		if (colon && memchr(colon + 1, ':', len - hlen - 1))
			return -1; /* bare IPv6 needs brackets */
	}
	if (hlen == 0)
		return -1;
	for (size_t i = 0; i < hlen; i++)
		if (!isgraph((unsigned char)h[i]) || strchr("/?#@[]", h[i]))
			return -1;
	if (colon != NULL) {
		const char *ps = colon + 1;
		size_t plen = (size_t)(s + len - ps);
		unsigned long n = 0;

		if (plen == 0 || plen > 5)
			return -1;
		for (size_t i = 0; i < plen; i++) {
			if (!isdigit((unsigned char)ps[i]))
				return -1;
			n = n * 10 + (unsigned long)(ps[i] - '0');
		}
		if (n == 0 || n > 65535)
			return -1;
		*port = strndup(ps, plen);
	} else
		*port = xstrdup(defport);
	*host = strndup(h, hlen);
	if (*host == NULL || *port == NULL)
		fatal("out of memory");
	return 0;
}

/*
 * A base URL: SCHEME://HOST[:PORT][/PATH] with scheme tls (secure) or
 * plain, no query, fragment or credentials.
 */
static int
parse_base_url(const char *v, const char *tls, const char *plain, int *secure,
    char **hostp, char **portp, char **pathp, const char **why)
{
	static char what[64];
	const char *rest, *slash;
	size_t tl = strlen(tls), pl = strlen(plain);

	if (strncasecmp(v, tls, tl) == 0 && strncmp(v + tl, "://", 3) == 0) {
		*secure = 1;
		rest = v + tl + 3;
	} else if (strncasecmp(v, plain, pl) == 0 &&
	    strncmp(v + pl, "://", 3) == 0) {
		*secure = 0;
		rest = v + pl + 3;
	} else {
		snprintf(what, sizeof what, "expected a %s:// or %s:// URL",
		    plain, tls);
		*why = what;
		return -1;
	}
	if (strpbrk(v, "?#") != NULL) {
		*why = "a base URL has no query or fragment";
		return -1;
	}
	for (const char *p = v; *p != '\0'; p++) {
		if (!isgraph((unsigned char)*p)) {
			*why = "spaces or control characters in URL";
			return -1;
		}
	}
	slash = strchr(rest, '/');
	if (memchr(rest, '@', slash ? (size_t)(slash - rest) : strlen(rest))) {
		*why = "credentials do not belong in the URL; use User= and "
		       "APIKeyFile=";
		return -1;
	}
	if (parse_hostport(rest, slash ? (size_t)(slash - rest) : strlen(rest),
		*secure ? "443" : "80", hostp, portp) == -1) {
		*why = "bad host or port in URL";
		return -1;
	}
	*pathp = xstrdup(slash ? slash : "/");
	return 0;
}

static int
parse_url(struct conf *c, const char *v, const char **why)
{
	char *host, *port, *path;
	int secure;

	if (parse_base_url(
		v, "wss", "ws", &secure, &host, &port, &path, why) == -1)
		return -1;
	free(c->host);
	free(c->port);
	free(c->path);
	c->host = host;
	c->port = port;
	c->path = path;
	c->secure = secure;
	return 0;
}

/* [Enrich] URL=: the REST base (https://; http:// with AllowInsecure=). */
static int
parse_enrich_url(struct conf *c, const char *v, const char **why)
{
	char *host, *port, *path;
	size_t n;
	int secure;

	if (parse_base_url(
		v, "https", "http", &secure, &host, &port, &path, why) == -1)
		return -1;
	/* resource_uri starts with '/': the base keeps no trailing one. */
	n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		path[--n] = '\0';
	free(c->enrich_host);
	free(c->enrich_port);
	free(c->enrich_path);
	c->enrich_host = host;
	c->enrich_port = port;
	c->enrich_path = path;
	c->enrich_secure = secure;
	return 0;
}

/* [Enrich] Fields=: members on enrich.c's allow-list, space or comma apart. */
static int
parse_fields(struct conf *c, const char *v, const char **why)
{
	char **f = NULL;
	size_t n = 0;

	for (const char *p = v; *p != '\0';) {
		size_t len = strcspn(p, " \t,");
		char **nf;

		if (len == 0) {
			p++;
			continue;
		}
		if ((*why = enrich_field_refused(p, len)) != NULL ||
		    (n == ENRICH_MAX_FIELDS &&
			(*why = "too many fields (at most 16)") != NULL)) {
			for (size_t i = 0; i < n; i++)
				free(f[i]);
			free(f);
			return -1;
		}
		if ((nf = reallocarray(f, n + 1, sizeof *f)) == NULL ||
		    (nf[n] = strndup(p, len)) == NULL)
			fatal("out of memory");
		f = nf;
		n++;
		p += len;
	}
	for (size_t i = 0; i < c->nenrich_fields; i++)
		free(c->enrich_fields[i]);
	free(c->enrich_fields);
	c->enrich_fields = f;
	c->nenrich_fields = n;
	return 0;
}

static int
parse_syslog(struct conf *c, const char *v)
{
	static const struct {
		const char *scheme;
		enum syslog_mode mode;
		const char *port;
	} schemes[] = {
		{ "udp://", SYSLOG_UDP, "514" },
		{ "tcp://", SYSLOG_TCP, "514" },
		{ "tls://", SYSLOG_TLS, "6514" },
		{ "relp://", SYSLOG_RELP, "2514" },
		{ "relp+tls://", SYSLOG_RELP_TLS, "2514" },
	};

	free(c->syslog_host);
	free(c->syslog_port);
	c->syslog_host = c->syslog_port = NULL;
	if (strcmp(v, "no") == 0) {
		c->syslog_mode = SYSLOG_NO;
		return 0;
	}
	if (strcmp(v, "local") == 0) {
		c->syslog_mode = SYSLOG_LOCAL;
		return 0;
	}
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
		size_t n = strlen(schemes[i].scheme);

		if (strncmp(v, schemes[i].scheme, n) != 0)
			continue;
		if (parse_hostport(v + n, strlen(v + n), schemes[i].port,
			&c->syslog_host, &c->syslog_port) == -1)
			return -1;
		c->syslog_mode = schemes[i].mode;
		return 0;
	}
	return -1;
}

/*
 * [Metrics] Listen=: no, HOST:PORT (a port is required; [V6]:PORT) or
 * unix:/ABSOLUTE/PATH (at most 107 bytes, sockaddr_un's room).
 */
static int
parse_listen(struct conf *c, const char *v)
{
	size_t n = strlen(v);

	free(c->metrics_host);
	free(c->metrics_port);
	free(c->metrics_unix);
	c->metrics_host = c->metrics_port = c->metrics_unix = NULL;
	if (strcmp(v, "no") == 0)
		return 0;
	if (strncmp(v, "unix:", 5) == 0) {
		if (v[5] != '/' || n - 5 > 107)
			return -1;
		c->metrics_unix = xstrdup(v + 5);
		return 0;
	}
	if (n == 0 || v[n - 1] == ':' || strrchr(v, ':') == NULL ||
	    (v[0] == '[' && strstr(v, "]:") == NULL))
		return -1;
	return parse_hostport(v, n, "", &c->metrics_host, &c->metrics_port);
}

/* A syslog priority name or number 0-7; -1 if neither. */
int
conf_parse_priority(const char *v)
{
	if (v[0] >= '0' && v[0] <= '7' && v[1] == '\0')
		return v[0] - '0';
	for (int i = 0; i < 8; i++)
		if (strcasecmp(v, priorities[i]) == 0)
			return i;
	if (strcasecmp(v, "error") == 0)
		return 3;
	if (strcasecmp(v, "warn") == 0)
		return 4;
	return -1;
}

const char *
conf_priority_name(int p)
{
	return p >= 0 && p < 8 ? priorities[p] : "?";
}

static const char *
describe(enum key_type t)
{
	switch (t) {
	case K_BOOL:
		return "expected yes or no";
	case K_DURATION:
		return "expected a duration such as 10, 500ms, 1.5s or 2min "
		       "(at most 30 days)";
	case K_BYTES:
		return "expected a size from 1 to 1G (suffixes K, M, G)";
	case K_COUNT:
		return "expected a number from 1 to 100000000";
	case K_SYSLOG:
		return "expected no, local, udp://HOST[:PORT], "
		       "tcp://HOST[:PORT], tls://HOST[:PORT], "
		       "relp://HOST[:PORT] or relp+tls://HOST[:PORT]";
	case K_FACILITY:
		return "expected a facility name (daemon, user, "
		       "local0..local7, ...)";
	case K_IDENT:
		return "expected 1 to 48 printable ASCII characters, no spaces";
	case K_SPOOL_MODE:
		return "expected no, overflow or always";
	case K_WHEN_FULL:
		return "expected pause or drop-oldest";
	case K_LISTEN:
		return "expected no, HOST:PORT, [IPV6]:PORT or unix:/PATH";
	case K_INTERVAL:
		return "expected 0 (off) or a duration such as 60, 30s or 5min "
		       "(at most 30 days)";
	case K_ENRICH_URL:
		return "expected an https:// URL";
	case K_FIELDS:
		return "expected member names separated by spaces or commas";
	case K_KAFKA_OPTION:
		return "expected KEY=VALUE (a librdkafka property)";
	default:
		return "invalid value";
	}
}

/* Set one key; where names the place ("file:line", "-o ...") for errors. */
static void
conf_set(
    struct loader *ld, const struct key *k, const char *v, const char *where)
{
	struct conf *c = ld->conf;
	void *field = (char *)c + k->off;
	const char *why = NULL;
	uint64_t n;
	int b;

	switch (k->type) {
	case K_STR:
	case K_PATH:
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		break;
	case K_APIKEY:
		secret_free(ld->apikey);
		ld->apikey = NULL;
		if (*v != '\0' &&
		    (ld->apikey = secret_dup(v, strlen(v))) == NULL) {
			conf_error(ld, where, k->name, "out of memory");
			return;
		}
		free(c->apikey_file); /* the later of the two wins */
		c->apikey_file = xstrdup("");
		break;
	case K_APIKEYFILE:
		free(c->apikey_file);
		c->apikey_file = xstrdup(v);
		if (*v != '\0') {
			secret_free(ld->apikey);
			ld->apikey = NULL;
		}
		break;
	case K_BOOL:
		if (parse_bool(v, &b) == -1)
			goto bad;
		*(int *)field = b;
		break;
	case K_DURATION:
		if (conf_parse_duration(v, &n) == -1)
			goto bad;
		if (n == 0) {
			why = "must be greater than zero";
			goto bad;
		}
		*(uint64_t *)field = n;
		break;
	case K_BYTES:
	case K_COUNT:
		if (parse_count(v, k->type == K_BYTES,
			k->type == K_BYTES ? MAX_BYTES : MAX_QUEUE, &n) == -1)
			goto bad;
		*(uint64_t *)field = n;
		break;
	case K_URL:
		if (parse_url(c, v, &why) == -1)
			goto bad;
		free(c->url);
		c->url = xstrdup(v);
		break;
	case K_SYSLOG:
		if (parse_syslog(c, v) == -1)
			goto bad;
		free(c->syslog);
		c->syslog = xstrdup(v);
		break;
	case K_FACILITY:
		for (n = 0; n < NFACILITIES; n++)
			if (facilities[n] != NULL &&
			    strcmp(v, facilities[n]) == 0)
				break;
		if (n == NFACILITIES)
			goto bad;
		c->syslog_facility = (int)n;
		break;
	case K_IDENT:
		if (*v == '\0' || strlen(v) > 48)
			goto bad;
		for (const char *p = v; *p != '\0'; p++)
			if (*p < 33 || *p > 126)
				goto bad;
		free(c->identifier);
		c->identifier = xstrdup(v);
		break;
	case K_SPOOL_MODE:
		if (strcmp(v, "no") == 0)
			c->spool_mode = SPOOL_NO;
		else if (strcmp(v, "always") == 0)
			c->spool_mode = SPOOL_ALWAYS;
		else if (strcmp(v, "overflow") == 0)
			c->spool_mode = SPOOL_OVERFLOW;
		else
			goto bad;
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		break;
	case K_ENRICH_URL:
		if (parse_enrich_url(c, v, &why) == -1)
			goto bad;
		free(c->enrich_url);
		c->enrich_url = xstrdup(v);
		break;
	case K_FIELDS:
		if (parse_fields(c, v, &why) == -1)
			goto bad;
		free(c->enrich_fields_text);
		c->enrich_fields_text = xstrdup(v);
		break;
	case K_WHEN_FULL:
		if (strcmp(v, "pause") == 0)
			c->spool_drop_oldest = 0;
		else if (strcmp(v, "drop-oldest") == 0)
			c->spool_drop_oldest = 1;
		else
			goto bad;
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		break;
	case K_LISTEN:
		if (parse_listen(c, v) == -1)
			goto bad;
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		break;
	case K_INTERVAL:
		if (conf_parse_duration(v, &n) == -1)
			goto bad;
		*(uint64_t *)field = n;
		break;
	case K_KAFKA_OPTION:
		if (conf_kafka_option(ld, v, where) == -1)
			goto bad;
		break;
	}
	if (where != NULL) {
		size_t i = (size_t)(k - keys);

		free(c->origin[i]);
		c->origin[i] = xstrdup(where);
	}
	return;
bad:
	if (k->type == K_APIKEY)
		conf_error(ld, where, k->name, "invalid value");
	else
		conf_error(ld, where, k->name, "invalid value \"%s\": %s", v,
		    why ? why : describe(k->type));
}

static void
conf_set_priority(
    struct loader *ld, const char *key, const char *v, const char *where)
{
	struct conf *c = ld->conf;
	struct conf_prio *np;
	int p;

	/* Nor may it read back as a comment or a section (-o). */
	if (*key == '\0' || strchr(".#;[", key[0]) != NULL ||
	    key[strlen(key) - 1] == '.') {
		conf_error(
		    ld, where, key, "expected Default, TYPE or TYPE.STATE");
		return;
	}
	if ((p = conf_parse_priority(v)) == -1) {
		conf_error(ld, where, key,
		    "invalid priority \"%s\": expected "
		    "emerg, alert, crit, err, warning, notice, info, debug or "
		    "0-7",
		    v);
		return;
	}
	for (size_t i = 0; i < c->nprio; i++) {
		if (strcmp(c->prio[i].key, key) == 0) {
			c->prio[i].priority = p;
			return;
		}
	}
	np = reallocarray(c->prio, c->nprio + 1, sizeof *np);
	if (np == NULL)
		fatal("out of memory");
	c->prio = np;
	c->prio[c->nprio].key = xstrdup(key);
	c->prio[c->nprio].priority = p;
	c->nprio++;
}

static const struct key *
conf_find(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int
conf_known_section(const char *s)
{
	return strcmp(s, "Stream") == 0 || strcmp(s, "Output") == 0 ||
	    strcmp(s, "Spool") == 0 || strcmp(s, "Metrics") == 0 ||
	    strcmp(s, "Enrich") == 0 || strcmp(s, "Kafka") == 0 ||
	    strcmp(s, "Priority") == 0;
}

/*
 * Apply "Key=Value" in section, from every layer; where is "file:line",
 * "-o ..." or "$VAR".  A value (and a [Priority] key) is printable UTF-8:
 * a line break in it would make -t print a different configuration.
 */
static void
conf_assign(struct loader *ld, const char *section, const char *key,
    const char *value, const char *where)
{
	int prio = strcmp(section, "Priority") == 0;
	const struct key *k = NULL;
	const char *why;

	if (!prio && (k = conf_find(section, key)) == NULL) {
		conf_error(ld, where, key, "unknown key in [%s]", section);
		return;
	}
	if (prio && (why = text_problem(key)) != NULL) {
		conf_error(ld, where, key, "invalid key: %s", why);
		return;
	}
	if ((why = text_problem(value)) != NULL) {
		if (k != NULL && k->type == K_APIKEY)
			conf_error(ld, where, key, "invalid value: %s", why);
		else
			conf_error(ld, where, key, "invalid value \"%s\": %s",
			    value, why);
		return;
	}
	if (prio)
		conf_set_priority(ld, key, value, where);
	else
		conf_set(ld, k, value, where);
}

/* Read one INI file; missing_ok for the default path. */
static void
conf_read_file(struct loader *ld, const char *path, int missing_ok)
{
	char section[64] = "", where[4096], iobuf[BUFSIZ];
	size_t cap = MAX_SECRET + 64; /* no realloc leaving a key behind */
	char *line;
	ssize_t len;
	unsigned lineno = 0;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		if (errno == ENOENT && missing_ok) {
			conf_log(7, "%s: not found, using the defaults", path);
			return;
		}
		conf_error(ld, path, NULL, "%s", strerror(errno));
		return;
	}
	conf_log(7, "reading %s", path);
	/* stdio's own buffer would keep an APIKey= line: ours is wiped. */
	setvbuf(f, iobuf, _IOFBF, sizeof iobuf);
	line = malloc(cap);
	while ((len = getline(&line, &cap, f)) != -1) {
		char *s, *eq;

		lineno++;
		snprintf(where, sizeof where, "%s:%u", path, lineno);
		if (memchr(line, '\0', (size_t)len) != NULL) {
			conf_error(ld, where, NULL, "NUL byte in line");
			continue;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			size_t n = strlen(s);

			if (s[n - 1] != ']' || n < 3) {
				conf_error(ld, where, NULL,
				    "malformed section header \"%s\"", s);
				section[0] = '\0';
				continue;
			}
			s[n - 1] = '\0';
			if (!conf_known_section(s + 1)) {
				conf_error(ld, where, NULL,
				    "unknown section [%s]", s + 1);
				/* Its keys would only repeat the error. */
				snprintf(section, sizeof section, "!");
				continue;
			}
			snprintf(section, sizeof section, "%s", s + 1);
			continue;
		}
		if ((eq = strchr(s, '=')) == NULL) {
			conf_error(ld, where, NULL,
			    "expected Key=Value, got \"%s\"", s);
			continue;
		}
		*eq = '\0';
		s = trim(s);
		if (section[0] == '!')
			continue;
		if (section[0] == '\0') {
			conf_error(ld, where, s, "key outside of a section");
			continue;
		}
		conf_assign(ld, section, s, trim(eq + 1), where);
	}
	if (ferror(f))
		conf_error(ld, path, NULL, "read error: %s", strerror(errno));
	/* The line may have held the API key. */
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	fclose(f);
	explicit_bzero(iobuf, sizeof iobuf);
}

static int
dropin_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 &&
	    strcmp(d->d_name + n - 5, ".conf") == 0;
}

/* FILE.d/NAME.conf in lexical (byte) order; later files win. */
static void
conf_read_dropins(struct loader *ld, const char *path)
{
	struct dirent **list;
	char dir[4096], file[4096 + 256];
	int n;

	snprintf(dir, sizeof dir, "%s.d", path);
	if ((n = scandir(dir, &list, dropin_filter, NULL)) == -1) {
		if (errno != ENOENT && errno != ENOTDIR)
			conf_error(ld, dir, NULL, "%s", strerror(errno));
		return;
	}
	for (int i = 1; i < n; i++) { /* insertion sort: strcmp, no locale */
		struct dirent *d = list[i];
		int j = i - 1;

		while (j >= 0 && strcmp(list[j]->d_name, d->d_name) > 0) {
			list[j + 1] = list[j];
			j--;
		}
		list[j + 1] = d;
	}
	for (int i = 0; i < n; i++) {
		struct stat st;

		snprintf(file, sizeof file, "%s/%s", dir, list[i]->d_name);
		if (stat(file, &st) == 0 && S_ISREG(st.st_mode))
			conf_read_file(ld, file, 0);
		free(list[i]);
	}
	free(list);
}

/* Apply one "-o Section.Key=Value". */
static void
conf_override(struct loader *ld, const char *arg)
{
	char *copy = xstrdup(arg), *eq, *dot, where[256];

	eq = strchr(copy, '=');
	dot = strchr(copy, '.');
	if (eq == NULL || dot == NULL || dot > eq) {
		if (eq != NULL)
			*eq = '\0'; /* not the value: it may be a key */
		snprintf(where, sizeof where, "-o %.128s", copy);
		conf_error(ld, where, NULL, "expected Section.Key=Value");
		goto out;
	}
	*eq = *dot = '\0';
	snprintf(where, sizeof where, "-o %.64s.%.128s", copy, dot + 1);
	if (!conf_known_section(copy)) {
		conf_error(ld, where, NULL, "unknown section [%s]", copy);
		goto out;
	}
	conf_assign(ld, copy, trim(dot + 1), trim(eq + 1), where);
out:
	explicit_bzero(copy, strlen(arg));
	free(copy);
}

static void
conf_env(
    struct loader *ld, const char *var, const char *section, const char *name)
{
	const char *v = getenv(var);
	char where[64], *copy, *t;

	if (v == NULL)
		return;
	copy = xstrdup(v);
	snprintf(where, sizeof where, "$%s", var);
	if (*(t = trim(copy)) != '\0') /* blanks around it, as in a file */
		conf_assign(ld, section, name, t, where);
	free(copy);
}

/* Read the first line of a key file into secret memory. */
static char *
read_secret_file(
    struct loader *ld, const char *path, const char *where, const char *key)
{
	char buf[MAX_SECRET + 1], *s, *nl, *r = NULL;
	const char *why;
	ssize_t n;
	size_t len = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		conf_error(ld, where, key, "cannot open %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	while (len < sizeof buf - 1 &&
	    (n = read(fd, buf + len, sizeof buf - 1 - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			conf_error(ld, where, key, "cannot read %s: %s", path,
			    strerror(errno));
			goto out;
		}
		len += (size_t)n;
	}
	if ((nl = memchr(buf, '\n', len)) == NULL && len == sizeof buf - 1) {
		conf_error(ld, where, key,
		    "%s: first line longer than %d bytes", path, MAX_SECRET);
		goto out;
	}
	len = nl ? (size_t)(nl - buf) : len;
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		conf_error(ld, where, key, "%s: NUL byte in the key", path);
		goto out;
	}
	if (*(s = trim(buf)) == '\0') {
		conf_error(
		    ld, where, key, "%s: no key on the first line", path);
		goto out;
	}
	if ((why = text_problem(s)) != NULL) {
		conf_error(ld, where, key, "%s: the key: %s", path, why);
		goto out;
	}
	if ((r = secret_dup(s, strlen(s))) == NULL)
		conf_error(ld, where, key, "out of memory");
out:
	explicit_bzero(buf, sizeof buf);
	close(fd);
	return r;
}

static const char *
origin_of(const struct conf *c, const char *section, const char *name)
{
	const char *o = c->origin[conf_find(section, name) - keys];

	return o ? o : "default";
}

/* Pick the credential, strongest first (see dcevents.conf(5)). */
static void
conf_credentials(struct loader *ld)
{
	struct conf *c = ld->conf;
	const char *e, *where, *why;
	char path[4096];

	if (ld->apikey != NULL) {
		c->cred_source = CRED_APIKEY;
		c->secret = ld->apikey;
		ld->apikey = NULL;
		where = origin_of(c, "Stream", "APIKey");
	} else if (c->apikey_file != NULL && *c->apikey_file != '\0') {
		where = origin_of(c, "Stream", "APIKeyFile");
		c->secret =
		    read_secret_file(ld, c->apikey_file, where, "APIKeyFile");
		c->cred_source = CRED_APIKEYFILE;
		c->cred_origin = xstrdup(c->apikey_file);
	} else if ((e = getenv("CREDENTIALS_DIRECTORY")) != NULL &&
	    *e != '\0' &&
	    (snprintf(path, sizeof path, "%s/apikey", e),
		access(path, F_OK) == 0)) {
		where = "$CREDENTIALS_DIRECTORY/apikey";
		c->secret = read_secret_file(ld, path, where, "credential");
		c->cred_source = CRED_SYSTEMD;
		c->cred_origin = xstrdup(path);
	} else if ((e = env_secret(0)) != NULL) {
		if ((why = text_problem(e)) != NULL) {
			conf_error(ld, "$DOCKERCLOUD_AUTH", NULL, "%s", why);
			return;
		}
		c->secret = secret_dup(e, strlen(e));
		c->cred_source = CRED_ENV_AUTH;
		return; /* sent verbatim, no user needed */
	} else if ((e = env_secret(1)) != NULL) {
		where = "$DOCKERCLOUD_APIKEY";
		if ((why = text_problem(e)) != NULL) {
			conf_error(ld, where, NULL, "%s", why);
			return;
		}
		c->secret = secret_dup(e, strlen(e));
		c->cred_source = CRED_ENV_APIKEY;
	} else {
		/* Without a key the service would only answer 401. */
		e = getenv("CREDENTIALS_DIRECTORY");
		if (*c->user != '\0')
			conf_error(ld, origin_of(c, "Stream", "User"), "User",
			    "User= needs an API key and none was found: "
			    "not in APIKey=, APIKeyFile=, "
			    "$CREDENTIALS_DIRECTORY/apikey, $DOCKERCLOUD_AUTH "
			    "or $DOCKERCLOUD_APIKEY%s",
			    e == NULL || *e == '\0'
				? " ($CREDENTIALS_DIRECTORY is not set: only "
				  "the unit's LoadCredential= sets it)"
				: "");
		return;
	}
	if (c->secret != NULL && *c->user == '\0')
		conf_error(ld, where, "User",
		    "an API key needs User= (or "
		    "$DOCKERCLOUD_USER)");
	if (c->secret != NULL && strchr(c->user, ':') != NULL)
		conf_error(ld, origin_of(c, "Stream", "User"), "User",
		    "a user name cannot contain ':'");
}

/* Trust anchors given must be readable (a directory also searchable). */
static void
check_anchors(struct loader *ld, const struct conf *c, const char *section,
    const char *fkey, const char *file, const char *pkey, const char *path)
{
	if (*file != '\0' && access(file, R_OK) == -1)
		conf_error(ld, origin_of(c, section, fkey), fkey, "%s: %s",
		    file, strerror(errno));
	if (*path != '\0' && access(path, R_OK | X_OK) == -1)
		conf_error(ld, origin_of(c, section, pkey), pkey, "%s: %s",
		    path, strerror(errno));
}

/* "HOST[:PORT]" or "[V6][:PORT]" for proxy.c; -1 if it is neither. */
int
conf_hostport(
    const char *s, size_t len, const char *defport, char **host, char **port)
{
	return parse_hostport(s, len, defport, host, port);
}

/* NoProxy=, else $no_proxy or $NO_PROXY: the hosts reached directly. */
static void
conf_noproxy(struct loader *ld)
{
	struct conf *c = ld->conf;
	const char *v = c->noproxy_setting, *name, *why;
	char where[4200], err[400];

	if (*v != '\0')
		snprintf(where, sizeof where, "NoProxy= (%s)",
		    origin_of(c, "Stream", "NoProxy"));
	else if ((v = proxy_noproxy_environment(&name)) != NULL) {
		snprintf(where, sizeof where, "$%s", name);
		if ((why = text_problem(v)) != NULL) {
			conf_error(ld, where, NULL, "%s", why);
			return;
		}
	} else
		return;
	if ((c->noproxy = proxy_noproxy_parse(v, err, sizeof err)) == NULL) {
		conf_error(ld, *c->noproxy_setting ? origin_of(c, "Stream",
		    "NoProxy") : where, "NoProxy", "%s", err);
		return;
	}
	c->noproxy_text = xstrdup(v);
	c->noproxy_origin = xstrdup(where);
}

/*
 * The proxy: Proxy= ("none": direct), else the environment's (proxy.c
 * says which variable); its password from ProxyPasswordFile=, else the
 * credential proxypassword, else the environment's URL.  A value that
 * may hold a password is never quoted.
 */
static void
conf_proxy(struct loader *ld)
{
	struct conf *c = ld->conf;
	const char *v = c->proxy_setting, *name, *why, *e, *where;
	const char *pwhere = origin_of(c, "Stream", "ProxyPasswordFile");
	char envwhere[64], path[4096], origin[4200];
	struct proxy *px;
	char *pw = NULL;
	int env = 0;

	conf_noproxy(ld);
	if (*v != '\0') {
		where = origin_of(c, "Stream", "Proxy");
		snprintf(origin, sizeof origin, "Proxy= (%s)", where);
	} else if ((v = proxy_environment(&name)) != NULL) {
		snprintf(envwhere, sizeof envwhere, "$%s", name);
		where = envwhere;
		snprintf(origin, sizeof origin, "%s", envwhere);
		env = 1;
	} else
		return;
	if (strcasecmp(v, "none") == 0)
		return;
	if (env && (why = text_problem(v)) != NULL) {
		conf_error(ld, where, NULL, "%s", why);
		return;
	}
	if ((px = proxy_parse(v, env, &why)) == NULL) {
		conf_error(ld, where, env ? NULL : "Proxy", "%s", why);
		return;
	}
	px->origin = xstrdup(origin);
	if (*c->proxy_password_file != '\0') {
		pw = read_secret_file(
		    ld, c->proxy_password_file, pwhere, "ProxyPasswordFile");
		snprintf(origin, sizeof origin, "ProxyPasswordFile %s",
		    c->proxy_password_file);
	} else if ((e = getenv("CREDENTIALS_DIRECTORY")) != NULL &&
	    *e != '\0' &&
	    (snprintf(path, sizeof path, "%s/proxypassword", e),
		access(path, F_OK) == 0)) {
		pw = read_secret_file(ld, path,
		    "$CREDENTIALS_DIRECTORY/proxypassword", "credential");
		snprintf(origin, sizeof origin, "systemd credential %s", path);
	} else
		snprintf(origin, sizeof origin, "the URL in %s", where);
	if (pw != NULL) {
		secret_free(px->password);
		px->password = pw;
	}
	if (*px->user == '\0') {
		if (*c->proxy_password_file != '\0')
			conf_error(ld, pwhere, "ProxyPasswordFile",
			    "needs a user in the proxy's URL "
			    "(http://USER@HOST:PORT/)");
		secret_free(px->password); /* a credential lying unused */
		px->password = NULL;
	} else if (px->password == NULL && *c->proxy_password_file == '\0')
		conf_error(ld, where, env ? NULL : "Proxy",
		    "the proxy's user %s needs a password and none was found: "
		    "not in ProxyPasswordFile= or "
		    "$CREDENTIALS_DIRECTORY/proxypassword",
		    px->user);
	if (px->password != NULL)
		px->password_origin = xstrdup(origin);
	c->proxy = px;
}

/* -t: the proxy in use, where it came from, and the NoProxy list. */
static void
conf_print_proxy(const struct conf *c, FILE *f)
{
	const struct proxy *px = c->proxy;
	char esc[2048];

	if (px == NULL)
		fprintf(f, "# proxy: none%s\n",
		    *c->proxy_setting ? " (Proxy=none)"
				      : " (no Proxy=, no proxy variable)");
	else {
		fprintf(f, "# proxy: %s from ",
		    text_escape(px->url, esc, sizeof esc));
		fprintf(f, "%s\n", text_escape(px->origin, esc, sizeof esc));
		if (px->password != NULL)
			fprintf(f, "# proxy password: (masked) from %s\n",
			    text_escape(px->password_origin, esc, sizeof esc));
	}
	if (c->noproxy_text != NULL) {
		fprintf(f, "# NoProxy: %s",
		    text_escape(c->noproxy_text, esc, sizeof esc));
		fprintf(f, " from %s\n",
		    text_escape(c->noproxy_origin, esc, sizeof esc));
	}
	if (px != NULL && proxy_for(c, c->host, c->port) == NULL)
		fprintf(f, "# the stream's host is in NoProxy: it is reached "
			   "directly\n");
}

/* Would the proxy settings of a and b make different connections? */
static int
conf_proxy_changed(const struct conf *a, const struct conf *b)
{
	const struct proxy *p = a->proxy, *q = b->proxy;

	if (p == NULL || q == NULL) {
		if (p != q)
			return 1;
	} else if (strcmp(p->url, q->url) != 0 ||
	    (p->password == NULL) != (q->password == NULL) ||
	    (p->password != NULL && strcmp(p->password, q->password) != 0))
		return 1;
	if (a->noproxy_text == NULL || b->noproxy_text == NULL)
		return a->noproxy_text != b->noproxy_text;
	return strcmp(a->noproxy_text, b->noproxy_text) != 0;
}

/* Checks that involve more than one key. */
static void
conf_validate(struct loader *ld)
{
	struct conf *c = ld->conf;

	if (!c->secure && !c->allow_insecure)
		conf_error(ld, origin_of(c, "Stream", "URL"), "URL",
		    "ws:// sends events and credentials in clear text; set "
		    "AllowInsecure=yes to permit it");
	if (c->backoff_min_ms > c->backoff_max_ms) {
		/* Name the line that was written, not the default. */
		int max_set = strcmp(origin_of(c, "Stream", "BackoffMaxSec"),
				  "default") != 0;

		if (max_set)
			conf_error(ld, origin_of(c, "Stream", "BackoffMaxSec"),
			    "BackoffMaxSec", "smaller than BackoffMinSec");
		else
			conf_error(ld, origin_of(c, "Stream", "BackoffMinSec"),
			    "BackoffMinSec", "larger than BackoffMaxSec");
	}
	check_anchors(
	    ld, c, "Stream", "CAFile", c->cafile, "CAPath", c->capath);
	check_anchors(ld, c, "Output", "SyslogCAFile", c->syslog_cafile,
	    "SyslogCAPath", c->syslog_capath);
#ifndef HAVE_SYSTEMD
	if (c->journal)
		conf_error(ld, origin_of(c, "Output", "Journal"), "Journal",
		    "this dcevents was built without libsystemd");
#endif
	if (!c->journal && c->syslog_mode == SYSLOG_NO && !c->stdout_json &&
	    *c->kafka_brokers == '\0')
		conf_error(ld, "[Output]", NULL,
		    "no output enabled: set "
		    "Journal=yes, Syslog=, Stdout=yes or [Kafka] Brokers=");
	if (c->enrich && !c->enrich_secure && !c->allow_insecure)
		conf_error(ld, origin_of(c, "Enrich", "URL"), "URL",
		    "http:// sends the credentials in clear text; set "
		    "[Stream] AllowInsecure=yes to permit it");
	if (c->enrich_concurrency > ENRICH_MAX_CONCURRENCY)
		conf_error(ld, origin_of(c, "Enrich", "Concurrency"),
		    "Concurrency", "at most %d requests in flight",
		    ENRICH_MAX_CONCURRENCY);
	if (c->spool_mode != SPOOL_NO && *c->spool_path == '\0') {
		const char *d = getenv("STATE_DIRECTORY");

		if (d == NULL || *d == '\0')
			conf_error(ld, origin_of(c, "Spool", "Mode"), "Path",
			    "Mode=%s needs Path= or $STATE_DIRECTORY",
			    c->spool_mode_name);
		else {
			/* systemd may list several, colon-separated */
			size_t n = strcspn(d, ":");

			free(c->spool_path);
			if ((c->spool_path = malloc(n + sizeof "/spool.db")) ==
			    NULL)
				fatal("out of memory");
			memcpy(c->spool_path, d, n);
			memcpy(c->spool_path + n, "/spool.db",
			    sizeof "/spool.db");
		}
	}
}

/*
 * [Kafka] (issue 19).  Option= lines are kept in order with where each
 * came from, and checked against librdkafka (output_kafka.c's
 * kafka_option_check()) at load, so that -t and a reload name the line.
 * sasl.password is never an Option=: it comes from PasswordFile= or the
 * credential kafkapassword, into secret memory.
 */
static int
conf_kafka_option(struct loader *ld, const char *v, const char *where)
{
	struct conf *c = ld->conf;
	char **no, **nw;

	if (*v == '\0') { /* as in systemd: an empty value clears the list */
		conf_kafka_options_free(c);
		return 0;
	}
	if (strchr(v, '=') == NULL || *v == '=')
		return -1;
	no = reallocarray(c->kafka_options, c->nkafka_options + 1, sizeof *no);
	if (no == NULL)
		fatal("out of memory");
	c->kafka_options = no;
	nw = reallocarray(
	    c->kafka_option_origins, c->nkafka_options + 1, sizeof *nw);
	if (nw == NULL)
		fatal("out of memory");
	c->kafka_option_origins = nw;
	c->kafka_options[c->nkafka_options] = xstrdup(v);
	c->kafka_option_origins[c->nkafka_options] =
	    xstrdup(where != NULL ? where : "default");
	c->nkafka_options++;
	return 0;
}

static void
conf_kafka_options_free(struct conf *c)
{
	for (size_t i = 0; i < c->nkafka_options; i++) {
		free(c->kafka_options[i]);
		free(c->kafka_option_origins[i]);
	}
	free(c->kafka_options);
	free(c->kafka_option_origins);
	c->kafka_options = c->kafka_option_origins = NULL;
	c->nkafka_options = 0;
}

static void
conf_kafka_free(struct conf *c)
{
	conf_kafka_options_free(c);
	free(c->kafka_password_origin);
	secret_free(c->kafka_password);
}

/* A property whose value -t masks: it may be a secret. */
static int
conf_kafka_sensitive(const char *opt)
{
	size_t n = strcspn(opt, "=");

	for (const char *w = opt; w < opt + n; w++)
		if (strncasecmp(w, "password", 8) == 0 ||
		    strncasecmp(w, "secret", 6) == 0)
			return 1;
	return 0;
}

static void
conf_kafka_print(const struct conf *c, FILE *f)
{
	char esc[2048];

	if (c->nkafka_options == 0)
		fputs("Option=\n", f);
	for (size_t i = 0; i < c->nkafka_options; i++) {
		const char *o = c->kafka_options[i];

		fprintf(f, "# from %s\n",
		    text_escape(c->kafka_option_origins[i], esc, sizeof esc));
		if (conf_kafka_sensitive(o))
			fprintf(f, "Option=%.*s=(masked)\n",
			    (int)strcspn(o, "="), o);
		else
			fprintf(f, "Option=%s\n", o);
	}
	if (c->kafka_password != NULL)
		fprintf(f, "# sasl.password: (masked) from %s\n",
		    text_escape(c->kafka_password_origin, esc, sizeof esc));
}

static void
conf_kafka_validate(struct loader *ld)
{
	struct conf *c = ld->conf;
	const char *e, *where;
	char path[4096], err[512];

#ifndef HAVE_KAFKA
	/* What -t prints (the defaults, an empty Option=) still loads. */
	static const char *const used[] = { "Brokers", "PasswordFile" };

	for (size_t i = 0; i < 2; i++) {
		const struct key *k = conf_find("Kafka", used[i]);

		if (**(char **)((char *)c + k->off) != '\0')
			conf_error(ld, origin_of(c, "Kafka", used[i]), used[i],
			    "this dcevents was built without Kafka "
			    "(configure --without-kafka)");
	}
	if (c->nkafka_options > 0)
		conf_error(ld, c->kafka_option_origins[0], "Option",
		    "this dcevents was built without Kafka "
		    "(configure --without-kafka)");
	(void)e, (void)where, (void)path, (void)err;
#else
	for (size_t i = 0; i < c->nkafka_options; i++)
		if (kafka_option_check(c->kafka_options[i], err, sizeof err) ==
		    -1)
			conf_error(ld, c->kafka_option_origins[i], "Option",
			    "%s", err);
	if (*c->kafka_brokers == '\0')
		return;
	if (*c->kafka_password_file != '\0') {
		where = origin_of(c, "Kafka", "PasswordFile");
		c->kafka_password = read_secret_file(
		    ld, c->kafka_password_file, where, "PasswordFile");
		c->kafka_password_origin = xstrdup(c->kafka_password_file);
	} else if ((e = getenv("CREDENTIALS_DIRECTORY")) != NULL &&
	    *e != '\0' &&
	    (snprintf(path, sizeof path, "%s/kafkapassword", e),
		access(path, F_OK) == 0)) {
		c->kafka_password = read_secret_file(ld, path,
		    "$CREDENTIALS_DIRECTORY/kafkapassword", "credential");
		c->kafka_password_origin = xstrdup(path);
	}
#endif
}

struct conf *
conf_load(
    const char *path, int path_given, char *const *overrides, size_t noverrides)
{
	struct loader ld = { 0 };
	struct conf *c;

	if ((c = calloc(1, sizeof *c)) == NULL ||
	    (c->origin = calloc(NKEYS, sizeof *c->origin)) == NULL)
		fatal("out of memory");
	ld.conf = c;
	for (size_t i = 0; i < NKEYS; i++)
		conf_set(&ld, &keys[i], keys[i].def, NULL);
	if (ld.errors != 0)
		abort(); /* a built-in default does not parse */

	if (getenv("DOCKERCLOUD_STREAM_HOST") != NULL &&
	    *getenv("DOCKERCLOUD_STREAM_HOST") != '\0')
		conf_env(&ld, "DOCKERCLOUD_STREAM_HOST", "Stream", "URL");
	else
		conf_env(&ld, "DOCKERCLOUD_STREAM_URL", "Stream", "URL");
	conf_env(&ld, "DOCKERCLOUD_NAMESPACE", "Stream", "Namespace");
	conf_env(&ld, "DOCKERCLOUD_USER", "Stream", "User");

	conf_read_file(&ld, path, !path_given);
	conf_read_dropins(&ld, path);
	for (size_t i = 0; i < noverrides; i++)
		conf_override(&ld, overrides[i]);

	conf_credentials(&ld);
	conf_proxy(&ld);
	conf_validate(&ld);
	conf_kafka_validate(&ld);
	secret_free(ld.apikey);
	secret_scrub(); /* the keys went through read(), memcpy, trim() */
	if (ld.errors != 0) {
		conf_log(3, "%s: %d error%s in the configuration", path,
		    ld.errors, ld.errors == 1 ? "" : "s");
		conf_free(c);
		return NULL;
	}
	return c;
}

void
conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < NKEYS; i++) {
		switch (keys[i].type) {
		case K_STR:
		case K_PATH:
		case K_URL:
		case K_SYSLOG:
		case K_IDENT:
		case K_APIKEYFILE:
		case K_SPOOL_MODE:
		case K_WHEN_FULL:
		case K_LISTEN:
		case K_ENRICH_URL:
		case K_FIELDS:
			free(*(char **)((char *)c + keys[i].off));
			break;
		default:
			break;
		}
		free(c->origin[i]);
	}
	free(c->origin);
	free(c->host);
	free(c->port);
	free(c->path);
	free(c->syslog_host);
	free(c->syslog_port);
	free(c->metrics_host);
	free(c->metrics_port);
	free(c->metrics_unix);
	free(c->enrich_host);
	free(c->enrich_port);
	free(c->enrich_path);
	for (size_t i = 0; i < c->nenrich_fields; i++)
		free(c->enrich_fields[i]);
	free(c->enrich_fields);
	for (size_t i = 0; i < c->nprio; i++)
		free(c->prio[i].key);
	free(c->prio);
	free(c->cred_origin);
	secret_free(c->secret);
	proxy_free(c->proxy);
	proxy_noproxy_free(c->noproxy);
	free(c->noproxy_text);
	free(c->noproxy_origin);
	conf_kafka_free(c);
	free(c);
}

static void
print_duration(FILE *f, uint64_t ms)
{
	if (ms % 60000 == 0)
		fprintf(f, "%" PRIu64 "min\n", ms / 60000);
	else if (ms % 1000 == 0)
		fprintf(f, "%" PRIu64 "s\n", ms / 1000);
	else
		fprintf(f, "%" PRIu64 "ms\n", ms);
}

/* The effective configuration as a file that -c would accept. */
void
conf_print(const struct conf *c, FILE *f)
{
	static const char *const cred[] = {
		[CRED_NONE] = "none (no Authorization header is sent)",
		[CRED_APIKEY] = "APIKey=",
		[CRED_APIKEYFILE] = "APIKeyFile",
		[CRED_SYSTEMD] = "systemd credential",
		[CRED_ENV_AUTH] = "$DOCKERCLOUD_AUTH, sent verbatim",
		[CRED_ENV_APIKEY] = "$DOCKERCLOUD_APIKEY",
	};
	const char *section = "";
	char esc[2048];

	/* Values are printable (conf_assign); comments are escaped. */
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		const void *field = (const char *)c + k->off;

		if (strcmp(section, k->section) != 0) {
			if (*section != '\0') {
				if (strcmp(section, "Stream") == 0)
					fprintf(f, "# credential: %s%s%s\n",
					    cred[c->cred_source],
					    c->cred_origin ? " " : "",
					    text_escape(c->cred_origin
						    ? c->cred_origin
						    : "",
						esc, sizeof esc));
				if (strcmp(section, "Stream") == 0)
					conf_print_proxy(c, f);
				fputc('\n', f);
			}
			section = k->section;
			fprintf(f, "[%s]\n", section);
		}
		if (k->type == K_KAFKA_OPTION) {
			conf_kafka_print(c, f);
			continue;
		}
		if (c->origin[i] != NULL)
			fprintf(f, "# from %s\n",
			    text_escape(c->origin[i], esc, sizeof esc));
		fprintf(f, "%s=", k->name);
		switch (k->type) {
		case K_APIKEY:
			fputs(
			    c->cred_source == CRED_APIKEY ? "(masked)\n" : "\n",
			    f);
			break;
		case K_BOOL:
			fputs(*(const int *)field ? "yes\n" : "no\n", f);
			break;
		case K_DURATION:
			print_duration(f, *(const uint64_t *)field);
			break;
		case K_INTERVAL:
			if (*(const uint64_t *)field == 0)
				fputs("0\n", f);
			else
				print_duration(f, *(const uint64_t *)field);
			break;
		case K_BYTES:
		case K_COUNT:
			fprintf(f, "%" PRIu64 "\n", *(const uint64_t *)field);
			break;
		case K_FACILITY:
			fprintf(f, "%s\n", facilities[c->syslog_facility]);
			break;
		default:
			fprintf(f, "%s\n", *(char *const *)field);
			break;
		}
	}
	fputs("\n[Priority]\n", f);
	for (size_t i = 0; i < c->nprio; i++)
		fprintf(f, "%s=%s\n", c->prio[i].key,
		    conf_priority_name(c->prio[i].priority));
	fflush(f);
}

static int
streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Would moving from a to b need a new connection? */
int
conf_stream_changed(const struct conf *a, const struct conf *b)
{
	return !streq(a->url, b->url) || !streq(a->ns, b->ns) ||
	    !streq(a->user, b->user) || !streq(a->secret, b->secret) ||
	    a->cred_source != b->cred_source || !streq(a->type, b->type) ||
	    !streq(a->object, b->object) || !streq(a->parent, b->parent) ||
	    !streq(a->cafile, b->cafile) || !streq(a->capath, b->capath) ||
	    a->allow_insecure != b->allow_insecure ||
	    a->connect_timeout_ms != b->connect_timeout_ms ||
	    a->ping_interval_ms != b->ping_interval_ms ||
	    a->pong_timeout_ms != b->pong_timeout_ms ||
	    a->max_message_bytes != b->max_message_bytes ||
	    conf_proxy_changed(a, b);
}

static int
prio_lookup(const struct conf *c, const char *key, size_t len)
{
	for (size_t i = 0; i < c->nprio; i++)
		if (strlen(c->prio[i].key) == len &&
		    memcmp(c->prio[i].key, key, len) == 0)
			return c->prio[i].priority;
	return -1;
}

/* [Priority]: TYPE.STATE over TYPE over Default over the built-in value. */
int
conf_priority_for(
    const struct conf *c, const char *type, const char *state, int fallback)
{
	char key[512];
	int p, n;

	if (c->nprio == 0)
		return fallback;
	if (state != NULL && *state != '\0') {
		n = snprintf(key, sizeof key, "%s.%s", type, state);
		if (n > 0 && (size_t)n < sizeof key &&
		    (p = prio_lookup(c, key, (size_t)n)) != -1)
			return p;
	}
	if ((p = prio_lookup(c, type, strlen(type))) != -1)
		return p;
	if ((p = prio_lookup(c, "Default", 7)) != -1)
		return p;
	return fallback;
}
