/**
 * Fault injection. Faults are checked in insertion order before normal handling: every matching `latency`
 * fault delays the request, then the first matching terminal fault (status, html500, rate429, reset,
 * truncate) decides the answer. `times` limits how often a fault fires (default unlimited).
 * `match.pathPrefix` / `match.pathIncludes` are tested against both the decoded path and the raw path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { serialise, type ApiResult } from './http-util';
import type { Fault } from './types';

const KINDS = new Set(['latency', 'status', 'reset', 'truncate', 'html500', 'rate429']);

interface ActiveFault extends Fault {
  remaining: number;
}

export function validateFault(f: unknown): Fault {
  if (!f || typeof f !== 'object') throw new Error('fault must be an object');
  const x = f as Fault;
  if (!KINDS.has(x.kind)) throw new Error(`unknown fault kind ${String(x.kind)}`);
  return x;
}

export class FaultStore {
  private faults: ActiveFault[] = [];

  add(f: Fault): void {
    validateFault(f);
    this.faults.push({ ...f, match: f.match ? { ...f.match } : undefined, remaining: f.times ?? Infinity });
  }

  clear(): void {
    this.faults = [];
  }

  get size(): number {
    return this.faults.length;
  }

  private matches(f: ActiveFault, method: string, path: string, rawPath: string): boolean {
    const m = f.match;
    if (!m) return true;
    if (m.method && m.method.toUpperCase() !== method.toUpperCase()) return false;
    if (m.pathPrefix && !path.startsWith(m.pathPrefix) && !rawPath.startsWith(m.pathPrefix)) return false;
    if (m.pathIncludes && !path.includes(m.pathIncludes) && !rawPath.includes(m.pathIncludes)) return false;
    return true;
  }

  /** Consume the faults that fire for this request: latencies (in order) and at most one terminal fault. */
  take(method: string, path: string, rawPath: string): { latencyMs: number; terminal?: Fault } {
    let latencyMs = 0;
    let terminal: Fault | undefined;
    for (const f of this.faults) {
      if (f.remaining <= 0 || !this.matches(f, method, path, rawPath)) continue;
      if (f.kind === 'latency') {
        f.remaining--;
        latencyMs += f.latencyMs ?? 1000;
      } else if (!terminal) {
        f.remaining--;
        terminal = f;
      }
    }
    this.faults = this.faults.filter((f) => f.remaining > 0);
    return { latencyMs, terminal };
  }
}

export const RATE_LIMIT_MESSAGE = 'Rate limit for this resource has been exceeded';

/** Answers for the faults that replace the response entirely. */
export function syntheticFaultResult(f: Fault): ApiResult | undefined {
  switch (f.kind) {
    case 'status': {
      const status = f.status ?? 500;
      const headers: Record<string, string> = {};
      if (f.retryAfter !== undefined) headers['retry-after'] = String(f.retryAfter);
      if (status === 429) {
        return { status, headers: { ...headers, 'content-type': 'text/plain' }, body: RATE_LIMIT_MESSAGE };
      }
      return {
        status,
        headers,
        json: { type: 'error', error: { message: `Injected fault: HTTP ${status}` } },
      };
    }
    case 'html500':
      return {
        status: f.status ?? 500,
        headers: { 'content-type': 'text/html; charset=utf-8' },
        body: '<!DOCTYPE html>\n<html><head><title>Bitbucket | Something went wrong</title></head><body><h1>Something went wrong</h1><p>Bitbucket had a problem and was unable to complete your request.</p></body></html>\n',
      };
    case 'rate429': {
      const headers: Record<string, string> = { 'content-type': 'text/plain' };
      if (f.retryAfter !== undefined) headers['retry-after'] = String(f.retryAfter);
      return { status: 429, headers, body: RATE_LIMIT_MESSAGE };
    }
    default:
      return undefined;
  }
}

/**
 * `reset`: headers (with the full Content-Length) and the first half of the body, then the socket is destroyed.
 * `truncate`: headers without Content-Length, the first half of the body, and a clean chunked end.
 */
export function writeBrokenResult(res: ServerResponse, req: IncomingMessage, kind: 'reset' | 'truncate', result: ApiResult): void {
  const s = serialise(result);
  const half = s.body.subarray(0, Math.max(1, Math.floor(s.body.length / 2)));
  const headers = { ...s.headers };
  if (kind === 'reset') {
    headers['content-length'] = String(Math.max(s.body.length, half.length + 1));
    res.writeHead(s.status, headers);
    res.write(half, () => {
      setTimeout(() => {
        req.socket.destroy();
        res.destroy();
      }, 10);
    });
    return;
  }
  delete headers['content-length'];
  headers['transfer-encoding'] = 'chunked';
  res.writeHead(s.status, headers);
  res.end(half);
}
