// A rogue MQTT client for the guard tests, in its own process so that its publishing loop does not
// share the test runner's event loop: floods QoS 1 messages on IDS never-seen sensor ids under
// one topic branch, as fast as this one process can, for SECONDS (or until TARGET_RATE is reached
// per second). Prints one JSON line on stdout at the end: what it sent and the rate it achieved.
// usage: node flood-publisher.mjs URL BRANCH IDS SECONDS [TARGET_RATE] [WINDOW]
import mqtt from 'mqtt';

const [url, branch, ids, seconds, targetRate = '20000', window = '2000'] = process.argv.slice(2);
const client = mqtt.connect(url, { clientId: `rogue-${process.pid}`, reconnectPeriod: 0 });
await new Promise((resolve, reject) => {
  client.once('connect', resolve);
  client.once('error', reject);
});
const nIds = Number(ids);
const rate = Number(targetRate);
const inflight = Number(window);
const startedAt = Date.now();
const endAt = startedAt + Number(seconds) * 1000;
let sent = 0;
let acked = 0;
let pending = 0;
await new Promise((resolve) => {
  const pump = () => {
    while (pending < inflight) {
      const now = Date.now();
      if (now >= endAt) {
        if (pending === 0) resolve();
        return;
      }
      // Never ahead of the target rate: a 20,000/s flood, not more.
      if (sent >= ((now - startedAt) / 1000) * rate) {
        setTimeout(pump, 1);
        return;
      }
      const i = sent++;
      pending++;
      client.publish(`${branch}/r${i % nIds}`, String(i), { qos: 1 }, () => {
        pending--;
        acked++;
        pump();
      });
    }
  };
  pump();
});
const ms = Date.now() - startedAt;
await client.endAsync();
process.stdout.write(`${JSON.stringify({ sent, acked, ms, rate: Math.round((acked / ms) * 1000), started_at: startedAt })}\n`);
