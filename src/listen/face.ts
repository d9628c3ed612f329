import { memoizeRecent } from '../core/memoize';
import type { LinkBases } from '../core/links';

export type FaceName = 'api' | 'web' | 'ops';

const HOST_HEADER = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/;

export interface HostInfo {
  name: string; // lower-case, without port
  port?: string;
}

/** Clients send the same Host on every request. */
const parseHostRecent = memoizeRecent(parseHostValue);

export function parseHost(value: string | undefined): HostInfo | undefined {
  return value ? parseHostRecent(value) : undefined;
}

function parseHostValue(value: string): HostInfo | undefined {
  const m = HOST_HEADER.exec(value);
  if (!m) return undefined;
  const name = (m[1] ? value.slice(0, value.length - m[1].length - 1) : value).toLowerCase().replace(/\.$/, '');
  return { name, port: m[1] };
}

export interface FaceNames {
  api: string; // e.g. api.bitbucket.org
  web: string[]; // e.g. bitbucket.org and extra names
}

export function faceNames(hostnames: readonly string[]): FaceNames {
  const lower = hostnames.map((h) => h.toLowerCase());
  const api = lower.find((h) => h.startsWith('api.')) ?? 'api.bitbucket.org';
  return { api, web: lower.filter((h) => h !== api) };
}

/**
 * Stage 1: which face answers. The Host picks it for the Bitbucket names; on any other host
 * (localhost:8080, a service name) the path does.
 */
export function selectFace(host: HostInfo, firstSegment: string | undefined, names: FaceNames): FaceName {
  if (firstSegment === '_sidecar') return 'ops';
  if (host.name === names.api) return 'api';
  if (names.web.includes(host.name)) return 'web';
  return firstSegment === '2.0' ? 'api' : 'web';
}

const origins = new Map<string, string>();
function originOf(url: string): string {
  let origin = origins.get(url);
  if (origin === undefined) origins.set(url, (origin = new URL(url).origin));
  return origin;
}

/** Base URLs of the client's view of both faces, for link rewriting. */
export function clientBases(host: HostInfo, secure: boolean, names: FaceNames, upstream: { api: string; web: string }): LinkBases {
  const scheme = secure ? 'https' : 'http';
  const defaultPort = secure ? '443' : '80';
  const port = host.port && host.port !== defaultPort ? `:${host.port}` : '';
  const bitbucketName = host.name === names.api || names.web.includes(host.name);
  const webName = names.web[0] ?? 'bitbucket.org';
  return {
    upstreamApi: originOf(upstream.api),
    upstreamWeb: originOf(upstream.web),
    clientApi: bitbucketName ? `${scheme}://${names.api}${port}` : `${scheme}://${host.name}${port}`,
    clientWeb: bitbucketName ? `${scheme}://${webName}${port}` : `${scheme}://${host.name}${port}`,
  };
}
