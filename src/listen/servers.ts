import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TlsOptions } from 'node:tls';

export interface ListenSettings {
  host: string;
  port: number;
  maxHeaderBytes: number;
  /** Time a client has to send the complete request head (slowloris); default 20 s. */
  headersTimeoutMs?: number;
  /** Time a client has to send the complete request, body included; 0 = unbounded. Default 5 min. */
  requestTimeoutMs?: number;
  /**
   * Connections per listener that are served. Further connections get 503 with Retry-After on their
   * first request and are closed; past twice this many, connections are closed as soon as accepted.
   * Default 1024.
   */
  maxConnections?: number;
  /** Served connections one source address may hold; default half of maxConnections (at least 1). */
  maxConnectionsPerSource?: number;
  /** Called when a connection is turned away with 503 (for a log line). */
  onOverCapacity?: () => void;
  /** Called for every request answered here, before the pipeline (its audit line). */
  onRefused?: (refusal: Refusal) => void;
}

/** A request refused by the listener itself: the pipeline never saw it, so it is audited from here. */
export interface Refusal {
  method: string;
  /** The request target as received (raw); undefined when no request line could be read. */
  target?: string;
  status: number;
  decision: 'bad-http' | 'too-large' | 'timeout' | 'bad-method' | 'over-capacity';
}

const REQUEST_LINE = /^([A-Za-z]{1,20}) (\S{1,8192})(?: HTTP\/|\r?\n)/;

/** Method and target of the bytes the parser refused, when they start with a request line. */
function requestLineOf(raw: unknown): { method: string; target?: string } {
  if (!Buffer.isBuffer(raw)) return { method: '?' };
  const m = REQUEST_LINE.exec(raw.subarray(0, 8300).toString('latin1'));
  return m ? { method: m[1].toUpperCase(), target: m[2] } : { method: '?' };
}

export const SERVER_DEFAULTS = { headersTimeoutMs: 20_000, requestTimeoutMs: 300_000, maxConnections: 1024 } as const;

/**
 * Node checks the header and request timeouts only every `connectionsCheckingInterval` (30 s by
 * default), which would let a slowloris client hold a socket for up to 30 s past the limit.
 */
function checkingInterval(s: ListenSettings): number {
  const headers = s.headersTimeoutMs ?? SERVER_DEFAULTS.headersTimeoutMs;
  return Math.max(100, Math.min(5_000, Math.floor(headers / 4)));
}

function serverOptions(s: ListenSettings): http.ServerOptions {
  return {
    maxHeaderSize: s.maxHeaderBytes,
    connectionsCheckingInterval: checkingInterval(s),
    // Node would answer a missing Host with a bare, body-less 400; the pipeline answers it in Bitbucket's shape.
    requireHostHeader: false,
  };
}

