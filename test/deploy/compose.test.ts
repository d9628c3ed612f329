/**
 * compose.yaml, compose.real.yaml, deploy/jenkins/* and deploy/sidecar/config.yaml, checked for the
 * wiring that `docker compose up` depends on (there is no Docker engine here): name resolution,
 * trust, the Jenkins credential, plugins, health checks, non-root port 443, and the switch to the
 * real Bitbucket through .env.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { DEMO_TOKEN } from '../../src/auth/demo-token';
import { sha256Hex, TOKEN_LENGTH } from '../../src/auth/tokens';
import { loadConfigFile } from '../../src/config/load';
import { DEMO_EMAIL, demoConfig } from '../../src/demo';
import type { FakeBitbucket } from '../../src/fake-bitbucket';
import { TLS_FILES, TRUSTSTORE_PASSWORD } from '../../src/tls';
import {
  dockerEnv,
  environmentOf,
  execForm,
  extraHosts,
  flagValue,
  heapBounds,
  inSubnet,
  interpolate,
  loadCompose,
  mountsOf,
  parseDockerfile,
  read,
  readYaml,
  ROOT,
  systemProperties,
  yamlVariables,
} from './helpers';

const compose = loadCompose('compose.yaml');
const sidecar = compose.services.sidecar;
const jenkins = compose.services.jenkins;
const sidecarArgs: string[] = sidecar.command;
const tlsDir = flagValue(sidecarArgs, '--tls-dir')!;
const jenkinsEnv = environmentOf(jenkins);

/** The named volume the sidecar mounts at its TLS directory, and where Jenkins mounts it. */
function trustMounts() {
  const onSidecar = mountsOf(sidecar).find((m) => m.target === tlsDir);
  const onJenkins = onSidecar && mountsOf(jenkins).find((m) => m.source === onSidecar.source);
  return { onSidecar, onJenkins };
}

