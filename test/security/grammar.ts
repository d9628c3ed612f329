import fc from 'fast-check';

/**
 * A grammar of Bitbucket request targets (every catalog route, neighbouring routes Bitbucket has
 * but the sidecar does not serve, git and operations paths) and of the hostile ways to spell them.
 * Generators produce a `Case`: the exact bytes of one HTTP/1.1 request plus what the invariants
 * need to know about how it was built.
 */

/** Identifiers of the demo seed, read from the fake at start (uuids, hashes). */
export interface Known {
  uuids: { acme: string; jdoe: string; other: string; serviceApi: string; serviceWeb: string; infra: string; docsSite: string; secretNotes: string; widgets: string; fork: string };
  /** The open fork pull request's source commit (12 hex, as the PR list gives it) and its full hash. */
  forkCommitShort: string;
  forkCommitFull: string;
  /** Head of acme/service-api main. */
  mainHash: string;
  /** The hook registered on acme/service-api. */
  hookUuid: string;
  /**
   * Commits for git wants through the fork grant: `allowed` are reachable from the PR's source
   * branch; `forbidden` are the heads of the fork's other branches (and of an out-of-scope
   * repository) — no answer through the grant may carry a pack for a want of one of them.
   */
  gitWants: { allowed: string[]; forbidden: string[] };
}

export type Credential =
  | { kind: 'client'; client: string; scheme: 'basic' | 'bearer'; user: string }
  | { kind: 'issued'; scheme: 'bearer' | 'basic'; user: string }
  | { kind: 'expired' }
  | { kind: 'wrong' }
  | { kind: 'upstream' }
  | { kind: 'upstream-git' }
  | { kind: 'consumer' }
  | { kind: 'garbage'; header: string }
  | { kind: 'none' };

export interface Case {
  method: string;
  /** The request target exactly as sent. */
  target: string;
  /** Host header lines (zero, one or two). */
  hosts: string[];
  credential: Credential;
  headers: [string, string][];
  body?: string;
  chunked: boolean;
  /** Decoded free-form values (branch names, file paths, query values, body) that upstream may echo in an error. */
  free: string[];
  /** For reports: which route template the target was built from. */
  template: string;
}

// ---------------------------------------------------------------------------------------------
// Segments

interface Seg {
  text: string;
  /** Route literals ("2.0", "repositories") vs parameter values. */
  literal: boolean;
  /** Parameter values a client may legitimately spell with %2F (branches, paths). */
  slashy?: boolean;
  param?: Param;
}

const lit = (text: string): Seg => ({ text, literal: true });
const val = (param: Param, text: string, slashy = false): Seg => ({ text, literal: false, slashy, param });

const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);

function caseVariants(s: string): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constant(s) },
    { weight: 1, arbitrary: fc.constant(s.toUpperCase()) },
    { weight: 1, arbitrary: fc.constant(s.charAt(0).toUpperCase() + s.slice(1)) },
    { weight: 1, arbitrary: fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }).map((flips) => [...s].map((c, i) => (flips[i] ? c.toUpperCase() : c)).join('')) },
  );
}

function uuidForms(uuid: string): fc.Arbitrary<string> {
  const bare = uuid.replace(/[{}]/g, '');
  return pick(uuid, uuid.toUpperCase(), `{${bare.toUpperCase()}}`, bare, `%7B${bare}%7D`, `{${bare}`, `{${bare}}}`);
}

const randomUuid = fc.uuid().map((u) => `{${u}}`);

export function workspaceArb(k: Known): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 14, arbitrary: caseVariants('acme') },
    { weight: 4, arbitrary: caseVariants('jdoe') },
    { weight: 3, arbitrary: caseVariants('other') },
    { weight: 2, arbitrary: uuidForms(k.uuids.acme) },
    { weight: 2, arbitrary: uuidForms(k.uuids.jdoe) },
    { weight: 1, arbitrary: uuidForms(k.uuids.other) },
    { weight: 1, arbitrary: randomUuid },
    {
      weight: 3,
      arbitrary: pick(
        'nobody',
        'acme/../jdoe',
        'acme\\..\\jdoe',
        'jdoe/secret-notes',
        'acme/jdoe',
        'acme.git',
        'acme ',
        ' acme',
        'acme;jdoe',
        'acme%00',
        'acme\u0000',
        '\u0430cme', // Cyrillic a
        '\uff41\uff43\uff4d\uff45', // fullwidth acme
        'jdo\u0435',
        '*',
        'acme*',
        '.acme',
        'acme.',
        '..',
        '.',
        '~jdoe',
        '@jdoe',
        'jdoe@acme',
        '%6Adoe',
        'acme%2F..%2Fjdoe',
        'acme?x=/jdoe',
        'acme#jdoe',
      ),
    },
  );
}

