/*
 * libFuzzer target: the configuration parser on arbitrary file contents.
 * Properties: no crash or leak; an accepted configuration has only
 * printable UTF-8 in its values (no control character: what -t prints
 * is one line per setting); what -t prints reads back as the same
 * settings; no diagnostic holds a raw control byte or invalid UTF-8.
 */
#include "config.h"

#include <sys/mman.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Text a terminal shows as text: UTF-8, no control but line ends. */
static int
printable(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	struct utf8 u = { 0 };

	for (size_t i = 0; i < n; i++) {
		if ((p[i] < 0x20 && p[i] != '\n') || p[i] == 0x7f)
			return 0;
		if (i + 1 < n && p[i] == 0xc2 && p[i + 1] < 0xa0)
			return 0; /* C1 */
	}
	return utf8_check(&u, p, n) == 0 && u.need == 0;
}

/* Drop the "#" lines: what is left are the settings. */
static void
settings_only(char *s)
{
	char *r = s, *w = s;

	while (*r != '\0') {
		char *nl = strchr(r, '\n');
		size_t n = nl ? (size_t)(nl - r + 1) : strlen(r);

		if (*r != '#') {
			memmove(w, r, n);
			w += n;
		}
		r += n;
	}
	*w = '\0';
}

/* Load path with the diagnostics (debug included) captured and checked. */
static struct conf *
load(const char *path)
{
	char *diag = NULL;
	size_t ndiag = 0;
	FILE *saved = stderr, *f;
	struct conf *c;

	if ((f = open_memstream(&diag, &ndiag)) == NULL)
		abort();
	stderr = f; /* log.c writes there; the sanitizers use fd 2 */
	c = conf_load(path, 1, NULL, 0);
	stderr = saved;
	fclose(f);
	if (!printable(diag, ndiag)) {
		fprintf(stderr, "raw control byte in a diagnostic: %s\n", diag);
		abort();
	}
	free(diag);
	return c;
}

static char *
print(const struct conf *c, size_t *n)
{
	char *out = NULL;
	FILE *f;

	if ((f = open_memstream(&out, n)) == NULL)
		abort();
	conf_print(c, f);
	fclose(f);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1, fd2 = -1;
	char path[64], path2[64], *out, *out2;
	size_t n, n2;
	struct conf *c;

	if (fd == -1) {
		log_init(1); /* every diagnostic, debug too, is checked */
		if ((fd = memfd_create("dcevents-fuzz.conf", 0)) == -1 ||
		    (fd2 = memfd_create("dcevents-fuzz-t.conf", 0)) == -1)
			abort();
	}
	if (ftruncate(fd, 0) == -1 ||
	    pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if ((c = load(path)) == NULL)
		return 0;
	out = print(c, &n);
	conf_free(c);
	if (!printable(out, n)) {
		fprintf(stderr, "-t printed a control byte:\n%s", out);
		abort();
	}

	/* -t's output, read back, prints the same settings. */
	if (ftruncate(fd2, 0) == -1 || pwrite(fd2, out, n, 0) != (ssize_t)n)
		abort();
	snprintf(path2, sizeof path2, "/proc/self/fd/%d", fd2);
	if ((c = load(path2)) == NULL) {
		fprintf(stderr, "-t output does not read back:\n%s", out);
		abort();
	}
	out2 = print(c, &n2);
	conf_free(c);
	settings_only(out);
	settings_only(out2);
	if (strcmp(out, out2) != 0) {
		fprintf(
		    stderr, "-t output reads back as\n%s\nnot\n%s", out2, out);
		abort();
	}
	free(out);
	free(out2);
	return 0;
}
