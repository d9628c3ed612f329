/**
 * A small BBQL (`q=`) implementation evaluated against rendered JSON objects, and `sort=`.
 * Supports: field paths, = != ~ !~ > >= < <=, "strings", numbers, true/false/null, AND, OR, parentheses.
 */
type Token =
  | { t: 'lp' }
  | { t: 'rp' }
  | { t: 'op'; v: string }
  | { t: 'and' }
  | { t: 'or' }
  | { t: 'str'; v: string }
  | { t: 'num'; v: number }
  | { t: 'lit'; v: boolean | null }
  | { t: 'field'; v: string };

export class BbqlError extends Error {}

function tokenize(q: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(') {
      out.push({ t: 'lp' });
      i++;
    } else if (c === ')') {
      out.push({ t: 'rp' });
      i++;
    } else if (c === '"') {
      let s = '';
      i++;
      while (i < q.length && q[i] !== '"') {
        if (q[i] === '\\' && i + 1 < q.length) i++;
        s += q[i];
        i++;
      }
      if (q[i] !== '"') throw new BbqlError('unterminated string');
      i++;
      out.push({ t: 'str', v: s });
    } else {
      const op = /^(!=|!~|>=|<=|=|~|>|<)/.exec(q.slice(i));
      if (op) {
        out.push({ t: 'op', v: op[1] as string });
        i += (op[1] as string).length;
        continue;
      }
      const num = /^-?\d+(\.\d+)?/.exec(q.slice(i));
      if (num) {
        out.push({ t: 'num', v: Number(num[0]) });
        i += num[0].length;
        continue;
      }
      const word = /^[A-Za-z_][A-Za-z0-9_.\-]*/.exec(q.slice(i));
      if (!word) throw new BbqlError(`unexpected character '${c}'`);
      const w = word[0];
      i += w.length;
      const lw = w.toLowerCase();
      if (lw === 'and') out.push({ t: 'and' });
      else if (lw === 'or') out.push({ t: 'or' });
      else if (lw === 'true' || lw === 'false') out.push({ t: 'lit', v: lw === 'true' });
      else if (lw === 'null') out.push({ t: 'lit', v: null });
      else out.push({ t: 'field', v: w });
    }
  }
  return out;
}

type Value = string | number | boolean | null;
type Node =
  | { k: 'and' | 'or'; a: Node; b: Node }
  | { k: 'cmp'; field: string; op: string; value: Value };

function parse(tokens: Token[]): Node {
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const primary = (): Node => {
    const t = tokens[pos++];
    if (!t) throw new BbqlError('unexpected end of query');
    if (t.t === 'lp') {
      const n = or();
      if (tokens[pos++]?.t !== 'rp') throw new BbqlError('missing )');
      return n;
    }
    if (t.t !== 'field') throw new BbqlError('expected a field name');
    const op = tokens[pos++];
    if (!op || op.t !== 'op') throw new BbqlError(`expected an operator after ${t.v}`);
    const v = tokens[pos++];
    if (!v || (v.t !== 'str' && v.t !== 'num' && v.t !== 'lit')) throw new BbqlError('expected a value');
    return { k: 'cmp', field: t.v, op: op.v, value: v.v };
  };
  const and = (): Node => {
    let n = primary();
    while (peek()?.t === 'and') {
      pos++;
      n = { k: 'and', a: n, b: primary() };
    }
    return n;
  };
  const or = (): Node => {
    let n = and();
    while (peek()?.t === 'or') {
      pos++;
      n = { k: 'or', a: n, b: and() };
    }
    return n;
  };
  const n = or();
  if (pos !== tokens.length) throw new BbqlError('unexpected trailing input');
  return n;
}

/** All values found at a dotted path (arrays are flattened). */
export function valuesAt(obj: unknown, path: string): unknown[] {
  let cur: unknown[] = [obj];
  for (const k of path.split('.')) {
    const next: unknown[] = [];
    for (const c of cur) {
      const items = Array.isArray(c) ? c : [c];
      for (const it of items) {
        if (it && typeof it === 'object' && k in (it as object)) next.push((it as Record<string, unknown>)[k]);
      }
    }
    cur = next;
  }
  return cur.flatMap((v) => (Array.isArray(v) ? v : [v]));
}

function compare(a: unknown, op: string, b: Value): boolean {
  if (op === '=') return b === null ? a === null || a === undefined : a === b;
  if (op === '!=') return b === null ? a !== null && a !== undefined : a !== b;
  if (op === '~' || op === '!~') {
    const has = typeof a === 'string' && typeof b === 'string' && a.toLowerCase().includes(b.toLowerCase());
    return op === '~' ? has : !has;
  }
  if (a === null || a === undefined || b === null) return false;
  if (typeof a !== typeof b) return false;
  const x = a as string | number;
  const y = b as string | number;
  if (op === '>') return x > y;
  if (op === '>=') return x >= y;
  if (op === '<') return x < y;
  return x <= y;
}

function evaluate(n: Node, item: unknown): boolean {
  if (n.k !== 'cmp') return n.k === 'and' ? evaluate(n.a, item) && evaluate(n.b, item) : evaluate(n.a, item) || evaluate(n.b, item);
  return evaluateCmp(n, item);
}

function evaluateCmp(n: { field: string; op: string; value: Value }, item: unknown): boolean {
  const vals = valuesAt(item, n.field);
  if (n.op === '!=' || n.op === '!~') return vals.length === 0 ? true : vals.every((v) => compare(v, n.op, n.value));
  if (vals.length === 0) return n.op === '=' && n.value === null;
  return vals.some((v) => compare(v, n.op, n.value));
}

/** Compile a `q=` expression; throws BbqlError on syntax errors. */
export function compileQuery(q: string): (item: unknown) => boolean {
  const node = parse(tokenize(q));
  return (item) => evaluate(node, item);
}

/** `sort=field` / `sort=-field` (stable; missing values last). */
export function sortBy<T>(items: T[], spec: string): T[] {
  const desc = spec.startsWith('-');
  const path = desc ? spec.slice(1) : spec;
  const key = (x: T): unknown => valuesAt(x, path)[0];
  return items
    .map((item, i) => ({ item, i, k: key(item) }))
    .sort((a, b) => {
      const ua = a.k === undefined || a.k === null;
      const ub = b.k === undefined || b.k === null;
      if (ua || ub) return ua === ub ? a.i - b.i : ua ? 1 : -1;
      const ka = a.k as string | number;
      const kb = b.k as string | number;
      const c = ka < kb ? -1 : ka > kb ? 1 : 0;
      return (desc ? -c : c) || a.i - b.i;
    })
    .map((x) => x.item);
}