export function repositoryArb(k: Known): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: caseVariants('service-api') },
    { weight: 3, arbitrary: caseVariants('service-web') },
    { weight: 3, arbitrary: caseVariants('infra') },
    { weight: 2, arbitrary: caseVariants('docs-site') },
    { weight: 4, arbitrary: caseVariants('secret-notes') },
    { weight: 2, arbitrary: caseVariants('widgets') },
    { weight: 5, arbitrary: caseVariants('service-api-fork') },
    { weight: 1, arbitrary: uuidForms(k.uuids.serviceApi) },
    { weight: 1, arbitrary: uuidForms(k.uuids.infra) },
    { weight: 2, arbitrary: uuidForms(k.uuids.secretNotes) },
    { weight: 1, arbitrary: uuidForms(k.uuids.widgets) },
    { weight: 2, arbitrary: uuidForms(k.uuids.fork) },
    { weight: 1, arbitrary: randomUuid },
    {
      weight: 3,
      arbitrary: pick(
        'service-api.git',
        'secret-notes.git',
        'SERVICE-API.GIT',
        'service-api/../../jdoe/secret-notes',
        'service-api/../secret-notes',
        'service-*',
        'service-?pi',
        '*',
        '..',
        'service-api%2F..%2F..%2Fjdoe%2Fsecret-notes',
        'service-api;x',
        'service-api\u0000',
        's\u0435rvice-api',
        'service-api ',
        'nothing-here',
      ),
    },
  );
}

function nameArb(k: Known): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: pick('main', 'feature/BB-1', 'feature/BB-2', 'feature/BB-2', 'release/1.0', 'v1.0', 'special-"$;><&#_=@!|.,/test') },
    { weight: 2, arbitrary: pick('..', '../..', '../../../jdoe/secret-notes', 'feature/../../jdoe', './main', 'main/.', '%2e%2e', 'main%00', 'a//b', '/main', 'main/') },
    { weight: 1, arbitrary: pick(k.forkCommitShort, k.mainHash) },
    { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 24, unit: 'grapheme-composite' }) },
    { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 12, unit: fc.constantFrom('a', '.', '/', '\\', '%', '~', ' ', '?', '#', '\u0000', '\n') }) },
  );
}

function hashArb(k: Known): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: pick(k.forkCommitShort, k.forkCommitFull, k.mainHash, k.mainHash.slice(0, 12), k.forkCommitFull.toUpperCase()) },
    // Longer than the PR's 12-character hash but sharing its prefix: not the PR's commit.
    { weight: 1, arbitrary: fc.stringMatching(/^[0-9a-f]{28}$/).map((tail) => k.forkCommitShort + tail) },
    { weight: 2, arbitrary: fc.stringMatching(/^[0-9a-fA-F]{7,40}$/) },
    { weight: 1, arbitrary: pick('zzzzzzz', 'abc', 'main', '..', k.forkCommitShort.slice(0, 6), `${k.forkCommitShort}/..`) },
  );
}

function pathArb(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: pick('Jenkinsfile', 'dir/Jenkinsfile', 'README.md', 'src/main.txt', '') },
    { weight: 2, arbitrary: pick('../Jenkinsfile', '..', 'dir/../../..', 'dir//Jenkinsfile', './Jenkinsfile', '..%2f..%2fjdoe', 'dir\\..\\..\\x', '.git/config') },
    { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 30, unit: 'grapheme' }) },
  );
}

const idArb = pick('1', '2', '3', '4', '0', '01', '-1', '99999999999', '2abc', '1.0', '2%00');

function hookArb(k: Known): fc.Arbitrary<string> {
  return fc.oneof(uuidForms(k.hookUuid), randomUuid, pick('abc', '..', '{}', '{202cf34e-7ccf-44b7-ba6b-8827a14d5324}'));
}

// ---------------------------------------------------------------------------------------------
// Templates

type Param = 'ws' | 'repo' | 'fws' | 'frepo' | 'name' | 'hash' | 'rev' | 'path' | 'id' | 'hook' | 'any';

interface Template {
  /** e.g. "/2.0/repositories/{ws}/{repo}/refs/branches/{name}" */
  t: string;
  weight: number;
  methods?: string[];
}

