import type { CommandModule } from 'yargs';
import { UsageError } from '../core/errors.js';
import { KEY_TYPES, type KeyType } from '../node/pki/keys.js';
import { DEFAULT_CA_VALIDITY, parseValidity } from '../core/validity.js';
import { ALLOW_SHORTER_DESCRIPTION } from '../core/lifetime.js';
import { describeRecovery, recoveryWarnings } from '../adapters/file-transaction.js';
import { defineCommand, type GlobalFlags } from './options.js';
import { commandSummaries } from './catalog.js';
import { runFunction } from './run.js';
import type { CommandIo } from '../core/command-io.js';
import { reporter } from '../core/progress.js';
import type { CaExtendResult, CaInitResult } from '../node/pki/ca.js';

export type { CaExtendResult, CaInitResult };
import { nodeProcedureCommands } from './next-steps.js';
import { validityOption } from './validity-options.js';

/** What `ca init` is asked. */
export interface CaInitInput {
  /** directory to write the CAs into */
  out: string;
  /** CA validity, e.g. 200y */
  validity: string;
  /** key type, e.g. rsa-2048 */
  key: string;
  /** replace existing CA files (backed up first) */
  force: boolean;
  allowShorter: boolean;
}

/** `ca init`: three new CAs laid out like /etc/kubernetes/pki; existing ones only replaced with `force`. */
export async function runCaInit(input: CaInitInput, io: CommandIo): Promise<CaInitResult> {
  const out = reporter(io.progress);
  const validity = parseValidity(input.validity, '--validity');
  // validated here, not with yargs `choices`, to keep the two-line error contract
  if (!(KEY_TYPES as readonly string[]).includes(input.key)) {
    throw new UsageError(`invalid --key ${JSON.stringify(input.key)}`, `pass --key ${KEY_TYPES.join(', ')}`);
  }
  out.step(`creating three ${input.key} CAs valid ${validity.text} in ${input.out}`);
  // x509 and the PKI code only when a CA is made, not for `ca --help`
  const { caInit } = await import('../node/pki/ca.js');
  const r = await caInit({
    outDir: input.out,
    validity,
    keyType: input.key as KeyType,
    force: input.force,
    allowShorter: input.allowShorter,
  });
  for (const line of describeRecovery(r.recovered)) out.info(line);
  for (const w of recoveryWarnings(r.recovered)) out.warn(w);
  for (const w of r.warnings) out.warn(`${w} (allowed by --allow-shorter)`);
  if (r.backupDir) out.info(`backed up ${r.backedUp.length} existing file(s) to ${r.backupDir}`);
  return r;
}

/** The new CAs for people: file, subject, end. */
export function formatCaInitResult(r: CaInitResult): string {
  return r.cas.map((c) => `${c.cert}  ${c.subject}  until ${c.notAfter}`).join('\n');
}

/** What `ca extend` is asked. */
export interface CaExtendInput {
  /** the cluster PKI, e.g. /etc/kubernetes/pki */
  pkiDir: string;
  kubeconfigDir?: string;
  backupDir?: string;
  /** new CA validity from now */
  validity: string;
  /** on a node without the CA keys: install the CAs ca extend wrote elsewhere */
  newCaDir?: string;
  allowShorter: boolean;
}

/**
 * `ca extend`: the existing CAs re-signed with their own keys for a new validity (or, with
 * `newCaDir`, installed from a node that did), kubeconfigs given the new CA data.
 */
export async function runCaExtend(input: CaExtendInput, io: CommandIo): Promise<CaExtendResult> {
  const out = reporter(io.progress);
  const validity = parseValidity(input.validity, '--validity');
  out.step(
    input.newCaDir !== undefined
      ? `installing the extended CAs from ${input.newCaDir} into ${input.pkiDir}`
      : `re-signing the CAs in ${input.pkiDir} with their own keys for ${validity.text}`,
  );
  const { caExtend } = await import('../node/pki/ca.js');
  const r = await caExtend({
    pkiDir: input.pkiDir,
    kubeconfigDir: input.kubeconfigDir,
    backupDir: input.backupDir,
    validity,
    newCaDir: input.newCaDir,
    allowShorter: input.allowShorter,
  });
  out.succeed();
  for (const line of describeRecovery(r.recovered)) out.info(line);
  for (const w of recoveryWarnings(r.recovered)) out.warn(w);
  for (const w of r.warnings) out.warn(`${w} (allowed by --allow-shorter)`);
  if (!r.kubeconfigDir)
    out.warn('no kubeconfig directory (pass --kubeconfig-dir): kubeconfigs were not updated');
  for (const u of r.kubeconfigsUnmatched) {
    out.warn(
      `${u.file}: cluster(s) ${u.clusters.join(', ')} embed a CA that is none of these; left unchanged`,
    );
  }
  out.info(`old certificates and kubeconfigs backed up to ${r.backupDir}`);
  if (input.newCaDir === undefined) {
    out.info(
      'every other node needs these CA certificates before the old ones expire: copy this pki dir there and run ca extend --new-ca-dir COPY',
    );
  }
  return r;
}

