/*
 * Unit tests of the TLS client setup (daemon/tls.c), shared by the stream
 * and the syslog output: the context's settings, SNI and the name or
 * address check per connection, with real handshakes in memory against
 * a certificate made here.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dcevents.h"
#include "lib/tap.h"

/* A self-signed certificate for right.example and 127.0.0.1, in PEM. */
static int
make_cert(EVP_PKEY **keyp, X509 **certp, const char *pem)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	FILE *f;

	if (key == NULL || x == NULL || name == NULL)
		return -1;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(
	    name, "CN", MBSTRING_ASC, (unsigned char *)"right.example", -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, name);
	X509_NAME_free(name);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
	    "DNS:right.example,IP:127.0.0.1");
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1)
		return -1;
	X509_EXTENSION_free(ext);
	if (X509_sign(x, key, EVP_sha256()) == 0 || (f = fopen(pem, "w")) == NULL)
		return -1;
	PEM_write_X509(f, x);
	fclose(f);
	*keyp = key;
	*certp = x;
	return 0;
}

/*
 * A handshake in memory between a client set up by tls.c for host and a
 * server with the certificate: 1 if it succeeded; *verify is the client's
 * verification result.
 */
static int
handshake_as(SSL_CTX *cctx, SSL_CTX *sctx, const char *host, long *verify,
    char *why, size_t n)
{
	SSL *cl = SSL_new(cctx), *sv = SSL_new(sctx);
	BIO *cb, *sb;
	int done = 0, cdone = 0, sdone = 0;

	why[0] = '\0';
	if (cl == NULL || sv == NULL || BIO_new_bio_pair(&cb, 0, &sb, 0) != 1)
		return -1;
	SSL_set_bio(cl, cb, cb);
	SSL_set_bio(sv, sb, sb);
	SSL_set_connect_state(cl);
	SSL_set_accept_state(sv);
	if (tls_client_setup(cl, host, why, n) == -1) {
		SSL_free(cl);
		SSL_free(sv);
		return -1;
	}
	for (int i = 0; i < 50 && !(cdone && sdone); i++) {
		int r;

		if (!cdone) {
			r = SSL_do_handshake(cl);
			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(cl, r) != SSL_ERROR_WANT_READ)
				break;
		}
		if (!sdone) {
			r = SSL_do_handshake(sv);
			if (r == 1)
				sdone = 1;
			else if (SSL_get_error(sv, r) != SSL_ERROR_WANT_READ)
				break;
		}
	}
	done = cdone && sdone;
	*verify = SSL_get_verify_result(cl);
	if (!done)
		tls_verify_error(cl, why, n);
	ERR_clear_error();
	SSL_free(cl);
	SSL_free(sv);
	return done;
}

static void
test_tls(void)
{
	char pem[] = "/tmp/dcevents-test-cert.XXXXXX", err[200], why[200];
	char longname[300];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	SSL_CTX *cctx, *sctx;
	SSL *ssl;
	long v;
	int fd = mkstemp(pem);
	char *ip;

	if (fd == -1)
		exit(99);
	close(fd);
	ok(tls_client_ctx("/nonexistent/ca.pem", "", err, sizeof err) == NULL &&
		err[0] != '\0',
	    "a CA file that cannot be read: no context, and why (%s)", err);
	if (make_cert(&key, &cert, pem) == -1 ||
	    (cctx = tls_client_ctx(pem, "", err, sizeof err)) == NULL ||
	    (sctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate(sctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(sctx, key) != 1) {
		ok(0, "a test certificate and contexts");
		unlink(pem);
		return;
	}
	is_int(SSL_CTX_get_min_proto_version(cctx), TLS1_2_VERSION,
	    "the context needs TLS 1.2 or newer");
	is_int(SSL_CTX_get_verify_mode(cctx), SSL_VERIFY_PEER,
	    "the context verifies the peer");

	ssl = SSL_new(cctx);
	ok(tls_client_setup(ssl, "127.0.0.1", err, sizeof err) == 0,
	    "an IPv4 address is set up");
	ok(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) == NULL,
	    "an address is not sent as SNI");
	ip = X509_VERIFY_PARAM_get1_ip_asc(SSL_get0_param(ssl));
	is_str(ip != NULL ? ip : "(none)", "127.0.0.1",
	    "the address is checked against the certificate's");
	OPENSSL_free(ip);
	ok(X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0) == NULL,
	    "and no name is");
	SSL_free(ssl);
	ssl = SSL_new(cctx);
	ok(tls_client_setup(ssl, "::1", err, sizeof err) == 0 &&
		SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) == NULL,
	    "an IPv6 address: no SNI either");
	SSL_free(ssl);
	ssl = SSL_new(cctx);
	ok(tls_client_setup(ssl, "right.example", err, sizeof err) == 0,
	    "a name is set up");
	is_str(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name),
	    "right.example", "a name is sent as SNI");
	is_str(X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0),
	    "right.example", "and checked against the certificate");
	SSL_free(ssl);
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	ssl = SSL_new(cctx);
	ok(tls_client_setup(ssl, longname, err, sizeof err) == -1 && err[0],
	    "a name SNI cannot carry fails the setup (%s)", err);
	SSL_free(ssl);
	ssl = SSL_new(cctx);
	ok(tls_client_setup(ssl, "", err, sizeof err) == -1,
	    "an empty name fails (it would turn the name check off)");
	SSL_free(ssl);

	is_int(handshake_as(cctx, sctx, "right.example", &v, why, sizeof why),
	    1, "the right name: handshake done");
	is_int(v, X509_V_OK, "and verified");
	is_int(handshake_as(cctx, sctx, "wrong.example", &v, why, sizeof why),
	    0, "a name the certificate does not have: handshake refused");
	is_int(v, X509_V_ERR_HOSTNAME_MISMATCH, "for the name");
	is_str(why, "TLS certificate verification failed: hostname mismatch",
	    "said in words");
	is_int(handshake_as(cctx, sctx, "127.0.0.1", &v, why, sizeof why), 1,
	    "the right address: handshake done");
	is_int(handshake_as(cctx, sctx, "127.0.0.2", &v, why, sizeof why), 0,
	    "an address the certificate does not have: refused");
	is_int(v, X509_V_ERR_IP_ADDRESS_MISMATCH, "for the address");
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	X509_free(cert);
	EVP_PKEY_free(key);
	unlink(pem);
}

int
main(void)
{
	log_init(0);
	test_tls();
	return done();
}
