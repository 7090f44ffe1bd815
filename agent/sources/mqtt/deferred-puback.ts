import { createRequire } from 'node:module';
import type { MqttClient } from 'mqtt';

/**
 * The one file that touches mqtt.js internals. Everything it relies on is checked at startup
 * (`checkPubackHook`), pinned exactly in package.json, and exercised against a scripted broker in
 * test/unit/mqtt-puback-hook.test.ts: an upgrade that moves the hook point makes the source fall
 * back to one PUBACK per commit (slower, still durable) with a warning, never acknowledge early.
 */

/** The mqtt.js release whose `_sendPacket` this adapter was written and tested against (package.json pins it exactly). */
export const PINNED_MQTT_VERSION = '5.16.0';

type SendPacket = (packet: { cmd: string; messageId?: number }, cb?: (err?: Error) => void, ...rest: unknown[]) => void;

export type HookCheck = { ok: true } | { ok: false; reason: string };

function installedMqttVersion(): string | undefined {
  try {
    return (createRequire(import.meta.url)('mqtt/package.json') as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * The startup self-check: the installed mqtt.js is the pinned release and the client has the hook
 * point (`_sendPacket(packet, cb, ...)`), so holding back PUBACKs is safe.
 */
export function checkPubackHook(client: MqttClient, version = installedMqttVersion()): HookCheck {
  if (version !== PINNED_MQTT_VERSION) {
    return { ok: false, reason: `mqtt.js ${version ?? '(version unknown)'} installed, the PUBACK hook is tested with ${PINNED_MQTT_VERSION} only` };
  }
  const send = (client as unknown as { _sendPacket?: unknown })._sendPacket;
  if (typeof send !== 'function') return { ok: false, reason: 'mqtt.js client has no _sendPacket' };
  if (send.length < 2) return { ok: false, reason: `mqtt.js _sendPacket takes ${send.length} arguments, expected (packet, cb, ...)` };
  return { ok: true };
}

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
 */
export class DeferredPubacks {
  /** Whether PUBACKs are deferred; when false the source acknowledges one message per commit. */
  readonly supported: boolean;
  /** Why the hook is not used, for the startup warning. */
  readonly reason: string | undefined;
  private readonly pending = new Map<number, Promise<unknown>>();
  private connection = 0;

  constructor(
    private readonly client: MqttClient,
    check: HookCheck = checkPubackHook(client),
  ) {
    this.supported = check.ok;
    this.reason = check.ok ? undefined : check.reason;
    if (!check.ok) return;
    const internal = client as unknown as { _sendPacket: SendPacket };
    const send = internal._sendPacket.bind(client);
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

  /** Counts connections closed: a message received under one value came on a connection that is gone once it changed. */
  get epoch(): number {
    return this.connection;
  }

  /** Holds back the PUBACK of `messageId` until `commit` resolves. */
  track(messageId: number, commit: Promise<unknown>): void {
    this.pending.set(messageId, commit);
  }

  /**
   * Drops the connection without a DISCONNECT, so the broker keeps the session and redelivers
   * every unacknowledged message after mqtt.js reconnects (MQTT 5 §4.4: resend on reconnect).
   */
  dropConnection(): void {
    this.client.stream?.destroy();
  }
}
