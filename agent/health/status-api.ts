import { StatusQueries } from '../store/status-queries.js';
import type { AgentState } from './agent-state.js';
import { checkHealth, type HealthLimits } from './healthz.js';

// The page shows the newest readings and scores, read by primary key from the end of each
// table: a scrape costs the same whatever the store holds.
const RECENT_READINGS = 5000;
const RECENT_VERDICTS = 5000;
const ALERT_SCAN_VERDICTS = 100_000;
const MAX_CHARTS = 24;
const MAX_POINTS = 300;
const MAX_COUNTERS = 30;

export interface SensorSeries {
  key: string;
  unit: string | null;
  /** [ts ms, value] oldest first. */
  values: [number, number][];
  /** [ts ms (window end), score in [0,1]] oldest first, from the verdicts of anomaly models. */
  scores: [number, number][];
  latest: { ts: number; value: number } | null;
  latestScore: { ts: number; score: number; model: string; alert: boolean; threshold: number | null } | null;
}

export interface AlertRow {
  ts: number;
  key: string;
  model: string;
  raised: boolean;
  score: number | null;
  threshold: number | null;
}

/** Everything the status page shows, in one JSON document (the page polls it). */
export function statusOverview(state: AgentState, limits: HealthLimits, now = Date.now()) {
  const queries = new StatusQueries(state.db);
  const series = new Map<string, SensorSeries>();
  const entry = (key: string) => {
    let s = series.get(key);
    if (!s) {
      s = { key, unit: null, values: [], scores: [], latest: null, latestScore: null };
      series.set(key, s);
    }
    return s;
  };
  const readings = queries.recentReadings(RECENT_READINGS);
  for (const r of readings) {
    const s = entry(r.sensor);
    if (s.values.length >= MAX_POINTS) continue;
    s.values.push([r.ts, r.value]);
    s.unit ??= r.unit;
  }
  let alerts: AlertRow[] = [];
  const verdictsAvailable = queries.hasTable('verdicts');
  if (verdictsAvailable) {
    const verdicts = queries.recentVerdicts(RECENT_VERDICTS);
    for (const v of verdicts) {
      const s = entry(v.key);
      if (v.score === null) continue;
      if (!s.latestScore) s.latestScore = { ts: v.ts, score: v.score, model: v.model_id, alert: v.alert === 1, threshold: v.threshold };
      if (s.scores.length < MAX_POINTS) s.scores.push([v.ts, v.score]);
    }
    alerts = queries.recentAlertChanges(ALERT_SCAN_VERDICTS, 50).map((v) => ({ ts: v.ts, key: v.key, model: v.model_id, raised: v.alert === 1, score: v.score, threshold: v.threshold }));
  }
  const all = [...series.values()];
  for (const s of all) {
    s.values.sort((a, b) => a[0] - b[0]);
    s.scores.sort((a, b) => a[0] - b[0]);
    const last = s.values[s.values.length - 1];
    s.latest = last ? { ts: last[0], value: last[1] } : null;
  }
  const charted = all.sort((a, b) => a.key.localeCompare(b.key)).slice(0, MAX_CHARTS);
  const health = checkHealth(state, limits, now);
  const oldest = state.oldestPending();
  const uplink = state.uplink();
  return {
    device_id: state.info.deviceId,
    boot: state.info.boot,
    started_at: state.info.startedAt,
    now,
    health,
    backlog: {
      batches: state.batchCounts(),
      oldest_pending_seq: oldest?.seq ?? null,
      oldest_pending_age_s: oldest ? Math.max(0, (now - oldest.created_at) / 1000) : null,
      unbatched_readings: state.unbatchedUpTo(1_000_000).count,
      store_bytes: state.storeBytes(),
      store_max_bytes: state.info.storeMaxBytes ?? 0,
      ...storeWriteFields(state.storeWrites()),
    },
    uplink: uplink
      ? {
          url: state.uplinkView!.url,
          last_success_at: uplink.lastSuccessAt,
          consecutive_failures: uplink.consecutiveFailures,
          last_error: uplink.lastError,
          last_error_at: uplink.lastErrorAt,
        }
      : null,
    sources: state.sources(),
    // Rejections, duplicates, drops...: the largest first, so a problem stands out.
    counters: state
      .counters()
      .sort((a, b) => b.value - a.value)
      .slice(0, MAX_COUNTERS),
    verdicts_available: verdictsAvailable,
    sensors_total: series.size,
    sensors: charted,
    alerts,
  };
}

/** Flash wear on the status page: lifetime bytes written and the projected GB/day (issue 13). */
function storeWriteFields(w: { written_bytes: number; projected_gb_per_day: number | null }) {
  return { store_written_bytes: w.written_bytes, store_projected_gb_per_day: w.projected_gb_per_day };
}
