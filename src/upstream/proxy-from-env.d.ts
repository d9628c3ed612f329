// proxy-from-env ships no types; this is the one function the sidecar calls.
declare module 'proxy-from-env' {
  /** The proxy URL for `url` from HTTP(S)_PROXY / ALL_PROXY / NO_PROXY (either case), or ''. */
  export function getProxyForUrl(url: string | URL): string;
}
