import { sha256Hex } from './digest.js';
import { UsageError } from './errors.js';
import { buildLdflags } from './ldflags.js';
import { goVersionOfImageName, reproducibilityOf } from './reproducible.js';
import { goDurationString, describeValidity } from './validity.js';
import { formatPlatform } from './platform.js';
import { kubeAtLeast, kubeMinorText, parseKubeVersion, parsePlatform } from './version.js';
import type {
  BuildMode,
  BuildModeSource,
  BuildPlan,
  KubeVersion,
  Platform,
  Validities,
  VersionInfo,
} from './types.js';

/** plan (pure): everything the build will do, derived from the version, validities and tree facts. */

/** Where the tree sits inside the build container (GOPATH layout works for both build modes). */
export const CONTAINER_SOURCE_DIR = '/go/src/k8s.io/kubernetes';
export const KUBEADM_PACKAGE = './cmd/kubeadm';
/** Build tags of hack/lib/golang.sh (`selinux,notest` plus any from GOFLAGS). */
export const BUILD_TAGS = 'selinux,notest';
/** Bumped whenever the tool changes how it patches or builds, so old cache entries are not reused. */
export const PLAN_RECIPE_VERSION = 2;

export interface BuildPlanInput {
  version: VersionInfo;
  validity: Validities;
  /** default: the version's own platform (linux/amd64 when unknown) */
  platforms?: Platform[];
  /** from the source tree when one was read; otherwise inferred from the version */
  buildMode?: { mode: BuildMode; source: BuildModeSource };
  /** opaque identity of the source when it is not the commit itself, e.g. "tarball:sha256:..." */
  source?: string;
  /** an image that replaces golang:<go>-alpine (the build's --image) */
  image?: string;
  /**
   * buildDate from the source or SOURCE_DATE_EPOCH (reproducible builds); replaces the
   * version's own buildDate. Absent: the version's buildDate, if any.
   */
  buildDate?: string;
}

/** Refuses kubeadm versions the patch cannot handle (<=1.14: no validity constant). */
export function assertSupportedKube(kube: KubeVersion): void {
  if (kube.major !== 1 || !kubeAtLeast(kube, 1, 15)) {
    throw new UsageError(
      `kubeadm ${kubeMinorText(kube)} is not supported: kubeadm <=1.14 has no CertificateValidity constant to patch (it signs with client-go's file-local duration365d)`,
      'upgrade the cluster to kubeadm 1.15 or later first',
    );
  }
}

/**
 * The build mode when no tree is at hand: kubeadm's official build is GOPATH mode
 * (`GO111MODULE=off` in hack/lib/init.sh) up to 1.29; 1.30 brought go.work and module mode.
 */
export function inferBuildMode(kube: KubeVersion): BuildMode {
  return kubeAtLeast(kube, 1, 30) ? 'module' : 'gopath';
}

/** `golang:1.19.10-alpine` for `go1.19.10`; "" when the Go version is unknown. */
export function goImageFor(goVersion: string): string {
  return goVersion ? `golang:${goVersion.replace(/^go/, '')}-alpine` : '';
}

