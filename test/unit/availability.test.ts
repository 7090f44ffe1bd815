import { describe, expect, it } from 'vitest';
import { computeAvailability } from '../../agent/receiver/availability.js';

const beat = (ts: number, boot = 1) => ({ ts, kind: 'agent.heartbeat' as const, intervalS: 60, boot });

describe('availability from heartbeats', () => {
  it('is full for a device beating on time, and counts a silence past the grace as downtime', () => {
    const steady = computeAvailability([0, 60, 120, 180].map((s) => beat(s * 1000)), 0, 240_000);
    expect(steady.availability).toBe(1);
    const silent = computeAvailability([beat(0), beat(60_000), beat(400_000)], 0, 460_000);
    // up 0..150 s (last beat at 60 s + 1.5 x 60 s), down until 400 s, up to the end.
    expect(silent.downtime).toEqual([{ from: 150_000, to: 400_000, planned: false }]);
    expect(silent.availability).toBeCloseTo((460_000 - 250_000) / 460_000, 6);
  });

  it('tells a clean stop (planned) from a crash, and lists the boots', () => {
    const a = computeAvailability([beat(0), { ts: 30_000, kind: 'agent.stop' }, beat(100_000, 2), beat(160_000, 2)], 0, 200_000);
    expect(a.downtime).toEqual([{ from: 30_000, to: 100_000, planned: true }]);
    expect(a.boots).toEqual([1, 2]);
  });

  it('says nothing without a heartbeat', () => {
    expect(computeAvailability([], 0, 1000).availability).toBeNull();
  });
});
