/**
 * Derived single-repository answers (docs/mirror.md): `GET /2.0/repositories/{ws}/{repo}`
 * and `…/{repo}/?fields=mainbranch.name` from the workspace listing the scan fetched moments before.
 * A listing page's `values` are the very repository objects Bitbucket returns for one repository,
 * so an organisation scan needs no per-repository call for them.
 *
 * The index learns every repository object of listing answers (`/2.0/repositories/{ws}`, no
 * `fields=`) as they pass from upstream to the cache. An object serves as long as its page is
 * younger than the repository's own freshness (`cache.freshness.metadataSeconds`) and nothing
 * invalidated the repository or workspace since (webhook `repo:*` events, our writes). An object
 * that has aged is refreshed by fetching its listing page again — one REST call for up to 100
 * repositories instead of one each.
 */
import { upstreamPath } from '../routes/call';
import type { ApiAnswer, ApiCall, Source } from '../core/call';
import type { ByteTable, RepositoryRecord } from './memory';

const MAINBRANCH = 'mainbranch.name';
const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' };

type Known = RepositoryRecord;

export interface DerivedStats {
  answered: number;
  pageRefreshes: number;
  misses: number;
}

export class RepositoryIndex {
  private readonly pageFetches = new Map<string, Promise<void>>();
  readonly stats: DerivedStats = { answered: 0, pageRefreshes: 0, misses: 0 };

  constructor(
    private readonly now: () => number,
    /** `cache.freshness.metadataSeconds`: how long a repository object is served without asking. */
    private readonly maxAgeMs: number,
    /** Byte-bounded (a share of `mirror.memoryBytes`); only the serialized object is kept. */
    private readonly known: ByteTable<Known>,
  ) {}

  /** Learns from an upstream answer on its way to the cache. */
  learn(call: ApiCall, answer: ApiAnswer): void {
    if (answer.status !== 200 || (call.method !== 'GET' && call.method !== 'HEAD')) return;
    const teaches = call.route.teaches ?? [];
    const object = teaches.includes('repository-object');
    if (!object && !teaches.includes('repository-page')) return;
    if (call.query.some(([k]) => k === 'fields')) return;
    let json: unknown;
    try {
      json = JSON.parse(answer.body.toString('utf8'));
    } catch {
      return;
    }
    const at = this.now();
    const ws = call.params.ws;
    const remember = (o: unknown, page?: ApiCall) => {
      if (!o || typeof o !== 'object') return;
      const r = o as Record<string, unknown>;
      if (r.type !== 'repository' || typeof r.full_name !== 'string') return;
      const full = r.full_name.toLowerCase();
      if (ws && full.split('/')[0] !== ws) return;
      const main = (r.mainbranch as { name?: unknown } | null | undefined)?.name;
      this.known.delete(full);
      this.known.set(full, { body: JSON.stringify(r), mainBranch: typeof main === 'string' ? main : undefined, learnedAt: at, page });
    };
    if (object) return remember(json, this.known.peek(`${call.params.ws}/${call.params.repo}`)?.page);
    const values = (json as { values?: unknown }).values;
    const page = { ...call, background: undefined };
    if (Array.isArray(values)) for (const v of values) remember(v, page);
  }

  /** The repository object if known at all (for `repository` inside mirror-served commits). */
  peek(ws: string, repo: string): Record<string, unknown> | undefined {
    const k = this.known.get(`${ws}/${repo}`);
    return k && (JSON.parse(k.body) as Record<string, unknown>);
  }

  /** The main branch if known (a mirror's HEAD follows it). */
  mainBranch(ws: string, repo: string): string | undefined {
    return this.known.peek(`${ws}/${repo}`)?.mainBranch;
  }

  forgetRepository(ws: string, repo: string): void {
    this.known.delete(`${ws}/${repo}`);
  }

  forgetWorkspace(ws: string): void {
    for (const k of [...this.known.keys()]) if (k.startsWith(`${ws}/`)) this.known.delete(k);
  }

  /**
   * The answer for a `repository` call, or undefined (upstream then answers). `inner` is what a
   * listing page is fetched again through when the object has aged.
   */
  async answer(call: ApiCall, inner: Source): Promise<ApiAnswer | undefined> {
    if (call.route.mirror !== 'repository-index' || (call.method !== 'GET' && call.method !== 'HEAD')) return undefined;
    const fields = call.query.filter(([k]) => k === 'fields').map(([, v]) => v);
    if (call.query.length !== fields.length || fields.length > 1 || (fields.length === 1 && fields[0] !== MAINBRANCH)) return undefined;
    const key = `${call.params.ws}/${call.params.repo}`;
    let k = this.known.get(key);
    if (k && !this.fresh(k) && k.page) {
      await this.refetch(k.page, inner);
      k = this.known.get(key);
    }
    if (!k || !this.fresh(k)) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.answered++;
    if (fields.length === 0) return { status: 200, headers: { ...JSON_TYPE }, body: Buffer.from(k.body) };
    const name = k.mainBranch;
    if (name === undefined) return undefined;
    return { status: 200, headers: { ...JSON_TYPE }, body: Buffer.from(JSON.stringify({ mainbranch: { name } })) };
  }

  private fresh(k: Known): boolean {
    return this.now() - k.learnedAt < this.maxAgeMs;
  }

  /** One fetch of a listing page at a time, however many of its repositories ask. */
  private refetch(page: ApiCall, inner: Source): Promise<void> {
    const key = upstreamPath(page);
    let p = this.pageFetches.get(key);
    if (!p) {
      this.stats.pageRefreshes++;
      p = (async () => {
        try {
          const a = await inner(page);
          this.learn(page, a);
        } catch {
          // upstream trouble: the repository call itself goes upstream (and the cache handles it)
        }
      })();
      this.pageFetches.set(key, p);
      void p.finally(() => this.pageFetches.delete(key));
    }
    return p;
  }
}
