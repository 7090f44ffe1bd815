import { closeSync, constants, existsSync, openSync, statSync } from 'node:fs';
import { fail, pass, type CheckResult } from '../../contracts/doctor-check.js';

const CHECK = 'serial';

/**
 * The serial device exists, is a character device and opens for reading and writing (the
 * agent sends ACK frames). Nothing is read: bytes taken here would be lost to the agent.
 */
export function checkSerialDevice(sourceId: string, path: string): CheckResult {
  const subject = `${sourceId} ${path}`;
  if (!existsSync(path)) {
    return fail(
      CHECK,
      subject,
      `${path} does not exist`,
      `plug the board in and look for it in /dev/serial/by-id/ (dmesg | tail shows what the kernel saw); then set sources.${sourceId}.path in edge-agent.yaml`,
    );
  }
  const st = statSync(path);
  if (!st.isCharacterDevice()) {
    return fail(CHECK, subject, `${path} is not a character device (a ${st.isFile() ? 'regular file' : st.isDirectory() ? 'directory' : 'special file'})`, `set sources.${sourceId}.path to the serial device, e.g. /dev/serial/by-id/usb-...`);
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      return fail(
        CHECK,
        subject,
        `${path} exists but this user may not open it (${code})`,
        `add the agent's user to the device's group: sudo usermod -aG dialout $USER (then log in again), or a udev rule for the device`,
      );
    }
    if (code === 'EBUSY') return pass(CHECK, subject, `${path} is present and held exclusively by another process (the running agent?)`);
    return fail(CHECK, subject, `${path} cannot be opened: ${(err as Error).message}`, 'check the cable and the adapter (dmesg | tail), then replug it');
  }
  closeSync(fd);
  return pass(CHECK, subject, `${path} is present and opens for reading and writing`);
}
