import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { waitFor } from '../helpers/ports.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

const shipped = join(import.meta.dirname, '../../models');

describe('the agent runs only models it can trust', () => {
  it('never runs a tampered model, nor with a publisher key a manifest its publisher did not sign; the rest keeps running', async () => {
    const models = join(tempDir('models'), 'models');
    cpSync(shipped, models, { recursive: true });
    const A = tempDir('agent');
    expect(cli(['init', '--data-dir', A, '--simulator', '1', '--anomaly-sensors', '#', '--no-http']).code).toBe(0);
    patchConfig(A, [[['inference', 'models_dir'], models]]);

    // One flipped byte in the model file: that model never runs; the binding is disabled with both
    // hashes in the log and in status, and readings are still stored (a bad SD card sector must not
    // stop the gateway).
    const onnx = join(models, 'stream-ad.onnx');
    const good = readFileSync(onnx);
    const bad = Buffer.from(good);
    bad[bad.length >> 1] ^= 0x01;
    writeFileSync(onnx, bad);
    const damaged = cliBackground(['run', '--data-dir', A]);
    await damaged.waitForOutput(/model stream-ad: .*stream-ad\.onnx has sha256 [0-9a-f]{64}, but the manifest says [0-9a-f]{64}; refusing to load it/);
    await damaged.waitForOutput(/inference binding anomaly disabled/);
    await damaged.waitForOutput(/agent running/);
    await waitFor('readings stored with the model disabled', () => (JSON.parse(cli(['status', '--data-dir', A, '--json']).stdout) as { readings: { total: number } }).readings.total > 0, 15_000);
    expect(cli(['status', '--data-dir', A]).stdout).toMatch(/anomaly {2}DISABLED \(model stream-ad\): model stream-ad: .* refusing to load it/);
    expect(await damaged.stop()).toBe(0);
    writeFileSync(onnx, good);

    // The publisher signs the manifest (which pins every model by sha256); the gateway trusts that key.
    const P = tempDir('publisher');
    expect(cli(['init', '--data-dir', P, '--no-http']).code).toBe(0);
    const sign = cli(['models', 'sign', '--models-dir', models, '--key', join(P, 'device.key')]);
    expect(sign.code, sign.stderr).toBe(0);
    const publisher = /publisher key (did:key:\w+)/.exec(sign.stdout)![1]!;
    patchConfig(A, [[['inference', 'publisher_key'], publisher]]);
    expect(cli(['models', 'verify', '--models-dir', models, '--publisher-key', publisher]).code).toBe(0);
    const agent = cliBackground(['run', '--data-dir', A]);
    await agent.waitForOutput(/inference running/);
    expect(await agent.stop()).toBe(0);

    // An edit to the signed manifest (here: a looser alert threshold) voids the signature.
    const manifestPath = join(models, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    manifest.models[0].alert.on = 0.99;
    writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
    const edited = cliBackground(['run', '--data-dir', A]);
    await edited.waitForOutput(/manifest\.json: its signature \(.*manifest\.json\.sig\) does not verify with the model publisher key did:key:\w+; refusing the models/);
    await edited.waitForOutput(/inference binding anomaly disabled/);
    expect(await edited.stop()).toBe(0);
    expect(edited.output()).not.toMatch(/inference running[^\n]*"bindings":\[\{/); // no binding runs
    const verify = cli(['models', 'verify', '--models-dir', models, '--publisher-key', publisher]);
    expect(verify.code).toBe(1);
    expect(verify.stderr).toMatch(/does not verify with the model publisher key/);
  });
});
