import type { MqttClient } from 'mqtt';

type SendPacket = (packet: { cmd: string; messageId?: number }, cb?: (err?: Error) => void, ...rest: unknown[]) => void;

/**
 * Lets the MQTT client read on while commits run, without acknowledging anything early.
 *
 * mqtt.js handles one incoming packet at a time and writes a QoS 1 PUBACK before it reads
 * the next, so acknowledging after the commit would cost one fsync per message (measured
 * here: 1,494/2,573/2,668 messages/s min/median/max). Instead, the PUBACK mqtt.js writes
 * for a tracked message is held back until that message's commit settles, and mqtt.js is
 * told at once that it was sent, so it reads the next packet and commits group up. The
 * PUBACK goes out only after the commit, and only on the connection that received the
 * message; if the commit fails, none is sent and the broker redelivers after a reconnect.
 *
 * This wraps mqtt.js's private `_sendPacket` (pinned by the lockfile; the redelivery and
 * delivery integration tests fail if an upgrade changes it). Without it, `supported` is false
 * and the source falls back to acknowledging one message at a time.
 */
export class DeferredPubacks {
  readonly supported: boolean;
  private readonly pending = new Map<number, Promise<unknown>>();
  private connection = 0;

  constructor(private readonly client: MqttClient) {
    const internal = client as unknown as { _sendPacket?: SendPacket };
    const original = internal._sendPacket;
    this.supported = typeof original === 'function';
    if (!original) return;
    const send = original.bind(client);
    internal._sendPacket = (packet, cb, ...rest) => {
      const commit = packet.cmd === 'puback' && packet.messageId !== undefined ? this.pending.get(packet.messageId) : undefined;
      if (!commit) return send(packet, cb, ...rest);
      this.pending.delete(packet.messageId!);
      const connection = this.connection;
      commit.then(
        () => {
          if (connection === this.connection && this.client.connected) send(packet);
        },
        () => undefined, // not committed: no PUBACK; the source drops the connection so the broker resends
      );
      cb?.();
    };
    client.on('close', () => {
      this.connection++;
      this.pending.clear();
    });
  }

  /** Holds back the PUBACK of `messageId` until `commit` resolves. */
  track(messageId: number, commit: Promise<unknown>): void {
    this.pending.set(messageId, commit);
  }
}
