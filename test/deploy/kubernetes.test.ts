/**
 * examples/kubernetes, checked for the same wiring as compose: names → 127.0.0.1 through hostAliases,
 * the trust exports shared through an emptyDir (written by the sidecar, read-only for Jenkins), the
 * start order (native sidecar + startup probe), probes, non-root port 443, the upstream secret only
 * in the sidecar, and a sidecar configuration that loads.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { mintToken, sha256Hex } from '../../src/auth/tokens';
import { parseConfigText } from '../../src/config/load';
import { TLS_FILES, TRUSTSTORE_PASSWORD } from '../../src/tls';
import { heapBounds, readYaml, readYamlDocs, systemProperties, yamlVariables } from './helpers';

/* eslint-disable @typescript-eslint/no-explicit-any */
const DIR = 'examples/kubernetes';
const kustomization = readYaml(`${DIR}/kustomization.yaml`);
const docs: any[] = (kustomization.resources as string[]).flatMap((f) => readYamlDocs(`${DIR}/${f}`));
const find = (kind: string, name?: string) => docs.find((d) => d.kind === kind && (!name || d.metadata.name === name));
const statefulSet = find('StatefulSet');
const pod = statefulSet.spec.template.spec;
const sidecar = pod.initContainers.find((c: any) => c.name === 'bitbucket-sidecar');
const jenkins = pod.containers.find((c: any) => c.name === 'jenkins');
const envOf = (c: any): Record<string, any> => Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value ?? e.valueFrom]));
const mountAt = (c: any, p: string) => (c.volumeMounts ?? []).find((m: any) => m.mountPath === p);
const configMap = find('ConfigMap', 'bitbucket-sidecar-config');
const sidecarConfigText: string = configMap.data['config.yaml'];

