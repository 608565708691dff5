/*
 * The journal output: one sd_journal_sendv() per record, from the sink's
 * writer thread (the native socket is blocking).  A record is a flat list
 * of "NAME=value" fields, each with its length, so values are passed
 * binary-safe: newlines, quotes and NUL bytes arrive as they were.
 * sd_journal_sendv() drops records silently when journald's socket does
 * not exist, so that case is checked first and treated as an outage.
 * When nothing waits, the loop sends a record itself without blocking
 * (journal_send_now(), the sink's send_now).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <endian.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#define SD_JOURNAL_SUPPRESS_LOCATION /* no CODE_FILE= etc. */
#include <systemd/sd-journal.h>
#endif

#include "dcevents.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

struct journal {
	char error[128];
	int fd; /* journal_send_now()'s socket, the loop's only */
};

void
journal_rec_begin(struct strbuf *b)
{
	uint32_t zero = 0;

	strbuf_reset(b);
	strbuf_add(b, &zero, sizeof zero);
}

/* Append NAME=value; value is n bytes, any bytes. */
void
journal_rec_add(struct strbuf *b, const char *name, const char *v, size_t n)
{
	uint32_t count, len = (uint32_t)(strlen(name) + 1 + n);

	if (b->failed || b->len < sizeof count)
		return;
	memcpy(&count, b->buf, sizeof count);
	if (count == JOURNAL_MAX_FIELDS)
		return;
	count++;
	memcpy(b->buf, &count, sizeof count);
	strbuf_add(b, &len, sizeof len);
	strbuf_addstr(b, name);
	strbuf_add(b, "=", 1);
	strbuf_add(b, v, n);
}

struct rec *
journal_rec_finish(struct strbuf *b)
{
	struct rec *r;

	if (b->failed) {
		log_err("out of memory");
		exit(EXIT_FATAL);
	}
	r = rec_new(b->len);
	memcpy(r->data, b->buf, b->len);
	return r;
}

static void
journal_send_now_close(struct journal *j)
{
	if (j->fd != -1)
		close(j->fd);
	j->fd = -1;
}

#ifdef HAVE_SYSTEMD
/* The record's NAME=value fields, one iovec each; returns their number. */
static uint32_t
rec_fields(const struct rec *r, struct iovec iov[JOURNAL_MAX_FIELDS])
{
	const unsigned char *p = r->data;
	uint32_t count, len;

	memcpy(&count, p, sizeof count);
	p += sizeof count;
	for (uint32_t i = 0; i < count; i++) {
		memcpy(&len, p, sizeof len);
		p += sizeof len;
		iov[i].iov_base = (void *)p;
		iov[i].iov_len = len;
		p += len;
	}
	return count;
}

/*
 * On the loop, when the journal output has nothing waiting: send a record
 * at once, as sd_journal_sendv() would serialize it (NAME=value LF, or for
 * a value holding a newline NAME LF, its length as 64-bit little endian,
 * the value, LF), but on a non-blocking socket of our own.  This saves the
 * writer thread's wake-up, which on a busy machine is most of the latency.
 * Returns 0 when sent; -1 when the caller must queue it (journald busy,
 * gone, or the record too large for a datagram): the writer then does what
 * it always does, in order, since nothing else was waiting.
 */
static int
journal_send_now(void *arg, const struct rec *r)
{
	struct journal *j = arg;
	struct iovec f[JOURNAL_MAX_FIELDS], iov[JOURNAL_MAX_FIELDS * 5];
	uint64_t lens[JOURNAL_MAX_FIELDS];
	struct msghdr mh = { 0 };
	uint32_t count = rec_fields(r, f);
	size_t k = 0;

	for (uint32_t i = 0; i < count; i++) {
		const unsigned char *p = f[i].iov_base, *eq, *nl;
		size_t len = f[i].iov_len;

		eq = memchr(p, '=', len);
		nl = memchr(p, '\n', len);
		if (eq == NULL)
			return -1;
		if (nl == NULL) {
			iov[k++] = f[i];
		} else {
			size_t name = (size_t)(eq - p);

			lens[i] = htole64((uint64_t)(len - name - 1));
			iov[k++] = (struct iovec){ (void *)p, name };
			iov[k++] = (struct iovec){ (void *)"\n", 1 };
			iov[k++] = (struct iovec){ &lens[i], sizeof lens[i] };
			iov[k++] =
			    (struct iovec){ (void *)(eq + 1), len - name - 1 };
		}
		iov[k++] = (struct iovec){ (void *)"\n", 1 };
	}
	mh.msg_iov = iov;
	mh.msg_iovlen = k;
	for (int tries = 0; tries < 2; tries++) {
		if (j->fd == -1) {
			struct sockaddr_un sun = { .sun_family = AF_UNIX };

			snprintf(sun.sun_path, sizeof sun.sun_path, "%s",
			    JOURNAL_SOCKET);
			j->fd = socket(AF_UNIX,
			    SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (j->fd == -1)
				return -1;
			if (connect(j->fd, (struct sockaddr *)&sun,
				sizeof sun) == -1) {
				journal_send_now_close(j);
				return -1;
			}
		}
		if (sendmsg(j->fd, &mh, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != ECONNREFUSED && errno != ENOTCONN)
			return -1; /* EAGAIN, EMSGSIZE, ...: queue it */
		journal_send_now_close(j); /* a new journald: reconnect */
	}
	return -1;
}

static int
journal_write(void *arg, struct rec **recs, size_t n)
{
	struct journal *j = arg;
	struct iovec iov[JOURNAL_MAX_FIELDS];
	size_t done = 0;

	if (access(JOURNAL_SOCKET, F_OK) == -1) {
		snprintf(j->error, sizeof j->error, "%s: %s", JOURNAL_SOCKET,
		    strerror(errno));
		return -1;
	}
	for (; done < n; done++) {
		int r = sd_journal_sendv(iov, (int)rec_fields(recs[done], iov));

		if (r < 0) {
			snprintf(j->error, sizeof j->error, "%s", strerror(-r));
			break;
		}
	}
	return done > 0 ? (int)done : -1;
}
#else
#define journal_send_now NULL

static int
journal_write(void *arg, struct rec **recs, size_t n)
{
	return (int)n;
}
#endif

static void
journal_reset(void *arg)
{
}

static const char *
journal_error(void *arg)
{
	return ((struct journal *)arg)->error;
}

static void
journal_close(void *arg)
{
	journal_send_now_close(arg);
	free(arg);
}

const struct sink_ops journal_ops = {
	.write = journal_write,
	.reset = journal_reset,
	.error = journal_error,
	.close = journal_close,
	.send_now = journal_send_now,
};

void *
journal_open(const struct conf *c)
{
	struct journal *j = calloc(1, sizeof *j);

	if (j == NULL)
		return NULL;
	j->fd = -1;
	if (access(JOURNAL_SOCKET, F_OK) == -1)
		log_warn("no journald socket at %s: journal records wait until "
			 "it appears",
		    JOURNAL_SOCKET);
	return j;
}