/** Bitbucket's error shape for answers written before (or instead of) the request pipeline. */
function rawError(status: number, reason: string, message: string, extra = ''): string {
  const body = JSON.stringify({ type: 'error', error: { message } });
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`;
}

const CLIENT_ERRORS: Record<string, [number, string, string, Refusal['decision']]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'Request headers are too large', 'too-large'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'Payload Too Large', 'Request chunk extensions are too large', 'too-large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'The request was not received in time', 'timeout'],
};

/**
 * Requests Node's parser refuses (malformed request line or headers, oversized head, timeouts) get
 * a Bitbucket-shaped answer instead of Node's bare one — but only when no answer of ours has
 * started on that socket (writing then would corrupt it).
 */
function onClientError(err: Error & { code?: string; rawPacket?: unknown }, socket: Duplex, onRefused?: (r: Refusal) => void): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE' && socket.writable && !inFlight?.headersSent) {
    const [status, reason, message, decision] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'Bad Request', 'The request is not valid HTTP/1.1', 'bad-http' as const];
    socket.end(rawError(status, reason, message));
    onRefused?.({ ...requestLineOf(err.rawPacket), status, decision });
  }
  socket.destroy();
}

/** CONNECT is not proxied: answer 405 rather than silently closing (Node's default). */
function onConnect(req: http.IncomingMessage, socket: Duplex, onRefused?: (r: Refusal) => void): void {
  socket.end(rawError(405, 'Method Not Allowed', 'Method CONNECT is not supported', 'allow: GET, HEAD, POST, PUT, DELETE\r\n'));
  onRefused?.({ method: 'CONNECT', target: req.url, status: 405, decision: 'bad-method' });
  socket.destroy();
}

const OVER_CAPACITY_BODY = JSON.stringify({ type: 'error', error: { message: 'The sidecar is serving as many connections as it is configured for; try again shortly' } });

/**
 * Serves the requests of at most `max` connections at a time; a request on any other connection is
 * answered 503 with Retry-After and its connection closed. The plugin retries a 503 after Retry-After
 * (the plugin's client retries only 429 and 503); a connection closed unanswered is an IOException it may not retry — over TLS an
 * SSLException, never retried, and on a Jenkinsfile probe that reads as "no Jenkinsfile".
 */
function limitConnections(handler: http.RequestListener, max: number, perSource: number, onOverCapacity?: () => void, onRefused?: (r: Refusal) => void): http.RequestListener {
  const served = new WeakSet<object>();
  let count = 0;
  // Served connections per source address: one address cannot take every slot. Entries exist only
  // while that address holds a served connection, so the table is bounded by `max`.
  const bySource = new Map<string, number>();
  return (req, res) => {
    const socket = req.socket;
    // Health and readiness stay answerable: a liveness probe must not restart a busy sidecar.
    // Everything else — the webhook door included — holds a slot like any request.
    if (!served.has(socket) && !isProbe(req)) {
      const source = socket.remoteAddress ?? '';
      const held = bySource.get(source) ?? 0;
      if (count >= max || held >= perSource) {
        onOverCapacity?.();
        onRefused?.({ method: req.method ?? '?', target: req.url, status: 503, decision: 'over-capacity' });
        res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(OVER_CAPACITY_BODY), 'retry-after': '1', connection: 'close' });
        res.end(OVER_CAPACITY_BODY);
        return;
      }
      served.add(socket);
      count++;
      bySource.set(source, held + 1);
      socket.once('close', () => {
        count--;
        const left = (bySource.get(source) ?? 1) - 1;
        if (left > 0) bySource.set(source, left);
        else bySource.delete(source);
      });
    }
    handler(req, res);
  };
}

const PROBES = new Set(['/_sidecar/health', '/_sidecar/ready']);

/** A liveness or readiness probe: GET or HEAD of health or ready, in any case, with or without a slash. */
function isProbe(req: http.IncomingMessage): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const url = req.url ?? '';
  const q = url.indexOf('?');
  const path = (q < 0 ? url : url.slice(0, q)).toLowerCase().replace(/\/$/, '');
  return PROBES.has(path);
}

/**
 * Open sockets are bounded per source address (twice the served bound) and per listener (`limit`,
 * twice maxConnections). When the listener is full, the oldest socket that has not yet sent a
 * whole request head makes room: otherwise strangers from a few addresses, each within its own
 * bound, could fill the listener with half-sent heads and keep every client out until the
 * headers timeout — and again, and again. Served connections (a request came) are never evicted.
 */
function limitOpenSockets(server: http.Server, perSource: number, limit: number): void {
  const open = new Map<string, number>();
  /** Sockets with no request yet, oldest first. */
  const pending = new Set<Duplex>();
  let count = 0;
  server.on('connection', (socket: Duplex & { remoteAddress?: string }) => {
    const source = socket.remoteAddress ?? '';
    const n = (open.get(source) ?? 0) + 1;
    if (n > 2 * perSource) {
      socket.destroy();
      return;
    }
    if (count >= limit) {
      const oldest = pending.values().next().value;
      if (oldest === undefined) {
        socket.destroy();
        return;
      }
      pending.delete(oldest);
      oldest.destroy();
    }
    open.set(source, n);
    count++;
    pending.add(socket);
    socket.once('close', () => {
      count--;
      pending.delete(socket);
      const left = (open.get(source) ?? 1) - 1;
      if (left > 0) open.set(source, left);
      else open.delete(source);
    });
  });
  // Over TLS the request's socket wraps the accepted one (`_parent`).
  const served = (req: http.IncomingMessage) => {
    const sock = req.socket as Duplex & { _parent?: Duplex };
    pending.delete(sock._parent ?? sock);
  };
  server.on('request', served);
  server.on('connect', served);
}

/** Slowloris, idle and connection limits shared by both listeners. */
function harden(server: http.Server, s: ListenSettings): void {
  server.headersTimeout = s.headersTimeoutMs ?? SERVER_DEFAULTS.headersTimeoutMs;
  // Bounds receiving the request only; git clones may stream their answer for much longer.
  server.requestTimeout = s.requestTimeoutMs ?? SERVER_DEFAULTS.requestTimeoutMs;
  server.keepAliveTimeout = 65_000;
  server.timeout = 10 * 60_000;
  server.maxHeadersCount = 100;
  // Served connections are limited by `limitConnections`, open sockets by `limitOpenSockets` (which
  // evicts half-sent heads first); Node's own bound only backs that up.
  const open = 2 * (s.maxConnections ?? SERVER_DEFAULTS.maxConnections);
  server.maxConnections = 2 * open;
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => onClientError(err, socket, s.onRefused));
  server.on('connect', (req: http.IncomingMessage, socket: Duplex) => onConnect(req, socket, s.onRefused));
  limitOpenSockets(server, perSourceOf(s), open);
}

function perSourceOf(s: ListenSettings): number {
  return s.maxConnectionsPerSource ?? Math.max(1, Math.floor((s.maxConnections ?? SERVER_DEFAULTS.maxConnections) / 2));
}

export function createHttpServer(handler: http.RequestListener, s: ListenSettings): http.Server {
  const server = http.createServer(serverOptions(s), limitConnections(handler, s.maxConnections ?? SERVER_DEFAULTS.maxConnections, perSourceOf(s), s.onOverCapacity, s.onRefused));
  harden(server, s);
  return server;
}

export function createHttpsServer(handler: http.RequestListener, s: ListenSettings, tls: TlsOptions): https.Server {
  const server = https.createServer({ ...tls, ...serverOptions(s) }, limitConnections(handler, s.maxConnections ?? SERVER_DEFAULTS.maxConnections, perSourceOf(s), s.onOverCapacity, s.onRefused));
  harden(server, s);
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
