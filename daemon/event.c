/*
 * What an event means: its priority (the built-in mapping with [Priority]
 * overrides, README, Records), its MESSAGE_ID, the one-line MESSAGE, the
 * journal field name of an unknown member or one of data's, and the
 * duplicate filter over the last 4096 uuids.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

#define DEDUP_RING 4096
#define DEDUP_SLOTS 8192 /* power of two, load at most one half */

static const struct {
	const char *type;
	const char *mid;
} event_mids[] = {
	{ "stack", "9e863a589b434b6ea66e7a15478cd8a5" },
	{ "service", "9c2b03e7ef394de78b9df429e98541a3" },
	{ "container", "2d5b08411d17441eb2311e51539d27d3" },
	{ "nodecluster", "44c8bce0e20a499a9c21182cb49d202e" },
	{ "node", "f56b35086eb74b98adc2a393323f4cdd" },
	{ "action", "7c3967fc02f84e91abc6545b8c22f0c2" },
	{ "error", "8137c0e190594924a6c88920d39808bf" },
	{ "auth", "c0b7811cf6db4f51a903a03d493402c2" },
	{ "user-notification", "cee89c3d082d4052bbdd2bb63838956f" },
	{ "user-notifications", "cee89c3d082d4052bbdd2bb63838956f" },
};
#define MID_OTHER_TYPE "60ac6ef7c5b84cd7a9261121a1bf88bd"

static int
event_type_is(const struct dc_event *e, const char *t)
{
	return e->type.off != SPAN_NONE && e->type.len == strlen(t) &&
	    memcmp(ev_str(e, e->type), t, e->type.len) == 0;
}

static int
event_state_is(const struct dc_event *e, const char *s)
{
	return e->state.off != SPAN_NONE && e->state.len == strlen(s) &&
	    memcmp(ev_str(e, e->state), s, e->state.len) == 0;
}

/* auth and user-notification(s): what older servers sent, at debug. */
static int
event_is_notice(const struct dc_event *e)
{
	return event_type_is(e, "auth") ||
	    event_type_is(e, "user-notification") ||
	    event_type_is(e, "user-notifications");
}

/* The MESSAGE_ID for the event's type; unknown types share one. */
const char *
dc_event_message_id(const struct dc_event *e)
{
	for (size_t i = 0; i < sizeof event_mids / sizeof event_mids[0]; i++)
		if (event_type_is(e, event_mids[i].type))
			return event_mids[i].mid;
	return MID_OTHER_TYPE;
}

/*
 * The built-in priority: err for error events and state Failed, warning
 * for Unreachable, Partly running and Partly deployed, notice for
 * Canceled, Stopped, Terminated and Empty cluster, debug for auth and
 * user-notification(s), otherwise info (README, Records; dcevents.conf(5),
 * PRIORITY SECTION).
 */
int
dc_event_default_priority(const struct dc_event *e)
{
	static const char *const warning[] = { "Unreachable", "Partly running",
		"Partly deployed" };
	static const char *const notice[] = { "Canceled", "Stopped",
		"Terminated", "Empty cluster" };

	if (event_type_is(e, "error") || event_state_is(e, "Failed"))
		return 3;
	if (event_is_notice(e))
		return 7;
	for (size_t i = 0; i < 3; i++)
		if (event_state_is(e, warning[i]))
			return 4;
	for (size_t i = 0; i < 4; i++)
		if (event_state_is(e, notice[i]))
			return 5;
	return 6;
}

int
dc_event_priority(const struct conf *c, const struct dc_event *e)
{
	const char *type = ev_str(e, e->type), *state = ev_str(e, e->state);

	return conf_priority_for(
	    c, type ? type : "", state, dc_event_default_priority(e));
}

/* The last path segment of the resource URI: the object's uuid. */
struct span
dc_event_object_uuid(const struct dc_event *e)
{
	struct span s = { SPAN_NONE, 0 };
	const char *u = ev_str(e, e->resource_uri);
	size_t n = e->resource_uri.len, end;

	if (u == NULL)
		return s;
	while (n > 0 && u[n - 1] == '/')
		n--;
	end = n;
	while (n > 0 && u[n - 1] != '/')
		n--;
	if (end > n) {
		s.off = e->resource_uri.off + (uint32_t)n;
		s.len = (uint32_t)(end - n);
	}
	return s;
}

static void
add_span(struct strbuf *b, const struct dc_event *e, struct span s)
{
	strbuf_add_escaped(b, ev_str(e, s), s.len);
}

