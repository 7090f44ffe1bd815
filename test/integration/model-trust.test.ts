import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

const shipped = join(import.meta.dirname, '../../models');

describe('the agent runs only models it can trust', () => {
  it('refuses a tampered model file and, with a publisher key, a manifest its publisher did not sign', async () => {
    const models = join(tempDir('models'), 'models');
    cpSync(shipped, models, { recursive: true });
    const A = tempDir('agent');
    expect(cli(['init', '--data-dir', A, '--simulator', '1', '--anomaly-sensors', '#', '--no-http']).code).toBe(0);
    patchConfig(A, [[['inference', 'models_dir'], models]]);

    // One flipped byte in the model file: run stops before any source starts, naming file and hashes.
    const onnx = join(models, 'stream-ad.onnx');
    const good = readFileSync(onnx);
    const bad = Buffer.from(good);
    bad[bad.length >> 1] ^= 0x01;
    writeFileSync(onnx, bad);
    const tampered = cli(['run', '--data-dir', A]);
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toMatch(/model stream-ad: .*stream-ad\.onnx has sha256 [0-9a-f]{64}, but the manifest says [0-9a-f]{64}; refusing to load it/);
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
    const edited = cli(['run', '--data-dir', A]);
    expect(edited.code).toBe(1);
    expect(edited.stderr).toMatch(/manifest\.json: its signature \(.*manifest\.json\.sig\) does not verify with the model publisher key did:key:\w+; refusing the models/);
    const verify = cli(['models', 'verify', '--models-dir', models, '--publisher-key', publisher]);
    expect(verify.code).toBe(1);
    expect(verify.stderr).toMatch(/does not verify with the model publisher key/);
  });
});
