import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { errorMessage } from '../../errors.js';
import type { MqttSourceConfig } from '../../sources/mqtt/config.js';
import { fail, pass, type CheckResult } from './types.js';

const CHECK = 'broker';

/**
 * A real MQTT CONNECT with the source's URL and credentials, under a throw-away client id with
 * a clean session: the agent's persistent session (its client_id) is left untouched.
 */
export async function checkBroker(sourceId: string, cfg: MqttSourceConfig, resolvePath: (p: string) => string, timeoutMs = 5000): Promise<CheckResult> {
  const subject = `${sourceId} ${cfg.url}`;
  let password: string | undefined;
  if (cfg.password_file) {
    const file = resolvePath(cfg.password_file);
    try {
      password = readFileSync(file, 'utf8').trim();
    } catch (err) {
      return fail(CHECK, subject, `cannot read password_file ${file}: ${errorMessage(err)}`, `create ${file} (mode 600) with the broker password, or fix sources.${sourceId}.password_file`);
    }
  }
  if (password !== undefined && !cfg.username) {
    // mqtt.js never settles a connect with a password and no user name (seen with mqtt 5.x).
    return fail(CHECK, subject, 'password_file is set without username', `set sources.${sourceId}.username (brokers check the password per user)`);
  }
  const started = performance.now();
  let client: mqtt.MqttClient | undefined;
  try {
    const connecting = mqtt.connectAsync(cfg.url, {
      clientId: `edge-agent-doctor-${randomBytes(4).toString('hex')}`,
      clean: true,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 0 },
      connectTimeout: timeoutMs,
      reconnectPeriod: 0,
      ...(cfg.username ? { username: cfg.username } : {}),
      ...(password !== undefined ? { password } : {}),
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
    return pass(CHECK, subject, `MQTT CONNECT accepted in ${ms} ms${cfg.username ? ` as ${cfg.username}` : ''}`);
  } catch (err) {
    return fail(CHECK, subject, `MQTT CONNECT failed: ${describe(err)}`, brokerFix(err, sourceId));
  } finally {
    await client?.endAsync(true).catch(() => undefined);
  }
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { reasonCode?: number };
  if (e.reasonCode !== undefined) return `broker refused (reason code ${e.reasonCode}: ${e.message})`;
  return e.code && !e.message.includes(e.code) ? `${e.code} ${e.message}` : errorMessage(err);
}

function brokerFix(err: unknown, sourceId: string): string {
  const e = err as NodeJS.ErrnoException & { reasonCode?: number };
  if (e.reasonCode === 134 || e.reasonCode === 135 || /not authori[sz]ed|bad user name or password/i.test(e.message)) {
    return `check sources.${sourceId}.username and password_file against the broker's users (mosquitto: password_file, allow_anonymous)`;
  }
  if (e.code === 'ECONNREFUSED') return `nothing listens there: start the broker (systemctl status mosquitto) or fix the host and port in sources.${sourceId}.url`;
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `the host name does not resolve: fix sources.${sourceId}.url or the gateway's DNS`;
  if (/timeout|timed out/i.test(e.message)) return `no answer in time: check the network path and firewall to the broker, and that the port speaks MQTT (TLS ports need mqtts://)`;
  if (/certificate|self.signed|tls|ssl/i.test(e.message)) return `the broker's TLS certificate is not trusted: install its CA (NODE_EXTRA_CA_CERTS=/path/ca.pem) or fix the certificate`;
  return `check the broker's log and sources.${sourceId}.url`;
}
