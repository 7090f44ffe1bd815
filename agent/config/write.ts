import { writeFileSync } from 'node:fs';
import { Document } from 'yaml';
import type { AgentConfig } from './schema.js';
import { parseConfig } from './load.js';

const HEADER = `edge-agent configuration, written by \`edge-agent init\`.
Relative paths are relative to this file's directory. Every key is documented in README.md
("Configuration"); unknown keys are rejected at load time.`;

/** Writes the config as YAML, after proving it loads back: init never leaves a config that run rejects. */
export function writeConfig(path: string, config: AgentConfig): void {
  const doc = new Document(config);
  doc.commentBefore = HEADER.split('\n').map((l) => ` ${l}`).join('\n');
  const text = doc.toString({ lineWidth: 0 });
  parseConfig(text, path);
  writeFileSync(path, text, { mode: 0o644 });
}
