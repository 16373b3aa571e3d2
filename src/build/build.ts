import { PassThrough, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { packFiles } from '../adapters/archive.js';
import type { SourceSelection } from '../adapters/package-closure.js';
import { withBuildContainer, type BuildContainer } from '../adapters/build-container.js';
import type { BuildPlan, Platform } from '../core/types.js';
import { GO_CACHE_DIR, goBuildInvocation } from '../core/go-invocation.js';
import { KfError } from '../core/errors.js';
import { reporter, type Progress } from '../core/progress.js';
import { checkMarker, SOURCE_MARKER_FILE, sourceMarker } from '../core/source-volume.js';
import type { PreparedSource } from './source.js';

/** The source volume one build mounts at the plan's container source dir. */
export interface SourceVolumeUse {
  name: string;
  /** the source's content id (core/source-volume.ts); the marker must name it */
  contentId: string;
  /** the files to fill it with */
  selection: SourceSelection;
  /** core/source-volume.ts filledDigest of `selection` (pristine); the marker must record it */
  filesDigest: string;
  /** called once when the volume has to be filled (first build of this source) */
  onFill?: () => void;
  /** called once when another build holds the volume and this one waits */
  onWait?: (holder: string) => void;
}

export interface ContainerBuildInput {
  docker: Docker;
  plan: BuildPlan;
  /** the image to run (already present on the engine) */
  image: string;
  platform: Platform;
  /** the tree: streamed into the volume or the container from where it is (a directory, a tarball) */
  source: Pick<PreparedSource, 'pack' | 'sizeOf'>;
  /**
   * every patch target file, patched or pristine (core/source-volume.ts overlayFiles), by path
   * relative to the tree: written over the source volume, or overlaid in the tar stream
   */
  overlay: ReadonlyMap<string, string>;
  /** absent: the tree is streamed into the container itself (no volume is kept) */
  sourceVolume?: SourceVolumeUse;
  goCacheVolume: string;
  /**
   * detail: each line of build output; progress: how far the current step is (bytes streamed,
   * packages compiled); a failed build: fail, then its last lines as info (without goVerbose,
   * which has shown them all already)
   */
  progress?: Progress;
  /**
   * --verbose: `go build -v`, whose package names arrive through onLine. Not part of the plan
   * (nor of the manifest's recorded arguments): it only prints, it cannot change the bytes.
   */
  goVerbose?: boolean;
  /** the tree is in place and `go build` starts now */
  onCompile?: () => void;
}

const MB = 1024 * 1024;

/** Counts the bytes of a tar stream on their way to the engine, against the files' total size. */
function counted(tar: Readable, totalBytes: number, progress: Required<Progress>): Readable {
  let sent = 0;
  const through = new PassThrough();
  tar.on('data', (chunk: Buffer) => {
    sent += chunk.length;
    progress.progress(`${(sent / MB).toFixed(1)}/${(totalBytes / MB).toFixed(1)} MB`);
  });
  tar.on('error', (err) => through.destroy(err));
  return tar.pipe(through);
}

/**
 * build: one container per platform from the plan's image, `go build` with the plan's env and
 * flags, the Go cache in a named volume, no bind mount (a remote DOCKER_HOST works).
 *
 * The tree: with a source volume, it is streamed (putArchive) into the volume only when the
 * volume's marker does not name this source yet; every later build of the same source writes
 * just the patch target files over it. Without one, the whole tree goes into the container's
 * own layer each time. `withBinary` runs while the container still exists (to copy the binary
 * out); the container is removed afterwards in every case.
 *
 * The patch target files in a source volume belong to one build at a time: the container is
 * named after the volume, so the engine itself refuses a second one (whatever host or cache
 * dir it comes from) and that build waits until the first container is removed.
 */
export async function buildInContainer<T>(
  input: ContainerBuildInput,
  withBinary: (c: BuildContainer, path: string) => Promise<T>,
): Promise<T> {
  const go = goBuildInvocation(input.plan, input.platform);
  const progress = reporter(input.progress);
  const sourceDir = input.plan.containerSourceDir;
  const prefix = sourceDir.replace(/^\//, '');
  const outDir = go.output.slice(1, go.output.lastIndexOf('/'));
  const volumes: Record<string, string> = { [input.goCacheVolume]: GO_CACHE_DIR };
  if (input.sourceVolume) volumes[input.sourceVolume.name] = sourceDir;
  const name = input.sourceVolume ? `${input.sourceVolume.name}-build` : undefined;
  const cmd = input.goVerbose ? [go.cmd[0]!, go.cmd[1]!, '-v', ...go.cmd.slice(2)] : go.cmd;
  const spec = { image: input.image, cmd, env: go.env, workingDir: go.workingDir, volumes, name };
  return withBuildContainer(
    input.docker,
    spec,
    async (container) => {
      const vol = input.sourceVolume;
      const verdict = vol
        ? checkMarker(
            await container.readTextFile(`${sourceDir}/${SOURCE_MARKER_FILE}`),
            vol.contentId,
            vol.filesDigest,
          )
        : undefined;
      if (vol && verdict?.action === 'refuse') {
        throw new KfError(
          `source volume ${vol.name} does not hold this source: ${verdict.reason}; a build never uses or mixes another tree's files`,
          `remove the volume (kubeadm-forever cache volumes --remove, or docker volume rm ${vol.name}) and build again, or pass --no-source-volume`,
        );
      }
      if (vol && verdict?.action === 'reuse') {
        const files = new Map([...input.overlay].map(([rel, text]) => [`${prefix}/${rel}`, text] as const));
        await container.putArchive(packFiles(files, [outDir]), '/');
      } else if (vol) {
        vol.onFill?.();
        const selection = vol.selection;
        // the overlay files are in the closure of kubeadm; added anyway, should that change
        const files = [...new Set([...selection.files, ...input.overlay.keys()])].sort();
        const tar = input.source.pack({
          prefix,
          selection: { files, symlinks: selection.symlinks },
          overrides: input.overlay,
          extraDirs: [outDir],
        });
        await container.putArchive(counted(tar, input.source.sizeOf(files), progress), '/');
        // the marker last: a fill cut short leaves no marker, so the next build fills again
        const marker = sourceMarker(vol.contentId, vol.filesDigest, files.length + selection.symlinks.length);
        await container.putArchive(packFiles(new Map([[`${prefix}/${SOURCE_MARKER_FILE}`, marker]])), '/');
      } else {
        // no volume: the whole tree and the output directory in one archive, into the container
        const tar = input.source.pack({ prefix, overrides: input.overlay, extraDirs: [outDir] });
        await container.putArchive(tar, '/');
      }
      // with -v, each package name line is one package compiled (cached ones are not printed)
      input.onCompile?.();
      let compiled = 0;
      const result = await container.run((line) => {
        if (input.goVerbose && /^[\w.~-]+(\/[\w.~-]+)*$/.test(line.trim()))
          progress.progress(`${++compiled} packages compiled`);
        progress.detail(line);
      });
      if (result.exitCode !== 0) {
        progress.fail();
        if (!input.goVerbose)
          progress.info(
            `last ${result.tail.length} lines of the build:\n${result.tail.map((l) => `  ${l}`).join('\n')}`,
          );
        const compilerLine = [...result.tail].reverse().find((l) => /\.go:\d+(:\d+)?: /.test(l));
        throw new KfError(
          `go build failed in ${input.image} (exit code ${result.exitCode})${compilerLine ? `: ${compilerLine.trim()}` : ''}`,
          'read the build output above (all of it with --verbose); a compile error usually means the source does not match the Go version or the patch',
        );
      }
      return withBinary(container, go.output);
    },
    { onWait: input.sourceVolume?.onWait },
  );
}
