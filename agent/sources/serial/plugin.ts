import { AgentError } from '../../errors.js';
import type { SourcePlugin } from '../plugin.js';
import { serialSourceSchema } from './config.js';

/** Serial source: firmware-bridge frames (PROTOCOL.md) or name=value lines from a sensor board (README.md). */
export const serialSourcePlugin: SourcePlugin<typeof serialSourceSchema> = {
  type: 'serial',
  schema: serialSourceSchema,
  async load() {
    const { SerialSource } = await import('./serial-source.js');
    return (cfg, ctx) => new SerialSource(cfg, ctx);
  },
  init: {
    flags: [
      { flags: '--serial-path <path>', description: 'serial device of a firmware-bridge sensor board (prefer /dev/serial/by-id/...)' },
      {
        flags: '--serial-baud <n>',
        description: 'serial baud rate (default 115200)',
        parse: (v) => {
          const n = Number(v);
          if (!Number.isInteger(n) || n < 300) throw new AgentError('USAGE', `--serial-baud: expected a baud rate, got "${v}"`);
          return n;
        },
      },
      { flags: '--serial-mode <mode>', description: 'frames (firmware-bridge protocol, default) or text (name=value lines)' },
    ],
    configs(flags) {
      if (!flags.serialPath) {
        if (flags.serialBaud || flags.serialMode) throw new AgentError('USAGE', '--serial-baud and --serial-mode need --serial-path');
        return {};
      }
      return { serial: { type: 'serial', path: flags.serialPath, ...(flags.serialBaud ? { baud: flags.serialBaud } : {}), ...(flags.serialMode ? { mode: flags.serialMode } : {}) } };
    },
  },
  doctor: {
    check: 'serial',
    network: false,
    none: 'no serial source configured',
    async run(id, cfg) {
      const { checkSerialDevice } = await import('./doctor-check.js');
      return checkSerialDevice(id, cfg.path);
    },
  },
};
