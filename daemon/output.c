/*
 * From events to records: the duplicate filter, priority, MESSAGE (built
 * once per event, shared by the outputs that use it) and MESSAGE_ID, then
 * one record per enabled output, queued to its writer thread.  The
 * outputs are the table below; nothing here knows one from another.
 * When an output's queue reaches QueueMax the stream is paused (TCP
 * back-pressure towards the server); it resumes once every queue is back
 * under half.  With a spool that spills (output_set_spill(), [Spool]
 * Mode=overflow), a full queue or a down output is not paused for: that
 * output's records go to the spool instead, in order, until the spool
 * has given back everything it holds for it (QUEUE_ROOM -> refill).
 * A reload that needs an output that cannot be opened changes nothing:
 * the caller keeps the running configuration.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

static const struct output_type *const outputs[] = {
	&journal_output,
	&syslog_output,
	&stdout_output,
#ifdef HAVE_KAFKA
	&kafka_output,
#endif
};
#define NOUTPUTS (sizeof outputs / sizeof outputs[0])

struct output;
struct slot {
	struct output *o;
	size_t i;
};

struct output {
	struct event_base *base;
	struct slot slot[NOUTPUTS]; /* each queue's notify argument */
	const struct spill_ops *spill; /* NULL: no spool */
	void *spill_arg;
	int overflow; /* full or down queues spill instead of pausing */
	int spilling[NOUTPUTS]; /* records for output i go to the spool */
	int paused[NOUTPUTS]; /* queue i full, counted in full */
	const struct conf *conf;
	struct queue *q[NOUTPUTS]; /* NULL: not enabled */
	int message; /* an open output uses MESSAGE */
	struct dedup *dedup;
	struct strbuf b;
	struct strbuf msg;
	void (*pause)(void *);
	void (*resume)(void *);
	void *arg;
	int full; /* outputs whose queue is full */
	uint64_t events;
	uint64_t duplicates;
	uint64_t spool_id; /* of the event being handed over, 0: none */
	const uint64_t *acked; /* replay: output i has written acked[i] */
	char uuid[128]; /* the last spooled event's uuid, for the spool */
	size_t uuid_len;
};

static int output_own(struct output *, const char *mid, int priority,
    const char *const *fields, const char *message, int report);

/* The spool gives back what it holds for output i, or some of it. */
static void
output_refill(struct output *o, size_t i)
{
	if (o->spill->refill(o->spill_arg, i, 0) == 1)
		o->spilling[i] = 0; /* new records follow in memory */
	else
		queue_watch(o->q[i]); /* more when there is room again */
}

/* A queue's news, on the loop. */
static void
output_notify(void *arg, int what)
{
	struct slot *sl = arg;
	struct output *o = sl->o;
	size_t i = sl->i;

	if (what == QUEUE_WRITTEN) {
		if (o->spill != NULL)
			o->spill->written(o->spill_arg);
		return;
	}
	if (what == QUEUE_DOWN) {
		if (o->overflow && o->spill->usable(o->spill_arg) &&
		    !o->spilling[i]) {
			o->spilling[i] = 1;
			queue_watch(o->q[i]);
		}
		return;
	}
	if (o->paused[i]) {
		o->paused[i] = 0;
		if (--o->full == 0) {
			log_notice("output queues below half: reading resumes");
			o->resume(o->arg);
		}
	}
	if (o->spilling[i])
		output_refill(o, i);
}

/*
 * Queue r for output i; the first queue to fill pauses the stream (with a
 * spool that spills, the next records go to the spool instead).  Returns
 * QUEUE_FULL_* when this paused the stream.
 */
static int
output_queue(struct output *o, size_t i, struct record *r)
{
	int full;

	if (o->spilling[i] && o->spill->put(o->spill_arg, i, r) == 0)
		return 0;
	if ((full = queue_push(o->q[i], r)) == 0)
		return 0;
	if (o->overflow && o->spill->usable(o->spill_arg)) {
		o->spilling[i] = 1;
		queue_watch(o->q[i]);
		return 0;
	}
	if (!o->paused[i]) {
		o->paused[i] = 1;
		if (o->full++ == 0) {
			o->pause(o->arg);
			return full;
		}
	}
	return 0;
}

/*
 * Queue r; when that paused the stream, say so, written by this file
 * straight to the outputs (not back through record.c).
 */
