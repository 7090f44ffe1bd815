// Sensor-signed readings (firmware-bridge/PROTOCOL.md §3.9): a running SHA-256 per sensor over
// `seq u32 | count u8 | values f32…` of its readings, and every `every` readings an Ed25519
// signature (RFC 8032) over the 61-byte attestation message, sent as an ATTEST frame right after
// the last reading it covers. Optional: a Bridge without an Attestor sends no ATTEST and links
// none of this (the Bridge calls it through the Attestations interface of edge_bridge.h).
//
// Crypto is vendored, not written here: vendor/ed25519 (Orson Peters' ref10 port, zlib licence)
// and vendor/sha256 (libsecp256k1's SHA-256, MIT). RAM: the key (96 bytes), per sensor a hash
// state (112 bytes) and per pending ATTEST 110 bytes: about 1.9 KB for 8 sensors and 8 pending.
#ifndef EDGE_BRIDGE_ATTEST_H
#define EDGE_BRIDGE_ATTEST_H

#include "edge_bridge.h"
#include "vendor/sha256/sha256.h"

namespace edge_bridge {

const size_t ATTEST_MESSAGE_BYTES = 61;   // §3.9
const uint16_t ATTEST_MAX_READINGS = 10000;
const size_t ATTEST_PENDING = 8;          // signed runs kept until the gateway ACKs their last reading

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

class Attestor : public Attestations {
 public:
  // `every`: readings per signed run (1..10,000; the reference value is 32).
  Attestor(const uint8_t seed[32], const uint8_t uid[8], uint16_t every = 32);
  void add(uint8_t sensor, uint32_t seq, const float* values, uint8_t count) override;
  bool frame_after(uint8_t sensor, uint32_t seq, uint32_t session, Frame& f) override;
  void acknowledged(uint8_t sensor, uint32_t seq) override;
  const uint8_t* public_key() const { return key_.public_key; }
  uint32_t signed_runs = 0;   // signatures made
  uint32_t dropped = 0;       // runs given up because ATTEST_PENDING were still unacknowledged

 private:
  struct Run { bool open; uint32_t first; uint16_t count; eb_sha256 hash; };
  struct Pending { bool used; bool signed_; uint8_t sensor; uint32_t first, last, session; uint8_t digest[32]; uint8_t sig[64]; };
  AttestKey key_;
  uint8_t uid_[8];
  uint16_t every_;
  Run runs_[MAX_SENSORS];
  Pending pending_[ATTEST_PENDING];
};

}  // namespace edge_bridge

#endif
