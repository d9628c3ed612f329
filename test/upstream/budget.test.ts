import fc from 'fast-check';
import { BudgetGovernor, budgetClassOf, DEFAULT_BUDGET, HOUR_MS, parseRetryAfter, type Admission, type BudgetConfig } from '../../src/upstream/budget';
import { ManualClock } from '../../src/upstream/budget-clock';
import { callFor } from '../cache/calls';

/** Budget accounting on a manual clock: time moves only when the test says so. */
const cfg = (over: Partial<BudgetConfig> = {}): BudgetConfig => ({
  ...DEFAULT_BUDGET,
  repositoryRequestsPerHour: 5,
  maxConcurrent: 100,
  maxQueueWaitMs: 0,
  maxRetryAfterSeconds: 3600,
  backgroundShare: 0.5,
  burstShare: 1, // no pacing unless a test asks for it
  windowMarginMs: 0,
  ...over,
});

/** Takes a permit and releases it at once with a 200 (the call is done; it still counts for an hour). */
async function call(g: BudgetGovernor, priority: 'foreground' | 'background' = 'foreground'): Promise<Admission> {
  const a = await g.acquire('repository', priority);
  if (a.ok) a.release({ status: 200, headers: {} });
  return a;
}

/** Lets promise callbacks run after a clock move. */
const flush = () => new Promise((r) => setImmediate(r));

describe('budget classes', () => {
  it('meters /2.0/repositories data and webhooks separately; workspaces are not in the repository class', () => {
    expect(budgetClassOf(callFor('GET', '/2.0/repositories/acme/a/refs/branches'))).toBe('repository');
    expect(budgetClassOf(callFor('POST', '/2.0/repositories/acme/a/commit/0123456789ab/statuses/build', '{}'))).toBe('repository');
    expect(budgetClassOf(callFor('GET', '/2.0/repositories/acme'))).toBe('repository');
    expect(budgetClassOf(callFor('GET', '/2.0/repositories/acme/a/hooks'))).toBe('webhook');
    expect(budgetClassOf(callFor('GET', '/2.0/workspaces/acme'))).toBe('other');
  });
});

