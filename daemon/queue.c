/*
 * The queue between the event loop and a slow output.  Each output (the
 * journal, syslog, stdout) has a writer thread fed by a bounded FIFO of
 * ready-made records, so a stalled journald or collector never blocks the
 * loop, the pings or the other outputs.  A record leaves the queue only
 * once its output took it whole; when an output fails, the thread waits
 * (backoff, 100 ms doubling to 5 s) and retries the same record, so
 * records are neither lost nor reordered; the flush at a stop keeps the
 * same backoff (after one retry at once), and gives up when the next try
 * would come after its deadline.  The loop is told when a queue falls
 * below half (to resume reading, or, asked by queue_watch(), to load
 * spooled records), when an output goes down or comes back, and, for the
 * spool, when spooled records were written: the writer writes to an
 * eventfd the loop watches (queue_wake()) and never touches the
 * event_base, so a loop made without evthread_use_pthreads() (a test, a
 * tool) is neither corrupted nor left asleep.  After a stop,
 * queue_unwritten() shows what is left, for the spool to keep.
 *
 * An output whose writes are acknowledged later (Kafka: the delivery
 * report) has a start operation: its write() only hands records over, and
 * they stay queued, counted and in order, until the output calls
 * queue_acked() on the loop; the spool's written id advances over
 * acknowledged records only (the head of the queue, in order).
 */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/uio.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "dcevents.h"

#define QUEUE_BATCH 256
#define QUEUE_DONE_MAX (4 * QUEUE_BATCH)
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000

struct queue {
	const char *name;
	const struct queue_ops *ops;
	void *arg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct record *head, *tail;
	size_t n; /* records queued (including in flight) */
	size_t bytes; /* their size */
	size_t max; /* QueueMax */
	size_t max_bytes; /* QueueMaxBytes */
	int full; /* reached max; waiting for half */
	int stop; /* flush and exit */
	int stop_retried; /* the one retry at once after the stop was made */
	int waiting; /* the writer sleeps on cv */
	struct timespec deadline; /* for stop */
	int down; /* the last write failed */
	unsigned fails; /* failures the loop has not looked at yet */
	int reported; /* the loop's: it said "down" and not yet "back" */
	char why[640]; /* the first of those failures */
	int wakefd; /* eventfd: news for the loop, from either thread */
	struct event *wake; /* on the loop, wakefd readable: resume, report */
	struct event *kick; /* on the loop: wake the writer, once per turn */
	int kicking; /* kick is active */
	/* The loop's side, without the lock: records staged for the queue. */
	struct record *shead, *stail;
	size_t sn, sbytes;
	size_t known_n, known_bytes; /* n and bytes at the last flush */
	struct record *done; /* written, to be freed by the loop (or by the
			     writer, past QUEUE_DONE_MAX of them) */
	size_t ndone;
	void (*notify)(void *, int);
	void *notify_arg;
	uint64_t written_id; /* highest spool id written (under mu) */
	size_t stat; /* the output's label for stats_add() */
	struct record *sent; /* acknowledged outputs: the first record not
				handed to write() yet (NULL: all were) */
	struct record *busy; /* the first of the batch in write(): it and
				those after it stay linked meanwhile */
	int rewind; /* hand every record over again once write() returns */
	int64_t written_seq; /* the last spilled record written (under mu) */
	int wrote_spooled; /* written_id or written_seq moved (under mu) */
	int joined, detached; /* the writer has ended, or was left behind */
};

static void queue_kick_cb(evutil_socket_t, short, void *);
static void queue_progress(struct queue *);

static void
record_free_list(struct record *r)
{
	while (r != NULL) {
		struct record *next = r->next;

		free(r);
		r = next;
	}
}

/*
 * q->done changes under the lock; queue_flush() looks at it without, to
 * skip the lock when there is nothing to do: an atomic store and load
 * (relaxed: a list seen late is freed at the next flush).
 */
static void
set_done(struct queue *q, struct record *r)
{
	__atomic_store_n(&q->done, r, __ATOMIC_RELAXED);
}