/** Parses a `--platform` list (`linux/amd64,linux/arm64`, repeated flags allowed), without duplicates. */
export function parsePlatformList(values: string | string[] | undefined): Platform[] {
  const list = (Array.isArray(values) ? values : values === undefined ? [] : [values])
    .flatMap((v) => String(v).split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  const seen = new Map<string, Platform>();
  for (const item of list) {
    const p = parsePlatform(item, '--platform');
    seen.set(formatPlatform(p), p);
  }
  return [...seen.values()];
}

/** JSON with object keys sorted at every level: a stable text to hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The inputs that change a binary for one platform (or for all, when `platforms` is the list). */
function cacheInputs(
  plan: Omit<BuildPlan, 'cacheKey' | 'notes'>,
  platforms: Platform[],
  source: string | undefined,
) {
  return {
    recipe: PLAN_RECIPE_VERSION,
    gitVersion: plan.version.gitVersion,
    gitCommit: plan.version.gitCommit,
    source: source ?? null,
    goVersion: plan.version.goVersion,
    image: plan.image,
    platforms: platforms.map(formatPlatform),
    buildMode: plan.buildMode,
    ldflags: plan.ldflags,
    env: plan.env,
    goFlags: plan.goFlags,
    package: plan.package,
    validity: { leafHours: plan.validity.leaf.hours, caHours: plan.validity.ca.hours },
  };
}

/** sha256 of the canonical JSON of every input that changes the binary of one platform. */
export function platformCacheKey(plan: BuildPlan, platform: Platform, source?: string): string {
  return sha256Hex(canonicalJson(cacheInputs(plan, [platform], source)));
}

/** Builds the plan. Pure: tree facts (build mode) come in through `input`. */
export function createBuildPlan(input: BuildPlanInput): BuildPlan {
  const version = input.version;
  const kube = parseKubeVersion(version.gitVersion);
  assertSupportedKube(kube);
  const notes: string[] = [];

  const platforms = input.platforms && input.platforms.length > 0 ? input.platforms : [];
  if (platforms.length === 0) {
    if (version.platform) platforms.push(parsePlatform(version.platform));
    else {
      platforms.push({ os: 'linux', arch: 'amd64' });
      notes.push('platform unknown: building for linux/amd64 (pass --platform to choose)');
    }
  }
  for (const p of platforms) {
    if (p.os !== 'linux')
      notes.push(`${formatPlatform(p)}: kubeadm is only released for linux; this build is unusual`);
  }

  const buildMode = input.buildMode?.mode ?? inferBuildMode(kube);
  const buildModeSource: BuildModeSource = input.buildMode?.source ?? 'inferred';
  if (buildModeSource === 'inferred') {
    notes.push(
      `build mode ${buildMode} inferred from the version (${buildMode === 'gopath' ? '<=1.29 builds with GO111MODULE=off' : '1.30+ builds in module mode'}); a source tree decides it`,
    );
  }

  const image = input.image ?? goImageFor(version.goVersion);
  if (version.gitTreeState === 'dirty')
    notes.push(`${version.gitVersion} was built from a dirty tree: the source at its commit may differ`);
  if (!version.gitCommit)
    notes.push('commit unknown: build needs it (pass --commit SHA or the full `kubeadm version` output)');
  if (!version.goVersion) {
    notes.push(
      'Go version unknown: no image can be chosen and build needs it (pass --go-version X.Y.Z or the full `kubeadm version` output)',
    );
  }

  const env: Record<string, string> = {
    CGO_ENABLED: '0',
    GOPATH: '/go',
    GOTOOLCHAIN: 'local',
    GOPROXY: 'off',
  };
  if (buildMode === 'gopath') env.GO111MODULE = 'off';
  else {
    env.GO111MODULE = 'on';
    env.GOFLAGS = '-mod=vendor';
  }

  // The Go that really builds: the one an --image names in its tag, else the target's.
  const buildGo = (input.image ? goVersionOfImageName(input.image) : '') || version.goVersion;
  // No -trimpath: the build runs at a fixed container path with the image's fixed GOROOT, so the
  // paths it embeds are the same on every host already, and with Go before 1.20 -trimpath makes
  // the image's precompiled standard library stale (a full std rebuild, ~30 s on 2 cores).
  const goFlags: string[] = [`-tags=${BUILD_TAGS}`];
  for (const n of reproducibilityOf(buildGo).notes) notes.push(`reproducibility: ${n}`);

  const ldflags = buildLdflags(
    input.buildDate !== undefined ? { ...version, buildDate: input.buildDate } : version,
    kube,
    buildMode,
  );

  if (kubeAtLeast(kube, 1, 31)) {
    notes.push(
      `Kubernetes ${kubeMinorText(kube)}: \`kubeadm certs renew\` takes validities from ClusterConfiguration ` +
        '(ConfigMap kube-system/kubeadm-config), where stock kubeadm stored certificateValidityPeriod 8760h0m0s and ' +
        'caCertificateValidityPeriod 87600h0m0s, so the patched constants alone change nothing there. Set ' +
        `certificateValidityPeriod: ${goDurationString(input.validity.leaf.hours)} and caCertificateValidityPeriod: ` +
        `${goDurationString(input.validity.ca.hours)} in that ConfigMap (\`kubeadm-forever renew\` does it with a backup) ` +
        'or pass --config with them; run `kubeadm upgrade` with --certificate-renewal=false or after that fix.',
    );
  }
  notes.push(
    `certificates: leaf ${describeValidity(input.validity.leaf)}, CA ${describeValidity(input.validity.ca)}; ` +
      'kubelet client certificates also need --cluster-signing-duration on kube-controller-manager',
  );

  const partial = {
    version,
    kube,
    validity: input.validity,
    image,
    platforms,
    buildMode,
    buildModeSource,
    ldflags,
    env,
    goFlags,
    buildGoVersion: buildGo,
    package: KUBEADM_PACKAGE,
    containerSourceDir: CONTAINER_SOURCE_DIR,
  };
  const cacheKey = sha256Hex(canonicalJson(cacheInputs(partial, platforms, input.source)));
  return { ...partial, cacheKey, notes };
}

/** Throws, naming the missing flag, when a plan lacks what a build needs (commit, Go version). */
export function assertBuildable(plan: BuildPlan): void {
  if (!plan.version.gitCommit) {
    throw new UsageError(
      `the commit of ${plan.version.gitVersion} is unknown and a build checks out that exact commit`,
      'pass --commit SHA (from `kubeadm version` on the cluster), or use --kubeadm / --version-file',
    );
  }
  if (!plan.version.goVersion || !plan.image) {
    throw new UsageError(
      `the Go version of ${plan.version.gitVersion} is unknown, so no build image can be chosen`,
      'pass --go-version X.Y.Z (GoVersion of `kubeadm version` on the cluster) or --image',
    );
  }
}

/**
 * sha256 of each input's canonical JSON, by name: recorded next to the inputs at build time, so
 * a later change to one recorded input can be named (audit) instead of only "something differs".
 */
export function inputDigests(inputs: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(inputs).sort()) {
    if (inputs[k] !== undefined) out[k] = sha256Hex(canonicalJson(inputs[k]));
  }
  return out;
}
