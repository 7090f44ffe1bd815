import type { Command } from 'commander';
import { projectedGbPerDay } from '../store/write-meter.js';
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CONFIG_FILE, loadConfig } from '../config/load.js';
import { AgentError } from '../errors.js';
import { batchCidText } from '../identity/cid.js';
import { newestBatch } from '../store/batch-contents.js';
import { BatchStore } from '../store/batch-store.js';
import { openDatabase } from '../store/database.js';
import type { InferenceStats } from '../pipeline/inference-stage.js';
import { readUpdateState } from '../store/update-store.js';
import { getMeta } from '../store/meta.js';
import { readCounters } from '../store/reading-store.js';
import { GuardStore } from '../store/guard-store.js';
import { StatusQueries } from '../store/status-queries.js';
import { absDir, dataDirOption, printJson } from './common.js';
import { statusText } from './status-text.js';
import type { HealthReport } from '../health/healthz.js';
import type { AgentSnapshot } from '../run/agent.js';

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

/** What status needs from the config; the file may not validate while a running agent keeps its old one. */
interface StatusConfig {
  storePath: string;
  maxBytes: number;
  uplinkUrl: string | null;
  /** Why the file was read leniently: it fails validation (the running agent refused it on reload). */
  invalid?: string;
}

function statusConfig(dataDir: string): StatusConfig {
  try {
    const loaded = loadConfig(dataDir);
    return { storePath: loaded.resolvePath(loaded.config.store.path), maxBytes: loaded.config.store.max_bytes, uplinkUrl: loaded.config.uplink?.url ?? null };
  } catch (err) {
    if (!(err instanceof AgentError) || err.code !== 'CONFIG_INVALID') throw err;
    // A broken file must not hide the running agent: read the few keys status needs, with their defaults.
    let doc: { store?: { path?: unknown; max_bytes?: unknown }; uplink?: { url?: unknown } } = {};
    try {
      doc = (parseYaml(readFileSync(join(dataDir, CONFIG_FILE), 'utf8')) ?? {}) as typeof doc;
    } catch {
      // not even YAML: the defaults
    }
    const path = typeof doc.store?.path === 'string' ? doc.store.path : DEFAULT_STORE_PATH;
    return {
      storePath: isAbsolute(path) ? path : join(dataDir, path),
      maxBytes: typeof doc.store?.max_bytes === 'number' ? doc.store.max_bytes : 0,
      uplinkUrl: typeof doc.uplink?.url === 'string' ? doc.uplink.url : null,
      invalid: err.message,
    };
  }
}

const DEFAULT_STORE_PATH = 'edge-agent.db';

export function collectStatus(dataDir: string) {
  const cfg = statusConfig(absDir(dataDir));
  const dbPath = cfg.storePath;
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
          updated_at?: number;
          started_at?: number;
          inference?: InferenceStats;
          guard?: { check_failures: Record<string, number> };
          adaptive?: Record<string, unknown>;
          store?: { written_bytes_per_hour?: number | null };
          health?: HealthReport;
          config?: AgentSnapshot['config'];
        })
      : undefined;
    const counters = readCounters(db);
    // A store an older agent wrote has no guard tables until the new one runs: nothing quarantined then.
    const guardRows = (() => {
      try {
        const g = new GuardStore(db);
        return { quarantined: g.activeQuarantines(), maintenance: g.maintenance() };
      } catch {
        return { quarantined: [], maintenance: [] };
      }
    })();
    const dropped = counters.filter((c) => c.name === 'dropped');
    const unreported = batches.unreportedDrops();
    const num = (k: string) => {
      const v = getMeta(db, k);
      return v === undefined ? null : Number(v);
    };
    const running = snapshot ? snapshot.running && processAlive(snapshot.pid) : false;
    return {
      device_id: getMeta(db, 'device_id') ?? null,
      running,
      /** Set when edge-agent.yaml fails validation: status read it leniently (the running agent keeps its config). */
      config_file_error: cfg.invalid ?? null,
      boot: num('boot_counter'),
      started_at: snapshot?.started_at ?? null,
      /** When the running agent last wrote this snapshot (every 5 s). */
      snapshot_at: snapshot?.updated_at ?? null,
      /** The running agent's /healthz report as of snapshot_at; null when it is not running. */
      health: running ? (snapshot?.health ?? null) : null,
      /** The config in force: version, keys waiting for a restart ("restart needed for"), the last reload. */
      config: snapshot?.config ?? null,
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
        url: cfg.uplinkUrl,
        last_success_at: num('uplink_last_success_at'),
        last_error: getMeta(db, 'uplink_last_error') ?? null,
        last_error_at: num('uplink_last_error_at'),
        next_attempt_error: oldestPending?.last_error ?? null,
      },
      store: {
        path: dbPath,
        file_bytes: fileSize(dbPath),
        wal_bytes: fileSize(`${dbPath}-wal`),
        max_bytes: cfg.maxBytes,
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
      guard: {
        quarantined: guardRows.quarantined.map((q) => ({ key: q.key, reason: q.reason, since: q.since, kept: q.kept, dropped: q.dropped })),
        maintenance: guardRows.maintenance,
        check_failures: snapshot?.guard?.check_failures ?? {},
      },
      adaptive: snapshot?.adaptive ?? null,
      update: readUpdateState(db),
    };
  } finally {
    db.close();
  }
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('show health checks, buffered readings, pending and delivered batches, uplink health, config reloads and rejections')
    .addOption(dataDirOption())
    .option('--json', 'print as JSON')
    .action((opts: { dataDir: string; json?: boolean }) => {
      const s = collectStatus(opts.dataDir);
      if (opts.json) return printJson(s);
      process.stdout.write(`${statusText(s).join('\n')}\n`);
    });
}
