/**
 * The arm64 smoke test, driven from the host: every edge-agent command below runs as linux/arm64
 * (the arm64 Node under qemu user-mode emulation, with the arm64 build of every native module),
 * typed as an operator would. The sensors (the g++-built firmware simulator over a socat pty)
 * and the checks run natively on the host. Started by scripts/arm64/smoke.sh, which sets:
 *   ARM64_NODE_CMD  JSON array: the command that runs the arm64 node (qemu-aarch64-static ... node)
 *   ARM64_APP       the project staged for arm64 (package.json, dist/, node_modules/)
 *   ARM64_RUN_DIR   an empty directory for this run's data dirs and ptys
 * It ends with "arm64: N passed, M failed" and exits 1 if any check failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { writeMeanSquareModel } from './tiny-model.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run scripts/arm64/smoke.sh)`);
  return v;
};
const NODE_CMD = JSON.parse(env('ARM64_NODE_CMD')) as string[];
const APP = env('ARM64_APP');
const RUN = env('ARM64_RUN_DIR');
const CLI = join(APP, 'dist/agent/cli/main.js');
const SERIAL_READINGS = 200;

const started = Date.now();
const results: { name: string; ok: boolean }[] = [];
const say = (s: string) => process.stdout.write(`[arm64 smoke ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${s}\n`);
function check(name: string, ok: boolean, detail: string): void {
  results.push({ name, ok });
  say(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
}

interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}
function start(cmd: string, args: string[]): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(signal ? -1 : code)));
  return { child, output: () => out, exited };
}
const arm64 = (args: string[]) => start(NODE_CMD[0]!, [...NODE_CMD.slice(1), ...args]);
const agentCli = (args: string[]) => arm64([CLI, ...args]);

async function finish(p: Proc, what: string, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
  const code = await Promise.race([p.exited, timedOut]);
  clearTimeout(timer);
  if (code === 'timeout') {
    p.child.kill('SIGKILL');
    throw new Error(`${what}: no exit within ${timeoutMs / 1000} s\n${p.output().slice(-2000)}`);
  }
  return { code, out: p.output() };
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

async function stop(p: Proc, what: string): Promise<number | null> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  return (await finish(p, what, 30_000)).code;
}

const background: Proc[] = [];
async function main(): Promise<void> {
  // 1. the node that runs everything below
  const probe = await finish(arm64(['-p', 'process.platform + "/" + process.arch + " " + process.version']), 'arm64 node', 60_000);
  check('arm64 node', probe.code === 0 && probe.out.startsWith('linux/arm64'), probe.out.trim());

  // 2. native modules: SQLite, serial round trip, ed25519, ONNX model(s)
  const models = [join(RUN, 'mean-square.onnx')];
  writeMeanSquareModel(models[0]!, 32, 1);
  // the shipped models, from the package as installed
  const manifestPath = join(APP, 'models/manifest.json');
  if (existsSync(manifestPath)) {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { models?: { file?: string }[] };
    for (const m of manifest.models ?? []) if (m.file) models.push(join(APP, 'models', m.file));
  }
  const echoPath = join(RUN, 'echo-tty');
  const echo = start('socat', [`pty,raw,echo=0,link=${echoPath}`, 'exec:cat']);
  background.push(echo);
  await waitFor('socat echo pty', 10_000, () => (existsSync(echoPath) ? true : undefined));
  const native = await finish(arm64([join(APP, 'dist/scripts/arm64/native-check.js'), '--serial-echo', echoPath, ...models]), 'native check', 180_000);
  await stop(echo, 'socat echo');
  let nativeReport: { checks?: { name: string; ok: boolean; detail: string; values?: number[] }[] } = {};
  try {
    nativeReport = JSON.parse(native.out.trim().split('\n').pop() ?? '{}');
  } catch {
    check('native modules', false, `unreadable output (exit ${native.code}): ${native.out.slice(-1500)}`);
  }
  for (const c of nativeReport.checks ?? []) check(c.name, c.ok, c.detail);
  // the same models on the host's x64 onnxruntime: arm64 must give the same answers
  const hostRun = await finish(start(process.execPath, [join(ROOT, 'dist/scripts/arm64/native-check.js'), ...models]), 'native check (host)', 120_000);
  const hostChecks = new Map((JSON.parse(hostRun.out.trim().split('\n').pop() ?? '{}') as typeof nativeReport).checks?.map((c) => [c.name, c]) ?? []);
  for (const c of (nativeReport.checks ?? []).filter((x) => x.values)) {
    const host = hostChecks.get(c.name)?.values ?? [];
    const worst = Math.max(...c.values!.map((v, i) => Math.abs(v - (host[i] ?? NaN)) / Math.max(1, Math.abs(host[i] ?? 0))));
    check(`${c.name} arm64 = x64`, host.length === c.values!.length && worst <= 1e-4, `largest relative difference ${worst.toExponential(1)} over ${host.length} outputs`);
  }
  if (native.code !== 0 && !(nativeReport.checks ?? []).some((c) => !c.ok)) check('native check exit', false, `exit ${native.code}: ${native.out.slice(-1500)}`);

  // 3. the reference receiver, as the network would run it
  const port = await freePort();
  const receiver = agentCli(['receive', '--listen', `127.0.0.1:${port}`, '--data-dir', join(RUN, 'receiver'), '--log-level', 'warn']);
  background.push(receiver);
  const receiverKey = await waitFor('the receiver to listen', 120_000, () => {
    if (receiver.child.exitCode !== null) throw new Error(`receiver exited: ${receiver.output()}`);
    return /public key (did:key:\S+)/.exec(receiver.output())?.[1];
  });
  say(`receiver on 127.0.0.1:${port}, key ${receiverKey}`);
  const stats = async () => (await (await fetch(`http://127.0.0.1:${port}/v1/stats`)).json()) as { readings: number; batches: number; rejected: number; gaps: number };

  // 4. a gateway with a serial sensor board (firmware-bridge frames over a pty) and simulated sensors
  const ptys = start('socat', [`pty,raw,echo=0,link=${join(RUN, 'board')}`, `pty,raw,echo=0,link=${join(RUN, 'gateway-tty')}`]);
  background.push(ptys);
  await waitFor('socat ptys', 10_000, () => (existsSync(join(RUN, 'board')) && existsSync(join(RUN, 'gateway-tty')) ? true : undefined));
  const agentDir = join(RUN, 'agent');
  const init = await finish(
    agentCli(['init', '--data-dir', agentDir, '--uplink-url', `http://127.0.0.1:${port}/v1/batches`, '--receiver-key', receiverKey,
      '--serial-path', join(RUN, 'gateway-tty'), '--simulator', '2', '--json']),
    'init', 120_000,
  );
  const deviceId = init.code === 0 ? (JSON.parse(init.out) as { device_id: string }).device_id : '';
  check('edge-agent init', init.code === 0 && deviceId.startsWith('did:key:z6Mk'), init.code === 0 ? `device ${deviceId}` : init.out);

  // 5. run it; the board sends SERIAL_READINGS readings and exits 0 only once all are acknowledged,
  //    which the agent does only after committing them to SQLite
  const run = agentCli(['run', '--data-dir', agentDir, '--log-level', 'warn']);
  background.push(run);
  const board = start(join(ROOT, 'firmware-bridge/build/simulator'),
    ['--path', join(RUN, 'board'), '--sensors', '2', '--rate', '50', '--count', String(SERIAL_READINGS), '--linger-ms', '60000']);
  background.push(board);
  const boardEnd = await finish(board, 'firmware simulator', 240_000);
  check('serial board acknowledged', boardEnd.code === 0, `${SERIAL_READINGS} readings over the pty, simulator exit ${boardEnd.code}: ${boardEnd.out.trim().split('\n').pop() ?? ''}`);
  // let at least one more batch (max_age 5 s) reach the receiver, then stop as systemd would
  await waitFor('a delivered batch with the serial readings', 60_000, async () => ((await stats()).readings >= SERIAL_READINGS ? true : undefined));
  const runCode = await stop(run, 'edge-agent run');
  check('edge-agent run stops cleanly on SIGTERM', runCode === 0, `exit ${runCode}${runCode === 0 ? '' : `\n${run.output().slice(-2000)}`}`);

  // 6. what an operator checks afterwards
  const status = await finish(agentCli(['status', '--data-dir', agentDir, '--json']), 'status', 120_000);
  const st = status.code === 0 ? (JSON.parse(status.out) as { readings: { total: number }; batches: { pending: number; delivered: number; receipts: number }; sources: Record<string, unknown> }) : undefined;
  check('edge-agent status', !!st && st.readings.total >= SERIAL_READINGS && st.batches.pending === 0 && st.batches.receipts === st.batches.delivered,
    st ? `${st.readings.total} readings, ${st.batches.delivered} batches delivered with ${st.batches.receipts} receipts, ${st.batches.pending} pending` : status.out);
  const verify = await finish(agentCli(['verify', '--data-dir', agentDir, '--receiver-key', receiverKey, '--json']), 'verify', 120_000);
  const vr = verify.code === 0 ? (JSON.parse(verify.out) as { valid: boolean; batches: number; receiptsVerified: number }) : undefined;
  check('edge-agent verify --data-dir', !!vr && vr.valid && vr.batches > 0 && vr.receiptsVerified === vr.batches,
    vr ? `chain valid, ${vr.batches} batches, ${vr.receiptsVerified} signed receipts verified` : `exit ${verify.code}: ${verify.out}`);
  // the store the arm64 agent wrote, read by the host's SQLite: each serial reading exactly once
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(agentDir, 'edge-agent.db'), { readonly: true, fileMustExist: true });
  const serial = db.prepare("SELECT count(*) AS n, count(DISTINCT sensor || '/' || seq) AS distinct_n FROM readings WHERE source = 'serial'").get() as { n: number; distinct_n: number };
  db.close();
  check('serial readings stored exactly once', serial.n === SERIAL_READINGS && serial.distinct_n === SERIAL_READINGS,
    `${serial.n} stored (${serial.distinct_n} distinct sensor/seq) of ${SERIAL_READINGS} sent, despite the board's resends`);
  const final = await stats();
  await stop(receiver, 'receiver');
  check('receiver got every reading once', !!st && final.readings === st.readings.total && final.rejected === 0 && final.gaps === 0,
    `receiver ${final.readings} readings in ${final.batches} batches, ${final.rejected} rejected, ${final.gaps} gaps`);

  // 7. the shipped models as the package installs them, and the demo: live inference on arm64
  const modelsVerify = await finish(agentCli(['models', 'verify', '--json']), 'models verify', 120_000);
  check('edge-agent models verify', modelsVerify.code === 0, modelsVerify.code === 0 ? `${(JSON.parse(modelsVerify.out) as unknown[]).length} shipped model(s) match the manifest` : modelsVerify.out.slice(-1500));
  const demo = await finish(agentCli(['demo', '--seconds', '20', '--data-dir', join(RUN, 'demo')]), 'demo', 240_000);
  const verdicts = Number(/readings and (\d+) verdicts/.exec(demo.out)?.[1] ?? 0);
  const alertLines = demo.out.split('\n').filter((l) => l.startsWith('alert'));
  check('edge-agent demo (stream-ad model live)', demo.code === 0 && / 0 problems/.test(demo.out) && verdicts > 0,
    `exit ${demo.code}, ${verdicts} verdicts verified at the receiver, ${alertLines.length} alert(s)${alertLines[0] ? `: ${alertLines[0].replace(/\s+/g, ' ')}` : ''}${demo.code === 0 ? '' : `\n${demo.out.slice(-1500)}`}`);
}

try {
  await main();
} catch (err) {
  check('smoke run', false, err instanceof Error ? err.message : String(err));
} finally {
  for (const p of background) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
}
const failed = results.filter((r) => !r.ok).length;
say(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.stdout.write(`arm64: ${results.length - failed} passed, ${failed} failed\n`);
process.exitCode = failed > 0 ? 1 : 0;
