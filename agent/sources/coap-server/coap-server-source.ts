import { BlockList, isIPv6 } from 'node:net';
import { AgentError, errorMessage } from '../../errors.js';
import { ACCEPTED_CONTENT_FORMATS, parseByContentFormat } from '../../payloads/content-format.js';
import { checkSensorId } from '../../payloads/types.js';
import type { Source, SourceContext, SourceHealth } from '../source.js';
import { TIMED_RESEND_COMMIT_WITHIN_MS } from '../../contracts/reading-sink.js';
import { CoapEndpoint, type CoapRequest, type CoapResponse } from './coap-endpoint.js';
import { splitListen, type CoapServerSourceConfig } from './config.js';

/**
 * Sensors POST or PUT readings to coap://HOST:PORT/readings[/<sensor-id>]. A request is
 * answered 2.04 Changed only once its readings are committed; errors are 4.xx with a
 * diagnostic payload (RFC 7252 §5.5.2), and every refusal is counted by reason.
 */
export class CoapServerSource implements Source {
  readonly id: string;
  private readonly endpoint: CoapEndpoint;
  private readonly stats = { accepted: 0, duplicates: 0, rejected: 0 };
  private listening = false;
  private bound = '';
  private lastMessageAt: number | undefined;
  private lastError: string | undefined;
  /** Counted refusals waiting to be written with the next commit. */
  private pendingRejections: string[] = [];

  constructor(
    private readonly cfg: CoapServerSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.id = ctx.id;
    const { host, port } = splitListen(cfg.listen);
    let allow: BlockList | undefined;
    if (cfg.allow_from.length > 0) {
      allow = new BlockList();
      for (const entry of cfg.allow_from) {
        const [addr, bits] = entry.split('/') as [string, string | undefined];
        const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
        if (bits === undefined) allow.addAddress(addr, type);
        else allow.addSubnet(addr, Number(bits), type);
      }
    }
    this.endpoint = new CoapEndpoint({
      host,
      port,
      maxPayloadBytes: cfg.max_payload_bytes,
      ...(allow ? { allow } : {}),
      handler: (req) => this.handle(req),
      count: (reason) => this.reject(reason),
    });
  }

  async start(): Promise<void> {
    let a: Awaited<ReturnType<CoapEndpoint['listen']>>;
    try {
      a = await this.endpoint.listen();
    } catch (err) {
      throw listenError(this.id, this.cfg.listen, err);
    }
    this.listening = true;
    this.bound = `coap://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}/${this.cfg.resource}`;
    this.ctx.log.info({ listen: this.bound, allow_from: this.cfg.allow_from }, 'CoAP server listening');
  }

  /** The bound address (port 0 in the config picks a free one). */
  get url(): string {
    return this.bound;
  }

  private reject(reason: string): void {
    this.stats.rejected++;
    this.pendingRejections.push(reason);
    if (this.pendingRejections.length >= 100) void this.flushRejections();
  }

  private flushRejections(): Promise<void> {
    const rejected = this.pendingRejections;
    this.pendingRejections = [];
    if (rejected.length === 0) return Promise.resolve();
    return this.ctx.sink.submit({ source: this.id, readings: [], rejected, commitWithinMs: TIMED_RESEND_COMMIT_WITHIN_MS }).then(
      () => undefined,
      (err: Error) => {
        this.lastError = `store: ${err.message}`;
      },
    );
  }

