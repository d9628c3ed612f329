import { memoizeRecent } from '../core/memoize';
import { matchRoute, type MatchResult } from '../routes/match';
import { parseRequestTarget } from '../routes/canonical';
import type { CanonicalTarget } from '../core/target';

type Face = Parameters<typeof matchRoute>[0];

/**
 * Parsing a request target and matching it to a route are pure functions of the text (and of face
 * and method), remembered for the targets seen recently — Jenkins asks the same URLs scan after scan,
 * and a cache hit is cheap enough that this work showed (~5 µs of ~75). Everything handed out is
 * frozen: no stage can change what the next request with the same target gets. A target that does
 * not parse throws every time and is not remembered.
 */
export function recentTargets(maxUrlLength: number, max = 512) {
  const parsed = memoizeRecent((url: string) => freezeTarget(parseRequestTarget(url, maxUrlLength)), max);
  const matches = new WeakMap<CanonicalTarget, Map<string, MatchResult>>();
  return {
    parse: parsed,
    match(face: Face, method: string, target: CanonicalTarget): MatchResult {
      let byFaceAndMethod = matches.get(target);
      if (!byFaceAndMethod) matches.set(target, (byFaceAndMethod = new Map()));
      const key = `${face} ${method}`;
      let found = byFaceAndMethod.get(key);
      if (!found) byFaceAndMethod.set(key, (found = freezeMatch(matchRoute(face, method, target))));
      return found;
    },
  };
}

function freezeTarget(t: CanonicalTarget): CanonicalTarget {
  Object.freeze(t.segments);
  t.query.forEach((pair) => Object.freeze(pair));
  Object.freeze(t.query);
  return Object.freeze(t);
}

/** The match and its parameters; the catalog's route definition it points to is left as it is. */
function freezeMatch(m: MatchResult): MatchResult {
  if (m.kind === 'match') {
    Object.freeze(m.match.params);
    Object.freeze(m.match);
  } else if (m.kind === 'method') Object.freeze(m.allowed);
  return Object.freeze(m);
}
