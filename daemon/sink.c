/*
 * The queue between the event loop and a slow output.  Each output (the
 * journal, syslog, stdout) has a writer thread fed by a bounded FIFO of
 * ready-made records, so a stalled journald or collector never blocks the
 * loop, the pings or the other outputs.  A record leaves the queue only
 * once its output took it whole; when an output fails, the thread waits
 * (backoff, 100 ms doubling to 5 s) and retries the same record, so
 * records are neither lost nor reordered; the flush at a stop keeps the
 * same backoff (after one retry at once), and gives up when the next try
 * would come after its deadline.  The loop is told through
 * event_active() when a queue falls below half (to resume reading) and
 * when an output goes down or comes back.
 */
#include "config.h"

#include <sys/uio.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "dcevents.h"

#define SINK_BATCH 256
#define SINK_DONE_MAX (4 * SINK_BATCH)
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000

struct sink {
	const char *name;
	const struct sink_ops *ops;
	void *arg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct rec *head, *tail;
	size_t n; /* records queued (including in flight) */
	size_t bytes; /* their size */
	size_t max; /* QueueMax */
	size_t max_bytes; /* QueueMaxBytes */
	int full; /* reached max; waiting for half */
	int stop; /* flush and exit */
	int stop_retried; /* the one retry at once after the stop was made */
	int waiting; /* the writer sleeps on cv */
	struct timespec deadline; /* for stop */
	int down; /* 0 up, 1 failed, 2 failure reported, 3 back, to report */
	char why[640]; /* the output's error when it went down */
	struct event *wake; /* on the loop: resume reading, report */
	struct event *kick; /* on the loop: wake the writer, once per turn */
	int kicking; /* kick is active */
	/* The loop's side, without the lock: records staged for the queue. */
	struct rec *shead, *stail;
	size_t sn, sbytes;
	size_t known_n, known_bytes; /* n and bytes at the last flush */
	struct rec *done; /* written, to be freed by the loop (or by the
			     writer, past SINK_DONE_MAX of them) */
	size_t ndone;
	void (*resume)(void *);
	void *resume_arg;
};

static void sink_kick_cb(evutil_socket_t, short, void *);

static void
rec_free_list(struct rec *r)
{
	while (r != NULL) {
		struct rec *next = r->next;

		free(r);
		r = next;
	}
}

