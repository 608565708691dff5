/*
 * Enrichment ([Enrich] Lookup=yes): between the parser and the outputs,
 * each object event's resource_uri is fetched with a GET of URL +
 * resource_uri, with the stream's credentials, over at most Concurrency=
 * kept-alive connections (HTTP/1.1 of our own, http.c, over
 * bufferevent_openssl, verified as the stream is: CAFile=/CAPath=, the
 * host name), through the stream's proxy when proxy_for() names one for
 * the REST host (a CONNECT tunnel, proxy.c; NoProxy= honoured).  The object's
 * name, image and the Fields= members go into its cache entry; the event
 * points at it (dc_event.obj) and at its parents' entries when they are
 * cached (dc_event.up), and the outputs add them.
 *
 * Guarantees:
 * - Stream order.  An event waits in a FIFO until its lookup is done or
 *   TimeoutSec= has passed, then goes out (without the added members if
 *   the lookup did not finish).  Only the FIFO's head is released, so the
 *   records keep the order of the stream.  Waiting events count against
 *   QueueMax and QueueMaxBytes: a full FIFO pauses the stream through output.c's callbacks
 *   (main's counting pause/resume), resumed below half.
 * - One GET per object: events about an object whose lookup is queued or
 *   in flight wait on it; the cache (CacheEntries=, CacheTTLSec=, LRU,
 *   each value cut to ENRICH_MAX_VALUE bytes) answers the rest.  A delete
 *   event takes what is cached (no GET) and evicts the entry.  A 404 is
 *   remembered NEG_NOT_FOUND_MS, other failures NEG_FAILED_MS.
 * - Failures never touch the stream's connection: 401/403 stop the
 *   lookups for [Stream] AuthBackoffSec=, 429 for its Retry-After (without
 *   one NEG_FAILED_MS); meanwhile events go out at once without them.
 *   Each kind of failure is counted (enrich_lookups()) and logged at most
 *   once a minute.  Bodies are bounded (ENRICH_MAX_BODY), as are headers.
 * - The credential is built in secret memory (handshake_authorization());
 *   it is never logged.  Each request is built in secret memory
 *   (http_get_request()) and handed to the connection without a copy.
 * - Lookup=no: main does not wire this file in; nothing here runs.
 *
 * Spool (Mode=always): a waiting event keeps the spool row id it was
 * handed with and is given to output_event() under that id; it reaches
 * no queue before it is released, so its row stays until it is written.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <yajl/yajl_parse.h>

#include "dcevents.h"

#define ENRICH_MAX_VALUE 512 /* bytes kept of one member's value */
#define ENRICH_MAX_URI 512
#define NEG_NOT_FOUND_MS (30 * 1000)
#define NEG_FAILED_MS (10 * 1000)
#define LOG_EVERY_MS (60 * 1000)

/*
 * Fields=: members that hold names, states, counts, places and times, never
 * the environment, commands or anything else a secret can be put in.
 */
static const char *const allowed[] = { "name", "image_name", "image_tag",
	"state", "uuid", "node", "service", "stack", "node_cluster", "region",
	"provider", "external_fqdn", "public_dns", "docker_version",
	"agent_version", "deployed_datetime", "started_datetime",
	"stopped_datetime", "destroyed_datetime", "last_metric", "exit_code",
	"target_num_containers", "current_num_containers", "target_num_nodes",
	"current_num_nodes", "deployment_strategy", "autorestart",
	"autodestroy", "memory", "cpu_shares", "cpu", "disk", "node_type",
	"public_ip", "private_ip", "nickname", "hostname", "privileged",
	"sequential_deployment", "synchronized", "net", "pid" };

/* Named in the refusal: they can hold secrets. */
static const char *const secret_members[] = { "container_envvars",
	"calculated_envvars", "link_variables", "envvars", "run_command",
	"entrypoint", "working_dir", "bindings", "roles", "container_ports",
	"labels", "tags", "linked_to_container", "linked_to_service", "cap_add",
	"devices", "extra_hosts", "security_opt", "user" };

/*
 * Why Fields= may not name this member, or NULL if it may (conf.c calls
 * this for each, so that a refusal names the file and line).
 */
const char *
enrich_field_refused(const char *name, size_t len)
{
	static char why[160];

	for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
		if (strlen(allowed[i]) == len &&
		    memcmp(allowed[i], name, len) == 0)
			return NULL;
	for (size_t i = 0; i < sizeof secret_members / sizeof secret_members[0];
	     i++)
		if (strlen(secret_members[i]) == len &&
		    memcmp(secret_members[i], name, len) == 0) {
			snprintf(why, sizeof why,
			    "%s can hold secrets and is never added",
			    secret_members[i]);
			return why;
		}
	snprintf(why, sizeof why, "%.*s is not on the allow-list (%s)",
	    (int)(len > 64 ? 64 : len), name,
	    "dcevents.conf(5), ENRICH SECTION");
	return why;
}

/* The body parser: yajl over the whole (bounded) body. */
struct bparse {
	const struct conf *conf;
	struct enriched *out;
	const char *name_key; /* name, or external_fqdn for nodes */
	int depth;
	int key; /* the current top-level member: -1 none, -2 name, -3 image,
		    or an index into conf->enrich_fields */
	int failed;
};

static void
bp_store(struct bparse *p, struct span *dst, const char *v, size_t n)
{
	struct strbuf *b = &p->out->buf;

	if (n > ENRICH_MAX_VALUE) {
		n = ENRICH_MAX_VALUE;
		/* not inside a UTF-8 sequence */
		while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
			n--;
	}
	/* yajl lets some bytes through that are not UTF-8 (overlongs) */
	dst->off = (uint32_t)b->len;
	if (strbuf_add_utf8(b, v, n, 0) == -1 || strbuf_add(b, "", 1) == -1)
		dst->off = SPAN_NONE;
	else
		dst->len = (uint32_t)(b->len - 1 - dst->off);
}

