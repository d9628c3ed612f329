import { statSync, type Stats } from 'node:fs';

type Seen = Pick<Stats, 'mtimeMs' | 'size' | 'ino'>;

/**
 * Calls `onChange` when the file's content may have changed. Polling (rather than fs.watch)
 * survives editors that replace the file and Kubernetes ConfigMap symlink swaps. The first look is
 * taken now, synchronously: with fs.watchFile the baseline is taken later, on the thread pool, and a
 * change made in between became that baseline and was never reported.
 */
export function watchConfigFile(file: string, onChange: () => void, intervalMs = 1000): () => void {
  let last = statOrUndefined(file);
  const timer = setInterval(() => {
    const now = statOrUndefined(file);
    const changed = now?.mtimeMs !== last?.mtimeMs || now?.size !== last?.size || now?.ino !== last?.ino;
    last = now;
    // A file that disappeared (mid-swap) is reported when it is back.
    if (changed && now) onChange();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function statOrUndefined(file: string): Seen | undefined {
  try {
    const s = statSync(file);
    return { mtimeMs: s.mtimeMs, size: s.size, ino: s.ino };
  } catch {
    return undefined;
  }
}
