import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { sha256Hex } from '../core/digest.js';
import { KfError, UsageError, messageOf } from '../core/errors.js';

/**
 * A `--repo` value as git should see it: URLs as they are, local paths as absolute file://
 * URLs (git ignores --depth for plain-path fetches).
 */
export function repoUrl(repo: string, cwd = process.cwd()): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/\s]+@[^/\s]+:/.test(repo)) return repo;
  // the real path: one repository reached through links gets one mirror in the cache
  let abs: string;
  try {
    abs = fs.realpathSync(path.resolve(cwd, repo));
  } catch {
    throw new UsageError(
      `--repo ${repo}: no such directory (or a link to a missing one) and not a URL`,
      'pass a git URL (https://, ssh://, file://) or the path of a local clone or mirror',
    );
  }
  return `file://${abs}`;
}

/** The bare mirror for a repository: <cache-dir>/git/<first 16 hex of sha256(url)>. */
export function mirrorDir(cacheDir: string, url: string): string {
  return path.join(cacheDir, 'git', sha256Hex(url).slice(0, 16));
}

export interface Checkout {
  /** the checked-out tree (a git worktree of the mirror) */
  dir: string;
  commit: string;
  /** the commit's tree id */
  tree: string;
  /** committer time, seconds since the epoch (the buildDate of a reproducible build) */
  commitTime: number;
  /** removes the worktree; the mirror and its fetched objects stay for next time */
  dispose(): Promise<void>;
}

/** A full, lowercase commit id (what ls-remote and --commit must give). */
const COMMIT_ID = /^[0-9a-f]{40}$/;
/** A release tag as kubeadm reports it (vX.Y.Z[-pre]); anything else never reaches git. */
const TAG = /^v\d+\.\d+\.\d+(?:-[0-9A-Za-z]+(?:[.-][0-9A-Za-z]+)*)?$/;

/** Fetches one commit (depth 1) of `repo` into the bare mirror in the cache, unless it is there already. */
async function fetchIntoMirror(
  repo: string,
  commit: string,
  cacheDir: string,
): Promise<{ git: SimpleGit; mirror: string }> {
  if (!COMMIT_ID.test(commit)) {
    throw new UsageError(
      `commit '${commit}' is not a full 40-hex-digit git commit`,
      'pass the GitCommit that `kubeadm version` reports',
    );
  }
  const url = repoUrl(repo);
  const mirror = mirrorDir(cacheDir, url);
  fs.mkdirSync(mirror, { recursive: true });
  const git: SimpleGit = simpleGit({ baseDir: mirror });
  try {
    if (!fs.existsSync(path.join(mirror, 'HEAD'))) await git.raw(['init', '--bare', '--quiet']);
    // Already fetched by an earlier build? Then no network at all.
    const have = await git
      .raw(['cat-file', '-t', commit])
      .then((t) => t.trim() === 'commit')
      .catch(() => false);
    if (!have)
      await git.raw([
        'fetch',
        '--quiet',
        '--no-tags',
        '--depth',
        '1',
        url,
        `${commit}:refs/kubeadm-forever/${commit}`,
      ]);
  } catch (err) {
    throw new KfError(
      `cannot fetch commit ${commit} from ${repo}: ${lastLine(messageOf(err))}`,
      'check --commit (the GitCommit of your kubeadm) and --repo (a reachable URL or a local mirror that has the commit), or use --source-dir/--source-tarball',
    );
  }
  return { git, mirror };
}

export interface TagCommit {
  commit: string;
  /** true when the tag is an annotated tag object (its commit is the peeled `^{}` entry) */
  annotated: boolean;
}

/**
 * The commit a release tag names in `repo`, from `git ls-remote` (no objects fetched): the
 * peeled `refs/tags/<tag>^{}` entry of an annotated tag, else the tag's own entry.
 */
