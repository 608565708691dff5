/*
 * libFuzzer target: the proxy's answer to CONNECT (proxy_reply_parse) on
 * the input as it came, and the NoProxy list parser and matcher on the
 * input as text.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1), *text, err[300];
	struct noproxy *np;
	struct hs_reply r;
	int rc;

	/* An exact-size copy, so that reading past the end is caught. */
	memcpy(buf, data, size);
	rc = proxy_reply_parse(buf, size, &r);
	if (rc == HS_OK && (r.header_len == 0 || r.header_len > size ||
			       r.header_len > HS_MAX_HEADER ||
			       r.status / 100 != 2))
		abort();
	if (rc == HS_FAILED && r.error == NULL)
		abort();
	if (rc == HS_INCOMPLETE && size > HS_MAX_HEADER)
		abort();
	if (r.status_line != NULL &&
	    (r.status_line != buf || r.status_len > r.header_len))
		abort();
	free(buf);

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if ((np = proxy_noproxy_parse(text, err, sizeof err)) != NULL) {
		(void)proxy_noproxy_match(np, "ws.cloud.docker.com", "443");
		(void)proxy_noproxy_match(np, "10.1.2.3", "443");
		(void)proxy_noproxy_match(np, "2001:db8::1", "8443");
		proxy_noproxy_free(np);
	}
	free(text);
	return 0;
}
