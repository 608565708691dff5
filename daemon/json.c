/*
 * Streaming JSON: a yajl handle fed each chunk as wslay hands it over, so
 * no message is ever buffered whole.  The callbacks keep only what an
 * event needs: the known top-level members, the parents, the scalar
 * members of data (errorMessage apart, the others as extras marked
 * in_data) and unknown top-level scalars (data too, when it is one).
 * Anything deeper is walked and skipped, up to JSON_MAX_DEPTH levels.
 *
 * Every string kept is valid UTF-8, so every output is, as the README
 * promises (Records, "Text is UTF-8"): bytes that are not UTF-8 (a binary
 * message may hold any) become U+FFFD as they are stored, and an escape
 * of a lone surrogate becomes \ufffd before yajl sees it (yajl would turn
 * a lone low surrogate into the bytes of its code point, which are not
 * UTF-8, a lone high one into '?', and a high one followed by another
 * escape into one wrong code point, the escape after it lost).  The
 * message's bytes are checked as they are fed, 32 ASCII bytes a step;
 * only once one is found invalid are the strings stored after it
 * repaired.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "dcevents.h"

enum json_key {
	JK_OTHER,
	JK_TYPE,
	JK_ACTION,
	JK_STATE,
	JK_UUID,
	JK_RESOURCE_URI,
	JK_DATETIME,
	JK_DATE,
	JK_PARENTS,
	JK_DATA
};

/*
 * One yajl handle parses message after message (yajl_allow_multiple_values,
 * with our own check of one object per message): yajl 2 cannot reset a
 * handle, and a new one costs five allocations and their set-up.  The
 * handle is replaced after a message that failed or was cut off, and
 * after one that grew a block of yajl's past JSON_BIG, so that one huge
 * string does not stay allocated.
 */
#define JSON_BIG (16 * 1024)

struct json {
	yajl_handle h;
	int clean; /* h finished its last message: it can take the next */
	int big; /* h holds a block over JSON_BIG */
	int done; /* the top-level object has ended: only whitespace may follow */
	size_t done_at; /* where, in the chunk in which it ended */
	struct dc_event ev;
	int depth; /* 1 inside the top-level object */
	enum json_key key; /* the current top-level member */
	struct span key_name; /* its name, for unknown members */
	int in_parents; /* depth 2 is the parents array */
	int in_data; /* depth 2 is the data object */
	int data_error_key; /* data's current key is errorMessage */
	struct span data_key; /* data's current key */
	int date_only; /* "date" seen, no "datetime" */
	char held[12]; /* an escape cut by the chunk's end, not parsed yet */
	size_t nheld;
	struct strbuf scratch; /* a chunk with its surrogates mended */
	struct utf8 utf8; /* the message's bytes so far, */
	int not_utf8; /* ... and whether one of them was invalid */
	int failed;
	const char *why;
	char excerpt[JSON_EXCERPT + 1];
	size_t excerpt_len;
	void (*to)(void *, const struct dc_event *); /* json_handler() */
	void *to_arg;
};

#define KEY(name, key) { name, sizeof name - 1, key }
static const struct {
	const char *name;
	size_t len;
	enum json_key key;
} json_keys[] = {
	KEY("type", JK_TYPE),
	KEY("action", JK_ACTION),
	KEY("state", JK_STATE),
	KEY("uuid", JK_UUID),
	KEY("resource_uri", JK_RESOURCE_URI),
	KEY("datetime", JK_DATETIME),
	KEY("date", JK_DATE),
	KEY("parents", JK_PARENTS),
	KEY("data", JK_DATA),
};
#undef KEY

/* A string (or a number's text), made valid UTF-8. */
static struct span
json_store(struct json *j, const void *p, size_t n)
{
	struct span s = { (uint32_t)j->ev.buf.len, 0 };

	/*
	 * NUL-terminated too, for callers that want C strings.  yajl's
	 * escapes are valid UTF-8 (json_mend() mended the surrogates).
	 */
	if ((j->not_utf8 ? strbuf_add_utf8(&j->ev.buf, p, n, 0)
			 : strbuf_add(&j->ev.buf, p, n)) == -1 ||
	    strbuf_add(&j->ev.buf, "", 1) == -1)
		s.off = SPAN_NONE;
	else
		s.len = (uint32_t)(j->ev.buf.len - 1 - s.off);
	return s;
}

static int
json_fail(struct json *j, const char *why)
{
	j->failed = 1;
	j->why = why;
	return 0; /* cancels the parse */
}

