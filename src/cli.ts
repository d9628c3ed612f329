import { Command, CommanderError } from 'commander';
import { mintOAuthConsumer, mintToken, sha256Hex } from './auth/tokens';
import { ConfigError, loadConfigFile, loadTrustSettings } from './config/load';
import { createLogger } from './ops/logger';
import { reloadOnChange, startSidecar, stopOnSignals } from './serve';
import { VERSION } from './sidecar';
import { DEFAULT_HOSTNAMES, exportTrust, type TrustFormat } from './tls';

/** `doctor` found a failing check: the report is printed, the exit code is 1. */
class DoctorFailed extends Error {}

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new CommanderError(2, 'usage', `error: invalid port ${value}\n`);
  return port;
}

/** Exit codes: 0 success, 1 failure (invalid config, runtime error), 2 usage error. */
export async function runCli(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const program = new Command('bitbucket-sidecar')
    .description('A scoped, caching stand-in for api.bitbucket.org and bitbucket.org for Jenkins')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => err.write(s) });

  const configPath = (opt?: string): string => {
    const p = opt ?? process.env.BITBUCKET_SIDECAR_CONFIG;
    if (!p) throw new CommanderError(2, 'usage', 'error: --config FILE (or BITBUCKET_SIDECAR_CONFIG) is required\n');
    return p;
  };

  program
    .command('serve')
    .description('serve Jenkins with the configuration in FILE')
    .option('-c, --config <file>', 'configuration file (default: $BITBUCKET_SIDECAR_CONFIG)')
    .action(async (opts: { config?: string }) => {
      const file = configPath(opts.config);
      const config = loadConfigFile(file);
      const logger = createLogger();
      const running = await startSidecar(config, { logger });
      reloadOnChange(running, file, logger);
      stopOnSignals(running, logger);
      await new Promise(() => undefined);
    });

  const configCmd = program.command('config').description('configuration tools');
  configCmd
    .command('check')
    .description('validate a configuration file (secret references included) and exit')
    .option('-c, --config <file>', 'configuration file (default: $BITBUCKET_SIDECAR_CONFIG)')
    .action((opts: { config?: string }) => {
      const config = loadConfigFile(configPath(opts.config));
      out.write(`configuration OK: ${config.clients.length} client(s): ${config.clients.map((c) => c.id).join(', ')}\n`);
    });

  program
    .command('doctor')
    .description('check the configuration and everything it depends on: upstream reachability, credentials, TLS exports, webhook targets')
    .option('-c, --config <file>', 'configuration file (default: $BITBUCKET_SIDECAR_CONFIG)')
    .option('--json', 'print the checks as a JSON array')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const { formatReport, runDoctor } = await import('./doctor');
      const results = await runDoctor(configPath(opts.config));
      out.write(opts.json ? `${JSON.stringify(results, null, 2)}\n` : formatReport(results));
      if (results.some((r) => !r.ok)) throw new DoctorFailed();
    });

  const tokenCmd = program.command('token').description('client tokens');
  tokenCmd
    .command('create')
    .description('mint a new client token (192 characters) and print its sha256 for the config')
    .requiredOption('--client <id>', 'the client id the token is for')
    .option('--oauth', 'mint an OAuth consumer key/secret pair instead (Jenkins "Bitbucket OAuth" credential)')
    .action((opts: { client: string; oauth?: boolean }) => {
      if (opts.oauth) {
        const pair = mintOAuthConsumer();
        out.write(
          [
            `# OAuth consumer for client "${opts.client}". Give Jenkins the key as user name and the secret as password.`,
            `key:    ${pair.key}`,
            `secret: ${pair.secret}`,
            '# config (under the client):',
            `oauth: { key: "${pair.key}", secretSha256: "${sha256Hex(pair.secret)}" }`,
            '',
          ].join('\n'),
        );
        return;
      }
      const token = mintToken();
      out.write(
        [
          `# Token for client "${opts.client}". Shown once; only its hash goes into the config.`,
          `token: ${token}`,
          '# config (under the client):',
          `token: { sha256: "${sha256Hex(token)}" }`,
          '',
        ].join('\n'),
      );
    });

  program
    .command('demo')
    .description('run the sidecar against an embedded demo Bitbucket (no configuration needed)')
    .option('-p, --port <port>', 'HTTP port', '8080')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--https-port <port>', 'also serve HTTPS as api.bitbucket.org and bitbucket.org on this port')
    .option('--tls-dir <dir>', 'where the CA, certificate and trust exports live (with --https-port)', '/var/lib/bitbucket-sidecar/tls')
    .action(async (opts: { port: string; host: string; httpsPort?: string; tlsDir: string }) => {
      const port = parsePort(opts.port);
      const httpsPort = opts.httpsPort === undefined ? undefined : parsePort(opts.httpsPort);
      const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
      // Loaded only here: the demo's fake Bitbucket is never part of a real `serve`.
      const { demoBanner, startDemo } = await import('./demo');
      const demo = await startDemo({ host: opts.host, port, https: httpsPort === undefined ? undefined : { port: httpsPort, tlsDir: opts.tlsDir }, sidecar: { logger } });
      out.write(demoBanner(demo));
      const stop = () => demo.stop().then(() => process.exit(0), () => process.exit(1));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      await new Promise(() => undefined);
    });

  const caCmd = program.command('ca').description('the CA Jenkins trusts');
  caCmd
    .command('export')
    .description('write a trust export of the CA (creating the CA if the directory has none)')
    .requiredOption('--format <format>', 'pem (ca.pem) | bundle (public roots + CA, for git) | java (PKCS#12 truststore, password changeit)')
    .requiredOption('--out <file>', 'where to write it')
    .option('-c, --config <file>', 'take tls.dir and server.https.hostnames from this configuration')
    .option('--tls-dir <dir>', 'the CA directory (without --config)', '/var/lib/bitbucket-sidecar/tls')
    .action(async (opts: { format: string; out: string; config?: string; tlsDir: string }) => {
      if (!['pem', 'bundle', 'java'].includes(opts.format)) throw new CommanderError(2, 'usage', `error: --format must be pem, bundle or java\n`);
      const file = opts.config ?? process.env.BITBUCKET_SIDECAR_CONFIG;
      const trust = file ? loadTrustSettings(file) : undefined;
      const dir = trust?.dir ?? opts.tlsDir;
      const hostnames = trust?.hostnames ?? [...DEFAULT_HOSTNAMES];
      await exportTrust({ dir, hostnames }, opts.format as TrustFormat, opts.out);
      out.write(`wrote ${opts.format} trust export of ${dir} to ${opts.out}\n`);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      if (e.code === 'usage') err.write(e.message);
      return 2;
    }
    if (e instanceof DoctorFailed) return 1;
    if (e instanceof ConfigError) {
      err.write(`${e.message}\n`);
      return 1;
    }
    err.write(`error: ${(e as Error).message}\n`);
    return 1;
  }
  return 0;
}
