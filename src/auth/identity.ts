import { createHash } from 'node:crypto';
import type { Client } from '../core/client';

/** A stable uuid for a client id (name-based, so it survives restarts and replicas). */
export function clientUuid(clientId: string): string {
  const h = createHash('sha256').update(`bitbucket-sidecar:client:${clientId}`).digest('hex');
  return `{${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}}`;
}

/** `GET /2.0/user`: the client as a service account; the upstream person is never revealed. */
export function syntheticUser(client: Client, apiBase: string): unknown {
  const uuid = clientUuid(client.id);
  return {
    type: 'user',
    uuid,
    account_id: `sidecar:${client.id}`,
    username: client.id,
    nickname: client.id,
    display_name: client.id,
    account_status: 'active',
    is_staff: false,
    links: { self: { href: `${apiBase}/2.0/users/${encodeURIComponent(uuid)}` } },
  };
}
