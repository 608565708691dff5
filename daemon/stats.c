/*
 * The daemon's statistics: the counters every subsystem bumps where an
 * event is received, written, duplicated, rejected or dropped, and the
 * one table of metric families that says what each is called, what it
 * means and which label values it has.  Every series of the table exists
 * from start-up at 0 (an alert on a series that is missing until its
 * first increment never fires).  The label values of {output} are
 * output.c's table, so a new output appears here without an edit; the
 * others are the fixed lists below (README, "Metrics").
 *
 * Counting is one relaxed atomic add into stats_v (dcevents.h), so the
 * writer threads count as cheaply as the loop does.  The gauges are read
 * from their owners when a snapshot is taken: the queue's depth under
 * the queue's lock, together with the counters the writer changes under
 * that lock, so that for each output, at every snapshot,
 *   received - duplicates + daemon records
 *       = written + dropped + queued
 * holds exactly.  A snapshot is written as the Prometheus text
 * exposition (metrics.c serves it) or as one journal record with one
 * field per series (StatsIntervalSec=, SIGUSR1).
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/time.h>

#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "dcevents.h"

_Atomic uint64_t stats_v[STAT_N][STAT_LABELS_MAX];

/* A dimension of labels: its name and values. */
struct dim {
	const char *name;
	size_t (*count)(void);
	const char *(*value)(size_t);
};

#define FIXED_DIM(id, ...)                                                     \
	static const char *const id##_values[] = { __VA_ARGS__ };              \
	static size_t id##_count(void)                                         \
	{                                                                      \
		return sizeof id##_values / sizeof id##_values[0];             \
	}                                                                      \
	static const char *id##_value(size_t i)                                \
	{                                                                      \
		return id##_values[i];                                         \
	}

/* In the order of the STAT_TYPE_, ... enums of dcevents.h. */
FIXED_DIM(type, "stack", "service", "container", "nodecluster", "node",
    "action", "error", "other")
FIXED_DIM(invalid, "invalid_json", "not_an_object", "too_deep", "empty",
    "oversize", "invalid_utf8", "other")
FIXED_DIM(drop, "reconfigure", "stop")
FIXED_DIM(disc, "closed", "timeout", "protocol", "network", "reconfigure",
    "connect_failed", "auth")
FIXED_DIM(enrich, "cached", "ok", "not_found", "unauthorized", "rate_limited",
    "server_error", "timeout", "invalid")
FIXED_DIM(version, PACKAGE_VERSION)

static const struct dim d_type = { "type", type_count, type_value };
static const struct dim d_invalid = { "reason", invalid_count, invalid_value };
static const struct dim d_output = { "output", output_count, output_name };
static const struct dim d_drop = { "reason", drop_count, drop_value };
static const struct dim d_disc = { "reason", disc_count, disc_value };
static const struct dim d_enrich = { "result", enrich_count, enrich_value };
static const struct dim d_version = { "version", version_count, version_value };

/* The name of an enrichment result (STAT_ENRICH_...), for enrich.c's log. */
const char *
stats_enrich_result(size_t i)
{
	return i < enrich_count() ? enrich_value(i) : "?";
}

/* The values read when a snapshot is taken, not counted. */
enum sample {
	S_NONE, /* a counter of stats_v */
	S_OUTPUT_OPEN,
	S_QUEUE_RECORDS,
	S_QUEUE_BYTES,
	S_QUEUE_CAPACITY,
	S_QUEUE_CAPACITY_BYTES,
	S_SPOOL_RECORDS,
	S_SPOOL_BYTES,
	S_SPOOL_DROPPED,
	S_ONE, /* build_info */
	S_CPU,
	S_RSS,
	S_VSIZE,
	S_FDS,
	S_MAX_FDS,
	S_START,
	S_N
};

struct family {
	const char *name;
	const char *type; /* counter or gauge */
	const char *help;
	const struct dim *d1, *d2; /* NULL: no label; index = i1 * n2 + i2 */
	int stat; /* enum stat_id, or -1 */
	enum sample sample;
	unsigned scale; /* the counter holds value * scale */
};

