import { randomBytes } from 'node:crypto';
import { publicKeyFromDeviceId } from '../identity/device-id.js';
import type { BatchEvent } from '../identity/event-format.js';
import type { Identity } from '../identity/keys.js';
import { signUploadRequest, UPLOAD_REQUEST_MAX_SENSORS } from '../identity/upload-request.js';

/** Requests held at once (pending and the last done ones); past it the oldest done, then the oldest pending, are forgotten. */
const MAX_REQUESTS = 10_000;
/** Open requests per device: more are refused until the device has answered some. */
const MAX_PENDING_PER_DEVICE = 16;
/** Requests offered in one answer to a batch (the answer stays well inside the agent's 64 KiB reply cap). */
const OFFERED_PER_ANSWER = 1;

export interface UploadAsk {
  sensors: string[];
  from: number;
  to: number;
  by: string;
}

/** A request as `GET /v1/devices/DID/upload-requests` shows it. */
export interface UploadRequestView extends UploadAsk {
  id: string;
  device: string;
  requested_at: number;
  state: 'pending' | 'done';
  /** Per sensor the device has answered for: readings it released for upload (its `report.full_rate` event). */
  released: Record<string, number>;
  done_at: number | null;
}

interface Held extends UploadRequestView {
  base64: string;
}

export class UploadRefused extends Error {}

/**
 * Uploads requested by the network (issue 14, summary mode: "the raw readings uploadable on
 * request"; docs/wire-format.md §12.15). The operator asks at `POST /v1/devices/DID/upload-requests`;
 * the receiver signs the request with its key and offers it in the `upload` field of its answers to
 * that device's batches until the device answers with `report.full_rate` events naming the request
 * (`d.request`), one per sensor; then it is done. Held in memory, as the update outbox: a request
 * still pending when the receiver restarts is forgotten, and the operator asks again.
 */
export class UploadRequests {
  private readonly requests = new Map<string, Held>();

  constructor(private readonly identity: Identity) {}

  request(device: string, ask: UploadAsk, now = Date.now()): UploadRequestView {
    const pending = [...this.requests.values()].filter((r) => r.device === device && r.state === 'pending').length;
    if (pending >= MAX_PENDING_PER_DEVICE) throw new UploadRefused(`${device} has ${pending} upload requests it has not answered yet (at most ${MAX_PENDING_PER_DEVICE}); wait for them (GET .../upload-requests)`);
    if (ask.sensors.length < 1 || ask.sensors.length > UPLOAD_REQUEST_MAX_SENSORS) throw new UploadRefused(`sensors: give 1-${UPLOAD_REQUEST_MAX_SENSORS} sensor ids`);
    const id = randomBytes(8).toString('hex');
    const envelope = signUploadRequest(this.identity, { dev: publicKeyFromDeviceId(device), id, s: ask.sensors, from: ask.from, to: ask.to, by: ask.by, at: now });
    const held: Held = { id, device, ...ask, requested_at: now, state: 'pending', released: {}, done_at: null, base64: Buffer.from(envelope).toString('base64') };
    this.requests.set(id, held);
    this.trim();
    return view(held);
  }

  /** The signed requests to offer in an answer to `device`'s batch (oldest pending first). */
  offerFor(device: string): string[] {
    const out: string[] = [];
    for (const r of this.requests.values()) {
      if (out.length >= OFFERED_PER_ANSWER) break;
      if (r.device === device && r.state === 'pending') out.push(r.base64);
    }
    return out;
  }

  /** Notes the device's answers (report.full_rate with d.request) in a stored batch. */
  note(device: string, events: readonly BatchEvent[], now = Date.now()): void {
    for (const e of events) {
      if (e.k !== 'report.full_rate' || !e.s) continue;
      const d = (e.d ?? {}) as Record<string, unknown>;
      const r = typeof d.request === 'string' ? this.requests.get(d.request) : undefined;
      // The first answer per sensor counts (a request offered again before its answer arrived is answered again, releasing 0).
      if (!r || r.device !== device || !r.sensors.includes(e.s) || e.s in r.released) continue;
      r.released[e.s] = typeof d.released === 'number' ? d.released : 0;
      if (r.state === 'pending' && r.sensors.every((s) => s in r.released)) {
        r.state = 'done';
        r.done_at = now;
      }
    }
  }

  list(device: string): UploadRequestView[] {
    return [...this.requests.values()].filter((r) => r.device === device).map(view);
  }

  private trim(): void {
    if (this.requests.size <= MAX_REQUESTS) return;
    const order = [...this.requests.values()].sort((a, b) => Number(a.state === 'pending') - Number(b.state === 'pending') || a.requested_at - b.requested_at);
    for (const r of order.slice(0, this.requests.size - MAX_REQUESTS)) this.requests.delete(r.id);
  }
}

function view(r: Held): UploadRequestView {
  const { base64: _b, ...shown } = r;
  return { ...shown, released: { ...r.released } };
}
