/**
 * Answers for the mirror-backed routes, computed from one mirror: `refs/branches[/{name}]`,
 * `refs/tags[/{name}]`, `commit/{hash}`, `commits?include&exclude`, `src/{rev}/{path}`.
 *
 * Each call first says what it needs (`plan`): nothing the mirror cannot do (`fields=`, `q=`,
 * `sort=`, odd paging → upstream), and whether the answer depends on where refs point now
 * (`fresh`) or only on commit ids (an answer addressed by a commit id of ≥ 12 hex characters is
 * the same whenever it is computed, so a mirror that has the commit answers it however old).
 * `answer` then gives the answer, or `absent` (the mirror lacks a commit the request names: a
 * refresh may bring it, or it lives in a fork only Bitbucket sees) or `defer` (upstream decides).
 */
import { errorAnswer } from '../respond/errors';
import { upstreamPath } from '../routes/call';
import type { ApiAnswer, ApiCall } from '../core/call';
import type { MirrorCapability } from '../core/route';
import type { MirrorReader } from './reader';
import { attributesFor, COMMITS_PAGE, envelope, mimetypeFor, pageHref, REFS_PAGE, SRC_PAGE, type MirrorRenderer, type PageShape } from './render';

/** The capabilities (named by the route table's `mirror` field) computed here from one mirror. */
const FROM_MIRROR: ReadonlySet<MirrorCapability | undefined> = new Set<MirrorCapability>(['branch-list', 'branch-one', 'tag-list', 'tag-one', 'commit-one', 'commit-range', 'source']);

/**
 * Raw file answers larger than this are left to upstream (they would also crowd the cache); the
 * manager lowers it to `mirror.memoryBytes / mirror.maxConcurrentWalks`, so the file contents read
 * at once stay within one `memoryBytes`.
 */
export const MAX_CONTENT_BYTES = 32 * 1024 ** 2;

const HEX = /^[0-9a-f]{7,40}$/i;
const IMMUTABLE_ID = /^[0-9a-f]{12,40}$/i;
const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' };

export type Plan = { ok: false; reason: string } | { ok: true; fresh: boolean };
export type Outcome = { kind: 'answer'; answer: ApiAnswer } | { kind: 'absent' } | { kind: 'defer'; reason: string };

const q = (call: ApiCall, name: string): string[] => call.query.filter(([k]) => k === name).map(([, v]) => v);
const has = (call: ApiCall, name: string): boolean => call.query.some(([k]) => k === name);

/** What a call needs from the mirror; `ok: false` sends it upstream unchanged. */
export function plan(call: ApiCall): Plan {
  const kind = call.route.mirror;
  if (!FROM_MIRROR.has(kind)) return { ok: false, reason: 'route' };
  if (call.method !== 'GET' && call.method !== 'HEAD') return { ok: false, reason: 'method' };
  for (const k of ['fields', 'q', 'sort', 'max_depth']) if (has(call, k)) return { ok: false, reason: k };
  const shape = kind === 'commit-range' ? COMMITS_PAGE : kind === 'source' ? SRC_PAGE : REFS_PAGE;
  if (!paging(call, shape)) return { ok: false, reason: 'paging' };
  switch (kind) {
    case 'branch-list':
    case 'branch-one':
    case 'tag-list':
    case 'tag-one':
      return { ok: true, fresh: true };
    case 'commit-one':
      return { ok: true, fresh: !IMMUTABLE_ID.test(call.params.hash ?? '') };
    case 'commit-range': {
      const names = [...q(call, 'include'), ...q(call, 'exclude')];
      return { ok: true, fresh: q(call, 'include').length === 0 || !names.every((n) => /^[0-9a-f]{40}$/i.test(n)) };
    }
    case 'source': {
      const format = q(call, 'format');
      if (format.length > 1 || (format.length === 1 && format[0] !== 'meta')) return { ok: false, reason: 'format' };
      if (q(call, 'at').length > 1) return { ok: false, reason: 'at' };
      return { ok: true, fresh: !IMMUTABLE_ID.test(call.params.rev ?? '') };
    }
    default:
      return { ok: false, reason: 'route' };
  }
}

function paging(call: ApiCall, shape: PageShape): { page: number; pagelen: number } | undefined {
  const lens = q(call, 'pagelen');
  const pages = q(call, 'page');
  if (lens.length > 1 || pages.length > 1) return undefined;
  const pagelen = lens.length ? Number(lens[0]) : shape.defaultPagelen;
  const page = pages.length ? Number(pages[0]) : 1;
  if (!Number.isInteger(pagelen) || pagelen < 1 || pagelen > shape.maxPagelen) return undefined;
  if (!Number.isInteger(page) || page < 1 || page > 1_000_000) return undefined;
  return { page, pagelen };
}