static void
output_push(struct output *o, size_t i, struct record *r)
{
	char msg[RECORD_MESSAGE_MAX];
	size_t n, bytes;
	int full;

	if ((full = output_queue(o, i, r)) == 0)
		return;
	n = queue_queued(o->q[i], &bytes);
	if (full == QUEUE_FULL_COUNT)
		snprintf(msg, sizeof msg,
		    "an output is slow or down: %zu records wait (QueueMax); "
		    "reading paused",
		    n);
	else
		snprintf(msg, sizeof msg,
		    "an output is slow or down: %zu records of %zu bytes wait "
		    "(QueueMaxBytes); reading paused",
		    n, bytes);
	if (!output_own(o, MID_QUEUE_FULL, 4, NULL, msg, 0) ||
	    !log_is_journal_stream())
		log_msg(4, "%s", msg);
}

/* Open output i for c with its queue; NULL (said why) if it cannot be. */
static struct queue *
output_open(struct output *o, size_t i, const struct conf *c)
{
	const struct output_type *t = outputs[i];
	struct queue *q;
	void *arg;

	o->slot[i] = (struct slot){ o, i };
	if ((arg = t->open(c)) == NULL) {
		log_err("cannot start the %s output", t->name);
		return NULL;
	}
	if ((q = queue_new(o->base, t->name, i, &t->ops, arg,
		 (size_t)c->queue_max, (size_t)c->queue_max_bytes, output_notify,
		 &o->slot[i])) == NULL) {
		t->ops.close(arg);
		log_err("cannot start the %s output", t->name);
	}
	return q;
}

static void
output_drop(size_t i, struct queue **q)
{
	size_t left;

	if (*q == NULL)
		return;
	if ((left = queue_close(*q, 1000)) > 0) {
		log_err("%zu records could not be written before the output "
			"was reconfigured",
		    left);
		stats_add(STAT_RECORDS_DROPPED,
		    stats_drop_label(i, STAT_DROP_RECONFIGURE), left);
	}
	*q = NULL;
}

static void
output_uses(struct output *o)
{
	o->message = 0;
	for (size_t i = 0; i < NOUTPUTS; i++)
		if (o->q[i] != NULL && outputs[i]->needs_message)
			o->message = 1;
}

struct output *
output_new(struct event_base *base, const struct conf *c, void (*pause)(void *),
    void (*resume)(void *), void *arg)
{
	struct output *o = calloc(1, sizeof *o);

	if (o == NULL || (o->dedup = dedup_new()) == NULL)
		fatal("out of memory");
	o->base = base;
	o->conf = c;
	o->pause = pause;
	o->resume = resume;
	o->arg = arg;
	for (size_t i = 0; i < NOUTPUTS; i++) {
		if (outputs[i]->enabled(c) &&
		    (o->q[i] = output_open(o, i, c)) == NULL) {
			output_close(o, 0);
			return NULL;
		}
	}
	output_uses(o);
	return o;
}

/*
 * A reloaded configuration: outputs switched on are opened, switched off
 * closed, retargeted reopened.  Every new one is opened first; if one
 * cannot be, nothing changes and -1 says the reload is refused.
 */
int
output_reconfigure(struct output *o, const struct conf *c)
{
	const struct conf *old = o->conf;
	struct queue *n[NOUTPUTS] = { 0 };

	for (size_t i = 0; i < NOUTPUTS; i++) {
		const struct output_type *t = outputs[i];

		if (!t->enabled(c) ||
		    (o->q[i] != NULL &&
			(t->reopen == NULL || !t->reopen(old, c))))
			continue;
		if ((n[i] = output_open(o, i, c)) == NULL) {
			for (size_t k = 0; k < i; k++)
				output_drop(k, &n[k]);
			return -1;
		}
	}
	for (size_t i = 0; i < NOUTPUTS; i++) {
		if (n[i] != NULL || !outputs[i]->enabled(c)) {
			output_drop(i, &o->q[i]);
			o->q[i] = n[i];
			if (o->paused[i]) {
				o->paused[i] = 0;
				if (--o->full == 0)
					o->resume(o->arg);
			}
			if (o->q[i] != NULL && o->spilling[i])
				queue_watch(o->q[i]);
		}
	}
	o->conf = c;
	output_uses(o);
	return 0;
}

