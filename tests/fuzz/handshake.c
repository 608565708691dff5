/* libFuzzer target: the upgrade reply parser, on every prefix length. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct hs_reply r;
	int rc;

	/* An exact-size copy, so that reading past the end is caught. */
	memcpy(buf, data, size);
	rc = handshake_parse(buf, size, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", &r);
	if (rc == HS_OK && (r.header_len == 0 || r.header_len > size ||
			       r.header_len > HS_MAX_HEADER || r.status != 101))
		abort();
	if (rc == HS_FAILED && r.error == NULL)
		abort();
	if (rc == HS_INCOMPLETE && size > HS_MAX_HEADER)
		abort();
	free(buf);
	return 0;
}
