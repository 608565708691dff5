/*
 * A Kafka cluster for the tests: librdkafka's mock cluster (the Kafka
 * protocol on real loopback sockets), 3 brokers.  Prints its bootstrap
 * list as the first line, creates the topic given (3 partitions, each
 * replicated on the 3 brokers), then takes commands on stdin until EOF,
 * answering each with "ok COMMAND" or "error ...":
 *
 *   down ID|all       the broker (1..3) or all of them refuse connections
 *   up ID|all         they accept them again
 *   leader P ID       partition P's leader is broker ID
 *   rtt ID|all MS     the broker's (or every broker's) answers take MS
 *                     milliseconds more (requests pile up in flight)
 *   errors N NAME...  the next N Produce requests fail with NAME, one
 *                     each in turn (REQUEST_TIMED_OUT,
 *                     NOT_LEADER_FOR_PARTITION, ...; librdkafka's names
 *                     without RD_KAFKA_RESP_ERR_)
 *   pid-errors N NAME...  the same for InitProducerId requests (a fatal
 *                     error of the idempotent producer, e.g.
 *                     CLUSTER_AUTHORIZATION_FAILED)
 *   no-errors         the Produce errors not used yet are dropped
 *
 * usage: kafkamock TOPIC
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define PRODUCE 0 /* the ProduceRequest ApiKey */
#define INIT_PRODUCER_ID 22

static int
error_code(const char *name, rd_kafka_resp_err_t *e)
{
	const struct rd_kafka_err_desc *d;
	size_t n;

	rd_kafka_get_err_descs(&d, &n);
	for (size_t i = 0; i < n; i++)
		if (d[i].name != NULL && strcmp(d[i].name, name) == 0) {
			*e = d[i].code;
			return 0;
		}
	return -1;
}

static int32_t
broker_id(const char *s)
{
	return s == NULL || strcmp(s, "all") == 0 ? -1 : (int32_t)atoi(s);
}

static int
command(rd_kafka_mock_cluster_t *mc, const char *topic, char *line)
{
	char *cmd = strtok(line, " \t\n"), *a = strtok(NULL, " \t\n");
	rd_kafka_resp_err_t errs[64];
	size_t n = 0;

	if (cmd == NULL)
		return 0;
	if (strcmp(cmd, "down") == 0)
		return rd_kafka_mock_broker_set_down(mc, broker_id(a)) ? -1 : 0;
	if (strcmp(cmd, "up") == 0)
		return rd_kafka_mock_broker_set_up(mc, broker_id(a)) ? -1 : 0;
	if (strcmp(cmd, "no-errors") == 0) {
		rd_kafka_mock_clear_request_errors(mc, PRODUCE);
		return 0;
	}
	if (strcmp(cmd, "rtt") == 0 && a != NULL) {
		char *ms = strtok(NULL, " \t\n");

		return ms == NULL || rd_kafka_mock_broker_set_rtt(mc,
					 broker_id(a), atoi(ms))
		    ? -1
		    : 0;
	}
	if (strcmp(cmd, "leader") == 0 && a != NULL)
		return rd_kafka_mock_partition_set_leader(mc, topic, atoi(a),
			   broker_id(strtok(NULL, " \t\n")))
		    ? -1
		    : 0;
	if ((strcmp(cmd, "errors") == 0 || strcmp(cmd, "pid-errors") == 0) &&
	    a != NULL) {
		size_t want = (size_t)atoi(a);
		char *name = NULL;

		while (n < want && n < 64) {
			char *next = strtok(NULL, " \t\n");

			if (next != NULL)
				name = next;
			if (name == NULL || error_code(name, &errs[n]) == -1)
				return -1;
			n++;
		}
		rd_kafka_mock_push_request_errors_array(mc,
		    strcmp(cmd, "errors") == 0 ? PRODUCE : INIT_PRODUCER_ID, n,
		    errs);
		return 0;
	}
	return -1;
}

int
main(int argc, char **argv)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_t *rk;
	char err[512], line[1024];

	if (argc != 2) {
		fprintf(stderr, "usage: kafkamock TOPIC\n");
		return 2;
	}
	/* It never connects anywhere: no warning that it has no brokers. */
	rd_kafka_conf_set(conf, "log_level", "4", err, sizeof err);
	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err)) ==
	    NULL) {
		fprintf(stderr, "kafkamock: %s\n", err);
		return 1;
	}
	if ((mc = rd_kafka_mock_cluster_new(rk, 3)) == NULL ||
	    rd_kafka_mock_topic_create(mc, argv[1], 3, 3) != 0) {
		fprintf(stderr, "kafkamock: cannot make the cluster\n");
		return 1;
	}
	printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	while (fgets(line, sizeof line, stdin) != NULL) {
		char copy[sizeof line];

		snprintf(copy, sizeof copy, "%s", line);
		copy[strcspn(copy, "\n")] = '\0';
		if (command(mc, argv[1], line) == -1)
			printf("error %s\n", copy);
		else
			printf("ok %s\n", copy);
		fflush(stdout);
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
