/**
 * The in-repo webhook fixtures (test/fixtures/webhooks) stand in for Bitbucket's deliveries in every
 * webhook test, so they must read as Bitbucket's do. Always: they parse into the delivery the relay
 * acts on. When the plugin's recorded payloads are present: every field a fixture has exists in the
 * recorded delivery with the same JSON type (a fixture may leave fields out, never invent one).
 */
import { parseDelivery } from '../../src/webhooks/delivery';
import { recordedPayloads } from '../helpers/recorded-payloads';
import { fixture, headersFor, pullRequestBody, pushBody } from './helpers';

const FIXTURES = [
  { name: 'repo-push.json', eventKey: 'repo:push', recorded: 'webhooks/cloud--commit_created.json' },
  { name: 'pullrequest-created.json', eventKey: 'pullrequest:created', recorded: 'webhooks/cloud--pullrequest_created.json' },
];

describe('in-repo webhook fixtures', () => {
  it('repo-push.json: one updated branch of acme/service-api in project CI', () => {
    const d = parseDelivery(headersFor('repo:push'), fixture('repo-push.json'));
    expect(d).toMatchObject({ workspace: 'acme', repository: 'service-api', projectKey: 'CI', refs: [{ type: 'branch', name: 'main' }], emptyPush: false });
  });

  it('pullrequest-created.json: pull request 1 of acme/service-web, feature/x into main', () => {
    const d = parseDelivery(headersFor('pullrequest:created'), fixture('pullrequest-created.json'));
    expect(d).toMatchObject({ workspace: 'acme', repository: 'service-web', projectKey: 'CI' });
    expect(d.pullRequest).toEqual({ id: 1, source: { workspace: 'acme', repository: 'service-web', branch: 'feature/x' }, destinationBranch: 'main' });
  });

  it('pushBody and pullRequestBody re-address the fixtures', () => {
    const push = parseDelivery(headersFor('repo:push'), pushBody('other', 'widgets', 'WID', 'release/1', 'f'.repeat(40), { created: true, type: 'tag' }));
    expect(push).toMatchObject({ workspace: 'other', repository: 'widgets', projectKey: 'WID', refs: [{ type: 'tag', name: 'release/1' }] });
    const pr = parseDelivery(headersFor('pullrequest:updated'), pullRequestBody('other', 'widgets', 'WID', 7, 'a', 'b'));
    expect(pr.pullRequest).toEqual({ id: 7, source: { workspace: 'other', repository: 'widgets', branch: 'a' }, destinationBranch: 'b' });
  });

  it('hold nothing that looks like a credential', () => {
    for (const { name } of FIXTURES) {
      const text = fixture(name).toString('utf8');
      expect(text).not.toMatch(/password|secret|token|apikey|authorization|ATATT|ATCTT|@(?!example\.invalid)[a-z0-9-]+\.[a-z]{2,}/i);
    }
  });
});

/** Every leaf path of `v` with its JSON type; array elements are folded into `[]`. */
function shape(v: unknown, at = '$', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(v)) {
    out.set(at, 'array');
    for (const e of v) shape(e, `${at}[]`, out);
  } else if (v !== null && typeof v === 'object') {
    out.set(at, 'object');
    for (const [k, e] of Object.entries(v)) shape(e, `${at}.${k}`, out);
  } else {
    out.set(at, v === null ? 'null' : typeof v);
  }
  return out;
}

const recorded = recordedPayloads();
if (recorded.present) {
  describe(`fixtures against the recorded deliveries (${recorded.note})`, () => {
    it.each(FIXTURES)('$name has only fields $recorded has, with the same types', ({ name, recorded: rel }) => {
      const ours = shape(JSON.parse(fixture(name).toString('utf8')));
      const theirs = shape(JSON.parse(recorded.payloads.read(rel).toString('utf8')));
      const differences = [...ours].filter(([p, t]) => theirs.get(p) !== t).map(([p, t]) => `${p}: ours ${t}, recorded ${theirs.get(p) ?? 'absent'}`);
      expect(differences).toEqual([]);
    });

    it.each(FIXTURES)('the recorded $recorded parses as a $eventKey delivery, like $name', ({ eventKey, recorded: rel }) => {
      const d = parseDelivery(headersFor(eventKey), recorded.payloads.read(rel));
      expect(d.workspace).toMatch(/^[a-z0-9-]+$/);
      if (eventKey === 'repo:push') expect(d.refs.length).toBeGreaterThan(0);
      else expect(d.pullRequest?.id).toEqual(expect.any(Number));
    });
  });
} else {
  it(`fixtures against the recorded deliveries: ${recorded.note}`, () => {
    // Said in the test name and on the console, so a run without the payloads never looks complete.
    console.info(recorded.note);
    expect(recorded.present).toBe(false);
  });
}
