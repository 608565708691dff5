/*
 * The Kafka ceiling of make bench: a bare rd_kafka_producev loop with the
 * producer settings of dcevents' Kafka output (idempotent, acks=all, 5 in
 * flight, no timeout), the same keys, headers and values (a file of
 * records, one a line: key, type, action, state, namespace and value,
 * tab-separated), into the same cluster.  Produces COUNT messages,
 * cycling the file, without copies (as dcevents), and waits for every
 * delivery report; the clock starts once a first message is stored
 * (connected, with a producer id).  Prints one JSON line: events, seconds (first produce
 * to the last report), cpu_us (user+sys per event, all threads),
 * rss_kb (peak).
 *
 *   kafkaprod BROKERS TOPIC RECORDS COUNT
 *   kafkaprod -w BROKERS TOPIC COUNT TIMEOUT_S
 *
 * -w waits until the topic's partitions hold COUNT messages (their high
 * watermarks) and prints the CLOCK_REALTIME ns when they did; exit 1 at
 * the timeout.
 */
#include <sys/resource.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

struct rec {
	char *f[6];
	size_t len[6];
};

static long delivered, failed;

static void
dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk, (void)opaque;
	if (m->err)
		failed++;
	else
		delivered++;
}

static double
now(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static rd_kafka_t *
client(rd_kafka_type_t type, const char *brokers, int producer)
{
	static const char *const conf[][2] = {
		{ "enable.idempotence", "true" }, { "acks", "all" },
		{ "max.in.flight.requests.per.connection", "5" },
		{ "retries", "2147483647" }, { "message.timeout.ms", "0" },
		{ "queue.buffering.max.messages", "2147483647" },
		{ "queue.buffering.max.kbytes", "2147483647" },
	};
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	char err[512];
	rd_kafka_t *rk;

	if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err,
		sizeof err) != RD_KAFKA_CONF_OK)
		goto fail;
	for (size_t i = 0; producer && i < sizeof conf / sizeof conf[0]; i++)
		if (rd_kafka_conf_set(c, conf[i][0], conf[i][1], err,
			sizeof err) != RD_KAFKA_CONF_OK)
			goto fail;
	if (producer)
		rd_kafka_conf_set_dr_msg_cb(c, dr);
	if ((rk = rd_kafka_new(type, c, err, sizeof err)) != NULL)
		return rk;
fail:
	fprintf(stderr, "kafkaprod: %s\n", err);
	exit(2);
}

/* -w: until the topic holds count messages. */
static int
wait_count(const char *brokers, const char *topic, long count, double tmo)
{
	rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, brokers, 0);
	const rd_kafka_metadata_t *md;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	double end = now(CLOCK_MONOTONIC) + tmo;
	int np = 0;

	while (np == 0 && now(CLOCK_MONOTONIC) < end) {
		if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == 0) {
			if (md->topic_cnt == 1 && md->topics[0].err == 0)
				np = md->topics[0].partition_cnt;
			rd_kafka_metadata_destroy(md);
		}
	}
	while (now(CLOCK_MONOTONIC) < end) {
		long sum = 0;

		for (int p = 0; p < np; p++) {
			int64_t lo, hi;

			if (rd_kafka_query_watermark_offsets(
				rk, topic, p, &lo, &hi, 5000) == 0)
				sum += hi;
		}
		if (sum >= count) {
			printf("%.0f\n", now(CLOCK_REALTIME) * 1e9);
			return 0;
		}
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "kafkaprod: timed out\n");
	return 1;
}

int
main(int argc, char **argv)
{
	struct rec *recs = NULL;
	size_t nrecs = 0, cap = 0, len = 0;
	char *line = NULL;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	struct rusage ru;
	long count;
	double t0, t1;
	FILE *f;

	if (argc == 6 && strcmp(argv[1], "-w") == 0)
		return wait_count(argv[2], argv[3], atol(argv[4]), atof(argv[5]));
	if (argc != 5 || (f = fopen(argv[3], "r")) == NULL) {
		fprintf(stderr, "usage: kafkaprod BROKERS TOPIC RECORDS COUNT\n");
		return 2;
	}
	count = atol(argv[4]);
	while (getline(&line, &len, f) > 0) {
		char *s = line, *tab;
		struct rec r;

		line[strcspn(line, "\n")] = '\0';
		for (int i = 0; i < 6; i++) {
			tab = i < 5 ? strchr(s, '\t') : s + strlen(s);
			if (tab == NULL)
				break;
			r.len[i] = (size_t)(tab - s);
			r.f[i] = strndup(s, r.len[i]);
			s = tab + 1;
		}
		if (nrecs == cap &&
		    (recs = realloc(recs, (cap = cap ? 2 * cap : 1024) *
			     sizeof *recs)) == NULL)
			return 2;
		recs[nrecs++] = r;
	}
	fclose(f);
	if (nrecs == 0)
		return 2;
	rk = client(RD_KAFKA_PRODUCER, argv[1], 1);
	rkt = rd_kafka_topic_new(rk, argv[2], NULL);
	/* Connected, with a producer id, as dcevents is when events come. */
	rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
	    RD_KAFKA_V_KEY(recs[0].f[0], recs[0].len[0]),
	    RD_KAFKA_V_VALUE(recs[0].f[5], recs[0].len[5]), RD_KAFKA_V_END);
	while (delivered + failed < 1)
		rd_kafka_poll(rk, 10);
	delivered = failed = 0;
	t0 = now(CLOCK_MONOTONIC);
	for (long i = 0; i < count; i++) {
		struct rec *r = &recs[i % (long)nrecs];
		static const char *const hn[] = { NULL, "type", "action",
			"state", "namespace" };
		rd_kafka_headers_t *h = rd_kafka_headers_new(4);
		rd_kafka_resp_err_t e;

		for (int k = 1; k < 5; k++)
			if (r->len[k] > 0)
				rd_kafka_header_add(
				    h, hn[k], -1, r->f[k], (ssize_t)r->len[k]);
		while ((e = rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
			    RD_KAFKA_V_KEY(r->f[0], r->len[0]),
			    RD_KAFKA_V_VALUE(r->f[5], r->len[5]),
			    RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END)) ==
		    RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
		if (e) {
			fprintf(stderr, "kafkaprod: %s\n", rd_kafka_err2str(e));
			return 1;
		}
		rd_kafka_poll(rk, 0);
	}
	while (delivered + failed < count)
		rd_kafka_poll(rk, 10);
	t1 = now(CLOCK_MONOTONIC);
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"events\": %ld, \"failed\": %ld, \"seconds\": %.6f, "
	       "\"cpu_us\": %.3f, \"rss_kb\": %ld}\n",
	    count, failed, t1 - t0,
	    ((double)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 / count +
		((double)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / count,
	    ru.ru_maxrss);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return failed > 0;
}
