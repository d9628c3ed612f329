/**
 * Reading the deployment files the way Docker, Compose and Kubernetes would, without any of them:
 * a Dockerfile instruction parser, Compose-style `${VAR}` interpolation, and a few lookups.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import * as path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export const ROOT = path.resolve(__dirname, '..', '..');
export const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');
export const readYaml = <T = any>(rel: string): T => parse(read(rel)) as T; // eslint-disable-line @typescript-eslint/no-explicit-any
export const readYamlDocs = (rel: string): any[] => parseAllDocuments(read(rel)).map((d) => d.toJS()); // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, ... */
  op: string;
  /** Everything after the keyword, continuation lines joined. */
  args: string;
  /** Index of the build stage (0 = first FROM). */
  stage: number;
}

/** Dockerfile instructions: comments dropped, `\` continuations joined, each tagged with its stage. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let stage = -1;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) continue;
    if (pending && line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (!full) continue;
    const m = /^(\w+)\s+([\s\S]*)$/.exec(full);
    if (!m) continue;
    const op = m[1].toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: m[2].trim(), stage });
  }
  return out;
}

/** The environment a stage's `ENV` instructions set (`KEY=value` and `KEY="value with spaces"` forms). */
export function dockerEnv(instructions: Instruction[], stage: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of instructions.filter((x) => x.op === 'ENV' && x.stage === stage)) {
    for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/g)) env[m[1]] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  }
  return env;
}

/** The V8 heap bounds in a NODE_OPTIONS value, in MiB (undefined: not set). */
export function heapBounds(nodeOptions: string | undefined): { semiSpace?: number; oldSpace?: number } {
  const flag = (name: string) => {
    const m = new RegExp(`(?:^|\\s)--${name}=(\\d+)(?:\\s|$)`).exec(nodeOptions ?? '');
    return m ? Number(m[1]) : undefined;
  };
  return { semiSpace: flag('max-semi-space-size'), oldSpace: flag('max-old-space-size') };
}

/** Exec-form (JSON array) arguments of CMD / ENTRYPOINT / HEALTHCHECK ... CMD. */
export function execForm(args: string): string[] {
  const start = args.indexOf('[');
  const parsed = JSON.parse(args.slice(start)) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) throw new Error(`not an exec form: ${args}`);
  return parsed as string[];
}

/**
 * Compose interpolation: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`
 * and `$$`. Unset (or, with `:`, empty) variables take the default; `?` forms throw.
 */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g, (whole, name?: string, colon?: string, kind?: string, arg?: string) => {
    if (whole === '$$') return '$';
    const v = env[name!];
    const missing = v === undefined || (colon === ':' && v === '');
    if (kind === '-') return missing ? arg! : v!;
    if (kind === '?') {
      if (missing) throw new Error(`required variable ${name} is missing: ${arg}`);
      return v!;
    }
    return v ?? '';
  });
}

/** Variables a text references as `${VAR...}` (Compose and JCasC syntax). */
export function referencedVariables(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]))];
}

/** Variables a YAML file's values reference (comments do not count: neither Compose nor JCasC reads them). */
export function yamlVariables(rel: string): string[] {
  return referencedVariables(JSON.stringify(parseAllDocuments(read(rel)).map((d) => d.toJS())));
}

/** A service's `environment` as a map, whichever of the two Compose forms it uses. */
export function environmentOf(service: { environment?: Record<string, unknown> | string[] }): Record<string, string> {
  const e = service.environment;
  if (!e) return {};
  if (Array.isArray(e)) {
    return Object.fromEntries(e.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v === null || v === undefined ? '' : String(v)]));
}

/** The compose file's text interpolated with `env` (no .env: what `docker compose up` sees out of the box). */
export function loadCompose(rel: string, env: Record<string, string | undefined> = {}): any { // eslint-disable-line @typescript-eslint/no-explicit-any
  return parse(interpolate(read(rel), env));
}

/** `extra_hosts` in either form, as host → address. */
export function extraHosts(service: { extra_hosts?: string[] | Record<string, string> }): Record<string, string> {
  const h = service.extra_hosts;
  if (!h) return {};
  if (Array.isArray(h)) {
    return Object.fromEntries(h.map((e) => {
      const i = e.search(/[:=]/);
      return [e.slice(0, i), e.slice(i + 1)];
    }));
  }
  return { ...h };
}

export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** Short-syntax (`src:dst[:ro]`) and long-syntax volume entries. */
export function mountsOf(service: { volumes?: (string | { source?: string; target: string; read_only?: boolean })[] }): Mount[] {
  return (service.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source ?? '', target: v.target, readOnly: Boolean(v.read_only) };
    const [source, target, mode] = v.split(':');
    return { source, target, readOnly: (mode ?? '').split(',').includes('ro') };
  });
}

/** `-Dname=value` system properties in a JVM options string. */
export function systemProperties(opts: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of opts.matchAll(/-D([^=\s]+)=(\S*)/g)) out[m[1]] = m[2];
  return out;
}

/** Is `ip` (IPv4) inside `cidr`? */
export function inSubnet(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const toInt = (a: string) => a.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return (toInt(ip) & mask) === (toInt(base) & mask);
}

/** A TCP port that was free a moment ago (the usual small race is acceptable in tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** The value following a `--flag` in an argument list. */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}
