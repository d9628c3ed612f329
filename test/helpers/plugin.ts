import { request } from 'undici';

/**
 * Talks to the sidecar the way the Branch Source plugin does: hard-coded api.bitbucket.org (here
 * mapped to the sidecar's address, like the hosts override), Basic e-mail:token, and `next`
 * links followed verbatim — with credentials only when the link's host is exactly the API host.
 */
export class PluginClient {
  readonly calls: { url: string; status: number }[] = [];

  constructor(
    private readonly sidecarUrl: string,
    private readonly authorization: string,
    readonly apiBase = 'http://api.bitbucket.org',
  ) {}

  async get(url: string): Promise<{ status: number; json: any; text: string; headers: Record<string, string> }> {
    const u = new URL(url);
    const sameHost = `${u.protocol}//${u.host}` === this.apiBase;
    const target = new URL(u.pathname + u.search, this.sidecarUrl);
    const res = await request(target, {
      method: 'GET',
      headers: { host: u.host, ...(sameHost ? { authorization: this.authorization } : {}), 'user-agent': 'Apache-HttpClient/5 (Java/17)' },
    });
    const text = await res.body.text();
    this.calls.push({ url, status: res.statusCode });
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json, text, headers: res.headers as Record<string, string> };
  }

  /** Follows `next` to the last page, asserting each link stays on the exact API base. */
  async getAll(url: string): Promise<any[]> {
    const values: any[] = [];
    let next: string | undefined = url;
    while (next) {
      const page = await this.get(next);
      if (page.status !== 200) throw new Error(`${next}: HTTP ${page.status} ${page.text}`);
      if (!Array.isArray(page.json.values)) throw new Error(`${next}: no values`);
      values.push(...page.json.values);
      next = page.json.next;
      if (next !== undefined && !next.startsWith(`${this.apiBase}/2.0/`)) throw new Error(`next link ${next} would lose the plugin's credentials`);
    }
    return values;
  }
}
