/*
 * The Kafka output ([Kafka] Brokers=, librdkafka): each event is one
 * message to Topic=, its value the JSON line of Stdout= (without the
 * newline), its key the object's UUID (one object's events stay in one
 * partition, in order), with the headers type, action, state and
 * namespace.  The producer is idempotent with acks=all, up to 5 requests
 * in flight, endless retries and no message timeout, so that the cluster
 * stores each message once and in order per partition, however long the
 * brokers are away.
 *
 * A record is only handed to librdkafka by the writer thread: it stays in
 * its queue (queue.c, an output with start) until the delivery report
 * says the cluster stored it, and only then is it written for the spool.
 * The reports, errors and librdkafka's log lines come onto the event
 * loop through the main queue's wakeup fd (rd_kafka_queue_io_event_enable);
 * nothing here runs on librdkafka's threads.  A report with an error
 * (a permanent one: messages have no timeout) puts the record back to
 * librdkafka after a second, the output reported down meanwhile.  A fatal
 * error of the idempotent producer is reported, the producer made anew
 * and every record not stored handed to it again, in queue order.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "dcevents.h"

#define KAFKA_RETRY_MS 1000
#define KAFKA_CLOSE_MS 150 /* kept from the stop's flush for the close */
#define KAFKA_KINDS 8 /* error kinds reported since the last delivery */

/* The record: five lengths, then key, type, action, state, namespace, value. */
enum { F_KEY, F_TYPE, F_ACTION, F_STATE, F_NS, NFIELDS };
static const char *const header_names[NFIELDS] = { NULL, "type", "action",
	"state", "namespace" };

struct kafka {
	/* [Kafka] as opened: a reload frees its configuration */
	char *brokers, *topic;
	char **options;
	size_t noptions;
	char *password; /* secret memory, NULL: none */
	struct queue *q;
	struct event_base *base;
	pthread_mutex_t mu; /* rk against its renewal on the loop */
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	rd_kafka_queue_t *mainq;
	int fds[2]; /* the main queue's wakeup pipe */
	struct event *ev; /* reads fds[0] */
	struct event *retry_ev;
	struct record **retry; /* failed reports, to be produced again */
	size_t nretry, retry_cap;
	rd_kafka_resp_err_t kinds[KAFKA_KINDS]; /* reported, once each */
	size_t nkinds;
	char error[512]; /* the writer's */
	/* For the metrics and the records (on the loop). */
	uint64_t delivered; /* reports that said stored */
	uint64_t failed; /* reports with an error (the record retried) */
	uint64_t fatal; /* fatal errors: the producer made anew */
};

static void kafka_serve(struct kafka *, int timeout_ms);

/*
 * The settings the guarantees rest on, before any Option=, and checked
 * again after them (kafka_option_check()).
 */
static const char *const fixed[][2] = {
	{ "enable.idempotence", "true" },
	{ "acks", "all" },
	{ "max.in.flight.requests.per.connection", "5" },
	{ "retries", "2147483647" },
	{ "message.timeout.ms", "0" }, /* records wait as long as it takes */
	/* QueueMax and QueueMaxBytes bound what waits, not librdkafka */
	{ "queue.buffering.max.messages", "2147483647" },
	{ "queue.buffering.max.kbytes", "2147483647" },
	{ "log.queue", "true" },
	{ "log.connection.close", "false" },
	{ "client.id", "dcevents" },
};
#define NFIXED (sizeof fixed / sizeof fixed[0])

static int
kafka_set_fixed(rd_kafka_conf_t *kc, char *err, size_t errlen)
{
	for (size_t i = 0; i < NFIXED; i++)
		if (rd_kafka_conf_set(kc, fixed[i][0], fixed[i][1], err,
			errlen) != RD_KAFKA_CONF_OK)
			return -1;
	return 0;
}

