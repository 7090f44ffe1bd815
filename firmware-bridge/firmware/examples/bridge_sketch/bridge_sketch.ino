// Two analog sensors reported to an edge-agent gateway over Serial (firmware-bridge/PROTOCOL.md).
// Copy edge_bridge.h and edge_bridge.cpp next to this sketch (or install them as a library).
#include "edge_bridge.h"

using namespace edge_bridge;

static void write_serial(const uint8_t* data, size_t len, void*) { Serial.write(data, len); }

static const SensorInfo SENSORS[] = {
    {0, 1000, "tank/level", "m"},
    {1, 1000, "tank/temp", "Cel"},
};
static uint8_t uid[8] = {0};

// 64 unacknowledged readings fit in about 3 KB: size the ring to the board's RAM.
static Bridge<64>* bridge;

void setup() {
  Serial.begin(115200);
  // A new session per boot (PROTOCOL.md §3.1): analog noise on a floating pin, mixed with the boot
  // time. A board with EEPROM should count boots instead. Should two boots still pick the same
  // number, the gateway's HELLO_ACK says so and the library takes the next one (§3.7).
  uint32_t session = ((uint32_t)analogRead(A5) << 16) ^ (uint32_t)micros();
  static Bridge<64> instance(write_serial, nullptr, session, uid, "tank-node", "1.0.0", SENSORS, 2);
  bridge = &instance;
  // The gateway may slow the level probe to once a minute while all is well, or speed it up to
  // 4 Hz during an alert (SET_INTERVAL, PROTOCOL.md §3.10); the temperature stays at 1 s (fixed).
  bridge->allow_interval(0, 250, 60000);
  bridge->hello(millis());
}

void loop() {
  static uint32_t last_level = 0, last_temp = 0;
  uint8_t in[32];
  size_t n = 0;
  while (Serial.available() && n < sizeof in) in[n++] = (uint8_t)Serial.read();
  if (n) bridge->receive(in, n, millis());

  uint32_t now = millis();
  // Each sensor on its own timer, at the period in force (the gateway's, or the firmware's).
  if (now - last_level >= bridge->period_ms(0)) {
    last_level = now;
    float level = analogRead(A0) * (2.0f / 1023.0f);  // 0..2 m pressure probe
    bridge->sample(0, &level, 1, now);
  }
  if (now - last_temp >= bridge->period_ms(1)) {
    last_temp = now;
    float temp = (analogRead(A1) * (5.0f / 1023.0f) - 0.5f) * 100.0f;  // TMP36
    bridge->sample(1, &temp, 1, now);
  }
  bridge->poll(now);
}
