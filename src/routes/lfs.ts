import type { Permission } from '../core/client';
import type { Query } from '../core/route';

/**
 * An LFS batch request is a download only when its body says exactly `"operation":"download"`;
 * anything else (an upload, a body that does not parse) needs `git:push`, so that a reader can
 * never reach an upload by sending something the schema check would only refuse later.
 */
export function lfsBatchPermission(_query: Query, body?: Buffer): Permission | undefined {
  return lfsOperation(body) === 'download' ? undefined : 'git:push';
}

/** The `operation` of a batch body, when it is one of the two Git LFS knows. */
export function lfsOperation(body: Buffer | undefined): 'download' | 'upload' | undefined {
  if (!body) return undefined;
  try {
    const op = (JSON.parse(body.toString('utf8')) as { operation?: unknown } | null)?.operation;
    return op === 'download' || op === 'upload' ? op : undefined;
  } catch {
    return undefined;
  }
}