/* A member kept as it came: an unknown one, or one of data's. */
static void
json_extra(struct json *j, struct span name, const char *p, size_t n,
    int is_string, int in_data)
{
	struct dc_event *e = &j->ev;

	if (e->nextras == EVENT_MAX_EXTRAS) {
		e->dropped++;
		return;
	}
	e->extras[e->nextras].name = name;
	e->extras[e->nextras].value = json_store(j, p, n);
	e->extras[e->nextras].raw = !is_string;
	e->extras[e->nextras].in_data = in_data;
	e->nextras++;
}

/* A scalar value, as text; where it belongs depends on depth and key. */
static int
json_scalar(struct json *j, const char *p, size_t n, int is_string)
{
	struct dc_event *e = &j->ev;
	struct span *dst = NULL;

	if (j->depth == 0)
		return json_fail(j, "not a JSON object");
	if (j->depth == 2 && j->in_parents) {
		if (!is_string)
			return 1;
		if (e->nparents == EVENT_MAX_PARENTS) {
			e->dropped++;
			return 1;
		}
		e->parents[e->nparents++] = json_store(j, p, n);
		return 1;
	}
	if (j->depth == 2 && j->in_data) {
		if (j->data_error_key && is_string)
			e->error = json_store(j, p, n);
		else
			json_extra(j, j->data_key, p, n, is_string, 1);
		return 1;
	}
	if (j->depth != 1)
		return 1;
	switch (j->key) {
	case JK_TYPE:
		dst = &e->type;
		break;
	case JK_ACTION:
		dst = &e->action;
		break;
	case JK_STATE:
		dst = &e->state;
		break;
	case JK_UUID:
		dst = &e->uuid;
		break;
	case JK_RESOURCE_URI:
		dst = &e->resource_uri;
		break;
	case JK_DATETIME:
		j->date_only = 0;
		dst = &e->datetime;
		break;
	case JK_DATE:
		/* The older name; "datetime" wins when both come. */
		if (e->datetime.off != SPAN_NONE && !j->date_only)
			return 1;
		j->date_only = 1;
		dst = &e->datetime;
		break;
	case JK_PARENTS:
		return 1;
	case JK_DATA: /* not an object: kept as an unknown member */
		json_extra(j, json_store(j, "data", 4), p, n, is_string, 0);
		return 1;
	case JK_OTHER:
		json_extra(j, j->key_name, p, n, is_string, 0);
		return 1;
	}
	*dst = json_store(j, p, n);
	return 1;
}

static int
json_null(void *ctx)
{
	struct json *j = ctx;

	/* A null member is absent; at the top level it is not an object. */
	return j->depth == 0 ? json_fail(j, "not a JSON object") : 1;
}

static int
json_boolean(void *ctx, int b)
{
	return json_scalar(ctx, b ? "true" : "false", b ? 4 : 5, 0);
}

static int
json_number(void *ctx, const char *s, size_t n)
{
	return json_scalar(ctx, s, n, 0);
}

static int
json_string(void *ctx, const unsigned char *s, size_t n)
{
	return json_scalar(ctx, (const char *)s, n, 1);
}

static int
json_start_map(void *ctx)
{
	struct json *j = ctx;

	if (j->depth == 0 && j->done)
		return json_fail(j, "invalid JSON"); /* a second value */
	if (++j->depth > JSON_MAX_DEPTH)
		return json_fail(j, "nested deeper than 32 levels");
	if (j->depth == 2 && j->key == JK_DATA)
		j->in_data = 1;
	return 1;
}

static int
json_map_key(void *ctx, const unsigned char *s, size_t n)
{
	struct json *j = ctx;

	if (j->depth == 2 && j->in_data) {
		j->data_error_key =
		    n == 12 && memcmp(s, "errorMessage", 12) == 0;
		j->data_key = json_store(j, s, n);
		return 1;
	}
	if (j->depth != 1)
		return 1;
	j->key = JK_OTHER;
	for (size_t i = 0; i < sizeof json_keys / sizeof json_keys[0]; i++) {
		if (json_keys[i].len == n &&
		    memcmp(json_keys[i].name, s, n) == 0) {
			j->key = json_keys[i].key;
			return 1;
		}
	}
	j->key_name = json_store(j, s, n);
	return 1;
}

static int
json_end_map(void *ctx)
{
	struct json *j = ctx;

	if (j->depth == 2)
		j->in_data = 0;
	if (--j->depth == 0) {
		j->done = 1;
		j->done_at = yajl_get_bytes_consumed(j->h);
	}
	return 1;
}

static int
json_start_array(void *ctx)
{
	struct json *j = ctx;

	if (j->depth == 0)
		return json_fail(j, "not a JSON object");
	if (++j->depth > JSON_MAX_DEPTH)
		return json_fail(j, "nested deeper than 32 levels");
	if (j->depth == 2 && j->key == JK_PARENTS)
		j->in_parents = j->ev.has_parents = 1;
	return 1;
}

