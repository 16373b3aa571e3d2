import type { CommandModule } from 'yargs';
import { UsageError } from '../core/errors.js';
import { KEY_TYPES, type KeyType } from '../node/pki/keys.js';
import { DEFAULT_CA_VALIDITY, parseValidity } from '../core/validity.js';
import { ALLOW_SHORTER_DESCRIPTION } from '../core/lifetime.js';
import { describeRecovery, recoveryWarnings } from '../adapters/file-transaction.js';
import { defineCommand, type GlobalFlags } from './options.js';
import { commandSummaries } from './catalog.js';
import { runCommand } from './run.js';
import { nodeProcedureCommands } from './next-steps.js';
import { validityOption } from './validity-options.js';

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
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      const validity = parseValidity(a.validity, '--validity');
      // validated here, not with yargs `choices`, to keep the two-line error contract
      if (!(KEY_TYPES as readonly string[]).includes(a.key)) {
        throw new UsageError(`invalid --key ${JSON.stringify(a.key)}`, `pass --key ${KEY_TYPES.join(', ')}`);
      }
      out.step(`creating three ${a.key} CAs valid ${validity.text} in ${a.out}`);
      // x509 and the PKI code only when a CA is made, not for `ca --help`
      const { caInit } = await import('../node/pki/ca.js');
      const r = await caInit({
        outDir: a.out,
        validity,
        keyType: a.key as KeyType,
        force: a.force,
        allowShorter: a.allowShorter,
      });
      for (const line of describeRecovery(r.recovered)) out.info(line);
      for (const w of recoveryWarnings(r.recovered)) out.warn(w);
      for (const w of r.warnings) out.warn(`${w} (allowed by --allow-shorter)`);
      if (r.backupDir) out.info(`backed up ${r.backedUp.length} existing file(s) to ${r.backupDir}`);
      out.result(r, r.cas.map((c) => `${c.cert}  ${c.subject}  until ${c.notAfter}`).join('\n'));
    }),
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
    runCommand(argv, async (a, out) => {
      const validity = parseValidity(a.validity, '--validity');
      out.step(
        a.newCaDir !== undefined
          ? `installing the extended CAs from ${a.newCaDir} into ${a.pkiDir}`
          : `re-signing the CAs in ${a.pkiDir} with their own keys for ${validity.text}`,
      );
      const { caExtend } = await import('../node/pki/ca.js');
      const r = await caExtend({
        pkiDir: a.pkiDir,
        kubeconfigDir: a.kubeconfigDir,
        backupDir: a.backupDir,
        validity,
        newCaDir: a.newCaDir,
        allowShorter: a.allowShorter,
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
      if (a.newCaDir === undefined) {
        out.info(
          'every other node needs these CA certificates before the old ones expire: copy this pki dir there and run ca extend --new-ca-dir COPY',
        );
      }
      const human = [
        ...r.extended.map((c) => `${c.cert}  ${c.subject}  ${c.oldNotAfter} -> ${c.notAfter}`),
        ...r.unchanged.map((f) => `${f}  already the extended CA`),
        ...r.kubeconfigs.map(
          (k) => `${k.file}  certificate-authority-data updated (${k.clusters.join(', ')})`,
        ),
      ];
      // the CAs are the first step of the control-plane procedure: the rest follows there (a node
      // that installed them with --new-ca-dir may be a worker, where there is nothing to renew)
      if (a.newCaDir === undefined) {
        human.push('', 'next, on this node, with the custom kubeadm (README: "The air-gapped workflow"):');
        human.push(...nodeProcedureCommands({ kubeadm: './kubeadm-custom', from: 'renew' }));
      }
      out.result(r, human.join('\n'));
    }),
});

const command: CommandModule<GlobalFlags, GlobalFlags> = {
  ...commandSummaries.ca,
  builder: (y) => y.command(init).command(extend).demandCommand(1, 'Name a subcommand: init or extend.'),
  handler: () => undefined,
};
export default command;
