import { verifyAnyBatchEnvelope, type AnyBatch } from '../identity/batch-any.js';
import { BatchVerificationError, hex } from '../identity/batch-format.js';
import { batchCidText } from '../identity/cid.js';
import { deviceIdFromPublicKey } from '../identity/device-id.js';
import { checkAttestationBindings } from '../identity/sensor-attestation.js';
import type { Identity } from '../identity/keys.js';
import { signReceipt } from '../identity/receipt.js';
import type { UpdateOutbox } from './update-outbox.js';
import type { UploadRequests } from './upload-requests.js';
import type { Logger } from '../log.js';
import type { ReceiverBackend } from './backend.js';
import type { SensorKeyRegistry } from './sensor-key-registry.js';

/**
 * What every receiver front end (HTTP, MQTT bridge) does with an envelope: verify it whatever its
 * version (wire-format.md §6.1, §12.9), opening sealed batches with the receiver's own key, and
 * sign the receipt of the matching version (§8, §12.10). `durability` is what the receipt promises.
 */
export class BatchIntake {
  private readonly boxKey: Uint8Array;

  constructor(
    private readonly identity: Identity,
    private readonly durability: 'disk' | 'quorum' = 'disk',
    /** With a registry, §12.9 step 11 applies; without it a sensor key's origin is unchecked (§12.7). */
    private readonly sensorKeys?: SensorKeyRegistry,
  ) {
    this.boxKey = identity.boxSecretKey();
  }

  /** Throws BatchVerificationError with the spec's reason. */
  verify(envelope: Uint8Array): AnyBatch {
    const batch = verifyAnyBatchEnvelope(envelope, { openWith: this.boxKey });
    // §12.7: beyond the sensor's signature (checked above), a firmware-bridge attestation must
    // bind the very readings it names (PROTOCOL.md §3.9): a value changed on the gateway fails here.
    const data = batch.v3?.data;
    if (data?.att) {
      const problems = checkAttestationBindings(data);
      if (problems.length > 0) throw new BatchVerificationError('bad-attestation', problems[0]!);
      const device = deviceIdFromPublicKey(batch.body.dev);
      const refusal = this.sensorKeys?.refusal(device, data);
      if (refusal) throw new UntrustedSensorKeyError(refusal, device, batch.body.seq, hex(batch.hash));
    }
    return batch;
  }

  receipt(batch: AnyBatch, receivedAt: number): Uint8Array {
    const fields = { dev: batch.body.dev, seq: batch.body.seq, hash: batch.hash, at: receivedAt };
    if (batch.version !== 3 || !batch.v3) return signReceipt(this.identity, fields);
    const h = batch.v3.header;
    return signReceipt(this.identity, fields, { dh: h.dh, ...(h.ch ? { ch: h.ch } : {}), cid: batchCidText(batch.envelope), dur: this.durability });
  }
}

/**
 * §12.9 step 11: the batch verified (its signer is known), but an attestation is under a key the
 * registry does not hold for that device and board. Unlike a §6.1 failure it is answered to the
 * signer, over MQTT too, so the gateway stops resending and keeps the batch as rejected.
 */
export class UntrustedSensorKeyError extends BatchVerificationError {
  constructor(
    detail: string,
    readonly device: string,
    readonly seq: number,
    readonly hash: string,
  ) {
    super('unknown-sensor-key', detail, { claimed_device: device, claimed_seq: seq });
  }
}

/** HTTP status of each refusal (docs/wire-format.md §7). */
export const REJECT_STATUS: Readonly<Record<string, number>> = {
  'malformed': 400,
  'bad-signature': 403,
  'seq-conflict': 409,
  'chain-broken': 409,
  'too-large': 413,
  'unsupported-media-type': 415,
  'bad-count': 422,
  'duplicate-reading-id': 422,
  'duplicate-verdict-id': 422,
  'bad-time-range': 422,
  'bad-merkle-root': 422,
  // §12.9 (version 3): 422 for a data hash or attestation that does not match; 400 for a batch sealed to another key.
  'bad-data-hash': 422,
  'bad-attestation': 422,
  // §12.9 step 11: signed by a sensor key the network did not provision for that device and board.
  'unknown-sensor-key': 403,
  'undecryptable': 400,
};

export type IntakeAnswer =
  | { kind: 'stored'; status: 200; reply: { status: 'accepted' | 'duplicate'; device: string; seq: number; hash: string; receipt: string; update?: string; upload?: string[] } }
  /** `verified` is false when §6.1 failed: nothing in the batch can be trusted to address an answer (§7.1). */
  | { kind: 'rejected'; status: number; verified: boolean; reply: { status: 'rejected'; reason: string; detail: string } & Record<string, unknown> };

/**
 * One envelope in, one answer out: verify (§6.1), store and chain-check (§6.2), sign the receipt
 * (§8). The public boundary shared by `POST /v1/batches` and the MQTT bridge; it never throws for
 * anything a client sent (a store failure does throw: the caller answers 500 / withholds the PUBACK).
 */
export function createBatchIntake(
  store: ReceiverBackend,
  identity: Identity,
  log: Logger,
  durability: 'disk' | 'quorum' = 'disk',
  outbox?: UpdateOutbox,
  sensorKeys?: SensorKeyRegistry,
  uploads?: UploadRequests,
): (envelope: Uint8Array, receivedAt: number) => Promise<IntakeAnswer> {
  const intake = new BatchIntake(identity, durability, sensorKeys);
  return async (envelope, receivedAt) => {
    let batch: AnyBatch;
    try {
      batch = intake.verify(envelope);
    } catch (err) {
      if (!(err instanceof BatchVerificationError)) throw err;
      store.countRejection(err.reason);
      log.warn({ ...err.claimed, reason: err.reason, detail: err.message }, 'batch rejected');
      if (err instanceof UntrustedSensorKeyError) {
        return { kind: 'rejected', status: REJECT_STATUS[err.reason]!, verified: true, reply: { status: 'rejected', reason: err.reason, detail: err.message, device: err.device, seq: err.seq, hash: err.hash } };
      }
      return { kind: 'rejected', status: REJECT_STATUS[err.reason] ?? 422, verified: false, reply: { status: 'rejected', reason: err.reason, detail: err.message, ...err.claimed } };
    }
    const { seq } = batch.body;
    const result = await store.ingest(batch, receivedAt, () => intake.receipt(batch, receivedAt));
    if (result.kind === 'conflict') {
      store.countRejection(result.reason);
      log.warn({ device: result.device, seq, reason: result.reason, detail: result.detail }, 'batch rejected');
      return {
        kind: 'rejected',
        status: REJECT_STATUS[result.reason]!,
        verified: true,
        reply: { status: 'rejected', reason: result.reason, detail: result.detail, device: result.device, seq, hash: hex(batch.hash) },
      };
    }
    if (result.kind === 'accepted' && result.gapBefore) log.info({ device: result.device, seq }, 'batch accepted with a gap before it');
    log.debug({ device: result.device, seq, status: result.kind }, 'batch received');
    outbox?.note(result.device, batch.events);
    const update = outbox?.offerFor(result.device);
    uploads?.note(result.device, batch.events);
    const upload = uploads?.offerFor(result.device) ?? [];
    return {
      kind: 'stored',
      status: 200,
      reply: { status: result.kind, device: result.device, seq, hash: hex(batch.hash), receipt: Buffer.from(result.receipt).toString('base64'), ...(update ? { update } : {}), ...(upload.length > 0 ? { upload } : {}) },
    };
  };
}
