/*
 * The journal output: its record (the event's fields as DOCKERCLOUD_*,
 * MESSAGE, PRIORITY, MESSAGE_ID and the rest) and its transport, one
 * sd_journal_sendv() per record from the queue's writer thread (the
 * native socket is blocking).  A record is a flat list of "NAME=value"
 * fields, each with its length, so values are passed binary-safe:
 * newlines, quotes and NUL bytes arrive as they were.  sd_journal_sendv()
 * drops records silently when journald's socket does not exist, so that
 * case is checked first and treated as an outage.  When nothing waits,
 * the loop sends a record itself without blocking (journal_send_now(),
 * the queue's send_now).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <endian.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#define SD_JOURNAL_SUPPRESS_LOCATION /* no CODE_FILE= etc. */
#include <systemd/sd-journal.h>
#endif

#include "dcevents.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define JOURNAL_MAX_FIELDS 160 /* per record; more are left out */

struct journal {
	char error[128];
	int fd; /* journal_send_now()'s socket, the loop's only */
};

static void
journal_record_begin(struct strbuf *b)
{
	uint32_t zero = 0;

	strbuf_reset(b);
	strbuf_add(b, &zero, sizeof zero);
}

/* Append NAME=value; value is n bytes, any bytes. */
static void
journal_record_add(struct strbuf *b, const char *name, const char *v, size_t n)
{
	uint32_t count, len = (uint32_t)(strlen(name) + 1 + n);

	if (b->failed || b->len < sizeof count)
		return;
	memcpy(&count, b->buf, sizeof count);
	if (count == JOURNAL_MAX_FIELDS)
		return;
	count++;
	memcpy(b->buf, &count, sizeof count);
	strbuf_add(b, &len, sizeof len);
	strbuf_addstr(b, name);
	strbuf_add(b, "=", 1);
	strbuf_add(b, v, n);
}

static void
add_field(
    struct strbuf *b, const char *name, const struct dc_event *e, struct span s)
{
	if (s.off != SPAN_NONE)
		journal_record_add(b, name, ev_str(e, s), s.len);
}

static void
add_common(struct strbuf *b, const struct conf *c, int priority,
    const char *mid, const char *msg, size_t mlen)
{
	char p[2] = { (char)('0' + priority), 0 }, f[8];

	journal_record_add(b, "MESSAGE", msg, mlen);
	journal_record_add(b, "PRIORITY", p, 1);
	journal_record_add(
	    b, "SYSLOG_IDENTIFIER", c->identifier, strlen(c->identifier));
	snprintf(f, sizeof f, "%d", c->syslog_facility);
	journal_record_add(b, "SYSLOG_FACILITY", f, strlen(f));
	journal_record_add(b, "MESSAGE_ID", mid, strlen(mid));
}

/* One span of a looked-up object, as field name. */
static void
add_obj(struct strbuf *b, const char *name, const struct enriched *o,
    struct span s)
{
	if (s.off != SPAN_NONE)
		journal_record_add(b, name, ev_str_of(&o->buf, s), s.len);
}

/*
 * [Enrich]: DOCKERCLOUD_NAME, DOCKERCLOUD_IMAGE, DOCKERCLOUD_OBJECT_<FIELD>
 * and the parents' DOCKERCLOUD_<TYPE>_NAME.
 */
static void
add_enriched(struct strbuf *b, const struct dc_event *e)
{
	const struct enriched *o = e->obj;
	char name[65];

	if (o != NULL) {
		add_obj(b, "DOCKERCLOUD_NAME", o, o->name);
		add_obj(b, "DOCKERCLOUD_IMAGE", o, o->image);
		for (unsigned i = 0; i < o->nfields; i++)
			if (dc_event_enriched_name("DOCKERCLOUD_OBJECT_",
				ev_str_of(&o->buf, o->fields[i].name),
				o->fields[i].name.len, "", name) == 0)
				add_obj(b, name, o, o->fields[i].value);
	}
	for (unsigned i = 0; i < e->nup; i++) {
		const struct enriched *u = e->up[i];

		if (dc_event_enriched_name("DOCKERCLOUD_",
			ev_str_of(&u->buf, u->type), u->type.len, "_NAME",
			name) == 0)
			add_obj(b, name, u, u->name);
	}
}

/* The journal record of an event (as the README describes it). */
static void
journal_format_event(const struct conf *c, const struct dc_event *e,
    int priority, const char *mid, const char *msg, size_t mlen,
    struct strbuf *b)
{
	static int warned;
	char name[65];

	journal_record_begin(b);
	add_common(b, c, priority, mid, msg, mlen);
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
		journal_record_add(
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
				    (int)utf8_complete(
					ev_str(e, n), n.len > 64 ? 64 : n.len),
				    ev_str(e, n));
			continue;
		}
		add_field(b, name, e, e->extras[i].value);
	}
	if (e->obj != NULL || e->nup > 0)
		add_enriched(b, e);
}

/* A record of the daemon's own, with its "NAME=value" fields. */
static void
journal_format_daemon(const struct conf *c, const char *mid, int priority,
    const char *const *fields, const char *message, struct strbuf *b)
{
	journal_record_begin(b);
	add_common(b, c, priority, mid, message, strlen(message));
	for (size_t i = 0; fields != NULL && fields[i] != NULL; i++) {
		const char *eq = strchr(fields[i], '=');
		char name[65];

		if (eq == NULL || eq - fields[i] > 64)
			continue;
		snprintf(name, sizeof name, "%.*s", (int)(eq - fields[i]),
		    fields[i]);
		journal_record_add(b, name, eq + 1, strlen(eq + 1));
	}
}

