/**
 * Public types of the fake Bitbucket Cloud upstream. Other code depends on exactly these shapes;
 * extend, never change.
 */
import type { FakeModel } from './model';

/** REST: Basic email:apiToken ; git: Basic x-bitbucket-api-token-auth:apiToken (also x-token-auth:apiToken). */
export interface FakeCredentials {
  email: string;
  apiToken: string;
}

export interface GeneratedWorkspaceSpec {
  workspace: string;
  repositories: number;
  /** branches per repository, `main` included (minimum 1) */
  branches: number;
  /** open pull requests per repository */
  pullRequests: number;
  /** annotated tags per repository */
  tags: number;
  /** number of projects the repositories are spread across (default 1) */
  projects?: number;
}

export interface FakeBitbucketOptions {
  credentials?: FakeCredentials;
  seed?: 'demo' | GeneratedWorkspaceSpec;
  /** where the real git repositories are created; default a fresh mkdtemp, removed on close() */
  dataDir?: string;
  port?: number;
  host?: string;
  /** clock (ms) used by the rate limiter; default Date.now */
  now?: () => number;
}

export interface LoggedRequest {
  seq: number;
  time: number;
  method: string;
  rawUrl: string;
  /** decoded path without query */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: Buffer;
  /** slugs, lowercased, uuid forms resolved; undefined when the path names none */
  workspace?: string;
  repository?: string;
  kind: 'api' | 'git' | 'web' | 'control';
  status?: number;
}

export type FaultKind = 'latency' | 'status' | 'reset' | 'truncate' | 'html500' | 'rate429';

export interface Fault {
  match?: { method?: string; pathPrefix?: string; pathIncludes?: string };
  kind: FaultKind;
  status?: number;
  latencyMs?: number;
  retryAfter?: number;
  /** default: unlimited */
  times?: number;
}

export interface FakeBitbucket {
  /** http://127.0.0.1:PORT — serves the API face (/2.0/...) and the web face (git, avatars) on one port */
  url: string;
  credentials: FakeCredentials;
  /** every request received, in order (control requests excluded) */
  requests: LoggedRequest[];
  clearLog(): void;
  addFault(f: Fault): void;
  clearFaults(): void;
  /** rolling 1-hour window on /2.0/repositories/* per credential; null disables */
  setRateLimit(perHour: number | null): void;
  model: FakeModel;
  /** real commit on the real repo; creates the branch from the main branch if missing; returns the full hash */
  pushCommit(workspace: string, repo: string, branch: string, files: Record<string, string>, message?: string): Promise<string>;
  /** stores a Git LFS object for the repository (served by its batch API); returns its SHA-256 oid */
  lfsPut(workspace: string, repo: string, data: Buffer): Promise<string>;
  /** whether the repository's LFS storage holds the object */
  lfsHas(workspace: string, repo: string, oid: string): boolean;
  close(): Promise<void>;
}
