/* libFuzzer target: the configuration parser on arbitrary file contents. */
#include "config.h"

#include <sys/mman.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dcevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char path[64];
	struct conf *c;

	if (fd == -1) {
		log_init(-1); /* quiet: errors are expected */
		if ((fd = memfd_create("dcevents-fuzz.conf", 0)) == -1)
			abort();
	}
	if (ftruncate(fd, 0) == -1 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if ((c = conf_load(path, 1, NULL, 0)) != NULL) {
		FILE *f = fopen("/dev/null", "w");

		conf_print(c, f);
		fclose(f);
		conf_free(c);
	}
	return 0;
}
