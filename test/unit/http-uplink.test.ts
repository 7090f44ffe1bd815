import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { buildBatch, ZERO_HASH } from '../../agent/identity/batch-format.js';
import { Identity } from '../../agent/identity/keys.js';
import { signReceipt } from '../../agent/identity/receipt.js';
import { HttpUplink } from '../../agent/uplink/http/http-uplink.js';

const device = Identity.generate();
const receiverId = Identity.generate();
const signed = buildBatch(device, { seq: 1, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: 1 }, [
  { id: 1, sensor: 'a', ts: 1, timeSource: 'sensor', value: 1, source: 'mqtt', boot: 1 },
]);
const batch = { seq: 1, hash: signed.hash, device: device.publicKey, envelope: signed.envelope };
const hashHex = Buffer.from(signed.hash).toString('hex');

let server: Server | undefined;
afterEach(() => server?.close());

/** A server that answers every POST with the given status and body. */
async function replying(status: number, body: string, headers: Record<string, string> = {}): Promise<string> {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server!.address() as { port: number }).port}/v1/batches`;
}

const deliver = (url: string, receiverKey?: Uint8Array) =>
  new HttpUplink({ url, timeoutMs: 2000, ...(receiverKey ? { receiverKey } : {}) }).deliver(batch, new AbortController().signal);

describe('HTTP uplink outcome of one attempt', () => {
  it('is delivered on an acknowledgement of this very batch, with a receipt verified when a key is configured', async () => {
    const receipt = Buffer.from(signReceipt(receiverId, { dev: device.publicKey, seq: 1, hash: signed.hash, at: 5 })).toString('base64');
    const url = await replying(200, JSON.stringify({ status: 'accepted', seq: 1, hash: hashHex, receipt }));
    expect(await deliver(url)).toEqual({ kind: 'delivered' });
    expect(await deliver(url, receiverId.publicKey)).toMatchObject({ kind: 'delivered', receipt: { receiverKey: receiverId.publicKey } });
    expect(await deliver(url, Identity.generate().publicKey)).toMatchObject({ kind: 'retry', error: expect.stringMatching(/another receiver key/) });
  });

  it('retries when the acknowledgement is for another batch or is not the expected JSON', async () => {
    expect(await deliver(await replying(200, JSON.stringify({ status: 'accepted', seq: 2, hash: hashHex })))).toMatchObject({ kind: 'retry' });
    server?.close();
    expect(await deliver(await replying(200, '<html>ok</html>'))).toMatchObject({ kind: 'retry' });
  });

  it("treats only the receiver's own verdict as final, and retries 5xx, 429 and a 404 from a wrong path", async () => {
    const verdict = JSON.stringify({ status: 'rejected', reason: 'chain-broken', detail: 'prev does not link' });
    expect(await deliver(await replying(409, verdict))).toMatchObject({ kind: 'rejected', error: expect.stringMatching(/409 chain-broken/) });
    for (const [status, body] of [[503, 'busy'], [429, 'slow down'], [404, 'Not Found'], [401, '{"error":"auth"}']] as const) {
      server?.close();
      expect(await deliver(await replying(status, body))).toMatchObject({ kind: 'retry' });
    }
  });

  it("passes a 429's Retry-After on to the forwarder, as a retry (never a refusal)", async () => {
    const limited = JSON.stringify({ status: 'error', reason: 'rate-limited' });
    expect(await deliver(await replying(429, limited, { 'retry-after': '7' }))).toMatchObject({ kind: 'retry', retryAfterMs: 7000, error: expect.stringMatching(/429 \(Retry-After 7 s\)/) });
    server?.close();
    expect(await deliver(await replying(503, 'busy', { 'retry-after': '2' }))).toMatchObject({ kind: 'retry', retryAfterMs: 2000 });
    server?.close();
    const noHeader = await deliver(await replying(429, limited));
    expect(noHeader).toMatchObject({ kind: 'retry' });
    expect(noHeader).not.toHaveProperty('retryAfterMs');
  });

  it('resends at once, on a new connection, when a kept-alive connection is closed as it is reused', async () => {
    const seen = new Set<unknown>();
    let requests = 0;
    server = createServer((req, res) => {
      requests++;
      const reused = seen.has(req.socket);
      seen.add(req.socket);
      // What a server's keep-alive timeout firing just as the client reuses the socket looks like.
      if (reused) return req.socket.destroy();
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'accepted', seq: 1, hash: hashHex })));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const uplink = new HttpUplink({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/batches`, timeoutMs: 2000 });
    expect(await uplink.deliver(batch, new AbortController().signal)).toEqual({ kind: 'delivered' });
    expect(await uplink.deliver(batch, new AbortController().signal)).toEqual({ kind: 'delivered' });
    expect(requests).toBe(3); // first, the reset one, its resend on a fresh connection
    await uplink.close();
  });

  it('retries when nothing listens', async () => {
    const url = await replying(200, '');
    server!.close();
    server = undefined;
    expect(await deliver(url)).toMatchObject({ kind: 'retry', error: expect.stringMatching(/ECONNREFUSED/) });
  });
});
