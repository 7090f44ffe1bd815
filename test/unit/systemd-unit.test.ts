import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

// The shipped unit, checked by systemd's own tools (.ci/run installs systemd for systemd-analyze).
const UNIT = resolve(import.meta.dirname, '../../packaging/systemd/edge-agent.service');
const SYSUSERS = resolve(import.meta.dirname, '../../packaging/systemd/edge-agent.sysusers.conf');
const SYSTEM_UNITS = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) => existsSync(join(d, 'sysinit.target')));

const roots: string[] = [];
afterEach(() => roots.splice(0).forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A filesystem root holding systemd's stock units, an executable /usr/bin/edge-agent and `unitText`. */
function rootWithUnit(unitText: string): string {
  const root = mkdtempSync(join(tmpdir(), 'edge-agent-systemd-'));
  roots.push(root);
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
  // ExecReload is /bin/kill -HUP $MAINPID (procps; systemd.service(5)'s own example): present on any Debian system.
  mkdirSync(join(root, 'bin'), { recursive: true });
  for (const exe of ['usr/bin/edge-agent', 'bin/kill']) {
    writeFileSync(join(root, exe), '#!/bin/sh\n');
    chmodSync(join(root, exe), 0o755);
  }
  cpSync(SYSTEM_UNITS!, join(root, 'usr/lib/systemd/system'), { recursive: true });
  writeFileSync(join(root, 'etc/systemd/system/edge-agent.service'), unitText);
  return root;
}

function verify(root: string) {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${root}`, 'edge-agent.service'], { encoding: 'utf8' });
  return { code: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

describe('packaging/systemd/edge-agent.service', () => {
  it('passes systemd-analyze verify with no warning', () => {
    expect(SYSTEM_UNITS, 'systemd stock units (apt-get install systemd)').toBeDefined();
    expect(verify(rootWithUnit(readFileSync(UNIT, 'utf8')))).toEqual({ code: 0, output: '' });
  });

  it('is one systemd-analyze verify would fault if ExecStart pointed nowhere', () => {
    const broken = readFileSync(UNIT, 'utf8').replace('ExecStart=/usr/bin/edge-agent', 'ExecStart=/usr/bin/edge-agent-missing');
    const r = verify(rootWithUnit(broken));
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/edge-agent-missing/);
  });

  it('has an exposure score of at most 2.0 in systemd-analyze security (0 = locked down, 10 = unprotected)', () => {
    const out = execFileSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', UNIT], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for edge-agent\.service: ([\d.]+)/.exec(out)?.[1]);
    expect(score).toBeGreaterThan(0);
    expect(score).toBeLessThanOrEqual(2.0);
  });

  it('restarts on failure but not on a configuration error, and keeps its data dir writable', () => {
    const keys = new Map<string, string[]>();
    for (const line of readFileSync(UNIT, 'utf8').split('\n')) {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line);
      if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
    }
    expect(keys.get('Restart')).toEqual(['on-failure']);
    expect(keys.get('RestartPreventExitStatus')).toEqual(['2']); // the CLI's exit code for usage/config errors
    expect(keys.get('ExecStart')?.[0]).toContain('--data-dir /var/lib/edge-agent');
    expect(keys.get('StateDirectory')).toEqual(['edge-agent']);
    expect(keys.get('ReadWritePaths')).toEqual(['/var/lib/edge-agent']);
    expect(keys.get('SupplementaryGroups')).toEqual(['dialout']);
  });

  it('its sysusers.d file creates the service user in group dialout', () => {
    const root = mkdtempSync(join(tmpdir(), 'edge-agent-sysusers-'));
    roots.push(root);
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\ndialout:x:20:\n');
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    execFileSync('systemd-sysusers', [`--root=${root}`, SYSUSERS], { encoding: 'utf8' });
    const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
    expect(passwd).toMatch(/^edge-agent:x:\d+:\d+:edge-agent service:\/var\/lib\/edge-agent:\/usr\/sbin\/nologin$/m);
    expect(readFileSync(join(root, 'etc/group'), 'utf8')).toMatch(/^dialout:x:20:edge-agent$/m);
  });
});
