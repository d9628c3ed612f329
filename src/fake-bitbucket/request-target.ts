/**
 * Parsing of request targets, shared by the router and the request log so that what is logged is exactly
 * what is served: absolute-form targets reduced to their path, every segment percent-decoded exactly once
 * (`%2F` stays inside its segment), dot segments resolved, empty segments dropped (a trailing `/` is kept),
 * and the named workspace / repository resolved to lowercase slugs (`{uuid}` forms via the model).
 */
import { isBracedUuid } from './ids';
import type { FakeModel } from './model';

export interface ParsedTarget {
  rawUrl: string;
  /** path as received (absolute-form reduced), not decoded */
  rawPath: string;
  /** query string without `?` */
  rawQuery: string;
  /** decoded segments; a trailing '' marks a trailing slash */
  segments: string[];
  /** decoded path without query */
  path: string;
  query: Record<string, string[]>;
  badEncoding: boolean;
  kind: 'api' | 'git' | 'web' | 'control';
  workspace?: string;
  repository?: string;
}

const GIT_SERVICES = new Set(['info', 'git-upload-pack', 'git-receive-pack', 'HEAD', 'objects']);
const WEB_RESERVED = new Set(['', 'site', 'account', 'favicon.ico', 'robots.txt', 'socialauth', 'dashboard', 'ravatar']);

export function decodeQueryComponent(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

export function parseQuery(raw: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const part of raw.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const k = decodeQueryComponent(eq < 0 ? part : part.slice(0, eq));
    const v = eq < 0 ? '' : decodeQueryComponent(part.slice(eq + 1));
    (out[k] ??= []).push(v);
  }
  return out;
}

function splitRawUrl(rawUrl: string): { rawPath: string; rawQuery: string } {
  let target = rawUrl;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(target);
  if (abs) target = target.slice(abs[0].length) || '/';
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  const q = target.indexOf('?');
  return q < 0 ? { rawPath: target, rawQuery: '' } : { rawPath: target.slice(0, q), rawQuery: target.slice(q + 1) };
}

export function decodeSegments(rawPath: string): { segments: string[]; bad: boolean } {
  let bad = false;
  const raw = rawPath.split('/');
  const trailing = raw.length > 1 && raw[raw.length - 1] === '';
  const out: string[] = [];
  for (const r of raw) {
    if (r === '') continue;
    let s: string;
    try {
      s = decodeURIComponent(r);
    } catch {
      bad = true;
      s = r;
    }
    if (s === '.') continue;
    if (s === '..') {
      out.pop();
      continue;
    }
    out.push(s);
  }
  if (trailing && out.length > 0) out.push('');
  return { segments: out, bad };
}

function resolveWorkspace(model: FakeModel | undefined, raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (model && isBracedUuid(raw)) {
    const ws = model.findWorkspace(raw);
    if (ws) return ws.slug;
  }
  return raw.toLowerCase();
}

function resolveRepository(model: FakeModel | undefined, raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (model && isBracedUuid(raw)) {
    const r = model.repositoryByUuid(raw);
    if (r) return r.slug;
  }
  return raw.toLowerCase();
}

export function parseTarget(rawUrl: string, model?: FakeModel): ParsedTarget {
  const { rawPath, rawQuery } = splitRawUrl(rawUrl);
  const { segments, bad } = decodeSegments(rawPath);
  const path = `/${segments.join('/')}`;
  const query = parseQuery(rawQuery);
  const s = segments;
  let kind: ParsedTarget['kind'];
  let ws: string | undefined;
  let repo: string | undefined;
  if (s[0] === '_fake') {
    kind = 'control';
  } else if (s[0] === '2.0' || s[0] === '1.0') {
    kind = 'api';
    if (s[1] === 'repositories') {
      ws = s[2];
      repo = s[3];
    } else if (s[1] === 'workspaces' || s[1] === 'teams' || s[1] === 'snippets') {
      ws = s[2];
      if (s[3] === 'permissions' && s[4] === 'repositories') repo = s[5];
    }
  } else if (s.length >= 2 && (s[1]!.toLowerCase().endsWith('.git') || GIT_SERVICES.has(s[2] ?? '\0'))) {
    kind = 'git';
    ws = s[0];
    repo = s[1]!.replace(/\.git$/i, '');
  } else {
    kind = 'web';
    if (s[0] === 'workspaces') ws = s[1];
    else if (!WEB_RESERVED.has(s[0] ?? '')) {
      ws = s[0];
      repo = s[1];
    }
  }
  const workspace = resolveWorkspace(model, ws);
  return {
    rawUrl,
    rawPath,
    rawQuery,
    segments,
    path,
    query,
    badEncoding: bad,
    kind,
    workspace,
    repository: workspace ? resolveRepository(model, repo) : undefined,
  };
}

/** First value of each query parameter (the log's flat view). */
export function flatQuery(q: Record<string, string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(q)) out[k] = v[0] ?? '';
  return out;
}
