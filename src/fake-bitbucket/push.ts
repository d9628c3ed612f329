/** Server-side ref changes: a real commit via `git fast-import`, branch creation and deletion. */
import { fastImportPath } from './git-store';
import { git, runGit } from './git-exec';
import type { FakeRepository } from './model';
import type { FakeState } from './state';

export const PUSHER = { name: 'Test Pusher', email: 'pusher@example.com' };

function data(s: string): string {
  return `data ${Buffer.byteLength(s, 'utf8')}\n${s}\n`;
}

async function checkBranchName(name: string): Promise<void> {
  const r = await runGit(['check-ref-format', '--branch', name]);
  if (r.code !== 0 || !name || name.startsWith('-')) throw new Error(`invalid branch name: ${name}`);
}

/**
 * Commit `files` (path → content) on `branch` (created from the main branch when missing) and return the
 * new commit's full hash.
 */
export async function pushCommit(
  state: FakeState,
  repo: FakeRepository,
  branch: string,
  files: Record<string, string>,
  message = 'Update files',
): Promise<string> {
  await checkBranchName(branch);
  return state.withRepoLock(repo, async () => {
    const reader = state.reader(repo);
    reader.invalidate();
    const refs = await reader.refs();
    const parent = refs.branches.get(branch) ?? refs.branches.get(repo.mainBranch);
    const now = Math.floor(Date.now() / 1000);
    const who = `${PUSHER.name} <${PUSHER.email}> ${now} +0000`;
    const parts = [`commit refs/heads/${branch}\n`, `author ${who}\ncommitter ${who}\n`, data(message.endsWith('\n') ? message : `${message}\n`)];
    if (parent) parts.push(`from ${parent}\n`);
    for (const [path, content] of Object.entries(files)) {
      parts.push(`M 100644 inline ${fastImportPath(path)}\n${data(content)}`);
    }
    parts.push('\ndone\n');
    const r = await runGit(['fast-import', '--quiet', '--done'], { gitDir: repo.gitDir, input: parts.join('') });
    if (r.code !== 0) throw new Error(`pushCommit failed: ${r.stderr.trim()}`);
    const sha = (await git(['rev-parse', '--verify', `refs/heads/${branch}^{commit}`], { gitDir: repo.gitDir })).trim();
    state.markPushed(repo);
    return sha;
  });
}

/** Create `branch` at `target` (full hash); false if it already exists. */
export async function createBranch(state: FakeState, repo: FakeRepository, branch: string, target: string): Promise<boolean> {
  await checkBranchName(branch);
  return state.withRepoLock(repo, async () => {
    const r = await runGit(['update-ref', `refs/heads/${branch}`, target, '0'.repeat(40)], { gitDir: repo.gitDir });
    state.markPushed(repo);
    return r.code === 0;
  });
}

export async function deleteBranch(state: FakeState, repo: FakeRepository, branch: string): Promise<boolean> {
  return state.withRepoLock(repo, async () => {
    const r = await runGit(['update-ref', '-d', `refs/heads/${branch}`], { gitDir: repo.gitDir });
    state.markPushed(repo);
    return r.code === 0;
  });
}
