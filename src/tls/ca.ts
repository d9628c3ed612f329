/**
 * The sidecar's own certificate authority, in two tiers:
 *
 *   ca.pem          root, self-signed: the trust anchor given to Jenkins' JVM and to git.
 *                   Its private key exists only in memory while it signs the issuing CA, then is dropped.
 *   issuing-ca.pem  signed by the root; its key (issuing-ca.key, mode 0600) signs the leaf certificates.
 *
 * Both carry the same critical nameConstraints extension (permitted: the configured DNS names;
 * excluded: every IPv4 and IPv6 address). Why two tiers: Java's PKIX validator does not apply name
 * constraints found in a trust anchor (it builds `new TrustAnchor(cert, null)`), while it does apply
 * them in every intermediate. With one self-signed CA, its leaked key could mint a certificate for any
 * site that Java would accept; with two, the only key on disk is the issuing CA's, and every
 * certificate it signs is checked against its constraints by Java, OpenSSL (curl, git) and Node alike.
 *
 * A CA is created once per `tls.dir` and reused on every start; a missing, mismatched, expired or too
 * narrow CA is an error for the operator, never a reason to mint a new one silently.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints, id_ce_nameConstraints } from '@peculiar/asn1-x509';
import { X509Certificate as NodeX509, createPublicKey, randomBytes } from 'node:crypto';
import { SIGNING, generateP256, keyMatchesCertificate, privateKeyToPem, randomSerial, signingKeyFromPem, x509, type CryptoKey } from './crypto';
import { FILES, PRIVATE_MODE, PUBLIC_MODE, ensureDir, fileMode, inDir, readIfExists } from './files';
import { writeFileAtomic } from '../core/write-file';
import { dnsNameWithin } from './hostnames';

export const CA_VALIDITY_YEARS = 10;
/** IP addresses are excluded outright: dNSName constraints alone would leave IP-address SANs unconstrained. */
const EXCLUDED_IP_RANGES = ['0.0.0.0/0', '::/0'];

export interface CertificateAuthority {
  /** ca.pem: the root certificate, the one to trust. */
  rootPem: string;
  /** issuing-ca.pem: sent by servers after the leaf. */
  issuingPem: string;
  /** The issuing CA's private key, as a WebCrypto signing key. */
  signingKey: CryptoKey;
  /** SHA-256 fingerprint of the root, as openssl and keytool print it (colon-separated upper-case hex). */
  fingerprint256: string;
  /** The DNS names the CA may vouch for (and their subdomains, RFC 5280 §4.2.1.10). */
  permittedDnsNames: string[];
  /** True when this call created the CA. */
  created: boolean;
}

export interface CaConstraints {
  critical: boolean;
  permittedDnsNames: string[];
  excludedDnsNames: string[];
  /** True when the constraints permit some name type other than dNSName (we never create such a CA). */
  permitsOtherTypes: boolean;
}

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

export function nameConstraintsExtension(hostnames: readonly string[]): x509.Extension {
  const value = new NameConstraints({
    permittedSubtrees: new GeneralSubtrees(hostnames.map((dNSName) => new GeneralSubtree({ base: new GeneralName({ dNSName }) }))),
    excludedSubtrees: new GeneralSubtrees(EXCLUDED_IP_RANGES.map((iPAddress) => new GeneralSubtree({ base: new GeneralName({ iPAddress }) }))),
  });
  return new x509.Extension(id_ce_nameConstraints, true, AsnConvert.serialize(value));
}

/** Reads the nameConstraints extension of a certificate; undefined when it has none. */
export function readNameConstraints(certPem: string): CaConstraints | undefined {
  const cert = new x509.X509Certificate(certPem);
  const ext = cert.getExtension(id_ce_nameConstraints);
  if (!ext) return undefined;
  const nc = AsnConvert.parse(ext.value, NameConstraints);
  const dns = (subtrees: GeneralSubtrees | undefined) =>
    (subtrees ?? []).map((s) => s.base.dNSName).filter((n): n is string => typeof n === 'string');
  return {
    critical: ext.critical,
    permittedDnsNames: dns(nc.permittedSubtrees),
    excludedDnsNames: dns(nc.excludedSubtrees),
    permitsOtherTypes: (nc.permittedSubtrees ?? []).some((s) => s.base.dNSName === undefined),
  };
}

