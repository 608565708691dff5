/*
 * From events to records: the duplicate filter, priority, MESSAGE and
 * MESSAGE_ID, then one record per enabled output, queued to its writer
 * thread.  When an output's queue reaches QueueMax the stream is paused
 * (TCP back-pressure towards the server); it resumes once every queue is
 * back under half.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

struct output {
	struct event_base *base;
	const struct conf *conf;
	struct sink *journal;
	struct sink *syslog;
	struct sink *out;
	struct dedup *dedup;
	struct strbuf b;
	struct strbuf msg;
	void (*pause)(void *);
	void (*resume)(void *);
	void *arg;
	int full; /* outputs whose queue is full */
	uint64_t events;
	uint64_t duplicates;
};

static void
output_resume(void *arg)
{
	struct output *o = arg;

	if (o->full > 0 && --o->full == 0) {
		log_notice("output queues below half: reading resumes");
		o->resume(o->arg);
	}
}

static void
output_push(struct output *o, struct sink *s, struct rec *r)
{
	int full = sink_push(s, r);
	size_t n, bytes;

	if (full && o->full++ == 0) {
		o->pause(o->arg);
		n = sink_queued(s, &bytes);
		if (full == SINK_FULL_COUNT)
			record_daemon(MID_QUEUE_FULL, 4, NULL,
			    "an output is slow or down: %zu records wait "
			    "(QueueMax); reading paused",
			    n);
		else
			record_daemon(MID_QUEUE_FULL, 4, NULL,
			    "an output is slow or down: %zu records of %zu "
			    "bytes wait (QueueMaxBytes); reading paused",
			    n, bytes);
	}
}

static struct sink *
output_open(
    struct output *o, const char *name, const struct sink_ops *ops, void *arg)
{
	struct sink *s;

	if (arg == NULL ||
	    (s = sink_new(o->base, name, ops, arg, (size_t)o->conf->queue_max,
		 (size_t)o->conf->queue_max_bytes, output_resume, o)) == NULL) {
		log_err("cannot start the %s output", name);
		exit(EXIT_FATAL);
	}
	return s;
}

/* Open the enabled outputs not open yet; -1 if one cannot be. */
static int
output_sinks(struct output *o)
{
	const struct conf *c = o->conf;
	int rc = 0;

	if (c->journal && o->journal == NULL &&
	    (o->journal = output_open(
		 o, "journal", &journal_ops, journal_open(c))) == NULL)
		rc = -1;
	if (c->syslog_mode != SYSLOG_NO && o->syslog == NULL &&
	    (o->syslog = output_open(
		 o, "syslog", &syslog_ops, syslog_open(c))) == NULL)
		rc = -1;
	if (c->stdout_json && o->out == NULL &&
	    (o->out = output_open(o, "stdout", &stdout_ops, stdout_open(c))) ==
		NULL)
		rc = -1;
	return rc;
}

struct output *
output_new(struct event_base *base, const struct conf *c, void (*pause)(void *),
    void (*resume)(void *), void *arg)
{
	struct output *o = calloc(1, sizeof *o);

	if (o == NULL || (o->dedup = dedup_new()) == NULL) {
		log_err("out of memory");
		exit(EXIT_FATAL);
	}
	o->base = base;
	o->conf = c;
	o->pause = pause;
	o->resume = resume;
	o->arg = arg;
	if (output_sinks(o) == -1) {
		output_close(o, 0);
		return NULL;
	}
	return o;
}

static void
output_drop(struct output *o, struct sink **s)
{
	size_t left = sink_close(*s, 1000);

	if (left > 0)
		log_err("%zu records could not be written before the output "
			"was reconfigured",
		    left);
	*s = NULL;
}

/* A reloaded configuration: outputs switched or retargeted are reopened. */
void
output_reconfigure(struct output *o, const struct conf *c)
{
	const struct conf *old = o->conf;

	if (o->journal != NULL && !c->journal)
		output_drop(o, &o->journal);
	if (o->out != NULL && !c->stdout_json)
		output_drop(o, &o->out);
	if (o->syslog != NULL &&
	    (strcmp(old->syslog, c->syslog) != 0 ||
		strcmp(old->syslog_cafile, c->syslog_cafile) != 0 ||
		strcmp(old->syslog_capath, c->syslog_capath) != 0)) {
		/* The new target first: if it cannot be used, keep the old. */
		struct sink *n = c->syslog_mode == SYSLOG_NO
		    ? NULL
		    : output_open(o, "syslog", &syslog_ops, syslog_open(c));

		if (n == NULL && c->syslog_mode != SYSLOG_NO)
			log_err("keeping the previous syslog output");
		else {
			output_drop(o, &o->syslog);
			o->syslog = n;
		}
	}
	o->conf = c;
	if (output_sinks(o) == -1)
		log_err("an output could not be started; the others run");
}

static void
add_field(
    struct strbuf *b, const char *name, const struct dc_event *e, struct span s)
{
	if (s.off != SPAN_NONE)
		journal_rec_add(b, name, ev_str(e, s), s.len);
}

static void
add_common(struct output *o, int priority, const char *mid, const char *msg,
    size_t mlen)
{
	char p[2] = { (char)('0' + priority), 0 }, f[8];

	journal_rec_add(&o->b, "MESSAGE", msg, mlen);
	journal_rec_add(&o->b, "PRIORITY", p, 1);
	journal_rec_add(&o->b, "SYSLOG_IDENTIFIER", o->conf->identifier,
	    strlen(o->conf->identifier));
	snprintf(f, sizeof f, "%d", o->conf->syslog_facility);
	journal_rec_add(&o->b, "SYSLOG_FACILITY", f, strlen(f));
	journal_rec_add(&o->b, "MESSAGE_ID", mid, strlen(mid));
}

