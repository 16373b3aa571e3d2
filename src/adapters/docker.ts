import os from 'node:os';
import { PassThrough, type Readable } from 'node:stream';
import Docker from 'dockerode';
import { KfError, messageOf } from '../core/errors.js';
import { readOneFile } from './archive.js';

/** Every container the tool starts carries these labels; leftovers are found by them. */
export const CONTAINER_LABEL = 'kubeadm-forever';
export const PID_LABEL = 'kubeadm-forever.pid';
export const HOST_LABEL = 'kubeadm-forever.host';
/** Lines of build output shown when a build fails. */
export const FAILURE_TAIL_LINES = 30;

/** Where dockerode will connect, for messages: DOCKER_HOST or the default socket. */
export function dockerHost(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err
    ? Number((err as { statusCode: unknown }).statusCode)
    : undefined;
}

/**
 * Connects to the engine named by DOCKER_HOST (and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH), else
 * the default socket, and pings it so an unreachable engine fails here with a clear message
 * rather than deep inside a build.
 */
export async function connectDocker(env: NodeJS.ProcessEnv = process.env): Promise<Docker> {
  const host = dockerHost(env);
  let docker: Docker;
  try {
    // dockerode reads DOCKER_HOST from process.env; pass the given env explicitly.
    docker = env === process.env ? new Docker() : new Docker(modemOptionsFrom(env));
    await docker.ping();
  } catch (err) {
    throw new KfError(
      `Docker engine unreachable at ${host}: ${messageOf(err).split('\n')[0]}`,
      `start the Docker engine or set DOCKER_HOST to a reachable one (DOCKER_HOST is ${env.DOCKER_HOST ? `'${env.DOCKER_HOST}'` : 'not set'})`,
    );
  }
  return docker;
}

export interface EngineVersion {
  host: string;
  version: string;
  apiVersion: string;
  os: string;
  arch: string;
}

/**
 * The engine's own version and API version, asked with a bounded timeout (the `version`
 * command must answer quickly even when DOCKER_HOST points at a host that never replies).
 */
export async function engineVersion(env: NodeJS.ProcessEnv, timeoutMs: number): Promise<EngineVersion> {
  const host = dockerHost(env);
  try {
    // with process.env, docker-modem reads DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH itself
    const docker = new Docker({ ...(env === process.env ? {} : modemOptionsFrom(env)), timeout: timeoutMs });
    const v = await docker.version();
    return { host, version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch };
  } catch (err) {
    throw new KfError(
      `Docker engine unreachable at ${host}: ${messageOf(err).split('\n')[0]}`,
      'start the Docker engine or set DOCKER_HOST to a reachable one',
    );
  }
}

function modemOptionsFrom(env: NodeJS.ProcessEnv): Docker.DockerOptions {
  const host = env.DOCKER_HOST;
  if (!host) return { socketPath: '/var/run/docker.sock' };
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  const url = new URL(host.replace(/^tcp:/, env.DOCKER_TLS_VERIFY ? 'https:' : 'http:'));
  return {
    host: url.hostname,
    port: url.port || (url.protocol === 'https:' ? 2376 : 2375),
    protocol: url.protocol.slice(0, -1) as 'http' | 'https',
  };
}

export interface ImageRef {
  name: string;
  id: string;
}

/**
 * The image present → used as it is; absent → pulled with progress (errors inside the pull
 * stream are passed on); a pull that cannot happen (no registry, unknown name) → an error
 * naming `docker load -i` and `--image`.
 */
export async function ensureImage(
  docker: Docker,
  image: string,
  onProgress?: (text: string) => void,
): Promise<ImageRef> {
  try {
    const info = await docker.getImage(image).inspect();
    return { name: image, id: info.Id };
  } catch (err) {
    if (statusOf(err) !== 404) {
      throw new KfError(
        `cannot inspect image ${image}: ${messageOf(err).split('\n')[0]}`,
        'check that the Docker engine is healthy and retry',
      );
    }
  }
  const loadHint = `load it on the engine with 'docker load -i FILE' (from 'docker save ${image}' on a connected machine), or pass --image NAME of an image the engine has`;
  try {
    const stream = (await docker.pull(image)) as Readable;
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(
        stream,
        (err: Error | null, output: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
          const failed = output?.find((e) => e.error || e.errorDetail);
          if (err) reject(err);
          else if (failed) reject(new Error(failed.errorDetail?.message ?? failed.error));
          else resolve();
        },
        (event: { status?: string; id?: string; progress?: string }) => {
          if (onProgress && event.status)
            onProgress([event.id, event.status, event.progress].filter(Boolean).join(' '));
        },
      );
    });
    const info = await docker.getImage(image).inspect();
    return { name: image, id: info.Id };
  } catch (err) {
    throw new KfError(
      `image ${image} is not on the engine and cannot be pulled: ${messageOf(err).split('\n')[0]}`,
      loadHint,
    );
  }
}

