import { z } from 'zod';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deviceIdFromPublicKey, publicKeyFromDeviceId } from '../identity/device-id.js';
import { Identity, readKeyFile, writeKeyFile } from '../identity/keys.js';
import { BatchIntake, createBatchIntake, REJECT_STATUS } from './batch-intake.js';
import { PROOF_KINDS, proofAnswer } from './proof-endpoint.js';
import type { Logger } from '../log.js';
import { MAX_ENVELOPE_BYTES } from '../identity/wire-limits.js';
import { UpdateOutbox } from './update-outbox.js';
import { MAX_UPLOAD_REQUEST_BODY, uploadRequestAnswer } from './upload-endpoint.js';
import { UploadRequests } from './upload-requests.js';
import { startMqttBridge, type MqttBridge, type MqttBridgeOptions } from './mqtt-bridge.js';
import { TokenBuckets } from './rate-limit.js';
import { openReceiverDatabase } from './receiver-schema.js';
import { ReceiverStore } from './receiver-store.js';
import { BackendUnavailableError, type ReceiverBackend } from './backend.js';
import type { SensorKeyRegistry } from './sensor-key-registry.js';

/** The envelope limit of wire-format.md §6.3; a larger POST gets 413. */
export const DEFAULT_MAX_BODY_BYTES = MAX_ENVELOPE_BYTES;
/** Batches per second per source address (token bucket); a gateway draining a backlog at this pace moves 50,000 readings/s. */
export const DEFAULT_RATE_PER_S = 50;
export const DEFAULT_RATE_BURST = 100;
export const RECEIVER_KEY_FILE = 'receiver.key';
export const RECEIVER_PUB_FILE = 'receiver.pub';
export const RECEIVER_DB_FILE = 'receiver.db';

export interface ReceiverOptions {
  host: string;
  port: number;
  dataDir: string;
  logger: Logger;
  maxBodyBytes?: number;
  /** POST /v1/batches per second per source address; 0 turns the limit off. */
  ratePerS?: number;
  rateBurst?: number;
  /** Serve https with this certificate and key (PEM). */
  tls?: { cert: Buffer; key: Buffer };
  /** Also take batches from an MQTT broker (agents with an mqtt uplink). */
  mqtt?: Omit<MqttBridgeOptions, 'maxBodyBytes' | 'clientId'> & { clientId?: string };
  /** Another store than DIR/receiver.db (the fleet backend), signing with this receiver key; `durability` is what its receipts promise (§12.10). */
  backend?: { store: ReceiverBackend; identity: Identity; durability: 'disk' | 'quorum' };
  /** `--sensor-keys`: refuse attestations under keys the network did not provision (§12.9 step 11); absent, origin is unchecked. */
  sensorKeys?: SensorKeyRegistry;
}

export interface RunningReceiver {
  url: string;
  port: number;
  publicKey: Uint8Array;
  close(): Promise<void>;
}

const ACCEPTED_TYPES = new Set(['application/cbor', 'application/octet-stream']);

/** Loads DIR/receiver.key, or creates it (mode 0600) on first start. */
export function loadOrCreateReceiverKey(dataDir: string): Identity {
  const path = join(dataDir, RECEIVER_KEY_FILE);
  if (existsSync(path)) return readKeyFile(path);
  const identity = Identity.generate();
  writeKeyFile(path, identity, false);
  return identity;
}

class Rejection extends Error {
  constructor(
    readonly reason: string,
    readonly detail: string,
    readonly context: Record<string, unknown> = {},
  ) {
    super(detail);
  }
}

const LOOPBACK = ['127.0.0.1', '::1', '::ffff:127.0.0.1'];

const sendAnswer = (res: ServerResponse, a: { status: number; body: unknown }) => sendJson(res, a.status, a.body);

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** A refused body is still read (and discarded) for at most this long, and this many bytes, before the answer (§7). */
export const DRAIN_MAX_MS = 5000;
export const DRAIN_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Reads the body up to `limit` bytes; `undefined` when it is larger. A larger body is read to its
 * end and discarded (bounded by DRAIN_MAX_MS and DRAIN_MAX_BYTES), so a client that writes its
 * whole request before reading the answer gets the 413 instead of EPIPE (§7).
 */
