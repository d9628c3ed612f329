import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * Optional access to the Branch Source plugin's recorded Bitbucket payloads, which live outside the
 * repository (a `shared/` folder beside the checkout, or SIDECAR_RECORDED_PAYLOADS). The suite must
 * pass without them: tests use the in-repo fixtures (test/fixtures) and only add a comparison when
 * these are present. This is the one test file allowed to name a path outside the repository
 * (test/self-contained.test.ts enforces that).
 */
export const RECORDED_ENV = 'SIDECAR_RECORDED_PAYLOADS';
const BESIDE_THE_CLONE = path.resolve(__dirname, '..', '..', '..', 'shared', 'reference', 'bitbucket-payloads');

export interface RecordedPayloads {
  dir: string;
  /** The bytes of `rel` (e.g. `webhooks/cloud--signed_payload.json`); throws when the file is missing. */
  read(rel: string): Buffer;
  readme(): string;
}

export type Recorded = { present: true; payloads: RecordedPayloads; note: string } | { present: false; dir: string; note: string };

export function recordedPayloads(): Recorded {
  const dir = process.env[RECORDED_ENV] || BESIDE_THE_CLONE;
  if (!existsSync(path.join(dir, 'README.md'))) {
    return { present: false, dir, note: `recorded payloads not present (${dir}): compared against in-repo fixtures only` };
  }
  const read = (rel: string): Buffer => {
    const file = path.join(dir, rel);
    // Present but incomplete is a broken checkout of the payloads, not a reason to skip.
    if (!existsSync(file)) throw new Error(`recorded payload ${file} is missing although ${dir} is present`);
    return readFileSync(file);
  };
  return {
    present: true,
    payloads: { dir, read, readme: () => read('README.md').toString('utf8') },
    note: `recorded payloads present (${dir}): compared against them as well as the in-repo fixtures`,
  };
}
