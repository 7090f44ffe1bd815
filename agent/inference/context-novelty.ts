/**
 * Context novelty (agent/inference/README.md §5c), in the spirit of the Contextual Anomaly
 * Detector (Smirnov's CAD-OSE, NAB's best published detector; this is an own implementation of
 * the idea): how much of the present short sequence of readings has never, or rarely, been seen
 * in the series' own recent history. A change of pattern without a change of level (a periodic
 * load that loses its rhythm, a traffic curve of a new shape) shows here and not in a level score.
 *
 *   bucket  b_t   = which of `buckets` equal slices of the range [lo, hi] the reading falls in
 *                   lo and hi are the series' own running low and high (before this reading),
 *                   each decaying towards the other with half-life `range_halflife` rows, so
 *                   one early spike does not squeeze the series into a single bucket for good.
 *                   (NAB hands its detectors the whole file's min/max; we never look ahead.)
 *   context k     = the last k buckets b_t, b_t-1, ..., b_t-k+1, for k = 1..`order`
 *   novelty       = share of the `order` contexts whose count is below `min_count`; it counts
 *                   (onset-score.ts) once the bucket has changed `min_moves` times: before that,
 *                   any move is new and says nothing (a sensor constant so far that steps by one
 *                   quantisation step now and then has no pattern to break)
 *   learn         : each context's count + 1, in a hashed table of `table` counts; every count
 *                   is halved once per `memory` rows (a few entries per row, no pause), so a
 *                   context not seen for a few memories is new again.
 *
 * Memory per series is fixed: `table` counts, `order` buckets, a few numbers (saved with the
 * series' onset memory, onset-score.ts). Work per reading: `order` hash look-ups.
 */

export interface ContextParams {
  buckets: number;
  order: number;
  table: number;
  memory: number;
  min_count: number;
  range_halflife: number;
  min_moves: number;
}

export interface ContextState {
  /** Running low and high of the readings (NaN-free; equal until the series has moved). */
  lo: number;
  hi: number;
  /** How often the reading has changed bucket (capped): a stream that has hardly moved has no pattern to break. */
  moves: number;
  /** The last `order` buckets, newest first (-1 = none yet). */
  last: number[];
  /** Hashed context counts, `table` entries. */
  counts: number[];
  /** Next table entry to halve. */
  sweep: number;
}

/** Hard bounds of the manifest fields (manifest.ts) and of a restored state. */
const MOVES_CAP = 1e9;

export const CONTEXT_LIMITS = { buckets: 256, order: 8, table: 16_384 } as const;

export function newContext(p: ContextParams, x: number): ContextState {
  return { lo: x, hi: x, moves: 0, last: new Array<number>(p.order).fill(-1), counts: new Array<number>(p.table).fill(0), sweep: 0 };
}

const rates = new Map<number, number>();
function rate(halflife: number): number {
  let a = rates.get(halflife);
  if (a === undefined) rates.set(halflife, (a = 1 - 2 ** (-1 / halflife)));
  return a;
}

