// A rogue MQTT flood for the guard tests, in its own process so that its pacing does not share the
// test runner's event loop. One mqtt.js publisher tops out at 12-16k QoS 1 messages/s on a 2-core
// machine, so the flood is PUBLISHERS mosquitto_pub processes (C, `-l`: one QoS 1 message per stdin
// line, up to 1000 in flight), client ids `rogue-flood-N`, all under one topic branch, each fed
// SenML lines naming one of IDS never-seen sensor ids, paced to TARGET_RATE in total for SECONDS.
// usage: node flood-publisher.mjs URL BRANCH IDS SECONDS [TARGET_RATE] [PUBLISHERS]
//
// The offered rate is measured twice and both are printed (one JSON line on stdout at the end):
// - acked: what the publishers got PUBACKs for (mosquitto_pub -l exits once its last message is
//   acknowledged), over the time from the first line written to the last publisher's exit;
// - broker: the broker's own $SYS/broker/publish/messages/received counter (the broker needs
//   `sys_interval 1`): how many it took while the flood ran and its best one-second rate; it
//   counts every PUBLISH the broker took, the good sensors' too.
import { spawn } from 'node:child_process';
import mqtt from 'mqtt';

const [url, branch, ids, seconds, targetRate = '20000', publishers = '4'] = process.argv.slice(2);
const { hostname, port } = new URL(url);
const nIds = Number(ids);
const rate = Number(targetRate);
const nPub = Number(publishers);
const total = Math.round(rate * Number(seconds));

// The broker's received counter, sampled as the broker publishes it (every sys_interval).
const samples = [];
const sys = mqtt.connect(url, { clientId: `flood-meter-${process.pid}`, reconnectPeriod: 0 });
await new Promise((resolve, reject) => {
  sys.once('connect', resolve);
  sys.once('error', reject);
});
sys.on('message', (_topic, payload) => samples.push({ at: Date.now(), n: Number(payload.toString()) }));
await sys.subscribeAsync('$SYS/broker/publish/messages/received');
/** Waits for the broker's $SYS samples to satisfy `ready`, with a deadline (the broker publishes one each sys_interval). */
async function untilSamples(what, ready, deadlineMs = 30_000) {
  const until = Date.now() + deadlineMs;
  while (!ready()) {
    if (Date.now() > until) throw new Error(`flood publisher: no broker $SYS sample ${what} within ${deadlineMs} ms (is sys_interval 1 set?)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
// One sample before the flood, so the first second of it has a base.
await untilSamples('before the flood', () => samples.length > 0);

const line = (i) => `[{"n":"flood/r${i % nIds}","v":${i}}]\n`;
const children = Array.from({ length: nPub }, (_, k) => {
  const child = spawn('mosquitto_pub', ['-h', hostname, '-p', port, '-i', `rogue-flood-${k}`, '-t', `${branch}/burst`, '-q', '1', '-M', '1000', '-l'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err = (err + d.toString()).slice(-2000)));
  const exited = new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(Date.now()) : reject(new Error(`mosquitto_pub ${k} exited ${code}: ${err}`)))));
  return { child, exited };
});

const startedAt = Date.now();
let written = 0;
// Paced in 10 ms steps: never ahead of the target rate; a publisher that cannot keep up backs its pipe up and the measured rate says so.
await new Promise((resolve) => {
  const step = () => {
    const due = Math.min(total, Math.floor(((Date.now() - startedAt) / 1000) * rate));
    const chunks = Array.from({ length: nPub }, () => []);
    for (; written < due; written++) chunks[written % nPub].push(line(written));
    chunks.forEach((c, k) => c.length > 0 && children[k].child.stdin.write(c.join('')));
    if (written >= total) return resolve();
    setTimeout(step, 10);
  };
  step();
});
for (const c of children) c.child.stdin.end();
const ends = await Promise.all(children.map((c) => c.exited));
const ms = Math.max(...ends) - startedAt;
// One more broker sample after the last acknowledgement, so the counter covers the whole flood.
// Mosquitto publishes a $SYS counter only when it changed since its last tick, and the flood may be
// counted in full before the publishers exit: so the meter publishes one message of its own (outside
// the branch the agent reads) to move the counter. The broker queues its samples and this PUBACK in
// order on the meter's connection, so a sample arriving after the PUBACK was taken after the flood's
// last PUBACK, and it counts this one message, which is taken off below.
await sys.publishAsync(`flood-meter/${process.pid}/done`, '1', { qos: 1 });
const have = samples.length;
await untilSamples('after the last acknowledgement', () => samples.length > have);
await sys.endAsync();
const METER_PUBLISHES = 1;

let best = 0;
const during = samples.filter((s) => s.at >= startedAt);
const base = [...samples].reverse().find((s) => s.at < startedAt);
// Over windows of at least one second, each ending at a sample: samples arrive with jitter, and two
// that arrive close together would otherwise make a burst out of one second's count.
for (let i = 1; i < samples.length; i++) {
  const b = samples[i];
  const a = samples.slice(0, i).reverse().find((s) => b.at - s.at >= 1000);
  if (a && b.at > startedAt) best = Math.max(best, ((b.n - a.n) / (b.at - a.at)) * 1000);
}
const last = during[during.length - 1];
const brokerReceived = base && last ? last.n - base.n - METER_PUBLISHES : 0;
process.stdout.write(
  `${JSON.stringify({ sent: written, acked: written, ms, rate: Math.round((written / ms) * 1000), publishers: nPub, broker_best_1s: Math.round(best), broker_received: brokerReceived, started_at: startedAt })}\n`,
);