describe('compose.yaml: how Jenkins reaches the sidecar', () => {
  it('the sidecar runs the image in demo mode with HTTPS on 443 and the TLS directory in its state volume', () => {
    expect(sidecar.build.context).toBe('.');
    expect(sidecarArgs[0]).toBe('demo');
    expect(flagValue(sidecarArgs, '--https-port')).toBe('443');
    expect(flagValue(sidecarArgs, '--host')).toBe('0.0.0.0');
    // `docker run` without compose does the same as compose.
    const dockerfile = parseDockerfile(read('Dockerfile'));
    expect(execForm(dockerfile.filter((i) => i.op === 'CMD').at(-1)!.args)).toEqual(sidecarArgs);
  });

  it('api.bitbucket.org and bitbucket.org resolve to the sidecar\'s fixed address on a fixed subnet', () => {
    const networks = Object.entries(sidecar.networks as Record<string, { ipv4_address?: string }>);
    expect(networks).toHaveLength(1);
    const [netName, attachment] = networks[0];
    const address = attachment.ipv4_address!;
    expect(address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const subnets: string[] = compose.networks[netName].ipam.config.map((c: { subnet: string }) => c.subnet);
    expect(subnets.some((s) => inSubnet(address, s))).toBe(true);
    expect(extraHosts(jenkins)).toEqual({ 'api.bitbucket.org': address, 'bitbucket.org': address });
    const jenkinsNetworks = Array.isArray(jenkins.networks) ? jenkins.networks : Object.keys(jenkins.networks);
    expect(jenkinsNetworks).toContain(netName);
  });

  it('the trust volume is a named volume, written by the sidecar and mounted read-only by Jenkins', () => {
    const { onSidecar, onJenkins } = trustMounts();
    expect(onSidecar).toBeDefined();
    expect(onSidecar!.readOnly).toBe(false);
    expect(Object.keys(compose.volumes)).toContain(onSidecar!.source);
    expect(onJenkins).toBeDefined();
    expect(onJenkins!.readOnly).toBe(true);
  });

  it('the JVM truststore and git CA bundle are files the sidecar writes into that volume', () => {
    const { onJenkins } = trustMounts();
    const props = systemProperties(jenkinsEnv.JENKINS_JAVA_OPTS);
    expect(props['javax.net.ssl.trustStore']).toBe(path.posix.join(onJenkins!.target, TLS_FILES.javaTruststore));
    expect(props['javax.net.ssl.trustStorePassword']).toBe(TRUSTSTORE_PASSWORD);
    expect(props['javax.net.ssl.trustStoreType']).toBe('PKCS12');
    expect(props['jenkins.install.runSetupWizard']).toBe('false');
    expect(jenkinsEnv.GIT_SSL_CAINFO).toBe(path.posix.join(onJenkins!.target, TLS_FILES.caBundle));
  });

  it('Jenkins starts only once the sidecar is healthy, and the sidecar\'s check is readiness on its HTTP port', () => {
    expect(jenkins.depends_on.sidecar.condition).toBe('service_healthy');
    const test: string[] = sidecar.healthcheck.test;
    expect(test[0]).toBe('CMD');
    expect(test.slice(1, 3)).toEqual(['node', 'dist/ops/healthcheck.js']);
    const url = new URL(test[3]);
    expect(url.pathname).toBe('/_sidecar/ready');
    expect(url.port).toBe(flagValue(sidecarArgs, '--port'));
    expect(jenkins.healthcheck.test.join(' ')).toMatch(/curl -fsS .*http:\/\/127\.0\.0\.1:8080\/login/);
  });

  it('port 443 as a non-root user: the unprivileged-port sysctl is set and no capability is needed', () => {
    const httpsPort = Number(flagValue(sidecarArgs, '--https-port'));
    expect(httpsPort).toBeLessThan(1024);
    expect(Number(sidecar.sysctls['net.ipv4.ip_unprivileged_port_start'])).toBeLessThanOrEqual(httpsPort);
    expect(sidecar.cap_drop).toEqual(['ALL']);
    expect(sidecar.cap_add).toBeUndefined();
    expect(sidecar.security_opt).toContain('no-new-privileges:true');
    expect(sidecar.user).toBeUndefined(); // the image's USER (non-root) applies
  });
});

describe('deploy/jenkins: plugins and Configuration as Code', () => {
  const dockerfile = parseDockerfile(read('deploy/jenkins/Dockerfile'));
  const casc = readYaml('deploy/jenkins/casc.yaml');

  it('builds on jenkins/jenkins:lts-jdk21 and installs the four plugins with jenkins-plugin-cli', () => {
    expect(jenkins.build.context).toBe('deploy/jenkins');
    expect(dockerfile.filter((i) => i.op === 'FROM').map((i) => i.args)).toEqual(['jenkins/jenkins:lts-jdk21']);
    const runs = dockerfile.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(runs).toMatch(/jenkins-plugin-cli --plugin-file \/usr\/share\/jenkins\/ref\/plugins\.txt/);
    const plugins = read('deploy/jenkins/plugins.txt')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':')[0]);
    expect(plugins).toEqual(expect.arrayContaining(['cloudbees-bitbucket-branch-source', 'configuration-as-code', 'job-dsl', 'workflow-aggregator']));
  });

  it('JCasC is read from where the image puts it, and every variable it uses is set for Jenkins', () => {
    const copied = dockerfile.find((i) => i.op === 'COPY' && /casc\.yaml/.test(i.args))!.args.split(/\s+/).at(-1);
    expect(jenkinsEnv.CASC_JENKINS_CONFIG).toBe(copied);
    for (const v of yamlVariables('deploy/jenkins/casc.yaml')) expect(Object.keys(jenkinsEnv)).toContain(v);
  });

  it('the credential is the demo token with an e-mail user name, and the sidecar\'s demo client accepts it', () => {
    const creds = casc.credentials.system.domainCredentials[0].credentials.map((c: Record<string, unknown>) => c.usernamePassword).filter(Boolean);
    expect(creds).toHaveLength(1);
    const cred = creds[0] as { id: string; username: string; password: string; scope: string };
    const token = interpolate(cred.password, jenkinsEnv);
    const username = interpolate(cred.username, jenkinsEnv);
    // The plugin sends a username/password only with an e-mail user name and a 192-character password.
    expect(token).toBe(DEMO_TOKEN);
    expect(token).toHaveLength(TOKEN_LENGTH);
    expect(username).toBe(DEMO_EMAIL);
    expect(username).toMatch(/^[^@\s]+@[^@\s]+\.[^@\s]+$/);
    // demoConfig only reads the fake's URL and credentials.
    const fake = { url: 'http://127.0.0.1:1', credentials: { email: 'x@example.com', apiToken: 'x' } } as unknown as FakeBitbucket;
    const config = demoConfig(fake, { host: '127.0.0.1', port: 0 });
    const client = config.clients.find((c) => [c.token, ...(c.tokens ?? [])].some((t) => t?.sha256 === sha256Hex(token)));
    expect(client).toBeDefined();
    // The organization folder uses that credential for the workspace the client may see.
    const script = interpolate(casc.jobs[0].script as string, jenkinsEnv);
    expect(script).toContain(`credentialsId('${cred.id}')`);
    const owner = /repoOwner\('([^']+)'\)/.exec(script)![1];
    expect(client!.scope.map((s) => s.workspace)).toContain(owner);
    expect(script).toMatch(/^organizationFolder\(/);
    expect(script).toMatch(/organizations \{\s+bitbucket \{/);
  });

  it('configures the Bitbucket Cloud endpoint', () => {
    expect(casc.unclassified.bitbucketendpointconfiguration.endpoints[0]).toHaveProperty('bitbucketCloudEndpoint');
  });
});

describe('real Bitbucket: .env + compose.real.yaml + deploy/sidecar/config.yaml', () => {
  const exampleText = read('.env.example');
  const example = Object.fromEntries(
    exampleText
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  /** A filled-in .env: the example's values, placeholders replaced by plausible ones. */
  const token = 'bbsc_' + 'x'.repeat(TOKEN_LENGTH - 5);
  const filled: Record<string, string> = {
    ...example,
    BITBUCKET_EMAIL: 'owner@example.com',
    BITBUCKET_API_TOKEN: 'ATATT-not-a-real-token',
    BITBUCKET_WORKSPACE: 'acme',
    SIDECAR_CLIENT_TOKEN: token,
    SIDECAR_CLIENT_TOKEN_SHA256: sha256Hex(token),
    JENKINS_ADMIN_PASSWORD: 'secret',
  };

  it('.env selects compose.real.yaml through COMPOSE_FILE, and .env itself is never committed', () => {
    expect(example.COMPOSE_FILE.split(/[:;]/)).toEqual(['compose.yaml', 'compose.real.yaml']);
    expect(execFileSync('git', ['check-ignore', '.env'], { cwd: ROOT, encoding: 'utf8' }).trim()).toBe('.env');
  });

  it('every variable the real setup needs is documented in .env.example', () => {
    const needed = [...yamlVariables('compose.real.yaml'), ...yamlVariables('deploy/sidecar/config.yaml')];
    for (const v of needed) expect(Object.keys(example)).toContain(v);
  });

  it('compose refuses to start with the real override while a required value is missing', () => {
    expect(() => interpolate(read('compose.real.yaml'), { ...filled, BITBUCKET_API_TOKEN: '' })).toThrow(/BITBUCKET_API_TOKEN/);
    // Not compose.yaml's demo default: the real setup has no admin password until .env gives one.
    expect(() => interpolate(read('compose.real.yaml'), { ...filled, JENKINS_ADMIN_PASSWORD: '' })).toThrow(/JENKINS_ADMIN_PASSWORD/);
    expect(parse(interpolate(read('compose.real.yaml'), filled)).services.jenkins.environment.JENKINS_ADMIN_PASSWORD).toBe('secret');
  });

  it('the override runs `serve` with the mounted config, which loads with the .env values', () => {
    const real = parse(interpolate(read('compose.real.yaml'), filled));
    const args: string[] = real.services.sidecar.command;
    expect(args.slice(0, 2)).toEqual(['serve', '--config']);
    const mount = mountsOf(real.services.sidecar).find((m) => m.target === args[2]);
    expect(mount).toEqual({ source: './deploy/sidecar/config.yaml', target: args[2], readOnly: true });

    // The sidecar container's environment = compose.yaml's merged with the override's.
    const env = { ...environmentOf(sidecar), ...environmentOf(real.services.sidecar) };
    for (const v of yamlVariables('deploy/sidecar/config.yaml')) expect(Object.keys(env)).toContain(v);
    const dir = mkdtempSync(path.join(tmpdir(), 'real-config-'));
    try {
      writeFileSync(path.join(dir, 'config.yaml'), read('deploy/sidecar/config.yaml'));
      const config = loadConfigFile(path.join(dir, 'config.yaml'), env);
      // Same TLS directory, ports and health check as in demo mode: the rest of compose.yaml still fits.
      expect(config.tls.dir).toBe(tlsDir);
      expect(String(config.server.https?.port)).toBe(flagValue(sidecarArgs, '--https-port'));
      expect(String(config.server.http.port)).toBe(new URL(sidecar.healthcheck.test[3]).port);
      expect(config.server.https?.hostnames).toEqual(['api.bitbucket.org', 'bitbucket.org']);
      expect(config.upstream.apiUrl).toBe('https://api.bitbucket.org');
      // Jenkins' token (from .env) is the one client the sidecar accepts.
      const jenkinsReal = { ...jenkinsEnv, ...environmentOf(real.services.jenkins) };
      expect(config.clients.map((c) => c.token?.sha256)).toEqual([sha256Hex(jenkinsReal.SIDECAR_CLIENT_TOKEN)]);
      expect(config.clients[0].scope).toEqual([{ workspace: 'acme' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the V8 heap bound the sidecar runs with (the image\'s NODE_OPTIONS unless compose sets one) fits cache.maxBytes, in demo mode and with the real config', () => {
    const dockerfile = parseDockerfile(read('Dockerfile'));
    const image = dockerEnv(dockerfile, Math.max(...dockerfile.map((i) => i.stage)));
    const real = parse(interpolate(read('compose.real.yaml'), filled));
    const fake = { url: 'http://127.0.0.1:1', credentials: { email: 'x@example.com', apiToken: 'x' } } as unknown as FakeBitbucket;
    const demoMaxBytes = demoConfig(fake, { host: '127.0.0.1', port: 0 }).cache.maxBytes;
    const demoEnv = { ...image, ...environmentOf(sidecar) };
    const realEnv = { ...demoEnv, ...environmentOf(real.services.sidecar) };
    const dir = mkdtempSync(path.join(tmpdir(), 'real-config-'));
    try {
      writeFileSync(path.join(dir, 'config.yaml'), read('deploy/sidecar/config.yaml'));
      const realMaxBytes = loadConfigFile(path.join(dir, 'config.yaml'), realEnv).cache.maxBytes;
      // docs/configuration.md "Memory": --max-old-space-size=<64 + cache.maxBytes in MiB>.
      expect(heapBounds(demoEnv.NODE_OPTIONS).oldSpace).toBe(64 + demoMaxBytes / 1024 ** 2);
      expect(heapBounds(realEnv.NODE_OPTIONS).oldSpace).toBe(64 + realMaxBytes / 1024 ** 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the demo token never reaches a real setup', () => {
    const real = parse(interpolate(read('compose.real.yaml'), filled));
    const jenkinsReal = { ...environmentOf(loadCompose('compose.yaml', filled).services.jenkins), ...environmentOf(real.services.jenkins) };
    expect(jenkinsReal.SIDECAR_CLIENT_TOKEN).toBe(token);
    expect(read('deploy/sidecar/config.yaml')).not.toContain(sha256Hex(DEMO_TOKEN));
  });
});
