/**
 * TLS for the faces api.bitbucket.org and bitbucket.org: a name-constrained CA, the leaf certificate
 * and its renewal, and the trust exports for Jenkins' JVM and git. See README.md in this folder.
 *
 * The certificate code (pkijs, asn1js, @peculiar/x509 and its dependencies: about 10 MB of RSS) is
 * loaded on first use — `startTls` (server.https) or `exportTrust` (`ca export`) — since a sidecar
 * without HTTPS never needs it. Only the file names and host names below load with this module.
 */
import type { TlsManager, TlsSettings } from './manager';
import type { TrustFormat } from './trust';
import { normalizeHostnames } from './hostnames';

export type { TlsManager, TlsSettings } from './manager';
export type { TrustFormat } from './trust';
export { FILES as TLS_FILES } from './files';
export { DEFAULT_HOSTNAMES } from './hostnames';
export type { Logger as TlsLogger } from './ca';

/**
 * The truststore password: Java's well-known default (that of `cacerts`). The same value as
 * `TRUSTSTORE_PASSWORD` in ./trust, which writes the truststore; repeated here so that reading it
 * does not load the certificate code (test/ops/lazy-load.test.ts checks that the two agree).
 */
export const TRUSTSTORE_PASSWORD = 'changeit';

/** Creates or loads the CA and the leaf in `settings.dir`, writes the trust exports and keeps the leaf renewed. */
export async function startTls(settings: TlsSettings): Promise<TlsManager> {
  const manager = await import('./manager');
  return manager.startTls(settings);
}

/**
 * Writes one trust export of the CA in `dir` to `outFile`: 'pem' (ca.pem), 'bundle' (public roots +
 * ca.pem) or 'java' (PKCS#12 truststore, password TRUSTSTORE_PASSWORD). Creates the CA when `dir` has
 * none, and fails like startTls when the existing CA does not permit `hostnames`.
 */
export async function exportTrust(settings: { dir: string; hostnames: string[] }, format: TrustFormat, outFile: string): Promise<void> {
  const [{ loadOrCreateCa }, { writeTrustExport }] = await Promise.all([import('./ca'), import('./trust')]);
  const ca = await loadOrCreateCa(settings.dir, normalizeHostnames(settings.hostnames));
  await writeTrustExport(ca.rootPem, format, outFile);
}
