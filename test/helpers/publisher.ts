import mqtt, { type MqttClient } from 'mqtt';

/** A sensor fleet stand-in: an mqtt.js client publishing with QoS 1 (resolves on the broker's PUBACK). */
export async function connectPublisher(url: string): Promise<MqttClient> {
  const client = mqtt.connect(url, { clientId: `test-pub-${process.pid}-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 200 });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

export async function publishAll(client: MqttClient, messages: { topic: string; payload: string }[], window = 200): Promise<void> {
  for (let i = 0; i < messages.length; i += window) {
    await Promise.all(messages.slice(i, i + window).map((m) => client.publishAsync(m.topic, m.payload, { qos: 1 })));
  }
}
