import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { AgentError } from '../errors.js';
import type { Logger } from 'pino';

/**
 * TLS settings shared by the MQTT source and both uplinks. Certificate verification is on
 * unless `insecure_skip_verify` says otherwise, and that opt-out is logged as a warning at
 * every start. Without `ca_file` the system's trusted CAs (node's bundle) are used.
 */
export const tlsSchema = z
  .strictObject({
    /** PEM file with the CA certificate(s) that sign the server's certificate (replaces the default CAs). */
    ca_file: z.string().min(1).optional(),
    /** Client certificate (PEM) for mutual TLS; needs `key_file`. */
    cert_file: z.string().min(1).optional(),
    /** Private key (PEM) of the client certificate; must be mode 0600 like the device key. */
    key_file: z.string().min(1).optional(),
    /** Name to verify the server's certificate against, when it differs from the URL's host. */
    servername: z.string().min(1).optional(),
    /** Accept any server certificate. Only for bench tests: anyone on the path can read and forge traffic. */
    insecure_skip_verify: z.boolean().default(false),
  })
  .refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), {
    message: 'cert_file and key_file go together (mutual TLS needs both)',
  });

export type TlsConfig = z.infer<typeof tlsSchema>;

/** What node:tls, node:https and mqtt.js take. */
export interface TlsOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  rejectUnauthorized: boolean;
}

function readPem(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `${key}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reads the files a TLS config names. `where` is the key path of the block (e.g. `uplink.tls`)
 * so errors name the key; paths are resolved by the caller's `resolvePath` (the data dir).
 */
export function loadTlsOptions(tls: TlsConfig | undefined, where: string, resolvePath: (p: string) => string, log: Logger): TlsOptions {
  const out: TlsOptions = { rejectUnauthorized: !(tls?.insecure_skip_verify ?? false) };
  if (!tls) return out;
  if (tls.ca_file) out.ca = readPem(resolvePath(tls.ca_file), `${where}.ca_file`);
  if (tls.cert_file) out.cert = readPem(resolvePath(tls.cert_file), `${where}.cert_file`);
  if (tls.key_file) {
    const path = resolvePath(tls.key_file);
    let mode: number;
    try {
      mode = statSync(path).mode & 0o777;
    } catch (err) {
      throw new AgentError('CONFIG_INVALID', `${where}.key_file: cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (mode & 0o077) {
      throw new AgentError(
        'KEY_PERMISSIONS',
        `${where}.key_file: ${path} has mode ${mode.toString(8).padStart(3, '0')}; a private key must not be readable by group or others (fix: chmod 600 ${path})`,
        { exitCode: 2 },
      );
    }
    out.key = readPem(path, `${where}.key_file`);
  }
  if (tls.servername) out.servername = tls.servername;
  if (tls.insecure_skip_verify) {
    log.warn({ tls: where }, `${where}.insecure_skip_verify is true: the server's certificate is NOT verified; anyone on the network path can impersonate it`);
  }
  return out;
}

/** Explains the TLS failures operators meet, from node's error codes. */
export function describeTlsError(err: unknown): string | undefined {
  const code = (err as { code?: string } | undefined)?.code;
  if (!code) return undefined;
  if (code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY') {
    return `server certificate not trusted (${code}): set tls.ca_file to the CA that signed it`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `server certificate does not name this host (${code}): fix the URL's host or set tls.servername`;
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || code === 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE') {
    return `the server requires a client certificate (${code}): set tls.cert_file and tls.key_file`;
  }
  if (code === 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' || code === 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA') {
    return `the server refused our client certificate (${code}): is tls.cert_file signed by a CA the server trusts?`;
  }
  if (code === 'CERT_HAS_EXPIRED') return `server certificate has expired (${code})`;
  return undefined;
}