/*
 * What data says, for auth and user-notification(s): each of data's
 * scalar members (or data itself, when it is a string or number) as
 * " NAME=VALUE", "message" as " VALUE".  0 if data had nothing.
 */
static int
add_data(struct strbuf *b, const struct dc_event *e)
{
	int n = 0;

	for (unsigned i = 0; i < e->nextras; i++) {
		int in_data = e->extras[i].in_data;
		struct span name = e->extras[i].name;
		const char *text = in_data ? "message" : "data";
		int is_text = name.len == strlen(text) &&
		    memcmp(ev_str(e, name), text, name.len) == 0;

		if (!in_data && !is_text)
			continue;
		strbuf_addstr(b, n++ == 0 ? ": " : " ");
		if (!is_text) {
			add_span(b, e, name);
			strbuf_add(b, "=", 1);
		}
		add_span(b, e, e->extras[i].value);
	}
	return n;
}

/*
 * The one-line MESSAGE: "TYPE OBJECT ACTION: STATE (URI)", e.g.
 * "container 0b0e3a1c update: Running (/api/app/v1/ns/container/0b0e.../)";
 * error events "error: MESSAGE"; auth and user-notification(s) "TYPE:"
 * and what their data says, e.g. "user-notification: Stack is running".
 * With the object's name looked up, the name, the short uuid in
 * parentheses and no URI: "container web-1 (0b0e3a1c) update: Running".
 * Control characters are escaped.
 */
void
dc_event_message(const struct dc_event *e, struct strbuf *b)
{
	struct span obj = dc_event_object_uuid(e);
	/* Looked up ([Enrich]): "container web-1 (0b0e3a1c) update: Running" */
	int named = e->obj != NULL && e->obj->name.off != SPAN_NONE;

	if (e->type.off != SPAN_NONE)
		add_span(b, e, e->type);
	else
		strbuf_addstr(b, "event");
	if (event_type_is(e, "error")) {
		strbuf_addstr(b, ": ");
		if (e->error.off != SPAN_NONE)
			add_span(b, e, e->error);
		else
			strbuf_addstr(b, "(no errorMessage)");
		return;
	}
	if (event_is_notice(e) && add_data(b, e) > 0)
		return;
	if (named) {
		strbuf_add(b, " ", 1);
		strbuf_add_escaped(b, ev_str_of(&e->obj->buf, e->obj->name),
		    e->obj->name.len);
	}
	if (obj.off != SPAN_NONE) {
		const char *o = ev_str(e, obj);
		uint32_t n = 0;

		/* The first 8 characters (not bytes: the text stays UTF-8). */
		for (int chars = 0; n < obj.len; n++)
			if (((unsigned char)o[n] & 0xc0) != 0x80 && ++chars > 8)
				break;
		obj.len = n;
		strbuf_addstr(b, named ? " (" : " ");
		add_span(b, e, obj);
		if (named)
			strbuf_add(b, ")", 1);
	}
	if (e->action.off != SPAN_NONE) {
		strbuf_add(b, " ", 1);
		add_span(b, e, e->action);
	}
	if (e->state.off != SPAN_NONE) {
		strbuf_addstr(b, ": ");
		add_span(b, e, e->state);
	}
	if (e->resource_uri.off != SPAN_NONE && !named) {
		strbuf_addstr(b, " (");
		add_span(b, e, e->resource_uri);
		strbuf_add(b, ")", 1);
	}
}

/* Names our own records use; an unknown member may not take them. */
static const char *const event_reserved[] = { "TYPE", "ACTION", "STATE", "UUID",
	"RESOURCE_URI", "OBJECT_UUID", "PARENT", "DATETIME", "NAMESPACE",
	"ERROR",
	/* [Enrich]'s, and DOCKERCLOUD_OBJECT_* (dc_event_enriched_name) */
	"NAME", "IMAGE", "SERVICE_NAME", "STACK_NAME", "NODE_NAME",
	"NODECLUSTER_NAME" };

/*
 * The journal field for an unknown member: DOCKERCLOUD_ (DOCKERCLOUD_DATA_
 * for a member of data) and the name upper-cased, other characters as
 * '_'.  -1 if it would exceed journald's 64 characters or shadow one of
 * our fields.
 */
