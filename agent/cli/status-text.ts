import type { SourceHealth } from '../sources/source.js';
import type { collectStatus } from './status.js';

type Status = ReturnType<typeof collectStatus>;

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

/** "just now", "42 s ago", "3 min ago", "5 h ago", "2 days ago"; "in 3 min" for a time ahead (a clock that stepped back). */
export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (ms === null || ms === undefined) return 'never';
  const d = now - ms;
  const s = Math.round(Math.abs(d) / 1000);
  const text = s < 2 ? 'just now' : s < 90 ? `${s} s` : s < 90 * 60 ? `${Math.round(s / 60)} min` : s < 36 * 3600 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} days`;
  if (text === 'just now') return text;
  return d >= 0 ? `${text} ago` : `in ${text}`;
}

const MARK = { ok: '✓', degraded: '!', fail: '✗' } as const;

/** One line per source: type, endpoint, counts, last message; no raw JSON. */
function sourceLine(id: string, h: Partial<SourceHealth>): string {
  const state = h.connected ? 'connected to' : 'NOT connected to';
  const extra = Object.entries(h.counters ?? {})
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v}`);
  return (
    `source ${id}  ${h.type ?? '?'}, ${state} ${h.endpoint ?? '?'}: ${h.accepted ?? 0} accepted, ${h.duplicates ?? 0} duplicates, ${h.rejected ?? 0} rejected` +
    `, last message ${ago(h.lastMessageAt)}${extra.length > 0 ? `; ${extra.join(', ')}` : ''}${h.lastError ? `; last error: ${h.lastError}` : ''}${h.loss ? `; lost upstream ${ago(h.lossAt)}: ${h.loss}` : ''}`
  );
}

