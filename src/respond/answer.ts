import type { ServerResponse } from 'node:http';
import type { Client } from '../auth/clients';
import type { ApiAnswer, ApiCall } from '../routes/call';
import type { ScopeFacts } from '../scope/facts';
import { parseJson } from '../scope/learn';
import { ensureErrorShape } from './errors';
import { filterRepositoryListing } from './filter';
import { rewriteLinks, rewriteUrl, type LinkBases } from './links';

/** Stage 7: per-client shaping of a shared answer (filtering, link rewriting, error shape). */
export function shapeAnswer(answer: ApiAnswer, call: ApiCall, client: Client, facts: ScopeFacts, bases: LinkBases): ApiAnswer {
  const shaped = ensureErrorShape(answer);
  const headers = { ...shaped.headers };
  if (headers.location) headers.location = rewriteUrl(headers.location, bases);
  if (shaped.status >= 400 || shaped !== answer) return { ...shaped, headers };
  let json = parseJson(shaped);
  if (json === undefined) return { ...shaped, headers };
  if (call.route.id === 'repositories') json = filterRepositoryListing(json, client, facts);
  json = rewriteLinks(json, bases);
  return { ...shaped, headers, body: Buffer.from(JSON.stringify(json)) };
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
