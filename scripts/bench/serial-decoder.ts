/**
 * Serial frame decoder throughput (PROTOCOL.md §2): a large buffer of READING frames pushed
 * in 4 KiB chunks, repeated runs; prints frames/s and MB/s as min/median/max, JSON last.
 *
 *   node dist/scripts/bench/serial-decoder.js [--frames N] [--runs N]
 */
import { FrameDecoder } from '../../agent/sources/serial/frame-decoder.js';
import { encodeFrame } from '../../agent/sources/serial/protocol.js';
import { intArg } from './lib/args.js';

const frames = intArg('frames', 200_000);
const runs = intArg('runs', 5);
const parts = Array.from({ length: frames }, (_, i) => encodeFrame({ version: 1, type: 'reading', sensor: i % 8, seq: i, uptimeMs: i, values: [i * 0.5, -i] }));
const stream = Buffer.concat(parts);
const fps: number[] = [];
for (let r = 0; r < runs; r++) {
  const d = new FrameDecoder();
  let got = 0;
  const t = performance.now();
  for (let at = 0; at < stream.length; at += 4096) got += d.push(stream.subarray(at, at + 4096)).length;
  const s = (performance.now() - t) / 1000;
  if (got !== frames) throw new Error(`decoded ${got} of ${frames}`);
  fps.push(frames / s);
  console.log(`run ${r + 1}: ${Math.round(frames / s)} frames/s, ${(stream.length / s / 1e6).toFixed(1)} MB/s`);
}
fps.sort((a, b) => a - b);
const pick = (i: number) => Math.round(fps[i]!);
const frameBytes = stream.length / frames;
console.log(
  JSON.stringify({
    benchmark: 'serial-frame-decoder',
    frames,
    runs,
    frame_bytes: frameBytes,
    frames_per_s: { min: pick(0), median: pick(Math.floor(fps.length / 2)), max: pick(fps.length - 1) },
    // At 115200 baud (10 bits per byte on the wire) a line carries this many such frames per second:
    line_frames_per_s_115200: Math.round(11_520 / frameBytes),
  }),
);