void
output_event(void *arg, const struct dc_event *e)
{
	struct output *o = arg;
	const char *mid;
	int priority;

	stats_add(STAT_EVENTS_RECEIVED,
	    stats_type_label(ev_str(e, e->type), e->type.len), 1);
	stats_set(STAT_LAST_EVENT_MS, 0, clock_realtime_ms());
	if (e->uuid.off != SPAN_NONE &&
	    dedup_seen(o->dedup, ev_str(e, e->uuid), e->uuid.len)) {
		o->duplicates++;
		stats_add(STAT_EVENTS_DUPLICATE, 0, 1);
		log_debug("duplicate event %s skipped", ev_str(e, e->uuid));
		return;
	}
	if (e->dropped > 0)
		log_warn("an event had more than %d parents or %d other "
			 "members; %u were left out",
		    EVENT_MAX_PARENTS, EVENT_MAX_EXTRAS, e->dropped);
	o->events++;
	if (o->spool_id != 0 && e->uuid.off != SPAN_NONE &&
	    e->uuid.len <= sizeof o->uuid) {
		memcpy(o->uuid, ev_str(e, e->uuid), e->uuid.len);
		o->uuid_len = e->uuid.len;
	}
	if (o->message || log_get_verbosity() > 0) {
		strbuf_reset(&o->msg);
		dc_event_message(e, &o->msg);
		if (o->msg.failed)
			fatal("out of memory");
		if (log_get_verbosity() > 0)
			log_debug("event: %s", o->msg.buf);
	}
	priority = dc_event_priority(o->conf, e);
	mid = dc_event_message_id(e);
	for (size_t i = 0; i < NOUTPUTS; i++) {
		struct record *r;

		if (o->q[i] == NULL ||
		    (o->acked != NULL && o->acked[i] >= o->spool_id))
			continue;
		strbuf_reset(&o->b);
		outputs[i]->format_event(
		    o->conf, e, priority, mid, o->msg.buf, o->msg.len, &o->b);
		r = record_from(&o->b);
		r->spool_id = o->spool_id;
		output_push(o, i, r);
	}
}

/* The spool's: the events handed over next are its row id. */
void
output_set_spool_id(struct output *o, uint64_t id, const uint64_t *acked)
{
	o->spool_id = id;
	o->acked = acked;
}

/* enrich.c's: the spool id (and acked) of the event being handed over. */
uint64_t
output_get_spool_id(struct output *o, const uint64_t **acked)
{
	*acked = o->acked;
	return o->spool_id;
}

/* The spool's: the uuid of the event just handed over (0: none). */
size_t
output_take_uuid(struct output *o, const char **uuid)
{
	size_t n = o->uuid_len;

	*uuid = o->uuid;
	o->uuid_len = 0;
	return n;
}

/* The spool's: a uuid written before a restart, into the duplicate ring. */
void
output_seen(struct output *o, const char *uuid, size_t n)
{
	dedup_seen(o->dedup, uuid, n);
}

/* The spool's (Mode=overflow): the duplicate ring, kept at a stop... */
void
output_ring_each(struct output *o, void (*fn)(void *, uint64_t), void *arg)
{
	dedup_each(o->dedup, fn, arg);
}

/* ... and put back at the next start, one hash at a time, oldest first. */
void
output_ring_restore(struct output *o, uint64_t h)
{
	dedup_restore(o->dedup, h);
}

size_t
output_count(void)
{
	return NOUTPUTS;
}

const char *
output_name(size_t i)
{
	return outputs[i]->name;
}

int
output_is_open(const struct output *o, size_t i)
{
	return o->q[i] != NULL;
}

uint64_t
output_written_id(struct output *o, size_t i, int64_t *seq)
{
	if (o->q[i] == NULL) {
		if (seq != NULL)
			*seq = 0;
		return 0;
	}
	return queue_written_id(o->q[i], seq);
}

/*
 * The spool's: its records go to it (main wires this once, with overflow
 * when [Spool] Mode=overflow); spilling lists the outputs it holds
 * records for, which get those first.
 */
void
output_set_spill(struct output *o, const struct spill_ops *ops, void *arg,
    int overflow, const int *spilling)
{
	o->spill = ops;
	o->spill_arg = arg;
	o->overflow = overflow;
	for (size_t i = 0; i < NOUTPUTS; i++)
		if (spilling[i] && o->q[i] != NULL) {
			o->spilling[i] = 1;
			queue_watch(o->q[i]);
		}
}

/* The spool's: a record it gives back to output i; QUEUE_FULL_* if full. */
int
output_load(struct output *o, size_t i, struct record *r)
{
	return queue_push(o->q[i], r);
}

/*
 * The spool's: the spool failed; the records go on in memory, and a queue
 * that was spilling is full: reading pauses until it is below half.
 */
void
output_unspill(struct output *o)
{
	for (size_t i = 0; i < NOUTPUTS; i++) {
		if (!o->spilling[i])
			continue;
		o->spilling[i] = 0;
		if (o->q[i] == NULL || o->paused[i])
			continue;
		o->paused[i] = 1;
		if (o->full++ == 0)
			o->pause(o->arg);
		queue_watch(o->q[i]);
	}
}

