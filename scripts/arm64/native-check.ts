/**
 * Loads every native part of the agent the way the agent does and checks each one gives the
 * right answer; run under the target Node (linux/arm64 under qemu in scripts/arm64/smoke.sh).
 * usage: node native-check.js [--serial-echo PATH] MODEL.onnx [MODEL.onnx...]
 *   prints one JSON line; exit 1 on a failure. PATH is a tty that echoes what it gets
 *   (`socat pty,raw,echo=0,link=PATH exec:cat`): serialport writes and must read it back.
 * Each model must take `x` float32 [N, W, F] (agent/inference/README.md); W and F come from its metadata.
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** model checks: the first output's values, for comparing architectures */
  values?: number[];
}

async function checkSqlite(): Promise<Check> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (v REAL)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  db.transaction(() => [1.5, 2.5, 3].forEach((v) => insert.run(v)))();
  const row = db.prepare('SELECT sum(v) AS s, sqlite_version() AS version FROM t').get() as { s: number; version: string };
  db.close();
  return { name: 'better-sqlite3', ok: row.s === 7, detail: `SQLite ${row.version}, sum 7 = ${row.s}` };
}

async function checkSerialport(echoPath: string): Promise<Check> {
  const { SerialPort } = await import('serialport');
  const port = new SerialPort({ path: echoPath, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  const sent = Buffer.from('edge-agent serial round trip\n');
  const received = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`no echo from ${echoPath} within 10 s`)), 10_000);
    port.on('data', (d: Buffer) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.length >= sent.length) {
        clearTimeout(timer);
        resolve(all);
      }
    });
    port.write(sent);
  });
  await new Promise<void>((resolve) => port.close(() => resolve()));
  return { name: 'serialport', ok: received.equals(sent), detail: `${sent.length} bytes written to and read back from ${echoPath}` };
}

function checkSigning(): Check {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const message = Buffer.from('edge-agent arm64 check');
  const signature = sign(null, message, privateKey);
  const good = verify(null, message, publicKey, signature);
  const forged = verify(null, Buffer.from('edge-agent arm64 checK'), publicKey, signature);
  return { name: 'ed25519', ok: good && !forged, detail: `sign/verify ${good}, forged message rejected ${!forged}` };
}

async function checkModel(path: string): Promise<Check> {
  // onnxruntime without telemetry, as agent/inference/ort-privacy.ts does: inlined, because this file
  // is copied into the image alone (scripts/arm64/image.sh) and must import nothing of the project.
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  const input = session.inputNames[0] ?? 'x';
  const meta = session.inputMetadata.find((m) => m.name === input);
  const shape = meta && meta.isTensor ? meta.shape : [];
  const window = typeof shape[1] === 'number' ? shape[1] : 32;
  const features = typeof shape[2] === 'number' ? shape[2] : 1;
  // two rows: all 0.5, and a ramp; the mean-square test model's answers are known exactly
  const n = 2;
  const data = new Float32Array(n * window * features);
  for (let i = 0; i < window * features; i++) {
    data[i] = 0.5;
    data[window * features + i] = i / (window * features);
  }
  const out = await session.run({ [input]: new ort.Tensor('float32', data, [n, window, features]) });
  const names = Object.keys(out);
  const first = out[names[0]!]!;
  const values = Array.from(first.data as Float32Array);
  const finite = values.length >= n && values.every(Number.isFinite);
  let ok = finite;
  let detail = `${names.join(',')} = [${values.map((v) => v.toPrecision(6)).join(', ')}]`;
  if (path.endsWith('mean-square.onnx')) {
    const m = window * features;
    const rampMeanSquare = ((m - 1) * (2 * m - 1)) / (6 * m * m);
    ok = finite && Math.abs(values[0]! - 0.25) < 1e-6 && Math.abs(values[1]! - rampMeanSquare) < 1e-5;
    detail += ` (expected [0.25, ${rampMeanSquare.toPrecision(6)}])`;
  }
  await session.release();
  return { name: `onnxruntime ${path.split('/').pop()}`, ok, detail, values };
}

const checks: Check[] = [];
async function attempt(name: string, fn: () => Promise<Check> | Check): Promise<void> {
  try {
    checks.push(await fn());
  } catch (err) {
    checks.push({ name, ok: false, detail: err instanceof Error ? err.message : String(err) });
  }
}

await attempt('better-sqlite3', checkSqlite);
const args = process.argv.slice(2);
const echoAt = args.indexOf('--serial-echo');
const echoPath = echoAt >= 0 ? args.splice(echoAt, 2)[1] : undefined;
if (echoPath) await attempt('serialport', () => checkSerialport(echoPath));
await attempt('ed25519', checkSigning);
const models = args;
if (models.length === 0) checks.push({ name: 'onnxruntime', ok: false, detail: 'no model given' });
for (const model of models) await attempt(`onnxruntime ${model}`, () => checkModel(model));
process.stdout.write(`${JSON.stringify({ platform: `${process.platform}/${process.arch}`, node: process.version, checks })}\n`);
if (checks.some((c) => !c.ok)) process.exitCode = 1;
