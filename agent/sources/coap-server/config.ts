import { isIP } from 'node:net';
import { z } from 'zod';
import { portInRange } from '../../util/port-range.js';

const WILDCARDS = new Set(['0.0.0.0', '::']);

export const coapServerSourceSchema = z
  .strictObject({
    type: z.literal('coap-server'),
    /** HOST:PORT; an address of this machine. Loopback unless set: CoAP without DTLS authenticates nobody. */
    listen: z
      .string()
      .regex(/^(\[[0-9a-fA-F:.]+\]|[0-9.]+):\d{1,5}$/, 'must be IPv4:PORT or [IPv6]:PORT (an address, not a name)')
      .default('127.0.0.1:5683'),
    /** First Uri-Path segment readings are posted to: /readings and /readings/<sensor-id>. */
    resource: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).default('readings'),
    /** Source addresses or CIDR subnets allowed to post; empty = any that can reach the socket. */
    allow_from: z.array(z.string().min(1)).default([]),
    /** Listening on every interface (0.0.0.0 / ::) must be asked for by name. */
    bind_all_interfaces: z.boolean().default(false),
    max_payload_bytes: z.number().int().min(64).max(1024 * 1024).default(16 * 1024),
  })
  .superRefine((cfg, ctx) => {
    const port = Number(/:(\d+)$/.exec(cfg.listen)?.[1] ?? '0');
    // Port 0 asks the system for a free one (tests, ad-hoc runs).
    if (/:\d+$/.test(cfg.listen) && port !== 0 && !portInRange(port)) ctx.addIssue({ code: 'custom', path: ['listen'], message: `port ${port} is out of range 1..65535` });
    const host = cfg.listen.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    if (WILDCARDS.has(host) && !cfg.bind_all_interfaces) {
      ctx.addIssue({ code: 'custom', path: ['listen'], message: `${host} listens on every interface; name one address, or set bind_all_interfaces: true (and allow_from)` });
    }
    cfg.allow_from.forEach((entry, i) => {
      const [addr, bits] = entry.split('/');
      const family = isIP(addr ?? '');
      const maxBits = family === 6 ? 128 : 32;
      if (family === 0 || (bits !== undefined && !(Number.isInteger(Number(bits)) && Number(bits) >= 0 && Number(bits) <= maxBits))) {
        ctx.addIssue({ code: 'custom', path: ['allow_from', i], message: `"${entry}" is not an IP address or CIDR subnet` });
      }
    });
  });

export type CoapServerSourceConfig = z.infer<typeof coapServerSourceSchema>;

export function splitListen(listen: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(listen)!;
  return { host: m[1]!, port: Number(m[2]) };
}
