import { DEFAULT_KUBELET_PKI_DIR } from '../node/paths.js';
import { DEFAULT_LEAF_VALIDITY, parseValidity } from '../core/validity.js';
import { ALLOW_SHORTER_DESCRIPTION } from '../core/lifetime.js';
import { describeRecovery, recoveryWarnings } from '../adapters/file-transaction.js';
import { defineCommand } from './options.js';
import { commandSummaries } from './catalog.js';
import { runCommand } from './run.js';
import { validityOption } from './validity-options.js';

const command = defineCommand({
  ...commandSummaries['kubelet-cert'],
  builder: (y) =>
    y
      .option('node', {
        type: 'string',
        demandOption: true,
        describe: 'node name, as `kubectl get nodes` shows it',
      })
      .option('pki-dir', {
        type: 'string',
        demandOption: true,
        describe: 'directory with the cluster ca.crt and ca.key',
      })
      .option('out', {
        type: 'string',
        default: DEFAULT_KUBELET_PKI_DIR,
        describe: "the kubelet's certificate directory",
      })
      .option('validity', validityOption(DEFAULT_LEAF_VALIDITY, 'validity: y (365 days), d or h'))
      .option('allow-shorter', {
        type: 'boolean',
        default: false,
        describe: ALLOW_SHORTER_DESCRIPTION,
      }),
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      const validity = parseValidity(a.validity, '--validity');
      out.step(`issuing a kubelet client certificate for node ${a.node}`);
      // x509 and the PKI code only when a certificate is issued, not for `kubelet-cert --help`
      const { issueKubeletCert } = await import('../node/pki/kubelet.js');
      const r = await issueKubeletCert({
        nodeName: a.node,
        pkiDir: a.pkiDir,
        outDir: a.out,
        validity,
        allowShorter: a.allowShorter,
      });
      out.succeed();
      for (const line of describeRecovery(r.recovered)) out.info(line);
      for (const w of recoveryWarnings(r.recovered)) out.warn(w);
      for (const w of r.warnings) out.warn(`${w} (allowed by --allow-shorter)`);
      if (r.replacedFileBackup)
        out.info(`the previous ${r.link} (a plain file) was saved as ${r.replacedFileBackup}`);
      out.info(
        `the kubelet rotates this certificate through CSRs; to keep rotated ones as long-lived, run kube-controller-manager with --cluster-signing-duration=${r.clusterSigningDuration}`,
      );
      out.result(r, `${r.file}  ${r.subject}  until ${r.notAfter}\n${r.link} -> ${r.file}`);
    }),
});
export default command;