function readBody(req: IncomingMessage, limit: number): Promise<{ body?: Buffer; drained: boolean }> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return drain(req).then((drained) => ({ drained }));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        chunks.length = 0;
        void drain(req).then((drained) => resolve({ drained }), reject);
      } else chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve({ body: Buffer.concat(chunks), drained: true });
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** Discards the rest of a request body; false when it did not end within the drain bounds. */
function drain(req: IncomingMessage): Promise<boolean> {
  if (req.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    let size = 0;
    const finish = (ended: boolean) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onEnd);
      if (!ended) req.pause();
      resolve(ended);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > DRAIN_MAX_BYTES) finish(false);
    };
    const onEnd = () => finish(true);
    const timer = setTimeout(() => finish(false), DRAIN_MAX_MS);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onEnd);
    req.resume();
  });
}

/** `?after=N` of GET /v1/devices/DID/events: events after id N (0 when absent or not a number). */
function eventsAfter(url: string | undefined): number {
  const after = Number(new URL(url ?? '/', 'http://receiver').searchParams.get('after') ?? 0);
  return Number.isSafeInteger(after) && after > 0 ? after : 0;
}

/** A `from`/`to` query parameter: ms since the epoch; undefined when absent or not a whole number. */
function timeParam(text: string | null): number | undefined {
  if (text === null || text === '') return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A publish request is a bundle (≤ 40 KiB, so ~55 KiB of base64) and a rollout: 1 MiB leaves room for 10,000 device ids. */
const MAX_PUBLISH_BYTES = 1024 * 1024;
const publishSchema = z.union([
  z.strictObject({ bundle: z.string().min(1), devices: z.array(z.string()).min(1).max(10_000) }),
  z.strictObject({ bundle: z.string().min(1), percent: z.number() }),
]);

/**
 * `POST /v1/updates` (docs/updates.md §7): puts a signed bundle in the outbox for the devices named
 * or a share of all. Taken only from loopback: whoever can reach it picks what devices are offered
 * (they verify the publisher signature themselves, so it cannot make them run anything unsigned).
 */
async function postUpdate(req: IncomingMessage, res: ServerResponse, outbox: UpdateOutbox, log: Logger): Promise<void> {
  const from = req.socket.remoteAddress ?? '';
  if (!LOOPBACK.includes(from)) {
    await drain(req);
    return sendJson(res, 403, { status: 'error', reason: 'forbidden', detail: 'updates are published from the receiver host itself (loopback)' });
  }
  const { body } = await readBody(req, MAX_PUBLISH_BYTES);
  if (!body) return sendJson(res, 413, { status: 'error', reason: 'too-large', detail: `a publish request is at most ${MAX_PUBLISH_BYTES} bytes` });
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return sendJson(res, 400, { status: 'error', reason: 'malformed', detail: 'body is not JSON' });
  }
  const parsed = publishSchema.safeParse(json);
  if (!parsed.success) return sendJson(res, 400, { status: 'error', reason: 'malformed', detail: 'expected {"bundle": base64, "devices": [did:key, ...]} or {"bundle": base64, "percent": 1-100}' });
  try {
    const rollout = 'devices' in parsed.data ? { devices: parsed.data.devices } : { percent: parsed.data.percent };
    const published = outbox.publish(parsed.data.bundle, rollout);
    log.info(published, 'update published');
    sendJson(res, 200, { status: 'published', ...published });
  } catch (err) {
    sendJson(res, 400, { status: 'error', reason: 'malformed', detail: (err as Error).message });
  }
}

