/** `webhooks.forwardTo` (and each client's own): Jenkins' hook URL answers at all. */
import type { Config } from '../config/schema';
import { Agent, request } from '../upstream/undici';
import { errorCode, fail, pass, type CheckResult } from './check';

export async function checkForwardTargets(config: Config, timeoutMs: number): Promise<CheckResult[]> {
  const urls = [...new Set([config.webhooks?.forwardTo, ...config.clients.map((c) => c.webhooks?.forwardTo)].filter((u): u is string => !!u))];
  if (urls.length === 0) return [];
  const agent = new Agent({ connect: { timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  try {
    return await Promise.all(
      urls.map(async (url) => {
        const shown = new URL(url).origin + new URL(url).pathname;
        try {
          const res = await request(url, agent, { method: 'GET' });
          await res.body.dump();
          return pass(`webhooks.forwardTo ${shown}`, `answers (HTTP ${res.statusCode} to a GET; deliveries are POSTs)`);
        } catch (e) {
          return fail(`webhooks.forwardTo ${shown}`, `not reachable (${errorCode(e)})`, "check the URL (Jenkins' /bitbucket-scmsource-hook/notify) and that Jenkins is up and reachable from the sidecar");
        }
      }),
    );
  } finally {
    await agent.close().catch(() => undefined);
  }
}
