/**
 * CLI: start the fake with the demo seed and print its URL and credentials.
 *   node dist/fake-bitbucket/standalone.js [port]   (after `npm run build`)
 */
import { startFakeBitbucket, type FakeBitbucketServer } from './server';

export async function runStandalone(port = 0): Promise<FakeBitbucketServer> {
  const fake = await startFakeBitbucket({ port });
  process.stdout.write(`fake-bitbucket listening on ${fake.url}\n`);
  process.stdout.write(`REST: Basic ${fake.credentials.email}:<apiToken>  git: Basic x-bitbucket-api-token-auth:<apiToken>\n`);
  process.stdout.write(`apiToken: ${fake.credentials.apiToken}\n`);
  const stop = (): void => {
    void fake.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return fake;
}

if (require.main === module) {
  runStandalone(Number(process.argv[2] ?? 0)).catch((e: Error) => {
    process.stderr.write(`${e.stack ?? e.message}\n`);
    process.exit(1);
  });
}
