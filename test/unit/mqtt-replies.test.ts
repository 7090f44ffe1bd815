import { describe, expect, it } from 'vitest';
import { buildBatch, hex, ZERO_HASH } from '../../agent/identity/batch-format.js';
import { Identity } from '../../agent/identity/keys.js';
import { signReceipt } from '../../agent/identity/receipt.js';
import { ReplyBook, verifyReply } from '../../agent/uplink/mqtt/replies.js';

const device = Identity.generate();
const receiver = Identity.generate();
const signed = buildBatch(device, { seq: 4, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: 1 }, [
  { id: 1, sensor: 'a', ts: 1, timeSource: 'sensor', value: 1, source: 'mqtt', boot: 1 },
]);
const batch = { seq: 4, hash: signed.hash, device: device.publicKey, envelope: signed.envelope };
const receipt = (by: Identity, seq = 4) => Buffer.from(signReceipt(by, { dev: device.publicKey, seq, hash: signed.hash, at: 9 })).toString('base64');
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('MQTT uplink answers on the reply topic', () => {
  it('is delivered only with a receipt signed by the configured receiver for this very batch', () => {
    const ok = { status: 'accepted' as const, seq: 4, hash: hex(signed.hash), receipt: receipt(receiver) };
    expect(verifyReply(ok, batch, receiver.publicKey)).toMatchObject({ kind: 'delivered', receipt: { receiverKey: receiver.publicKey } });
    expect(verifyReply({ ...ok, status: 'duplicate' }, batch, receiver.publicKey)).toMatchObject({ kind: 'delivered' });
    expect(verifyReply({ ...ok, receipt: receipt(Identity.generate()) }, batch, receiver.publicKey)).toMatchObject({ kind: 'retry', error: expect.stringMatching(/another receiver key/) });
    expect(verifyReply({ ...ok, hash: '00'.repeat(32) }, batch, receiver.publicKey)).toMatchObject({ kind: 'retry', error: expect.stringMatching(/not this batch's/) });
    expect(verifyReply({ ...ok, receipt: receipt(receiver, 5) }, batch, receiver.publicKey)).toMatchObject({ kind: 'retry', error: expect.stringMatching(/another batch/) });
  });

  it("takes a refusal of this batch's hash as final", () => {
    const refusal = { status: 'rejected' as const, seq: 4, hash: hex(signed.hash), reason: 'chain-broken', detail: 'prev does not link' };
    expect(verifyReply(refusal, batch, receiver.publicKey)).toEqual({ kind: 'rejected', error: 'receiver refused batch 4 (chain-broken): prev does not link' });
    expect(verifyReply({ ...refusal, hash: 'ab'.repeat(32) }, batch, receiver.publicKey)).toMatchObject({ kind: 'retry' });
  });

  it('files answers by seq, hands one to a waiting attempt, and says why a message is not an answer', async () => {
    const book = new ReplyBook();
    expect(book.add(Buffer.from('nope'))).toBe('not JSON');
    expect(book.add(json({ status: 'accepted', seq: 4 }))).toMatch(/not a batch reply/);
    // Before anyone waits (the answer can beat the PUBACK)...
    expect(book.add(json({ status: 'accepted', seq: 4, hash: 'h', receipt: 'r' }))).toBeUndefined();
    expect(await book.wait(4, new AbortController().signal)).toMatchObject({ seq: 4 });
    expect(book.take(4)).toBeUndefined();
    // ...and after.
    const waiting = book.wait(5, new AbortController().signal);
    book.add(json({ status: 'rejected', seq: 5, hash: 'h', reason: 'seq-conflict' }));
    expect(await waiting).toMatchObject({ seq: 5, status: 'rejected' });
    // A wait that times out gives undefined and leaves nothing behind.
    expect(await book.wait(6, AbortSignal.timeout(20))).toBeUndefined();
  });
});
