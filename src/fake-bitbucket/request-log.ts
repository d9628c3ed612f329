/** The request log: every non-control request, in arrival order, with its parsed target. */
import type { ParsedTarget } from './request-target';
import { flatQuery } from './request-target';
import type { LoggedRequest } from './types';

export class RequestLog {
  /** live array (cleared in place, so references held by tests stay valid) */
  readonly entries: LoggedRequest[] = [];
  private seq = 0;

  add(method: string, target: ParsedTarget, headers: Record<string, string>, time: number): LoggedRequest {
    const entry: LoggedRequest = {
      seq: ++this.seq,
      time,
      method,
      rawUrl: target.rawUrl,
      path: target.path,
      query: flatQuery(target.query),
      headers,
      body: Buffer.alloc(0),
      workspace: target.workspace,
      repository: target.repository,
      kind: target.kind,
    };
    this.entries.push(entry);
    return entry;
  }

  clear(): void {
    this.entries.length = 0;
  }

  /** JSON view for GET /_fake/requests (body as base64). */
  toJSON(): Array<Omit<LoggedRequest, 'body'> & { body: string; bodyEncoding: 'base64' }> {
    return this.entries.map((e) => ({ ...e, body: e.body.toString('base64'), bodyEncoding: 'base64' as const }));
  }
}
