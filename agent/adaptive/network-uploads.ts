import { verifyUploadRequest, UPLOAD_REQUEST_MAX_BYTES } from '../identity/upload-request.js';
import type { Logger } from '../log.js';
import type { HeldReadings } from '../store/held-readings.js';
import { ThrottledWarn } from '../util/log-throttle.js';

/** Request ids remembered as handled: a request offered again (its answer not yet at the receiver) is not released twice. */
const HANDLED_MAX = 1024;

/**
 * Uploads requested by the network (docs/wire-format.md §12.15): the receiver offers signed
 * requests in its answers to batches; each one that verifies under the configured receiver key
 * and names this device releases what summary mode kept of its sensors and time range for
 * upload, with one `report.full_rate` event per sensor (`reason` upload, `by` the request's, and
 * `request` its id), which is the device's answer. The same as `edge-agent upload`, asked remotely.
 */
export class NetworkUploads {
  private readonly handled = new Set<string>();
  private readonly refusedLog: ThrottledWarn;
  readonly stats = { requests: 0, refused: 0, released: 0 };

  constructor(
    private readonly receiverKey: Uint8Array,
    private readonly device: Uint8Array,
    private readonly held: HeldReadings,
    private readonly log: Logger,
  ) {
    this.refusedLog = new ThrottledWarn(log, 60_000);
  }

  offer(list: readonly string[]): void {
    for (const base64 of list) {
      if (base64.length > (UPLOAD_REQUEST_MAX_BYTES * 4) / 3 + 4) {
        this.refuse('larger than an upload request can be');
        continue;
      }
      let r;
      try {
        r = verifyUploadRequest(new Uint8Array(Buffer.from(base64, 'base64')), this.receiverKey, this.device);
      } catch (err) {
        this.refuse((err as Error).message);
        continue;
      }
      if (this.handled.has(r.id)) continue;
      try {
        let released = 0;
        for (const sensor of r.s) released += this.held.release(sensor, r.from, r.to, { reason: 'upload', by: r.by, request: r.id }).released;
        this.handled.add(r.id);
        if (this.handled.size > HANDLED_MAX) this.handled.delete(this.handled.values().next().value!);
        this.stats.requests++;
        this.stats.released += released;
        this.log.info({ request: r.id, sensors: r.s.length, from: r.from, to: r.to, by: r.by, released }, 'upload requested by the network: kept readings released for upload');
      } catch (err) {
        // The store refused (a full disk): the receiver offers the request again with its next answer.
        this.log.warn({ err, request: r.id }, 'could not release kept readings for an upload request; it is tried again when offered again');
      }
    }
  }

  private refuse(why: string): void {
    this.stats.refused++;
    this.refusedLog.warn('upload-request', { reason: why }, 'upload request from the receiver refused (check uplink.receiver_key)');
  }
}