static int
bp_scalar(void *ctx, const char *v, size_t n, int raw)
{
	struct bparse *p = ctx;
	struct enriched *o = p->out;

	if (p->depth == 0) {
		p->failed = 1;
		return 0;
	}
	if (p->depth != 1 || p->key == -1)
		return 1;
	if (p->key == -2 && !raw)
		bp_store(p, &o->name, v, n);
	else if (p->key == -3 && !raw)
		bp_store(p, &o->image, v, n);
	if (p->key >= 0 && o->nfields < ENRICH_MAX_FIELDS) {
		const char *f = p->conf->enrich_fields[p->key];

		bp_store(p, &o->fields[o->nfields].name, f, strlen(f));
		bp_store(p, &o->fields[o->nfields].value, v, n);
		o->fields[o->nfields].raw = raw;
		o->nfields++;
	}
	p->key = -1;
	return 1;
}

static int
bp_null(void *ctx)
{
	struct bparse *p = ctx;

	p->key = -1;
	return p->depth > 0;
}

static int
bp_boolean(void *ctx, int b)
{
	return bp_scalar(ctx, b ? "true" : "false", b ? 4 : 5, 1);
}

static int
bp_number(void *ctx, const char *s, size_t n)
{
	return bp_scalar(ctx, s, n, 1);
}

static int
bp_string(void *ctx, const unsigned char *s, size_t n)
{
	return bp_scalar(ctx, (const char *)s, n, 0);
}

static int
bp_start(void *ctx)
{
	struct bparse *p = ctx;

	if (p->depth == 0 && p->out->buf.len > 0)
		return 0; /* a second value */
	if (++p->depth > JSON_MAX_DEPTH)
		return 0;
	if (p->depth == 1)
		strbuf_add(&p->out->buf, "", 1); /* marks "object seen" */
	p->key = -1;
	return 1;
}

static int
bp_start_array(void *ctx)
{
	struct bparse *p = ctx;

	if (p->depth == 0)
		return 0;
	p->key = -1;
	return ++p->depth <= JSON_MAX_DEPTH;
}

static int
bp_end(void *ctx)
{
	((struct bparse *)ctx)->depth--;
	return 1;
}

static int
bp_key(void *ctx, const unsigned char *s, size_t n)
{
	struct bparse *p = ctx;
	const struct conf *c = p->conf;

	p->key = -1;
	if (p->depth != 1)
		return 1;
	if (n == strlen(p->name_key) && memcmp(s, p->name_key, n) == 0)
		p->key = -2;
	else if (n == 10 && memcmp(s, "image_name", 10) == 0)
		p->key = -3;
	/* Fields= naming name or image_name adds nothing: NAME and IMAGE. */
	for (size_t i = 0; p->key == -1 && i < c->nenrich_fields; i++)
		if (strlen(c->enrich_fields[i]) == n &&
		    memcmp(c->enrich_fields[i], s, n) == 0)
			p->key = (int)i;
	return 1;
}

static const yajl_callbacks bp_callbacks = {
	.yajl_null = bp_null,
	.yajl_boolean = bp_boolean,
	.yajl_number = bp_number,
	.yajl_string = bp_string,
	.yajl_start_map = bp_start,
	.yajl_map_key = bp_key,
	.yajl_end_map = bp_end,
	.yajl_start_array = bp_start_array,
	.yajl_end_array = bp_end,
};

/* Forget what o holds (its buffer is kept for the next parse). */
void
enrich_clear(struct enriched *o)
{
	strbuf_reset(&o->buf);
	o->type = o->name = o->image = (struct span){ SPAN_NONE, 0 };
	o->nfields = 0;
}

/*
 * The object of type (e.g. "container") from a GET's body into o: its
 * name (a node's external_fqdn), image_name and the Fields= members, each
 * a top-level scalar; nothing else of the body is kept.  0, or -1 with
 * why when the body is no JSON object or is larger than ENRICH_MAX_BODY.
 */
