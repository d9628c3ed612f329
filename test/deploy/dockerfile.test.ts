/**
 * The image, read from the Dockerfile (no Docker engine here): multi-stage on a Node LTS slim base,
 * production dependencies only, git present, a non-root user distinct from Jenkins', a health check
 * that exists in the build output, the state volume, both ports, and an entrypoint that is the
 * package's own.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { validateConfig } from '../../src/config/load';
import { dockerEnv, execForm, freePort, heapBounds, parseDockerfile, read, ROOT, type Instruction } from './helpers';

const instructions = parseDockerfile(read('Dockerfile'));
const of = (op: string, stage?: number): Instruction[] => instructions.filter((i) => i.op === op && (stage === undefined || i.stage === stage));
const lastStage = Math.max(...instructions.map((i) => i.stage));
const args = (stageArgs: Record<string, string>, s: string) => s.replace(/\$\{(\w+)\}/g, (_m, n: string) => stageArgs[n] ?? '');
const globalArgs = Object.fromEntries(
  instructions.filter((i) => i.op === 'ARG' && i.stage === -1).map((i) => i.args.split('=') as [string, string]),
);
const JENKINS_UID = 1000; // jenkins/jenkins runs as uid 1000
/** Stage names (`FROM x AS name`) → stage index, and each stage's base (an image or an earlier stage). */
const stages = of('FROM').map((f) => {
  const [base, , name] = args(globalArgs, f.args).split(/\s+/);
  return { index: f.stage, base, name };
});
const stageNamed = (name: string) => stages.find((s) => s.name?.toLowerCase() === name)!;
/** The stages a stage is built on, itself included. */
const lineage = (index: number): number[] => {
  const s = stages[index];
  const parent = stages.find((p) => p.name === s.base);
  return parent ? [...lineage(parent.index), index] : [index];
};
const runsOf = (index: number) => lineage(index).flatMap((i) => of('RUN', i).map((r) => r.args)).join('\n');

