// Plays a sensor board over a serial device (a socat pty in the tests), running the same
// edge_bridge library the firmware uses (PROTOCOL.md version 2): HELLO until accepted, READINGs at
// a rate, ACKs, resends, LOST, reopen, and reboots.
//
//   simulator --path P [--sensors N] [--rate R] [--count C] [--session S] [--reopen] [--linger-ms MS]
//             [--reboots K] [--reuse-session] [--resend-ms MS (default 500)]
//             [--interval-min-ms A --interval-max-ms B]
//             [--key FILE [--attest-every N (default 32)]]
//
// --rate is samples per second over all sensors; --count stops sampling after C samples and
// exits once all are acknowledged (or after --linger-ms without progress). --reboots K reboots
// the board K times, evenly over --count, each once its ring is drained (or --linger-ms passed):
// a new Bridge, a new session (the same number again with --reuse-session, as a board without a
// boot counter might), and the sensor indexes rotated, so that readings filed under the previous
// boot's mapping would carry the wrong names. Sensor sim/sK's values are 0, 1, 2, ... over all
// boots: a receiver can check each one arrived once, under its name.
// --interval-min-ms/--interval-max-ms let the gateway change each sensor's period within [A, B]
// (PROTOCOL.md §3.10): every sensor is then sampled on its own timer at the period in force
// (starting at 1000 * sensors / rate ms), and each change is printed.
// --key FILE: the board's Ed25519 seed (64 hex digits, as `edge-agent sensor-key generate` writes
// it): every N readings of a sensor the board signs them (PROTOCOL.md §3.9, an ATTEST frame).
// stdout lines: key public_key=HEX (with --key) | open PATH | closed PATH | boot N session S | stat sent=N buffered=B resent=R ... |
//   interval sensor=I period=P changes=C refusals=R |
//   done sent=N buffered=B resent=R lost=L session_changes=C
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../firmware/attest.h"
#include "../firmware/edge_bridge.h"

using namespace edge_bridge;

static const size_t RING = 65536;
typedef Bridge<RING> Board;  // on the host heap: a reboot is a new Board

static int fd = -1;
static bool write_failed = false;

static uint32_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint32_t)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static uint32_t now_ms();

static void write_all(const uint8_t* data, size_t len, void*) {
  uint32_t since = now_ms();
  bool started = false;  // once a frame's first byte is out, the rest follows (a UART never cuts a frame it began)
  while (len > 0 && fd >= 0 && !write_failed) {
    ssize_t n = write(fd, data, len);
    if (n > 0) { data += n; len -= (size_t)n; since = now_ms(); started = true; continue; }
    if (n < 0 && errno == EAGAIN) {
      // Nobody drains the line (the gateway is down or restarting): like a UART, drop the frame
      // rather than block; the protocol's resends recover it. A vanished pty shows up as EIO/HUP on read.
      if (now_ms() - since >= (started ? 2000u : 200u)) return;
      pollfd p = {fd, POLLOUT, 0};
      poll(&p, 1, 20);
      continue;
    }
    write_failed = true;
    return;
  }
}

// The seed file: 64 hex digits, then optional whitespace. Anything else is refused with the reason.
static bool read_seed(const char* path, uint8_t seed[32]) {
  FILE* f = fopen(path, "r");
  if (!f) { perror(path); return false; }
  char text[80] = {0};
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ')) text[--n] = 0;
  if (n != 64) { fprintf(stderr, "%s: a sensor key file holds 64 hex digits (the Ed25519 seed), found %zu characters\n", path, n); return false; }
  for (int i = 0; i < 32; i++) {
    unsigned v;
    if (sscanf(text + 2 * i, "%2x", &v) != 1) { fprintf(stderr, "%s: not hex at character %d\n", path, 2 * i + 1); return false; }
    seed[i] = (uint8_t)v;
  }
  return true;
}

static bool open_port(const char* path) {
  fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return false;
  termios t;
  if (tcgetattr(fd, &t) == 0) { cfmakeraw(&t); tcsetattr(fd, TCSANOW, &t); }
  printf("open %s\n", path);
  fflush(stdout);
  return true;
}