static const struct family families[] = {
	{ "dcevents_events_received_total", "counter",
	    "Events received from the stream (duplicates included), by type.",
	    &d_type, NULL, STAT_EVENTS_RECEIVED, S_NONE, 1 },
	{ "dcevents_events_duplicate_total", "counter",
	    "Events skipped as duplicates (a uuid seen among the last 4096).",
	    NULL, NULL, STAT_EVENTS_DUPLICATE, S_NONE, 1 },
	{ "dcevents_messages_invalid_total", "counter",
	    "Messages that were no event, skipped, by reason.", &d_invalid,
	    NULL, STAT_MESSAGES_INVALID, S_NONE, 1 },
	{ "dcevents_records_written_total", "counter",
	    "Records an output has written (events and the daemon's own).",
	    &d_output, NULL, STAT_RECORDS_WRITTEN, S_NONE, 1 },
	{ "dcevents_records_daemon_total", "counter",
	    "The daemon's own records (connected, gap, statistics...) queued "
	    "for an output.",
	    &d_output, NULL, STAT_RECORDS_DAEMON, S_NONE, 1 },
	{ "dcevents_records_dropped_total", "counter",
	    "Records given up unwritten, by output and reason.", &d_output,
	    &d_drop, STAT_RECORDS_DROPPED, S_NONE, 1 },
	{ "dcevents_output_errors_total", "counter",
	    "Failed writes to an output (each retry counts).", &d_output, NULL,
	    STAT_OUTPUT_ERRORS, S_NONE, 1 },
	{ "dcevents_output_open", "gauge",
	    "1 when the configuration enables the output (it has a queue).",
	    &d_output, NULL, -1, S_OUTPUT_OPEN, 1 },
	{ "dcevents_queue_records", "gauge",
	    "Records waiting in an output's queue.", &d_output, NULL, -1,
	    S_QUEUE_RECORDS, 1 },
	{ "dcevents_queue_bytes", "gauge",
	    "Bytes of the records waiting in an output's queue.", &d_output,
	    NULL, -1, S_QUEUE_BYTES, 1 },
	{ "dcevents_queue_capacity_records", "gauge",
	    "QueueMax: the records an output's queue holds before reading "
	    "pauses.",
	    &d_output, NULL, -1, S_QUEUE_CAPACITY, 1 },
	{ "dcevents_queue_capacity_bytes", "gauge",
	    "QueueMaxBytes: the bytes an output's queue holds before reading "
	    "pauses.",
	    &d_output, NULL, -1, S_QUEUE_CAPACITY_BYTES, 1 },
	{ "dcevents_spool_records", "gauge", "Events held in the spool.", NULL,
	    NULL, -1, S_SPOOL_RECORDS, 1 },
	{ "dcevents_spool_bytes", "gauge",
	    "Size of the spool: the database and its WAL.", NULL, NULL, -1,
	    S_SPOOL_BYTES, 1 },
	{ "dcevents_spool_dropped_total", "counter",
	    "Records the spool dropped at MaxBytes (WhenFull=drop-oldest).",
	    NULL, NULL, -1, S_SPOOL_DROPPED, 1 },
	{ "dcevents_connected", "gauge",
	    "1 while the websocket to the events service is open.", NULL, NULL,
	    STAT_CONNECTED, S_NONE, 1 },
	{ "dcevents_connects_total", "counter",
	    "Websocket connections opened to the events service.", NULL, NULL,
	    STAT_CONNECTS, S_NONE, 1 },
	{ "dcevents_disconnects_total", "counter",
	    "Connections that ended and attempts that failed, by reason.",
	    &d_disc, NULL, STAT_DISCONNECTS, S_NONE, 1 },
	{ "dcevents_stream_gap_seconds_total", "counter",
	    "Seconds the stream was down between two connections (events of "
	    "that time may be missing).",
	    NULL, NULL, STAT_STREAM_GAP_MS, S_NONE, 1000 },
	{ "dcevents_last_event_timestamp_seconds", "gauge",
	    "When the last event was received (Unix time; 0: none yet).", NULL,
	    NULL, STAT_LAST_EVENT_MS, S_NONE, 1000 },
	{ "dcevents_enrich_lookups_total", "counter",
	    "Enrichment lookups, by result.", &d_enrich, NULL,
	    STAT_ENRICH_LOOKUPS, S_NONE, 1 },
	{ "dcevents_build_info", "gauge", "The version of dcevents running.",
	    &d_version, NULL, -1, S_ONE, 1 },
	{ "process_cpu_seconds_total", "counter",
	    "Total user and system CPU time spent in seconds.", NULL, NULL, -1,
	    S_CPU, 1 },
	{ "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes.", NULL, NULL, -1, S_RSS, 1 },
	{ "process_virtual_memory_bytes", "gauge",
	    "Virtual memory size in bytes.", NULL, NULL, -1, S_VSIZE, 1 },
	{ "process_open_fds", "gauge", "Number of open file descriptors.", NULL,
	    NULL, -1, S_FDS, 1 },
	{ "process_max_fds", "gauge",
	    "Maximum number of open file descriptors.", NULL, NULL, -1,
	    S_MAX_FDS, 1 },
	{ "process_start_time_seconds", "gauge",
	    "Start time of the process since unix epoch in seconds.", NULL,
	    NULL, -1, S_START, 1 },
};
#define NFAMILIES (sizeof families / sizeof families[0])

