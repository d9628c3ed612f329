import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';

/**
 * The durable delivery queue: one SQLite file (`{state.dir}/webhooks.sqlite`, better-sqlite3).
 *
 *  - `deliveries`: one row per accepted delivery (headers Jenkins reads + the raw body), kept until
 *    every target has it;
 *  - `forwards`: one row per (delivery, target URL): attempts, next attempt time, and `delivered_at`
 *    once the target answered 2xx — written and committed before the row is deleted, so a delivery
 *    that succeeded is never sent to that target again;
 *  - `seen`: the X-Request-UUID and the body's SHA-256 of every delivery accepted in the last
 *    `dedupSeconds` (at most `dedupMaxEntries` of them, oldest dropped first), so Bitbucket's
 *    retries of a delivery it thinks failed, and a captured signed body re-sent under fresh
 *    headers, are acknowledged but not queued twice.
 *
 * Writes are synchronous and committed with `synchronous=FULL` before `enqueue` returns: the relay
 * answers 200 to Bitbucket only after that. The database is opened in exclusive locking mode, so a
 * second sidecar pointed at the same state directory fails at start instead of double-sending.
 */
export interface QueueSettings {
  dir: string;
  maxEntries: number;
  dedupSeconds: number;
  /** Rows kept in `seen` at most (each ~150 bytes on disk); default 100,000. */
  dedupMaxEntries?: number;
}

export const DEDUP_MAX_ENTRIES = 100_000;

export interface PendingForward {
  deliveryId: number;
  url: string;
  attempts: number;
  nextAttemptAt: number;
  requestUuid: string;
  eventKey: string;
  hookUuid: string | null;
  contentType: string;
  userAgent: string | null;
  repository: string;
  body: Buffer;
  receivedAt: number;
}

export interface NewDelivery {
  requestUuid: string;
  eventKey: string;
  hookUuid?: string;
  contentType: string;
  userAgent?: string;
  repository: string;
  body: Buffer;
}

export type EnqueueResult = 'queued' | 'recorded' | 'duplicate' | 'full';

export const QUEUE_FILE = 'webhooks.sqlite';
const SCHEMA_VERSION = '2';

/** What `seen` remembers of a body: its SHA-256 (the body itself is not kept once forwarded). */
export function bodyDigest(body: Buffer): Buffer {
  return createHash('sha256').update(body).digest();
}

export class DeliveryQueue {
  private readonly db: Database.Database;
  private readonly st: ReturnType<DeliveryQueue['prepare']>;
  private closed = false;

