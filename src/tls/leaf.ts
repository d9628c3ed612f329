/** Server (leaf) certificates issued by the sidecar CA. */
import { X509Certificate as NodeX509, createPublicKey } from 'node:crypto';
import type { CertificateAuthority } from './ca';
import { SIGNING, generateP256, keyMatchesCertificate, privateKeyToPem, randomSerial, x509 } from './crypto';

export const DEFAULT_LEAF_VALIDITY_DAYS = 90;
export const DEFAULT_RENEW_AT_FRACTION = 2 / 3;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Back-dating of notBefore for clients whose clock is slightly behind (bounded for very short test lifetimes). */
const MAX_BACKDATE_MS = 5 * 60 * 1000;

export interface IssuedCertificate {
  /** The leaf alone. */
  certPem: string;
  /** The leaf followed by the issuing CA: what a server sends (leaf.pem on disk). */
  chainPem: string;
  keyPem: string;
}

type Issuer = Pick<CertificateAuthority, 'issuingPem' | 'signingKey'>;

export interface ServerCertificateRequest {
  dnsNames: readonly string[];
  /** Subject CN; defaults to the first DNS name. */
  commonName?: string;
  notBefore: Date;
  notAfter: Date;
  /** Set false to leave out the subjectAltName extension (only tests do: a CN-only certificate). */
  subjectAltName?: boolean;
}

/**
 * Signs an ECDSA P-256 server certificate with the CA key. It does not check the names against the
 * CA's constraints — `issueLeaf` does; tests use this directly to prove the constraints hold.
 */
export async function signServerCertificate(ca: Issuer, req: ServerCertificateRequest): Promise<IssuedCertificate> {
  const keys = await generateP256();
  const caCert = new x509.X509Certificate(ca.issuingPem);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
  ];
  if (req.subjectAltName !== false) {
    extensions.push(new x509.SubjectAlternativeNameExtension(req.dnsNames.map((value) => ({ type: 'dns' as const, value })), false));
  }
  const cn = req.commonName ?? req.dnsNames[0];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: new x509.Name([{ CN: [cn] }]),
    issuer: caCert.subjectName,
    notBefore: req.notBefore,
    notAfter: req.notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: SIGNING,
    extensions,
  });
  const certPem = cert.toString('pem') + '\n';
  return { certPem, chainPem: certPem + ca.issuingPem, keyPem: await privateKeyToPem(keys.privateKey) };
}

/** Issues the leaf for exactly the configured host names. */
export async function issueLeaf(ca: Issuer, hostnames: readonly string[], validityDays: number, now = new Date()): Promise<IssuedCertificate> {
  const lifetimeMs = validityDays * DAY_MS;
  const backdate = Math.min(MAX_BACKDATE_MS, Math.floor(lifetimeMs / 10));
  return signServerCertificate(ca, {
    dnsNames: hostnames,
    notBefore: new Date(now.getTime() - backdate),
    notAfter: new Date(now.getTime() + lifetimeMs),
  });
}

export interface LeafInfo {
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
}

export function describeLeaf(certPem: string): LeafInfo {
  const cert = new NodeX509(certPem);
  const dnsNames = (cert.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  return { serialNumber: cert.serialNumber, notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo), dnsNames };
}

/** The moment at which a certificate should be replaced: `fraction` of the way through its lifetime. */
export function renewalTime(info: Pick<LeafInfo, 'notBefore' | 'notAfter'>, fraction: number): Date {
  const from = info.notBefore.getTime();
  return new Date(from + (info.notAfter.getTime() - from) * fraction);
}

/**
 * Whether a leaf found on disk can be served on: issued by this CA, for exactly these names, with its
 * own key, and not yet due for renewal.
 */
export function reusableLeaf(ca: Issuer, leaf: Pick<IssuedCertificate, 'certPem' | 'keyPem'>, hostnames: readonly string[], fraction: number, now = new Date()): boolean {
  try {
    const cert = new NodeX509(leaf.certPem);
    if (!cert.verify(createPublicKey(ca.issuingPem))) return false;
    if (!keyMatchesCertificate(leaf.keyPem, leaf.certPem)) return false;
    const info = describeLeaf(leaf.certPem);
    const want = [...hostnames].sort().join(',');
    if ([...info.dnsNames].sort().join(',') !== want) return false;
    return now >= info.notBefore && now < renewalTime(info, fraction);
  } catch {
    return false;
  }
}

/** Splits a PEM file into its certificates (each with a trailing newline). */
export function splitPemCertificates(pem: string): string[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => p + '\n');
}