describe('Dockerfile', () => {
  it('is multi-stage on a current Node LTS slim base', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const images = stages.filter((s) => !stages.some((p) => p.name === s.base)).map((s) => s.base);
    expect(images.length).toBeGreaterThanOrEqual(1);
    for (const image of images) {
      const m = /^node:(\d+)-[a-z]+-slim$/.exec(image);
      expect(m).not.toBeNull();
      const major = Number(m![1]);
      expect(major % 2).toBe(0); // only even majors become LTS
      expect(major).toBeGreaterThanOrEqual(22);
    }
    expect(lineage(lastStage)).toEqual([lastStage]); // the runtime starts from the clean base, not from a build stage
  });

  it('builds in a build stage and ships production dependencies (npm ci --omit=dev) and dist/ only', () => {
    const build = stageNamed('build');
    expect(runsOf(build.index)).toMatch(/\bnpm ci\b/);
    expect(runsOf(build.index)).toMatch(/\bnpm run build\b/);
    const copies = of('COPY', lastStage).filter((c) => /--from=/.test(c.args));
    const distCopy = copies.filter((c) => /\/dist \.\/dist$/.test(c.args));
    expect(distCopy.map((c) => /--from=(\S+)/.exec(c.args)![1])).toEqual(['build']);
    const modules = copies.filter((c) => /\/node_modules \.\/node_modules$/.test(c.args));
    expect(modules).toHaveLength(1);
    const depsStage = stageNamed(/--from=(\S+)/.exec(modules[0].args)![1]);
    expect(runsOf(depsStage.index)).toMatch(/\bnpm ci --omit=dev\b/);
    expect(runsOf(depsStage.index)).not.toMatch(/npm ci --no-audit|npm install/);
    const finalRuns = of('RUN', lastStage).map((r) => r.args).join('\n');
    expect(finalRuns).not.toMatch(/npm (ci|install|run build)|tsc/);
    expect(copies).toHaveLength(2);
  });

  it('installs git in the runtime stage (demo Bitbucket, mirrors)', () => {
    const finalRuns = of('RUN', lastStage).map((r) => r.args).join('\n');
    expect(finalRuns).toMatch(/apt-get install[^&]*\bgit\b/);
  });

  it('runs as a numeric non-root user that is not Jenkins\' uid and owns the state directory', () => {
    const users = of('USER', lastStage);
    expect(users).toHaveLength(1);
    const [uid, gid] = users[0].args.split(':');
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).not.toBe(0);
    expect(Number(uid)).not.toBe(JENKINS_UID);
    expect(gid === undefined || Number(gid) !== 0).toBe(true);
    const setup = of('RUN', lastStage).map((r) => r.args).join('\n');
    expect(setup).toMatch(new RegExp(`useradd[^&]*--uid ${uid}\\b`));
    // The TLS directory: owned by that user, world-readable (Jenkins reads the public exports; keys are 0600).
    expect(setup).toMatch(new RegExp(`install -d -o ${uid} -g \\d+ -m 0755 /var/lib/bitbucket-sidecar/tls\\b`));
    // The user switch comes after everything that needs root.
    const lastRoot = instructions.findIndex((i) => i === of('RUN', lastStage).at(-1));
    expect(instructions.indexOf(users[0])).toBeGreaterThan(lastRoot);
  });

  it('declares the state volume and exposes 443 and 8080', () => {
    expect(of('VOLUME', lastStage).map((v) => v.args).join(' ')).toContain('/var/lib/bitbucket-sidecar');
    const ports = of('EXPOSE', lastStage).flatMap((e) => e.args.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''));
    expect(ports).toEqual(expect.arrayContaining(['443', '8080']));
  });

  it('enters through the package entry point', () => {
    const pkg = JSON.parse(read('package.json')) as { main: string; bin: Record<string, string> };
    const entry = execForm(of('ENTRYPOINT', lastStage)[0].args);
    expect(entry).toEqual(['node', pkg.main]);
    expect(Object.values(pkg.bin)).toContain(pkg.main);
    expect(existsSync(path.join(ROOT, pkg.main))).toBe(true);
  });

  it('bounds the V8 heap for the default cache.maxBytes, with options node accepts in NODE_OPTIONS', () => {
    const env = dockerEnv(instructions, lastStage);
    const { semiSpace, oldSpace } = heapBounds(env.NODE_OPTIONS);
    const minimal = validateConfig({
      upstream: { auth: { type: 'basic', username: 'u', password: 'p' } },
      clients: [{ id: 'jenkins', token: { sha256: 'a'.repeat(64) }, scope: [{ workspace: 'acme' }] }],
    });
    // docs/configuration.md "Memory": old space 64 MiB + cache.maxBytes, young generation 4 MiB per semi-space.
    expect(oldSpace).toBe(64 + minimal.cache.maxBytes / 1024 ** 2);
    expect(semiSpace).toBe(4);
    // Node refuses to start with an option NODE_OPTIONS does not allow; these apply.
    const r = spawnSync(process.execPath, ['-p', "require('v8').getHeapStatistics().heap_size_limit"], { env: { PATH: process.env.PATH, NODE_OPTIONS: env.NODE_OPTIONS }, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const limitMiB = Number(r.stdout) / 1024 ** 2;
    expect(limitMiB).toBeGreaterThanOrEqual(oldSpace!);
    expect(limitMiB).toBeLessThan(oldSpace! + 64);
  });

  it("pins glibc's mmap threshold at its default (docs/configuration.md, Memory)", () => {
    expect(dockerEnv(instructions, lastStage).MALLOC_MMAP_THRESHOLD_).toBe('131072');
  });

  it('has a HEALTHCHECK that needs no curl and fails when nothing answers', async () => {
    const hc = of('HEALTHCHECK', lastStage);
    expect(hc).toHaveLength(1);
    const cmd = execForm(hc[0].args.slice(hc[0].args.indexOf('CMD')));
    expect(cmd[0]).toBe('node');
    expect(existsSync(path.join(ROOT, cmd[1]))).toBe(true); // built by test/global-setup.ts like the image's build stage
    expect(cmd[2]).toBe('http://127.0.0.1:8080/_sidecar/health');
    // Against a port nobody listens on, the check exits 1 (and quickly).
    const port = await freePort();
    const r = spawnSync(cmd[0], [cmd[1], cmd[2].replace(':8080', `:${port}`)], { cwd: ROOT, timeout: 10_000 });
    expect(r.status).toBe(1);
  });

  it('.dockerignore keeps secrets, dependencies and build output out of the context but not the sources', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['.git', '.env', 'node_modules', 'dist']));
    // What the stages copy from the context must not be ignored.
    const copied = of('COPY').filter((c) => !/--from=/.test(c.args)).flatMap((c) => c.args.split(/\s+/).slice(0, -1)).filter((a) => !a.startsWith('--'));
    expect(copied.length).toBeGreaterThan(0);
    for (const c of copied) expect(ignored).not.toContain(c);
    for (const c of copied) expect(existsSync(path.join(ROOT, c))).toBe(true);
  });
});