/** Every catalog route plus neighbours Bitbucket has (and the sidecar must not serve). */
export const TEMPLATES: Template[] = [
  { t: '/2.0/user', weight: 2 },
  { t: '/2.0/user/permissions/repositories', weight: 1 },
  { t: '/2.0/user/permissions/workspaces', weight: 1 },
  { t: '/2.0/users/{ws}', weight: 1 },
  { t: '/2.0/workspaces/{ws}', weight: 4 },
  { t: '/2.0/workspaces/{ws}/projects', weight: 1 },
  { t: '/2.0/workspaces/{ws}/members', weight: 1 },
  { t: '/2.0/workspaces/{ws}/permissions/repositories/{repo}', weight: 1 },
  { t: '/2.0/teams/{ws}', weight: 1 },
  { t: '/2.0/snippets/{ws}', weight: 1 },
  { t: '/2.0/repositories', weight: 1 },
  { t: '/2.0/repositories/{ws}', weight: 6 },
  { t: '/2.0/repositories/{ws}/{repo}', weight: 10 },
  { t: '/2.0/repositories/{ws}/{repo}/', weight: 3 },
  { t: '/2.0/repositories/{ws}/{repo}/pullrequests', weight: 5 },
  { t: '/2.0/repositories/{ws}/{repo}/pullrequests/{id}', weight: 3 },
  { t: '/2.0/repositories/{ws}/{repo}/pullrequests/{id}/commits', weight: 2 },
  { t: '/2.0/repositories/{ws}/{repo}/pullrequests/{id}/diff', weight: 1 },
  { t: '/2.0/repositories/{ws}/{repo}/refs', weight: 1 },
  { t: '/2.0/repositories/{ws}/{repo}/refs/branches', weight: 4 },
  { t: '/2.0/repositories/{ws}/{repo}/refs/branches/{name}', weight: 6 },
  { t: '/2.0/repositories/{ws}/{repo}/refs/tags', weight: 2 },
  { t: '/2.0/repositories/{ws}/{repo}/refs/tags/{name}', weight: 2 },
  { t: '/2.0/repositories/{ws}/{repo}/commit/{hash}', weight: 5 },
  { t: '/2.0/repositories/{ws}/{repo}/commits', weight: 2 },
  { t: '/2.0/repositories/{ws}/{repo}/commits/{name}', weight: 1 },
  { t: '/2.0/repositories/{ws}/{repo}/src/{rev}/{path}', weight: 8 },
  { t: '/2.0/repositories/{ws}/{repo}/src/{rev}/', weight: 2 },
  { t: '/2.0/repositories/{ws}/{repo}/src', weight: 1 },
  { t: '/2.0/repositories/{ws}/{repo}/diff/{name}', weight: 1 },
  { t: '/2.0/repositories/{ws}/{repo}/forks', weight: 1 },
  { t: '/2.0/repositories/{ws}/{repo}/commit/{hash}/statuses/build', weight: 5, methods: ['POST', 'POST', 'GET', 'PUT'] },
  { t: '/2.0/repositories/{ws}/{repo}/commit/{hash}/statuses', weight: 1 },
  { t: '/2.0/repositories/{ws}/{repo}/hooks', weight: 4, methods: ['GET', 'POST', 'POST', 'DELETE'] },
  { t: '/2.0/repositories/{ws}/{repo}/hooks/{hook}', weight: 3, methods: ['GET', 'PUT', 'DELETE', 'POST'] },
  { t: '/1.0/repositories/{ws}/{repo}', weight: 1 },
  // The fork that is the source of the open PR #2 into acme/service-api (jdoe/service-api-fork).
  { t: '/2.0/repositories/{fws}/{frepo}', weight: 1 },
  { t: '/2.0/repositories/{fws}/{frepo}/refs/branches/{name}', weight: 3 },
  { t: '/2.0/repositories/{fws}/{frepo}/refs/branches', weight: 1 },
  { t: '/2.0/repositories/{fws}/{frepo}/refs/tags/{name}', weight: 1 },
  { t: '/2.0/repositories/{fws}/{frepo}/commit/{hash}', weight: 3 },
  { t: '/2.0/repositories/{fws}/{frepo}/src/{rev}/{path}', weight: 3 },
  { t: '/2.0/repositories/{fws}/{frepo}/src/{rev}/', weight: 1 },
  { t: '/2.0/repositories/{fws}/{frepo}/pullrequests', weight: 1 },
  { t: '/2.0/repositories/{fws}/{frepo}/commit/{hash}/statuses/build', weight: 1, methods: ['POST'] },
  { t: '/2.0/repositories/{fws}/{frepo}/hooks', weight: 1, methods: ['GET', 'POST'] },
  { t: '/{fws}/{frepo}.git/info/refs', weight: 2 },
  { t: '/{fws}/{frepo}.git/git-upload-pack', weight: 4, methods: ['POST'] },
  { t: '/{fws}/{frepo}.git/git-receive-pack', weight: 1, methods: ['POST'] },
  { t: '/site/oauth2/access_token', weight: 2, methods: ['POST', 'POST', 'GET'] },
  { t: '/site/oauth2/authorize', weight: 1 },
  { t: '/workspaces/{ws}/avatar', weight: 2 },
  { t: '/workspaces/{ws}/avatar/', weight: 1 },
  { t: '/{ws}/{repo}.git/info/refs', weight: 4 },
  { t: '/{ws}/{repo}/info/refs', weight: 2 },
  { t: '/{ws}/{repo}.git/git-upload-pack', weight: 3, methods: ['POST', 'POST', 'GET'] },
  { t: '/{ws}/{repo}.git/git-receive-pack', weight: 2, methods: ['POST', 'GET'] },
  { t: '/{ws}/{repo}.git/HEAD', weight: 1 },
  { t: '/{ws}/{repo}.git/objects/info/packs', weight: 1 },
  { t: '/{ws}/{repo}/raw/{rev}/{path}', weight: 1 },
  { t: '/{ws}/{repo}/get/{name}', weight: 1 },
  { t: '/{ws}/{repo}/src/{rev}/{path}', weight: 1 },
  { t: '/{ws}/{repo}', weight: 1 },
  { t: '/{ws}', weight: 1 },
  { t: '/_sidecar/health', weight: 1 },
  { t: '/_sidecar/ready', weight: 1 },
  { t: '/_sidecar/metrics', weight: 1 },
  { t: '/_sidecar/webhooks/bitbucket', weight: 1, methods: ['POST', 'GET'] },
  { t: '/_sidecar/{any}', weight: 1 },
];

