/*
 * The spool ([Spool] Mode=always): one SQLite database in WAL mode
 * holding every received message, as the raw bytes the websocket
 * delivered, in arrival order (table events), and, per output, the last
 * event it has written (table positions).
 *
 * The spool sits between the websocket and the JSON parser: a message is
 * appended inside the loop turn's transaction; a zero-timeout callback
 * commits that transaction and only then hands the turn's messages to the
 * parser and the outputs, so whatever reached an output is on disk first.
 * Each record carries its event's row id; the writer threads publish the
 * highest id they wrote (queue_written_id), and a timer stores those as
 * the positions and deletes the rows every open output has written.
 * Table seen keeps the uuids of the last 4096 events handed on (output.c's
 * duplicate ring), restored at start for the events every output wrote.
 *
 * synchronous=NORMAL: in WAL mode a commit is a write() to the WAL file,
 * which the kernel keeps when the process is killed (kill -9, a crash);
 * only a power loss or a kernel crash may roll back the last commits
 * (https://sqlite.org/pragma.html#pragma_synchronous).  FULL would add an
 * fsync per loop turn for that case.
 *
 * At start, the rows beyond each output's position are parsed again and
 * handed to the outputs that have not written them, before anything new.
 * A database that cannot be opened or checked (garbage, truncated, a WAL
 * without its database) is moved aside as PATH.bad-TIMESTAMP, a record
 * with MID_SPOOL_DAMAGED says so, and a new one is started; the daemon
 * never stops for its spool (without one it runs as with Mode=no).
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "dcevents.h"

#define ACK_INTERVAL_MS 200
#define DEDUP_KEEP 4096 /* uuids persisted: output.c's ring */

struct spool {
	sqlite3 *db;
	char *path;
	struct output *out;
	struct ws_handler inner; /* the parser's handler */
	sqlite3_stmt *ins, *setpos, *del, *getpos, *seen, *unseen;
	struct strbuf cur; /* the message being received */
	struct strbuf pend; /* committed next: (id, len, bytes)... */
	size_t npend;
	int in_txn;
	int failed; /* appends fail: messages go on unspooled */
	struct event *flush_ev;
	struct event *ack_ev;
	uint64_t *pos; /* per output: the last id it wrote */
	uint64_t commits, commit_us, commit_max_us;
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int
exec(struct spool *s, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_err("spool %s: %s: %s", s->path, sql,
		    err ? err : sqlite3_errmsg(s->db));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

static void
db_close(struct spool *s)
{
	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->setpos);
	sqlite3_finalize(s->del);
	sqlite3_finalize(s->getpos);
	sqlite3_finalize(s->seen);
	sqlite3_finalize(s->unseen);
	s->ins = s->setpos = s->del = s->getpos = s->seen = s->unseen = NULL;
	if (s->db != NULL)
		sqlite3_close_v2(s->db);
	s->db = NULL;
}

/* Open and check the database; -1 (said why) when it is unusable. */
static int
db_open(struct spool *s, const struct conf *c)
{
	char sql[128], wal[4200];
	sqlite3_stmt *st;
	struct stat sb;
	int ok;

	/* A WAL without its database would be replayed into an empty one. */
	snprintf(wal, sizeof wal, "%s-wal", s->path);
	if (stat(s->path, &sb) == -1 && errno == ENOENT &&
	    stat(wal, &sb) == 0) {
		log_err("spool %s: a WAL file without its database", s->path);
		return -1;
	}
	if (sqlite3_open_v2(s->path, &s->db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_NOMUTEX,
		NULL) != SQLITE_OK) {
		log_err("spool %s: %s", s->path,
		    s->db ? sqlite3_errmsg(s->db) : "out of memory");
		return -1;
	}
	sqlite3_busy_timeout(s->db, 1000);
	if (exec(s, "PRAGMA journal_mode=WAL") == -1 ||
	    exec(s, "PRAGMA synchronous=NORMAL") == -1)
		return -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL) !=
	    SQLITE_OK) {
		log_err("spool %s: %s", s->path, sqlite3_errmsg(s->db));
		return -1;
	}
	ok = sqlite3_step(st) == SQLITE_ROW &&
	    strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	if (!ok)
		log_err("spool %s: check failed: %s", s->path,
		    sqlite3_column_text(st, 0) ? (const char *)
						     sqlite3_column_text(st, 0)
					       : sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	if (!ok)
		return -1;
	snprintf(sql, sizeof sql, "PRAGMA max_page_count=%llu",
	    (unsigned long long)(c->spool_max_bytes / 4096 + 1));
	if (exec(s, "PRAGMA page_size=4096") == -1 || exec(s, sql) == -1 ||
	    exec(s,
		"CREATE TABLE IF NOT EXISTS events("
		"id INTEGER PRIMARY KEY AUTOINCREMENT, msg BLOB NOT NULL);"
		"CREATE TABLE IF NOT EXISTS positions("
		"output TEXT PRIMARY KEY, id INTEGER NOT NULL);"
		"CREATE TABLE IF NOT EXISTS seen("
		"id INTEGER PRIMARY KEY, uuid TEXT NOT NULL)") == -1)
		return -1;
	if (sqlite3_prepare_v3(s->db, "INSERT INTO events(msg) VALUES(?)", -1,
		SQLITE_PREPARE_PERSISTENT, &s->ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db,
		"INSERT INTO positions(output, id) VALUES(?, ?) "
		"ON CONFLICT(output) DO UPDATE SET id = excluded.id",
		-1, SQLITE_PREPARE_PERSISTENT, &s->setpos, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, "DELETE FROM events WHERE id <= ?", -1,
		SQLITE_PREPARE_PERSISTENT, &s->del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db,
		"SELECT id FROM positions WHERE output = ?", -1,
		SQLITE_PREPARE_PERSISTENT, &s->getpos, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db,
		"INSERT OR REPLACE INTO seen(id, uuid) VALUES(?, ?)", -1,
		SQLITE_PREPARE_PERSISTENT, &s->seen, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db,
		"DELETE FROM seen WHERE id <= (SELECT max(id) FROM seen) - ?",
		-1, SQLITE_PREPARE_PERSISTENT, &s->unseen, NULL) != SQLITE_OK) {
		log_err("spool %s: %s", s->path, sqlite3_errmsg(s->db));
		return -1;
	}
	return 0;
}