int
dc_event_field_name(const char *name, size_t n, int in_data, char out[65])
{
	const char *prefix = in_data ? "DOCKERCLOUD_DATA_" : "DOCKERCLOUD_";
	size_t p = strlen(prefix);

	if (n == 0 || p + n > 64)
		return -1;
	memcpy(out, prefix, p);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];

		out[p + i] =
		    (char)(isalnum(ch) && ch < 0x80 ? toupper(ch) : '_');
	}
	out[p + n] = '\0';
	if (!in_data && strncmp(out + p, "OBJECT_", 7) == 0)
		return -1;
	for (size_t i = 0;
	     !in_data && i < sizeof event_reserved / sizeof event_reserved[0];
	     i++)
		if (strcmp(out + p, event_reserved[i]) == 0)
			return -1;
	return 0;
}

/*
 * The journal field of a looked-up member ([Enrich]): prefix, the name
 * upper-cased (other characters as '_'), suffix, e.g.
 * DOCKERCLOUD_OBJECT_IMAGE_TAG or DOCKERCLOUD_SERVICE_NAME; -1 if over
 * journald's 64 characters.
 */
int
dc_event_enriched_name(const char *prefix, const char *name, size_t n,
    const char *suffix, char out[65])
{
	size_t p = strlen(prefix), s = strlen(suffix);

	if (n == 0 || p + n + s > 64)
		return -1;
	memcpy(out, prefix, p);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];

		out[p + i] =
		    (char)(isalnum(ch) && ch < 0x80 ? toupper(ch) : '_');
	}
	memcpy(out + p + n, suffix, s + 1);
	return 0;
}

/* The duplicate filter: a ring of the last uuids' hashes and a set. */
struct dedup {
	uint64_t ring[DEDUP_RING];
	unsigned next;
	unsigned count;
	uint64_t slots[DEDUP_SLOTS]; /* 0 = empty */
};

/* 64 bits of the uuid, eight bytes a step (multiply and fold). */
static uint64_t
dedup_hash(const char *s, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, s + i, n - i);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	return h == 0 ? 1 : h;
}

static size_t
dedup_find(const struct dedup *d, uint64_t h)
{
	size_t i = (size_t)h & (DEDUP_SLOTS - 1);

	while (d->slots[i] != 0 && d->slots[i] != h)
		i = (i + 1) & (DEDUP_SLOTS - 1);
	return i;
}

/* Remove h by shifting the following cluster back (linear probing). */
static void
dedup_remove(struct dedup *d, uint64_t h)
{
	size_t i = dedup_find(d, h), j = i;

	if (d->slots[i] == 0)
		return;
	for (;;) {
		size_t k;

		j = (j + 1) & (DEDUP_SLOTS - 1);
		if (d->slots[j] == 0)
			break;
		k = (size_t)d->slots[j] & (DEDUP_SLOTS - 1);
		/* Move j back to i unless its home lies in (i, j]. */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		d->slots[i] = d->slots[j];
		i = j;
	}
	d->slots[i] = 0;
}

struct dedup *
dedup_new(void)
{
	return calloc(1, sizeof(struct dedup));
}

void
dedup_free(struct dedup *d)
{
	free(d);
}

/* Is h among the last 4096?  Remembers it if not. */
static int
dedup_add(struct dedup *d, uint64_t h)
{
	size_t i = dedup_find(d, h);

	if (d->slots[i] == h)
		return 1;
	if (d->count == DEDUP_RING)
		dedup_remove(d, d->ring[d->next]);
	else
		d->count++;
	i = dedup_find(d, h); /* the removal may have moved the gap */
	d->slots[i] = h;
	d->ring[d->next] = h;
	d->next = (d->next + 1) % DEDUP_RING;
	return 0;
}

/* Has this uuid been seen among the last 4096?  Remembers it if not. */
int
dedup_seen(struct dedup *d, const char *uuid, size_t n)
{
	return dedup_add(d, dedup_hash(uuid, n));
}

/*
 * The ring as it can be kept (the spool, at a stop): fn gets each hash,
 * oldest first; dedup_restore() puts one back (0 is never one).
 */
void
dedup_each(const struct dedup *d, void (*fn)(void *, uint64_t), void *arg)
{
	unsigned first = d->count == DEDUP_RING ? d->next : 0;

	for (unsigned k = 0; k < d->count; k++)
		fn(arg, d->ring[(first + k) % DEDUP_RING]);
}

void
dedup_restore(struct dedup *d, uint64_t h)
{
	if (h != 0)
		dedup_add(d, h);
}
