import type { ReadingSink } from '../contracts/reading-sink.js';
import type { Logger } from '../log.js';
import { GuardStore } from '../store/guard-store.js';
import type { Db } from '../store/database.js';
import type { GuardCheck, GuardReports } from './check.js';
import { policyOf, type GuardConfig } from './config.js';
import { GuardControl } from './control.js';
import { GapCheck } from './gap-check.js';
import { GuardStage } from './guard-stage.js';
import { JumpCheck } from './jump-check.js';
import { MaintenanceBook } from './maintenance.js';
import { MAX_KNOWN_SENSORS, NewIdWatch } from './new-id-watch.js';
import { OriginWatch } from './origin-watch.js';
import { PayloadWatch } from './payload-watch.js';
import { QuarantineBook, QuarantineCheck } from './quarantine.js';
import { RangeCheck } from './range-check.js';
import { RateBudget } from './rate-budget.js';
import { SeqCheck } from './seq-check.js';
import { StuckCheck } from './stuck-check.js';
import { TimeCheck } from './time-check.js';

export interface GuardDeps {
  db: Db;
  reports: GuardReports;
  /** A counter increment outside a commit (best effort). */
  count: (name: string, label: string) => void;
  /** Asset id → filters of its sensors: guard.assets and the inference bindings' assets. */
  assets: Readonly<Record<string, readonly string[]>>;
  log: Logger;
  /** The gateway's clock (tests pass their own). */
  now?: () => number;
}

/**
 * The guard's checks as one ordered list (README "Guarding the edge"): the watches that may
 * quarantine come first, so a burst's own readings are already flagged; then quarantine and
 * maintenance flags; then the budgets, which drop; then the quality flags of what is kept.
 */
export function buildGuard(cfg: GuardConfig, next: ReadingSink, deps: GuardDeps): GuardStage {
  const store = new GuardStore(deps.db);
  const policies = new Map<string, ReturnType<typeof policyOf>>();
  const policy = (source: string) => {
    let p = policies.get(source);
    if (!p) policies.set(source, (p = policyOf(cfg, source)));
    return p;
  };
  const book = new QuarantineBook(store, deps.reports, { keepPerS: cfg.quarantine.keep_per_s, keepMax: cfg.quarantine.keep_max, quietMs: cfg.quarantine.quiet_s * 1000 });
  const maintenance = new MaintenanceBook(store, deps.reports, deps.assets);
  const checks: GuardCheck[] = [
    new PayloadWatch(deps.reports, deps.count),
    new NewIdWatch(book, policy, store.recentSensors(MAX_KNOWN_SENSORS)),
    new OriginWatch(book, deps.reports, policy),
    new QuarantineCheck(book),
    maintenance,
    new RateBudget(book, deps.reports, policy),
    new RangeCheck(cfg.ranges, cfg.unit_ranges),
    new TimeCheck(cfg.max_future_s * 1000, deps.reports),
    new SeqCheck(deps.reports, store),
    new StuckCheck(cfg.stuck.readings, cfg.stuck.min_s * 1000),
    new JumpCheck(cfg.jump.window, cfg.jump.factor, cfg.jump.min_delta),
    new GapCheck(cfg.silence_factor, deps.reports),
  ];
  // The quarantine book's tick releases quiet keys and saves counts.
  return new GuardStage(next, checks, [book, new GuardControl(store, book, maintenance)], deps.log, deps.now);
}
