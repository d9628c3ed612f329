import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditRecord } from './audit';
import type { ApiCall } from './call';
import type { Client } from './client';
import type { ForkGrant } from './fork-grant';
import type { LinkBases } from './links';
import type { RouteMatch } from './route';
import type { CanonicalTarget } from './target';

/** Context handed to handlers that stream (git) or answer by themselves (oauth, avatars). */
export interface StreamContext {
  client?: Client;
  call?: ApiCall;
  fork?: ForkGrant;
  /** Git through a fork: every grant the client may use on it. */
  forkGrants?: ForkGrant[];
  match: RouteMatch;
  target: CanonicalTarget;
  bases: LinkBases;
  audit: AuditRecord;
}
export type StreamHandler = (req: IncomingMessage, res: ServerResponse, ctx: StreamContext) => Promise<void>;
