// Vector tool for the cross-language tests: the C++ library encodes a frame described on the
// command line, or decodes a hex frame, in the same line format both ways:
//   vectors encode 'type=reading sensor=0 seq=1 uptime=1000 values=21.5'   -> hex of the frame
//   vectors decode 00020001...00                                          -> the description line
//   vectors crc HEX                                                      -> crc32c as 8 hex digits
//   vectors bridge-check -                                               -> 'ok' if the device logic behaves
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../firmware/edge_bridge.h"

using namespace edge_bridge;

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

static size_t from_hex(const char* s, uint8_t* out, size_t cap) {
  size_t n = 0;
  for (; s[0] && s[1] && n < cap; s += 2) out[n++] = (uint8_t)(hexval(s[0]) * 16 + hexval(s[1]));
  return n;
}

static void put_str(char* dst, const char* v, size_t max) {
  strncpy(dst, v, max);
  dst[max] = 0;
}

static int encode(char* desc) {
  Frame f;
  memset(&f, 0, sizeof f);
  for (char* tok = strtok(desc, " "); tok; tok = strtok(NULL, " ")) {
    char* eq = strchr(tok, '=');
    if (!eq) return 2;
    *eq = 0;
    const char* k = tok;
    const char* v = eq + 1;
    if (!strcmp(k, "type")) {
      const char* names[] = {"", "hello", "reading", "ack", "error", "heartbeat", "hello-request"};
      for (int i = 1; i <= 6; i++) if (!strcmp(v, names[i])) f.type = (FrameType)i;
    } else if (!strcmp(k, "session")) f.session = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "uid")) from_hex(v, f.uid, 8);
    else if (!strcmp(k, "firmware")) put_str(f.firmware, v, 32);
    else if (!strcmp(k, "fw_version")) put_str(f.fw_version, v, 16);
    else if (!strcmp(k, "sensor_info")) {  // index:period:id:unit
      char id[64] = "", unit[16] = "";
      unsigned idx = 0;
      unsigned long period = 0;
      sscanf(v, "%u:%lu:%63[^:]:%15s", &idx, &period, id, unit);
      int i = f.sensor_count++;
      f.sensors[i].index = (uint8_t)idx;
      f.sensors[i].period_ms = (uint32_t)period;
      put_str(f.sensors[i].id, id, 32);
      put_str(f.sensors[i].unit, unit, 8);
    } else if (!strcmp(k, "sensor")) f.sensor = (uint8_t)atoi(v);
    else if (!strcmp(k, "seq")) f.seq = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "uptime")) f.uptime_ms = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "values")) {
      char* end = (char*)v;
      while (*end && f.value_count < MAX_VALUES) {
        f.values[f.value_count++] = strtof(end, &end);
        if (*end == ',') end++;
      }
    } else if (!strcmp(k, "code")) f.code = (uint8_t)atoi(v);
    else if (!strcmp(k, "message")) put_str(f.message, v, 64);
    else if (!strcmp(k, "buffered")) f.buffered = (uint16_t)atoi(v);
    else return 2;
  }
  uint8_t out[MAX_FRAME];
  size_t n = encode_frame(f, out);
  if (!n) return 1;
  for (size_t i = 0; i < n; i++) printf("%02x", out[i]);
  printf("\n");
  return 0;
}

static int decode(const char* hex) {
  uint8_t raw[MAX_FRAME * 2];
  size_t n = from_hex(hex, raw, sizeof raw);
  FrameReader reader;
  Frame f;
  for (size_t i = 0; i < n; i++) {
    if (!reader.feed(raw[i], f)) continue;
    switch (f.type) {
      case HELLO:
        printf("type=hello session=%lu uid=", (unsigned long)f.session);
        for (int k = 0; k < 8; k++) printf("%02x", f.uid[k]);
        printf(" firmware=%s fw_version=%s", f.firmware, f.fw_version);
        for (int k = 0; k < f.sensor_count; k++)
          printf(" sensor_info=%u:%lu:%s:%s", f.sensors[k].index, (unsigned long)f.sensors[k].period_ms, f.sensors[k].id, f.sensors[k].unit);
        break;
      case READING:
        printf("type=reading sensor=%u seq=%lu uptime=%lu values=", f.sensor, (unsigned long)f.seq, (unsigned long)f.uptime_ms);
        for (int k = 0; k < f.value_count; k++) printf(k ? ",%.9g" : "%.9g", (double)f.values[k]);
        break;
      case ACK: printf("type=ack session=%lu sensor=%u seq=%lu", (unsigned long)f.session, f.sensor, (unsigned long)f.seq); break;
      case ERROR: printf("type=error code=%u message=%s", f.code, f.message); break;
      case HEARTBEAT: printf("type=heartbeat uptime=%lu buffered=%u", (unsigned long)f.uptime_ms, f.buffered); break;
      case HELLO_REQUEST: printf("type=hello-request"); break;
    }
    printf("\n");
  }
  if (reader.bad_frames) printf("bad_frames=%lu\n", (unsigned long)reader.bad_frames);
  return 0;
}

