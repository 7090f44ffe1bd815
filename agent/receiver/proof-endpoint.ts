import { deviceIdFromPublicKey, publicKeyFromDeviceId } from '../identity/device-id.js';
import { ProofUnavailable, proveElement } from '../identity/element-proof.js';
import type { ProofKind } from '../identity/proof.js';
import type { BatchIntake } from './batch-intake.js';
import type { ReceiverBackend } from './backend.js';

/** `readings`, `verdicts`, `events` of the URL to the proof kind (wire-format.md §12.8). */
export const PROOF_KINDS: Readonly<Record<string, ProofKind>> = { readings: 'reading', verdicts: 'verdict', events: 'event' };

/**
 * GET /v1/devices/DID/{readings,verdicts,events}/ID/proof: the element's proof (wire-format.md
 * §12.8) from the batch it was first stored from, opened with the receiver's key when sealed.
 * 404 for an unknown device or element, 422 `proof-needs-version-3` for a version 1 or 2 batch.
 */
export async function proofAnswer(store: ReceiverBackend, verifier: BatchIntake, did: string, kind: ProofKind, id: number): Promise<{ status: number; body: unknown }> {
  let device: string;
  try {
    device = deviceIdFromPublicKey(publicKeyFromDeviceId(did));
  } catch (err) {
    return { status: 404, body: { status: 'error', reason: 'unknown-device', detail: (err as Error).message } };
  }
  const envelope = await store.elementEnvelope(device, kind, id);
  if (!envelope) return { status: 404, body: { status: 'error', reason: 'not-found', detail: `no ${kind} ${id} of ${device} is held here` } };
  try {
    return { status: 200, body: proveElement(verifier.verify(envelope), kind, id) };
  } catch (err) {
    if (!(err instanceof ProofUnavailable)) throw err;
    const v3 = err.reason === 'needs-version-3';
    return { status: v3 ? 422 : 404, body: { status: 'error', reason: v3 ? 'proof-needs-version-3' : err.reason, detail: err.message } };
  }
}
