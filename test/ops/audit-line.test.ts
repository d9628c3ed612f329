/**
 * The audit line's own serialiser writes what pino itself would write for the same record through
 * the same logger (level, time, bindings, fields, msg), scrubs sidecar tokens like pino's path does,
 * and respects the log level.
 */
import { PassThrough } from 'node:stream';
import type { AuditRecord } from '../../src/core/audit';
import { createAuditLog } from '../../src/ops/audit';
import { createLogger } from '../../src/ops/logger';

function collect(level = 'info') {
  const stream = new PassThrough();
  const lines: string[] = [];
  let buffered = '';
  stream.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts);
  });
  return { logger: createLogger({ level, destination: stream }), lines };
}

const flush = () => new Promise((r) => setImmediate(r));
const withoutTime = (line: string) => {
  const o = JSON.parse(line) as Record<string, unknown>;
  expect(typeof o.time).toBe('string');
  delete o.time;
  return o;
};

const token = `bbsc_${'A1b2_C3d4-'.repeat(18)}xyzABCD`;
const records: AuditRecord[] = [
  { method: 'GET', decision: 'allow', client: 'jenkins', route: 'branches', path: '/2.0/repositories/acme/api/refs/branches?pagelen=100', cache: 'bitbucket-sidecar; hit; ttl=3599', upstreamStatus: 200, status: 200, ms: 0.123 },
  { method: 'GET', decision: 'bad-request', status: 400, ms: 1.5 },
  { method: 'PUT', decision: 'unauthenticated', status: 401, ms: 0 },
  { method: 'GET', decision: 'allow', client: 'c"quote\\back\nline\u2028', route: 'src', path: `/2.0/repositories/acme/${token}/src/main/Jenkinsfile`, status: 404, ms: 2 },
  { method: 'GET', decision: 'error', cache: undefined, upstreamStatus: undefined, status: 500, ms: Number.NaN },
];

describe('audit line', () => {
  it('is the line pino writes for the same record, without a sidecar token', async () => {
    const fast = collect();
    const reference = collect();
    const write = createAuditLog(fast.logger);
    const pinoAudit = reference.logger.child({ kind: 'audit' });
    for (const r of records) {
      write({ ...r });
      pinoAudit.info({ ...r }, 'request');
    }
    await flush();
    expect(fast.lines).toHaveLength(records.length);
    expect(reference.lines).toHaveLength(records.length);
    fast.lines.forEach((line, i) => expect(withoutTime(line)).toEqual(withoutTime(reference.lines[i])));
    expect(fast.lines.join('\n')).not.toContain(token);
    expect(fast.lines[3]).toContain('bbsc_[redacted]');
    expect(JSON.parse(fast.lines[0])).toMatchObject({ level: 30, kind: 'audit', service: 'bitbucket-sidecar', msg: 'request', status: 200, ms: 0.123 });
  });

  it('writes nothing when the level is above info', async () => {
    const quiet = collect('warn');
    createAuditLog(quiet.logger)(records[0]);
    await flush();
    expect(quiet.lines).toEqual([]);
  });
});