  private async handle(req: CoapRequest): Promise<CoapResponse> {
    this.lastMessageAt = Date.now();
    const [resource, sensorId, ...rest] = req.path;
    if (resource !== this.cfg.resource || rest.length > 0) {
      this.reject('unknown path');
      return { code: '4.04', payload: `post readings to /${this.cfg.resource} or /${this.cfg.resource}/<sensor-id>` };
    }
    if (req.method !== 'POST' && req.method !== 'PUT') {
      this.reject('method not allowed');
      return { code: '4.05', payload: 'use POST or PUT' };
    }
    if (sensorId !== undefined) {
      const bad = checkSensorId(sensorId);
      if (bad) {
        this.reject('bad sensor id in path');
        return { code: '4.00', payload: `sensor id in path: ${bad}` };
      }
    }
    const now = Date.now();
    const parsed = parseByContentFormat(req.contentFormat, req.payload, { defaultSensor: sensorId ?? '', nowMs: now, clockSynced: this.ctx.clock.isSynced(now) });
    if (!parsed) {
      this.reject('unsupported content format');
      return { code: '4.15', payload: `content format ${req.contentFormat} not accepted; use one of ${ACCEPTED_CONTENT_FORMATS.join(', ')}` };
    }
    const readings = parsed.readings.filter((r) => r.sensor !== '');
    const problems = parsed.rejections.map((r) => (r.record === undefined ? r.reason : `record ${r.record}: ${r.reason}`));
    if (readings.length < parsed.readings.length) problems.push('no sensor id: name it in SenML or post to /<resource>/<sensor-id>');
    this.stats.rejected += problems.length;
    // Endpoint refusals counted since the last commit ride along in this one.
    const rejected = [...this.pendingRejections, ...problems.map((p) => p.replace(/^record \d+: /, ''))];
    this.pendingRejections = [];
    let result;
    try {
      // A confirmable request is retransmitted after ACK_TIMEOUT (RFC 7252 §4.8): answer well before.
      result = await this.ctx.sink.submit({ source: this.id, readings, rejected, origin: req.remote.address, bytes: req.payload.length, commitWithinMs: TIMED_RESEND_COMMIT_WITHIN_MS });
    } catch (err) {
      this.lastError = `store: ${(err as Error).message}`;
      this.ctx.log.error({ err, remote: req.remote.address }, 'could not commit CoAP readings; answering 5.03');
      return { code: '5.03', payload: 'store unavailable, retry later', options: [{ name: 'Max-Age', value: Buffer.from([5]) }] };
    }
    this.stats.accepted += result.accepted;
    this.stats.duplicates += result.duplicates;
    if (readings.length === 0) {
      this.ctx.log.warn({ remote: req.remote.address, reasons: problems.slice(0, 5) }, 'rejected CoAP payload');
      return { code: '4.00', payload: (problems.join('; ') || 'no readings').slice(0, 512) };
    }
    return problems.length > 0 ? { code: '2.04', payload: `stored ${readings.length}; rejected: ${problems.join('; ')}`.slice(0, 512) } : { code: '2.04' };
  }

  async stop(): Promise<void> {
    await this.endpoint.close();
    await this.flushRejections();
    this.listening = false;
  }

  health(): SourceHealth {
    const h: SourceHealth = { type: 'coap-server', connected: this.listening, endpoint: this.bound || this.cfg.listen, ...this.stats };
    // What became of each datagram (request, duplicate, ping, malformed datagram...): shown by status and the status page.
    if (this.endpoint.outcomes.size > 0) h.counters = Object.fromEntries(this.endpoint.outcomes);
    if (this.lastMessageAt !== undefined) h.lastMessageAt = this.lastMessageAt;
    if (this.lastError !== undefined) h.lastError = this.lastError;
    return h;
  }
}

/**
 * A listen address the endpoint cannot bind is a configuration error (exit 2), not a source to
 * retry: the agent would run on without its CoAP input (issue 12).
 */
function listenError(id: string, listen: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const port = /:(\d+)$/.exec(listen)?.[1] ?? '?';
  const why =
    code === 'EADDRINUSE'
      ? `UDP port ${port} is already in use by another program (find it: ss -lunp | grep ':${port} '); stop it, or choose another port`
      : code === 'EADDRNOTAVAIL'
        ? 'that is not an address of this machine; name one of its addresses (ip -brief address)'
        : code === 'EACCES'
          ? `ports below 1024 need privileges; use a port above 1023 (5683 is CoAP's)`
          : errorMessage(err);
  return new AgentError('CONFIG_INVALID', `sources.${id}.listen ${listen}: cannot listen: ${why}`, { cause: err, exitCode: 2 });
}
