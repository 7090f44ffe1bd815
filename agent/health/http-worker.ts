/**
 * The health endpoint's socket lives on a worker thread, so `/healthz/live` is answered there,
 * with no I/O and without queueing behind the main thread's work (a group commit, a batch cut,
 * a model pass: synchronous SQLite and ONNX calls of up to seconds on a starved core). Every
 * other path is handed to the main thread as a message and answered from there.
 *
 * The main thread writes its clock into `beat` every 500 ms; liveness fails (503) only when
 * it has not done so for LIVE_STALL_MS: stuck, not merely slow.
 */
export const LIVE_STALL_MS = 120_000;
export const BEAT_INTERVAL_MS = 500;

/**
 * The thread's V8 heap: it parses small requests and passes bodies of at most a few hundred KB (the
 * status page's files, /metrics) between the socket and the main thread, ~5 MB live. Without limits
 * V8 sizes its heap like the main thread's; with these it keeps ~2 MiB less (the thread costs ~12 MiB of RSS in all: an agent without `http` idles at 123 MiB against 135)
 * (docs/performance.md, "Heap sized for a gateway"). Running out ends only this thread, logged.
 */
export const HTTP_WORKER_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 24 } as const;

export interface HttpWorkerData {
  host: string;
  port: number;
  /** SharedArrayBuffer of one Float64: the main thread's last beat, epoch ms (performance.timeOrigin + now()). */
  beat: SharedArrayBuffer;
  /** Apply the DNS-rebinding Host check (loopback listeners). */
  checkHost: boolean;
  stallMs: number;
}

/** Worker source (CommonJS, run with `eval`): no file to find next to the compiled module. */
export const HTTP_WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { isIP } = require('node:net');
const beat = new Float64Array(workerData.beat);
const now = () => performance.timeOrigin + performance.now();
const startedAt = now();
function hostAllowed(host) {
  if (!host) return true;
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || isIP(name) !== 0;
}
const waiting = new Map();
let seq = 0;
const server = http.createServer((req, res) => {
  const url = req.url || '/';
  const path = url.split('?')[0];
  const liveness = path === '/healthz/live' && (req.method === 'GET' || req.method === 'HEAD') && (!workerData.checkHost || hostAllowed(req.headers.host));
  if (liveness) {
    const lag = Math.max(0, now() - beat[0]);
    const live = lag < workerData.stallMs;
    const body = JSON.stringify({ live, uptime_s: Math.round((now() - startedAt) / 1000), main_loop_lag_ms: Math.round(lag) }) + '\n';
    res.writeHead(live ? 200 : 503, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  const id = ++seq;
  waiting.set(id, res);
  res.on('close', () => waiting.delete(id));
  parentPort.postMessage({ type: 'request', id, method: req.method, url, host: req.headers.host });
});
server.keepAliveTimeout = 5000;
server.headersTimeout = 10000;
server.requestTimeout = 10000;
parentPort.on('message', (m) => {
  if (m.type === 'response') {
    const res = waiting.get(m.id);
    if (!res) return;
    waiting.delete(m.id);
    res.writeHead(m.status, m.headers);
    res.end(m.body === null ? undefined : Buffer.from(m.body));
  } else if (m.type === 'close') {
    server.close(() => parentPort.postMessage({ type: 'closed' }));
    server.closeAllConnections();
  }
});
server.once('error', (err) => parentPort.postMessage({ type: 'error', message: err.message, code: err.code }));
server.listen(workerData.port, workerData.host, () => {
  const a = server.address();
  parentPort.postMessage({ type: 'listening', host: a.address, port: a.port });
});
`;
