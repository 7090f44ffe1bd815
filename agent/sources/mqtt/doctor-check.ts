import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import type { TlsConfig } from '../../util/tls.js';
import { errorMessage } from '../../errors.js';
import { tlsFor } from '../../health/doctor/tls-options.js';
import { fail, pass, type CheckResult } from '../../contracts/doctor-check.js';

export interface BrokerTarget {
  /** "broker" for an MQTT source, "uplink" for the MQTT uplink. */
  check: string;
  /** Key path of the config block, e.g. sources.mqtt or uplink. */
  where: string;
  url: string;
  username?: string | undefined;
  password_file?: string | undefined;
  tls?: TlsConfig | undefined;
}

/**
 * A real MQTT CONNECT with the configured URL, credentials and TLS, under a throw-away client
 * id with a clean session: the agent's persistent sessions (its client ids) are left untouched.
 */
export async function checkBroker(target: BrokerTarget, resolvePath: (p: string) => string, timeoutMs = 5000): Promise<CheckResult> {
  const { check, where } = target;
  const subject = `${where} ${target.url}`;
  let password: string | undefined;
  if (target.password_file) {
    const file = resolvePath(target.password_file);
    try {
      password = readFileSync(file, 'utf8').trim();
    } catch (err) {
      return fail(check, subject, `cannot read password_file ${file}: ${errorMessage(err)}`, `create ${file} (mode 600) with the broker password, or fix ${where}.password_file`);
    }
  }
  if (password !== undefined && !target.username) {
    // mqtt.js never settles a connect with a password and no user name (seen with mqtt 5.x).
    return fail(check, subject, 'password_file is set without username', `set ${where}.username (brokers check the password per user)`);
  }
  let tls = {};
  let insecure: CheckResult | undefined;
  if (target.url.startsWith('mqtts://')) {
    const t = tlsFor(check, subject, target.tls, `${where}.tls`, resolvePath);
    if ('failure' in t) return t.failure;
    tls = t.options;
    insecure = t.insecure;
  }
  const started = performance.now();
  let client: mqtt.MqttClient | undefined;
  try {
    const connecting = mqtt.connectAsync(target.url, {
      clientId: `edge-agent-doctor-${randomBytes(4).toString('hex')}`,
      clean: true,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 0 },
      connectTimeout: timeoutMs,
      reconnectPeriod: 0,
      ...(target.username ? { username: target.username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...tls,
    });
    // Never hang the doctor on a client that does not settle: a hard deadline besides connectTimeout.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no CONNACK within ${timeoutMs} ms (timed out)`)), timeoutMs + 1000);
    });
    connecting.then((c) => (client = c), () => undefined);
    try {
      client = await Promise.race([connecting, deadline]);
    } finally {
      clearTimeout(timer);
    }
    const ms = Math.round(performance.now() - started);
    return insecure ?? pass(check, subject, `MQTT CONNECT accepted in ${ms} ms${target.username ? ` as ${target.username}` : ''}${target.url.startsWith('mqtts://') ? ' over verified TLS' : ''}`);
  } catch (err) {
    return fail(check, subject, `MQTT CONNECT failed: ${describe(err)}`, brokerFix(err, where));
  } finally {
    await client?.endAsync(true).catch(() => undefined);
  }
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { reasonCode?: number };
  if (e.reasonCode !== undefined) return `broker refused (reason code ${e.reasonCode}: ${e.message})`;
  return e.code && !e.message.includes(e.code) ? `${e.code} ${e.message}` : errorMessage(err);
}

function brokerFix(err: unknown, where: string): string {
  const e = err as NodeJS.ErrnoException & { reasonCode?: number };
  if (e.reasonCode === 134 || e.reasonCode === 135 || /not authori[sz]ed|bad user name or password/i.test(e.message)) {
    return `check ${where}.username and password_file against the broker's users (mosquitto: password_file, allow_anonymous)`;
  }
  if (e.code === 'ECONNREFUSED') return `nothing listens there: start the broker (systemctl status mosquitto) or fix the host and port in ${where}.url`;
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `the host name does not resolve: fix ${where}.url or the gateway's DNS`;
  if (/timeout|timed out/i.test(e.message)) return `no answer in time: check the network path and firewall to the broker, and that the port speaks MQTT (TLS ports need mqtts://)`;
  if (/certificate|self.signed|tls|ssl|verify/i.test(`${e.code ?? ''} ${e.message}`)) return `the broker's TLS certificate is not trusted: set ${where}.tls.ca_file to the CA that signed it, or fix the certificate`;
  return `check the broker's log and ${where}.url`;
}
