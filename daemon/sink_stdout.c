/*
 * The stdout output: one JSON object per line, written with yajl_gen:
 * the event's members as received (datetime also for the older "date"),
 * unknown scalars with their JSON type, and "namespace".  The writer
 * thread writes whole batches with writev(), blocking if it must.
 */
#include "config.h"

#include <sys/uio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>

#include "dcevents.h"

#define STDOUT_IOV 64

struct out {
	char error[128];
};

static void
gen_span(yajl_gen g, const struct event *e, const char *name, struct span s)
{
	if (s.off == SPAN_NONE)
		return;
	yajl_gen_string(g, (const unsigned char *)name, strlen(name));
	yajl_gen_string(g, (const unsigned char *)ev_str(e, s), s.len);
}

/* The event as one JSON line (with the newline) appended to b. */
void
stdout_format(const struct conf *c, const struct event *e, struct strbuf *b)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *buf;
	size_t len;

	if (g == NULL) {
		b->failed = 1;
		return;
	}
	yajl_gen_map_open(g);
	gen_span(g, e, "type", e->type);
	gen_span(g, e, "action", e->action);
	gen_span(g, e, "state", e->state);
	gen_span(g, e, "uuid", e->uuid);
	gen_span(g, e, "resource_uri", e->resource_uri);
	if (e->has_parents) {
		yajl_gen_string(g, (const unsigned char *)"parents", 7);
		yajl_gen_array_open(g);
		for (unsigned i = 0; i < e->nparents; i++)
			yajl_gen_string(g,
			    (const unsigned char *)ev_str(e, e->parents[i]),
			    e->parents[i].len);
		yajl_gen_array_close(g);
	}
	gen_span(g, e, "datetime", e->datetime);
	if (e->error.off != SPAN_NONE) {
		yajl_gen_string(g, (const unsigned char *)"data", 4);
		yajl_gen_map_open(g);
		gen_span(g, e, "errorMessage", e->error);
		yajl_gen_map_close(g);
	}
	for (unsigned i = 0; i < e->nextras; i++) {
		const char *v = ev_str(e, e->extras[i].value);

		yajl_gen_string(g,
		    (const unsigned char *)ev_str(e, e->extras[i].name),
		    e->extras[i].name.len);
		if (e->extras[i].raw)
			yajl_gen_number(g, v, e->extras[i].value.len);
		else
			yajl_gen_string(g, (const unsigned char *)v,
			    e->extras[i].value.len);
	}
	yajl_gen_string(g, (const unsigned char *)"namespace", 9);
	if (*c->ns != '\0')
		yajl_gen_string(g, (const unsigned char *)c->ns, strlen(c->ns));
	else
		yajl_gen_null(g);
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &buf, &len);
	strbuf_add(b, buf, len);
	strbuf_add(b, "\n", 1);
	yajl_gen_free(g);
}

static int
stdout_write(void *arg, struct rec **recs, size_t n)
{
	struct out *o = arg;
	struct iovec iov[STDOUT_IOV];
	size_t k = n < STDOUT_IOV ? n : STDOUT_IOV, i = 0;
	ssize_t w;

	for (size_t j = 0; j < k; j++) {
		iov[j].iov_base = recs[j]->data;
		iov[j].iov_len = recs[j]->len;
	}
	/* A short write finishes the record it stopped in, then returns. */
	while (i < k) {
		if ((w = writev(STDOUT_FILENO, iov + i, (int)(k - i))) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(
			    o->error, sizeof o->error, "%s", strerror(errno));
			return i > 0 ? (int)i : -1;
		}
		while (i < k && (size_t)w >= iov[i].iov_len)
			w -= (ssize_t)iov[i++].iov_len;
		if (i < k && w > 0) {
			iov[i].iov_base = (char *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
		}
	}
	return (int)k;
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

const struct sink_ops stdout_ops = { stdout_write, stdout_reset, stdout_error,
	stdout_close };

void *
stdout_open(const struct conf *c)
{
	return calloc(1, sizeof(struct out));
}
