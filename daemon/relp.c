/*
 * RELP (the Reliable Event Logging Protocol of rsyslog's librelp), the
 * protocol without the socket: every frame is "TXNR SP COMMAND SP DATALEN
 * [SP DATA] LF", and the collector answers each of ours with "TXNR rsp
 * DATALEN 200 OK..." once it has taken the record.  Here: our frames, the
 * transaction numbers, the parser of the collector's frames (pure, and
 * fuzzed: tests/fuzz/relp.c) and the check of an answer.  The session
 * (open, a window of records, close) is the syslog output's
 * (output_syslog.c): a record leaves the queue only when its answer came;
 * after a broken session the unanswered ones are sent again, in order.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dcevents.h"

/* The next transaction number: 1 to 999999999, then 1 again. */
unsigned long
relp_next_txnr(unsigned long txnr)
{
	return txnr >= 999999999 ? 1 : txnr + 1;
}

/* Append the frame "TXNR CMD LEN[ DATA]\n". */
void
relp_frame_add(struct strbuf *b, unsigned long txnr, const char *cmd,
    const void *data, size_t len)
{
	strbuf_printf(b, "%lu %s %zu", txnr, cmd, len);
	if (len > 0) {
		strbuf_add(b, " ", 1);
		strbuf_add(b, data, len);
	}
	strbuf_add(b, "\n", 1);
}

/* Digits at p[*i]: 1 and the value, 0 if p ends first, -1 if malformed. */
static int
relp_number(const char *p, size_t n, size_t *i, unsigned long *v)
{
	size_t k = 0;

	for (*v = 0; *i < n && p[*i] >= '0' && p[*i] <= '9'; (*i)++, k++) {
		if (k == 9)
			return -1;
		*v = *v * 10 + (unsigned long)(p[*i] - '0');
	}
	if (*i == n)
		return 0;
	return k == 0 ? -1 : 1;
}

/*
 * One frame at the start of p: 1 (in f), 0 when incomplete, -1 if bad or
 * longer than RELP_IN_MAX.  A prefix of a frame is always incomplete.
 */
int
relp_frame_parse(const char *p, size_t n, struct relp_frame *f)
{
	size_t i = 0, k;
	int r;

	if ((r = relp_number(p, n, &i, &f->txnr)) != 1)
		return r;
	if (p[i++] != ' ')
		return -1;
	for (k = 0; i < n && p[i] != ' '; i++, k++) {
		if (k == sizeof f->cmd - 1 || p[i] < 'a' || p[i] > 'z')
			return -1;
		f->cmd[k] = p[i];
	}
	if (i++ == n)
		return 0;
	if (k == 0)
		return -1;
	f->cmd[k] = '\0';
	if ((r = relp_number(p, n, &i, &f->len)) != 1)
		return r;
	if (f->len > 0 && p[i++] != ' ')
		return -1;
	if (f->len >= RELP_IN_MAX)
		return -1;
	if (n - i < f->len + 1)
		return 0;
	if (p[i + f->len] != '\n')
		return -1;
	f->data = p + i;
	f->size = i + f->len + 1;
	return 1;
}
/*
 * Is f the collector's "200 OK" to transaction txnr?  NULL if so; else
 * who failed ("collector", "RELP"), why in why[n].
 */
const char *
relp_answer_check(
    const struct relp_frame *f, unsigned long txnr, char *why, size_t n)
{
	size_t k;

	if (strcmp(f->cmd, "serverclose") == 0) {
		snprintf(why, n, "session closed (serverclose)");
		return "collector";
	}
	if (strcmp(f->cmd, "rsp") != 0 || f->txnr != txnr) {
		snprintf(why, n, "expected the answer to %lu, got %lu %s", txnr,
		    f->txnr, f->cmd);
		return "RELP";
	}
	if (f->len >= 3 && memcmp(f->data, "200", 3) == 0)
		return NULL;
	/* "500 reason": say it, escaped, up to its first line */
	k = (size_t)snprintf(why, n, "the collector refused: ");
	for (size_t i = 0; i < f->len && f->data[i] != '\n' && k + 5 < n; i++) {
		unsigned char ch = (unsigned char)f->data[i];

		k += (size_t)snprintf(why + k, n - k,
		    ch >= 32 && ch < 127 ? "%c" : "\\x%02x", ch);
	}
	return "RELP";
}
