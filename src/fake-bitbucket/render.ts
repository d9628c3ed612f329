/**
 * JSON renderers imitating the recorded Bitbucket Cloud payloads (`type` fields, `links`, µs timestamps).
 * All API links are absolute on the fake's own origin (`${url}/2.0/...`), web links on `${url}/...`.
 */
import { createHash } from 'node:crypto';
import type { CommitObject, GitIdent, TagObject } from '../git-objects/parse';
import { GitRenderer, href, rendered, type Json } from '../git-objects/render';
import { encodeSegment } from './ids';
import type {
  FakeBuildStatus,
  FakeHook,
  FakeModel,
  FakeParticipant,
  FakeProject,
  FakePullRequest,
  FakeRepository,
  FakeUser,
  FakeWorkspace,
} from './model';

type J = Json;

export { rendered };

function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase())
    .join('')
    .slice(0, 2);
}

export interface PullRequestContext {
  destination: FakeRepository;
  source: FakeRepository;
  sourceHash: string;
  destinationHash: string;
}

export class Renderer {
  constructor(
    readonly url: string,
    private readonly model: FakeModel,
  ) {}

  get api(): string {
    return `${this.url}/2.0`;
  }

  repoApi(r: FakeRepository): string {
    return `${this.api}/repositories/${r.workspace}/${r.slug}`;
  }

  repoWeb(r: FakeRepository): string {
    return `${this.url}/${r.workspace}/${r.slug}`;
  }

  cloneHttps(r: FakeRepository): string {
    const u = new URL(this.url);
    return `${u.protocol}//${this.model.currentUser.nickname}@${u.host}/${r.workspace}/${r.slug}.git`;
  }

  workspaceAvatar(ws: FakeWorkspace): string {
    const ts = parseInt(createHash('sha1').update(ws.uuid).digest('hex').slice(0, 7), 16);
    return `${this.url}/workspaces/${ws.slug}/avatar/?ts=${ts}`;
  }

  repoAvatar(r: FakeRepository): string {
    return `https://bytebucket.org/ravatar/${encodeSegment(r.uuid)}?ts=default`;
  }

  userMini(u: FakeUser): J {
    return {
      display_name: u.displayName,
      links: {
        self: href(`${this.api}/users/${encodeSegment(u.uuid)}`),
        avatar: href(`https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/initials/${initials(u.displayName)}-3.png`),
        html: href(`${this.url}/${encodeSegment(u.uuid)}/`),
      },
      type: 'user',
      uuid: u.uuid,
      account_id: u.accountId,
      nickname: u.nickname,
    };
  }

  userByNickname(nickname: string): J {
    const u = this.model.findUser(nickname);
    return u
      ? this.userMini(u)
      : { display_name: nickname, type: 'user', nickname, uuid: null, account_id: null, links: {} };
  }

  user(u: FakeUser): J {
    const mini = this.userMini(u);
    return {
      ...mini,
      links: {
        ...(mini.links as J),
        repositories: href(`${this.api}/repositories/${encodeSegment(u.uuid)}`),
        snippets: href(`${this.api}/snippets/${encodeSegment(u.uuid)}`),
        hooks: href(`${this.api}/workspaces/${encodeSegment(u.uuid)}/hooks`),
      },
      created_on: u.createdOn,
      has_2fa_enabled: null,
      username: u.nickname,
      is_staff: false,
      account_status: 'active',
      location: null,
    };
  }

  workspaceMini(ws: FakeWorkspace): J {
    return {
      type: 'workspace',
      uuid: ws.uuid,
      name: ws.name,
      slug: ws.slug,
      links: {
        avatar: href(this.workspaceAvatar(ws)),
        html: href(`${this.url}/${ws.slug}/`),
        self: href(`${this.api}/workspaces/${ws.slug}`),
      },
    };
  }

  workspace(ws: FakeWorkspace): J {
    const base = `${this.api}/workspaces/${ws.slug}`;
    return {
      type: 'workspace',
      uuid: ws.uuid,
      name: ws.name,
      slug: ws.slug,
      is_private: ws.isPrivate,
      is_privacy_enforced: false,
      links: {
        avatar: href(this.workspaceAvatar(ws)),
        html: href(`${this.url}/${ws.slug}/`),
        members: href(`${base}/members`),
        owners: href(`${base}/members?q=permission%3D%22owner%22`),
        projects: href(`${base}/projects`),
        repositories: href(`${this.api}/repositories/${ws.slug}`),
        snippets: href(`${this.api}/snippets/${ws.slug}`),
        self: href(base),
      },
      created_on: ws.createdOn,
    };
  }