static int
json_end_array(void *ctx)
{
	struct json *j = ctx;

	if (j->depth == 2)
		j->in_parents = 0;
	j->depth--;
	return 1;
}

static const yajl_callbacks json_callbacks = {
	.yajl_null = json_null,
	.yajl_boolean = json_boolean,
	.yajl_number = json_number,
	.yajl_string = json_string,
	.yajl_start_map = json_start_map,
	.yajl_map_key = json_map_key,
	.yajl_end_map = json_end_map,
	.yajl_start_array = json_start_array,
	.yajl_end_array = json_end_array,
};

static void *
jmalloc(void *ctx, size_t n)
{
	if (n > JSON_BIG)
		((struct json *)ctx)->big = 1;
	return malloc(n);
}

static void
jfree(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static void *
jrealloc(void *ctx, void *p, size_t n)
{
	if (n > JSON_BIG)
		((struct json *)ctx)->big = 1;
	return realloc(p, n);
}

struct json *
json_new(void)
{
	return calloc(1, sizeof(struct json));
}

void
json_free(struct json *j)
{
	if (j == NULL)
		return;
	if (j->h != NULL)
		yajl_free(j->h);
	free(strbuf_finish(&j->ev.buf));
	free(strbuf_finish(&j->scratch));
	free(j);
}

/* Start a new message; the previous event is forgotten. */
void
json_begin(struct json *j)
{
	struct dc_event *e = &j->ev;
	yajl_handle h = j->h;
	struct strbuf buf = e->buf, scratch = j->scratch;
	void (*to)(void *, const struct dc_event *) = j->to;
	void *to_arg = j->to_arg;

	if (h != NULL && (!j->clean || j->big)) {
		yajl_free(h);
		h = NULL;
	}
	memset(j, 0, sizeof *j);
	j->h = h;
	e->buf = buf;
	j->scratch = scratch;
	j->to = to;
	j->to_arg = to_arg;
	strbuf_reset(&e->buf);
	e->type = e->action = e->state = e->uuid = e->resource_uri =
	    e->datetime = e->error = (struct span){ SPAN_NONE, 0 };
	if (j->h == NULL) {
		yajl_alloc_funcs af = { jmalloc, jrealloc, jfree, j };

		if ((j->h = yajl_alloc(&json_callbacks, &af, j)) == NULL) {
			j->failed = 1;
			j->why = "out of memory";
			return;
		}
		yajl_config(j->h, yajl_allow_multiple_values, 1);
		/* json_feed() checks, faster (ASCII 32 bytes a step). */
		yajl_config(j->h, yajl_dont_validate_strings, 1);
	}
}

/* Bytes with their surrogates mended, to yajl. */
static void
json_parse(struct json *j, const uint8_t *p, size_t n)
{
	/*
	 * yajl, taking several values, would also take the start of one
	 * after the object and wait for the rest, even across messages: what
	 * follows the object is checked here, and not given to yajl.
	 */
	if (!j->done) {
		if (yajl_parse(j->h, p, n) != yajl_status_ok) {
			if (!j->failed)
				json_fail(j, "invalid JSON");
			return;
		}
		if (!j->done)
			return;
	}
	for (size_t i = j->done_at; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') {
			json_fail(j, "invalid JSON");
			return;
		}
	j->done_at = 0;
}

/* The value of four hex digits, or -1. */
static long
hex4(const uint8_t *p)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int c = p[i];

		if (c >= '0' && c <= '9')
			v = v * 16 + (c - '0');
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v = v * 16 + ((c | 0x20) - 'a' + 10);
		else
			return -1;
	}
	return v;
}

/*
 * The held bytes and p[0..n), each escape of a lone surrogate made
 * \ufffd, to json_parse().  Every backslash in valid JSON starts an
 * escape in a string, so escapes are found without knowing where strings
 * are.  An escape the chunk cuts (or a high surrogate's, until the next
 * six bytes show whether a low one follows) is held for the next chunk;
 * the last call (final) holds nothing.
 */
