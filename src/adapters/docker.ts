import os from 'node:os';
import { isProcessAlive } from './process.js';
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { KfError, messageOf } from '../core/errors.js';
import type { Progress } from '../core/progress.js';

/*
 * The Docker engine: connecting, images, volumes, the labels every container of this tool carries,
 * and the leftovers of killed runs. One build container's life is in build-container.ts.
 */

/** Every container the tool starts carries these labels; leftovers are found by them. */
export const CONTAINER_LABEL = 'kubeadm-forever';
export const PID_LABEL = 'kubeadm-forever.pid';
export const HOST_LABEL = 'kubeadm-forever.host';

/** Where dockerode will connect, for messages: DOCKER_HOST or the default socket. */
export function dockerHost(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/** The engine's HTTP status of a failed call (404 gone, 409 conflict), if any. */
export function statusOf(err: unknown): number | undefined {
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
 * The image present → used as it is; absent → pulled, the pull's progress as detail (errors inside the pull
 * stream are passed on); a pull that cannot happen (no registry, unknown name) → an error
 * naming `docker load -i` and `--image`.
 */
export async function ensureImage(docker: Docker, image: string, progress: Progress = {}): Promise<ImageRef> {
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
          if (event.status)
            progress.detail?.([event.id, event.status, event.progress].filter(Boolean).join(' '));
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
export function abandoned(labels: Record<string, string>): boolean {
  if (labels[CONTAINER_LABEL] !== '1' || labels[HOST_LABEL] !== os.hostname()) return false;
  const pid = Number(labels[PID_LABEL]);
  return !(Number.isInteger(pid) && pid > 0 && isProcessAlive(pid));
}

/** Removes a container; one already gone or being removed is fine (false). */
export async function removeGone(docker: Docker, id: string): Promise<boolean> {
  try {
    await docker.getContainer(id).remove({ force: true, v: true });
    return true;
  } catch (err) {
    if (statusOf(err) !== 404 && statusOf(err) !== 409) throw err;
    return false;
  }
}
