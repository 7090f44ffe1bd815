import { Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { disableNagle } from '../../agent/util/mqtt-no-delay.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';

let broker: Broker | undefined;
let client: MqttClient | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await client?.endAsync(true).catch(() => undefined);
  await broker?.stop();
  client = broker = undefined;
});

/** Records which sockets were put in TCP_NODELAY mode (Node has no getter for it). */
function watchNoDelay(): Set<Socket> {
  const noDelay = new Set<Socket>();
  const original = Socket.prototype.setNoDelay;
  vi.spyOn(Socket.prototype, 'setNoDelay').mockImplementation(function (this: Socket, on?: boolean) {
    if (on !== false) noDelay.add(this);
    return original.call(this, on);
  });
  return noDelay;
}

const connected = (c: MqttClient) => new Promise<void>((resolve) => c.once('connect', () => resolve()));

describe('MQTT connections send small packets at once (no Nagle delay on PUBACKs)', () => {
  it('mqtt.js alone leaves Nagle on: the reason the agent turns it off itself', async () => {
    broker = await startMosquitto();
    const noDelay = watchNoDelay();
    client = mqtt.connect(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    await connected(client);
    expect(noDelay.has(client.stream as Socket)).toBe(false);
  });

  it('every connection, the first and each reconnect, has Nagle turned off', async () => {
    broker = await startMosquitto();
    const noDelay = watchNoDelay();
    client = mqtt.connect(broker.url, { protocolVersion: 5, reconnectPeriod: 50 });
    disableNagle(client);
    await connected(client);
    const first = client.stream as Socket;
    expect(noDelay.has(first)).toBe(true);

    const again = connected(client);
    first.destroy();
    await again;
    await waitFor('a new socket after the reconnect', () => client!.stream !== first, 5000);
    expect(noDelay.has(client.stream as Socket)).toBe(true);
  });
});