/* The spool's: usable again: full queues spill instead of pausing. */
void
output_respill(struct output *o)
{
	for (size_t i = 0; i < NOUTPUTS && o->overflow; i++) {
		if (!o->paused[i] || o->q[i] == NULL)
			continue;
		o->paused[i] = 0;
		o->spilling[i] = 1;
		queue_watch(o->q[i]);
		if (--o->full == 0) {
			log_notice("the spool takes records again: reading "
				   "resumes");
			o->resume(o->arg);
		}
	}
}

/* The spool's: the stream is paused for a full queue (replay waits). */
int
output_paused(const struct output *o)
{
	return o->full > 0;
}

/* For stats.c: output i's queue, see queue_sample() (0 when closed). */
size_t
output_sample(struct output *o, size_t i, size_t *bytes,
    void (*fn)(void *), void *arg)
{
	if (o->q[i] != NULL)
		return queue_sample(o->q[i], bytes, fn, arg);
	*bytes = 0;
	fn(arg);
	return 0;
}

/*
 * A record of the daemon's own, to the outputs that take them; with
 * report, a queue it fills is reported as an event's would be (not when
 * it is that report).  Returns 1 when the journal took it.
 */
static int
output_own(struct output *o, const char *mid, int priority,
    const char *const *fields, const char *message, int report)
{
	int journal = 0;

	for (size_t i = 0; i < NOUTPUTS; i++) {
		struct record *r;

		if (o->q[i] == NULL || outputs[i]->format_daemon == NULL)
			continue;
		strbuf_reset(&o->b);
		outputs[i]->format_daemon(
		    o->conf, mid, priority, fields, message, &o->b);
		r = record_from(&o->b);
		stats_add(STAT_RECORDS_DAEMON, i, 1);
		if (report)
			output_push(o, i, r);
		else
			output_queue(o, i, r);
		journal |= outputs[i]->journal;
	}
	return journal;
}

/* record.c's handler, connected by main: see output_own(). */
int
output_daemon(void *arg, const char *mid, int priority,
    const char *const *fields, const char *message)
{
	return output_own(arg, mid, priority, fields, message, 1);
}

static uint64_t
ms_until(uint64_t end)
{
	uint64_t now = clock_ms();

	return now >= end ? 0 : end - now;
}

static void
output_keep(void *arg, const struct record *r)
{
	struct slot *k = arg;

	k->o->spill->keep(k->o->spill_arg, k->i, r);
}

/* Let every writer thread flush, in parallel, to one deadline ms away. */
static void
output_flush(struct output *o, uint64_t ms)
{
	uint64_t end = clock_ms() + ms;

	for (size_t i = 0; i < NOUTPUTS; i++)
		queue_stop(o->q[i], ms);
	for (size_t i = 0; i < NOUTPUTS; i++)
		queue_join(o->q[i], ms_until(end));
}

/*
 * Flush every output for at most ms; with a spool, what is left goes to
 * it.  Returns the records neither written nor kept.  The queues stay
 * (what they wrote is asked for after) until output_close().
 */
size_t
output_stop(struct output *o, uint64_t ms)
{
	size_t left = 0;

	if (o == NULL)
		return 0;
	output_flush(o, ms);
	for (size_t i = 0; i < NOUTPUTS; i++) {
		struct slot k = { o, i };
		size_t n;

		if (o->q[i] == NULL)
			continue;
		n = queue_unwritten(o->q[i], NULL, NULL);
		if (o->spill == NULL ||
		    o->spill->keep_begin(o->spill_arg, i, n) == -1) {
			left += n;
			continue;
		}
		queue_unwritten(o->q[i], output_keep, &k);
		if (o->spill->kept(o->spill_arg, i) == -1)
			left += n;
	}
	return left;
}

/* Flush every output for at most ms; the records left unwritten. */
size_t
output_close(struct output *o, uint64_t ms)
{
	size_t left = 0;

	if (o == NULL)
		return 0;
	output_flush(o, ms);
	for (size_t i = 0; i < NOUTPUTS; i++) {
		size_t n = queue_close(o->q[i], 0);

		stats_add(STAT_RECORDS_DROPPED,
		    stats_drop_label(i, STAT_DROP_STOP), n);
		left += n;
	}
	dedup_free(o->dedup);
	free(strbuf_finish(&o->b));
	free(strbuf_finish(&o->msg));
	free(o);
	return left;
}
