// Just enough of the Arduino API to compile the example sketch on the host (make checks it).
#include <stddef.h>
#include <stdint.h>
struct HostSerial {
  void begin(unsigned long) {}
  size_t write(const uint8_t*, size_t n) { return n; }
  int available() { return 0; }
  int read() { return -1; }
};
static HostSerial Serial;
enum { A0, A1, A2, A3, A4, A5 };
inline int analogRead(int) { return 512; }
inline uint32_t millis() { return 0; }
inline uint32_t micros() { return 0; }
