#include "attest.h"

#include <string.h>

#include "vendor/ed25519/ed25519.h"

namespace edge_bridge {

void attest_key_from_seed(const uint8_t seed[32], AttestKey& key) { ed25519_create_keypair(key.public_key, key.private_key, seed); }

static void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void attest_message(const uint8_t uid[8], uint32_t session, uint8_t sensor, uint32_t first_seq, uint32_t last_seq, const uint8_t digest[32], uint8_t out[ATTEST_MESSAGE_BYTES]) {
  memcpy(out, "EA-ATT/1", 8);
  memcpy(out + 8, uid, 8);
  put_u32(out + 16, session);
  out[20] = sensor;
  put_u32(out + 21, first_seq);
  put_u32(out + 25, last_seq);
  memcpy(out + 29, digest, 32);
}

void attest_sign(const AttestKey& key, const uint8_t* msg, size_t len, uint8_t sig[64]) { ed25519_sign(sig, msg, len, key.public_key, key.private_key); }

void attest_digest_add(eb_sha256& h, uint32_t seq, const float* values, uint8_t count) {
  uint8_t b[5 + 4 * MAX_VALUES];
  put_u32(b, seq);
  b[4] = count;
  for (uint8_t i = 0; i < count; i++) {
    uint32_t u;
    memcpy(&u, &values[i], 4);
    put_u32(b + 5 + 4 * i, u);
  }
  eb_sha256_write(&h, b, 5 + 4u * count);
}

}  // namespace edge_bridge