function paramArb(p: Param, k: Known): fc.Arbitrary<Seg[]> {
  switch (p) {
    case 'ws':
      return workspaceArb(k).map((v) => [val(p, v)]);
    case 'repo':
      return repositoryArb(k).map((v) => [val(p, v)]);
    case 'fws':
      return fc.oneof({ weight: 6, arbitrary: caseVariants('jdoe') }, { weight: 1, arbitrary: uuidForms(k.uuids.jdoe) }).map((v) => [val('ws', v)]);
    case 'frepo':
      return fc.oneof({ weight: 6, arbitrary: caseVariants('service-api-fork') }, { weight: 1, arbitrary: uuidForms(k.uuids.fork) }).map((v) => [val('repo', v)]);
    case 'name':
      return nameArb(k).map((v) => [val(p, v, true)]);
    case 'rev':
      return fc.oneof(hashArb(k), nameArb(k)).map((v) => [val(p, v, true)]);
    case 'hash':
      return hashArb(k).map((v) => [val(p, v)]);
    case 'path':
      // File paths: one %2F-carrying segment (as the plugin sends) or literal slashes.
      return pathArb().chain((v) => fc.boolean().map((asOne) => (asOne || v === '' ? [val(p, v, true)] : v.split('/').map((s) => val(p, s)))));
    case 'id':
      return idArb.map((v) => [val(p, v)]);
    case 'hook':
      return hookArb(k).map((v) => [val(p, v)]);
    case 'any':
      return fc.oneof(pick('health/../metrics', '..', 'webhooks', 'debug', 'config', 'env'), fc.string({ maxLength: 10 })).map((v) => [val(p, v)]);
  }
}

/** Builds the segment list of a template; `{repo}.git` keeps its suffix as part of the value. */
function templateArb(tpl: Template, k: Known): fc.Arbitrary<{ segs: Seg[]; trailing: boolean }> {
  const trailing = tpl.t.endsWith('/') && tpl.t !== '/';
  const parts = tpl.t.replace(/\/$/, '').split('/').slice(1);
  const arbs = parts.map((part) => {
    const m = /^\{(\w+)\}(\.git)?$/.exec(part);
    if (!m) return fc.constant([lit(part)]);
    const suffix = m[2] ?? '';
    return paramArb(m[1] as Param, k).map((segs) => (suffix ? [...segs.slice(0, -1), { ...segs[segs.length - 1], text: segs[segs.length - 1].text + suffix }] : segs));
  });
  return fc.tuple(...arbs).map((lists) => ({ segs: lists.flat(), trailing }));
}

// ---------------------------------------------------------------------------------------------
// Encodings

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const hex = (b: number, lower: boolean) => {
  const h = b.toString(16).padStart(2, '0');
  return `%${lower ? h : h.toUpperCase()}`;
};

/** What a careful client sends: everything but unreserved characters percent-encoded. */
function encodeStrict(text: string, lower = false): string {
  return [...Buffer.from(text, 'utf8')].map((b) => (UNRESERVED.test(String.fromCharCode(b)) && b < 0x80 ? String.fromCharCode(b) : hex(b, lower))).join('');
}

/** Overlong UTF-8 forms of ASCII characters (invalid UTF-8 that naive decoders map back to ASCII). */
function overlong(c: string, three: boolean): string {
  const b = c.charCodeAt(0);
  return three ? `%E0%${(0x80 | (b >> 6)).toString(16).toUpperCase()}%${(0x80 | (b & 0x3f)).toString(16).toUpperCase()}` : `%${(0xc0 | (b >> 6)).toString(16).toUpperCase()}%${(0x80 | (b & 0x3f)).toString(16).toUpperCase()}`;
}

type Encoding = 'plain' | 'all' | 'all-lower' | 'some' | 'double' | 'overlong' | 'raw-slash' | 'backslash' | 'raw';

const encodingArb: fc.Arbitrary<Encoding> = fc.oneof(
  { weight: 20, arbitrary: fc.constant<Encoding>('plain') },
  { weight: 2, arbitrary: fc.constant<Encoding>('all') },
  { weight: 1, arbitrary: fc.constant<Encoding>('all-lower') },
  { weight: 2, arbitrary: fc.constant<Encoding>('some') },
  { weight: 1, arbitrary: fc.constant<Encoding>('double') },
  { weight: 1, arbitrary: fc.constant<Encoding>('overlong') },
  { weight: 1, arbitrary: fc.constant<Encoding>('raw-slash') },
  { weight: 1, arbitrary: fc.constant<Encoding>('backslash') },
  { weight: 1, arbitrary: fc.constant<Encoding>('raw') },
);