const json = (value: unknown): Outcome => ({ kind: 'answer', answer: { status: 200, headers: { ...JSON_TYPE }, body: Buffer.from(JSON.stringify(value)) } });
const notFound = (message: string, extra?: Record<string, unknown>): Outcome => {
  const a = errorAnswer(404, message);
  if (extra) a.body = Buffer.from(JSON.stringify({ type: 'error', error: { message, ...extra } }));
  return { kind: 'answer', answer: a };
};

export interface AnswerContext {
  reader: MirrorReader;
  render: MirrorRenderer;
  apiUrl: string;
  /** `mirror.maxWalkCommits`: commit-list pages ending deeper than this go upstream. */
  maxWalkCommits: number;
  /** Raw files larger than this go upstream. */
  maxContentBytes: number;
}

/** Computes the answer of a planned call from the mirror. */
export async function answer(call: ApiCall, ctx: AnswerContext): Promise<Outcome> {
  const kind = call.route.mirror;
  const shape = kind === 'commit-range' ? COMMITS_PAGE : kind === 'source' ? SRC_PAGE : REFS_PAGE;
  const p = paging(call, shape)!;
  const full = upstreamPath(call);
  const qi = full.indexOf('?');
  const link = (n: number) => pageHref(ctx.apiUrl, qi < 0 ? full : full.slice(0, qi), qi < 0 ? '' : full.slice(qi + 1), n);
  const page = async <T>(items: T[], shape: PageShape, render: (item: T) => Promise<unknown>): Promise<Outcome> => {
    const start = (p.page - 1) * p.pagelen;
    const window = items.slice(start, start + p.pagelen);
    const values = await Promise.all(window.map(render));
    if (values.some((v) => v === undefined)) return { kind: 'defer', reason: 'object missing' };
    return json(envelope(values, items.length, p.page, p.pagelen, shape, link));
  };
  const { reader, render } = ctx;

  switch (kind) {
    case 'branch-list': {
      const refs = await reader.refs();
      return page([...refs.branches], REFS_PAGE, async ([name, sha]) => {
        const c = await reader.commit(sha);
        return c && render.branch(name, c);
      });
    }
    case 'tag-list': {
      const refs = await reader.refs();
      return page([...refs.tags], REFS_PAGE, async ([name, t]) => renderTag(ctx, name, t.objectSha, t.commit, t.annotated));
    }
    case 'branch-one': {
      const name = call.params.name!;
      const sha = (await reader.refs()).branches.get(name);
      if (!sha) return notFound(`Branch "${name}" does not exist`);
      const c = await reader.commit(sha);
      return c ? json(render.branch(name, c)) : { kind: 'defer', reason: 'object missing' };
    }
    case 'tag-one': {
      const name = call.params.name!;
      const t = (await reader.refs()).tags.get(name);
      if (!t) return notFound(`Tag "${name}" does not exist`);
      const out = await renderTag(ctx, name, t.objectSha, t.commit, t.annotated);
      return out ? json(out) : { kind: 'defer', reason: 'object missing' };
    }
    case 'commit-one': {
      const hash = call.params.hash!;
      if (await reader.resolveRef(hash)) return { kind: 'defer', reason: 'ref named like a commit id' };
      const sha = await reader.commitByPrefix(hash);
      const c = sha ? await reader.commit(sha) : undefined;
      return c ? json(render.commit(c)) : { kind: 'absent' };
    }
    case 'commit-range': {
      const include: string[] = [];
      const exclude: string[] = [];
      if (q(call, 'include').length === 0) include.push(...new Set((await reader.refs()).branches.values()));
      for (const [names, into] of [
        [q(call, 'include'), include],
        [q(call, 'exclude'), exclude],
      ] as const) {
        for (const n of names) {
          const sha = await reader.resolve(n);
          if (!sha) return /^[0-9a-f]{7,40}$/i.test(n) ? { kind: 'absent' } : { kind: 'defer', reason: 'unknown revision' };
          into.push(sha);
        }
      }
      // Only the page asked for (and one more id, to know whether a next page exists) comes from git.
      const skip = (p.page - 1) * p.pagelen;
      if (skip + p.pagelen > ctx.maxWalkCommits) return { kind: 'defer', reason: 'walk-depth' };
      const hashes = await reader.revListPage(include, exclude, skip, p.pagelen + 1);
      const values = await Promise.all(
        hashes.slice(0, p.pagelen).map(async (h) => {
          const c = await reader.commit(h);
          return c && render.commit(c);
        }),
      );
      if (values.some((v) => v === undefined)) return { kind: 'defer', reason: 'object missing' };
      return json(envelope(values, skip + hashes.length, p.page, p.pagelen, COMMITS_PAGE, link));
    }
    case 'source':
      return src(call, ctx, page);
    default:
      return { kind: 'defer', reason: 'route' };
  }
}

