// Vector tool for the cross-language tests: the C++ library encodes a frame described on the
// command line, or decodes a hex frame, in the same line format both ways:
//   vectors encode 'type=reading sensor=0 seq=1 uptime=1000 values=21.5'   -> hex of the frame
//   vectors decode 00020001...00                                          -> the description line
//   vectors crc HEX                                                      -> crc32c as 8 hex digits
//   vectors bridge-check -                                               -> 'ok' if the device logic behaves
//   vectors attest 'seed=HEX uid=HEX session=7 sensor=0 readings=0:21.5;1:21.75,3' -> the signed
//     run of PROTOCOL.md §3.9 as the library makes it: public_key= digest= message= signature= wire=
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../firmware/attest.h"
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
    if (!strcmp(k, "version")) f.version = (uint8_t)atoi(v);
    else if (!strcmp(k, "type")) {
      const char* names[] = {"", "hello", "reading", "ack", "error", "heartbeat", "hello-request", "hello-ack", "lost", "attest", "set-interval", "interval-ack"};
      for (int i = 1; i <= 11; i++) if (!strcmp(v, names[i])) f.type = (FrameType)i;
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
    else if (!strcmp(k, "state")) f.state = (uint8_t)atoi(v);
    else if (!strcmp(k, "through")) f.seq = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "request")) f.request = (uint16_t)atoi(v);
    else if (!strcmp(k, "period")) f.period_ms = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "status")) f.status = (uint8_t)atoi(v);
    else if (!strcmp(k, "min")) f.min_ms = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "max")) f.max_ms = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "first")) f.seq = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "last")) f.last_seq = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "sig") && strlen(v) == 128) from_hex(v, f.sig, 64);
    else return 2;
  }
  if (!f.version) f.version = 1;  // PROTOCOL.md §6: a line without version= is a version 1 frame
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
  FrameReader<> reader;
  Frame f;
  for (size_t i = 0; i < n; i++) {
    if (!reader.feed(raw[i], f)) continue;
    const bool v2 = f.version == 2;
    if (v2) printf("version=2 ");
    switch (f.type) {
      case HELLO:
        printf("type=hello session=%lu uid=", (unsigned long)f.session);
        for (int k = 0; k < 8; k++) printf("%02x", f.uid[k]);
        if (v2) printf(" uptime=%lu", (unsigned long)f.uptime_ms);
        printf(" firmware=%s fw_version=%s", f.firmware, f.fw_version);
        for (int k = 0; k < f.sensor_count; k++)
          printf(" sensor_info=%u:%lu:%s:%s", f.sensors[k].index, (unsigned long)f.sensors[k].period_ms, f.sensors[k].id, f.sensors[k].unit);
        break;
      case READING:
        printf("type=reading");
        if (v2) printf(" session=%lu", (unsigned long)f.session);
        printf(" sensor=%u seq=%lu uptime=%lu values=", f.sensor, (unsigned long)f.seq, (unsigned long)f.uptime_ms);
        for (int k = 0; k < f.value_count; k++) printf(k ? ",%.9g" : "%.9g", (double)f.values[k]);
        break;
      case ACK: printf("type=ack session=%lu sensor=%u seq=%lu", (unsigned long)f.session, f.sensor, (unsigned long)f.seq); break;
      case ERROR: printf("type=error code=%u message=%s", f.code, f.message); break;
      case HEARTBEAT:
        printf("type=heartbeat");
        if (v2) printf(" session=%lu", (unsigned long)f.session);
        printf(" uptime=%lu buffered=%u", (unsigned long)f.uptime_ms, f.buffered);
        break;
      case HELLO_REQUEST: printf("type=hello-request"); break;
      case HELLO_ACK: printf("type=hello-ack session=%lu uptime=%lu state=%u", (unsigned long)f.session, (unsigned long)f.uptime_ms, f.state); break;
      case LOST: printf("type=lost session=%lu sensor=%u through=%lu", (unsigned long)f.session, f.sensor, (unsigned long)f.seq); break;
      case SET_INTERVAL: printf("type=set-interval session=%lu sensor=%u request=%u period=%lu", (unsigned long)f.session, f.sensor, f.request, (unsigned long)f.period_ms); break;
      case INTERVAL_ACK:
        printf("type=interval-ack session=%lu sensor=%u request=%u status=%u period=%lu min=%lu max=%lu", (unsigned long)f.session, f.sensor, f.request, f.status, (unsigned long)f.period_ms, (unsigned long)f.min_ms, (unsigned long)f.max_ms);
        break;
      case ATTEST:
        printf("type=attest session=%lu sensor=%u first=%lu last=%lu sig=", (unsigned long)f.session, f.sensor, (unsigned long)f.seq, (unsigned long)f.last_seq);
        for (int k = 0; k < 64; k++) printf("%02x", f.sig[k]);
        break;
    }
    printf("\n");
  }
  if (reader.oversize) printf("oversize=%lu\n", (unsigned long)reader.oversize);
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
  FrameReader<> r;
  Frame f;
  int n = 0;
  for (size_t i = 0; i < wire_len; i++) if (r.feed(wire[i], f) && f.type == type) n++;
  return n;
}
// The last frame of `type` on the wire.
static Frame last_frame(FrameType type) {
  FrameReader<> r;
  Frame f, last = Frame();
  for (size_t i = 0; i < wire_len; i++) if (r.feed(wire[i], f) && f.type == type) last = f;
  return last;
}
#define CHECK(cond) do { if (!(cond)) { printf("failed: %s (line %d)\n", #cond, __LINE__); return 1; } } while (0)

