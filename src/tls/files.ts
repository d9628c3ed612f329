/** File names inside `tls.dir` and the permission-aware reads used for them (writes: src/core/write-file.ts). */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export const FILES = {
  /** The root: the trust anchor Jenkins and git are given. Its private key is never stored. */
  caCert: 'ca.pem',
  /** The issuing CA, signed once by the root; its key signs the leaves. */
  issuingCaCert: 'issuing-ca.pem',
  issuingCaKey: 'issuing-ca.key',
  leafKey: 'leaf.key',
  /** The leaf followed by the issuing CA: the chain the server sends. */
  leafCert: 'leaf.pem',
  caBundle: 'ca-bundle.pem',
  javaTruststore: 'truststore.p12',
} as const;

export const PRIVATE_MODE = 0o600;
export const PUBLIC_MODE = 0o644;

export function inDir(dir: string, name: keyof typeof FILES): string {
  return path.join(dir, FILES[name]);
}

/** Creates the directory (0700 when we create it; an existing directory keeps its mode). */
export async function ensureDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
}

export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The permission bits of a file, or undefined when it does not exist. */
export async function fileMode(file: string): Promise<number | undefined> {
  try {
    return (await fs.stat(file)).mode & 0o777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
