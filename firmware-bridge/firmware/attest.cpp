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

Attestor::Attestor(const uint8_t seed[32], const uint8_t uid[8], uint16_t every)
    : every_(every < 1 ? 1 : every > ATTEST_MAX_READINGS ? ATTEST_MAX_READINGS : every) {
  attest_key_from_seed(seed, key_);
  memcpy(uid_, uid, 8);
  memset(runs_, 0, sizeof runs_);
  memset(pending_, 0, sizeof pending_);
}

void Attestor::add(uint8_t sensor, uint32_t seq, const float* values, uint8_t count) {
  if (sensor >= MAX_SENSORS) return;
  Run& r = runs_[sensor];
  if (!r.open) {
    r.open = true;
    r.first = seq;
    r.count = 0;
    eb_sha256_initialize(&r.hash);
  }
  attest_digest_add(r.hash, seq, values, count);
  if (++r.count < every_) return;
  // The run is complete: keep its digest until the ATTEST is sent after its last reading.
  size_t slot = ATTEST_PENDING, oldest = 0;
  for (size_t i = 0; i < ATTEST_PENDING; i++) {
    if (!pending_[i].used) { slot = i; break; }
    if ((int32_t)(pending_[i].last - pending_[oldest].last) < 0) oldest = i;
  }
  if (slot == ATTEST_PENDING) { slot = oldest; dropped++; }  // its readings arrive unattested (the gateway counts them)
  Pending& p = pending_[slot];
  p.used = true;
  p.signed_ = false;
  p.sensor = sensor;
  p.first = r.first;
  p.last = seq;
  eb_sha256_finalize(&r.hash, p.digest);
  r.open = false;
}

bool Attestor::frame_after(uint8_t sensor, uint32_t seq, uint32_t session, Frame& f) {
  for (size_t i = 0; i < ATTEST_PENDING; i++) {
    Pending& p = pending_[i];
    if (!p.used || p.sensor != sensor || p.last != seq) continue;
    // Signed once, when first sent; again only if the session number changed meanwhile (§3.7 state 1).
    if (!p.signed_ || p.session != session) {
      uint8_t msg[ATTEST_MESSAGE_BYTES];
      attest_message(uid_, session, sensor, p.first, p.last, p.digest, msg);
      attest_sign(key_, msg, sizeof msg, p.sig);
      p.signed_ = true;
      p.session = session;
      signed_runs++;
    }
    f = Frame();
    f.type = ATTEST;
    f.session = session;
    f.sensor = sensor;
    f.seq = p.first;
    f.last_seq = p.last;
    memcpy(f.sig, p.sig, 64);
    return true;
  }
  return false;
}

void Attestor::acknowledged(uint8_t sensor, uint32_t seq) {
  for (size_t i = 0; i < ATTEST_PENDING; i++) {
    Pending& p = pending_[i];
    if (p.used && p.sensor == sensor && (int32_t)(seq - p.last) >= 0) p.used = false;
  }
}

}  // namespace edge_bridge
