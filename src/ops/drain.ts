/**
 * Draining keep-alive connections on shutdown.
 *
 * `server.close()` stops accepting and closes the connections that are idle at that moment, but a
 * connection busy with a request stays open after its answer (keep-alive, as Jenkins' HTTP client
 * and git use them) until its idle timeout, so the process would wait out the whole grace period.
 * While draining:
 *  - every answer not yet started carries `Connection: close`, so the client does not send another
 *    request on that connection and Node closes it after the answer;
 *  - connections that became idle anyway (a git stream whose headers were already sent) are closed
 *    every `intervalMs`.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** The response a connection is busy with (Node's own field; servers.ts reads it too). */
type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

export class ConnectionDrain {
  /** Connections that carried a request: a Set entry and a listener per connection, not per request. */
  private readonly sockets = new Set<HttpSocket>();
  private draining = false;

  /** Call for every request (first thing in the app). */
  track(req: IncomingMessage, res: ServerResponse): void {
    if (this.draining) return closeAfter(res);
    const socket = req.socket as HttpSocket;
    if (this.sockets.has(socket)) return;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Starts draining; returns a function that stops the idle sweep (call it once the servers closed). */
  begin(servers: readonly Server[], intervalMs = 100): () => void {
    this.draining = true;
    for (const socket of this.sockets) {
      const res = socket._httpMessage;
      if (res) closeAfter(res);
    }
    this.sockets.clear();
    const sweep = setInterval(() => {
      for (const s of servers) s.closeIdleConnections();
    }, intervalMs);
    sweep.unref();
    return () => clearInterval(sweep);
  }
}

function closeAfter(res: ServerResponse): void {
  if (!res.headersSent) res.setHeader('connection', 'close');
}
