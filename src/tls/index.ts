/**
 * TLS for the faces api.bitbucket.org and bitbucket.org: a name-constrained CA, the leaf certificate
 * and its renewal, and the trust exports for Jenkins' JVM and git. See README.md in this folder.
 */
import { loadOrCreateCa } from './ca';
import { normalizeHostnames } from './hostnames';
import { writeTrustExport, type TrustFormat } from './trust';

export { startTls, type TlsManager, type TlsSettings } from './manager';
export { TRUSTSTORE_PASSWORD, type TrustFormat } from './trust';
export { FILES as TLS_FILES } from './files';
export { DEFAULT_HOSTNAMES } from './hostnames';
export type { Logger as TlsLogger } from './ca';

/**
 * Writes one trust export of the CA in `dir` to `outFile`: 'pem' (ca.pem), 'bundle' (public roots +
 * ca.pem) or 'java' (PKCS#12 truststore, password TRUSTSTORE_PASSWORD). Creates the CA when `dir` has
 * none, and fails like startTls when the existing CA does not permit `hostnames`.
 */
export async function exportTrust(settings: { dir: string; hostnames: string[] }, format: TrustFormat, outFile: string): Promise<void> {
  const ca = await loadOrCreateCa(settings.dir, normalizeHostnames(settings.hostnames));
  await writeTrustExport(ca.rootPem, format, outFile);
}
