import type { Argv, BuilderArguments } from 'yargs';
import { goImageFor } from '../core/plan.js';
import { UsageError } from '../core/errors.js';
import type { GoImageResult, ToolchainSource } from '../build/go-image-to-engine.js';
import type { CommandIo } from '../core/command-io.js';
import { defineCommand, type CamelFlags, type GlobalFlags } from './options.js';
import { commandSummaries } from './catalog.js';
import { runFunction } from './run.js';

type ImageArgs = BuilderArguments<typeof builder>;

/** What `image` is asked: its flags (camel-case), as yargs gives them. */
export type ImageInput = Omit<CamelFlags<ImageArgs>, 'json' | 'verbose' | 'cacheDir'>;

/** The `image --json` document: the image made (or kept). */
export type ImageResult = GoImageResult;

const list = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];

function toolchainSource(input: ImageInput): ToolchainSource {
  const debs = list(input.deb);
  if (input.goroot !== undefined && debs.length > 0)
    throw new UsageError(
      '--goroot and --deb both given',
      "pass one: a GOROOT directory, or Debian's golang-1.NN-go and golang-1.NN-src .deb files",
    );
  if (input.goroot !== undefined) return { kind: 'goroot', dir: String(input.goroot) };
  if (debs.length > 0) return { kind: 'debs', files: debs };
  throw new UsageError(
    'no Go toolchain given',
    'pass --goroot DIR (e.g. /usr/lib/go-1.19) or --deb golang-1.NN-go_….deb --deb golang-1.NN-src_….deb',
  );
}

/** The image for people: what was made and how build finds it, or that it was kept. */
export function formatImageResult(r: ImageResult): string {
  const picked = r.goVersion ? goImageFor(r.goVersion) : '';
  const next = r.tags.includes(picked)
    ? `next: kubeadm-forever build --go-version ${r.goVersion.slice(2)} … finds ${picked} by that name`
    : `next: pass it to kubeadm-forever build as --image ${r.tags[0]}`;
  const human = r.created
    ? [
        `made ${r.tags.join(', ')} (${r.id.slice(7, 19)}): ${r.goVersion}, ${r.files} files, ${Math.round(r.bytes / 1e6)} MB${r.libraries.length ? `, with ${r.libraries.join(' ')}` : ''}`,
        next,
      ]
    : [`${r.tags.join(', ')} already present (${r.id.slice(7, 19)}): kept, nothing made`];
  return human.join('\n');
}

/** `image`: a Go builder image made from a local Go toolchain, on the Docker engine of `io.env`. */
export async function runImage(input: ImageInput, io: CommandIo): Promise<ImageResult> {
  const source = toolchainSource(input);
  // dockerode and the image builder only when an image is made, not for `image --help`
  const [{ connectDocker }, { makeGoImage }] = await Promise.all([
    import('../adapters/docker.js'),
    import('../build/go-image-to-engine.js'),
  ]);
  const docker = await connectDocker(io.env);
  return makeGoImage(docker, {
    source,
    goVersion: input.goVersion,
    tags: list(input.tag),
    busybox: input.busybox,
    keepExisting: input.keepExisting,
    progress: io.progress,
  });
}

const builder = (y: Argv<GlobalFlags>) =>
  y
    .option('goroot', {
      type: 'string',
      describe:
        "a Go root on this host, e.g. /usr/lib/go-1.19 (Debian's links into /usr/share/go-1.NN are followed)",
    })
    .option('deb', {
      type: 'string',
      array: true,
      describe: "Debian's golang-1.NN-go and golang-1.NN-src .deb files (repeat the flag)",
    })
    .option('go-version', {
      type: 'string',
      describe:
        "X.Y.Z; read from the toolchain's VERSION file, so needed only where it has none (must match it)",
    })
    .option('tag', {
      type: 'string',
      array: true,
      describe: 'image name(s); default golang:<go>-alpine, the name build looks for',
    })
    .option('busybox', {
      type: 'string',
      default: '/bin/busybox',
      describe: "a static busybox for /bin/sh and the file tools (Debian's busybox-static)",
    })
    .option('keep-existing', {
      type: 'boolean',
      default: false,
      describe: 'when every tag already names an image, keep it and make nothing',
    });

const command = defineCommand({
  ...commandSummaries.image,
  builder,
  handler: (argv) => runFunction(argv, (io) => runImage(argv, io), { human: formatImageResult }),
});
export default command;
