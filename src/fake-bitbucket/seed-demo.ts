/**
 * The demo seed: workspaces `acme` (team), `jdoe` (the upstream person's personal workspace) and `other`.
 * Everything is deterministic (uuids, dates, hence commit hashes).
 */
import { isoMicros, stableUuid } from './ids';
import type { FakeProject, RepoRole } from './model';
import {
  ALICE,
  BOB,
  CAROL,
  HOOK_EVENTS,
  JDOE,
  SEED_EPOCH_SECONDS,
  baseFiles,
  makeWorkspace,
  person,
} from './seed-common';
import type { PlanCommit, PlanPullRequest, PlanRepo, PlanTagObject, SeedPlan } from './seed-plan';

/** The real tag name from the recorded payloads. */
export const SPECIAL_TAG = 'special-"$;><&#_=@!|.,/test';

const HOUR = 3600;

function project(workspace: string, key: string, name: string, description = ''): FakeProject {
  const createdOn = isoMicros(Date.UTC(2021, 2, 1, 12, 0, 0), `project:${workspace}/${key}`);
  return {
    uuid: stableUuid('project', workspace, key),
    key,
    name,
    workspace,
    description,
    isPrivate: true,
    createdOn,
    updatedOn: createdOn,
  };
}

interface RepoDef {
  workspace: string;
  name: string;
  projectKey: string;
  language: string;
  role: RepoRole;
  isPrivate: boolean;
  description: string;
}

const REPOS: RepoDef[] = [
  { workspace: 'acme', name: 'Docs-Site', projectKey: 'DOC', language: 'html/css', role: 'admin', isPrivate: true, description: 'Documentation site' },
  { workspace: 'acme', name: 'infra', projectKey: 'OPS', language: 'shell', role: 'admin', isPrivate: true, description: 'Infrastructure as code' },
  { workspace: 'acme', name: 'service-api', projectKey: 'CI', language: 'java', role: 'admin', isPrivate: true, description: 'The API service' },
  { workspace: 'acme', name: 'service-web', projectKey: 'CI', language: 'javascript', role: 'admin', isPrivate: true, description: 'The web front-end' },
  { workspace: 'jdoe', name: 'secret-notes', projectKey: 'JD', language: '', role: 'owner', isPrivate: true, description: "jdoe's private notes" },
  { workspace: 'other', name: 'widgets', projectKey: 'WID', language: 'go', role: 'member', isPrivate: false, description: 'Widgets of another workspace' },
];

