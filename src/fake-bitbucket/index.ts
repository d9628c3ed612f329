/**
 * Fake Bitbucket Cloud upstream (api.bitbucket.org + bitbucket.org on one port), backed by real git
 * repositories. See README.md in this folder for the demo seed and the control endpoints.
 */
export type {
  FakeBitbucket,
  FakeBitbucketOptions,
  FakeCredentials,
  Fault,
  FaultKind,
  GeneratedWorkspaceSpec,
  LoggedRequest,
} from './types';
export { startFakeBitbucket, type FakeBitbucketServer } from './server';
export {
  FakeModel,
  type FakeBuildStatus,
  type FakeHook,
  type FakeParticipant,
  type FakeProject,
  type FakePullRequest,
  type FakeRepository,
  type FakeUser,
  type FakeWorkspace,
  type PullRequestState,
  type RepoRole,
} from './model';
export { DEFAULT_API_TOKEN, DEFAULT_CREDENTIALS, GIT_USERNAMES, WWW_AUTHENTICATE } from './auth';
export { SPECIAL_TAG } from './seed-demo';
export { generatedSlug } from './seed-generated';
export { parseTarget, type ParsedTarget } from './request-target';