/**
 * The extension for people: each CA's old and new end, the kubeconfigs updated and, on the node
 * that re-signed them (not `installed` from a copy), the rest of the node procedure.
 */
export function formatCaExtendResult(r: CaExtendResult, opts: { installed: boolean }): string {
  const human = [
    ...r.extended.map((c) => `${c.cert}  ${c.subject}  ${c.oldNotAfter} -> ${c.notAfter}`),
    ...r.unchanged.map((f) => `${f}  already the extended CA`),
    ...r.kubeconfigs.map((k) => `${k.file}  certificate-authority-data updated (${k.clusters.join(', ')})`),
  ];
  // the CAs are the first step of the control-plane procedure: the rest follows there (a node
  // that installed them with --new-ca-dir may be a worker, where there is nothing to renew)
  if (!opts.installed) {
    human.push('', 'next, on this node, with the custom kubeadm (README: "The air-gapped workflow"):');
    human.push(...nodeProcedureCommands({ kubeadm: './kubeadm-custom', from: 'renew' }));
  }
  return human.join('\n');
}

const init = defineCommand({
  command: 'init',
  describe: 'create ca, etcd/ca and front-proxy-ca (laid out like /etc/kubernetes/pki)',
  builder: (y) =>
    y
      .option('out', { type: 'string', demandOption: true, describe: 'directory to write the CAs into' })
      .option('validity', validityOption(DEFAULT_CA_VALIDITY, 'CA validity: y (365 days), d or h'))
      .option('key', {
        type: 'string',
        default: 'rsa-2048',
        describe: `key type: ${KEY_TYPES.join(', ')} (kubeadm uses rsa-2048)`,
      })
      .option('force', {
        type: 'boolean',
        default: false,
        describe: 'replace existing CA files (backed up first)',
      })
      .option('allow-shorter', {
        type: 'boolean',
        default: false,
        describe: ALLOW_SHORTER_DESCRIPTION,
      }),
  handler: (argv) => runFunction(argv, (io) => runCaInit(argv, io), { human: formatCaInitResult }),
});

const extend = defineCommand({
  command: 'extend',
  describe:
    're-sign the existing CAs with their own keys for a new validity; kubeconfigs get the new CA data',
  builder: (y) =>
    y
      .option('pki-dir', {
        type: 'string',
        demandOption: true,
        describe: 'the cluster PKI, e.g. /etc/kubernetes/pki',
      })
      .option('kubeconfig-dir', {
        type: 'string',
        describe: 'kubeconfigs (*.conf) whose certificate-authority-data to update',
        defaultDescription: 'the parent of --pki-dir when it is named pki',
      })
      .option('backup-dir', {
        type: 'string',
        describe: 'where the old files go',
        defaultDescription: '<pki-dir>-backup-<UTC timestamp>',
      })
      .option(
        'validity',
        validityOption(DEFAULT_CA_VALIDITY, 'new CA validity from now: y (365 days), d or h'),
      )
      .option('new-ca-dir', {
        type: 'string',
        describe:
          'on a node without the CA keys: install the CAs ca extend wrote on a control-plane node (a copy of its pki dir)',
      })
      .option('allow-shorter', {
        type: 'boolean',
        default: false,
        describe: ALLOW_SHORTER_DESCRIPTION,
      }),
  handler: (argv) =>
    runFunction(argv, (io) => runCaExtend(argv, io), {
      human: (r) => formatCaExtendResult(r, { installed: argv.newCaDir !== undefined }),
    }),
});

const command: CommandModule<GlobalFlags, GlobalFlags> = {
  ...commandSummaries.ca,
  builder: (y) => y.command(init).command(extend).demandCommand(1, 'Name a subcommand: init or extend.'),
  handler: () => undefined,
};
export default command;
