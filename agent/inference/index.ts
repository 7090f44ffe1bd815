import { findModel, loadManifest, SHIPPED_MODELS_DIR } from './manifest.js';
import { ModelRunner } from './model-runner.js';
import { OnnxModel } from './onnx-model.js';

export { SHIPPED_MODELS_DIR, loadManifest, verifyModels, findModel, type Manifest, type ModelEntry } from './manifest.js';
export { ModelRunner, type Row, type Verdict, type RunnerStats } from './model-runner.js';

/** Loads model `id` from `modelsDir` (sha256-verified) and returns a runner for it. */
export async function openModel(modelsDir: string, id: string, options: { warmup?: number } = {}): Promise<ModelRunner> {
  const manifest = loadManifest(modelsDir);
  const model = await OnnxModel.load(manifest, findModel(manifest, id));
  return new ModelRunner(model, options);
}