/** Creates a named volume if it does not exist yet (idempotent; an existing one keeps its labels). */
export async function ensureVolume(
  docker: Docker,
  name: string,
  opts: { what: string; next: string; labels?: Record<string, string> } = {
    what: 'the Go build cache volume',
    next: 'pass --go-cache-volume another name or check the engine',
  },
): Promise<void> {
  try {
    await docker.createVolume({ Name: name, Labels: { [CONTAINER_LABEL]: '1', ...opts.labels } });
  } catch (err) {
    throw new KfError(`cannot create ${opts.what} ${name}: ${messageOf(err).split('\n')[0]}`, opts.next);
  }
}

export interface LabelledVolume {
  name: string;
  /** the label's value */
  value: string;
  created?: string;
}

/** The volumes carrying `label`, by name. */
export async function listLabelledVolumes(docker: Docker, label: string): Promise<LabelledVolume[]> {
  const { Volumes } = await docker.listVolumes({ filters: { label: [label] } });
  return (Volumes ?? [])
    .map((v) => ({
      name: v.Name,
      value: v.Labels?.[label] ?? '',
      created: (v as { CreatedAt?: string }).CreatedAt,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Removes a named volume; one a container still uses is left ('in use'). */
export async function removeVolume(docker: Docker, name: string): Promise<'removed' | 'in use' | 'gone'> {
  try {
    await docker.getVolume(name).remove();
    return 'removed';
  } catch (err) {
    if (statusOf(err) === 404) return 'gone';
    if (statusOf(err) === 409) return 'in use';
    throw new KfError(
      `cannot remove volume ${name}: ${messageOf(err).split('\n')[0]}`,
      'check the Docker engine and retry',
    );
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes containers left by killed runs of this tool on this host (their owning process is
 * gone). Containers of runs still alive, or of other hosts sharing the engine, are left alone.
 */
export async function removeLeftovers(docker: Docker): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${CONTAINER_LABEL}=1`] } });
  let removed = 0;
  for (const c of list) {
    if (abandoned(c.Labels) && (await removeGone(docker, c.Id))) removed++;
  }
  return removed;
}

/** A container of this tool whose run on this host is gone (its pid no longer exists). */
function abandoned(labels: Record<string, string>): boolean {
  if (labels[CONTAINER_LABEL] !== '1' || labels[HOST_LABEL] !== os.hostname()) return false;
  const pid = Number(labels[PID_LABEL]);
  return !(Number.isInteger(pid) && pid > 0 && processAlive(pid));
}

/** Removes a container; one already gone or being removed is fine (false). */
async function removeGone(docker: Docker, id: string): Promise<boolean> {
  try {
    await docker.getContainer(id).remove({ force: true, v: true });
    return true;
  } catch (err) {
    if (statusOf(err) !== 404 && statusOf(err) !== 409) throw err;
    return false;
  }
}

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
 * failure, or SIGINT/SIGTERM (then `alsoOnSignal` cleans up what else the run made, and the
 * process exits 130/143 once the container is gone).
 */
export async function withBuildContainer<T>(
  docker: Docker,
  spec: ContainerSpec,
  body: (c: BuildContainer) => Promise<T>,
  alsoOnSignal?: () => Promise<void>,
  wait?: ExclusiveWait,
): Promise<T> {
  let c: BuildContainer | undefined;
  let signalled = false;
  // Armed before create: a run waiting for a named container can be interrupted cleanly too.
  const onSignal = (signal: NodeJS.Signals) => {
    signalled = true;
    const removing = c ? `; removing build container ${c.id.slice(0, 12)}` : '';
    process.stderr.write(
      `\nerror: interrupted by ${signal}${removing}\nnext: run the build again; nothing was written\n`,
    );
    void (c ? c.remove() : Promise.resolve())
      .catch(() => undefined)
      .then(() => alsoOnSignal?.())
      .catch(() => undefined)
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    c = await BuildContainer.create(docker, spec, wait);
    if (signalled) {
      await c.remove().catch(() => undefined);
      await new Promise<never>(() => undefined);
    }
    return await body(c);
  } catch (err) {
    // The container vanished under a running step because of the signal: stay quiet and let
    // the signal handler finish (it exits), instead of reporting a second, confusing error.
    if (signalled) await new Promise<never>(() => undefined);
    throw err;
  } finally {
    if (!signalled) {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      await c?.remove();
    }
  }
}
