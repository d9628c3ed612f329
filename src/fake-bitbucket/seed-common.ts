/** People and repository content shared by the demo seed and the generator. */
import { accountIdFor, isoMicros, stableUuid } from './ids';
import type { FakeUser, FakeWorkspace } from './model';
import type { PlanFile, PlanPerson } from './seed-plan';

/** 2025-01-06T09:00:00Z — all seeded history is dated from here (deterministic hashes). */
export const SEED_EPOCH_SECONDS = Date.UTC(2025, 0, 6, 9, 0, 0) / 1000;

export function makeUser(nickname: string, displayName: string, email: string): FakeUser {
  return {
    uuid: stableUuid('user', nickname),
    accountId: accountIdFor(nickname),
    nickname,
    displayName,
    email,
    createdOn: isoMicros(Date.UTC(2019, 4, 1, 10, 0, 0), `user:${nickname}`),
  };
}

/** The upstream person whose API token the sidecar holds. */
export const JDOE = makeUser('jdoe', 'John Doe', 'jdoe@example.com');
export const ALICE = makeUser('alice', 'Alice Anderson', 'alice@example.com');
export const BOB = makeUser('bob', 'Bob Brown', 'bob@example.com');
export const CAROL = makeUser('carol', 'Carol Clark', 'carol@example.org');

export function person(u: FakeUser): PlanPerson {
  return { name: u.displayName, email: u.email };
}

export function makeWorkspace(slug: string, name: string, kind: 'team' | 'personal', owner?: string): FakeWorkspace {
  return {
    uuid: kind === 'personal' && owner ? stableUuid('user', owner) : stableUuid('workspace', slug),
    slug,
    name,
    isPrivate: true,
    kind,
    owner,
    createdOn: isoMicros(Date.UTC(2020, 1, 3, 8, 0, 0), `workspace:${slug}`),
  };
}

/** A fixed (non-existent) submodule commit, as Bitbucket would show a gitlink. */
export const SUBMODULE_COMMIT = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';

/**
 * The file set of every seeded repository's first commit: Jenkinsfile at root, dir/Jenkinsfile, nested
 * directories, an executable, a symlink and a submodule gitlink.
 */
export function baseFiles(fullName: string): PlanFile[] {
  return [
    { path: 'README.md', content: `# ${fullName}\n\nDemo repository served by the fake Bitbucket Cloud.\n` },
    {
      path: 'Jenkinsfile',
      content: `pipeline {\n  agent any\n  stages {\n    stage('Build') {\n      steps {\n        echo 'Building ${fullName}'\n      }\n    }\n  }\n}\n`,
    },
    {
      path: 'dir/Jenkinsfile',
      content: `// pipeline kept in a sub-directory\npipeline {\n  agent any\n  stages {\n    stage('Dir') {\n      steps {\n        echo 'dir/Jenkinsfile of ${fullName}'\n      }\n    }\n  }\n}\n`,
    },
    { path: 'src/main.txt', content: `main source of ${fullName}\n` },
    { path: 'src/nested/deep.txt', content: 'a file two directories down\n' },
    { path: 'folder/file.properties', content: 'message=This is a test for metadata\n' },
    { path: 'script.bat', content: '@echo off\necho "Hello world"' }, // 28 bytes, like the recorded payload
    { path: 'scripts/build.sh', content: '#!/bin/sh\necho build\n', mode: '100755' },
    { path: 'link-to-readme', content: 'README.md', mode: '120000' },
    {
      path: '.gitmodules',
      content: '[submodule "libs/shared"]\n\tpath = libs/shared\n\turl = https://bitbucket.org/acme/shared-lib.git\n',
    },
    { path: 'libs/shared', gitlink: SUBMODULE_COMMIT },
  ];
}

export const HOOK_EVENTS = [
  'pullrequest:created',
  'pullrequest:fulfilled',
  'pullrequest:rejected',
  'pullrequest:updated',
  'repo:push',
];
