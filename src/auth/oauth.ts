import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StreamHandler } from '../listen/pipeline';
import { readBody } from '../listen/body';
import type { Client, ClientDirectory } from './clients';
import { parseAuthorization } from './credentials';
import { sha256Hex } from './tokens';

const ISSUED_PREFIX = 'bbsc_oat_';
const MAX_ISSUED = 10_000;

interface Issued {
  clientId: string;
  expiresAt: number;
}

/**
 * `POST /site/oauth2/access_token` (client credentials grant), for Jenkins "Bitbucket OAuth"
 * credentials. Issued tokens are short-lived, stored hashed, and bound to the client id: a client
 * removed by a reload loses its tokens at once.
 */
export class OAuthIssuer {
  private readonly issued = new Map<string, Issued>();

  constructor(
    private readonly directory: () => ClientDirectory,
    private readonly ttlSeconds = 3600,
    private readonly now: () => number = Date.now,
  ) {}

  authenticate(secret: string): Client | undefined {
    if (!secret.startsWith(ISSUED_PREFIX)) return undefined;
    // Looked up by digest: the timing of a map look-up says nothing about the token itself.
    const digest = sha256Hex(secret);
    const entry = this.issued.get(digest);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.issued.delete(digest);
      return undefined;
    }
    return this.directory().byId(entry.clientId);
  }

  readonly handler: StreamHandler = async (req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const data = Buffer.from(JSON.stringify(body));
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': data.length, 'cache-control': 'no-store', ...headers });
      res.end(data);
    };
    let form: URLSearchParams;
    try {
      form = new URLSearchParams((await readBody(req, 8192)).toString('utf8'));
    } catch {
      return send(400, { error: 'invalid_request', error_description: 'Request body is too large or unreadable' });
    }
    const presented = parseAuthorization(req.headers.authorization);
    const key = presented.kind === 'basic' ? presented.username : form.get('client_id') ?? '';
    const secret = presented.kind === 'basic' ? presented.secret : form.get('client_secret') ?? '';
    const client = key && secret ? this.directory().authenticateConsumer(key, secret) : undefined;
    if (!client) {
      return send(401, { error: 'invalid_client', error_description: 'Invalid OAuth client credentials' }, { 'www-authenticate': 'Basic realm="Bitbucket.org HTTP"' });
    }
    if (form.get('grant_type') !== 'client_credentials') {
      return send(400, { error: 'unsupported_grant_type', error_description: 'Only grant_type=client_credentials is supported' });
    }
    const token = ISSUED_PREFIX + randomBytes(36).toString('base64url');
    this.prune();
    this.issued.set(sha256Hex(token), { clientId: client.id, expiresAt: this.now() + this.ttlSeconds * 1000 });
    send(200, { access_token: token, token_type: 'bearer', expires_in: this.ttlSeconds, scopes: 'repository pullrequest webhook', state: 'client_credentials' });
  };

  private prune(): void {
    const now = this.now();
    for (const [k, v] of this.issued) if (v.expiresAt <= now) this.issued.delete(k);
    while (this.issued.size >= MAX_ISSUED) this.issued.delete(this.issued.keys().next().value as string);
  }
}
