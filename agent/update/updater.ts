import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { LoadedConfig } from '../config/load.js';
import { MAX_UPDATE_ENVELOPE_BYTES, UpdateRefused, verifyUpdate, type UpdateBundle } from '../identity/update-bundle.js';
import type { Logger } from '../log.js';
import type { Db } from '../store/database.js';
import type { EventStore } from '../store/event-store.js';
import { readUpdateState, recentReadings, writeUpdateState, type AppliedVersion, type UpdateState } from '../store/update-store.js';
import { RepeatedLog } from '../util/repeated-log.js';
import { applyConfig, restorePreviousConfig, type ReloadHook } from './apply-config.js';
import type { UpdateConfig } from './config.js';
import { shadowCompare } from './shadow.js';
import { stageFiles } from './stage-files.js';

/** What the updater needs of the running agent (run/agent.ts implements it). */
export interface UpdateHost {
  db: Db;
  events: EventStore;
  device: Uint8Array;
  config(): LoadedConfig;
  /** The directory of the model set running now. */
  runningModelsDir(): string;
  /** Stops the score stage and starts it again on the model set in `dir`; throws when it cannot start. */
  swapModels(dir: string): Promise<void>;
  reloadConfig: ReloadHook;
  /** Whether the agent is healthy again after an update: models loaded and scoring, readings committed since `since`. */
  healthSince(since: { committed: number; scored: number }): { ok: boolean; why: string };
  /** Counters `healthSince` compares against. */
  progress(): { committed: number; scored: number };
}

const HEALTH_POLL_MS = 500;
/** Refusals that may pass: the bundle is tried again (after PASSING_RETRY_MS) instead of being marked handled. */
const PASSING_REASONS: ReadonlySet<string> = new Set(['fetch-failed', 'shadow-inconclusive']);
const PASSING_RETRY_MS = 60_000;

/** Only the running and the previous model set stay on disk: every other staged set under `root` is deleted. */
function pruneStaged(root: string, keep: (string | undefined)[]): void {
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    if (!keep.includes(path)) rmSync(path, { recursive: true, force: true });
  }
}
/** Envelopes already refused, by sha256: a receiver that offers the same bad bundle with every reply is not re-verified. */
const REFUSED_KEPT = 100;
const MAX_REASON = 256;

/** One line (a multi-line config error becomes one), at most MAX_REASON characters (§12.5's limit on a detail text). */
const clip = (text: string) => {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > MAX_REASON ? `${s.slice(0, MAX_REASON - 1)}…` : s;
};

/**
 * Takes update bundles from the uplink's replies, one at a time, and walks each through the steps
 * of docs/updates.md §3: verify, stage beside the running set, check (shadow run or full config
 * validation), apply, watch health, and roll back by itself when health does not return. Every
 * outcome is an event in the signed batches and the state `status` shows.
 */