  projectMini(p: FakeProject): J {
    return {
      type: 'project',
      key: p.key,
      uuid: p.uuid,
      name: p.name,
      links: {
        self: href(`${this.api}/workspaces/${p.workspace}/projects/${encodeSegment(p.key)}`),
        html: href(`${this.url}/${p.workspace}/workspace/projects/${encodeSegment(p.key)}`),
        avatar: href(`${this.url}/${p.workspace}/workspace/projects/${encodeSegment(p.key)}/avatar/32?ts=1644525770`),
      },
    };
  }

  project(p: FakeProject): J {
    const ws = this.model.findWorkspace(p.workspace);
    return {
      ...this.projectMini(p),
      owner: ws ? this.owner(ws) : null,
      workspace: ws ? this.workspaceMini(ws) : null,
      description: p.description,
      is_private: p.isPrivate,
      created_on: p.createdOn,
      updated_on: p.updatedOn,
      has_publicly_visible_repos: this.model.repositories.some((r) => r.workspace === p.workspace && r.projectKey === p.key && !r.isPrivate),
    };
  }

  owner(ws: FakeWorkspace): J {
    if (ws.kind === 'personal' && ws.owner) {
      const u = this.model.findUser(ws.owner);
      if (u) return { ...this.userMini(u), username: u.nickname };
    }
    return {
      display_name: ws.name,
      links: {
        self: href(`${this.api}/workspaces/${encodeSegment(ws.uuid)}`),
        avatar: href(this.workspaceAvatar(ws)),
        html: href(`${this.url}/${encodeSegment(ws.uuid)}/`),
      },
      type: 'team',
      uuid: ws.uuid,
      username: ws.slug,
    };
  }

  repoMini(r: FakeRepository): J {
    return {
      type: 'repository',
      full_name: `${r.workspace}/${r.slug}`,
      links: {
        self: href(this.repoApi(r)),
        html: href(this.repoWeb(r)),
        avatar: href(this.repoAvatar(r)),
      },
      name: r.name,
      uuid: r.uuid,
    };
  }

  repository(r: FakeRepository): J {
    const ws = this.model.workspaceOf(r);
    const p = this.model.projectOf(r);
    const api = this.repoApi(r);
    const parent = r.parent ? this.model.repositoryByUuid(r.parent) : undefined;
    return {
      type: 'repository',
      full_name: `${r.workspace}/${r.slug}`,
      links: {
        self: href(api),
        html: href(this.repoWeb(r)),
        avatar: href(this.repoAvatar(r)),
        pullrequests: href(`${api}/pullrequests`),
        commits: href(`${api}/commits`),
        forks: href(`${api}/forks`),
        watchers: href(`${api}/watchers`),
        branches: href(`${api}/refs/branches`),
        tags: href(`${api}/refs/tags`),
        downloads: href(`${api}/downloads`),
        source: href(`${api}/src`),
        clone: [
          { name: 'https', href: this.cloneHttps(r) },
          { name: 'ssh', href: `git@bitbucket.org:${r.workspace}/${r.slug}.git` },
        ],
        hooks: href(`${api}/hooks`),
      },
      name: r.name,
      slug: r.slug,
      description: r.description,
      scm: 'git',
      website: null,
      owner: this.owner(ws),
      workspace: this.workspaceMini(ws),
      is_private: r.isPrivate,
      project: p ? this.projectMini(p) : null,
      fork_policy: r.forkPolicy,
      created_on: r.createdOn,
      updated_on: r.updatedOn,
      size: 80000 + (parseInt(createHash('sha1').update(r.uuid).digest('hex').slice(0, 4), 16) % 20000),
      language: r.language,
      uuid: r.uuid,
      mainbranch: { name: r.mainBranch, type: 'branch' },
      override_settings: { default_merge_strategy: false, branching_model: false },
      parent: parent ? this.repoMini(parent) : null,
      enforced_signed_commits: null,
      has_issues: r.hasIssues,
      has_wiki: r.hasWiki,
    };
  }

  author(id: GitIdent): J {
    const raw = `${id.name} <${id.email}>`;
    const u = id.email ? this.model.findUser(id.email) : undefined;
    return u ? { type: 'author', raw, user: this.userMini(u) } : { type: 'author', raw };
  }

  /** The shared git-object renderer for one repository, with the fake's accounts behind authors. */
  git(r: FakeRepository): GitRenderer {
    return new GitRenderer({ repoApi: this.repoApi(r), repoWeb: this.repoWeb(r), mini: this.repoMini(r), author: (id) => this.author(id) });
  }

  commitRef(r: FakeRepository, hash: string): J {
    return this.git(r).commitRef(hash);
  }

  /** Commit as in branch/tag `target` (no summary/rendered). */
  commitTarget(r: FakeRepository, c: CommitObject): J {
    return this.git(r).commitTarget(c);
  }

