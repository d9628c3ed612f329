import type { ServerResponse } from 'node:http';

/** Git LFS's media type; git-lfs prints the `message` of an error body to the user. */
export const LFS_MEDIA_TYPE = 'application/vnd.git-lfs+json';

export function sendLfsJson(res: ServerResponse, status: number, json: unknown, headers: Record<string, string> = {}, head = false): void {
  if (res.headersSent) return void res.destroy();
  const body = Buffer.from(JSON.stringify(json));
  res.writeHead(status, { ...headers, 'content-type': LFS_MEDIA_TYPE, 'content-length': body.length, 'cache-control': 'no-store' });
  res.end(head ? undefined : body);
}

/** An error as the Git LFS API shapes it: `{"message": …}`. */
export function sendLfsError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}, head = false): void {
  sendLfsJson(res, status, { message }, headers, head);
}
