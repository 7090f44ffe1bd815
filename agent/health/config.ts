import { z } from 'zod';

const WILDCARDS = new Set(['0.0.0.0', '::']);

/** The local health, metrics and status page endpoint (`http:` in edge-agent.yaml). */
export const httpSchema = z
  .strictObject({
    /** HOST:PORT. Loopback by default: the page and metrics show sensor data and need no login. Port 0: any free port, reported in the log and on `run --ready-fd`. */
    listen: z
      .string()
      .regex(/^(\[[0-9a-fA-F:.]+\]|[0-9.]+|localhost):\d{1,5}$/, 'must be HOST:PORT: IPv4:PORT, [IPv6]:PORT or localhost:PORT (e.g. 127.0.0.1:9464)')
      .default('127.0.0.1:9464'),
    /** Listening on every interface (0.0.0.0 / ::) must be asked for by name. */
    bind_all_interfaces: z.boolean().default(false),
    /** /healthz fails when the oldest undelivered batch is older than this: a stalled uplink never looks healthy. */
    max_pending_batch_age_s: z.number().int().min(1).default(600),
    /** Distinct sensor ids given their own metric label; readings of later sensors are counted under sensor="_other". */
    max_sensor_labels: z.number().int().min(1).max(10_000).default(500),
  })
  .superRefine((cfg, ctx) => {
    // The pattern above has already named a listen value without HOST:PORT.
    if (!/:\d+$/.test(cfg.listen)) return;
    const { host, port } = splitHttpListen(cfg.listen);
    if (WILDCARDS.has(host) && !cfg.bind_all_interfaces) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message: `${host} listens on every interface and the endpoint has no authentication; name one address, or set bind_all_interfaces: true (and firewall the port)`,
      });
    }
    if (port > 65535) ctx.addIssue({ code: 'custom', path: ['listen'], message: `port ${port} is out of range 0..65535` });
  });

export type HttpConfig = z.infer<typeof httpSchema>;

export function splitHttpListen(listen: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(listen);
  if (!m) throw new Error(`not HOST:PORT: ${listen}`);
  return { host: m[1]!, port: Number(m[2]) };
}