/* After the options: do the guarantees still hold?  -1 and why if not. */
static int
kafka_guaranteed(rd_kafka_conf_t *kc, char *err, size_t errlen)
{
	static const struct {
		const char *name, *want, *why;
	} checks[] = {
		{ "enable.idempotence", "true",
		    "the producer must be idempotent (no duplicates, order "
		    "kept)" },
		{ "acks", "-1", "every in-sync replica must have the record" },
		{ "message.timeout.ms", "0",
		    "records wait until stored, without a timeout" },
	};
	char v[64];
	size_t n;

	for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
		n = sizeof v;
		if (rd_kafka_conf_get(kc, checks[i].name, v, &n) !=
			RD_KAFKA_CONF_OK ||
		    strcmp(v, checks[i].want) != 0) {
			snprintf(err, errlen,
			    "refused: %s must stay %s here: %s",
			    checks[i].name,
			    strcmp(checks[i].want, "-1") == 0 ? "all"
							      : checks[i].want,
			    checks[i].why);
			return -1;
		}
	}
	n = sizeof v;
	if (rd_kafka_conf_get(kc, "max.in.flight.requests.per.connection", v,
		&n) != RD_KAFKA_CONF_OK ||
	    atoi(v) > 5) {
		snprintf(err, errlen,
		    "refused: max.in.flight.requests.per.connection above 5 "
		    "breaks the idempotent producer's order");
		return -1;
	}
	n = sizeof v;
	if (rd_kafka_conf_get(kc, "retries", v, &n) != RD_KAFKA_CONF_OK ||
	    atoi(v) < 1) {
		snprintf(err, errlen,
		    "refused: retries must stay above 0 (idempotence)");
		return -1;
	}
	return 0;
}

/* Apply one "KEY=VALUE"; -1 and why if librdkafka or we refuse it. */
static int
kafka_set_option(rd_kafka_conf_t *kc, const char *kv, char *err, size_t errlen)
{
	size_t klen = strcspn(kv, "=");
	char key[256];

	if (kv[klen] != '=' || klen == 0 || klen >= sizeof key) {
		snprintf(err, errlen, "expected KEY=VALUE");
		return -1;
	}
	memcpy(key, kv, klen);
	key[klen] = '\0';
	if (strcmp(key, "sasl.password") == 0) {
		snprintf(err, errlen,
		    "refused: sasl.password comes from PasswordFile= or the "
		    "credential kafkapassword, never from an Option= line");
		return -1;
	}
	if (strcmp(key, "bootstrap.servers") == 0 ||
	    strcmp(key, "metadata.broker.list") == 0) {
		snprintf(err, errlen, "refused: %s is set by Brokers=", key);
		return -1;
	}
	if (rd_kafka_conf_set(kc, key, kv + klen + 1, err, errlen) !=
	    RD_KAFKA_CONF_OK)
		return -1;
	return 0;
}

/* conf.c's, at every load (and -t): one Option= value. */
int
kafka_option_check(const char *kv, char *err, size_t errlen)
{
	rd_kafka_conf_t *kc = rd_kafka_conf_new();
	int r;

	r = kafka_set_fixed(kc, err, errlen) == -1 ||
		kafka_set_option(kc, kv, err, errlen) == -1 ||
		kafka_guaranteed(kc, err, errlen) == -1
	    ? -1
	    : 0;
	rd_kafka_conf_destroy(kc);
	return r;
}

/* The producer for c, its topic and main queue; -1 (logged) on failure. */
static int
kafka_producer(struct kafka *k)
{
	rd_kafka_conf_t *kc = rd_kafka_conf_new();
	char err[512];

	if (kafka_set_fixed(kc, err, sizeof err) == -1 ||
	    rd_kafka_conf_set(kc, "bootstrap.servers", k->brokers, err,
		sizeof err) != RD_KAFKA_CONF_OK)
		goto fail;
	for (size_t i = 0; i < k->noptions; i++)
		if (kafka_set_option(kc, k->options[i], err, sizeof err) == -1)
			goto fail;
	/* librdkafka keeps its own copy (README: core dumps) */
	if (k->password != NULL &&
	    rd_kafka_conf_set(kc, "sasl.password", k->password, err,
		sizeof err) != RD_KAFKA_CONF_OK)
		goto fail;
	if (kafka_guaranteed(kc, err, sizeof err) == -1)
		goto fail;
	rd_kafka_conf_set_events(
	    kc, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_LOG);
	if ((k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err)) ==
	    NULL)
		goto fail;
	kc = NULL; /* the producer's now */
	k->mainq = rd_kafka_queue_get_main(k->rk);
	if (rd_kafka_set_log_queue(k->rk, k->mainq) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    (k->rkt = rd_kafka_topic_new(k->rk, k->topic, NULL)) ==
		NULL) {
		snprintf(err, sizeof err, "%s",
		    rd_kafka_err2str(rd_kafka_last_error()));
		goto fail;
	}
	if (k->fds[1] != -1)
		rd_kafka_queue_io_event_enable(k->mainq, k->fds[1], "1", 1);
	return 0;
