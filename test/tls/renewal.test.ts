import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { startTls, TLS_FILES, type TlsManager } from '../../src/tls';
import { loadOrCreateCa } from '../../src/tls/ca';
import { signServerCertificate } from '../../src/tls/leaf';
import { peerSerial, removeTempDirs, run, startHttps, tempDir, waitFor, type TestServer } from './helpers';

const HOSTS = ['api.bitbucket.org', 'bitbucket.org'];
/** 8.64 s leaves, renewed a fifth of the way in: about a second after issue. */
const SHORT = { leafValidityDays: 0.0001, renewAtFraction: 0.2 };

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
afterAll(() => removeTempDirs());

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

function peerRaw(port: number, servername: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      resolve(raw);
    });
    socket.on('error', reject);
  });
}

describe('tls renewal without restart', () => {
  const managers: TlsManager[] = [];
  const servers: TestServer[] = [];
  afterAll(async () => {
    managers.forEach((m) => m.close());
    await Promise.all(servers.map((s) => s.close()));
  });
  async function serve(m: TlsManager): Promise<TestServer> {
    const s = await startHttps(m.serverOptions());
    m.attach(s.server);
    servers.push(s);
    return s;
  }

  it('renewNow(): new connections, with and without SNI, see the new leaf on the same server', async () => {
    const dir = await tempDir();
    const m = await startTls({ dir, hostnames: HOSTS });
    managers.push(m);
    const s = await serve(m);
    const first = serialOf(m.leafCertificatePem());
    expect(await peerSerial(s.port, 'api.bitbucket.org')).toBe(first);
    expect(await peerSerial(s.port, undefined)).toBe(first);
    const firstContext = m.secureContext();

    await m.renewNow();

    const second = serialOf(m.leafCertificatePem());
    expect(second).not.toBe(first);
    expect(m.secureContext()).not.toBe(firstContext);
    expect(await peerSerial(s.port, 'api.bitbucket.org')).toBe(second);
    expect(await peerSerial(s.port, 'bitbucket.org')).toBe(second);
    expect(await peerSerial(s.port, undefined)).toBe(second); // default context, kept in step by attach()
    // The renewed leaf is on disk, its key still private.
    expect(serialOf(await fs.readFile(path.join(dir, TLS_FILES.leafCert), 'utf8'))).toBe(second);
    expect((await fs.stat(path.join(dir, TLS_FILES.leafKey))).mode & 0o777).toBe(0o600);
  });

  it('the unref-ed timer renews a short-lived leaf by itself, and close() stops it', async () => {
    const dir = await tempDir();
    const before = timers();
    const m = await startTls({ dir, hostnames: HOSTS, ...SHORT, checkIntervalMs: 100 });
    managers.push(m);
    expect(timers()).toBe(before); // the check timer does not keep the process alive
    const s = await serve(m);
    const first = await peerSerial(s.port, 'api.bitbucket.org');
    expect(first).toBe(serialOf(m.leafCertificatePem()));

    const renewed = await waitFor(async () => (await peerSerial(s.port, 'api.bitbucket.org')) !== first, 5000, 100);
    expect(renewed).toBe(true);
    m.close();
    await sleep(100); // let a renewal already under way finish
    const current = await peerSerial(s.port, 'api.bitbucket.org');
    expect(current).toBe(serialOf(m.leafCertificatePem()));
    await sleep(1500); // longer than the ~1 s until the next renewal would be due
    expect(await peerSerial(s.port, 'api.bitbucket.org')).toBe(current);
  });

  it('at start, keeps the CA but replaces a leaf that is due', async () => {
    const dir = await tempDir();
    const a = await startTls({ dir, hostnames: HOSTS, ...SHORT, checkIntervalMs: 60_000 });
    a.close();
    await sleep(1200);
    const b = await startTls({ dir, hostnames: HOSTS, ...SHORT, checkIntervalMs: 60_000 });
    b.close();
    expect(b.caPem).toBe(a.caPem);
    expect(serialOf(b.leafCertificatePem())).not.toBe(serialOf(a.leafCertificatePem()));
  });
});