function encodeSeg(seg: Seg, enc: Encoding, mask: boolean[]): string {
  const t = seg.text;
  // Values already carrying %XX (a generated "%6Adoe") are sent as given under `plain`.
  const plain = () => (/%[0-9A-Fa-f]{2}/.test(t) && !seg.slashy ? t.replace(/[^A-Za-z0-9\-._~%!$&'()*+,;=:@]/g, (c) => encodeStrict(c)) : encodeStrict(t));
  switch (enc) {
    case 'plain':
      return seg.literal ? t : plain();
    case 'all':
    case 'all-lower':
      return [...Buffer.from(t, 'utf8')].map((b) => hex(b, enc === 'all-lower')).join('');
    case 'some':
      // Some characters percent-encoded even when they need not be (unreserved ones included).
      return [...t].map((c, i) => (mask[i % mask.length] ? [...Buffer.from(c, 'utf8')].map((b) => hex(b, i % 2 === 0)).join('') : encodeStrict(c))).join('');
    case 'double':
      return encodeStrict(t).replace(/%/g, '%25').replace(/[a-z]/g, (c, i) => (mask[i % mask.length] ? `%25${c.charCodeAt(0).toString(16)}` : c));
    case 'overlong':
      return [...t].map((c, i) => (c.charCodeAt(0) < 0x80 && (c === '.' || c === '/' || mask[i % mask.length]) ? overlong(c, i % 2 === 1) : encodeStrict(c))).join('');
    case 'raw-slash':
      // "/" inside a value sent literally (the value then spans several segments).
      return t.split('/').map((p) => encodeStrict(p)).join('/');
    case 'backslash':
      return encodeStrict(t).replace(/%2F/g, '%5C');
    case 'raw':
      // Not encoded at all: spaces, controls and non-ASCII go on the wire as bytes (latin1 here).
      return t;
  }
}

// ---------------------------------------------------------------------------------------------
// Query, hosts, credentials, headers, bodies

const QUERY_PAIRS: [string, string][] = [
  ['pagelen', '100'],
  ['pagelen', '50'],
  ['pagelen', '1000'],
  ['page', '2'],
  ['page', '0'],
  ['page', 'eyJ3cyI6Impkb2UifQ'],
  ['page', '../../jdoe'],
  ['fields', 'values.name'],
  ['fields', 'values.full_name'],
  ['fields', '-values.full_name'],
  ['fields', '-values.project'],
  ['fields', 'values.links.clone'],
  ['fields', 'values.owner,values.name,next'],
  ['fields', 'mainbranch.name'],
  ['fields', '*'],
  ['fields', '+values.workspace'],
  ['fields', 'values.source.repository.full_name'],
  ['q', 'project.key="CI"'],
  ['q', 'project.key="JD"'],
  ['q', 'full_name="jdoe/secret-notes"'],
  ['q', 'name~"secret"'],
  ['q', 'workspace.slug="jdoe"'],
  ['role', 'member'],
  ['role', 'admin'],
  ['sort', '-updated_on'],
  ['state', 'OPEN'],
  ['state', 'DECLINED'],
  ['at', 'main'],
  ['at', 'feature/BB-2'],
  ['format', 'meta'],
  ['max_depth', '10'],
  ['include', 'main'],
  ['exclude', 'main'],
  ['service', 'git-upload-pack'],
  ['service', 'git-receive-pack'],
  ['service', 'git-upload-archive'],
  ['ts', '123'],
  ['workspace', 'jdoe'],
  ['repo_slug', 'secret-notes'],
  ['url', 'https://api.bitbucket.org/2.0/repositories/jdoe'],
  ['next', 'https://api.bitbucket.org/2.0/repositories/jdoe/secret-notes'],
  ['access_token', 'bbsc_oat_x'],
];

function queryArb(template: string, clean = false): fc.Arbitrary<{ text: string; values: string[] }> {
  const pair = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...QUERY_PAIRS) },
    { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 6 }), fc.string({ maxLength: 12 })) },
  );
  const style = fc.oneof(
    { weight: 12, arbitrary: fc.constant<'strict'>('strict') },
    { weight: 2, arbitrary: pick<'loose' | 'plus'>('loose', 'plus') },
    { weight: clean ? 0 : 1, arbitrary: fc.constant<'broken'>('broken') },
  );
  const encodePair = ([k, v]: [string, string], s: string) => {
    if (s === 'loose') return `${k}=${v.replace(/[ #&\u0000-\u001f\u007f-\uffff]/g, (c) => encodeStrict(c))}`;
    if (s === 'broken') return `${encodeStrict(k)}=${encodeStrict(v)}%${v.length % 2 ? 'zz' : 'C0%AE'}`;
    if (s === 'plus') return `${encodeStrict(k)}=${encodeStrict(v).replace(/%20/g, '+')}`;
    return `${encodeStrict(k)}=${encodeStrict(v)}`;
  };
  const likely: [string, string][] = template.includes('info/refs') ? [['service', 'git-upload-pack']] : template.endsWith('/{path}') ? [['format', 'meta']] : [];
  return fc.tuple(fc.array(fc.tuple(pair, style), { maxLength: 4 }), fc.boolean(), fc.boolean()).map(([pairs, addLikely, bareQ]) => {
    const all = [...(addLikely ? likely.map((p) => [p, 'strict'] as [[string, string], string]) : []), ...pairs];
    const text = all.map(([p, s]) => encodePair(p, s)).join('&');
    const values = all.flatMap(([[k, v]]) => [k, v]);
    return { text: text ? `?${text}` : bareQ ? '?' : '', values };
  });
}

