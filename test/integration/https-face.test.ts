import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { TLS_FILES, TRUSTSTORE_PASSWORD } from '../../src/tls';
import { cleanEnv, removeTempDirs, run, tempDir } from '../tls/helpers';
import { startStack, type Stack } from '../helpers/stack';

/** Java client with an Authorization header, as the plugin's HttpClient sends it. */
const JAVA = `
import java.io.InputStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import javax.net.ssl.HttpsURLConnection;

public class PluginProbe {
  public static void main(String[] args) throws Exception {
    HttpsURLConnection c = (HttpsURLConnection) new URL(args[0]).openConnection();
    c.setRequestProperty("Authorization", args[1]);
    c.setConnectTimeout(10000);
    c.setReadTimeout(20000);
    int code = c.getResponseCode();
    InputStream in = code < 400 ? c.getInputStream() : c.getErrorStream();
    System.out.println("STATUS " + code);
    System.out.println(in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8));
  }
}
`;

/**
 * The sidecar as api.bitbucket.org and bitbucket.org over HTTPS, seen by the real clients Jenkins
 * uses: the JVM with the exported truststore and default hostname verification, curl, and git.
 */
describe('HTTPS faces through the whole sidecar', () => {
  let stack: Stack;
  let tlsDir: string;
  let work: string;
  let port: number;
  let auth: string;

  beforeAll(async () => {
    work = await tempDir('https-face-');
    tlsDir = path.join(work, 'tls');
    stack = await startStack([{ id: 'jenkins', scope: [{ workspace: 'acme' }] }], {
      config: { server: { http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 } }, tls: { dir: tlsDir } },
    });
    port = stack.running.httpsPort!;
    auth = `Basic ${Buffer.from(`jenkins@ci.example:${stack.tokens.jenkins}`).toString('base64')}`;
    await fs.writeFile(path.join(work, 'hosts'), '127.0.0.1 api.bitbucket.org bitbucket.org example.com\n');
    await fs.writeFile(path.join(work, 'PluginProbe.java'), JAVA);
    const javac = await run('javac', ['-d', path.join(work, 'classes'), path.join(work, 'PluginProbe.java')]);
    expect(javac.code).toBe(0);
  });
  afterAll(async () => {
    await stack.stop();
    await removeTempDirs();
  });

  it('a Java 17 client with the exported truststore gets 200 and links on its own base', async () => {
    const r = await run('java', [
      `-Djavax.net.ssl.trustStore=${path.join(tlsDir, TLS_FILES.javaTruststore)}`,
      `-Djavax.net.ssl.trustStorePassword=${TRUSTSTORE_PASSWORD}`,
      '-Djavax.net.ssl.trustStoreType=PKCS12',
      `-Djdk.net.hosts.file=${path.join(work, 'hosts')}`,
      '-cp',
      path.join(work, 'classes'),
      'PluginProbe',
      `https://api.bitbucket.org:${port}/2.0/repositories/acme?pagelen=1`,
      auth,
    ]);
    expect(r.stdout).toContain('STATUS 200');
    const body = JSON.parse(r.stdout.split('\n').slice(1).join('\n'));
    expect(body.next).toMatch(new RegExp(`^https://api\\.bitbucket\\.org:${port}/2\\.0/repositories/acme\\?`));
    expect(body.values[0].links.clone.find((l: { name: string }) => l.name === 'https').href).toMatch(new RegExp(`^https://bitbucket\\.org:${port}/acme/`));
  });

  it('curl with ca.pem succeeds for both names and fails for any other name', async () => {
    const curl = (name: string, urlPath: string) =>
      run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--noproxy', '*', '--cacert', path.join(tlsDir, TLS_FILES.caCert), '--resolve', `${name}:${port}:127.0.0.1`, '-H', `Authorization: ${auth}`, `https://${name}:${port}${urlPath}`], { env: cleanEnv() });
    expect((await curl('api.bitbucket.org', '/2.0/repositories/acme/service-api')).stdout).toBe('200');
    expect((await curl('bitbucket.org', '/workspaces/acme/avatar/')).stdout).toMatch(/^(200|404)$/);
    const other = await curl('example.com', '/2.0/repositories/acme');
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/SSL|certificate/i);
  });

  it('git with the exported CA bundle completes the handshake with the web face', async () => {
    const r = await run(
      'git',
      ['-c', `http.sslCAInfo=${path.join(tlsDir, TLS_FILES.caBundle)}`, '-c', `http.curloptResolve=bitbucket.org:${port}:127.0.0.1`, '-c', `http.extraHeader=Authorization: ${auth}`, 'ls-remote', `https://bitbucket.org:${port}/acme/service-api.git`],
      { env: cleanEnv({ GIT_TERMINAL_PROMPT: '0' }) },
    );
    expect(r.stderr).not.toMatch(/certificate|SSL/i);
    expect(`${r.stdout}${r.stderr}`).toMatch(/refs\/heads\/main|not found|404|401/);
  });
});
