import { isKfError, messageOf, UsageError } from '../core/errors.js';
import { dependencyVersion, TOOL_VERSION } from '../adapters/tool-version.js';
import { defineCommand } from './options.js';
import { commandSummaries } from './catalog.js';
import { runFunction } from './run.js';
import type { CommandIo } from '../core/command-io.js';
import type { EngineVersion } from '../adapters/docker.js';

/** How long `version` waits for the engine by default: it must answer fast on a dead DOCKER_HOST. */
const DEFAULT_ENGINE_TIMEOUT_S = 3;

/** What `version` is asked: how long to wait for the engine. */
export interface VersionInput {
  /** seconds */
  timeout: number;
}

/** The engine part of `version --json`: its version when it answered, else why not. */
export type EngineState =
  ({ reachable: true } & EngineVersion) | { reachable: false; host: string; error: string };

/** The `version --json` document. */
export interface VersionResult {
  tool: 'kubeadm-forever';
  version: string;
  node: string;
  dockerode: string;
  engine: EngineState;
}

/** The versions for people, one a line. */
export function formatVersionResult(r: VersionResult): string {
  const e = r.engine;
  const engineLine = e.reachable
    ? `docker engine ${String(e.version)} (API ${String(e.apiVersion)}, ${String(e.os)}/${String(e.arch)}) at ${String(e.host)}`
    : `docker engine: not reachable (${String(e.error)})`;
  return [`kubeadm-forever ${r.version}`, `node ${r.node}`, `dockerode ${r.dockerode}`, engineLine].join(
    '\n',
  );
}

/** `version`: the tool, Node, dockerode and (when it answers within the timeout) the Docker engine of `io.env`. */
export async function runVersion(input: VersionInput, io: CommandIo): Promise<VersionResult> {
  if (!Number.isFinite(input.timeout) || input.timeout <= 0 || input.timeout > 600) {
    throw new UsageError(
      `invalid --timeout ${JSON.stringify(String(input.timeout))}`,
      'pass a number of seconds between 0 and 600, e.g. --timeout 3',
    );
  }
  // dockerode is loaded only here: `--version` and the other fields need none of it
  const { dockerHost, engineVersion } = await import('../adapters/docker.js');
  let engine: EngineState;
  try {
    engine = { reachable: true, ...(await engineVersion(io.env, input.timeout * 1000)) };
  } catch (err) {
    // an unreachable engine is an answer, not a failure: `version` still exits 0
    engine = {
      reachable: false,
      host: dockerHost(io.env),
      error: isKfError(err) ? err.what : messageOf(err),
    };
  }
  return {
    tool: 'kubeadm-forever',
    version: TOOL_VERSION,
    node: process.version,
    dockerode: dependencyVersion('dockerode'),
    engine,
  };
}

const command = defineCommand({
  ...commandSummaries.version,
  builder: (y) =>
    y.option('timeout', {
      type: 'number',
      default: DEFAULT_ENGINE_TIMEOUT_S,
      describe: 'seconds to wait for the Docker engine',
    }),
  handler: (argv) => runFunction(argv, (io) => runVersion(argv, io), { human: formatVersionResult }),
});
export default command;