fail:
	log_err("kafka: %s", err);
	if (kc != NULL)
		rd_kafka_conf_destroy(kc);
	if (k->mainq != NULL)
		rd_kafka_queue_destroy(k->mainq);
	if (k->rk != NULL)
		rd_kafka_destroy(k->rk);
	k->mainq = NULL;
	k->rk = NULL;
	return -1;
}

/* Drop the producer: what it still holds is not delivered (or reported). */
static void
kafka_producer_free(struct kafka *k)
{
	if (k->rk == NULL)
		return;
	rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
		RD_KAFKA_PURGE_F_NON_BLOCKING);
	rd_kafka_queue_io_event_enable(k->mainq, -1, NULL, 0);
	rd_kafka_topic_destroy(k->rkt);
	rd_kafka_queue_destroy(k->mainq);
	rd_kafka_destroy(k->rk);
	k->rk = NULL;
	k->rkt = NULL;
	k->mainq = NULL;
}

static size_t
field(const struct record *r, int i, const char **p)
{
	uint32_t len[NFIELDS];
	size_t off = sizeof len;

	memcpy(len, r->data, sizeof len);
	for (int j = 0; j < i; j++)
		off += len[j];
	*p = (const char *)r->data + off;
	return i < NFIELDS ? len[i] : r->len - off;
}

/* Hand r to librdkafka: 0, or -1 with k->error (its queue is full...). */
static int
kafka_produce(struct kafka *k, struct record *r)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(NFIELDS - 1);
	const char *key, *value, *v;
	size_t klen = field(r, F_KEY, &key), n;
	size_t vlen = field(r, NFIELDS, &value);
	rd_kafka_resp_err_t e;

	for (int i = F_TYPE; i < NFIELDS; i++)
		if ((n = field(r, i, &v)) > 0)
			rd_kafka_header_add(h, header_names[i], -1, v,
			    (ssize_t)n);
	if (klen == 0)
		key = NULL; /* no object: the partitioner spreads them */
	/* No copy: the record stays queued until its report. */
	e = rd_kafka_producev(k->rk, RD_KAFKA_V_RKT(k->rkt),
	    RD_KAFKA_V_KEY(key, klen),
	    RD_KAFKA_V_VALUE((void *)value, vlen), RD_KAFKA_V_HEADERS(h),
	    RD_KAFKA_V_OPAQUE(r), RD_KAFKA_V_END);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	rd_kafka_headers_destroy(h);
	snprintf(k->error, sizeof k->error, "%s", rd_kafka_err2str(e));
	return -1;
}

/* The writer's: hand records over; acknowledged later (kafka_report()). */
static int
kafka_write(void *arg, struct record **recs, size_t n)
{
	struct kafka *k = arg;
	size_t i;

	pthread_mutex_lock(&k->mu);
	for (i = 0; i < n; i++)
		if (!recs[i]->acked && kafka_produce(k, recs[i]) == -1)
			break;
	pthread_mutex_unlock(&k->mu);
	return i > 0 ? (int)i : -1;
}

static void
kafka_reset(void *arg)
{
}

static const char *
kafka_error_text(void *arg)
{
	return ((struct kafka *)arg)->error;
}

/* Report an error once per kind until a record is stored again. */
static int
kafka_new_kind(struct kafka *k, rd_kafka_resp_err_t e)
{
	for (size_t i = 0; i < k->nkinds; i++)
		if (k->kinds[i] == e)
			return 0;
	if (k->nkinds < KAFKA_KINDS)
		k->kinds[k->nkinds++] = e;
	return 1;
}

static void
kafka_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kafka *k = arg;
	size_t i;

	pthread_mutex_lock(&k->mu);
	for (i = 0; i < k->nretry; i++)
		if (kafka_produce(k, k->retry[i]) == -1)
			break;
	pthread_mutex_unlock(&k->mu);
	memmove(k->retry, k->retry + i, (k->nretry - i) * sizeof *k->retry);
	k->nretry -= i;
	if (k->nretry > 0) {
		struct timeval tv = tv_ms(KAFKA_RETRY_MS);

		event_add(k->retry_ev, &tv);
	}
}

