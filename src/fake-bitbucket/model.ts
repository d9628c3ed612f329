/**
 * In-memory model of the fake Bitbucket: workspaces, projects, repositories (metadata; the content lives in
 * real git repositories), pull requests, webhooks and build statuses. Lookups accept slugs
 * case-insensitively and `{uuid}` forms, like Bitbucket Cloud.
 */
import { isBracedUuid, isoMicros } from './ids';

export interface FakeUser {
  uuid: string;
  accountId: string;
  nickname: string;
  displayName: string;
  email: string;
  createdOn: string;
}

export interface FakeWorkspace {
  uuid: string;
  slug: string;
  name: string;
  isPrivate: boolean;
  /** `personal` = a user's own workspace (owner is that user) */
  kind: 'team' | 'personal';
  /** nickname of the owning user for personal workspaces */
  owner?: string;
  createdOn: string;
}

export interface FakeProject {
  uuid: string;
  key: string;
  name: string;
  workspace: string;
  description: string;
  isPrivate: boolean;
  createdOn: string;
  updatedOn: string;
}

/** The upstream person's role on a repository (drives `role=` filtering). */
export type RepoRole = 'owner' | 'admin' | 'contributor' | 'member';

export interface FakeRepository {
  uuid: string;
  /** workspace slug (lowercase) */
  workspace: string;
  /** repository slug (lowercase) */
  slug: string;
  name: string;
  projectKey: string;
  description: string;
  isPrivate: boolean;
  language: string;
  mainBranch: string;
  createdOn: string;
  updatedOn: string;
  /** uuid of the repository this one was forked from */
  parent?: string;
  role: RepoRole;
  forkPolicy: 'allow_forks' | 'no_public_forks' | 'no_forks';
  hasIssues: boolean;
  hasWiki: boolean;
  /** absolute path of the bare git repository */
  gitDir: string;
}

export type PullRequestState = 'OPEN' | 'MERGED' | 'DECLINED' | 'SUPERSEDED';

export interface FakeParticipant {
  nickname: string;
  role: 'REVIEWER' | 'PARTICIPANT';
  approved: boolean;
  state: 'approved' | 'changes_requested' | null;
}

export interface FakePullRequest {
  id: number;
  /** uuid of the destination repository (the one the PR belongs to) */
  repository: string;
  title: string;
  description: string;
  state: PullRequestState;
  draft: boolean;
  /** nickname of the author */
  author: string;
  source: { repository: string; branch: string; commit?: string };
  destination: { branch: string; commit?: string };
  createdOn: string;
  updatedOn: string;
  closeSourceBranch: boolean;
  participants: FakeParticipant[];
  closedBy?: string;
  mergeCommit?: string;
}

export interface FakeHook {
  uuid: string;
  repository: string;
  description: string;
  url: string;
  active: boolean;
  skipCertVerification: boolean;
  events: string[];
  /** stored, never returned */
  secret: string | null;
  createdAt: string;
  /** raw body of the last POST/PUT that created or updated it (empty for seeded hooks) */
  body: Buffer;
}

export interface FakeBuildStatus {
  repository: string;
  /** full 40-char commit hash */
  commit: string;
  key: string;
  state: string;
  name: string | null;
  url: string;
  description: string | null;
  refname: string | null;
  createdOn: string;
  updatedOn: string;
  /** raw request body of the last POST, byte for byte */
  body: Buffer;
  /** parsed request body */
  fields: Record<string, unknown>;
}

function lc(s: string): string {
  return s.toLowerCase();
}

export class FakeModel {
  readonly users: FakeUser[] = [];
  readonly workspaces: FakeWorkspace[] = [];
  readonly projects: FakeProject[] = [];
  readonly repositories: FakeRepository[] = [];
  readonly pullRequests: FakePullRequest[] = [];
  readonly hooks: FakeHook[] = [];
  readonly statuses: FakeBuildStatus[] = [];
  /** `ws/oldslug` → repository uuid */
  readonly redirects = new Map<string, string>();

  constructor(readonly currentUser: FakeUser) {
    this.users.push(currentUser);
  }

  /** The upstream person (`GET /2.0/user`). */
  get user(): FakeUser {
    return this.currentUser;
  }

  findUser(id: string): FakeUser | undefined {
    const k = lc(id);
    return this.users.find(
      (u) => lc(u.nickname) === k || lc(u.uuid) === k || u.accountId === id || lc(u.email) === k,
    );
  }

  findWorkspace(id: string): FakeWorkspace | undefined {
    const k = lc(id);
    if (isBracedUuid(id)) return this.workspaces.find((w) => lc(w.uuid) === k);
    return this.workspaces.find((w) => w.slug === k);
  }

  repositoryByUuid(uuid: string): FakeRepository | undefined {
    const k = lc(uuid);
    return this.repositories.find((r) => lc(r.uuid) === k);
  }

  /** Current repository named by a workspace id (slug or {uuid}) and a repository id (slug or {uuid}). */
  findRepository(workspace: string, repo: string): FakeRepository | undefined {
    const ws = this.findWorkspace(workspace);
    if (!ws) return undefined;
    if (isBracedUuid(repo)) {
      const r = this.repositoryByUuid(repo);
      return r && r.workspace === ws.slug ? r : undefined;
    }
    const k = lc(repo);
    return this.repositories.find((r) => r.workspace === ws.slug && r.slug === k);
  }

