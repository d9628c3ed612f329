/**
 * Large-workspace generator for benchmarks: N repositories sharing one template commit (the standard file
 * set), each with its own main commit, branches, annotated tags and open pull requests, spread across
 * projects. Repository slugs are `repo-0001`…; project keys `P1`…; branches `main`, `feature/b1`…;
 * PR k comes from `feature/b<((k-1) mod (branches-1))+1>` (or an extra `feature/pr-k` branch when the
 * repository has no other branch); tags `v1.0`, `v1.1`…
 */
import { isoMicros, stableUuid } from './ids';
import type { FakeProject } from './model';
import { ALICE, BOB, JDOE, SEED_EPOCH_SECONDS, baseFiles, makeWorkspace, person } from './seed-common';
import type { PlanCommit, PlanPullRequest, PlanRepo, PlanTagObject, SeedPlan } from './seed-plan';
import type { GeneratedWorkspaceSpec } from './types';

export function generatedSlug(i: number): string {
  return `repo-${String(i).padStart(4, '0')}`;
}

export function generatedSeed(spec: GeneratedWorkspaceSpec): SeedPlan {
  const ws = spec.workspace.toLowerCase();
  if (!/^[a-z0-9][a-z0-9_.-]*$/.test(ws)) throw new Error(`invalid workspace slug ${spec.workspace}`);
  const nRepos = Math.max(0, Math.floor(spec.repositories));
  const nBranches = Math.max(1, Math.floor(spec.branches));
  const nPrs = Math.max(0, Math.floor(spec.pullRequests));
  const nTags = Math.max(0, Math.floor(spec.tags));
  const nProjects = Math.max(1, Math.floor(spec.projects ?? 1));

  const projects: FakeProject[] = [];
  for (let k = 1; k <= nProjects; k++) {
    const createdOn = isoMicros(Date.UTC(2021, 2, 1, 12, 0, 0), `project:${ws}/P${k}`);
    projects.push({
      uuid: stableUuid('project', ws, `P${k}`),
      key: `P${k}`,
      name: `Project ${k}`,
      workspace: ws,
      description: '',
      isPrivate: true,
      createdOn,
      updatedOn: createdOn,
    });
  }

  const commits: PlanCommit[] = [
    {
      id: 'template',
      parents: [],
      author: person(ALICE),
      time: SEED_EPOCH_SECONDS,
      message: 'Initial commit\n',
      files: baseFiles('template'),
    },
  ];
  const tagObjects: PlanTagObject[] = [];
  const repos: PlanRepo[] = [];
  const pullRequests: PlanPullRequest[] = [];

  for (let i = 1; i <= nRepos; i++) {
    const slug = generatedSlug(i);
    const full = `${ws}/${slug}`;
    const t0 = SEED_EPOCH_SECONDS + 3600 + i * 60;
    const id = (s: string): string => `${full}:${s}`;
    commits.push({
      id: id('main'),
      parents: ['template'],
      author: person(BOB),
      time: t0,
      message: `Set up ${full}\n`,
      files: [{ path: 'README.md', content: `# ${full}\n\nGenerated repository.\n` }],
    });
    const branches: Record<string, string> = { main: id('main') };
    const addBranch = (name: string, n: number): void => {
      commits.push({
        id: id(`b:${name}`),
        parents: [id('main')],
        author: person(n % 2 ? ALICE : BOB),
        time: t0 + n,
        message: `Work on ${name}\n`,
        files: [{ path: 'BRANCH.txt', content: `${full} ${name}\n` }],
      });
      branches[name] = id(`b:${name}`);
    };
    for (let b = 1; b < nBranches; b++) addBranch(`feature/b${b}`, b);
    const tags: Record<string, string> = {};
    for (let t = 0; t < nTags; t++) {
      const name = `v1.${t}`;
      tagObjects.push({ id: id(`t:${name}`), name, target: id('main'), tagger: person(ALICE), time: t0 + 30, message: `Release ${name}\n` });
      tags[name] = id(`t:${name}`);
    }
    for (let p = 1; p <= nPrs; p++) {
      let source: string;
      if (nBranches > 1) source = `feature/b${((p - 1) % (nBranches - 1)) + 1}`;
      else {
        source = `feature/pr-${p}`;
        addBranch(source, 100 + p);
      }
      pullRequests.push({
        repo: full,
        id: p,
        title: `Change ${p} of ${slug}`,
        description: '',
        state: 'OPEN',
        draft: false,
        author: p % 2 ? ALICE.nickname : BOB.nickname,
        sourceRepo: full,
        sourceBranch: source,
        destinationBranch: 'main',
        createdOn: isoMicros((t0 + 40 + p) * 1000, `pr:${full}:${p}c`),
        updatedOn: isoMicros((t0 + 50 + p) * 1000, `pr:${full}:${p}u`),
        participants: [],
      });
    }
    repos.push({
      workspace: ws,
      slug,
      name: slug,
      uuid: stableUuid('repository', full),
      projectKey: `P${((i - 1) % nProjects) + 1}`,
      description: '',
      language: '',
      isPrivate: true,
      mainBranch: 'main',
      role: 'admin',
      createdOn: isoMicros((t0 - 60) * 1000, `created:${full}`),
      updatedOn: isoMicros((t0 + 60) * 1000, `updated:${full}`),
      branches,
      tags,
    });
  }

  return {
    currentUser: JDOE,
    otherUsers: [ALICE, BOB],
    workspaces: [makeWorkspace(ws, `Workspace ${ws}`, 'team')],
    projects,
    commits,
    tagObjects,
    repos,
    pullRequests,
    hooks: [],
  };
}
