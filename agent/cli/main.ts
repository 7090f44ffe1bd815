#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isPermissionError, permissionError } from '../util/file-access.js';
import { AgentError } from '../errors.js';
import { commandsFor } from './commands.js';

const program = new Command()
  .name('edge-agent')
  .description('Signed store-and-forward agent for IoT gateways: sensors in, tamper-evident batches out.')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

try {
  const registers = await Promise.all(commandsFor(process.argv.slice(2)).map((c) => c.load()));
  for (const register of registers) register(program);
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (isPermissionError(err) && typeof err.path === 'string') {
    // A permission problem nobody caught nearer: still named, with its fix, and no stack trace.
    process.stderr.write(`edge-agent: ${permissionError(err.path, err.syscall === 'open' || err.syscall === 'read' ? 'read' : 'write').message}\n`);
    process.exitCode = 2;
  } else if (err instanceof AgentError) {
    process.stderr.write(`edge-agent: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`edge-agent: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
