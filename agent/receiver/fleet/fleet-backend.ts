import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { ConsumerMessages, JsMsg } from 'nats';
import type { AnyBatch } from '../../identity/batch-any.js';
import { BatchVerificationError, hex } from '../../identity/batch-format.js';
import { deviceIdFromPublicKey } from '../../identity/device-id.js';
import type { Identity } from '../../identity/keys.js';
import { AgentError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { BackendUnavailableError, type IngestBatch, type ReceiverBackend } from '../backend.js';
import { BatchIntake } from '../batch-intake.js';
import { decideChain } from '../chain-decision.js';
import type { IngestResult } from '../receiver-types.js';
import { BatchLog, DEVICE_HEADER, PARTITIONS, SEQ_HEADER } from './batch-log.js';
import { migrateFleetSchema } from './pg-schema.js';
import { PgChainStore } from './pg-store.js';

export interface FleetBackendOptions {
  natsServers: string[];
  postgresUrl: string;
  /** Stream replicas: 3 on a 3-node cluster. */
  streamReplicas: number;
  streamMaxAgeMs: number;
  /** This replica's name, for NATS connection names and logs. */
  replicaName: string;
  identity: Identity;
  logger: Logger;
  /** PostgreSQL connections of this replica. */
  pgPoolSize: number;
  /** The projector leaves a logged batch this long to the replica that took it before applying it itself. */
  projectorGraceMs: number;
}

/** Connection trouble (PostgreSQL down, restarting, unreachable) as opposed to a bug in a statement. */
function isPgUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (typeof e.code === 'string' && /^(08|57P|53)/.test(e.code)) return true;
  if (typeof e.code === 'string' && /^E(CONN|HOST|NET|PIPE|TIMEDOUT|AI_AGAIN)/.test(e.code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(e.message ?? '');
}

/**
 * The fleet backend of `edge-agent receive` (docs/fleet.md): stateless, any number of replicas.
 * For each verified batch:
 *   1. PostgreSQL answers a replay (same device, seq and hash) with the receipt sent the first
 *      time, days later too, without touching the log; another hash at a held seq is a conflict;
 *   2. the envelope is appended to the replicated JetStream log (Nats-Msg-Id = batch hash) and
 *      the PubAck awaited: from here the network has it on a quorum of nodes;
 *   3. only then the chain is decided and the batch stored with its receipt, in one transaction.
 * A replica that dies between 2 and 3 leaves the batch in the log only; the projector (one
 * durable consumer per device partition, shared by the replicas) applies such batches in
 * order, so everything in the log ends in PostgreSQL even if the gateway never comes back.
 */
export class FleetBackend implements ReceiverBackend {
  private readonly following: ConsumerMessages[] = [];
  private readonly stopping = new AbortController();
  private appliedFromLog = 0;
  /**
   * Verifies logged envelopes of any version and signs their receipts like the front ends do.
   * No sensor key registry here: the HTTP/MQTT front ends (startReceiver) applied it before a
   * batch reached the log, and a batch the network logged is never refused afterwards.
   */
  private readonly intake: BatchIntake;

  private constructor(
    private readonly opts: FleetBackendOptions,
    private readonly pool: pg.Pool,
    private readonly store: PgChainStore,
    private readonly log: BatchLog,
  ) {
    this.intake = new BatchIntake(opts.identity, 'quorum');
  }

  static async open(opts: FleetBackendOptions): Promise<FleetBackend> {
    const logger = opts.logger;
    const pool = new pg.Pool({ connectionString: opts.postgresUrl, max: opts.pgPoolSize, connectionTimeoutMillis: 5000, application_name: `edge-agent-receiver ${opts.replicaName}` });
    // An idle connection dropped by a PostgreSQL restart: the pool opens a new one when needed.
    pool.on('error', (err) => logger.warn({ err: err.message }, 'postgresql connection lost; reconnecting on next use'));
    const where = `PostgreSQL ${opts.postgresUrl.replace(/\/\/[^@/]*@/, '//')}`;
    try {
      await migrateFleetSchema(pool, where);
    } catch (err) {
      await pool.end();
      if (err instanceof AgentError || !isPgUnavailable(err)) throw err;
      throw new AgentError('BACKEND_UNREACHABLE', `cannot reach ${where}: ${(err as Error).message}; is it running and does --postgres-url name it? (scripts/fleet/up.sh starts a local one)`, { cause: err });
    }
    let log: BatchLog;
    try {
      log = await BatchLog.open({
        servers: opts.natsServers,
        replicas: opts.streamReplicas,
        maxAgeMs: opts.streamMaxAgeMs,
        duplicateWindowMs: 2 * 60_000,
        name: `edge-agent-receiver ${opts.replicaName}`,
        logger,
      });
    } catch (err) {
      await pool.end();
      throw new AgentError('BACKEND_UNREACHABLE', `cannot use the NATS JetStream cluster at ${opts.natsServers.join(',')}: ${(err as Error).message}; are the nodes up, with JetStream on, and does --nats-url name them?`, { cause: err });
    }
    const backend = new FleetBackend(opts, pool, new PgChainStore(pool), log);
    for (let p = 0; p < PARTITIONS; p++) backend.following.push(await log.follow(p, (m) => backend.project(m), logger.child({ projector: p })));
    logger.info({ nats: opts.natsServers, stream_replicas: opts.streamReplicas, partitions: PARTITIONS, max_payload: log.maxPayload }, 'fleet backend ready');
    return backend;
  }

  /** Largest envelope the log takes (NATS max_payload less room for headers). */
  get maxEnvelopeBytes(): number {
    return this.log.maxPayload - 4096;
  }

  async ingest(batch: IngestBatch, receivedAt: number, makeReceipt: () => Uint8Array): Promise<IngestResult> {
    const device = deviceIdFromPublicKey(batch.body.dev);
    const t0 = performance.now();
    // Replays and conflicts are answered from what is held, without logging anything.
    const seen = await this.pg('look up the batch', () => this.store.neighbours(device, batch.body.seq));
    const decision = decideChain(batch, seen);
    if (decision.kind === 'duplicate') return { kind: 'duplicate', device, receipt: decision.receipt };
    if (decision.kind === 'conflict') return { kind: 'conflict', device, reason: decision.reason, detail: decision.detail };
    const t1 = performance.now();
    try {
      await this.log.append(batch, device);
    } catch (err) {
      throw new BackendUnavailableError(`the batch log (NATS JetStream) did not confirm the batch: ${(err as Error).message}; nothing was stored`, 2, { cause: err });
    }
    const t2 = performance.now();
    const result = await this.pg('store the batch', () => this.store.apply(batch, receivedAt, 'replica', makeReceipt, seen));
    const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
    this.opts.logger.debug({ device, seq: batch.body.seq, ms_lookup: ms(t0, t1), ms_log: ms(t1, t2), ms_store: ms(t2, performance.now()) }, 'fleet ingest timings');
    return result;
  }

  /** One message of the log: applied unless a replica already stored it. */
  private async project(m: JsMsg): Promise<void> {
    const device = m.headers?.get(DEVICE_HEADER) ?? '';
    const seq = Number(m.headers?.get(SEQ_HEADER));
    const msgId = m.headers?.get('Nats-Msg-Id') ?? '';
    const loggedAt = Math.floor(m.info.timestampNanos / 1e6);
    // The replica that took it is normally storing it right now: give it the first go.
    const wait = loggedAt + this.opts.projectorGraceMs - Date.now();
    if (wait > 0) {
      m.working();
      // Rejects only when the replica stops: the message goes back for another replica.
      await sleep(wait, undefined, { signal: this.stopping.signal }).catch(() => undefined);
      if (this.stopping.signal.aborted) return m.nak();
    }
    const seen = device && Number.isSafeInteger(seq) ? await this.store.neighbours(device, seq) : undefined;
    if (seen?.same && hex(seen.same.hash) === msgId) return m.ack();
    let batch: AnyBatch;
    try {
      batch = this.intake.verify(m.data);
    } catch (err) {
      if (!(err instanceof BatchVerificationError)) throw err;
      // Only verified envelopes are logged; one that fails now was written by something else.
      this.opts.logger.error({ stream_seq: m.seq, reason: err.reason, detail: err.message }, 'logged envelope does not verify; skipped');
      return m.term();
    }
    const bseq = batch.body.seq;
    // Decided on a fresh read of the signer's own chain (the headers only routed the message here).
    const result = await this.store.apply(batch, loggedAt, 'log', () => this.intake.receipt(batch, loggedAt));
    if (result.kind === 'accepted') {
      this.appliedFromLog++;
      this.opts.logger.info({ device: result.device, seq: bseq, applied_from_log: this.appliedFromLog }, 'stored a logged batch that no replica had stored');
    } else if (result.kind === 'conflict') {
      this.opts.logger.debug({ device: result.device, seq: bseq, reason: result.reason }, 'logged batch conflicts with the held chain (it was refused when sent)');
    }
    m.ack();
  }

  private async pg<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (isPgUnavailable(err)) throw new BackendUnavailableError(`PostgreSQL unavailable (${what}): ${(err as Error).message}`, 2, { cause: err });
      throw err;
    }
  }

  countRejection(reason: string): void {
    this.store.countRejection(reason).catch((err: unknown) => this.opts.logger.warn({ reason, err: (err as Error).message }, 'could not count a rejection in PostgreSQL'));
  }

  stats() {
    return this.pg('read the stats', () => this.store.stats());
  }

  deviceBatches(device: string) {
    return this.pg('list batches', () => this.store.deviceBatches(device));
  }

  alertChanges(device: string) {
    return this.pg('list alerts', () => this.store.alertChanges(device));
  }

  elementEnvelope(device: string, kind: 'reading' | 'verdict' | 'event', id: number) {
    return this.pg('find the batch of an element', () => this.store.elementEnvelope(device, kind, id));
  }

  availability(device: string, from: number | undefined, to: number) {
    return this.pg('compute availability', () => this.store.availability(device, from, to));
  }

  deviceEvents(device: string, after?: number, limit?: number) {
    return this.pg('list events', () => this.store.deviceEvents(device, after, limit));
  }

  private closing: Promise<void> | undefined;

  close(): Promise<void> {
    return (this.closing ??= this.shutDown());
  }

  private async shutDown(): Promise<void> {
    this.stopping.abort();
    for (const f of this.following) f.stop();
    await this.log.close();
    await this.pool.end();
  }
}
