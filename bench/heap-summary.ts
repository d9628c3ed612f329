/**
 * Self size of a V8 heap snapshot by node type and constructor / name, largest first; with two
 * snapshots, what the second holds more than the first (e.g. after the fill minus at start).
 *
 *   node dist-bench/bench/heap-summary.js after.heapsnapshot [before.heapsnapshot] [--top=40] [--per=22172]
 *
 * `--per=N` also prints each row divided by N (bytes per cache entry).
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

function summary(file: string): Map<string, { bytes: number; count: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const types = s.snapshot.meta.node_types[0];
  const out = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]];
    let name = s.strings[s.nodes[i + iName]];
    // Strings and numbers are named by their value: group them by type only.
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' || type === 'code') name = '';
    else if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const k = `${type} ${name}`.trim();
    const row = out.get(k) ?? { bytes: 0, count: 0 };
    row.bytes += s.nodes[i + iSize];
    row.count++;
    out.set(k, row);
  }
  return out;
}

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const opt = new Map(process.argv.slice(2).filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=') as [string, string]));
const top = Number(opt.get('top') ?? 40);
const per = opt.has('per') ? Number(opt.get('per')) : undefined;
const after = summary(args[0]);
const before = args[1] ? summary(args[1]) : new Map<string, { bytes: number; count: number }>();
const rows = [...new Set([...after.keys(), ...before.keys()])].map((k) => {
  const a = after.get(k) ?? { bytes: 0, count: 0 };
  const b = before.get(k) ?? { bytes: 0, count: 0 };
  return { k, bytes: a.bytes - b.bytes, count: a.count - b.count };
});
rows.sort((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes));
const total = rows.reduce((n, r) => n + r.bytes, 0);
console.log(`total ${(total / 1024 ** 2).toFixed(1)} MB${per ? ` (${(total / per).toFixed(0)} B per entry)` : ''}`);
for (const r of rows.slice(0, top)) {
  console.log(`${(r.bytes / 1024 ** 2).toFixed(2).padStart(8)} MB ${String(r.count).padStart(9)}${per ? ` ${(r.bytes / per).toFixed(0).padStart(6)} B/e` : ''}  ${r.k}`);
}
