/**
 * Liveness under a starved core (issue 20): the agent pinned to core 0 with `--burners` busy
 * loops on the same core, fed `--readings` readings over MQTT in packs of 50 (group commits of
 * thousands, batch cuts), while /healthz/live and /healthz are each fetched every 100 ms.
 * /healthz/live is answered by the endpoint's worker thread (agent/health/http-worker.ts), so it
 * does not queue behind the main thread's synchronous SQLite work; /healthz is answered by the
 * main thread and shows what a probe would have waited. Prints min/median/p99/max per path and a
 * JSON summary as the last line.
 *
 *   node dist/scripts/bench/liveness.js [--readings N] [--burners N]
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import mqtt from 'mqtt';
import { canPin, pinned, pinSelf } from './lib/cores.js';
import { intArg } from './lib/args.js';
import { freePort, initAgent, startAgent, startBroker } from './lib/processes.js';
import { percentile, sleep, spread } from './lib/stats.js';

const readings = intArg('readings', 200_000);
const burners = intArg('burners', 3);
const PER_MESSAGE = 50;
const log = (s: string) => process.stdout.write(`${s}\n`);

pinSelf(1);
const broker = await startBroker(1);
const httpPort = await freePort();
const dir = initAgent(broker.url, undefined, [
  [['http', 'listen'], `127.0.0.1:${httpPort}`],
  [['heartbeat', 'interval_s'], 0],
]);
const agent = await startAgent(0, dir);
const hogs = Array.from({ length: burners }, () => {
  const [c, a] = pinned(0, process.execPath, ['-e', 'for(;;){}']);
  return spawn(c, a, { stdio: 'ignore' });
});

const samples: Record<string, number[]> = { '/healthz/live': [], '/healthz': [] };
let polling = true;
async function poll(path: string): Promise<void> {
  while (polling) {
    const t0 = performance.now();
    try {
      await (await fetch(`http://127.0.0.1:${httpPort}${path}`, { signal: AbortSignal.timeout(60_000) })).arrayBuffer();
      samples[path]!.push(performance.now() - t0);
    } catch {
      samples[path]!.push(60_000);
    }
    await sleep(100);
  }
}
const pollers = Object.keys(samples).map((p) => poll(p));

const pub = await mqtt.connectAsync(broker.url, { clientId: `bench-live-${process.pid}` });
const t0 = performance.now();
for (let m = 0; m * PER_MESSAGE < readings; m += 200) {
  await Promise.all(
    Array.from({ length: 200 }, (_, k) => {
      const base = (m + k) * PER_MESSAGE;
      return pub.publishAsync('sensors/flood', JSON.stringify(Array.from({ length: PER_MESSAGE }, (_, i) => ({ n: `s${i % 10}`, t: 1_764_000_000 + base + i, v: i }))), { qos: 1 });
    }),
  );
}
await pub.endAsync();
// Until the agent has taken everything: its log has no counter, so give the queue time to drain.
await sleep(10_000);
polling = false;
await Promise.all(pollers);
const publishS = (performance.now() - t0) / 1000;
for (const h of hogs) h.kill('SIGKILL');
await agent.stop();
await broker.proc.stop();

const summary: Record<string, { n: number; min: number; median: number; p99: number; max: number }> = {};
for (const [path, ms] of Object.entries(samples)) {
  const s = spread(ms, 1);
  summary[path] = { n: ms.length, ...s, p99: +percentile(ms, 99).toFixed(1) };
  log(`GET ${path}: ${s.min}/${s.median}/${summary[path].p99}/${s.max} ms (min/median/p99/max of ${ms.length})`);
}
const load = loadavg().map((l) => +l.toFixed(1));
log(`agent on core 0 with ${burners} busy loops beside it${canPin ? '' : ' (NOT pinned: taskset or a second core missing)'}; ${readings} readings published in ${publishS.toFixed(1)} s; load average ${load.join(' ')}`);
log(JSON.stringify({ bench: 'liveness', readings, burners, pinned: canPin, load, requests: summary }));
