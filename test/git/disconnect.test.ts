import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { startStack, type Stack } from '../helpers/stack';
import { runGit, spawnGit, until } from './helpers';

/**
 * A git client killed in the middle of a clone must take the sidecar's upstream request down with
 * it (no orphaned transfers from Bitbucket), and the sidecar must carry on serving.
 *
 * Between the sidecar and the fake sits a pass-through relay that can freeze an upload-pack answer
 * after its first bytes: the clone is then provably "in the middle", and the relay sees exactly
 * when the sidecar drops the upstream connection.
 */
describe('client disconnect mid-clone', () => {
  let fake: FakeBitbucket;
  let relay: http.Server;
  let stack: Stack;
  let work: string;
  let freeze = false;
  const frozen: { closedEarly?: boolean; closed: Promise<void> }[] = [];

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'sidecar-git-dc-'));
    fake = await startFakeBitbucket({ seed: 'demo' });
    const upstream = new URL(fake.url);
    relay = http.createServer((req, res) => {
      const out = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host }, agent: false },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          if (!(freeze && req.method === 'POST' && req.url?.endsWith('/git-upload-pack'))) {
            upRes.pipe(res);
            return;
          }
          let markClosed!: () => void;
          const entry: (typeof frozen)[number] = { closed: new Promise<void>((r) => (markClosed = r)) };
          res.on('close', () => {
            entry.closedEarly = !res.writableFinished;
            upRes.destroy();
            markClosed();
          });
          // Pass a few bytes on, then hold the rest back for good.
          upRes.once('data', (chunk: Buffer) => {
            upRes.pause();
            res.write(chunk.subarray(0, Math.min(8, chunk.length)));
            frozen.push(entry);
          });
        },
      );
      out.on('error', () => res.destroy());
      req.pipe(out);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }], {
      fakeInstance: fake,
      config: { upstream: { apiUrl: fake.url, webUrl: relayUrl, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken } } },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    relay?.closeAllConnections();
    await new Promise<void>((r) => (relay ? relay.close(() => r()) : r()));
    await fake?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it.each([2, 0] as const)('killing git (protocol v%i) while the pack streams aborts the upstream request', async (n) => {
    freeze = true;
    frozen.length = 0;
    const child = spawnGit(['-c', `protocol.version=${n}`, 'clone', `${stack.url}/acme/service-api.git`, path.join(work, `killed-v${n}`)], { token: stack.tokens.reader, group: true });
    let exited = false;
    child.on('exit', () => (exited = true));
    await until(() => frozen.length === 1, 'the clone to be frozen mid-answer');
    expect(exited).toBe(false); // git is waiting for the rest of the pack

    // Like a CI job being cancelled: the whole tree goes, git-remote-http (which holds the connection) included.
    process.kill(-child.pid!, 'SIGKILL');
    await frozen[0].closed;
    expect(frozen[0].closedEarly).toBe(true);
    freeze = false;

    // The sidecar is healthy and serves the next clone in full.
    const health = await fetch(`${stack.url}/_sidecar/health`);
    expect(health.status).toBe(200);
    const again = await runGit(['-c', `protocol.version=${n}`, 'clone', '--quiet', `${stack.url}/acme/service-api.git`, path.join(work, `after-v${n}`)], { token: stack.tokens.reader });
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
  });
});