/*
 * Move the damaged files aside; says where in *aside.  -1 (why in
 * *why) when the database cannot be moved: it stays where it is.
 */
static int
move_aside(struct spool *s, char *aside, size_t n, const char **why)
{
	static const char *const ext[] = { "", "-wal", "-shm" };
	char stamp[32], from[4200], to[4300];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	snprintf(aside, n, "%s.bad-%s", s->path, stamp);
	for (size_t i = 0; i < 3; i++) {
		snprintf(from, sizeof from, "%s%s", s->path, ext[i]);
		snprintf(to, sizeof to, "%s%s", aside, ext[i]);
		if (rename(from, to) == -1 && errno != ENOENT) {
			log_err("spool: cannot move %s aside: %s", from,
			    strerror(errno));
			if (i == 0) {
				*why = strerror(errno);
				return -1;
			}
		}
	}
	return 0;
}

static void
commit(struct spool *s)
{
	uint64_t t0, us;

	if (!s->in_txn)
		return;
	s->in_txn = 0;
	t0 = now_us();
	if (exec(s, "COMMIT") == -1) {
		exec(s, "ROLLBACK");
		return;
	}
	us = now_us() - t0;
	s->commits++;
	s->commit_us += us;
	if (us > s->commit_max_us)
		s->commit_max_us = us;
}

static int
begin(struct spool *s)
{
	if (s->in_txn)
		return 0;
	if (exec(s, "BEGIN") == -1)
		return -1;
	s->in_txn = 1;
	return 0;
}

/*
 * The duplicate ring, persisted: the uuid of each event handed on, by
 * row id, the last DEDUP_KEEP kept; stored in the next transaction (the
 * next loop turn's or the acknowledgement timer's).  At start, those
 * every output has written go back into output.c's ring.
 */
static void
note_seen(struct spool *s, uint64_t id)
{
	const char *u;
	size_t n = output_take_uuid(s->out, &u);

	if (n == 0 || id == 0 || begin(s) == -1)
		return;
	sqlite3_reset(s->seen);
	sqlite3_bind_int64(s->seen, 1, (sqlite3_int64)id);
	sqlite3_bind_text(s->seen, 2, u, (int)n, SQLITE_TRANSIENT);
	if (sqlite3_step(s->seen) != SQLITE_DONE)
		log_err("spool %s: %s", s->path, sqlite3_errmsg(s->db));
	sqlite3_reset(s->seen);
}

/* Hand one message to the parser and the outputs as the websocket would. */
static void
hand_on(struct spool *s, uint64_t id, const uint64_t *acked,
    const void *p, size_t n)
{
	output_set_spool_id(s->out, id, acked);
	s->inner.begin(s->inner.arg);
	s->inner.data(s->inner.arg, p, n);
	s->inner.end(s->inner.arg);
	output_set_spool_id(s->out, 0, NULL);
	note_seen(s, id);
}

