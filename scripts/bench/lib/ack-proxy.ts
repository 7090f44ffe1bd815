import mqttPacket from 'mqtt-packet';
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface AckEvents {
  /** The broker hands the agent a QoS 1 PUBLISH. */
  publish(messageId: number, payload: Buffer, at: number): void;
  /** The agent's PUBACK for it: sent only after the reading is committed. */
  puback(messageId: number, at: number): void;
}

/**
 * A TCP proxy between the agent and mosquitto that forwards bytes untouched and parses a copy
 * of both directions (MQTT 5), so the harness sees when the agent acknowledges each message.
 * A publisher's PUBACK comes from the broker and says nothing about the agent's commit.
 */
export class AckProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly brokerPort: number,
    private readonly events: AckEvents,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((agentSide) => this.pair(agentSide));
    await new Promise<void>((res) => this.server!.listen(0, '127.0.0.1', () => res()));
    this.port = (this.server.address() as { port: number }).port;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  private pair(agentSide: Socket): void {
    const brokerSide = connect(this.brokerPort, '127.0.0.1');
    agentSide.setNoDelay(true);
    brokerSide.setNoDelay(true);
    this.sockets.add(agentSide).add(brokerSide);
    const fromBroker = mqttPacket.parser({ protocolVersion: 5 });
    const fromAgent = mqttPacket.parser({ protocolVersion: 5 });
    fromBroker.on('packet', (p) => {
      if (p.cmd === 'publish' && p.qos > 0 && p.messageId !== undefined) this.events.publish(p.messageId, p.payload as Buffer, performance.now());
    });
    fromAgent.on('packet', (p) => {
      if (p.cmd === 'puback' && p.messageId !== undefined) this.events.puback(p.messageId, performance.now());
    });
    const noop = () => undefined;
    fromBroker.on('error', noop);
    fromAgent.on('error', noop);
    agentSide.on('data', (d) => {
      brokerSide.write(d);
      fromAgent.parse(d);
    });
    brokerSide.on('data', (d) => {
      agentSide.write(d);
      fromBroker.parse(d);
    });
    const close = () => {
      agentSide.destroy();
      brokerSide.destroy();
      this.sockets.delete(agentSide);
      this.sockets.delete(brokerSide);
    };
    agentSide.on('close', close).on('error', close);
    brokerSide.on('close', close).on('error', close);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
  }
}
