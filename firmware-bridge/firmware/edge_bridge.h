// edge_bridge: the device side of firmware-bridge/PROTOCOL.md, version 2 (the codec also reads
// and writes version 1 frames, for the vector tests).
// C++11, no heap, no STL, no exceptions: builds for AVR/ESP32 (Arduino) and for Linux (tests).
#ifndef EDGE_BRIDGE_H
#define EDGE_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

namespace edge_bridge {

const uint8_t PROTOCOL_VERSION = 2;
// PROTOCOL.md §2.2: the payload limit of each version; the others follow from it.
const size_t MAX_PAYLOAD = 512;                  // version 2 (version 1: 256)
const size_t MAX_PAYLOAD_V1 = 256;
const size_t MAX_ENCODED = MAX_PAYLOAD + 1 + (MAX_PAYLOAD - 1) / 254;  // 515: COBS of 512 bytes
const size_t MAX_FRAME = MAX_ENCODED + 1;                             // 516 with the 0x00
const uint8_t MAX_SENSORS = 8;
const uint8_t MAX_VALUES = 8;

enum FrameType : uint8_t { HELLO = 1, READING = 2, ACK = 3, ERROR = 4, HEARTBEAT = 5, HELLO_REQUEST = 6, HELLO_ACK = 7, LOST = 8, ATTEST = 9, SET_INTERVAL = 10, INTERVAL_ACK = 11 };
enum HelloState : uint8_t { HELLO_NEW = 0, HELLO_KNOWN = 1, HELLO_REFUSED = 2 };  // PROTOCOL.md §3.7
// PROTOCOL.md §3.11: how the device answered a SET_INTERVAL.
enum IntervalStatus : uint8_t { INTERVAL_APPLIED = 0, INTERVAL_OUT_OF_RANGE = 1, INTERVAL_UNKNOWN_SENSOR = 2, INTERVAL_FIXED = 3 };
// PROTOCOL.md §3.10: the periods any SET_INTERVAL may name (10 ms .. 1 day); a device narrows them per sensor.
const uint32_t INTERVAL_MIN_MS = 10;
const uint32_t INTERVAL_MAX_MS = 86400000;

inline size_t max_payload(uint8_t version) { return version == 1 ? MAX_PAYLOAD_V1 : MAX_PAYLOAD; }

uint32_t crc32c(const uint8_t* data, size_t len);
// COBS encode into out (capacity >= len + 1 + len/254); returns the encoded length.
size_t cobs_encode(const uint8_t* in, size_t len, uint8_t* out);
// COBS decode (in == out is allowed: decoding in place); returns the decoded length, or -1 when
// the input is not valid COBS.
int cobs_decode(const uint8_t* in, size_t len, uint8_t* out, size_t cap);

struct SensorInfo {
  uint8_t index;
  uint32_t period_ms;
  const char* id;   // SenML name, 1..32 bytes
  const char* unit; // 0..8 bytes
};

struct Frame {
  uint8_t version;  // 1 or 2; 0 means PROTOCOL_VERSION
  FrameType type;
  // HELLO (and the session of READING, ACK, HEARTBEAT, HELLO_ACK, LOST in version 2)
  uint32_t session;
  uint8_t uid[8];
  char firmware[33];
  char fw_version[17];
  uint8_t sensor_count;
  struct { uint8_t index; uint32_t period_ms; char id[33]; char unit[9]; } sensors[MAX_SENSORS];
  // READING / ACK / LOST
  uint8_t sensor;
  uint32_t seq;          // READING, ACK; LOST: through_seq
  uint32_t uptime_ms;    // READING, HEARTBEAT, HELLO (version 2), HELLO_ACK (the echo)
  uint8_t value_count;
  float values[MAX_VALUES];
  // ERROR
  uint8_t code;
  char message[65];
  // HEARTBEAT
  uint16_t buffered;
  // HELLO_ACK
  uint8_t state;
  // SET_INTERVAL / INTERVAL_ACK (PROTOCOL.md §3.10, §3.11); `sensor` and `session` as above
  uint16_t request;
  uint32_t period_ms;
  uint8_t status;   // INTERVAL_ACK
  uint32_t min_ms;  // INTERVAL_ACK
  uint32_t max_ms;  // INTERVAL_ACK
  // ATTEST (§3.9): first_seq is `seq`
  uint32_t last_seq;
  uint8_t sig[64];
};

// What a Bridge asks of sensor signing (PROTOCOL.md §3.9), so that a board without a key links
// no crypto: attest.h's Attestor implements it.
class Attestations {
 public:
  virtual ~Attestations() {}
  // A new reading (called once per reading, at sampling, in sequence order).
  virtual void add(uint8_t sensor, uint32_t seq, const float* values, uint8_t count) = 0;
  // The ATTEST frame to send right after reading (sensor, seq) went out, if a signed run ends there.
  virtual bool frame_after(uint8_t sensor, uint32_t seq, uint32_t session, Frame& f) = 0;
  // The gateway settled the sensor's readings up to seq: runs ending there need no resend.
  virtual void acknowledged(uint8_t sensor, uint32_t seq) = 0;
};

// Builds the wire bytes (COBS frame and 0x00) of `f` into out (capacity MAX_FRAME); returns the length, 0 if invalid.
size_t encode_frame(const Frame& f, uint8_t* out);
// Decodes one payload (after COBS). Returns false when the CRC, version, type or body is wrong.
bool decode_payload(const uint8_t* p, size_t len, Frame& f);

// Receives bytes and yields whole frames (resynchronising at 0x00). CAP bounds the frames it
// takes (a device only receives the gateway's small frames: ACK, HELLO_ACK, HELLO_REQUEST).
template <size_t CAP = MAX_ENCODED>
class FrameReader {
 public:
  FrameReader() : len_(0), skipping_(false) {}
  // Feeds one byte; returns true when `out` holds a newly decoded frame.
  bool feed(uint8_t b, Frame& out) {
    if (b != 0) {
      if (skipping_) return false;
      // PROTOCOL.md §2.2: one byte past CAP before a 0x00 is oversize; skip to the next 0x00.
      if (len_ == CAP) { skipping_ = true; len_ = 0; oversize++; return false; }
      buf_[len_++] = b;
      return false;
    }
    bool got = false;
    if (!skipping_ && len_ > 0) {
      int n = cobs_decode(buf_, len_, buf_, CAP);  // in place: no second buffer
      if (n >= 2 && (size_t)n > max_payload(buf_[0]) && (buf_[0] == 1 || buf_[0] == 2)) oversize++;
      else if (n > 0 && decode_payload(buf_, (size_t)n, out)) got = true;
      else bad_frames++;
    }
    skipping_ = false;
    len_ = 0;
    return got;
  }
  uint32_t bad_frames = 0;
  uint32_t oversize = 0;