async function renderTag(ctx: AnswerContext, name: string, objectSha: string, commitSha: string, annotated: boolean): Promise<Record<string, unknown> | undefined> {
  const c = await ctx.reader.commit(commitSha);
  if (!c) return undefined;
  const t = annotated ? await ctx.reader.tag(objectSha) : undefined;
  if (annotated && !t) return undefined;
  return ctx.render.tag(name, t, c);
}

type Pager = <T>(items: T[], shape: PageShape, render: (item: T) => Promise<unknown>) => Promise<Outcome>;

/** Locates `{rev}/{path}` (with Bitbucket's `at=` rule) and answers meta, listing or content. */
async function src(call: ApiCall, ctx: AnswerContext, page: Pager): Promise<Outcome> {
  const { reader, render } = ctx;
  const rev = call.params.rev!;
  const rest = call.params.path ?? '';
  const at = q(call, 'at')[0];
  const meta = q(call, 'format')[0] === 'meta';
  let commit: string | undefined;
  let path = rest;

  if (at !== undefined && at !== '') {
    // `src/{hash}/{path}?at={ref}`: the hash wins when it names a commit; without one the plugin
    // sends `src/{path}?at={ref}` and every segment is the path.
    if (HEX.test(rev)) {
      commit = await reader.commitByPrefix(rev);
      if (!commit) return IMMUTABLE_ID.test(rev) ? { kind: 'absent' } : { kind: 'defer', reason: 'unknown revision' };
    } else {
      commit = await reader.resolve(at);
      if (!commit) return { kind: 'defer', reason: 'unknown at=' };
      path = rest ? `${rev}/${rest}` : rev;
    }
  } else {
    commit = await reader.resolveRef(rev);
    if (!commit && HEX.test(rev)) {
      commit = await reader.commitByPrefix(rev);
      if (!commit) return { kind: 'absent' };
    }
    if (!commit && rest) {
      // `src/feature/x/Jenkinsfile` with literal slashes: the longest ref that fits wins, as Bitbucket does.
      const segs = rest.split('/');
      for (let k = 1; k <= segs.length && !commit; k++) {
        const sha = await reader.resolveRef(`${rev}/${segs.slice(0, k).join('/')}`);
        if (sha) {
          commit = sha;
          path = segs.slice(k).join('/');
        }
      }
    }
    if (!commit) return { kind: 'defer', reason: 'unknown revision' };
  }

  const entry = await reader.entryAt(commit, path);
  if (!entry) {
    if (!(await reader.commit(commit))) return { kind: 'absent' };
    return notFound(`No such file or directory: ${path}`);
  }
  if (entry.kind === 'root' || entry.kind === 'tree') {
    const dir = entry.kind === 'root' ? '' : entry.path;
    if (meta) return json(render.srcDirectory(commit, dir));
    const entries = await reader.tree(entry.kind === 'root' ? entry.tree : entry.sha);
    if (!entries) return { kind: 'defer', reason: 'object missing' };
    return page(entries, SRC_PAGE, async (e) => {
      const p = dir ? `${dir}/${e.name}` : e.name;
      if (e.kind === 'tree') return render.srcDirectory(commit!, p);
      const size = e.kind === 'blob' ? await reader.blobSize(e.sha) : 0;
      return size === undefined ? undefined : render.srcFile(commit!, p, attributesFor(e.mode), size, e.kind === 'blob' ? mimetypeFor(p) : null);
    });
  }
  const parent = entry.path.split('/').slice(0, -1).join('/');
  if (meta) {
    const size = entry.kind === 'blob' ? await reader.blobSize(entry.sha) : 0;
    if (size === undefined) return { kind: 'defer', reason: 'object missing' };
    const p = parent ? `${parent}/${entry.name}` : entry.name;
    return json(render.srcFile(commit, p, attributesFor(entry.mode), size, entry.kind === 'blob' ? mimetypeFor(p) : null));
  }
  if (entry.kind === 'commit') return notFound(`No such file or directory: ${path}`);
  const size = await reader.blobSize(entry.sha);
  if (size === undefined) return { kind: 'defer', reason: 'object missing' };
  if (size > ctx.maxContentBytes) return { kind: 'defer', reason: 'large file' };
  const content = await reader.blob(entry.sha);
  if (!content) return { kind: 'defer', reason: 'object missing' };
  return { kind: 'answer', answer: { status: 200, headers: { 'content-type': 'text/plain' }, body: content } };
}
