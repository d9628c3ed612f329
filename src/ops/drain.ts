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

export class ConnectionDrain {
  private readonly active = new Set<ServerResponse>();
  private draining = false;

  /** Call for every request (first thing in the app). */
  track(_req: IncomingMessage, res: ServerResponse): void {
    if (this.draining) return closeAfter(res);
    this.active.add(res);
    res.once('close', () => this.active.delete(res));
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Starts draining; returns a function that stops the idle sweep (call it once the servers closed). */
  begin(servers: readonly Server[], intervalMs = 100): () => void {
    this.draining = true;
    for (const res of this.active) closeAfter(res);
    this.active.clear();
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