describe('sliding one-hour window', () => {
  it('a clock stepping back does not hold the window shut for the size of the step', async () => {
    const clock = new ManualClock(10 * HOUR_MS);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 2 }), clock);
    expect((await call(g)).ok).toBe(true);
    expect((await call(g)).ok).toBe(true);
    expect((await call(g)).ok).toBe(false);
    clock.advance(-24 * HOUR_MS); // NTP or a resumed VM steps the clock back a day
    expect((await call(g)).ok).toBe(false); // the hour is not over yet
    clock.advance(HOUR_MS);
    expect((await call(g)).ok).toBe(true);
  });

  it('grants the hourly limit, then refuses with the exact seconds until the oldest call leaves the window', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg(), clock);
    for (let i = 0; i < 5; i++) {
      expect((await call(g)).ok).toBe(true);
      clock.advance(10_000);
    }
    // Calls at 0, 10, 20, 30, 40 s; now 50 s. The call at 0 s leaves at 3600 s: 3550 s from now.
    const refused = await call(g);
    expect(refused).toEqual({ ok: false, retryAfterSeconds: 3550, reason: 'budget' });
    expect(g.retryAfterSeconds('repository')).toBe(3550);
    clock.advance(3_549_000);
    expect((await call(g)).ok).toBe(false);
    clock.advance(1000);
    expect((await call(g)).ok).toBe(true);
    expect(await call(g)).toEqual({ ok: false, retryAfterSeconds: 10, reason: 'budget' });
  });

  it('holds calls windowMarginMs longer than an hour (Bitbucket counts them on arrival)', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 1, windowMarginMs: 2_000 }), clock);
    await call(g);
    clock.advance(HOUR_MS);
    expect(await call(g)).toEqual({ ok: false, retryAfterSeconds: 2, reason: 'budget' });
    clock.advance(2_000);
    expect((await call(g)).ok).toBe(true);
  });

  it('rounds partial seconds up and caps Retry-After at maxRetryAfterSeconds', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 1, maxRetryAfterSeconds: 120 }), clock);
    await call(g);
    clock.advance(1);
    expect(await call(g)).toMatchObject({ ok: false, retryAfterSeconds: 120 });
    clock.advance(HOUR_MS - 1 - 1500);
    expect(await call(g)).toMatchObject({ ok: false, retryAfterSeconds: 2 });
  });

  it('classes have separate windows', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 1, webhookRequestsPerHour: 1 }), clock);
    expect((await call(g)).ok).toBe(true);
    expect((await call(g)).ok).toBe(false);
    expect((await g.acquire('webhook')).ok).toBe(true);
    for (let i = 0; i < 50; i++) expect((await g.acquire('other')).ok).toBe(true);
  });

  it('never lets more than the limit through in any one-hour window (random arrivals, with pacing and queueing)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 400_000 }), { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 1, max: 12 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (gaps, limit, burstShare) => {
          const clock = new ManualClock(0);
          const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: limit, burstShare, maxQueueWaitMs: 120_000 }), clock);
          const grants: number[] = [];
          const pending: Promise<void>[] = [];
          for (const gap of gaps) {
            clock.advance(gap);
            pending.push(
              g.acquire('repository').then((a) => {
                if (a.ok) {
                  grants.push(clock.now());
                  a.release({ status: 200, headers: {} });
                }
              }),
            );
            await flush();
          }
          for (let i = 0; i < 40; i++) {
            clock.advance(10_000);
            await flush();
          }
          await Promise.all(pending);
          grants.sort((a, b) => a - b);
          for (let i = 0; i + limit < grants.length; i++) expect(grants[i + limit] - grants[i]).toBeGreaterThanOrEqual(HOUR_MS);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('queueing', () => {
  it('queues a call that can go within maxQueueWaitMs and grants it the moment a slot frees', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 2, maxQueueWaitMs: 30_000 }), clock);
    await call(g);
    clock.advance(HOUR_MS - 20_000);
    await call(g);
    let grantedAt: number | undefined;
    void g.acquire('repository').then((a) => {
      if (a.ok) grantedAt = clock.now();
    });
    await flush();
    expect(g.snapshot().classes.repository.queued).toBe(1);
    expect(g.wouldWait('repository')).toBe(true);
    clock.advance(19_999);
    await flush();
    expect(grantedAt).toBeUndefined();
    clock.advance(1);
    await flush();
    expect(grantedAt).toBe(HOUR_MS);
  });

  it('refuses at once, with Retry-After, a call that would wait longer than maxQueueWaitMs', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 1, maxQueueWaitMs: 30_000 }), clock);
    await call(g);
    clock.advance(60_000);
    expect(await call(g)).toEqual({ ok: false, retryAfterSeconds: 3540, reason: 'budget' });
    expect(g.snapshot().queued).toBe(0);
  });

  it('counts the calls queued ahead when computing Retry-After', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 3, maxQueueWaitMs: 150_000 }), clock);
    for (const t of [0, 50_000, 100_000]) {
      clock.advance(t - clock.now());
      await call(g);
    }
    clock.advance(3_510_000 - clock.now()); // the 0 s call leaves the window in 90 s
    const first = g.acquire('repository'); // slot at 3600 s
    const second = g.acquire('repository'); // slot at 3650 s, when the 50 s call leaves
    expect(g.snapshot().classes.repository.queued).toBe(2);
    // A third needs the 100 s call to leave too: 3700 s, 190 s from now, beyond the 150 s queue bound.
    expect(await g.acquire('repository')).toEqual({ ok: false, retryAfterSeconds: 190, reason: 'budget' });
    clock.advance(89_000);
    await flush();
    expect(g.snapshot().classes.repository.queued).toBe(2);
    clock.advance(1_000);
    await flush();
    expect(g.snapshot().classes.repository.queued).toBe(1);
    clock.advance(50_000);
    expect((await first).ok).toBe(true);
    expect((await second).ok).toBe(true);
  });

  it('a queued call that still cannot go at its deadline is refused with the time it still needs', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 100, maxQueueWaitMs: 10_000 }), clock);
    const inFlight = await g.acquire('repository');
    const first = await g.acquire('repository');
    if (first.ok) first.release({ status: 429, headers: { 'retry-after': '8' } });
    const waiting = g.acquire('repository'); // 8 s of backoff fits in the 10 s queue bound
    clock.advance(5_000);
    // The other call comes back 429 too, asking for 30 s: the waiter cannot go before 35 s.
    if (inFlight.ok) inFlight.release({ status: 429, headers: { 'retry-after': '30' } });
    clock.advance(5_000);
    expect(await waiting).toEqual({ ok: false, retryAfterSeconds: 25, reason: 'backoff' });
  });

  it('bounds concurrency: the next call waits for a release', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 100, maxConcurrent: 2, maxQueueWaitMs: 5_000 }), clock);
    const a = await g.acquire('repository');
    await g.acquire('repository');
    let third: Admission | undefined;
    void g.acquire('repository').then((x) => (third = x));
    await flush();
    expect(third).toBeUndefined();
    expect(g.wouldWait('repository')).toBe(true);
    if (a.ok) a.release({ status: 200, headers: {} });
    await flush();
    expect(third?.ok).toBe(true);
  });

  it('refuses a call stuck behind full concurrency at its deadline', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 100, maxConcurrent: 1, maxQueueWaitMs: 5_000 }), clock);
    await g.acquire('repository');
    const waiting = g.acquire('repository');
    clock.advance(5_000);
    expect(await waiting).toEqual({ ok: false, retryAfterSeconds: 1, reason: 'busy' });
  });
});