export const hostArb: fc.Arbitrary<string[]> = fc.oneof(
  { weight: 8, arbitrary: pick(['api.bitbucket.org'], ['bitbucket.org']) },
  { weight: 3, arbitrary: pick(['127.0.0.1'], ['localhost:8080'], ['sidecar:8080']) },
  {
    weight: 3,
    arbitrary: pick(
      ['API.BITBUCKET.ORG'],
      ['api.bitbucket.org:443'],
      ['api.bitbucket.org.'],
      ['bitbucket.org:8443'],
      ['evil.example'],
      ['jdoe.bitbucket.org'],
      ['[::1]:8080'],
      ['[::1]'],
      ['api.bitbucket.org@evil.example'],
      ['api.bitbucket.org:99999'],
      ['bad host'],
      [''],
      [],
      ['evil.example', 'api.bitbucket.org'],
      ['api.bitbucket.org', 'bitbucket.org'],
      ['api.bitbucket.org\t'],
    ),
  },
);

const userArb = pick('jenkins@ci.example', 'x-token-auth', 'x-bitbucket-api-token-auth', '', 'jdoe', 'jdoe@example.com', 'a:b');

export const credentialArb = (clients: string[]): fc.Arbitrary<Credential> =>
  fc.oneof(
    { weight: 14, arbitrary: fc.record({ kind: fc.constant('client' as const), client: fc.constantFrom(...clients), scheme: pick<'basic' | 'bearer'>('basic', 'basic', 'bearer'), user: userArb }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('issued' as const), scheme: pick<'basic' | 'bearer'>('bearer', 'bearer', 'basic'), user: pick('x-token-auth', 'jenkins@ci.example') }) },
    { weight: 1, arbitrary: fc.constant<Credential>({ kind: 'expired' }) },
    { weight: 1, arbitrary: fc.constant<Credential>({ kind: 'wrong' }) },
    { weight: 2, arbitrary: fc.constant<Credential>({ kind: 'upstream' }) },
    { weight: 1, arbitrary: fc.constant<Credential>({ kind: 'upstream-git' }) },
    { weight: 1, arbitrary: fc.constant<Credential>({ kind: 'consumer' }) },
    { weight: 1, arbitrary: fc.constant<Credential>({ kind: 'none' }) },
    {
      weight: 1,
      arbitrary: fc
        .oneof(pick('Basic', 'Basic ', 'Basic ===', 'Basic !!!!', 'Bearer', 'Bearer  ', 'Digest username="jdoe"', 'Negotiate abc', 'basic Og==', 'Basic Og=='), fc.string({ maxLength: 20 }))
        .map((header) => ({ kind: 'garbage' as const, header })),
    },
  );

const EXTRA_HEADERS: [string, string][] = [
  ['X-Forwarded-Host', 'bitbucket.org'],
  ['X-Forwarded-Host', 'jdoe.example'],
  ['X-Forwarded-Proto', 'https'],
  ['X-Forwarded-For', '10.0.0.1'],
  ['X-Original-URL', '/2.0/repositories/jdoe/secret-notes'],
  ['X-Rewrite-URL', '/2.0/repositories/other/widgets'],
  ['Forwarded', 'host=api.bitbucket.org;proto=https'],
  ['X-HTTP-Method-Override', 'DELETE'],
  ['Git-Protocol', 'version=2'],
  ['Accept-Encoding', 'gzip'],
  ['Accept-Encoding', 'br, gzip;q=0'],
  ['Content-Encoding', 'gzip'],
  ['Accept', 'text/html'],
  ['Cookie', 'session=jdoe'],
  ['Range', 'bytes=0-10'],
  ['If-None-Match', '*'],
  ['If-Modified-Since', 'Thu, 01 Jan 1970 00:00:00 GMT'],
  ['Cache-Control', 'no-cache'],
  ['Expect', '100-continue'],
  ['Upgrade', 'h2c'],
  ['Max-Forwards', '0'],
  ['X-Bitbucket-Workspace', 'jdoe'],
  ['User-Agent', 'git/2.43.0'],
  ['Content-Type', 'application/x-www-form-urlencoded'],
];

function pktLine(line: string): string {
  return `${(line.length + 4).toString(16).padStart(4, '0')}${line}`;
}

/**
 * An upload-pack request body wanting some of the known commits (v0, or v2 `command=fetch`, which
 * caseArb pairs with `Git-Protocol: version=2`), with the capabilities and extras git sends.
 */
