import type { StreamCursor } from '../../contracts/reading-sink.js';

/**
 * The serial source's committed progress as the store keeps it: one stream per device boot
 * session and sensor, named "device/session/sensor", positioned at the highest sequence number
 * committed (PROTOCOL.md §4: what the ACK after a reconnect tells the firmware it may drop).
 */
export function sessionPrefix(device: string, session: number): string {
  return `${device}/${session}/`;
}

export function cursorsOf(device: string, session: number, progress: ReadonlyMap<number, number>): StreamCursor[] {
  const prefix = sessionPrefix(device, session);
  return [...progress].map(([sensor, seq]) => ({ stream: `${prefix}${sensor}`, position: seq }));
}

/** Highest committed sequence per sensor of one session, from the source's cursors under its prefix. */
export function progressOf(cursors: ReadonlyMap<string, number>, device: string, session: number): Map<number, number> {
  const prefix = sessionPrefix(device, session);
  const out = new Map<number, number>();
  for (const [stream, position] of cursors) {
    const sensor = Number(stream.slice(prefix.length));
    if (stream.startsWith(prefix) && Number.isInteger(sensor)) out.set(sensor, position);
  }
  return out;
}