 private:
  uint8_t buf_[CAP];
  size_t len_;
  bool skipping_;
};

typedef void (*WriteFn)(const uint8_t* data, size_t len, void* ctx);

// The device role (PROTOCOL.md §4): HELLO until a HELLO_ACK accepts the session, readings kept in
// a ring buffer until ACKed and resent, LOST for what an overflow overwrote.
template <size_t RING>
class Bridge {
 public:
  Bridge(WriteFn write, void* ctx, uint32_t session, const uint8_t uid[8], const char* firmware, const char* version,
         const SensorInfo* sensors, uint8_t sensor_count)
      : write_(write), ctx_(ctx), session_(session), firmware_(firmware), version_(version), sensors_(sensors),
        sensor_count_(sensor_count), head_(0), count_(0), last_ack_ms_(0), last_send_ms_(0), last_hello_ms_(0),
        hello_uptime_(0), lost_sent_ms_(0), lost_pending_(0), accepted_(false), refused_(false), attest_(0) {
    for (int i = 0; i < 8; i++) uid_[i] = uid[i];
    for (int i = 0; i < MAX_SENSORS; i++) { next_seq_[i] = 0; lost_through_[i] = 0; period_[i] = 0; min_period_[i] = 0; max_period_[i] = 0; }
    // §3.10: a sensor's period is fixed at what HELLO declares until the sketch allows a range.
    for (uint8_t i = 0; i < sensor_count_ && i < MAX_SENSORS; i++) {
      uint8_t x = sensors_[i].index;
      if (x < MAX_SENSORS) period_[x] = min_period_[x] = max_period_[x] = sensors_[i].period_ms;
    }
  }

