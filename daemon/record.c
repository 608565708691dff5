/*
 * The daemon's own records: connected, disconnected, authentication
 * failure and the like, each with its MESSAGE_ID (systemd/dcevents.catalog)
 * and fields, through the outputs (journal, syslog).  They also go to
 * stderr, unless stderr is the journal stream already (no duplicates).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "dcevents.h"

static struct output *rec_output;

void
record_init(const struct conf *c, struct output *o)
{
	rec_output = o;
}

/*
 * One record: MESSAGE from fmt, PRIORITY, MESSAGE_ID mid and the extra
 * "NAME=value" fields (a NULL-terminated list, may be NULL).
 */
void
record_daemon(const char *mid, int priority, const char *const *fields,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* Cut short: not inside a character (the text stays UTF-8). */
	if (n >= (int)sizeof msg)
		msg[utf8_complete(msg, sizeof msg - 1)] = '\0';

	if (rec_output != NULL)
		output_daemon(rec_output, mid, priority, fields, msg);
	/* Under systemd stderr is the journal: no duplicates there. */
	if (rec_output != NULL && output_has_journal(rec_output) &&
	    log_is_journal_stream())
		return;
	log_msg(priority, "%s", msg);
}
