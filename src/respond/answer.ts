import type { ServerResponse } from 'node:http';
import type { Client } from '../auth/clients';
import type { ApiAnswer, ApiCall } from '../routes/call';
import type { ScopeFacts } from '../scope/facts';
import { isJson } from '../scope/learn';
import { ensureErrorShape } from './errors';
import { filterRepositoryListing } from './filter';
import { rewriteLinks, rewriteUrl, type LinkBases } from './links';
import { parseJsonBody, shapedOnce } from './memo';

/** Stage 7: per-client shaping of a shared answer (filtering, link rewriting, error shape). */
export function shapeAnswer(answer: ApiAnswer, call: ApiCall, client: Client, facts: ScopeFacts, bases: LinkBases): ApiAnswer {
  const shaped = ensureErrorShape(answer);
  const headers = { ...shaped.headers };
  if (headers.location) headers.location = rewriteUrl(headers.location, bases);
  if (shaped.status >= 400 || shaped !== answer || !isJson(shaped)) return { ...shaped, headers };
  const filtered = call.route.id === 'repositories';
  // Parsed only when the shaped bytes are not at hand: on a hit they usually are, and the parsed
  // table is far smaller than the shaped one.
  const shape = () => {
    const json = parseJsonBody(shaped.body);
    if (json === undefined) return shaped.body;
    return Buffer.from(JSON.stringify(rewriteLinks(filtered ? filterRepositoryListing(json, client, facts) : json, bases)));
  };
  // Project facts can change what a listing shows a client, so a filtered view is not memoised.
  const body = filtered ? shape() : shapedOnce(shaped.body, `${bases.clientApi} ${bases.clientWeb}`, shape);
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
