// AVR size probe (make avr-size): the Bridge with and without an Attestor (PROTOCOL.md §3.9), ATmega2560.
#include "attest.h"
using namespace edge_bridge;
static void w(const uint8_t*, size_t, void*) {}
static const SensorInfo S[] = {{0, 1000, "t", "Cel"}};
static const uint8_t uid[8] = {1};
static const uint8_t seed[32] = {2};
void operator delete(void*) {}  // the probe never deletes; a virtual destructor asks for it
int main() {
  static Bridge<16> b(w, nullptr, 1, uid, "x", "1", S, 1);
#ifdef WITH_ATTEST
  static Attestor<2> a(seed, uid, 32);
  b.attest_with(&a);
#endif
  b.hello(0);
  float v = 1;
  for (;;) { b.sample(0, &v, 1, 1); b.poll(2); }
}
