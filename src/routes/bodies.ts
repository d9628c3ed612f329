import { z } from 'zod';

/**
 * Write bodies are checked before anything reaches upstream, so that a malformed status or hook
 * gets a precise 400 instead of a confusing upstream error. Unknown fields are allowed: the plugin
 * adds optional data to build statuses.
 */
const buildStatus = z.object({
  state: z.enum(['INPROGRESS', 'SUCCESSFUL', 'FAILED', 'STOPPED']),
  key: z.string().min(1).max(255),
  url: z.string().min(1).max(2048).url(),
  name: z.string().max(255).nullish(),
  description: z.string().max(1024).nullish(),
  refname: z.string().max(255).nullish(),
  buildDuration: z.number().nonnegative().nullish(),
  buildNumber: z.union([z.string().max(255), z.number()]).nullish(),
});

const hook = z.object({
  url: z.string().min(1).max(2048).url(),
  description: z.string().max(255).nullish(),
  active: z.boolean().nullish(),
  events: z.array(z.string().regex(/^[a-z_]+:[a-z_:]+$/, 'must be an event key such as repo:push')).min(1).max(50),
  secret: z.string().max(128).nullish(),
  secret_set: z.boolean().nullish(),
  skip_cert_verification: z.boolean().nullish(),
});

/** A Git LFS batch request (the Git LFS batch API); 1000 objects is far above git-lfs's 100 per request. */
const lfsBatch = z.object({
  operation: z.enum(['download', 'upload']),
  transfers: z.array(z.string().max(64)).max(16).optional(),
  ref: z.object({ name: z.string().min(1).max(1024) }).nullish(),
  objects: z.array(z.object({ oid: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 object id'), size: z.number().int().nonnegative() })).min(1).max(1000),
  hash_algo: z.literal('sha256').optional(),
});

export const BODY_SCHEMAS = { 'build-status': buildStatus, hook, 'lfs-batch': lfsBatch } as const;
/** Git LFS sends its own media type. */
const JSON_TYPE = /^application\/(?:vnd\.git-lfs\+)?json\b/i;
export type BodyKind = keyof typeof BODY_SCHEMAS;

/** undefined when valid; otherwise a message naming the field. */
export function checkBody(kind: BodyKind, body: Buffer | undefined, contentType: string | undefined): string | undefined {
  if (!contentType || !JSON_TYPE.test(contentType) || (kind !== 'lfs-batch' && !/^application\/json\b/i.test(contentType))) return 'Content-Type must be application/json';
  let json: unknown;
  try {
    json = JSON.parse((body ?? Buffer.alloc(0)).toString('utf8'));
  } catch {
    return 'Body is not valid JSON';
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return 'Body must be a JSON object';
  const r = BODY_SCHEMAS[kind].safeParse(json);
  if (r.success) return undefined;
  const issue = r.error.issues[0];
  const field = issue.path.join('.') || '(body)';
  const values = issue.code === 'invalid_value' && 'values' in issue ? `: must be one of ${(issue.values as unknown[]).join(', ')}` : `: ${issue.message}`;
  return `${field}${values}`;
}
