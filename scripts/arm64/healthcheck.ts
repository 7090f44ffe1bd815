/**
 * The HEALTHCHECK of Dockerfile.arm64: GET /healthz on the address in the agent's own config
 * (http.listen, default 127.0.0.1:9464) and exit 0 only on 200. Without an http section
 * (init --no-http) it falls back to what `edge-agent status` checks: the config and store load.
 * usage: node healthcheck.js [DATA_DIR]   (default $EDGE_AGENT_DATA_DIR, else /var/lib/edge-agent)
 * Prints one line: the failing checks with their reasons, which `docker inspect` shows.
 */
import { loadConfig } from '../../agent/config/load.js';
import { collectStatus } from '../../agent/cli/status.js';
import { splitHttpListen } from '../../agent/health/config.js';

const dataDir = process.argv[2] ?? process.env.EDGE_AGENT_DATA_DIR ?? '/var/lib/edge-agent';

async function check(): Promise<{ ok: boolean; line: string }> {
  const { config } = loadConfig(dataDir);
  if (!config.http) {
    const s = collectStatus(dataDir);
    return { ok: s.running, line: `no http endpoint configured; agent ${s.running ? 'running' : 'not running'}, ${s.batches.pending} batches pending` };
  }
  const { host, port } = splitHttpListen(config.http.listen);
  const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const url = `http://${target.includes(':') ? `[${target}]` : target}:${port}/healthz`;
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json().catch(() => ({}))) as { status?: string; checks?: Record<string, { ok: boolean; reason?: string }> };
  const failing = Object.entries(body.checks ?? {}).filter(([, c]) => !c.ok).map(([name, c]) => `${name}: ${c.reason ?? 'failed'}`);
  return { ok: res.status === 200, line: `${url} ${res.status} ${body.status ?? ''}${failing.length ? ` (${failing.join('; ')})` : ''}` };
}

try {
  const { ok, line } = await check();
  process.stdout.write(`${line}\n`);
  process.exitCode = ok ? 0 : 1;
} catch (err) {
  process.stdout.write(`unhealthy: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
