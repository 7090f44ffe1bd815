import coap from 'coap';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { CONTENT_FORMAT, parseByContentFormat } from '../../payloads/content-format.js';
import { backoffDelay } from '../../util/backoff.js';
import type { Source, SourceContext, SourceHealth } from '../source.js';
import type { CoapObserveSourceConfig } from './config.js';

const FORMAT_IDS: Record<string, number> = {
  'text/plain': CONTENT_FORMAT.textPlain,
  'application/json': CONTENT_FORMAT.json,
  'application/senml+json': CONTENT_FORMAT.senmlJson,
  'application/senml+cbor': CONTENT_FORMAT.senmlCbor,
};

type Mode = 'registering' | 'observing' | 'polling' | 'waiting';

/**
 * Observes a CoAP resource (RFC 7641) and turns each notification into readings. When
 * notifications stop for `silence_timeout_ms` (server restarted and forgot us, or the
 * network dropped them) it registers again; a resource that answers without Observe is
 * polled with GET instead. Each attempt uses its own client socket, so an abandoned
 * exchange cannot linger in the library's retransmission state.
 */
export class CoapObserveSource implements Source {
  readonly id: string;
  private readonly target: URL;
  private readonly sensor: string;
  private readonly stats = { accepted: 0, duplicates: 0, rejected: 0 };
  private mode: Mode = 'waiting';
  private agent: coap.Agent | undefined;
  private socket: Socket | undefined;
  private close: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastNotificationMono = 0;
  private lastMessageAt: number | undefined;
  private lastError: string | undefined;
  private failures = 0;
  private stopped = false;
  private registrations = 0;
  /** Address of the last datagram the client socket received: the origin of the notification being ingested (guard stage, README "Guarding the edge"). */
  private lastSender: string | undefined;

  constructor(
    private readonly cfg: CoapObserveSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.id = ctx.id;
    this.target = new URL(cfg.url);
    this.sensor = cfg.sensor ?? (this.target.pathname.split('/').filter(Boolean).pop() || this.target.hostname);
  }

  async start(): Promise<void> {
    this.register();
  }

  private newAgent(): coap.Agent {
    this.dropAgent();
    const host = this.target.hostname.replace(/^\[|\]$/g, '');
    // Our own socket, so that each datagram's sender is known: node-coap matches a notification to
    // its observation by token alone (RFC 7641 §3.2 allows it) and does not say who sent it. This
    // listener runs before the agent's, which pushes the notification to the stream synchronously.
    // A socket given to it the agent never closes: dropAgent does.
    this.socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    this.socket.on('message', (_msg, rinfo) => (this.lastSender = rinfo.address));
    this.agent = new coap.Agent({ socket: this.socket });
    return this.agent;
  }

  private dropAgent(): void {
    this.close?.();
    this.close = undefined;
    try {
      this.agent?.close();
    } catch {
      // its socket was already closed with the last exchange
    }
    this.agent = undefined;
    try {
      this.socket?.close();
    } catch {
      // already closed
    }
    this.socket = undefined;
  }

  private request(observe: boolean, onResponse: (res: coap.IncomingMessage) => void): void {
    const agent = this.newAgent();
    const host = this.target.hostname.replace(/^\[|\]$/g, '');
    const req = coap.request({
      hostname: host,
      port: Number(this.target.port || 5683),
      pathname: this.target.pathname || '/',
      query: this.target.search.replace(/^\?/, ''),
      method: 'GET',
      observe,
      agent,
    });
    const timeout = setTimeout(() => this.failed(`no answer from ${this.cfg.url} within ${this.cfg.request_timeout_ms} ms`), this.cfg.request_timeout_ms);
    req.on('response', (res: coap.IncomingMessage) => {
      clearTimeout(timeout);
      if (!String(res.code).startsWith('2.')) return this.failed(`${this.cfg.url} answered ${res.code}: ${res.payload.toString('utf8').slice(0, 100)}`);
      this.failures = 0;
      this.lastError = undefined;
      onResponse(res);
    });
    req.on('error', (err: Error) => {
      clearTimeout(timeout);
      this.failed(`${this.cfg.url}: ${err.message}`);
    });
    req.end();
  }

