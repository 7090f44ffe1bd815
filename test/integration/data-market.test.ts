import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CarReader } from '@ipld/car';
import { CarWriter } from '@ipld/car/writer';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalDecode, canonicalEncode } from '../../agent/identity/canonical.js';
import { Identity } from '../../agent/identity/keys.js';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { fetchRetry } from '../helpers/http.js';
import { tempDir } from '../helpers/setup.js';

// Issue 15, "What it must show" 2-4, on the data of a demo run (sealed, version-3 batches):
// proofs of one reading or verdict, a selective-disclosure data product, a CARv1 archive.

let base: string;
let agentDir: string;
let device: string;
let receiver: LongRunning;
let receiverUrl: string;
const out = tempDir('market-out');
const file = (name: string) => join(out, name);
const readJson = (f: string) => JSON.parse(readFileSync(f, 'utf8'));
const writeJson = (f: string, v: unknown) => writeFileSync(f, JSON.stringify(v));
const get = (url: string) => fetchRetry(url);

beforeAll(async () => {
  base = tempDir('market');
  agentDir = join(base, 'agent');
  // Runs until the receiver has verified verdicts (the detector warms up on 400 readings per sensor), then stops as on Ctrl-C.
  const demo = cliBackground(['demo', '--seconds', '0', '--data-dir', base, '--batch-format', '3', '--seal', '--sensors', '3']);
  await demo.waitForOutput(/receiver verified \d+ batches, \d+ readings, [1-9]\d* verdicts/, 150_000);
  expect(await demo.stop('SIGINT')).toBe(0);
  expect(demo.output()).toMatch(/chain +\d+ batches re-verified, \d+ signed receipts verified, 0 problems/);
  device = /agent +(did:key:\w+)/.exec(demo.output())![1]!;
  // The demo's receiver, started again on its data dir, as the network would keep it running.
  receiver = cliBackground(['receive', '--listen', '127.0.0.1:0', '--data-dir', join(base, 'receiver'), '--log-level', 'warn']);
  receiverUrl = (await receiver.waitForOutput(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
}, 200_000);

afterAll(async () => {
  await receiver?.stop('SIGKILL');
});

/** verify-proof as a buyer runs it: exit code and the reason it printed. */
function verifyProofFile(f: string, extra: string[] = []) {
  const r = cli(['verify-proof', f, '--json', ...extra]);
  return { code: r.code, result: JSON.parse(r.stdout) as { valid: boolean; reason?: string; detail?: string; readings?: number; element?: Record<string, unknown> } };
}

describe('proofs of single readings and verdicts (wire-format.md §12.8)', () => {
  it('proof and verify-proof on a reading and a verdict of the demo run; tampered value, index, path and header are rejected', () => {
    const made = cli(['proof', '--data-dir', agentDir, '--reading', '7', '-o', file('r7.json')]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/cid bafkrei/);
    const ok = verifyProofFile(file('r7.json'));
    expect(ok.code).toBe(0);
    expect(ok.result.element!.i).toBe(7);
    expect(verifyProofFile(file('r7.json'), ['--device-key', device]).code).toBe(0);

    const verdict = cli(['proof', '--data-dir', agentDir, '--verdict', '1', '-o', file('v1.json')]);
    expect(verdict.code, verdict.stderr).toBe(0);
    expect(verifyProofFile(file('v1.json')).result).toMatchObject({ valid: true, kind: 'verdict' });
    // The agent's start heartbeat (agent.heartbeat) is event 1.
    const event = cli(['proof', '--data-dir', agentDir, '--event', '1', '-o', file('e1.json')]);
    expect(event.code, event.stderr).toBe(0);
    expect(verifyProofFile(file('e1.json')).result).toMatchObject({ valid: true, kind: 'event', element: { k: 'agent.heartbeat' } });

    const proof = readJson(file('r7.json'));
    const leaf = canonicalDecode(new Uint8Array(Buffer.from(proof.leaf, 'hex')), 'leaf') as { v: number };
    const hdr = canonicalDecode(new Uint8Array(Buffer.from(proof.hdr, 'hex')), 'hdr') as { created: number };
    const hex = (v: unknown) => Buffer.from(canonicalEncode(v)).toString('hex');
    const flipFirst = (h: string) => `${(parseInt(h[0]!, 16) ^ 1).toString(16)}${h.slice(1)}`;
    const tampered: [string, Record<string, unknown>, string][] = [
      ['value', { ...proof, leaf: hex({ ...leaf, v: leaf.v + 1 }) }, 'bad-merkle-root'],
      ['index', { ...proof, index: proof.index + 1 }, 'bad-merkle-root'],
      ['path', { ...proof, path: [flipFirst(proof.path[0]), ...proof.path.slice(1)] }, 'bad-merkle-root'],
      ['header', { ...proof, hdr: hex({ ...hdr, created: hdr.created + 1 }) }, 'bad-signature'],
    ];
    for (const [what, p, reason] of tampered) {
      writeJson(file(`r7-${what}.json`), p);
      const r = verifyProofFile(file(`r7-${what}.json`));
      expect(r.code, what).toBe(1);
      expect(r.result.reason, what).toBe(reason);
    }
    const other = Identity.generate().deviceId;
    expect(verifyProofFile(file('r7.json'), ['--device-key', other]).result.reason).toBe('bad-signature');
  });

  it('explains what it cannot prove, with exit 1', () => {
    const none = cli(['proof', '--data-dir', agentDir, '--reading', '999999999']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no reading 999999999 in this store/);
    expect(cli(['proof', '--data-dir', agentDir]).code).toBe(2);
  });

  it("the receiver serves the same proofs, opened from the sealed batch with its own key", async () => {
    const fromAgent = readJson(file('r7.json'));
    const res = await get(`${receiverUrl}/v1/devices/${device}/readings/7/proof`);
    expect(res.status).toBe(200);
    const fromReceiver = (await res.json()) as Record<string, unknown>;
    // The agent rebuilt the sealed data from its rows and salts; the receiver opened the box: same leaf, same path.
    expect(fromReceiver).toEqual(fromAgent);
    writeJson(file('r7-receiver.json'), fromReceiver);
    expect(verifyProofFile(file('r7-receiver.json')).code).toBe(0);
    const v = await get(`${receiverUrl}/v1/devices/${device}/verdicts/1/proof`);
    expect(v.status).toBe(200);
    writeJson(file('v1-receiver.json'), await v.json());
    expect(verifyProofFile(file('v1-receiver.json')).result).toMatchObject({ valid: true, kind: 'verdict' });
    expect((await get(`${receiverUrl}/v1/devices/${device}/readings/999999999/proof`)).status).toBe(404);
  });
});

describe('selective disclosure (wire-format.md §12.14)', () => {
  it('a data product of one sensor over a time range verifies alone; one with a reading removed or changed is rejected', () => {
    const all = cli(['export', '--data-dir', agentDir, '--sensor', 'sim-02', '--from', '0', '--to', String(Date.now()), '--proofs', '-o', file('all.json')]);
    expect(all.code, all.stderr).toBe(0);
    const everything = readJson(file('all.json'));
    const times = everything.readings.map((p: { leaf: string }) => (canonicalDecode(new Uint8Array(Buffer.from(p.leaf, 'hex')), 'leaf') as { t: number }).t);
    const [from, to] = [times[10], times[60]];
    const expected = times.filter((t: number) => t >= from && t <= to).length;

    const made = cli(['export', '--data-dir', agentDir, '--sensor', 'sim-02', '--from', new Date(from).toISOString(), '--to', String(to), '--proofs', '-o', file('product.json')]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/batch \d+ +cid bafkrei/);
    const ok = verifyProofFile(file('product.json'));
    expect(ok.code, JSON.stringify(ok.result)).toBe(0);
    expect(ok.result.readings).toBe(expected);
    expect(cli(['verify', file('product.json')]).code).toBe(0);
    // A buyer holding only the product: nothing in it but sim-02's readings.
    const product = readJson(file('product.json'));
    for (const p of product.readings) expect((canonicalDecode(new Uint8Array(Buffer.from(p.leaf, 'hex')), 'leaf') as { s: string }).s).toBe('sim-02');

    const removed = { ...product, readings: product.readings.filter((_: unknown, k: number) => k !== 5) };
    writeJson(file('removed.json'), removed);
    expect(verifyProofFile(file('removed.json')).result.reason).toBe('incomplete');

    const leaf = canonicalDecode(new Uint8Array(Buffer.from(product.readings[5].leaf, 'hex')), 'leaf') as { v: number };
    const changed = { ...product, readings: [...product.readings] };
    changed.readings[5] = { ...product.readings[5], leaf: Buffer.from(canonicalEncode({ ...leaf, v: leaf.v + 0.5 })).toString('hex') };
    writeJson(file('changed.json'), changed);
    const r = verifyProofFile(file('changed.json'));
    expect(r.code).toBe(1);
    expect(r.result.reason).toBe('bad-merkle-root');

    // Swapping in another sensor's reading from the same run does not pass either.
    const other = cli(['export', '--data-dir', agentDir, '--sensor', 'sim-01', '--from', String(from), '--to', String(to), '--proofs', '-o', file('other.json')]);
    expect(other.code, other.stderr).toBe(0);
    const swapped = { ...product, readings: [...product.readings] };
    swapped.readings[0] = readJson(file('other.json')).readings[0];
    writeJson(file('swapped.json'), swapped);
    expect(verifyProofFile(file('swapped.json')).code).toBe(1);
  });
});

describe('content addressing (wire-format.md §12.11)', () => {
  it('a CAR file of the demo run: @ipld/car reads it, every CID recomputes, verify accepts it and rejects a changed block or a gap', async () => {
    const made = cli(['export', '--data-dir', agentDir, '--car', file('run.car')]);
    expect(made.code, made.stderr).toBe(0);
    const status = JSON.parse(cli(['status', '--data-dir', agentDir, '--json']).stdout);
    const bytes = readFileSync(file('run.car'));
    const reader = await CarReader.fromBytes(bytes);
    expect(reader.version).toBe(1);
    const roots = await reader.getRoots();
    expect(roots.map(String)).toEqual([status.batches.last_cid]);
    const blocks: { cid: CID; bytes: Uint8Array }[] = [];
    for await (const b of reader.blocks()) blocks.push(b);
    expect(blocks.length).toBe(status.batches.delivered + status.batches.pending);
    for (const b of blocks) {
      // Recomputed here with multiformats' own sha2-256 and raw codec, not the agent's helper.
      expect(CID.create(1, raw.code, await sha256.digest(b.bytes)).equals(b.cid)).toBe(true);
    }
    // The receiver names the same batches by the same CIDs.
    const listed = (await (await get(`${receiverUrl}/v1/devices/${device}/batches`)).json()) as { cid: string; sealed: boolean }[];
    expect(listed.map((b) => b.cid)).toEqual(blocks.map((b) => b.cid.toString()));
    expect(listed.every((b) => b.sealed)).toBe(true);

    const ok = cli(['verify', file('run.car')]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/every CID, signature and chain link OK/);

    // One byte of the last block changed.
    const changed = Buffer.from(bytes);
    changed[changed.length - 10]! ^= 0x01;
    writeFileSync(file('changed.car'), changed);
    const bad = cli(['verify', file('changed.car'), '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).problems.join('\n')).toMatch(/CID is not CIDv1 raw sha2-256 of its bytes/);

    // A middle batch left out: each block is fine, the chain inside is not.
    const { writer, out: carOut } = CarWriter.create(roots);
    const chunks: Uint8Array[] = [];
    const collected = (async () => {
      for await (const c of carOut) chunks.push(c);
    })();
    for (const [k, b] of blocks.entries()) if (k !== 1) await writer.put(b);
    await writer.close();
    await collected;
    writeFileSync(file('gap.car'), Buffer.concat(chunks));
    const gap = cli(['verify', file('gap.car'), '--json']);
    expect(gap.code).toBe(1);
    expect(JSON.parse(gap.stdout).problems.join('\n')).toMatch(/batches 2\.\.2 are missing/);
  });
});
