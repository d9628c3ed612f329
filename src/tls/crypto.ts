/**
 * The one place that wires the X.509 library to Node's WebCrypto and converts keys between
 * WebCrypto (what @peculiar/x509 signs with) and PEM/KeyObject (what node:tls and the disk use).
 */
import 'reflect-metadata'; // @peculiar/x509 resolves its algorithms through tsyringe, which needs it
import * as x509 from '@peculiar/x509';
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto';

export { x509 };

/** The project compiles without DOM types, so WebCrypto types come from node:crypto. */
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export const webCrypto = webcrypto;
// Same object either way; the cast bridges Node's and the DOM's (structurally drifting) typings.
x509.cryptoProvider.set(webCrypto as never);

export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** `extractable: false` for a key that must never be written anywhere (the root CA's). */
export async function generateP256(extractable = true): Promise<CryptoKeyPair> {
  return webCrypto.subtle.generateKey(EC_P256, extractable, ['sign', 'verify']);
}

export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webCrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Imports a P-256 private key from PEM (PKCS#8 or SEC1) as a non-extractable signing key. */
export async function signingKeyFromPem(pem: string): Promise<{ key: CryptoKey; keyObject: KeyObject }> {
  const keyObject = createPrivateKey(pem);
  if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`expected an ECDSA P-256 private key, got ${keyObject.asymmetricKeyType ?? 'unknown'} ${keyObject.asymmetricKeyDetails?.namedCurve ?? ''}`.trim());
  }
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  const key = await webCrypto.subtle.importKey('pkcs8', der, EC_P256, false, ['sign']);
  return { key, keyObject };
}

/** True when the private key (PEM) belongs to the certificate's public key. */
export function keyMatchesCertificate(keyPem: string, certPem: string): boolean {
  const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  const fromCert = createPublicKey(certPem).export({ type: 'spki', format: 'der' });
  return Buffer.compare(fromKey, fromCert) === 0;
}

/** A positive, non-zero 128-bit serial number in hex (RFC 5280 §4.1.2.2 allows up to 20 octets). */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x7f) | 0x01;
  return bytes.toString('hex');
}