/** The reading's context novelty in [0, 1] (measured before it is learned), then learns it. */
export function contextNovelty(p: ContextParams, st: ContextState, x: number): number {
  const width = (st.hi - st.lo) / p.buckets;
  let b = width > 0 ? Math.floor((x - st.lo) / width) : 0;
  if (b < 0) b = 0;
  else if (b >= p.buckets) b = p.buckets - 1;
  const last = st.last;
  if (last[0]! >= 0 && b !== last[0]) st.moves = Math.min(st.moves + 1, MOVES_CAP);
  for (let i = last.length - 1; i > 0; i--) last[i] = last[i - 1]!;
  last[0] = b;
  let unseen = 0;
  let orders = 0;
  let h = 0x9e3779b9;
  for (let k = 0; k < p.order; k++) {
    if (last[k]! < 0) break;
    // FNV-style mix of the k+1 newest buckets; the order is mixed in so that k differs.
    h = Math.imul(h ^ (last[k]! + 1), 0x01000193) >>> 0;
    const at = (Math.imul(h ^ (k * 0x85ebca6b), 0xc2b2ae35) >>> 0) % p.table;
    if (st.counts[at]! < p.min_count) unseen++;
    orders++;
    st.counts[at]! += 1;
  }
  // Forget slowly and evenly: each entry is halved once per `memory` rows.
  for (let n = Math.ceil(p.table / p.memory); n > 0; n--) {
    st.counts[st.sweep] = Math.floor(st.counts[st.sweep]! / 2);
    st.sweep = (st.sweep + 1) % p.table;
  }
  // The range follows the series: a new extreme at once, back towards the middle slowly.
  const a = rate(p.range_halflife);
  const hi = st.hi - a * (st.hi - st.lo);
  const lo = st.lo + a * (st.hi - st.lo);
  st.hi = Math.max(hi, x);
  st.lo = Math.min(lo, x);
  return orders > 0 ? unseen / orders : 0;
}

/**
 * A context memory as saved across restarts: the counts with each run of zeros written as one
 * negative number (-k: k zero counts). Most of the table is zero (a smooth series touches a few
 * hundred of its 4,096 contexts), and the dense array was 11.2 KB of JSON per series, written at
 * every state save (flash wear, issue 13) and counted against the inference state's share of the
 * store budget; a table with no zeros saves as before.
 */
export interface SavedContext extends Omit<ContextState, 'counts'> {
  counts_rle: number[];
}

export function saveContext(st: ContextState): SavedContext {
  const rle: number[] = [];
  for (const c of st.counts) {
    if (c > 0) rle.push(c);
    else if (rle.length > 0 && rle[rle.length - 1]! < 0) rle[rle.length - 1]!--;
    else rle.push(-1);
  }
  return { lo: st.lo, hi: st.hi, moves: st.moves, last: [...st.last], sweep: st.sweep, counts_rle: rle };
}

/** The dense counts of a saved memory, or a problem; `table` bounds the work before anything is built. */
function expandCounts(rle: unknown, table: number): number[] | string {
  if (!Array.isArray(rle) || rle.length > table) return `context memory does not have ${table} counts`;
  const counts: number[] = [];
  for (const v of rle) {
    if (!Number.isInteger(v) || v === 0 || v >= 2 ** 31 || v < -table) return `context memory count ${String(v)} out of range`;
    if (counts.length + (v < 0 ? -v : 1) > table) return `context memory does not have ${table} counts`;
    if (v > 0) counts.push(v);
    else for (let k = 0; k < -v; k++) counts.push(0);
  }
  return counts.length === table ? counts : `context memory does not have ${table} counts`;
}

/** The memory `saved` describes; call after contextStateProblem found nothing. */
export function restoreContext(saved: SavedContext, p: ContextParams): ContextState {
  return { lo: saved.lo, hi: saved.hi, moves: saved.moves, last: [...saved.last], counts: expandCounts(saved.counts_rle, p.table) as number[], sweep: saved.sweep };
}

/** A saved context memory's shape problem, or null. */
export function contextStateProblem(o: unknown, p: ContextParams): string | null {
  if (o === undefined) return null;
  const st = o as Partial<SavedContext> | null;
  const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  if (!st || typeof st !== 'object' || !finite(st.lo) || !finite(st.hi) || !Number.isInteger(st.moves) || st.moves! < 0 || st.moves! > MOVES_CAP) return 'context memory malformed';
  if (!Array.isArray(st.last) || st.last.length !== p.order || !st.last.every((v) => Number.isInteger(v) && v >= -1 && v < p.buckets)) return `context memory does not have ${p.order} buckets`;
  const counts = expandCounts(st.counts_rle, p.table);
  if (typeof counts === 'string') return counts;
  if (!Number.isInteger(st.sweep) || st.sweep! < 0 || st.sweep! >= p.table) return 'context memory sweep position out of range';
  return null;
}
