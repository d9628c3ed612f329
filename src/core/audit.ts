/** One line of the audit log, filled in as a request goes through the pipeline. */
export interface AuditRecord {
  client?: string;
  method: string;
  route?: string;
  path?: string;
  decision: string;
  cache?: string;
  upstreamStatus?: number;
  /** No usable answer came from Bitbucket: what went wrong instead (`ENOTFOUND`, `timeout`, …). */
  upstreamError?: string;
  status?: number;
  /** Milliseconds from the request head to the end of the answer. */
  ms?: number;
}