export function demoSeed(): SeedPlan {
  const commits: PlanCommit[] = [];
  const tagObjects: PlanTagObject[] = [];
  const repos: PlanRepo[] = [];

  REPOS.forEach((def, index) => {
    const slug = def.name.toLowerCase();
    const full = `${def.workspace}/${slug}`;
    const t0 = SEED_EPOCH_SECONDS + index * 24 * HOUR;
    const id = (s: string): string => `${full}:${s}`;
    commits.push(
      { id: id('c1'), parents: [], author: person(ALICE), time: t0, message: 'Initial commit\n', files: baseFiles(full) },
      {
        id: id('c2'),
        parents: [id('c1')],
        author: person(BOB),
        time: t0 + HOUR,
        message: 'Add changelog\n',
        files: [{ path: 'CHANGELOG.md', content: '# Changelog\n\n## 1.0\n- first release\n' }],
      },
      {
        id: id('rel'),
        parents: [id('c2')],
        author: person(ALICE),
        time: t0 + 2 * HOUR,
        message: 'Prepare release 1.0\n',
        files: [{ path: 'VERSION', content: '1.0.0\n' }],
      },
      {
        id: id('bb1'),
        parents: [id('c2')],
        author: person(BOB),
        time: t0 + 3 * HOUR,
        message: 'BB-1: add feature\n\nImplements the first feature.\n',
        files: [{ path: 'src/feature-bb1.txt', content: `feature BB-1 of ${full}\n` }],
      },
      {
        id: id('c3'),
        parents: [id('c2')],
        author: person(ALICE),
        time: t0 + 4 * HOUR,
        message: 'Update README\n',
        files: [{ path: 'README.md', content: `# ${full}\n\nDemo repository served by the fake Bitbucket Cloud.\n\nSee CHANGELOG.md.\n` }],
      },
    );
    tagObjects.push(
      { id: id('tag-v1.0'), name: 'v1.0', target: id('rel'), tagger: person(ALICE), time: t0 + 5 * HOUR, message: 'Release 1.0\n' },
      { id: id('tag-special'), name: SPECIAL_TAG, target: id('c2'), tagger: person(BOB), time: t0 + 5 * HOUR + 60, message: 'Test special chars\n' },
    );
    const branches: Record<string, string> = { main: id('c3'), 'feature/BB-1': id('bb1'), 'release/1.0': id('rel') };
    if (full === 'acme/service-api') {
      commits.push(
        {
          id: id('bb3'),
          parents: [id('c3')],
          author: person(BOB),
          time: t0 + 6 * HOUR,
          message: 'BB-3: work in progress\n',
          files: [{ path: 'src/feature-bb3.txt', content: 'draft work\n' }],
        },
        {
          id: id('bb4'),
          parents: [id('c2')],
          author: person(ALICE),
          time: t0 + 7 * HOUR,
          message: 'BB-4: rejected idea\n',
          files: [{ path: 'src/feature-bb4.txt', content: 'an idea that was declined\n' }],
        },
      );
      branches['feature/BB-3'] = id('bb3');
      branches['feature/BB-4'] = id('bb4');
    }
    repos.push({
      workspace: def.workspace,
      slug,
      name: def.name,
      uuid: stableUuid('repository', full),
      projectKey: def.projectKey,
      description: def.description,
      language: def.language,
      isPrivate: def.isPrivate,
      mainBranch: 'main',
      role: def.role,
      createdOn: isoMicros((t0 - HOUR) * 1000, `created:${full}`),
      updatedOn: isoMicros((t0 + 8 * HOUR) * 1000, `updated:${full}`),
      branches,
      tags: { 'v1.0': id('tag-v1.0'), [SPECIAL_TAG]: id('tag-special') },
    });
  });

  // jdoe/service-api-fork: a fork of acme/service-api (shares its history) with one extra branch.
  const origin = 'acme/service-api';
  const forkFull = 'jdoe/service-api-fork';
  const t0 = SEED_EPOCH_SECONDS + REPOS.length * 24 * HOUR;
  commits.push({
    id: `${forkFull}:bb2`,
    parents: [`${origin}:c3`],
    author: person(JDOE),
    time: t0,
    message: 'BB-2: change from the fork\n',
    files: [{ path: 'src/feature-bb2.txt', content: 'change made in the fork\n' }],
  });
  repos.push({
    workspace: 'jdoe',
    slug: 'service-api-fork',
    name: 'service-api-fork',
    uuid: stableUuid('repository', forkFull),
    projectKey: 'JD',
    description: 'Fork of acme/service-api',
    language: 'java',
    isPrivate: true,
    mainBranch: 'main',
    role: 'owner',
    createdOn: isoMicros((t0 - HOUR) * 1000, `created:${forkFull}`),
    updatedOn: isoMicros((t0 + HOUR) * 1000, `updated:${forkFull}`),
    parent: origin,
    branches: {
      main: `${origin}:c3`,
      'feature/BB-1': `${origin}:bb1`,
      'release/1.0': `${origin}:rel`,
      'feature/BB-2': `${forkFull}:bb2`,
    },
    tags: { 'v1.0': `${origin}:tag-v1.0`, [SPECIAL_TAG]: `${origin}:tag-special` },
  });

  const prTime = (h: number, salt: string): string => isoMicros((SEED_EPOCH_SECONDS + 2 * 24 * HOUR + h * HOUR) * 1000, salt);
  const pullRequests: PlanPullRequest[] = [
    {
      repo: origin, id: 1, title: 'BB-1: add feature', description: 'Implements the first feature.', state: 'OPEN', draft: false,
      author: ALICE.nickname, sourceRepo: origin, sourceBranch: 'feature/BB-1', destinationBranch: 'main',
      createdOn: prTime(10, 'pr1c'), updatedOn: prTime(11, 'pr1u'),
      participants: [{ nickname: BOB.nickname, role: 'REVIEWER', approved: true, state: 'approved' }],
    },
    {
      repo: origin, id: 2, title: 'BB-2: change from the fork', description: 'test from forked repo', state: 'OPEN', draft: false,
      author: JDOE.nickname, sourceRepo: forkFull, sourceBranch: 'feature/BB-2', destinationBranch: 'main',
      createdOn: prTime(30, 'pr2c'), updatedOn: prTime(31, 'pr2u'), participants: [],
    },
    {
      repo: origin, id: 3, title: 'BB-3: work in progress', description: 'Draft pull request', state: 'OPEN', draft: true,
      author: BOB.nickname, sourceRepo: origin, sourceBranch: 'feature/BB-3', destinationBranch: 'main',
      createdOn: prTime(12, 'pr3c'), updatedOn: prTime(12, 'pr3u'), participants: [],
    },
    {
      repo: origin, id: 4, title: 'BB-4: rejected idea', description: '', state: 'DECLINED', draft: false,
      author: ALICE.nickname, sourceRepo: origin, sourceBranch: 'feature/BB-4', destinationBranch: 'main',
      createdOn: prTime(13, 'pr4c'), updatedOn: prTime(14, 'pr4u'),
      participants: [{ nickname: BOB.nickname, role: 'REVIEWER', approved: false, state: 'changes_requested' }],
      closedBy: BOB.nickname,
    },
  ];

  return {
    currentUser: JDOE,
    otherUsers: [ALICE, BOB, CAROL],
    workspaces: [
      makeWorkspace('acme', 'ACME Corp', 'team'),
      makeWorkspace('jdoe', 'John Doe', 'personal', JDOE.nickname),
      makeWorkspace('other', 'Other Org', 'team'),
    ],
    projects: [
      project('acme', 'CI', 'Continuous Integration'),
      project('acme', 'OPS', 'Operations'),
      project('acme', 'DOC', 'Documentation'),
      project('jdoe', 'JD', 'Personal'),
      project('other', 'WID', 'Widgets'),
    ],
    commits,
    tagObjects,
    repos,
    pullRequests,
    hooks: [
      {
        repo: origin,
        uuid: stableUuid('hook', origin, '1'),
        description: 'Jenkins hook',
        url: 'https://jenkins.example.com/bitbucket-scmsource-hook/notify',
        events: [...HOOK_EVENTS],
        active: true,
        createdAt: '2025-01-10T10:00:00.123456789Z',
      },
    ],
  };
}
