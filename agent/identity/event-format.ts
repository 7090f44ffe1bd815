import { z } from 'zod';

/**
 * Events in a version-3 batch (docs/wire-format.md §12.5): what the gateway reports about itself
 * and its sensors besides readings and verdicts (a clock step, a lost broker session, a relearned
 * baseline, a quarantine, a heartbeat...). Kinds are data, not format: a new kind needs no new
 * `fmt`, so the rules here are about shape and size only.
 */

export const EVENT_KIND_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;
export const EVENT_DETAIL_KEY_PATTERN = /^[a-z_][a-z0-9_]{0,22}$/;
/** §12.5 limits, also enforced when an event is recorded so a bad one fails where it is made. */
export const EVENT_LIMITS = { kindUnits: 64, keyUnits: 256, detailEntries: 16, detailTextUnits: 256 } as const;

/** Strings are limited in UTF-16 code units (§3), which is what JavaScript's `length` counts (zod's max counts code points). */
export const utf16 = (min: number, max: number) =>
  z.string().refine((s) => s.length >= min && s.length <= max, `must be ${min}-${max} UTF-16 code units`);

const int = z.number().int().refine(Number.isSafeInteger, 'must be a safe integer');
const uint = int.refine((n) => n >= 0, 'must not be negative');
const finite = z.number().refine(Number.isFinite, 'must be finite');

const detailValue = z.union([utf16(0, EVENT_LIMITS.detailTextUnits), finite, z.boolean()]);
const detailSchema = z
  .record(z.string().regex(EVENT_DETAIL_KEY_PATTERN, 'detail names are 1-23 characters [a-z_][a-z0-9_]*'), detailValue)
  .refine((d) => Object.keys(d).length >= 1 && Object.keys(d).length <= EVENT_LIMITS.detailEntries, `detail holds 1-${EVENT_LIMITS.detailEntries} entries`);
const kindSchema = utf16(1, EVENT_LIMITS.kindUnits).refine((k) => EVENT_KIND_PATTERN.test(k), 'kind must be dotted lower-case words, e.g. clock.step');

/** §12.5: one event as it is encoded in a batch (`s` and `d` absent when there is nothing to say). */
export const eventWireSchema = z
  .object({
    i: uint,
    t: int,
    k: kindSchema,
    s: utf16(1, EVENT_LIMITS.keyUnits).optional(),
    d: detailSchema.optional(),
  })
  .strict();

export type EventDetail = Record<string, string | number | boolean>;

/** §12.5: the detail a `report.summary` event must carry, all numbers. */
const SUMMARY_NUMBERS = ['interval_ms', 'window_start', 'count', 'min', 'max', 'mean', 'first_t', 'last_t', 'first_id', 'last_id'] as const;

/**
 * §12.5 `report.summary` (uplink summary mode): the one kind whose content a verifier checks,
 * because it stands for readings it never sees. Returns why it breaks the rule, or undefined.
 */
export function summaryProblem(e: { k: string; s?: string | undefined; d?: EventDetail | undefined }): string | undefined {
  if (e.k !== 'report.summary') return undefined;
  if (e.s === undefined) return 'a report.summary names its sensor in s';
  const d = e.d ?? {};
  for (const k of SUMMARY_NUMBERS) if (typeof d[k] !== 'number') return `a report.summary carries d.${k} as a number`;
  const n = d as Record<(typeof SUMMARY_NUMBERS)[number], number>;
  if (!Number.isSafeInteger(n.count) || n.count < 1) return 'd.count is an integer >= 1';
  for (const k of ['interval_ms', 'window_start', 'first_t', 'last_t', 'first_id', 'last_id'] as const) if (!Number.isSafeInteger(n[k])) return `d.${k} is an integer`;
  if (n.interval_ms < 1) return 'd.interval_ms is at least 1';
  if (!(n.min <= n.mean && n.mean <= n.max)) return 'd.min <= d.mean <= d.max';
  if (n.first_t > n.last_t || n.first_id > n.last_id) return 'd.first_t <= d.last_t and d.first_id <= d.last_id';
  if (n.first_t < n.window_start || n.last_t >= n.window_start + n.interval_ms) return 'd.first_t and d.last_t lie in [window_start, window_start + interval_ms)';
  if (n.count > n.last_id - n.first_id + 1) return 'd.count is at most last_id - first_id + 1';
  return undefined;
}
export type BatchEvent = z.infer<typeof eventWireSchema>;

export interface AgentEventInput {
  /** Dotted lower-case, e.g. 'model.relearn', 'clock.step', 'source.session_lost'. */
  kind: string;
  /** What the event is about: a sensor id, a source id, a series key; '' for the agent itself. */
  key: string;
  /** ms since the epoch; default now. */
  ts?: number;
  detail?: EventDetail;
}

/** An event as the agent stores it (table `events`). */
export interface StoredEvent {
  id: number;
  ts: number;
  kind: string;
  key: string;
  detail?: EventDetail;
}

/** Checks an event against §12.5 before it is stored; the error names the event's kind and key. */
export function validateEvent(e: AgentEventInput & { ts: number }): Required<Pick<AgentEventInput, 'kind' | 'key' | 'ts'>> & { detail?: EventDetail } {
  const detail = e.detail && Object.keys(e.detail).length > 0 ? e.detail : undefined;
  const problem = summaryProblem({ k: e.kind, ...(e.key !== '' ? { s: e.key } : {}), ...(detail ? { d: detail } : {}) });
  if (problem) throw new Error(`event ${JSON.stringify(e.kind)} about ${JSON.stringify(e.key)}: ${problem} (docs/wire-format.md §12.5)`);
  const parsed = eventWireSchema.safeParse({ i: 0, t: e.ts, k: e.kind, ...(e.key !== '' ? { s: e.key } : {}), ...(detail ? { d: detail } : {}) });
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw new Error(`event ${JSON.stringify(e.kind)} about ${JSON.stringify(e.key)}: field ${first.path.join('.') || '(root)'} ${first.message} (docs/wire-format.md §12.5)`);
  }
  return { kind: e.kind, key: e.key, ts: e.ts, ...(detail ? { detail } : {}) };
}

export function toBatchEvent(e: StoredEvent): BatchEvent {
  const out: BatchEvent = { i: e.id, t: e.ts, k: e.kind };
  if (e.key !== '') out.s = e.key;
  if (e.detail && Object.keys(e.detail).length > 0) out.d = e.detail;
  return out;
}

export function fromBatchEvent(e: BatchEvent): StoredEvent {
  return { id: e.i, ts: e.t, kind: e.k, key: e.s ?? '', ...(e.d ? { detail: e.d } : {}) };
}