  // Lets the gateway change sensor `index`'s period within [min_ms, max_ms] (clamped to §3.10's
  // bounds). The sketch paces its sampling by period_ms(index).
  void allow_interval(uint8_t index, uint32_t min_ms, uint32_t max_ms) {
    if (index >= MAX_SENSORS || min_ms > max_ms) return;
    min_period_[index] = min_ms < INTERVAL_MIN_MS ? INTERVAL_MIN_MS : min_ms;
    max_period_[index] = max_ms > INTERVAL_MAX_MS ? INTERVAL_MAX_MS : max_ms;
  }
  // The sampling period now in force for sensor `index` (0 for an index HELLO does not list).
  uint32_t period_ms(uint8_t index) const { return index < MAX_SENSORS ? period_[index] : 0; }
  // §3.9: sign the readings (an Attestor of attest.h); call before the first sample().
  void attest_with(Attestations* a) { attest_ = a; }

  // Sends HELLO (§3.1). Until a HELLO_ACK accepts the session, readings are only buffered (§4.1).
  void hello(uint32_t now_ms) {
    Frame f = Frame();
    f.type = HELLO;
    f.session = session_;
    f.uptime_ms = now_ms;
    for (int i = 0; i < 8; i++) f.uid[i] = uid_[i];
    copy(f.firmware, firmware_, 32);
    copy(f.fw_version, version_, 16);
    f.sensor_count = sensor_count_;
    for (uint8_t i = 0; i < sensor_count_; i++) {
      f.sensors[i].index = sensors_[i].index;
      f.sensors[i].period_ms = sensors_[i].index < MAX_SENSORS ? period_[sensors_[i].index] : sensors_[i].period_ms;  // the period in force
      copy(f.sensors[i].id, sensors_[i].id, 32);
      copy(f.sensors[i].unit, sensors_[i].unit, 8);
    }
    hello_uptime_ = now_ms;
    last_hello_ms_ = now_ms;
    send(f, now_ms);
    last_ack_ms_ = now_ms;  // the re-HELLO timer counts from the HELLO
  }

  // Records a sample, keeps it until acknowledged, and sends it once the session is accepted.
  void sample(uint8_t sensor, const float* values, uint8_t count, uint32_t now_ms) {
    if (sensor >= MAX_SENSORS || count == 0 || count > MAX_VALUES) return;
    if (count_ == RING) {  // §4.3: overwrite the oldest, and say which readings are gone (LOST)
      Entry& old = ring_[head_];
      lost_through_[old.sensor] = old.seq;
      lost_pending_ |= (uint8_t)(1u << old.sensor);
      lost++;
      head_ = (head_ + 1) % RING;
      count_--;
      if (accepted_) send_lost(old.sensor, now_ms);
    }
    Entry& e = ring_[(head_ + count_) % RING];
    e.sensor = sensor;
    e.seq = next_seq_[sensor]++;  // §3.2: 0 is the first of a session
    e.uptime_ms = now_ms;
    e.count = count;
    for (uint8_t i = 0; i < count; i++) e.values[i] = values[i];
    e.sent_ms = now_ms;
    e.due = !accepted_;  // sampled before the session is accepted: goes out once it is (not a resend)
    e.counted = false;
    count_++;
    if (attest_) attest_->add(sensor, e.seq, values, count);
    if (accepted_) send_entry(e, now_ms);
  }

  // Handles bytes from the gateway: HELLO_ACK accepts (or refuses) the session, ACKs free the ring,
  // HELLO_REQUEST gets a HELLO and the resend of what is unacknowledged.
  void receive(const uint8_t* data, size_t len, uint32_t now_ms) {
    Frame f;
    for (size_t i = 0; i < len; i++) {
      if (!reader_.feed(data[i], f)) continue;
      if (f.type == HELLO_ACK && f.session == session_ && f.uptime_ms == hello_uptime_) on_hello_ack(f.state, now_ms);
      else if (f.type == ACK && accepted_ && f.session == session_) { acknowledge(f.sensor, f.seq); last_ack_ms_ = now_ms; }
      else if (f.type == HELLO_REQUEST) { hello(now_ms); if (accepted_) resend(now_ms); }
      else if (f.type == SET_INTERVAL && accepted_ && f.session == session_) on_set_interval(f, now_ms);
    }
  }

