import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_ENV, AGENT_NODE_OPTIONS } from '../../agent/run/heap-tuning.js';

// npm run bench measures the agent with AGENT_NODE_OPTIONS and AGENT_ENV; an installed agent must run with the same.
const read = (p: string) => readFileSync(resolve(import.meta.dirname, '../..', p), 'utf8');

describe('the node options the agent is installed with', () => {
  it('the systemd unit sets NODE_OPTIONS to the options the bench measured', () => {
    const m = /^Environment=NODE_OPTIONS=(.*)$/m.exec(read('packaging/systemd/edge-agent.service'));
    expect(m?.[1]?.split(' ')).toEqual(AGENT_NODE_OPTIONS);
  });

  it('the arm64 image sets NODE_OPTIONS to the same', () => {
    const m = /^\s*NODE_OPTIONS=(\S+)/m.exec(read('Dockerfile.arm64'));
    expect(m?.[1]?.split(' ')).toEqual(AGENT_NODE_OPTIONS);
  });

  it('the systemd unit and the arm64 image set the environment the bench measured', () => {
    const unit = read('packaging/systemd/edge-agent.service');
    const image = read('Dockerfile.arm64');
    expect(Object.keys(AGENT_ENV).length).toBeGreaterThan(0);
    for (const [name, value] of Object.entries(AGENT_ENV)) {
      expect(new RegExp(`^Environment=${name}=(\\S+)$`, 'm').exec(unit)?.[1], `${name} in the systemd unit`).toBe(value);
      expect(new RegExp(`^\\s*${name}=(\\S+?)( \\\\)?$`, 'm').exec(image)?.[1], `${name} in Dockerfile.arm64`).toBe(value);
    }
  });

  it('node accepts them in NODE_OPTIONS', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(require("v8").getHeapSpaceStatistics().length))'], {
      env: { ...process.env, NODE_OPTIONS: AGENT_NODE_OPTIONS.join(' ') },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