template <size_t N>
static void deliver(Bridge<N>& b, Frame f, uint32_t now) {
  uint8_t out[MAX_FRAME];
  f.version = 2;
  size_t n = encode_frame(f, out);
  b.receive(out, n, now);
}
static Frame ack_frame(uint32_t session, uint8_t sensor, uint32_t seq) {
  Frame f = Frame();
  f.type = ACK; f.session = session; f.sensor = sensor; f.seq = seq;
  return f;
}
static Frame hello_request() {
  Frame f = Frame();
  f.version = 2; f.type = HELLO_REQUEST;
  return f;
}
static Frame set_interval(uint32_t session, uint8_t sensor, uint16_t request, uint32_t period) {
  Frame f = Frame();
  f.type = SET_INTERVAL; f.session = session; f.sensor = sensor; f.request = request; f.period_ms = period;
  return f;
}
static Frame hello_ack(uint32_t session, uint32_t uptime, uint8_t state) {
  Frame f = Frame();
  f.type = HELLO_ACK; f.session = session; f.uptime_ms = uptime; f.state = state;
  return f;
}

// PROTOCOL.md version 2 device rules, one by one.
static int bridge_check() {
  const uint8_t uid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const SensorInfo sensors[] = {{0, 100, "tank/level", "m"}, {1, 100, "tank/temp", "Cel"}};
  Bridge<4> b(capture, NULL, 77, uid, "check", "0.1", sensors, 2);
  b.hello(5);
  CHECK(count_frames(HELLO) == 1 && last_frame(HELLO).version == 2 && last_frame(HELLO).uptime_ms == 5);
  float v = 1.5f;
  // §4.1: nothing is sent before a HELLO_ACK accepts the session; a stale answer (other uptime) does not.
  for (int i = 0; i < 3; i++) b.sample(0, &v, 1, 10 + i);
  b.sample(1, &v, 1, 20);
  deliver(b, hello_ack(77, 4, HELLO_NEW), 21);
  CHECK(b.buffered() == 4 && count_frames(READING) == 0 && !b.accepted());
  deliver(b, hello_ack(77, 5, HELLO_NEW), 22);
  CHECK(b.accepted() && count_frames(READING) == 4 && b.resent == 0);
  CHECK(last_frame(READING).session == 77 && last_frame(READING).seq == 0 && last_frame(READING).sensor == 1);
  // ACK sensor 0 up to seq 1: readings 0 and 1 of sensor 0 are dropped.
  deliver(b, ack_frame(77, 0, 1), 30);
  CHECK(b.buffered() == 2);
  // An ACK for another session is ignored.
  deliver(b, ack_frame(78, 0, 9), 31);
  CHECK(b.buffered() == 2);
  // HELLO_REQUEST: HELLO again and the two unacknowledged readings resent.
  wire_len = 0;
  deliver(b, hello_request(), 40);
  CHECK(count_frames(HELLO) == 1 && count_frames(READING) == 2 && b.resent == 2);
  // §4.3 overflow: a full ring overwrites the oldest and says per sensor what is gone (LOST).
  wire_len = 0;
  for (int i = 0; i < 4; i++) b.sample(1, &v, 1, 50 + i);  // ring 0:2 1:0 1:1 1:2, then 1:3 and 1:4 overwrite 0:2 and 1:0
  CHECK(b.buffered() == 4 && count_frames(LOST) == 2 && b.lost == 2);
  CHECK(last_frame(LOST).sensor == 1 && last_frame(LOST).seq == 0 && last_frame(LOST).session == 77);
  // An ACK at or past through_seq settles a LOST; an unsettled one goes again with the resend.
  deliver(b, ack_frame(77, 0, 2), 60);
  wire_len = 0;
  b.poll(1000, 500, 5000);  // §4.2: the oldest reading was last sent 500 ms ago or more
  CHECK(count_frames(LOST) == 1 && last_frame(LOST).sensor == 1 && count_frames(READING) == 4);
  deliver(b, ack_frame(77, 1, 0), 1001);
  wire_len = 0;
  b.poll(1600, 500, 5000);
  CHECK(count_frames(LOST) == 0 && count_frames(READING) == 4);
  // §4.2: the timer runs on the oldest reading: ACKs of sensor 1 do not hold back a resend of sensor 0.
  Bridge<8> c(capture, NULL, 5, uid, "check", "0.1", sensors, 2);
  c.hello(0);
  deliver(c, hello_ack(5, 0, HELLO_NEW), 1);
  c.sample(0, &v, 1, 10);  // lost on the line, say
  for (uint32_t t = 100; t <= 1000; t += 100) {
    c.sample(1, &v, 1, t);
    deliver(c, ack_frame(5, 1, t / 100 - 1), t);
    c.poll(t, 500, 5000);
  }
  wire_len = 0;
  c.poll(1100, 500, 5000);
  CHECK(count_frames(READING) == 1 && last_frame(READING).sensor == 0 && c.buffered() == 1);
  // §3.7 state 1 on the first answer: another boot used this session; take another before sending anything.
  Bridge<4> d(capture, NULL, 9, uid, "check", "0.1", sensors, 2);
  d.hello(3);
  d.sample(0, &v, 1, 4);
  wire_len = 0;
  deliver(d, hello_ack(9, 3, HELLO_KNOWN), 5);
  CHECK(!d.accepted() && d.session() == 10 && d.session_changes == 1 && count_frames(HELLO) == 1 && last_frame(HELLO).session == 10 && count_frames(READING) == 0);
  deliver(d, hello_ack(10, 5, HELLO_NEW), 6);
  CHECK(d.accepted() && count_frames(READING) == 1 && last_frame(READING).session == 10 && last_frame(READING).seq == 0);
  // state 1 later in the boot (the gateway restarted): the session goes on.
  wire_len = 0;
  deliver(d, hello_request(), 7);
  deliver(d, hello_ack(10, 7, HELLO_KNOWN), 8);
  CHECK(d.accepted() && d.session() == 10);
  // state 2: refused; nothing sent, HELLO again after hello_ms.
  Bridge<4> e(capture, NULL, 11, uid, "check", "0.1", sensors, 2);
  e.hello(0);
  deliver(e, hello_ack(11, 0, HELLO_REFUSED), 1);
  e.sample(0, &v, 1, 2);
  wire_len = 0;
  e.poll(5001, 500, 5000);
  CHECK(e.refused() && !e.accepted() && count_frames(READING) == 0 && count_frames(HELLO) == 1);
  // §3.10-§3.11: interval control. Fixed until the sketch allows a range; bounds checked on the device;
  // one INTERVAL_ACK per request, echoing its number; the next HELLO declares the period in force.
  Bridge<4> g(capture, NULL, 21, uid, "check", "0.1", sensors, 2);
  g.hello(0);
  wire_len = 0;
  deliver(g, set_interval(21, 0, 1, 500), 1);
  CHECK(count_frames(INTERVAL_ACK) == 0);  // not accepted yet: nothing answered
  deliver(g, hello_ack(21, 0, HELLO_NEW), 2);
  deliver(g, set_interval(21, 0, 2, 500), 3);
  CHECK(count_frames(INTERVAL_ACK) == 1 && last_frame(INTERVAL_ACK).status == INTERVAL_FIXED && last_frame(INTERVAL_ACK).request == 2 && g.period_ms(0) == 100);
  g.allow_interval(0, 50, 60000);
  deliver(g, set_interval(21, 0, 3, 500), 4);
  CHECK(last_frame(INTERVAL_ACK).status == INTERVAL_APPLIED && last_frame(INTERVAL_ACK).period_ms == 500 && last_frame(INTERVAL_ACK).min_ms == 50 && last_frame(INTERVAL_ACK).max_ms == 60000 && g.period_ms(0) == 500);
  deliver(g, set_interval(21, 0, 4, 20), 5);
  CHECK(last_frame(INTERVAL_ACK).status == INTERVAL_OUT_OF_RANGE && last_frame(INTERVAL_ACK).period_ms == 500 && g.period_ms(0) == 500);
  deliver(g, set_interval(21, 5, 5, 500), 6);
  CHECK(last_frame(INTERVAL_ACK).status == INTERVAL_UNKNOWN_SENSOR && last_frame(INTERVAL_ACK).sensor == 5);
  deliver(g, set_interval(22, 0, 6, 1000), 7);  // another session: ignored
  CHECK(count_frames(INTERVAL_ACK) == 4 && g.period_ms(0) == 500 && g.interval_changes == 1 && g.interval_refusals == 3);
  wire_len = 0;
  g.hello(8);
  CHECK(last_frame(HELLO).sensors[0].period_ms == 500 && last_frame(HELLO).sensors[1].period_ms == 100);
  printf("ok\n");
  return 0;
}

