/* A small TAP emitter for the unit tests: ok(), is(), done(). */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...)                                                 \
	tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)                                                 \
	tap_is_int((long long)(got), (long long)(want), __FILE__, __LINE__,    \
	    __VA_ARGS__)

static int __attribute__((format(printf, 4, 5), unused))
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %d - ", pass ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!pass) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return pass;
}

#define TAP_VA(fmt)                                                            \
	char msg_[512];                                                        \
	va_list ap_;                                                           \
	va_start(ap_, fmt);                                                    \
	vsnprintf(msg_, sizeof msg_, fmt, ap_);                                \
	va_end(ap_)

static int __attribute__((format(printf, 5, 6), unused))
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *fmt, ...)
{
	int pass = (got == NULL || want == NULL) ? got == want
						 : strcmp(got, want) == 0;
	TAP_VA(fmt);
	tap_ok(pass, file, line, "%s", msg_);
	if (!pass)
		printf("#   got \"%s\"\n#  want \"%s\"\n", got ? got : "(null)",
		    want ? want : "(null)");
	return pass;
}

static int __attribute__((format(printf, 5, 6), unused))
tap_is_int(long long got, long long want, const char *file, int line,
    const char *fmt, ...)
{
	int pass = got == want;
	TAP_VA(fmt);
	tap_ok(pass, file, line, "%s", msg_);
	if (!pass)
		printf("#   got %lld\n#  want %lld\n", got, want);
	return pass;
}

/* Print the plan; the exit status is non-zero if anything failed. */
static int __attribute__((unused)) done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}

#endif
