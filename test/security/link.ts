import net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP hop between the sidecar and the fake Bitbucket that the tests can break:
 *  - `up`: bytes pass both ways;
 *  - `down`: new connections are reset at once and open ones are cut (Bitbucket unreachable);
 *  - `silent`: connections are accepted and never answered (a hung upstream).
 */
export type LinkMode = 'up' | 'down' | 'silent';

export interface Link {
  url: string;
  port: number;
  mode: LinkMode;
  set(mode: LinkMode): void;
  /** Connections accepted so far (in any mode). */
  accepted: number;
  close(): Promise<void>;
}

export async function startLink(target: { host: string; port: number }, mode: LinkMode = 'up', port = 0): Promise<Link> {
  const open = new Set<net.Socket>();
  const link: Link = {
    url: '',
    port: 0,
    mode,
    accepted: 0,
    set(next) {
      link.mode = next;
      if (next !== 'up') for (const s of open) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer((client) => {
    link.accepted++;
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => undefined);
    if (link.mode === 'down') {
      client.resetAndDestroy();
      return;
    }
    if (link.mode === 'silent') return;
    const upstream = net.connect(target.port, target.host);
    open.add(upstream);
    upstream.on('close', () => {
      open.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  link.port = (server.address() as AddressInfo).port;
  link.url = `http://127.0.0.1:${link.port}`;
  return link;
}
