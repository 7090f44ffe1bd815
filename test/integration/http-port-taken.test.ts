import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

describe('the health endpoint port already taken', () => {
  it('says which port and what to do, without a stack trace, and the agent runs on', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    const dir = tempDir('port-taken');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', 'mqtt://127.0.0.1:1']).code).toBe(0);
    patchConfig(dir, [[['http', 'listen'], `127.0.0.1:${port}`]]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      const [line] = await agent.waitForOutput(/health endpoint could not listen[^\n]*/, 60_000);
      expect(line).toContain(`another program (another agent?) listens on 127.0.0.1:${port}: stop it, or set http.listen to a free port`);
      expect(agent.output()).toMatch(/"code":"EADDRINUSE"/);
      await agent.waitForOutput(/agent running/, 60_000);
      expect(agent.output().split('\n').filter((l) => /^\s+at |\\n\s+at /.test(l))).toEqual([]);
      expect(agent.proc.exitCode).toBeNull();
    } finally {
      await agent.stop('SIGKILL');
      taken.close();
    }
  });
});
