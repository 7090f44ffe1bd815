import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../../errors.js';
import { fail, pass, skip, type CheckResult } from '../../contracts/doctor-check.js';

const CHECK = 'models';

/**
 * Every model in the manifest matches its sha256 (agent/inference/manifest.ts). Without
 * `modelsDir` the models shipped with edge-agent are checked, and their absence is no failure.
 */
export async function checkModels(modelsDir: string | undefined, publisherKey?: Uint8Array): Promise<CheckResult[]> {
  // Loaded on demand: the manifest module pulls in the inference code.
  const { MANIFEST_FILE, SHIPPED_MODELS_DIR, verifyModels } = await import('../../inference/manifest.js');
  const dir = modelsDir ?? SHIPPED_MODELS_DIR;
  const manifest = join(dir, MANIFEST_FILE);
  if (!existsSync(manifest)) {
    if (modelsDir === undefined) return [skip(CHECK, dir, 'no models installed (no manifest.json in the package)')];
    return [fail(CHECK, manifest, 'not found', `point inference.models_dir (or doctor --models-dir) at the directory holding manifest.json`)];
  }
  let checks;
  try {
    checks = verifyModels(dir, publisherKey ? { publisherKey } : {});
  } catch (err) {
    return [fail(CHECK, manifest, errorMessage(err), 'reinstall edge-agent (its models/ directory) or the publisher\'s signed models, or fix the manifest as the error says')];
  }
  if (checks.length === 0) return [skip(CHECK, manifest, 'the manifest lists no models')];
  return checks.map((c) =>
    c.ok
      ? pass(CHECK, c.id, `${c.file} matches its sha256 in the manifest`)
      : fail(CHECK, c.id, c.error ?? 'does not verify', 'reinstall the model files with their manifest (edge-agent models verify shows the same), or retrain and export them together; never run a model whose hash does not match'),
  );
}
