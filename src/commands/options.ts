import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { UsageError } from '../core/errors.js';

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KUBEADM_FOREVER_CACHE_DIR) return env.KUBEADM_FOREVER_CACHE_DIR;
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : homeCache();
  return path.join(base, 'kubeadm-forever');
}

/**
 * ~/.cache; with no HOME and no passwd entry (`env -i` in a bare root or a FROM-scratch image)
 * os.homedir() throws, and every command computes this default: /var/cache then, the system's
 * place for caches, named with the OS error if a command that uses the cache cannot write it.
 */
function homeCache(): string {
  try {
    return path.join(os.homedir(), '.cache');
  } catch {
    return '/var/cache';
  }
}

/**
 * `KUBEADM_FOREVER_JSON=1|true`: --json by default. With KUBEADM_FOREVER_CACHE_DIR the only
 * variables read: no flag comes from the environment, so a safety flag (--force,
 * --allow-shorter) is always typed on the command line.
 */
export function jsonFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true)$/i.test(env.KUBEADM_FOREVER_JSON ?? '');
}

export function withGlobalOptions<T>(y: Argv<T>) {
  return y
    .option('json', {
      type: 'boolean',
      default: jsonFromEnv(),
      defaultDescription: 'false, or $KUBEADM_FOREVER_JSON',
      describe: 'print one JSON result document on stdout',
    })
    .option('verbose', {
      type: 'boolean',
      default: false,
      describe: 'stream build logs and details on stderr',
    })
    .option('cache-dir', {
      type: 'string',
      default: defaultCacheDir(),
      defaultDescription:
        '$KUBEADM_FOREVER_CACHE_DIR, $XDG_CACHE_HOME/kubeadm-forever or ~/.cache/kubeadm-forever',
      describe: 'where built binaries and git mirrors are kept',
    });
}

/**
 * The flags a flag-group or command builder adds, as yargs infers them from the option
 * definitions (kebab-case keys, as parsed). argv types come from the builders, never by hand:
 * yargs' BuilderArguments<typeof builder> is the same with camel-case keys, as handlers get it.
 */
export type FlagsOf<B extends (y: Argv<never>) => Argv<unknown>> =
  ReturnType<B> extends Argv<infer U> ? U : never;

/**
 * Flags as a command's function takes them: camel-case keys only, without yargs' `_` and `$0`
 * (a yargs argv has all of these, so it is one; a test writes only the camel-case keys), a flag
 * that may be absent optional.
 */
type FlagKey<K> = string extends K ? never : K extends `${string}-${string}` | '_' | '$0' ? never : K;
export type CamelFlags<T> = {
  [K in keyof T as undefined extends T[K] ? never : FlagKey<K>]: T[K];
} & {
  [K in keyof T as undefined extends T[K] ? FlagKey<K> : never]?: T[K];
};

/** The options every command takes (cli.ts adds them to the top level): the builder's input. */
export type GlobalFlags = FlagsOf<typeof withGlobalOptions<object>>;

/** The global options as a handler sees them (camel-case keys too). */
export type GlobalArgs = ArgumentsCamelCase<GlobalFlags>;

/**
 * A command whose handler gets the argv its builder defines, inferred, with no cast: `U` is
 * read from what `builder` returns. (A command without flags of its own is a plain
 * `CommandModule<GlobalFlags, GlobalFlags>`.)
 */
export function defineCommand<U>(
  command: Omit<CommandModule<GlobalFlags, U>, 'builder'> & { builder: (y: Argv<GlobalFlags>) => Argv<U> },
): CommandModule<GlobalFlags, U> {
  return command;
}

/** A flag's one value: a flag given twice (yargs makes an array) is refused, naming the flag. */
export function singleFlagValue(v: unknown, flag: string): string | undefined {
  if (Array.isArray(v)) throw new UsageError(`${flag} was given ${v.length} times`, `pass ${flag} once`);
  if (v === undefined || v === null) return undefined;
  return String(v);
}

/**
 * A flag that names an input file: refused, with the flag named, when it is empty, names
 * nothing, or names something other than a regular file (a directory, a device).
 */
export function requireFlagFile(flag: string, file: string, next: string): void {
  if (file.trim() === '') throw new UsageError(`${flag} is empty`, next);
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st) throw new UsageError(`${flag} ${file}: no such file`, next);
  if (!st.isFile()) throw new UsageError(`${flag} ${file} is not a regular file`, next);
}
