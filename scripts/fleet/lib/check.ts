import pg from 'pg';
import { publicKeyFromDeviceId } from '../../../agent/identity/device-id.js';
import { verifyReceipt } from '../../../agent/identity/receipt.js';
import type { GatewayResult } from './gateway.js';

export interface FleetCheck {
  gateways: number;
  batches_built: number;
  batches_sent: number;
  batches_acked: number;
  batches_stored: number;
  /** Acknowledged to a gateway but not in PostgreSQL (with the acknowledged hash). */
  lost: number;
  /** Batch rows beyond one per hash, and reading rows beyond those the stored batches carry. */
  duplicated: number;
  receipts_verified: number;
  receipt_problems: string[];
  /** Gaps the receiver reports (GET /v1/stats) and where the gateways really skipped. */
  gaps_reported: number;
  gaps_skipped: number;
  /** Devices whose held chain has a gap at a seq the gateway did send. */
  gap_mismatches: string[];
  rejected: number;
  unfinished: number;
  stored_not_acked: number;
  readings_acked: number;
  readings_stored: number;
}

/**
 * Compares what the gateways saw acknowledged with what PostgreSQL holds, and re-verifies
 * every stored receipt with the network's receiver key.
 */
export async function checkFleet(postgresUrl: string, receiverUrl: string, receiverKey: Uint8Array, results: GatewayResult[]): Promise<FleetCheck> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    const rows = await client.query<{ device: string; seq: string; hash: Buffer; reading_count: number; receipt: Buffer | null }>(
      'SELECT b.device, b.seq, b.hash, b.reading_count, r.receipt FROM batches b LEFT JOIN receipts r USING (device, seq)',
    );
    const held = new Map<string, Map<number, { hash: string; readings: number }>>();
    const out: FleetCheck = {
      gateways: results.length, batches_built: 0, batches_sent: 0, batches_acked: 0, batches_stored: rows.rowCount ?? 0, lost: 0, duplicated: 0,
      receipts_verified: 0, receipt_problems: [], gaps_reported: 0, gaps_skipped: 0, gap_mismatches: [], rejected: 0, unfinished: 0,
      stored_not_acked: 0, readings_acked: 0, readings_stored: 0,
    };
    for (const r of rows.rows) {
      const seq = Number(r.seq);
      const hash = r.hash.toString('hex');
      let m = held.get(r.device);
      if (!m) held.set(r.device, (m = new Map()));
      m.set(seq, { hash, readings: r.reading_count });
      if (!r.receipt) {
        out.receipt_problems.push(`${r.device} seq ${seq}: stored without a receipt`);
        continue;
      }
      try {
        verifyReceipt(new Uint8Array(r.receipt), { receiverKey, device: publicKeyFromDeviceId(r.device), seq, batchHash: r.hash });
        out.receipts_verified++;
      } catch (err) {
        out.receipt_problems.push(`${r.device} seq ${seq}: ${(err as Error).message}`);
      }
    }
    const dupBatches = await client.query<{ n: string }>('SELECT count(*) - count(DISTINCT hash) AS n FROM batches');
    const readingRows = await client.query<{ n: string; expected: string }>(
      'SELECT (SELECT count(*) FROM readings) AS n, (SELECT coalesce(sum(reading_count), 0) FROM batches) AS expected',
    );
    out.readings_stored = Number(readingRows.rows[0]!.n);
    out.duplicated = Number(dupBatches.rows[0]!.n) + Math.max(0, out.readings_stored - Number(readingRows.rows[0]!.expected));

    for (const g of results) {
      out.batches_built += g.built;
      out.batches_sent += g.built - g.skipped.length;
      out.batches_acked += g.acked.length;
      out.rejected += g.rejected.length;
      out.unfinished += g.unfinished.length;
      out.receipt_problems.push(...g.receiptProblems.map((p) => `${g.device} (as the gateway saw it) ${p}`));
      const mine = held.get(g.device) ?? new Map<number, { hash: string; readings: number }>();
      const ackedSeqs = new Set<number>();
      for (const a of g.acked) {
        ackedSeqs.add(a.seq);
        out.readings_acked += a.readings;
        if (mine.get(a.seq)?.hash !== a.hash) out.lost++;
      }
      for (const seq of mine.keys()) if (!ackedSeqs.has(seq)) out.stored_not_acked++;
      const top = Math.max(0, ...mine.keys());
      const skipped = new Set(g.skipped);
      for (let s = 1; s < top; s++) {
        if (mine.has(s)) continue;
        if (skipped.has(s)) out.gaps_skipped++;
        else out.gap_mismatches.push(`${g.device}: seq ${s} missing but the gateway sent it`);
      }
    }
    const stats = (await (await fetch(new URL('/v1/stats', receiverUrl))).json()) as { gaps: number };
    out.gaps_reported = stats.gaps;
    return out;
  } finally {
    await client.end();
  }
}
