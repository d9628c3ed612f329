/**
 * The sidecar under benchmark, in its own process so that its RSS and CPU are its own (the fake
 * Bitbucket and the load generator run in the parent). Driven over IPC by bench/run.ts:
 *   { id, cmd: 'start', config } → { id, url }
 *   { id, cmd: 'stats' } → { id, rss, heapUsed, cache, budget }
 *   { id, cmd: 'stop' }  → exits
 * The audit log is written (to /dev/null) as in production: its cost is part of the numbers.
 */
import { validateConfig } from '../src/config/load';
import { createLogger } from '../src/ops/logger';
import { startSidecar, type RunningSidecar } from '../src/serve';

interface Message {
  id: number;
  cmd: 'start' | 'stats' | 'stop';
  config?: unknown;
  /** With `--expose-gc`: collect garbage before measuring. */
  gc?: boolean;
}

let running: RunningSidecar | undefined;

function reply(id: number, body: Record<string, unknown>): void {
  process.send?.({ id, ...body });
}

process.on('message', (m: Message) => {
  void handle(m).catch((e: Error) => reply(m.id, { error: e.stack ?? e.message }));
});

async function handle(m: Message): Promise<void> {
  switch (m.cmd) {
    case 'start': {
      const config = validateConfig(m.config);
      const logger = createLogger({ level: 'info', destination: '/dev/null' });
      running = await startSidecar(config, { logger });
      reply(m.id, { url: running.httpUrl });
      return;
    }
    case 'stats': {
      const s = running?.sidecar;
      if (m.gc) (globalThis as { gc?: () => void }).gc?.();
      const mem = process.memoryUsage();
      reply(m.id, {
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        heapTotal: mem.heapTotal,
        external: mem.external,
        cache: s ? { ...s.cache.stats, bytes: s.cache.store.bytes, entries: s.cache.store.entries, maxBytes: s.cache.store.maxBytes } : undefined,
        budget: s ? { granted: s.budget.granted, refused: s.budget.refused, snapshot: s.budget.snapshot() } : undefined,
      });
      return;
    }
    case 'stop':
      await running?.stop(0);
      reply(m.id, {});
      process.exit(0);
  }
}
