/** The upstream origins and the ones the client used: answers' links are rewritten from one to the other. */
export interface LinkBases {
  upstreamApi: string; // origin, e.g. https://api.bitbucket.org
  upstreamWeb: string; // origin, e.g. https://bitbucket.org
  clientApi: string;
  clientWeb: string;
}
