/*
 * Unit tests of the reconnection schedule (daemon/backoff.c): full
 * jitter between the minimum and min * 2^n capped at the maximum, no
 * overflow, and the reset after a connection of BackoffResetSec; and the
 * reconnect policy (backoff_next): what wait follows which end.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "dcevents.h"
#include "lib/tap.h"
#include "lib/testconf.h"

static void
test_backoff(void)
{
	int in_bounds = 1, hist[10] = { 0 };
	uint64_t d, sum = 0;
	const int n = 20000;

	is_int(backoff_delay(0, 1000, 120000, 0xffffffffu), 1000,
	    "first retry waits the minimum");
	for (unsigned a = 1; a < 12; a++) {
		uint64_t cap = 1000ULL << a;

		if (cap > 120000)
			cap = 120000;
		if (backoff_delay(a, 1000, 120000, 0) != 1000 ||
		    backoff_delay(a, 1000, 120000, 0xffffffffu) != cap)
			in_bounds = 0;
	}
	ok(in_bounds, "attempt n spans [min, min(max, min * 2^n)]");
	is_int(backoff_delay(1000, 1000, 120000, 0xffffffffu), 120000,
	    "capped at the maximum, no overflow after many attempts");
	is_int(backoff_delay(7, 5000, 5000, 12345), 5000, "min == max");
	is_int(backoff_delay(3, 5000, 1000, 12345), 5000, "max < min: min");
	is_int(backoff_after_connection(7, 59999, 60000), 7,
	    "a connection shorter than BackoffResetSec keeps the backoff");
	is_int(backoff_after_connection(7, 60000, 60000), 0,
	    "BackoffResetSec connected resets it");

	srandom(42);
	for (int i = 0; i < n; i++) {
		uint32_t rnd = ((uint32_t)random() << 1) ^ (uint32_t)random();

		d = backoff_delay(20, 1000, 11000, rnd);
		if (d < 1000 || d > 11000)
			in_bounds = 0;
		sum += d;
		hist[d == 11000 ? 9 : (d - 1000) / 1000]++;
	}
	ok(in_bounds, "random delays stay in bounds");
	ok(sum / n > 5800 && sum / n < 6200, "mean near the middle (%llu ms)",
	    (unsigned long long)(sum / n));
	in_bounds = 1;
	for (int i = 0; i < 10; i++)
		if (hist[i] < n / 10 * 8 / 10 || hist[i] > n / 10 * 12 / 10)
			in_bounds = 0;
	ok(in_bounds, "spread evenly over ten buckets (full jitter)");
}

static void
test_backoff_policy(void)
{
	struct conf *c = conf_from_text("[Stream]\nBackoffMinSec=1\n"
					"BackoffMaxSec=120\nBackoffResetSec=60\n"
					"AuthBackoffSec=300\n");
	struct backoff b = { 0 };
	struct conn_end e = { .conf = c, .why = "x" };

	e.kind = CONN_FAILED;
	is_int(backoff_next(&b, &e, 0xffffffffu), 1000,
	    "a first failure waits the minimum");
	is_int(backoff_next(&b, &e, 0xffffffffu), 2000, "then twice that");
	is_int(b.attempt, 2, "failures count");
	e.kind = CONN_AUTH;
	e.http_status = 401;
	e.retry_after_ms = 900000;
	is_int(backoff_next(&b, &e, 0), 300000,
	    "401 waits AuthBackoffSec (Retry-After only counts for 429)");
	e.http_status = 429;
	is_int(backoff_next(&b, &e, 0), 900000,
	    "429 waits a longer Retry-After");
	e.retry_after_ms = 1000;
	is_int(backoff_next(&b, &e, 0), 300000,
	    "429 waits AuthBackoffSec over a shorter Retry-After");
	is_int(b.attempt, 2, "authentication failures do not count");
	e.kind = CONN_LOST;
	e.up_ms = 59999;
	is_int(backoff_next(&b, &e, 0xffffffffu), 4000,
	    "a short connection keeps the backoff");
	e.up_ms = 60000;
	is_int(backoff_next(&b, &e, 0xffffffffu), 1000,
	    "BackoffResetSec connected resets it");
	e.reconnect = 1;
	is_int(backoff_next(&b, &e, 0xffffffffu), 0,
	    "closed for new settings: reconnect at once");
	is_int(b.attempt, 0, "without counting a failure");
	conf_free(c);
}

int
main(void)
{
	log_init(0);
	test_backoff();
	test_backoff_policy();
	return done();
}
