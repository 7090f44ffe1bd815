import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttSource } from '../../agent/sources/mqtt/mqtt-source.js';
import { mqttSourceSchema } from '../../agent/sources/mqtt/config.js';
import { readCounters } from '../../agent/store/reading-store.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher } from '../helpers/publisher.js';
import type { ReadingSink } from '../../agent/contracts/reading-sink.js';
import { countCommits, freshStore, sourceContext } from '../helpers/store.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

/** The MQTT source alone, on a new store, subscribed to sensors/# with its own client id (through `url` when given). */
function mqttSourceOnFreshStore(broker: Broker, name: string, opts: { url?: string; sink?: (writer: ReadingSink) => ReadingSink } = {}) {
  const { db, store, writer } = freshStore(name);
  const cfg = mqttSourceSchema.parse({ type: 'mqtt', url: opts.url ?? broker.url, topics: ['sensors/#'], client_id: `${name}-${process.pid}` });
  const ctx = { ...sourceContext('mqtt', writer), sink: opts.sink ? opts.sink(writer) : writer };
  return { db, store, writer, source: new MqttSource(cfg, ctx) };
}

/** Started and subscribed: the source says so once the broker granted the subscription. */
async function startAndSubscribe(source: MqttSource): Promise<void> {
  await source.start();
  await source.ready();
}

describe('MQTT source against a real broker', () => {
  let broker: Broker;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('a message committed whose PUBACK is lost is redelivered by the broker and not stored twice', async () => {
    // The "crash": right after the first commit, before the PUBACK can reach the broker, the
    // network link (a TCP relay in front of the broker) is cut.
    const proxy = await startTcpProxy(broker.port);
    let cut = false;
    const { db, source } = mqttSourceOnFreshStore(broker, 'redeliver', {
      url: `mqtt://127.0.0.1:${proxy.port}`,
      sink: (writer) => ({
        async submit(sub) {
          const result = await writer.submit(sub);
          if (!cut) {
            cut = true;
            proxy.cut();
          }
          return result;
        },
      }),
    });

    await startAndSubscribe(source);
    const pub = await connectPublisher(broker.url);
    await pub.publishAsync('sensors/boiler', '71.5', { qos: 1 }); // bare number: gateway time, no natural dedupe key
    await pub.publishAsync('sensors/boiler', '72', { qos: 1 });
    // The second message may also have been committed before the cut: then both are resent.
    await waitFor('both messages committed and the redelivery seen', () => source.health().accepted === 2 && source.health().duplicates >= 1, 15_000);
    // A fact instead of a pause: on the resumed session the broker resends what is unacknowledged
    // before anything new [MQTT-4.4.0-1], and commits are applied in order, so once a message
    // published now is committed, every redelivery has been counted.
    await pub.publishAsync('sensors/marker', '1', { qos: 1 });
    await waitFor('the marker committed', () => source.health().accepted === 3, 15_000);
    const resent = source.health().duplicates;
    await pub.endAsync();
    await source.stop();
    await proxy.close();
    expect(proxy.connections).toBeGreaterThanOrEqual(2); // the source reconnected after the cut

    expect(db.prepare('SELECT sensor, value FROM readings ORDER BY id').all()).toEqual([
      { sensor: 'boiler', value: 71.5 },
      { sensor: 'boiler', value: 72 },
      { sensor: 'marker', value: 1 },
    ]);
    expect(source.health().accepted).toBe(3);
    expect(readCounters(db)).toContainEqual({ name: 'duplicates', label: 'mqtt', value: resent });
    db.close();
  });

  it('commits a stream of QoS 1 messages in groups, many messages per transaction', async () => {
    const { db, store, source } = mqttSourceOnFreshStore(broker, 'group');
    const commits = countCommits(store);
    await startAndSubscribe(source);
    const pub = await connectPublisher(broker.url);
    // Every publishAsync resolves on the broker's PUBACK; the broker forwards each message to us.
    await Promise.all(Array.from({ length: 2000 }, (_, i) => pub.publishAsync(`sensors/g${i % 4}`, String(i), { qos: 1 })));
    await waitFor('2000 readings committed', () => source.health().accepted === 2000, 20_000);
    await pub.endAsync();
    await source.stop();
    expect(db.prepare('SELECT count(*) FROM readings').pluck().get()).toBe(2000);
    // One fsync per message would be 2000 commits; grouping makes it a small fraction.
    expect(commits.count).toBeLessThan(400);
    db.close();
  });
});
