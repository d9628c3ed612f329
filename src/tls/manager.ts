/**
 * The running TLS state: which key and chain the HTTPS listeners present, and their replacement
 * before expiry without a restart.
 *
 * Servers get `serverOptions()`: a default key/cert plus an SNICallback that returns the *current*
 * SecureContext, so every new handshake after a renewal presents the new leaf. Clients that send no
 * SNI (connections by IP address) get the server's default context, which `attach(server)` keeps in
 * step through `server.setSecureContext`. Connections already open keep the certificate they started with.
 */
import { promises as fs } from 'node:fs';
import type * as https from 'node:https';
import * as tls from 'node:tls';
import { X509Certificate as NodeX509 } from 'node:crypto';
import { chainEndsAtRoot, loadOrCreateCa, type CertificateAuthority, type Logger } from './ca';
import { keyMatchesCertificate } from './crypto';
import { PRIVATE_MODE, PUBLIC_MODE, inDir, readIfExists } from './files';
import { writeFileAtomic } from '../core/write-file';
import { normalizeHostnames } from './hostnames';
import {
  DEFAULT_LEAF_VALIDITY_DAYS,
  DEFAULT_RENEW_AT_FRACTION,
  describeLeaf,
  issueLeaf,
  renewalTime,
  reusableLeaf,
  splitPemCertificates,
} from './leaf';
import { trustExport } from './trust';

export interface TlsSettings {
  /** Directory holding the CA, the leaf and the trust exports (created 0700 if missing). */
  dir: string;
  /** DNS names served and permitted by the CA (default api.bitbucket.org, bitbucket.org). */
  hostnames: string[];
  /** Bring your own certificate (PEM, leaf first, then intermediates) and key: no CA, no issuance. */
  certFile?: string;
  keyFile?: string;
  /** Lifetime of issued leaves (default 90; fractions allowed, for tests). */
  leafValidityDays?: number;
  /** Renew when this fraction of the leaf's lifetime has passed (default 2/3). */
  renewAtFraction?: number;
  /** How often the timer checks (default: a twentieth of the leaf lifetime, at most 1 h; 60 s for certFile). */
  checkIntervalMs?: number;
  /** Optional logger (pino's fits); nothing is logged without one. */
  logger?: Logger;
}

export interface TlsManager {
  /** Our root CA (ca.pem), or undefined when a brought certificate does not chain to it. */
  readonly caPem: string | undefined;
  /** The current context (changes on renewal). */
  secureContext(): tls.SecureContext;
  /** Options for https.createServer / tls.createServer: { SNICallback, key, cert, minVersion: 'TLSv1.2' }. */
  serverOptions(): tls.TlsOptions;
  /** Keeps server.setSecureContext (the context for clients without SNI) in step with renewals. */
  attach(server: https.Server | tls.Server): void;
  /** Issues a new leaf now (or re-reads certFile/keyFile) and switches to it. */
  renewNow(): Promise<void>;
  /** The leaf certificate currently presented (without the chain). */
  leafCertificatePem(): string;
  /** Stops the renewal timer. */
  close(): void;
}

const MIN_VERSION: tls.SecureVersion = 'TLSv1.2';
const HOUR_MS = 60 * 60 * 1000;
const BYO_CHECK_MS = 60 * 1000;

interface Served {
  keyPem: string;
  chainPem: string;
  leafPem: string;
  context: tls.SecureContext;
  /** Generated leaves: when to replace it. */
  renewAt?: Date;
  /** Brought files: what they looked like when read, to notice a rotation. */
  fileStamp?: string;
}

interface Resolved {
  dir: string;
  hostnames: string[];
  validityDays: number;
  fraction: number;
  checkIntervalMs?: number;
  byo?: { certFile: string; keyFile: string };
  logger?: Logger;
}

function contextOptions(keyPem: string, chainPem: string): tls.SecureContextOptions {
  return { key: keyPem, cert: chainPem, minVersion: MIN_VERSION };
}

function makeServed(keyPem: string, chainPem: string, extra: Partial<Served> = {}): Served {
  const leafPem = splitPemCertificates(chainPem)[0];
  if (!leafPem) throw new Error('tls: no certificate found in the PEM data');
  if (!keyMatchesCertificate(keyPem, leafPem)) throw new Error('tls: the private key does not belong to the (first) certificate');
  return { keyPem, chainPem, leafPem, context: tls.createSecureContext(contextOptions(keyPem, chainPem)), ...extra };
}