  // Call often. §4.2: readings last sent resend_ms ago go again, oldest first, at most
  // RESEND_BURST per call, so that a long backlog never stops the device from reading ACKs;
  // HELLO every hello_ms until accepted, or after hello_ms without an ACK; heartbeats (§3.5).
  void poll(uint32_t now_ms, uint32_t resend_ms = 1000, uint32_t hello_ms = 5000) {
    if (!accepted_) {
      if (now_ms - last_hello_ms_ >= hello_ms) hello(now_ms);
    } else {
      if ((count_ > 0 || lost_pending_) && now_ms - last_ack_ms_ > hello_ms) {
        hello(now_ms);
        resend(now_ms);
      }
      if (lost_pending_ && now_ms - lost_sent_ms_ >= resend_ms) send_lost_all(now_ms);
      send_due(now_ms, resend_ms);
    }
    if (now_ms - last_send_ms_ > 2000) {
      Frame f = Frame();
      f.type = HEARTBEAT;
      f.session = session_;
      f.uptime_ms = now_ms;
      f.buffered = (uint16_t)(count_ > 0xFFFF ? 0xFFFF : count_);
      send(f, now_ms);
    }
  }

  static const size_t RESEND_BURST = 32;

  size_t buffered() const { return count_; }
  uint32_t session() const { return session_; }
  bool accepted() const { return accepted_; }
  bool refused() const { return refused_; }
  uint32_t resent = 0;           // readings sent again
  uint32_t lost = 0;             // readings overwritten in a full ring
  uint32_t session_changes = 0;  // sessions given up because another boot had used them (§3.7 state 1)
  uint32_t interval_changes = 0; // SET_INTERVALs applied (§3.10)
  uint32_t interval_refusals = 0; // SET_INTERVALs answered with another status than applied

 private:
  struct Entry { uint8_t sensor; uint32_t seq; uint32_t uptime_ms; uint32_t sent_ms; uint8_t count; bool due; bool counted; float values[MAX_VALUES]; };