// Device logic check: what the Bridge writes is decoded back and counted by type.
static uint8_t wire[65536];
static size_t wire_len = 0;
static void capture(const uint8_t* data, size_t len, void*) {
  if (wire_len + len <= sizeof wire) { memcpy(wire + wire_len, data, len); wire_len += len; }
}
static int count_frames(FrameType type) {
  FrameReader r;
  Frame f;
  int n = 0;
  for (size_t i = 0; i < wire_len; i++) if (r.feed(wire[i], f) && f.type == type) n++;
  return n;
}
#define CHECK(cond) do { if (!(cond)) { printf("failed: %s (line %d)\n", #cond, __LINE__); return 1; } } while (0)

static int bridge_check() {
  const uint8_t uid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const SensorInfo sensors[] = {{0, 100, "tank/level", "m"}, {1, 100, "tank/temp", "Cel"}};
  Bridge<4> b(capture, NULL, 77, uid, "check", "0.1", sensors, 2);
  b.hello(0);
  CHECK(count_frames(HELLO) == 1);
  float v = 1.5f;
  for (int i = 0; i < 3; i++) b.sample(0, &v, 1, 10 + i);
  b.sample(1, &v, 1, 20);
  CHECK(b.buffered() == 4 && count_frames(READING) == 4);
  // ACK sensor 0 up to seq 1: readings 0 and 1 of sensor 0 are dropped.
  Frame ack = Frame();
  ack.type = ACK; ack.session = 77; ack.sensor = 0; ack.seq = 1;
  uint8_t out[MAX_FRAME];
  size_t n = encode_frame(ack, out);
  b.receive(out, n, 30);
  CHECK(b.buffered() == 2);
  // An ACK for another session is ignored.
  ack.session = 78; ack.seq = 9;
  n = encode_frame(ack, out);
  b.receive(out, n, 31);
  CHECK(b.buffered() == 2);
  // HELLO_REQUEST: HELLO again and the two unacknowledged readings resent.
  Frame req = Frame();
  req.type = HELLO_REQUEST;
  n = encode_frame(req, out);
  wire_len = 0;
  b.receive(out, n, 40);
  CHECK(count_frames(HELLO) == 1 && count_frames(READING) == 2 && b.resent == 2);
  // Overflow: a full ring overwrites the oldest and reports ERROR 2 once.
  wire_len = 0;
  for (int i = 0; i < 5; i++) b.sample(1, &v, 1, 50 + i);
  CHECK(b.buffered() == 4 && count_frames(ERROR) == 1);
  // Silence past resend_ms: everything unacknowledged goes again.
  wire_len = 0;
  b.poll(2000, 1000, 5000);
  CHECK(count_frames(READING) == 4);
  printf("ok\n");
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: vectors encode DESC | decode HEX | crc HEX\n");
    return 2;
  }
  if (!strcmp(argv[1], "encode")) return encode(argv[2]);
  if (!strcmp(argv[1], "bridge-check")) return bridge_check();
  if (!strcmp(argv[1], "decode")) return decode(argv[2]);
  if (!strcmp(argv[1], "crc")) {
    uint8_t raw[4096];
    size_t n = from_hex(argv[2], raw, sizeof raw);
    printf("%08lx\n", (unsigned long)crc32c(raw, n));
    return 0;
  }
  return 2;
}
