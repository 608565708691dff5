/*
 * jsendv: the journal ceiling.  A loop of sd_journal_sendv() with the same
 * fields dcevents sends, into whatever journald listens on
 * /run/systemd/journal/socket (the benchmark's private one).  The records
 * come ready-made in dcevents' own record format (daemon/output_journal.c:
 * a uint32 field count, then per field a uint32 length and NAME=value);
 * their iovecs are built once, before the clock starts.  After N records
 * (cycling through the file) one more, MESSAGE=END, marks the end.
 *
 *   jsendv RECORDS.bin N IDENTIFIER
 *
 * Prints: records=N start_real_ns=T end_real_ns=T cpu_us=U (the loop
 * only; journald may still be storing what it received).
 */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <sys/uio.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-journal.h>

#include "ceiling.h"

struct jrec {
	struct iovec *iov;
	int n;
};

int
main(int argc, char **argv)
{
	unsigned char *buf, *p, *end;
	size_t size = 0;
	struct jrec *recs = NULL;
	size_t nrec = 0, count;
	unsigned long long t0, t1, c0;
	char ident[256];

	if (argc != 4 || (buf = read_whole(argv[1], &size)) == NULL) {
		fprintf(stderr, "usage: jsendv RECORDS.bin N IDENTIFIER\n");
		return 1;
	}
	count = strtoul(argv[2], NULL, 10);
	for (p = buf, end = buf + size; p < end; nrec++) {
		uint32_t n, len;

		memcpy(&n, p, 4);
		p += 4;
		recs = realloc(recs, (nrec + 1) * sizeof *recs);
		recs[nrec].n = (int)n;
		recs[nrec].iov = malloc(n * sizeof(struct iovec));
		for (uint32_t i = 0; i < n; i++) {
			memcpy(&len, p, 4);
			p += 4;
			recs[nrec].iov[i].iov_base = p;
			recs[nrec].iov[i].iov_len = len;
			p += len;
		}
	}
	if (nrec == 0)
		return 1;

	c0 = cpu_us();
	t0 = real_ns();
	for (size_t i = 0; i < count; i++) {
		int r = sd_journal_sendv(recs[i % nrec].iov, recs[i % nrec].n);

		if (r < 0) {
			fprintf(stderr, "jsendv: %s\n", strerror(-r));
			return 1;
		}
	}
	t1 = real_ns();
	snprintf(ident, sizeof ident, "SYSLOG_IDENTIFIER=%s", argv[3]);
	sd_journal_send("MESSAGE=END", "PRIORITY=4", ident,
	    "MESSAGE_ID=f8052b8f3c11438a8b8e76367d667c46", NULL);
	printf("records=%zu start_real_ns=%llu end_real_ns=%llu cpu_us=%llu\n",
	    count, t0, t1, cpu_us() - c0);
	return 0;
}
