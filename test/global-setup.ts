/**
 * Builds dist/ once per test run: the deploy tests run the image's entrypoint (`node dist/main.js`)
 * and the SIGTERM test a real child process. Incremental, so a run without source changes costs ~1 s.
 * Type errors are printed but do not stop the run (tsc still emits, and `npx tsc --noEmit` is the
 * type gate); a build that produced no dist/main.js does.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

export default function globalSetup(): void {
  // The sidecar honours the standard proxy variables; tests talk to loopback servers and start
  // their own proxy where they need one, so an inherited proxy must not carry their traffic.
  for (const k of Object.keys(process.env)) if (/^(https?|all|no)_proxy$/i.test(k)) delete process.env[k];
  const root = path.resolve(__dirname, '..');
  const tsc = require.resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--incremental', '--tsBuildInfoFile', 'dist/.tsbuildinfo'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) process.stderr.write(`\n[global-setup] tsc -p tsconfig.build.json reported problems:\n${r.stdout}${r.stderr}\n`);
  if (!existsSync(path.join(root, 'dist', 'main.js'))) throw new Error('[global-setup] the build produced no dist/main.js');
}
