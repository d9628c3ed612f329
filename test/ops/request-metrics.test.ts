/**
 * The request-path tables scrape exactly as prom-client's own Counter and Histogram would for the
 * same observations (bucket edges included), and a scrape does not count anything twice.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { DurationHistogram, PendingCounts } from '../../src/ops/request-metrics';

const BOUNDS = [0.001, 0.01, 0.1, 1];
const samples = [0, 0.0005, 0.001, 0.0010001, 0.01, 0.05, 0.1, 0.99, 1, 1.5, 300];
const labelSets = [
  { route: 'branches', decision: 'allow', cache: 'hit' },
  { route: 'none', decision: 'unauthenticated', cache: 'none' },
];

/** Metric lines without HELP/TYPE, each line's labels sorted, lines sorted. */
function normalise(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)(?:\{(.*)\})? (.*)$/.exec(l)!;
      const labels = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
      return `${m[1]}{${labels}} ${m[3]}`;
    })
    .sort();
}

describe('DurationHistogram', () => {
  it('scrapes like a prom-client Histogram fed the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const h = new DurationHistogram('d_seconds', 'help', BOUNDS, ours);
    const reference = new Histogram({ name: 'd_seconds', help: 'help', labelNames: ['route', 'decision', 'cache'], buckets: BOUNDS, registers: [theirs] });
    labelSets.forEach((labels, i) => {
      for (const s of samples.slice(i * 3)) {
        h.observe(Object.values(labels).join(' '), () => labels, s);
        reference.observe(labels, s);
      }
    });
    const text = await ours.metrics();
    expect(normalise(text)).toEqual(normalise(await theirs.metrics()));
    expect(text).toContain('# TYPE d_seconds histogram');
    expect(text).toMatch(/d_seconds_bucket\{[^}]*le="\+Inf"[^}]*\} 11/);

    ours.resetMetrics();
    expect(normalise(await ours.metrics())).toEqual([]);
  });
});

describe('PendingCounts', () => {
  it('hands its counts to the counter once, added to what the counter had', async () => {
    const registry = new Registry();
    const pending = new PendingCounts();
    const counter = new Counter({
      name: 'r_total',
      help: 'help',
      labelNames: ['route', 'status'],
      registers: [registry],
      collect() {
        pending.flushInto(this);
      },
    });
    counter.inc({ route: 'a', status: '200' });
    for (let i = 0; i < 3; i++) pending.add('a 200', () => ({ route: 'a', status: '200' }));
    pending.add('b 404', () => ({ route: 'b', status: '404' }));
    expect(normalise(await registry.metrics())).toEqual(['r_total{route="a",status="200"} 4', 'r_total{route="b",status="404"} 1']);
    expect(normalise(await registry.metrics())).toEqual(['r_total{route="a",status="200"} 4', 'r_total{route="b",status="404"} 1']);
    pending.add('b 404', () => ({ route: 'b', status: '404' }));
    expect(normalise(await registry.metrics())).toContain('r_total{route="b",status="404"} 2');
  });
});
