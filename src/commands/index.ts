import type { CommandModule } from 'yargs';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyCommand = CommandModule<any, any>;

/**
 * Command name -> its module, loaded on demand: the modules pull in dockerode, simple-git,
 * x509 and ora, which cost seconds of start-up that a command not using them should not pay.
 */
export const commandLoaders: Record<string, () => Promise<{ default: AnyCommand }>> = {
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
  audit: () => import('./audit.js'),
  image: () => import('./image.js'),
  version: () => import('./version.js'),
};

/**
 * The modules yargs needs for this command line: only the named command's when the first word
 * is one (its flags and help are all in that module), every module otherwise (top-level help,
 * unknown commands and their suggestions).
 */
export async function loadCommands(args: readonly string[]): Promise<AnyCommand[]> {
  const first = args.find((a) => !a.startsWith('-'));
  const names = first !== undefined && first in commandLoaders ? [first] : Object.keys(commandLoaders);
  return Promise.all(names.map(async (name) => (await commandLoaders[name]!()).default));
}
