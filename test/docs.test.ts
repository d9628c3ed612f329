/**
 * The documentation stands alone and stays true: README.md is short and keeps the newcomer's two
 * commands (the CI entry point runs the same install and test), every relative link in README.md and
 * docs/ leads to a file (and heading) in the repository, no document cites texts outside it, and
 * docs/configuration.md names every configuration key with the default the schema applies.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema } from '../src/config/schema';
import { parseByteSize } from '../src/config/size';

const ROOT = path.resolve(__dirname, '..');
const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');
const DOCS = readdirSync(path.join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => `docs/${f}`);
const ALL = ['README.md', ...DOCS];

/** Markdown without fenced code blocks and inline code: links and headings are read from the rest. */
function prose(md: string): string {
  return md.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(md: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of md.replace(/^```[\s\S]*?^```/gm, '').split('\n')) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function links(md: string): string[] {
  return [...prose(md).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]);
}

describe('README.md', () => {
  const readme = read('README.md');

  it('is at most 12 KiB', () => {
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(12288);
  });

  it('keeps the two commands, and CI runs the same install and test', () => {
    const section = readme.slice(readme.indexOf('## Two commands'));
    expect(section).toContain('| run the demo (sidecar + embedded demo Bitbucket, no setup) | `npm ci && npm start` |');
    expect(section).toContain('| run the tests | `npm ci && npm test` |');
    const ci = read('.ci/run').split('\n').map((l) => l.trim());
    expect(ci).toContain('npm ci');
    expect(ci).toContain('npm test');
  });

  it('links every document in docs/', () => {
    const linked = new Set(links(readme).map((l) => l.split('#')[0]));
    expect(DOCS.filter((d) => !linked.has(d))).toEqual([]);
  });
});

/** Section citations of documents this repository does not contain (spelled in parts, so this file has none). */
const CITATIONS = [['ARCHITECTURE', '§'].join(' '), ['reference', '§'].join(' ')];

describe('the repository', () => {
  it('cites no section of a document it does not contain, in any tracked file', () => {
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter((f) => f && !/\.(png|jpg|p12|gz)$/.test(f));
    const citing = files.filter((f) => {
      const full = path.join(ROOT, f);
      if (!existsSync(full)) return false;
      const text = readFileSync(full, 'utf8');
      return CITATIONS.some((c) => text.includes(c));
    });
    expect(citing).toEqual([]);
  });
});

describe.each(ALL)('%s', (file) => {
  const text = read(file);

  it('cites nothing outside the repository', () => {
    // Spelled in parts: test/self-contained.test.ts refuses those paths as literals in test sources.
    const beside = ['..', 'shared', ''].join('/');
    const machine = ['', 'work', ''].join('/');
    for (const outside of [...CITATIONS, beside, machine]) expect(text).not.toContain(outside);
  });

  it('has relative links that resolve to files and headings in the repository', () => {
    const broken: string[] = [];
    for (const link of links(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:
      const [target, anchor] = link.split('#');
      const resolved = target === '' ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), target);
      if (!(resolved === ROOT || resolved.startsWith(ROOT + path.sep)) || !existsSync(resolved)) {
        broken.push(`${link}: no such file`);
        continue;
      }
      if (anchor !== undefined && !anchors(readFileSync(resolved, 'utf8')).has(anchor)) broken.push(`${link}: no such heading`);
    }
    expect(broken).toEqual([]);
  });
});

