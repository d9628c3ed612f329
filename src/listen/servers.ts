import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TlsOptions } from 'node:tls';

export interface ListenSettings {
  host: string;
  port: number;
  maxHeaderBytes: number;
}

/** Slowloris and idle limits shared by both listeners. */
function harden(server: http.Server): void {
  server.headersTimeout = 20_000;
  server.requestTimeout = 0; // git streams may legitimately run for a long time; idle is bounded below
  server.keepAliveTimeout = 65_000;
  server.timeout = 10 * 60_000;
  server.maxHeadersCount = 100;
}

export function createHttpServer(handler: http.RequestListener, s: ListenSettings): http.Server {
  const server = http.createServer({ maxHeaderSize: s.maxHeaderBytes }, handler);
  harden(server);
  return server;
}

export function createHttpsServer(handler: http.RequestListener, s: ListenSettings, tls: TlsOptions): https.Server {
  const server = https.createServer({ ...tls, maxHeaderSize: s.maxHeaderBytes }, handler);
  harden(server);
  return server;
}

export function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops accepting, lets in-flight requests finish up to `graceMs`, then cuts what remains. */
export function closeServer(server: http.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
