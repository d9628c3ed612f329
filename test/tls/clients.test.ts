/**
 * The acceptance checks with the real clients Jenkins uses: the JVM (keytool, an HTTPS client compiled
 * here), git (libcurl) and curl/openssl. Every child gets a clean environment (see cleanEnv).
 */
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { rootCertificates } from 'node:tls';
import { startTls, TLS_FILES, TRUSTSTORE_PASSWORD, exportTrust, type TlsManager } from '../../src/tls';
import { loadOrCreateCa } from '../../src/tls/ca';
import { signServerCertificate } from '../../src/tls/leaf';
import { buildPkcs12Truststore, trustedCertificates } from '../../src/tls/trust';
import { cleanEnv, removeTempDirs, run, startHttps, tempDir, type TestServer } from './helpers';

const HOSTS = ['api.bitbucket.org', 'bitbucket.org'];

const JAVA_CLIENT = `
import java.io.InputStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import javax.net.ssl.HttpsURLConnection;

/** GET with the JVM's default truststore handling and default hostname verification. */
public class HttpsProbe {
  public static void main(String[] args) {
    try {
      HttpsURLConnection c = (HttpsURLConnection) new URL(args[0]).openConnection();
      c.setConnectTimeout(10000);
      c.setReadTimeout(10000);
      int code = c.getResponseCode();
      X509Certificate peer = (X509Certificate) c.getServerCertificates()[0];
      InputStream in = code < 400 ? c.getInputStream() : c.getErrorStream();
      String body = in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8);
      System.out.println("STATUS " + code);
      System.out.println("SERIAL " + peer.getSerialNumber().toString(16));
      System.out.println("BODY " + body);
    } catch (Exception e) {
      for (Throwable t = e; t != null; t = t.getCause()) System.out.println("ERROR " + t);
      System.exit(2);
    }
  }
}
`;

