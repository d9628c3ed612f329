import type http from 'node:http';
import type { Logger } from 'pino';
import { ConfigError, loadConfigFile } from './config/load';
import type { Config } from './config/schema';
import { watchConfigFile } from './config/watch';
import { closeServer, createHttpServer, createHttpsServer, listen, type Refusal } from './listen/servers';
import { describeTarget } from './listen/pipeline';
import { createAuditLog } from './ops/audit';
import { startTls, TLS_FILES, type TlsManager } from './tls';
import { createSidecar, type Sidecar, type SidecarOptions } from './sidecar';

export interface RunningSidecar {
  sidecar: Sidecar;
  httpUrl: string;
  httpPort: number;
  /** Set when `server.https` is configured. */
  httpsPort?: number;
  /** Set when `server.ops` is configured. */
  opsPort?: number;
  tls?: TlsManager;
  servers: http.Server[];
  stop(graceMs?: number): Promise<void>;
}

/** Starts the listeners of a configuration; `stop` drains in-flight requests first. */
export async function startSidecar(config: Config, options: SidecarOptions = {}): Promise<RunningSidecar> {
  const sidecar = createSidecar(config, options);
  const { maxHeaderBytes, headersTimeoutMs, requestTimeoutMs, maxConnections, maxConnectionsPerSource } = config.server;
  let overCapacityLoggedAt = 0;
  const onOverCapacity = () => {
    if (Date.now() - overCapacityLoggedAt < 10_000) return;
    overCapacityLoggedAt = Date.now();
    sidecar.logger.warn({ maxConnections }, 'a connection past server.maxConnections was answered 503 (logged at most every 10 s)');
  };
  // Requests the listener answers itself (malformed, oversized head, no slot, CONNECT) get an audit line too.
  const audit = createAuditLog(sidecar.logger);
  const onRefused = (r: Refusal) =>
    audit({ method: r.method, decision: r.decision, status: r.status, ...(r.target !== undefined ? { path: describeTarget({}, r.target) } : {}) });
  const limits = { maxHeaderBytes, headersTimeoutMs, requestTimeoutMs, maxConnections, maxConnectionsPerSource, onOverCapacity, onRefused };
  const httpServer = createHttpServer(sidecar.app, { ...config.server.http, ...limits });
  const httpPort = await listen(httpServer, config.server.http.host, config.server.http.port);
  const servers: http.Server[] = [httpServer];
  const shownHost = config.server.http.host === '0.0.0.0' ? '127.0.0.1' : config.server.http.host;
  sidecar.logger.info({ port: httpPort }, 'listening (http)');
  let tls: TlsManager | undefined;
  let httpsPort: number | undefined;
  let opsPort: number | undefined;
  const https = config.server.https;
  try {
    if (config.server.ops) {
      const opsServer = createHttpServer(sidecar.opsApp, { ...config.server.ops, ...limits });
      opsPort = await listen(opsServer, config.server.ops.host, config.server.ops.port);
      servers.push(opsServer);
      sidecar.logger.info({ port: opsPort, host: config.server.ops.host }, 'listening (ops)');
    }
    if (https) {
      tls = await startTls({
        dir: config.tls.dir,
        hostnames: https.hostnames,
        certFile: config.tls.certFile,
        keyFile: config.tls.keyFile,
        leafValidityDays: config.tls.leafValidityDays,
        logger: sidecar.logger.child({ component: 'tls' }),
      });
      const httpsServer = createHttpsServer(sidecar.app, { ...https, ...limits }, tls.serverOptions());
      tls.attach(httpsServer);
      httpsPort = await listen(httpsServer, https.host, https.port);
      sidecar.readiness.watchTls(tls, config.tls.dir, [TLS_FILES.caCert, TLS_FILES.caBundle, TLS_FILES.javaTruststore]);
      servers.push(httpsServer);
      sidecar.logger.info({ port: httpsPort, hostnames: https.hostnames }, 'listening (https)');
    }
  } catch (e) {
    tls?.close();
    await Promise.all(servers.map((s) => closeServer(s, 0)));
    await sidecar.close();
    throw e;
  }
  return {
    sidecar,
    httpUrl: `http://${shownHost}:${httpPort}`,
    httpPort,
    httpsPort,
    opsPort,
    tls,
    servers,
    async stop(graceMs = 10_000) {
      sidecar.readiness.draining();
      const stopSweeping = sidecar.drain.begin(servers);
      await Promise.all(servers.map((s) => closeServer(s, graceMs)));
      stopSweeping();
      tls?.close();
      await sidecar.close();
    },
  };
}

/**
 * Re-reads the configuration file; a valid one replaces the clients at once (a removed token stops
 * working for the next request), an invalid one is refused with its reasons and the old one stays.
 */
export function reloadFromFile(running: RunningSidecar, file: string, logger: Logger): boolean {
  try {
    const next = loadConfigFile(file);
    running.sidecar.reload(next);
    return true;
  } catch (e) {
    const problems = e instanceof ConfigError ? e.problems : [(e as Error).message];
    logger.error({ problems }, 'configuration reload refused; the previous configuration stays active');
    return false;
  }
}

export function reloadOnChange(running: RunningSidecar, file: string, logger: Logger, intervalMs = 1000): () => void {
  const reload = () => void reloadFromFile(running, file, logger);
  process.on('SIGHUP', reload);
  const unwatch = watchConfigFile(file, reload, intervalMs);
  return () => {
    process.off('SIGHUP', reload);
    unwatch();
  };
}

export function stopOnSignals(running: RunningSidecar, logger: Logger, graceMs = 25_000): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: draining in-flight requests');
    running.stop(graceMs).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
