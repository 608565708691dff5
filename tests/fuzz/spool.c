/*
 * libFuzzer target: what the spool (daemon/spool.c) reads back at start.
 * The first byte chooses how the input becomes the spool file:
 *   even: the rest is the file itself (garbage, truncated or foreign
 *         SQLite files; the seeds are real spools);
 *   odd:  the rest describes a well-formed spool, built here with
 *         SQLite in spool.c's schema: a stored position for stdout (or
 *         none), then rows of arbitrary bytes in table events (with gaps
 *         in their ids) and of arbitrary uuids in table seen.
 * Then spool_open() and spool_replay() with stdout (into /dev/null) as
 * the only output, and spool_close().  Properties: no crash, no leak;
 * messages are handed on whole; a spool reported damaged (a record with
 * MID_SPOOL_DAMAGED) hands nothing on, and one that could not be opened
 * was reported; a well-formed spool is never reported damaged and hands
 * on each row beyond the position exactly once.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "dcevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct {
	struct event_base *base;
	struct conf *conf;
	struct output *out;
	struct ws_handler json; /* the parser's handler */
	char dir[16], name[64], path[96];
	int64_t handed, last_id, damaged;
	int open;
} F;

/* The spool's inner handler: counts what is handed on, then parses. */
static void
f_begin(void *arg)
{
	(void)arg;
	if (F.open)
		abort();
	F.open = 1;
	F.json.begin(F.json.arg);
}

static void
f_data(void *arg, const uint8_t *p, size_t n)
{
	(void)arg;
	if (!F.open)
		abort();
	F.json.data(F.json.arg, p, n);
}

static void
f_end(void *arg)
{
	(void)arg;
	if (!F.open)
		abort();
	F.open = 0;
	F.handed++;
	F.json.end(F.json.arg);
}

static void
f_abort(void *arg)
{
	(void)arg;
	abort(); /* the spool hands on whole messages only */
}

static int
f_record(void *arg, const char *mid, int priority, const char *const *fields,
    const char *message)
{
	if (strcmp(mid, MID_SPOOL_DAMAGED) == 0)
		F.damaged++;
	return output_daemon(arg, mid, priority, fields, message);
}

static void
setup(void)
{
	char *ov[] = { "Stream.Namespace=fuzz", "Output.Journal=no",
		"Output.Stdout=yes", "Spool.Mode=always",
		"Spool.Path=/nonexistent/spool.db" };
	int fd;

	log_init(-1);
	/* stdout, the output, goes into /dev/null. */
	if ((fd = open("/dev/null", O_WRONLY)) == -1 ||
	    dup2(fd, STDOUT_FILENO) == -1)
		abort();
	close(fd);
	F.base = event_base_new();
	F.conf = conf_load("/dev/null", 1, ov, 5);
	if (F.base == NULL || F.conf == NULL)
		abort();
	F.out = output_new(F.base, F.conf, NULL, NULL, NULL);
	if (F.out == NULL)
		abort();
	record_set_handler(f_record, F.out);
	json_handler(json_new(), &F.json, output_event, F.out);
	/*
	 * In memory where there is a tmpfs (no fsync: quick inputs); no
	 * directory of our own, as libFuzzer may end without atexit: each
	 * input removes what it made (clean()).
	 */
	strcpy(F.dir, access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	snprintf(F.name, sizeof F.name, "dcevents-fuzz-spool-%ld.db",
	    (long)getpid());
	snprintf(F.path, sizeof F.path, "%s/%s", F.dir, F.name);
	/* The conf is never freed: its path may be ours. */
	free(F.conf->spool_path);
	F.conf->spool_path = F.path;
}

/* Remove the spool's files (PATH, -wal, -shm, .bad-TIMESTAMP...). */
static void
clean(void)
{
	DIR *d = opendir(F.dir);
	struct dirent *e;
	char p[512];

	if (d == NULL)
		abort();
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, F.name, strlen(F.name)) != 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", F.dir, e->d_name);
		unlink(p);
	}
	closedir(d);
}

static void
sql(sqlite3 *db, const char *q)
{
	if (sqlite3_exec(db, q, NULL, NULL, NULL) != SQLITE_OK)
		abort();
}