describe('Retry-After promises', () => {
  it('refused requests are told successive times, and a request coming back at its time goes first', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 3, maxQueueWaitMs: 10_000 }), clock);
    for (const t of [0, 100_000, 200_000]) {
      clock.advance(t - clock.now());
      await call(g);
    }
    clock.advance(3_000_000 - clock.now()); // slots free at 3600 s, 3700 s, 3800 s
    const a = await g.acquire('repository', 'foreground', 'GET /a');
    const b = await g.acquire('repository', 'foreground', 'GET /b');
    const c = await g.acquire('repository', 'foreground', 'GET /c');
    expect([a, b, c].map((x) => (x.ok ? 0 : x.retryAfterSeconds))).toEqual([600, 700, 800]);
    expect(g.wouldWait('repository')).toBe(true);
    // Someone new at 3595 s is behind the three promised slots: its own frees only when the first
    // of those calls (at 3600 s) leaves the window, an hour later.
    clock.advance(595_000);
    const d = await g.acquire('repository', 'foreground', 'GET /d');
    expect(d.ok).toBe(false);
    expect(d.ok ? 0 : d.retryAfterSeconds).toBeGreaterThanOrEqual(3600);
    // /a comes back when told and gets its slot.
    clock.advance(5_000);
    const again = await g.acquire('repository', 'foreground', 'GET /a');
    expect(again.ok).toBe(true);
  });

  it('a promise nobody redeems is forgotten after a grace period', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 1, maxQueueWaitMs: 0 }), clock);
    await call(g);
    clock.advance(HOUR_MS - 10_000);
    expect(await g.acquire('repository', 'foreground', 'GET /gone')).toMatchObject({ ok: false, retryAfterSeconds: 10 });
    clock.advance(10_000 + 61_000);
    expect(g.wouldWait('repository')).toBe(false);
    expect((await g.acquire('repository', 'foreground', 'GET /other')).ok).toBe(true);
  });
});

describe('priorities', () => {
  it('background refreshes only run below backgroundShare of the window and never queue', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 10, backgroundShare: 0.3 }), clock);
    expect((await call(g, 'background')).ok).toBe(true);
    expect((await call(g, 'background')).ok).toBe(true);
    expect((await call(g, 'background')).ok).toBe(true);
    expect(await call(g, 'background')).toMatchObject({ ok: false, reason: 'background' });
    for (let i = 0; i < 7; i++) expect((await call(g)).ok).toBe(true);
    expect((await call(g)).ok).toBe(false);
  });

  it('background refreshes yield to queued foreground calls', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 100, maxConcurrent: 1, maxQueueWaitMs: 5_000 }), clock);
    const held = await g.acquire('repository');
    void g.acquire('repository');
    expect(await g.acquire('repository', 'background')).toMatchObject({ ok: false, reason: 'busy' });
    if (held.ok) held.release({ status: 200, headers: {} });
  });
});

