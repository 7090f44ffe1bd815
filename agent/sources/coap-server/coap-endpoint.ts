import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { BlockList, isIPv6 } from 'node:net';
import { generate, parse, type ParsedPacket } from 'coap-packet';

// A CoAP (RFC 7252) server endpoint for sensors that POST/PUT readings: message
// de-duplication, Block1 uploads (RFC 7959) and piggybacked responses sent only after the
// handler has finished (the store commit). Built on coap-packet, the codec node-coap uses,
// because node-coap's server keys Block1 uploads by token (libcoap changes the token per
// block, which RFC 7959 §2.5 allows: 3 kB from coap-client failed with "5.00 Byte offset not
// the next in line") and answers undecodable datagrams with 5.00 to the wrong address.

export interface CoapRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string[];
  contentFormat: number | undefined;
  payload: Buffer;
  remote: RemoteInfo;
}

export interface CoapResponse {
  code: string;
  payload?: string;
  /** Extra options, e.g. Max-Age on 5.03. */
  options?: { name: string; value: Buffer }[];
}

export type CoapHandler = (req: CoapRequest) => Promise<CoapResponse>;

export interface CoapEndpointOptions {
  host: string;
  port: number;
  maxPayloadBytes: number;
  /** When set, only these source addresses/subnets are served; others get 4.03. */
  allow?: BlockList;
  handler: CoapHandler;
  /** Counts what the endpoint refuses before a request reaches the handler. */
  count: (reason: string) => void;
}

const EXCHANGE_LIFETIME_MS = 247_000; // RFC 7252 §4.8.2
const MAX_REMEMBERED = 10_000;
const MAX_TRANSFERS = 64;
const METHODS = { '0.01': 'GET', '0.02': 'POST', '0.03': 'PUT', '0.04': 'DELETE' } as const;
// coap-packet names registered options (CoAP Option Numbers registry); others arrive as their number.
const OPTION_NUMBERS: Record<string, number> = {
  'If-Match': 1, 'Uri-Host': 3, ETag: 4, 'If-None-Match': 5, Observe: 6, 'Uri-Port': 7, 'Location-Path': 8, OSCORE: 9,
  'Uri-Path': 11, 'Content-Format': 12, 'Max-Age': 14, 'Uri-Query': 15, 'Hop-Limit': 16, Accept: 17, 'Q-Block1': 19,
  'Location-Query': 20, Block2: 23, Block1: 27, Size2: 28, 'Q-Block2': 31, 'Proxy-Uri': 35, 'Proxy-Scheme': 39, Size1: 60,
  'No-Response': 258, 'OCF-Accept-Content-Format-Version': 2049, 'OCF-Content-Format-Version': 2053,
};
// Options this endpoint understands; any other critical (odd-numbered) option gets 4.02 (RFC 7252 §5.4.1, §5.4.6).
const UNDERSTOOD = new Set([3, 7, 11, 12, 15, 17, 23, 27, 60, 6]);

function isUnknownCritical(name: string): boolean {
  const n = OPTION_NUMBERS[name] ?? Number(name);
  return Number.isInteger(n) && n % 2 === 1 && !UNDERSTOOD.has(n);
}

function uint(value: Buffer): number {
  let n = 0;
  for (const b of value) n = n * 256 + b;
  return n;
}

function uintBuffer(n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from(bytes);
}

interface Transfer {
  chunks: Buffer[];
  size: number;
  nextNum: number;
  blockSize: number;
  expires: number;
}

export class CoapEndpoint {
  private socket: Socket | undefined;
  /** (endpoint, MID) → the response sent, or null while the request is being handled (RFC 7252 §4.5). */
  private readonly seen = new Map<string, { response: Buffer | null; expires: number }>();
  private readonly transfers = new Map<string, Transfer>();
  /** What became of every datagram: 'request', 'duplicate', 'ping' or the reason it was refused. */
  readonly outcomes = new Map<string, number>();

