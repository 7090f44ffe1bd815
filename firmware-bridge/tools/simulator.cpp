// Plays a sensor board over a serial device (a socat pty in the tests), running the same
// edge_bridge library the firmware uses: HELLO, READINGs at a rate, ACKs, resends, reopen.
//
//   simulator --path P [--sensors N] [--rate R] [--count C] [--session S] [--reopen] [--linger-ms MS]
//
// --rate is samples per second over all sensors; --count stops sampling after C samples and
// exits once all are acknowledged (or after --linger-ms without progress). stdout lines:
//   open PATH | closed PATH | stat sent=N buffered=B resent=R | done sent=N buffered=B resent=R
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../firmware/edge_bridge.h"

using namespace edge_bridge;

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
  while (len > 0 && fd >= 0 && !write_failed) {
    ssize_t n = write(fd, data, len);
    if (n > 0) { data += n; len -= (size_t)n; since = now_ms(); continue; }
    if (n < 0 && errno == EAGAIN) {
      // Nobody drains the line (the gateway is down or restarting): like a UART, drop the bytes
      // rather than block; the protocol's resends recover them. A vanished pty shows up as EIO/HUP on read.
      if (now_ms() - since >= 200) return;
      pollfd p = {fd, POLLOUT, 0};
      poll(&p, 1, 20);
      continue;
    }
    write_failed = true;
    return;
  }
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
  int sensors = 2, count = -1, linger_ms = 10000;
  double rate = 100;
  uint32_t session = (uint32_t)time(NULL) ^ (uint32_t)getpid();
  bool reopen = false;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(a, "--path")) { path = v; i++; }
    else if (!strcmp(a, "--sensors")) { sensors = atoi(v); i++; }
    else if (!strcmp(a, "--rate")) { rate = atof(v); i++; }
    else if (!strcmp(a, "--count")) { count = atoi(v); i++; }
    else if (!strcmp(a, "--session")) { session = (uint32_t)strtoul(v, NULL, 10); i++; }
    else if (!strcmp(a, "--linger-ms")) { linger_ms = atoi(v); i++; }
    else if (!strcmp(a, "--reopen")) reopen = true;
    else { fprintf(stderr, "unknown option %s\n", a); return 2; }
  }
  if (!path || sensors < 1 || sensors > MAX_SENSORS || rate <= 0) { fprintf(stderr, "usage: simulator --path P [--sensors 1..8] [--rate R] ...\n"); return 2; }
  static char ids[MAX_SENSORS][16];
  SensorInfo infos[MAX_SENSORS];
  for (int i = 0; i < sensors; i++) {
    snprintf(ids[i], sizeof ids[i], "sim/s%d", i);
    infos[i] = SensorInfo{(uint8_t)i, (uint32_t)(1000.0 * sensors / rate), ids[i], "Cel"};
  }
  const uint8_t uid[8] = {0x51, 0x4d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
  static Bridge<8192> bridge(write_all, NULL, session, uid, "simulator", "1.0.0", infos, (uint8_t)sensors);
  while (!open_port(path)) {
    if (!reopen) { perror(path); return 1; }
    usleep(100000);
  }
  bridge.hello(now_ms());

  const double interval_ms = 1000.0 / rate;
  double next_sample = now_ms();
  int sent = 0;
  uint32_t last_stat = now_ms(), last_progress = now_ms();
  size_t last_buffered = 0;
  for (;;) {
    uint32_t t = now_ms();
    while ((count < 0 || sent < count) && t >= next_sample) {
      float v = 20.0f + (float)(sent % 100) / 10.0f;
      bridge.sample((uint8_t)(sent % sensors), &v, 1, t);
      sent++;
      next_sample += interval_ms;
    }
    pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 1);
    if (r > 0 && (p.revents & POLLIN)) {
      uint8_t buf[4096];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) bridge.receive(buf, (size_t)n, now_ms());
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
      bridge.hello(now_ms());
    }
    bridge.poll(now_ms(), 500, 3000);
    if (bridge.buffered() != last_buffered) { last_buffered = bridge.buffered(); last_progress = now_ms(); }
    if (now_ms() - last_stat >= 500) {
      printf("stat sent=%d buffered=%zu resent=%lu\n", sent, bridge.buffered(), (unsigned long)bridge.resent);
      fflush(stdout);
      last_stat = now_ms();
    }
    bool finished = count >= 0 && sent >= count;
    if (finished && (bridge.buffered() == 0 || now_ms() - last_progress > (uint32_t)linger_ms)) {
      printf("done sent=%d buffered=%zu resent=%lu\n", sent, bridge.buffered(), (unsigned long)bridge.resent);
      fflush(stdout);
      return bridge.buffered() == 0 ? 0 : 1;
    }
  }
}
