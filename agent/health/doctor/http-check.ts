import { createServer } from 'node:net';
import { errorMessage } from '../../errors.js';
import { splitHttpListen, type HttpConfig } from '../config.js';
import { fail, pass, warn, type CheckResult } from '../../contracts/doctor-check.js';

const CHECK = 'http';

/**
 * The health endpoint's address: the running agent answers /healthz there (its readiness is
 * reported), or the port is free for it. Another program on the port is a failure: the agent
 * would run without its endpoint (it only logs that).
 */
export async function checkHttpEndpoint(http: HttpConfig, timeoutMs: number): Promise<CheckResult> {
  const { host, port } = splitHttpListen(http.listen);
  const shown = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const url = `http://${shown}/healthz`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch {
    return portFree(host, port, shown);
  }
  const body = (await res.json().catch(() => undefined)) as { live?: unknown; ready?: boolean; checks?: Record<string, { ok: boolean; reason: string }> } | undefined;
  if (!body || body.live !== true || typeof body.checks !== 'object') {
    return fail(CHECK, shown, `something else answers on ${shown} (HTTP ${res.status} to GET /healthz, not edge-agent's health report)`, `stop that program or choose another http.listen; the agent runs without its endpoint while the port is taken`);
  }
  const failing = Object.entries(body.checks ?? {})
    .filter(([, c]) => !c.ok)
    .map(([name, c]) => `${name}: ${c.reason}`);
  if (body.ready && failing.length === 0) return pass(CHECK, shown, `the running agent answers ${url}: ready`);
  if (body.ready) return warn(CHECK, shown, `the running agent answers ${url}: ready but degraded (${failing.join('; ')})`, 'see the degraded checks above and in the status page at the same address');
  return warn(CHECK, shown, `the running agent answers ${url}: NOT ready (${failing.join('; ')})`, 'see the failing checks above and in the status page at the same address');
}

function portFree(host: string, port: number, shown: string): Promise<CheckResult> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        resolve(fail(CHECK, shown, `${shown} is taken by another program that does not answer HTTP`, `find it (ss -ltnp | grep :${port}) and stop it, or choose another http.listen`));
      } else if (err.code === 'EADDRNOTAVAIL') {
        resolve(fail(CHECK, shown, `${host} is not an address of this machine`, 'set http.listen to an address of this machine (127.0.0.1 by default)'));
      } else {
        resolve(fail(CHECK, shown, `cannot listen on ${shown}: ${errorMessage(err)}`, 'choose another http.listen'));
      }
    });
    srv.listen(port, host, () => srv.close(() => resolve(pass(CHECK, shown, `${shown} is free for the health endpoint (the agent is not running)`))));
  });
}