  constructor(private readonly settings: QueueSettings) {
    mkdirSync(settings.dir, { recursive: true, mode: 0o700 });
    this.db = new Database(path.join(settings.dir, QUEUE_FILE), { timeout: 2000 });
    try {
      this.db.pragma('locking_mode = EXCLUSIVE');
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (e) {
      this.db.close();
      const busy = (e as { code?: string }).code === 'SQLITE_BUSY';
      throw busy ? new Error(`the webhook queue in ${settings.dir} is in use by another process (one sidecar per state.dir)`) : e;
    }
    this.st = this.prepare();
  }

  private migrate(): void {
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_uuid TEXT NOT NULL UNIQUE,
        event_key TEXT NOT NULL,
        hook_uuid TEXT,
        content_type TEXT NOT NULL,
        user_agent TEXT,
        signature TEXT,
        repository TEXT NOT NULL,
        body BLOB NOT NULL,
        received_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS forwards (
        delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
        url TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error TEXT,
        delivered_at INTEGER,
        PRIMARY KEY (delivery_id, url)
      );
      CREATE INDEX IF NOT EXISTS forwards_due ON forwards (delivered_at, next_attempt_at);
      CREATE TABLE IF NOT EXISTS seen (request_uuid TEXT PRIMARY KEY, received_at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS seen_age ON seen (received_at);
    `);
    const v = this.db.prepare('SELECT value FROM meta WHERE key = ?').get('schema') as { value: string } | undefined;
    if (v && v.value !== '1' && v.value !== SCHEMA_VERSION) throw new Error(`webhook queue schema ${v.value} is not supported (expected ${SCHEMA_VERSION})`);
    this.db.transaction(() => {
      // Schema 1 → 2: `seen` also remembers body digests (rows from before have none).
      const columns = this.db.prepare('PRAGMA table_info(seen)').all() as { name: string }[];
      if (!columns.some((c) => c.name === 'body_sha256')) this.db.exec('ALTER TABLE seen ADD COLUMN body_sha256 BLOB');
      this.db.exec('CREATE INDEX IF NOT EXISTS seen_body ON seen (body_sha256)');
      this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run('schema', SCHEMA_VERSION);
    })();
  }

  private prepare() {
    const db = this.db;
    return {
      seen: db.prepare('SELECT 1 FROM seen WHERE request_uuid = ?').pluck(),
      seenBody: db.prepare('SELECT 1 FROM seen WHERE body_sha256 = ?').pluck(),
      addSeen: db.prepare('INSERT INTO seen (request_uuid, received_at, body_sha256) VALUES (?, ?, ?)'),
      pruneSeen: db.prepare('DELETE FROM seen WHERE received_at < ?'),
      // Rowids grow with each insert, so the oldest rows are those below the newest minus the cap.
      capSeen: db.prepare('DELETE FROM seen WHERE rowid <= (SELECT MAX(rowid) FROM seen) - ?'),
      depth: db.prepare('SELECT COUNT(*) FROM deliveries').pluck(),
      pending: db.prepare('SELECT COUNT(*) FROM forwards WHERE delivered_at IS NULL').pluck(),
      addDelivery: db.prepare(
        'INSERT INTO deliveries (request_uuid, event_key, hook_uuid, content_type, user_agent, repository, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      addForward: db.prepare('INSERT INTO forwards (delivery_id, url, attempts, next_attempt_at) VALUES (?, ?, 0, ?)'),
      due: db.prepare(`
        SELECT f.delivery_id AS deliveryId, f.url AS url, f.attempts AS attempts, f.next_attempt_at AS nextAttemptAt,
               d.request_uuid AS requestUuid, d.event_key AS eventKey, d.hook_uuid AS hookUuid, d.content_type AS contentType,
               d.user_agent AS userAgent, d.repository AS repository, d.body AS body, d.received_at AS receivedAt
        FROM forwards f JOIN deliveries d ON d.id = f.delivery_id
        WHERE f.delivered_at IS NULL AND f.next_attempt_at <= ?
        ORDER BY f.delivery_id, f.url
        LIMIT ?`),
      nextDue: db.prepare('SELECT MIN(next_attempt_at) FROM forwards WHERE delivered_at IS NULL').pluck(),
      delivered: db.prepare('UPDATE forwards SET delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE delivery_id = ? AND url = ? AND delivered_at IS NULL'),
      failed: db.prepare('UPDATE forwards SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE delivery_id = ? AND url = ? AND delivered_at IS NULL'),
      deleteDelivered: db.prepare('DELETE FROM forwards WHERE delivered_at IS NOT NULL'),
      deleteDone: db.prepare('DELETE FROM deliveries WHERE NOT EXISTS (SELECT 1 FROM forwards f WHERE f.delivery_id = deliveries.id)'),
      expired: db.prepare('SELECT COUNT(*) FROM forwards f JOIN deliveries d ON d.id = f.delivery_id WHERE f.delivered_at IS NULL AND d.received_at < ?').pluck(),
      expire: db.prepare('DELETE FROM forwards WHERE delivered_at IS NULL AND delivery_id IN (SELECT id FROM deliveries WHERE received_at < ?)'),
    };
  }

  /** A delivery with this X-Request-UUID was accepted within `dedupSeconds`. */
  isDuplicate(requestUuid: string): boolean {
    return this.st.seen.get(requestUuid) !== undefined;
  }

  /** This very body was accepted within `dedupSeconds`, under whatever headers. */
  hasBody(body: Buffer): boolean {
    return this.st.seenBody.get(bodyDigest(body)) !== undefined;
  }

  /**
   * Records a delivery and, when it has targets, queues one forward per target — all in one committed
   * transaction. 'duplicate': its X-Request-UUID or its body was seen within `dedupSeconds` (nothing written);
   * 'full': `maxEntries` deliveries are waiting (nothing written, not marked seen, so Bitbucket's
   * retry is accepted later); 'recorded': no targets, only marked seen.
   */
  enqueue(d: NewDelivery, urls: readonly string[], now: number): EnqueueResult {
    const digest = bodyDigest(d.body);
    const tx = this.db.transaction((): EnqueueResult => {
      if (this.st.seen.get(d.requestUuid) !== undefined || this.st.seenBody.get(digest) !== undefined) return 'duplicate';
      if (urls.length > 0 && (this.st.depth.get() as number) >= this.settings.maxEntries) return 'full';
      this.st.pruneSeen.run(now - this.settings.dedupSeconds * 1000);
      this.st.addSeen.run(d.requestUuid, now, digest);
      this.st.capSeen.run(this.settings.dedupMaxEntries ?? DEDUP_MAX_ENTRIES);
      if (urls.length === 0) return 'recorded';
      const info = this.st.addDelivery.run(d.requestUuid, d.eventKey, d.hookUuid ?? null, d.contentType, d.userAgent ?? null, d.repository, d.body, now);
      for (const url of urls) this.st.addForward.run(info.lastInsertRowid, url, now);
      return 'queued';
    });
    return tx.immediate();
  }

  /** Forwards due by `now`, oldest delivery first. */
  due(now: number, limit: number): PendingForward[] {
    return this.st.due.all(now, limit) as PendingForward[];
  }

  /** Earliest next attempt of any pending forward, or undefined when none is pending. */
  nextDue(): number | undefined {
    const v = this.st.nextDue.get() as number | null;
    return v ?? undefined;
  }

  /**
   * The target answered 2xx. The success is committed first; only then are finished rows removed
   * (a crash in between leaves a row marked delivered, which is never sent again).
   */
  delivered(deliveryId: number, url: string, now: number): void {
    this.st.delivered.run(now, deliveryId, url);
    this.db.transaction(() => {
      this.st.deleteDelivered.run();
      this.st.deleteDone.run();
    })();
  }

  failed(deliveryId: number, url: string, nextAttemptAt: number, error: string): void {
    this.st.failed.run(nextAttemptAt, error.slice(0, 500), deliveryId, url);
  }

  /** Gives up forwards of deliveries received before `before`; returns how many. */
  expire(before: number): number {
    return this.db.transaction(() => {
      const n = this.st.expired.get(before) as number;
      if (n > 0) {
        this.st.expire.run(before);
        this.st.deleteDone.run();
      }
      return n;
    })();
  }

  /** Deliveries with at least one target still waiting. */
  depth(): number {
    return this.closed ? 0 : (this.st.depth.get() as number);
  }

  /** (delivery, target) pairs still waiting. */
  pendingForwards(): number {
    return this.closed ? 0 : (this.st.pending.get() as number);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
