/*
 * libFuzzer target: the RELP answer parser (what a syslog collector sends
 * back).  A frame parsed lies inside the input, ends with LF, has a
 * lower-case command and a transaction number of at most 9 digits; every
 * shorter prefix of it is incomplete (never malformed, never a frame).
 * The frame written again by relp_frame_add() parses back to the same
 * one; relp_answer_check() accepts it only as "rsp" to its own number
 * with "200", and its reason otherwise is a string within its buffer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct relp_frame f, g;
	int rc;

	/* An exact-size copy, so that reading past the end is caught. */
	memcpy(buf, data, size);
	rc = relp_frame_parse(buf, size, &f);
	if (rc < -1 || rc > 1)
		abort();
	if (rc == 1) {
		size_t cl = strnlen(f.cmd, sizeof f.cmd);

		if (f.size == 0 || f.size > size || buf[f.size - 1] != '\n' ||
		    f.data < buf || f.data + f.len + 1 != buf + f.size ||
		    f.len >= RELP_IN_MAX || f.txnr > 999999999UL || cl == 0 ||
		    cl == sizeof f.cmd)
			abort();
		for (size_t i = 0; i < cl; i++)
			if (f.cmd[i] < 'a' || f.cmd[i] > 'z')
				abort();
		for (size_t n = 0; n < f.size; n++)
			if (relp_frame_parse(buf, n, &g) != 0)
				abort();
		struct strbuf b = { 0 };
		const char *who;
		char why[160];

		relp_frame_add(&b, f.txnr, f.cmd, f.data, f.len);
		if (b.failed || relp_frame_parse(b.buf, b.len, &g) != 1 ||
		    g.size != b.len || g.txnr != f.txnr ||
		    strcmp(g.cmd, f.cmd) != 0 || g.len != f.len ||
		    memcmp(g.data, f.data, f.len) != 0)
			abort();
		free(strbuf_finish(&b));
		memset(why, 'x', sizeof why);
		who = relp_answer_check(&f, f.txnr, why, sizeof why);
		if ((who == NULL) !=
		    (strcmp(f.cmd, "rsp") == 0 && f.len >= 3 &&
			memcmp(f.data, "200", 3) == 0))
			abort();
		if (who != NULL && strnlen(why, sizeof why) == sizeof why)
			abort();
		if (relp_answer_check(
			&f, relp_next_txnr(f.txnr), why, sizeof why) == NULL)
			abort();
	}
	free(buf);
	return 0;
}
