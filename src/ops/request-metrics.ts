import type { Counter, Registry } from 'prom-client';

type Labels = Record<string, string>;

interface DurationRow {
  labels: Labels;
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

/**
 * A histogram of request durations for the registry, counted in a table keyed by one joined label
 * string. Every request lands here; prom-client's own `observe` validates and hashes its label object
 * on each call. Exposed through the registry's metric contract (`get`, `reset`), so the text
 * Prometheus scrapes is prom-client's.
 */
export class DurationHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private rows = new Map<string, DurationRow>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** `key` identifies `labels` (the same labels always come with the same key). */
  observe(key: string, labels: () => Labels, seconds: number): void {
    let row = this.rows.get(key);
    if (!row) {
      row = { labels: labels(), counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 };
      this.rows.set(key, row);
    }
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]) i++;
    row.counts[i]++;
    row.sum += seconds;
    row.count++;
  }

  reset(): void {
    this.rows = new Map();
  }

  get() {
    const bucket = `${this.name}_bucket`;
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const row of this.rows.values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += row.counts[i];
        values.push({ labels: { ...row.labels, le }, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { ...row.labels, le: '+Inf' }, value: row.count, metricName: bucket });
      values.push({ labels: row.labels, value: row.sum, metricName: `${this.name}_sum` });
      values.push({ labels: row.labels, value: row.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}

/**
 * Increments of a labelled counter, added up in a table on the request path and handed to the
 * prom-client counter when it is collected (at a scrape).
 */
export class PendingCounts {
  private pending = new Map<string, { labels: Labels; n: number }>();

  add(key: string, labels: () => Labels): void {
    const p = this.pending.get(key);
    if (p) p.n++;
    else this.pending.set(key, { labels: labels(), n: 1 });
  }

  flushInto(counter: Counter<string>): void {
    for (const p of this.pending.values()) counter.inc(p.labels, p.n);
    this.pending = new Map();
  }
}
