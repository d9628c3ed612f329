import { existsSync } from 'node:fs';
import path from 'node:path';

/** bench/RESULTS.md of the source tree, whether run from bench/ (ts) or dist-bench/bench/ (js). */
export function resultsFile(): string {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'bench', 'RESULTS.md');
    dir = path.dirname(dir);
  }
  return path.join(process.cwd(), 'bench', 'RESULTS.md');
}
