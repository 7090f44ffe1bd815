/**
 * The ceiling of the end-to-end benchmark: a bare mqtt.js QoS 1 subscriber that acknowledges
 * at once and stores nothing, run as its own process on the agent's core.
 *
 *   node dist/scripts/bench/bare-subscriber.js URL COUNT   (prints "ready", then "done" after COUNT messages)
 */
import mqtt from 'mqtt';

const [url, countText] = process.argv.slice(2);
const count = Number(countText);
if (!url || !Number.isInteger(count) || count < 1) {
  process.stderr.write('usage: bare-subscriber URL COUNT\n');
  process.exit(2);
}
let received = 0;
const client = mqtt.connect(url, { protocolVersion: 5, clientId: `bench-bare-${process.pid}`, properties: { receiveMaximum: 1000 } });
client.on('message', () => {
  if (++received === count) {
    process.stdout.write('done\n', () => process.exit(0));
  }
});
client.on('error', (err) => {
  process.stderr.write(`bare subscriber: ${err.message}\n`);
  process.exit(1);
});
client.once('connect', () => {
  client.subscribe('sensors/#', { qos: 1 }, (err) => {
    if (err) throw err;
    process.stdout.write('ready\n');
  });
});
