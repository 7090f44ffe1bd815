import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { z } from 'zod';
import { describeTlsError, type TlsOptions } from '../../util/tls.js';
import { hex } from '../../identity/batch-format.js';
import { receiptOutcome } from '../receipt-outcome.js';
import type { DeliveryOutcome, OutgoingBatch, Uplink } from '../uplink.js';
import { parseRetryAfter } from './retry-after.js';

const MAX_REPLY_BYTES = 64 * 1024;
const IDLE_SOCKET_MS = 4000;

const acceptedReply = z.object({
  status: z.enum(['accepted', 'duplicate']),
  seq: z.number(),
  hash: z.string(),
  receipt: z.string().optional(),
  /**
   * A signed update bundle for this device (docs/updates.md §4), base64; verified by the run, not
   * here. Not length-checked here either: the reply is capped at 64 KiB, and an oversized bundle
   * must not make a good receipt fail (the run refuses the bundle, the batch is delivered).
   */
  update: z.string().optional(),
  /** Upload requests signed by the receiver (§12.15), base64; checked by the run. Anything else here is ignored, never a failed delivery. */
  upload: z.unknown().optional(),
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
  /** For https:// URLs: CA, client certificate (mutual TLS), servername, verification. */
  tls?: TlsOptions;
  /** Receives the `update` field of an accepted answer (docs/updates.md §4). */
  onUpdate?: (base64: string) => void;
  /** Receives the `upload` field of an accepted answer (docs/wire-format.md §12.15): at most 16 strings. */
  onUpload?: (base64: string[]) => void;
}

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  text: string;
}

/**
 * POSTs a batch envelope to the receiver (`POST /v1/batches`, docs/wire-format.md §7).
 * Built on node:http(s) rather than fetch so that https takes a custom CA and a client
 * certificate without a second HTTP stack.
 */
export class HttpUplink implements Uplink {
  readonly description: string;
  private readonly url: URL;
  private readonly agent: HttpAgent;

  constructor(private readonly opts: HttpUplinkOptions) {
    this.description = `http ${opts.url}`;
    this.url = new URL(opts.url);
    // Idle sockets are dropped after 4 s, before a server's usual 5 s keep-alive timeout closes them under us.
    const pool = { keepAlive: true, timeout: IDLE_SOCKET_MS };
    this.agent = this.url.protocol === 'https:' ? new HttpsAgent({ ...pool, ...(opts.tls ?? {}) }) : new HttpAgent(pool);
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  async deliver(batch: OutgoingBatch, signal: AbortSignal): Promise<DeliveryOutcome> {
    let res: Reply;
    try {
      res = await this.post(batch.envelope, signal);
    } catch (err) {
      const e = err as Error & { code?: string };
      const hint = describeTlsError(err);
      return { kind: 'retry', error: `POST ${this.opts.url}: ${hint ?? `${e.code ?? e.name}: ${e.message}`}` };
    }
    const { status, text } = res;
    if (status === 429 || status === 503) {
      const retryAfterMs = parseRetryAfter(res.headers['retry-after'], Date.now());
      return {
        kind: 'retry',
        error: `receiver answered ${status}${retryAfterMs !== undefined ? ` (Retry-After ${Math.ceil(retryAfterMs / 1000)} s)` : ''}: ${text.slice(0, 200)}`,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
    }
    if (status >= 500 || status === 408) {
      return { kind: 'retry', error: `receiver answered ${status}: ${text.slice(0, 200)}` };
    }
    if (status >= 400) {
      // Final only when the receiver itself says why it refuses this batch. A 404 from a wrong
      // path or a 401/403 from an auth proxy must not burn batches: it is retried until fixed.
      const refusal = rejectedReply.safeParse(safeJson(text));
      if (refusal.success) {
        return { kind: 'rejected', error: `receiver refused batch ${batch.seq} (${status} ${refusal.data.reason}): ${refusal.data.detail ?? ''}`.trim() };
      }
      return { kind: 'retry', error: `POST ${this.opts.url} answered ${status} without a receiver verdict: ${text.slice(0, 200)}` };
    }
    if (status !== 200) return { kind: 'retry', error: `unexpected status ${status} from receiver` };

    const parsed = acceptedReply.safeParse(safeJson(text));
    if (!parsed.success) return { kind: 'retry', error: `receiver's 200 reply is not the expected JSON: ${text.slice(0, 200)}` };
    const reply = parsed.data;
    if (reply.update !== undefined) this.opts.onUpdate?.(reply.update);
    if (Array.isArray(reply.upload)) this.opts.onUpload?.(reply.upload.filter((u): u is string => typeof u === 'string').slice(0, 16));
    if (reply.seq !== batch.seq || reply.hash !== hex(batch.hash)) {
      return { kind: 'retry', error: `receiver acknowledged seq ${reply.seq} hash ${reply.hash.slice(0, 16)}, not batch ${batch.seq}` };
    }
    if (!this.opts.receiverKey) return { kind: 'delivered' };
    if (!reply.receipt) return { kind: 'retry', error: 'receiver sent no receipt, but a receiver key is configured' };
    const envelope = new Uint8Array(Buffer.from(reply.receipt, 'base64'));
    return receiptOutcome(envelope, batch, this.opts.receiverKey);
  }

  /**
   * A kept-alive socket the server closed just as we reused it fails with ECONNRESET before the
   * request reached the receiver; that one case is retried at once (the receiver is idempotent
   * by seq anyway), instead of costing a back-off and a warning.
   */
  private async post(body: Uint8Array, signal: AbortSignal): Promise<Reply> {
    try {
      return await this.postOnce(body, signal);
    } catch (err) {
      if ((err as { reusedSocket?: boolean }).reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET' && !signal.aborted) return this.postOnce(body, signal);
      throw err;
    }
  }

  private postOnce(body: Uint8Array, signal: AbortSignal): Promise<Reply> {
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Reply>((resolve, reject) => {
      const req = send(this.url, {
        method: 'POST',
        agent: this.agent,
        headers: { 'content-type': 'application/cbor', accept: 'application/json', 'content-length': body.byteLength },
        signal,
        timeout: this.opts.timeoutMs,
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${this.opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_REPLY_BYTES) req.destroy(new Error(`reply larger than ${MAX_REPLY_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      });
      req.end(body);
    });
  }
}
