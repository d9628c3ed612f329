import type { ServerResponse } from 'node:http';
import type { Client } from '../core/client';
import type { ApiAnswer, ApiCall } from '../core/call';
import type { ScopeFacts } from '../scope/facts';
import { isJson } from '../scope/learn';
import { ensureErrorShape, errorAnswer } from './errors';
import { filterRepositoryListing } from './filter';
import { rewriteLinks, rewriteUrl } from './links';
import type { LinkBases } from '../core/links';
import type { BodyMemo } from '../core/body-memo';

/** Stage 7: per-client shaping of a shared answer (filtering, link rewriting, error shape). */
export function shapeAnswer(answer: ApiAnswer, call: ApiCall, client: Client, facts: ScopeFacts, bases: LinkBases, memo: BodyMemo): ApiAnswer {
  const shaped = ensureErrorShape(answer);
  const headers = { ...shaped.headers };
  if (headers.location) headers.location = rewriteUrl(headers.location, bases);
  if (shaped.status >= 400 || shaped !== answer) return { ...shaped, headers };
  // A narrowed client's listing was computed from what it may see (src/respond/listing.ts).
  if (call.route.shape === 'repository-listing' && answer.scopedFor !== client.id) {
    // A listing is filtered to the client's scope, so one that cannot be read is not passed on.
    // Project facts can change what it shows a client: the filtered view is not memoised.
    const json = isJson(shaped) ? memo.parse(shaped.body) : undefined;
    if (json === undefined) return errorAnswer(502, 'Bitbucket sent a repository listing that could not be read');
    return { ...shaped, headers, body: Buffer.from(JSON.stringify(rewriteLinks(filterRepositoryListing(json, client, facts), bases))) };
  }
  if (!isJson(shaped)) return { ...shaped, headers };
  // Parsed only when the shaped bytes are not at hand: on a hit they usually are, and the parsed
  // table is far smaller than the shaped one.
  const body = memo.shapedOnce(shaped.body, `${bases.clientApi} ${bases.clientWeb}`, () => {
    const json = memo.parse(shaped.body);
    return json === undefined ? shaped.body : Buffer.from(JSON.stringify(rewriteLinks(json, bases)));
  });
  return { ...shaped, headers, body };
}

const SENT_HEADERS = ['content-type', 'etag', 'last-modified', 'location', 'retry-after', 'allow', 'www-authenticate'];

export function writeAnswer(res: ServerResponse, answer: ApiAnswer, head: boolean): void {
  const headers: Record<string, string | number> = { 'content-length': answer.body.length };
  for (const name of SENT_HEADERS) if (answer.headers[name]) headers[name] = answer.headers[name];
  if (answer.cacheStatus) headers['cache-status'] = answer.cacheStatus;
  if (answer.ageSeconds !== undefined) headers.age = Math.max(0, Math.floor(answer.ageSeconds));
  res.writeHead(answer.status, headers);
  res.end(head ? undefined : answer.body);
}
