/*
 * wsread: the load generator's ceiling.  A websocket client that does the
 * upgrade, then only reads (256 KiB at a time) and discards, until the
 * server closes; no frame parsing, no JSON.  TLS with OpenSSL (the same
 * library and defaults as dcevents), or plain TCP.
 *
 *   wsread HOST PORT tls|plain [CAFILE]
 *
 * Built a second time as wsfloor (bench.am): 16 KiB reads (one TLS record)
 * and linked with every library dcevents loads, so that its peak RSS is
 * the least any client of this stack can have here.
 *
 * Prints one line: bytes=N end_real_ns=T cpu_us=U hwm_kb=K (CLOCK_REALTIME
 * at EOF, this process's user+sys time and its VmHWM).
 */
#include <sys/socket.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ceiling.h"

#ifndef WSREAD_BUF
#define WSREAD_BUF (256 * 1024)
#endif

static SSL *ssl;
static int fd = -1;

static void
die(const char *what)
{
	fprintf(stderr, "wsread: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static long
rd(void *buf, size_t n)
{
	if (ssl != NULL) {
		int r = SSL_read(ssl, buf, (int)n);

		return r > 0 ? r : 0;
	}
	ssize_t r = read(fd, buf, n);
	return r > 0 ? (long)r : 0;
}

static void
wr(const void *buf, size_t n)
{
	if (ssl != NULL ? SSL_write(ssl, buf, (int)n) != (int)n
			: write(fd, buf, n) != (ssize_t)n)
		die("write failed");
}

int
main(int argc, char **argv)
{
	static char buf[WSREAD_BUF];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	unsigned long long end_ns, end_cpu;
	uint64_t total = 0;
	size_t have = 0;
	char req[512];
	long hwm = 0;
	FILE *f;
	long n;
	char *end;

	if (argc < 4)
		die("usage: wsread HOST PORT tls|plain [CAFILE]");
	if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0)
		die("cannot resolve");
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd == -1 || connect(fd, ai->ai_addr, ai->ai_addrlen) == -1)
		die("cannot connect");
	if (strcmp(argv[3], "tls") == 0) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
		if (argc > 4) {
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
			if (SSL_CTX_load_verify_locations(ctx, argv[4], NULL) !=
			    1)
				die("cannot load the CA");
		}
		ssl = SSL_new(ctx);
		SSL_set_tlsext_host_name(ssl, argv[1]);
		SSL_set_fd(ssl, fd);
		if (SSL_connect(ssl) != 1)
			die("TLS handshake failed");
	}
	snprintf(req, sizeof req,
	    "GET /api/audit/v1/events/ HTTP/1.1\r\nHost: %s:%s\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n",
	    argv[1], argv[2]);
	wr(req, strlen(req));
	/* The reply header; whatever follows it is counted. */
	for (;;) {
		if ((n = rd(buf + have, sizeof buf - 1 - have)) == 0)
			die("no upgrade reply");
		have += (size_t)n;
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			break;
	}
	if (strncmp(buf, "HTTP/1.1 101", 12) != 0)
		die("the upgrade was refused");
	total = have - (size_t)(end + 4 - buf);
	while ((n = rd(buf, sizeof buf)) > 0)
		total += (uint64_t)n;
	end_ns = real_ns();
	end_cpu = cpu_us();
	if ((f = fopen("/proc/self/status", "r")) != NULL) {
		while (fgets(req, sizeof req, f) != NULL)
			if (sscanf(req, "VmHWM: %ld", &hwm) == 1)
				break;
		fclose(f);
	}
	printf("bytes=%llu end_real_ns=%llu cpu_us=%llu hwm_kb=%ld\n",
	    (unsigned long long)total, end_ns, end_cpu, hwm);
	return 0;
}
