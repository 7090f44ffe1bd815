import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Identity } from '../../agent/identity/keys.js';
import { UpdateRefused, verifyUpdate } from '../../agent/identity/update-bundle.js';
import { inRollout, UpdateOutbox } from '../../agent/receiver/update-outbox.js';
import { renderUpdateVectors } from '../../scripts/make-update-vectors.js';

const vectors = JSON.parse(readFileSync(join(import.meta.dirname, '../../docs/update-vectors.json'), 'utf8')) as {
  publisher: { publicKey: string };
  device: { publicKey: string };
  valid: { name: string; id: string; ver: string; envelope: string }[];
  refused: { name: string; reason: string; envelope: string }[];
  too_large: { bytes: number; reason: string };
};
const keys = { publisherKey: Buffer.from(vectors.publisher.publicKey, 'hex'), device: Buffer.from(vectors.device.publicKey, 'hex') };
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

describe('update bundles (docs/updates.md, docs/update-vectors.json)', () => {
  it('the vector file is what the script makes (npm run vectors)', () => {
    expect(readFileSync(join(import.meta.dirname, '../../docs/update-vectors.json'), 'utf8')).toBe(renderUpdateVectors());
  });

  it.each(vectors.valid.map((v) => [v.name, v] as const))('%s verifies with the publisher and device keys', (_n, v) => {
    const b = verifyUpdate(bytes(v.envelope), keys);
    expect([b.id, b.ver]).toEqual([v.id, v.ver]);
  });

  it.each(vectors.refused.map((v) => [v.name, v] as const))('%s is refused as its vector says', (_n, v) => {
    let caught: unknown;
    try {
      verifyUpdate(bytes(v.envelope), keys);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UpdateRefused);
    expect((caught as UpdateRefused).reason).toBe(v.reason);
  });

  it('an envelope over the size limit is refused before it is decoded', () => {
    expect(() => verifyUpdate(new Uint8Array(vectors.too_large.bytes), keys)).toThrow(/over 40960/);
  });

  it('a percentage rollout picks a stable share of devices, and an answered bundle is offered no more', () => {
    const devices = Array.from({ length: 200 }, () => Identity.generate().deviceId);
    const picked = devices.filter((d) => inRollout('models-7', d, 25));
    expect(picked.length).toBeGreaterThan(25);
    expect(picked.length).toBeLessThan(75);
    expect(devices.filter((d) => inRollout('models-7', d, 25))).toEqual(picked);
    const outbox = new UpdateOutbox();
    const base64 = Buffer.from(bytes(vectors.valid[0]!.envelope)).toString('base64');
    outbox.publish(base64, { percent: 25 });
    expect(outbox.offerFor(picked[0]!)).toBe(base64);
    expect(outbox.offerFor(devices.find((d) => !picked.includes(d))!)).toBeUndefined();
    outbox.note(picked[0]!, [{ i: 1, t: 1, k: 'update.applied', s: 'models-7', d: { version: '7.0' } }]);
    expect(outbox.offerFor(picked[0]!)).toBeUndefined();
    expect(outbox.fleet().devices[0]).toMatchObject({ device: picked[0], updates: { 'models-7': { outcome: 'applied', version: '7.0' } } });
  });
});