/** Host names the constraints do not allow (empty when all are allowed). */
export function namesOutsideConstraints(hostnames: readonly string[], c: CaConstraints): string[] {
  return hostnames.filter(
    (h) => !c.permittedDnsNames.some((p) => dnsNameWithin(h, p)) || c.excludedDnsNames.some((e) => dnsNameWithin(h, e)),
  );
}

const CA_KEY_USAGE = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;

/** Creates root and issuing CA. The root key never leaves this function. */
export async function createCaCertificates(
  hostnames: readonly string[],
  now = new Date(),
): Promise<{ rootPem: string; issuingPem: string; issuingKeyPem: string }> {
  const notBefore = new Date(now.getTime() - 60 * 60 * 1000); // tolerate clients whose clock is a little behind
  const notAfter = new Date(notBefore);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CA_VALIDITY_YEARS);
  // A per-installation suffix keeps two sidecars' CAs apart in one truststore.
  const id = randomBytes(4).toString('hex');
  const constraints = nameConstraintsExtension(hostnames);

  const rootKeys = await generateP256(false);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=bitbucket-sidecar root CA ${id}, O=bitbucket-sidecar`,
    notBefore,
    notAfter,
    keys: rootKeys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(CA_KEY_USAGE, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
      constraints,
    ],
  });

  const issuingKeys = await generateP256(true);
  const issuing = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=bitbucket-sidecar issuing CA ${id}, O=bitbucket-sidecar`,
    issuer: root.subjectName,
    notBefore,
    notAfter,
    publicKey: issuingKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(CA_KEY_USAGE, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      await x509.SubjectKeyIdentifierExtension.create(issuingKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
      constraints,
    ],
  });
  return {
    rootPem: root.toString('pem') + '\n',
    issuingPem: issuing.toString('pem') + '\n',
    issuingKeyPem: await privateKeyToPem(issuingKeys.privateKey),
  };
}

function checkConstraints(dir: string, file: string, certPem: string, fingerprint: string, hostnames: readonly string[]): CaConstraints {
  const constraints = readNameConstraints(certPem);
  if (!constraints || !constraints.critical || constraints.permitsOtherTypes || constraints.permittedDnsNames.length === 0) {
    throw new Error(
      `tls.dir ${dir}: ${file} (SHA-256 ${fingerprint}) is not limited to DNS names by a critical nameConstraints extension; refusing to use a CA that could vouch for any site`,
    );
  }
  const outside = namesOutsideConstraints(hostnames, constraints);
  if (outside.length > 0) {
    throw new Error(
      `tls.dir ${dir}: the existing CA (${file}, SHA-256 ${fingerprint}) may only vouch for ${constraints.permittedDnsNames.join(', ')}, ` +
        `but the configured host names also include ${outside.join(', ')}. A CA's name constraints cannot be widened: remove those names from the configuration, ` +
        `or move ${FILES.caCert}, ${FILES.issuingCaCert} and ${FILES.issuingCaKey} out of ${dir} so that a new CA is created at the next start — ` +
        `and then give Jenkins (JVM truststore, git CA bundle) the new ${FILES.caCert}.`,
    );
  }
  return constraints;
}

/**
 * Loads the CA from `dir`, or creates it when none of its three files exists. Never replaces an
 * existing CA.
 */
