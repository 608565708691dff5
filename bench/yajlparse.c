/*
 * yajlparse: the parsing ceiling.  Parses the benchmark's events (one JSON
 * text a line, as the load generator sends them) in-process, N messages
 * cycling through the file, each with a fresh handle as dcevents does:
 *   yajl   yajl_alloc + yajl_parse + yajl_complete_parse + yajl_free with
 *          callbacks that do nothing
 *   json.c dcevents' own chunk-fed parser (daemon/json.c: yajl and the
 *          callbacks that build the event), json_begin/json_feed/json_end
 *
 *   yajlparse EVENTS.jsonl N
 *
 * Prints, per parser: NAME events=N cpu_ns=T (this thread's CPU time).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_parse.h>

#include "dcevents.h"

static int
ok0(void *ctx)
{
	return 1;
}
static int
okb(void *ctx, int b)
{
	return 1;
}
static int
okn(void *ctx, const char *s, size_t n)
{
	return 1;
}
static int
oks(void *ctx, const unsigned char *s, size_t n)
{
	return 1;
}

static const yajl_callbacks nop = { ok0, okb, NULL, NULL, okn, oks, ok0, oks,
	ok0, ok0, ok0 };

static uint64_t
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int
main(int argc, char **argv)
{
	FILE *f;
	char *line = NULL, **msg = NULL;
	size_t cap = 0, *len = NULL, n = 0, count;
	ssize_t k;
	uint64_t t0, sink = 0;
	struct json *j;

	if (argc != 3 || (f = fopen(argv[1], "r")) == NULL) {
		fprintf(stderr, "usage: yajlparse EVENTS.jsonl N\n");
		return 1;
	}
	count = strtoul(argv[2], NULL, 10);
	while ((k = getline(&line, &cap, f)) > 0) {
		msg = realloc(msg, (n + 1) * sizeof *msg);
		len = realloc(len, (n + 1) * sizeof *len);
		len[n] = (size_t)k - (line[k - 1] == '\n');
		msg[n] = malloc(len[n]);
		memcpy(msg[n], line, len[n]);
		n++;
	}
	fclose(f);
	if (n == 0)
		return 1;

	t0 = cpu_ns();
	for (size_t i = 0; i < count; i++) {
		yajl_handle h = yajl_alloc(&nop, NULL, NULL);

		if (yajl_parse(h, (const unsigned char *)msg[i % n],
			len[i % n]) != yajl_status_ok ||
		    yajl_complete_parse(h) != yajl_status_ok) {
			fprintf(stderr, "yajlparse: event %zu: invalid\n", i);
			return 1;
		}
		yajl_free(h);
	}
	printf("yajl events=%zu cpu_ns=%llu\n", count,
	    (unsigned long long)(cpu_ns() - t0));

	j = json_new();
	t0 = cpu_ns();
	for (size_t i = 0; i < count; i++) {
		const struct dc_event *e;
		const char *why, *ex;

		json_begin(j);
		json_feed(j, (const uint8_t *)msg[i % n], len[i % n]);
		if ((e = json_end(j, &why, &ex)) == NULL) {
			fprintf(stderr, "yajlparse: event %zu: %s\n", i, why);
			return 1;
		}
		sink += e->nparents;
	}
	printf("json.c events=%zu cpu_ns=%llu\n", count,
	    (unsigned long long)(cpu_ns() - t0));
	json_free(j);
	return sink == 0;
}