  static void copy(char* dst, const char* src, size_t max) {
    size_t i = 0;
    for (; src && src[i] && i < max; i++) dst[i] = src[i];
    dst[i] = 0;
  }
  void on_hello_ack(uint8_t state, uint32_t now_ms) {
    if (state == HELLO_REFUSED) { refused_ = true; return; }  // poll() says HELLO again after hello_ms
    refused_ = false;
    if (state == HELLO_KNOWN && !accepted_) {
      // §3.7: the gateway holds readings of this session number from another boot; nothing of
      // this boot was sent under it. Take another number and start over.
      session_++;
      session_changes++;
      hello(now_ms);
      return;
    }
    bool first = !accepted_;
    accepted_ = true;
    last_ack_ms_ = now_ms;
    if (first) resend(now_ms, false);  // what was sampled while waiting goes out now (not a resend)
  }
  // §3.10-§3.11: bounds checked here, on the device's side too; every SET_INTERVAL of the session gets
  // exactly one INTERVAL_ACK (a repeated request is answered again: applying it twice changes nothing).
  void on_set_interval(const Frame& req, uint32_t now_ms) {
    Frame a = Frame();
    a.type = INTERVAL_ACK;
    a.session = session_;
    a.sensor = req.sensor;
    a.request = req.request;
    bool listed = req.sensor < MAX_SENSORS && period_[req.sensor] != 0;
    if (!listed) a.status = INTERVAL_UNKNOWN_SENSOR;
    else if (min_period_[req.sensor] == max_period_[req.sensor] && req.period_ms != period_[req.sensor]) a.status = INTERVAL_FIXED;
    else if (req.period_ms < min_period_[req.sensor] || req.period_ms > max_period_[req.sensor]) a.status = INTERVAL_OUT_OF_RANGE;
    else {
      a.status = INTERVAL_APPLIED;
      if (period_[req.sensor] != req.period_ms) interval_changes++;
      period_[req.sensor] = req.period_ms;
    }
    if (a.status != INTERVAL_APPLIED) interval_refusals++;
    if (listed) { a.period_ms = period_[req.sensor]; a.min_ms = min_period_[req.sensor]; a.max_ms = max_period_[req.sensor]; }
    send(a, now_ms);
  }
  void send(const Frame& f, uint32_t now_ms) {
    uint8_t out[MAX_FRAME];
    size_t n = encode_frame(f, out);
    if (n) write_(out, n, ctx_);
    last_send_ms_ = now_ms;
  }
  void send_entry(Entry& e, uint32_t now_ms) {
    Frame f = Frame();
    f.type = READING;
    f.session = session_;
    f.sensor = e.sensor;
    f.seq = e.seq;
    f.uptime_ms = e.uptime_ms;
    f.value_count = e.count;
    for (uint8_t i = 0; i < e.count; i++) f.values[i] = e.values[i];
    e.sent_ms = now_ms;
    send(f, now_ms);
    // §3.9: an ATTEST follows the last reading it covers, each time that reading is sent.
    if (attest_ && attest_->frame_after(e.sensor, e.seq, session_, f)) send(f, now_ms);
  }
  void send_lost(uint8_t sensor, uint32_t now_ms) {
    Frame f = Frame();
    f.type = LOST;
    f.session = session_;
    f.sensor = sensor;
    f.seq = lost_through_[sensor];
    lost_sent_ms_ = now_ms;
    send(f, now_ms);
  }
  void send_lost_all(uint32_t now_ms) {
    for (uint8_t s = 0; s < MAX_SENSORS; s++) if (lost_pending_ & (1u << s)) send_lost(s, now_ms);
  }
  // Makes every unacknowledged reading due now: poll() sends them, oldest first, in bursts.
  void resend(uint32_t now_ms, bool counted = true) {
    send_lost_all(now_ms);  // §3.8: the holes first, so the readings after them are in order
    for (size_t i = 0; i < count_; i++) { Entry& e = ring_[(head_ + i) % RING]; e.due = true; e.counted = counted; }
    send_due(now_ms, 0xFFFFFFFFu);
  }
  // §4.2: sends up to RESEND_BURST readings, oldest first, that are due (marked, or last sent resend_ms ago).
  void send_due(uint32_t now_ms, uint32_t resend_ms) {
    size_t sent = 0;
    for (size_t i = 0; i < count_ && sent < RESEND_BURST; i++) {
      Entry& e = ring_[(head_ + i) % RING];
      if (!e.due && now_ms - e.sent_ms < resend_ms) continue;
      if (!e.due || e.counted) resent++;
      e.due = false;
      send_entry(e, now_ms);
      sent++;
    }
  }
  // Drops acknowledged entries of `sensor` (serial-number comparison, RFC 1982), and the LOST
  // notice the ACK covers.
  void acknowledge(uint8_t sensor, uint32_t seq) {
    if (sensor >= MAX_SENSORS) return;
    size_t kept = 0;
    for (size_t i = 0; i < count_; i++) {
      Entry& e = ring_[(head_ + i) % RING];
      bool acked = e.sensor == sensor && (int32_t)(seq - e.seq) >= 0;
      if (!acked) ring_[(head_ + kept++) % RING] = e;
    }
    count_ = kept;
    if (attest_) attest_->acknowledged(sensor, seq);
    if ((lost_pending_ & (1u << sensor)) && (int32_t)(seq - lost_through_[sensor]) >= 0) lost_pending_ &= (uint8_t)~(1u << sensor);
  }

  WriteFn write_;
  void* ctx_;
  uint32_t session_;
  uint8_t uid_[8];
  const char* firmware_;
  const char* version_;
  const SensorInfo* sensors_;
  uint8_t sensor_count_;
  Entry ring_[RING];
  size_t head_, count_;
  uint32_t next_seq_[MAX_SENSORS];
  uint32_t lost_through_[MAX_SENSORS];
  uint32_t period_[MAX_SENSORS], min_period_[MAX_SENSORS], max_period_[MAX_SENSORS];  // §3.10, by sensor index
  uint32_t last_ack_ms_, last_send_ms_, last_hello_ms_, hello_uptime_, lost_sent_ms_;
  uint8_t lost_pending_;
  bool accepted_, refused_;
  Attestations* attest_;
  FrameReader<32> reader_;  // the gateway's frames are at most 18 bytes encoded (SET_INTERVAL)
};

}  // namespace edge_bridge

#endif
