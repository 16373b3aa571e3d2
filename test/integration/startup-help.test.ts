import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { k8s1202VersionFile } from '../helpers/env.js';
import { loadedModules } from '../helpers/loaded-modules.js';

/**
 * Start-up: a command loads the modules it uses and no others. Which modules, not how
 * long: timings are the bench's job. Each case also names a package it must load, so a recorder
 * that saw nothing cannot pass.
 */
const ENGINE = ['dockerode', 'docker-modem', 'ssh2', '@grpc/grpc-js'];
const PKI = ['@peculiar/x509', 'reflect-metadata', 'tsyringe', 'asn1js'];
const GIT = ['simple-git'];
const ARCHIVES = ['tar-stream', 'tar-fs'];
const SPINNER = ['ora', 'chalk', 'cli-cursor'];

function expectNone(packages: Set<string>, names: string[]) {
  expect(names.filter((n) => packages.has(n))).toEqual([]);
}

describe('start-up loads only what the command uses', () => {
  let work: string;
  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-startup-'));
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it('--version: no yargs, no command module, no package at all', () => {
    const r = loadedModules(['--version']);
    expect(r.status).toBe(0);
    expect([...r.packages]).toEqual([]);
    expect([...r.own].sort()).toEqual(['adapters/tool-version.js', 'cli.js']);
  });

  it('--help lists every command from the catalog: yargs only, no command module', () => {
    const r = loadedModules(['--help']);
    expect(r.status).toBe(0);
    expect(r.packages.has('yargs')).toBe(true);
    expectNone(r.packages, [...ENGINE, ...PKI, ...GIT, ...ARCHIVES, ...SPINNER, 'yaml', 'diff']);
    expect(
      [...r.own].filter(
        (m) => m.startsWith('commands/') && !/^commands\/(index|catalog|options|run)\.js$/.test(m),
      ),
    ).toEqual([]);
  });

  it('an unknown command and its suggestion load no command module either', () => {
    const r = loadedModules(['plann']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('Did you mean plan?');
    expect(r.own.has('commands/plan.js')).toBe(false);
  });

  it('check --help loads check, not the PKI code it runs', () => {
    const r = loadedModules(['check', '--help']);
    expect(r.status).toBe(0);
    expect(r.own.has('commands/check.js')).toBe(true);
    expect(
      [...r.own].filter((m) => m.startsWith('commands/') && /(plan|build|cache|renew|ca)\.js$/.test(m)),
    ).toEqual([]);
    expectNone(r.packages, [...ENGINE, ...PKI, ...GIT, ...ARCHIVES, ...SPINNER]);
  });

  it.each(['ca', 'ca init', 'kubelet-cert', 'renew', 'image', 'cache', 'version'])(
    '%s --help loads neither the engine nor x509 nor ora',
    (words) => {
      const r = loadedModules([...words.split(' '), '--help']);
      expect(r.status).toBe(0);
      expect(r.own.has(`commands/${words.split(' ')[0]}.js`)).toBe(true);
      expectNone(r.packages, [...ENGINE, ...PKI, ...GIT, ...SPINNER]);
    },
  );

  it('check of a PKI dir loads x509 (it uses it), but no engine, git or spinner off a terminal', () => {
    const pki = path.join(work, 'pki');
    expect(loadedModules(['ca', 'init', '--out', pki]).status).toBe(0);
    const r = loadedModules([
      'check',
      '--pki-dir',
      pki,
      '--kubeconfig-dir',
      work,
      '--kubelet-dir',
      work,
      '--apiserver',
      'none',
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.packages.has('@peculiar/x509')).toBe(true);
    expectNone(r.packages, [...ENGINE, ...GIT, ...ARCHIVES, ...SPINNER]);
  });

  it('cache ls loads the cache store: no engine, git, x509, archives or yaml', () => {
    const r = loadedModules(['cache', 'ls', '--cache-dir', path.join(work, 'cache')]);
    expect(r.status).toBe(0);
    expect(r.own.has('carry/cache/store.js')).toBe(true);
    expectNone(r.packages, [...ENGINE, ...PKI, ...GIT, ...ARCHIVES, ...SPINNER, 'yaml']);
  });

  it('plan without a source, from a JSON version file: no engine, git, x509, spinner or YAML reader', () => {
    const r = loadedModules(['plan', '--version-file', k8s1202VersionFile]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.packages.has('yargs')).toBe(true);
    // the yaml library is the largest a cache hit would load: only -o yaml output needs it
    expectNone(r.packages, [...ENGINE, ...PKI, ...GIT, ...SPINNER, 'yaml']);
  });
});