  constructor(private readonly opts: CoapEndpointOptions) {}

  private tally(outcome: string): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
  }

  /** A refusal: tallied here and counted by the source (persisted with the next commit). */
  private refuse(reason: string): void {
    this.tally(reason);
    this.opts.count(reason);
  }

  async listen(): Promise<{ host: string; port: number }> {
    const socket = createSocket({ type: isIPv6(this.opts.host) ? 'udp6' : 'udp4' });
    this.socket = socket;
    socket.on('message', (msg, remote) => this.onDatagram(msg, remote));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.opts.port, this.opts.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', () => this.refuse('socket error'));
    const a = socket.address();
    return { host: a.address, port: a.port };
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()));
  }

  private send(buf: Buffer, remote: RemoteInfo): void {
    this.socket?.send(buf, remote.port, remote.address);
  }

  private onDatagram(msg: Buffer, remote: RemoteInfo): void {
    let packet: ParsedPacket;
    try {
      packet = parse(msg);
    } catch {
      this.refuse('malformed datagram');
      // RFC 7252 §4.2: a Confirmable message we cannot process is rejected with a Reset.
      if (msg.length >= 4 && msg[0]! >> 6 === 1 && ((msg[0]! >> 4) & 3) === 0) {
        this.send(generate({ messageId: msg.readUInt16BE(2), reset: true, code: '0.00' }), remote);
      }
      return;
    }
    // We send no Confirmable messages, so an ACK or RST here answers nothing of ours.
    if (packet.ack || packet.reset) return this.refuse('unexpected ACK or RST');
    if (packet.code === '0.00') {
      this.tally('ping');
      // An empty Confirmable message is a CoAP ping (RFC 7252 §4.3): answer with Reset.
      if (packet.confirmable) this.send(generate({ messageId: packet.messageId, reset: true, code: '0.00' }), remote);
      return;
    }
    const method = METHODS[packet.code as keyof typeof METHODS];
    if (!method) {
      this.refuse('not a request');
      return;
    }
    this.expire();
    const key = `${remote.address}|${remote.port}|${packet.messageId}`;
    const seen = this.seen.get(key);
    if (seen) {
      this.tally('duplicate');
      // A retransmission (RFC 7252 §4.5): replay the response, or stay silent while it is being made.
      if (seen.response) this.send(seen.response, remote);
      return;
    }
    if (this.seen.size >= MAX_REMEMBERED) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(key, { response: null, expires: Date.now() + EXCHANGE_LIFETIME_MS });
    this.tally('request');
    this.handle(packet, method, remote).then(
      (res) => this.respond(packet, remote, key, res),
      (err: Error) => this.respond(packet, remote, key, { code: '5.00', payload: `internal error: ${err.message}` }),
    );
  }

  private respond(req: ParsedPacket, remote: RemoteInfo, key: string, res: CoapResponse): void {
    const options = [...(res.options ?? [])];
    const buf = generate({
      messageId: req.confirmable ? req.messageId : Math.floor(Math.random() * 65536),
      token: req.token,
      code: res.code,
      ack: req.confirmable,
      confirmable: false,
      options,
      payload: res.payload === undefined ? Buffer.alloc(0) : Buffer.from(res.payload, 'utf8'),
    });
    const entry = this.seen.get(key);
    if (entry) entry.response = buf;
    this.send(buf, remote);
  }

  private async handle(packet: ParsedPacket, method: CoapRequest['method'], remote: RemoteInfo): Promise<CoapResponse> {
    if (this.opts.allow && !this.opts.allow.check(remote.address, remote.family === 'IPv6' ? 'ipv6' : 'ipv4')) {
      this.refuse('source address not allowed');
      return { code: '4.03', payload: `source ${remote.address} is not in allow_from` };
    }
    const path: string[] = [];
    let contentFormat: number | undefined;
    let block1: Buffer | undefined;
    let size1: number | undefined;
    for (const o of packet.options) {
      const name = String(o.name);
      if (name === 'Uri-Path') path.push(o.value.toString('utf8'));
      else if (name === 'Content-Format') contentFormat = uint(o.value);
      else if (name === 'Block1') block1 = o.value;
      else if (name === 'Size1') size1 = uint(o.value);
      else if (name === 'Proxy-Uri' || name === 'Proxy-Scheme') {
        this.refuse('proxy request');
        return { code: '5.05', payload: 'this endpoint is not a proxy' };
      } else if (isUnknownCritical(name)) {
        this.refuse('unknown critical option');
        const number = OPTION_NUMBERS[name] ?? Number(name);
        return { code: '4.02', payload: `critical option ${number}${String(number) === name ? '' : ` (${name})`} is not supported` };
      }
    }
    const tooLarge = (): CoapResponse => {
      this.refuse('payload too large');
      return { code: '4.13', payload: `payload larger than ${this.opts.maxPayloadBytes} bytes`, options: [{ name: 'Size1', value: uintBuffer(this.opts.maxPayloadBytes) }] };
    };
    if (size1 !== undefined && size1 > this.opts.maxPayloadBytes) return tooLarge();
    let payload = packet.payload;
    if (block1) {
      const assembled = this.block1(`${remote.address}|${remote.port}|${path.join('/')}`, block1, payload, tooLarge);
      if ('code' in assembled) return assembled;
      payload = assembled.payload;
    } else if (payload.length > this.opts.maxPayloadBytes) return tooLarge();
    const res = await this.opts.handler({ method, path, contentFormat, payload, remote });
    // RFC 7959 §2.3: the response to the last block carries its Block1 option.
    if (block1) res.options = [...(res.options ?? []), { name: 'Block1', value: block1 }];
    return res;
  }

  /** RFC 7959 §2.5: blocks are matched by endpoint and URI (not token), and must arrive in order. */
  private block1(key: string, option: Buffer, data: Buffer, tooLarge: () => CoapResponse): { payload: Buffer } | CoapResponse {
    const v = uint(option);
    const num = v >> 4;
    const more = (v & 0x08) !== 0;
    const szx = v & 0x07;
    if (szx === 7) {
      this.refuse('malformed block option');
      return { code: '4.00', payload: 'Block1 SZX 7 is reserved' };
    }
    const blockSize = 1 << (szx + 4);
    if (more && data.length !== blockSize) {
      this.refuse('malformed block option');
      return { code: '4.00', payload: `a non-final block must carry ${blockSize} bytes` };
    }
    let t = this.transfers.get(key);
    if (num === 0) {
      if (!t && this.transfers.size >= MAX_TRANSFERS) {
        this.refuse('too many block transfers');
        return { code: '5.03', payload: 'too many block-wise uploads in progress', options: [{ name: 'Max-Age', value: uintBuffer(5) }] };
      }
      t = { chunks: [], size: 0, nextNum: 0, blockSize, expires: 0 };
      this.transfers.set(key, t);
    }
    if (!t || num !== t.nextNum) {
      this.refuse('block out of order');
      this.transfers.delete(key);
      return { code: '4.08', payload: `expected block ${t?.nextNum ?? 0}, got ${num}` };
    }
    t.size += data.length;
    if (t.size > this.opts.maxPayloadBytes) {
      this.transfers.delete(key);
      return tooLarge();
    }
    t.chunks.push(data);
    t.nextNum = num + 1;
    t.expires = Date.now() + EXCHANGE_LIFETIME_MS;
    if (more) return { code: '2.31', options: [{ name: 'Block1', value: option }] };
    this.transfers.delete(key);
    return { payload: Buffer.concat(t.chunks) };
  }

  private expire(): void {
    const now = Date.now();
    for (const [k, v] of this.seen) {
      if (v.expires > now) break; // insertion order is expiry order
      if (v.response) this.seen.delete(k);
    }
    for (const [k, t] of this.transfers) if (t.expires < now && t.expires !== 0) this.transfers.delete(k);
  }
}
