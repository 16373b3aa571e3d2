import fs from 'node:fs';
import { KfError, UsageError } from '../core/errors.js';
import { platformFromText } from '../core/platform.js';
import { toolExecutablePath } from '../carry/cache/tool.js';
import { defineCommand } from './options.js';
import { commandSummaries } from './catalog.js';
import { runFunction } from './run.js';
import { formatRolloutResult, runRollout } from '../fleet/rollout.js';
import { formatReportPrometheus } from '../fleet/report.js';

const OUTPUTS = ['table', 'json', 'prometheus'] as const;

// yargs maps argv to RolloutInput only (this module loads only when `rollout` is on the command line); the work is fleet/rollout.ts's runRollout.
const command = defineCommand({
  ...commandSummaries.rollout,
  builder: (y) =>
    y
      .option('inventory', {
        alias: 'i',
        type: 'string',
        describe:
          'Ansible inventory (INI, or YAML ending .yml/.yaml): control planes in kube_control_plane (or control_plane, masters…), workers in kube_node (or workers, nodes…); ansible_host, ansible_user, ansible_port',
      })
      .option('kubeconfig', {
        type: 'string',
        describe:
          'an admin kubeconfig: the nodes (names, roles from the node-role labels, InternalIP) read from the cluster, instead of or with --inventory',
      })
      .option('tool', {
        type: 'string',
        describe:
          "this tool's single-file executable, copied to each node (sha256 checked) to run its node commands",
        defaultDescription: '<cache-dir>/tool/linux-<arch>/kubeadm-forever (npm run dist)',
      })
      .option('kubeadm', {
        type: 'string',
        describe: 'the custom kubeadm, copied to the control planes (sha256 checked) and run by renew there',
      })
      .option('gate-timeout', {
        type: 'number',
        default: 300,
        describe: 'seconds each gate (readyz, etcd, node Ready, served certificate, cluster objects) waits',
      })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'print every step and gate, read every node (nothing is written anywhere)',
      })
      .option('report', {
        type: 'boolean',
        default: false,
        describe:
          "change nothing: every node's certificates and CA copies (exit 0 only when all are at the goal)",
      })
      .option('output', {
        alias: 'o',
        choices: OUTPUTS,
        describe: 'table (default), json (as --json), prometheus (--report only)',
      })
      .option('max-unavailable', { type: 'number', default: 1, describe: 'workers changed at the same time' })
      .option('seed', {
        type: 'string',
        describe: 'the control plane whose CA keys extend the CAs and sign the workers’ CSRs',
        defaultDescription: 'the first control plane by name',
      })
      .option('min-years', {
        type: 'number',
        default: 100,
        describe: 'the goal: every certificate and CA copy at least this many years away',
      })
      .option('accept-new-host-keys', {
        type: 'boolean',
        default: false,
        describe:
          'trust the host key of a node never seen (StrictHostKeyChecking=accept-new); a changed key is still refused',
      })
      .option('ssh-config', {
        type: 'string',
        describe: 'an ssh_config file instead of ~/.ssh/config (ssh -F)',
      })
      .option('connect-timeout', {
        type: 'number',
        default: 10,
        describe: 'seconds to reach each node (ConnectTimeout)',
      })
      .option('parallel', { type: 'number', default: 16, describe: 'nodes read at the same time' })
      .option('remote-dir', {
        type: 'string',
        default: '/var/tmp/kubeadm-forever',
        describe: 'where the tool is put on each node',
      })
      .option('journal', {
        type: 'string',
        describe: 'the changing run records each step done per node in this file (on this host)',
        defaultDescription: '$XDG_STATE_HOME/kubeadm-forever/rollout-journal.json',
      })
      .option('resume', {
        type: 'boolean',
        default: false,
        describe: 'continue the rollout of the journal: steps done are not run again',
      })
      .option('files-only', {
        type: 'boolean',
        default: false,
        describe:
          'nodes that are only files (no kubelet, API server or etcd; test set-ups): leave out control-plane renew, the API/etcd/Ready gates and the cluster objects',
      }),
  handler: (argv) =>
    runFunction(
      argv,
      async (io) => {
        const positive = (v: number, flag: string, int = true) => {
          if (!Number.isFinite(v) || v <= 0 || (int && !Number.isInteger(v)))
            throw new UsageError(
              `invalid ${flag} ${JSON.stringify(String(v))}`,
              `pass a positive ${int ? 'whole ' : ''}number`,
            );
          return v;
        };
        if (argv.dryRun && argv.report)
          throw new UsageError('--dry-run and --report both given', 'pass one of them');
        const output = argv.output ?? (argv.json ? 'json' : 'table');
        if (argv.json && output !== 'json')
          throw new UsageError(
            `--json and --output ${output} both choose what goes on stdout`,
            'pass only one of them',
          );
        if (output === 'prometheus' && !argv.report)
          throw new UsageError('--output prometheus is for --report', 'add --report');
        if (
          argv.remoteDir === '' ||
          !argv.remoteDir.startsWith('/') ||
          /[^A-Za-z0-9._/-]/.test(argv.remoteDir)
        )
          throw new UsageError(
            `invalid --remote-dir ${JSON.stringify(argv.remoteDir)}`,
            'pass an absolute path of plain characters',
          );
        let tool = argv.tool;
        if (tool === undefined) {
          // the cached single-file executable, when npm run dist put one there
          const platform = platformFromText(`linux/${process.arch === 'arm64' ? 'arm64' : 'amd64'}`)!;
          const cached = toolExecutablePath(argv.cacheDir, platform);
          if (fs.statSync(cached, { throwIfNoEntry: false })?.isFile()) tool = cached;
          else if (!argv.dryRun)
            throw new UsageError(
              `no --tool given and no single-file executable of kubeadm-forever at ${cached}`,
              'pass --tool PATH (npm run dist makes dist-bin/kubeadm-forever-linux-<arch>; importing a bundle caches it)',
            );
        }
        return runRollout(
          {
            mode: argv.dryRun ? 'dry-run' : argv.report ? 'report' : 'run',
            inventory: argv.inventory,
            kubeconfig: argv.kubeconfig,
            gateTimeoutSeconds: positive(argv.gateTimeout, '--gate-timeout'),
            tool,
            kubeadm: argv.kubeadm,
            maxUnavailable: argv.maxUnavailable,
            seed: argv.seed,
            minYears: positive(argv.minYears, '--min-years', false),
            filesOnly: argv.filesOnly,
            ssh: {
              configFile: argv.sshConfig,
              hostKeys: argv.acceptNewHostKeys ? 'accept-new' : 'strict',
              connectTimeoutSeconds: positive(argv.connectTimeout, '--connect-timeout'),
            },
            remoteDir: argv.remoteDir,
            parallel: positive(argv.parallel, '--parallel'),
            journal: argv.journal,
            resume: argv.resume,
          },
          io,
        );
      },
      {
        human: (r) => formatRolloutResult(r),
        text: (r) =>
          argv.output === 'prometheus' && r.report ? formatReportPrometheus(r.report) : undefined,
        failure: (r) =>
          r.ok
            ? undefined
            : new KfError(
                r.problems[0] ?? 'not every node is at the goal',
                r.mode === 'report'
                  ? 'roll the nodes out (rollout), then report again'
                  : r.mode === 'run'
                    ? r.failedStep
                      ? `fix what stopped it, then run again with --resume (journal ${r.journal}; the state of every node is above)`
                      : r.report
                        ? 'every step is done but a node is not at the goal: see the report above'
                        : 'fix what the problems name (every one is listed above), then run again with --resume; no node was changed'
                    : 'fix what the problems name (every one is listed above), then run again; nothing was changed',
              ),
      },
    ),
});
export default command;