/* Reading may resume: both the count and the size are below half. */
static int
sink_below_half(const struct sink *s)
{
	return s->n <= s->max / 2 && s->bytes <= s->max_bytes / 2;
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

struct rec *
rec_new(size_t len)
{
	struct rec *r = malloc(sizeof *r + len);

	if (r == NULL) {
		log_err("out of memory");
		exit(EXIT_FATAL);
	}
	r->next = NULL;
	r->len = len;
	return r;
}

/*
 * For writers: up to REC_IOV records with one writev() on a blocking fd; a
 * write cut short finishes the record it stopped in.  Returns how many
 * records were written whole, or -1 (errno set) when none was.
 */
int
rec_writev(int fd, struct rec **recs, size_t n)
{
	struct iovec iov[REC_IOV];
	size_t k = n < REC_IOV ? n : REC_IOV, i = 0;
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
sink_pause(struct sink *s, uint64_t ms)
{
	struct timespec ts;

	ts_after_ms(&ts, ms);
	for (;;) {
		if (s->stop && !s->stop_retried) {
			s->stop_retried = 1;
			return 0;
		}
		if (s->stop && !ts_before(&ts, &s->deadline))
			return 1;
		if (ts_passed(&ts))
			return 0;
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
}

static void *
sink_main(void *arg)
{
	struct sink *s = arg;
	uint64_t retry = RETRY_MIN_MS;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct rec *batch[SINK_BATCH], *r;
		size_t n = 0, done = 0;
		int rc = 0;

		while (s->head == NULL && !s->stop) {
			s->waiting = 1;
			pthread_cond_wait(&s->cv, &s->mu);
			s->waiting = 0;
		}
		if (s->head == NULL || (s->stop && ts_passed(&s->deadline)))
			break;
		for (r = s->head; r != NULL && n < SINK_BATCH; r = r->next)
			batch[n++] = r;
		pthread_mutex_unlock(&s->mu);

		while (done < n &&
		    (rc = s->ops->write(s->arg, batch + done, n - done)) > 0)
			done += (size_t)rc;

		pthread_mutex_lock(&s->mu);
		if (done > 0) {
			/*
			 * Unlinked here and freed by the thread that allocated
			 * them (the loop, at its next flush), so that malloc's
			 * arena is not fought over.
			 */
			s->head = batch[done - 1]->next;
			if (s->head == NULL)
				s->tail = NULL;
			for (size_t i = 0; i < done; i++)
				s->bytes -= batch[i]->len;
			batch[done - 1]->next = s->done;
			s->done = batch[0];
			s->ndone += done;
			if (s->ndone > SINK_DONE_MAX) {
				/* the loop has not come by: free them here */
				r = s->done;
				s->done = NULL;
				s->ndone = 0;
				pthread_mutex_unlock(&s->mu);
				rec_free_list(r);
				pthread_mutex_lock(&s->mu);
			}
		}
		s->n -= done;
		if (rc < 0 && done < n) {
			if (!s->down) {
				/* the first failure is the news, not the retries' */
				snprintf(s->why, sizeof s->why, "%s",
				    s->ops->error(s->arg));
				s->down = 1;
				event_active(s->wake, EV_READ, 0);
			}
			if (s->stop && ts_passed(&s->deadline))
				break;
			pthread_mutex_unlock(&s->mu);
			s->ops->reset(s->arg);
			pthread_mutex_lock(&s->mu);
			if (sink_pause(s, retry))
				break;
			retry =
			    retry * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry * 2;
			continue;
		}
		retry = RETRY_MIN_MS;
		if (s->down == 1)
			s->down = 0; /* recovered before anyone was told */
		else if (s->down == 2)
			s->down = 3; /* to be reported as back */
		if (s->down == 3 || (s->full && sink_below_half(s)))
			event_active(s->wake, EV_READ, 0);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* On the loop: an output recovered, failed, or has room again. */
static void
sink_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sink *s = arg;
	int down, resume = 0;
	size_t n;
	char why[sizeof s->why];

	pthread_mutex_lock(&s->mu);
	down = s->down;
	n = s->n;
	memcpy(why, s->why, sizeof why);
	if (s->full && sink_below_half(s)) {
		s->full = 0;
		resume = 1;
	}
	pthread_mutex_unlock(&s->mu);
	if (down == 1) {
		log_warn(
		    "%s output is down: %s; %zu records wait", s->name, why, n);
		pthread_mutex_lock(&s->mu);
		if (s->down == 1)
			s->down = 2; /* reported */
		pthread_mutex_unlock(&s->mu);
	} else if (down == 3) {
		log_notice("%s output is back; %zu records wait", s->name, n);
		pthread_mutex_lock(&s->mu);
		if (s->down == 3)
			s->down = 0;
		pthread_mutex_unlock(&s->mu);
	}
	if (resume && s->resume != NULL)
		s->resume(s->resume_arg);
}

struct sink *
sink_new(struct event_base *base, const char *name, const struct sink_ops *ops,
    void *arg, size_t max, size_t max_bytes, void (*resume)(void *),
    void *resume_arg)
{
	struct sink *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->name = name;
	s->ops = ops;
	s->arg = arg;
	s->max = max;
	s->max_bytes = max_bytes;
	s->resume = resume;
	s->resume_arg = resume_arg;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	s->wake = event_new(base, -1, 0, sink_wake_cb, s);
	s->kick = event_new(base, -1, 0, sink_kick_cb, s);
	if (s->wake == NULL || s->kick == NULL ||
	    pthread_create(&s->thread, NULL, sink_main, s)) {
		if (s->wake != NULL)
			event_free(s->wake);
		if (s->kick != NULL)
			event_free(s->kick);
		free(s);
		return NULL;
	}
	return s;
}

/*
 * On the loop: move the staged records to the queue (one lock for many
 * records), wake the writer if it sleeps, and free what it has written.
 * Returns SINK_FULL_COUNT or SINK_FULL_BYTES when the queue has just
 * become full.
 */
static int
sink_flush(struct sink *s)
{
	struct rec *done;
	int full = 0;

	if (s->shead == NULL && s->done == NULL)
		return 0;
	pthread_mutex_lock(&s->mu);
	if (s->shead != NULL) {
		if (s->tail != NULL)
			s->tail->next = s->shead;
		else
			s->head = s->shead;
		s->tail = s->stail;
		s->n += s->sn;
		s->bytes += s->sbytes;
		if (!s->full && s->n >= s->max)
			full = s->full = SINK_FULL_COUNT;
		else if (!s->full && s->bytes >= s->max_bytes)
			full = s->full = SINK_FULL_BYTES;
		if (s->waiting)
			pthread_cond_signal(&s->cv);
	}
	s->known_n = s->n;
	s->known_bytes = s->bytes;
	done = s->done;
	s->done = NULL;
	s->ndone = 0;
	pthread_mutex_unlock(&s->mu);
	s->shead = s->stail = NULL;
	s->sn = s->sbytes = 0;
	rec_free_list(done);
	return full;
}

/*
 * On the loop: nothing staged, queued or being written, and the output is
 * not down, so a record written now by other means keeps the order.
 */
static int
sink_idle(struct sink *s)
{
	int idle;

	if (s->sn > 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	idle = s->n == 0 && s->down == 0;
	pthread_mutex_unlock(&s->mu);
	return idle;
}

/*
 * Queue one record (the sink owns it); on the loop only.  Returns
 * SINK_FULL_COUNT or SINK_FULL_BYTES when the queue has just become full
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
sink_push(struct sink *s, struct rec *r)
{
	if (s->ops->send_now != NULL && sink_idle(s) &&
	    s->ops->send_now(s->arg, r) == 0) {
		free(r); /* written already */
		return 0;
	}
	r->next = NULL;
	if (s->stail != NULL)
		s->stail->next = r;
	else
		s->shead = r;
	s->stail = r;
	s->sn++;
	s->sbytes += r->len;
	if (s->sn >= SINK_BATCH || s->known_n + s->sn >= s->max ||
	    s->known_bytes + s->sbytes >= s->max_bytes)
		return sink_flush(s);
	if (!s->kicking) {
		s->kicking = 1;
		event_active(s->kick, EV_WRITE, 0);
	}
	return 0;
}

/* On the loop, after the callback that staged records: queue them. */
static void
sink_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sink *s = arg;

	s->kicking = 0;
	sink_flush(s); /* cannot fill the queue: see sink_push() */
}

size_t
sink_queued(struct sink *s, size_t *bytes)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->n + s->sn;
	if (bytes != NULL)
		*bytes = s->bytes + s->sbytes;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* Ask the thread to flush for at most ms more, then end (on the loop). */
void
sink_stop(struct sink *s, uint64_t ms)
{
	if (s == NULL)
		return;
	sink_flush(s);
	pthread_mutex_lock(&s->mu);
	if (!s->stop) {
		s->stop = 1;
		ts_after_ms(&s->deadline, ms);
	}
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/*
 * Flush for at most ms (unless sink_stop() came first), stop the thread
 * and free everything.  Returns the number of records not written.
 */
size_t
sink_close(struct sink *s, uint64_t ms)
{
	size_t left;

	struct timespec until;

	if (s == NULL)
		return 0;
	sink_stop(s, ms);
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
	if (pthread_timedjoin_np(s->thread, NULL, &until) != 0) {
		pthread_mutex_lock(&s->mu);
		left = s->n;
		pthread_mutex_unlock(&s->mu);
		pthread_detach(s->thread);
		return left;
	}
	left = s->n;
	rec_free_list(s->head);
	rec_free_list(s->done);
	s->ops->close(s->arg);
	event_free(s->wake);
	event_free(s->kick);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	return left;
}
