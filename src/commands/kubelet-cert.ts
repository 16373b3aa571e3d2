import fs from 'node:fs';
import { UsageError } from '../core/errors.js';
import { DEFAULT_KUBELET_PKI_DIR } from '../node/paths.js';
import { DEFAULT_LEAF_VALIDITY, parseValidity } from '../core/validity.js';
import { ALLOW_SHORTER_DESCRIPTION } from '../core/lifetime.js';
import { describeRecovery, recoveryWarnings } from '../adapters/file-transaction.js';
import { defineCommand } from './options.js';
import { commandSummaries } from './catalog.js';
import { runFunction } from './run.js';
import type { CommandIo } from '../core/command-io.js';
import { reporter } from '../core/progress.js';
import { readBoundedStream } from '../adapters/bounded-read.js';
import type { IssuedKubeletCert } from '../node/pki/kubelet.js';
import type { InstalledKubeletCert, KubeletCsr, SignedKubeletCsr } from '../node/pki/kubelet-csr.js';
import { validityOption } from './validity-options.js';

/** What `kubelet-cert` is asked: one of its four steps and their files. */
export interface KubeletCertInput {
  /** node name, as `kubectl get nodes` shows it */
  node: string;
  /** the directory with ca.crt and ca.key (to issue, or with signCsr) */
  pkiDir?: string;
  /** keep a new key (or the pending one) in `out` and give its CSR */
  makeCsr: boolean;
  /** sign the CSR in this file (- : standard input) */
  signCsr?: string;
  /** install the signed certificate in this file (- : standard input) with its pending key */
  install?: string;
  /** with `install`: the CA the certificate must be issued by */
  caFile: string;
  /** the kubelet's certificate directory */
  out: string;
  validity: string;
  allowShorter: boolean;
}

/**
 * The `kubelet-cert --json` document, one per step: the CSR (--make-csr), the signed
 * certificate (--sign-csr), the installed one (--install) or the issued one (the default).
 */
export type KubeletCertResult = KubeletCsr | SignedKubeletCsr | InstalledKubeletCert | IssuedKubeletCert;

const MAX_PEM_INPUT = 64 * 1024;

async function readPemInput(v: string, flag: string, io: CommandIo): Promise<string> {
  if (v === '-') {
    if (!io.stdin) throw new UsageError(`${flag} -: no standard input here`, 'pass a PEM file');
    // one byte past the limit: the step itself refuses a PEM over 64 KiB, naming it
    return readBoundedStream(
      io.stdin,
      MAX_PEM_INPUT + 1,
      () => new UsageError(`${flag} - (standard input) is over 64 KiB`, 'pass one PEM'),
    );
  }
  const st = fs.statSync(v, { throwIfNoEntry: false });
  if (!st?.isFile())
    throw new UsageError(`${flag} ${JSON.stringify(v)} is not a file`, `pass a PEM file or - for stdin`);
  if (st.size > MAX_PEM_INPUT)
    throw new UsageError(`${flag} ${JSON.stringify(v)} is over 64 KiB`, 'pass one PEM');
  return fs.readFileSync(v, 'utf8');
}

/**
 * `kubelet-cert`: a kubelet client certificate (system:node:NODE) issued with the cluster CA and
 * kubelet-client-current.pem pointed at it; or, for a node without the CA key, the three steps
 * apart: make a CSR there, sign it where the CA key is, install the certificate there.
 */
export async function runKubeletCert(input: KubeletCertInput, io: CommandIo): Promise<KubeletCertResult> {
  const out = reporter(io.progress);
  const validity = parseValidity(input.validity, '--validity');
  const modes = [input.makeCsr, input.signCsr !== undefined, input.install !== undefined].filter(
    Boolean,
  ).length;
  if (modes > 1)
    throw new UsageError('--make-csr, --sign-csr and --install are separate steps', 'pass one of them');
  if (input.makeCsr || input.signCsr !== undefined || input.install !== undefined) {
    const csrMod = await import('../node/pki/kubelet-csr.js');
    if (input.makeCsr) return csrMod.makeKubeletCsr({ nodeName: input.node, outDir: input.out });
    if (input.signCsr !== undefined) {
      if (input.pkiDir === undefined)
        throw new UsageError('--sign-csr needs --pki-dir', 'pass the directory with ca.crt and ca.key');
      return csrMod.signKubeletCsr({
        csrPem: await readPemInput(input.signCsr, '--sign-csr', io),
        nodeName: input.node,
        pkiDir: input.pkiDir,
        validity,
        allowShorter: input.allowShorter,
      });
    }
    return csrMod.installKubeletCert({
      certPem: await readPemInput(input.install!, '--install', io),
      outDir: input.out,
      caFile: input.caFile,
      allowShorter: input.allowShorter,
    });
  }
  if (input.pkiDir === undefined)
    throw new UsageError('kubelet-cert needs --pki-dir', 'pass the directory with ca.crt and ca.key');
  const pkiDir = input.pkiDir;
  out.step(`issuing a kubelet client certificate for node ${input.node}`);
  // x509 and the PKI code only when a certificate is issued, not for `kubelet-cert --help`
  const { issueKubeletCert } = await import('../node/pki/kubelet.js');
  const r = await issueKubeletCert({
    nodeName: input.node,
    pkiDir,
    outDir: input.out,
    validity,
    allowShorter: input.allowShorter,
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
  return r;
}

/** For people (and the next step's stdin): the CSR, the certificate, or the file and its link. */
export function formatKubeletCertResult(r: KubeletCertResult): string {
  if ('csr' in r) return r.csr;
  if ('cert' in r) return r.cert;
  return `${r.file}  ${r.subject}  until ${r.notAfter}\n${r.link} -> ${r.file}`;
}

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
  handler: (argv) => runFunction(argv, (io) => runKubeletCert(argv, io), { human: formatKubeletCertResult }),
});
export default command;
