/**
 * Git LFS through the scope (docs/lfs.md): the batch API, the locks API (refused) and the object
 * transfers, the streaming leg of the web face next to git/. Authentication (sidecar tokens and the
 * short-lived LFS tokens of src/auth/lfs-tokens.ts) and the scope gate run in listen/pipeline first.
 */
import type { Logger } from 'pino';
import type { StreamHandler } from '../core/stream';
import type { LfsTokens } from '../auth/lfs-tokens';
import { upstreamDispatcher, type ProxyChooser } from '../upstream/proxy';
import type { Dispatcher } from '../upstream/undici';
import { sendLfsError, sendLfsJson } from './answer';
import { lfsBatch } from './batch';
import { lfsTransfer } from './transfer';
import { TransferTable, type TransferTableSettings } from './transfers';

export { TransferTable, TRANSFER_TTL_MS, type Transfer, type TransferAction } from './transfers';
export { LFS_MEDIA_TYPE, sendLfsError } from './answer';

export interface LfsSettings {
  webUrl: string;
  /** Authorization header value of the upstream git credential. */
  authorization: string;
  userAgent: string;
  connectTimeoutMs: number;
  /** Longest wait for an answer's head, and longest silence in a body once it flows. */
  idleTimeoutMs: number;
  /** The outbound proxy per origin (Bitbucket, its storage hosts). */
  proxyFor: ProxyChooser;
  tokens: LfsTokens;
  transfers?: TransferTableSettings;
  onUpstreamStatus?: (status: number) => void;
  logger: Logger;
}

export interface Lfs {
  handler: StreamHandler;
  transfers: TransferTable;
  close(): Promise<void>;
}

const LOCKS_MESSAGE = 'Git LFS file locking is not offered through this sidecar; lock verification can be turned off with `git config lfs.locksverify false`.';

export function createLfs(settings: LfsSettings): Lfs {
  const transfers = new TransferTable(settings.transfers);
  const options = { connect: { timeout: settings.connectTimeoutMs }, headersTimeout: settings.idleTimeoutMs, bodyTimeout: settings.idleTimeoutMs, keepAliveTimeout: 4_000 };
  // One dispatcher per outbound proxy choice (few: direct, or the configured proxy).
  const dispatchers = new Map<string, Dispatcher>();
  const dispatcherFor = (href: string): Dispatcher => {
    const proxy = settings.proxyFor(href);
    const key = proxy?.url.href ?? '';
    let d = dispatchers.get(key);
    if (!d) dispatchers.set(key, (d = upstreamDispatcher(proxy, options)));
    return d;
  };
  const batch = { webUrl: settings.webUrl, authorization: settings.authorization, userAgent: settings.userAgent, tokens: settings.tokens, transfers, onUpstreamStatus: settings.onUpstreamStatus, logger: settings.logger, get dispatcher() { return dispatcherFor(settings.webUrl); } };
  const transfer = { transfers, dispatcherFor, userAgent: settings.userAgent, logger: settings.logger };

  const handler: StreamHandler = async (req, res, ctx) => {
    const kind = ctx.match.route.lfs;
    const head = req.method === 'HEAD';
    if (kind === 'batch') {
      const reply = await lfsBatch(batch, ctx);
      return sendLfsJson(res, reply.status, reply.json, reply.headers, head);
    }
    if (kind === 'download' || kind === 'upload' || kind === 'verify') return lfsTransfer(transfer, kind, req, res, ctx);
    // 501 is what git-lfs reads as "this server has no locking": it turns lock verification off and goes on.
    if (kind === 'locks') return sendLfsError(res, 501, LOCKS_MESSAGE, {}, head);
    sendLfsError(res, 404, 'Not found', {}, head);
  };

  return {
    handler,
    transfers,
    close: async () => {
      await Promise.all([...dispatchers.values()].map((d) => d.close()));
    },
  };
}
