// edge_bridge: the device side of firmware-bridge/PROTOCOL.md, version 1.
// C++11, no heap, no STL, no exceptions: builds for AVR/ESP32 (Arduino) and for Linux (tests).
#ifndef EDGE_BRIDGE_H
#define EDGE_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

namespace edge_bridge {

const uint8_t PROTOCOL_VERSION = 1;
const size_t MAX_PAYLOAD = 256;                                   // PROTOCOL.md §2.2
const size_t MAX_FRAME = MAX_PAYLOAD + MAX_PAYLOAD / 254 + 2 + 1; // COBS overhead + delimiter
const uint8_t MAX_SENSORS = 8;
const uint8_t MAX_VALUES = 8;

enum FrameType : uint8_t { HELLO = 1, READING = 2, ACK = 3, ERROR = 4, HEARTBEAT = 5, HELLO_REQUEST = 6 };

uint32_t crc32c(const uint8_t* data, size_t len);
// COBS encode into out (capacity >= len + len/254 + 1); returns the encoded length.
size_t cobs_encode(const uint8_t* in, size_t len, uint8_t* out);
// COBS decode; returns the decoded length, or -1 when the input is not valid COBS.
int cobs_decode(const uint8_t* in, size_t len, uint8_t* out, size_t cap);

struct SensorInfo {
  uint8_t index;
  uint32_t period_ms;
  const char* id;   // SenML name, 1..32 bytes
  const char* unit; // 0..8 bytes
};

struct Frame {
  FrameType type;
  // HELLO
  uint32_t session;
  uint8_t uid[8];
  char firmware[33];
  char fw_version[17];
  uint8_t sensor_count;
  struct { uint8_t index; uint32_t period_ms; char id[33]; char unit[9]; } sensors[MAX_SENSORS];
  // READING / ACK
  uint8_t sensor;
  uint32_t seq;
  uint32_t uptime_ms;
  uint8_t value_count;
  float values[MAX_VALUES];
  // ERROR
  uint8_t code;
  char message[65];
  // HEARTBEAT
  uint16_t buffered;
};

// Builds the wire bytes (COBS frame and 0x00) of `f` into out (capacity MAX_FRAME); returns the length, 0 if invalid.
size_t encode_frame(const Frame& f, uint8_t* out);
// Decodes one payload (after COBS). Returns false when the CRC, version, type or body is wrong.
bool decode_payload(const uint8_t* p, size_t len, Frame& f);

// Receives bytes and yields whole frames (resynchronising at 0x00).
class FrameReader {
 public:
  FrameReader() : len_(0), skipping_(false) {}
  // Feeds one byte; returns true when `out` holds a newly decoded frame.
  bool feed(uint8_t b, Frame& out);
  uint32_t bad_frames = 0;
 private:
  uint8_t buf_[MAX_FRAME];
  size_t len_;
  bool skipping_;
};

typedef void (*WriteFn)(const uint8_t* data, size_t len, void* ctx);

// The device role: HELLO, readings kept in a ring buffer until ACKed, resends (PROTOCOL.md §4).
template <size_t RING>
class Bridge {
 public:
  Bridge(WriteFn write, void* ctx, uint32_t session, const uint8_t uid[8], const char* firmware, const char* version,
         const SensorInfo* sensors, uint8_t sensor_count)
      : write_(write), ctx_(ctx), session_(session), firmware_(firmware), version_(version), sensors_(sensors),
        sensor_count_(sensor_count), head_(0), count_(0), last_ack_ms_(0), last_send_ms_(0), overflow_reported_(false) {
    for (int i = 0; i < 8; i++) uid_[i] = uid[i];
    for (int i = 0; i < MAX_SENSORS; i++) next_seq_[i] = 0;
  }

  void hello(uint32_t now_ms) {
    Frame f = Frame();
    f.type = HELLO;
    f.session = session_;
    for (int i = 0; i < 8; i++) f.uid[i] = uid_[i];
    copy(f.firmware, firmware_, 32);
    copy(f.fw_version, version_, 16);
    f.sensor_count = sensor_count_;
    for (uint8_t i = 0; i < sensor_count_; i++) {
      f.sensors[i].index = sensors_[i].index;
      f.sensors[i].period_ms = sensors_[i].period_ms;
      copy(f.sensors[i].id, sensors_[i].id, 32);
      copy(f.sensors[i].unit, sensors_[i].unit, 8);
    }
    send(f, now_ms);
    last_ack_ms_ = now_ms;  // the resend and re-HELLO timers count from the HELLO
  }

