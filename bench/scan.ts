import { Agent, request } from 'undici';

/**
 * The Branch Source plugin's organisation-folder scan (reference bitbucket-plugin-calls.md §1.4),
 * with the exact URLs of §1, as one reusable sequence: the cache integration tests and
 * `npm run bench` both replay it.
 *
 *   #1 workspace → #2 repository listing (all pages) → per repository (branch indexing):
 *   #3 repository → #5 pull requests (pagelen=50, all pages) → per PR: #14 Jenkinsfile probe on the
 *   source repository at the PR's source hash, #12 commit ×2 (source, destination) → #8 branches →
 *   per branch #14 → #9 tags → per tag #14 + #12 → retrieveActions: #3, #3, #4 (`/?fields=mainbranch.name`).
 *
 * That is 7 + 3·PRs + branches + 2·tags REST calls per repository, plus the workspace and listing.
 */
export interface ScanTarget {
  /** Where requests are sent (the sidecar, or the fake Bitbucket for a direct scan). */
  serverUrl: string;
  /** The base the plugin believes it talks to: `http://api.bitbucket.org` through the sidecar, the server URL direct. */
  apiBase: string;
  /** Authorization header the plugin sends to `apiBase` (and only there, like the plugin). */
  authorization: string;
  /** Upstream connections (the plugin's pool allows 20). */
  connections?: number;
  /**
   * What to do on a 429 (the plugin retries 429/503 up to 10 times, waiting Retry-After exactly or
   * 5 s doubling): resolve true to send the request again. Default: no retry.
   */
  onRetryable?: (status: number, retryAfterSeconds: number | undefined, attempt: number) => Promise<boolean>;
}

export interface ScanAnswer {
  status: number;
  json: any;
  headers: Record<string, string | string[] | undefined>;
}

export interface ScanRecord {
  url: string;
  status: number;
  ms: number;
  cacheStatus?: string;
}

/** Sends plugin-shaped requests and records status and latency of each. */
export class ScanClient {
  readonly records: ScanRecord[] = [];
  private readonly agent: Agent;
  private readonly server: URL;

  constructor(private readonly target: ScanTarget) {
    this.server = new URL(target.serverUrl);
    this.agent = new Agent({ connections: target.connections ?? 20, keepAliveTimeout: 30_000, pipelining: 1 });
  }

  /** Requests sent and not yet answered (retry waits excluded). */
  outstanding = 0;

  async get(url: string): Promise<ScanAnswer> {
    for (let attempt = 1; ; attempt++) {
      this.outstanding++;
      let answer: ScanAnswer;
      try {
        answer = await this.once(url);
      } finally {
        this.outstanding--;
      }
      if ((answer.status !== 429 && answer.status !== 503) || !this.target.onRetryable) return answer;
      const ra = answer.headers['retry-after'];
      const seconds = typeof ra === 'string' && /^\d+$/.test(ra) ? Number(ra) : undefined;
      if (!(await this.target.onRetryable(answer.status, seconds, attempt))) return answer;
    }
  }

  private async once(url: string): Promise<ScanAnswer> {
    const u = new URL(url);
    const sameHost = `${u.protocol}//${u.host}` === this.target.apiBase;
    const started = process.hrtime.bigint();
    const res = await request(new URL(u.pathname + u.search, this.server), {
      method: 'GET',
      dispatcher: this.agent,
      headers: { host: u.host, ...(sameHost ? { authorization: this.target.authorization } : {}), 'user-agent': 'Apache-HttpClient/5 (Java/17)' },
    });
    const text = await res.body.text();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const cs = res.headers['cache-status'];
    this.records.push({ url, status: res.statusCode, ms, cacheStatus: typeof cs === 'string' ? cs : undefined });
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json, headers: res.headers };
  }

  /** Follows `next` verbatim to the last page (the plugin's getPagedRequest). */
  async getAll(url: string): Promise<any[]> {
    const values: any[] = [];
    let next: string | undefined = url;
    while (next) {
      const page: ScanAnswer = await this.get(next);
      if (page.status !== 200 || !Array.isArray(page.json?.values)) throw new ScanError(next, page.status);
      values.push(...page.json.values);
      next = page.json.next;
    }
    return values;
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

export class ScanError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(`${url}: HTTP ${status}`);
  }
}