// PROTOCOL.md §3.10-§3.11 on the device side, fuzzed: N random SET_INTERVALs (any sensor byte, any
// u32 period, right or wrong session) and N runs of random bytes. Invariants: one INTERVAL_ACK per
// SET_INTERVAL of the accepted session, none otherwise; the period in force never leaves the
// allowed range; applied exactly when the request was inside it. Prints the counts.
static int interval_fuzz(unsigned long seed, long n) {
  uint32_t x = (uint32_t)seed ? (uint32_t)seed : 1u;
  auto rnd = [&x]() { x ^= x << 13; x ^= x >> 17; x ^= x << 5; return x; };
  const uint8_t uid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const SensorInfo sensors[] = {{0, 1000, "a", ""}, {1, 1000, "b", ""}};
  Bridge<4> b(capture, NULL, 3, uid, "fuzz", "0", sensors, 2);
  b.hello(0);
  deliver(b, hello_ack(3, 0, HELLO_NEW), 0);
  b.allow_interval(0, 50, 60000);  // sensor 1 stays fixed
  long applied = 0, out_of_range = 0, unknown = 0, fixed = 0, ignored = 0;
  for (long i = 0; i < n; i++) {
    wire_len = 0;
    uint32_t r = rnd();
    uint32_t period = (r & 3) == 0 ? rnd() : (r & 3) == 1 ? 10 + rnd() % 120000 : 40 + rnd() % 30;
    if (period < INTERVAL_MIN_MS) period = INTERVAL_MIN_MS;  // the encoder refuses what a gateway may not send
    if (period > INTERVAL_MAX_MS) period = INTERVAL_MAX_MS;
    bool ours = (r >> 2) % 8 != 0;
    uint8_t sensor = (uint8_t)((r >> 5) % 4 == 0 ? rnd() : (r >> 7) % 2);
    deliver(b, set_interval(ours ? 3 : 4, sensor, (uint16_t)rnd(), period), 1);
    int acks = count_frames(INTERVAL_ACK);
    if (!ours) { CHECK(acks == 0); ignored++; continue; }
    CHECK(acks == 1);
    Frame a = last_frame(INTERVAL_ACK);
    CHECK(a.sensor == sensor);
    // A fixed sensor asked for the period it already has is answered applied (nothing changes, §3.11).
    if (a.status == INTERVAL_APPLIED) { CHECK(((sensor == 0 && period >= 50 && period <= 60000) || (sensor == 1 && period == 1000)) && b.period_ms(sensor) == period); applied++; }
    else if (a.status == INTERVAL_OUT_OF_RANGE) { CHECK(sensor == 0 && (period < 50 || period > 60000)); out_of_range++; }
    else if (a.status == INTERVAL_UNKNOWN_SENSOR) { CHECK(sensor > 1); unknown++; }
    else { CHECK(a.status == INTERVAL_FIXED && sensor == 1 && period != 1000 && b.period_ms(1) == 1000); fixed++; }
    CHECK(b.period_ms(0) >= 50 && b.period_ms(0) <= 60000 && b.period_ms(1) == 1000);
  }
  long garbage_bytes = 0;
  for (long i = 0; i < n; i++) {  // random bytes, with a 0x00 now and then: never a crash, never a period out of range
    uint8_t junk[64];
    size_t len = 1 + rnd() % sizeof junk;
    for (size_t k = 0; k < len; k++) { uint32_t v = rnd(); junk[k] = (v & 7) == 0 ? 0 : (uint8_t)(v >> 8); }
    b.receive(junk, len, 2);
    garbage_bytes += (long)len;
    CHECK(b.period_ms(0) >= 50 && b.period_ms(0) <= 60000 && b.period_ms(1) == 1000);
  }
  printf("ok set_interval=%ld applied=%ld out_of_range=%ld unknown_sensor=%ld fixed=%ld other_session=%ld garbage_bytes=%ld\n", n, applied, out_of_range, unknown, fixed, ignored, garbage_bytes);
  return 0;
}

