/*
 * Reconnect delays: full-jitter exponential backoff, modelled on gRPC's
 * connection backoff.  Attempt n waits a uniformly random time between the
 * minimum and min(maximum, minimum * 2^n); the caller resets n to zero
 * once a connection has stayed up for BackoffResetSec.
 */
#include "config.h"

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
