/*
 * The daemon's own diagnostics on stderr.  Under systemd stderr is the
 * journal stream: each line then carries an sd-daemon "<N>" prefix so that
 * journald files it at the right priority.  Elsewhere the line is plain.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcevents.h"

static int log_verbosity;
static int log_prefix;

static const char *const log_names[] = { "emerg", "alert", "crit", "error",
	"warning", "notice", "info", "debug" };

/* Is stderr the stream that $JOURNAL_STREAM ("DEV:INODE") names? */
static int
log_journal_stream(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (e == NULL || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/*
 * Verbosity 0 shows info and above, 1 (-v) debug, 2 (-vv) more debug;
 * -1 nothing at all.
 */
void
log_init(int verbosity)
{
	log_verbosity = verbosity;
	log_prefix = log_journal_stream();
}

void
log_set_verbosity(int verbosity)
{
	log_verbosity = verbosity;
}

/* Is stderr the journal already (so records need not be repeated there)? */
int
log_is_journal_stream(void)
{
	return log_prefix;
}

int
log_get_verbosity(void)
{
	return log_verbosity;
}

void
log_vmsg(int priority, const char *fmt, va_list ap)
{
	char buf[2048];
	int saved = errno;

	if (priority < 0)
		priority = 0;
	if (priority > 7)
		priority = 7;
	if ((priority == 7 && log_verbosity < 1) || log_verbosity < 0)
		return; /* -1: quiet, for the fuzzers */
	vsnprintf(buf, sizeof buf, fmt, ap);
	/* One record per line: a newline inside would start a new record. */
	for (char *p = buf; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (log_prefix)
		fprintf(stderr, "<%d>%s\n", priority, buf);
	else if (priority <= 4 || priority == 7)
		fprintf(stderr, "dcevents: %s: %s\n", log_names[priority], buf);
	else
		fprintf(stderr, "dcevents: %s\n", buf);
	fflush(stderr);
	errno = saved;
}

void
log_msg(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(priority, fmt, ap);
	va_end(ap);
}

/*
 * A broken invariant or no memory left: say so and exit EXIT_FATAL.  The
 * only exit below main; everything that can fail otherwise returns an
 * error to its caller.
 */
void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(3, fmt, ap);
	va_end(ap);
	exit(EXIT_FATAL);
}
