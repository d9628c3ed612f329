/**
 * The environment every git command of the sidecar and of the fake Bitbucket runs with: inherited
 * `GIT_*` variables dropped (a stray GIT_DIR or GIT_CONFIG_PARAMETERS would redirect or reconfigure
 * every command), no user or system configuration, never prompting.
 */
export function cleanGitEnv(extra: Record<string, string | undefined> = {}, keep: ReadonlySet<string> = new Set()): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('GIT_') || keep.has(k)) env[k] = v;
  }
  env.GIT_CONFIG_NOSYSTEM = '1';
  env.GIT_CONFIG_GLOBAL = '/dev/null';
  env.GIT_TERMINAL_PROMPT = '0';
  env.GIT_ASKPASS = '';
  env.SSH_ASKPASS = '';
  env.LC_ALL = 'C';
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}