/** Every key path of the configuration schema: `server.http.port`, `clients[].scope[].workspace`, `mirror.workspaces.<ws>.enabled`. */
function schemaKeys(schema: z.ZodType, prefix = '', out = new Map<string, boolean>()): Map<string, boolean> {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  const inner = (k: string) => def[k] as z.ZodType;
  switch (def.type) {
    case 'default':
    case 'optional':
    case 'nullable':
    case 'readonly':
    case 'prefault':
      return schemaKeys(inner('innerType'), prefix, out);
    case 'pipe':
      return schemaKeys(inner('in'), prefix, out);
    case 'array':
      return schemaKeys(inner('element'), `${prefix}[]`, out);
    case 'union':
      for (const o of def.options as z.ZodType[]) schemaKeys(o, prefix, out);
      return out;
    case 'record':
      return schemaKeys(inner('valueType'), `${prefix}.<ws>`, out);
    case 'object':
      if (prefix) out.set(prefix, false);
      // A list of objects (`clients`, `clients[].tokens`) is a section too.
      if (prefix.endsWith('[]')) out.set(prefix.slice(0, -2), false);
      for (const [k, v] of Object.entries(def.shape as Record<string, z.ZodType>)) {
        const p = prefix ? `${prefix}.${k}` : k;
        if (!out.has(p)) out.set(p, true);
        schemaKeys(v, p, out);
      }
      return out;
    default:
      return out;
  }
}

/** The value at a key path (`[]` takes the first element). */
function valueAt(value: unknown, key: string): unknown {
  let v: unknown = value;
  for (const part of key.split('.')) {
    if (v === undefined || v === null) return undefined;
    const array = part.endsWith('[]');
    v = (v as Record<string, unknown>)[array ? part.slice(0, -2) : part];
    if (array) v = Array.isArray(v) ? v[0] : undefined;
  }
  return v;
}

describe('docs/configuration.md', () => {
  const doc = read('docs/configuration.md');
  const keys = schemaKeys(configSchema);
  /** The default column of each key's table row. */
  const rows = new Map<string, string>();
  for (const m of doc.matchAll(/^\| `([^`]+)` \| (.*?) \|/gm)) rows.set(m[1], m[2]);

  it('reads the schema (webhooks.*, server.* and the rest)', () => {
    for (const k of ['server.maxConnectionsPerSource', 'webhooks.maxInFlightBytes', 'webhooks.queue.dedupMaxEntries', 'clients[].budgetWeight', 'forkGrants.maxRepositories']) expect(keys.has(k)).toBe(true);
  });

  it('has a row for every key that holds a value', () => {
    const leaves = [...keys].filter(([, leaf]) => leaf).map(([k]) => k);
    const sections = [...keys].filter(([, leaf]) => !leaf).map(([k]) => k);
    expect(leaves.filter((k) => !rows.has(k) && !sections.includes(k))).toEqual([]);
    // Sections are named at least as the prefix of their keys.
    expect(sections.filter((k) => !doc.includes(`\`${k}`))).toEqual([]);
  });

  it('documents no key the schema does not have', () => {
    expect([...rows.keys()].filter((k) => !keys.has(k))).toEqual([]);
  });

  it('gives every default exactly as the schema applies it', () => {
    // Every optional section present, so that the defaults inside them apply too.
    const input = {
      server: { https: { port: 8443 }, ops: { port: 9090 } },
      upstream: { auth: { type: 'basic', username: 'u@example.com', password: 'p' } },
      clients: [{ id: 'c', token: { sha256: 'a'.repeat(64) }, scope: [{ workspace: 'acme' }] }],
      cache: { shared: { redis: { url: 'redis://127.0.0.1:6379', tls: {} } } },
      webhooks: {},
    };
    const parsed = configSchema.parse(input);
    const wrong: string[] = [];
    for (const key of keys.keys()) {
      const given = valueAt(input, key);
      const value = valueAt(parsed, key);
      if (given !== undefined || value === undefined) continue;
      const cell = rows.get(key);
      if (cell === undefined) continue; // a section without a row of its own: its keys have rows
      const m = /^`([^`]*)`$/.exec(cell);
      if (!m) {
        wrong.push(`${key}: default ${JSON.stringify(value)}, documented as ${cell}`);
        continue;
      }
      const text = m[1];
      let yaml: unknown;
      try {
        yaml = parseYaml(text);
      } catch {
        yaml = undefined;
      }
      const same =
        text === String(value) ||
        JSON.stringify(yaml) === JSON.stringify(value) ||
        (typeof value === 'number' && typeof yaml === 'string' && parseByteSize(yaml) === value);
      if (!same) wrong.push(`${key}: default ${JSON.stringify(value)}, documented as ${text}`);
    }
    expect(wrong).toEqual([]);
  });
});
