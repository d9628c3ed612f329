/**
 * Draining: an answer not yet started when draining begins, on a keep-alive connection that served
 * requests before, carries `Connection: close`; so does any request that arrives after; answers
 * already sent are left alone.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConnectionDrain } from '../../src/ops/drain';

describe('ConnectionDrain', () => {
  it('closes the connections of answers not yet started, and of requests that come later', async () => {
    const drain = new ConnectionDrain();
    let release: (() => void) | undefined;
    const server = http.createServer((req, res) => {
      drain.track(req, res);
      const answer = () => res.end('ok');
      if (req.url === '/slow') release = answer;
      else answer();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (p: string) =>
      new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res));
        }).on('error', reject);
      });
    const other = new http.Agent({ keepAlive: true });
    try {
      const first = await get('/fast');
      expect(first.headers.connection).toBe('keep-alive');
      const slow = get('/slow'); // same connection (one socket), answer not started
      for (let i = 0; i < 100 && !release; i++) await new Promise((r) => setTimeout(r, 10));
      const stop = drain.begin([], 1_000);
      expect(drain.isDraining).toBe(true);
      release!();
      expect((await slow).headers.connection).toBe('close');
      const later = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/fast', agent: other }, (res) => {
          res.resume();
          res.on('end', () => resolve(res));
        }).on('error', reject);
      });
      expect(later.headers.connection).toBe('close');
      stop();
    } finally {
      agent.destroy();
      other.destroy();
      server.close();
    }
  });
});
