/**
 * src/upstream/undici.ts loads undici's Agent, errors and request from their own modules: they must
 * be the very objects undici's index exports (a moved file or a changed export fails here, not in
 * production), `request` must work, and the sidecar's modules must not load undici's index.
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as undici from 'undici';
import { Agent, errors, request } from '../../src/upstream/undici';

const ROOT = path.join(__dirname, '../..');

describe('undici parts', () => {
  it('are the objects undici exports', () => {
    expect(Agent).toBe(undici.Agent);
    expect(errors).toBe(undici.errors);
    expect(errors.HeadersTimeoutError).toBe(undici.errors.HeadersTimeoutError);
  });

  it('request sends method, path, query, headers and body, and reads the answer', async () => {
    const seen: { method?: string; url?: string; header?: string; body?: string } = {};
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        Object.assign(seen, { method: req.method, url: req.url, header: req.headers['x-test'], body });
        res.writeHead(201, { 'content-type': 'text/plain', 'retry-after': '3' });
        res.end('created');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const agent = new Agent();
    try {
      const { port } = server.address() as AddressInfo;
      const res = await request(`http://127.0.0.1:${port}/a/b%2Fc?x=1&y=2`, agent, { method: 'POST', headers: { 'x-test': 'yes' }, body: 'payload' });
      expect(res.statusCode).toBe(201);
      expect(res.headers['retry-after']).toBe('3');
      expect(await res.body.text()).toBe('created');
      expect(seen).toEqual({ method: 'POST', url: '/a/b%2Fc?x=1&y=2', header: 'yes', body: 'payload' });
    } finally {
      await agent.close();
      server.close();
    }
  });

  it("the sidecar's modules do not load undici's index", () => {
    const modules = ['serve', 'upstream/client', 'upstream/avatar', 'webhooks/forwarder'].map((m) => path.join(ROOT, 'dist', m));
    const script = `
      for (const m of ${JSON.stringify(modules)}) require(m);
      const files = Object.keys(require.cache).filter((f) => f.includes('/node_modules/undici/'));
      process.stdout.write(JSON.stringify({ loaded: files.length, index: files.filter((f) => f.endsWith('/node_modules/undici/index.js')) }));`;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    const { loaded, index } = JSON.parse(r.stdout) as { loaded: number; index: string[] };
    expect(loaded).toBeGreaterThan(0);
    expect(index).toEqual([]);
  });
});
