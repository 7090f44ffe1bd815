import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { COMMANDS, commandsFor } from '../../agent/cli/commands.js';
import { cli } from '../helpers/cli.js';

describe('the CLI loads only the command it runs', () => {
  it('each command module registers exactly the top-level names the table gives it', async () => {
    for (const c of COMMANDS) {
      const program = new Command();
      (await c.load())(program);
      expect(program.commands.map((cmd) => cmd.name())).toEqual(c.names);
    }
    const all = COMMANDS.flatMap((c) => c.names);
    expect(new Set(all).size).toBe(all.length);
  });

  it('picks the named command, and every command for help or an unknown name', () => {
    expect(commandsFor(['run', '--data-dir', '/x']).map((c) => c.names)).toEqual([['run']]);
    expect(commandsFor(['verify-proof', 'a.json']).map((c) => c.names)).toEqual([['proof', 'verify-proof']]);
    expect(commandsFor(['--help'])).toBe(COMMANDS);
    expect(commandsFor(['help', 'run'])).toBe(COMMANDS);
    expect(commandsFor(['rnu'])).toBe(COMMANDS);
  });

  it('still lists every command in --help and suggests the right one for a typo', () => {
    const help = cli(['--help']);
    expect(help.code).toBe(0);
    for (const name of COMMANDS.flatMap((c) => c.names)) expect(help.stdout).toMatch(new RegExp(`^\\s+${name}\\b`, 'm'));
    const typo = cli(['stauts']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/Did you mean status\?/);
  });
});