function resolve(settings: TlsSettings): Resolved {
  const validityDays = settings.leafValidityDays ?? DEFAULT_LEAF_VALIDITY_DAYS;
  const fraction = settings.renewAtFraction ?? DEFAULT_RENEW_AT_FRACTION;
  if (!settings.dir) throw new Error('tls.dir is required');
  if (!(validityDays > 0)) throw new Error(`tls: leafValidityDays must be > 0 (got ${validityDays})`);
  if (!(fraction > 0 && fraction < 1)) throw new Error(`tls: renewAtFraction must be between 0 and 1 (got ${fraction})`);
  if (settings.checkIntervalMs !== undefined && !(settings.checkIntervalMs > 0)) {
    throw new Error(`tls: checkIntervalMs must be > 0 (got ${settings.checkIntervalMs})`);
  }
  if ((settings.certFile === undefined) !== (settings.keyFile === undefined)) {
    throw new Error('tls: certFile and keyFile go together: give both or neither');
  }
  return {
    dir: settings.dir,
    hostnames: normalizeHostnames(settings.hostnames),
    validityDays,
    fraction,
    checkIntervalMs: settings.checkIntervalMs,
    byo: settings.certFile !== undefined && settings.keyFile !== undefined ? { certFile: settings.certFile, keyFile: settings.keyFile } : undefined,
    logger: settings.logger,
  };
}

async function writeTrustFiles(dir: string, rootPem: string): Promise<void> {
  await writeFileAtomic(inDir(dir, 'caBundle'), await trustExport(rootPem, 'bundle'), PUBLIC_MODE);
  await writeFileAtomic(inDir(dir, 'javaTruststore'), await trustExport(rootPem, 'java'), PUBLIC_MODE);
}

class Manager implements TlsManager {
  private served: Served;
  private readonly servers = new Set<https.Server | tls.Server>();
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly cfg: Resolved,
    readonly caPem: string | undefined,
    private readonly ca: CertificateAuthority | undefined,
    served: Served,
  ) {
    this.served = served;
  }

  secureContext(): tls.SecureContext {
    return this.served.context;
  }

  serverOptions(): tls.TlsOptions {
    const { keyPem, chainPem } = this.served;
    return {
      ...contextOptions(keyPem, chainPem),
      SNICallback: (_servername, cb) => cb(null, this.served.context),
    };
  }

  attach(server: https.Server | tls.Server): void {
    this.servers.add(server);
    server.setSecureContext(contextOptions(this.served.keyPem, this.served.chainPem));
    server.once('close', () => this.servers.delete(server));
  }

  leafCertificatePem(): string {
    return this.served.leafPem;
  }

  renewNow(): Promise<void> {
    const run = this.queue.catch(() => undefined).then(() => this.replace());
    this.queue = run;
    return run;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.servers.clear();
  }

  startTimer(): void {
    const interval = this.cfg.checkIntervalMs ?? this.defaultInterval();
    this.timer = setInterval(() => void this.tick(), interval);
    this.timer.unref();
  }

  private defaultInterval(): number {
    if (this.cfg.byo) return BYO_CHECK_MS;
    const lifetime = this.cfg.validityDays * 24 * HOUR_MS;
    return Math.max(1000, Math.min(HOUR_MS, Math.floor(lifetime / 20)));
  }

  private async tick(): Promise<void> {
    try {
      if (this.cfg.byo) {
        if ((await byoStamp(this.cfg.byo)) === this.served.fileStamp) return;
        this.cfg.logger?.info(`tls: ${this.cfg.byo.certFile} or ${this.cfg.byo.keyFile} changed; reloading`);
      } else if (!this.served.renewAt || Date.now() < this.served.renewAt.getTime()) {
        return;
      }
      await this.renewNow();
    } catch (err) {
      // The current certificate stays in service; the next tick tries again.
      this.cfg.logger?.warn(`tls: renewal failed, will retry: ${(err as Error).message}`);
    }
  }

  private async replace(): Promise<void> {
    const next = this.cfg.byo ? await loadByo(this.cfg.byo) : await issueAndStore(this.cfg, this.ca!);
    this.served = next;
    for (const server of this.servers) server.setSecureContext(contextOptions(next.keyPem, next.chainPem));
    const info = describeLeaf(next.leafPem);
    this.cfg.logger?.info(`tls: now serving certificate serial ${info.serialNumber}, valid until ${info.notAfter.toISOString()}`);
  }
}