static struct {
	struct output *output;
	const struct conf *conf;
	struct event *timer;
	double start; /* wall clock at start-up */
} st;

/* One consistent view: every counter, and the sampled values. */
struct snapshot {
	uint64_t v[STAT_N][STAT_LABELS_MAX];
	uint64_t queue_records[STAT_LABELS_MAX], queue_bytes[STAT_LABELS_MAX];
	int open[STAT_LABELS_MAX];
	double proc[S_N];
};

/* The label index of an event's type (events_received{type}). */
size_t
stats_type_label(const char *type, size_t len)
{
	if (type != NULL)
		for (size_t i = 0; i < STAT_TYPE_OTHER; i++)
			if (strlen(type_values[i]) == len &&
			    memcmp(type_values[i], type, len) == 0)
				return i;
	return STAT_TYPE_OTHER;
}

/* The label index of json_end()'s reason (messages_invalid{reason}). */
size_t
stats_invalid_label(const char *why)
{
	static const struct {
		const char *why;
		size_t label;
	} map[] = {
		{ "invalid JSON", STAT_INVALID_JSON },
		{ "not a JSON object", STAT_INVALID_NOT_OBJECT },
		{ "nested deeper than 32 levels", STAT_INVALID_TOO_DEEP },
		{ "empty message", STAT_INVALID_EMPTY },
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (why != NULL && strcmp(why, map[i].why) == 0)
			return map[i].label;
	return STAT_INVALID_OTHER;
}

/* The spool whose size is reported (NULL: none), read on the loop. */
static const struct spool *stats_spool_of;

void
stats_set_spool(const struct spool *sp)
{
	stats_spool_of = sp;
}

/* Copy output i's counters: called with its queue's lock held. */
struct output_sample {
	struct snapshot *s;
	size_t i;
};

static void
stats_copy_output(void *arg)
{
	struct output_sample *os = arg;

	for (size_t f = 0; f < NFAMILIES; f++) {
		const struct family *fa = &families[f];
		size_t n2 = fa->d2 ? fa->d2->count() : 1;

		if (fa->stat < 0 || fa->d1 != &d_output)
			continue;
		for (size_t k = 0; k < n2; k++) {
			size_t l = os->i * n2 + k;

			os->s->v[fa->stat][l] = atomic_load_explicit(
			    &stats_v[fa->stat][l], memory_order_relaxed);
		}
	}
}

static void
stats_process(struct snapshot *s)
{
	char buf[1024], *p;
	unsigned long utime = 0, stime = 0, vsize = 0;
	long rss = 0, tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	FILE *f;
	DIR *d;
	struct dirent *de;
	size_t fds = 0;

	/* /proc/self/stat: after "(comm)", field 3 is the state. */
	if ((f = fopen("/proc/self/stat", "re")) != NULL) {
		if (fgets(buf, sizeof buf, f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL)
			sscanf(p + 2,
			    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu "
			    "%lu %*d %*d %*d %*d %*d %*d %*u %lu %ld",
			    &utime, &stime, &vsize, &rss);
		fclose(f);
	}
	s->proc[S_CPU] = tick > 0 ? (double)(utime + stime) / (double)tick : 0;
	s->proc[S_VSIZE] = (double)vsize;
	s->proc[S_RSS] = (double)rss * (double)(page > 0 ? page : 4096);
	if ((d = opendir("/proc/self/fd")) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				fds++;
		closedir(d);
		fds--; /* the directory's own */
	}
	s->proc[S_FDS] = (double)fds;
	s->proc[S_MAX_FDS] =
	    getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (double)rl.rlim_cur : 0;
	s->proc[S_START] = st.start;
	s->proc[S_ONE] = 1;
	s->proc[S_SPOOL_RECORDS] = (double)spool_records(stats_spool_of);
	s->proc[S_SPOOL_BYTES] = (double)spool_bytes(stats_spool_of);
	s->proc[S_SPOOL_DROPPED] = (double)spool_dropped(stats_spool_of);
}

static void
stats_snapshot(struct snapshot *s)
{
	for (size_t i = 0; i < STAT_N; i++)
		for (size_t l = 0; l < STAT_LABELS_MAX; l++)
			s->v[i][l] = atomic_load_explicit(
			    &stats_v[i][l], memory_order_relaxed);
	for (size_t i = 0; i < output_count(); i++) {
		struct output_sample os = { s, i };
		size_t bytes = 0;

		s->queue_records[i] = st.output == NULL
		    ? 0
		    : output_sample(
			  st.output, i, &bytes, stats_copy_output, &os);
		s->queue_bytes[i] = bytes;
		s->open[i] = st.output != NULL && output_is_open(st.output, i);
		if (st.output == NULL)
			stats_copy_output(&os);
	}
	stats_process(s);
}

/* The value of family f, label l, in s. */
static double
stats_value(const struct snapshot *s, const struct family *f, size_t l)
{
	switch (f->sample) {
	case S_NONE:
		return f->scale == 1 ? (double)s->v[f->stat][l]
				     : (double)s->v[f->stat][l] / f->scale;
	case S_OUTPUT_OPEN:
		return s->open[l];
	case S_QUEUE_RECORDS:
		return (double)s->queue_records[l];
	case S_QUEUE_BYTES:
		return (double)s->queue_bytes[l];
	case S_QUEUE_CAPACITY:
		return st.conf ? (double)st.conf->queue_max : 0;
	case S_QUEUE_CAPACITY_BYTES:
		return st.conf ? (double)st.conf->queue_max_bytes : 0;
	default:
		return s->proc[f->sample];
	}
}

static size_t
family_series(const struct family *f)
{
	return (f->d1 ? f->d1->count() : 1) * (f->d2 ? f->d2->count() : 1);
}

static void
add_value(struct strbuf *b, double v)
{
	if (v == (double)(uint64_t)v && v < 1e19)
		strbuf_printf(b, " %" PRIu64 "\n", (uint64_t)v);
	else
		strbuf_printf(b, " %.15g\n", v);
}

/* The Prometheus text exposition (format 0.0.4) of a fresh snapshot. */
void
stats_prometheus(struct strbuf *b)
{
	static struct snapshot s;

	stats_snapshot(&s);
	for (size_t i = 0; i < NFAMILIES; i++) {
		const struct family *f = &families[i];
		size_t n2 = f->d2 ? f->d2->count() : 1;

		strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name,
		    f->help, f->name, f->type);
		for (size_t l = 0; l < family_series(f); l++) {
			strbuf_add(b, f->name, strlen(f->name));
			if (f->d1 != NULL)
				strbuf_printf(b, "{%s=\"%s\"", f->d1->name,
				    f->d1->value(l / n2));
			if (f->d2 != NULL)
				strbuf_printf(b, ",%s=\"%s\"", f->d2->name,
				    f->d2->value(l % n2));
			if (f->d1 != NULL)
				strbuf_add(b, "}", 1);
			add_value(b, stats_value(&s, f, l));
		}
	}
}

/* NAME_VALUE as a journal field name: upper case, '_' for the rest. */
static void
add_field_name(struct strbuf *b, const char *s)
{
	for (; *s != '\0'; s++)
		strbuf_add(b,
		    &(char){ isalnum((unsigned char)*s)
			    ? (char)toupper((unsigned char)*s)
			    : '_' },
		    1);
}

/*
 * The statistics record: one field a series, DCEVENTS_ and the family's
 * name without its "dcevents_" (process_ families keep theirs) and each
 * label value, in upper case.
 */
void
stats_record(void)
{
	static struct snapshot s;
	struct strbuf b = { 0 };
	const char **fields;
	size_t n = 0, k = 0, *offs;
	uint64_t received = 0, written = 0, dropped = 0, queued = 0;

	stats_snapshot(&s);
	for (size_t i = 0; i < NFAMILIES; i++)
		n += family_series(&families[i]);
	if ((fields = calloc(n + 1, sizeof *fields)) == NULL ||
	    (offs = calloc(n, sizeof *offs)) == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < NFAMILIES; i++) {
		const struct family *f = &families[i];
		size_t n2 = f->d2 ? f->d2->count() : 1;
		const char *name = f->name;

		if (strncmp(name, "dcevents_", 9) == 0)
			name += 9;
		for (size_t l = 0; l < family_series(f); l++) {
			offs[k++] = b.len;
			strbuf_add(&b, "DCEVENTS_", 9);
			add_field_name(&b, name);
			if (f->d1 != NULL) {
				strbuf_add(&b, "_", 1);
				add_field_name(&b, f->d1->value(l / n2));
			}
			if (f->d2 != NULL) {
				strbuf_add(&b, "_", 1);
				add_field_name(&b, f->d2->value(l % n2));
			}
			strbuf_add(&b, "=", 1);
			strbuf_printf(&b, "%.15g", stats_value(&s, f, l));
			strbuf_add(&b, "", 1); /* the NUL */
		}
	}
	if (b.failed)
		fatal("out of memory");
	for (size_t i = 0; i < k; i++)
		fields[i] = b.buf + offs[i];
	for (size_t l = 0; l < STAT_TYPE_N; l++)
		received += s.v[STAT_EVENTS_RECEIVED][l];
	for (size_t i = 0; i < output_count(); i++) {
		written += s.v[STAT_RECORDS_WRITTEN][i];
		queued += s.queue_records[i];
		for (size_t r = 0; r < STAT_DROP_N; r++)
			dropped +=
			    s.v[STAT_RECORDS_DROPPED][stats_drop_label(i, r)];
	}
	record_daemon(MID_STATS, 6, fields,
	    "statistics: %" PRIu64 " events received, %" PRIu64
	    " duplicates, %" PRIu64 " records written, %" PRIu64
	    " dropped, %" PRIu64 " queued",
	    received, s.v[STAT_EVENTS_DUPLICATE][0], written, dropped, queued);
	free(fields);
	free(offs);
	free(strbuf_finish(&b));
}

static void
stats_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	stats_record();
}

