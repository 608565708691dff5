/*
 * The daemon's own records: connected, disconnected, authentication
 * failure and the like, each with its MESSAGE_ID (systemd/dcevents.catalog),
 * PRIORITY and "NAME=value" fields, as systemd's log_struct() takes them.
 * This is the bottom layer: it knows nothing of the outputs.  main
 * connects a handler (output.c's, which writes them to the journal and
 * syslog); they also go to stderr, unless stderr is the journal stream
 * and the journal had the record already (no duplicates).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "dcevents.h"

static record_handler handler;
static void *handler_arg;

/* Where the records go from now on; NULL: stderr only. */
void
record_set_handler(record_handler h, void *arg)
{
	handler = h;
	handler_arg = arg;
}

/*
 * One record: MESSAGE from fmt, PRIORITY, MESSAGE_ID mid and the extra
 * "NAME=value" fields (a NULL-terminated list, may be NULL).
 */
void
record_daemon(const char *mid, int priority, const char *const *fields,
    const char *fmt, ...)
{
	char msg[RECORD_MESSAGE_MAX];
	va_list ap;
	int n, journal = 0;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* Cut short: not inside a character (the text stays UTF-8). */
	if (n >= (int)sizeof msg)
		msg[utf8_complete(msg, sizeof msg - 1)] = '\0';

	if (handler != NULL)
		journal = handler(handler_arg, mid, priority, fields, msg);
	/* Under systemd stderr is the journal: no duplicates there. */
	if (journal && log_is_journal_stream())
		return;
	log_msg(priority, "%s", msg);
}