describe('pacing', () => {
  it('past burstShare, spreads the remaining calls over the time until the oldest leaves the window', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 10, burstShare: 0.5, maxQueueWaitMs: 0 }), clock);
    for (let i = 0; i < 5; i++) expect((await call(g)).ok).toBe(true);
    // 5 used at t=0, 5 remain, the oldest leaves at 3600 s: one call per 720 s.
    expect(await call(g)).toEqual({ ok: false, retryAfterSeconds: 720, reason: 'budget' });
    clock.advance(720_000);
    expect((await call(g)).ok).toBe(true);
    // 6 used, the last at 720 s, 4 remain: next at T = 720 + (3600 - T) / 4, i.e. T = 1296 s.
    clock.advance(1_295_000 - clock.now());
    expect(await call(g)).toEqual({ ok: false, retryAfterSeconds: 2, reason: 'budget' });
    clock.advance(1_000);
    expect((await call(g)).ok).toBe(true);
  });

  it('late wake-ups do not add up along a paced queue', async () => {
    /** Every timer fires `lateMs` after its time, like an event loop that is busy. */
    class LateClock extends ManualClock {
      constructor(private readonly lateMs: number) {
        super(0);
      }
      override setTimer(ms: number, fn: () => void): () => void {
        return super.setTimer(ms + this.lateMs, fn);
      }
    }
    const grantTimes = async (clock: ManualClock) => {
      const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 10, burstShare: 0.5, maxQueueWaitMs: 3_600_000 }), clock);
      for (let i = 0; i < 5; i++) await call(g);
      const times: number[] = [];
      const waiting = [1, 2, 3, 4].map(() => g.acquire('repository').then((a) => (a.ok ? times.push(clock.now()) : times.push(-1))));
      for (let i = 0; i < 400 && times.length < 4; i++) {
        clock.advance(10_000);
        await flush();
      }
      await Promise.all(waiting);
      return times;
    };
    const punctual = await grantTimes(new ManualClock(0));
    const late = await grantTimes(new LateClock(30_000));
    expect(punctual.every((t) => t > 0)).toBe(true);
    late.forEach((t, i) => expect(t - punctual[i]).toBeLessThanOrEqual(30_000 + 10_000));
  });

  it('below burstShare, calls go back to back', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 1000, burstShare: 0.5 }), clock);
    for (let i = 0; i < 500; i++) expect((await call(g)).ok).toBe(true);
    expect((await call(g)).ok).toBe(false);
  });
});

describe('what upstream says', () => {
  it('after a 429 with Retry-After, stops calling for exactly that long', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 100 }), clock);
    const a = await g.acquire('repository');
    if (a.ok) a.release({ status: 429, headers: { 'retry-after': '42' } });
    expect(g.wouldWait('repository')).toBe(true);
    expect(await call(g)).toEqual({ ok: false, retryAfterSeconds: 42, reason: 'backoff' });
    clock.advance(41_500);
    expect(g.retryAfterSeconds('repository')).toBe(1);
    clock.advance(500);
    expect((await call(g)).ok).toBe(true);
  });

  it('after a 429 without Retry-After, backs off 10 s, doubling while 429s continue, reset by a success', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 100 }), clock);
    const answer429 = async () => {
      const a = await g.acquire('repository');
      if (a.ok) a.release({ status: 429, headers: {} });
    };
    await answer429();
    expect(g.retryAfterSeconds('repository')).toBe(10);
    clock.advance(10_000);
    await answer429();
    expect(g.retryAfterSeconds('repository')).toBe(20);
    clock.advance(20_000);
    await call(g);
    await answer429();
    expect(g.retryAfterSeconds('repository')).toBe(10);
  });

  it('adopts X-RateLimit-Limit (scaled limits) and pauses background work on X-RateLimit-NearLimit', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 2 }), clock);
    const a = await g.acquire('repository');
    if (a.ok) a.release({ status: 200, headers: { 'x-ratelimit-limit': '2500' } });
    expect(g.snapshot().classes.repository.limit).toBe(2500);
    for (let i = 0; i < 10; i++) expect((await call(g)).ok).toBe(true);
    const b = await g.acquire('repository');
    if (b.ok) b.release({ status: 200, headers: { 'x-ratelimit-nearlimit': 'true' } });
    expect(await call(g, 'background')).toMatchObject({ ok: false, reason: 'background' });
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('120', 0)).toBe(120_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:30 GMT'))).toBe(30_000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(undefined, 0)).toBeUndefined();
  });
});

describe('fair shares', () => {
  it('a client waiting for its own share waits in the queue (counted there) and does not hold the other client up', async () => {
    const clock = new ManualClock(0);
    const g = new BudgetGovernor(cfg({ repositoryRequestsPerHour: 4, maxQueueWaitMs: 10_000 }), clock, undefined, { weight: () => 1, clients: () => ['a', 'b'] });
    const take = async (client: string) => {
      const x = await g.acquire('repository', 'foreground', undefined, client);
      if (x.ok) x.release({ status: 200, headers: {} });
      return x.ok;
    };
    expect(await take('b')).toBe(true);
    expect(await take('a')).toBe(true);
    expect(await take('a')).toBe(true);
    clock.advance(HOUR_MS - 5000);
    // a is at its share (2 of 4): its next call waits 5 s for its oldest to leave, in the queue.
    let granted = false;
    const waiting = take('a').then((ok) => (granted = ok));
    await flush();
    expect(g.snapshot().queued).toBe(1);
    expect(await take('b')).toBe(true);
    expect(granted).toBe(false);
    clock.advance(5000);
    await waiting;
    expect(granted).toBe(true);
    expect(g.refusedOverShare).toBe(0);
  });
});
