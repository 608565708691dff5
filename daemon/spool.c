/*
 * The spool ([Spool] Mode=overflow or always): one SQLite database in WAL
 * mode.  Table events holds received messages (Mode=always), as the raw
 * bytes the websocket delivered, in arrival order, and table positions,
 * per output, the last of them it has written.  Table spill holds records
 * (Mode=overflow), as the bytes one output writes, ordered per output by
 * seq.  Table seenlist keeps the uuids of the last 4096 events handed on
 * (output.c's duplicate ring), restored at start; with Mode=overflow,
 * table ring keeps that ring (its hashes) at a stop instead.
 *
 * Mode=always: the spool sits between the websocket and the JSON parser.
 * A message waits in memory, nothing else done with it, for the commit,
 * and only then goes to the parser and the outputs, so whatever reached
 * an output is on disk first.  The messages wait in a batch; the commits
 * are made by a thread of the spool's own, the committer (cm_*), with the
 * loop's connection, so that the loop parses and writes out one batch
 * while the committer writes the next (the SQLite calls, the WAL's writes
 * and their system calls are more than half of what an event costs).  At
 * the end of a loop turn the loop's batch goes to the committer, when it
 * is idle, once it holds BATCH_MAX (1024) messages, BATCH_BYTES (384
 * KiB) or 1/BATCH_SHARE of MaxBytes, or is BATCH_US (2 ms) old, or the
 * stream is paused (a commit
 * costs about as much for one message as for a thousand: the b-trees'
 * pages written again, the locks); otherwise it waits for the next turn's
 * messages.  While the committer works, the loop fills the next batch,
 * and a full one pauses reading until the committer is done.  The
 * committer's eventfd wakes the loop, which takes the outcome, hands the
 * batch it filled meanwhile to the committer and then the committed one
 * on.  kill -9 thus loses what waits for its commit, at most two batches,
 * and nothing any output has seen.  Three batches rotate (fill, job,
 * spare); the loop touches neither the connection nor the committer's
 * batch until spool_wait() saw it done, and every other use of the
 * database on the loop calls spool_wait() first.  Without the thread (it
 * could not be started), the loop commits itself, the same way.  Each
 * record carries its event's row id; the writer threads publish what
 * they wrote, and the positions (and the deletion of the rows every open
 * output wrote) go into the next transaction: the next batch's, or one
 * made as soon as a writer says it wrote spooled records.  A crash thus
 * writes again at most the records written since the last commit: one
 * write batch (256 records) per output, or what it wrote while a batch
 * waited.  The uuids handed on (table seenlist) go into the next commit
 * too.
 *
 * Mode=overflow: records stay in memory and cost the spool nothing while
 * the outputs keep up (output.c checks one flag per record).  When an
 * output's queue reaches QueueMax, or its output is reported down, its
 * next records go to table spill instead (output.c: spilling), in the loop
 * turn's transaction; when its queue is below half again, the rows are
 * loaded back into it in seq order, as much as QueueMax allows (at most
 * REFILL_MAX a loop turn), and once
 * the spool holds none for it, its records go to memory again, after
 * them: nothing is reordered per output.  At stop, the flush gets all but
 * SPILL_MS (1.3 s) of the 2 s, then every record still in a queue is
 * kept: the rows of that output already loaded are deleted and the whole
 * queue is inserted again, in order, below every seq in the table, so it
 * comes back first at the next start (100,000 records: 0.2 to 0.5 s; the
 * WAL is checkpointed at the next start, not within the 2 s).  With a disk
 * failure, at the bound (beyond the margin) or in Mode=always, records are
 * not kept at stop but counted as lost.
 *
 * Start-up: the events beyond each output's position are handed on again
 * in order, a batch per loop turn, and only while no queue is full
 * (output_paused()): a spool of a million rows does not go to memory at
 * once.  Messages arriving meanwhile are committed and handed on by the
 * replay, after the older ones.  Outputs with rows in spill start
 * spilling, so those come first.
 *
 * synchronous=NORMAL: in WAL mode a commit is a write() to the WAL file,
 * which the kernel keeps when the process is killed (kill -9, a crash);
 * only a power loss or a kernel crash may roll back the last commits
 * (https://sqlite.org/pragma.html#pragma_synchronous).
 *
 * Size: MaxBytes bounds the database and its WAL together.  The WAL gets
 * 1/WAL_SHARE of the bound (at most 16 MiB), and is truncated back to
 * that (journal_size_limit).  It is checkpointed (the copy into the
 * database, and the fsync of both that synchronous=NORMAL makes there) by
 * a thread of its own, with a connection of its own, from a quarter of
 * its share: the fsyncs (4 to 15 ms each on this machine's disk) no longer
 * stop the loop.  That checkpoint runs beside the loop's transactions
 * (PASSIVE), and a WAL starts over only when a transaction begins after
 * one that copied it all: at 3/4 of its share the loop makes one itself,
 * between two transactions, of what the thread has not copied yet.  A
 * spool under 8 MiB (a WAL under CK_THREAD_MIN) has no thread: the loop
 * checkpoints at half the share.  The rest of the bound is for the database, where
 * the pages in use are counted after each commit ((page_count -
 * freelist_count) * page_size, plus what was appended since), and
 * max_page_count stops it for good a margin later.  At the bound,
 * WhenFull=pause pauses the stream until the pages in use fall below 3/4
 * of it; drop-oldest deletes the oldest rows (down to 7/8 of it), counts
 * those no output has in memory, and says so in one MID_SPOOL_DROPPED
 * record once the spool is below 3/4 of the bound again or at stop
 * (while it stays full, one a minute).  A write that fails (disk full, an
 * I/O error) makes the spool unusable: one MID_SPOOL_FAILED record; what
 * the spill holds (reading still works then) and the records of the
 * failed transaction go back to memory, in order; events go on in memory,
 * as with Mode=no (a full queue pauses reading); every RETRY_MS a probe
 * transaction is tried, and when it commits one MID_SPOOL_BACK record
 * says the spool is used again, and full queues spill again.
 *
 * Mode changes across restarts: rows of the other mode's table are given
 * back too (events replayed, spill loaded), so nothing is lost; their
 * order relative to each other is not kept, and a replay of events under
 * Mode=overflow is not paced (full queues spill instead of pausing).
 *
 * A database that cannot be opened or checked (garbage, truncated, a WAL
 * without its database) is moved aside as PATH.bad-TIMESTAMP, a record
 * with MID_SPOOL_DAMAGED says so, and a new one is started; the daemon
 * never stops for its spool (without one it runs as with Mode=no).
 *
 * All of it but the checkpoints and Mode=always's commits runs on the
 * event loop.  Measured before the checkpoint thread and the batches (-v
 * prints at stop the commits, the longest spool callback, what the
 * threads did; tests/spool-full.sh and tests/spool.sh, 2 cores at a load
 * of 6 to 7): spilling a stuck output (Mode=overflow), a commit per loop
 * turn, 173 us on average, 57 ms at most (a WAL checkpoint with its
 * fsync), the same for callbacks; giving back 100,000 spilled records,
 * commits 5 ms on average, 64 ms at most, the longest callback 116 ms;
 * the paced replay of 50,000 events, commits 357 us on average, 19 ms at
 * most, callbacks 23 ms at most; keeping 100,000 records at stop, a
 * commit of 30 ms (the loop no longer runs then; the whole stop took 1.2
 * s).  All far below the ping interval and pong timeout (seconds).
 * Mode=always into stdout at full speed (make bench, 1,000,000 events of
 * 382 bytes), with the committer: 1163 commits (860 events each), 1.1
 * ms on average, 94 ms at most, on the committer's thread; the longest
 * spool callback on the loop 14 ms; the committer's CPU 2.1 us an event,
 * the checkpointer's 0.5; reading paused 671 times for the committer.
 */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "dcevents.h"

#define TIMER_MS 200 /* retry, pause, drop report checks */
#define BATCH_MAX 1024 /* Mode=always: events committed at once, at most */
#define BATCH_US 2000 /* and the longest the first of them waits */
#define BATCH_SHARE 64 /* and the bytes they hold, of MaxBytes, at most */
#define BATCH_BYTES (384 << 10) /* and at most this */
#define INS_ROWS 32 /* events one INSERT appends (and the rest one by one) */
#define RETRY_MS 2000 /* a failed spool is tried again */
#define DEDUP_KEEP 4096 /* uuids persisted: output.c's ring */
#define REPLAY_BATCH 512 /* events handed on per loop turn at start */
#define REFILL_BATCH 256
#define REFILL_MAX 2048 /* records loaded per loop turn */
#define PAGE_BIG (64 << 20) /* a MaxBytes that gets pages of 16 KiB */
#define ROW_OVERHEAD 32 /* bytes a row costs besides its payload, roughly */
#define CK_THREAD_MIN (1 << 20) /* a WAL share that gets a checkpointer */
#define WAL_SHARE 8 /* the WAL's share of MaxBytes: 1/8, at most 4 MiB */