static void print_hex(const char* key, const uint8_t* p, size_t n) {
  printf("%s=", key);
  for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
}

// Signs a run of readings with the library's own Attestor, fed through a Bridge, so the vector
// covers the code a board runs: the digest, the message, the signature and the ATTEST frame.
static uint8_t attest_wire[MAX_FRAME * 4];
static size_t attest_wire_len = 0;
static void attest_capture(const uint8_t* d, size_t n, void*) {
  if (attest_wire_len + n <= sizeof attest_wire) { memcpy(attest_wire + attest_wire_len, d, n); attest_wire_len += n; }
}

static int attest(char* desc) {
  uint8_t seed[32] = {0}, uid[8] = {0};
  uint32_t session = 0;
  uint8_t sensor = 0;
  struct { uint32_t seq; uint8_t n; float v[MAX_VALUES]; } rs[64];
  int count = 0;
  for (char* tok = strtok(desc, " "); tok; tok = strtok(NULL, " ")) {
    char* eq = strchr(tok, '=');
    if (!eq) return 2;
    *eq = 0;
    const char* k = tok;
    char* v = eq + 1;
    if (!strcmp(k, "seed") && strlen(v) == 64) from_hex(v, seed, 32);
    else if (!strcmp(k, "uid") && strlen(v) == 16) from_hex(v, uid, 8);
    else if (!strcmp(k, "session")) session = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "sensor")) sensor = (uint8_t)atoi(v);
    else if (!strcmp(k, "readings")) {  // seq:v,v;seq:v
      for (char* end = v; *end && count < 64;) {
        rs[count].seq = (uint32_t)strtoul(end, &end, 10);
        if (*end++ != ':') return 2;
        rs[count].n = 0;
        while (*end && *end != ';' && rs[count].n < MAX_VALUES) {
          rs[count].v[rs[count].n++] = strtof(end, &end);
          if (*end == ',') end++;
        }
        if (*end == ';') end++;
        count++;
      }
    } else return 2;
  }
  if (count == 0) return 2;
  eb_sha256 h;
  eb_sha256_initialize(&h);
  for (int i = 0; i < count; i++) attest_digest_add(h, rs[i].seq, rs[i].v, rs[i].n);
  uint8_t digest[32], msg[ATTEST_MESSAGE_BYTES], sig[64];
  eb_sha256_finalize(&h, digest);
  attest_message(uid, session, sensor, rs[0].seq, rs[count - 1].seq, digest, msg);
  AttestKey key;
  attest_key_from_seed(seed, key);
  attest_sign(key, msg, sizeof msg, sig);
  // The same run through a Bridge and its Attestor: the ATTEST it puts on the line after the last reading.
  Attestor<> att(seed, uid, (uint16_t)count);
  SensorInfo infos[MAX_SENSORS];
  for (uint8_t i = 0; i <= sensor && i < MAX_SENSORS; i++) infos[i] = SensorInfo{i, 1000, "s", ""};
  Bridge<64> b(attest_capture, NULL, session, uid, "vectors", "1", infos, (uint8_t)(sensor + 1));
  b.attest_with(&att);
  Frame ok = Frame();
  ok.version = 2;
  ok.type = HELLO_ACK;
  ok.session = session;
  ok.uptime_ms = 0;
  ok.state = HELLO_NEW;
  uint8_t okw[MAX_FRAME];
  size_t okn = encode_frame(ok, okw);
  b.hello(0);
  b.receive(okw, okn, 0);
  for (int i = 0; i < count; i++) {
    // The Bridge numbers a sensor's readings from 0: the run must start at 0 for the frame check.
    attest_wire_len = 0;
    b.sample(sensor, rs[i].v, rs[i].n, 1);
  }
  Frame last;
  FrameReader<> reader;
  bool got_attest = false;
  for (size_t i = 0; i < attest_wire_len; i++) {
    if (reader.feed(attest_wire[i], last) && last.type == ATTEST) { got_attest = true; break; }
  }
  print_hex("public_key", key.public_key, 32);
  print_hex(" digest", digest, 32);
  print_hex(" message", msg, sizeof msg);
  print_hex(" signature", sig, 64);
  if (got_attest && !memcmp(last.sig, sig, 64) && last.seq == rs[0].seq && last.last_seq == rs[count - 1].seq) {
    Frame f = Frame();
    f.version = 2;
    f.type = ATTEST;
    f.session = session;
    f.sensor = sensor;
    f.seq = rs[0].seq;
    f.last_seq = rs[count - 1].seq;
    memcpy(f.sig, sig, 64);
    uint8_t w[MAX_FRAME];
    size_t n = encode_frame(f, w);
    print_hex(" wire", w, n);
  } else printf(" wire=none");
  printf("\n");
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && !strcmp(argv[1], "interval-fuzz")) return interval_fuzz(strtoul(argv[2], NULL, 10), atol(argv[3]));
  if (argc != 3) {
    fprintf(stderr, "usage: vectors encode DESC | decode HEX | crc HEX\n");
    return 2;
  }
  if (!strcmp(argv[1], "encode")) return encode(argv[2]);
  if (!strcmp(argv[1], "bridge-check")) return bridge_check();
  if (!strcmp(argv[1], "decode")) return decode(argv[2]);
  if (!strcmp(argv[1], "attest")) return attest(argv[2]);
  if (!strcmp(argv[1], "crc")) {
    uint8_t raw[4096];
    size_t n = from_hex(argv[2], raw, sizeof raw);
    printf("%08lx\n", (unsigned long)crc32c(raw, n));
    return 0;
  }
  return 2;
}
