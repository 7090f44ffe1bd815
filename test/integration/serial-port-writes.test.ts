import { SerialPort } from 'serialport';
import { describe, expect, it } from 'vitest';
import { keepPollerEvents } from '../../agent/sources/serial/poller-events.js';
import { waitFor } from '../helpers/ports.js';
import { startPtyPair } from '../helpers/serial.js';
import { tempDir } from '../helpers/setup.js';

async function openPort(path: string): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  port.on('error', (err) => {
    if (!/Canceled/.test(err.message)) console.error(`serial-port-writes ${path}: ${err.message}`);
  });
  await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
  expect(keepPollerEvents(port), 'the unix binding this works around').toBe(true);
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TRIALS = 10;
const PIECES = 1_200; // 600 KB: far more than the pty pair buffers while nobody reads
const PIECE = Buffer.alloc(500, 7);

// serialport's unix Poller (bindings-cpp 13.0.x) restarted libuv's poll with only the latest call's
// events: a write waiting for the line lost its wake-up when a read then waited for data, and
// stayed queued until bytes came back. Without keepPollerEvents about 6 trials in 10 stall here.
describe('serial port writes (agent/sources/serial/poller-events.ts)', () => {
  it(`a write the other end held up goes out once it reads again, even if it never answers (${TRIALS} trials)`, { timeout: 120_000 }, async () => {
    for (let t = 0; t < TRIALS; t++) {
      const pair = await startPtyPair(tempDir('pty-writes'));
      const a = await openPort(pair.device);
      const b = await openPort(pair.gateway);
      try {
        a.on('data', () => undefined); // A reads too, as the agent does
        let got = 0;
        b.on('data', (c: Buffer) => (got += c.length));
        b.pause();
        // A writes while B reads nothing but sends a byte now and then: A's reads and its waiting
        // write interleave. Then B reads again and says nothing more.
        const back = setInterval(() => b.write(Buffer.from([1])), 3);
        for (let i = 0; i < PIECES; i++) {
          a.write(PIECE);
          if (i % 20 === 19) await sleep(10);
        }
        clearInterval(back);
        await sleep(50);
        b.resume();
        const total = PIECES * PIECE.length;
        await waitFor(`trial ${t + 1}: all ${total} bytes at the other end`, () => {
          if (got >= total) return true;
          throw new Error(`${got} arrived, ${a.writableLength} still queued at the writer`); // what the timeout reports
        }, 20_000, 20);
      } finally {
        a.destroy();
        b.destroy();
        await pair.stop();
      }
    }
  });
});
