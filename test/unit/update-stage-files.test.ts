import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpdateRefused, type UpdateBundle } from '../../agent/identity/update-bundle.js';
import { stageFiles } from '../../agent/update/stage-files.js';
import { tempDir } from '../helpers/setup.js';

const body = Buffer.alloc(100, 7);
const sha = new Uint8Array(createHash('sha256').update(body).digest());

describe('staging an update: files fetched by URL are read only up to their signed size and checked', () => {
  let server: Server;
  let base = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/sized') return res.writeHead(200, { 'content-length': body.length }).end(body);
      if (req.url === '/chunked') {
        res.writeHead(200); // no content-length: the agent must count what arrives
        res.write(body.subarray(0, 60));
        return res.end(body.subarray(60));
      }
      if (req.url === '/moved') return res.writeHead(302, { location: '/sized' }).end();
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const bundle = (u: string, n = body.length, h = sha): UpdateBundle => ({ fmt: 'edge-agent/update/1', id: 'b1', ver: '1', kind: 'models', pub: new Uint8Array(32), at: 0, files: [{ p: 'manifest.json', h, n, u }] });
  const refusal = async (b: UpdateBundle, dir: string) => {
    const err = await stageFiles(b, dir, 5000).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UpdateRefused);
    expect(existsSync(dir)).toBe(false);
    return err as UpdateRefused;
  };

  it('writes the files once every one checks out', async () => {
    const dir = join(tempDir('stage'), 'set');
    await stageFiles(bundle(`${base}/chunked`), dir, 5000);
    expect(readFileSync(join(dir, 'manifest.json')).equals(body)).toBe(true);
  });

  it('refuses more bytes than signed (declared or streamed), another sha256, a redirect and an error status, leaving nothing behind', async () => {
    const dir = join(tempDir('stage'), 'set');
    expect((await refusal(bundle(`${base}/sized`, 50), dir)).message).toMatch(/offers 100 bytes, the signed bundle says 50/);
    const streamed = await refusal(bundle(`${base}/chunked`, 50), dir);
    expect([streamed.reason, streamed.message]).toEqual(['bad-sha256', expect.stringMatching(/more than the 50 bytes the signed bundle says/)]);
    const wrong = await refusal(bundle(`${base}/sized`, body.length, new Uint8Array(32)), dir);
    expect([wrong.reason, wrong.message]).toEqual(['bad-sha256', expect.stringMatching(/has 100 bytes with sha256 [0-9a-f]{64}, the signed bundle says 100 bytes, 0{64}/)]);
    expect((await refusal(bundle(`${base}/moved`), dir)).reason).toBe('fetch-failed');
    expect((await refusal(bundle(`${base}/missing`), dir)).message).toMatch(/answered 404/);
  });
});
