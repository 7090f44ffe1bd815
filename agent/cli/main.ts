#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isPermissionError, permissionError } from '../util/file-access.js';
import { AgentError } from '../errors.js';
import { registerDemoCommand } from './demo.js';
import { registerDoctorCommand } from './doctor.js';
import { registerGuardCommands } from './guard.js';
import { registerExportCommand } from './export.js';
import { registerProofCommands } from './proof.js';
import { registerInitCommand } from './init.js';
import { registerKeysCommand } from './keys.js';
import { registerModelsCommand } from './models.js';
import { registerReceiveCommand } from './receive.js';
import { registerReplayCommand } from './replay.js';
import { registerRunCommand } from './run.js';
import { registerSensorKeyCommand } from './sensor-key.js';
import { registerStatusCommand } from './status.js';
import { registerVerifyCommand } from './verify.js';
import { registerUploadCommand } from './upload.js';
import { registerUpdateCommand } from './update.js';
import { registerFleetCommand } from './fleet.js';

const program = new Command()
  .name('edge-agent')
  .description('Signed store-and-forward agent for IoT gateways: sensors in, tamper-evident batches out.')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

registerInitCommand(program);
registerRunCommand(program);
registerStatusCommand(program);
registerKeysCommand(program);
registerSensorKeyCommand(program);
registerVerifyCommand(program);
registerModelsCommand(program);
registerReplayCommand(program);
registerExportCommand(program);
registerProofCommands(program);
registerReceiveCommand(program);
registerDemoCommand(program);
registerDoctorCommand(program);
registerUploadCommand(program);
registerGuardCommands(program);
registerUpdateCommand(program);
registerFleetCommand(program);

try {
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
