/**
 * Large real git histories for the memory tests, written in seconds with one `git fast-import`:
 * a long linear history (many commits, one file) and a wide one (many files in the root tree, each
 * commit changing two of them, so every commit has its own root tree).
 */
import { spawn } from 'node:child_process';

/** A clean environment for git (no inherited GIT_*, CA or proxy variables, no user configuration). */
export function cleanGitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: '/nonexistent',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    LC_ALL: 'C',
    // glibc would otherwise shrink and regrow its heap around every object fast-import writes, which makes large imports many times slower.
    MALLOC_TOP_PAD_: String(256 * 1024 ** 2),
    ...extra,
  };
}

export function git(gitDir: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { env: cleanGitEnv({ GIT_DIR: gitDir }), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out).toString('utf8')) : reject(new Error(`git ${args.join(' ')}: ${err}`))));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

const data = (s: string): string => `data ${Buffer.byteLength(s)}\n${s}\n`;
const who = (t: number): string => `author Dev <dev@example.com> ${t} +0000\ncommitter Dev <dev@example.com> ${t} +0000\n`;

/** `commits` commits on `branch`, one file; commit i's message is `linear i`. */
export function linearStream(branch: string, commits: number): string {
  const parts: string[] = [];
  for (let i = 1; i <= commits; i++) {
    parts.push(`commit refs/heads/${branch}\n${who(1_700_000_000 + i)}${data(`linear ${i}\n`)}`);
    if (i === 1) parts.push(`M 100644 inline README.md\n${data('history\n')}`);
    parts.push('\n');
  }
  parts.push('done\n');
  return parts.join('');
}

export const wideName = (i: number): string => `f${String(i).padStart(4, '0')}.txt`;

/**
 * `files` files in the root, then `commits - 1` commits each rewriting f0000.txt (its size changes
 * with the commit) and one other file.
 */
export function wideStream(branch: string, files: number, commits: number): string {
  const parts: string[] = [`commit refs/heads/${branch}\n${who(1_700_000_000)}${data('wide 0\n')}`];
  for (let f = 0; f < files; f++) parts.push(`M 100644 inline ${wideName(f)}\n${data(`file ${f}\n`)}`);
  parts.push('\n');
  for (let i = 1; i < commits; i++) {
    parts.push(`commit refs/heads/${branch}\n${who(1_700_000_000 + i)}${data(`wide ${i}\n`)}`);
    parts.push(`M 100644 inline ${wideName(0)}\n${data(`${'x'.repeat(i % 97)} ${i}\n`)}`);
    parts.push(`M 100644 inline ${wideName(1 + ((i * 7) % (files - 1)))}\n${data(`changed in ${i}\n`)}`);
    parts.push('\n');
  }
  parts.push('done\n');
  return parts.join('');
}

export async function fastImport(gitDir: string, stream: string): Promise<void> {
  await git(gitDir, ['fast-import', '--quiet', '--done'], stream);
}
