/*
 * The daemon's own records: connected, disconnected, authentication
 * failure and the like, each with its MESSAGE_ID (systemd/dcevents.catalog)
 * and fields, sent natively to the journal when Journal=yes.  They also go
 * to stderr, unless stderr is the journal stream already (no duplicates).
 */
#include "config.h"

#include <sys/uio.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#define SD_JOURNAL_SUPPRESS_LOCATION /* no CODE_FILE= etc. in our records */
#include <systemd/sd-journal.h>
#endif

#include "dcevents.h"

#define RECORD_MAX_FIELDS 16

static struct {
	int journal;
	char identifier[64];
	int facility;
	int warned;
} rec;

void
record_init(const struct conf *c)
{
	rec.journal = c->journal;
	snprintf(rec.identifier, sizeof rec.identifier, "%s", c->identifier);
	rec.facility = c->syslog_facility;
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

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

#ifdef HAVE_SYSTEMD
	if (rec.journal) {
		struct iovec iov[RECORD_MAX_FIELDS + 6];
		char m[1100], p[16], id[48], ident[96], fac[32];
		size_t n = 0;
		int r;

		snprintf(m, sizeof m, "MESSAGE=%s", msg);
		snprintf(p, sizeof p, "PRIORITY=%d", priority);
		snprintf(id, sizeof id, "MESSAGE_ID=%s", mid);
		snprintf(ident, sizeof ident, "SYSLOG_IDENTIFIER=%s",
		    rec.identifier);
		snprintf(fac, sizeof fac, "SYSLOG_FACILITY=%d", rec.facility);
		iov[n++] = (struct iovec){ m, strlen(m) };
		iov[n++] = (struct iovec){ p, strlen(p) };
		iov[n++] = (struct iovec){ id, strlen(id) };
		iov[n++] = (struct iovec){ ident, strlen(ident) };
		iov[n++] = (struct iovec){ fac, strlen(fac) };
		for (size_t i = 0; fields && fields[i] && i < RECORD_MAX_FIELDS;
		     i++)
			iov[n++] = (struct iovec){ (void *)fields[i],
				strlen(fields[i]) };
		if ((r = sd_journal_sendv(iov, (int)n)) < 0 && !rec.warned) {
			rec.warned = 1;
			log_warn(
			    "cannot write to the journal: %s", strerror(-r));
		}
		if (log_is_journal_stream())
			return;
	}
#endif
	log_msg(priority, "%s", msg);
}
