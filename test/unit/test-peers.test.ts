/**
 * `npm test` checks its real peers first (package.json pretest, scripts/test-peers.sh): on a
 * machine that lacks one it prints the one apt command that installs what is missing and exits 1;
 * on a complete machine it prints nothing. Run here with a PATH that holds every peer but some.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPT = resolve(import.meta.dirname, '../../scripts/test-peers.sh');
const PEERS = ['mosquitto', 'mosquitto_pub', 'coap-client-notls', 'coap-server-notls', 'socat', 'openssl', 'faketime', 'g++', 'make', 'chromium', 'systemd-analyze', 'nats-server'];

const which = (cmd: string) => spawnSync('bash', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();

/** A PATH of one directory holding this machine's peers, but `without`. */
function pathWithout(...without: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'ea-peers-'));
  for (const cmd of PEERS.filter((c) => !without.includes(c))) symlinkSync(which(cmd), join(dir, cmd));
  return dir;
}

const check = (path: string, args: string[] = []) => spawnSync('/bin/bash', [SCRIPT, ...args], { encoding: 'utf8', env: { PATH: path } });

describe('npm test peer check (scripts/test-peers.sh)', () => {
  it('prints nothing and exits 0 when every peer is there', () => {
    const r = check(pathWithout());
    expect({ code: r.status, out: r.stdout, err: r.stderr }).toEqual({ code: 0, out: '', err: '' });
  });

  it('names a missing peer and prints the one apt command that installs it, exit 1', () => {
    const r = check(pathWithout('socat'));
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const commands = r.stderr.split('\n').filter((l) => /apt-get install/.test(l));
    expect(commands).toEqual([expect.stringMatching(/^ {2}(sudo )?apt-get install --no-install-recommends socat$/)]);
    expect(r.stderr).toMatch(/missing: socat\n/);
  });

  it('lists every missing package once in that one command (libcoap3-bin gives both CoAP tools)', () => {
    const r = check(pathWithout('coap-client-notls', 'coap-server-notls', 'nats-server'));
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n').filter((l) => /apt-get install/.test(l))).toEqual([expect.stringMatching(/apt-get install --no-install-recommends libcoap3-bin nats-server$/)]);
    expect(check(pathWithout('coap-client-notls', 'nats-server'), ['--missing']).stdout).toBe('libcoap3-bin\nnats-server\n');
  });
});