  private register(): void {
    if (this.stopped) return;
    this.mode = 'registering';
    this.registrations++;
    this.request(true, (res) => {
      if (res.headers.Observe === undefined) {
        this.ctx.log.info({ url: this.cfg.url, poll_interval_ms: this.cfg.poll_interval_ms }, 'resource is not observable; polling');
        this.ingest(res.payload, res.headers['Content-Format']);
        this.dropAgent();
        this.mode = 'polling';
        this.schedule(this.cfg.poll_interval_ms, () => this.poll());
        return;
      }
      this.mode = 'observing';
      this.ctx.log.info({ url: this.cfg.url, registration: this.registrations }, 'observing');
      const stream = res as unknown as coap.ObserveReadStream;
      this.close = () => stream.close();
      this.lastNotificationMono = performance.now();
      stream.on('data', (chunk: Buffer) => {
        this.lastNotificationMono = performance.now();
        this.ingest(chunk, res.headers['Content-Format']);
      });
      this.watchSilence();
    });
  }

  private watchSilence(): void {
    this.schedule(Math.min(1000, this.cfg.silence_timeout_ms), () => {
      if (performance.now() - this.lastNotificationMono < this.cfg.silence_timeout_ms) return this.watchSilence();
      this.ctx.log.warn({ url: this.cfg.url, silent_ms: this.cfg.silence_timeout_ms }, 'notifications stopped; registering again');
      this.lastError = `no notification for ${this.cfg.silence_timeout_ms} ms`;
      this.register();
    });
  }

  private poll(): void {
    this.request(false, (res) => {
      this.ingest(res.payload, res.headers['Content-Format']);
      this.dropAgent();
      this.schedule(this.cfg.poll_interval_ms, () => this.poll());
    });
  }

  private failed(reason: string): void {
    if (this.stopped) return;
    this.dropAgent();
    this.failures++;
    this.lastError = reason;
    const delay = backoffDelay(this.failures, 500, 30_000);
    this.ctx.log[this.failures === 1 ? 'warn' : 'debug']({ url: this.cfg.url, reason, retry_in_ms: delay }, 'CoAP observe failed');
    // A polled resource goes on being polled; anything else tries to observe again.
    const wasPolling = this.mode === 'polling';
    this.mode = 'waiting';
    this.schedule(delay, () => (wasPolling ? this.poll() : this.register()));
  }

  private schedule(ms: number, fn: () => void): void {
    if (this.timer) clearTimeout(this.timer);
    if (!this.stopped) this.timer = setTimeout(fn, ms);
  }

  private ingest(payload: Buffer, format: unknown): void {
    this.lastMessageAt = Date.now();
    const id = typeof format === 'string' ? FORMAT_IDS[format.split(';')[0]!] ?? -1 : typeof format === 'number' ? format : undefined;
    const now = Date.now();
    const parsed = parseByContentFormat(id, payload, { defaultSensor: this.sensor, nowMs: now, clockSynced: this.ctx.clock.isSynced(now) }) ?? {
      readings: [],
      rejections: [{ reason: `content format ${String(format)} not accepted` }],
    };
    const rejected = parsed.rejections.map((r) => r.reason);
    if (rejected.length > 0) {
      this.stats.rejected += rejected.length;
      this.ctx.log.warn({ url: this.cfg.url, reasons: rejected.slice(0, 5) }, 'rejected notification');
    }
    // Notifications are not acknowledged after the commit: CoAP observe has no such hook,
    // so a crash between receipt and commit loses at most the notifications in flight.
    const origin = this.lastSender;
    this.ctx.sink.submit({ source: this.id, readings: parsed.readings, rejected, bytes: payload.length, ...(origin ? { origin } : {}) }).then(
      (r) => {
        this.stats.accepted += r.accepted;
        this.stats.duplicates += r.duplicates;
      },
      (err: Error) => {
        this.lastError = `store: ${err.message}`;
        this.ctx.log.error({ err, url: this.cfg.url }, 'could not store notification readings');
      },
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.dropAgent();
  }

  health(): SourceHealth {
    const h: SourceHealth = { type: 'coap-observe', connected: this.mode === 'observing' || this.mode === 'polling', endpoint: `${this.cfg.url} (${this.mode})`, ...this.stats };
    if (this.lastMessageAt !== undefined) h.lastMessageAt = this.lastMessageAt;
    if (this.lastError !== undefined) h.lastError = this.lastError;
    return h;
  }
}
