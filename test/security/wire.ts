import net from 'node:net';

/** One HTTP/1.1 answer as read off the wire. */
export interface WireResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Everything received, as latin1 text (for "never contains" checks). */
  raw: string;
}

export interface Exchange {
  /** The first answer on the connection, if one arrived. */
  response?: WireResponse;
  /** Bytes the client managed to write before the server closed the connection. */
  written: number;
  /** How the connection ended: the server closed it, we gave up waiting, or an error. */
  ended: 'closed' | 'timeout' | 'error';
  error?: string;
}

/**
 * Parses the first HTTP/1.1 response in `data` (Content-Length or chunked, or read to the end).
 * Returns undefined while it is incomplete.
 */
export function parseResponse(data: Buffer, complete: boolean, head = false): WireResponse | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const headText = data.subarray(0, end).toString('latin1');
  const [statusLine, ...lines] = headText.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i > 0) {
      const k = line.slice(0, i).trim().toLowerCase();
      const v = line.slice(i + 1).trim();
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
  }
  const status = Number(m[1]);
  // Interim answers (100 Continue to "Expect: 100-continue") precede the real one.
  if (status >= 100 && status < 200 && status !== 101) return parseResponse(data.subarray(end + 4), complete, head);
  const rest = data.subarray(end + 4);
  const raw = data.toString('latin1');
  if (head || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0), raw };
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (rest.length < n) return complete ? { status, headers, body: rest, raw } : undefined;
    return { status, headers, body: rest.subarray(0, n), raw };
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const chunks: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', at);
      if (lineEnd < 0) return complete ? { status, headers, body: Buffer.concat(chunks), raw } : undefined;
      const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
      if (Number.isNaN(size)) return { status, headers, body: Buffer.concat(chunks), raw };
      if (size === 0) return { status, headers, body: Buffer.concat(chunks), raw };
      if (rest.length < lineEnd + 2 + size + 2) return complete ? { status, headers, body: Buffer.concat(chunks), raw } : undefined;
      chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  return complete ? { status, headers, body: rest, raw } : undefined;
}

/**
 * Writes `parts` to a fresh connection (with `gapMs` between parts), then waits for the server to
 * answer and close, or `timeoutMs`. Bytes are sent exactly as given: no client library normalises
 * the request target or the headers.
 */
export function exchange(
  port: number,
  parts: (string | Buffer)[],
  opts: { gapMs?: number; timeoutMs?: number; head?: boolean; untilResponse?: boolean } = {},
): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let written = 0;
    let done = false;
    let error: string | undefined;
    const finish = (ended: Exchange['ended']) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const data = Buffer.concat(received);
      resolve({ response: parseResponse(data, true, opts.head), written, ended, error });
    };
    const timer = setTimeout(() => finish('timeout'), opts.timeoutMs ?? 15_000);
    socket.on('data', (d: Buffer) => {
      received.push(d);
      // A keep-alive answer is complete before the server closes; no need to wait for the close.
      if (opts.untilResponse && parseResponse(Buffer.concat(received), false, opts.head)) finish('closed');
    });
    socket.on('error', (e: Error & { code?: string }) => {
      error = e.code ?? e.message;
      finish('error');
    });
    socket.on('close', () => finish('closed'));
    socket.on('end', () => finish('closed'));
    socket.once('connect', async () => {
      for (let i = 0; i < parts.length && !done; i++) {
        if (i > 0 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
        if (done || socket.destroyed) break;
        const p = typeof parts[i] === 'string' ? Buffer.from(parts[i] as string, 'latin1') : (parts[i] as Buffer);
        socket.write(p);
        written += p.length;
      }
    });
  });
}

/** A single request with `Connection: close`, sent in one write. */
export async function once(port: number, text: string | Buffer, opts: { timeoutMs?: number; head?: boolean; untilResponse?: boolean } = {}): Promise<Exchange> {
  return exchange(port, [text], opts);
}

/** Bitbucket's error shape: {"type":"error","error":{"message":"..."}} (extra keys such as detail allowed). */
export function isBitbucketError(body: Buffer | string): boolean {
  try {
    const j = JSON.parse(body.toString()) as { type?: unknown; error?: { message?: unknown } };
    return j !== null && typeof j === 'object' && j.type === 'error' && typeof j.error === 'object' && j.error !== null && typeof j.error.message === 'string';
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