export interface ScanOptions {
  workspace: string;
  /** Repositories indexed at once (Jenkins indexes child projects in parallel). */
  parallelRepositories?: number;
  /** Called for every repository indexed (progress). */
  onRepository?: (slug: string, done: number, total: number) => void;
}

export interface ScanSummary {
  repositories: number;
  probes: number;
  /** Repositories whose indexing failed (a list call that did not answer 200). */
  failedRepositories: string[];
  /** Branch/PR/tag heads whose Jenkinsfile probe did not answer 200 (the plugin would drop them). */
  droppedHeads: number;
}

/** Replays one organisation scan with `client`; never throws for a failed repository (the plugin logs it). */
export async function organisationScan(client: ScanClient, apiBase: string, opts: ScanOptions): Promise<ScanSummary> {
  const api = `${apiBase}/2.0`;
  await client.get(`${api}/workspaces/${opts.workspace}`);
  const listed = await client.getAll(`${api}/repositories/${opts.workspace}?pagelen=100`);
  const slugs: string[] = listed.map((r) => String(r.full_name).split('/')[1]).sort();
  const summary: ScanSummary = { repositories: slugs.length, probes: 0, failedRepositories: [], droppedHeads: 0 };
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < slugs.length) {
      const slug = slugs[next++];
      try {
        await indexRepository(client, api, opts.workspace, slug, summary);
      } catch (e) {
        if (!(e instanceof ScanError)) throw e;
        summary.failedRepositories.push(slug);
      }
      opts.onRepository?.(slug, ++done, slugs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.parallelRepositories ?? 1) }, worker));
  return summary;
}

async function indexRepository(client: ScanClient, api: string, ws: string, slug: string, summary: ScanSummary): Promise<void> {
  const repoUrl = `${api}/repositories/${ws}/${slug}`;
  const probe = async (repoFull: string, hash: string) => {
    summary.probes++;
    const p = await client.get(`${api}/repositories/${repoFull}/src/${hash}/Jenkinsfile?format=meta`);
    if (p.status !== 200) summary.droppedHeads++;
  };
  const must = async (url: string) => {
    const a = await client.get(url);
    if (a.status !== 200) throw new ScanError(url, a.status);
    return a;
  };

  await must(repoUrl); // #3 clone links
  const prs = await client.getAll(`${repoUrl}/pullrequests?pagelen=50`); // #5
  for (const pr of prs) {
    await probe(pr.source.repository.full_name, pr.source.commit.hash); // #14 on the source repository
    await client.get(`${repoUrl}/commit/${pr.source.commit.hash}`); // #12 (closure errors are swallowed)
    await client.get(`${repoUrl}/commit/${pr.destination.commit.hash}`);
  }
  const branches = await client.getAll(`${repoUrl}/refs/branches?pagelen=100`); // #8
  for (const b of branches) await probe(`${ws}/${slug}`, b.target.hash); // #14
  const tags = await client.getAll(`${repoUrl}/refs/tags?pagelen=100`); // #9
  for (const t of tags) {
    await probe(`${ws}/${slug}`, t.target.hash); // #14
    await client.get(`${repoUrl}/commit/${t.target.hash}`); // #12
  }
  await must(repoUrl); // retrieveActions: #3, #3, #4
  await must(repoUrl);
  await must(`${repoUrl}/?fields=mainbranch.name`);
}

/**
 * The plugin's retry policy: up to 10 retries of a 429/503, each after Retry-After
 * exactly when present, else 5 s doubling; `sleep` takes seconds (so a simulated clock can be used).
 */
export function pluginRetry(sleep: (seconds: number) => Promise<void>): NonNullable<ScanTarget['onRetryable']> {
  return async (_status, retryAfterSeconds, attempt) => {
    const backoff = 5 * 2 ** (attempt - 1);
    if (attempt > 10 || backoff >= 3600) return false;
    await sleep(retryAfterSeconds && retryAfterSeconds > 0 ? retryAfterSeconds : backoff);
    return true;
  };
}

/** p-th percentile (0-100) of a list of numbers. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
