/**
 * Event kinds the reference agent records (docs/wire-format.md §12.5). Kinds are data, not format:
 * a verifier accepts any kind matching the pattern; this list is what our own agent means by
 * them, and test/unit/event-kinds.test.ts checks that §12.5's table names every one.
 */

/** The guard stage's kinds (agent/guard/, README "Guarding the edge"): `s` is what they are about, `d` their detail keys. */
export const GUARD_EVENT_KINDS = {
  'quarantine.start': { s: 'quarantine key (sensor:ID, source:SOURCE:ORIGIN)', d: ['reason', 'by', 'new_ids_10s', 'limit', 'per_s', 'dropped'] },
  'quarantine.release': { s: 'quarantine key', d: ['reason', 'by', 'kept', 'dropped', 'since'] },
  'maintenance.start': { s: 'sensor or asset', d: ['until', 'by'] },
  'maintenance.stop': { s: 'sensor or asset', d: ['until', 'by'] },
  'sensor.silent': { s: 'sensor id', d: ['source', 'silent_ms', 'interval_ms'] },
  'sensor.back': { s: 'sensor id', d: ['source', 'silent_ms'] },
  'sensor.origin_change': { s: 'sensor id', d: ['from', 'to'] },
  'sensor.time_backwards': { s: 'sensor id', d: ['back_ms', 't'] },
  'guard.replay': { s: 'sensor id, or the replayed origin', d: ['origin', 'seq', 'last_seq', 'device', 'session', 'latest_session', 'readings'] },
  'guard.rate_limited': { s: 'sensor id or origin', d: ['per_s', 'burst'] },
  'guard.payload_size': { s: 'origin', d: ['bytes', 'mean_bytes'] },
} as const;

export type GuardEventKind = keyof typeof GUARD_EVENT_KINDS;

/** Adaptive reporting's kinds (agent/adaptive/, agent/store/held-readings.ts): `report.summary` carries the rule of §12.5. */
export const ADAPTIVE_EVENT_KINDS = {
  'report.interval': { s: 'sensor id', d: ['interval_ms', 'status', 'via', 'reason', 'alert_series', 'alert_model', 'device_interval_ms', 'min_ms', 'max_ms'] },
  'report.summary': { s: 'sensor id', d: ['interval_ms', 'window_start', 'count', 'min', 'max', 'mean', 'first_t', 'last_t', 'first_id', 'last_id'] },
  'report.full_rate': { s: 'sensor id', d: ['reason', 'by', 'from_t', 'to_t', 'released'] },
} as const;
