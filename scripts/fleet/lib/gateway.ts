import { Agent, request } from 'node:http';
import { buildBatch, hex, ZERO_HASH, type SignedBatch } from '../../../agent/identity/batch-format.js';
import { Identity } from '../../../agent/identity/keys.js';
import { verifyReceipt } from '../../../agent/identity/receipt.js';
import type { StoredReading } from '../../../agent/types.js';

export interface GatewayPlan {
  batchSize: number;
  intervalMs: number;
  /** Chance that a gateway loses a batch it built (never sent): a real gap the receiver must report. */
  skipProbability: number;
}

export interface AckedBatch {
  seq: number;
  hash: string;
  readings: number;
  status: 'accepted' | 'duplicate';
}

export interface GatewayResult {
  device: string;
  built: number;
  acked: AckedBatch[];
  skipped: number[];
  rejected: { seq: number; reason: string }[];
  receiptsVerified: number;
  receiptProblems: string[];
  attempts: number;
  /** ms from first send to the verified receipt, per acknowledged batch. */
  latencies: number[];
  /** Batch built but not acknowledged when the run's hard deadline came. */
  unfinished: number[];
}

interface Answer {
  status: number;
  body: Record<string, unknown> | undefined;
}

/**
 * Stands in for a load balancer in front of the replicas: each gateway keeps to one replica and
 * moves to the next when it does not answer (connection refused or reset, 5xx, timeout).
 */
export class ReplicaPool {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256 });
  constructor(private readonly urls: string[]) {}

  async post(start: number, envelope: Uint8Array, attempt: number): Promise<Answer & { replica: number }> {
    const replica = (start + attempt) % this.urls.length;
    const url = new URL('/v1/batches', this.urls[replica]!);
    return new Promise((resolve) => {
      const req = request(url, { method: 'POST', agent: this.agent, headers: { 'content-type': 'application/cbor', 'content-length': envelope.byteLength }, timeout: 20_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let body: Record<string, unknown> | undefined;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body, replica });
        });
        res.on('error', () => resolve({ status: 0, body: undefined, replica }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve({ status: 0, body: undefined, replica }));
      req.end(envelope);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** When gateways stop building batches, and by when what is in flight must be acknowledged; may move while they run. */
export interface RunClock {
  stopAt: number;
  deadline: number;
}

/** One simulated gateway: its own key, chain, reading ids, batch size and rate; real envelopes from the agent's code. */
export class SimGateway {
  readonly identity = Identity.generate();
  private seq = 0;
  private prev: Uint8Array = ZERO_HASH;
  private nextReadingId = 1;
  readonly result: GatewayResult;

  constructor(
    private readonly plan: GatewayPlan,
    private readonly random: () => number,
    private readonly receiverKey: Uint8Array,
    private readonly pool: ReplicaPool,
    private readonly home: number,
  ) {
    this.result = { device: this.identity.deviceId, built: 0, acked: [], skipped: [], rejected: [], receiptsVerified: 0, receiptProblems: [], attempts: 0, latencies: [], unfinished: [] };
  }

  private build(): SignedBatch {
    const now = Date.now();
    const readings: StoredReading[] = [];
    for (let k = 0; k < this.plan.batchSize; k++) {
      readings.push({ id: this.nextReadingId++, boot: 1, sensor: `s${k % 4}`, ts: now + k, timeSource: 'gateway-synced', value: Math.round(this.random() * 1e4) / 100, unit: 'Cel', source: 'sim' });
    }
    this.seq++;
    const batch = buildBatch(this.identity, { seq: this.seq, prevHash: this.prev, bootCounter: 1, clockSynced: true, createdMs: now }, readings);
    this.prev = batch.hash;
    this.result.built++;
    return batch;
  }

  /** Sends one batch until a replica answers with a verified receipt or a refusal, or the deadline passes. */
  private async deliver(batch: SignedBatch, clock: RunClock): Promise<void> {
    const first = performance.now();
    for (let attempt = 0; Date.now() < clock.deadline; attempt++) {
      this.result.attempts++;
      const a = await this.pool.post(this.home, batch.envelope, attempt);
      const body = a.body;
      if (a.status === 200 && body && (body.status === 'accepted' || body.status === 'duplicate') && typeof body.receipt === 'string') {
        try {
          verifyReceipt(new Uint8Array(Buffer.from(body.receipt, 'base64')), { receiverKey: this.receiverKey, device: batch.body.dev, seq: batch.body.seq, batchHash: batch.hash });
          this.result.receiptsVerified++;
        } catch (err) {
          this.result.receiptProblems.push(`seq ${batch.body.seq}: ${(err as Error).message}`);
        }
        this.result.acked.push({ seq: batch.body.seq, hash: hex(batch.hash), readings: batch.body.n, status: body.status });
        this.result.latencies.push(performance.now() - first);
        return;
      }
      if (a.status >= 400 && a.status < 500 && a.status !== 408 && a.status !== 429) {
        this.result.rejected.push({ seq: batch.body.seq, reason: String(body?.reason ?? a.status) });
        return;
      }
      // Not answered: back off a little (more after each try), then the next replica.
      await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** Math.min(attempt, 6)) * (0.5 + this.random())));
    }
    this.result.unfinished.push(batch.body.seq);
  }

  /** Builds and sends batches every intervalMs until clock.stopAt; the batch in flight then is delivered by clock.deadline. */
  async run(clock: RunClock): Promise<GatewayResult> {
    await new Promise((r) => setTimeout(r, this.random() * this.plan.intervalMs));
    while (Date.now() < clock.stopAt) {
      const started = Date.now();
      const batch = this.build();
      if (this.random() < this.plan.skipProbability) this.result.skipped.push(batch.body.seq);
      else await this.deliver(batch, clock);
      const wait = started + this.plan.intervalMs * (0.8 + 0.4 * this.random()) - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, Math.max(0, clock.stopAt - Date.now()))));
    }
    return this.result;
  }
}