/* The journal record of SPEC 5.1. */
static struct rec *
output_journal_rec(
    struct output *o, const struct dc_event *e, int priority, const char *mid)
{
	static int warned;
	struct strbuf *b = &o->b;
	const struct conf *c = o->conf;
	char name[65];

	journal_rec_begin(b);
	add_common(o, priority, mid, o->msg.buf, o->msg.len);
	add_field(b, "DOCKERCLOUD_TYPE", e, e->type);
	add_field(b, "DOCKERCLOUD_ACTION", e, e->action);
	add_field(b, "DOCKERCLOUD_STATE", e, e->state);
	add_field(b, "DOCKERCLOUD_UUID", e, e->uuid);
	add_field(b, "DOCKERCLOUD_RESOURCE_URI", e, e->resource_uri);
	add_field(b, "DOCKERCLOUD_OBJECT_UUID", e, dc_event_object_uuid(e));
	for (unsigned i = 0; i < e->nparents; i++)
		add_field(b, "DOCKERCLOUD_PARENT", e, e->parents[i]);
	add_field(b, "DOCKERCLOUD_DATETIME", e, e->datetime);
	if (*c->ns != '\0')
		journal_rec_add(
		    b, "DOCKERCLOUD_NAMESPACE", c->ns, strlen(c->ns));
	add_field(b, "DOCKERCLOUD_ERROR", e, e->error);
	for (unsigned i = 0; i < e->nextras; i++) {
		if (dc_event_field_name(ev_str(e, e->extras[i].name),
			e->extras[i].name.len, e->extras[i].in_data,
			name) == -1) {
			struct span n = e->extras[i].name;

			if (!warned++)
				log_warn("member \"%.*s\" skipped: its journal "
					 "field name would be too long or "
					 "taken",
				    (int)utf8_complete(ev_str(e, n),
					n.len > 64 ? 64 : n.len),
				    ev_str(e, n));
			continue;
		}
		add_field(b, name, e, e->extras[i].value);
	}
	return journal_rec_finish(b);
}

void
output_event(struct output *o, const struct dc_event *e)
{
	const char *mid;
	int priority;

	if (e->uuid.off != SPAN_NONE &&
	    dedup_seen(o->dedup, ev_str(e, e->uuid), e->uuid.len)) {
		o->duplicates++;
		log_debug("duplicate event %s skipped", ev_str(e, e->uuid));
		return;
	}
	if (e->dropped > 0)
		log_warn("an event had more than %d parents or %d other "
			 "members; %u were left out",
		    EVENT_MAX_PARENTS, EVENT_MAX_EXTRAS, e->dropped);
	o->events++;
	if (o->journal != NULL || o->syslog != NULL ||
	    log_get_verbosity() > 0) {
		/* stdout alone needs no MESSAGE */
		strbuf_reset(&o->msg);
		dc_event_message(e, &o->msg);
		if (o->msg.failed) {
			log_err("out of memory");
			exit(EXIT_FATAL);
		}
		if (log_get_verbosity() > 0)
			log_debug("event: %s", o->msg.buf);
	}
	priority = dc_event_priority(o->conf, e);
	mid = dc_event_message_id(e);
	if (o->journal != NULL)
		output_push(
		    o, o->journal, output_journal_rec(o, e, priority, mid));
	if (o->syslog != NULL) {
		strbuf_reset(&o->b);
		syslog_format(
		    o->conf, e, priority, o->msg.buf, o->msg.len, &o->b);
		output_push(o, o->syslog, journal_rec_finish(&o->b));
	}
	if (o->out != NULL) {
		strbuf_reset(&o->b);
		stdout_format(o->conf, e, &o->b);
		output_push(o, o->out, journal_rec_finish(&o->b));
	}
}

/* A record of the daemon's own, to the journal and syslog outputs. */
void
output_daemon(struct output *o, const char *mid, int priority,
    const char *const *fields, const char *message)
{
	if (o->journal != NULL) {
		journal_rec_begin(&o->b);
		add_common(o, priority, mid, message, strlen(message));
		for (size_t i = 0; fields != NULL && fields[i] != NULL; i++) {
			const char *eq = strchr(fields[i], '=');
			char name[65];

			if (eq == NULL || eq - fields[i] > 64)
				continue;
			snprintf(name, sizeof name, "%.*s",
			    (int)(eq - fields[i]), fields[i]);
			journal_rec_add(&o->b, name, eq + 1, strlen(eq + 1));
		}
		output_push(o, o->journal, journal_rec_finish(&o->b));
	}
	if (o->syslog != NULL) {
		strbuf_reset(&o->b);
		syslog_format_daemon(
		    o->conf, priority, "dcevents", message, &o->b);
		output_push(o, o->syslog, journal_rec_finish(&o->b));
	}
}

int
output_has_journal(const struct output *o)
{
	return o->journal != NULL;
}

static uint64_t
ms_until(uint64_t end)
{
	uint64_t now = clock_ms();

	return now >= end ? 0 : end - now;
}

/* Flush every output for at most ms; the records left unwritten. */
size_t
output_close(struct output *o, uint64_t ms)
{
	size_t left = 0;
	uint64_t end;

	if (o == NULL)
		return 0;
	/* The threads flush in parallel, to the same deadline. */
	end = clock_ms() + ms;
	sink_stop(o->journal, ms);
	sink_stop(o->syslog, ms);
	sink_stop(o->out, ms);
	left += sink_close(o->journal, ms_until(end));
	left += sink_close(o->syslog, ms_until(end));
	left += sink_close(o->out, ms_until(end));
	dedup_free(o->dedup);
	free(strbuf_finish(&o->b));
	free(strbuf_finish(&o->msg));
	free(o);
	return left;
}
