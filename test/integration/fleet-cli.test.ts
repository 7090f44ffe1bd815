import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/setup.js';

/** `edge-agent receive --backend fleet` refuses bad flags and absent peers with a message naming the flag or the peer (exit 2 or 1, no stack trace). */
describe('receive --backend fleet: flags and peers checked before anything starts', () => {
  const base = (dir: string, extra: string[]) => ['receive', '--backend', 'fleet', '--listen', '127.0.0.1:0', '-d', dir, ...extra];

  it('names the flag that is wrong', () => {
    const dir = tempDir('fleet-cli');
    const cases: [string[], RegExp][] = [
      [['--backend', 'cassandra'], /--backend: expected sqlite or fleet, got "cassandra"/],
      [[], /--backend fleet needs --nats-url/],
      [['--nats-url', 'http://127.0.0.1:4222'], /--nats-url: "http:\/\/127.0.0.1:4222" is not nats:\/\/HOST:PORT/],
      [['--nats-url', 'nats://127.0.0.1:4222'], /--backend fleet needs --postgres-url/],
      [['--nats-url', 'nats://127.0.0.1:4222', '--postgres-url', 'postgres://edge:secret@127.0.0.1/edge'], /keep the password out of the command line/],
      [['--nats-url', 'nats://127.0.0.1:4222', '--postgres-url', 'postgres://edge@127.0.0.1/edge', '--stream-replicas', '0'], /--stream-replicas: expected a whole number from 1 to 5, got "0"/],
      [['--nats-url', 'nats://127.0.0.1:4222', '--postgres-url', 'postgres://edge@127.0.0.1/edge'], /receiver key .*receiver\.key not found: every fleet replica signs with the network's one receiver key/],
    ];
    for (const [extra, message] of cases) {
      const args = extra[0] === '--backend' ? ['receive', '--listen', '127.0.0.1:0', '-d', dir, ...extra] : base(dir, extra);
      const r = cli(args);
      expect({ extra, code: r.code }).toEqual({ extra, code: 2 });
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });

  it('makes the shared key with --init-key (0600) and says which peer it cannot reach', async () => {
    const dir = tempDir('fleet-cli');
    const pgPort = await freePort();
    const r = cli(base(dir, ['--init-key', '--nats-url', 'nats://127.0.0.1:4222', '--postgres-url', `postgres://edge@127.0.0.1:${pgPort}/edge`]));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`cannot reach PostgreSQL postgres://127.0.0.1:${pgPort}/edge: .*ECONNREFUSED.*is it running`));
    expect(statSync(join(dir, 'receiver.key')).mode & 0o777).toBe(0o600);
  });
});
