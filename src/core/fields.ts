/**
 * Bitbucket partial responses (`fields=`): comma-separated dotted paths. Plain paths select (everything
 * else is dropped, so a filtered page has no `next` unless `next` is asked for); `-path` removes; `+path`
 * adds to the default set (everything is in the default set here). `*` matches every key at its level.
 * Arrays are transparent: `values.hash` applies `hash` to every element of `values`.
 */
type Tree = Map<string, Tree | true>;

function insert(tree: Tree, path: string[]): void {
  let node = tree;
  for (let i = 0; i < path.length; i++) {
    const k = path[i] as string;
    const existing = node.get(k);
    if (existing === true) return;
    if (i === path.length - 1) {
      node.set(k, true);
      return;
    }
    let child = existing;
    if (!child) {
      child = new Map();
      node.set(k, child);
    }
    node = child;
  }
}

function select(value: unknown, tree: Tree): unknown {
  if (Array.isArray(value)) return value.map((v) => select(v, tree));
  if (value === null || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const apply = (key: string, sub: Tree | true): void => {
    if (!(key in obj)) return;
    const picked = sub === true ? obj[key] : select(obj[key], sub);
    const prev = out[key];
    out[key] =
      prev && typeof prev === 'object' && !Array.isArray(prev) && picked && typeof picked === 'object' && !Array.isArray(picked)
        ? { ...(prev as object), ...(picked as object) }
        : picked;
  };
  for (const [k, sub] of tree) {
    if (k === '*') for (const key of Object.keys(obj)) apply(key, sub);
    else apply(k, sub);
  }
  return out;
}

function remove(value: unknown, path: string[]): void {
  if (Array.isArray(value)) {
    for (const v of value) remove(v, path);
    return;
  }
  if (value === null || typeof value !== 'object' || path.length === 0) return;
  const obj = value as Record<string, unknown>;
  const [k, ...rest] = path as [string, ...string[]];
  const keys = k === '*' ? Object.keys(obj) : [k];
  for (const key of keys) {
    if (!(key in obj)) continue;
    if (rest.length === 0) delete obj[key];
    else remove(obj[key], rest);
  }
}

export function parseFields(spec: string): { include: string[][]; add: string[][]; exclude: string[][] } {
  const include: string[][] = [];
  const add: string[][] = [];
  const exclude: string[][] = [];
  for (const raw of spec.split(',')) {
    const f = raw.trim();
    if (!f) continue;
    const sign = f[0];
    const path = (sign === '+' || sign === '-' ? f.slice(1) : f).split('.').filter(Boolean);
    if (path.length === 0) continue;
    if (sign === '-') exclude.push(path);
    else if (sign === '+') add.push(path);
    else include.push(path);
  }
  return { include, add, exclude };
}

/** True when the spec explicitly asks for `path` (plain or `+`). */
export function fieldsRequest(spec: string | undefined, path: string): boolean {
  if (!spec) return false;
  const { include, add } = parseFields(spec);
  return [...include, ...add].some((p) => p.join('.') === path || path.startsWith(`${p.join('.')}.`));
}

export function applyFields(value: unknown, spec: string): unknown {
  const { include, add, exclude } = parseFields(spec);
  let out: unknown;
  if (include.length > 0) {
    const tree: Tree = new Map();
    for (const p of [...include, ...add]) insert(tree, p);
    out = select(value, tree);
  } else {
    out = JSON.parse(JSON.stringify(value)) as unknown;
  }
  for (const p of exclude) remove(out, p);
  return out;
}
