import type { Config } from '../config/schema';

export interface UpstreamCredentials {
  /** Authorization header value for REST calls to the API host. */
  rest: string;
  /** Basic credentials for git smart HTTP on the web host. */
  git: { username: string; password: string; header: string };
}

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`, 'latin1').toString('base64')}`;

/**
 * Bitbucket API tokens use the account e-mail for REST but a fixed user name for git; access
 * tokens use Bearer for REST and `x-token-auth` for git. Without `gitAuth` we derive the git pair.
 */
export function upstreamCredentials(upstream: Config['upstream']): UpstreamCredentials {
  const rest = upstream.auth.type === 'basic' ? basic(upstream.auth.username, upstream.auth.password) : `Bearer ${upstream.auth.token}`;
  const git =
    upstream.gitAuth ??
    (upstream.auth.type === 'basic'
      ? { username: 'x-bitbucket-api-token-auth', password: upstream.auth.password }
      : { username: 'x-token-auth', password: upstream.auth.token });
  return { rest, git: { ...git, header: basic(git.username, git.password) } };
}

/** Every secret the upstream configuration holds, for redaction and hygiene checks. */
export function upstreamSecrets(upstream: Config['upstream']): string[] {
  const c = upstreamCredentials(upstream);
  const raw = upstream.auth.type === 'basic' ? upstream.auth.password : upstream.auth.token;
  return [raw, c.git.password, c.rest, c.git.header, ...(upstream.proxy?.password ? [upstream.proxy.password] : [])];
}