export class Updater {
  private busy = false;
  private readonly refused = new Set<string>();
  /** Bundles refused for a passing reason (a fetch failed, too few readings to shadow yet): tried again after this time. */
  private readonly retryAt = new Map<string, number>();
  /** Passing refusals already recorded as an event (once per bundle and process, not once per offer). */
  private readonly reportedPassing = new Set<string>();
  private readonly offerFailed: RepeatedLog;
  private healthTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly cfg: UpdateConfig,
    private readonly host: UpdateHost,
    private readonly publisherKey: Uint8Array,
    private readonly log: Logger,
  ) {
    this.offerFailed = new RepeatedLog(log, 'warn', 'an update offered by the receiver was refused before it named itself');
  }

  state(): UpdateState {
    return readUpdateState(this.host.db);
  }

  /** An `update` field from a receiver's answer (base64). Never throws; a second offer while one runs is left for the next answer. */
  offer(base64: string): void {
    if (this.busy || this.stopped) return;
    const fits = base64.length <= Math.ceil(MAX_UPDATE_ENVELOPE_BYTES / 3) * 4;
    const envelope = fits && /^[A-Za-z0-9+/]*={0,2}$/.test(base64) ? new Uint8Array(Buffer.from(base64, 'base64')) : undefined;
    const digest = createHash('sha256').update(base64).digest('hex');
    if (this.refused.has(digest) || (this.retryAt.get(digest) ?? 0) > Date.now()) return;
    this.busy = true;
    void this.handle(envelope, digest)
      .catch((err: unknown) => this.log.error({ err }, 'update: handling an offered bundle failed; it is offered again with a later answer'))
      .finally(() => (this.busy = false));
  }

  stop(): void {
    this.stopped = true;
    if (this.healthTimer) clearTimeout(this.healthTimer);
  }

  private async handle(envelope: Uint8Array | undefined, digest: string): Promise<void> {
    let bundle: UpdateBundle | undefined;
    let staged: string | undefined;
    try {
      if (!envelope) throw new UpdateRefused('malformed', `the update field is not base64 of at most ${MAX_UPDATE_ENVELOPE_BYTES} bytes`);
      bundle = verifyUpdate(envelope, { publisherKey: this.publisherKey, device: this.host.device });
      const state = this.state();
      if (state.seen.includes(bundle.id)) return this.remember(digest);
      const dir = join(this.host.config().dataDir, 'updates', bundle.kind, bundle.id);
      this.log.info({ bundle: bundle.id, version: bundle.ver, kind: bundle.kind }, 'update offered: verified; staging it');
      await stageFiles(bundle, dir, this.cfg.fetch_timeout_s * 1000);
      staged = dir;
      if (bundle.kind === 'models') await this.applyModels(bundle, dir);
      else await this.applyConfigBundle(bundle, dir);
    } catch (err) {
      const refusal = err instanceof UpdateRefused ? err : new UpdateRefused('invalid', errorMessage(err));
      const passing = PASSING_REASONS.has(refusal.reason) && bundle !== undefined;
      if (passing) {
        this.retryAt.set(digest, Date.now() + PASSING_RETRY_MS);
        if (this.retryAt.size > REFUSED_KEPT) this.retryAt.delete(this.retryAt.keys().next().value!);
      } else this.remember(digest);
      // A refused set leaves nothing behind (the running and previous sets live in other directories).
      const models = this.state().models;
      if (staged && staged !== models?.current.dir && staged !== models?.previous?.dir) rmSync(staged, { recursive: true, force: true });
      const named = bundle ?? refusal.bundle;
      if (!named) return this.offerFailed.report(refusal, { reason: refusal.reason });
      if (passing && this.reportedPassing.has(named.id)) return this.log.info({ bundle: named.id, reason: refusal.message }, 'update: still cannot take it; trying again later');
      if (passing) this.reportedPassing.add(named.id);
      this.finish(named, 'refused', `${refusal.reason}: ${refusal.message}`, 'update.refused', bundle !== undefined && !passing);
    }
  }

  private async applyModels(b: UpdateBundle, dir: string): Promise<void> {
    const loaded = this.host.config();
    const inference = loaded.config.inference;
    if (!inference || Object.keys(inference.bindings).length === 0) throw new UpdateRefused('invalid', 'this gateway has no inference bindings: a model set has nothing to run');
    const publisherKey = inference.publisher_key ? (await import('../identity/device-id.js')).publicKeyFromDeviceId(inference.publisher_key) : undefined;
    const runningDir = this.host.runningModelsDir();
    // '' when the score stage is not running: shadowCompare then has nothing to compare with.
    const shadow = await shadowCompare({
      stagedDir: dir,
      runningDir,
      inference,
      ...(publisherKey ? { publisherKey } : {}),
      readings: recentReadings(this.host.db, this.cfg.shadow.readings),
      bounds: this.cfg.shadow,
    });
    this.log.info({ bundle: b.id, compared: shadow.compared, differing: shadow.differing }, 'update: shadow run within the bound; applying the model set');
    const state = this.state();
    const previous: AppliedVersion = state.models?.current ?? { id: 'initial', version: 'as installed', applied_at: 0, dir: runningDir };
    const since = this.host.progress();
    try {
      await this.host.swapModels(dir);
    } catch (err) {
      await this.host.swapModels(previous.dir!);
      throw new UpdateRefused('probe-failed', `the model set did not start: ${errorMessage(err)}; the previous set runs again`);
    }
    writeUpdateState(this.host.db, { ...state, models: { current: { id: b.id, version: b.ver, applied_at: Date.now(), dir }, previous }, watching: this.watchEntry(b) });
    pruneStaged(join(dir, '..'), [dir, previous.dir]);
    this.finish(b, 'applied', shadow.skipped ? `no shadow run, the running set cannot load: ${shadow.skipped}` : `shadow ${shadow.differing}/${shadow.compared} verdicts differ`, 'update.applied', true);
    await this.watchHealth(since);
  }

  private async applyConfigBundle(b: UpdateBundle, dir: string): Promise<void> {
    const current = this.host.config();
    const since = this.host.progress();
    const result = await applyConfig(readFileSync(join(dir, 'edge-agent.yaml'), 'utf8'), current, this.host.reloadConfig);
    const state = this.state();
    const previous: AppliedVersion = state.config?.current ?? { id: 'initial', version: 'as installed', applied_at: 0 };
    writeUpdateState(this.host.db, { ...state, config: { current: { id: b.id, version: b.ver, applied_at: Date.now() }, previous }, watching: this.watchEntry(b) });
    const restart = result.restart.length > 0 ? `; needs a restart for ${result.restart.join(', ')}` : '';
    this.finish(b, 'applied', `applied live: ${result.live.join(', ') || 'nothing'}${restart}`, 'update.applied', true);
    await this.watchHealth(since);
  }

  private watchEntry(b: UpdateBundle): NonNullable<UpdateState['watching']> {
    return { id: b.id, version: b.ver, kind: b.kind, deadline_at: Date.now() + this.cfg.health_timeout_s * 1000 };
  }

  /**
   * An apply whose health was still being watched when the agent stopped (or crashed: a model that
   * takes the process down is the case this is for) is watched again from this start, with a full
   * health_timeout_s, and rolled back the same way.
   */
  resume(): void {
    const w = this.state().watching;
    if (!w || this.busy) return;
    this.log.warn({ bundle: w.id, version: w.version }, 'update: the agent restarted before the last update proved healthy; watching its health again');
    writeUpdateState(this.host.db, { ...this.state(), watching: { ...w, deadline_at: Date.now() + this.cfg.health_timeout_s * 1000 } });
    this.busy = true;
    void this.watchHealth({ committed: 0, scored: 0 }).finally(() => (this.busy = false));
  }

  /**
   * Polls health after an apply (the updater stays busy meanwhile: no second update stacks on an
   * unproven one); when it has not returned by the deadline in the state, rolls back.
   */
  private async watchHealth(since: { committed: number; scored: number }): Promise<void> {
    for (;;) {
      await new Promise<void>((resolve) => (this.healthTimer = setTimeout(resolve, HEALTH_POLL_MS)));
      const w = this.state().watching;
      if (this.stopped || !w) return;
      const health = this.host.healthSince(since);
      if (health.ok) {
        writeUpdateState(this.host.db, { ...this.state(), watching: null });
        return this.log.info({ bundle: w.id, version: w.version }, 'update: health returned; keeping it');
      }
      if (Date.now() < w.deadline_at) continue;
      try {
        await this.rollback(w.kind);
        this.finish({ id: w.id, ver: w.version, kind: w.kind }, 'rolled_back', `health did not return within ${this.cfg.health_timeout_s} s: ${health.why}`, 'update.rolled_back', true);
      } catch (err) {
        this.log.error({ err, bundle: w.id }, 'update: the rollback failed; the agent needs an operator (edge-agent status, the logs)');
      }
      writeUpdateState(this.host.db, { ...this.state(), watching: null });
      return;
    }
  }

  /** Puts the previous version of `kind` back and makes it the current one. */
  private async rollback(kind: string): Promise<void> {
    const s = this.state();
    if (kind === 'models') {
      const previous = s.models?.previous;
      // dir '' = the configured set (inference.models_dir or the shipped one): what ran before any update.
      if (previous?.dir === undefined) throw new Error('no previous model set is recorded');
      await this.host.swapModels(previous.dir);
      writeUpdateState(this.host.db, { ...this.state(), models: { current: previous, previous: null } });
    } else {
      const previous = s.config?.previous ?? { id: 'initial', version: 'as installed', applied_at: 0 };
      await restorePreviousConfig(this.host.config(), this.host.reloadConfig);
      writeUpdateState(this.host.db, { ...this.state(), config: { current: previous, previous: null } });
    }
  }

  private remember(digest: string): void {
    this.refused.add(digest);
    if (this.refused.size > REFUSED_KEPT) this.refused.delete(this.refused.values().next().value!);
  }

  /** One event in the next batch, the last outcome in the state; `verified`: the bundle's id may be marked seen. */
  private finish(b: { id: string; ver: string; kind: string }, outcome: 'applied' | 'refused' | 'rolled_back', reason: string, kind: string, verified: boolean): void {
    const state = this.state();
    writeUpdateState(this.host.db, {
      ...state,
      last: { id: b.id, version: b.ver, kind: b.kind, outcome, reason: clip(reason), at: Date.now() },
      seen: verified && !state.seen.includes(b.id) ? [...state.seen, b.id] : state.seen,
    });
    this.host.events.record({ kind, key: b.id, detail: { version: clip(b.ver), bundle_kind: b.kind, reason: clip(reason) } });
    const line = { bundle: b.id, version: b.ver, kind: b.kind, reason };
    if (outcome === 'applied') this.log.info(line, `update ${b.id} applied`);
    else this.log.warn(line, outcome === 'refused' ? `update ${b.id} refused` : `update ${b.id} rolled back`);
  }
}
