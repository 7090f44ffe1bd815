import { z } from 'zod';
import { hex } from '../../identity/batch-format.js';
import { verifyReceipt } from '../../identity/receipt.js';
import type { DeliveryOutcome, OutgoingBatch, Uplink } from '../uplink.js';

const MAX_REPLY_BYTES = 64 * 1024;

const acceptedReply = z.object({
  status: z.enum(['accepted', 'duplicate']),
  seq: z.number(),
  hash: z.string(),
  receipt: z.string().optional(),
});

const rejectedReply = z.object({ status: z.literal('rejected'), reason: z.string(), detail: z.string().optional() });

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export interface HttpUplinkOptions {
  url: string;
  timeoutMs: number;
  /** When set, a delivery counts only with a receipt signed by this key. */
  receiverKey?: Uint8Array;
}

/** POSTs a batch envelope to the receiver (`POST /v1/batches`, docs/wire-format.md §7). */
export class HttpUplink implements Uplink {
  readonly description: string;

  constructor(private readonly opts: HttpUplinkOptions) {
    this.description = `http ${opts.url}`;
  }

  async deliver(batch: OutgoingBatch, signal: AbortSignal): Promise<DeliveryOutcome> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/cbor', accept: 'application/json' },
        body: batch.envelope,
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.opts.timeoutMs)]),
      });
      text = await readLimited(res, MAX_REPLY_BYTES);
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return { kind: 'retry', error: `POST ${this.opts.url}: ${e.cause?.code ?? e.name}: ${e.message}` };
    }
    if (res.status >= 500 || res.status === 408 || res.status === 429) {
      return { kind: 'retry', error: `receiver answered ${res.status}: ${text.slice(0, 200)}` };
    }
    if (res.status >= 400) {
      // Final only when the receiver itself says why it refuses this batch. A 404 from a wrong
      // path or a 401/403 from an auth proxy must not burn batches: it is retried until fixed.
      const refusal = rejectedReply.safeParse(safeJson(text));
      if (refusal.success) {
        return { kind: 'rejected', error: `receiver refused batch ${batch.seq} (${res.status} ${refusal.data.reason}): ${refusal.data.detail ?? ''}`.trim() };
      }
      return { kind: 'retry', error: `POST ${this.opts.url} answered ${res.status} without a receiver verdict: ${text.slice(0, 200)}` };
    }
    if (res.status !== 200) return { kind: 'retry', error: `unexpected status ${res.status} from receiver` };

    const parsed = acceptedReply.safeParse(safeJson(text));
    if (!parsed.success) return { kind: 'retry', error: `receiver's 200 reply is not the expected JSON: ${text.slice(0, 200)}` };
    const reply = parsed.data;
    if (reply.seq !== batch.seq || reply.hash !== hex(batch.hash)) {
      return { kind: 'retry', error: `receiver acknowledged seq ${reply.seq} hash ${reply.hash.slice(0, 16)}, not batch ${batch.seq}` };
    }
    if (!this.opts.receiverKey) return { kind: 'delivered' };
    if (!reply.receipt) return { kind: 'retry', error: 'receiver sent no receipt, but a receiver key is configured' };
    const envelope = new Uint8Array(Buffer.from(reply.receipt, 'base64'));
    try {
      verifyReceipt(envelope, { receiverKey: this.opts.receiverKey, device: batch.device, seq: batch.seq, batchHash: batch.hash });
    } catch (err) {
      return { kind: 'retry', error: `receipt for batch ${batch.seq} rejected: ${(err as Error).message}` };
    }
    return { kind: 'delivered', receipt: { envelope, receiverKey: this.opts.receiverKey } };
  }
}

async function readLimited(res: Response, limit: number): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > limit) throw new Error(`reply larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