  /** Full commit (`GET /commit/{hash}`, commit lists). */
  commit(r: FakeRepository, c: CommitObject): J {
    return this.git(r).commit(c);
  }

  branch(r: FakeRepository, name: string, c: CommitObject): J {
    return this.git(r).branch(name, c);
  }

  tag(r: FakeRepository, name: string, t: TagObject | undefined, c: CommitObject): J {
    return this.git(r).tag(name, t, c);
  }

  participant(p: FakeParticipant, at: string): J {
    return {
      type: 'participant',
      user: this.userByNickname(p.nickname),
      role: p.role,
      approved: p.approved,
      state: p.state,
      participated_on: at,
    };
  }

  pullRequest(pr: FakePullRequest, ctx: PullRequestContext, withParticipants: boolean): J {
    const api = `${this.repoApi(ctx.destination)}/pullrequests/${pr.id}`;
    const src12 = ctx.sourceHash.slice(0, 12);
    const dst12 = ctx.destinationHash.slice(0, 12);
    const spec = `${ctx.source.workspace}/${ctx.source.slug}:${src12}%0D${dst12}?from_pullrequest_id=${pr.id}&topic=true`;
    const out: J = {
      comment_count: 0,
      task_count: 0,
      type: 'pullrequest',
      id: pr.id,
      title: pr.title,
      description: pr.description,
      state: pr.state,
      draft: pr.draft,
      merge_commit: pr.mergeCommit ? this.commitRef(ctx.destination, pr.mergeCommit.slice(0, 12)) : null,
      close_source_branch: pr.closeSourceBranch,
      closed_by: pr.closedBy ? this.userByNickname(pr.closedBy) : null,
      author: this.userByNickname(pr.author),
      reason: '',
      created_on: pr.createdOn,
      updated_on: pr.updatedOn,
      destination: {
        branch: { name: pr.destination.branch },
        commit: this.commitRef(ctx.destination, dst12),
        repository: this.repoMini(ctx.destination),
      },
      source: {
        branch: { name: pr.source.branch, links: {} },
        commit: this.commitRef(ctx.source, src12),
        repository: this.repoMini(ctx.source),
      },
      links: {
        self: href(api),
        html: href(`${this.repoWeb(ctx.destination)}/pull-requests/${pr.id}`),
        commits: href(`${api}/commits`),
        approve: href(`${api}/approve`),
        'request-changes': href(`${api}/request-changes`),
        diff: href(`${this.repoApi(ctx.destination)}/diff/${spec}`),
        diffstat: href(`${this.repoApi(ctx.destination)}/diffstat/${spec}`),
        comments: href(`${api}/comments`),
        activity: href(`${api}/activity`),
        merge: href(`${api}/merge`),
        decline: href(`${api}/decline`),
        statuses: href(`${api}/statuses`),
      },
      summary: rendered(pr.description),
    };
    if (withParticipants) {
      out.reviewers = pr.participants.filter((p) => p.role === 'REVIEWER').map((p) => this.userByNickname(p.nickname));
      out.participants = pr.participants.map((p) => this.participant(p, pr.updatedOn));
    }
    return out;
  }

  hook(h: FakeHook, r: FakeRepository): J {
    return {
      type: 'webhook_subscription',
      uuid: h.uuid,
      description: h.description,
      url: h.url,
      active: h.active,
      skip_cert_verification: h.skipCertVerification,
      events: [...h.events],
      created_at: h.createdAt,
      subject: this.repoMini(r),
      links: { self: href(`${this.repoApi(r)}/hooks/${encodeSegment(h.uuid)}`) },
      source: null,
      read_only: false,
      history_enabled: false,
      secret_set: !!h.secret,
    };
  }

  status(s: FakeBuildStatus, r: FakeRepository): J {
    const commitApi = `${this.repoApi(r)}/commit/${s.commit}`;
    return {
      key: s.key,
      type: 'build',
      state: s.state,
      name: s.name,
      refname: s.refname,
      commit: this.commitRef(r, s.commit),
      url: s.url,
      repository: this.repoMini(r),
      description: s.description,
      created_on: s.createdOn,
      updated_on: s.updatedOn,
      links: {
        self: href(`${commitApi}/statuses/build/${encodeSegment(s.key)}`),
        commit: href(commitApi),
      },
    };
  }

  srcFile(r: FakeRepository, commit: string, path: string, attributes: string[], size: number, mimetype: string | null): J {
    return this.git(r).srcFile(commit, path, attributes, size, mimetype);
  }

  srcDirectory(r: FakeRepository, commit: string, path: string): J {
    return this.git(r).srcDirectory(commit, path);
  }
}
