import type { Command } from 'commander';

/**
 * The CLI's top-level commands, in the order `--help` lists them, each with the module that
 * registers it. Loaded lazily: `edge-agent run` imports the agent's code and not that of `replay`,
 * `fleet` or `demo` (a cold start waits for every module it imports: about a third of `run`'s
 * start-up on a Pi-class core was loading commands it never uses).
 */
export interface CommandModule {
  /** The top-level command names the module registers (test/unit/cli-commands.test.ts checks them). */
  names: readonly string[];
  load(): Promise<(program: Command) => void>;
}

export const COMMANDS: readonly CommandModule[] = [
  { names: ['init'], load: async () => (await import('./init.js')).registerInitCommand },
  { names: ['run'], load: async () => (await import('./run.js')).registerRunCommand },
  { names: ['status'], load: async () => (await import('./status.js')).registerStatusCommand },
  { names: ['keys'], load: async () => (await import('./keys.js')).registerKeysCommand },
  { names: ['sensor-key'], load: async () => (await import('./sensor-key.js')).registerSensorKeyCommand },
  { names: ['verify'], load: async () => (await import('./verify.js')).registerVerifyCommand },
  { names: ['models'], load: async () => (await import('./models.js')).registerModelsCommand },
  { names: ['replay'], load: async () => (await import('./replay.js')).registerReplayCommand },
  { names: ['export'], load: async () => (await import('./export.js')).registerExportCommand },
  { names: ['proof', 'verify-proof'], load: async () => (await import('./proof.js')).registerProofCommands },
  { names: ['receive'], load: async () => (await import('./receive.js')).registerReceiveCommand },
  { names: ['demo'], load: async () => (await import('./demo.js')).registerDemoCommand },
  { names: ['doctor'], load: async () => (await import('./doctor.js')).registerDoctorCommand },
  { names: ['upload'], load: async () => (await import('./upload.js')).registerUploadCommand },
  { names: ['quarantine', 'maintenance'], load: async () => (await import('./guard.js')).registerGuardCommands },
  { names: ['update'], load: async () => (await import('./update.js')).registerUpdateCommand },
  { names: ['fleet'], load: async () => (await import('./fleet.js')).registerFleetCommand },
];

/**
 * The modules to load for this command line: only the named command's, or all of them when no
 * known command is named (help, a typo: commander's help and suggestions need every name).
 */
export function commandsFor(args: readonly string[]): readonly CommandModule[] {
  const name = args.find((a) => !a.startsWith('-'));
  const one = name === undefined ? undefined : COMMANDS.find((c) => c.names.includes(name));
  return one ? [one] : COMMANDS;
}
