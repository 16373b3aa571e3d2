import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import { checkPki, formatCheckReport } from '../pki/check.js';
import { checkLiveApiserver, formatLive, withLive } from '../pki/live.js';
import type { GlobalArgs } from './options.js';
import { runCommand } from './run.js';

interface CheckArgs extends GlobalArgs {
  pkiDir: string;
  kubeconfigDir: string;
  kubeletDir: string;
  minYears: number;
  apiserver: string;
}

const command: CommandModule<GlobalArgs, CheckArgs> = {
  command: 'check',
  describe: 'expiry, key match and chain of every certificate in a PKI dir, the kubelet dir and the kubeconfigs',
  builder: (y) =>
    y
      .option('pki-dir', { type: 'string', default: '/etc/kubernetes/pki', describe: 'PKI directory (read recursively)' })
      .option('kubeconfig-dir', { type: 'string', default: '/etc/kubernetes', describe: 'directory with the kubeconfigs (*.conf)' })
      .option('kubelet-dir', { type: 'string', default: '/var/lib/kubelet/pki', describe: "the kubelet's certificate directory" })
      .option('min-years', { type: 'number', default: 0, describe: 'fail any certificate with fewer years left' })
      .option('apiserver', { type: 'string', default: 'auto', describe: "the API server's served certificate: auto (the kube-apiserver process here), none, or HOST:PORT" }) as unknown as Argv<CheckArgs>,
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      if (!Number.isFinite(a.minYears) || a.minYears < 0) {
        throw new UsageError(`invalid --min-years ${JSON.stringify(String(a.minYears))}`, 'pass a number of years, e.g. --min-years 150');
      }
      const live = await checkLiveApiserver({ apiserver: a.apiserver, pkiDir: a.pkiDir, minYears: a.minYears });
      const report = withLive(checkPki({ pkiDir: a.pkiDir, kubeconfigDir: a.kubeconfigDir, kubeletDir: a.kubeletDir, minYears: a.minYears }), live);
      out.result(report, `${formatCheckReport(report)}\n${formatLive(live)}`);
      return report.ok ? 0 : 1;
    }),
};
export default command;
