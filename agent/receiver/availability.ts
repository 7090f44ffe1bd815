/**
 * A device's availability from its signed heartbeats (docs/wire-format.md §12.5, agent.heartbeat
 * and agent.stop events): the device counts as up from each heartbeat until its interval has
 * passed with a grace of half an interval; a clean stop ends it at once (planned downtime). Times
 * are the gateway's own (`t` of the signed events), so a device cannot be up before it said so.
 */

export interface HeartbeatMark {
  ts: number;
  kind: 'agent.heartbeat' | 'agent.stop';
  intervalS?: number;
  boot?: number;
}

export interface Availability {
  from: number;
  to: number;
  interval_s: number | null;
  heartbeats: number;
  /** Share of [from, to] covered, 0..1; null when there is no heartbeat to judge by. */
  availability: number | null;
  up_ms: number;
  downtime: { from: number; to: number; planned: boolean }[];
  boots: number[];
}

const GRACE = 1.5;

export function computeAvailability(marks: readonly HeartbeatMark[], from: number, to: number): Availability {
  const sorted = [...marks].sort((a, b) => a.ts - b.ts);
  const beats = sorted.filter((m) => m.kind === 'agent.heartbeat');
  const intervalS = beats.find((b) => b.intervalS)?.intervalS ?? null;
  const result: Availability = { from, to, interval_s: intervalS, heartbeats: beats.filter((b) => b.ts >= from && b.ts <= to).length, availability: null, up_ms: 0, downtime: [], boots: [] };
  if (beats.length === 0 || to <= from) return result;
  // Up intervals: [beat, beat + grace x interval], cut short by a stop; merged where they overlap.
  const up: { from: number; to: number; endsInStop: boolean }[] = [];
  for (let k = 0; k < sorted.length; k++) {
    const m = sorted[k]!;
    if (m.kind !== 'agent.heartbeat') continue;
    const span = (m.intervalS ?? intervalS ?? 300) * 1000 * GRACE;
    let end = m.ts + span;
    let endsInStop = false;
    const next = sorted[k + 1];
    if (next && next.kind === 'agent.stop' && next.ts < end) {
      end = next.ts;
      endsInStop = true;
    }
    const last = up[up.length - 1];
    if (last && m.ts <= last.to) {
      if (end > last.to) {
        last.to = end;
        last.endsInStop = endsInStop;
      } else if (endsInStop) last.endsInStop = true;
    } else up.push({ from: m.ts, to: end, endsInStop });
  }
  let cursor = from;
  let plannedGap = false;
  for (const u of up) {
    const a = Math.max(u.from, from);
    const b = Math.min(u.to, to);
    if (b <= a) {
      plannedGap = u.endsInStop;
      continue;
    }
    if (a > cursor) result.downtime.push({ from: cursor, to: a, planned: plannedGap });
    result.up_ms += b - a;
    cursor = b;
    plannedGap = u.endsInStop;
  }
  if (cursor < to) result.downtime.push({ from: cursor, to, planned: plannedGap });
  result.availability = result.up_ms / (to - from);
  result.boots = [...new Set(beats.filter((b) => b.boot !== undefined && b.ts >= from && b.ts <= to).map((b) => b.boot!))];
  return result;
}
