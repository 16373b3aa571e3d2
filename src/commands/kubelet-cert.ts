import fs from 'node:fs';
import { UsageError } from '../core/errors.js';
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
        describe: 'directory with the cluster ca.crt and ca.key (to issue, or with --sign-csr)',
      })
      .option('make-csr', {
        type: 'boolean',
        default: false,
        describe:
          'on a node without the CA key: keep a new key (or the pending one) in --out and print its CSR for system:node:NODE',
      })
      .option('sign-csr', {
        type: 'string',
        describe:
          'where the CA key is: sign the CSR in this file (--sign-csr=- for stdin) and print the certificate',
      })
      .option('install', {
        type: 'string',
        describe:
          'on the node that made the CSR: install the signed certificate in this file (--install=- for stdin) with its pending key',
      })
      .option('ca-file', {
        type: 'string',
        default: '/etc/kubernetes/pki/ca.crt',
        describe: 'with --install: the CA the certificate must be issued by',
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
      const modes = [a.makeCsr, a.signCsr !== undefined, a.install !== undefined].filter(Boolean).length;
      if (modes > 1)
        throw new UsageError('--make-csr, --sign-csr and --install are separate steps', 'pass one of them');
      const readInput = (v: string, flag: string) => {
        const st = v === '-' ? undefined : fs.statSync(v, { throwIfNoEntry: false });
        if (v !== '-' && !st?.isFile())
          throw new UsageError(
            `${flag} ${JSON.stringify(v)} is not a file`,
            `pass a PEM file or - for stdin`,
          );
        if (st && st.size > 64 * 1024)
          throw new UsageError(`${flag} ${JSON.stringify(v)} is over 64 KiB`, 'pass one PEM');
        return fs.readFileSync(v === '-' ? 0 : v, 'utf8');
      };
      if (a.makeCsr || a.signCsr !== undefined || a.install !== undefined) {
        const csrMod = await import('../node/pki/kubelet-csr.js');
        if (a.makeCsr) {
          const r = await csrMod.makeKubeletCsr({ nodeName: a.node, outDir: a.out });
          out.result(r, r.csr);
        } else if (a.signCsr !== undefined) {
          if (a.pkiDir === undefined)
            throw new UsageError('--sign-csr needs --pki-dir', 'pass the directory with ca.crt and ca.key');
          const r = await csrMod.signKubeletCsr({
            csrPem: readInput(a.signCsr, '--sign-csr'),
            nodeName: a.node,
            pkiDir: a.pkiDir,
            validity,
            allowShorter: a.allowShorter,
          });
          out.result(r, r.cert);
        } else {
          const r = await csrMod.installKubeletCert({
            certPem: readInput(a.install!, '--install'),
            outDir: a.out,
            caFile: a.caFile,
            allowShorter: a.allowShorter,
          });
          out.result(r, `${r.file}  ${r.subject}  until ${r.notAfter}\n${r.link} -> ${r.file}`);
        }
        return;
      }
      if (a.pkiDir === undefined)
        throw new UsageError('kubelet-cert needs --pki-dir', 'pass the directory with ca.crt and ca.key');
      const pkiDir = a.pkiDir;
      out.step(`issuing a kubelet client certificate for node ${a.node}`);
      // x509 and the PKI code only when a certificate is issued, not for `kubelet-cert --help`
      const { issueKubeletCert } = await import('../node/pki/kubelet.js');
      const r = await issueKubeletCert({
        nodeName: a.node,
        pkiDir,
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
