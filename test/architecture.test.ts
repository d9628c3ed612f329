/**
 * The import rules of src/ (.dependency-cruiser.cjs): no cycle between files or folders, no import
 * upward in the layer order, core/ on its own, the fake Bitbucket an island only the demo starts.
 * dependency-cruiser's JS API is ESM-only, which jest's CommonJS runtime cannot load, so the
 * bin runs in a child process.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const CONFIG = path.join(ROOT, '.dependency-cruiser.cjs');
const BIN = path.join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
  cycle?: { name: string }[];
}

/** Cruises `src` under `cwd` with the project's rules; the violations, one line each. */
function cruise(cwd: string): string[] {
  const run = spawnSync(process.execPath, [BIN, 'src', '--config', CONFIG, '--output-type', 'json'], { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 ** 2 });
  if (!run.stdout) throw new Error(`depcruise failed: ${run.stderr}`);
  const result = JSON.parse(run.stdout) as { summary: { violations: Violation[] } };
  return result.summary.violations.map((v) => {
    const path = v.cycle && v.cycle.length > 0 ? [v.from, ...v.cycle.map((c) => c.name)].join(' → ') : `${v.from} → ${v.to}`;
    return `${v.rule.name}: ${path}`;
  });
}

describe('architecture', () => {
  it('src/ keeps the dependency rules', () => {
    expect(cruise(ROOT)).toEqual([]);
  });

  it('places every folder of src/ in the layer order', () => {
    const rules = (require(CONFIG) as { forbidden: { name: string }[] }).forbidden;
    const layered = new Set(rules.map((r) => /^layer-(.+)$/.exec(r.name)?.[1]).filter((n): n is string => n !== undefined && n !== 'unknown'));
    const folders = readdirSync(path.join(ROOT, 'src'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(folders.filter((f) => !layered.has(f) && f !== 'fake-bitbucket')).toEqual([]);
    expect(layered.has('core')).toBe(true);
  });

  describe('on a fixture that breaks each rule', () => {
    let dir: string;
    let found: string[];

    beforeAll(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'architecture-'));
      const files: Record<string, string> = {
        'core/a.ts': 'export const a = 1;',
        'core/bad.ts': "import { c } from '../config/c';\nexport const bad = c;",
        'config/c.ts': 'export const c = 2;',
        // upward: routes is below listen
        'routes/x.ts': "import { y } from '../listen/y';\nexport const x = y;",
        // a file cycle closed by a type-only import
        'listen/y.ts': "import { z } from './z';\nexport const y = 1;\nexport const yz = z;",
        'listen/z.ts': "import type { y } from './y';\nexport const z: typeof y = 1;",
        // a folder cycle without a file cycle: scope/p → respond/q, respond/r → scope/s
        'scope/p.ts': "import { q } from '../respond/q';\nexport const p = q;",
        'respond/q.ts': 'export const q = 3;',
        'respond/r.ts': "import { s } from '../scope/s';\nexport const r = s;",
        'scope/s.ts': 'export const s = 4;',
        'fake-bitbucket/f.ts': "import { q } from '../respond/q';\nexport const f = q;",
        'sidecar.ts': "import { f } from './fake-bitbucket/f';\nexport const side = f;",
        'demo.ts': "import { f } from './fake-bitbucket/f';\nexport const demo = f;",
        'extra/e.ts': "import { a } from '../core/a';\nexport const e = a;",
      };
      for (const [name, text] of Object.entries(files)) {
        const file = path.join(dir, 'src', name);
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, `${text}\n`);
      }
      writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true } }));
      found = cruise(dir);
    });

    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('reports a cycle between files, type-only imports included', () => {
      expect(found).toContain('no-circular: src/listen/y.ts → src/listen/z.ts → src/listen/y.ts');
    });

    it('reports a cycle between folders', () => {
      expect(found).toContain('no-folder-cycle: src/scope → src/respond → src/scope');
    });

    it('reports upward imports', () => {
      expect(found).toContain('layer-routes: src/routes/x.ts → src/listen/y.ts');
      expect(found).toContain('layer-scope: src/scope/p.ts → src/respond/q.ts');
    });

    it('reports core importing another folder', () => {
      expect(found).toContain('layer-core: src/core/bad.ts → src/config/c.ts');
    });

    it('keeps the fake Bitbucket an island only the demo imports', () => {
      expect(found).toContain('island-imports-shared-only: src/fake-bitbucket/f.ts → src/respond/q.ts');
      expect(found).toContain('island-imported-by-demo-only: src/sidecar.ts → src/fake-bitbucket/f.ts');
      expect(found.filter((v) => v.includes('src/demo.ts'))).toEqual([]);
    });

    it('reports a folder missing from the layer order', () => {
      expect(found).toContain('layer-unknown: src/extra/e.ts → src/core/a.ts');
    });

    it('reports nothing the fixture does not break', () => {
      expect(found.filter((v) => v.includes('src/respond/r.ts →'))).toEqual([]);
    });
  });
});