export async function resolveTagCommit(repo: string, tag: string): Promise<TagCommit> {
  if (!TAG.test(tag))
    throw new UsageError(`'${tag}' is not a release tag (vX.Y.Z)`, 'pass --kubernetes-version vX.Y.Z');
  const url = repoUrl(repo);
  let listing: string;
  try {
    listing = await simpleGit({ baseDir: os.tmpdir() }).listRemote([
      url,
      `refs/tags/${tag}`,
      `refs/tags/${tag}^{}`,
    ]);
  } catch (err) {
    throw new KfError(
      `cannot list the tags of ${repo}: ${lastLine(messageOf(err))}`,
      'check --repo (a reachable git URL or a local mirror), or pass --commit SHA',
    );
  }
  let direct: string | undefined;
  let peeled: string | undefined;
  for (const line of listing.split('\n')) {
    const [sha, ref] = line.trim().split('\t');
    if (!sha || !ref) continue;
    if (ref !== `refs/tags/${tag}` && ref !== `refs/tags/${tag}^{}`) continue;
    if (!COMMIT_ID.test(sha)) {
      throw new KfError(
        `${repo} answered ${JSON.stringify(line.slice(0, 120))} for tag ${tag}: not a commit id`,
        'check --repo, or pass --commit SHA',
      );
    }
    if (ref.endsWith('^{}')) peeled = sha;
    else direct = sha;
  }
  if (!direct && !peeled) {
    throw new KfError(
      `${repo} has no tag ${tag}`,
      'check --kubernetes-version and --repo (a mirror with tags), or pass --commit SHA',
    );
  }
  return { commit: peeled ?? direct!, annotated: peeled !== undefined };
}

/**
 * Small files of one commit (e.g. .go-version), read from the mirror after fetching that commit
 * (depth 1); missing paths are undefined. Each must be a regular file of at most `maxBytes`.
 */
export async function readCommitFiles(opts: {
  repo: string;
  commit: string;
  cacheDir: string;
  paths: readonly string[];
  maxBytes?: number;
}): Promise<Record<string, string | undefined>> {
  const { git } = await fetchIntoMirror(opts.repo, opts.commit, opts.cacheDir);
  const maxBytes = opts.maxBytes ?? 1 << 20;
  const out: Record<string, string | undefined> = {};
  for (const p of opts.paths) out[p] = undefined;
  let listing: string;
  try {
    listing = await git.raw(['ls-tree', '-l', '-z', opts.commit, '--', ...opts.paths]);
  } catch (err) {
    throw new KfError(
      `cannot read commit ${opts.commit}: ${lastLine(messageOf(err))}`,
      'check --repo and --commit',
    );
  }
  for (const rec of listing.split('\0')) {
    const m = /^(\d+) (\w+) ([0-9a-f]{40}) +(\d+|-)\t(.*)$/s.exec(rec);
    if (!m || !(m[5]! in out)) continue;
    if (m[1] !== '100644' && m[1] !== '100755') continue;
    if (Number(m[4]) > maxBytes)
      throw new KfError(
        `${m[5]} in commit ${opts.commit} is ${m[4]} bytes, more than ${maxBytes}`,
        'check the repository',
      );
    out[m[5]!] = await git.raw(['cat-file', 'blob', m[3]!]);
  }
  return out;
}

/**
 * Fetches exactly one commit (depth 1) of `repo` into a bare mirror in the cache and checks it
 * out into `dest` as a detached worktree, then checks that its HEAD is the requested commit.
 */
export async function checkoutCommit(opts: {
  repo: string;
  commit: string;
  cacheDir: string;
  dest: string;
}): Promise<Checkout> {
  const { commit } = opts;
  const { git, mirror } = await fetchIntoMirror(opts.repo, commit, opts.cacheDir);
  try {
    await git.raw(['worktree', 'prune']);
    await git.raw(['worktree', 'add', '--detach', '--force', opts.dest, commit]);
  } catch (err) {
    throw new KfError(
      `cannot check out commit ${commit}: ${lastLine(messageOf(err))}`,
      `check free space under ${path.dirname(opts.dest)} and retry`,
    );
  }
  const dispose = async () => {
    await git.raw(['worktree', 'remove', '--force', opts.dest]).catch(() => undefined);
    fs.rmSync(opts.dest, { recursive: true, force: true });
    await git.raw(['worktree', 'prune']).catch(() => undefined);
  };
  const head = (await simpleGit({ baseDir: opts.dest }).revparse(['HEAD'])).trim();
  if (head !== commit) {
    await dispose();
    throw new KfError(
      `the checkout is at ${head}, not the requested commit ${commit}`,
      `remove the mirror ${mirror} and retry`,
    );
  }
  const [time, tree] = (await git.raw(['show', '-s', '--format=%ct %T', commit])).trim().split(' ');
  return { dir: opts.dest, commit, tree: tree ?? '', commitTime: Number(time), dispose };
}

function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines[lines.length - 1] ?? text;
}
