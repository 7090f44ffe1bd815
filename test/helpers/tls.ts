import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing here: trusting it instead of `caCert` must fail verification. */
  otherCaCert: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A throw-away PKI made with openssl: a CA, a server certificate for 127.0.0.1, ::1 and
 * localhost, a client certificate for mutual TLS, and an unrelated CA, valid for `days` (30). EC P-256 keys keep it
 * quick (well under a second). Keys are mode 0600, as the agent demands.
 */
export function makeTestPki(opts: { days?: number } = {}): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'ea-pki-'));
  const days = String(opts.days ?? 30);
  const newKey = (name: string) => {
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name], dir);
    chmodSync(join(dir, name), 0o600);
  };
  const makeCa = (name: string) => {
    newKey(`${name}.key`);
    openssl(['req', '-x509', '-new', '-key', `${name}.key`, '-sha256', '-days', days, '-subj', `/CN=edge-agent test ${name}`, '-out', `${name}.crt`], dir);
  };
  const issue = (name: string, cn: string, ext: string) => {
    newKey(`${name}.key`);
    openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`], dir);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', days, '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
  };
  makeCa('ca');
  makeCa('other-ca');
  issue('server', 'localhost', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('client', 'edge-agent test client', 'extendedKeyUsage=clientAuth\n');
  // mosquitto, started as root, drops to its own user before it loads certificates: it must
  // be able to reach the directory and read the server key (a test key; the agent's keys stay 0600).
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'server.key'), 0o644);
  const p = (f: string) => join(dir, f);
  return {
    dir,
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    otherCaCert: p('other-ca.crt'),
  };
}

/** mosquitto.conf lines that turn the helper's listener into TLS (with `requireClientCert`: mutual TLS). */
export function mosquittoTlsConfig(pki: TestPki, requireClientCert = false): string[] {
  return [`cafile ${pki.caCert}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`, `require_certificate ${requireClientCert}`];
}
