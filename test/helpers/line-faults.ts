import { SerialPort } from 'serialport';
import { FrameDecoder } from '../../agent/sources/serial/frame-decoder.js';
import { keepPollerEvents } from '../../agent/sources/serial/poller-events.js';
import type { Frame } from '../../agent/sources/serial/protocol.js';

/** mulberry32 (the fleet tooling's): the same sequence for the same seed, so a failing run replays from its printed seed. */
import { seededRandom } from '../../scripts/fleet/lib/random.js';

export { seededRandom };

export interface FaultRates {
  drop: number;
  duplicate: number;
  corrupt: number;
  reorder: number;
}

export interface DirectionStats {
  frames: number;
  dropped: number;
  duplicated: number;
  corrupted: number;
  reordered: number;
  writes: number;
}

async function openPort(path: string): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  // Closing a port cancels its pending read ("Canceled"): that is how the line ends, not a fault.
  port.on('error', (err) => {
    if (!/Canceled/.test(err.message)) console.error(`serial test line ${path}: ${err.message}`);
  });
  await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
  keepPollerEvents(port); // else a write the agent holds up can wait for its next byte for ever
  return port;
}

/**
 * A serial line with faults, between two pty pairs: whole frames (cut at 0x00) are dropped,
 * duplicated, corrupted (one bit) or swapped with the next, and what goes on is written in
 * random pieces, so the receiver's reads split frames and merge several. Every frame the
 * gateway sends that reaches the device intact is shown to `onGatewayFrame` first (the soak
 * test checks each ACK against the store at that moment).
 */
export class FaultyLine {
  readonly stats: Record<'toGateway' | 'toDevice', DirectionStats> = {
    toGateway: { frames: 0, dropped: 0, duplicated: 0, corrupted: 0, reordered: 0, writes: 0 },
    toDevice: { frames: 0, dropped: 0, duplicated: 0, corrupted: 0, reordered: 0, writes: 0 },
  };

  private constructor(
    private readonly device: SerialPort,
    private readonly gateway: SerialPort,
    private readonly rand: () => number,
    rates: Record<'toGateway' | 'toDevice', FaultRates>,
    onGatewayFrame: (f: Frame) => void,
  ) {
    const watch = new FrameDecoder();
    this.pipe(device, gateway, rates.toGateway, this.stats.toGateway, () => undefined);
    this.pipe(gateway, device, rates.toDevice, this.stats.toDevice, (frame) => {
      for (const f of watch.push(frame)) onGatewayFrame(f);
    });
  }

  /** `devicePath`: the pty end the simulator's partner end is; `gatewayPath`: the one the agent's partner end is. */
  static async start(devicePath: string, gatewayPath: string, seed: number, rates: Record<'toGateway' | 'toDevice', FaultRates>, onGatewayFrame: (f: Frame) => void): Promise<FaultyLine> {
    return new FaultyLine(await openPort(devicePath), await openPort(gatewayPath), seededRandom(seed), rates, onGatewayFrame);
  }

  private pipe(from: SerialPort, to: SerialPort, rates: FaultRates, stats: DirectionStats, delivered: (frame: Buffer) => void): void {
    let partial = Buffer.alloc(0);
    let held: Buffer | undefined; // a frame waiting to go after the next one (reorder)
    from.on('data', (chunk: Buffer) => {
      const data = partial.length ? Buffer.concat([partial, chunk]) : chunk;
      const out: Buffer[] = [];
      let start = 0;
      for (let i = 0; i < data.length; i++) {
        if (data[i] !== 0) continue;
        let frame = data.subarray(start, i + 1);
        start = i + 1;
        if (frame.length === 1) continue;
        stats.frames++;
        const r = this.rand();
        if (r < rates.drop) {
          stats.dropped++;
          continue;
        }
        if (r < rates.drop + rates.corrupt) {
          stats.corrupted++;
          frame = Buffer.from(frame);
          const at = Math.floor(this.rand() * (frame.length - 1));
          frame[at] = frame[at]! ^ (1 << Math.floor(this.rand() * 8)) || 0x01; // a 0x00 made here would cut the frame: keep it one frame
        }
        const copies = r >= 1 - rates.duplicate ? 2 : 1;
        if (copies === 2) stats.duplicated++;
        if (!held && this.rand() < rates.reorder) {
          held = Buffer.from(frame);
          stats.reordered++;
          continue;
        }
        for (let k = 0; k < copies; k++) out.push(frame);
        if (held) {
          out.push(held);
          held = undefined;
        }
      }
      partial = Buffer.from(data.subarray(start));
      if (out.length === 0) return;
      for (const f of out) delivered(f);
      // Split and merge: the frames of this read go out in pieces of random size.
      const bytes = Buffer.concat(out);
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(this.rand() * 700);
        to.write(bytes.subarray(at, at + n));
        stats.writes++;
        at += n;
      }
    });
  }

  async stop(): Promise<void> {
    for (const p of [this.device, this.gateway]) if (p.isOpen) await new Promise<void>((r) => p.close(() => r()));
  }
}
