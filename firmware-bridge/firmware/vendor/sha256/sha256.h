/* SHA-256 (FIPS 180-4), from libsecp256k1's src/hash.h and src/hash_impl.h (Pieter Wuille, MIT
 * licence: COPYING beside this file), as shipped in the npm package secp256k1 5.0.1.
 * ALTERED for edge-agent's firmware-bridge (marked as the MIT licence allows):
 *  - only SHA-256 kept (no HMAC, no RFC 6979); functions renamed eb_sha256_* and made extern;
 *  - the byte count is a uint64_t, not a size_t (16 bits on AVR: a digest over more than 64 KiB
 *    would have wrapped);
 *  - VERIFY_CHECK removed. */
#ifndef EB_SHA256_H
#define EB_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint32_t s[8];
  uint32_t buf[16]; /* In big endian */
  uint64_t bytes;
} eb_sha256;

void eb_sha256_initialize(eb_sha256 *hash);
void eb_sha256_write(eb_sha256 *hash, const unsigned char *data, size_t len);
void eb_sha256_finalize(eb_sha256 *hash, unsigned char *out32);

#ifdef __cplusplus
}
#endif

#endif