export function wantBodyArb(k: Known): fc.Arbitrary<string> {
  const sha = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...k.gitWants.allowed) },
    { weight: 4, arbitrary: fc.constantFrom(...k.gitWants.forbidden) },
    { weight: 1, arbitrary: fc.stringMatching(/^[0-9a-f]{40}$/) },
  );
  const extra = fc.subarray(['deepen 1', 'filter blob:none', 'no-progress', 'ofs-delta', 'thin-pack', `have ${k.mainHash}`, `shallow ${k.forkCommitFull}`]);
  return fc.record({ v2: fc.boolean(), wants: fc.array(sha, { minLength: 1, maxLength: 4 }), extra, done: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }) }).map(({ v2, wants, extra: more, done }) => {
    if (v2) {
      const args = [...wants.map((w) => `want ${w}\n`), ...more.map((m) => `${m}\n`), ...(done ? ['done\n'] : [])];
      return `${pktLine('command=fetch\n')}${pktLine('agent=git/2.39.5\n')}0001${args.map(pktLine).join('')}0000`;
    }
    const caps = ' multi_ack_detailed side-band-64k ofs-delta agent=git/2.39.5';
    const lines = wants.map((w, i) => `want ${w}${i === 0 ? caps : ''}\n`);
    const shallow = more.filter((m) => m.startsWith('deepen') || m.startsWith('shallow')).map((m) => `${m}\n`);
    const haves = more.filter((m) => m.startsWith('have')).map((m) => `${m}\n`);
    return `${[...lines, ...shallow].map(pktLine).join('')}0000${haves.map(pktLine).join('')}${done ? pktLine('done\n') : '0000'}`;
  });
}

function bodyArb(template: string, k: Known): fc.Arbitrary<string | undefined> {
  const status = JSON.stringify({ state: 'SUCCESSFUL', key: 'fuzz', url: 'https://ci.example/job/1', name: 'fuzz build', description: 'fuzz' });
  const hook = JSON.stringify({ description: 'Jenkins hook', url: 'https://ci.example/bitbucket-scmsource-hook/notify', active: true, events: ['repo:push'] });
  const smuggling = JSON.stringify({ state: 'SUCCESSFUL', key: 'k', url: 'https://ci.example/1', repository: { full_name: 'jdoe/secret-notes' }, links: { self: { href: 'https://api.bitbucket.org/2.0/repositories/jdoe/secret-notes' } } });
  const general = pick(undefined, '', '{}', 'null', '{"state":', 'grant_type=client_credentials', '0000', '0032want 0000000000000000000000000000000000000000\n00000009done\n', '\u0000\u0001\u0002', '[]');
  if (template.endsWith('statuses/build')) return fc.oneof({ weight: 5, arbitrary: fc.constant(status) }, { weight: 1, arbitrary: fc.constant(smuggling) }, { weight: 2, arbitrary: general });
  if (template.includes('/hooks')) return fc.oneof({ weight: 4, arbitrary: fc.constant(hook) }, { weight: 2, arbitrary: general });
  if (template === '/{fws}/{frepo}.git/git-upload-pack') return fc.oneof({ weight: 5, arbitrary: wantBodyArb(k) }, { weight: 1, arbitrary: general });
  if (template.includes('oauth2')) return fc.oneof({ weight: 4, arbitrary: fc.constant('grant_type=client_credentials') }, { weight: 1, arbitrary: general });
  void k;
  return general;
}

