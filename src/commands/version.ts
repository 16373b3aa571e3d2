import { isKfError, messageOf, UsageError } from '../core/errors.js';
import { dependencyVersion, TOOL_VERSION } from '../adapters/tool-version.js';
import { defineCommand } from './options.js';
import { commandSummaries } from './catalog.js';
import { runCommand } from './run.js';

/** How long `version` waits for the engine by default: it must answer fast on a dead DOCKER_HOST. */
const DEFAULT_ENGINE_TIMEOUT_S = 3;

const command = defineCommand({
  ...commandSummaries.version,
  builder: (y) =>
    y.option('timeout', {
      type: 'number',
      default: DEFAULT_ENGINE_TIMEOUT_S,
      describe: 'seconds to wait for the Docker engine',
    }),
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      if (!Number.isFinite(a.timeout) || a.timeout <= 0 || a.timeout > 600) {
        throw new UsageError(
          `invalid --timeout ${JSON.stringify(String(a.timeout))}`,
          'pass a number of seconds between 0 and 600, e.g. --timeout 3',
        );
      }
      // dockerode is loaded only here: `--version` and the other fields need none of it
      const { dockerHost, engineVersion } = await import('../adapters/docker.js');
      let engine: Record<string, unknown>;
      try {
        engine = { reachable: true, ...(await engineVersion(process.env, a.timeout * 1000)) };
      } catch (err) {
        // an unreachable engine is an answer, not a failure: `version` still exits 0
        engine = { reachable: false, host: dockerHost(), error: isKfError(err) ? err.what : messageOf(err) };
      }
      const doc = {
        tool: 'kubeadm-forever',
        version: TOOL_VERSION,
        node: process.version,
        dockerode: dependencyVersion('dockerode'),
        engine,
      };
      const engineLine = engine.reachable
        ? `docker engine ${String(engine.version)} (API ${String(engine.apiVersion)}, ${String(engine.os)}/${String(engine.arch)}) at ${String(engine.host)}`
        : `docker engine: not reachable (${String(engine.error)})`;
      out.result(
        doc,
        [
          `kubeadm-forever ${TOOL_VERSION}`,
          `node ${process.version}`,
          `dockerode ${doc.dockerode}`,
          engineLine,
        ].join('\n'),
      );
      return 0;
    }),
});
export default command;