/* Start counting for output o (its queues) and c (QueueMax, the timer). */
void
stats_start(struct event_base *base, struct output *o, const struct conf *c)
{
	struct timeval tv;
	size_t no = output_count();

	if (no * STAT_DROP_N > STAT_LABELS_MAX ||
	    STAT_TYPE_N > STAT_LABELS_MAX || STAT_DISC_N > STAT_LABELS_MAX ||
	    STAT_ENRICH_N > STAT_LABELS_MAX)
		fatal("STAT_LABELS_MAX is too small");
	gettimeofday(&tv, NULL);
	st.start = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
	st.output = o;
	st.timer = event_new(base, -1, EV_PERSIST, stats_timer_cb, NULL);
	if (st.timer == NULL)
		fatal("out of memory");
	stats_reconfigure(c);
}

/* A new configuration: QueueMax, and StatsIntervalSec's timer. */
void
stats_reconfigure(const struct conf *c)
{
	struct timeval tv;

	if (st.timer == NULL)
		return;
	if (st.conf == NULL ||
	    st.conf->stats_interval_ms != c->stats_interval_ms) {
		event_del(st.timer);
		if (c->stats_interval_ms > 0) {
			tv = tv_ms(c->stats_interval_ms);
			event_add(st.timer, &tv);
		}
	}
	st.conf = c;
}

void
stats_stop(void)
{
	if (st.timer != NULL)
		event_free(st.timer);
	st.timer = NULL;
	st.output = NULL;
	st.conf = NULL;
}
