/*
 * TLS client setup, the one copy that the stream (conn.c) and the syslog
 * output share.  A context needs TLS 1.2 or newer and verifies the peer's
 * chain against the trust anchors: CAFile/CAPath when set, else the
 * system's.  A connection verifies the server's name: a host name is sent
 * as SNI and must match the certificate (SSL_set1_host); an IP address is
 * not sent as SNI (RFC 6066 forbids it) and must match one of the
 * certificate's IP addresses.  Every step's result is checked: when one
 * fails the connection is not made, so that no handshake ever runs without
 * its name check.
 */
#include "config.h"

#include <arpa/inet.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dcevents.h"

/* Does one of the directories in list (colon-separated) hold a hash link? */
static int
has_hash_links(const char *list)
{
	char path[4096];
	const char *p = list;

	while (*p != '\0') {
		size_t n = strcspn(p, ":");
		DIR *d;
		struct dirent *de;
		int found = 0;

		if (n > 0 && n < sizeof path) {
			memcpy(path, p, n);
			path[n] = '\0';
			if ((d = opendir(path)) != NULL) {
				while (!found && (de = readdir(d)) != NULL) {
					const char *f = de->d_name;

					/* HHHHHHHH.N: the subject's hash */
					found = strspn(f, "0123456789abcdef") == 8 &&
					    f[8] == '.' && f[9] >= '0' &&
					    f[9] <= '9';
				}
				closedir(d);
			}
		}
		if (found)
			return 1;
		p += n;
		if (*p == ':')
			p++;
	}
	return 0;
}

/*
 * The trust anchors for a TLS context: cafile and capath when either is
 * set ("" for none), else the system's.  OpenSSL's default paths read the
 * whole bundle file at once (on Debian the ca-certificates.crt of about 140
 * certificates: 1.4 MiB of memory); the certificate directory, where
 * update-ca-certificates keeps each anchor under its subject hash, has the
 * same anchors, read only when a chain needs one.  So the directory when it
 * has hash links and SSL_CERT_FILE names no bundle; the default paths
 * otherwise.
 */
static int
tls_anchors(SSL_CTX *ctx, const char *cafile, const char *capath)
{
	const char *dir = getenv(X509_get_default_cert_dir_env());

	if (*cafile != '\0' || *capath != '\0')
		return SSL_CTX_load_verify_locations(
		    ctx, *cafile ? cafile : NULL, *capath ? capath : NULL);
	if (dir == NULL)
		dir = X509_get_default_cert_dir();
	if (getenv(X509_get_default_cert_file_env()) == NULL &&
	    has_hash_links(dir))
		return SSL_CTX_load_verify_dir(ctx, dir);
	return SSL_CTX_set_default_verify_paths(ctx);
}

/* OpenSSL's first error, or what, into err. */
static void
tls_error(const char *what, char *err, size_t n)
{
	unsigned long e = ERR_get_error();

	if (e != 0)
		ERR_error_string_n(e, err, n);
	else
		snprintf(err, n, "%s", what);
	ERR_clear_error();
}

/*
 * A client context: TLS 1.2 or newer, the peer verified against cafile
 * and capath ("" for none; both "": the system's anchors).  NULL, with why
 * in err, when it cannot be made or the anchors cannot be loaded.
 */
SSL_CTX *
tls_client_ctx(const char *cafile, const char *capath, char *err, size_t n)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_error("cannot make a TLS context", err, n);
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		tls_error("cannot require TLS 1.2", err, n);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (tls_anchors(ctx, cafile, capath) != 1) {
		tls_error("no trust anchors", err, n);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Is host an IPv4 or IPv6 address (rather than a name)? */
int
tls_ip_literal(const char *host)
{
	unsigned char ip[16];

	return inet_pton(AF_INET, host, ip) == 1 ||
	    inet_pton(AF_INET6, host, ip) == 1;
}

/*
 * The server's name on a new connection: an address is checked against
 * the certificate's IP addresses and not sent as SNI; a name is sent as
 * SNI and checked against its DNS names.  -1, with why in err, if any
 * step fails: the connection must then not be made.
 */
int
tls_client_setup(SSL *ssl, const char *host, char *err, size_t n)
{
	ERR_clear_error();
	if (*host == '\0') {
		/* SSL_set1_host("") would turn the name check off. */
		snprintf(err, n, "no server name to verify");
		return -1;
	}
	if (tls_ip_literal(host)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) !=
		    1) {
			tls_error("cannot verify the address", err, n);
			return -1;
		}
		return 0;
	}
	if (SSL_set_tlsext_host_name(ssl, host) != 1) {
		tls_error("cannot send the name (SNI)", err, n);
		return -1;
	}
	if (SSL_set1_host(ssl, host) != 1) {
		tls_error("cannot verify the name", err, n);
		return -1;
	}
	return 0;
}

/*
 * After a failed handshake: why the peer's certificate was refused, into
 * buf; 0 if verification did not fail.
 */
int
tls_verify_error(const SSL *ssl, char *buf, size_t n)
{
	long v = SSL_get_verify_result(ssl);

	if (v == X509_V_OK)
		return 0;
	snprintf(buf, n, "TLS certificate verification failed: %s",
	    X509_verify_cert_error_string(v));
	return 1;
}
