/**
 * The data that flows through the build pipeline. Pure data only: every stage takes and
 * returns these, so stages can be tested and composed without I/O.
 */

/** What `kubeadm version` told us (any format), validated. */
export interface VersionInfo {
  /** e.g. "v1.24.15" or "v1.31.0-rc.1" */
  gitVersion: string;
  /** 40 lowercase hex digits; "" when unknown (-o short, or --kubernetes-version without --commit) */
  gitCommit: string;
  /** "clean" | "dirty" | "" when unknown */
  gitTreeState: string;
  /** RFC 3339 or "" when unknown */
  buildDate: string;
  /** e.g. "go1.19.10"; "" when unknown (only possible with --kubernetes-version and no --go-version) */
  goVersion: string;
  compiler: string;
  /** "os/arch", e.g. "linux/amd64"; "" when unknown */
  platform: string;
  /** "1" */
  major: string;
  /** "24" (as kubeadm reports it, possibly with a "+") */
  minor: string;
  /** 1.33+ only; "" when absent */
  emulationMajor?: string;
  emulationMinor?: string;
  minCompatibilityMajor?: string;
  minCompatibilityMinor?: string;
}

/** Parsed semantic parts of gitVersion. */
export interface KubeVersion {
  major: number;
  minor: number;
  patch: number;
  /** pre-release suffix without the dash, e.g. "rc.1"; "" when none */
  pre: string;
}

/** A validity, kept in whole hours (kubeadm counts a year as 365 days = 8760 h). */
export interface Validity {
  hours: number;
  /** as the user wrote it, e.g. "199y" */
  text: string;
}

export interface Validities {
  leaf: Validity;
  ca: Validity;
}

/** "gopath": tree at $GOPATH/src/k8s.io/kubernetes with GO111MODULE=off; "module": -mod=vendor. */
export type BuildMode = 'gopath' | 'module';

/** Whether the build mode was read from the source tree or inferred from the version. */
export type BuildModeSource = 'tree' | 'inferred';

export interface Platform {
  os: string;
  arch: string;
}

/** One file the patch changes. */
export interface FilePatch {
  /** path relative to the source root, "/" separated */
  file: string;
  /** which targets were rewritten in it, e.g. ["CertificateValidity"] */
  targets: string[];
  before: string;
  after: string;
}

/** One rewritten target (added for reports: where, what stood there, what stands now). */
export interface TargetChange {
  file: string;
  target: string;
  /** 1-based line of the rewritten expression */
  line: number;
  before: string;
  after: string;
}

export interface TreePatch {
  /** only files whose content changes (empty when the tree is already patched with these values) */
  files: FilePatch[];
  /** unified diff of all files, `a/` and `b/` prefixed */
  diff: string;
  /** every target, changed or already at the wanted value */
  changes: TargetChange[];
  /** what a reader should know about the targets, e.g. that a vendored copy is the one compiled */
  notes?: string[];
}

export interface BuildPlan {
  version: VersionInfo;
  kube: KubeVersion;
  validity: Validities;
  image: string;
  platforms: Platform[];
  buildMode: BuildMode;
  buildModeSource: BuildModeSource;
  /** the full -ldflags value, e.g. "-s -w -X k8s.io/...gitVersion=v1.20.2 ..." */
  ldflags: string;
  /** environment for `go build` (CGO_ENABLED, GO111MODULE, GOFLAGS, GOTOOLCHAIN, ...), without GOOS/GOARCH */
  env: Record<string, string>;
  /** extra `go build` flags besides -ldflags and -o, e.g. ["-tags=selinux,notest"] */
  goFlags: string[];
  /** the Go the flags were chosen for: the --image tag's, else the target's ("" when unknown) */
  buildGoVersion: string;
  /** the package to build, "./cmd/kubeadm" */
  package: string;
  /** absolute path of the tree inside the container */
  containerSourceDir: string;
  /** stable hash of every input that changes the binary */
  cacheKey: string;
  /** human notes, e.g. the 1.31+ kubeadm-config ConfigMap warning */
  notes: string[];
}

/**
 * Where the Kubernetes source comes from: a directory as it is, a tarball, or one git commit.
 * The one source model: the commands name it, the cache identifies it (carry/cache/source-identity.ts),
 * the source stage prepares it (build/source.ts).
 */
export type SourceSpec =
  | { kind: 'dir'; dir: string }
  | { kind: 'tarball'; file: string }
  | { kind: 'git'; repo: string; commit: string };
