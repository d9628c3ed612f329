/**
 * The parts of undici the sidecar uses (Agent, its errors, `request`), loaded from their own modules
 * instead of undici's index, which also loads fetch, WebSocket, EventSource, the mock agent and the
 * HTTP cache: 9 MB more RSS in every sidecar from its start (measured: require of the index vs these
 * three, after a GC). Types are undici's own. These paths are undici 7's layout rather than its
 * documented API; the major is pinned in package.json and test/upstream/undici-parts.test.ts checks
 * that they still are what the index exports.
 */
import type * as Undici from 'undici';

/* eslint-disable @typescript-eslint/no-require-imports */
export const Agent = require('undici/lib/dispatcher/agent') as typeof Undici.Agent;
export type Agent = Undici.Agent;
export const errors = require('undici/lib/core/errors') as typeof Undici.errors;
export type { Dispatcher } from 'undici';
const apiRequest = require('undici/lib/api/api-request') as (this: Undici.Dispatcher, opts: Undici.Dispatcher.RequestOptions) => Promise<Undici.Dispatcher.ResponseData>;
/* eslint-enable @typescript-eslint/no-require-imports */

export type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path'>;

/** undici's `request(url, options)` through `dispatcher`. */
export function request(url: string, dispatcher: Undici.Dispatcher, options: RequestOptions): Promise<Undici.Dispatcher.ResponseData> {
  const u = new URL(url);
  return apiRequest.call(dispatcher, { ...options, origin: u.origin, path: `${u.pathname}${u.search}` });
}