  /** Repository an old (renamed-away) slug now redirects to. */
  redirectFor(workspace: string, repo: string): FakeRepository | undefined {
    const ws = this.findWorkspace(workspace);
    if (!ws) return undefined;
    const uuid = this.redirects.get(`${ws.slug}/${lc(repo)}`);
    return uuid ? this.repositoryByUuid(uuid) : undefined;
  }

  repositoriesOf(workspace: string): FakeRepository[] {
    const ws = this.findWorkspace(workspace);
    return ws ? this.repositories.filter((r) => r.workspace === ws.slug) : [];
  }

  projectsOf(workspace: string): FakeProject[] {
    const ws = this.findWorkspace(workspace);
    return ws ? this.projects.filter((p) => p.workspace === ws.slug) : [];
  }

  findProject(workspace: string, key: string): FakeProject | undefined {
    const ws = this.findWorkspace(workspace);
    if (!ws) return undefined;
    if (isBracedUuid(key)) return this.projects.find((p) => p.workspace === ws.slug && lc(p.uuid) === lc(key));
    return this.projects.find((p) => p.workspace === ws.slug && lc(p.key) === lc(key));
  }

  workspaceOf(repo: FakeRepository): FakeWorkspace {
    const ws = this.findWorkspace(repo.workspace);
    if (!ws) throw new Error(`workspace ${repo.workspace} missing`);
    return ws;
  }

  projectOf(repo: FakeRepository): FakeProject | undefined {
    return this.findProject(repo.workspace, repo.projectKey);
  }

  forksOf(repo: FakeRepository): FakeRepository[] {
    return this.repositories.filter((r) => r.parent === repo.uuid);
  }

  /** The repository, its ancestors and all their forks (Bitbucket shares objects inside a fork network). */
  networkOf(repo: FakeRepository): FakeRepository[] {
    let root = repo;
    const seen = new Set<string>();
    while (root.parent && !seen.has(root.uuid)) {
      seen.add(root.uuid);
      const p = this.repositoryByUuid(root.parent);
      if (!p) break;
      root = p;
    }
    const out: FakeRepository[] = [];
    const walk = (r: FakeRepository): void => {
      if (out.includes(r)) return;
      out.push(r);
      for (const f of this.forksOf(r)) walk(f);
    };
    walk(root);
    return out;
  }

  /**
   * Rename a repository: its slug (and by default name) change, the old slug answers 301 to the new location.
   */
  renameRepository(workspace: string, repo: string, newSlug: string, newName?: string): FakeRepository {
    const r = this.findRepository(workspace, repo);
    if (!r) throw new Error(`no repository ${workspace}/${repo}`);
    const slug = lc(newSlug);
    if (this.repositories.some((o) => o !== r && o.workspace === r.workspace && o.slug === slug)) {
      throw new Error(`repository ${r.workspace}/${slug} already exists`);
    }
    this.redirects.set(`${r.workspace}/${r.slug}`, r.uuid);
    this.redirects.delete(`${r.workspace}/${slug}`);
    r.slug = slug;
    r.name = newName ?? newSlug;
    r.updatedOn = isoMicros(Date.now(), `rename:${r.uuid}`);
    return r;
  }

  pullRequestsOf(repo: FakeRepository): FakePullRequest[] {
    return this.pullRequests.filter((p) => p.repository === repo.uuid);
  }

  findPullRequest(repo: FakeRepository, id: number): FakePullRequest | undefined {
    return this.pullRequests.find((p) => p.repository === repo.uuid && p.id === id);
  }

  /** Add a pull request to `destination` (id assigned per repository). */
  addPullRequest(
    destination: FakeRepository,
    init: Partial<Omit<FakePullRequest, 'id' | 'repository' | 'source' | 'destination'>> & {
      source: { repository?: FakeRepository; branch: string };
      destination?: { branch?: string };
      title: string;
    },
  ): FakePullRequest {
    const id = this.pullRequestsOf(destination).reduce((m, p) => Math.max(m, p.id), 0) + 1;
    const now = isoMicros(Date.now(), `pr:${destination.uuid}:${id}`);
    const pr: FakePullRequest = {
      id,
      repository: destination.uuid,
      title: init.title,
      description: init.description ?? '',
      state: init.state ?? 'OPEN',
      draft: init.draft ?? false,
      author: init.author ?? this.currentUser.nickname,
      source: { repository: (init.source.repository ?? destination).uuid, branch: init.source.branch },
      destination: { branch: init.destination?.branch ?? destination.mainBranch },
      createdOn: init.createdOn ?? now,
      updatedOn: init.updatedOn ?? now,
      closeSourceBranch: init.closeSourceBranch ?? false,
      participants: init.participants ?? [],
      closedBy: init.closedBy,
      mergeCommit: init.mergeCommit,
    };
    this.pullRequests.push(pr);
    return pr;
  }

  hooksOf(repo: FakeRepository): FakeHook[] {
    return this.hooks.filter((h) => h.repository === repo.uuid);
  }

  statusesOf(repo: FakeRepository, commit?: string): FakeBuildStatus[] {
    return this.statuses.filter((s) => s.repository === repo.uuid && (!commit || s.commit === commit));
  }
}
