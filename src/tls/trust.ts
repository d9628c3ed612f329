/**
 * Trust exports: what Jenkins' JVM and git are given so that they accept the sidecar's certificate
 * while still trusting every other site.
 *
 *   ca.pem          the sidecar's root CA alone (curl --cacert, openssl -CAfile).
 *   ca-bundle.pem   the public roots Node ships (tls.rootCertificates) followed by our root: for git's
 *                   http.sslCAInfo / GIT_SSL_CAINFO, which replaces (not extends) the system bundle.
 *   truststore.p12  the same certificates as a PKCS#12 Java truststore, password TRUSTSTORE_PASSWORD.
 *
 * Java pitfall: Java's PKCS12 KeyStore only turns a certificate-only bag into a trustedCertEntry when
 * the bag carries Oracle's trustedKeyUsage attribute (OID 2.16.840.1.113894.746875.1.1, here with the
 * value anyExtendedKeyUsage 2.5.29.37.0, as keytool writes it). Without it, the entries are silently
 * dropped and `keytool -list` shows an empty store. Every certificate bag here carries it.
 */
import * as asn1js from 'asn1js';
import { X509Certificate as NodeX509 } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import * as pkijs from 'pkijs';
import { webCrypto } from './crypto';
import { PUBLIC_MODE } from './files';
import { writeFileAtomic } from '../core/write-file';

/** The truststore password: Java's well-known default (that of `cacerts`). A truststore holds no secrets. */
export const TRUSTSTORE_PASSWORD = 'changeit';

export const OID_ORACLE_TRUSTED_KEY_USAGE = '2.16.840.1.113894.746875.1.1';
export const OID_ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';
const OID_FRIENDLY_NAME = '1.2.840.113549.1.9.20';
const OID_CERT_BAG = '1.2.840.113549.1.12.10.1.3';
/** MAC iterations: what current OpenSSL and Java use for new PKCS#12 files. */
const MAC_ITERATIONS = 10_000;

export interface TrustedCertificate {
  alias: string;
  pem: string;
}

/** Node's bundled public roots (Mozilla's list) followed by our root. */
export function caBundlePem(rootPem: string): string {
  return [...rootCertificates, rootPem.trim()].join('\n') + '\n';
}

/**
 * Unique, lower-case keytool aliases: a readable part from the subject (CN, else O, else OU) and the
 * start of the SHA-256 fingerprint, so two roots with the same name never collide.
 */
export function aliasFor(pem: string): string {
  const cert = new NodeX509(pem);
  const fields = new Map<string, string>();
  for (const line of cert.subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !fields.has(line.slice(0, eq))) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const name = fields.get('CN') ?? fields.get('O') ?? fields.get('OU') ?? 'certificate';
  const readable = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48) || 'certificate';
  return `${readable}-${cert.fingerprint256.replace(/:/g, '').slice(0, 8).toLowerCase()}`;
}

export function trustedCertificates(rootPem: string): TrustedCertificate[] {
  return [...rootCertificates, rootPem].map((pem) => ({ alias: aliasFor(pem), pem }));
}

function derOf(pem: string): ArrayBuffer {
  const der = new NodeX509(pem).raw;
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength) as ArrayBuffer;
}

/**
 * Builds a PKCS#12 truststore: one unencrypted SafeContents of certificate bags (certificates are
 * public), integrity-protected by an HMAC-SHA-256 MAC keyed from the password (RFC 7292 appendix B),
 * which Java 11.0.12+/17 and OpenSSL 1.1+/3 read. `trustedKeyUsage: false` exists only so that a test
 * can show what Java does without the attribute.
 */
export async function buildPkcs12Truststore(
  certs: readonly TrustedCertificate[],
  password: string = TRUSTSTORE_PASSWORD,
  options: { trustedKeyUsage?: boolean } = {},
): Promise<Buffer> {
  const withTrust = options.trustedKeyUsage !== false;
  const safeBags = certs.map(({ alias, pem }) => {
    const bagAttributes = [new pkijs.Attribute({ type: OID_FRIENDLY_NAME, values: [new asn1js.BmpString({ value: alias })] })];
    if (withTrust) {
      bagAttributes.push(
        new pkijs.Attribute({ type: OID_ORACLE_TRUSTED_KEY_USAGE, values: [new asn1js.ObjectIdentifier({ value: OID_ANY_EXTENDED_KEY_USAGE })] }),
      );
    }
    return new pkijs.SafeBag({
      bagId: OID_CERT_BAG,
      bagValue: new pkijs.CertBag({ parsedValue: pkijs.Certificate.fromBER(derOf(pem)) }),
      bagAttributes,
    });
  });

  const engine = new pkijs.CryptoEngine({ name: 'node-webcrypto', crypto: webCrypto as never });
  const pfx = new pkijs.PFX({
    parsedValue: {
      integrityMode: 0, // password-based integrity (a MAC)
      authenticatedSafe: new pkijs.AuthenticatedSafe({
        parsedValue: { safeContents: [{ privacyMode: 0, value: new pkijs.SafeContents({ safeBags }) }] },
      }),
    },
  });
  await pfx.parsedValue!.authenticatedSafe!.makeInternalValues({ safeContents: [{}] }, engine);
  await pfx.makeInternalValues(
    {
      password: new TextEncoder().encode(password).buffer as ArrayBuffer,
      iterations: MAC_ITERATIONS,
      pbkdf2HashAlgorithm: 'SHA-256',
      hmacHashAlgorithm: 'SHA-256',
    },
    engine,
  );
  return Buffer.from(pfx.toSchema().toBER(false));
}

export type TrustFormat = 'pem' | 'bundle' | 'java';

/** The bytes of one export format for the given root. */
export async function trustExport(rootPem: string, format: TrustFormat): Promise<string | Buffer> {
  switch (format) {
    case 'pem':
      return rootPem.trim() + '\n';
    case 'bundle':
      return caBundlePem(rootPem);
    case 'java':
      return buildPkcs12Truststore(trustedCertificates(rootPem));
    default:
      throw new Error(`unknown trust format "${String(format)}" (expected pem, bundle or java)`);
  }
}

export async function writeTrustExport(rootPem: string, format: TrustFormat, outFile: string): Promise<void> {
  await writeFileAtomic(outFile, await trustExport(rootPem, format), PUBLIC_MODE);
}