/* One delivery report, on the loop. */
static void
kafka_report(struct kafka *k, const rd_kafka_message_t *m)
{
	struct record *r = m->_private;
	char why[640];

	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		k->delivered++;
		k->nkinds = 0;
		queue_acked(k->q, r);
		return;
	}
	k->failed++;
	snprintf(why, sizeof why, "a record was not stored: %s",
	    rd_kafka_err2str(m->err));
	if (kafka_new_kind(k, m->err))
		log_warn("kafka: %s; it is retried", why);
	queue_failed(k->q, why);
	if (k->nretry == k->retry_cap) {
		size_t cap = k->retry_cap ? 2 * k->retry_cap : 64;
		struct record **nr = reallocarray(k->retry, cap, sizeof *nr);

		if (nr == NULL)
			fatal("out of memory");
		k->retry = nr;
		k->retry_cap = cap;
	}
	k->retry[k->nretry++] = r;
	if (!event_pending(k->retry_ev, EV_TIMEOUT, NULL)) {
		struct timeval tv = tv_ms(KAFKA_RETRY_MS);

		event_add(k->retry_ev, &tv);
	}
}

/*
 * The idempotent producer cannot go on: make a new one and hand it every
 * record not stored yet, in queue order (the writer starts over).
 */
static void
kafka_renew(struct kafka *k, const char *why)
{
	k->fatal++;
	log_err("kafka: fatal error: %s; the producer is made anew and every "
		"record not stored yet is sent again",
	    why);
	queue_failed(k->q, why);
	pthread_mutex_lock(&k->mu);
	kafka_producer_free(k);
	k->nretry = 0; /* they are all sent again */
	event_del(k->retry_ev);
	if (kafka_producer(k) == -1)
		fatal("kafka: cannot make the producer anew");
	pthread_mutex_unlock(&k->mu);
	queue_rewind(k->q);
}

static void
kafka_error(struct kafka *k, rd_kafka_event_t *ev)
{
	rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
	char why[512];

	if (rd_kafka_event_error_is_fatal(ev)) {
		rd_kafka_fatal_error(k->rk, why, sizeof why);
		kafka_renew(k, why);
		return;
	}
	snprintf(why, sizeof why, "%s", rd_kafka_event_error_string(ev));
	if (e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		queue_failed(k->q, why);
	else if (kafka_new_kind(k, e))
		log_warn("kafka: %s", why);
}

/* What the main queue holds: reports, errors, log lines. */
static void
kafka_serve(struct kafka *k, int timeout_ms)
{
	rd_kafka_event_t *ev;

	while (k->mainq != NULL &&
	    (ev = rd_kafka_queue_poll(k->mainq, timeout_ms)) != NULL) {
		const rd_kafka_message_t *m;
		const char *fac, *str;
		int level;

		switch (rd_kafka_event_type(ev)) {
		case RD_KAFKA_EVENT_DR:
			while ((m = rd_kafka_event_message_next(ev)) != NULL)
				kafka_report(k, m);
			break;
		case RD_KAFKA_EVENT_ERROR:
			kafka_error(k, ev);
			break;
		case RD_KAFKA_EVENT_LOG:
			/* the errors come as errors: the log is detail */
			rd_kafka_event_log(ev, &fac, &str, &level);
			log_debug("kafka: %s: %s", fac, str);
			break;
		default:
			break;
		}
		rd_kafka_event_destroy(ev);
		timeout_ms = 0;
	}
}

/* On the loop: librdkafka wrote to the pipe, the main queue has events. */
static void
kafka_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];

	while (read(fd, buf, sizeof buf) > 0)
		;
	kafka_serve(arg, 0);
}

static int
kafka_start(void *arg, struct event_base *base, struct queue *q)
{
	struct kafka *k = arg;

	k->q = q;
	k->base = base;
	if (pipe2(k->fds, O_CLOEXEC | O_NONBLOCK) == -1) {
		log_err("kafka: pipe: %s", strerror(errno));
		k->fds[0] = k->fds[1] = -1;
		return -1;
	}
	k->ev = event_new(base, k->fds[0], EV_READ | EV_PERSIST, kafka_wake_cb, k);
	k->retry_ev = evtimer_new(base, kafka_retry_cb, k);
	if (k->ev == NULL || k->retry_ev == NULL || event_add(k->ev, NULL) == -1)
		return -1;
	rd_kafka_queue_io_event_enable(k->mainq, k->fds[1], "1", 1);
	kafka_serve(k, 0); /* what came before the pipe was there */
	return 0;
}

/*
 * At the stop, the writer done: flush for at most ms, serving the
 * reports here (the loop has ended); what is left stays unacknowledged.
 */
