/**
 * Cold start alone (the `cold_start_ms` of `npm run bench` without the rest): the agent is stopped,
 * one QoS 1 reading is queued for its persistent session, the agent is started; the time is from
 * spawn to its first PUBACK as an MQTT-parsing proxy sees it (sent after the commit). Also the
 * agent's CPU time at that PUBACK, which load on a shared machine moves far less than wall time.
 *
 *   node dist/scripts/bench/cold-start.js [--starts N] [--no-inference] [--compare [--against FILE]] [--cpu-prof DIR]
 *
 * --compare alternates the bundle (what users run) with tsc's unbundled output, start by start,
 * so both see the same load; --against FILE puts another CLI in the place of the unbundled one (a
 * variant of the bundle built with node scripts/build-bundle.mjs --outdir DIR). --cpu-prof DIR starts each agent with node's --cpu-prof, the profiles
 * written to DIR when it stops (where the start-up goes: scripts/bench/profile.ts reads them too).
 */
import { uptime, loadavg } from 'node:os';
import { resolve } from 'node:path';
import mqtt from 'mqtt';
import { AckProxy } from './lib/ack-proxy.js';
import { intArg } from './lib/args.js';
import { benchModel } from './lib/bench-model.js';
import { cpuMs } from './lib/procfs.js';
import { CLI, UNBUNDLED_CLI, initAgent, startAgent, startAgentProc, startBroker, until, type Proc } from './lib/processes.js';
import { fmt, sleep, spread } from './lib/stats.js';

const AGENT_CORE = 0;
const PEER_CORE = 1;
const starts = intArg('starts', 7);
const compare = process.argv.includes('--compare');
const inference = !process.argv.includes('--no-inference');
const profDir = process.argv.includes('--cpu-prof') ? process.argv[process.argv.indexOf('--cpu-prof') + 1] : undefined;
if (profDir === undefined && process.argv.includes('--cpu-prof')) throw new Error('--cpu-prof needs a directory');
const nodeArgs = profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '200'] : [];
const against = process.argv.includes('--against') ? process.argv[process.argv.indexOf('--against') + 1] : undefined;
if (process.argv.includes('--against') && (against === undefined || !compare)) throw new Error('--against needs a file, and --compare');
const clis: Record<string, string> = compare ? { bundle: CLI, [against ? resolve(against) : 'unbundled']: against ? resolve(against) : UNBUNDLED_CLI } : { bundle: CLI };

const model = benchModel();
const edits: [string[], unknown][] = [
  [['batch', 'max_readings'], 1000],
  [['batch', 'max_age_ms'], 100],
];
if (inference) {
  edits.push([['inference', 'models_dir'], model.modelsDir], [['inference', 'bindings', 'bench', 'model'], model.id], [['inference', 'bindings', 'bench', 'sensors'], ['#']]);
}

const broker = await startBroker(PEER_CORE);
let firstPuback: { at: number; cpu: number | undefined } | undefined;
let agent: Proc | undefined;
const proxy = new AckProxy(broker.port, {
  publish() {},
  puback(_id, at) {
    firstPuback ??= { at, cpu: agent ? cpuMs(agent.pid) : undefined };
  },
});
await proxy.start();
const pub = mqtt.connect(broker.url, { protocolVersion: 4, clientId: `bench-cold-${process.pid}` });
await new Promise<void>((res) => pub.once('connect', () => res()));
let v = 0;
const wall: Record<string, number[]> = {};
const cpu: Record<string, number[]> = {};
const load0 = loadavg();
try {
  // No uplink: cold start is MQTT in, commit, PUBACK; batches stay in the store.
  const dir = initAgent(proxy.url, undefined, edits);
  agent = await startAgent(AGENT_CORE, dir); // creates the store and the broker session
  for (let i = 0; i < starts; i++) {
    for (const [name, cli] of Object.entries(clis)) {
      await agent?.stop();
      agent = undefined;
      firstPuback = undefined;
      pub.publish('sensors/cold', `{"v":${v},"t":${1_763_000_000_000 + v++}}`, { qos: 1 });
      await sleep(200);
      const t0 = performance.now();
      agent = startAgentProc(AGENT_CORE, dir, {}, nodeArgs, cli);
      await until(`the first PUBACK after a cold start (agent log: ${agent.output().slice(-1500)})`, () => firstPuback !== undefined, 30_000);
      (wall[name] ??= []).push(firstPuback!.at - t0);
      if (firstPuback!.cpu !== undefined) (cpu[name] ??= []).push(firstPuback!.cpu);
      await agent.waitFor(/connected to broker/);
    }
  }
} finally {
  await agent?.stop();
  await pub.endAsync();
  await proxy.stop();
  await broker.proc.stop();
}
const load1 = loadavg();
const out = (s: string) => process.stdout.write(`${s}\n`);
out(`cold start, ${starts} starts${compare ? ' each, interleaved' : ''}, inference ${inference ? `on (${model.id})` : 'off'}; load ${load0.map((l) => l.toFixed(2)).join(' ')} -> ${load1.map((l) => l.toFixed(2)).join(' ')} (up ${Math.round(uptime() / 60)} min)`);
for (const name of Object.keys(clis)) {
  out(`  ${name}: to first PUBACK ${fmt(spread(wall[name]!), ' ms')}, agent CPU ${cpu[name] ? fmt(spread(cpu[name]), ' ms') : '?'} (min/median/max)`);
}
out(JSON.stringify({ starts, inference, load: [load0, load1], wall, cpu }));
