import { z } from 'zod';
import { deviceIdFromPublicKey, publicKeyFromDeviceId } from '../identity/device-id.js';
import { UPLOAD_REQUEST_MAX_SENSORS } from '../identity/upload-request.js';
import { UploadRefused, type UploadRequests } from './upload-requests.js';

/** An upload request body: 64 sensor ids of 256 characters and the rest fit in 64 KiB. */
export const MAX_UPLOAD_REQUEST_BODY = 64 * 1024;

const time = z.union([z.number().int().refine(Number.isSafeInteger, 'must be ms since the epoch'), z.string().max(64).refine((s) => Number.isFinite(Date.parse(s)), 'must be RFC 3339')]);
const askSchema = z.strictObject({
  sensors: z.array(z.string().refine((s) => s.length >= 1 && s.length <= 256, 'a sensor id has 1-256 characters')).min(1).max(UPLOAD_REQUEST_MAX_SENSORS),
  from: time.optional(),
  to: time.optional(),
  by: z.string().refine((s) => s.length >= 1 && s.length <= 256, 'by has 1-256 characters').optional(),
});
const ms = (t: number | string) => (typeof t === 'number' ? t : Date.parse(t));

/**
 * `POST /v1/devices/DID/upload-requests` and `GET` of the same path (README "Uplink summary mode"
 * and docs/wire-format.md §12.15): ask a device to upload in full what summary mode kept of some
 * sensors and a time range, and see what became of the requests.
 */
export function uploadRequestAnswer(uploads: UploadRequests, did: string, method: 'GET' | 'POST', body?: string): { status: number; body: unknown } {
  let device: string;
  try {
    device = deviceIdFromPublicKey(publicKeyFromDeviceId(did));
  } catch (err) {
    return { status: 404, body: { status: 'error', reason: 'unknown-device', detail: (err as Error).message } };
  }
  if (method === 'GET') return { status: 200, body: uploads.list(device) };
  let json: unknown;
  try {
    json = JSON.parse(body ?? '');
  } catch {
    return { status: 400, body: { status: 'error', reason: 'malformed', detail: 'body is not JSON' } };
  }
  const parsed = askSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    return { status: 400, body: { status: 'error', reason: 'malformed', detail: `${i.path.join('.') || 'body'}: ${i.message} (expected {"sensors": [id, ...], "from": ms|RFC 3339, "to": ms|RFC 3339, "by": text})` } };
  }
  const a = parsed.data;
  const from = a.from === undefined ? 0 : ms(a.from);
  const to = a.to === undefined ? Date.now() : ms(a.to);
  if (from > to) return { status: 400, body: { status: 'error', reason: 'malformed', detail: `from (${new Date(from).toISOString()}) is after to (${new Date(to).toISOString()})` } };
  try {
    const request = uploads.request(device, { sensors: a.sensors, from, to, by: a.by ?? 'network' });
    return { status: 201, body: { status: 'requested', ...request } };
  } catch (err) {
    if (err instanceof UploadRefused) return { status: 429, body: { status: 'error', reason: 'too-many-pending', detail: err.message } };
    throw err;
  }
}