describe('tls with real clients', () => {
  let dir: string;
  let work: string;
  let classes: string;
  let hostsFile: string;
  let manager: TlsManager;
  let sidecar: TestServer;
  let rogue: TestServer; // presents example.com, signed with our issuing CA key
  let rogueCnOnly: TestServer; // presents a SAN-less certificate with CN=example.com, same key

  beforeAll(async () => {
    work = await tempDir();
    dir = path.join(work, 'tls');
    manager = await startTls({ dir, hostnames: HOSTS });
    sidecar = await startHttps(manager.serverOptions());
    manager.attach(sidecar.server);

    const ca = await loadOrCreateCa(dir, HOSTS);
    const now = new Date();
    const until = new Date(now.getTime() + 24 * 60 * 60 * 1000);
    const forged = await signServerCertificate(ca, { dnsNames: ['example.com'], notBefore: now, notAfter: until });
    rogue = await startHttps({ key: forged.keyPem, cert: forged.chainPem });
    const cnOnly = await signServerCertificate(ca, { dnsNames: ['example.com'], notBefore: now, notAfter: until, subjectAltName: false });
    rogueCnOnly = await startHttps({ key: cnOnly.keyPem, cert: cnOnly.chainPem });

    hostsFile = path.join(work, 'hosts');
    await fs.writeFile(hostsFile, '127.0.0.1 api.bitbucket.org bitbucket.org example.com\n');
    classes = path.join(work, 'classes');
    await fs.mkdir(classes);
    await fs.writeFile(path.join(work, 'HttpsProbe.java'), JAVA_CLIENT);
    const javac = await run('javac', ['-d', classes, path.join(work, 'HttpsProbe.java')]);
    expect(javac.stderr).toBe('');
    expect(javac.code).toBe(0);
  });

  afterAll(async () => {
    manager.close();
    await Promise.all([sidecar.close(), rogue.close(), rogueCnOnly.close()]);
    await removeTempDirs();
  });

  function java(url: string, truststore: string) {
    return run('java', [
      `-Djavax.net.ssl.trustStore=${truststore}`,
      `-Djavax.net.ssl.trustStorePassword=${TRUSTSTORE_PASSWORD}`,
      '-Djavax.net.ssl.trustStoreType=PKCS12',
      `-Djdk.net.hosts.file=${hostsFile}`,
      '-cp',
      classes,
      'HttpsProbe',
      url,
    ]);
  }

  function curl(name: string, port: number, cacert: string) {
    return run('curl', ['-sS', '--noproxy', '*', '--max-time', '10', '--cacert', cacert, '--resolve', `${name}:${port}:127.0.0.1`, `https://${name}:${port}/2.0/repositories/acme`]);
  }

  describe('Java truststore', () => {
    it('keytool lists our CA and every public root as trustedCertEntry', async () => {
      const store = path.join(dir, TLS_FILES.javaTruststore);
      const r = await run('keytool', ['-list', '-v', '-keystore', store, '-storetype', 'PKCS12', '-storepass', TRUSTSTORE_PASSWORD]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Your keystore contains ${rootCertificates.length + 1} entries`);
      expect(r.stdout.match(/Entry type: trustedCertEntry/g)).toHaveLength(rootCertificates.length + 1);
      // Our root is among them, by its fingerprint.
      const fp = new X509Certificate(manager.caPem!).fingerprint256;
      expect(r.stdout).toContain(`SHA256: ${fp}`);
      // ...and the password is checked (the MAC holds).
      const wrong = await run('keytool', ['-list', '-keystore', store, '-storetype', 'PKCS12', '-storepass', 'not-the-password']);
      expect(wrong.code).not.toBe(0);
    });

    it('the pitfall is real: without the trustedKeyUsage attribute keytool sees no entries at all', async () => {
      const store = path.join(work, 'no-attribute.p12');
      await fs.writeFile(store, await buildPkcs12Truststore(trustedCertificates(manager.caPem!), TRUSTSTORE_PASSWORD, { trustedKeyUsage: false }));
      const r = await run('keytool', ['-list', '-keystore', store, '-storetype', 'PKCS12', '-storepass', TRUSTSTORE_PASSWORD]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Your keystore contains 0 entries');
    });

    it('a Java 17 HTTPS client gets 200 from https://api.bitbucket.org:<port>/2.0/repositories/acme with default hostname verification', async () => {
      const exported = path.join(work, 'exported.p12');
      await exportTrust({ dir, hostnames: HOSTS }, 'java', exported);
      const r = await java(`https://api.bitbucket.org:${sidecar.port}/2.0/repositories/acme`, exported);
      expect(r.stdout).toContain('STATUS 200');
      expect(r.stdout).toContain(`"host":"api.bitbucket.org:${sidecar.port}"`);
      expect(r.stdout).toContain(`SERIAL ${new X509Certificate(manager.leafCertificatePem()).serialNumber.toLowerCase().replace(/^0+/, '')}`);
      expect(r.code).toBe(0);
    });

    it('Java rejects an example.com certificate signed with our CA key (name constraints), with or without a SAN', async () => {
      const store = path.join(dir, TLS_FILES.javaTruststore);
      for (const server of [rogue, rogueCnOnly]) {
        const r = await java(`https://example.com:${server.port}/`, store);
        expect(r.code).toBe(2);
        expect(r.stdout).toContain('SSLHandshakeException');
        expect(r.stdout).toContain('name constraints check failed');
        expect(server.seen).toHaveLength(0);
      }
    });
  });

  describe('curl with ca.pem', () => {
    it('succeeds for both names', async () => {
      for (const name of HOSTS) {
        const r = await curl(name, sidecar.port, path.join(dir, TLS_FILES.caCert));
        expect(r.stderr).toBe('');
        expect(JSON.parse(r.stdout)).toEqual({ ok: true, host: `${name}:${sidecar.port}` });
        expect(r.code).toBe(0);
      }
    });

    it('fails for any other name on the same server', async () => {
      const r = await curl('example.com', sidecar.port, path.join(dir, TLS_FILES.caCert));
      expect(r.code).toBe(60); // CURLE_PEER_FAILED_VERIFICATION
      expect(r.stderr).toMatch(/no alternative certificate subject name matches target host name 'example.com'/);
    });

    it('fails for an example.com certificate signed with our CA key (permitted subtree violation)', async () => {
      const r = await curl('example.com', rogue.port, path.join(dir, TLS_FILES.caCert));
      expect(r.code).toBe(60);
      expect(r.stderr).toContain('permitted subtree violation');
    });
  });

  describe('git with ca-bundle.pem', () => {
    const gitEnv = (home: string) => cleanEnv({ HOME: home, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '/bin/false' });
    const lsRemote = (bundle: string, name = 'bitbucket.org', port = sidecar.port) =>
      run('git', ['-c', `http.sslCAInfo=${bundle}`, '-c', `http.curloptResolve=${name}:${port}:127.0.0.1`, 'ls-remote', `https://${name}:${port}/acme/x.git`], { env: gitEnv(work) });
    // Debian's git uses libcurl-gnutls ("server certificate verification failed"); OpenSSL builds say "SSL certificate problem".
    const CERT_ERROR = /server certificate verification failed|SSL certificate problem/;

    it('completes the TLS handshake with the web face (the 404 comes from our server, not a certificate error)', async () => {
      const before = sidecar.seen.length;
      const r = await lsRemote(path.join(dir, TLS_FILES.caBundle));
      expect(r.stderr).not.toMatch(/SSL|certificate|TLS/i);
      expect(r.stderr).toMatch(/repository '.*acme\/x\.git\/' not found/);
      const requests = sidecar.seen.slice(before);
      expect(requests[0]).toEqual({ host: `bitbucket.org:${sidecar.port}`, url: '/acme/x.git/info/refs?service=git-upload-pack' });
    });

    it('control: with only the public roots, git fails on the certificate', async () => {
      const publicOnly = path.join(work, 'public-only.pem');
      await fs.writeFile(publicOnly, rootCertificates.join('\n') + '\n');
      const before = sidecar.seen.length;
      const r = await lsRemote(publicOnly);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(CERT_ERROR);
      expect(sidecar.seen.length).toBe(before);
    });

    it('rejects an example.com certificate signed with our CA key', async () => {
      const r = await lsRemote(path.join(dir, TLS_FILES.caBundle), 'example.com', rogue.port);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(CERT_ERROR);
      expect(rogue.seen).toHaveLength(0);
    });
  });
});
