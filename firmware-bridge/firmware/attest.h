// Sensor-signed readings (firmware-bridge/PROTOCOL.md §3.9): a running SHA-256 per sensor over
// `seq u32 | count u8 | values f32…` of its readings, and every `every` readings an Ed25519
// signature (RFC 8032) over the 61-byte attestation message, sent as an ATTEST frame right after
// the last reading it covers. Optional: a Bridge without an Attestor sends no ATTEST and links
// none of this (the Bridge calls it through the Attestations interface of edge_bridge.h).
//
// Crypto is vendored, not written here: vendor/ed25519 (Orson Peters' ref10 port, zlib licence)
// and vendor/sha256 (libsecp256k1's SHA-256, MIT). RAM: the key (96 bytes), per sensor a hash
// state (112 bytes) and per pending ATTEST 114 bytes: about 2 KB for 8 sensors and 8 pending.
#ifndef EDGE_BRIDGE_ATTEST_H
#define EDGE_BRIDGE_ATTEST_H

#include <string.h>

#include "edge_bridge.h"
#include "vendor/sha256/sha256.h"

namespace edge_bridge {

const size_t ATTEST_MESSAGE_BYTES = 61;   // §3.9
const uint16_t ATTEST_MAX_READINGS = 10000;

// The Ed25519 key pair of a seed (RFC 8032 §5.1.5): the 32-byte seed is what the board stores.
struct AttestKey {
  uint8_t public_key[32];
  uint8_t private_key[64];  // orlp's expanded form: clamped scalar | prefix
};
void attest_key_from_seed(const uint8_t seed[32], AttestKey& key);

// msg = "EA-ATT/1" | uid | session u32 | sensor u8 | first_seq u32 | last_seq u32 | digest (§3.9).
void attest_message(const uint8_t uid[8], uint32_t session, uint8_t sensor, uint32_t first_seq, uint32_t last_seq, const uint8_t digest[32], uint8_t out[ATTEST_MESSAGE_BYTES]);
void attest_sign(const AttestKey& key, const uint8_t* msg, size_t len, uint8_t sig[64]);
// Adds one reading to a running digest (§3.9's per-reading bytes, little-endian).
void attest_digest_add(eb_sha256& h, uint32_t seq, const float* values, uint8_t count);

// PENDING: signed runs kept until the gateway ACKs their last reading (110 bytes each). A run
// completed while PENDING are still unacknowledged takes the slot of the oldest one already sent
// (its ATTEST went out at least once), else of the oldest: size it to the readings the ring holds
// divided by `every`, so that a backlog (a gateway restart, a slow line) keeps its signatures.
template <size_t PENDING = 8>
class Attestor : public Attestations {
 public:
  // `every`: readings per signed run (1..10,000; the reference value is 32).
  Attestor(const uint8_t seed[32], const uint8_t uid[8], uint16_t every = 32)
      : every_(every < 1 ? 1 : every > ATTEST_MAX_READINGS ? ATTEST_MAX_READINGS : every) {
    attest_key_from_seed(seed, key_);
    memcpy(uid_, uid, 8);
    memset(runs_, 0, sizeof runs_);
    memset(pending_, 0, sizeof pending_);
  }

  void add(uint8_t sensor, uint32_t seq, const float* values, uint8_t count) override {
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
    // The run is complete: keep its digest until the ATTEST is sent after its last reading (and resent with it).
    size_t slot = PENDING, oldest = PENDING, oldest_sent = PENDING;
    for (size_t i = 0; i < PENDING && slot == PENDING; i++) {
      const Pending& p = pending_[i];
      if (!p.used) { slot = i; break; }
      if (oldest == PENDING || p.order < pending_[oldest].order) oldest = i;
      if (p.signed_ && (oldest_sent == PENDING || p.order < pending_[oldest_sent].order)) oldest_sent = i;
    }
    if (slot == PENDING) { slot = oldest_sent != PENDING ? oldest_sent : oldest; dropped++; }
    Pending& p = pending_[slot];
    p.used = true;
    p.signed_ = false;
    p.order = next_order_++;
    p.sensor = sensor;
    p.first = r.first;
    p.last = seq;
    eb_sha256_finalize(&r.hash, p.digest);
    r.open = false;
  }

  bool frame_after(uint8_t sensor, uint32_t seq, uint32_t session, Frame& f) override {
    for (size_t i = 0; i < PENDING; i++) {
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

  void acknowledged(uint8_t sensor, uint32_t seq) override {
    for (size_t i = 0; i < PENDING; i++) {
      Pending& p = pending_[i];
      if (p.used && p.sensor == sensor && (int32_t)(seq - p.last) >= 0) p.used = false;
    }
  }

  const uint8_t* public_key() const { return key_.public_key; }
  uint32_t signed_runs = 0;   // signatures made
  uint32_t dropped = 0;       // runs whose slot a newer run took before their last reading was acknowledged

 private:
  struct Run { bool open; uint32_t first; uint16_t count; eb_sha256 hash; };
  struct Pending { bool used; bool signed_; uint8_t sensor; uint32_t order, first, last, session; uint8_t digest[32]; uint8_t sig[64]; };
  AttestKey key_;
  uint8_t uid_[8];
  uint16_t every_;
  uint32_t next_order_ = 0;
  Run runs_[MAX_SENSORS];
  Pending pending_[PENDING];
};

}  // namespace edge_bridge

#endif