export async function loadOrCreateCa(dir: string, hostnames: readonly string[], logger?: Logger): Promise<CertificateAuthority> {
  await ensureDir(dir);
  const rootFile = inDir(dir, 'caCert');
  const issuingFile = inDir(dir, 'issuingCaCert');
  const keyFile = inDir(dir, 'issuingCaKey');
  let rootPem = await readIfExists(rootFile);
  let issuingPem = await readIfExists(issuingFile);
  let keyPem = await readIfExists(keyFile);
  let created = false;

  if (rootPem === undefined && issuingPem === undefined && keyPem === undefined) {
    const made = await createCaCertificates(hostnames);
    ({ rootPem, issuingPem } = made);
    keyPem = made.issuingKeyPem;
    // The key first and the trust anchor last: an interrupted creation leaves an incomplete set,
    // which the next start reports instead of handing out a root whose issuing CA is missing.
    await writeFileAtomic(keyFile, keyPem, PRIVATE_MODE);
    await writeFileAtomic(issuingFile, issuingPem, PUBLIC_MODE);
    await writeFileAtomic(rootFile, rootPem, PUBLIC_MODE);
    created = true;
    logger?.info(`tls: created a new CA in ${dir} for ${hostnames.join(', ')}`);
  } else if (rootPem === undefined || issuingPem === undefined || keyPem === undefined) {
    const missing = [
      rootPem === undefined ? FILES.caCert : undefined,
      issuingPem === undefined ? FILES.issuingCaCert : undefined,
      keyPem === undefined ? FILES.issuingCaKey : undefined,
    ].filter(Boolean);
    throw new Error(
      `tls.dir ${dir}: the CA is incomplete (missing ${missing.join(', ')}). Restore the missing files, or move ` +
        `${FILES.caCert}, ${FILES.issuingCaCert} and ${FILES.issuingCaKey} away to create a new CA (and then give Jenkins the new ${FILES.caCert}).`,
    );
  } else {
    const mode = await fileMode(keyFile);
    if (mode !== undefined && (mode & 0o077) !== 0) {
      logger?.warn(`tls: ${keyFile} is readable by group or others (mode ${mode.toString(8)}); chmod 600 it`);
    }
  }

  const root = new NodeX509(rootPem);
  const issuing = new NodeX509(issuingPem);
  if (!root.ca || !root.checkIssued(root) || !root.verify(root.publicKey)) {
    throw new Error(`tls.dir ${dir}: ${FILES.caCert} is not a self-signed CA certificate`);
  }
  if (!issuing.ca || !issuing.checkIssued(root) || !issuing.verify(root.publicKey)) {
    throw new Error(`tls.dir ${dir}: ${FILES.issuingCaCert} is not a CA certificate issued by ${FILES.caCert}`);
  }
  if (!keyMatchesCertificate(keyPem, issuingPem)) {
    throw new Error(`tls.dir ${dir}: ${FILES.issuingCaKey} does not belong to ${FILES.issuingCaCert}`);
  }
  for (const [file, cert] of [[FILES.caCert, root], [FILES.issuingCaCert, issuing]] as const) {
    if (new Date(cert.validTo).getTime() <= Date.now()) {
      throw new Error(`tls.dir ${dir}: ${file} expired on ${cert.validTo}; move the CA files away to create a new CA and give Jenkins the new ${FILES.caCert}`);
    }
  }
  const rootConstraints = checkConstraints(dir, FILES.caCert, rootPem, root.fingerprint256, hostnames);
  checkConstraints(dir, FILES.issuingCaCert, issuingPem, issuing.fingerprint256, hostnames);

  const { key: signingKey } = await signingKeyFromPem(keyPem);
  return { rootPem, issuingPem, signingKey, fingerprint256: root.fingerprint256, permittedDnsNames: rootConstraints.permittedDnsNames, created };
}

/** Whether `certPem` (the first certificate of a chain) is vouched for by this CA's root. */
export function chainEndsAtRoot(chainPems: readonly string[], rootPem: string): boolean {
  try {
    const certs = chainPems.map((p) => new NodeX509(p));
    const root = new NodeX509(rootPem);
    for (let i = 0; i < certs.length; i++) {
      const cert = certs[i];
      if (cert.checkIssued(root) && cert.verify(createPublicKey(rootPem))) return true;
      const next = certs[i + 1];
      if (!next || !cert.checkIssued(next) || !cert.verify(next.publicKey)) return false;
    }
    return false;
  } catch {
    return false;
  }
}
