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

/** A loopback TCP relay in front of a real peer (a broker, a receiver), so a test can cut the link without touching the client's internals. */
export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let connections = 0;
  const server = createServer((client) => {
    connections++;
    const upstream = connect(targetPort, targetHost);
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
