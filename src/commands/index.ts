import type { CommandModule } from 'yargs';
import { commandSummaries, type CommandName } from './catalog.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyCommand = CommandModule<any, any>;

/**
 * Command name -> its module, loaded on demand: the modules pull in dockerode, simple-git,
 * x509 and ora, which cost seconds of start-up that a command not using them should not pay.
 */
export const commandLoaders: Record<CommandName, () => Promise<{ default: AnyCommand }>> = {
  plan: () => import('./plan.js'),
  patch: () => import('./patch.js'),
  build: () => import('./build.js'),
  verify: () => import('./verify.js'),
  cache: () => import('./cache.js'),
  bundle: () => import('./bundle.js'),
  ca: () => import('./ca.js'),
  'kubelet-cert': () => import('./kubelet-cert.js'),
  check: () => import('./check.js'),
  renew: () => import('./renew.js'),
  rollout: () => import('./rollout.js'),
  audit: () => import('./audit.js'),
  image: () => import('./image.js'),
  version: () => import('./version.js'),
};

function isCommandName(word: string): word is CommandName {
  return Object.hasOwn(commandLoaders, word);
}

/**
 * A command known only by its summary: enough for the top-level help, strict mode's unknown
 * command and its "did you mean". yargs runs a command only when its name is on the command
 * line, and every name on it gets its real module below, so this handler is never reached.
 */
function summaryOnly(name: CommandName): AnyCommand {
  return {
    ...commandSummaries[name],
    handler: () => {
      throw new Error(`command ${name} was run without its module`);
    },
  };
}

/**
 * The commands yargs needs for this command line: the real module of every word that names a
 * command (its flags, subcommands and help are all in that module; any word, since a flag's
 * value may come first), the summary of every other, in the catalog's order.
 */
export async function loadCommands(args: readonly string[]): Promise<AnyCommand[]> {
  const named = new Set(args.filter(isCommandName));
  return Promise.all(
    (Object.keys(commandLoaders) as CommandName[]).map(async (name) =>
      named.has(name) ? (await commandLoaders[name]()).default : summaryOnly(name),
    ),
  );
}
