import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalEncode } from '../../agent/identity/canonical.js';
import { Identity } from '../../agent/identity/keys.js';
import { signUploadRequest, verifyUploadRequest, UPLOAD_REQUEST_FORMAT } from '../../agent/identity/upload-request.js';

const receiver = Identity.generate();
const device = Identity.generate();
const fields = { dev: device.publicKey, id: 'r-1', s: ['pump1/vib'], from: 1000, to: 2000, by: 'ticket-1', at: 3000 };

describe('upload requests (docs/wire-format.md §12.15)', () => {
  it('verify under the receiver key for the device they name', () => {
    expect(verifyUploadRequest(signUploadRequest(receiver, fields), receiver.publicKey, device.publicKey)).toMatchObject({ fmt: UPLOAD_REQUEST_FORMAT, id: 'r-1', s: ['pump1/vib'], from: 1000, to: 2000 });
  });

  it('are refused, saying why, when signed by another key, for another device, tampered, out of bounds or not CBOR', () => {
    const other = Identity.generate();
    expect(() => verifyUploadRequest(signUploadRequest(other, fields), receiver.publicKey, device.publicKey)).toThrow(/another key than the configured receiver key/);
    expect(() => verifyUploadRequest(signUploadRequest(receiver, fields), receiver.publicKey, other.publicKey)).toThrow(/for another device/);
    const body = canonicalEncode({ fmt: UPLOAD_REQUEST_FORMAT, rcv: receiver.publicKey, ...fields });
    const forged = canonicalEncode({ req: canonicalEncode({ fmt: UPLOAD_REQUEST_FORMAT, rcv: receiver.publicKey, ...fields, to: 9_999_999 }), sig: receiver.sign(body) });
    expect(() => verifyUploadRequest(forged, receiver.publicKey, device.publicKey)).toThrow(/signature does not verify/);
    expect(() => verifyUploadRequest(signUploadRequest(receiver, { ...fields, s: Array.from({ length: 65 }, (_, i) => `s${i}`) }), receiver.publicKey, device.publicKey)).toThrow(/upload request body: .*65/);
    expect(() => verifyUploadRequest(signUploadRequest(receiver, { ...fields, from: 3000 }), receiver.publicKey, device.publicKey)).toThrow(/from must not be after to/);
    expect(() => verifyUploadRequest(new Uint8Array([0xff, 0x00]), receiver.publicKey, device.publicKey)).toThrow(/upload request/);
  });

  it('the vector of docs/wire-format-v3-vectors.json verifies for its device and is refused for another', () => {
    const docs = join(import.meta.dirname, '../../docs');
    const keys = (JSON.parse(readFileSync(join(docs, 'wire-format-vectors.json'), 'utf8')) as { keys: Record<string, { publicKey: string }> }).keys;
    const v = (JSON.parse(readFileSync(join(docs, 'wire-format-v3-vectors.json'), 'utf8')) as { uploadRequest: { envelope: string; body: Record<string, unknown>; refused: { envelope: string }[] } }).uploadRequest;
    const rcv = Buffer.from(keys.receiver!.publicKey, 'hex');
    const dev = Buffer.from(keys.device!.publicKey, 'hex');
    expect(verifyUploadRequest(Buffer.from(v.envelope, 'hex'), rcv, dev)).toMatchObject(v.body);
    expect(() => verifyUploadRequest(Buffer.from(v.refused[0]!.envelope, 'hex'), rcv, dev)).toThrow(/for another device/);
  });
});
