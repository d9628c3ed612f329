/** Turns a SeedPlan into real git repositories under dataDir and a populated FakeModel. */
import { join } from 'node:path';
import { createRepoDir, createStore, fastImport, mapLimit, type RepoRef } from './git-store';
import { FakeModel, type FakeRepository } from './model';
import type { SeedPlan } from './seed-plan';

export async function applySeed(plan: SeedPlan, dataDir: string): Promise<FakeModel> {
  const storeDir = join(dataDir, 'store.git');
  await createStore(storeDir);
  const shas = await fastImport(storeDir, plan.commits, plan.tagObjects);
  const tagTargets = new Map(plan.tagObjects.map((t) => [t.id, t.target]));
  const sha = (id: string): string => {
    const s = shas.get(id);
    if (!s) throw new Error(`unknown plan id ${id}`);
    return s;
  };

  const model = new FakeModel(plan.currentUser);
  model.users.push(...plan.otherUsers);
  model.workspaces.push(...plan.workspaces);
  model.projects.push(...plan.projects);

  const storeObjects = join(storeDir, 'objects');
  const byFull = new Map<string, FakeRepository>();
  for (const r of plan.repos) {
    const repo: FakeRepository = {
      uuid: r.uuid,
      workspace: r.workspace,
      slug: r.slug,
      name: r.name,
      projectKey: r.projectKey,
      description: r.description,
      isPrivate: r.isPrivate,
      language: r.language,
      mainBranch: r.mainBranch,
      createdOn: r.createdOn,
      updatedOn: r.updatedOn,
      role: r.role,
      forkPolicy: 'allow_forks',
      hasIssues: false,
      hasWiki: false,
      gitDir: join(dataDir, 'repos', r.workspace, `${r.slug}.git`),
    };
    byFull.set(`${r.workspace}/${r.slug}`, repo);
    model.repositories.push(repo);
  }
  for (const r of plan.repos) {
    if (r.parent) byFull.get(`${r.workspace}/${r.slug}`)!.parent = byFull.get(r.parent)?.uuid;
  }

  await mapLimit(plan.repos, 32, async (r) => {
    const refs: RepoRef[] = [];
    for (const [name, id] of Object.entries(r.branches)) refs.push({ ref: `refs/heads/${name}`, sha: sha(id) });
    for (const [name, id] of Object.entries(r.tags)) {
      const target = tagTargets.get(id);
      refs.push(target ? { ref: `refs/tags/${name}`, sha: sha(id), peeled: sha(target) } : { ref: `refs/tags/${name}`, sha: sha(id) });
    }
    await createRepoDir(byFull.get(`${r.workspace}/${r.slug}`)!.gitDir, storeObjects, r.mainBranch, refs, r.description);
  });

  for (const p of plan.pullRequests) {
    const dest = byFull.get(p.repo);
    const src = byFull.get(p.sourceRepo);
    if (!dest || !src) throw new Error(`pull request ${p.repo}#${p.id}: unknown repository`);
    model.pullRequests.push({
      id: p.id,
      repository: dest.uuid,
      title: p.title,
      description: p.description,
      state: p.state,
      draft: p.draft,
      author: p.author,
      source: { repository: src.uuid, branch: p.sourceBranch },
      destination: { branch: p.destinationBranch },
      createdOn: p.createdOn,
      updatedOn: p.updatedOn,
      closeSourceBranch: false,
      participants: p.participants,
      closedBy: p.closedBy,
    });
  }
  for (const h of plan.hooks) {
    const repo = byFull.get(h.repo);
    if (!repo) throw new Error(`hook: unknown repository ${h.repo}`);
    model.hooks.push({
      uuid: h.uuid,
      repository: repo.uuid,
      description: h.description,
      url: h.url,
      active: h.active,
      skipCertVerification: false,
      events: [...h.events],
      secret: null,
      createdAt: h.createdAt,
      body: Buffer.alloc(0),
    });
  }
  return model;
}