describe('examples/kubernetes', () => {
  it('maps api.bitbucket.org and bitbucket.org to 127.0.0.1 inside the pod', () => {
    expect(pod.hostAliases).toEqual([{ ip: '127.0.0.1', hostnames: ['api.bitbucket.org', 'bitbucket.org'] }]);
    const https = (parseConfigText(sidecarConfigText.replace(/"\$\{file:[^}]+\}"/g, '"x"')).server.https)!;
    expect(['127.0.0.1', '0.0.0.0']).toContain(https.host);
    expect(https.port).toBe(443);
    expect(https.hostnames).toEqual(['api.bitbucket.org', 'bitbucket.org']);
  });

  it('runs the sidecar as a native sidecar with a startup probe on readiness, so Jenkins starts after it', () => {
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.startupProbe.httpGet.path).toMatch(/^\/_sidecar\/ready\b/);
    expect(sidecar.readinessProbe.httpGet.path).toMatch(/^\/_sidecar\/ready\b/);
    expect(sidecar.livenessProbe.httpGet.path).toBe('/_sidecar/health');
    // A Bitbucket outage must not take the Jenkins UI out of the Service.
    expect(sidecar.readinessProbe.httpGet.path).toContain('upstream=skip');
    const opsPort = sidecar.ports.find((p: any) => p.name === sidecar.readinessProbe.httpGet.port).containerPort;
    const config = parseConfigText(sidecarConfigText.replace(/"\$\{file:[^}]+\}"/g, '"x"'));
    expect(config.server.http.port).toBe(opsPort);
    expect(config.server.http.host).toBe('0.0.0.0'); // the kubelet probes the pod IP
    expect(jenkins.readinessProbe).toBeDefined();
    expect(jenkins.livenessProbe).toBeDefined();
  });

  it('shares the trust exports through an emptyDir: the sidecar writes its tls.dir, Jenkins reads the files its options name', () => {
    const config = parseConfigText(sidecarConfigText.replace(/"\$\{file:[^}]+\}"/g, '"x"'));
    const written = mountAt(sidecar, config.tls.dir);
    expect(written).toBeDefined();
    expect(written.readOnly).not.toBe(true);
    const volume = pod.volumes.find((v: any) => v.name === written.name);
    expect(volume).toHaveProperty('emptyDir');
    const read = jenkins.volumeMounts.find((m: any) => m.name === written.name);
    expect(read.readOnly).toBe(true);
    const env = envOf(jenkins);
    const props = systemProperties(env.JENKINS_JAVA_OPTS);
    expect(props['javax.net.ssl.trustStore']).toBe(path.posix.join(read.mountPath, TLS_FILES.javaTruststore));
    expect(props['javax.net.ssl.trustStorePassword']).toBe(TRUSTSTORE_PASSWORD);
    expect(props['javax.net.ssl.trustStoreType']).toBe('PKCS12');
    expect(env.GIT_SSL_CAINFO).toBe(path.posix.join(read.mountPath, TLS_FILES.caBundle));
  });

  it('binds 443 as a non-root user with no capabilities, through the pod\'s unprivileged-port sysctl', () => {
    expect(pod.securityContext.sysctls).toContainEqual({ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' });
    const sc = sidecar.securityContext;
    expect(sc.runAsNonRoot).toBe(true);
    expect(sc.runAsUser).toBe(10001);
    expect(sc.runAsUser).not.toBe(jenkins.securityContext.runAsUser);
    expect(sc.capabilities.drop).toEqual(['ALL']);
    expect(sc.capabilities.add).toBeUndefined();
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sidecar.ports.map((p: any) => p.containerPort)).toContain(443);
  });

  it('keeps the upstream token in a Secret only the sidecar mounts, and Jenkins\' token in another', () => {
    const upstreamVolume = pod.volumes.find((v: any) => v.secret?.secretName === 'bitbucket-upstream');
    expect(find('Secret', 'bitbucket-upstream')).toBeDefined();
    expect(sidecar.volumeMounts.map((m: any) => m.name)).toContain(upstreamVolume.name);
    expect(jenkins.volumeMounts.map((m: any) => m.name)).not.toContain(upstreamVolume.name);
    expect(JSON.stringify(jenkins)).not.toContain('bitbucket-upstream');
    expect(envOf(jenkins).SIDECAR_CLIENT_TOKEN).toEqual({ secretKeyRef: { name: 'jenkins-sidecar-client', key: 'token' } });
    expect(find('Secret', 'jenkins-sidecar-client')).toBeDefined();
    // The ConfigMap holds no secret: only ${file:...} references and a hash.
    expect(sidecarConfigText).not.toMatch(/api-token: |ATATT/);
  });

  it('loads as a sidecar configuration once the Secret files exist where it reads them', () => {
    const secretMount = sidecar.volumeMounts.find((m: any) => m.name === pod.volumes.find((v: any) => v.secret?.secretName === 'bitbucket-upstream').name).mountPath;
    const refs = [...sidecarConfigText.matchAll(/\$\{file:([^}]+)\}/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(0);
    const tmp = mkdtempSync(path.join(tmpdir(), 'k8s-'));
    try {
      const secret = find('Secret', 'bitbucket-upstream').stringData as Record<string, string>;
      let text = sidecarConfigText;
      for (const ref of refs) {
        expect(path.posix.dirname(ref)).toBe(secretMount);
        expect(Object.keys(secret)).toContain(path.posix.basename(ref)); // the key exists in the Secret
        const local = path.join(tmp, path.posix.basename(ref));
        mkdirSync(path.dirname(local), { recursive: true });
        writeFileSync(local, `${secret[path.posix.basename(ref)]}\n`);
        text = text.split(`\${file:${ref}}`).join(`\${file:${local}}`);
      }
      const token = mintToken();
      text = text.replace(/0{64}/, sha256Hex(token));
      const config = parseConfigText(text, {});
      expect(config.upstream.auth).toMatchObject({ type: 'basic', username: secret.email, password: secret['api-token'] });
      expect(config.clients[0].scope[0].workspace).toBe(envOf(jenkins).BITBUCKET_WORKSPACE);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('bounds the sidecar\'s V8 heap for its cache.maxBytes, and its memory limit leaves room for the cache and the process', () => {
    const config = parseConfigText(sidecarConfigText.replace(/"\$\{file:[^}]+\}"/g, '"x"'));
    const { semiSpace, oldSpace } = heapBounds(envOf(sidecar).NODE_OPTIONS);
    expect(oldSpace).toBe(64 + config.cache.maxBytes / 1024 ** 2); // docs/configuration.md "Memory"
    expect(semiSpace).toBeDefined();
    expect(envOf(sidecar).MALLOC_MMAP_THRESHOLD_).toBe('131072'); // as the image sets it
    const limit = /^(\d+)Mi$/.exec(sidecar.resources.limits.memory);
    expect(limit).not.toBeNull();
    expect(Number(limit![1]) * 1024 ** 2).toBeGreaterThanOrEqual(config.cache.maxBytes + 128 * 1024 ** 2);
  });

  it('uses the Jenkins image from deploy/jenkins, whose JCasC variables are all set', () => {
    const env = envOf(jenkins);
    const used = yamlVariables('deploy/jenkins/casc.yaml');
    expect(used).toEqual(expect.arrayContaining(['SIDECAR_CLIENT_TOKEN', 'BITBUCKET_WORKSPACE']));
    for (const v of used) expect(Object.keys(env)).toContain(v);
  });
});
