import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { AgentState } from './agent-state.js';
import { checkHealth, type HealthLimits } from './healthz.js';
import type { Metrics } from './metrics.js';
import { statusOverview } from './status-api.js';
import { BEAT_INTERVAL_MS, HTTP_WORKER_LIMITS, HTTP_WORKER_SOURCE, LIVE_STALL_MS, type HttpWorkerData } from './http-worker.js';

interface Asset {
  body: Buffer;
  type: string;
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

/** The page's files: next to this module in the source tree, or agent/health/static beside dist/ in the package. */
function staticDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [join(here, 'static'), join(here, '../../../agent/health/static')]) if (existsSync(join(dir, 'index.html'))) return dir;
  throw new Error(`status page files not found next to ${here} (expected agent/health/static in the package)`);
}

/** Read once at start: a fixed set of files, so no request path ever reaches the file system. */
function loadAssets(): Map<string, Asset> {
  const dir = staticDir();
  const require = createRequire(import.meta.url);
  const file = (path: string) => readFileSync(path);
  const type = (name: string) => TYPES[name.slice(name.lastIndexOf('.'))]!;
  const assets = new Map<string, Asset>();
  for (const name of ['index.html', 'app.js', 'style.css']) assets.set(name === 'index.html' ? '/' : `/static/${name}`, { body: file(join(dir, name)), type: type(name) });
  // uPlot (MIT, no dependencies) draws the charts; served from node_modules, no front-end build.
  assets.set('/vendor/uplot.js', { body: file(require.resolve('uplot/dist/uPlot.iife.min.js')), type: TYPES['.js']! });
  assets.set('/vendor/uplot.css', { body: file(require.resolve('uplot/dist/uPlot.min.css')), type: TYPES['.css']! });
  return assets;
}

/**
 * A DNS-rebinding guard: a web page on another site could point a name at 127.0.0.1 and read
 * this endpoint through the operator's browser; such requests carry that name as Host.
 */
function hostAllowed(host: string | undefined): boolean {
  if (!host) return true; // HTTP/1.0 clients (some probes) send none; browsers always do
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || isIP(name) !== 0;
}

/** Loopback is what rebinding attacks reach; on an address the operator chose, Prometheus may scrape by host name. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export interface HealthServerOptions {
  host: string;
  port: number;
  limits: HealthLimits;
}

interface Reply {
  status: number;
  headers: Record<string, string | number>;
  body: Buffer | string | null;
}

interface WorkerRequest {
  type: 'request';
  id: number;
  method: string;
  url: string;
  host: string | undefined;
}

/**
 * The local endpoint: /healthz, /healthz/live, /metrics, the status page at / and its JSON at
 * /api/status. The socket is served by a worker thread (health/http-worker.ts) that answers
 * /healthz/live itself; the rest is answered here, on the main thread, where the state is.
 */
export class HealthServer {
  private worker: Worker | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private readonly beat = new SharedArrayBuffer(8);
  private readonly assets = loadAssets();

  constructor(
    private readonly opts: HealthServerOptions,
    private readonly state: AgentState,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** Resolves with the bound address once listening. */
  listen(): Promise<{ host: string; port: number }> {
    const beat = new Float64Array(this.beat);
    beat[0] = performance.timeOrigin + performance.now();
    const data: HttpWorkerData = { host: this.opts.host, port: this.opts.port, beat: this.beat, checkHost: isLoopback(this.opts.host), stallMs: LIVE_STALL_MS };
    const worker = new Worker(HTTP_WORKER_SOURCE, { eval: true, workerData: data, resourceLimits: HTTP_WORKER_LIMITS });
    // The worker must never keep a stopping agent alive, nor its failure take the agent down.
    worker.unref();
    worker.on('error', (err) => this.log.error({ err }, 'health endpoint thread failed; /healthz is not served'));
    return new Promise((resolve, reject) => {
      const onMessage = (m: { type: string; host?: string; port?: number; message?: string; code?: string }) => {
        if (m.type === 'listening') {
          this.worker = worker;
          this.beatTimer = setInterval(() => (beat[0] = performance.timeOrigin + performance.now()), BEAT_INTERVAL_MS);
          this.beatTimer.unref();
          worker.on('message', (msg: WorkerRequest) => {
            if (msg.type === 'request') this.answer(msg);
          });
          resolve({ host: m.host!, port: m.port! });
        } else if (m.type === 'error') {
          void worker.terminate();
          reject(Object.assign(new Error(m.message), { code: m.code }));
        } else return;
        worker.off('message', onMessage);
      };
      worker.on('message', onMessage);
    });
  }

  close(): Promise<void> {
    if (this.beatTimer) clearInterval(this.beatTimer);
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => void worker.terminate().then(() => resolve());
      worker.on('message', (m: { type: string }) => m.type === 'closed' && done());
      worker.postMessage({ type: 'close' });
      setTimeout(done, 2000).unref();
    });
  }

  private answer(m: WorkerRequest): void {
    this.handle(m.method, m.url, m.host)
      .catch((err: unknown): Reply => {
        this.log.warn({ err, url: m.url }, 'health endpoint request failed');
        return reply(500, 'text/plain; charset=utf-8', `internal error: ${errorMessage(err)}\n`);
      })
      .then((r) => {
        const body = m.method === 'HEAD' ? null : r.body;
        this.worker?.postMessage({ type: 'response', id: m.id, status: r.status, headers: r.headers, body: body === null ? null : typeof body === 'string' ? Buffer.from(body) : body });
      });
  }

  private async handle(method: string, url: string, host: string | undefined): Promise<Reply> {
    if (isLoopback(this.opts.host) && !hostAllowed(host)) return reply(421, 'text/plain; charset=utf-8', 'unexpected Host header: use the address the endpoint listens on\n');
    if (method !== 'GET' && method !== 'HEAD') {
      const r = reply(405, 'text/plain; charset=utf-8', 'read-only endpoint: GET or HEAD\n');
      r.headers.Allow = 'GET, HEAD';
      return r;
    }
    const path = new URL(url, 'http://local').pathname;
    switch (path) {
      case '/healthz': {
        const report = checkHealth(this.state, this.opts.limits);
        return json(report.ready ? 200 : 503, report);
      }
      case '/healthz/live':
        // Answered by the worker thread; reached only when the Host check failed there.
        return json(200, { live: true, uptime_s: Math.round(process.uptime()) });
      case '/metrics':
        return reply(200, this.metrics.contentType, await this.metrics.render());
      case '/api/status':
        return json(200, statusOverview(this.state, this.opts.limits));
    }
    const asset = this.assets.get(path) ?? (path === '/index.html' ? this.assets.get('/') : undefined);
    if (!asset) return reply(404, 'text/plain; charset=utf-8', `not found: ${path} (try /, /healthz, /metrics)\n`);
    // Everything the page loads comes from here; no inline script, nothing from elsewhere.
    const r = reply(200, asset.type, asset.body);
    r.headers['Content-Security-Policy'] = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";
    return r;
  }
}

function json(status: number, body: unknown): Reply {
  return reply(status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`);
}

function reply(status: number, type: string, body: string | Buffer): Reply {
  return { status, headers: { 'Content-Type': type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(body) }, body };
}
