import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { HttpUplinkConfig } from './config.js';
import type { TlsOptions } from '../../util/tls.js';
import { errorMessage } from '../../errors.js';
import { tlsFor } from '../../health/doctor/tls-options.js';
import { fail, pass, warn, type CheckResult } from '../../contracts/doctor-check.js';

const CHECK = 'uplink';
const EXPIRY_WARN_DAYS = 14;

/**
 * The receiver answers HTTP at the uplink URL, and for https its certificate is valid for the
 * host and trusted with the TLS options the agent uses (uplink.tls.ca_file, else the system CAs
 * plus NODE_EXTRA_CA_CERTS).
 * Any HTTP answer counts as reachable: a GET on a POST endpoint may well be a 404 or 405.
 */
export function checkUplink(url: string, timeoutMs = 5000, tls: TlsOptions = { rejectUnauthorized: true }): Promise<CheckResult> {
  const target = new URL(url);
  const https = target.protocol === 'https:';
  return new Promise((resolve) => {
    const req = (https ? httpsRequest : httpRequest)(target, { method: 'GET', timeout: timeoutMs, headers: { 'user-agent': 'edge-agent-doctor' }, ...(https ? { ...tls, agent: false } : {}) }, (res) => {
      res.resume();
      let tls = '';
      let result: CheckResult | undefined;
      if (https) {
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        const daysLeft = Math.floor((Date.parse(cert.valid_to) - Date.now()) / 86_400_000);
        tls = `, TLS certificate for ${cert.subject?.CN ?? target.hostname} valid until ${new Date(cert.valid_to).toISOString().slice(0, 10)} (${daysLeft} days)`;
        if (daysLeft < EXPIRY_WARN_DAYS) {
          result = warn(CHECK, url, `reachable (HTTP ${res.statusCode})${tls}`, `renew the receiver's certificate before ${cert.valid_to}: deliveries stop when it expires`);
        }
      }
      resolve(result ?? pass(CHECK, url, `reachable: HTTP ${res.statusCode}${tls}`));
      req.destroy();
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(fail(CHECK, url, `${https && isTlsError(err) ? 'TLS' : 'connection'} failed: ${err.code && !err.message.includes(err.code) ? `${err.code} ` : ''}${errorMessage(err)}`, uplinkFix(err, target))));
    req.end();
  });
}

/** The http uplink with the TLS options the agent would use (uplink.tls). */
export async function checkHttpUplink(uplink: HttpUplinkConfig, resolvePath: (p: string) => string, timeoutMs: number): Promise<CheckResult> {
  if (!uplink.url.startsWith('https://')) return checkUplink(uplink.url, timeoutMs);
  const t = tlsFor('uplink', uplink.url, uplink.tls, 'uplink.tls', resolvePath);
  if ('failure' in t) return t.failure;
  const result = await checkUplink(uplink.url, timeoutMs, t.options);
  return result.status === 'pass' && t.insecure ? t.insecure : result;
}

function isTlsError(err: NodeJS.ErrnoException): boolean {
  return /CERT|SELF_SIGNED|TLS|SSL|ALTNAME|VERIFY/i.test(`${err.code ?? ''} ${err.message}`);
}

function uplinkFix(err: NodeJS.ErrnoException, url: URL): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return `nothing listens on ${url.host}: start the receiver or fix uplink.url`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${url.hostname} does not resolve: fix uplink.url or the gateway's DNS`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `no route or no answer: check the gateway's network link, firewall and proxy towards ${url.host}`;
    case 'CERT_HAS_EXPIRED':
      return `the receiver's certificate has expired: renew it (and check the gateway clock: edge-agent doctor's clock check)`;
    case 'CERT_NOT_YET_VALID':
      return `the certificate is not valid yet: the gateway clock is probably wrong (enable NTP), or the certificate was issued for a future date`;
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return `the receiver's certificate is not signed by a CA the agent trusts: set uplink.tls.ca_file to the CA that signed it (or NODE_EXTRA_CA_CERTS=/path/ca.pem in the service environment), or use a publicly trusted certificate`;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `the certificate does not name ${url.hostname}: use the host name the certificate was issued for in uplink.url (or uplink.tls.servername), or reissue it with that name`;
    default:
      return isTlsError(err) ? 'fix the receiver\'s TLS setup (certificate chain, protocol)' : `check uplink.url (${url.href}) and the network path`;
  }
}
