/**
 * `bitbucket-sidecar doctor`: the configuration, then the world it depends on — each upstream
 * origin (DNS, TCP, TLS, proxy), the upstream credentials, the rate limit, the TLS exports and the
 * webhook forward targets. Read-only: it writes nothing and asks Bitbucket only about workspaces a
 * client is scoped to.
 */
import { ConfigError, loadConfigFile } from '../config/load';
import type { Config } from '../config/schema';
import { proxyChooser } from '../upstream/proxy';
import { checkBitbucket } from './bitbucket';
import { fail, pass, type CheckResult } from './check';
import { checkTlsDir } from './files';
import { checkOrigin } from './network';
import { checkForwardTargets } from './webhooks';

export { formatReport, type CheckResult } from './check';

export interface DoctorOptions {
  /** Per network step (default 10 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export async function runDoctor(file: string, options: DoctorOptions = {}): Promise<CheckResult[]> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  let config: Config;
  try {
    config = loadConfigFile(file, options.env);
  } catch (e) {
    const message = e instanceof ConfigError ? e.message : (e as Error).message;
    return [fail('configuration', message, 'fix the configuration (see docs/configuration.md); `bitbucket-sidecar config check` shows the same errors')];
  }
  const results: CheckResult[] = [pass('configuration', `${file}: ${config.clients.length} client(s)`)];
  const choose = proxyChooser(config.upstream.proxy);
  const origins: [string, string][] = [['upstream.apiUrl', config.upstream.apiUrl]];
  if (config.upstream.webUrl !== config.upstream.apiUrl) origins.push(['upstream.webUrl', config.upstream.webUrl]);
  for (const [key, origin] of origins) results.push(...(await checkOrigin(key, origin, choose(origin), { timeoutMs })));
  if (results.every((r) => r.ok)) results.push(...(await checkBitbucket(config, choose, { timeoutMs })));
  else results.push(fail('upstream credential', 'not checked: the upstream cannot be reached', 'fix the network checks above first'));
  if (config.server.https) results.push(...(await checkTlsDir(config.tls.dir)));
  results.push(...(await checkForwardTargets(config, timeoutMs)));
  return results;
}
