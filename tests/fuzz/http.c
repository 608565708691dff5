/*
 * libFuzzer target: the REST lookups' HTTP response parser (http.c):
 * status line, header lines, Content-Length, chunked bodies, the bounds,
 * each input parsed as it arrives and as if the connection had ended.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define MAX 4096

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	char *body = malloc(MAX);
	struct http_response r;

	/* An exact-size copy, so that reading past the end is caught. */
	memcpy(buf, data, size);
	for (int eof = 0; eof < 2; eof++) {
		int rc = http_response_parse(buf, size, eof, MAX, body, &r);

		if (rc == HS_OK &&
		    (r.total > size || r.body_len > MAX || r.status < 200 ||
			r.status > 999))
			abort();
		if (rc == HS_FAILED && r.error == NULL)
			abort();
		if (rc == HS_INCOMPLETE && eof)
			abort();
	}
	free(body);
	free(buf);
	return 0;
}
