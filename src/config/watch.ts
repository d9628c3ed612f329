import { unwatchFile, watchFile } from 'node:fs';

/**
 * Calls `onChange` when the file's content may have changed. Polling (rather than fs.watch)
 * survives editors that replace the file and Kubernetes ConfigMap symlink swaps.
 */
export function watchConfigFile(file: string, onChange: () => void, intervalMs = 1000): () => void {
  const listener = (curr: { mtimeMs: number; size: number; ino: number }, prev: { mtimeMs: number; size: number; ino: number }) => {
    if (curr.mtimeMs !== prev.mtimeMs || curr.size !== prev.size || curr.ino !== prev.ino) onChange();
  };
  watchFile(file, { interval: intervalMs, persistent: false }, listener);
  return () => unwatchFile(file, listener);
}
