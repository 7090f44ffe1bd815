import pino from 'pino';
import { loadTlsOptions, type TlsConfig, type TlsOptions } from '../../util/tls.js';
import { errorMessage } from '../../errors.js';
import { fail, warn, type CheckResult } from '../../contracts/doctor-check.js';

/**
 * The TLS options the agent itself would use for a `tls:` block (same files, same checks), or
 * the finding that explains why they cannot be loaded.
 */
export function tlsFor(
  check: string,
  subject: string,
  tls: TlsConfig | undefined,
  where: string,
  resolvePath: (p: string) => string,
): { options: TlsOptions; insecure?: CheckResult } | { failure: CheckResult } {
  try {
    const options = loadTlsOptions(tls, where, resolvePath, pino({ level: 'silent' }));
    const insecure = tls?.insecure_skip_verify
      ? warn(check, subject, `${where}.insecure_skip_verify is true: the server's certificate is not verified`, `set ${where}.ca_file to the CA that signs the server's certificate and remove insecure_skip_verify`)
      : undefined;
    return insecure ? { options, insecure } : { options };
  } catch (err) {
    return { failure: fail(check, subject, errorMessage(err), `fix ${where} as the message says`) };
  }
}
