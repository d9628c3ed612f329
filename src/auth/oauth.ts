import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StreamHandler } from '../core/stream';
import { readBody } from '../core/body';
import type { ClientDirectory } from './clients';
import type { Client } from '../core/client';
import { parseAuthorization } from './credentials';
import { sha256Hex } from './tokens';

const ISSUED_PREFIX = 'bbsc_oat_';
/**
 * Live access tokens per consumer. Jenkins keeps one per credential until it expires; past the
 * bound the consumer's own oldest token goes, never another consumer's.
 */
export const MAX_ISSUED_PER_CONSUMER = 100;

interface Issued {
  clientId: string;
  consumerKey: string;
  /** The consumer's secret digest at issue: a rotated or removed consumer revokes its tokens. */
  consumerSecret: string;
  expiresAt: number;
}

/**
 * `POST /site/oauth2/access_token` (client credentials grant), for Jenkins "Bitbucket OAuth"
 * credentials. Issued tokens are short-lived, stored hashed, and bound to the client id: a client
 * removed by a reload loses its tokens at once.
 */
export class OAuthIssuer {
  private readonly issued = new Map<string, Issued>();
  /** Token digests per consumer key, oldest first. */
  private readonly byConsumer = new Map<string, Set<string>>();

  constructor(
    private readonly directory: () => ClientDirectory,
    private readonly ttlSeconds = 3600,
    private readonly now: () => number = Date.now,
    /**
     * Time the form body has to arrive once the head is in. The endpoint needs no sidecar token, so
     * without it a stranger sending a byte now and then would hold a served slot for as long as
     * `server.requestTimeoutMs` (minutes); the sidecar passes `server.headersTimeoutMs`.
     */
    private readonly bodyTimeoutMs = 20_000,
  ) {}

  authenticate(secret: string): Client | undefined {
    if (!secret.startsWith(ISSUED_PREFIX)) return undefined;
    // Looked up by digest: the timing of a map look-up says nothing about the token itself.
    const digest = sha256Hex(secret);
    const entry = this.issued.get(digest);
    if (!entry) return undefined;
    if (!this.valid(entry)) {
      this.revoke(digest, entry);
      return undefined;
    }
    return this.directory().byId(entry.clientId);
  }

  /** Unexpired, and its consumer still exists with the same secret for the same client. */
  private valid(entry: Issued): boolean {
    if (entry.expiresAt <= this.now()) return false;
    const state = this.directory().consumerState(entry.consumerKey);
    return state !== undefined && state.clientId === entry.clientId && state.secretSha256 === entry.consumerSecret;
  }

  private revoke(digest: string, entry: Issued): void {
    this.issued.delete(digest);
    const mine = this.byConsumer.get(entry.consumerKey);
    mine?.delete(digest);
    if (mine && mine.size === 0) this.byConsumer.delete(entry.consumerKey);
  }

  /** Live tokens (for tests and metrics). */
  get size(): number {
    return this.issued.size;
  }

  readonly handler: StreamHandler = async (req: IncomingMessage, res: ServerResponse, ctx) => {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const data = Buffer.from(JSON.stringify(body));
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': data.length, 'cache-control': 'no-store', ...headers });
      res.end(data);
    };
    let form: URLSearchParams;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), this.bodyTimeoutMs)));
    try {
      const body = await Promise.race([readBody(req, 8192), late]);
      if (body === 'late') {
        ctx.audit.decision = 'timeout';
        req.pause();
        return send(408, { error: 'invalid_request', error_description: 'The request body was not received in time' }, { connection: 'close' });
      }
      form = new URLSearchParams(body.toString('utf8'));
    } catch {
      ctx.audit.decision = 'bad-request';
      return send(400, { error: 'invalid_request', error_description: 'Request body is too large or unreadable' });
    } finally {
      clearTimeout(timer);
    }
    const presented = parseAuthorization(req.headers.authorization);
    const key = presented.kind === 'basic' ? presented.username : form.get('client_id') ?? '';
    const secret = presented.kind === 'basic' ? presented.secret : form.get('client_secret') ?? '';
    const client = key && secret ? this.directory().authenticateConsumer(key, secret) : undefined;
    const state = client && this.directory().consumerState(key);
    // The audit line tells a refused consumer from an issued token (the pipeline wrote 'delegated').
    if (!client || !state) {
      ctx.audit.decision = 'unauthenticated';
      return send(401, { error: 'invalid_client', error_description: 'Invalid OAuth client credentials' }, { 'www-authenticate': 'Basic realm="Bitbucket.org HTTP"' });
    }
    ctx.audit.client = client.id;
    if (form.get('grant_type') !== 'client_credentials') {
      ctx.audit.decision = 'bad-request';
      return send(400, { error: 'unsupported_grant_type', error_description: 'Only grant_type=client_credentials is supported' });
    }
    ctx.audit.decision = 'allow';
    const token = ISSUED_PREFIX + randomBytes(36).toString('base64url');
    this.prune(key);
    const digest = sha256Hex(token);
    this.issued.set(digest, { clientId: client.id, consumerKey: key, consumerSecret: state.secretSha256, expiresAt: this.now() + this.ttlSeconds * 1000 });
    let mine = this.byConsumer.get(key);
    if (!mine) this.byConsumer.set(key, (mine = new Set()));
    mine.add(digest);
    send(200, { access_token: token, token_type: 'bearer', expires_in: this.ttlSeconds, scopes: 'repository pullrequest webhook', state: 'client_credentials' });
  };

  /**
   * Drops expired and revoked tokens (the table stays bounded by consumers × the per-consumer
   * bound), then makes room for one more of `key`'s by dropping that consumer's oldest.
   */
  private prune(key: string): void {
    for (const [digest, entry] of this.issued) if (!this.valid(entry)) this.revoke(digest, entry);
    const mine = this.byConsumer.get(key);
    while (mine && mine.size >= MAX_ISSUED_PER_CONSUMER) {
      const oldest = mine.values().next().value as string;
      this.revoke(oldest, this.issued.get(oldest)!);
    }
  }
}
