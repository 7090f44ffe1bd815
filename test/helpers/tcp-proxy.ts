import { createServer, connect, type Socket } from 'node:net';

export interface TcpProxy {
  /** The proxy's own port, bound with port 0: the kernel picks it at bind time. */
  port: number;
  /** Connections accepted so far (a reconnect is a new one). */
  readonly connections: number;
  /** Drops every open connection at once, both sides: bytes still on their way are lost, as in a network cut. */
  cut(): void;
  close(): Promise<void>;
}

/** Sees the bytes of each relayed connection: `up` from the client, `down` from the peer. */
export type Tap = (connection: number, direction: 'up' | 'down', chunk: Buffer) => void;

/**
 * A loopback TCP relay in front of a real peer (a broker, a receiver), so a test can cut the
 * link, or read what a client sends on the wire, without touching the client's internals.
 */
export async function startTcpProxy(targetPort: number, opts: { targetHost?: string; tap?: Tap } = {}): Promise<TcpProxy> {
  const targetHost = opts.targetHost ?? '127.0.0.1';
  const open = new Set<Socket>();
  let connections = 0;
  const server = createServer((client) => {
    const id = ++connections;
    const upstream = connect(targetPort, targetHost);
    if (opts.tap) {
      const tap = opts.tap;
      client.on('data', (d: Buffer) => tap(id, 'up', d));
      upstream.on('data', (d: Buffer) => tap(id, 'down', d));
    }
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get connections() {
      return connections;
    },
    cut() {
      for (const s of open) s.destroy();
      open.clear();
    },
    close() {
      this.cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