/* End of the loop turn: commit, then the turn's messages go on. */
static void
spool_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spool *s = arg;
	size_t off = 0;

	(void)fd;
	(void)what;
	commit(s);
	for (size_t i = 0; i < s->npend; i++) {
		uint64_t id;
		size_t len;

		memcpy(&id, s->pend.buf + off, sizeof id);
		memcpy(&len, s->pend.buf + off + sizeof id, sizeof len);
		off += sizeof id + sizeof len;
		hand_on(s, id, NULL, s->pend.buf + off, len);
		off += len;
	}
	s->npend = 0;
	strbuf_reset(&s->pend);
}

static void
spool_begin(void *arg)
{
	strbuf_reset(&((struct spool *)arg)->cur);
}

static void
spool_data(void *arg, const uint8_t *p, size_t n)
{
	struct spool *s = arg;

	if (strbuf_add(&s->cur, p, n) == -1 || s->cur.failed)
		fatal("out of memory");
}

static void
spool_end(void *arg)
{
	struct spool *s = arg;
	uint64_t id;
	size_t len = s->cur.len;

	if (begin(s) == -1)
		goto unspooled;
	sqlite3_reset(s->ins);
	if (sqlite3_bind_blob(s->ins, 1, s->cur.len ? s->cur.buf : "",
		(int)s->cur.len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(s->ins) != SQLITE_DONE) {
		if (!s->failed)
			log_err("spool %s: cannot append: %s; events go on "
				"without it",
			    s->path, sqlite3_errmsg(s->db));
		s->failed = 1;
		sqlite3_reset(s->ins);
		goto unspooled;
	}
	sqlite3_reset(s->ins);
	s->failed = 0;
	id = (uint64_t)sqlite3_last_insert_rowid(s->db);
	if (strbuf_add(&s->pend, &id, sizeof id) == -1 ||
	    strbuf_add(&s->pend, &len, sizeof len) == -1 ||
	    strbuf_add(&s->pend, s->cur.len ? s->cur.buf : "", len) == -1 ||
	    s->pend.failed)
		fatal("out of memory");
	if (s->npend++ == 0)
		event_active(s->flush_ev, EV_WRITE, 0);
	return;
unspooled:
	/* Keep the order: what waits goes first. */
	spool_flush_cb(-1, 0, s);
	hand_on(s, 0, NULL, s->cur.len ? s->cur.buf : "", len);
}

static void
spool_abort(void *arg)
{
	(void)arg; /* spool_begin() starts afresh */
}

/* Store what each output wrote; delete what every open output wrote. */
static void
spool_ack(struct spool *s)
{
	uint64_t lo = UINT64_MAX;
	int changed = 0, own;

	for (size_t i = 0; i < output_count(); i++) {
		uint64_t w;

		if (!output_is_open(s->out, i))
			continue;
		if ((w = output_written_id(s->out, i)) > s->pos[i]) {
			s->pos[i] = w;
			changed = 1;
		}
		if (s->pos[i] < lo)
			lo = s->pos[i];
	}
	if (!changed) {
		if (s->in_txn && s->npend == 0)
			commit(s); /* the uuids noted since */
		return;
	}
	own = !s->in_txn || s->npend == 0;
	if (begin(s) == -1)
		return;
	for (size_t i = 0; i < output_count(); i++) {
		if (!output_is_open(s->out, i))
			continue;
		sqlite3_reset(s->setpos);
		sqlite3_bind_text(s->setpos, 1, output_name(i), -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(s->setpos, 2, (sqlite3_int64)s->pos[i]);
		if (sqlite3_step(s->setpos) != SQLITE_DONE)
			log_err("spool %s: %s", s->path, sqlite3_errmsg(s->db));
		sqlite3_reset(s->setpos);
	}
	if (lo != UINT64_MAX && lo > 0) {
		sqlite3_reset(s->del);
		sqlite3_bind_int64(s->del, 1, (sqlite3_int64)lo);
		if (sqlite3_step(s->del) != SQLITE_DONE)
			log_err("spool %s: %s", s->path, sqlite3_errmsg(s->db));
		sqlite3_reset(s->del);
	}
	sqlite3_reset(s->unseen);
	sqlite3_bind_int64(s->unseen, 1, DEDUP_KEEP);
	if (sqlite3_step(s->unseen) != SQLITE_DONE)
		log_err("spool %s: %s", s->path, sqlite3_errmsg(s->db));
	sqlite3_reset(s->unseen);
	if (own)
		commit(s);
}

static void
spool_ack_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	spool_ack(arg);
}

/*
 * Open the spool of c and put it in front of the parser: *h, the
 * parser's websocket handler, becomes the spool's.  NULL (said why)
 * when no spool could be started: the daemon goes on without one.
 */
struct spool *
spool_open(struct event_base *base, const struct conf *c, struct output *out,
    struct ws_handler *h)
{
	struct spool *s = calloc(1, sizeof *s);
	struct timeval tv = tv_ms(ACK_INTERVAL_MS);

	if (s == NULL || (s->path = strdup(c->spool_path)) == NULL ||
	    (s->pos = calloc(output_count(), sizeof *s->pos)) == NULL)
		fatal("out of memory");
	s->out = out;
	if (db_open(s, c) == -1) {
		char aside[4300];
		const char *fields[] = { NULL, NULL }, *why;
		char field[4400];

		db_close(s);
		if (move_aside(s, aside, sizeof aside, &why) == -1) {
			record_daemon(MID_SPOOL_DAMAGED, 3, NULL,
			    "the spool %s is damaged or unreadable and cannot "
			    "be moved aside (%s): events go on without a spool",
			    s->path, why);
			goto none;
		}
		snprintf(field, sizeof field, "SPOOL_MOVED_TO=%s", aside);
		fields[0] = field;
		record_daemon(MID_SPOOL_DAMAGED, 3, fields,
		    "the spool %s was damaged or unreadable: moved to %s; "
		    "the events it held are lost, a new spool starts",
		    s->path, aside);
		if (db_open(s, c) == -1) {
			log_err("spool %s: cannot start a new spool: events "
				"go on without one",
			    s->path);
none:
			db_close(s);
			free(s->pos);
			free(s->path);
			free(s);
			return NULL;
		}
	}
	for (size_t i = 0; i < output_count(); i++) {
		sqlite3_reset(s->getpos);
		sqlite3_bind_text(
		    s->getpos, 1, output_name(i), -1, SQLITE_STATIC);
		if (sqlite3_step(s->getpos) == SQLITE_ROW)
			s->pos[i] = (uint64_t)sqlite3_column_int64(s->getpos, 0);
		sqlite3_reset(s->getpos);
	}
	if ((s->flush_ev = event_new(base, -1, 0, spool_flush_cb, s)) == NULL ||
	    (s->ack_ev = event_new(base, -1, EV_PERSIST, spool_ack_cb, s)) ==
		NULL ||
	    event_add(s->ack_ev, &tv) == -1)
		fatal("out of memory");
	s->inner = *h;
	*h = (struct ws_handler){ spool_begin, spool_data, spool_end,
		spool_abort, s };
	log_info("spool %s: open (Mode=always)", s->path);
	return s;
}

/* What the outputs have not written yet, in order, before new events. */
void
spool_replay(struct spool *s)
{
	uint64_t lo = UINT64_MAX, n = 0;
	sqlite3_stmt *st;

	for (size_t i = 0; i < output_count(); i++)
		if (output_is_open(s->out, i) && s->pos[i] < lo)
			lo = s->pos[i];
	if (lo == UINT64_MAX)
		return;
	/* What every output wrote, the server may send again. */
	if (sqlite3_prepare_v2(s->db,
		"SELECT uuid FROM seen WHERE id <= ? ORDER BY id", -1, &st,
		NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)lo);
		while (sqlite3_step(st) == SQLITE_ROW)
			output_seen(s->out,
			    (const char *)sqlite3_column_text(st, 0),
			    (size_t)sqlite3_column_bytes(st, 0));
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(s->db,
		"SELECT id, msg FROM events WHERE id > ? ORDER BY id", -1, &st,
		NULL) != SQLITE_OK) {
		log_err("spool %s: %s", s->path, sqlite3_errmsg(s->db));
		return;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)lo);
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
		const void *p = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);

		hand_on(s, id, s->pos, p ? p : "", len);
		n++;
	}
	sqlite3_finalize(st);
	if (n > 0)
		log_notice("spool %s: %" PRIu64 " spooled event%s replayed",
		    s->path, n, n == 1 ? "" : "s");
}

/* Commit what waits and hand it on; store the positions; close. */
void
spool_close(struct spool *s)
{
	if (s == NULL)
		return;
	spool_flush_cb(-1, 0, s);
	spool_ack(s);
	if (s->commits > 0)
		log_info("spool %s: %" PRIu64 " commits, %" PRIu64
			 " us on average, %" PRIu64 " us at most",
		    s->path, s->commits, s->commit_us / s->commits,
		    s->commit_max_us);
	event_free(s->flush_ev);
	event_free(s->ack_ev);
	db_close(s);
	free(strbuf_finish(&s->cur));
	free(strbuf_finish(&s->pend));
	free(s->pos);
	free(s->path);
	free(s);
}