int main(int argc, char** argv) {
  const char* path = NULL;
  const char* key_path = NULL;
  int attest_every = 32;
  int sensors = 2, count = -1, linger_ms = 10000, reboots = 0, resend_ms = 500;
  long interval_min = -1, interval_max = -1;
  double rate = 100;
  uint32_t session = (uint32_t)time(NULL) ^ (uint32_t)getpid();
  bool reopen = false, reuse_session = false;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(a, "--path")) { path = v; i++; }
    else if (!strcmp(a, "--sensors")) { sensors = atoi(v); i++; }
    else if (!strcmp(a, "--rate")) { rate = atof(v); i++; }
    else if (!strcmp(a, "--count")) { count = atoi(v); i++; }
    else if (!strcmp(a, "--session")) { session = (uint32_t)strtoul(v, NULL, 10); i++; }
    else if (!strcmp(a, "--linger-ms")) { linger_ms = atoi(v); i++; }
    else if (!strcmp(a, "--resend-ms")) { resend_ms = atoi(v); i++; }
    else if (!strcmp(a, "--reboots")) { reboots = atoi(v); i++; }
    else if (!strcmp(a, "--interval-min-ms")) { interval_min = atol(v); i++; }
    else if (!strcmp(a, "--interval-max-ms")) { interval_max = atol(v); i++; }
    else if (!strcmp(a, "--key")) { key_path = v; i++; }
    else if (!strcmp(a, "--attest-every")) { attest_every = atoi(v); i++; }
    else if (!strcmp(a, "--reuse-session")) reuse_session = true;
    else if (!strcmp(a, "--reopen")) reopen = true;
    else { fprintf(stderr, "unknown option %s\n", a); return 2; }
  }
  if (!path || sensors < 1 || sensors > MAX_SENSORS || rate <= 0 || reboots < 0 || (reboots > 0 && count < 0) || (interval_min >= 0) != (interval_max >= 0) || interval_min > interval_max) { fprintf(stderr, "usage: simulator --path P [--sensors 1..8] [--rate R] ...\n"); return 2; }
  static char ids[MAX_SENSORS][16];
  for (int i = 0; i < sensors; i++) snprintf(ids[i], sizeof ids[i], "sim/s%d", i);
  const uint8_t uid[8] = {0x51, 0x4d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
  uint8_t seed[32];
  if (key_path && (!read_seed(key_path, seed) || attest_every < 1 || attest_every > ATTEST_MAX_READINGS)) { fprintf(stderr, "usage: --key FILE [--attest-every 1..10000]\n"); return 2; }
  Attestor<4096>* attestor = NULL;  // a ring of 65,536 readings at --attest-every 16 or more
  if (key_path) {
    Attestor<1> probe(seed, uid, (uint16_t)attest_every);
    printf("key public_key=");
    for (int i = 0; i < 32; i++) printf("%02x", probe.public_key()[i]);
    printf("\n");
    fflush(stdout);
  }
  int boot = 0;
  SensorInfo infos[MAX_SENSORS];
  Board* board = NULL;
  // Boot b maps index i to sensor (i + b) % sensors: a reboot changes the mapping (PROTOCOL.md §3.1).
  auto power_on = [&]() {
    for (int i = 0; i < sensors; i++) infos[i] = SensorInfo{(uint8_t)i, (uint32_t)(1000.0 * sensors / rate), ids[(i + boot) % sensors], "Cel"};
    uint32_t s = reuse_session ? session : session + (uint32_t)boot * 1000u;
    board = new Board(write_all, NULL, s, uid, "simulator", "1.0.0", infos, (uint8_t)sensors);
    if (interval_min >= 0) for (int i = 0; i < sensors; i++) board->allow_interval((uint8_t)i, (uint32_t)interval_min, (uint32_t)interval_max);
    if (key_path) {  // a reboot starts new runs: what the RAM held of the last ones is gone
      delete attestor;
      attestor = new Attestor<4096>(seed, uid, (uint16_t)attest_every);
      board->attest_with(attestor);
    }
    board->hello(now_ms());
    printf("boot %d session %lu\n", boot, (unsigned long)s);
    fflush(stdout);
  };
  while (!open_port(path)) {
    if (!reopen) { perror(path); return 1; }
    usleep(100000);
  }
  power_on();

  const double interval_ms = 1000.0 / rate;
  double next_sample = now_ms();
  int sent = 0;
  int per_boot = reboots > 0 ? count / (reboots + 1) : -1;
  int next_reboot = reboots > 0 ? per_boot : -1;
  uint32_t values[MAX_SENSORS] = {0};
  unsigned long resent_before = 0, lost_before = 0, changes_before = 0;
  uint32_t last_stat = now_ms(), last_progress = now_ms();
  size_t last_buffered = 0;
  const bool adaptive = interval_min >= 0;
  double next_at[MAX_SENSORS];
  uint32_t shown_period[MAX_SENSORS] = {0};
  for (int i = 0; i < sensors; i++) { next_at[i] = next_sample; shown_period[i] = (uint32_t)(1000.0 * sensors / rate); }
  for (;;) {
    uint32_t t = now_ms();
    bool hold = next_reboot >= 0 && sent >= next_reboot;  // sampling stops until the reboot
    // §3.10: each sensor on its own timer, at the period the gateway set.
    for (int i = 0; adaptive && !hold && i < sensors; i++) {
      uint32_t period = board->period_ms((uint8_t)i);
      if (period != shown_period[i]) {
        shown_period[i] = period;
        printf("interval sensor=%d period=%lu changes=%lu refusals=%lu\n", i, (unsigned long)period, (unsigned long)board->interval_changes, (unsigned long)board->interval_refusals);
        fflush(stdout);
      }
      while ((count < 0 || sent < count) && t >= next_at[i]) {
        float v = (float)values[(i + boot) % sensors]++;
        board->sample((uint8_t)i, &v, 1, t);
        sent++;
        next_at[i] += period;
      }
    }
    while (!adaptive && !hold && (count < 0 || sent < count) && t >= next_sample) {
      uint8_t index = (uint8_t)(sent % sensors);
      int logical = (index + boot) % sensors;
      float v = (float)values[logical]++;
      board->sample(index, &v, 1, t);
      sent++;
      next_sample += interval_ms;
      if (next_reboot >= 0 && sent >= next_reboot) break;
    }
    if (hold && (board->buffered() == 0 || now_ms() - last_progress > (uint32_t)linger_ms)) {
      resent_before += board->resent;
      lost_before += board->lost + board->buffered();  // a reboot loses what the RAM ring holds
      changes_before += board->session_changes;
      delete board;
      boot++;
      next_reboot = boot < reboots ? per_boot * (boot + 1) : -1;
      next_sample = now_ms();
      power_on();
      last_progress = now_ms();
    }
    pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 1);
    if (r > 0 && (p.revents & POLLIN)) {
      uint8_t buf[4096];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) board->receive(buf, (size_t)n, now_ms());
      else if (n == 0 || errno != EAGAIN) write_failed = true;
    } else if (r > 0 && (p.revents & (POLLHUP | POLLERR))) write_failed = true;
    if (write_failed) {  // the other end is gone (unplug): reopen, then say hello and resend
      close(fd);
      fd = -1;
      printf("closed %s\n", path);
      fflush(stdout);
      if (!reopen) return 1;
      while (!open_port(path)) usleep(100000);
      write_failed = false;
      board->hello(now_ms());
    }
    board->poll(now_ms(), (uint32_t)resend_ms, 3000);
    if (board->buffered() != last_buffered) { last_buffered = board->buffered(); last_progress = now_ms(); }
    unsigned long resent = resent_before + board->resent, lost = lost_before + board->lost, changes = changes_before + board->session_changes;
    if (now_ms() - last_stat >= 500) {
      printf("stat sent=%d buffered=%zu resent=%lu lost=%lu boot=%d session=%lu accepted=%d interval_refusals=%lu\n", sent, board->buffered(), resent, lost, boot, (unsigned long)board->session(), board->accepted() ? 1 : 0, (unsigned long)board->interval_refusals);
      fflush(stdout);
      last_stat = now_ms();
    }
    bool finished = count >= 0 && sent >= count;
    if (finished && (board->buffered() == 0 || now_ms() - last_progress > (uint32_t)linger_ms)) {
      printf("done sent=%d buffered=%zu resent=%lu lost=%lu session_changes=%lu attested=%lu attest_dropped=%lu\n", sent, board->buffered(), resent, lost, changes, attestor ? (unsigned long)attestor->signed_runs : 0ul, attestor ? (unsigned long)attestor->dropped : 0ul);
      fflush(stdout);
      return board->buffered() == 0 && lost == 0 ? 0 : 1;
    }
  }
}
