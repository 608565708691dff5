/*
 * The daemon's reconnect policy: how long to wait after a connection
 * ended (conn.c tells how; main hands the answer to conn_retry()).
 * Failures wait a full-jitter exponential backoff, modelled on gRPC's
 * connection backoff: attempt n waits a uniformly random time between the
 * minimum and min(maximum, minimum * 2^n), and n goes back to zero once a
 * connection has stayed up for BackoffResetSec (or the stream settings
 * changed).  401, 403 and 429 wait AuthBackoffSec (429: Retry-After if
 * longer) and do not count; a connection closed for new settings is made
 * again at once.
 */
#include "config.h"

#include <stdlib.h>

#include <openssl/rand.h>

#include "dcevents.h"

/* The delay before attempt `attempt` (0 = first retry), given 32 random bits. */
uint64_t
backoff_delay(unsigned attempt, uint64_t min_ms, uint64_t max_ms, uint32_t rnd)
{
	uint64_t cap = min_ms;

	if (max_ms < min_ms)
		max_ms = min_ms;
	for (unsigned i = 0; i < attempt && cap < max_ms; i++)
		cap = cap > max_ms / 2 ? max_ms : cap * 2;
	if (cap > max_ms)
		cap = max_ms;
	if (cap == min_ms)
		return min_ms;
	/*
	 * Scale rather than take a modulo, so that the spread stays even;
	 * durations are at most 30 days (< 2^32 ms), so this cannot overflow.
	 */
	return min_ms + (((cap - min_ms + 1) * (uint64_t)rnd) >> 32);
}

/* The attempt count after a connection that stayed up for up_ms. */
unsigned
backoff_after_connection(unsigned attempt, uint64_t up_ms, uint64_t reset_ms)
{
	return up_ms >= reset_ms ? 0 : attempt;
}

/* The wait before the next attempt after e; b counts the failures. */
uint64_t
backoff_next(struct backoff *b, const struct conn_end *e, uint32_t rnd)
{
	const struct conf *c = e->conf;
	uint64_t delay;

	switch (e->kind) {
	case CONN_AUTH:
		delay = c->auth_backoff_ms;
		if (e->http_status == 429 && e->retry_after_ms > delay)
			delay = e->retry_after_ms;
		return delay;
	case CONN_LOST:
		b->attempt = backoff_after_connection(
		    b->attempt, e->up_ms, c->backoff_reset_ms);
		if (e->reconnect)
			return 0;
		break;
	case CONN_FAILED:
		break;
	}
	return backoff_delay(
	    b->attempt++, c->backoff_min_ms, c->backoff_max_ms, rnd);
}

/* 32 random bits for the jitter. */
uint32_t
backoff_random(void)
{
	uint32_t r;

	if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
		r = (uint32_t)random();
	return r;
}
