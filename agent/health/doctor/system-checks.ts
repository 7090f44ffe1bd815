import { existsSync, statfsSync, statSync } from 'node:fs';
import { ClockStatus, type ClockPolicy } from '../../clock/clock-status.js';
import { fail, pass, type CheckResult } from '../../contracts/doctor-check.js';

export function checkClock(policy: ClockPolicy): CheckResult {
  const reading = new ClockStatus(policy).reading();
  const os = policy === 'auto' ? ` (${reading.source})` : ` (clock.synced: ${policy} overrides the OS)`;
  if (reading.state === 'synced') return pass('clock', 'gateway clock', `synchronised${os}, now ${new Date().toISOString()}`);
  return fail(
    'clock',
    'gateway clock',
    `${reading.state === 'unknown' ? 'not known to be synchronised' : 'not synchronised'}${os}; now reads ${new Date().toISOString()}; readings are stamped gateway-unsynced`,
    policy === 'never'
      ? 'clock.synced is never in edge-agent.yaml: set it to auto once the board has NTP'
      : 'enable NTP: timedatectl set-ntp true (systemd-timesyncd) or install chrony, and give the gateway network time; a board with a GPS or RTC clock can set clock.synced: always',
  );
}

/** Free space where the store lives: a full disk stops commits, and so acknowledgements. */
export function checkDisk(dataDir: string, storePath: string, minFreeMb: number): CheckResult {
  const st = statfsSync(dataDir);
  const free = st.bavail * st.bsize;
  const total = st.blocks * st.bsize;
  const pct = total > 0 ? (100 * free) / total : 0;
  let store = 0;
  for (const f of [storePath, `${storePath}-wal`]) if (existsSync(f)) store += statSync(f).size;
  const mb = (n: number) => `${(n / 1048576).toFixed(0)} MiB`;
  const detail = `${mb(free)} free of ${mb(total)} (${pct.toFixed(1)}%) on the data dir's file system; store ${mb(store)}`;
  if (free < minFreeMb * 1048576) {
    return fail('disk', dataDir, `${detail}: below the ${minFreeMb} MiB minimum`, `free space on that file system (journalctl --vacuum-size=100M, old logs, apt-get clean) or move the data dir to a larger disk`);
  }
  return pass('disk', dataDir, detail);
}

/** Secret files (device key, passwords): group or world access lets another user sign as this gateway. */
export function checkSecretFile(configKey: string, path: string): CheckResult {
  if (!existsSync(path)) {
    return fail('key-permissions', path, `${configKey} points to ${path}, which does not exist`, configKey === 'device.key_file' ? 'run edge-agent init to create the device key, or fix device.key_file' : `create it (mode 600) or fix ${configKey}`);
  }
  const st = statSync(path);
  const mode = st.mode & 0o777;
  if (mode & 0o077) {
    return fail(
      'key-permissions',
      path,
      `${configKey} ${path} has mode ${mode.toString(8).padStart(3, '0')}: readable or writable by ${mode & 0o070 ? 'its group' : ''}${mode & 0o070 && mode & 0o007 ? ' and ' : ''}${mode & 0o007 ? 'other users' : ''}`,
      `chmod 600 ${path} (and chown it to the agent's user)`,
    );
  }
  const owner = process.getuid && st.uid !== process.getuid() ? `; owned by uid ${st.uid}, not this user (${process.getuid()})` : '';
  return pass('key-permissions', path, `${configKey}: mode ${mode.toString(8).padStart(3, '0')}${owner}`);
}

/** Every file-valued secret in the config (any key ending in key_file or password_file), wherever it sits. */
export function secretFilesOf(config: unknown, prefix = ''): { key: string; path: string }[] {
  if (config === null || typeof config !== 'object') return [];
  return Object.entries(config as Record<string, unknown>).flatMap(([k, v]) => {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'string' && /(^|_)(key_file|password_file)$/.test(k)) return [{ key, path: v }];
    return secretFilesOf(v, key);
  });
}
