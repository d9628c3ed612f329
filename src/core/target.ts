/** A request target after its one decoding (src/routes/canonical.ts): what every later decision reads. */
export interface CanonicalTarget {
  /** Decoded path segments; a segment may contain "/" when the client sent %2F (branch names, file paths). */
  segments: string[];
  trailingSlash: boolean;
  /** Decoded query pairs in the order received. */
  query: [string, string][];
  /** Host named by an absolute-form target (RFC 9112 §3.2.2), which then overrides the Host header. */
  absoluteHost?: string;
}