/*
 * Mode=always: the messages one transaction appends, with the uuids and
 * positions that go with them (the loop fills one, the committer commits
 * the other), and what came of the transaction.
 */
struct batch {
	struct strbuf pend; /* (id, len, bytes)...: the messages */
	size_t npend;
	struct strbuf seenq; /* (id, len, uuid)...: handed on */
	size_t nseen;
	uint64_t seen_last; /* the newest id in seenq */
	size_t ninserted, insoff; /* of pend: rows appended, bytes past them */
	size_t ncommitted, comoff; /* rows committed, bytes past them */
	int changed; /* positions moved: pos[] and lo are stored */
	uint64_t *pos; /* per output: its position; UINT64_MAX: not open */
	int64_t *sdel; /* per output: spilled rows up to this seq go; 0 */
	uint64_t lo; /* events up to this row every open output wrote */
	/* the outcome (txn_run()) */
	int failed;
	const char *what;
	char why[128];
	uint64_t deleted; /* rows */
	int64_t used; /* bytes in use after the commit; -1: not known */
};

enum { JOB_IDLE, JOB_BUSY, JOB_DONE, JOB_ENDED };

struct spool {
	sqlite3 *db;
	char *path;
	struct output *out;
	struct ws_handler inner; /* the parser's handler */
	int overflow; /* Mode=overflow */
	uint64_t max_bytes;
	uint64_t page; /* the database's page size */
	int drop_oldest;
	uint64_t soft; /* bytes in use that make the spool full */
	sqlite3_stmt *ins, *insn, *setpos, *del, *getpos, *seen, *unseen;
	sqlite3_stmt *sins, *sget, *sdel, *pages, *freep, *dropev, *dropsp;
	struct strbuf cur; /* the message being received */
	struct batch batch[3];
	struct batch *fill; /* the loop's: committed next */
	struct batch *job; /* the committer's, or the last it committed */
	struct batch *spare; /* empty; NULL while one is handed on */
	int in_txn;
	int failed; /* a write failed: the spool is not used */
	uint64_t probation_at; /* a probe committed then; not yet said */
	uint64_t retry_at;
	struct event *flush_ev;
	struct event *timer_ev;
	struct event *replay_ev;
	int replaying;
	uint64_t replay_next; /* the replay hands on rows after this id */
	uint64_t *pos; /* per output: the last id it wrote */
	int64_t *wseq; /* per output: the last spilled seq it wrote */
	int64_t *loaded; /* per output: the last seq loaded into memory */
	struct record **phead, **ptail; /* per output: spilled, uncommitted */
	int64_t next_seq;
	int64_t keep_seq; /* at stop: the next seq below the others */
	int keep_failed;
	uint64_t used; /* bytes in use, estimated */
	uint64_t records; /* rows in events and spill */
	uint64_t dropped, dropped_unreported;
	uint64_t drop_reported_at;
	int paused; /* WhenFull=pause paused the stream */
	int cm_paused; /* so did a full batch, the committer busy */
	void (*pause)(void *);
	void (*resume)(void *);
	void *arg;
	uint64_t commits, commit_us, commit_max_us, stall_max_us;
	struct {
		pthread_t thread;
		pthread_mutex_t mu;
		pthread_cond_t cv;
		int started, want, busy, stop, loop; /* loop: the loop's own */
		sqlite3 *db; /* the thread's connection */
		uint64_t passes, cpu_us;
		uint64_t own, own_us; /* made by the committing thread */
		uint64_t copied; /* the WAL's frames its last pass had copied */
	} ck; /* the checkpointer */
	struct {
		pthread_t thread;
		pthread_mutex_t mu;
		pthread_cond_t cv;
		int started, stop;
		int state; /* JOB_*: of s->job */
		int fd; /* eventfd: a job is done */
		struct event *ev;
		uint64_t jobs, cpu_us;
		uint64_t pauses, paused_us, paused_at; /* reading waited */
	} cm; /* the committer */
	int wal_frames; /* in the WAL after the last commit */
	uint64_t ck_pages; /* the checkpointer starts at this many frames */
	uint64_t batch_us; /* when the first uncommitted event came */
	size_t npend_checked; /* npend when the flush last looked */
};

static void spool_flush_cb(evutil_socket_t, short, void *);
static void step_done(struct spool *, sqlite3_stmt *);
static int wal_hook(void *, sqlite3 *, const char *, int);
static int begin(struct spool *);
static void forget(struct spool *, uint64_t);
static void store_seen(struct spool *, struct batch *);
static void positions_take(struct spool *, struct batch *);
static void positions_write(struct spool *, struct batch *);
static void hand_on_batch(struct spool *, struct batch *);
static void maybe_resume(struct spool *);
static void spool_back(struct spool *);

/* Clock id's time in us. */
static uint64_t
clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t
now_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

/* The longest the spool kept the loop, since t0. */
static void
stall(struct spool *s, uint64_t t0)
{
	uint64_t us = now_us() - t0;

	if (us > s->stall_max_us)
		s->stall_max_us = us;
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
	sqlite3_stmt **all[] = { &s->ins, &s->insn, &s->setpos, &s->del, &s->getpos,
		&s->seen, &s->unseen, &s->sins, &s->sget, &s->sdel, &s->pages,
		&s->freep, &s->dropev, &s->dropsp };

	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		sqlite3_finalize(*all[i]);
		*all[i] = NULL;
	}
	if (s->db != NULL)
		sqlite3_close_v2(s->db);
	s->db = NULL;
}

/* One number from sql (a pragma, a count); -1 when it fails. */
static int64_t
db_number(struct spool *s, sqlite3_stmt *st, const char *sql)
{
	int64_t v = -1;
	int own = st == NULL;

	if (own && sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	if (own)
		sqlite3_finalize(st);
	else
		sqlite3_reset(st);
	return v;
}

/* The bounds of MaxBytes: the WAL's, the database's, the soft one. */
static int
db_limits(struct spool *s)
{
	uint64_t wal = s->max_bytes / WAL_SHARE, pages;
	char sql[160];

	if (wal > 16 << 20)
		wal = 16 << 20;
	if (wal < 4 * s->page)
		wal = 4 * s->page;
	pages = (s->max_bytes > wal + 16 * s->page ? s->max_bytes - wal
						   : 16 * s->page) /
	    s->page;
	s->soft = (pages - pages / 16 - 2) * s->page;
	s->ck_pages = wal / s->page / 4;
	snprintf(sql, sizeof sql,
	    "PRAGMA max_page_count=%" PRIu64 "; PRAGMA wal_autocheckpoint=0"
	    "; PRAGMA journal_size_limit=%" PRIu64,
	    pages, wal);
	if (exec(s, sql) == -1)
		return -1;
	/* the pragma took the hook: ours again */
	sqlite3_wal_hook(s->db, wal_hook, s);
	return 0;
}

/* The WAL's frames after each commit (for the checkpoints). */
static int
wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	(void)db;
	(void)name;
	((struct spool *)arg)->wal_frames = frames;
	return SQLITE_OK;
}

/* The bytes the database's pages in use take; -1: not known. */
static int64_t
db_pages_used(struct spool *s)
{
	int64_t pages = db_number(s, s->pages, NULL);
	int64_t freep = db_number(s, s->freep, NULL);

	return pages >= 0 && freep >= 0 && pages >= freep
	    ? (pages - freep) * (int64_t)s->page
	    : -1;
}

static void
db_used(struct spool *s)
{
	int64_t used = db_pages_used(s);

	if (used >= 0)
		s->used = (uint64_t)used;
}

