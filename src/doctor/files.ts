/**
 * The TLS directory and its exports: the files Jenkins and git are pointed at must be readable by
 * the user they run as (often not the sidecar's), the private keys by the sidecar alone.
 */
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { TLS_FILES } from '../tls';
import { fail, pass, type CheckResult } from './check';

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

const EXPORTS = [TLS_FILES.caCert, TLS_FILES.caBundle, TLS_FILES.javaTruststore];
const KEYS = [TLS_FILES.issuingCaKey, TLS_FILES.leafKey];

export async function checkTlsDir(dir: string): Promise<CheckResult[]> {
  let st;
  try {
    st = await fs.stat(dir);
  } catch {
    return [fail('tls.dir', `${dir} does not exist yet`, 'start `bitbucket-sidecar serve` once (it creates the CA) or run `bitbucket-sidecar ca export --config FILE --format pem --out ca.pem`')];
  }
  const results: CheckResult[] = [];
  if ((st.mode & 0o005) !== 0o005) {
    results.push(fail('tls.dir', `${dir} is mode ${octal(st.mode)} (owner uid ${st.uid}): other users cannot reach the exports in it`, `chmod 755 ${dir} so Jenkins and git, running as another user, can read the exports`));
  } else {
    results.push(pass('tls.dir', `${dir} is mode ${octal(st.mode)} (owner uid ${st.uid})`));
  }
  for (const name of EXPORTS) {
    const file = path.join(dir, name);
    const check = `export ${name}`;
    try {
      const f = await fs.stat(file);
      await fs.access(file, constants.R_OK);
      if ((f.mode & 0o004) === 0) results.push(fail(check, `${file} is mode ${octal(f.mode)}: only uid ${f.uid}${f.mode & 0o040 ? ` and gid ${f.gid}` : ''} can read it`, `chmod 644 ${file} (it holds no secret; Jenkins and git must read it)`));
      else results.push(pass(check, `readable by everyone (mode ${octal(f.mode)})`));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      results.push(fail(check, code === 'ENOENT' ? `${file} is missing` : `${file} cannot be read (${code})`, code === 'ENOENT' ? 'start the sidecar with server.https once, or run `bitbucket-sidecar ca export`' : `fix the owner or mode of ${file}`));
    }
  }
  for (const name of KEYS) {
    const file = path.join(dir, name);
    try {
      const f = await fs.stat(file);
      if (f.mode & 0o077) results.push(fail(`key ${name}`, `${file} is mode ${octal(f.mode)}: a private key others can read`, `chmod 600 ${file}`));
      else results.push(pass(`key ${name}`, `private to uid ${f.uid} (mode ${octal(f.mode)})`));
    } catch {
      // Not written yet (the sidecar issues it on start): nothing to protect.
    }
  }
  return results;
}
