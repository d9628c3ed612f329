/**
 * A seed plan describes everything the fake starts with: git history (commits/tags by plan id, built into
 * one shared object store) and the model entities that refer to it.
 */
import type { FakeParticipant, FakeProject, FakeUser, FakeWorkspace, PullRequestState, RepoRole } from './model';

export interface PlanPerson {
  name: string;
  email: string;
}

export interface PlanFile {
  path: string;
  /** file content (for mode 120000: the link target) */
  content?: string;
  mode?: '100644' | '100755' | '120000';
  /** submodule commit (mode 160000) */
  gitlink?: string;
}

export interface PlanCommit {
  id: string;
  parents: string[];
  author: PlanPerson;
  /** epoch seconds */
  time: number;
  message: string;
  files: PlanFile[];
  deletes?: string[];
}

export interface PlanTagObject {
  id: string;
  name: string;
  target: string;
  tagger: PlanPerson;
  time: number;
  message: string;
}

export interface PlanRepo {
  workspace: string;
  slug: string;
  name: string;
  uuid: string;
  projectKey: string;
  description: string;
  language: string;
  isPrivate: boolean;
  mainBranch: string;
  role: RepoRole;
  createdOn: string;
  updatedOn: string;
  /** `ws/slug` of the parent repository */
  parent?: string;
  /** branch name → plan commit id */
  branches: Record<string, string>;
  /** tag name → plan tag-object id (annotated) or plan commit id (lightweight) */
  tags: Record<string, string>;
}

export interface PlanPullRequest {
  /** `ws/slug` of the destination repository */
  repo: string;
  id: number;
  title: string;
  description: string;
  state: PullRequestState;
  draft: boolean;
  author: string;
  /** `ws/slug` of the source repository */
  sourceRepo: string;
  sourceBranch: string;
  destinationBranch: string;
  createdOn: string;
  updatedOn: string;
  participants: FakeParticipant[];
  closedBy?: string;
}

export interface PlanHook {
  repo: string;
  uuid: string;
  description: string;
  url: string;
  events: string[];
  active: boolean;
  createdAt: string;
}

export interface SeedPlan {
  currentUser: FakeUser;
  otherUsers: FakeUser[];
  workspaces: FakeWorkspace[];
  projects: FakeProject[];
  commits: PlanCommit[];
  tagObjects: PlanTagObject[];
  repos: PlanRepo[];
  pullRequests: PlanPullRequest[];
  hooks: PlanHook[];
}
