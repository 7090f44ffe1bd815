import { createHash } from 'node:crypto';
import {
  AckPolicy,
  connect,
  DeliverPolicy,
  DiscardPolicy,
  headers,
  nanos,
  RetentionPolicy,
  StorageType,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
} from 'nats';
import { hex, type SignedBatch } from '../../identity/batch-format.js';
import type { Logger } from '../../log.js';

export const STREAM = 'EDGE_BATCHES';
/** Devices are spread over this many partitions; changing it needs a new stream (docs/fleet.md). */
export const PARTITIONS = 16;
const SUBJECT_PREFIX = 'edge.batches';
export const SEQ_HEADER = 'Edge-Seq';
export const DEVICE_HEADER = 'Edge-Device';

export interface BatchLogOptions {
  servers: string[];
  /** Copies of every message the stream keeps; 3 on the 3-node cluster (a quorum of 2 acknowledges). */
  replicas: number;
  /** How long the log keeps envelopes; PostgreSQL keeps them for good. */
  maxAgeMs: number;
  /** JetStream's own de-duplication window on Nats-Msg-Id; replays older than this are caught by PostgreSQL. */
  duplicateWindowMs: number;
  name: string;
  logger: Logger;
}

/** The partition of a device: a stable hash of its public key, so one device always lands in one partition. */
export function partitionOf(devicePublicKey: Uint8Array): number {
  return createHash('sha256').update(devicePublicKey).digest().readUInt16BE(0) % PARTITIONS;
}

export const subjectFor = (partition: number, device: string) => `${SUBJECT_PREFIX}.${partition}.${device}`;

/**
 * The durable log of verified envelopes: a JetStream stream replicated `replicas` times. A
 * publish resolves once the stream's leader has the message on a quorum of nodes (the PubAck);
 * only then may a replica sign a receipt. Nats-Msg-Id = the batch hash, so a batch published
 * twice within the window is stored once.
 */
export class BatchLog {
  private constructor(
    readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {}

  static async open(opts: BatchLogOptions): Promise<BatchLog> {
    const log = opts.logger;
    const nc = await connect({ servers: opts.servers, name: opts.name, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 10_000 });
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect') log.info({ nats: s.type, server: s.data }, `nats ${s.type}`);
        else if (s.type === 'error') log.warn({ nats: s.type, err: String(s.data) }, 'nats error');
      }
    })();
    const jsm = await nc.jetstreamManager({ timeout: 10_000 });
    const config = {
      name: STREAM,
      subjects: [`${SUBJECT_PREFIX}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: opts.replicas,
      max_age: nanos(opts.maxAgeMs),
      duplicate_window: nanos(opts.duplicateWindowMs),
      discard: DiscardPolicy.Old,
    };
    try {
      await jsm.streams.info(STREAM);
    } catch {
      // Two replicas starting together may both try; the second finds the first's stream.
      await jsm.streams.add(config).catch(async (err: unknown) => {
        await jsm.streams.info(STREAM).catch(() => {
          throw err;
        });
      });
    }
    return new BatchLog(nc, nc.jetstream({ timeout: 10_000 }), jsm);
  }

  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  /** Resolves once the envelope is on a quorum of the stream's nodes; `duplicate` when it already was. */
  async append(batch: SignedBatch, device: string): Promise<{ streamSeq: number; duplicate: boolean }> {
    const h = headers();
    h.set(SEQ_HEADER, String(batch.body.seq));
    h.set(DEVICE_HEADER, device);
    const ack = await this.js.publish(subjectFor(partitionOf(batch.body.dev), device), batch.envelope, { msgID: hex(batch.hash), headers: h });
    return { streamSeq: ack.seq, duplicate: ack.duplicate };
  }

  /**
   * Delivers every message of one partition in stream order to `handle`, shared among all
   * replicas through one durable consumer per partition with one message in flight: whichever
   * replica holds it, a device's batches are applied one after the other.
   */
  async follow(partition: number, handle: (m: JsMsg) => Promise<void>, log: Logger): Promise<ConsumerMessages> {
    const durable = `projector-${partition}`;
    await this.jsm.consumers
      .add(STREAM, {
        durable_name: durable,
        filter_subject: `${SUBJECT_PREFIX}.${partition}.>`,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        max_ack_pending: 1,
        ack_wait: nanos(30_000),
      })
      .catch(async (err: unknown) => {
        await this.jsm.consumers.info(STREAM, durable).catch(() => {
          throw err;
        });
      });
    const consumer = await this.js.consumers.get(STREAM, durable);
    const messages = await consumer.consume({ max_messages: 1 });
    void (async () => {
      for await (const m of messages) {
        try {
          await handle(m);
        } catch (err) {
          // Not applied: redelivered after a short pause (PostgreSQL down, most likely).
          log.warn({ partition, stream_seq: m.seq, err: (err as Error).message }, 'could not apply a logged batch; retrying');
          m.nak(2000);
        }
      }
    })();
    return messages;
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}
