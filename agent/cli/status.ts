import type { Command } from 'commander';
import { projectedGbPerDay } from '../store/write-meter.js';
import { statSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { batchCidText } from '../identity/cid.js';
import { newestBatch } from '../store/batch-contents.js';
import { BatchStore } from '../store/batch-store.js';
import { openDatabase } from '../store/database.js';
import type { InferenceStats } from '../pipeline/inference-stage.js';
import { getMeta } from '../store/meta.js';
import { readCounters } from '../store/reading-store.js';
import { StatusQueries } from '../store/status-queries.js';
import { absDir, dataDirOption, isoTime, printJson } from './common.js';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const fileSize = (path: string) => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

export function collectStatus(dataDir: string) {
  const loaded = loadConfig(absDir(dataDir));
  const dbPath = loaded.resolvePath(loaded.config.store.path);
  const db = openDatabase(dbPath, { readonly: true });
  try {
    const batches = new BatchStore(db);
    const queries = new StatusQueries(db);
    const unbatched = batches.unbatchedSummary();
    const byState = batches.countsByState();
    const oldestPending = batches.nextPending();
    const last = newestBatch(db);
    const snapshotText = getMeta(db, 'agent_snapshot');
    const snapshot = snapshotText
      ? (JSON.parse(snapshotText) as {
          pid: number;
          running: boolean;
          sources: Record<string, unknown>;
          inference?: InferenceStats;
          store?: { written_bytes_per_hour?: number | null };
        })
      : undefined;
    const counters = readCounters(db);
    const dropped = counters.filter((c) => c.name === 'dropped');
    const unreported = batches.unreportedDrops();
    const num = (k: string) => {
      const v = getMeta(db, k);
      return v === undefined ? null : Number(v);
    };
    return {
      device_id: getMeta(db, 'device_id') ?? null,
      running: snapshot ? snapshot.running && processAlive(snapshot.pid) : false,
      boot: num('boot_counter'),
      readings: {
        buffered: unbatched.count,
        total: queries.readingsTotal(),
      },
      batches: {
        pending: byState.pending,
        delivered: byState.delivered,
        rejected: byState.rejected,
        last_seq: last?.seq ?? null,
        /** Content identifier of the newest batch (wire-format.md §12.11), as IPFS and the receiver name it. */
        last_cid: last ? batchCidText(last.envelope) : null,
        oldest_pending_cid: oldestPending ? batchCidText(oldestPending.envelope) : null,
        oldest_pending_seq: oldestPending?.seq ?? null,
        oldest_pending_created_at: oldestPending?.created_at ?? null,
        receipts: queries.receipts(),
      },
      uplink: {
        url: loaded.config.uplink?.url ?? null,
        last_success_at: num('uplink_last_success_at'),
        last_error: getMeta(db, 'uplink_last_error') ?? null,
        last_error_at: num('uplink_last_error_at'),
        next_attempt_error: oldestPending?.last_error ?? null,
      },
      store: {
        path: dbPath,
        file_bytes: fileSize(dbPath),
        wal_bytes: fileSize(`${dbPath}-wal`),
        max_bytes: loaded.config.store.max_bytes,
        written_bytes: counters.find((c) => c.name === 'store_bytes_written')?.value ?? 0,
        written_bytes_per_hour: snapshot?.store?.written_bytes_per_hour ?? null,
        /** written_bytes_per_hour over a day, GB (10^9 bytes): SD-card wear (issue 13). */
        projected_gb_per_day: projectedGbPerDay(snapshot?.store?.written_bytes_per_hour ?? null),
      },
      dropped: {
        total: dropped.reduce((a, c) => a + c.value, 0),
        by_sensor: Object.fromEntries(dropped.map((c) => [c.label, c.value])),
        not_yet_reported: unreported.readings,
        /** When the oldest drop not yet carried by a batch happened (ms), and how long ago (s). */
        unreported_since: unreported.since,
        unreported_for_s: unreported.since === null ? null : Math.max(0, Math.round((Date.now() - unreported.since) / 1000)),
      },
      counters,
      sources: snapshot?.sources ?? {},
      verdicts: {
        ...queries.verdictCounts(),
        alerts_active: queries.alertsActive(),
      },
      inference: snapshot?.inference ?? null,
    };
  } finally {
    db.close();
  }
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('show buffered readings, pending and delivered batches, uplink health and rejections')
    .addOption(dataDirOption())
    .option('--json', 'print as JSON')
    .action((opts: { dataDir: string; json?: boolean }) => {
      const s = collectStatus(opts.dataDir);
      if (opts.json) return printJson(s);
      const lines = [
        `device     ${s.device_id ?? '(no readings stored yet)'}`,
        `agent      ${s.running ? 'running' : 'not running'}${s.boot ? ` (boot ${s.boot})` : ''}`,
        `readings   ${s.readings.buffered} buffered (not yet in a batch), ${s.readings.total} stored`,
        `batches    ${s.batches.pending} pending, ${s.batches.delivered} delivered, ${s.batches.rejected} rejected, ${s.batches.receipts} receipts`,
        `store      ${mib(s.store.file_bytes + s.store.wal_bytes)} on disk${s.store.max_bytes > 0 ? ` of a ${mib(s.store.max_bytes)} budget` : ' (no budget)'}, ${mib(s.store.written_bytes)} written${s.store.written_bytes_per_hour === null ? '' : ` (${mib(s.store.written_bytes_per_hour)}/hour, projected ${s.store.projected_gb_per_day!.toFixed(2)} GB/day)`}`,
        `dropped    ${s.dropped.total} readings under the disk budget${s.dropped.not_yet_reported > 0 ? ` (${s.dropped.not_yet_reported} not yet reported upstream, the oldest for ${s.dropped.unreported_for_s} s)` : ''}`,
        `uplink     ${s.uplink.url ?? '(none configured)'}`,
        `  last ok  ${isoTime(s.uplink.last_success_at)}`,
        `  last err ${s.uplink.last_error ? `${isoTime(s.uplink.last_error_at)} ${s.uplink.last_error}` : '-'}`,
      ];
      if (s.batches.last_seq !== null) lines.splice(4, 0, `  newest   batch ${s.batches.last_seq}, cid ${s.batches.last_cid}`);
      if (s.batches.oldest_pending_seq !== null) lines.push(`  oldest pending batch ${s.batches.oldest_pending_seq}, cut ${isoTime(s.batches.oldest_pending_created_at)}, cid ${s.batches.oldest_pending_cid}`);
      for (const [id, h] of Object.entries(s.sources)) lines.push(`source ${id}  ${JSON.stringify(h)}`);
      if (s.inference) {
        const i = s.inference;
        lines.push(
          `inference  ${i.scored} readings scored, ${i.verdicts} verdicts, ${i.alertsRaised} alerts raised, ${i.queued} queued` +
            `${i.windows > 0 ? `, ${((1000 * i.inferenceMs) / i.windows).toFixed(1)} µs/window` : ''}`,
        );
        for (const [id, b] of Object.entries(i.bindings)) lines.push(`  ${id}  model ${b.model}, ${b.series} series`);
        for (const [id, d] of Object.entries(i.disabled ?? {})) lines.push(`  ${id}  DISABLED (model ${d.model}): ${d.reason}`);
        for (const [id, u] of Object.entries(i.unmatched ?? {})) lines.push(`  ${id}  MATCHES NO SENSOR after ${u.after} readings (filters: ${u.filters.join(', ')}); sensors that arrived: ${u.seen.join(', ')}`);
      }
      lines.push(`verdicts   ${s.verdicts.stored} stored, ${s.verdicts.buffered} not yet in a batch`);
      for (const a of s.verdicts.alerts_active) lines.push(`  ALERT ${a.series} (${a.model}) since ${isoTime(a.since)}`);
      for (const c of s.counters) lines.push(`${c.name.padEnd(10)} ${String(c.value).padStart(8)}  ${c.label}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
