import { UsageError } from '../core/errors.js';
import { DEFAULT_KUBELET_PKI_DIR, DEFAULT_KUBERNETES_DIR, DEFAULT_PKI_DIR } from '../node/paths.js';
import { defineCommand } from './options.js';
import { commandSummaries } from './catalog.js';
import { jsonDocument } from '../ui/output.js';
import { runFunction } from './run.js';
import type { CommandIo } from '../core/command-io.js';
import { reporter } from '../core/progress.js';
import type { CheckReport } from '../node/pki/pki-check.js';
import type { LiveReport } from '../node/pki/live.js';

const OUTPUTS = ['table', 'json', 'prometheus', 'kubeadm-json'] as const;

/** What `check` is asked: where the certificates are, the threshold, the live probe, the metrics file. */
export interface CheckInput {
  /** PKI directory (read recursively) */
  pkiDir: string;
  /** directory with the kubeconfigs (*.conf) */
  kubeconfigDir: string;
  /** the kubelet's certificate directory */
  kubeletDir: string;
  /** fail any certificate with fewer years left */
  minYears: number;
  /** also write the Prometheus metrics to this file */
  textfile?: string;
  /** the API server's served certificate: auto, none or HOST:PORT */
  apiserver: string;
}

/** The `check --json` document: every certificate's row, the live API server's, and every problem. */
export type CheckResult = CheckReport & { live: LiveReport };

/**
 * `check`: expiry, key match and chain of every certificate in the PKI dir, the kubelet dir and
 * the kubeconfigs, and the certificate the API server serves. A certificate short of the goal is
 * in the result (`ok` false), not thrown.
 */
export async function runCheck(input: CheckInput, io: CommandIo): Promise<CheckResult> {
  if (!Number.isFinite(input.minYears) || input.minYears < 0) {
    throw new UsageError(
      `invalid --min-years ${JSON.stringify(String(input.minYears))}`,
      'pass a number of years, e.g. --min-years 150',
    );
  }
  if (input.textfile !== undefined && (input.textfile === '' || input.textfile.endsWith('/'))) {
    throw new UsageError(
      `--textfile ${JSON.stringify(input.textfile)} is not a file path`,
      'pass a file, e.g. --textfile /var/lib/node_exporter/textfile_collector/kubeadm_forever.prom',
    );
  }
  if (input.textfile !== undefined) {
    const { assertOutputFile } = await import('../adapters/fs.js');
    assertOutputFile(input.textfile, {
      flag: '--textfile',
      notUnder: [
        { dir: input.pkiDir, what: '--pki-dir' },
        { dir: input.kubeletDir, what: '--kubelet-dir' },
        { dir: input.kubeconfigDir, what: '--kubeconfig-dir' },
      ],
      example: '/var/lib/node_exporter/textfile_collector/kubeadm_forever.prom',
    });
  }
  // the PKI modules (x509, asn1, tsyringe…) only when a check runs, not for `check --help`
  const [
    { checkPki },
    { formatPrometheus },
    { replaceFiles, recoveryWarnings },
    { checkLiveApiserver, withLive },
  ] = await Promise.all([
    import('../node/pki/pki-check.js'),
    import('../node/pki/check-report-prometheus.js'),
    import('../adapters/file-transaction.js'),
    import('../node/pki/live.js'),
  ]);
  const live = await checkLiveApiserver({
    apiserver: input.apiserver,
    pkiDir: input.pkiDir,
    minYears: input.minYears,
  });
  const report = withLive(
    checkPki({
      pkiDir: input.pkiDir,
      kubeconfigDir: input.kubeconfigDir,
      kubeletDir: input.kubeletDir,
      minYears: input.minYears,
    }),
    live,
  );
  // the metrics say what the check found, failed or not: written before the exit code is chosen
  if (input.textfile !== undefined)
    for (const w of recoveryWarnings(
      replaceFiles([{ file: input.textfile, data: formatPrometheus(report), mode: 0o644 }]),
    ))
      reporter(io.progress).warn(w);
  return report;
}

// The renderings load the modules runCheck loaded (already in memory after it): a command that
// only renders a report pays for them too, and `check --help` never does.

/** The check for people: a table of every certificate, then the live API server. */
export async function formatCheckResult(r: CheckResult): Promise<string> {
  const [{ formatCheckReport }, { formatLive }] = await Promise.all([
    import('../node/pki/pki-check.js'),
    import('../node/pki/live.js'),
  ]);
  return `${formatCheckReport(r)}\n${formatLive(r.live)}`;
}

/** The check as node_exporter textfile metrics (--output prometheus). */
export async function formatCheckPrometheus(r: CheckResult): Promise<string> {
  return (await import('../node/pki/check-report-prometheus.js')).formatPrometheus(r);
}

/** The document of `kubeadm certs check-expiration -o json` (--output kubeadm-json), with its newline. */
export async function formatCheckKubeadmJson(
  r: CheckResult,
  layout: { pkiDir: string; kubeconfigDir: string },
): Promise<string> {
  const { toKubeadmExpirationInfo } = await import('../node/pki/check-report-kubeadm.js');
  return `${jsonDocument(toKubeadmExpirationInfo(r, layout), 4)}\n`;
}

const command = defineCommand({
  ...commandSummaries.check,
  builder: (y) =>
    y
      .option('pki-dir', {
        type: 'string',
        default: DEFAULT_PKI_DIR,
        describe: 'PKI directory (read recursively)',
      })
      .option('kubeconfig-dir', {
        type: 'string',
        default: DEFAULT_KUBERNETES_DIR,
        describe: 'directory with the kubeconfigs (*.conf)',
      })
      .option('kubelet-dir', {
        type: 'string',
        default: DEFAULT_KUBELET_PKI_DIR,
        describe: "the kubelet's certificate directory",
      })
      .option('min-years', {
        type: 'number',
        default: 0,
        describe: 'fail any certificate with fewer years left',
      })
      .option('output', {
        alias: 'o',
        choices: OUTPUTS,
        describe:
          'table (default), json (as --json), prometheus (node_exporter textfile metrics), kubeadm-json (the document of kubeadm certs check-expiration -o json)',
      })
      .option('textfile', {
        type: 'string',
        describe:
          "also write the prometheus metrics to this file, atomically, mode 0644 (node_exporter's textfile collector reads *.prom)",
      })
      .option('apiserver', {
        type: 'string',
        default: 'auto',
        describe:
          "the API server's served certificate: auto (the kube-apiserver process here), none, or HOST:PORT; judged against --pki-dir's ca.crt and apiserver.crt; the probe (connect, TLS handshake, reading the certificate) gives up after 10 s",
      }),
  // --output json is --json: the one JSON document on stdout, errors included
  handler: (argv) => {
    const output = argv.output ?? (argv.json ? 'json' : 'table');
    return runFunction(
      { ...argv, json: argv.json || argv.output === 'json' },
      async (io) => {
        if (argv.json && output !== 'json') {
          throw new UsageError(
            `--json and --output ${output} both choose what goes on stdout`,
            'pass only one of them',
          );
        }
        return runCheck(argv, io);
      },
      {
        human: formatCheckResult,
        text: (r) =>
          output === 'prometheus'
            ? formatCheckPrometheus(r)
            : output === 'kubeadm-json'
              ? formatCheckKubeadmJson(r, { pkiDir: argv.pkiDir, kubeconfigDir: argv.kubeconfigDir })
              : undefined,
        exitCode: (r) => (r.ok ? 0 : 1),
      },
    );
  },
});
export default command;
