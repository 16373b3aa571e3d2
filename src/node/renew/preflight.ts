import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { KfError } from '../../core/errors.js';
import { isFileReadError, readBoundedFile, readBoundedText } from '../../adapters/bounded-read.js';
import { HOUR_MS } from '../../core/validity.js';
import { enforceLifetimes, lifetimeViolations, outlivesIssuer } from '../../core/lifetime.js';
import { decodeCertData, kubeconfigCertRefs } from '../pki/kubeconfig.js';
import { probeKubeadm, type KubeadmBinary } from './kubeadm.js';
import {
  caCertificates,
  controlPlaneComponents,
  requiredPkiFiles,
  renewedKubeconfigs,
  type NodeLayout,
} from './node.js';

export interface ManifestImage {
  component: string;
  image: string;
  /** the tag after the last ':' of the image name; "" when untagged */
  tag: string;
}

/** The container images of one static pod manifest (pure). */
export function manifestImages(component: string, yamlText: string): ManifestImage[] {
  let doc: unknown;
  try {
    doc = parseYaml(yamlText);
  } catch {
    return [];
  }
  const containers = (doc as { spec?: { containers?: unknown } } | null)?.spec?.containers;
  if (!Array.isArray(containers)) return [];
  return containers
    .map((c) => (c as { image?: unknown }).image)
    .filter((image): image is string => typeof image === 'string')
    .map((image) => {
      const name = image.split('@')[0] ?? image;
      const slash = name.lastIndexOf('/');
      const colon = name.lastIndexOf(':');
      return { component, image, tag: colon > slash ? name.slice(colon + 1) : '' };
    });
}

/**
 * The kubeadm binary must be the version the control plane runs (its images are tagged with
 * kubeadm's gitVersion; etcd has its own versions and is not compared). Returns warnings.
 */
export function compareVersions(gitVersion: string, images: ManifestImage[], manifestsDir: string): string[] {
  const kube = images.filter((i) => i.component !== 'etcd' && i.tag !== '');
  if (kube.length === 0) {
    return [
      `no tagged control-plane images in ${manifestsDir}: cannot confirm that kubeadm ${gitVersion} matches the cluster`,
    ];
  }
  const other = kube.find((i) => i.tag !== gitVersion);
  if (other) {
    throw new KfError(
      `kubeadm is ${gitVersion} but ${other.component} runs ${other.image}`,
      `build the custom kubeadm for ${other.tag} (\`kubeadm-forever build --kubernetes-version ${other.tag}\`) and pass it with --kubeadm`,
    );
  }
  return [];
}

export interface CaExpiry {
  file: string;
  notAfter: string;
  /** true when it ends before renewed leaf certificates would */
  shorterThanLeaf: boolean;
}

export interface PreflightResult {
  kubeadm: KubeadmBinary;
  localEtcd: boolean;
  images: ManifestImage[];
  cas: CaExpiry[];
  warnings: string[];
}

/** NotAfter of the certificates `certs renew all` replaces (pki leaves, kubeconfig client certificates). */
function renewedNotAfters(layout: NodeLayout, localEtcd: boolean): { name: string; notAfter: Date }[] {
  const out: { name: string; notAfter: Date }[] = [];
  const cas = new Set(caCertificates(localEtcd));
  for (const rel of requiredPkiFiles(localEtcd).filter((f) => f.endsWith('.crt') && !cas.has(f))) {
    try {
      out.push({
        name: rel,
        notAfter: new Date(
          new X509Certificate(readBoundedFile(path.join(layout.pkiDir, rel), 'certificate')).validTo,
        ),
      });
    } catch (err) {
      // a FIFO or a device is refused, not passed over: kubeadm would hang on it too
      if (isFileReadError(err) && err.refused) throw err;
      // unreadable: kubeadm renews it anyway, and there is no lifetime to keep
    }
  }
  for (const conf of renewedKubeconfigs) {
    const file = path.join(layout.kubernetesDir, conf);
    try {
      for (const ref of kubeconfigCertRefs(readBoundedText(file, 'kubeconfig'), file)) {
        const cert = ref.kind === 'client' && ref.data ? decodeCertData(ref.data) : undefined;
        if (cert) out.push({ name: `${conf} (${ref.entry})`, notAfter: new Date(cert.validTo) });
      }
    } catch (err) {
      if (isFileReadError(err) && err.refused) throw err;
      // as above
    }
  }
  return out;
}

/** Everything renew checks before it changes anything; throws a KfError on the first problem. */
export async function preflight(
  layout: NodeLayout,
  opts: { kubeadm: string; leafHours: number; leafText: string; allowShorter?: boolean; now?: Date },
): Promise<PreflightResult> {
  const warnings: string[] = [];
  if (!fs.existsSync(layout.pkiDir)) {
    throw new KfError(
      `no PKI dir at ${layout.pkiDir}`,
      'run renew on a control-plane node, or pass --kubernetes-dir',
    );
  }
  const localEtcd = fs.existsSync(path.join(layout.manifestsDir, 'etcd.yaml'));
  const missing = requiredPkiFiles(localEtcd)
    .map((f) => path.join(layout.pkiDir, f))
    .concat(renewedKubeconfigs.map((f) => path.join(layout.kubernetesDir, f)))
    .filter((f) => !fs.existsSync(f));
  if (missing.length > 0) {
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : '';
    throw new KfError(
      `missing ${missing[0]}${more}: this is not a complete kubeadm control plane`,
      'restore the file from a backup (`renew --rollback BACKUP`) or recreate it with `kubeadm init phase certs`/`kubeconfig`',
    );
  }

  const kubeadm = await probeKubeadm(opts.kubeadm);

  const images: ManifestImage[] = [];
  for (const component of controlPlaneComponents) {
    const file = path.join(layout.manifestsDir, `${component}.yaml`);
    if (fs.existsSync(file)) images.push(...manifestImages(component, readBoundedText(file, 'manifest')));
  }
  warnings.push(...compareVersions(kubeadm.gitVersion, images, layout.manifestsDir));

  const now = opts.now ?? new Date();
  const leafEnd = new Date(now.getTime() + opts.leafHours * HOUR_MS);
  const leafName = `${opts.leafText} leaf certificates renewed now`;
  const cas: CaExpiry[] = [];
  const violations: string[] = [];
  for (const rel of caCertificates(localEtcd)) {
    const file = path.join(layout.pkiDir, rel);
    let notAfter: Date;
    try {
      notAfter = new Date(new X509Certificate(readBoundedFile(file, 'certificate')).validTo);
    } catch (err) {
      if (isFileReadError(err)) throw err;
      throw new KfError(
        `${file} is not a PEM certificate`,
        'restore it from a backup; renew does not replace CAs',
      );
    }
    cas.push({ file, notAfter: notAfter.toISOString(), shorterThanLeaf: outlivesIssuer(leafEnd, notAfter) });
    violations.push(
      ...lifetimeViolations({ name: leafName, notAfter: leafEnd, issuer: { name: rel, notAfter } }),
    );
  }
  for (const current of renewedNotAfters(layout, localEtcd)) {
    violations.push(
      ...lifetimeViolations({ name: `the renewed ${current.name}`, notAfter: leafEnd, current }),
    );
  }
  warnings.push(
    ...enforceLifetimes(
      violations,
      opts.allowShorter ?? false,
      `extend the CAs first (\`kubeadm-forever ca extend --pki-dir ${layout.pkiDir}\`) and pass the --validity the custom kubeadm issues`,
    ).map((v) => `${v} (allowed by --allow-shorter)`),
  );
  return { kubeadm, localEtcd, images, cas, warnings };
}
