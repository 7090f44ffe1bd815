/** Writing models/: the .onnx files and manifest.json in the format of agent/inference/README.md. */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export const MANIFEST_FORMAT = 'edge-agent/models/1';

/** A manifest entry without `sha256`, which is computed from the bytes written. */
export type EntryDraft = Record<string, unknown> & { id: string; file: string };

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Writes the model file and replaces (or appends) its entry in the manifest, keeping the other
 * models' entries: `npm run train -- --only stream-ad` retrains one model.
 */
export function writeModel(outDir: string, entry: EntryDraft, bytes: Uint8Array): string {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, entry.file), bytes);
  const digest = sha256(bytes);
  const manifestPath = path.join(outDir, 'manifest.json');
  const manifest = existsSync(manifestPath)
    ? (JSON.parse(readFileSync(manifestPath, 'utf8')) as { format: string; models: Record<string, unknown>[] })
    : { format: MANIFEST_FORMAT, models: [] };
  // Key order of the contract's example, sha256 right after file.
  const { id, version, task, description, file, ...rest } = entry;
  const full = { id, version, task, description, file, sha256: digest, ...rest };
  const at = manifest.models.findIndex((m) => m.id === entry.id);
  if (at === -1) manifest.models.push(full);
  else manifest.models[at] = full;
  const order = ['stream-ad', 'skab-pump', 'cmapss-rul'];
  manifest.models.sort((a, b) => order.indexOf(String(a.id)) - order.indexOf(String(b.id)));
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return digest;
}
