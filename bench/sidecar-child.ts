/**
 * The sidecar under benchmark, in its own process so that its RSS and CPU are its own (the fake
 * Bitbucket and the load generator run in the parent). Driven over IPC by bench/run.ts:
 *   { id, cmd: 'start', config } → { id, url }
 *   { id, cmd: 'stats' } → { id, rss, heapUsed, cache, budget }
 *   { id, cmd: 'snapshot', file } → { id, file } (v8.writeHeapSnapshot, after a forced GC)
 *   { id, cmd: 'drop-cache' } → { id, entries, before, cacheCleared, memoCleared } (process.memoryUsage() after a
 *     forced GC: as it is, with the cache emptied, with the memo emptied too; what an entry costs)
 *   { id, cmd: 'smaps' } → { id, smaps } (resident kB by kind of mapping, from /proc/self/smaps)
 *   { id, cmd: 'stop' }  → exits
 * The audit log is written (to /dev/null) as in production: its cost is part of the numbers.
 */
import { readFileSync } from 'node:fs';
import { writeHeapSnapshot } from 'node:v8';
import { validateConfig } from '../src/config/load';
import { createLogger } from '../src/ops/logger';
import { startSidecar, type RunningSidecar } from '../src/serve';

interface Message {
  id: number;
  cmd: 'start' | 'stats' | 'snapshot' | 'smaps' | 'drop-cache' | 'stop';
  config?: unknown;
  file?: string;
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
    case 'snapshot':
      reply(m.id, { file: writeHeapSnapshot(m.file) });
      return;
    case 'drop-cache': {
      // Buffers' memory is freed after the collection that finds them dead (swept apart): collect, wait, collect.
      const gc = async () => {
        (globalThis as { gc?: () => void }).gc?.();
        await new Promise((r) => setTimeout(r, 200));
        (globalThis as { gc?: () => void }).gc?.();
      };
      const cache = running?.sidecar.cache;
      const entries = cache?.store.entries ?? 0;
      await gc();
      const before = process.memoryUsage();
      cache?.clear();
      await gc();
      const cacheCleared = process.memoryUsage();
      running?.sidecar.memo.clear();
      await gc();
      reply(m.id, { entries, before, cacheCleared, memoCleared: process.memoryUsage() });
      return;
    }
    case 'smaps':
      reply(m.id, { smaps: smaps() });
      return;
    case 'stop':
      await running?.stop(0);
      reply(m.id, {});
      process.exit(0);
  }
}

/** Resident kB of the process's mappings by kind: file-backed (per file), [heap] (malloc's main arena), anonymous by mapping size. */
function smaps(): Record<string, number> {
  const out: Record<string, number> = {};
  let kind = '';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const kb = (parseInt(head[2], 16) - parseInt(head[1], 16)) / 1024;
      const name = head[3];
      kind = name ? (name.startsWith('/') ? `file ${name.split('/').pop()}` : name) : `anon ${kb >= 65536 ? '64M+' : kb >= 1024 ? '1M-64M' : kb >= 256 ? '256K-1M' : '<256K'}`;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] = (out[kind] ?? 0) + Number(rss[1]);
  }
  return out;
}
