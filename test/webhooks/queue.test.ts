import { rmSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { createLogger } from '../../src/ops/logger';
import { ManualClock, systemClock } from '../../src/upstream/budget-clock';
import { Forwarder } from '../../src/webhooks/forwarder';
import { DeliveryQueue, type NewDelivery } from '../../src/webhooks/queue';
import { startJenkins, tempDir, until } from './helpers';

const logger = createLogger({ level: 'silent' });
const delivery = (uuid: string): NewDelivery => ({ requestUuid: uuid, eventKey: 'repo:push', contentType: 'application/json', repository: 'acme/infra', body: Buffer.from(`{"uuid":"${uuid}"}`) });

describe('DeliveryQueue', () => {
  let dir: string;
  let q: DeliveryQueue;
  beforeEach(() => {
    dir = tempDir('queue-');
    q = new DeliveryQueue({ dir, maxEntries: 2, dedupSeconds: 60 });
  });
  afterEach(() => {
    q.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('one row per target; duplicates within dedupSeconds are refused; a full queue writes nothing', () => {
    expect(q.enqueue(delivery('a'), ['http://j1', 'http://j2'], 1000)).toBe('queued');
    expect(q.pendingForwards()).toBe(2);
    expect(q.enqueue(delivery('a'), ['http://j1'], 2000)).toBe('duplicate');
    expect(q.enqueue(delivery('b'), ['http://j1'], 2000)).toBe('queued');
    expect(q.enqueue(delivery('c'), ['http://j1'], 3000)).toBe('full');
    expect(q.isDuplicate('c')).toBe(false); // Bitbucket's retry will be accepted
    expect(q.enqueue(delivery('d'), [], 3000)).toBe('recorded');
    expect(q.depth()).toBe(2);
    // After dedupSeconds the UUID is forgotten (pruned on the next enqueue).
    q.delivered(1, 'http://j1', 4000);
    q.delivered(1, 'http://j2', 4000);
    expect(q.enqueue(delivery('e'), ['http://j1'], 70_000)).toBe('queued');
    expect(q.isDuplicate('a')).toBe(false);
  });

  it('a delivery leaves only when every target has it; due order is oldest first', () => {
    q.enqueue(delivery('a'), ['http://j1', 'http://j2'], 1000);
    q.enqueue(delivery('b'), ['http://j1'], 1001);
    expect(q.due(1001, 10).map((f) => `${f.requestUuid}@${f.url}`)).toEqual(['a@http://j1', 'a@http://j2', 'b@http://j1']);
    q.delivered(1, 'http://j1', 2000);
    expect(q.depth()).toBe(2);
    expect(q.due(2000, 10).map((f) => `${f.requestUuid}@${f.url}`)).toEqual(['a@http://j2', 'b@http://j1']);
    q.failed(1, 'http://j2', 5000, 'HTTP 503');
    expect(q.due(2000, 10).map((f) => f.requestUuid)).toEqual(['b']);
    expect(q.nextDue()).toBe(1001);
    q.delivered(1, 'http://j2', 6000);
    expect(q.depth()).toBe(1);
    // A success recorded twice (a stale in-flight copy) changes nothing.
    q.delivered(1, 'http://j2', 7000);
    expect(q.depth()).toBe(1);
  });

  it('forwards of deliveries older than the cut-off are given up', () => {
    q.enqueue(delivery('a'), ['http://j1'], 1000);
    q.enqueue(delivery('b'), ['http://j1'], 5000);
    expect(q.expire(2000)).toBe(1);
    expect(q.depth()).toBe(1);
    expect(q.due(10_000, 10).map((f) => f.requestUuid)).toEqual(['b']);
  });
});

describe('Forwarder', () => {
  it('a delivery Jenkins refuses with 4xx does not hold up the next one', async () => {
    const dir = tempDir('forwarder-');
    const q = new DeliveryQueue({ dir, maxEntries: 100, dedupSeconds: 60 });
    const jenkins = await startJenkins();
    const f = new Forwarder(q, { retryMinMs: 60_000, retryMaxMs: 60_000, timeoutMs: 5000, maxAgeMs: 0, concurrency: 4 }, { clock: systemClock, logger, userAgent: 'test', secretFor: () => undefined });
    try {
      jenkins.status = 400;
      q.enqueue(delivery('poison'), [jenkins.url], Date.now());
      f.kick();
      await until(() => jenkins.received.length === 1, 'the refused attempt');
      await until(() => f.stats.failedAttempts === 1, 'the failure recorded');
      jenkins.status = 200;
      q.enqueue(delivery('next'), [jenkins.url], Date.now());
      f.kick();
      await until(() => f.stats.delivered === 1, 'the next delivery');
      expect(jenkins.received.filter((r) => String(r.body).includes('next') && r.status === 200)).toHaveLength(1);
      expect(q.depth()).toBe(1); // the refused one waits for its retry
    } finally {
      await f.close();
      q.close();
      await jenkins.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives up deliveries older than maxAge (logged), retrying the rest with capped doubling delays', async () => {
    const dir = tempDir('forwarder-');
    const q = new DeliveryQueue({ dir, maxEntries: 100, dedupSeconds: 60 });
    const clock = new ManualClock(1_000_000);
    const jenkins = await startJenkins(0, 503);
    const f = new Forwarder(q, { retryMinMs: 1000, retryMaxMs: 4000, timeoutMs: 5000, maxAgeMs: 60_000, concurrency: 1 }, { clock, logger, userAgent: 'test', secretFor: () => undefined });
    try {
      q.enqueue(delivery('old'), [jenkins.url], clock.now());
      f.kick();
      const nextAts: number[] = [];
      for (let i = 0; i < 4; i++) {
        await until(() => f.stats.failedAttempts === i + 1 && f.inFlight === 0, `attempt ${i + 1}`);
        nextAts.push(q.nextDue()! - clock.now());
        clock.advance(q.nextDue()! - clock.now());
      }
      expect(nextAts).toEqual([1000, 2000, 4000, 4000]);
      await until(() => f.stats.failedAttempts === 5 && f.inFlight === 0, 'attempt 5');
      clock.advance(61_000); // the pending retry fires: one more attempt, still within maxAge when it started
      await until(() => f.stats.failedAttempts === 6 && f.inFlight === 0, 'attempt 6');
      clock.advance(4000); // the next wake-up finds the delivery older than maxAge
      expect(f.stats.expired).toBe(1);
      expect(q.depth()).toBe(0);
    } finally {
      await f.close();
      q.close();
      await jenkins.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('DeliveryQueue schema 1 → 2', () => {
  it('keeps pending deliveries and seen request UUIDs, and starts remembering bodies', () => {
    const dir = tempDir('queue-v1-');
    try {
      // A state directory written by the schema-1 relay (no body digests in `seen`).
      const v1 = new Database(path.join(dir, 'webhooks.sqlite'));
      v1.exec(`
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, request_uuid TEXT NOT NULL UNIQUE, event_key TEXT NOT NULL, hook_uuid TEXT,
          content_type TEXT NOT NULL, user_agent TEXT, signature TEXT, repository TEXT NOT NULL, body BLOB NOT NULL, received_at INTEGER NOT NULL);
        CREATE TABLE forwards (delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE, url TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
          next_attempt_at INTEGER NOT NULL, last_error TEXT, delivered_at INTEGER, PRIMARY KEY (delivery_id, url));
        CREATE TABLE seen (request_uuid TEXT PRIMARY KEY, received_at INTEGER NOT NULL);
        INSERT INTO meta VALUES ('schema', '1');
        INSERT INTO deliveries (request_uuid, event_key, content_type, repository, body, received_at) VALUES ('old', 'repo:push', 'application/json', 'acme/infra', X'7B7D', 1000);
        INSERT INTO forwards (delivery_id, url, next_attempt_at) VALUES (1, 'http://j1', 1000);
        INSERT INTO seen VALUES ('old', 1000);
      `);
      v1.close();
      const q = new DeliveryQueue({ dir, maxEntries: 10, dedupSeconds: 60 });
      try {
        expect(q.pendingForwards()).toBe(1);
        expect(q.isDuplicate('old')).toBe(true);
        expect(q.hasBody(Buffer.from('{}'))).toBe(false); // schema 1 kept no digest
        expect(q.enqueue(delivery('new'), ['http://j1'], 2000)).toBe('queued');
        expect(q.hasBody(delivery('new').body)).toBe(true);
      } finally {
        q.close();
      }
      const reopened = new Database(path.join(dir, 'webhooks.sqlite'), { readonly: true });
      expect(reopened.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe('2');
      reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