describe('tls with a brought certificate (certFile / keyFile)', () => {
  const managers: TlsManager[] = [];
  afterAll(() => managers.forEach((m) => m.close()));

  async function selfSigned(dir: string, name: string): Promise<{ certFile: string; keyFile: string }> {
    const certFile = path.join(dir, `${name}.crt`);
    const keyFile = path.join(dir, `${name}.key`);
    const r = await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=api.bitbucket.org', '-addext', 'subjectAltName=DNS:api.bitbucket.org,DNS:bitbucket.org',
      '-keyout', keyFile, '-out', certFile,
    ]);
    expect(r.code).toBe(0);
    return { certFile, keyFile };
  }

  it('serves the brought certificate as is, writes nothing to tls.dir, and re-reads the files when they change', async () => {
    const work = await tempDir();
    const dir = path.join(work, 'tls');
    const own = await selfSigned(work, 'own');
    const m = await startTls({ dir, hostnames: HOSTS, ...own, checkIntervalMs: 100 });
    managers.push(m);
    const s = await startHttps(m.serverOptions());
    m.attach(s.server);
    try {
      const fileDer = new X509Certificate(await fs.readFile(own.certFile)).raw;
      expect((await peerRaw(s.port, 'api.bitbucket.org')).equals(fileDer)).toBe(true);
      expect(m.caPem).toBeUndefined();
      await expect(fs.stat(dir)).rejects.toThrow(/ENOENT/); // no CA, no exports

      // A rotation by whoever manages the files (e.g. cert-manager) is picked up without a restart.
      const next = await selfSigned(work, 'next');
      await fs.rename(next.keyFile, own.keyFile);
      await fs.rename(next.certFile, own.certFile);
      const nextDer = new X509Certificate(await fs.readFile(own.certFile)).raw;
      expect(await waitFor(async () => (await peerRaw(s.port, 'api.bitbucket.org')).equals(nextDer), 5000, 100)).toBe(true);
      expect(new X509Certificate(m.leafCertificatePem()).raw.equals(nextDer)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('exports our CA when the brought certificate chains to the CA in tls.dir', async () => {
    const dir = await tempDir();
    const ca = await loadOrCreateCa(dir, HOSTS);
    const now = new Date();
    const issued = await signServerCertificate(ca, { dnsNames: HOSTS, notBefore: now, notAfter: new Date(now.getTime() + 86_400_000) });
    const work = await tempDir();
    await fs.writeFile(path.join(work, 'chain.pem'), issued.chainPem);
    await fs.writeFile(path.join(work, 'key.pem'), issued.keyPem, { mode: 0o600 });
    const m = await startTls({ dir, hostnames: HOSTS, certFile: path.join(work, 'chain.pem'), keyFile: path.join(work, 'key.pem') });
    managers.push(m);
    expect(m.caPem).toBe(ca.rootPem);
    expect(m.leafCertificatePem()).toBe(issued.certPem);
    expect((await fs.readdir(dir)).sort()).toEqual([TLS_FILES.caBundle, TLS_FILES.caCert, TLS_FILES.issuingCaCert, TLS_FILES.issuingCaKey, TLS_FILES.javaTruststore].sort());
  });

  it('refuses a key that does not belong to the certificate, and a certFile without keyFile', async () => {
    const work = await tempDir();
    const a = await selfSigned(work, 'a');
    const b = await selfSigned(work, 'b');
    await expect(startTls({ dir: path.join(work, 'tls'), hostnames: HOSTS, certFile: a.certFile, keyFile: b.keyFile })).rejects.toThrow(
      /the private key does not belong to the \(first\) certificate/,
    );
    await expect(startTls({ dir: path.join(work, 'tls'), hostnames: HOSTS, certFile: a.certFile })).rejects.toThrow(/certFile and keyFile go together/);
  });
});
