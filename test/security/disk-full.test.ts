import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { PluginClient } from '../helpers/plugin';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { deliver, headersFor, pushBody, startJenkins, startRelay, until, type FakeJenkins, type RelayStack } from '../webhooks/helpers';
import { isBitbucketError } from './wire';

/**
 * Disk full (issue 10, "Faults"): the webhook queue (SQLite in `state.dir`) and the git mirrors
 * (`mirror.dir`) on a file system with no space left. Nothing acknowledged is lost, nothing is
 * forwarded twice, clients get answers (from upstream) or Bitbucket-shaped errors, and the process
 * stays up.
 *
 * Where the test may mount a file system (root), a small tmpfs is really filled (ENOSPC). Otherwise
 * the same situation is produced without privileges: SQLite's `max_page_count` (SQLITE_FULL, the
 * code SQLite reports for ENOSPC) and a read-only mirror directory. Each test names the way it used.
 */

interface Volume {
  dir: string;
  how: 'tmpfs' | 'simulated';
  fill(): void;
  free(): void;
  close(): void;
}

function volume(prefix: string, sizeKb: number): Volume {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  let mounted = false;
  if (process.getuid?.() === 0 && !process.env.DISK_FULL_SIMULATE) {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir], { stdio: 'ignore' });
      mounted = true;
    } catch {
      mounted = false;
    }
  }
  const filler = path.join(dir, 'filler');
  return {
    dir,
    how: mounted ? 'tmpfs' : 'simulated',
    fill() {
      if (!mounted) return;
      const fd = openSync(filler, 'a');
      const block = Buffer.alloc(4096, 1);
      try {
        for (;;) writeSync(fd, block);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      } finally {
        closeSync(fd);
      }
    },
    free() {
      if (mounted) unlinkSync(filler);
    },
    close() {
      if (mounted) execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('disk full: the webhook queue', () => {
  let fake: FakeBitbucketServer;
  let jenkins: FakeJenkins;
  let vol: Volume;
  let relay: RelayStack;
  const db = () => (relay.running.sidecar.webhooks.relay!.queue as unknown as { db: { pragma(s: string): unknown } }).db;
  const page = () => Number((db().pragma('page_count') as { page_count: number }[])[0].page_count);

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    jenkins = await startJenkins(0, 503);
    vol = volume('disk-full-queue-', 2048);
    relay = await startRelay(fake, [{ id: 'ci', scope: [{ workspace: 'acme' }] }], { webhooks: { forwardTo: jenkins.url, queue: { retryMinSeconds: 0.02, retryMaxSeconds: 0.1 } } }, { stateDir: path.join(vol.dir, 'state') });
  });
  afterAll(async () => {
    await relay.stop();
    await jenkins.close();
    await fake.close();
    vol.close();
  });

  const fill = () => (vol.how === 'tmpfs' ? vol.fill() : db().pragma(`max_page_count = ${page()}`));
  const free = () => (vol.how === 'tmpfs' ? vol.free() : db().pragma('max_page_count = 1073741823'));
  const health = async () => (await request(`${relay.url}/_sidecar/health`).then(async (r) => (await r.body.dump(), r.statusCode)));

  it('refuses what it cannot store (503 + Retry-After, Bitbucket retries), forwards what it acknowledged exactly once, stays up', async () => {
    // Queued while Jenkins answers 503: waits in the queue.
    const early = headersFor('repo:push');
    expect((await deliver(relay.url, pushBody('acme', 'service-api', 'CI', 'main', 'a'.repeat(40)), early)).status).toBe(200);
    await until(() => jenkins.received.length >= 1, 'a first (refused) attempt');

    fill();
    // Bitbucket posts while the disk is full: not acknowledged, so Bitbucket keeps it and retries.
    const late = headersFor('repo:push');
    const lateBody = pushBody('acme', 'service-web', 'CI', 'main', 'b'.repeat(40));
    const refused = await deliver(relay.url, lateBody, late);
    expect({ how: vol.how, status: refused.status }).toEqual({ how: vol.how, status: 503 });
    expect(refused.json.status).toBe('error');

    // Jenkins comes back while the disk is still full: the acknowledged delivery goes out once,
    // even though its success cannot be written down.
    jenkins.status = 200;
    await until(() => jenkins.delivered(early['x-request-uuid']).length === 1, 'the early delivery');
    expect(await health()).toBe(200);
    await new Promise((r) => setTimeout(r, 500)); // several retry periods: a resend would show up
    expect(jenkins.delivered(early['x-request-uuid'])).toHaveLength(1);

    // Space again: Bitbucket's retry of the refused delivery is accepted and forwarded once.
    free();
    expect((await deliver(relay.url, lateBody, late)).status).toBe(200);
    await until(() => jenkins.delivered(late['x-request-uuid']).length === 1, 'the retried delivery');
    await until(() => relay.running.sidecar.webhooks.relay!.queueDepth() === 0, 'an empty queue');
    await new Promise((r) => setTimeout(r, 300));
    expect(jenkins.delivered(early['x-request-uuid'])).toHaveLength(1);
    expect(jenkins.delivered(late['x-request-uuid'])).toHaveLength(1);
    expect(await health()).toBe(200);
    expect(relay.logs.some((l) => /"level":50/.test(l) && /could not be queued|could not record/.test(l))).toBe(true);
  });
});

