import { UsageError } from '../core/errors.js';
import { DEFAULT_KUBELET_PKI_DIR, DEFAULT_KUBERNETES_DIR, DEFAULT_PKI_DIR } from '../node/paths.js';
import { defineCommand } from './options.js';
import { commandSummaries } from './catalog.js';
import { jsonDocument } from '../ui/output.js';
import { runCommand } from './run.js';

const OUTPUTS = ['table', 'json', 'prometheus', 'kubeadm-json'] as const;

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
  handler: (argv) =>
    runCommand({ ...argv, json: argv.json || argv.output === 'json' }, async (a, out) => {
      if (!Number.isFinite(a.minYears) || a.minYears < 0) {
        throw new UsageError(
          `invalid --min-years ${JSON.stringify(String(a.minYears))}`,
          'pass a number of years, e.g. --min-years 150',
        );
      }
      const output = a.output ?? (argv.json ? 'json' : 'table');
      if (argv.json && output !== 'json') {
        throw new UsageError(
          `--json and --output ${output} both choose what goes on stdout`,
          'pass only one of them',
        );
      }
      if (a.textfile !== undefined && (a.textfile === '' || a.textfile.endsWith('/'))) {
        throw new UsageError(
          `--textfile ${JSON.stringify(a.textfile)} is not a file path`,
          'pass a file, e.g. --textfile /var/lib/node_exporter/textfile_collector/kubeadm_forever.prom',
        );
      }
      if (a.textfile !== undefined) {
        const { assertOutputFile } = await import('../adapters/fs.js');
        assertOutputFile(a.textfile, {
          flag: '--textfile',
          notUnder: [
            { dir: a.pkiDir, what: '--pki-dir' },
            { dir: a.kubeletDir, what: '--kubelet-dir' },
            { dir: a.kubeconfigDir, what: '--kubeconfig-dir' },
          ],
          example: '/var/lib/node_exporter/textfile_collector/kubeadm_forever.prom',
        });
      }
      // the PKI modules (x509, asn1, tsyringe…) only when a check runs, not for `check --help`
      const [
        { checkPki, formatCheckReport },
        { toKubeadmExpirationInfo },
        { formatPrometheus },
        { replaceFiles, recoveryWarnings },
        { checkLiveApiserver, formatLive, withLive },
      ] = await Promise.all([
        import('../node/pki/check.js'),
        import('../node/pki/check-report-kubeadm.js'),
        import('../node/pki/check-report-prometheus.js'),
        import('../adapters/file-transaction.js'),
        import('../node/pki/live.js'),
      ]);
      const live = await checkLiveApiserver({
        apiserver: a.apiserver,
        pkiDir: a.pkiDir,
        minYears: a.minYears,
      });
      const report = withLive(
        checkPki({
          pkiDir: a.pkiDir,
          kubeconfigDir: a.kubeconfigDir,
          kubeletDir: a.kubeletDir,
          minYears: a.minYears,
        }),
        live,
      );
      // the metrics say what the check found, failed or not: written before the exit code is chosen
      if (a.textfile !== undefined)
        for (const w of recoveryWarnings(
          replaceFiles([{ file: a.textfile, data: formatPrometheus(report), mode: 0o644 }]),
        ))
          out.warn(w);
      if (output === 'json' || output === 'table')
        out.result(report, `${formatCheckReport(report)}\n${formatLive(live)}`);
      else if (output === 'prometheus') process.stdout.write(formatPrometheus(report));
      else
        process.stdout.write(
          `${jsonDocument(toKubeadmExpirationInfo(report, { pkiDir: a.pkiDir, kubeconfigDir: a.kubeconfigDir }), 4)}\n`,
        );
      return report.ok ? 0 : 1;
    }),
});
export default command;
