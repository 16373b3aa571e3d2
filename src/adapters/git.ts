import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { KfError, UsageError, messageOf } from '../errors.js';

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
    throw new UsageError(`--repo ${repo}: no such directory (or a link to a missing one) and not a URL`, 'pass a git URL (https://, ssh://, file://) or the path of a local clone or mirror');
  }
  return `file://${abs}`;
}

/** The bare mirror for a repository: <cache-dir>/git/<first 16 hex of sha256(url)>. */
export function mirrorDir(cacheDir: string, url: string): string {
  return path.join(cacheDir, 'git', createHash('sha256').update(url).digest('hex').slice(0, 16));
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

/**
 * Fetches exactly one commit (depth 1) of `repo` into a bare mirror in the cache and checks it
 * out into `dest` as a detached worktree, then checks that its HEAD is the requested commit.
 */
export async function checkoutCommit(opts: { repo: string; commit: string; cacheDir: string; dest: string }): Promise<Checkout> {
  const { commit } = opts;
  if (!/^[0-9a-f]{40}$/.test(commit)) {
    throw new UsageError(`commit '${commit}' is not a full 40-hex-digit git commit`, 'pass the GitCommit that `kubeadm version` reports');
  }
  const url = repoUrl(opts.repo);
  const mirror = mirrorDir(opts.cacheDir, url);
  fs.mkdirSync(mirror, { recursive: true });
  const git: SimpleGit = simpleGit({ baseDir: mirror });
  try {
    if (!fs.existsSync(path.join(mirror, 'HEAD'))) await git.raw(['init', '--bare', '--quiet']);
    // Already fetched by an earlier build? Then no network at all.
    const have = await git
      .raw(['cat-file', '-t', commit])
      .then((t) => t.trim() === 'commit')
      .catch(() => false);
    if (!have) await git.raw(['fetch', '--quiet', '--no-tags', '--depth', '1', url, `${commit}:refs/kubeadm-forever/${commit}`]);
  } catch (err) {
    throw new KfError(
      `cannot fetch commit ${commit} from ${opts.repo}: ${lastLine(messageOf(err))}`,
      'check --commit (the GitCommit of your kubeadm) and --repo (a reachable URL or a local mirror that has the commit), or use --source-dir/--source-tarball',
    );
  }
  try {
    await git.raw(['worktree', 'prune']);
    await git.raw(['worktree', 'add', '--detach', '--force', opts.dest, commit]);
  } catch (err) {
    throw new KfError(`cannot check out commit ${commit}: ${lastLine(messageOf(err))}`, `check free space under ${path.dirname(opts.dest)} and retry`);
  }
  const dispose = async () => {
    await git.raw(['worktree', 'remove', '--force', opts.dest]).catch(() => undefined);
    fs.rmSync(opts.dest, { recursive: true, force: true });
    await git.raw(['worktree', 'prune']).catch(() => undefined);
  };
  const head = (await simpleGit({ baseDir: opts.dest }).revparse(['HEAD'])).trim();
  if (head !== commit) {
    await dispose();
    throw new KfError(`the checkout is at ${head}, not the requested commit ${commit}`, `remove the mirror ${mirror} and retry`);
  }
  const [time, tree] = (await git.raw(['show', '-s', '--format=%ct %T', commit])).trim().split(' ');
  return { dir: opts.dest, commit, tree: tree ?? '', commitTime: Number(time), dispose };
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? text;
}