describe('disk full: the git mirrors', () => {
  let vol: Volume;
  let stack: Stack;
  let plugin: PluginClient;
  const API = 'http://api.bitbucket.org/2.0/repositories';

  beforeAll(async () => {
    vol = volume('disk-full-mirror-', 64);
    const mirrorDir = path.join(vol.dir, 'mirrors');
    mkdirSync(mirrorDir, { recursive: true });
    stack = await startStack([{ id: 'jenkins', scope: [{ workspace: 'acme' }] }], {
      config: { state: { dir: mkdtempSync(path.join(tmpdir(), 'disk-full-state-')) }, mirror: { enabled: true, dir: mirrorDir, refreshSeconds: 0, waitSeconds: 5 } },
    });
    plugin = new PluginClient(stack.url, basicAuth('jenkins@ci.example', stack.tokens.jenkins));
    if (vol.how === 'tmpfs') vol.fill();
    // Without privileges: a directory the sidecar cannot write to (root ignores modes, hence tmpfs above).
    else chmodSync(mirrorDir, 0o500);
  });
  afterAll(async () => {
    await stack.stop();
    vol.close();
  });

  it('answers from Bitbucket (or with Bitbucket-shaped errors) when mirrors cannot be written', async () => {
    const answers = [];
    for (const p of [`${API}/acme/service-api/refs/branches?pagelen=100`, `${API}/acme/service-api/refs/tags?pagelen=100`, `${API}/acme/service-api/src/main/Jenkinsfile?format=meta`, `${API}/acme/service-web/commits?include=main`]) {
      const a = await plugin.get(p);
      answers.push({ p, status: a.status, how: vol.how });
      if (a.status >= 400) expect(isBitbucketError(a.text)).toBe(true);
      else expect(a.json).toBeDefined();
    }
    // Every one of these exists upstream: the full disk must not turn them into errors.
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const clone = await request(`${stack.url}/acme/service-api.git/info/refs?service=git-upload-pack`, {
      headers: { host: 'bitbucket.org', authorization: basicAuth('x-bitbucket-api-token-auth', stack.tokens.jenkins) },
    });
    const body = Buffer.from(await clone.body.arrayBuffer());
    expect({ how: vol.how, status: clone.statusCode }).toEqual({ how: vol.how, status: 200 });
    expect(body.toString('latin1')).toContain('# service=git-upload-pack');
    const health = await request(`${stack.url}/_sidecar/health`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
  });
});
