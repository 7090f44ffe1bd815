import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { AgentState } from './agent-state.js';
import { checkHealth, type HealthLimits } from './healthz.js';
import type { Metrics } from './metrics.js';
import { statusOverview } from './status-api.js';

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

/** The local endpoint: /healthz, /healthz/live, /metrics, the status page at / and its JSON at /api/status. */
export class HealthServer {
  private readonly server: Server;
  private readonly assets = loadAssets();

  constructor(
    private readonly opts: HealthServerOptions,
    private readonly state: AgentState,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.warn({ err, url: req.url }, 'health endpoint request failed');
        if (!res.headersSent) this.send(res, 500, 'text/plain; charset=utf-8', `internal error: ${errorMessage(err)}\n`);
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 5000;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 10_000;
  }

  /** Resolves with the bound address once listening. */
  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        const a = this.server.address() as { address: string; port: number };
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (isLoopback(this.opts.host) && !hostAllowed(req.headers.host)) return this.send(res, 421, 'text/plain; charset=utf-8', 'unexpected Host header: use the address the endpoint listens on\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return this.send(res, 405, 'text/plain; charset=utf-8', 'read-only endpoint: GET or HEAD\n');
    }
    const path = new URL(req.url ?? '/', 'http://local').pathname;
    switch (path) {
      case '/healthz': {
        const report = checkHealth(this.state, this.opts.limits);
        return this.json(res, report.ready ? 200 : 503, report);
      }
      case '/healthz/live':
        return this.json(res, 200, { live: true, uptime_s: Math.round(process.uptime()) });
      case '/metrics':
        return this.send(res, 200, this.metrics.contentType, await this.metrics.render());
      case '/api/status':
        return this.json(res, 200, statusOverview(this.state, this.opts.limits));
    }
    const asset = this.assets.get(path) ?? (path === '/index.html' ? this.assets.get('/') : undefined);
    if (!asset) return this.send(res, 404, 'text/plain; charset=utf-8', `not found: ${path} (try /, /healthz, /metrics)\n`);
    // Everything the page loads comes from here; no inline script, nothing from elsewhere.
    res.setHeader('Content-Security-Policy', "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    return this.send(res, 200, asset.type, asset.body);
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    this.send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`);
  }

  private send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
    res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(body) });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }
}
