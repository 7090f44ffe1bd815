import { findModel, loadManifest, SHIPPED_MODELS_DIR } from '../../../agent/inference/index.js';

export interface BenchModel {
  modelsDir: string;
  id: string;
  /** Which model the figures were measured with. */
  description: string;
}

/** The model the benchmark runs: the shipped single-channel streaming detector, as init --anomaly-sensors binds it. */
export function benchModel(): BenchModel {
  const m = findModel(loadManifest(SHIPPED_MODELS_DIR), 'stream-ad');
  return { modelsDir: SHIPPED_MODELS_DIR, id: m.id, description: `shipped model ${m.id} ${m.version} (window ${m.input.window}, sha256 ${m.sha256.slice(0, 12)})` };
}
