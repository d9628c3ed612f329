/**
 * A failure that never reached Bitbucket is not Bitbucket's answer: the audit line names the error
 * (here a DNS failure, ENOTFOUND) and no upstream status, and the metrics count it as an error, not
 * as the 502 the client was given.
 */
import { mintToken, sha256Hex } from '../../src/auth/tokens';
import { validateConfig } from '../../src/config/load';
import { createLogger } from '../../src/ops/logger';
import { startSidecar, type RunningSidecar } from '../../src/serve';
import { logCollector } from '../helpers/stack';
import { basic, parseMetrics, request } from '../ops/http';

describe('an upstream that cannot be reached', () => {
  let running: RunningSidecar;
  const token = mintToken();
  const logs = logCollector();

  beforeAll(async () => {
    const config = validateConfig({
      server: { http: { host: '127.0.0.1', port: 0 } },
      // .invalid never resolves (RFC 6761).
      upstream: { apiUrl: 'http://api.bitbucket.invalid', webUrl: 'http://bitbucket.invalid', auth: { type: 'basic', username: 'u@example.com', password: 'p' } },
      clients: [{ id: 'ci', token: { sha256: sha256Hex(token) }, scope: [{ workspace: 'acme' }], permissions: ['read', 'ops:read'] }],
    });
    running = await startSidecar(config, { logger: createLogger({ level: 'info', destination: logs.stream }) });
  });
  afterAll(() => running.stop(200));

  it('is audited as upstreamError, counted as an error, and answered 502', async () => {
    const auth = { authorization: basic('x', token) };
    const r = await request(`${running.httpUrl}/2.0/repositories/acme/service-api/refs/branches`, { headers: auth });
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body).type).toBe('error');
    const audit = logs.lines.map((l) => JSON.parse(l)).filter((l) => l.kind === 'audit' && l.route === 'branches');
    expect(audit).toHaveLength(1);
    expect(audit[0].upstreamError).toMatch(/^(ENOTFOUND|EAI_AGAIN)$/); // EAI_AGAIN where no resolver answers
    expect(audit[0].upstreamStatus).toBeUndefined();
    const { samples } = parseMetrics((await request(`${running.httpUrl}/_sidecar/metrics`, { headers: auth })).body);
    expect(samples.get('bitbucket_sidecar_upstream_calls_total{class="repository",status="error"}')).toBe(1);
    expect([...samples.keys()].filter((k) => k.startsWith('bitbucket_sidecar_upstream_calls_total') && k.includes('status="502"'))).toEqual([]);
  });
});