export async function startReceiver(opts: ReceiverOptions): Promise<RunningReceiver> {
  const log = opts.logger;
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const identity = opts.backend?.identity ?? loadOrCreateReceiverKey(opts.dataDir);
  writeFileSync(join(opts.dataDir, RECEIVER_PUB_FILE), `${identity.deviceId}\n`);
  const store: ReceiverBackend = opts.backend?.store ?? new ReceiverStore(openReceiverDatabase(join(opts.dataDir, RECEIVER_DB_FILE)));
  const durability = opts.backend?.durability ?? 'disk';

  const outbox = new UpdateOutbox();
  const uploads = new UploadRequests(identity);
  const intake = createBatchIntake(store, identity, log, durability, outbox, opts.sensorKeys, uploads);
  // Opens stored sealed batches again for the proofs served below.
  const verifier = new BatchIntake(identity);

  const reject = (res: ServerResponse, r: Rejection): void => {
    store.countRejection(r.reason);
    log.warn({ ...r.context, reason: r.reason, detail: r.detail }, 'batch rejected');
    sendJson(res, REJECT_STATUS[r.reason] ?? 422, { status: 'rejected', reason: r.reason, detail: r.detail, ...r.context });
  };

  /** Answers once the body is read and discarded; a body past the drain bounds gets the answer and the connection closed. */
  const rejectAfterDrain = async (req: IncomingMessage, res: ServerResponse, r: Rejection, drained?: boolean): Promise<void> => {
    if (!(drained ?? (await drain(req)))) res.shouldKeepAlive = false;
    reject(res, r);
  };

  const ratePerS = opts.ratePerS ?? DEFAULT_RATE_PER_S;
  const limiter = ratePerS > 0 ? new TokenBuckets(ratePerS, Math.max(1, opts.rateBurst ?? (opts.ratePerS === undefined ? DEFAULT_RATE_BURST : 2 * ratePerS))) : undefined;
  let rateLimited = 0;

  const postBatch = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // Before the body is read or a signature checked: the cheap refusal comes first.
    const address = req.socket.remoteAddress ?? 'unknown';
    const allowed = limiter?.take(address, Date.now()) ?? { ok: true };
    if (!allowed.ok) {
      rateLimited++;
      if (rateLimited === 1 || rateLimited % 100 === 0) log.warn({ address, rate_limited: rateLimited }, 'client over the rate limit (429)');
      res.shouldKeepAlive = false;
      return sendJson(
        res,
        429,
        { status: 'error', reason: 'rate-limited', detail: `more than ${ratePerS} batches/s from ${address}; retry after ${allowed.retryAfterS} s` },
        { 'retry-after': String(allowed.retryAfterS) },
      );
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!ACCEPTED_TYPES.has(type)) {
      return rejectAfterDrain(req, res, new Rejection('unsupported-media-type', `content type must be application/cbor or application/octet-stream, not "${type}"`));
    }
    const { body, drained } = await readBody(req, maxBody);
    if (body === undefined) return rejectAfterDrain(req, res, new Rejection('too-large', `body larger than ${maxBody} bytes`), drained);
    const answer = await intake(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), Date.now());
    sendJson(res, answer.status, answer.reply);
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://receiver').pathname;
    } catch {
      return sendJson(res, 400, { status: 'error', reason: 'bad-request', detail: 'request target is not a valid URL path' });
    }
    const method = req.method ?? 'GET';
    const only = (allowed: string, handler: () => void | Promise<void>) =>
      method === allowed ? handler() : sendJson(res, 405, { status: 'error', reason: 'method-not-allowed', detail: `${path} takes ${allowed}` }, { allow: allowed });

    if (path === '/v1/batches') return only('POST', () => postBatch(req, res));
    if (path === '/v1/updates') return only('POST', () => postUpdate(req, res, outbox, log));
    if (path === '/v1/fleet') return only('GET', () => sendJson(res, 200, outbox.fleet()));
    if (path === '/v1/stats') return only('GET', async () => sendJson(res, 200, { ...(await store.stats()), rate_limited: rateLimited }));
    if (path === '/v1/receiver') return only('GET', () => sendJson(res, 200, { public_key: identity.deviceId }));
    const proof = /^\/v1\/devices\/([^/]+)\/(readings|verdicts|events)\/(\d{1,15})\/proof$/.exec(path);
    if (proof) {
      return only('GET', async () => {
        const a = await proofAnswer(store, verifier, decodeURIComponent(proof[1]!), PROOF_KINDS[proof[2]!]!, Number(proof[3]));
        sendJson(res, a.status, a.body);
      });
    }
    const up = /^\/v1\/devices\/([^/]+)\/upload-requests$/.exec(path);
    if (up) {
      const did = decodeURIComponent(up[1]!);
      if (method === 'GET') return sendAnswer(res, uploadRequestAnswer(uploads, did, 'GET'));
      return only('POST', async () => {
        // As /v1/updates: asked from the receiver host itself (a request makes a device spend its metered link).
        if (!LOOPBACK.includes(req.socket.remoteAddress ?? '')) {
          await drain(req);
          return sendJson(res, 403, { status: 'error', reason: 'forbidden', detail: 'upload requests are made from the receiver host itself (loopback)' });
        }
        const { body } = await readBody(req, MAX_UPLOAD_REQUEST_BODY);
        if (!body) return sendJson(res, 413, { status: 'error', reason: 'too-large', detail: `an upload request is at most ${MAX_UPLOAD_REQUEST_BODY} bytes` });
        const answer = uploadRequestAnswer(uploads, did, 'POST', body.toString('utf8'));
        if (answer.status === 201) log.info({ device: did, request: (answer.body as { id: string }).id }, 'upload requested');
        sendAnswer(res, answer);
      });
    }
    const m = /^\/v1\/devices\/([^/]+)\/(batches|alerts|events|availability)$/.exec(path);
    if (m) {
      return only('GET', async () => {
        let device: string;
        try {
          device = deviceIdFromPublicKey(publicKeyFromDeviceId(decodeURIComponent(m[1]!)));
        } catch (err) {
          return sendJson(res, 404, { status: 'error', reason: 'unknown-device', detail: (err as Error).message });
        }
        const q = new URL(req.url ?? '/', 'http://receiver').searchParams;
        const list = await (m[2] === 'alerts'
            ? store.alertChanges(device)
            : m[2] === 'events'
              ? store.deviceEvents(device, eventsAfter(req.url))
              : m[2] === 'availability'
                ? store.availability(device, timeParam(q.get('from')), timeParam(q.get('to')) ?? Date.now())
                : store.deviceBatches(device));
        if (!list) return sendJson(res, 404, { status: 'error', reason: 'unknown-device', detail: `no batches from ${device}` });
        sendJson(res, 200, list);
      });
    }
    sendJson(res, 404, { status: 'error', reason: 'not-found', detail: `no such path: ${method} ${path}` });
  };

  let unavailable = 0;
  let lastUnavailableWarn = 0;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    route(req, res).catch((err: unknown) => {
      // A client that hangs up mid-body is not a receiver failure.
      if (req.socket.destroyed) return log.debug({ err, url: req.url }, 'client went away');
      if (err instanceof BackendUnavailableError && !res.headersSent) {
        // One warning a second at most: during an outage every request fails the same way.
        unavailable++;
        const now = Date.now();
        log[now - lastUnavailableWarn >= 1000 ? 'warn' : 'debug']({ url: req.url, detail: err.message, unavailable }, 'store unavailable (503)');
        if (now - lastUnavailableWarn >= 1000) lastUnavailableWarn = now;
        res.shouldKeepAlive = false;
        return sendJson(res, 503, { status: 'error', reason: 'unavailable', detail: err.message }, { 'retry-after': String(err.retryAfterS) });
      }
      log.error({ err, method: req.method, url: req.url }, 'request handler failed');
      if (res.headersSent) res.destroy();
      else {
        res.shouldKeepAlive = false;
        sendJson(res, 500, { status: 'error', reason: 'internal', detail: 'internal error; see the receiver log' });
      }
    });
  };
  const server = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createServer(handler);
  server.requestTimeout = 60_000;

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: opts.host, port: opts.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  server.on('error', (err) => log.error({ err }, 'receiver server error'));
  const port = (server.address() as AddressInfo).port;
  const url = `${opts.tls ? 'https' : 'http'}://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  let bridge: MqttBridge | undefined;
  if (opts.mqtt) {
    const clientId = opts.mqtt.clientId ?? `edge-agent-receiver-${identity.deviceId.slice('did:key:z'.length, 'did:key:z'.length + 16)}`;
    try {
      bridge = await startMqttBridge({ ...opts.mqtt, clientId, maxBodyBytes: maxBody, durability, ...(opts.sensorKeys ? { sensorKeys: opts.sensorKeys } : {}) }, store, identity, log.child({ via: 'mqtt' }), outbox);
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
      throw err;
    }
  }
  log.info({ url, public_key: identity.deviceId }, 'receiver listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      // In-flight requests get a moment to finish; idle keep-alive connections close at once.
      const force = setTimeout(() => server.closeAllConnections(), 5000);
      server.close(() => {
        clearTimeout(force);
        void (bridge?.close() ?? Promise.resolve())
          .then(() => store.close())
          .catch((err: unknown) => log.error({ err }, 'closing the receiver store failed'))
          .finally(() => resolve());
      });
      server.closeIdleConnections();
    }));
  return { url, port, publicKey: identity.publicKey, close };
}