int
enrich_parse(const struct conf *c, const char *type, size_t tlen,
    const void *body, size_t n, struct enriched *o, const char **why)
{
	struct bparse p = { c, o, "name", 0, -1, 0 };
	yajl_handle h;
	int ok;

	enrich_clear(o);
	if (tlen == 4 && memcmp(type, "node", 4) == 0)
		p.name_key = "external_fqdn";
	if (n > ENRICH_MAX_BODY) {
		*why = "body too large";
		return -1;
	}
	if ((h = yajl_alloc(&bp_callbacks, NULL, &p)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	ok = yajl_parse(h, body, n) == yajl_status_ok &&
	    yajl_complete_parse(h) == yajl_status_ok && !p.failed &&
	    o->buf.len > 0 && p.depth == 0;
	yajl_free(h);
	if (!ok || o->buf.failed) {
		*why = o->buf.failed ? "out of memory" : "not a JSON object";
		enrich_clear(o);
		return -1;
	}
	bp_store(&p, &o->type, type, tlen);
	return 0;
}

/* The cache: entries by URI in a hash table, and on an LRU list. */
enum estate {
	E_IDLE, /* not known (new, or its fetch was dropped) */
	E_QUEUED, /* waiting for a connection */
	E_FETCHING,
	E_DONE /* result and expires are set */
};

struct entry {
	struct entry *hnext;
	struct entry *prev, *next; /* LRU: most recently used first */
	struct entry *qnext; /* the fetch queue */
	enum estate state;
	int result; /* E_DONE: STAT_ENRICH_OK, STAT_ENRICH_NOT_FOUND, ... */
	int in_table;
	unsigned refs; /* waiting events */
	uint64_t expires;
	uint32_t hash;
	struct enriched data;
	size_t tlen; /* the type's length, at type */
	const char *type; /* into key */
	size_t klen;
	char key[]; /* the resource URI */
};

/* One waiting event, a deep copy. */
struct item {
	struct item *next;
	struct entry *entry; /* NULL: nothing to wait for */
	uint64_t deadline;
	uint64_t spool_id;
	const uint64_t *acked;
	struct dc_event ev;
};

/* One kept-alive connection, one request at a time. */
enum sstate {
	S_CLOSED,
	S_CONNECT, /* to the origin, or the proxy */
	S_PROXY_TLS,
	S_TUNNEL, /* waiting for the proxy's answer to CONNECT */
	S_TLS, /* with the origin */
	S_IDLE,
	S_BUSY /* the GET is sent, the reply not read yet */
};
struct slot {
	struct enrich *en;
	struct bufferevent *bev; /* the top one: the origin's TLS, if any */
	enum sstate state;
	const struct proxy *proxy; /* this connection's, NULL: direct */
	struct proxy_tunnel *tunnel;
	struct event *timer; /* TimeoutSec= of the GET in flight */
	struct entry *busy; /* the entry being fetched, or NULL */
	int reused; /* a reply came on it: the server may close it idle */
};

struct enrich {
	struct event_base *base;
	struct evdns_base *dns;
	const struct conf *conf;
	struct output *out;
	void (*pause)(void *), (*resume)(void *);
	void *arg;
	int paused;
	SSL_CTX *ssl_ctx;
	char *auth; /* secret memory, or NULL */
	char head[600]; /* the GET's other header lines */
	struct slot slots[ENRICH_MAX_CONCURRENCY];
	size_t nslots;
	struct entry **table;
	size_t nbuckets; /* a power of two */
	size_t nentries;
	struct entry *lru_head, *lru_tail;
	struct entry *q_head, *q_tail; /* the fetch queue */
	struct item *f_head, *f_tail; /* the FIFO of waiting events */
	size_t nwaiting;
	size_t wbytes; /* their memory, against QueueMaxBytes */
	struct event *timer; /* the FIFO head's deadline */
	struct event *kick; /* releases and dispatches, outside callbacks */
	uint64_t hold_until; /* 401/403/429: no lookups until then */
	uint64_t logged[STAT_ENRICH_N];
	uint64_t suppressed[STAT_ENRICH_N];
	struct dc_event view; /* the released event, as the outputs see it */
	int freeing;
};

/* How many lookups ended with result (STAT_ENRICH_...): the metrics' count. */
uint64_t
enrich_lookups(int result)
{
	return result >= 0 && result < STAT_ENRICH_N
	    ? atomic_load_explicit(&stats_v[STAT_ENRICH_LOOKUPS][result],
		  memory_order_relaxed)
	    : 0;
}

size_t
enrich_waiting(const struct enrich *en)
{
	return en == NULL ? 0 : en->nwaiting;
}

/* Count a lookup; a failure is logged at most once a minute per kind. */
static void note(struct enrich *en, int result, const char *uri,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void
note(struct enrich *en, int result, const char *uri, const char *fmt, ...)
{
	uint64_t now = clock_ms();
	char why[200], esc[200];
	struct strbuf b = { 0 };
	va_list ap;

	stats_add(STAT_ENRICH_LOOKUPS, (size_t)result, 1);
	if (result == STAT_ENRICH_CACHED || result == STAT_ENRICH_OK ||
	    result == STAT_ENRICH_NOT_FOUND)
		return;
	if (en->logged[result] != 0 &&
	    now - en->logged[result] < LOG_EVERY_MS) {
		en->suppressed[result]++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	strbuf_add_escaped(&b, uri, strlen(uri));
	snprintf(esc, sizeof esc, "%s", b.buf ? b.buf : "");
	free(strbuf_finish(&b));
	log_warn("enrichment: GET %s: %s (%s; %" PRIu64
		 " more like it in the last minute)",
	    esc, why, stats_enrich_result((size_t)result), en->suppressed[result]);
	en->logged[result] = now;
	en->suppressed[result] = 0;
}

static uint32_t
hash_key(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static void
lru_unlink(struct enrich *en, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		en->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		en->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_front(struct enrich *en, struct entry *e)
{
	if (en->lru_head == e)
		return;
	if (e->prev != NULL || en->lru_tail == e)
		lru_unlink(en, e);
	e->next = en->lru_head;
	if (en->lru_head)
		en->lru_head->prev = e;
	en->lru_head = e;
	if (en->lru_tail == NULL)
		en->lru_tail = e;
}

static void
entry_free(struct entry *e)
{
	free(strbuf_finish(&e->data.buf));
	free(e);
}

/* Out of the table and the LRU list; freed once nothing uses it. */
static void
entry_evict(struct enrich *en, struct entry *e)
{
	struct entry **pp;

	if (!e->in_table)
		return;
	for (pp = &en->table[e->hash & (en->nbuckets - 1)]; *pp != e;
	     pp = &(*pp)->hnext)
		;
	*pp = e->hnext;
	lru_unlink(en, e);
	e->in_table = 0;
	en->nentries--;
}

/* Free e if it is out of the table and nothing holds it. */
static void
entry_maybe_free(struct entry *e)
{
	if (!e->in_table && e->refs == 0 && e->state != E_QUEUED &&
	    e->state != E_FETCHING)
		entry_free(e);
}

static struct entry *
entry_find(struct enrich *en, const char *uri, size_t n)
{
	uint32_t h = hash_key(uri, n);

	for (struct entry *e = en->table[h & (en->nbuckets - 1)]; e != NULL;
	     e = e->hnext)
		if (e->hash == h && e->klen == n && memcmp(e->key, uri, n) == 0)
			return e;
	return NULL;
}

/* The type in a resource URI: the segment before the uuid. */
static int
uri_type(const char *uri, size_t n, const char **type, size_t *tlen)
{
	size_t end = n, start;

	while (end > 0 && uri[end - 1] == '/')
		end--;
	while (end > 0 && uri[end - 1] != '/')
		end--; /* the uuid */
	while (end > 0 && uri[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && uri[start - 1] != '/')
		start--;
	*type = uri + start;
	*tlen = end - start;
	return end > start ? 0 : -1;
}

/* A new entry for uri, the least recently used idle ones evicted. */
static struct entry *
entry_new(struct enrich *en, const char *uri, size_t n)
{
	struct entry *e;
	uint32_t h = hash_key(uri, n);

	for (struct entry *v = en->lru_tail;
	     v != NULL && en->nentries >= en->conf->enrich_cache_entries;) {
		struct entry *prev = v->prev;

		if (v->refs == 0 &&
		    (v->state == E_DONE || v->state == E_IDLE)) {
			entry_evict(en, v);
			entry_maybe_free(v);
		}
		v = prev;
	}
	if ((e = calloc(1, sizeof *e + n + 1)) == NULL)
		fatal("out of memory");
	memcpy(e->key, uri, n);
	e->klen = n;
	e->hash = h;
	if (uri_type(e->key, n, &e->type, &e->tlen) == -1)
		e->tlen = 0;
	enrich_clear(&e->data);
	e->hnext = en->table[h & (en->nbuckets - 1)];
	en->table[h & (en->nbuckets - 1)] = e;
	e->in_table = 1;
	en->nentries++;
	lru_front(en, e);
	return e;
}

/*
 * A URI worth a GET: an absolute path of safe characters, no "..", not
 * too long (it comes from the stream; it must not leave URL's host or
 * smuggle a query or header).
 */
static int
uri_ok(const char *u, size_t n)
{
	if (n == 0 || n > ENRICH_MAX_URI || u[0] != '/' ||
	    (n > 1 && u[1] == '/'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)u[i];

		if (!(isalnum(ch) && ch < 0x80) && strchr("/-_.~", ch) == NULL)
			return 0;
		if (ch == '.' && i > 0 && u[i - 1] == '.')
			return 0;
	}
	return 1;
}

static int
is_object_type(const struct dc_event *e)
{
	static const char *const types[] = { "container", "service", "stack",
		"node", "nodecluster" };
	const char *t = ev_str(e, e->type);

	if (t == NULL)
		return 0;
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strlen(types[i]) == e->type.len &&
		    memcmp(types[i], t, e->type.len) == 0)
			return 1;
	return 0;
}

static void
kick(struct enrich *en)
{
	event_active(en->kick, EV_TIMEOUT, 0);
}

static void
enqueue(struct enrich *en, struct entry *e)
{
	e->state = E_QUEUED;
	e->qnext = NULL;
	if (en->q_tail)
		en->q_tail->qnext = e;
	else
		en->q_head = e;
	en->q_tail = e;
	kick(en);
}

static int
pending(const struct entry *e)
{
	return e != NULL && (e->state == E_QUEUED || e->state == E_FETCHING);
}

/* The released event: its entry and its parents' cached ones. */
static void
release(struct enrich *en, struct item *it)
{
	struct dc_event *v = &en->view;
	struct entry *e = it->entry;
	uint64_t id;
	const uint64_t *acked;

	*v = it->ev;
	v->obj = e != NULL && e->state == E_DONE && e->result == STAT_ENRICH_OK
	    ? &e->data
	    : NULL;
	v->nup = 0;
	for (unsigned i = 0; i < v->nparents && v->nup < ENRICH_MAX_UP; i++) {
		struct entry *p =
		    entry_find(en, ev_str(v, v->parents[i]), v->parents[i].len);

		if (p != NULL && p->state == E_DONE && p->result == STAT_ENRICH_OK &&
		    p->data.name.off != SPAN_NONE)
			v->up[v->nup++] = &p->data;
	}
	id = output_get_spool_id(en->out, &acked);
	output_set_spool_id(en->out, it->spool_id, it->acked);
	output_event(en->out, v);
	output_set_spool_id(en->out, id, acked);
	if (e != NULL) {
		e->refs--;
		entry_maybe_free(e);
	}
}

/* Release the FIFO's head while it may go; rearm the deadline timer. */
static void
drain(struct enrich *en, int all)
{
	uint64_t now = clock_ms();
	struct item *it;

	while ((it = en->f_head) != NULL &&
	    (all || !pending(it->entry) || now >= it->deadline ||
		now < en->hold_until)) {
		en->f_head = it->next;
		if (en->f_head == NULL)
			en->f_tail = NULL;
		en->nwaiting--;
		en->wbytes -= sizeof *it + it->ev.buf.len;
		release(en, it);
		free(strbuf_finish(&it->ev.buf));
		free(it);
	}
	if (en->paused && en->nwaiting < en->conf->queue_max / 2 &&
	    en->wbytes < en->conf->queue_max_bytes / 2) {
		en->paused = 0;
		en->resume(en->arg);
	}
	if (en->f_head != NULL) {
		struct timeval tv = tv_ms(en->f_head->deadline > now
			? en->f_head->deadline - now
			: 0);

		evtimer_add(en->timer, &tv);
	} else
		evtimer_del(en->timer);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	drain(arg, 0);
}

/* A copy of e that outlives the parser's next message. */
static struct item *
item_new(const struct dc_event *e, struct entry *entry, uint64_t timeout_ms)
{
	struct item *it = malloc(sizeof *it);

	if (it == NULL)
		fatal("out of memory");
	it->next = NULL;
	it->entry = entry;
	it->deadline = clock_ms() + timeout_ms;
	it->ev = *e;
	it->ev.buf = (struct strbuf){ 0 };
	if (strbuf_add(&it->ev.buf, e->buf.buf, e->buf.len) == -1 ||
	    it->ev.buf.failed)
		fatal("out of memory");
	return it;
}

/*
 * The parser's handler: the event, looked up, to output_event() now (the
 * FIFO is empty and the cache knows) or when its turn comes.
 */
void
enrich_event(void *arg, const struct dc_event *e)
{
	struct enrich *en = arg;
	const char *uri = ev_str(e, e->resource_uri), *action;
	size_t n = e->resource_uri.len;
	uint64_t now = clock_ms();
	struct entry *entry = NULL;
	struct item *it;
	int del;

	action = ev_str(e, e->action);
	del = action != NULL && strcmp(action, "delete") == 0;
	if (uri != NULL && is_object_type(e) && uri_ok(uri, n)) {
		entry = entry_find(en, uri, n);
		if (entry != NULL && entry->state == E_DONE &&
		    now >= entry->expires)
			entry->state = E_IDLE; /* stale: fetched again */
		if (entry != NULL && entry->state != E_IDLE)
			note(en, STAT_ENRICH_CACHED, uri, "cached");
		else if (del || now < en->hold_until) {
			/* No GET for a deleted object, nor while on hold. */
			if (entry != NULL && del) {
				entry_evict(en, entry);
				entry_maybe_free(entry);
			}
			entry = NULL;
		} else {
			if (entry == NULL)
				entry = entry_new(en, uri, n);
			else
				lru_front(en, entry);
			enqueue(en, entry);
		}
		if (entry != NULL) {
			lru_front(en, entry);
			if (del)
				entry_evict(en, entry);
		}
	}
	if (en->f_head == NULL && !pending(entry)) {
		/* The fast path: nothing to wait for, no copy. */
		struct item one = { .entry = entry };

		if (entry != NULL)
			entry->refs++;
		one.spool_id = output_get_spool_id(en->out, &one.acked);
		one.ev = *e;
		release(en, &one);
		return;
	}
	it = item_new(e, entry, en->conf->enrich_timeout_ms);
	it->spool_id = output_get_spool_id(en->out, &it->acked);
	if (entry != NULL)
		entry->refs++;
	if (en->f_tail)
		en->f_tail->next = it;
	else
		en->f_head = it;
	en->f_tail = it;
	en->wbytes += sizeof *it + it->ev.buf.len;
	if ((++en->nwaiting >= en->conf->queue_max ||
		en->wbytes >= en->conf->queue_max_bytes) &&
	    !en->paused) {
		en->paused = 1;
		log_warn("enrichment: %zu events (%zu bytes) wait for their "
			 "lookups (QueueMax, QueueMaxBytes); reading paused",
		    en->nwaiting, en->wbytes);
		en->pause(en->arg);
	}
	drain(en, 0);
}

/*
 * The connections: a socket to the origin or, when proxy_for() names
 * one, to the proxy (TLS to an https:// proxy as a filter over it), the
 * CONNECT tunnel (proxy.c), the origin's TLS as a filter over that; then
 * one GET at a time (http.c), kept alive while the server allows.  The
 * slot's timer (TimeoutSec=) covers all of it, from the connection to
 * the last byte of the reply.
 */
static void slot_close(struct slot *);
static void slot_send(struct slot *);
static void slot_parse(struct slot *, int eof);
static void slot_read_cb(struct bufferevent *, void *);
static void slot_event_cb(struct bufferevent *, short, void *);
static void slot_timer_cb(evutil_socket_t, short, void *);
static void entry_done(struct enrich *, struct entry *, int, uint64_t);
static int fetch(struct enrich *, struct slot *, struct entry *);

/* The slot's connection is over; its fetch, if any, failed for why. */
static void
slot_failed(struct slot *s, int result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
slot_failed(struct slot *s, int result, const char *fmt, ...)
{
	struct enrich *en = s->en;
	struct entry *e = s->busy;
	char why[400];
	va_list ap;

	/* First: the arguments may point into the tunnel slot_close() frees. */
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	slot_close(s);
	if (e == NULL)
		return; /* an idle connection ended */
	s->busy = NULL;
	note(en, result, e->key, "%s", why);
	entry_done(en, e, result, NEG_FAILED_MS);
	kick(en);
}

/* What to call the other end in a failure: host:port [through the proxy]. */
static const char *
slot_peer(struct slot *s, char *buf, size_t n)
{
	const struct conf *c = s->en->conf;

	snprintf(buf, n, "%s:%s%s%s", c->enrich_host, c->enrich_port,
	    s->proxy ? " through the proxy " : "",
	    s->proxy ? s->proxy->url : "");
	return buf;
}

/* TLS with host as a filter over the slot's bufferevent, then state. */
static int
slot_tls(struct slot *s, const char *host, enum sstate state)
{
	struct enrich *en = s->en;
	struct bufferevent *bev;
	SSL *ssl = SSL_new(en->ssl_ctx);
	char err[200];

	if (ssl == NULL)
		return -1;
	if (tls_client_setup(ssl, host, err, sizeof err) == -1) {
		log_warn("enrichment: TLS setup for %s: %s", host, err);
		SSL_free(ssl);
		return -1;
	}
	/* The filter frees the bufferevent below it, which closes the fd. */
	bev = bufferevent_openssl_filter_new(en->base, s->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	s->bev = bev;
	bufferevent_setcb(bev, slot_read_cb, NULL, slot_event_cb, s);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	s->state = state;
	return 0;
}

/* The connection can carry requests: send the one waiting, if any. */
static void
slot_ready(struct slot *s)
{
	s->state = S_IDLE;
	if (s->busy != NULL)
		slot_send(s);
}

static void
slot_tunnel_done(void *arg, const struct proxy_done *d)
{
	struct slot *s = arg;
	const struct conf *c = s->en->conf;

	/* d points into the tunnel: slot_failed() frees it after reading d. */
	if (d->result == PROXY_AUTH) {
		slot_failed(s, STAT_ENRICH_SERVER_ERROR,
		    "the proxy %s refused the credentials: %s", s->proxy->url,
		    d->why);
		return;
	}
	if (d->result != PROXY_OK) {
		slot_failed(s, STAT_ENRICH_SERVER_ERROR, "%s", d->why);
		return;
	}
	proxy_tunnel_free(s->tunnel);
	s->tunnel = NULL;
	bufferevent_setcb(s->bev, slot_read_cb, NULL, slot_event_cb, s);
	if (!c->enrich_secure)
		slot_ready(s);
	else if (slot_tls(s, c->enrich_host, S_TLS) == -1)
		slot_failed(s, STAT_ENRICH_SERVER_ERROR, "cannot set up TLS");
}

static void
slot_start_tunnel(struct slot *s)
{
	const struct conf *c = s->en->conf;

	s->state = S_TUNNEL;
	s->tunnel = proxy_tunnel_start(s->bev, s->proxy, c->enrich_host,
	    c->enrich_port, slot_tunnel_done, s);
	if (s->tunnel == NULL)
		slot_failed(s, STAT_ENRICH_SERVER_ERROR, "out of memory");
}

static void
slot_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct slot *s = arg;
	const struct conf *c = s->en->conf;
	char peer[400], why[200];
	SSL *ssl;

	if (what & BEV_EVENT_CONNECTED) {
		int rc = 0;

		if (s->state == S_CONNECT && s->proxy != NULL &&
		    s->proxy->secure)
			rc = slot_tls(s, s->proxy->host, S_PROXY_TLS);
		else if (s->state == S_CONNECT && s->proxy != NULL)
			slot_start_tunnel(s);
		else if (s->state == S_PROXY_TLS)
			slot_start_tunnel(s);
		else if (s->state == S_CONNECT && c->enrich_secure)
			rc = slot_tls(s, c->enrich_host, S_TLS);
		else if (s->state == S_CONNECT || s->state == S_TLS)
			slot_ready(s);
		if (rc == -1)
			slot_failed(
			    s, STAT_ENRICH_SERVER_ERROR, "cannot set up TLS");
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (s->state == S_BUSY) {
		slot_parse(s, 1);
		return;
	}
	slot_peer(s, peer, sizeof peer);
	ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl != NULL && tls_verify_error(ssl, why, sizeof why))
		slot_failed(s, STAT_ENRICH_SERVER_ERROR, "%s: %s", peer, why);
	else
		slot_failed(s, STAT_ENRICH_SERVER_ERROR,
		    "connection to %s failed or closed", peer);
}

/* Connect s, to the proxy if one applies to the REST host. */
static int
slot_open(struct enrich *en, struct slot *s)
{
	const struct conf *c = en->conf;

	s->proxy = proxy_for(c, c->enrich_host, c->enrich_port);
	s->bev = bufferevent_socket_new(
	    en->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (s->bev == NULL)
		return -1;
	bufferevent_setcb(s->bev, slot_read_cb, NULL, slot_event_cb, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->state = S_CONNECT;
	if (bufferevent_socket_connect_hostname(s->bev, en->dns, AF_UNSPEC,
		s->proxy ? s->proxy->host : c->enrich_host,
		atoi(s->proxy ? s->proxy->port : c->enrich_port)) == -1) {
		slot_close(s);
		return -1;
	}
	return 0;
}

static void
slot_close(struct slot *s)
{
	proxy_tunnel_free(s->tunnel);
	s->tunnel = NULL;
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	s->bev = NULL;
	if (s->timer != NULL)
		evtimer_del(s->timer);
	s->state = S_CLOSED;
	s->reused = 0;
}

/* A GET is over: its entry is done with result, for ms. */
static void
entry_done(struct enrich *en, struct entry *e, int result, uint64_t ms)
{
	e->state = E_DONE;
	e->result = result;
	e->expires = clock_ms() + ms;
	if (result != STAT_ENRICH_OK)
		enrich_clear(&e->data);
	entry_maybe_free(e);
}

/* The reply to e's GET: its status, body (n bytes) and Retry-After. */
static void
slot_result(struct slot *s, struct entry *e, int code, const char *body,
    size_t n, uint64_t retry_ms)
{
	struct enrich *en = s->en;
	const struct conf *c = en->conf;
	const char *why = "invalid body";
	uint64_t hold;

	if (code == 200) {
		if (enrich_parse(c, e->type, e->tlen, body, n, &e->data,
			&why) == -1) {
			note(en, STAT_ENRICH_INVALID, e->key, "%s", why);
			entry_done(en, e, STAT_ENRICH_INVALID, NEG_FAILED_MS);
		} else {
			note(en, STAT_ENRICH_OK, e->key, "ok");
			entry_done(en, e, STAT_ENRICH_OK, c->enrich_cache_ttl_ms);
		}
	} else if (code == 404 || code == 410) {
		note(en, STAT_ENRICH_NOT_FOUND, e->key, "not found");
		entry_done(en, e, STAT_ENRICH_NOT_FOUND, NEG_NOT_FOUND_MS);
	} else if (code == 401 || code == 403) {
		note(en, STAT_ENRICH_UNAUTHORIZED, e->key,
		    "HTTP %d: lookups stop for %g s (AuthBackoffSec)", code,
		    (double)c->auth_backoff_ms / 1000);
		en->hold_until = clock_ms() + c->auth_backoff_ms;
		entry_done(en, e, STAT_ENRICH_UNAUTHORIZED, NEG_FAILED_MS);
	} else if (code == 429) {
		if ((hold = retry_ms) == 0 || hold > 86400 * 1000)
			hold = NEG_FAILED_MS;
		note(en, STAT_ENRICH_RATE_LIMITED, e->key,
		    "HTTP 429: lookups stop for %g s (Retry-After)",
		    (double)hold / 1000);
		en->hold_until = clock_ms() + hold;
		entry_done(en, e, STAT_ENRICH_RATE_LIMITED, NEG_FAILED_MS);
	} else if (code >= 500) {
		note(en, STAT_ENRICH_SERVER_ERROR, e->key, "HTTP %d", code);
		entry_done(en, e, STAT_ENRICH_SERVER_ERROR, NEG_FAILED_MS);
	} else {
		note(en, STAT_ENRICH_INVALID, e->key, "HTTP %d", code);
		entry_done(en, e, STAT_ENRICH_INVALID, NEG_FAILED_MS);
	}
}

/*
 * Read the reply to the GET in flight from what has arrived (eof: and
 * the connection has ended): nothing until it is whole; then its result,
 * and the connection kept for the next GET or closed.
 */
static void
slot_parse(struct slot *s, int eof)
{
	struct enrich *en = s->en;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t n = evbuffer_get_length(in);
	struct entry *e = s->busy;
	struct http_response r;
	const char *buf;
	char *body = NULL, peer[400];
	int rc;

	if (e == NULL)
		return;
	if (n > HS_MAX_HEADER + 2 * (size_t)ENRICH_MAX_BODY) {
		slot_failed(s, STAT_ENRICH_INVALID, "reply larger than %zu bytes",
		    HS_MAX_HEADER + 2 * (size_t)ENRICH_MAX_BODY);
		return;
	}
	buf = (const char *)evbuffer_pullup(in, -1);
	rc = http_response_parse(buf ? buf : "", n, eof, ENRICH_MAX_BODY, NULL, &r);
	if (rc == HS_INCOMPLETE)
		return;
	if (rc == HS_FAILED && n == 0 && eof && s->reused) {
		/*
		 * A kept-alive connection the server closed as the GET went
		 * out: once more, on a new connection.
		 */
		s->busy = NULL;
		slot_close(s);
		if (fetch(en, s, e) == 0)
			return;
		s->busy = e;
		slot_failed(s, STAT_ENRICH_SERVER_ERROR,
		    "cannot start a request to %s", en->conf->enrich_host);
		return;
	}
	if (rc == HS_FAILED) {
		if (n == 0 && eof)
			slot_failed(s, STAT_ENRICH_SERVER_ERROR,
			    "connection to %s closed",
			    slot_peer(s, peer, sizeof peer));
		else
			slot_failed(s, STAT_ENRICH_INVALID, "%s", r.error);
		return;
	}
	if (r.chunked) {
		/* Again, now that the decoded body's length is known. */
		if ((body = malloc(r.body_len + 1)) == NULL) {
			slot_failed(s, STAT_ENRICH_SERVER_ERROR, "out of memory");
			return;
		}
		http_response_parse(buf, n, eof, r.body_len, body, &r);
	}
	s->busy = NULL;
	evtimer_del(s->timer);
	slot_result(s, e, r.status, body ? body : buf + r.body_at, r.body_len,
	    r.retry_after_ms);
	free(body);
	evbuffer_drain(in, r.total);
	if (!r.keep_alive || eof || evbuffer_get_length(in) > 0)
		slot_close(s);
	else {
		s->state = S_IDLE;
		s->reused = 1;
	}
	kick(en);
}

static void
slot_read_cb(struct bufferevent *bev, void *arg)
{
	struct slot *s = arg;

	if (s->state == S_BUSY)
		slot_parse(s, 0);
	else if (s->state == S_IDLE)
		slot_close(s); /* nothing was asked */
}

static void
slot_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct slot *s = arg;

	slot_failed(s, STAT_ENRICH_TIMEOUT, "no answer within %g s",
	    (double)s->en->conf->enrich_timeout_ms / 1000);
}

/* Send the GET for s->busy. */
static void
slot_send(struct slot *s)
{
	struct enrich *en = s->en;
	const struct conf *c = en->conf;
	char target[ENRICH_MAX_URI + 1024];
	size_t len;
	char *req;

	snprintf(target, sizeof target, "%s%s", c->enrich_path, s->busy->key);
	if ((req = http_get_request(target, en->head, en->auth, &len)) ==
	    NULL) {
		slot_failed(s, STAT_ENRICH_SERVER_ERROR, "out of memory");
		return;
	}
	if (evbuffer_add_reference(bufferevent_get_output(s->bev), req, len,
		secret_ref_done, req) == -1) {
		secret_free(req);
		slot_failed(s, STAT_ENRICH_SERVER_ERROR, "out of memory");
		return;
	}
	s->state = S_BUSY;
}

/* Start the GET for e on s; -1 if it could not be. */
static int
fetch(struct enrich *en, struct slot *s, struct entry *e)
{
	struct timeval tv = tv_ms(en->conf->enrich_timeout_ms);

	if (s->bev == NULL && slot_open(en, s) == -1)
		return -1;
	s->busy = e;
	e->state = E_FETCHING;
	evtimer_add(s->timer, &tv);
	if (s->state == S_IDLE)
		slot_send(s);
	return 0;
}

/* Give queued entries to idle connections. */
static void
dispatch(struct enrich *en)
{
	for (size_t i = 0; i < en->nslots && en->q_head != NULL; i++) {
		struct slot *s = &en->slots[i];
		struct entry *e;

		if (s->busy != NULL)
			continue;
		while ((e = en->q_head) != NULL) {
			en->q_head = e->qnext;
			if (en->q_head == NULL)
				en->q_tail = NULL;
			e->qnext = NULL;
			/* Nobody waits any more, or lookups are on hold. */
			if (e->refs == 0 || clock_ms() < en->hold_until) {
				e->state = E_IDLE;
				entry_maybe_free(e);
				continue;
			}
			if (fetch(en, s, e) == -1) {
				note(en, STAT_ENRICH_SERVER_ERROR, e->key,
				    "cannot start a request to %s",
				    en->conf->enrich_host);
				entry_done(
				    en, e, STAT_ENRICH_SERVER_ERROR, NEG_FAILED_MS);
				continue;
			}
			break;
		}
	}
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct enrich *en = arg;

	dispatch(en);
	drain(en, 0);
}

/* The settings c's connections need: TLS context, credential, Host. */
static int
enrich_setup(struct enrich *en, const struct conf *c)
{
	char err[256];
	int v6 = strchr(c->enrich_host, ':') != NULL;

	en->conf = c;
	if (c->enrich_secure &&
	    (en->ssl_ctx = tls_client_ctx(
		 c->cafile, c->capath, err, sizeof err)) == NULL) {
		log_err("enrichment: %s", err);
		return -1;
	}
	if (c->secret != NULL &&
	    (en->auth = handshake_authorization(c)) == NULL) {
		log_err("enrichment: out of memory");
		return -1;
	}
	snprintf(en->head, sizeof en->head,
	    "Host: %s%s%s%s%s\r\nAccept: application/json\r\n"
	    "User-Agent: dcevents/" PACKAGE_VERSION "\r\n",
	    v6 ? "[" : "", c->enrich_host, v6 ? "]" : "",
	    strcmp(c->enrich_port, c->enrich_secure ? "443" : "80") ? ":" : "",
	    strcmp(c->enrich_port, c->enrich_secure ? "443" : "80")
		? c->enrich_port
		: "");
	en->nslots = (size_t)c->enrich_concurrency;
	return 0;
}

static void
enrich_teardown(struct enrich *en)
{
	for (size_t i = 0; i < ENRICH_MAX_CONCURRENCY; i++) {
		struct entry *e = en->slots[i].busy;

		en->slots[i].busy = NULL;
		slot_close(&en->slots[i]);
		if (e != NULL) {
			e->state = E_IDLE;
			entry_maybe_free(e);
		}
	}
	while (en->q_head != NULL) {
		struct entry *e = en->q_head;

		en->q_head = e->qnext;
		e->state = E_IDLE;
		entry_maybe_free(e);
	}
	en->q_tail = NULL;
	if (en->ssl_ctx != NULL)
		SSL_CTX_free(en->ssl_ctx);
	en->ssl_ctx = NULL;
	secret_free(en->auth);
	en->auth = NULL;
}

struct enrich *
enrich_new(struct event_base *base, struct evdns_base *dns,
    const struct conf *c, struct output *out, void (*pause)(void *),
    void (*resume)(void *), void *arg)
{
	struct enrich *en = calloc(1, sizeof *en);

	if (en == NULL)
		return NULL;
	en->base = base;
	en->dns = dns;
	en->out = out;
	en->pause = pause;
	en->resume = resume;
	en->arg = arg;
	for (size_t i = 0; i < ENRICH_MAX_CONCURRENCY; i++) {
		en->slots[i].en = en;
		if ((en->slots[i].timer = evtimer_new(
			 base, slot_timer_cb, &en->slots[i])) == NULL) {
			enrich_free(en);
			return NULL;
		}
	}
	en->nbuckets = 1024;
	while (
	    en->nbuckets < c->enrich_cache_entries && en->nbuckets < (1u << 20))
		en->nbuckets *= 2;
	en->table = calloc(en->nbuckets, sizeof *en->table);
	en->timer = evtimer_new(base, on_timer, en);
	en->kick = event_new(base, -1, 0, on_kick, en);
	if (en->table == NULL || en->timer == NULL || en->kick == NULL ||
	    enrich_setup(en, c) == -1) {
		enrich_free(en);
		return NULL;
	}
	return en;
}

/*
 * A reload: the connections are made again for the new settings (URL,
 * credential, trust anchors may have changed); the cache is kept unless
 * the URL changed; the waiting events keep their place.
 */
void
enrich_reconfigure(struct enrich *en, const struct conf *c)
{
	int url = strcmp(en->conf->enrich_url, c->enrich_url) != 0;

	drain(en, 1);
	enrich_teardown(en);
	if (enrich_setup(en, c) == -1)
		log_err("enrichment: lookups fail until the next reload");
	if (url) {
		while (en->lru_head != NULL) {
			struct entry *e = en->lru_head;

			entry_evict(en, e);
			entry_maybe_free(e);
		}
	}
}

/* Every waiting event to the outputs, as it is; then everything freed. */
void
enrich_free(struct enrich *en)
{
	if (en == NULL)
		return;
	if (en->timer != NULL && en->conf != NULL)
		drain(en, 1);
	enrich_teardown(en);
	while (en->lru_head != NULL) {
		struct entry *e = en->lru_head;

		entry_evict(en, e);
		entry_maybe_free(e);
	}
	for (size_t i = 0; i < ENRICH_MAX_CONCURRENCY; i++)
		if (en->slots[i].timer != NULL)
			event_free(en->slots[i].timer);
	if (en->timer)
		event_free(en->timer);
	if (en->kick)
		event_free(en->kick);
	free(en->table);
	free(en);
}
