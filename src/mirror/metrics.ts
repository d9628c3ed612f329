/**
 * Prometheus metrics of the mirrors, registered on the sidecar's registry (read at scrape time from
 * the mirrors' own counters). Labels: route ids from the closed catalog and fixed reason words.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Mirrors } from './mirrors';

const P = 'bitbucket_sidecar_';

export const MIRROR_METRICS = {
  repositories: { name: `${P}mirror_repositories`, help: 'Repositories with a local git mirror.' },
  bytes: { name: `${P}mirror_bytes`, help: 'Disk bytes used by the git mirrors.' },
  maxBytes: { name: `${P}mirror_max_bytes`, help: 'The mirror disk bound (mirror.maxBytes).' },
  answers: { name: `${P}mirror_answers_total`, help: 'REST answers computed from a mirror or derived from the workspace listing, by route.' },
  upstream: { name: `${P}mirror_upstream_total`, help: 'Calls a mirror could serve that went upstream, by reason (not-fresh, absent, no-listing, ...).' },
  syncs: { name: `${P}mirror_syncs_total`, help: 'Mirror clones and fetches, by operation and result.' },
  gitServed: { name: `${P}mirror_git_requests_total`, help: 'Git smart-HTTP requests, by where they were served: "mirror" or "upstream".' },
  gitBudgetUsed: { name: `${P}git_budget_used`, help: 'Git requests sent to Bitbucket in the rolling hour (mirror refreshes and streamed clones).' },
  gitBudgetLimit: { name: `${P}git_budget_limit`, help: 'The hourly git request limit (mirror.gitRequestsPerHour).' },
  memoryBytes: { name: `${P}mirror_memory_bytes`, help: 'Estimated bytes held by each mirror memory table (commits, trees, revLists, tags, sizes, repositories).' },
  memoryMaxBytes: { name: `${P}mirror_memory_max_bytes`, help: "Each mirror memory table's bound (its share of mirror.memoryBytes)." },
  memoryEvictions: { name: `${P}mirror_memory_evictions_total`, help: 'Entries evicted from a mirror memory table to stay within its bound, by table.' },
  memoryTooLarge: { name: `${P}mirror_memory_too_large_total`, help: 'Results not kept in a mirror memory table because one alone exceeded a quarter of it, by table.' },
  walks: { name: `${P}mirror_walks`, help: 'Answers being computed from mirrors ("running", at most mirror.maxConcurrentWalks) and waiting for a slot ("queued").' },
} as const;

export function registerMirrorMetrics(registry: Registry, mirrors: Mirrors): void {
  const registers = [registry];
  const gauge = (k: keyof typeof MIRROR_METRICS, value: () => number) =>
    new Gauge({
      name: MIRROR_METRICS[k].name,
      help: MIRROR_METRICS[k].help,
      registers,
      collect() {
        this.set(value());
      },
    });
  gauge('repositories', () => mirrors.manager.usage().mirrors);
  gauge('bytes', () => mirrors.manager.usage().bytes);
  gauge('maxBytes', () => mirrors.manager.settings.maxBytes);
  gauge('gitBudgetUsed', () => mirrors.budget.used());
  gauge('gitBudgetLimit', () => mirrors.budget.limit);
  const tables = () => Object.entries(mirrors.manager.memory.stats());
  const labelled = (k: keyof typeof MIRROR_METRICS, labelNames: string[], values: () => [Record<string, string>, number][]) =>
    new Gauge({
      name: MIRROR_METRICS[k].name,
      help: MIRROR_METRICS[k].help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [labels, v] of values()) this.set(labels, v);
      },
    });
  labelled('memoryBytes', ['table'], () => tables().map(([table, t]) => [{ table }, t.bytes]));
  labelled('memoryMaxBytes', ['table'], () => tables().map(([table, t]) => [{ table }, t.maxBytes]));
  labelled('walks', ['state'], () => [
    [{ state: 'running' }, mirrors.manager.walks.running],
    [{ state: 'queued' }, mirrors.manager.walks.queued],
  ]);
  const counter = <L extends string>(k: keyof typeof MIRROR_METRICS, labelNames: L[], values: () => [Record<L, string>, number][]) =>
    new Counter<L>({
      name: MIRROR_METRICS[k].name,
      help: MIRROR_METRICS[k].help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [labels, v] of values()) if (v > 0) this.inc(labels as never, v);
      },
    });
  counter('answers', ['route'], () => Object.entries(mirrors.stats.answered).map(([route, v]) => [{ route }, v]));
  counter('upstream', ['reason'], () => Object.entries(mirrors.stats.upstream).map(([reason, v]) => [{ reason }, v]));
  counter('syncs', ['op', 'result'], () => {
    const s = mirrors.manager.stats;
    return [
      [{ op: 'clone', result: 'attempted' }, s.clones],
      [{ op: 'fetch', result: 'attempted' }, s.fetches],
      [{ op: 'any', result: 'failed' }, s.syncFailures],
      [{ op: 'any', result: 'budget' }, s.budgetRefusals],
    ];
  });
  counter('memoryEvictions', ['table'], () => tables().map(([table, t]) => [{ table }, t.evictions]));
  counter('memoryTooLarge', ['table'], () => tables().map(([table, t]) => [{ table }, t.tooLarge]));
  counter('gitServed', ['where'], () => [
    [{ where: 'mirror' }, mirrors.git.infoRefs + mirrors.git.uploadPacks],
    [{ where: 'upstream' }, mirrors.git.upstream],
  ]);
}
