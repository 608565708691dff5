/*
 * Unit tests of the queue's news for the loop (daemon/queue.c): its
 * writer thread tells the loop that records were written, or that the
 * output went down and came back, while the loop runs or sleeps.  The
 * loops here are made without evthread_use_pthreads(), as a test or a
 * tool might make them: the writer must never touch the event_base (an
 * unlocked event_active() from another thread neither wakes a sleeping
 * loop nor leaves the base sound: its count of active events can go
 * wrong, and event_base_loop() then never returns, spinning in
 * epoll_wait()).  A loop turn that does not end fails through alarm().
 */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "dcevents.h"
#include "lib/tap.h"

static int calls, fail_first, slow_ms, hold_first;
static unsigned long wrote, downs;

/*
 * Takes one record at a time, after slow_ms; the first call may fail,
 * and waits while hold_first is set (the test lets it go).
 */
static int
t_write(void *arg, struct record **recs, size_t n)
{
	while (__atomic_load_n(&hold_first, __ATOMIC_ACQUIRE))
		usleep(1000);
	if (slow_ms > 0)
		usleep((useconds_t)slow_ms * 1000);
	if (__atomic_add_fetch(&calls, 1, __ATOMIC_ACQ_REL) == 1 && fail_first)
		return -1;
	return 1;
}

static void
t_reset(void *arg)
{
}

static const char *
t_error(void *arg)
{
	return "refused (a test)";
}

static void
t_close(void *arg)
{
}

static const struct queue_ops ops = {
	.write = t_write, .reset = t_reset, .error = t_error, .close = t_close
};

static void
notify(void *arg, int what)
{
	if (what == QUEUE_WRITTEN)
		wrote++;
	else if (what == QUEUE_DOWN)
		downs++;
}

static void
on_alarm(int sig)
{
	static const char m[] = "not ok - a loop turn never ended (the loop "
				"spins on a corrupted event_base)\n";

	(void)!write(1, m, sizeof m - 1);
	_exit(1);
}

static void
nop(evutil_socket_t fd, short what, void *arg)
{
}

static struct queue *
start(struct event_base *base)
{
	struct queue *q = queue_new(
	    base, "test", 0, &ops, NULL, 1000000, 1u << 30, notify, NULL);

	if (q == NULL) {
		printf("Bail out! no queue\n");
		exit(99);
	}
	calls = 0;
	wrote = downs = 0;
	return q;
}

static void
push(struct queue *q, uint64_t id)
{
	struct record *r = record_new(1);

	r->data[0] = 'x';
	r->spool_id = id;
	queue_push(q, r);
}

/*
 * Loop turns, each asleep until news or a 3 s timer, until *n is not 0
 * (at most 5 s); the ms that took.
 */
static uint64_t
loop_until(struct event_base *base, const unsigned long *n)
{
	struct event *limit = evtimer_new(base, nop, NULL);
	struct timeval tv = { 3, 0 };
	uint64_t t0 = clock_ms();

	while (*n == 0 && clock_ms() - t0 < 5000) {
		evtimer_add(limit, &tv);
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(limit);
	return clock_ms() - t0;
}

/*
 * A slow output that fails once (down, then back after the 100 ms
 * back-off): the news wakes the loop asleep in epoll_wait(), which only
 * a 3 s timer would wake otherwise.
 */
static void
test_sleeping_loop(void)
{
	struct event_base *base = event_base_new();
	struct queue *q = start(base);
	uint64_t ms;

	fail_first = 1;
	slow_ms = 200;
	push(q, 1);
	ms = loop_until(base, &downs);
	ok(downs == 1 && ms < 2000,
	    "asleep: the output's failure wakes the loop (%" PRIu64 " ms)", ms);
	ms = loop_until(base, &wrote);
	ok(wrote == 1 && ms < 2000,
	    "asleep: its recovery and the record written wake the loop "
	    "(%" PRIu64 " ms)",
	    ms);
	is_int(queue_close(q, 1000), 0, "asleep: nothing left");
	event_base_free(base);
}

/*
 * One record at a time, the loop polled (EVLOOP_NONBLOCK, as the
 * tests' settle() did) until the writer says it was written: the
 * writer's news and the loop's turns overlap, thousands of times.
 */
static void
test_polling_loop(void)
{
	struct event_base *base = event_base_new();
	struct queue *q = start(base);
	uint64_t end, i;

	fail_first = 0;
	slow_ms = 0;
	alarm(20);
	end = clock_ms() + 1000;
	for (i = 0; clock_ms() < end; i++) {
		unsigned long before = wrote;

		push(q, i + 1);
		while (wrote == before && clock_ms() < end + 5000)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	alarm(0);
	ok(wrote == i,
	    "polled: every loop turn ended, each record's news "
	    "came (%" PRIu64 " records)",
	    i);
	is_int((int64_t)queue_written_id(q, NULL), (int64_t)i,
	    "polled: every record written");
	is_int(queue_close(q, 1000), 0, "polled: nothing left");
	event_base_free(base);
}

/*
 * An output that fails and recovers (the 100 ms back-off) before the loop
 * comes by: the failure is still reported, with its reason, and then the
 * recovery; the spool is not told the output is down (it is not).
 */
static void
test_short_failure(void)
{
	struct event_base *base = event_base_new();
	struct queue *q = start(base);
	FILE *f = tmpfile();
	int saved = dup(2);
	char buf[4096];
	size_t n;

	if (f == NULL || saved == -1) {
		printf("Bail out! no temporary file\n");
		exit(99);
	}
	fail_first = 1;
	slow_ms = 0;
	hold_first = 1; /* no failure while the loop below runs */
	fflush(stderr);
	dup2(fileno(f), 2);
	push(q, 1);
	event_base_loop(base, EVLOOP_NONBLOCK); /* the record to the writer */
	__atomic_store_n(&hold_first, 0, __ATOMIC_RELEASE);
	/* it fails, waits (100 ms), writes: the loop never looked */
	for (int i = 0; i < 5000 && __atomic_load_n(&calls, __ATOMIC_ACQUIRE) <
	     2; i++)
		usleep(1000);
	usleep(200 * 1000); /* the writer's state after its write */
	loop_until(base, &wrote);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	ok(strstr(buf, "test output is down: refused (a test)") != NULL,
	    "short failure: reported with its reason");
	ok(strstr(buf, "test output is back") != NULL,
	    "short failure: then the recovery");
	is_int((int64_t)downs, 0, "short failure: not down for the spool");
	is_int(queue_close(q, 1000), 0, "short failure: nothing left");
	event_base_free(base);
}

int
main(void)
{
	signal(SIGALRM, on_alarm);
	test_sleeping_loop();
	test_short_failure();
	test_polling_loop();
	return done();
}
