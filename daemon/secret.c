/*
 * Memory for secrets: the API key, the verbatim $DOCKERCLOUD_AUTH, each
 * -o override (one may be Stream.APIKey=) and the upgrade request that
 * carries the Authorization header.  Each allocation is an anonymous
 * mapping of its own, marked MADV_DONTDUMP so that no core dump holds it
 * (not even one that root takes with gdb's gcore, which a non-dumpable
 * process does not prevent), and wiped before it is unmapped.  Whoever
 * builds a secret builds it here, with memcpy and nothing that keeps
 * scratch copies (no stdio, no realloc).  Code that is not ours may
 * still leave copies in the stack below its caller and in the vector
 * registers (OpenSSL's AES-GCM encrypting the upgrade request keeps a
 * block of it in zmm16/zmm17 and on the stack): secret_scrub() wipes
 * both.
 */
#include "config.h"

#include <sys/mman.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcevents.h"

/* len + 1 zeroed bytes (room for a NUL), or NULL. */
char *
secret_alloc(size_t len)
{
	size_t total = sizeof(size_t) + len + 1;
	char *p;

	if (len > SIZE_MAX / 2)
		return NULL;
	p = mmap(NULL, total, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, total, MADV_DONTDUMP) == -1) {
		munmap(p, total);
		return NULL;
	}
	memcpy(p, &total, sizeof total);
	return p + sizeof total;
}

/* A NUL-terminated copy of s[0..len), or NULL. */
char *
secret_dup(const char *s, size_t len)
{
	char *p = secret_alloc(len);

	if (p != NULL)
		memcpy(p, s, len);
	return p;
}

/* Wipe and unmap what secret_alloc() gave; NULL is ignored. */
void
secret_free(char *s)
{
	size_t total;
	char *p;

	if (s == NULL)
		return;
	p = s - sizeof total;
	memcpy(&total, p, sizeof total);
	explicit_bzero(p, total);
	munmap(p, total);
}

/* Wipe the value of the environment variable name in place, then unset it. */
void
secret_unsetenv(const char *name)
{
	char *v = getenv(name);

	if (v != NULL)
		explicit_bzero(v, strlen(v));
	unsetenv(name);
}

#define SCRUB_STACK 16384 /* more than OpenSSL's deepest SSL_write() */

/* Zero the stack below the caller, where finished calls left data. */
static void __attribute__((noinline))
scrub_stack(void)
{
	char pad[SCRUB_STACK];

	explicit_bzero(pad, sizeof pad);
	__asm__ volatile("" : : "r"(pad) : "memory");
}

#if defined(__x86_64__)
/* zmm0-31: VZEROALL clears zmm0-15 whole, zmm16-31 need EVEX. */
static void __attribute__((noinline, target("avx512f")))
scrub_avx512(void)
{
	__asm__ volatile("vzeroall\n\t"
			 "vpxord %%zmm16, %%zmm16, %%zmm16\n\t"
			 "vpxord %%zmm17, %%zmm17, %%zmm17\n\t"
			 "vpxord %%zmm18, %%zmm18, %%zmm18\n\t"
			 "vpxord %%zmm19, %%zmm19, %%zmm19\n\t"
			 "vpxord %%zmm20, %%zmm20, %%zmm20\n\t"
			 "vpxord %%zmm21, %%zmm21, %%zmm21\n\t"
			 "vpxord %%zmm22, %%zmm22, %%zmm22\n\t"
			 "vpxord %%zmm23, %%zmm23, %%zmm23\n\t"
			 "vpxord %%zmm24, %%zmm24, %%zmm24\n\t"
			 "vpxord %%zmm25, %%zmm25, %%zmm25\n\t"
			 "vpxord %%zmm26, %%zmm26, %%zmm26\n\t"
			 "vpxord %%zmm27, %%zmm27, %%zmm27\n\t"
			 "vpxord %%zmm28, %%zmm28, %%zmm28\n\t"
			 "vpxord %%zmm29, %%zmm29, %%zmm29\n\t"
			 "vpxord %%zmm30, %%zmm30, %%zmm30\n\t"
			 "vpxord %%zmm31, %%zmm31, %%zmm31"
			 :
			 :
			 : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
			 "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
			 "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17",
			 "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",
			 "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29",
			 "xmm30", "xmm31");
}

static void __attribute__((noinline, target("avx")))
scrub_avx(void)
{
	__asm__ volatile("vzeroall"
			 :
			 :
			 : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
			 "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
			 "xmm12", "xmm13", "xmm14", "xmm15");
}

static void __attribute__((noinline))
scrub_sse(void)
{
	__asm__ volatile("pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\t"
			 "pxor %%xmm2, %%xmm2\n\tpxor %%xmm3, %%xmm3\n\t"
			 "pxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\t"
			 "pxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7\n\t"
			 "pxor %%xmm8, %%xmm8\n\tpxor %%xmm9, %%xmm9\n\t"
			 "pxor %%xmm10, %%xmm10\n\tpxor %%xmm11, %%xmm11\n\t"
			 "pxor %%xmm12, %%xmm12\n\tpxor %%xmm13, %%xmm13\n\t"
			 "pxor %%xmm14, %%xmm14\n\tpxor %%xmm15, %%xmm15"
			 :
			 :
			 : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
			 "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
			 "xmm12", "xmm13", "xmm14", "xmm15");
}
#endif

/*
 * After a secret went through code that is not ours (memcpy, base64,
 * OpenSSL's ciphers): zero the stack below the caller and the vector
 * registers (x86-64: SSE, AVX or AVX-512, whichever the CPU has; other
 * architectures: the stack only).
 */
void
secret_scrub(void)
{
	scrub_stack();
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		scrub_avx512();
	else if (__builtin_cpu_supports("avx"))
		scrub_avx();
	else
		scrub_sse();
#endif
}

/*
 * For evbuffer_add_reference(): libevent is done with a request in
 * secret memory (the socket or SSL_write() took it): wipe and unmap it,
 * and what SSL_write() (called just before, from the same write
 * callback) left of it in the stack and the registers.
 */
void
secret_ref_done(const void *data, size_t len, void *secret)
{
	secret_free(secret);
	secret_scrub();
}
