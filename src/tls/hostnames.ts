/** Host name rules shared by CA creation, the name-constraint check and leaf issuance. */

export const DEFAULT_HOSTNAMES: readonly string[] = ['api.bitbucket.org', 'bitbucket.org'];

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Lower-cases, de-duplicates and validates the configured names. Only plain DNS names are allowed:
 * no wildcards (a name constraint cannot express "one label"), no IP addresses, no trailing dot.
 */
export function normalizeHostnames(hostnames: readonly string[] | undefined): string[] {
  const input = hostnames && hostnames.length > 0 ? hostnames : DEFAULT_HOSTNAMES;
  const out: string[] = [];
  for (const raw of input) {
    const name = String(raw).trim().toLowerCase();
    if (!isDnsName(name)) {
      throw new Error(`tls: "${raw}" is not a usable host name (plain DNS names only: no wildcard, IP address, port or trailing dot)`);
    }
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

export function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  if (/^\d+$/.test(labels[labels.length - 1])) return false; // looks like an IPv4 address
  return labels.every((l) => LABEL.test(l));
}

/**
 * RFC 5280 §4.2.1.10: a dNSName constraint is satisfied by the name itself and by any name formed by
 * adding labels on the left ("bitbucket.org" permits "api.bitbucket.org", not "evilbitbucket.org").
 * A constraint written with a leading dot (".example.com") permits subdomains only.
 */
export function dnsNameWithin(name: string, constraint: string): boolean {
  const n = name.toLowerCase();
  const c = constraint.toLowerCase();
  if (c === '') return true;
  if (c.startsWith('.')) return n.endsWith(c);
  return n === c || n.endsWith(`.${c}`);
}
