/*
 * sendsyslog: the syslog ceiling.  Sends ready-made RFC 5424 records (the
 * same text dcevents sends; a uint32 length then the record, per record)
 * to a collector on loopback as fast as it takes them: over UDP one
 * datagram per record, as dcevents sends them; over TCP with RFC 6587
 * octet counting, many records per write (256 KiB).  After N records
 * (cycling through the file) one more whose MSG is END marks the end.
 *
 *   sendsyslog RECORDS.bin N udp|tcp PORT
 *
 * Prints: records=N start_real_ns=T end_real_ns=T cpu_us=U.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ceiling.h"

#define OUT (256 * 1024)

static int fd, tcp;
static char out[OUT + 70000];
static size_t used;

static void
flush_out(void)
{
	size_t off = 0;

	while (off < used) {
		ssize_t w = write(fd, out + off, used - off);

		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1) {
			perror("sendsyslog: write");
			exit(1);
		}
		off += (size_t)w;
	}
	used = 0;
}

static void
put(const unsigned char *r, uint32_t len)
{
	if (!tcp) {
		while (send(fd, r, len, 0) == -1) {
			if (errno != EINTR && errno != ENOBUFS) {
				perror("sendsyslog: send");
				exit(1);
			}
		}
		return;
	}
	used += (size_t)sprintf(out + used, "%u ", len);
	memcpy(out + used, r, len);
	used += len;
	if (used >= OUT)
		flush_out();
}

int
main(int argc, char **argv)
{
	unsigned char *buf, *p, **rec = NULL;
	uint32_t *rlen = NULL;
	size_t size = 0;
	size_t nrec = 0, count;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	unsigned long long t0, c0;
	static const char marker[] =
	    "<28>1 2016-03-08T14:02:21.031891Z localhost bench - dcevents - END";

	if (argc != 5 || (buf = read_whole(argv[1], &size)) == NULL) {
		fprintf(stderr, "usage: sendsyslog RECORDS.bin N udp|tcp PORT\n");
		return 1;
	}
	count = strtoul(argv[2], NULL, 10);
	tcp = strcmp(argv[3], "tcp") == 0;
	for (p = buf; p < buf + size; nrec++) {
		rec = realloc(rec, (nrec + 1) * sizeof *rec);
		rlen = realloc(rlen, (nrec + 1) * sizeof *rlen);
		memcpy(&rlen[nrec], p, 4);
		rec[nrec] = p + 4;
		p += 4 + rlen[nrec];
	}
	if (nrec == 0)
		return 1;
	sin.sin_port = htons((uint16_t)atoi(argv[4]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1) {
		perror("sendsyslog: connect");
		return 1;
	}
	c0 = cpu_us();
	t0 = real_ns();
	for (size_t i = 0; i < count; i++)
		put(rec[i % nrec], rlen[i % nrec]);
	put((const unsigned char *)marker, sizeof marker - 1);
	if (tcp)
		flush_out();
	printf("records=%zu start_real_ns=%llu end_real_ns=%llu cpu_us=%llu\n",
	    count, t0, real_ns(), cpu_us() - c0);
	close(fd);
	return 0;
}
