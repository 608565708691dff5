/* For the unit tests: a configuration from a string. */
#ifndef TESTCONF_H
#define TESTCONF_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcevents.h"

/* Load text as a configuration file; exits 99 if it does not load. */
static struct conf *__attribute__((unused)) conf_from_text(const char *text)
{
	char path[] = "/tmp/dcevents-test-conf.XXXXXX";
	int fd = mkstemp(path);
	struct conf *c;

	if (fd == -1 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		exit(99);
	close(fd);
	c = conf_load(path, 1, NULL, 0);
	unlink(path);
	if (c == NULL)
		exit(99);
	return c;
}

#endif
