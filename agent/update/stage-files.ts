import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import { UpdateRefused, type UpdateBundle, type UpdateFile } from '../identity/update-bundle.js';

/**
 * Fetches a file the bundle names by URL, reading at most the `n` bytes the signed bundle
 * promises (a server that sends more is refused as soon as it does), within `timeoutMs`.
 */
async function fetchFile(f: UpdateFile, bundleId: string, timeoutMs: number): Promise<Uint8Array> {
  const where = `bundle ${bundleId}: ${f.p} from ${f.u}`;
  let res: Response;
  try {
    res = await fetch(f.u!, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (err) {
    throw new UpdateRefused('fetch-failed', `${where}: ${errorMessage(err)}`);
  }
  if (res.status !== 200 || !res.body) throw new UpdateRefused('fetch-failed', `${where}: answered ${res.status}`);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > f.n) {
    await res.body.cancel();
    throw new UpdateRefused('bad-sha256', `${where}: the server offers ${declared} bytes, the signed bundle says ${f.n}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > f.n) throw new UpdateRefused('bad-sha256', `${where}: more than the ${f.n} bytes the signed bundle says`);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof UpdateRefused) throw err;
    throw new UpdateRefused('fetch-failed', `${where}: ${errorMessage(err)}`);
  }
  return Buffer.concat(chunks);
}

/**
 * docs/updates.md §3 step 6: every file of the bundle, inline or fetched, checked against its signed
 * size and sha256, written into `dir` (made fresh) beside the running set. Nothing is written
 * unless every file checks out, so a refused bundle leaves no half-staged directory.
 */
export async function stageFiles(bundle: UpdateBundle, dir: string, timeoutMs: number): Promise<void> {
  const files: [string, Uint8Array][] = [];
  for (const f of bundle.files) {
    const bytes = f.b ?? (await fetchFile(f, bundle.id, timeoutMs));
    const sha = createHash('sha256').update(bytes).digest();
    if (bytes.length !== f.n || !sha.equals(Buffer.from(f.h))) {
      throw new UpdateRefused('bad-sha256', `bundle ${bundle.id}: ${f.p} has ${bytes.length} bytes with sha256 ${sha.toString('hex')}, the signed bundle says ${f.n} bytes, ${Buffer.from(f.h).toString('hex')}`);
    }
    files.push([f.p, bytes]);
  }
  const tmp = `${dir}.staging-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const [name, bytes] of files) writeFileSync(join(tmp, name), bytes);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}
