import type { LoadedConfig } from '../../config/load.js';
import { skip, type CheckResult } from './types.js';

/** Models verify against their manifest (sha256). Filled in when agent/inference/manifest.ts lands. */
export async function checkModels(_loaded: LoadedConfig): Promise<CheckResult[]> {
  return [skip('models', '-', 'model verification is not part of this build')];
}