/*
 * A well-formed spool from p: byte 0 bit 0 a stored position for stdout,
 * bytes 1-2 its value; then items [kind][len][len bytes]: kind % 4 0 or
 * 1 an events row, 2 a seen row (the bytes as its uuid), 3 a gap of len
 * ids before the next events row.  Returns the rows beyond the position.
 */
static int64_t
build(const uint8_t *p, size_t n)
{
	sqlite3 *db;
	sqlite3_stmt *ev, *seen;
	int64_t pos = -1, id = 0, beyond = 0, sid = 0;
	size_t i = 3;

	if (sqlite3_open(F.path, &db) != SQLITE_OK)
		abort();
	sql(db, "PRAGMA journal_mode=WAL; PRAGMA page_size=4096;"
		"PRAGMA synchronous=OFF;"
		"CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT,"
		" msg BLOB NOT NULL);"
		"CREATE TABLE positions(output TEXT PRIMARY KEY,"
		" id INTEGER NOT NULL);"
		"CREATE TABLE seen(id INTEGER PRIMARY KEY, uuid TEXT NOT NULL)");
	if (n >= 3 && (p[0] & 1)) {
		char q[96];

		pos = p[1] | p[2] << 8;
		pos %= 64;
		snprintf(q, sizeof q,
		    "INSERT INTO positions VALUES('stdout', %lld)", (long long)pos);
		sql(db, q);
	}
	if (sqlite3_prepare_v2(db, "INSERT INTO events VALUES(?, ?)", -1, &ev,
		NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO seen VALUES(?, ?)", -1, &seen,
		NULL) != SQLITE_OK)
		abort();
	sql(db, "BEGIN");
	while (i + 2 <= n) {
		unsigned kind = p[i] % 4, len = p[i + 1];
		const uint8_t *b = p + i + 2;

		i += 2;
		if (kind == 3) {
			id += len;
			continue;
		}
		if (len > n - i)
			len = (unsigned)(n - i);
		i += len;
		if (kind == 2) {
			sqlite3_bind_int64(seen, 1, ++sid);
			sqlite3_bind_text(seen, 2, (const char *)b, (int)len,
			    SQLITE_STATIC);
			if (sqlite3_step(seen) != SQLITE_DONE)
				abort();
			sqlite3_reset(seen);
			continue;
		}
		sqlite3_bind_int64(ev, 1, ++id);
		sqlite3_bind_blob(ev, 2, len ? (const void *)b : "", (int)len,
		    SQLITE_STATIC);
		if (sqlite3_step(ev) != SQLITE_DONE)
			abort();
		sqlite3_reset(ev);
		if (id > pos)
			beyond++;
	}
	sql(db, "COMMIT");
	sqlite3_finalize(ev);
	sqlite3_finalize(seen);
	sqlite3_close(db);
	return beyond;
}

static void
nop(void *arg)
{
	(void)arg;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ws_handler h = { f_begin, f_data, f_end, f_abort, NULL };
	struct spool *s;
	int64_t want = -1;

	if (F.base == NULL)
		setup();
	if (size == 0 || size > 1 << 20)
		return 0;
	clean();
	if (data[0] & 1) {
		want = build(data + 1, size - 1);
	} else {
		int fd = open(F.path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd == -1 ||
		    write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
			abort();
		close(fd);
	}
	F.handed = F.damaged = 0;
	s = spool_open(F.base, F.conf, F.out, &h, nop, nop, NULL);
	if (s == NULL) {
		if (F.damaged == 0)
			abort(); /* no spool, and nothing said so */
	} else {
		if (h.begin == f_begin || h.arg != s)
			abort(); /* the spool is not in front of the parser */
		spool_replay(s);
		/* the replay goes a batch a loop turn: until it is done */
		for (int i = 0; i < 256; i++)
			event_base_loop(F.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		spool_close(s);
	}
	if (F.open)
		abort();
	if (F.damaged > 0 && F.handed > 0)
		abort(); /* reported lost, yet handed on */
	if (want >= 0 && (F.damaged > 0 || F.handed != want))
		abort(); /* a well-formed spool: every row beyond, once */
	clean();
	return 0;
}