static int
prepare(struct spool *s, sqlite3_stmt **st, const char *sql)
{
	return sqlite3_prepare_v3(
	    s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

/* Open and check the database; -1 (said why) when it is unusable. */
static int
db_open(struct spool *s)
{
	char wal[4200];
	sqlite3_stmt *st;
	struct stat sb;
	int64_t n;
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
	/*
	 * A new spool's pages: 16 KiB from a MaxBytes of PAGE_BIG, a
	 * quarter the WAL writes of 4 KiB pages (each a system call, on
	 * this kind of machine a costly one: Mode=always's committer used
	 * 2.5 us of CPU an event with 4 KiB pages, 1.9 with 16), and 4 KiB
	 * below it, where the schema's tables and index, a page each, would
	 * take much of the bound.  The page size of a spool is fixed when
	 * it is made.
	 */
	if (exec(s, s->max_bytes >= PAGE_BIG ? "PRAGMA page_size=16384"
					     : "PRAGMA page_size=4096") == -1 ||
	    exec(s, "PRAGMA journal_mode=WAL") == -1 ||
	    exec(s, "PRAGMA synchronous=NORMAL") == -1)
		return -1;
	n = db_number(s, NULL, "PRAGMA page_size");
	s->page = n >= 512 ? (uint64_t)n : 4096;
	/*
	 * The page cache: 2 MiB, SQLite's default, holds what the appends,
	 * deletions and reads touch (the ends of the b-trees), up to the
	 * three batches Mode=always has on the way (the one filling, the
	 * one committed, the one written out); with 512 KiB, the rows
	 * deleted were read back from the disk (a committer's CPU time 2.2
	 * us an event against 1.9).
	 */
	if (exec(s, "PRAGMA cache_size=-2048") == -1)
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
	if (!ok || db_limits(s) == -1 ||
	    exec(s,
		"CREATE TABLE IF NOT EXISTS events("
		"id INTEGER PRIMARY KEY AUTOINCREMENT, msg BLOB NOT NULL);"
		"CREATE TABLE IF NOT EXISTS positions("
		"output TEXT PRIMARY KEY, id INTEGER NOT NULL);"
		"CREATE TABLE IF NOT EXISTS seen("
		"id INTEGER PRIMARY KEY, uuid TEXT NOT NULL);"
		"CREATE TABLE IF NOT EXISTS seenlist("
		"last INTEGER NOT NULL, uuids TEXT NOT NULL);"
		"CREATE TABLE IF NOT EXISTS ring("
		"pos INTEGER PRIMARY KEY, hash INTEGER NOT NULL);"
		"CREATE TABLE IF NOT EXISTS spill("
		"seq INTEGER PRIMARY KEY, output TEXT NOT NULL, "
		"rec BLOB NOT NULL);"
		"CREATE INDEX IF NOT EXISTS spill_output ON spill(output, seq)") ==
		-1)
		return -1;
	{
		char sql[40 + 4 * INS_ROWS] = "INSERT INTO events(msg) VALUES(?)";

		for (int i = 1; i < INS_ROWS; i++)
			strcat(sql, ",(?)");
		if (prepare(s, &s->insn, sql)) {
			log_err("spool %s: %s", s->path, sqlite3_errmsg(s->db));
			return -1;
		}
	}
	if (prepare(s, &s->ins, "INSERT INTO events(msg) VALUES(?)") ||
	    prepare(s, &s->setpos,
		"INSERT INTO positions(output, id) VALUES(?, ?) "
		"ON CONFLICT(output) DO UPDATE SET id = excluded.id") ||
	    prepare(s, &s->del, "DELETE FROM events WHERE id <= ?") ||
	    prepare(s, &s->getpos, "SELECT id FROM positions WHERE output = ?") ||
	    prepare(s, &s->seen,
		"INSERT INTO seenlist(last, uuids) VALUES(?, ?)") ||
	    prepare(s, &s->unseen,
		"DELETE FROM seenlist WHERE last <= "
		"(SELECT max(last) FROM seenlist) - ?") ||
	    prepare(s, &s->sins,
		"INSERT INTO spill(seq, output, rec) VALUES(?, ?, ?)") ||
	    prepare(s, &s->sget,
		"SELECT seq, rec FROM spill WHERE output = ? AND seq > ? "
		"ORDER BY seq LIMIT ?") ||
	    prepare(s, &s->sdel,
		"DELETE FROM spill WHERE output = ? AND seq <= ?") ||
	    prepare(s, &s->pages, "PRAGMA page_count") ||
	    prepare(s, &s->freep, "PRAGMA freelist_count") ||
	    prepare(s, &s->dropev,
		"DELETE FROM events WHERE id IN "
		"(SELECT id FROM events ORDER BY id LIMIT ?) RETURNING id") ||
	    prepare(s, &s->dropsp,
		"DELETE FROM spill WHERE seq IN "
		"(SELECT seq FROM spill ORDER BY seq LIMIT ?) "
		"RETURNING output, seq")) {
		log_err("spool %s: %s", s->path, sqlite3_errmsg(s->db));
		return -1;
	}
	n = db_number(s, NULL, "SELECT max(seq) FROM spill");
	s->next_seq = n >= 1 ? n + 1 : 1;
	n = db_number(s, NULL,
	    "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM spill)");
	s->records = n > 0 ? (uint64_t)n : 0;
	db_used(s);
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

/*
 * The checkpointer: a thread with a connection of its own copies the WAL
 * into the database (PASSIVE: it waits neither for the loop nor the loop
 * for it) once the WAL holds ck_pages frames, so that the fsyncs of the
 * WAL and the database (synchronous=NORMAL) are not made on the loop.
 */
static void *
ck_main(void *arg)
{
	struct spool *s = arg;
	int frames, copied;

	pthread_mutex_lock(&s->ck.mu);
	for (;;) {
		while (!s->ck.stop && (!s->ck.want || s->ck.loop))
			pthread_cond_wait(&s->ck.cv, &s->ck.mu);
		if (s->ck.stop)
			break;
		s->ck.want = 0;
		s->ck.busy = 1;
		pthread_mutex_unlock(&s->ck.mu);
		sqlite3_wal_checkpoint_v2(s->ck.db, NULL,
		    SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
		pthread_mutex_lock(&s->ck.mu);
		s->ck.copied = copied > 0 ? (uint64_t)copied : 0;
		s->ck.busy = 0;
		s->ck.passes++;
	}
	pthread_mutex_unlock(&s->ck.mu);
	s->ck.cpu_us = clock_us(CLOCK_THREAD_CPUTIME_ID);
	return NULL;
}

/*
 * Start the checkpointer; without it (and for a WAL of less than
 * CK_THREAD_MIN, a spool of a few MiB), the loop checkpoints itself at
 * half the WAL's share, as SQLite's autocheckpoint would.
 */
static void
ck_start(struct spool *s)
{
	if (s->ck_pages * s->page * 4 < CK_THREAD_MIN)
		return;
	if (sqlite3_open_v2(s->path, &s->ck.db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->ck.db, "PRAGMA synchronous=NORMAL", NULL, NULL,
		NULL) != SQLITE_OK ||
	    pthread_create(&s->ck.thread, NULL, ck_main, s) != 0) {
		log_warn("spool %s: no checkpoint thread (%s): the loop "
			 "checkpoints",
		    s->path, s->ck.db ? sqlite3_errmsg(s->ck.db) : "no memory");
		sqlite3_close_v2(s->ck.db);
		s->ck.db = NULL;
		return;
	}
	s->ck.started = 1;
}

static void
ck_stop(struct spool *s)
{
	if (s->ck.started) {
		pthread_mutex_lock(&s->ck.mu);
		s->ck.stop = 1;
		if (s->ck.busy)
			sqlite3_interrupt(s->ck.db); /* not within the 2 s */
		pthread_cond_signal(&s->ck.cv);
		pthread_mutex_unlock(&s->ck.mu);
		pthread_join(s->ck.thread, NULL);
		s->ck.started = 0;
	}
	sqlite3_close_v2(s->ck.db);
	s->ck.db = NULL;
}

/*
 * After a commit: past ck_pages frames the checkpointer copies them, and
 * again each time ck_pages more came since its last pass (a pass after
 * each commit made two fsyncs a commit: the disk's queue, and the writes
 * waiting for it, grew).  A WAL starts over only when a write begins
 * after a checkpoint that copied all of it, which one running beside a
 * busy writer rarely does: at three times ck_pages, the committing thread
 * makes one itself (what is left since the last pass, and the two
 * fsyncs), between its transactions.
 */
static void
ck_after_commit(struct spool *s)
{
	uint64_t frames = s->wal_frames > 0 ? (uint64_t)s->wal_frames : 0, t0;

	if (frames < s->ck_pages || (!s->ck.started && frames < 2 * s->ck_pages))
		return;
	if (s->ck.started) {
		pthread_mutex_lock(&s->ck.mu);
		if (s->ck.busy || frames < 3 * s->ck_pages) {
			/* copied more than the WAL holds: it started over */
			uint64_t copied = s->ck.copied <= frames ? s->ck.copied : 0;

			if (frames >= copied + s->ck_pages) {
				s->ck.want = 1;
				pthread_cond_signal(&s->ck.cv);
			}
			pthread_mutex_unlock(&s->ck.mu);
			return;
		}
		s->ck.loop = 1;
		pthread_mutex_unlock(&s->ck.mu);
	}
	t0 = now_us();
	sqlite3_wal_checkpoint_v2(
	    s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	s->ck.own++;
	s->ck.own_us += now_us() - t0;
	s->wal_frames = 0;
	if (s->ck.started) {
		pthread_mutex_lock(&s->ck.mu);
		s->ck.loop = 0;
		pthread_mutex_unlock(&s->ck.mu);
	}
}

static int spill_refill(void *, size_t, int);

/*
 * A write failed (why: SQLite's words; NULL: the connection's): the
 * transaction is rolled back and the spool is not used until a retry
 * commits.  What the spill held goes to memory, then the records of the
 * failed transaction, in order.
 */
static void
spool_fail(struct spool *s, const char *what, const char *why)
{
	const char *fields[] = { NULL, NULL };
	char field[160], msg[128];

	snprintf(msg, sizeof msg, "%s", why ? why : sqlite3_errmsg(s->db));
	if (s->in_txn) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		s->in_txn = 0;
	}
	s->retry_at = clock_ms() + RETRY_MS;
	/* failing again after a probe, it was never said to be back */
	if (!s->failed && s->probation_at == 0) {
		snprintf(field, sizeof field, "SPOOL_ERROR=%s", msg);
		fields[0] = field;
		record_daemon(MID_SPOOL_FAILED, 3, fields,
		    "the spool %s cannot be written (%s: %s): records go on "
		    "in memory; retried every %d s",
		    s->path, what, msg, RETRY_MS / 1000);
	}
	s->failed = 1;
	s->probation_at = 0;
	for (size_t i = 0; i < output_count(); i++) {
		struct record *r = s->phead[i], *next;

		if (!output_is_open(s->out, i))
			continue;
		spill_refill(s, i, 1);
		s->phead[i] = s->ptail[i] = NULL;
		for (; r != NULL; r = next) {
			next = r->next;
			r->next = NULL;
			output_load(s->out, i, r);
		}
	}
	output_unspill(s->out);
	db_used(s);
}

/*
 * One entry of b's messages at *off: where its id is (0: not appended;
 * unaligned) and its message.
 */
static const char *
pend_entry(struct batch *b, size_t *off, char **id, size_t *len)
{
	char *p = b->pend.buf + *off;

	*id = p;
	memcpy(len, p + sizeof(uint64_t), sizeof *len);
	*off += sizeof(uint64_t) + sizeof *len + *len;
	return p + sizeof(uint64_t) + sizeof *len;
}

/*
 * Mode=always: b's messages not yet in the transaction go in, up to
 * INS_ROWS an INSERT (a statement, and its update of sqlite_sequence,
 * for 32 rows rather than one each); their row ids follow each other.
 * -1 when a write failed.
 */
static int
append_pending(struct spool *s, struct batch *b)
{
	while (b->ninserted < b->npend) {
		size_t n = b->npend - b->ninserted >= INS_ROWS ? INS_ROWS : 1;
		sqlite3_stmt *st = n > 1 ? s->insn : s->ins;
		size_t off = b->insoff, len;
		uint64_t last;
		char *id;

		for (size_t k = 0; k < n; k++) {
			const char *m = pend_entry(b, &off, &id, &len);

			sqlite3_bind_blob(st, (int)k + 1, len ? m : "", (int)len,
			    SQLITE_STATIC);
		}
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			return -1;
		}
		sqlite3_reset(st);
		last = (uint64_t)sqlite3_last_insert_rowid(s->db);
		off = b->insoff;
		for (size_t k = 0; k < n; k++) {
			uint64_t v = last - n + 1 + k;

			pend_entry(b, &off, &id, &len);
			memcpy(id, &v, sizeof v);
		}
		b->insoff = off;
		b->ninserted += n;
	}
	return 0;
}

/*
 * Emptied, b keeps its buffer for the next batch, unless a batch of a
 * few large messages made it more than twice what a batch holds: its
 * memory goes back (the resident size stays that of the usual batch).
 */
static void
batch_reset(struct batch *b)
{
	b->npend = b->ninserted = b->insoff = b->ncommitted = b->comoff = 0;
	if (b->pend.cap > 2 * BATCH_BYTES)
		free(strbuf_finish(&b->pend));
	strbuf_reset(&b->pend);
}

/*
 * None of b's messages past those committed is in the spool (rolled
 * back, or never in): they go on unspooled (id 0).  Those committed (a
 * commit of the loop's before the batch was handed on: a reload, the
 * replay) keep their ids.
 */
static void
unspooled(struct spool *s, struct batch *b)
{
	forget(s, b->npend - b->ncommitted);
	for (size_t off = b->comoff, len; off < b->pend.len;) {
		char *id;
		uint64_t zero = 0;

		pend_entry(b, &off, &id, &len);
		memcpy(id, &zero, sizeof zero);
	}
	b->ninserted = b->ncommitted = b->npend;
	b->insoff = b->comoff = b->pend.len;
}

/*
 * Batch b's transaction: the positions, the uuids handed on, the
 * messages, the commit; then a checkpoint when one is due, and the bytes
 * in use.  It touches the connection, its statements and b only: the
 * committer runs it while the loop goes on (and touches none of them
 * meanwhile), the loop when it commits itself.  A failure is rolled back
 * and said in b.
 */
static void
txn_run(struct spool *s, struct batch *b)
{
	uint64_t t0, us;

	b->used = -1;
	if (!s->in_txn && !b->changed && b->nseen == 0 &&
	    b->ninserted == b->npend)
		return;
	b->what = "begin";
	if (!s->in_txn) {
		if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
			goto failed;
		s->in_txn = 1;
	}
	positions_write(s, b);
	store_seen(s, b);
	b->what = "append";
	if (append_pending(s, b) == -1)
		goto failed;
	b->what = "commit";
	t0 = now_us();
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto failed;
	s->in_txn = 0;
	b->ncommitted = b->ninserted;
	b->comoff = b->insoff;
	us = now_us() - t0;
	s->commits++;
	s->commit_us += us;
	if (us > s->commit_max_us)
		s->commit_max_us = us;
	ck_after_commit(s);
	b->used = db_pages_used(s);
	if (b->used < 0)
		b->used = 0;
	return;
failed:
	snprintf(b->why, sizeof b->why, "%s", sqlite3_errmsg(s->db));
	b->failed = 1;
	if (s->in_txn)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_txn = 0;
}

/*
 * The loop's side of b's transaction, once it is over: the rows deleted,
 * the bytes in use, a failure said (b's messages go on unspooled, the
 * spilled records back to memory); the spilled records committed freed.
 */
static void
txn_end(struct spool *s, struct batch *b)
{
	if (b->failed) {
		unspooled(s, b);
		spool_fail(s, b->what, b->why);
	} else if (b->used >= 0) {
		forget(s, b->deleted);
		/* and what waits for the next commit */
		s->used = (uint64_t)b->used +
		    (b == s->fill ? 0
				  : s->fill->pend.len +
			    s->fill->npend * ROW_OVERHEAD);
		if (s->probation_at != 0)
			spool_back(s);
		for (size_t i = 0; i < output_count(); i++) {
			struct record *r = s->phead[i], *next;

			s->phead[i] = s->ptail[i] = NULL;
			for (; r != NULL; r = next) {
				next = r->next;
				free(r);
			}
		}
	}
	b->failed = 0;
	b->deleted = 0;
	b->used = -1;
	b->changed = 0;
	memset(b->sdel, 0, output_count() * sizeof *b->sdel);
	b->nseen = 0;
	b->seen_last = 0;
	strbuf_reset(&b->seenq);
}

/* Holds the loop's batch as much as one batch may (messages, bytes)? */
static int
batch_big(struct spool *s)
{
	struct batch *b = s->fill;
	size_t bytes = s->max_bytes / BATCH_SHARE < BATCH_BYTES
	    ? s->max_bytes / BATCH_SHARE
	    : BATCH_BYTES;

	return b->npend >= BATCH_MAX || b->pend.len >= bytes;
}

/*
 * Is the loop's batch to be committed now rather than with the next loop
 * turn's messages?  At BATCH_MAX messages, BATCH_BYTES or 1/BATCH_SHARE
 * of MaxBytes, BATCH_US after its first message, or the stream paused.
 */
static int
batch_full(struct spool *s, uint64_t now)
{
	return batch_big(s) || now - s->batch_us >= BATCH_US || s->paused;
}

/*
 * The committer: a thread that runs Mode=always's transactions (txn_run())
 * so that the loop parses and hands on one batch while the next is
 * written (the SQLite calls and the WAL's writes, more than half the cost
 * of an event, on the other core).  The loop hands it s->job (JOB_BUSY)
 * and touches neither the connection nor that batch until spool_wait()
 * saw it done; an eventfd tells the loop (cm_done_cb()).
 */
static void *
cm_main(void *arg)
{
	struct spool *s = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&s->cm.mu);
	for (;;) {
		while (!s->cm.stop && s->cm.state != JOB_BUSY)
			pthread_cond_wait(&s->cm.cv, &s->cm.mu);
		if (s->cm.stop)
			break;
		pthread_mutex_unlock(&s->cm.mu);
		txn_run(s, s->job);
		pthread_mutex_lock(&s->cm.mu);
		s->cm.state = JOB_DONE;
		pthread_cond_broadcast(&s->cm.cv);
		if (write(s->cm.fd, &one, sizeof one) == -1)
			continue; /* only when it holds 2^64 - 2 already */
	}
	pthread_mutex_unlock(&s->cm.mu);
	s->cm.cpu_us = clock_us(CLOCK_THREAD_CPUTIME_ID);
	return NULL;
}

/* Is the committer at work? */
static int
cm_busy(struct spool *s)
{
	int busy;

	if (!s->cm.started)
		return 0;
	pthread_mutex_lock(&s->cm.mu);
	busy = s->cm.state == JOB_BUSY;
	pthread_mutex_unlock(&s->cm.mu);
	return busy;
}

/*
 * The loop's turn at the connection: the committer's job over, its
 * outcome taken (its messages are handed on by job_finish()).  Whatever
 * on the loop reads or writes the database calls it first.
 */
static void
spool_wait(struct spool *s)
{
	int done;

	if (!s->cm.started)
		return;
	pthread_mutex_lock(&s->cm.mu);
	while (s->cm.state == JOB_BUSY)
		pthread_cond_wait(&s->cm.cv, &s->cm.mu);
	done = s->cm.state == JOB_DONE;
	if (done)
		s->cm.state = JOB_ENDED;
	pthread_mutex_unlock(&s->cm.mu);
	if (done)
		txn_end(s, s->job);
}

/*
 * The loop's batch goes to the committer, if it may and has something to
 * commit; the loop fills the empty one the committer left.  1 if it went.
 */
static int
cm_next(struct spool *s)
{
	struct batch *b = s->fill;

	if (!s->cm.started || s->cm.state != JOB_IDLE || s->failed ||
	    s->replaying)
		return 0;
	positions_take(s, b);
	if (b->npend == 0 && !b->changed && b->nseen == 0 && !s->in_txn)
		return 0;
	s->fill = s->job; /* JOB_IDLE: empty */
	s->job = b;
	pthread_mutex_lock(&s->cm.mu);
	s->cm.state = JOB_BUSY;
	s->cm.jobs++;
	pthread_cond_broadcast(&s->cm.cv);
	pthread_mutex_unlock(&s->cm.mu);
	return 1;
}

/*
 * The committer's batch handed on, in order, before anything after it;
 * with next, the loop's batch goes to the committer first, so that one
 * is written while the other is parsed and written out.
 */
static void
job_finish(struct spool *s, int next)
{
	struct batch *b = s->job;

	spool_wait(s);
	if (s->cm.state != JOB_ENDED || s->spare == NULL)
		return; /* nothing done, or b is being handed on */
	/* the committer reads it whenever it wakes */
	pthread_mutex_lock(&s->cm.mu);
	s->cm.state = JOB_IDLE;
	pthread_mutex_unlock(&s->cm.mu);
	s->job = s->spare;
	s->spare = NULL;
	if (next)
		cm_next(s);
	hand_on_batch(s, b);
	s->spare = b;
}

/* Reading paused for the committer resumes. */
static void
cm_resume(struct spool *s)
{
	if (s->cm_paused) {
		s->cm.paused_us += now_us() - s->cm.paused_at;
		s->cm_paused = 0;
		s->resume(s->arg);
	}
}

static void
cm_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spool *s = arg;
	uint64_t t0 = now_us(), n;

	(void)what;
	if (read(fd, &n, sizeof n) == -1 && errno != EAGAIN)
		log_warn("spool %s: eventfd: %s", s->path, strerror(errno));
	/* the word of a job the flush took: the one at work says its own */
	if (cm_busy(s))
		return;
	job_finish(s, batch_full(s, t0));
	cm_resume(s);
	maybe_resume(s);
	/* the flush commits what is left (positions) */
	event_active(s->flush_ev, EV_WRITE, 0);
	stall(s, t0);
}

/* Mode=always: the committer, when a thread can be had. */
static void
cm_start(struct spool *s, struct event_base *base)
{
	if (s->overflow)
		return;
	if ((s->cm.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (s->cm.ev = event_new(base, s->cm.fd, EV_READ | EV_PERSIST,
		 cm_done_cb, s)) == NULL ||
	    event_add(s->cm.ev, NULL) == -1 ||
	    pthread_create(&s->cm.thread, NULL, cm_main, s) != 0) {
		log_warn("spool %s: no commit thread (%s): the loop commits",
		    s->path, strerror(errno));
		return;
	}
	s->cm.started = 1;
}

static void
cm_stop(struct spool *s)
{
	if (s->cm.started) {
		spool_wait(s);
		pthread_mutex_lock(&s->cm.mu);
		s->cm.stop = 1;
		pthread_cond_broadcast(&s->cm.cv);
		pthread_mutex_unlock(&s->cm.mu);
		pthread_join(s->cm.thread, NULL);
		s->cm.started = 0;
	}
	if (s->cm.ev != NULL)
		event_free(s->cm.ev);
	s->cm.ev = NULL;
	if (s->cm.fd != -1)
		close(s->cm.fd);
	s->cm.fd = -1;
}

/*
 * The loop commits itself (the committer idle): the loop's batch, not
 * handed on (the caller does it, or the replay).
 */
static void
commit(struct spool *s)
{
	struct batch *b = s->fill;

	spool_wait(s);
	if (s->failed)
		unspooled(s, b);
	else
		txn_run(s, b);
	txn_end(s, b);
}

/* A transaction of the loop's own (the committer idle); -1: none. */
static int
begin(struct spool *s)
{
	spool_wait(s);
	if (s->failed)
		return -1;
	if (s->in_txn)
		return 0;
	if (exec(s, "BEGIN") == -1)
		return -1;
	s->in_txn = 1;
	s->batch_us = now_us();
	event_active(s->flush_ev, EV_WRITE, 0);
	return 0;
}
/*
 * The duplicate ring, persisted: the uuids of the events handed on go,
 * with their row ids, into the next transaction, one row of table
 * seenlist for all of them, a JSON array of [id, "uuid"] (one INSERT
 * rather than one each: written and deleted, a row per event cost the
 * committer about a tenth of its time).  Rows whose ids are all
 * DEDUP_KEEP below the newest are deleted.  At start, the uuids every
 * output has written go back into output.c's ring (spool_replay()).
 */
static void
note_seen(struct spool *s, uint64_t id)
{
	struct batch *b = s->fill;
	char num[24], *p = num + sizeof num;
	const char *u;
	size_t n = output_take_uuid(s->out, &u);

	if (n == 0 || id == 0 || s->failed)
		return;
	/* [[id,"uuid"],...]: the closing bracket replaced by the next */
	if (b->nseen == 0)
		strbuf_add(&b->seenq, "[[", 2);
	else
		b->seenq.buf[b->seenq.len - 1] = ',', strbuf_add(&b->seenq, "[", 1);
	for (uint64_t v = id; p == num + sizeof num || v > 0; v /= 10)
		*--p = (char)('0' + v % 10);
	strbuf_add(&b->seenq, p, (size_t)(num + sizeof num - p));
	strbuf_add(&b->seenq, ",", 1);
	strbuf_add_json_string(&b->seenq, u, n);
	if (strbuf_add(&b->seenq, "]]", 2) == -1 || b->seenq.failed)
		fatal("out of memory");
	b->nseen++;
	if (id > b->seen_last)
		b->seen_last = id;
}

/* The uuids b noted go into its transaction (txn_run()). */
static void
store_seen(struct spool *s, struct batch *b)
{
	if (b->nseen == 0)
		return;
	sqlite3_bind_int64(s->seen, 1, (sqlite3_int64)b->seen_last);
	sqlite3_bind_text(s->seen, 2, b->seenq.buf, (int)b->seenq.len,
	    SQLITE_STATIC);
	step_done(s, s->seen);
}

/*
 * Mode=overflow: the duplicate ring (output.c's hashes of the last uuids
 * handed on, oldest first) is kept at a stop, in table ring, and put back
 * at the next start, so that an event written before the restart, or
 * kept and replayed, and sent again by the server is not written again.
 * A crash keeps none (what was in memory is lost with it).
 */
struct ring_put {
	struct spool *s;
	sqlite3_stmt *st;
	int64_t pos;
};

static void
ring_put(void *arg, uint64_t h)
{
	struct ring_put *rp = arg;

	sqlite3_bind_int64(rp->st, 1, rp->pos++);
	sqlite3_bind_int64(rp->st, 2, (sqlite3_int64)h);
	step_done(rp->s, rp->st);
}

static void
ring_store(struct spool *s)
{
	struct ring_put rp = { s, NULL, 0 };

	if (!s->overflow || s->failed || begin(s) == -1 ||
	    exec(s, "DELETE FROM ring") == -1)
		return;
	if (sqlite3_prepare_v2(s->db,
		"INSERT INTO ring(pos, hash) VALUES(?, ?)", -1, &rp.st,
		NULL) != SQLITE_OK) {
		spool_fail(s, "keep the duplicate ring", NULL);
		return;
	}
	output_ring_each(s->out, ring_put, &rp);
	sqlite3_finalize(rp.st);
}

static void
ring_load(struct spool *s)
{
	sqlite3_stmt *st;

	if (!s->overflow || sqlite3_prepare_v2(s->db,
		"SELECT hash FROM ring ORDER BY pos", -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW)
		output_ring_restore(
		    s->out, (uint64_t)sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
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

/* b's messages, committed (or unspooled), go on in order. */
static void
hand_on_batch(struct spool *s, struct batch *b)
{
	size_t off = 0;

	for (size_t i = 0; i < b->npend; i++) {
		const char *m;
		uint64_t id;
		size_t len;
		char *p;

		m = pend_entry(b, &off, &p, &len);
		memcpy(&id, p, sizeof id);
		hand_on(s, id, NULL, m, len);
	}
	batch_reset(b);
}

/* n rows were deleted. */
static void
forget(struct spool *s, uint64_t n)
{
	s->records = n > s->records ? 0 : s->records - n;
}

static void
step_done(struct spool *s, sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		log_err("spool %s: %s", s->path, sqlite3_errmsg(s->db));
	sqlite3_reset(st);
}

/*
 * What each output wrote, taken into b: the events every open output
 * wrote and the spilled records written are deleted in b's transaction.
 */
static void
positions_take(struct spool *s, struct batch *b)
{
	uint64_t lo = UINT64_MAX;

	for (size_t i = 0; i < output_count(); i++) {
		uint64_t w;
		int64_t seq;

		b->pos[i] = UINT64_MAX;
		if (!output_is_open(s->out, i))
			continue;
		w = output_written_id(s->out, i, &seq);
		if (w > s->pos[i]) {
			s->pos[i] = w;
			b->changed = 1;
		}
		b->pos[i] = s->pos[i];
		if (s->pos[i] < lo)
			lo = s->pos[i];
		if (seq != 0 && seq != s->wseq[i]) {
			s->wseq[i] = seq;
			b->sdel[i] = seq;
			b->changed = 1;
		}
	}
	b->lo = lo;
}

/* b's positions into its transaction (txn_run()). */
static void
positions_write(struct spool *s, struct batch *b)
{
	if (!b->changed)
		return;
	for (size_t i = 0; i < output_count(); i++) {
		if (b->sdel[i] != 0) {
			sqlite3_bind_text(s->sdel, 1, output_name(i), -1,
			    SQLITE_STATIC);
			sqlite3_bind_int64(s->sdel, 2, b->sdel[i]);
			step_done(s, s->sdel);
			b->deleted += (uint64_t)sqlite3_changes(s->db);
		}
		if (b->pos[i] == UINT64_MAX)
			continue;
		sqlite3_bind_text(s->setpos, 1, output_name(i), -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(s->setpos, 2, (sqlite3_int64)b->pos[i]);
		step_done(s, s->setpos);
	}
	if (b->lo != UINT64_MAX && b->lo > 0) {
		sqlite3_bind_int64(s->del, 1, (sqlite3_int64)b->lo);
		step_done(s, s->del);
		b->deleted += (uint64_t)sqlite3_changes(s->db);
	}
	sqlite3_bind_int64(s->unseen, 1, DEDUP_KEEP);
	step_done(s, s->unseen);
}

/* Say how many rows drop-oldest deleted that no output had in memory. */
static void
report_dropped(struct spool *s)
{
	const char *fields[] = { NULL, NULL };
	char field[64];

	if (s->dropped_unreported == 0)
		return;
	snprintf(field, sizeof field, "SPOOL_DROPPED=%" PRIu64,
	    s->dropped_unreported);
	fields[0] = field;
	record_daemon(MID_SPOOL_DROPPED, 3, fields,
	    "the spool %s reached MaxBytes=%" PRIu64 ": the %" PRIu64
	    " oldest records were dropped (WhenFull=drop-oldest)",
	    s->path, s->max_bytes, s->dropped_unreported);
	s->dropped_unreported = 0;
	s->drop_reported_at = clock_ms();
}

/* Delete the oldest rows until the spool is below its bound. */
static void
drop_oldest(struct spool *s)
{
	sqlite3_stmt *st = s->overflow ? s->dropsp : s->dropev;

	if (begin(s) == -1)
		return;
	while (s->used > s->soft - s->soft / 8 && s->records > 0) {
		uint64_t freed = 0;

		sqlite3_bind_int64(st, 1, 8);
		while (sqlite3_step(st) == SQLITE_ROW) {
			freed++;
			if (!s->overflow) {
				/* handed on (in memory) unless replaying */
				if (s->replaying &&
				    (uint64_t)sqlite3_column_int64(st, 0) >
					s->replay_next)
					s->dropped++, s->dropped_unreported++;
				continue;
			}
			for (size_t i = 0; i < output_count(); i++)
				if (strcmp((const char *)sqlite3_column_text(
					       st, 0),
					output_name(i)) == 0 &&
				    sqlite3_column_int64(st, 1) > s->loaded[i]) {
					s->dropped++;
					s->dropped_unreported++;
				}
		}
		sqlite3_reset(st);
		if (freed == 0)
			break;
		forget(s, freed);
		db_used(s);
	}
}

/* Before appending n bytes: at the bound, pause or drop. */
static void
make_room(struct spool *s, size_t n)
{
	s->used += n + ROW_OVERHEAD;
	s->records++;
	if (s->used < s->soft)
		return;
	if (s->drop_oldest)
		drop_oldest(s);
	else if (!s->paused) {
		s->paused = 1;
		log_warn("spool %s: MaxBytes=%" PRIu64 " reached: reading "
			 "paused (WhenFull=pause)",
		    s->path, s->max_bytes);
		s->pause(s->arg);
	}
}

/* Reading resumes once the spool is below 3/4 of its bound. */
static void
maybe_resume(struct spool *s)
{
	if (s->paused && s->used < s->soft / 4 * 3) {
		s->paused = 0;
		log_notice("spool %s: below MaxBytes again: reading resumes",
		    s->path);
		s->resume(s->arg);
	}
}

/*
 * End of the loop turn: positions, commit, then the turn's messages;
 * with the committer, the batch goes to it and the loop goes on (what
 * is decided here waits while it works: cm_done_cb() comes back).
 * what 0: called, not an event: all at once, on the loop.
 */
static void
spool_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spool *s = arg;
	struct batch *b;
	uint64_t t0 = now_us();

	(void)fd;
	if (what != 0 && cm_busy(s))
		return;
	job_finish(s, 0);
	cm_resume(s);
	b = s->fill;
	if (what != 0 && !s->failed && !s->overflow && !s->replaying) {
		static const struct timeval zero;

		/* More came this turn: commit with the next turn's, up to a bound. */
		if (b->npend > 0 && b->npend != s->npend_checked &&
		    !batch_full(s, t0)) {
			s->npend_checked = b->npend;
			event_add(s->flush_ev, &zero);
			return;
		}
	}
	s->npend_checked = 0;
	if (what != 0 && cm_next(s)) {
		stall(s, t0);
		return;
	}
	if (!s->failed)
		positions_take(s, b);
	commit(s);
	/* Replaying and committed: the replay hands them on, in order. */
	if (s->replaying && !s->failed)
		batch_reset(b);
	else
		hand_on_batch(s, b);
	maybe_resume(s);
	stall(s, t0);
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

/* Mode=always: the message goes into the next commit. */
static void
spool_end(void *arg)
{
	struct spool *s = arg;
	struct batch *b = s->fill;
	uint64_t id = 0; /* append_pending() sets it */
	size_t len = s->cur.len;

	if (s->failed)
		goto unspooled;
	make_room(s, len);
	if (s->failed) { /* make_room() waited for the committer */
		forget(s, 1);
		goto unspooled;
	}
	b = s->fill;
	if (b->npend == 0) {
		s->batch_us = now_us();
		event_active(s->flush_ev, EV_WRITE, 0);
	}
	if (strbuf_add(&b->pend, &id, sizeof id) == -1 ||
	    strbuf_add(&b->pend, &len, sizeof len) == -1 ||
	    strbuf_add(&b->pend, s->cur.len ? s->cur.buf : "", len) == -1 ||
	    b->pend.failed)
		fatal("out of memory");
	b->npend++;
	/* The next batch is full while the committer writes: wait for it. */
	if (batch_big(s) && !s->cm_paused && cm_busy(s)) {
		s->cm_paused = 1;
		s->cm.paused_at = now_us();
		s->cm.pauses++;
		s->pause(s->arg);
	}
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

static int
output_index(const char *name)
{
	for (size_t i = 0; i < output_count(); i++)
		if (strcmp(name, output_name(i)) == 0)
			return (int)i;
	return -1;
}

/* output.c's: a record for output i into the spill (0), or -1. */
static int
spill_put(void *arg, size_t i, struct record *r)
{
	struct spool *s = arg;

	if (s->failed || begin(s) == -1)
		return -1;
	make_room(s, r->len);
	sqlite3_bind_int64(s->sins, 1, s->next_seq);
	sqlite3_bind_text(s->sins, 2, output_name(i), -1, SQLITE_STATIC);
	sqlite3_bind_blob(s->sins, 3, r->data, (int)r->len, SQLITE_STATIC);
	if (sqlite3_step(s->sins) != SQLITE_DONE) {
		sqlite3_reset(s->sins);
		s->records--;
		spool_fail(s, "append", NULL);
		return -1;
	}
	sqlite3_reset(s->sins);
	s->next_seq++;
	/* kept until the commit: a failed one gives it back to memory */
	r->next = NULL;
	if (s->ptail[i] != NULL)
		s->ptail[i]->next = r;
	else
		s->phead[i] = r;
	s->ptail[i] = r;
	return 0;
}

/*
 * output.c's: load what the spill holds for output i into its queue,
 * until the queue is full or REFILL_MAX records were loaded (the next
 * come at the next loop turn: output.c watches the queue again); with
 * all, everything.  1 when the spool holds nothing more for it.
 */
static int
spill_refill(void *arg, size_t i, int all)
{
	struct spool *s = arg;
	uint64_t t0 = now_us();
	size_t loaded = 0;
	int more = 1, full = 0;

	spool_wait(s);
	while (more && (all || (!full && loaded < REFILL_MAX))) {
		size_t n = 0;

		sqlite3_bind_text(s->sget, 1, output_name(i), -1, SQLITE_STATIC);
		sqlite3_bind_int64(s->sget, 2, s->loaded[i]);
		sqlite3_bind_int64(s->sget, 3, REFILL_BATCH);
		while ((!full || all) && sqlite3_step(s->sget) == SQLITE_ROW) {
			size_t len = (size_t)sqlite3_column_bytes(s->sget, 1);
			struct record *r = record_new(len);

			if (len > 0)
				memcpy(r->data, sqlite3_column_blob(s->sget, 1),
				    len);
			r->spill_seq = sqlite3_column_int64(s->sget, 0);
			s->loaded[i] = r->spill_seq;
			n++;
			loaded++;
			full = output_load(s->out, i, r) != 0;
		}
		sqlite3_reset(s->sget);
		more = n == REFILL_BATCH;
	}
	stall(s, t0);
	return !more && !full;
}

static int
spill_usable(void *arg)
{
	return !((struct spool *)arg)->failed;
}

/* output.c's: spooled records were written: positions at the turn's end. */
static void
spill_written(void *arg)
{
	struct spool *s = arg;

	event_active(s->flush_ev, EV_WRITE, 0);
}

/*
 * output.c's, at stop, Mode=overflow: n records of output i follow; the
 * rows already loaded go, all come back below every seq.  -1: not kept.
 */
static int
spill_keep_begin(void *arg, size_t i, size_t n)
{
	struct spool *s = arg;
	int64_t lo;

	s->keep_failed = 0;
	if (!s->overflow || s->failed || begin(s) == -1)
		return s->keep_failed = -1;
	if (n == 0)
		return 0;
	sqlite3_bind_text(s->sdel, 1, output_name(i), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->sdel, 2, s->loaded[i]);
	step_done(s, s->sdel);
	forget(s, (uint64_t)sqlite3_changes(s->db));
	lo = db_number(s, NULL, "SELECT min(coalesce(min(seq), 0), 0) FROM spill");
	s->keep_seq = lo - (int64_t)n;
	return 0;
}

static void
spill_keep(void *arg, size_t i, const struct record *r)
{
	struct spool *s = arg;

	if (s->keep_failed || r->spool_id != 0)
		return; /* Mode=always's are in table events */
	sqlite3_bind_int64(s->sins, 1, s->keep_seq++);
	sqlite3_bind_text(s->sins, 2, output_name(i), -1, SQLITE_STATIC);
	sqlite3_bind_blob(s->sins, 3, r->data, (int)r->len, SQLITE_STATIC);
	if (sqlite3_step(s->sins) != SQLITE_DONE) {
		log_err("spool %s: %s", s->path, sqlite3_errmsg(s->db));
		s->keep_failed = -1;
	} else
		s->records++;
	sqlite3_reset(s->sins);
}

static int
spill_kept(void *arg, size_t i)
{
	(void)i;
	return ((struct spool *)arg)->keep_failed;
}

static const struct spill_ops spill_ops = {
	.put = spill_put,
	.refill = spill_refill,
	.usable = spill_usable,
	.written = spill_written,
	.keep_begin = spill_keep_begin,
	.keep = spill_keep,
	.kept = spill_kept,
};

/*
 * A failed spool is used again after a probe transaction committed, but
 * said to be back only once a real commit followed, or RETRY_MS passed
 * without a failure: a probe can fit where a spill cannot (a WAL reuses
 * its file), and a full disk would otherwise be reported failed and back
 * every RETRY_MS.
 */
static void
spool_back(struct spool *s)
{
	s->probation_at = 0;
	record_daemon(MID_SPOOL_BACK, 5, NULL,
	    "the spool %s can be written again: it is used again", s->path);
}

/* A failed spool: a probe transaction; when it commits, used again. */
static void
retry(struct spool *s)
{
	if (clock_ms() < s->retry_at || s->in_txn)
		return;
	s->retry_at = clock_ms() + RETRY_MS;
	if (exec(s, "BEGIN") == -1)
		return;
	if (sqlite3_exec(s->db,
		"INSERT INTO seen(id, uuid) VALUES(-1, hex(randomblob(2048)));"
		"DELETE FROM seen WHERE id = -1; COMMIT",
		NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return;
	}
	s->failed = 0;
	s->probation_at = clock_ms();
	output_respill(s->out);
}

static void
spool_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spool *s = arg;

	(void)fd;
	(void)what;
	if (cm_busy(s))
		; /* the connection is the committer's */
	else if (s->failed)
		retry(s);
	else if (!s->in_txn)
		db_used(s);
	if (!s->failed && s->probation_at != 0 &&
	    clock_ms() - s->probation_at >= RETRY_MS)
		spool_back(s);
	if (!s->failed && !s->overflow)
		event_active(s->flush_ev, EV_WRITE, 0);
	maybe_resume(s);
	/* One record once below 3/4 again (or at stop), one a minute before. */
	if (s->dropped_unreported > 0 &&
	    (s->used < s->soft / 4 * 3 ||
		clock_ms() - s->drop_reported_at >= 60000))
		report_dropped(s);
}

/* Start-up: a batch of what the outputs have not written, per turn. */
static void
spool_replay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spool *s = arg;
	uint64_t t0 = now_us(), n = 0;
	sqlite3_stmt *st;

	(void)fd;
	(void)what;
	if (!s->replaying || output_paused(s->out))
		return; /* spool_resume() comes back */
	commit(s); /* what this turn appended is on disk before it goes on */
	if (!s->failed) {
		/* and the replay hands it on, in order: not the flush */
		batch_reset(s->fill);
	}
	if (sqlite3_prepare_v2(s->db,
		"SELECT id, msg FROM events WHERE id > ? ORDER BY id LIMIT ?",
		-1, &st, NULL) != SQLITE_OK) {
		log_err("spool %s: %s", s->path, sqlite3_errmsg(s->db));
		s->replaying = 0;
		return;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)s->replay_next);
	sqlite3_bind_int64(st, 2, REPLAY_BATCH);
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
		const void *p = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);

		hand_on(s, id, s->pos, p ? p : "", len);
		s->replay_next = id;
		n++;
		if (output_paused(s->out))
			break;
	}
	sqlite3_finalize(st);
	if (n < REPLAY_BATCH && !output_paused(s->out)) {
		s->replaying = 0;
		log_notice("spool %s: the replay is done", s->path);
	} else if (!output_paused(s->out))
		event_active(s->replay_ev, EV_WRITE, 0);
	stall(s, t0);
}

/*
 * Open the spool of c and put it in front of the parser (Mode=always: *h,
 * the parser's websocket handler, becomes the spool's) and below the
 * outputs (their spill).  pause and resume stop and restart reading
 * (WhenFull=pause).  NULL (said why) when no spool could be started: the
 * daemon goes on without one.
 */
struct spool *
spool_open(struct event_base *base, const struct conf *c, struct output *out,
    struct ws_handler *h, void (*pause)(void *), void (*resume)(void *),
    void *arg)
{
	struct spool *s = calloc(1, sizeof *s);
	struct timeval tv = tv_ms(TIMER_MS);
	size_t n = output_count();
	int *spilling;

	if (s == NULL || (s->path = strdup(c->spool_path)) == NULL ||
	    (s->pos = calloc(n, sizeof *s->pos)) == NULL ||
	    (s->wseq = calloc(n, sizeof *s->wseq)) == NULL ||
	    (s->loaded = calloc(n, sizeof *s->loaded)) == NULL ||
	    (s->phead = calloc(n, sizeof *s->phead)) == NULL ||
	    (s->ptail = calloc(n, sizeof *s->ptail)) == NULL ||
	    (spilling = calloc(n, sizeof *spilling)) == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < 3; i++) {
		if ((s->batch[i].pos = calloc(n, sizeof(uint64_t))) == NULL ||
		    (s->batch[i].sdel = calloc(n, sizeof(int64_t))) == NULL)
			fatal("out of memory");
		s->batch[i].used = -1;
	}
	s->fill = &s->batch[0];
	s->job = &s->batch[1];
	s->spare = &s->batch[2];
	s->cm.fd = -1;
	pthread_mutex_init(&s->ck.mu, NULL);
	pthread_cond_init(&s->ck.cv, NULL);
	pthread_mutex_init(&s->cm.mu, NULL);
	pthread_cond_init(&s->cm.cv, NULL);
	s->out = out;
	s->overflow = c->spool_mode == SPOOL_OVERFLOW;
	s->max_bytes = c->spool_max_bytes;
	s->drop_oldest = c->spool_drop_oldest;
	s->pause = pause;
	s->resume = resume;
	s->drop_reported_at = clock_ms();
	s->arg = arg;
	if (db_open(s) == -1) {
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
		if (db_open(s) == -1) {
			log_err("spool %s: cannot start a new spool: events "
				"go on without one",
			    s->path);
none:
			db_close(s);
			free(spilling);
			s->db = NULL;
			spool_close(s);
			return NULL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_text(
		    s->getpos, 1, output_name(i), -1, SQLITE_STATIC);
		if (sqlite3_step(s->getpos) == SQLITE_ROW)
			s->pos[i] = (uint64_t)sqlite3_column_int64(s->getpos, 0);
		sqlite3_reset(s->getpos);
		s->loaded[i] = INT64_MIN;
	}
	/* Outputs with records in the spill get those first. */
	{
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(s->db,
			"SELECT DISTINCT output FROM spill", -1, &st, NULL) ==
		    SQLITE_OK) {
			while (sqlite3_step(st) == SQLITE_ROW) {
				int i = output_index(
				    (const char *)sqlite3_column_text(st, 0));

				if (i >= 0)
					spilling[i] = 1;
			}
			sqlite3_finalize(st);
		}
	}
	if ((s->flush_ev = event_new(base, -1, 0, spool_flush_cb, s)) == NULL ||
	    (s->replay_ev = event_new(base, -1, 0, spool_replay_cb, s)) ==
		NULL ||
	    (s->timer_ev = event_new(
		 base, -1, EV_PERSIST, spool_timer_cb, s)) == NULL ||
	    event_add(s->timer_ev, &tv) == -1)
		fatal("out of memory");
	ck_start(s);
	cm_start(s, base);
	output_set_spill(out, &spill_ops, s, s->overflow, spilling);
	free(spilling);
	s->inner = *h;
	if (!s->overflow) {
		*h = (struct ws_handler){ spool_begin, spool_data, spool_end,
			spool_abort, s };
	}
	log_info("spool %s: open (Mode=%s, %" PRIu64 " records)", s->path,
	    c->spool_mode_name, s->records);
	return s;
}

/*
 * What the outputs have not written, in order, before new events: handed
 * on a batch per loop turn while no queue is full (spool_resume()).
 */
void
spool_replay(struct spool *s)
{
	uint64_t lo = UINT64_MAX;
	sqlite3_stmt *st;

	if (s == NULL)
		return;
	ring_load(s);
	for (size_t i = 0; i < output_count(); i++)
		if (output_is_open(s->out, i) && s->pos[i] < lo)
			lo = s->pos[i];
	if (lo == UINT64_MAX)
		return;
	/*
	 * What every output wrote, the server may send again: the uuids of
	 * seenlist (and of seen, where spools made before it kept them, a
	 * row each; used once, then deleted).
	 */
	if (sqlite3_prepare_v2(s->db,
		"SELECT uuid FROM (SELECT id, uuid FROM seen UNION ALL "
		"SELECT json_extract(j.value, '$[0]'), "
		"json_extract(j.value, '$[1]') "
		"FROM seenlist, json_each(seenlist.uuids) AS j) "
		"WHERE id <= ? ORDER BY id",
		-1, &st, NULL) == SQLITE_OK) {
		int rc;

		sqlite3_bind_int64(st, 1, (sqlite3_int64)lo);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			if (sqlite3_column_type(st, 0) == SQLITE_TEXT)
				output_seen(s->out,
				    (const char *)sqlite3_column_text(st, 0),
				    (size_t)sqlite3_column_bytes(st, 0));
		if (rc != SQLITE_DONE)
			log_warn("spool %s: the duplicate ring: %s", s->path,
			    sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
	} else
		log_warn("spool %s: the duplicate ring: %s", s->path,
		    sqlite3_errmsg(s->db));
	exec(s, "DELETE FROM seen");
	if (db_number(s, NULL, "SELECT count(*) FROM events") <= 0)
		return;
	s->replaying = 1;
	s->replay_next = lo;
	log_notice("spool %s: replaying %" PRId64 " spooled events", s->path,
	    db_number(s, NULL, "SELECT count(*) FROM events"));
	event_active(s->replay_ev, EV_WRITE, 0);
}

/* The stream resumes: so does the replay. */
void
spool_resume(struct spool *s)
{
	if (s != NULL && s->replaying)
		event_active(s->replay_ev, EV_WRITE, 0);
}

/* A reload: the bound applies at once; Mode and Path at the next start. */
void
spool_reconfigure(struct spool *s, const struct conf *c)
{
	const char *mode = s == NULL ? "no" : s->overflow ? "overflow" : "always";

	if (strcmp(mode, c->spool_mode_name) != 0 ||
	    (s != NULL && strcmp(s->path, c->spool_path) != 0))
		log_warn("[Spool] Mode and Path take effect at the next start; "
			 "running on with Mode=%s%s%s",
		    mode, s != NULL ? " Path=" : "", s != NULL ? s->path : "");
	if (s == NULL)
		return;
	s->max_bytes = c->spool_max_bytes;
	s->drop_oldest = c->spool_drop_oldest;
	commit(s);
	db_limits(s);
	maybe_resume(s);
}

/* At stop: commit and hand on the turn's messages, report drops. */
void
spool_stop(struct spool *s)
{
	if (s == NULL)
		return;
	spool_flush_cb(-1, 0, s);
	report_dropped(s);
}

/*
 * After the final flush (output_stop()): store what each output wrote and
 * what they kept; close.
 */
void
spool_close(struct spool *s)
{
	if (s == NULL)
		return;
	cm_stop(s);
	ck_stop(s);
	if (s->db != NULL) {
		if (!s->failed)
			positions_take(s, s->fill);
		ring_store(s);
		/* No checkpoint now: the next start makes it (2 s budget). */
		exec(s, "PRAGMA wal_autocheckpoint=0");
		s->ck_pages = UINT64_MAX / 4;
		commit(s);
		if (s->commits > 0)
		if (s->commits > 0)
			log_info("spool %s: %" PRIu64 " commits, %" PRIu64
				 " us on average, %" PRIu64
				 " us at most; the longest spool callback %" PRIu64
				 " us; %" PRIu64 " records held; %" PRIu64
				 " checkpoints by its thread (CPU %" PRIu64
				 " ms), %" PRIu64 " by the committing one (%" PRIu64
				 " ms); %" PRIu64 " commits by the committer (CPU %" PRIu64
				 " ms), reading paused %" PRIu64 " times for it (%" PRIu64
				 " ms)",
			    s->path, s->commits, s->commit_us / s->commits,
			    s->commit_max_us, s->stall_max_us, s->records,
			    s->ck.passes, s->ck.cpu_us / 1000, s->ck.own,
			    s->ck.own_us / 1000, s->cm.jobs, s->cm.cpu_us / 1000,
			    s->cm.pauses, s->cm.paused_us / 1000);
	}
	if (s->flush_ev != NULL)
		event_free(s->flush_ev);
	if (s->replay_ev != NULL)
		event_free(s->replay_ev);
	if (s->timer_ev != NULL)
		event_free(s->timer_ev);
	db_close(s);
	free(strbuf_finish(&s->cur));
	for (size_t i = 0; i < 3; i++) {
		free(strbuf_finish(&s->batch[i].pend));
		free(strbuf_finish(&s->batch[i].seenq));
		free(s->batch[i].pos);
		free(s->batch[i].sdel);
	}
	free(s->pos);
	free(s->wseq);
	free(s->loaded);
	free(s->phead);
	free(s->ptail);
	free(s->path);
	pthread_mutex_destroy(&s->ck.mu);
	pthread_cond_destroy(&s->ck.cv);
	pthread_mutex_destroy(&s->cm.mu);
	pthread_cond_destroy(&s->cm.cv);
	free(s);
}

/* Gauges: rows the spool holds, and the bytes its pages in use take. */
uint64_t
spool_records(const struct spool *s)
{
	return s == NULL ? 0 : s->records;
}

uint64_t
spool_bytes(const struct spool *s)
{
	return s == NULL ? 0 : s->used;
}

/* Records drop-oldest deleted that no output had in memory. */
uint64_t
spool_dropped(const struct spool *s)
{
	return s == NULL ? 0 : s->dropped;
}