/* Reading may resume: both the count and the size are below half. */
static int
queue_below_half(const struct queue *q)
{
	return q->n <= q->max / 2 && q->bytes <= q->max_bytes / 2;
}

static void
ts_after_ms(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int
ts_passed(const struct timespec *ts)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > ts->tv_sec ||
	    (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec);
}

struct record *
record_new(size_t len)
{
	struct record *r = malloc(sizeof *r + len);

	if (r == NULL)
		fatal("out of memory");
	r->next = NULL;
	r->spool_id = 0;
	r->acked = 0;
	r->spill_seq = 0;
	r->len = len;
	return r;
}

/* A record holding what an output formatted into b. */
struct record *
record_from(const struct strbuf *b)
{
	struct record *r;

	if (b->failed)
		fatal("out of memory");
	r = record_new(b->len);
	memcpy(r->data, b->buf, b->len);
	return r;
}

/*
 * For writers: up to RECORD_IOV records with one writev() on a blocking fd; a
 * write cut short finishes the record it stopped in.  Returns how many
 * records were written whole, or -1 (errno set) when none was.
 */
int
record_writev(int fd, struct record **recs, size_t n)
{
	struct iovec iov[RECORD_IOV];
	size_t k = n < RECORD_IOV ? n : RECORD_IOV, i = 0;
	ssize_t w;

	for (size_t j = 0; j < k; j++) {
		iov[j].iov_base = recs[j]->data;
		iov[j].iov_len = recs[j]->len;
	}
	while (i < k) {
		if ((w = writev(fd, iov + i, (int)(k - i))) == -1) {
			if (errno == EINTR)
				continue;
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

/* a is earlier than b. */
static int
ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	    (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * The back-off after a failure: wait ms (the lock held).  A stop request
 * cuts one wait short, so that the output, back by now perhaps, is tried
 * once more at once; after that the waits run their course, as while
 * running, so that a stop never hammers an output that stays down (a
 * refused connection, a certificate that fails, a journald that is
 * gone).  Returns 1 when the writer should give up: stopping, and the
 * next try would come after the deadline.
 */
static int
queue_pause(struct queue *q, uint64_t ms)
{
	struct timespec ts;

	ts_after_ms(&ts, ms);
	for (;;) {
		if (q->stop && !q->stop_retried) {
			q->stop_retried = 1;
			return 0;
		}
		if (q->stop && !ts_before(&ts, &q->deadline))
			return 1;
		if (ts_passed(&ts))
			return 0;
		pthread_cond_timedwait(&q->cv, &q->mu, &ts);
	}
}

/* Where the writer goes on: the head, or the first record not handed over. */
static struct record *
queue_next(const struct queue *q)
{
	return q->ops->start != NULL ? q->sent : q->head;
}

/*
 * Wake the loop (queue_wake_cb()), from the writer or the loop: an
 * eventfd write, never event_active() from the writer, which on a base
 * without locks races the loop and can leave it counting an active event
 * that is not there (event_base_loop() then spins in epoll_wait()).
 */
static void
queue_wake(struct queue *q)
{
	uint64_t one = 1;

	/* only EAGAIN, the counter near 2^64: the loop is due anyway */
	while (write(q->wakefd, &one, sizeof one) == -1 && errno == EINTR)
		;
}

/*
 * The output failed (the lock held).  The first failure since the loop
 * last looked is the news, even if the output recovers before the loop
 * comes by: every failure is reported, however short.
 */
static void
queue_down(struct queue *q, const char *why)
{
	stats_add(STAT_OUTPUT_ERRORS, q->stat, 1); /* each retry counts */
	q->down = 1;
	if (q->fails++ > 0)
		return;
	snprintf(q->why, sizeof q->why, "%s", why);
	queue_wake(q);
}

/* r was written (the lock held): the spool's marks move past it. */
static void
queue_wrote(struct queue *q, const struct record *r)
{
	if (r->spool_id > q->written_id) {
		q->written_id = r->spool_id;
		q->wrote_spooled = 1;
	}
	if (r->spill_seq != 0) {
		q->written_seq = r->spill_seq;
		q->wrote_spooled = 1;
	}
}

/*
 * Acknowledged outputs (the lock held): the acknowledged records at the
 * head leave the queue, in order, and count as written; the loop frees
 * them.  Not those of a batch in write(): the writer still holds them.
 */
static void
queue_pop_acked(struct queue *q)
{
	struct record *r;
	size_t popped = 0;

	while ((r = q->head) != NULL && r->acked && r != q->busy) {
		q->head = r->next;
		q->n--;
		q->bytes -= r->len;
		queue_wrote(q, r);
		r->next = q->done;
		set_done(q, r);
		q->ndone++;
		popped++;
	}
	if (q->head == NULL)
		q->tail = NULL;
	if (popped > 0) {
		stats_add(STAT_RECORDS_WRITTEN, q->stat, popped);
		queue_progress(q);
	}
}

/* Records were written (the lock held): report recovery and room. */
static void
queue_progress(struct queue *q)
{
	int back = q->down;

	q->down = 0;
	if (back || (q->full && queue_below_half(q)) || q->wrote_spooled)
		queue_wake(q);
}

static void *
queue_main(void *arg)
{
	struct queue *q = arg;
	uint64_t retry = RETRY_MIN_MS;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct record *batch[QUEUE_BATCH], *r;
		size_t n = 0, done = 0;
		int rc = 0;

		while (queue_next(q) == NULL && !q->stop) {
			q->waiting = 1;
			pthread_cond_wait(&q->cv, &q->mu);
			q->waiting = 0;
		}
		if (queue_next(q) == NULL ||
		    (q->stop && ts_passed(&q->deadline)))
			break;
		for (r = queue_next(q); r != NULL && n < QUEUE_BATCH;
		     r = r->next)
			batch[n++] = r;
		q->busy = batch[0];
		pthread_mutex_unlock(&q->mu);

		while (done < n &&
		    (rc = q->ops->write(q->arg, batch + done, n - done)) > 0)
			done += (size_t)rc;

		pthread_mutex_lock(&q->mu);
		q->busy = NULL;
		if (q->rewind) {
			q->rewind = 0;
			q->sent = q->head;
			done = n; /* no failure: start over at once */
			rc = 0;
		} else if (done > 0 && q->ops->start != NULL) {
			/* handed over: queued until queue_acked() */
			q->sent = batch[done - 1]->next;
			queue_pop_acked(q);
		} else if (done > 0) {
			/*
			 * Unlinked here and freed by the thread that allocated
			 * them (the loop, at its next flush), so that malloc's
			 * arena is not fought over.
			 */
			q->head = batch[done - 1]->next;
			if (q->head == NULL)
				q->tail = NULL;
			for (size_t i = 0; i < done; i++) {
				q->bytes -= batch[i]->len;
				queue_wrote(q, batch[i]);
			}
			batch[done - 1]->next = q->done;
			set_done(q, batch[0]);
			q->ndone += done;
			if (q->ndone > QUEUE_DONE_MAX) {
				/* the loop has not come by: free them here */
				r = q->done;
				set_done(q, NULL);
				q->ndone = 0;
				pthread_mutex_unlock(&q->mu);
				record_free_list(r);
				pthread_mutex_lock(&q->mu);
			}
			q->n -= done;
			stats_add(STAT_RECORDS_WRITTEN, q->stat, done);
		}
		if (rc < 0 && done < n) {
			queue_down(q, q->ops->error(q->arg));
			if (q->stop && ts_passed(&q->deadline))
				break;
			pthread_mutex_unlock(&q->mu);
			q->ops->reset(q->arg);
			pthread_mutex_lock(&q->mu);
			if (queue_pause(q, retry))
				break;
			retry =
			    retry * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry * 2;
			continue;
		}
		retry = RETRY_MIN_MS;
		if (q->ops->start == NULL)
			queue_progress(q);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* On the loop: an output recovered, failed, or has room again. */
static void
queue_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	int down, resume = 0, wrote;
	unsigned fails;
	size_t n;
	char why[sizeof q->why];
	uint64_t count;

	/* nothing to read when event_active() (on the loop) called us */
	if (read(q->wakefd, &count, sizeof count) == -1 && errno != EAGAIN)
		log_warn("%s queue: eventfd: %s", q->name, strerror(errno));
	pthread_mutex_lock(&q->mu);
	down = q->down;
	fails = q->fails;
	q->fails = 0;
	n = q->n;
	memcpy(why, q->why, sizeof why);
	if (q->full && queue_below_half(q)) {
		q->full = 0;
		resume = 1;
	}
	wrote = q->wrote_spooled;
	q->wrote_spooled = 0;
	pthread_mutex_unlock(&q->mu);
	if (!q->reported && fails > 0) {
		log_warn(
		    "%s output is down: %s; %zu records wait", q->name, why, n);
		q->reported = 1;
		if (down)
			q->notify(q->notify_arg, QUEUE_DOWN);
	}
	if (q->reported && !down) {
		log_notice("%s output is back; %zu records wait", q->name, n);
		q->reported = 0;
	}
	if (wrote)
		q->notify(q->notify_arg, QUEUE_WRITTEN);
	if (resume)
		q->notify(q->notify_arg, QUEUE_ROOM);
}

struct queue *
queue_new(struct event_base *base, const char *name, size_t stat,
    const struct queue_ops *ops, void *arg, size_t max, size_t max_bytes,
    void (*notify)(void *, int), void *notify_arg)
{
	struct queue *q = calloc(1, sizeof *q);

	if (q == NULL)
		return NULL;
	q->name = name;
	q->stat = stat;
	q->ops = ops;
	q->arg = arg;
	q->max = max;
	q->max_bytes = max_bytes;
	q->notify = notify;
	q->notify_arg = notify_arg;
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cv, &ca);
	pthread_condattr_destroy(&ca);
	q->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	q->wake = q->wakefd == -1 ? NULL
				  : event_new(base, q->wakefd,
					EV_READ | EV_PERSIST, queue_wake_cb, q);
	q->kick = event_new(base, -1, 0, queue_kick_cb, q);
	if (q->wake == NULL || q->kick == NULL ||
	    event_add(q->wake, NULL) == -1 ||
	    (ops->start != NULL && ops->start(arg, base, q) == -1) ||
	    pthread_create(&q->thread, NULL, queue_main, q)) {
		if (q->wake != NULL)
			event_free(q->wake);
		if (q->wakefd != -1)
			close(q->wakefd);
		if (q->kick != NULL)
			event_free(q->kick);
		free(q);
		return NULL;
	}
	return q;
}

/*
 * On the loop: move the staged records to the queue (one lock for many
 * records), wake the writer if it sleeps, and free what it has written.
 * Returns QUEUE_FULL_COUNT or QUEUE_FULL_BYTES when the queue has just
 * become full.
 */
static int
queue_flush(struct queue *q)
{
	struct record *done;
	int full = 0;

	if (q->shead == NULL &&
	    __atomic_load_n(&q->done, __ATOMIC_RELAXED) == NULL)
		return 0;
	pthread_mutex_lock(&q->mu);
	if (q->shead != NULL) {
		if (q->tail != NULL)
			q->tail->next = q->shead;
		else
			q->head = q->shead;
		if (q->sent == NULL && q->ops->start != NULL)
			q->sent = q->shead;
		q->tail = q->stail;
		q->n += q->sn;
		q->bytes += q->sbytes;
		if (!q->full && q->n >= q->max)
			full = q->full = QUEUE_FULL_COUNT;
		else if (!q->full && q->bytes >= q->max_bytes)
			full = q->full = QUEUE_FULL_BYTES;
		if (q->waiting)
			pthread_cond_signal(&q->cv);
	}
	q->known_n = q->n;
	q->known_bytes = q->bytes;
	done = q->done;
	set_done(q, NULL);
	q->ndone = 0;
	pthread_mutex_unlock(&q->mu);
	q->shead = q->stail = NULL;
	q->sn = q->sbytes = 0;
	record_free_list(done);
	return full;
}

/*
 * On the loop: nothing staged, queued or being written, and the output is
 * not down, so a record written now by other means keeps the order.
 */
static int
queue_idle(struct queue *q)
{
	int idle;

	if (q->sn > 0)
		return 0;
	pthread_mutex_lock(&q->mu);
	idle = q->n == 0 && q->down == 0;
	pthread_mutex_unlock(&q->mu);
	return idle;
}

/*
 * Queue one record (the queue owns it); on the loop only.  Returns
 * QUEUE_FULL_COUNT or QUEUE_FULL_BYTES when the queue has just become full
 * (QueueMax records, or QueueMaxBytes): the caller stops reading until
 * resume is called.
 *
 * A lock and a futex wake per record would cost more than the record:
 * records are staged and moved to the queue together once the loop has
 * handled everything one read brought (the kick runs after the current
 * callback), or at once when a batch is ready or the queue may be full.
 * The count at the last flush is an upper bound (the writer only takes
 * records away), so a queue that fills is always noticed here.
 */
int
queue_push(struct queue *q, struct record *r)
{
	if (q->ops->send_now != NULL && queue_idle(q) &&
	    q->ops->send_now(q->arg, r) == 0) {
		stats_add(STAT_RECORDS_WRITTEN, q->stat, 1);
		if (r->spool_id != 0 || r->spill_seq != 0) {
			int was;

			pthread_mutex_lock(&q->mu);
			was = q->wrote_spooled;
			queue_wrote(q, r);
			if (!was && q->wrote_spooled)
				event_active(q->wake, EV_READ, 0);
			pthread_mutex_unlock(&q->mu);
		}
		free(r); /* written already */
		return 0;
	}
	r->next = NULL;
	if (q->stail != NULL)
		q->stail->next = r;
	else
		q->shead = r;
	q->stail = r;
	q->sn++;
	q->sbytes += r->len;
	if (q->sn >= QUEUE_BATCH || q->known_n + q->sn >= q->max ||
	    q->known_bytes + q->sbytes >= q->max_bytes)
		return queue_flush(q);
	if (!q->kicking) {
		q->kicking = 1;
		event_active(q->kick, EV_WRITE, 0);
	}
	return 0;
}

/*
 * The highest spool id this queue's output has written; *seq, the last
 * spilled record it wrote (0: none yet).
 */
uint64_t
queue_written_id(struct queue *q, int64_t *seq)
{
	uint64_t id;

	pthread_mutex_lock(&q->mu);
	id = q->written_id;
	if (seq != NULL)
		*seq = q->written_seq;
	pthread_mutex_unlock(&q->mu);
	return id;
}

/*
 * For an output with start, on the loop (or in its drain at the stop):
 * the cluster stored r.  Records leave the queue from its head, in
 * order, once acknowledged; only then do they count as written.
 */
void
queue_acked(struct queue *q, struct record *r)
{
	struct record *done;

	pthread_mutex_lock(&q->mu);
	r->acked = 1;
	queue_pop_acked(q);
	done = q->done; /* this is the thread that allocated them */
	q->done = NULL;
	q->ndone = 0;
	pthread_mutex_unlock(&q->mu);
	record_free_list(done);
}

/*
 * For an output with start, on the loop: its records were lost on the
 * way (a new producer): the writer hands every record not acknowledged
 * over again, from the head; write() skips the acknowledged ones.
 */
void
queue_rewind(struct queue *q)
{
	pthread_mutex_lock(&q->mu);
	if (q->busy != NULL)
		q->rewind = 1; /* the writer does it when write() returns */
	else
		q->sent = q->head;
	if (q->waiting)
		pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

/* For an output with start, on the loop: it failed for why. */
void
queue_failed(struct queue *q, const char *why)
{
	pthread_mutex_lock(&q->mu);
	queue_down(q, why);
	pthread_mutex_unlock(&q->mu);
}

/*
 * On the loop: say QUEUE_ROOM when the queue is (or falls) below half and
 * its output is up, as after a full queue; the spool then loads what it
 * holds for this output.
 */
void
queue_watch(struct queue *q)
{
	queue_flush(q);
	pthread_mutex_lock(&q->mu);
	q->full = 1;
	if (queue_below_half(q) && q->down == 0)
		event_active(q->wake, EV_READ, 0);
	pthread_mutex_unlock(&q->mu);
}

/* On the loop, after the callback that staged records: queue them. */
static void
queue_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;

	q->kicking = 0;
	queue_flush(q); /* cannot fill the queue: see queue_push() */
}

size_t
queue_queued(struct queue *q, size_t *bytes)
{
	return queue_sample(q, bytes, NULL, NULL);
}

/*
 * The records queued (and their bytes), with fn(arg) called under the
 * lock the writer counts its records written under: what fn reads of
 * those counts is consistent with the number returned.
 */
size_t
queue_sample(struct queue *q, size_t *bytes, void (*fn)(void *), void *arg)
{
	size_t n;

	pthread_mutex_lock(&q->mu);
	n = q->n + q->sn;
	if (bytes != NULL)
		*bytes = q->bytes + q->sbytes;
	if (fn != NULL)
		fn(arg);
	pthread_mutex_unlock(&q->mu);
	return n;
}

/* Ask the thread to flush for at most ms more, then end (on the loop). */
void
queue_stop(struct queue *q, uint64_t ms)
{
	if (q == NULL)
		return;
	queue_flush(q);
	pthread_mutex_lock(&q->mu);
	if (!q->stop) {
		q->stop = 1;
		ts_after_ms(&q->deadline, ms);
	}
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

/*
 * Flush for at most ms (unless queue_stop() came first) and end the
 * thread; a writer stuck in a write is left behind (the caller is about
 * to exit).  An acknowledged output then serves its delivery reports
 * (drain) until the same deadline, so that what is left is what the
 * cluster did not store.
 */
void
queue_join(struct queue *q, uint64_t ms)
{
	struct timespec until;

	if (q == NULL || q->joined || q->detached)
		return;
	queue_stop(q, ms);
	/*
	 * A writer blocked inside a write (a stalled journald, a collector
	 * that stopped reading) may not come back: give it until the
	 * deadline, then leave it behind, since the caller is about to exit.
	 */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	if (pthread_timedjoin_np(q->thread, NULL, &until) != 0) {
		pthread_detach(q->thread);
		q->detached = 1;
		return;
	}
	q->joined = 1;
	if (q->ops->drain != NULL) {
		/* acknowledged outputs: the reports due, until the deadline */
		struct timespec now;
		int64_t ms_left;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ms_left = (int64_t)(q->deadline.tv_sec - now.tv_sec) * 1000 +
		    (q->deadline.tv_nsec - now.tv_nsec) / 1000000;
		q->ops->drain(q->arg, ms_left > 0 ? (uint64_t)ms_left : 0);
	}
}

/*
 * After queue_join(): each record not written, in order, to fn (under the
 * lock, so that a writer left behind does not change the list meanwhile);
 * the records stay the queue's.  Returns how many.
 */
size_t
queue_unwritten(struct queue *q, void (*fn)(void *, const struct record *),
    void *arg)
{
	size_t n = 0;

	pthread_mutex_lock(&q->mu);
	for (const struct record *r = q->head; r != NULL; r = r->next, n++)
		if (fn != NULL)
			fn(arg, r);
	pthread_mutex_unlock(&q->mu);
	return n;
}

/*
 * Flush for at most ms (unless queue_join() came first), stop the thread
 * and free everything.  Returns the number of records not written.
 */
size_t
queue_close(struct queue *q, uint64_t ms)
{
	size_t left;

	if (q == NULL)
		return 0;
	queue_join(q, ms);
	if (q->detached) {
		pthread_mutex_lock(&q->mu);
		left = q->n;
		pthread_mutex_unlock(&q->mu);
		return left;
	}
	left = q->n;
	/* before the records: an output may still point into them */
	q->ops->close(q->arg);
	record_free_list(q->head);
	record_free_list(q->done);
	event_free(q->wake);
	close(q->wakefd);
	event_free(q->kick);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q);
	return left;
}
