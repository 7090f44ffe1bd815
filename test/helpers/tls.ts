import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCert {
  caPem: string;
  /** Path of the CA certificate (for NODE_EXTRA_CA_CERTS). */
  caFile: string;
  key: string;
  cert: string;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });

/** A throw-away CA and a server certificate it signed for 127.0.0.1, made with the openssl CLI. */
export function makeTestCert(dir: string, opts: { days?: number; name?: string } = {}): TestCert {
  const name = opts.name ?? 'test';
  const f = (s: string) => join(dir, `${name}-${s}`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '30', '-subj', `/CN=edge-agent ${name} CA`]);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', String(opts.days ?? 30), '-extfile', f('ext.cnf')]);
  return { caPem: readFileSync(f('ca.pem'), 'utf8'), caFile: f('ca.pem'), key: readFileSync(f('server.key'), 'utf8'), cert: readFileSync(f('server.pem'), 'utf8') };
}
