import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';

/**
 * A real `redis-server` (Debian package `redis-server`; `.ci/install-system-deps` installs it) on a
 * free loopback port, without persistence. `stop()` kills it (SIGKILL by default: Redis vanishing
 * mid-request, as a crash or a network cut would look), `start()` brings it back on the same port,
 * empty.
 */
export interface RedisServer {
  port: number;
  url: string;
  running: boolean;
  /** The process id while running (tests stop it with SIGSTOP to make Redis hang). */
  pid(): number | undefined;
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function redisInstalled(): boolean {
  return spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;
}

export async function startRedis(extraArgs: string[] = [], options: { scheme?: 'redis' | 'rediss'; tlsPort?: boolean } = {}): Promise<RedisServer> {
  if (!redisInstalled()) throw new Error('redis-server is not installed: apt-get install -y redis-server (.ci/install-system-deps does it)');
  const port = await freePort();
  let child: ChildProcess | undefined;
  const portArgs = options.tlsPort ? ['--port', '0', '--tls-port', String(port)] : ['--port', String(port)];
  const server: RedisServer = {
    port,
    url: `${options.scheme ?? (options.tlsPort ? 'rediss' : 'redis')}://127.0.0.1:${port}`,
    running: false,
    pid: () => child?.pid,
    async start() {
      const proc = spawn('redis-server', [...portArgs, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      let output = '';
      proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output.slice(-500)}`))));
      exited.catch(() => undefined);
      await Promise.race([untilListening(port), exited]);
      server.running = true;
    },
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) {
        server.running = false;
        return;
      }
      const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill(signal);
      await gone;
      server.running = false;
    },
  };
  process.once('exit', () => child?.kill('SIGKILL'));
  await server.start();
  return server;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Until a TCP connection to the port succeeds (redis-server listens once it can serve). */
async function untilListening(port: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`redis-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
