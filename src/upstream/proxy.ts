/// <reference path="./proxy-from-env.d.ts" />
/**
 * The outbound proxy for everything the sidecar sends to Bitbucket (REST, git streaming, mirror
 * and fork-grant fetches, avatars). Corporate networks often reach the internet only through one.
 *
 * `upstream.proxy` in the configuration wins; without it the operator's standard environment
 * (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, either case) applies, read by
 * proxy-from-env. The decision is made once per upstream origin, so REST and git agree.
 */
import { Agent as HttpAgent, type AgentOptions } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import { Agent, ProxyAgent, type Dispatcher } from './undici';

export interface ProxyConfig {
  url: string;
  username?: string;
  password?: string;
  /** Host names (exact) or `.domain` suffixes reached directly; `*` for all. */
  noProxy: string[];
}

/** The proxy one upstream origin is reached through. */
export interface OutboundProxy {
  /** With credentials, for the agents. */
  url: URL;
  /** Without credentials: what logs and `doctor` may show. */
  display: string;
}

/** Chooses the proxy for an upstream URL (undefined: connect directly). */
export type ProxyChooser = (target: string) => OutboundProxy | undefined;

export function proxyChooser(config: ProxyConfig | undefined): ProxyChooser {
  return (target) => {
    const raw = config ? (bypassed(new URL(target).hostname, config.noProxy) ? '' : config.url) : getProxyForUrl(target);
    if (!raw) return undefined;
    const url = new URL(raw);
    if (config?.username !== undefined) url.username = encodeURIComponent(config.username);
    if (config?.password !== undefined) url.password = encodeURIComponent(config.password);
    return { url, display: `${url.protocol}//${url.host}` };
  };
}

/** The configuration's own bypass list: exact host names, `.domain` suffixes, or `*`. */
function bypassed(hostname: string, noProxy: string[]): boolean {
  const host = hostname.toLowerCase();
  return noProxy.some((entry) => {
    const e = entry.toLowerCase();
    return e === '*' || e === host || (e.startsWith('.') && (host.endsWith(e) || host === e.slice(1)));
  });
}

/** An undici dispatcher to the upstream: through the proxy when there is one (CONNECT tunnel). */
export function upstreamDispatcher(proxy: OutboundProxy | undefined, options: Agent.Options): Dispatcher {
  return proxy ? new ProxyAgent({ ...options, uri: proxy.url.href }) : new Agent(options);
}

/** A node:http(s) agent for `target` (git streaming through http-proxy-middleware). */
export function nodeAgent(target: URL, proxy: OutboundProxy | undefined, options: AgentOptions): HttpAgent {
  const secure = target.protocol === 'https:';
  if (!proxy) return secure ? new HttpsAgent(options) : new HttpAgent(options);
  return secure ? new HttpsProxyAgent(proxy.url, options) : new HttpProxyAgent(proxy.url, options);
}

/** Git configuration entries that send git's requests to `webUrl` through the proxy, or directly. */
export function gitProxyConfig(webUrl: string, proxy: OutboundProxy | undefined): [string, string][] {
  // An empty per-URL value makes git connect directly even when the environment names a proxy, so
  // git follows the same decision as REST.
  return [[`http.${webUrl.replace(/\/+$/, '')}/.proxy`, proxy ? proxy.url.href : '']];
}
