/** DNS, TCP, TLS and the outbound proxy, for one upstream origin. */
import { lookup } from 'node:dns/promises';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { OutboundProxy } from '../upstream/proxy';
import { upstreamDispatcher } from '../upstream/proxy';
import { request } from '../upstream/undici';
import { errorCode, fail, pass, type CheckResult } from './check';

export interface NetworkOptions {
  timeoutMs: number;
}

const port = (u: URL) => Number(u.port || (u.protocol === 'https:' ? 443 : 80));

function tcp(host: string, p: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port: p });
    s.setTimeout(timeoutMs, () => s.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    s.once('connect', () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}

function tls(host: string, p: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host, port: p, servername: host });
    s.setTimeout(timeoutMs, () => s.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    s.once('secureConnect', () => {
      const issuer = s.getPeerCertificate()?.issuer?.O ?? s.getPeerCertificate()?.issuer?.CN ?? 'unknown issuer';
      s.destroy();
      resolve(String(issuer));
    });
    s.once('error', reject);
  });
}

/** DNS and TCP for a host:port, as two checks; stops at the first failure. */
async function reach(label: string, url: URL, timeoutMs: number, what: string): Promise<CheckResult[]> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let address: string;
  try {
    address = (await lookup(host)).address;
  } catch (e) {
    return [fail(`${label} DNS`, `${host} does not resolve (${errorCode(e)})`, `check the host name in ${what} and the DNS this machine uses`)];
  }
  const results = [pass(`${label} DNS`, `${host} → ${address}`)];
  try {
    await tcp(host, port(url), timeoutMs);
    results.push(pass(`${label} TCP`, `${host}:${port(url)} accepts connections`));
  } catch (e) {
    results.push(fail(`${label} TCP`, `cannot connect to ${host}:${port(url)} (${errorCode(e)})`, `check that ${what} is right and that a firewall lets this machine reach it (or set upstream.proxy / HTTPS_PROXY)`));
  }
  return results;
}

/** Checks one upstream origin (`upstream.apiUrl` or `upstream.webUrl`), through its proxy when it has one. */
export async function checkOrigin(key: string, origin: string, proxy: OutboundProxy | undefined, opts: NetworkOptions): Promise<CheckResult[]> {
  const url = new URL(origin);
  if (proxy) {
    const results = await reach(`proxy for ${key}`, proxy.url, opts.timeoutMs, `the proxy ${proxy.display} (upstream.proxy or HTTPS_PROXY)`);
    if (results.some((r) => !r.ok)) return results;
    const dispatcher = upstreamDispatcher(proxy, { connect: { timeout: opts.timeoutMs }, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs });
    try {
      const res = await request(`${url.origin}/`, dispatcher, { method: 'GET' });
      await res.body.dump();
      results.push(pass(`${key} through the proxy`, `${url.host} answered HTTP ${res.statusCode} through ${proxy.display}${url.protocol === 'https:' ? ' (TLS verified)' : ''}`));
    } catch (e) {
      const code = errorCode(e);
      const tlsProblem = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO/.test(code);
      results.push(
        fail(
          `${key} through the proxy`,
          `${url.host} not reached through ${proxy.display} (${code})`,
          tlsProblem
            ? 'the proxy inspects TLS: add its CA to NODE_EXTRA_CA_CERTS (and GIT_SSL_CAINFO for git)'
            : 'check that the proxy allows CONNECT to this host, its credentials (upstream.proxy.username/password) and NO_PROXY',
        ),
      );
    } finally {
      await dispatcher.close().catch(() => undefined);
    }
    return results;
  }
  const results = await reach(key, url, opts.timeoutMs, `${key} (${url.origin})`);
  if (results.some((r) => !r.ok) || url.protocol !== 'https:') {
    if (url.protocol !== 'https:' && results.every((r) => r.ok)) results.push(pass(`${key} TLS`, 'plain HTTP origin: no TLS to check'));
    return results;
  }
  try {
    const issuer = await tls(url.hostname, port(url), opts.timeoutMs);
    results.push(pass(`${key} TLS`, `certificate of ${url.hostname} verified (issued by ${issuer})`));
  } catch (e) {
    results.push(fail(`${key} TLS`, `TLS to ${url.hostname} failed (${errorCode(e)})`, 'a proxy or firewall intercepts TLS: add its CA to NODE_EXTRA_CA_CERTS and GIT_SSL_CAINFO, or set upstream.proxy'));
  }
  return results;
}
