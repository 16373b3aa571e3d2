import os from 'node:os';
import { PassThrough, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { KfError, messageOf } from '../core/errors.js';
import { readOneFile } from './archive.js';
import { abandoned, CONTAINER_LABEL, HOST_LABEL, PID_LABEL, removeGone, statusOf } from './docker.js';
import { interrupted, withInterruptCleanup } from './interrupt.js';

/*
 * One build container: created (waiting while another build holds its name), filled, run with
 * its output streamed, copied out of, and removed on success, failure and Ctrl-C. The engine
 * itself (connect, images, volumes, leftovers) is in docker.ts.
 */

/** Lines of build output shown when a build fails. */
export const FAILURE_TAIL_LINES = 30;

export interface ContainerSpec {
  image: string;
  /** argument array: never a shell string */
  cmd: string[];
  env: Record<string, string>;
  workingDir?: string;
  /** named volumes: volume name → mount point */
  volumes?: Record<string, string>;
  /**
   * A container name that doubles as an engine-wide lock: while a container of this name
   * exists, create waits (see createExclusive). Absent: the engine picks a name.
   */
  name?: string;
}

/** How create waits for a named container held by another build. */
export interface ExclusiveWait {
  /** called once when the name is taken and waiting starts */
  onWait?: (holder: string) => void;
  /** give up after this long (ms); default one hour */
  timeoutMs?: number;
  /** poll interval (ms) */
  pollMs?: number;
}

export interface RunResult {
  exitCode: number;
  /** the last FAILURE_TAIL_LINES lines of stdout+stderr */
  tail: string[];
}

class NameTakenError extends Error {
  constructor(readonly containerName: string) {
    super(`container name ${containerName} is in use`);
  }
}

/** Removes the named container when a dead run of this tool on this host left it; true when removed. */
async function removeIfAbandoned(docker: Docker, name: string): Promise<boolean> {
  let info: Docker.ContainerInspectInfo;
  try {
    info = await docker.getContainer(name).inspect();
  } catch (err) {
    // gone between the create and the inspect: try again at once
    if (statusOf(err) === 404) return true;
    throw err;
  }
  if (!abandoned(info.Config.Labels ?? {})) return false;
  await removeGone(docker, name);
  return true;
}

/**
 * One build container: created (not started), filled with putArchive, started, awaited, and
 * always removed. Tty is off so stdout and stderr arrive multiplexed and are demultiplexed.
 */
export class BuildContainer {
  private removed = false;

  private constructor(
    private readonly docker: Docker,
    readonly container: Docker.Container,
  ) {}

  get id(): string {
    return this.container.id;
  }

  static async create(
    docker: Docker,
    spec: ContainerSpec,
    wait: ExclusiveWait = {},
  ): Promise<BuildContainer> {
    const deadline = Date.now() + (wait.timeoutMs ?? 3600_000);
    let told = false;
    for (;;) {
      try {
        return await BuildContainer.createOnce(docker, spec);
      } catch (err) {
        // 409: a container of that name exists, i.e. another build holds the name (the lock)
        if (!(err instanceof NameTakenError)) throw err;
        if (await removeIfAbandoned(docker, err.containerName)) continue;
        if (Date.now() > deadline) {
          throw new KfError(
            `container ${err.containerName} (another build of the same source) did not finish in time`,
            `if no build is running, remove it with 'docker rm -f ${err.containerName}' and run the build again`,
          );
        }
        // interrupted while waiting: stop asking, the guard is exiting
        if (interrupted()) throw err;
        if (!told) wait.onWait?.(err.containerName);
        told = true;
        await new Promise((r) => setTimeout(r, wait.pollMs ?? 2000));
      }
    }
  }

  private static async createOnce(docker: Docker, spec: ContainerSpec): Promise<BuildContainer> {
    try {
      const container = await docker.createContainer({
        name: spec.name,
        Image: spec.image,
        Cmd: spec.cmd,
        Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        WorkingDir: spec.workingDir,
        Tty: false,
        AttachStdout: true,
        AttachStderr: true,
        Labels: { [CONTAINER_LABEL]: '1', [PID_LABEL]: String(process.pid), [HOST_LABEL]: os.hostname() },
        HostConfig: {
          Mounts: Object.entries(spec.volumes ?? {}).map(([Source, Target]) => ({
            Type: 'volume' as const,
            Source,
            Target,
          })),
        },
      });
      return new BuildContainer(docker, container);
    } catch (err) {
      if (spec.name && statusOf(err) === 409) throw new NameTakenError(spec.name);
      throw new KfError(
        `cannot create the build container from ${spec.image}: ${messageOf(err).split('\n')[0]}`,
        'check the image and the engine, then retry',
      );
    }
  }

  /** Streams a tar archive into the (not yet started) container; `dir` must exist in the image. */
  async putArchive(tar: Readable, dir = '/'): Promise<void> {
    try {
      await this.container.putArchive(tar, { path: dir });
    } catch (err) {
      throw new KfError(
        `cannot copy the source tree into the build container: ${messageOf(err).split('\n')[0]}`,
        'check free space on the Docker engine and retry',
      );
    }
  }

  /** Starts the container, streams its output line by line to `onLine`, waits for the exit code. */
  async run(onLine?: (line: string) => void): Promise<RunResult> {
    const tail: string[] = [];
    const stream = (await this.container.attach({
      stream: true,
      stdout: true,
      stderr: true,
    })) as unknown as Readable;
    const lines = new PassThrough();
    let pending = '';
    lines.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        emit(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    const emit = (line: string) => {
      tail.push(line);
      if (tail.length > FAILURE_TAIL_LINES) tail.shift();
      onLine?.(line);
    };
    this.docker.modem.demuxStream(stream, lines, lines);
    const ended = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
    await this.container.start();
    const result = (await this.container.wait()) as { StatusCode: number };
    if (this.removed)
      throw new KfError('the build container was removed while it ran', 'run the build again');
    // The attach stream ends right after the exit; do not hang if the engine keeps it open.
    await Promise.race([ended, new Promise((r) => setTimeout(r, 2000).unref())]);
    if (pending) emit(pending);
    return { exitCode: result.StatusCode, tail };
  }

  /** A tar stream of `file` in the container (works on a stopped container). */
  async getArchive(file: string): Promise<NodeJS.ReadableStream> {
    try {
      return await this.container.getArchive({ path: file });
    } catch (err) {
      throw new KfError(
        `cannot copy ${file} out of the build container: ${messageOf(err).split('\n')[0]}`,
        'rerun with --verbose to see the build log',
      );
    }
  }

  /** The text of a file in the container (volumes included; works before it starts), or undefined when absent. */
  async readTextFile(file: string): Promise<string | undefined> {
    let tar: NodeJS.ReadableStream;
    try {
      tar = await this.container.getArchive({ path: file });
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new KfError(
        `cannot read ${file} in the build container: ${messageOf(err).split('\n')[0]}`,
        'check that the Docker engine is healthy and retry',
      );
    }
    return readOneFile(tar, file.slice(file.lastIndexOf('/') + 1));
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await removeGone(this.docker, this.container.id);
  }
}

/**
 * Runs `body` with a fresh container and removes it afterwards whatever happens: success,
 * failure, or SIGINT/SIGTERM (the interrupt guard removes it, after a create still under way,
 * and exits 130/143; the other clean-ups registered by the run follow).
 */
export async function withBuildContainer<T>(
  docker: Docker,
  spec: ContainerSpec,
  body: (c: BuildContainer) => Promise<T>,
  wait?: ExclusiveWait,
): Promise<T> {
  let c: BuildContainer | undefined;
  let creating: Promise<BuildContainer> | undefined;
  // registered before create: a run waiting for a named container can be interrupted cleanly too
  return withInterruptCleanup(
    {
      doing: () => (c ? `removing build container ${c.id.slice(0, 12)}` : undefined),
      run: async () => {
        const made = c ?? (await creating?.catch(() => undefined));
        await made?.remove();
      },
    },
    async () => {
      creating = BuildContainer.create(docker, spec, wait);
      c = await creating;
      try {
        return await body(c);
      } finally {
        // after a signal the guard removes it (and body's failure is not reported)
        if (!interrupted()) await c.remove();
      }
    },
  );
}