static void
kafka_drain(void *arg, uint64_t ms)
{
	struct kafka *k = arg;
	/* What librdkafka needs to end its threads stays for kafka_close(). */
	uint64_t end = clock_ms() + (ms > KAFKA_CLOSE_MS ? ms - KAFKA_CLOSE_MS : 0),
		 now;

	if (k->retry_ev != NULL && event_pending(k->retry_ev, EV_TIMEOUT, NULL))
		kafka_retry_cb(-1, 0, k); /* one more try, at once */
	while (k->rk != NULL && rd_kafka_outq_len(k->rk) > 0 &&
	    (now = clock_ms()) < end)
		kafka_serve(k, (int)(end - now < 100 ? end - now : 100));
	kafka_serve(k, 0);
}

static void
kafka_close(void *arg)
{
	struct kafka *k = arg;

	kafka_producer_free(k);
	if (k->ev != NULL)
		event_free(k->ev);
	if (k->retry_ev != NULL)
		event_free(k->retry_ev);
	if (k->fds[0] != -1) {
		close(k->fds[0]);
		close(k->fds[1]);
	}
	pthread_mutex_destroy(&k->mu);
	free(k->retry);
	free(k->brokers);
	free(k->topic);
	for (size_t i = 0; i < k->noptions; i++)
		free(k->options[i]);
	free(k->options);
	secret_free(k->password);
	free(k);
}

static void *
kafka_open(const struct conf *c)
{
	struct kafka *k = calloc(1, sizeof *k);

	if (k == NULL)
		return NULL;
	k->fds[0] = k->fds[1] = -1;
	pthread_mutex_init(&k->mu, NULL);
	k->brokers = strdup(c->kafka_brokers);
	k->topic = strdup(c->kafka_topic);
	k->options = calloc(c->nkafka_options + 1, sizeof *k->options);
	if (c->kafka_password != NULL)
		k->password =
		    secret_dup(c->kafka_password, strlen(c->kafka_password));
	if (k->brokers == NULL || k->topic == NULL || k->options == NULL ||
	    (c->kafka_password != NULL && k->password == NULL))
		fatal("out of memory");
	for (; k->noptions < c->nkafka_options; k->noptions++)
		if ((k->options[k->noptions] =
			    strdup(c->kafka_options[k->noptions])) == NULL)
			fatal("out of memory");
	if (kafka_producer(k) == -1) {
		kafka_close(k);
		return NULL;
	}
	return k;
}

static int
kafka_enabled(const struct conf *c)
{
	return *c->kafka_brokers != '\0';
}

static int
kafka_streq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Any [Kafka] change (or a new password) makes a new producer. */
static int
kafka_reopen(const struct conf *old, const struct conf *c)
{
	if (!kafka_streq(old->kafka_brokers, c->kafka_brokers) ||
	    !kafka_streq(old->kafka_topic, c->kafka_topic) ||
	    !kafka_streq(old->kafka_password, c->kafka_password) ||
	    old->nkafka_options != c->nkafka_options)
		return 1;
	for (size_t i = 0; i < c->nkafka_options; i++)
		if (strcmp(old->kafka_options[i], c->kafka_options[i]) != 0)
			return 1;
	return 0;
}

static void
kafka_format_event(const struct conf *c, const struct dc_event *e,
    int priority, const char *mid, const char *msg, size_t mlen,
    struct strbuf *b)
{
	struct span obj = dc_event_object_uuid(e);
	const char *s[NFIELDS] = { ev_str(e, obj), ev_str(e, e->type),
		ev_str(e, e->action), ev_str(e, e->state), c->ns };
	uint32_t len[NFIELDS] = { obj.len, e->type.len, e->action.len,
		e->state.len, (uint32_t)strlen(c->ns) };

	for (int i = 0; i < NFIELDS; i++)
		if (s[i] == NULL)
			len[i] = 0;
	strbuf_add(b, len, sizeof len);
	for (int i = 0; i < NFIELDS; i++)
		if (len[i] > 0)
			strbuf_add(b, s[i], len[i]);
	stdout_format(c, e, b);
	if (!b->failed)
		b->len--; /* the line's newline: the message is the object */
}

/* The daemon's own records are not written to Kafka. */
const struct output_type kafka_output = {
	.name = "kafka",
	.enabled = kafka_enabled,
	.reopen = kafka_reopen,
	.open = kafka_open,
	.format_event = kafka_format_event,
	.ops = {
		.write = kafka_write,
		.reset = kafka_reset,
		.error = kafka_error_text,
		.close = kafka_close,
		.start = kafka_start,
		.drain = kafka_drain,
	},
};
