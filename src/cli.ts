#!/usr/bin/env node
import { TOOL_VERSION } from './adapters/tool-version.js';

// yargs wiring only: each command lives in src/commands/<name>.ts.

// `--version` alone, answered before yargs and without loading any command module. It is not a
// yargs-wide option: `bundle export --version vX.Y.Z` has a flag of that name.
if (process.argv.length === 3 && process.argv[2] === '--version') {
  process.stdout.write(`${TOOL_VERSION}\n`);
  process.exit(0);
}

// No top-level await: the same file is bundled into one CommonJS script for the single
// executable, and CommonJS has none. A rejection still ends the process with its stack, as before.
void main();

async function main(): Promise<void> {
  // Loaded only past `--version`: static imports would all load before the line above runs.
  const [
    { default: yargs },
    { hideBin },
    { jsonFromEnv, withGlobalOptions },
    { loadCommands },
    { reportFailure },
    { UsageError },
  ] = await Promise.all([
    import('yargs'),
    import('yargs/helpers'),
    import('./commands/options.js'),
    import('./commands/index.js'),
    import('./commands/run.js'),
    import('./core/errors.js'),
  ]);

  const cli = withGlobalOptions(yargs(hideBin(process.argv)))
    .scriptName('kubeadm-forever')
    .usage(
      '$0 <command> [options]\n\nA kubeadm that issues ~200-year certificates, built for your exact version.',
    )
    .strict()
    .demandCommand(1, 'Name a command; see --help.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(false)
    .epilogue(
      "'kubeadm-forever --version' prints the tool's version; 'kubeadm-forever version [--json]' adds Node, dockerode and the Docker engine.",
    )
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      // yargs reports its own parse errors (e.g. "Not enough arguments following: validity") as a
      // YError: those are usage errors and keep the error contract (--json included, read from
      // the raw arguments since parsing failed). Anything else thrown while parsing is rendered
      // by the same function as command failures.
      const args = hideBin(process.argv);
      const json = args.some((a) => a === '--json' || a === '--json=true') || jsonFromEnv();
      const verbose = args.includes('--verbose');
      if (err && err.name !== 'YError') {
        process.exit(reportFailure(err, { json, verbose }));
      }
      // Some yargs messages (e.g. invalid `choices`) span lines: fold them into the one "what" line.
      const what = String(msg ?? err?.message ?? 'invalid arguments').replace(/:?\s*\n\s*/g, ': ');
      process.exit(
        reportFailure(new UsageError(what, "see 'kubeadm-forever --help' for the commands and their flags"), {
          json,
          verbose,
        }),
      );
    });

  for (const command of await loadCommands(hideBin(process.argv))) cli.command(command);

  // yargs renders a command's whole help text once its handler has started, to show it should
  // the handler fail (yargs/build/lib/command.js cacheHelpMessage). Our .fail prints the two-line
  // error instead, never that text, and `CMD --help` renders its own before any handler: the
  // 40-90 ms it costs every build, plan and check (a third of a cache hit) buy nothing here.
  // Internal API: where it is missing, yargs just keeps doing it.
  const usage = (
    cli as unknown as {
      getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } };
    }
  )
    .getInternalMethods?.()
    .getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;

  await cli.parseAsync();
}