  // Records a sample, keeps it until acknowledged, and sends it.
  void sample(uint8_t sensor, const float* values, uint8_t count, uint32_t now_ms) {
    if (sensor >= MAX_SENSORS || count == 0 || count > MAX_VALUES) return;
    if (count_ == RING) { // overwrite the oldest (PROTOCOL.md §4)
      head_ = (head_ + 1) % RING;
      count_--;
      if (!overflow_reported_) { error(2, "ring buffer overflow", now_ms); overflow_reported_ = true; }
    }
    Entry& e = ring_[(head_ + count_) % RING];
    e.sensor = sensor;
    e.seq = next_seq_[sensor]++;
    e.uptime_ms = now_ms;
    e.count = count;
    for (uint8_t i = 0; i < count; i++) e.values[i] = values[i];
    count_++;
    send_entry(e, now_ms);
  }

  // Handles bytes from the gateway: ACKs free the ring, HELLO_REQUEST triggers HELLO + resend.
  void receive(const uint8_t* data, size_t len, uint32_t now_ms) {
    Frame f;
    for (size_t i = 0; i < len; i++) {
      if (!reader_.feed(data[i], f)) continue;
      if (f.type == ACK && f.session == session_) { acknowledge(f.sensor, f.seq); last_ack_ms_ = now_ms; }
      else if (f.type == HELLO_REQUEST) { hello(now_ms); resend(now_ms); }
    }
  }

  // Call often: resends what is unacknowledged after resend_ms, sends HELLO after hello_ms of silence, heartbeats.
  void poll(uint32_t now_ms, uint32_t resend_ms = 1000, uint32_t hello_ms = 5000) {
    if (count_ > 0 && now_ms - last_ack_ms_ > hello_ms) { hello(now_ms); resend(now_ms); last_ack_ms_ = now_ms; }
    else if (count_ > 0 && now_ms - last_ack_ms_ > resend_ms && now_ms - last_send_ms_ > resend_ms) resend(now_ms);
    else if (now_ms - last_send_ms_ > 2000) {
      Frame f = Frame();
      f.type = HEARTBEAT;
      f.uptime_ms = now_ms;
      f.buffered = (uint16_t)count_;
      send(f, now_ms);
    }
  }

  size_t buffered() const { return count_; }
  uint32_t resent = 0;

 private:
  struct Entry { uint8_t sensor; uint32_t seq; uint32_t uptime_ms; uint8_t count; float values[MAX_VALUES]; };

  static void copy(char* dst, const char* src, size_t max) {
    size_t i = 0;
    for (; src && src[i] && i < max; i++) dst[i] = src[i];
    dst[i] = 0;
  }
  void send(const Frame& f, uint32_t now_ms) {
    uint8_t out[MAX_FRAME];
    size_t n = encode_frame(f, out);
    if (n) write_(out, n, ctx_);
    last_send_ms_ = now_ms;
  }
  void send_entry(const Entry& e, uint32_t now_ms) {
    Frame f = Frame();
    f.type = READING;
    f.sensor = e.sensor;
    f.seq = e.seq;
    f.uptime_ms = e.uptime_ms;
    f.value_count = e.count;
    for (uint8_t i = 0; i < e.count; i++) f.values[i] = e.values[i];
    send(f, now_ms);
  }
  void error(uint8_t code, const char* msg, uint32_t now_ms) {
    Frame f = Frame();
    f.type = ERROR;
    f.code = code;
    copy(f.message, msg, 64);
    send(f, now_ms);
  }
  void resend(uint32_t now_ms) {
    for (size_t i = 0; i < count_; i++) { send_entry(ring_[(head_ + i) % RING], now_ms); resent++; }
  }
  // Drops acknowledged entries of `sensor` (serial-number comparison, RFC 1982).
  void acknowledge(uint8_t sensor, uint32_t seq) {
    size_t kept = 0;
    for (size_t i = 0; i < count_; i++) {
      Entry& e = ring_[(head_ + i) % RING];
      bool acked = e.sensor == sensor && (int32_t)(seq - e.seq) >= 0;
      if (!acked) ring_[(head_ + kept++) % RING] = e;
    }
    if (kept < count_) overflow_reported_ = false;
    count_ = kept;
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
  uint32_t last_ack_ms_, last_send_ms_;
  bool overflow_reported_;
  FrameReader reader_;
};

}  // namespace edge_bridge

#endif