static void
json_mend(struct json *j, const uint8_t *p, size_t n, int final)
{
	struct strbuf *b = &j->scratch;
	const uint8_t *bs = NULL;
	uint8_t *s;
	size_t len, i = 0;

	strbuf_reset(b);
	strbuf_add(b, j->held, j->nheld);
	if (n > 0)
		strbuf_add(b, p, n);
	if (b->failed) {
		json_fail(j, "out of memory");
		return;
	}
	j->nheld = 0;
	s = (uint8_t *)b->buf;
	len = b->len;
	while (i < len && (bs = memchr(s + i, '\\', len - i)) != NULL) {
		long cp;

		i = (size_t)(bs - s);
		if (!final && len - i < (i + 1 < len && s[i + 1] == 'u' ? 6 : 2))
			break; /* cut by the chunk's end */
		if (i + 6 > len || s[i + 1] != 'u' ||
		    (cp = hex4(s + i + 2)) < 0xd800 || cp > 0xdfff) {
			i += 2; /* not a surrogate (or invalid: yajl says so) */
			continue;
		}
		if (cp < 0xdc00) {
			if (!final && len - i < 12 &&
			    (i + 6 == len || s[i + 6] == '\\'))
				break; /* a low one may follow */
			if (i + 12 <= len && s[i + 6] == '\\' &&
			    s[i + 7] == 'u' && (cp = hex4(s + i + 8)) >= 0xdc00 &&
			    cp <= 0xdfff) {
				i += 12; /* a pair */
				continue;
			}
		}
		memcpy(s + i + 2, "fffd", 4);
		i += 6;
	}
	if (bs != NULL && i < len) {
		j->nheld = len - i;
		memcpy(j->held, s + i, j->nheld);
		len = i;
	}
	json_parse(j, s, len);
}

void
json_feed(struct json *j, const uint8_t *p, size_t n)
{
	if (j->excerpt_len < JSON_EXCERPT) {
		size_t k = JSON_EXCERPT - j->excerpt_len;

		if (k > n)
			k = n;
		memcpy(j->excerpt + j->excerpt_len, p, k);
		j->excerpt_len += k;
	}
	if (j->failed)
		return;
	if (!j->not_utf8 && utf8_check(&j->utf8, p, n) != 0)
		j->not_utf8 = 1;
	if (j->nheld > 0 || memchr(p, '\\', n) != NULL)
		json_mend(j, p, n, 0);
	else
		json_parse(j, p, n);
}

/*
 * The message is complete: the event, or NULL with why and a short
 * escaped excerpt of the message (both valid until the next json_begin).
 */
const struct dc_event *
json_end(struct json *j, const char **why, const char **excerpt)
{
	static char esc[JSON_EXCERPT * 4 + 8];
	struct strbuf b = { 0 };
	char *s;

	/*
	 * The object's '}' ends it: yajl has nothing left to finish.  Without
	 * one, yajl finishes what it has (a number at the top level is only
	 * seen then) and the message is refused.
	 */
	if (!j->failed && j->nheld > 0)
		json_mend(j, NULL, 0, 1);
	if (!j->failed && !j->done) {
		yajl_complete_parse(j->h);
		if (!j->failed) {
			j->failed = 1;
			j->why = j->excerpt_len == 0 ? "empty message"
						     : "invalid JSON";
		}
	}
	if (!j->failed && j->ev.buf.failed) {
		j->failed = 1;
		j->why = "out of memory";
	}
	if (!j->failed) {
		j->clean = 1;
		return &j->ev;
	}
	*why = j->why;
	/* Bytes that are not UTF-8 as \xNN, then control characters. */
	strbuf_reset(&j->scratch);
	strbuf_add_utf8(&j->scratch, j->excerpt, j->excerpt_len, 1);
	strbuf_add_escaped(&b, j->scratch.buf, j->scratch.len);
	strbuf_reset(&j->scratch);
	s = strbuf_finish(&b);
	snprintf(esc, sizeof esc, "%s%s", s ? s : "",
	    j->excerpt_len == JSON_EXCERPT ? "..." : "");
	free(s);
	*excerpt = esc;
	return NULL;
}

/* The websocket's callbacks: a message at a time, chunk by chunk. */
static void
json_ws_begin(void *arg)
{
	json_begin(arg);
}

static void
json_ws_data(void *arg, const uint8_t *p, size_t n)
{
	json_feed(arg, p, n);
}

static void
json_ws_end(void *arg)
{
	struct json *j = arg;
	const struct dc_event *e;
	const char *why, *excerpt;

	if ((e = json_end(j, &why, &excerpt)) != NULL) {
		j->to(j->to_arg, e);
		return;
	}
	stats_add(STAT_MESSAGES_INVALID, stats_invalid_label(why), 1);
	record_daemon(MID_PARSE_ERROR, 4, NULL, "message skipped: %s: %s",
	    why, excerpt);
}

static void
json_ws_abort(void *arg)
{
	/* json_begin() starts the next message afresh. */
}

/*
 * The websocket's handler for j: each message is parsed as it arrives,
 * each event handed to to(arg, event), down the data path; a message that
 * is no event is reported with its excerpt and skipped.
 */
void
json_handler(struct json *j, struct ws_handler *h,
    void (*to)(void *, const struct dc_event *), void *arg)
{
	j->to = to;
	j->to_arg = arg;
	*h = (struct ws_handler){ json_ws_begin, json_ws_data, json_ws_end,
		json_ws_abort, j };
}
