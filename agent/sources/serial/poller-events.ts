import type { SerialPort } from 'serialport';

/** libuv's uv_poll event bits, as @serialport/bindings-cpp's Poller takes them (dist/poller.js EVENTS). */
const UV_READABLE = 1;
const UV_WRITABLE = 2;
const UV_DISCONNECT = 4;

interface BindingPoller {
  poll(flags: number): void;
  listenerCount(event: string): number;
}

const kept = new WeakSet<object>();

/**
 * Works around a lost-wakeup bug in @serialport/bindings-cpp 13.0.x on Linux and macOS
 * (src/poller.cpp, `Poller::poll`): each call restarts libuv's poll with only the events of that
 * call. A write waiting for WRITABLE (the other end not reading) loses that wait as soon as a read
 * then waits for READABLE, and stays queued until bytes come the other way. When the other end
 * only speaks once it hears from us, the line is dead both ways: the serial soak test's relay held
 * 12 MB towards a gateway that heard nothing for 40 s. test/integration/serial-port-writes.test.ts
 * reproduces it over a pty pair (6 of 10 writes stuck without this, 0 of 10 with it).
 *
 * Each poll asks for every event some operation still waits on (the Poller's listeners), which is
 * what the native side meant to do; with a binding that already does so, it changes nothing.
 * Call once the port is open. Returns false, changing nothing, for a binding without this Poller
 * (Windows, or another version's internals).
 */
export function keepPollerEvents(port: SerialPort): boolean {
  const poller = (port.port as unknown as { poller?: Partial<BindingPoller> } | undefined)?.poller;
  if (!poller || typeof poller.poll !== 'function' || typeof poller.listenerCount !== 'function') return false;
  if (kept.has(poller)) return true;
  const poll = poller.poll.bind(poller);
  const count = poller.listenerCount.bind(poller);
  poller.poll = (flags: number) =>
    poll(flags | (count('readable') > 0 ? UV_READABLE : 0) | (count('writable') > 0 ? UV_WRITABLE : 0) | (count('disconnect') > 0 ? UV_DISCONNECT : 0));
  kept.add(poller);
  return true;
}
