#include "edge_bridge.h"

#include <string.h>

namespace edge_bridge {

uint32_t crc32c(const uint8_t* data, size_t len) {
  // Bitwise CRC-32C (PROTOCOL.md §2.2): no 1 KiB table, which an AVR cannot spare.
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; i++) {
    crc ^= data[i];
    for (int k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return crc ^ 0xFFFFFFFFu;
}

size_t cobs_encode(const uint8_t* in, size_t len, uint8_t* out) {
  size_t code_at = 0, o = 1;
  uint8_t code = 1;
  for (size_t i = 0; i < len; i++) {
    if (in[i] == 0) {
      out[code_at] = code;
      code_at = o++;
      code = 1;
    } else {
      out[o++] = in[i];
      if (++code == 0xFF) {
        out[code_at] = code;
        if (i == len - 1) return o;  // a full block ending the input gets no further code byte
        code_at = o++;
        code = 1;
      }
    }
  }
  out[code_at] = code;
  return o;
}

int cobs_decode(const uint8_t* in, size_t len, uint8_t* out, size_t cap) {
  size_t i = 0, o = 0;
  while (i < len) {
    uint8_t code = in[i];
    if (code == 0 || i + code > len) return -1;
    for (uint8_t k = 1; k < code; k++) {
      if (in[i + k] == 0 || o >= cap) return -1;
      out[o++] = in[i + k];
    }
    i += code;
    if (code != 0xFF && i < len) {
      if (o >= cap) return -1;
      out[o++] = 0;
    }
  }
  return (int)o;
}

namespace {

struct Writer {
  uint8_t* p;
  size_t n;
  size_t cap;
  bool ok;
  void u8(uint8_t v) { if (n + 1 > cap) { ok = false; return; } p[n++] = v; }
  void u16(uint16_t v) { u8(v & 0xFF); u8(v >> 8); }
  void u32(uint32_t v) { for (int i = 0; i < 4; i++) u8((v >> (8 * i)) & 0xFF); }
  void f32(float v) { uint32_t u; memcpy(&u, &v, 4); u32(u); }
  void str8(const char* s, size_t max) {
    size_t len = strlen(s);
    if (len > max) { ok = false; return; }
    u8((uint8_t)len);
    for (size_t i = 0; i < len; i++) u8((uint8_t)s[i]);
  }
};

struct Reader {
  const uint8_t* p;
  size_t n;
  size_t at;
  bool ok;
  uint8_t u8() { if (at + 1 > n) { ok = false; return 0; } return p[at++]; }
  uint16_t u16() { uint16_t lo = u8(); return (uint16_t)(lo | (u8() << 8)); }
  uint32_t u32() { uint32_t v = 0; for (int i = 0; i < 4; i++) v |= (uint32_t)u8() << (8 * i); return v; }
  float f32() { uint32_t u = u32(); float v; memcpy(&v, &u, 4); return v; }
  void str8(char* dst, size_t max) {
    uint8_t len = u8();
    if (len > max || at + len > n) { ok = false; dst[0] = 0; return; }
    memcpy(dst, p + at, len);
    dst[len] = 0;
    at += len;
  }
};

}  // namespace

size_t encode_frame(const Frame& f, uint8_t* out) {
  const uint8_t version = f.version ? f.version : PROTOCOL_VERSION;
  if (version != 1 && version != 2) return 0;
  const bool v2 = version == 2;
  uint8_t payload[MAX_PAYLOAD];
  Writer w = {payload, 0, max_payload(version) - 4, true};  // PROTOCOL.md §2.2: the crc must fit too
  w.u8(version);
  w.u8(f.type);
  switch (f.type) {
    case HELLO:
      if (f.sensor_count < 1 || f.sensor_count > MAX_SENSORS) return 0;
      w.u32(f.session);
      for (int i = 0; i < 8; i++) w.u8(f.uid[i]);
      if (v2) w.u32(f.uptime_ms);
      w.str8(f.firmware, 32);
      w.str8(f.fw_version, 16);
      w.u8(f.sensor_count);
      for (uint8_t i = 0; i < f.sensor_count; i++) {
        w.u8(f.sensors[i].index);
        w.u32(f.sensors[i].period_ms);
        w.str8(f.sensors[i].id, 32);
        w.str8(f.sensors[i].unit, 8);
      }
      break;
    case READING:
      if (f.value_count < 1 || f.value_count > MAX_VALUES) return 0;
      if (v2) w.u32(f.session);
      w.u8(f.sensor);
      w.u32(f.seq);
      w.u32(f.uptime_ms);
      w.u8(f.value_count);
      for (uint8_t i = 0; i < f.value_count; i++) w.f32(f.values[i]);
      break;
    case ACK:
      w.u32(f.session);
      w.u8(f.sensor);
      w.u32(f.seq);
      break;
    case ERROR:
      w.u8(f.code);
      w.str8(f.message, 64);
      break;
    case HEARTBEAT:
      if (v2) w.u32(f.session);
      w.u32(f.uptime_ms);
      w.u16(f.buffered);
      break;
    case HELLO_REQUEST:
      break;
    case HELLO_ACK:
      if (!v2 || f.state > HELLO_REFUSED) return 0;
      w.u32(f.session);
      w.u32(f.uptime_ms);
      w.u8(f.state);
      break;
    case LOST:
      if (!v2) return 0;
      w.u32(f.session);
      w.u8(f.sensor);
      w.u32(f.seq);
      break;
    case SET_INTERVAL:  // PROTOCOL.md §3.10: a gateway never asks outside the protocol's bounds
      if (!v2 || f.period_ms < INTERVAL_MIN_MS || f.period_ms > INTERVAL_MAX_MS) return 0;
      w.u32(f.session);
      w.u8(f.sensor);
      w.u16(f.request);
      w.u32(f.period_ms);
      break;
    case INTERVAL_ACK:  // §3.11
      if (!v2 || f.status > INTERVAL_FIXED || f.min_ms > f.max_ms) return 0;
      w.u32(f.session);
      w.u8(f.sensor);
      w.u16(f.request);
      w.u8(f.status);
      w.u32(f.period_ms);
      w.u32(f.min_ms);
      w.u32(f.max_ms);
      break;
    case ATTEST:  // §3.9: first_seq (seq) <= last_seq, at most 10,000 readings
      if (!v2 || f.sensor >= MAX_SENSORS || f.last_seq < f.seq || f.last_seq - f.seq >= 10000) return 0;
      w.u32(f.session);
      w.u8(f.sensor);
      w.u32(f.seq);
      w.u32(f.last_seq);
      for (int i = 0; i < 64; i++) w.u8(f.sig[i]);
      break;
    default:
      return 0;
  }
  if (!w.ok) return 0;
  uint32_t crc = crc32c(payload, w.n);
  w.cap = max_payload(version);
  w.u32(crc);
  size_t n = cobs_encode(payload, w.n, out);
  out[n++] = 0;
  return n;
}

bool decode_payload(const uint8_t* p, size_t len, Frame& f) {
  if (len < 6) return false;
  uint32_t crc = (uint32_t)p[len - 4] | ((uint32_t)p[len - 3] << 8) | ((uint32_t)p[len - 2] << 16) | ((uint32_t)p[len - 1] << 24);
  if (crc32c(p, len - 4) != crc || (p[0] != 1 && p[0] != 2) || len > max_payload(p[0])) return false;
  memset(&f, 0, sizeof f);
  const bool v2 = p[0] == 2;
  f.version = p[0];
  Reader r = {p + 2, len - 6, 0, true};
  f.type = (FrameType)p[1];
  switch (f.type) {
    case HELLO:
      f.session = r.u32();
      for (int i = 0; i < 8; i++) f.uid[i] = r.u8();
      if (v2) f.uptime_ms = r.u32();
      r.str8(f.firmware, 32);
      r.str8(f.fw_version, 16);
      f.sensor_count = r.u8();
      if (f.sensor_count < 1 || f.sensor_count > MAX_SENSORS) return false;
      for (uint8_t i = 0; i < f.sensor_count; i++) {
        f.sensors[i].index = r.u8();
        f.sensors[i].period_ms = r.u32();
        r.str8(f.sensors[i].id, 32);
        r.str8(f.sensors[i].unit, 8);
        if (f.sensors[i].id[0] == 0) return false;
      }
      break;
    case READING:
      if (v2) f.session = r.u32();
      f.sensor = r.u8();
      f.seq = r.u32();
      f.uptime_ms = r.u32();
      f.value_count = r.u8();
      if (f.value_count < 1 || f.value_count > MAX_VALUES) return false;
      for (uint8_t i = 0; i < f.value_count; i++) f.values[i] = r.f32();
      break;
    case ACK:
      f.session = r.u32();
      f.sensor = r.u8();
      f.seq = r.u32();
      break;
    case ERROR:
      f.code = r.u8();
      r.str8(f.message, 64);
      break;
    case HEARTBEAT:
      if (v2) f.session = r.u32();
      f.uptime_ms = r.u32();
      f.buffered = r.u16();
      break;
    case HELLO_REQUEST:
      break;
    case HELLO_ACK:
      if (!v2) return false;
      f.session = r.u32();
      f.uptime_ms = r.u32();
      f.state = r.u8();
      if (f.state > HELLO_REFUSED) return false;
      break;
    case LOST:
      if (!v2) return false;
      f.session = r.u32();
      f.sensor = r.u8();
      f.seq = r.u32();
      break;
    case SET_INTERVAL:
      if (!v2) return false;
      f.session = r.u32();
      f.sensor = r.u8();
      f.request = r.u16();
      f.period_ms = r.u32();  // the bounds are the device's to check: it answers out of range (§3.11)
      break;
    case INTERVAL_ACK:
      if (!v2) return false;
      f.session = r.u32();
      f.sensor = r.u8();
      f.request = r.u16();
      f.status = r.u8();
      f.period_ms = r.u32();
      f.min_ms = r.u32();
      f.max_ms = r.u32();
      if (f.status > INTERVAL_FIXED || f.min_ms > f.max_ms || (f.status == INTERVAL_APPLIED && (f.period_ms < f.min_ms || f.period_ms > f.max_ms))) return false;
      break;
    case ATTEST:
      if (!v2) return false;
      f.session = r.u32();
      f.sensor = r.u8();
      f.seq = r.u32();
      f.last_seq = r.u32();
      for (int i = 0; i < 64; i++) f.sig[i] = r.u8();
      if (f.sensor >= MAX_SENSORS || f.last_seq < f.seq || f.last_seq - f.seq >= 10000) return false;
      break;
    default:
      return false;
  }
  return r.ok && r.at == r.n;
}

}  // namespace edge_bridge