const methodArb = fc.oneof(
  { weight: 30, arbitrary: fc.constant('GET') },
  { weight: 4, arbitrary: fc.constant('HEAD') },
  { weight: 4, arbitrary: pick('POST', 'PUT', 'DELETE') },
  { weight: 3, arbitrary: pick('PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'get', 'PURGE', 'M-SEARCH', 'CONNECT') },
);

const GOOD_HOSTS = [['api.bitbucket.org'], ['bitbucket.org'], ['127.0.0.1'], ['localhost:8080']];

// ---------------------------------------------------------------------------------------------
// Whole requests

export function caseArb(k: Known, clients: string[]): fc.Arbitrary<Case> {
  const templateChoice = fc.oneof(...TEMPLATES.map((tpl) => ({ weight: tpl.weight, arbitrary: fc.constant(tpl) })));
  return templateChoice.chain((tpl) =>
    fc
      .record({
        built: templateArb(tpl, k),
        encodings: fc.array(encodingArb, { minLength: 12, maxLength: 12 }),
        mask: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
        literalCase: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
        // Route literals percent-encoded too ("%72epositories"): they decode to the same route.
        literalEncoding: fc.oneof({ weight: 12, arbitrary: fc.constant<Encoding>('plain') }, { weight: 1, arbitrary: pick<Encoding>('all', 'all-lower', 'some', 'double', 'overlong') }),
        mutation: fc.oneof(
          { weight: 14, arbitrary: fc.constant<string>('none') },
          { weight: 1, arbitrary: pick('dot', 'dotdot', 'enc-dotdot', 'empty', 'leading-double', 'trailing', 'semicolon', 'fragment', 'space', 'backslash-sep', 'overlong-dotdot', 'tab') },
        ),
        at: fc.nat(),
        absolute: fc.oneof(
          { weight: 12, arbitrary: fc.constant('') },
          { weight: 1, arbitrary: pick('http://api.bitbucket.org', 'https://bitbucket.org:443', 'http://evil.example', 'HTTP://API.BITBUCKET.ORG', 'http://[::1]:8080', 'http://user:pass@api.bitbucket.org', 'http://jdoe@bitbucket.org', 'ftp://api.bitbucket.org', '//api.bitbucket.org') },
        ),
        query: queryArb(tpl.t),
        cleanQuery: queryArb(tpl.t, true),
        method: tpl.methods ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...tpl.methods) }, { weight: 1, arbitrary: methodArb }) : methodArb,
        // Half the cases are well-formed requests (plain spelling, a good Host, a client's token) so
        // that the deeper stages (gate, cache, upstream, shaping) see plenty of traffic; the other
        // half add hostile spellings, hosts and credentials on top.
        clean: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 5, arbitrary: fc.constant(false) }),
        goodHost: fc.constantFrom(...GOOD_HOSTS),
        goodCredential: fc.record({ kind: fc.constant('client' as const), client: fc.constantFrom(...clients), scheme: pick<'basic' | 'bearer'>('basic', 'bearer'), user: pick('jenkins@ci.example', 'x-token-auth', 'x-bitbucket-api-token-auth') }),
        hosts: hostArb,
        credential: credentialArb(clients),
        headers: fc.array(fc.constantFrom(...EXTRA_HEADERS), { maxLength: 3 }),
        body: bodyArb(tpl.t, k),
        chunked: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      })
      .map((raw) => {
        const r = raw.clean
          ? { ...raw, encodings: raw.encodings.map(() => 'plain' as Encoding), literalCase: false, literalEncoding: 'plain' as Encoding, mutation: 'none', absolute: '', hosts: raw.goodHost[0].includes('bitbucket') ? [/^\/[12]\.0\//.test(tpl.t) ? 'api.bitbucket.org' : 'bitbucket.org'] : raw.goodHost, credential: raw.goodCredential as Credential, query: raw.cleanQuery }
          : raw;
        const segs = r.built.segs;
        let parts = segs.map((s, i) => {
          const text = s.literal
            ? r.literalEncoding === 'plain' || i !== r.at % segs.length
              ? s.text
              : encodeSeg({ ...s, literal: false }, r.literalEncoding, r.mask)
            : encodeSeg(s, r.encodings[i % r.encodings.length], r.mask);
          return s.literal && r.literalCase && i === (r.at % segs.length) ? text.toUpperCase() : text;
        });
        const at = parts.length ? r.at % parts.length : 0;
        switch (r.mutation) {
          case 'dot':
            parts.splice(at, 0, '.');
            break;
          case 'dotdot':
            parts.splice(at, 0, 'x', '..');
            break;
          case 'enc-dotdot':
            parts.splice(at, 0, '%2E%2e');
            break;
          case 'overlong-dotdot':
            parts.splice(at, 0, '%C0%AE%C0%AE');
            break;
          case 'empty':
            parts.splice(at, 0, '');
            break;
          case 'leading-double':
            parts = ['', ...parts];
            break;
          case 'semicolon':
            if (parts.length) parts[at] += ';jsessionid=jdoe';
            break;
          case 'space':
            if (parts.length) parts[at] += ' x';
            break;
          case 'tab':
            if (parts.length) parts[at] += '\tx';
            break;
          case 'backslash-sep':
            if (parts.length > 1) parts = [parts.slice(0, at + 1).join('\\'), ...parts.slice(at + 1)];
            break;
        }
        let path = `/${parts.join('/')}${r.built.trailing || r.mutation === 'trailing' ? '/' : ''}`;
        if (r.mutation === 'fragment') path += '#/../../jdoe/secret-notes';
        const target = `${r.absolute}${path}${r.query.text}`;
        // The Host (and an absolute-form authority) is reflected into the links of the answer.
        const added = { semicolon: ';jsessionid=jdoe', fragment: '#/../../jdoe/secret-notes', space: ' x', tab: '\tx' }[r.mutation] ?? '';
        const free = [...segs.filter((s) => s.param && s.param !== 'ws' && s.param !== 'repo').map((s) => s.text), ...r.query.values, r.body ?? '', ...r.hosts, r.absolute, added];
        const sendsBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD' ? r.body : r.body !== undefined && r.chunked ? r.body : undefined;
        return {
          method: r.method,
          target,
          hosts: r.hosts,
          credential: r.credential,
          headers: gitBodyHeaders(r.headers, sendsBody),
          body: sendsBody,
          chunked: r.chunked && sendsBody !== undefined,
          free: free.map((f) => f.toLowerCase()).filter(Boolean),
          template: tpl.t,
        } satisfies Case;
      }),
  );
}

/** A generated upload-pack body goes with the headers git sends for it (else it never reaches upload-pack). */
function gitBodyHeaders(headers: [string, string][], body: string | undefined): [string, string][] {
  if (body === undefined || !/^[0-9a-f]{4}(want|command=fetch)/.test(body)) return headers;
  const out = headers.filter(([k]) => k !== 'Content-Type' && k !== 'Git-Protocol' && k !== 'Content-Encoding');
  out.push(['Content-Type', 'application/x-git-upload-pack-request']);
  if (body.includes('command=fetch')) out.push(['Git-Protocol', 'version=2']);
  return out;
}
