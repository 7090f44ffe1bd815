// Host build of the example sketch: the shim stands in for Arduino.h.
#include "arduino_shim.h"
#include "../firmware/examples/bridge_sketch/bridge_sketch.ino"
int main() {
  setup();
  for (int i = 0; i < 3; i++) loop();
  return 0;
}
