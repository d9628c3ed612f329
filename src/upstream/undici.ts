/**
 * The parts of undici the sidecar uses, from its public API: the keep-alive Agent, the ProxyAgent
 * for an outbound proxy, its errors and `request`.
 */
import { Agent, ProxyAgent, errors, request as undiciRequest, type Dispatcher } from 'undici';

export { Agent, ProxyAgent, errors, type Dispatcher };

export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path'>;

/** undici's `request(url, options)` through `dispatcher`. */
export function request(url: string, dispatcher: Dispatcher, options: RequestOptions): Promise<Dispatcher.ResponseData> {
  return undiciRequest(url, { ...options, dispatcher });
}
