import { z } from 'zod';
import { hex } from '../../identity/batch-format.js';
import { receiptOutcome } from '../receipt-outcome.js';
import type { DeliveryOutcome, OutgoingBatch } from '../uplink.js';

/**
 * The receiver's answer on the reply topic (docs/wire-format.md §7, the same JSON as the HTTP
 * reply): accepted or duplicate with a signed receipt, or rejected with a reason. Every
 * answer names the seq and hash of the batch it is about; only the receipt's signature is
 * trusted, the rest only routes the answer to the attempt waiting for it.
 */
const replySchema = z.discriminatedUnion('status', [
  z.object({ status: z.enum(['accepted', 'duplicate']), seq: z.number().int().nonnegative(), hash: z.string(), receipt: z.string(), update: z.string().optional() }),
  z.object({ status: z.literal('rejected'), seq: z.number().int().nonnegative(), hash: z.string(), reason: z.string(), detail: z.string().optional() }),
]);
export type BatchReply = z.infer<typeof replySchema>;

const KEEP_REPLIES = 1000;
const MAX_REPLY_BYTES = 64 * 1024;

/** Replies by seq, kept until an attempt takes them (a reply can arrive before its PUBACK is handled). */
export class ReplyBook {
  private readonly bySeq = new Map<number, BatchReply>();
  private readonly waiters = new Map<number, ((r: BatchReply) => void)[]>();

  /** Returns what was wrong with the message, or undefined when it was filed. */
  add(payload: Buffer, onUpdate?: (base64: string) => void): string | undefined {
    // A reply is a few hundred bytes (the receipt is under 1 KiB, wire-format.md §6.3): nothing larger is parsed.
    if (payload.length > MAX_REPLY_BYTES) return `larger than ${MAX_REPLY_BYTES} bytes`;
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      return 'not JSON';
    }
    const parsed = replySchema.safeParse(json);
    if (!parsed.success) return `not a batch reply: ${parsed.error.issues[0]!.path.join('.')} ${parsed.error.issues[0]!.message}`;
    const reply = parsed.data;
    if (reply.status !== 'rejected' && reply.update !== undefined) onUpdate?.(reply.update);
    const waiting = this.waiters.get(reply.seq);
    if (waiting) {
      this.waiters.delete(reply.seq);
      for (const w of waiting) w(reply);
      return undefined;
    }
    this.bySeq.set(reply.seq, reply);
    if (this.bySeq.size > KEEP_REPLIES) this.bySeq.delete(this.bySeq.keys().next().value!);
    return undefined;
  }

  take(seq: number): BatchReply | undefined {
    const r = this.bySeq.get(seq);
    this.bySeq.delete(seq);
    return r;
  }

  wait(seq: number, signal: AbortSignal): Promise<BatchReply | undefined> {
    const ready = this.take(seq);
    if (ready || signal.aborted) return Promise.resolve(ready);
    return new Promise((resolve) => {
      const list = this.waiters.get(seq) ?? [];
      const onReply = (r: BatchReply) => {
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const onAbort = () => {
        const left = (this.waiters.get(seq) ?? []).filter((w) => w !== onReply);
        if (left.length > 0) this.waiters.set(seq, left);
        else this.waiters.delete(seq);
        resolve(undefined);
      };
      list.push(onReply);
      this.waiters.set(seq, list);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Turns a reply into the outcome of the attempt: a receipt is verified against the configured receiver key. */
export function verifyReply(reply: BatchReply, batch: OutgoingBatch, receiverKey: Uint8Array): DeliveryOutcome {
  if (reply.hash !== hex(batch.hash)) {
    return { kind: 'retry', error: `receiver answered about seq ${reply.seq} with hash ${reply.hash.slice(0, 16)}, not this batch's` };
  }
  if (reply.status === 'rejected') {
    return { kind: 'rejected', error: `receiver refused batch ${batch.seq} (${reply.reason}): ${reply.detail ?? ''}`.trim() };
  }
  const envelope = new Uint8Array(Buffer.from(reply.receipt, 'base64'));
  return receiptOutcome(envelope, batch, receiverKey);
}