async function byoStamp(byo: { certFile: string; keyFile: string }): Promise<string> {
  const [c, k] = await Promise.all([fs.stat(byo.certFile), fs.stat(byo.keyFile)]);
  return `${c.mtimeMs}:${c.size}:${c.ino}/${k.mtimeMs}:${k.size}:${k.ino}`;
}

async function loadByo(byo: { certFile: string; keyFile: string }): Promise<Served> {
  const fileStamp = await byoStamp(byo);
  const [chainPem, keyPem] = await Promise.all([fs.readFile(byo.certFile, 'utf8'), fs.readFile(byo.keyFile, 'utf8')]);
  try {
    return makeServed(keyPem, chainPem, { fileStamp });
  } catch (err) {
    throw new Error(`tls.certFile ${byo.certFile} / tls.keyFile ${byo.keyFile}: ${(err as Error).message.replace(/^tls: /, '')}`);
  }
}

async function issueAndStore(cfg: Resolved, ca: CertificateAuthority): Promise<Served> {
  const leaf = await issueLeaf(ca, cfg.hostnames, cfg.validityDays);
  // Key first: if the process dies in between, the next start sees a key/certificate mismatch and re-issues.
  await writeFileAtomic(inDir(cfg.dir, 'leafKey'), leaf.keyPem, PRIVATE_MODE);
  await writeFileAtomic(inDir(cfg.dir, 'leafCert'), leaf.chainPem, PUBLIC_MODE);
  return makeServed(leaf.keyPem, leaf.chainPem, { renewAt: renewalTime(describeLeaf(leaf.certPem), cfg.fraction) });
}

async function startGenerated(cfg: Resolved): Promise<Manager> {
  const ca = await loadOrCreateCa(cfg.dir, cfg.hostnames, cfg.logger);
  const onDiskChain = await readIfExists(inDir(cfg.dir, 'leafCert'));
  const onDiskKey = await readIfExists(inDir(cfg.dir, 'leafKey'));
  const onDiskLeaf = onDiskChain ? splitPemCertificates(onDiskChain)[0] : undefined;
  let served: Served;
  if (onDiskLeaf && onDiskKey && reusableLeaf(ca, { certPem: onDiskLeaf, keyPem: onDiskKey }, cfg.hostnames, cfg.fraction)) {
    served = makeServed(onDiskKey, onDiskLeaf + ca.issuingPem, { renewAt: renewalTime(describeLeaf(onDiskLeaf), cfg.fraction) });
  } else {
    served = await issueAndStore(cfg, ca);
  }
  await writeTrustFiles(cfg.dir, ca.rootPem);
  return new Manager(cfg, ca.rootPem, ca, served);
}

async function startBringYourOwn(cfg: Resolved, byo: { certFile: string; keyFile: string }): Promise<Manager> {
  const served = await loadByo(byo);
  const leaf = new NodeX509(served.leafPem);
  const uncovered = cfg.hostnames.filter((h) => leaf.checkHost(h) === undefined);
  if (uncovered.length > 0) {
    cfg.logger?.warn(`tls: ${byo.certFile} does not cover ${uncovered.join(', ')}; clients asking for those names will reject it`);
  }
  // Our CA is exported only when it actually vouches for the brought certificate.
  const rootPem = await readIfExists(inDir(cfg.dir, 'caCert'));
  let caPem: string | undefined;
  if (rootPem && chainEndsAtRoot(splitPemCertificates(served.chainPem), rootPem)) {
    caPem = rootPem;
    await writeTrustFiles(cfg.dir, rootPem);
  } else {
    cfg.logger?.info(`tls: serving ${byo.certFile} as is; its issuer is not this sidecar's CA, so no trust files are written to ${cfg.dir}`);
  }
  return new Manager(cfg, caPem, undefined, served);
}

export async function startTls(settings: TlsSettings): Promise<TlsManager> {
  const cfg = resolve(settings);
  const manager = cfg.byo ? await startBringYourOwn(cfg, cfg.byo) : await startGenerated(cfg);
  manager.startTimer();
  return manager;
}
