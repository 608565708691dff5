/*
 * What the C ceilings (jsendv, sendsyslog, wsread) share: the clocks they
 * report and reading a whole file of records.
 */
#ifndef BENCH_CEILING_H
#define BENCH_CEILING_H

#include <sys/resource.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* CLOCK_REALTIME in nanoseconds (compared with other processes' stamps). */
static inline unsigned long long
real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL +
	    (unsigned long long)ts.tv_nsec;
}

/* This process's CPU time so far, user + system, in microseconds. */
static inline unsigned long long
cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (unsigned long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
	    1000000ULL +
	    (unsigned long long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* The whole of path in memory (*size bytes), or NULL. */
static inline unsigned char *
read_whole(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
	    (buf = malloc((size_t)n)) != NULL) {
		rewind(f);
		if (fread(buf, 1, (size_t)n, f) == (size_t)n)
			*size = (size_t)n;
		else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

#endif
