import type { CommandModule } from 'yargs';
import { KfError } from '../errors.js';
import type { GlobalArgs } from './options.js';
import { runCommand } from './run.js';

// Placeholder until its issue lands: fails loudly rather than pretending to work.
const command: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'bundle <action>',
  describe: '(not implemented yet)',
  handler: (argv) =>
    runCommand(argv, async () => {
      throw new KfError("'bundle' is not implemented yet", 'use a released version of kubeadm-forever');
    }),
};
export default command;
