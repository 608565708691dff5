/*
 * The stdout output: one JSON object per line, escaped as yajl_gen does:
 * the event's members as received (datetime also for the older "date"),
 * data with its scalar members, unknown scalars with their JSON type, and
 * "namespace".  The writer thread writes whole batches with writev()
 * (record_writev()), blocking if it must.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcevents.h"

struct out {
	char error[128];
};

/* ,"name":"value" (no comma for the first member) */
static void
add_member(struct strbuf *b, int *first, const char *name, size_t nlen,
    const char *v, size_t n)
{
	if (!*first)
		strbuf_add(b, ",", 1);
	*first = 0;
	strbuf_add_json_string(b, name, nlen);
	strbuf_add(b, ":", 1);
	if (v != NULL)
		strbuf_add_json_string(b, v, n);
}

static void
add_span(struct strbuf *b, int *first, const struct dc_event *e, const char *name,
    struct span s)
{
	if (s.off != SPAN_NONE)
		add_member(b, first, name, strlen(name), ev_str(e, s), s.len);
}

/* The kept members of data (in_data), or the unknown ones, typed. */
static void
add_extras(struct strbuf *b, int *first, const struct dc_event *e, int in_data)
{
	for (unsigned i = 0; i < e->nextras; i++) {
		const char *v = ev_str(e, e->extras[i].value);
		size_t n = e->extras[i].value.len;

		if (e->extras[i].in_data != in_data)
			continue;
		add_member(b, first, ev_str(e, e->extras[i].name),
		    e->extras[i].name.len, NULL, 0);
		if (e->extras[i].raw) /* a number or boolean, as sent */
			strbuf_add(b, v, n);
		else
			strbuf_add_json_string(b, v, n);
	}
}

static void
add_obj(struct strbuf *b, int *first, const struct enriched *o,
    const char *name, struct span s)
{
	if (s.off != SPAN_NONE)
		add_member(b, first, name, strlen(name), ev_str_of(&o->buf, s),
		    s.len);
}

/*
 * [Enrich]: "object": {"name": ..., "image": ..., Fields= members typed,
 * "parents": {"service": NAME, ...}} (each part only when known).
 */
static void
add_enriched(struct strbuf *b, int *first, const struct dc_event *e)
{
	const struct enriched *o = e->obj;
	int inner = 1;

	add_member(b, first, "object", 6, NULL, 0);
	strbuf_add(b, "{", 1);
	if (o != NULL) {
		add_obj(b, &inner, o, "name", o->name);
		add_obj(b, &inner, o, "image", o->image);
		for (unsigned i = 0; i < o->nfields; i++) {
			struct span n = o->fields[i].name, v = o->fields[i].value;

			if (v.off == SPAN_NONE)
				continue;
			add_member(b, &inner, ev_str_of(&o->buf, n), n.len,
			    NULL, 0);
			if (o->fields[i].raw)
				strbuf_add(b, ev_str_of(&o->buf, v), v.len);
			else
				strbuf_add_json_string(b, ev_str_of(&o->buf, v), v.len);
		}
	}
	if (e->nup > 0) {
		int up = 1;

		add_member(b, &inner, "parents", 7, NULL, 0);
		strbuf_add(b, "{", 1);
		for (unsigned i = 0; i < e->nup; i++)
			add_member(b, &up, ev_str_of(&e->up[i]->buf,
					       e->up[i]->type),
			    e->up[i]->type.len,
			    ev_str_of(&e->up[i]->buf, e->up[i]->name),
			    e->up[i]->name.len);
		strbuf_add(b, "}", 1);
	}
	strbuf_add(b, "}", 1);
}

/* The event as one JSON line (with the newline) appended to b. */
void
stdout_format(const struct conf *c, const struct dc_event *e, struct strbuf *b)
{
	int first = 1, data = 0;

	strbuf_add(b, "{", 1);
	add_span(b, &first, e, "type", e->type);
	add_span(b, &first, e, "action", e->action);
	add_span(b, &first, e, "state", e->state);
	add_span(b, &first, e, "uuid", e->uuid);
	add_span(b, &first, e, "resource_uri", e->resource_uri);
	if (e->has_parents) {
		add_member(b, &first, "parents", 7, NULL, 0);
		strbuf_add(b, "[", 1);
		for (unsigned i = 0; i < e->nparents; i++) {
			if (i > 0)
				strbuf_add(b, ",", 1);
			strbuf_add_json_string(
			    b, ev_str(e, e->parents[i]), e->parents[i].len);
		}
		strbuf_add(b, "]", 1);
	}
	add_span(b, &first, e, "datetime", e->datetime);
	for (unsigned i = 0; i < e->nextras; i++)
		data |= e->extras[i].in_data;
	if (e->error.off != SPAN_NONE || data) {
		int inner = 1;

		add_member(b, &first, "data", 4, NULL, 0);
		strbuf_add(b, "{", 1);
		add_span(b, &inner, e, "errorMessage", e->error);
		add_extras(b, &inner, e, 1);
		strbuf_add(b, "}", 1);
	}
	add_extras(b, &first, e, 0);
	if (e->obj != NULL || e->nup > 0)
		add_enriched(b, &first, e);
	add_member(b, &first, "namespace", 9, NULL, 0);
	if (*c->ns != '\0')
		strbuf_add_json_string(b, c->ns, strlen(c->ns));
	else
		strbuf_add(b, "null", 4);
	strbuf_add(b, "}\n", 2);
}

static int
stdout_write(void *arg, struct record **recs, size_t n)
{
	struct out *o = arg;
	int r = record_writev(STDOUT_FILENO, recs, n);

	if (r == -1)
		snprintf(o->error, sizeof o->error, "%s", strerror(errno));
	return r;
}

static void
stdout_reset(void *arg)
{
}

static const char *
stdout_error(void *arg)
{
	return ((struct out *)arg)->error;
}

static void
stdout_close(void *arg)
{
	free(arg);
}

static void *
stdout_open(const struct conf *c)
{
	return calloc(1, sizeof(struct out));
}

static int
stdout_enabled(const struct conf *c)
{
	return c->stdout_json;
}

static void
stdout_format_event(const struct conf *c, const struct dc_event *e,
    int priority, const char *mid, const char *msg, size_t mlen,
    struct strbuf *b)
{
	stdout_format(c, e, b);
}

/* The daemon's own records are not written to stdout. */
const struct output_type stdout_output = {
	.name = "stdout",
	.enabled = stdout_enabled,
	.open = stdout_open,
	.format_event = stdout_format_event,
	.ops = {
		.write = stdout_write,
		.reset = stdout_reset,
		.error = stdout_error,
		.close = stdout_close,
	},
};
