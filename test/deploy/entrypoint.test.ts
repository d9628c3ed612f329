/**
 * The image's entrypoint with compose's arguments and environment over the image's own (ENV, the
 * heap bounds in NODE_OPTIONS included), run here as a child process: paths under the image's state
 * directory are mapped to a temporary directory and the container ports to free local ports. It
 * must become ready (compose's own health check command says so), write the trust exports Jenkins
 * mounts, answer as api.bitbucket.org and bitbucket.org over HTTPS with the credential JCasC gives
 * Jenkins, serve a git clone that trusts only ca-bundle.pem (as GIT_SSL_CAINFO makes Jenkins' git
 * do), and stop with exit code 0 on SIGTERM (`docker stop`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { TLS_FILES } from '../../src/tls';
import { dockerEnv, environmentOf, execForm, flagValue, freePort, interpolate, loadCompose, parseDockerfile, read, readYaml, ROOT } from './helpers';

const compose = loadCompose('compose.yaml');
const sidecar = compose.services.sidecar;
const jenkinsEnv = environmentOf(compose.services.jenkins);
const STATE = '/var/lib/bitbucket-sidecar';

let child: ChildProcess | undefined;
let tmp: string;
let output = '';
let httpPort: number;
let httpsPort: number;
let tlsDir: string;

/** api.bitbucket.org / bitbucket.org → 127.0.0.1, as extra_hosts does for Jenkins. */
const toLoopback: LookupFunction = (_host, options, cb) => {
  if (options.all) (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
};

function get(url: string, options: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    client
      .get(url, { agent: false, ...options }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child?.exitCode !== null && child?.exitCode !== undefined) throw new Error(`the sidecar exited (${child.exitCode}) before ${what}:\n${output}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}:\n${output}`);
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'entrypoint-'));
  const dockerfile = parseDockerfile(read('Dockerfile'));
  const entrypoint = execForm(dockerfile.filter((i) => i.op === 'ENTRYPOINT').at(-1)!.args);
  // The image's ENV (NODE_OPTIONS' heap bounds included), its HOME mapped like the other paths.
  const imageEnv = dockerEnv(dockerfile, Math.max(...dockerfile.map((i) => i.stage)));
  const ports: Record<string, number> = {};
  const portFor = async (p: string) => (ports[p] ??= await freePort());
  // compose's arguments, with container paths and ports mapped to this machine.
  const args: string[] = [];
  const raw: string[] = sidecar.command;
  for (let i = 0; i < raw.length; i++) {
    const prev = raw[i - 1];
    let a = raw[i];
    if (prev === '--port' || prev === '--https-port') a = String(await portFor(a));
    else if (a.startsWith(STATE)) a = path.join(tmp, a);
    args.push(a);
  }
  httpPort = Number(flagValue(args, '--port'));
  httpsPort = Number(flagValue(args, '--https-port'));
  tlsDir = flagValue(args, '--tls-dir')!;
  expect(tlsDir.startsWith(tmp)).toBe(true);

  const env: NodeJS.ProcessEnv = { ...imageEnv, PATH: process.env.PATH, HOME: path.join(tmp, STATE), ...environmentOf(sidecar) };
  child = spawn(entrypoint[0] === 'node' ? process.execPath : entrypoint[0], [...entrypoint.slice(1), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor(async () => (await get(`http://127.0.0.1:${httpPort}/_sidecar/ready`)).status === 200, 30_000, '/_sidecar/ready');
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe('the image entrypoint with the compose environment', () => {
  it('becomes ready, as compose\'s own health check command reports', () => {
    const test: string[] = sidecar.healthcheck.test.slice(1);
    const url = test[test.length - 1].replace(/:\d+\//, `:${httpPort}/`);
    const r = spawnSync(process.execPath, [...test.slice(1, -1), url], { cwd: ROOT, encoding: 'utf8', timeout: 10_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('writes the files JENKINS_JAVA_OPTS and GIT_SSL_CAINFO point at into the TLS directory', () => {
    expect([TLS_FILES.caCert, TLS_FILES.caBundle, TLS_FILES.javaTruststore].filter((f) => !existsSync(path.join(tlsDir, f)))).toEqual([]);
    const javaOpts = jenkinsEnv.JENKINS_JAVA_OPTS;
    expect(javaOpts).toContain(`/${TLS_FILES.javaTruststore} `);
    expect(path.basename(jenkinsEnv.GIT_SSL_CAINFO)).toBe(TLS_FILES.caBundle);
  });

  it('answers as api.bitbucket.org over HTTPS, trusted through its CA, with the JCasC credential', async () => {
    const casc = readYaml('deploy/jenkins/casc.yaml');
    const cred = casc.credentials.system.domainCredentials[0].credentials[0].usernamePassword as { username: string; password: string };
    const user = interpolate(cred.username, jenkinsEnv);
    const token = interpolate(cred.password, jenkinsEnv);
    const ca = readFileSync(path.join(tlsDir, TLS_FILES.caCert));
    const r = await get(`https://api.bitbucket.org:${httpsPort}/2.0/repositories/acme?pagelen=100`, { ca, lookup: toLoopback, auth: `${user}:${token}` });
    expect(r.status).toBe(200);
    const names = (JSON.parse(r.body) as { values: { full_name: string }[] }).values.map((v) => v.full_name);
    expect(names).toContain('acme/service-api');
    // Without the credential: the challenge the plugin expects, not data.
    expect((await get(`https://api.bitbucket.org:${httpsPort}/2.0/repositories/acme`, { ca, lookup: toLoopback })).status).toBe(401);
  });

  it('serves a git clone over HTTPS as bitbucket.org to a git that trusts only ca-bundle.pem', () => {
    const casc = readYaml('deploy/jenkins/casc.yaml');
    const token = interpolate(casc.credentials.system.domainCredentials[0].credentials[0].usernamePassword.password as string, jenkinsEnv);
    const dest = path.join(tmp, 'clone');
    // The plugin's git user name for an API-token credential; Jenkins passes the credential the same way.
    const url = `https://x-bitbucket-api-token-auth:${token}@bitbucket.org:${httpsPort}/acme/service-api.git`;
    const r = spawnSync('git', ['-c', `http.curloptResolve=bitbucket.org:${httpsPort}:127.0.0.1`, 'clone', '--quiet', url, dest], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: process.env.PATH, HOME: tmp, GIT_SSL_CAINFO: path.join(tlsDir, TLS_FILES.caBundle), GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' },
    });
    expect(r.stderr.replace(token, '<token>')).toBe('');
    expect(r.status).toBe(0);
    expect(existsSync(path.join(dest, 'Jenkinsfile'))).toBe(true);
  });

  it('stops with exit code 0 on SIGTERM', async () => {
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