static void
journal_send_now_close(struct journal *j)
{
	if (j->fd != -1)
		close(j->fd);
	j->fd = -1;
}

#ifdef HAVE_SYSTEMD
/* The record's NAME=value fields, one iovec each; returns their number. */
static uint32_t
record_fields(const struct record *r, struct iovec iov[JOURNAL_MAX_FIELDS])
{
	const unsigned char *p = r->data;
	uint32_t count, len;

	memcpy(&count, p, sizeof count);
	p += sizeof count;
	for (uint32_t i = 0; i < count; i++) {
		memcpy(&len, p, sizeof len);
		p += sizeof len;
		iov[i].iov_base = (void *)p;
		iov[i].iov_len = len;
		p += len;
	}
	return count;
}

/*
 * On the loop, when the journal output has nothing waiting: send a record
 * at once, as sd_journal_sendv() would serialize it (NAME=value LF, or for
 * a value holding a newline NAME LF, its length as 64-bit little endian,
 * the value, LF), but on a non-blocking socket of our own.  This saves the
 * writer thread's wake-up, which on a busy machine is most of the latency.
 * Returns 0 when sent; -1 when the caller must queue it (journald busy,
 * gone, or the record too large for a datagram): the writer then does what
 * it always does, in order, since nothing else was waiting.
 */
static int
journal_send_now(void *arg, const struct record *r)
{
	struct journal *j = arg;
	struct iovec f[JOURNAL_MAX_FIELDS], iov[JOURNAL_MAX_FIELDS * 5];
	uint64_t lens[JOURNAL_MAX_FIELDS];
	struct msghdr mh = { 0 };
	uint32_t count = record_fields(r, f);
	size_t k = 0;

	for (uint32_t i = 0; i < count; i++) {
		const unsigned char *p = f[i].iov_base, *eq, *nl;
		size_t len = f[i].iov_len;

		eq = memchr(p, '=', len);
		nl = memchr(p, '\n', len);
		if (eq == NULL)
			return -1;
		if (nl == NULL) {
			iov[k++] = f[i];
		} else {
			size_t name = (size_t)(eq - p);

			lens[i] = htole64((uint64_t)(len - name - 1));
			iov[k++] = (struct iovec){ (void *)p, name };
			iov[k++] = (struct iovec){ (void *)"\n", 1 };
			iov[k++] = (struct iovec){ &lens[i], sizeof lens[i] };
			iov[k++] =
			    (struct iovec){ (void *)(eq + 1), len - name - 1 };
		}
		iov[k++] = (struct iovec){ (void *)"\n", 1 };
	}
	mh.msg_iov = iov;
	mh.msg_iovlen = k;
	for (int tries = 0; tries < 2; tries++) {
		if (j->fd == -1) {
			struct sockaddr_un sun = { .sun_family = AF_UNIX };

			snprintf(sun.sun_path, sizeof sun.sun_path, "%s",
			    JOURNAL_SOCKET);
			j->fd = socket(AF_UNIX,
			    SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (j->fd == -1)
				return -1;
			if (connect(j->fd, (struct sockaddr *)&sun,
				sizeof sun) == -1) {
				journal_send_now_close(j);
				return -1;
			}
		}
		if (sendmsg(j->fd, &mh, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != ECONNREFUSED && errno != ENOTCONN)
			return -1; /* EAGAIN, EMSGSIZE, ...: queue it */
		journal_send_now_close(j); /* a new journald: reconnect */
	}
	return -1;
}

static int
journal_write(void *arg, struct record **recs, size_t n)
{
	struct journal *j = arg;
	struct iovec iov[JOURNAL_MAX_FIELDS];
	size_t done = 0;

	if (access(JOURNAL_SOCKET, F_OK) == -1) {
		snprintf(j->error, sizeof j->error, "%s: %s", JOURNAL_SOCKET,
		    strerror(errno));
		return -1;
	}
	for (; done < n; done++) {
		int r =
		    sd_journal_sendv(iov, (int)record_fields(recs[done], iov));

		if (r < 0) {
			snprintf(j->error, sizeof j->error, "%s", strerror(-r));
			break;
		}
	}
	return done > 0 ? (int)done : -1;
}
#else
#define journal_send_now NULL

static int
journal_write(void *arg, struct record **recs, size_t n)
{
	return (int)n;
}
#endif

static void
journal_reset(void *arg)
{
}

static const char *
journal_error(void *arg)
{
	return ((struct journal *)arg)->error;
}

static void
journal_close(void *arg)
{
	journal_send_now_close(arg);
	free(arg);
}

static void *
journal_open(const struct conf *c)
{
	struct journal *j = calloc(1, sizeof *j);

	if (j == NULL)
		return NULL;
	j->fd = -1;
	if (access(JOURNAL_SOCKET, F_OK) == -1)
		log_warn("no journald socket at %s: journal records wait until "
			 "it appears",
		    JOURNAL_SOCKET);
	return j;
}

static int
journal_enabled(const struct conf *c)
{
	return c->journal;
}

const struct output_type journal_output = {
	.name = "journal",
	.enabled = journal_enabled,
	.open = journal_open,
	.needs_message = 1,
	.journal = 1,
	.format_event = journal_format_event,
	.format_daemon = journal_format_daemon,
	.ops = {
		.write = journal_write,
		.reset = journal_reset,
		.error = journal_error,
		.close = journal_close,
		.send_now = journal_send_now,
	},
};