/** `edge-agent status` for people: the health checks first, times as "3 min ago" (`--json` keeps the machine form). */
export function statusText(s: Status, now = Date.now()): string[] {
  const lines = [
    `device     ${s.device_id ?? '(no readings stored yet)'}`,
    `agent      ${s.running ? `running${s.started_at ? `, started ${ago(s.started_at, now)}` : ''}` : 'not running'}${s.boot ? ` (boot ${s.boot})` : ''}`,
  ];
  if (s.config_file_error) lines.push(`CONFIG FILE DOES NOT VALIDATE (shown from the store with default paths): ${s.config_file_error.replace(/\n\s*/g, ' ')}`);
  if (s.health) {
    lines.push(`health     ${s.health.status === 'ok' ? 'ok' : s.health.status === 'degraded' ? 'DEGRADED' : 'FAILING'} (checked ${ago(s.snapshot_at, now)})`);
    for (const [name, c] of Object.entries(s.health.checks)) lines.push(`  ${c.ok ? MARK.ok : c.degraded ? MARK.degraded : MARK.fail} ${name.padEnd(9)} ${c.reason}`);
  }
  if (s.config) {
    const c = s.config;
    lines.push(`config     version ${c.version}${c.restart_needed.length > 0 ? `; restart needed for: ${c.restart_needed.join(', ')}` : ''}`);
    const r = c.last_reload;
    if (r) lines.push(`  reload   ${ago(r.at, now)}: ${r.ok ? `applied ${r.applied.length > 0 ? r.applied.join(', ') : 'no change'}` : `REFUSED, running config kept: ${r.error}`}`);
  }
  lines.push(
    `readings   ${s.readings.buffered} buffered (not yet in a batch), ${s.readings.total} stored`,
    `batches    ${s.batches.pending} pending, ${s.batches.delivered} delivered, ${s.batches.rejected} rejected, ${s.batches.receipts} receipts`,
  );
  if (s.batches.last_seq !== null) lines.push(`  newest   batch ${s.batches.last_seq}, cid ${s.batches.last_cid}`);
  lines.push(
    `store      ${mib(s.store.file_bytes + s.store.wal_bytes)} on disk${s.store.max_bytes > 0 ? ` of a ${mib(s.store.max_bytes)} budget` : ' (no budget)'}, ${mib(s.store.written_bytes)} written${s.store.written_bytes_per_hour === null ? '' : ` (${mib(s.store.written_bytes_per_hour)}/hour, projected ${(s.store.projected_gb_per_day ?? 0).toFixed(2)} GB/day)`}`,
    `dropped    ${s.dropped.total} readings under the disk budget${s.dropped.not_yet_reported > 0 ? ` (${s.dropped.not_yet_reported} not yet reported upstream, the oldest for ${s.dropped.unreported_for_s} s)` : ''}`,
    `uplink     ${s.uplink.url ?? '(none configured)'}`,
    `  last ok  ${ago(s.uplink.last_success_at, now)}`,
    `  last err ${s.uplink.last_error ? `${ago(s.uplink.last_error_at, now)}: ${s.uplink.last_error}` : '-'}`,
  );
  if (s.batches.oldest_pending_seq !== null) lines.push(`  oldest pending batch ${s.batches.oldest_pending_seq}, cut ${ago(s.batches.oldest_pending_created_at, now)}, cid ${s.batches.oldest_pending_cid}`);
  for (const [id, h] of Object.entries(s.sources)) lines.push(sourceLine(id, h as Partial<SourceHealth>));
  if (s.inference) {
    const i = s.inference;
    lines.push(
      `inference  ${i.scored} readings scored, ${i.verdicts} verdicts, ${i.alertsRaised} alerts raised, ${i.queued} queued` +
        `${i.windows > 0 ? `, ${((1000 * i.inferenceMs) / i.windows).toFixed(1)} µs/window` : ''}`,
    );
    for (const [id, b] of Object.entries(i.bindings)) {
      const rule = b.alert ? `, alert ${b.alert.direction === 'above' ? '>=' : '<='} ${b.alert.on} (clears past ${b.alert.off})` : '';
      lines.push(`  ${id}  model ${b.model}, ${b.series} series${rule}`);
    }
    for (const [id, d] of Object.entries(i.disabled ?? {})) lines.push(`  ${id}  DISABLED (model ${d.model}): ${d.reason}`);
    for (const [id, u] of Object.entries(i.unmatched ?? {})) lines.push(`  ${id}  MATCHES NO SENSOR after ${u.after} readings (filters: ${u.filters.join(', ')}); sensors that arrived: ${u.seen.join(', ')}`);
  }
  const u = s.update;
  const version = (v: { id: string; version: string; applied_at: number } | null | undefined) => (v ? `${v.version} (bundle ${v.id}${v.applied_at ? `, applied ${ago(v.applied_at, now)}` : ''})` : '-');
  if (u.models) lines.push(`models     ${version(u.models.current)}; previous ${version(u.models.previous)}`);
  if (u.config) lines.push(`config upd ${version(u.config.current)}; previous ${version(u.config.previous)}`);
  if (u.last) lines.push(`update     last: bundle ${u.last.id} ${u.last.version} ${u.last.outcome.replace('_', ' ')} ${ago(u.last.at, now)}${u.last.reason ? `: ${u.last.reason}` : ''}`);
  const g = s.guard;
  lines.push(`guard      ${g.quarantined.length} quarantined, ${g.maintenance.length} in maintenance`);
  for (const q of g.quarantined.slice(0, 10)) lines.push(`  QUARANTINED ${q.key} (${q.reason}) since ${ago(q.since, now)}: kept ${q.kept}, dropped ${q.dropped}`);
  if (g.quarantined.length > 10) lines.push(`  ... ${g.quarantined.length - 10} more: edge-agent quarantine list`);
  for (const m of g.maintenance.slice(0, 10)) lines.push(`  MAINTENANCE ${m.target} since ${ago(m.since, now)}${m.until ? `, ends ${ago(m.until, now)}` : ', until stopped'}`);
  for (const [check, n] of Object.entries(g.check_failures)) lines.push(`  CHECK FAILED ${check} ${n} times (a bug: its readings went on unchecked; see the log)`);
  lines.push(`verdicts   ${s.verdicts.stored} stored, ${s.verdicts.buffered} not yet in a batch`);
  for (const a of s.verdicts.alerts_active) lines.push(`  ALERT ${a.series} (${a.model}) since ${ago(a.since, now)}`);
  for (const c of s.counters) lines.push(`${c.name.padEnd(10)} ${String(c.value).padStart(8)}  ${c.label}`);
  return lines;
}
