/*
 * The service manager's side channel (sd_notify): READY=1 once the
 * configuration is loaded, RELOADING=1 around SIGHUP, STOPPING=1, STATUS=
 * lines, and WATCHDOG=1 from a loop timer when the unit sets WatchdogSec.
 * Without libsystemd all of it compiles to nothing.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "dcevents.h"

#ifdef HAVE_SYSTEMD
static struct event *watchdog_ev;

void
notify_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

/* MONOTONIC_USEC lets Type=notify-reload units match the reload. */
void
notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
		(unsigned long long)ts.tv_nsec / 1000);
}

void
notify_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
}

void
notify_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", buf);
}

/* Is there a service manager to tell? */
int
notify_enabled(void)
{
	return getenv("NOTIFY_SOCKET") != NULL;
}

static void
notify_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
}

/*
 * Pet the watchdog at half its interval from the event loop itself, so
 * that a stuck loop is what the service manager notices.
 */
int
notify_watchdog_start(struct event_base *base)
{
	uint64_t usec;
	struct timeval tv;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	watchdog_ev = event_new(base, -1, EV_PERSIST, notify_watchdog_cb, NULL);
	if (watchdog_ev == NULL || event_add(watchdog_ev, &tv) == -1) {
		log_err("cannot start the watchdog timer");
		return -1;
	}
	sd_notify(0, "WATCHDOG=1");
	log_debug("watchdog: every %llu ms", (unsigned long long)usec / 1000);
	return 1;
}

void
notify_watchdog_stop(void)
{
	if (watchdog_ev != NULL)
		event_free(watchdog_ev);
	watchdog_ev = NULL;
}
#else
void
notify_ready(const char *status)
{
}
void
notify_reloading(void)
{
}
void
notify_stopping(void)
{
}
void
notify_status(const char *fmt, ...)
{
}
int
notify_enabled(void)
{
	return 0;
}
int
notify_watchdog_start(struct event_base *base)
{
	return 0;
}
void
notify_watchdog_stop(void)
{
}
#endif
