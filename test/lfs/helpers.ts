import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as http from 'node:http';

/**
 * A CONNECT proxy on loopback that sends every tunnel to 127.0.0.1 (the port as asked): git-lfs is a
 * Go program and ignores curl's resolve list, so this stands in for the hosts override that points
 * bitbucket.org at the sidecar. `seen` lists the tunnels' targets.
 */
export async function loopbackConnectProxy(): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    seen.push(req.url ?? '');
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    const port = Number((req.url ?? '').split(':').pop());
    const up = net.connect({ host: '127.0.0.1', port }, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    sockets.add(up);
    up.on('close', () => sockets.delete(up));
    up.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** The Git LFS pointer file of `data` (what git stores in place of the object). */
export function lfsPointer(data: Buffer): { oid: string; text: string } {
  const oid = createHash('sha256').update(data).digest('hex');
  return { oid, text: `version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${data.length}\n` };
}

export const LFS_ATTRIBUTES = '*.bin filter=lfs diff=lfs merge=lfs -text\n';
