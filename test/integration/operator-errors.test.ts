import { spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { chmodSync, chownSync, existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Identity } from '../../agent/identity/keys.js';
import { CLI, cli, cliBackground } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { patchConfig, startReceiverProcess, tempDir } from '../helpers/setup.js';

/** The CLI as an operator meets it (issue 12, Found 7-9): each condition we can name gets its message, exit 2, no stack trace. */

let cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const initDir = (extra: string[] = ['--simulator', '1', '--no-http']) => {
  const dir = join(tempDir('ops'), 'data');
  const r = cli(['init', '--data-dir', dir, ...extra]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return { dir, deviceId: /device id (did:key:\w+)/.exec(r.stdout)![1]! };
};
const background = (args: string[]) => {
  const p = cliBackground(args);
  cleanups.push(() => p.stop());
  return p;
};
const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);
/** Starts the agent until it runs, then stops it: leaves a store bound to the key. */
async function runOnce(dir: string): Promise<void> {
  const p = background(['run', '--data-dir', dir]);
  await p.waitForOutput(/agent running/);
  expect(await p.stop()).toBe(0);
}
const deviceOf = (dir: string) => JSON.parse(cli(['keys', 'show', '--data-dir', dir, '--json']).stdout) as { device_id: string; replaced_keys: string[] };

describe('Found 7: init --force cannot lose the identity; keys restore puts a replaced key back', () => {
  it('refuses while the agent runs, refuses while a store exists, keeps the replaced key, and restores it', async () => {
    const { dir, deviceId } = initDir();
    const agent = background(['run', '--data-dir', dir]);
    await agent.waitForOutput(/agent running/);
    const pid = agent.proc.pid!;

    let r = cli(['init', '--data-dir', dir, '--simulator', '1', '--force']);
    expect(r.stderr).toBe(`edge-agent: refusing to replace the device key: another edge-agent (pid ${pid}) is running on ${dir}; stop it first (lock file ${join(dir, 'agent.lock')})\n`);
    expect(r.code).toBe(2);
    expect(await agent.stop()).toBe(0);

    const store = join(dir, 'edge-agent.db');
    r = cli(['init', '--data-dir', dir, '--simulator', '1', '--force']);
    expect(r.stderr).toBe(
      `edge-agent: refusing to replace the device key: ${store} holds the signed chain of ${deviceId}, which a new key would orphan. ` +
        `To keep this identity, edit ${join(dir, 'edge-agent.yaml')} instead of running init. To start over as a new device, first move the store aside (mv ${store} ${store}-wal ${store}-shm somewhere else) or use another --data-dir\n`,
    );
    expect(r.code).toBe(2);
    expect(deviceOf(dir).device_id).toBe(deviceId);

    // Starting over as a new device: the store moved aside, init --force keeps the old key.
    const aside = tempDir('aside');
    for (const f of readdirSync(dir).filter((f) => f.startsWith('edge-agent.db'))) renameSync(join(dir, f), join(aside, f));
    r = cli(['init', '--data-dir', dir, '--simulator', '1', '--no-http', '--force']);
    expect(r.code).toBe(0);
    const kept = /the previous key is kept as (\S+); to go back to it: edge-agent keys restore --data-dir (\S+) (\S+)\n/.exec(r.stdout)!;
    expect(kept[1]).toMatch(new RegExp(`^${join(dir, 'device.key')}\\.replaced-\\d{8}T\\d{6}Z$`));
    const shown = deviceOf(dir);
    expect(shown.device_id).not.toBe(deviceId);
    expect(shown.replaced_keys).toEqual([kept[1]]);
    expect((readFileSync(kept[1]!).length)).toBeGreaterThan(0);

    // The old store back without its key: the agent says which key it needs and how to restore it.
    for (const f of readdirSync(aside)) renameSync(join(aside, f), join(dir, f));
    r = cli(['run', '--data-dir', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `edge-agent: store ${store} belongs to device ${deviceId}, but the key file ${join(dir, 'device.key')} is ${shown.device_id}; the key it was made with may be one set aside by init --force: ${kept[1]}; put it back with: edge-agent keys restore --data-dir ${dir} ${kept[1]}\n`,
    );
    noStack(r.stderr);

    r = cli(['keys', 'restore', '--data-dir', dir, kept[1]!]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^device id ${deviceId} restored to ${join(dir, 'device.key')}\nthe key it replaced is kept as ${join(dir, 'device.key')}\\.replaced-`));
    expect(deviceOf(dir).device_id).toBe(deviceId);
    const again = background(['run', '--data-dir', dir]);
    await again.waitForOutput(/agent running/);
    expect(await again.stop()).toBe(0);
  });

  it('keys restore refuses a key the store does not belong to', async () => {
    const a = initDir();
    await runOnce(a.dir);
    const b = initDir();
    const r = cli(['keys', 'restore', '--data-dir', a.dir, join(b.dir, 'device.key')]);
    expect(r).toMatchObject({ code: 2, stderr: `edge-agent: keys restore: the store belongs to device ${a.deviceId}, but ${join(b.dir, 'device.key')} is ${b.deviceId}; restoring it would not let the agent start\n` });
    expect(deviceOf(a.dir).device_id).toBe(a.deviceId);
  });
});

/** Runs the CLI as the unprivileged user `nobody`, as a service account would (the suite runs as root). */
function cliAsNobody(args: string[]) {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...args], { encoding: 'utf8', cwd: '/', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const asRoot = process.getuid?.() === 0;

describe.skipIf(!asRoot)('Found 8: permission problems name the file, owner, mode and user, and exit 2', () => {
  it('a data dir the agent user cannot enter is not "no config": run and doctor say what blocks and how to fix it', () => {
    const { dir } = initDir();
    chmodSync(join(dir, '..'), 0o755);
    chmodSync(dir, 0o700);
    const r = cliAsNobody(['run', '--data-dir', dir]);
    expect(r.stderr).toBe(
      `edge-agent: cannot enter directory ${dir} (on the way to ${join(dir, 'edge-agent.yaml')}): permission denied; it is owned by root:root with mode 700, and edge-agent runs as nobody (uid 65534). ` +
        `Fix: sudo chown -R nobody: ${dir} && chmod u+rwx ${dir} (files made by \`sudo edge-agent init\` belong to root), or run edge-agent as the owner\n`,
    );
    expect(r.code).toBe(2);
    const d = cliAsNobody(['doctor', '--data-dir', dir]);
    expect(d.stdout).toContain(`FAIL config          ${dir}: cannot enter directory ${dir}`);
    expect(d.stdout).toContain(`fix: sudo chown -R nobody: ${dir} && chmod u+rwx ${dir}`);
    expect(d.stdout).not.toContain('no config at');
    // The receiver too: its data dir inside one it cannot enter is not a --listen problem.
    const rcv = cliAsNobody(['receive', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'receiver')]);
    expect(rcv.code).toBe(2);
    expect(rcv.stderr).toBe(
      `edge-agent: cannot enter directory ${dir} (on the way to ${join(dir, 'receiver')}): permission denied; it is owned by root:root with mode 700, and edge-agent runs as nobody (uid 65534). ` +
        `Fix: sudo chown -R nobody: ${dir} && chmod u+rwx ${dir} (files made by \`sudo edge-agent init\` belong to root), or run edge-agent as the owner\n`,
    );
  });

  it('files left owned by root after `sudo edge-agent init`: the key file is named with its owner and mode, exit 2 (systemd does not restart)', () => {
    const { dir } = initDir();
    chmodSync(join(dir, '..'), 0o755);
    chownSync(dir, 65534, 65534);
    const key = join(dir, 'device.key');
    const r = cliAsNobody(['run', '--data-dir', dir]);
    expect(r.stderr).toBe(
      `edge-agent: cannot read file ${key}: permission denied; it is owned by root:root with mode 600, and edge-agent runs as nobody (uid 65534). ` +
        `Fix: sudo chown -R nobody: ${dir} && chmod 600 ${key} (files made by \`sudo edge-agent init\` belong to root), or run edge-agent as the owner\n`,
    );
    expect(r.code).toBe(2);
  });

  it('a store written by root: run names the store, doctor fails data-dir for the agent user', async () => {
    const { dir } = initDir();
    await runOnce(dir);
    chmodSync(join(dir, '..'), 0o755);
    chownSync(dir, 65534, 65534);
    chownSync(join(dir, 'device.key'), 65534, 65534);
    const store = join(dir, 'edge-agent.db');
    expect(existsSync(store)).toBe(true);
    const r = cliAsNobody(['run', '--data-dir', dir]);
    expect(r.stderr).toMatch(new RegExp(`^edge-agent: cannot write file ${store}(-wal|-shm)?: permission denied; it is owned by root:root with mode 6\\d\\d, and edge-agent runs as nobody \\(uid 65534\\)\\. Fix: sudo chown -R nobody: ${dir} `));
    expect(r.code).toBe(2);
    const d = cliAsNobody(['doctor', '--data-dir', dir]);
    expect(d.stdout).toMatch(new RegExp(`FAIL data-dir +${store}(-wal|-shm)?: not writable by nobody \\(uid 65534\\)`));
  });
});

describe('Found 9: flag and config values refused where they are read, with the exact message', () => {
  it('--mqtt-url with port 99999: init refuses (exit 2); in an edited config, run names the file, line and key', () => {
    const dir = join(tempDir('ops'), 'data');
    let r = cli(['init', '--data-dir', dir, '--mqtt-url', 'mqtt://127.0.0.1:99999']);
    expect(r).toMatchObject({ code: 2, stderr: 'edge-agent: --mqtt-url: port 99999 is out of range 1..65535\n' });
    // The receiver's --mqtt-url too (it was a RangeError from the MQTT client).
    expect(cli(['receive', '--listen', '127.0.0.1:0', '--data-dir', tempDir('receiver'), '--mqtt-url', 'mqtt://127.0.0.1:99999'])).toMatchObject({ code: 2, stderr: 'edge-agent: --mqtt-url: port 99999 is out of range 1..65535\n' });
    const ok = initDir(['--mqtt-url', 'mqtt://127.0.0.1:1883', '--no-http']);
    patchConfig(ok.dir, [[['sources', 'mqtt', 'url'], 'mqtt://127.0.0.1:99999']]);
    r = cli(['run', '--data-dir', ok.dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^edge-agent: invalid configuration:\n  ${join(ok.dir, 'edge-agent.yaml')}:\\d+: sources\\.mqtt\\.url: port 99999 is out of range 1\\.\\.65535\n$`));
  });

  it('--http-listen without a host: exit 2, no stack trace', () => {
    const r = cli(['init', '--data-dir', join(tempDir('ops'), 'data'), '--simulator', '1', '--http-listen', '9464']);
    expect(r).toEqual({ code: 2, stdout: '', stderr: 'edge-agent: --http-listen: must be HOST:PORT: IPv4:PORT, [IPv6]:PORT or localhost:PORT (e.g. 127.0.0.1:9464)\n' });
  });

  it('a CoAP port already taken: run fails with exit 2 naming the port (not an agent with no inputs), and doctor fails the coap check', async () => {
    const port = await freePort();
    const squatter: Socket = createSocket('udp4');
    await new Promise<void>((res) => squatter.bind(port, '127.0.0.1', () => res()));
    cleanups.push(() => new Promise<void>((res) => squatter.close(() => res())));
    const { dir } = initDir(['--coap-listen', `127.0.0.1:${port}`, '--no-http']);
    const r = cli(['run', '--data-dir', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`edge-agent: sources.coap.listen 127.0.0.1:${port}: cannot listen: UDP port ${port} is already in use by another program (find it: ss -lunp | grep ':${port} '); stop it, or choose another port\n`);
    noStack(r.stderr);
    const d = cli(['doctor', '--data-dir', dir]);
    expect(d.stdout).toContain(`FAIL coap            sources.coap.listen: udp 127.0.0.1:${port} is taken by another program, and no agent runs on this data dir`);
  });

  it('a missing serial device is logged at warn (once), while the agent keeps retrying', async () => {
    const missing = join(tempDir('ops'), 'ttyUSB-not-there');
    const { dir } = initDir(['--serial-path', missing, '--no-http']);
    const agent = background(['run', '--data-dir', dir]);
    const m = await agent.waitForOutput(/cannot open the serial port[^\n]*/);
    expect(m[0]).toContain('is the device plugged in?');
    expect(agent.output()).toContain(missing);
  });

  it('doctor compares uplink.receiver_key with the key the receiver publishes at GET /v1/receiver', async () => {
    const receiver = await startReceiverProcess(tempDir('receiver'));
    cleanups.push(() => receiver.proc.stop());
    const wrong = Identity.generate().deviceId;
    const uplink = `${receiver.baseUrl}/v1/batches`;
    const bad = initDir(['--simulator', '1', '--no-http', '--uplink-url', uplink, '--receiver-key', wrong]);
    let d = cli(['doctor', '--data-dir', bad.dir]);
    expect(d.stdout).toContain(
      `FAIL receiver-key    ${receiver.baseUrl}/v1/receiver: the receiver's key is ${receiver.publicKey}, but uplink.receiver_key is ${wrong}: every receipt would be refused and nothing counts as delivered`,
    );
    expect(d.stdout).toContain(`fix: set uplink.receiver_key: ${receiver.publicKey}`);
    const good = initDir(['--simulator', '1', '--no-http', '--uplink-url', uplink, '--receiver-key', receiver.publicKey]);
    d = cli(['doctor', '--data-dir', good.dir]);
    expect(d.stdout).toContain(`ok   receiver-key    ${receiver.baseUrl}/v1/receiver: the receiver publishes ${receiver.publicKey}, as configured`);
  });

  it('a small-order receiver key is refused by init and by config validation (wire-format.md §5)', () => {
    const identityPoint = '01' + '00'.repeat(31);
    const r = cli(['init', '--data-dir', join(tempDir('ops'), 'data'), '--simulator', '1', '--uplink-url', 'http://127.0.0.1:1/v1/batches', '--receiver-key', identityPoint]);
    expect(r).toMatchObject({ code: 2, stderr: `edge-agent: --receiver-key: ${identityPoint} is not a usable Ed25519 public key: a point of small order (libsodium blocklist): it would verify forged signatures\n` });
  });
});
