import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { rootCertificates } from 'node:tls';
import { exportTrust, startTls, TLS_FILES, type TlsManager } from '../../src/tls';
import { loadOrCreateCa } from '../../src/tls/ca';
import { signServerCertificate, splitPemCertificates } from '../../src/tls/leaf';
import { removeTempDirs, run, tempDir } from './helpers';

const HOSTS = ['api.bitbucket.org', 'bitbucket.org'];
const DAY = 24 * 60 * 60 * 1000;

async function openssl(args: string[]) {
  return run('openssl', args);
}

async function x509Text(file: string): Promise<string> {
  const r = await openssl(['x509', '-in', file, '-noout', '-text']);
  expect(r.code).toBe(0);
  return r.stdout;
}

describe('tls CA and leaf', () => {
  let dir: string;
  let manager: TlsManager;

  beforeAll(async () => {
    dir = path.join(await tempDir(), 'tls'); // not existing yet: startTls creates it
    manager = await startTls({ dir, hostnames: HOSTS });
  });
  afterAll(async () => {
    manager.close();
    await removeTempDirs();
  });

  it('writes the CA, the leaf and the trust exports, keys 0600 and the directory 0700', async () => {
    const names = (await fs.readdir(dir)).sort();
    expect(names).toEqual(Object.values(TLS_FILES).sort());
    const mode = async (f: string) => (await fs.stat(path.join(dir, f))).mode & 0o777;
    expect(await mode(TLS_FILES.issuingCaKey)).toBe(0o600);
    expect(await mode(TLS_FILES.leafKey)).toBe(0o600);
    expect(await mode(TLS_FILES.caCert)).toBe(0o644);
    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
    // The root's private key is never stored: the only keys in the directory are the issuing CA's and the leaf's.
    const withKeys: string[] = [];
    for (const f of names) if ((await fs.readFile(path.join(dir, f))).includes('PRIVATE KEY')) withKeys.push(f);
    expect(withKeys.sort()).toEqual([TLS_FILES.issuingCaKey, TLS_FILES.leafKey].sort());
    expect(manager.caPem).toBe(await fs.readFile(path.join(dir, TLS_FILES.caCert), 'utf8'));
  });

  it('creates root and issuing CA as ECDSA P-256, 10 years, CA critical, keyCertSign+cRLSign, critical name constraints', async () => {
    for (const file of [TLS_FILES.caCert, TLS_FILES.issuingCaCert]) {
      const text = await x509Text(path.join(dir, file));
      expect(text).toMatch(/Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/);
      expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE/);
      expect(text).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
      const nc = /X509v3 Name Constraints: critical\s+Permitted:\s+((?:\s*DNS:\S+\n)+)\s+Excluded:\s+IP:0\.0\.0\.0\/0\.0\.0\.0\s+IP:0:0:0:0:0:0:0:0\/0:0:0:0:0:0:0:0/.exec(text);
      expect(nc).not.toBeNull();
      expect(nc![1].trim().split(/\s+/)).toEqual(['DNS:api.bitbucket.org', 'DNS:bitbucket.org']);
      const cert = new X509Certificate(await fs.readFile(path.join(dir, file)));
      const years = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / (365.25 * DAY);
      expect(years).toBeGreaterThan(9.99);
      expect(years).toBeLessThan(10.01);
    }
  });

  it('issues the leaf for exactly the configured names, P-256, ~90 days, serverAuth, chaining to ca.pem', async () => {
    const leafFile = path.join(dir, TLS_FILES.leafCert);
    const text = await x509Text(leafFile);
    expect(text).toMatch(/X509v3 Subject Alternative Name:\s*\n\s*DNS:api\.bitbucket\.org, DNS:bitbucket\.org\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s*\n\s*TLS Web Server Authentication\n/);
    expect(text).toMatch(/NIST CURVE: P-256/);
    expect(text).toMatch(/CA:FALSE/);
    const leaf = new X509Certificate(manager.leafCertificatePem());
    const days = (Date.parse(leaf.validTo) - Date.now()) / DAY;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThanOrEqual(90);
    // leaf.pem is the chain the server sends: the leaf, then the issuing CA.
    const chain = splitPemCertificates(await fs.readFile(leafFile, 'utf8'));
    expect(chain).toHaveLength(2);
    expect(chain[1]).toBe(await fs.readFile(path.join(dir, TLS_FILES.issuingCaCert), 'utf8'));
    const verify = await openssl(['verify', '-CAfile', path.join(dir, TLS_FILES.caCert), '-untrusted', path.join(dir, TLS_FILES.issuingCaCert), '-purpose', 'sslserver', '-verify_hostname', 'api.bitbucket.org', leafFile]);
    expect(verify.stdout).toContain(': OK');
    expect(verify.code).toBe(0);
  });

  it('makes the CA unable to vouch for other names: openssl rejects example.com (with and without a SAN) signed by the CA key', async () => {
    const ca = await loadOrCreateCa(dir, HOSTS);
    const now = new Date();
    const tmp = await tempDir();
    for (const [name, subjectAltName] of [['san', true], ['cn-only', false]] as const) {
      const rogue = await signServerCertificate(ca, { dnsNames: ['example.com'], notBefore: now, notAfter: new Date(now.getTime() + DAY), subjectAltName });
      const file = path.join(tmp, `${name}.pem`);
      await fs.writeFile(file, rogue.certPem);
      const r = await openssl(['verify', '-CAfile', path.join(dir, TLS_FILES.caCert), '-untrusted', path.join(dir, TLS_FILES.issuingCaCert), file]);
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toContain('permitted subtree violation');
    }
    // Control: the same path with an allowed name verifies.
    const allowed = await signServerCertificate(ca, { dnsNames: ['api.bitbucket.org'], notBefore: now, notAfter: new Date(now.getTime() + DAY) });
    await fs.writeFile(path.join(tmp, 'ok.pem'), allowed.certPem);
    const ok = await openssl(['verify', '-CAfile', path.join(dir, TLS_FILES.caCert), '-untrusted', path.join(dir, TLS_FILES.issuingCaCert), path.join(tmp, 'ok.pem')]);
    expect(ok.code).toBe(0);
  });

  it('reuses the CA (and a leaf not yet due) when started again on the same directory', async () => {
    const before = new X509Certificate(manager.caPem!).fingerprint256;
    const again = await startTls({ dir, hostnames: ['BITBUCKET.org', 'api.bitbucket.org'] });
    try {
      expect(new X509Certificate(again.caPem!).fingerprint256).toBe(before);
      expect(new X509Certificate(again.leafCertificatePem()).serialNumber).toBe(new X509Certificate(manager.leafCertificatePem()).serialNumber);
    } finally {
      again.close();
    }
  });

  it('refuses a host name the existing CA does not permit, naming it, and leaves the CA untouched', async () => {
    const files = async () => Promise.all([TLS_FILES.caCert, TLS_FILES.issuingCaCert, TLS_FILES.issuingCaKey].map((f) => fs.readFile(path.join(dir, f), 'utf8')));
    const before = await files();
    await expect(startTls({ dir, hostnames: [...HOSTS, 'git.example.com'] })).rejects.toThrow(
      /may only vouch for api\.bitbucket\.org, bitbucket\.org, but the configured host names also include git\.example\.com/,
    );
    await expect(exportTrust({ dir, hostnames: ['git.example.com'] }, 'pem', path.join(dir, 'x.pem'))).rejects.toThrow(/git\.example\.com/);
    expect(await files()).toEqual(before);
  });

  it('refuses an incomplete CA instead of minting a new one', async () => {
    const copy = await tempDir();
    await fs.copyFile(path.join(dir, TLS_FILES.caCert), path.join(copy, TLS_FILES.caCert));
    await fs.copyFile(path.join(dir, TLS_FILES.issuingCaCert), path.join(copy, TLS_FILES.issuingCaCert));
    await expect(startTls({ dir: copy, hostnames: HOSTS })).rejects.toThrow(/CA is incomplete \(missing issuing-ca\.key\)/);
    expect((await fs.readdir(copy)).sort()).toEqual([TLS_FILES.caCert, TLS_FILES.issuingCaCert].sort());
  });

  it('constrains a new CA to extra configured names too, and puts them in the leaf', async () => {
    const other = await tempDir();
    const m = await startTls({ dir: other, hostnames: [...HOSTS, 'bitbucket-sidecar.internal'] });
    try {
      const text = await x509Text(path.join(other, TLS_FILES.caCert));
      expect(text).toMatch(/Permitted:\s+DNS:api\.bitbucket\.org\s+DNS:bitbucket\.org\s+DNS:bitbucket-sidecar\.internal\s+Excluded/);
      expect(new X509Certificate(m.leafCertificatePem()).subjectAltName).toBe('DNS:api.bitbucket.org, DNS:bitbucket.org, DNS:bitbucket-sidecar.internal');
    } finally {
      m.close();
    }
  });

  it('rejects names a name constraint cannot express', async () => {
    for (const bad of ['*.bitbucket.org', '127.0.0.1', 'bitbucket.org:443', 'bitbucket.org.']) {
      await expect(startTls({ dir: await tempDir(), hostnames: [bad] })).rejects.toThrow(/not a usable host name/);
    }
  });

  it('exportTrust writes pem, bundle and java for the CA in the directory (creating it when absent)', async () => {
    const fresh = path.join(await tempDir(), 'new');
    const out = await tempDir();
    await exportTrust({ dir: fresh, hostnames: HOSTS }, 'pem', path.join(out, 'ca.pem'));
    const caPem = await fs.readFile(path.join(fresh, TLS_FILES.caCert), 'utf8');
    expect(await fs.readFile(path.join(out, 'ca.pem'), 'utf8')).toBe(caPem);
    await exportTrust({ dir: fresh, hostnames: HOSTS }, 'bundle', path.join(out, 'bundle.pem'));
    const bundle = splitPemCertificates(await fs.readFile(path.join(out, 'bundle.pem'), 'utf8'));
    expect(bundle).toHaveLength(rootCertificates.length + 1);
    expect(bundle[bundle.length - 1]).toBe(caPem);
    expect(bundle[0].trim()).toBe(rootCertificates[0].trim());
    await exportTrust({ dir: fresh, hostnames: HOSTS }, 'java', path.join(out, 'ts.p12'));
    const p12 = await run('openssl', ['pkcs12', '-in', path.join(out, 'ts.p12'), '-passin', 'pass:changeit', '-nokeys']);
    expect(p12.code).toBe(0);
    expect(splitPemCertificates(p12.stdout)).toHaveLength(rootCertificates.length + 1);
    // Same CA on the next export: it was created once.
    await exportTrust({ dir: fresh, hostnames: HOSTS }, 'pem', path.join(out, 'again.pem'));
    expect(await fs.readFile(path.join(out, 'again.pem'), 'utf8')).toBe(caPem);
  });
});
